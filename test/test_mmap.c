/*
 * test_mmap.c: large .npy sources read through a memory mapping (runtime/mmap.c,
 * SPEC §7). The threshold is lowered with FUSE_JIT_MMAP_MIN_BYTES so small files
 * count as large. Checked: which files are mapped (little-endian C-order of the
 * compiled shape) and which are left to the ordinary reader (small, big-endian,
 * Fortran order, another shape, unaligned data), the converted values, truncated
 * files (FUSE_E_IO naming the file, no SIGBUS), files truncated while they are
 * read (the SIGBUS guard: zeros instead of a crash, and an error; a SIGBUS that is
 * not ours still reaches the previous handler) and whole programs through the API
 * and the CLI.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- a file truncated while it is read (the SIGBUS guard) ---- */

/* Opens, sizes and maps scratch file `name` read-only; *len is its size. */
static const unsigned char *map_file(const char *name, int *fd, size_t *len)
{
    *fd = open(spath(name), O_RDWR);
    ck_assert_int_ge(*fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(*fd, &sb), 0);
    *len = (size_t)sb.st_size;
    void *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, *fd, 0);
    ck_assert(map != MAP_FAILED);
    return map;
}

START_TEST(guarded_mapping_survives_truncation)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t n = (size_t)page * 16;
    unsigned char *ones = malloc(n);
    memset(ones, 1, n);
    write_file(spath("pages.bin"), ones, n);
    free(ones);
    int fd;
    size_t len;
    const volatile unsigned char *map = map_file("pages.bin", &fd, &len);
    ck_assert_uint_eq(len, n);
    /* Untouched: unguarding reports nothing lost. */
    int slot = io_mmap_guard((const void *)map, len);
    ck_assert_int_ge(slot, 0);
    ck_assert_uint_eq(map[n - 1], 1);
    ck_assert(!io_mmap_unguard(slot));
    /* Cut to one page: the pages after it read as zeros, and unguarding says so. */
    slot = io_mmap_guard((const void *)map, len);
    ck_assert_int_ge(slot, 0);
    ck_assert_int_eq(ftruncate(fd, page), 0);
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += map[i];
    ck_assert_uint_eq(sum, (size_t)page); /* the first page's ones, then zeros */
    ck_assert(io_mmap_unguard(slot));
    munmap((void *)map, len);
    close(fd);
}
END_TEST

static sigjmp_buf foreign_jump;
static volatile sig_atomic_t foreign_calls;

static void foreign_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig, (void)si, (void)uctx;
    foreign_calls++;
    siglongjmp(foreign_jump, 1);
}

/* A SIGBUS outside every guarded mapping reaches the handler installed before. */
START_TEST(foreign_sigbus_is_chained)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = foreign_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *ones = malloc((size_t)page * 4);
    memset(ones, 1, (size_t)page * 4);
    write_file(spath("a.bin"), ones, (size_t)page * 4);
    write_file(spath("b.bin"), ones, (size_t)page * 4);
    free(ones);
    int fa, fb;
    size_t la, lb;
    const volatile unsigned char *a = map_file("a.bin", &fa, &la);
    const volatile unsigned char *b = map_file("b.bin", &fb, &lb);
    int slot = io_mmap_guard((const void *)a, la); /* installs the guard over ours */
    ck_assert_int_ge(slot, 0);
    ck_assert_int_eq(ftruncate(fb, 0), 0);
    volatile unsigned char got = 0;
    if (sigsetjmp(foreign_jump, 1) == 0)
        got = b[(size_t)page * 2]; /* b is not guarded */
    ck_assert_int_eq(foreign_calls, 1);
    ck_assert_uint_eq(got, 0);
    ck_assert(!io_mmap_unguard(slot));
    munmap((void *)a, la);
    munmap((void *)b, lb);
    close(fa);
    close(fb);
}
END_TEST

