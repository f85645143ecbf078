/*
 * facts.c: relations as text, one fact (a tuple of integer coordinates) per line,
 * in .tsv and .csv files; also the small growing text buffer the writers share.
 *
 * Reading is deliberately a little more forgiving than it is strict, and strict
 * where a mistake would silently change a relation:
 *   - '\n' ends a line and a '\r' before it is dropped, so CRLF files read;
 *   - blank lines, and lines whose first non-blank character is '#', are skipped;
 *   - tabs and commas both separate fields, whatever the extension, and a run of
 *     separators counts as one (so aligned "0\t\t1" is two fields), as in the
 *     original implementation; spaces around a field are ignored;
 *   - a field is an optional '+' and decimal digits; "-1", "1.0", "a", "0 1" are
 *     errors naming file:line, so a header line is an error, not skipped;
 *   - every fact must have the same number of fields, 1..FUSE_MAX_RANK.
 * The size of each axis is the largest coordinate + 1, a lower bound that shape
 * inference may raise (the caller zero-pads). Duplicate facts are harmless.
 *
 * Writing lists the coordinates of nonzero cells in row-major order.
 */
#include "io.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest coordinate accepted; keeps every axis size within IO_MAX_READ_ELEMS. */
#define FACTS_MAX_COORD (IO_MAX_READ_ELEMS - 1)

/* The facts read so far: rank columns per fact, flattened. */
typedef struct Facts {
    const char *path;
    int rank;                        /* -1 until the first fact */
    int64_t *coords;                 /* n * rank coordinates */
    size_t n, cap;                   /* facts stored, facts allocated */
    int64_t max[FUSE_MAX_RANK];      /* largest coordinate per column */
} Facts;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_sep(char c)
{
    return c == '\t' || c == ',';
}

/* Parses one field s[0..n) (blanks already trimmed) into *v. */
static fuse_status parse_coord(const Facts *f, long line, const char *s, size_t n,
                               int64_t *v, char **err)
{
    size_t i = n > 0 && s[0] == '+' ? 1 : 0;
    int64_t x = 0;
    if (n > 1 && s[0] == '-' && isdigit((unsigned char)s[1]))
        return sup_fail(err, FUSE_E_IO, "%s:%ld: negative coordinate '%.*s'", f->path, line,
                       (int)n, s);
    if (i == n)
        x = -1;
    for (; i < n && x >= 0; i++) {
        if (!isdigit((unsigned char)s[i]))
            x = -1;
        else if (x > (FACTS_MAX_COORD - (s[i] - '0')) / 10)
            return sup_fail(err, FUSE_E_IO, "%s:%ld: coordinate '%.*s' is too large",
                           f->path, line, (int)n, s);
        else
            x = x * 10 + (s[i] - '0');
    }
    if (x < 0)
        return sup_fail(err, FUSE_E_IO,
                       "%s:%ld: '%.*s' is not a non-negative integer coordinate (facts "
                       "files have no header line; comment lines start with '#')",
                       f->path, line, (int)(n > 40 ? 40 : n), s);
    *v = x;
    return FUSE_OK;
}

/* Splits one line (no '\n') into trimmed fields; *n_out = their number. */
static fuse_status split_fields(const Facts *f, long line, const char *s, size_t n,
                                int64_t *vals, int *n_out, char **err)
{
    int k = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_sep(s[i]) || is_blank(s[i])))
            i++;
        size_t start = i;
        while (i < n && !is_sep(s[i]))
            i++;
        size_t end = i;
        while (end > start && is_blank(s[end - 1]))
            end--;
        if (end == start)
            continue;
        if (k == FUSE_MAX_RANK)
            return sup_fail(err, FUSE_E_IO, "%s:%ld: more than %d columns", f->path, line,
                           FUSE_MAX_RANK);
        fuse_status st = parse_coord(f, line, s + start, end - start, &vals[k], err);
        if (st != FUSE_OK)
            return st;
        k++;
    }
    *n_out = k;
    return FUSE_OK;
}

