/*
 * bench_measure.c: fuse-bench's measurements. For each program it measures
 * parse and check (fuse_program_from_file or _from_text), compile
 * (fuse_runner_new, bypassing the disk cache), the first run, then `warmup`
 * untimed runs and `repeat` timed runs. The steady runs deliver the exports into
 * host buffers allocated once (fuse_runner_run_into, borrowed), as a BLAS call
 * writes into the caller's C; the first run uses fuse_runner_run. The FLOP count
 * is the runner's (fuse_timings.flops: 2 x the loop cells of every sum join)
 * when the library reports it, else the workload's own count (suite) or
 * unknown. A suite product is then timed with the baseline, when asked.
 *
 * --memory runs each measurement in a child process (fork) and reads its peak
 * RSS from wait4, so workloads do not hide each other's peaks; the child builds
 * its workload's data itself and sends its times back through a pipe. The
 * parent then never creates a JIT context or an OpenMP team, which a fork would
 * not carry over, nor holds any workload's data.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "print.h"
#include "support.h"

/* ---- per-equation times (--equations) ---- */

#define MAX_EQUATIONS 256

/* The kernel times of each equation over the timed runs, from the run traces. */
typedef struct EqTimes {
    char *name[MAX_EQUATIONS];
    double *ms[MAX_EQUATIONS]; /* repeat entries each */
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
    json_array_foreach(entries, k, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        int row = name ? eq_row(et, name) : -1;
        if (row >= 0)
            et->ms[row][i] += json_number_value(json_object_get(e, "duration_ms"));
    }
    json_decref(root);
}

/* The per-equation table (min and median over the timed runs), malloc'd; NULL
 * when there is none. Frees et's rows. */
static char *eq_text_free(EqTimes *et)
{
    SupBuf b = {0};
    if (et->n)
        sup_buf_printf(&b, "  %-20s %10s %10s\n", "equation", "min", "median");
    for (int k = 0; k < et->n; k++) {
        BenchStats s;
        char a[32], m[32];
        if (bench_stats_compute(et->ms[k], et->repeat, &s)) {
            bench_format_time(a, sizeof a, s.min);
            bench_format_time(m, sizeof m, s.median);
            /* %*s pads bytes: widen by the bytes a "µ" takes beyond its column */
            sup_buf_printf(&b, "  %-20s %*s %*s\n", et->name[k],
                           10 + (int)strlen(a) - bench_display_width(a), a,
                           10 + (int)strlen(m) - bench_display_width(m), m);
        }
        free(et->name[k]);
        free(et->ms[k]);
    }
    et->n = 0;
    return b.len ? sup_buf_finish(&b) : (free(b.p), NULL);
}

/* ---- the progress line (stderr, only on a terminal) ---- */

typedef struct Progress {
    bool on, shown;
    double start, last;
} Progress;

static void progress_begin(Progress *p, const char *name, const char *what)
{
    p->on = isatty(2);
    p->shown = false;
    p->start = p->last = sup_clock_ms();
    if (p->on) {
        fprintf(stderr, "\r%s: %s\033[K", name, what);
        p->shown = true;
    }
}

/* After timed run i of n: a line at most every 200 ms, once runs take time. */
static void progress_run(Progress *p, const char *name, int i, int n, const double *t)
{
    double now = sup_clock_ms();
    if (!p->on || now - p->last < 200.0)
        return;
    double sum = 0.0;
    for (int k = 0; k <= i; k++)
        sum += t[k];
    char m[32];
    fprintf(stderr, "\r%s: run %d/%d, mean so far %s\033[K", name, i + 1, n,
            bench_format_time(m, sizeof m, sum / (i + 1)));
    p->last = now;
}

static void progress_end(Progress *p)
{
    if (p->shown)
        fputs("\r\033[K", stderr);
    p->shown = false;
}

/* ---- running one program ---- */

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

/* Runs `run` warmup + repeat times into r->times (and et, when given, from each
 * timed run's trace). */
static fuse_status time_runs(fuse_runner *run, const Workload *w, const BenchOpts *o,
                             const Exports *x, BenchResult *r, EqTimes *et)
{
    r->times = calloc((size_t)o->repeat + 1, sizeof *r->times);
    if (!r->times)
        return FUSE_E_NOMEM;
    Progress p;
    progress_begin(&p, r->name, "warm-up runs");
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
        int k = i - o->warmup;
        r->times[k] = dt;
        r->n_times = k + 1;
        progress_run(&p, r->name, k, o->repeat, r->times);
        char *trace = NULL;
        if (et && st == FUSE_OK && fuse_runner_trace(run, 1, &trace) == FUSE_OK)
            eq_add_trace(et, k, trace);
        fuse_free(trace);
    }
    progress_end(&p);
    return st;
}

