/*
 * dump.c: the AST as an indented text tree, one node per line, for
 * `fuse-jit emit --what=ast` and for tests:
 *
 *     equation Y[i,j] op== rhs:
 *       product
 *         tensor A[i,k]
 *         tensor B[k,j]
 *
 * Statements: "equation LHS op=OP rhs:", "source LHS = \"path\"",
 * "sink \"path\" rhs:", "export NAME". Expressions: "number 2", "number 0.5",
 * "string \"s\"", "bool true", "none", "list", "dict" (children alternate key,
 * value), "tensor X[i]" / "tensor R(x,y)" / "tensor S", "call f" (then its
 * positional arguments and "kwarg name:" children), "indexfn even(i)", "sum"
 * (children prefixed "+ " or "- "), "product", "neg", "group".
 */
#include "frontend.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable malloc'd string; ok turns false on the first failed allocation. */
typedef struct Out {
    char *data;
    size_t len, cap;
    bool ok;
} Out;

/* Grows o to hold `extra` more bytes plus a NUL; false (and !ok) on failure. */
static bool out_reserve(Out *o, size_t extra)
{
    if (o->len + extra + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + extra + 1)
        cap *= 2;
    char *d = realloc(o->data, cap);
    if (!d) {
        o->ok = false;
        return false;
    }
    o->data = d;
    o->cap = cap;
    return true;
}

static void out_printf(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(Out *o, const char *fmt, ...)
{
    if (!o->ok || !out_reserve(o, 64))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= o->cap - o->len) { /* did not fit: grow and redo */
        if (!out_reserve(o, (size_t)n))
            return;
        va_start(ap, fmt);
        n = vsnprintf(o->data + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
    }
    if (n < 0) {
        o->ok = false;
        return;
    }
    o->len += (size_t)n;
}

static void out_indent(Out *o, int level)
{
    out_printf(o, "%*s", 2 * level, "");
}

/* A string literal with quotes and C escapes. */
static void out_quoted(Out *o, const char *s)
{
    out_printf(o, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out_printf(o, "\\%c", c);
        else if (c == '\n')
            out_printf(o, "\\n");
        else if (c == '\t')
            out_printf(o, "\\t");
        else if (c < 0x20 || c == 0x7F)
            out_printf(o, "\\x%02x", c);
        else
            out_printf(o, "%c", c);
    }
    out_printf(o, "\"");
}

/* The shortest decimal form that reads back exactly: fixed notation (at least one
 * decimal) for ordinary magnitudes, %g otherwise. */
static void out_double(Out *o, double v)
{
    char buf[64];
    bool fixed = v == 0 || (fabs(v) >= 1e-4 && fabs(v) < 1e15);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, fixed ? "%.*f" : "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    out_printf(o, "%s", buf);
}

static void out_index(Out *o, const Index *ix)
{
    switch (ix->kind) {
    case IX_AXIS:
    case IX_STREAM:
        out_printf(o, "%s%s", ix->kind == IX_STREAM ? "*" : "", ix->name);
        if (ix->offset)
            out_printf(o, "%+" PRId64, ix->offset);
        break;
    case IX_INT:
        out_printf(o, "%" PRId64, ix->offset);
        break;
    default:
        out_printf(o, "%s", ix->name);
        break;
    }
    if (ix->is_dotted)
        out_printf(o, ".");
}

/* NAME, NAME[i,j] or NAME(i,j). */
static void out_ref(Out *o, const char *name, const Index *ix, int n, bool is_paren)
{
    out_printf(o, "%s", name);
    if (n == 0)
        return;
    out_printf(o, "%c", is_paren ? '(' : '[');
    for (int i = 0; i < n; i++) {
        if (i)
            out_printf(o, ",");
        out_index(o, &ix[i]);
    }
    out_printf(o, "%c", is_paren ? ')' : ']');
}

static void out_expr(Out *o, const Expr *e, int level, const char *prefix);

/* The header line of one expression node (no newline). */
static void out_expr_head(Out *o, const Expr *e)
{
    static const char *const heads[] = {"number", "string", "bool", "none", "list", "dict",
                                        "tensor", "call", "indexfn", "sum", "product",
                                        "neg", "group"};
    _Static_assert(sizeof heads / sizeof heads[0] == EX_COUNT, "one head per kind");
    out_printf(o, "%s", (unsigned)e->kind < EX_COUNT ? heads[e->kind] : "?");
    switch (e->kind) {
    case EX_NUMBER:
        out_printf(o, " ");
        if (e->is_int)
            out_printf(o, "%" PRId64, e->ival);
        else
            out_double(o, e->num);
        break;
    case EX_STRING:
        out_printf(o, " ");
        out_quoted(o, e->str);
        break;
    case EX_BOOL:
        out_printf(o, " %s", e->num != 0 ? "true" : "false");
        break;
    case EX_TENSOR:
        out_printf(o, " ");
        out_ref(o, e->name, e->indices, e->n_indices, e->is_paren);
        break;
    case EX_CALL:
        out_printf(o, " %s", e->name);
        break;
    case EX_INDEXFN:
        out_printf(o, " %s(%s)", e->name, e->axis_name ? e->axis_name : "");
        break;
    default:
        break;
    }
}

static void out_expr(Out *o, const Expr *e, int level, const char *prefix)
{
    out_indent(o, level);
    out_printf(o, "%s", prefix);
    if (!e) {
        out_printf(o, "(null)\n");
        return;
    }
    out_expr_head(o, e);
    out_printf(o, "\n");
    for (int i = 0; i < e->n_items; i++) {
        const char *p = "";
        if (e->kind == EX_SUM)
            p = e->signs && e->signs[i] < 0 ? "- " : "+ ";
        out_expr(o, e->items[i], level + 1, p);
    }
    for (int i = 0; i < e->n_kwargs; i++) {
        out_indent(o, level + 1);
        out_printf(o, "kwarg %s:\n", e->kwargs[i].name);
        out_expr(o, e->kwargs[i].value, level + 2, "");
    }
}

static void out_stmt(Out *o, const Stmt *s)
{
    static const char *const ops[] = {"=", "+=", "max=", "avg=", "prod=", "min="};
    _Static_assert(sizeof ops / sizeof ops[0] == AOP_COUNT, "one spelling per operator");
    switch (s->kind) {
    case ST_EQUATION:
        out_printf(o, "equation ");
        out_ref(o, s->name, s->indices, s->n_indices, s->is_paren);
        out_printf(o, " op=%s rhs:\n", (unsigned)s->op < AOP_COUNT ? ops[s->op] : "?");
        out_expr(o, s->rhs, 1, "");
        break;
    case ST_SOURCE:
        out_printf(o, "source ");
        out_ref(o, s->name, s->indices, s->n_indices, s->is_paren);
        out_printf(o, " = ");
        out_quoted(o, s->path);
        out_printf(o, "\n");
        break;
    case ST_SINK:
        out_printf(o, "sink ");
        out_quoted(o, s->path);
        out_printf(o, " rhs:\n");
        out_expr(o, s->rhs, 1, "");
        break;
    case ST_EXPORT:
        out_printf(o, "export %s\n", s->name);
        break;
    default:
        out_printf(o, "?\n");
        break;
    }
}

char *fe_ast_dump(const Ast *ast)
{
    Out o = {.ok = true};
    out_printf(&o, "%s", "");
    for (int i = 0; ast && i < ast->n_stmts; i++)
        out_stmt(&o, ast->stmts[i]);
    if (!o.ok) {
        free(o.data);
        return NULL;
    }
    return o.data;
}
