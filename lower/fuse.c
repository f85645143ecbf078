/*
 * fuse.c: fusion of elementwise work into a contraction kernel's write-out
 * (issue 4, "Fusion").
 *
 * After a contraction op C of a group, the run of following ops that are
 * elementwise over C's output cells (a MAP, or a sum JOIN without projected
 * axes: bias, scale, mask, activation, a second contribution `+ Bias[j]`) is
 * its epilogue. The kernel still writes C's output whole; then, on the last K
 * block, each finished micro-tile (still in L1) runs the epilogue ops cell by
 * cell, in op order, before the next tile. Equivalent to running the ops one
 * after another because:
 *  - every epilogue op has exactly C's output cells as its loop (its out slot k
 *    is C's out slot k, same size; no projection, shift, slice or merged slot),
 *  - every read of a tensor written by C or by an epilogue op is at the same
 *    cell (so a cell only depends on itself), and C reads none of them,
 *  - nothing reads a previous sweep (recursive groups never fuse), no output
 *    is boolean (their thresholded combine stays in the plain loops).
 * Other operands (a bias along N or M, a mask) are read anywhere, shifted or
 * fixed, since nothing in the fused pass writes them. A thread computes the
 * epilogue of exactly the cells of its own columns. The decision reads only the
 * group's ops and their tensors' ranks and shapes (the code cache's rule).
 */
#include <string.h>

#include "contract.h"

/* The op's out slots are its loop axes, one each, unshifted, sizes = C's shape. */
static bool loops_are_cells(const IrProgram *p, const Op *c_op, const Op *x)
{
    const IrTensor *ct = p->tensors[c_op->out];
    const IrTensor *xt = p->tensors[x->out];
    if (xt->rank != ct->rank || x->n_axes != ct->rank || x->concat_slot >= 0)
        return false;
    for (int k = 0; k < xt->rank; k++) {
        int a = x->out_axis[k];
        if (x->out_offset[k] != 0 || x->out_minor[k] != 0 || a < 0 || a >= x->n_axes
            || x->axes[a].size != ct->shape[k])
            return false;
        for (int j = 0; j < k; j++)
            if (x->out_axis[j] == a)
                return false;
    }
    return true;
}

/* Functions whose scalar code calls the C library (expf...), and tanh and gelu
 * (inline since, lower/fastmath.c; not re-measured fused). Measured with tanhf:
 * interleaved with the micro-kernel tile by tile, those calls ran about 18%
 * slower than in their own pass (gelu after a 512^3 product: 10.3 against
 * 9.2 ms), more than the saved pass over memory, so an epilogue stops before
 * them and they keep their vectorisable loop. */
static bool calls_libm(MapFn fn)
{
    switch (fn) {
    case FN_SIG:
    case FN_GELU:
    case FN_EXP:
    case FN_LOG:
    case FN_TANH:
    case FN_SIN:
    case FN_COS: return true;
    default: return false;
    }
}

/* An op kind the cell emitter (emit_cell) covers. */
static bool is_elementwise_kind(const Op *x)
{
    if (x->is_bool_out || x->is_rsqrt_scaled || x->n_in > 8)
        return false;
    if (x->kind == OP_MAP)
        return !calls_libm(x->fn);
    return x->kind == OP_JOIN && x->red == RED_SUM;
}

/* Every read of tensor t by x is at x's own cell. */
static bool reads_at_cell(const IrProgram *p, const Op *x, int t)
{
    for (int i = 0; i < x->n_in; i++) {
        const Operand *o = &x->in[i];
        if (o->tensor != t)
            continue;
        if (p->tensors[t]->rank != p->tensors[x->out]->rank)
            return false;
        for (int k = 0; k < p->tensors[t]->rank; k++)
            if (o->kind[k] != SL_AXIS || o->axis[k] != x->out_axis[k] || o->offset[k] != 0
                || o->slice[k])
                return false;
    }
    return true;
}

static bool reads_prev(const Op *x)
{
    for (int i = 0; i < x->n_in; i++)
        if (x->in[i].reads_prev)
            return true;
    return false;
}

/* Whether ops[0..n] (ops[0] the contraction, ops[n] the candidate) still fuse:
 * every tensor any of them writes is read only at the reader's cell, and never
 * by the contraction. */
static bool run_is_cellwise(const IrProgram *p, const Op *const *ops, int n)
{
    for (int w = 0; w <= n; w++) {
        int t = ops[w]->out;
        for (int k = 0; k < ops[0]->n_in; k++)
            if (ops[0]->in[k].tensor == t)
                return false;
        for (int r = 1; r <= n; r++)
            if (!reads_at_cell(p, ops[r], t))
                return false;
    }
    return true;
}

/* epi[j] writes a temporary that only later epilogue ops read (at their cell)
 * and nothing else writes: its value never needs memory. Temporaries belong to
 * one group, so the group's ops are all its readers (a sink's value, which the
 * runtime reads, is kept in memory). */
