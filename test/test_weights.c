/*
 * test_weights.c: weight manifests through the public API
 * (fuse_program_options.weights). A manifest entry replaces a source
 * statement's file, or supplies a tensor the program reads but never defines;
 * shards are concatenated along their axis, int8/uint8 data is dequantised as
 * (q - zero_point)·scale per tensor or per axis, and LoRA pairs are merged as
 * W + (alpha/rank)·up·down, or kept apart and joined by an equation. The expected values are computed here with naive
 * loops. Every malformed manifest is an error naming the entry and the key; an
 * entry the program does not use is a warning. Each test has its own scratch
 * directory (harness.c), where the .npy files are written with fuse_tensor_save.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fusejit.h"
#include "harness.h"
#include "io.h"

/* ---- helpers ---- */

static void save(fuse_dtype dt, const char *name, int rank, const int64_t *shape,
                 const void *data)
{
    fuse_tensor t = {.dtype = dt, .rank = rank, .data = (void *)data};
    memcpy(t.shape, shape, sizeof(int64_t) * (size_t)rank);
    ck_assert_int_eq(fuse_tensor_save(NULL, &t, spath(name)), FUSE_OK);
}

/* The log of a context, for warnings. */
typedef struct Log {
    char text[4096];
} Log;

static void collect(int level, const char *msg, void *user)
{
    Log *log = user;
    if (level == FUSE_LEVEL_WARNING)
        snprintf(log->text + strlen(log->text), sizeof log->text - strlen(log->text), "%s\n",
                 msg);
}

/* Checks program `text` (written as p.fuse) with manifest m.json; the status. */
static fuse_status open_program(fuse_ctx *ctx, const char *text, const char *manifest,
                                fuse_program **prog)
{
    write_text("p.fuse", text);
    write_text("m.json", manifest);
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.weights = spath("m.json");
    return fuse_program_from_file_opts(ctx, spath("p.fuse"), &o, prog);
}

/* Runs `text` with manifest m.json and returns a copy of export `name` (count
 * floats), failing the test on any error. */
static float *run_weights(const char *text, const char *manifest, const char *name,
                          int64_t count, Log *log)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    if (log)
        fuse_ctx_set_log(ctx, collect, log);
    ck_assert_msg(open_program(ctx, text, manifest, &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(prog, NULL, NULL, 0, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    for (int k = 0; k < 2; k++) { /* the second run reads the same weights */
        fuse_outputs_free(out);
        ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s",
                      fuse_ctx_error(ctx));
    }
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(t);
    float *copy = malloc(sizeof(float) * (size_t)count);
    memcpy(copy, t->data, sizeof(float) * (size_t)count);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return copy;
}

static void expect_floats(const char *what, const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i] || (got[i] - want[i] < 1e-5f && want[i] - got[i] < 1e-5f),
                      "%s[%lld]: got %g, want %g", what, (long long)i, got[i], want[i]);
}

/* Cell (i, j) of up . down (up m x r, down r x n), summed in double. */
static double up_down(const float *up, const float *down, int i, int j, int r, int n)
{
    double acc = 0;
    for (int k = 0; k < r; k++)
        acc += (double)up[i * r + k] * down[k * n + j];
    return acc;
}

/* The error (status and message) of checking text with the manifest. */
static void expect_manifest_error(const char *text, const char *manifest, fuse_status want,
                                  const char *msg)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    fuse_status st = open_program(ctx, text, manifest, &prog);
    ck_assert_msg(st == want, "status %d, want %d: %s", st, want, fuse_ctx_error(ctx));
    ck_assert_msg(strstr(fuse_ctx_error(ctx), msg), "want '%s' in '%s'", msg,
                  fuse_ctx_error(ctx));
    ck_assert_ptr_null(prog);
    fuse_ctx_free(ctx);
}

static const char READ_W[] = "Y[i,j] = 1.0 W[i,j]\nexport Y\n";

/* ---- entries ---- */

/* an entry replaces the source statement's file (which need not exist), and a
 * tensor read but never defined comes from the manifest */
START_TEST(file_entries)
{
    const float w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30};
    save(FUSE_F32, "w.npy", 2, (int64_t[]){2, 3}, w);
    ck_assert_int_eq(mkdir(spath("sub"), 0755), 0);
    save(FUSE_F32, "sub/b.npy", 1, (int64_t[]){3}, b);
    float *y = run_weights("W[i,j] = \"missing.npy\"\nY[i,j] = W[i,j] + B[j]\nexport Y\n",
                           "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"dtype\": \"float32\", "
                           "\"shape\": [2, 3]}, \"B\": {\"path\": \"sub/b.npy\"}}}",
                           "Y", 6, NULL);
    float want[6];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            want[3 * i + j] = w[3 * i + j] + b[j];
    expect_floats("Y", y, want, 6);
    free(y);
}
END_TEST

/* shards concatenated along axis 1 (and axis 0 by default) */
START_TEST(shards)
{
    const float a[4] = {1, 2, 3, 4}, b[6] = {5, 6, 7, 8, 9, 10};
    save(FUSE_F32, "a.npy", 2, (int64_t[]){2, 2}, a);
    save(FUSE_F32, "b.npy", 2, (int64_t[]){2, 3}, b);
    float *y = run_weights(READ_W, "{\"tensors\": {\"W\": {\"shards\": [\"a.npy\", \"b.npy\"], "
                                   "\"axis\": 1}}}", "Y", 10, NULL);
    float want[10];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++)
            want[5 * i + j] = j < 2 ? a[2 * i + j] : b[3 * i + j - 2];
    expect_floats("W", y, want, 10);
    free(y);
    const float c[3] = {11, 12, 13};
    save(FUSE_F32, "c.npy", 2, (int64_t[]){1, 3}, c);
    y = run_weights(READ_W, "{\"tensors\": {\"W\": {\"shards\": [\"b.npy\", \"c.npy\"]}}}", "Y",
                    9, NULL);
    float want0[9] = {5, 6, 7, 8, 9, 10, 11, 12, 13};
    expect_floats("W", y, want0, 9);
    free(y);
}
END_TEST

