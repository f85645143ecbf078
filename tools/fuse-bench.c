/*
 * fuse-bench.c: benchmarks fuse-jit through the public API (include/fusejit.h)
 * only: the command line, and the reports put together. The measurements are
 * bench_measure.c, the suite bench_workloads.c, the statistics bench_stats.c,
 * the reports bench_report.c, the OpenBLAS baseline bench_blas.c and --start
 * bench_start.c.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "support.h"

/* --only matching nothing is an error that names the workloads. */
static int check_only(const BenchOpts *o)
{
    for (int i = 0; i < bench_workload_count(); i++)
        if (bench_selected(o, bench_workload_names[i]))
            return 0;
    fprintf(stderr,
            "fuse-bench: error: --only '%s' matches no workload; the workloads are:", o->only);
    for (int i = 0; i < bench_workload_count(); i++)
        fprintf(stderr, "%s %s", i ? "," : "", bench_workload_names[i]);
    fputc('\n', stderr);
    return 1;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: fuse-bench PROGRAM... [OPTIONS]\n"
               "       fuse-bench --suite [--only NAME] [OPTIONS]\n"
               "       fuse-bench --list\n"
               "       fuse-bench --start PROGRAM [--repeat N] [--warmup N] [--fuse-jit PATH]\n"
               "                  [--compare PATH]...\n\n"
               "Times parse, compile, the first run and --repeat steady runs (after --warmup\n"
               "untimed runs) of each program: mean ± σ (sample standard deviation), median,\n"
               "min … max and the number of runs, in µs, ms or s by size, and the GFLOP/s of\n"
               "its joins (2 x loop cells per sum join) over the median. Steady runs write the\n"
               "exports into host buffers allocated once (fuse_runner_run_into). Below the\n"
               "table, a warning names each workload with runs slower than Q3 + 1.5 IQR\n"
               "(outliers) or a first timed run over twice the median of the others. On a\n"
               "terminal, stderr shows a progress line while a workload runs.\n\n"
               "  --suite        built-in workloads with random inputs: matrix products\n"
               "                 256-2048, a batched product, a 4-index contraction, an\n"
               "                 attention head, an MLP, an elementwise chain, a boolean join\n"
               "  --list         print the suite's workloads, one per line, and exit\n"
               "  --only NAME    with --suite: only workloads whose name contains NAME (an\n"
               "                 error when none does)\n"
               "  --repeat N     timed runs (default 10)\n"
               "  --warmup N     untimed runs before them (default 2)\n"
               "  --threads N    worker threads (default 0: every core); the baseline too\n"
               "  --equations    also print each equation's kernel time (min and median\n"
               "                 over the timed runs, from the run traces, summed over\n"
               "                 a fixpoint's sweeps; an equation fused into the one\n"
               "                 before it shows 0)\n"
               "  --baseline openblas\n"
               "                 also time the suite's products with OpenBLAS's cblas_sgemm on\n"
               "                 the same data and threads (the square and batched products;\n"
               "                 the 4-index one permutes its operands to matrices first, timed)\n"
               "                 and print a ratio column: fuse-jit speed / OpenBLAS speed\n"
               "                 (medians; above 1: fuse-jit is faster); '-' for the others.\n"
               "                 Set OPENBLAS_CORETYPE (e.g. Cooperlake) if OpenBLAS picks a\n"
               "                 generic kernel for this CPU: the note below the table names it\n"
               "  --memory       run each workload (and its baseline) in a child process and\n"
               "                 print its peak resident memory (ru_maxrss) as a column\n"
               "  --json FILE    also write the results as JSON: every statistic, the raw\n"
               "                 times (times_ms), parse_ms, the baseline's; null when unknown\n"
               "  --compare OLD.json\n"
               "                 print each workload's speed-up or slow-down (medians) against\n"
               "                 an earlier --json file, matched by name; missing ones named\n"
               "  --markdown FILE  also write the table as Markdown\n"
               "  --svg FILE     also write a bar chart (SVG) of each workload's median time,\n"
               "                 beside its baseline's, on a log scale\n"
               "  --start        whole-process start: spawn `fuse-jit run PROGRAM --out\n"
               "                 DIR/out.npz` cold (an empty disk cache before each spawn)\n"
               "                 and cached (its code already in a scratch disk cache); wall\n"
               "                 mean ± σ, median, min … max and median CPU time per process,\n"
               "                 interleaved with /bin/true and `fuse-jit --version` (default\n"
               "                 --repeat 50, --warmup 3)\n"
               "  --fuse-jit PATH  with --start: the fuse-jit to time (default: the one\n"
               "                 beside fuse-bench)\n"
               "  --compare PATH with --start: another fuse-jit timed the same way, in\n"
               "                 the same rounds (repeatable)\n"
               "  -h, --help     this text\n\n"
               "Exit status: 0, 1 when a workload failed or a file could not be written, 2 on\n"
               "a usage error or an unreadable --compare file.\n");
}

