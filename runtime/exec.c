/*
 * exec.c: runs a compiled plan: zero the computed tensors, load the sources (or
 * host inputs), run the equation groups in order, then the sink groups, writing
 * each sink's file. The equation groups go through the execution mode's
 * schedule (schedule.c: sweeps, fixpoints, demand closures, the run trace).
 * A run is one time step of the *t axes: the earlier steps are filled in before
 * the groups run and the step is committed after the sinks (stream.c); a query
 * does not commit. Tensors the kernels write whole before anything reads them
 * are not zeroed (zeroing.c). Once the host interrupts a run
 * (fuse_ctx_interrupt), the kernel running skips the rest of its work (its loop
 * nests check the flag once per block: lower.h) and rt_run_group runs no more
 * kernels, so what remains of the schedule compares unchanged values and ends
 * within a sweep or two; the run then fails with FUSE_E_INTERRUPTED before any
 * sink is written or stream step committed. Its partial values are never
 * delivered, and the next run starts over: every computed tensor a kernel does
 * not write whole is zeroed first, stream steps are committed only by a run that
 * completes, and a fixpoint's snapshots and deltas are reset when it begins.
 */
#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "runtime.h"
#include "stream.h"

/* A query, a demand-mode run and a Monte Carlo run zero every computed tensor:
 * groups outside the closure must still read as 0, and sampled kernels may
 * accumulate. (No modes yet: the defaults, a single exact sweep.) */
static bool zeroes_all(const RtPlan *pl, int query)
{
    const RtModes *m = pl->modes;
    return query >= 0 || (m && (m->mode == FUSE_MODE_DEMAND
                                || m->projection == FUSE_PROJECTION_MONTE_CARLO));
}

/* Zeroes the computed tensors, but for those the kernels write whole before
 * any read (perf, the rule is in zeroing.c), and every previous-sweep
 * buffer; nothing before the plan's first run (they are all zeros). */
static void zero_computed(RtPlan *pl, int query)
{
    IrProgram *p = pl->ir;
    if (!pl->is_written_whole)
        pl->is_written_whole = rt_zeroing_flags(pl); /* once per plan */
    bool is_zero = pl->is_zero_yet;
    pl->is_zero_yet = false;
    if (is_zero)
        return;
    const bool *skip = zeroes_all(pl, query) ? NULL : pl->is_written_whole;
    for (int i = 0; i < p->n_tensors; i++) {
        TensorKind k = p->tensors[i]->kind;
        size_t bytes = (size_t)pl->count[i] * rt_tensor_bytes(pl, i);
        if ((k == TEN_DEFINED || k == TEN_TEMP) && !(skip && skip[i]))
            memset(pl->bufs[i], 0, bytes);
        if (pl->bufs[p->n_tensors + i])
            memset(pl->bufs[p->n_tensors + i], 0, bytes);
    }
}

/* ---- outputs bound to host memory ---- */

bool rt_output_bindable(const RtPlan *pl, int t)
{
    const IrProgram *p = pl->ir;
    const IrTensor *x = p->tensors[t];
    if (x->kind != TEN_DEFINED || x->is_read_prev || x->is_stream_state || pl->bufs[p->n_tensors + t])
        return false;
    for (int s = 0; s < p->n_streams; s++)
        if (p->streams[s]->tensor == t)
            return false;
    return true;
}

/* The run's kernels write each bound export (pl->out_bind) straight into the
 * host's memory: it becomes the tensor's buffer until rt_unborrow_sources, as a
 * borrowed input does, zeroed first when the tensor needs it. */
static fuse_status bind_outputs(RtPlan *pl, int query)
{
    const IrProgram *p = pl->ir;
    if (!pl->out_bind)
        return FUSE_OK;
    if (!pl->own_bufs)
        pl->own_bufs = calloc((size_t)p->n_tensors + 1, sizeof *pl->own_bufs);
    if (!pl->own_bufs)
        return FUSE_E_NOMEM;
    const bool *whole = zeroes_all(pl, query) ? NULL : pl->is_written_whole;
    for (int t = 0; t < p->n_tensors; t++) {
        if (!pl->out_bind[t] || pl->own_bufs[t])
            continue;
        pl->own_bufs[t] = pl->bufs[t];
        pl->bufs[t] = pl->out_bind[t];
        if (!(whole && whole[t]))
            memset(pl->bufs[t], 0, (size_t)pl->count[t] * rt_tensor_bytes(pl, t));
    }
    return FUSE_OK;
}

/* ---- kernels and threads ---- */

void rt_no_barrier(void) {}

const atomic_int *rt_stop_flag(const RtPlan *pl)
{
    static const atomic_int never = 0;
    return pl->host ? &pl->host->interrupt : &never;
}

/* Room in bufs[2 n_tensors] for nth threads' packing scratch; false when it
 * cannot be had, or would take the plan past its memory cap (the group then runs
 * on one thread). */
