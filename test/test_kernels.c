/*
 * test_kernels.c: the contraction kernels (lower/contract.c) against a naive
 * reference. Each case is a two-factor sum join written as einsum-like axis
 * strings; the test generates the program text, binds random inputs through the
 * public API, checks in the emitted LLVM IR that the packed kernel (not the loop
 * nest) was used, and compares every output cell with a double-precision loop
 * over all axes. Shapes are odd and prime, with size-1 axes, transposed and
 * non-contiguous operand and output layouts, batches, 4-index contractions,
 * coefficients, several contributions, sizes crossing the cache blocks, and 1 to
 * 4 threads (bit-identical results); plus softmax and masked softmax rows with
 * the inline exp (lengths, -inf, NaN, strided rows), fusion
 * of elementwise epilogues into the kernels (bias along N and M, scale, mask,
 * relu, a second contribution, batch and transposed outputs, against double
 * references; cases that must not fuse still correct), cell runs (chains of
 * elementwise ops of a group in one loop nest, lower/fusion.c: "+=" contributions,
 * biases, shifted and fixed reads, odd and size-1 shapes, a transposed read that
 * must not fuse, a libm call that stays alone), and the fuse-bench
 * tool's JSON report and usage errors.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fusejit.h"

/* ---- a naive einsum reference ---- */

typedef struct Spec {
    const char *a, *b, *c; /* axis letters of A, B and the output C */
    int64_t size[26];      /* size of each letter */
    double coef;
} Spec;

static int64_t count_of(const Spec *s, const char *axes)
{
    int64_t n = 1;
    for (const char *p = axes; *p; p++)
        n *= s->size[*p - 'a'];
    return n;
}

static int64_t offset_of(const Spec *s, const char *axes, const int64_t *ctr)
{
    int64_t off = 0;
    for (const char *p = axes; *p; p++)
        off = off * s->size[*p - 'a'] + ctr[*p - 'a'];
    return off;
}

/* ref[c] = coef * sum A B; mag[c] = sum |coef A B| (for the tolerance). */
static void reference(const Spec *s, const float *a, const float *b, double *ref, double *mag)
{
    char all[27] = {0};
    int n = 0;
    const char *tensors[3] = {s->a, s->b, s->c};
    for (int t = 0; t < 3; t++)
        for (const char *p = tensors[t]; *p; p++)
            if (!strchr(all, *p))
                all[n++] = *p;
    int64_t ctr[26] = {0};
    for (;;) {
        double v = s->coef * a[offset_of(s, s->a, ctr)] * b[offset_of(s, s->b, ctr)];
        int64_t o = offset_of(s, s->c, ctr);
        ref[o] += v;
        mag[o] += fabs(v);
        int k = n - 1;
        while (k >= 0 && ++ctr[all[k] - 'a'] == s->size[all[k] - 'a'])
            ctr[all[k--] - 'a'] = 0;
        if (k < 0)
            break;
    }
}

/* ---- running through the API ---- */

