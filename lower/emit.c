/*
 * emit.c: the loop nest of one IR op as an LLVM function.
 *
 * Each op becomes `internal void NAME(ptr noalias out, ptr noalias in0, ..., ptr
 * stop)` with every size a constant. Loops run counters from 0 to n-1 (axes of
 * size 1 get no loop; an op with an empty axis is empty). Operand addresses are
 * sums of counter x stride; a shifted read (t+1) is clamped into range and
 * replaced by 0 outside it, so no load ever leaves its buffer. A long nest checks
 * the run's stop flag once per block of an outer loop (emit.h: stopping a run).
 *
 * JOIN has two shapes. A plain sum writes in place: the output is zeroed (first
 * contribution), then `out += coef * prod` runs with the output's last axis
 * innermost, so the inner loop is contiguous and vectorises (for a matrix product:
 * i, k, j). max, avg and boolean contributions keep a register accumulator per
 * output cell over the projected axes, then combine it into the output.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"
#include "fastmath.h"

#include <llvm-c/DebugInfo.h>

/* ---- helpers ---- */

LLVMValueRef emit_f32(Emit *e, double v) { return LLVMConstReal(e->t_f32, v); }
LLVMValueRef emit_i64(Emit *e, int64_t v) { return LLVMConstInt(e->t_i64, (unsigned long long)v, 1); }

void emit_fast(LLVMValueRef inst)
{
    if (LLVMIsAInstruction(inst) && LLVMCanValueUseFastMathFlags(inst))
        LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
}

static LLVMValueRef intrinsic(Emit *e, const char *name, LLVMValueRef *args, unsigned n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef types[1] = {n ? LLVMTypeOf(args[0]) : e->t_f32}; /* float or a vector of it */
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, types, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(e->ctx, id, types, 1);
    return LLVMBuildCall2(e->bld, fty, fn, args, n, "v.call");
}

LLVMValueRef emit_intrinsic1(Emit *e, const char *name, LLVMValueRef x)
{
    return intrinsic(e, name, &x, 1);
}

LLVMValueRef emit_intrinsic2(Emit *e, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef args[2] = {x, y};
    return intrinsic(e, name, args, 2);
}

LLVMValueRef emit_entry_alloca(Emit *e, const char *name)
{
    return emit_entry_alloca_type(e, e->t_f32, name);
}

LLVMValueRef emit_entry_alloca_type(Emit *e, LLVMTypeRef ty, const char *name)
{
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(e->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(e->bld, first);
    else
        LLVMPositionBuilderAtEnd(e->bld, entry);
    LLVMValueRef v = LLVMBuildAlloca(e->bld, ty, name);
    LLVMPositionBuilderAtEnd(e->bld, cur);
    return v;
}

/* ---- loops ---- */

/* Branches on cond into a new block `then` (the builder is left there) or past
 * it; returns the block after, which the caller's *_end branches to. */
static LLVMBasicBlockRef begin_if(Emit *e, LLVMValueRef cond, const char *then,
                                  const char *after_name)
{
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(e->bld));
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(e->ctx, fn, then);
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(e->ctx, fn, after_name);
    LLVMBuildCondBr(e->bld, cond, run, after);
    LLVMPositionBuilderAtEnd(e->bld, run);
    return after;
}

LLVMBasicBlockRef emit_thread0_begin(Emit *e, LLVMValueRef tid)
{
    LLVMValueRef is_main = LLVMBuildICmp(e->bld, LLVMIntEQ, tid, emit_i64(e, 0), "v.main");
    return begin_if(e, is_main, "b.op", "b.next");
}

void emit_thread0_end(Emit *e, LLVMBasicBlockRef after)
{
    LLVMBuildBr(e->bld, after);
    LLVMPositionBuilderAtEnd(e->bld, after);
}

/* Thread v_tid's rows of the shared axis: [tid * chunk, min(size, (tid + 1) *
 * chunk)), chunk = lower_row_block(size, nth): ceil(size / nth), in whole
 * quanta of rows under split_rows. Each cell is computed by one thread, the
 * same way whatever nth is. */
static Loop share_begin(Emit *e, int axis)
{
    Loop l = {.axis = axis, .is_shared = true};
    int64_t q = lower_row_quantum(e->opt);
    LLVMValueRef size = emit_i64(e, e->op->axes[axis].size);
    LLVMValueRef quanta = emit_i64(e, (e->op->axes[axis].size + q - 1) / q);
    LLVMValueRef nth1 = LLVMBuildSub(e->bld, e->v_nth, emit_i64(e, 1), "v.nth1");
    LLVMValueRef per = LLVMBuildUDiv(e->bld, LLVMBuildAdd(e->bld, quanta, nth1, ""), e->v_nth,
                                     "v.per");
    LLVMValueRef chunk = q == 1 ? per : LLVMBuildMul(e->bld, per, emit_i64(e, q), "v.chunk");
    LLVMValueRef lo = LLVMBuildMul(e->bld, e->v_tid, chunk, "v.lo");
    LLVMValueRef end = LLVMBuildAdd(e->bld, lo, chunk, "v.end");
    LLVMValueRef hi = LLVMBuildSelect(e->bld, LLVMBuildICmp(e->bld, LLVMIntULT, end, size, ""),
                                      end, size, "v.hi");
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    l.header = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.share");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.share.body");
    l.exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.share.exit");
    LLVMBuildBr(e->bld, l.header);
    LLVMPositionBuilderAtEnd(e->bld, l.header);
    l.v_phi = LLVMBuildPhi(e->bld, e->t_i64, "v.row");
    LLVMAddIncoming(l.v_phi, &lo, &pre, 1);
    LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntULT, l.v_phi, hi, "v.more"), body,
                    l.exit);
    LLVMPositionBuilderAtEnd(e->bld, body);
    e->v_counter[axis] = l.v_phi;
    return l;
}

