/*
 * test_precision.c: fuse_config.precision end to end (docs/execution.md,
 * "Precision"). Every program runs in fp32 (the control), fp64, bf16 and fp16
 * through the public API, with float64 inputs, and is compared with a
 * reference computed here by naive loops in double. The bounds asserted are the
 * ones the docs state: relative Frobenius error of a result against the
 * reference, per precision (BOUND[]). Booleans and fixpoints are exact in
 * every precision, and so are queries; streaming and Monte Carlo are held to
 * the same bounds. Also: outputs carry the precision's dtype, 16-bit stores
 * round to nearest even (both the F16C path and the integer-op fallback
 * forced with FUSE_JIT_NO_F16C), and the CLI writes <f8 .npz members.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusejit.h"
#include "harness.h"
#include "io.h"

static const fuse_precision PRECS[4] = {FUSE_PRECISION_FP32, FUSE_PRECISION_FP64,
                                        FUSE_PRECISION_BF16, FUSE_PRECISION_FP16};
static const fuse_dtype DTYPES[4] = {FUSE_F32, FUSE_F64, FUSE_BF16, FUSE_F16};
/* relative Frobenius error bounds (docs/execution.md) for values of order 1 */
static const double BOUND[4] = {1e-5, 1e-12, 1e-2, 1e-3};

/* ---- helpers ---- */

/* Deterministic values in [-1, 1) (unit-scale data), as doubles. */
static double *random_doubles(int64_t n, unsigned seed)
{
    double *x = malloc(sizeof *x * (size_t)n);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
    return x;
}

static fuse_input f64_input(const char *name, int rank, const int64_t *shape, double *data)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F64, .rank = rank, .data = data}};
    for (int k = 0; k < rank; k++)
        in.tensor.shape[k] = shape[k];
    return in;
}

/* Element i of an output tensor of a float dtype, as double. */
static double value_at(const fuse_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case FUSE_F64: return ((const double *)t->data)[i];
    case FUSE_F32: return ((const float *)t->data)[i];
    case FUSE_F16: return io_half_to_float(((const uint16_t *)t->data)[i]);
    case FUSE_BF16: return io_bf16_to_float(((const uint16_t *)t->data)[i]);
    default: ck_abort_msg("output of dtype %s", fuse_dtype_name(t->dtype)); return 0;
    }
}

/* Runs text with the inputs in precision PRECS[p]; returns export `name` as
 * doubles (n of them), after checking its dtype. */
