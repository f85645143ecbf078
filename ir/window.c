/*
 * window.c: the windows of streaming `*t` axes (SPEC §6.4) in the IR.
 *
 * Approach. Time is not a dense axis. A tensor whose left-hand side carries a
 * streaming index (`H[i,*t] = ...`, `X[i,*t] = "x.npy"`) is declared without it;
 * its equations write one step, at the LHS offset w. A read `H[j,*t+k]` names the
 * slot of offset k: the written slot itself when k == w, else an earlier step
 * ("H@t-1" for k = -1), a source-like tensor that the runtime fills from the steps
 * it stored (runtime/stream.c). Reading a later step than w is an error: a step
 * cannot see the future. The window of H runs from the oldest offset read to w.
 *
 * The AST is rewritten copy-on-write (only statements and expressions that change
 * are copied, into the arena) so the builder sees plain tensors; after the
 * declarations, each earlier-step slot is created sharing the size variables of
 * the written slot, so shape inference gives every slot the same shape. A program
 * without streaming indices keeps its AST untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "window.h"

/* A slot still to create in ir_stream_declare (in IrStream.slots). */
#define SLOT_PENDING (-2)

/* What the rewrite knows of one left-hand-side name. */
typedef struct StreamName {
    const char *name;
    const Stmt *first;  /* its first left-hand side */
    const Index *time;  /* the streaming index of that LHS, or NULL */
    bool *read;         /* read[d]: offset w - d is read, d in 0..IR_STREAM_MAX_WINDOW */
} StreamName;

typedef struct Rewriter {
    Builder *b;
    Arena *arena;
    StreamName *names;
    int n_names;
    IrNameMap *index;   /* name -> its entry in names (no linear search) */
    const Index *axis;  /* the program's first streaming index */
} Rewriter;

static bool failed(const Rewriter *r) { return r->b->status != FUSE_OK || r->arena->is_oom; }

/* Reports msg (arena text; NULL after OOM) at span; always false. */
static bool fail_at(Rewriter *r, Span span, const char *msg)
{
    if (msg)
        ir_fail(r->b, FUSE_E_SHAPE, span, "%s", msg);
    return false;
}

/* "*t", "*t+1", "*t-1". */
static const char *offset_text(Arena *a, const char *axis, int64_t o)
{
    return o ? arena_printf(a, "*%s%+lld", axis, (long long)o) : arena_printf(a, "*%s", axis);
}

/* The name of the slot of offset o: "H@t", "H@t-1", "H@t+1". */
static const char *slot_name(Arena *a, const char *name, const char *axis, int64_t o)
{
    return o ? arena_printf(a, "%s@%s%+lld", name, axis, (long long)o)
             : arena_printf(a, "%s@%s", name, axis);
}

static StreamName *name_find(Rewriter *r, const char *name)
{
    int i = ir_name_map_get(r->index, name);
    return i >= 0 ? &r->names[i] : NULL;
}

/* Sets *out to the streaming index among ix[0..n), or NULL. Errors: two of them,
 * or a time axis other than the program's. */
static bool time_index(Rewriter *r, const Index *ix, int n, const Index **out)
{
    *out = NULL;
    for (int s = 0; s < n; s++) {
        if (ix[s].kind != IX_STREAM)
            continue;
        if (*out)
            return fail_at(r, ix[s].span, arena_printf(r->arena,
                "more than one streaming index in one reference ('*%s' and '*%s'); "
                "a program has one time axis", (*out)->name, ix[s].name));
        *out = &ix[s];
        if (!r->axis)
            r->axis = &ix[s];
        else if (strcmp(r->axis->name, ix[s].name) != 0)
            return fail_at(r, ix[s].span, arena_printf(r->arena,
                "streaming axis '*%s' here but '*%s' at line %d; a program has one time axis",
                ix[s].name, r->axis->name, r->axis->span.line));
    }
    return true;
}

/* ---- pass 1: left-hand sides ---- */

