/*
 * elem.c: the element types of a kernel. Tensor buffers hold one storage type
 * (LowerOptions.precision: float, double, bfloat16 or IEEE half); arithmetic runs
 * in the compute type (double under fp64, float otherwise). A value is widened on
 * load and narrowed, rounding to nearest even, on store.
 *
 * bf16 is held as i16 and converted with integer ops (the top half of a float's
 * bits), so no libcall is needed and the conversions vectorise. fp16 uses LLVM's
 * half type (fpext/fptrunc become vcvtph2ps/vcvtps2ph with F16C); with
 * soft_half (a host without F16C) it is held as i16 and converted with integer
 * ops too, in the manner of the well-known branch-free half conversions.
 *
 * A quantised weight (IrTensor.quant) is held as int8/uint8 with its scales and
 * zero points behind the data (lower_quant_bytes); a load dequantises it in
 * float32 as the load-time dequantisation does: (float)(q - z) * s, where q - z
 * is exact in float, so the results are the same bits.
 */
#include "emit.h"

size_t lower_store_bytes(const LowerOptions *opt)
{
    switch (opt ? opt->precision : FUSE_PRECISION_FP32) {
    case FUSE_PRECISION_FP64: return 8;
    case FUSE_PRECISION_BF16:
    case FUSE_PRECISION_FP16: return 2;
    default: return 4;
    }
}

size_t lower_compute_bytes(const LowerOptions *opt)
{
    return opt && opt->precision == FUSE_PRECISION_FP64 ? 8 : 4;
}

int64_t lower_quant_table_offset(int64_t count)
{
    return (count + 63) / 64 * 64;
}

int64_t lower_quant_bytes(int64_t count, int64_t dim)
{
    return lower_quant_table_offset(count) + 2 * dim * (int64_t)sizeof(float);
}

int64_t lower_quant_dim(const IrTensor *t)
{
    return t->quant && t->quant_axis >= 0 ? t->shape[t->quant_axis] : 1;
}

void elem_types_init(Emit *e)
{
    fuse_precision p = e->opt ? e->opt->precision : FUSE_PRECISION_FP32;
    e->t_f32 = p == FUSE_PRECISION_FP64 ? LLVMDoubleTypeInContext(e->ctx)
                                        : LLVMFloatTypeInContext(e->ctx);
    e->t_store = e->t_f32;
    if (p == FUSE_PRECISION_BF16 || (p == FUSE_PRECISION_FP16 && e->opt->soft_half))
        e->t_store = LLVMInt16TypeInContext(e->ctx);
    else if (p == FUSE_PRECISION_FP16)
        e->t_store = LLVMHalfTypeInContext(e->ctx);
}

bool emit_is_f64(const Emit *e)
{
    return LLVMGetTypeKind(e->t_f32) == LLVMDoubleTypeKind;
}

LLVMValueRef emit_fpcast(Emit *e, LLVMValueRef v, LLVMTypeRef ty, const char *name)
{
    LLVMTypeRef from = LLVMTypeOf(v);
    if (from == ty)
        return v;
    bool widen = LLVMGetTypeKind(ty) == LLVMDoubleTypeKind;
    return widen ? LLVMBuildFPExt(e->bld, v, ty, name) : LLVMBuildFPTrunc(e->bld, v, ty, name);
}

static fuse_precision precision_of(const Emit *e)
{
    return e->opt ? e->opt->precision : FUSE_PRECISION_FP32;
}

/* ty's scalar type replaced by `scalar` (a vector stays a vector of as many lanes) */
static LLVMTypeRef like(LLVMTypeRef ty, LLVMTypeRef scalar)
{
    return LLVMGetTypeKind(ty) == LLVMVectorTypeKind
               ? LLVMVectorType(scalar, LLVMGetVectorSize(ty))
               : scalar;
}