static float *random_data(int64_t n, unsigned *seed)
{
    float *d = malloc((size_t)n * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f;
    return d;
}

static void axes_list(const char *axes, char *buf, size_t n)
{
    size_t k = 0;
    for (const char *p = axes; *p && k + 3 < n; p++) {
        if (p != axes)
            buf[k++] = ',';
        buf[k++] = *p;
    }
    buf[k] = '\0';
}

static void set_input(fuse_input *in, const char *name, const Spec *s, const char *axes,
                      float *data)
{
    memset(in, 0, sizeof *in);
    in->name = name;
    in->tensor.dtype = FUSE_F32;
    in->tensor.rank = (int)strlen(axes);
    for (int k = 0; axes[k]; k++)
        in->tensor.shape[k] = s->size[axes[k] - 'a'];
    in->tensor.data = data;
}

/* Compiles `text` with inputs A and B; returns C's values (malloc'd) and whether
 * the kernel was a packed contraction. */
/* Compiles and runs `text` on `threads` threads with no disk cache; vals[w] = a
 * malloc'd copy of export want[w]. Returns the program's LLVM IR (fuse_free). */
static char *run_collect(const char *text, fuse_input *in, size_t n_in, int threads,
                         const char *const *want, float **vals, int n_want)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = threads;
    cfg.no_cache = 1;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_msg(fuse_program_from_text(ctx, text, "kernel.fuse", &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(prog, &cfg, in, n_in, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_run(run, in, n_in, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    char *ir = NULL;
    ck_assert_int_eq(fuse_runner_emit(run, "llvm-raw", &ir), FUSE_OK);
    for (int w = 0; w < n_want; w++) {
        const fuse_tensor *c = fuse_outputs_find(out, want[w]);
        ck_assert_ptr_nonnull(c);
        int64_t n = 1;
        for (int k = 0; k < c->rank; k++)
            n *= c->shape[k];
        vals[w] = malloc((size_t)n * sizeof *vals[w] + 1);
        ck_assert_ptr_nonnull(vals[w]);
        memcpy(vals[w], c->data, (size_t)n * sizeof *vals[w]);
    }
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return ir;
}

/* Runs `text` and returns export C; *is_contract: a contraction kernel was used. */
static float *run_program(const char *text, fuse_input *in, size_t n_in, int threads,
                          int *is_contract)
{
    static const char *const want[1] = {"C"};
    float *v = NULL;
    char *ir = run_collect(text, in, n_in, threads, want, &v, 1);
    *is_contract = strstr(ir, ".contract") != NULL;
    fuse_free(ir);
    return v;
}

static void compare(const float *got, const double *ref, const double *mag, int64_t n,
                    const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-5 * (1.0 + mag[i]);
        ck_assert_msg(fabs(got[i] - ref[i]) <= tol, "%s: cell %lld: got %.7g, want %.7g",
                      what, (long long)i, (double)got[i], ref[i]);
    }
}

/* Runs C = coef A B for spec s and checks it against the reference. */
static void check_spec(const Spec *s, int expect_contract)
{
    unsigned seed = 12345u + (unsigned)strlen(s->a) * 7u + (unsigned)s->size[0];
    float *a = random_data(count_of(s, s->a), &seed), *b = random_data(count_of(s, s->b), &seed);
    int64_t nc = count_of(s, s->c);
    double *ref = calloc((size_t)nc, sizeof *ref), *mag = calloc((size_t)nc, sizeof *mag);
    ck_assert(ref && mag);
    reference(s, a, b, ref, mag);
    char la[64], lb[64], lc[64], text[512];
    axes_list(s->a, la, sizeof la);
    axes_list(s->b, lb, sizeof lb);
    axes_list(s->c, lc, sizeof lc);
    snprintf(text, sizeof text, "A[%s] = \"a.npy\"\nB[%s] = \"b.npy\"\nC[%s] = %.17g A[%s] B[%s]\n"
                                "export C\n", la, lb, lc, s->coef, la, lb);
    fuse_input in[2];
    set_input(&in[0], "A", s, s->a, a);
    set_input(&in[1], "B", s, s->b, b);
    int is_contract = 0;
    float *got = run_program(text, in, 2, 1, &is_contract);
    ck_assert_msg(is_contract == expect_contract, "%s: packed kernel used: %d", text, is_contract);
    compare(got, ref, mag, nc, text);
    free(got);
    free(a);
    free(b);
    free(ref);
    free(mag);
}

/* Sizes by letter: a..z. */
#define SIZES(...) {__VA_ARGS__}

START_TEST(matmul_odd_prime)
{
    static const int64_t dims[][3] = {{37, 29, 41}, {13, 17, 101}, {97, 3, 61}, {2, 5, 1031}};
    for (int i = 0; i < 4; i++) {
        Spec s = {"ik", "kj", "ij", {0}, 1.0};
        s.size['i' - 'a'] = dims[i][0];
        s.size['k' - 'a'] = dims[i][1];
        s.size['j' - 'a'] = dims[i][2];
        check_spec(&s, 1);
    }
}
END_TEST

START_TEST(matmul_crosses_blocks)
{
    /* K past one KC block, M past one MC block, N past one NC block (with any
     * host's cache sizes the blocks are at most 384, 1920 and 4096 wide). */
    Spec s1 = {"ik", "kj", "ij", {0}, 1.0};
    s1.size['i' - 'a'] = 23, s1.size['k' - 'a'] = 1031, s1.size['j' - 'a'] = 35;
    check_spec(&s1, 1);
    Spec s2 = {"ik", "kj", "ij", {0}, 1.0};
    s2.size['i' - 'a'] = 1931, s2.size['k' - 'a'] = 7, s2.size['j' - 'a'] = 19;
    check_spec(&s2, 1);
    Spec s3 = {"ik", "kj", "ij", {0}, 1.0};
    s3.size['i' - 'a'] = 5, s3.size['k' - 'a'] = 9, s3.size['j' - 'a'] = 4099;
    check_spec(&s3, 1);
}
END_TEST

START_TEST(transposed_layouts)
{
    Spec s1 = {"ki", "jk", "ij", {0}, 1.0}; /* both operands transposed */
    s1.size['i' - 'a'] = 31, s1.size['k' - 'a'] = 43, s1.size['j' - 'a'] = 27;
    check_spec(&s1, 1);
    Spec s2 = {"ik", "kj", "ji", {0}, 1.0}; /* output transposed: A and B swap roles */
    s2.size['i' - 'a'] = 53, s2.size['k' - 'a'] = 19, s2.size['j' - 'a'] = 11;
    check_spec(&s2, 1);
    Spec s3 = {"mk", "knp", "nmp", {0}, 1.0}; /* N axes not contiguous in the output */
    s3.size['m' - 'a'] = 13, s3.size['k' - 'a'] = 29, s3.size['n' - 'a'] = 5;
    s3.size['p' - 'a'] = 7;
    check_spec(&s3, 1);
}
END_TEST

START_TEST(batched_products)
{
    Spec s1 = {"bik", "bkj", "bij", {0}, 1.0};
    s1.size['b' - 'a'] = 3, s1.size['i' - 'a'] = 17, s1.size['k' - 'a'] = 23;
    s1.size['j' - 'a'] = 33;
    check_spec(&s1, 1);
    Spec s2 = {"ikb", "bjk", "ibj", {0}, 1.0}; /* batch axis in the middle, strided */
    s2.size['b' - 'a'] = 5, s2.size['i' - 'a'] = 11, s2.size['k' - 'a'] = 29;
    s2.size['j' - 'a'] = 37;
    check_spec(&s2, 1);
}
END_TEST

START_TEST(four_index)
{
    Spec s = {"aebf", "ecfd", "abcd", {0}, 1.0};
    s.size['a' - 'a'] = 5, s.size['b' - 'a'] = 7, s.size['c' - 'a'] = 6;
    s.size['d' - 'a'] = 9, s.size['e' - 'a'] = 11, s.size['f' - 'a'] = 3;
    check_spec(&s, 1);
}
END_TEST

/* Panels packed with whole-vector copies: the lane group's innermost axis is a
 * multiple of the micro-tile (MR 12 or 6, NR 32 or 16) though the group is not
 * contiguous; K lengths that are and are not multiples of the unrolled step. */
START_TEST(vector_packed_panels)
{
    Spec s1 = {"aebf", "ecfd", "abcd", {0}, 1.0};
    s1.size['a' - 'a'] = 3, s1.size['b' - 'a'] = 12, s1.size['c' - 'a'] = 3;
    s1.size['d' - 'a'] = 32, s1.size['e' - 'a'] = 5, s1.size['f' - 'a'] = 7;
    check_spec(&s1, 1);
    Spec s2 = {"ik", "kj", "ij", {0}, 1.0};
    s2.size['i' - 'a'] = 48, s2.size['k' - 'a'] = 64, s2.size['j' - 'a'] = 96;
    check_spec(&s2, 1);
    Spec s3 = {"ki", "kj", "ij", {0}, 0.5}; /* A's M axis contiguous */
    s3.size['i' - 'a'] = 36, s3.size['k' - 'a'] = 6, s3.size['j' - 'a'] = 64;
    check_spec(&s3, 1);
}
END_TEST

START_TEST(size_one_axes_and_coef)
{
    Spec s1 = {"iuk", "kjv", "ivj", {0}, 0.37};
    s1.size['i' - 'a'] = 19, s1.size['u' - 'a'] = 1, s1.size['k' - 'a'] = 31;
    s1.size['j' - 'a'] = 47, s1.size['v' - 'a'] = 1;
    check_spec(&s1, 1);
    Spec s2 = {"ik", "kj", "ij", {0}, -2.5};
    s2.size['i' - 'a'] = 29, s2.size['k' - 'a'] = 1, s2.size['j' - 'a'] = 301;
    check_spec(&s2, 0); /* K of size 1 is an outer product: the loop nest does it */
}
END_TEST

START_TEST(small_joins_keep_loop_nest)
{
    Spec s = {"ik", "kj", "ij", {0}, 1.0};
    s.size['i' - 'a'] = 3, s.size['k' - 'a'] = 5, s.size['j' - 'a'] = 7;
    check_spec(&s, 0);
}
END_TEST

/* C = A B + 0.5 D E + F, then C += A B again: contributions add up (on 1, 2
 * and 3 threads: the group runs on a team, with barriers between its ops). */
START_TEST(several_contributions)
{
    int threads = 1 + _i;
    enum { I = 131, K = 97, J = 129, L = 23 }; /* A B: over 2^20 multiply-adds */
    Spec s = {"ik", "kj", "ij", {0}, 1.0};
    s.size['i' - 'a'] = I, s.size['k' - 'a'] = K, s.size['j' - 'a'] = J;
    s.size['l' - 'a'] = L;
    unsigned seed = 99;
    float *a = random_data(I * K, &seed), *b = random_data(K * J, &seed);
    float *d = random_data(I * L, &seed), *e = random_data(L * J, &seed);
    float *f = random_data(I * J, &seed);
    double *ref = calloc(I * J, sizeof *ref), *mag = calloc(I * J, sizeof *mag);
    ck_assert(ref && mag);
    reference(&s, a, b, ref, mag);
    reference(&s, a, b, ref, mag);
    Spec s2 = {"il", "lj", "ij", {0}, 0.5};
    memcpy(s2.size, s.size, sizeof s.size);
    reference(&s2, d, e, ref, mag);
    for (int i = 0; i < I * J; i++) {
        ref[i] += f[i];
        mag[i] += fabs(f[i]);
    }
    const char *text = "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nD[i,l] = \"d.npy\"\n"
                       "E[l,j] = \"e.npy\"\nF[i,j] = \"f.npy\"\n"
                       "C[i,j] = A[i,k] B[k,j] + 0.5 D[i,l] E[l,j] + F[i,j]\n"
                       "C[i,j] += A[i,k] B[k,j]\nexport C\n";
    fuse_input in[5];
    set_input(&in[0], "A", &s, "ik", a);
    set_input(&in[1], "B", &s, "kj", b);
    set_input(&in[2], "D", &s, "il", d);
    set_input(&in[3], "E", &s, "lj", e);
    set_input(&in[4], "F", &s, "ij", f);
    int is_contract = 0;
    float *got = run_program(text, in, 5, threads, &is_contract);
    ck_assert(is_contract);
    compare(got, ref, mag, I * J, text);
    free(got);
    free(a), free(b), free(d), free(e), free(f), free(ref), free(mag);
}
END_TEST

/* The same tensor as both operands (a self-join). */
/* Boolean joins as contraction kernels: C(i,j) = [sum_k 0.5 A(i,k) B(k,j) > 0]
 * OR [F(i,j) > 0], against a naive loop: A is 0/1, B has negative entries
 * (so a sum can cancel to 0 or go negative, and the threshold is on the sum, as
 * in the loop nest), K crosses the float kernel's K block (384), sizes odd. */
START_TEST(boolean_contractions)
{
    int threads = 1 + _i;
    enum { I = 67, K = 1001, J = 45 };
    unsigned seed = 4242;
    float *a = malloc(I * K * sizeof *a), *b = malloc(K * J * sizeof *b);
    float *f = malloc(I * J * sizeof *f);
    ck_assert(a && b && f);
    for (int i = 0; i < I * K; i++)
        a[i] = (float)(rand_r(&seed) % 17 == 0);
    for (int i = 0; i < K * J; i++) /* mostly 0, some +1 and -1 */
        b[i] = (float)((int)(rand_r(&seed) % 41) - 20 > 17) - (float)(rand_r(&seed) % 37 == 0);
    for (int i = 0; i < I * J; i++)
        f[i] = (float)(rand_r(&seed) % 13 == 0);
    Spec s = {"ik", "kj", "ij", {0}, 1.0};
    s.size['i' - 'a'] = I, s.size['k' - 'a'] = K, s.size['j' - 'a'] = J;
    fuse_input in[3];
    set_input(&in[0], "A", &s, "ik", a);
    set_input(&in[1], "B", &s, "kj", b);
    set_input(&in[2], "F", &s, "ij", f);
    const char *text = "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nF[i,j] = \"f.npy\"\n"
                       "C(i,j) = 0.5 A(i,k) B(k,j)\nC(i,j) += F(i,j)\nexport C\n";
    int is_contract = 0;
    float *got = run_program(text, in, 3, threads, &is_contract);
    ck_assert(is_contract);
    int ones = 0, cancelled = 0;
    for (int i = 0; i < I; i++)
        for (int j = 0; j < J; j++) {
            double sum = 0;
            int any = 0;
            for (int k = 0; k < K; k++) {
                sum += 0.5 * a[i * K + k] * b[k * J + j];
                any |= a[i * K + k] * b[k * J + j] != 0;
            }
            float want = (float)(sum > 0 || f[i * J + j] > 0);
            cancelled += any && sum <= 0 && f[i * J + j] == 0;
            ones += want == 1.0f;
            ck_assert_msg(got[i * J + j] == want, "C(%d,%d) = %g, want %g (sum %g)", i, j,
                          (double)got[i * J + j], (double)want, sum);
        }
    ck_assert(ones > 0 && ones < I * J && cancelled > 0); /* the data tests both sides */
    free(got);
    free(a), free(b), free(f);
}
END_TEST

START_TEST(self_join)
{
    Spec s = {"xy", "yz", "xz", {0}, 1.0};
    s.size['x' - 'a'] = s.size['y' - 'a'] = s.size['z' - 'a'] = 67;
    unsigned seed = 7;
    float *p = random_data(67 * 67, &seed);
    double *ref = calloc(67 * 67, sizeof *ref), *mag = calloc(67 * 67, sizeof *mag);
    ck_assert(ref && mag);
    reference(&s, p, p, ref, mag);
    fuse_input in[1];
    set_input(&in[0], "P", &s, "xy", p);
    int is_contract = 0;
    float *got = run_program("P[x,y] = \"p.npy\"\nC[x,z] = P[x,y] P[y,z]\nexport C\n", in, 1, 1,
                             &is_contract);
    ck_assert(is_contract);
    compare(got, ref, mag, 67 * 67, "self join");
    free(got);
    free(p), free(ref), free(mag);
}
END_TEST

/* Threads split the output columns: each cell is computed by one thread in the
 * same order, so 1, 2, 3 and 4 threads give the same bits. */
/* _i 0: 131 columns, shared out among threads by column panels; _i 1: a thin
 * product (45 columns, 1001 rows), shared out by row panels (is_split_m), with
 * an MR-unaligned M so the last thread's share ends mid-panel. */
START_TEST(threads_same_result)
{
    Spec s = {"bik", "bkj", "bij", {0}, 0.75};
    s.size['b' - 'a'] = 2, s.size['i' - 'a'] = _i ? 1001 : 67, s.size['k' - 'a'] = 97;
    s.size['j' - 'a'] = _i ? 45 : 131; /* over 2^20 multiply-adds: the group runs on a team */
    unsigned seed = 3;
    float *a = random_data(count_of(&s, "bik"), &seed), *b = random_data(count_of(&s, "bkj"), &seed);
    int64_t n = count_of(&s, "bij");
    double *ref = calloc((size_t)n, sizeof *ref), *mag = calloc((size_t)n, sizeof *mag);
    ck_assert(ref && mag);
    reference(&s, a, b, ref, mag);
    const char *text = "A[b,i,k] = \"a.npy\"\nB[b,k,j] = \"b.npy\"\n"
                       "C[b,i,j] = 0.75 A[b,i,k] B[b,k,j]\nexport C\n";
    fuse_input in[2];
    set_input(&in[0], "A", &s, "bik", a);
    set_input(&in[1], "B", &s, "bkj", b);
    int is_contract = 0;
    float *one = run_program(text, in, 2, 1, &is_contract);
    ck_assert(is_contract);
    compare(one, ref, mag, n, "1 thread");
    for (int t = 2; t <= 4; t++) {
        float *many = run_program(text, in, 2, t, &is_contract);
        ck_assert_msg(memcmp(one, many, (size_t)n * sizeof *one) == 0, "%d threads differ", t);
        free(many);
    }
    free(one);
    free(a), free(b), free(ref), free(mag);
}
END_TEST

/* Softmax uses an inline polynomial exp (lower/fastmath.c): rows spanning the
 * whole float exponent range against a double-precision softmax. */
START_TEST(softmax_fast_exp)
{
    enum { ROWS = 3, N = 4001 };
    float *x = malloc(sizeof(float) * ROWS * N);
    ck_assert_ptr_nonnull(x);
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < N; i++)
            x[r * N + i] = (float)((i - N / 2) * (r == 0 ? 0.05 : r == 1 ? 0.001 : 0.0001));
    fuse_input in;
    memset(&in, 0, sizeof in);
    in.name = "X";
    in.tensor = (fuse_tensor){FUSE_F32, 2, {ROWS, N}, x};
    int is_contract = 0;
    float *got = run_program("X[r,i] = \"x.npy\"\nC[r,i.] = softmax(X[r,i])\nexport C\n", &in,
                             1, 1, &is_contract);
    for (int r = 0; r < ROWS; r++) {
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < N; i++)
            mx = fmax(mx, x[r * N + i]);
        for (int i = 0; i < N; i++)
            sum += exp(x[r * N + i] - mx);
        for (int i = 0; i < N; i++) {
            double want = exp(x[r * N + i] - mx) / sum, g = got[r * N + i];
            if (want > 1e-30)
                ck_assert_msg(fabs(g - want) <= 1e-5 * want, "row %d col %d: %.9g vs %.9g", r, i,
                              g, want);
            else
                ck_assert_msg(g >= 0.0 && g <= 1e-29, "row %d col %d: %.9g vs %.9g", r, i, g, want);
        }
    }
    free(got);
    free(x);
}
END_TEST

/* Softmax rows (lower/emit.c: three sweeps, exp for x - max <= 0 in
 * lower/fastmath.c): lengths 1 to 70001 (crossing vector widths and unrolled
 * blocks), a row spanning -1e4..80, a row with -inf entries (a leading run of
 * them, then sparse), an all -inf row (NaN: max -inf, -inf - -inf), along the
 * last axis and along the first (strided rows), against a double softmax: relative
 * 1e-6 plus |x - max| 2^-23 (x - max is rounded to float before the exp, in the
 * three sweeps too), or at most 1e-30 where the true value is below 1e-30. */
/* The softmax of a strided row into want; returns the row's max. */
static double softmax_ref_row(const float *x, int n, int stride, double *want)
{
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, x[i * stride]);
    for (int i = 0; i < n; i++)
        sum += exp(x[i * stride] - mx);
    for (int i = 0; i < n; i++)
        want[i] = exp(x[i * stride] - mx) / sum;
    return mx;
}

