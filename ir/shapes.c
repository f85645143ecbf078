/*
 * shapes.c: whole-program size inference by unification (SPEC §2.2).
 *
 * Every tensor slot and loop axis has a size variable. Facts give classes an exact
 * size (dense sources, inputs, const literals, causal_mask) or a lower bound (facts
 * files, bags of words). Ops unify their out slots and operand slots with their
 * loop axes, in program order, so a conflict is reported at the index where it
 * is found, naming where each size came from, with a note at each origin. A class
 * with only lower bounds takes the largest; a class with no size at all is an
 * error naming a tensor axis. Every conflict is reported, once per class (a
 * class that conflicted is not reported again: its later conflicts follow from
 * the first); sizes are resolved only when no conflict was found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Bound {
    int64_t size;        /* -1: none */
    const char *origin;  /* e.g. "\"ckpt/emb.npy\"" */
    Span span;           /* where the origin is in the program */
    const char *axis;    /* the axis's name there, or NULL */
    Span at;             /* the index that gives the size (span when unknown) */
} Bound;

typedef struct VarClass {
    int parent;
    Bound exact, lower;
    bool is_reported;    /* an error about this class was reported */
} VarClass;

typedef struct Solver {
    IrProgram *p;
    DiagList *dl;
    VarClass *v;
    fuse_status status;
} Solver;

static int find(Solver *s, int x)
{
    while (s->v[x].parent != x) {
        s->v[x].parent = s->v[s->v[x].parent].parent;
        x = s->v[x].parent;
    }
    return x;
}

static char *describe(Solver *s, const Bound *b)
{
    if (b->span.src)
        return arena_printf(s->p->arena, "%lld (from %s at %s:%d:%d)", (long long)b->size,
                            b->origin, b->span.src->name, b->span.line, b->span.col);
    return arena_printf(s->p->arena, "%lld (from %s)", (long long)b->size, b->origin);
}

/* "note: i has size 3 here" at the index that gave a conflicting size. */
static void origin_note(Solver *s, const Bound *b, const char *axis, bool is_lower)
{
    const char *name = b->axis ? b->axis : axis;
    const char *has = is_lower ? "needs a size of at least" : "has size";
    Span at = b->at.src ? b->at : b->span;
    if (at.src)
        fe_note(s->dl, at, "%s %s %lld here", name, has, (long long)b->size);
    else
        fe_note(s->dl, at, "%s %s %lld in %s", name, has, (long long)b->size, b->origin);
}

/* Reports a conflict of class r at `at` (the index where it was found), once. */
static void conflict(Solver *s, int r, Span at, const char *axis, const Bound *a,
                     const Bound *b, bool is_lower)
{
    if (s->v[r].is_reported)
        return;
    s->v[r].is_reported = true;
    s->status = FUSE_E_SHAPE;
    char *da = describe(s, a), *db = describe(s, b);
    if (is_lower)
        fe_error(s->dl, FUSE_E_SHAPE, at,
                 "size conflict for axis %s: %s is smaller than the %s required by the data",
                 axis, da ? da : "?", db ? db : "?");
    else
        fe_error(s->dl, FUSE_E_SHAPE, at, "size conflict for axis %s: %s vs %s", axis,
                 da ? da : "?", db ? db : "?");
    origin_note(s, a, axis, false);
    origin_note(s, b, axis, is_lower);
}

/* Merges a bound into class r, reporting a conflict at `at`. */
static void add_bound(Solver *s, int r, const Bound *b, bool is_lower, Span at,
                      const char *axis)
{
    VarClass *c = &s->v[r];
    if (b->size < 0)
        return;
    if (!is_lower) {
        if (c->exact.size >= 0 && c->exact.size != b->size)
            conflict(s, r, at, axis, &c->exact, b, false);
        else if (c->lower.size > b->size)
            conflict(s, r, at, axis, b, &c->lower, true);
        else if (c->exact.size < 0)
            c->exact = *b;
        return;
    }
    if (c->exact.size >= 0 && c->exact.size < b->size)
        conflict(s, r, at, axis, &c->exact, b, true);
    else if (b->size > c->lower.size)
        c->lower = *b;
}

