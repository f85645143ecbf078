/*
 * timing.h: the clock and the sort order the stand-alone benchmark programs of
 * bench/ share (each is one .c file built by its script, so these are static
 * inline here rather than a library of their own).
 */
#ifndef FUSE_BENCH_TIMING_H
#define FUSE_BENCH_TIMING_H

#include <time.h>

/* Monotonic milliseconds. */
static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* qsort order of doubles, ascending (medians). */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif /* FUSE_BENCH_TIMING_H */