static bool result_in_register(const IrProgram *p, const Group *g, int i, const Contraction *c,
                               int j)
{
    const Op *x = c->epi[j];
    int t = x->out;
    if (p->tensors[t]->kind != TEN_TEMP || t == g->ops[i]->out || t == g->tensor
        || !(x->kind == OP_MAP || x->is_init))
        return false;
    for (int k = 0; k < g->n_ops; k++) {
        const Op *y = g->ops[k];
        bool later = k > i + 1 + j && k <= i + c->n_epi;
        if (y != x && y->out == t)
            return false;
        for (int r = 0; r < y->n_in; r++)
            if (y->in[r].tensor == t && !later)
                return false;
    }
    return true;
}

static bool has_tensor(const Contraction *c, int t)
{
    for (int j = 0; j < c->n_epi_tensors; j++)
        if (c->epi_tensor[j] == t)
            return true;
    return false;
}

/* The epilogue op before epi[before] whose register result is tensor t, or -1. */
static int register_writer(const Contraction *c, int before, int t)
{
    for (int k = before - 1; k >= 0; k--)
        if (c->epi[k]->out == t)
            return c->epi_reg[k] ? k : -1;
    return -1;
}

/* The distinct tensors of the epilogue (C's output aside): the extra kernel
 * parameters. False when there are too many. */
static bool collect_tensors(Contraction *c, int c_out)
{
    c->n_epi_tensors = 0;
    for (int j = 0; j < c->n_epi; j++) {
        const Op *x = c->epi[j];
        for (int i = c->epi_reg[j] ? 0 : -1; i < x->n_in; i++) {
            int t = i < 0 ? x->out : x->in[i].tensor;
            if (t == c_out || has_tensor(c, t) || register_writer(c, j, t) >= 0)
                continue;
            if (c->n_epi_tensors >= EMIT_MAX_AXES - 8)
                return false;
            c->epi_tensor[c->n_epi_tensors++] = t;
        }
    }
    return true;
}

int fuse_epilogue(const IrProgram *p, const Group *g, int i, Contraction *c)
{
    c->epi = NULL;
    c->n_epi = c->n_epi_tensors = 0;
    const Op *const *ops = (const Op *const *)&g->ops[i];
    if (g->is_recursive || reads_prev(ops[0]))
        return 0;
    const IrTensor *ct = p->tensors[ops[0]->out];
    for (int k = 0; k < ct->rank; k++)
        if (ops[0]->out_minor[k] != 0)
            return 0;
    int n = 0;
    while (i + n + 1 < g->n_ops && n < EMIT_MAX_AXES) {
        const Op *x = ops[n + 1];
        if (!is_elementwise_kind(x) || reads_prev(x) || !loops_are_cells(p, ops[0], x)
            || !run_is_cellwise(p, ops, n + 1))
            break;
        n++;
    }
    c->epi = ops + 1;
    c->n_epi = n;
    for (int j = 0; j < n; j++)
        c->epi_reg[j] = result_in_register(p, g, i, c, j);
    if (!collect_tensors(c, ops[0]->out)) {
        c->epi = NULL;
        c->n_epi = c->n_epi_tensors = 0;
    }
    return c->n_epi;
}

/* The buffer holding tensor t inside the kernel. */
static LLVMValueRef buffer_for(const Contraction *c, int t, int c_out, LLVMValueRef out,
                               const LLVMValueRef *extra)
{
    if (t == c_out)
        return out;
    for (int j = 0; j < c->n_epi_tensors; j++)
        if (c->epi_tensor[j] == t)
            return extra[j];
    return out; /* not reached: collect_tensors listed every tensor */
}

void fuse_emit_cell(Emit *e, const Contraction *c, LLVMValueRef *ctr, const LLVMValueRef *extra)
{
    const Op *c_op = e->op;
    LLVMValueRef out = e->v_out, in[2] = {e->v_in[0], e->v_in[1]}, val[EMIT_MAX_AXES];
    int rank = e->p->tensors[c_op->out]->rank;
    for (int j = 0; j < c->n_epi; j++) {
        const Op *x = c->epi[j];
        e->op = x;
        e->v_out = buffer_for(c, x->out, c_op->out, out, extra);
        for (int i = 0; i < x->n_in; i++) {
            int w = register_writer(c, j, x->in[i].tensor);
            e->v_reg_in[i] = w >= 0 ? val[w] : NULL;
            e->v_in[i] = buffer_for(c, x->in[i].tensor, c_op->out, out, extra);
        }
        for (int k = 0; k < rank; k++)
            e->v_counter[x->out_axis[k]] = ctr[c_op->out_axis[k]];
        val[j] = emit_cell(e, !c->epi_reg[j]);
        for (int i = 0; i < x->n_in; i++)
            e->v_reg_in[i] = NULL;
    }
    e->op = c_op;
    e->v_out = out;
    e->v_in[0] = in[0];
    e->v_in[1] = in[1];
}
