/*
 * seminaive.c: the semi-naive fixpoint strategy for boolean components (SPEC
 * §6.2). The first sweep runs base kernels (only the joins without a recursive
 * operand, which would read nothing yet; schedule.c); then each sweep joins only
 * against the facts that are new since the previous one: the delta kernels
 * (lower/emit_delta.c) run with the previous-sweep slots (bufs[n_tensors + t])
 * bound to delta relations instead of the full ones, their results minus the
 * known facts become the next deltas, and the full relations grow by them. A group whose inputs have no new fact is not
 * run at all (status "cached"). This gives exactly the synchronous result when
 * every rule is monotone, which rt_semi_naive_applies checks: boolean LHS, only
 * JOIN contributions with a positive coefficient, at most one recursive operand
 * per join, and every other operand non-negative. Otherwise the caller falls back
 * to synchronous sweeps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "lower.h"
#include "modes.h"

static bool in_component(const RtPlan *pl, int g0, int g1, int tensor)
{
    for (int g = g0; g < g1; g++)
        if (pl->ir->groups[g]->tensor == tensor)
            return true;
    return false;
}

static bool buffer_non_negative(const RtPlan *pl, int t)
{
    const float *v = pl->bufs[t];
    if (rt_tensor_dtype(pl, t) == FUSE_F32) { /* plain float loads */
        bool ok = true;
        for (int64_t i = 0; i < pl->count[t]; i++)
            ok &= v[i] >= 0.0f; /* NaN fails, as below */
        return ok;
    }
    for (int64_t i = 0; i < pl->count[t]; i++)
        if (!(rt_elem_get(pl, v, i) >= 0.0))
            return false;
    return true;
}

/* The operands outside the component must be non-negative for the rules to be
 * monotone (a new fact can then never remove one). */
static bool operands_non_negative(const RtPlan *pl, const Group *grp, int g0, int g1)
{
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            const Operand *o = &grp->ops[i]->in[k];
            if (!(o->reads_prev && in_component(pl, g0, g1, o->tensor)) &&
                !buffer_non_negative(pl, o->tensor))
                return false;
        }
    return true;
}

/* Compiles the delta kernels of the plan's eligible groups once (a module of its
 * own, made on the first semi-naive run). */
static fuse_status compile_deltas(RtPlan *pl)
{
    RtModes *m = pl->modes;
    const IrProgram *p = pl->ir;
    if (m->delta_fn || !pl->js)
        return m->delta_fn ? FUSE_OK : FUSE_E_UNSUPPORTED;
    bool *want = calloc((size_t)p->n_groups + 1, sizeof *want);
    RtKernel *fns = calloc((size_t)p->n_groups + 1, sizeof *fns);
    void (**base)(float **) = calloc((size_t)p->n_groups + 1, sizeof *base);
    char prefix[48], *err = NULL;
    snprintf(prefix, sizeof prefix, "%ssn_", pl->prefix);
    LowerOptions opt;
    rt_lower_options(pl, prefix, &opt);
    JitModule *jm = want && fns && base ? jit_module_new(pl->js, prefix) : NULL;
    fuse_status st = jm ? FUSE_OK : FUSE_E_NOMEM;
    for (int g = 0; st == FUSE_OK && g < p->n_groups; g++)
        want[g] = lower_delta_eligible(p, g);
    if (st == FUSE_OK)
        st = lower_delta_program(p, jit_module_llvm(jm), &opt, want, &err);
    if (st == FUSE_OK)
        st = jit_module_optimize(pl->js, jm, &err);
    if (st == FUSE_OK)
        st = jit_module_load(pl->js, jm, &m->delta_code, &err);
    for (int g = 0; st == FUSE_OK && g < p->n_groups; g++) {
        char name[128];
        void *addr = NULL;
        if (!want[g])
            continue;
        lower_delta_name(&opt, g, false, name, sizeof name);
        st = jit_code_lookup(m->delta_code, name, &addr, &err);
        memcpy(&fns[g], &addr, sizeof fns[g]);
        lower_delta_name(&opt, g, true, name, sizeof name);
        if (st == FUSE_OK)
            st = jit_code_lookup(m->delta_code, name, &addr, &err);
        memcpy(&base[g], &addr, sizeof base[g]);
    }
    jit_module_free(jm);
    free(want);
    free(err);
    if (st != FUSE_OK) {
        free(fns);
        free(base);
        return st;
    }
    m->delta_fn = fns;
    m->base_fn = base;
    return FUSE_OK;
}

/* A delta kernel runs on the thread team when its relation has 2^16 cells or
 * more (each join then ORs its share of rows: emit_delta.c), else alone. */