/* ...and with no handler before it, kills the process as SIGBUS always did. */
START_TEST(foreign_sigbus_still_kills)
{
    signal(SIGBUS, SIG_DFL);
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *ones = malloc((size_t)page * 4);
    memset(ones, 1, (size_t)page * 4);
    write_file(spath("b.bin"), ones, (size_t)page * 4);
    free(ones);
    int fd;
    size_t len;
    const volatile unsigned char *b = map_file("b.bin", &fd, &len);
    int slot = io_mmap_guard(&fd, sizeof fd); /* any other region: installs the guard */
    ck_assert_int_ge(slot, 0);
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    volatile unsigned char got = b[(size_t)page * 2];
    ck_abort_msg("read %u past the end of a truncated file without a signal", got);
}
END_TEST

START_TEST(conversion_of_a_file_truncated_while_read_fails)
{
    double v[N];
    fill(v, N);
    int64_t shape[2] = {R, C};
    write_raw_npy("x.npy", "<f8", false, 2, shape, -1, v, sizeof v);
    int fd;
    size_t len;
    const unsigned char *map = map_file("x.npy", &fd, &len);
    ck_assert_int_eq(ftruncate(fd, 4096), 0); /* after mapping: the header survives */
    float *dst = calloc(N, sizeof(float));
    bool is_mapped = false;
    char *err = NULL;
    ck_assert_int_eq(io_npy_convert_mapping(map, len, fd, spath("x.npy"), 2, shape, dst, false,
                                            &is_mapped, &err),
                     FUSE_E_IO);
    char want[4400];
    snprintf(want, sizeof want, "%s: truncated while being read (was %zu bytes, now 4096)",
             spath("x.npy"), len);
    ck_assert_msg(err && strcmp(err, want) == 0, "want '%s', got '%s'", want,
                  err ? err : "(none)");
    free(err);
    /* The same mapping of a file left alone converts every value. */
    munmap((void *)map, len);
    close(fd);
    write_raw_npy("x.npy", "<f8", false, 2, shape, -1, v, sizeof v);
    map = map_file("x.npy", &fd, &len);
    err = NULL;
    ck_assert_int_eq(io_npy_convert_mapping(map, len, fd, spath("x.npy"), 2, shape, dst, false,
                                            &is_mapped, &err),
                     FUSE_OK);
    ck_assert(is_mapped);
    for (int i = 0; i < N; i++)
        ck_assert_float_eq(dst[i], (float)v[i]);
    munmap((void *)map, len);
    close(fd);
    free(dst);
}
END_TEST

/* ---- used in place (io_npy_map_in_place) ---- */

/* A float32 file of the compiled shape is mapped for use in place (its data
 * 64-byte aligned, as NumPy writes it); other dtypes and unaligned data are
 * not; a boolean tensor's file only when it holds nothing but 0.0 and 1.0. */
START_TEST(float32_files_are_used_in_place)
{
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    float f[N];
    double v[N];
    fill(v, N);
    for (int i = 0; i < N; i++)
        f[i] = (float)v[i];
    int64_t shape[2] = {R, C};
    write_raw_npy("f4.npy", "<f4", false, 2, shape, -1, f, sizeof f);
    write_raw_npy("f8.npy", "<f8", false, 2, shape, -1, v, sizeof v);
    write_raw_npy("odd.npy", "<f4", false, 2, shape, 4, f, sizeof f); /* offset % 64 != 0 */
    IoMapped m;
    const float *data = NULL;
    bool is_mapped = false;
    char *err = NULL;
    ck_assert_int_eq(io_npy_map_in_place(spath("f4.npy"), 2, shape, false, &m, &data, &is_mapped,
                                         &err), FUSE_OK);
    ck_assert(is_mapped && data && (uintptr_t)data % 64 == 0);
    ck_assert(memcmp(data, f, sizeof f) == 0);
    ck_assert(io_npy_mapped_intact(&m));
    io_npy_unmap(&m);
    ck_assert_ptr_null(m.map);
    const char *refused[] = {"f8.npy", "odd.npy"};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(io_npy_map_in_place(spath(refused[i]), 2, shape, false, &m, &data,
                                             &is_mapped, &err), FUSE_OK);
        ck_assert_msg(!is_mapped && !data && !m.map, "%s", refused[i]);
    }
    float b[N]; /* a relation's file: 0 and 1, then a 2 and then a -0.0 in it */
    for (int i = 0; i < N; i++)
        b[i] = (float)(i % 3 == 0);
    write_raw_npy("b.npy", "<f4", false, 2, shape, -1, b, sizeof b);
    ck_assert_int_eq(io_npy_map_in_place(spath("b.npy"), 2, shape, true, &m, &data, &is_mapped,
                                         &err), FUSE_OK);
    ck_assert(is_mapped);
    io_npy_unmap(&m);
    const float odd[2] = {2.0f, -0.0f};
    for (int k = 0; k < 2; k++) {
        b[N - 1 - k] = odd[k];
        write_raw_npy("b.npy", "<f4", false, 2, shape, -1, b, sizeof b);
        ck_assert_int_eq(io_npy_map_in_place(spath("b.npy"), 2, shape, true, &m, &data,
                                             &is_mapped, &err), FUSE_OK);
        ck_assert(!is_mapped && !m.map);
        /* as a plain float32 tensor it is still used as it is */
        ck_assert_int_eq(io_npy_map_in_place(spath("b.npy"), 2, shape, false, &m, &data,
                                             &is_mapped, &err), FUSE_OK);
        ck_assert(is_mapped);
        io_npy_unmap(&m);
    }
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

