/*
 * weights.c: reading weight manifests (SPEC §8). A JSON manifest names the tensors a
 * program reads and where each comes from: a file, or shards concatenated along
 * an axis; int8/uint8 data dequantised as (q - zero_point)·scale, per tensor or
 * per axis; a LoRA pair merged as W + (alpha/rank)·up·down (or kept apart, for
 * weights_bind.c to join in an equation). Every value is made float32 when a
 * runner is made, except bfloat16/float16 data without a LoRA pair, which
 * stays as stored, and quantised data without one, which stays int8/uint8 with
 * its scales and zero points (the plan then keeps it for the kernels to
 * dequantise, or dequantises it: rt_weights_keep_quantised); checking a
 * program reads only what the shapes need (.npy headers). weights_bind.c ties the tensors to a program's sources.
 *
 *     {"tensors": {"W": {"path": "w.npy"},
 *                  "W2": {"shards": ["w2.0.npy", "w2.1.npy"], "axis": 0},
 *                  "Q": {"path": "q.npy", "quant": {"scale": 0.02, "zero_point": 0}},
 *                  "L": {"path": "base.npy", "lora": {"up": "u.npy", "down": "d.npy",
 *                                                    "alpha": 16, "rank": 8}}}}
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lower.h"
#include "runtime.h"
#include "weights.h"

/* What an entry is being read for: errors name the manifest, entry and key. */
typedef struct Reader {
    const char *manifest; /* as given */
    char *dir;            /* the manifest's directory: entries' paths resolve here */
    const char *entry;    /* the tensor's name */
    bool load;            /* read the data, not only the shapes */
    char *err;            /* the first error */
} Reader;

static fuse_status fail(Reader *r, fuse_status st, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static fuse_status fail(Reader *r, fuse_status st, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->err)
        r->err = sup_strprintf("weights %s: tensors.%s%s%s: %s", r->manifest, r->entry,
                               key ? "." : "", key ? key : "", msg);
    return st;
}

static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : "";
}

/* "(3, 4)" */
static const char *shape_text(int rank, const int64_t *shape, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "(");
    for (int k = 0; k < rank && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (at < cap)
        snprintf(buf + at, cap - at, "%s)", rank == 1 ? "," : "");
    return buf;
}

/* ---- files ---- */

/* Reads file `rel` (relative to the manifest) of key `key` in its own dtype: the
 * data too when `load` (else data is NULL and only .npy headers are read). */
static fuse_status read_file(Reader *r, const char *key, const char *rel, bool load,
                             fuse_tensor *out)
{
    memset(out, 0, sizeof *out);
    char *path = rel[0] == '/' || !r->dir[0] ? strdup(rel) : sup_strprintf("%s/%s", r->dir, rel);
    if (!path)
        return fail(r, FUSE_E_NOMEM, key, "out of memory");
    const char *ext = extension(path);
    char *err = NULL;
    fuse_status st;
    if (strcasecmp(ext, ".npy") == 0 && !load) {
        NpyHeader h;
        st = io_npy_probe(path, &h, &err);
        out->dtype = h.dtype;
        out->rank = h.rank;
        memcpy(out->shape, h.shape, sizeof out->shape);
    } else if (strcasecmp(ext, ".npy") == 0) {
        st = io_npy_read(path, out, &err);
    } else if (strcasecmp(ext, ".npz") == 0) {
        st = io_npz_read(path, NULL, r->entry, out, &err);
    } else if (strcasecmp(ext, ".safetensors") == 0) {
        st = io_safetensors_read_native(path, r->entry, out, &err); /* BF16, F16 kept */
    } else {
        st = FUSE_E_IO;
        err = sup_strprintf("%s: unsupported weight file format '%s' (.npy, .npz or "
                            ".safetensors)", rel, ext);
    }
    free(path);
    if (st == FUSE_OK && !load) {
        free(out->data);
        out->data = NULL;
    }
    if (st != FUSE_OK)
        fail(r, st, key, "%s", err ? err : "cannot be read");
    free(err);
    return st;
}

/* A JSON string value of `key`, or NULL with the error set. */
static const char *string_of(Reader *r, const char *key, const json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    fail(r, FUSE_E_IO, key, "must be a file name (a string)");
    return NULL;
}

/* ---- shards ---- */

