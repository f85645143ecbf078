/*
 * test_bench.c: Check suite for fuse-bench. The statistics (tools/bench_stats.c,
 * compiled in) are checked on samples worked out by hand; the binary
 * (FUSE_BENCH_BIN) is run on the suite's smallest product (matmul-256) or a tiny
 * program with --repeat 2 and its output, JSON, Markdown and SVG files checked.
 * Nothing here asserts a duration.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "bench_stats.h"
#include "harness.h"

/* ---- statistics on known samples ---- */

static void expect_near(const char *what, double got, double want)
{
    ck_assert_msg(fabs(got - want) <= 1e-9 * (1.0 + fabs(want)), "%s: got %.12g, want %.12g", what,
                  got, want);
}

START_TEST(test_stats_odd_sample_with_outlier)
{
    const double t[] = {1, 2, 3, 4, 100};
    BenchStats s;
    ck_assert(bench_stats_compute(t, 5, &s));
    ck_assert_int_eq(s.n, 5);
    expect_near("mean", s.mean, 22.0);
    /* deviations -21 -20 -19 -18 78: squares sum to 7610, over n - 1 = 4 */
    expect_near("stddev", s.stddev, sqrt(7610.0 / 4.0));
    expect_near("median", s.median, 3.0);
    expect_near("min", s.min, 1.0);
    expect_near("max", s.max, 100.0);
    expect_near("q1", s.q1, 2.0);
    expect_near("q3", s.q3, 4.0);
    ck_assert_int_eq(s.n_outliers, 1); /* fence 4 + 1.5 * 2 = 7 */
    ck_assert(!s.first_slow);
}
END_TEST

START_TEST(test_stats_even_sample_interpolates)
{
    const double t[] = {4, 1, 3, 2};
    BenchStats s;
    ck_assert(bench_stats_compute(t, 4, &s));
    expect_near("mean", s.mean, 2.5);
    expect_near("stddev", s.stddev, sqrt(5.0 / 3.0));
    expect_near("median", s.median, 2.5);
    expect_near("q1", s.q1, 1.75); /* position 0.75 between 1 and 2 */
    expect_near("q3", s.q3, 3.25);
    ck_assert_int_eq(s.n_outliers, 0);
    ck_assert(!s.first_slow); /* 4 is not over 2 x median(1, 3, 2) = 4 */
}
END_TEST

START_TEST(test_stats_first_run_slow)
{
    const double t[] = {50, 10, 11, 10, 12};
    BenchStats s;
    ck_assert(bench_stats_compute(t, 5, &s));
    ck_assert(s.first_slow);           /* 50 > 2 x 10.5 */
    ck_assert_int_eq(s.n_outliers, 1); /* q1 10, q3 12: fence 15 */
    const double calm[] = {10, 10, 11, 10, 12};
    ck_assert(bench_stats_compute(calm, 5, &s));
    ck_assert(!s.first_slow);
    ck_assert_int_eq(s.n_outliers, 0);
}
END_TEST

