/*
 * test_cache.c: Check suite for the code cache. The key (ir_serialize +
 * jit_cache_key) is stable across comment and whitespace edits and changes with
 * shapes, options, constants and operators; a runner made twice in one context
 * compiles once (fuse_ctx_stats); a fresh context loads the object from disk
 * without compiling; truncated, corrupt, empty and foreign entries are rejected,
 * deleted and rebuilt with correct results; two processes compiling into one
 * directory at once both succeed; the size cap evicts; `fuse-jit cache` and
 * `run --time` work. Every test uses its own scratch directory as cache (never
 * ~/.cache).
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jit.h"
#include "harness.h"
#include "runtime.h"

/* Z = relu(X W) with a constant W; X is a runtime input of n rows. */
static const char PROGRAM[] =
    "# a small layer\n"
    "X[i,j] = \"x.npy\"\n"
    "W[j,k] = const([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0], [-2.0, 0.25]])\n"
    "Y[i,k] = X[i,j] W[j,k]\n"
    "Z[i,k] = relu(Y[i,k])\n"
    "export Z\n";

/* The same program with other comments, blank lines and spacing. */
static const char PROGRAM_REFORMATTED[] =
    "\n\n# another comment\n"
    "X[i,j]   =   \"x.npy\"   # the input\n"
    "W[j,k] = const([[1.0,2.0],[0.5,-1.0],[0.0,1.0],[-2.0,0.25]])\n\n"
    "Y[i,k]=X[i,j] W[j,k]\n"
    "Z[i,k] = relu(Y[i,k])   # activation\n"
    "export Z\n";

/* A changed constant, and a changed operator. */
static const char PROGRAM_CONSTANT[] =
    "X[i,j] = \"x.npy\"\n"
    "W[j,k] = const([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0], [-2.0, 0.5]])\n"
    "Y[i,k] = X[i,j] W[j,k]\n"
    "Z[i,k] = relu(Y[i,k])\n"
    "export Z\n";
static const char PROGRAM_OPERATOR[] =
    "X[i,j] = \"x.npy\"\n"
    "W[j,k] = const([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0], [-2.0, 0.25]])\n"
    "Y[i,k] = X[i,j] W[j,k]\n"
    "Z[i,k] = sig(Y[i,k])\n"
    "export Z\n";

static const float W_DATA[4][2] = {{1.0f, 2.0f}, {0.5f, -1.0f}, {0.0f, 1.0f}, {-2.0f, 0.25f}};

#define ROWS 3
/* Per thread: the threads of threads_share_the_memory_cache each fill their own. */
static _Thread_local float x_data[8][4];

static fuse_input input_of(int rows)
{
    fill_random(&x_data[0][0], 32, 7, -1.0f, 1.0f);
    fuse_input in = {.name = "X"};
    in.tensor.dtype = FUSE_F32;
    in.tensor.rank = 2;
    in.tensor.shape[0] = rows;
    in.tensor.shape[1] = 4;
    in.tensor.data = x_data;
    return in;
}

/* ---- keys ---- */

/* The cache key of text compiled for an input of `rows` rows with options opts. */
static JitKey key_of(const char *text, int rows, int64_t opts)
{
    fuse_input in = input_of(rows);
    RtPlan *pl = NULL;
    fuse_status st = rt_plan_new(&pl, text, "k.fuse", scratch, scratch, false, &in, 1, NULL,
                                 NULL, NULL, NULL, NULL, NULL, 0, FUSE_PRECISION_FP32,
                                 false);
    ck_assert_msg(st == FUSE_OK, "plan: %s", pl && pl->dl.first ? pl->dl.first->msg : "?");
    unsigned char *ir = NULL;
    size_t n = 0;
    ck_assert_int_eq(ir_serialize(pl->ir, &ir, &n), FUSE_OK);
    JitSession *js = NULL;
    ck_assert_int_eq(jit_session_new(&js, NULL), FUSE_OK);
    JitKey key;
    jit_cache_key(js, ir, n, &opts, sizeof opts, &key);
    jit_session_free(js);
    free(ir);
    rt_plan_free(pl);
    return key;
}

static bool same_key(JitKey a, JitKey b)
{
    return memcmp(a.b, b.b, JIT_KEY_BYTES) == 0;
}