static bool scan_lhs(Rewriter *r, const Stmt *st)
{
    const Index *ix;
    if (!time_index(r, st->indices, st->n_indices, &ix))
        return false;
    StreamName *sn = name_find(r, st->name);
    if (!sn) {
        if (!ir_name_map_put(r->index, st->name, r->n_names))
            return false;
        sn = &r->names[r->n_names++];
        sn->name = st->name;
        sn->first = st;
        sn->time = ix;
        sn->read = ix ? arena_alloc(r->arena, IR_STREAM_MAX_WINDOW + 1) : NULL;
        return !ix || sn->read;
    }
    if (!ix != !sn->time)
        return fail_at(r, ix ? ix->span : st->span, arena_printf(r->arena,
            "'%s' is written %s a streaming axis at line %d; every left-hand side of it "
            "needs %s", st->name, sn->time ? "with" : "without", sn->first->span.line,
            sn->time ? "one" : "none"));
    if (ix && ix->offset != sn->time->offset)
        return fail_at(r, ix->span, arena_printf(r->arena,
            "'%s' is written at %s here but at %s at line %d; a streaming tensor is "
            "written at one offset", st->name, offset_text(r->arena, ix->name, ix->offset),
            offset_text(r->arena, ix->name, sn->time->offset), sn->first->span.line));
    return true;
}

/* ---- pass 2: references ---- */

/* A copy of ix[0..n) without *drop (NULL when nothing is left). */
static Index *drop_index(Rewriter *r, const Index *ix, int n, const Index *drop)
{
    if (n <= 1)
        return NULL;
    Index *out = arena_alloc(r->arena, sizeof *out * (size_t)(n - 1));
    for (int s = 0, k = 0; out && s < n; s++)
        if (&ix[s] != drop)
            out[k++] = ix[s];
    return out;
}

/* Checks the read of offset ix->offset of streaming tensor sn and records it. */
static bool check_read(Rewriter *r, StreamName *sn, const Expr *e, const Index *ix)
{
    int64_t w = sn->time->offset, d;
    const char *at = offset_text(r->arena, ix->name, ix->offset);
    if (ix->offset > w)
        return fail_at(r, ix->span, arena_printf(r->arena,
            "%s[%s] reads a later step than the program has: '%s' is %s at %s (line %d); "
            "a step cannot read the future", e->name, at ? at : "?", e->name,
            sn->first->kind == ST_SOURCE ? "read from its source" : "computed",
            offset_text(r->arena, ix->name, w), sn->first->span.line));
    if (__builtin_sub_overflow(w, ix->offset, &d) || d > IR_STREAM_MAX_WINDOW)
        return fail_at(r, ix->span, arena_printf(r->arena,
            "%s[%s] reaches too far back: a streaming window holds at most %d steps",
            e->name, at ? at : "?", IR_STREAM_MAX_WINDOW));
    sn->read[d] = true;
    return true;
}

/* A tensor reference: the slot of its offset, without the time index. */
static Expr *rewrite_ref(Rewriter *r, Expr *e)
{
    const Index *ix;
    if (!time_index(r, e->indices, e->n_indices, &ix))
        return NULL;
    StreamName *sn = name_find(r, e->name);
    if (!sn || (!sn->time && !ix))
        return e; /* not streaming, or unknown: the builder reports unknown names */
    if (!sn->time) {
        fail_at(r, ix->span, arena_printf(r->arena,
            "'%s' has no streaming axis (its left-hand side at line %d has none), so "
            "'*%s' cannot index it", e->name, sn->first->span.line, ix->name));
        return NULL;
    }
    if (!ix) {
        fail_at(r, e->span, arena_printf(r->arena,
            "'%s' is a streaming tensor (written at %s, line %d): index it with its time "
            "axis, e.g. %s[..., *%s-1]", e->name,
            offset_text(r->arena, sn->time->name, sn->time->offset), sn->first->span.line,
            e->name, sn->time->name));
        return NULL;
    }
    if (!check_read(r, sn, e, ix))
        return NULL;
    Expr *c = arena_alloc(r->arena, sizeof *c);
    if (!c)
        return NULL;
    *c = *e;
    c->name = ix->offset == sn->time->offset
        ? sn->name : slot_name(r->arena, sn->name, ix->name, ix->offset);
    c->indices = drop_index(r, e->indices, e->n_indices, ix);
    c->n_indices = e->n_indices - 1;
    return failed(r) ? NULL : c;
}

