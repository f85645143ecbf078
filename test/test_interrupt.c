/*
 * test_interrupt.c: fuse_ctx_interrupt stops a run inside a long kernel, not
 * only between kernels. A thread interrupts a run busy in one kernel that would
 * take many seconds (a group of big matrix products, the contraction kernels;
 * a max-projection, a plain loop nest), alone and on a team of two threads;
 * the run must come back FUSE_E_INTERRUPTED well within a generous bound (2 s
 * after the first interrupt, against a run of far longer: only a kernel that
 * ignores the flag can miss it). Then the runner must still be right: a
 * fixpoint interrupted inside its products runs again to the product computed
 * by a naive loop here, and an interrupt sent before a run does not reach it.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusejit.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static fuse_input matrix_input(const char *name, int64_t rows, int64_t cols, float *data)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F32, .rank = 2, .data = data}};
    in.tensor.shape[0] = rows;
    in.tensor.shape[1] = cols;
    return in;
}

static fuse_input vector_input(const char *name, int64_t n, float *data)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F32, .rank = 1, .data = data}};
    in.tensor.shape[0] = n;
    return in;
}

/* An n x n matrix of small values that differ from cell to cell (seed varies it). */
static float *matrix_new(int64_t n, int seed)
{
    float *m = malloc((size_t)(n * n) * sizeof *m);
    ck_assert_ptr_nonnull(m);
    for (int64_t i = 0; i < n * n; i++)
        m[i] = (float)((i * 7 + seed * 13) % 11) * 0.125f - 0.5f;
    return m;
}

/* ---- the interrupter ---- */

/* After `delay_ms`, interrupts the context every 10 ms until the run under test
 * returns (an interrupt sent before the run began would be cleared by it), and
 * notes when it sent the first. */
typedef struct Interrupter {
    fuse_ctx *ctx;
    int delay_ms;
    atomic_int is_done;
    double first_at; /* now_s() of the first interrupt; 0: none sent */
    pthread_t tid;
} Interrupter;

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L},
              NULL);
}

static void *interrupter_main(void *arg)
{
    Interrupter *it = arg;
    for (int waited = 0; waited < it->delay_ms && !atomic_load(&it->is_done); waited += 10)
        sleep_ms(10);
    while (!atomic_load(&it->is_done)) {
        if (it->first_at == 0)
            it->first_at = now_s();
        fuse_ctx_interrupt(it->ctx);
        sleep_ms(10);
    }
    return NULL;
}

static void interrupter_start(Interrupter *it, fuse_ctx *ctx, int delay_ms)
{
    it->ctx = ctx;
    it->delay_ms = delay_ms;
    it->first_at = 0;
    atomic_init(&it->is_done, 0);
    ck_assert_int_eq(pthread_create(&it->tid, NULL, interrupter_main, it), 0);
}

/* Stops the interrupter; returns the seconds from its first interrupt to `end`. */
static double interrupter_stop(Interrupter *it, double end)
{
    atomic_store(&it->is_done, 1);
    pthread_join(it->tid, NULL);
    ck_assert_msg(it->first_at > 0, "the run ended before it was interrupted");
    return end - it->first_at;
}

/* Runs `run` while interrupting it after delay_ms; expects FUSE_E_INTERRUPTED, no
 * outputs, and the return within 2 s of the first interrupt. */
static void run_interrupted(fuse_ctx *ctx, fuse_runner *run, const fuse_input *in, size_t n_in,
                            int delay_ms)
{
    Interrupter it;
    fuse_outputs *out = NULL;
    interrupter_start(&it, ctx, delay_ms);
    fuse_status st = fuse_runner_run(run, in, n_in, &out);
    double late = interrupter_stop(&it, now_s());
    ck_assert_msg(st == FUSE_E_INTERRUPTED, "status %s: %s", fuse_status_name(st),
                  fuse_ctx_error(ctx));
    ck_assert_ptr_null(out);
    ck_assert_str_eq(fuse_ctx_error(ctx), "error: interrupted");
    ck_assert_msg(late < 2.0, "the run returned %.2f s after the interrupt", late);
}

