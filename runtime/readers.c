/*
 * readers.c: dense tensors from .json, .jsonl (the fuse.tensor schema) and
 * .safetensors files, converted to float32.
 *
 * JSON documents are parsed with jansson. A tensor is rectangular nested lists:
 * the first element at each depth fixes the shape, then every list at depth d must
 * have shape[d] entries and every leaf must sit at depth rank. Leaves are numbers
 * (rounded to float32), booleans (1/0) and null (NaN: the writers' spelling of a
 * non-finite value, since JSON has none); strings and objects are errors that name
 * the element ("[1][0]").
 *
 * .safetensors: an 8-byte little-endian header length N, N bytes of JSON mapping
 * names to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional
 * "__metadata__"), then the data, little-endian, C order, offsets relative to the
 * end of the header. Everything is checked against the file size before any
 * allocation that depends on it, and only the chosen tensor's bytes are read, in
 * fixed-size chunks, so a large checkpoint is never loaded whole.
 */
#define _POSIX_C_SOURCE 200809L

#include "runtime.h"

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

/* ---- nested lists ---- */

/* The walk over one nested-list value. */
typedef struct Nest {
    const char *where;               /* "file" or "file:line", for messages */
    int rank;
    int64_t shape[FUSE_MAX_RANK];
    int64_t pos[FUSE_MAX_RANK];      /* index path of the current element */
    float *dst;                      /* C-order output */
    int64_t n;                       /* elements written */
} Nest;

/* "[i][j]..." for the first depth entries of the index path ("the value" if 0). */
static void nest_path(const Nest *nt, int depth, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s", depth ? "" : "the value");
    for (int d = 0; d < depth && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "[%lld]", (long long)nt->pos[d]);
}

static fuse_status nest_error(const Nest *nt, int depth, const char *what, char **err)
{
    char at[16 * FUSE_MAX_RANK + 16];
    nest_path(nt, depth, at, sizeof at);
    return sup_fail(err, FUSE_E_IO, "%s: %s %s", nt->where, at, what);
}

/* Stores one leaf: a number, a boolean or null. */
static fuse_status nest_leaf(Nest *nt, json_t *j, int depth, char **err)
{
    float x;
    if (json_is_number(j))
        x = (float)json_number_value(j);
    else if (json_is_boolean(j))
        x = json_is_true(j) ? 1.0f : 0.0f;
    else if (json_is_null(j))
        x = NAN;
    else if (json_is_array(j))
        return nest_error(nt, depth, "is a list where a number is expected (ragged or "
                          "deeper than its first element)", err);
    else
        return nest_error(nt, depth, json_is_string(j) ? "is a string, not a number"
                                                       : "is an object, not a number", err);
    nt->dst[nt->n++] = x;
    return FUSE_OK;
}