static bool ensure_scratch(RtPlan *pl, int nth)
{
    if (pl->scratch_threads >= nth)
        return true;
    uint64_t more = (uint64_t)pl->scratch_bytes * (uint64_t)(nth - pl->scratch_threads);
    if (pl->planned_bytes + more > pl->max_memory || pl->planned_bytes + more < more)
        return false;
    float *s = io_alloc_aligned(pl->scratch_bytes * (size_t)nth);
    if (!s)
        return false;
    int slot = 2 * pl->ir->n_tensors;
    io_free_aligned(pl->bufs[slot]);
    pl->bufs[slot] = s;
    pl->planned_bytes += more;
    pl->scratch_threads = nth;
    return true;
}

/* Runs a group kernel: on a thread team when it has a contraction and more than
 * one thread is configured, else alone as thread 0 of 1. */
void rt_run_group(RtPlan *pl, bool is_sink, int g)
{
    if (rt_stop_now(pl)) /* the schedule winds down */
        return;
    if (pl->dist)
        rt_dist_before_group(pl, is_sink, g); /* operands in row blocks it cannot read */
    if (is_sink && !rt_dist_has_results(pl))
        return; /* MPI: rank 0 alone computes and writes the sinks */
    if (!is_sink && pl->dist && rt_dist_run_group(pl, g)) {
        rt_dist_after_group(pl, is_sink, g); /* this rank's share, merged or in rows */
        return;
    }
    RtKernel k = (is_sink ? pl->sink_fn : pl->group_fn)[g];
    bool is_par = (is_sink ? pl->sink_par : pl->group_par)[g];
    int nth = is_par ? rt_parallel_threads(pl->threads) : 1;
    bool is_team = nth > 1 && ensure_scratch(pl, nth);
    /* each kernel takes its group's own buffer table */
    float **bufs = rt_group_bufs(pl, is_sink, g);
    if (is_team)
        rt_parallel_run(k, bufs, nth, rt_stop_flag(pl));
    else
        k(bufs, 0, 1, rt_no_barrier, rt_stop_flag(pl));
    if (pl->dist)
        rt_dist_after_group(pl, is_sink, g);
}

/* The equation groups through the mode schedule (modes: schedule.c). */
static fuse_status run_groups(RtPlan *pl, int query)
{
    fuse_status st = pl->modes ? FUSE_OK : rt_modes_configure(pl, NULL, NULL);
    if (st != FUSE_OK)
        return st;
    bool is_demand = query >= 0 || pl->modes->mode == FUSE_MODE_DEMAND;
    bool *want = is_demand ? rt_sched_demand_mask(pl, query) : NULL;
    if (is_demand && !want)
        return FUSE_E_NOMEM;
    st = rt_sched_run(pl, want, query >= 0,
                      query >= 0 ? "query" : is_demand ? "demand"
                      : pl->modes->mode == FUSE_MODE_FIXPOINT ? "fixpoint" : "single");
    free(want);
    return st;
}

fuse_status rt_plan_run(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    return rt_plan_run_query(pl, inputs, n_inputs, -1);
}

/* the status of an interrupted run, with its diagnostic. */
static fuse_status interrupted(RtPlan *pl)
{
    return fe_error(&pl->dl, FUSE_E_INTERRUPTED, (Span){0}, "interrupted");
}

fuse_status rt_plan_run_query(RtPlan *pl, const fuse_input *inputs, size_t n_inputs,
                              int query)
{
    IrProgram *p = pl->ir;
    if (rt_stop_now(pl))
        return interrupted(pl);
    zero_computed(pl, query);
    fuse_status st = rt_load_sources(pl, inputs, n_inputs);
    if (st == FUSE_OK)
        st = bind_outputs(pl, query); /* exports straight into host memory */
    if (st == FUSE_OK)
        st = rt_stream_begin(pl, inputs, n_inputs); /* earlier steps */
    st = rt_dist_agree_sources(pl, st); /* MPI: all ranks, or none; blocks read */
    if (st != FUSE_OK)
        return st;
    fuse_status run_st = run_groups(pl, query);
    rt_dist_finish(pl, query >= 0); /* MPI: row blocks made whole */
    if (rt_dist_stop_agreed(pl)) /* MPI: interrupted on any rank */
        return interrupted(pl);
    /* sources used in place: none lost to a truncated file (MPI: on any rank) */
    st = rt_dist_agree(pl, rt_check_mapped_sources(pl), "to keep its sources");
    if (st != FUSE_OK)
        return st;
    if (run_st != FUSE_OK && run_st != FUSE_E_NOT_CONVERGED)
        return run_st;
    if (query >= 0)
        return run_st;
    for (int s = 0; s < p->n_sinks; s++) {
        const Sink *sink = p->sinks[s];
        rt_run_group(pl, true, sink->group);
        if (pl->write_sinks) {
            st = rt_write_sink(pl, sink, p->tensors[p->sink_groups[sink->group]->tensor]);
            if (st != FUSE_OK)
                return st;
        }
    }
    rt_stream_commit(pl); /* this step is done; time moves on */
    return run_st;
}