static void run_delta(RtPlan *pl, int g)
{
    if (pl->dist && rt_dist_run_delta(pl, g, pl->modes->delta_fn[g]))
        return; /* this rank's share of the rows, merged across the ranks */
    int nth = pl->count[pl->ir->groups[g]->tensor] >= (1 << 16) ? rt_parallel_threads(pl->threads)
                                                                 : 1;
    if (nth > 1)
        rt_parallel_run(pl->modes->delta_fn[g], pl->bufs, nth, rt_stop_flag(pl));
    else
        pl->modes->delta_fn[g](pl->bufs, 0, 1, rt_no_barrier, rt_stop_flag(pl));
}

/* Before the first sweep: operands outside the component are computed already. */
bool rt_semi_naive_applies(RtPlan *pl, int g0, int g1)
{
    const IrProgram *p = pl->ir;
    for (int g = g0; g < g1; g++) {
        const Group *grp = p->groups[g];
        if (!lower_delta_eligible(p, g) || !pl->bufs[p->n_tensors + grp->tensor] ||
            !operands_non_negative(pl, grp, g0, g1))
            return false;
    }
    return compile_deltas(pl) == FUSE_OK;
}

/* The delta buffer of group g (allocated on first use; the caller fills the
 * cells the sweeps read). */
static float *delta_buffer(RtPlan *pl, int g)
{
    RtModes *m = pl->modes;
    int t = pl->ir->groups[g]->tensor;
    size_t bytes = (size_t)pl->count[t] * rt_elem_bytes(pl);
    if (!m->delta[g])
        m->delta[g] = io_alloc_aligned(bytes ? bytes : sizeof(float));
    if (!m->delta[g]) /* the fixpoint stops unconverged: say why */
        rt_log_nomem(pl, pl->ir->tensors[t], "the semi-naive delta of", bytes);
    return m->delta[g];
}

/* True when some operand of group g reads a component tensor with new facts. */
static bool group_has_news(const RtPlan *pl, int g, const bool *has_news)
{
    const Group *grp = pl->ir->groups[g];
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            const Operand *o = &grp->ops[i]->in[k];
            if (o->reads_prev && has_news[o->tensor])
                return true;
        }
    return false;
}

/* The float32 merge of `cells` cells: new facts (set in cur, not in full) go
 * to delta and full, cur is cleared for the next sweep; returns their count. */
static int64_t merge_f32(float *cur, float *full, float *delta, int64_t cells)
{
    int64_t news = 0;
    for (int64_t i = 0; i < cells; i++) {
        bool is_new = cur[i] != 0.0f && full[i] == 0.0f;
        delta[i] = is_new ? 1.0f : 0.0f;
        if (is_new)
            full[i] = 1.0f;
        cur[i] = 0.0f;
        news += is_new;
    }
    return news;
}

/* Span i of the cells of group g's relation its sweeps touch (one span of
 * all, or this MPI rank's blocks of rows when the sweeps stay in row blocks:
 * the others are not read), as byte offsets into its buffers; false past the
 * last. */
static bool swept_bytes(const RtPlan *pl, int g, int i, size_t *at, size_t *bytes)
{
    int64_t lo, hi;
    if (!rt_dist_delta_span(pl, g, i, &lo, &hi))
        return false;
    *at = (size_t)lo * rt_elem_bytes(pl);
    *bytes = (size_t)(hi - lo) * rt_elem_bytes(pl);
    return true;
}

/* merge over the span of `bytes` bytes at `at`. */
static int64_t merge_span(RtPlan *pl, int g, bool was_run, size_t at, size_t bytes)
{
    int n = pl->ir->n_tensors, t = pl->ir->groups[g]->tensor;
    size_t es = rt_elem_bytes(pl);
    char *cur = (char *)pl->bufs[t] + at, *full = (char *)pl->bufs[n + t] + at;
    char *delta = (char *)pl->modes->delta[g] + at;
    int64_t news = 0, cells = (int64_t)(bytes / es);
    bool is_f32 = pl->precision == FUSE_PRECISION_FP32; /* float loads, as fast as before */
    if (!was_run) { /* cur is still all zeros */
        memset(delta, 0, bytes);
        return 0;
    }
    if (is_f32)
        return merge_f32((float *)cur, (float *)full, (float *)delta, cells);
    for (int64_t i = 0; i < cells; i++) {
        bool is_new = rt_elem_get(pl, cur, i) != 0.0 && rt_elem_get(pl, full, i) == 0.0;
        rt_elem_set(pl, delta, i, is_new ? 1.0 : 0.0);
        if (is_new)
            rt_elem_set(pl, full, i, 1.0);
        rt_elem_set(pl, cur, i, 0.0);
        news += is_new;
    }
    return news;
}

/* Merges group g's result (cur) into its full relation (prev): new facts go to
 * the delta and are counted, and cur is left all zeros, as the next sweep's
 * delta kernel needs it (one pass over the cells, not a merge and a clear). */
static int64_t merge(RtPlan *pl, int g, bool was_run)
{
    int64_t news = 0;
    size_t at, bytes;
    for (int i = 0; swept_bytes(pl, g, i, &at, &bytes); i++)
        news += merge_span(pl, g, was_run, at, bytes);
    return news;
}

