/*
 * plan.c: compiles a program for its input shapes.
 *
 * rt_plan_new drives the stages: parse (frontend), build and order (ir), probe the
 * sources for their sizes (sources.c), infer shapes, lower to one LLVM module,
 * optimise and load it (jit), look the kernels up and allocate one buffer per
 * tensor. Without a JIT session it only checks (fuse_program). Diagnostics name
 * the statement involved (file:line:col).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "jit.h"
#include "lower.h"
#include "runtime.h"

/* ---- compile ---- */

/* Kernel names in compiled objects: constant, so one object serves every runner
 * (each loads it into a JITDylib of its own; issue 5). */
#define RT_KERNEL_PREFIX "fuse_"

static fuse_status alloc_buffers(RtPlan *pl)
{
    IrProgram *p = pl->ir;
    int n = p->n_tensors;
    pl->bufs = calloc((size_t)n * 2 + 1, sizeof *pl->bufs);
    pl->count = calloc((size_t)n + 1, sizeof *pl->count);
    if (!pl->bufs || !pl->count)
        return FUSE_E_NOMEM;
    for (int i = 0; i < n; i++) {
        IrTensor *t = p->tensors[i];
        pl->count[i] = rt_shape_count(t->rank, t->shape);
        if (pl->count[i] < 0 || (uint64_t)pl->count[i] > ((uint64_t)1 << 40))
            return fe_error(&pl->dl, FUSE_E_SHAPE, t->span, "tensor %s is too large", t->name);
        size_t bytes = (size_t)pl->count[i] * sizeof(float);
        pl->bufs[i] = rt_alloc_aligned(bytes);
        if (t->is_read_prev)
            pl->bufs[n + i] = rt_alloc_aligned(bytes);
        if (!pl->bufs[i] || (t->is_read_prev && !pl->bufs[n + i]))
            return FUSE_E_NOMEM;
        if (t->kind == TEN_CONST)
            memcpy(pl->bufs[i], t->data, bytes);
    }
    /* perf (issue 4): packing scratch of the contraction kernels; FLOPs per run */
    pl->timings.flops = lower_flops(p);
    LowerOptions opt = {.prefix = RT_KERNEL_PREFIX, .vector_bits = jit_vector_bits(pl->js)};
    pl->scratch_bytes = lower_scratch_bytes(p, &opt);
    if (pl->scratch_bytes && !(pl->bufs[2 * n] = rt_alloc_aligned(pl->scratch_bytes)))
        return FUSE_E_NOMEM;
    pl->scratch_threads = 1;
    return FUSE_OK;
}

static fuse_status jit_fail(RtPlan *pl, fuse_status st, char *err)
{
    fe_error(&pl->dl, st, (Span){0}, "code generation failed: %s", err ? err : "unknown");
    free(err);
    return st;
}

static fuse_status lookup_kernels(RtPlan *pl, const LowerOptions *opt)
{
    IrProgram *p = pl->ir;
    pl->group_fn = calloc((size_t)p->n_groups + 1, sizeof *pl->group_fn);
    pl->sink_fn = calloc((size_t)p->n_sink_groups + 1, sizeof *pl->sink_fn);
    pl->group_par = calloc((size_t)p->n_groups + 1, sizeof *pl->group_par);
    pl->sink_par = calloc((size_t)p->n_sink_groups + 1, sizeof *pl->sink_par);
    if (!pl->group_fn || !pl->sink_fn || !pl->group_par || !pl->sink_par)
        return FUSE_E_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++) {
            char name[128], *err = NULL;
            void *addr = NULL;
            lower_kernel_name(opt, pass == 1, g, name, sizeof name);
            fuse_status st = jit_code_lookup(pl->code, name, &addr, &err);
            if (st != FUSE_OK)
                return jit_fail(pl, st, err);
            /* Object pointer to function pointer: the JIT returns code addresses. */
            RtKernel k;
            memcpy(&k, &addr, sizeof k);
            (pass ? pl->sink_fn : pl->group_fn)[g] = k;
            (pass ? pl->sink_par : pl->group_par)[g] =
                lower_group_is_parallel(p, pass ? p->sink_groups[g] : p->groups[g], opt);
        }
    }
    return FUSE_OK;
}

