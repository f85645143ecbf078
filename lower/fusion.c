/*
 * fusion.c: which following ops of a group run in an op's own pass over its
 * cells ("Fusion"): a contraction's epilogue and an elementwise op's
 * cell run.
 *
 * After a head op H of a group (a contraction, or an elementwise op: a MAP, or
 * a sum JOIN without projected axes), the run of following ops that are
 * elementwise over H's output cells (bias, scale, mask, activation, a second
 * contribution `+ Bias[j]`) runs in H's pass, cell by cell, in op order. For a
 * contraction the kernel still writes its output whole; then, on the last K
 * block, each finished micro-tile (still in L1) runs the epilogue before the
 * next tile. An elementwise head gets one loop nest over its cells (slot order,
 * the last slot innermost and contiguous, so it vectorises) that runs H and
 * then the run at each cell (fuse_emit_run_function). Equivalent to running
 * the ops one after another because:
 *  - every op of the run has exactly H's output cells as its loop (its out slot
 *    k is H's out slot k, same size; no projection, shift, slice or merged slot),
 *  - every read of a tensor written by H or by the run is at the same cell (so
 *    a cell only depends on itself), and H reads none of them,
 *  - nothing reads a previous sweep (recursive groups never fuse), no output
 *    is boolean (their thresholded combine stays in the plain loops).
 * Other operands (a bias along N or M, a mask) are read anywhere, shifted or
 * fixed, since nothing in the fused pass writes them. A temporary that only
 * later ops of the run touch stays in a register (its later contributions are
 * added there). A thread computes the epilogue of exactly the cells of its own
 * tiles; a cell run on a thread team gives each thread a share of the rows of
 * its outermost slot (safe: a cell only depends on itself, and what the run
 * reads elsewhere it does not write). The decision reads only the group's ops
 * and their tensors' ranks and shapes (the code cache's rule).
 */
#include <stdio.h>
#include <string.h>

#include "contract.h"
#include "fusion.h"

/* The op's out slots are its loop axes, one each, unshifted, sizes = H's shape. */
static bool loops_are_cells(const IrProgram *p, const Op *head, const Op *x)
{
    const IrTensor *ht = p->tensors[head->out];
    const IrTensor *xt = p->tensors[x->out];
    if (xt->rank != ht->rank || x->n_axes != ht->rank || x->concat_slot >= 0)
        return false;
    for (int k = 0; k < xt->rank; k++) {
        int a = x->out_axis[k];
        if (x->out_offset[k] != 0 || x->out_minor[k] != 0 || a < 0 || a >= x->n_axes
            || x->axes[a].size != ht->shape[k])
            return false;
        for (int j = 0; j < k; j++)
            if (x->out_axis[j] == a)
                return false;
    }
    return true;
}

/* Functions whose scalar code calls the C library (expf...): a loop with such a
 * call does not vectorise, so neither an epilogue nor a cell run takes them
 * (they keep their own loop). */
static bool calls_libm(MapFn fn)
{
    switch (fn) {
    case FN_SIG:
    case FN_EXP:
    case FN_LOG:
    case FN_SIN:
    case FN_COS:
    case FN_POW: return true;
    default: return false;
    }
}

/* tanh and gelu (inline vector code, lower/fastmath.c) stay out of an
 * epilogue: after a 512^3 product with a bias (one thread, 100 runs each,
 * interleaved builds), gelu in its own pass (a cell run with the copy) took
 * 2.98-3.07 ms at best, in the epilogue 3.13-3.22 ms; tanh 2.99-3.05 against
 * 3.05-3.10 (medians on a busy machine within noise, mostly the same order).
 * Interleaved with the micro-kernel tile by tile, the polynomial costs more
 * than the pass over memory it saves. (With libm's tanhf, earlier: 10.3
 * against 9.2 ms.) */
static bool slow_in_epilogue(MapFn fn)
{
    return fn == FN_TANH || fn == FN_GELU;
}

