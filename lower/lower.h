/*
 * lower.h: the third stage of fuse-jit. A shaped IR program becomes one LLVM module
 * (through the LLVM-C API) with one kernel function per group. All sizes are
 * constants in the emitted IR: a different input shape is a different module.
 *
 * Kernel ABI: `void KERNEL(float **bufs)`. bufs[t] is the current buffer of tensor
 * t (C order, float32, 64-byte aligned); bufs[n_tensors + t] is its previous-sweep
 * buffer when the tensor is read by a recursive component (IrTensor.is_read_prev).
 */
#ifndef FUSE_LOWER_H
#define FUSE_LOWER_H

#include <stddef.h>

#include "ir.h"
#include "jit.h"

typedef struct LowerOptions {
    const char *prefix; /* prepended to kernel names; unique per runner */
    int vector_bits;    /* widest vectors to prefer (jit_vector_bits) */
} LowerOptions;

/* Emits every group and sink group of p into jm's module. p must be shaped. */
fuse_status lower_program(const IrProgram *p, JitModule *jm, const LowerOptions *opt,
                          char **err);

/* The kernel name of equation group i (is_sink false) or sink group i. */
void lower_kernel_name(const LowerOptions *opt, bool is_sink, int i, char *buf, size_t n);

#endif /* FUSE_LOWER_H */
