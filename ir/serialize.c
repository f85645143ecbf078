/*
 * serialize.c: the canonical serialisation of a checked, shaped IR program, the part of
 * the code cache's key that describes the program (jit/cache.c hashes it).
 *
 * What goes in: every fact lowering reads — tensors (kind, rank, shape, flags,
 * constant data), groups in evaluation order with their ops (kind, loop sizes,
 * operands with their slot kinds, axes, offsets, steps and previous-sweep reads,
 * reductions, coefficients as exact bit patterns, builtins and parameters), sink
 * groups, sinks, concatenations and exports. What stays out: source text, spans,
 * file paths and tensor names, so comments, whitespace and renamings keep the key.
 * Every integer is written as 8 little-endian bytes and every list is preceded by
 * its length, so no two different programs serialise to the same bytes.
 *
 * A field added to IrTensor, Op or Operand that changes the generated code must be
 * added here too (and IR_HASH_FORMAT bumped), or a stale cache entry would be hit.
 *
 * ir_serialize_group describes ONE group's kernel, the key of the
 * per-group cache: its flags and ops (ser_op: tensor numbers, loop sizes, operands,
 * coefficients...), then the kind, rank, shape, dotted axis and boolean flag of
 * every tensor the ops touch (what lower/ reads of a tensor: its strides), and the
 * program-wide facts a kernel can depend on only when it does: the number of
 * tensors (the offset of previous-sweep buffers and of the scratch slot) when an
 * operand reads the previous sweep or the group has a contraction, and the
 * per-thread scratch size when it has a contraction. Everything else of the
 * program (other groups, constant data, exports, component numbers) stays out, so
 * a group keeps its key when another equation changes.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* Bumped whenever the serialisation changes. */
#define IR_HASH_FORMAT 1

typedef struct Ser {
    unsigned char *p;
    size_t len, cap;
    bool is_oom;
} Ser;

