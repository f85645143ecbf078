/*
 * elem.c: the element type of a plan's buffers. Every tensor buffer of a plan
 * holds one element type, its precision's storage type (float32, float64,
 * bfloat16 or binary16; lower.h: LowerOptions.precision). The runtime's buffers
 * stay typed `float *` (the kernel ABI); code that reads or writes single
 * elements goes through rt_elem_get / rt_elem_set, and sizes through
 * rt_elem_bytes.
 */
#include <stdlib.h>
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

void rt_lower_options(const RtPlan *pl, const char *prefix, LowerOptions *opt)
{
    *opt = (LowerOptions){.prefix = prefix, .vector_bits = jit_vector_bits(pl->js)};
    opt->precision = pl->precision;
    /* any runner may hold a float16 source as it was bound (rt_keep_sources) */
    opt->soft_half = !jit_has_f16c(pl->js);
    opt->split_rows = pl->split_rows;
}

/* the precision whose storage is dtype dt (FUSE_PRECISION_COUNT: none) */
static fuse_precision precision_of_dtype(fuse_dtype dt)
{
    switch (dt) {
    case FUSE_F32: return FUSE_PRECISION_FP32;
    case FUSE_F64: return FUSE_PRECISION_FP64;
    case FUSE_BF16: return FUSE_PRECISION_BF16;
    case FUSE_F16: return FUSE_PRECISION_FP16;
    default: return FUSE_PRECISION_COUNT;
    }
}

static fuse_dtype dtype_of_precision(fuse_precision p)
{
    switch (p) {
    case FUSE_PRECISION_FP64: return FUSE_F64;
    case FUSE_PRECISION_BF16: return FUSE_BF16;
    case FUSE_PRECISION_FP16: return FUSE_F16;
    default: return FUSE_F32;
    }
}

size_t rt_tensor_bytes(const RtPlan *pl, int t)
{
    const IrTensor *x = pl->ir->tensors[t];
    if (x->quant)
        return 1;
    LowerOptions opt = {.precision = x->elem ? (fuse_precision)(x->elem - 1) : pl->precision};
    return lower_store_bytes(&opt);
}

uint64_t rt_tensor_alloc_bytes(const RtPlan *pl, int t)
{
    const IrTensor *x = pl->ir->tensors[t];
    if (x->quant)
        return (uint64_t)lower_quant_bytes(pl->count[t], lower_quant_dim(x));
    return (uint64_t)pl->count[t] * rt_tensor_bytes(pl, t);
}

fuse_dtype rt_tensor_dtype(const RtPlan *pl, int t)
{
    const IrTensor *x = pl->ir->tensors[t];
    if (x->quant)
        return x->quant == IR_QUANT_I8 ? FUSE_I8 : FUSE_U8;
    return x->elem ? dtype_of_precision((fuse_precision)(x->elem - 1)) : rt_elem_dtype(pl);
}

/* Whether an op of a group that `bad` says no to reads tensor t. */
static bool is_read_by(const IrProgram *p, int t, bool (*bad)(const Group *, const Op *))
{
    for (int g = 0; g < p->n_groups; g++)
        for (int i = 0; i < p->groups[g]->n_ops; i++) {
            const Op *op = p->groups[g]->ops[i];
            for (int k = 0; bad(p->groups[g], op) && k < op->n_in; k++)
                if (op->in[k].tensor == t)
                    return true;
        }
    return false;
}

/* Host ops (tucker_dense, runtime/tucker.c) read float32 buffers only. */
static bool is_host_op(const Group *g, const Op *op)
{
    (void)g;
    return op->kind == OP_HOST;
}

/* Recursive rules may be checked on the host (seminaive.c reads operands). */
static bool is_host_read(const Group *g, const Op *op)
{
    return is_host_op(g, op) || g->is_recursive;
}

/* Whether only kernels read source t, so its buffer may hold int8 data: the
 * host reads exports, sinks' values, recursive rules' operands, host ops'. */
