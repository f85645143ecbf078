/*
 * test_memory.c: Check suite for the memory a program may take. The cap
 * (fuse_config.max_memory, `run --max-memory`, the REPL's `:set max_memory`) is
 * checked against the plan's buffers before any is allocated and its error names
 * the bytes and the largest tensors; the default cap (the machine's memory)
 * refuses a plan of terabytes; an allocation that fails names its tensor; a
 * one-line program of megabytes over the parser's limits fails in bounded memory
 * with a short quoted excerpt; byte counts read as text.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"
#include "runtime.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(UNDER_ASAN)
#define UNDER_ASAN 1
#endif

/* C is the outer product of a vector with itself: n x n floats from an n-vector. */
static const char OUTER[] = "A[i] = \"a.npy\"\n"
                            "C[i,j] = A[i] A[j]\n"
                            "S[i] = C[i,j]\n"
                            "export S\n";

/* ---- helpers ---- */

/* A context and OUTER's program; A bound to n ones of the fixture's own. */
typedef struct Outer {
    fuse_ctx *ctx;
    fuse_program *prog;
    float *a;
    fuse_input in;
} Outer;

static void outer_open(Outer *o, int64_t n)
{
    memset(o, 0, sizeof *o);
    o->a = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(o->a);
    for (int64_t i = 0; i < n; i++)
        o->a[i] = 1.0f;
    o->in = (fuse_input){.name = "A", .tensor = {.dtype = FUSE_F32, .rank = 1, .data = o->a}};
    o->in.tensor.shape[0] = n;
    ck_assert_int_eq(fuse_ctx_new(&o->ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(o->ctx, OUTER, "outer.fuse", &o->prog), FUSE_OK);
}

static void outer_close(Outer *o)
{
    fuse_program_free(o->prog);
    fuse_ctx_free(o->ctx);
    free(o->a);
}

/* A runner of OUTER under cap (fuse_config.max_memory); runs it when made and
 * checks S[0] = n. */
static fuse_status outer_run(Outer *o, uint64_t cap)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.write_sinks = 0;
    cfg.no_cache = 1;
    cfg.max_memory = cap;
    fuse_runner *run = NULL;
    fuse_status st = fuse_runner_new(o->prog, &cfg, &o->in, 1, &run);
    if (st != FUSE_OK)
        return st;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, &o->in, 1, &out), FUSE_OK);
    const fuse_tensor *s = fuse_outputs_find(out, "S");
    ck_assert_ptr_nonnull(s);
    ck_assert_float_eq(((const float *)s->data)[0], (float)o->in.tensor.shape[0]);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    return FUSE_OK;
}

static void expect_in(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want) != NULL, "'%s' not in:\n%s", want, text);
}

/* A .npy of n float32 ones in the scratch directory. */
static void write_ones(const char *name, int64_t n)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0f;
    write_npy(name, 1, &n, x);
    free(x);
}

/* The peak resident size of the children waited for so far, in KiB (each test
 * runs in a process of its own, so these are its children). */
static long children_peak_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_maxrss;
}

/* ---- the cap through the API ---- */

/* 1024 x 1024 floats are 4 MiB: a 1 MiB cap refuses them before allocating,
 * naming C, its bytes and shape, the plan's total and the cap; 64 MiB, no cap and
 * the default run. */
START_TEST(cap_refuses_a_plan_above_it)
{
    Outer o;
    outer_open(&o, 1024);
    ck_assert_int_eq(outer_run(&o, 1024 * 1024), FUSE_E_NOMEM);
    const char *e = fuse_ctx_error(o.ctx);
    expect_in(e, "outer.fuse:2:1: error: the plan needs 4");
    expect_in(e, "(C: 4 MiB [1024, 1024] float32, ");
    expect_in(e, "above the memory cap of 1 MiB (--max-memory, fuse_config.max_memory)");
    expect_in(e, "\n  C[i,j] = A[i] A[j]\n  ^");
    ck_assert_int_eq(outer_run(&o, 64u << 20), FUSE_OK);
    ck_assert_int_eq(outer_run(&o, FUSE_MEMORY_UNLIMITED), FUSE_OK);
    ck_assert_int_eq(outer_run(&o, 0), FUSE_OK);
    outer_close(&o);
}
END_TEST

/* The default cap is the machine's memory: 8192^3 floats (2 TiB) are refused
 * before anything is allocated, and the message says where the cap came from. */
