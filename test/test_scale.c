/*
 * test_scale.c: programs of many equations (issues 11 and 14). Chains of 1,000
 * equations (copies, distinct elementwise steps that fuse across equations, and
 * contractions) must give the right values; a chain written backwards needs the
 * evaluation order and a demand closure as deep as the program (no recursion on
 * the C stack); thousands of exports come out in order; changing one equation of
 * a long chain recompiles only its span of kernels. No test asserts a time: the
 * suite's timeout is the only clock, and each case runs in well under a second
 * unless some step is quadratic again (bench/chain.py and bench/RESULTS.md hold
 * the numbers).
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusejit.h"

/* A growing program text. */
typedef struct Text {
    char *s;
    size_t n, cap;
} Text;

static void text_add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(Text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(len, 0);
    if (t->n + (size_t)len + 1 > t->cap) {
        t->cap = 2 * (t->n + (size_t)len + 1);
        t->s = realloc(t->s, t->cap);
        ck_assert_ptr_nonnull(t->s);
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    t->n += (size_t)len;
}

/* Z0[i] = [1, 2, 3]; Zk[i] = RHS for k = 1..n, RHS printf'd with k - 1 (and k
 * when has_k); export Zn. */
static char *chain(int n, const char *rhs, bool has_k)
{
    Text t = {0};
    text_add(&t, "Z0[i] = const([1.0, 2.0, 3.0])\n");
    for (int k = 1; k <= n; k++) {
        text_add(&t, "Z%d[i] = ", k);
        if (has_k)
            text_add(&t, rhs, k - 1, k);
        else
            text_add(&t, rhs, k - 1);
        text_add(&t, "\n");
    }
    text_add(&t, "export Z%d\n", n);
    return t.s;
}

/* Compiles text in ctx (cfg may be NULL), runs it once and checks export `name`
 * against want[0..n). */
static void expect_run(fuse_ctx *ctx, const char *text, const fuse_config *cfg, const char *name,
                       const double *want, int64_t n)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_program_from_text(ctx, text, "scale.fuse", &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(prog, cfg, NULL, 0, &run) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const fuse_tensor *z = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(z);
    int64_t cells = 1;
    for (int k = 0; k < z->rank; k++)
        cells *= z->shape[k];
    ck_assert_int_eq(cells, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(((const float *)z->data)[i] == (float)want[i], "%s[%lld] = %g, want %g", name,
                      (long long)i, (double)((const float *)z->data)[i], want[i]);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
}

static fuse_ctx *ctx_new(void)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    return ctx;
}

static fuse_config no_disk(void)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1; /* every case compiles: the disk cannot hide a regression */
    return cfg;
}

/* The program: Z1[i] = Z0[i], ... Z1000[i] = Z999[i]. Its equations fuse
 * across equations into spans of one loop each, and equal spans are one kernel:
 * one LLVM module in all. */
START_TEST(chain_of_1000_copies)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    char *text = chain(1000, "Z%d[i]", false);
    const double want[3] = {1, 2, 3};
    expect_run(ctx, text, &cfg, "Z1000", want, 3);
    fuse_stats s = {.size = sizeof s};
    ck_assert_int_eq(fuse_ctx_stats(ctx, &s), FUSE_OK);
    ck_assert_int_eq(s.compiles, 1);
    ck_assert_int_eq(s.groups_compiled + s.groups_cached, 1001);
    free(text);
    fuse_ctx_free(ctx);
}
END_TEST

/* Zk = relu(Zk-1) + k: 3 ops an equation, every kernel different. A run of
 * elementwise ops stops where its function would take too many buffers and the
 * next one starts there, so the chain is many spans, each one pass. */
START_TEST(chain_of_1000_distinct_steps)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    char *text = chain(1000, "relu(Z%d[i]) + %d", true);
    const double want[3] = {1 + 500500.0, 2 + 500500.0, 3 + 500500.0};
    expect_run(ctx, text, &cfg, "Z1000", want, 3);
    free(text);
    fuse_ctx_free(ctx);
}
END_TEST

/* Zk[i,c] = M[i,j] Zk-1[j,c] with M the cyclic shift of 3 rows, and a chain
 * with a second tensor in every step (Zk = Zk-1 B + B). */
