/*
 * chain.c: pairwise contraction order for sum joins of three or more factors
 *.
 *
 * A term like `D[i,l] = A[i,j] B[j,k] C[k,l]` builds as one join over every
 * axis (i, j, k, l): a loop nest of n^4 cells. Split into pairwise joins through
 * temporaries, `%t[i,k] = A[i,j] B[j,k]` then `D[i,l] = %t[i,k] C[k,l]`, each is
 * a two-factor product the contraction kernels take, n^3 cells each. The order
 * is greedy, as opt_einsum's greedy path, but sizes are not known when the IR is
 * built, so the cost of a pair is the rank of its result (axes it shares with
 * the other factors or the output), then the number of axes it sums out.
 * Only plain sum joins are split: every factor a plain read (no shift, fixed
 * position or slice), no boolean output, no factor that is the output itself
 * (recursion), and results of at most FUSE_MAX_RANK axes; otherwise the join
 * stays as built. The last pair keeps the join's coefficient and init flag.
 */
#include <string.h>

#include "build.h"

/* A factor of the chain: a tensor read with an axis name per slot. */
typedef struct Item {
    int tensor;
    int rank;
    const char *names[FUSE_MAX_RANK];
    Span span;
    const Index *indices; /* the operand's, for messages (NULL for a temporary) */
} Item;

static bool has_name(const char *const *names, int n, const char *x)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], x) == 0)
            return true;
    return false;
}

/* Whether axis x is read by an item other than i and j, or written. */
static bool is_needed(const Item *it, int n, int i, int j, const char *x, const char **out,
                      int out_rank)
{
    if (has_name(out, out_rank, x))
        return true;
    for (int k = 0; k < n; k++)
        if (k != i && k != j && has_name(it[k].names, it[k].rank, x))
            return true;
    return false;
}

/* The axes the pair (i, j) keeps, in first-seen order; -1 past FUSE_MAX_RANK.
 * *summed counts the axes it sums out. */
static int pair_axes(const Item *it, int n, int i, int j, const char **out, int out_rank,
                     const char **keep, int *summed)
{
    int r = 0;
    *summed = 0;
    for (int side = 0; side < 2; side++) {
        const Item *x = &it[side ? j : i];
        for (int s = 0; s < x->rank; s++) {
            const char *a = x->names[s];
            if (has_name(keep, r, a) || (side && has_name(it[i].names, it[i].rank, a)))
                continue;
            if (!is_needed(it, n, i, j, a, out, out_rank)) {
                (*summed)++;
                continue;
            }
            if (r == FUSE_MAX_RANK)
                return -1;
            keep[r++] = a;
        }
    }
    return r;
}

/* The best pair by (result rank, -summed axes); false when none fits. */
static bool best_pair(const Item *it, int n, const char **out, int out_rank, int *bi, int *bj)
{
    int best_r = FUSE_MAX_RANK + 1, best_s = -1;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const char *keep[FUSE_MAX_RANK];
            int summed;
            int r = pair_axes(it, n, i, j, out, out_rank, keep, &summed);
            if (r >= 0 && (r < best_r || (r == best_r && summed > best_s))) {
                best_r = r, best_s = summed, *bi = i, *bj = j;
            }
        }
    return best_r <= FUSE_MAX_RANK;
}

/* The join is a plain sum of plain reads of other tensors. */
static bool is_splittable(const Builder *b, const Op *op)
{
    if (op->kind != OP_JOIN || op->red != RED_SUM || op->n_in < 3 || op->concat_slot >= 0
        || b->p->tensors[op->out]->is_bool)
        return false;
    for (int k = 0; k < op->n_in; k++) {
        const Operand *o = &op->in[k];
        if (o->tensor == op->out)
            return false;
        for (int s = 0; s < b->p->tensors[o->tensor]->rank; s++)
            if (o->kind[s] != SL_AXIS || o->offset[s] != 0 || o->slice[s])
                return false;
    }
    return true;
}

/* Adds the operand of item x to op. */
static bool add_item(Builder *b, Op *op, const Item *x)
{
    if (!ir_value_operand(b, op, b->p->tensors[x->tensor], x->names, x->span))
        return false;
    op->in[op->n_in - 1].indices = x->indices;
    return true;
}

/* One pairwise step: a temporary of the pair's kept axes, pushed to the group;
 * the pair is replaced by it in it[]. */
static bool step(Builder *b, Item *it, int *n, int i, int j, const char **out, int out_rank)
{
    const char *keep[FUSE_MAX_RANK];
    int summed;
    int r = pair_axes(it, *n, i, j, out, out_rank, keep, &summed);
    IrTensor *t = r >= 0 ? ir_temp_new(b, "chain", r, keep, it[i].span) : NULL;
    Op *op = t ? ir_op_new(b, OP_JOIN, t->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, keep, r) || !add_item(b, op, &it[i])
        || !add_item(b, op, &it[j]))
        return false;
    op->red = RED_SUM;
    op->is_init = true;
    ir_group_push(b, op);
    Item x = {t->id, r, {0}, it[i].span, NULL};
    memcpy(x.names, keep, sizeof(const char *) * (size_t)r);
    it[i] = x;
    it[j] = it[--*n];
    return true;
}

/* Whether every greedy step finds a pair (results of at most FUSE_MAX_RANK
 * axes): a dry run on a copy, so a join is split all the way or not at all. */
static bool plan_fits(const Item *items, int n, const char **out, int out_rank)
{
    Item it[64];
    memcpy(it, items, sizeof(Item) * (size_t)n);
    while (n > 2) {
        const char *keep[FUSE_MAX_RANK];
        int bi, bj, summed;
        if (!best_pair(it, n, out, out_rank, &bi, &bj))
            return false;
        int r = pair_axes(it, n, bi, bj, out, out_rank, keep, &summed);
        it[bi].rank = r;
        memcpy(it[bi].names, keep, sizeof(const char *) * (size_t)r);
        it[bj] = it[--n];
    }
    return true;
}

/* No axis name twice on the output or on one factor (diagonal reads stay whole). */
static bool names_distinct(const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (has_name(names, i, names[i]))
            return false;
    return true;
}

bool ir_chain_split(Builder *b, Op *op, const char **out, int out_rank)
{
    if (!is_splittable(b, op))
        return true;
    Item it[64];
    int n = op->n_in;
    if (n > 64)
        return true;
    for (int k = 0; k < n; k++) {
        const Operand *o = &op->in[k];
        it[k].tensor = o->tensor;
        it[k].rank = b->p->tensors[o->tensor]->rank;
        it[k].span = o->span;
        it[k].indices = o->indices;
        for (int s = 0; s < it[k].rank; s++)
            it[k].names[s] = op->axes[o->axis[s]].name;
        if (!names_distinct(it[k].names, it[k].rank))
            return true;
    }
    if (!names_distinct(out, out_rank))
        return true;
    if (!plan_fits(it, n, out, out_rank))
        return true;
    int bi, bj;
    while (n > 2) {
        if (!best_pair(it, n, out, out_rank, &bi, &bj) || !step(b, it, &n, bi, bj, out, out_rank))
            return false;
    }
    op->in = NULL, op->n_in = 0, op->axes = NULL, op->n_axes = 0;
    return ir_op_bind_out(b, op, out, out_rank) && add_item(b, op, &it[0])
        && add_item(b, op, &it[1]);
}