START_TEST(test_stats_single_and_empty)
{
    const double t[] = {7.5};
    BenchStats s;
    ck_assert(bench_stats_compute(t, 1, &s));
    expect_near("mean", s.mean, 7.5);
    expect_near("median", s.median, 7.5);
    ck_assert(isnan(s.stddev));
    ck_assert_int_eq(s.n_outliers, 0);
    ck_assert(!s.first_slow);
    ck_assert(!bench_stats_compute(t, 0, &s));
    ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(test_units_by_size)
{
    ck_assert_str_eq(bench_unit_for(0.5).symbol, "µs");
    ck_assert_str_eq(bench_unit_for(0.999).symbol, "µs");
    ck_assert_str_eq(bench_unit_for(1.0).symbol, "ms");
    ck_assert_str_eq(bench_unit_for(999.9).symbol, "ms");
    ck_assert_str_eq(bench_unit_for(1000.0).symbol, "s");
    ck_assert_str_eq(bench_unit_for(NAN).symbol, "ms");
    char b[32];
    ck_assert_str_eq(bench_format_time(b, sizeof b, 0.5), "500.0 µs");
    ck_assert_str_eq(bench_format_time(b, sizeof b, 5.678), "5.68 ms");
    ck_assert_str_eq(bench_format_time(b, sizeof b, 12.345), "12.3 ms");
    ck_assert_str_eq(bench_format_time(b, sizeof b, 1500.0), "1.500 s");
    ck_assert_str_eq(bench_format_time(b, sizeof b, 0.00625), "6.25 µs");
    ck_assert_str_eq(bench_format_in(b, sizeof b, NAN, bench_unit_for(1), 2), "-");
    /* a row's values share the mean's unit: 0.05 ms beside a 2 ms mean */
    BenchUnit u = bench_unit_for(2.0);
    ck_assert_str_eq(bench_format_in(b, sizeof b, 0.05, u, bench_unit_decimals(u, 2.0)), "0.05 ms");
    ck_assert_str_eq(bench_format_kib(b, sizeof b, 512), "512 KiB");
    ck_assert_str_eq(bench_format_kib(b, sizeof b, 2048), "2.0 MiB");
    ck_assert_str_eq(bench_format_kib(b, sizeof b, 3L * 1024 * 1024), "3.00 GiB");
}
END_TEST

START_TEST(test_quantile_interpolation)
{
    const double sorted[] = {10, 20, 30};
    expect_near("p0", bench_quantile(sorted, 3, 0.0), 10);
    expect_near("p0.25", bench_quantile(sorted, 3, 0.25), 15);
    expect_near("p1", bench_quantile(sorted, 3, 1.0), 30);
    ck_assert(isnan(bench_quantile(sorted, 0, 0.5)));
}
END_TEST

/* ---- the suite's data and the OpenBLAS baseline ---- */

/* C's cell `cell` of workload w (matmul, batched or 4-index), summed naively. */
static double naive_cell(const Workload *w, size_t cell)
{
    const float *a = w->inputs[0].tensor.data, *b = w->inputs[1].tensor.data;
    size_t n = (size_t)w->n;
    double s = 0;
    if (w->product == BENCH_4INDEX) {
        size_t d = cell % n, c = cell / n % n, bb = cell / (n * n) % n, aa = cell / (n * n * n);
        for (size_t e = 0; e < n; e++)
            for (size_t f = 0; f < n; f++)
                s += (double)a[((aa * n + e) * n + bb) * n + f] * b[((e * n + c) * n + f) * n + d];
        return s;
    }
    size_t batch = cell / (n * n), i = cell / n % n, j = cell % n;
    a += batch * n * n, b += batch * n * n;
    for (size_t k = 0; k < n; k++)
        s += (double)a[i * n + k] * b[k * n + j];
    return s;
}

START_TEST(test_baseline_computes_the_workloads_products)
{
    const int products[] = {0, 4, 5}; /* matmul-256, batched-32x256, 4index-32 */
    for (int p = 0; p < 3; p++) {
        Workload w;
        ck_assert_int_eq(bench_workload_make(products[p], &w, true), 0);
        ck_assert(bench_blas_supports(&w));
        float *c = bench_blas_result(&w, 1);
        ck_assert(c);
        size_t cells = w.product == BENCH_BATCHED  ? 32 * 256 * 256
                       : w.product == BENCH_4INDEX ? 32 * 32 * 32 * 32
                                                   : (size_t)w.n * (size_t)w.n;
        for (size_t k = 0; k < 64; k++) {
            size_t cell = (k * 2654435761u) % cells;
            double want = naive_cell(&w, cell);
            ck_assert_msg(fabs(c[cell] - want) <= 1e-3 + 1e-4 * fabs(want),
                          "%s cell %zu: got %g, want %g", w.name, cell, c[cell], want);
        }
        free(c);
        bench_workload_free(&w);
    }
    const char *not_products[] = {"attention-512", "elementwise-chain", "bool-join-512"};
    for (int i = 0; i < bench_workload_count(); i++) {
        Workload w;
        ck_assert_int_eq(bench_workload_make(i, &w, false), 0);
        for (int k = 0; k < 3; k++)
            if (strcmp(w.name, not_products[k]) == 0)
                ck_assert(!bench_blas_supports(&w));
        ck_assert(w.n_inputs > 0 && w.inputs[0].tensor.data == NULL); /* shapes only */
        ck_assert(!bench_blas_result(&w, 1));
    }
}
END_TEST

START_TEST(test_workload_data_is_its_own)
{
    /* a workload's data is the same whichever workloads were built before */
    Workload a, b, other;
    ck_assert_int_eq(bench_workload_make(5, &a, true), 0);
    ck_assert_int_eq(bench_workload_make(1, &other, true), 0);
    ck_assert_int_eq(bench_workload_make(5, &b, true), 0);
    ck_assert_int_eq(a.n_inputs, b.n_inputs);
    size_t bytes = 32 * 32 * 32 * 32 * sizeof(float);
    ck_assert(memcmp(a.inputs[0].tensor.data, b.inputs[0].tensor.data, bytes) == 0);
    ck_assert(memcmp(a.inputs[0].tensor.data, a.inputs[1].tensor.data, bytes) != 0);
    bench_workload_free(&a);
    bench_workload_free(&b);
    bench_workload_free(&other);
    ck_assert(bench_workload_make(bench_workload_count(), &a, true) != 0);
}
END_TEST

/* ---- running fuse-bench ---- */

/* Runs `fuse-bench ARGS...` (NULL-terminated) in the scratch directory, stdout
 * and stderr captured. */
static Result run_bench(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    Result r = run_tool_va(FUSE_BENCH_BIN, first, ap);
    va_end(ap);
    return r;
}

static void expect_has(const char *text, const char *what)
{
    ck_assert_msg(text && strstr(text, what), "no '%s' in:\n%s", what, text ? text : "(null)");
}

/* The line of text that starts with `start`, copied into line; false if none. */
static bool line_starting(const char *text, const char *start, char *line, size_t size)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, start, strlen(start)) == 0) {
            size_t n = strcspn(p, "\n");
            snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), p);
            return true;
        }
    }
    return false;
}

