/*
 * npy.c: NumPy .npy images: header parsing, decoding into C-ordered host tensors,
 * and encoding (version 1.0, little-endian, C order).
 *
 * Format: the magic "\x93NUMPY", major and minor version bytes, the header length
 * (u16 little-endian for 1.0, u32 for 2.0 and 3.0), then the header: a Python dict
 * literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by '\n'. The data follows it directly.
 *
 * The dict is read by a small recursive-descent parser over exactly the literal
 * forms NumPy writes (quoted strings, True/False, tuples of integers with an
 * optional Python 2 'L' suffix), in any key order, with any spacing and trailing
 * commas; anything else is a "malformed header" error naming the file. Decoding
 * streams the data straight into the output buffer (sized from the header and
 * checked against the stream length first), byte-swaps foreign-endian data in
 * place and transposes Fortran-ordered data into C order. Bytes after the data are
 * ignored, as NumPy does.
 *
 * Element types: kind 'f' of 2, 4 or 8 bytes, 'i' and 'u' of 1, 2, 4 or 8, and
 * 'b1', in either byte order. Other kinds (complex, objects, strings, datetimes,
 * void) are refused with a message that says what the file holds and what is
 * accepted.
 */
#define _POSIX_C_SOURCE 200809L

#include "io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_PREFIX_MAX 12             /* magic, version, u32 header length */
#define NPY_HEADER_MAX (1u << 24)     /* larger headers are refused (NumPy: 10 kB) */

/* descr kind letter and byte size of each dtype, as NumPy spells them. */
typedef struct NpyType {
    char kind;
    int size;
} NpyType;

static const NpyType npy_types[] = {
    [FUSE_F32] = {'f', 4}, [FUSE_F64] = {'f', 8}, [FUSE_I8] = {'i', 1},
    [FUSE_I16] = {'i', 2}, [FUSE_I32] = {'i', 4}, [FUSE_I64] = {'i', 8},
    [FUSE_U8] = {'u', 1},  [FUSE_U16] = {'u', 2}, [FUSE_U32] = {'u', 4},
    [FUSE_U64] = {'u', 8}, [FUSE_BOOL] = {'b', 1}, [FUSE_F16] = {'f', 2},
    [FUSE_BF16] = {'\0', 0}, /* NumPy has none: written as float32 (io_npy_encode) */
};
_Static_assert(sizeof npy_types / sizeof npy_types[0] == FUSE_DTYPE_COUNT,
               "npy_types must cover every fuse_dtype");

bool io_host_is_big_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 0;
}

