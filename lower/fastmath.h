/*
 * fastmath.h: private to lower/: elementary functions emitted as plain LLVM IR
 * (no library call), so loops that use them vectorise (fastmath.c).
 */
#ifndef FUSE_LOWER_FASTMATH_H
#define FUSE_LOWER_FASTMATH_H

#include "emit.h"

/* exp(x) for a float x: within 2 ulp of expf on [-87, 88], 0 below -87.33,
 * +inf above 88.72, NaN for NaN. */
LLVMValueRef emit_fast_exp(Emit *e, LLVMValueRef x);

/* The same for x <= 0 (softmax's x - max), a few instructions shorter (no
 * overflow case, 2^n in one step); x > 0 gives 1, a NaN NaN. */
LLVMValueRef emit_fast_exp_nonpos(Emit *e, LLVMValueRef x);

/* tanh(x) for a float x: within 1e-5 relative of tanh (series below |x| = 0.05),
 * +-1 for large |x|, NaN for NaN. */
LLVMValueRef emit_fast_tanh(Emit *e, LLVMValueRef x);

#endif /* FUSE_LOWER_FASTMATH_H */
