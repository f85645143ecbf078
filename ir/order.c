/*
 * order.c: evaluation order of equation groups.
 *
 * Group g depends on group h when an op of g reads the tensor h defines. Strongly
 * connected components (Tarjan) are the recursive parts of the program; the
 * condensation is then ordered topologically, always taking the ready component
 * that appears first in the source, so programs without recursion run in source
 * order where the dependencies allow. Inside a recursive component, operands that
 * read a tensor of the same component read its previous-sweep value (Jacobi
 * iteration; SPEC §6.1–6.2).
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Graph {
    int n;
    bool *edge;      /* edge[g * n + h]: g reads what h defines */
    int *comp;       /* component of each group */
    int n_comp;
    /* Tarjan state */
    int *index, *low, *stack;
    bool *on_stack;
    int n_stack, next_index;
} Graph;

static int defining_group(const IrProgram *p, int tensor)
{
    const IrTensor *t = p->tensors[tensor];
    return t->kind == TEN_DEFINED ? t->group : -1;
}

static void add_edges(const IrProgram *p, Graph *gr)
{
    for (int g = 0; g < p->n_groups; g++) {
        const Group *grp = p->groups[g];
        for (int i = 0; i < grp->n_ops; i++)
            for (int k = 0; k < grp->ops[i]->n_in; k++) {
                int h = defining_group(p, grp->ops[i]->in[k].tensor);
                if (h >= 0)
                    gr->edge[(size_t)g * (size_t)gr->n + (size_t)h] = true;
            }
    }
}

/* Tarjan's algorithm, recursive: depth is bounded by the number of groups. */
static void strongconnect(Graph *gr, int v)
{
    gr->index[v] = gr->low[v] = gr->next_index++;
    gr->stack[gr->n_stack++] = v;
    gr->on_stack[v] = true;
    for (int w = 0; w < gr->n; w++) {
        if (!gr->edge[(size_t)v * (size_t)gr->n + (size_t)w])
            continue;
        if (gr->index[w] < 0) {
            strongconnect(gr, w);
            if (gr->low[w] < gr->low[v])
                gr->low[v] = gr->low[w];
        } else if (gr->on_stack[w] && gr->index[w] < gr->low[v]) {
            gr->low[v] = gr->index[w];
        }
    }
    if (gr->low[v] != gr->index[v])
        return;
    int w;
    do {
        w = gr->stack[--gr->n_stack];
        gr->on_stack[w] = false;
        gr->comp[w] = gr->n_comp;
    } while (w != v);
    gr->n_comp++;
}

/* True when component c still waits for a component not yet placed. */
static bool comp_waits(const Graph *gr, int c, const bool *placed)
{
    for (int g = 0; g < gr->n; g++) {
        if (gr->comp[g] != c)
            continue;
        for (int h = 0; h < gr->n; h++)
            if (gr->edge[(size_t)g * (size_t)gr->n + (size_t)h] && gr->comp[h] != c &&
                !placed[gr->comp[h]])
                return true;
    }
    return false;
}

/* Kahn's algorithm over components, preferring the earliest group in the source. */
static void topo_order(const IrProgram *p, const Graph *gr, Group **out)
{
    bool *placed = calloc((size_t)gr->n_comp + 1, sizeof *placed);
    int n_out = 0;
    if (!placed)
        return;
    while (n_out < gr->n) {
        int pick = -1;
        for (int g = 0; g < gr->n && pick < 0; g++)
            if (!placed[gr->comp[g]] && !comp_waits(gr, gr->comp[g], placed))
                pick = gr->comp[g];
        if (pick < 0)
            break; /* cannot happen: the condensation is acyclic */
        placed[pick] = true;
        for (int g = 0; g < gr->n; g++)
            if (gr->comp[g] == pick)
                out[n_out++] = p->groups[g];
    }
    free(placed);
}

static void mark_recursion(IrProgram *p, const Graph *gr)
{
    for (int g = 0; g < gr->n; g++) {
        Group *grp = p->groups[g];
        grp->component = gr->comp[g];
        for (int h = 0; h < gr->n; h++)
            if (gr->comp[h] == gr->comp[g] && gr->edge[(size_t)g * (size_t)gr->n + (size_t)h])
                grp->is_recursive = true;
    }
    for (int g = 0; g < gr->n; g++) {
        Group *grp = p->groups[g];
        p->tensors[grp->tensor]->is_recursive = grp->is_recursive;
        for (int i = 0; i < grp->n_ops; i++)
            for (int k = 0; k < grp->ops[i]->n_in; k++) {
                Operand *o = &grp->ops[i]->in[k];
                int h = defining_group(p, o->tensor);
                if (h >= 0 && gr->comp[h] == gr->comp[g] && grp->is_recursive) {
                    o->reads_prev = true;
                    p->tensors[o->tensor]->is_read_prev = true;
                }
            }
    }
}

static void graph_free(Graph *gr)
{
    free(gr->edge);
    free(gr->comp);
    free(gr->index);
    free(gr->low);
    free(gr->stack);
    free(gr->on_stack);
}

fuse_status ir_order(IrProgram *p, DiagList *dl)
{
    (void)dl;
    int n = p->n_groups;
    Graph gr = {.n = n};
    size_t m = (size_t)n + 1;
    gr.edge = calloc(m * m, sizeof *gr.edge);
    gr.comp = calloc(m, sizeof *gr.comp);
    gr.index = malloc(m * sizeof *gr.index);
    gr.low = calloc(m, sizeof *gr.low);
    gr.stack = calloc(m, sizeof *gr.stack);
    gr.on_stack = calloc(m, sizeof *gr.on_stack);
    Group **order = arena_alloc(p->arena, sizeof *order * m);
    if (!gr.edge || !gr.comp || !gr.index || !gr.low || !gr.stack || !gr.on_stack || !order) {
        graph_free(&gr);
        return FUSE_E_NOMEM;
    }
    for (int g = 0; g < n; g++)
        gr.index[g] = -1;
    add_edges(p, &gr);
    for (int g = 0; g < n; g++)
        if (gr.index[g] < 0)
            strongconnect(&gr, g);
    mark_recursion(p, &gr);
    topo_order(p, &gr, order);
    p->n_components = gr.n_comp;
    graph_free(&gr);
    for (int i = 0; i < n; i++) {
        p->groups[i] = order[i];
        p->tensors[order[i]->tensor]->group = i;
    }
    return FUSE_OK;
}
