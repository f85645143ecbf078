/*
 * bench.h: what the parts of fuse-bench share: its options, the suite's
 * workloads (bench_workloads.c), one workload's measured result and the
 * measurements (bench_measure.c), the OpenBLAS baseline (bench_blas.c), the
 * reports (bench_report.c: table, Markdown, SVG, JSON, --compare) and the
 * whole-process start times (bench_start.c).
 * fuse-bench.c parses the command line and runs the measurements.
 */
#ifndef FUSE_BENCH_H
#define FUSE_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_stats.h"
#include "fusejit.h"

#define BENCH_MAX_INPUTS 8

typedef struct BenchOpts {
    int repeat, warmup, threads;
    int equations;        /* --equations: per-equation kernel times from the run traces */
    int memory;           /* --memory: each measurement in a child; its peak RSS */
    const char *baseline; /* --baseline: "openblas" or NULL */
    const char *json_path, *markdown_path, *svg_path;
    const char *compare_json; /* --compare OLD.json (not with --start) */
    const char *only;         /* --suite: run only workloads whose name contains this */
    const char *fuse_jit;     /* --start: the fuse-jit to spawn (NULL: beside fuse-bench) */
    const char **compare;     /* --start: other fuse-jit binaries timed beside it */
    int n_compare;
} BenchOpts;

/* The product a workload computes, when OpenBLAS can compute the same one. */
typedef enum BenchProduct {
    BENCH_NOT_A_PRODUCT,
    BENCH_MATMUL,  /* C = A B, n x n */
    BENCH_BATCHED, /* 32 products of 256 x 256 */
    BENCH_4INDEX,  /* C[a,b,c,d] = A[a,e,b,f] B[e,c,f,d], every size n */
} BenchProduct;

/* One suite workload: program text plus its sources, bound as borrowed inputs. */
typedef struct Workload {
    const char *name;
    char text[1024];
    fuse_input inputs[BENCH_MAX_INPUTS];
    size_t n_inputs;
    double flops; /* the workload's own count; 0 when none */
    int is_bool;  /* inputs are 0/1 */
    BenchProduct product;
    int64_t n;        /* the product's size */
    bool shapes_only; /* inputs without data (their data pointers NULL) */
} Workload;

/* ---- bench_workloads.c ---- */

/* The names of the suite's workloads, in order, and how many there are. */
extern const char *const bench_workload_names[];
int bench_workload_count(void);

/* Builds workload i (0 <= i < count): its text, and its inputs' shapes and, when
 * with_data, their data, drawn from a fixed seed of the workload's own (the
 * same on every run). Returns 0, or 1 when out of memory (w is then still
 * freeable). */
int bench_workload_make(int i, Workload *w, bool with_data);
void bench_workload_free(Workload *w);

/* ---- one workload's measurements ---- */

typedef struct BenchResult {
    const char *name;
    int ok;
    double parse_ms, compile_ms, first_ms, flops;
    double *times; /* the timed runs (ms, in run order); n_times of them */
    int n_times;
    BenchStats stats;
    int has_base; /* the baseline timed the same product */
    double *base_times;
    int n_base;
    BenchStats base;
    long peak_rss_kib, base_rss_kib; /* --memory; 0 when not measured */
    char *eq_text;                   /* --equations: the per-equation table, or NULL */
} BenchResult;

void bench_result_free(BenchResult *r);

/* ---- bench_measure.c ---- */

/* Measures a program file, or the suite's workloads that --only selects, and
 * prints each row as it is done. ctx: created on first use (never under
 * --memory, where children measure); the caller frees it. rs receives the
 * results (*n of them, counted on); the suite returns 1 when one failed. */
void bench_measure_program(fuse_ctx **ctx, const char *path, const BenchOpts *o, BenchResult *r);
int bench_measure_suite(fuse_ctx **ctx, const BenchOpts *o, BenchResult *rs, int *n);

/* Whether --only (when given) selects the workload `name`. */
bool bench_selected(const BenchOpts *o, const char *name);

/* The peak RSS (KiB) of a child that does nothing: fuse-bench's own share of
 * every --memory figure; -1 when it cannot be measured. */
long bench_idle_child_kib(const BenchOpts *o);

/* ---- bench_blas.c ---- */

/* Whether the baseline can time w's product. */
bool bench_blas_supports(const Workload *w);

/* Times w's product with OpenBLAS on w's own inputs, with `threads` threads (0:
 * every core): one untimed run, `warmup` more, then `repeat` timed ones into
 * times[0..repeat). Returns false when out of memory. */
bool bench_blas_time(const Workload *w, int threads, int warmup, int repeat, double *times);

/* Computes w's product once with OpenBLAS: the result in w's output layout,
 * malloc'd (free it), or NULL when unsupported or out of memory. */
float *bench_blas_result(const Workload *w, int threads);

/* A line naming the OpenBLAS build and core (for the report). */
const char *bench_blas_config(void);

/* ---- bench_report.c ---- */

/* The table on stdout: a header, then one row per workload as it finishes. */
void bench_print_header(const BenchOpts *o);
void bench_print_row(const BenchResult *r, const BenchOpts *o);
/* The warnings below the table (outliers, a slow first run); the number printed. */
int bench_print_warnings(const BenchResult *rs, int n);

/* The table as Markdown, a bar chart as SVG, the results as JSON; 0 or 1 (the
 * error reported on stderr). */
int bench_write_markdown(const char *path, const BenchResult *rs, int n, const BenchOpts *o);
int bench_write_svg(const char *path, const BenchResult *rs, int n, const BenchOpts *o);
int bench_write_json(const char *path, const BenchResult *rs, int n, const BenchOpts *o);

/* Prints each workload's speed-up or slow-down against an earlier --json file
 * (matched by name; the ones missing on either side are named). 0 or 1. */
int bench_print_compare(const char *old_json, const BenchResult *rs, int n);
/* Whether old_json is usable by bench_print_compare: 0, or 1 (reported). */
int bench_check_compare(const char *old_json);

/* Writes `s` padded with spaces to `width` display columns (µ is one column). */
void bench_put_padded(FILE *f, const char *s, int width, bool right);
/* Display columns of a UTF-8 string ("µs" is 2): bytes that do not continue a
 * character. */
int bench_display_width(const char *s);

/* ---- bench_start.c ---- */

/* --start PROGRAM: whole-process start of `fuse-jit run`, cold and cached. */
int bench_run_start(const char *prog, const BenchOpts *o);

#endif /* FUSE_BENCH_H */
