/*
 * weights_bind.c: a weights manifest (weights.c) and a program. An entry
 * supplies the tensor of its name: it replaces a source statement's file, and a
 * tensor the program reads but never defines becomes a source statement the
 * manifest fills, declared in the AST before the IR is built. The probe takes
 * such a source's sizes from the manifest, and every run binds its tensor
 * (float32; bfloat16/float16 as stored; int8/uint8 with its scales and zero
 * points behind the data: rt_keep_sources) as a borrowed input, so the kernels
 * read it in place.
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

/* ---- kept-apart reads as two joins ----
 * Where an equation with a sum projection (=, +=, not boolean) reads the pair's
 * tensor as a factor of its right-hand side (reached through sums, products,
 * negation and parentheses only), the read W[x,y] becomes
 * (W.lora_base[x,y] + scale W.lora_up[x,r] W.lora_down[r,y]), which the IR
 * distributes: one join with the base and one with the two factors, ordered by
 * the contraction planner (X up first for a thin X). W itself is then never
 * built, so neither its memory nor its M x N x R product is spent. Reads
 * elsewhere (inside calls, max=, boolean rules, sinks, an export of W) keep
 * the defining equation of define_split. */

static Expr *part_read(Arena *a, const char *name, const char *part, Index i0, Index i1)
{
    Expr *e = arena_alloc(a, sizeof *e);
    Index *ix = arena_alloc(a, 2 * sizeof *ix);
    if (!e || !ix)
        return NULL;
    ix[0] = i0, ix[1] = i1;
    *e = (Expr){.kind = EX_TENSOR, .span = i0.span, .name = arena_printf(a, "%s.%s", name, part),
                .indices = ix, .n_indices = 2};
    return e->name ? e : NULL;
}

/* (NAME.lora_base[x,y] + scale NAME.lora_up[x,r] NAME.lora_down[r,y]) for the
 * read NAME[x,y]. */
static Expr *split_read(Arena *a, const RtLoraSplit *sp, const Expr *read, const char *r)
{
    Index rank = {.kind = IX_AXIS, .name = r, .span = read->span};
    Expr *num = arena_alloc(a, sizeof *num), *prod = arena_alloc(a, sizeof *prod);
    Expr *sum = arena_alloc(a, sizeof *sum), *group = arena_alloc(a, sizeof *group);
    Expr **factors = arena_alloc(a, 3 * sizeof *factors), **terms = arena_alloc(a, 2 * sizeof *terms);
    Expr **inner = arena_alloc(a, sizeof *inner);
    int *signs = arena_alloc(a, 2 * sizeof *signs);
    if (!num || !prod || !sum || !group || !factors || !terms || !inner || !signs)
        return NULL;
    *num = (Expr){.kind = EX_NUMBER, .span = read->span, .num = sp->scale};
    factors[0] = num;
    factors[1] = part_read(a, sp->name, "lora_up", read->indices[0], rank);
    factors[2] = part_read(a, sp->name, "lora_down", rank, read->indices[1]);
    *prod = (Expr){.kind = EX_PRODUCT, .span = read->span, .items = factors, .n_items = 3};
    terms[0] = part_read(a, sp->name, "lora_base", read->indices[0], read->indices[1]);
    terms[1] = prod;
    signs[0] = signs[1] = 1;
    *sum = (Expr){.kind = EX_SUM, .span = read->span, .items = terms, .n_items = 2,
                  .signs = signs};
    inner[0] = sum;
    *group = (Expr){.kind = EX_GROUP, .span = read->span, .items = inner, .n_items = 1};
    return factors[1] && factors[2] && terms[0] ? group : NULL;
}

static bool is_splittable_read(const Expr *e, const char *name)
{
    if (e->kind != EX_TENSOR || e->is_paren || e->n_indices != 2 || strcmp(e->name, name) != 0)
        return false;
    for (int s = 0; s < 2; s++)
        if (e->indices[s].kind != IX_AXIS && e->indices[s].kind != IX_INT)
            return false;
    return true;
}

/* Rewrites the splittable reads among the factors of *slot; false on OOM. */
static bool rewrite_factors(Arena *a, Expr **slot, const RtLoraSplit *sp, const char *r, int *n)
{
    Expr *e = *slot;
    if (is_splittable_read(e, sp->name)) {
        *slot = split_read(a, sp, e, r);
        *n += 1;
        return *slot != NULL;
    }
    if (e->kind != EX_SUM && e->kind != EX_PRODUCT && e->kind != EX_NEG && e->kind != EX_GROUP)
        return true;
    for (int i = 0; i < e->n_items; i++)
        if (!rewrite_factors(a, &e->items[i], sp, r, n))
            return false;
    return true;
}

static int count_reads(const Expr *e, const char *name)
{
    if (!e)
        return 0;
    int n = e->kind == EX_TENSOR && e->name && strcmp(e->name, name) == 0;
    for (int i = 0; i < e->n_items; i++)
        n += count_reads(e->items[i], name);
    for (int i = 0; i < e->n_kwargs; i++)
        n += count_reads(e->kwargs[i].value, name);
    return n;
}

