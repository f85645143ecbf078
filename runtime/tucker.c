/*
 * tucker.c: tucker_dense (SPEC §5), the runtime half of an OP_HOST op. Generated
 * code calls fuse_rt_tucker_dense (lower/lower.h) by name; rt_host_symbols_define
 * makes that name resolve in every JITDylib of a session.
 *
 * Truncated HOSVD of x (order N, sizes n_k, ranks r_k capped at n_k):
 *   U_k = the leading r_k left singular vectors of the mode-k unfolding of x
 *         (LAPACKE_sgesvd; rows = positions on axis k, columns = the other axes in
 *         C order);
 *   core = x ×_1 U_1ᵀ ×_2 ... ×_N U_Nᵀ;  x̂ = core ×_1 U_1 ... ×_N U_N;
 *   out = step(x̂ − threshold): 1 where x̂ > threshold, else 0.
 * When every r_k equals n_k there is no decomposition (x̂ = x); a 0-d x is
 * step(x − threshold). If an SVD fails to converge it is retried once on the
 * unfolding plus deterministic 1e-6-scale noise (notes B §6); if it fails again,
 * or memory runs out, the output is NaN everywhere (kernels have no error channel).
 *
 * LAPACKE (and through it LAPACK, OpenBLAS and libgfortran) is loaded with dlopen
 * on the first SVD, not linked: loading and relocating them cost every process a
 * few milliseconds at start, and only tucker_dense needs them. If it cannot be
 * loaded, a warning goes to stderr once and the output is NaN.
 */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "jit.h"
#include "lower.h"
#include "runtime.h"

/* Visible to the JIT only through rt_host_symbols_define; declared here because
 * generated code is its only caller. */
void fuse_rt_tucker_dense(float *out, const float *in, int64_t order, const int64_t *shape,
                          const int64_t *ranks, double threshold);

static size_t count_of(const int64_t *shape, int64_t from, int64_t to)
{
    size_t n = 1;
    for (int64_t k = from; k < to; k++)
        n *= (size_t)shape[k];
    return n;
}

/* y = x ×_k M: M is p × shape[k] (row-major); y has shape[k] replaced by p. */
static void mode_product(float *y, const float *x, const int64_t *shape, int64_t order,
                         int64_t k, const float *m, int64_t p)
{
    size_t pre = count_of(shape, 0, k), post = count_of(shape, k + 1, order);
    size_t n = (size_t)shape[k];
    memset(y, 0, sizeof *y * pre * (size_t)p * post);
    for (size_t a = 0; a < pre; a++)
        for (size_t j = 0; j < (size_t)p; j++) {
            float *row = y + (a * (size_t)p + j) * post;
            for (size_t i = 0; i < n; i++) {
                float w = m[j * n + i];
                const float *src = x + (a * n + i) * post;
                for (size_t c = 0; c < post; c++)
                    row[c] += w * src[c];
            }
        }
}

/* The mode-k unfolding of x: shape[k] rows, count/shape[k] columns, row-major. */
static void unfold(float *a, const float *x, const int64_t *shape, int64_t order, int64_t k)
{
    size_t pre = count_of(shape, 0, k), post = count_of(shape, k + 1, order);
    size_t n = (size_t)shape[k];
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < pre; p++)
            memcpy(a + i * pre * post + p * post, x + (p * n + i) * post, sizeof *a * post);
}

/* Small deterministic noise in [-1e-6, 1e-6] (an LCG), for the SVD retry. */
static void add_noise(float *a, size_t n)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] += (float)(((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0) * 1e-6);
    }
}

/* LAPACKE_sgesvd, resolved once from liblapacke. */
typedef lapack_int (*SgesvdFn)(int layout, char jobu, char jobvt, lapack_int m, lapack_int n,
                               float *a, lapack_int lda, float *s, float *u, lapack_int ldu,
                               float *vt, lapack_int ldvt, float *superb);
static pthread_once_t lapacke_once = PTHREAD_ONCE_INIT;
static SgesvdFn lapacke_sgesvd;

