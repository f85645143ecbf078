/*
 * json.c: tensors as JSON text, read and written with jansson. Two layouts:
 *   .json   nested lists in C order (a rank-0 tensor is a bare number);
 *   .jsonl  the fuse.tensor schema, two lines:
 *           {"schema": "fuse.tensor", "version": 1, "shape": [2, 3]}
 *           {"value": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]}
 *
 * Numbers: integer dtypes print as integers (uint64 above INT64_MAX as a real),
 * bool as true/false, float32 with 9 significant digits and float64 with 17: the
 * fewest "%.*g" digits that always read back to the same value of the type.
 * float16 is written as the float32 it widens to exactly (9 digits), so reading
 * the file back into float32, as the .json reader does, loses nothing.
 * jansson keeps a ".0" on integral reals. JSON has no NaN or infinities (jansson
 * refuses them), so non-finite values are written as the strings "NaN",
 * "Infinity" and "-Infinity" (the spellings of Python's json module and of
 * JavaScript), which the reader takes back: null would lose which one it was.
 * Separators follow Python's json.dumps (", " and ": "); every line ends with '\n'.
 *
 * Simplification: the whole document is built as a jansson tree before printing,
 * which costs tens of bytes per element; JSON is meant for small tensors.
 *
 * Reading: a tensor is rectangular nested lists: the first element at each depth
 * fixes the shape, then every list at depth d must have shape[d] entries and every
 * leaf must sit at depth rank. Leaves are numbers (rounded to float32), booleans
 * (1/0) and exactly the strings "NaN", "Infinity" and "-Infinity"; other strings,
 * objects and null are errors that name the element ("[1][0]"); null is not read as
 * NaN, because a missing value silently becoming a number is a wrong answer, and
 * the error gives its line:col (jansson keeps no positions, so the text is
 * scanned for it). The shape is checked against the text's length before the
 * tensor is allocated: each element takes at least a digit and a separator.
 */
#include "io.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JSON spellings of the non-finite values, read back by nest_leaf. */
#define JSON_NAN "NaN"
#define JSON_INF "Infinity"
#define JSON_NINF "-Infinity"

/* x as a JSON real, or as one of the strings above when it is not finite. */
static json_t *real_to_json(double x)
{
    if (isfinite(x))
        return json_real(x);
    return json_string(isnan(x) ? JSON_NAN : x > 0 ? JSON_INF : JSON_NINF);
}

/* Element i of t as a new JSON value; NULL on OOM. */
static json_t *elem_to_json(const fuse_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case FUSE_F32: return real_to_json(((const float *)d)[i]);
    case FUSE_F64: return real_to_json(((const double *)d)[i]);
    case FUSE_I8: return json_integer(((const int8_t *)d)[i]);
    case FUSE_I16: return json_integer(((const int16_t *)d)[i]);
    case FUSE_I32: return json_integer(((const int32_t *)d)[i]);
    case FUSE_I64: return json_integer(((const int64_t *)d)[i]);
    case FUSE_U8: return json_integer(((const uint8_t *)d)[i]);
    case FUSE_U16: return json_integer(((const uint16_t *)d)[i]);
    case FUSE_U32: return json_integer(((const uint32_t *)d)[i]);
    case FUSE_U64: {
        uint64_t x = ((const uint64_t *)d)[i];
        return x > INT64_MAX ? json_real((double)x) : json_integer((json_int_t)x);
    }
    case FUSE_BOOL: return json_boolean(((const uint8_t *)d)[i] != 0);
    case FUSE_F16:
    case FUSE_BF16: {
        float x;
        io_convert_to_f32(t->dtype, (const uint16_t *)d + i, &x, 1);
        return real_to_json(x);
    }
    default: return json_null();
    }
}