/* Concatenates the shards (same dtype and rank, equal sizes but on axis) into one. */
static fuse_status concat(Reader *r, const fuse_tensor *parts, size_t n, int axis,
                          fuse_tensor *out)
{
    *out = parts[0];
    out->data = NULL;
    out->shape[axis] = 0;
    for (size_t i = 0; i < n; i++)
        out->shape[axis] += parts[i].shape[axis];
    if (!r->load)
        return FUSE_OK;
    int64_t count = io_shape_count(out->rank, out->shape), outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= out->shape[k];
    for (int k = axis + 1; k < out->rank; k++)
        inner *= out->shape[k];
    size_t es = fuse_dtype_size(out->dtype);
    char *dst = malloc((size_t)(count > 0 ? count : 1) * es);
    if (!dst)
        return fail(r, FUSE_E_NOMEM, "shards", "out of memory");
    out->data = dst;
    for (int64_t o = 0; o < outer; o++)
        for (size_t i = 0; i < n; i++) {
            size_t run = (size_t)(parts[i].shape[axis] * inner) * es;
            memcpy(dst, (const char *)parts[i].data + (size_t)o * run, run);
            dst += run;
        }
    return FUSE_OK;
}

/* Whether shard s fits the first: same dtype, rank and sizes but on axis. */
static fuse_status check_shard(Reader *r, const fuse_tensor *first, const fuse_tensor *s,
                               size_t i, int axis, const char *name0, const char *name)
{
    char a[160], b[160];
    if (s->dtype != first->dtype)
        return fail(r, FUSE_E_IO, "shards", "shard %zu (%s) holds %s, but shard 0 (%s) holds "
                    "%s", i, name, fuse_dtype_name(s->dtype), name0,
                    fuse_dtype_name(first->dtype));
    bool fits = s->rank == first->rank;
    for (int k = 0; k < s->rank && fits; k++)
        fits = k == axis || s->shape[k] == first->shape[k];
    if (!fits)
        return fail(r, FUSE_E_IO, "shards", "shard %zu (%s) has shape %s, which does not "
                    "add up with shard 0 (%s) of shape %s along axis %d", i, name,
                    shape_text(s->rank, s->shape, a, sizeof a), name0,
                    shape_text(first->rank, first->shape, b, sizeof b), axis);
    return FUSE_OK;
}

/* An axis given in JSON (negative counts from the end) of a rank-`rank` tensor. */
static fuse_status axis_of(Reader *r, const char *key, const json_t *v, int rank, int *axis)
{
    if (!json_is_integer(v))
        return fail(r, FUSE_E_IO, key, "must be an integer axis");
    json_int_t a = json_integer_value(v);
    if (a < -rank || a >= rank || rank == 0)
        return fail(r, FUSE_E_IO, key, "axis %lld is out of range for %d axes", (long long)a,
                    rank);
    *axis = (int)(a < 0 ? a + rank : a);
    return FUSE_OK;
}

static fuse_status read_shards(Reader *r, const json_t *shards, const json_t *axis_v,
                               fuse_tensor *out)
{
    size_t n = json_is_array(shards) ? json_array_size(shards) : 0;
    if (n == 0)
        return fail(r, FUSE_E_IO, "shards", "must be a non-empty list of file names");
    fuse_tensor *parts = calloc(n, sizeof *parts);
    if (!parts)
        return fail(r, FUSE_E_NOMEM, "shards", "out of memory");
    fuse_status st = FUSE_OK;
    int axis = 0;
    size_t got = 0;
    for (size_t i = 0; i < n && st == FUSE_OK; i++, got++) {
        const char *name = string_of(r, "shards", json_array_get(shards, i));
        st = name ? read_file(r, "shards", name, r->load, &parts[i]) : FUSE_E_IO;
        if (st == FUSE_OK && i == 0 && axis_v)
            st = axis_of(r, "axis", axis_v, parts[0].rank, &axis);
        else if (st == FUSE_OK && i == 0 && parts[0].rank == 0)
            st = fail(r, FUSE_E_IO, "shards", "shard 0 is a scalar: nothing to concatenate");
        if (st == FUSE_OK && i > 0)
            st = check_shard(r, &parts[0], &parts[i], i,
                             axis, json_string_value(json_array_get(shards, 0)), name);
    }
    if (st == FUSE_OK)
        st = concat(r, parts, n, axis, out);
    for (size_t i = 0; i < got; i++)
        free(parts[i].data);
    free(parts);
    return st;
}