/* the integer constant c of v's (integer, scalar or vector) type */
static LLVMValueRef iconst(LLVMValueRef v, int64_t c)
{
    LLVMTypeRef ty = LLVMTypeOf(v);
    if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind)
        return LLVMConstInt(ty, (unsigned long long)c, 1);
    unsigned n = LLVMGetVectorSize(ty);
    LLVMValueRef lanes[64], one = LLVMConstInt(LLVMGetElementType(ty), (unsigned long long)c, 1);
    for (unsigned i = 0; i < n && i < 64; i++)
        lanes[i] = one;
    return LLVMConstVector(lanes, n);
}

/* the float constant c of v's (float, scalar or vector) type */
static LLVMValueRef fconst(LLVMValueRef v, double c)
{
    LLVMTypeRef ty = LLVMTypeOf(v);
    if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind)
        return LLVMConstReal(ty, c);
    unsigned n = LLVMGetVectorSize(ty);
    LLVMValueRef lanes[64], one = LLVMConstReal(LLVMGetElementType(ty), c);
    for (unsigned i = 0; i < n && i < 64; i++)
        lanes[i] = one;
    return LLVMConstVector(lanes, n);
}

/* bf16 bits (i16) -> float: the 16 bits are the top of the float's */
static LLVMValueRef bf16_to_float(Emit *e, LLVMValueRef h)
{
    LLVMTypeRef i32 = like(LLVMTypeOf(h), LLVMInt32TypeInContext(e->ctx));
    LLVMValueRef w = LLVMBuildZExt(e->bld, h, i32, "v.bfw");
    w = LLVMBuildShl(e->bld, w, iconst(w, 16), "v.bfs");
    return LLVMBuildBitCast(e->bld, w, like(i32, LLVMFloatTypeInContext(e->ctx)), "v.bf");
}

/* float -> bf16 bits, rounding to nearest even; a NaN stays a (quiet) NaN */
static LLVMValueRef float_to_bf16(Emit *e, LLVMValueRef f)
{
    LLVMTypeRef i32 = like(LLVMTypeOf(f), LLVMInt32TypeInContext(e->ctx));
    LLVMValueRef b = LLVMBuildBitCast(e->bld, f, i32, "v.fb");
    LLVMValueRef odd = LLVMBuildAnd(e->bld, LLVMBuildLShr(e->bld, b, iconst(b, 16), "v.fh"),
                                    iconst(b, 1), "v.odd");
    LLVMValueRef r = LLVMBuildAdd(e->bld, b, LLVMBuildAdd(e->bld, odd, iconst(b, 0x7FFF), "v.rb"),
                                  "v.rnd");
    r = LLVMBuildLShr(e->bld, r, iconst(b, 16), "v.rh");
    LLVMValueRef qnan = LLVMBuildOr(e->bld, LLVMBuildLShr(e->bld, b, iconst(b, 16), "v.nh"),
                                    iconst(b, 0x40), "v.qn");
    LLVMValueRef is_nan = LLVMBuildFCmp(e->bld, LLVMRealUNO, f, f, "v.isnan");
    r = LLVMBuildSelect(e->bld, is_nan, qnan, r, "v.bfr");
    return LLVMBuildTrunc(e->bld, r, like(i32, LLVMInt16TypeInContext(e->ctx)), "v.bf16");
}

/* IEEE half bits (i16) -> float with integer ops: exponent and mantissa moved
 * into place, then one multiply by 2^112 rebiases the exponent (and normalises
 * subnormals exactly); infinities and NaNs get the float's all-ones exponent. */
