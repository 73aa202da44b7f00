/*
 * load.h - turning .onnx bytes into the IR. The only part of onnx-run that
 * sees protobuf-c structs.
 */
#ifndef ONR_LOAD_H
#define ONR_LOAD_H

#include <stdio.h>

#include "ir/ir.h"

/* Parse a model file. External data is resolved against the file's directory. */
onr_status onr_load_file(const char *path, onr_model **out, onr_err *err);
/* Parse a serialized ModelProto in memory; base_dir (may be NULL) resolves
 * external data. */
onr_status onr_load_buffer(const void *buf, size_t len, const char *base_dir, onr_model **out,
                           onr_err *err);
/* Parse a serialized TensorProto (test-data .pb files). */
onr_status onr_load_tensor_pb(const void *buf, size_t len, onr_tensor **out, onr_err *err);
/* Serialize a tensor as a TensorProto; *out is malloc'd. */
/* A serialized value of `kind` (onr_kind): TensorProto, SequenceProto or
 * OptionalProto (of a tensor, a sequence or a map) or MapProto (keys and one
 * tensor per key: onr_map_check's rules). */
onr_status onr_load_value_pb(const void *buf, size_t len, int kind, onr_tensor **out,
                             onr_err *err);
/* t serialized as the message of its kind (see onr_load_value_pb). */
onr_status onr_save_value_pb(const onr_tensor *t, const char *name, uint8_t **out, size_t *len,
                             onr_err *err);
/* Write t as onr_save_value_pb would serialize it, streaming a tensor's
 * data to f without a serialized copy in memory. */
onr_status onr_write_value_pb(const onr_tensor *t, const char *name, FILE *f, onr_err *err);
/* Parse a NumPy .npy file held in memory (src/api/tensor_io.c; the fuzz
 * harness tests/fuzz/fuzz_npy.c calls it directly). */
onr_status onr_parse_npy(const uint8_t *b, size_t len, onr_tensor **out, onr_err *err);
onr_status onr_save_tensor_pb(const onr_tensor *t, const char *name, uint8_t **out, size_t *len,
                              onr_err *err);

/* ---- opening files (fileopen.c) -------------------------------------------
 * Each returns an open descriptor, or -1 with err set naming the file and why.
 * None blocks on a FIFO; none accepts anything but a regular file. */
struct stat;
/* Read-only; `what` names the file in messages ("model", "input file"). */
int onr_open_regular(const char *path, const char *what, struct stat *st, onr_err *err);
/* Read-only, `loc` resolved beneath directory `dir` without leaving it through
 * a symbolic link or '..' (links that stay inside are followed). */
int onr_open_beneath(const char *dir, const char *loc, struct stat *st, onr_err *err);
/* For writing: created or truncated; refuses a symbolic link, FIFO or device. */
int onr_create_regular(const char *path, onr_err *err);
/* Tests: 1 resolves beneath a directory by hand even where openat2 exists. */
extern int onr_resolve_portable_only;

/* Largest nesting of messages accepted (graph attributes inside nodes inside graphs ...). */
#define ONR_MAX_PROTO_DEPTH 48

#endif