static Expr *rewrite_expr(Rewriter *r, Expr *e);

/* The items of e rewritten: *out stays NULL when none changed. */
static bool rewrite_items(Rewriter *r, Expr *e, Expr ***out)
{
    for (int i = 0; i < e->n_items; i++) {
        Expr *x = rewrite_expr(r, e->items[i]);
        if (!x)
            return false;
        if (x != e->items[i] && !*out) {
            *out = arena_alloc(r->arena, sizeof **out * (size_t)e->n_items);
            if (!*out)
                return false;
            memcpy(*out, e->items, sizeof **out * (size_t)e->n_items);
        }
        if (*out)
            (*out)[i] = x;
    }
    return true;
}

/* The keyword arguments of e rewritten: *out stays NULL when none changed. */
static bool rewrite_kwargs(Rewriter *r, Expr *e, Kwarg **out)
{
    for (int i = 0; i < e->n_kwargs; i++) {
        Expr *x = e->kwargs[i].value ? rewrite_expr(r, e->kwargs[i].value) : NULL;
        if (e->kwargs[i].value && !x)
            return false;
        if (x != e->kwargs[i].value && !*out) {
            *out = arena_alloc(r->arena, sizeof **out * (size_t)e->n_kwargs);
            if (!*out)
                return false;
            memcpy(*out, e->kwargs, sizeof **out * (size_t)e->n_kwargs);
        }
        if (*out)
            (*out)[i].value = x;
    }
    return true;
}

/* e with every streaming reference rewritten; e itself when nothing changed;
 * NULL on error. */
static Expr *rewrite_expr(Rewriter *r, Expr *e)
{
    if (failed(r))
        return NULL;
    if (e->kind == EX_TENSOR)
        return rewrite_ref(r, e);
    Expr **items = NULL;
    Kwarg *kwargs = NULL;
    if (!rewrite_items(r, e, &items) || !rewrite_kwargs(r, e, &kwargs))
        return NULL;
    if (!items && !kwargs)
        return e;
    Expr *c = arena_alloc(r->arena, sizeof *c);
    if (!c)
        return NULL;
    *c = *e;
    if (items)
        c->items = items;
    if (kwargs)
        c->kwargs = kwargs;
    return c;
}

/* The statement with its LHS time index dropped and its RHS rewritten. */
static Stmt *rewrite_stmt(Rewriter *r, Stmt *st)
{
    Stmt copy = *st;
    bool is_changed = false;
    if (st->kind == ST_EQUATION || st->kind == ST_SOURCE) {
        for (int s = 0; s < st->n_indices; s++)
            if (st->indices[s].kind == IX_STREAM) {
                copy.indices = drop_index(r, st->indices, st->n_indices, &st->indices[s]);
                copy.n_indices = st->n_indices - 1;
                is_changed = true;
                break;
            }
    }
    if ((st->kind == ST_EQUATION || st->kind == ST_SINK) && st->rhs) {
        copy.rhs = rewrite_expr(r, st->rhs);
        if (!copy.rhs)
            return NULL;
        is_changed |= copy.rhs != st->rhs;
    }
    if (!is_changed || failed(r))
        return failed(r) ? NULL : st;
    Stmt *c = arena_alloc(r->arena, sizeof *c);
    if (c)
        *c = copy;
    return c;
}

/* ---- the streams ---- */