/* An op kind the cell emitter (emit_cell) covers, in an epilogue or a cell run. */
static bool is_elementwise_kind(const Op *x, bool in_epilogue)
{
    if (x->is_bool_out || x->is_rsqrt_scaled || x->n_in > 8)
        return false;
    if (x->kind == OP_MAP)
        return !calls_libm(x->fn) && !(in_epilogue && slow_in_epilogue(x->fn));
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

/* Whether ops[0..n] (ops[0] the head, ops[n] the candidate) still fuse, given
 * that ops[0..n-1] do: every tensor any of them writes is read only at the
 * reader's cell, and never by the head. Only the pairs with the candidate are
 * new, so a run of n ops costs O(n^2) checks in all, not O(n^3). */
static bool extends_cellwise(const IrProgram *p, const Op *const *ops, int n)
{
    const Op *x = ops[n];
    for (int k = 0; k < ops[0]->n_in; k++)
        if (ops[0]->in[k].tensor == x->out)
            return false;
    for (int r = 1; r <= n; r++)
        if (!reads_at_cell(p, ops[r], x->out))
            return false;
    for (int w = 0; w < n; w++)
        if (!reads_at_cell(p, x, ops[w]->out))
            return false;
    return true;
}

/* How many ops after g->ops[i] are elementwise over its cells (the head's own
 * conditions are the caller's). */
static int run_length(const IrProgram *p, const Group *g, int i, bool in_epilogue)
{
    const Op *const *ops = (const Op *const *)&g->ops[i];
    if (g->is_recursive || reads_prev(ops[0]))
        return 0;
    int n = 0;
    while (i + n + 1 < g->n_ops && n < EMIT_MAX_AXES) {
        const Op *x = ops[n + 1];
        if (!is_elementwise_kind(x, in_epilogue) || reads_prev(x)
            || !loops_are_cells(p, ops[0], x) || !extends_cellwise(p, ops, n + 1))
            break;
        n++;
    }
    return n;
}

/* The op before ops[before] whose register result is tensor t, or -1. */
static int register_writer(const FuseRun *r, int before, int t)
{
    for (int k = before - 1; k >= 0; k--)
        if (r->ops[k]->out == t)
            return r->reg[k] ? k : -1;
    return -1;
}

/* ops[j] (group op i + j) writes a temporary that only later ops of the run
 * touch (read at their cell, or add contributions to): its value never needs
 * memory. A later contribution to it stays in the register too. Temporaries
 * belong to one group, so the group's ops are all its users (a sink's value,
 * which the runtime reads, is kept in memory). */
static bool result_in_register(const IrProgram *p, const Group *g, int i, const FuseRun *r,
                               int j)
{
    const Op *x = r->ops[j];
    int t = x->out;
    if (p->tensors[t]->kind != TEN_TEMP || t == g->tensor)
        return false;
    if (x->kind != OP_MAP && !x->is_init)
        return register_writer(r, j, t) >= 0;
    for (int k = 0; k < g->n_ops; k++) {
        const Op *y = g->ops[k];
        bool later = k > i + j && k <= i + r->n, touches = y != x && y->out == t;
        for (int q = 0; q < y->n_in; q++)
            touches |= y->in[q].tensor == t;
        if (touches && !later)
            return false;
    }
    return true;
}

static bool has_tensor(const FuseRun *r, int t)
{
    for (int j = 0; j < r->n_tensors; j++)
        if (r->tensor[j] == t)
            return true;
    return false;
}

/* The distinct tensors of ops[first..n] but `skip` (a contraction's output):
 * the parameters the run needs. False when there are too many. */
static bool collect_tensors(FuseRun *r, int first, int skip)
{
    r->n_tensors = 0;
    for (int j = first; j <= r->n; j++) {
        const Op *x = r->ops[j];
        for (int i = r->reg[j] ? 0 : -1; i < x->n_in; i++) {
            int t = i < 0 ? x->out : x->in[i].tensor;
            if (t == skip || has_tensor(r, t) || register_writer(r, j, t) >= 0)
                continue;
            if (r->n_tensors >= EMIT_MAX_AXES - 8)
                return false;
            r->tensor[r->n_tensors++] = t;
        }
    }
    return true;
}

/* Fills r for the head g->ops[i] and its n following ops; the head's own result
 * goes to memory when first is 1 (a contraction's output). */
static bool plan_run(const IrProgram *p, const Group *g, int i, int n, int first, FuseRun *r)
{
    r->ops = (const Op *const *)&g->ops[i];
    r->n = n;
    r->reg[0] = false;
    for (int j = first; j <= n; j++)
        r->reg[j] = result_in_register(p, g, i, r, j);
    return collect_tensors(r, first, first ? g->ops[i]->out : -1);
}

int fuse_epilogue(const IrProgram *p, const Group *g, int i, Contraction *c)
{
    c->epi = NULL;
    c->n_epi = c->n_epi_tensors = 0;
    const Op *head = g->ops[i];
    if (head->is_bool_out) /* its thresholded update stays alone (contract.c) */
        return 0;
    for (int k = 0; k < p->tensors[head->out]->rank; k++)
        if (head->out_minor[k] != 0)
            return 0;
    FuseRun r;
    int n = run_length(p, g, i, true);
    while (n > 0 && !plan_run(p, g, i, n, 1, &r))
        n--; /* too many tensors for the kernel's parameters: a shorter run */
    if (!n)
        return 0;
    c->epi = r.ops + 1;
    c->n_epi = n;
    for (int j = 0; j < n; j++)
        c->epi_reg[j] = r.reg[j + 1];
    c->n_epi_tensors = r.n_tensors;
    memcpy(c->epi_tensor, r.tensor, sizeof r.tensor[0] * (size_t)r.n_tensors);
    return n;
}

int fuse_cell_run(const IrProgram *p, const Group *g, int i, FuseRun *r)
{
    const Op *head = g->ops[i];
    r->n = r->n_tensors = 0;
    if (!is_elementwise_kind(head, false) || !loops_are_cells(p, head, head))
        return 0;
    int n = run_length(p, g, i, false);
    /* Too many tensors for the function's parameters: a shorter run. Taking
     * none instead would leave the head alone and let the next op head the run,
     * and so on (a chain of 100 copies had 46 ops alone, then one run), and
     * fusion across equations (plan_compile.c) would grow one span without end
     *. */
    while (n > 0 && !plan_run(p, g, i, n, 0, r))
        n--;
    if (!n) {
        r->n = r->n_tensors = 0;
        return 0;
    }
    return n;
}

/* ---- emission ---- */

/* Where the run's buffers are: `skip`'s is skip_buf, tensor r->tensor[j]'s
 * extra[j]. */
typedef struct RunBufs {
    int skip;
    LLVMValueRef skip_buf;
    const LLVMValueRef *extra;
} RunBufs;

static LLVMValueRef buffer_for(const FuseRun *r, const RunBufs *b, int t)
{
    for (int j = 0; j < r->n_tensors; j++)
        if (r->tensor[j] == t)
            return b->extra[j];
    return b->skip_buf; /* t == b->skip: collect_tensors listed every other tensor */
}

/* ops[first..n] at one cell: the head's loop counters are ctr[axis]. Leaves
 * e->op and the buffers pointing at the last op. */
static void emit_run_cells(Emit *e, const FuseRun *r, int first, LLVMValueRef *ctr,
                           const RunBufs *b)
{
    const Op *head = r->ops[0];
    LLVMValueRef val[EMIT_MAX_AXES + 1];
    int rank = e->p->tensors[head->out]->rank;
    for (int j = first; j <= r->n; j++) {
        const Op *x = r->ops[j];
        e->op = x;
        e->v_out = buffer_for(r, b, x->out);
        for (int i = 0; i < x->n_in; i++) {
            int w = register_writer(r, j, x->in[i].tensor);
            e->v_reg_in[i] = w >= 0 ? val[w] : NULL;
            e->v_in[i] = buffer_for(r, b, x->in[i].tensor);
        }
        for (int k = 0; k < rank; k++)
            e->v_counter[x->out_axis[k]] = ctr[head->out_axis[k]];
        val[j] = emit_cell(e, !r->reg[j]);
        bool is_contribution = x->kind == OP_JOIN && !x->is_init;
        int w = r->reg[j] && is_contribution ? register_writer(r, j, x->out) : -1;
        if (w >= 0) { /* a contribution to a register temporary */
            val[j] = LLVMBuildFAdd(e->bld, val[w], val[j], "v.contrib");
            emit_fast(val[j]);
        }
        for (int i = 0; i < x->n_in; i++)
            e->v_reg_in[i] = NULL;
    }
}

void fuse_emit_cell(Emit *e, const Contraction *c, LLVMValueRef *ctr, const LLVMValueRef *extra)
{
    const Op *c_op = e->op;
    LLVMValueRef out = e->v_out, in[2] = {e->v_in[0], e->v_in[1]};
    FuseRun r = {.ops = c->epi - 1, .n = c->n_epi, .n_tensors = c->n_epi_tensors};
    for (int j = 0; j < c->n_epi; j++)
        r.reg[j + 1] = c->epi_reg[j];
    memcpy(r.tensor, c->epi_tensor, sizeof r.tensor[0] * (size_t)r.n_tensors);
    RunBufs b = {c_op->out, out, extra};
    emit_run_cells(e, &r, 1, ctr, &b);
    e->op = c_op;
    e->v_out = out;
    e->v_in[0] = in[0];
    e->v_in[1] = in[1];
}

static bool op_is_empty(const Op *op)
{
    for (int a = 0; a < op->n_axes; a++)
        if (op->axes[a].size == 0)
            return true;
    return false;
}

/* The function's attributes: noalias buffers (distinct tensors) and the host's
 * widest vectors. */
static void run_attributes(Emit *e, unsigned n_params)
{
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned i = 0; i < n_params; i++)
        LLVMAddAttributeAtIndex(e->fn, i + 1, LLVMCreateEnumAttribute(e->ctx, noalias, 0));
    char width[16];
    snprintf(width, sizeof width, "%d", e->opt->vector_bits);
    static const char key[] = "prefer-vector-width";
    LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(e->ctx, key, sizeof key - 1, width,
                                                      (unsigned)strlen(width)));
}