/* ---- quantisation ---- */

/* scale or zero_point: one number, a list, or a file of numbers; *n values in *v
 * (malloc'd doubles). */
static fuse_status numbers_of(Reader *r, const char *key, const json_t *v, double **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    if (json_is_number(v)) {
        *out = malloc(sizeof **out);
        if (!*out)
            return fail(r, FUSE_E_NOMEM, key, "out of memory");
        (*out)[0] = json_number_value(v);
        *n = 1;
        return FUSE_OK;
    }
    if (json_is_array(v)) {
        size_t k = json_array_size(v);
        *out = malloc(sizeof **out * (k ? k : 1));
        if (!*out)
            return fail(r, FUSE_E_NOMEM, key, "out of memory");
        for (size_t i = 0; i < k; i++) {
            const json_t *x = json_array_get(v, i);
            if (!json_is_number(x))
                return fail(r, FUSE_E_IO, key, "value %zu is not a number", i);
            (*out)[i] = json_number_value(x);
        }
        *n = k;
        return k ? FUSE_OK : fail(r, FUSE_E_IO, key, "is an empty list");
    }
    if (!json_is_string(v))
        return fail(r, FUSE_E_IO, key, "must be a number, a list of numbers or a file name");
    fuse_tensor t;
    fuse_status st = read_file(r, key, json_string_value(v), true, &t);
    if (st != FUSE_OK)
        return st;
    int64_t count = io_shape_count(t.rank, t.shape);
    float *f = malloc(sizeof *f * (size_t)(count > 0 ? count : 1));
    *out = malloc(sizeof **out * (size_t)(count > 0 ? count : 1));
    if (f && *out)
        io_convert_to_f32(t.dtype, t.data, f, count);
    for (int64_t i = 0; f && *out && i < count; i++)
        (*out)[i] = f[i];
    free(f);
    free(t.data);
    *n = (size_t)count;
    if (!*out)
        return fail(r, FUSE_E_NOMEM, key, "out of memory");
    return count > 0 ? FUSE_OK : fail(r, FUSE_E_IO, key, "holds no values");
}

/* n values must be one, or one per position of the quantisation axis. */
static fuse_status check_count(Reader *r, const char *key, size_t n, int axis,
                               const fuse_tensor *q)
{
    if (n == 1)
        return FUSE_OK;
    if (axis < 0)
        return fail(r, FUSE_E_IO, key, "has %zu values, but quant.axis is not given (one "
                    "value per tensor, or say which axis they follow)", n);
    if ((int64_t)n != q->shape[axis])
        return fail(r, FUSE_E_IO, key, "has %zu values, but axis %d of the tensor has %lld "
                    "positions (give one value, or one per position)", n, axis,
                    (long long)q->shape[axis]);
    return FUSE_OK;
}

static fuse_status check_zero_points(Reader *r, const double *zp, size_t n, fuse_dtype dt)
{
    double lo = dt == FUSE_I8 ? -128 : 0, hi = dt == FUSE_I8 ? 127 : 255;
    for (size_t i = 0; i < n; i++)
        if (zp[i] != floor(zp[i]) || zp[i] < lo || zp[i] > hi)
            return fail(r, FUSE_E_IO, "quant.zero_point", "value %g is out of range for "
                        "%s data (an integer from %g to %g)", zp[i], fuse_dtype_name(dt), lo,
                        hi);
    return FUSE_OK;
}

/* The quantisation of an entry: its axis (-1: one scale and zero point). */
typedef struct QuantInfo {
    bool is_quant;
    int axis;
} QuantInfo;

/* q (int8 or uint8) and its tables as one buffer (lower_quant_bytes): the data,
 * then at lower_quant_table_offset the float32 scales, then the zero points,
 * dim of each. NULL on OOM. */
static void *quant_layout(const fuse_tensor *q, const double *scale, size_t n_scale,
                          const double *zp, size_t n_zp, int axis)
{
    int64_t count = io_shape_count(q->rank, q->shape), dim = axis >= 0 ? q->shape[axis] : 1;
    char *buf = io_alloc_aligned((size_t)lower_quant_bytes(count, dim));
    if (!buf)
        return NULL;
    memcpy(buf, q->data, (size_t)count);
    float *table = (float *)(buf + lower_quant_table_offset(count));
    for (int64_t i = 0; i < dim; i++) {
        table[i] = (float)scale[n_scale == 1 ? 0 : i];
        table[dim + i] = (float)(int)zp[n_zp == 1 ? 0 : i];
    }
    return buf;
}