static LLVMValueRef half_bits_to_float(Emit *e, LLVMValueRef h)
{
    LLVMTypeRef i32 = like(LLVMTypeOf(h), LLVMInt32TypeInContext(e->ctx));
    LLVMTypeRef f32 = like(i32, LLVMFloatTypeInContext(e->ctx));
    LLVMValueRef w = LLVMBuildZExt(e->bld, h, i32, "v.hw");
    LLVMValueRef sign = LLVMBuildShl(e->bld, LLVMBuildAnd(e->bld, w, iconst(w, 0x8000), "v.hs"),
                                     iconst(w, 16), "v.hs32");
    LLVMValueRef em = LLVMBuildAnd(e->bld, w, iconst(w, 0x7FFF), "v.hem");
    LLVMValueRef sh = LLVMBuildShl(e->bld, em, iconst(w, 13), "v.hsh");
    LLVMValueRef scaled = LLVMBuildFMul(e->bld, LLVMBuildBitCast(e->bld, sh, f32, "v.hf"),
                                        fconst(LLVMBuildBitCast(e->bld, sh, f32, "v.hf1"),
                                               0x1p112),
                                        "v.hscaled");
    LLVMValueRef bits = LLVMBuildBitCast(e->bld, scaled, i32, "v.hb");
    LLVMValueRef special = LLVMBuildOr(e->bld, sh, iconst(w, 0x7F800000), "v.hinf");
    LLVMValueRef is_special = LLVMBuildICmp(e->bld, LLVMIntUGE, em, iconst(w, 0x7C00), "v.hsp");
    bits = LLVMBuildSelect(e->bld, is_special, special, bits, "v.hbits");
    return LLVMBuildBitCast(e->bld, LLVMBuildOr(e->bld, bits, sign, "v.hsgn"), f32, "v.h2f");
}

/* float -> IEEE half bits with integer ops, rounding to nearest even: overflow
 * to infinity (a NaN to the quiet NaN 0x7E00), results below the smallest
 * normal half by one float addition (the FPU rounds them), normals by adding
 * the rounding bias and the parity of the kept mantissa. */
static LLVMValueRef float_to_half_bits(Emit *e, LLVMValueRef f)
{
    LLVMTypeRef i32 = like(LLVMTypeOf(f), LLVMInt32TypeInContext(e->ctx));
    LLVMTypeRef f32 = LLVMTypeOf(f);
    LLVMValueRef b = LLVMBuildBitCast(e->bld, f, i32, "v.fb");
    LLVMValueRef sign = LLVMBuildAnd(e->bld, b, iconst(b, (int64_t)0x80000000u), "v.fs");
    LLVMValueRef a = LLVMBuildXor(e->bld, b, sign, "v.fa");
    /* too large: infinity, or NaN */
    LLVMValueRef big = LLVMBuildSelect(
        e->bld, LLVMBuildICmp(e->bld, LLVMIntUGT, a, iconst(a, 0x7F800000), "v.fnan"),
        iconst(a, 0x7E00), iconst(a, 0x7C00), "v.fbig");
    /* subnormal half: a + 0.5 in float leaves the rounded half bits at the bottom */
    LLVMValueRef af = LLVMBuildBitCast(e->bld, a, f32, "v.faf");
    LLVMValueRef sum = LLVMBuildFAdd(e->bld, af, fconst(af, 0.5), "v.fsub");
    LLVMValueRef small = LLVMBuildSub(e->bld, LLVMBuildBitCast(e->bld, sum, i32, "v.fsb"),
                                      iconst(a, 0x3F000000), "v.fsm");
    /* normal half: rebias, add 0xFFF plus the parity bit, keep the top bits */
    LLVMValueRef odd = LLVMBuildAnd(e->bld, LLVMBuildLShr(e->bld, a, iconst(a, 13), "v.fm"),
                                    iconst(a, 1), "v.fodd");
    LLVMValueRef n = LLVMBuildAdd(e->bld, a, iconst(a, (int64_t)((15 - 127) * (1 << 23)) + 0xFFF),
                                  "v.fnb");
    n = LLVMBuildLShr(e->bld, LLVMBuildAdd(e->bld, n, odd, "v.fnr"), iconst(a, 13), "v.fn");
    LLVMValueRef is_big = LLVMBuildICmp(e->bld, LLVMIntUGE, a, iconst(a, 0x47800000), "v.fisbig");
    LLVMValueRef is_small = LLVMBuildICmp(e->bld, LLVMIntULT, a, iconst(a, 0x38800000), "v.fissm");
    LLVMValueRef o = LLVMBuildSelect(e->bld, is_small, small, n, "v.fo1");
    o = LLVMBuildSelect(e->bld, is_big, big, o, "v.fo2");
    o = LLVMBuildOr(e->bld, o, LLVMBuildLShr(e->bld, sign, iconst(a, 16), "v.fs16"), "v.fo");
    return LLVMBuildTrunc(e->bld, o, like(i32, LLVMInt16TypeInContext(e->ctx)), "v.f2h");
}