static bool only_kernels_read(const IrProgram *p, const IrTensor *t)
{
    if (t->is_export || t->is_bool || t->stream || t->is_stream_state || t->is_read_prev ||
        is_read_by(p, t->id, is_host_read))
        return false;
    for (int g = 0; g < p->n_sink_groups; g++)
        if (p->sink_groups[g]->tensor == t->id)
            return false;
    return true;
}

fuse_status rt_keep_sources(RtPlan *pl)
{
    const char *no_keep = getenv("FUSE_JIT_DEQUANTISE"); /* the load-time path, to compare */
    for (int i = 0; pl->src_dtype && i < pl->ir->n_tensors; i++) {
        IrTensor *t = pl->ir->tensors[i];
        fuse_dtype dt = (fuse_dtype)(pl->src_dtype[i] - 1);
        if (!pl->src_dtype[i] || t->kind != TEN_SOURCE)
            continue;
        if (dt == FUSE_I8 || dt == FUSE_U8) { /* a manifest's quantised entry */
            bool keep = only_kernels_read(pl->ir, t) && !(no_keep && *no_keep);
            if (rt_weights_keep_quantised(pl, t, keep) != FUSE_OK)
                return FUSE_E_NOMEM;
            continue;
        }
        if (t->is_bool || t->is_stream_state || t->stream || t->is_read_prev ||
            (dt != FUSE_BF16 && dt != FUSE_F16) || dt == rt_elem_dtype(pl) ||
            is_read_by(pl->ir, i, is_host_op))
            continue;
        t->elem = 1 + (int)precision_of_dtype(dt);
    }
    return FUSE_OK;
}

fuse_status rt_check_kept_source(RtPlan *pl, const IrTensor *t, const fuse_input *in)
{
    if (t->quant) /* its buffer is the manifest's, with the scales behind the data */
        return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                        "input %s: this runner reads %s quantised from its weights manifest; "
                        "a host input cannot replace it (make a new runner given %s)",
                        in->name, t->name, t->name);
    if (!t->elem || in->tensor.dtype == rt_tensor_dtype(pl, t->id))
        return FUSE_OK;
    return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                    "input %s: this runner keeps %s as %s, the dtype it was made with; pass "
                    "%s data (got %s) or make a new runner",
                    in->name, t->name, fuse_dtype_name(rt_tensor_dtype(pl, t->id)),
                    fuse_dtype_name(rt_tensor_dtype(pl, t->id)),
                    fuse_dtype_name(in->tensor.dtype));
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

void rt_tensor_from_source(const RtPlan *pl, const IrTensor *t, fuse_dtype dt, const void *src,
                           void *dst, int64_t n)
{
    if (t->quant && dt == rt_tensor_dtype(pl, t->id)) /* the data and its tables */
        memcpy(dst, src, (size_t)lower_quant_bytes(n, lower_quant_dim(t)));
    else if (t->elem && dt == rt_tensor_dtype(pl, t->id)) /* a kept source: as it was bound */
        memcpy(dst, src, (size_t)n * fuse_dtype_size(dt));
    else
        rt_elem_from_source(pl, dt, src, dst, n, t->is_bool);
}

fuse_tensor rt_elem_view(const RtPlan *pl, const IrTensor *t, const void *buf)
{
    fuse_tensor v = {.dtype = rt_tensor_dtype(pl, t->id), .rank = t->rank, .data = (void *)buf};
    memcpy(v.shape, t->shape, sizeof v.shape);
    return v;
}

fuse_status rt_elem_copy(const RtPlan *pl, const IrTensor *t, fuse_tensor *out)
{
    if (pl->precision == FUSE_PRECISION_FP32 && !t->elem) /* every fp32 export's path */
        return io_tensor_from_f32(FUSE_F32, t->rank, t->shape, pl->bufs[t->id], out);
    size_t bytes = (size_t)pl->count[t->id] * rt_tensor_bytes(pl, t->id);
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
