/*
 * test_lowering.c: programs compiled through LLVM and run, checked against naive C
 * loops written here. Each test feeds host inputs through the public API.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "fusejit.h"
#include "ir.h"
#include "lower.h"

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
    /* B's relu (and its copy) run in A's loop: one cell run of A's kernel */
    ck_assert_msg(strstr(text, "g0.op0.join.cells2(") && !strstr(text, "g1("), "%s", text);
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

/* ---- builtins of SPEC §5: reductions, normalisers, case, attention, rope ---- */

/* Compiles text (no inputs) and expects a failure whose message contains `needle`. */
static void expect_error(const char *text, const char *needle)
{
    fuse_program *prog = NULL;
    fuse_runner *r = NULL;
    fuse_status st = fuse_program_from_text(ctx, text, "t.fuse", &prog);
    if (st == FUSE_OK) {
        st = fuse_runner_new(prog, NULL, NULL, 0, &r);
        fuse_runner_free(r);
    }
    fuse_program_free(prog);
    ck_assert_int_ne(st, FUSE_OK);
    const char *msg = fuse_ctx_error(ctx);
    ck_assert_msg(strstr(msg, needle) != NULL, "message \"%s\" lacks \"%s\"", msg, needle);
}

START_TEST(test_reductions_one_axis)
{
    enum { I = 3, J = 5 };
    float x[I * J];
    fill(x, I * J, 21);
    x[1] = x[3]; /* a tie for the row max */
    fuse_input in[1] = {input2("X", x, I, J)};
    fuse_outputs *o = run("X[i,j] = \"x.npy\"\n"
                          "M[i] = max(X[i,j])\nR[j] = reduce_max(X[i,j], axis=i)\n"
                          "A[i] = mean(X[i,j], axis=j)\nS[j] = sum(X[i,j], axis=0)\n"
                          "N[i] = reduce_mean(X[i,j])\nQ[i.,j] = X[i,j] - max(X[i,j])\n"
                          "P[j] = sum(2 X[i,j], axis=-2)\n"
                          "export M\nexport R\nexport A\nexport S\nexport N\nexport Q\nexport P\n",
                          in, 1);
    double m[I], r[J], a[I] = {0}, s[J] = {0}, q[I * J], pp[J];
    for (int j = 0; j < J; j++)
        r[j] = -INFINITY;
    for (int i = 0; i < I; i++) {
        m[i] = -INFINITY;
        for (int j = 0; j < J; j++) {
            double v = x[i * J + j];
            m[i] = fmax(m[i], v);
            r[j] = fmax(r[j], v);
            a[i] += v / J;
            s[j] += v;
        }
    }
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++)
            q[i * J + j] = x[i * J + j] - r[j];
    for (int j = 0; j < J; j++)
        pp[j] = 2 * s[j];
    assert_close(get(o, "M", 1, (int64_t[]){I}), m, I);
    assert_close(get(o, "R", 1, (int64_t[]){J}), r, J);
    assert_close(get(o, "A", 1, (int64_t[]){I}), a, I);
    assert_close(get(o, "S", 1, (int64_t[]){J}), s, J);
    assert_close(get(o, "N", 1, (int64_t[]){I}), a, I);
    assert_close(get(o, "Q", 2, (int64_t[]){I, J}), q, I * J);
    assert_close(get(o, "P", 1, (int64_t[]){J}), pp, J);
    fuse_outputs_free(o);
}
END_TEST

START_TEST(test_reduction_errors)
{
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i] = max(X[i,j], axis=k)\nexport Y\n",
                 "t.fuse:2:");
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i] = max(X[i,j], axis=k)\nexport Y\n",
                 "no axis 'k'");
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i] = sum(X[i,j], keep=1)\nexport Y\n",
                 "unknown keyword argument 'keep' for sum");
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i] = mean(X[i,j], X[i,j])\nexport Y\n",
                 "mean takes 1 positional argument, got 2");
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i] = mean(X[i,j], axis=2)\nexport Y\n",
                 "out of range");
}
END_TEST