START_TEST(default_cap_is_the_machines_memory)
{
    ck_assert_uint_gt(rt_machine_memory(), 0);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i] = \"a.npy\"\n"
                                                 "C[i,j,k] = A[i] A[j] A[k]\nexport C\n",
                                            "cube.fuse", &prog),
                     FUSE_OK);
    float a = 1.0f;
    fuse_input in = {.name = "A", .tensor = {.dtype = FUSE_F32, .rank = 1, .data = &a}};
    in.tensor.shape[0] = 8192;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_runner_new(prog, NULL, &in, 1, &run), FUSE_E_NOMEM);
    ck_assert_ptr_null(run);
    const char *e = fuse_ctx_error(ctx);
    expect_in(e, "the plan needs 2 TiB (C: 2 TiB [8192, 8192, 8192] float32, ");
    expect_in(e, "), above the memory cap of ");
    expect_in(e, ", the machine's memory (--max-memory");
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* A host compiled before max_memory existed passes a smaller fuse_config; the
 * field then has its default (the machine's memory), and the program runs. */
START_TEST(config_without_max_memory_gets_the_default)
{
    Outer o;
    outer_open(&o, 64);
    union {
        fuse_config cfg;
        unsigned char b[sizeof(fuse_config)];
    } u;
    memset(&u, 0xFF, sizeof u); /* garbage past the older host's struct */
    size_t old_size = offsetof(fuse_config, max_memory);
    fuse_config_init_size(&u.cfg, old_size);
    ck_assert_uint_eq(u.cfg.size, old_size);
    u.cfg.write_sinks = 0;
    fuse_runner *run = NULL;
    ck_assert_msg(fuse_runner_new(o.prog, &u.cfg, &o.in, 1, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(o.ctx));
    fuse_runner_free(run);
    /* this host's struct: the field counts, and fuse_config_init leaves it 0 */
    fuse_config cfg;
    fuse_config_init(&cfg);
    ck_assert_uint_eq(cfg.max_memory, 0);
    cfg.max_memory = 100;
    cfg.write_sinks = 0;
    ck_assert_int_eq(fuse_runner_new(o.prog, &cfg, &o.in, 1, &run), FUSE_E_NOMEM);
    expect_in(fuse_ctx_error(o.ctx), "above the memory cap of 100 bytes");
    outer_close(&o);
}
END_TEST

/* Caps the address space of this process at its size now plus `more` bytes;
 * false when that cannot be done. */
static bool cap_address_space(uint64_t more)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    bool ok = f && fscanf(f, "%ld", &pages) == 1;
    if (f)
        fclose(f);
    struct rlimit rl;
    if (!ok || getrlimit(RLIMIT_AS, &rl) != 0)
        return false;
    rl.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)more;
    return setrlimit(RLIMIT_AS, &rl) == 0;
}

/* Child side of failed_allocation_names_the_tensor: exit status 0 when `text`
 * (C exported or not) fails with FUSE_E_NOMEM and `want` in the error. */
static int nomem_child(const char *text, uint64_t more, const char *want)
{
    Outer o;
    outer_open(&o, 16384);
    fuse_program_free(o.prog);
    o.prog = NULL;
    if (fuse_program_from_text(o.ctx, text, "outer.fuse", &o.prog) != FUSE_OK ||
        !cap_address_space(more))
        return 2;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.write_sinks = 0;
    cfg.no_cache = 1;
    cfg.max_memory = FUSE_MEMORY_UNLIMITED; /* past the check, to the allocation */
    fuse_runner *run = NULL;
    fuse_status st = fuse_runner_new(o.prog, &cfg, &o.in, 1, &run);
    fuse_outputs *out = NULL;
    if (st == FUSE_OK)
        st = fuse_runner_run(run, &o.in, 1, &out);
    const char *e = fuse_ctx_error(o.ctx);
    bool ok = st == FUSE_E_NOMEM && e && strstr(e, want);
    if (!ok)
        fprintf(stderr, "status %d: %s\n", st, e ? e : "(none)");
    return ok ? 0 : 1;
}

/* An allocation that fails names the tensor and its bytes: C's own buffer, and
 * its copy in the output map of a run. The address space is capped (RLIMIT_AS) in
 * a child process, so 1 GiB cannot be had whatever the machine's overcommit
 * policy; not under ASan, which reserves terabytes of shadow memory up front. */