/* Appends one fact of f->rank coordinates. */
static fuse_status facts_push(Facts *f, const int64_t *vals, char **err)
{
    /* one element is a whole fact: rank coordinates */
    if (!sup_grow((void **)&f->coords, &f->cap, f->n + 1, sizeof *f->coords * (size_t)f->rank))
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory reading facts", f->path);
    for (int c = 0; c < f->rank; c++) {
        f->coords[f->n * (size_t)f->rank + (size_t)c] = vals[c];
        if (vals[c] > f->max[c])
            f->max[c] = vals[c];
    }
    f->n++;
    return FUSE_OK;
}

/* Handles one line s[0..n): skips blanks and comments, checks the arity. */
static fuse_status facts_line(Facts *f, long line, const char *s, size_t n, char **err)
{
    size_t i = 0;
    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i] == '#')
        return FUSE_OK;
    int64_t vals[FUSE_MAX_RANK];
    int k = 0;
    fuse_status st = split_fields(f, line, s, n, vals, &k, err);
    if (st != FUSE_OK)
        return st;
    if (k == 0)
        return sup_fail(err, FUSE_E_IO, "%s:%ld: a line of separators and no coordinate",
                       f->path, line);
    if (f->rank < 0)
        f->rank = k;
    if (k != f->rank)
        return sup_fail(err, FUSE_E_IO, "%s:%ld: %d column%s, expected %d (every fact needs "
                       "one coordinate per axis)", f->path, line, k, k == 1 ? "" : "s",
                       f->rank);
    return facts_push(f, vals, err);
}

/* Runs facts_line over every line of the text. */
static fuse_status facts_parse(Facts *f, const char *text, size_t n, char **err)
{
    long line = 1;
    size_t start = 0;
    while (start < n) {
        const char *nl = memchr(text + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - text) : n;
        fuse_status st = facts_line(f, line, text + start, end - start, err);
        if (st != FUSE_OK)
            return st;
        start = end + 1;
        line++;
    }
    return FUSE_OK;
}

/* Densifies the facts into a 0/1 float32 tensor. */
static fuse_status facts_to_tensor(const Facts *f, fuse_tensor *out, char **err)
{
    int64_t shape[FUSE_MAX_RANK];
    for (int c = 0; c < f->rank; c++)
        shape[c] = f->n ? f->max[c] + 1 : 0;
    int64_t count = io_shape_count(f->rank, shape);
    if (count < 0 || count > IO_MAX_READ_ELEMS)
        return sup_fail(err, FUSE_E_IO, "%s: the relation is too large to hold densely (more "
                       "than %lld cells)", f->path, (long long)IO_MAX_READ_ELEMS);
    float *data = io_alloc_aligned((size_t)count * sizeof *data);
    if (!data)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory for the relation", f->path);
    for (size_t i = 0; i < f->n; i++) {
        int64_t off = 0;
        for (int c = 0; c < f->rank; c++)
            off = off * shape[c] + f->coords[i * (size_t)f->rank + (size_t)c];
        data[off] = 1.0f;
    }
    out->dtype = FUSE_F32;
    out->rank = f->rank;
    memcpy(out->shape, shape, sizeof shape);
    out->data = data;
    return FUSE_OK;
}

fuse_status io_facts_read_rank(const char *path, int rank, fuse_tensor *out, char **err)
{
    if (!path || !out || rank < -1 || rank > FUSE_MAX_RANK)
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read facts",
                       path ? path : "(null)");
    memset(out, 0, sizeof *out);
    void *text;
    size_t n;
    fuse_status st = sup_read_file(path, &text, &n, err);
    if (st != FUSE_OK)
        return st;
    Facts f = {.path = path, .rank = rank};
    st = facts_parse(&f, text, n, err);
    free(text);
    if (st == FUSE_OK && f.rank < 0)
        st = sup_fail(err, FUSE_E_IO, "%s: no facts, so the relation's rank is unknown",
                     path);
    if (st == FUSE_OK)
        st = facts_to_tensor(&f, out, err);
    free(f.coords);
    return st;
}