static void share_end(Emit *e, Loop *l)
{
    LLVMValueRef next = LLVMBuildNUWAdd(e->bld, l->v_phi, emit_i64(e, 1), "v.next");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->bld);
    LLVMAddIncoming(l->v_phi, &next, &latch, 1);
    LLVMBuildBr(e->bld, l->header);
    LLVMPositionBuilderAtEnd(e->bld, l->exit);
}

Loop emit_loop_begin(Emit *e, int axis)
{
    Loop l = {.axis = axis};
    if (axis == e->share_axis && e->v_tid)
        return share_begin(e, axis);
    if (e->op->axes[axis].size == 1) {
        l.is_trivial = true;
        e->v_counter[axis] = emit_i64(e, 0);
        return l;
    }
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    char name[96];
    snprintf(name, sizeof name, "b.loop.%s", e->op->axes[axis].name);
    l.header = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
    LLVMBuildBr(e->bld, l.header);
    LLVMPositionBuilderAtEnd(e->bld, l.header);
    l.v_phi = LLVMBuildPhi(e->bld, e->t_i64, "v.i");
    LLVMValueRef zero = emit_i64(e, 0);
    LLVMAddIncoming(l.v_phi, &zero, &pre, 1);
    e->v_counter[axis] = l.v_phi;
    return l;
}

void emit_loop_end(Emit *e, Loop *l)
{
    if (l->resume) /* the skipped rest of a stopped iteration rejoins here */
        emit_unless_stopped_end(e, l->resume);
    if (l->is_shared) {
        share_end(e, l);
        return;
    }
    if (l->is_trivial)
        return;
    LLVMValueRef next = LLVMBuildNUWAdd(e->bld, l->v_phi, emit_i64(e, 1), "v.next");
    LLVMValueRef more = LLVMBuildICmp(e->bld, LLVMIntULT, next,
                                      emit_i64(e, e->op->axes[l->axis].size), "v.more");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.exit");
    LLVMBuildCondBr(e->bld, more, l->header, exit);
    LLVMAddIncoming(l->v_phi, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(e->bld, exit);
}

/* ---- stopping a run (emit.h) ---- */

LLVMValueRef emit_never_stop(Emit *e)
{
    static const char name[] = "fuse.never_stop";
    LLVMValueRef g = LLVMGetNamedGlobal(e->mod, name);
    if (g)
        return g;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    g = LLVMAddGlobal(e->mod, i32, name);
    LLVMSetInitializer(g, LLVMConstInt(i32, 0, 0));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMInternalLinkage);
    LLVMSetAlignment(g, 4);
    return g;
}

/* cells x n, saturating (a check needs only to know "large"). */
static int64_t cells_times(int64_t cells, int64_t n)
{
    const int64_t cap = (int64_t)1 << 40;
    return n > 0 && cells > cap / n ? cap : cells * n;
}

int emit_stop_level(const Emit *e, const int *axes, int n, int64_t inner_cells)
{
    if (!e->v_stop)
        return -1;
    int64_t total = inner_cells;
    for (int i = 0; i < n; i++)
        total = cells_times(total, e->op->axes[axes[i]].size);
    if (total < EMIT_STOP_MIN_CELLS)
        return -1;
    int64_t inner = inner_cells; /* the cells of one iteration of loop i */
    for (int i = n - 1; i >= 0; i--) {
        int64_t size = e->op->axes[axes[i]].size;
        if (size > 1 && inner >= EMIT_STOP_BLOCK_CELLS)
            return i;
        inner = cells_times(inner, size);
    }
    return -1;
}

/* cond, marked as almost always true (llvm.expect): the stop branch is cold. */
static LLVMValueRef expect_true(Emit *e, LLVMValueRef cond)
{
    static const char name[] = "llvm.expect";
    unsigned id = LLVMLookupIntrinsicID(name, sizeof name - 1);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, &e->t_i1, 1);
    LLVMValueRef args[2] = {cond, LLVMConstInt(e->t_i1, 1, 0)};
    return LLVMBuildCall2(e->bld, LLVMIntrinsicGetType(e->ctx, id, &e->t_i1, 1), fn, args, 2,
                          "v.likely");
}

LLVMBasicBlockRef emit_unless_stopped_begin(Emit *e)
{
    if (!e->v_stop)
        return NULL;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    /* relaxed: the host's atomic store is seen at some later check; an ordinary
     * load could be hoisted out of the loop */
    LLVMValueRef flag = LLVMBuildLoad2(e->bld, i32, e->v_stop, "v.stop");
    LLVMSetOrdering(flag, LLVMAtomicOrderingMonotonic);
    LLVMSetAlignment(flag, 4);
    LLVMValueRef go = expect_true(e, LLVMBuildICmp(e->bld, LLVMIntEQ, flag,
                                                   LLVMConstInt(i32, 0, 0), "v.go"));
    return begin_if(e, go, "b.go", "b.stopped");
}

void emit_unless_stopped_end(Emit *e, LLVMBasicBlockRef after)
{
    if (!after)
        return;
    LLVMBuildBr(e->bld, after);
    LLVMPositionBuilderAtEnd(e->bld, after);
}

void emit_loop_stop_check(Emit *e, Loop *l)
{
    if (!l->is_trivial && !l->resume)
        l->resume = emit_unless_stopped_begin(e);
}

/* `!llvm.loop` metadata telling the unroller and the loop vectoriser to leave a
 * loop alone (contract.c: loops blocked, unrolled and vectorised by hand; their
 * passes over them were a third of a kernel's compile time). */
