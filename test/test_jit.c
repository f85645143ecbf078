/*
 * test_jit.c: Check suite for jit/ (the LLJIT session). Each test builds small
 * LLVM modules with the LLVM C API, runs them through the session (optimise,
 * print, assemble, load, look up) and calls the machine code, comparing results
 * with the same computation done in C.
 */
#include "jit.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

typedef float (*UnaryFn)(float);
typedef float (*SumFn)(const float *, int64_t);
typedef void (*ScaleFn)(const float *, float *);

enum { SCALE_N = 1024 };

/* Calls into JIT'd code go through these. UBSan's -fsanitize=function reads the
 * 8 bytes before a called function looking for a type signature; JIT'd code has
 * none, and a function at the start of a JIT allocation has unmapped memory
 * before it, so the check would fault. It is turned off for these calls only. */
__attribute__((no_sanitize("function"))) static float call_unary(void *fn, float x)
{
    return ((UnaryFn)fn)(x);
}

__attribute__((no_sanitize("function"))) static float call_sum(void *fn, const float *p,
                                                               int64_t n)
{
    return ((SumFn)fn)(p, n);
}

__attribute__((no_sanitize("function"))) static void call_scale(void *fn, const float *a,
                                                                float *out)
{
    ((ScaleFn)fn)(a, out);
}

/* ---- helpers ------------------------------------------------------------- */

static JitSession *new_session(void)
{
    JitSession *js = NULL;
    char *err = NULL;
    fuse_status st = jit_session_new(&js, &err);
    ck_assert_msg(st == FUSE_OK, "jit_session_new: %s", err ? err : "?");
    ck_assert_ptr_nonnull(js);
    ck_assert_ptr_null(err);
    return js;
}

static JitModule *new_module(JitSession *js, const char *name)
{
    JitModule *jm = jit_module_new(js, name);
    ck_assert_ptr_nonnull(jm);
    ck_assert_ptr_nonnull(jit_module_context(jm));
    ck_assert_ptr_nonnull(jit_module_llvm(jm));
    return jm;
}

