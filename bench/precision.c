/*
 * precision.c: products in every precision (fuse_config.precision) against
 * OpenBLAS, single thread, through the public API. For each workload it prints
 * the median and minimum of REPEAT timed runs (after one warm-up) and the
 * GFLOP/s of the median. The runs of one size are interleaved in rounds (each
 * round runs every item once, in a rotating order), and an item's ratio is the
 * median over rounds of its baseline's time / its time (above 1: faster), so a
 * machine whose speed drifts affects both sides alike:
 *
 *   gemm N PREC    C[i,j] = A[i,k] B[k,j], N x N x N; inputs bound in the
 *                  precision's own dtype (float64, float32, bfloat16, float16),
 *                  so the runner uses them in place (no conversion per run);
 *                  outputs written into host buffers (fuse_runner_run_into)
 *   dgemm N        cblas_dgemm on float64 data (the baseline of fp64)
 *   sgemm N        cblas_sgemm on float32 data (the baseline of fp32, bf16, fp16)
 *   gemv B PREC    Y[b,o] = W[o,i] X[b,i], W 4096 x 4096 in the precision's
 *                  dtype (bf16: 32 MiB instead of 64), batch B (1 or 8);
 *                  bf16 against fp32, and an fp32 runner given W as
 *                  bfloat16 (kept 16-bit: fp32+bf16W)
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
#include "timing.h"

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

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static fuse_input tensor2(const char *name, fuse_dtype dt, int64_t d0, int64_t d1, void *data)
{
    fuse_input in = {.name = name, .borrow = 1,
                     .tensor = {.dtype = dt, .rank = 2, .shape = {d0, d1}, .data = data}};
    return in;
}

/* One timed thing of a round: a fuse-jit runner (run_into its inputs and
 * output) or a BLAS product (is_blas: C = A B, n x n, double or float). */
typedef struct Item {
    char label[32];
    int baseline;        /* the item whose speed the ratio is against; -1: none */
    fuse_program *prog;
    fuse_runner *run;
    fuse_input in[2], out;
    bool is_blas, is_double;
    int n;
    void *a, *b, *c;
    double *ms;
} Item;

static int item_run(fuse_ctx *ctx, Item *it)
{
    if (!it->is_blas) {
        if (fuse_runner_run_into(it->run, it->in, 2, &it->out, 1) == FUSE_OK)
            return 0;
        fprintf(stderr, "%s: %s\n", it->label, fuse_ctx_error(ctx));
        return 1;
    }
    int n = it->n;
    if (it->is_double)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, it->a, n, it->b, n,
                    0.0, it->c, n);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, it->a, n, it->b,
                    n, 0.0f, it->c, n);
    return 0;
}

/* A runner of `text` in precision p over inputs names[0] (of dtype adt) and
 * names[1] (the precision's dtype), of shapes[0] and shapes[1]. */
static int item_program(fuse_ctx *ctx, Item *it, const char *text, int p, fuse_dtype adt,
                        const char *names[2], const int64_t shapes[3][2])
{
    fuse_dtype dt = PREC_DTYPES[p];
    it->a = random_data((size_t)(shapes[0][0] * shapes[0][1]), adt, 1);
    it->b = random_data((size_t)(shapes[1][0] * shapes[1][1]), dt, 2);
    it->c = random_data((size_t)(shapes[2][0] * shapes[2][1]), dt, 3);
    it->in[0] = tensor2(names[0], adt, shapes[0][0], shapes[0][1], it->a);
    it->in[1] = tensor2(names[1], dt, shapes[1][0], shapes[1][1], it->b);
    it->out = tensor2("C", dt, shapes[2][0], shapes[2][1], it->c);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = 1;
    cfg.precision = (fuse_precision)p;
    if (fuse_program_from_text(ctx, text, "bench.fuse", &it->prog) == FUSE_OK &&
        fuse_runner_new(it->prog, &cfg, it->in, 2, &it->run) == FUSE_OK)
        return 0;
    fprintf(stderr, "%s: %s\n", it->label, fuse_ctx_error(ctx));
    return 1;
}

static void item_free(Item *it)
{
    fuse_runner_free(it->run);
    fuse_program_free(it->prog);
    free(it->a), free(it->b), free(it->c), free(it->ms);
}

/* Runs every item once per round (the order rotating), `repeat` rounds after
 * one warm-up round, and prints each item's median, minimum and GFLOP/s, and
 * the median over rounds of baseline time / item time (above 1: faster). */
