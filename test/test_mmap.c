/*
 * test_mmap.c: large .npy sources read through a memory mapping (runtime/mmap.c,
 * SPEC §7). The threshold is lowered with FUSE_JIT_MMAP_MIN_BYTES so small files
 * count as large. Checked: which files are mapped (little-endian C-order of the
 * compiled shape) and which are left to the ordinary reader (small, big-endian,
 * Fortran order, another shape, unaligned data), the converted values, truncated
 * files (FUSE_E_IO naming the file, no SIGBUS) and whole programs through the API
 * and the CLI.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusejit.h"
#include "harness.h"
#include "runtime.h"

/* Writes a version-1 .npy: descr, fortran flag, shape (rank 1 or 2), `pad` extra
 * header spaces (to move the data offset), then nbytes of data. */
static void write_raw_npy(const char *name, const char *descr, bool fortran, int rank,
                          const int64_t *shape, int pad, const void *data, size_t nbytes)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (%lld,%s",
                     descr, fortran ? "True" : "False", (long long)shape[0],
                     rank == 1 ? ")" : "");
    if (rank == 2)
        n += snprintf(dict + n, sizeof dict - (size_t)n, " %lld)", (long long)shape[1]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, ", }");
    int hlen = n + pad + 1; /* spaces, then '\n' */
    int total = 10 + hlen;
    if (pad < 0) { /* pad to a multiple of 64, the way NumPy does */
        hlen = ((10 + n + 1 + 63) / 64) * 64 - 10;
        total = 10 + hlen;
    }
    unsigned char *buf = calloc(1, (size_t)total + nbytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memset(buf + 10, ' ', (size_t)hlen);
    memcpy(buf + 10, dict, (size_t)n);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, nbytes);
    FILE *f = fopen(spath(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, (size_t)total + nbytes, f), (size_t)total + nbytes);
    ck_assert_int_eq(fclose(f), 0);
    free(buf);
}

enum { R = 32, C = 48, N = R * C };

static void fill(double *v, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = (i % 97) * 0.25 - 7.0;
}

/* ---- io_npy_read_mapped ---- */

START_TEST(threshold_from_the_environment)
{
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
    ck_assert_uint_eq(io_mmap_min_bytes(), (uint64_t)16 << 20);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "4096", 1);
    ck_assert_uint_eq(io_mmap_min_bytes(), 4096);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "12abc", 1);
    ck_assert_uint_eq(io_mmap_min_bytes(), (uint64_t)16 << 20);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "-5", 1);
    ck_assert_uint_eq(io_mmap_min_bytes(), (uint64_t)16 << 20);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

START_TEST(large_files_are_mapped_and_converted)
{
    double v[N];
    fill(v, N);
    float f32[N];
    for (int i = 0; i < N; i++)
        f32[i] = (float)v[i];
    int64_t shape[2] = {R, C};
    write_raw_npy("f4.npy", "<f4", false, 2, shape, -1, f32, sizeof f32);
    write_raw_npy("f8.npy", "<f8", false, 2, shape, -1, v, sizeof v);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    float *dst = malloc(sizeof(float) * N);
    const char *files[2] = {"f4.npy", "f8.npy"};
    for (int k = 0; k < 2; k++) {
        bool is_mapped = false;
        char *err = NULL;
        memset(dst, 0, sizeof(float) * N);
        ck_assert_int_eq(io_npy_read_mapped(spath(files[k]), 2, shape, dst, false, &is_mapped, &err),
                         FUSE_OK);
        ck_assert_msg(is_mapped, "%s was not mapped", files[k]);
        for (int i = 0; i < N; i++)
            ck_assert_float_eq(dst[i], (float)v[i]);
    }
    /* Above the file's size: not mapped, nothing written. */
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "100000000", 1);
    bool is_mapped = true;
    memset(dst, 0, sizeof(float) * N);
    ck_assert_int_eq(io_npy_read_mapped(spath("f4.npy"), 2, shape, dst, false, &is_mapped, NULL),
                     FUSE_OK);
    ck_assert(!is_mapped);
    ck_assert_float_eq(dst[5], 0.0f);
    free(dst);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

