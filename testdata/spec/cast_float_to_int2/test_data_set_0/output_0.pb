:ByJÐTUUU•©ªVYf
