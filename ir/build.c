/*
 * build.c: turns the AST into IR tensors, groups and ops.
 *
 * Approach. Pass 1 declares every tensor named on a left-hand side (sources and
 * equations) so that equations may use tensors defined later in the file. Pass 2
 * builds one group per defined tensor, in the order of its first equation, and one
 * group per sink. An equation's right-hand side is expanded into a sum of terms
 * (coef x factors), distributing parenthesised sums; each term becomes one JOIN
 * contribution into the LHS. Calls are materialised into temporaries by calls.c
 * before the JOIN that reads them.
 *
 * Invariants: ops of a group are in execution order; the first contribution of a
 * group has is_init; every operand's slot count equals its tensor's rank.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "window.h"

#define MAX_TERMS FE_MAX_TERMS
/* the parser counts against the same limits (frontend.h) */
_Static_assert(FE_MAX_FACTORS == IR_MAX_OP_OPERANDS, "one factor limit");

/* ---- small helpers ---- */

static bool failed(Builder *b) { return b->status != FUSE_OK || b->p->arena->is_oom; }

fuse_status ir_fail(Builder *b, fuse_status code, Span span, const char *fmt, const char *arg)
{
    if (b->status == FUSE_OK)
        fe_error(b->dl, code, span, fmt, arg);
    if (b->status == FUSE_OK)
        b->status = code;
    if (b->result == FUSE_OK)
        b->result = code;
    return b->status;
}

/* Fails the statement without a message: its error was reported already. */
static void fail_quietly(Builder *b, fuse_status code)
{
    if (b->status == FUSE_OK)
        b->status = code;
    if (b->result == FUSE_OK)
        b->result = code;
}

bool ir_stmt_begin(Builder *b, const Stmt *st)
{
    if (b->p->arena->is_oom || b->status == FUSE_E_NOMEM || fe_diags_stopped(b->dl))
        return false;
    b->status = FUSE_OK;
    b->stmt = st;
    return true;
}

int ir_new_var(Builder *b) { return b->p->n_vars++; }

IrTensor *ir_tensor_new(Builder *b, const char *name, TensorKind kind, int rank, Span span)
{
    IrProgram *p = b->p;
    IrTensor *t = arena_alloc(p->arena, sizeof *t);
    if (!t)
        return NULL;
    t->id = p->n_tensors;
    t->name = name;
    t->kind = kind;
    t->rank = rank;
    t->dotted = -1;
    t->group = -1;
    t->span = span;
    for (int s = 0; s < rank; s++)
        t->var[s] = ir_new_var(b);
    if (!arena_push_ptr(p->arena, (void ***)&p->tensors, &p->n_tensors, &p->cap_tensors, t))
        return NULL;
    /* ir_tensor_find (names.c) looks names up here */
    if (p->tensor_names && !ir_name_map_put(p->tensor_names, name, t->id))
        return NULL;
    return t;
}

IrTensor *ir_temp_new(Builder *b, const char *what, int rank, const char **names, Span span)
{
    char *name = arena_printf(b->p->arena, "%%%d.%s", b->n_temps++, what);
    IrTensor *t = name ? ir_tensor_new(b, name, TEN_TEMP, rank, span) : NULL;
    if (!t)
        return NULL;
    for (int s = 0; s < rank; s++)
        t->axis_names[s] = names[s];
    t->group = b->group_index;
    return t;
}

Op *ir_op_new(Builder *b, OpKind kind, int out)
{
    Op *op = arena_alloc(b->p->arena, sizeof *op);
    if (!op)
        return NULL;
    op->kind = kind;
    op->out = out;
    op->coef = 1.0;
    op->stmt = b->stmt;
    op->concat_slot = -1;
    return op;
}

