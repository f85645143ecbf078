/*
 * emit_delta.c: semi-naive delta kernels (see lower.h). The op function of a
 * recursive join loops first over the axes of its driver operand (the delta),
 * tests the cell and, when it holds a fact, loops over the remaining axes and
 * ORs (product of the other operands > 0) into the output. The driver's last
 * axis is scanned in vectors of cells, passing over blocks without a fact, and
 * an operand outside the component with one free axis can be read through the
 * runtime's index of its non-zeros along that axis (lower.h). On a thread team
 * each thread takes a share of the first driver axis when the output has it
 * (so no two threads OR into the same cell), else the join runs on thread 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

/* A new block at the end of the function being built. */
static LLVMBasicBlockRef new_block(Emit *e, const char *name)
{
    return LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
}

static int driver_of(const Op *op)
{
    int d = -1;
    for (int k = 0; k < op->n_in; k++)
        if (op->in[k].reads_prev) {
            if (d >= 0)
                return -2;
            d = k;
        }
    return d;
}

bool lower_delta_eligible(const IrProgram *p, int g)
{
    const Group *grp = p->groups[g];
    if (!grp->is_recursive || !p->tensors[grp->tensor]->is_bool)
        return false;
    for (int i = 0; i < grp->n_ops; i++) {
        const Op *op = grp->ops[i];
        if (op->kind != OP_JOIN || !op->is_contribution || !op->is_bool_out ||
            !(op->coef > 0) || (op->red != RED_SUM && op->red != RED_MAX) ||
            op->concat_slot >= 0 || driver_of(op) < -1 || op->n_in + 1 > EMIT_MAX_AXES ||
            op->n_axes > EMIT_MAX_AXES)
            return false;
    }
    return true;
}

void lower_delta_name(const LowerOptions *opt, int g, bool is_base, char *buf, size_t n)
{
    snprintf(buf, n, "%s%c%d", opt->prefix ? opt->prefix : "", is_base ? 'b' : 'd', g);
}

/* A join's operand read through its index of non-zeros: its position in
 * op->in (k < 0: none), its free slot, the index (a parameter; NULL at run
 * time: none bound). */
typedef struct SparseRead {
    int k, slot;
    LLVMValueRef ix;
} SparseRead;

bool lower_in_component(const IrProgram *p, int comp, int t)
{
    for (int h = 0; h < p->n_groups; h++)
        if (p->groups[h]->component == comp && p->groups[h]->tensor == t)
            return true;
    return false;
}

int lower_delta_sparse_operand(const IrProgram *p, int g, const Op *op, int *slot)
{
    int driver = driver_of(op);
    if (driver < 0 || op->n_in != 2)
        return -1;
    int k = 1 - driver, free_slot = -1;
    const Operand *o = &op->in[k], *d = &op->in[driver];
    const IrTensor *t = p->tensors[o->tensor];
    if (t->rank < 1 || t->elem || t->quant || lower_in_component(p, p->groups[g]->component, o->tensor))
        return -1;
    bool is_driver_axis[EMIT_MAX_AXES] = {false};
    for (int j = 0; j < p->tensors[d->tensor]->rank; j++)
        if (d->kind[j] == SL_AXIS)
            is_driver_axis[d->axis[j]] = true;
    for (int j = 0; j < t->rank; j++) { /* plain whole axes: every index in range */
        if (o->kind[j] != SL_AXIS || o->offset[j] || o->slice[j] ||
            op->axes[o->axis[j]].size != t->shape[j])
            return -1;
        if (!is_driver_axis[o->axis[j]]) {
            if (free_slot >= 0)
                return -1;
            free_slot = j;
        }
    }
    if (free_slot < 0)
        return -1;
    for (int a = 0; a < op->n_axes; a++) /* the loop under a fact is the free axis's */
        if (!is_driver_axis[a] && a != o->axis[free_slot])
            return -1;
    if (slot)
        *slot = free_slot;
    return k;
}

/* The i64 at base[at]. */
static LLVMValueRef load_i64(Emit *e, LLVMValueRef base, LLVMValueRef at, const char *name)
{
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->bld, e->t_i64, base, &at, 1, "v.i64p");
    return LLVMBuildLoad2(e->bld, e->t_i64, p, name);
}

/* Per fact, the cells of sparse operand k along its free slot that are > 0,
 * read from its index `ix` (lower.h), each setting its output cell. */