/* Row-wise layer norm along `axis` (0: along i, 1: along j) of an n0 x n1 matrix. */
static void naive_lnorm(const float *x, int n0, int n1, int axis, double eps, double *out)
{
    int rows = axis ? n0 : n1, len = axis ? n1 : n0;
    for (int r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int k = 0; k < len; k++)
            mean += x[axis ? r * n1 + k : k * n1 + r] / (double)len;
        for (int k = 0; k < len; k++) {
            double d = x[axis ? r * n1 + k : k * n1 + r] - mean;
            var += d * d / len;
        }
        for (int k = 0; k < len; k++) {
            int at = axis ? r * n1 + k : k * n1 + r;
            out[at] = (x[at] - mean) / sqrt(var + eps);
        }
    }
}

START_TEST(test_layernorm_eps_and_axis)
{
    enum { I = 4, J = 6 };
    float x[I * J];
    fill(x, I * J, 22);
    fuse_input in[1] = {input2("X", x, I, J)};
    fuse_outputs *o = run("X[i,j] = \"x.npy\"\nL[i,j] = lnorm(X[i,j])\n"
                          "C[i,j] = layer_norm(X[i,j], axis=i, eps=0.1)\n"
                          "D[i.,j] = LayerNorm(X[i,j], eps=1)\n"
                          "export L\nexport C\nexport D\n", in, 1);
    double l[I * J], c[I * J], d[I * J];
    naive_lnorm(x, I, J, 1, 1e-5, l);
    naive_lnorm(x, I, J, 0, 0.1, c);
    naive_lnorm(x, I, J, 0, 1.0, d);
    assert_close(get(o, "L", 2, (int64_t[]){I, J}), l, I * J);
    assert_close(get(o, "C", 2, (int64_t[]){I, J}), c, I * J);
    assert_close(get(o, "D", 2, (int64_t[]){I, J}), d, I * J);
    fuse_outputs_free(o);
    /* Reference values (notes B A.6); a constant row normalises to 0. */
    o = run("X[i,j] = const([[1,2,3],[0,0,6],[2,2,2]])\nL[i,j] = lnorm(X[i,j])\n"
            "E[i,j] = layernorm(X[i,j], eps=1)\nexport L\nexport E\n", NULL, 0);
    double lw[9] = {-1.2247, 0, 1.2247, -0.7071, -0.7071, 1.4142, 0, 0, 0};
    double ew[9] = {-0.7746, 0, 0.7746, -0.6667, -0.6667, 1.3333, 0, 0, 0};
    assert_close(get(o, "L", 2, (int64_t[]){3, 3}), lw, 9);
    assert_close(get(o, "E", 2, (int64_t[]){3, 3}), ew, 9);
    fuse_outputs_free(o);
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i,j] = lnorm(X[i,j], epsilon=1)\nexport Y\n",
                 "unknown keyword argument 'epsilon'");
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i,j] = lnorm(X[i,j], eps=X[i,j])\nexport Y\n",
                 "'eps' takes a number");
}
END_TEST

START_TEST(test_masked_softmax_rows_fill_broadcast)
{
    fuse_outputs *o = run("X[i,j] = const([[1,2,3],[0,0,6],[4,5,6]])\n"
                          "M[i,j] = const([[1,1,0],[0,1,1],[0,0,0]])\nK[j] = const([0,1,1])\n"
                          "S[i,j] = masked_softmax(X[i,j], M[i,j])\n"
                          "F[i,j] = masked_softmax(X[i,j], mask=M[i,j], fill=0.0)\n"
                          "B[i,j] = masked_softmax(X[i,j], K[j])\n"
                          "C[i,j] = masked_softmax(X[i,j], M[i,j], axis=i)\n"
                          "export S\nexport F\nexport B\nexport C\n", NULL, 0);
    double sw[9] = {0.2689, 0.7311, 0, 0, 0.00247, 0.99753, 0, 0, 0};
    double fw[9] = {0.2447, 0.6652, 0, 0, 0.00247, 0.99507, 0, 0, 0};
    double bw[9], cw[9];
    const double xv[9] = {1, 2, 3, 0, 0, 6, 4, 5, 6}, mv[9] = {1, 1, 0, 0, 1, 1, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        double e1 = exp(xv[i * 3 + 1]), e2 = exp(xv[i * 3 + 2]);
        bw[i * 3] = 0, bw[i * 3 + 1] = e1 / (e1 + e2), bw[i * 3 + 2] = e2 / (e1 + e2);
    }
    for (int j = 0; j < 3; j++) {
        double sum = 0;
        for (int i = 0; i < 3; i++)
            sum += mv[i * 3 + j] ? exp(xv[i * 3 + j]) : 0;
        for (int i = 0; i < 3; i++)
            cw[i * 3 + j] = mv[i * 3 + j] ? exp(xv[i * 3 + j]) / sum : 0;
    }
    int64_t s33[2] = {3, 3};
    assert_close(get(o, "S", 2, s33), sw, 9);
    assert_close(get(o, "F", 2, s33), fw, 9);
    assert_close(get(o, "B", 2, s33), bw, 9);
    assert_close(get(o, "C", 2, s33), cw, 9);
    fuse_outputs_free(o);
    expect_error("X[i,j] = const([[1,2],[3,4]])\nM[k] = const([1,0])\n"
                 "Y[i,j] = masked_softmax(X[i,j], M[k])\nexport Y\n", "the mask has axis 'k'");
    expect_error("X[i,j] = const([[1,2],[3,4]])\nY[i,j] = masked_softmax(X[i,j], X[i,j], "
                 "X[i,j])\nexport Y\n", "masked_softmax takes 1 to 2 positional");
}
END_TEST