/* One delta sweep over [g0, g1); returns the number of new facts. */
static int64_t delta_sweep(RtPlan *pl, int g0, int g1, int it, bool *has_news)
{
    int n = pl->ir->n_tensors;
    float **saved = calloc((size_t)(g1 - g0), sizeof *saved);
    bool *ran = calloc((size_t)(g1 - g0), sizeof *ran);
    RtTraceEntry *es = calloc((size_t)(g1 - g0), sizeof *es);
    if (!saved || !ran || !es) {
        free(saved), free(ran), free(es);
        return -1;
    }
    for (int g = g0; g < g1; g++) { /* bind the deltas in place of the full relations */
        int t = pl->ir->groups[g]->tensor;
        saved[g - g0] = pl->bufs[n + t];
        pl->bufs[n + t] = pl->modes->delta[g];
    }
    for (int g = g0; g < g1; g++) {
        RtTraceEntry *e = &es[g - g0];
        *e = (RtTraceEntry){.group = g, .component = pl->ir->groups[g]->component,
                            .sweep = it, .status = RT_EVAL_CACHED, .temperature = NAN};
        if (!group_has_news(pl, g, has_news))
            continue;
        double t0 = sup_clock_ms();
        run_delta(pl, g); /* into cur, all zeros (rt_semi_naive_run, merge) */
        e->ms = sup_clock_ms() - t0;
        ran[g - g0] = true;
    }
    for (int g = g0; g < g1; g++)
        pl->bufs[n + pl->ir->groups[g]->tensor] = saved[g - g0];
    int64_t total = 0;
    for (int g = g0; g < g1; g++) {
        RtTraceEntry *e = &es[g - g0];
        e->changed = merge(pl, g, ran[g - g0]);
        e->max_delta = e->changed ? 1.0 : 0.0;
        if (ran[g - g0])
            e->status = e->changed ? RT_EVAL_EVALUATED : RT_EVAL_UNCHANGED;
        has_news[pl->ir->groups[g]->tensor] = e->changed > 0;
        total += e->changed;
        rt_trace_add(&pl->modes->trace, e);
    }
    free(saved), free(ran), free(es);
    return total;
}

int rt_semi_naive_run(RtPlan *pl, int g0, int g1, int first_sweep, int max_iters,
                      bool *is_converged)
{
    bool *has_news = calloc((size_t)pl->ir->n_tensors + 1, sizeof *has_news);
    int it = first_sweep;
    *is_converged = false;
    bool ok = has_news != NULL;
    for (int g = g0; g < g1 && ok; g++)
        ok = delta_buffer(pl, g) != NULL;
    /* MPI: every rank has its buffers, or none goes on */
    if (rt_dist_agree(pl, ok ? FUSE_OK : FUSE_E_NOMEM, "to allocate the semi-naive deltas") !=
        FUSE_OK) {
        free(has_news);
        return it;
    }
    for (int g = g0; g < g1; g++) { /* after the first sweep every fact is new */
        int t = pl->ir->groups[g]->tensor;
        float *d = pl->modes->delta[g];
        size_t at, bytes; /* the cells the sweeps read (MPI: this rank's blocks) */
        for (int i = 0; swept_bytes(pl, g, i, &at, &bytes); i++)
            memcpy((char *)d + at, (char *)pl->bufs[pl->ir->n_tensors + t] + at, bytes);
        has_news[t] = true;
    }
    for (int g = g0; g < g1; g++) { /* the delta kernels OR into zeros */
        size_t at, bytes;
        for (int i = 0; swept_bytes(pl, g, i, &at, &bytes); i++)
            memset((char *)pl->bufs[pl->ir->groups[g]->tensor] + at, 0, bytes);
    }
    for (; it < max_iters && !rt_stop_now(pl); it++) {
        int64_t local = delta_sweep(pl, g0, g1, it, has_news);
        /* MPI: a rank that cannot go on (out of memory, interrupted) stops all */
        if (pl->dist && (local < 0 || rt_interrupted(pl)))
            local = INT64_MAX;
        int64_t news = rt_dist_max(pl, local);
        if (news == INT64_MAX)
            break; /* not converged */
        if (news <= 0) {
            *is_converged = news == 0;
            it++;
            break;
        }
    }
    for (int g = g0; g < g1; g++) { /* cur becomes the full relation */
        int t = pl->ir->groups[g]->tensor;
        size_t at, bytes;
        for (int i = 0; swept_bytes(pl, g, i, &at, &bytes); i++)
            memcpy((char *)pl->bufs[t] + at, (char *)pl->bufs[pl->ir->n_tensors + t] + at, bytes);
        rt_dist_delta_done(pl, g); /* MPI row blocks made whole */
    }
    free(has_news);
    return it;
}
