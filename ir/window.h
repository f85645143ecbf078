/*
 * window.h: private to ir/ (build.c and window.c): streaming `*t` axes (SPEC §6.4).
 * ir_build calls ir_stream_rewrite before declaring tensors and ir_stream_declare
 * right after; the rest of the builder then never sees a streaming index. The
 * model is described at IrStream in ir.h.
 */
#ifndef FUSE_IR_WINDOW_H
#define FUSE_IR_WINDOW_H

#include "build.h"

/* The longest window a streaming tensor may have (offsets lo..w, w - lo steps
 * stored): larger offsets are an error. */
#define IR_STREAM_MAX_WINDOW 4096

/* Checks every streaming index of b->p->ast and, when there is any, replaces
 * b->p->ast by a rewritten copy (in the arena) in which a streaming tensor is
 * declared without its time axis and each reference names the slot of its offset
 * ("H@t-1"); fills b->p->streams (slots not created yet). Positioned errors: more
 * than one streaming index in a reference or more than one time axis in the
 * program, left-hand sides of one tensor that disagree on streaming or on the
 * offset, a streaming tensor read without its time index (or a plain tensor with
 * one), a read of a later step than the one computed, a window wider than
 * IR_STREAM_MAX_WINDOW. */
fuse_status ir_stream_rewrite(Builder *b);

/* After the tensors of the program are declared: creates the earlier-step slots
 * (TEN_SOURCE, is_stream_state, sharing the size variables of the written slot)
 * and completes b->p->streams. */
void ir_stream_declare(Builder *b);

#endif /* FUSE_IR_WINDOW_H */
