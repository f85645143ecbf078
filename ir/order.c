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
 *
 * Cost: linear in the program's size up to a log factor. The graph is
 * kept as sorted, duplicate-free adjacency lists (not an n x n matrix), Tarjan's
 * walk keeps its own stack (no recursion as deep as a long chain), and the ready
 * components wait in a heap keyed by their first group. Visiting edges in
 * ascending order keeps the component numbers of the matrix version, which run
 * traces print.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Graph {
    int n;
    int *first;  /* edges of g: dst[first[g] .. first[g + 1]), ascending */
    int *dst;    /* g reads what dst defines */
    int *rfirst; /* readers of h: rsrc[rfirst[h] .. rfirst[h + 1]) */
    int *rsrc;
    int *comp; /* component of each group */
    int n_comp;
    /* Tarjan state */
    int *index, *low, *stack, *call, *next_edge;
    bool *on_stack;
    int n_stack, next_index;
} Graph;

static int defining_group(const IrProgram *p, int tensor)
{
    const IrTensor *t = p->tensors[tensor];
    return t->kind == TEN_DEFINED ? t->group : -1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The groups whose tensors group g reads, with repeats, into out (when not NULL);
 * returns how many. */
static int group_reads(const IrProgram *p, int g, int *out)
{
    const Group *grp = p->groups[g];
    int n = 0;
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            int h = defining_group(p, grp->ops[i]->in[k].tensor);
            if (h >= 0 && out)
                out[n] = h;
            n += h >= 0;
        }
    return n;
}

/* Builds the adjacency lists: each group's edges sorted, repeats dropped, and
 * the reverse lists. False on OOM. */
static bool add_edges(const IrProgram *p, Graph *gr)
{
    size_t m = (size_t)gr->n + 2;
    gr->first = calloc(m, sizeof *gr->first);
    gr->rfirst = calloc(m, sizeof *gr->rfirst);
    if (!gr->first || !gr->rfirst)
        return false;
    for (int g = 0; g < gr->n; g++)
        gr->first[g + 1] = gr->first[g] + group_reads(p, g, NULL);
    size_t n_edges = (size_t)gr->first[gr->n];
    gr->dst = malloc((n_edges + 1) * sizeof *gr->dst);
    gr->rsrc = malloc((n_edges + 1) * sizeof *gr->rsrc);
    int *cur = calloc(m, sizeof *cur);
    if (!gr->dst || !gr->rsrc || !cur) {
        free(cur);
        return false;
    }
    int out = 0;
    for (int g = 0; g < gr->n; g++) { /* fill, sort, drop repeats, compact */
        int lo = gr->first[g], hi = lo + group_reads(p, g, gr->dst + lo);
        qsort(gr->dst + lo, (size_t)(hi - lo), sizeof *gr->dst, cmp_int);
        gr->first[g] = out;
        for (int e = lo; e < hi; e++)
            if (e == lo || gr->dst[e] != gr->dst[e - 1])
                gr->dst[out++] = gr->dst[e];
    }
    gr->first[gr->n] = out;
    for (int e = 0; e < out; e++)
        gr->rfirst[gr->dst[e] + 1]++;
    for (int h = 0; h < gr->n; h++)
        gr->rfirst[h + 1] += gr->rfirst[h];
    for (int g = 0; g < gr->n; g++)
        for (int e = gr->first[g]; e < gr->first[g + 1]; e++)
            gr->rsrc[gr->rfirst[gr->dst[e]] + cur[gr->dst[e]]++] = g;
    free(cur);
    return true;
}

/* Tarjan's algorithm from root, with an explicit call stack (call[]) and the
 * next edge to try of each group on it (next_edge[]). */
static void strongconnect(Graph *gr, int root)
{
    int depth = 0;
    gr->call[depth++] = root;
    gr->index[root] = gr->low[root] = gr->next_index++;
    gr->stack[gr->n_stack++] = root;
    gr->on_stack[root] = true;
    gr->next_edge[root] = gr->first[root];
    while (depth > 0) {
        int v = gr->call[depth - 1];
        if (gr->next_edge[v] < gr->first[v + 1]) {
            int w = gr->dst[gr->next_edge[v]++];
            if (gr->index[w] < 0) { /* descend */
                gr->index[w] = gr->low[w] = gr->next_index++;
                gr->stack[gr->n_stack++] = w;
                gr->on_stack[w] = true;
                gr->next_edge[w] = gr->first[w];
                gr->call[depth++] = w;
            } else if (gr->on_stack[w] && gr->index[w] < gr->low[v]) {
                gr->low[v] = gr->index[w];
            }
            continue;
        }
        depth--; /* v is done: return to its caller */
        if (depth > 0 && gr->low[v] < gr->low[gr->call[depth - 1]])
            gr->low[gr->call[depth - 1]] = gr->low[v];
        if (gr->low[v] != gr->index[v])
            continue;
        int w;
        do {
            w = gr->stack[--gr->n_stack];
            gr->on_stack[w] = false;
            gr->comp[w] = gr->n_comp;
        } while (w != v);
        gr->n_comp++;
    }
}

/* A min-heap of component ids keyed by key[c]. */
typedef struct Heap {
    int *a, n;
    const int *key;
} Heap;