void io_swap_bytes(void *data, size_t count, size_t esize)
{
    uint8_t *p = data;
    for (size_t i = 0; i < count; i++, p += esize) {
        for (size_t a = 0, b = esize - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
    }
}

/* Maps a descr string ("<f4", "|b1", ">i8", "=u2", "f8") to a dtype and its byte
 * order; false for anything unsupported. */
static bool descr_to_dtype(const char *descr, fuse_dtype *dt, bool *is_big)
{
    char order = '=';
    if (*descr && strchr("<>|=", *descr))
        order = *descr++;
    char kind = descr[0];
    int size = 0;
    for (const char *s = descr + 1; *s; s++) {
        if (*s < '0' || *s > '9' || size > 100)
            return false;
        size = size * 10 + (*s - '0');
    }
    for (int i = 0; i < FUSE_DTYPE_COUNT; i++) {
        if (npy_types[i].kind == kind && npy_types[i].size == size && descr[1]) {
            *dt = (fuse_dtype)i;
            *is_big = order == '>' || (order != '<' && io_host_is_big_endian());
            return true;
        }
    }
    return false;
}

/* The dtypes descr_to_dtype accepts, for error messages. */
#define NPY_ACCEPTED                                                                      \
    "float16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, "       \
    "uint64 and bool"

/* Why a descr that descr_to_dtype refused is not a tensor dtype, by NumPy's kind
 * letter: kinds that are not numbers are named so the user sees what the file
 * holds; f/i/u/b of another size (float128, say) have no counterpart here. */
static const char *descr_refusal(const char *descr)
{
    const char *kind = descr + (*descr && strchr("<>|=", *descr) ? 1 : 0);
    switch (*kind) {
    case 'c': return "complex numbers are not a numeric tensor dtype here";
    case 'O': return "Python objects are not a numeric tensor dtype here";
    case 'U': return "unicode strings are not a numeric tensor dtype here";
    case 'S':
    case 'a': return "byte strings are not a numeric tensor dtype here";
    case 'M': return "datetimes are not a numeric tensor dtype here";
    case 'm': return "timedeltas are not a numeric tensor dtype here";
    case 'V': return "void/structured records are not a numeric tensor dtype here";
    case 'f':
    case 'i':
    case 'u':
    case 'b': return "no tensor dtype has this kind and size";
    default: return "not a NumPy dtype this reader knows";
    }
}

/* ---- header dict parser ---- */

typedef struct Cursor {
    const char *p, *end;
    const char *why; /* first error, a static string */
} Cursor;

typedef struct HeaderFields {
    char descr[32];
    bool is_fortran;
    int rank;
    int64_t shape[FUSE_MAX_RANK];
    bool has_descr, has_fortran, has_shape;
} HeaderFields;

static bool fail(Cursor *c, const char *why)
{
    if (!c->why)
        c->why = why;
    return false;
}

static void skip_ws(Cursor *c)
{
    while (c->p < c->end && *c->p && strchr(" \t\r\n", *c->p))
        c->p++;
}

static bool accept(Cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool expect(Cursor *c, char ch, const char *why)
{
    return accept(c, ch) || fail(c, why);
}

/* string := '\'' chars '\'' | '"' chars '"'   (a backslash escapes one char) */
static bool parse_string(Cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return fail(c, "expected a quoted string");
    char quote = *c->p++;
    size_t len = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' && c->p + 1 < c->end)
            c->p++;
        if (len + 1 >= cap)
            return fail(c, "string too long");
        out[len++] = *c->p++;
    }
    if (c->p >= c->end)
        return fail(c, "unterminated string");
    c->p++;
    out[len] = '\0';
    return true;
}

/* Matches a whole word (not followed by an identifier character). */
static bool accept_word(Cursor *c, const char *word)
{
    skip_ws(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    const char *after = c->p + n;
    if (after < c->end && (*after == '_' || (*after >= 'a' && *after <= 'z') ||
                           (*after >= 'A' && *after <= 'Z') || (*after >= '0' && *after <= '9')))
        return false;
    c->p = after;
    return true;
}

/* bool := 'True' | 'False' */
static bool parse_bool(Cursor *c, bool *v)
{
    if (accept_word(c, "True"))
        return *v = true;
    if (accept_word(c, "False")) {
        *v = false;
        return true;
    }
    return fail(c, "expected True or False");
}

/* dim := digits ['L']   (non-negative, fits int64) */
static bool parse_dim(Cursor *c, int64_t *v)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == '-')
        return fail(c, "negative dimension in shape");
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return fail(c, "expected an integer dimension");
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10)
            return fail(c, "dimension overflows int64");
        x = x * 10 + d;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
        c->p++;
    *v = x;
    return true;
}

/* shape := '(' [dim {',' dim}] [','] ')' */
static bool parse_shape(Cursor *c, HeaderFields *f)
{
    if (!expect(c, '(', "shape must be a tuple"))
        return false;
    f->rank = 0;
    while (!accept(c, ')')) {
        if (f->rank == FUSE_MAX_RANK)
            return fail(c, "shape has more dimensions than FUSE_MAX_RANK (8)");
        if (!parse_dim(c, &f->shape[f->rank]))
            return false;
        f->rank++;
        if (!accept(c, ','))
            return expect(c, ')', "expected ',' or ')' in shape");
    }
    return true;
}

/* entry := key ':' value, for the three known keys, each at most once */
static bool parse_entry(Cursor *c, HeaderFields *f)
{
    char key[32];
    if (!parse_string(c, key, sizeof key) || !expect(c, ':', "expected ':' after a key"))
        return false;
    if (strcmp(key, "descr") == 0 && !f->has_descr) {
        f->has_descr = true;
        skip_ws(c);
        if (c->p < c->end && (*c->p == '[' || *c->p == '{'))
            return fail(c, "structured 'descr' (record dtypes are not supported; "
                           "accepted: " NPY_ACCEPTED ")");
        return parse_string(c, f->descr, sizeof f->descr);
    }
    if (strcmp(key, "fortran_order") == 0 && !f->has_fortran) {
        f->has_fortran = true;
        return parse_bool(c, &f->is_fortran);
    }
    if (strcmp(key, "shape") == 0 && !f->has_shape) {
        f->has_shape = true;
        return parse_shape(c, f);
    }
    return fail(c, "unknown or repeated key");
}