static fuse_status build_module(RtPlan *pl, JitModule **out, char **err)
{
    LowerOptions opt = {.prefix = pl->prefix, .vector_bits = jit_vector_bits(pl->js)};
    JitModule *jm = jit_module_new(pl->js, pl->prefix);
    if (!jm)
        return FUSE_E_NOMEM;
    fuse_status st = lower_program(pl->ir, jm, &opt, err);
    if (st != FUSE_OK) {
        jit_module_free(jm);
        return st;
    }
    *out = jm;
    return FUSE_OK;
}

/* ---- compile through the code cache (issue 5) ---- */

/* The cache key of the plan: canonical IR plus every option that changes code.
 * A field added to LowerOptions that changes code must be added to `opts`. */
static fuse_status plan_key(RtPlan *pl, const LowerOptions *opt, JitKey *key)
{
    unsigned char *ir = NULL;
    size_t n = 0;
    fuse_status st = ir_serialize(pl->ir, &ir, &n);
    if (st != FUSE_OK)
        return st;
    /* The build ID makes any rebuild of the code generator a different key. */
    struct {
        int64_t opts[5];
        unsigned char build_id[64];
    } k = {{opt->vector_bits, opt->l1_bytes, opt->l2_bytes, opt->l3_bytes, opt->no_contract},
           {0}};
    rt_build_id(k.build_id, sizeof k.build_id);
    jit_cache_key(pl->js, ir, n, &k, sizeof k, key);
    free(ir);
    return FUSE_OK;
}

/* Lowers, optimises and compiles the plan to an object file (*obj malloc'd). */
static fuse_status compile_object(RtPlan *pl, const LowerOptions *opt, void **obj, size_t *n,
                                  char **err)
{
    double t0 = rt_clock_ms();
    JitModule *jm = jit_module_new(pl->js, RT_KERNEL_PREFIX);
    if (!jm)
        return FUSE_E_NOMEM;
    fuse_status st = lower_program(pl->ir, jm, opt, err);
    double t1 = rt_clock_ms();
    if (st == FUSE_OK)
        st = jit_module_optimize(pl->js, jm, err);
    if (st == FUSE_OK)
        st = jit_module_emit_object(pl->js, jm, obj, n, err);
    jit_module_free(jm);
    pl->timings.lower_ms = t1 - t0;
    pl->timings.compile_ms = rt_clock_ms() - t1;
    return st;
}

/* A cache problem never fails a compilation; the user hears of it. */
static void cache_warn(char *warning)
{
    if (warning)
        fprintf(stderr, "fuse-jit: warning: %s\n", warning);
    free(warning);
}

/* The plan's object: from the cache when there, else compiled (and stored). */
static fuse_status find_object(RtPlan *pl, const LowerOptions *opt, void **obj, size_t *n,
                               char **err)
{
    JitKey key;
    JitHit hit = JIT_MISS;
    char *warning = NULL;
    double t0 = rt_clock_ms();
    fuse_status st = pl->cache ? plan_key(pl, opt, &key) : FUSE_OK;
    if (st == FUSE_OK && pl->cache)
        st = jit_cache_get(pl->cache, &key, pl->cache_dir, obj, n, &hit, &warning);
    cache_warn(warning);
    pl->timings.cache_load_ms = rt_clock_ms() - t0;
    pl->timings.is_cache_hit = hit != JIT_MISS;
    if (st != FUSE_OK || hit != JIT_MISS)
        return st;
    st = compile_object(pl, opt, obj, n, err);
    if (st == FUSE_OK && pl->cache) {
        st = jit_cache_put(pl->cache, &key, pl->cache_dir, *obj, *n, &warning);
        cache_warn(warning);
    }
    return st;
}

