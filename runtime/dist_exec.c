/*
 * dist_exec.c: a plan run on several MPI ranks (dist.h has the data model). The
 * runtime side of the distribution: attaching a plan (placements from the
 * planner, the buffers a split needs, sinks on rank 0 only), running a split
 * group or semi-naive delta as this rank's share of a team R times as large and
 * merging its output, and the agreements that keep every rank on the same path
 * (statuses, fixpoint change flags).
 *
 * Every rank runs the same schedule over the same bits, so the ranks take the
 * same branches and call the same collectives in the same order; the only
 * collectives are in this file (through dist.h). A rank's failure before a
 * collective becomes everyone's at the next agreement (rt_dist_agree), so no
 * rank is left waiting.
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "jit.h"
#include "lower.h"
#include "runtime.h"

/* A semi-naive delta kernel runs on a team from this many cells (seminaive.c);
 * the same threshold splits it across ranks. */
#define DIST_DELTA_MIN_CELLS ((int64_t)1 << 16)

struct RtDist {
    int rank, size;
    DistGroupPlan *groups;  /* per equation group */
    size_t *stride;         /* per equation group: its kernel's scratch bytes per thread */
    void *before;           /* a split output as it was before its kernel ran */
    size_t before_bytes;
    uint64_t *bits;         /* a semi-naive delta's cells as bits (dist_merge_or) */
    int64_t bit_cells;      /* the most cells of a split delta */
    char *scratch;          /* this rank's team's packing scratch */
    size_t scratch_bytes;
    int team;               /* threads per rank of the split kernels */
};

static LowerOptions lower_options(const RtPlan *pl)
{
    LowerOptions opt; /* as the plan's kernels were compiled */
    rt_lower_options(pl, RT_KERNEL_PREFIX, &opt);
    return opt;
}

/* Whether group g's kernel makes a single call (plan_compile.c lowers the group
 * alone unless it is in a span, which the planner never splits). */
static bool is_one_call(const IrProgram *p, const Group *grp, const LowerOptions *opt)
{
    return grp->n_ops == 1 || lower_run_length(p, grp, 0, opt) == grp->n_ops - 1;
}

/* The scratch stride group g's kernel was compiled with: lower_scratch_bytes of
 * a program holding that group alone, as the group's view is (plan_compile.c). */
static size_t kernel_stride(const IrProgram *p, int g, const LowerOptions *opt)
{
    IrProgram one = *p;
    Group *grp = p->groups[g];
    one.groups = &grp;
    one.n_groups = 1;
    one.n_sink_groups = 0;
    return lower_scratch_bytes(&one, opt);
}

/* Whether group g's semi-naive delta kernel, if it gets one, is split. */
static bool is_split_delta(const RtPlan *pl, int g, int ranks)
{
    const IrProgram *p = pl->ir;
    return ranks > 1 && p->groups[g]->is_recursive && lower_delta_eligible(p, g) &&
           pl->count[p->groups[g]->tensor] >= DIST_DELTA_MIN_CELLS;
}

static void plan_groups(RtPlan *pl, RtDist *d)
{
    const IrProgram *p = pl->ir;
    LowerOptions opt = lower_options(pl);
    for (int g = 0; g < p->n_groups; g++) {
        const Group *grp = p->groups[g];
        if (is_split_delta(pl, g, d->size))
            d->bit_cells = pl->count[grp->tensor] > d->bit_cells ? pl->count[grp->tensor]
                                                                 : d->bit_cells;
        DistKernelFacts f = {
            .is_team = pl->group_par && pl->group_par[g],
            .is_one_call = grp->n_ops > 0 && is_one_call(p, grp, &opt),
            .is_span = pl->span_head && (pl->span_head[g] != g || pl->absorbs[g] > 0),
            .elem_bytes = rt_tensor_bytes(pl, grp->tensor)};
        d->groups[g] = dist_plan_group(p, g, &f, d->size);
        if (d->groups[g].place != DIST_SPLIT)
            continue;
        d->stride[g] = kernel_stride(p, g, &opt);
        size_t bytes = (size_t)pl->count[grp->tensor] * rt_tensor_bytes(pl, grp->tensor);
        d->before_bytes = bytes > d->before_bytes ? bytes : d->before_bytes;
        size_t s = d->stride[g] * (size_t)d->team;
        d->scratch_bytes = s > d->scratch_bytes ? s : d->scratch_bytes;
    }
}