START_TEST(chain_of_1000_contractions)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    Text t = {0};
    text_add(&t, "Z0[i,c] = const([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])\n"
                 "M[i,j] = const([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])\n");
    for (int k = 1; k <= 1000; k++)
        text_add(&t, "Z%d[i,c] = M[i,j] Z%d[j,c]\n", k, k - 1);
    text_add(&t, "export Z1000\n");
    /* 1000 shifts up by one row = 1 (mod 3): row r is row r + 1 of Z0 */
    const double want[6] = {2, 3, 4, 5, 0, 1};
    expect_run(ctx, t.s, &cfg, "Z1000", want, 6);
    free(t.s);
    char *two = chain(1000, "Z%d[i] B[i] + B[i]", false);
    char *with_b = malloc(strlen(two) + 64);
    ck_assert_ptr_nonnull(with_b);
    sprintf(with_b, "B[i] = const([0.5, 0.25, 0.0])\n%s", two);
    /* z = z b + b converges to b / (1 - b); from 1, 2, 3 in 1000 steps exactly */
    const double want_b[3] = {1, 1.0 / 3.0, 0};
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_program_from_text(ctx, with_b, "b.fuse", &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_OK);
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    const float *z = fuse_outputs_find(out, "Z1000")->data;
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(z[i], want_b[i], 1e-6);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    free(with_b);
    free(two);
    fuse_ctx_free(ctx);
}
END_TEST

/* The chain written last equation first: ordering it and the demand closure of
 * its export go 20,000 groups deep. */
START_TEST(chain_written_backwards)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    cfg.mode = FUSE_MODE_DEMAND;
    const int n = 20000;
    Text t = {0};
    for (int k = n; k >= 1; k--)
        text_add(&t, "Z%d[i] = Z%d[i]\n", k, k - 1);
    text_add(&t, "Z0[i] = const([1.0, 2.0, 3.0])\nUnused[i] = Z0[i] + 1\nexport Z%d\n", n);
    const double want[3] = {1, 2, 3};
    expect_run(ctx, t.s, &cfg, "Z20000", want, 3);
    free(t.s);
    fuse_ctx_free(ctx);
}
END_TEST

/* 5,000 exports, in program order. */
START_TEST(thousands_of_exports)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    const int n = 5000;
    char *text = chain(n, "Z%d[i] + 1", false);
    Text t = {text, strlen(text), strlen(text) + 1};
    for (int k = 0; k < n; k++)
        text_add(&t, "export Z%d\n", k);
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_program_from_text(ctx, t.s, "exports.fuse", &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_OK);
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    ck_assert_uint_eq(fuse_outputs_count(out), (size_t)n + 1);
    ck_assert_str_eq(fuse_outputs_name(out, 0), "Z5000"); /* the first export line */
    for (int k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "Z%d", k);
        ck_assert_str_eq(fuse_outputs_name(out, (size_t)k + 1), name);
        const float *z = fuse_outputs_tensor(out, (size_t)k + 1)->data;
        ck_assert_float_eq(z[2], (float)(3 + k));
    }
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    free(t.s);
    fuse_ctx_free(ctx);
}
END_TEST

/* The incremental cache on a long chain: after one equation in the
 * middle changes, only the span of kernels holding it compiles again. */
START_TEST(one_change_recompiles_one_span)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    char *text = chain(1000, "relu(Z%d[i]) + %d", true);
    const double want[3] = {1 + 500500.0, 2 + 500500.0, 3 + 500500.0};
    expect_run(ctx, text, &cfg, "Z1000", want, 3);
    fuse_stats before = {.size = sizeof before}, after = {.size = sizeof after};
    ck_assert_int_eq(fuse_ctx_stats(ctx, &before), FUSE_OK);
    char *at = strstr(text, "Z500[i] = relu(Z499[i]) + 500\n");
    ck_assert_ptr_nonnull(at);
    memcpy(strstr(at, "+ 500"), "- 500", 5); /* Z500 = relu(Z499) - 500 */
    const double changed[3] = {want[0] - 1000, want[1] - 1000, want[2] - 1000};
    expect_run(ctx, text, &cfg, "Z1000", changed, 3);
    ck_assert_int_eq(fuse_ctx_stats(ctx, &after), FUSE_OK);
    uint64_t compiled = after.groups_compiled - before.groups_compiled;
    uint64_t cached = after.groups_cached - before.groups_cached;
    ck_assert_uint_eq(compiled + cached, 1001);
    ck_assert_msg(compiled >= 1 && compiled <= 64, "%llu kernels compiled again",
                  (unsigned long long)compiled);
    ck_assert_uint_eq(after.compiles - before.compiles, 1);
    free(text);
    fuse_ctx_free(ctx);
}
END_TEST

/* A[i,k] with integer cells in -3..3 (exact float sums), as a const literal. */
static void small_matrix(Text *t, const char *name, int n, int salt)
{
    text_add(t, "%s[i,k] = const([", name);
    for (int i = 0; i < n; i++) {
        text_add(t, i ? ", [" : "[");
        for (int k = 0; k < n; k++)
            text_add(t, k ? ", %d.0" : "%d.0", (i * 7 + k * 3 + salt) % 7 - 3);
        text_add(t, "]");
    }
    text_add(t, "])\n");
}