/* The precision of tensor t's buffer: the runner's, or the one the runtime kept
 * for it (IrTensor.elem: a 16-bit source as it was bound). */
static fuse_precision store_of(const Emit *e, int t)
{
    int elem = t >= 0 && t < e->p->n_tensors ? e->p->tensors[t]->elem : 0;
    return elem ? (fuse_precision)(elem - 1) : precision_of(e);
}

/* the LLVM element type of a buffer of precision p */
static LLVMTypeRef store_type(const Emit *e, fuse_precision p)
{
    switch (p) {
    case FUSE_PRECISION_FP64: return LLVMDoubleTypeInContext(e->ctx);
    case FUSE_PRECISION_BF16: return LLVMInt16TypeInContext(e->ctx);
    case FUSE_PRECISION_FP16:
        return e->opt->soft_half ? LLVMInt16TypeInContext(e->ctx) : LLVMHalfTypeInContext(e->ctx);
    default: return LLVMFloatTypeInContext(e->ctx);
    }
}

/* float or double (scalar or vector) v as the compute type's */
static LLVMValueRef to_compute(Emit *e, LLVMValueRef v)
{
    LLVMTypeRef ty = like(LLVMTypeOf(v), e->t_f32);
    return LLVMTypeOf(v) == ty ? v : LLVMBuildFPExt(e->bld, v, ty, "v.wide");
}

/* storage (precision p) -> compute */
static LLVMValueRef widen(Emit *e, fuse_precision p, LLVMValueRef v)
{
    switch (p) {
    case FUSE_PRECISION_BF16: return to_compute(e, bf16_to_float(e, v));
    case FUSE_PRECISION_FP16:
        if (e->opt->soft_half)
            return to_compute(e, half_bits_to_float(e, v));
        return LLVMBuildFPExt(e->bld, v, like(LLVMTypeOf(v), e->t_f32), "v.h2f");
    default: return to_compute(e, v);
    }
}

/* compute -> storage (precision p), rounding to nearest even. Only buffers of
 * the runner's precision are stored to (kept sources are read-only), so a
 * 16-bit store always narrows from float. */
static LLVMValueRef narrow(Emit *e, fuse_precision p, LLVMValueRef v)
{
    switch (p) {
    case FUSE_PRECISION_BF16: return float_to_bf16(e, v);
    case FUSE_PRECISION_FP16:
        if (e->opt->soft_half)
            return float_to_half_bits(e, v);
        return LLVMBuildFPTrunc(e->bld, v, like(LLVMTypeOf(v), store_type(e, p)), "v.f2h");
    default: return v;
    }
}

/* tensor t when it is a quantised weight, else NULL */
static const IrTensor *quantised(const Emit *e, int t)
{
    const IrTensor *x = t >= 0 && t < e->p->n_tensors ? e->p->tensors[t] : NULL;
    return x && x->quant ? x : NULL;
}

bool emit_is_quantised(const Emit *e, int t)
{
    return quantised(e, t) != NULL;
}

unsigned emit_store_bytes(const Emit *e, int t)
{
    if (quantised(e, t))
        return 1;
    LowerOptions opt = {.precision = store_of(e, t)};
    return (unsigned)lower_store_bytes(&opt);
}

LLVMValueRef emit_tensor_gep(Emit *e, int t, LLVMValueRef base, LLVMValueRef off,
                             const char *name)
{
    LLVMTypeRef ty = quantised(e, t) ? LLVMInt8TypeInContext(e->ctx)
                                     : store_type(e, store_of(e, t));
    return LLVMBuildInBoundsGEP2(e->bld, ty, base, &off, 1, name);
}

