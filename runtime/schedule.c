/*
 * schedule.c: runs a plan's equation groups component by component (SPEC §6.2).
 *
 * Groups come in dependency order and the groups of one strongly connected
 * component are contiguous. A non-recursive component runs once. A recursive
 * component runs one sweep in single mode; in fixpoint and demand mode it repeats
 * sweeps (each reads the previous sweep's values: Jacobi) until no value changes
 * (floats: |new - old| <= tol + 1e-5 |new|; booleans exactly) and no temperature
 * schedule of the component still changes, or until max_iters sweeps, which is
 * FUSE_E_NOT_CONVERGED with every value still computed. In fixpoint mode a
 * non-recursive component whose temperature schedule varies iterates too (an
 * annealing loop). With the semi_naive strategy a boolean component switches to
 * delta sweeps after its first sweep when its rules allow (seminaive.c). With
 * Monte Carlo projection the groups run their sampled kernels (montecarlo.c). A
 * `want` mask (demand closures) skips every group outside it. Every group of
 * every sweep is logged in the plan's trace.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "stream.h"

/* ---- closures ---- */

/* The equation group computing tensor t, or -1 (a source, constant or
 * temporary): ir_order keeps IrTensor.group at its group's place in the order. */
static int group_of_tensor(const IrProgram *p, int tensor)
{
    const IrTensor *t = p->tensors[tensor];
    return t->kind == TEN_DEFINED ? t->group : -1;
}

/* The tensor whose group an operand reading t needs: t when an equation defines
 * it; for an earlier step of a streaming tensor, the tensor
 * computing the steps, so its store keeps being filled; else -1. */
static int needed_tensor(const IrProgram *p, int t)
{
    const IrTensor *x = p->tensors[t];
    if (x->is_stream_state)
        x = p->tensors[p->streams[x->stream - 1]->tensor];
    return x->kind == TEN_DEFINED ? x->id : -1;
}

/* Marks group g and every group it needs in want[]. Depth first with its own
 * stack (each group enters it once), so a chain of 100,000 equations cannot
 * overflow the C stack. Out of memory, it marks every group: more
 * work, never a missing value. */
static void closure_visit(const IrProgram *p, int g, bool *want)
{
    if (g < 0 || want[g])
        return;
    int *stack = malloc(((size_t)p->n_groups + 1) * sizeof *stack), n = 0;
    if (!stack) {
        for (int h = 0; h < p->n_groups; h++)
            want[h] = true;
        return;
    }
    want[g] = true;
    stack[n++] = g;
    while (n > 0) {
        const Group *grp = p->groups[stack[--n]];
        for (int i = 0; i < grp->n_ops; i++)
            for (int k = 0; k < grp->ops[i]->n_in; k++) {
                int t = needed_tensor(p, grp->ops[i]->in[k].tensor);
                int h = t >= 0 ? group_of_tensor(p, t) : -1;
                if (h >= 0 && !want[h]) {
                    want[h] = true;
                    stack[n++] = h;
                }
            }
    }
    free(stack);
}

void rt_sched_closure(const RtPlan *pl, int tensor, bool *want)
{
    closure_visit(pl->ir, group_of_tensor(pl->ir, tensor), want);
}

/* ---- temperatures ---- */

/* Sets the temperature tensor of group g for sweep `it`; returns the T (NAN: none). */
static double set_temperature(RtPlan *pl, int g, int it)
{
    RtModes *m = pl->modes;
    if (!m)
        return NAN;
    const IrTensor *t = pl->ir->tensors[pl->ir->groups[g]->tensor];
    const RtSchedule *s = rt_sched_find(m, t->name);
    double v = s ? rt_sched_value(s, t->name, it) : 0.0;
    if (m->temp_tensor && m->temp_tensor[g] >= 0)
        rt_elem_set(pl, pl->bufs[m->temp_tensor[g]], 0, v);
    return s ? v : NAN;
}

/* True when a schedule of a group in [g0, g1) has not settled at sweep it: a later
 * sweep gets another temperature. */
static bool schedule_moves(const RtPlan *pl, int g0, int g1, int it)
{
    const RtModes *m = pl->modes;
    for (int g = g0; m && g < g1; g++) {
        const IrTensor *t = pl->ir->tensors[pl->ir->groups[g]->tensor];
        const RtSchedule *s = rt_sched_find(m, t->name);
        if (s && !rt_sched_settled(s, t->name, it))
            return true;
    }
    return false;
}

/* True when a group in [g0, g1) has a schedule, or a temperature tensor. */
static bool has_schedule(const RtPlan *pl, int g0, int g1)
{
    const RtModes *m = pl->modes;
    for (int g = g0; m && g < g1; g++)
        if (rt_sched_find(m, pl->ir->tensors[pl->ir->groups[g]->tensor]->name) ||
            (m->temp_tensor && m->temp_tensor[g] >= 0))
            return true;
    return false;
}

