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

/* The rows a right-linear component's sweep may have written (row_local_rows):
 * now[x] when some delta had a fact in row x (the merge looks at those rows
 * only), next[x] filled by the merge for the next sweep. */
typedef struct LiveRows {
    int64_t rows;
    uint8_t *now, *next;
} LiveRows;

/* Per tensor: the index of non-zeros a sparse join of the component reads
 * (lower_delta_sparse_operand), NULL when the operand is too dense for it to
 * help (the join then loops over the whole axis); is_read[t]: some join may
 * read t so, and its slot bufs[n_tensors + t] is bound during the delta
 * kernels. */
typedef struct SparseIndexes {
    int64_t **index;
    bool *is_read;
} SparseIndexes;

static bool in_component(const RtPlan *pl, int g0, int g1, int tensor)
{
    for (int g = g0; g < g1; g++)
        if (pl->ir->groups[g]->tensor == tensor)
            return true;
    return false;
}

/* Element i of a buffer of dtype dt, as double. */
static double elem_of(fuse_dtype dt, const void *v, int64_t i)
{
    switch (dt) {
    case FUSE_F64: return ((const double *)v)[i];
    case FUSE_BF16: return io_bf16_to_float(((const uint16_t *)v)[i]);
    case FUSE_F16: return io_half_to_float(((const uint16_t *)v)[i]);
    default: return ((const float *)v)[i];
    }
}

/* Whether every cell of tensor t is >= 0 (NaN is not), read in its buffer's
 * own dtype: a 16-bit source kept as it was bound has one other than the
 * runner's (rt_keep_sources). */
static bool buffer_non_negative(const RtPlan *pl, int t)
{
    const void *v = pl->bufs[t];
    fuse_dtype dt = rt_tensor_dtype(pl, t);
    if (dt == FUSE_F32) { /* plain float loads */
        bool ok = true;
        for (int64_t i = 0; i < pl->count[t]; i++)
            ok &= ((const float *)v)[i] >= 0.0f;
        return ok;
    }
    if (dt != FUSE_F64 && dt != FUSE_BF16 && dt != FUSE_F16)
        return false; /* no other buffer type: say not monotone */
    for (int64_t i = 0; i < pl->count[t]; i++)
        if (!(elem_of(dt, v, i) >= 0.0))
            return false;
    return true;
}

/* The operands outside the component must be non-negative for the rules to be
 * monotone (a new fact can then never remove one). Each tensor is read once
 * (checked[t]; `Edge` in both joins of a closure is one pass, not two). */
static bool operands_non_negative(const RtPlan *pl, const Group *grp, int g0, int g1,
                                  bool *checked)
{
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            const Operand *o = &grp->ops[i]->in[k];
            if ((o->reads_prev && in_component(pl, g0, g1, o->tensor)) || checked[o->tensor])
                continue;
            if (!buffer_non_negative(pl, o->tensor))
                return false;
            checked[o->tensor] = true;
        }
    return true;
}

/* The prefix of the delta kernels' names: the same in every plan, so that a
 * cached object serves any (each object loads into a JITDylib of its own). */
#define DELTA_PREFIX "fuse_sn_"

static void log_cache_warning(const RtPlan *pl, char *warning)
{
    if (warning)
        rt_log(pl, FUSE_LEVEL_WARNING, "%s", warning);
    free(warning);
}

/* The object file of the delta kernels of the groups with want[]: from the
 * code cache (memory, then disk), else compiled and stored there. */