static void emit_sparse_body(Emit *e, const SparseRead *sp)
{
    const Operand *o = &e->op->in[sp->k];
    const IrTensor *t = e->p->tensors[o->tensor];
    int slot = sp->slot, f = o->axis[slot];
    LLVMValueRef ix = sp->ix;
    int64_t rows = 1;
    LLVMValueRef row = emit_i64(e, 0);
    for (int j = 0; j < t->rank; j++) { /* row-major over the other slots */
        if (j == slot)
            continue;
        row = LLVMBuildMul(e->bld, row, emit_i64(e, t->shape[j]), "v.row");
        row = LLVMBuildAdd(e->bld, row, e->v_counter[o->axis[j]], "v.row");
        rows *= t->shape[j];
    }
    LLVMValueRef first = load_i64(e, ix, row, "v.first");
    LLVMValueRef end =
        load_i64(e, ix, LLVMBuildAdd(e->bld, row, emit_i64(e, 1), "v.row1"), "v.end");
    LLVMValueRef cols_at = emit_i64(e, rows + 1);
    LLVMValueRef cols = LLVMBuildInBoundsGEP2(e->bld, e->t_i64, ix, &cols_at, 1, "v.cols");
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef head = new_block(e, "b.nz");
    LLVMBasicBlockRef body = new_block(e, "b.nz.body");
    LLVMBasicBlockRef done = new_block(e, "b.nz.done");
    LLVMBuildBr(e->bld, head);
    LLVMPositionBuilderAtEnd(e->bld, head);
    LLVMValueRef at = LLVMBuildPhi(e->bld, e->t_i64, "v.nz");
    LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntSLT, at, end, "v.more"), body, done);
    LLVMPositionBuilderAtEnd(e->bld, body);
    LLVMValueRef saved = e->v_counter[f];
    e->v_counter[f] = load_i64(e, cols, at, "v.col");
    emit_tensor_store(e, e->op->out, emit_f32(e, 1.0), emit_out_addr(e));
    e->v_counter[f] = saved;
    LLVMValueRef next = LLVMBuildAdd(e->bld, at, emit_i64(e, 1), "v.nz.next");
    emit_leave_loop_alone(e, LLVMBuildBr(e->bld, head));
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->bld);
    LLVMValueRef in_vals[2] = {first, next};
    LLVMBasicBlockRef in_bbs[2] = {pre, latch};
    LLVMAddIncoming(at, in_vals, in_bbs, 2);
    LLVMPositionBuilderAtEnd(e->bld, done);
}

static void emit_dense_body(Emit *e, int driver, const bool *is_driver_axis)
{
    const Op *op = e->op;
    Loop loops[EMIT_MAX_AXES];
    int n = 0;
    for (int a = 0; a < op->n_axes; a++)
        if (!is_driver_axis[a])
            loops[n++] = emit_loop_begin(e, a);
    LLVMValueRef prod = emit_f32(e, 1.0);
    for (int k = 0; k < op->n_in; k++)
        if (k != driver)
            prod = LLVMBuildFMul(e->bld, prod, emit_load_operand(e, k), "v.p");
    LLVMValueRef pos = LLVMBuildFCmp(e->bld, LLVMRealOGT, prod, emit_f32(e, 0.0), "v.pos");
    LLVMValueRef addr = emit_out_addr(e);
    LLVMValueRef old = emit_tensor_load(e, e->op->out, e->t_f32, addr, 0, "v.old");
    /* a fact sets the cell; the output holds only 0 and 1 (it starts all zeros) */
    emit_tensor_store(e, e->op->out, LLVMBuildSelect(e->bld, pos, emit_f32(e, 1.0), old, "v.or"),
                      addr);
    while (n > 0)
        emit_loop_end(e, &loops[--n]);
}

/* Under one fact: with a sparse operand k (>= 0), through its index `ix` when
 * the runtime bound one, else (and without one) over the whole nest. */
static void emit_body(Emit *e, int driver, const bool *is_driver_axis, const SparseRead *sp)
{
    if (sp->k < 0) {
        emit_dense_body(e, driver, is_driver_axis);
        return;
    }
    LLVMBasicBlockRef sparse = new_block(e, "b.sparse");
    LLVMBasicBlockRef dense = new_block(e, "b.dense");
    LLVMBasicBlockRef join = new_block(e, "b.joined");
    LLVMBuildCondBr(e->bld, LLVMBuildIsNull(e->bld, sp->ix, "v.noix"), dense, sparse);
    LLVMPositionBuilderAtEnd(e->bld, sparse);
    emit_sparse_body(e, sp);
    LLVMBuildBr(e->bld, join);
    LLVMPositionBuilderAtEnd(e->bld, dense);
    emit_dense_body(e, driver, is_driver_axis);
    LLVMBuildBr(e->bld, join);
    LLVMPositionBuilderAtEnd(e->bld, join);
}

