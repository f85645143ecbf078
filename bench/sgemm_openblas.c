/*
 * sgemm_openblas.c: the OpenBLAS baseline of fuse-bench's suite. Times
 * cblas_sgemm on the suite's square products (256-2048), its batched product
 * (32 products of 256^3, one sgemm each) and its 4-index contraction
 * (C[a,b,c,d] = A[a,e,b,f] B[e,c,f,d], sizes 32: two explicit transposes to
 * matrices, one 1024^3 sgemm, one transpose back, as einsum would do it) and its
 * attention head's five products and its MLP's two, and
 * prints the median and minimum of --repeat runs after one warm-up in the same
 * format as fuse-bench. Run it with OPENBLAS_CORETYPE=Cooperlake (or SkylakeX)
 * and OPENBLAS_NUM_THREADS=1: OpenBLAS 0.3.21 otherwise picks a generic kernel
 * on this CPU (bench/run-baselines.sh does this).
 *
 *   cc -O2 sgemm_openblas.c -lopenblas -o sgemm_openblas && ./sgemm_openblas [repeat [only]]
 */
#define _POSIX_C_SOURCE 200809L

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timing.h"

static float *random_matrix(size_t n)
{
    float *m = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; m && i < n; i++)
        m[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    return m;
}

typedef void (*Workload)(int n, float *a, float *b, float *c, float *t);

static void square(int n, float *a, float *b, float *c, float *t)
{
    (void)t;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

static void batched(int n, float *a, float *b, float *c, float *t)
{
    (void)t;
    size_t s = (size_t)n * n;
    for (int i = 0; i < 32; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a + i * s, n,
                    b + i * s, n, 0.0f, c + i * s, n);
}

/* A[a,e,b,f] -> A'[a,b,e,f]; B[e,c,f,d] -> B'[e,f,c,d]; C'[a,b,c,d] = A' B'. */
static void four_index(int n, float *a, float *b, float *c, float *t)
{
    float *at = t, *bt = t + (size_t)n * n * n * n;
    for (int i = 0; i < n; i++)
        for (int e = 0; e < n; e++)
            for (int j = 0; j < n; j++)
                memcpy(at + (((size_t)i * n + j) * n + e) * n, a + (((size_t)i * n + e) * n + j) * n,
                       (size_t)n * sizeof(float));
    for (int e = 0; e < n; e++)
        for (int cc = 0; cc < n; cc++)
            for (int f = 0; f < n; f++)
                memcpy(bt + (((size_t)e * n + f) * n + cc) * n, b + (((size_t)e * n + cc) * n + f) * n,
                       (size_t)n * sizeof(float));
    int m = n * n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, at, m, bt, m, 0.0f, c, m);
}

/* The five products of the suite's attention head: Q, K, V = X Wq, X Wk, X Wv
 * (512 x 512 by 512 x 64), S = 0.125 Q K^T, O = S V: OpenBLAS's floor for the
 * block (no softmax: here its subnormal outputs would slow the last sgemm down
 * tenfold, OpenBLAS runs without flush-to-zero). a holds X, b the three weights,
 * t the intermediates. */
static void attention_products(int n, float *a, float *b, float *c, float *t)
{
    const int h = 64;
    float *x = a, *wq = b, *wk = wq + n * h, *wv = wk + n * h;
    float *q = t, *k = q + n * h, *v = k + n * h, *s = v + n * h;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, h, n, 1.0f, x, n, wq, h, 0.0f, q, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, h, n, 1.0f, x, n, wk, h, 0.0f, k, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, h, n, 1.0f, x, n, wv, h, 0.0f, v, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, h, 0.125f, q, h, k, h, 0.0f, s, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, h, n, 1.0f, s, n, v, h, 0.0f, c, h);
}


/* The suite's MLP's two products: X (256 x 1024) W1 (1024 x 1024), then that
 * (256 x 1024) W2 (1024 x 256); no bias or relu. a holds X, b W1, t W2 and Z. */
static void mlp_products(int n, float *a, float *b, float *c, float *t)
{
    const int m = 256, o = 256;
    float *w2 = t, *z = t + (size_t)n * o;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0f, a, n, b, n, 0.0f, z, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, o, n, 1.0f, z, n, w2, o, 0.0f, c, o);
}

static const char *only; /* argv[2]: run only the workloads whose name contains it */

static void bench(const char *name, Workload w, int n, size_t elems, double flops, int repeat)
{
    if (only && !strstr(name, only))
        return;
    float *a = random_matrix(elems), *b = random_matrix(elems), *c = random_matrix(elems);
    float *t = random_matrix(2 * elems);
    double *ms = calloc((size_t)repeat, sizeof *ms);
    if (!a || !b || !c || !t || !ms) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    w(n, a, b, c, t);
    for (int r = 0; r < repeat; r++) {
        double t0 = now_ms();
        w(n, a, b, c, t);
        ms[r] = now_ms() - t0;
    }
    qsort(ms, (size_t)repeat, sizeof *ms, cmp_double);
    double med = repeat % 2 ? ms[repeat / 2] : 0.5 * (ms[repeat / 2 - 1] + ms[repeat / 2]);
    printf("%-22s %10.3f %10.3f %9.1f\n", name, ms[0], med, flops / (med * 1e6));
    fflush(stdout);
    free(a), free(b), free(c), free(t), free(ms);
}

int main(int argc, char **argv)
{
    int repeat = argc > 1 ? atoi(argv[1]) : 10;
    if (repeat < 1)
        repeat = 1;
    only = argc > 2 ? argv[2] : NULL;
    printf("%-22s %10s %10s %9s\n", "openblas", "min_ms", "median_ms", "GFLOP/s");
    for (int n = 256; n <= 2048; n *= 2) {
        char name[32];
        snprintf(name, sizeof name, "sgemm-%d", n);
        bench(name, square, n, (size_t)n * n, 2.0 * n * n * n, repeat);
    }
    bench("batched-32x256", batched, 256, 32 * 256 * 256, 2.0 * 32 * 256 * 256 * 256, repeat);
    bench("4index-32", four_index, 32, 32 * 32 * 32 * 32, 2.0 * 1024 * 1024 * 1024, repeat);
    bench("attention-products", attention_products, 512, 512 * 512, 5 * 2.0 * 512 * 512 * 64,
          repeat);
    bench("mlp-products", mlp_products, 1024, 1024 * 1024,
          2.0 * 256 * 1024 * 1024 + 2.0 * 256 * 1024 * 256, repeat);
    return 0;
}