/* A file cut short after it was mapped in place: the pages past the cut read
 * as zeros (no SIGBUS) and the mapping says it is no longer intact. */
START_TEST(in_place_mapping_notices_truncation)
{
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    enum { RR = 64, CC = 1024 }; /* 256 KiB: many pages */
    float *f = malloc((size_t)RR * CC * sizeof *f);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < RR * CC; i++)
        f[i] = 1.0f;
    int64_t shape[2] = {RR, CC};
    write_raw_npy("t.npy", "<f4", false, 2, shape, -1, f, (size_t)RR * CC * sizeof *f);
    free(f);
    IoMapped m;
    const float *data = NULL;
    bool is_mapped = false;
    char *err = NULL;
    ck_assert_int_eq(io_npy_map_in_place(spath("t.npy"), 2, shape, true, &m, &data, &is_mapped,
                                         &err), FUSE_OK);
    ck_assert(is_mapped);
    ck_assert_int_eq(truncate(spath("t.npy"), 4096), 0);
    const volatile float *v = data;
    double sum = 0;
    for (int i = 0; i < RR * CC; i++)
        sum += v[i];
    ck_assert(sum < (double)RR * CC); /* zeros past the cut */
    ck_assert(!io_npy_mapped_intact(&m));
    io_npy_unmap(&m);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

/* A relation read from a large file through a program: a file of 0 and 1 (used
 * in place) and one with other non-zero values (thresholded into the tensor's
 * buffer) give the same closure, and each run reads the file as it is then. */
