/*
 * plan.c: compiles a program for its input shapes.
 *
 * rt_plan_new drives the stages: parse (frontend), build and order (ir), probe the
 * sources for their sizes (sources.c), infer shapes, lower to one LLVM module,
 * optimise and load it (jit), look the kernels up and allocate one buffer per
 * tensor, once their sum is under the memory cap (footprint.c). Without a JIT
 * session it only checks (fuse_program). Diagnostics name the statement involved
 * (file:line:col).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "lower.h"
#include "runtime.h"
#include "stream.h"

/* ---- compile ---- */

/* Sizes every buffer the plan holds (count[], scratch_bytes) without allocating
 * any, so the footprint can be checked first. */
static fuse_status size_buffers(RtPlan *pl)
{
    IrProgram *p = pl->ir;
    int n = p->n_tensors;
    pl->bufs = calloc((size_t)n * 2 + 1, sizeof *pl->bufs);
    pl->count = calloc((size_t)n + 1, sizeof *pl->count);
    if (!pl->bufs || !pl->count)
        return FUSE_E_NOMEM;
    for (int i = 0; i < n; i++) {
        IrTensor *t = p->tensors[i];
        pl->count[i] = io_shape_count(t->rank, t->shape);
        if (pl->count[i] < 0 || (uint64_t)pl->count[i] > ((uint64_t)1 << 40))
            return fe_error(&pl->dl, FUSE_E_SHAPE, t->span, "tensor %s is too large", t->name);
    }
    /* packing scratch of the contraction kernels; FLOPs per run */
    pl->timings.flops = lower_flops(p);
    LowerOptions opt;
    rt_lower_options(pl, RT_KERNEL_PREFIX, &opt);
    pl->scratch_bytes = lower_scratch_bytes(p, &opt);
    return FUSE_OK;
}

/* One buffer per tensor (two for one read as its previous sweep) and the
 * scratch, once the footprint is under the cap; a failure names the tensor. */
static fuse_status alloc_buffers(RtPlan *pl, uint64_t max_memory)
{
    fuse_status st = size_buffers(pl);
    if (st == FUSE_OK)
        st = rt_plan_check_memory(pl, max_memory);
    if (st != FUSE_OK)
        return st;
    IrProgram *p = pl->ir;
    int n = p->n_tensors;
    for (int i = 0; i < n; i++) {
        IrTensor *t = p->tensors[i];
        size_t bytes = (size_t)rt_tensor_alloc_bytes(pl, i);
        if (!(pl->bufs[i] = io_alloc_aligned(bytes)))
            return rt_alloc_failed(pl, t, "tensor", bytes);
        if (t->is_read_prev && !(pl->bufs[n + i] = io_alloc_aligned(bytes)))
            return rt_alloc_failed(pl, t, "the previous-sweep buffer of", bytes);
        if (t->kind == TEN_CONST) /* float32 literals, in the plan's element type */
            rt_elem_from_source(pl, FUSE_F32, t->data, pl->bufs[i], pl->count[i], false);
    }
    if (pl->scratch_bytes && !(pl->bufs[2 * n] = io_alloc_aligned(pl->scratch_bytes)))
        return rt_alloc_failed(pl, NULL, "the kernels' packing scratch", pl->scratch_bytes);
    pl->scratch_threads = 1;
    pl->is_zero_yet = true; /* io_alloc_aligned zeroes */
    return FUSE_OK;
}

/* Compiling goes through the code cache, group by group: plan_compile.c. */

fuse_status rt_plan_emit(RtPlan *pl, const char *what, char **out, char **err)
{
    JitModule *jm = NULL;
    fuse_status st = rt_plan_emit_module(pl, &jm, err);
    if (st != FUSE_OK)
        return st;
    if (strcmp(what, "llvm") == 0 || strcmp(what, "asm") == 0)
        st = jit_module_optimize(pl->js, jm, err);
    if (st == FUSE_OK && strcmp(what, "asm") == 0)
        st = jit_module_asm(pl->js, jm, out, err);
    else if (st == FUSE_OK) {
        *out = jit_module_print(jm);
        st = *out ? FUSE_OK : FUSE_E_NOMEM;
    }
    jit_module_free(jm);
    return st;
}

static fuse_status parse_and_check(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    double t0 = sup_clock_ms();
    fuse_status st = fe_parse_program(&pl->arena, &pl->src, pl->popts, &pl->dl,
                                      &pl->ast);
    pl->timings.parse_ms = sup_clock_ms() - t0;
    if (st == FUSE_OK)
        st = rt_weights_open(pl); /* a manifest may declare sources */
    if (st == FUSE_OK)
        st = ir_build(&pl->arena, &pl->ast, &pl->dl, &pl->ir);
    if (st == FUSE_OK)
        st = ir_order(pl->ir, &pl->dl);
    if (st == FUSE_OK)
        st = rt_check_inputs(pl, inputs, n_inputs);
    if (st == FUSE_OK)
        st = rt_check_sinks(pl);
    if (st != FUSE_OK)
        return st;
    ShapeFact *facts = arena_alloc(&pl->arena, sizeof *facts * ((size_t)pl->ir->n_tensors + 1));
    pl->is_input = calloc((size_t)pl->ir->n_tensors + 1, sizeof *pl->is_input);
    pl->src_dtype = calloc((size_t)pl->ir->n_tensors + 1, sizeof *pl->src_dtype);
    if (!facts || !pl->is_input || !pl->src_dtype)
        return FUSE_E_NOMEM;
    pl->facts = facts; /* fuse_program_tensor_info */
    bool is_skipped = false;
    st = rt_probe_sources(pl, inputs, n_inputs, facts, &is_skipped);
    if (is_skipped && st == FUSE_OK)
        return FUSE_OK; /* a source is not readable yet: sizes are checked per runner */
    if (st == FUSE_OK)
        st = rt_infer_source_shapes(pl, facts, &is_skipped);
    if (is_skipped && st == FUSE_OK)
        return FUSE_OK; /* a source file's sizes do not fit: checked per runner */
    if (st == FUSE_OK)
        st = ir_check_builtins(pl->ir, &pl->dl);
    return st;
}