/* The cell of the driver at the current counters: a fact runs the body. */
static void emit_fact_test(Emit *e, int driver, const bool *is_driver_axis,
                           const SparseRead *sp)
{
    LLVMValueRef x = emit_load_operand(e, driver);
    LLVMBasicBlockRef body = new_block(e, "b.fact");
    LLVMBasicBlockRef skip = new_block(e, "b.skip");
    LLVMBuildCondBr(e->bld, LLVMBuildFCmp(e->bld, LLVMRealUNE, x, emit_f32(e, 0.0), "v.new"),
                    body, skip);
    LLVMPositionBuilderAtEnd(e->bld, body);
    emit_body(e, driver, is_driver_axis, sp);
    LLVMBuildBr(e->bld, skip);
    LLVMPositionBuilderAtEnd(e->bld, skip);
}

/* Cells of the driver's last axis tested at once (one vector load). */
enum { SKIP_BLOCK = 16 };

/* Whether the loop over axis a can skip blocks of SKIP_BLOCK driver cells that
 * are all zeros: float32 storage, every slot a plain whole axis (the address is
 * the counters'), a its last one, and long enough to be worth it. */
static bool can_skip_blocks(const Emit *e, int driver, int a)
{
    const Operand *d = &e->op->in[driver];
    const IrTensor *t = e->p->tensors[d->tensor];
    if (emit_is_f64(e) || emit_store_bytes(e, d->tensor) != 4 || t->elem || t->quant ||
        d->kind[t->rank - 1] != SL_AXIS || d->axis[t->rank - 1] != a ||
        e->op->axes[a].size < 4 * SKIP_BLOCK || a == e->share_axis)
        return false;
    for (int k = 0; k < t->rank; k++)
        if (d->kind[k] != SL_AXIS || d->offset[k] || d->slice[k] ||
            e->op->axes[d->axis[k]].size != t->shape[k])
            return false;
    return true;
}

/* The driver's cells along its last axis a in blocks of SKIP_BLOCK: a block
 * whose vector of cells has no non-zero is passed over, the others (and a
 * short last block) test cell by cell. Most delta cells are zeros: this turns a
 * test and a jump per cell into one per block. */