START_TEST(program_relation_in_place_or_thresholded)
{
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    enum { G = 40 };
    float e[G * G] = {0};
    for (int i = 0; i + 1 < G; i++)
        e[i * G + i + 1] = 1.0f; /* a path 0 -> 1 -> ... -> G-1 */
    int64_t shape[2] = {G, G};
    write_raw_npy("e.npy", "<f4", false, 2, shape, -1, e, sizeof e);
    write_text("tc.fuse", "Edge(x,y) = \"e.npy\"\nPath(x,y) = Edge(x,y)\n"
                          "Path(x,z) = Path(x,y) Edge(y,z)\nexport Path\n");
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_file(ctx, spath("tc.fuse"), &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.mode = FUSE_MODE_FIXPOINT;
    cfg.strategy = FUSE_STRATEGY_SEMI_NAIVE;
    cfg.max_iters = 2 * G;
    ck_assert_msg(fuse_runner_new(prog, &cfg, NULL, 0, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) { /* other non-zero values: thresholded, the same relation */
            for (int i = 0; i + 1 < G; i++)
                e[i * G + i + 1] = 0.5f + (float)i;
            write_raw_npy("e.npy", "<f4", false, 2, shape, -1, e, sizeof e);
        }
        if (pass == 2) { /* the path cut after node G/2: what the next run reads */
            for (int i = 0; i + 1 < G; i++)
                e[i * G + i + 1] = i == G / 2 ? 0.0f : 1.0f;
            write_raw_npy("e.npy", "<f4", false, 2, shape, -1, e, sizeof e);
        }
        fuse_outputs *out = NULL;
        ck_assert_msg(fuse_runner_run(run, NULL, 0, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
        const float *p = fuse_outputs_find(out, "Path")->data;
        for (int x = 0; x < G; x++)
            for (int z = 0; z < G; z++) {
                bool reach = z > x && (pass < 2 || x > G / 2 || z <= G / 2);
                ck_assert_msg(p[x * G + z] == (reach ? 1.0f : 0.0f), "pass %d Path[%d,%d] = %g",
                              pass, x, z, p[x * G + z]);
            }
        fuse_outputs_free(out);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

/* Truncates the file a little after the run starts, as another process would. */
typedef struct Cutter {
    const char *path;
    unsigned delay_us;
} Cutter;

static void *cut_later(void *arg)
{
    const Cutter *c = arg;
    usleep(c->delay_us);
    ck_assert_int_eq(truncate(c->path, 4096), 0);
    return NULL;
}

/* Runs over a 32 MiB mapped source while another thread truncates it: every run
 * either finishes first or fails naming the file; the process never dies. */
START_TEST(runs_racing_a_truncation_never_crash)
{
    enum { RR = 2048, CC = 4096 };
    int64_t shape[2] = {RR, CC};
    char dummy = 0;
    write_raw_npy("x.npy", "<f4", false, 2, shape, -1, &dummy, 0);
    struct stat sb;
    ck_assert_int_eq(stat(spath("x.npy"), &sb), 0);
    off_t full = sb.st_size + (off_t)RR * CC * 4;
    ck_assert_int_eq(truncate(spath("x.npy"), full), 0); /* zeros, without writing them */
    write_text("p.fuse", PROG);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_file(ctx, spath("p.fuse"), &prog), FUSE_OK);
    ck_assert_msg(fuse_runner_new(prog, NULL, NULL, 0, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    int ok = 0, cut = 0, cut_mid_read = 0;
    for (int k = 0; k < 12; k++) {
        ck_assert_int_eq(truncate(spath("x.npy"), full), 0);
        Cutter c = {spath("x.npy"), (unsigned)(k % 6) * 15000};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, cut_later, &c), 0);
        fuse_outputs *out = NULL;
        fuse_status st = fuse_runner_run(run, NULL, 0, &out);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        if (st == FUSE_OK) {
            const fuse_tensor *s = fuse_outputs_find(out, "S");
            ck_assert_ptr_nonnull(s);
            for (int i = 0; i < RR; i++)
                ck_assert_float_eq(((const float *)s->data)[i], 0.0f);
            ok++;
        } else {
            ck_assert_int_eq(st, FUSE_E_IO);
            const char *msg = fuse_ctx_error(ctx);
            ck_assert_msg(strstr(msg, "x.npy") && strstr(msg, "truncated"), "message: %s", msg);
            cut++;
            cut_mid_read += strstr(msg, "while being read") != NULL;
        }
        fuse_outputs_free(out);
    }
    printf("racing truncation: %d runs finished first, %d failed (%d mid-read)\n", ok, cut,
           cut_mid_read);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
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
    tcase_add_test(tc, guarded_mapping_survives_truncation);
    tcase_add_test(tc, foreign_sigbus_is_chained);
    tcase_add_test_raise_signal(tc, foreign_sigbus_still_kills, SIGBUS);
    tcase_add_test(tc, conversion_of_a_file_truncated_while_read_fails);
    tcase_add_test(tc, runs_racing_a_truncation_never_crash);
    tcase_add_test(tc, float32_files_are_used_in_place);
    tcase_add_test(tc, in_place_mapping_notices_truncation);
    tcase_add_test(tc, program_relation_in_place_or_thresholded);
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