/* A quantised tensor in that layout as float32: (q - zero_point) * scale, in
 * float32, with the scale and zero point of the element's position on `axis`
 * (-1: one each). The kernels compute the same (lower/elem.c). */
static void dequantise(const fuse_tensor *q, int axis, float *out)
{
    int64_t count = io_shape_count(q->rank, q->shape), inner = 1, dim = 1;
    for (int k = axis + 1; axis >= 0 && k < q->rank; k++)
        inner *= q->shape[k];
    if (axis >= 0)
        dim = q->shape[axis];
    const float *table = (const float *)((const char *)q->data + lower_quant_table_offset(count));
    for (int64_t e = 0; e < count; e++) {
        int64_t pos = axis >= 0 ? (e / inner) % dim : 0;
        int v = q->dtype == FUSE_I8 ? ((const int8_t *)q->data)[e]
                                    : ((const uint8_t *)q->data)[e];
        float s = table[pos];
        int z = (int)table[dim + pos];
        out[e] = (float)(v - z) * s;
    }
}

fuse_status rt_weight_dequantise(RtWeight *w)
{
    if (!w->is_quant)
        return FUSE_OK;
    if (w->value.data) {
        int64_t count = io_shape_count(w->value.rank, w->value.shape);
        float *f = io_alloc_aligned(sizeof *f * (size_t)(count > 0 ? count : 1));
        if (!f)
            return FUSE_E_NOMEM;
        dequantise(&w->value, w->quant_axis, f);
        io_free_aligned(w->value.data);
        w->value.data = f;
    }
    w->value.dtype = FUSE_F32;
    w->is_quant = false;
    return FUSE_OK;
}

static const char *const QUANT_KEYS[] = {"scale", "zero_point", "axis", NULL};

/* The keys of object o must be among `known`. */
static fuse_status check_keys(Reader *r, const char *prefix, const json_t *o,
                              const char *const *known)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            char list[256] = "";
            for (int i = 0; known[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                         i ? ", " : "", known[i]);
            char full[160];
            snprintf(full, sizeof full, "%s%s%.100s", prefix ? prefix : "", prefix ? "." : "",
                     key);
            return fail(r, FUSE_E_IO, full, "unknown key (known: %s)", list);
        }
    }
    return FUSE_OK;
}

/* *t (int8/uint8, its own dtype) with its scales and zero points, in the
 * layout of quant_layout (data only when loading); *qi says its axis. */
static fuse_status apply_quant(Reader *r, const json_t *quant, fuse_tensor *t, QuantInfo *qi)
{
    if (!json_is_object(quant))
        return fail(r, FUSE_E_IO, "quant", "must be an object {\"scale\": ..., "
                    "\"zero_point\": ..., \"axis\": ...}");
    fuse_status st = check_keys(r, "quant", quant, QUANT_KEYS);
    if (st != FUSE_OK)
        return st;
    if (t->dtype != FUSE_I8 && t->dtype != FUSE_U8)
        return fail(r, FUSE_E_IO, "quant", "needs int8 or uint8 data, but the file holds %s",
                    fuse_dtype_name(t->dtype));
    const json_t *scale_v = json_object_get(quant, "scale"), *zp_v = json_object_get(quant,
                                                                                     "zero_point");
    const json_t *axis_v = json_object_get(quant, "axis");
    if (!scale_v)
        return fail(r, FUSE_E_IO, "quant.scale", "is missing");
    int axis = -1;
    if (axis_v && (st = axis_of(r, "quant.axis", axis_v, t->rank, &axis)) != FUSE_OK)
        return st;
    double *scale = NULL, *zp = NULL, zero = 0;
    size_t n_scale = 0, n_zp = 1;
    st = numbers_of(r, "quant.scale", scale_v, &scale, &n_scale);
    if (st == FUSE_OK)
        st = check_count(r, "quant.scale", n_scale, axis, t);
    if (st == FUSE_OK && zp_v)
        st = numbers_of(r, "quant.zero_point", zp_v, &zp, &n_zp);
    if (st == FUSE_OK)
        st = check_count(r, "quant.zero_point", n_zp, axis, t);
    if (st == FUSE_OK)
        st = check_zero_points(r, zp ? zp : &zero, n_zp, t->dtype);
    if (st == FUSE_OK && r->load) {
        void *kept = quant_layout(t, scale, n_scale, zp ? zp : &zero, n_zp, axis);
        if (!kept)
            st = fail(r, FUSE_E_NOMEM, "quant", "out of memory");
        free(t->data);
        t->data = kept;
    }
    if (st == FUSE_OK)
        *qi = (QuantInfo){.is_quant = true, .axis = axis};
    free(scale);
    free(zp);
    return st;
}

