/*
 * weights_bind.c: a weights manifest (weights.c) and a program. An entry
 * supplies the tensor of its name: it replaces a source statement's file, and a
 * tensor the program reads but never defines becomes a source statement the
 * manifest fills, declared in the AST before the IR is built. The probe takes
 * such a source's sizes from the manifest, and every run binds its float32
 * tensor as a borrowed input, so the kernels read it in place.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "weights.h"

static RtWeight *find_weight(const RtWeights *w, const char *name)
{
    for (int i = 0; w && name && i < w->n; i++)
        if (strcmp(w->w[i].name, name) == 0)
            return &w->w[i];
    return NULL;
}

/* ---- the program's tensors ---- */

static bool expr_reads(const Expr *e, const char *name, const Expr **at)
{
    if (!e)
        return false;
    if (e->kind == EX_TENSOR && e->name && strcmp(e->name, name) == 0) {
        *at = e;
        return true;
    }
    for (int i = 0; i < e->n_items; i++)
        if (expr_reads(e->items[i], name, at))
            return true;
    for (int i = 0; i < e->n_kwargs; i++)
        if (expr_reads(e->kwargs[i].value, name, at))
            return true;
    return false;
}

/* The statement defining `name`, and the first reference reading it. */
static const Stmt *defining_stmt(const Ast *ast, const char *name, const Expr **read)
{
    const Stmt *def = NULL;
    *read = NULL;
    for (int i = 0; i < ast->n_stmts; i++) {
        const Stmt *st = ast->stmts[i];
        if ((st->kind == ST_EQUATION || st->kind == ST_SOURCE) && strcmp(st->name, name) == 0 &&
            !def)
            def = st;
        if (!*read && (st->kind == ST_EQUATION || st->kind == ST_SINK))
            expr_reads(st->rhs, name, read);
    }
    return def;
}

/* The read's axis names when they can name a source's axes (plain, distinct,
 * as many as the tensor has), else w0, w1, ... */
static bool reads_plain_axes(const Expr *read, int rank)
{
    if (read->n_indices != rank)
        return false;
    for (int k = 0; k < rank; k++) {
        const Index *ix = &read->indices[k];
        if (ix->kind != IX_AXIS || ix->offset != 0 || ix->is_dotted)
            return false;
        for (int j = 0; j < k; j++)
            if (strcmp(read->indices[j].name, ix->name) == 0)
                return false;
    }
    return true;
}

/* A source statement `NAME[...] = <manifest>` for a tensor the program reads but
 * never defines, placed where it is first read. */
static fuse_status declare_source(RtPlan *pl, const RtWeight *w, const Expr *read)
{
    Arena *a = &pl->arena;
    Stmt *st = arena_alloc(a, sizeof *st);
    int rank = w->value.rank;
    Index *ix = arena_alloc(a, sizeof *ix * (size_t)(rank + 1));
    if (!st || !ix)
        return FUSE_E_NOMEM;
    bool plain = reads_plain_axes(read, rank);
    SupBuf text = {0};
    sup_buf_printf(&text, "%s[", w->name);
    for (int k = 0; k < rank; k++) {
        ix[k].kind = IX_AXIS;
        ix[k].name = plain ? read->indices[k].name : arena_printf(a, "w%d", k);
        ix[k].span = read->span;
        sup_buf_printf(&text, "%s%s", k ? "," : "", ix[k].name ? ix[k].name : "?");
    }
    sup_buf_printf(&text, "] = %s", pl->weights->where);
    char *t = sup_buf_finish(&text);
    *st = (Stmt){.kind = ST_SOURCE, .span = read->span, .name = w->name, .indices = ix,
                 .n_indices = rank, .op = AOP_SET, .path_span = read->span};
    st->text = t ? arena_strdup(a, t) : NULL;
    st->path = arena_printf(a, "%s#%s", pl->weights->path, w->name);
    free(t);
    if (!st->text || !st->path || a->is_oom)
        return FUSE_E_NOMEM;
    Ast *ast = &pl->ast;
    return arena_push_ptr(a, (void ***)&ast->stmts, &ast->n_stmts, &ast->cap_stmts, st)
               ? FUSE_OK
               : FUSE_E_NOMEM;
}

/* ---- LoRA pairs kept apart ---- */