static void unify(Solver *s, int x, int y, Span at, const char *axis)
{
    int rx = find(s, x), ry = find(s, y);
    if (rx == ry)
        return;
    s->v[ry].parent = rx;
    s->v[rx].is_reported |= s->v[ry].is_reported;
    add_bound(s, rx, &s->v[ry].exact, false, at, axis);
    add_bound(s, rx, &s->v[ry].lower, true, at, axis);
}

/* Where slot k of tensor t is written on its defining LHS, else the statement. */
static Span slot_span(const IrTensor *t, int k)
{
    return t->lhs_indices && k < t->rank ? t->lhs_indices[k].span : t->span;
}

/* Where operand slot k is indexed, else the reference. */
static Span operand_span(const Operand *o, int k)
{
    return o->indices ? o->indices[k].span : o->span;
}

/* Where an op's out slot k is indexed: the LHS index of its equation. */
static Span out_span(const IrProgram *p, const Op *op, int k)
{
    const Stmt *st = op->stmt;
    if (!st)
        return (Span){0};
    const IrTensor *out = p->tensors[op->out];
    if (st->kind == ST_EQUATION && st->name && strcmp(st->name, out->name) == 0 &&
        k < st->n_indices)
        return st->indices[k].span;
    return st->span;
}

static void apply_fact(Solver *s, IrTensor *t, const ShapeFact *f)
{
    if (f->rank != t->rank) {
        fe_error(s->dl, FUSE_E_SHAPE, t->span, "'%s' is declared with %d axes but %s has %d",
                 t->name, t->rank, f->origin ? f->origin : "its data", f->rank);
        s->status = FUSE_E_SHAPE;
        return;
    }
    for (int k = 0; k < t->rank; k++) {
        Bound b = {f->dims[k], f->origin ? f->origin : t->name, t->span, t->axis_names[k],
                   slot_span(t, k)};
        add_bound(s, find(s, t->var[k]), &b, f->is_lower_bound, slot_span(t, k),
                  t->axis_names[k]);
    }
}

static void apply_fixed(Solver *s, IrTensor *t)
{
    for (int k = 0; k < t->rank; k++) {
        Bound b = {t->shape[k], t->origin, t->origin_span, t->axis_names[k], t->origin_span};
        add_bound(s, find(s, t->var[k]), &b, false, t->origin_span, t->axis_names[k]);
    }
}

static void unify_op(Solver *s, const Op *op)
{
    const IrTensor *out = s->p->tensors[op->out];
    for (int k = 0; k < out->rank; k++)
        if (k != op->concat_slot && !op->out_minor[k])
            unify(s, op->axes[op->out_axis[k]].var, out->var[k], out_span(s->p, op, k),
                  op->axes[op->out_axis[k]].name);
    for (int i = 0; i < op->n_in; i++) {
        const Operand *o = &op->in[i];
        const IrTensor *t = s->p->tensors[o->tensor];
        for (int k = 0; k < t->rank; k++)
            if (o->kind[k] == SL_AXIS && !o->slice[k])
                unify(s, op->axes[o->axis[k]].var, t->var[k], operand_span(o, k),
                      op->axes[o->axis[k]].name);
    }
}

/* `axis n = 8` (v2): the loop axes of op named n have that size; a conflict with
 * the data is reported at op's equation, naming the declaration. */
static void declared_sizes(Solver *s, const Op *op)
{
    const Ast *ast = s->p->ast;
    for (int d = 0; ast && d < ast->n_axis_decls; d++) {
        const AxisDecl *decl = &ast->axis_decls[d];
        if (decl->size < 0)
            continue;
        for (int a = 0; a < op->n_axes; a++)
            if (strcmp(op->axes[a].name, decl->name) == 0) {
                Bound b = {decl->size, "its axis declaration", decl->span, decl->name,
                           decl->span};
                add_bound(s, find(s, op->axes[a].var), &b, false, decl->span, decl->name);
            }
    }
}

