/*
 * bench_stats.h: the statistics fuse-bench prints for a set of timed runs (mean,
 * sample standard deviation, median, quartiles, min and max, outliers) and the
 * choice of a time unit by size. Plain C, no fuse-jit dependency: the test suite
 * compiles bench_stats.c in.
 */
#ifndef FUSE_BENCH_STATS_H
#define FUSE_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>

/* The summary of n run times (milliseconds). Quartiles interpolate linearly
 * between the sorted samples (NumPy's default). stddev is the sample standard
 * deviation (n - 1 in the denominator), NaN when n < 2. */
typedef struct BenchStats {
    int n;
    double mean, stddev, median, min, max, q1, q3;
    int n_outliers;  /* runs slower than Q3 + 1.5 IQR */
    bool first_slow; /* the first run took over twice the median of the others */
} BenchStats;

/* Fills s from t[0..n) (left in run order: the first-run check needs it).
 * Returns false when n < 1 or memory runs out (s is then zeroed). */
bool bench_stats_compute(const double *t, int n, BenchStats *s);

/* The p-quantile (0 <= p <= 1) of sorted[0..n), interpolated linearly. */
double bench_quantile(const double *sorted, int n, double p);

/* A time unit: the symbol and how many of it make a millisecond. */
typedef struct BenchUnit {
    const char *symbol; /* "µs", "ms" or "s" */
    double per_ms;      /* 1000, 1 or 0.001 */
} BenchUnit;

/* The unit for a time of `ms` milliseconds: µs below 1 ms, s from 1000 ms on,
 * else ms (a NaN or negative time gets ms). */
BenchUnit bench_unit_for(double ms);

/* Digits after the point for values shown in unit u next to a reference value
 * (the mean): 3 in seconds, 2 below 10 µs or 10 ms, else 1 (about 3
 * significant digits, as hyperfine shows them). */
int bench_unit_decimals(BenchUnit u, double ref_ms);

/* Writes ms in unit u with the given decimals, e.g. "12.3 ms", into buf; "-"
 * when ms is NaN. Returns buf. */
char *bench_format_in(char *buf, size_t size, double ms, BenchUnit u, int decimals);

/* Writes ms in its own unit (bench_unit_for) into buf; returns buf. */
char *bench_format_time(char *buf, size_t size, double ms);

/* Writes a size in KiB as "812 KiB", "45.1 MiB" or "1.20 GiB" into buf. */
char *bench_format_kib(char *buf, size_t size, long kib);

#endif /* FUSE_BENCH_STATS_H */