/* dict := '{' [entry {',' entry}] [','] '}' followed only by whitespace */
static bool parse_dict(Cursor *c, HeaderFields *f)
{
    if (!expect(c, '{', "header is not a dict"))
        return false;
    while (!accept(c, '}')) {
        if (!parse_entry(c, f))
            return false;
        if (accept(c, ','))
            continue;
        if (!expect(c, '}', "expected ',' or '}' in the dict"))
            return false;
        break;
    }
    skip_ws(c);
    if (c->p != c->end)
        return fail(c, "unexpected text after the dict");
    if (!f->has_descr || !f->has_fortran || !f->has_shape)
        return fail(c, "missing key ('descr', 'fortran_order' and 'shape' are required)");
    return true;
}

/* ---- header ---- */

/* Checks magic and version and reads the header length; n bytes are at b. */
static fuse_status parse_prefix(const uint8_t *b, size_t n, const char *what,
                                size_t *prefix, uint32_t *hlen, char **err)
{
    size_t m = n < NPY_MAGIC_LEN ? n : NPY_MAGIC_LEN;
    if (memcmp(b, NPY_MAGIC, m) != 0)
        return sup_fail(err, FUSE_E_IO, "%s: not a .npy file (bad magic)", what);
    if (n < NPY_MAGIC_LEN + 2)
        return sup_fail(err, FUSE_E_IO, "%s: truncated .npy file (%zu bytes)", what, n);
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return sup_fail(err, FUSE_E_IO, "%s: unsupported .npy version %d.%d", what, major,
                       minor);
    *prefix = major == 1 ? 10 : 12;
    if (n < *prefix)
        return sup_fail(err, FUSE_E_IO, "%s: truncated .npy header", what);
    *hlen = major == 1 ? (uint32_t)(b[8] | b[9] << 8)
                       : (uint32_t)b[8] | (uint32_t)b[9] << 8 | (uint32_t)b[10] << 16 |
                             (uint32_t)b[11] << 24;
    return FUSE_OK;
}

/* Turns parsed fields into an NpyHeader, checking dtype and shape size. */
static fuse_status fields_to_header(const HeaderFields *f, const char *what, NpyHeader *h,
                                    char **err)
{
    if (!descr_to_dtype(f->descr, &h->dtype, &h->is_big_endian))
        return sup_fail(err, FUSE_E_IO,
                       "%s: unsupported .npy dtype '%s': %s (accepted: " NPY_ACCEPTED ")",
                       what, f->descr, descr_refusal(f->descr));
    int64_t count = io_shape_count(f->rank, f->shape);
    if (count < 0 || (uint64_t)count > (uint64_t)INT64_MAX / fuse_dtype_size(h->dtype) ||
        (uint64_t)count > SIZE_MAX / fuse_dtype_size(h->dtype))
        return sup_fail(err, FUSE_E_IO, "%s: .npy shape is too large (size overflows)",
                       what);
    h->is_fortran = f->is_fortran;
    h->rank = f->rank;
    memset(h->shape, 0, sizeof h->shape);
    memcpy(h->shape, f->shape, sizeof f->shape[0] * (size_t)f->rank);
    return FUSE_OK;
}

fuse_status io_npy_parse_header_named(const void *buf, size_t n, const char *what,
                                      NpyHeader *h, char **err)
{
    size_t prefix;
    uint32_t hlen;
    fuse_status st = parse_prefix(buf, n, what, &prefix, &hlen, err);
    if (st != FUSE_OK)
        return st;
    if (hlen > n - prefix)
        return sup_fail(err, FUSE_E_IO,
                       "%s: truncated .npy header (%u bytes announced, %zu present)", what,
                       hlen, n - prefix);
    const char *text = (const char *)buf + prefix;
    Cursor c = {text, text + hlen, NULL};
    HeaderFields f = {0};
    if (!parse_dict(&c, &f))
        return sup_fail(err, FUSE_E_IO, "%s: malformed .npy header: %s (at column %d)",
                       what, c.why, (int)(c.p - text) + 1);
    st = fields_to_header(&f, what, h, err);
    h->data_offset = prefix + hlen;
    return st;
}

