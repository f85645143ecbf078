/*
 * test_runtime.c: Check suite for the runtime's tensors and file formats: dtype
 * facts and conversions (float16 bit patterns and rounding by hand), .npy (every
 * dtype, ranks 0-4, versions 1-3, Fortran order, big-endian, every malformed case,
 * refused non-numeric dtypes), .npz (libzip; member choice, stored
 * and deflated members, failed writes), .json/.jsonl (read back with jansson) and
 * the atomic file helpers. Every test works in its own mkdtemp directory, removed
 * afterwards.
 */
#define _XOPEN_SOURCE 700

#include "harness.h"
#include "runtime.h"

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

/* ---- scratch directory and helpers ---- */


/* scratch/name in one of a few rotating static buffers. */
static const char *path_in(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", scratch, name);
    return b;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Entries of a directory other than . and ..; *has_tmp if any looks temporary. */
static int count_entries(const char *dir, bool *has_tmp)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    *has_tmp = false;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (strstr(e->d_name, "tmp") || strstr(e->d_name, ".zip."))
            *has_tmp = true;
    }
    closedir(d);
    return n;
}

/* A tensor of the given dtype and shape with deterministic pseudo-random bytes
 * (bool: 0/1). Data is malloc'd. */
static fuse_tensor make_tensor(fuse_dtype dt, int rank, const int64_t *shape, uint32_t seed)
{
    fuse_tensor t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++)
        t.shape[i] = shape[i];
    size_t n = (size_t)io_shape_count(rank, shape) * fuse_dtype_size(dt);
    uint8_t *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = dt == FUSE_BOOL ? (uint8_t)((x >> 16) & 1) : (uint8_t)(x >> 16);
    }
    t.data = p;
    return t;
}

static void assert_tensors_equal(const fuse_tensor *a, const fuse_tensor *b)
{
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_int_eq(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++)
        ck_assert_int_eq(a->shape[i], b->shape[i]);
    size_t n = (size_t)io_shape_count(a->rank, a->shape) * fuse_dtype_size(a->dtype);
    ck_assert_int_eq(memcmp(a->data, b->data, n), 0);
}

/* Asserts an error status and that the message names `name`; frees the message. */
static void assert_error_names(fuse_status st, fuse_status want, char *err, const char *name)
{
    ck_assert_int_eq(st, want);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, name) != NULL, "message '%s' does not name '%s'", err, name);
    free(err);
}

/* A hand-built .npy image: magic, version major.0, header `dict` + '\n', data. */
static uint8_t *build_npy(int major, const char *dict, const void *data, size_t ndata,
                          size_t *n)
{
    size_t hlen = strlen(dict) + 1, prefix = major == 1 ? 10 : 12;
    uint8_t *b = malloc(prefix + hlen + ndata + 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + prefix, dict, hlen - 1);
    b[prefix + hlen - 1] = '\n';
    if (ndata)
        memcpy(b + prefix + hlen, data, ndata);
    *n = prefix + hlen + ndata;
    return b;
}

/* Reads a hand-built image both from memory and from a file; returns the status
 * of the file read (they must agree) and leaves the file read's result in *out. */
static fuse_status read_both(const uint8_t *img, size_t n, const char *name, fuse_tensor *out,
                             char **err)
{
    fuse_tensor m = {0};
    char *merr = NULL;
    fuse_status sm = io_npy_read_mem(img, n, name, &m, &merr);
    free(m.data);
    free(merr);
    write_file(path_in(name), img, n);
    fuse_status sf = io_npy_read(path_in(name), out, err);
    ck_assert_int_eq(sm, sf);
    return sf;
}

/* ---- tensor.c ---- */

START_TEST(test_tensor_dtype_info)
{
    static const size_t sizes[FUSE_DTYPE_COUNT] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 2};
    static const char *names[FUSE_DTYPE_COUNT] = {"float32", "float64", "int8",  "int16",
                                                  "int32",   "int64",   "uint8", "uint16",
                                                  "uint32",  "uint64",  "bool",  "float16",
                                                  "bfloat16"};
    for (int i = 0; i < FUSE_DTYPE_COUNT; i++) {
        ck_assert_uint_eq(fuse_dtype_size((fuse_dtype)i), sizes[i]);
        ck_assert_str_eq(fuse_dtype_name((fuse_dtype)i), names[i]);
    }
    ck_assert_uint_eq(fuse_dtype_size(FUSE_DTYPE_COUNT), 0);
    ck_assert_uint_eq(fuse_dtype_size((fuse_dtype)-1), 0);
    ck_assert_ptr_nonnull(fuse_dtype_name((fuse_dtype)99));
}
END_TEST

START_TEST(test_tensor_alloc_aligned)
{
    size_t sizes[] = {0, 1, 63, 64, 65, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint8_t *p = io_alloc_aligned(sizes[k]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % IO_ALIGN, 0);
        for (size_t i = 0; i < sizes[k]; i++)
            ck_assert_uint_eq(p[i], 0);
        io_free_aligned(p);
    }
    ck_assert_ptr_null(io_alloc_aligned(SIZE_MAX - 10));
    free(io_alloc_aligned(100)); /* documented: plain free() works too */
    io_free_aligned(NULL);
}
END_TEST

START_TEST(test_tensor_shape_count)
{
    int64_t s3[] = {2, 3, 4}, s0[] = {5, 0, 7}, neg[] = {3, -1};
    int64_t big[] = {INT64_C(1) << 32, INT64_C(1) << 32};
    int64_t edge[] = {INT64_C(1) << 31, INT64_C(1) << 31};
    ck_assert_int_eq(io_shape_count(0, NULL), 1);
    ck_assert_int_eq(io_shape_count(3, s3), 24);
    ck_assert_int_eq(io_shape_count(3, s0), 0);
    ck_assert_int_eq(io_shape_count(2, neg), -1);
    ck_assert_int_eq(io_shape_count(2, big), -1);
    ck_assert_int_eq(io_shape_count(2, edge), INT64_C(1) << 62);
    ck_assert_int_eq(io_shape_count(FUSE_MAX_RANK + 1, s3), -1);
}
END_TEST

START_TEST(test_tensor_convert_to_f32)
{
    float out[4];
    const double f64[] = {1.5, -2.25, 1e10, 0.1};
    io_convert_to_f32(FUSE_F64, f64, out, 4);
    ck_assert_float_eq(out[0], 1.5f);
    ck_assert_float_eq(out[2], 1e10f);
    ck_assert_float_eq(out[3], 0.1f);
    const int8_t i8[] = {-128, 127, 0, -1};
    io_convert_to_f32(FUSE_I8, i8, out, 4);
    ck_assert_float_eq(out[0], -128.0f);
    ck_assert_float_eq(out[3], -1.0f);
    const int16_t i16[] = {-32768, 300};
    io_convert_to_f32(FUSE_I16, i16, out, 2);
    ck_assert_float_eq(out[0], -32768.0f);
    const int32_t i32[] = {-100000, 16777216};
    io_convert_to_f32(FUSE_I32, i32, out, 2);
    ck_assert_float_eq(out[1], 16777216.0f);
    const int64_t i64[] = {-5, INT64_C(1) << 40};
    io_convert_to_f32(FUSE_I64, i64, out, 2);
    ck_assert_float_eq(out[1], 1099511627776.0f);
    const uint8_t u8[] = {255, 0};
    io_convert_to_f32(FUSE_U8, u8, out, 2);
    ck_assert_float_eq(out[0], 255.0f);
    const uint16_t u16[] = {65535};
    io_convert_to_f32(FUSE_U16, u16, out, 1);
    ck_assert_float_eq(out[0], 65535.0f);
    const uint32_t u32[] = {4000000000u};
    io_convert_to_f32(FUSE_U32, u32, out, 1);
    ck_assert_float_eq(out[0], 4e9f);
    const uint64_t u64[] = {UINT64_C(1) << 63};
    io_convert_to_f32(FUSE_U64, u64, out, 1);
    ck_assert_float_eq(out[0], 9223372036854775808.0f);
    const uint8_t b[] = {0, 1, 2};
    io_convert_to_f32(FUSE_BOOL, b, out, 3);
    ck_assert_float_eq(out[0], 0.0f);
    ck_assert_float_eq(out[1], 1.0f);
    ck_assert_float_eq(out[2], 1.0f);
    const float f32[] = {-0.0f, 3.75f};
    io_convert_to_f32(FUSE_F32, f32, out, 2);
    ck_assert_float_eq(out[1], 3.75f);
}
END_TEST