/* The last whitespace-separated word of line. */
static const char *last_word(const char *line)
{
    const char *end = line + strlen(line);
    while (end > line && end[-1] == ' ')
        end--;
    const char *p = end;
    while (p > line && p[-1] != ' ')
        p--;
    return p;
}

static const char TINY[] = "A[i,k] = const([[1.0, 2.0], [3.0, 4.0]])\n"
                           "B[k,j] = const([[0.5, 1.0], [-1.0, 2.0]])\n"
                           "C[i,j] = A[i,k] B[k,j]\n"
                           "export C\n";

START_TEST(test_list_prints_workloads)
{
    Result r = run_bench("--list", NULL);
    expect_exit(&r, 0);
    int lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 10);
    ck_assert(strncmp(r.out, "matmul-256\n", 11) == 0);
    expect_has(r.out, "\nbool-join-512\n");
    result_free(&r);
}
END_TEST

START_TEST(test_only_nothing_is_an_error)
{
    Result r = run_bench("--suite", "--only", "nothing", NULL);
    expect_exit(&r, 2);
    expect_has(r.err, "--only 'nothing' matches no workload");
    expect_has(r.err, "matmul-256");
    expect_has(r.err, "elementwise-chain");
    ck_assert_str_eq(r.out, "");
    result_free(&r);
}
END_TEST

START_TEST(test_unknown_option_suggests)
{
    Result r = run_bench("--suite", "--repaet", "2", NULL);
    expect_exit(&r, 2);
    expect_has(r.err, "unknown option '--repaet'");
    expect_has(r.err, "did you mean '--repeat'?");
    result_free(&r);
    r = run_bench("--suite", "--baseline", "openblsa", NULL);
    expect_exit(&r, 2);
    expect_has(r.err, "unknown baseline 'openblsa'");
    result_free(&r);
    r = run_bench("--only", "matmul", NULL);
    expect_exit(&r, 2);
    expect_has(r.err, "--only applies to --suite");
    result_free(&r);
}
END_TEST

