/*
 * dist_exec.c: a plan run on several MPI ranks (dist.h has the data model). The
 * runtime side of the distribution: attaching a plan (placements from the
 * planner, the buffers a split needs, sinks on rank 0 only), running a split
 * group or semi-naive delta as this rank's share of a team R times as large,
 * keeping row blocks or merging its output, tracking which tensors are in row
 * blocks and gathering them (or summing a projection over them) before a group
 * that cannot read them so, reading sources in blocks, and the agreements that
 * keep every rank on the same path (statuses, fixpoint change flags).
 *
 * Every rank runs the same schedule and makes the same decisions: which tensors
 * are in blocks follows from the plan and agreed flags alone, never from a
 * rank's own values, so the ranks take the same branches and call the same
 * collectives in the same order; the only collectives are in this file
 * (through dist.h). A rank's failure before a collective becomes everyone's at
 * the next agreement (rt_dist_agree), so no rank is left waiting.
 */
#include <limits.h>
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

/* A component whose semi-naive sweeps stay in row blocks and go over the
 * whole relations each sweep (seminaive.c) deals its rows out in
 * DIST_DELTA_ROUNDS rounds of one block per rank (cyclically): the new facts
 * of a closure gather in some rows, and small blocks dealt in turn even out
 * the ranks' work where one block each would leave one rank waiting. One
 * that runs block by block has its blocks claimed by the ranks as they go
 * (rt_dist_claim). */
#define DIST_DELTA_ROUNDS 64

struct RtDist {
    int rank, size, n_tensors;
    DistGroupPlan *groups;  /* per equation group */
    size_t *stride;         /* per equation group: its kernel's scratch bytes per thread */
    void *before;           /* a split output as it was before its kernel ran */
    size_t before_bytes;
    uint64_t *bits;         /* a semi-naive delta's cells as bits (dist_merge_or) */
    int64_t bit_cells;      /* the most cells of a split delta */
    char *scratch;          /* this rank's team's packing scratch */
    size_t scratch_bytes;
    int team;               /* threads per rank of the split kernels */
    /* row blocks (DIST_ROWS): per tensor, 0 when every rank holds it whole,
     * else rank r holds only rows [r * rank_rows[t], ...) (dist_row_range), or
     * when dealt[t] (a semi-naive relation) the blocks k of rank_rows[t] rows
     * with owner[t][k] == r (dealt in turn, or claimed) */
    int64_t *rank_rows;
    bool *dealt;
    int **owner;            /* per tensor that a semi-naive component may deal
                               out: room for one int per row (a block has one) */
    int *lens, *displs;     /* scratch of dist_gather_blocks: the most rows of those */
    DistCounter *counter;   /* the ranks' draws of blocks while a component runs
                               block by block (NULL: dealt in turn, claims) */
    int64_t claims;         /* this rank's draws without a counter */
    int64_t *group_rows;    /* per group: its DIST_ROWS output's rank_rows */
    int64_t *delta_rows;    /* per group: the rows of one block of its semi-naive
                               delta when its component's sweeps stay in row
                               blocks (block b is rank b % size's), else 0 */
    int64_t *src_rows;      /* per tensor: a .npy source each rank reads only its
                               block of (every reader reads it row for row), or 0 */
    bool *src_read;         /* per tensor: this rank read only its block this run */
    bool *share_checked;    /* per tensor: used in place, this rank having checked
                               only its share of it for 0s and 1s (this run) */
    int *flags;             /* room for 2 n_tensors + 3 ints (rt_dist_agree_sources) */
    int *per_rank;          /* room for 2 ints a rank (rt_dist_join_cells) */
    int summed;             /* the group run as a projection over row blocks: its
                               output is all-reduced after its kernel, or -1 */
    bool is_root_results;   /* a plain run's results on rank 0 only
                               (FUSE_DISTRIBUTED_RANK0): the end of the run and
                               the sinks gather to rank 0, rank 0 runs the sinks */
    bool *on_root;          /* per tensor in row blocks: rank 0 holds it whole too */
    bool keeps_exports;     /* this run's exports stay in blocks at its end: they
                               go to a file piece by piece (rt_save_exports) */
};

static void gather(RtPlan *pl, int t);

/* What the end of a run does with a tensor in row blocks (end_gather). */
typedef enum EndGather { END_NONE, END_ROOT, END_EVERY_RANK } EndGather;

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

/* Whether tensor t's row blocks fit MPI's int counts (dist_gather_rows). */
static bool fits_gather(const RtPlan *pl, int t)
{
    const IrTensor *x = pl->ir->tensors[t];
    return x->rank > 0 && x->shape[0] > 0 && x->shape[0] <= INT_MAX &&
           (uint64_t)(pl->count[t] / x->shape[0]) * rt_tensor_bytes(pl, t) <= INT_MAX;
}

/* Rows per rank when a kernel's team of nth = size * team threads shares rows
 * `chunk` a thread (rank r runs thread shares r * team .. r * team + team - 1). */
static int64_t rows_per_rank(const RtDist *d, int64_t chunk) { return chunk * d->team; }

/* The thread shares of a delta kernel dealt in rounds: DIST_DELTA_ROUNDS x
 * size x team of them, round k giving rank r the shares (k size + r) team ..
 * (k size + r) team + team - 1, a block of team x chunk rows. */
static int64_t delta_shares(const RtDist *d)
{
    return (int64_t)DIST_DELTA_ROUNDS * d->size * d->team;
}

/* Group g's delta kernel keeps row blocks: it shares rows, and each of its
 * joins reads every tensor of its component row for row, so a rank's rows of
 * the next delta depend only on its rows of this one. The rows of a block, or
 * 0. */
