/*
 * cache_incr.c: incremental compilation, through the public API only.
 * In one context (no disk cache): a generated 30-equation program (the eq30 of
 * cache_start.sh: 9 blocks of 8x8 product, bias add and relu, then a softmax) is
 * compiled, then the same program with ONE equation changed (block 5's relu
 * becomes tanh), then the changed program with one equation added (as a REPL
 * session grows). Prints, per step, the wall time of fuse_runner_new, the
 * lower + compile time (fuse_timings) and the kernels compiled / taken from the
 * cache (fuse_stats); medians over REPEAT fresh contexts.
 *
 * usage: cache_incr [REPEAT=9]
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusejit.h"
#include "timing.h"

#define STEPS 3

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* eq30; step 1 changes H5's builtin, step 2 also adds an equation. */
static void gen(char *buf, size_t cap, int step)
{
    size_t n = 0;
    char vals[1024] = "";
    for (int i = 0; i < 8; i++) {
        strcat(vals, i ? ", [" : "[");
        for (int j = 0; j < 8; j++) {
            char v[16];
            snprintf(v, sizeof v, "%s0.%d", j ? ", " : "", (i * 8 + j) % 9 + 1);
            strcat(vals, v);
        }
        strcat(vals, "]");
    }
    n += (size_t)snprintf(buf + n, cap - n, "X[i,j] = const([%s])\nW[j,k] = const([%s])\n", vals,
                          vals);
    n += (size_t)snprintf(buf + n, cap - n,
                          "B[k] = const([0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8])\n");
    char prev[8] = "X";
    for (int i = 1; i <= 9; i++) {
        const char *fn = step >= 1 && i == 5 ? "tanh" : "relu";
        n += (size_t)snprintf(buf + n, cap - n,
                              "M%d[i,k] = %s[i,j] W[j,k]\nS%d[i,k] = M%d[i,k] + B[k]\n"
                              "H%d[i,k] = %s(S%d[i,k])\n",
                              i, prev, i, i, i, fn, i);
        snprintf(prev, sizeof prev, "H%d", i);
    }
    n += (size_t)snprintf(buf + n, cap - n, "P[i,k.] = softmax(%s[i,k])\nexport P\n", prev);
    if (step >= 2)
        snprintf(buf + n, cap - n, "Q[i] max= P[i,k]\nexport Q\n");
}

typedef struct Sample {
    double wall, compile;
    unsigned long long made, reused;
} Sample;

static int one(fuse_ctx *ctx, const char *text, Sample *s)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1;
    fuse_stats a = {.size = sizeof a}, b = {.size = sizeof b};
    fuse_timings t = {.size = sizeof t};
    if (fuse_program_from_text(ctx, text, "eq30.fuse", &prog) != FUSE_OK)
        return 1;
    fuse_ctx_stats(ctx, &a);
    double t0 = now_ms();
    fuse_status st = fuse_runner_new(prog, &cfg, NULL, 0, &run);
    s->wall = now_ms() - t0;
    fuse_ctx_stats(ctx, &b);
    if (st != FUSE_OK) {
        fprintf(stderr, "%s\n", fuse_ctx_error(ctx));
        return 1;
    }
    fuse_runner_timings(run, &t);
    s->compile = t.lower_ms + t.compile_ms;
    s->made = b.groups_compiled - a.groups_compiled;
    s->reused = b.groups_cached - a.groups_cached;
    fuse_runner_free(run);
    fuse_program_free(prog);
    return 0;
}

int main(int argc, char **argv)
{
    int repeat = argc > 1 ? atoi(argv[1]) : 9;
    if (repeat < 1)
        repeat = 1;
    static char text[STEPS][16384];
    for (int k = 0; k < STEPS; k++)
        gen(text[k], sizeof text[k], k);
    double *wall = calloc((size_t)repeat * STEPS, sizeof *wall);
    double *comp = calloc((size_t)repeat * STEPS, sizeof *comp);
    Sample last[STEPS];
    for (int r = 0; r < repeat; r++) {
        fuse_ctx *ctx = NULL;
        if (fuse_ctx_new(&ctx) != FUSE_OK)
            return 1;
        for (int k = 0; k < STEPS; k++) {
            if (one(ctx, text[k], &last[k]))
                return 1;
            wall[k * repeat + r] = last[k].wall;
            comp[k * repeat + r] = last[k].compile;
        }
        fuse_ctx_free(ctx);
    }
    const char *what[STEPS] = {"eq30, first compile", "one equation changed",
                               "one equation added"};
    printf("| step | fuse_runner_new ms | lower + compile ms | kernels compiled | from cache |\n");
    printf("| --- | ---: | ---: | ---: | ---: |\n");
    for (int k = 0; k < STEPS; k++) {
        qsort(wall + k * repeat, (size_t)repeat, sizeof *wall, by_value);
        qsort(comp + k * repeat, (size_t)repeat, sizeof *comp, by_value);
        printf("| %s | %.1f | %.1f | %llu | %llu |\n", what[k], wall[k * repeat + repeat / 2],
               comp[k * repeat + repeat / 2], last[k].made, last[k].reused);
    }
    free(wall);
    free(comp);
    return 0;
}
