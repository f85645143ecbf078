/*
 * fastmath.c: exp and tanh as straight-line LLVM IR, so the loops of softmax (and other
 * row kernels) vectorise instead of calling expf once per element (LLVM lowers
 * llvm.exp on vectors to scalar libm calls without a vector library).
 *
 * Method (Cephes expf): n = round(x log2 e); r = x - n ln2 in two parts
 * (Cody-Waite), so r is in [-ln2/2, ln2/2]; e^r by a degree-6 polynomial; times
 * 2^n built in the exponent bits. Inputs below -87.33 give 0 (expf underflows to
 * subnormals there), above 88.72 +inf; a NaN propagates through the arithmetic.
 * Products and sums may contract into multiply-adds (a fused multiply-add
 * rounds once, so no less exact). That and the shorter exp for
 * x <= 0 take 30-34% off softmax (rows of 64 to 65536 floats).
 */
#include <math.h>

#include "fastmath.h"

/* fp64 (emit_is_f64) takes none of the float approximations below: exp is
 * llvm.exp.f64 and tanh libm's tanh, both calls the JIT resolves in the process
 * (libm), accurate to double. */
static LLVMValueRef libm_call(Emit *e, const char *name, LLVMValueRef x)
{
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->ctx);
    LLVMTypeRef fty = LLVMFunctionType(d, &d, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
    if (!fn)
        fn = LLVMAddFunction(e->mod, name, fty);
    return LLVMBuildCall2(e->bld, fty, fn, &x, 1, "v.libm");
}

/* v may fuse with its operand into a multiply-add (contract only, no reassociation:
 * the Cody-Waite split and Horner order stay as written). */
static LLVMValueRef em_contract(LLVMValueRef v)
{
    if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
        LLVMSetFastMathFlags(v, LLVMFastMathAllowContract);
    return v;
}

static LLVMValueRef em_mul(Emit *e, LLVMValueRef a, LLVMValueRef b)
{
    return em_contract(LLVMBuildFMul(e->bld, a, b, "v.em"));
}

static LLVMValueRef em_add(Emit *e, LLVMValueRef a, LLVMValueRef b)
{
    return em_contract(LLVMBuildFAdd(e->bld, a, b, "v.ea"));
}

/* e^r - 1 - r for |r| <= ln2/2, as r^2 (p0 + p1 r + ... + p5 r^5) by Horner. */
static LLVMValueRef exp_poly(Emit *e, LLVMValueRef r)
{
    static const double c[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                               4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
    LLVMValueRef p = emit_f32(e, c[0]);
    for (int i = 1; i < 6; i++)
        p = em_add(e, em_mul(e, p, r), emit_f32(e, c[i]));
    return em_mul(e, p, em_mul(e, r, r));
}

/* 2^n as a float, from its exponent bits; n integral in [-126, 127]. */
static LLVMValueRef pow2_bits(Emit *e, LLVMValueRef ni, const char *name)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef b = LLVMBuildAdd(e->bld, ni, LLVMConstInt(i32, 127, 0), "v.bias");
    return LLVMBuildBitCast(e->bld, LLVMBuildShl(e->bld, b, LLVMConstInt(i32, 23, 0), "v.bits"),
                            e->t_f32, name);
}

/*
 * e^x for x clamped into [-87.33654, 88.72283]: e^r times 2^n, where n may reach
 * 128, so 2^n is split as 2^(n/2) 2^(n - n/2). With is_nonpos the clamp is to
 * [-inf, 0] (one instruction less): n <= 0, and 2^n is one exponent field; below
 * -87.33 that 2^n is meaningless (even poison, from fptosi of a huge n) but
 * exp_edges selects 0 there, and a select ignores its unchosen operand.
 */