/* Row r of a rows x n test input: random, huge spread, -inf entries, all -inf. */
static void softmax_fill_row(float *row, int n, int stride, int r, unsigned *seed)
{
    for (int i = 0; i < n; i++) {
        double u = (double)rand_r(seed) / RAND_MAX;
        double v = r == 0 ? 10.0 * u - 5.0 : r == 1 ? -1e4 + (1e4 + 80.0) * u
                 : r == 2 ? (i < n / 2 || rand_r(seed) % 3 == 0 ? -INFINITY : 4.0 * u)
                 : -INFINITY;
        row[i * stride] = (float)v;
    }
    if (r == 1)
        row[(n / 3) * stride] = 80.0f; /* the row's max somewhere inside */
    if (r == 2)
        row[(n - 1) * stride] = 1.0f;  /* at least one finite entry */
}

/* Checks C against the reference; `along_first`: the softmax axis is the first. */
static void softmax_check_rows(const float *x, const float *got, int rows, int n, int along_first)
{
    double *want = malloc(sizeof(double) * (size_t)n);
    ck_assert_ptr_nonnull(want);
    for (int r = 0; r < rows; r++) {
        int stride = along_first ? rows : 1, base = along_first ? r : r * n;
        double mx = softmax_ref_row(x + base, n, stride, want);
        for (int i = 0; i < n; i++) {
            double g = got[base + i * stride], d = mx - x[base + i * stride];
            if (r == 3)
                ck_assert_msg(isnan(g), "n %d all -inf row col %d: %g", n, i, g);
            else if (want[i] >= 1e-30)
                ck_assert_msg(fabs(g - want[i]) <= (1e-6 + d * 0x1p-23) * want[i],
                              "n %d row %d col %d: %.9g vs %.9g", n, r, i, g, want[i]);
            else
                ck_assert_msg(g >= 0.0 && g <= 1e-30, "n %d row %d col %d: %.9g vs %.9g", n, r, i,
                              g, want[i]);
        }
    }
    free(want);
}

START_TEST(softmax_rows)
{
    static const int lengths[] = {1, 3, 17, 64, 1000, 5000, 70001};
    enum { ROWS = 4 };
    int n = lengths[_i / 2], along_first = _i % 2;
    unsigned seed = 31u + (unsigned)_i;
    float *x = malloc(sizeof(float) * ROWS * (size_t)n);
    ck_assert_ptr_nonnull(x);
    for (int r = 0; r < ROWS; r++)
        softmax_fill_row(x + (along_first ? r : r * n), n, along_first ? ROWS : 1, r, &seed);
    fuse_input in;
    memset(&in, 0, sizeof in);
    in.name = "X";
    in.tensor = along_first ? (fuse_tensor){FUSE_F32, 2, {n, ROWS}, x}
                            : (fuse_tensor){FUSE_F32, 2, {ROWS, n}, x};
    const char *text = along_first ? "X[i,r] = \"x.npy\"\nC[i.,r] = softmax(X[i,r])\nexport C\n"
                                   : "X[r,i] = \"x.npy\"\nC[r,i.] = softmax(X[r,i])\nexport C\n";
    int is_contract = 0;
    float *got = run_program(text, &in, 1, 1, &is_contract);
    softmax_check_rows(x, got, ROWS, n, along_first);
    free(got);
    free(x);
}
END_TEST

/* Masked softmax rows (lower/emit_rows.c: vectorised sweeps, inline exp): random
 * masks over rows of 3 to 5000, a fully masked row (all 0), a NaN under the mask
 * (must not reach the row), with and without fill (masked entries then enter the
 * sum with value fill), against a double reference (tolerances as softmax_rows). */