/* off / inner (i64): the index of element `off`'s slice along x's
 * quantisation axis and the axes before it, inner the size of those after. */
static LLVMValueRef quant_row(Emit *e, const IrTensor *x, LLVMValueRef off)
{
    int64_t inner = 1;
    for (int k = x->quant_axis + 1; x->quant_axis >= 0 && k < x->rank; k++)
        inner *= x->shape[k];
    return inner > 1 ? LLVMBuildUDiv(e->bld, off, LLVMConstInt(e->t_i64,
                                     (unsigned long long)inner, 0), "v.qrow")
                     : off;
}

/* The position on x's quantisation axis of element `off` (i64). */
static LLVMValueRef quant_pos(Emit *e, const IrTensor *x, LLVMValueRef off)
{
    int64_t dim = lower_quant_dim(x);
    if (dim == 1)
        return LLVMConstInt(e->t_i64, 0, 0);
    return LLVMBuildURem(e->bld, quant_row(e, x, off),
                         LLVMConstInt(e->t_i64, (unsigned long long)dim, 0), "v.qpos");
}

/* &table[at] (float32) of quantised weight x at base */
static LLVMValueRef table_at(Emit *e, const IrTensor *x, LLVMValueRef base, LLVMValueRef at)
{
    int64_t count = 1;
    for (int k = 0; k < x->rank; k++)
        count *= x->shape[k];
    LLVMTypeRef i8 = LLVMInt8TypeInContext(e->ctx), f32 = LLVMFloatTypeInContext(e->ctx);
    int64_t table_off = lower_quant_table_offset(count);
    LLVMValueRef toff = LLVMConstInt(e->t_i64, (unsigned long long)table_off, 0);
    LLVMValueRef table = LLVMBuildInBoundsGEP2(e->bld, i8, base, &toff, 1, "v.qtab");
    return LLVMBuildInBoundsGEP2(e->bld, f32, table, &at, 1, "v.qt");
}

/* Element `off` (i64, from the buffer's start) of quantised weight x at base:
 * (float)(q - zero_point[pos]) * scale[pos], pos its position on the axis. */
static LLVMValueRef dequantise(Emit *e, const IrTensor *x, LLVMValueRef base, LLVMValueRef off)
{
    LLVMTypeRef f32 = LLVMFloatTypeInContext(e->ctx), i8 = LLVMInt8TypeInContext(e->ctx);
    LLVMValueRef q = LLVMBuildLoad2(e->bld, i8, LLVMBuildInBoundsGEP2(e->bld, i8, base, &off, 1,
                                                                      "v.qp"), "v.q");
    q = x->quant == IR_QUANT_I8 ? LLVMBuildSIToFP(e->bld, q, f32, "v.qf")
                                : LLVMBuildUIToFP(e->bld, q, f32, "v.qf");
    LLVMValueRef pos = quant_pos(e, x, off);
    LLVMValueRef zpos = LLVMBuildAdd(e->bld, pos, LLVMConstInt(e->t_i64,
                                     (unsigned long long)lower_quant_dim(x), 0), "v.qzpos");
    LLVMValueRef s = LLVMBuildLoad2(e->bld, f32, table_at(e, x, base, pos), "v.qs");
    LLVMValueRef z = LLVMBuildLoad2(e->bld, f32, table_at(e, x, base, zpos), "v.qz");
    /* plain fsub and fmul (no fast-math flags): the bits of the load-time path */
    LLVMValueRef v = LLVMBuildFMul(e->bld, LLVMBuildFSub(e->bld, q, z, "v.qd"), s, "v.dq");
    return to_compute(e, v);
}

/* scalar s in every one of n lanes */
static LLVMValueRef splat(Emit *e, LLVMValueRef s, unsigned n)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), n);
    LLVMValueRef v = LLVMBuildInsertElement(e->bld, LLVMGetUndef(vt), s,
                                            LLVMConstInt(e->t_i64, 0, 0), "v.qb");
    return LLVMBuildShuffleVector(e->bld, v, LLVMGetUndef(vt),
                                  LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(e->ctx), n)),
                                  "v.qsplat");
}