/* Index of the loop axis called `name`, adding it when new. -1 on OOM or overflow. */
int ir_op_axis(Builder *b, Op *op, const char *name)
{
    for (int i = 0; i < op->n_axes; i++)
        if (strcmp(op->axes[i].name, name) == 0)
            return i;
    if (op->n_axes >= IR_MAX_OP_AXES) {
        ir_fail(b, FUSE_E_SHAPE, b->stmt->span, "an equation term uses more than %s distinct "
                "axes (the limit)", IR_STR(IR_MAX_OP_AXES));
        return -1;
    }
    LoopAxis *axes = arena_grow(b->p->arena, op->axes, sizeof *axes * (size_t)op->n_axes,
                                sizeof *axes * (size_t)(op->n_axes + 1));
    if (!axes)
        return -1;
    op->axes = axes;
    op->axes[op->n_axes].name = name;
    op->axes[op->n_axes].var = ir_new_var(b);
    return op->n_axes++;
}

Operand *ir_op_operand(Builder *b, Op *op, int tensor, Span span)
{
    if (op->n_in >= IR_MAX_OP_OPERANDS) {
        ir_fail(b, FUSE_E_SHAPE, span, "an equation term has more than %s factors (the "
                "limit)", IR_STR(IR_MAX_OP_OPERANDS));
        return NULL;
    }
    Operand *in = arena_grow(b->p->arena, op->in, sizeof *in * (size_t)op->n_in,
                             sizeof *in * (size_t)(op->n_in + 1));
    if (!in)
        return NULL;
    op->in = in;
    Operand *o = &op->in[op->n_in++];
    memset(o, 0, sizeof *o);
    o->tensor = tensor;
    o->span = span;
    return o;
}

/* Binds every out slot of op to the loop axis named names[s]. */
bool ir_op_bind_out(Builder *b, Op *op, const char **names, int rank)
{
    for (int s = 0; s < rank; s++) {
        op->out_axis[s] = ir_op_axis(b, op, names[s]);
        if (op->out_axis[s] < 0)
            return false;
    }
    return true;
}

void ir_group_push(Builder *b, Op *op)
{
    Group *g = b->group;
    if (!arena_push_ptr(b->p->arena, (void ***)&g->ops, &g->n_ops, &g->cap_ops, op))
        b->status = FUSE_E_NOMEM;
}

/* ---- pass 1: declare tensors ---- */

static bool lhs_index_ok(Builder *b, const Index *ix)
{
    if (ix->kind == IX_AXIS && ix->offset != 0) {
        ir_fail(b, FUSE_E_SHAPE, ix->span,
                "offset '%s' not allowed on the left-hand side (only on streaming axes)",
                ix->name);
        return false;
    }
    if (ix->kind == IX_STREAM) { /* window.c rewrote every streaming LHS */
        ir_fail(b, FUSE_E_SHAPE, ix->span, "streaming axis '*%s' not allowed here",
                ix->name);
        return false;
    }
    if (ix->kind == IX_INT) {
        ir_fail(b, FUSE_E_SYNTAX, ix->span, "integer index not allowed on the left-hand side%s",
                "");
        return false;
    }
    return true;
}

static void set_lhs_axes(Builder *b, IrTensor *t, const Stmt *st)
{
    t->lhs_indices = st->indices;
    for (int s = 0; s < st->n_indices; s++) {
        if (!lhs_index_ok(b, &st->indices[s]))
            return;
        t->axis_names[s] = st->indices[s].name;
        if (st->indices[s].is_dotted && t->dotted < 0)
            t->dotted = s;
    }
}

static void declare_source(Builder *b, const Stmt *st)
{
    if (ir_tensor_find(b->p, st->name)) {
        ir_fail(b, FUSE_E_SHAPE, st->span, "tensor '%s' is defined more than once", st->name);
        return;
    }
    IrTensor *t = ir_tensor_new(b, st->name, TEN_SOURCE, st->n_indices, st->span);
    if (!t)
        return;
    t->path = st->path;
    t->is_bool = st->is_paren;
    set_lhs_axes(b, t, st);
}

