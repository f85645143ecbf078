/*
 * delta.h: semi-naive delta kernels (issue 6; emit_delta.c). For a boolean
 * recursive group whose contributions are joins with at most one recursive
 * operand, the delta kernel `void PREFIXdG(float **bufs)` runs only the recursive
 * joins, driven by that operand (read from bufs[n_tensors + t], which the runtime
 * binds to the delta relation): the loops over its axes come first and a zero
 * cell skips the rest of the nest, so the work is proportional to the new facts.
 * Each cell where some product of the other operands is > 0 is OR-ed into the
 * output (correct when every other operand is non-negative: the runtime checks).
 */
#ifndef FUSE_LOWER_DELTA_H
#define FUSE_LOWER_DELTA_H

#include "lower.h"

/* True when group g can have a delta kernel (static checks only). */
bool lower_delta_eligible(const IrProgram *p, int g);

/* The delta kernel name of group g; with is_base, the name of its base kernel
 * `void PREFIXbG(float **bufs)`, which runs only the joins without a recursive
 * operand (the first semi-naive sweep: the recursive ones would read nothing). */
void lower_delta_name(const LowerOptions *opt, int g, bool is_base, char *buf, size_t n);

/* Emits the delta kernels of the groups with want[g] (each must be eligible). */
fuse_status lower_delta_program(const IrProgram *p, JitModule *jm, const LowerOptions *opt,
                                const bool *want, char **err);

#endif /* FUSE_LOWER_DELTA_H */