/* int8 per tensor; uint8 per axis with scales from a .npy file */
START_TEST(quantised)
{
    const int8_t q[6] = {-128, -3, 0, 5, 100, 127};
    save(FUSE_I8, "q.npy", 2, (int64_t[]){2, 3}, q);
    float *y = run_weights(READ_W, "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"dtype\": "
                                   "\"int8\", \"quant\": {\"scale\": 0.05, \"zero_point\": "
                                   "-3}}}}", "Y", 6, NULL);
    float want[6];
    for (int e = 0; e < 6; e++)
        want[e] = (float)(q[e] - -3) * 0.05f;
    expect_floats("per tensor", y, want, 6);
    free(y);

    const uint8_t u[6] = {0, 17, 255, 128, 3, 200};
    const float scale[3] = {0.5f, 0.25f, 2.0f};
    const int zp[3] = {128, 0, 7};
    save(FUSE_U8, "u.npy", 2, (int64_t[]){2, 3}, u);
    save(FUSE_F32, "s.npy", 1, (int64_t[]){3}, scale);
    y = run_weights(READ_W, "{\"tensors\": {\"W\": {\"path\": \"u.npy\", \"quant\": {\"scale\": "
                            "\"s.npy\", \"zero_point\": [128, 0, 7], \"axis\": -1}}}}", "Y", 6,
                    NULL);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            want[3 * i + j] = (float)(u[3 * i + j] - zp[j]) * scale[j];
    expect_floats("per axis", y, want, 6);
    free(y);
    y = run_weights(READ_W, "{\"tensors\": {\"W\": {\"path\": \"u.npy\", \"quant\": {\"scale\": "
                            "[0.5, 0.25], \"zero_point\": [1, 2], \"axis\": 0}}}}", "Y", 6, NULL);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            want[3 * i + j] = (float)(u[3 * i + j] - (i + 1)) * (i ? 0.25f : 0.5f);
    expect_floats("per row", y, want, 6);
    free(y);
}
END_TEST

/* ---- quantised weights kept int8/uint8 ---- */

enum { QM = 67, QK = 129, QN = 95, QR = 31 };

/* Y = W X and U = R W (W once as A, once as B of a product with edge tiles)
 * and E = W W elementwise, with W quantised from the manifest. */
static const char QUANT_PROGRAM[] = "X[k,j] = \"x.npy\"\nR[a,i] = \"r.npy\"\n"
                                    "Y[i,j] = W[i,k] X[k,j]\nU[a,k] = R[a,i] W[i,k]\n"
                                    "E[i,k] = W[i,k] W[i,k]\nexport Y\nexport U\nexport E\n";

/* One runner's view of QUANT_PROGRAM: its exports (Y, U, E), the bytes of its
 * buffers and the kernels its context compiled. */
typedef struct QuantRun {
    float *y, *u, *ev;
    uint64_t buffer_bytes, groups_compiled, groups_cached;
} QuantRun;

static float *export_copy(const fuse_outputs *out, const char *name, int64_t n)
{
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, FUSE_F32);
    float *c = malloc(sizeof *c * (size_t)n);
    memcpy(c, t->data, sizeof *c * (size_t)n);
    return c;
}

/* Runs QUANT_PROGRAM with `manifest` in ctx twice (the second run must give the
 * same bits); `dequantise` sets FUSE_JIT_DEQUANTISE (the load-time path). */
