
ByJm)im8*:h8m)im¦Jª¦m)im