/* Adds `float name(float x) { return x + k; }`. */
static void build_addk(JitModule *jm, const char *name, double k)
{
    LLVMContextRef c = jit_module_context(jm);
    LLVMTypeRef t_f32 = LLVMFloatTypeInContext(c);
    LLVMValueRef fn = LLVMAddFunction(jit_module_llvm(jm), name,
                                      LLVMFunctionType(t_f32, &t_f32, 1, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    LLVMBuildRet(b, LLVMBuildFAdd(b, LLVMGetParam(fn, 0), LLVMConstReal(t_f32, k), "v.sum"));
    LLVMDisposeBuilder(b);
}

/* Adds `float name(float x) { return callee(x); }` with callee declared only. */
static void build_call(JitModule *jm, const char *name, const char *callee)
{
    LLVMContextRef c = jit_module_context(jm);
    LLVMModuleRef m = jit_module_llvm(jm);
    LLVMTypeRef t_f32 = LLVMFloatTypeInContext(c);
    LLVMTypeRef t_fn = LLVMFunctionType(t_f32, &t_f32, 1, 0);
    LLVMValueRef v_callee = LLVMGetNamedFunction(m, callee);
    if (!v_callee)
        v_callee = LLVMAddFunction(m, callee, t_fn);
    LLVMValueRef fn = LLVMAddFunction(m, name, t_fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    LLVMValueRef arg = LLVMGetParam(fn, 0);
    LLVMBuildRet(b, LLVMBuildCall2(b, t_fn, v_callee, &arg, 1, "v.call"));
    LLVMDisposeBuilder(b);
}

/* Adds `float name(const float *p, int64_t n)`: sum of p[0..n) in order. */
static void build_sum(JitModule *jm, const char *name)
{
    LLVMContextRef c = jit_module_context(jm);
    LLVMTypeRef t_f32 = LLVMFloatTypeInContext(c), t_i64 = LLVMInt64TypeInContext(c);
    LLVMTypeRef params[2] = {LLVMPointerTypeInContext(c, 0), t_i64};
    LLVMValueRef fn = LLVMAddFunction(jit_module_llvm(jm), name,
                                      LLVMFunctionType(t_f32, params, 2, 0));
    LLVMBasicBlockRef b_entry = LLVMAppendBasicBlockInContext(c, fn, "entry");
    LLVMBasicBlockRef b_head = LLVMAppendBasicBlockInContext(c, fn, "loop.head");
    LLVMBasicBlockRef b_body = LLVMAppendBasicBlockInContext(c, fn, "loop.body");
    LLVMBasicBlockRef b_exit = LLVMAppendBasicBlockInContext(c, fn, "exit");
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, b_entry);
    LLVMBuildBr(b, b_head);
    LLVMPositionBuilderAtEnd(b, b_head);
    LLVMValueRef v_i = LLVMBuildPhi(b, t_i64, "v.i");
    LLVMValueRef v_acc = LLVMBuildPhi(b, t_f32, "v.acc");
    LLVMValueRef v_more = LLVMBuildICmp(b, LLVMIntSLT, v_i, LLVMGetParam(fn, 1), "v.more");
    LLVMBuildCondBr(b, v_more, b_body, b_exit);
    LLVMPositionBuilderAtEnd(b, b_body);
    LLVMValueRef v_p = LLVMBuildGEP2(b, t_f32, LLVMGetParam(fn, 0), &v_i, 1, "v.p");
    LLVMValueRef v_x = LLVMBuildLoad2(b, t_f32, v_p, "v.x");
    LLVMValueRef v_acc1 = LLVMBuildFAdd(b, v_acc, v_x, "v.acc1");
    LLVMValueRef v_i1 = LLVMBuildAdd(b, v_i, LLVMConstInt(t_i64, 1, 0), "v.i1");
    LLVMBuildBr(b, b_head);
    LLVMValueRef in_i[2] = {LLVMConstInt(t_i64, 0, 0), v_i1};
    LLVMValueRef in_acc[2] = {LLVMConstReal(t_f32, 0.0), v_acc1};
    LLVMBasicBlockRef from[2] = {b_entry, b_body};
    LLVMAddIncoming(v_i, in_i, from, 2);
    LLVMAddIncoming(v_acc, in_acc, from, 2);
    LLVMPositionBuilderAtEnd(b, b_exit);
    LLVMBuildRet(b, v_acc);
    LLVMDisposeBuilder(b);
}

static void add_noalias(LLVMContextRef c, LLVMValueRef fn, unsigned param)
{
    unsigned kind = LLVMGetEnumAttributeKindForName("noalias", 7);
    LLVMAddAttributeAtIndex(fn, param + 1, LLVMCreateEnumAttribute(c, kind, 0));
}

/* Adds `void name(const float *restrict a, float *restrict out)`:
 * out[i] = 3 * a[i] for i < SCALE_N, with "prefer-vector-width"="512". */
static void build_scale(JitModule *jm, const char *name)
{
    LLVMContextRef c = jit_module_context(jm);
    LLVMTypeRef t_f32 = LLVMFloatTypeInContext(c), t_i64 = LLVMInt64TypeInContext(c);
    LLVMTypeRef params[2] = {LLVMPointerTypeInContext(c, 0), LLVMPointerTypeInContext(c, 0)};
    LLVMValueRef fn = LLVMAddFunction(jit_module_llvm(jm), name,
                                      LLVMFunctionType(LLVMVoidTypeInContext(c), params, 2, 0));
    add_noalias(c, fn, 0);
    add_noalias(c, fn, 1);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(c, "prefer-vector-width", 19, "512", 3));
    LLVMBasicBlockRef b_entry = LLVMAppendBasicBlockInContext(c, fn, "entry");
    LLVMBasicBlockRef b_body = LLVMAppendBasicBlockInContext(c, fn, "loop.body");
    LLVMBasicBlockRef b_exit = LLVMAppendBasicBlockInContext(c, fn, "exit");
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, b_entry);
    LLVMBuildBr(b, b_body);
    LLVMPositionBuilderAtEnd(b, b_body);
    LLVMValueRef v_i = LLVMBuildPhi(b, t_i64, "v.i");
    LLVMValueRef v_x = LLVMBuildLoad2(
        b, t_f32, LLVMBuildGEP2(b, t_f32, LLVMGetParam(fn, 0), &v_i, 1, "v.pa"), "v.x");
    LLVMValueRef v_y = LLVMBuildFMul(b, v_x, LLVMConstReal(t_f32, 3.0), "v.y");
    LLVMBuildStore(b, v_y, LLVMBuildGEP2(b, t_f32, LLVMGetParam(fn, 1), &v_i, 1, "v.pout"));
    LLVMValueRef v_i1 = LLVMBuildAdd(b, v_i, LLVMConstInt(t_i64, 1, 0), "v.i1");
    LLVMValueRef v_more =
        LLVMBuildICmp(b, LLVMIntSLT, v_i1, LLVMConstInt(t_i64, SCALE_N, 0), "v.more");
    LLVMBuildCondBr(b, v_more, b_body, b_exit);
    LLVMValueRef in_i[2] = {LLVMConstInt(t_i64, 0, 0), v_i1};
    LLVMBasicBlockRef from[2] = {b_entry, b_body};
    LLVMAddIncoming(v_i, in_i, from, 2);
    LLVMPositionBuilderAtEnd(b, b_exit);
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
}