START_TEST(test_key_ignores_comments_and_spacing)
{
    ck_assert(same_key(key_of(PROGRAM, ROWS, 256), key_of(PROGRAM_REFORMATTED, ROWS, 256)));
}
END_TEST

START_TEST(test_key_changes_with_meaning)
{
    JitKey base = key_of(PROGRAM, ROWS, 256);
    ck_assert(!same_key(base, key_of(PROGRAM, ROWS + 1, 256)));    /* an input shape */
    ck_assert(!same_key(base, key_of(PROGRAM, ROWS, 512)));        /* a code option */
    ck_assert(!same_key(base, key_of(PROGRAM_CONSTANT, ROWS, 256))); /* a constant */
    ck_assert(!same_key(base, key_of(PROGRAM_OPERATOR, ROWS, 256))); /* an operator */
}
END_TEST

/* ---- objects ---- */

/* An object file defining `int answer(void) { return value; }`. */
static void *answer_object(JitSession *js, int value, size_t *n)
{
    JitModule *jm = jit_module_new(js, "answer");
    LLVMContextRef c = jit_module_context(jm);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(c);
    LLVMValueRef fn = LLVMAddFunction(jit_module_llvm(jm), "answer",
                                      LLVMFunctionType(i32, NULL, 0, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    LLVMBuildRet(b, LLVMConstInt(i32, (unsigned long long)value, 0));
    LLVMDisposeBuilder(b);
    void *obj = NULL;
    char *err = NULL;
    ck_assert_int_eq(jit_module_optimize(js, jm, &err), FUSE_OK);
    ck_assert_int_eq(jit_module_emit_object(js, jm, &obj, n, &err), FUSE_OK);
    jit_module_free(jm);
    return obj;
}

static int call_answer(JitCode *jc)
{
    void *addr = NULL;
    char *err = NULL;
    ck_assert_int_eq(jit_code_lookup(jc, "answer", &addr, &err), FUSE_OK);
    int (*fn)(void);
    memcpy(&fn, &addr, sizeof fn);
    return fn();
}

/* One object loaded twice (same symbol names) and another object with the same
 * names: each code finds its own definition; freeing one keeps the others. */
START_TEST(test_objects_load_side_by_side)
{
    JitSession *js = NULL;
    ck_assert_int_eq(jit_session_new(&js, NULL), FUSE_OK);
    size_t n1 = 0, n2 = 0;
    void *o1 = answer_object(js, 42, &n1), *o2 = answer_object(js, 7, &n2);
    JitCode *a = NULL, *b = NULL, *c = NULL;
    ck_assert_int_eq(jit_object_load(js, o1, n1, &a, NULL), FUSE_OK);
    ck_assert_int_eq(jit_object_load(js, o1, n1, &b, NULL), FUSE_OK);
    ck_assert_int_eq(jit_object_load(js, o2, n2, &c, NULL), FUSE_OK);
    ck_assert_int_eq(call_answer(a), 42);
    jit_code_free(a);
    ck_assert_int_eq(call_answer(b), 42);
    ck_assert_int_eq(call_answer(c), 7);
    char *err = NULL;
    void *addr = NULL;
    ck_assert_int_eq(jit_code_lookup(c, "missing", &addr, &err), FUSE_E_JIT);
    free(err);
    /* not an object file */
    JitCode *bad = NULL;
    err = NULL;
    ck_assert_int_eq(jit_object_load(js, "garbage!garbage!", 16, &bad, &err), FUSE_E_JIT);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(err);
    free(err);
    ck_assert_int_eq(jit_object_load(js, o1, 0, &bad, NULL), FUSE_E_ARG);
    jit_code_free(b);
    jit_code_free(c);
    free(o1);
    free(o2);
    jit_session_free(js);
}
END_TEST

/* ---- runners ---- */

/* A cache directory inside the scratch directory. */
static const char *cache_dir(void)
{
    return spath("cache");
}

/* Makes a runner of the program in ctx for `rows` rows and checks its result. */
static void run_rows(fuse_ctx *ctx, const char *dir, int no_cache, int rows)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_input in = input_of(rows);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.cache_dir = dir;
    cfg.no_cache = no_cache;
    ck_assert_int_eq(fuse_program_from_text(ctx, PROGRAM, "p.fuse", &prog), FUSE_OK);
    fuse_status st = fuse_runner_new(prog, &cfg, &in, 1, &run);
    ck_assert_msg(st == FUSE_OK, "runner: %s", fuse_ctx_error(ctx));
    ck_assert_int_eq(fuse_runner_run(run, &in, 1, &out), FUSE_OK);
    const fuse_tensor *z = fuse_outputs_find(out, "Z");
    ck_assert_ptr_nonnull(z);
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < 2; k++) {
            double y = 0;
            for (int j = 0; j < 4; j++)
                y += (double)x_data[i][j] * W_DATA[j][k];
            double want = y > 0 ? y : 0;
            double got = ((const float *)z->data)[i * 2 + k];
            ck_assert_msg(fabs(got - want) <= 1e-5, "Z[%d,%d] = %g, want %g", i, k, got, want);
        }
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
}

