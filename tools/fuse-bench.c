/*
 * fuse-bench.c: benchmarks fuse-jit through the public API (include/fusejit.h) only.
 *
 * For each program it measures, in wall-clock milliseconds: parse and check
 * (fuse_program_from_file or _from_text), compile (fuse_runner_new), the first run,
 * then `warmup` untimed runs and `repeat` timed runs (min and median), and the
 * GFLOP/s of the joins over the median run. The steady runs deliver the exports
 * into host buffers allocated once (fuse_runner_run_into, borrowed), as a BLAS
 * call writes into the caller's C; the first run uses fuse_runner_run. The
 * FLOP count is the runner's
 * (fuse_timings.flops: 2 x the loop cells of every sum join) when the library
 * reports it, else the workload's own count (suite) or unknown.
 *
 * `--suite` runs built-in workloads generated as program text: their sources are
 * bound with fuse_input to random data (fixed seed, borrowed: no copy), so no file
 * is read. Compiles bypass the disk cache (fuse_config.no_cache).
 *
 * `--start PROGRAM` measures the whole-process warm start instead: it spawns
 * `fuse-jit run PROGRAM --out DIR/out.npz` (the fuse-jit beside fuse-bench, or
 * --fuse-jit PATH) with the program's code already in a scratch disk cache, and
 * reports the min and median wall time of the process (spawn to exit) and its CPU
 * time (user + system, from wait4). The baselines run interleaved with it, one
 * spawn each per round, so they see the same machine load: `/bin/true`,
 * `fuse-jit --version`, and every --compare PATH (another fuse-jit, run the same
 * way).
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fusejit.h"
#include "print.h"
#include "support.h"

#define MAX_INPUTS 8

typedef struct BenchOpts {
    int repeat, warmup, threads;
    int equations;          /* --equations: per-equation kernel times from the run traces */
    const char *json_path;
    const char *only;       /* --suite: run only workloads whose name contains this */
    const char *fuse_jit;   /* --start: the fuse-jit to spawn (NULL: beside fuse-bench) */
    const char **compare;   /* --start: other fuse-jit binaries timed beside it */
    int n_compare;
} BenchOpts;

/* One suite workload: program text plus the shapes of its sources. */
typedef struct Workload {
    const char *name;
    char text[1024];
    fuse_input inputs[MAX_INPUTS];
    size_t n_inputs;
    double flops;           /* the workload's own count; 0 when none */
    int is_bool;            /* inputs are 0/1 */
} Workload;

typedef struct Result {
    const char *name;
    double parse_ms, compile_ms, first_ms, min_ms, median_ms, flops;
    int ok;
} Result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- per-equation times (--equations) ---- */

#define MAX_EQUATIONS 256

/* The kernel times of each equation over the timed runs, from the run traces. */
typedef struct EqTimes {
    char *name[MAX_EQUATIONS];
    double *ms[MAX_EQUATIONS];  /* repeat entries each */
    int n, repeat;
} EqTimes;

/* The row of equation `name` in et, added on first sight; -1 when full. */
static int eq_row(EqTimes *et, const char *name)
{
    for (int k = 0; k < et->n; k++)
        if (strcmp(et->name[k], name) == 0)
            return k;
    if (et->n >= MAX_EQUATIONS)
        return -1;
    et->name[et->n] = strdup(name);
    et->ms[et->n] = calloc((size_t)et->repeat, sizeof(double));
    if (!et->name[et->n] || !et->ms[et->n]) {
        free(et->name[et->n]);
        free(et->ms[et->n]);
        return -1;
    }
    return et->n++;
}

/* Adds run i's trace (JSON, as fuse_runner_trace gives it) to et: each
 * equation's kernel time, summed over the sweeps of a fixpoint. */
static void eq_add_trace(EqTimes *et, int i, const char *text)
{
    json_t *root = json_loads(text, 0, NULL), *e;
    json_t *entries = json_object_get(root, "entries");
    size_t k;
    json_array_foreach(entries, k, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        int row = name ? eq_row(et, name) : -1;
        if (row >= 0)
            et->ms[row][i] += json_number_value(json_object_get(e, "duration_ms"));
    }
    json_decref(root);
}