/* ---- LoRA ---- */

static const char *const LORA_KEYS[] = {"up", "down", "alpha", "rank", "merge", NULL};

/* up (m x r) and down (r x n) against the base (m x n) and the declared rank. */
static fuse_status check_lora(Reader *r, const fuse_tensor *base, const fuse_tensor *up,
                              const fuse_tensor *down, const json_t *rank_v, int64_t *rank)
{
    char a[160], b[160], c[160];
    if (base->rank != 2)
        return fail(r, FUSE_E_IO, "lora", "needs a matrix, but the tensor has shape %s",
                    shape_text(base->rank, base->shape, a, sizeof a));
    if (up->rank != 2 || down->rank != 2 || up->shape[0] != base->shape[0] ||
        down->shape[1] != base->shape[1] || up->shape[1] != down->shape[0])
        return fail(r, FUSE_E_IO, "lora", "up %s and down %s do not make the shape of the "
                    "tensor %s (up is m x rank, down rank x n)",
                    shape_text(up->rank, up->shape, a, sizeof a),
                    shape_text(down->rank, down->shape, b, sizeof b),
                    shape_text(base->rank, base->shape, c, sizeof c));
    *rank = up->shape[1];
    if (rank_v && !json_is_integer(rank_v))
        return fail(r, FUSE_E_IO, "lora.rank", "must be an integer");
    if (rank_v && json_integer_value(rank_v) != *rank)
        return fail(r, FUSE_E_IO, "lora.rank", "says %lld, but up %s and down %s have rank "
                    "%lld", (long long)json_integer_value(rank_v),
                    shape_text(up->rank, up->shape, a, sizeof a),
                    shape_text(down->rank, down->shape, b, sizeof b), (long long)*rank);
    if (*rank == 0)
        return fail(r, FUSE_E_IO, "lora.rank", "is 0");
    return FUSE_OK;
}

/* base += (alpha / rank) * up . down, each product summed in double. */
static fuse_status merge_lora(Reader *r, fuse_tensor *base, const fuse_tensor *up,
                              const fuse_tensor *down, int64_t rank, double alpha)
{
    int64_t m = base->shape[0], n = base->shape[1];
    float *u = malloc(sizeof *u * (size_t)(m * rank + 1));
    float *d = malloc(sizeof *d * (size_t)(rank * n + 1));
    double *acc = malloc(sizeof *acc * (size_t)(n + 1));
    if (!u || !d || !acc) {
        free(u);
        free(d);
        free(acc);
        return fail(r, FUSE_E_NOMEM, "lora", "out of memory");
    }
    io_convert_to_f32(up->dtype, up->data, u, m * rank);
    io_convert_to_f32(down->dtype, down->data, d, rank * n);
    float *w = base->data;
    double factor = alpha / (double)rank;
    /* a row at a time, k outside j: down is read along its rows (contiguous),
     * and each cell still sums its k in order */
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++)
            acc[j] = 0;
        for (int64_t k = 0; k < rank; k++) {
            double a = u[i * rank + k];
            const float *drow = d + k * n;
            for (int64_t j = 0; j < n; j++)
                acc[j] += a * (double)drow[j];
        }
        for (int64_t j = 0; j < n; j++)
            w[i * n + j] = (float)((double)w[i * n + j] + factor * acc[j]);
    }
    free(u);
    free(d);
    free(acc);
    return FUSE_OK;
}

/* A LoRA pair kept apart ("merge": false): up and down as float32 (data only
 * when loading) and alpha / rank. */
typedef struct LoraPair {
    bool is_split;
    fuse_tensor up, down;
    double scale;
} LoraPair;