START_TEST(test_tensor_from_f32_saturates)
{
    const float src[] = {1.9f, -1.9f, 300.0f, -300.0f, NAN, INFINITY, -INFINITY, 0.0f};
    int64_t shape[] = {8};
    fuse_tensor t;
    ck_assert_int_eq(io_tensor_from_f32(FUSE_I8, 1, shape, src, &t), FUSE_OK);
    const int8_t want8[] = {1, -1, 127, -128, 0, 127, -128, 0};
    ck_assert_int_eq(memcmp(t.data, want8, 8), 0);
    ck_assert_uint_eq((uintptr_t)t.data % IO_ALIGN, 0);
    free(t.data);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_U8, 1, shape, src, &t), FUSE_OK);
    const uint8_t wantu8[] = {1, 0, 255, 0, 0, 255, 0, 0};
    ck_assert_int_eq(memcmp(t.data, wantu8, 8), 0);
    free(t.data);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_I64, 1, shape, src, &t), FUSE_OK);
    ck_assert_int_eq(((int64_t *)t.data)[2], 300);
    ck_assert_int_eq(((int64_t *)t.data)[5], INT64_MAX);
    ck_assert_int_eq(((int64_t *)t.data)[6], INT64_MIN);
    free(t.data);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_U64, 1, shape, src, &t), FUSE_OK);
    ck_assert_uint_eq(((uint64_t *)t.data)[5], UINT64_MAX);
    free(t.data);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_BOOL, 1, shape, src, &t), FUSE_OK);
    const uint8_t wantb[] = {1, 1, 1, 1, 1, 1, 1, 0};
    ck_assert_int_eq(memcmp(t.data, wantb, 8), 0);
    free(t.data);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F64, 0, NULL, src, &t), FUSE_OK);
    ck_assert_int_eq(t.rank, 0);
    ck_assert(((double *)t.data)[0] == (double)1.9f);
    free(t.data);
}
END_TEST

START_TEST(test_tensor_from_f32_rejects_bad_args)
{
    const float src[] = {1.0f};
    int64_t neg[] = {-1}, one[] = {1};
    fuse_tensor t;
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F32, 1, neg, src, &t), FUSE_E_ARG);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_DTYPE_COUNT, 1, one, src, &t), FUSE_E_ARG);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F32, FUSE_MAX_RANK + 1, one, src, &t),
                     FUSE_E_ARG);
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F32, 1, one, NULL, &t), FUSE_E_ARG);
    char *err = NULL;
    fuse_tensor bad = {.dtype = FUSE_F32, .rank = 1, .shape = {3}, .data = NULL};
    assert_error_names(io_tensor_check(&bad, "thing", NULL, &err), FUSE_E_ARG, err, "thing");
}
END_TEST

/* ---- npy.c: round trips and layout ---- */

static const int64_t rt_shapes[5][4] = {{0}, {5}, {2, 3}, {2, 3, 4}, {3, 1, 2, 2}};

START_TEST(test_npy_roundtrip_every_dtype_and_rank)
{
    for (int dt = 0; dt < FUSE_DTYPE_COUNT; dt++) {
        if (dt == FUSE_BF16) /* NumPy has no bfloat16: written as float32 (below) */
            continue;
        for (int rank = 0; rank <= 4; rank++) {
            fuse_tensor t = make_tensor((fuse_dtype)dt, rank, rt_shapes[rank],
                                        (uint32_t)(dt * 10 + rank));
            char name[64], *err = NULL;
            snprintf(name, sizeof name, "d%d_r%d.npy", dt, rank);
            ck_assert_int_eq(io_npy_write(path_in(name), &t, &err), FUSE_OK);
            fuse_tensor back = {0};
            fuse_status st = io_npy_read(path_in(name), &back, &err);
            ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
            assert_tensors_equal(&t, &back);
            ck_assert_uint_eq((uintptr_t)back.data % IO_ALIGN, 0);
            free(back.data);
            free(t.data);
        }
    }
}
END_TEST

START_TEST(test_npy_roundtrip_empty_and_mem)
{
    int64_t shape[] = {4, 0, 3};
    fuse_tensor t = make_tensor(FUSE_F64, 3, shape, 7), back = {0};
    void *img;
    size_t n;
    char *err = NULL;
    ck_assert_int_eq(io_npy_encode(&t, &img, &n, &err), FUSE_OK);
    NpyHeader h;
    ck_assert_int_eq(io_npy_parse_header(img, n, &h, &err), FUSE_OK);
    ck_assert_uint_eq(h.data_offset, n); /* header only: no data */
    ck_assert_uint_eq(n % 64, 0);
    ck_assert_int_eq(io_npy_read_mem(img, n, "mem", &back, &err), FUSE_OK);
    ck_assert_int_eq(back.rank, 3);
    ck_assert_int_eq(back.shape[0], 4);
    ck_assert_int_eq(back.shape[1], 0);
    ck_assert_int_eq(back.shape[2], 3);
    free(back.data);
    free(img);
    free(t.data);
}
END_TEST

START_TEST(test_npy_encode_header_layout)
{
    struct {
        fuse_dtype dt;
        int rank;
        int64_t shape[3];
        const char *dict;
    } cases[] = {
        {FUSE_F32, 2, {2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
        {FUSE_I64, 1, {5}, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"},
        {FUSE_BOOL, 0, {0}, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }"},
        {FUSE_U8, 1, {1}, "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }"},
        {FUSE_U16, 3, {1, 2, 3}, "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 2, 3), }"},
        {FUSE_F16, 1, {3}, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fuse_tensor t = make_tensor(cases[k].dt, cases[k].rank, cases[k].shape, 1);
        uint8_t *img;
        size_t n;
        char *err = NULL;
        ck_assert_int_eq(io_npy_encode(&t, (void **)&img, &n, &err), FUSE_OK);
        ck_assert_int_eq(memcmp(img, "\x93NUMPY\x01\x00", 8), 0);
        size_t hlen = img[8] | (size_t)img[9] << 8, dlen = strlen(cases[k].dict);
        ck_assert_uint_eq((10 + hlen) % 64, 0);
        ck_assert_int_eq(memcmp(img + 10, cases[k].dict, dlen), 0);
        for (size_t i = 10 + dlen; i < 10 + hlen - 1; i++)
            ck_assert_int_eq(img[i], ' ');
        ck_assert_int_eq(img[10 + hlen - 1], '\n');
        size_t nbytes = (size_t)io_shape_count(t.rank, t.shape) * fuse_dtype_size(t.dtype);
        ck_assert_uint_eq(n, 10 + hlen + nbytes);
        ck_assert_int_eq(memcmp(img + 10 + hlen, t.data, nbytes), 0);
        NpyHeader h;
        ck_assert_int_eq(io_npy_parse_header(img, n, &h, &err), FUSE_OK);
        ck_assert_uint_eq(h.data_offset, 10 + hlen);
        ck_assert_int_eq(h.dtype, cases[k].dt);
        ck_assert(!h.is_fortran && !h.is_big_endian);
        free(img);
        free(t.data);
    }
}
END_TEST

START_TEST(test_npy_write_creates_parent_dirs)
{
    int64_t shape[] = {3};
    fuse_tensor t = make_tensor(FUSE_I32, 1, shape, 3), back = {0};
    char *err = NULL;
    const char *p = path_in("a/b/c/out.npy");
    ck_assert_int_eq(io_npy_write(p, &t, &err), FUSE_OK);
    ck_assert_int_eq(io_npy_read(p, &back, &err), FUSE_OK);
    assert_tensors_equal(&t, &back);
    free(back.data);
    free(t.data);
}
END_TEST

/* ---- npy.c: hand-built files ---- */

START_TEST(test_npy_fortran_order_2d)
{
    /* A = [[1, 2, 3], [4, 5, 6]] stored column by column. */
    const float cols[] = {1, 4, 2, 5, 3, 6};
    size_t n;
    uint8_t *img = build_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                             cols, sizeof cols, &n);
    fuse_tensor t = {0};
    char *err = NULL;
    ck_assert_int_eq(read_both(img, n, "f2.npy", &t, &err), FUSE_OK);
    ck_assert_int_eq(t.rank, 2);
    ck_assert_int_eq(t.shape[0], 2);
    ck_assert_int_eq(t.shape[1], 3);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(((float *)t.data)[i], (float)(i + 1));
    free(t.data);
    free(img);
}
END_TEST

START_TEST(test_npy_fortran_order_3d_int16)
{
    /* Element (i,j,k) of shape (2,3,4) has value 100i + 10j + k; Fortran order puts
     * it at offset i + 2j + 6k. */
    int16_t f[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                f[i + 2 * j + 6 * k] = (int16_t)(100 * i + 10 * j + k);
    size_t n;
    uint8_t *img = build_npy(1, "{'shape': (2, 3, 4), 'fortran_order': True, 'descr': '<i2'}",
                             f, sizeof f, &n);
    fuse_tensor t = {0};
    char *err = NULL;
    ck_assert_int_eq(read_both(img, n, "f3.npy", &t, &err), FUSE_OK);
    ck_assert_int_eq(t.dtype, FUSE_I16);
    const int16_t *c = t.data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert_int_eq(c[12 * i + 4 * j + k], 100 * i + 10 * j + k);
    free(t.data);
    free(img);
}
END_TEST

START_TEST(test_npy_versions_2_and_3)
{
    const int32_t data[] = {7, -8, 9};
    for (int major = 2; major <= 3; major++) {
        size_t n;
        uint8_t *img = build_npy(major, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}",
                                 data, sizeof data, &n);
        NpyHeader h;
        char *err = NULL;
        ck_assert_int_eq(io_npy_parse_header(img, n, &h, &err), FUSE_OK);
        ck_assert_uint_eq(h.data_offset, n - sizeof data);
        fuse_tensor t = {0};
        ck_assert_int_eq(read_both(img, n, major == 2 ? "v2.npy" : "v3.npy", &t, &err),
                         FUSE_OK);
        ck_assert_int_eq(t.rank, 1);
        ck_assert_int_eq(memcmp(t.data, data, sizeof data), 0);
        free(t.data);
        free(img);
    }
}
END_TEST

START_TEST(test_npy_big_endian)
{
    const uint8_t f4[] = {0x3f, 0xc0, 0, 0, 0xc0, 0x20, 0, 0}; /* 1.5, -2.5 */
    const uint8_t i2[] = {0xff, 0xfe, 0x01, 0x02};             /* -2, 258 */
    const uint8_t u8[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t f8[] = {0x3f, 0xf0, 0, 0, 0, 0, 0, 0}; /* 1.0 */
    size_t n;
    fuse_tensor t = {0};
    char *err = NULL;
    uint8_t *img = build_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", f4,
                             sizeof f4, &n);
    ck_assert_int_eq(read_both(img, n, "be1.npy", &t, &err), FUSE_OK);
    ck_assert_float_eq(((float *)t.data)[0], 1.5f);
    ck_assert_float_eq(((float *)t.data)[1], -2.5f);
    free(t.data);
    free(img);
    img = build_npy(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,)}", i2,
                    sizeof i2, &n);
    ck_assert_int_eq(read_both(img, n, "be2.npy", &t, &err), FUSE_OK);
    ck_assert_int_eq(((int16_t *)t.data)[0], -2);
    ck_assert_int_eq(((int16_t *)t.data)[1], 258);
    free(t.data);
    free(img);
    img = build_npy(1, "{'descr': '>u8', 'fortran_order': False, 'shape': ()}", u8, sizeof u8,
                    &n);
    ck_assert_int_eq(read_both(img, n, "be3.npy", &t, &err), FUSE_OK);
    ck_assert_int_eq(t.rank, 0);
    ck_assert_uint_eq(((uint64_t *)t.data)[0], UINT64_C(0x0102030405060708));
    free(t.data);
    free(img);
    img = build_npy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1, 1)}", f8,
                    sizeof f8, &n);
    ck_assert_int_eq(read_both(img, n, "be4.npy", &t, &err), FUSE_OK);
    ck_assert(((double *)t.data)[0] == 1.0);
    free(t.data);
    free(img);
}
END_TEST