START_TEST(test_help_documents_every_option)
{
    Result r = run_bench("--help", NULL);
    expect_exit(&r, 0);
    const char *opts[] = {"--suite",  "--list",    "--only",      "--repeat",
                          "--warmup", "--threads", "--equations", "--baseline",
                          "--memory", "--json",    "--compare",   "--markdown",
                          "--svg",    "--start",   "--fuse-jit",  "--help"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        expect_has(r.out, opts[i]);
    result_free(&r);
}
END_TEST

/* Reads the results of a --json file; checks the raw times against the summary. */
static json_t *load_results(const char *name, json_t **root)
{
    json_error_t err;
    *root = json_load_file(spath(name), JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(*root, "%s is not JSON: %s (line %d)", name, err.text, err.line);
    json_t *results = json_object_get(*root, "results");
    ck_assert(json_is_array(results));
    return results;
}

START_TEST(test_json_has_raw_times)
{
    Result r = run_bench("--suite", "--only", "matmul-256", "--repeat", "3", "--warmup", "0",
                         "--json", "out.json", NULL);
    expect_exit(&r, 0);
    expect_has(r.out, "mean ± σ");
    expect_has(r.out, "matmul-256");
    json_t *root, *results = load_results("out.json", &root);
    ck_assert_int_eq(json_array_size(results), 1);
    json_t *e = json_array_get(results, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "matmul-256");
    ck_assert(json_is_true(json_object_get(e, "ok")));
    json_t *times = json_object_get(e, "times_ms");
    ck_assert_int_eq(json_array_size(times), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "runs")), 3);
    double t[3], sum = 0, lo = INFINITY, hi = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert(json_is_number(json_array_get(times, i)));
        t[i] = json_number_value(json_array_get(times, i));
        ck_assert(t[i] > 0);
        sum += t[i], lo = fmin(lo, t[i]), hi = fmax(hi, t[i]);
    }
    double mean = sum / 3, sq = 0;
    for (int i = 0; i < 3; i++)
        sq += (t[i] - mean) * (t[i] - mean);
    double med = t[0] + t[1] + t[2] - lo - hi;
    ck_assert(fabs(json_number_value(json_object_get(e, "mean_ms")) - mean) < 1e-6 * mean);
    ck_assert(fabs(json_number_value(json_object_get(e, "stddev_ms")) - sqrt(sq / 2)) <
              1e-6 * mean);
    ck_assert(fabs(json_number_value(json_object_get(e, "median_ms")) - med) < 1e-6 * mean);
    ck_assert(fabs(json_number_value(json_object_get(e, "min_ms")) - lo) < 1e-6 * mean);
    ck_assert(fabs(json_number_value(json_object_get(e, "max_ms")) - hi) < 1e-6 * mean);
    /* matmul-256 is 2 x 256^3 flops */
    ck_assert(fabs(json_number_value(json_object_get(e, "flops")) - 2.0 * 256 * 256 * 256) < 1);
    json_decref(root);
    result_free(&r);
}
END_TEST

START_TEST(test_json_single_run_has_null_not_nan)
{
    write_text("tiny.fuse", TINY);
    Result r = run_bench("tiny.fuse", "--repeat", "1", "--warmup", "0", "--json", "one.json", NULL);
    expect_exit(&r, 0);
    char *text = slurp(spath("one.json"));
    ck_assert_msg(!strstr(text, "nan") && !strstr(text, "NaN"), "%s", text);
    json_t *root, *results = load_results("one.json", &root);
    json_t *e = json_array_get(results, 0);
    ck_assert(json_is_null(json_object_get(e, "stddev_ms")));
    ck_assert(json_is_number(json_object_get(e, "mean_ms")));
    ck_assert_int_eq(json_array_size(json_object_get(e, "times_ms")), 1);
    json_decref(root);
    free(text);
    result_free(&r);
}
END_TEST

START_TEST(test_compare_with_old_json)
{
    /* an old run so slow that this one is faster whatever the machine */
    write_text("old.json", "{\"results\": ["
                           "{\"name\": \"matmul-256\", \"median_ms\": 1e9},"
                           "{\"name\": \"gone-workload\", \"median_ms\": 3.0}]}");
    Result r = run_bench("--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0",
                         "--compare", "old.json", NULL);
    expect_exit(&r, 0);
    expect_has(r.out, "Compared with old.json");
    char line[512];
    ck_assert_msg(line_starting(strstr(r.out, "Compared with"), "matmul-256", line, sizeof line),
                  "%s", r.out);
    expect_has(line, "faster");
    expect_has(r.out, "only in the old run: gone-workload");
    result_free(&r);

    write_text("other.json", "{\"results\": [{\"name\": \"matmul-512\", \"median_ms\": 1}]}");
    r = run_bench("--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0", "--compare",
                  "other.json", NULL);
    expect_exit(&r, 0);
    expect_has(r.out, "not in the old run: matmul-256");
    expect_has(r.out, "only in the old run: matmul-512");
    result_free(&r);

    /* σ so large that any change is noise */
    write_text("noisy.json", "{\"results\": [{\"name\": \"matmul-256\", \"median_ms\": 1,"
                             " \"mean_ms\": 1, \"stddev_ms\": 1e12}]}");
    r = run_bench("--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0", "--compare",
                  "noisy.json", NULL);
    expect_exit(&r, 0);
    expect_has(r.out, "(within noise");
    result_free(&r);

    write_text("bad.json", "{\"results\": [NaN]}");
    r = run_bench("--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0", "--compare",
                  "bad.json", NULL);
    expect_exit(&r, 2); /* before any workload runs */
    ck_assert_str_eq(r.out, "");
    expect_has(r.err, "bad.json");
    result_free(&r);
}
END_TEST