static void masked_ref_row(const float *x, const float *mk, int n, const double *fill,
                            double *want)
{
    double mx = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        if (mk[i] != 0 || fill)
            mx = fmax(mx, mk[i] != 0 ? x[i] : *fill);
    for (int i = 0; i < n; i++)
        if (mk[i] != 0 || fill)
            sum += exp((mk[i] != 0 ? x[i] : *fill) - mx);
    for (int i = 0; i < n; i++)
        want[i] = mk[i] != 0 ? exp(x[i] - mx) / sum : 0.0;
}

START_TEST(masked_softmax_rows)
{
    static const int lengths[] = {3, 17, 1000, 5000};
    enum { ROWS = 3 };
    int n = lengths[_i / 2];
    const double fill = -1.5, *with_fill = _i % 2 ? &fill : NULL;
    unsigned seed = 57u + (unsigned)_i;
    float *x = random_data(ROWS * n, &seed), *mk = malloc(sizeof(float) * ROWS * (size_t)n);
    double *want = malloc(sizeof(double) * (size_t)n);
    ck_assert(mk && want);
    for (int k = 0; k < ROWS * n; k++) {
        x[k] *= 6.0f;
        mk[k] = k / n == 1 ? 0.0f : (float)(rand_r(&seed) % 4 != 0);
    }
    mk[2 * n] = 1.0f, mk[2 * n + 1] = 0.0f;
    x[2 * n + 1] = NAN; /* masked out */
    fuse_input in[2];
    memset(in, 0, sizeof in);
    in[0].name = "X", in[1].name = "M";
    in[0].tensor = (fuse_tensor){FUSE_F32, 2, {ROWS, n}, x};
    in[1].tensor = (fuse_tensor){FUSE_F32, 2, {ROWS, n}, mk};
    char text[256];
    snprintf(text, sizeof text, "X[r,i] = \"x.npy\"\nM[r,i] = \"m.npy\"\n"
             "C[r,i] = masked_softmax(X[r,i], mask=M[r,i], axis=i%s)\nexport C\n",
             with_fill ? ", fill=-1.5" : "");
    int is_contract = 0;
    float *got = run_program(text, in, 2, 1, &is_contract);
    for (int r = 0; r < ROWS; r++) {
        masked_ref_row(x + r * n, mk + r * n, n, with_fill, want);
        for (int i = 0; i < n; i++) {
            double g = got[r * n + i]; /* |x - max| <= 12 */
            ck_assert_msg(fabs(g - want[i]) <= (1e-6 + 12.0 * 0x1p-23) * want[i] + 1e-30,
                          "n %d fill %d row %d col %d: %.9g vs %.9g", n, _i % 2, r, i, g, want[i]);
        }
    }
    free(got), free(x), free(mk), free(want);
}
END_TEST

/* Layer norm in two passes (lower/emit_rows.c: shifted sums in double): rows
 * around 1e3 with a small spread (cancellation in the variance), rows with an
 * outlier first element, constant rows (variance 0: eps only), along the last
 * axis and along the first (strided rows), against a two-pass double reference. */
static void lnorm_ref(const float *x, int rows, int n, int along_rows, double eps, double *out)
{
    for (int r = 0; r < rows; r++) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < n; i++)
            mean += along_rows ? x[i * rows + r] : x[r * n + i];
        mean /= n;
        for (int i = 0; i < n; i++) {
            double d = (along_rows ? x[i * rows + r] : x[r * n + i]) - mean;
            var += d * d;
        }
        var /= n;
        for (int i = 0; i < n; i++) {
            int at = along_rows ? i * rows + r : r * n + i;
            out[at] = (x[at] - mean) / sqrt(var + eps);
        }
    }
}

/* Row-wise ops big enough for a team (2^16 cells, rows along the first slot)
 * share out their rows among threads: softmax, layer norm and masked softmax on
 * 301 x 257 give the same bits on 1, 2 and 3 threads, and the reference's values
 * (softmax and layer norm; the masked one, with a mask keeping everything, is
 * the plain softmax). */
START_TEST(row_ops_threads)
{
    enum { ROWS = 301, N = 257 };
    static const char *const texts[3] = {
        "X[r,i] = \"x.npy\"\nC[r,i] = softmax(X[r,i.])\nexport C\n",
        "X[r,i] = \"x.npy\"\nC[r,i] = lnorm(X[r,i])\nexport C\n",
        ("X[r,i] = \"x.npy\"\nM[r,i] = \"m.npy\"\n"
         "C[r,i] = masked_softmax(X[r,i], mask=M[r,i], axis=i)\nexport C\n")};
    unsigned seed = 17;
    float *x = random_data(ROWS * N, &seed), *m = malloc(sizeof(float) * ROWS * N);
    double *want = malloc(sizeof(double) * ROWS * N);
    ck_assert(x && m && want);
    for (int k = 0; k < ROWS * N; k++) {
        x[k] *= 20.0f;
        m[k] = 1.0f;
    }
    fuse_input in[2];
    memset(in, 0, sizeof in);
    in[0].name = "X";
    in[0].tensor = (fuse_tensor){FUSE_F32, 2, {ROWS, N}, x};
    in[1].name = "M";
    in[1].tensor = (fuse_tensor){FUSE_F32, 2, {ROWS, N}, m};
    const char *text = texts[_i];
    size_t n_in = _i == 2 ? 2 : 1; /* M: the masked softmax's alone */
    int is_contract = 0;
    float *one = run_program(text, in, n_in, 1, &is_contract);
    for (int t = 2; t <= 3; t++) {
        float *many = run_program(text, in, n_in, t, &is_contract);
        ck_assert_msg(memcmp(one, many, sizeof(float) * ROWS * N) == 0, "%s: %d threads differ",
                      text, t);
        free(many);
    }
    if (_i == 1) {
        lnorm_ref(x, ROWS, N, 0, 1e-5, want);
        for (int k = 0; k < ROWS * N; k++)
            ck_assert_msg(fabs(one[k] - want[k]) <= 1e-5 * (1.0 + fabs(want[k])),
                          "lnorm cell %d: got %.9g, want %.9g", k, (double)one[k], want[k]);
    } else {
        for (int r = 0; r < ROWS; r++) {
            double mx = softmax_ref_row(x + r * N, N, 1, want);
            for (int i = 0; i < N; i++) {
                double g = one[r * N + i], d = mx - x[r * N + i];
                ck_assert_msg(fabs(g - want[i]) <= (1e-6 + d * 0x1p-23) * want[i] + 1e-30,
                              "%s row %d col %d: %.9g vs %.9g", text, r, i, g, want[i]);
            }
        }
    }
    free(one);
    free(x), free(m), free(want);
}
END_TEST

START_TEST(lnorm_two_pass)
{
    enum { ROWS = 5, N = 513 };
    float *x = malloc(sizeof(float) * ROWS * N);
    double *want = malloc(sizeof(double) * ROWS * N);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(want);
    unsigned seed = 7;
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < N; i++) {
            double u = (double)rand_r(&seed) / RAND_MAX - 0.5;
            double v = r == 0 ? 1e3 + u : r == 1 ? -3e3 + 0.01 * u : r == 2 ? u : r == 3 ? 2.5 : u;
            x[r * N + i] = (float)(r == 4 && i == 0 ? 1e3 : v);
        }
    fuse_input in;
    memset(&in, 0, sizeof in);
    in.name = "X";
    in.tensor = (fuse_tensor){FUSE_F32, 2, {ROWS, N}, x};
    for (int along_rows = 0; along_rows < 2; along_rows++) {
        if (along_rows)
            in.tensor = (fuse_tensor){FUSE_F32, 2, {N, ROWS}, x};
        int is_contract = 0;
        const char *text = along_rows ? "X[i,r] = \"x.npy\"\nC[i,r] = lnorm(X[i,r], axis=i)\nexport C\n"
                                      : "X[r,i] = \"x.npy\"\nC[r,i] = lnorm(X[r,i])\nexport C\n";
        float *got = run_program(text, &in, 1, 1, &is_contract);
        lnorm_ref(x, ROWS, N, along_rows, 1e-5, want);
        for (int k = 0; k < ROWS * N; k++)
            ck_assert_msg(fabs(got[k] - want[k]) <= 1e-5 * (1.0 + fabs(want[k])),
                          "layout %d cell %d: got %.9g, want %.9g", along_rows, k, (double)got[k],
                          want[k]);
        free(got);
    }
    free(want);
    free(x);
}
END_TEST

/* tanh and gelu use the inline tanh (lower/fastmath.c): values from 1e-30 to
 * 1e4 in both signs, 0, -0 and a NaN, against libm's tanh in double (relative
 * 1e-5 or absolute 1e-6). */
static double gelu_tanh_ref(double x);