/* Loads jm (which is freed) and returns its code. */
static JitCode *load(JitSession *js, JitModule *jm)
{
    JitCode *jc = NULL;
    char *err = NULL;
    fuse_status st = jit_module_load(js, jm, &jc, &err);
    ck_assert_msg(st == FUSE_OK, "jit_module_load: %s", err ? err : "?");
    ck_assert_ptr_nonnull(jc);
    ck_assert_ptr_null(jit_module_llvm(jm));
    ck_assert_ptr_null(jit_module_context(jm));
    jit_module_free(jm);
    return jc;
}

static void *lookup(JitCode *jc, const char *name)
{
    void *addr = NULL;
    char *err = NULL;
    fuse_status st = jit_code_lookup(jc, name, &addr, &err);
    ck_assert_msg(st == FUSE_OK, "lookup %s: %s", name, err ? err : "?");
    ck_assert_ptr_nonnull(addr);
    return addr;
}

static void optimize(JitSession *js, JitModule *jm)
{
    char *err = NULL;
    fuse_status st = jit_module_optimize(js, jm, &err);
    ck_assert_msg(st == FUSE_OK, "jit_module_optimize: %s", err ? err : "?");
}

/* A fresh module holding one `x + k` function called name, loaded. */
static JitCode *load_addk(JitSession *js, const char *name, double k)
{
    JitModule *jm = new_module(js, name);
    build_addk(jm, name, k);
    return load(js, jm);
}

/* ---- host description ------------------------------------------------------ */

START_TEST(test_session_host)
{
    JitSession *js = new_session();
    ck_assert_str_ne(jit_target_triple(js), "");
    char *cpu = LLVMGetHostCPUName();
    ck_assert_str_eq(jit_cpu_name(js), cpu);
    LLVMDisposeMessage(cpu);
    ck_assert_ptr_nonnull(strstr(jit_cpu_features(js), "+"));
    __builtin_cpu_init();
    int expect = __builtin_cpu_supports("avx512f") ? 512
                 : __builtin_cpu_supports("avx") ? 256
                                                 : 128;
    ck_assert_int_eq(jit_vector_bits(js), expect);
    JitModule *jm = new_module(js, "probe");
    ck_assert_str_eq(LLVMGetTarget(jit_module_llvm(jm)), jit_target_triple(js));
    ck_assert_str_ne(LLVMGetDataLayoutStr(jit_module_llvm(jm)), "");
    jit_module_free(jm);
    jit_session_free(js);
}
END_TEST