static double *run_as(int p, const char *text, const fuse_input *in, size_t n_in,
                      fuse_mode mode, fuse_strategy strategy, const char *name, int64_t n)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_msg(fuse_program_from_text(ctx, text, "p.fuse", &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.precision = PRECS[p];
    cfg.mode = mode;
    cfg.strategy = strategy;
    cfg.threads = 2;
    ck_assert_msg(fuse_runner_new(prog, &cfg, in, n_in, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_run(run, in, n_in, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, DTYPES[p]);
    double *v = malloc(sizeof *v * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = value_at(t, i);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return v;
}

static double rel_frobenius(const double *got, const double *want, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return sqrt(num) / sqrt(den);
}

static void expect_within(int p, const char *what, const double *got, const double *want,
                          int64_t n, double bound)
{
    double err = rel_frobenius(got, want, n);
    ck_assert_msg(err <= bound, "%s in precision %d: relative error %.3g > %.3g", what, p, err,
                  bound);
}

static void expect_exact(int p, const char *what, const double *got, const double *want,
                         int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s in precision %d, cell %lld: %g, want %g", what, p,
                      (long long)i, got[i], want[i]);
}

/* ---- products ---- */

START_TEST(product_with_edge_tiles)
{
    enum { M = 67, K = 129, N = 95 };
    double *a = random_doubles(M * K, 1), *b = random_doubles(K * N, 2);
    double want[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += a[i * K + k] * b[k * N + j];
            want[i * N + j] = s;
        }
    fuse_input in[2] = {f64_input("A", 2, (int64_t[]){M, K}, a),
                        f64_input("B", 2, (int64_t[]){K, N}, b)};
    double *got = run_as(_i, "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\n"
                             "export C\n", in, 2, FUSE_MODE_SINGLE, 0, "C", M * N);
    expect_within(_i, "product", got, want, M * N, BOUND[_i]);
    free(got), free(a), free(b);
}
END_TEST

START_TEST(batched_product)
{
    enum { NB = 3, M = 33, K = 40, N = 50 };
    double *a = random_doubles(NB * M * K, 3), *b = random_doubles(NB * K * N, 4);
    double *want = calloc(NB * M * N, sizeof *want);
    for (int z = 0; z < NB; z++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                for (int k = 0; k < K; k++)
                    want[(z * M + i) * N + j] += a[(z * M + i) * K + k] * b[(z * K + k) * N + j];
    fuse_input in[2] = {f64_input("A", 3, (int64_t[]){NB, M, K}, a),
                        f64_input("B", 3, (int64_t[]){NB, K, N}, b)};
    double *got = run_as(_i, "A[z,i,k] = \"a.npy\"\nB[z,k,j] = \"b.npy\"\n"
                             "C[z,i,j] = A[z,i,k] B[z,k,j]\nexport C\n",
                         in, 2, FUSE_MODE_SINGLE, 0, "C", NB * M * N);
    expect_within(_i, "batched product", got, want, NB * M * N, BOUND[_i]);
    free(got), free(want), free(a), free(b);
}
END_TEST

/* ---- booleans ---- */

/* a random graph on n nodes, edges with probability about 1/8 */
static double *random_graph(int n, unsigned seed)
{
    double *e = random_doubles((int64_t)n * n, seed);
    for (int i = 0; i < n * n; i++)
        e[i] = e[i] > 0.75 ? 1.0 : 0.0;
    return e;
}

START_TEST(boolean_join_step)
{
    enum { N = 40 };
    double *e = random_graph(N, 5), want[N * N];
    for (int x = 0; x < N; x++)
        for (int z = 0; z < N; z++) {
            double any = 0;
            for (int y = 0; y < N; y++)
                any = e[x * N + y] * e[y * N + z] > 0 ? 1 : any;
            want[x * N + z] = any;
        }
    fuse_input in[1] = {f64_input("E", 2, (int64_t[]){N, N}, e)};
    double *got = run_as(_i, "E(x,y) = \"e.npy\"\nTwo(x,z) = E(x,y) E(y,z)\nexport Two\n", in, 1,
                         FUSE_MODE_SINGLE, 0, "Two", N * N);
    expect_exact(_i, "boolean join", got, want, N * N);
    free(got), free(e);
}
END_TEST

/* the transitive closure of e (Warshall) */
static void closure(const double *e, int n, double *out)
{
    memcpy(out, e, sizeof *out * (size_t)n * (size_t)n);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (out[i * n + k] > 0 && out[k * n + j] > 0)
                    out[i * n + j] = 1;
}

START_TEST(fixpoint_closure)
{
    enum { N = 30 };
    double *e = random_graph(N, 6), want[N * N];
    for (int i = 0; i < N * N; i++) /* sparser: a longer fixpoint */
        e[i] = e[i] > 0 && (i * 7) % 3 == 0 ? 1.0 : 0.0;
    closure(e, N, want);
    fuse_input in[1] = {f64_input("E", 2, (int64_t[]){N, N}, e)};
    const char *tc = "E(x,y) = \"e.npy\"\nPath(x,y) = E(x,y)\nPath(x,z) = E(x,y) Path(y,z)\n"
                     "export Path\n";
    double *got = run_as(_i, tc, in, 1, FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS, "Path",
                         N * N);
    expect_exact(_i, "fixpoint", got, want, N * N);
    free(got);
    got = run_as(_i, tc, in, 1, FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE, "Path", N * N);
    expect_exact(_i, "semi-naive fixpoint", got, want, N * N);
    free(got), free(e);
}
END_TEST

/* ---- row ops and elementwise ---- */

START_TEST(softmax_rows)
{
    enum { R = 17, N = 300 };
    double *x = random_doubles(R * N, 7), want[R * N];
    for (int i = 0; i < R * N; i++)
        x[i] *= 4;
    for (int r = 0; r < R; r++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < N; j++)
            mx = fmax(mx, x[r * N + j]);
        for (int j = 0; j < N; j++)
            s += exp(x[r * N + j] - mx);
        for (int j = 0; j < N; j++)
            want[r * N + j] = exp(x[r * N + j] - mx) / s;
    }
    fuse_input in[1] = {f64_input("X", 2, (int64_t[]){R, N}, x)};
    double *got = run_as(_i, "X[i,j] = \"x.npy\"\nP[i,j.] = softmax(X[i,j])\nexport P\n", in, 1,
                         FUSE_MODE_SINGLE, 0, "P", R * N);
    expect_within(_i, "softmax", got, want, R * N, BOUND[_i]);
    free(got), free(x);
}
END_TEST

START_TEST(layer_norm_rows)
{
    enum { R = 9, N = 257 };
    double *x = random_doubles(R * N, 8), want[R * N];
    for (int r = 0; r < R; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < N; j++)
            m += x[r * N + j] / N;
        for (int j = 0; j < N; j++)
            v += (x[r * N + j] - m) * (x[r * N + j] - m) / N;
        for (int j = 0; j < N; j++)
            want[r * N + j] = (x[r * N + j] - m) / sqrt(v + 1e-5);
    }
    fuse_input in[1] = {f64_input("X", 2, (int64_t[]){R, N}, x)};
    double *got = run_as(_i, "X[r,i] = \"x.npy\"\nC[r,i] = lnorm(X[r,i])\nexport C\n", in, 1,
                         FUSE_MODE_SINGLE, 0, "C", R * N);
    expect_within(_i, "layer norm", got, want, R * N, BOUND[_i]);
    free(got), free(x);
}
END_TEST

static double gelu_ref(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

START_TEST(elementwise_chain)
{
    enum { R = 31, N = 70 };
    double *x = random_doubles(R * N, 9), want[R * N];
    for (int i = 0; i < R * N; i++) {
        x[i] *= 2;
        want[i] = gelu_ref(x[i]) + tanh(x[i]) * exp(x[i]);
    }
    fuse_input in[1] = {f64_input("X", 2, (int64_t[]){R, N}, x)};
    double *got = run_as(_i, "X[i,j] = \"x.npy\"\nG[i,j] = gelu(X[i,j])\nT[i,j] = tanh(X[i,j])\n"
                             "E[i,j] = exp(X[i,j])\nY[i,j] = G[i,j] + T[i,j] E[i,j]\nexport Y\n",
                         in, 1, FUSE_MODE_SINGLE, 0, "Y", R * N);
    expect_within(_i, "exp/tanh/gelu chain", got, want, R * N, BOUND[_i]);
    free(got), free(x);
}
END_TEST

/* ---- modes: streaming, Monte Carlo, queries ---- */

/* A runner of text in precision PRECS[p] (cfg's other fields as given). */
static fuse_runner *runner_as(int p, fuse_ctx **ctx, fuse_program **prog, const char *text,
                              fuse_config *cfg, const fuse_input *in, size_t n_in)
{
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(ctx), FUSE_OK);
    ck_assert_msg(fuse_program_from_text(*ctx, text, "m.fuse", prog) == FUSE_OK, "%s",
                  fuse_ctx_error(*ctx));
    cfg->precision = PRECS[p];
    ck_assert_msg(fuse_runner_new(*prog, cfg, in, n_in, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(*ctx));
    return run;
}

static void tensor_values(const fuse_tensor *t, int p, double *v, int64_t n)
{
    ck_assert_int_eq(t->dtype, DTYPES[p]);
    for (int64_t i = 0; i < n; i++)
        v[i] = value_at(t, i);
}

/* H[i,*t] = 0.5 H[i,*t-1] + X[i], four steps, each against h = 0.5 h + x. */
START_TEST(streaming_steps)
{
    enum { N = 50 };
    double *x = random_doubles(N, 14), h[N] = {0}, got[N];
    fuse_input in[1] = {f64_input("X", 1, (int64_t[]){N}, x)};
    in[0].tensor.rank = 1;
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_config cfg;
    fuse_config_init(&cfg);
    fuse_runner *run = runner_as(_i, &ctx, &prog, "X[i] = \"x.npy\"\n"
                                 "H[i,*t] = 0.5 H[i,*t-1] + X[i]\nexport H\n", &cfg, in, 1);
    for (int step = 0; step < 4; step++) {
        fuse_outputs *out = NULL;
        ck_assert_msg(fuse_runner_run(run, in, 1, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
        for (int i = 0; i < N; i++)
            h[i] = 0.5 * h[i] + x[i];
        tensor_values(fuse_outputs_find(out, "H"), _i, got, N);
        expect_within(_i, "streaming step", got, h, N, BOUND[_i]);
        fuse_outputs_free(out);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(x);
}
END_TEST

/* Monte Carlo projection: with samples >= the projected cells the sum is exact
 * (against the reference); with fewer, every precision draws the same cells,
 * so its estimate is fp64's within the precision's bound. */
START_TEST(monte_carlo_projection)
{
    enum { R = 6, K = 200 };
    double *a = random_doubles(R * K, 15), want[R] = {0}, got[R], est64[R];
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            want[r] += a[r * K + k] + 1.5; /* positive sums: relative errors mean something */
    for (int i = 0; i < R * K; i++)
        a[i] += 1.5;
    fuse_input in[1] = {f64_input("A", 2, (int64_t[]){R, K}, a)};
    const char *text = "A[i,k] = \"a.npy\"\nS[i] = A[i,k]\nexport S\n";
    for (int pass = 0; pass < 2; pass++) {
        int p = pass == 0 ? 1 : _i; /* fp64 first: the estimate the others are held to */
        for (int64_t samples = K; samples >= 40; samples -= K - 40) {
            fuse_ctx *ctx;
            fuse_program *prog;
            fuse_config cfg;
            fuse_config_init(&cfg);
            cfg.projection = FUSE_PROJECTION_MONTE_CARLO;
            cfg.samples = samples;
            cfg.seed = 5;
            fuse_runner *run = runner_as(p, &ctx, &prog, text, &cfg, in, 1);
            fuse_outputs *out = NULL;
            ck_assert_msg(fuse_runner_run(run, in, 1, &out) == FUSE_OK, "%s",
                          fuse_ctx_error(ctx));
            tensor_values(fuse_outputs_find(out, "S"), p, got, R);
            if (samples == K)
                expect_within(p, "exact Monte Carlo", got, want, R, BOUND[p]);
            else if (pass == 0)
                memcpy(est64, got, sizeof est64);
            else
                expect_within(p, "Monte Carlo estimate", got, est64, R, BOUND[p]);
            fuse_outputs_free(out);
            fuse_runner_free(run);
            fuse_program_free(prog);
            fuse_ctx_free(ctx);
        }
    }
    free(a);
}
END_TEST

/* A demand-mode query of one row of a closure, in the runner's dtype. */
START_TEST(query_of_a_closure_row)
{
    enum { N = 24 };
    double *e = random_graph(N, 16), want[N * N], got[N];
    closure(e, N, want);
    fuse_input in[1] = {f64_input("E", 2, (int64_t[]){N, N}, e)};
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.mode = FUSE_MODE_DEMAND;
    fuse_runner *run = runner_as(_i, &ctx, &prog, "E(x,y) = \"e.npy\"\nPath(x,y) = E(x,y)\n"
                                 "Path(x,z) = E(x,y) Path(y,z)\nexport Path\n", &cfg, in, 1);
    fuse_outputs *q = NULL;
    ck_assert_msg(fuse_runner_query(run, "Path", "x=3", in, 1, &q) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    const fuse_tensor *t = fuse_outputs_tensor(q, 0);
    ck_assert_int_eq(t->rank, 1);
    tensor_values(t, _i, got, N);
    expect_exact(_i, "query", got, want + 3 * N, N);
    fuse_outputs_free(q);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(e);
}
END_TEST

/* fuse_runner_run_into: outputs of the runner's dtype, written in place
 * (borrow) or copied in, equal what fuse_runner_run returns; a float32 output
 * for a runner of another precision is refused. */
START_TEST(run_into_the_runners_dtype)
{
    enum { M = 40, K = 33, N = 64 };
    double *a = random_doubles(M * K, 17), *b = random_doubles(K * N, 18), want[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += a[i * K + k] * b[k * N + j];
            want[i * N + j] = s;
        }
    fuse_input in[2] = {f64_input("A", 2, (int64_t[]){M, K}, a),
                        f64_input("B", 2, (int64_t[]){K, N}, b)};
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_config cfg;
    fuse_config_init(&cfg);
    fuse_runner *run = runner_as(_i, &ctx, &prog, "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\n"
                                 "C[i,j] = A[i,k] B[k,j]\nexport C\n", &cfg, in, 2);
    size_t es = fuse_dtype_size(DTYPES[_i]);
    void *host = aligned_alloc(64, M * N * es);
    for (int borrow = 0; borrow < 2; borrow++) {
        memset(host, 0xFF, M * N * es); /* NaN everywhere: every cell must be written */
        fuse_input out = {.name = "C", .borrow = borrow,
                          .tensor = {.dtype = DTYPES[_i], .rank = 2, .shape = {M, N},
                                     .data = host}};
        ck_assert_msg(fuse_runner_run_into(run, in, 2, &out, 1) == FUSE_OK, "%s",
                      fuse_ctx_error(ctx));
        double got[M * N];
        tensor_values(&out.tensor, _i, got, M * N);
        expect_within(_i, "run_into", got, want, M * N, BOUND[_i]);
    }
    if (_i != 0) {
        float f[M * N];
        fuse_input out = {.name = "C", .tensor = {.dtype = FUSE_F32, .rank = 2, .shape = {M, N},
                                                  .data = f}};
        ck_assert_int_eq(fuse_runner_run_into(run, in, 2, &out, 1), FUSE_E_ARG);
        ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "runner's dtype"));
    }
    free(host);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(a), free(b);
}
END_TEST

/* ---- 16-bit sources kept as they were bound ---- */

/* C = W X with W bound as 16-bit data (dtype wdt) in runner precision p: W stays
 * 16-bit in memory and is widened exactly in packing, so the result is held to
 * the runner's own bound against W's exact values. The loop-nest path (a small
 * product) and an elementwise op read it too. */
static void expect_kept_source(int p, fuse_dtype wdt, bool no_f16c)
{
    enum { M = 67, K = 129, N = 95 };
    double *w = random_doubles(M * K, 19), *x = random_doubles(K * N, 20), want[M * N];
    uint16_t wbits[M * K];
    for (int i = 0; i < M * K; i++) { /* W's 16-bit values, and the doubles they are */
        wbits[i] = wdt == FUSE_BF16 ? io_float_to_bf16((float)w[i]) : io_float_to_half((float)w[i]);
        w[i] = wdt == FUSE_BF16 ? io_bf16_to_float(wbits[i]) : io_half_to_float(wbits[i]);
    }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += w[i * K + k] * x[k * N + j];
            want[i * N + j] = acc;
        }
    fuse_input in[2] = {{.name = "W", .borrow = 1,
                         .tensor = {.dtype = wdt, .rank = 2, .shape = {M, K}, .data = wbits}},
                        f64_input("X", 2, (int64_t[]){K, N}, x)};
    if (no_f16c)
        setenv("FUSE_JIT_NO_F16C", "1", 1);
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_config cfg;
    fuse_config_init(&cfg);
    fuse_runner *run = runner_as(p, &ctx, &prog, "W[i,k] = \"w.npy\"\nX[k,j] = \"x.npy\"\n"
                                 "C[i,j] = W[i,k] X[k,j]\nT[i,k] = tanh(W[i,k])\n"
                                 "D[i] = W[i,k] W[i,k]\nexport C\nexport T\nexport D\n",
                                 &cfg, in, 2);
    unsetenv("FUSE_JIT_NO_F16C");
    /* W's buffer takes 2 bytes an element, not the runner's: against a runner
     * given W as float64 (converted into the runner's type) */
    fuse_timings kept = {.size = sizeof kept}, converted = {.size = sizeof converted};
    ck_assert_int_eq(fuse_runner_timings(run, &kept), FUSE_OK);
    fuse_input wide[2] = {f64_input("W", 2, (int64_t[]){M, K}, w), in[1]};
    fuse_runner *run2 = NULL;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, wide, 2, &run2), FUSE_OK);
    ck_assert_int_eq(fuse_runner_timings(run2, &converted), FUSE_OK);
    fuse_runner_free(run2);
    if (fuse_dtype_size(DTYPES[p]) != 2)
        ck_assert_uint_eq(converted.buffer_bytes - kept.buffer_bytes,
                          (uint64_t)M * K * (fuse_dtype_size(DTYPES[p]) - 2));
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_runner_run(run, in, 2, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    double *got = malloc(sizeof *got * M * K);
    tensor_values(fuse_outputs_find(out, "C"), p, got, M * N);
    expect_within(p, "product of a kept 16-bit source", got, want, M * N, BOUND[p]);
    double tw[M * K], dw[M];
    for (int i = 0; i < M; i++) {
        dw[i] = 0;
        for (int k = 0; k < K; k++) {
            tw[i * K + k] = tanh(w[i * K + k]);
            dw[i] += w[i * K + k] * w[i * K + k];
        }
    }
    tensor_values(fuse_outputs_find(out, "T"), p, got, M * K);
    expect_within(p, "tanh of a kept source", got, tw, M * K, BOUND[p]);
    tensor_values(fuse_outputs_find(out, "D"), p, got, M);
    expect_within(p, "sum of squares of a kept source", got, dw, M, BOUND[p]);
    fuse_outputs_free(out);
    /* a later run must bind W in the dtype the runner keeps */
    float wf[M * K];
    for (int i = 0; i < M * K; i++)
        wf[i] = (float)w[i];
    fuse_input other[2] = {{.name = "W",
                            .tensor = {.dtype = FUSE_F32, .rank = 2, .shape = {M, K}, .data = wf}},
                           in[1]};
    ck_assert_int_eq(fuse_runner_run(run, other, 2, &out), FUSE_E_ARG);
    ck_assert_msg(strstr(fuse_ctx_error(ctx), "keeps W as"), "%s", fuse_ctx_error(ctx));
    free(got);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(w), free(x);
}

START_TEST(bf16_source_kept_in_fp32_and_fp64)
{
    expect_kept_source(0, FUSE_BF16, false);
    expect_kept_source(1, FUSE_BF16, false);
    expect_kept_source(3, FUSE_BF16, false); /* bf16 data in an fp16 runner: kept, exact */
}
END_TEST

START_TEST(f16_source_kept_with_and_without_f16c)
{
    expect_kept_source(0, FUSE_F16, false);
    expect_kept_source(0, FUSE_F16, true);
    expect_kept_source(1, FUSE_F16, true);
    expect_kept_source(2, FUSE_F16, false); /* f16 data in a bf16 runner */
}
END_TEST

/* ---- rounding of 16-bit stores ---- */

/* x rounded to a binary float with `bits` significant bits, smallest normal
 * exponent emin and largest finite value max (ties to even), independently of
 * the library's conversions. */
static double round_to(double x, int bits, int emin, double max)
{
    if (isnan(x) || isinf(x) || x == 0)
        return x;
    int e;
    frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    int ulp = (e - 1 < emin ? emin : e - 1) - (bits - 1);
    double r = ldexp(nearbyint(ldexp(x, -ulp)), ulp); /* nearbyint: ties to even */
    return fabs(r) > max ? copysign(INFINITY, x) : r;
}

static double ref_half(double x) { return round_to(x, 11, -14, 65504); }
static double ref_bf16(double x) { return round_to(x, 8, -126, 0x1.FEp127); }

/* Products of 16-bit values (exact in float32) stored as 16 bits: every store
 * must round once to nearest even. Factors cover ties, overflow, subnormal
 * results, signed zeros, infinities and NaN. */
static void expect_rounded_products(int p, bool soft_half)
{
    enum { N = 4096 };
    float a[N], b[N];
    double *r = random_doubles(2 * N, 10);
    for (int i = 0; i < N; i++) { /* representable factors: widened 16-bit values */
        double scale = ldexp(1.0, (int)(r[i] * 12));
        double x = r[N + i] * scale, y = r[(i * 7) % N] * 3;
        a[i] = (float)(p == 2 ? ref_bf16(x) : ref_half(x));
        b[i] = (float)(p == 2 ? ref_bf16(y) : ref_half(y));
    }
    float special[][2] = {{300, 300},   {-300, 300},     {1e-3f, 1e-3f}, {6e-5f, 0.5f},
                          {0, -1},      {INFINITY, 2},   {NAN, 1},       {1.0009765625f, 1.0009765625f},
                          {65504, 1},   {2049, 1},       {2051, 1},      {257, 1}};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        a[i] = special[i][0], b[i] = special[i][1];
    fuse_input in[2] = {{.name = "A", .tensor = {.dtype = FUSE_F32, .rank = 1, .shape = {N}, .data = a}},
                        {.name = "B", .tensor = {.dtype = FUSE_F32, .rank = 1, .shape = {N}, .data = b}}};
    const char *prog = "A[i] = \"a.npy\"\nB[i] = \"b.npy\"\nC[i] = A[i] B[i]\nexport C\n";
    if (soft_half)
        setenv("FUSE_JIT_NO_F16C", "1", 1);
    double *got = run_as(p, prog, in, 2, FUSE_MODE_SINGLE, 0, "C", N);
    unsetenv("FUSE_JIT_NO_F16C");
    for (int i = 0; i < N; i++) {
        /* the sources themselves are rounded at bind time (2051 is no half) */
        double ai = p == 2 ? ref_bf16(a[i]) : ref_half(a[i]);
        double bi = p == 2 ? ref_bf16(b[i]) : ref_half(b[i]);
        double want = p == 2 ? ref_bf16(ai * bi) : ref_half(ai * bi);
        ck_assert_msg(got[i] == want || (isnan(got[i]) && isnan(want)),
                      "%s %g * %g: got %.10g, want %.10g", p == 2 ? "bf16" : "fp16", a[i], b[i],
                      got[i], want);
    }
    free(got), free(r);
}

START_TEST(bf16_stores_round_to_nearest_even)
{
    expect_rounded_products(2, false);
}
END_TEST

START_TEST(fp16_stores_round_to_nearest_even)
{
    expect_rounded_products(3, false);
}
END_TEST

/* The emitted IR of an fp16 product: half types with F16C, none without. */
static char *fp16_ir(bool no_f16c)
{
    if (no_f16c)
        setenv("FUSE_JIT_NO_F16C", "1", 1);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    unsetenv("FUSE_JIT_NO_F16C");
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i,k] = const([[1.5, 2], [3, 4]])\n"
                                                 "C[i,j] = A[i,k] A[k,j]\nexport C\n",
                                            "h.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.precision = FUSE_PRECISION_FP16;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_OK);
    char *ir = NULL;
    ck_assert_int_eq(fuse_runner_emit(run, "llvm", &ir), FUSE_OK);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return ir;
}

/* FUSE_JIT_NO_F16C forces the conversions a CPU without F16C needs (integer
 * ops, no half type, no libcall): the code differs and the results do not. */
START_TEST(fp16_fallback_without_f16c)
{
    char *hw = fp16_ir(false), *soft = fp16_ir(true);
    ck_assert_msg(strstr(soft, " half") == NULL, "the fallback still uses half:\n%s", soft);
    ck_assert_ptr_null(strstr(soft, "extendhfsf2"));
    ck_assert_ptr_null(strstr(soft, "truncsfhf2"));
    if (__builtin_cpu_supports("f16c")) /* the host has F16C: the other path */
        ck_assert_ptr_nonnull(strstr(hw, " half"));
    fuse_free(hw), fuse_free(soft);
    expect_rounded_products(3, true);
}
END_TEST

/* ---- files ---- */

/* --precision fp64 --out r.npz: members are <f8 with double-accurate values. */
START_TEST(cli_writes_f64_npz)
{
    enum { M = 20, K = 50, N = 30 };
    float a[M * K], b[K * N];
    fill_random(a, M * K, 11, -1, 1);
    fill_random(b, K * N, 12, -1, 1);
    write_npy("a.npy", 2, (int64_t[]){M, K}, a);
    write_npy("b.npy", 2, (int64_t[]){K, N}, b);
    write_text("p.fuse", "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\n"
                         "export C\n");
    Result r = run_cli("run", "p.fuse", "--precision", "fp64", "--out", "r.npz", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_npz_read(spath("r.npz"), "C", NULL, &t, &err), FUSE_OK);
    ck_assert_int_eq(t.dtype, FUSE_F64); /* the member's descr is '<f8' */
    double want[M * N], got[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)a[i * K + k] * b[k * N + j];
            want[i * N + j] = s;
            got[i * N + j] = ((const double *)t.data)[i * N + j];
        }
    free(t.data);
    expect_within(1, "fp64 .npz", got, want, M * N, 1e-12);
    r = run_cli("run", "p.fuse", "--precision", "fp8", NULL);
    expect_exit(&r, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--precision expects fp32, fp64, bf16 or fp16"));
    result_free(&r);
}
END_TEST

/* A .safetensors file of one tensor `x` of dtype dt (shape [n]) with `bytes`. */
static void write_safetensors(const char *name, const char *dt, int n, const void *bytes,
                              size_t nbytes)
{
    char header[256];
    int len = snprintf(header, sizeof header,
                       "{\"x\": {\"dtype\": \"%s\", \"shape\": [%d], \"data_offsets\": [0, %zu]}}",
                       dt, n, nbytes);
    unsigned char file[1024];
    uint64_t hl = (uint64_t)len;
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)(hl >> (8 * i)); /* little-endian length */
    memcpy(file + 8, header, (size_t)len);
    memcpy(file + 8 + len, bytes, nbytes); /* this host is little-endian (x86-64) */
    write_file(spath(name), file, 8 + (size_t)len + nbytes);
}

/* .safetensors F64 and BF16 sources keep every digit in fp64 and bf16. */
START_TEST(safetensors_sources_keep_their_digits)
{
    double x[3] = {1 + 1e-12, 0.1, -3.000000001};
    write_safetensors("x.safetensors", "F64", 3, x, sizeof x);
    write_text("p.fuse", "X[i] = \"x.safetensors\"\nY[i] = X[i] X[i]\nexport Y\n");
    Result r = run_cli("run", "p.fuse", "--precision", "fp64", "--out", "y.npy", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_npy_read(spath("y.npy"), &t, &err), FUSE_OK);
    ck_assert_int_eq(t.dtype, FUSE_F64);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(((double *)t.data)[i] == x[i] * x[i], "%.17g", ((double *)t.data)[i]);
    free(t.data);
    uint16_t b[3] = {0x3F81, 0xC2F7, 0x0001}; /* none is a float16 or a rounded float32 */
    write_safetensors("b.safetensors", "BF16", 3, b, sizeof b);
    write_text("q.fuse", "B[i] = \"b.safetensors\"\nC[i] = B[i]\nexport C\n");
    r = run_cli("run", "q.fuse", "--precision", "bf16", "--out", "c.npy", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    ck_assert_int_eq(io_npy_read(spath("c.npy"), &t, &err), FUSE_OK);
    ck_assert_int_eq(t.dtype, FUSE_F32); /* bf16 outputs are written as float32 */
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(((float *)t.data)[i], io_bf16_to_float(b[i]));
    free(t.data);
}
END_TEST

/* A .safetensors file of one tensor `x` of dtype dt and shape (m, n) with `bytes`. */
static void write_safetensors_2d(const char *name, const char *dt, int m, int n,
                                 const void *bytes, size_t nbytes)
{
    char header[256];
    int len = snprintf(header, sizeof header, "{\"x\": {\"dtype\": \"%s\", \"shape\": [%d, %d], "
                       "\"data_offsets\": [0, %zu]}}", dt, m, n, nbytes);
    size_t size = 8 + (size_t)len + nbytes;
    unsigned char *file = malloc(size);
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((uint64_t)len >> (8 * i)); /* little-endian length */
    memcpy(file + 8, header, (size_t)len);
    memcpy(file + 8 + len, bytes, nbytes); /* this host is little-endian (x86-64) */
    write_file(spath(name), file, size);
    free(file);
}

/* The exports C, T, E of the program below, run by an fp32 runner whose W and X
 * come from the files (inputs NULL) or from float32 inputs; *bytes: its buffers. */
static fuse_outputs *run_file_sources(const fuse_input *in, size_t n_in, uint64_t *bytes,
                                      fuse_ctx **ctx)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(*ctx, "W[i,k] = \"w.safetensors\"\n"
                                            "X[k,j] = \"x.npy\"\nC[i,j] = W[i,k] X[k,j]\n"
                                            "T[i,k] = tanh(W[i,k])\nE[k,j] = X[k,j] X[k,j]\n"
                                            "export C\nexport T\nexport E\n", "m.fuse", &prog),
                     FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    char *dir = strdup(spath("."));
    cfg.base_dir = dir;
    ck_assert_msg(fuse_runner_new(prog, &cfg, in, n_in, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(*ctx));
    fuse_timings tm = {.size = sizeof tm};
    ck_assert_int_eq(fuse_runner_timings(run, &tm), FUSE_OK);
    *bytes = tm.buffer_bytes;
    ck_assert_msg(fuse_runner_run(run, in, n_in, &out) == FUSE_OK, "%s", fuse_ctx_error(*ctx));
    fuse_runner_free(run);
    fuse_program_free(prog);
    free(dir);
    return out;
}

static void expect_same_export(const fuse_outputs *a, const fuse_outputs *b, const char *name,
                               int64_t n)
{
    const fuse_tensor *x = fuse_outputs_find(a, name), *y = fuse_outputs_find(b, name);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(((float *)x->data)[i] == ((float *)y->data)[i], "%s[%lld]: %.9g vs %.9g",
                      name, (long long)i, ((float *)x->data)[i], ((float *)y->data)[i]);
}

/* A bf16 .safetensors source and an <f2 .npy source stay 16-bit in an fp32
 * runner (2 bytes an element) and give exactly the results of float32 inputs
 * holding the same values (a product with edge tiles, tanh, a square). */
START_TEST(file_sources_kept_16bit)
{
    enum { M = 67, K = 129, N = 95 };
    double *w = random_doubles(M * K, 31), *x = random_doubles(K * N, 32);
    uint16_t *wb = malloc(2 * M * K), *xh = malloc(2 * K * N);
    float *wf = malloc(4 * M * K), *xf = malloc(4 * K * N);
    for (int i = 0; i < M * K; i++)
        wf[i] = io_bf16_to_float(wb[i] = io_float_to_bf16((float)w[i]));
    for (int i = 0; i < K * N; i++)
        xf[i] = io_half_to_float(xh[i] = io_float_to_half((float)x[i]));
    write_safetensors_2d("w.safetensors", "BF16", M, K, wb, 2 * M * K);
    fuse_tensor xt = {.dtype = FUSE_F16, .rank = 2, .shape = {K, N}, .data = xh};
    void *img = NULL;
    size_t len = 0;
    char *err = NULL;
    ck_assert_int_eq(io_npy_encode(&xt, &img, &len, &err), FUSE_OK);
    write_file(spath("x.npy"), img, len);
    free(img);
    NpyHeader h;
    ck_assert_int_eq(io_npy_probe(spath("x.npy"), &h, &err), FUSE_OK);
    ck_assert_int_eq(h.dtype, FUSE_F16); /* the file really is <f2 */
    fuse_input in[2] = {{.name = "W", .tensor = {.dtype = FUSE_F32, .rank = 2, .shape = {M, K},
                                                 .data = wf}},
                        {.name = "X", .tensor = {.dtype = FUSE_F32, .rank = 2, .shape = {K, N},
                                                 .data = xf}}};
    uint64_t kept_bytes = 0, f32_bytes = 0;
    fuse_ctx *c1 = NULL, *c2 = NULL;
    fuse_outputs *kept = run_file_sources(NULL, 0, &kept_bytes, &c1);
    fuse_outputs *conv = run_file_sources(in, 2, &f32_bytes, &c2);
    ck_assert_uint_eq(f32_bytes - kept_bytes, (uint64_t)(M * K + K * N) * 2);
    expect_same_export(kept, conv, "C", M * N);
    expect_same_export(kept, conv, "T", M * K);
    expect_same_export(kept, conv, "E", K * N);
    double c00 = 0; /* and the product is the product of the 16-bit values */
    for (int k = 0; k < K; k++)
        c00 += (double)wf[(M - 1) * K + k] * xf[k * N + N - 1];
    const fuse_tensor *c = fuse_outputs_find(kept, "C");
    ck_assert_double_eq_tol(((float *)c->data)[M * N - 1], c00, 1e-4);
    fuse_outputs_free(kept);
    fuse_outputs_free(conv);
    fuse_ctx_free(c1);
    fuse_ctx_free(c2);
    free(w), free(x), free(wb), free(xh), free(wf), free(xf);
}
END_TEST

/* The memory cap counts 8 bytes an element under fp64, 2 under bf16, and
 * names the element type. */
START_TEST(memory_cap_counts_the_element_size)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    double *a = random_doubles(512 * 512, 13);
    fuse_input in[1] = {f64_input("A", 2, (int64_t[]){512, 512}, a)};
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i,k] = \"a.npy\"\nC[i,j] = A[i,k] A[k,j]\n"
                                                 "export C\n", "m.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.precision = FUSE_PRECISION_FP64;
    cfg.max_memory = 3u << 20; /* two 2 MiB tensors do not fit */
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, in, 1, &run), FUSE_E_NOMEM);
    ck_assert_msg(strstr(fuse_ctx_error(ctx), "2 MiB [512, 512] float64"), "%s",
                  fuse_ctx_error(ctx));
    cfg.precision = FUSE_PRECISION_BF16; /* two of 512 KiB fit */
    ck_assert_msg(fuse_runner_new(prog, &cfg, in, 1, &run) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    fuse_timings tm = {.size = sizeof tm};
    ck_assert_int_eq(fuse_runner_timings(run, &tm), FUSE_OK);
    ck_assert_uint_ge(tm.buffer_bytes, 2u * 512 * 512 * 2);
    fuse_runner_free(run);
    /* not float32's bytes: the same runner under fp32 (no cap) plans 2 bytes
     * more an element of A and C; the packing scratch, sized by the caches of
     * the machine, is in both */
    cfg.precision = FUSE_PRECISION_FP32;
    cfg.max_memory = 0;
    ck_assert_msg(fuse_runner_new(prog, &cfg, in, 1, &run) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    fuse_timings t32 = {.size = sizeof t32};
    ck_assert_int_eq(fuse_runner_timings(run, &t32), FUSE_OK);
    ck_assert_uint_ge(t32.buffer_bytes, tm.buffer_bytes + 2u * 512 * 512 * 2);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(a);
}
END_TEST

/* A host op with no 16-bit or double path is refused by name, never run. */
START_TEST(unsupported_feature_is_refused)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, "X[i,j] = const([[1, 2], [3, 4]])\n"
                                                 "Y[i,j] = tucker_dense(X[i,j], rank=1)\n"
                                                 "export Y\n",
                                            "t.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.precision = FUSE_PRECISION_BF16;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "precision bf16 is not supported with "
                                                      "tucker_dense"));
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

