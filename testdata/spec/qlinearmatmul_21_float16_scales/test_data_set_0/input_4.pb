
BsbJ%