static int parse_count(const char *flag, const char *v, int min, int *out)
{
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : -1;
    if (!v || *v == '\0' || *end != '\0' || n < min || n > 1000000) {
        fprintf(stderr, "fuse-bench: error: %s expects a number >= %d\n", flag, min);
        return 1;
    }
    *out = (int)n;
    return 0;
}

typedef struct Mode {
    int suite, start, list;
} Mode;

static const char *const OPTIONS[] = {
    "help",    "suite", "start", "compare", "fuse-jit", "equations", "repeat", "warmup",
    "threads", "json",  "only",  "list",    "baseline", "markdown",  "svg",    "memory"};

static int unknown_option(const char *a)
{
    const char *name = a + strspn(a, "-");
    const char *near = sup_nearest(name, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0]);
    fprintf(stderr, "fuse-bench: error: unknown option '%s' (see --help)%s%s%s\n", a,
            near ? "; did you mean '--" : "", near ? near : "", near ? "'?" : "");
    return 1;
}

static int check_baseline(const char *v)
{
    if (strcmp(v, "openblas") == 0)
        return 0;
    const char *names[] = {"openblas"};
    fprintf(stderr, "fuse-bench: error: unknown baseline '%s' (the one there is: openblas)%s\n", v,
            sup_nearest(v, names, 1) ? "; did you mean 'openblas'?" : "");
    return 1;
}

/* An option taking a value: stores it; 0 ok, 1 error, -1 not such an option. */
static int value_option(const char *a, const char *v, BenchOpts *o)
{
    static const char *const flags[] = {"--json",     "--only",    "--markdown", "--svg",
                                        "--baseline", "--compare", "--fuse-jit"};
    int k = -1;
    for (int i = 0; i < (int)(sizeof flags / sizeof flags[0]); i++)
        if (strcmp(a, flags[i]) == 0)
            k = i;
    if (k < 0)
        return -1;
    if (!v) {
        fprintf(stderr, "fuse-bench: error: %s expects a value\n", a);
        return 1;
    }
    const char **slot[] = {&o->json_path, &o->only, &o->markdown_path, &o->svg_path,
                           &o->baseline,  NULL,     &o->fuse_jit};
    if (k == 5)
        o->compare[o->n_compare++] = v;
    else
        *slot[k] = v;
    return k == 4 ? check_baseline(v) : 0;
}

/* Parses argv; programs are collected in progs (argc entries). 0 ok, 1 error,
 * 2 help printed. */
static int parse_args(int argc, char **argv, BenchOpts *o, const char **progs, int *n_progs,
                      Mode *mode)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = value_option(a, v, o);
        if (rc < 0) {
            rc = 0;
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                usage(stdout);
                return 2;
            } else if (strcmp(a, "--repeat") == 0) {
                rc = parse_count(a, v, 1, &o->repeat);
            } else if (strcmp(a, "--warmup") == 0) {
                rc = parse_count(a, v, 0, &o->warmup);
            } else if (strcmp(a, "--threads") == 0) {
                rc = parse_count(a, v, 0, &o->threads);
            } else {
                int *flag = strcmp(a, "--suite") == 0       ? &mode->suite
                            : strcmp(a, "--start") == 0     ? &mode->start
                            : strcmp(a, "--list") == 0      ? &mode->list
                            : strcmp(a, "--equations") == 0 ? &o->equations
                            : strcmp(a, "--memory") == 0    ? &o->memory
                                                            : NULL;
                if (flag)
                    *flag = 1;
                else if (a[0] == '-' && a[1] != '\0')
                    return unknown_option(a);
                else
                    progs[(*n_progs)++] = a;
                continue;
            }
        }
        if (rc)
            return 1;
        i++;
    }
    return 0;
}