static void emit_blocked_cells(Emit *e, int driver, const bool *is_driver_axis,
                               const SparseRead *sp, int a)
{
    const Operand *d = &e->op->in[driver];
    const IrTensor *t = e->p->tensors[d->tensor];
    int64_t size = e->op->axes[a].size, stride = 1;
    LLVMValueRef off = emit_i64(e, 0); /* the row's first cell (counter a = 0) */
    for (int k = t->rank - 2; k >= 0; k--) {
        stride *= t->shape[k + 1];
        off = LLVMBuildAdd(
            e->bld, off,
            LLVMBuildMul(e->bld, e->v_counter[d->axis[k]], emit_i64(e, stride), "v.t"), "v.row");
    }
    LLVMTypeRef vty = LLVMVectorType(e->t_f32, SKIP_BLOCK);
    LLVMTypeRef mty = LLVMIntTypeInContext(e->ctx, SKIP_BLOCK);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef head = new_block(e, "b.blk");
    LLVMBasicBlockRef test = new_block(e, "b.blk.test");
    LLVMBasicBlockRef vec = new_block(e, "b.blk.vec");
    LLVMBasicBlockRef cells = new_block(e, "b.blk.cells");
    LLVMBasicBlockRef next = new_block(e, "b.blk.next");
    LLVMBasicBlockRef done = new_block(e, "b.blk.done");
    LLVMBuildBr(e->bld, head);
    LLVMPositionBuilderAtEnd(e->bld, head);
    LLVMValueRef blk = LLVMBuildPhi(e->bld, e->t_i64, "v.blk");
    LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntSLT, blk, emit_i64(e, size), "v.more"),
                    test, done);
    LLVMPositionBuilderAtEnd(e->bld, test);
    LLVMValueRef end = LLVMBuildAdd(e->bld, blk, emit_i64(e, SKIP_BLOCK), "v.blk.end");
    LLVMValueRef whole = LLVMBuildICmp(e->bld, LLVMIntSLE, end, emit_i64(e, size), "v.whole");
    LLVMBuildCondBr(e->bld, whole, vec, cells);
    LLVMPositionBuilderAtEnd(e->bld, vec);
    LLVMValueRef at = LLVMBuildAdd(e->bld, off, blk, "v.at");
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(e->bld, e->t_f32, e->v_in[driver], &at, 1, "v.vp");
    LLVMValueRef v = LLVMBuildLoad2(e->bld, vty, ptr, "v.cells");
    LLVMSetAlignment(v, 4);
    LLVMValueRef nz = LLVMBuildFCmp(e->bld, LLVMRealUNE, v, LLVMConstNull(vty), "v.nz");
    LLVMValueRef any = LLVMBuildICmp(e->bld, LLVMIntNE, LLVMBuildBitCast(e->bld, nz, mty, "v.m"),
                                     LLVMConstNull(mty), "v.any");
    LLVMBuildCondBr(e->bld, any, cells, next);
    /* cell by cell: blk .. min(end, size) - 1 */
    LLVMPositionBuilderAtEnd(e->bld, cells);
    LLVMValueRef last = LLVMBuildSelect(e->bld, whole, end, emit_i64(e, size), "v.last");
    LLVMBasicBlockRef cell = new_block(e, "b.cell");
    LLVMBuildBr(e->bld, cell);
    LLVMPositionBuilderAtEnd(e->bld, cell);
    LLVMValueRef c = LLVMBuildPhi(e->bld, e->t_i64, "v.cell");
    LLVMValueRef saved = e->v_counter[a];
    e->v_counter[a] = c;
    emit_fact_test(e, driver, is_driver_axis, sp);
    e->v_counter[a] = saved;
    LLVMValueRef c1 = LLVMBuildAdd(e->bld, c, emit_i64(e, 1), "v.cell.next");
    LLVMBasicBlockRef cell_end = LLVMGetInsertBlock(e->bld);
    emit_leave_loop_alone(e, LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntSLT, c1, last,
                                                                   "v.cell.more"),
                                             cell, next));
    LLVMValueRef c_vals[2] = {blk, c1};
    LLVMBasicBlockRef c_bbs[2] = {cells, cell_end};
    LLVMAddIncoming(c, c_vals, c_bbs, 2);
    LLVMPositionBuilderAtEnd(e->bld, next);
    emit_leave_loop_alone(e, LLVMBuildBr(e->bld, head));
    LLVMValueRef b_vals[2] = {emit_i64(e, 0), end};
    LLVMBasicBlockRef b_bbs[2] = {pre, next};
    LLVMAddIncoming(blk, b_vals, b_bbs, 2);
    LLVMPositionBuilderAtEnd(e->bld, done);
}

static void emit_delta_join(Emit *e, const SparseRead *sp)
{
    const Op *op = e->op;
    int driver = driver_of(op);
    bool is_driver_axis[EMIT_MAX_AXES] = {false};
    Loop loops[FUSE_MAX_RANK];
    int axes[FUSE_MAX_RANK], n = 0;
    const Operand *d = &op->in[driver];
    for (int k = 0; k < e->p->tensors[d->tensor]->rank; k++)
        if (d->kind[k] == SL_AXIS && !is_driver_axis[d->axis[k]]) {
            is_driver_axis[d->axis[k]] = true;
            axes[n++] = d->axis[k];
        }
    int64_t rest = 1; /* the cells of the nest under one fact (at most) */
    for (int a = 0; a < op->n_axes; a++)
        rest *= is_driver_axis[a] || rest > ((int64_t)1 << 40) ? 1 : op->axes[a].size;
    int level = emit_stop_level(e, axes, n, rest);
    /* the innermost loop in blocks; when it would be the one checking the flag,
     * the loop around it checks (a row of a relation is a few thousand cells:
     * the stop still comes within a millisecond or so) */
    bool is_blocked = n > 0 && (level != n - 1 || n > 1) &&
                      can_skip_blocks(e, driver, axes[n - 1]);
    if (is_blocked && level == n - 1)
        level = n - 2;
    int n_loops = is_blocked ? n - 1 : n;
    for (int i = 0; i < n_loops; i++) {
        loops[i] = emit_loop_begin(e, axes[i]);
        if (i == level)
            emit_loop_stop_check(e, &loops[i]);
    }
    if (is_blocked)
        emit_blocked_cells(e, driver, is_driver_axis, sp, axes[n - 1]);
    else
        emit_fact_test(e, driver, is_driver_axis, sp);
    while (n_loops > 0)
        emit_loop_end(e, &loops[--n_loops]);
}