void emit_leave_loop_alone(Emit *e, LLVMValueRef latch_br)
{
    LLVMMetadataRef unroll = LLVMMDStringInContext2(e->ctx, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef vec_key = LLVMMDStringInContext2(e->ctx, "llvm.loop.vectorize.enable", 26);
    LLVMMetadataRef no = LLVMValueAsMetadata(LLVMConstInt(e->t_i1, 0, 0));
    LLVMMetadataRef vec_pair[2] = {vec_key, no};
    LLVMMetadataRef self = LLVMTemporaryMDNode(e->ctx, NULL, 0);
    LLVMMetadataRef ops[3] = {self, LLVMMDNodeInContext2(e->ctx, &unroll, 1),
                              LLVMMDNodeInContext2(e->ctx, vec_pair, 2)};
    LLVMMetadataRef node = LLVMMDNodeInContext2(e->ctx, ops, 3);
    LLVMMetadataReplaceAllUsesWith(self, node); /* the loop ID refers to itself */
    unsigned kind = LLVMGetMDKindIDInContext(e->ctx, "llvm.loop", 9);
    LLVMSetMetadata(latch_br, kind, LLVMMetadataAsValue(e->ctx, node));
}

/* ---- addressing ---- */

static void strides_of(const IrTensor *t, int64_t *stride)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        stride[k] = s;
        s *= t->shape[k];
    }
}

/* Loads operand i at the current counters; 0 where a shifted read leaves range. */
LLVMValueRef emit_load_operand(Emit *e, int i)
{
    if (e->v_reg_in[i])
        return e->v_reg_in[i]; /* fusion: kept in a register */
    const Operand *o = &e->op->in[i];
    const IrTensor *t = e->p->tensors[o->tensor];
    int64_t stride[FUSE_MAX_RANK];
    strides_of(t, stride);
    LLVMValueRef off = emit_i64(e, 0), ok = NULL;
    for (int k = 0; k < t->rank; k++) {
        LLVMValueRef idx;
        if (o->kind[k] == SL_FIXED) {
            idx = emit_i64(e, o->offset[k]);
        } else {
            idx = e->v_counter[o->axis[k]];
            if (o->slice[k]) {
                /* in range by construction (shape inference sized the axis) */
                idx = LLVMBuildMul(e->bld, idx, emit_i64(e, o->step[k]), "v.step");
                idx = LLVMBuildAdd(e->bld, idx, emit_i64(e, o->offset[k]), "v.first");
            } else if (o->offset[k] != 0) {
                idx = LLVMBuildAdd(e->bld, idx, emit_i64(e, o->offset[k]), "v.shift");
                LLVMValueRef in = LLVMBuildICmp(e->bld, LLVMIntULT, idx,
                                                emit_i64(e, t->shape[k]), "v.inrange");
                ok = ok ? LLVMBuildAnd(e->bld, ok, in, "v.ok") : in;
                idx = LLVMBuildSelect(e->bld, in, idx, emit_i64(e, 0), "v.clamp");
            }
        }
        LLVMValueRef term = LLVMBuildMul(e->bld, idx, emit_i64(e, stride[k]), "v.term");
        off = LLVMBuildAdd(e->bld, off, term, "v.off");
    }
    LLVMValueRef v = emit_tensor_load_at(e, o->tensor, e->v_in[i], off, "v.x");
    return ok ? LLVMBuildSelect(e->bld, ok, v, emit_f32(e, 0.0), "v.x0") : v;
}

/* Address of the current output cell. */
LLVMValueRef emit_out_addr(Emit *e)
{
    const IrTensor *t = e->p->tensors[e->op->out];
    int64_t stride[FUSE_MAX_RANK];
    strides_of(t, stride);
    LLVMValueRef off = emit_i64(e, 0);
    for (int k = 0; k < t->rank; k++) {
        LLVMValueRef idx = e->v_counter[e->op->out_axis[k]];
        if (e->op->out_offset[k])
            idx = LLVMBuildAdd(e->bld, idx, emit_i64(e, e->op->out_offset[k]), "v.at");
        if (e->op->out_minor[k]) {
            int minor = e->op->out_minor[k] - 1;
            idx = LLVMBuildMul(e->bld, idx, emit_i64(e, e->op->axes[minor].size), "v.major");
            idx = LLVMBuildAdd(e->bld, idx, e->v_counter[minor], "v.merged");
        }
        LLVMValueRef term = LLVMBuildMul(e->bld, idx, emit_i64(e, stride[k]), "v.term");
        off = LLVMBuildAdd(e->bld, off, term, "v.off");
    }
    return emit_tensor_gep(e, e->op->out, e->v_out, off, "v.out");
}

/* The product of every operand at the current counters. */
static LLVMValueRef product(Emit *e)
{
    LLVMValueRef v = NULL;
    for (int i = 0; i < e->op->n_in; i++) {
        LLVMValueRef x = emit_load_operand(e, i);
        v = v ? LLVMBuildFMul(e->bld, v, x, "v.prod") : x;
        emit_fast(v);
    }
    return v ? v : emit_f32(e, 1.0);
}

/* ---- loop orders ---- */

typedef struct Order {
    int axis[EMIT_MAX_AXES];
    int n;
} Order;

static bool order_has(const Order *o, int a)
{
    for (int i = 0; i < o->n; i++)
        if (o->axis[i] == a)
            return true;
    return false;
}

/* Output axes (unique, in out slot order) and projected axes. */
static void split_axes(const Emit *e, Order *out_axes, Order *proj)
{
    const IrTensor *t = e->p->tensors[e->op->out];
    out_axes->n = proj->n = 0;
    for (int k = 0; k < t->rank; k++)
        if (!order_has(out_axes, e->op->out_axis[k]))
            out_axes->axis[out_axes->n++] = e->op->out_axis[k];
    for (int a = 0; a < e->op->n_axes; a++)
        if (!order_has(out_axes, a))
            proj->axis[proj->n++] = a;
}

