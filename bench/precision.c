/*
 * precision.c: products in every precision (fuse_config.precision) against
 * OpenBLAS, single thread, through the public API. For each workload it prints
 * the median and minimum of --repeat timed runs (after one warm-up) and the
 * GFLOP/s of the median:
 *
 *   gemm N PREC    C[i,j] = A[i,k] B[k,j], N x N x N; inputs bound in the
 *                  precision's own dtype (float64, float32, bfloat16, float16),
 *                  so the runner uses them in place (no conversion per run);
 *                  outputs written into host buffers (fuse_runner_run_into)
 *   dgemm N        cblas_dgemm on the same float64 data (the fp64 baseline)
 *   sgemm N        cblas_sgemm on the float32 data (the fp32 baseline)
 *   gemv B PREC    Y[b,o] = W[o,i] X[b,i], W 4096 x 4096 in the precision's
 *                  dtype (bf16: 32 MiB instead of 64), batch B (1 or 8)
 *
 * bench/precision.sh builds and runs it (OPENBLAS_NUM_THREADS=1).
 *
 *   precision [repeat]
 */
#define _POSIX_C_SOURCE 200809L

#include <cblas.h>
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusejit.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const PREC_NAMES[4] = {"fp32", "fp64", "bf16", "fp16"};
static const fuse_dtype PREC_DTYPES[4] = {FUSE_F32, FUSE_F64, FUSE_BF16, FUSE_F16};

/* bf16 and binary16 bits of x (round to nearest even; finite inputs only) */
static uint16_t to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static uint16_t to_half(float x)
{
    return _cvtss_sh(x, 0); /* F16C: this benchmark runs on x86-64 with it */
}

/* n random values in [-1, 1) in dtype dt, 64-byte aligned */
static void *random_data(size_t n, fuse_dtype dt, unsigned seed)
{
    size_t es = fuse_dtype_size(dt);
    void *p = aligned_alloc(64, (n * es + 63) / 64 * 64);
    srand(seed);
    for (size_t i = 0; p && i < n; i++) {
        float x = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
        switch (dt) {
        case FUSE_F64: ((double *)p)[i] = x; break;
        case FUSE_BF16: ((uint16_t *)p)[i] = to_bf16(x); break;
        case FUSE_F16: ((uint16_t *)p)[i] = to_half(x); break;
        default: ((float *)p)[i] = x; break;
        }
    }
    return p;
}

static void report(const char *name, double *ms, int repeat, double flops)
{
    qsort(ms, (size_t)repeat, sizeof *ms, cmp_double);
    double med = repeat % 2 ? ms[repeat / 2] : (ms[repeat / 2 - 1] + ms[repeat / 2]) / 2;
    printf("%-16s median %10.3f ms  min %10.3f ms  %8.2f GFLOP/s\n", name, med, ms[0],
           flops / med / 1e6);
    fflush(stdout);
}

static fuse_input tensor2(const char *name, fuse_dtype dt, int64_t d0, int64_t d1, void *data)
{
    fuse_input in = {.name = name, .borrow = 1,
                     .tensor = {.dtype = dt, .rank = 2, .shape = {d0, d1}, .data = data}};
    return in;
}

/* Times `text` with inputs in[0..1] and output `out` (d0 x d1) in precision p. */
static int time_program(fuse_ctx *ctx, const char *label, const char *text, int p,
                        fuse_input *in, int64_t d0, int64_t d1, int repeat, double flops)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = 1;
    cfg.precision = (fuse_precision)p;
    if (fuse_program_from_text(ctx, text, "bench.fuse", &prog) != FUSE_OK ||
        fuse_runner_new(prog, &cfg, in, 2, &run) != FUSE_OK) {
        fprintf(stderr, "%s: %s\n", label, fuse_ctx_error(ctx));
        fuse_program_free(prog);
        return 1;
    }
    void *y = random_data((size_t)(d0 * d1), PREC_DTYPES[p], 9);
    fuse_input out = tensor2("C", PREC_DTYPES[p], d0, d1, y);
    double *ms = malloc(sizeof *ms * (size_t)repeat);
    int rc = 0;
    for (int r = -1; r < repeat && rc == 0; r++) { /* r = -1: the warm-up */
        double t0 = now_ms();
        rc = fuse_runner_run_into(run, in, 2, &out, 1) != FUSE_OK;
        if (r >= 0)
            ms[r] = now_ms() - t0;
    }
    if (rc == 0)
        report(label, ms, repeat, flops);
    else
        fprintf(stderr, "%s: %s\n", label, fuse_ctx_error(ctx));
    free(ms), free(y);
    fuse_runner_free(run);
    fuse_program_free(prog);
    return rc;
}