/* The placements and buffers of this rank; false on OOM. */
static bool dist_new(RtPlan *pl, int rank, int size, RtDist **out)
{
    const IrProgram *p = pl->ir;
    RtDist *d = calloc(1, sizeof *d);
    if (!d)
        return false;
    *out = d;
    d->rank = rank;
    d->size = size;
    d->team = rt_parallel_threads(pl->threads);
    d->groups = calloc((size_t)p->n_groups + 1, sizeof *d->groups);
    d->stride = calloc((size_t)p->n_groups + 1, sizeof *d->stride);
    if (!d->groups || !d->stride)
        return false;
    plan_groups(pl, d);
    if (d->before_bytes) {
        d->before = io_alloc_aligned(d->before_bytes);
        if (!d->before)
            return false;
    }
    if (d->bit_cells) {
        d->bits = malloc((size_t)(d->bit_cells + 63) / 64 * sizeof *d->bits);
        if (!d->bits)
            return false;
    }
    if (d->scratch_bytes) {
        d->scratch = io_alloc_aligned(d->scratch_bytes);
        if (!d->scratch)
            return false;
    }
    return true;
}

void rt_dist_free(RtDist *d)
{
    if (!d)
        return;
    free(d->groups);
    free(d->stride);
    io_free_aligned(d->before);
    free(d->bits);
    io_free_aligned(d->scratch);
    free(d);
}

/* The error of a rank that did its part when another did not. */
static fuse_status peer_failed(RtPlan *pl, const char *when)
{
    return fe_error(&pl->dl, FUSE_E_RUNTIME, (Span){0},
                    "another MPI rank failed %s (that rank reports why)", when);
}

fuse_status rt_dist_attach(RtPlan *pl, fuse_status st, char **err)
{
    int rank = 0, size = 1;
    fuse_status ist = dist_init(&rank, &size, err);
    if (ist != FUSE_OK)
        return ist;
    bool ok = dist_agree_ok(st == FUSE_OK); /* every rank has compiled the plan */
    if (st != FUSE_OK)
        return st;
    if (!ok)
        return peer_failed(pl, "to compile the program");
    RtDist *d = NULL;
    bool made = dist_new(pl, rank, size, &d);
    if (!dist_agree_ok(made)) {
        rt_dist_free(d);
        return made ? peer_failed(pl, "to allocate its buffers")
                    : fe_error(&pl->dl, FUSE_E_NOMEM, (Span){0},
                               "out of memory for the distribution's buffers");
    }
    pl->dist = d;
    if (rank != 0)
        pl->write_sinks = false; /* rank 0 writes every sink */
    return FUSE_OK;
}

fuse_status rt_dist_agree(RtPlan *pl, fuse_status st, const char *when)
{
    if (!pl->dist)
        return st;
    bool ok = dist_agree_ok(st == FUSE_OK);
    return st != FUSE_OK ? st : ok ? FUSE_OK : peer_failed(pl, when);
}

bool rt_dist_any(const RtPlan *pl, bool flag)
{
    return pl->dist && pl->dist->size > 1 ? dist_any(flag) : flag;
}

int64_t rt_dist_max(const RtPlan *pl, int64_t v)
{
    return pl->dist && pl->dist->size > 1 ? dist_max_i64(v) : v;
}

/* ---- running a share ---- */

static void team_barrier(void)
{
#pragma omp barrier
}

/* Runs thread shares base .. base+team-1 of a team of `total` on this rank's
 * OpenMP team. A share the team did not get a thread for (OpenMP may give fewer
 * than asked) runs afterwards alone, which the kernel ABI allows. */
static void run_shares(RtKernel k, float **bufs, int base, int team, int total,
                       const atomic_int *stop)
{
    if (team == 1) {
        k(bufs, base, total, rt_no_barrier, stop);
        return;
    }
    int got = team;
#pragma omp parallel num_threads(team)
    {
#pragma omp single
        got = omp_get_num_threads();
        k(bufs, base + omp_get_thread_num(), total, team_barrier, stop);
    }
    for (int j = got; j < team; j++)
        k(bufs, base + j, total, rt_no_barrier, stop);
}

/* Whether the output of group g starts from zeros before its split kernel: its
 * kernel writes it whole before reading it (zeroing.c), and its buffer is no
 * input's (buffer reuse, footprint.c, lets an elementwise group write over the
 * tensor it reads). */
static bool starts_from_zeros(const RtPlan *pl, int g)
{
    const Group *grp = pl->ir->groups[g];
    int t = grp->tensor;
    if (!pl->is_written_whole || !pl->is_written_whole[t])
        return false;
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            int in = grp->ops[i]->in[k].tensor;
            if (in != t && pl->bufs[in] == pl->bufs[t])
                return false;
        }
    return true;
}