/* Compiles and times one program (from `path`, or the workload's text) into r. */
static fuse_status bench_one(fuse_ctx *ctx, const char *path, const Workload *w, const BenchOpts *o,
                             BenchResult *r)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = o->threads;
    cfg.write_sinks = 0;
    cfg.no_cache = 1; /* time real compiles, never a stale cached object */
    Progress p;
    progress_begin(&p, r->name, "compiling");
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
    progress_end(&p);
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
    r->eq_text = eq_text_free(&et);
    r->ok = st == FUSE_OK;
    if (st != FUSE_OK)
        fprintf(stderr, "fuse-bench: %s: %s\n", r->name, fuse_ctx_error(ctx));
    fuse_runner_free(run);
    fuse_program_free(prog);
    return st;
}

/* A JIT context with the library's warnings on stderr, or NULL. */
static fuse_ctx *new_ctx(void)
{
    fuse_ctx *ctx = NULL;
    if (fuse_ctx_new(&ctx) != FUSE_OK) {
        fprintf(stderr, "fuse-bench: error: cannot create a JIT context\n");
        return NULL;
    }
    fuse_ctx_set_log(ctx, cli_log, "fuse-bench");
    return ctx;
}

/* Times w's product with the baseline into r's base fields. */
static void bench_baseline(const Workload *w, const BenchOpts *o, BenchResult *r)
{
    r->base_times = calloc((size_t)o->repeat, sizeof *r->base_times);
    Progress p;
    progress_begin(&p, r->name, "OpenBLAS");
    /* fuse-jit's OpenMP threads spin for a while after their last run
     * (KMP_BLOCKTIME, 200 ms by default): let them sleep first, so they do not
     * take cores from OpenBLAS */
    usleep(300 * 1000);
    r->has_base =
        r->base_times && bench_blas_time(w, o->threads, o->warmup, o->repeat, r->base_times);
    progress_end(&p);
    r->n_base = r->has_base ? o->repeat : 0;
}

/* ---- measuring in a child process (--memory) ---- */

typedef enum Measure { MEASURE_FUSE, MEASURE_BASELINE } Measure;

/* The fixed part of what a child sends back; the times and the equation text
 * follow. */
typedef struct Wire {
    int ok, has_base, n_times, n_base;
    double parse_ms, compile_ms, first_ms, flops;
    size_t eq_len;
} Wire;

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k, n -= (size_t)k;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        c += k, n -= (size_t)k;
    }
    return true;
}

/* What one measurement runs: a program file, or suite workload `index` (w built
 * with its data; under --memory with its shapes only: each child builds its
 * own data, so the parent stays small and forks small children). */
typedef struct Target {
    const char *path;
    int index;
    const Workload *w;
} Target;

/* Runs one measurement in this process. ctx: the shared context (created on
 * first use), for MEASURE_FUSE. */
static void measure_here(Measure m, fuse_ctx **ctx, const Target *t, const BenchOpts *o,
                         BenchResult *r)
{
    if (m == MEASURE_BASELINE) {
        bench_baseline(t->w, o, r);
        return;
    }
    if (!*ctx)
        *ctx = new_ctx();
    if (*ctx)
        bench_one(*ctx, t->path, t->w, o, r);
}

/* Makes the peak RSS this child reports its own: on fork it starts from the
 * parent's high-water mark (Linux 4.0 on; harmless where unsupported). */
static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static void child_measure(int fd, Measure m, const Target *t, const BenchOpts *o, BenchResult *r)
{
    reset_peak_rss();
    fuse_ctx *ctx = NULL;
    Workload own;
    Target here = *t;
    bool built = t->index < 0 || bench_workload_make(t->index, &own, true) == 0;
    if (t->index >= 0)
        here.w = &own;
    if (built)
        measure_here(m, &ctx, &here, o, r);
    Wire h = {r->ok,       r->has_base, r->n_times,
              r->n_base,   r->parse_ms, r->compile_ms,
              r->first_ms, r->flops,    r->eq_text ? strlen(r->eq_text) : 0};
    bool sent = write_all(fd, &h, sizeof h) &&
                write_all(fd, r->times, (size_t)h.n_times * sizeof(double)) &&
                write_all(fd, r->base_times, (size_t)h.n_base * sizeof(double)) &&
                write_all(fd, r->eq_text, h.eq_len);
    fflush(NULL);
    _exit(sent ? 0 : 1); /* no exit handlers: they belong to the parent */
}

