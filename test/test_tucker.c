/*
 * test_tucker.c: the tucker_dense builtin (SPEC §5; runtime/tucker.c, an OP_HOST op
 * calling the runtime through a JIT host symbol). Results are checked against
 * values computed here: an outer product is recovered exactly at rank 1, ranks at
 * or above the sizes give step(x - threshold), and a random 3-way tensor matches a
 * reference truncated HOSVD computed in this file (double-precision SVDs, the
 * reconstruction as projections x ×_k U_k U_kᵀ written out as loops). Also: the
 * argument forms, the errors, jit_define_symbol (host functions resolve from
 * modules and from object files), and code reloaded from the disk cache by a fresh
 * context (the object must resolve the runtime function by name).
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusejit.h"
#include "harness.h"
#include "jit.h"

/* ---- helpers ---- */

static fuse_input f32_input(const char *name, int rank, const int64_t *shape, float *data)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F32, .rank = rank, .data = data}};
    for (int k = 0; k < rank; k++)
        in.tensor.shape[k] = shape[k];
    return in;
}

/* Runs `text` with X bound to x and returns a malloc'd copy of export `name`
 * (expected shape rank/shape, float32). cfg may be NULL. */
static float *run_x(fuse_ctx *ctx, const fuse_config *cfg, const char *text, int rank,
                    const int64_t *shape, float *x, const char *name)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_input in = f32_input("X", rank, shape, x);
    ck_assert_msg(fuse_program_from_text(ctx, text, "t.fuse", &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(prog, cfg, &in, 1, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_run(run, &in, 1, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, FUSE_F32);
    ck_assert_int_eq(t->rank, rank);
    size_t n = 1;
    for (int k = 0; k < rank; k++) {
        ck_assert_int_eq(t->shape[k], shape[k]);
        n *= (size_t)shape[k];
    }
    float *copy = malloc(sizeof *copy * n);
    memcpy(copy, t->data, sizeof *copy * n);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    return copy;
}

/* got[i] must be 1 where want[i] > thr and 0 elsewhere, for every i whose want is
 * not within `margin` of thr (float rounding may go either way there). Returns
 * how many entries were compared. */
static size_t expect_step(const float *got, const double *want, size_t n, double thr,
                          double margin)
{
    size_t compared = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(want[i] - thr) <= margin)
            continue;
        compared++;
        ck_assert_msg(got[i] == (want[i] > thr ? 1.0f : 0.0f),
                      "entry %zu: got %g, reference value %g, threshold %g", i, got[i],
                      want[i], thr);
    }
    return compared;
}

/* ---- exact recovery and thresholds ---- */

static const char RANK1[] = "X[i,j,k] = \"x.npy\"\n"
                            "Y[i,j,k] = tucker_dense(X[i,j,k], rank=1, threshold=0.3)\n"
                            "export Y\n";

START_TEST(rank1_outer_product_is_exact)
{
    /* x = a ⊗ b ⊗ c has multilinear rank (1,1,1): rank 1 reconstructs it. */
    const double a[3] = {1.0, -0.5, 2.0}, b[4] = {0.7, 1.3, -1.1, 0.2};
    const double c[5] = {0.9, -0.4, 1.6, 0.35, -1.2};
    int64_t shape[3] = {3, 4, 5};
    float x[60];
    double want[60];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 5; k++) {
                want[(i * 4 + j) * 5 + k] = a[i] * b[j] * c[k];
                x[(i * 4 + j) * 5 + k] = (float)(a[i] * b[j] * c[k]);
            }
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float *y = run_x(ctx, NULL, RANK1, 3, shape, x, "Y");
    ck_assert_uint_gt(expect_step(y, want, 60, 0.3, 1e-3), 55);
    free(y);
    fuse_ctx_free(ctx);
}
END_TEST