/* True when a group in [g0, g1) has a schedule that may change between sweeps:
 * in fixpoint mode its component then iterates even without recursion. */
static bool has_varying_schedule(const RtPlan *pl, int g0, int g1)
{
    for (int g = g0; pl->modes && g < g1; g++) {
        const IrTensor *t = pl->ir->tensors[pl->ir->groups[g]->tensor];
        const RtSchedule *s = rt_sched_find(pl->modes, t->name);
        if (s && s->kind != RT_SCHED_CONST)
            return true;
    }
    return false;
}

/* ---- the change test ---- */

/* The buffer holding group g's previous value: the prev buffer of its tensor or a
 * snapshot of the mode state. NULL on OOM. */
static float *prev_buffer(RtPlan *pl, int g)
{
    int t = pl->ir->groups[g]->tensor;
    float *prev = pl->bufs[pl->ir->n_tensors + t];
    if (prev)
        return prev;
    RtModes *m = pl->modes;
    if (!m || !m->snap)
        return NULL;
    if (!m->snap[g]) {
        size_t bytes = (size_t)pl->count[t] * rt_elem_bytes(pl);
        m->snap[g] = io_alloc_aligned(bytes ? bytes : sizeof(double));
        if (m->snap[g])
            memset(m->snap[g], 0, bytes);
        else /* every sweep then counts as a change: say why it cannot converge */
            rt_log_nomem(pl, pl->ir->tensors[t], "the previous-sweep snapshot of", bytes);
    }
    return m->snap[g];
}

/* The counts of one change test. */
typedef struct Changes {
    int64_t changed, diverged;
    double max_delta;
} Changes;

/* One cell's change from b (previous) to a (current). */
static inline void count_change(double a, double b, bool is_bool, bool is_later, double tol,
                                Changes *c)
{
    if (a == b || (isnan(a) && isnan(b)))
        return;
    if (is_later && isfinite(b) && !isfinite(a))
        c->diverged++;
    double d = fabs(a - b);
    if (d > c->max_delta || isnan(d))
        c->max_delta = isnan(d) ? INFINITY : d;
    if (is_bool || isnan(d) || d > tol + 1e-5 * fabs(a))
        c->changed++;
}

/* The cells [*lo, *hi) of span i of group g's value a sweep computed (false
 * past the last): all of them, or after a semi-naive base sweep on MPI ranks
 * this rank's blocks of rows (rt_dist_run_base). */
static bool swept_span(const RtPlan *pl, int g, bool is_base, int i, int64_t *lo, int64_t *hi)
{
    if (is_base)
        return rt_dist_delta_span(pl, g, i, lo, hi);
    *lo = 0;
    *hi = pl->count[pl->ir->groups[g]->tensor];
    return i == 0;
}

/* Compares group g's value with its previous one, fills the entry's counters and
 * copies the value into the previous buffer (the cells the sweep computed).
 * From the second sweep on, a cell that goes from a finite value to inf or NaN
 * counts as diverged: values that blow up stop changing once infinite, which
 * must not read as convergence. */
static void compare_and_copy(RtPlan *pl, int g, double tol, bool is_later, bool is_base,
                             RtTraceEntry *e)
{
    int t = pl->ir->groups[g]->tensor;
    const float *cur = pl->bufs[t];
    float *prev = prev_buffer(pl, g);
    bool is_bool = pl->ir->tensors[t]->is_bool;
    if (!prev) {
        e->changed = pl->count[t];
        e->max_delta = INFINITY;
        return;
    }
    Changes c = {0};
    int64_t lo, hi;
    for (int s = 0; swept_span(pl, g, is_base, s, &lo, &hi); s++) {
        if (pl->precision == FUSE_PRECISION_FP32) /* float loads, as fast as before */
            for (int64_t i = lo; i < hi; i++)
                count_change(cur[i], prev[i], is_bool, is_later, tol, &c);
        else
            for (int64_t i = lo; i < hi; i++)
                count_change(rt_elem_get(pl, cur, i), rt_elem_get(pl, prev, i), is_bool,
                             is_later, tol, &c);
        size_t es = rt_elem_bytes(pl);
        memcpy((char *)prev + (size_t)lo * es, (const char *)cur + (size_t)lo * es,
               (size_t)(hi - lo) * es);
    }
    pl->modes->n_diverged += c.diverged;
    e->changed = c.changed;
    e->max_delta = c.max_delta;
}

/* ---- running components ---- */