START_TEST(test_npy_big_endian_fortran)
{
    /* [[1, 2], [3, 4]] as big-endian int32, column-major: swap and transpose. */
    const uint8_t d[] = {0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4};
    size_t n;
    uint8_t *img = build_npy(1, "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 2)}", d,
                             sizeof d, &n);
    fuse_tensor t = {0};
    char *err = NULL;
    ck_assert_int_eq(read_both(img, n, "bef.npy", &t, &err), FUSE_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(((int32_t *)t.data)[i], i + 1);
    free(t.data);
    free(img);
}
END_TEST

START_TEST(test_npy_header_variants)
{
    const uint8_t d[] = {1, 0, 1, 1, 0, 0};
    const char *dicts[] = {
        "{'descr':'|b1','fortran_order':False,'shape':(2,3)}",
        "{ \"shape\" : ( 2 , 3 , ) , \"descr\" : \"|b1\" , \"fortran_order\" : False , }",
        "{'fortran_order': False, 'shape': (2L, 3L), 'descr': '|b1'}   ",
        "{'descr': '=b1', 'fortran_order': False, 'shape': (2, 3),}\t ",
        "{'descr': 'b1', 'fortran_order': False, 'shape': (2,\n 3), }",
    };
    for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
        size_t n;
        uint8_t *img = build_npy(1, dicts[k], d, sizeof d, &n);
        fuse_tensor t = {0};
        char *err = NULL;
        fuse_status st = io_npy_read_mem(img, n, "variant", &t, &err);
        ck_assert_msg(st == FUSE_OK, "dict %zu: %s", k, err ? err : "");
        ck_assert_int_eq(t.dtype, FUSE_BOOL);
        ck_assert_int_eq(t.rank, 2);
        ck_assert_int_eq(t.shape[1], 3);
        ck_assert_int_eq(memcmp(t.data, d, 6), 0);
        free(t.data);
        free(img);
    }
}
END_TEST

/* bfloat16 has no NumPy dtype: .npy gets the float32 values it holds exactly. */
START_TEST(test_npy_bf16_written_as_float32)
{
    uint16_t bits[4] = {0x3F80, 0xC040, 0x3EAB, 0x7F80}; /* 1, -3, 0.333984375, inf */
    fuse_tensor t = {.dtype = FUSE_BF16, .rank = 1, .shape = {4}, .data = bits};
    char *err = NULL;
    ck_assert_int_eq(io_npy_write(path_in("bf.npy"), &t, &err), FUSE_OK);
    fuse_tensor back = {0};
    ck_assert_int_eq(io_npy_read(path_in("bf.npy"), &back, &err), FUSE_OK);
    ck_assert_int_eq(back.dtype, FUSE_F32);
    const float *f = back.data;
    ck_assert(f[0] == 1.0f && f[1] == -3.0f && f[2] == 0.333984375f && isinf(f[3]));
    free(back.data);
}
END_TEST

START_TEST(test_npy_every_dtype_descr)
{
    static const char *descr[FUSE_DTYPE_COUNT - 1] = {"<f4", "<f8", "|i1", "<i2", "<i4", "<i8",
                                                      "|u1", "<u2", "<u4", "<u8", "|b1", "<f2"};
    uint8_t zeros[8] = {0};
    for (int dt = 0; dt < FUSE_BF16; dt++) { /* every dtype but bfloat16 (no descr) */
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': ()}",
                 descr[dt]);
        size_t n;
        uint8_t *img = build_npy(1, dict, zeros, fuse_dtype_size((fuse_dtype)dt), &n);
        NpyHeader h;
        char *err = NULL;
        ck_assert_int_eq(io_npy_parse_header(img, n, &h, &err), FUSE_OK);
        ck_assert_int_eq(h.dtype, dt);
        ck_assert_int_eq(h.rank, 0);
        free(img);
    }
}
END_TEST

/* ---- npy.c: malformed input ---- */

START_TEST(test_npy_truncated_at_many_lengths)
{
    int64_t shape[] = {4, 5};
    fuse_tensor t = make_tensor(FUSE_F64, 2, shape, 9);
    uint8_t *img;
    size_t n;
    char *err = NULL;
    ck_assert_int_eq(io_npy_encode(&t, (void **)&img, &n, &err), FUSE_OK);
    const size_t cuts[] = {0, 1, 5, 6, 7, 8, 9, 10, 11, 40, 63, 64, 65, 100, n - 8, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "cut%zu.npy", cuts[k]);
        fuse_tensor back = {0};
        err = NULL;
        fuse_status st = read_both(img, cuts[k], name, &back, &err);
        ck_assert_msg(st == FUSE_E_IO, "cut at %zu gave %d", cuts[k], st);
        ck_assert_ptr_null(back.data);
        ck_assert_msg(err && strstr(err, path_in(name)), "cut %zu: %s", cuts[k],
                      err ? err : "(null)");
        if (cuts[k] >= 64)
            ck_assert_msg(strstr(err, "truncated"), "%s", err);
        free(err);
    }
    /* Extra bytes after the data are ignored, as NumPy does. */
    uint8_t *longer = malloc(n + 5);
    memcpy(longer, img, n);
    memset(longer + n, 0xAB, 5);
    fuse_tensor back = {0};
    ck_assert_int_eq(io_npy_read_mem(longer, n + 5, "longer", &back, &err), FUSE_OK);
    assert_tensors_equal(&t, &back);
    free(back.data);
    free(longer);
    free(img);
    free(t.data);
}
END_TEST