static int64_t order_cells(const Emit *e, const Order *o)
{
    int64_t n = 1;
    for (int i = 0; i < o->n; i++)
        n *= e->op->axes[o->axis[i]].size;
    return n;
}

static void begin_all(Emit *e, const Order *o, Loop *loops)
{
    for (int i = 0; i < o->n; i++)
        loops[i] = emit_loop_begin(e, o->axis[i]);
}

/* begin_all, and the loop emit_stop_level picks (each iteration of the
 * innermost doing inner_cells cells) checks the stop flag. */
static void begin_all_stoppable(Emit *e, const Order *o, Loop *loops, int64_t inner_cells)
{
    int level = emit_stop_level(e, o->axis, o->n, inner_cells);
    for (int i = 0; i < o->n; i++) {
        loops[i] = emit_loop_begin(e, o->axis[i]);
        if (i == level)
            emit_loop_stop_check(e, &loops[i]);
    }
}

static void end_all(Emit *e, const Order *o, Loop *loops)
{
    for (int i = o->n - 1; i >= 0; i--)
        emit_loop_end(e, &loops[i]);
}

/* ---- JOIN ---- */

/* The op's coefficient, with attention's 1/sqrt(d) where asked (d: projected cells). */
static double join_coef(const Emit *e, const Order *proj)
{
    double c = e->op->coef;
    if (e->op->is_rsqrt_scaled)
        c /= sqrt((double)order_cells(e, proj));
    return c;
}

/* max and min reduce the unscaled products, then scale by coef: a negative coef
 * turns one into the other (max of -x is -min x). */
static bool reduce_takes_min(const Op *op)
{
    return (op->red == RED_MAX && op->coef < 0) || (op->red == RED_MIN && !(op->coef < 0));
}

static bool reduce_is_extremum(const Op *op)
{
    return op->red == RED_MAX || op->red == RED_MIN;
}

/* A product multiplies coef into every factor (the product of coef * x), so it
 * is exact for coef = -1; its result is not scaled again. */
static bool coef_per_factor(const Op *op)
{
    return op->red == RED_PROD;
}

LLVMValueRef emit_reduce_init(Emit *e, const Op *op)
{
    if (op->red == RED_PROD)
        return emit_f32(e, 1.0);
    if (!reduce_is_extremum(op))
        return emit_f32(e, 0.0);
    return emit_f32(e, reduce_takes_min(op) ? INFINITY : -INFINITY);
}

LLVMValueRef emit_reduce_step(Emit *e, const Op *op, LLVMValueRef acc, LLVMValueRef x)
{
    if (op->red == RED_PROD)
        return LLVMBuildFMul(e->bld, acc, x, "v.mul");
    if (!reduce_is_extremum(op))
        return LLVMBuildFAdd(e->bld, acc, x, "v.sum");
    return emit_intrinsic2(e, reduce_takes_min(op) ? "llvm.minnum" : "llvm.maxnum", acc, x);
}

static void zero_output(Emit *e, const Order *out_axes)
{
    Loop loops[EMIT_MAX_AXES];
    begin_all(e, out_axes, loops);
    emit_tensor_store(e, e->op->out, emit_f32(e, 0.0), emit_out_addr(e));
    end_all(e, out_axes, loops);
}

/* The outer out axes, the projected axes, then the out axis `last`. */
static Order in_place_order(const Order *out_axes, const Order *proj)
{
    Order all = {.n = 0};
    for (int i = 0; i + 1 < out_axes->n; i++)
        all.axis[all.n++] = out_axes->axis[i];
    for (int i = 0; i < proj->n; i++)
        all.axis[all.n++] = proj->axis[i];
    if (out_axes->n)
        all.axis[all.n++] = out_axes->axis[out_axes->n - 1];
    return all;
}

static LLVMValueRef scaled_product(Emit *e, const Order *proj)
{
    LLVMValueRef v = product(e);
    double coef = join_coef(e, proj);
    if (coef != 1.0) {
        v = LLVMBuildFMul(e->bld, v, emit_f32(e, coef), "v.scaled");
        emit_fast(v);
    }
    return v;
}

/* out += coef * prod, loops: outer out axes, projected axes, last out axis. */
static void emit_join_in_place(Emit *e, const Order *out_axes, const Order *proj)
{
    if (e->op->is_init)
        zero_output(e, out_axes);
    Order all = in_place_order(out_axes, proj);
    Loop loops[EMIT_MAX_AXES];
    begin_all_stoppable(e, &all, loops, 1);
    LLVMValueRef v = scaled_product(e, proj);
    LLVMValueRef addr = emit_out_addr(e);
    LLVMValueRef old = emit_tensor_load(e, e->op->out, e->t_f32, addr, 0, "v.old");
    LLVMValueRef sum = LLVMBuildFAdd(e->bld, old, v, "v.acc");
    emit_fast(sum);
    emit_tensor_store(e, e->op->out, sum, addr);
    end_all(e, &all, loops);
}

/* The same loop order, for a long projection: each row along the last out axis
 * sums in a row of doubles on the stack (see sums_in_double), then goes into
 * the output once. */