/* The loop axis a thread team may share out in op's delta join: its first
 * driver axis when the output has it (then two threads never write the same
 * output cell); -1 when none. */
static int shared_axis(const IrProgram *p, const Op *op)
{
    const Operand *d = &op->in[driver_of(op)];
    for (int k = 0; k < p->tensors[d->tensor]->rank; k++) {
        if (d->kind[k] != SL_AXIS)
            continue;
        for (int j = 0; j < p->tensors[op->out]->rank; j++)
            if (op->out_axis[j] == d->axis[k] && op->out_offset[j] == 0 && !op->out_minor[j])
                return d->axis[k];
        return -1;
    }
    return -1;
}

/* `internal void NAME(ptr out, ptr in..., i64 tid, i64 nth, ptr stop[, ptr ix])`:
 * thread tid's share of the rows of shared_axis (all of them, on thread 0 only,
 * when the op has none: the caller checks); a large join checks the stop flag
 * per block of driver cells. ix: the index of the op's sparse operand, when it
 * has one (NULL: none bound). */
static LLVMValueRef delta_op_function(Emit *e, int g, const Op *op, const char *name)
{
    SparseRead sp = {.k = -1};
    sp.k = lower_delta_sparse_operand(e->p, g, op, &sp.slot);
    int n_params = op->n_in + 1, sparse = sp.k;
    LLVMTypeRef params[EMIT_MAX_AXES + 4];
    for (int i = 0; i < n_params; i++)
        params[i] = e->t_ptr;
    params[n_params] = params[n_params + 1] = e->t_i64;
    params[n_params + 2] = params[n_params + 3] = e->t_ptr; /* the stop flag, ix */
    e->fn = LLVMAddFunction(e->mod, name,
                            LLVMFunctionType(e->t_void, params,
                                             (unsigned)n_params + 3 + (sparse >= 0), 0));
    e->op = op;
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    e->v_out = LLVMGetParam(e->fn, 0);
    for (int i = 0; i < op->n_in; i++)
        e->v_in[i] = LLVMGetParam(e->fn, (unsigned)i + 1);
    e->share_axis = shared_axis(e->p, op);
    e->v_tid = e->share_axis >= 0 ? LLVMGetParam(e->fn, (unsigned)n_params) : NULL;
    e->v_nth = e->share_axis >= 0 ? LLVMGetParam(e->fn, (unsigned)n_params + 1) : NULL;
    e->v_stop = LLVMGetParam(e->fn, (unsigned)n_params + 2);
    LLVMPositionBuilderAtEnd(e->bld, new_block(e, "b.entry"));
    sp.ix = sparse >= 0 ? LLVMGetParam(e->fn, (unsigned)n_params + 3) : NULL;
    emit_delta_join(e, &sp);
    LLVMBuildRetVoid(e->bld);
    e->share_axis = -1;
    e->v_tid = e->v_nth = e->v_stop = NULL;
    return e->fn;
}

static LLVMValueRef buffer_of(Emit *e, LLVMValueRef bufs, int index)
{
    LLVMValueRef idx = emit_i64(e, index);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e->bld, e->t_ptr, bufs, &idx, 1, "v.slot");
    return LLVMBuildLoad2(e->bld, e->t_ptr, slot, "v.buf");
}

/* Whether op's loop over its output's axis 0 covers the output's rows one for
 * one (no offset, no minor slot, the whole axis), so that sharing that loop
 * out shares the output's rows (share_begin, emit.c). */
static bool base_shares_rows(const IrProgram *p, const Op *op)
{
    const IrTensor *t = p->tensors[op->out];
    return t->rank > 0 && op->out_offset[0] == 0 && op->out_minor[0] == 0 &&
           op->axes[op->out_axis[0]].size == t->shape[0];
}

bool lower_delta_row_chunk(const IrProgram *p, int g, int64_t nth, const LowerOptions *opt,
                           int64_t *chunk)
{
    const Group *grp = p->groups[g];
    const IrTensor *t = p->tensors[grp->tensor];
    if (!lower_delta_eligible(p, g) || t->rank == 0 || nth < 1)
        return false;
    for (int i = 0; i < grp->n_ops; i++) {
        const Op *op = grp->ops[i];
        if (!base_shares_rows(p, op) ||
            (driver_of(op) >= 0 && shared_axis(p, op) != op->out_axis[0]))
            return false;
    }
    *chunk = lower_row_block(t->shape[0], nth, opt); /* share_begin (emit.c) */
    return true;
}