static Suite *precision_suite(void)
{
    Suite *s = suite_create("precision");
    TCase *tc = harness_case("programs"); /* each loop test runs for fp32, fp64, bf16, fp16 */
    tcase_add_loop_test(tc, product_with_edge_tiles, 0, 4);
    tcase_add_loop_test(tc, batched_product, 0, 4);
    tcase_add_loop_test(tc, boolean_join_step, 0, 4);
    tcase_add_loop_test(tc, fixpoint_closure, 0, 4);
    tcase_add_loop_test(tc, softmax_rows, 0, 4);
    tcase_add_loop_test(tc, layer_norm_rows, 0, 4);
    tcase_add_loop_test(tc, elementwise_chain, 0, 4);
    tcase_add_loop_test(tc, streaming_steps, 0, 4);
    tcase_add_loop_test(tc, monte_carlo_projection, 0, 4);
    tcase_add_loop_test(tc, query_of_a_closure_row, 0, 4);
    tcase_add_loop_test(tc, run_into_the_runners_dtype, 0, 4);
    suite_add_tcase(s, tc);
    TCase *st = harness_case("storage");
    tcase_add_test(st, bf16_stores_round_to_nearest_even);
    tcase_add_test(st, fp16_stores_round_to_nearest_even);
    tcase_add_test(st, fp16_fallback_without_f16c);
    tcase_add_test(st, cli_writes_f64_npz);
    tcase_add_test(st, unsupported_feature_is_refused);
    tcase_add_test(st, safetensors_sources_keep_their_digits);
    tcase_add_test(st, file_sources_kept_16bit);
    tcase_add_test(st, memory_cap_counts_the_element_size);
    tcase_add_test(st, bf16_source_kept_in_fp32_and_fp64);
    tcase_add_test(st, f16_source_kept_with_and_without_f16c);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(precision_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