static void declare_equation(Builder *b, const Stmt *st)
{
    IrTensor *t = ir_tensor_find(b->p, st->name);
    if (t && t->kind == TEN_SOURCE) {
        ir_fail(b, FUSE_E_SHAPE, st->span,
                "tensor '%s' is read from a file and cannot also be defined by an equation",
                st->name);
        return;
    }
    if (t && t->rank != st->n_indices) {
        char *msg = arena_printf(b->p->arena, "'%s' has %d axes here but %d at line %d",
                                 st->name, st->n_indices, t->rank, t->span.line);
        ir_fail(b, FUSE_E_SHAPE, st->span, "%s", msg ? msg : st->name);
        return;
    }
    if (!t) {
        t = ir_tensor_new(b, st->name, TEN_DEFINED, st->n_indices, st->span);
        if (!t)
            return;
        set_lhs_axes(b, t, st);
    }
    t->is_bool |= st->is_paren;
}

static void declare_all(Builder *b)
{
    const Ast *ast = b->p->ast;
    for (int i = 0; i < ast->n_stmts && ir_stmt_begin(b, ast->stmts[i]); i++) {
        const Stmt *st = ast->stmts[i];
        if (st->kind == ST_SOURCE)
            declare_source(b, st);
        else if (st->kind == ST_EQUATION)
            declare_equation(b, st);
    }
}

/* ---- expansion of a right-hand side into terms ---- */

static Term *term_new(Builder *b, double coef, int n)
{
    if (n > IR_MAX_OP_OPERANDS) { /* each factor is an operand: fail before the copies */
        ir_fail(b, FUSE_E_SHAPE, b->stmt->span, "an equation term has more than %s factors "
                "(the limit)", IR_STR(IR_MAX_OP_OPERANDS));
        return NULL;
    }
    Term *t = arena_alloc(b->p->arena, sizeof *t);
    if (!t)
        return NULL;
    t->coef = coef;
    t->n = n;
    t->factors = n ? arena_alloc(b->p->arena, sizeof *t->factors * (size_t)n) : NULL;
    if (n && !t->factors)
        return NULL;
    return t;
}

static bool terms_push(Builder *b, TermList *tl, Term *t)
{
    if (!t)
        return false;
    if (tl->n >= MAX_TERMS) {
        ir_fail(b, FUSE_E_SHAPE, b->stmt->span,
                "expression expands to more than %s terms", "4096");
        return false;
    }
    return arena_push_ptr(b->p->arena, (void ***)&tl->items, &tl->n, &tl->cap, t);
}

/* The product of two term lists: every pair, coefficients multiplied. */
static bool terms_multiply(Builder *b, TermList *acc, const TermList *rhs)
{
    TermList out = {0};
    for (int i = 0; i < acc->n; i++)
        for (int j = 0; j < rhs->n; j++) {
            const Term *x = acc->items[i], *y = rhs->items[j];
            Term *t = term_new(b, x->coef * y->coef, x->n + y->n);
            if (!t)
                return false;
            if (x->n)
                memcpy(t->factors, x->factors, sizeof *t->factors * (size_t)x->n);
            if (y->n)
                memcpy(t->factors + x->n, y->factors, sizeof *t->factors * (size_t)y->n);
            if (!terms_push(b, &out, t))
                return false;
        }
    *acc = out;
    return true;
}

static bool expand_literal_error(Builder *b, const Expr *e)
{
    if (e->kind == EX_STRING)
        ir_fail(b, FUSE_E_SHAPE, e->span, "a string%s can only be a whole source path "
                "(X[i] = \"file\") or a sink path", "");
    else
        ir_fail(b, FUSE_E_SHAPE, e->span, "a literal %s is only allowed inside const(...)",
                e->kind == EX_NONE ? "none" : e->kind == EX_DICT ? "dict" : "list");
    return false;
}

