/*
 * bench_stats.c: the summary statistics of fuse-bench's timed runs and the time
 * units it prints them in (see bench_stats.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_quantile(const double *sorted, int n, double p)
{
    if (n < 1)
        return NAN;
    double pos = p * (double)(n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = pos - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

/* Whether the first run is over twice the median of the runs after it: a cold
 * cache or a lazy first touch that the warm-up runs did not absorb. */
static bool first_run_slow(const double *t, int n)
{
    if (n < 2)
        return false;
    double *rest = malloc((size_t)(n - 1) * sizeof *rest);
    if (!rest)
        return false;
    memcpy(rest, t + 1, (size_t)(n - 1) * sizeof *rest);
    qsort(rest, (size_t)(n - 1), sizeof *rest, cmp_double);
    double med = bench_quantile(rest, n - 1, 0.5);
    free(rest);
    return t[0] > 2.0 * med;
}

bool bench_stats_compute(const double *t, int n, BenchStats *s)
{
    memset(s, 0, sizeof *s);
    if (n < 1)
        return false;
    double *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted)
        return false;
    memcpy(sorted, t, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += t[i];
    s->n = n;
    s->mean = sum / n;
    double sq = 0.0;
    for (int i = 0; i < n; i++)
        sq += (t[i] - s->mean) * (t[i] - s->mean);
    s->stddev = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    s->min = sorted[0];
    s->max = sorted[n - 1];
    s->median = bench_quantile(sorted, n, 0.5);
    s->q1 = bench_quantile(sorted, n, 0.25);
    s->q3 = bench_quantile(sorted, n, 0.75);
    double fence = s->q3 + 1.5 * (s->q3 - s->q1);
    for (int i = 0; i < n; i++)
        s->n_outliers += t[i] > fence;
    s->first_slow = first_run_slow(t, n);
    free(sorted);
    return true;
}

BenchUnit bench_unit_for(double ms)
{
    if (ms >= 1000.0)
        return (BenchUnit){"s", 1e-3};
    if (ms >= 0.0 && ms < 1.0)
        return (BenchUnit){"µs", 1e3};
    return (BenchUnit){"ms", 1.0};
}

int bench_unit_decimals(BenchUnit u, double ref_ms)
{
    if (u.per_ms < 1.0)
        return 3;
    return ref_ms * u.per_ms < 10.0 ? 2 : 1;
}

char *bench_format_in(char *buf, size_t size, double ms, BenchUnit u, int decimals)
{
    if (isnan(ms))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.*f %s", decimals, ms * u.per_ms, u.symbol);
    return buf;
}

char *bench_format_time(char *buf, size_t size, double ms)
{
    BenchUnit u = bench_unit_for(ms);
    return bench_format_in(buf, size, ms, u, bench_unit_decimals(u, ms));
}

char *bench_format_kib(char *buf, size_t size, long kib)
{
    if (kib < 1024)
        snprintf(buf, size, "%ld KiB", kib);
    else if (kib < 1024L * 1024)
        snprintf(buf, size, "%.1f MiB", (double)kib / 1024.0);
    else
        snprintf(buf, size, "%.2f GiB", (double)kib / (1024.0 * 1024.0));
    return buf;
}