START_TEST(full_rank_is_step_of_x)
{
    /* rank >= every size: no decomposition, plain step(x - threshold); the
     * threshold is strict (x == threshold gives 0). */
    int64_t shape[2] = {2, 3};
    float x[6] = {0.5f, 0.51f, -2.0f, 3.0f, 0.49f, 0.0f};
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float *y = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nY[i,j] = tucker_dense(X[i,j], rank=7)\n"
                     "export Y\n", 2, shape, x, "Y");
    const float want_default[6] = {0, 1, 0, 1, 0, 0};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(y[i], want_default[i]);
    free(y);
    y = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nY[i,j] = tucker_dense(X[i,j], rank=[2,3], "
              "threshold=-1)\nexport Y\n", 2, shape, x, "Y");
    const float want_neg[6] = {1, 1, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(y[i], want_neg[i]);
    free(y);
    /* positional rank and threshold */
    y = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nY[i,j] = tucker_dense(X[i,j], 3, 2.5)\n"
              "export Y\n", 2, shape, x, "Y");
    const float want_pos[6] = {0, 0, 0, 1, 0, 0};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(y[i], want_pos[i]);
    free(y);
    fuse_ctx_free(ctx);
}
END_TEST

START_TEST(result_axes_follow_the_argument)
{
    /* T is X transposed, stored (j, i): the result has T's axes (j, i), and the
     * equation aligns them by name into Y[i,j]. Full rank: Y = 2 step(X - 0.5). */
    int64_t shape[2] = {2, 3};
    float x[6] = {1, 0, 1, 0, 0, 1};
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float *y = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nT[j,i] = X[i,j]\n"
                     "Y[i,j] = 2 tucker_dense(T[j,i], rank=[3,2])\nexport Y\n",
                     2, shape, x, "Y");
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(y[i], 2 * x[i]);
    free(y);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- a 3-way tensor against a reference HOSVD ---- */

/* u (n x r, row-major) = the leading r left singular vectors of the mode-`mode`
 * unfolding of the 3-way tensor x (sizes d), in double precision. */
static void ref_vectors(const double *x, const int *d, int mode, int r, double *u)
{
    int n = d[mode], cols = d[0] * d[1] * d[2] / n;
    double *a = malloc(sizeof *a * (size_t)(n * cols)), *s = malloc(sizeof *s * (size_t)n);
    double *uf = malloc(sizeof *uf * (size_t)(n * n)), *sup = malloc(sizeof *sup * (size_t)n);
    for (int i = 0; i < d[0]; i++)
        for (int j = 0; j < d[1]; j++)
            for (int k = 0; k < d[2]; k++) {
                /* column: the other two indices, in order */
                int idx[3] = {i, j, k}, o1 = mode == 0 ? 1 : 0, o2 = mode == 2 ? 1 : 2;
                int c = idx[o1] * d[o2] + idx[o2];
                a[idx[mode] * cols + c] = x[(i * d[1] + j) * d[2] + k];
            }
    ck_assert_int_le(n, cols);
    ck_assert_int_eq(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'N', n, cols, a, cols, s, uf, n,
                                    NULL, 1, sup), 0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < r; j++)
            u[i * r + j] = uf[i * n + j];
    free(a), free(s), free(uf), free(sup);
}

/* x̂ = x ×_0 P_0 ×_1 P_1 ×_2 P_2 with P_k = U_k U_kᵀ (the HOSVD reconstruction). */
static void ref_hosvd(const double *x, const int *d, const int *r, double *out)
{
    double *p[3];
    for (int m = 0; m < 3; m++) {
        double *u = malloc(sizeof *u * (size_t)(d[m] * r[m]));
        ref_vectors(x, d, m, r[m], u);
        p[m] = calloc((size_t)(d[m] * d[m]), sizeof(double));
        for (int a = 0; a < d[m]; a++)
            for (int b = 0; b < d[m]; b++)
                for (int c = 0; c < r[m]; c++)
                    p[m][a * d[m] + b] += u[a * r[m] + c] * u[b * r[m] + c];
        free(u);
    }
    for (int i = 0; i < d[0]; i++)
        for (int j = 0; j < d[1]; j++)
            for (int k = 0; k < d[2]; k++) {
                double acc = 0;
                for (int a = 0; a < d[0]; a++)
                    for (int b = 0; b < d[1]; b++)
                        for (int c = 0; c < d[2]; c++)
                            acc += p[0][i * d[0] + a] * p[1][j * d[1] + b] *
                                   p[2][k * d[2] + c] * x[(a * d[1] + b) * d[2] + c];
                out[(i * d[1] + j) * d[2] + k] = acc;
            }
    for (int m = 0; m < 3; m++)
        free(p[m]);
}