fuse_status io_npy_parse_header(const void *buf, size_t n, NpyHeader *h, char **err)
{
    return io_npy_parse_header_named(buf, n, ".npy header", h, err);
}

/* ---- decoding ---- */

/* 64-byte aligned, uninitialised, free()-able; a header may claim any size, so the
 * buffer is not zeroed (pages are only touched as data arrives). */
static void *alloc_data(size_t n)
{
    if (n > SIZE_MAX - IO_ALIGN)
        return NULL;
    size_t rounded = n == 0 ? IO_ALIGN : (n + IO_ALIGN - 1) / IO_ALIGN * IO_ALIGN;
    return aligned_alloc(IO_ALIGN, rounded);
}

/* Reads as many of n bytes as the stream has; -1 on a read error. */
static int64_t read_some(IoReadFn rd, void *ctx, void *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int64_t r = rd(ctx, (char *)dst + got, n - got);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

/* Reads the prefix and header of a stream into a malloc'd buffer and parses it. */
static fuse_status read_header(IoReadFn rd, void *ctx, uint64_t size, const char *what,
                               NpyHeader *h, char **err)
{
    uint8_t pre[NPY_PREFIX_MAX];
    int64_t got = read_some(rd, ctx, pre, sizeof pre);
    size_t prefix;
    uint32_t hlen;
    if (got < 0)
        return sup_fail(err, FUSE_E_IO, "%s: read error", what);
    fuse_status st = parse_prefix(pre, (size_t)got, what, &prefix, &hlen, err);
    if (st != FUSE_OK)
        return st;
    if (hlen < 2 || hlen > NPY_HEADER_MAX)
        return sup_fail(err, FUSE_E_IO, "%s: malformed .npy header: implausible length %u",
                       what, hlen);
    size_t total = prefix + hlen;
    if (size != UINT64_MAX && size < total)
        return sup_fail(err, FUSE_E_IO, "%s: truncated .npy header", what);
    uint8_t *buf = malloc(total);
    if (!buf)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", what);
    memcpy(buf, pre, (size_t)got);
    int64_t rest = read_some(rd, ctx, buf + got, total - (size_t)got);
    if (rest < 0 || (size_t)rest != total - (size_t)got) {
        free(buf);
        return sup_fail(err, FUSE_E_IO, rest < 0 ? "%s: read error" : "%s: truncated .npy header",
                       what);
    }
    st = io_npy_parse_header_named(buf, total, what, h, err);
    free(buf);
    return st;
}

/* Copies Fortran-ordered elements of src into C order in dst. */
static void fortran_to_c(const uint8_t *src, uint8_t *dst, const NpyHeader *h, size_t esize,
                         int64_t count)
{
    int64_t fstride[FUSE_MAX_RANK], idx[FUSE_MAX_RANK] = {0};
    int64_t off = 0;
    for (int k = 0; k < h->rank; k++)
        fstride[k] = k == 0 ? 1 : fstride[k - 1] * h->shape[k - 1];
    for (int64_t j = 0; j < count; j++) {
        memcpy(dst + (size_t)j * esize, src + (size_t)off * esize, esize);
        /* Advance the C-order index; its Fortran offset follows incrementally. */
        for (int k = h->rank - 1; k >= 0; k--) {
            off += fstride[k];
            if (++idx[k] < h->shape[k])
                break;
            off -= fstride[k] * h->shape[k];
            idx[k] = 0;
        }
    }
}

/* Byte order and memory order fixes on freshly read data; may replace *data. */
static fuse_status normalise_data(const NpyHeader *h, int64_t count, void **data,
                                  const char *what, char **err)
{
    size_t esize = fuse_dtype_size(h->dtype);
    if (esize > 1 && h->is_big_endian != io_host_is_big_endian())
        io_swap_bytes(*data, (size_t)count, esize);
    if (!h->is_fortran || h->rank < 2 || count == 0)
        return FUSE_OK;
    void *c_order = alloc_data((size_t)count * esize);
    if (!c_order)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", what);
    fortran_to_c(*data, c_order, h, esize, count);
    free(*data);
    *data = c_order;
    return FUSE_OK;
}

/* "(2, 3)" for error messages. */
static void format_shape(char *buf, size_t cap, int rank, const int64_t *shape)
{
    size_t len = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "",
                                (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, rank == 1 ? ",)" : ")");
}

static fuse_status truncated_data(const NpyHeader *h, size_t need, uint64_t have,
                                  const char *what, char **err)
{
    char shape[256];
    format_shape(shape, sizeof shape, h->rank, h->shape);
    return sup_fail(err, FUSE_E_IO,
                   "%s: truncated .npy data: shape %s of %s needs %zu bytes, found %llu", what,
                   shape, fuse_dtype_name(h->dtype), need, (unsigned long long)have);
}

/* Checks the data the header announces against the image's size (when known):
 * before anything is allocated for it. An exact image (an archive member) must end
 * where the data does; a file may have bytes after it, as NumPy allows. */
static fuse_status check_data_size(const NpyHeader *h, uint64_t size, bool is_exact,
                                   const char *what, char **err)
{
    int64_t count = io_shape_count(h->rank, h->shape);
    size_t need = (size_t)count * fuse_dtype_size(h->dtype);
    if (size == UINT64_MAX)
        return FUSE_OK;
    if (size - h->data_offset < need)
        return truncated_data(h, need, size - h->data_offset, what, err);
    if (is_exact && size - h->data_offset != need)
        return sup_fail(err, FUSE_E_IO, "%s: size mismatch: %llu bytes, but its .npy header "
                       "and data take %llu", what, (unsigned long long)size,
                       (unsigned long long)(h->data_offset + need));
    return FUSE_OK;
}

static fuse_status read_stream(IoReadFn read, void *ctx, uint64_t size, bool is_exact,
                               const char *what, fuse_tensor *out, char **err)
{
    NpyHeader h;
    fuse_status st = read_header(read, ctx, size, what, &h, err);
    if (st == FUSE_OK)
        st = check_data_size(&h, size, is_exact, what, err);
    if (st != FUSE_OK)
        return st;
    int64_t count = io_shape_count(h.rank, h.shape);
    size_t need = (size_t)count * fuse_dtype_size(h.dtype);
    void *data = alloc_data(need);
    if (!data)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory (%zu bytes of data)", what,
                       need);
    int64_t got = read_some(read, ctx, data, need);
    if (got < 0 || (size_t)got < need) {
        free(data);
        if (got < 0)
            return sup_fail(err, FUSE_E_IO, "%s: read error", what);
        return truncated_data(&h, need, (uint64_t)got, what, err);
    }
    st = normalise_data(&h, count, &data, what, err);
    if (st != FUSE_OK) {
        free(data);
        return st;
    }
    memset(out, 0, sizeof *out);
    out->dtype = h.dtype;
    out->rank = h.rank;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->data = data;
    return FUSE_OK;
}