START_TEST(test_case_first_true_and_broadcast)
{
    fuse_outputs *o = run("X[p,d] = const([[0,1,2],[3,4,5]])\nC[p,d] = const([[1,0,1],[0,0,1]])\n"
                          "R[p] = const([0,1])\nNeg[p,d] = -X[p,d]\n"
                          "A[p,d] = case(C[p,d], X[p,d], Neg[p,d])\nB[p,d] = case(C[p,d], X[p,d])\n"
                          "E[p,d] = case(even(d), X[p,d], 7)\nF[p,d] = case(C[p,d], 1, 1, 2, 3)\n"
                          "G[p,d] = case(R[p], X[p,d], C[p,d], 10, -1)\n"
                          "export A\nexport B\nexport E\nexport F\nexport G\n", NULL, 0);
    double a[6] = {0, -1, 2, -3, -4, 5}, b[6] = {0, 0, 2, 0, 0, 5}, e[6] = {0, 7, 2, 3, 7, 5};
    double f[6] = {1, 2, 1, 2, 2, 1}, g[6] = {10, -1, 10, 3, 4, 5};
    int64_t s23[2] = {2, 3};
    assert_close(get(o, "A", 2, s23), a, 6);
    assert_close(get(o, "B", 2, s23), b, 6);
    assert_close(get(o, "E", 2, s23), e, 6);
    assert_close(get(o, "F", 2, s23), f, 6);
    assert_close(get(o, "G", 2, s23), g, 6);
    fuse_outputs_free(o);
    expect_error("X[p] = const([1,2])\nY[p] = case(X[p])\nexport Y\n", "case takes pairs");
}
END_TEST

/* softmax(q k^T scale) v with keep[t*L+s] (NULL: all kept); fully masked rows give 0. */
static void naive_attention(const float *q, const float *k, const float *v, const int *keep,
                            int L, int D, int H, double scale, double *out)
{
    for (int t = 0; t < L; t++) {
        double sc[16], m = -INFINITY, sum = 0;
        for (int s = 0; s < L; s++) {
            sc[s] = 0;
            for (int d = 0; d < D; d++)
                sc[s] += (double)q[t * D + d] * k[s * D + d] * scale;
            if (!keep || keep[t * L + s])
                m = fmax(m, sc[s]);
        }
        for (int s = 0; s < L; s++) {
            sc[s] = !keep || keep[t * L + s] ? exp(sc[s] - m) : 0;
            sum += sc[s];
        }
        for (int h = 0; h < H; h++) {
            out[t * H + h] = 0;
            for (int s = 0; s < L && sum > 0; s++)
                out[t * H + h] += sc[s] / sum * v[s * H + h];
        }
    }
}