/* Whether the tags of an XML text balance: every <x ...> closed by </x>, in order. */
static bool tags_balance(const char *s)
{
    char stack[64][32];
    int depth = 0;
    for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        if (!end)
            return false;
        char name[32];
        bool closing = p[1] == '/';
        size_t n = strcspn(p + 1 + closing, " \t\n/>");
        if (n == 0 || n >= sizeof name)
            return false;
        snprintf(name, sizeof name, "%.*s", (int)n, p + 1 + closing);
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return false;
            depth--;
        } else if (end[-1] != '/') {
            if (depth == 64)
                return false;
            snprintf(stack[depth++], sizeof stack[0], "%s", name);
        }
    }
    return depth == 0;
}

START_TEST(test_tags_balance_checker)
{
    ck_assert(tags_balance("<svg a=\"1\"><g><rect/></g><text>x</text></svg>"));
    ck_assert(!tags_balance("<svg><g></svg>"));
    ck_assert(!tags_balance("<svg><text>x</svg>"));
}
END_TEST

START_TEST(test_markdown_and_svg_files)
{
    write_text("tiny.fuse", TINY);
    Result r =
        run_bench("tiny.fuse", "--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0",
                  "--baseline", "openblas", "--markdown", "t.md", "--svg", "t.svg", NULL);
    expect_exit(&r, 0);
    char *md = slurp(spath("t.md")), *svg = slurp(spath("t.svg"));
    ck_assert(md && svg);
    ck_assert(strncmp(md, "| workload |", 12) == 0);
    expect_has(md, "| matmul-256 |");
    expect_has(md, "| tiny.fuse |");
    expect_has(md, "| ratio |");
    /* every table line has the header's number of cells */
    int cols = 0;
    for (const char *p = md; *p && *p != '\n'; p++)
        cols += *p == '|';
    for (const char *p = md; *p == '|'; p = strchr(p, '\n') + 1) {
        int c = 0;
        for (const char *q = p; *q && *q != '\n'; q++)
            c += *q == '|';
        ck_assert_int_eq(c, cols);
    }
    ck_assert(strncmp(svg, "<svg", 4) == 0);
    ck_assert(tags_balance(svg));
    expect_has(svg, ">matmul-256</text>");
    expect_has(svg, ">tiny.fuse</text>");
    expect_has(svg, "OpenBLAS");
    expect_has(svg, " ms</text>"); /* a labelled time */
    free(md);
    free(svg);
    result_free(&r);
}
END_TEST

START_TEST(test_baseline_prints_ratio_column)
{
    write_text("tiny.fuse", TINY);
    Result r = run_bench("tiny.fuse", "--suite", "--only", "matmul-256", "--repeat", "2",
                         "--warmup", "0", "--baseline", "openblas", "--json", "b.json", NULL);
    expect_exit(&r, 0);
    char line[512];
    ck_assert(line_starting(r.out, "workload", line, sizeof line));
    ck_assert_str_eq(last_word(line), "ratio");
    expect_has(line, "OpenBLAS");
    ck_assert(line_starting(r.out, "matmul-256", line, sizeof line));
    char *end = NULL;
    double ratio = strtod(last_word(line), &end);
    ck_assert_msg(end && *end == '\0' && ratio > 0, "no ratio in '%s'", line);
    ck_assert(line_starting(r.out, "tiny.fuse", line, sizeof line));
    ck_assert_str_eq(last_word(line), "-"); /* not a suite product */
    expect_has(r.out, "OpenBLAS: ");
    json_t *root, *results = load_results("b.json", &root);
    json_t *mm = json_array_get(results, 1), *base = json_object_get(mm, "baseline");
    ck_assert_str_eq(json_string_value(json_object_get(mm, "name")), "matmul-256");
    ck_assert_str_eq(json_string_value(json_object_get(base, "name")), "openblas");
    ck_assert_int_eq(json_array_size(json_object_get(base, "times_ms")), 2);
    double want = json_number_value(json_object_get(base, "median_ms")) /
                  json_number_value(json_object_get(mm, "median_ms"));
    ck_assert(fabs(json_number_value(json_object_get(mm, "ratio")) - want) < 1e-6 * want);
    ck_assert(!json_object_get(json_array_get(results, 0), "baseline"));
    json_decref(root);
    result_free(&r);
}
END_TEST