/* Runs group g for sweep it; is_base: its semi-naive base kernel (seminaive.c). */
static void run_one(RtPlan *pl, int g, int it, bool is_base, RtTraceEntry *e)
{
    e->group = g;
    e->component = pl->ir->groups[g]->component;
    e->sweep = it;
    e->temperature = set_temperature(pl, g, it);
    const RtModes *m = pl->modes;
    double t0 = sup_clock_ms();
    if (pl->dist && (is_base || m->mc_fn))
        rt_dist_gather_all(pl); /* MPI: these kernels read any tensor whole */
    if (is_base) {
        rt_semi_naive_base(pl, g);
    } else if (m->mc_fn) {
        m->mc_fn[g](pl->bufs);
        e->samples = m->mc_samples[g];
    } else if (g > pl->fused_from && g <= pl->fused_until) {
        e->is_fused = true; /* the span's kernel computed it (plan_compile.c) */
    } else {
        rt_run_group(pl, false, g); /* in a span: the span's kernel */
        int h = pl->span_head ? pl->span_head[g] : g;
        bool is_span = pl->absorbs && pl->absorbs[h] > 0;
        pl->fused_from = is_span ? h : -1;
        pl->fused_until = is_span ? h + pl->absorbs[h] : -1;
    }
    e->ms = e->is_fused ? 0.0 : sup_clock_ms() - t0; /* its time is in the span's kernel */
}

/* One sweep over the groups [g0, g1); true when some value changed. */
static bool sweep(RtPlan *pl, int g0, int g1, int it, bool is_compared, bool is_base,
                  double tol)
{
    bool any = false;
    RtTraceEntry *es = calloc((size_t)(g1 - g0), sizeof *es);
    for (int g = g0; g < g1; g++) {
        RtTraceEntry e = {0};
        run_one(pl, g, it, is_base, &e);
        if (es)
            es[g - g0] = e;
    }
    /* Jacobi: every group of the sweep read the previous values, so compare and
     * copy only once the whole sweep ran (each whole: MPI row blocks gathered;
     * a semi-naive base sweep's blocks of rows stay: its sweeps keep them). */
    if (pl->dist && is_compared)
        rt_dist_gather_all(pl);
    for (int g = g0; g < g1; g++) {
        RtTraceEntry e = es ? es[g - g0] : (RtTraceEntry){.group = g, .sweep = it};
        e.status = RT_EVAL_EVALUATED;
        if (is_compared) {
            compare_and_copy(pl, g, tol, it > 0, is_base, &e);
            any |= e.changed > 0;
            if (e.changed == 0)
                e.status = RT_EVAL_UNCHANGED;
        }
        rt_trace_add(&pl->modes->trace, &e);
    }
    for (int g = g0; g < g1 && is_base; g++)
        rt_dist_base_done(pl, g); /* MPI: its blocks of rows from here on */
    free(es);
    return any;
}

static bool run_component(RtPlan *pl, RtTraceComp *c, bool iterate)
{
    const RtModes *m = pl->modes;
    int g0 = c->first_group, g1 = c->first_group + c->n_groups;
    if (!iterate) {
        sweep(pl, g0, g1, 0, false, false, m->tol);
        c->sweeps = 1;
        c->is_converged = !c->is_recursive;
        return true;
    }
    c->is_iterated = true;
    bool is_semi = m->strategy == FUSE_STRATEGY_SEMI_NAIVE && !m->mc_fn &&
                   rt_semi_naive_applies(pl, g0, g1);
    is_semi = !rt_dist_any(pl, !is_semi); /* MPI ranks: semi-naive on all or none */
    pl->modes->n_diverged = 0;
    int sweeps = is_semi && !has_schedule(pl, g0, g1) && !rt_dist_stop_agreed(pl)
                     ? rt_semi_naive_blocks(pl, g0, g1, m->max_iters, &c->is_converged)
                     : -1;
    if (sweeps >= 0) { /* semi-naive from the base sweep on, block by block */
        c->sweeps = sweeps;
        c->is_semi_naive = sweeps > 1 || !c->is_converged;
        return c->is_converged;
    }
    for (int it = 0; it < m->max_iters && !rt_dist_stop_agreed(pl); it++) {
        bool changed = rt_dist_any(pl, sweep(pl, g0, g1, it, true, is_semi, m->tol));
        c->sweeps = it + 1;
        c->is_diverged = m->n_diverged > 0;
        if (c->is_diverged)
            return false; /* inf and NaN stay put: no later sweep can undo it */
        if (!changed && !schedule_moves(pl, g0, g1, it)) {
            c->is_converged = true;
            return true;
        }
        if (is_semi) {
            c->is_semi_naive = true;
            c->sweeps = rt_semi_naive_run(pl, g0, g1, 1, m->max_iters, &c->is_converged);
            return c->is_converged;
        }
    }
    return false;
}