static fuse_status delta_object(RtPlan *pl, const bool *want, const LowerOptions *opt,
                                void **obj, size_t *n, char **err)
{
    JitKey key;
    JitHit hit = JIT_MISS;
    char *warning = NULL;
    fuse_status st = pl->cache ? rt_plan_extra_key(pl, "semi-naive delta kernels", &key)
                               : FUSE_OK;
    if (st == FUSE_OK && pl->cache)
        st = jit_cache_get(pl->cache, &key, pl->cache_dir, obj, n, &hit, &warning);
    log_cache_warning(pl, warning);
    if (st != FUSE_OK || hit != JIT_MISS)
        return st;
    JitModule *jm = jit_module_new(pl->js, DELTA_PREFIX);
    st = jm ? FUSE_OK : FUSE_E_NOMEM;
    if (st == FUSE_OK)
        st = lower_delta_program(pl->ir, jit_module_llvm(jm), opt, want, err);
    if (st == FUSE_OK)
        st = jit_module_optimize(pl->js, jm, err);
    if (st == FUSE_OK)
        st = jit_module_emit_object(pl->js, jm, obj, n, err);
    jit_module_free(jm);
    if (st == FUSE_OK && pl->cache) { /* a failed store only costs a later compile */
        warning = NULL;
        jit_cache_put(pl->cache, &key, pl->cache_dir, *obj, *n, &warning);
        log_cache_warning(pl, warning);
    }
    return st;
}

/* Loads the delta kernels of the plan's eligible groups once (made on the
 * first semi-naive run, through the code cache). */