static double median_of(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void eq_print_free(EqTimes *et)
{
    if (et->n)
        printf("  %-20s %10s %10s\n", "equation", "min_ms", "median_ms");
    for (int k = 0; k < et->n; k++) {
        double med = median_of(et->ms[k], et->repeat);
        printf("  %-20s %10.3f %10.3f\n", et->name[k], et->ms[k][0], med);
        free(et->name[k]);
        free(et->ms[k]);
    }
    et->n = 0;
}

/* ---- running one program ---- */

static void print_result(const Result *r);

/* Host buffers for the exports of a first run's outputs, bound to the steady
 * runs with fuse_runner_run_into (borrowed: the kernels write there, as a BLAS
 * call writes into its C), or NULL (then the steady runs use fuse_runner_run). */
typedef struct Exports {
    fuse_input *out;
    size_t n;
} Exports;

static void exports_free(Exports *x)
{
    for (size_t i = 0; x->out && i < x->n; i++) {
        free((char *)x->out[i].name);
        free(x->out[i].tensor.data);
    }
    free(x->out);
    x->out = NULL;
    x->n = 0;
}

static void exports_init(Exports *x, const fuse_outputs *first)
{
    size_t n = fuse_outputs_count(first);
    bool ok = true;
    x->n = 0;
    x->out = calloc(n + 1, sizeof *x->out);
    for (size_t i = 0; x->out && ok && i < n; i++, x->n++) {
        const fuse_tensor *t = fuse_outputs_tensor(first, i);
        size_t bytes = sizeof(float);
        for (int k = 0; k < t->rank; k++)
            bytes *= (size_t)t->shape[k];
        fuse_input *o = &x->out[i];
        o->name = strdup(fuse_outputs_name(first, i));
        o->tensor = *t;
        o->tensor.data = t->dtype == FUSE_F32 ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL;
        o->borrow = 1;
        ok = o->name && o->tensor.data;
    }
    if (x->out && ok)
        return;
    exports_free(x); /* out of memory, or not float32: fuse_runner_run it is */
}

/* Runs `run` warmup + repeat times; fills min and median (and et, when given,
 * from each timed run's trace). */
static fuse_status time_runs(fuse_runner *run, const Workload *w, const BenchOpts *o,
                             const Exports *x, Result *r, EqTimes *et)
{
    double *t = calloc((size_t)o->repeat + 1, sizeof *t);
    if (!t)
        return FUSE_E_NOMEM;
    fuse_status st = FUSE_OK;
    for (int i = 0; i < o->warmup + o->repeat && st == FUSE_OK; i++) {
        fuse_outputs *out = NULL;
        const fuse_input *in = w ? w->inputs : NULL;
        size_t n_in = w ? w->n_inputs : 0;
        double t0 = sup_clock_ms();
        st = x->out ? fuse_runner_run_into(run, in, n_in, x->out, x->n)
                    : fuse_runner_run(run, in, n_in, &out);
        double dt = sup_clock_ms() - t0;
        fuse_outputs_free(out);
        if (i < o->warmup)
            continue;
        t[i - o->warmup] = dt;
        char *trace = NULL;
        if (et && st == FUSE_OK && fuse_runner_trace(run, 1, &trace) == FUSE_OK)
            eq_add_trace(et, i - o->warmup, trace);
        fuse_free(trace);
    }
    if (st == FUSE_OK && o->repeat > 0) {
        r->median_ms = median_of(t, o->repeat);
        r->min_ms = t[0];
    }
    free(t);
    return st;
}

/* Compiles and times one program (from `path`, or the workload's text). */
static fuse_status bench_one(fuse_ctx *ctx, const char *path, const Workload *w,
                             const BenchOpts *o, Result *r)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = o->threads;
    cfg.write_sinks = 0;
    cfg.no_cache = 1; /* time real compiles, never a stale cached object */
    double t0 = sup_clock_ms();
    fuse_status st = w ? fuse_program_from_text(ctx, w->text, w->name, &prog)
                       : fuse_program_from_file(ctx, path, &prog);
    double t1 = sup_clock_ms();
    if (st == FUSE_OK)
        st = fuse_runner_new(prog, &cfg, w ? w->inputs : NULL, w ? w->n_inputs : 0, &run);
    double t2 = sup_clock_ms();
    if (st == FUSE_OK)
        st = fuse_runner_run(run, w ? w->inputs : NULL, w ? w->n_inputs : 0, &out);
    double t3 = sup_clock_ms();
    Exports x = {0};
    if (st == FUSE_OK)
        exports_init(&x, out);
    fuse_outputs_free(out);
    r->parse_ms = t1 - t0;
    r->compile_ms = t2 - t1;
    r->first_ms = t3 - t2;
    r->flops = w ? w->flops : 0.0;
    fuse_timings tm = {.size = sizeof tm};
    if (st == FUSE_OK && fuse_runner_timings(run, &tm) == FUSE_OK && tm.flops > 0)
        r->flops = (double)tm.flops;
    EqTimes et = {.repeat = o->repeat};
    if (st == FUSE_OK)
        st = time_runs(run, w, o, &x, r, o->equations ? &et : NULL);
    exports_free(&x);
    r->ok = st == FUSE_OK;
    print_result(r);
    eq_print_free(&et);
    if (st != FUSE_OK)
        fprintf(stderr, "fuse-bench: %s: %s\n", r->name, fuse_ctx_error(ctx));
    fuse_runner_free(run);
    fuse_program_free(prog);
    return st;
}