START_TEST(inline_tanh)
{
    enum { N = 4003 };
    float *x = malloc(sizeof(float) * N);
    ck_assert_ptr_nonnull(x);
    for (int i = 0; i < N - 3; i++) {
        double mag = pow(10.0, -30.0 + 34.0 * (double)(i / 2) / (double)((N - 3) / 2));
        x[i] = (float)(i % 2 ? -mag : mag);
    }
    x[N - 3] = 0.0f;
    x[N - 2] = -0.0f;
    x[N - 1] = NAN;
    fuse_input in;
    memset(&in, 0, sizeof in);
    in.name = "X";
    in.tensor = (fuse_tensor){FUSE_F32, 1, {N}, x};
    for (int v = 0; v < 2; v++) {
        int is_contract = 0;
        float *got = run_program(v ? "X[i] = \"x.npy\"\nC[i] = gelu(X[i])\nexport C\n"
                                   : "X[i] = \"x.npy\"\nC[i] = tanh(X[i])\nexport C\n",
                                 &in, 1, 1, &is_contract);
        for (int i = 0; i < N - 1; i++) {
            double want = v ? gelu_tanh_ref(x[i]) : tanh(x[i]);
            ck_assert_msg(fabs(got[i] - want) <= fmax(1e-5 * fabs(want), 1e-6) ||
                              (v && fabs(got[i] - want) <= 1e-5 * fabs(x[i])),
                          "%s(%.9g): got %.9g, want %.9g", v ? "gelu" : "tanh", (double)x[i],
                          (double)got[i], want);
        }
        if (!v) {
            ck_assert(!signbit(got[N - 3]) && signbit(got[N - 2]));
            ck_assert(fabs(got[N / 2]) > 0.0 && got[0] == x[0]); /* tiny x: tanh x = x */
        }
        ck_assert(isnan(got[N - 1]));
        free(got);
    }
    free(x);
}
END_TEST

/* Terms of 3 and 4 factors are split into pairwise joins (ir/chain.c), each a
 * contraction kernel; a shifted factor keeps the whole join. Reference: plain
 * loops in double. C[i,l] = 0.5 A[i,j] B[j,k] X[k,l]; C[i] = A B X V[l] (a
 * 4th factor, l summed: the greedy order goes right to left, matrix-vector
 * steps); a shift on X. */
static void chain_case(int variant, int64_t ni, int64_t nj, int64_t nk, int64_t nl)
{
    unsigned seed = 7u + (unsigned)variant;
    float *a = random_data(ni * nj, &seed), *bm = random_data(nj * nk, &seed);
    float *x = random_data(nk * nl, &seed), *v = random_data(nl, &seed);
    static const char *const eqs[] = {
        "C[i,l] = 0.5 A[i,j] B[j,k] X[k,l]", "C[i] = A[i,j] B[j,k] X[k,l] V[l]",
        "C[i,l] = A[i,j] B[j,k] X[k+1,l]"};
    char text[512];
    snprintf(text, sizeof text, "A[i,j] = \"a.npy\"\nB[j,k] = \"b.npy\"\nX[k,l] = \"x.npy\"\n"
             "V[l] = \"v.npy\"\n%s\nexport C\n", eqs[variant]);
    fuse_input in[4];
    memset(in, 0, sizeof in);
    in[0] = (fuse_input){.name = "A", .tensor = {FUSE_F32, 2, {ni, nj}, a}};
    in[1] = (fuse_input){.name = "B", .tensor = {FUSE_F32, 2, {nj, nk}, bm}};
    in[2] = (fuse_input){.name = "X", .tensor = {FUSE_F32, 2, {nk, nl}, x}};
    in[3] = (fuse_input){.name = "V", .tensor = {FUSE_F32, 1, {nl}, v}};
    int is_contract = 0;
    float *got = run_program(text, in, 4, 1, &is_contract);
    /* matrix products after the split; matrix-vector steps and the unsplit join
     * are loop nests */
    ck_assert_msg(is_contract == (variant == 0), "%s: contraction kernels: %d", eqs[variant],
                  is_contract);
    for (int64_t i = 0; i < ni; i++)
        for (int64_t l = 0; l < (variant == 1 ? 1 : nl); l++) {
            double want = 0.0, mag = 0.0;
            for (int64_t j = 0; j < nj; j++)
                for (int64_t k = 0; k < nk; k++)
                    for (int64_t m = 0; m < (variant == 1 ? nl : 1); m++) {
                        int64_t ll = variant == 1 ? m : l, kk = variant == 2 ? k + 1 : k;
                        if (kk >= nk)
                            continue;
                        double t = (double)a[i * nj + j] * bm[j * nk + k] * x[kk * nl + ll]
                                 * (variant == 1 ? v[ll] : variant == 0 ? 0.5 : 1.0);
                        want += t;
                        mag += fabs(t);
                    }
            double g = got[variant == 1 ? i : i * nl + l];
            ck_assert_msg(fabs(g - want) <= 1e-5 * (mag + 1e-30), "%s: %lld,%lld: %.9g vs %.9g",
                          eqs[variant], (long long)i, (long long)l, g, want);
        }
    free(got);
    free(a);
    free(bm);
    free(x);
    free(v);
}

START_TEST(many_factor_chains)
{
    chain_case(0, 37, 41, 29, 53);
    chain_case(1, 61, 43, 47, 31);
    chain_case(2, 13, 7, 11, 5);
}
END_TEST

/* Calls whose result an equation only copies write the LHS directly
 * (lower/fold.c); forms that must keep the copy (a coefficient, a second
 * contribution, transposed axes) and a NaN in a row. Reference in double:
 * softmax of X along i (rows r), or relu. */
static double soft_ref(const float *x, int n, int r, int i)
{
    double mx = -INFINITY, sum = 0.0;
    for (int k = 0; k < n; k++)
        mx = fmax(mx, x[r * n + k]);
    for (int k = 0; k < n; k++)
        sum += exp(x[r * n + k] - mx);
    return exp(x[r * n + i] - mx) / sum;
}

START_TEST(call_results_written_in_place)
{
    enum { R = 5, N = 37 };
    static const char *const eqs[] = {
        "C[r,i.] = softmax(X[r,i])", "C[r,i.] = 2.0 softmax(X[r,i])",
        "C[r,i.] = softmax(X[r,i]) + X[r,i]", "C[i,r] = softmax(X[r,i.])",
        "C[r,i] = relu(X[r,i])"};
    unsigned seed = 99u;
    float *x = random_data(R * N, &seed);
    x[2 * N + 3] = NAN;
    fuse_input in;
    memset(&in, 0, sizeof in);
    in.name = "X";
    in.tensor = (fuse_tensor){FUSE_F32, 2, {R, N}, x};
    for (int v = 0; v < 5; v++) {
        char text[256];
        snprintf(text, sizeof text, "X[r,i] = \"x.npy\"\n%s\nexport C\n", eqs[v]);
        int is_contract = 0;
        float *got = run_program(text, &in, 1, 1, &is_contract);
        for (int r = 0; r < R; r++)
            for (int i = 0; i < N; i++) {
                double xv = x[r * N + i], sm = soft_ref(x, N, r, i);
                double want = v == 0 ? sm : v == 1 ? 2 * sm : v == 2 ? sm + xv : v == 3 ? sm
                            : (xv > 0 ? xv : 0);
                float g = got[v == 3 ? i * R + r : r * N + i];
                if (v < 4 && r == 2) /* the NaN makes its whole softmax row NaN */
                    ck_assert_msg(isnan(g), "%s: row 2 col %d: %g", eqs[v], i, (double)g);
                else if (isnan(want))
                    ck_assert_msg(isnan(g), "%s: %d,%d: %g", eqs[v], r, i, (double)g);
                else
                    ck_assert_msg(fabs(g - want) <= 1e-5 * (1 + fabs(want)),
                                  "%s: %d,%d: %.9g vs %.9g", eqs[v], r, i, (double)g, want);
            }
        free(got);
    }
    free(x);
}
END_TEST

/* ---- fusion: elementwise epilogues in the contraction's write-out (lower/fusion.c) ---- */

enum { FM = 67, FK = 53, FN = 71, FB = 3 };

/* Runs `text`; vals[w] = export want[w] (malloc'd); *fused counts the contraction
 * kernels that run an epilogue (".contract.fusedN" functions in the IR, not
 * their ".epi" parts). */
static void run_named(const char *text, fuse_input *in, size_t n_in, int threads,
                      const char *const *want, float **vals, int n_want, int *fused)
{
    char *ir = run_collect(text, in, n_in, threads, want, vals, n_want);
    *fused = 0;
    for (const char *l = ir; l; l = strchr(l + 1, '\n'))
        if (strncmp(l + (*l == '\n'), "define", 6) == 0) {
            const char *end = strchr(l + 1, '\n');
            const char *f = strstr(l + 1, ".contract.fused"), *epi = strstr(l + 1, ".epi(");
            *fused += f && (!end || f < end) && !(epi && (!end || epi < end));
        }
    fuse_free(ir);
}


/* The inputs of the fusion cases: X[b,i,k] (batch b only in the batched case,
 * else b = 0), W[k,j], Bn[j], Bm[i], M[i,j]. */
typedef struct FuseData {
    float *x, *w, *bn, *bm, *mask;
    double *p; /* p[(b FM + i) FN + j] = sum_k X W, in double */
    double *mag;
    fuse_input in[5];
} FuseData;