START_TEST(test_session_null_arguments)
{
    char *err = NULL;
    ck_assert_int_eq(jit_session_new(NULL, &err), FUSE_E_ARG);
    ck_assert_ptr_nonnull(err);
    free(err);
    err = NULL;
    ck_assert_int_eq(jit_module_optimize(NULL, NULL, &err), FUSE_E_ARG);
    free(err);
    void *addr = &err;
    ck_assert_int_eq(jit_code_lookup(NULL, "x", &addr, NULL), FUSE_E_ARG);
    ck_assert_ptr_null(jit_module_new(NULL, "x"));
    jit_session_free(NULL);
    jit_module_free(NULL);
    jit_code_free(NULL);
}
END_TEST

/* ---- compile and run -------------------------------------------------------- */

START_TEST(test_load_add1)
{
    JitSession *js = new_session();
    JitCode *jc = load_addk(js, "add1", 1.0);
    void *add1 = lookup(jc, "add1");
    ck_assert_float_eq(call_unary(add1, 41.0f), 42.0f);
    ck_assert_float_eq(call_unary(add1, -1.5f), -0.5f);
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

START_TEST(test_load_sum_loop_optimized)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "sum");
    build_sum(jm, "sum");
    optimize(js, jm);
    JitCode *jc = load(js, jm);
    void *sum = lookup(jc, "sum");
    enum { N = 1000 };
    float data[N];
    for (int i = 0; i < N; i++)
        data[i] = (float)((i * 37) % 101) * 0.25f - 3.0f;
    for (int64_t n = 0; n <= N; n += 97) {
        float expect = 0.0f;
        for (int64_t i = 0; i < n; i++)
            expect += data[i];
        ck_assert_float_eq(call_sum(sum, data, n), expect);
    }
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

START_TEST(test_load_libm_calls)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "libm");
    build_call(jm, "my_exp", "expf");
    build_call(jm, "my_tanh", "tanhf");
    optimize(js, jm);
    JitCode *jc = load(js, jm);
    void *my_exp = lookup(jc, "my_exp");
    void *my_tanh = lookup(jc, "my_tanh");
    for (float x = -4.0f; x <= 4.0f; x += 0.375f) {
        ck_assert_float_eq_tol(call_unary(my_exp, x), expf(x), 1e-6f * expf(x));
        ck_assert_float_eq_tol(call_unary(my_tanh, x), tanhf(x), 1e-6f);
    }
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

START_TEST(test_load_two_modules)
{
    JitSession *js = new_session();
    JitCode *a = load_addk(js, "plus_one", 1.0);
    JitCode *b = load_addk(js, "plus_ten", 10.0);
    void *f = lookup(a, "plus_one");
    void *g = lookup(b, "plus_ten");
    ck_assert_float_eq(call_unary(f, 1.0f), 2.0f);
    ck_assert_float_eq(call_unary(g, 1.0f), 11.0f);
    jit_code_free(a);
    ck_assert_float_eq(call_unary(lookup(b, "plus_ten"), 5.0f), 15.0f);
    jit_code_free(b);
    jit_session_free(js);
}
END_TEST

START_TEST(test_unload_then_redefine)
{
    JitSession *js = new_session();
    JitCode *first = load_addk(js, "kernel", 1.0);
    ck_assert_float_eq(call_unary(lookup(first, "kernel"), 1.0f), 2.0f);

    /* The name is taken while the first module is loaded. */
    JitModule *dup = new_module(js, "dup");
    build_addk(dup, "kernel", 2.0);
    JitCode *jc = NULL;
    char *err = NULL;
    ck_assert_int_eq(jit_module_load(js, dup, &jc, &err), FUSE_E_JIT);
    ck_assert_ptr_null(jc);
    ck_assert_ptr_nonnull(strstr(err, "kernel"));
    free(err);
    jit_module_free(dup);

    jit_code_free(first);
    JitCode *second = load_addk(js, "kernel", 2.0);
    ck_assert_float_eq(call_unary(lookup(second, "kernel"), 1.0f), 3.0f);
    jit_code_free(second);
    jit_session_free(js);
}
END_TEST