/* One IrStream per streaming name: window and slots still to create. */
static bool make_streams(Rewriter *r)
{
    IrProgram *p = r->b->p;
    for (int i = 0; i < r->n_names; i++) {
        const StreamName *sn = &r->names[i];
        if (!sn->time)
            continue;
        int64_t depth = 0;
        for (int d = 1; d <= IR_STREAM_MAX_WINDOW; d++)
            if (sn->read[d])
                depth = d;
        IrStream *s = arena_alloc(r->arena, sizeof *s);
        int *slots = s ? arena_alloc(r->arena, sizeof *slots * (size_t)(depth + 1)) : NULL;
        if (!slots)
            return false;
        s->name = sn->name;
        s->axis = sn->time->name;
        s->tensor = -1;
        s->offset = sn->time->offset;
        s->lo = s->offset - depth;
        s->span = sn->first->span;
        s->slots = slots;
        for (int64_t d = 0; d <= depth; d++)
            slots[depth - d] = d > 0 && sn->read[d] ? SLOT_PENDING : -1;
        if (!arena_push_ptr(r->arena, (void ***)&p->streams, &p->n_streams, &p->cap_streams, s))
            return false;
    }
    return true;
}

fuse_status ir_stream_rewrite(Builder *b)
{
    const Ast *ast = b->p->ast;
    Rewriter r = {.b = b, .arena = b->p->arena};
    r.names = arena_alloc(r.arena, sizeof *r.names * ((size_t)ast->n_stmts + 1));
    Stmt **stmts = arena_alloc(r.arena, sizeof *stmts * ((size_t)ast->n_stmts + 1));
    Ast *out = arena_alloc(r.arena, sizeof *out);
    r.index = ir_name_map_new(r.arena);
    if (!r.names || !stmts || !out || !r.index)
        return FUSE_E_NOMEM;
    for (int i = 0; i < ast->n_stmts && !failed(&r); i++) {
        const Stmt *st = ast->stmts[i];
        if (st->kind == ST_EQUATION || st->kind == ST_SOURCE)
            scan_lhs(&r, st);
    }
    bool is_changed = false;
    for (int i = 0; i < ast->n_stmts && !failed(&r); i++) {
        stmts[i] = rewrite_stmt(&r, ast->stmts[i]);
        is_changed |= stmts[i] != ast->stmts[i];
    }
    if (failed(&r))
        return r.arena->is_oom ? FUSE_E_NOMEM : b->status;
    if (!is_changed)
        return FUSE_OK;
    out->stmts = stmts;
    out->n_stmts = out->cap_stmts = ast->n_stmts;
    out->axis_decls = ast->axis_decls; /* v2 `axis n = 8` */
    out->n_axis_decls = ast->n_axis_decls;
    b->p->ast = out;
    return make_streams(&r) ? FUSE_OK : FUSE_E_NOMEM;
}

/* ---- slots ---- */

/* The slot of the earlier offset o of stream s, whose written slot is base. */
static IrTensor *state_slot(Builder *b, const IrStream *s, const IrTensor *base, int64_t o)
{
    Arena *a = b->p->arena;
    const char *name = slot_name(a, s->name, s->axis, o);
    IrTensor *t = name ? ir_tensor_new(b, name, TEN_SOURCE, base->rank, base->span) : NULL;
    if (!t)
        return NULL;
    t->path = arena_printf(a, "(earlier step of %s)", s->name);
    for (int k = 0; k < base->rank; k++) {
        t->axis_names[k] = base->axis_names[k];
        t->var[k] = base->var[k]; /* same sizes as the written slot */
    }
    t->dotted = base->dotted;
    t->is_bool = base->is_bool;
    t->stream = base->stream;
    t->stream_offset = o;
    t->is_stream_state = true;
    return t;
}

void ir_stream_declare(Builder *b)
{
    IrProgram *p = b->p;
    for (int k = 0; k < p->n_streams && b->status == FUSE_OK; k++) {
        IrStream *s = p->streams[k];
        IrTensor *base = ir_tensor_find(p, s->name);
        if (!base)
            continue; /* its declaration failed and was reported */
        s->tensor = base->id;
        base->stream = k + 1;
        base->stream_offset = s->offset;
        for (int64_t o = s->lo; o < s->offset; o++) {
            if (s->slots[o - s->lo] != SLOT_PENDING)
                continue;
            IrTensor *t = state_slot(b, s, base, o);
            if (!t)
                return;
            s->slots[o - s->lo] = t->id;
        }
        s->slots[s->offset - s->lo] = base->id;
    }
}