static int run_rounds(fuse_ctx *ctx, Item *items, int n, int repeat, double flops)
{
    for (int i = 0; i < n; i++)
        items[i].ms = malloc(sizeof(double) * (size_t)repeat);
    for (int r = -1; r < repeat; r++)
        for (int k = 0; k < n; k++) {
            Item *it = &items[(k + (r < 0 ? 0 : r)) % n];
            double t0 = now_ms();
            if (item_run(ctx, it))
                return 1;
            if (r >= 0)
                it->ms[r] = now_ms() - t0;
        }
    double ratio[256];
    for (int i = 0; i < n; i++) {
        const Item *it = &items[i], *base = it->baseline >= 0 ? &items[it->baseline] : NULL;
        for (int r = 0; base && r < repeat && r < 256; r++)
            ratio[r] = base->ms[r] / it->ms[r];
        double rat = base ? median_of(ratio, repeat < 256 ? repeat : 256) : 0;
        double tmp[256];
        memcpy(tmp, it->ms, sizeof(double) * (size_t)(repeat < 256 ? repeat : 256));
        double med = median_of(tmp, repeat < 256 ? repeat : 256);
        printf("%-16s median %10.3f ms  min %10.3f ms  %7.2f GFLOP/s", it->label, med, tmp[0],
               flops / med / 1e6);
        if (base)
            printf("  x%.2f vs %s", rat, base->label);
        printf("\n");
    }
    fflush(stdout);
    return 0;
}

static int bench_gemm(fuse_ctx *ctx, int n, int repeat)
{
    Item items[6];
    memset(items, 0, sizeof items);
    const char *names[2] = {"A", "B"};
    const int64_t shapes[3][2] = {{n, n}, {n, n}, {n, n}};
    int rc = 0;
    for (int p = 0; p < 4 && rc == 0; p++) {
        snprintf(items[p].label, sizeof items[p].label, "gemm %d %s", n, PREC_NAMES[p]);
        items[p].baseline = p == 1 ? 4 : 5; /* fp64 against dgemm, the others sgemm */
        rc = item_program(ctx, &items[p],
                          "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\n"
                          "export C\n", p, PREC_DTYPES[p], names, shapes);
    }
    for (int k = 4; k < 6; k++) {
        Item *it = &items[k];
        it->is_blas = true;
        it->is_double = k == 4;
        it->n = n;
        it->baseline = -1;
        snprintf(it->label, sizeof it->label, "%s %d", k == 4 ? "dgemm" : "sgemm", n);
        fuse_dtype dt = k == 4 ? FUSE_F64 : FUSE_F32;
        it->a = random_data((size_t)n * n, dt, 1);
        it->b = random_data((size_t)n * n, dt, 2);
        it->c = random_data((size_t)n * n, dt, 3);
    }
    if (rc == 0)
        rc = run_rounds(ctx, items, 6, repeat, 2.0 * n * n * (double)n);
    for (int k = 0; k < 6; k++)
        item_free(&items[k]);
    return rc;
}

static int bench_gemv(fuse_ctx *ctx, int batch, int repeat)
{
    enum { D = 4096 };
    Item items[3];
    memset(items, 0, sizeof items);
    const char *names[2] = {"W", "X"};
    const int64_t shapes[3][2] = {{D, D}, {batch, D}, {batch, D}};
    int rc = 0;
    const char *text = "W[o,i] = \"w.npy\"\nX[b,i] = \"x.npy\"\nC[b,o] = W[o,i] X[b,i]\n"
                       "export C\n";
    /* fp32; bf16; fp32 with W bound as bfloat16 (kept 16-bit, widened on load) */
    static const int precs[3] = {0, 2, 0};
    static const fuse_dtype wdts[3] = {FUSE_F32, FUSE_BF16, FUSE_BF16};
    for (int k = 0; k < 3 && rc == 0; k++) {
        snprintf(items[k].label, sizeof items[k].label, "gemv %d %s", batch,
                 k == 2 ? "fp32+bf16W" : PREC_NAMES[precs[k]]);
        items[k].baseline = k == 0 ? -1 : 0;
        rc = item_program(ctx, &items[k], text, precs[k], wdts[k], names, shapes);
    }
    if (rc == 0)
        rc = run_rounds(ctx, items, 3, repeat, 2.0 * batch * D * (double)D);
    for (int k = 0; k < 3; k++)
        item_free(&items[k]);
    return rc;
}

int main(int argc, char **argv)
{
    int repeat = argc > 1 ? atoi(argv[1]) : 5;
    repeat = repeat < 1 ? 1 : repeat > 256 ? 256 : repeat;
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