bool ir_expand(Builder *b, const Expr *e, TermList *out)
{
    out->n = 0;
    switch (e->kind) {
    case EX_NUMBER:
    case EX_BOOL:
        return terms_push(b, out, term_new(b, e->num, 0));
    case EX_TENSOR:
    case EX_CALL:
    case EX_INDEXFN: {
        Term *t = term_new(b, 1.0, 1);
        if (t)
            t->factors[0] = e;
        return terms_push(b, out, t);
    }
    case EX_GROUP:
        return ir_expand(b, e->items[0], out);
    case EX_NEG:
        if (!ir_expand(b, e->items[0], out))
            return false;
        for (int i = 0; i < out->n; i++)
            out->items[i]->coef = -out->items[i]->coef;
        return true;
    case EX_SUM:
        for (int i = 0; i < e->n_items; i++) {
            TermList part = {0};
            if (!ir_expand(b, e->items[i], &part))
                return false;
            for (int j = 0; j < part.n; j++) {
                part.items[j]->coef *= e->signs[i];
                if (!terms_push(b, out, part.items[j]))
                    return false;
            }
        }
        return true;
    case EX_PRODUCT:
        if (!ir_expand(b, e->items[0], out))
            return false;
        for (int i = 1; i < e->n_items; i++) {
            TermList part = {0};
            if (!ir_expand(b, e->items[i], &part) || !terms_multiply(b, out, &part))
                return false;
        }
        return true;
    default:
        return expand_literal_error(b, e);
    }
}

/* ---- operands ---- */

/* Adds an operand reading tensor ref `e` (EX_TENSOR) inside op. */
bool ir_tensor_operand(Builder *b, Op *op, const Expr *e)
{
    IrTensor *t = ir_tensor_find(b->p, e->name);
    if (!t && ir_name_map_get(b->unknown, e->name) >= 0) {
        fail_quietly(b, FUSE_E_SHAPE); /* reported where first used */
        return false;
    }
    if (!t) {
        if (!ir_name_map_put(b->unknown, e->name, 1))
            return false;
        const char *near = ir_tensor_nearest(b->p, e->name);
        char *msg = near ? arena_printf(b->p->arena, "unknown tensor '%s'; did you mean '%s'?",
                                        e->name, near)
                    : fe_is_builtin(e->name)
                        ? arena_printf(b->p->arena, "unknown tensor '%s'; %s is a builtin: "
                                       "call it as %s(...), with no blank before '('",
                                       e->name, e->name, e->name)
                        : NULL;
        if (msg)
            ir_fail(b, FUSE_E_SHAPE, e->span, "%s", msg);
        else
            ir_fail(b, FUSE_E_SHAPE, e->span, "unknown tensor '%s'", e->name);
        return false;
    }
    if (e->n_indices != t->rank) {
        char *msg = e->n_indices == 0
            ? arena_printf(b->p->arena, "'%s' has rank %d; index it with %d axes", t->name,
                           t->rank, t->rank)
            : arena_printf(b->p->arena, "'%s' has rank %d but is indexed with %d axes",
                           t->name, t->rank, e->n_indices);
        ir_fail(b, FUSE_E_SHAPE, e->span, "%s", msg ? msg : t->name);
        return false;
    }
    Operand *o = ir_op_operand(b, op, t->id, e->span);
    if (!o)
        return false;
    o->indices = e->indices;
    for (int s = 0; s < t->rank; s++) {
        const Index *ix = &e->indices[s];
        if (ix->kind == IX_INT) {
            o->kind[s] = SL_FIXED;
            o->offset[s] = ix->offset;
            continue;
        }
        if (ix->kind != IX_AXIS && ix->kind != IX_SLICE) {
            ir_fail(b, FUSE_E_UNSUPPORTED, ix->span, "index form '%s' is not supported yet",
                    ix->name);
            return false;
        }
        o->kind[s] = SL_AXIS;
        o->offset[s] = ix->kind == IX_SLICE ? 0 : ix->offset;
        o->slice[s] = ix->kind == IX_SLICE ? ix : NULL;
        o->axis[s] = ir_op_axis(b, op, ix->name);
        if (o->axis[s] < 0)
            return false;
    }
    return true;
}

/* Adds an operand for one factor of a term: a tensor reference, or a call
 * materialised first into a temporary. */
bool ir_factor_operand(Builder *b, Op *op, const Expr *e, const NameList *ref)
{
    if (e->kind == EX_TENSOR)
        return ir_tensor_operand(b, op, e);
    IrTensor *t = ir_build_call(b, e, ref);
    if (!t)
        return false;
    return ir_value_operand(b, op, t, t->axis_names, e->span);
}