START_TEST(test_attention_scale_mask_causal)
{
    enum { L = 4, D = 3, H = 5 };
    float q[L * D], k[L * D], v[L * H], mk[L * L];
    fill(q, L * D, 23);
    fill(k, L * D, 24);
    fill(v, L * H, 25);
    int keep[L * L], causal[L * L], both[L * L];
    for (int t = 0; t < L; t++)
        for (int s = 0; s < L; s++) {
            keep[t * L + s] = t != 2 && (s + t) % 3 != 0; /* row 2 fully masked */
            mk[t * L + s] = (float)keep[t * L + s] * 2.0f; /* nonzero keeps */
            causal[t * L + s] = s <= t;
            both[t * L + s] = keep[t * L + s] && causal[t * L + s];
        }
    fuse_input in[4] = {input2("Q", q, L, D), input2("K", k, L, D), input2("V", v, L, H),
                        input2("M", mk, L, L)};
    fuse_outputs *o = run("Q[t,d] = \"q.npy\"\nK[t,d] = \"k.npy\"\nV[t,h] = \"v.npy\"\n"
                          "M[t,s] = \"m.npy\"\n"
                          "A[t,h] = attention(Q[t,d], K[t,d], V[t,h])\n"
                          "B[t,h] = attention(Q[t,d], K[t,d], V[t,h], scale=0.5, mask=M[t,s])\n"
                          "C[t,h] = attention(Q[t,d], K[t,d], V[t,h], causal=true)\n"
                          "E[t,h] = attention(Q[t,d], K[t,d], V[t,h], M[t,s], causal=true)\n"
                          "export A\nexport B\nexport C\nexport E\n", in, 4);
    double a[L * H], b[L * H], c[L * H], e[L * H];
    naive_attention(q, k, v, NULL, L, D, H, 1 / sqrt(D), a);
    naive_attention(q, k, v, keep, L, D, H, 0.5, b);
    naive_attention(q, k, v, causal, L, D, H, 1 / sqrt(D), c);
    naive_attention(q, k, v, both, L, D, H, 1 / sqrt(D), e);
    int64_t shape[2] = {L, H};
    assert_close(get(o, "A", 2, shape), a, L * H);
    assert_close(get(o, "B", 2, shape), b, L * H);
    assert_close(get(o, "C", 2, shape), c, L * H);
    assert_close(get(o, "E", 2, shape), e, L * H);
    for (int h = 0; h < H; h++)
        ck_assert_float_eq(get(o, "B", 2, shape)[2 * H + h], 0.0f);
    fuse_outputs_free(o);
    expect_error("Q[t,d] = const([[1,2],[3,4]])\nK[t,e] = const([[1,2],[3,4]])\n"
                 "Y[t,e] = attention(Q[t,d], K[t,e], K[t,e])\nexport Y\n",
                 "k's feature axis 'e' is not an axis of q");
    expect_error("Q[t,d] = const([[1,2],[3,4]])\n"
                 "Y[t,d] = attention(Q[t,d], Q[t,d], Q[t,d], temperature=2)\nexport Y\n",
                 "unknown keyword argument 'temperature' for attention");
}
END_TEST

START_TEST(test_rope_pairs_half_apart)
{
    enum { T = 5, D = 6 };
    float x[T * D];
    fill(x, T * D, 26);
    fuse_input in[1] = {input2("X", x, T, D)};
    fuse_outputs *o = run("X[t,d] = \"x.npy\"\nR[t,d] = rope(X[t,d])\n"
                          "B[t,d] = rope(X[t,d], base=100)\nexport R\nexport B\n", in, 1);
    double want[2][T * D];
    double bases[2] = {10000, 100};
    for (int w = 0; w < 2; w++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < D / 2; k++) {
                double ang = t * pow(bases[w], -2.0 * k / D);
                double lo = x[t * D + k], hi = x[t * D + k + D / 2];
                want[w][t * D + k] = lo * cos(ang) - hi * sin(ang);
                want[w][t * D + k + D / 2] = hi * cos(ang) + lo * sin(ang);
            }
    assert_close(get(o, "R", 2, (int64_t[]){T, D}), want[0], T * D);
    assert_close(get(o, "B", 2, (int64_t[]){T, D}), want[1], T * D);
    fuse_outputs_free(o);
    expect_error("X[t] = const([1,2])\nY[t] = rope(X[t])\nexport Y\n",
                 "rope needs a position axis and a feature axis");
}
END_TEST