START_TEST(test_memory_column)
{
    Result r = run_bench("--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0",
                         "--memory", "--json", "m.json", NULL);
    expect_exit(&r, 0);
    char line[512];
    ck_assert(line_starting(r.out, "workload", line, sizeof line));
    expect_has(line, "peak RSS");
    ck_assert(line_starting(r.out, "matmul-256", line, sizeof line));
    expect_has(line, "MiB");
    expect_has(r.out, "a child that does nothing peaks at");
    json_t *root, *results = load_results("m.json", &root);
    json_t *e = json_array_get(results, 0);
    /* A and B alone are 2 x 256 KiB; the child holds them and its outputs */
    ck_assert_int_gt(json_integer_value(json_object_get(e, "peak_rss_kib")), 512);
    ck_assert_int_eq(json_array_size(json_object_get(e, "times_ms")), 2);
    json_decref(root);
    result_free(&r);
}
END_TEST

START_TEST(test_equations_from_child)
{
    Result r = run_bench("--suite", "--only", "matmul-256", "--repeat", "2", "--warmup", "0",
                         "--memory", "--equations", NULL);
    expect_exit(&r, 0);
    expect_has(r.out, "  equation ");
    expect_has(r.out, "\n  C ");
    result_free(&r);
}
END_TEST

START_TEST(test_start_cold_and_cached)
{
    write_text("tiny.fuse", TINY);
    Result r = run_bench("--start", "tiny.fuse", "--repeat", "2", "--warmup", "0", NULL);
    expect_exit(&r, 0);
    expect_has(r.out, "run (cold)");
    expect_has(r.out, "run (cached)");
    expect_has(r.out, "/bin/true");
    result_free(&r);
    r = run_bench("--start", "tiny.fuse", "--json", "x.json", NULL);
    expect_exit(&r, 2);
    result_free(&r);
}
END_TEST

START_TEST(test_progress_only_on_a_terminal)
{
    write_text("tiny.fuse", TINY);
    Result r = run_bench("tiny.fuse", "--repeat", "2", "--warmup", "0", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(!strchr(r.err, '\r'), "progress on a pipe: %s", r.err);
    result_free(&r);
    /* on a pseudo-terminal: stdout and stderr both go there */
    int master;
    fflush(NULL);
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    ck_assert(pid >= 0);
    if (pid == 0) {
        if (chdir(scratch) != 0)
            _exit(126);
        execl(FUSE_BENCH_BIN, FUSE_BENCH_BIN, "tiny.fuse", "--repeat", "2", "--warmup", "0",
              (char *)NULL);
        _exit(127);
    }
    char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(master, buf + len, sizeof buf - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(master);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    expect_has(buf, "tiny.fuse: compiling");
    expect_has(buf, "\r\033[K");
}
END_TEST

static Suite *bench_suite(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, test_stats_odd_sample_with_outlier);
    tcase_add_test(tc, test_stats_even_sample_interpolates);
    tcase_add_test(tc, test_stats_first_run_slow);
    tcase_add_test(tc, test_stats_single_and_empty);
    tcase_add_test(tc, test_units_by_size);
    tcase_add_test(tc, test_quantile_interpolation);
    tcase_add_test(tc, test_tags_balance_checker);
    tcase_add_test(tc, test_baseline_computes_the_workloads_products);
    tcase_add_test(tc, test_workload_data_is_its_own);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = harness_case("binary");
    tcase_add_test(tc, test_list_prints_workloads);
    tcase_add_test(tc, test_only_nothing_is_an_error);
    tcase_add_test(tc, test_unknown_option_suggests);
    tcase_add_test(tc, test_help_documents_every_option);
    tcase_add_test(tc, test_json_has_raw_times);
    tcase_add_test(tc, test_json_single_run_has_null_not_nan);
    tcase_add_test(tc, test_compare_with_old_json);
    tcase_add_test(tc, test_markdown_and_svg_files);
    tcase_add_test(tc, test_baseline_prints_ratio_column);
    tcase_add_test(tc, test_memory_column);
    tcase_add_test(tc, test_equations_from_child);
    tcase_add_test(tc, test_start_cold_and_cached);
    tcase_add_test(tc, test_progress_only_on_a_terminal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bench_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
