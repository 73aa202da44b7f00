/*
 * rnn.h - test hooks of the recurrent operators (rnn.c): RNN, GRU, LSTM.
 */
#ifndef ONR_OPS_RNN_H
#define ONR_OPS_RNN_H

/* 1: every float32 RNN/GRU/LSTM created from now on runs the plain-C
 * double-precision reference path (no SGEMM, no packed weights), as
 * double, float16 and bfloat16 always do; 0: float32 takes the SGEMM
 * path. Returns the previous setting. Tests only. */
int onr_rnn_force_reference(int on);

#endif