START_TEST(test_lookup_after_unload_fails)
{
    JitSession *js = new_session();
    JitCode *keep = load_addk(js, "kept", 1.0);
    JitCode *gone = load_addk(js, "gone", 1.0);
    lookup(gone, "gone");
    jit_code_free(gone);
    void *addr = &addr;
    char *err = NULL;
    ck_assert_int_eq(jit_code_lookup(keep, "gone", &addr, &err), FUSE_E_JIT);
    ck_assert_ptr_null(addr);
    free(err);
    jit_code_free(keep);
    jit_session_free(js);
}
END_TEST

/* ---- errors ------------------------------------------------------------------ */

START_TEST(test_lookup_missing_symbol)
{
    JitSession *js = new_session();
    JitCode *jc = load_addk(js, "present", 1.0);
    void *addr = &addr;
    char *err = NULL;
    ck_assert_int_eq(jit_code_lookup(jc, "fuse_no_such_symbol", &addr, &err), FUSE_E_JIT);
    ck_assert_ptr_null(addr);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "fuse_no_such_symbol"));
    free(err);
    /* The session is still usable. */
    ck_assert_float_eq(call_unary(lookup(jc, "present"), 0.0f), 1.0f);
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

START_TEST(test_lookup_unresolved_external)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "ext");
    build_call(jm, "calls_nothing", "fuse_undefined_external");
    JitCode *jc = load(js, jm);
    void *addr = NULL;
    char *err = NULL;
    ck_assert_int_eq(jit_code_lookup(jc, "calls_nothing", &addr, &err), FUSE_E_JIT);
    ck_assert_ptr_null(addr);
    ck_assert_msg(err && strstr(err, "fuse_undefined_external"), "message: %s", err);
    free(err);
    jit_code_free(jc);
    JitCode *ok = load_addk(js, "after_failure", 1.0);
    ck_assert_float_eq(call_unary(lookup(ok, "after_failure"), 1.0f), 2.0f);
    jit_code_free(ok);
    jit_session_free(js);
}
END_TEST

START_TEST(test_optimize_broken_module)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "broken");
    LLVMContextRef c = jit_module_context(jm);
    LLVMValueRef fn = LLVMAddFunction(jit_module_llvm(jm), "no_terminator",
                                      LLVMFunctionType(LLVMVoidTypeInContext(c), NULL, 0, 0));
    LLVMAppendBasicBlockInContext(c, fn, "entry");
    char *err = NULL;
    ck_assert_int_eq(jit_module_optimize(js, jm, &err), FUSE_E_JIT);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "invalid LLVM module"));
    ck_assert_uint_gt(strlen(err), strlen("invalid LLVM module: "));
    free(err);
    char *text = NULL;
    ck_assert_int_eq(jit_module_asm(js, jm, &text, &err), FUSE_E_JIT);
    ck_assert_ptr_null(text);
    free(err);
    JitCode *jc = NULL;
    ck_assert_int_eq(jit_module_load(js, jm, &jc, &err), FUSE_E_JIT);
    ck_assert_ptr_null(jc);
    ck_assert_ptr_nonnull(jit_module_llvm(jm));
    free(err);
    jit_module_free(jm);
    jit_session_free(js);
}
END_TEST

/* ---- printing ------------------------------------------------------------------ */