static void fuse_data_init(FuseData *d, int batched)
{
    unsigned seed = 4242u;
    int nb = batched ? FB : 1;
    d->x = random_data(nb * FM * FK, &seed);
    d->w = random_data(FK * FN, &seed);
    d->bn = random_data(FN, &seed);
    d->bm = random_data(FM, &seed);
    d->mask = random_data(FM * FN, &seed);
    d->p = calloc((size_t)nb * FM * FN, sizeof *d->p);
    d->mag = calloc((size_t)nb * FM * FN, sizeof *d->mag);
    ck_assert(d->p && d->mag);
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < FM; i++)
            for (int j = 0; j < FN; j++)
                for (int k = 0; k < FK; k++) {
                    double v = (double)d->x[(b * FM + i) * FK + k] * d->w[k * FN + j];
                    d->p[(b * FM + i) * FN + j] += v;
                    d->mag[(b * FM + i) * FN + j] += fabs(v);
                }
    const char *names[5] = {"X", "W", "Bn", "Bm", "M"};
    float *data[5] = {d->x, d->w, d->bn, d->bm, d->mask};
    fuse_tensor shapes[5] = {{FUSE_F32, 2, {FM, FK}, NULL}, {FUSE_F32, 2, {FK, FN}, NULL},
                             {FUSE_F32, 1, {FN}, NULL}, {FUSE_F32, 1, {FM}, NULL},
                             {FUSE_F32, 2, {FM, FN}, NULL}};
    if (batched)
        shapes[0] = (fuse_tensor){FUSE_F32, 3, {FB, FM, FK}, NULL};
    for (int t = 0; t < 5; t++) {
        memset(&d->in[t], 0, sizeof d->in[t]);
        d->in[t].name = names[t];
        d->in[t].tensor = shapes[t];
        d->in[t].tensor.data = data[t];
    }
}

static void fuse_data_free(FuseData *d)
{
    free(d->x), free(d->w), free(d->bn), free(d->bm), free(d->mask), free(d->p), free(d->mag);
}

static double gelu_tanh_ref(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

/* Case v's expected value at cell (b, i, j) from P = the product there. */
static double fused_want(const FuseData *d, int v, int b, int i, int j)
{
    double p = d->p[(b * FM + i) * FN + j];
    double r = p + d->bn[j] > 0 ? p + d->bn[j] : 0;
    switch (v) {
    case 0: return p + d->bn[j];
    case 1: return p + d->bm[i];
    case 2: return r;
    case 3: return gelu_ref(p + d->bn[j]);
    case 4: return 1.0 / (1.0 + exp(-(p + d->bm[i]) / 2.0));
    case 5: return 0.5 * r * d->mask[i * FN + j];
    case 6: return p + d->bn[j]; /* stored transposed */
    case 7: return 2.0 * p - d->bm[i] + 1.5;
    default: return p + d->bn[j]; /* batched */
    }
}

static const char *const fused_eqs[] = {
    "C[i,j] = X[i,k] W[k,j] + Bn[j]",             /* bias along N */
    "C[i,j] = X[i,k] W[k,j] + Bm[i]",             /* bias along M */
    "C[i,j] = relu(X[i,k] W[k,j] + Bn[j])",       /* bias, activation */
    "C[i,j] = gelu(X[i,k] W[k,j] + Bn[j])",       /* the bias fuses, gelu not */
    "C[i,j] = sig(X[i,k] W[k,j] + Bm[i], 2.0)",
    "C[i,j] = 0.5 relu(X[i,k] W[k,j] + Bn[j]) M[i,j]", /* scale and mask */
    "C[j,i] = X[i,k] W[k,j] + Bn[j]",             /* transposed output */
    "C[i,j] = 2.0 X[i,k] W[k,j] - Bm[i] + 1.5",   /* scale, constant */
    "C[b,i,j] = X[b,i,k] W[k,j] + Bn[j]",         /* batch axis */
};

/* Each case fuses its elementwise tail into the kernel and matches the reference
 * (every third case with 3 threads). */
START_TEST(fused_epilogues)
{
    int v = _i, threads = v % 3 == 2 ? 3 : 1, batched = v == 8;
    FuseData d;
    fuse_data_init(&d, batched);
    char text[512];
    snprintf(text, sizeof text,
             "X[%s] = \"x.npy\"\nW[k,j] = \"w.npy\"\nBn[j] = \"bn.npy\"\nBm[i] = \"bm.npy\"\n"
             "M[i,j] = \"m.npy\"\n%s\nexport C\n", batched ? "b,i,k" : "i,k", fused_eqs[v]);
    int fused = 0;
    const char *name = "C";
    float *got = NULL;
    run_named(text, d.in, 5, threads, &name, &got, 1, &fused);
    ck_assert_msg(fused == 1, "%s: %d fused kernels", fused_eqs[v], fused);
    for (int b = 0; b < (batched ? FB : 1); b++)
        for (int i = 0; i < FM; i++)
            for (int j = 0; j < FN; j++) {
                double want = fused_want(&d, v, b, i, j);
                double tol = 1e-5 * (2.0 + 2.0 * d.mag[(b * FM + i) * FN + j] + fabs(want));
                float g = got[v == 6 ? j * FM + i : (b * FM + i) * FN + j];
                ck_assert_msg(fabs(g - want) <= tol, "%s (%d threads): %d,%d,%d: %.9g vs %.9g",
                              fused_eqs[v], threads, b, i, j, (double)g, want);
            }
    free(got);
    fuse_data_free(&d);
}
END_TEST

/* Cases that must not fuse (or fuse only partly) stay correct: the product read
 * by a later group, exported, or consumed by a row-wise softmax. */
START_TEST(unfused_consumers)
{
    FuseData d;
    fuse_data_init(&d, 0);
    const char *text =
        "X[i,k] = \"x.npy\"\nW[k,j] = \"w.npy\"\nBn[j] = \"bn.npy\"\nBm[i] = \"bm.npy\"\n"
        "M[i,j] = \"m.npy\"\n"
        "H[i,j] = X[i,k] W[k,j]\n"                  /* alone in its group: no epilogue */
        "G[i,j] = relu(H[i,j]) + H[i+1,j] Bm[i]\n"   /* reads H at other cells */
        "S[i,j] = softmax(X[i,k] W[k,j.]) + Bn[j]\n" /* softmax is not elementwise */
        "export H\nexport G\nexport S\n";
    int fused = -1;
    const char *want[3] = {"H", "G", "S"};
    float *vals[3];
    run_named(text, d.in, 5, 2, want, vals, 3, &fused);
    ck_assert_int_eq(fused, 0);
    float *h = vals[0], *g = vals[1], *s = vals[2];
    for (int i = 0; i < FM; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < FN; j++)
            mx = fmax(mx, d.p[i * FN + j]);
        for (int j = 0; j < FN; j++)
            sum += exp(d.p[i * FN + j] - mx);
        for (int j = 0; j < FN; j++) {
            double p = d.p[i * FN + j], tol = 1e-5 * (1.0 + d.mag[i * FN + j]);
            ck_assert_msg(fabs(h[i * FN + j] - p) <= tol, "H %d,%d", i, j);
            double other = i + 1 < FM ? d.p[(i + 1) * FN + j] : 0.0;
            double gw = (p > 0 ? p : 0) + other * d.bm[i];
            ck_assert_msg(fabs(g[i * FN + j] - gw) <= 1e-4 * (2.0 + d.mag[i * FN + j]),
                          "G %d,%d: %.9g vs %.9g", i, j, (double)g[i * FN + j], gw);
            double sw = exp(p - mx) / sum + d.bn[j];
            ck_assert_msg(fabs(s[i * FN + j] - sw) <= 1e-4, "S %d,%d: %.9g vs %.9g", i, j,
                          (double)s[i * FN + j], sw);
        }
    }
    free(h), free(g), free(s);
    fuse_data_free(&d);
}
END_TEST

/* An intermediate of the same group that is exported: the bias fuses into its
 * kernel, the next equation still reads the whole, finished Z. */
START_TEST(fused_intermediate_exported)
{
    FuseData d;
    fuse_data_init(&d, 0);
    const char *text =
        "X[i,k] = \"x.npy\"\nW[k,j] = \"w.npy\"\nBn[j] = \"bn.npy\"\n"
        "Z[i,j] = X[i,k] W[k,j] + Bn[j]\nC[i,j] = relu(Z[i,j]) + Z[i+1,j]\n"
        "export Z\nexport C\n";
    int fused = 0;
    const char *want[2] = {"Z", "C"};
    float *vals[2];
    run_named(text, d.in, 3, 2, want, vals, 2, &fused);
    ck_assert_int_eq(fused, 1);
    float *z = vals[0], *c = vals[1];
    for (int i = 0; i < FM; i++)
        for (int j = 0; j < FN; j++) {
            double zw = d.p[i * FN + j] + d.bn[j];
            double next = i + 1 < FM ? d.p[(i + 1) * FN + j] + d.bn[j] : 0.0;
            double cw = (zw > 0 ? zw : 0) + next;
            ck_assert_msg(fabs(z[i * FN + j] - zw) <= 1e-5 * (2.0 + d.mag[i * FN + j]), "Z %d,%d", i, j);
            ck_assert_msg(fabs(c[i * FN + j] - cw) <= 1e-4 * (2.0 + d.mag[i * FN + j]),
                          "C %d,%d: %.9g vs %.9g", i, j, (double)c[i * FN + j], cw);
        }
    free(z), free(c);
    fuse_data_free(&d);
}
END_TEST