fuse_status io_facts_read(const char *path, fuse_tensor *out, char **err)
{
    return io_facts_read_rank(path, -1, out, err);
}

/* Whether element i of t is nonzero, in its own dtype (NaN is nonzero). */
static bool cell_nonzero(const fuse_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case FUSE_F32: return ((const float *)d)[i] != 0.0f;
    case FUSE_F64: return ((const double *)d)[i] != 0.0;
    case FUSE_I8: return ((const int8_t *)d)[i] != 0;
    case FUSE_I16: return ((const int16_t *)d)[i] != 0;
    case FUSE_I32: return ((const int32_t *)d)[i] != 0;
    case FUSE_I64: return ((const int64_t *)d)[i] != 0;
    case FUSE_U8: return ((const uint8_t *)d)[i] != 0;
    case FUSE_U16: return ((const uint16_t *)d)[i] != 0;
    case FUSE_U32: return ((const uint32_t *)d)[i] != 0;
    case FUSE_U64: return ((const uint64_t *)d)[i] != 0;
    case FUSE_BOOL: return ((const uint8_t *)d)[i] != 0;
    case FUSE_F16:
    case FUSE_BF16: return (((const uint16_t *)d)[i] & 0x7FFF) != 0; /* not +-0 */
    default: return false;
    }
}

/* Appends "i0<sep>i1...\n" for the coordinates idx[0..rank). */
static bool append_coords(SupBuf *b, const int64_t *idx, int rank, char sep)
{
    char num[32];
    for (int c = 0; c < rank; c++) {
        int len = snprintf(num, sizeof num, "%lld", (long long)idx[c]);
        if ((c > 0 && !sup_buf_append(b, &sep, 1)) || !sup_buf_append(b, num, (size_t)len))
            return false;
    }
    return sup_buf_append(b, "\n", 1);
}

/* The text of every nonzero cell's coordinates, walking t in C order. */
static bool facts_encode(const fuse_tensor *t, int64_t count, char sep, SupBuf *b)
{
    int64_t idx[FUSE_MAX_RANK] = {0};
    if (!sup_buf_append(b, "", 0))
        return false;
    for (int64_t i = 0; i < count; i++) {
        if (cell_nonzero(t, i) && !append_coords(b, idx, t->rank, sep))
            return false;
        for (int c = t->rank - 1; c >= 0; c--) {
            if (++idx[c] < t->shape[c])
                break;
            idx[c] = 0;
        }
    }
    return true;
}

/* Whether the path ends in ".csv", in any case. */
static bool is_csv_path(const char *path)
{
    size_t n = strlen(path);
    return n >= 4 && strcasecmp(path + n - 4, ".csv") == 0;
}

fuse_status io_facts_encode(const char *path, const fuse_tensor *t, char **text, size_t *len,
                            char **err)
{
    if (!path || !*path)
        return sup_fail(err, FUSE_E_ARG, "(null): no output path given");
    fuse_status st = io_tensor_check(t, path, NULL, err);
    if (st != FUSE_OK)
        return st;
    if (t->rank == 0)
        return sup_fail(err, FUSE_E_ARG, "%s: a scalar has no coordinates to write as "
                       "facts (a .tsv/.csv sink needs at least one axis)", path);
    SupBuf b = {0};
    if (!facts_encode(t, io_shape_count(t->rank, t->shape), is_csv_path(path) ? ',' : '\t',
                      &b)) {
        free(b.p);
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory writing facts", path);
    }
    *text = b.p;
    *len = b.len;
    return FUSE_OK;
}

fuse_status io_facts_write(const char *path, const fuse_tensor *t, char **err)
{
    char *text;
    size_t len;
    fuse_status st = io_facts_encode(path, t, &text, &len, err);
    if (st != FUSE_OK)
        return st;
    st = sup_write_file_atomic(path, text, len, err);
    free(text);
    return st;
}