fuse_status io_npy_read_stream(IoReadFn read, void *ctx, uint64_t size, const char *what,
                               fuse_tensor *out, char **err)
{
    return read_stream(read, ctx, size, false, what, out, err);
}

fuse_status io_npy_read_exact(IoReadFn read, void *ctx, uint64_t size, const char *what,
                              fuse_tensor *out, char **err)
{
    return read_stream(read, ctx, size, true, what, out, err);
}

typedef struct MemStream {
    const uint8_t *p;
    size_t n, pos;
} MemStream;

static int64_t mem_read(void *ctx, void *dst, size_t n)
{
    MemStream *m = ctx;
    size_t k = m->n - m->pos < n ? m->n - m->pos : n;
    memcpy(dst, m->p + m->pos, k);
    m->pos += k;
    return (int64_t)k;
}

static int64_t file_read(void *ctx, void *dst, size_t n)
{
    FILE *f = ctx;
    size_t k = fread(dst, 1, n, f);
    return k < n && ferror(f) ? -1 : (int64_t)k;
}

fuse_status io_npy_read_mem(const void *buf, size_t n, const char *what, fuse_tensor *out,
                            char **err)
{
    if (!buf && n > 0)
        return FUSE_E_ARG;
    MemStream m = {buf, n, 0};
    return io_npy_read_stream(mem_read, &m, n, what ? what : "(memory)", out, err);
}

/* Opens a .npy file for reading; *size is its length, UINT64_MAX when it is not a
 * regular file (a pipe). */