/* Checks j against shape[depth..] and stores its leaves in C order. */
static fuse_status nest_fill(Nest *nt, json_t *j, int depth, char **err)
{
    if (depth == nt->rank)
        return nest_leaf(nt, j, depth, err);
    if (!json_is_array(j))
        return nest_error(nt, depth, "is not a list (the nesting is ragged)", err);
    if ((int64_t)json_array_size(j) != nt->shape[depth]) {
        char what[96];
        snprintf(what, sizeof what, "has %zu entr%s where %lld %s expected (ragged)",
                 json_array_size(j), json_array_size(j) == 1 ? "y" : "ies",
                 (long long)nt->shape[depth], nt->shape[depth] == 1 ? "is" : "are");
        return nest_error(nt, depth, what, err);
    }
    for (size_t i = 0; i < json_array_size(j); i++) {
        nt->pos[depth] = (int64_t)i;
        fuse_status st = nest_fill(nt, json_array_get(j, i), depth + 1, err);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

/* The shape of j from its first elements at each depth. */
static fuse_status nest_infer(Nest *nt, json_t *j, char **err)
{
    nt->rank = 0;
    while (json_is_array(j)) {
        if (nt->rank == FUSE_MAX_RANK)
            return sup_fail(err, FUSE_E_IO, "%s: lists nested deeper than %d levels",
                           nt->where, FUSE_MAX_RANK);
        nt->shape[nt->rank++] = (int64_t)json_array_size(j);
        if (json_array_size(j) == 0)
            break;
        j = json_array_get(j, 0);
    }
    return FUSE_OK;
}

/* Allocates for nt's shape, fills from j and hands the tensor to *out. */
static fuse_status nest_to_tensor(Nest *nt, json_t *j, fuse_tensor *out, char **err)
{
    int64_t count = rt_shape_count(nt->rank, nt->shape);
    if (count < 0 || count > RT_MAX_READ_ELEMS)
        return sup_fail(err, FUSE_E_IO, "%s: the tensor is too large", nt->where);
    nt->dst = rt_alloc_aligned((size_t)count * sizeof(float));
    if (!nt->dst)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", nt->where);
    nt->n = 0;
    fuse_status st = nest_fill(nt, j, 0, err);
    if (st != FUSE_OK) {
        free(nt->dst);
        return st;
    }
    out->dtype = FUSE_F32;
    out->rank = nt->rank;
    memcpy(out->shape, nt->shape, sizeof nt->shape);
    out->data = nt->dst;
    return FUSE_OK;
}

/* Parses n bytes of JSON (any value at the top); errors "where:line:col: why",
 * with line counted from first_line. */
static fuse_status parse_json(const char *where, long first_line, const char *s, size_t n,
                              json_t **out, char **err)
{
    json_error_t je;
    *out = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (*out)
        return FUSE_OK;
    return sup_fail(err, FUSE_E_IO, "%s:%ld:%d: invalid JSON: %s", where,
                   first_line + (je.line > 0 ? je.line - 1 : 0), je.column, je.text);
}

fuse_status rt_json_read(const char *path, fuse_tensor *out, char **err)
{
    if (!path || !out)
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read JSON",
                       path ? path : "(null)");
    memset(out, 0, sizeof *out);
    void *text;
    size_t n;
    fuse_status st = sup_read_file(path, &text, &n, err);
    if (st != FUSE_OK)
        return st;
    json_t *root = NULL;
    st = parse_json(path, 1, text, n, &root, err);
    free(text);
    Nest nt = {.where = path};
    if (st == FUSE_OK)
        st = nest_infer(&nt, root, err);
    if (st == FUSE_OK)
        st = nest_to_tensor(&nt, root, out, err);
    json_decref(root);
    return st;
}

/* ---- .jsonl: the fuse.tensor schema ---- */

/* Reads the header object's "shape" (and checks "schema" and "version"). */
static fuse_status jsonl_header(Nest *nt, json_t *h, char **err)
{
    json_t *schema = json_object_get(h, "schema"), *version = json_object_get(h, "version");
    json_t *shape = json_object_get(h, "shape");
    const char *name = json_string_value(schema);
    if (name && strcmp(name, "fuse.topk") == 0)
        return sup_fail(err, FUSE_E_IO, "%s: a fuse.topk file holds top-k rows, not a "
                       "tensor", nt->where);
    if (!name || strcmp(name, "fuse.tensor") != 0)
        return sup_fail(err, FUSE_E_IO, "%s: the first line is not a {\"schema\": "
                       "\"fuse.tensor\", ...} header", nt->where);
    if (version && (!json_is_integer(version) || json_integer_value(version) != 1))
        return sup_fail(err, FUSE_E_IO, "%s: unsupported fuse.tensor version", nt->where);
    if (!json_is_array(shape) || json_array_size(shape) > FUSE_MAX_RANK)
        return sup_fail(err, FUSE_E_IO, "%s: \"shape\" is not a list of at most %d sizes",
                       nt->where, FUSE_MAX_RANK);
    nt->rank = (int)json_array_size(shape);
    for (int d = 0; d < nt->rank; d++) {
        json_t *s = json_array_get(shape, (size_t)d);
        if (!json_is_integer(s) || json_integer_value(s) < 0)
            return sup_fail(err, FUSE_E_IO, "%s: \"shape\" entry %d is not a size",
                           nt->where, d);
        nt->shape[d] = (int64_t)json_integer_value(s);
    }
    return FUSE_OK;
}

/* Handles content line number k (0: header, 1: value) read from text line `line`. */
static fuse_status jsonl_line(const char *path, long line, int k, const char *s, size_t n,
                              Nest *nt, fuse_tensor *out, char **err)
{
    char *where = sup_strprintf("%s:%ld", path, line);
    if (!where)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    nt->where = where;
    json_t *j = NULL;
    fuse_status st = k > 1 ? sup_fail(err, FUSE_E_IO, "%s: unexpected line after the value",
                                     where)
                           : parse_json(path, line, s, n, &j, err);
    if (st == FUSE_OK && !json_is_object(j))
        st = sup_fail(err, FUSE_E_IO, "%s: expected a JSON object", where);
    if (st == FUSE_OK && k == 0)
        st = jsonl_header(nt, j, err);
    else if (st == FUSE_OK && !json_object_get(j, "value"))
        st = sup_fail(err, FUSE_E_IO, "%s: expected {\"value\": ...}", where);
    else if (st == FUSE_OK)
        st = nest_to_tensor(nt, json_object_get(j, "value"), out, err);
    json_decref(j);
    free(where);
    nt->where = path;
    return st;
}

/* Whether s[0..n) holds only blanks. */
static bool is_blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

fuse_status rt_jsonl_read(const char *path, fuse_tensor *out, char **err)
{
    if (!path || !out)
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read JSON lines",
                       path ? path : "(null)");
    memset(out, 0, sizeof *out);
    void *buf = NULL;
    size_t n = 0;
    fuse_status st = sup_read_file(path, &buf, &n, err);
    char *text = buf;
    Nest nt = {.where = path};
    int k = 0;
    for (size_t start = 0, line = 1; st == FUSE_OK && start < n; line++) {
        const char *nl = memchr(text + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - text) : n;
        if (!is_blank_line(text + start, end - start))
            st = jsonl_line(path, (long)line, k++, text + start, end - start, &nt, out, err);
        start = end + 1;
    }
    if (st == FUSE_OK && k < 2)
        st = sup_fail(err, FUSE_E_IO, "%s: %s", path, k == 0 ? "empty: no fuse.tensor header"
                                                            : "no {\"value\": ...} line");
    if (st != FUSE_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    free(text);
    return st;
}

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
static float half_to_float(uint16_t h)
{
    int exp = (h >> 10) & 0x1F;
    int mant = h & 0x3FF;
    float v = exp == 0    ? ldexpf((float)mant, -24)
            : exp == 31   ? (mant ? NAN : INFINITY)
                          : ldexpf((float)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -v : v;
}

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
    case ST_F16: return half_to_float((uint16_t)le_bytes(p, 2));
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
        st = parse_json(path, 1, text, (size_t)n, root, err);
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
    t->count = rt_shape_count(t->rank, t->shape);
    if (t->count < 0 || t->count > RT_MAX_READ_ELEMS)
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

/* Finds, checks and reads the tensor from an open file of `size` bytes. */
static fuse_status st_load(int fd, const char *path, uint64_t size, const char *name,
                           fuse_tensor *out, char **err)
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
    float *data = NULL;
    if (st == FUSE_OK && !(data = rt_alloc_aligned((size_t)t.count * sizeof *data)))
        st = sup_fail(err, FUSE_E_NOMEM, "%s: out of memory for tensor '%s'", path, tname);
    if (st == FUSE_OK)
        st = st_read_data(fd, path, &t, data, err);
    json_decref(root);
    if (st != FUSE_OK) {
        free(data);
        return st;
    }
    out->dtype = FUSE_F32;
    out->rank = t.rank;
    memcpy(out->shape, t.shape, sizeof t.shape);
    out->data = data;
    return FUSE_OK;
}

fuse_status rt_safetensors_read(const char *path, const char *name, fuse_tensor *out,
                                char **err)
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
        st = st_load(fd, path, (uint64_t)sb.st_size, name, out, err);
    close(fd);
    return st;
}