/* ---- reporting ---- */

static void print_header(void)
{
    printf("%-22s %9s %10s %10s %10s %10s %9s\n", "program", "parse_ms", "compile_ms",
           "first_ms", "min_ms", "median_ms", "GFLOP/s");
}

static void print_result(const Result *r)
{
    if (!r->ok) {
        printf("%-22s failed\n", r->name);
        return;
    }
    printf("%-22s %9.3f %10.2f %10.3f %10.3f %10.3f", r->name, r->parse_ms, r->compile_ms,
           r->first_ms, r->min_ms, r->median_ms);
    if (r->flops > 0 && r->median_ms > 0)
        printf(" %9.1f\n", r->flops / (r->median_ms * 1e6));
    else
        printf(" %9s\n", "-");
    fflush(stdout);
}

static void json_put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static int write_json(const char *path, const Result *rs, int n, const BenchOpts *o)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "fuse-bench: error: cannot write %s\n", path);
        return 1;
    }
    fprintf(f, "{\"repeat\": %d, \"warmup\": %d, \"threads\": %d, \"results\": [", o->repeat,
            o->warmup, o->threads);
    for (int i = 0; i < n; i++) {
        const Result *r = &rs[i];
        fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
        json_put_string(f, r->name);
        fprintf(f, ", \"ok\": %s, \"parse_ms\": %.4f, \"compile_ms\": %.4f, \"first_ms\": %.4f, "
                   "\"min_ms\": %.4f, \"median_ms\": %.4f, \"flops\": %.0f, \"gflops\": %.3f}",
                r->ok ? "true" : "false", r->parse_ms, r->compile_ms, r->first_ms, r->min_ms,
                r->median_ms, r->flops,
                r->median_ms > 0 ? r->flops / (r->median_ms * 1e6) : 0.0);
    }
    fprintf(f, "\n]}\n");
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the suite ---- */

/* xorshift64: a fixed-seed generator so every run times the same data. */
static float rand_unit(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

/* Adds a source input of the given shape filled with random data. */
static int add_input(Workload *w, const char *name, int rank, const int64_t *shape,
                     uint64_t *seed)
{
    fuse_input *in = &w->inputs[w->n_inputs++];
    memset(in, 0, sizeof *in);
    in->name = name;
    in->tensor.dtype = FUSE_F32;
    in->tensor.rank = rank;
    int64_t n = 1;
    for (int k = 0; k < rank; k++)
        n *= in->tensor.shape[k] = shape[k];
    /* 64-byte aligned and borrowed: runs use the data in place (no copy timed) */
    float *d = aligned_alloc(64, ((size_t)n * sizeof *d + 63) / 64 * 64);
    if (!d)
        return 1;
    in->borrow = 1;
    for (int64_t i = 0; i < n; i++)
        d[i] = w->is_bool ? (rand_unit(seed) > 0.9f ? 1.0f : 0.0f) : rand_unit(seed);
    in->tensor.data = d;
    return 0;
}

static void free_workload(Workload *w)
{
    for (size_t i = 0; i < w->n_inputs; i++)
        free(w->inputs[i].tensor.data);
    w->n_inputs = 0;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static int make_matmul(Workload *w, int64_t n, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\nexport C\n");
    w->flops = 2.0 * (double)n * (double)n * (double)n;
    return add_input(w, "A", 2, SHAPE(n, n), seed) || add_input(w, "B", 2, SHAPE(n, n), seed);
}

static int make_batched(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text, "A[b,i,k] = \"a.npy\"\nB[b,k,j] = \"b.npy\"\n"
                                      "C[b,i,j] = A[b,i,k] B[b,k,j]\nexport C\n");
    w->flops = 2.0 * 32 * 256.0 * 256 * 256;
    return add_input(w, "A", 3, SHAPE(32, 256, 256), seed)
        || add_input(w, "B", 3, SHAPE(32, 256, 256), seed);
}

static int make_4index(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text, "A[a,e,b,f] = \"a.npy\"\nB[e,c,f,d] = \"b.npy\"\n"
                                      "C[a,b,c,d] = A[a,e,b,f] B[e,c,f,d]\nexport C\n");
    w->flops = 2.0 * 32 * 32 * 32 * 32 * 32 * 32;
    return add_input(w, "A", 4, SHAPE(32, 32, 32, 32), seed)
        || add_input(w, "B", 4, SHAPE(32, 32, 32, 32), seed);
}