static fuse_config config_with(int threads, fuse_mode mode, int max_iters)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = threads;
    cfg.mode = mode;
    cfg.max_iters = max_iters;
    cfg.write_sinks = 0;
    return cfg;
}

/* ---- one long kernel ---- */

/* One equation of PRODUCTS products of n x n matrices: one kernel, PRODUCTS
 * contraction calls. At n = 4096 each product is 137 GFLOP, about a second on
 * one core at 120 GFLOP/s: the whole kernel, many seconds on any host. */
enum { BIG_N = 4096, PRODUCTS = 12 };

static char *products_program(void)
{
    static const char *const pairs[4] = {"A[i,k] B[k,j]", "B[i,k] A[k,j]", "A[i,k] A[k,j]",
                                         "B[i,k] B[k,j]"};
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text + len, cap - len,
                            "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] =");
    for (int p = 0; p < PRODUCTS; p++)
        len += (size_t)snprintf(text + len, cap - len, "%s %d %s", p ? " +" : "", p + 1,
                                pairs[p % 4]);
    snprintf(text + len, cap - len, "\nexport C\n");
    return text;
}

/* A context, and a runner of `text` on n x n host inputs A and B. */
typedef struct Big {
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_runner *run;
    float *a, *b;
    fuse_input in[2];
} Big;

static void big_open(Big *g, const char *text, int64_t n, const fuse_config *cfg)
{
    memset(g, 0, sizeof *g);
    g->a = matrix_new(n, 1);
    g->b = matrix_new(n, 2);
    g->in[0] = matrix_input("A", n, n, g->a);
    g->in[1] = matrix_input("B", n, n, g->b);
    ck_assert_int_eq(fuse_ctx_new(&g->ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(g->ctx, text, "long.fuse", &g->prog), FUSE_OK);
    ck_assert_msg(fuse_runner_new(g->prog, cfg, g->in, 2, &g->run) == FUSE_OK, "%s",
                  fuse_ctx_error(g->ctx));
}

static void big_close(Big *g)
{
    fuse_runner_free(g->run);
    fuse_program_free(g->prog);
    fuse_ctx_free(g->ctx);
    free(g->a);
    free(g->b);
}

/* C = A B in double, by the definition. */
static void naive_product(const float *a, const float *b, int64_t n, double *c)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < n; k++)
                s += (double)a[i * n + k] * (double)b[k * n + j];
            c[i * n + j] = s;
        }
}

/* A small run on the context after an interrupted one: a fresh runner of
 * `X[i,j] = A[i,k] B[k,j]` gives the product. */