/* Where loop axis a of op is first indexed: an operand's index, else the LHS's. */
static Span axis_span(const IrProgram *p, const Op *op, int a)
{
    for (int i = 0; i < op->n_in; i++) {
        const Operand *o = &op->in[i];
        for (int k = 0; o->indices && k < p->tensors[o->tensor]->rank; k++)
            if (o->kind[k] == SL_AXIS && o->axis[k] == a)
                return operand_span(o, k);
    }
    const IrTensor *out = p->tensors[op->out];
    for (int k = 0; k < out->rank; k++)
        if (op->out_axis[k] == a)
            return out_span(p, op, k);
    return op->stmt ? op->stmt->span : (Span){0};
}

/* Size of a variable's class after solving; -1 when unknown. */
static int64_t class_size(Solver *s, int var)
{
    VarClass *c = &s->v[find(s, var)];
    return c->exact.size >= 0 ? c->exact.size : c->lower.size;
}

/* The end of "cannot infer the size of axis n": how to give it one. */
static const char *declare_hint(Solver *s, const char *axis)
{
    const char *hint = arena_printf(s->p->arena, "; bind it on the right-hand side (index "
                                    "a tensor of known size with %s) or declare it with "
                                    "`axis %s = SIZE` (v2 syntax)", axis, axis);
    return hint ? hint : "";
}

/* True (and the class marked) the first time class x is found unsized. */
static bool first_unsized(Solver *s, int var)
{
    VarClass *c = &s->v[find(s, var)];
    if (c->is_reported)
        return false;
    c->is_reported = true;
    s->status = FUSE_E_SHAPE;
    return true;
}

static void resolve_tensor(Solver *s, IrTensor *t)
{
    for (int k = 0; k < t->rank; k++) {
        int64_t n = class_size(s, t->var[k]);
        const char *axis = t->axis_names[k] ? t->axis_names[k] : "?";
        if (n < 0 && first_unsized(s, t->var[k]))
            fe_error(s->dl, FUSE_E_SHAPE, slot_span(t, k),
                     "cannot infer the size of axis %s of %s%s", axis, t->name,
                     declare_hint(s, axis));
        t->shape[k] = n;
    }
}

/* Normalises integer indices (negative from the end) and checks their range. */
static void resolve_operand(Solver *s, Operand *o)
{
    const IrTensor *t = s->p->tensors[o->tensor];
    for (int k = 0; k < t->rank; k++) {
        if (o->kind[k] != SL_FIXED || t->shape[k] < 0)
            continue;
        int64_t pos = o->offset[k] < 0 ? o->offset[k] + t->shape[k] : o->offset[k];
        if (pos < 0 || pos >= t->shape[k]) {
            fe_error(s->dl, FUSE_E_SHAPE, operand_span(o, k),
                     "index %lld is out of range for axis %d of %s (size %lld)",
                     (long long)o->offset[k], k, t->name, (long long)t->shape[k]);
            s->status = FUSE_E_SHAPE;
            continue;
        }
        o->offset[k] = pos;
    }
}

static void resolve_group(Solver *s, Group *g)
{
    for (int i = 0; i < g->n_ops && !fe_diags_stopped(s->dl); i++) {
        Op *op = g->ops[i];
        for (int a = 0; a < op->n_axes; a++) {
            op->axes[a].size = class_size(s, op->axes[a].var);
            if (op->axes[a].size < 0 && first_unsized(s, op->axes[a].var))
                fe_error(s->dl, FUSE_E_SHAPE, axis_span(s->p, op, a),
                         "cannot infer the size of axis %s%s", op->axes[a].name,
                         declare_hint(s, op->axes[a].name));
        }
        for (int k = 0; k < op->n_in; k++)
            resolve_operand(s, &op->in[k]);
    }
}