static void heap_push(Heap *h, int c)
{
    int i = h->n++;
    for (; i > 0 && h->key[h->a[(i - 1) / 2]] > h->key[c]; i = (i - 1) / 2)
        h->a[i] = h->a[(i - 1) / 2];
    h->a[i] = c;
}

static int heap_pop(Heap *h)
{
    int top = h->a[0], last = h->a[--h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->key[h->a[c + 1]] < h->key[h->a[c]])
            c++;
        if (h->key[h->a[c]] >= h->key[last])
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0)
        h->a[i] = last;
    return top;
}

/* Kahn's algorithm over components, taking the ready component whose first
 * group comes first in the source. False on OOM. */
static bool topo_order(const IrProgram *p, const Graph *gr, Group **out)
{
    size_t m = (size_t)gr->n_comp + 1;
    int *min_group = malloc(m * sizeof *min_group);
    int *waits = calloc(m, sizeof *waits);       /* edges to components not placed yet */
    int *mfirst = calloc(m + 1, sizeof *mfirst); /* groups of c: members[mfirst[c]..] */
    int *members = malloc(((size_t)gr->n + 1) * sizeof *members);
    Heap h = {malloc(m * sizeof *h.a), 0, min_group};
    bool ok = min_group && waits && mfirst && members && h.a;
    for (int c = 0; ok && c < gr->n_comp; c++)
        min_group[c] = gr->n;
    for (int g = 0; ok && g < gr->n; g++) {
        int c = gr->comp[g];
        min_group[c] = g < min_group[c] ? g : min_group[c];
        mfirst[c + 1]++;
        for (int e = gr->first[g]; e < gr->first[g + 1]; e++)
            waits[c] += gr->comp[gr->dst[e]] != c;
    }
    for (int c = 0; ok && c < gr->n_comp; c++)
        mfirst[c + 1] += mfirst[c];
    for (int g = 0; ok && g < gr->n; g++) /* ascending within each component */
        members[mfirst[gr->comp[g]]++] = g;
    for (int c = gr->n_comp; ok && c > 0; c--) /* the cursors moved one component on */
        mfirst[c] = mfirst[c - 1];
    if (ok)
        mfirst[0] = 0;
    for (int c = 0; ok && c < gr->n_comp; c++)
        if (waits[c] == 0)
            heap_push(&h, c);
    int n_out = 0;
    while (ok && h.n > 0) {
        int pick = heap_pop(&h);
        for (int i = mfirst[pick]; i < mfirst[pick + 1]; i++) {
            int v = members[i];
            out[n_out++] = p->groups[v];
            for (int e = gr->rfirst[v]; e < gr->rfirst[v + 1]; e++) {
                int c = gr->comp[gr->rsrc[e]];
                if (c != pick && --waits[c] == 0)
                    heap_push(&h, c);
            }
        }
    }
    free(min_group);
    free(waits);
    free(mfirst);
    free(members);
    free(h.a);
    return ok && n_out == gr->n; /* the condensation is acyclic: all are placed */
}

static void mark_recursion(IrProgram *p, const Graph *gr)
{
    for (int g = 0; g < gr->n; g++) {
        Group *grp = p->groups[g];
        grp->component = gr->comp[g];
        for (int e = gr->first[g]; e < gr->first[g + 1]; e++)
            if (gr->comp[gr->dst[e]] == gr->comp[g])
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
    free(gr->first);
    free(gr->dst);
    free(gr->rfirst);
    free(gr->rsrc);
    free(gr->comp);
    free(gr->index);
    free(gr->low);
    free(gr->stack);
    free(gr->call);
    free(gr->next_edge);
    free(gr->on_stack);
}

fuse_status ir_order(IrProgram *p, DiagList *dl)
{
    (void)dl;
    int n = p->n_groups;
    Graph gr = {.n = n};
    size_t m = (size_t)n + 1;
    gr.comp = calloc(m, sizeof *gr.comp);
    gr.index = malloc(m * sizeof *gr.index);
    gr.low = calloc(m, sizeof *gr.low);
    gr.stack = calloc(m, sizeof *gr.stack);
    gr.call = calloc(m, sizeof *gr.call);
    gr.next_edge = calloc(m, sizeof *gr.next_edge);
    gr.on_stack = calloc(m, sizeof *gr.on_stack);
    Group **order = arena_alloc(p->arena, sizeof *order * m);
    if (!gr.comp || !gr.index || !gr.low || !gr.stack || !gr.call || !gr.next_edge ||
        !gr.on_stack || !order || !add_edges(p, &gr)) {
        graph_free(&gr);
        return FUSE_E_NOMEM;
    }
    for (int g = 0; g < n; g++)
        gr.index[g] = -1;
    for (int g = 0; g < n; g++)
        if (gr.index[g] < 0)
            strongconnect(&gr, g);
    mark_recursion(p, &gr);
    bool ok = topo_order(p, &gr, order);
    p->n_components = gr.n_comp;
    graph_free(&gr);
    if (!ok)
        return FUSE_E_NOMEM;
    for (int i = 0; i < n; i++) {
        p->groups[i] = order[i];
        p->tensors[order[i]->tensor]->group = i;
    }
    return FUSE_OK;
}
