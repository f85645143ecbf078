/*
 * v2_lower.c: rewrites the structured ("v2") tree into the legacy Ast, so the IR
 * builder, shape inference and code generation serve both syntaxes (notes C §4,
 * REC column). Each construct maps onto what the legacy IR already has:
 *
 *   a + b, a - b, -a          EX_SUM / EX_NEG (the top-level split is the legacy one)
 *   a * b, juxtaposition      EX_PRODUCT
 *   a / b                     a * recip(b) (a number folds: a * 0.25)
 *   a ** b, a < b, ...        the elementwise builtins pow, less, ... (ir/builtins.c)
 *   !a, a && b, a || b        case(a, 0, 1), case(a, case(b, 1, 0), 0), ...
 *   c ? a : b, select, case{} nested three-argument case (the first true branch wins)
 *   reduce(op, A) body        a temporary __redN[free(body) - A] op= body (prod and
 *                             min: operators of their own that no legacy text spells)
 *   L when g = e              L = (e) * g, g made 0/1 with case(g, 1, 0) unless it
 *                             already is (a comparison, !)
 *   let L = e                 the equation L = e
 *   @softmax, @layer_norm     softmax / masked_softmax, layernorm
 *   const, param              folded into numbers where a bare name is used
 *   fn f(...) -> r { ... }    inlined at each call, hygienically renamed (below)
 *   import "m.fuse" as m      the module's fn and const as m::name
 *   axis n = 8                Ast.axis_decls, enforced by shape inference
 *
 * Semantics that differ from the legacy reading are kept apart by syntax: the
 * legacy juxtaposition keeps its contraction onto the left-hand side axes inside
 * call arguments, while an argument written with '*' or '/' whose axes are not
 * all on the left-hand side is computed elementwise into a temporary __argN over
 * its own free axes first (notes C §3.3). An axis that a v2 equation projects
 * implicitly must occur in a factor at the top level of its term; otherwise the
 * statement is refused with a hint to write reduce. Constant subexpressions fold.
 * Temporaries are equations on names starting with "__", which v2 reserves.
 */
#include "v2.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define MAX_SET 32 /* axes in one set; beyond that the set is "unknown" */
#define MAX_CONSTS 4096

typedef struct AxisSet {
    const char *names[MAX_SET];
    int n;
    bool unknown; /* a call whose result axes are not known here */
} AxisSet;

typedef struct Const {
    const char *name;
    double value;
    bool is_int;
} Const;

typedef struct Lower {
    Arena *arena;
    const Source *src;
    DiagList *dl;
    Ast *out;
    bool failed;
    int n_temps;
    Const *consts;
    int n_consts;
    const VStmt **fns;   /* fn definitions */
    int n_fns;
    const VStmt *stmt;   /* statement being lowered */
    int in_call;            /* > 0: free_axes is inside a builtin's argument */
    const VStmt *stack[16]; /* functions being inlined, outermost first */
    int n_stack;
    const char *ns;           /* namespace names are looked up in first (module fns) */
    const char *imports[16];  /* canonical paths of the program and the modules being
                                 loaded (import cycles) */
    int n_imports;
    const char **namespaces;  /* of every import, to refuse a second one */
    int n_namespaces;
    const fuse_param *params; /* host values of params */
    size_t n_params;
    bool *param_used;         /* per host value: a param declared it */
} Lower;

/* The left-hand side axes an expression is built against (legacy reference axes). */
typedef struct Ref {
    const char *const *names;
    int n;
} Ref;

static Expr *lower(Lower *L, const VNode *n, const Ref *ref);
/* How much of a node's source text a message quotes. */
static int clip(const VNode *n) { return n->text_len < 60 ? n->text_len : 60; }
static bool is_reserved(const Lower *L, const char *name);

/* ---- errors and memory ---- */

static void *fail(Lower *L, fuse_status code, Span span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void *fail(Lower *L, fuse_status code, Span span, const char *fmt, ...)
{
    if (L->failed)
        return NULL;
    L->failed = true;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fe_error(L->dl, code, span, "%s", buf);
    return NULL;
}

static void *alloc(Lower *L, size_t size)
{
    void *p = arena_alloc(L->arena, size);
    if (!p)
        L->failed = true;
    return p;
}

static Expr *expr_new(Lower *L, ExprKind kind, Span span)
{
    Expr *e = alloc(L, sizeof *e);
    if (e) {
        e->kind = kind;
        e->span = span;
    }
    return e;
}

static Expr *number(Lower *L, double v, bool is_int, Span span)
{
    Expr *e = expr_new(L, EX_NUMBER, span);
    if (e) {
        e->num = v;
        e->is_int = is_int && fabs(v) < 9e15 && v == (double)(int64_t)v;
        e->ival = e->is_int ? (int64_t)v : 0;
    }
    return e;
}

/* Appends item to e->items (exactly sized: items are few). */
static bool add_item(Lower *L, Expr *e, Expr *item)
{
    if (!item)
        return false;
    Expr **items = arena_grow(L->arena, e->items, sizeof *items * (size_t)e->n_items,
                              sizeof *items * (size_t)(e->n_items + 1));
    if (!items)
        return L->failed = true, false;
    items[e->n_items++] = item;
    e->items = items;
    return true;
}

static Expr *call2(Lower *L, const char *name, Span span, Expr *a, Expr *b, Expr *c)
{
    Expr *e = expr_new(L, EX_CALL, span);
    if (!e)
        return NULL;
    e->name = name;
    if (!add_item(L, e, a) || (b && !add_item(L, e, b)) || (c && !add_item(L, e, c)))
        return NULL;
    return e;
}

/* ---- axis sets ---- */

static bool set_has(const AxisSet *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return true;
    return false;
}

static void set_add(AxisSet *s, const char *name)
{
    if (set_has(s, name))
        return;
    if (s->n == MAX_SET)
        s->unknown = true;
    else
        s->names[s->n++] = name;
}

static void set_union(AxisSet *s, const AxisSet *t)
{
    s->unknown |= t->unknown;
    for (int i = 0; i < t->n; i++)
        set_add(s, t->names[i]);
}

static void set_remove(AxisSet *s, const char *name)
{
    int k = 0;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) != 0)
            s->names[k++] = s->names[i];
    s->n = k;
}

