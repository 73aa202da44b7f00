
ByJl5