static fuse_status open_npy(const char *path, FILE **f, uint64_t *size, char **err)
{
    *f = fopen(path, "rb");
    if (!*f)
        return sup_fail(err, FUSE_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int e = fstat(fileno(*f), &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e != 0) {
        fclose(*f);
        *f = NULL;
        return sup_fail(err, FUSE_E_IO, "%s: cannot read: %s", path, strerror(e));
    }
    *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
    return FUSE_OK;
}

fuse_status io_npy_read(const char *path, fuse_tensor *out, char **err)
{
    FILE *f;
    uint64_t size;
    fuse_status s = open_npy(path, &f, &size, err);
    if (s != FUSE_OK)
        return s;
    s = io_npy_read_stream(file_read, f, size, path, out, err);
    fclose(f);
    return s;
}

fuse_status io_npy_probe(const char *path, NpyHeader *h, char **err)
{
    FILE *f;
    uint64_t size;
    fuse_status s = open_npy(path, &f, &size, err);
    if (s != FUSE_OK)
        return s;
    s = read_header(file_read, f, size, path, h, err);
    if (s == FUSE_OK)
        s = check_data_size(h, size, false, path, err);
    fclose(f);
    return s;
}

/* ---- encoding ---- */

/* The header dict, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }". */
static int format_dict(char *buf, size_t cap, const fuse_tensor *t)
{
    const NpyType *ty = &npy_types[t->dtype];
    char shape[256];
    format_shape(shape, sizeof shape, t->rank, t->shape);
    return snprintf(buf, cap, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': %s, }",
                    ty->size == 1 ? '|' : '<', ty->kind, ty->size, shape);
}

/* A bfloat16 tensor is written as the float32 values it holds exactly (NumPy
 * has no bfloat16; docs/files.md). */
static fuse_status npy_encode_bf16(const fuse_tensor *t, void **buf, size_t *n, char **err)
{
    fuse_tensor wide;
    if (io_tensor_widen_bf16(t, &wide) != FUSE_OK)
        return sup_fail(err, FUSE_E_NOMEM, ".npy image: out of memory");
    fuse_status st = io_npy_encode(&wide, buf, n, err);
    io_free_aligned(wide.data);
    return st;
}

size_t io_npy_header(const fuse_tensor *t, uint8_t *buf)
{
    fuse_tensor as = *t;
    as.dtype = t->dtype == FUSE_BF16 ? FUSE_F32 : t->dtype; /* written widened */
    char dict[512];
    size_t len = (size_t)format_dict(dict, sizeof dict, &as);
    /* Pad with spaces so that prefix + header (with its '\n') is a multiple of 64. */
    size_t hlen = (10 + len + 1 + 63) / 64 * 64 - 10;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, len);
    memset(buf + 10 + len, ' ', hlen - len - 1);
    buf[10 + hlen - 1] = '\n';
    return 10 + hlen;
}

fuse_status io_npy_encode(const fuse_tensor *t, void **buf, size_t *n, char **err)
{
    size_t nbytes;
    fuse_status st = io_tensor_check(t, ".npy image", &nbytes, err);
    if (st != FUSE_OK)
        return st;
    if (t->dtype == FUSE_BF16)
        return npy_encode_bf16(t, buf, n, err);
    uint8_t head[IO_NPY_HEADER_MAX];
    size_t hlen = io_npy_header(t, head);
    if (nbytes > SIZE_MAX - hlen)
        return sup_fail(err, FUSE_E_NOMEM, ".npy image: tensor too large");
    uint8_t *img = malloc(hlen + nbytes);
    if (!img)
        return sup_fail(err, FUSE_E_NOMEM, ".npy image: out of memory");
    memcpy(img, head, hlen);
    hlen -= 10; /* as the data's offset below counts it */
    if (nbytes > 0)
        memcpy(img + 10 + hlen, t->data, nbytes);
    size_t esize = fuse_dtype_size(t->dtype);
    if (io_host_is_big_endian())
        io_swap_bytes(img + 10 + hlen, nbytes / esize, esize);
    *buf = img;
    *n = 10 + hlen + nbytes;
    return FUSE_OK;
}

fuse_status io_npy_write(const char *path, const fuse_tensor *t, char **err)
{
    fuse_status st = io_tensor_check(t, path, NULL, err);
    if (st != FUSE_OK)
        return st;
    void *img;
    size_t n;
    st = io_npy_encode(t, &img, &n, err);
    if (st != FUSE_OK)
        return st;
    st = sup_write_file_atomic(path, img, n, err);
    free(img);
    return st;
}