/* The options that make no sense together; 0 or 1 (reported). */
static int check_combination(const BenchOpts *o, const Mode *mode, int n_progs)
{
    const char *bad = NULL;
    if (mode->start) {
        bad = n_progs != 1 || mode->suite ? "--start takes one PROGRAM and no --suite"
              : o->json_path || o->markdown_path || o->svg_path || o->baseline || o->memory ||
                      o->only || o->equations
                  ? "--start times whole processes: --json, --markdown, --svg, --baseline, "
                    "--memory, --only and --equations do not apply"
                  : NULL;
        for (int i = 0; !bad && i < o->n_compare; i++)
            if (access(o->compare[i], X_OK) != 0)
                bad = "with --start, --compare takes another fuse-jit binary";
    } else {
        bad = o->n_compare > 1               ? "--compare takes one earlier --json file"
              : o->fuse_jit                  ? "--fuse-jit applies to --start only"
              : o->only && !mode->suite      ? "--only applies to --suite"
              : n_progs == 0 && !mode->suite ? "no program given"
                                             : NULL;
    }
    if (bad)
        fprintf(stderr, "fuse-bench: error: %s (see --help)\n", bad);
    return bad != NULL;
}

/* Runs PROGRAMs and the suite and writes the reports; 0, or 1 on a failure. */
static int run_benchmarks(const char **progs, int n_progs, bool suite, const BenchOpts *o)
{
    BenchResult *rs = calloc((size_t)(n_progs + bench_workload_count() + 1), sizeof *rs);
    if (!rs)
        return 1;
    fuse_ctx *ctx = NULL;
    int n = 0, failed = 0;
    bench_print_header(o);
    for (int i = 0; i < n_progs; i++) {
        bench_measure_program(&ctx, progs[i], o, &rs[n]);
        failed |= !rs[n++].ok;
    }
    if (suite)
        failed |= bench_measure_suite(&ctx, o, rs, &n);
    bench_print_warnings(rs, n);
    if (o->baseline)
        printf("OpenBLAS: %s; ratio: fuse-jit speed / OpenBLAS speed (medians)\n",
               bench_blas_config());
    if (o->memory) {
        long kib = bench_idle_child_kib(o);
        char t[32];
        printf("peak RSS: each workload's own child process (ru_maxrss from wait4); a "
               "child that does nothing peaks at %s\n",
               kib > 0 ? bench_format_kib(t, sizeof t, kib) : "?");
    }
    if (o->compare_json)
        failed |= bench_print_compare(o->compare_json, rs, n);
    if (o->json_path)
        failed |= bench_write_json(o->json_path, rs, n, o);
    if (o->markdown_path)
        failed |= bench_write_markdown(o->markdown_path, rs, n, o);
    if (o->svg_path)
        failed |= bench_write_svg(o->svg_path, rs, n, o);
    for (int i = 0; i < n; i++)
        bench_result_free(&rs[i]);
    free(rs);
    fuse_ctx_free(ctx);
    return failed;
}

int main(int argc, char **argv)
{
    BenchOpts o = {.repeat = -1, .warmup = -1};
    const char **progs = calloc((size_t)argc + 1, sizeof *progs);
    o.compare = calloc((size_t)argc + 1, sizeof *o.compare);
    int n_progs = 0, status = 0;
    Mode mode = {0};
    int rc = progs && o.compare ? parse_args(argc, argv, &o, progs, &n_progs, &mode) : 1;
    o.repeat = o.repeat >= 0 ? o.repeat : mode.start ? 50 : 10;
    o.warmup = o.warmup >= 0 ? o.warmup : mode.start ? 3 : 2;
    if (rc != 0) {
        status = rc == 2 ? 0 : 2; /* help printed, or a usage error */
    } else if (mode.list) {
        for (int i = 0; i < bench_workload_count(); i++)
            puts(bench_workload_names[i]);
    } else if (check_combination(&o, &mode, n_progs) || (o.only && check_only(&o)) ||
               (!mode.start && o.n_compare == 1 && bench_check_compare(o.compare[0]))) {
        status = 2;
    } else {
        if (!mode.start && o.n_compare == 1)
            o.compare_json = o.compare[0];
        status = mode.start ? bench_run_start(progs[0], &o)
                            : run_benchmarks(progs, n_progs, mode.suite, &o);
    }
    free(progs);
    free(o.compare);
    return status;
}
