/*
 * harness.c: shared helpers of the suites that run the fuse-jit binary: a scratch
 * directory per test, files in and out (.npy/.npz through the runtime), and
 * running `fuse-jit ARGS...` with stdout and stderr captured.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "runtime.h"

enum { MAX_ARGS = 32 };

/* Every test runs in its own scratch directory under one root per test case.
 * The root is made and removed by an unchecked fixture (in the parent process, so
 * it is removed even when a test fails); Check forks per test, so each test sets
 * its own copy of `scratch` in the checked fixture. */
char scratch_root[4096];
char scratch[4200];

void root_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch_root, sizeof scratch_root, "%s/fuse-cli-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(scratch_root) != NULL, "mkdtemp %s failed", scratch_root);
    /* ctest sets a cache directory in the build tree; a suite run by hand must not
     * write to the user's cache either */
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", scratch_root);
    setenv("FUSE_JIT_CACHE_DIR", cache, 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void root_teardown(void)
{
    nftw(scratch_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void scratch_setup(void)
{
    snprintf(scratch, sizeof scratch, "%s/test-XXXXXX", scratch_root);
    ck_assert_msg(mkdtemp(scratch) != NULL, "mkdtemp %s failed", scratch);
}

/* path of a file in the scratch directory, in a static buffer per slot. */
const char *spath(const char *name)
{
    static char buf[4][4400];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", scratch, name);
    return buf[slot];
}

/* ---- files ---- */

/* Whole file as a NUL-terminated string; "" when it cannot be read. */
char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n = 0, cap = 4096;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    if (f) {
        size_t k;
        while ((k = fread(s + n, 1, cap - n - 1, f)) > 0) {
            n += k;
            if (cap - n - 1 == 0) {
                s = realloc(s, cap *= 2);
                ck_assert_ptr_nonnull(s);
            }
        }
        fclose(f);
    }
    s[n] = '\0';
    return s;
}

void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

void write_text(const char *name, const char *text)
{
    FILE *f = fopen(spath(name), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

bool file_exists(const char *name)
{
    struct stat st;
    return stat(spath(name), &st) == 0;
}

void write_npy(const char *name, int rank, const int64_t *shape, const float *data)
{
    fuse_tensor t = {.dtype = FUSE_F32, .rank = rank, .data = (void *)data};
    for (int a = 0; a < rank; a++)
        t.shape[a] = shape[a];
    char *err = NULL;
    fuse_status st = io_npy_write(spath(name), &t, &err);
    ck_assert_msg(st == FUSE_OK, "writing %s: %s", name, err ? err : "?");
    free(err);
}

/* Checks rank and shape of a tensor read back, and returns its values as
 * float32 (malloc'd); frees the tensor's data. */
float *take_f32(fuse_tensor *t, const char *what, int rank, const int64_t *shape)
{
    ck_assert_msg(t->rank == rank, "%s: rank %d, want %d", what, t->rank, rank);
    int64_t n = 1;
    for (int a = 0; a < rank; a++) {
        ck_assert_msg(t->shape[a] == shape[a], "%s: axis %d has size %lld, want %lld", what,
                      a, (long long)t->shape[a], (long long)shape[a]);
        n *= shape[a];
    }
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    io_convert_to_f32(t->dtype, t->data, v, n);
    free(t->data);
    return v;
}

float *read_npy(const char *name, int rank, const int64_t *shape)
{
    fuse_tensor t;
    char *err = NULL;
    fuse_status st = io_npy_read(spath(name), &t, &err);
    ck_assert_msg(st == FUSE_OK, "reading %s: %s", name, err ? err : "?");
    free(err);
    return take_f32(&t, name, rank, shape);
}

float *read_member(const char *npz, const char *member, int rank, const int64_t *shape)
{
    fuse_tensor t;
    char *err = NULL;
    fuse_status st = io_npz_read(spath(npz), member, NULL, &t, &err);
    ck_assert_msg(st == FUSE_OK, "reading %s member %s: %s", npz, member, err ? err : "?");
    free(err);
    return take_f32(&t, member, rank, shape);
}

/* Deterministic values in [lo, hi). */
void fill_random(float *x, int64_t n, unsigned seed, float lo, float hi)
{
    unsigned s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)(s >> 8) / 16777216.0f;
    }
}

void expect_close(const char *what, const float *got, const double *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-4 + 1e-4 * fabs(want[i]),
                      "%s[%lld]: got %.8g, want %.8g", what, (long long)i, got[i], want[i]);
}

/* ---- running fuse-jit ---- */

void result_free(Result *r)
{
    free(r->out);
    free(r->err);
}

/* Child side: stdin from /dev/null, stdout/stderr to files, exec the binary. */
static void exec_child(char **argv)
{
    int in = open("/dev/null", O_RDONLY);
    int out = open(spath("cli.stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(spath("cli.stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || chdir(scratch) != 0)
        _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(argv[0], argv);
    _exit(127);
}

/* Runs `BIN ARGS...` (a NULL-terminated list) in the scratch directory. */
Result run_tool_va(const char *bin, const char *first, va_list ap)
{
    char *argv[MAX_ARGS] = {(char *)bin};
    int argc = 1;
    for (const char *a = first; a && argc < MAX_ARGS - 1; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork failed");
    if (pid == 0)
        exec_child(argv);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    Result r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
    r.out = slurp(spath("cli.stdout"));
    r.err = slurp(spath("cli.stderr"));
    return r;
}

/* Runs `fuse-jit ARGS...` (a NULL-terminated list) in the scratch directory. */
Result run_cli(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    Result r = run_tool_va(FUSE_JIT_BIN, first, ap);
    va_end(ap);
    return r;
}

void expect_exit(const Result *r, int code)
{
    ck_assert_msg(r->code == code, "exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r->code, code,
                  r->out, r->err);
}

/* Writes prog.fuse and runs it with --out FILE; expects success. */
void run_program(const char *text, const char *out)
{
    write_text("prog.fuse", text);
    Result r = run_cli("run", "prog.fuse", "--out", out, NULL);
    expect_exit(&r, 0);
    result_free(&r);
}

struct TCase *harness_case(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, scratch_setup, NULL);
    tcase_set_timeout(tc, 120);
    return tc;
}
