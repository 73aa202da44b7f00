
ByJA