static Index *axes(Arena *a, const char *a0, const char *a1, Span at)
{
    Index *ix = arena_alloc(a, 2 * sizeof *ix);
    if (ix)
        ix[0] = (Index){.kind = IX_AXIS, .name = a0, .span = at},
        ix[1] = (Index){.kind = IX_AXIS, .name = a1, .span = at};
    return ix;
}

static Expr *tensor_read(Arena *a, const char *name, const char *part, const char *a0,
                         const char *a1, Span at)
{
    Expr *e = arena_alloc(a, sizeof *e);
    if (!e)
        return NULL;
    *e = (Expr){.kind = EX_TENSOR, .span = at, .name = arena_printf(a, "%s.%s", name, part),
                .indices = axes(a, a0, a1, at), .n_indices = 2};
    return e->name && e->indices ? e : NULL;
}

/* NAME.lora_base[a0,a1] + scale NAME.lora_up[a0,r] NAME.lora_down[r,a1] */
static Expr *split_rhs(Arena *a, const RtLoraSplit *sp, const char *a0, const char *a1, Span at)
{
    const char *r = strcmp(a0, "lora_r") && strcmp(a1, "lora_r") ? "lora_r" : "lora_rank";
    Expr *num = arena_alloc(a, sizeof *num), *prod = arena_alloc(a, sizeof *prod);
    Expr *sum = arena_alloc(a, sizeof *sum);
    Expr **factors = arena_alloc(a, 3 * sizeof *factors), **terms = arena_alloc(a, 2 * sizeof *terms);
    int *signs = arena_alloc(a, 2 * sizeof *signs);
    if (!num || !prod || !sum || !factors || !terms || !signs)
        return NULL;
    *num = (Expr){.kind = EX_NUMBER, .span = at, .num = sp->scale};
    factors[0] = num;
    factors[1] = tensor_read(a, sp->name, "lora_up", a0, r, at);
    factors[2] = tensor_read(a, sp->name, "lora_down", r, a1, at);
    *prod = (Expr){.kind = EX_PRODUCT, .span = at, .items = factors, .n_items = 3};
    terms[0] = tensor_read(a, sp->name, "lora_base", a0, a1, at);
    terms[1] = prod;
    signs[0] = signs[1] = 1;
    *sum = (Expr){.kind = EX_SUM, .span = at, .items = terms, .n_items = 2, .signs = signs};
    return factors[1] && factors[2] && terms[0] ? sum : NULL;
}

/* The tensor of a kept-apart LoRA pair becomes an equation joining its three
 * parts: the source statement naming it is rewritten, or, when the program
 * reads it without defining it, the equation is added where it is first read. */
static fuse_status define_split(RtPlan *pl, const RtLoraSplit *sp)
{
    Arena *a = &pl->arena;
    const Expr *read = NULL;
    Stmt *st = (Stmt *)defining_stmt(&pl->ast, sp->name, &read);
    if (st && st->kind != ST_SOURCE)
        return FUSE_OK; /* the program computes it: its parts go unused (a warning) */
    if (!st && !read)
        return FUSE_OK;
    if (!st) {
        bool plain = reads_plain_axes(read, 2);
        st = arena_alloc(a, sizeof *st);
        Index *ix = st ? axes(a, plain ? read->indices[0].name : "w0",
                              plain ? read->indices[1].name : "w1", read->span)
                       : NULL;
        if (!ix)
            return FUSE_E_NOMEM;
        *st = (Stmt){.span = read->span, .name = sp->name, .indices = ix, .n_indices = 2};
        Ast *ast = &pl->ast;
        if (!arena_push_ptr(a, (void ***)&ast->stmts, &ast->n_stmts, &ast->cap_stmts, st))
            return FUSE_E_NOMEM;
    }
    if (st->n_indices != 2 || st->indices[0].kind != IX_AXIS || st->indices[1].kind != IX_AXIS)
        return fe_error(&pl->dl, FUSE_E_SHAPE, st->span, "weights %s: tensor '%s' has a LoRA "
                        "pair, so it needs two plain axes", pl->weights->path, sp->name);
    const char *a0 = st->indices[0].name, *a1 = st->indices[1].name;
    st->kind = ST_EQUATION;
    st->op = AOP_SET;
    st->path = NULL;
    st->rhs = split_rhs(a, sp, a0, a1, st->span);
    st->text = arena_printf(a, "%s[%s,%s] = %s.lora_base[%s,%s] + %.9g %s.lora_up[%s,%s] "
                            "%s.lora_down[%s,%s]", sp->name, a0, a1, sp->name, a0, a1,
                            sp->scale, sp->name, a0, st->rhs ? st->rhs->items[1]->items[1]
                                                               ->indices[1].name : "?",
                            sp->name, st->rhs ? st->rhs->items[1]->items[2]->indices[0].name
                                              : "?", a1);
    return st->rhs && st->text ? FUSE_OK : FUSE_E_NOMEM;
}