static void small_product_is_right(fuse_ctx *ctx, int threads)
{
    enum { N = 48 };
    float *a = matrix_new(N, 3), *b = matrix_new(N, 4);
    fuse_input in[2] = {matrix_input("A", N, N, a), matrix_input("B", N, N, b)};
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_config cfg = config_with(threads, FUSE_MODE_SINGLE, 0);
    ck_assert_int_eq(fuse_program_from_text(ctx,
                                            "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\n"
                                            "X[i,j] = A[i,k] B[k,j]\nexport X\n",
                                            "small.fuse", &prog),
                     FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, in, 2, &run), FUSE_OK);
    ck_assert_msg(fuse_runner_run(run, in, 2, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    double want[N * N];
    naive_product(a, b, N, want);
    const float *x = fuse_outputs_find(out, "X")->data;
    for (int i = 0; i < N * N; i++)
        ck_assert_double_eq_tol(x[i], want[i], 1e-3);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    free(a);
    free(b);
}

static void products_stop(int threads)
{
    char *text = products_program();
    fuse_config cfg = config_with(threads, FUSE_MODE_SINGLE, 0);
    Big g;
    big_open(&g, text, BIG_N, &cfg);
    run_interrupted(g.ctx, g.run, g.in, 2, 300);
    small_product_is_right(g.ctx, threads);
    big_close(&g);
    free(text);
}

START_TEST(a_group_of_big_products_stops)
{
    products_stop(1);
}
END_TEST

/* The team's threads all skip their remaining blocks and meet at the barriers
 * between the products: no deadlock. */
START_TEST(a_group_of_big_products_stops_on_a_team)
{
    products_stop(2);
}
END_TEST

/* `M[i,j] max= A[i,k] B[k,j]` at n = 2048 is a plain loop nest (no contraction
 * kernel for max) of 8.6e9 cells, read along B's columns: seconds. */
START_TEST(a_long_loop_nest_stops)
{
    fuse_config cfg = config_with(1, FUSE_MODE_SINGLE, 0);
    Big g;
    big_open(&g, "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nM[i,j] max= A[i,k] B[k,j]\n"
                 "export M\n",
             2048, &cfg);
    run_interrupted(g.ctx, g.run, g.in, 2, 300);
    small_product_is_right(g.ctx, 1);
    big_close(&g);
}
END_TEST

/* ---- the runner after an interrupt ---- */

/* X = A B - S X: with S = 1 the fixpoint flips between A B and 0 forever, each
 * sweep one product; with S = 0 it converges to A B in two sweeps. */
static const char FLIP_PRODUCT[] = "A[i,k] = \"a.npy\"\n"
                                   "B[k,j] = \"b.npy\"\n"
                                   "S[i] = \"s.npy\"\n"
                                   "X[i,j] = A[i,k] B[k,j] - S[i] X[i,j]\n"
                                   "export X\n";

enum { FLIP_N = 512 };

static void fixpoint_runs_again(int threads)
{
    float *a = matrix_new(FLIP_N, 5), *b = matrix_new(FLIP_N, 6);
    float *s = malloc(FLIP_N * sizeof *s);
    double *want = malloc((size_t)FLIP_N * FLIP_N * sizeof *want);
    ck_assert(s && want);
    naive_product(a, b, FLIP_N, want);
    fuse_input in[3] = {matrix_input("A", FLIP_N, FLIP_N, a), matrix_input("B", FLIP_N, FLIP_N, b),
                        vector_input("S", FLIP_N, s)};
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_config cfg = config_with(threads, FUSE_MODE_FIXPOINT, INT_MAX);
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, FLIP_PRODUCT, "flip.fuse", &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, in, 3, &run), FUSE_OK);
    /* interrupted three times, most likely inside a product each time (the
     * sweeps are nearly all product) */
    for (int i = 0; i < FLIP_N; i++)
        s[i] = 1.0f;
    for (int round = 0; round < 3; round++)
        run_interrupted(ctx, run, in, 3, 50 + 37 * round);
    /* an interrupt with no run in progress does not reach the next run */
    fuse_ctx_interrupt(ctx);
    memset(s, 0, FLIP_N * sizeof *s);
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_runner_run(run, in, 3, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const float *x = fuse_outputs_find(out, "X")->data;
    for (int64_t i = 0; i < (int64_t)FLIP_N * FLIP_N; i++)
        if (!(x[i] > want[i] - 1e-2 && x[i] < want[i] + 1e-2))
            ck_abort_msg("X[%lld] = %g, want %g", (long long)i, (double)x[i], want[i]);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(a);
    free(b);
    free(s);
    free(want);
}

START_TEST(an_interrupted_fixpoint_runs_again)
{
    fixpoint_runs_again(1);
}
END_TEST

START_TEST(an_interrupted_fixpoint_runs_again_on_a_team)
{
    fixpoint_runs_again(2);
}
END_TEST

static Suite *interrupt_suite(void)
{
    Suite *s = suite_create("interrupt");
    TCase *tc = tcase_create("interrupt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, a_group_of_big_products_stops);
    tcase_add_test(tc, a_group_of_big_products_stops_on_a_team);
    tcase_add_test(tc, a_long_loop_nest_stops);
    tcase_add_test(tc, an_interrupted_fixpoint_runs_again);
    tcase_add_test(tc, an_interrupted_fixpoint_runs_again_on_a_team);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(interrupt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