/* One attention head: 512 positions, 512 features, head dimension 64. */
static int make_attention(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "X[p,f] = \"x.npy\"\nWq[f,h] = \"wq.npy\"\nWk[f,h] = \"wk.npy\"\n"
             "Wv[f,h] = \"wv.npy\"\n"
             "Q[p,h] = X[p,f] Wq[f,h]\nK[p,h] = X[p,f] Wk[f,h]\nV[p,h] = X[p,f] Wv[f,h]\n"
             "S[p,q] = 0.125 Q[p,h] K[q,h]\nP[p,q.] = softmax(S[p,q])\n"
             "O[p,h] = P[p,q] V[q,h]\nexport O\n");
    w->flops = 3 * 2.0 * 512 * 512 * 64 + 2 * 2.0 * 512 * 512 * 64;
    return add_input(w, "X", 2, SHAPE(512, 512), seed)
        || add_input(w, "Wq", 2, SHAPE(512, 64), seed)
        || add_input(w, "Wk", 2, SHAPE(512, 64), seed)
        || add_input(w, "Wv", 2, SHAPE(512, 64), seed);
}

/* A two-layer perceptron on a batch of 256: 1024 -> 1024 (relu) -> 256. */
static int make_mlp(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "X[b,i] = \"x.npy\"\nW1[i,h] = \"w1.npy\"\nB1[h] = \"b1.npy\"\n"
             "W2[h,o] = \"w2.npy\"\nB2[o] = \"b2.npy\"\n"
             "Z[b,h] = X[b,i] W1[i,h] + B1[h]\nH[b,h] = relu(Z[b,h])\n"
             "Y[b,o] = H[b,h] W2[h,o] + B2[o]\nexport Y\n");
    w->flops = 2.0 * 256 * 1024 * 1024 + 2.0 * 256 * 1024 * 256;
    return add_input(w, "X", 2, SHAPE(256, 1024), seed)
        || add_input(w, "W1", 2, SHAPE(1024, 1024), seed)
        || add_input(w, "B1", 1, SHAPE(1024), seed)
        || add_input(w, "W2", 2, SHAPE(1024, 256), seed)
        || add_input(w, "B2", 1, SHAPE(256), seed);
}

/* Eight elementwise steps over a 1024 x 1024 tensor. */
static int make_chain(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "X[i,j] = \"x.npy\"\nY[i,j] = \"y.npy\"\n"
             "A1[i,j] = X[i,j] Y[i,j]\nA2[i,j] = relu(A1[i,j])\nA3[i,j] = A2[i,j] + X[i,j]\n"
             "A4[i,j] = 0.5 A3[i,j]\nA5[i,j] = tanh(A4[i,j])\nA6[i,j] = A5[i,j] Y[i,j]\n"
             "A7[i,j] = abs(A6[i,j])\nA8[i,j] = A7[i,j] + 1.0\nexport A8\n");
    w->flops = 0;
    return add_input(w, "X", 2, SHAPE(1024, 1024), seed)
        || add_input(w, "Y", 2, SHAPE(1024, 1024), seed);
}

/* Grandparent over 512 people: a boolean join with a projected axis. */
static int make_bool(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text, "Parent(x,y) = \"parent.npy\"\n"
                                      "Grand(x,z) = Parent(x,y) Parent(y,z)\nexport Grand\n");
    w->flops = 2.0 * 512 * 512 * 512;
    w->is_bool = 1;
    return add_input(w, "Parent", 2, SHAPE(512, 512), seed);
}

