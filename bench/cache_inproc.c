/*
 * cache_inproc.c: the cost of an in-process code-cache hit against a cold compile
 *, through the public API only. For each program: one context, the
 * first fuse_runner_new compiles (no disk cache), then REPEAT more runners of the
 * same program in the same context are memory hits. Prints the cold compile
 * (fuse_timings.compile_ms + lower_ms), the median hit (cache_load_ms) and the
 * median wall time of fuse_runner_new on a hit, in milliseconds.
 *
 * usage: cache_inproc PROGRAM.fuse... [REPEAT=50]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusejit.h"
#include "timing.h"

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench(const char *path, int repeat)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1;
    cfg.write_sinks = 0;
    if (fuse_ctx_new(&ctx) || fuse_program_from_file(ctx, path, &prog) ||
        fuse_runner_new(prog, &cfg, NULL, 0, &run)) {
        fprintf(stderr, "%s: %s\n", path, fuse_ctx_error(ctx));
        return 1;
    }
    fuse_timings t = {.size = sizeof t};
    fuse_runner_timings(run, &t);
    double cold = t.lower_ms + t.compile_ms;
    fuse_runner_free(run);
    double *load = calloc((size_t)repeat, sizeof *load), *wall = calloc((size_t)repeat, sizeof *wall);
    for (int i = 0; i < repeat && load && wall; i++) {
        double t0 = now_ms();
        if (fuse_runner_new(prog, &cfg, NULL, 0, &run)) {
            fprintf(stderr, "%s: %s\n", path, fuse_ctx_error(ctx));
            return 1;
        }
        wall[i] = now_ms() - t0;
        fuse_runner_timings(run, &t);
        load[i] = t.cache_load_ms;
        fuse_runner_free(run);
    }
    qsort(load, (size_t)repeat, sizeof *load, by_value);
    qsort(wall, (size_t)repeat, sizeof *wall, by_value);
    fuse_stats s = {.size = sizeof s};
    fuse_ctx_stats(ctx, &s);
    printf("%-40s cold_compile_ms %8.3f  hit_load_ms %7.4f (%.2f%%)  hit_runner_new_ms %7.4f"
           "  compiles %llu hits %llu\n",
           path, cold, load[repeat / 2], 100 * load[repeat / 2] / cold, wall[repeat / 2],
           (unsigned long long)s.compiles, (unsigned long long)s.memory_hits);
    free(load);
    free(wall);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    int repeat = 50, rc = 0;
    if (argc > 2 && strspn(argv[argc - 1], "0123456789") == strlen(argv[argc - 1]))
        repeat = atoi(argv[--argc]);
    if (repeat < 1)
        repeat = 1;
    for (int i = 1; i < argc; i++)
        rc |= bench(argv[i], repeat);
    return rc;
}