/* t (already of its own dtype) as float32 in 64-byte aligned memory, in place. */
static fuse_status to_f32(Reader *r, const char *key, fuse_tensor *t)
{
    if (t->data) {
        int64_t count = io_shape_count(t->rank, t->shape);
        float *f = io_alloc_aligned(sizeof *f * (size_t)(count > 0 ? count : 1));
        if (f)
            io_convert_to_f32(t->dtype, t->data, f, count);
        free(t->data);
        t->data = f;
        if (!f)
            return fail(r, FUSE_E_NOMEM, key, "out of memory");
    }
    t->dtype = FUSE_F32;
    return FUSE_OK;
}

/* Merges the pair into t ("merge": true, the default) or keeps it in *pair. */
static fuse_status apply_lora(Reader *r, const json_t *lora, fuse_tensor *t, LoraPair *pair)
{
    if (!json_is_object(lora))
        return fail(r, FUSE_E_IO, "lora", "must be an object {\"up\": ..., \"down\": ..., "
                    "\"alpha\": ..., \"rank\": ...}");
    fuse_status st = check_keys(r, "lora", lora, LORA_KEYS);
    if (st != FUSE_OK)
        return st;
    const json_t *merge = json_object_get(lora, "merge"), *alpha_v = json_object_get(lora,
                                                                                     "alpha");
    if (merge && !json_is_boolean(merge))
        return fail(r, FUSE_E_IO, "lora.merge", "must be true or false");
    if (alpha_v && !json_is_number(alpha_v))
        return fail(r, FUSE_E_IO, "lora.alpha", "must be a number");
    const char *up_name = string_of(r, "lora.up", json_object_get(lora, "up"));
    const char *down_name = up_name ? string_of(r, "lora.down", json_object_get(lora, "down"))
                                    : NULL;
    if (!up_name || !down_name)
        return FUSE_E_IO;
    fuse_tensor up = {0}, down = {0};
    int64_t rank = 0;
    st = read_file(r, "lora.up", up_name, r->load, &up);
    if (st == FUSE_OK)
        st = read_file(r, "lora.down", down_name, r->load, &down);
    if (st == FUSE_OK)
        st = check_lora(r, t, &up, &down, json_object_get(lora, "rank"), &rank);
    double alpha = alpha_v ? json_number_value(alpha_v) : (double)rank;
    bool is_split = merge && json_is_false(merge);
    if (st == FUSE_OK && is_split) { /* the tensors are kept: the program joins them */
        st = to_f32(r, "lora.up", &up);
        if (st == FUSE_OK)
            st = to_f32(r, "lora.down", &down);
        if (st == FUSE_OK) {
            *pair = (LoraPair){.is_split = true, .up = up, .down = down,
                               .scale = alpha / (double)rank};
            return FUSE_OK;
        }
    } else if (st == FUSE_OK && r->load) {
        st = merge_lora(r, t, &up, &down, rank, alpha);
    }
    free(up.data);
    free(down.data);
    return st;
}

/* ---- entries ---- */

static const char *const ENTRY_KEYS[] = {"path", "shards", "axis", "dtype", "shape",
                                         "quant", "lora", NULL};

/* The data of the file (or shards) in its own dtype, its "dtype" checked. */
static fuse_status read_stored(Reader *r, const json_t *e, fuse_tensor *t)
{
    const json_t *path = json_object_get(e, "path"), *shards = json_object_get(e, "shards");
    const json_t *dtype = json_object_get(e, "dtype");
    fuse_status st;
    if (path && shards)
        return fail(r, FUSE_E_IO, "shards", "cannot be given with \"path\": one or the other");
    if (!path && !shards)
        return fail(r, FUSE_E_IO, NULL, "needs \"path\" (a file) or \"shards\" (files "
                    "concatenated along \"axis\")");
    if (json_object_get(e, "axis") && !shards)
        return fail(r, FUSE_E_IO, "axis", "is the axis of \"shards\", which are not given");
    if (path) {
        const char *name = string_of(r, "path", path);
        st = name ? read_file(r, "path", name, r->load, t) : FUSE_E_IO;
    } else {
        st = read_shards(r, shards, json_object_get(e, "axis"), t);
    }
    if (st != FUSE_OK || !dtype)
        return st;
    if (!json_is_string(dtype))
        return fail(r, FUSE_E_IO, "dtype", "must be a dtype name such as \"int8\"");
    const char *want = json_string_value(dtype);
    int dt = 0;
    while (dt < FUSE_DTYPE_COUNT && strcmp(fuse_dtype_name((fuse_dtype)dt), want) != 0)
        dt++;
    if (dt == FUSE_DTYPE_COUNT)
        return fail(r, FUSE_E_IO, "dtype", "unknown dtype '%s' (float16, float32, float64, "
                    "int8 to int64, uint8 to uint64 or bool)", want);
    if (dt != (int)t->dtype)
        return fail(r, FUSE_E_IO, "dtype", "says %s, but the file holds %s", want,
                    fuse_dtype_name(t->dtype));
    return FUSE_OK;
}