static void emit_join_in_row_buffer(Emit *e, const Order *out_axes, const Order *proj)
{
    int last = out_axes->axis[out_axes->n - 1];
    LLVMTypeRef t_f64 = LLVMDoubleTypeInContext(e->ctx);
    LLVMTypeRef t_row = LLVMArrayType2(t_f64, (uint64_t)e->op->axes[last].size);
    LLVMValueRef row = emit_entry_alloca_type(e, t_row, "v.rowp");
    Order outer = {.n = out_axes->n - 1}, last_only = {.n = 1, .axis = {last}};
    memcpy(outer.axis, out_axes->axis, (size_t)outer.n * sizeof outer.axis[0]);
    Loop lo[EMIT_MAX_AXES], lz[1], lp[EMIT_MAX_AXES], ll[1], lw[1];
    begin_all_stoppable(e, &outer, lo, cells_times(order_cells(e, proj), e->op->axes[last].size));

    begin_all(e, &last_only, lz);
    LLVMValueRef cell = LLVMBuildGEP2(e->bld, t_row, row, (LLVMValueRef[]){emit_i64(e, 0),
                                      e->v_counter[last]}, 2, "v.cell");
    LLVMBuildStore(e->bld, LLVMConstReal(t_f64, 0.0), cell);
    end_all(e, &last_only, lz);

    begin_all(e, proj, lp);
    begin_all(e, &last_only, ll);
    LLVMValueRef x = emit_fpcast(e, product(e), t_f64, "v.wide");
    cell = LLVMBuildGEP2(e->bld, t_row, row, (LLVMValueRef[]){emit_i64(e, 0),
                         e->v_counter[last]}, 2, "v.cell");
    LLVMValueRef sum = LLVMBuildFAdd(e->bld, LLVMBuildLoad2(e->bld, t_f64, cell, "v.old"), x,
                                     "v.acc");
    emit_fast(sum);
    LLVMBuildStore(e->bld, sum, cell);
    end_all(e, &last_only, ll);
    end_all(e, proj, lp);

    begin_all(e, &last_only, lw);
    cell = LLVMBuildGEP2(e->bld, t_row, row, (LLVMValueRef[]){emit_i64(e, 0),
                         e->v_counter[last]}, 2, "v.cell");
    LLVMValueRef v = LLVMBuildLoad2(e->bld, t_f64, cell, "v.red");
    double coef = join_coef(e, proj);
    if (coef != 1.0)
        v = LLVMBuildFMul(e->bld, v, LLVMConstReal(t_f64, coef), "v.scaled");
    emit_store_contribution(e, emit_fpcast(e, v, e->t_f32, "v.narrow"));
    end_all(e, &last_only, lw);
    end_all(e, &outer, lo);
}

void emit_store_contribution(Emit *e, LLVMValueRef v)
{
    const Op *op = e->op;
    LLVMValueRef addr = emit_out_addr(e);
    if (op->is_bool_out)
        v = LLVMBuildUIToFP(e->bld, LLVMBuildFCmp(e->bld, LLVMRealOGT, v, emit_f32(e, 0.0), "v.pos"),
                            e->t_f32, "v.bool");
    if (!op->is_init) {
        LLVMValueRef old = emit_tensor_load(e, e->op->out, e->t_f32, addr, 0, "v.old");
        v = op->is_bool_out ? emit_intrinsic2(e, "llvm.maxnum", old, v)
          : op->red == RED_PROD ? LLVMBuildFMul(e->bld, old, v, "v.mul")
          : op->red == RED_MIN ? emit_intrinsic2(e, "llvm.minnum", old, v)
                            : LLVMBuildFAdd(e->bld, old, v, "v.add");
    }
    emit_tensor_store(e, e->op->out, v, addr);
}

/* Sums (and averages) accumulate in double: a float accumulator stops counting
 * at 2^24 (the sum of 9e8 ones came out 1.6% low, even spread over vector
 * lanes), a double one is exact for any count of small integers and loses
 * about eps_f64 * n elsewhere. The accumulator is a register, so it costs no
 * memory; the reduction still vectorises (fpext, then double lanes). Products
 * too: rounded once to float at the end, not at every factor. */
static bool sums_in_double(const Op *op)
{
    return !reduce_is_extremum(op) && !op->is_bool_out;
}

/* acc = reduce over projected axes of prod; out (=|+=) coef * acc. */
static void emit_join_accumulate(Emit *e, const Order *out_axes, const Order *proj)
{
    const Op *op = e->op;
    bool wide = sums_in_double(op);
    LLVMTypeRef t_acc = wide ? LLVMDoubleTypeInContext(e->ctx) : e->t_f32;
    LLVMValueRef acc = emit_entry_alloca_type(e, t_acc, "v.accp");
    Loop outer[EMIT_MAX_AXES], inner[EMIT_MAX_AXES];
    begin_all_stoppable(e, out_axes, outer, order_cells(e, proj));
    double scale = join_coef(e, proj);
    LLVMBuildStore(e->bld, wide ? LLVMConstReal(t_acc, op->red == RED_PROD ? 1.0 : 0.0)
                                : emit_reduce_init(e, op), acc);
    begin_all(e, proj, inner);
    LLVMValueRef x = product(e);
    if (wide)
        x = emit_fpcast(e, x, t_acc, "v.wide");
    if (coef_per_factor(op) && scale != 1.0)
        x = LLVMBuildFMul(e->bld, x, LLVMConstReal(t_acc, scale), "v.factor");
    LLVMValueRef a = LLVMBuildLoad2(e->bld, t_acc, acc, "v.a");
    LLVMValueRef next = emit_reduce_step(e, op, a, x);
    emit_fast(next);
    LLVMBuildStore(e->bld, next, acc);
    end_all(e, proj, inner);
    if (coef_per_factor(op))
        scale = 1.0;
    if (op->red == RED_AVG)
        scale /= (double)order_cells(e, proj);
    LLVMValueRef v = LLVMBuildLoad2(e->bld, t_acc, acc, "v.red");
    if (scale != 1.0)
        v = LLVMBuildFMul(e->bld, v, LLVMConstReal(t_acc, scale), "v.scaled");
    if (wide)
        v = emit_fpcast(e, v, e->t_f32, "v.narrow");
    emit_store_contribution(e, v);
    end_all(e, out_axes, outer);
}

/* A sum over at most this many projected cells per output cell adds in place in
 * float: the error of so short a sum is a few float ulps. A longer one sums in
 * doubles, in a row buffer of at most EMIT_MAX_ROW_BUFFER_CELLS (32 KiB of
 * stack) or in a register. */