START_TEST(test_module_print)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "printed");
    build_addk(jm, "printed_fn", 1.0);
    char *ir = jit_module_print(jm);
    ck_assert_ptr_nonnull(ir);
    ck_assert_ptr_nonnull(strstr(ir, "define"));
    ck_assert_ptr_nonnull(strstr(ir, "@printed_fn"));
    ck_assert_ptr_nonnull(strstr(ir, jit_target_triple(js)));
    free(ir);
    JitCode *jc = load(js, jm);
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

START_TEST(test_module_asm_keeps_module)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "asm");
    build_addk(jm, "fuse_asm_probe", 1.0);
    char *text = NULL, *err = NULL;
    ck_assert_int_eq(jit_module_asm(js, jm, &text, &err), FUSE_OK);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(strstr(text, "fuse_asm_probe:"));
    ck_assert_ptr_nonnull(strstr(text, "ret"));
    free(text);
    /* The module is still whole: it still loads and runs. */
    JitCode *jc = load(js, jm);
    ck_assert_float_eq(call_unary(lookup(jc, "fuse_asm_probe"), 2.0f), 3.0f);
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

START_TEST(test_optimize_vector_width)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "scale");
    build_scale(jm, "scale3");
    optimize(js, jm);
    char *ir = jit_module_print(jm);
    ck_assert_ptr_nonnull(ir);
    if (jit_vector_bits(js) == 512)
        ck_assert_msg(strstr(ir, "<16 x float>"), "no 512-bit vectors in:\n%s", ir);
    else if (jit_vector_bits(js) == 256)
        ck_assert_msg(strstr(ir, "<8 x float>"), "no 256-bit vectors in:\n%s", ir);
    free(ir);
    JitCode *jc = load(js, jm);
    void *scale3 = lookup(jc, "scale3");
    static float a[SCALE_N], out[SCALE_N];
    for (int i = 0; i < SCALE_N; i++)
        a[i] = (float)i - 100.5f;
    call_scale(scale3, a, out);
    for (int i = 0; i < SCALE_N; i++)
        ck_assert_float_eq(out[i], 3.0f * a[i]);
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

/* A function marked JIT_ATTR_LIGHT gets the light pipeline: its loop keeps its
 * scalar body (no vectoriser ran), while the same unmarked function is
 * vectorised; both compute the same, and no optnone is left on the light one. */
START_TEST(test_optimize_light_function)
{
    JitSession *js = new_session();
    JitModule *jm = new_module(js, "light");
    build_scale(jm, "scale_o3");
    build_scale(jm, "scale_light");
    LLVMModuleRef m = jit_module_llvm(jm);
    LLVMValueRef light = LLVMGetNamedFunction(m, "scale_light");
    LLVMAddAttributeAtIndex(light, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(jit_module_context(jm), JIT_ATTR_LIGHT,
                                                      (unsigned)strlen(JIT_ATTR_LIGHT), "", 0));
    optimize(js, jm);
    char *ir_o3 = LLVMPrintValueToString(LLVMGetNamedFunction(m, "scale_o3"));
    char *ir_light = LLVMPrintValueToString(LLVMGetNamedFunction(m, "scale_light"));
    ck_assert_msg(strstr(ir_o3, "x float>"), "scale_o3 not vectorised:\n%s", ir_o3);
    ck_assert_msg(!strstr(ir_light, "x float>"), "scale_light vectorised:\n%s", ir_light);
    unsigned optnone = LLVMGetEnumAttributeKindForName("optnone", 7);
    ck_assert_ptr_null(LLVMGetEnumAttributeAtIndex(LLVMGetNamedFunction(m, "scale_light"),
                                                   LLVMAttributeFunctionIndex, optnone));
    LLVMDisposeMessage(ir_o3);
    LLVMDisposeMessage(ir_light);
    JitCode *jc = load(js, jm);
    static float a[SCALE_N], out1[SCALE_N], out2[SCALE_N];
    for (int i = 0; i < SCALE_N; i++)
        a[i] = (float)i * 0.25f - 7.0f;
    call_scale(lookup(jc, "scale_o3"), a, out1);
    call_scale(lookup(jc, "scale_light"), a, out2);
    for (int i = 0; i < SCALE_N; i++) {
        ck_assert_float_eq(out1[i], 3.0f * a[i]);
        ck_assert_float_eq(out2[i], 3.0f * a[i]);
    }
    jit_code_free(jc);
    jit_session_free(js);
}
END_TEST