/* Nested lists for axes dim.. of t, consuming elements from *pos in C order. */
static json_t *build_nested(const fuse_tensor *t, int dim, int64_t *pos)
{
    if (dim == t->rank)
        return elem_to_json(t, (*pos)++);
    json_t *arr = json_array();
    for (int64_t k = 0; arr && k < t->shape[dim]; k++) {
        /* append_new takes the child's reference, also when it fails */
        if (json_array_append_new(arr, build_nested(t, dim + 1, pos)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static size_t dump_flags(fuse_dtype dt)
{
    return JSON_ENCODE_ANY | JSON_REAL_PRECISION(dt == FUSE_F64 ? 17 : 9);
}

/* json_dump_callback's sink: appends to an SupBuf. */
static int text_append(const char *s, size_t n, void *ctx)
{
    return sup_buf_append(ctx, s, n) ? 0 : -1;
}

/* Prints j as one line (with its '\n') onto b; false on OOM. j is released. */
static bool dump_line(json_t *j, size_t flags, SupBuf *b)
{
    bool ok = j && json_dump_callback(j, text_append, b, flags) == 0 &&
              text_append("\n", 1, b) == 0;
    json_decref(j);
    return ok;
}

/* {key: value} as a new object; consumes value (json_object_set_new releases it
 * on every failure, including a NULL object). */
static json_t *object1(const char *key, json_t *value)
{
    json_t *obj = json_object();
    if (json_object_set_new(obj, key, value) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* {"schema": "fuse.tensor", "version": 1, "shape": [...]}, keys in this order. */
static json_t *jsonl_make_header(const fuse_tensor *t)
{
    json_t *shape = json_array();
    for (int i = 0; shape && i < t->rank; i++) {
        if (json_array_append_new(shape, json_integer(t->shape[i])) != 0) {
            json_decref(shape);
            shape = NULL;
        }
    }
    json_t *head = object1("schema", json_string("fuse.tensor"));
    int bad = json_object_set_new(head, "version", json_integer(1));
    bad |= json_object_set_new(head, "shape", shape);
    if (bad) {
        json_decref(head);
        return NULL;
    }
    return head;
}

fuse_status io_json_encode(const fuse_tensor *t, bool jsonl, char **text, size_t *len,
                           char **err)
{
    fuse_status st = io_tensor_check(t, jsonl ? ".jsonl text" : ".json text", NULL, err);
    if (st != FUSE_OK)
        return st;
    SupBuf b = {0};
    int64_t pos = 0;
    json_t *value = build_nested(t, 0, &pos);
    bool ok;
    if (jsonl) {
        ok = dump_line(jsonl_make_header(t), dump_flags(t->dtype), &b);
        ok = dump_line(object1("value", value), dump_flags(t->dtype), &b) && ok;
    } else {
        ok = dump_line(value, dump_flags(t->dtype), &b);
    }
    if (!ok) {
        free(b.p);
        return sup_fail(err, FUSE_E_NOMEM, "out of memory printing a tensor as JSON");
    }
    *text = b.p;
    *len = b.len;
    return FUSE_OK;
}

/* Encodes and writes atomically; errors name the path. */
static fuse_status write_json(const char *path, const fuse_tensor *t, bool jsonl, char **err)
{
    if (!path || !*path)
        return sup_fail(err, FUSE_E_ARG, "(null): no output path given");
    fuse_status st = io_tensor_check(t, path, NULL, err);
    if (st != FUSE_OK)
        return st;
    char *text;
    size_t len;
    st = io_json_encode(t, jsonl, &text, &len, NULL);
    if (st != FUSE_OK)
        return sup_fail(err, st, "%s: out of memory printing the tensor", path);
    st = sup_write_file_atomic(path, text, len, err);
    free(text);
    return st;
}

fuse_status io_json_write(const char *path, const fuse_tensor *t, char **err)
{
    return write_json(path, t, false, err);
}

fuse_status io_jsonl_write(const char *path, const fuse_tensor *t, char **err)
{
    return write_json(path, t, true, err);
}

/* ==== reading ==== */

/* ---- nested lists ---- */

/* The walk over one nested-list value. */
typedef struct Nest {
    const char *where;               /* "file" or "file:line", for messages */
    const char *path;                /* the file, for "file:line:col" */
    const char *text;                /* the JSON text holding the value */
    size_t len;                      /* its length in bytes */
    long first_line;                 /* the file's line number of text[0] */
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

/* Line (0 for the text's first) and column (1-based, in characters) of the first
 * null literal of text[0..n) outside a string; false if there is none. The text
 * is valid JSON: jansson parsed it. */
static bool find_null(const char *text, size_t n, long *line, int *col)
{
    bool is_in_string = false;
    long ln = 0;
    int c = 0; /* characters before text[i] on its line */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (!is_in_string && ch == 'n' && n - i >= 4 && memcmp(text + i, "null", 4) == 0) {
            *line = ln;
            *col = c + 1;
            return true;
        }
        if (ch == '\n') {
            ln++;
            c = 0;
        } else if (is_in_string && ch == '\\') {
            i++; /* an escape: two ASCII characters, neither ends the string */
            c += 2;
        } else {
            is_in_string ^= ch == '"';
            c += (ch & 0xC0) != 0x80; /* a UTF-8 continuation byte is no new character */
        }
    }
    return false;
}

/* The error for a null leaf, at its position in the text when it can be found. */
static fuse_status null_error(const Nest *nt, int depth, char **err)
{
    char at[16 * FUSE_MAX_RANK + 16];
    nest_path(nt, depth, at, sizeof at);
    long line;
    int col;
    if (!nt->text || !find_null(nt->text, nt->len, &line, &col))
        return nest_error(nt, depth, "is null, which is not a number; write \"" JSON_NAN
                          "\" (or \"" JSON_INF "\", \"" JSON_NINF "\") for a non-finite "
                          "value", err);
    return sup_fail(err, FUSE_E_IO, "%s:%ld:%d: %s is null, which is not a number; write "
                   "\"" JSON_NAN "\" (or \"" JSON_INF "\", \"" JSON_NINF "\") for a "
                   "non-finite value", nt->path, nt->first_line + line, col, at);
}

/* The non-finite value a string leaf spells, or false for any other string. */
static bool string_value(json_t *j, float *x)
{
    const char *s = json_string_value(j);
    if (strcmp(s, JSON_NAN) == 0)
        *x = NAN;
    else if (strcmp(s, JSON_INF) == 0)
        *x = INFINITY;
    else if (strcmp(s, JSON_NINF) == 0)
        *x = -INFINITY;
    else
        return false;
    return true;
}

/* Why leaf j is not a value. */
static fuse_status leaf_error(const Nest *nt, json_t *j, int depth, char **err)
{
    if (json_is_null(j))
        return null_error(nt, depth, err);
    if (json_is_array(j))
        return nest_error(nt, depth, "is a list where a number is expected (ragged or "
                          "deeper than its first element)", err);
    if (json_is_string(j))
        return nest_error(nt, depth, "is a string, not a number (the only strings read are "
                          "\"" JSON_NAN "\", \"" JSON_INF "\" and \"" JSON_NINF "\")", err);
    return nest_error(nt, depth, "is an object, not a number", err);
}

/* Stores one leaf: a number, a boolean or a non-finite value's string. */
static fuse_status nest_leaf(Nest *nt, json_t *j, int depth, char **err)
{
    float x;
    if (json_is_number(j))
        x = (float)json_number_value(j);
    else if (json_is_boolean(j))
        x = json_is_true(j) ? 1.0f : 0.0f;
    else if (!json_is_string(j) || !string_value(j, &x))
        return leaf_error(nt, j, depth, err);
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
    int64_t count = io_shape_count(nt->rank, nt->shape);
    if (count < 0 || count > IO_MAX_READ_ELEMS)
        return sup_fail(err, FUSE_E_IO, "%s: the tensor is too large", nt->where);
    /* n elements take at least 2n - 1 bytes (a digit each, separators between) */
    if (nt->text && (uint64_t)count > ((uint64_t)nt->len + 1) / 2)
        return sup_fail(err, FUSE_E_IO, "%s: a shape of %lld elements cannot fit in %zu "
                       "bytes of JSON (ragged lists, or a \"shape\" the value does not have)",
                       nt->where, (long long)count, nt->len);
    nt->dst = io_alloc_aligned((size_t)count * sizeof(float));
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
fuse_status io_json_parse(const char *where, long first_line, const char *s, size_t n,
                          json_t **out, char **err)
{
    json_error_t je;
    *out = json_loadb(s, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (*out)
        return FUSE_OK;
    return sup_fail(err, FUSE_E_IO, "%s:%ld:%d: invalid JSON: %s", where,
                   first_line + (je.line > 0 ? je.line - 1 : 0), je.column, je.text);
}

fuse_status io_json_read(const char *path, fuse_tensor *out, char **err)
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
    st = io_json_parse(path, 1, text, n, &root, err);
    Nest nt = {.where = path, .path = path, .text = text, .len = n, .first_line = 1};
    if (st == FUSE_OK)
        st = nest_infer(&nt, root, err);
    if (st == FUSE_OK)
        st = nest_to_tensor(&nt, root, out, err);
    json_decref(root);
    free(text);
    return st;
}

/* ---- .jsonl: the fuse.tensor schema ---- */

/* Reads the header object's "shape" (and checks "schema" and "version"). */
static fuse_status jsonl_read_header(Nest *nt, json_t *h, char **err)
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
    nt->text = s;
    nt->len = n;
    nt->first_line = line;
    json_t *j = NULL;
    fuse_status st = k > 1 ? sup_fail(err, FUSE_E_IO, "%s: unexpected line after the value",
                                     where)
                           : io_json_parse(path, line, s, n, &j, err);
    if (st == FUSE_OK && !json_is_object(j))
        st = sup_fail(err, FUSE_E_IO, "%s: expected a JSON object", where);
    if (st == FUSE_OK && k == 0)
        st = jsonl_read_header(nt, j, err);
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

fuse_status io_jsonl_read(const char *path, fuse_tensor *out, char **err)
{
    if (!path || !out)
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read JSON lines",
                       path ? path : "(null)");
    memset(out, 0, sizeof *out);
    void *buf = NULL;
    size_t n = 0;
    fuse_status st = sup_read_file(path, &buf, &n, err);
    char *text = buf;
    Nest nt = {.where = path, .path = path};
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