START_TEST(other_layouts_take_the_ordinary_path)
{
    float f32[N];
    for (int i = 0; i < N; i++)
        f32[i] = (float)i;
    int64_t shape[2] = {R, C}, other[2] = {C, R};
    write_raw_npy("be.npy", ">f4", false, 2, shape, -1, f32, sizeof f32);
    write_raw_npy("fo.npy", "<f4", true, 2, shape, -1, f32, sizeof f32);
    write_raw_npy("odd.npy", "<f4", false, 2, shape, 1, f32, sizeof f32); /* offset % 4 != 0 */
    write_raw_npy("ok.npy", "<f4", false, 2, shape, -1, f32, sizeof f32);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    float *dst = calloc(N, sizeof(float));
    const char *names[3] = {"be.npy", "fo.npy", "odd.npy"};
    for (int k = 0; k < 3; k++) {
        bool is_mapped = true;
        ck_assert_int_eq(io_npy_read_mapped(spath(names[k]), 2, shape, dst, false, &is_mapped, NULL),
                         FUSE_OK);
        ck_assert_msg(!is_mapped, "%s was mapped", names[k]);
    }
    bool is_mapped = true;
    ck_assert_int_eq(io_npy_read_mapped(spath("ok.npy"), 2, other, dst, false, &is_mapped, NULL),
                     FUSE_OK);
    ck_assert(!is_mapped); /* another shape: the ordinary path reports it */
    ck_assert_int_eq(io_npy_read_mapped(spath("missing.npy"), 2, shape, dst, false, &is_mapped, NULL),
                     FUSE_OK);
    ck_assert(!is_mapped);
    for (int i = 0; i < N; i++)
        ck_assert_float_eq(dst[i], 0.0f);
    free(dst);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

START_TEST(truncated_large_file_is_an_io_error)
{
    float f32[N] = {0};
    int64_t shape[2] = {R, C};
    /* The header promises R x C floats; only half are there. */
    write_raw_npy("cut.npy", "<f4", false, 2, shape, -1, f32, sizeof f32 / 2);
    write_text("garbage.npy", "this is not an npy file, but it is long enough to be mapped");
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "16", 1);
    float *dst = calloc(N, sizeof(float));
    bool is_mapped = true;
    char *err = NULL;
    ck_assert_int_eq(io_npy_read_mapped(spath("cut.npy"), 2, shape, dst, false, &is_mapped, &err),
                     FUSE_E_IO);
    ck_assert(!is_mapped);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, "cut.npy") && strstr(err, "truncated"), "message: %s", err);
    free(err);
    err = NULL;
    ck_assert_int_eq(io_npy_read_mapped(spath("garbage.npy"), 2, shape, dst, false, &is_mapped, &err),
                     FUSE_E_IO);
    ck_assert_msg(err && strstr(err, "garbage.npy"), "message: %s", err ? err : "(none)");
    free(err);
    free(dst);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

/* ---- whole programs ---- */

static const char PROG[] = "X[i,j] = \"x.npy\"\nS[i] = X[i,j]\nexport S\n";

START_TEST(program_reads_a_mapped_source)
{
    double v[N];
    fill(v, N);
    int64_t shape[2] = {R, C};
    write_raw_npy("x.npy", "<f8", false, 2, shape, -1, v, sizeof v);
    write_text("p.fuse", PROG);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_file(ctx, spath("p.fuse"), &prog), FUSE_OK);
    ck_assert_msg(fuse_runner_new(prog, NULL, NULL, 0, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    for (int pass = 0; pass < 2; pass++) { /* every run maps the file again */
        ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
        const fuse_tensor *s = fuse_outputs_find(out, "S");
        ck_assert_ptr_nonnull(s);
        for (int i = 0; i < R; i++) {
            double want = 0;
            for (int j = 0; j < C; j++)
                want += (float)v[i * C + j];
            ck_assert_float_eq_tol(((const float *)s->data)[i], want, 1e-3);
        }
        fuse_outputs_free(out);
        out = NULL;
    }
    /* The file shrinks after compiling: the run fails cleanly. */
    write_raw_npy("x.npy", "<f8", false, 2, shape, -1, v, sizeof v / 3);
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_E_IO);
    ck_assert_msg(strstr(fuse_ctx_error(ctx), "x.npy") &&
                      strstr(fuse_ctx_error(ctx), "after its header"), /* the mapped path */
                  "message: %s", fuse_ctx_error(ctx));
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

START_TEST(cli_truncated_large_source_exits_1)
{
    float f32[N] = {0};
    int64_t shape[2] = {R, C};
    write_raw_npy("x.npy", "<f4", false, 2, shape, -1, f32, sizeof f32 - 4);
    write_text("p.fuse", PROG);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    Result r = run_cli("run", "p.fuse", NULL);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
    expect_exit(&r, 1);
    ck_assert_msg(strstr(r.err, "x.npy") && strstr(r.err, "truncated"), "stderr: %s", r.err);
    result_free(&r);
}
END_TEST

static Suite *mmap_suite(void)
{
    Suite *s = suite_create("mmap");
    TCase *tc = tcase_create("mmap");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, scratch_setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, threshold_from_the_environment);
    tcase_add_test(tc, large_files_are_mapped_and_converted);
    tcase_add_test(tc, other_layouts_take_the_ordinary_path);
    tcase_add_test(tc, truncated_large_file_is_an_io_error);
    tcase_add_test(tc, program_reads_a_mapped_source);
    tcase_add_test(tc, cli_truncated_large_source_exits_1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mmap_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