static int make_workload(int i, Workload *w, uint64_t *seed)
{
    static const char *const names[] = {"matmul-256", "matmul-512", "matmul-1024",
                                        "matmul-2048", "batched-32x256", "4index-32",
                                        "attention-512", "mlp-256x1024", "elementwise-chain",
                                        "bool-join-512"};
    if (i >= (int)(sizeof names / sizeof names[0]))
        return -1;
    memset(w, 0, sizeof *w);
    w->name = names[i];
    switch (i) {
    case 0: return make_matmul(w, 256, seed);
    case 1: return make_matmul(w, 512, seed);
    case 2: return make_matmul(w, 1024, seed);
    case 3: return make_matmul(w, 2048, seed);
    case 4: return make_batched(w, seed);
    case 5: return make_4index(w, seed);
    case 6: return make_attention(w, seed);
    case 7: return make_mlp(w, seed);
    case 8: return make_chain(w, seed);
    default: return make_bool(w, seed);
    }
}

static int run_suite(fuse_ctx *ctx, const BenchOpts *o, Result *rs, int *n)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int failed = 0;
    Workload w;
    for (int i = 0;; i++) {
        int rc = make_workload(i, &w, &seed);
        if (rc < 0)
            break;
        if (o->only && !strstr(w.name, o->only)) {
            free_workload(&w);
            continue;
        }
        Result *r = &rs[(*n)++];
        memset(r, 0, sizeof *r);
        r->name = w.name;
        if (rc != 0) {
            failed = 1;
            print_result(r);
        } else if (bench_one(ctx, NULL, &w, o, r) != FUSE_OK) {
            failed = 1;
        }
        free_workload(&w);
    }
    return failed;
}

/* ---- --start: whole-process warm start ---- */

extern char **environ;

#define START_MAX_CMDS 8

/* One command timed by --start. */
typedef struct StartCmd {
    char label[64];
    char *argv[8];
    double *wall, *cpu; /* ms, one per timed round */
} StartCmd;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

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
    double t0 = now_ms();
    int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err)
        return -1;
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return -1;
    *wall = now_ms() - t0;
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

static void start_cmd_run(StartCmd *c, const char *bin, const char *prog, const char *out)
{
    snprintf(c->label, sizeof c->label, "%s", bin);
    c->argv[0] = (char *)bin;
    c->argv[1] = "run";
    c->argv[2] = (char *)prog;
    c->argv[3] = "--out";
    c->argv[4] = (char *)out;
    c->argv[5] = NULL;
}

static void print_start_row(const StartCmd *c, int repeat)
{
    double wmin = c->wall[0];
    for (int i = 1; i < repeat; i++)
        wmin = c->wall[i] < wmin ? c->wall[i] : wmin;
    double cmin = c->cpu[0];
    for (int i = 1; i < repeat; i++)
        cmin = c->cpu[i] < cmin ? c->cpu[i] : cmin;
    printf("%-44s %9.2f %9.2f %9.2f %9.2f\n", c->label, wmin, median_of(c->wall, repeat), cmin,
           median_of(c->cpu, repeat));
}

