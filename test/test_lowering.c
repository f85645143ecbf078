/*
 * test_lowering.c: programs compiled through LLVM and run, checked against naive C
 * loops written here. Each test feeds host inputs through the public API.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"

static fuse_ctx *ctx;

static void setup(void) { ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK); }
static void teardown(void) { fuse_ctx_free(ctx); }

/* Deterministic pseudo-random values in [-1, 1). */
static void fill(float *x, int64_t n, unsigned seed)
{
    unsigned s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

static fuse_input input2(const char *name, float *data, int64_t a, int64_t b)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F32, .rank = 2, .data = data}};
    in.tensor.shape[0] = a;
    in.tensor.shape[1] = b;
    return in;
}

static fuse_input input1(const char *name, float *data, int64_t a)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F32, .rank = 1, .data = data}};
    in.tensor.shape[0] = a;
    return in;
}

/* Compiles and runs text once; returns the outputs (caller frees). */
static fuse_outputs *run(const char *text, const fuse_input *in, size_t n)
{
    fuse_program *prog = NULL;
    fuse_runner *r = NULL;
    fuse_outputs *out = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.write_sinks = 0;
    fuse_status st = fuse_program_from_text(ctx, text, "t.fuse", &prog);
    if (st == FUSE_OK)
        st = fuse_runner_new(prog, &cfg, in, n, &r);
    if (st == FUSE_OK)
        st = fuse_runner_run(r, in, n, &out);
    if (st != FUSE_OK)
        fprintf(stderr, "%s\n", fuse_ctx_error(ctx));
    ck_assert_int_eq(st, FUSE_OK);
    fuse_runner_free(r);
    fuse_program_free(prog);
    return out;
}

static const float *get(fuse_outputs *o, const char *name, int rank, const int64_t *shape)
{
    const fuse_tensor *t = fuse_outputs_find(o, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, FUSE_F32);
    ck_assert_int_eq(t->rank, rank);
    for (int k = 0; k < rank; k++)
        ck_assert_int_eq(t->shape[k], shape[k]);
    return t->data;
}

static void assert_close(const float *got, const double *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-4 + 1e-4 * fabs(want[i]);
        if (fabs(got[i] - want[i]) > tol)
            ck_abort_msg("element %lld: got %.7g, want %.7g", (long long)i, got[i], want[i]);
    }
}

