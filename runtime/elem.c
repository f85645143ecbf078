/*
 * elem.c: the element type of a plan's buffers. Every tensor buffer of a plan
 * holds one element type, its precision's storage type (float32, float64,
 * bfloat16 or binary16; lower.h: LowerOptions.precision). The runtime's buffers
 * stay typed `float *` (the kernel ABI); code that reads or writes single
 * elements goes through rt_elem_get / rt_elem_set, and sizes through
 * rt_elem_bytes.
 */
#include <string.h>

#include "jit.h"
#include "lower.h"
#include "runtime.h"

static const char *const PRECISION_NAMES[FUSE_PRECISION_COUNT] = {"fp32", "fp64", "bf16",
                                                                  "fp16"};

const char *rt_precision_name(fuse_precision p)
{
    return (unsigned)p < FUSE_PRECISION_COUNT ? PRECISION_NAMES[p] : "unknown";
}

size_t rt_elem_bytes(const RtPlan *pl)
{
    LowerOptions opt = {.precision = pl->precision};
    return lower_store_bytes(&opt);
}

fuse_dtype rt_elem_dtype(const RtPlan *pl)
{
    switch (pl->precision) {
    case FUSE_PRECISION_FP64: return FUSE_F64;
    case FUSE_PRECISION_BF16: return FUSE_BF16;
    case FUSE_PRECISION_FP16: return FUSE_F16;
    default: return FUSE_F32;
    }
}

void rt_lower_elem(const RtPlan *pl, LowerOptions *opt)
{
    opt->precision = pl->precision;
    opt->soft_half = pl->precision == FUSE_PRECISION_FP16 && !jit_has_f16c(pl->js);
}

void rt_elem_from_source(const RtPlan *pl, fuse_dtype dt, const void *src, void *dst, int64_t n,
                         bool is_bool)
{
    if (pl->precision == FUSE_PRECISION_FP32) {
        io_convert_source(dt, src, dst, n, is_bool);
        return;
    }
    if (pl->precision == FUSE_PRECISION_FP64) {
        io_convert_source_f64(dt, src, dst, n, is_bool);
        return;
    }
    /* 16-bit storage: through float32 in blocks on the stack (a float64 source
     * is rounded twice, to float32 and then to 16 bits) */
    size_t esize = fuse_dtype_size(dt);
    float tmp[1024];
    for (int64_t at = 0; at < n; at += 1024) {
        int64_t k = n - at < 1024 ? n - at : 1024;
        io_convert_source(dt, (const char *)src + (size_t)at * esize, tmp, k, is_bool);
        for (int64_t j = 0; j < k; j++)
            rt_elem_set(pl, dst, at + j, tmp[j]);
    }
}

fuse_tensor rt_elem_view(const RtPlan *pl, const IrTensor *t, const void *buf)
{
    fuse_tensor v = {.dtype = rt_elem_dtype(pl), .rank = t->rank, .data = (void *)buf};
    memcpy(v.shape, t->shape, sizeof v.shape);
    return v;
}

fuse_status rt_elem_copy(const RtPlan *pl, const IrTensor *t, fuse_tensor *out)
{
    if (pl->precision == FUSE_PRECISION_FP32) /* the path every fp32 export takes */
        return io_tensor_from_f32(FUSE_F32, t->rank, t->shape, pl->bufs[t->id], out);
    size_t bytes = (size_t)pl->count[t->id] * rt_elem_bytes(pl);
    void *data = io_alloc_aligned(bytes ? bytes : 8);
    if (!data)
        return FUSE_E_NOMEM;
    memcpy(data, pl->bufs[t->id], bytes);
    *out = rt_elem_view(pl, t, data);
    return FUSE_OK;
}

fuse_status rt_elem_refuse(RtPlan *pl, const char *feature)
{
    if (pl->precision == FUSE_PRECISION_FP32)
        return FUSE_OK;
    return fe_error(&pl->dl, FUSE_E_UNSUPPORTED, (Span){0},
                    "precision %s is not supported with %s yet (use fp32)",
                    rt_precision_name(pl->precision), feature);
}
