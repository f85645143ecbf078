/*
 * idle_cpu.c: the CPU time a host pays for runs it makes now and then. Runs a
 * 512 x 512 product on 2 threads 10 times, sleeping 300 ms after each run, and
 * prints the process's CPU time over the loop: the kernels take about 2 ms of
 * it; the rest is the team's idle threads spinning for more work (libomp's
 * KMP_BLOCKTIME, 200 ms by default; runtime/parallel.c sets 2 ms).
 *
 *   clang-19 -O2 bench/idle_cpu.c -Iinclude -Lbuild/lib -lfusejit \
 *       -Wl,-rpath,$PWD/build/lib -o idle_cpu && ./idle_cpu
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "fusejit.h"

enum { N = 512, RUNS = 10 };

static double cpu_ms(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3
           + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

int main(void)
{
    static float a[N * N], b[N * N];
    for (int i = 0; i < N * N; i++)
        a[i] = 1.0f, b[i] = 0.5f;
    fuse_input in[2] = {{.name = "A", .tensor = {FUSE_F32, 2, {N, N}, a}},
                        {.name = "B", .tensor = {FUSE_F32, 2, {N, N}, b}}};
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = 2;
    cfg.no_cache = 1;
    const char *text = "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\nexport C\n";
    if (fuse_ctx_new(&ctx) != FUSE_OK || fuse_program_from_text(ctx, text, "m.fuse", &prog)
        || fuse_runner_new(prog, &cfg, in, 2, &run)) {
        fprintf(stderr, "idle_cpu: %s\n", ctx ? fuse_ctx_error(ctx) : "no context");
        return 1;
    }
    double t0 = cpu_ms();
    for (int k = 0; k < RUNS; k++) {
        fuse_outputs *out = NULL;
        if (fuse_runner_run(run, in, 2, &out) != FUSE_OK)
            return 1;
        fuse_outputs_free(out);
        struct timespec pause = {0, 300000000};
        nanosleep(&pause, NULL);
    }
    printf("CPU ms over %d runs, each followed by 300 ms of sleep: %.0f\n", RUNS, cpu_ms() - t0);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return 0;
}