static void skip_component(RtPlan *pl, const RtTraceComp *c)
{
    for (int g = c->first_group; g < c->first_group + c->n_groups; g++) {
        RtTraceEntry e = {.group = g, .component = c->component, .status = RT_EVAL_SKIPPED,
                          .temperature = NAN};
        rt_trace_add(&pl->modes->trace, &e);
    }
}

/* SPEC §6: single mode gives a recursive component one sweep, which is rarely
 * what a program like `Acc[i] = X[i] + 0.5 Acc[i]` means: say so, once a run. */
static void warn_single_sweep(const RtPlan *pl, int g0, int g1)
{
    const IrProgram *p = pl->ir;
    char others[64] = "";
    if (g1 - g0 > 1)
        snprintf(others, sizeof others, " (and %d more of its component)", g1 - g0 - 1);
    rt_log(pl, FUSE_LEVEL_WARNING,
           "%s%s reads itself: single mode ran one sweep, reading zeros for values not "
           "computed yet; use --mode fixpoint (REPL: :set mode fixpoint) to iterate",
           p->tensors[p->groups[g0]->tensor]->name, others);
}

fuse_status rt_sched_run(RtPlan *pl, const bool *want, bool force_fixpoint,
                         const char *mode_name)
{
    const IrProgram *p = pl->ir;
    RtModes *m = pl->modes;
    static const char *const strat[] = {"synchronous", "semi_naive"};
    rt_trace_reset(&m->trace, mode_name, strat[m->strategy == FUSE_STRATEGY_SEMI_NAIVE]);
    m->trace.step = p->n_streams ? rt_stream_steps(pl) : -1; /* steps committed before */
    bool iterate = force_fixpoint || m->mode != FUSE_MODE_SINGLE;
    char *err = NULL;
    fuse_status mst = rt_mc_prepare(pl, &err);
    if (mst != FUSE_OK) {
        fe_error(&pl->dl, mst, (Span){0}, "Monte Carlo kernels: %s", err ? err : "failed");
        free(err);
        return mst;
    }
    bool ok = true;
    rt_reuse_begin(pl, force_fixpoint); /* dead buffers taken over (footprint.c) */
    pl->fused_from = pl->fused_until = -1;
    for (int g = 0; m->snap && g < p->n_groups; g++)
        if (m->snap[g])
            memset(m->snap[g], 0, (size_t)pl->count[p->groups[g]->tensor] * rt_elem_bytes(pl));
    double t0 = sup_clock_ms();
    for (int g0 = 0, g1; g0 < p->n_groups && !rt_stop_now(pl); g0 = g1) {
        for (g1 = g0 + 1; g1 < p->n_groups && p->groups[g1]->component == p->groups[g0]->component;)
            g1++;
        RtTraceComp c = {.component = p->groups[g0]->component, .first_group = g0,
                         .n_groups = g1 - g0, .is_recursive = p->groups[g0]->is_recursive};
        bool is_wanted = !want;
        for (int g = g0; g < g1 && !is_wanted; g++)
            is_wanted = want[g];
        /* an unwanted group the last span's kernel computed anyway: say so */
        is_wanted |= g0 > pl->fused_from && g1 - 1 <= pl->fused_until;
        c.is_skipped = !is_wanted;
        if (!is_wanted)
            skip_component(pl, &c);
        else
            ok &= run_component(pl, &c, iterate && (c.is_recursive ||
                                                    has_varying_schedule(pl, g0, g1)));
        if (is_wanted && c.is_recursive && !iterate)
            warn_single_sweep(pl, g0, g1);
        rt_trace_add_comp(&m->trace, &c);
        if (!force_fixpoint) /* a query reads its tensor afterwards */
            rt_release_dead(pl, g0, g1); /* buffers no later group reads */
    }
    m->trace.total_ms = sup_clock_ms() - t0;
    m->trace.is_converged = ok;
    m->trace.is_valid = true;
    return ok ? FUSE_OK : FUSE_E_NOT_CONVERGED;
}

/* ---- demand masks ---- */

static void closure_of_group_inputs(const RtPlan *pl, const Group *grp, bool *want)
{
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            int t = needed_tensor(pl->ir, grp->ops[i]->in[k].tensor);
            if (t >= 0)
                rt_sched_closure(pl, t, want);
        }
}

bool *rt_sched_demand_mask(const RtPlan *pl, int query)
{
    const IrProgram *p = pl->ir;
    bool *want = calloc((size_t)p->n_groups + 1, sizeof *want);
    if (!want)
        return NULL;
    if (query >= 0) {
        rt_sched_closure(pl, query, want);
        return want;
    }
    for (int i = 0; i < p->n_exports; i++)
        rt_sched_closure(pl, p->exports[i], want);
    for (int s = 0; s < p->n_sinks; s++)
        closure_of_group_inputs(pl, p->sink_groups[p->sinks[s]->group], want);
    return want;
}