/* ---- cell runs: elementwise ops of a group in one loop nest (lower/fusion.c) ---- */

/* The inputs of the cell-run cases: X[i,j], Y[i,j], Bi[i], Bj[j]. */
typedef struct CellData {
    int ni, nj;
    float *x, *y, *bi, *bj;
    fuse_input in[4];
} CellData;

static void cell_data_init(CellData *d, int ni, int nj)
{
    unsigned seed = 777u + (unsigned)(ni * 31 + nj);
    d->ni = ni, d->nj = nj;
    d->x = random_data(ni * nj, &seed);
    d->y = random_data(ni * nj, &seed);
    d->bi = random_data(ni, &seed);
    d->bj = random_data(nj, &seed);
    const char *names[4] = {"X", "Y", "Bi", "Bj"};
    float *data[4] = {d->x, d->y, d->bi, d->bj};
    fuse_tensor shapes[4] = {{FUSE_F32, 2, {ni, nj}, NULL}, {FUSE_F32, 2, {ni, nj}, NULL},
                             {FUSE_F32, 1, {ni}, NULL}, {FUSE_F32, 1, {nj}, NULL}};
    for (int t = 0; t < 4; t++) {
        memset(&d->in[t], 0, sizeof d->in[t]);
        d->in[t].name = names[t];
        d->in[t].tensor = shapes[t];
        d->in[t].tensor.data = data[t];
    }
}

static void cell_data_free(CellData *d)
{
    free(d->x), free(d->y), free(d->bi), free(d->bj);
}

static double relu_ref(double x)
{
    return x > 0 ? x : 0;
}

/* Case v's expected A[i,j]. */
static double cell_want(const CellData *d, int v, int i, int j)
{
    int nj = d->nj;
    double x = d->x[i * nj + j], y = d->y[i * nj + j];
    switch (v) {
    case 0: return relu_ref(x * y + x);
    case 1: return tanh(0.5 * x) + y * d->bj[j];
    case 2: return fabs(x + d->bi[i]) * y;
    case 3: return relu_ref(x * y) + (i + 1 < d->ni ? d->x[(i + 1) * nj + j] : 0.0) + d->y[j];
    case 4: return fabs(tanh(0.5 * (relu_ref(x * y) + x)) * y) + 1.0;
    case 5: return gelu_tanh_ref(x - d->bj[j]) * y;
    case 6: return relu_ref(x) + tanh(relu_ref(d->x[j * nj + i])); /* square */
    case 7: return exp(x) * y;
    default: {
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < nj; k++)
            mx = fmax(mx, d->x[i * nj + k]);
        for (int k = 0; k < nj; k++)
            sum += exp(d->x[i * nj + k] - mx);
        return exp(x - mx) / sum + relu_ref(y) * d->bj[j];
    }
    }
}

/* Each case and the functions its IR must define: the cell run (head op and
 * length) and the ops that must stay alone; "" for none. */
static const struct {
    const char *eq, *runs[2];
} cell_cases[] = {
    {"A[i,j] = relu(X[i,j] Y[i,j] + X[i,j])", {"g0.op0.join.cells3(", ""}},
    /* a second contribution, a bias along j */
    {"A[i,j] = tanh(0.5 X[i,j]) + Y[i,j] Bj[j]", {"g0.op0.join.cells3(", ""}},
    {"A[i,j] = abs(X[i,j] + Bi[i]) Y[i,j]", {"g0.op0.join.cells3(", ""}},   /* bias along i */
    {"A[i,j] = relu(X[i,j] Y[i,j]) + X[i+1,j] + Y[0,j]", {"g0.op0.join.cells4(", ""}},
    {"A[i,j] = abs(tanh(0.5 (relu(X[i,j] Y[i,j]) + X[i,j])) Y[i,j]) + 1.0",
     {"g0.op0.join.cells8(", ""}},
    {"A[i,j] = gelu(X[i,j] - Bj[j]) Y[i,j]", {"g0.op0.join.cells3(", ""}},
    /* op 4 reads the run's %2 transposed: it runs alone, after the run */
    {"A[i,j] = relu(X[i,j]) + tanh(relu(X[j,i]))", {"g0.op0.relu.cells3(", "g0.op4.join("}},
    /* exp calls the C library: no run */
    {"A[i,j] = exp(X[i,j]) Y[i,j]", {"g0.op0.exp(", "g0.op1.join("}},
    /* the copy after the softmax heads a run (instead of folding) */
    {"A[i,j] = softmax(X[i,j.]) + relu(Y[i,j]) Bj[j]", {"g0.op0.softmax(", "g0.op1.join.cells2("}},
};

enum { N_CELL_CASES = sizeof cell_cases / sizeof cell_cases[0] };

/* The IR defines a function whose name ends in `name` (nothing to check for ""). */
static void expect_function(const char *ir, const char *name, const char *eq)
{
    if (!*name)
        return;
    int found = 0;
    for (const char *l = ir; l && !found; l = strchr(l + 1, '\n')) {
        const char *end = strchr(l + 1, '\n'), *f = strstr(l, name);
        found = strncmp(l + (*l == '\n'), "define", 6) == 0 && f && (!end || f < end);
    }
    ck_assert_msg(found, "%s: no function %s", eq, name);
}

/* Cell runs big enough for a thread team (2^16 cells or more) split their rows
 * among the threads: cases 0, 3 (reads the next row of X: across the threads'
 * boundaries) and 4 on 263 x 257 with 1, 2 and 3 threads give the same bits,
 * and the reference's values. */
START_TEST(cell_runs_threads)
{
    static const int cases[3] = {0, 3, 4};
    int v = cases[_i];
    CellData d;
    cell_data_init(&d, 263, 257);
    char text[512];
    snprintf(text, sizeof text, "X[i,j] = \"x.npy\"\nY[i,j] = \"y.npy\"\nBi[i] = \"bi.npy\"\n"
                                "Bj[j] = \"bj.npy\"\n%s\nexport A\n", cell_cases[v].eq);
    const char *name = "A";
    float *got[3] = {NULL, NULL, NULL};
    for (int t = 0; t < 3; t++) {
        char *ir = run_collect(text, d.in, 4, 1 + t, &name, &got[t], 1);
        expect_function(ir, cell_cases[v].runs[0], cell_cases[v].eq);
        fuse_free(ir);
    }
    int n = d.ni * d.nj;
    ck_assert(memcmp(got[0], got[1], (size_t)n * sizeof(float)) == 0);
    ck_assert(memcmp(got[0], got[2], (size_t)n * sizeof(float)) == 0);
    for (int i = 0; i < d.ni; i++)
        for (int j = 0; j < d.nj; j++) {
            double want = cell_want(&d, v, i, j);
            ck_assert_msg(fabs(got[1][i * d.nj + j] - want) <= 2e-5 * (1.0 + fabs(want)),
                          "%s: %d,%d: %.9g vs %.9g", cell_cases[v].eq, i, j,
                          (double)got[1][i * d.nj + j], want);
        }
    for (int t = 0; t < 3; t++)
        free(got[t]);
    cell_data_free(&d);
}
END_TEST

/* A scalar cell run (`C[0] + C[1]`, two contributions to a rank-0 temporary
 * that the product then reads from memory) in a group whose product runs on a
 * team: only thread 0 may run it (each thread running `T = C[0]; T += C[1]` on
 * the shared T could add C[1] twice; the race window is small, so this test
 * rarely caught it, but the IR must guard the run). Many runs on 4 threads give
 * C[0] + C[1] every time. */
