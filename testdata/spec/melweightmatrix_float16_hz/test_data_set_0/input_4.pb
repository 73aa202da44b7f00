
BhiJ_q