START_TEST(failed_allocation_names_the_tensor)
{
#ifdef UNDER_ASAN
    return;
#endif
    static const struct {
        const char *text;
        uint64_t more;
        const char *want;
    } cases[] = {
        {OUTER, 512u << 20, "outer.fuse:2:1: error: out of memory allocating tensor C: 1 GiB "
                            "[16384, 16384] float32"},
        {"A[i] = \"a.npy\"\nC[i,j] = A[i] A[j]\nexport C\n", 1536u << 20,
         "outer.fuse:2:1: error: out of memory allocating the output map's copy of C: 1 GiB "
         "[16384, 16384] float32"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(nomem_child(cases[c].text, cases[c].more, cases[c].want));
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "case %zu: status %d", c,
                      status);
    }
}
END_TEST

/* ---- the command line ---- */

START_TEST(cli_max_memory)
{
    write_text("outer.fuse", OUTER);
    write_ones("a.npy", 1024);
    const char *refused[] = {"1M", "1048576", "1MiB", "1mib", "0.5m"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        Result r = run_cli("run", "outer.fuse", "--max-memory", refused[i], NULL);
        expect_exit(&r, 1);
        expect_in(r.err, "outer.fuse:2:1: error: the plan needs 4");
        expect_in(r.err, "C: 4 MiB [1024, 1024] float32");
        expect_in(r.err, "above the memory cap of ");
        ck_assert_str_eq(r.out, "");
        result_free(&r);
    }
    const char *fine[] = {"64M", "1G", "0", "none", "1e9", "5000000"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        Result r = run_cli("run", "outer.fuse", "--max-memory", fine[i], NULL);
        expect_exit(&r, 0);
        expect_in(r.out, "# S shape=(1024,) dtype=float32");
        result_free(&r);
    }
    const char *bad[] = {"12Q", "-1", "", "1KB", "G", "inf", "1e30"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Result r = run_cli("run", "outer.fuse", "--max-memory", bad[i], NULL);
        expect_exit(&r, 2);
        expect_in(r.err, "--max-memory expects a size");
        result_free(&r);
    }
    Result r = run_cli("run", "--help", NULL);
    expect_exit(&r, 0);
    expect_in(r.out, "--max-memory SIZE");
    result_free(&r);
}
END_TEST

/* Without --max-memory the machine's memory caps the plan. */
START_TEST(cli_default_cap)
{
    write_text("cube.fuse", "A[i] = \"a.npy\"\nC[i,j,k] = A[i] A[j] A[k]\nexport C\n");
    write_ones("a.npy", 8192);
    Result r = run_cli("run", "cube.fuse", NULL);
    expect_exit(&r, 1);
    expect_in(r.err, "cube.fuse:2:1: error: the plan needs 2 TiB (C: 2 TiB [8192, 8192, 8192] "
                     "float32");
    expect_in(r.err, ", the machine's memory (--max-memory");
    result_free(&r);
}
END_TEST