START_TEST(test_npy_bad_magic_and_version)
{
    const char *cases[][2] = {
        {"PK\x03\x04 not an npy file at all, no", "bad magic"},
        {"\x93NUMPZ\x01\x00\x10\x00{}              ", "bad magic"},
        {"\x93NUMPY\x04\x00\x10\x00{}              ", "version 4.0"},
        {"\x93NUMPY\x01\x01\x10\x00{}              ", "version 1.1"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fuse_tensor t = {0};
        char *err = NULL, name[32];
        snprintf(name, sizeof name, "bad%zu.npy", k);
        ck_assert_int_eq(read_both((const uint8_t *)cases[k][0], strlen(cases[k][0]) + 1, name,
                                   &t, &err),
                         FUSE_E_IO);
        ck_assert_msg(strstr(err, cases[k][1]), "%s", err);
        assert_error_names(FUSE_E_IO, FUSE_E_IO, err, path_in(name));
    }
}
END_TEST

START_TEST(test_npy_bad_header_dicts)
{
    const char *cases[][2] = {
        {"['descr', '<f4']", "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False}", "missing key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unknown"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "repeated"},
        {"{'descr': '<f4', 'fortran_order': 1, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
         "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
         "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
         "FUSE_MAX_RANK"},
        {"{'descr': '<f16', 'fortran_order': False, 'shape': (2,)}", "dtype '<f16'"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,)}", "dtype '<c8'"},
        {"{'descr': '<U1', 'fortran_order': False, 'shape': (2,)}", "dtype '<U1'"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,)}", "dtype '|O'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}", "structured"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", "header"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", "after the dict"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", "header"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "header"},
    };
    const uint8_t data[64] = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n;
        uint8_t *img = build_npy(1, cases[k][0], data, sizeof data, &n);
        fuse_tensor t = {0};
        char *err = NULL, name[32];
        snprintf(name, sizeof name, "dict%zu.npy", k);
        fuse_status st = read_both(img, n, name, &t, &err);
        ck_assert_msg(st == FUSE_E_IO, "case %zu: status %d", k, st);
        ck_assert_msg(strstr(err, cases[k][1]), "case %zu: '%s' lacks '%s'", k, err,
                      cases[k][1]);
        assert_error_names(st, FUSE_E_IO, err, path_in(name));
        ck_assert_ptr_null(t.data);
        free(img);
    }
}
END_TEST

START_TEST(test_npy_header_length_beyond_file)
{
    /* The length field claims far more header than the file holds. */
    uint8_t img[] = "\x93NUMPY\x01\x00\xff\x7f{'descr': '<f4'";
    fuse_tensor t = {0};
    char *err = NULL;
    ck_assert_int_eq(read_both(img, sizeof img - 1, "hl.npy", &t, &err), FUSE_E_IO);
    ck_assert_msg(strstr(err, "truncated"), "%s", err);
    assert_error_names(FUSE_E_IO, FUSE_E_IO, err, "hl.npy");
    NpyHeader h;
    err = NULL;
    assert_error_names(io_npy_parse_header_named(img, sizeof img - 1, "named", &h, &err),
                       FUSE_E_IO, err, "named");
}
END_TEST

START_TEST(test_npy_missing_file_and_directory)
{
    fuse_tensor t = {0};
    char *err = NULL;
    const char *missing = path_in("nope.npy");
    assert_error_names(io_npy_read(missing, &t, &err), FUSE_E_IO, err, missing);
    err = NULL;
    assert_error_names(io_npy_read(scratch, &t, &err), FUSE_E_IO, err, scratch);
}
END_TEST

START_TEST(test_npy_write_rejects_bad_tensor)
{
    char *err = NULL;
    fuse_tensor t = {.dtype = FUSE_F32, .rank = 2, .shape = {2, -3}, .data = NULL};
    const char *p = path_in("bad.npy");
    assert_error_names(io_npy_write(p, &t, &err), FUSE_E_ARG, err, p);
    ck_assert(!path_exists(p));
}
END_TEST

/* ---- float16 ---- */

/* Half bit patterns and their exact values: normals, the extremes, subnormals,
 * signed zero and infinities. */
static const struct {
    uint16_t bits;
    float value;
} half_known[] = {
    {0x3C00, 1.0f},
    {0xC000, -2.0f},
    {0x7BFF, 65504.0f},            /* the largest finite half */
    {0x0001, 0x1p-24f},            /* the smallest subnormal */
    {0x03FF, 1023 * 0x1p-24f},     /* the largest subnormal */
    {0x0400, 0x1p-14f},            /* the smallest normal */
    {0x7C00, INFINITY},
    {0xFC00, -INFINITY},
    {0x3555, 0.333251953125f},     /* 1365 / 4096, the half nearest 1/3 */
    {0x8000, -0.0f},
    {0x2E66, 0.0999755859375f},    /* 1638 / 16384, the half nearest 0.1 */
};
enum { HALF_KNOWN = sizeof half_known / sizeof half_known[0] };

static uint16_t f16_at(const fuse_tensor *t, int64_t i)
{
    return ((const uint16_t *)t->data)[i];
}

/* Asserts t is a float16 vector holding half_known's bits, then NaN, in order. */
static void assert_half_known(const fuse_tensor *t)
{
    ck_assert_int_eq(t->dtype, FUSE_F16);
    ck_assert_int_eq(t->rank, 1);
    ck_assert_int_eq(t->shape[0], HALF_KNOWN + 1);
    float out[HALF_KNOWN + 1];
    io_convert_to_f32(FUSE_F16, t->data, out, HALF_KNOWN + 1);
    for (int i = 0; i < HALF_KNOWN; i++) {
        ck_assert_uint_eq(f16_at(t, i), half_known[i].bits);
        ck_assert_msg(out[i] == half_known[i].value, "0x%04x: got %a, want %a",
                      half_known[i].bits, out[i], half_known[i].value);
        ck_assert_int_eq(signbit(out[i]) != 0, signbit(half_known[i].value) != 0);
    }
    ck_assert(isnan(out[HALF_KNOWN]));
}

/* A '<f2' or '>f2' image of half_known and a NaN (0x7E00), written byte by byte. */
static uint8_t *half_known_npy(bool big_endian, size_t *n)
{
    uint8_t data[2 * (HALF_KNOWN + 1)];
    for (int i = 0; i <= HALF_KNOWN; i++) {
        uint16_t h = i < HALF_KNOWN ? half_known[i].bits : 0x7E00;
        data[2 * i + (big_endian ? 1 : 0)] = (uint8_t)(h & 0xFF);
        data[2 * i + (big_endian ? 0 : 1)] = (uint8_t)(h >> 8);
    }
    char dict[96];
    snprintf(dict, sizeof dict, "{'descr': '%cf2', 'fortran_order': False, 'shape': (%d,), }",
             big_endian ? '>' : '<', HALF_KNOWN + 1);
    return build_npy(1, dict, data, sizeof data, n);
}

START_TEST(test_f16_npy_reads_known_bits)
{
    for (int big = 0; big <= 1; big++) {
        size_t n;
        uint8_t *img = half_known_npy(big, &n);
        fuse_tensor t = {0};
        char *err = NULL;
        fuse_status st = read_both(img, n, big ? "h_be.npy" : "h_le.npy", &t, &err);
        ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
        assert_half_known(&t);
        free(t.data);
        free(img);
    }
}
END_TEST

/* float -> half bits, then half -> float, for values worked out by hand. */
START_TEST(test_f16_round_trip_rounding)
{
    static const struct {
        float in;
        uint16_t bits;
        float out;
    } cases[] = {
        {1.0f, 0x3C00, 1.0f},
        {1.0f + 0x1p-11f, 0x3C00, 1.0f},                     /* tie: to even 1.0 */
        {1.0f + 3 * 0x1p-11f, 0x3C02, 1.0f + 0x1p-9f},       /* tie: to even 0x3C02 */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01, 1.0f + 0x1p-10f}, /* just above the tie */
        {2049.0f, 0x6800, 2048.0f},                          /* spacing 2: tie to even */
        {2051.0f, 0x6802, 2052.0f},
        {-2.0f, 0xC000, -2.0f},
        {1.0f / 3.0f, 0x3555, 0.333251953125f},
        {0.1f, 0x2E66, 0.0999755859375f},
        {65504.0f, 0x7BFF, 65504.0f},
        {65519.0f, 0x7BFF, 65504.0f},                        /* below the midpoint 65520 */
        {65520.0f, 0x7C00, INFINITY},                        /* tie rounds up: overflow */
        {1e6f, 0x7C00, INFINITY},
        {-1e6f, 0xFC00, -INFINITY},
        {INFINITY, 0x7C00, INFINITY},
        {0x1p-24f, 0x0001, 0x1p-24f},                        /* smallest subnormal */
        {0x1p-25f, 0x0000, 0.0f},                            /* tie between 0 and it: 0 */
        {0x1p-25f + 0x1p-35f, 0x0001, 0x1p-24f},             /* just above: rounds up */
        {3 * 0x1p-25f, 0x0002, 0x1p-23f},                    /* tie: to even 2 units */
        {0x1p-14f - 0x1p-25f, 0x0400, 0x1p-14f},             /* subnormal rounds to normal */
        {1023 * 0x1p-24f, 0x03FF, 1023 * 0x1p-24f},
        {1e-10f, 0x0000, 0.0f},
        {-1e-10f, 0x8000, -0.0f},
        {-0.0f, 0x8000, -0.0f},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    float in[N], back[N];
    for (int i = 0; i < N; i++)
        in[i] = cases[i].in;
    int64_t shape[] = {N};
    fuse_tensor t;
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F16, 1, shape, in, &t), FUSE_OK);
    ck_assert_int_eq(t.dtype, FUSE_F16);
    io_convert_to_f32(FUSE_F16, t.data, back, N);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(f16_at(&t, i) == cases[i].bits, "case %d (%a): bits 0x%04x, want 0x%04x",
                      i, cases[i].in, f16_at(&t, i), cases[i].bits);
        ck_assert_msg(back[i] == cases[i].out && !signbit(back[i]) == !signbit(cases[i].out),
                      "case %d: back %a, want %a", i, back[i], cases[i].out);
    }
    free(t.data);
    /* NaN stays NaN, with or without payload bits that survive the narrowing. */
    float nans[2] = {NAN, -NAN};
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F16, 1, (int64_t[]){2}, nans, &t), FUSE_OK);
    for (int i = 0; i < 2; i++)
        ck_assert((f16_at(&t, i) & 0x7C00) == 0x7C00 && (f16_at(&t, i) & 0x3FF) != 0);
    io_convert_to_f32(FUSE_F16, t.data, back, 2);
    ck_assert(isnan(back[0]) && isnan(back[1]));
    free(t.data);
}
END_TEST