/* ---- bundles of objects ------------------------------------------------------ */

typedef struct {
    JitSession *js;
    JitModule *jm;
    void *obj;
    size_t n;
    fuse_status st;
} EmitJob;

static void *emit_job(void *arg)
{
    EmitJob *j = arg;
    j->st = jit_module_optimize(j->js, j->jm, NULL);
    if (j->st == FUSE_OK)
        j->st = jit_module_emit_object(j->js, j->jm, &j->obj, &j->n, NULL);
    return NULL;
}

/* Two modules optimised and compiled at once on two threads (each takes a
 * target machine of the session's pool), bundled, loaded as one object: both
 * functions are found through the one JitCode, and the bundle loads twice. */
START_TEST(test_bundle_two_threads)
{
    JitSession *js = new_session();
    EmitJob jobs[2] = {{js, new_module(js, "b0"), NULL, 0, FUSE_E_JIT},
                       {js, new_module(js, "b1"), NULL, 0, FUSE_E_JIT}};
    build_addk(jobs[0].jm, "plus2", 2.0);
    build_sum(jobs[1].jm, "sum");
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, emit_job, &jobs[1]), 0);
    emit_job(&jobs[0]);
    pthread_join(t, NULL);
    ck_assert_int_eq(jobs[0].st, FUSE_OK);
    ck_assert_int_eq(jobs[1].st, FUSE_OK);
    void *objs[2] = {jobs[0].obj, jobs[1].obj};
    size_t ns[2] = {jobs[0].n, jobs[1].n};
    void *bundle = NULL;
    size_t n = 0;
    char *err = NULL;
    ck_assert_int_eq(jit_objects_bundle(objs, ns, 2, &bundle, &n, &err), FUSE_OK);
    ck_assert_uint_eq(n, 16 + 2 * 8 + ns[0] + ns[1]);
    JitCode *codes[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(jit_object_load(js, bundle, n, &codes[i], &err), FUSE_OK);
        ck_assert_float_eq(call_unary(lookup(codes[i], "plus2"), 1.5f), 3.5f);
        float p[5] = {1.0f, 2.0f, 3.0f, 4.0f, 5.5f};
        ck_assert_float_eq(call_sum(lookup(codes[i], "sum"), p, 5), 15.5f);
    }
    for (int i = 0; i < 2; i++) {
        jit_code_free(codes[i]);
        jit_module_free(jobs[i].jm);
        free(jobs[i].obj);
    }
    free(bundle);
    jit_session_free(js);
}
END_TEST

/* Malformed bundles are FUSE_E_JIT, never a crash; bad arguments FUSE_E_ARG. */
START_TEST(test_bundle_malformed)
{
    JitSession *js = new_session();
    unsigned char obj[4] = {1, 2, 3, 4};
    void *objs[1] = {obj};
    size_t ns[1] = {sizeof obj};
    void *bundle = NULL;
    size_t n = 0;
    char *err = NULL;
    ck_assert_int_eq(jit_objects_bundle(objs, ns, 0, &bundle, &n, &err), FUSE_E_ARG);
    free(err);
    ck_assert_int_eq(jit_objects_bundle(objs, ns, 1, &bundle, &n, &err), FUSE_OK);
    ck_assert_uint_eq(n, 16 + 8 + sizeof obj);
    unsigned char *b = bundle;
    JitCode *jc = NULL;
    /* cut short: the header promises more than there is */
    for (size_t cut = 8; cut < n; cut++) {
        ck_assert_int_eq(jit_object_load(js, b, cut, &jc, &err), FUSE_E_JIT);
        ck_assert_ptr_null(jc);
        ck_assert_ptr_nonnull(err);
        free(err);
        err = NULL;
    }
    /* a count of zero, and a length past the end */
    b[8] = 0;
    ck_assert_int_eq(jit_object_load(js, b, n, &jc, &err), FUSE_E_JIT);
    free(err);
    b[8] = 1;
    b[16] = 200;
    ck_assert_int_eq(jit_object_load(js, b, n, &jc, &err), FUSE_E_JIT);
    free(err);
    free(bundle);
    jit_session_free(js);
}
END_TEST