/* The scales (which 0) or zero points (1) of lanes pos0 .. pos0 + n - 1 of
 * element offsets off .. off + n - 1, one per lane. */
static LLVMValueRef table_lanes(Emit *e, const IrTensor *x, LLVMValueRef base, LLVMValueRef off,
                                unsigned n, int which)
{
    LLVMTypeRef f32 = LLVMFloatTypeInContext(e->ctx);
    LLVMValueRef dim = LLVMConstInt(e->t_i64, (unsigned long long)(which * lower_quant_dim(x)), 0);
    LLVMValueRef v = LLVMGetUndef(LLVMVectorType(f32, n));
    for (unsigned l = 0; l < n; l++) {
        LLVMValueRef at = LLVMBuildAdd(e->bld, off, LLVMConstInt(e->t_i64, l, 0), "v.ql");
        at = LLVMBuildAdd(e->bld, quant_pos(e, x, at), dim, "v.qlp");
        v = LLVMBuildInsertElement(e->bld, v, LLVMBuildLoad2(e->bld, f32, table_at(e, x, base, at),
                                                             "v.qlv"),
                                   LLVMConstInt(e->t_i64, l, 0), "v.qli");
    }
    return v;
}

/* The scales (which 0) or zero points (1) of n lanes from position pos0: one
 * value for all (is_same) or n consecutive ones. */
static LLVMValueRef table_block(Emit *e, const IrTensor *x, LLVMValueRef base, LLVMValueRef pos0,
                                unsigned n, int which, bool is_same)
{
    LLVMTypeRef f32 = LLVMFloatTypeInContext(e->ctx);
    LLVMValueRef at = LLVMBuildAdd(e->bld, pos0, LLVMConstInt(e->t_i64,
                                   (unsigned long long)(which * lower_quant_dim(x)), 0), "v.qa");
    LLVMValueRef p = table_at(e, x, base, at);
    if (is_same)
        return splat(e, LLVMBuildLoad2(e->bld, f32, p, "v.qone"), n);
    LLVMValueRef v = LLVMBuildLoad2(e->bld, LLVMVectorType(f32, n), p, "v.qrun");
    LLVMSetAlignment(v, 4);
    return v;
}

/* The scales (*s) and zero points (*z) of elements off .. off + n - 1 of x,
 * as vectors: one value for all when the lanes share a position, n
 * consecutive ones when they run along the innermost axis, else each lane's. */