/* Sizes a concatenation once its parts are sized; false while they are not. */
static bool resolve_concat(Solver *s, const Concat *c)
{
    int64_t total = 0, sizes[64];
    for (int i = 0; i < c->n_parts && i < 64; i++) {
        const Op *op = c->parts[i];
        sizes[i] = class_size(s, op->axes[op->out_axis[c->slot]].var);
        if (sizes[i] < 0)
            return false;
        total += sizes[i];
    }
    if (c->n_parts > 64)
        return false;
    const IrTensor *out = s->p->tensors[c->out];
    Bound b = {total, "concat(...)", c->span, NULL, c->span};
    add_bound(s, find(s, out->var[c->slot]), &b, false, c->span, out->axis_names[c->slot]);
    int64_t offset = 0;
    for (int i = 0; i < c->n_parts; i++) {
        c->parts[i]->out_offset[c->slot] = offset;
        offset += sizes[i];
    }
    return true;
}

/* Python slice semantics: the first position, the step and the length of
 * start:stop:step over an axis of size n. False for a zero step. */
static bool slice_range(const Index *ix, int64_t n, int64_t *first, int64_t *step,
                        int64_t *len)
{
    int64_t st = ix->has_step ? ix->step : 1;
    if (st == 0)
        return false;
    int64_t lo = st > 0 ? 0 : -1, hi = st > 0 ? n : n - 1;
    int64_t a = ix->has_start ? ix->start : (st > 0 ? 0 : n - 1);
    int64_t b = ix->has_stop ? ix->stop : (st > 0 ? n : -1);
    if (ix->has_start && a < 0)
        a += n;
    if (ix->has_stop && b < 0)
        b += n;
    a = a < lo ? lo : a > hi ? hi : a;
    b = b < lo ? lo : b > hi ? hi : b;
    int64_t span = st > 0 ? b - a : a - b, mag = st > 0 ? st : -st;
    *len = span > 0 ? (span + mag - 1) / mag : 0;
    *first = a;
    *step = st;
    return true;
}

/* Sizes the loop axis of one sliced operand slot once the sliced axis is sized;
 * false while it is not. */
static bool resolve_slice(Solver *s, Op *op, Operand *o, int k)
{
    const IrTensor *t = s->p->tensors[o->tensor];
    int64_t n = class_size(s, t->var[k]), first, step, len;
    if (n < 0)
        return false;
    if (!slice_range(o->slice[k], n, &first, &step, &len)) {
        if (s->status == FUSE_OK)
            fe_error(s->dl, FUSE_E_SHAPE, o->slice[k]->span, "slice step cannot be zero");
        s->status = FUSE_E_SHAPE;
        return true;
    }
    o->offset[k] = first;
    o->step[k] = step;
    const char *origin = arena_printf(s->p->arena, "slice %s of %s", o->slice[k]->name, t->name);
    Bound b = {len, origin ? origin : "a slice", o->slice[k]->span, NULL,
               o->slice[k]->span};
    add_bound(s, find(s, op->axes[o->axis[k]].var), &b, false,
              op->stmt ? op->stmt->span : o->span, op->axes[o->axis[k]].name);
    return true;
}

/* One pass over every sliced slot not yet sized; true when one was sized. */
static bool resolve_slices(Solver *s)
{
    bool progress = false;
    IrProgram *p = s->p;
    for (int pass = 0; pass < 2; pass++) {
        Group **gs = pass ? p->sink_groups : p->groups;
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++)
            for (int i = 0; i < gs[g]->n_ops; i++)
                for (int j = 0; j < gs[g]->ops[i]->n_in; j++) {
                    Op *op = gs[g]->ops[i];
                    Operand *o = &op->in[j];
                    for (int k = 0; k < FUSE_MAX_RANK && s->status == FUSE_OK; k++)
                        if (o->slice[k] && o->step[k] == 0 && resolve_slice(s, op, o, k))
                            progress = true;
                }
    }
    return progress;
}