static QuantRun run_quant(fuse_ctx *ctx, const char *manifest, bool dequantise)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out[2] = {NULL, NULL};
    ck_assert_msg(open_program(ctx, QUANT_PROGRAM, manifest, &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    if (dequantise)
        setenv("FUSE_JIT_DEQUANTISE", "1", 1);
    fuse_status st = fuse_runner_new(prog, NULL, NULL, 0, &run);
    unsetenv("FUSE_JIT_DEQUANTISE");
    ck_assert_msg(st == FUSE_OK, "%s", fuse_ctx_error(ctx));
    for (int k = 0; k < 2; k++)
        ck_assert_msg(fuse_runner_run(run, NULL, 0, &out[k]) == FUSE_OK, "%s",
                      fuse_ctx_error(ctx));
    QuantRun r = {.y = export_copy(out[0], "Y", QM * QN), .u = export_copy(out[0], "U", QR * QK),
                  .ev = export_copy(out[0], "E", QM * QK)};
    const char *names[3] = {"Y", "U", "E"};
    for (int i = 0; i < 3; i++) {
        const fuse_tensor *a = fuse_outputs_find(out[0], names[i]);
        const fuse_tensor *b = fuse_outputs_find(out[1], names[i]);
        int64_t n = a->rank == 2 ? a->shape[0] * a->shape[1] : 0;
        ck_assert_msg(memcmp(a->data, b->data, sizeof(float) * (size_t)n) == 0,
                      "second run of %s differs", names[i]);
    }
    fuse_timings tm = {.size = sizeof tm};
    ck_assert_int_eq(fuse_runner_timings(run, &tm), FUSE_OK);
    r.buffer_bytes = tm.buffer_bytes;
    fuse_stats stats = {.size = sizeof stats};
    ck_assert_int_eq(fuse_ctx_stats(ctx, &stats), FUSE_OK);
    r.groups_compiled = stats.groups_compiled;
    r.groups_cached = stats.groups_cached;
    fuse_outputs_free(out[0]);
    fuse_outputs_free(out[1]);
    fuse_runner_free(run);
    fuse_program_free(prog);
    return r;
}

static void quant_run_free(QuantRun *r)
{
    free(r->y), free(r->u), free(r->ev);
}

/* The exports against naive double loops of w = (q - zp[pos]) * scale[pos]. */
static void expect_quant_values(const QuantRun *r, const double *w, const float *x,
                                const float *rr)
{
    for (int i = 0; i < QM; i++)
        for (int j = 0; j < QN; j++) {
            double acc = 0;
            for (int k = 0; k < QK; k++)
                acc += w[i * QK + k] * x[k * QN + j];
            ck_assert_msg(fabs(r->y[i * QN + j] - acc) <= 1e-4 * (1 + fabs(acc)),
                          "Y[%d,%d] = %.9g, want %.9g", i, j, r->y[i * QN + j], acc);
        }
    for (int a = 0; a < QR; a++)
        for (int k = 0; k < QK; k++) {
            double acc = 0;
            for (int i = 0; i < QM; i++)
                acc += rr[a * QM + i] * w[i * QK + k];
            ck_assert_msg(fabs(r->u[a * QK + k] - acc) <= 1e-4 * (1 + fabs(acc)),
                          "U[%d,%d] = %.9g, want %.9g", a, k, r->u[a * QK + k], acc);
        }
    for (int e = 0; e < QM * QK; e++)
        ck_assert_msg(fabs(r->ev[e] - w[e] * w[e]) <= 1e-5 * (1 + w[e] * w[e]),
                      "E[%d] = %.9g, want %.9g", e, r->ev[e], w[e] * w[e]);
}

static void expect_same_bits(const QuantRun *a, const QuantRun *b)
{
    ck_assert(memcmp(a->y, b->y, sizeof(float) * QM * QN) == 0);
    ck_assert(memcmp(a->u, b->u, sizeof(float) * QR * QK) == 0);
    ck_assert(memcmp(a->ev, b->ev, sizeof(float) * QM * QK) == 0);
}

/* One case: W's data (q8 int8 or u8 uint8) with scales and zero points per
 * `axis` (-1 per tensor; n of each), written to the manifest as lists. */
typedef struct QuantCase {
    bool is_signed;
    int axis;    /* the manifest's quant.axis: 0, 1 or -1 (per axis, the last); 2: none */
    double scale[QK], zp[QK];
    int n;
} QuantCase;

static char *quant_manifest(const QuantCase *c)
{
    char *m = malloc(16384);
    int at = snprintf(m, 16384, "{\"tensors\": {\"W\": {\"path\": \"%s\", \"quant\": {\"scale\": [",
                      c->is_signed ? "q.npy" : "u.npy");
    for (int i = 0; i < c->n; i++)
        at += snprintf(m + at, (size_t)(16384 - at), "%s%.9g", i ? ", " : "", c->scale[i]);
    at += snprintf(m + at, (size_t)(16384 - at), "], \"zero_point\": [");
    for (int i = 0; i < c->n; i++)
        at += snprintf(m + at, (size_t)(16384 - at), "%s%d", i ? ", " : "", (int)c->zp[i]);
    if (c->axis == 2)
        snprintf(m + at, (size_t)(16384 - at), "]}}}}");
    else
        snprintf(m + at, (size_t)(16384 - at), "], \"axis\": %d}}}}", c->axis);
    return m;
}

/* W's values by the formula, in double; pos from the element's row or column. */
static void quant_reference(const QuantCase *c, const int8_t *q8, const uint8_t *u8, double *w)
{
    for (int i = 0; i < QM; i++)
        for (int k = 0; k < QK; k++) {
            int pos = c->n == 1 ? 0 : c->axis == 0 ? i : k;
            double q = c->is_signed ? q8[i * QK + k] : u8[i * QK + k];
            w[i * QK + k] = (q - c->zp[pos]) * (double)(float)c->scale[pos];
        }
}

/* The case kept int8/uint8: the formula's values, the bits of the load-time
 * dequantisation, 1 byte an element (plus the tables) instead of 4. */
static void expect_quant_case(const QuantCase *c, const int8_t *q8, const uint8_t *u8,
                              const float *x, const float *rr)
{
    double *w = malloc(sizeof *w * QM * QK);
    quant_reference(c, q8, u8, w);
    char *m = quant_manifest(c);
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    QuantRun kept = run_quant(ctx, m, false), at_load = run_quant(ctx, m, true);
    expect_quant_values(&kept, w, x, rr);
    expect_same_bits(&kept, &at_load);
    int64_t dim = c->n, table = (QM * QK + 63) / 64 * 64 + 8 * dim;
    ck_assert_uint_eq(at_load.buffer_bytes - kept.buffer_bytes, (uint64_t)(4 * QM * QK - table));
    quant_run_free(&kept);
    quant_run_free(&at_load);
    fuse_ctx_free(ctx);
    free(m);
    free(w);
}

START_TEST(quantised_kept_in_kernels)
{
    int8_t *q8 = malloc(QM * QK);
    uint8_t *u8 = malloc(QM * QK);
    float *x = malloc(sizeof *x * QK * QN), *rr = malloc(sizeof *rr * QR * QM);
    for (int e = 0; e < QM * QK; e++) {
        q8[e] = (int8_t)((e * 37 + 11) % 256 - 128);
        u8[e] = (uint8_t)((e * 53 + 7) % 256);
    }
    fill_random(x, QK * QN, 3, -1, 1);
    fill_random(rr, QR * QM, 4, -1, 1);
    save(FUSE_I8, "q.npy", 2, (int64_t[]){QM, QK}, q8);
    save(FUSE_U8, "u.npy", 2, (int64_t[]){QM, QK}, u8);
    write_npy("x.npy", 2, (int64_t[]){QK, QN}, x);
    write_npy("r.npy", 2, (int64_t[]){QR, QM}, rr);
    QuantCase c = {.is_signed = true, .axis = 2, .scale = {0.0123}, .zp = {-5}, .n = 1};
    expect_quant_case(&c, q8, u8, x, rr); /* int8, per tensor */
    c = (QuantCase){.is_signed = false, .axis = 0, .n = QM};
    for (int i = 0; i < QM; i++)
        c.scale[i] = 0.001 * (i + 1), c.zp[i] = (i * 7) % 256;
    expect_quant_case(&c, q8, u8, x, rr); /* uint8, per row */
    c = (QuantCase){.is_signed = false, .axis = -1, .n = QK};
    for (int k = 0; k < QK; k++)
        c.scale[k] = 0.02 / (k + 1), c.zp[k] = (k * 3) % 256;
    expect_quant_case(&c, q8, u8, x, rr); /* uint8, per column */
    free(q8), free(u8), free(x), free(rr);
}
END_TEST

/* A 3-axis weight whose product's lanes run across its last two axes, so a
 * panel row crosses positions of the quantisation axis (axis 2: wrapping
 * every 3 lanes, so a panel's first and last lanes may share a position while
 * the others do not; axis 1: a new position every 3 lanes). */
START_TEST(quantised_panels_cross_positions)
{
    enum { B = 64, K = 96, I = 8, J = 3 };
    static int8_t q[K * I * J];
    static float x[B * K];
    for (int e = 0; e < K * I * J; e++)
        q[e] = (int8_t)((e * 29 + 3) % 255 - 127);
    fill_random(x, B * K, 9, -1, 1);
    save(FUSE_I8, "q3.npy", 3, (int64_t[]){K, I, J}, q);
    write_npy("x3.npy", 2, (int64_t[]){B, K}, x);
    const char *text = "X[b,k] = \"x3.npy\"\nY[b,i,j] = X[b,k] W[k,i,j]\nexport Y\n";
    const char *manifests[2] = {
        "{\"tensors\": {\"W\": {\"path\": \"q3.npy\", \"quant\": {\"scale\": [0.5, 0.125, 2], "
        "\"zero_point\": [3, -2, 1], \"axis\": 2}}}}",
        "{\"tensors\": {\"W\": {\"path\": \"q3.npy\", \"quant\": {\"scale\": [1, 2, 3, 4, 5, 6, 7, "
        "8], \"zero_point\": [0, 1, 2, 3, 4, 5, 6, 7], \"axis\": 1}}}}"};
    const double sc[2][8] = {{0.5, 0.125, 2}, {1, 2, 3, 4, 5, 6, 7, 8}};
    const double zp[2][8] = {{3, -2, 1}, {0, 1, 2, 3, 4, 5, 6, 7}};
    for (int m = 0; m < 2; m++) {
        float *y = run_weights(text, manifests[m], "Y", B * I * J, NULL);
        for (int b = 0; b < B; b++)
            for (int c = 0; c < I * J; c++) {
                int pos = m == 0 ? c % J : c / J;
                double acc = 0, mag = 0; /* float32 sums err by their terms' size */
                for (int k = 0; k < K; k++) {
                    double term = x[b * K + k] * ((q[k * I * J + c] - zp[m][pos]) * sc[m][pos]);
                    acc += term;
                    mag += fabs(term);
                }
                ck_assert_msg(fabs(y[b * I * J + c] - acc) <= 1e-5 * mag + 1e-6,
                              "axis %d: Y[%d,%d] = %.9g, want %.9g", m ? 1 : 2, b, c,
                              y[b * I * J + c], acc);
            }
        free(y);
    }
}
END_TEST

/* Other scales and zero points are data, not code: a second manifest reuses
 * every compiled kernel and gives its own values. */
START_TEST(quantised_scales_do_not_change_code)
{
    int8_t *q8 = malloc(QM * QK);
    float *x = malloc(sizeof *x * QK * QN), *rr = malloc(sizeof *rr * QR * QM);
    for (int e = 0; e < QM * QK; e++)
        q8[e] = (int8_t)((e * 91 + 5) % 256 - 128);
    fill_random(x, QK * QN, 5, -1, 1);
    fill_random(rr, QR * QM, 6, -1, 1);
    save(FUSE_I8, "q.npy", 2, (int64_t[]){QM, QK}, q8);
    write_npy("x.npy", 2, (int64_t[]){QK, QN}, x);
    write_npy("r.npy", 2, (int64_t[]){QR, QM}, rr);
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    QuantCase a = {.is_signed = true, .axis = 0, .n = QM}, b = a;
    for (int i = 0; i < QM; i++) {
        a.scale[i] = 0.01 + 0.0001 * i, a.zp[i] = i % 5;
        b.scale[i] = 0.3 / (i + 2), b.zp[i] = -(i % 7);
    }
    char *ma = quant_manifest(&a), *mb = quant_manifest(&b);
    QuantRun ra = run_quant(ctx, ma, false), rb = run_quant(ctx, mb, false);
    /* (ra's kernels may come from an earlier test's disk cache) */
    ck_assert_uint_eq(rb.groups_compiled, ra.groups_compiled); /* nothing compiled again */
    ck_assert_uint_gt(rb.groups_cached, ra.groups_cached);     /* but taken from the cache */
    double *w = malloc(sizeof *w * QM * QK);
    quant_reference(&a, q8, NULL, w);
    expect_quant_values(&ra, w, x, rr);
    quant_reference(&b, q8, NULL, w);
    expect_quant_values(&rb, w, x, rr);
    quant_run_free(&ra);
    quant_run_free(&rb);
    fuse_ctx_free(ctx);
    free(ma), free(mb), free(w), free(q8), free(x), free(rr);
}
END_TEST

/* A host input cannot replace a weight the runner keeps quantised, and a
 * query of it is refused: its buffer holds int8 data. */
START_TEST(quantised_weight_is_not_an_input)
{
    const int8_t q[6] = {1, 2, 3, 4, 5, 6};
    save(FUSE_I8, "q.npy", 2, (int64_t[]){2, 3}, q);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(open_program(ctx, READ_W, "{\"tensors\": {\"W\": {\"path\": \"q.npy\", "
                                  "\"quant\": {\"scale\": 0.5}}}}", &prog), FUSE_OK);
    ck_assert_msg(fuse_runner_new(prog, NULL, NULL, 0, &run) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    float w[6] = {0};
    fuse_input in = {.name = "W", .tensor = {.dtype = FUSE_F32, .rank = 2, .shape = {2, 3},
                                             .data = w}};
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, &in, 1, &out), FUSE_E_ARG);
    ck_assert_msg(strstr(fuse_ctx_error(ctx), "quantised"), "%s", fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const fuse_tensor *y = fuse_outputs_find(out, "Y");
    for (int e = 0; e < 6; e++)
        ck_assert_float_eq(((float *)y->data)[e], (float)q[e] * 0.5f);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* The buffer bytes of a runner of text with manifest m.json, and export `name`
 * (count floats) into got. */
static uint64_t run_bytes(const char *text, const char *manifest, const char *name,
                          int64_t count, float *got)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_msg(open_program(ctx, text, manifest, &prog) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(prog, NULL, NULL, 0, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    memcpy(got, fuse_outputs_find(out, name)->data, sizeof(float) * (size_t)count);
    fuse_timings tm = {.size = sizeof tm};
    ck_assert_int_eq(fuse_runner_timings(run, &tm), FUSE_OK);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return tm.buffer_bytes;
}

/* A float16 entry stays 2 bytes an element and gives the results of the same
 * values given as float32 (a product and an elementwise op). */
START_TEST(f16_entry_kept)
{
    enum { M = 40, K = 70, N = 9 };
    uint16_t h[M * K];
    float wf[M * K], x[K * N], got[M * N + M * K], want[M * N + M * K];
    fill_random(x, K * N, 8, -1, 1);
    for (int e = 0; e < M * K; e++) {
        h[e] = (uint16_t)(0x3000 + (e * 97) % 0x1000 + (e % 2 ? 0x8000 : 0));
        wf[e] = io_half_to_float(h[e]);
    }
    save(FUSE_F16, "h.npy", 2, (int64_t[]){M, K}, h);
    save(FUSE_F32, "f.npy", 2, (int64_t[]){M, K}, wf);
    write_npy("x.npy", 2, (int64_t[]){K, N}, x);
    const char *text = "X[k,j] = \"x.npy\"\nP[i,j] = W[i,k] X[k,j]\nT[i,k] = tanh(W[i,k])\n"
                       "export P\nexport T\n";
    uint64_t kept = run_bytes(text, "{\"tensors\": {\"W\": {\"path\": \"h.npy\"}}}", "P", M * N,
                              got);
    run_bytes(text, "{\"tensors\": {\"W\": {\"path\": \"h.npy\"}}}", "T", M * K, got + M * N);
    uint64_t wide = run_bytes(text, "{\"tensors\": {\"W\": {\"path\": \"f.npy\"}}}", "P", M * N,
                              want);
    run_bytes(text, "{\"tensors\": {\"W\": {\"path\": \"f.npy\"}}}", "T", M * K, want + M * N);
    ck_assert_uint_eq(wide - kept, 2u * M * K);
    ck_assert(memcmp(got, want, sizeof got) == 0);
    for (int j = 0; j < N; j++) { /* and P is the product of the half values */
        double acc = 0;
        for (int k = 0; k < K; k++)
            acc += (double)wf[k] * x[k * N + j];
        ck_assert_double_eq_tol(got[j], acc, 1e-4);
    }
}
END_TEST

/* W + (alpha/rank) up·down, merged at load */
START_TEST(lora_merged)
{
    enum { M = 3, N = 4, R = 2 };
    float base[M * N], up[M * R], down[R * N];
    fill_random(base, M * N, 1, -1, 1);
    fill_random(up, M * R, 2, -1, 1);
    fill_random(down, R * N, 3, -1, 1);
    save(FUSE_F32, "base.npy", 2, (int64_t[]){M, N}, base);
    save(FUSE_F32, "up.npy", 2, (int64_t[]){M, R}, up);
    save(FUSE_F32, "down.npy", 2, (int64_t[]){R, N}, down);
    float *y = run_weights(READ_W, "{\"tensors\": {\"W\": {\"path\": \"base.npy\", \"lora\": "
                                   "{\"up\": \"up.npy\", \"down\": \"down.npy\", \"alpha\": 16, "
                                   "\"rank\": 2, \"merge\": true}}}}", "Y", M * N, NULL);
    float want[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = up_down(up, down, i, j, R, N);
            want[i * N + j] = (float)(base[i * N + j] + 16.0 / R * acc);
        }
    expect_floats("W", y, want, M * N);
    free(y);
}
END_TEST

/* merge false: the pair stays apart, joined by an equation at every run, over
 * a quantised base; the same values as merging */
START_TEST(lora_kept_apart)
{
    enum { M = 2, N = 3, R = 2 };
    const int8_t q[M * N] = {-5, 0, 7, 100, -100, 3};
    float up[M * R], down[R * N];
    fill_random(up, M * R, 4, -1, 1);
    fill_random(down, R * N, 5, -1, 1);
    save(FUSE_I8, "q.npy", 2, (int64_t[]){M, N}, q);
    save(FUSE_F32, "up.npy", 2, (int64_t[]){M, R}, up);
    save(FUSE_F32, "down.npy", 2, (int64_t[]){R, N}, down);
    float want[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = up_down(up, down, i, j, R, N);
            want[i * N + j] = (float)((float)(q[i * N + j] - 1) * 0.25f + 4.0 / R * acc);
        }
    for (int merge = 0; merge < 2; merge++) {
        char manifest[512];
        snprintf(manifest, sizeof manifest,
                 "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"quant\": {\"scale\": 0.25, "
                 "\"zero_point\": 1}, \"lora\": {\"up\": \"up.npy\", \"down\": \"down.npy\", "
                 "\"alpha\": 4, \"merge\": %s}}}}", merge ? "true" : "false");
        float *y = run_weights(READ_W, manifest, "Y", M * N, NULL); /* W read, not defined */
        expect_floats(merge ? "merged" : "apart", y, want, M * N);
        free(y);
        y = run_weights("W[i,j] = \"gone.npy\"\nY[i,j] = 1.0 W[i,j]\nexport Y\n", manifest, "Y",
                        M * N, NULL); /* W a source statement */
        expect_floats(merge ? "merged source" : "apart source", y, want, M * N);
        free(y);
    }
}
END_TEST

/* merge false where W is a factor of a product: the read becomes two joins (base,
 * then up and down) and W is never built; a read inside a call still gets W's
 * defining equation. Y = 2 X W, Z = relu(W), W = base + (alpha/rank) up down. */
START_TEST(lora_apart_as_two_joins)
{
    enum { B = 3, M = 5, N = 4, R = 2 };
    float x[B * M], base[M * N], up[M * R], down[R * N];
    fill_random(x, B * M, 6, -1, 1);
    fill_random(base, M * N, 7, -1, 1);
    fill_random(up, M * R, 8, -1, 1);
    fill_random(down, R * N, 9, -1, 1);
    save(FUSE_F32, "x.npy", 2, (int64_t[]){B, M}, x);
    save(FUSE_F32, "base.npy", 2, (int64_t[]){M, N}, base);
    save(FUSE_F32, "up.npy", 2, (int64_t[]){M, R}, up);
    save(FUSE_F32, "down.npy", 2, (int64_t[]){R, N}, down);
    double w[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = up_down(up, down, i, j, R, N);
            w[i * N + j] = base[i * N + j] + 4.0 / R * acc;
        }
    float want_y[B * N], want_z[M * N];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int i = 0; i < M; i++)
                acc += (double)x[b * M + i] * w[i * N + j];
            want_y[b * N + j] = (float)(2 * acc);
        }
    for (int i = 0; i < M * N; i++)
        want_z[i] = (float)(w[i] > 0 ? w[i] : 0);
    const char *manifest = "{\"tensors\": {\"X\": {\"path\": \"x.npy\"}, \"W\": {\"path\": "
                           "\"base.npy\", \"lora\": {\"up\": \"up.npy\", \"down\": \"down.npy\", "
                           "\"alpha\": 4, \"rank\": 2, \"merge\": false}}}}";
    const char *products = "Y[b,j] = 2 X[b,i] W[i,j]\nexport Y\n";
    const char *with_call = "Y[b,j] = 2 X[b,i] W[i,j]\nZ[i,j] = relu(W[i,j])\nexport Y\nexport Z\n";
    float *y = run_weights(products, manifest, "Y", B * N, NULL);
    expect_floats("Y (two joins)", y, want_y, B * N);
    free(y);
    y = run_weights(with_call, manifest, "Y", B * N, NULL);
    expect_floats("Y (beside a call)", y, want_y, B * N);
    free(y);
    float *z = run_weights(with_call, manifest, "Z", M * N, NULL);
    expect_floats("Z", z, want_z, M * N);
    free(z);

    /* explain: W is defined only when a read needs it */
    for (int k = 0; k < 2; k++) {
        fuse_ctx *ctx = NULL;
        fuse_program *prog = NULL;
        char *text = NULL;
        ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
        ck_assert_int_eq(open_program(ctx, k ? with_call : products, manifest, &prog), FUSE_OK);
        ck_assert_int_eq(fuse_program_explain(prog, 0, &text), FUSE_OK);
        ck_assert_msg(strstr(text, "Y[b,j] = 2 X[b,i] W[i,j]   # W = W.lora_base + 2 W.lora_up "
                                   "W.lora_down, kept apart"), "%s", text);
        bool is_defined = strstr(text, "W[i,j] = W.lora_base[i,j] + 2 W.lora_up[i,lora_r] "
                                       "W.lora_down[lora_r,j]") != NULL;
        ck_assert_msg(is_defined == (k == 1), "%s", text);
        free(text);
        fuse_program_free(prog);
        fuse_ctx_free(ctx);
    }
}
END_TEST

/* an entry the program does not use is a warning; the host's own input wins */
START_TEST(unused_entries_and_host_inputs)
{
    const float w[2] = {1, 2};
    save(FUSE_F32, "w.npy", 1, (int64_t[]){2}, w);
    Log log = {{0}};
    float *y = run_weights("W[i] = \"w.npy\"\nY[i] = 3 W[i]\nexport Y\n",
                           "{\"tensors\": {\"W\": {\"path\": \"w.npy\"}, \"Nope\": {\"path\": "
                           "\"w.npy\"}, \"Y\": {\"path\": \"w.npy\"}}}", "Y", 2, &log);
    const float want[2] = {3, 6};
    expect_floats("Y", y, want, 2);
    free(y);
    ck_assert_msg(strstr(log.text, "m.json: tensor 'Nope' is not used by the program\n"), "%s",
                  log.text);
    ck_assert_msg(strstr(log.text, "m.json: tensor 'Y' is computed by the program's equations; "
                                   "the manifest's entry is not used\n"), "%s", log.text);

    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(open_program(ctx, "Y[i] = 3 W[i]\nexport Y\n",
                                  "{\"tensors\": {\"W\": {\"path\": \"w.npy\"}}}", &prog),
                     FUSE_OK);
    float host[3] = {7, 8, 9};
    fuse_input in = {.name = "W", .tensor = {.dtype = FUSE_F32, .rank = 1, .shape = {3},
                                             .data = host}};
    ck_assert_msg(fuse_runner_new(prog, NULL, &in, 1, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_int_eq(fuse_runner_run(run, &in, 1, &out), FUSE_OK);
    const fuse_tensor *t = fuse_outputs_find(out, "Y");
    ck_assert_int_eq(t->shape[0], 3);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(((const float *)t->data)[i], 3 * host[i]);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* an older host's options (without the weights field) still work */
START_TEST(options_of_an_older_host)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    struct {
        fuse_program_options o;
        char pad[64];
    } host;
    memset(&host, 0, sizeof host);
    size_t old = offsetof(fuse_program_options, n_params) + sizeof(size_t);
    fuse_program_options_init_size(&host.o, old);
    host.o.weights = "garbage, never read";
    host.o.size = old;
    ck_assert_msg(fuse_program_from_text_opts(ctx, "A[i] = const([1])\nexport A\n", "a.fuse",
                                              &host.o, &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- malformed manifests ---- */

START_TEST(malformed_manifests)
{
    const float w[6] = {0}, s2[2] = {1, 1};
    const int8_t q[6] = {0};
    save(FUSE_F32, "w.npy", 2, (int64_t[]){2, 3}, w);
    save(FUSE_F32, "w13.npy", 2, (int64_t[]){1, 2}, w);
    save(FUSE_F32, "s2.npy", 1, (int64_t[]){2}, s2);
    save(FUSE_I8, "q.npy", 2, (int64_t[]){2, 3}, q);
    save(FUSE_F32, "up.npy", 2, (int64_t[]){2, 2}, w);
    save(FUSE_F32, "down.npy", 2, (int64_t[]){2, 3}, w);
    enum { IO = FUSE_E_IO };
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"nope.npy\"}}}", IO,
                          "error: weights ");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"nope.npy\"}}}", IO,
                          "m.json: tensors.W.path: ");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\",}}}", IO,
                          "m.json:1:36: not JSON: string or '}' expected near '}'");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"scale\": 2}}}",
                          IO, "m.json: tensors.W.scale: unknown key (known: path, shards, axis, "
                          "dtype, shape, quant, lora)");
    expect_manifest_error(READ_W, "{\"tensors\": {}, \"version\": 2}", IO,
                          "m.json: unknown key 'version'");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"shards\": [\"w.npy\", \"w13.npy\"], "
                                  "\"axis\": 0}}}", IO,
                          "m.json: tensors.W.shards: shard 1 (w13.npy) has shape (1, 2), which "
                          "does not add up with shard 0 (w.npy) of shape (2, 3) along axis 0");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"dtype\": "
                                  "\"float99\"}}}", IO,
                          "m.json: tensors.W.dtype: unknown dtype 'float99'");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"dtype\": "
                                  "\"int8\"}}}", IO,
                          "m.json: tensors.W.dtype: says int8, but the file holds float32");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"shape\": "
                                  "[3, 2]}}}", IO,
                          "m.json: tensors.W.shape: says [3,2], but the tensor has shape (2, 3)");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"quant\": "
                                  "{\"scale\": [1, 2], \"axis\": 1}}}}", IO,
                          "m.json: tensors.W.quant.scale: has 2 values, but axis 1 of the "
                          "tensor has 3 positions");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"quant\": "
                                  "{\"scale\": \"s2.npy\", \"axis\": 1}}}}", IO,
                          "m.json: tensors.W.quant.scale: has 2 values, but axis 1 of the "
                          "tensor has 3 positions");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"quant\": "
                                  "{\"scale\": [1, 2, 3]}}}}", IO,
                          "m.json: tensors.W.quant.scale: has 3 values, but quant.axis is not "
                          "given");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"quant\": "
                                  "{\"scale\": 1, \"zero_point\": 128}}}}", IO,
                          "m.json: tensors.W.quant.zero_point: value 128 is out of range for "
                          "int8 data (an integer from -128 to 127)");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"quant\": "
                                  "{\"scale\": 1}}}}", IO,
                          "m.json: tensors.W.quant: needs int8 or uint8 data, but the file "
                          "holds float32");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"lora\": "
                                  "{\"up\": \"up.npy\", \"down\": \"down.npy\", \"rank\": 8}}}}",
                          IO, "m.json: tensors.W.lora.rank: says 8, but up (2, 2) and down "
                          "(2, 3) have rank 2");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"lora\": "
                                  "{\"up\": \"down.npy\", \"down\": \"down.npy\"}}}}", IO,
                          "m.json: tensors.W.lora: up (2, 3) and down (2, 3) do not make the "
                          "shape of the tensor (2, 3)");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {\"path\": \"w.npy\", \"lora\": "
                                  "{\"up\": \"up.npy\", \"down\": \"down.npy\", \"merge\": "
                                  "1}}}}", IO, "m.json: tensors.W.lora.merge: must be true or "
                                               "false");
    expect_manifest_error(READ_W, "{\"tensors\": {\"W\": {}}}", IO,
                          "m.json: tensors.W: needs \"path\" (a file) or \"shards\"");
    expect_manifest_error(READ_W, "[1, 2]", IO, "m.json: a manifest is an object");
    /* the program reads W with another rank than the manifest gives it */
    expect_manifest_error("Y[i] = W[i]\nexport Y\n",
                          "{\"tensors\": {\"W\": {\"path\": \"w.npy\"}}}", FUSE_E_SHAPE,
                          "'W' has rank 2 but is indexed with 1 axes");
}
END_TEST