static LLVMValueRef exp_clamped(Emit *e, LLVMValueRef x, bool is_nonpos)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef xc = is_nonpos ? x : emit_intrinsic2(e, "llvm.maxnum", x, emit_f32(e, -87.33654));
    xc = emit_intrinsic2(e, "llvm.minnum", xc, emit_f32(e, is_nonpos ? 0.0 : 88.72283));
    LLVMValueRef n = emit_intrinsic1(e, "llvm.rint", em_mul(e, xc, emit_f32(e, 1.44269504088896341)));
    LLVMValueRef r = em_add(e, xc, em_mul(e, n, emit_f32(e, -0.693359375)));
    r = em_add(e, r, em_mul(e, n, emit_f32(e, 2.12194440e-4)));
    LLVMValueRef er = em_add(e, em_add(e, exp_poly(e, r), r), emit_f32(e, 1.0));
    LLVMValueRef ni = LLVMBuildFPToSI(e->bld, n, i32, "v.n");
    if (is_nonpos)
        return em_mul(e, er, pow2_bits(e, ni, "v.p"));
    LLVMValueRef h = LLVMBuildAShr(e->bld, ni, LLVMConstInt(i32, 1, 0), "v.nh");
    LLVMValueRef h2 = LLVMBuildSub(e->bld, ni, h, "v.nh2");
    return em_mul(e, em_mul(e, er, pow2_bits(e, h, "v.p1")), pow2_bits(e, h2, "v.p2"));
}

/* 0 below -87.33 (and for -inf), x itself for a NaN. */
static LLVMValueRef exp_edges(Emit *e, LLVMValueRef x, LLVMValueRef v)
{
    LLVMValueRef under = LLVMBuildFCmp(e->bld, LLVMRealOLT, x, emit_f32(e, -87.33654), "v.under");
    v = LLVMBuildSelect(e->bld, under, emit_f32(e, 0.0), v, "v.e0");
    LLVMValueRef is_nan = LLVMBuildFCmp(e->bld, LLVMRealUNO, x, x, "v.nan");
    return LLVMBuildSelect(e->bld, is_nan, x, v, "v.exp");
}

LLVMValueRef emit_fast_exp(Emit *e, LLVMValueRef x)
{
    if (emit_is_f64(e))
        return emit_intrinsic1(e, "llvm.exp", x);
    LLVMValueRef v = exp_clamped(e, x, false);
    LLVMValueRef over = LLVMBuildFCmp(e->bld, LLVMRealOGT, x, emit_f32(e, 88.72283), "v.over");
    v = LLVMBuildSelect(e->bld, over, emit_f32(e, INFINITY), v, "v.einf");
    return exp_edges(e, x, v);
}

LLVMValueRef emit_fast_exp_nonpos(Emit *e, LLVMValueRef x)
{
    if (emit_is_f64(e))
        return emit_intrinsic1(e, "llvm.exp", x);
    return exp_edges(e, x, exp_clamped(e, x, true));
}

/*
 * tanh(x) = sign(x) (1 - 2 / (e^(2|x|) + 1)) through the inline exp; below
 * |x| = 0.05, where that form loses relative precision (1 - something near 1),
 * the series |x| - |x|^3/3 + 2|x|^5/15 (next term under 1e-9 relative). Large
 * |x| gives e^(2|x|) = inf and so 1; a NaN propagates.
 */
LLVMValueRef emit_fast_tanh(Emit *e, LLVMValueRef x)
{
    if (emit_is_f64(e))
        return libm_call(e, "tanh", x);
    LLVMValueRef a = emit_intrinsic1(e, "llvm.fabs", x), one = emit_f32(e, 1.0);
    LLVMValueRef t = emit_fast_exp(e, em_add(e, a, a));
    LLVMValueRef q = LLVMBuildFDiv(e->bld, emit_f32(e, 2.0), em_add(e, t, one), "v.tq");
    LLVMValueRef big = LLVMBuildFSub(e->bld, one, q, "v.tbig");
    LLVMValueRef a2 = em_mul(e, a, a);
    LLVMValueRef p = em_add(e, em_mul(e, a2, emit_f32(e, 2.0 / 15.0)), emit_f32(e, -1.0 / 3.0));
    LLVMValueRef small = em_add(e, a, em_mul(e, em_mul(e, p, a2), a));
    LLVMValueRef is_small = LLVMBuildFCmp(e->bld, LLVMRealOLT, a, emit_f32(e, 0.05), "v.tsmall");
    LLVMValueRef r = LLVMBuildSelect(e->bld, is_small, small, big, "v.tabs");
    return emit_intrinsic2(e, "llvm.copysign", r, x);
}
