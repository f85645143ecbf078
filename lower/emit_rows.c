/*
 * emit_rows.c: loop nests of the row-wise builtins (layer norm, masked softmax,
 * rope) and of case, after the model of emit_softmax in emit.c.
 *
 * A row-wise op loops over every out axis but the one it works along (the "rows"),
 * and runs a few passes along that axis per row, keeping running values in entry
 * block slots. All reads go through emit_load_operand, so operands may broadcast
 * (a mask lacking some axes) and no load leaves its buffer.
 */
#include <math.h>

#include "emit.h"
#include "fastmath.h"

/* ---- rows ---- */

typedef struct Rows {
    int axis[EMIT_MAX_AXES];
    Loop loop[EMIT_MAX_AXES];
    int n;
} Rows;

/* Opens loops over the distinct out axes except loop axis `skip` (-1: none); a
 * large op checks the stop flag once per block of rows. */
static void rows_begin(Emit *e, int skip, Rows *r)
{
    const IrTensor *t = e->p->tensors[e->op->out];
    r->n = 0;
    for (int k = 0; k < t->rank; k++) {
        int a = e->op->out_axis[k];
        bool seen = a == skip;
        for (int i = 0; i < r->n && !seen; i++)
            seen = r->axis[i] == a;
        if (!seen)
            r->axis[r->n++] = a;
    }
    /* each row runs a few passes along `skip` */
    int64_t per_row = skip >= 0 ? 3 * e->op->axes[skip].size : 1;
    int level = emit_stop_level(e, r->axis, r->n, per_row);
    for (int i = 0; i < r->n; i++) {
        r->loop[i] = emit_loop_begin(e, r->axis[i]);
        if (i == level)
            emit_loop_stop_check(e, &r->loop[i]);
    }
}

static void rows_end(Emit *e, Rows *r)
{
    for (int i = r->n - 1; i >= 0; i--)
        emit_loop_end(e, &r->loop[i]);
}

static LLVMValueRef load_slot(Emit *e, LLVMValueRef slot, const char *name)
{
    return LLVMBuildLoad2(e->bld, e->t_f32, slot, name);
}

/* *slot += v */
static void add_to(Emit *e, LLVMValueRef slot, LLVMValueRef v)
{
    LLVMValueRef sum = LLVMBuildFAdd(e->bld, load_slot(e, slot, "v.s"), v, "v.s2");
    emit_fast(sum);
    LLVMBuildStore(e->bld, sum, slot);
}

/* ---- layer norm ---- */

/*
 * Two passes per row. Pass 1 sums d = x - x0 and d^2, shifted by the
 * row's first element x0 so a row with a large common offset keeps the variance
 * (E[d^2] - E[d]^2 cancels little when d is small), in double accumulators
 * (reassociable, so the loop vectorises). Pass 2 writes (x - x0 - E[d]) / sqrt(var + eps).
 */

typedef struct LnormRow {
    LLVMValueRef x0;       /* f32: the row's first element */
    LLVMValueRef sum, sq;  /* f64 slots: sum of d, of d^2 */
} LnormRow;

/* x at position 0 along `axis` instead of the current counter. */
static LLVMValueRef load_first(Emit *e, int axis)
{
    LLVMValueRef saved = e->v_counter[axis];
    e->v_counter[axis] = emit_i64(e, 0);
    LLVMValueRef v = emit_load_operand(e, 0);
    e->v_counter[axis] = saved;
    return v;
}

/* *slot += v for a double slot, reassociable. */
static void add_to_f64(Emit *e, LLVMValueRef slot, LLVMValueRef v)
{
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(e->ctx);
    LLVMValueRef sum = LLVMBuildFAdd(e->bld, LLVMBuildLoad2(e->bld, f64, slot, "v.s"), v, "v.s2");
    emit_fast(sum);
    LLVMBuildStore(e->bld, sum, slot);
}

