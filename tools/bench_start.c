/*
 * bench_start.c: `fuse-bench --start PROGRAM`, the whole-process start of
 * `fuse-jit run PROGRAM --out DIR/out.npz`. Each fuse-jit (the one beside
 * fuse-bench or --fuse-jit PATH, and every --compare PATH) is timed twice per
 * round: cold, with an empty disk cache (FUSE_JIT_CACHE_DIR emptied before each
 * spawn, so the program is compiled), and cached, with its code already in a
 * scratch disk cache. `/bin/true` and `fuse-jit --version` run in the same
 * rounds, interleaved, so every command sees the same machine load. Each row
 * gives the wall time from spawn to exit (mean ± σ, median, min … max) and the
 * median CPU time (user + system, from wait4).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "support.h"

extern char **environ;

#define START_MAX_CMDS 20

/* One command timed by --start. */
typedef struct StartCmd {
    char label[80];
    char *argv[8];
    const char *cache;  /* FUSE_JIT_CACHE_DIR for it */
    bool cold;          /* empty the cache before each spawn */
    double *wall, *cpu; /* ms, one per timed round */
} StartCmd;

/* Spawns argv with stdout and stderr to /dev/null (stderr kept when show_errors)
 * and waits; *wall and *cpu in ms. Returns the exit status, -1 when it could not
 * run. */
static int spawn_timed(char *const *argv, bool show_errors, double *wall, double *cpu)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!show_errors)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    double t0 = sup_clock_ms();
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return -1;
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return -1;
    *wall = sup_clock_ms() - t0;
    *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The fuse-jit in fuse-bench's own directory, else NULL. */
