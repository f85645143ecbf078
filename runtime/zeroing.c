/*
 * zeroing.c: which computed tensors a run may leave unzeroed.
 *
 * Before its kernels run, a run sets every computed tensor (TEN_DEFINED and
 * TEN_TEMP) to 0, since contributions add into their output and shifted or
 * partial writes leave cells alone (exec.c). Most tensors, though, are written
 * whole before anything reads them, and their memset is a wasted pass over
 * memory (an attention head: megabytes per run). A tensor t may skip it when
 * ALL of these hold (conservative; anything unsure keeps the memset):
 *  1. t is TEN_DEFINED or TEN_TEMP, with cells, and every op writing it is in one
 *     equation group, not a sink group, not in a recursive component (sweeps
 *     there read the previous values and semi-naive runs write deltas);
 *  2. the first op of that group writing t writes every cell of t (op_covers):
 *     - its kind always stores (MAP, SOFTMAX, LNORM, MSOFTMAX, CASE, ROPE, HOST:
 *       emit.c, emit_rows.c and tucker.c store each cell of their loops), or it
 *       is a JOIN with is_init (emit_join zeroes or overwrites the output, the
 *       contraction kernel stores "=" on its first K block);
 *     - it is no concat part (concat_slot < 0), and each out slot k is a loop
 *       axis of its own (no two slots share one: no diagonal), unshifted (out
 *       offset 0), without a merged minor axis, of t's size there;
 *     - no loop axis is empty (an op with an empty axis emits no code at all,
 *       not even the zeroing of an is_init JOIN);
 *     - when it reads a temporary that a single op writes (a lone call copied
 *       into t: lowering may fold the copy and let the call write t directly,
 *       lower/fold.c), that op covers its own output too;
 *  3. no op reads t before that first writer: no op of an earlier group (the
 *     topological order already ensures it outside recursive components) and
 *     no earlier op of its own group, nor the writer itself;
 *  4. t is not the written slot of a streaming tensor (stream.c keeps its
 *     steps), not stream state, not a temperature ("%T." names, set by the
 *     schedule) and not bound to a host input.
 * The run decides the rest: a query, a demand-mode run and a Monte Carlo run
 * zero everything as before (exec.c), since there groups outside the closure
 * must still read as 0 and sampled kernels may accumulate. Fusion (lower/fusion.c,
 * fold.c, plan_compile.c) changes how a group's ops are emitted, not what they
 * write; the temporaries it keeps in registers are never read from memory.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* Who writes tensor t: the group (-1: none yet) and op index of its first
 * writer, whether writers are spread over groups or in a sink group, and
 * whether some op reads t before that first writer. */
typedef struct Writer {
    int group, op;
    int n_ops;          /* ops writing it, over all groups */
    bool is_unsafe;     /* several groups, a sink group or an early read */
} Writer;

/* The op writes every cell of its output (rule 2 but the folded-copy part). */
static bool op_covers(const IrProgram *p, const Op *op)
{
    switch (op->kind) {
    case OP_JOIN:
        if (!op->is_init)
            return false;
        break;
    case OP_MAP: case OP_SOFTMAX: case OP_LNORM: case OP_MSOFTMAX:
    case OP_CASE: case OP_ROPE: case OP_HOST:
        break;
    default:
        return false;
    }
    if (op->concat_slot >= 0)
        return false;
    for (int a = 0; a < op->n_axes; a++)
        if (op->axes[a].size < 1)
            return false;
    const IrTensor *t = p->tensors[op->out];
    for (int k = 0; k < t->rank; k++) {
        int a = op->out_axis[k];
        if (a < 0 || a >= op->n_axes || op->out_offset[k] != 0 || op->out_minor[k] != 0
            || op->axes[a].size != t->shape[k])
            return false;
        for (int j = 0; j < k; j++)
            if (op->out_axis[j] == a)
                return false;
    }
    return true;
}

/* Records the writers of every tensor (pass 1 of rt_zeroing_flags). */
static void find_writers(const IrProgram *p, Writer *w)
{
    for (int t = 0; t < p->n_tensors; t++)
        w[t] = (Writer){.group = -1, .op = -1};
    for (int g = 0; g < p->n_groups; g++)
        for (int i = 0; i < p->groups[g]->n_ops; i++) {
            Writer *x = &w[p->groups[g]->ops[i]->out];
            x->n_ops++;
            if (x->group < 0) {
                x->group = g;
                x->op = i;
            } else if (x->group != g) {
                x->is_unsafe = true;
            }
        }
    for (int g = 0; g < p->n_sink_groups; g++)
        for (int i = 0; i < p->sink_groups[g]->n_ops; i++) {
            Writer *x = &w[p->sink_groups[g]->ops[i]->out];
            x->n_ops++;
            x->is_unsafe = true;
        }
}

/* Marks tensors some op reads before their first writer runs (rule 3). Sink
 * groups run after every equation group, so their reads never come early. */
static void find_early_reads(const IrProgram *p, Writer *w)
{
    for (int g = 0; g < p->n_groups; g++)
        for (int i = 0; i < p->groups[g]->n_ops; i++) {
            const Op *op = p->groups[g]->ops[i];
            for (int k = 0; k < op->n_in; k++) {
                Writer *x = &w[op->in[k].tensor];
                if (x->group < 0 || g < x->group || (g == x->group && i <= x->op))
                    x->is_unsafe = true;
            }
        }
}

/* Rule 2's last part: a temporary read by t's first writer, written by one op
 * alone, is written whole by that op. */
static bool folded_call_covers(const IrProgram *p, const Writer *w, const Op *first)
{
    for (int k = 0; k < first->n_in; k++) {
        int u = first->in[k].tensor;
        if (p->tensors[u]->kind != TEN_TEMP || w[u].n_ops != 1)
            continue;
        if (w[u].group < 0 || !op_covers(p, p->groups[w[u].group]->ops[w[u].op]))
            return false;
    }
    return true;
}

/* Rules 1, 2 and 4 for tensor t (rule 3 is in w[t].is_unsafe). */
static bool may_skip(const RtPlan *pl, const Writer *w, int t)
{
    const IrProgram *p = pl->ir;
    const IrTensor *x = p->tensors[t];
    if ((x->kind != TEN_DEFINED && x->kind != TEN_TEMP) || w[t].group < 0 || w[t].is_unsafe
        || pl->count[t] <= 0)
        return false;
    if (x->stream != 0 || x->is_stream_state || x->is_read_prev
        || (pl->is_input && pl->is_input[t]) || strncmp(x->name, "%T.", 3) == 0)
        return false;
    const Group *g = p->groups[w[t].group];
    if (g->is_recursive || g->is_sink)
        return false;
    const Op *first = g->ops[w[t].op];
    return op_covers(p, first) && folded_call_covers(p, w, first);
}

bool *rt_zeroing_flags(RtPlan *pl)
{
    const IrProgram *p = pl->ir;
    if (!p || !p->is_shaped || !pl->count)
        return NULL;
    size_t n = (size_t)p->n_tensors + 1;
    Writer *w = malloc(n * sizeof *w);
    bool *skip = w ? arena_alloc(&pl->arena, n * sizeof *skip) : NULL;
    if (skip) {
        find_writers(p, w);
        find_early_reads(p, w);
        for (int t = 0; t < p->n_tensors; t++)
            skip[t] = may_skip(pl, w, t);
    }
    free(w);
    return skip;
}
