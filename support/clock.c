/*
 * clock.c: the monotonic wall clock phase timings and traces read.
 */
#include "support.h"

#include <time.h>

double sup_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