static void time_blas(const char *label, int n, bool is_double, int repeat)
{
    size_t cells = (size_t)n * (size_t)n;
    fuse_dtype dt = is_double ? FUSE_F64 : FUSE_F32;
    void *a = random_data(cells, dt, 1), *b = random_data(cells, dt, 2), *c = random_data(cells, dt, 3);
    double *ms = malloc(sizeof *ms * (size_t)repeat);
    for (int r = -1; r < repeat; r++) {
        double t0 = now_ms();
        if (is_double)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0,
                        c, n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                        0.0f, c, n);
        if (r >= 0)
            ms[r] = now_ms() - t0;
    }
    report(label, ms, repeat, 2.0 * n * n * (double)n);
    free(ms), free(a), free(b), free(c);
}

static int bench_gemm(fuse_ctx *ctx, int n, int repeat)
{
    char label[64];
    size_t cells = (size_t)n * (size_t)n;
    for (int p = 0; p < 4; p++) {
        void *a = random_data(cells, PREC_DTYPES[p], 1), *b = random_data(cells, PREC_DTYPES[p], 2);
        fuse_input in[2] = {tensor2("A", PREC_DTYPES[p], n, n, a),
                            tensor2("B", PREC_DTYPES[p], n, n, b)};
        snprintf(label, sizeof label, "gemm %d %s", n, PREC_NAMES[p]);
        int rc = time_program(ctx, label,
                              "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\n"
                              "export C\n",
                              p, in, n, n, repeat, 2.0 * n * n * (double)n);
        free(a), free(b);
        if (rc)
            return rc;
    }
    snprintf(label, sizeof label, "dgemm %d", n);
    time_blas(label, n, true, repeat);
    snprintf(label, sizeof label, "sgemm %d", n);
    time_blas(label, n, false, repeat);
    return 0;
}

static int bench_gemv(fuse_ctx *ctx, int batch, int repeat)
{
    enum { D = 4096 };
    char label[64];
    for (int p = 0; p < 4; p += 2) { /* fp32 and bf16 */
        void *w = random_data((size_t)D * D, PREC_DTYPES[p], 4);
        void *x = random_data((size_t)batch * D, PREC_DTYPES[p], 5);
        fuse_input in[2] = {tensor2("W", PREC_DTYPES[p], D, D, w),
                            tensor2("X", PREC_DTYPES[p], batch, D, x)};
        snprintf(label, sizeof label, "gemv %d %s", batch, PREC_NAMES[p]);
        int rc = time_program(ctx, label,
                              "W[o,i] = \"w.npy\"\nX[b,i] = \"x.npy\"\nC[b,o] = W[o,i] X[b,i]\n"
                              "export C\n",
                              p, in, batch, D, repeat, 2.0 * batch * D * (double)D);
        free(w), free(x);
        if (rc)
            return rc;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int repeat = argc > 1 ? atoi(argv[1]) : 5;
    if (repeat < 1)
        repeat = 1;
    fuse_ctx *ctx = NULL;
    if (fuse_ctx_new(&ctx) != FUSE_OK)
        return 1;
    int rc = 0;
    for (int n = 1024; n <= 2048 && rc == 0; n *= 2)
        rc = bench_gemm(ctx, n, repeat);
    for (int b = 1; b <= 8 && rc == 0; b *= 8)
        rc = bench_gemv(ctx, b, repeat);
    fuse_ctx_free(ctx);
    return rc;
}