static char *fuse_jit_beside_me(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    char *path = sup_strprintf("%s/fuse-jit", self);
    if (path && access(path, X_OK) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cmd_run(StartCmd *c, const char *bin, const char *prog, const char *out,
                    const char *cache, bool cold)
{
    snprintf(c->label, sizeof c->label, "%s run (%s)", bin, cold ? "cold" : "cached");
    c->argv[0] = (char *)bin;
    c->argv[1] = "run";
    c->argv[2] = (char *)prog;
    c->argv[3] = "--out";
    c->argv[4] = (char *)out;
    c->argv[5] = NULL;
    c->cache = cache;
    c->cold = cold;
}

/* One spawn of c with its cache; the exit status as spawn_timed gives it. */
static int cmd_spawn(const StartCmd *c, bool show_errors, double *wall, double *cpu)
{
    if (c->cold)
        remove_tree(c->cache);
    if (c->cache && setenv("FUSE_JIT_CACHE_DIR", c->cache, 1) != 0)
        return -1;
    return spawn_timed(c->argv, show_errors, wall, cpu);
}

static void print_start_row(const StartCmd *c, int repeat)
{
    BenchStats w, cpu;
    if (!bench_stats_compute(c->wall, repeat, &w) || !bench_stats_compute(c->cpu, repeat, &cpu))
        return;
    BenchUnit u = bench_unit_for(w.mean);
    int d = bench_unit_decimals(u, w.mean);
    char a[32], b[32], cell[80];
    bench_put_padded(stdout, c->label, 44, false);
    snprintf(cell, sizeof cell, "%s ± %s", bench_format_in(a, 32, w.mean, u, d),
             bench_format_in(b, 32, w.stddev, u, d));
    fputc(' ', stdout);
    bench_put_padded(stdout, cell, 22, true);
    fputc(' ', stdout);
    bench_put_padded(stdout, bench_format_in(a, 32, w.median, u, d), 10, true);
    snprintf(cell, sizeof cell, "%s … %s", bench_format_in(a, 32, w.min, u, d),
             bench_format_in(b, 32, w.max, u, d));
    fputc(' ', stdout);
    bench_put_padded(stdout, cell, 22, true);
    fputc(' ', stdout);
    bench_put_padded(stdout, bench_format_time(a, sizeof a, cpu.median), 10, true);
    fputc('\n', stdout);
}

/* Fills cmds for binaries bin and o->compare; returns how many. */
static int start_commands(StartCmd *cmds, const char *bin, const char *prog, const char *out,
                          const char *cache, const char *cold, const BenchOpts *o)
{
    int n = 0;
    const char *bins[START_MAX_CMDS / 2];
    int n_bins = 0;
    bins[n_bins++] = bin;
    for (int i = 0; i < o->n_compare && n_bins < START_MAX_CMDS / 2 - 1; i++)
        bins[n_bins++] = o->compare[i];
    for (int i = 0; i < n_bins; i++)
        cmd_run(&cmds[n++], bins[i], prog, out, cold, true);
    for (int i = 0; i < n_bins; i++)
        cmd_run(&cmds[n++], bins[i], prog, out, cache, false);
    snprintf(cmds[n].label, sizeof cmds[n].label, "%s --version", bin);
    cmds[n].argv[0] = (char *)bin;
    cmds[n++].argv[1] = "--version";
    snprintf(cmds[n].label, sizeof cmds[n].label, "/bin/true");
    cmds[n++].argv[0] = "/bin/true";
    return n;
}

/* Runs the rounds; 0, or 1 after reporting a failed command. */
static int start_rounds(StartCmd *cmds, int n, const BenchOpts *o)
{
    /* prime: each fuse-jit compiles the program into the cached directory (its
     * own entry: the key holds the binary's build ID); errors are shown */
    for (int i = 0; i < n; i++) {
        double w, c;
        int st = cmd_spawn(&cmds[i], true, &w, &c);
        if (st != 0) {
            fprintf(stderr, "fuse-bench: error: %s exited with status %d\n", cmds[i].label, st);
            return 1;
        }
    }
    for (int r = -o->warmup; r < o->repeat; r++) {
        if (isatty(2))
            fprintf(stderr, "\rround %d of %d\033[K", r + o->warmup + 1, o->repeat + o->warmup);
        for (int i = 0; i < n; i++) {
            double w, c;
            if (cmd_spawn(&cmds[i], false, &w, &c) != 0) {
                fprintf(stderr, "fuse-bench: error: %s failed\n", cmds[i].label);
                return 1;
            }
            if (r >= 0) {
                cmds[i].wall[r] = w;
                cmds[i].cpu[r] = c;
            }
        }
    }
    if (isatty(2))
        fputs("\r\033[K", stderr);
    return 0;
}

int bench_run_start(const char *prog, const BenchOpts *o)
{
    char *own = o->fuse_jit ? NULL : fuse_jit_beside_me();
    const char *bin = o->fuse_jit ? o->fuse_jit : own;
    if (!bin) {
        fprintf(stderr, "fuse-bench: error: no fuse-jit beside fuse-bench; give --fuse-jit PATH\n");
        return 1;
    }
    char dir[] = "/tmp/fuse-bench-start.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("fuse-bench: error: mkdtemp");
        free(own);
        return 1;
    }
    char *cache = sup_strprintf("%s/cache", dir), *cold = sup_strprintf("%s/cold", dir);
    char *out = sup_strprintf("%s/out.npz", dir);
    char *saved = getenv("FUSE_JIT_CACHE_DIR") ? strdup(getenv("FUSE_JIT_CACHE_DIR")) : NULL;
    StartCmd cmds[START_MAX_CMDS] = {0};
    int n = 0, rc = !cache || !cold || !out;
    if (rc == 0)
        n = start_commands(cmds, bin, prog, out, cache, cold, o);
    for (int i = 0; i < n; i++) {
        cmds[i].wall = calloc((size_t)o->repeat, sizeof(double));
        cmds[i].cpu = calloc((size_t)o->repeat, sizeof(double));
        rc |= !cmds[i].wall || !cmds[i].cpu;
    }
    if (rc == 0)
        rc = start_rounds(cmds, n, o);
    if (rc == 0) {
        printf("start of `fuse-jit run %s --out DIR/out.npz`, cold (empty disk cache) and "
               "cached: %d rounds after %d warm-up, commands interleaved\n",
               prog, o->repeat, o->warmup);
        bench_put_padded(stdout, "command", 44, false);
        const char *heads[] = {"wall mean ± σ", "median", "min … max", "cpu median"};
        const int widths[] = {22, 10, 22, 10};
        for (int i = 0; i < 4; i++) {
            fputc(' ', stdout);
            bench_put_padded(stdout, heads[i], widths[i], true);
        }
        fputc('\n', stdout);
        for (int i = 0; i < n; i++)
            print_start_row(&cmds[i], o->repeat);
    }
    for (int i = 0; i < n; i++) {
        free(cmds[i].wall);
        free(cmds[i].cpu);
    }
    if (saved)
        setenv("FUSE_JIT_CACHE_DIR", saved, 1);
    free(saved);
    remove_tree(dir);
    free(cache);
    free(cold);
    free(out);
    free(own);
    return rc;
}