/* Every non-NaN half widens to a float that narrows back to the same bits. */
START_TEST(test_f16_every_half_round_trips)
{
    enum { N = 1 << 16 };
    uint16_t *bits = malloc(N * sizeof *bits);
    float *wide = malloc(N * sizeof *wide);
    for (int i = 0; i < N; i++)
        bits[i] = (uint16_t)i;
    io_convert_to_f32(FUSE_F16, bits, wide, N);
    fuse_tensor t;
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F16, 1, (int64_t[]){N}, wide, &t), FUSE_OK);
    for (int i = 0; i < N; i++) {
        bool is_nan = (i & 0x7C00) == 0x7C00 && (i & 0x3FF) != 0;
        ck_assert(isnan(wide[i]) == is_nan);
        if (!is_nan)
            ck_assert_msg(f16_at(&t, i) == i, "0x%04x -> %a -> 0x%04x", i, wide[i], f16_at(&t, i));
    }
    free(t.data);
    free(wide);
    free(bits);
}
END_TEST

START_TEST(test_f16_npy_write_and_read_back)
{
    const float v[] = {1.0f, -2.0f, 0.333251953125f, 65504.0f, 0x1p-24f, INFINITY};
    int64_t shape[] = {2, 3};
    fuse_tensor t, back = {0};
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F16, 2, shape, v, &t), FUSE_OK);
    char *err = NULL;
    const char *p = path_in("h.npy");
    ck_assert_int_eq(io_npy_write(p, &t, &err), FUSE_OK);
    void *text;
    size_t n;
    ck_assert_int_eq(sup_read_file(p, &text, &n, &err), FUSE_OK);
    ck_assert_ptr_nonnull(strstr((char *)text + 10, "'descr': '<f2'")); /* NUL-ended */
    const uint8_t *data = (const uint8_t *)text + n - 12; /* little-endian on disk */
    ck_assert(data[0] == 0x00 && data[1] == 0x3C && data[2] == 0x00 && data[3] == 0xC0);
    free(text);
    ck_assert_int_eq(io_npy_read(p, &back, &err), FUSE_OK);
    assert_tensors_equal(&t, &back);
    float out[6];
    io_convert_to_f32(back.dtype, back.data, out, 6);
    for (int i = 0; i < 6; i++)
        ck_assert(out[i] == v[i]);
    free(back.data);
    /* The same tensor as an .npz member (npz.c goes through npy.c). */
    const char *names[] = {"h"};
    ck_assert_int_eq(io_npz_write(path_in("h.npz"), names, &t, 1, &err), FUSE_OK);
    ck_assert_int_eq(io_npz_read(path_in("h.npz"), NULL, NULL, &back, &err), FUSE_OK);
    assert_tensors_equal(&t, &back);
    free(back.data);
    free(t.data);
}
END_TEST

/* Non-numeric kinds are refused with a message that names the file, says what the
 * file holds and lists what is accepted. */
START_TEST(test_npy_refuses_non_numeric_dtypes)
{
    const char *cases[][2] = {
        {"<c8", "complex"},           {">c16", "complex"},
        {"|O", "Python objects"},     {"<U3", "unicode strings"},
        {"|S5", "byte strings"},      {"<M8[ns]", "datetimes"},
        {"<m8[s]", "timedeltas"},     {"|V8", "void/structured"},
        {"<f16", "kind and size"},
    };
    const uint8_t data[64] = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char dict[128], name[32];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }",
                 cases[k][0]);
        snprintf(name, sizeof name, "kind%zu.npy", k);
        size_t n;
        uint8_t *img = build_npy(1, dict, data, sizeof data, &n);
        fuse_tensor t = {0};
        char *err = NULL;
        ck_assert_int_eq(read_both(img, n, name, &t, &err), FUSE_E_IO);
        ck_assert_ptr_null(t.data);
        ck_assert_msg(strstr(err, cases[k][1]) && strstr(err, cases[k][0]) &&
                          strstr(err, "accepted: float16, float32, float64"),
                      "%s: '%s'", cases[k][0], err);
        assert_error_names(FUSE_E_IO, FUSE_E_IO, err, path_in(name));
        free(img);
    }
}
END_TEST

/* ---- npz.c ---- */

static void assert_member_compression(const char *path, const char *member, int32_t method)
{
    int code;
    zip_t *za = zip_open(path, ZIP_RDONLY, &code);
    ck_assert_ptr_nonnull(za);
    zip_stat_t sb;
    ck_assert_int_eq(zip_stat(za, member, 0, &sb), 0);
    ck_assert_int_eq(sb.comp_method, method);
    zip_discard(za);
}

START_TEST(test_npz_roundtrip_several_members)
{
    int64_t s1[] = {64, 32}, s2[] = {7}, s3[] = {2, 2, 2};
    fuse_tensor ts[3] = {make_tensor(FUSE_F32, 2, s1, 1), make_tensor(FUSE_I64, 1, s2, 2),
                         make_tensor(FUSE_BOOL, 3, s3, 3)};
    /* Compressible content, so deflate visibly shrinks it. */
    memset(ts[0].data, 0, 64 * 32 * 4);
    const char *names[] = {"weights", "ids", "mask"};
    const char *p = path_in("sub/dir/many.npz");
    char *err = NULL;
    /* Stored by default (numpy.savez); deflated on request (savez_compressed). */
    const char *stored = path_in("sub/stored.npz");
    ck_assert_int_eq(io_npz_write(stored, names, ts, 3, &err), FUSE_OK);
    ck_assert_int_eq(io_npz_write_as(p, names, ts, 3, true, &err), FUSE_OK);
    for (int i = 0; i < 3; i++) {
        fuse_tensor back = {0}, back2 = {0};
        fuse_status st = io_npz_read(p, names[i], NULL, &back, &err);
        ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
        assert_tensors_equal(&ts[i], &back);
        free(back.data);
        st = io_npz_read(stored, names[i], NULL, &back2, &err);
        ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
        assert_tensors_equal(&ts[i], &back2);
        free(back2.data);
    }
    assert_member_compression(p, "weights.npy", ZIP_CM_DEFLATE);
    assert_member_compression(p, "mask.npy", ZIP_CM_DEFLATE);
    assert_member_compression(stored, "weights.npy", ZIP_CM_STORE);
    assert_member_compression(stored, "ids.npy", ZIP_CM_STORE);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_lt(st.st_size, 64 * 32 * 4 / 4);
    ck_assert_int_eq(stat(stored, &st), 0);
    ck_assert_int_gt(st.st_size, 64 * 32 * 4);
    bool has_tmp;
    ck_assert_int_eq(count_entries(path_in("sub/dir"), &has_tmp), 1);
    ck_assert(!has_tmp);
    for (int i = 0; i < 3; i++)
        free(ts[i].data);
}
END_TEST

START_TEST(test_npz_member_choice)
{
    int64_t s[] = {3};
    fuse_tensor a = make_tensor(FUSE_I32, 1, s, 11), b = make_tensor(FUSE_I32, 1, s, 12),
                c = make_tensor(FUSE_I32, 1, s, 13), back = {0};
    char *err = NULL;
    /* arr_0 wins over everything when no member is named. */
    const char *n3[] = {"x", "arr_0", "W"};
    fuse_tensor t3[] = {a, b, c};
    const char *p3 = path_in("three.npz");
    ck_assert_int_eq(io_npz_write(p3, n3, t3, 3, &err), FUSE_OK);
    ck_assert_int_eq(io_npz_read(p3, NULL, "W", &back, &err), FUSE_OK);
    assert_tensors_equal(&b, &back);
    free(back.data);
    /* An explicit member is taken as named. */
    ck_assert_int_eq(io_npz_read(p3, "W", NULL, &back, &err), FUSE_OK);
    assert_tensors_equal(&c, &back);
    free(back.data);
    /* The only member is taken whatever its name. */
    const char *n1[] = {"lonely"};
    const char *p1 = path_in("one.npz");
    ck_assert_int_eq(io_npz_write(p1, n1, &a, 1, &err), FUSE_OK);
    ck_assert_int_eq(io_npz_read(p1, NULL, "other", &back, &err), FUSE_OK);
    assert_tensors_equal(&a, &back);
    free(back.data);
    /* Several members, no arr_0: the fallback (tensor name) decides. */
    const char *n2[] = {"A", "B"};
    fuse_tensor t2[] = {a, c};
    const char *p2 = path_in("two.npz");
    ck_assert_int_eq(io_npz_write(p2, n2, t2, 2, &err), FUSE_OK);
    ck_assert_int_eq(io_npz_read(p2, NULL, "B", &back, &err), FUSE_OK);
    assert_tensors_equal(&c, &back);
    free(back.data);
    back.data = NULL;
    assert_error_names(io_npz_read(p2, NULL, NULL, &back, &err), FUSE_E_IO, err, p2);
    err = NULL;
    assert_error_names(io_npz_read(p2, NULL, "C", &back, &err), FUSE_E_IO, err, "'C'");
    err = NULL;
    assert_error_names(io_npz_read(p2, "missing", NULL, &back, &err), FUSE_E_IO, err, p2);
    ck_assert_ptr_null(back.data);
    free(a.data);
    free(b.data);
    free(c.data);
}
END_TEST