static int run_start(const char *prog, const BenchOpts *o)
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
    char *cache = sup_strprintf("%s/cache", dir), *out = sup_strprintf("%s/out.npz", dir);
    StartCmd cmds[START_MAX_CMDS] = {0};
    int n = 0, rc = 0;
    start_cmd_run(&cmds[n++], bin, prog, out);
    for (int i = 0; i < o->n_compare && n < START_MAX_CMDS - 2; i++)
        start_cmd_run(&cmds[n++], o->compare[i], prog, out);
    snprintf(cmds[n].label, sizeof cmds[n].label, "%s --version", bin);
    cmds[n].argv[0] = (char *)bin;
    cmds[n++].argv[1] = "--version";
    snprintf(cmds[n].label, sizeof cmds[n].label, "/bin/true");
    cmds[n++].argv[0] = "/bin/true";
    for (int i = 0; i < n; i++) {
        cmds[i].wall = calloc((size_t)o->repeat, sizeof(double));
        cmds[i].cpu = calloc((size_t)o->repeat, sizeof(double));
        rc |= !cmds[i].wall || !cmds[i].cpu || !cache || !out;
    }
    if (rc == 0 && setenv("FUSE_JIT_CACHE_DIR", cache, 1) != 0)
        rc = 1;
    /* prime: each fuse-jit compiles the program into the cache (its own entry:
     * the key holds the binary's build ID) */
    for (int i = 0; rc == 0 && i < n; i++) {
        double w, c;
        int st = spawn_timed(cmds[i].argv, true, &w, &c);
        if (st != 0) {
            fprintf(stderr, "fuse-bench: error: %s exited with status %d\n", cmds[i].label, st);
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("warm start of `fuse-jit run %s --out DIR/out.npz` (code in the disk cache): "
               "%d rounds after %d warm-up, commands interleaved\n", prog, o->repeat,
               o->warmup);
        printf("%-44s %9s %9s %9s %9s\n", "command", "wall_min", "wall_med", "cpu_min",
               "cpu_med");
    }
    for (int r = -o->warmup; rc == 0 && r < o->repeat; r++)
        for (int i = 0; rc == 0 && i < n; i++) {
            double w, c;
            if (spawn_timed(cmds[i].argv, false, &w, &c) != 0) {
                fprintf(stderr, "fuse-bench: error: %s failed\n", cmds[i].label);
                rc = 1;
            } else if (r >= 0) {
                cmds[i].wall[r] = w;
                cmds[i].cpu[r] = c;
            }
        }
    for (int i = 0; rc == 0 && i < n; i++)
        print_start_row(&cmds[i], o->repeat);
    for (int i = 0; i < n; i++) {
        free(cmds[i].wall);
        free(cmds[i].cpu);
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(cache);
    free(out);
    free(own);
    return rc;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: fuse-bench PROGRAM... [--repeat N] [--warmup N] [--threads N] "
               "[--equations] [--json FILE]\n"
               "       fuse-bench --suite [--only NAME] [--repeat N] [--warmup N] "
               "[--threads N] [--equations] [--json FILE]\n"
               "       fuse-bench --start PROGRAM [--repeat N] [--warmup N] [--fuse-jit PATH]\n"
               "                  [--compare PATH]...\n\n"
               "Times parse, compile, the first run and --repeat steady runs (min and\n"
               "median, after --warmup untimed runs) of each program, and the GFLOP/s of\n"
               "its joins (2 x loop cells per sum join) over the median. Steady runs\n"
               "write the exports into host buffers allocated once (fuse_runner_run_into).\n"
               "  --suite        built-in workloads with random inputs: matrix products\n"
               "                 256-2048, a batched product, a 4-index contraction, an\n"
               "                 attention head, an MLP, an elementwise chain, a boolean join\n"
               "  --only NAME    with --suite: only workloads whose name contains NAME\n"
               "  --repeat N     timed runs (default 10)\n"
               "  --warmup N     untimed runs before them (default 2)\n"
               "  --threads N    worker threads (default 0: every core)\n"
               "  --equations    also print each equation's kernel time (min and median\n"
               "                 over the timed runs, from the run traces, summed over\n"
               "                 a fixpoint's sweeps; an equation fused into the one\n"
               "                 before it shows 0)\n"
               "  --json FILE    also write the results as JSON\n"
               "  --start        whole-process warm start: spawn `fuse-jit run PROGRAM\n"
               "                 --out DIR/out.npz` with its code in a scratch disk cache;\n"
               "                 min and median wall and CPU ms per process, interleaved\n"
               "                 with /bin/true and `fuse-jit --version` (default --repeat\n"
               "                 50, --warmup 3)\n"
               "  --fuse-jit PATH  with --start: the fuse-jit to time (default: the one\n"
               "                 beside fuse-bench)\n"
               "  --compare PATH with --start: another fuse-jit timed the same way, in\n"
               "                 the same rounds (repeatable)\n");
}

static int parse_count(const char *flag, const char *v, int min, int *out)
{
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : -1;
    if (!v || *v == '\0' || *end != '\0' || n < min || n > 1000000) {
        fprintf(stderr, "fuse-bench: error: %s expects a number >= %d\n", flag, min);
        return 1;
    }
    *out = (int)n;
    return 0;
}

/* Parses argv; programs are collected in progs (argc entries). 0 ok, 1 error,
 * 2 help printed. */