LLVMValueRef fuse_emit_run_function(Emit *e, const FuseRun *r, const char *name)
{
    LLVMTypeRef params[EMIT_MAX_AXES + 3];
    LLVMValueRef bufs[EMIT_MAX_AXES], ctr[EMIT_MAX_AXES];
    for (int j = 0; j < r->n_tensors; j++)
        params[j] = e->t_ptr;
    params[r->n_tensors] = params[r->n_tensors + 1] = e->t_i64; /* tid, nth */
    params[r->n_tensors + 2] = e->t_ptr;                          /* the stop flag */
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, params, (unsigned)r->n_tensors + 3, 0);
    e->fn = LLVMAddFunction(e->mod, name, fty);
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    run_attributes(e, (unsigned)r->n_tensors);
    for (int j = 0; j < r->n_tensors; j++)
        bufs[j] = LLVMGetParam(e->fn, (unsigned)j);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.entry"));
    const Op *head = r->ops[0];
    int rank = e->p->tensors[head->out]->rank;
    LLVMValueRef tid = LLVMGetParam(e->fn, (unsigned)r->n_tensors);
    /* one cell, nothing to share: thread 0 alone (a "+=" on the shared cell by
     * every thread would add twice) */
    LLVMBasicBlockRef done = rank == 0 ? emit_thread0_begin(e, tid) : NULL;
    if (!op_is_empty(head)) {
        Loop loops[FUSE_MAX_RANK];
        e->op = head;
        /* the out slots in order (the last is contiguous); the first is shared
         * out among the team's threads */
        e->v_tid = tid;
        e->v_nth = LLVMGetParam(e->fn, (unsigned)r->n_tensors + 1);
        e->share_axis = rank > 0 ? head->out_axis[0] : -1;
        e->v_stop = LLVMGetParam(e->fn, (unsigned)r->n_tensors + 2);
        int level = emit_stop_level(e, head->out_axis, rank, r->n);
        for (int k = 0; k < rank; k++) {
            loops[k] = emit_loop_begin(e, head->out_axis[k]);
            if (k == level)
                emit_loop_stop_check(e, &loops[k]);
            ctr[head->out_axis[k]] = e->v_counter[head->out_axis[k]];
        }
        RunBufs b = {-1, NULL, bufs};
        emit_run_cells(e, r, 0, ctr, &b);
        e->op = head;
        for (int k = rank - 1; k >= 0; k--)
            emit_loop_end(e, &loops[k]);
        e->v_tid = e->v_nth = e->v_stop = NULL;
        e->share_axis = -1;
    }
    if (done)
        emit_thread0_end(e, done);
    LLVMBuildRetVoid(e->bld);
    return e->fn;
}