/* "shape": [..] must be the shape of the tensor the entry makes. */
static fuse_status check_shape(Reader *r, const json_t *shape, const fuse_tensor *t)
{
    char a[160];
    bool ok = json_is_array(shape) && json_array_size(shape) == (size_t)t->rank;
    for (int k = 0; ok && k < t->rank; k++) {
        const json_t *d = json_array_get(shape, (size_t)k);
        ok = json_is_integer(d) && json_integer_value(d) == t->shape[k];
    }
    if (ok)
        return FUSE_OK;
    char *text = json_dumps(shape, JSON_COMPACT | JSON_ENCODE_ANY);
    fuse_status st = fail(r, FUSE_E_IO, "shape", "says %s, but the tensor has shape %s",
                          text ? text : "?", shape_text(t->rank, t->shape, a, sizeof a));
    free(text);
    return st;
}

/* bfloat16 and float16 entries stay so in memory (the kernels widen them:
 * rt_keep_sources), unless a LoRA pair is merged into them. Their data then
 * must be 64-byte aligned, as every reader's is (io_alloc_aligned). */
static bool is_kept_16bit(const fuse_tensor *t, const json_t *lora)
{
    return (t->dtype == FUSE_BF16 || t->dtype == FUSE_F16) && !lora;
}

/* Makes the tensor of entry e (data only when r->load): float32, or kept
 * 16-bit, or quantised int8/uint8 (out->is_quant); and its LoRA pair when it
 * is kept apart. */
static fuse_status read_entry(Reader *r, const json_t *e, RtWeight *out, LoraPair *pair)
{
    if (!json_is_object(e))
        return fail(r, FUSE_E_IO, NULL, "must be an object such as {\"path\": \"w.npy\"}");
    fuse_status st = check_keys(r, NULL, e, ENTRY_KEYS);
    fuse_tensor t = {0};
    if (st == FUSE_OK)
        st = read_stored(r, e, &t);
    const json_t *quant = json_object_get(e, "quant"), *lora = json_object_get(e, "lora");
    QuantInfo qi = {.axis = -1};
    if (st == FUSE_OK && quant) {
        st = apply_quant(r, quant, &t, &qi);
        RtWeight q = {.value = t, .is_quant = qi.is_quant, .quant_axis = qi.axis};
        if (st == FUSE_OK && lora) { /* merged in float32: dequantised now */
            st = rt_weight_dequantise(&q);
            if (st != FUSE_OK)
                fail(r, st, "quant", "out of memory");
            qi.is_quant = false;
        }
        t = q.value;
    } else if (st == FUSE_OK && !is_kept_16bit(&t, lora)) { /* as a source is read */
        st = to_f32(r, NULL, &t);
    }
    if (st == FUSE_OK && lora)
        st = apply_lora(r, lora, &t, pair);
    if (st == FUSE_OK && json_object_get(e, "shape"))
        st = check_shape(r, json_object_get(e, "shape"), &t);
    if (st != FUSE_OK) {
        free(t.data);
        if (pair->is_split)
            free(pair->up.data), free(pair->down.data);
        pair->is_split = false;
        return st;
    }
    out->value = t;
    out->is_quant = qi.is_quant;
    out->quant_axis = qi.axis;
    return FUSE_OK;
}

/* ---- the manifest ---- */

void rt_weights_free(RtWeights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) {
        free(w->w[i].name);
        io_free_aligned(w->w[i].value.data);
    }
    free(w->w);
    for (int i = 0; i < w->n_splits; i++)
        free(w->splits[i].name);
    free(w->splits);
    free(w->path);
    free(w->where);
    free(w);
}