static void ser_bytes(Ser *s, const void *data, size_t n)
{
    if (s->is_oom)
        return;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        unsigned char *p = realloc(s->p, cap);
        if (!p) {
            s->is_oom = true;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
}

static void ser_int(Ser *s, int64_t v)
{
    unsigned char b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    ser_bytes(s, b, sizeof b);
}

/* A double by its bit pattern: 0.1 and 0.1 + 1e-17 are different programs. */
static void ser_double(Ser *s, double d)
{
    int64_t bits;
    memcpy(&bits, &d, sizeof bits);
    ser_int(s, bits);
}

static void ser_tensor(Ser *s, const IrTensor *t)
{
    ser_int(s, t->kind);
    ser_int(s, t->rank);
    for (int i = 0; i < t->rank; i++)
        ser_int(s, t->shape[i]);
    ser_int(s, t->dotted);
    ser_int(s, (int64_t)t->is_bool | (int64_t)t->is_export << 1 |
                   (int64_t)t->is_recursive << 2 | (int64_t)t->is_read_prev << 3);
    ser_int(s, t->group);
    ser_int(s, t->elem);
    ser_int(s, t->quant); /* the kind and layout of a quantised weight, never its scales */
    ser_int(s, t->quant_axis);
    if (t->kind == TEN_CONST && t->data) {
        int64_t n = 1;
        for (int i = 0; i < t->rank; i++)
            n *= t->shape[i];
        ser_int(s, n);
        ser_bytes(s, t->data, (size_t)n * sizeof(float));
    } else {
        ser_int(s, -1);
    }
}

static void ser_operand(Ser *s, const Operand *o, int rank)
{
    ser_int(s, o->tensor);
    ser_int(s, rank);
    for (int i = 0; i < rank; i++) {
        ser_int(s, o->kind[i]);
        ser_int(s, o->kind[i] == SL_AXIS ? o->axis[i] : -1);
        ser_int(s, o->offset[i]);
        ser_int(s, o->slice[i] ? o->step[i] : 0);
    }
    ser_int(s, o->reads_prev);
}

static void ser_op(Ser *s, const IrProgram *p, const Op *op)
{
    int out_rank = p->tensors[op->out]->rank;
    ser_int(s, op->kind);
    ser_int(s, op->out);
    for (int i = 0; i < out_rank; i++) {
        ser_int(s, op->out_axis[i]);
        ser_int(s, op->out_offset[i]);
        ser_int(s, op->out_minor[i]);
    }
    ser_int(s, op->n_axes);
    for (int i = 0; i < op->n_axes; i++)
        ser_int(s, op->axes[i].size);
    ser_int(s, op->n_in);
    for (int i = 0; i < op->n_in; i++)
        ser_operand(s, &op->in[i], p->tensors[op->in[i].tensor]->rank);
    ser_int(s, op->red);
    ser_double(s, op->coef);
    ser_int(s, (int64_t)op->is_init | (int64_t)op->is_bool_out << 1 |
                   (int64_t)op->is_rsqrt_scaled << 2 | (int64_t)op->is_contribution << 3);
    ser_int(s, op->fn);
    ser_double(s, op->param[0]);
    ser_double(s, op->param[1]);
    ser_int(s, op->axis);
    ser_int(s, op->concat_slot);
    if (op->kind == OP_HOST) { /* tucker */
        ser_int(s, op->host_fn);
        for (int i = 0; i < out_rank; i++)
            ser_int(s, op->host_ranks[i]);
    }
}

static void ser_groups(Ser *s, const IrProgram *p, Group *const *groups, int n)
{
    ser_int(s, n);
    for (int g = 0; g < n; g++) {
        const Group *gr = groups[g];
        ser_int(s, gr->tensor);
        ser_int(s, gr->component);
        ser_int(s, (int64_t)gr->is_recursive | (int64_t)gr->is_sink << 1);
        ser_int(s, gr->n_ops);
        for (int i = 0; i < gr->n_ops; i++)
            ser_op(s, p, gr->ops[i]);
    }
}

/* the streaming windows (which tensor holds which offset). The
 * kernels only see the slots as tensors; the runtime rotates them between runs. */
static void ser_streams(Ser *s, const IrProgram *p)
{
    ser_int(s, p->n_streams);
    for (int i = 0; i < p->n_streams; i++) {
        const IrStream *st = p->streams[i];
        ser_int(s, st->tensor);
        ser_int(s, st->offset);
        ser_int(s, st->lo);
        for (int64_t o = st->lo; o <= st->offset; o++)
            ser_int(s, st->slots[o - st->lo]);
    }
}

fuse_status ir_serialize(const IrProgram *p, unsigned char **out, size_t *n)
{
    if (!p || !out || !n || !p->is_shaped)
        return FUSE_E_ARG;
    Ser s = {0};
    ser_bytes(&s, "fuse-ir", 7);
    ser_int(&s, IR_HASH_FORMAT);
    ser_int(&s, p->n_tensors);
    for (int i = 0; i < p->n_tensors; i++)
        ser_tensor(&s, p->tensors[i]);
    ser_groups(&s, p, p->groups, p->n_groups);
    ser_groups(&s, p, p->sink_groups, p->n_sink_groups);
    ser_int(&s, p->n_sinks);
    for (int i = 0; i < p->n_sinks; i++) {
        ser_int(&s, p->sinks[i]->group);
        ser_int(&s, p->sinks[i]->is_topk ? p->sinks[i]->k : -1);
    }
    ser_int(&s, p->n_concats);
    for (int i = 0; i < p->n_concats; i++) {
        ser_int(&s, p->concats[i]->out);
        ser_int(&s, p->concats[i]->slot);
        ser_int(&s, p->concats[i]->n_parts);
    }
    ser_int(&s, p->n_exports);
    for (int i = 0; i < p->n_exports; i++)
        ser_int(&s, p->exports[i]);
    ser_streams(&s, p); /* stream */
    if (s.is_oom) {
        free(s.p);
        return FUSE_E_NOMEM;
    }
    *out = s.p;
    *n = s.len;
    return FUSE_OK;
}

/* ---- one group ---- */

/* The lowering-relevant facts of tensor t (not its group, data or export flag). */
static void ser_touched(Ser *s, const IrTensor *t)
{
    ser_int(s, t->kind);
    ser_int(s, t->rank);
    for (int i = 0; i < t->rank; i++)
        ser_int(s, t->shape[i]);
    ser_int(s, t->dotted);
    ser_int(s, t->is_bool);
    ser_int(s, t->elem);
    ser_int(s, t->quant);
    ser_int(s, t->quant_axis);
}

static bool group_reads_prev(const Group *g)
{
    for (int i = 0; i < g->n_ops; i++)
        for (int k = 0; k < g->ops[i]->n_in; k++)
            if (g->ops[i]->in[k].reads_prev)
                return true;
    return false;
}

fuse_status ir_serialize_group(const IrProgram *p, const Group *g, int64_t scratch_bytes,
                               unsigned char **out, size_t *n)
{
    if (!p || !g || !out || !n || !p->is_shaped)
        return FUSE_E_ARG;
    Ser s = {0};
    ser_bytes(&s, "fuse-irg", 8);
    ser_int(&s, IR_HASH_FORMAT);
    ser_int(&s, (int64_t)g->is_recursive | (int64_t)g->is_sink << 1);
    ser_int(&s, g->tensor);
    ser_int(&s, g->n_ops);
    for (int i = 0; i < g->n_ops; i++) {
        const Op *op = g->ops[i];
        ser_op(&s, p, op);
        ser_touched(&s, p->tensors[op->out]);
        for (int k = 0; k < op->n_in; k++)
            ser_touched(&s, p->tensors[op->in[k].tensor]);
    }
    bool uses_n = scratch_bytes > 0 || group_reads_prev(g);
    ser_int(&s, uses_n ? p->n_tensors : -1);
    ser_int(&s, scratch_bytes);
    if (s.is_oom) {
        free(s.p);
        return FUSE_E_NOMEM;
    }
    *out = s.p;
    *n = s.len;
    return FUSE_OK;
}
