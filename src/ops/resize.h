/*
 * resize.h - test hook of resize.c (Resize, Upsample).
 */
#ifndef ONR_OPS_RESIZE_H
#define ONR_OPS_RESIZE_H

/* Nonzero: every numeric Resize/Upsample reshaped from now on takes the
 * plain-C reference path (double accumulation, one output at a time)
 * instead of the fast paths (and never the separable passes the generic
 * path takes for wide filters), so unit tests can compare the two. */
void onr_resize_force_reference(int on);

#endif