/* ---- the command line ---- */

START_TEST(cli_weights)
{
    const int8_t q[4] = {-10, 0, 10, 20};
    save(FUSE_I8, "q.npy", 1, (int64_t[]){4}, q);
    write_text("p.fuse", "Y[i] = 2 Q[i]\nexport Y\n");
    write_text("m.json", "{\"tensors\": {\"Q\": {\"path\": \"q.npy\", \"quant\": {\"scale\": "
                         "0.5, \"zero_point\": 10}}, \"Extra\": {\"path\": \"q.npy\"}}}");
    Result r = run_cli("run", "p.fuse", "--weights", "m.json", "--out", "y.npy", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.err, "fuse-jit: warning: weights m.json: tensor 'Extra' is not used "
                                "by the program\n"), "%s", r.err);
    result_free(&r);
    float *y = read_npy("y.npy", 1, (int64_t[]){4});
    double want[4];
    for (int i = 0; i < 4; i++)
        want[i] = 2 * ((float)(q[i] - 10) * 0.5f);
    expect_close("Y", y, want, 4);
    free(y);
    r = run_cli("check", "p.fuse", "--weights", "m.json", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.out, "p.fuse: ok\n");
    result_free(&r);
    r = run_cli("check", "p.fuse", NULL); /* without the manifest Q is unknown */
    expect_exit(&r, 3);
    result_free(&r);
    r = run_cli("check", "p.fuse", "--weights", "absent.json", NULL);
    expect_exit(&r, 1);
    ck_assert_msg(strstr(r.err, "fuse-jit: error: weights absent.json: cannot read the "
                                "manifest: "), "%s", r.err);
    result_free(&r);
    write_text("bad.json", "{\"tensors\": {\"Q\": {\"path\": \"q.npy\", \"quant\": {\"scale\": "
                           "0.5, \"zero_point\": 1.5}}}}");
    r = run_cli("run", "p.fuse", "--weights", "bad.json", NULL);
    expect_exit(&r, 1);
    ck_assert_msg(strstr(r.err, "fuse-jit: error: weights bad.json: tensors.Q.quant.zero_point: "
                                "value 1.5 is out of range for int8 data"), "%s", r.err);
    result_free(&r);
    r = run_cli("explain", "p.fuse", "--weights", "m.json", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "Q[i] <- \"m.json#Q\""), "%s", r.out);
    result_free(&r);
}
END_TEST