bool rt_dist_run_group(RtPlan *pl, int g)
{
    RtDist *d = pl->dist;
    if (!d || d->groups[g].place != DIST_SPLIT)
        return false;
    int t = pl->ir->groups[g]->tensor;
    size_t bytes = (size_t)pl->count[t] * rt_tensor_bytes(pl, t);
    /* starting from zeros instead of a copy of what the output held: one
     * all-reduce, no passes over the buffer */
    bool is_zeroed = starts_from_zeros(pl, g);
    if (is_zeroed)
        memset(pl->bufs[t], 0, bytes);
    else
        memcpy(d->before, pl->bufs[t], bytes);
    float **bufs = rt_group_bufs(pl, false, g);
    /* The kernel finds thread tid's packing scratch at scratch + tid * stride;
     * this rank's tids start at rank * team, and its scratch holds `team` slots,
     * so the table gets the address that puts tid rank * team at the start. */
    int base = d->rank * d->team;
    bufs[pl->gbufs[g].n - 1] = (float *)((uintptr_t)d->scratch - (uintptr_t)base * d->stride[g]);
    run_shares(pl->group_fn[g], bufs, base, d->team, d->team * d->size, rt_stop_flag(pl));
    if (is_zeroed)
        dist_merge_zeroed(pl->bufs[t], bytes);
    else
        dist_merge_changes(pl->bufs[t], d->before, bytes);
    return true;
}

bool rt_dist_run_delta(RtPlan *pl, int g, RtKernel delta)
{
    RtDist *d = pl->dist;
    if (!d || !is_split_delta(pl, g, d->size))
        return false;
    /* the output is all zeros on every rank before (seminaive.c), and the joins
     * only set cells, so the whole is the OR over the ranks; the semi-naive
     * merge reads only whether a cell is non-zero */
    int t = pl->ir->groups[g]->tensor;
    run_shares(delta, pl->bufs, d->rank * d->team, d->team, d->team * d->size,
               rt_stop_flag(pl));
    double one[1]; /* the element 1 in the tensor's type (at most 8 bytes) */
    rt_elem_set(pl, one, 0, 1.0);
    dist_merge_or(pl->bufs[t], pl->count[t], rt_tensor_bytes(pl, t), one, d->bits);
    return true;
}

/* ---- explain ---- */

static void explain_group(const RtPlan *pl, int g, SupBuf *sb, uint64_t *total)
{
    const RtDist *d = pl->dist;
    const IrProgram *p = pl->ir;
    const Group *grp = p->groups[g];
    const DistGroupPlan *gp = &d->groups[g];
    char bytes[32];
    rt_format_bytes(gp->bytes, bytes, sizeof bytes);
    const char *per = grp->is_recursive ? "per sweep" : "per run";
    sup_buf_printf(sb, "  %-16s %-10s", p->tensors[grp->tensor]->name, dist_place_name(gp->place));
    if (gp->place == DIST_SPLIT)
        sup_buf_printf(sb, " all-reduce %s (%llu bytes) %s; each rank runs 1/%d of the "
                           "kernel's thread shares\n", bytes, (unsigned long long)gp->bytes, per,
                       d->size);
    else
        sup_buf_printf(sb, " nothing moved%s\n",
                       is_split_delta(pl, g, d->size)
                           ? "; with semi_naive its delta sweeps split, all-reducing\n"
                             "                              its cells as bits per sweep"
                           : "");
    *total += gp->bytes;
}

fuse_status rt_dist_explain(const RtPlan *pl, char **out)
{
    const RtDist *d = pl->dist;
    SupBuf sb = {0};
    sup_buf_printf(&sb, "distribution over %d MPI rank%s, %d thread%s each: every tensor is whole "
                   "on every rank\n", d->size, d->size == 1 ? "" : "s", d->team,
              d->team == 1 ? "" : "s");
    int n_split = 0;
    uint64_t total = 0;
    for (int g = 0; g < pl->ir->n_groups; g++) {
        explain_group(pl, g, &sb, &total);
        n_split += d->groups[g].place == DIST_SPLIT;
    }
    char bytes[32], model[32];
    rt_format_bytes(total, bytes, sizeof bytes);
    rt_format_bytes(dist_model_bytes(total, d->size), model, sizeof model);
    sup_buf_printf(&sb, "total: %d split, %d replicated; %s (%llu bytes) all-reduced when each "
                        "runs once (ring model: %s sent by each rank)\n", n_split,
                   pl->ir->n_groups - n_split, bytes, (unsigned long long)total, model);
    *out = sup_buf_finish(&sb);
    return *out ? FUSE_OK : FUSE_E_NOMEM;
}