static bool set_within(const AxisSet *s, const Ref *ref)
{
    for (int i = 0; i < s->n; i++) {
        bool found = false;
        for (int j = 0; j < ref->n && !found; j++)
            found = strcmp(s->names[i], ref->names[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ---- constants ---- */

/* name, or "ns::name" written into buf when a namespace is current (try == 0). */
static const char *scoped(const Lower *L, const char *name, int try, char *buf, size_t size)
{
    if (try == 1 || !L->ns)
        return try == 1 || !L->ns ? name : NULL;
    snprintf(buf, size, "%s::%s", L->ns, name);
    return buf;
}

static const Const *const_find(const Lower *L, const char *name)
{
    char buf[256];
    for (int t = 0; t < 2; t++) {
        const char *full = scoped(L, name, t, buf, sizeof buf);
        for (int i = 0; full && i < L->n_consts; i++)
            if (strcmp(L->consts[i].name, full) == 0)
                return &L->consts[i];
    }
    return NULL;
}

static bool fold(Lower *L, const VNode *n, double *v, bool *is_int);

static bool fold_binary(Lower *L, const VNode *n, double *v, bool *is_int)
{
    double a, b;
    bool ia, ib;
    if (!fold(L, n->kids[0], &a, &ia) || !fold(L, n->kids[1], &b, &ib))
        return false;
    *is_int = ia && ib;
    switch (n->op) {
    case VO_ADD: *v = a + b; break;
    case VO_SUB: *v = a - b; break;
    case VO_MUL: *v = a * b; break;
    case VO_DIV: *v = a / b; *is_int = false; break;
    case VO_POW: *v = pow(a, b); *is_int = *is_int && b >= 0; break;
    case VO_LT: *v = a < b; break;
    case VO_LE: *v = a <= b; break;
    case VO_GT: *v = a > b; break;
    case VO_GE: *v = a >= b; break;
    case VO_EQ: *v = a == b; break;
    case VO_NE: *v = a != b; break;
    case VO_AND: *v = a != 0 && b != 0; break;
    case VO_OR: *v = a != 0 || b != 0; break;
    default: return false;
    }
    if (n->op >= VO_LT)
        *is_int = true;
    return true;
}

/* The value of a constant expression (numbers, consts, arithmetic, comparisons,
 * logic, conditionals); false (no error) when n is not constant. */
static bool fold(Lower *L, const VNode *n, double *v, bool *is_int)
{
    double c;
    bool ic;
    switch (n->kind) {
    case V_LEAF:
        if (n->leaf->kind != EX_NUMBER && n->leaf->kind != EX_BOOL)
            return false;
        *v = n->leaf->num;
        *is_int = n->leaf->kind == EX_BOOL || n->leaf->is_int;
        return true;
    case V_NAME: {
        const Const *k = const_find(L, n->name);
        if (!k)
            return false;
        *v = k->value;
        *is_int = k->is_int;
        return true;
    }
    case V_GROUP:
        return fold(L, n->kids[0], v, is_int);
    case V_UNARY:
        if (!fold(L, n->kids[0], &c, &ic))
            return false;
        *v = n->op == VO_NEG ? -c : c == 0;
        *is_int = n->op == VO_NEG ? ic : true;
        return true;
    case V_BINARY:
        return fold_binary(L, n, v, is_int);
    case V_TERNARY:
        if (!fold(L, n->kids[0], &c, &ic))
            return false;
        return fold(L, n->kids[c != 0 ? 1 : 2], v, is_int);
    default:
        return false;
    }
}

/* ---- free axes (notes C §3.3) ---- */

static bool is_fn(const Lower *L, const char *name);
static void free_axes(Lower *L, const VNode *n, AxisSet *out);
static void fn_call_axes(Lower *L, const VNode *call, AxisSet *out);

static void leaf_axes(const Expr *e, AxisSet *out)
{
    if (e->kind == EX_INDEXFN) {
        set_add(out, e->axis_name);
        return;
    }
    if (e->kind != EX_TENSOR)
        return;
    for (int i = 0; i < e->n_indices; i++)
        if (e->indices[i].kind != IX_INT)
            set_add(out, e->indices[i].name);
}

static bool name_is(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        if (x != *b)
            return false;
    }
    return *a == *b;
}

/* The axis a call's axis= keyword names (a bare non-constant name), or NULL. */
static const char *axis_kwarg(const Lower *L, const VNode *call)
{
    for (int i = 0; i < call->n_kwargs; i++)
        if (strcmp(call->kwargs[i].name, "axis") == 0) {
            const VNode *v = call->kwargs[i].value;
            return v->kind == V_NAME && !const_find(L, v->name) ? v->name : NULL;
        }
    return NULL;
}

/* Builtins whose result axes are those of their arguments (elementwise, case,
 * normalisations along an axis). */
static bool keeps_axes(const char *name)
{
    static const char *const names[] = {
        "step", "relu", "sig", "gelu", "exp", "log", "tanh", "sqrt", "abs", "sin", "cos",
        "softmax", "masked_softmax", "lnorm", "layernorm", "layer_norm", "case", "select",
        "pow", "rope", "tucker_dense"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name_is(name, names[i]))
            return true;
    return false;
}

static bool is_reduction(const char *name)
{
    return name_is(name, "max") || name_is(name, "mean") || name_is(name, "sum") ||
           name_is(name, "reduce_max") || name_is(name, "reduce_mean");
}

static void call_axes(Lower *L, const VNode *n, AxisSet *out)
{
    bool is_sig = name_is(n->name, "sig") || name_is(n->name, "masked_softmax");
    if (n->kind == V_CALL && !keeps_axes(n->name) && !is_reduction(n->name)) {
        out->unknown = true; /* attention, concat, const, causal_mask, topk, fn calls */
        return;
    }
    L->in_call++;
    for (int i = 0; i < n->n_kids && (!is_sig || i == 0); i++) {
        AxisSet a = {0};
        free_axes(L, n->kids[i], &a);
        set_union(out, &a);
    }
    L->in_call--;
    if (n->kind == V_CALL && is_reduction(n->name)) {
        const char *axis = axis_kwarg(L, n);
        if (axis)
            set_remove(out, axis);
        else
            out->unknown = true;
    }
}

static void free_axes(Lower *L, const VNode *n, AxisSet *out)
{
    switch (n->kind) {
    case V_LEAF:
        leaf_axes(n->leaf, out);
        return;
    case V_NAME:
        return;
    case V_JUXT: /* in an argument, legacy contracts it onto the left-hand side */
        out->unknown |= L->in_call > 0;
        for (int i = 0; i < n->n_kids; i++) {
            AxisSet a = {0};
            free_axes(L, n->kids[i], &a);
            set_union(out, &a);
        }
        return;
    case V_CALL:
    case V_MACRO:
        if (n->kind == V_CALL && is_fn(L, n->name)) {
            fn_call_axes(L, n, out);
            return;
        }
        call_axes(L, n, out);
        return;
    case V_REDUCE: {
        AxisSet body = {0};
        free_axes(L, n->kids[0], &body);
        for (int i = 0; i < n->n_axes; i++)
            set_remove(&body, n->axes[i]);
        set_union(out, &body);
        return;
    }
    default:
        for (int i = 0; i < n->n_kids; i++) {
            AxisSet a = {0};
            free_axes(L, n->kids[i], &a);
            set_union(out, &a);
        }
        return;
    }
}

/* Axes of the tensors multiplied at the top level of a term (through products,
 * negation, parentheses and the sums the legacy reading distributes); a
 * denominator, call, power, condition or reduce body does not count. */
static void linear_axes(const VNode *n, AxisSet *out)
{
    switch (n->kind) {
    case V_LEAF:
        leaf_axes(n->leaf, out);
        return;
    case V_JUXT:
    case V_GROUP:
        for (int i = 0; i < n->n_kids; i++)
            linear_axes(n->kids[i], out);
        return;
    case V_UNARY:
        if (n->op == VO_NEG)
            linear_axes(n->kids[0], out);
        return;
    case V_BINARY:
        if (n->op == VO_MUL || n->op == VO_ADD || n->op == VO_SUB)
            linear_axes(n->kids[1], out);
        if (n->op == VO_MUL || n->op == VO_DIV || n->op == VO_ADD || n->op == VO_SUB)
            linear_axes(n->kids[0], out);
        return;
    default:
        return;
    }
}

/* A construct the legacy syntax does not have (its presence makes a statement v2). */
static bool uses_v2(const VNode *n)
{
    if (n->kind == V_BINARY && n->op != VO_ADD && n->op != VO_SUB)
        return true;
    if ((n->kind == V_UNARY && n->op == VO_NOT) || n->kind == V_TERNARY ||
        n->kind == V_CASE || n->kind == V_REDUCE || n->kind == V_MACRO)
        return true;
    if (n->kind == V_CALL && (strcmp(n->name, "select") == 0 || strcmp(n->name, "pow") == 0))
        return true;
    for (int i = 0; i < n->n_kids; i++)
        if (uses_v2(n->kids[i]))
            return true;
    for (int i = 0; i < n->n_kwargs; i++)
        if (uses_v2(n->kwargs[i].value))
            return true;
    return false;
}

/* A '*' or '/' outside nested calls: the legacy reading would contract it. */
static bool has_v2_product(const VNode *n)
{
    if (n->kind == V_CALL || n->kind == V_MACRO || n->kind == V_REDUCE)
        return false;
    if (n->kind == V_BINARY && (n->op == VO_MUL || n->op == VO_DIV))
        return true;
    for (int i = 0; i < n->n_kids; i++)
        if (has_v2_product(n->kids[i]))
            return true;
    return false;
}

/* The innermost non-linear construct (call, power, denominator, condition...)
 * under which axis `name` occurs in n, for the message. */
static const VNode *where_axis(Lower *L, const VNode *n, const char *name)
{
    bool is_linear = n->kind == V_JUXT || n->kind == V_GROUP ||
                     (n->kind == V_UNARY && n->op == VO_NEG) ||
                     (n->kind == V_BINARY && (n->op == VO_MUL || n->op == VO_ADD ||
                                              n->op == VO_SUB || n->op == VO_DIV));
    if (!is_linear)
        return n;
    for (int i = 0; i < n->n_kids; i++) {
        AxisSet a = {0};
        free_axes(L, n->kids[i], &a);
        if (set_has(&a, name))
            return n->kind == V_BINARY && n->op == VO_DIV && i == 1
                       ? n->kids[1] /* the denominator */
                       : where_axis(L, n->kids[i], name);
    }
    return n;
}

/* Implicit projection only over top-level factors: every axis the term loses at
 * the equation must occur in a factor at its top level. */
static bool check_term(Lower *L, const VNode *term, const Ref *lhs)
{
    AxisSet all = {0}, lin = {0};
    free_axes(L, term, &all);
    if (all.unknown)
        return true;
    linear_axes(term, &lin);
    for (int i = 0; i < all.n; i++) {
        const char *a = all.names[i];
        AxisSet single = {.n = 1};
        single.names[0] = a;
        if (set_within(&single, lhs) || set_has(&lin, a))
            continue;
        const VNode *w = where_axis(L, term, a);
        fail(L, FUSE_E_SHAPE, w->span,
             "axis '%s' occurs only inside '%.*s', where it cannot be summed implicitly; "
             "use reduce(sum, %s) (or reduce(max, %s)) around the part to reduce",
             a, clip(w), w->text, a, a);
        return false;
    }
    return true;
}

static bool check_projection(Lower *L, const VNode *rhs, const Ref *lhs)
{
    while (rhs->kind == V_GROUP)
        rhs = rhs->kids[0];
    if (rhs->kind == V_BINARY && (rhs->op == VO_ADD || rhs->op == VO_SUB))
        return check_projection(L, rhs->kids[0], lhs) && check_projection(L, rhs->kids[1], lhs);
    if (rhs->kind == V_UNARY && rhs->op == VO_NEG)
        return check_projection(L, rhs->kids[0], lhs);
    return check_term(L, rhs, lhs);
}

/* ---- temporaries ---- */

/* Appends a statement to the output Ast. */
static Stmt *emit(Lower *L, StmtKind kind, Span span, const char *text)
{
    Stmt *s = alloc(L, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->span = span;
    s->text = text ? text : "";
    Ast *a = L->out;
    if (!arena_push_ptr(L->arena, (void ***)&a->stmts, &a->n_stmts, &a->cap_stmts, s))
        return L->failed = true, NULL;
    return s;
}

static Index *axis_indices(Lower *L, const AxisSet *axes, Span span)
{
    if (axes->n == 0)
        return NULL;
    Index *ix = alloc(L, sizeof *ix * (size_t)axes->n);
    for (int i = 0; ix && i < axes->n; i++) {
        ix[i].kind = IX_AXIS;
        ix[i].name = axes->names[i];
        ix[i].span = span;
    }
    return ix;
}

static Expr *tensor_ref(Lower *L, const char *name, const AxisSet *axes, Span span)
{
    Expr *e = expr_new(L, EX_TENSOR, span);
    if (!e)
        return NULL;
    e->name = name;
    e->n_indices = axes->n;
    e->indices = axis_indices(L, axes, span);
    return axes->n && !e->indices ? NULL : e;
}

/* Emits `name[axes] op rhs` (rhs already lowered, so its own temporaries come
 * first) and returns a reference to name[axes]. */
static Expr *temp_equation(Lower *L, const char *name, const AxisSet *axes, AssignOp op,
                           Expr *rhs, const VNode *from)
{
    if (!rhs || !name)
        return NULL;
    if (axes->n > FUSE_MAX_RANK)
        return fail(L, FUSE_E_SHAPE, from->span, "'%.*s' has more than %d axes",
                    clip(from), from->text, FUSE_MAX_RANK);
    Stmt *s = emit(L, ST_EQUATION, from->span,
                   arena_strndup(L->arena, from->text, (size_t)from->text_len));
    if (!s)
        return NULL;
    s->name = name;
    s->n_indices = axes->n;
    s->indices = axis_indices(L, axes, from->span);
    s->op = op;
    s->rhs = rhs;
    return tensor_ref(L, name, axes, from->span);
}

static const char *temp_name(Lower *L, const char *kind)
{
    const char *s = arena_printf(L->arena, "__%s%d", kind, L->n_temps++);
    if (!s)
        L->failed = true;
    return s;
}

/* n computed elementwise over its own free axes into a temporary. */
static Expr *hoist(Lower *L, const char *kind, const VNode *n)
{
    AxisSet axes = {0};
    free_axes(L, n, &axes);
    Ref ref = {axes.names, axes.n};
    const char *name = temp_name(L, kind);
    return temp_equation(L, name, &axes, AOP_SET, lower(L, n, &ref), n);
}

/* A value passed to a builtin: as written, unless a '*' or '/' in it would be
 * contracted onto left-hand side axes by the legacy reading. */
static Expr *lower_arg(Lower *L, const VNode *n, const Ref *ref)
{
    AxisSet axes = {0};
    free_axes(L, n, &axes);
    if (axes.unknown || set_within(&axes, ref) || !has_v2_product(n))
        return lower(L, n, ref);
    return hoist(L, "arg", n);
}

/* ---- expressions ---- */

static Expr *lower_div_operand(Lower *L, const VNode *b, const Ref *ref);

/* The operands of a left-nested chain (a + b - c ..., or a * b / c ...) in
 * order, with -1 for those after '-' or '/'; one array, so a long chain stays
 * linear. */
static const VNode **chain(Lower *L, const VNode *n, bool additive, int **signs, int *count)
{
    int k = 1;
    for (const VNode *m = n; m->kind == V_BINARY &&
                             (additive ? m->op == VO_ADD || m->op == VO_SUB
                                       : m->op == VO_MUL || m->op == VO_DIV);
         m = m->kids[0])
        k++;
    const VNode **items = alloc(L, sizeof *items * (size_t)k);
    *signs = alloc(L, sizeof **signs * (size_t)k);
    if (!items || !*signs)
        return NULL;
    const VNode *m = n;
    for (int i = k - 1; i > 0; i--, m = m->kids[0]) {
        items[i] = m->kids[1];
        (*signs)[i] = m->op == VO_SUB || m->op == VO_DIV ? -1 : 1;
    }
    items[0] = m;
    (*signs)[0] = 1;
    *count = k;
    return items;
}

/* Operands ops[k] (signs: -1 after '-' or '/') as one EX_SUM or EX_PRODUCT,
 * nested ones of the same kind flattened: operands lowered first, then one
 * array, so a long chain stays linear. */
static Expr *lower_nary(Lower *L, Span span, const VNode *const *ops, const int *signs, int k,
                        bool additive, const Ref *ref)
{
    ExprKind kind = additive ? EX_SUM : EX_PRODUCT;
    Expr **vals = alloc(L, sizeof *vals * (size_t)k);
    if (!vals)
        return NULL;
    int total = 0;
    for (int i = 0; i < k; i++) {
        vals[i] = !additive && signs[i] < 0 ? lower_div_operand(L, ops[i], ref)
                                            : lower(L, ops[i], ref);
        if (!vals[i])
            return NULL;
        total += vals[i]->kind == kind ? vals[i]->n_items : 1;
    }
    Expr *e = expr_new(L, kind, span);
    if (!e || !(e->items = alloc(L, sizeof *e->items * (size_t)total)) ||
        (additive && !(e->signs = alloc(L, sizeof *e->signs * (size_t)total))))
        return NULL;
    for (int i = 0; i < k; i++) {
        const Expr *v = vals[i];
        int m = v->kind == kind ? v->n_items : 1;
        for (int j = 0; j < m; j++, e->n_items++) {
            e->items[e->n_items] = v->kind == kind ? v->items[j] : vals[i];
            if (additive)
                e->signs[e->n_items] = signs[i] * (v->kind == kind ? v->signs[j] : 1);
        }
    }
    return e;
}

static Expr *lower_chain(Lower *L, const VNode *n, bool additive, const Ref *ref)
{
    int *signs = NULL, k = 0;
    const VNode **ops = chain(L, n, additive, &signs, &k);
    return ops ? lower_nary(L, n->span, ops, signs, k, additive, ref) : NULL;
}

static Expr *lower_juxt(Lower *L, const VNode *n, const Ref *ref)
{
    int *signs = alloc(L, sizeof *signs * (size_t)n->n_kids);
    for (int i = 0; signs && i < n->n_kids; i++)
        signs[i] = 1;
    return signs ? lower_nary(L, n->span, (const VNode *const *)n->kids, signs, n->n_kids,
                              false, ref)
                 : NULL;
}

/* c as a 0/1 condition: comparisons and logic already are; else case(c, 1, 0). */
static Expr *truth(Lower *L, const VNode *c, const Ref *ref)
{
    Expr *e = lower_arg(L, c, ref);
    bool is_bool = (c->kind == V_BINARY && c->op >= VO_LT) ||
                   (c->kind == V_UNARY && c->op == VO_NOT);
    if (!e || is_bool)
        return e;
    return call2(L, "case", c->span, e, number(L, 1, true, c->span),
                 number(L, 0, true, c->span));
}

static const char *compare_name(VOp op)
{
    static const char *const names[] = {"less", "less_equal", "greater", "greater_equal",
                                        "equal", "not_equal"};
    return names[op - VO_LT];
}

/* The factor a denominator b gives: 1/b folded, else recip(b). */
static Expr *lower_div_operand(Lower *L, const VNode *b, const Ref *ref)
{
    double v;
    bool is_int;
    if (fold(L, b, &v, &is_int))
        return number(L, 1.0 / v, false, b->span);
    return call2(L, "recip", b->span, lower_arg(L, b, ref), NULL, NULL);
}

static Expr *lower_binary(Lower *L, const VNode *n, const Ref *ref)
{
    const VNode *a = n->kids[0], *b = n->kids[1];
    switch (n->op) {
    case VO_ADD:
    case VO_SUB:
        return lower_chain(L, n, true, ref);
    case VO_MUL:
    case VO_DIV:
        return lower_chain(L, n, false, ref);
    case VO_POW:
        return call2(L, "pow", n->span, lower_arg(L, a, ref), lower_arg(L, b, ref), NULL);
    case VO_AND:
        return call2(L, "case", n->span, lower_arg(L, a, ref), truth(L, b, ref),
                     number(L, 0, true, n->span));
    case VO_OR:
        return call2(L, "case", n->span, lower_arg(L, a, ref), number(L, 1, true, n->span),
                     truth(L, b, ref));
    default:
        return call2(L, compare_name(n->op), n->span, lower_arg(L, a, ref),
                     lower_arg(L, b, ref), NULL);
    }
}

/* case { c1 -> v1; c2 -> v2; default -> d } = case(c1, v1, case(c2, v2, d)). */
static Expr *lower_case(Lower *L, const VNode *n, int from, const Ref *ref)
{
    int n_pairs = (n->n_kids - n->has_default) / 2;
    if (from == n_pairs)
        return n->has_default ? lower_arg(L, n->kids[n->n_kids - 1], ref)
                              : number(L, 0, true, n->span);
    const VNode *c = n->kids[2 * from], *v = n->kids[2 * from + 1];
    double cv;
    bool ci;
    if (fold(L, c, &cv, &ci)) /* a constant condition picks its branch now */
        return cv != 0 ? lower_arg(L, v, ref) : lower_case(L, n, from + 1, ref);
    Expr *cond = lower_arg(L, c, ref);
    Expr *val = cond ? lower_arg(L, v, ref) : NULL;
    Expr *rest = val ? lower_case(L, n, from + 1, ref) : NULL;
    return rest ? call2(L, "case", c->span, cond, val, rest) : NULL;
}

static Expr *lower_ternary(Lower *L, const VNode *n, const Ref *ref)
{
    double cv;
    bool ci;
    if (fold(L, n->kids[0], &cv, &ci))
        return lower(L, n->kids[cv != 0 ? 1 : 2], ref);
    Expr *c = lower_arg(L, n->kids[0], ref);
    Expr *a = c ? lower_arg(L, n->kids[1], ref) : NULL;
    Expr *b = a ? lower_arg(L, n->kids[2], ref) : NULL;
    return b ? call2(L, "case", n->span, c, a, b) : NULL;
}

/* A reduce body that is one product of tensors and numbers: it can be the
 * right-hand side of the reducing equation itself. */
static bool is_plain_product(const VNode *n)
{
    switch (n->kind) {
    case V_LEAF:
        return n->leaf->kind == EX_TENSOR || n->leaf->kind == EX_NUMBER;
    case V_NAME:
        return true;
    case V_GROUP:
        return is_plain_product(n->kids[0]);
    case V_UNARY:
        return n->op == VO_NEG && is_plain_product(n->kids[0]);
    case V_JUXT:
    case V_BINARY:
        if (n->kind == V_BINARY && n->op != VO_MUL)
            return false;
        for (int i = 0; i < n->n_kids; i++)
            if (!is_plain_product(n->kids[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* reduce(op, A) body: __redN[free(body) - A] op= body. A product multiplies the
 * body's numeric factor into each of its factors (reduce(prod, i) 2 * x[i] is
 * the product of the 2 * x[i]), exactly, with no logarithms. */
static Expr *lower_reduce(Lower *L, const VNode *n)
{
    const char *op = n->name;
    AssignOp aop = strcmp(op, "sum") == 0 ? AOP_SET
                 : strcmp(op, "max") == 0 ? AOP_MAX
                 : strcmp(op, "min") == 0 ? AOP_MIN
                 : strcmp(op, "prod") == 0 ? AOP_PROD
                 : strcmp(op, "mean") == 0 || strcmp(op, "avg") == 0 ? AOP_AVG : AOP_COUNT;
    if (aop == AOP_COUNT)
        return fail(L, FUSE_E_SYNTAX, n->span, "unknown reduction '%s'; use sum, max, min, "
                    "mean or prod", op);
    const VNode *body = n->kids[0];
    AxisSet in = {0};
    free_axes(L, body, &in);
    if (in.unknown)
        return fail(L, FUSE_E_UNSUPPORTED, body->span, "reduce over '%.*s' is not supported "
                    "yet (its axes are not known before shapes)", clip(body), body->text);
    AxisSet out = in;
    for (int i = 0; i < n->n_axes; i++) {
        if (!set_has(&in, n->axes[i]))
            return fail(L, FUSE_E_SHAPE, n->axis_spans[i], "reduce axis '%s' does not occur "
                        "in its body '%.*s'", n->axes[i], clip(body), body->text);
        set_remove(&out, n->axes[i]);
    }
    Ref inner = {in.names, in.n};
    Expr *value = is_plain_product(body) ? lower(L, body, &inner) : hoist(L, "body", body);
    return temp_equation(L, temp_name(L, "red"), &out, aop, value, n);
}

/* ---- calls ---- */

static const VStmt *fn_find(const Lower *L, const char *name)
{
    char buf[256];
    for (int t = 0; t < 2; t++) {
        const char *full = scoped(L, name, t, buf, sizeof buf);
        for (int i = 0; full && i < L->n_fns; i++)
            if (strcmp(L->fns[i]->lhs.name, full) == 0)
                return L->fns[i];
    }
    return NULL;
}

static bool is_fn(const Lower *L, const char *name)
{
    return fn_find(L, name) != NULL;
}

/* A keyword value: a bare non-constant name stays a name (an axis or a tensor,
 * as in legacy), constants fold, literals stay, anything else is a value. */
static Expr *lower_kwarg_value(Lower *L, const VNode *v, const Ref *ref)
{
    double c;
    bool ci;
    if (fold(L, v, &c, &ci))
        return number(L, c, ci, v->span);
    if (v->kind == V_LEAF)
        return v->leaf;
    if (v->kind == V_NAME) {
        Expr *e = expr_new(L, EX_TENSOR, v->span);
        if (e)
            e->name = v->name;
        return e;
    }
    return lower_arg(L, v, ref);
}

static Expr *lower_builtin(Lower *L, const VNode *n, const char *name, const Ref *ref)
{
    Expr *e = expr_new(L, EX_CALL, n->span);
    if (!e)
        return NULL;
    e->name = name;
    for (int i = 0; i < n->n_kids; i++) {
        const VNode *a = n->kids[i];
        Expr *v = a->kind == V_LEAF ? a->leaf : lower_arg(L, a, ref);
        if (!add_item(L, e, v))
            return NULL;
    }
    if (n->n_kwargs) {
        e->kwargs = alloc(L, sizeof *e->kwargs * (size_t)n->n_kwargs);
        if (!e->kwargs)
            return NULL;
    }
    for (int i = 0; i < n->n_kwargs; i++) {
        Kwarg *k = &e->kwargs[e->n_kwargs++];
        k->name = n->kwargs[i].name;
        k->span = n->kwargs[i].span;
        if (!(k->value = lower_kwarg_value(L, n->kwargs[i].value, ref)))
            return NULL;
    }
    return e;
}

static Expr *inline_call(Lower *L, const VNode *call);

static Expr *lower_call(Lower *L, const VNode *n, const Ref *ref)
{
    if (is_fn(L, n->name))
        return inline_call(L, n);
    if (strcmp(n->name, "select") == 0) {
        if (n->n_kids != 3 || n->n_kwargs != 0)
            return fail(L, FUSE_E_SHAPE, n->span, "select takes exactly 3 arguments "
                        "(condition, value if true, value if false), got %d", n->n_kids);
        Expr *c = lower_arg(L, n->kids[0], ref);
        Expr *a = c ? lower_arg(L, n->kids[1], ref) : NULL;
        Expr *b = a ? lower_arg(L, n->kids[2], ref) : NULL;
        return b ? call2(L, "case", n->span, c, a, b) : NULL;
    }
    if (strchr(n->name, ':'))
        return fail(L, FUSE_E_SHAPE, n->span, "unknown function '%s'", n->name);
    char hint[FE_HINT_SIZE];
    if (!fe_is_builtin(n->name) && strcmp(n->name, "pow") != 0)
        return fail(L, FUSE_E_SHAPE, n->span, "unknown function '%s'%s", n->name,
                    fe_builtin_hint(n->name, hint, sizeof hint));
    return lower_builtin(L, n, n->name, ref);
}

static bool has_kwarg(const VNode *n, const char *name)
{
    for (int i = 0; i < n->n_kwargs; i++)
        if (strcmp(n->kwargs[i].name, name) == 0)
            return true;
    return false;
}

/* @softmax(x, axis=j) -> softmax (masked_softmax with mask=), @layer_norm -> layernorm. */
static Expr *lower_macro(Lower *L, const VNode *n, const Ref *ref)
{
    if (name_is(n->name, "softmax"))
        return lower_builtin(L, n, has_kwarg(n, "mask") ? "masked_softmax" : "softmax", ref);
    if (name_is(n->name, "layer_norm") || name_is(n->name, "layernorm"))
        return lower_builtin(L, n, "layernorm", ref);
    return fail(L, FUSE_E_SYNTAX, n->span, "unknown macro '@%s'; the macros are @softmax "
                "and @layer_norm (also @layernorm)", n->name);
}

static Expr *lower_unary(Lower *L, const VNode *n, const Ref *ref)
{
    if (n->op == VO_NOT)
        return call2(L, "case", n->span, lower_arg(L, n->kids[0], ref),
                      number(L, 0, true, n->span), number(L, 1, true, n->span));
    Expr *e = expr_new(L, EX_NEG, n->span);
    return e && add_item(L, e, lower(L, n->kids[0], ref)) ? e : NULL;
}

static Expr *lower_leaf(Lower *L, const VNode *n)
{
    const Expr *e = n->leaf;
    if (e->kind == EX_TENSOR && is_reserved(L, e->name))
        return fail(L, FUSE_E_SYNTAX, e->span, "names starting with '__' are reserved for "
                    "the compiler's temporaries");
    if (e->kind == EX_TENSOR && const_find(L, e->name))
        return fail(L, FUSE_E_SHAPE, e->span, "'%s' is a constant; use it without brackets",
                    e->name);
    return n->leaf;
}

static Expr *lower(Lower *L, const VNode *n, const Ref *ref)
{
    double v;
    bool is_int;
    if (L->failed)
        return NULL;
    if (n->kind != V_LEAF && fold(L, n, &v, &is_int))
        return number(L, v, is_int, n->span);
    switch (n->kind) {
    case V_LEAF:
        return lower_leaf(L, n);
    case V_NAME: {
        if (is_reserved(L, n->name))
            return fail(L, FUSE_E_SYNTAX, n->span, "names starting with '__' are reserved "
                        "for the compiler's temporaries");
        Expr *e = expr_new(L, EX_TENSOR, n->span);
        if (e)
            e->name = n->name;
        return e;
    }
    case V_GROUP: {
        Expr *e = expr_new(L, EX_GROUP, n->span);
        return e && add_item(L, e, lower(L, n->kids[0], ref)) ? e : NULL;
    }
    case V_JUXT:
        return lower_juxt(L, n, ref);
    case V_UNARY:
        return lower_unary(L, n, ref);
    case V_BINARY:
        return lower_binary(L, n, ref);
    case V_TERNARY:
        return lower_ternary(L, n, ref);
    case V_CASE:
        return lower_case(L, n, 0, ref);
    case V_REDUCE:
        return lower_reduce(L, n);
    case V_CALL:
        return lower_call(L, n, ref);
    case V_MACRO:
        return lower_macro(L, n, ref);
    default:
        return fail(L, FUSE_E_SYNTAX, n->span, "unexpected expression");
    }
}

/* ---- statements ---- */

static bool lower_stmts(Lower *L, VStmt *const *stmts, int n);
static bool check_fn(Lower *L, const VStmt *fn);

/* A user name starting with "__" (inlined bodies use such names themselves). */
static bool is_reserved(const Lower *L, const char *name)
{
    return L->n_stack == 0 && strncmp(name, "__", 2) == 0;
}

static bool check_lhs_name(Lower *L, const VLhs *lhs)
{
    if (is_reserved(L, lhs->name))
        return fail(L, FUSE_E_SYNTAX, lhs->span, "names starting with '__' are reserved for "
                    "the compiler's temporaries") != NULL;
    if (const_find(L, lhs->name))
        return fail(L, FUSE_E_SHAPE, lhs->span, "'%s' is a constant and cannot also be "
                    "defined as a tensor", lhs->name) != NULL;
    return true;
}

static bool lower_equation(Lower *L, const VStmt *s)
{
    if (!check_lhs_name(L, &s->lhs))
        return false;
    const char *names[FUSE_MAX_RANK];
    for (int i = 0; i < s->lhs.n_indices; i++)
        names[i] = s->lhs.indices[i].name;
    Ref ref = {names, s->lhs.n_indices};
    bool is_v2 = s->guard || s->is_let || uses_v2(s->rhs);
    Expr *rhs = lower(L, s->rhs, &ref); /* its own errors (reduce axes...) come first */
    if (rhs && is_v2 && !check_projection(L, s->rhs, &ref))
        return false;
    if (rhs && s->guard) {
        Expr *g = expr_new(L, EX_GROUP, s->rhs->span);
        if (!g || !add_item(L, g, rhs))
            return false;
        Expr *p = expr_new(L, EX_PRODUCT, s->rhs->span);
        rhs = p && add_item(L, p, g) && add_item(L, p, truth(L, s->guard, &ref)) ? p : NULL;
    }
    if (!rhs)
        return false;
    Stmt *st = emit(L, ST_EQUATION, s->span, s->text);
    if (!st)
        return false;
    st->name = s->lhs.name;
    st->indices = s->lhs.indices;
    st->n_indices = s->lhs.n_indices;
    st->is_paren = s->lhs.is_paren;
    st->op = s->op;
    st->rhs = rhs;
    return true;
}

static bool lower_sink(Lower *L, const VStmt *s)
{
    AxisSet axes = {0};
    free_axes(L, s->rhs, &axes);
    Ref ref = {axes.names, axes.n};
    Expr *rhs = lower(L, s->rhs, &ref);
    Stmt *st = rhs ? emit(L, ST_SINK, s->span, s->text) : NULL;
    if (!st)
        return false;
    st->rhs = rhs;
    st->path = s->path;
    st->path_span = s->path_span;
    return true;
}

/* Whether v is a value of param type `type` (int, float, bool; others pass). */
static bool type_fits(const char *type, double v)
{
    if (strcmp(type, "int") == 0)
        return v == floor(v);
    if (strcmp(type, "bool") == 0)
        return v == 0 || v == 1;
    return true;
}

/* The host's value for param `name`, if it gave one. */
static bool param_value(Lower *L, const char *name, double *v)
{
    for (size_t i = 0; i < L->n_params; i++)
        if (L->params[i].name && strcmp(L->params[i].name, name) == 0) {
            *v = L->params[i].value;
            L->param_used[i] = true;
            return true;
        }
    return false;
}

/* const NAME = expr, param NAME = expr: a folded number under a new name; a
 * param takes the host's value when it gives one. */
static bool lower_const(Lower *L, const VStmt *s)
{
    if (const_find(L, s->name))
        return fail(L, FUSE_E_SHAPE, s->lhs.span, "'%s' is declared twice", s->name) != NULL;
    double v;
    bool is_int;
    bool is_host = s->kind == VS_PARAM && param_value(L, s->name, &v);
    if (is_host)
        is_int = v == floor(v);
    else if (!s->rhs)
        return fail(L, FUSE_E_SHAPE, s->lhs.span, "param '%s' has no value; give it a "
                    "default (param %s = 3) or a value (--param %s=3)", s->name, s->name,
                    s->name) != NULL;
    if (!is_host && !fold(L, s->rhs, &v, &is_int))
        return fail(L, FUSE_E_SHAPE, s->rhs->span, "the value of '%s' is not a constant "
                    "expression (numbers, earlier consts and params, operators)",
                    s->name) != NULL;
    Span at = s->rhs && !is_host ? s->rhs->span : s->lhs.span;
    if (!isfinite(v))
        return fail(L, FUSE_E_SHAPE, at, "the value of '%s' is not finite", s->name) != NULL;
    if (s->type_name && !type_fits(s->type_name, v))
        return fail(L, FUSE_E_SHAPE, at, "param '%s' is declared %s but its value is %g",
                    s->name, s->type_name, v) != NULL;
    if (L->n_consts == MAX_CONSTS)
        return fail(L, FUSE_E_SHAPE, s->span, "too many constants") != NULL;
    if (!L->consts && !(L->consts = alloc(L, sizeof *L->consts * MAX_CONSTS)))
        return false;
    L->consts[L->n_consts++] = (Const){s->name, v, is_int};
    return true;
}

/* axis n [= size]: a name, or a size every axis named n must have. */
static bool lower_axis(Lower *L, const VStmt *s)
{
    Ast *a = L->out;
    for (int i = 0; i < a->n_axis_decls; i++)
        if (strcmp(a->axis_decls[i].name, s->name) == 0)
            return fail(L, FUSE_E_SHAPE, s->lhs.span, "axis '%s' is declared twice (first at "
                        "line %d)", s->name, a->axis_decls[i].span.line) != NULL;
    double v = 0;
    bool is_int = true;
    if (s->rhs && !fold(L, s->rhs, &v, &is_int))
        return fail(L, FUSE_E_SHAPE, s->rhs->span, "the size of axis '%s' is not a constant "
                    "expression", s->name) != NULL;
    if (s->rhs && (v != floor(v) || v < 1 || v > 1e15))
        return fail(L, FUSE_E_SHAPE, s->rhs->span, "the size of axis '%s' must be a positive "
                    "integer, not %g", s->name, v) != NULL;
    AxisDecl *d = arena_grow(L->arena, a->axis_decls, sizeof *d * (size_t)a->n_axis_decls,
                             sizeof *d * (size_t)(a->n_axis_decls + 1));
    if (!d)
        return L->failed = true, false;
    d[a->n_axis_decls++] = (AxisDecl){s->name, s->rhs ? (int64_t)v : -1, s->span};
    a->axis_decls = d;
    return true;
}

static bool lower_stmt(Lower *L, const VStmt *s)
{
    L->stmt = s;
    switch (s->kind) {
    case VS_EQUATION:
        return lower_equation(L, s);
    case VS_SOURCE:
    case VS_EXPORT: {
        Stmt *st = emit(L, s->kind == VS_SOURCE ? ST_SOURCE : ST_EXPORT, s->span, s->text);
        if (!st)
            return false;
        st->name = s->kind == VS_SOURCE ? s->lhs.name : s->name;
        st->indices = s->lhs.indices;
        st->n_indices = s->lhs.n_indices;
        st->is_paren = s->lhs.is_paren;
        st->path = s->path;
        st->path_span = s->path_span;
        return s->kind == VS_EXPORT || check_lhs_name(L, &s->lhs);
    }
    case VS_SINK:
        return lower_sink(L, s);
    case VS_BLOCK:
        return lower_stmts(L, s->body, s->n_body);
    case VS_CONST:
    case VS_PARAM:
        return lower_const(L, s);
    case VS_AXIS:
        return lower_axis(L, s);
    case VS_IMPORT:
        return true; /* loaded before the statements (collect_fns) */
    case VS_FN:
        return true; /* registered and checked before; inlined where called */
    default:
        return fail(L, FUSE_E_SYNTAX, s->span, "unexpected statement") != NULL;
    }
}

static bool lower_stmts(Lower *L, VStmt *const *stmts, int n)
{
    for (int i = 0; i < n; i++)
        if (!lower_stmt(L, stmts[i]))
            return false;
    return true;
}

/* ---- functions: hygienic inlining (notes C §4.12, REC) ----
 *
 * A call f(a1, ..., an) binds each formal's dims to the last axes of its actual
 * (right-aligned); the actual's leading axes are batch axes, carried through.
 * The body is copied with every formal axis renamed to the actual axis it binds,
 * every other axis to "__f_<axis>", every local tensor to "__fnN_<name>" (N per
 * call) and every parameter reference replaced by the actual's tensor; a local's
 * axes are its renamed dims plus the batch axes its right-hand side carries. The
 * copy is lowered like any statements, and the call is the return local. */

typedef struct Actual {
    const char *name; /* the tensor passed (a temporary for an expression) */
    AxisSet axes;
} Actual;

#define MAX_LOCALS 64

typedef struct Inline {
    Lower *L;
    const VStmt *fn;
    const VNode *call;
    const Actual *args;
    bool quiet;            /* only the result axes are wanted: no diagnostics */
    bool ok;
    const char *prefix;    /* "__fn3_" */
    const char *formal[MAX_SET], *actual[MAX_SET];
    int n_map;
    AxisSet batch;
    const char *locals[MAX_LOCALS];
    AxisSet local_axes[MAX_LOCALS];
    bool local_done[MAX_LOCALS];
    int n_locals;
    VStmt **out;           /* the renamed body, flattened */
    int n_out;
} Inline;

static bool in_fail(Inline *in, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool in_fail(Inline *in, Span span, const char *fmt, ...)
{
    if (!in->ok)
        return false;
    in->ok = false;
    if (in->quiet || in->L->failed)
        return false;
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fail(in->L, FUSE_E_SHAPE, span, "%s", buf);
    return false;
}


static int param_of(const Inline *in, const char *name)
{
    for (int i = 0; i < in->fn->n_params; i++)
        if (strcmp(in->fn->params[i].name, name) == 0)
            return i;
    return -1;
}

static int local_of(const Inline *in, const char *name)
{
    for (int i = 0; i < in->n_locals; i++)
        if (strcmp(in->locals[i], name) == 0)
            return i;
    return -1;
}

/* The caller-side name of body axis `name`. */
static const char *rename_axis(Inline *in, const char *name)
{
    for (int i = 0; i < in->n_map; i++)
        if (strcmp(in->formal[i], name) == 0)
            return in->actual[i];
    const char *s = arena_printf(in->L->arena, "__%s_%s", in->fn->lhs.name, name);
    if (!s)
        in->ok = false;
    return s ? s : name;
}

/* Binds formal dims to the actuals' trailing axes and collects the batch axes. */
static bool bind(Inline *in)
{
    const VStmt *fn = in->fn;
    for (int p = 0; p < fn->n_params; p++) {
        const VLhs *f = &fn->params[p];
        const AxisSet *a = &in->args[p].axes;
        int k = f->n_indices, n = a->n;
        if (n < k)
            return in_fail(in, in->call->kids[p]->span, "argument %d of '%s' has %d axes but "
                           "the parameter '%s' has %d", p + 1, fn->lhs.name, n, f->name, k);
        for (int m = 0; m < k; m++) {
            const Index *ix = &f->indices[m];
            const char *act = a->names[n - k + m];
            if (ix->kind != IX_AXIS || ix->offset != 0)
                return in_fail(in, ix->span, "a parameter's dims must be plain axis names");
            int j = 0;
            while (j < in->n_map && strcmp(in->formal[j], ix->name) != 0)
                j++;
            if (j < in->n_map && strcmp(in->actual[j], act) != 0)
                return in_fail(in, in->call->kids[p]->span, "axis '%s' of '%s' is bound to "
                               "both '%s' and '%s' by the arguments", ix->name, fn->lhs.name,
                               in->actual[j], act);
            if (j == in->n_map && in->n_map < MAX_SET) {
                in->formal[in->n_map] = ix->name;
                in->actual[in->n_map++] = act;
            }
        }
        for (int m = 0; m < n - k; m++)
            set_add(&in->batch, a->names[m]);
    }
    return true;
}

static Index *renamed_indices(Inline *in, const Index *ix, int n, const AxisSet *extra)
{
    int total = n + (extra ? extra->n : 0);
    if (total == 0)
        return NULL;
    Index *out = alloc(in->L, sizeof *out * (size_t)total);
    if (!out)
        return in->ok = false, NULL;
    for (int i = 0; i < n; i++) {
        out[i] = ix[i];
        if (ix[i].kind == IX_AXIS || ix[i].kind == IX_STREAM)
            out[i].name = rename_axis(in, ix[i].name);
    }
    for (int i = n; i < total; i++) {
        out[i] = (Index){.kind = IX_AXIS, .name = extra->names[i - n], .span = ix ? ix[0].span
                                                                            : in->call->span};
    }
    return out;
}

static VNode *tensor_leaf(Inline *in, const VNode *from, const char *name, Index *ix, int n)
{
    VNode *v = alloc(in->L, sizeof *v);
    Expr *e = alloc(in->L, sizeof *e);
    if (!v || !e)
        return in->ok = false, NULL;
    *v = *from;
    v->kind = V_LEAF;
    v->n_kids = 0;
    v->leaf = e;
    e->kind = EX_TENSOR;
    e->span = from->span;
    e->name = name;
    e->indices = ix;
    e->n_indices = n;
    return v;
}

/* A use of parameter p, with use-site indices ix[n] (none: the formal's dims). */
static VNode *param_ref(Inline *in, const VNode *from, int p, const Index *ix, int n)
{
    const VLhs *f = &in->fn->params[p];
    const Actual *a = &in->args[p];
    int k = f->n_indices, lead = a->axes.n - k;
    if (n != 0 && n != k) {
        in_fail(in, from->span, "parameter '%s' has %d dims; use it with %d indices or none",
                f->name, k, k);
        return NULL;
    }
    Index *out = a->axes.n ? alloc(in->L, sizeof *out * (size_t)a->axes.n) : NULL;
    if (a->axes.n && !out)
        return in->ok = false, NULL;
    for (int s = 0; s < a->axes.n; s++) {
        const char *name = a->axes.names[s];
        if (n && s >= lead) {
            if (ix[s - lead].kind != IX_AXIS || ix[s - lead].offset != 0) {
                in_fail(in, ix[s - lead].span, "a parameter is indexed with plain axis names");
                return NULL;
            }
            name = rename_axis(in, ix[s - lead].name);
        }
        out[s] = (Index){.kind = IX_AXIS, .name = name, .span = from->span};
    }
    return tensor_leaf(in, from, a->name, out, a->axes.n);
}

static VNode *rename_node(Inline *in, const VNode *n);

static bool rename_kids(Inline *in, VNode *v, const VNode *n)
{
    if (n->n_kids) {
        v->kids = alloc(in->L, sizeof *v->kids * (size_t)n->n_kids);
        if (!v->kids)
            return in->ok = false;
    }
    for (int i = 0; i < n->n_kids; i++)
        if (!(v->kids[i] = rename_node(in, n->kids[i])))
            return false;
    if (n->n_kwargs) {
        v->kwargs = alloc(in->L, sizeof *v->kwargs * (size_t)n->n_kwargs);
        if (!v->kwargs)
            return in->ok = false;
    }
    for (int i = 0; i < n->n_kwargs; i++) {
        const VNode *val = n->kwargs[i].value;
        v->kwargs[i] = n->kwargs[i];
        bool is_axis_name = val->kind == V_NAME && param_of(in, val->name) < 0 &&
                            local_of(in, val->name) < 0 && !const_find(in->L, val->name);
        if (is_axis_name) { /* axis=k names a body axis */
            VNode *c = alloc(in->L, sizeof *c);
            if (!c)
                return in->ok = false;
            *c = *val;
            c->name = rename_axis(in, val->name);
            v->kwargs[i].value = c;
        } else if (!(v->kwargs[i].value = rename_node(in, val))) {
            return false;
        }
    }
    return true;
}

static VNode *rename_node(Inline *in, const VNode *n)
{
    if (!in->ok)
        return NULL;
    const char *name = n->kind == V_NAME ? n->name
                     : n->kind == V_LEAF && n->leaf->kind == EX_TENSOR ? n->leaf->name : NULL;
    const Expr *e = n->kind == V_LEAF ? n->leaf : NULL;
    int n_ix = e && e->kind == EX_TENSOR ? e->n_indices : 0;
    const Index *ix = n_ix ? e->indices : NULL;
    if (name && param_of(in, name) >= 0)
        return param_ref(in, n, param_of(in, name), ix, n_ix);
    if (name && local_of(in, name) >= 0) {
        int l = local_of(in, name);
        AxisSet extra = {0};
        for (int i = 0; i < in->batch.n && in->local_done[l]; i++)
            if (set_has(&in->local_axes[l], in->batch.names[i]))
                set_add(&extra, in->batch.names[i]);
        const char *full = arena_printf(in->L->arena, "%s%s", in->prefix, name);
        Index *out = renamed_indices(in, ix, n_ix, &extra);
        return full ? tensor_leaf(in, n, full, out, n_ix + extra.n) : NULL;
    }
    VNode *v = alloc(in->L, sizeof *v);
    if (!v)
        return in->ok = false, NULL;
    *v = *n;
    if (e && (e->kind == EX_TENSOR || e->kind == EX_INDEXFN)) {
        Expr *c = alloc(in->L, sizeof *c);
        if (!c)
            return in->ok = false, NULL;
        *c = *e;
        if (e->kind == EX_INDEXFN)
            c->axis_name = rename_axis(in, e->axis_name);
        else
            c->indices = renamed_indices(in, e->indices, e->n_indices, NULL);
        v->leaf = c;
    }
    if (n->kind == V_REDUCE && n->n_axes) {
        v->axes = alloc(in->L, sizeof *v->axes * (size_t)n->n_axes);
        for (int i = 0; v->axes && i < n->n_axes; i++)
            v->axes[i] = rename_axis(in, n->axes[i]);
        if (!v->axes)
            return in->ok = false, NULL;
    }
    return rename_kids(in, v, n) ? v : NULL;
}

/* The locals: every name a body equation assigns. */
static bool collect_locals(Inline *in, VStmt *const *body, int n)
{
    for (int i = 0; i < n; i++) {
        const VStmt *s = body[i];
        if (s->kind == VS_BLOCK) {
            if (!collect_locals(in, s->body, s->n_body))
                return false;
            continue;
        }
        if (s->kind != VS_EQUATION)
            return in_fail(in, s->span, "a function body holds only equations, let and "
                           "blocks");
        if (param_of(in, s->lhs.name) >= 0)
            return in_fail(in, s->lhs.span, "'%s' is a parameter of '%s' and cannot be "
                           "assigned", s->lhs.name, in->fn->lhs.name);
        if (local_of(in, s->lhs.name) >= 0)
            continue;
        if (in->n_locals == MAX_LOCALS)
            return in_fail(in, s->span, "a function body has at most %d locals", MAX_LOCALS);
        in->locals[in->n_locals++] = s->lhs.name;
    }
    return true;
}

/* Renames one body equation; its LHS gets the batch axes its right side carries. */
static bool rename_equation(Inline *in, const VStmt *s)
{
    VStmt *c = alloc(in->L, sizeof *c);
    if (!c)
        return in->ok = false;
    *c = *s;
    c->rhs = rename_node(in, s->rhs);
    c->guard = s->guard ? rename_node(in, s->guard) : NULL;
    if (!c->rhs || (s->guard && !c->guard))
        return false;
    int l = local_of(in, s->lhs.name);
    AxisSet dims = {0}, rhs = {0};
    for (int i = 0; i < s->lhs.n_indices; i++)
        set_add(&dims, rename_axis(in, s->lhs.indices[i].name));
    if (!in->local_done[l]) {
        free_axes(in->L, c->rhs, &rhs);
        if (c->guard)
            free_axes(in->L, c->guard, &rhs);
        in->local_axes[l] = dims;
        for (int i = 0; i < in->batch.n; i++)
            if (set_has(&rhs, in->batch.names[i]) || rhs.unknown)
                set_add(&in->local_axes[l], in->batch.names[i]);
        in->local_done[l] = true;
    }
    AxisSet extra = {0};
    for (int i = 0; i < in->local_axes[l].n; i++)
        if (!set_has(&dims, in->local_axes[l].names[i]))
            set_add(&extra, in->local_axes[l].names[i]);
    c->lhs.name = arena_printf(in->L->arena, "%s%s", in->prefix, s->lhs.name);
    c->lhs.indices = renamed_indices(in, s->lhs.indices, s->lhs.n_indices, &extra);
    c->lhs.n_indices = s->lhs.n_indices + extra.n;
    c->lhs.is_paren = false;
    if (c->lhs.n_indices > FUSE_MAX_RANK)
        return in_fail(in, in->call->span, "inlining '%s' gives '%s' more than %d axes",
                       in->fn->lhs.name, s->lhs.name, FUSE_MAX_RANK);
    if (!c->lhs.name)
        return in->ok = false;
    VStmt **out = arena_grow(in->L->arena, in->out, sizeof *out * (size_t)in->n_out,
                             sizeof *out * (size_t)(in->n_out + 1));
    if (!out)
        return in->ok = false;
    out[in->n_out++] = c;
    in->out = out;
    return in->ok;
}

static bool rename_body(Inline *in, VStmt *const *body, int n)
{
    for (int i = 0; i < n && in->ok; i++) {
        bool ok = body[i]->kind == VS_BLOCK ? rename_body(in, body[i]->body, body[i]->n_body)
                                            : rename_equation(in, body[i]);
        if (!ok)
            return false;
    }
    return in->ok;
}

/* "f -> g -> f" for a recursion error. */
static const char *cycle_text(Lower *L, const char *again)
{
    char buf[300];
    size_t len = 0;
    int from = 0;
    while (from < L->n_stack && strcmp(L->stack[from]->lhs.name, again) != 0)
        from++;
    for (int i = from; i < L->n_stack && len < 200; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s -> ", L->stack[i]->lhs.name);
    snprintf(buf + len, sizeof buf - len, "%s", again);
    return arena_strdup(L->arena, buf);
}

/* Binds and renames a call of fn; false (with in->ok false) on an error. */
static bool inline_prepare(Inline *in)
{
    Lower *L = in->L;
    const VStmt *fn = in->fn;
    for (int i = 0; i < L->n_stack; i++)
        if (L->stack[i] == fn)
            return in_fail(in, in->call->span, "recursive function '%s' (cycle %s)",
                           fn->lhs.name, cycle_text(L, fn->lhs.name));
    if (L->n_stack == (int)(sizeof L->stack / sizeof L->stack[0]))
        return in_fail(in, in->call->span, "functions nested too deeply (more than 16 calls)");
    if (!bind(in) || !collect_locals(in, fn->body, fn->n_body))
        return false;
    const char *ns = L->ns;
    L->ns = fn->ns; /* a module's names first */
    L->stack[L->n_stack++] = fn;
    bool ok = rename_body(in, fn->body, fn->n_body);
    L->n_stack--;
    L->ns = ns;
    return ok;
}

static bool check_call_args(Lower *L, const VNode *call, const VStmt *fn, bool quiet)
{
    if (call->n_kwargs && !quiet)
        return fail(L, FUSE_E_SHAPE, call->kwargs[0].span, "function '%s' takes no keyword "
                    "arguments", fn->lhs.name) != NULL;
    if (call->n_kids != fn->n_params && !quiet)
        return fail(L, FUSE_E_SHAPE, call->span, "function '%s' takes %d argument%s, got %d",
                    fn->lhs.name, fn->n_params, fn->n_params == 1 ? "" : "s",
                    call->n_kids) != NULL;
    return call->n_kwargs == 0 && call->n_kids == fn->n_params;
}

static void fn_call_axes(Lower *L, const VNode *call, AxisSet *out)
{
    const VStmt *fn = fn_find(L, call->name);
    Actual args[MAX_SET];
    if (!check_call_args(L, call, fn, true) || fn->n_params > MAX_SET) {
        out->unknown = true;
        return;
    }
    for (int i = 0; i < fn->n_params; i++) {
        args[i] = (Actual){.name = "__arg"};
        free_axes(L, call->kids[i], &args[i].axes);
        if (args[i].axes.unknown) {
            out->unknown = true;
            return;
        }
    }
    Inline in = {.L = L, .fn = fn, .call = call, .args = args, .quiet = true, .ok = true,
                 .prefix = "__fn_"};
    int r = -1;
    if (inline_prepare(&in))
        r = local_of(&in, fn->ret.name);
    if (r < 0 || !in.local_done[r])
        out->unknown = true;
    else
        set_union(out, &in.local_axes[r]);
}

/* The tensor an argument passes: a plain reference as it is, anything else
 * computed into a temporary over its free axes. */
static bool actual_of(Lower *L, const VNode *a, Actual *out)
{
    memset(out, 0, sizeof *out);
    const Expr *e = a->kind == V_LEAF ? a->leaf : NULL;
    bool plain = e && e->kind == EX_TENSOR && !e->is_paren && !const_find(L, e->name);
    for (int i = 0; plain && i < e->n_indices; i++) {
        const Index *ix = &e->indices[i];
        AxisSet so_far = out->axes;
        plain = ix->kind == IX_AXIS && ix->offset == 0 && !set_has(&so_far, ix->name);
        if (plain) /* a number or slice index has no name */
            set_add(&out->axes, ix->name);
    }
    if (plain || (a->kind == V_NAME && !const_find(L, a->name))) {
        out->name = plain ? e->name : a->name;
        return true;
    }
    memset(out, 0, sizeof *out);
    Expr *t = hoist(L, "arg", a);
    if (!t)
        return false;
    out->name = t->name;
    for (int i = 0; i < t->n_indices; i++)
        set_add(&out->axes, t->indices[i].name);
    return true;
}

static Expr *inline_call(Lower *L, const VNode *call)
{
    const VStmt *fn = fn_find(L, call->name);
    if (!check_call_args(L, call, fn, false))
        return NULL;
    if (fn->n_params > MAX_SET)
        return fail(L, FUSE_E_SHAPE, call->span, "too many arguments");
    Actual args[MAX_SET];
    for (int i = 0; i < fn->n_params; i++)
        if (!actual_of(L, call->kids[i], &args[i]))
            return NULL;
    Inline in = {.L = L, .fn = fn, .call = call, .args = args, .ok = true,
                 .prefix = arena_printf(L->arena, "__fn%d_", L->n_temps++)};
    if (!in.prefix || !inline_prepare(&in))
        return NULL;
    int r = local_of(&in, fn->ret.name);
    const char *ns = L->ns;
    L->ns = fn->ns;
    L->stack[L->n_stack++] = fn; /* calls inside the body see the cycle */
    bool ok = lower_stmts(L, in.out, in.n_out);
    L->n_stack--;
    L->ns = ns;
    if (!ok || r < 0)
        return NULL;
    const char *name = arena_printf(L->arena, "%s%s", in.prefix, fn->ret.name);
    return name ? tensor_ref(L, name, &in.local_axes[r], call->span) : NULL;
}

/* Definition-time checks: distinct parameters, a return value that is assigned. */
static bool returns_assigned(VStmt *const *body, int n, const char *ret)
{
    for (int i = 0; i < n; i++) {
        if (body[i]->kind == VS_BLOCK && returns_assigned(body[i]->body, body[i]->n_body, ret))
            return true;
        if (body[i]->kind == VS_EQUATION && strcmp(body[i]->lhs.name, ret) == 0)
            return true;
    }
    return false;
}

static bool check_fn(Lower *L, const VStmt *fn)
{
    for (int i = 0; i < fn->n_params; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(fn->params[i].name, fn->params[j].name) == 0)
                return fail(L, FUSE_E_SHAPE, fn->params[i].span, "parameter '%s' of '%s' is "
                            "declared twice", fn->params[i].name, fn->lhs.name) != NULL;
    if (!fn->has_ret)
        return fail(L, FUSE_E_SHAPE, fn->lhs.span, "function '%s' declares no return value; "
                    "write 'fn %s(...) -> r { ... }'", fn->lhs.name, fn->lhs.name) != NULL;
    if (!returns_assigned(fn->body, fn->n_body, fn->ret.name))
        return fail(L, FUSE_E_SHAPE, fn->ret.span, "the return value '%s' of '%s' is never "
                    "assigned in its body", fn->ret.name, fn->lhs.name) != NULL;
    return true;
}

static bool add_fn(Lower *L, const VStmt *s)
{
    if (fn_find(L, s->lhs.name) && strcmp(fn_find(L, s->lhs.name)->lhs.name, s->lhs.name) == 0)
        return fail(L, FUSE_E_SHAPE, s->lhs.span, "function '%s' is defined twice",
                    s->lhs.name) != NULL;
    const VStmt **fns = arena_grow(L->arena, L->fns, sizeof *fns * (size_t)L->n_fns,
                                   sizeof *fns * (size_t)(L->n_fns + 1));
    if (!fns)
        return L->failed = true, false;
    fns[L->n_fns++] = s;
    L->fns = fns;
    return check_fn(L, s);
}

static bool load_import(Lower *L, const VStmt *s, const Source *from);

/* Registers every fn first (a call may come before the definition), loading
 * the imports on the way. */
static bool collect_fns(Lower *L, const VProgram *prog)
{
    for (int i = 0; i < prog->n_stmts; i++) {
        const VStmt *s = prog->stmts[i];
        bool ok = s->kind == VS_FN ? add_fn(L, s)
                : s->kind == VS_IMPORT ? load_import(L, s, L->src) : true;
        if (!ok)
            return false;
    }
    return true;
}

/* ---- import "path" as m ----
 * A module is a v2 file of fn, const, param and import statements. Its
 * functions and constants become m::name; inside them, unqualified names find
 * the module's own first (Lower.ns). Paths resolve against the importing file's
 * directory (the working directory for a program given as text); ".fuse" is
 * appended when the path has no suffix and does not exist as written. */

/* The directory of a source name ("" for none) followed by path, or path. */
static char *resolve_path(Lower *L, const Source *from, const char *path)
{
    const char *slash = from->name ? strrchr(from->name, '/') : NULL;
    bool in_memory = !from->name || from->name[0] == '<';
    char *full = path[0] == '/' || !slash || in_memory
                     ? arena_strdup(L->arena, path)
                     : arena_printf(L->arena, "%.*s/%s", (int)(slash - from->name),
                                    from->name, path);
    if (!full)
        return L->failed = true, NULL;
    const char *base = strrchr(full, '/') ? strrchr(full, '/') + 1 : full;
    FILE *f = fopen(full, "r");
    if (f)
        fclose(f);
    else if (!strchr(base, '.'))
        full = arena_printf(L->arena, "%s.fuse", full);
    return full;
}

/* The namespace of an import: its alias, else the file's stem. */
static const char *import_ns(Lower *L, const VStmt *s)
{
    if (s->name)
        return L->ns ? arena_printf(L->arena, "%s::%s", L->ns, s->name) : s->name;
    const char *base = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
    const char *dot = strchr(base, '.');
    int n = dot ? (int)(dot - base) : (int)strlen(base);
    return L->ns ? arena_printf(L->arena, "%s::%.*s", L->ns, n, base)
                 : arena_printf(L->arena, "%.*s", n, base);
}

/* "a.fuse -> b.fuse -> a.fuse" for an import cycle. */
static const char *import_chain(Lower *L, const char *again)
{
    char buf[512];
    size_t len = 0;
    for (int i = 0; i < L->n_imports && len < 400; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s -> ", L->imports[i]);
    snprintf(buf + len, sizeof buf - len, "%s", again);
    return arena_strdup(L->arena, buf);
}

/* The statements of a module under namespace ns. */
static bool load_module(Lower *L, const VProgram *m, const char *ns, const Source *src)
{
    const char *outer = L->ns;
    L->ns = ns;
    bool ok = true;
    for (int i = 0; i < m->n_stmts && ok; i++) {
        const VStmt *s = m->stmts[i];
        VStmt *c = NULL;
        if (s->kind == VS_FN || s->kind == VS_CONST || s->kind == VS_PARAM) {
            if (!(c = alloc(L, sizeof *c)))
                return false;
            *c = *s;
            c->ns = ns;
            const char *q = arena_printf(L->arena, "%s::%s", ns,
                                         s->kind == VS_FN ? s->lhs.name : s->name);
            if (!q)
                return L->failed = true, false;
            *(s->kind == VS_FN ? &c->lhs.name : &c->name) = q;
        }
        if (s->kind == VS_FN)
            ok = add_fn(L, c);
        else if (s->kind == VS_CONST || s->kind == VS_PARAM)
            ok = lower_const(L, c);
        else if (s->kind == VS_IMPORT)
            ok = load_import(L, s, src);
        else
            ok = fail(L, FUSE_E_SHAPE, s->span, "a module holds only fn, const, param and "
                      "import statements") != NULL;
    }
    L->ns = outer;
    return ok;
}

/* The canonical form of an existing path (so two spellings compare equal). */
static const char *canonical(Lower *L, const char *path)
{
    char *real = realpath(path, NULL);
    const char *s = arena_strdup(L->arena, real ? real : path);
    free(real);
    return s ? s : path;
}

static bool load_import(Lower *L, const VStmt *s, const Source *from)
{
    const char *path = resolve_path(L, from, s->path), *ns = path ? import_ns(L, s) : NULL;
    if (!ns)
        return L->failed = true, false;
    const char *key = canonical(L, path);
    for (int i = 0; i < L->n_imports; i++)
        if (strcmp(L->imports[i], key) == 0)
            return fail(L, FUSE_E_SHAPE, s->span, "import cycle: %s",
                        import_chain(L, key)) != NULL;
    for (int i = 0; i < L->n_namespaces; i++)
        if (strcmp(L->namespaces[i], ns) == 0)
            return fail(L, FUSE_E_SHAPE, s->span, "a second import into the namespace '%s'; "
                        "give one an alias with 'as'", ns) != NULL;
    if (L->n_imports == (int)(sizeof L->imports / sizeof L->imports[0]))
        return fail(L, FUSE_E_SHAPE, s->span, "imports nested too deeply") != NULL;
    const char **nss = arena_grow(L->arena, L->namespaces,
                                  sizeof *nss * (size_t)L->n_namespaces,
                                  sizeof *nss * (size_t)(L->n_namespaces + 1));
    if (!nss)
        return L->failed = true, false;
    nss[L->n_namespaces++] = ns;
    L->namespaces = nss;
    void *data = NULL;
    size_t n = 0;
    char *err = NULL;
    if (sup_read_file(path, &data, &n, &err) != FUSE_OK) {
        fail(L, FUSE_E_SHAPE, s->path_span, "cannot import '%s': %s", s->path,
             err ? err : "cannot read it");
        free(err);
        return false;
    }
    Source *src = alloc(L, sizeof *src);
    char *text = arena_strndup(L->arena, data, n);
    free(data);
    if (!src || !text)
        return false;
    *src = (Source){path, text, n};
    VProgram m;
    L->imports[L->n_imports++] = key;
    bool ok = fe_v2_parse(L->arena, src, L->dl, &m) == FUSE_OK;
    if (!ok) {
        L->failed = true;
        fe_note(L->dl, s->span, "in the module imported here");
    }
    ok = ok && load_module(L, &m, ns, src);
    L->n_imports--;
    return ok;
}

/* Every host value must name a declared param. */
static bool check_params_used(Lower *L)
{
    for (size_t i = 0; i < L->n_params; i++)
        if (!L->param_used[i])
            return fail(L, FUSE_E_SHAPE, (Span){0}, "the program declares no param '%s'",
                        L->params[i].name ? L->params[i].name : "(null)") != NULL;
    return true;
}

fuse_status fe_v2_lower(Arena *arena, const Source *src, const VProgram *prog,
                        const fuse_param *params, size_t n_params, DiagList *dl, Ast *out)
{
    memset(out, 0, sizeof *out);
    Lower L = {.arena = arena, .src = src, .dl = dl, .out = out, .params = params,
               .n_params = n_params};
    if (n_params && !(L.param_used = arena_alloc(arena, n_params * sizeof *L.param_used)))
        return FUSE_E_NOMEM;
    if (src->name && src->name[0] != '<') /* the program itself: a module importing it cycles */
        L.imports[L.n_imports++] = canonical(&L, src->name);
    if (collect_fns(&L, prog) && lower_stmts(&L, prog->stmts, prog->n_stmts))
        check_params_used(&L);
    if (arena->is_oom)
        return FUSE_E_NOMEM;
    if (!L.failed)
        return FUSE_OK;
    for (const Diag *d = dl->first; d; d = d->next)
        if (d->severity == DS_ERROR)
            return d->code;
    return FUSE_E_SYNTAX;
}