static bool uses_index(const Expr *e, const char *name)
{
    if (!e)
        return false;
    for (int s = 0; e->kind == EX_TENSOR && s < e->n_indices; s++)
        if (e->indices[s].name && strcmp(e->indices[s].name, name) == 0)
            return true;
    if (e->kind == EX_INDEXFN && e->axis_name && strcmp(e->axis_name, name) == 0)
        return true;
    for (int i = 0; i < e->n_items; i++)
        if (uses_index(e->items[i], name))
            return true;
    for (int i = 0; i < e->n_kwargs; i++)
        if (uses_index(e->kwargs[i].value, name))
            return true;
    return false;
}

/* An index name the statement does not use, for the rank axis. */
static const char *fresh_rank_index(Arena *a, const Stmt *st)
{
    for (int k = 0;; k++) {
        const char *r = k ? arena_printf(a, "lora_r%d", k) : "lora_r";
        bool is_used = !r;
        for (int s = 0; r && s < st->n_indices && !is_used; s++)
            is_used = st->indices[s].name && strcmp(st->indices[s].name, r) == 0;
        if (!r || (!is_used && !uses_index(st->rhs, r)))
            return r;
    }
}

/* Rewrites the reads of sp's tensor in every equation that allows it; *is_all
 * when no other read or export of it is left. */
static fuse_status split_reads(RtPlan *pl, const RtLoraSplit *sp, bool *is_all)
{
    Arena *a = &pl->arena;
    int left = 0;
    for (int i = 0; i < pl->ast.n_stmts; i++) {
        Stmt *st = pl->ast.stmts[i];
        if (st->kind == ST_EXPORT && strcmp(st->name, sp->name) == 0)
            left++;
        if (st->kind != ST_EQUATION && st->kind != ST_SINK)
            continue;
        int reads = count_reads(st->rhs, sp->name), done = 0;
        if (reads && st->kind == ST_EQUATION && !st->is_paren &&
            (st->op == AOP_SET || st->op == AOP_ADD)) {
            const char *r = fresh_rank_index(a, st);
            if (!r || !rewrite_factors(a, &st->rhs, sp, r, &done))
                return FUSE_E_NOMEM;
            if (done)
                st->text = arena_printf(a, "%s   # %s = %s.lora_base + %.9g %s.lora_up "
                                        "%s.lora_down, kept apart", st->text ? st->text : "",
                                        sp->name, sp->name, sp->scale, sp->name, sp->name);
            if (!st->text)
                return FUSE_E_NOMEM;
        }
        left += reads - done;
    }
    *is_all = left == 0;
    return FUSE_OK;
}

/* Removes the source statement naming `name` (nothing reads it any more). */
static void drop_source(Ast *ast, const char *name)
{
    for (int i = 0; i < ast->n_stmts; i++)
        if (ast->stmts[i]->kind == ST_SOURCE && strcmp(ast->stmts[i]->name, name) == 0) {
            memmove(&ast->stmts[i], &ast->stmts[i + 1],
                    (size_t)(ast->n_stmts - i - 1) * sizeof *ast->stmts);
            ast->n_stmts--;
            return;
        }
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
    bool is_all = false;
    fuse_status status = split_reads(pl, sp, &is_all);
    if (status != FUSE_OK)
        return status;
    if (is_all && (st || read)) { /* every read is two joins now: W is never built */
        drop_source(&pl->ast, sp->name);
        return FUSE_OK;
    }
    st = (Stmt *)defining_stmt(&pl->ast, sp->name, &read); /* the reads left */
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
    const char *r = fresh_rank_index(a, st);
    Expr self = {.kind = EX_TENSOR, .span = st->span, .name = sp->name, .indices = st->indices,
                 .n_indices = 2};
    st->kind = ST_EQUATION;
    st->op = AOP_SET;
    st->path = NULL;
    st->rhs = r ? split_read(a, sp, &self, r) : NULL;
    st->text = arena_printf(a, "%s[%s,%s] = %s.lora_base[%s,%s] + %.9g %s.lora_up[%s,%s] "
                            "%s.lora_down[%s,%s]", sp->name, a0, a1, sp->name, a0, a1,
                            sp->scale, sp->name, a0, r, sp->name, r, a1);
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

bool rt_weights_probe(RtPlan *pl, const IrTensor *t, ShapeFact *f, int *dtype)
{
    RtWeight *w = find_weight(pl->weights, t->name);
    if (!w)
        return false;
    f->is_known = true;
    f->rank = w->value.rank;
    memcpy(f->dims, w->value.shape, sizeof f->dims);
    f->origin = pl->weights->where;
    *dtype = 1 + (int)w->value.dtype;
    w->is_used = true;
    return true;
}

fuse_status rt_weights_keep_quantised(RtPlan *pl, IrTensor *t, bool keep)
{
    RtWeight *w = find_weight(pl->weights, t->name);
    if (!w || !w->is_quant)
        return FUSE_OK;
    if (keep) {
        t->quant = w->value.dtype == FUSE_I8 ? IR_QUANT_I8 : IR_QUANT_U8;
        t->quant_axis = w->quant_axis;
        return FUSE_OK;
    }
    if (rt_weight_dequantise(w) != FUSE_OK)
        return fe_error(&pl->dl, FUSE_E_NOMEM, t->span, "weights %s: out of memory "
                        "dequantising tensor '%s'", pl->weights->path, t->name);
    return FUSE_OK;
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