static int64_t delta_row_blocks(const RtPlan *pl, const RtDist *d, int g)
{
    const IrProgram *p = pl->ir;
    const Group *grp = p->groups[g];
    LowerOptions opt = lower_options(pl); /* as the delta kernels are compiled */
    int64_t chunk = 0;
    if (!is_split_delta(pl, g, d->size) || !fits_gather(pl, grp->tensor) ||
        !lower_delta_row_chunk(p, g, delta_shares(d), &opt, &chunk))
        return 0;
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++)
            if (lower_in_component(p, grp->component, grp->ops[i]->in[k].tensor) &&
                !lower_reads_own_rows(p, grp->ops[i], k))
                return 0;
    return rows_per_rank(d, chunk);
}

/* A component's sweeps stay in row blocks when every group's delta does, with
 * the same blocks. */
static void plan_delta_rows(const RtPlan *pl, RtDist *d)
{
    const IrProgram *p = pl->ir;
    for (int g0 = 0, g1; g0 < p->n_groups; g0 = g1) {
        bool same = true;
        int64_t rows = delta_row_blocks(pl, d, g0);
        for (g1 = g0 + 1; g1 < p->n_groups && p->groups[g1]->component == p->groups[g0]->component;
             g1++)
            same &= delta_row_blocks(pl, d, g1) == rows;
        for (int g = g0; g < g1; g++)
            d->delta_rows[g] = same ? rows : 0;
    }
}

/* Whether op reads tensor t, and only row for row. */
static bool op_reads(const IrProgram *p, const Op *op, int t, bool *is_row_for_row)
{
    bool reads = false;
    for (int k = 0; k < op->n_in; k++)
        if (op->in[k].tensor == t) {
            reads = true;
            *is_row_for_row &= lower_reads_own_rows(p, op, k);
        }
    return reads;
}

/* The blocks in which every reader of source t reads it row for row (DIST_ROWS
 * groups, all of the same blocks), or 0: then each rank can read just its rows
 * of the file, and nothing ever needs the others'. A file source only (not a
 * host input), a .npy converted from a mapping (sources.c map_source). */
static int64_t source_blocks(const RtPlan *pl, const RtDist *d, int t)
{
    const IrProgram *p = pl->ir;
    const IrTensor *x = p->tensors[t];
    const char *dot = x->path ? strrchr(x->path, '.') : NULL;
    if (x->kind != TEN_SOURCE || x->is_stream_state || x->elem || !dot ||
        strcasecmp(dot, ".npy") != 0 || (pl->is_input && pl->is_input[t]) ||
        pl->precision != FUSE_PRECISION_FP32 || !fits_gather(pl, t))
        return 0;
    int64_t rows = 0;
    for (int g = 0; g < p->n_groups; g++) {
        bool is_row_for_row = true, reads = false;
        for (int i = 0; i < p->groups[g]->n_ops; i++)
            reads |= op_reads(p, p->groups[g]->ops[i], t, &is_row_for_row);
        if (!reads)
            continue;
        if (d->groups[g].place != DIST_ROWS || !is_row_for_row ||
            (rows && rows != d->group_rows[g]))
            return 0;
        rows = d->group_rows[g];
    }
    for (int g = 0; g < p->n_sink_groups; g++) {
        bool is_row_for_row = true;
        for (int i = 0; i < p->sink_groups[g]->n_ops; i++)
            if (op_reads(p, p->sink_groups[g]->ops[i], t, &is_row_for_row))
                return 0;
    }
    return rows;
}

static void plan_groups(RtPlan *pl, RtDist *d)
{
    const IrProgram *p = pl->ir;
    LowerOptions opt = lower_options(pl);
    plan_delta_rows(pl, d);
    for (int g = 0; g < p->n_groups; g++) {
        const Group *grp = p->groups[g];
        if (is_split_delta(pl, g, d->size) && !d->delta_rows[g]) /* dist_merge_or */
            d->bit_cells = pl->count[grp->tensor] > d->bit_cells ? pl->count[grp->tensor]
                                                                 : d->bit_cells;
        int64_t chunk = 0;
        bool has_rows = fits_gather(pl, grp->tensor) &&
                        lower_group_row_chunk(p, grp, &opt, (int64_t)d->size * d->team, &chunk);
        DistKernelFacts f = {
            .is_team = pl->group_par && pl->group_par[g],
            /* calls on the same row blocks read no other rank's cells either */
            .is_one_call = grp->n_ops > 0 && (is_one_call(p, grp, &opt) || has_rows),
            .is_span = pl->span_head && (pl->span_head[g] != g || pl->absorbs[g] > 0),
            .elem_bytes = rt_tensor_bytes(pl, grp->tensor),
            .rank_rows = has_rows ? rows_per_rank(d, chunk) : 0};
        d->groups[g] = dist_plan_group(p, g, &f, d->size);
        if (d->groups[g].place == DIST_ROWS)
            d->group_rows[g] = f.rank_rows;
        if (d->groups[g].place == DIST_REPLICATED)
            continue;
        d->stride[g] = kernel_stride(p, g, &opt);
        if (d->groups[g].place == DIST_ROWS) {
            size_t s = d->stride[g] * (size_t)d->team;
            d->scratch_bytes = s > d->scratch_bytes ? s : d->scratch_bytes;
            continue;
        }
        d->stride[g] = kernel_stride(p, g, &opt);
        size_t bytes = (size_t)pl->count[grp->tensor] * rt_tensor_bytes(pl, grp->tensor);
        d->before_bytes = bytes > d->before_bytes ? bytes : d->before_bytes;
        size_t s = d->stride[g] * (size_t)d->team;
        d->scratch_bytes = s > d->scratch_bytes ? s : d->scratch_bytes;
    }
    for (int t = 0; t < p->n_tensors; t++)
        d->src_rows[t] = source_blocks(pl, d, t);
}

