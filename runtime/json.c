/*
 * json.c: tensors as JSON text, built and printed with jansson. Two layouts:
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
 * refuses them), so non-finite values are written as null. Separators follow
 * Python's json.dumps (", " and ": "); every line ends with '\n'.
 *
 * Simplification: the whole document is built as a jansson tree before printing,
 * which costs tens of bytes per element; JSON is meant for small tensors.
 */
#include "runtime.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Element i of t as a new JSON value; NULL on OOM. */
static json_t *elem_to_json(const fuse_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case FUSE_F32: {
        float x = ((const float *)d)[i];
        return isfinite(x) ? json_real(x) : json_null();
    }
    case FUSE_F64: {
        double x = ((const double *)d)[i];
        return isfinite(x) ? json_real(x) : json_null();
    }
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
    case FUSE_F16: {
        float x;
        rt_convert_to_f32(FUSE_F16, (const uint16_t *)d + i, &x, 1);
        return isfinite(x) ? json_real(x) : json_null();
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
    return JSON_ENCODE_ANY | JSON_REAL_PRECISION(dt == FUSE_F32 || dt == FUSE_F16 ? 9 : 17);
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
static json_t *jsonl_header(const fuse_tensor *t)
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

fuse_status rt_json_encode(const fuse_tensor *t, bool jsonl, char **text, size_t *len,
                           char **err)
{
    fuse_status st = rt_tensor_check(t, jsonl ? ".jsonl text" : ".json text", NULL, err);
    if (st != FUSE_OK)
        return st;
    SupBuf b = {0};
    int64_t pos = 0;
    json_t *value = build_nested(t, 0, &pos);
    bool ok;
    if (jsonl) {
        ok = dump_line(jsonl_header(t), dump_flags(t->dtype), &b);
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
    fuse_status st = rt_tensor_check(t, path, NULL, err);
    if (st != FUSE_OK)
        return st;
    char *text;
    size_t len;
    st = rt_json_encode(t, jsonl, &text, &len, NULL);
    if (st != FUSE_OK)
        return sup_fail(err, st, "%s: out of memory printing the tensor", path);
    st = sup_write_file_atomic(path, text, len, err);
    free(text);
    return st;
}

fuse_status rt_json_write(const char *path, const fuse_tensor *t, char **err)
{
    return write_json(path, t, false, err);
}

fuse_status rt_jsonl_write(const char *path, const fuse_tensor *t, char **err)
{
    return write_json(path, t, true, err);
}