static fuse_status compile_deltas(RtPlan *pl)
{
    RtModes *m = pl->modes;
    const IrProgram *p = pl->ir;
    if (m->delta_fn || !pl->js)
        return m->delta_fn ? FUSE_OK : FUSE_E_UNSUPPORTED;
    bool *want = calloc((size_t)p->n_groups + 1, sizeof *want);
    RtKernel *fns = calloc((size_t)p->n_groups + 1, sizeof *fns);
    RtKernel *base = calloc((size_t)p->n_groups + 1, sizeof *base);
    char *err = NULL;
    void *obj = NULL;
    size_t n_obj = 0;
    LowerOptions opt;
    rt_lower_options(pl, DELTA_PREFIX, &opt);
    fuse_status st = want && fns && base ? FUSE_OK : FUSE_E_NOMEM;
    for (int g = 0; st == FUSE_OK && g < p->n_groups; g++)
        want[g] = lower_delta_eligible(p, g);
    if (st == FUSE_OK)
        st = delta_object(pl, want, &opt, &obj, &n_obj, &err);
    if (st == FUSE_OK)
        st = jit_object_load(pl->js, obj, n_obj, &m->delta_code, &err);
    free(obj);
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

bool rt_any_live_row(const uint8_t *live, int64_t lo, int64_t hi)
{
    for (int64_t x = lo; live && x < hi; x++)
        if (live[x])
            return true;
    return !live;
}

/* A kernel alone on one thread runs as this many shares of rows (a right-linear
 * component's), those without a live row skipped. */
#define LIVE_SHARES 64

/* Group g's delta kernel on one thread, as LIVE_SHARES shares of rows run one
 * after the other (the kernel ABI allows a share alone), skipping the shares
 * whose rows all had empty deltas: the kernel would only scan them. */
static void run_live_shares(RtPlan *pl, int g, const LiveRows *live)
{
    LowerOptions opt; /* as compile_deltas compiled the kernel */
    rt_lower_options(pl, "", &opt);
    int64_t chunk = 0;
    RtKernel k = pl->modes->delta_fn[g];
    if (!lower_delta_row_chunk(pl->ir, g, LIVE_SHARES, &opt, &chunk) || chunk < 1) {
        k(pl->bufs, 0, 1, rt_no_barrier, rt_stop_flag(pl));
        return;
    }
    for (int s = 0; s < LIVE_SHARES; s++) {
        int64_t lo = s * chunk, hi = lo + chunk < live->rows ? lo + chunk : live->rows;
        if (rt_any_live_row(live->now, lo, hi))
            k(pl->bufs, s, LIVE_SHARES, rt_no_barrier, rt_stop_flag(pl));
    }
}

/* A delta kernel runs on the thread team when its relation has 2^16 cells or
 * more (each join then ORs its share of rows: emit_delta.c), else alone. */
static void run_delta(RtPlan *pl, int g, const LiveRows *live)
{
    if (pl->dist && rt_dist_run_delta(pl, g, pl->modes->delta_fn[g], live ? live->now : NULL))
        return; /* this rank's share of the rows, merged across the ranks */
    int nth = pl->count[pl->ir->groups[g]->tensor] >= (1 << 16) ? rt_parallel_threads(pl->threads)
                                                                 : 1;
    if (nth > 1)
        rt_parallel_run(pl->modes->delta_fn[g], pl->bufs, nth, rt_stop_flag(pl));
    else if (live)
        run_live_shares(pl, g, live);
    else
        pl->modes->delta_fn[g](pl->bufs, 0, 1, rt_no_barrier, rt_stop_flag(pl));
}

void rt_semi_naive_base(RtPlan *pl, int g)
{
    RtKernel k = pl->modes->base_fn[g];
    if (pl->dist && rt_dist_run_base(pl, g, k))
        return; /* MPI: this rank's blocks of rows */
    int t = pl->ir->groups[g]->tensor;
    memset(pl->bufs[t], 0, (size_t)pl->count[t] * rt_elem_bytes(pl));
    int nth = pl->count[t] >= (1 << 16) ? rt_parallel_threads(pl->threads) : 1;
    if (nth > 1)
        rt_parallel_run(k, pl->bufs, nth, rt_stop_flag(pl));
    else
        k(pl->bufs, 0, 1, rt_no_barrier, rt_stop_flag(pl));
}

/* Before the first sweep: operands outside the component are computed already. */
bool rt_semi_naive_applies(RtPlan *pl, int g0, int g1)
{
    const IrProgram *p = pl->ir;
    bool *checked = calloc((size_t)p->n_tensors + 1, sizeof *checked);
    bool ok = checked != NULL;
    for (int g = g0; g < g1 && ok; g++) {
        const Group *grp = p->groups[g];
        ok = lower_delta_eligible(p, g) && pl->bufs[p->n_tensors + grp->tensor] &&
             operands_non_negative(pl, grp, g0, g1, checked);
    }
    free(checked);
    return ok && compile_deltas(pl) == FUSE_OK;
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

/* Rows of a component whose sweeps skip the rows without news (LiveRows): every
 * relation of the component has that many rows (axis 0), and every delta join
 * reads the component's relations row for row (a right-linear recursion such as
 * `Path(x,z) = Path(x,y) Edge(y,z)`), so row x of a sweep's results comes only
 * from row x of the deltas: a row whose deltas are empty gets nothing. 0 when
 * that does not hold. */
static int64_t row_local_rows(const RtPlan *pl, int g0, int g1)
{
    const IrProgram *p = pl->ir;
    int64_t rows = p->tensors[p->groups[g0]->tensor]->shape[0];
    for (int g = g0; g < g1; g++) {
        const Group *grp = p->groups[g];
        const IrTensor *t = p->tensors[grp->tensor];
        if (t->rank < 1 || t->shape[0] != rows || rows < 1 || pl->count[grp->tensor] < rows)
            return 0; /* no rows, or empty ones */
        for (int i = 0; i < grp->n_ops; i++)
            for (int k = 0; k < grp->ops[i]->n_in; k++)
                if (in_component(pl, g0, g1, grp->ops[i]->in[k].tensor) &&
                    !lower_reads_own_rows(p, grp->ops[i], k))
                    return 0;
    }
    return rows;
}

/* The float32 merge of `cells` cells: new facts (set in cur, not in full) go
 * to delta and full, cur is cleared for the next sweep; returns their count. */
static int64_t merge_f32(float *restrict cur, float *restrict full, float *restrict delta,
                         int64_t cells)
{
    int64_t news = 0;
    for (int64_t i = 0; i < cells; i++) { /* no branch: the compiler vectorises it */
        float c = cur[i], f = full[i];
        int is_new = (c != 0.0f) & (f == 0.0f);
        delta[i] = is_new ? 1.0f : 0.0f;
        full[i] = is_new ? 1.0f : f;
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

/* The merge of the `cells` cells of group g's buffers from cell `first` on
 * (merge_f32 in the runner's element type). */
static int64_t merge_cells(RtPlan *pl, int g, int64_t first, int64_t cells)
{
    int n = pl->ir->n_tensors, t = pl->ir->groups[g]->tensor;
    size_t at = (size_t)first * rt_elem_bytes(pl);
    char *cur = (char *)pl->bufs[t] + at, *full = (char *)pl->bufs[n + t] + at;
    char *delta = (char *)pl->modes->delta[g] + at;
    if (pl->precision == FUSE_PRECISION_FP32) /* float loads, as fast as before */
        return merge_f32((float *)cur, (float *)full, (float *)delta, cells);
    int64_t news = 0;
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

/* merge over the span of `bytes` bytes at `at`: row by row with `live` (the
 * rows not live were not written and their deltas are empty: skipped; a row
 * with new facts is live next sweep), else at once. */
static int64_t merge_span(RtPlan *pl, int g, bool was_run, size_t at, size_t bytes,
                          LiveRows *live)
{
    size_t es = rt_elem_bytes(pl);
    int64_t first = (int64_t)(at / es), cells = (int64_t)(bytes / es);
    if (!was_run) { /* cur is still all zeros */
        memset((char *)pl->modes->delta[g] + at, 0, bytes);
        return 0;
    }
    if (!live)
        return merge_cells(pl, g, first, cells);
    int64_t row = pl->count[pl->ir->groups[g]->tensor] / live->rows, news = 0;
    for (int64_t x = first / row; x < (first + cells) / row; x++) {
        if (!live->now[x])
            continue;
        int64_t row_news = merge_cells(pl, g, x * row, row);
        live->next[x] |= row_news > 0;
        news += row_news;
    }
    return news;
}

/* Merges group g's result (cur) into its full relation (prev): new facts go to
 * the delta and are counted, and cur is left all zeros, as the next sweep's
 * delta kernel needs it (one pass over the cells, not a merge and a clear). */
static int64_t merge(RtPlan *pl, int g, bool was_run, LiveRows *live)
{
    int64_t news = 0;
    size_t at, bytes;
    for (int i = 0; swept_bytes(pl, g, i, &at, &bytes); i++)
        news += merge_span(pl, g, was_run, at, bytes, live);
    return news;
}

/* An operand with more than one cell in SPARSE_MAX_SHARE > 0 is read whole:
 * a vector loop over a row then costs less than a jump per non-zero. */
#define SPARSE_MAX_SHARE 8

/* Whether cell i of buffer v (of dtype dt) is > 0; is_f32: dt is FUSE_F32
 * (plain float loads, which the compiler vectorises). */
static inline bool is_positive(fuse_dtype dt, bool is_f32, const void *v, int64_t i)
{
    return is_f32 ? ((const float *)v)[i] > 0.0f : elem_of(dt, v, i) > 0.0;
}

/* Cells tested at once by positive_cells: a block without a cell > 0 costs one
 * vectorised test. */
#define SPARSE_BLOCK 16

/* The cells of tensor t that are > 0, in memory order (a malloc'd list of *n);
 * NULL when there are more than `limit` or out of memory. */
static int64_t *positive_cells(const RtPlan *pl, int t, int64_t limit, int64_t *n)
{
    int64_t count = pl->count[t], cap = 256, k = 0;
    const void *v = pl->bufs[t];
    fuse_dtype dt = rt_tensor_dtype(pl, t);
    bool is_f32 = dt == FUSE_F32;
    int64_t *list = malloc((size_t)cap * sizeof *list);
    for (int64_t i = 0; list && i < count; i += SPARSE_BLOCK) {
        int64_t end = count - i < SPARSE_BLOCK ? count : i + SPARSE_BLOCK;
        if (is_f32 && end - i == SPARSE_BLOCK) {
            const float *f = (const float *)v + i;
            int any = 0;
            for (int j = 0; j < SPARSE_BLOCK; j++)
                any |= f[j] > 0.0f;
            if (!any)
                continue;
        }
        for (int64_t j = i; j < end; j++) {
            if (!is_positive(dt, is_f32, v, j))
                continue;
            if (k == limit) {
                free(list);
                return NULL;
            }
            if (k == cap) {
                int64_t *more = realloc(list, (size_t)(cap *= 2) * sizeof *list);
                if (!more)
                    free(list);
                list = more;
                if (!list)
                    return NULL;
            }
            list[k++] = j;
        }
    }
    *n = k;
    return list;
}

/* The index of non-zeros of tensor t along slot f (lower.h) when at most a
 * share 1 / SPARSE_MAX_SHARE of its cells are > 0; NULL otherwise or out of
 * memory (the join then reads it whole: the same result). Cell i of t is
 * (outer, c, inner) with c its position along f: its row is outer x inner
 * cells + inner. Its cells > 0, found in memory order, are counted per row and
 * then placed, so each row's positions come out increasing. */
static int64_t *sparse_index(const RtPlan *pl, int t, int f)
{
    const IrTensor *x = pl->ir->tensors[t];
    int64_t count = pl->count[t], dim = x->shape[f], inner = 1, nnz = 0;
    for (int j = f + 1; j < x->rank; j++)
        inner *= x->shape[j];
    if (dim < 1 || count < 1 || !pl->bufs[t])
        return NULL;
    int64_t *cells = positive_cells(pl, t, count / SPARSE_MAX_SHARE, &nnz);
    if (!cells)
        return NULL;
    int64_t rows = count / dim;
    int64_t *ix = calloc((size_t)(rows + 1 + nnz), sizeof *ix), *cols = ix + rows + 1;
    int64_t *next = malloc((size_t)rows * sizeof *next);
    for (int64_t k = 0; ix && next && k < nnz; k++) {
        int64_t i = cells[k], at = i / inner;
        ix[at / dim * inner + i % inner + 1]++;
    }
    for (int64_t r = 0; ix && next && r < rows; r++) { /* counts to starts */
        ix[r + 1] += ix[r];
        next[r] = ix[r];
    }
    for (int64_t k = 0; ix && next && k < nnz; k++) {
        int64_t i = cells[k], at = i / inner;
        cols[next[at / dim * inner + i % inner]++] = at % dim;
    }
    if (!next) {
        free(ix);
        ix = NULL;
    }
    free(next);
    free(cells);
    return ix;
}

/* The indexes of the sparse joins of [g0, g1); false when out of memory. A
 * tensor read along two slots gets none (its joins read it whole). */
static bool sparse_indexes_make(const RtPlan *pl, int g0, int g1, SparseIndexes *sp)
{
    int n = pl->ir->n_tensors;
    sp->index = calloc((size_t)n + 1, sizeof *sp->index);
    sp->is_read = calloc((size_t)n + 1, sizeof *sp->is_read);
    int *slot_of = calloc((size_t)n + 1, sizeof *slot_of); /* 1 + the slot, -1: two */
    if (!sp->index || !sp->is_read || !slot_of) {
        free(slot_of);
        return false;
    }
    for (int g = g0; g < g1; g++) {
        const Group *grp = pl->ir->groups[g];
        for (int i = 0; i < grp->n_ops; i++) {
            int f = 0, k = lower_delta_sparse_operand(pl->ir, g, grp->ops[i], &f);
            int t = k >= 0 ? grp->ops[i]->in[k].tensor : -1;
            if (t >= 0) {
                sp->is_read[t] = true;
                slot_of[t] = slot_of[t] == 0 || slot_of[t] == f + 1 ? f + 1 : -1;
            }
        }
    }
    for (int t = 0; t < n; t++)
        if (slot_of[t] > 0)
            sp->index[t] = sparse_index(pl, t, slot_of[t] - 1);
    free(slot_of);
    return true;
}

static void sparse_indexes_free(const RtPlan *pl, SparseIndexes *sp)
{
    for (int t = 0; sp->index && t < pl->ir->n_tensors; t++)
        free(sp->index[t]);
    free(sp->index);
    free(sp->is_read);
}

/* Binds the indexes to their slots for the delta kernels, keeping what those
 * held in saved[] (bind false: puts that back). */
static void sparse_indexes_bind(RtPlan *pl, const SparseIndexes *sp, float **saved, bool bind)
{
    int n = pl->ir->n_tensors;
    for (int t = 0; t < n; t++) {
        if (!sp->is_read[t])
            continue;
        if (bind) {
            saved[t] = pl->bufs[n + t];
            pl->bufs[n + t] = (float *)sp->index[t];
        } else
            pl->bufs[n + t] = saved[t];
    }
}

/* One delta sweep over [g0, g1); returns the number of new facts. */
static int64_t delta_sweep(RtPlan *pl, int g0, int g1, int it, bool *has_news, LiveRows *live,
                           const SparseIndexes *sp)
{
    int n = pl->ir->n_tensors;
    float **saved = calloc((size_t)(g1 - g0), sizeof *saved);
    float **saved_ix = calloc((size_t)n + 1, sizeof *saved_ix);
    bool *ran = calloc((size_t)(g1 - g0), sizeof *ran);
    RtTraceEntry *es = calloc((size_t)(g1 - g0), sizeof *es);
    if (!saved || !saved_ix || !ran || !es) {
        free(saved), free(saved_ix), free(ran), free(es);
        return -1;
    }
    sparse_indexes_bind(pl, sp, saved_ix, true);
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
        run_delta(pl, g, live); /* into cur, all zeros (rt_semi_naive_run, merge) */
        e->ms = sup_clock_ms() - t0;
        ran[g - g0] = true;
    }
    for (int g = g0; g < g1; g++)
        pl->bufs[n + pl->ir->groups[g]->tensor] = saved[g - g0];
    sparse_indexes_bind(pl, sp, saved_ix, false);
    int64_t total = 0;
    for (int g = g0; g < g1; g++) {
        RtTraceEntry *e = &es[g - g0];
        e->changed = merge(pl, g, ran[g - g0], live);
        e->max_delta = e->changed ? 1.0 : 0.0;
        if (ran[g - g0])
            e->status = e->changed ? RT_EVAL_EVALUATED : RT_EVAL_UNCHANGED;
        has_news[pl->ir->groups[g]->tensor] = e->changed > 0;
        total += e->changed;
        rt_trace_add(&pl->modes->trace, e);
    }
    free(saved), free(saved_ix), free(ran), free(es);
    if (live) { /* the rows with new facts are the next sweep's */
        uint8_t *was = live->now;
        live->now = live->next;
        live->next = was;
        memset(live->next, 0, (size_t)live->rows);
    }
    return total;
}

int rt_semi_naive_run(RtPlan *pl, int g0, int g1, int first_sweep, int max_iters,
                      bool *is_converged)
{
    bool *has_news = calloc((size_t)pl->ir->n_tensors + 1, sizeof *has_news);
    int it = first_sweep;
    *is_converged = false;
    SparseIndexes sp = {0};
    bool ok = has_news != NULL && sparse_indexes_make(pl, g0, g1, &sp);
    for (int g = g0; g < g1 && ok; g++)
        ok = delta_buffer(pl, g) != NULL;
    /* MPI: every rank has its buffers, or none goes on */
    if (rt_dist_agree(pl, ok ? FUSE_OK : FUSE_E_NOMEM, "to allocate the semi-naive deltas") !=
        FUSE_OK) {
        sparse_indexes_free(pl, &sp);
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
    /* every row may have facts at first */
    LiveRows rows = {.rows = row_local_rows(pl, g0, g1)}, *live = NULL;
    if (rows.rows > 0) {
        rows.now = malloc((size_t)rows.rows);
        rows.next = calloc((size_t)rows.rows, 1);
        if (rows.now && rows.next) {
            memset(rows.now, 1, (size_t)rows.rows);
            live = &rows;
        }
    }
    for (; it < max_iters && !rt_stop_now(pl); it++) {
        int64_t local = delta_sweep(pl, g0, g1, it, has_news, live, &sp);
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
    }
    free(rows.now);
    free(rows.next);
    sparse_indexes_free(pl, &sp);
    free(has_news);
    return it;
}