enum { EMIT_MAX_FLOAT_SUM_CELLS = 4096, EMIT_MAX_ROW_BUFFER_CELLS = 4096 };

/* Whether some operand reads `axis` as its contiguous (last) index, so a loop
 * with `axis` innermost vectorises on plain loads. */
static bool operand_contiguous_along(const Emit *e, int axis)
{
    for (int i = 0; i < e->op->n_in; i++) {
        const Operand *o = &e->op->in[i];
        int rank = e->p->tensors[o->tensor]->rank;
        if (rank > 0 && o->kind[rank - 1] == SL_AXIS && o->axis[rank - 1] == axis &&
            (!o->slice[rank - 1] || o->step[rank - 1] == 1))
            return true;
    }
    return false;
}

/* A sum runs with the last out axis innermost (in place, or in a row buffer when
 * long) when an operand is contiguous along it, as for a column sum; otherwise
 * (a row sum, a full reduction) each out cell reduces its projected axes
 * innermost in a register. */
static void emit_join(Emit *e)
{
    Order out_axes, proj;
    split_axes(e, &out_axes, &proj);
    const Op *op = e->op;
    if (op->red != RED_SUM || op->is_bool_out || proj.n == 0 || out_axes.n == 0 ||
        !operand_contiguous_along(e, out_axes.axis[out_axes.n - 1])) {
        emit_join_accumulate(e, &out_axes, &proj);
        return;
    }
    int last = out_axes.axis[out_axes.n - 1];
    if (order_cells(e, &proj) <= EMIT_MAX_FLOAT_SUM_CELLS)
        emit_join_in_place(e, &out_axes, &proj);
    else if (op->axes[last].size <= EMIT_MAX_ROW_BUFFER_CELLS && !e->v_tid)
        emit_join_in_row_buffer(e, &out_axes, &proj);
    else
        emit_join_accumulate(e, &out_axes, &proj);
}

/* A product over an empty projected axis is its identity, 1, in every out cell
 * (the other reductions of nothing leave their output at 0, as an op with an
 * empty loop axis emits no code). */
static void emit_empty_product(Emit *e)
{
    Order out_axes, proj;
    split_axes(e, &out_axes, &proj);
    for (int i = 0; i < out_axes.n; i++)
        if (e->op->axes[out_axes.axis[i]].size == 0)
            return;
    Loop loops[EMIT_MAX_AXES];
    begin_all(e, &out_axes, loops);
    emit_store_contribution(e, emit_f32(e, 1.0));
    end_all(e, &out_axes, loops);
}

/* ---- MAP ---- */

static LLVMValueRef cmp_to_f32(Emit *e, LLVMValueRef c)
{
    return LLVMBuildUIToFP(e->bld, c, e->t_f32, "v.mask");
}

static LLVMValueRef map_sig(Emit *e, LLVMValueRef x)
{
    LLVMValueRef t = e->op->n_in > 1 ? emit_load_operand(e, 1) : emit_f32(e, e->op->param[0]);
    LLVMValueRef hard = cmp_to_f32(e, LLVMBuildFCmp(e->bld, LLVMRealOGT, x, emit_f32(e, 0.0), "v.gt"));
    LLVMValueRef z = LLVMBuildFDiv(e->bld, LLVMBuildFNeg(e->bld, x, "v.negx"), t, "v.z");
    LLVMValueRef den = LLVMBuildFAdd(e->bld, emit_f32(e, 1.0), emit_intrinsic1(e, "llvm.exp", z), "v.den");
    LLVMValueRef soft = LLVMBuildFDiv(e->bld, emit_f32(e, 1.0), den, "v.sig");
    LLVMValueRef small = LLVMBuildFCmp(e->bld, LLVMRealOLE, emit_intrinsic1(e, "llvm.fabs", t),
                                       emit_f32(e, 1e-9), "v.cold");
    return LLVMBuildSelect(e->bld, small, hard, soft, "v.sigt");
}

static LLVMValueRef map_gelu(Emit *e, LLVMValueRef x)
{
    LLVMValueRef x3 = LLVMBuildFMul(e->bld, LLVMBuildFMul(e->bld, x, x, "v.x2"), x, "v.x3");
    LLVMValueRef in = LLVMBuildFAdd(e->bld, x, LLVMBuildFMul(e->bld, x3, emit_f32(e, 0.044715), "v.c"), "v.in");
    in = LLVMBuildFMul(e->bld, in, emit_f32(e, sqrt(2.0 / M_PI)), "v.in2");
    LLVMValueRef th = emit_fast_tanh(e, in); /* vectorises */
    LLVMValueRef one = LLVMBuildFAdd(e->bld, emit_f32(e, 1.0), th, "v.1t");
    return LLVMBuildFMul(e->bld, LLVMBuildFMul(e->bld, x, emit_f32(e, 0.5), "v.hx"), one, "v.gelu");
}

/* The two-operand functions: pow and the comparisons (0/1; false with a NaN,
 * except !=). */
static LLVMValueRef map_binary(Emit *e, LLVMValueRef x, LLVMValueRef y)
{
    LLVMRealPredicate pred;
    switch (e->op->fn) {
    case FN_POW: return emit_intrinsic2(e, "llvm.pow", x, y);
    case FN_LT: pred = LLVMRealOLT; break;
    case FN_LE: pred = LLVMRealOLE; break;
    case FN_GT: pred = LLVMRealOGT; break;
    case FN_GE: pred = LLVMRealOGE; break;
    case FN_EQ: pred = LLVMRealOEQ; break;
    case FN_NE: pred = LLVMRealUNE; break;
    default: return x;
    }
    return cmp_to_f32(e, LLVMBuildFCmp(e->bld, pred, x, y, "v.cmp"));
}