/* `:set max_memory` in the REPL caps the runners it makes to print a tensor. */
START_TEST(repl_set_max_memory)
{
    write_ones("a.npy", 1024);
    write_text("script.txt", "A[i] = \"a.npy\"\nC[i,j] = A[i] A[j]\n:set max_memory 1M\nC\n"
                             ":set max_memory 64MiB\nC\n:set max_memory lots\n");
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int in = open(spath("script.txt"), O_RDONLY);
        int out = open(spath("repl.out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || chdir(scratch) != 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execl(FUSE_JIT_BIN, FUSE_JIT_BIN, "repl", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    char *text = slurp(spath("repl.out"));
    expect_in(text, "C: 4 MiB [1024, 1024] float32");
    expect_in(text, "above the memory cap of 1 MiB");
    expect_in(text, "# C shape=(1024, 1024) dtype=float32");
    expect_in(text, ":set max_memory expects a size such as 4G (0 or none: no cap), got 'lots'");
    free(text);
}
END_TEST

/* ---- long lines ---- */

/* Writes NAME: "X[i] = const([1.0, 2.0, 3.0])", then one line of about 7 MB:
 * `head`, copies of `unit` joined by `sep`, `tail`; then "export Y". */
static void write_long_program(const char *name, const char *head, const char *unit,
                               const char *sep, const char *tail)
{
    size_t per = strlen(unit) + strlen(sep), n = 7000000 / per;
    char *text = malloc(n * per + 128), *p = text;
    ck_assert_ptr_nonnull(text);
    p += sprintf(p, "X[i] = const([1.0, 2.0, 3.0])\n%s", head);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i ? sep : "", unit);
    sprintf(p, "%s\nexport Y\n", tail);
    write_text(name, text);
    free(text);
}

/* Each shape of a 7 MB line over a limit fails with exit 3 after a bounded amount
 * of memory (before: 1.8 GB for the sum, 24 GB and the OOM killer for the
 * product), and the error quotes about 100 columns of the line, not 7 MB. */
START_TEST(long_lines_fail_early_with_a_short_excerpt)
{
    static const struct {
        const char *head, *unit, *sep, *tail, *msg;
    } cases[] = {
        {"Y[i] = ", "X[i]", " + ", "", "2:28680: error: expression expands to more than 4096 "
                                       "terms"},
        {"Y[i] = ", "X[i]", " ", "", "2:328: error: an equation term has more than 64 factors "
                                     "(the limit)"},
        {"Y[i] = ", "(X[i] + X[i])", " ", "", "error: expression expands to more than 4096 terms"},
        {"Y[i] = ", "sig(X[i])", " + ", "", "error: expression expands to more than 4096 terms"},
        {"Y[i] = ", "(1 (X[i] X[i]))", " ", "", "error: an equation term has more than 64 "
                                                "factors"},
        {"Y[i] = X[", "i", ", ", "]", "2:9: error: a tensor has at most 8 axes; this one is "
                                      "indexed with more than 64"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_long_program("long.fuse", cases[c].head, cases[c].unit, cases[c].sep,
                           cases[c].tail);
        Result r = run_cli("check", "long.fuse", NULL);
        expect_exit(&r, 3);
        expect_in(r.err, cases[c].msg);
        ck_assert_msg(strlen(r.err) < 600, "%zu bytes of stderr", strlen(r.err));
        expect_in(r.err, "...\n");
        result_free(&r);
    }
    long peak = children_peak_kb();
    ck_assert_msg(peak < 400 * 1024, "a child peaked at %ld KiB", peak);
}
END_TEST

/* Products nested deeper than the parser looks are stopped by the IR's own count
 * as it expands them, before the factor lists of the terms grow. */
START_TEST(deeply_nested_factors_are_counted_by_the_ir)
{
    char text[4096] = "X[i] = const([1.0, 2.0])\nY[i] = ";
    for (int k = 0; k < 40; k++)
        strcat(text, "(1 (1 (1 (1 (X[i] X[i]))))) ");
    strcat(text, "\nexport Y\n");
    write_text("nest.fuse", text);
    Result r = run_cli("check", "nest.fuse", NULL);
    expect_exit(&r, 3);
    expect_in(r.err, "nest.fuse:2:1: error: an equation term has more than 64 factors (the "
                     "limit)");
    result_free(&r);
}
END_TEST

/* ---- lifetimes: buffers given back and written over ---- */

/* A chain whose intermediates die early: B = A^2 (A dead after it), C = B^2
 * (reads B cell by cell and is B's only reader, so it is written over B's
 * buffer), D = the row sums of C (B's buffer dead after it). */
static const char CHAIN[] = "A[i,j] = \"a.npy\"\n"
                            "B[i,j] = A[i,j] A[i,j]\n"
                            "C[i,j] = B[i,j] B[i,j]\n"
                            "D[i] = C[i,j]\n"
                            "export D\n";
#define CHAIN_ROWS 64
#define CHAIN_COLS 1024

typedef struct Chain {
    fuse_ctx *ctx;
    fuse_program *prog;
    float a[CHAIN_ROWS * CHAIN_COLS];
    double d[CHAIN_ROWS]; /* D by a naive loop in double */
} Chain;

static void chain_open(Chain *c)
{
    int64_t shape[2] = {CHAIN_ROWS, CHAIN_COLS};
    fill_random(c->a, CHAIN_ROWS * CHAIN_COLS, 7, -2.0f, 2.0f);
    write_npy("a.npy", 2, shape, c->a);
    write_text("chain.fuse", CHAIN);
    for (int i = 0; i < CHAIN_ROWS; i++) {
        c->d[i] = 0.0;
        for (int j = 0; j < CHAIN_COLS; j++) {
            double b = (double)c->a[i * CHAIN_COLS + j] * c->a[i * CHAIN_COLS + j];
            c->d[i] += b * b;
        }
    }
    ck_assert_int_eq(fuse_ctx_new(&c->ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_file(c->ctx, spath("chain.fuse"), &c->prog), FUSE_OK);
}

static void chain_close(Chain *c)
{
    fuse_program_free(c->prog);
    fuse_ctx_free(c->ctx);
}

static fuse_runner *chain_runner(Chain *c, fuse_mode mode)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.write_sinks = 0;
    cfg.no_cache = 1;
    cfg.mode = mode;
    fuse_runner *run = NULL;
    ck_assert_msg(fuse_runner_new(c->prog, &cfg, NULL, 0, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(c->ctx));
    return run;
}

/* Runs the runner and checks D against the naive loop; returns D's first value. */
static float chain_check_run(Chain *c, fuse_runner *run)
{
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s", fuse_ctx_error(c->ctx));
    const fuse_tensor *d = fuse_outputs_find(out, "D");
    ck_assert_ptr_nonnull(d);
    expect_close("D", d->data, c->d, CHAIN_ROWS);
    float first = ((const float *)d->data)[0];
    fuse_outputs_free(out);
    return first;
}

/* A query of name checks each cell against f(a) (A^2 for B, A^4 for C). */
static void chain_check_query(Chain *c, fuse_runner *run, const char *name, int power)
{
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_runner_query(run, name, NULL, NULL, 0, &out) == FUSE_OK, "%s",
                  fuse_ctx_error(c->ctx));
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->rank, 2);
    double *want = malloc(sizeof *want * CHAIN_ROWS * CHAIN_COLS);
    ck_assert_ptr_nonnull(want);
    for (int k = 0; k < CHAIN_ROWS * CHAIN_COLS; k++) {
        double x2 = (double)c->a[k] * c->a[k];
        want[k] = power == 2 ? x2 : x2 * x2;
    }
    expect_close(name, t->data, want, CHAIN_ROWS * CHAIN_COLS);
    free(want);
    fuse_outputs_free(out);
}

/* The planned peak of CHAIN, by hand, with every buffer of a whole page given
 * back (FUSE_JIT_RELEASE_MIN_BYTES=0). X = 64 x 1024 floats = 256 KiB, D = 64
 * floats. The plan holds A, B, C and D: 3 X + 256 bytes. A run has live:
 *   B's group:  A (loaded) and B               = 2 X
 *   C's group:  B, and C written over it       = X   (A given back)
 *   D's group:  C (in B's buffer) and D        = X + 256
 *   the end:    D (the export)                 = 256
 * so the peak is 2 X. Results are the same as without giving anything back
 * (the default keeps buffers under 16 MiB, so that plan's peak is all of it),
 * run after run, and a query of B or C still sees its own values. */
START_TEST(planned_peak_follows_lifetimes)
{
    const uint64_t x = (uint64_t)CHAIN_ROWS * CHAIN_COLS * sizeof(float), d = 64 * sizeof(float);
    Chain c;
    chain_open(&c);
    setenv("FUSE_JIT_RELEASE_MIN_BYTES", "0", 1);
    fuse_runner *run = chain_runner(&c, FUSE_MODE_SINGLE);
    unsetenv("FUSE_JIT_RELEASE_MIN_BYTES");
    fuse_runner *kept = chain_runner(&c, FUSE_MODE_SINGLE);
    fuse_timings t = {.size = sizeof t};
    ck_assert_int_eq(fuse_runner_timings(run, &t), FUSE_OK);
    ck_assert_uint_eq(t.buffer_bytes, 3 * x + d);
    ck_assert_uint_eq(t.peak_bytes, 2 * x);
    ck_assert_int_eq(fuse_runner_timings(kept, &t), FUSE_OK);
    ck_assert_uint_eq(t.buffer_bytes, 3 * x + d);
    ck_assert_uint_eq(t.peak_bytes, 3 * x + d);
    float first = chain_check_run(&c, kept);
    for (int r = 0; r < 3; r++) /* buffers given back are filled again */
        ck_assert_float_eq(chain_check_run(&c, run), first);
    chain_check_query(&c, run, "B", 2); /* a query keeps B apart from C */
    chain_check_query(&c, run, "C", 4);
    ck_assert_float_eq(chain_check_run(&c, run), first);
    fuse_runner_free(run);
    fuse_runner_free(kept);
    chain_close(&c);
}
END_TEST

/* The other modes and run_into see the same values with buffers given back. */
START_TEST(lifetimes_in_every_mode)
{
    Chain c;
    chain_open(&c);
    setenv("FUSE_JIT_RELEASE_MIN_BYTES", "0", 1);
    const fuse_mode modes[] = {FUSE_MODE_FIXPOINT, FUSE_MODE_DEMAND, FUSE_MODE_SINGLE};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        fuse_runner *run = chain_runner(&c, modes[m]);
        chain_check_run(&c, run);
        float *d = aligned_alloc(64, 64 * sizeof(float));
        ck_assert_ptr_nonnull(d);
        fuse_input o = {.name = "D", .tensor = {.dtype = FUSE_F32, .rank = 1, .data = d}};
        o.tensor.shape[0] = CHAIN_ROWS;
        for (int r = 0; r < 2; r++) {
            memset(d, 0xFF, 64 * sizeof(float));
            ck_assert_msg(fuse_runner_run_into(run, NULL, 0, &o, 1) == FUSE_OK, "%s",
                          fuse_ctx_error(c.ctx));
            expect_close("D (run_into)", d, c.d, CHAIN_ROWS);
        }
        free(d);
        chain_check_run(&c, run);
        fuse_runner_free(run);
    }
    unsetenv("FUSE_JIT_RELEASE_MIN_BYTES");
    chain_close(&c);
}
END_TEST