static void lnorm_sums(Emit *e, int axis, const LnormRow *row)
{
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(e->ctx);
    Loop l = emit_loop_begin(e, axis);
    LLVMValueRef x = emit_fpcast(e, emit_load_operand(e, 0), f64, "v.xd");
    LLVMValueRef d = LLVMBuildFSub(e->bld, x, emit_fpcast(e, row->x0, f64, "v.x0d"), "v.d");
    add_to_f64(e, row->sum, d);
    add_to_f64(e, row->sq, LLVMBuildFMul(e->bld, d, d, "v.d2"));
    emit_loop_end(e, &l);
}

/* (x - x0 - mean_d) inv: x - x0 is exact for nearby values, so a large offset
 * loses nothing (x - mean in float would round the mean to the offset's ulp). */
static void lnorm_write(Emit *e, int axis, LLVMValueRef x0, LLVMValueRef md, LLVMValueRef inv)
{
    Loop l = emit_loop_begin(e, axis);
    LLVMValueRef d = LLVMBuildFSub(e->bld, emit_load_operand(e, 0), x0, "v.dx");
    d = LLVMBuildFSub(e->bld, d, md, "v.dev");
    emit_tensor_store(e, e->op->out, LLVMBuildFMul(e->bld, d, inv, "v.norm"), emit_out_addr(e));
    emit_loop_end(e, &l);
}

static LLVMValueRef sqrt_f64(Emit *e, LLVMValueRef x)
{
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(e->ctx);
    unsigned id = LLVMLookupIntrinsicID("llvm.sqrt", 9);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, &f64, 1);
    return LLVMBuildCall2(e->bld, LLVMIntrinsicGetType(e->ctx, id, &f64, 1), fn, &x, 1, "v.sd");
}

/* mean - x0 and 1 / sqrt(var + eps) (as floats) from the row's sums. */
static void lnorm_stats(Emit *e, const LnormRow *row, LLVMValueRef *mean, LLVMValueRef *inv)
{
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(e->ctx);
    int axis = e->op->out_axis[e->op->axis];
    LLVMValueRef recip_n = LLVMConstReal(f64, 1.0 / (double)e->op->axes[axis].size);
    LLVMValueRef zero = LLVMConstReal(f64, 0.0);
    LLVMValueRef md = LLVMBuildFMul(e->bld, LLVMBuildLoad2(e->bld, f64, row->sum, "v.sum"),
                                    recip_n, "v.md");
    LLVMValueRef m2 = LLVMBuildFMul(e->bld, LLVMBuildLoad2(e->bld, f64, row->sq, "v.sq"),
                                    recip_n, "v.m2");
    LLVMValueRef var = LLVMBuildFSub(e->bld, m2, LLVMBuildFMul(e->bld, md, md, "v.md2"), "v.var");
    LLVMValueRef neg = LLVMBuildFCmp(e->bld, LLVMRealOLT, var, zero, "v.neg");
    var = LLVMBuildSelect(e->bld, neg, zero, var, "v.var0");
    var = LLVMBuildFAdd(e->bld, var, LLVMConstReal(f64, e->op->param[0]), "v.vareps");
    LLVMValueRef invd = LLVMBuildFDiv(e->bld, LLVMConstReal(f64, 1.0), sqrt_f64(e, var), "v.inv");
    *mean = emit_fpcast(e, md, e->t_f32, "v.mdf");
    *inv = emit_fpcast(e, invd, e->t_f32, "v.invf");
}

void emit_lnorm(Emit *e)
{
    int axis = e->op->out_axis[e->op->axis];
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(e->ctx);
    LnormRow row = {.sum = emit_entry_alloca_type(e, f64, "v.sump"),
                    .sq = emit_entry_alloca_type(e, f64, "v.sqp")};
    Rows r;
    rows_begin(e, axis, &r);
    LLVMBuildStore(e->bld, LLVMConstReal(f64, 0.0), row.sum);
    LLVMBuildStore(e->bld, LLVMConstReal(f64, 0.0), row.sq);
    row.x0 = load_first(e, axis);
    lnorm_sums(e, axis, &row);
    LLVMValueRef mean, inv;
    lnorm_stats(e, &row, &mean, &inv);
    lnorm_write(e, axis, row.x0, mean, inv);
    rows_end(e, &r);
}

/* ---- masked softmax ---- */