static int parse_args(int argc, char **argv, BenchOpts *o, const char **progs, int *n_progs,
                      int *is_suite, int *is_start)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 2;
        } else if (strcmp(a, "--suite") == 0) {
            *is_suite = 1;
            continue;
        } else if (strcmp(a, "--start") == 0) {
            *is_start = 1;
            continue;
        } else if (strcmp(a, "--compare") == 0 || strcmp(a, "--fuse-jit") == 0) {
            if (!v) {
                fprintf(stderr, "fuse-bench: error: %s expects a path\n", a);
                return 1;
            }
            if (a[2] == 'c')
                o->compare[o->n_compare++] = v;
            else
                o->fuse_jit = v;
        } else if (strcmp(a, "--equations") == 0) {
            o->equations = 1;
            continue;
        } else if (strcmp(a, "--repeat") == 0) {
            rc = parse_count(a, v, 1, &o->repeat);
        } else if (strcmp(a, "--warmup") == 0) {
            rc = parse_count(a, v, 0, &o->warmup);
        } else if (strcmp(a, "--threads") == 0) {
            rc = parse_count(a, v, 0, &o->threads);
        } else if (strcmp(a, "--json") == 0 || strcmp(a, "--only") == 0) {
            if (!v) {
                fprintf(stderr, "fuse-bench: error: %s expects a value\n", a);
                return 1;
            }
            *(a[2] == 'j' ? &o->json_path : &o->only) = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            static const char *const OPTIONS[] = {"help",   "suite",  "start",   "compare",
                                                  "fuse-jit", "equations", "repeat", "warmup",
                                                  "threads", "json",   "only"};
            const char *name = a + strspn(a, "-");
            const char *near = sup_nearest(name, OPTIONS, sizeof OPTIONS / sizeof OPTIONS[0]);
            fprintf(stderr, "fuse-bench: error: unknown option '%s' (see --help)%s%s%s\n", a,
                    near ? "; did you mean '--" : "", near ? near : "", near ? "'?" : "");
            return 1;
        } else {
            progs[(*n_progs)++] = a;
            continue;
        }
        if (rc)
            return 1;
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    BenchOpts o = {.repeat = -1, .warmup = -1};
    const char **progs = calloc((size_t)argc + 1, sizeof *progs);
    Result *rs = calloc((size_t)argc + 16, sizeof *rs);
    o.compare = calloc((size_t)argc + 1, sizeof *o.compare);
    int n_progs = 0, is_suite = 0, is_start = 0, n = 0, failed = 0;
    int rc = progs && rs && o.compare
                 ? parse_args(argc, argv, &o, progs, &n_progs, &is_suite, &is_start) : 1;
    o.repeat = o.repeat >= 0 ? o.repeat : is_start ? 50 : 10;
    o.warmup = o.warmup >= 0 ? o.warmup : is_start ? 3 : 2;
    if (rc == 0 && is_start) {
        if (n_progs != 1 || is_suite) {
            fprintf(stderr, "fuse-bench: error: --start takes one PROGRAM (see --help)\n");
            rc = 1;
        } else {
            failed = run_start(progs[0], &o);
        }
        free(progs);
        free(rs);
        free(o.compare);
        return rc ? 2 : failed ? 1 : 0;
    }
    if (rc == 0 && n_progs == 0 && !is_suite) {
        fprintf(stderr, "fuse-bench: error: no program given (see --help)\n");
        rc = 1;
    }
    fuse_ctx *ctx = NULL;
    if (rc == 0 && fuse_ctx_new(&ctx) != FUSE_OK) {
        fprintf(stderr, "fuse-bench: error: cannot create a JIT context\n");
        rc = 1;
    }
    if (ctx) /* the library's warnings to stderr */
        fuse_ctx_set_log(ctx, cli_log, "fuse-bench");
    if (rc == 0) {
        print_header();
        for (int i = 0; i < n_progs; i++) {
            rs[n].name = progs[i];
            failed |= bench_one(ctx, progs[i], NULL, &o, &rs[n++]) != FUSE_OK;
        }
        if (is_suite)
            failed |= run_suite(ctx, &o, rs, &n);
        if (o.json_path)
            failed |= write_json(o.json_path, rs, n, &o);
    }
    fuse_ctx_free(ctx);
    free(progs);
    free(rs);
    free(o.compare);
    return rc == 2 ? 0 : rc ? 2 : failed ? 1 : 0;
}