/* Host ops (tucker_dense, runtime/tucker.c) work on float32 buffers only. */
static fuse_status refuse_host_ops(RtPlan *pl)
{
    const IrProgram *p = pl->ir;
    for (int g = 0; g < p->n_groups; g++)
        for (int i = 0; i < p->groups[g]->n_ops; i++)
            if (p->groups[g]->ops[i]->kind == OP_HOST)
                return rt_elem_refuse(pl, "tucker_dense");
    return FUSE_OK;
}

fuse_status rt_plan_new(RtPlan **out, const char *text, const char *name,
                        const char *base_dir, const char *out_dir, bool write_sinks,
                        const fuse_input *inputs, size_t n_inputs, JitSession *js,
                        const char *prefix, JitCache *cache, const char *cache_dir,
                        RtHost *host, const fuse_program_options *popts, uint64_t max_memory,
                        fuse_precision precision, bool split_rows)
{
    RtPlan *pl = calloc(1, sizeof *pl);
    *out = pl;
    if (!pl)
        return FUSE_E_NOMEM;
    pl->precision = precision;
    pl->split_rows = split_rows;
    pl->host = host; /* first, so compiling can log */
    arena_init(&pl->arena);
    fe_diags_init(&pl->dl, &pl->arena);
    pl->src.name = arena_strdup(&pl->arena, name ? name : "<input>");
    pl->src.text = arena_strdup(&pl->arena, text);
    pl->src.len = strlen(text);
    pl->popts = popts;
    pl->base_dir = strdup(base_dir ? base_dir : ".");
    pl->out_dir = strdup(out_dir ? out_dir : pl->base_dir ? pl->base_dir : ".");
    pl->write_sinks = write_sinks;
    pl->js = js;
    snprintf(pl->prefix, sizeof pl->prefix, "%s", prefix ? prefix : "fuse_");
    pl->cache = cache;
    pl->cache_dir = cache_dir ? strdup(cache_dir) : NULL;
    if (!pl->src.name || !pl->src.text || !pl->base_dir || !pl->out_dir ||
        (cache_dir && !pl->cache_dir))
        return FUSE_E_NOMEM;
    double t0 = sup_clock_ms();
    fuse_status st = parse_and_check(pl, inputs, n_inputs);
    pl->popts = NULL; /* borrowed for the parse only */
    pl->timings.check_ms = sup_clock_ms() - t0 - pl->timings.parse_ms;
    if (st == FUSE_OK && js)
        st = refuse_host_ops(pl);
    if (st == FUSE_OK && js)
        st = rt_keep_sources(pl); /* 16-bit and quantised sources stay so */
    if (st == FUSE_OK && js)
        st = alloc_buffers(pl, max_memory);
    if (st == FUSE_OK && js)
        st = rt_plan_compile(pl);
    if (st == FUSE_OK && js)
        rt_plan_lifetimes(pl); /* after compiling: spans are known */
    pl->timings.buffer_bytes = pl->planned_bytes;
    pl->timings.peak_bytes = pl->peak_bytes;
    return st;
}

void rt_log(const RtPlan *pl, int level, const char *fmt, ...)
{
    if (!pl->host || !pl->host->log)
        return;
    char msg[4096]; /* longer messages are cut: they name at most a path or two */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pl->host->log(level, msg, pl->host->log_user);
}

void rt_plan_free(RtPlan *pl)
{
    if (!pl)
        return;
    for (int i = 0; i < pl->n_codes; i++) /* incr */
        jit_code_free(pl->codes[i]);
    free(pl->codes);
    rt_group_bufs_free(pl);
    rt_unborrow_sources(pl); /* never free a host's borrowed buffer */
    free(pl->own_bufs);
    free(pl->mapped);
    if (pl->bufs && pl->ir)
        for (int i = 0; i <= 2 * pl->ir->n_tensors; i++) /* [2n]: scratch */
            io_free_aligned(pl->bufs[i]);
    free(pl->bufs);
    free(pl->count);
    free(pl->is_input);
    free(pl->src_dtype);
    rt_modes_free(pl->modes);
    rt_stream_free(pl->stream); /* stream */
    free(pl->group_fn);
    free(pl->sink_fn);
    free(pl->group_par);
    free(pl->absorbs);
    free(pl->span_head);
    free(pl->out_bind);
    free(pl->sink_par);
    free(pl->base_dir);
    free(pl->out_dir);
    free(pl->cache_dir);
    rt_weights_free(pl->weights);
    rt_dist_free(pl->dist);
    arena_free_all(&pl->arena);
    free(pl);
}