static void run_and_check(fuse_ctx *ctx, const char *dir, int no_cache)
{
    run_rows(ctx, dir, no_cache, ROWS);
}

static fuse_stats stats_of(fuse_ctx *ctx)
{
    fuse_stats s = {.size = sizeof s};
    ck_assert_int_eq(fuse_ctx_stats(ctx, &s), FUSE_OK);
    return s;
}

START_TEST(test_memory_hit_compiles_once)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    run_and_check(ctx, NULL, 1);
    fuse_stats s = stats_of(ctx);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.memory_hits, 0);
    run_and_check(ctx, NULL, 1);
    s = stats_of(ctx);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.memory_hits, 1);
    ck_assert_uint_eq(s.disk_writes, 0);
    fuse_ctx_free(ctx);
}
END_TEST

/* Two live runners of one object: each has its own copy of the code. */
START_TEST(test_two_live_runners_share_one_object)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *a = NULL, *b = NULL;
    fuse_outputs *oa = NULL, *ob = NULL;
    fuse_input in = input_of(ROWS);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, PROGRAM, "p.fuse", &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, &in, 1, &a), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, &in, 1, &b), FUSE_OK);
    fuse_timings t = {.size = sizeof t};
    ck_assert_int_eq(fuse_runner_timings(b, &t), FUSE_OK);
    ck_assert_int_eq(t.is_cache_hit, 1);
    fuse_runner_free(a); /* b's code must survive a's */
    ck_assert_int_eq(fuse_runner_run(b, &in, 1, &ob), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, &in, 1, &a), FUSE_OK);
    ck_assert_int_eq(fuse_runner_run(a, &in, 1, &oa), FUSE_OK);
    ck_assert_mem_eq(fuse_outputs_find(oa, "Z")->data, fuse_outputs_find(ob, "Z")->data,
                     ROWS * 2 * sizeof(float));
    ck_assert_uint_eq(stats_of(ctx).compiles, 1);
    ck_assert_uint_eq(stats_of(ctx).memory_hits, 2);
    fuse_outputs_free(oa);
    fuse_outputs_free(ob);
    fuse_runner_free(a);
    fuse_runner_free(b);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* Runs the program in a fresh context with the disk cache; returns its counters. */
static fuse_stats fresh_run(const char *dir)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    run_and_check(ctx, dir, 0);
    fuse_stats s = stats_of(ctx);
    fuse_ctx_free(ctx);
    return s;
}

static fuse_stats fresh_rows(int rows)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    run_rows(ctx, cache_dir(), 0, rows);
    fuse_stats s = stats_of(ctx);
    fuse_ctx_free(ctx);
    return s;
}

/* The path of the only entry of dir (malloc'd), or NULL when there is none. */
static char *only_entry(const char *dir)
{
    uint64_t entries = 0, bytes = 0;
    ck_assert_int_eq(fuse_cache_usage(dir, &entries, &bytes), FUSE_OK);
    if (entries == 0)
        return NULL;
    ck_assert_uint_eq(entries, 1);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "ls %s/*.fjo", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[4600] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    pclose(p);
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

START_TEST(test_disk_hit_in_fresh_context)
{
    fuse_stats s = fresh_run(cache_dir());
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.disk_writes, 1);
    ck_assert_uint_eq(s.disk_hits, 0);
    s = fresh_run(cache_dir());
    ck_assert_uint_eq(s.compiles, 0);
    ck_assert_uint_eq(s.disk_hits, 1);
    ck_assert_uint_eq(s.disk_rejected, 0);
    /* no_cache neither reads nor writes it */
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    run_and_check(ctx, cache_dir(), 1);
    ck_assert_uint_eq(stats_of(ctx).compiles, 1);
    ck_assert_uint_eq(stats_of(ctx).disk_hits, 0);
    fuse_ctx_free(ctx);
}
END_TEST

