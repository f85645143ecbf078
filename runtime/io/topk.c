/*
 * topk.c: the top-k sink, written in the fuse.topk JSON-lines schema:
 *   {"schema":"fuse.topk","version":1}
 *   {"topk":[{"index":2,"value":62.0},{"index":1,"value":38.0}]}
 * one line per row after the header. A row is a run of the last axis; rows run
 * over all leading axes in C order (rank 1: one row; rank 0: one row holding the
 * scalar at index 0). Each row lists its min(k, length) largest values, value
 * descending, equal values by lower index first, NaN after every number, so the
 * output is deterministic (the original broke ties at random).
 *
 * Numbers: indices are JSON integers, values JSON reals ("1.0", never "1"). A line
 * is printed with the fewest significant digits (at most 9) that make every value
 * of that row read back as the same float32 (and no exponent for integral parts
 * below 1e9), so 0.1f prints as 0.1 rather than as its float64 widening
 * 0.10000000149011612. JSON has no NaN or infinities, so non-finite values print
 * as the strings "NaN", "Infinity" and "-Infinity" (as json.c writes and reads
 * them). Lines are compact: the conformance checker compares
 * JSON, and compact text also matches its expected files byte for byte.
 */
#include "io.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TopkEntry {
    float value;
    int64_t index;
} TopkEntry;

/* Descending by value, NaN last, ties by ascending index: a total order. */
static int cmp_topk(const void *pa, const void *pb)
{
    const TopkEntry *a = pa, *b = pb;
    bool na = isnan(a->value), nb = isnan(b->value);
    if (na != nb)
        return na ? 1 : -1;
    if (!na && a->value != b->value)
        return a->value > b->value ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Fewest "%.*g" digits (1..9) that read back as x exactly without turning a
 * number like 10 into 1e+01 (%g switches to an exponent when it has fewer digits
 * than the integer part). */
static int float_digits(float x)
{
    char buf[40];
    for (int p = 1; p < 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)x);
        const char *e = strchr(buf, 'e');
        if (strtof(buf, NULL) == x && (!e || e[1] == '-'))
            return p;
    }
    return 9;
}

/* {"index": i, "value": v} as a new object; NULL on OOM. */
static json_t *topk_item(const TopkEntry *e)
{
    json_t *v = isfinite(e->value) ? json_real(e->value)
                : json_string(isnan(e->value) ? "NaN" : e->value > 0 ? "Infinity" : "-Infinity");
    json_t *o = json_object();
    int bad = json_object_set_new(o, "index", json_integer((json_int_t)e->index));
    bad |= json_object_set_new(o, "value", v);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int text_sink(const char *s, size_t n, void *ctx)
{
    return sup_buf_append(ctx, s, n) ? 0 : -1;
}

/* Appends j compactly with `digits` for reals, then '\n'; releases j. */
static bool dump_line(json_t *j, int digits, SupBuf *b)
{
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(digits);
    bool ok = j && json_dump_callback(j, text_sink, b, flags) == 0 &&
              sup_buf_append(b, "\n", 1);
    json_decref(j);
    return ok;
}

/* Sorts one row (n entries, row[i].value filled) and appends its line. */
static bool topk_row(TopkEntry *row, int64_t n, int64_t k, SupBuf *b)
{
    for (int64_t i = 0; i < n; i++)
        row[i].index = i;
    qsort(row, (size_t)n, sizeof *row, cmp_topk);
    int digits = 1;
    json_t *list = json_array();
    for (int64_t i = 0; list && i < k; i++) {
        int d = isfinite(row[i].value) ? float_digits(row[i].value) : 1;
        digits = d > digits ? d : digits;
        if (json_array_append_new(list, topk_item(&row[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *line = json_object();
    if (json_object_set_new(line, "topk", list) != 0) {
        json_decref(line);
        line = NULL;
    }
    return dump_line(line, digits, b);
}

/* The float32 values of t: t's own data, or a converted copy in *copy. */
static const float *as_f32(const fuse_tensor *t, int64_t count, float **copy)
{
    *copy = NULL;
    if (t->dtype == FUSE_F32)
        return t->data;
    *copy = malloc((size_t)(count ? count : 1) * sizeof **copy);
    if (*copy)
        io_convert_to_f32(t->dtype, t->data, *copy, count);
    return *copy;
}

/* Header and one line per row onto b; false on OOM. */
static bool topk_lines(const fuse_tensor *t, const float *x, int64_t k, SupBuf *b)
{
    int64_t cols = t->rank ? t->shape[t->rank - 1] : 1;
    int64_t rows = t->rank ? io_shape_count(t->rank - 1, t->shape) : 1;
    if (k > cols)
        k = cols;
    json_t *head = json_pack("{s:s,s:i}", "schema", "fuse.topk", "version", 1);
    if (!dump_line(head, 1, b))
        return false;
    TopkEntry *row = malloc((size_t)(cols ? cols : 1) * sizeof *row);
    bool ok = row != NULL;
    for (int64_t r = 0; ok && r < rows; r++) {
        for (int64_t i = 0; i < cols; i++)
            row[i].value = x[r * cols + i];
        ok = topk_row(row, cols, k, b);
    }
    free(row);
    return ok;
}

fuse_status io_topk_encode(const fuse_tensor *t, int64_t k, char **text, size_t *len,
                           char **err)
{
    fuse_status st = io_tensor_check(t, "top-k input", NULL, err);
    if (st != FUSE_OK)
        return st;
    if (k < 0 || !text || !len)
        return sup_fail(err, FUSE_E_ARG, "top-k: %s", k < 0 ? "k must not be negative"
                                                          : "no output given");
    float *copy;
    int64_t count = io_shape_count(t->rank, t->shape);
    const float *x = as_f32(t, count, &copy);
    SupBuf b = {0};
    bool ok = (x || count == 0) && topk_lines(t, x, k, &b);
    free(copy);
    if (!ok) {
        free(b.p);
        return sup_fail(err, FUSE_E_NOMEM, "top-k: out of memory");
    }
    *text = b.p;
    *len = b.len;
    return FUSE_OK;
}

fuse_status io_topk_write(const char *path, const fuse_tensor *t, int64_t k, char **err)
{
    if (!path || !*path)
        return sup_fail(err, FUSE_E_ARG, "(null): no output path given");
    char *text, *msg = NULL;
    size_t len;
    fuse_status st = io_topk_encode(t, k, &text, &len, &msg);
    if (st != FUSE_OK) {
        sup_fail(err, st, "%s: %s", path, msg ? msg : "cannot encode top-k");
        free(msg);
        return st;
    }
    st = sup_write_file_atomic(path, text, len, err);
    free(text);
    return st;
}