typedef struct MaskedCell {
    LLVMValueRef keep;   /* i1: mask nonzero */
    LLVMValueRef v;      /* the value entering the softmax */
    LLVMValueRef in_sum; /* i1: the cell enters the max and the sum */
} MaskedCell;

static MaskedCell masked_cell(Emit *e)
{
    bool has_fill = e->op->param[1] != 0;
    LLVMValueRef x = emit_load_operand(e, 0);
    MaskedCell c;
    c.keep = LLVMBuildFCmp(e->bld, LLVMRealUNE, emit_load_operand(e, 1), emit_f32(e, 0.0),
                           "v.keep");
    c.v = has_fill ? LLVMBuildSelect(e->bld, c.keep, x, emit_f32(e, e->op->param[0]), "v.fill")
                   : x;
    c.in_sum = has_fill ? LLVMConstInt(e->t_i1, 1, 0) : c.keep;
    return c;
}

/*
 * One pass along `axis`; 0: max, 1: exp and sum, 2: scale by 1 / sum (0 for an
 * empty sum). Each pass is a plain reduction or map the loop
 * vectoriser takes: cells outside the sum enter the max as -inf (a max that may
 * ignore NaN: a NaN in the sum makes the row NaN through pass 1 either way), and
 * the exp is the inline one for x - max <= 0 (cells outside the sum may give it
 * x - max > 0, and 1 back, but the selects drop their exp).
 */
static void masked_pass(Emit *e, int axis, int pass, LLVMValueRef m, LLVMValueRef s)
{
    Loop l = emit_loop_begin(e, axis);
    LLVMValueRef addr = emit_out_addr(e), zero = emit_f32(e, 0.0);
    if (pass < 2) {
        MaskedCell c = masked_cell(e);
        LLVMValueRef mv = load_slot(e, m, "v.m");
        if (pass == 0) {
            LLVMValueRef v = LLVMBuildSelect(e->bld, c.in_sum, c.v, emit_f32(e, -INFINITY), "v.in");
            LLVMValueRef nm = emit_intrinsic2(e, "llvm.maxnum", mv, v);
            LLVMSetFastMathFlags(nm, LLVMFastMathAllowReassoc | LLVMFastMathNoNaNs
                                         | LLVMFastMathNoSignedZeros);
            LLVMBuildStore(e->bld, nm, m);
        } else {
            LLVMValueRef ex = emit_fast_exp_nonpos(e, LLVMBuildFSub(e->bld, c.v, mv, "v.d"));
            add_to(e, s, LLVMBuildSelect(e->bld, c.in_sum, ex, zero, "v.term"));
            emit_tensor_store(e, e->op->out, LLVMBuildSelect(e->bld, c.keep, ex, zero, "v.kept"), addr);
        }
    } else {
        LLVMValueRef sv = load_slot(e, s, "v.s");
        LLVMValueRef inv = LLVMBuildFDiv(e->bld, emit_f32(e, 1.0), sv, "v.inv");
        LLVMValueRef q = LLVMBuildFMul(e->bld, emit_tensor_load(e, e->op->out, e->t_f32, addr, 0, "v.e"), inv,
                                       "v.p");
        LLVMValueRef pos = LLVMBuildFCmp(e->bld, LLVMRealOGT, sv, zero, "v.nonempty");
        emit_tensor_store(e, e->op->out, LLVMBuildSelect(e->bld, pos, q, zero, "v.p0"), addr);
    }
    emit_loop_end(e, &l);
}

void emit_masked_softmax(Emit *e)
{
    int axis = e->op->out_axis[e->op->axis];
    LLVMValueRef m = emit_entry_alloca(e, "v.maxp"), s = emit_entry_alloca(e, "v.sump");
    Rows r;
    rows_begin(e, axis, &r);
    LLVMBuildStore(e->bld, emit_f32(e, -INFINITY), m);
    LLVMBuildStore(e->bld, emit_f32(e, 0.0), s);
    for (int pass = 0; pass < 3; pass++)
        masked_pass(e, axis, pass, m, s);
    rows_end(e, &r);
}