START_TEST(test_matmul_odd_sizes)
{
    enum { M = 37, K = 53, N = 29 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    double *want = calloc(M * N, sizeof *want);
    fill(a, M * K, 1);
    fill(b, K * N, 2);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            for (int k = 0; k < K; k++)
                want[i * N + j] += (double)a[i * K + k] * b[k * N + j];
    fuse_input in[2] = {input2("A", a, M, K), input2("B", b, K, N)};
    fuse_outputs *o = run("A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\n"
                          "C[i,j] = A[i,k] B[k,j]\nexport C\n", in, 2);
    assert_close(get(o, "C", 2, (int64_t[]){M, N}), want, M * N);
    fuse_outputs_free(o);
    free(a), free(b), free(want);
}
END_TEST

START_TEST(test_transpose_diagonal_rowsum)
{
    float x[12];
    fill(x, 12, 3);
    float sq[9];
    fill(sq, 9, 4);
    fuse_input in[2] = {input2("X", x, 3, 4), input2("S", sq, 3, 3)};
    fuse_outputs *o = run("X[i,j] = \"x.npy\"\nS[i,j] = \"s.npy\"\n"
                          "T[j,i] = X[i,j]\nD[i] = S[i,i]\nR[i] = X[i,j]\n"
                          "export T\nexport D\nexport R\n", in, 2);
    double t[12], d[3], r[3] = {0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            t[j * 3 + i] = x[i * 4 + j];
            r[i] += x[i * 4 + j];
        }
    for (int i = 0; i < 3; i++)
        d[i] = sq[i * 3 + i];
    assert_close(get(o, "T", 2, (int64_t[]){4, 3}), t, 12);
    assert_close(get(o, "D", 1, (int64_t[]){3}), d, 3);
    assert_close(get(o, "R", 1, (int64_t[]){3}), r, 3);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_softmax_rows_and_named_axis)
{
    float x[15];
    fill(x, 15, 5);
    fuse_input in[1] = {input2("X", x, 3, 5)};
    fuse_outputs *o = run("X[i,j] = \"x.npy\"\nS[i,j.] = softmax(X[i,j])\n"
                          "C[i.,j] = softmax(X[i,j])\nA[i,j] = softmax(X[i,j], axis=i)\n"
                          "export S\nexport C\nexport A\n", in, 1);
    double rows[15], cols[15];
    for (int i = 0; i < 3; i++) {
        double m = -INFINITY, s = 0;
        for (int j = 0; j < 5; j++)
            m = fmax(m, x[i * 5 + j]);
        for (int j = 0; j < 5; j++)
            s += exp(x[i * 5 + j] - m);
        for (int j = 0; j < 5; j++)
            rows[i * 5 + j] = exp(x[i * 5 + j] - m) / s;
    }
    for (int j = 0; j < 5; j++) {
        double s = 0;
        for (int i = 0; i < 3; i++)
            s += exp(x[i * 5 + j]);
        for (int i = 0; i < 3; i++)
            cols[i * 5 + j] = exp(x[i * 5 + j]) / s;
    }
    assert_close(get(o, "S", 2, (int64_t[]){3, 5}), rows, 15);
    assert_close(get(o, "C", 2, (int64_t[]){3, 5}), cols, 15);
    assert_close(get(o, "A", 2, (int64_t[]){3, 5}), cols, 15);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_max_and_avg_projections)
{
    float x[4 * 6];
    fill(x, 24, 6);
    fuse_input in[1] = {input2("X", x, 4, 6)};
    fuse_outputs *o = run("X[i,j] = \"x.npy\"\nM[i] max= X[i,j]\nA[j] avg= X[i,j]\n"
                          "export M\nexport A\n", in, 1);
    double m[4], a[6] = {0};
    for (int i = 0; i < 4; i++) {
        m[i] = -INFINITY;
        for (int j = 0; j < 6; j++) {
            m[i] = fmax(m[i], x[i * 6 + j]);
            a[j] += x[i * 6 + j] / 4.0;
        }
    }
    assert_close(get(o, "M", 1, (int64_t[]){4}), m, 4);
    assert_close(get(o, "A", 1, (int64_t[]){6}), a, 6);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_broadcast_bias_groups_and_literals)
{
    float x[6], b[3];
    fill(x, 6, 7);
    fill(b, 3, 8);
    fuse_input in[2] = {input2("X", x, 2, 3), input1("B", b, 3)};
    fuse_outputs *o = run("X[i,j] = \"x.npy\"\nB[j] = \"b.npy\"\n"
                          "Y[i,j] = X[i,j] + B[j]\n"
                          "Z[i,j] = 0.5 X[i,j]\nZ[i,j] += 2\nZ[i,j] = X[i,j] + X[i,j]\n"
                          "N[i,j] = (1 - X[i,j]) B[j] - -X[i,j] -1\n"
                          "export Y\nexport Z\nexport N\n", in, 2);
    double y[6], z[6], n[6];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            double v = x[i * 3 + j];
            y[i * 3 + j] = v + b[j];
            z[i * 3 + j] = 0.5 * v + 2 + 2 * v;
            n[i * 3 + j] = (1 - v) * b[j] + v - 1;
        }
    assert_close(get(o, "Y", 2, (int64_t[]){2, 3}), y, 6);
    assert_close(get(o, "Z", 2, (int64_t[]){2, 3}), z, 6);
    assert_close(get(o, "N", 2, (int64_t[]){2, 3}), n, 6);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_three_factor_join_and_scalar)
{
    float a[12], w[4], b[15];
    fill(a, 12, 9);
    fill(w, 4, 10);
    fill(b, 15, 11);
    fuse_input in[3] = {input2("A", a, 3, 4), input1("W", w, 4), input2("B", b, 3, 5)};
    fuse_outputs *o = run("A[i,k] = \"a.npy\"\nW[k] = \"w.npy\"\nB[i,j] = \"b.npy\"\n"
                          "Y[j] = A[i,k] W[k] B[i,j]\nS = A[i,k] W[k]\nexport Y\nexport S\n",
                          in, 3);
    double y[5] = {0}, s[1] = {0};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) {
            s[0] += (double)a[i * 4 + k] * w[k];
            for (int j = 0; j < 5; j++)
                y[j] += (double)a[i * 4 + k] * w[k] * b[i * 5 + j];
        }
    assert_close(get(o, "Y", 1, (int64_t[]){5}), y, 5);
    assert_close(get(o, "S", 0, NULL), s, 1);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_elementwise_builtins)
{
    float x[8];
    fill(x, 8, 12);
    x[0] = 0.0f;
    fuse_input in[1] = {input1("X", x, 8)};
    fuse_outputs *o = run("X[i] = \"x.npy\"\n"
                          "R[i] = relu(X[i])\nS[i] = step(X[i])\nE[i] = exp(X[i])\n"
                          "L[i] = log(abs(X[i]) + 1)\nT[i] = tanh(X[i])\nQ[i] = sqrt(abs(X[i]))\n"
                          "N[i] = sin(X[i]) + cos(X[i])\nG[i] = gelu(X[i])\n"
                          "H[i] = sig(X[i], 0.5)\nK[i] = sig(X[i])\n"
                          "export R\nexport S\nexport E\nexport L\nexport T\nexport Q\n"
                          "export N\nexport G\nexport H\nexport K\n", in, 1);
    double r[8], s[8], e[8], l[8], t[8], q[8], n[8], g[8], h[8], k[8];
    for (int i = 0; i < 8; i++) {
        double v = x[i];
        r[i] = v > 0 ? v : 0;
        s[i] = k[i] = v > 0;
        e[i] = exp(v);
        l[i] = log(fabs(v) + 1);
        t[i] = tanh(v);
        q[i] = sqrt(fabs(v));
        n[i] = sin(v) + cos(v);
        g[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        h[i] = 1 / (1 + exp(-v / 0.5));
    }
    int64_t shape[1] = {8};
    assert_close(get(o, "R", 1, shape), r, 8);
    assert_close(get(o, "S", 1, shape), s, 8);
    assert_close(get(o, "E", 1, shape), e, 8);
    assert_close(get(o, "L", 1, shape), l, 8);
    assert_close(get(o, "T", 1, shape), t, 8);
    assert_close(get(o, "Q", 1, shape), q, 8);
    assert_close(get(o, "N", 1, shape), n, 8);
    assert_close(get(o, "G", 1, shape), g, 8);
    assert_close(get(o, "H", 1, shape), h, 8);
    assert_close(get(o, "K", 1, shape), k, 8);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_index_forms_and_masks)
{
    float x[8];
    fill(x, 8, 13);
    fuse_input in[1] = {input2("X", x, 2, 4)};
    fuse_outputs *o = run("X[t,d] = \"x.npy\"\n"
                          "F[d] = X[0,d]\nL[d] = X[-1,d]\nN[d] = X[0,d+1]\nP[d] = X[1,d-1]\n"
                          "C[p,q] = causal_mask(3)\nE[d] = even(d) X[0,d]\nO[d] = odd(d) L[d]\n"
                          "export F\nexport L\nexport N\nexport P\nexport C\nexport E\nexport O\n",
                          in, 1);
    double f[4], l[4], n[4], p[4], c[9], e[4], od[4];
    for (int d = 0; d < 4; d++) {
        f[d] = x[d];
        l[d] = x[4 + d];
        n[d] = d + 1 < 4 ? x[d + 1] : 0;
        p[d] = d >= 1 ? x[4 + d - 1] : 0;
        e[d] = d % 2 == 0 ? x[d] : 0;
        od[d] = d % 2 ? x[4 + d] : 0;
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            c[i * 3 + j] = i >= j;
    int64_t s4[1] = {4};
    assert_close(get(o, "F", 1, s4), f, 4);
    assert_close(get(o, "L", 1, s4), l, 4);
    assert_close(get(o, "N", 1, s4), n, 4);
    assert_close(get(o, "P", 1, s4), p, 4);
    assert_close(get(o, "C", 2, (int64_t[]){3, 3}), c, 9);
    assert_close(get(o, "E", 1, s4), e, 4);
    assert_close(get(o, "O", 1, s4), od, 4);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_boolean_join_wide_and_or)
{
    /* 300 witnesses for each pair: still exactly 1. */
    enum { N = 3, W = 300 };
    float *a = malloc(sizeof(float) * N * W), *b = malloc(sizeof(float) * W * N);
    for (int i = 0; i < N * W; i++)
        a[i] = b[i] = 1.0f;
    fuse_input in[2] = {input2("A", a, N, W), input2("B", b, W, N)};
    fuse_outputs *o = run("A(x,y) = \"a.npy\"\nB(y,z) = \"b.npy\"\n"
                          "R(x,z) = A(x,y) B(y,z)\nR(x,z) = A(x,y) B(y,z)\nexport R\n", in, 2);
    double want[N * N];
    for (int i = 0; i < N * N; i++)
        want[i] = 1.0;
    assert_close(get(o, "R", 2, (int64_t[]){N, N}), want, N * N);
    fuse_outputs_free(o);
    free(a), free(b);
}
END_TEST

START_TEST(test_recursion_single_sweep_reads_zeros)
{
    float e[9] = {0, 1, 0, 0, 0, 1, 0, 0, 0};
    fuse_input in[1] = {input2("Edge", e, 3, 3)};
    fuse_outputs *o = run("Edge(x,y) = \"e.npy\"\n"
                          "Path(x,y) = Edge(x,y) + Path(x,z) Edge(z,y)\nexport Path\n", in, 1);
    double want[9];
    for (int i = 0; i < 9; i++)
        want[i] = e[i];
    assert_close(get(o, "Path", 2, (int64_t[]){3, 3}), want, 9);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_runner_reuse_with_new_inputs)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {-1, 0, 5, 2};
    fuse_input in[1] = {input1("A", a, 4)};
    fuse_program *prog;
    fuse_runner *r;
    fuse_outputs *o;
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i] = \"a.npy\"\nS = A[i] A[i]\nexport S\n",
                                            NULL, &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, in, 1, &r), FUSE_OK);
    fuse_program_free(prog); /* the runner keeps what it needs */
    ck_assert_int_eq(fuse_runner_run(r, in, 1, &o), FUSE_OK);
    ck_assert_float_eq_tol(((float *)fuse_outputs_find(o, "S")->data)[0], 30.0f, 1e-5f);
    fuse_outputs_free(o);
    in[0].tensor.data = b;
    ck_assert_int_eq(fuse_runner_run(r, in, 1, &o), FUSE_OK);
    ck_assert_float_eq_tol(((float *)fuse_outputs_find(o, "S")->data)[0], 30.0f, 1e-5f);
    fuse_outputs_free(o);
    in[0].tensor.shape[0] = 3;
    ck_assert_int_eq(fuse_runner_run(r, in, 1, &o), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "shape"));
    fuse_runner_free(r);
}
END_TEST

