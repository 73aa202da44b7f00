
BsyJÍ4