static LLVMValueRef map_value(Emit *e, LLVMValueRef x)
{
    switch (e->op->fn) {
    case FN_COPY: return x;
    case FN_STEP: return cmp_to_f32(e, LLVMBuildFCmp(e->bld, LLVMRealOGT, x, emit_f32(e, 0.0), "v.gt"));
    case FN_RELU: return emit_intrinsic2(e, "llvm.maxnum", x, emit_f32(e, 0.0));
    case FN_SIG: return map_sig(e, x);
    case FN_GELU: return map_gelu(e, x);
    case FN_EXP: return emit_intrinsic1(e, "llvm.exp", x);
    case FN_LOG: return emit_intrinsic1(e, "llvm.log", x);
    case FN_TANH: return emit_fast_tanh(e, x);
    case FN_SQRT: return emit_intrinsic1(e, "llvm.sqrt", x);
    case FN_ABS: return emit_intrinsic1(e, "llvm.fabs", x);
    case FN_SIN: return emit_intrinsic1(e, "llvm.sin", x);
    case FN_COS: return emit_intrinsic1(e, "llvm.cos", x);
    case FN_RECIP: return LLVMBuildFDiv(e->bld, emit_f32(e, 1.0), x, "v.recip");
    default: return map_binary(e, x, emit_load_operand(e, 1));
    }
}

/* Index masks: functions of the loop counters, no operands. */
static LLVMValueRef map_index_fn(Emit *e)
{
    LLVMValueRef i0 = e->v_counter[e->op->out_axis[0]];
    if (e->op->fn == FN_CAUSAL)
        return cmp_to_f32(e, LLVMBuildICmp(e->bld, LLVMIntSGE, i0,
                                           e->v_counter[e->op->out_axis[1]], "v.causal"));
    LLVMValueRef bit = LLVMBuildAnd(e->bld, i0, emit_i64(e, 1), "v.bit");
    LLVMIntPredicate pred = e->op->fn == FN_EVEN ? LLVMIntEQ : LLVMIntNE;
    return cmp_to_f32(e, LLVMBuildICmp(e->bld, pred, bit, emit_i64(e, 0), "v.parity"));
}

static void emit_map(Emit *e)
{
    Order out_axes, proj;
    split_axes(e, &out_axes, &proj);
    /* a merged out slot (one-argument concat) has a loop axis of its own too */
    for (int i = 0; i < proj.n; i++)
        out_axes.axis[out_axes.n++] = proj.axis[i];
    Loop loops[EMIT_MAX_AXES];
    begin_all_stoppable(e, &out_axes, loops, 1);
    bool is_index_fn = e->op->fn == FN_CAUSAL || e->op->fn == FN_EVEN || e->op->fn == FN_ODD;
    LLVMValueRef v = is_index_fn ? map_index_fn(e) : map_value(e, emit_load_operand(e, 0));
    emit_tensor_store(e, e->op->out, v, emit_out_addr(e));
    end_all(e, &out_axes, loops);
}

/* ---- one cell (fusion: fusion.c runs elementwise ops inside a contraction) ---- */

/* The current op (a MAP, or a sum JOIN without projected axes) at the current
 * counters: its value stored or combined into its output cell (store), or only
 * returned. */
LLVMValueRef emit_cell(Emit *e, bool store)
{
    LLVMValueRef v;
    if (e->op->kind == OP_MAP) {
        bool is_index_fn = e->op->fn == FN_CAUSAL || e->op->fn == FN_EVEN || e->op->fn == FN_ODD;
        v = is_index_fn ? map_index_fn(e) : map_value(e, emit_load_operand(e, 0));
        if (store)
            emit_tensor_store(e, e->op->out, v, emit_out_addr(e));
        return v;
    }
    v = product(e);
    if (e->op->coef != 1.0) {
        v = LLVMBuildFMul(e->bld, v, emit_f32(e, e->op->coef), "v.scaled");
        emit_fast(v);
    }
    if (store)
        emit_store_contribution(e, v);
    return v;
}

/* ---- SOFTMAX ---- */

/*
 * Three sweeps per row. An "online" two-pass softmax (a running
 * max and rescaled sum per vector lane, then exp(x - M) / S; x read twice, out
 * written once) was built and measured against these sweeps, kernel time on a
 * 2-core AVX-512 host (2 MiB L2 per core), 256Ki floats as rows of 64 / 512 /
 * 4096 / 65536: 416 / 260 / 226 / 210 us against 155 / 140 / 129 / 144 us (the
 * same exp in both), and no better for single rows of 1Mi to 16Mi floats. It
 * runs exp twice per element, and the sweeps' extra traffic hits L1 or L2; so
 * no two-pass kernel.
 */

/* One pass along the softmax axis; `pass` 0: max, 1: exp and sum, 2: scale. */
static void softmax_pass(Emit *e, int axis, int pass, LLVMValueRef m, LLVMValueRef s)
{
    Loop l = emit_loop_begin(e, axis);
    LLVMValueRef addr = emit_out_addr(e);
    if (pass == 0) {
        LLVMValueRef x = emit_load_operand(e, 0);
        LLVMValueRef cur = LLVMBuildLoad2(e->bld, e->t_f32, m, "v.m");
        /* a max reduction LLVM vectorises (it needs no-NaNs; a
         * NaN in the row makes the row NaN through the exp pass either way) */
        LLVMValueRef mx = emit_intrinsic2(e, "llvm.maxnum", cur, x);
        LLVMSetFastMathFlags(mx, LLVMFastMathAllowReassoc | LLVMFastMathNoNaNs
                                     | LLVMFastMathNoSignedZeros);
        LLVMBuildStore(e->bld, mx, m);
    } else if (pass == 1) {
        LLVMValueRef x = emit_load_operand(e, 0);
        LLVMValueRef mv = LLVMBuildLoad2(e->bld, e->t_f32, m, "v.m");
        /* inline and vectorised; x - max <= 0 (or NaN in a NaN row) */
        LLVMValueRef ex = emit_fast_exp_nonpos(e, LLVMBuildFSub(e->bld, x, mv, "v.d"));
        emit_tensor_store(e, e->op->out, ex, addr);
        LLVMValueRef sum = LLVMBuildFAdd(e->bld, LLVMBuildLoad2(e->bld, e->t_f32, s, "v.s"), ex, "v.s2");
        emit_fast(sum);
        LLVMBuildStore(e->bld, sum, s);
    } else {
        LLVMValueRef inv = LLVMBuildFDiv(e->bld, emit_f32(e, 1.0),
                                         LLVMBuildLoad2(e->bld, e->t_f32, s, "v.s"), "v.inv");
        LLVMValueRef v = emit_tensor_load(e, e->op->out, e->t_f32, addr, 0, "v.e");
        emit_tensor_store(e, e->op->out, LLVMBuildFMul(e->bld, v, inv, "v.p"), addr);
    }
    emit_loop_end(e, &l);
}

