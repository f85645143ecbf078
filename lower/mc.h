/*
 * mc.h: Monte Carlo projection kernels (issue 6, SPEC §6.5; emit_mc.c). Every
 * group gets a kernel `void PREFIXmG(float **bufs)` in which each JOIN with
 * projected axes evaluates only `samples` joint projected cells, drawn uniformly
 * with replacement by a counter-based hash of (seed, group, op, sample) at compile
 * time: one draw per equation, shared by its output cells, so threads and runs
 * cannot change the result. Sum is estimated as mean * P, avg as mean and max as
 * max (P: the number of projected cells). An op with samples >= P is exact (its
 * ordinary loop nest). Other ops are the ordinary loop nests.
 */
#ifndef FUSE_LOWER_MC_H
#define FUSE_LOWER_MC_H

#include "lower.h"

/* The Monte Carlo kernel name of group g. */
void lower_mc_name(const LowerOptions *opt, int g, char *buf, size_t n);

/* Samples used by group g's op i (0: the op is exact). */
int64_t lower_mc_op_samples(const IrProgram *p, const Op *op, int64_t samples);

/* Emits the Monte Carlo kernel of every equation group. */
fuse_status lower_mc_program(const IrProgram *p, JitModule *jm, const LowerOptions *opt,
                             int64_t samples, uint64_t seed, char **err);

#endif /* FUSE_LOWER_MC_H */