/* ---- case ---- */

void emit_case(Emit *e)
{
    int n = e->op->n_in;
    Rows r;
    rows_begin(e, -1, &r);
    LLVMValueRef v = n % 2 ? emit_load_operand(e, n - 1) : emit_f32(e, 0.0);
    for (int i = n / 2 - 1; i >= 0; i--) {
        LLVMValueRef c = emit_load_operand(e, 2 * i);
        LLVMValueRef pick = LLVMBuildFCmp(e->bld, LLVMRealUNE, c, emit_f32(e, 0.0), "v.cond");
        v = LLVMBuildSelect(e->bld, pick, emit_load_operand(e, 2 * i + 1), v, "v.case");
    }
    emit_tensor_store(e, e->op->out, v, emit_out_addr(e));
    rows_end(e, &r);
}

/* ---- rope ---- */

/* x at feature position `at` instead of the current feature counter. */
static LLVMValueRef load_at_feature(Emit *e, int feat, LLVMValueRef at)
{
    LLVMValueRef saved = e->v_counter[feat];
    e->v_counter[feat] = at;
    LLVMValueRef v = emit_load_operand(e, 0);
    e->v_counter[feat] = saved;
    return v;
}

/* The rotation angle pos * base^(-2j/d) of frequency index j. */
static LLVMValueRef rope_angle(Emit *e, LLVMValueRef pos, LLVMValueRef j, int64_t d)
{
    double step = -2.0 * log(e->op->param[0]) / (double)d;
    LLVMValueRef jf = LLVMBuildSIToFP(e->bld, j, e->t_f32, "v.jf");
    LLVMValueRef freq = emit_intrinsic1(e, "llvm.exp",
                                        LLVMBuildFMul(e->bld, jf, emit_f32(e, step), "v.lf"));
    LLVMValueRef pf = LLVMBuildSIToFP(e->bld, pos, e->t_f32, "v.pf");
    return LLVMBuildFMul(e->bld, pf, freq, "v.angle");
}

void emit_rope(Emit *e)
{
    int feat = e->op->out_axis[e->op->axis];
    int64_t d = e->op->axes[feat].size, h = d / 2;
    Rows r;
    rows_begin(e, -1, &r);
    LLVMValueRef k = e->v_counter[feat], v_h = emit_i64(e, h);
    LLVMValueRef is_lo = LLVMBuildICmp(e->bld, LLVMIntSLT, k, v_h, "v.lo");
    LLVMValueRef is_tail = LLVMBuildICmp(e->bld, LLVMIntSGE, k, emit_i64(e, 2 * h), "v.tail");
    LLVMValueRef j = LLVMBuildSelect(e->bld, is_lo, k, LLVMBuildSub(e->bld, k, v_h, "v.kh"), "v.j");
    LLVMValueRef partner = LLVMBuildSelect(e->bld, is_lo, LLVMBuildAdd(e->bld, k, v_h, "v.k2"), j,
                                           "v.partner");
    partner = LLVMBuildSelect(e->bld, is_tail, k, partner, "v.partner2");
    LLVMValueRef x = emit_load_operand(e, 0), y = load_at_feature(e, feat, partner);
    LLVMValueRef ang = rope_angle(e, e->v_counter[e->op->out_axis[0]], j, d);
    LLVMValueRef c = emit_intrinsic1(e, "llvm.cos", ang), s = emit_intrinsic1(e, "llvm.sin", ang);
    LLVMValueRef sign = LLVMBuildSelect(e->bld, is_lo, emit_f32(e, -1.0), emit_f32(e, 1.0),
                                        "v.sign");
    LLVMValueRef ys = LLVMBuildFMul(e->bld, LLVMBuildFMul(e->bld, y, s, "v.ys"), sign, "v.yss");
    LLVMValueRef out = LLVMBuildFAdd(e->bld, LLVMBuildFMul(e->bld, x, c, "v.xc"), ys, "v.rope");
    emit_tensor_store(e, e->op->out, LLVMBuildSelect(e->bld, is_tail, x, out, "v.rope2"), emit_out_addr(e));
    rows_end(e, &r);
}