static fuse_status parse_json(Reader *r, json_t **root)
{
    json_error_t je;
    *root = json_load_file(r->manifest, JSON_REJECT_DUPLICATES, &je);
    if (!*root && je.line < 0) {
        r->err = sup_strprintf("weights %s: cannot read the manifest: %s", r->manifest, je.text);
        return FUSE_E_IO;
    }
    if (!*root) {
        r->err = sup_strprintf("weights %s:%d:%d: not JSON: %s", r->manifest, je.line,
                               je.column, je.text);
        return FUSE_E_IO;
    }
    if (!json_is_object(*root) || !json_is_object(json_object_get(*root, "tensors"))) {
        r->err = sup_strprintf("weights %s: a manifest is an object {\"tensors\": {NAME: "
                               "{...}, ...}}", r->manifest);
        return FUSE_E_IO;
    }
    const char *key;
    json_t *v;
    json_object_foreach(*root, key, v) if (strcmp(key, "tensors") != 0) {
        r->err = sup_strprintf("weights %s: unknown key '%s' (a manifest is {\"tensors\": "
                               "{NAME: {...}, ...}})", r->manifest, key);
        return FUSE_E_IO;
    }
    return FUSE_OK;
}

/* Appends tensor `value` (taken) named NAME.SUFFIX. */
static fuse_status add_part(RtWeights *w, const char *name, const char *suffix,
                            fuse_tensor value)
{
    RtWeight *one = &w->w[w->n];
    one->name = sup_strprintf("%s.%s", name, suffix);
    one->value = value;
    if (!one->name) {
        io_free_aligned(value.data);
        return FUSE_E_NOMEM;
    }
    w->n++;
    return FUSE_OK;
}

/* Entry `name` keeps its LoRA pair apart: it becomes NAME.lora_base, .lora_up
 * and .lora_down, and a split the program's equation joins. */
static fuse_status keep_split(RtWeights *w, RtWeight *base, LoraPair *pair)
{
    char *name = base->name;
    base->name = sup_strprintf("%s.lora_base", name);
    RtLoraSplit *sp = &w->splits[w->n_splits];
    sp->name = name;
    sp->scale = pair->scale;
    w->n_splits++;
    fuse_status st = base->name ? add_part(w, name, "lora_up", pair->up) : FUSE_E_NOMEM;
    if (!base->name)
        io_free_aligned(pair->up.data);
    if (st == FUSE_OK)
        return add_part(w, name, "lora_down", pair->down);
    io_free_aligned(pair->down.data);
    return st;
}

static fuse_status load_manifest(Reader *r, RtWeights *w)
{
    json_t *root = NULL;
    fuse_status st = parse_json(r, &root);
    json_t *tensors = st == FUSE_OK ? json_object_get(root, "tensors") : NULL;
    size_t n = tensors ? json_object_size(tensors) : 0;
    w->w = st == FUSE_OK ? calloc(3 * n + 1, sizeof *w->w) : NULL; /* room for splits */
    w->splits = st == FUSE_OK ? calloc(n + 1, sizeof *w->splits) : NULL;
    if (st == FUSE_OK && (!w->w || !w->splits))
        st = FUSE_E_NOMEM;
    const char *key;
    json_t *e;
    if (st == FUSE_OK)
        json_object_foreach(tensors, key, e) {
            r->entry = key;
            RtWeight *one = &w->w[w->n];
            if (!(one->name = strdup(key))) {
                st = FUSE_E_NOMEM;
                break;
            }
            w->n++;
            LoraPair pair = {0};
            if ((st = read_entry(r, e, one, &pair)) != FUSE_OK)
                break;
            if (pair.is_split && (st = keep_split(w, one, &pair)) != FUSE_OK)
                break;
        }
    json_decref(root);
    return st;
}

fuse_status rt_weights_load(const char *path, bool load, RtWeights **out, char **err)
{
    *out = NULL;
    *err = NULL;
    RtWeights *w = calloc(1, sizeof *w);
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    else if (dir)
        dir[0] = '\0';
    const char *base = strrchr(path, '/');
    if (w) {
        w->path = strdup(path);
        w->where = sup_strprintf("weights \"%s\"", base ? base + 1 : path);
    }
    if (!w || !dir || !w->path || !w->where) {
        rt_weights_free(w);
        free(dir);
        return FUSE_E_NOMEM;
    }
    Reader r = {.manifest = path, .dir = dir, .load = load};
    fuse_status st = load_manifest(&r, w);
    free(dir);
    if (st != FUSE_OK) {
        *err = r.err ? r.err : sup_strprintf("weights %s: %s", path, fuse_status_name(st));
        rt_weights_free(w);
        return st;
    }
    free(r.err);
    *out = w;
    return FUSE_OK;
}