static bool parent_receive(int fd, Measure m, BenchResult *r)
{
    Wire h;
    if (!read_all(fd, &h, sizeof h) || h.n_times < 0 || h.n_base < 0 || h.eq_len > (1u << 24))
        return false;
    double *t = calloc((size_t)h.n_times + 1, sizeof *t);
    double *b = calloc((size_t)h.n_base + 1, sizeof *b);
    char *eq = h.eq_len ? calloc(h.eq_len + 1, 1) : NULL;
    bool ok = t && b && (!h.eq_len || eq) && read_all(fd, t, (size_t)h.n_times * sizeof *t) &&
              read_all(fd, b, (size_t)h.n_base * sizeof *b) && read_all(fd, eq, h.eq_len);
    if (ok && m == MEASURE_BASELINE) {
        free(r->base_times);
        r->base_times = b, b = NULL;
        r->n_base = h.n_base;
        r->has_base = h.has_base;
    } else if (ok) {
        r->ok = h.ok, r->n_times = h.n_times;
        r->parse_ms = h.parse_ms, r->compile_ms = h.compile_ms, r->first_ms = h.first_ms;
        r->flops = h.flops;
        free(r->times);
        r->times = t, t = NULL;
        free(r->eq_text);
        r->eq_text = eq, eq = NULL;
    }
    free(t);
    free(b);
    free(eq);
    return ok;
}

/* Forks, measures in the child, returns the child's peak RSS in KiB (-1 when
 * the child failed: r is then left as it was). t NULL: a child that does
 * nothing, for the RSS fuse-bench itself brings into every child. */
static long measure_in_child(Measure m, const Target *t, const BenchOpts *o, BenchResult *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (!t) {
            reset_peak_rss();
            _exit(0);
        }
        child_measure(fds[1], m, t, o, r);
    }
    close(fds[1]);
    bool got = pid > 0 && (!t || parent_receive(fds[0], m, r));
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
        return -1;
    if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fuse-bench: %s: the measuring process failed (%s %d)\n", r->name,
                WIFSIGNALED(status) ? "signal" : "exit status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return -1;
    }
    return ru.ru_maxrss;
}

/* One measurement, in a child under --memory, else here. */
static void measure(Measure m, fuse_ctx **ctx, const Target *t, const BenchOpts *o, BenchResult *r)
{
    if (!o->memory) {
        measure_here(m, ctx, t, o, r);
        return;
    }
    long kib = measure_in_child(m, t, o, r);
    if (m == MEASURE_FUSE)
        r->peak_rss_kib = kib > 0 ? kib : 0;
    else
        r->base_rss_kib = kib > 0 ? kib : 0;
}

/* Measures fuse-jit on one program or workload (and the baseline on it, when
 * asked and it is a product), then prints its row. */
static void bench_and_print(fuse_ctx **ctx, const Target *t, const BenchOpts *o, BenchResult *r)
{
    measure(MEASURE_FUSE, ctx, t, o, r);
    if (r->ok && r->n_times > 0)
        r->ok = bench_stats_compute(r->times, r->n_times, &r->stats);
    if (r->ok && o->baseline && t->w && bench_blas_supports(t->w)) {
        measure(MEASURE_BASELINE, ctx, t, o, r);
        if (r->has_base)
            r->has_base = bench_stats_compute(r->base_times, r->n_base, &r->base);
    }
    bench_print_row(r, o);
}

/* ---- the suite ---- */

bool bench_selected(const BenchOpts *o, const char *name)
{
    return !o->only || strstr(name, o->only);
}

int bench_measure_suite(fuse_ctx **ctx, const BenchOpts *o, BenchResult *rs, int *n)
{
    int failed = 0;
    for (int i = 0; i < bench_workload_count(); i++) {
        if (!bench_selected(o, bench_workload_names[i]))
            continue;
        Workload w;
        int rc = bench_workload_make(i, &w, !o->memory);
        BenchResult *r = &rs[(*n)++];
        r->name = bench_workload_names[i];
        Target t = {NULL, i, &w};
        if (rc != 0)
            bench_print_row(r, o);
        else
            bench_and_print(ctx, &t, o, r);
        failed |= !r->ok;
        bench_workload_free(&w);
    }
    return failed;
}

void bench_measure_program(fuse_ctx **ctx, const char *path, const BenchOpts *o, BenchResult *r)
{
    Target t = {path, -1, NULL};
    r->name = path;
    bench_and_print(ctx, &t, o, r);
}

long bench_idle_child_kib(const BenchOpts *o)
{
    BenchResult idle = {.name = "idle child"};
    return measure_in_child(MEASURE_FUSE, NULL, o, &idle);
}
