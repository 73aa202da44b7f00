
BsJì5