START_TEST(test_emit_llvm_and_asm)
{
    fuse_program *prog;
    fuse_runner *r;
    char *text;
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i] = const([1,2,3])\nB[i] = relu(A[i])\n"
                                            "export B\n", NULL, &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, NULL, 0, &r), FUSE_OK);
    ck_assert_int_eq(fuse_runner_emit(r, "llvm-raw", &text), FUSE_OK);
    ck_assert_ptr_nonnull(strstr(text, "define"));
    ck_assert_ptr_nonnull(strstr(text, "relu"));
    fuse_free(text);
    ck_assert_int_eq(fuse_runner_emit(r, "asm", &text), FUSE_OK);
    ck_assert_ptr_nonnull(strstr(text, "ret"));
    fuse_free(text);
    ck_assert_int_eq(fuse_runner_emit(r, "nonsense", &text), FUSE_E_ARG);
    fuse_runner_free(r);
    fuse_program_free(prog);
}
END_TEST

START_TEST(test_concat_named_and_positional)
{
    fuse_outputs *o = run("A[e,o] = const([[1,2],[3,4]])\nB[e,o] = const([[5,6],[7,8],[9,10]])\n"
                          "C[e,o] = concat(A[e,o], B[e,o], axis=0)\n"
                          "D[e,o] = concat(A[e,o], A[e,o], axis=o)\n"
                          "V[d] = concat(A[0,d], B[2,d], A[1,d])\nexport C\nexport D\nexport V\n",
                          NULL, 0);
    double c[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    double d[8] = {1, 2, 1, 2, 3, 4, 3, 4};
    double v[6] = {1, 2, 9, 10, 3, 4};
    assert_close(get(o, "C", 2, (int64_t[]){5, 2}), c, 10);
    assert_close(get(o, "D", 2, (int64_t[]){2, 4}), d, 8);
    assert_close(get(o, "V", 1, (int64_t[]){6}), v, 6);
    fuse_outputs_free(o);
}
END_TEST

static Suite *lowering_suite(void)
{
    Suite *s = suite_create("lowering");
    TCase *tc = tcase_create("programs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_matmul_odd_sizes);
    tcase_add_test(tc, test_transpose_diagonal_rowsum);
    tcase_add_test(tc, test_softmax_rows_and_named_axis);
    tcase_add_test(tc, test_max_and_avg_projections);
    tcase_add_test(tc, test_broadcast_bias_groups_and_literals);
    tcase_add_test(tc, test_three_factor_join_and_scalar);
    tcase_add_test(tc, test_elementwise_builtins);
    tcase_add_test(tc, test_index_forms_and_masks);
    tcase_add_test(tc, test_boolean_join_wide_and_or);
    tcase_add_test(tc, test_recursion_single_sweep_reads_zeros);
    tcase_add_test(tc, test_runner_reuse_with_new_inputs);
    tcase_add_test(tc, test_emit_llvm_and_asm);
    tcase_add_test(tc, test_concat_named_and_positional);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lowering_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
