/*
 * safetensors.c: one tensor of a .safetensors file, converted to float32.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON mapping
 * names to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional
 * "__metadata__"), then the data, little-endian, C order, offsets relative to the
 * end of the header. Everything is checked against the file size before any
 * allocation that depends on it, and only the chosen tensor's bytes are read, in
 * fixed-size chunks, so a large checkpoint is never loaded whole.
 */
#define _POSIX_C_SOURCE 200809L

#include "io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- .safetensors ---- */

#define ST_HEADER_MAX ((uint64_t)100 << 20) /* the format's own header limit, 100 MB */
#define ST_CHUNK ((size_t)1 << 16)          /* bytes read and converted at a time */

typedef enum StKind {
    ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8,
    ST_U64, ST_U32, ST_U16, ST_U8, ST_BOOL, ST_KIND_COUNT
} StKind;

static const struct {
    const char *name; /* as spelled in the header */
    size_t size;      /* bytes per element */
} st_dtypes[] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1}, [ST_U64] = {"U64", 8},
    [ST_U32] = {"U32", 4}, [ST_U16] = {"U16", 2}, [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},
};
static_assert(sizeof st_dtypes / sizeof st_dtypes[0] == ST_KIND_COUNT,
              "st_dtypes must cover every StKind");

/* One tensor's header entry, checked. */
typedef struct StTensor {
    StKind kind;
    int rank;
    int64_t shape[FUSE_MAX_RANK];
    int64_t count;       /* elements */
    uint64_t offset;     /* absolute file offset of the first byte */
} StTensor;