START_TEST(test_npz_empty_archive)
{
    const char *p = path_in("empty.npz");
    char *err = NULL;
    fuse_tensor back = {0};
    ck_assert_int_eq(io_npz_write(p, NULL, NULL, 0, &err), FUSE_OK);
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    ck_assert_int_eq(sb.st_size, 22); /* the bare end-of-central-directory record */
    assert_error_names(io_npz_read(p, NULL, NULL, &back, &err), FUSE_E_IO, err, "no arrays");
}
END_TEST

/* A member named in UTF-8 (flagged so in the archive) is found by that name, stored
 * or deflated. */
START_TEST(test_npz_utf8_member_name)
{
    int64_t s[] = {3};
    fuse_tensor t = make_tensor(FUSE_F64, 1, s, 5);
    const char *names[] = {"\xce\xb8_gr\xc3\xb6\xc3\x9f" "e"}; /* "θ_größe" */
    char *err = NULL;
    for (int deflate = 0; deflate < 2; deflate++) {
        const char *p = path_in(deflate ? "utf8-deflated.npz" : "utf8-stored.npz");
        ck_assert_int_eq(io_npz_write_as(p, names, &t, 1, deflate, &err), FUSE_OK);
        fuse_tensor back = {0};
        fuse_status st = io_npz_read(p, names[0], NULL, &back, &err);
        ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
        assert_tensors_equal(&t, &back);
        free(back.data);
        assert_member_compression(p, "\xce\xb8_gr\xc3\xb6\xc3\x9f" "e.npy",
                                  deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE);
    }
    free(t.data);
}
END_TEST

/* An archive built here with libzip: `name` stored (uncompressed) from img. */
static void write_stored_npz(const char *path, const char *name, const void *img, size_t n)
{
    int code;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
    ck_assert_ptr_nonnull(za);
    zip_source_t *src = zip_source_buffer(za, img, n, 0);
    ck_assert_ptr_nonnull(src);
    zip_int64_t idx = zip_file_add(za, name, src, 0);
    ck_assert_int_ge(idx, 0);
    ck_assert_int_eq(zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0), 0);
    ck_assert_int_eq(zip_close(za), 0);
}

START_TEST(test_npz_stored_member)
{
    int64_t s[] = {3, 5};
    fuse_tensor t = make_tensor(FUSE_U16, 2, s, 21), back = {0};
    void *img;
    size_t n;
    char *err = NULL;
    ck_assert_int_eq(io_npy_encode(&t, &img, &n, &err), FUSE_OK);
    const char *p = path_in("stored.npz");
    write_stored_npz(p, "arr_0.npy", img, n);
    assert_member_compression(p, "arr_0.npy", ZIP_CM_STORE);
    ck_assert_int_eq(io_npz_read(p, NULL, NULL, &back, &err), FUSE_OK);
    assert_tensors_equal(&t, &back);
    free(back.data);
    /* A member whose name lacks ".npy" is found by its exact name. */
    const char *q = path_in("bare.npz");
    write_stored_npz(q, "weights", img, n);
    ck_assert_int_eq(io_npz_read(q, "weights", NULL, &back, &err), FUSE_OK);
    assert_tensors_equal(&t, &back);
    free(back.data);
    free(img);
    free(t.data);
}
END_TEST

START_TEST(test_npz_bad_member_and_corrupt_archive)
{
    const char *p = path_in("junk.npz");
    char *err = NULL;
    fuse_tensor back = {0};
    write_stored_npz(p, "arr_0.npy", "this is not an npy image", 24);
    assert_error_names(io_npz_read(p, NULL, NULL, &back, &err), FUSE_E_IO, err, "arr_0.npy");
    err = NULL;
    const char *q = path_in("notzip.npz");
    write_file(q, "definitely not a zip archive", 28);
    assert_error_names(io_npz_read(q, NULL, NULL, &back, &err), FUSE_E_IO, err, q);
    /* Damage the deflated data of a real archive: an error, never a crash. */
    int64_t s[] = {256};
    fuse_tensor t = make_tensor(FUSE_F32, 1, s, 5);
    const char *names[] = {"arr_0"};
    const char *r = path_in("damaged.npz");
    err = NULL;
    ck_assert_int_eq(io_npz_write(r, names, &t, 1, &err), FUSE_OK);
    void *raw;
    size_t n;
    ck_assert_int_eq(sup_read_file(r, &raw, &n, &err), FUSE_OK);
    for (size_t i = 60; i < 400 && i < n / 2; i++)
        ((uint8_t *)raw)[i] ^= 0x5a;
    write_file(r, raw, n);
    free(raw);
    assert_error_names(io_npz_read(r, NULL, NULL, &back, &err), FUSE_E_IO, err, r);
    ck_assert_ptr_null(back.data);
    free(t.data);
}
END_TEST

START_TEST(test_npz_failed_write_leaves_nothing)
{
    int64_t s[] = {4};
    fuse_tensor t[2] = {make_tensor(FUSE_F32, 1, s, 1), make_tensor(FUSE_F32, 1, s, 2)};
    char *err = NULL;
    bool has_tmp;
    /* Duplicate member names fail before anything is written. */
    const char *dup[] = {"same", "same"};
    const char *p = path_in("dup.npz");
    assert_error_names(io_npz_write(p, dup, t, 2, &err), FUSE_E_IO, err, p);
    ck_assert(!path_exists(p));
    ck_assert_int_eq(count_entries(scratch, &has_tmp), 0);
    /* The target is a directory. */
    ck_assert_int_eq(mkdir(path_in("isdir.npz"), 0777), 0);
    const char *names[] = {"a", "b"};
    err = NULL;
    assert_error_names(io_npz_write(path_in("isdir.npz"), names, t, 2, &err), FUSE_E_IO, err,
                       "isdir.npz");
    ck_assert_int_eq(count_entries(scratch, &has_tmp), 1);
    ck_assert(!has_tmp);
    /* Bad tensors and names are argument errors, checked before any file is made. */
    fuse_tensor bad[2] = {t[0], {.dtype = FUSE_F32, .rank = 1, .shape = {-1}}};
    err = NULL;
    assert_error_names(io_npz_write(path_in("bad.npz"), names, bad, 2, &err), FUSE_E_ARG, err,
                       "b");
    const char *noname[] = {"a", ""};
    err = NULL;
    assert_error_names(io_npz_write(path_in("bad.npz"), noname, t, 2, &err), FUSE_E_ARG, err,
                       "bad.npz");
    ck_assert(!path_exists(path_in("bad.npz")));
    /* An existing archive survives a failed rewrite unchanged. */
    const char *keep = path_in("keep.npz");
    ck_assert_int_eq(io_npz_write(keep, names, t, 2, &err), FUSE_OK);
    err = NULL;
    assert_error_names(io_npz_write(keep, dup, t, 2, &err), FUSE_E_IO, err, keep);
    fuse_tensor back = {0};
    ck_assert_int_eq(io_npz_read(keep, "b", NULL, &back, &err), FUSE_OK);
    assert_tensors_equal(&t[1], &back);
    free(back.data);
    free(t[0].data);
    free(t[1].data);
}
END_TEST

/* ---- json.c ---- */

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "%s: %s", path, je.text);
    return j;
}

START_TEST(test_json_write_nested_floats)
{
    const float v[] = {0.1f, 1.0f, -2.5f, 3.14159274f, 1e-8f, 16777217.0f};
    int64_t shape[] = {2, 3};
    fuse_tensor t;
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F32, 2, shape, v, &t), FUSE_OK);
    char *err = NULL;
    const char *p = path_in("t.json");
    ck_assert_int_eq(io_json_write(p, &t, &err), FUSE_OK);
    json_t *j = load_json(p);
    ck_assert(json_is_array(j));
    ck_assert_uint_eq(json_array_size(j), 2);
    for (size_t r = 0; r < 2; r++) {
        json_t *row = json_array_get(j, r);
        ck_assert_uint_eq(json_array_size(row), 3);
        for (size_t c = 0; c < 3; c++) {
            json_t *x = json_array_get(row, c);
            ck_assert(json_is_real(x));
            /* Must read back to exactly the same float32. */
            ck_assert((float)json_real_value(x) == ((float *)t.data)[r * 3 + c]);
        }
    }
    json_decref(j);
    void *text;
    size_t n;
    ck_assert_int_eq(sup_read_file(p, &text, &n, &err), FUSE_OK);
    ck_assert_int_eq(((char *)text)[n - 1], '\n');
    ck_assert_ptr_nonnull(strstr(text, "1.0, -2.5")); /* Python-style separators */
    free(text);
    free(t.data);
}
END_TEST

