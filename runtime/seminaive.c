/*
 * seminaive.c: the semi-naive fixpoint strategy for boolean components (SPEC
 * §6.2). The first sweep runs base kernels (only the joins without a recursive
 * operand, which would read nothing yet: schedule.c over whole relations, or
 * here block by block, see "row-local components"); then each sweep joins only
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
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "jit.h"
#include "lower.h"
#include "modes.h"

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
 * runner's (rt_keep_sources). A relation's source is 0 and 1 by loading
 * (thresholded, or checked before it is used in place: sources.c), so it is
 * not read again. */
static bool buffer_non_negative(const RtPlan *pl, int t)
{
    const IrTensor *x = pl->ir->tensors[t];
    if (x->kind == TEN_SOURCE && x->is_bool && !x->is_stream_state)
        return true;
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

/* The threads group g's delta and base kernels run on: the team when its
 * relation has 2^16 cells or more (each join then ORs its share of rows:
 * emit_delta.c), else one. */
static int team_of(const RtPlan *pl, int g)
{
    return pl->count[pl->ir->groups[g]->tensor] >= (1 << 16) ? rt_parallel_threads(pl->threads)
                                                             : 1;
}

/* Group g's delta kernel on the whole relation (or, on MPI ranks, this rank's
 * share of it). */
static void run_delta(RtPlan *pl, int g)
{
    if (pl->dist && rt_dist_run_delta(pl, g, pl->modes->delta_fn[g]))
        return; /* this rank's share of the rows, merged across the ranks */
    int nth = team_of(pl, g);
    if (nth > 1)
        rt_parallel_run(pl->modes->delta_fn[g], pl->bufs, nth, rt_stop_flag(pl));
    else
        pl->modes->delta_fn[g](pl->bufs, 0, 1, rt_no_barrier, rt_stop_flag(pl));
}

void rt_semi_naive_base(RtPlan *pl, int g)
{
    RtKernel k = pl->modes->base_fn[g];
    if (pl->dist && rt_dist_run_base(pl, g, k))
        return; /* MPI: this rank's blocks of rows */
    int t = pl->ir->groups[g]->tensor, nth = team_of(pl, g);
    memset(pl->bufs[t], 0, (size_t)pl->count[t] * rt_elem_bytes(pl));
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
 * to delta and full, cur is cleared for the next sweep; returns their count.
 * No branch, and a 32-bit count per run of at most 2^30 cells: the compiler
 * vectorises it a full register of floats wide. */
static inline __attribute__((always_inline)) int64_t
merge_f32_cells(float *restrict cur, float *restrict full, float *restrict delta, int64_t cells)
{
    int64_t news = 0;
    for (int64_t at = 0; at < cells; at += (int64_t)1 << 30) {
        int64_t end = cells - at < ((int64_t)1 << 30) ? cells : at + ((int64_t)1 << 30);
        int32_t part = 0;
        for (int64_t i = at; i < end; i++) {
            float c = cur[i], f = full[i];
            int32_t is_new = (c != 0.0f) & (f == 0.0f);
            delta[i] = is_new ? 1.0f : 0.0f;
            full[i] = is_new ? 1.0f : f;
            cur[i] = 0.0f;
            part += is_new;
        }
        news += part;
    }
    return news;
}

static int64_t merge_f32_base(float *cur, float *full, float *delta, int64_t cells)
{
    return merge_f32_cells(cur, full, delta, cells);
}

#if defined(__x86_64__) && defined(__clang__)
/* The same with AVX2 (8 floats a vector, not SSE2's 4) where the CPU has it:
 * the rest of the runtime is built for any x86-64, and in a closure block by
 * block this loop runs from cache, bound by its instructions. */
__attribute__((target("avx2"))) static int64_t merge_f32_avx2(float *cur, float *full,
                                                              float *delta, int64_t cells)
{
    return merge_f32_cells(cur, full, delta, cells);
}

static int64_t merge_f32(float *cur, float *full, float *delta, int64_t cells)
{
    return __builtin_cpu_supports("avx2") ? merge_f32_avx2(cur, full, delta, cells)
                                          : merge_f32_base(cur, full, delta, cells);
}
#else
static int64_t merge_f32(float *cur, float *full, float *delta, int64_t cells)
{
    return merge_f32_base(cur, full, delta, cells);
}
#endif

/* The merge of `cells` cells from cur, full and delta on (merge_f32 in the
 * runner's element type). */
static int64_t merge_cells(const RtPlan *pl, char *cur, char *full, char *delta, int64_t cells)
{
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

/* merge over the `cells` cells from `first` on; without was_run cur is still
 * all zeros: the delta is cleared. */
static int64_t merge_span(RtPlan *pl, int g, float *whole, bool was_run, int64_t first,
                          int64_t cells)
{
    size_t at = (size_t)first * rt_elem_bytes(pl);
    char *delta = (char *)pl->modes->delta[g] + at;
    if (was_run)
        return merge_cells(pl, (char *)pl->bufs[pl->ir->groups[g]->tensor] + at,
                           (char *)whole + at, delta, cells);
    memset(delta, 0, (size_t)cells * rt_elem_bytes(pl));
    return 0;
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

/* The cells lo .. count - 1 of tensor t that are > 0, in memory order (a
 * malloc'd list of *n); NULL when there are more than `limit` or out of
 * memory. lo is a multiple of SPARSE_BLOCK. */
static int64_t *positive_cells(const RtPlan *pl, int t, int64_t lo, int64_t count, int64_t limit,
                               int64_t *n)
{
    int64_t cap = 256, k = 0;
    const void *v = pl->bufs[t];
    fuse_dtype dt = rt_tensor_dtype(pl, t);
    bool is_f32 = dt == FUSE_F32;
    int64_t *list = malloc((size_t)cap * sizeof *list);
    for (int64_t i = lo; list && i < count; i += SPARSE_BLOCK) {
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
 * then placed, so each row's positions come out increasing. On MPI ranks each
 * finds those of its share of the cells and the ranks put their lists
 * together (every rank then touches only its share of a source used in place
 * here, not all its pages). Every rank calls it for the same tensors. */
static int64_t *sparse_index(const RtPlan *pl, int t, int f)
{
    const IrTensor *x = pl->ir->tensors[t];
    int64_t count = pl->count[t], dim = x->shape[f], inner = 1, nnz = 0;
    for (int j = f + 1; j < x->rank; j++)
        inner *= x->shape[j];
    if (dim < 1 || count < 1 || !pl->bufs[t])
        return NULL;
    int64_t lo, hi, limit = count / SPARSE_MAX_SHARE;
    rt_dist_cell_share(pl, count, SPARSE_BLOCK, &lo, &hi);
    int64_t *cells = positive_cells(pl, t, lo, hi, limit, &nnz);
    cells = rt_dist_join_cells(pl, cells, nnz, limit, &nnz);
    if (!cells)
        return NULL;
    int64_t rows = count / dim;
    int64_t *ix = calloc((size_t)(rows + 1 + nnz), sizeof *ix);
    int64_t *next = malloc((size_t)rows * sizeof *next), *cols = ix ? ix + rows + 1 : NULL;
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

/* The slot along which the delta joins of [g0, g1) read tensor t sparsely, plus
 * 1; 0 when none does, -1 when they read it along two slots. */
static int sparse_slot(const RtPlan *pl, int g0, int g1, int t)
{
    int slot = 0;
    for (int g = g0; g < g1; g++) {
        const Group *grp = pl->ir->groups[g];
        for (int i = 0; i < grp->n_ops; i++) {
            int f = 0, k = lower_delta_sparse_operand(pl->ir, g, grp->ops[i], &f);
            if (k >= 0 && grp->ops[i]->in[k].tensor == t)
                slot = slot == 0 || slot == f + 1 ? f + 1 : -1;
        }
    }
    return slot;
}

/* The indexes of the sparse joins of [g0, g1); false when out of memory. A
 * tensor read along two slots gets none (its joins read it whole). Every MPI
 * rank makes the same calls of sparse_index, whatever memory it got. */
static bool sparse_indexes_make(const RtPlan *pl, int g0, int g1, SparseIndexes *sp)
{
    int n = pl->ir->n_tensors;
    sp->index = calloc((size_t)n + 1, sizeof *sp->index);
    sp->is_read = calloc((size_t)n + 1, sizeof *sp->is_read);
    bool ok = sp->index && sp->is_read;
    for (int t = 0; t < n; t++) {
        int slot = sparse_slot(pl, g0, g1, t);
        int64_t *ix = slot > 0 ? sparse_index(pl, t, slot - 1) : NULL;
        if (ok) {
            sp->index[t] = ix;
            sp->is_read[t] = slot != 0;
        } else {
            free(ix);
        }
    }
    return ok;
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

/* The slots the delta kernels read, bound while they run: the deltas in
 * place of the full relations (kept in full[g - g0]) and the indexes of
 * sparse operands (what their slots held kept in ix[]). */
typedef struct Bound {
    float **full, **ix;
} Bound;

static bool bind_deltas(RtPlan *pl, int g0, int g1, const SparseIndexes *sp, Bound *b)
{
    int n = pl->ir->n_tensors;
    b->full = calloc((size_t)(g1 - g0), sizeof *b->full);
    b->ix = calloc((size_t)n + 1, sizeof *b->ix);
    if (!b->full || !b->ix) {
        free(b->full), free(b->ix);
        return false;
    }
    sparse_indexes_bind(pl, sp, b->ix, true);
    for (int g = g0; g < g1; g++) {
        int t = pl->ir->groups[g]->tensor;
        b->full[g - g0] = pl->bufs[n + t];
        pl->bufs[n + t] = pl->modes->delta[g];
    }
    return true;
}

static void unbind_deltas(RtPlan *pl, int g0, int g1, const SparseIndexes *sp, Bound *b)
{
    for (int g = g0; g < g1; g++)
        pl->bufs[pl->ir->n_tensors + pl->ir->groups[g]->tensor] = b->full[g - g0];
    sparse_indexes_bind(pl, sp, b->ix, false);
    free(b->full), free(b->ix);
}

/* The cells [*lo, *hi) of span i of group g's relation: all of them, or on MPI
 * ranks this rank's blocks of rows when the sweeps stay in row blocks (the
 * others are not read). */
#define for_swept_spans(pl, g, i, lo, hi) \
    for (int i = 0; rt_dist_delta_span(pl, g, i, &lo, &hi); i++)

/* ---- sweeps over the whole relations ---- */

/* One delta sweep over [g0, g1); returns the number of new facts. */
static int64_t delta_sweep(RtPlan *pl, int g0, int g1, int it, bool *has_news,
                           const SparseIndexes *sp)
{
    bool *ran = calloc((size_t)(g1 - g0), sizeof *ran);
    RtTraceEntry *es = calloc((size_t)(g1 - g0), sizeof *es);
    Bound b;
    if (!ran || !es || !bind_deltas(pl, g0, g1, sp, &b)) {
        free(ran), free(es);
        return -1;
    }
    for (int g = g0; g < g1; g++) {
        RtTraceEntry *e = &es[g - g0];
        *e = (RtTraceEntry){.group = g, .component = pl->ir->groups[g]->component,
                            .sweep = it, .status = RT_EVAL_CACHED, .temperature = NAN};
        if (!group_has_news(pl, g, has_news))
            continue;
        double t0 = sup_clock_ms();
        run_delta(pl, g); /* into cur, all zeros (sweep_whole, merge) */
        e->ms = sup_clock_ms() - t0;
        ran[g - g0] = true;
    }
    int64_t total = 0;
    for (int g = g0; g < g1; g++) {
        RtTraceEntry *e = &es[g - g0];
        int64_t lo, hi;
        for_swept_spans(pl, g, i, lo, hi)
            e->changed += merge_span(pl, g, b.full[g - g0], ran[g - g0], lo, hi - lo);
        e->max_delta = e->changed ? 1.0 : 0.0;
        if (ran[g - g0])
            e->status = e->changed ? RT_EVAL_EVALUATED : RT_EVAL_UNCHANGED;
        has_news[pl->ir->groups[g]->tensor] = e->changed > 0;
        total += e->changed;
        rt_trace_add(&pl->modes->trace, e);
    }
    unbind_deltas(pl, g0, g1, sp, &b);
    free(ran), free(es);
    return total;
}

/* The sweeps of [g0, g1) over whole relations from sweep `it` on: the deltas
 * start as the full relations (after the first sweep every fact is new), cur
 * as zeros (the delta kernels OR into it), and cur ends as the full relation.
 * Returns the sweeps done in total. */
static int sweep_whole(RtPlan *pl, int g0, int g1, const SparseIndexes *sp, int it,
                       int max_iters, bool *is_converged)
{
    int n = pl->ir->n_tensors;
    size_t es = rt_elem_bytes(pl);
    bool *has_news = calloc((size_t)n + 1, sizeof *has_news);
    if (!has_news)
        return it;
    for (int g = g0; g < g1; g++) {
        int t = pl->ir->groups[g]->tensor;
        int64_t lo, hi;
        for_swept_spans(pl, g, i, lo, hi) {
            memcpy((char *)pl->modes->delta[g] + lo * es, (char *)pl->bufs[n + t] + lo * es,
                   (size_t)(hi - lo) * es);
            memset((char *)pl->bufs[t] + lo * es, 0, (size_t)(hi - lo) * es);
        }
        has_news[t] = true;
    }
    for (; it < max_iters && !rt_stop_now(pl); it++) {
        int64_t local = delta_sweep(pl, g0, g1, it, has_news, sp);
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
        int64_t lo, hi;
        for_swept_spans(pl, g, i, lo, hi)
            memcpy((char *)pl->bufs[t] + lo * es, (char *)pl->bufs[n + t] + lo * es,
                   (size_t)(hi - lo) * es);
    }
    free(has_news);
    return it;
}

/* ---- row-local components, block by block ----
 *
 * When every delta join reads the component's relations row for row
 * (row_local_rows: a right-linear recursion such as `Path(x,z) = Path(x,y)
 * Edge(y,z)`), row x of a sweep's result comes only from row x of the deltas:
 * each block of rows reaches its own fixpoint, whatever the others do. So the
 * blocks run one after the other (on a team, several at once), each through
 * all its sweeps while its rows of cur, the delta and the full relation stay
 * in cache, instead of every sweep streaming the whole relations through
 * memory. The result is the same relation, after as many sweeps as the
 * slowest block, which is the number of sweeps over the whole would take. */

/* A block holds this many bytes of each relation (a few rows of a wide one):
 * cur, delta and full together stay in a core's L2. */
#define BLOCK_BYTES (128 * 1024)

/* What the blocks of one team thread record per sweep (j = sweep - first
 * sweep) and group (k = g - g0): the facts found, the kernel's milliseconds,
 * whether it ran. */
typedef struct BlockStats {
    int n_groups, cap;
    int64_t *news; /* [j * n_groups + k] */
    double *ms;
    uint8_t *ran;
    uint8_t *ran_now; /* per group, in this block's current sweep */
    uint8_t *live;    /* per row of a block: some delta has facts in it */
    float **bufs;     /* the thread's buffer table, its cur and delta slots on its rooms */
    char **cur, **delta; /* per group, the rooms of a block's rows of cur and delta */
    bool *has_news;   /* per tensor, this block's */
    int most;         /* the most sweeps a block took (sweep index after its last) */
    bool is_converged, is_failed;
} BlockStats;

/* The blocks: kernel shares `share[i]` of `nth`, rows of `chunk`. With
 * is_claimed (MPI ranks), all of them, each run by the rank that claims it
 * (mine[i]: this one); with is_filled, this rank faults in the relations'
 * rows up to each block it claims, and the rest at the end (rows of blocks
 * below `faulted` are done; both under the claims' lock). */
typedef struct Blocks {
    int g0, g1, first, max_iters;
    int64_t rows, chunk, nth, n;
    int64_t *share;
    Bound bound;
    bool is_claimed, is_filled;
    uint8_t *mine;
    int64_t faulted;
    omp_lock_t claims_lock; /* a team's draws, one at a time (dist_any_thread) */
} Blocks;

static bool stats_room(BlockStats *st, int j)
{
    if (j < st->cap)
        return true;
    int cap = st->cap ? 2 * st->cap : 64;
    size_t cells = (size_t)cap * (size_t)st->n_groups;
    int64_t *news = realloc(st->news, cells * sizeof *news);
    st->news = news ? news : st->news;
    double *ms = news ? realloc(st->ms, cells * sizeof *ms) : NULL;
    st->ms = ms ? ms : st->ms;
    uint8_t *ran = ms ? realloc(st->ran, cells) : NULL;
    if (!ran)
        return false;
    st->ran = ran;
    size_t old = (size_t)st->cap * (size_t)st->n_groups;
    memset(st->news + old, 0, (cells - old) * sizeof *news);
    memset(st->ms + old, 0, (cells - old) * sizeof *ms);
    memset(st->ran + old, 0, cells - old);
    st->cap = cap;
    return true;
}

/* Row x of group g's cur and delta (in the thread's block rooms) and of the
 * full relation (the tensor's own buffer: in block mode its previous-sweep
 * buffer is never read). */
static void block_row(const RtPlan *pl, const Blocks *b, const BlockStats *st, int g, int64_t x,
                      char **cur, char **delta, char **full)
{
    int n = pl->ir->n_tensors, t = pl->ir->groups[g]->tensor;
    size_t at = (size_t)(x * (pl->count[t] / b->rows)) * rt_elem_bytes(pl);
    *cur = (char *)((uintptr_t)st->bufs[t] + at); /* the slots point before the rooms */
    *delta = (char *)((uintptr_t)st->bufs[n + t] + at);
    *full = (char *)pl->bufs[t] + at;
}

/* Points the thread's cur and delta slots of each group at its rooms, so that
 * the kernels' rows lo .. hi - 1 land there (a kernel share touches only its
 * rows: uintptr_t arithmetic, as for the packing scratch in dist_exec.c). */
static void bind_rooms(const RtPlan *pl, const Blocks *b, BlockStats *st, int64_t lo)
{
    int n = pl->ir->n_tensors;
    for (int g = b->g0; g < b->g1; g++) {
        int t = pl->ir->groups[g]->tensor;
        uintptr_t before = (uintptr_t)(lo * (pl->count[t] / b->rows)) * rt_elem_bytes(pl);
        st->bufs[t] = (float *)((uintptr_t)st->cur[g - b->g0] - before);
        st->bufs[n + t] = (float *)((uintptr_t)st->delta[g - b->g0] - before);
    }
}

/* The merge of block rows [lo, hi) after sweep j: rows no delta had facts in
 * were not written (skipped); returns the new facts. */
static int64_t merge_block(RtPlan *pl, const Blocks *b, BlockStats *st, int j, int64_t lo,
                           int64_t hi)
{
    int64_t total = 0;
    for (int g = b->g0; g < b->g1; g++)
        st->has_news[pl->ir->groups[g]->tensor] = false;
    for (int64_t x = lo; x < hi; x++) {
        if (!st->live[x - lo])
            continue;
        int64_t row_news = 0;
        for (int g = b->g0; g < b->g1; g++) {
            int t = pl->ir->groups[g]->tensor;
            int64_t cells = pl->count[t] / b->rows, news = 0;
            char *cur, *delta, *full;
            block_row(pl, b, st, g, x, &cur, &delta, &full);
            if (st->ran_now[g - b->g0])
                news = merge_cells(pl, cur, full, delta, cells);
            else /* cur is still all zeros */
                memset(delta, 0, (size_t)cells * rt_elem_bytes(pl));
            st->news[j * st->n_groups + (g - b->g0)] += news;
            st->has_news[t] |= news > 0;
            row_news += news;
        }
        st->live[x - lo] = row_news > 0;
        total += row_news;
    }
    return total;
}

/* Block i from the first sweep to its fixpoint (or max_iters, or a stop): its
 * deltas start as its rows of the full relations, cur as zeros. The full
 * relations are the tensors' buffers, which hold the base sweep's result when
 * it ran before (first 1: schedule.c); from sweep 0 (the base kernels, whose
 * results all count as new) they start as zeros. The previous-sweep buffers
 * are not touched: nothing reads them after the component (a relation-sized
 * buffer of page faults and a copy fewer). */
static void run_block(RtPlan *pl, const Blocks *b, int64_t i, BlockStats *st)
{
    int64_t lo = b->share[i] * b->chunk, hi = lo + b->chunk < b->rows ? lo + b->chunk : b->rows;
    size_t es = rt_elem_bytes(pl);
    if (lo >= hi)
        return;
    bind_rooms(pl, b, st, lo);
    for (int g = b->g0; g < b->g1; g++) {
        int t = pl->ir->groups[g]->tensor;
        size_t bytes = (size_t)((hi - lo) * (pl->count[t] / b->rows)) * es;
        char *cur, *delta, *full;
        block_row(pl, b, st, g, lo, &cur, &delta, &full);
        if (b->first == 0)
            memset(full, 0, bytes);
        else
            memcpy(delta, full, bytes);
        memset(cur, 0, bytes);
        st->has_news[t] = true;
    }
    memset(st->live, 1, (size_t)(hi - lo));
    int it = b->first;
    bool is_converged = false;
    for (; it < b->max_iters && !rt_interrupted(pl); it++) {
        int j = it - b->first;
        if (!stats_room(st, j)) {
            st->is_failed = true;
            break;
        }
        for (int g = b->g0; g < b->g1; g++) {
            int k = j * st->n_groups + (g - b->g0);
            st->ran_now[g - b->g0] = it == 0 || group_has_news(pl, g, st->has_news);
            if (!st->ran_now[g - b->g0])
                continue;
            double t0 = sup_clock_ms();
            RtKernel kernel = (it == 0 ? pl->modes->base_fn : pl->modes->delta_fn)[g];
            kernel(st->bufs, b->share[i], b->nth, rt_no_barrier, rt_stop_flag(pl));
            st->ms[k] += sup_clock_ms() - t0;
            st->ran[k] = 1;
        }
        if (merge_block(pl, b, st, j, lo, hi) == 0) {
            is_converged = true;
            it++;
            break;
        }
    }
    st->most = it > st->most ? it : st->most;
    st->is_converged &= is_converged;
}

/* The blocks of [g0, g1): BLOCK_BYTES of rows each, claimed by the ranks
 * from sweep 0 on when the sweeps stay in MPI row blocks (rt_dist_claims), or
 * this rank's shares of those blocks; false when a delta kernel cannot share
 * its rows so (then the sweeps go over the whole relations). Out of memory
 * for the lists, true with b->share NULL. */
static bool plan_blocks(RtPlan *pl, Blocks *b)
{
    const IrProgram *p = pl->ir;
    int t = p->groups[b->g0]->tensor;
    int64_t row_bytes = pl->count[t] / b->rows * (int64_t)rt_elem_bytes(pl), share = 0;
    int64_t per = row_bytes > 0 && row_bytes < BLOCK_BYTES ? BLOCK_BYTES / row_bytes : 1;
    b->nth = (b->rows + per - 1) / per;
    b->n = b->nth;
    /* the base sweep of a schedule (first 1) ran in the dealt blocks */
    b->is_claimed = b->first == 0 && rt_dist_claims(pl, b->g0, team_of(pl, b->g0));
    b->is_filled = b->is_claimed && rt_dist_fills_root(pl, b->g0);
    if (!b->is_claimed && rt_dist_delta_share(pl, b->g0, 0, &share, &b->nth))
        for (b->n = 0; rt_dist_delta_share(pl, b->g0, (int)b->n, &share, &b->nth); b->n++) {}
    LowerOptions opt; /* as compile_deltas compiled the kernels */
    rt_lower_options(pl, "", &opt);
    for (int g = b->g0; g < b->g1; g++) {
        int64_t chunk = 0;
        if (!lower_delta_row_chunk(p, g, b->nth, &opt, &chunk) || chunk < 1 ||
            (g > b->g0 && chunk != b->chunk))
            return false;
        b->chunk = chunk;
    }
    b->share = malloc((size_t)(b->n > 0 ? b->n : 1) * sizeof *b->share);
    b->mine = b->is_claimed ? calloc((size_t)(b->n > 0 ? b->n : 1), 1) : NULL;
    if (b->is_claimed && !b->mine) {
        free(b->share);
        b->share = NULL;
    }
    for (int64_t i = 0; b->share && i < b->n; i++)
        if (b->is_claimed || !rt_dist_delta_share(pl, b->g0, (int)i, &b->share[i], &b->nth))
            b->share[i] = i;
    return true;
}

static void stats_free(BlockStats *st, int n_groups)
{
    free(st->news), free(st->ms), free(st->ran), free(st->ran_now), free(st->live);
    free(st->has_news);
    for (int k = 0; k < n_groups && st->cur; k++)
        io_free_aligned(st->cur[k]);
    for (int k = 0; k < n_groups && st->delta; k++)
        io_free_aligned(st->delta[k]);
    free(st->cur), free(st->delta), free(st->bufs);
}

/* A team thread's state: its counters, its copy of the buffer table (taken
 * with the deltas' slots bound: the sparse indexes in it) and per group the
 * rooms for a block's rows of cur and of the delta. False when out of memory. */
static bool stats_make(const RtPlan *pl, const Blocks *b, BlockStats *st)
{
    int n = pl->ir->n_tensors, ng = b->g1 - b->g0;
    *st = (BlockStats){.n_groups = ng, .most = b->first, .is_converged = true};
    st->has_news = calloc((size_t)n + 1, sizeof *st->has_news);
    st->ran_now = calloc((size_t)ng, 1);
    st->live = malloc((size_t)b->chunk);
    st->bufs = malloc((2 * (size_t)n + 1) * sizeof *st->bufs);
    st->cur = calloc((size_t)ng, sizeof *st->cur);
    st->delta = calloc((size_t)ng, sizeof *st->delta);
    if (!st->has_news || !st->ran_now || !st->live || !st->bufs || !st->cur || !st->delta)
        return false;
    memcpy(st->bufs, pl->bufs, (2 * (size_t)n + 1) * sizeof *st->bufs);
    for (int g = b->g0; g < b->g1; g++) {
        int t = pl->ir->groups[g]->tensor;
        size_t bytes = (size_t)(b->chunk * (pl->count[t] / b->rows)) * rt_elem_bytes(pl);
        st->cur[g - b->g0] = io_alloc_aligned(bytes);
        st->delta[g - b->g0] = io_alloc_aligned(bytes);
        if (!st->cur[g - b->g0] || !st->delta[g - b->g0])
            return false;
    }
    return true;
}

/* Adds the team's per-sweep counts to the trace, sweep after sweep. */
static void trace_blocks(RtPlan *pl, const Blocks *b, const BlockStats *st, int team, int most)
{
    for (int j = 0; j < most - b->first; j++)
        for (int g = b->g0; g < b->g1; g++) {
            RtTraceEntry e = {.group = g, .component = pl->ir->groups[g]->component,
                              .sweep = b->first + j, .status = RT_EVAL_CACHED,
                              .temperature = NAN};
            bool ran = false;
            for (int w = 0; w < team; w++) {
                int k = j * st[w].n_groups + (g - b->g0);
                if (j >= st[w].cap)
                    continue;
                e.changed += st[w].news[k];
                e.ms += st[w].ms[k];
                ran |= st[w].ran[k];
            }
            e.max_delta = e.changed ? 1.0 : 0.0;
            if (ran)
                e.status = e.changed ? RT_EVAL_EVALUATED : RT_EVAL_UNCHANGED;
            rt_trace_add(&pl->modes->trace, &e);
        }
}

/* Makes the pages of [p, p + bytes) present and writable without changing
 * them: the page faults of a buffer taken now rather than later. */
static void fault_in(char *p, size_t bytes)
{
    size_t page = 4096;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(uintptr_t)(page - 1);
    if (hi <= lo)
        return;
#ifdef MADV_POPULATE_WRITE
    if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0)
        return;
#endif
    for (uintptr_t at = lo; at < hi; at += page) /* a write that keeps the byte */
        __atomic_fetch_or((char *)at, 0, __ATOMIC_RELAXED);
}

/* The rows of blocks [k0, k1) of each relation of the component, faulted in. */
static void fault_in_blocks(const RtPlan *pl, const Blocks *b, int64_t k0, int64_t k1)
{
    if (k1 <= k0)
        return;
    for (int g = b->g0; g < b->g1; g++) {
        int t = pl->ir->groups[g]->tensor;
        size_t row = (size_t)(pl->count[t] / b->rows) * rt_elem_bytes(pl);
        int64_t lo = k0 * b->chunk, hi = k1 * b->chunk < b->rows ? k1 * b->chunk : b->rows;
        fault_in((char *)pl->bufs[t] + (size_t)lo * row, (size_t)(hi - lo) * row);
    }
}

/* The next block a thread runs: the next of this rank's, or when the ranks
 * claim blocks, the one it draws (past the last: b->n). */
static int64_t take_block(RtPlan *pl, Blocks *b, atomic_llong *next)
{
    if (!b->is_claimed)
        return atomic_fetch_add(next, 1);
    int64_t i, k0 = 0, k1 = 0;
    omp_set_lock(&b->claims_lock);
    i = rt_dist_claim(pl);
    i = i < b->n ? i : b->n;
    if (i < b->n)
        b->mine[i] = 1;
    if (b->is_filled) { /* up to this block, or all once they are taken */
        k0 = b->faulted;
        k1 = i < b->n ? i + 1 : b->n;
        b->faulted = k1 > k0 ? k1 : k0;
    }
    omp_unset_lock(&b->claims_lock);
    fault_in_blocks(pl, b, k0, k1);
    return i;
}

/* The blocks on `team` threads, each taking the next block not taken. */
static void run_blocks(RtPlan *pl, Blocks *b, BlockStats *st, int team)
{
    atomic_llong next = 0;
    if (team == 1) {
        for (int64_t i; (i = take_block(pl, b, &next)) < b->n;)
            run_block(pl, b, i, st);
        return;
    }
#pragma omp parallel num_threads(team)
    {
        BlockStats *mine = &st[omp_get_thread_num()];
        for (int64_t i; (i = take_block(pl, b, &next)) < b->n;)
            run_block(pl, b, i, mine);
    }
}

/* The sweeps of row-local [g0, g1) block by block, from sweep `first` on;
 * returns the sweeps done in total, or -1 when the blocks cannot be planned. */
static int sweep_blocks(RtPlan *pl, Blocks *b, const SparseIndexes *sp, bool *is_converged)
{
    int g0 = b->g0, g1 = b->g1, first = b->first, team = team_of(pl, g0);
    BlockStats *st = calloc((size_t)team, sizeof *st);
    bool is_bound = st && bind_deltas(pl, g0, g1, sp, &b->bound), ok = is_bound;
    for (int w = 0; ok && w < team; w++)
        ok = stats_make(pl, b, &st[w]);
    if (b->is_claimed)
        rt_dist_claims_begin(pl); /* every rank: no rank waits on a draw */
    omp_init_lock(&b->claims_lock);
    if (ok)
        run_blocks(pl, b, st, team);
    omp_destroy_lock(&b->claims_lock);
    if (is_bound)
        unbind_deltas(pl, g0, g1, sp, &b->bound);
    int most = first;
    bool all = ok;
    for (int w = 0; ok && w < team; w++) {
        most = st[w].most > most ? st[w].most : most;
        all &= st[w].is_converged && !st[w].is_failed;
    }
    /* MPI: the slowest block of any rank; a rank that could not go on (out of
     * memory, interrupted) leaves every rank unconverged */
    bool stopped = !ok || rt_interrupted(pl);
    int64_t agreed = rt_dist_max(pl, stopped ? INT64_MAX : most);
    bool any_open = rt_dist_any(pl, !all);
    if (b->is_claimed) /* the relations in the blocks each rank ran */
        rt_dist_claims_end(pl, g0, g1, b->chunk, b->n, b->mine);
    if (ok)
        trace_blocks(pl, b, st, team, most);
    *is_converged = agreed != INT64_MAX && !any_open;
    most = agreed == INT64_MAX ? most : (int)agreed;
    for (int w = 0; st && w < team; w++)
        stats_free(&st[w], g1 - g0);
    free(st);
    return most;
}

/* rt_semi_naive_run, or with only_blocks, the same from sweep 0 block by
 * block (-1 when the component cannot run so: nothing done). */
static int semi_naive(RtPlan *pl, int g0, int g1, int first_sweep, int max_iters,
                      bool only_blocks, bool *is_converged)
{
    *is_converged = false;
    Blocks b = {.g0 = g0, .g1 = g1, .first = first_sweep, .max_iters = max_iters,
                .rows = row_local_rows(pl, g0, g1)};
    /* the same on every MPI rank: the plan's shapes decide */
    bool is_blocked = b.rows > 0 && plan_blocks(pl, &b);
    if (only_blocks && !is_blocked) {
        free(b.share);
        return -1;
    }
    if (only_blocks && pl->dist)
        rt_dist_gather_all(pl); /* the base kernels read any operand whole */
    SparseIndexes sp = {0};
    bool ok = sparse_indexes_make(pl, g0, g1, &sp) && (!is_blocked || b.share);
    for (int g = g0; g < g1 && ok && !is_blocked; g++) /* blocks take rooms of their own */
        ok = delta_buffer(pl, g) != NULL;
    /* MPI: every rank has its buffers, or none goes on */
    int it = first_sweep;
    if (rt_dist_agree(pl, ok ? FUSE_OK : FUSE_E_NOMEM, "to allocate the semi-naive deltas") ==
        FUSE_OK)
        it = is_blocked ? sweep_blocks(pl, &b, &sp, is_converged)
                        : sweep_whole(pl, g0, g1, &sp, first_sweep, max_iters, is_converged);
    for (int g = g0; g < g1 && only_blocks && !b.is_claimed; g++)
        rt_dist_base_done(pl, g); /* MPI: its blocks of rows from here on */
    free(b.share);
    free(b.mine);
    sparse_indexes_free(pl, &sp);
    return it;
}

int rt_semi_naive_run(RtPlan *pl, int g0, int g1, int first_sweep, int max_iters,
                      bool *is_converged)
{
    return semi_naive(pl, g0, g1, first_sweep, max_iters, false, is_converged);
}

int rt_semi_naive_blocks(RtPlan *pl, int g0, int g1, int max_iters, bool *is_converged)
{
    return max_iters < 1 ? -1 : semi_naive(pl, g0, g1, 0, max_iters, true, is_converged);
}