static void lapacke_load(void)
{
    static const char *const names[] = {"liblapacke.so.3", "liblapacke.so"};
    void *lib = NULL;
    for (size_t i = 0; !lib && i < sizeof names / sizeof names[0]; i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    /* dlsym returns a void *; POSIX guarantees it converts to a function pointer. */
    void *sym = lib ? dlsym(lib, "LAPACKE_sgesvd") : NULL;
    if (!sym) {
        const char *why = dlerror();
        fprintf(stderr, "fuse-jit: warning: tucker_dense needs LAPACKE (liblapacke.so.3), "
                        "which cannot be loaded: %s; the result is NaN\n",
                why ? why : "LAPACKE_sgesvd not found");
        return;
    }
    memcpy(&lapacke_sgesvd, &sym, sizeof lapacke_sgesvd);
}

/* u (shape[k] × r, row-major) = the leading r left singular vectors of the mode-k
 * unfolding; r <= min(rows, cols). false on failure. */
static bool left_vectors(float *u, const float *x, const int64_t *shape, int64_t order,
                         int64_t k, int64_t r)
{
    size_t rows = (size_t)shape[k], cols = count_of(shape, 0, order) / rows;
    size_t mn = rows < cols ? rows : cols;
    float *a = malloc(sizeof *a * rows * cols), *s = malloc(sizeof *s * mn);
    float *uf = malloc(sizeof *uf * rows * mn), *sup = malloc(sizeof *sup * (mn + 1));
    bool ok = a && s && uf && sup && pthread_once(&lapacke_once, lapacke_load) == 0 &&
              lapacke_sgesvd;
    for (int attempt = 0; ok && attempt < 2; attempt++) {
        unfold(a, x, shape, order, k);
        if (attempt)
            add_noise(a, rows * cols);
        lapack_int info = lapacke_sgesvd(LAPACK_ROW_MAJOR, 'S', 'N', (lapack_int)rows,
                                        (lapack_int)cols, a, (lapack_int)cols, s, uf,
                                        (lapack_int)mn, NULL, 1, sup);
        if (info == 0)
            break;
        ok = attempt == 0 && info > 0;
    }
    for (size_t i = 0; ok && i < rows; i++)
        memcpy(u + i * (size_t)r, uf + i * mn, sizeof *u * (size_t)r);
    free(a);
    free(s);
    free(uf);
    free(sup);
    return ok;
}

/* xhat = core ×_k U_k for all k, core = x ×_k U_kᵀ; r[k] columns per U_k. */
static bool hosvd(float *xhat, const float *x, int64_t order, const int64_t *shape,
                  const int64_t *r)
{
    float *u[FUSE_MAX_RANK] = {0}, *ut = NULL;
    size_t total = count_of(shape, 0, order), max_n = 1;
    for (int64_t k = 0; k < order; k++)
        max_n = (size_t)shape[k] > max_n ? (size_t)shape[k] : max_n;
    float *buf[2] = {malloc(sizeof(float) * total), malloc(sizeof(float) * total)};
    ut = malloc(sizeof *ut * max_n * max_n);
    bool ok = buf[0] && buf[1] && ut;
    for (int64_t k = 0; ok && k < order; k++) {
        u[k] = malloc(sizeof(float) * (size_t)shape[k] * (size_t)r[k]);
        ok = u[k] && left_vectors(u[k], x, shape, order, k, r[k]);
    }
    int64_t cur[FUSE_MAX_RANK];
    memcpy(cur, shape, sizeof *cur * (size_t)order);
    const float *src = x;
    int which = 0;
    for (int64_t k = 0; ok && k < 2 * order; k++) { /* core, then reconstruction */
        int64_t m = k % order, n = shape[m], rk = r[m];
        const float *mat = u[m];
        if (k < order) { /* U_mᵀ: rk × n */
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < rk; j++)
                    ut[j * n + i] = u[m][i * rk + j];
            mat = ut;
        }
        float *dst = k == 2 * order - 1 ? xhat : buf[which];
        mode_product(dst, src, cur, order, m, mat, k < order ? rk : n);
        cur[m] = k < order ? rk : n;
        src = dst;
        which ^= 1;
    }
    for (int64_t k = 0; k < order; k++)
        free(u[k]);
    free(ut);
    free(buf[0]);
    free(buf[1]);
    return ok;
}

void fuse_rt_tucker_dense(float *out, const float *in, int64_t order, const int64_t *shape,
                          const int64_t *ranks, double threshold)
{
    size_t total = count_of(shape, 0, order);
    if (total == 0)
        return;
    int64_t r[FUSE_MAX_RANK];
    bool is_full = true;
    for (int64_t k = 0; k < order; k++) {
        /* The unfolding has min(n_k, rest) singular vectors; keeping all of them
         * projects x onto a space that contains it. */
        int64_t rest = (int64_t)(total / (size_t)shape[k]);
        int64_t most = shape[k] < rest ? shape[k] : rest;
        r[k] = ranks[k] < most ? ranks[k] : most;
        is_full &= r[k] == most;
    }
    const float *xhat = in;
    if (!is_full) {
        if (!hosvd(out, in, order, shape, r)) {
            for (size_t i = 0; i < total; i++)
                out[i] = NAN;
            return;
        }
        xhat = out;
    }
    for (size_t i = 0; i < total; i++)
        out[i] = (double)xhat[i] > threshold ? 1.0f : 0.0f;
}

fuse_status rt_host_symbols_define(struct JitSession *js, char **err)
{
    return jit_define_symbol(js, LOWER_HOST_TUCKER, (void *)fuse_rt_tucker_dense, err);
}