START_TEST(scalar_run_on_team)
{
    enum { P = 256, F = 128, H = 64 }; /* 2^21 multiply-adds: a team group */
    unsigned seed = 21;
    float *x = random_data(P * F, &seed), *w = random_data(F * H, &seed), c[2] = {0.25f, 0.5f};
    Spec s = {"pf", "fh", "ph", {0}, 1.0};
    s.size['p' - 'a'] = P, s.size['f' - 'a'] = F, s.size['h' - 'a'] = H;
    fuse_input in[3];
    set_input(&in[0], "X", &s, "pf", x);
    set_input(&in[1], "W", &s, "fh", w);
    memset(&in[2], 0, sizeof in[2]);
    in[2].name = "C";
    in[2].tensor = (fuse_tensor){FUSE_F32, 1, {2}, c};
    const char *text = "X[p,f] = \"x.npy\"\nW[f,h] = \"w.npy\"\nC[k] = \"c.npy\"\n"
                       "Q[p,h] = X[p,f] W[f,h] (C[0] + C[1])\nexport Q\n";
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = 4;
    cfg.no_cache = 1;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, text, "s.fuse", &prog), FUSE_OK);
    ck_assert_msg(fuse_runner_new(prog, &cfg, in, 3, &run) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    double q00 = 0;
    for (int f = 0; f < F; f++)
        q00 += (double)x[f] * w[f * H];
    for (int r = 0; r < 200; r++) {
        fuse_outputs *out = NULL;
        ck_assert_int_eq(fuse_runner_run(run, in, 3, &out), FUSE_OK);
        float got = ((const float *)fuse_outputs_find(out, "Q")->data)[0];
        ck_assert_msg(fabs(got - 0.75 * q00) <= 1e-4 * (1 + fabs(q00)), "run %d: %g vs %g", r,
                      (double)got, 0.75 * q00);
        fuse_outputs_free(out);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(x), free(w);
}
END_TEST

/* Case _i / 4 on size variant _i % 4 (7x13, 1x1, 9x9, 64x67; the transposed case
 * only on square ones), 2 threads on the odd variants. */
START_TEST(cell_runs)
{
    static const int sizes[4][2] = {{7, 13}, {1, 1}, {9, 9}, {64, 67}};
    int v = _i / 4, ni = sizes[_i % 4][0], nj = sizes[_i % 4][1];
    if (v == 6 && ni != nj)
        return;
    CellData d;
    cell_data_init(&d, ni, nj);
    char text[512];
    snprintf(text, sizeof text, "X[i,j] = \"x.npy\"\nY[i,j] = \"y.npy\"\nBi[i] = \"bi.npy\"\n"
                                "Bj[j] = \"bj.npy\"\n%s\nexport A\n", cell_cases[v].eq);
    const char *name = "A";
    float *got = NULL;
    char *ir = run_collect(text, d.in, 4, 1 + _i % 2, &name, &got, 1);
    for (int k = 0; k < 2; k++)
        expect_function(ir, cell_cases[v].runs[k], cell_cases[v].eq);
    for (int i = 0; i < ni; i++)
        for (int j = 0; j < nj; j++) {
            double want = cell_want(&d, v, i, j);
            ck_assert_msg(fabs(got[i * nj + j] - want) <= 2e-5 * (1.0 + fabs(want)),
                          "%s (%dx%d): %d,%d: %.9g vs %.9g", cell_cases[v].eq, ni, nj, i, j,
                          (double)got[i * nj + j], want);
        }
    fuse_free(ir);
    free(got);
    cell_data_free(&d);
}
END_TEST

/* Three axes with a size-1 axis in the middle, and a second equation on the
 * same cells: the ops of A run in one loop nest; A's value is exported. */
START_TEST(cell_run_three_axes)
{
    enum { NI = 3, NK = 1, NJ = 5 };
    unsigned seed = 99u;
    float *x = random_data(NI * NK * NJ, &seed), *b = random_data(NJ, &seed);
    fuse_input in[2];
    memset(in, 0, sizeof in);
    in[0].name = "X";
    in[0].tensor = (fuse_tensor){FUSE_F32, 3, {NI, NK, NJ}, x};
    in[1].name = "B";
    in[1].tensor = (fuse_tensor){FUSE_F32, 1, {NJ}, b};
    const char *text = "X[i,k,j] = \"x.npy\"\nB[j] = \"b.npy\"\n"
                       "A[i,k,j] = relu(X[i,k,j] X[i,k,j] - B[j]) + 0.25 X[i,k,j]\n"
                       "export A\n";
    const char *name = "A";
    float *got = NULL;
    char *ir = run_collect(text, in, 2, 1, &name, &got, 1);
    expect_function(ir, "g0.op0.join.cells", text);
    for (int c = 0; c < NI * NK * NJ; c++) {
        double xv = x[c], want = relu_ref(xv * xv - b[c % NJ]) + 0.25 * xv;
        ck_assert_msg(fabs(got[c] - want) <= 1e-5 * (1.0 + fabs(want)), "cell %d: %.9g vs %.9g",
                      c, (double)got[c], want);
    }
    fuse_free(ir);
    free(got), free(x), free(b);
}
END_TEST

/* ---- fuse-bench (tools/fuse-bench.c), next to fuse-jit in the build tree ---- */

static char *bench_command(const char *args)
{
    const char *jit = FUSE_JIT_BIN;
    const char *slash = strrchr(jit, '/');
    int dir = slash ? (int)(slash - jit) + 1 : 0;
    size_t n = strlen(jit) + strlen(args) + 64;
    char *cmd = malloc(n);
    ck_assert_ptr_nonnull(cmd);
    snprintf(cmd, n, "%.*sfuse-bench %s", dir, jit, args);
    return cmd;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 1 << 16);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs fuse-bench with `args` and returns what it wrote: with is_json, the file
 * of --json; else its standard output. */
static char *bench_output(const char *args, bool is_json)
{
    char path[] = "/tmp/fuse-bench-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char line[512];
    snprintf(line, sizeof line, is_json ? "%s --json %s > /dev/null" : "%s > %s", args, path);
    char *cmd = bench_command(line);
    ck_assert_int_eq(system(cmd), 0);
    char *text = read_text(path);
    free(cmd);
    unlink(path);
    return text;
}

START_TEST(bench_suite_json)
{
    char *text = bench_output("--suite --only matmul-256 --repeat 2 --warmup 0 --threads 2", true);
    ck_assert_msg(strstr(text, "\"name\": \"matmul-256\"") && strstr(text, "\"ok\": true"), "%s", text);
    ck_assert_msg(strstr(text, "\"flops\": 33554432,"), "%s", text); /* 2 x 256^3 */
    ck_assert_msg(!strstr(text, "batched"), "%s", text);
    free(text);
}
END_TEST

/* A time of fuse-bench's table ("7.03 ms", "0.00 µs") in ms, or -1. */
static double table_ms(double v, const char *unit)
{
    return strcmp(unit, "s") == 0    ? v * 1e3
           : strcmp(unit, "ms") == 0 ? v
           : strcmp(unit, "µs") == 0 ? v * 1e-3
                                     : -1;
}

/* The min and median of an --equations line "  NAME  MIN UNIT  MEDIAN UNIT". */
static bool equation_times(const char *line, const char *name, double *min, double *med)
{
    char pattern[32], u1[8], u2[8];
    snprintf(pattern, sizeof pattern, " %s %%lf %%7s %%lf %%7s", name);
    if (sscanf(line, pattern, min, u1, med, u2) != 4)
        return false;
    *min = table_ms(*min, u1);
    *med = table_ms(*med, u2);
    return *min >= 0 && *med >= 0;
}

/* --equations: one line per equation of the MLP, with the absorbed relu at 0. */
START_TEST(bench_equations)
{
    char *text = bench_output("--suite --only mlp --repeat 3 --warmup 0 --threads 1 --equations",
                              false);
    double zmin = -1, zmed = -1, hmin = -1, hmed = -1, ymin = -1, ymed = -1;
    const char *z = strstr(text, "\n  Z "), *h = strstr(text, "\n  H "), *y = strstr(text, "\n  Y ");
    ck_assert_msg(strstr(text, "  equation ") && z && h && y, "%s", text);
    ck_assert_msg(equation_times(z, "Z", &zmin, &zmed), "%s", text);
    ck_assert_msg(equation_times(h, "H", &hmin, &hmed), "%s", text);
    ck_assert_msg(equation_times(y, "Y", &ymin, &ymed), "%s", text);
    ck_assert(zmin > 0 && zmed >= zmin && ymin > 0 && ymed >= ymin);
    ck_assert(hmin == 0 && hmed == 0); /* relu runs in Z's kernel */
    free(text);
}
END_TEST

START_TEST(bench_bad_usage)
{
    char *cmd = bench_command("--repeat 0 --suite > /dev/null 2>&1");
    int rc = system(cmd);
    ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    free(cmd);
    cmd = bench_command("/nonexistent/x.fuse --repeat 1 > /dev/null 2>&1");
    rc = system(cmd);
    ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    free(cmd);
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("contraction");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matmul_odd_prime);
    tcase_add_test(tc, matmul_crosses_blocks);
    tcase_add_test(tc, transposed_layouts);
    tcase_add_test(tc, batched_products);
    tcase_add_test(tc, four_index);
    tcase_add_test(tc, vector_packed_panels);
    tcase_add_test(tc, size_one_axes_and_coef);
    tcase_add_test(tc, small_joins_keep_loop_nest);
    tcase_add_loop_test(tc, several_contributions, 0, 3);
    tcase_add_loop_test(tc, boolean_contractions, 0, 3);
    tcase_add_loop_test(tc, threads_same_result, 0, 2);
    tcase_add_test(tc, softmax_fast_exp);
    tcase_add_loop_test(tc, softmax_rows, 0, 14);
    tcase_add_loop_test(tc, masked_softmax_rows, 0, 8);
    tcase_add_test(tc, lnorm_two_pass);
    tcase_add_loop_test(tc, row_ops_threads, 0, 3);
    tcase_add_test(tc, inline_tanh);
    tcase_add_test(tc, call_results_written_in_place);
    tcase_add_test(tc, many_factor_chains);
    tcase_add_test(tc, bench_suite_json);
    tcase_add_test(tc, bench_equations);
    tcase_add_test(tc, bench_bad_usage);
    tcase_add_test(tc, self_join);
    tcase_add_loop_test(tc, fused_epilogues, 0, 9);
    tcase_add_test(tc, unfused_consumers);
    tcase_add_test(tc, fused_intermediate_exported);
    tcase_add_loop_test(tc, cell_runs, 0, 4 * N_CELL_CASES);
    tcase_add_loop_test(tc, cell_runs_threads, 0, 3);
    tcase_add_test(tc, scalar_run_on_team);
    tcase_add_test(tc, cell_run_three_axes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