/* One pass over merged out slots (one-argument concat): the size is the product of
 * the two merged axes. True when a slot got its first size. */
static bool resolve_merges(Solver *s)
{
    bool progress = false;
    IrProgram *p = s->p;
    for (int g = 0; g < p->n_groups + p->n_sink_groups; g++) {
        Group *grp = g < p->n_groups ? p->groups[g] : p->sink_groups[g - p->n_groups];
        for (int i = 0; i < grp->n_ops && s->status == FUSE_OK; i++) {
            const Op *op = grp->ops[i];
            const IrTensor *out = p->tensors[op->out];
            for (int k = 0; k < out->rank; k++) {
                if (!op->out_minor[k] || class_size(s, out->var[k]) >= 0)
                    continue;
                int64_t major = class_size(s, op->axes[op->out_axis[k]].var);
                int64_t minor = class_size(s, op->axes[op->out_minor[k] - 1].var);
                if (major < 0 || minor < 0)
                    continue;
                Bound b = {major * minor, "concat(...) merging two axes", out->span, NULL,
                           out->span};
                add_bound(s, find(s, out->var[k]), &b, false, out->span, out->axis_names[k]);
                progress = true;
            }
        }
    }
    return progress;
}

/* Concatenations and slices size axes from other axes, and may feed each other:
 * resolve until nothing changes. */
static void resolve_derived(Solver *s)
{
    IrProgram *p = s->p;
    bool *done = calloc((size_t)p->n_concats + 1, sizeof *done);
    if (!done) {
        s->status = FUSE_E_NOMEM;
        return;
    }
    for (bool progress = true; progress && s->status == FUSE_OK;) {
        progress = resolve_slices(s);
        progress |= resolve_merges(s);
        for (int i = 0; i < p->n_concats && s->status == FUSE_OK; i++)
            if (!done[i] && resolve_concat(s, p->concats[i]))
                done[i] = progress = true;
    }
    free(done);
}

static void solve(Solver *s, const ShapeFact *facts)
{
    IrProgram *p = s->p;
    for (int i = 0; i < p->n_tensors && !fe_diags_stopped(s->dl); i++) {
        IrTensor *t = p->tensors[i];
        if (facts && facts[i].is_known)
            apply_fact(s, t, &facts[i]);
        else if (t->is_fixed_shape)
            apply_fixed(s, t);
    }
    for (int pass = 0; pass < 2; pass++) {
        Group **gs = pass ? p->sink_groups : p->groups;
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++)
            for (int i = 0; i < gs[g]->n_ops && !fe_diags_stopped(s->dl); i++) {
                declared_sizes(s, gs[g]->ops[i]);
                unify_op(s, gs[g]->ops[i]);
            }
    }
    if (s->status != FUSE_OK) /* sizes resolved from conflicting classes mislead */
        return;
    resolve_derived(s);
    if (s->status != FUSE_OK)
        return;
    for (int i = 0; i < p->n_tensors && !fe_diags_stopped(s->dl); i++)
        resolve_tensor(s, p->tensors[i]);
    for (int g = 0; g < p->n_groups && !fe_diags_stopped(s->dl); g++)
        resolve_group(s, p->groups[g]);
    for (int g = 0; g < p->n_sink_groups && !fe_diags_stopped(s->dl); g++)
        resolve_group(s, p->sink_groups[g]);
}

fuse_status ir_infer_shapes(IrProgram *p, const ShapeFact *facts, DiagList *dl)
{
    Solver s = {.p = p, .dl = dl, .status = FUSE_OK};
    s.v = malloc(sizeof *s.v * ((size_t)p->n_vars + 1));
    if (!s.v)
        return FUSE_E_NOMEM;
    for (int i = 0; i < p->n_vars; i++)
        s.v[i] = (VarClass){i, {-1, NULL, {0}, NULL, {0}}, {-1, NULL, {0}, NULL, {0}}, false};
    solve(&s, facts);
    free(s.v);
    p->is_shaped = s.status == FUSE_OK;
    return s.status;
}