/* ---- several sessions and threads -------------------------------------------- */

START_TEST(test_two_sessions)
{
    JitSession *s1 = new_session();
    JitSession *s2 = new_session();
    /* The same name in two sessions names two independent functions. */
    JitCode *c1 = load_addk(s1, "f", 1.0);
    JitCode *c2 = load_addk(s2, "f", 100.0);
    void *f1 = lookup(c1, "f");
    void *f2 = lookup(c2, "f");
    ck_assert_ptr_ne(f1, f2);
    ck_assert_float_eq(call_unary(f1, 1.0f), 2.0f);
    ck_assert_float_eq(call_unary(f2, 1.0f), 101.0f);
    jit_code_free(c1);
    jit_session_free(s1);
    ck_assert_float_eq(call_unary(f2, 2.0f), 102.0f);
    jit_code_free(c2);
    jit_session_free(s2);
}
END_TEST

typedef struct {
    JitSession *js;
    int id;
    int ok;
} ThreadJob;

/* One thread's work: build, optimise, load, look up, run, unload. */
static void *thread_job(void *arg)
{
    ThreadJob *job = arg;
    char name[32];
    snprintf(name, sizeof name, "add_t%d", job->id);
    JitModule *jm = jit_module_new(job->js, name);
    if (!jm)
        return NULL;
    build_addk(jm, name, (double)job->id);
    JitCode *jc = NULL;
    void *addr = NULL;
    if (jit_module_optimize(job->js, jm, NULL) == FUSE_OK &&
        jit_module_load(job->js, jm, &jc, NULL) == FUSE_OK &&
        jit_code_lookup(jc, name, &addr, NULL) == FUSE_OK)
        job->ok = call_unary(addr, 0.5f) == 0.5f + (float)job->id;
    jit_code_free(jc);
    jit_module_free(jm);
    return NULL;
}

START_TEST(test_threads_share_session)
{
    enum { N = 4 };
    JitSession *js = new_session();
    pthread_t threads[N];
    ThreadJob jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (ThreadJob){js, i + 1, 0};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, thread_job, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_msg(jobs[i].ok, "thread %d failed", i);
    }
    jit_session_free(js);
}
END_TEST

static Suite *jit_suite(void)
{
    Suite *s = suite_create("jit");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_session_host);
    tcase_add_test(tc, test_session_null_arguments);
    tcase_add_test(tc, test_load_add1);
    tcase_add_test(tc, test_load_sum_loop_optimized);
    tcase_add_test(tc, test_load_libm_calls);
    tcase_add_test(tc, test_load_two_modules);
    tcase_add_test(tc, test_unload_then_redefine);
    tcase_add_test(tc, test_lookup_after_unload_fails);
    tcase_add_test(tc, test_lookup_missing_symbol);
    tcase_add_test(tc, test_lookup_unresolved_external);
    tcase_add_test(tc, test_optimize_broken_module);
    tcase_add_test(tc, test_module_print);
    tcase_add_test(tc, test_module_asm_keeps_module);
    tcase_add_test(tc, test_optimize_vector_width);
    tcase_add_test(tc, test_optimize_light_function);
    tcase_add_test(tc, test_bundle_two_threads);
    tcase_add_test(tc, test_bundle_malformed);
    tcase_add_test(tc, test_two_sessions);
    tcase_add_test(tc, test_threads_share_session);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