/* Calls fn only on thread 0 (the kernel's param 1 is tid) when !is_shared. */
static void call_on_team(Emit *e, LLVMValueRef kfn, LLVMValueRef fn, LLVMValueRef *args,
                         unsigned n, bool is_shared)
{
    LLVMBasicBlockRef after = is_shared ? NULL : emit_thread0_begin(e, LLVMGetParam(kfn, 1));
    LLVMBuildCall2(e->bld, LLVMGlobalGetValueType(fn), fn, args, n, "");
    if (after)
        emit_thread0_end(e, after);
}

/* The delta kernel (recursive joins, delta-driven) or, with is_base, the base
 * kernel (the other joins, ordinary loop nests, never stopped inside) of group
 * g. Both take the RtKernel ABI: every thread of a team runs it, each join on
 * its share of the output's rows (a join that cannot share them on thread 0
 * alone), a barrier between joins; the delta joins get the stop flag. */
static void emit_delta_group(Emit *e, int g, bool is_base, const char *kname)
{
    const Group *grp = e->p->groups[g];
    int n_t = e->p->n_tensors;
    LLVMValueRef fns[64];
    int n_fns = 0, which[64];
    for (int i = 0; i < grp->n_ops && n_fns < 64; i++) {
        if ((driver_of(grp->ops[i]) < 0) != is_base)
            continue;
        char name[192];
        snprintf(name, sizeof name, "%s.op%d.%s", kname, i, is_base ? "base" : "delta");
        which[n_fns] = i;
        fns[n_fns++] = is_base ? emit_op_function(e, grp->ops[i], name,
                                                  base_shares_rows(e->p, grp->ops[i]))
                               : delta_op_function(e, g, grp->ops[i], name);
    }
    LLVMTypeRef params[5] = {e->t_ptr, e->t_i64, e->t_i64, e->t_ptr, e->t_ptr};
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, params, 5, 0);
    LLVMValueRef fn = LLVMAddFunction(e->mod, kname, fty);
    LLVMValueRef bufs = LLVMGetParam(fn, 0);
    LLVMTypeRef bty = LLVMFunctionType(e->t_void, NULL, 0, 0);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, fn, "b.entry"));
    for (int f = 0; f < n_fns; f++) {
        const Op *op = grp->ops[which[f]];
        LLVMValueRef args[EMIT_MAX_AXES + 5];
        unsigned n = 0;
        args[n++] = buffer_of(e, bufs, op->out);
        for (int k = 0; k < op->n_in; k++)
            args[n++] = buffer_of(e, bufs, op->in[k].tensor + (op->in[k].reads_prev ? n_t : 0));
        bool is_shared = is_base ? base_shares_rows(e->p, op) : shared_axis(e->p, op) >= 0;
        if (!is_base || is_shared) {
            args[n++] = LLVMGetParam(fn, 1);
            args[n++] = LLVMGetParam(fn, 2);
        }
        args[n++] = is_base ? emit_never_stop(e) : LLVMGetParam(fn, 4);
        int sparse = is_base ? -1 : lower_delta_sparse_operand(e->p, g, op, NULL);
        if (sparse >= 0) /* its index, bound by the runtime (lower.h) */
            args[n++] = buffer_of(e, bufs, n_t + op->in[sparse].tensor);
        call_on_team(e, fn, fns[f], args, n, is_shared);
        if (f + 1 < n_fns) /* the next join ORs into the same output */
            LLVMBuildCall2(e->bld, bty, LLVMGetParam(fn, 3), NULL, 0, "");
    }
    LLVMBuildRetVoid(e->bld);
}

fuse_status lower_delta_program(const IrProgram *p, LLVMModuleRef mod, const LowerOptions *opt,
                                const bool *want, char **err)
{
    Emit e;
    emit_state_init(&e, p, mod, opt);
    fuse_status st = FUSE_OK;
    for (int g = 0; g < p->n_groups; g++) {
        if (!want[g])
            continue;
        if (!lower_delta_eligible(p, g)) {
            st = FUSE_E_JIT;
            if (err)
                *err = strdup("internal error: a delta kernel for an ineligible group");
            break;
        }
        char name[128];
        for (int base = 0; base < 2; base++) {
            lower_delta_name(opt, g, base, name, sizeof name);
            emit_delta_group(&e, g, base, name);
        }
    }
    LLVMDisposeBuilder(e.bld);
    return st;
}
