/*
 * host.h: the runtime functions that generated code calls (OP_HOST ops, tucker).
 * lower/emit_host.c declares them in the module as external functions by these
 * names; the runtime defines them in every JITDylib of its session as absolute
 * symbols (rt_host_symbols_define, runtime/tucker.c), so cached object files
 * never hold an address of this process.
 */
#ifndef FUSE_LOWER_HOST_H
#define FUSE_LOWER_HOST_H

#include <stdint.h>

/* void fuse_rt_tucker_dense(float *out, const float *in, int64_t order,
 *                           const int64_t *shape, const int64_t *ranks,
 *                           double threshold)
 * in and out: C-order float32 tensors of `order` axes with sizes shape[];
 * ranks[k] >= 1 is the rank kept on axis k (capped at its size). */
#define LOWER_HOST_TUCKER "fuse_rt_tucker_dense"

#endif /* FUSE_LOWER_HOST_H */