static void emit_softmax(Emit *e)
{
    int axis = e->op->out_axis[e->op->axis];
    Order rows = {.n = 0};
    const IrTensor *t = e->p->tensors[e->op->out];
    for (int k = 0; k < t->rank; k++)
        if (e->op->out_axis[k] != axis && !order_has(&rows, e->op->out_axis[k]))
            rows.axis[rows.n++] = e->op->out_axis[k];
    LLVMValueRef m = emit_entry_alloca(e, "v.maxp"), s = emit_entry_alloca(e, "v.sump");
    Loop loops[EMIT_MAX_AXES];
    begin_all_stoppable(e, &rows, loops, 3 * e->op->axes[axis].size);
    LLVMBuildStore(e->bld, emit_f32(e, -INFINITY), m);
    LLVMBuildStore(e->bld, emit_f32(e, 0.0), s);
    for (int pass = 0; pass < 3; pass++)
        softmax_pass(e, axis, pass, m, s);
    end_all(e, &rows, loops);
}

/* ---- the op function ---- */

static bool op_is_empty(const Op *op)
{
    for (int a = 0; a < op->n_axes; a++)
        if (op->axes[a].size == 0)
            return true;
    return false;
}

static void add_fn_attr(Emit *e, LLVMValueRef fn, const char *key, const char *val)
{
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(e->ctx, key, (unsigned)strlen(key), val,
                                                      (unsigned)strlen(val)));
}

/* Whether two operands of op read the same tensor (X[i] X[j]). Such an op's
 * buffers are not marked noalias at all: with them, LLVM 19 at -O2 and above
 * miscompiled an in-place join reading one tensor twice on AVX2 hosts (a term of
 * the sum lost; found by the differential fuzzer), although only the output is
 * written. */
static bool reads_a_tensor_twice(const Op *op)
{
    for (int i = 0; i < op->n_in; i++)
        for (int j = i + 1; j < op->n_in; j++)
            if (op->in[i].tensor == op->in[j].tensor)
                return true;
    return false;
}

LLVMValueRef emit_op_function(Emit *e, const Op *op, const char *name, bool is_team)
{
    LLVMTypeRef params[EMIT_MAX_AXES + 3];
    int n_params = op->n_in + 1;
    if (n_params > EMIT_MAX_AXES || op->n_axes > EMIT_MAX_AXES)
        return NULL;
    for (int i = 0; i < n_params; i++)
        params[i] = e->t_ptr;
    params[n_params] = params[n_params + 1] = e->t_i64; /* is_team: tid, nth */
    unsigned stop_at = (unsigned)n_params + 2 * is_team;
    params[stop_at] = e->t_ptr; /* the stop flag */
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, params, stop_at + 1, 0);
    e->fn = LLVMAddFunction(e->mod, name, fty);
    e->op = op;
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (int i = 0; i < n_params && !reads_a_tensor_twice(op); i++)
        LLVMAddAttributeAtIndex(e->fn, (unsigned)i + 1, LLVMCreateEnumAttribute(e->ctx, noalias, 0));
    char width[16];
    snprintf(width, sizeof width, "%d", e->opt->vector_bits);
    add_fn_attr(e, e->fn, "prefer-vector-width", width);
    e->v_out = LLVMGetParam(e->fn, 0);
    LLVMSetValueName2(e->v_out, "out", 3);
    for (int i = 0; i < op->n_in; i++)
        e->v_in[i] = LLVMGetParam(e->fn, (unsigned)i + 1);
    e->v_tid = is_team ? LLVMGetParam(e->fn, (unsigned)n_params) : NULL;
    e->v_nth = is_team ? LLVMGetParam(e->fn, (unsigned)n_params + 1) : NULL;
    e->share_axis = is_team ? op->out_axis[0] : -1; /* its outermost rows */
    e->v_stop = LLVMGetParam(e->fn, stop_at);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.entry"));
    if (!op_is_empty(op)) {
        switch (op->kind) {
        case OP_JOIN: emit_join(e); break;
        case OP_MAP: emit_map(e); break;
        case OP_SOFTMAX: emit_softmax(e); break;
        case OP_LNORM: emit_lnorm(e); break;
        case OP_MSOFTMAX: emit_masked_softmax(e); break;
        case OP_CASE: emit_case(e); break;
        case OP_ROPE: emit_rope(e); break;
        case OP_HOST: emit_host(e); break;
        default: break;
        }
    } else if (op->kind == OP_JOIN && op->red == RED_PROD) {
        emit_empty_product(e);
    }
    e->v_tid = e->v_nth = e->v_stop = NULL;
    e->share_axis = -1;
    LLVMBuildRetVoid(e->bld);
    return e->fn;
}