static void lane_tables(Emit *e, const IrTensor *x, LLVMValueRef base, LLVMValueRef off,
                        unsigned n, LLVMValueRef *s, LLVMValueRef *z)
{
    LLVMTypeRef vf = LLVMVectorType(LLVMFloatTypeInContext(e->ctx), n);
    LLVMValueRef pos0 = quant_pos(e, x, off);
    if (lower_quant_dim(x) == 1) {
        *s = table_block(e, x, base, pos0, n, 0, true);
        *z = table_block(e, x, base, pos0, n, 1, true);
        return;
    }
    /* the lanes lie in one slice (so share one position), or (axis innermost)
     * run through n consecutive positions without wrapping; else each lane
     * looks its own up */
    LLVMValueRef last = LLVMBuildAdd(e->bld, off, LLVMConstInt(e->t_i64, n - 1, 0), "v.qlo");
    LLVMValueRef pos1 = quant_pos(e, x, last);
    LLVMValueRef is_same = LLVMBuildICmp(e->bld, LLVMIntEQ, quant_row(e, x, off),
                                         quant_row(e, x, last), "v.qsame");
    LLVMValueRef is_run = LLVMBuildICmp(
        e->bld, LLVMIntEQ, pos1,
        LLVMBuildAdd(e->bld, pos0, LLVMConstInt(e->t_i64, n - 1, 0), "v.qend"), "v.qisrun");
    if (x->quant_axis != x->rank - 1)
        is_run = LLVMConstInt(LLVMInt1TypeInContext(e->ctx), 0, 0);
    LLVMBasicBlockRef b_same = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.q.same");
    LLVMBasicBlockRef b_test = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.q.test");
    LLVMBasicBlockRef b_run = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.q.run");
    LLVMBasicBlockRef b_lanes = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.q.lanes");
    LLVMBasicBlockRef b_join = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.q.join");
    LLVMBuildCondBr(e->bld, is_same, b_same, b_test);
    LLVMPositionBuilderAtEnd(e->bld, b_test);
    LLVMBuildCondBr(e->bld, is_run, b_run, b_lanes);
    LLVMValueRef vs[3], vz[3];
    LLVMBasicBlockRef from[3] = {b_same, b_run, b_lanes};
    for (int c = 0; c < 3; c++) {
        LLVMPositionBuilderAtEnd(e->bld, from[c]);
        vs[c] = c < 2 ? table_block(e, x, base, pos0, n, 0, c == 0)
                      : table_lanes(e, x, base, off, n, 0);
        vz[c] = c < 2 ? table_block(e, x, base, pos0, n, 1, c == 0)
                      : table_lanes(e, x, base, off, n, 1);
        from[c] = LLVMGetInsertBlock(e->bld);
        LLVMBuildBr(e->bld, b_join);
    }
    LLVMPositionBuilderAtEnd(e->bld, b_join);
    *s = LLVMBuildPhi(e->bld, vf, "v.qs");
    *z = LLVMBuildPhi(e->bld, vf, "v.qz");
    LLVMAddIncoming(*s, vs, from, 3);
    LLVMAddIncoming(*z, vz, from, 3);
}

LLVMValueRef emit_quant_load_vector(Emit *e, int t, LLVMValueRef base, LLVMValueRef off,
                                    unsigned n)
{
    const IrTensor *x = quantised(e, t);
    LLVMTypeRef f32 = LLVMFloatTypeInContext(e->ctx), i8 = LLVMInt8TypeInContext(e->ctx);
    LLVMValueRef q = LLVMBuildLoad2(e->bld, LLVMVectorType(i8, n),
                                    LLVMBuildInBoundsGEP2(e->bld, i8, base, &off, 1, "v.qvp"),
                                    "v.qv");
    LLVMSetAlignment(q, 1);
    LLVMTypeRef vf = LLVMVectorType(f32, n);
    q = x->quant == IR_QUANT_I8 ? LLVMBuildSIToFP(e->bld, q, vf, "v.qvf")
                                : LLVMBuildUIToFP(e->bld, q, vf, "v.qvf");
    LLVMValueRef s, z;
    lane_tables(e, x, base, off, n, &s, &z);
    LLVMValueRef v = LLVMBuildFMul(e->bld, LLVMBuildFSub(e->bld, q, z, "v.qvd"), s, "v.qdq");
    return to_compute(e, v);
}

LLVMValueRef emit_tensor_load_at(Emit *e, int t, LLVMValueRef base, LLVMValueRef off,
                                 const char *name)
{
    const IrTensor *x = quantised(e, t);
    if (x)
        return dequantise(e, x, base, off);
    return emit_tensor_load(e, t, e->t_f32, emit_tensor_gep(e, t, base, off, "v.addr"), 0, name);
}

LLVMValueRef emit_tensor_load(Emit *e, int t, LLVMTypeRef ty, LLVMValueRef ptr, unsigned align,
                              const char *name)
{
    fuse_precision p = store_of(e, t);
    LLVMValueRef v = LLVMBuildLoad2(e->bld, like(ty, store_type(e, p)), ptr, name);
    if (align)
        LLVMSetAlignment(v, align);
    return widen(e, p, v);
}

LLVMValueRef emit_tensor_store(Emit *e, int t, LLVMValueRef v, LLVMValueRef ptr)
{
    return LLVMBuildStore(e->bld, narrow(e, store_of(e, t), v), ptr);
}