/* An operand reading tensor t with slot s named names[s]. */
bool ir_value_operand(Builder *b, Op *op, IrTensor *t, const char *const *names, Span span)
{
    Operand *o = ir_op_operand(b, op, t->id, span);
    if (!o)
        return false;
    for (int s = 0; s < t->rank; s++) {
        o->kind[s] = SL_AXIS;
        o->axis[s] = ir_op_axis(b, op, names[s]);
        if (o->axis[s] < 0)
            return false;
    }
    return true;
}

/* ---- equations ---- */

/* One term as a JOIN contribution into tensor `out` named by `names`. */
bool ir_join_term(Builder *b, IrTensor *out, const char **names, const Term *term,
                  ReduceOp red, bool is_init, const NameList *ref)
{
    Op *op = ir_op_new(b, OP_JOIN, out->id);
    if (!op || !ir_op_bind_out(b, op, names, out->rank))
        return false;
    op->red = red;
    op->coef = term->coef;
    op->is_init = is_init;
    for (int f = 0; f < term->n; f++) {
        IrTensor *temp = term->temps ? term->temps[f] : NULL;
        bool ok = temp ? ir_value_operand(b, op, temp, temp->axis_names, term->factors[f]->span)
                       : ir_factor_operand(b, op, term->factors[f], ref);
        if (!ok)
            return false;
    }
    if (!ir_chain_split(b, op, names, out->rank)) /* perf: 3+ factors pairwise */
        return false;
    ir_group_push(b, op);
    return !failed(b);
}

static ReduceOp reduce_of(AssignOp op)
{
    return op == AOP_MAX ? RED_MAX : op == AOP_AVG ? RED_AVG : op == AOP_PROD ? RED_PROD
         : op == AOP_MIN ? RED_MIN : RED_SUM;
}

static void build_equation(Builder *b, const Stmt *st)
{
    IrTensor *t = ir_tensor_find(b->p, st->name);
    const char *names[FUSE_MAX_RANK];
    NameList ref = {names, st->n_indices};
    for (int s = 0; s < st->n_indices; s++)
        names[s] = st->indices[s].name;
    TermList terms = {0};
    if (!ir_expand(b, st->rhs, &terms))
        return;
    for (int i = 0; i < terms.n && !failed(b); i++) {
        if (!ir_join_term(b, t, names, terms.items[i], reduce_of(st->op), !b->group_has_init,
                          &ref))
            return;
        Op *op = b->group->ops[b->group->n_ops - 1];
        op->is_contribution = true;
        op->is_bool_out = t->is_bool;
        b->group_has_init = true;
    }
}

Group *ir_group_new(Builder *b, int tensor, bool is_sink)
{
    IrProgram *p = b->p;
    Group *g = arena_alloc(p->arena, sizeof *g);
    if (!g)
        return NULL;
    g->tensor = tensor;
    g->is_sink = is_sink;
    Group ***list = is_sink ? &p->sink_groups : &p->groups;
    int *n = is_sink ? &p->n_sink_groups : &p->n_groups;
    int *cap = is_sink ? &p->cap_sink_groups : &p->cap_groups;
    b->group_index = *n;
    if (!arena_push_ptr(p->arena, (void ***)list, n, cap, g))
        return NULL;
    return g;
}

/* Builds the group of tensor t from its equations: statement `first` and those
 * linked after it in next[] (source order). */
static void build_group(Builder *b, IrTensor *t, int first, const int *next)
{
    const Ast *ast = b->p->ast;
    b->group = ir_group_new(b, t->id, false);
    if (!b->group)
        return;
    t->group = b->group_index;
    b->group_has_init = false;
    for (int i = first; i >= 0 && ir_stmt_begin(b, ast->stmts[i]); i = next[i])
        build_equation(b, ast->stmts[i]);
}

/* One group per defined tensor, in the order of its first equation. Each
 * tensor's equations are linked first (next[]), so the whole pass is linear in
 * the program's size, not a scan of every statement per tensor. */
