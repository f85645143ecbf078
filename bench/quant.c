/*
 * quant.c: one configuration of the quantised-MLP benchmark (bench/quant.sh),
 * in a process of its own so its peak resident memory is its own. It makes a
 * runner of PROGRAM with weights manifest MANIFEST (timed: reading and binding
 * the weights), runs it once untimed and then REPEAT times, and prints one
 * line: the runner's creation time, the median and minimum run times (ms),
 * the runner's buffer bytes (fuse_timings.buffer_bytes) and the process's
 * peak resident memory (getrusage ru_maxrss, KiB). Single thread.
 *
 *   quant PROGRAM MANIFEST REPEAT LABEL
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "fusejit.h"
#include "timing.h"

static int fail(fuse_ctx *ctx, const char *what)
{
    fprintf(stderr, "quant: %s: %s\n", what, fuse_ctx_error(ctx));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: quant PROGRAM MANIFEST REPEAT LABEL\n");
        return 2;
    }
    int repeat = atoi(argv[3]);
    if (repeat < 1 || repeat > 1000)
        repeat = 10;
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    if (fuse_ctx_new(&ctx) != FUSE_OK)
        return 1;
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.weights = argv[2];
    if (fuse_program_from_file_opts(ctx, argv[1], &o, &prog) != FUSE_OK)
        return fail(ctx, "program");
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = 1;
    double t0 = now_ms();
    if (fuse_runner_new(prog, &cfg, NULL, 0, &run) != FUSE_OK)
        return fail(ctx, "runner");
    double make_ms = now_ms() - t0;
    double *ms = malloc(sizeof *ms * (size_t)repeat);
    for (int i = -1; i < repeat; i++) { /* one warm-up */
        fuse_outputs *out = NULL;
        double t = now_ms();
        if (fuse_runner_run(run, NULL, 0, &out) != FUSE_OK)
            return fail(ctx, "run");
        if (i >= 0)
            ms[i] = now_ms() - t;
        fuse_outputs_free(out);
    }
    qsort(ms, (size_t)repeat, sizeof *ms, cmp_double);
    fuse_timings tm = {.size = sizeof tm};
    fuse_runner_timings(run, &tm);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("| %s | %.1f | %.2f | %.2f | %.2f | %ld |\n", argv[4], make_ms, ms[repeat / 2],
           ms[0], (double)tm.buffer_bytes / (1 << 20), ru.ru_maxrss);
    free(ms);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return 0;
}
