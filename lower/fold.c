/*
 * fold.c: copy elimination in the group kernels.
 *
 * An equation whose term is a lone call, `P[p,q] = softmax(S[p,q])`, builds as
 * two ops: the call writes a temporary, then a join copies the temporary into P.
 * When the copy is a plain one (first contribution, coefficient 1, the same
 * axes in the same order on both sides, no shift, slice, concat part or
 * threshold) and nothing else touches the temporary, the call writes P
 * directly and the copy is not emitted: one pass over memory less. Only
 * non-recursive groups, and only calls that write every cell of their output
 * and do not read P.
 */
#include "fold.h"

static bool call_writes_all(const Op *op)
{
    switch (op->kind) {
    case OP_MAP:
    case OP_SOFTMAX:
    case OP_LNORM:
    case OP_MSOFTMAX:
    case OP_CASE:
    case OP_ROPE: return op->concat_slot < 0;
    default: return false;
    }
}

/* `copy` is out[a...] = 1 * in[0][a...] over the same axes, written whole. */
static bool is_plain_copy(const IrProgram *p, const Op *copy)
{
    if (copy->kind != OP_JOIN || copy->red != RED_SUM || copy->n_in != 1 || !copy->is_init
        || copy->coef != 1.0 || copy->is_bool_out || copy->is_rsqrt_scaled
        || copy->concat_slot >= 0)
        return false;
    const Operand *o = &copy->in[0];
    int rank = p->tensors[copy->out]->rank;
    if (o->reads_prev || p->tensors[o->tensor]->rank != rank || copy->n_axes != rank)
        return false;
    for (int k = 0; k < rank; k++) {
        if (o->kind[k] != SL_AXIS || o->axis[k] != copy->out_axis[k] || o->offset[k] != 0
            || o->slice[k] || copy->out_offset[k] != 0 || copy->out_minor[k] != 0)
            return false;
        for (int j = 0; j < k; j++)
            if (copy->out_axis[j] == copy->out_axis[k])
                return false;
    }
    return true;
}

/* How many ops of the program's groups read (reads) or write (writes) t. */
static void count_uses(const IrProgram *p, int t, int *reads, int *writes)
{
    *reads = *writes = 0;
    for (int pass = 0; pass < 2; pass++) {
        Group **gs = pass ? p->sink_groups : p->groups;
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++)
            for (int i = 0; i < gs[g]->n_ops; i++) {
                const Op *op = gs[g]->ops[i];
                *writes += op->out == t;
                for (int k = 0; k < op->n_in; k++)
                    *reads += op->in[k].tensor == t;
            }
    }
}

bool fold_call_copy(const IrProgram *p, const Group *g, int i, int *out)
{
    if (g->is_recursive || i + 1 >= g->n_ops)
        return false;
    const Op *call = g->ops[i], *copy = g->ops[i + 1];
    int t = call->out;
    if (!call_writes_all(call) || p->tensors[t]->kind != TEN_TEMP || copy->in == NULL
        || copy->n_in != 1 || copy->in[0].tensor != t || !is_plain_copy(p, copy))
        return false;
    for (int k = 0; k < call->n_in; k++)
        if (call->in[k].tensor == copy->out || call->in[k].reads_prev)
            return false;
    int reads, writes;
    count_uses(p, t, &reads, &writes);
    if (reads != 1 || writes != 1)
        return false;
    *out = copy->out;
    return true;
}