START_TEST(test_json_write_scalar_ints_bools_f64)
{
    char *err = NULL;
    double d = 0.1;
    fuse_tensor s = {.dtype = FUSE_F64, .rank = 0, .data = &d};
    ck_assert_int_eq(io_json_write(path_in("s.json"), &s, &err), FUSE_OK);
    json_t *j = load_json(path_in("s.json"));
    ck_assert(json_is_real(j) && json_real_value(j) == 0.1);
    json_decref(j);
    int16_t iv[] = {-3, 0, 32767};
    fuse_tensor it = {.dtype = FUSE_I16, .rank = 1, .shape = {3}, .data = iv};
    ck_assert_int_eq(io_json_write(path_in("i.json"), &it, &err), FUSE_OK);
    j = load_json(path_in("i.json"));
    for (size_t i = 0; i < 3; i++) {
        ck_assert(json_is_integer(json_array_get(j, i)));
        ck_assert_int_eq(json_integer_value(json_array_get(j, i)), iv[i]);
    }
    json_decref(j);
    uint8_t bv[] = {1, 0, 1, 1};
    fuse_tensor bt = {.dtype = FUSE_BOOL, .rank = 2, .shape = {2, 2}, .data = bv};
    ck_assert_int_eq(io_json_write(path_in("b.json"), &bt, &err), FUSE_OK);
    j = load_json(path_in("b.json"));
    ck_assert(json_is_true(json_array_get(json_array_get(j, 0), 0)));
    ck_assert(json_is_false(json_array_get(json_array_get(j, 0), 1)));
    json_decref(j);
    uint64_t uv[] = {UINT64_C(1) << 40, UINT64_MAX};
    fuse_tensor ut = {.dtype = FUSE_U64, .rank = 1, .shape = {2}, .data = uv};
    ck_assert_int_eq(io_json_write(path_in("u.json"), &ut, &err), FUSE_OK);
    j = load_json(path_in("u.json"));
    ck_assert_int_eq(json_integer_value(json_array_get(j, 0)), INT64_C(1) << 40);
    ck_assert(json_is_real(json_array_get(j, 1)));
    json_decref(j);
}
END_TEST

START_TEST(test_json_nonfinite_and_empty)
{
    char *err = NULL;
    float v[] = {NAN, INFINITY, 2.0f, -INFINITY};
    fuse_tensor t = {.dtype = FUSE_F32, .rank = 1, .shape = {4}, .data = v};
    ck_assert_int_eq(io_json_write(path_in("nan.json"), &t, &err), FUSE_OK);
    json_t *j = load_json(path_in("nan.json"));
    ck_assert_str_eq(json_string_value(json_array_get(j, 0)), "NaN");
    ck_assert_str_eq(json_string_value(json_array_get(j, 1)), "Infinity");
    ck_assert(json_real_value(json_array_get(j, 2)) == 2.0);
    ck_assert_str_eq(json_string_value(json_array_get(j, 3)), "-Infinity");
    json_decref(j);
    double w[] = {-NAN, -INFINITY};
    fuse_tensor t64 = {.dtype = FUSE_F64, .rank = 1, .shape = {2}, .data = w};
    ck_assert_int_eq(io_json_write(path_in("nan64.json"), &t64, &err), FUSE_OK);
    j = load_json(path_in("nan64.json"));
    ck_assert_str_eq(json_string_value(json_array_get(j, 0)), "NaN"); /* no sign on NaN */
    ck_assert_str_eq(json_string_value(json_array_get(j, 1)), "-Infinity");
    json_decref(j);
    fuse_tensor e = {.dtype = FUSE_F32, .rank = 2, .shape = {2, 0}, .data = NULL};
    ck_assert_int_eq(io_json_write(path_in("e.json"), &e, &err), FUSE_OK);
    j = load_json(path_in("e.json"));
    ck_assert_uint_eq(json_array_size(j), 2);
    ck_assert_uint_eq(json_array_size(json_array_get(j, 1)), 0);
    json_decref(j);
}
END_TEST

/* Splits a .jsonl file into its lines and parses each with jansson. */
static void load_jsonl(const char *path, json_t **head, json_t **body, char **first_line)
{
    void *text;
    size_t n;
    char *err = NULL;
    ck_assert_int_eq(sup_read_file(path, &text, &n, &err), FUSE_OK);
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_int_eq(((char *)text)[n - 1], '\n');
    ck_assert_ptr_eq(strchr(nl + 1, '\n'), (char *)text + n - 1); /* exactly two lines */
    *nl = '\0';
    json_error_t je;
    *head = json_loads(text, 0, &je);
    *body = json_loads(nl + 1, 0, &je);
    ck_assert_ptr_nonnull(*head);
    ck_assert_ptr_nonnull(*body);
    *first_line = strdup(text);
    free(text);
}

START_TEST(test_jsonl_write_schema)
{
    int32_t v[] = {0, 1, 2, 3, 4, 5};
    fuse_tensor t = {.dtype = FUSE_I32, .rank = 2, .shape = {2, 3}, .data = v};
    char *err = NULL, *line;
    ck_assert_int_eq(io_jsonl_write(path_in("t.jsonl"), &t, &err), FUSE_OK);
    json_t *head, *body;
    load_jsonl(path_in("t.jsonl"), &head, &body, &line);
    ck_assert_str_eq(line, "{\"schema\": \"fuse.tensor\", \"version\": 1, \"shape\": [2, 3]}");
    ck_assert_str_eq(json_string_value(json_object_get(head, "schema")), "fuse.tensor");
    ck_assert_int_eq(json_integer_value(json_object_get(head, "version")), 1);
    json_t *value = json_object_get(body, "value");
    ck_assert_uint_eq(json_object_size(body), 1);
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(value, r), c)),
                             v[r * 3 + c]);
    json_decref(head);
    json_decref(body);
    free(line);
    /* Rank 0: empty shape and a bare value. */
    float x = -0.375f;
    fuse_tensor s = {.dtype = FUSE_F32, .rank = 0, .data = &x};
    ck_assert_int_eq(io_jsonl_write(path_in("s.jsonl"), &s, &err), FUSE_OK);
    load_jsonl(path_in("s.jsonl"), &head, &body, &line);
    ck_assert_uint_eq(json_array_size(json_object_get(head, "shape")), 0);
    ck_assert(json_real_value(json_object_get(body, "value")) == -0.375);
    json_decref(head);
    json_decref(body);
    free(line);
}
END_TEST

START_TEST(test_json_encode_matches_file_and_rejects_bad)
{
    float v[] = {1.5f, 2.0f};
    fuse_tensor t = {.dtype = FUSE_F32, .rank = 1, .shape = {2}, .data = v};
    char *text, *err = NULL;
    size_t len;
    ck_assert_int_eq(io_json_encode(&t, false, &text, &len, &err), FUSE_OK);
    ck_assert_str_eq(text, "[1.5, 2.0]\n");
    ck_assert_uint_eq(len, strlen(text));
    free(text);
    fuse_tensor bad = {.dtype = (fuse_dtype)42, .rank = 1, .shape = {2}, .data = v};
    const char *p = path_in("bad.json");
    assert_error_names(io_json_write(p, &bad, &err), FUSE_E_ARG, err, p);
    ck_assert(!path_exists(p));
}
END_TEST

START_TEST(test_f16_json_writes_exact_values)
{
    const uint16_t h[] = {0x3555, 0x7C00, 0xC000};
    fuse_tensor t = {.dtype = FUSE_F16, .rank = 1, .shape = {3}, .data = (void *)h};
    char *err = NULL;
    ck_assert_int_eq(io_json_write(path_in("h.json"), &t, &err), FUSE_OK);
    json_t *j = load_json(path_in("h.json"));
    ck_assert((float)json_real_value(json_array_get(j, 0)) == 0.333251953125f);
    ck_assert_str_eq(json_string_value(json_array_get(j, 1)), "Infinity");
    ck_assert(json_real_value(json_array_get(j, 2)) == -2.0);
    json_decref(j);
}
END_TEST

/* ---- fileutil.c ---- */