typedef enum Damage { TRUNCATE, FLIP_BYTE, EMPTY, FOREIGN_MAGIC, DAMAGE_COUNT } Damage;

static void damage(const char *path, Damage how)
{
    char *img = slurp(path);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    size_t n = (size_t)st.st_size;
    ck_assert_uint_gt(n, 100);
    if (how == FLIP_BYTE)
        img[n - 10] ^= 0x5a;
    if (how == FOREIGN_MAGIC)
        memcpy(img, "NOTFUSE!", 8);
    size_t keep = how == TRUNCATE ? n / 2 : how == EMPTY ? 0 : n;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(img, 1, keep, f), keep);
    fclose(f);
    free(img);
}

START_TEST(test_bad_entries_are_rebuilt)
{
    Damage how = (Damage)_i;
    fresh_run(cache_dir());
    char *path = only_entry(cache_dir());
    ck_assert_ptr_nonnull(path);
    damage(path, how);
    fuse_stats s = fresh_run(cache_dir());
    ck_assert_msg(s.disk_rejected == 1, "damage %d not rejected", (int)how);
    ck_assert_uint_eq(s.disk_hits, 0);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.disk_writes, 1);
    /* the rebuilt entry is good again */
    s = fresh_run(cache_dir());
    ck_assert_uint_eq(s.disk_hits, 1);
    ck_assert_uint_eq(s.compiles, 0);
    free(path);
}
END_TEST

START_TEST(test_two_processes_at_once)
{
    pid_t pids[2];
    fflush(NULL);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            /* A failed check in the child exits nonzero (Check's fork mode). */
            fuse_stats s = fresh_run(cache_dir());
            _exit(s.compiles + s.disk_hits == 1 && s.disk_rejected == 0 ? 0 : 3);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    char *path = only_entry(cache_dir());
    ck_assert_ptr_nonnull(path);
    free(path);
    fuse_stats s = fresh_run(cache_dir());
    ck_assert_uint_eq(s.disk_hits, 1);
}
END_TEST

START_TEST(test_size_cap_below_one_entry)
{
    setenv("FUSE_JIT_CACHE_MAX_BYTES", "1", 1);
    fuse_stats s = fresh_run(cache_dir());
    ck_assert_uint_eq(s.disk_writes, 1);
    uint64_t entries = 9, bytes = 9;
    ck_assert_int_eq(fuse_cache_usage(cache_dir(), &entries, &bytes), FUSE_OK);
    ck_assert_uint_eq(entries, 0); /* larger than the cap: evicted at once */
    unsetenv("FUSE_JIT_CACHE_MAX_BYTES");
    fresh_run(cache_dir());
    ck_assert_int_eq(fuse_cache_usage(cache_dir(), &entries, &bytes), FUSE_OK);
    ck_assert_uint_eq(entries, 1);
    ck_assert_uint_gt(bytes, 96);
}
END_TEST

/* mtime of the entry of the only program compiled for `rows` rows (found as the
 * one new file): set to `when` seconds after the epoch. Returns its size. Each
 * program runs in a fresh context: in one context the second program would reuse
 * the first one's kernel for W and be compiled in part, which stays in memory. */
static off_t age_new_entry(int rows, time_t when)
{
    char cmd[4600];
    ck_assert_uint_eq(fresh_rows(rows).compiles, 1);
    snprintf(cmd, sizeof cmd, "ls -t %s/*.fjo | head -1", cache_dir());
    FILE *p = popen(cmd, "r");
    char line[4600] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    pclose(p);
    line[strcspn(line, "\n")] = '\0';
    struct timespec ts[2] = {{when, 0}, {when, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, line, ts, 0), 0);
    struct stat st;
    ck_assert_int_eq(stat(line, &st), 0);
    return st.st_size;
}