/* The odd-size check needs sizes: ir_check_builtins after shape inference. */
START_TEST(test_rope_odd_feature_size_error)
{
    Arena arena;
    DiagList dl;
    Ast ast;
    IrProgram *ir;
    const char *text = "X[t,d] = const([[1,2,3],[4,5,6]])\nY[t,d] = rope(X[t,d])\nexport Y\n";
    Source src = {"r.fuse", text, strlen(text)};
    arena_init(&arena);
    fe_diags_init(&dl, &arena);
    ck_assert_int_eq(fe_parse(&arena, &src, &dl, &ast), FUSE_OK);
    ck_assert_int_eq(ir_build(&arena, &ast, &dl, &ir), FUSE_OK);
    ck_assert_int_eq(ir_order(ir, &dl), FUSE_OK);
    ck_assert_int_eq(ir_infer_shapes(ir, NULL, &dl), FUSE_OK);
    ck_assert_int_eq(ir_check_builtins(ir, &dl), FUSE_E_SHAPE);
    char *msg = fe_diags_format(&dl);
    ck_assert_ptr_nonnull(msg);
    ck_assert_msg(strstr(msg, "r.fuse:2:") && strstr(msg, "even feature size"), "%s", msg);
    free(msg);
    arena_free_all(&arena);
}
END_TEST

/* Whether the first group of `text`, its 2-D sources all rows x cols, runs on a
 * thread team (lower_group_is_parallel). */
static bool first_group_is_parallel(const char *text, int64_t rows, int64_t cols)
{
    Arena arena;
    DiagList dl;
    Ast ast;
    IrProgram *ir;
    Source src = {"p.fuse", text, strlen(text)};
    arena_init(&arena);
    fe_diags_init(&dl, &arena);
    ck_assert_int_eq(fe_parse(&arena, &src, &dl, &ast), FUSE_OK);
    ck_assert_int_eq(ir_build(&arena, &ast, &dl, &ir), FUSE_OK);
    ck_assert_int_eq(ir_order(ir, &dl), FUSE_OK);
    ShapeFact *facts = calloc((size_t)ir->n_tensors, sizeof *facts);
    ck_assert_ptr_nonnull(facts);
    for (int t = 0; t < ir->n_tensors; t++)
        if (ir->tensors[t]->kind == TEN_SOURCE)
            facts[t] = (ShapeFact){.is_known = true, .rank = 2, .dims = {rows, cols}};
    ck_assert_int_eq(ir_infer_shapes(ir, facts, &dl), FUSE_OK);
    LowerOptions opt = {.vector_bits = 512};
    bool yes = lower_group_is_parallel(ir, ir->groups[0], &opt);
    free(facts);
    arena_free_all(&arena);
    return yes;
}

/* Cell runs and row-wise ops of 2^16 cells or more with 2 rows or more go to a
 * thread team; small ones, one-row ones and a softmax along its first slot do
 * not. */
START_TEST(test_parallel_cell_runs)
{
    const char *run = "X[i,j] = \"x.npy\"\nY[i,j] = \"y.npy\"\n"
                      "A[i,j] = relu(X[i,j] Y[i,j] + X[i,j])\nexport A\n";
    const char *rows = "X[i,j] = \"x.npy\"\nA[i,j] = softmax(X[i,j.])\nexport A\n";
    const char *cols = "X[i,j] = \"x.npy\"\nA[i.,j] = softmax(X[i,j])\nexport A\n";
    ck_assert(first_group_is_parallel(run, 263, 257));
    ck_assert(!first_group_is_parallel(run, 7, 13));
    ck_assert(!first_group_is_parallel(run, 1, 70000));
    ck_assert(first_group_is_parallel(rows, 300, 300)); /* rows shared out */
    ck_assert(!first_group_is_parallel(rows, 100, 100));
    ck_assert(!first_group_is_parallel(cols, 300, 300)); /* along the first slot */
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
    tcase_add_test(tc, test_reductions_one_axis);
    tcase_add_test(tc, test_reduction_errors);
    tcase_add_test(tc, test_layernorm_eps_and_axis);
    tcase_add_test(tc, test_masked_softmax_rows_fill_broadcast);
    tcase_add_test(tc, test_case_first_true_and_broadcast);
    tcase_add_test(tc, test_attention_scale_mask_causal);
    tcase_add_test(tc, test_rope_pairs_half_apart);
    tcase_add_test(tc, test_rope_odd_feature_size_error);
    tcase_add_test(tc, test_parallel_cell_runs);
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