START_TEST(test_fileutil_write_and_read)
{
    char *err = NULL;
    const char *p = path_in("x/y/z.bin");
    ck_assert_int_eq(sup_write_file_atomic(p, "hello", 5, &err), FUSE_OK);
    ck_assert_int_eq(sup_write_file_atomic(p, "bye", 3, &err), FUSE_OK);
    void *data;
    size_t n;
    ck_assert_int_eq(sup_read_file(p, &data, &n, &err), FUSE_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(data, "bye"); /* NUL-terminated */
    free(data);
    ck_assert_int_eq(sup_write_file_atomic(path_in("empty"), NULL, 0, &err), FUSE_OK);
    ck_assert_int_eq(sup_read_file(path_in("empty"), &data, &n, &err), FUSE_OK);
    ck_assert_uint_eq(n, 0);
    free(data);
    bool has_tmp;
    ck_assert_int_eq(count_entries(path_in("x/y"), &has_tmp), 1);
    ck_assert(!has_tmp);
}
END_TEST

START_TEST(test_fileutil_failed_write_leaves_nothing)
{
    char *err = NULL;
    bool has_tmp;
    /* Target is an existing directory: the temporary is made, then rename fails. */
    ck_assert_int_eq(mkdir(path_in("dir"), 0777), 0);
    assert_error_names(sup_write_file_atomic(path_in("dir"), "x", 1, &err), FUSE_E_IO, err,
                       "dir");
    ck_assert_int_eq(count_entries(scratch, &has_tmp), 1);
    ck_assert(!has_tmp);
    ck_assert_int_eq(count_entries(path_in("dir"), &has_tmp), 0);
    /* A parent component is a regular file. */
    write_file(path_in("plain"), "p", 1);
    err = NULL;
    assert_error_names(sup_write_file_atomic(path_in("plain/sub/f.txt"), "x", 1, &err),
                       FUSE_E_IO, err, "plain");
    err = NULL;
    assert_error_names(sup_write_file_atomic(path_in("plain/f.txt"), "x", 1, &err), FUSE_E_IO,
                       err, "plain");
    ck_assert_int_eq(count_entries(scratch, &has_tmp), 2);
    ck_assert(!has_tmp);
    /* Trailing slash: a directory name, not a file. */
    err = NULL;
    assert_error_names(sup_write_file_atomic(path_in("new/"), "x", 1, &err), FUSE_E_IO, err,
                       "new/");
    if (geteuid() != 0) { /* root ignores directory permissions */
        ck_assert_int_eq(mkdir(path_in("ro"), 0555), 0);
        err = NULL;
        assert_error_names(sup_write_file_atomic(path_in("ro/f"), "x", 1, &err), FUSE_E_IO,
                           err, "ro/f");
        ck_assert_int_eq(count_entries(path_in("ro"), &has_tmp), 0);
    }
}
END_TEST

START_TEST(test_fileutil_modes)
{
    char *err = NULL;
    struct stat st;
    umask(027);
    ck_assert_int_eq(sup_write_file_atomic(path_in("m1"), "a", 1, &err), FUSE_OK);
    ck_assert_int_eq(stat(path_in("m1"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    /* Replacing a file keeps its mode. */
    ck_assert_int_eq(chmod(path_in("m1"), 0604), 0);
    ck_assert_int_eq(sup_write_file_atomic(path_in("m1"), "b", 1, &err), FUSE_OK);
    ck_assert_int_eq(stat(path_in("m1"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0604);
}
END_TEST

START_TEST(test_fileutil_read_errors_and_dirs)
{
    char *err = NULL;
    void *data = (void *)1;
    size_t n = 99;
    const char *p = path_in("absent");
    assert_error_names(sup_read_file(p, &data, &n, &err), FUSE_E_IO, err, p);
    ck_assert_ptr_null(data);
    err = NULL;
    assert_error_names(sup_read_file(scratch, &data, &n, &err), FUSE_E_IO, err, scratch);
    ck_assert_int_eq(sup_make_parent_dirs(path_in("p//q/r/file"), &err), FUSE_OK);
    struct stat st;
    ck_assert_int_eq(stat(path_in("p/q/r"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert(!path_exists(path_in("p/q/r/file")));
    ck_assert_int_eq(sup_make_parent_dirs("relative-file", &err), FUSE_OK);
    ck_assert_int_eq(sup_make_parent_dirs("/", &err), FUSE_OK);
}
END_TEST

START_TEST(test_fileutil_strprintf_and_fail)
{
    char *s = sup_strprintf("%s-%d-%.2f", "a", 42, 1.5);
    ck_assert_str_eq(s, "a-42-1.50");
    free(s);
    char *err = NULL;
    ck_assert_int_eq(sup_fail(&err, FUSE_E_SHAPE, "%s:%d", "f", 3), FUSE_E_SHAPE);
    ck_assert_str_eq(err, "f:3");
    free(err);
    ck_assert_int_eq(sup_fail(NULL, FUSE_E_IO, "ignored %d", 1), FUSE_E_IO);
}
END_TEST

/* Runs prog.fuse with $FUSE_JIT_LIBZIP naming a library that does not exist. */
static Result run_without_libzip(const char *out, bool compress)
{
    setenv("FUSE_JIT_LIBZIP", "/nonexistent/libzip.so", 1);
    Result r = compress ? run_cli("run", "prog.fuse", "--compress", "--out", out, NULL)
                        : run_cli("run", "prog.fuse", "--out", out, NULL);
    unsetenv("FUSE_JIT_LIBZIP");
    return r;
}

static void expect_no_libzip(Result *r, const char *verb, const char *file)
{
    /* file may be given as ./file */
    char *want = sup_strprintf("%s needs libzip (/nonexistent/libzip.so): ", file);
    ck_assert_msg(r->code > 0 && r->code < 128 && strstr(r->err, verb) &&
                      strstr(r->err, want) && strstr(r->err, "cannot open shared object"),
                  "exit %d, stderr '%s', want '%s...'", r->code, r->err, want);
    free(want);
    result_free(r);
}

/* libzip is loaded on the first .npz read only (each run is a fresh process;
 * writing is minizip's): when it cannot be loaded, that read is a clear I/O error,
 * and every other run, .npz writes included, still works. */
START_TEST(test_npz_without_libzip)
{
    run_program("A[i] = const([1.0, 2.0])\nexport A\n", "a.npz");
    Result r = run_without_libzip("a.npy", false);
    expect_exit(&r, 0);
    result_free(&r);
    float *a = read_npy("a.npy", 1, (int64_t[]){2});
    ck_assert(a[0] == 1.0f && a[1] == 2.0f);
    free(a);
    r = run_without_libzip("b.npz", false);
    expect_exit(&r, 0);
    result_free(&r);
    ck_assert(file_exists("b.npz"));
    r = run_without_libzip("c.npz", true);
    expect_exit(&r, 0);
    result_free(&r);
    ck_assert(file_exists("c.npz"));
    write_text("prog.fuse", "X[i] = \"a.npz\"\nY[i] = X[i]\nexport Y\n");
    r = run_without_libzip("y.npy", false);
    expect_no_libzip(&r, "reading", "a.npz");
    r = run_cli("run", "prog.fuse", "--out", "y.npy", NULL); /* libzip found again */
    expect_exit(&r, 0);
    result_free(&r);
    /* and the archives written without it read back */
    write_text("prog.fuse", "X[i] = \"c.npz\"\nexport X\n");
    r = run_cli("run", "prog.fuse", "--out", "z.npy", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *z = read_npy("z.npy", 1, (int64_t[]){2});
    ck_assert(z[0] == 1.0f && z[1] == 2.0f);
    free(z);
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    struct {
        const char *name;
        const TTest *tests[16];
    } groups[] = {
        {"tensor",
         {test_tensor_dtype_info, test_tensor_alloc_aligned, test_tensor_shape_count,
          test_tensor_convert_to_f32, test_tensor_from_f32_saturates,
          test_tensor_from_f32_rejects_bad_args}},
        {"npy",
         {test_npy_roundtrip_every_dtype_and_rank, test_npy_roundtrip_empty_and_mem,
          test_npy_encode_header_layout, test_npy_write_creates_parent_dirs,
          test_npy_fortran_order_2d, test_npy_fortran_order_3d_int16, test_npy_versions_2_and_3,
          test_npy_big_endian, test_npy_big_endian_fortran, test_npy_header_variants,
          test_npy_every_dtype_descr, test_npy_bf16_written_as_float32}},
        {"npy_malformed",
         {test_npy_truncated_at_many_lengths, test_npy_bad_magic_and_version,
          test_npy_bad_header_dicts, test_npy_header_length_beyond_file,
          test_npy_missing_file_and_directory, test_npy_write_rejects_bad_tensor,
          test_npy_refuses_non_numeric_dtypes}},
        {"float16",
         {test_f16_npy_reads_known_bits, test_f16_round_trip_rounding,
          test_f16_every_half_round_trips, test_f16_npy_write_and_read_back,
          test_f16_json_writes_exact_values}},
        {"npz",
         {test_npz_roundtrip_several_members, test_npz_member_choice, test_npz_empty_archive,
          test_npz_stored_member, test_npz_bad_member_and_corrupt_archive,
          test_npz_failed_write_leaves_nothing, test_npz_without_libzip,
          test_npz_utf8_member_name}},
        {"json",
         {test_json_write_nested_floats, test_json_write_scalar_ints_bools_f64,
          test_json_nonfinite_and_empty, test_jsonl_write_schema,
          test_json_encode_matches_file_and_rejects_bad}},
        {"fileutil",
         {test_fileutil_write_and_read, test_fileutil_failed_write_leaves_nothing,
          test_fileutil_modes, test_fileutil_read_errors_and_dirs,
          test_fileutil_strprintf_and_fail}},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
        tcase_add_checked_fixture(tc, scratch_setup, NULL);
        for (size_t i = 0; groups[g].tests[i]; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