START_TEST(test_eviction_removes_least_recently_used)
{
    off_t a = age_new_entry(2, 1000000000); /* oldest */
    off_t b = age_new_entry(4, 1000001000);
    /* A hit on the oldest entry makes it the most recent one. */
    ck_assert_uint_eq(fresh_rows(2).disk_hits, 1);
    char cap[32];
    snprintf(cap, sizeof cap, "%lld", (long long)(a + b + a / 2));
    setenv("FUSE_JIT_CACHE_MAX_BYTES", cap, 1);
    fresh_rows(5); /* a third entry: the cap leaves room for two */
    unsetenv("FUSE_JIT_CACHE_MAX_BYTES");
    uint64_t entries = 0, bytes = 0;
    ck_assert_int_eq(fuse_cache_usage(cache_dir(), &entries, &bytes), FUSE_OK);
    ck_assert_uint_eq(entries, 2);
    ck_assert_uint_eq(fresh_rows(2).disk_hits, 1); /* touched: kept */
    ck_assert_uint_eq(fresh_rows(5).disk_hits, 1); /* newest: kept */
    fuse_stats s = fresh_rows(4);                  /* least recently used: evicted */
    ck_assert_uint_eq(s.disk_hits, 0);
    ck_assert_uint_eq(s.compiles, 1);
}
END_TEST

/* Several threads make runners of one program in one context at once. */
static void *thread_runner(void *arg)
{
    run_and_check(arg, NULL, 1);
    return NULL;
}

START_TEST(test_threads_share_the_memory_cache)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_runner, ctx), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    fuse_stats s = stats_of(ctx);
    ck_assert_uint_ge(s.compiles, 1);
    ck_assert_uint_eq(s.compiles + s.memory_hits, 4);
    run_and_check(ctx, NULL, 1); /* now certainly a hit */
    ck_assert_uint_eq(stats_of(ctx).compiles, s.compiles);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- the command line ---- */

static void write_input_file(void)
{
    fuse_input in = input_of(ROWS);
    int64_t shape[2] = {ROWS, 4};
    write_npy("x.npy", 2, shape, in.tensor.data);
    write_text("prog.fuse", PROGRAM);
}

START_TEST(test_cli_cache_commands)
{
    write_input_file();
    Result r = run_cli("cache", "dir", "--cache-dir", cache_dir(), NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, cache_dir()) != NULL, "dir: %s", r.out);
    result_free(&r);
    r = run_cli("run", "prog.fuse", "--cache-dir", cache_dir(), "--time", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.err, "time: compile") && strstr(r.err, "cache miss"), "%s", r.err);
    result_free(&r);
    r = run_cli("run", "prog.fuse", "--cache-dir", cache_dir(), "--time", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.err, "time: cache load") && strstr(r.err, "disk hit"), "%s", r.err);
    ck_assert_msg(strstr(r.out, "# Z shape=(3, 2)") != NULL, "%s", r.out);
    result_free(&r);
    r = run_cli("cache", "stats", "--cache-dir", cache_dir(), NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "entries: 1") != NULL, "stats: %s", r.out);
    result_free(&r);
    /* clear removes the cache's own temporaries, and nothing that is not the cache's */
    char own[4200], other[4200], notes[4200];
    snprintf(own, sizeof own, "%s/.%064d.fjo.tmpAbC123", cache_dir(), 0);
    snprintf(other, sizeof other, "%s/.tmp-mine", cache_dir());
    snprintf(notes, sizeof notes, "%s/notes.txt", cache_dir());
    write_file(own, "x", 1);
    write_file(other, "x", 1);
    write_file(notes, "x", 1);
    r = run_cli("cache", "clear", "--cache-dir", cache_dir(), NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "removed 1 entries") != NULL, "clear: %s", r.out);
    result_free(&r);
    struct stat st;
    ck_assert(stat(own, &st) != 0 && stat(other, &st) == 0 && stat(notes, &st) == 0);
    r = run_cli("cache", "stats", "--cache-dir", cache_dir(), NULL);
    ck_assert_msg(strstr(r.out, "entries: 0") != NULL, "stats: %s", r.out);
    result_free(&r);
    r = run_cli("cache", "nonsense", NULL);
    expect_exit(&r, 2);
    result_free(&r);
}
END_TEST

START_TEST(test_cli_environment_dir_and_no_cache)
{
    write_input_file();
    setenv("FUSE_JIT_CACHE_DIR", cache_dir(), 1);
    Result r = run_cli("cache", "dir", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, cache_dir()) != NULL, "dir: %s", r.out);
    result_free(&r);
    r = run_cli("run", "prog.fuse", "--no-cache", "--time", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.err, "cache miss") && !strstr(r.err, "entry written"), "%s", r.err);
    result_free(&r);
    r = run_cli("cache", "stats", NULL);
    ck_assert_msg(strstr(r.out, "entries: 0") != NULL, "stats: %s", r.out);
    result_free(&r);
}
END_TEST