static fuse_status compile(RtPlan *pl)
{
    LowerOptions opt = {.prefix = RT_KERNEL_PREFIX, .vector_bits = jit_vector_bits(pl->js)};
    void *obj = NULL;
    size_t n = 0;
    char *err = NULL;
    fuse_status st = find_object(pl, &opt, &obj, &n, &err);
    double t0 = rt_clock_ms();
    if (st == FUSE_OK)
        st = jit_object_load(pl->js, obj, n, &pl->code, &err);
    free(obj);
    if (st != FUSE_OK)
        return jit_fail(pl, st, err);
    st = lookup_kernels(pl, &opt);
    /* Loading links the object: part of the cache load on a hit, else of compiling. */
    double link_ms = rt_clock_ms() - t0;
    if (pl->timings.is_cache_hit)
        pl->timings.cache_load_ms += link_ms;
    else
        pl->timings.compile_ms += link_ms;
    return st;
}

fuse_status rt_plan_emit(RtPlan *pl, const char *what, char **out, char **err)
{
    JitModule *jm = NULL;
    fuse_status st = build_module(pl, &jm, err);
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
    double t0 = rt_clock_ms();
    fuse_status st = fe_parse(&pl->arena, &pl->src, &pl->dl, &pl->ast);
    pl->timings.parse_ms = rt_clock_ms() - t0;
    if (st == FUSE_OK)
        st = ir_build(&pl->arena, &pl->ast, &pl->dl, &pl->ir);
    if (st == FUSE_OK)
        st = ir_order(pl->ir, &pl->dl);
    if (st == FUSE_OK)
        st = rt_check_inputs(pl, inputs, n_inputs);
    if (st != FUSE_OK)
        return st;
    ShapeFact *facts = arena_alloc(&pl->arena, sizeof *facts * ((size_t)pl->ir->n_tensors + 1));
    pl->is_input = calloc((size_t)pl->ir->n_tensors + 1, sizeof *pl->is_input);
    if (!facts || !pl->is_input)
        return FUSE_E_NOMEM;
    bool is_skipped = false;
    st = rt_probe_sources(pl, inputs, n_inputs, facts, &is_skipped);
    if (is_skipped)
        return FUSE_OK; /* a source is not readable yet: sizes are checked per runner */
    if (st == FUSE_OK)
        st = ir_infer_shapes(pl->ir, facts, &pl->dl);
    if (st == FUSE_OK)
        st = ir_check_builtins(pl->ir, &pl->dl);
    return st;
}

fuse_status rt_plan_new(RtPlan **out, const char *text, const char *name,
                        const char *base_dir, const char *out_dir, bool write_sinks,
                        const fuse_input *inputs, size_t n_inputs, JitSession *js,
                        const char *prefix, JitCache *cache, const char *cache_dir)
{
    RtPlan *pl = calloc(1, sizeof *pl);
    *out = pl;
    if (!pl)
        return FUSE_E_NOMEM;
    arena_init(&pl->arena);
    fe_diags_init(&pl->dl, &pl->arena);
    pl->src.name = arena_strdup(&pl->arena, name ? name : "<input>");
    pl->src.text = arena_strdup(&pl->arena, text);
    pl->src.len = strlen(text);
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
    double t0 = rt_clock_ms();
    fuse_status st = parse_and_check(pl, inputs, n_inputs);
    pl->timings.check_ms = rt_clock_ms() - t0 - pl->timings.parse_ms;
    if (st == FUSE_OK && js)
        st = alloc_buffers(pl);
    if (st == FUSE_OK && js)
        st = compile(pl);
    return st;
}

void rt_plan_free(RtPlan *pl)
{
    if (!pl)
        return;
    jit_code_free(pl->code);
    rt_unborrow_sources(pl); /* issue 7: never free a host's borrowed buffer */
    free(pl->own_bufs);
    if (pl->bufs && pl->ir)
        for (int i = 0; i <= 2 * pl->ir->n_tensors; i++) /* [2n]: scratch (issue 4) */
            rt_free_aligned(pl->bufs[i]);
    free(pl->bufs);
    free(pl->count);
    free(pl->is_input);
    rt_modes_free(pl->modes); /* issue 6 */
    free(pl->group_fn);
    free(pl->sink_fn);
    free(pl->group_par); /* issue 4 */
    free(pl->sink_par);
    free(pl->base_dir);
    free(pl->out_dir);
    free(pl->cache_dir); /* issue 5 */
    arena_free_all(&pl->arena);
    free(pl);
}