/* ---- the shipped example ---- */

#define MLP_DIR FUSE_TEST_DIR "/../examples/mlp_int8"

/* a shipped tensor of its own dtype and shape */
static fuse_tensor load_shipped(const char *name, fuse_dtype dt, int rank, const int64_t *shape)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", MLP_DIR, name);
    fuse_tensor t;
    ck_assert_int_eq(fuse_tensor_load(NULL, path, &t), FUSE_OK);
    ck_assert_int_eq(t.dtype, dt);
    ck_assert_int_eq(t.rank, rank);
    for (int k = 0; k < rank; k++)
        ck_assert_int_eq(t.shape[k], shape[k]);
    return t;
}

/* examples/mlp_int8 runs as its manifest says: W1 int8 per column, W2 uint8
 * in two shards with zero point 128 (the scale as written in manifest.json) */
START_TEST(example_mlp_int8)
{
    fuse_tensor x = load_shipped("x.npy", FUSE_F32, 2, (int64_t[]){2, 4});
    fuse_tensor w1 = load_shipped("w1.npy", FUSE_I8, 2, (int64_t[]){4, 8});
    fuse_tensor s1 = load_shipped("w1_scale.npy", FUSE_F32, 1, (int64_t[]){8});
    fuse_tensor b1 = load_shipped("b1.npy", FUSE_F32, 1, (int64_t[]){8});
    fuse_tensor w2a = load_shipped("w2.0.npy", FUSE_U8, 2, (int64_t[]){4, 3});
    fuse_tensor w2b = load_shipped("w2.1.npy", FUSE_U8, 2, (int64_t[]){4, 3});
    fuse_tensor b2 = load_shipped("b2.npy", FUSE_F32, 1, (int64_t[]){3});
    char *manifest = slurp(MLP_DIR "/manifest.json");
    const char *at = strstr(manifest, "\"scale\": 0.");
    ck_assert_ptr_nonnull(at);
    float scale2 = (float)strtod(at + strlen("\"scale\": "), NULL);
    free(manifest);
    const float *xv = x.data, *s1v = s1.data, *b1v = b1.data, *b2v = b2.data;
    const int8_t *w1v = w1.data;
    double want[6];
    for (int b = 0; b < 2; b++)
        for (int o = 0; o < 3; o++) {
            double y = b2v[o];
            for (int h = 0; h < 8; h++) {
                double a = b1v[h];
                for (int i = 0; i < 4; i++)
                    a += (double)xv[4 * b + i] * ((float)(w1v[8 * i + h] - 0) * s1v[h]);
                a = a > 0 ? a : 0;
                const uint8_t *w2 = h < 4 ? w2a.data : w2b.data;
                y += a * ((float)(w2[3 * (h % 4) + o] - 128) * scale2);
            }
            want[3 * b + o] = y;
        }
    Result r = run_cli("run", MLP_DIR "/mlp.fuse", "--weights", MLP_DIR "/manifest.json",
                       "--out", "y.npy", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.err, "");
    result_free(&r);
    float *y = read_npy("y.npy", 2, (int64_t[]){2, 3});
    expect_close("Y", y, want, 6);
    free(y);
    fuse_free(x.data), fuse_free(w1.data), fuse_free(s1.data), fuse_free(b1.data);
    fuse_free(w2a.data), fuse_free(w2b.data), fuse_free(b2.data);
}
END_TEST

static Suite *weights_suite(void)
{
    Suite *s = suite_create("weights");
    TCase *tc = harness_case("manifests");
    tcase_add_test(tc, file_entries);
    tcase_add_test(tc, shards);
    tcase_add_test(tc, quantised);
    tcase_add_test(tc, f16_entry_kept);
    tcase_add_test(tc, quantised_kept_in_kernels);
    tcase_add_test(tc, quantised_scales_do_not_change_code);
    tcase_add_test(tc, quantised_panels_cross_positions);
    tcase_add_test(tc, quantised_weight_is_not_an_input);
    tcase_add_test(tc, lora_merged);
    tcase_add_test(tc, lora_kept_apart);
    tcase_add_test(tc, lora_apart_as_two_joins);
    tcase_add_test(tc, unused_entries_and_host_inputs);
    tcase_add_test(tc, options_of_an_older_host);
    tcase_add_test(tc, malformed_manifests);
    tcase_add_test(tc, cli_weights);
    tcase_add_test(tc, example_mlp_int8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(weights_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