/* Room for the owners of the blocks of every relation a semi-naive component
 * may deal out (one int a row: a block has at least one), and the gathers'
 * scratch; false on OOM. */
static bool owner_maps_new(const RtPlan *pl, RtDist *d)
{
    int64_t most = 0;
    for (int g = 0; g < pl->ir->n_groups; g++) {
        int t = pl->ir->groups[g]->tensor;
        int64_t rows = pl->ir->tensors[t]->shape[0];
        if (!d->delta_rows[g] || d->owner[t])
            continue;
        if (!(d->owner[t] = malloc((size_t)rows * sizeof **d->owner)))
            return false;
        most = rows > most ? rows : most;
    }
    if (!most)
        return true;
    d->lens = malloc((size_t)most * sizeof *d->lens);
    d->displs = malloc((size_t)most * sizeof *d->displs);
    return d->lens && d->displs;
}

/* The placements and buffers of this rank; false on OOM. */
static bool dist_new(RtPlan *pl, int rank, int size, bool is_root_results, RtDist **out)
{
    const IrProgram *p = pl->ir;
    RtDist *d = calloc(1, sizeof *d);
    if (!d)
        return false;
    *out = d;
    d->rank = rank;
    d->size = size;
    d->n_tensors = p->n_tensors;
    d->is_root_results = is_root_results;
    d->summed = -1;
    d->team = rt_parallel_threads(pl->threads);
    d->groups = calloc((size_t)p->n_groups + 1, sizeof *d->groups);
    d->stride = calloc((size_t)p->n_groups + 1, sizeof *d->stride);
    d->rank_rows = calloc((size_t)p->n_tensors + 1, sizeof *d->rank_rows);
    d->dealt = calloc((size_t)p->n_tensors + 1, sizeof *d->dealt);
    d->owner = calloc((size_t)p->n_tensors + 1, sizeof *d->owner);
    d->group_rows = calloc((size_t)p->n_groups + 1, sizeof *d->group_rows);
    d->delta_rows = calloc((size_t)p->n_groups + 1, sizeof *d->delta_rows);
    d->src_rows = calloc((size_t)p->n_tensors + 1, sizeof *d->src_rows);
    d->src_read = calloc((size_t)p->n_tensors + 1, sizeof *d->src_read);
    d->flags = calloc((size_t)p->n_tensors * 2 + 3, sizeof *d->flags);
    d->share_checked = calloc((size_t)p->n_tensors + 1, sizeof *d->share_checked);
    d->per_rank = calloc((size_t)size * 2, sizeof *d->per_rank);
    d->on_root = calloc((size_t)p->n_tensors + 1, sizeof *d->on_root);
    if (!d->groups || !d->stride || !d->rank_rows || !d->dealt || !d->owner || !d->group_rows ||
        !d->delta_rows || !d->src_rows || !d->src_read || !d->flags || !d->on_root ||
        !d->per_rank || !d->share_checked)
        return false;
    plan_groups(pl, d);
    if (!owner_maps_new(pl, d))
        return false;
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
    free(d->rank_rows);
    free(d->dealt);
    for (int t = 0; d->owner && t < d->n_tensors; t++)
        free(d->owner[t]);
    free(d->owner);
    free(d->lens);
    free(d->displs);
    free(d->group_rows);
    free(d->delta_rows);
    free(d->src_rows);
    free(d->src_read);
    free(d->flags);
    free(d->per_rank);
    free(d->share_checked);
    free(d->on_root);
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

fuse_status rt_dist_attach(RtPlan *pl, fuse_status st, bool is_root_results, char **err)
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
    bool made = dist_new(pl, rank, size, is_root_results, &d);
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

bool rt_dist_source_rows(const RtPlan *pl, int t, int64_t *lo, int64_t *hi)
{
    const RtDist *d = pl->dist;
    if (!d || !d->src_rows[t])
        return false;
    dist_row_range(pl->ir->tensors[t]->shape[0], d->src_rows[t], d->rank, lo, hi);
    return true;
}

void rt_dist_source_read(RtPlan *pl, int t)
{
    if (pl->dist)
        pl->dist->src_read[t] = true;
}

/* After loading: the ranks agree that every one loaded its sources and none
 * was interrupted (then all stop, FUSE_E_INTERRUPTED), and on the sources read
 * as blocks. A source every rank read as its block stays in blocks; one that
 * only some ranks could (the others read the whole file: a mapping refused) is
 * gathered, so every rank ends with it whole. A boolean source that some
 * ranks used in place having checked only their share for 0s and 1s is
 * thresholded by them unless every rank did so (another share may not be
 * 0/1). */
fuse_status rt_dist_agree_sources(RtPlan *pl, fuse_status st)
{
    RtDist *d = pl->dist;
    if (!d)
        return st;
    int n = pl->ir->n_tensors, *v = d->flags;
    v[n] = st == FUSE_OK;
    v[n + 1] = rt_interrupted(pl);
    v[n + 2] = d->keeps_exports;
    for (int t = 0; t < n; t++) {
        v[t] = d->src_read[t];
        v[n + 3 + t] = d->share_checked[t];
    }
    dist_sum_ints(v, 2 * n + 3);
    bool is_mixed = v[n + 2] != 0 && v[n + 2] != d->size; /* saving on some ranks only */
    bool ok = v[n] == d->size && v[n + 1] == 0 && !is_mixed;
    /* Every tensor a run reads is loaded or written before (sources) or after
     * it is read: the blocks of the last run are gone. */
    memset(d->rank_rows, 0, (size_t)n * sizeof *d->rank_rows);
    memset(d->dealt, 0, (size_t)n * sizeof *d->dealt);
    memset(d->on_root, 0, (size_t)n * sizeof *d->on_root);
    for (int t = 0; t < n; t++) {
        if (d->share_checked[t] && v[n + 3 + t] < d->size)
            rt_source_settle_bool(pl, t); /* not every share was checked: first */
        if (ok && v[t] > 0 && d->src_rows[t])
            d->rank_rows[t] = d->src_rows[t];
        if (ok && v[t] > 0 && v[t] < d->size) {
            rt_source_own_buffer(pl, t); /* used in place here: the gather writes */
            gather(pl, t);
        }
        d->src_read[t] = false;
        d->share_checked[t] = false;
    }
    if (st == FUSE_OK && v[n + 1] > 0)
        return fe_error(&pl->dl, FUSE_E_INTERRUPTED, (Span){0}, "interrupted");
    if (st == FUSE_OK && is_mixed) /* every rank stops here: no save's collective waits */
        return fe_error(&pl->dl, FUSE_E_ARG, (Span){0},
                        "the MPI ranks disagree on writing the outputs to a file "
                        "(fuse_runner_run_save on some ranks only; fuse-jit: give every rank "
                        "the same --out)");
    return st != FUSE_OK ? st : ok ? FUSE_OK : peer_failed(pl, "to load its sources");
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

bool rt_dist_stop_agreed(const RtPlan *pl)
{
    return pl->dist ? rt_dist_any(pl, rt_interrupted(pl)) : rt_interrupted(pl);
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

/* ---- row blocks ---- */

/* Bytes of one row (axis 0) of tensor t. */
static size_t row_bytes(const RtPlan *pl, int t)
{
    int64_t rows = pl->ir->tensors[t]->shape[0];
    return rows > 0 ? (size_t)(pl->count[t] / rows) * rt_tensor_bytes(pl, t) : 0;
}

/* Sets tensor t's blocks after a write (0: whole), and forgets the blocks of
 * any other tensor in the same buffer (buffer reuse): its cells are gone. */
static void set_rows(RtPlan *pl, int t, int64_t rank_rows)
{
    RtDist *d = pl->dist;
    for (int u = 0; u < pl->ir->n_tensors; u++)
        if (u != t && d->rank_rows[u] && pl->bufs[u] == pl->bufs[t])
            d->rank_rows[u] = 0;
    d->rank_rows[t] = rank_rows;
    d->dealt[t] = false;
    d->on_root[t] = false;
}

/* Records tensor t as dealt out in blocks of block_rows rows, block k held by
 * rank owner[k] (copied, unless it is t's own map). */
static void set_dealt(RtPlan *pl, int t, int64_t block_rows, const int *owner)
{
    RtDist *d = pl->dist;
    int64_t rows = pl->ir->tensors[t]->shape[0];
    set_rows(pl, t, block_rows);
    d->dealt[t] = true;
    if (owner != d->owner[t])
        memcpy(d->owner[t], owner, (size_t)((rows + block_rows - 1) / block_rows) * sizeof *owner);
}

/* Gathers row-block tensor t to every rank, or to rank 0 only: one message
 * per rank of the blocks it holds. */
static void gather_held(RtPlan *pl, int t, bool is_root_only)
{
    const RtDist *d = pl->dist;
    int64_t rows = pl->ir->tensors[t]->shape[0];
    size_t row = row_bytes(pl, t);
    if (d->dealt[t]) {
        DistBlocks b = {.rows = rows, .block_rows = d->rank_rows[t], .row_bytes = row,
                        .owner = d->owner[t]};
        dist_gather_blocks(pl->bufs[t], &b, d->lens, d->displs, is_root_only);
    } else if (is_root_only)
        dist_gather_rows_root(pl->bufs[t], rows, row, d->rank_rows[t]);
    else
        dist_gather_rows(pl->bufs[t], rows, row, d->rank_rows[t]);
}

/* Makes row-block tensor t whole on every rank (every rank calls it for the
 * same t: the blocks are the same on every rank). A tensor too large for MPI's
 * int counts (rows or a row over 2^31 - 1 bytes) is never planned in blocks
 * (rt_dist_attach checks), so the gather cannot refuse. */
static void gather(RtPlan *pl, int t)
{
    gather_held(pl, t, false);
    pl->dist->rank_rows[t] = 0;
}

/* Makes row-block tensor t whole on rank 0 only, once (every rank calls it for
 * the same t). It stays in blocks for every rank's decisions: the others hold
 * only their rows. */
static void gather_to_root(RtPlan *pl, int t)
{
    RtDist *d = pl->dist;
    if (!d->rank_rows[t] || d->on_root[t])
        return;
    gather_held(pl, t, true);
    d->on_root[t] = true;
}

/* Whether group g (a DIST_ROWS group when is_rows) can read its operand k of op
 * as it is: whole, or in the same row blocks as g's output, read row for row. */
static bool reads_as_is(const RtPlan *pl, const Op *op, int k, bool is_rows, int g)
{
    const RtDist *d = pl->dist;
    int t = op->in[k].tensor;
    return !d->rank_rows[t] || (is_rows && d->rank_rows[t] == d->group_rows[g] &&
                                !d->dealt[t] && lower_reads_own_rows(pl->ir, op, k));
}

/* Gathers the row-block operands group grp reads other than row for row. */
static void gather_operands(RtPlan *pl, const Group *grp, bool is_rows, int g)
{
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++)
            if (!reads_as_is(pl, grp->ops[i], k, is_rows, g))
                gather(pl, grp->ops[i]->in[k].tensor);
}

/* The row-block tensor that group g (replicated, run next) sums over, when
 * each rank can sum its own rows and the ranks then add their results: g is one
 * sum of a single operand, that tensor, in row blocks (a projection, or a row
 * sum, linear in it: rows of zeros add exact zeros), not in a span, its output
 * a float32 or float64 buffer at most a quarter of the tensor (an all-reduce
 * of it then moves less than gathering the tensor would). -1 otherwise. */
static int projected_tensor(const RtPlan *pl, int g)
{
    const RtDist *d = pl->dist;
    const Group *grp = pl->ir->groups[g];
    const Op *op = grp->n_ops == 1 ? grp->ops[0] : NULL;
    if (!op || op->kind != OP_JOIN || op->red != RED_SUM || op->n_in != 1 ||
        grp->is_recursive || d->groups[g].place != DIST_REPLICATED ||
        (pl->span_head && (pl->span_head[g] != g || pl->absorbs[g] > 0)))
        return -1;
    int t = op->in[0].tensor, out = grp->tensor;
    size_t es = rt_tensor_bytes(pl, out);
    if (!d->rank_rows[t] || d->dealt[t] || pl->bufs[t] == pl->bufs[out] ||
        rt_tensor_bytes(pl, t) != es ||
        (rt_tensor_dtype(pl, out) != FUSE_F32 && rt_tensor_dtype(pl, out) != FUSE_F64) ||
        pl->count[out] * 4 > pl->count[t])
        return -1;
    return t;
}

/* Zeroes the rows of row-block tensor t that other ranks hold (it stays in
 * blocks: those rows were not this rank's anyway). */
static void zero_others(RtPlan *pl, int t)
{
    const RtDist *d = pl->dist;
    int64_t rows = pl->ir->tensors[t]->shape[0], lo, hi;
    size_t row = row_bytes(pl, t);
    dist_row_range(rows, d->rank_rows[t], d->rank, &lo, &hi);
    memset(pl->bufs[t], 0, (size_t)lo * row);
    memset((char *)pl->bufs[t] + (size_t)hi * row, 0, (size_t)(rows - hi) * row);
}

void rt_dist_before_group(RtPlan *pl, bool is_sink, int g)
{
    RtDist *d = pl->dist;
    const IrProgram *p = pl->ir;
    if (is_sink && d->is_root_results) { /* rank 0 alone runs it (rt_dist_has_results) */
        const Group *grp = p->sink_groups[g];
        for (int i = 0; i < grp->n_ops; i++)
            for (int k = 0; k < grp->ops[i]->n_in; k++)
                gather_to_root(pl, grp->ops[i]->in[k].tensor);
        gather_to_root(pl, grp->tensor); /* a sink of an equation's tensor as it is */
        return;
    }
    if (is_sink) {
        gather_operands(pl, p->sink_groups[g], false, g);
        if (d->rank_rows[p->sink_groups[g]->tensor])
            gather(pl, p->sink_groups[g]->tensor);
        return;
    }
    int t = projected_tensor(pl, g);
    if (t >= 0) { /* each rank sums its rows; rt_dist_after_group adds them up */
        zero_others(pl, t);
        d->summed = g;
        return;
    }
    bool is_rows = d->groups[g].place == DIST_ROWS;
    int last = g; /* a span's kernel computes the groups it absorbs too */
    if (pl->span_head && pl->absorbs && pl->span_head[g] == g)
        last = g + pl->absorbs[g];
    for (int h = g; h <= last && h < p->n_groups; h++)
        gather_operands(pl, p->groups[h], is_rows && h == g, g);
}

void rt_dist_after_group(RtPlan *pl, bool is_sink, int g)
{
    RtDist *d = pl->dist;
    const IrProgram *p = pl->ir;
    if (is_sink) {
        set_rows(pl, p->sink_groups[g]->tensor, 0);
        return;
    }
    if (d->summed == g) {
        int t = p->groups[g]->tensor;
        dist_sum_reals(pl->bufs[t], pl->count[t], rt_tensor_bytes(pl, t));
        d->summed = -1;
    }
    int last = g;
    if (pl->span_head && pl->absorbs && pl->span_head[g] == g)
        last = g + pl->absorbs[g];
    for (int h = g; h <= last && h < p->n_groups; h++)
        set_rows(pl, p->groups[h]->tensor,
                 h == g && d->groups[g].place == DIST_ROWS ? d->group_rows[g] : 0);
}

void rt_dist_gather_all(RtPlan *pl)
{
    for (int t = 0; pl->dist && t < pl->ir->n_tensors; t++)
        if (pl->dist->rank_rows[t])
            gather(pl, t);
}

bool rt_dist_has_results(const RtPlan *pl)
{
    return !pl->dist || !pl->dist->is_root_results || pl->dist->rank == 0;
}

/* How the end of a run (rt_dist_finish) gathers tensor t, held in row blocks:
 * not at all (released after its last reader, footprint.c; or, with the
 * results on rank 0, nothing reads it after the run: not an export), to rank 0
 * (an export then), or to every rank (a query's run keeps everything; a step
 * of a stream is kept for the next run on every rank). */
/* Whether tensor t is an export this run keeps where the ranks computed it,
 * for rt_save_exports. */
static bool is_kept_for_file(const RtPlan *pl, int t)
{
    return pl->dist->keeps_exports && pl->ir->tensors[t]->is_export;
}

static EndGather end_gather(const RtPlan *pl, int t, bool keep_all)
{
    const RtDist *d = pl->dist;
    const IrTensor *ten = pl->ir->tensors[t];
    if (!d->rank_rows[t] || (!keep_all && pl->last_use && pl->last_use[t] >= 0))
        return END_NONE;
    if (is_kept_for_file(pl, t) && !keep_all && !ten->stream)
        return END_NONE;
    if (keep_all || ten->stream || !d->is_root_results)
        return END_EVERY_RANK;
    return ten->is_export ? END_ROOT : END_NONE;
}

void rt_dist_finish(RtPlan *pl, bool keep_all)
{
    RtDist *d = pl->dist;
    if (!d)
        return;
    for (int t = 0; t < pl->ir->n_tensors; t++) {
        EndGather how = end_gather(pl, t, keep_all);
        if (how == END_ROOT)
            gather_to_root(pl, t); /* the others keep their rows: still in blocks */
        else if (how == END_EVERY_RANK)
            gather(pl, t);
        else if (!d->is_root_results && !is_kept_for_file(pl, t))
            d->rank_rows[t] = 0; /* released: nothing of it is read again */
    }
}

bool rt_dist_check_share(const RtPlan *pl, int t, int64_t *lo, int64_t *hi)
{
    if (!pl->dist || pl->dist->size < 2)
        return false;
    rt_dist_cell_share(pl, pl->count[t], 16, lo, hi); /* 64-byte aligned shares */
    return true;
}

void rt_dist_share_checked(RtPlan *pl, int t)
{
    if (pl->dist)
        pl->dist->share_checked[t] = true;
}

/* ---- lists of cells ---- */

void rt_dist_cell_share(const RtPlan *pl, int64_t count, int64_t align, int64_t *lo, int64_t *hi)
{
    const RtDist *d = pl->dist;
    *lo = 0, *hi = count;
    if (!d || d->size < 2)
        return;
    int64_t per = (count + d->size - 1) / d->size;
    per = (per + align - 1) / align * align;
    dist_row_range(count, per, d->rank, lo, hi);
}

int64_t *rt_dist_join_cells(const RtPlan *pl, int64_t *mine, int64_t n, int64_t limit,
                            int64_t *n_all)
{
    const RtDist *d = pl->dist;
    *n_all = n;
    if (!d || d->size < 2)
        return mine;
    int *counts = d->per_rank, *displs = d->per_rank + d->size;
    memset(counts, 0, (size_t)d->size * sizeof *counts);
    counts[d->rank] = mine && n <= limit && n < INT_MAX ? (int)n : -1;
    dist_sum_ints(counts, d->size); /* each slot set by its rank alone */
    int64_t total = 0;
    bool ok = true;
    for (int r = 0; r < d->size; r++) {
        ok &= counts[r] >= 0;
        total += counts[r];
    }
    ok = ok && total <= limit && total < INT_MAX;
    int64_t *all = ok ? malloc((size_t)(total > 0 ? total : 1) * sizeof *all) : NULL;
    if (!ok || !dist_agree_ok(all != NULL) || !dist_gather_lists(mine, all, counts, displs)) {
        free(all); /* the same outcome on every rank: none, so nobody gathers */
        all = NULL;
    }
    free(mine);
    *n_all = all ? total : 0;
    return all;
}

/* ---- exports to a file ---- */

void rt_dist_keep_exports(RtPlan *pl, bool keep)
{
    if (pl->dist)
        pl->dist->keeps_exports = keep;
}

bool rt_dist_is_root(const RtPlan *pl)
{
    return !pl->dist || pl->dist->rank == 0;
}

int rt_dist_rows_holder(const RtPlan *pl, int t, int64_t row, int64_t *end)
{
    const RtDist *d = pl->dist;
    int64_t rows = pl->ir->tensors[t]->rank > 0 ? pl->ir->tensors[t]->shape[0] : 1;
    *end = rows;
    if (!d || !d->rank_rows[t] || d->on_root[t])
        return 0;
    int64_t b = d->rank_rows[t], k = row / b;
    int holder = d->dealt[t] ? d->owner[t][k] : (int)k;
    while (d->dealt[t] && (k + 1) * b < rows && d->owner[t][k + 1] == holder)
        k++;
    *end = (k + 1) * b < rows ? (k + 1) * b : rows;
    return holder;
}

bool rt_dist_rows_to_root(RtPlan *pl, int holder, const void *rows, size_t bytes, void *scratch,
                          bool (*put)(void *ctx, const void *p, size_t n), void *ctx)
{
    int rank = pl->dist ? pl->dist->rank : 0;
    if (holder == 0)
        return rank != 0 || put(ctx, rows, bytes);
    bool ok = true;
    for (size_t at = 0; at < bytes && (rank == 0 || rank == holder); at += RT_ROWS_SCRATCH) {
        size_t n = bytes - at < RT_ROWS_SCRATCH ? bytes - at : RT_ROWS_SCRATCH;
        if (rank == holder)
            ok &= dist_send((const char *)rows + at, n, 0);
        else if (dist_recv(scratch, n, holder))
            ok = ok && put(ctx, scratch, n); /* a failed write still takes every piece */
        else
            ok = false;
    }
    return ok;
}

/* Runs this rank's block of rows of DIST_ROWS group g: no merge. */
static void run_rows(RtPlan *pl, int g)
{
    RtDist *d = pl->dist;
    float **bufs = rt_group_bufs(pl, false, g);
    int base = d->rank * d->team; /* the scratch table as in rt_dist_run_group */
    bufs[pl->gbufs[g].n - 1] = (float *)((uintptr_t)d->scratch - (uintptr_t)base * d->stride[g]);
    run_shares(pl->group_fn[g], bufs, base, d->team, d->team * d->size, rt_stop_flag(pl));
}

bool rt_dist_run_group(RtPlan *pl, int g)
{
    RtDist *d = pl->dist;
    if (!d || d->groups[g].place == DIST_REPLICATED)
        return false;
    if (d->groups[g].place == DIST_ROWS) {
        run_rows(pl, g);
        return true;
    }
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

bool rt_dist_delta_span(const RtPlan *pl, int g, int i, int64_t *lo, int64_t *hi)
{
    const RtDist *d = pl->dist;
    int t = pl->ir->groups[g]->tensor;
    if (!d || !d->delta_rows[g]) {
        *lo = 0;
        *hi = pl->count[t];
        return i == 0;
    }
    if (i >= DIST_DELTA_ROUNDS)
        return false;
    int64_t rows = pl->ir->tensors[t]->shape[0], row = pl->count[t] / rows, a, b;
    dist_row_range(rows, d->delta_rows[g], i * d->size + d->rank, &a, &b);
    *lo = a * row;
    *hi = b * row;
    return true;
}

bool rt_dist_run_base(RtPlan *pl, int g, RtKernel base)
{
    RtDist *d = pl->dist;
    if (!d || !d->delta_rows[g])
        return false;
    int t = pl->ir->groups[g]->tensor;
    int64_t rows = pl->ir->tensors[t]->shape[0], lo, hi;
    size_t row = row_bytes(pl, t);
    for (int k = 0; k < DIST_DELTA_ROUNDS; k++) { /* the blocks of rt_dist_delta_span */
        dist_row_range(rows, d->delta_rows[g], k * d->size + d->rank, &lo, &hi);
        if (lo >= hi)
            continue;
        memset((char *)pl->bufs[t] + (size_t)lo * row, 0, (size_t)(hi - lo) * row);
        run_shares(base, pl->bufs, (k * d->size + d->rank) * d->team, d->team,
                   (int)delta_shares(d), rt_stop_flag(pl));
    }
    return true;
}

void rt_dist_base_done(RtPlan *pl, int g)
{
    RtDist *d = pl->dist;
    if (!d || !d->delta_rows[g])
        return;
    int t = pl->ir->groups[g]->tensor;
    int64_t rows = pl->ir->tensors[t]->shape[0], b = d->delta_rows[g];
    for (int64_t k = 0; k < (rows + b - 1) / b; k++) /* rt_dist_delta_span's blocks */
        d->owner[t][k] = (int)(k % d->size);
    set_dealt(pl, t, b, d->owner[t]);
}

bool rt_dist_claims(const RtPlan *pl, int g, int team)
{
    const RtDist *d = pl->dist;
    return d && d->delta_rows[g] && (team == 1 || dist_any_thread());
}

void rt_dist_claims_begin(RtPlan *pl)
{
    RtDist *d = pl->dist;
    d->claims = 0;
    d->counter = dist_counter_new(); /* NULL on every rank: dealt in turn */
}

int64_t rt_dist_claim(RtPlan *pl)
{
    RtDist *d = pl->dist;
    if (d->counter)
        return dist_counter_next(d->counter);
    return d->claims++ * d->size + d->rank;
}

void rt_dist_claims_end(RtPlan *pl, int g0, int g1, int64_t block_rows, int64_t n,
                        const uint8_t *mine)
{
    RtDist *d = pl->dist;
    dist_counter_free(d->counter);
    d->counter = NULL;
    int *owner = d->owner[pl->ir->groups[g0]->tensor]; /* each block claimed by one rank */
    for (int64_t k = 0; k < n; k++)
        owner[k] = mine[k] ? d->rank + 1 : 0;
    dist_sum_ints(owner, (int)n);
    for (int64_t k = 0; k < n; k++)
        owner[k]--; /* -1: nobody ran it (every rank failed; the run fails) */
    for (int g = g0; g < g1; g++)
        set_dealt(pl, pl->ir->groups[g]->tensor, block_rows, owner);
}

bool rt_dist_fills_root(const RtPlan *pl, int g)
{
    const RtDist *d = pl->dist;
    return d && d->size > 1 && d->rank == 0 && d->is_root_results && !d->keeps_exports &&
           pl->ir->tensors[pl->ir->groups[g]->tensor]->is_export;
}

bool rt_dist_delta_share(const RtPlan *pl, int g, int i, int64_t *share, int64_t *nth)
{
    const RtDist *d = pl->dist;
    if (!d || !d->delta_rows[g] || i < 0 || i >= DIST_DELTA_ROUNDS * d->team)
        return false;
    int k = i / d->team, j = i % d->team; /* round k, thread share j of it */
    *share = (int64_t)(k * d->size + d->rank) * d->team + j;
    *nth = delta_shares(d);
    return true;
}

bool rt_dist_run_delta(RtPlan *pl, int g, RtKernel delta)
{
    RtDist *d = pl->dist;
    if (!d || !is_split_delta(pl, g, d->size))
        return false;
    if (d->delta_rows[g]) { /* this rank's blocks of rows only; they stay here */
        for (int k = 0; k < DIST_DELTA_ROUNDS; k++)
            run_shares(delta, pl->bufs, (k * d->size + d->rank) * d->team, d->team,
                       (int)delta_shares(d), rt_stop_flag(pl));
        return true;
    }
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

/* What explain adds up: bytes all-reduced and (modelled) gathered per run. */
typedef struct ExplainSum {
    uint64_t reduced, gathered;
    int n_place[DIST_PLACE_COUNT];
    int n_summed; /* replicated groups run as projections over row blocks */
} ExplainSum;

/* A gather of row-block tensor t as explain reports it: the model's bytes a
 * rank receives ((R - 1) / R of the tensor), added to the sum; `who` receives
 * them ("each rank", or "rank 0" when the results stay there). */
static void explain_gather(const RtPlan *pl, int t, const char *who, const char *why, SupBuf *sb,
                           ExplainSum *s)
{
    uint64_t all = (uint64_t)pl->count[t] * rt_tensor_bytes(pl, t);
    uint64_t got = dist_model_gather_bytes(all, pl->dist->size);
    char bytes[32];
    rt_format_bytes(got, bytes, sizeof bytes);
    sup_buf_printf(sb, "  %-16s gathered   %s (%llu bytes) received by %s, %s\n",
                   pl->ir->tensors[t]->name, bytes, (unsigned long long)got, who, why);
    s->gathered += got;
    pl->dist->rank_rows[t] = 0;
}

static void explain_group(const RtPlan *pl, int g, SupBuf *sb, ExplainSum *s)
{
    RtDist *d = pl->dist;
    const IrProgram *p = pl->ir;
    const Group *grp = p->groups[g];
    const DistGroupPlan *gp = &d->groups[g];
    bool is_rows = gp->place == DIST_ROWS;
    int summed = projected_tensor(pl, g);
    if (summed >= 0) { /* rt_dist_before_group, rt_dist_after_group */
        uint64_t bytes = (uint64_t)pl->count[grp->tensor] * rt_tensor_bytes(pl, grp->tensor);
        char text[32];
        rt_format_bytes(bytes, text, sizeof text);
        sup_buf_printf(sb, "  %-16s summed     each rank sums its rows of %s, then all-reduce %s "
                           "(%llu bytes) per run\n", p->tensors[grp->tensor]->name,
                       p->tensors[summed]->name, text, (unsigned long long)bytes);
        d->rank_rows[grp->tensor] = 0;
        s->reduced += bytes;
        s->n_summed++;
        return;
    }
    for (int i = 0; i < grp->n_ops; i++) /* row blocks it reads whole (before_group) */
        for (int k = 0; k < grp->ops[i]->n_in; k++)
            if (!reads_as_is(pl, grp->ops[i], k, is_rows, g))
                explain_gather(pl, grp->ops[i]->in[k].tensor, "each rank", "read whole next", sb,
                               s);
    char bytes[32];
    rt_format_bytes(gp->bytes, bytes, sizeof bytes);
    const char *per = grp->is_recursive ? "per sweep" : "per run";
    sup_buf_printf(sb, "  %-16s %-10s", p->tensors[grp->tensor]->name, dist_place_name(gp->place));
    if (gp->place == DIST_SPLIT)
        sup_buf_printf(sb, " all-reduce %s (%llu bytes) %s; each rank runs 1/%d of the "
                           "kernel's thread shares\n", bytes, (unsigned long long)gp->bytes, per,
                       d->size);
    else if (is_rows)
        sup_buf_printf(sb, " nothing moved; each rank computes and keeps its block of %lld "
                           "rows\n", (long long)d->group_rows[g]);
    else if (d->delta_rows[g])
        sup_buf_printf(sb, " nothing moved; with semi_naive its sweeps stay in row blocks\n"
                           "                              that the ranks claim as they go (or "
                           "%lld rows\n"
                           "                              dealt in turn), gathered where read "
                           "whole\n",
                       (long long)d->delta_rows[g]);
    else
        sup_buf_printf(sb, " nothing moved%s\n",
                       is_split_delta(pl, g, d->size)
                           ? "; with semi_naive its delta sweeps split, all-reducing\n"
                             "                              its cells as bits per sweep"
                           : "");
    d->rank_rows[grp->tensor] = is_rows ? d->group_rows[g] : 0;
    s->reduced += gp->bytes;
    s->n_place[gp->place]++;
}

/* Walks one plain run (single mode) with the runtime's rules for row blocks,
 * on the plan's block table (cleared first: a run with the results on rank 0
 * leaves blocks; and left empty, as a run starts anyway). */
fuse_status rt_dist_explain(const RtPlan *pl, char **out)
{
    RtDist *d = pl->dist;
    memset(d->rank_rows, 0, (size_t)pl->ir->n_tensors * sizeof *d->rank_rows);
    memset(d->dealt, 0, (size_t)pl->ir->n_tensors * sizeof *d->dealt);
    SupBuf sb = {0};
    sup_buf_printf(&sb, "distribution over %d MPI rank%s, %d thread%s each: a tensor is whole "
                   "on every rank, or in row blocks (rows)\n", d->size, d->size == 1 ? "" : "s",
                   d->team, d->team == 1 ? "" : "s");
    ExplainSum s = {0};
    for (int t = 0; t < pl->ir->n_tensors; t++) /* rt_dist_source_rows */
        if (d->src_rows[t]) {
            sup_buf_printf(&sb, "  %-16s source     each rank reads only its block of %lld rows "
                                "of the file (when it is mapped:\n"
                                "                              a .npy of 16 MiB or more; "
                                "float32 used in place)\n",
                           pl->ir->tensors[t]->name, (long long)d->src_rows[t]);
            d->rank_rows[t] = d->src_rows[t];
        }
    for (int g = 0; g < pl->ir->n_groups; g++)
        explain_group(pl, g, &sb, &s);
    for (int t = 0; t < pl->ir->n_tensors; t++) { /* what rt_dist_finish gathers */
        EndGather how = end_gather(pl, t, false);
        if (how != END_NONE)
            explain_gather(pl, t, how == END_ROOT ? "rank 0" : "each rank",
                           how == END_ROOT && pl->ir->tensors[t]->is_export
                               ? "at the end of the run (or as it writes an .npz/.npy --out)"
                               : "at the end of the run",
                           &sb, &s);
    }
    memset(d->rank_rows, 0, (size_t)pl->ir->n_tensors * sizeof *d->rank_rows);
    char reduced[32], model[32], gathered[32];
    rt_format_bytes(s.reduced, reduced, sizeof reduced);
    rt_format_bytes(dist_model_bytes(s.reduced, d->size), model, sizeof model);
    rt_format_bytes(s.gathered, gathered, sizeof gathered);
    sup_buf_printf(&sb, "total: %d rows, %d split, %d summed, %d replicated; when each runs once, "
                        "%s (%llu bytes) all-reduced (ring model: %s sent by each rank) and %s "
                        "(%llu bytes) gathered by rank 0\n",
                   s.n_place[DIST_ROWS], s.n_place[DIST_SPLIT], s.n_summed,
                   s.n_place[DIST_REPLICATED],
                   reduced, (unsigned long long)s.reduced, model, gathered,
                   (unsigned long long)s.gathered);
    *out = sup_buf_finish(&sb);
    return *out ? FUSE_OK : FUSE_E_NOMEM;
}