/* `run --time` prints the planned peak after the phase times: 2 X of 3 X + 256
 * bytes with every buffer given back, all of it by default. */
START_TEST(cli_time_prints_the_planned_peak)
{
    Chain c;
    chain_open(&c);
    chain_close(&c);
    setenv("FUSE_JIT_RELEASE_MIN_BYTES", "0", 1);
    Result r = run_cli("run", "chain.fuse", "--time", NULL);
    unsetenv("FUSE_JIT_RELEASE_MIN_BYTES");
    expect_exit(&r, 0);
    expect_in(r.err, "time: total ");
    expect_in(r.err, "memory: planned peak 0.5 MiB (buffers 0.8 MiB)\n");
    result_free(&r);
    r = run_cli("run", "chain.fuse", "--time", NULL);
    expect_exit(&r, 0);
    expect_in(r.err, "memory: planned peak 0.8 MiB (buffers 0.8 MiB)\n");
    result_free(&r);
}
END_TEST

/* ---- text ---- */

START_TEST(bytes_as_text)
{
    static const struct {
        uint64_t bytes;
        const char *text;
    } cases[] = {
        {0, "0 bytes"},          {1023, "1023 bytes"},        {1024, "1 KiB"},
        {1536, "1.5 KiB"},       {64u << 20, "64 MiB"},       {3u << 29, "1.5 GiB"},
        {1u << 30, "1 GiB"},     {123ull << 30, "123 GiB"},   {(1ull << 41), "2 TiB"},
        {UINT64_MAX, "16 EiB"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        rt_format_bytes(cases[i].bytes, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].text);
    }
}
END_TEST

static Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = harness_case("cap");
    tcase_add_test(tc, cap_refuses_a_plan_above_it);
    tcase_add_test(tc, default_cap_is_the_machines_memory);
    tcase_add_test(tc, config_without_max_memory_gets_the_default);
    tcase_add_test(tc, failed_allocation_names_the_tensor);
    tcase_add_test(tc, cli_max_memory);
    tcase_add_test(tc, cli_default_cap);
    tcase_add_test(tc, repl_set_max_memory);
    tcase_add_test(tc, bytes_as_text);
    suite_add_tcase(s, tc);
    tc = harness_case("lifetimes");
    tcase_add_test(tc, planned_peak_follows_lifetimes);
    tcase_add_test(tc, lifetimes_in_every_mode);
    tcase_add_test(tc, cli_time_prints_the_planned_peak);
    suite_add_tcase(s, tc);
    tc = harness_case("long lines");
    tcase_add_test(tc, long_lines_fail_early_with_a_short_excerpt);
    tcase_add_test(tc, deeply_nested_factors_are_counted_by_the_ir);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(memory_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