/* n little-endian bytes as an unsigned integer. */
static uint64_t le_bytes(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* IEEE binary16 → float32, including subnormals, infinities and NaN. */
static float bits_to_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* One element at p as float32. */
static float st_elem(StKind k, const unsigned char *p)
{
    switch (k) {
    case ST_F64: {
        uint64_t b = le_bytes(p, 8);
        double d;
        memcpy(&d, &b, sizeof d);
        return (float)d;
    }
    case ST_F32: return bits_to_float((uint32_t)le_bytes(p, 4));
    case ST_F16: return io_half_to_float((uint16_t)le_bytes(p, 2));
    case ST_BF16: return bits_to_float((uint32_t)le_bytes(p, 2) << 16);
    case ST_I64: return (float)(int64_t)le_bytes(p, 8);
    case ST_I32: return (float)(int32_t)(uint32_t)le_bytes(p, 4);
    case ST_I16: return (float)(int16_t)(uint16_t)le_bytes(p, 2);
    case ST_I8: return (float)(int8_t)p[0];
    case ST_U64: return (float)le_bytes(p, 8);
    case ST_U32: return (float)(uint32_t)le_bytes(p, 4);
    case ST_U16: return (float)(uint16_t)le_bytes(p, 2);
    case ST_U8: return (float)p[0];
    case ST_BOOL: return p[0] ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

/* Reads exactly n bytes at off; a short file is "truncated". */
static fuse_status st_pread(int fd, const char *path, void *buf, size_t n, uint64_t off,
                            char **err)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sup_fail(err, FUSE_E_IO, "%s: cannot read: %s", path, strerror(errno));
        if (r == 0)
            return sup_fail(err, FUSE_E_IO, "%s: truncated .safetensors file", path);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return FUSE_OK;
}

/* Reads and parses the JSON header; *data_start is where the data region begins. */
static fuse_status st_header(int fd, const char *path, uint64_t size, json_t **root,
                             uint64_t *data_start, char **err)
{
    unsigned char pre[8] = {0};
    if (size < 8)
        return sup_fail(err, FUSE_E_IO, "%s: too short for a .safetensors file (%llu bytes)",
                       path, (unsigned long long)size);
    fuse_status st = st_pread(fd, path, pre, 8, 0, err);
    uint64_t n = le_bytes(pre, 8);
    if (st == FUSE_OK && (n > size - 8 || n > ST_HEADER_MAX || n < 2))
        st = sup_fail(err, FUSE_E_IO, "%s: header length %llu does not fit the file (%llu "
                     "bytes; at most 100 MB)", path, (unsigned long long)n,
                     (unsigned long long)size);
    char *text = st == FUSE_OK ? malloc((size_t)n) : NULL;
    if (st == FUSE_OK && !text)
        st = sup_fail(err, FUSE_E_NOMEM, "%s: out of memory for the header", path);
    if (st == FUSE_OK)
        st = st_pread(fd, path, text, (size_t)n, 8, err);
    if (st == FUSE_OK)
        st = io_json_parse(path, 1, text, (size_t)n, root, err);
    free(text);
    if (st == FUSE_OK && !json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        st = sup_fail(err, FUSE_E_IO, "%s: the header is not a JSON object", path);
    }
    *data_start = 8 + n;
    return st;
}

/* The entry to read: `name` if present, else the only tensor. */
static fuse_status st_pick(const char *path, json_t *root, const char *name,
                           const char **picked, json_t **entry, char **err)
{
    size_t n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        if (n++ == 0 || (name && strcmp(key, name) == 0)) {
            *picked = key;
            *entry = val;
        }
        if (name && strcmp(key, name) == 0)
            return FUSE_OK;
    }
    if (n == 1)
        return FUSE_OK;
    if (n == 0)
        return sup_fail(err, FUSE_E_IO, "%s: holds no tensors", path);
    if (name)
        return sup_fail(err, FUSE_E_IO, "%s: no tensor named '%s' among its %zu tensors",
                       path, name, n);
    return sup_fail(err, FUSE_E_IO, "%s: holds %zu tensors; name the one to read", path, n);
}

/* The dtype and shape of an entry. */
static fuse_status st_entry_type(const char *path, const char *tname, json_t *e,
                                 StTensor *t, char **err)
{
    const char *dt = json_string_value(json_object_get(e, "dtype"));
    json_t *shape = json_object_get(e, "shape");
    t->kind = ST_KIND_COUNT;
    for (int k = 0; dt && k < ST_KIND_COUNT; k++)
        if (strcmp(dt, st_dtypes[k].name) == 0)
            t->kind = (StKind)k;
    if (t->kind == ST_KIND_COUNT)
        return sup_fail(err, FUSE_E_IO, "%s: tensor '%s': %s dtype%s%s", path, tname,
                       dt ? "unsupported" : "missing", dt ? " " : "", dt ? dt : "");
    if (!json_is_array(shape) || json_array_size(shape) > FUSE_MAX_RANK)
        return sup_fail(err, FUSE_E_IO, "%s: tensor '%s': \"shape\" is not a list of at "
                       "most %d sizes", path, tname, FUSE_MAX_RANK);
    t->rank = (int)json_array_size(shape);
    for (int d = 0; d < t->rank; d++) {
        json_t *s = json_array_get(shape, (size_t)d);
        if (!json_is_integer(s) || json_integer_value(s) < 0)
            return sup_fail(err, FUSE_E_IO, "%s: tensor '%s': bad size in \"shape\"", path,
                           tname);
        t->shape[d] = (int64_t)json_integer_value(s);
    }
    t->count = io_shape_count(t->rank, t->shape);
    if (t->count < 0 || t->count > IO_MAX_READ_ELEMS)
        return sup_fail(err, FUSE_E_IO, "%s: tensor '%s' is too large", path, tname);
    return FUSE_OK;
}

/* Checks "data_offsets" against the shape and the data region [start, size). */
static fuse_status st_entry_offsets(const char *path, const char *tname, json_t *e,
                                    uint64_t start, uint64_t size, StTensor *t, char **err)
{
    json_t *offs = json_object_get(e, "data_offsets");
    json_t *jb = json_array_get(offs, 0), *je = json_array_get(offs, 1);
    if (json_array_size(offs) != 2 || !json_is_integer(jb) || !json_is_integer(je) ||
        json_integer_value(jb) < 0 || json_integer_value(je) < json_integer_value(jb))
        return sup_fail(err, FUSE_E_IO, "%s: tensor '%s': \"data_offsets\" is not [begin, "
                       "end] with 0 <= begin <= end", path, tname);
    uint64_t b = (uint64_t)json_integer_value(jb), end = (uint64_t)json_integer_value(je);
    uint64_t want = (uint64_t)t->count * st_dtypes[t->kind].size;
    if (end - b != want)
        return sup_fail(err, FUSE_E_IO, "%s: tensor '%s': data_offsets span %llu bytes, but "
                       "its shape and dtype need %llu", path, tname,
                       (unsigned long long)(end - b), (unsigned long long)want);
    if (end > size - start)
        return sup_fail(err, FUSE_E_IO, "%s: tensor '%s': data_offsets end at %llu, past the "
                       "end of the data (%llu bytes; truncated file?)", path, tname,
                       (unsigned long long)end, (unsigned long long)(size - start));
    t->offset = start + b;
    return FUSE_OK;
}

/* Reads t's bytes chunk by chunk, converting into dst. */
static fuse_status st_read_data(int fd, const char *path, const StTensor *t, float *dst,
                                char **err)
{
    size_t esize = st_dtypes[t->kind].size;
    unsigned char *buf = malloc(ST_CHUNK);
    if (!buf)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    fuse_status st = FUSE_OK;
    int64_t per = (int64_t)(ST_CHUNK / esize);
    for (int64_t i = 0; st == FUSE_OK && i < t->count; i += per) {
        int64_t m = t->count - i < per ? t->count - i : per;
        st = st_pread(fd, path, buf, (size_t)m * esize, t->offset + (uint64_t)i * esize, err);
        for (int64_t j = 0; st == FUSE_OK && j < m; j++)
            dst[i + j] = st_elem(t->kind, buf + (size_t)j * esize);
    }
    free(buf);
    return st;
}

/* The dtype a float entry keeps with keep_floats (F64, F16, BF16: every digit
 * for a precision that can hold them); FUSE_F32 otherwise (converted). */
static fuse_dtype st_kept_dtype(StKind k, bool keep_floats)
{
    if (!keep_floats)
        return FUSE_F32;
    return k == ST_F64 ? FUSE_F64 : k == ST_F16 ? FUSE_F16 : k == ST_BF16 ? FUSE_BF16 : FUSE_F32;
}

/* Reads t's bytes as they are (little-endian elements of esize bytes) into dst. */
static fuse_status st_read_raw(int fd, const char *path, const StTensor *t, void *dst,
                               char **err)
{
    size_t esize = st_dtypes[t->kind].size;
    fuse_status st = st_pread(fd, path, dst, (size_t)t->count * esize, t->offset, err);
    unsigned char *p = dst;
    for (int64_t i = 0; st == FUSE_OK && i < t->count; i++, p += esize) {
        uint64_t v = le_bytes(p, (int)esize); /* host order, whatever the host */
        if (esize == 8)
            memcpy(p, &v, 8);
        else {
            uint16_t h = (uint16_t)v;
            memcpy(p, &h, 2);
        }
    }
    return st;
}

/* Finds, checks and reads the tensor from an open file of `size` bytes. */
static fuse_status st_load(int fd, const char *path, uint64_t size, const char *name,
                           bool keep_floats, fuse_tensor *out, char **err)
{
    json_t *root = NULL, *entry = NULL;
    uint64_t start = 0;
    const char *tname = NULL;
    StTensor t = {0};
    fuse_status st = st_header(fd, path, size, &root, &start, err);
    if (st == FUSE_OK)
        st = st_pick(path, root, name, &tname, &entry, err);
    if (st == FUSE_OK && !json_is_object(entry))
        st = sup_fail(err, FUSE_E_IO, "%s: tensor '%s': not a JSON object", path, tname);
    if (st == FUSE_OK)
        st = st_entry_type(path, tname, entry, &t, err);
    if (st == FUSE_OK)
        st = st_entry_offsets(path, tname, entry, start, size, &t, err);
    fuse_dtype dt = st == FUSE_OK ? st_kept_dtype(t.kind, keep_floats) : FUSE_F32;
    void *data = NULL;
    if (st == FUSE_OK && !(data = io_alloc_aligned((size_t)t.count * fuse_dtype_size(dt) + 8)))
        st = sup_fail(err, FUSE_E_NOMEM, "%s: out of memory for tensor '%s'", path, tname);
    if (st == FUSE_OK)
        st = dt == FUSE_F32 ? st_read_data(fd, path, &t, data, err)
                            : st_read_raw(fd, path, &t, data, err);
    json_decref(root);
    if (st != FUSE_OK) {
        free(data);
        return st;
    }
    out->dtype = dt;
    out->rank = t.rank;
    memcpy(out->shape, t.shape, sizeof t.shape);
    out->data = data;
    return FUSE_OK;
}

static fuse_status st_read_file(const char *path, const char *name, bool keep_floats,
                                fuse_tensor *out, char **err)
{
    if (!path || !out)
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read safetensors",
                       path ? path : "(null)");
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sup_fail(err, FUSE_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    fuse_status st;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = sup_fail(err, FUSE_E_IO, "%s: not a regular file", path);
    else
        st = st_load(fd, path, (uint64_t)sb.st_size, name, keep_floats, out, err);
    close(fd);
    return st;
}

fuse_status io_safetensors_read(const char *path, const char *name, fuse_tensor *out,
                                char **err)
{
    return st_read_file(path, name, false, out, err);
}

fuse_status io_safetensors_read_native(const char *path, const char *name, fuse_tensor *out,
                                       char **err)
{
    return st_read_file(path, name, true, out, err);
}