fuse_status rt_weights_open(RtPlan *pl)
{
    const char *path = pl->popts && pl->popts->size >= sizeof(fuse_program_options)
                           ? pl->popts->weights
                           : NULL;
    if (!path)
        return FUSE_OK;
    char *err = NULL;
    fuse_status st = rt_weights_load(path, pl->js != NULL, &pl->weights, &err);
    if (st != FUSE_OK) {
        fe_error(&pl->dl, st, (Span){0}, "%s", err ? err : "out of memory");
        free(err);
        return st;
    }
    for (int i = 0; i < pl->weights->n_splits && st == FUSE_OK; i++)
        st = define_split(pl, &pl->weights->splits[i]); /* before its parts are declared */
    for (int i = 0; i < pl->weights->n && st == FUSE_OK; i++) {
        const RtWeight *w = &pl->weights->w[i];
        const Expr *read = NULL;
        Stmt *def = (Stmt *)defining_stmt(&pl->ast, w->name, &read);
        if (def && def->kind == ST_SOURCE) /* explain shows where it now comes from */
            def->path = arena_printf(&pl->arena, "%s#%s", pl->weights->path, w->name);
        else if (!def && read)
            st = declare_source(pl, w, read);
    }
    return st;
}

bool rt_weights_probe(RtPlan *pl, const IrTensor *t, ShapeFact *f)
{
    RtWeight *w = find_weight(pl->weights, t->name);
    if (!w)
        return false;
    f->is_known = true;
    f->rank = w->value.rank;
    memcpy(f->dims, w->value.shape, sizeof f->dims);
    f->origin = pl->weights->where;
    w->is_used = true;
    return true;
}

void rt_weights_warn_unused(const RtPlan *pl)
{
    for (int i = 0; pl->weights && i < pl->weights->n; i++) {
        const RtWeight *w = &pl->weights->w[i];
        if (w->is_used)
            continue;
        const IrTensor *t = ir_tensor_find(pl->ir, w->name);
        if (t && t->kind != TEN_SOURCE)
            rt_log(pl, FUSE_LEVEL_WARNING, "weights %s: tensor '%s' is computed by the "
                   "program's equations; the manifest's entry is not used", pl->weights->path,
                   w->name);
        else if (!t)
            rt_log(pl, FUSE_LEVEL_WARNING, "weights %s: tensor '%s' is not used by the "
                   "program", pl->weights->path, w->name);
    }
}

fuse_status rt_weights_bind(const RtPlan *pl, const fuse_input *inputs, size_t n_inputs,
                            fuse_input **merged, size_t *n_merged)
{
    *merged = (fuse_input *)inputs;
    *n_merged = n_inputs;
    const RtWeights *ws = pl->weights;
    size_t extra = 0;
    for (int i = 0; ws && i < ws->n; i++)
        extra += ws->w[i].is_used;
    if (!extra)
        return FUSE_OK;
    fuse_input *all = calloc(n_inputs + extra, sizeof *all);
    if (!all)
        return FUSE_E_NOMEM;
    if (n_inputs)
        memcpy(all, inputs, n_inputs * sizeof *all);
    size_t n = n_inputs;
    for (int i = 0; i < ws->n; i++) {
        const RtWeight *w = &ws->w[i];
        bool is_given = false; /* the host's own input wins */
        for (size_t j = 0; j < n_inputs && !is_given; j++)
            is_given = inputs[j].name && strcmp(inputs[j].name, w->name) == 0;
        if (w->is_used && !is_given && w->value.data)
            all[n++] = (fuse_input){.name = w->name, .tensor = w->value, .borrow = 1};
    }
    *merged = all;
    *n_merged = n;
    return FUSE_OK;
}