static void build_groups(Builder *b)
{
    const Ast *ast = b->p->ast;
    int n = ast->n_stmts, n_t = b->p->n_tensors;
    int *next = arena_alloc(b->p->arena, sizeof *next * ((size_t)n + 1));
    int *last = arena_alloc(b->p->arena, sizeof *last * ((size_t)n_t + 1));
    if (!next || !last)
        return;
    for (int t = 0; t < n_t; t++)
        last[t] = -1;
    for (int i = 0; i < n; i++) {
        const Stmt *st = ast->stmts[i];
        IrTensor *t = st->kind == ST_EQUATION ? ir_tensor_find(b->p, st->name) : NULL;
        next[i] = -1;
        if (!t || t->id >= n_t)
            continue;
        if (last[t->id] >= 0)
            next[last[t->id]] = i;
        last[t->id] = i;
    }
    for (int i = 0; i < n && ir_stmt_begin(b, ast->stmts[i]); i++) {
        const Stmt *st = ast->stmts[i];
        if (st->kind != ST_EQUATION)
            continue;
        IrTensor *t = ir_tensor_find(b->p, st->name);
        if (t && t->group < 0)
            build_group(b, t, i, next);
    }
}

static void build_exports(Builder *b)
{
    IrProgram *p = b->p;
    for (int i = 0; i < p->ast->n_stmts && ir_stmt_begin(b, p->ast->stmts[i]); i++) {
        const Stmt *st = p->ast->stmts[i];
        if (st->kind != ST_EXPORT)
            continue;
        IrTensor *t = ir_tensor_find(p, st->name);
        if (!t) {
            const char *near = ir_tensor_nearest(p, st->name);
            char *msg = near ? arena_printf(p->arena, "export of unknown tensor '%s'; did you "
                                            "mean '%s'?", st->name, near)
                             : NULL;
            if (msg)
                ir_fail(b, FUSE_E_SHAPE, st->span, "%s", msg);
            else
                ir_fail(b, FUSE_E_SHAPE, st->span, "export of unknown tensor '%s'", st->name);
            continue;
        }
        t->is_export = true;
        if (p->n_exports == p->cap_exports) { /* doubling: linear in the exports */
            int cap = p->cap_exports ? 2 * p->cap_exports : 8;
            int *ids = arena_grow(p->arena, p->exports, sizeof *ids * (size_t)p->n_exports,
                                  sizeof *ids * (size_t)cap);
            if (!ids)
                return;
            p->exports = ids;
            p->cap_exports = cap;
        }
        p->exports[p->n_exports++] = t->id;
    }
}

fuse_status ir_build(Arena *arena, const Ast *ast, DiagList *dl, IrProgram **out)
{
    IrProgram *p = arena_alloc(arena, sizeof *p);
    if (!p)
        return FUSE_E_NOMEM;
    p->arena = arena;
    p->ast = ast;
    if (!(p->tensor_names = ir_name_map_new(arena)))
        return FUSE_E_NOMEM;
    Builder b = {.p = p, .dl = dl, .status = FUSE_OK};
    if (!(b.unknown = ir_name_map_new(arena)))
        return FUSE_E_NOMEM;
    if (ir_stream_rewrite(&b) != FUSE_OK && b.status == FUSE_OK)
        b.status = FUSE_E_NOMEM; /* *t axes become window slots */
    if (b.status != FUSE_OK && b.result == FUSE_OK)
        b.result = b.status;
    /* Declarations first: every bad one is reported, but building from them
     * would only repeat their errors. The groups, sinks and exports are then
     * built statement by statement, each failed one reported once. */
    if (b.result == FUSE_OK)
        declare_all(&b);
    if (b.result == FUSE_OK)
        ir_stream_declare(&b);
    if (b.result == FUSE_OK && b.status == FUSE_OK) {
        build_groups(&b);
        ir_build_sinks(&b);
        build_exports(&b);
    }
    *out = p;
    if (arena->is_oom || b.status == FUSE_E_NOMEM)
        return FUSE_E_NOMEM;
    return b.result != FUSE_OK ? b.result : b.status;
}