/* Several kernels, two of them with equal code under different keys (only a
 * dotted axis differs): they are shared out among compiling threads, one
 * object per thread, kept as one disk entry. A second context loads that entry
 * (no compile) and both give the values of naive loops. */
START_TEST(kernels_of_several_threads_cached_together)
{
    enum { N = 32 };
    Text t = {0};
    small_matrix(&t, "A", N, 0);
    small_matrix(&t, "B", N, 2);
    text_add(&t, "C[i,j] = A[i,k] B[k,j]\n"
                 "P[i,k.] = A[i,k]\n"
                 "D[i,j] = P[i,k] C[k,j]\n"
                 "E[i,j] = relu(C[i,j]) + D[i,j] + 1.0\n"
                 "export E\n");
    static double a[N][N], b[N][N], c[N][N], want[N * N];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            a[i][k] = (i * 7 + k * 3) % 7 - 3;
            b[i][k] = (i * 7 + k * 3 + 2) % 7 - 3;
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            c[i][j] = 0;
            for (int k = 0; k < N; k++)
                c[i][j] += a[i][k] * b[k][j];
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double d = 0;
            for (int k = 0; k < N; k++)
                d += a[i][k] * c[k][j];
            want[i * N + j] = (c[i][j] > 0 ? c[i][j] : 0) + d + 1.0;
        }
    char dir[] = "/tmp/fuse-scale-cache-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.cache_dir = dir;
    for (int round = 0; round < 2; round++) {
        fuse_ctx *ctx = ctx_new();
        expect_run(ctx, t.s, &cfg, "E", want, N * N);
        fuse_stats st = {.size = sizeof st};
        ck_assert_int_eq(fuse_ctx_stats(ctx, &st), FUSE_OK);
        ck_assert_uint_eq(st.compiles, round == 0 ? 1 : 0);
        ck_assert_uint_eq(st.disk_hits, round == 0 ? 0 : 1);
        fuse_ctx_free(ctx);
    }
    char *cmd = malloc(strlen(dir) + 16);
    ck_assert_ptr_nonnull(cmd);
    sprintf(cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    free(t.s);
}
END_TEST

/* 1,000 contributions to one tensor, each a small product (its own loop nest):
 * one group of 1,000 ops, whose functions stay out of line and, being equal,
 * are compiled once; then 100 different ones (coefficients 1..100). */
START_TEST(many_contributions_to_one_tensor)
{
    fuse_ctx *ctx = ctx_new();
    fuse_config cfg = no_disk();
    static const char head[] = "A[u,v] = const([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])\n"
                               "E[v,d] = const([[1.0, 2.0], [3.0, 4.0]])\n";
    const double ae[6] = {3, 4, 4, 6, 2, 4}; /* A E */
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? 100 : 1000;
        Text t = {0};
        text_add(&t, "%s", head);
        for (int k = 1; k <= n; k++)
            text_add(&t, "M[u,d] += %d A[u,v] E[v,d]\n", pass ? k : 1);
        text_add(&t, "export M\n");
        double want[6], sum = pass ? n * (n + 1) / 2 : n;
        for (int i = 0; i < 6; i++)
            want[i] = ae[i] * sum;
        expect_run(ctx, t.s, &cfg, "M", want, 6);
        free(t.s);
    }
    fuse_ctx_free(ctx);
}
END_TEST

/* Parsing and checking 20,000 equations (fuse-jit check). */
START_TEST(check_of_20000_equations)
{
    fuse_ctx *ctx = ctx_new();
    char *text = chain(20000, "relu(Z%d[i]) + %d", true);
    fuse_program *prog = NULL;
    ck_assert_msg(fuse_program_from_text(ctx, text, "big.fuse", &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    fuse_program_free(prog);
    free(text);
    fuse_ctx_free(ctx);
}
END_TEST

static Suite *scale_suite(void)
{
    Suite *s = suite_create("scale");
    TCase *tc = tcase_create("chains");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, chain_of_1000_copies);
    tcase_add_test(tc, chain_of_1000_distinct_steps);
    tcase_add_test(tc, chain_of_1000_contractions);
    tcase_add_test(tc, chain_written_backwards);
    tcase_add_test(tc, thousands_of_exports);
    tcase_add_test(tc, one_change_recompiles_one_span);
    tcase_add_test(tc, many_contributions_to_one_tensor);
    tcase_add_test(tc, check_of_20000_equations);
    tcase_add_test(tc, kernels_of_several_threads_cached_together);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scale_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