/* ---- incremental compilation: group by group ---- */

/* Six groups (A, B, C, D, E, F); E's coefficient and F's projection vary. */
static const float INC_A[2][3] = {{1.0f, 2.0f, 0.5f}, {-1.0f, 0.0f, 3.0f}};
static const float INC_B[3][2] = {{0.5f, -1.0f}, {1.0f, 0.5f}, {0.0f, 1.0f}};

static char *inc_program(double e_coef, const char *extra)
{
    static const char fmt[] =
        "A[i,k] = const([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])\n"
        "B[k,j] = const([[0.5, -1.0], [1.0, 0.5], [0.0, 1.0]])\n"
        "C[i,j] = A[i,k] B[k,j]\n"
        "D[i,j] = relu(C[i,j])\n"
        "E[i] = %.1f D[i,j]\n"
        "F[j] max= C[i,j]\n"
        "%s"
        "export D\nexport E\nexport F\n";
    char *text = malloc(sizeof fmt + 256);
    ck_assert_ptr_nonnull(text);
    snprintf(text, sizeof fmt + 256, fmt, e_coef, extra);
    return text;
}

/* Runs the program in ctx; checks D, E (with e_coef), F and, when has_g, G = exp(C);
 * returns the counters' change. */
static fuse_stats inc_run(fuse_ctx *ctx, double e_coef, bool has_g)
{
    double c[2][2], d[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            c[i][j] = 0;
            for (int k = 0; k < 3; k++)
                c[i][j] += (double)INC_A[i][k] * INC_B[k][j];
            d[i][j] = c[i][j] > 0 ? c[i][j] : 0;
        }
    double want_d[4] = {d[0][0], d[0][1], d[1][0], d[1][1]};
    double want_e[2] = {e_coef * (d[0][0] + d[0][1]), e_coef * (d[1][0] + d[1][1])};
    double want_f[2] = {fmax(c[0][0], c[1][0]), fmax(c[0][1], c[1][1])};
    double want_g[4] = {exp(c[0][0]), exp(c[0][1]), exp(c[1][0]), exp(c[1][1])};
    char *text = inc_program(e_coef, has_g ? "G[i,j] = exp(C[i,j])\nexport G\n" : "");
    fuse_stats before = stats_of(ctx);
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_program_from_text(ctx, text, "inc.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1;
    fuse_status st = fuse_runner_new(prog, &cfg, NULL, 0, &run);
    ck_assert_msg(st == FUSE_OK, "runner: %s", fuse_ctx_error(ctx));
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    expect_close("D", fuse_outputs_find(out, "D")->data, want_d, 4);
    expect_close("E", fuse_outputs_find(out, "E")->data, want_e, 2);
    expect_close("F", fuse_outputs_find(out, "F")->data, want_f, 2);
    if (has_g)
        expect_close("G", fuse_outputs_find(out, "G")->data, want_g, 4);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    free(text);
    fuse_stats after = stats_of(ctx);
    return (fuse_stats){.compiles = after.compiles - before.compiles,
                        .memory_hits = after.memory_hits - before.memory_hits,
                        .groups_compiled = after.groups_compiled - before.groups_compiled,
                        .groups_cached = after.groups_cached - before.groups_cached};
}

START_TEST(test_changed_equation_recompiles_one_group)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    fuse_stats s = inc_run(ctx, 2.0, false); /* everything is new */
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.groups_compiled, 6);
    ck_assert_uint_eq(s.groups_cached, 0);
    s = inc_run(ctx, 3.0, false); /* E changed: only its group is compiled */
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.groups_compiled, 1);
    ck_assert_uint_eq(s.groups_cached, 5);
    ck_assert_uint_eq(s.memory_hits, 1); /* the five share the first object */
    /* a new equation renumbers the temporaries of the others: they are kept */
    s = inc_run(ctx, 3.0, true);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.groups_compiled, 1);
    ck_assert_uint_eq(s.groups_cached, 6);
    ck_assert_uint_eq(s.memory_hits, 2); /* objects of two programs in one runner */
    /* every group of these is known now: nothing is compiled */
    s = inc_run(ctx, 2.0, true);
    ck_assert_uint_eq(s.compiles, 0);
    ck_assert_uint_eq(s.groups_compiled, 0);
    ck_assert_uint_eq(s.groups_cached, 7);
    s = inc_run(ctx, 2.0, false); /* the first program: one whole object */
    ck_assert_uint_eq(s.compiles, 0);
    ck_assert_uint_eq(s.memory_hits, 1);
    ck_assert_uint_eq(s.groups_cached, 6);
    fuse_ctx_free(ctx);
}
END_TEST