START_TEST(three_way_matches_reference_hosvd)
{
    int d[3] = {4, 5, 6}, r[3] = {2, 3, 2};
    int64_t shape[3] = {4, 5, 6};
    enum { N = 120 };
    float x[N];
    double xd[N], want[N];
    fill_random(x, N, 7, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        xd[i] = x[i];
    ref_hosvd(xd, d, r, want);
    double thr = 0.1;
    /* The decomposition must matter: it changes some entries against step(x - thr). */
    int changed = 0, ones = 0;
    for (int i = 0; i < N; i++) {
        changed += (xd[i] > thr) != (want[i] > thr);
        ones += want[i] > thr;
    }
    ck_assert_int_gt(changed, 5);
    ck_assert_int_gt(ones, 10);
    ck_assert_int_lt(ones, N - 10);
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float *y = run_x(ctx, NULL, "X[i,j,k] = \"x.npy\"\n"
                     "Y[i,j,k] = tucker_dense(X[i,j,k], rank=[2,3,2], threshold=0.1)\n"
                     "export Y\n", 3, shape, x, "Y");
    ck_assert_uint_gt(expect_step(y, want, N, thr, 1e-4), N - 5);
    free(y);
    fuse_ctx_free(ctx);
}
END_TEST

START_TEST(scalar_and_boolean_arguments)
{
    /* 0-d: step(x - threshold); a boolean tensor is read as 0/1. */
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    int64_t shape[2] = {3, 3};
    float x[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    float *y = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nC = const(0.7)\n"
                     "S = tucker_dense(C, threshold=0.6)\nT = tucker_dense(C, threshold=0.8)\n"
                     "B(i,j) = X[i,j]\n"
                     "Y[i,j] = tucker_dense(B[i,j], rank=3, threshold=0.5) + 10 S + 100 T\n"
                     "export Y\n", 2, shape, x, "Y");
    for (int i = 0; i < 9; i++) /* S = 1 (0.7 > 0.6), T = 0 */
        ck_assert_float_eq(y[i], x[i] + 10);
    free(y);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- errors ---- */

static void expect_error(fuse_ctx *ctx, const char *call, const char *needle)
{
    char text[512];
    snprintf(text, sizeof text, "X[i,j] = const([[1,2],[3,4]])\nY[i,j] = %s\nexport Y\n", call);
    fuse_program *prog = NULL;
    fuse_status st = fuse_program_from_text(ctx, text, "bad.fuse", &prog);
    ck_assert_msg(st == FUSE_E_SHAPE, "%s: status %d", call, st);
    ck_assert_ptr_null(prog);
    const char *msg = fuse_ctx_error(ctx);
    ck_assert_msg(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", call, msg, needle);
    ck_assert_msg(strstr(msg, "bad.fuse:2:") != NULL, "%s: no position in '%s'", call, msg);
}

START_TEST(errors_are_positioned)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    expect_error(ctx, "tucker_dense(X[i,j])", "needs a rank");
    expect_error(ctx, "tucker_dense(X[i,j], threshold=0.2)", "needs a rank");
    expect_error(ctx, "tucker_dense(X[i,j], rank=0)", "positive integer");
    expect_error(ctx, "tucker_dense(X[i,j], rank=1.5)", "positive integer");
    expect_error(ctx, "tucker_dense(X[i,j], rank=-2)", "positive integer");
    expect_error(ctx, "tucker_dense(X[i,j], rank=\"two\")", "positive integer");
    expect_error(ctx, "tucker_dense(X[i,j], rank=[1,2,3])", "one rank per axis");
    expect_error(ctx, "tucker_dense(X[i,j], rank=[1,0])", "positive integer");
    expect_error(ctx, "tucker_dense(X[i,j], rank=1, tol=3)", "tol");
    expect_error(ctx, "tucker_dense(X[i,j], rank=1, threshold=\"x\")", "takes a number");
    expect_error(ctx, "tucker_dense(X[i,j], 1, 0.5, 2)", "positional");
    expect_error(ctx, "tucker_dense(X[i,j], 1, rank=1)", "positional");
    expect_error(ctx, "tucker_dense(X[i,j], rank=1) + tucker_dense(X[0,0], rank=[1])",
                 "one rank per axis");
    fuse_ctx_free(ctx);
}
END_TEST

START_TEST(cli_error_exit_code)
{
    write_text("bad.fuse", "X[i] = const([1,2])\nY[i] = tucker_dense(X[i], rank=0)\n");
    Result r = run_cli("run", "bad.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "bad.fuse:2:"));
    ck_assert_ptr_nonnull(strstr(r.err, "rank"));
    result_free(&r);
}
END_TEST

/* ---- jit_define_symbol ---- */

static int host_add1(int x)
{
    return x + 1;
}

/* A module defining `int call_it(int x) { return host_add1(x) * 2; }` with
 * host_add1 only declared. */
static JitModule *caller_module(JitSession *js)
{
    JitModule *jm = jit_module_new(js, "caller");
    LLVMContextRef c = jit_module_context(jm);
    LLVMModuleRef m = jit_module_llvm(jm);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(c);
    LLVMTypeRef fty = LLVMFunctionType(i32, &i32, 1, 0);
    LLVMValueRef host = LLVMAddFunction(m, "host_add1", fty);
    LLVMValueRef fn = LLVMAddFunction(m, "call_it", fty);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    LLVMValueRef arg = LLVMGetParam(fn, 0);
    LLVMValueRef r = LLVMBuildCall2(b, fty, host, &arg, 1, "r");
    LLVMBuildRet(b, LLVMBuildMul(b, r, LLVMConstInt(i32, 2, 0), "r2"));
    LLVMDisposeBuilder(b);
    return jm;
}

static int call_it(JitCode *jc, int x)
{
    void *addr = NULL;
    char *err = NULL;
    ck_assert_msg(jit_code_lookup(jc, "call_it", &addr, &err) == FUSE_OK, "%s", err);
    int (*fn)(int);
    memcpy(&fn, &addr, sizeof fn);
    return fn(x);
}

START_TEST(host_symbols_resolve_in_modules_and_objects)
{
    JitSession *js = NULL;
    ck_assert_int_eq(jit_session_new(&js, NULL), FUSE_OK);
    char *err = NULL;
    void *addr;
    int (*f)(int) = host_add1;
    memcpy(&addr, &f, sizeof addr);
    ck_assert_int_eq(jit_define_symbol(js, "host_add1", NULL, &err), FUSE_E_ARG);
    free(err);
    ck_assert_int_eq(jit_define_symbol(js, "", addr, NULL), FUSE_E_ARG);
    ck_assert_int_eq(jit_define_symbol(js, "host_add1", addr, NULL), FUSE_OK);
    err = NULL;
    ck_assert_int_eq(jit_define_symbol(js, "host_add1", addr, &err), FUSE_E_JIT);
    ck_assert_ptr_nonnull(err);
    free(err);
    /* through the main JITDylib */
    JitModule *jm = caller_module(js);
    JitCode *jc = NULL;
    ck_assert_int_eq(jit_module_load(js, jm, &jc, NULL), FUSE_OK);
    jit_module_free(jm);
    ck_assert_int_eq(call_it(jc, 20), 42);
    jit_code_free(jc);
    /* through an object's own JITDylib (the code cache's path) */
    jm = caller_module(js);
    void *obj = NULL;
    size_t n = 0;
    ck_assert_int_eq(jit_module_optimize(js, jm, NULL), FUSE_OK);
    ck_assert_int_eq(jit_module_emit_object(js, jm, &obj, &n, NULL), FUSE_OK);
    jit_module_free(jm);
    JitCode *a = NULL, *b = NULL;
    ck_assert_int_eq(jit_object_load(js, obj, n, &a, NULL), FUSE_OK);
    ck_assert_int_eq(jit_object_load(js, obj, n, &b, NULL), FUSE_OK);
    ck_assert_int_eq(call_it(a, 4), 10);
    ck_assert_int_eq(call_it(b, -1), 0);
    jit_code_free(a);
    jit_code_free(b);
    free(obj);
    jit_session_free(js);
}
END_TEST

/* ---- the code cache ---- */

START_TEST(disk_cached_code_resolves_the_host_function)
{
    /* The first context compiles and writes the disk cache; a second context (a
     * new JIT session) loads the object from disk and must link the runtime
     * function by name. */
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/cache", scratch);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.cache_dir = dir;
    int64_t shape[2] = {3, 4};
    float x[12] = {1, 2, 3, 4, 2, 4, 6, 8, -1, -2, -3, -4}; /* rank 1: rows are multiples */
    const char *prog = "X[i,j] = \"x.npy\"\nY[i,j] = tucker_dense(X[i,j], rank=1, "
                       "threshold=2.5)\nexport Y\n";
    float *first = NULL, *second = NULL;
    for (int pass = 0; pass < 2; pass++) {
        fuse_ctx *ctx = NULL;
        ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
        float *y = run_x(ctx, &cfg, prog, 2, shape, x, "Y");
        fuse_stats st = {.size = sizeof st};
        ck_assert_int_eq(fuse_ctx_stats(ctx, &st), FUSE_OK);
        if (pass == 0) {
            ck_assert_uint_ge(st.disk_writes, 1);
            first = y;
        } else {
            ck_assert_uint_ge(st.disk_hits, 1);
            ck_assert_uint_eq(st.compiles, 0);
            second = y;
        }
        fuse_ctx_free(ctx);
    }
    for (int i = 0; i < 12; i++) {
        ck_assert_float_eq(first[i], x[i] > 2.5f ? 1.0f : 0.0f);
        ck_assert_float_eq(second[i], first[i]);
    }
    free(first);
    free(second);
}
END_TEST

START_TEST(ranks_are_part_of_the_cache_key)
{
    /* Programs differing only in the rank list share everything else: a cache key
     * without the ranks would hand the second the first one's code. */
    int64_t shape[2] = {2, 2};
    float x[4] = {1, 2, 2, 4.5f};
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float *r1 = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nY[i,j] = tucker_dense(X[i,j], "
                      "rank=[1,1], threshold=2)\nexport Y\n", 2, shape, x, "Y");
    float *r2 = run_x(ctx, NULL, "X[i,j] = \"x.npy\"\nY[i,j] = tucker_dense(X[i,j], "
                      "rank=[2,2], threshold=2)\nexport Y\n", 2, shape, x, "Y");
    const float want1[4] = {0, 1, 1, 1}, want2[4] = {0, 0, 0, 1};
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(r1[i], want1[i]);
        ck_assert_float_eq(r2[i], want2[i]);
    }
    free(r1);
    free(r2);
    fuse_ctx_free(ctx);
}
END_TEST

START_TEST(cli_runs_from_the_disk_cache)
{
    /* Two processes: the second loads the first one's object file. */
    write_text("t.fuse", "X[i,j] = const([[1, 2], [2, 4.5]])\n"
                         "Y[i,j] = tucker_dense(X[i,j], rank=1, threshold=2)\nexport Y\n");
    for (int pass = 0; pass < 2; pass++) {
        Result r = run_cli("run", "t.fuse", "--cache-dir", spath("cache"), "--time", NULL);
        expect_exit(&r, 0);
        ck_assert_ptr_nonnull(strstr(r.out, "# Y shape=(2, 2)"));
        /* the rank-1 approximation of [[1,2],[2,4.5]] is about [[0.92,2.04],[2.04,4.48]]:
         * the 2s end up above the threshold (step(x - 2) would give 0 there) */
        ck_assert_msg(strstr(r.out, "[[0. 1.]\n [1. 1.]]") != NULL, "output: %s", r.out);
        if (pass == 1)
            ck_assert_msg(strstr(r.err, "disk hit") != NULL, "stderr: %s", r.err);
        result_free(&r);
    }
}
END_TEST

static Suite *tucker_suite(void)
{
    Suite *s = suite_create("tucker");
    TCase *tc = tcase_create("tucker");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, scratch_setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rank1_outer_product_is_exact);
    tcase_add_test(tc, full_rank_is_step_of_x);
    tcase_add_test(tc, result_axes_follow_the_argument);
    tcase_add_test(tc, three_way_matches_reference_hosvd);
    tcase_add_test(tc, scalar_and_boolean_arguments);
    tcase_add_test(tc, errors_are_positioned);
    tcase_add_test(tc, cli_error_exit_code);
    tcase_add_test(tc, disk_cached_code_resolves_the_host_function);
    tcase_add_test(tc, host_symbols_resolve_in_modules_and_objects);
    tcase_add_test(tc, ranks_are_part_of_the_cache_key);
    tcase_add_test(tc, cli_runs_from_the_disk_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tucker_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
