/*
 * bench_blas.c: the OpenBLAS baseline of fuse-bench (--baseline openblas). It
 * computes the same products as the suite's product workloads, on the same
 * input buffers, with cblas_sgemm: a square product is one sgemm, the batched
 * product 32 sgemms, and the 4-index contraction C[a,b,c,d] = A[a,e,b,f]
 * B[e,c,f,d] copies A to A'[a,b,e,f] and B to B'[e,f,c,d] (timed: a BLAS user
 * has to do it too, as einsum does) and makes one n^2 x n^2 x n^2 sgemm whose
 * result is C's layout already.
 */
#include <cblas.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "support.h"

bool bench_blas_supports(const Workload *w)
{
    return w->product != BENCH_NOT_A_PRODUCT;
}

/* C (m x n) = A (m x k) B (k x n), all row-major and dense. */
static void sgemm(int m, int n, int k, const float *a, const float *b, float *c)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}

/* Scratch for one product: the result, and the permuted operands of the
 * 4-index contraction. */
typedef struct BlasBuffers {
    float *c, *at, *bt;
} BlasBuffers;

static float *alloc_floats(size_t n)
{
    return aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
}

static bool buffers_init(BlasBuffers *bb, const Workload *w)
{
    size_t n = (size_t)w->n, cells = n * n;
    memset(bb, 0, sizeof *bb);
    if (w->product == BENCH_BATCHED)
        cells *= 32;
    if (w->product == BENCH_4INDEX) {
        cells = n * n * n * n;
        bb->at = alloc_floats(cells);
        bb->bt = alloc_floats(cells);
        if (!bb->at || !bb->bt)
            return false;
    }
    bb->c = alloc_floats(cells);
    return bb->c != NULL;
}

static void buffers_free(BlasBuffers *bb)
{
    free(bb->c);
    free(bb->at);
    free(bb->bt);
}

/* A[a,e,b,f] -> A'[a,b,e,f], B[e,c,f,d] -> B'[e,f,c,d], then C = A' B'. */
static void four_index(size_t n, const float *a, const float *b, BlasBuffers *bb)
{
    size_t row = n * sizeof(float);
    for (size_t i = 0; i < n; i++)
        for (size_t e = 0; e < n; e++)
            for (size_t j = 0; j < n; j++)
                memcpy(bb->at + ((i * n + j) * n + e) * n, a + ((i * n + e) * n + j) * n, row);
    for (size_t e = 0; e < n; e++)
        for (size_t c = 0; c < n; c++)
            for (size_t f = 0; f < n; f++)
                memcpy(bb->bt + ((e * n + f) * n + c) * n, b + ((e * n + c) * n + f) * n, row);
    int m = (int)(n * n);
    sgemm(m, m, m, bb->at, bb->bt, bb->c);
}

static void run_product(const Workload *w, BlasBuffers *bb)
{
    const float *a = w->inputs[0].tensor.data, *b = w->inputs[1].tensor.data;
    int n = (int)w->n;
    size_t s = (size_t)n * (size_t)n;
    switch (w->product) {
    case BENCH_MATMUL: sgemm(n, n, n, a, b, bb->c); break;
    case BENCH_BATCHED:
        for (size_t i = 0; i < 32; i++)
            sgemm(n, n, n, a + i * s, b + i * s, bb->c + i * s);
        break;
    case BENCH_4INDEX: four_index((size_t)n, a, b, bb); break;
    case BENCH_NOT_A_PRODUCT: break;
    }
}

/* The cores this process may run on, as fuse-jit's runtime counts them for its
 * default team (omp_get_num_procs honours the affinity mask too). */
static int usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

bool bench_blas_time(const Workload *w, int threads, int warmup, int repeat, double *times)
{
    if (!bench_blas_supports(w) || w->n_inputs < 2 || w->shapes_only)
        return false;
    openblas_set_num_threads(threads > 0 ? threads : usable_cores());
    BlasBuffers bb;
    bool ok = buffers_init(&bb, w);
    for (int i = -1 - warmup; ok && i < repeat; i++) {
        double t0 = sup_clock_ms();
        run_product(w, &bb);
        if (i >= 0)
            times[i] = sup_clock_ms() - t0;
    }
    buffers_free(&bb);
    return ok;
}

float *bench_blas_result(const Workload *w, int threads)
{
    if (!bench_blas_supports(w) || w->n_inputs < 2 || w->shapes_only)
        return NULL;
    openblas_set_num_threads(threads > 0 ? threads : usable_cores());
    BlasBuffers bb;
    if (!buffers_init(&bb, w)) {
        buffers_free(&bb);
        return NULL;
    }
    run_product(w, &bb);
    float *c = bb.c;
    bb.c = NULL;
    buffers_free(&bb);
    return c;
}

const char *bench_blas_config(void)
{
    static char line[256];
    snprintf(line, sizeof line, "%s, core %s", openblas_get_config(), openblas_get_corename());
    return line;
}