/* A recursive component (previous-sweep buffers) next to a changed equation. */
static const char INC_TC[] =
    "Edge(x,y) = const([[0,1,0,0],[0,0,1,0],[0,0,0,1],[0,0,0,0]])\n"
    "Path(x,y) = Edge(x,y)\n"
    "Path(x,z) = Path(x,y) Edge(y,z)\n"
    "N[x] = %s Path(x,y)\n"
    "export Path\nexport N\n";

static void inc_tc_run(fuse_ctx *ctx, const char *coef, double scale)
{
    char text[512];
    snprintf(text, sizeof text, INC_TC, coef);
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_program_from_text(ctx, text, "tc.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1;
    cfg.mode = FUSE_MODE_FIXPOINT;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_OK);
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    /* the chain 0->1->2->3: x reaches every y > x */
    double path[16], n[4];
    for (int x = 0; x < 4; x++) {
        n[x] = scale * (3 - x);
        for (int y = 0; y < 4; y++)
            path[x * 4 + y] = y > x;
    }
    expect_close("Path", fuse_outputs_find(out, "Path")->data, path, 16);
    expect_close("N", fuse_outputs_find(out, "N")->data, n, 4);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
}

START_TEST(test_recursive_program_incremental)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    inc_tc_run(ctx, "1.0", 1.0);
    fuse_stats a = stats_of(ctx);
    inc_tc_run(ctx, "0.5", 0.5);
    fuse_stats b = stats_of(ctx);
    ck_assert_uint_eq(b.groups_compiled - a.groups_compiled, 1);
    ck_assert_uint_eq(b.groups_cached - a.groups_cached, a.groups_compiled - 1);
    fuse_ctx_free(ctx);
}
END_TEST

/* A partial compile stays in memory; the disk holds whole programs only. */
START_TEST(test_partial_objects_stay_in_memory)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    run_rows(ctx, cache_dir(), 0, 2);
    run_rows(ctx, cache_dir(), 0, 4); /* W's kernel is reused */
    fuse_stats s = stats_of(ctx);
    ck_assert_uint_eq(s.compiles, 2);
    ck_assert_uint_eq(s.disk_writes, 1);
    ck_assert_uint_eq(s.groups_cached, 1);
    uint64_t entries = 0, bytes = 0;
    ck_assert_int_eq(fuse_cache_usage(cache_dir(), &entries, &bytes), FUSE_OK);
    ck_assert_uint_eq(entries, 1);
    fuse_ctx_free(ctx);
    /* a fresh context compiles the 4-row program whole, and stores it */
    s = fresh_rows(4);
    ck_assert_uint_eq(s.compiles, 1);
    ck_assert_uint_eq(s.disk_writes, 1);
    ck_assert_uint_eq(fresh_rows(4).disk_hits, 1);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, scratch_setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_key_ignores_comments_and_spacing);
    tcase_add_test(tc, test_key_changes_with_meaning);
    tcase_add_test(tc, test_objects_load_side_by_side);
    tcase_add_test(tc, test_memory_hit_compiles_once);
    tcase_add_test(tc, test_two_live_runners_share_one_object);
    tcase_add_test(tc, test_disk_hit_in_fresh_context);
    tcase_add_loop_test(tc, test_bad_entries_are_rebuilt, 0, DAMAGE_COUNT);
    tcase_add_test(tc, test_two_processes_at_once);
    tcase_add_test(tc, test_size_cap_below_one_entry);
    tcase_add_test(tc, test_eviction_removes_least_recently_used);
    tcase_add_test(tc, test_threads_share_the_memory_cache);
    tcase_add_test(tc, test_cli_cache_commands);
    tcase_add_test(tc, test_cli_environment_dir_and_no_cache);
    tcase_add_test(tc, test_changed_equation_recompiles_one_group);
    tcase_add_test(tc, test_recursive_program_incremental);
    tcase_add_test(tc, test_partial_objects_stay_in_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cache_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
