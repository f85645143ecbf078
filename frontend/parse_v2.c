/*
 * parse_v2.c: recursive-descent parser for the structured ("v2") syntax (SPEC §4,
 * notes C §2.1), a superset of the legacy syntax.
 *
 *   program  := sep* [ top { sep+ top } ] sep* EOF          sep := NEWLINE | ";"
 *   top      := import | export | param | axis | const | fn | stmt
 *   stmt     := equation | "let" lhs "=" expr | "{" stmts "}" | sink
 *   equation := lhs [ "when" expr ] ( "=" | "+=" | "max=" | "avg=" ) expr
 *   expr     := or [ "?" expr ":" expr ]
 *   or := and { "||" and }     and := cmp { "&&" cmp }     cmp := add [ CMP add ]
 *   add := mul { ("+"|"-") mul }
 *   mul := pow { ("*" | "/" | <juxtaposition>) pow }
 *   pow := unary [ "**" pow ]       unary := ("-" | "!") unary | primary
 *   primary := NUMBER | STRING | NAME | NAME[items] | NAME(items) | call | @macro(...)
 *            | "(" expr ")" | list | dict | case { ... } | reduce(op, axes) mul
 *
 * The legacy forms keep their legacy reading: juxtaposition is a product at the
 * level of '*' (the lowering keeps its legacy contraction), `Name(i, j)` is a
 * boolean tensor when Name is no function and the content reads as index items,
 * sources, sinks, `+=`, `max=`, `avg=` and literals in arguments parse as in
 * parser.c. Keywords (let, fn, param, axis, const, import, export) are keywords
 * only where a declaration can start and a name follows, so legacy programs
 * that use these words as tensor names keep working.
 *
 * Newlines and ';' separate statements; inside ( ) and [ ] newlines are blanks,
 * inside { } (blocks, case) they separate again. The whole token array is lexed
 * first, so speculation (paren tensors) is a rewind of `pos`. The first error
 * of a statement stops it; the parse goes on at the next top-level statement
 * (resync) until the diagnostics' error limit. Recursion is capped at
 * V2_MAX_DEPTH.
 */
#include "v2.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define V2_MAX_DEPTH 200
/* Tree height: long operator chains nest without recursion while parsing, but
 * every later walk of the tree recurses, so their height is bounded too. */
#define V2_MAX_HEIGHT 2000

typedef struct VP {
    Arena *arena;
    const Source *src;
    DiagList *dl;
    Token *toks;
    int n_toks;
    int pos;
    Token *last;     /* last consumed token */
    int nest;        /* open ( and [ : newlines are blanks while > 0 */
    int depth;
    bool failed;     /* the statement being parsed hit an error */
    int n_failed;    /* top-level statements that failed (the parse goes on) */
    int quiet;       /* > 0: speculative, errors are not reported */
    const char *note_msg; /* a note for the next error (unclosed brackets) */
    Span note_span;
    const char **fns;/* names defined with fn (so Name(...) is a call) */
    int n_fns;
} VP;

/* ---- tokens ---- */

static Token *peek(VP *P)
{
    while (P->nest > 0 && P->toks[P->pos].kind == TK_NEWLINE)
        P->pos++;
    return &P->toks[P->pos];
}

static Token *next(VP *P)
{
    Token *t = peek(P);
    if (t->kind != TK_EOF)
        P->pos++;
    P->last = t;
    return t;
}

static bool glued(const Token *a, const Token *b)
{
    return a && b->kind != TK_EOF && a->text + a->len == b->text;
}

static bool is_char(const Token *t, char c)
{
    return (t->kind == TK_PUNCT || t->kind == TK_OP_ASSIGN) && !t->err && t->len == 1 &&
           t->text[0] == c;
}

static bool is_name(const Token *t, const char *name)
{
    return t->kind == TK_NAME && t->len == (int)strlen(name) &&
           memcmp(t->text, name, (size_t)t->len) == 0;
}

static bool is_assign(const Token *t, const char *op)
{
    return t->kind == TK_OP_ASSIGN && t->len == (int)strlen(op) &&
           memcmp(t->text, op, (size_t)t->len) == 0;
}

/* Two-character operators are two glued one-character tokens. */
static const char *const OPS2[] = {"**", "&&", "||", "==", "!=", "<=", ">=", "->", "::"};

/* True when the tokens at peek() spell op (one or two characters); a one-character
 * op is not matched where it starts a two-character one ('*' of "**"). */
static bool at(VP *P, const char *op)
{
    Token *t = peek(P);
    if (!is_char(t, op[0]))
        return false;
    Token *u = t + 1;
    if (op[1])
        return is_char(u, op[1]) && glued(t, u);
    for (size_t i = 0; i < sizeof OPS2 / sizeof OPS2[0]; i++)
        if (OPS2[i][0] == op[0] && is_char(u, OPS2[i][1]) && glued(t, u))
            return false;
    return true;
}

/* Consumes op (see at()); returns its first token. */
static Token *take(VP *P, const char *op)
{
    Token *t = next(P);
    if (op[1])
        P->last = &P->toks[P->pos++];
    return t;
}

/* ---- errors ---- */

static void *error_span(VP *P, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *error_span(VP *P, Span span, const char *fmt, ...)
{
    const char *note = P->note_msg;
    P->note_msg = NULL;
    if (P->failed)
        return NULL;
    P->failed = true;
    if (P->quiet)
        return NULL;
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fe_error(P->dl, FUSE_E_SYNTAX, span, "%s", buf);
    if (note)
        fe_note(P->dl, P->note_span, "%s", note);
    return NULL;
}

/* "expected X, found Y"; a malformed token reports the lexer's message. */
static void *expected(VP *P, const Token *t, const char *what)
{
    if (t->kind == TK_EOF && P->last) { /* just past the last character */
        Span end = P->last->span;
        end.col += end.len;
        end.len = 1;
        return error_span(P, end, "expected %s, found the end of input", what);
    }
    if (t->err)
        return error_span(P, t->span, "%s", t->err);
    if (t->kind == TK_STRING)
        return error_span(P, t->span, "expected %s, found a string (strings are only "
                          "allowed as source and sink paths and in import)", what);
    return error_span(P, t->span, "expected %s, found %s", what, fe_tok_describe(t).s);
}

/* No closer for a bracket open before token i up to the end of the statement
 * (EOF, ';' outside brackets, or a newline before an unindented line). */
static bool never_closed(VP *P, int i)
{
    int depth = 1;
    for (; i < P->n_toks; i++) {
        const Token *t = &P->toks[i];
        if (t->kind == TK_EOF)
            return true;
        if (t->kind == TK_NEWLINE && i + 1 < P->n_toks && P->toks[i + 1].span.col == 1)
            return true;
        if (depth == 1 && is_char(t, ';'))
            return true;
        bool open = is_char(t, '(') || is_char(t, '[') || is_char(t, '{');
        bool close = is_char(t, ')') || is_char(t, ']') || is_char(t, '}');
        depth += open - close;
        if (depth == 0)
            return false;
    }
    return true;
}

/* A bracket's closer is missing where the parser is: an unclosed bracket is
 * reported where it was opened, with a note here; else "expected ALTS to close
 * '(' opened at line N, found ...". */
static void *close_error(VP *P, const Token *open, const char *alts)
{
    Token *t = peek(P);
    char want[96];
    if (!t->err && never_closed(P, (int)(t - P->toks))) {
        Span at = t->span;
        if (t->kind == TK_EOF && P->last) { /* just past the last character */
            at = P->last->span;
            at.col += at.len;
            at.len = 1;
        }
        snprintf(want, sizeof want, "expected %s to close it, found %s", alts,
                 t->kind == TK_EOF ? "the end of input" : fe_tok_describe(t).s);
        P->note_msg = arena_strdup(P->arena, want);
        P->note_span = at;
        return error_span(P, open->span, "'%c' is never closed", open->text[0]);
    }
    snprintf(want, sizeof want, "%s to close '%c' opened at line %d", alts, open->text[0],
             open->span.line);
    return expected(P, t, want);
}

static bool expect(VP *P, const char *op, const char *what)
{
    if (at(P, op)) {
        take(P, op);
        return true;
    }
    expected(P, peek(P), what);
    return false;
}

/* ---- memory ---- */

static void *alloc(VP *P, size_t size)
{
    void *p = arena_alloc(P->arena, size);
    if (!p)
        P->failed = true;
    return p;
}

/* Appends elem (size bytes) to the arena vector *arr of *n items. Vectors grow
 * by doubling at powers of two, so the capacity need not be stored. */
static bool push(VP *P, void *arr, int *n, const void *elem, size_t size)
{
    char *items;
    memcpy(&items, arr, sizeof items);
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, ...: full */
        int cap = *n ? *n * 2 : 1;
        if (*n > (1 << 26))
            return error_span(P, peek(P)->span, "program too large") != NULL;
        char *grown = arena_grow(P->arena, items, (size_t)*n * size, (size_t)cap * size);
        if (!grown) {
            P->failed = true;
            return false;
        }
        items = grown;
        memcpy(arr, &items, sizeof items);
    }
    memcpy(items + (size_t)*n * size, elem, size);
    (*n)++;
    return true;
}

static char *tok_str(VP *P, const Token *t)
{
    char *s = arena_strndup(P->arena, t->text, (size_t)t->len);
    if (!s)
        P->failed = true;
    return s;
}

static char *text_between(VP *P, const Token *a, const Token *b)
{
    if (!a || !b || b->text + b->len < a->text)
        return arena_strdup(P->arena, "");
    char *s = arena_strndup(P->arena, a->text, (size_t)(b->text + b->len - a->text));
    if (!s)
        P->failed = true;
    return s;
}

static int chars_between(const Token *a, const Token *b)
{
    int n = 0;
    for (const char *p = a->text; p < b->text + b->len; p++)
        n += ((unsigned char)*p & 0xC0) != 0x80;
    return n > 0 ? n : 1;
}

static VNode *node(VP *P, VKind kind, const Token *first)
{
    VNode *n = alloc(P, sizeof *n);
    if (n) {
        n->kind = kind;
        n->span = first->span;
    }
    return n;
}

/* Sets n's text from token first to the last consumed one. */
static VNode *finish(VP *P, VNode *n, const Token *first)
{
    if (!n)
        return NULL;
    /* a pointer into the source, not a copy: nested chains stay linear */
    n->text = first->text;
    n->text_len = P->last->text + P->last->len > first->text
                      ? (int)(P->last->text + P->last->len - first->text) : 0;
    n->span.len = chars_between(first, P->last);
    return P->failed ? NULL : n;
}

static bool add_kid(VP *P, VNode *n, VNode *kid)
{
    if (!n || !kid || !push(P, &n->kids, &n->n_kids, &kid, sizeof kid))
        return false;
    if (kid->height + 1 > n->height)
        n->height = kid->height + 1;
    if (n->height > V2_MAX_HEIGHT)
        return error_span(P, kid->span, "expression too large (more than %d nested operators;"
                          " split it with let)", V2_MAX_HEIGHT) != NULL;
    return true;
}

static Expr *leaf_expr(VP *P, ExprKind kind, const Token *t)
{
    Expr *e = alloc(P, sizeof *e);
    if (e) {
        e->kind = kind;
        e->span = t->span;
    }
    return e;
}

static VNode *leaf(VP *P, Expr *e, const Token *first)
{
    VNode *n = e ? node(P, V_LEAF, first) : NULL;
    if (n)
        n->leaf = e;
    return finish(P, n, first);
}

static bool enter(VP *P)
{
    if (++P->depth <= V2_MAX_DEPTH)
        return true;
    P->depth--;
    int q = P->quiet;
    P->quiet = 0; /* too deep is an error whatever the reading */
    error_span(P, peek(P)->span, "expression nested too deeply (more than %d levels)",
               V2_MAX_DEPTH);
    P->quiet = q;
    return false;
}

/* ---- index items (the legacy forms of SPEC §3) ---- */

static bool invalid_index(VP *P, const Token *start, const char *why)
{
    return error_span(P, start->span, "invalid index '%.*s'%s", start->len, start->text, why)
           != NULL;
}

/* p', p'', p'q: primes glued to an axis name just read. */
static void glue_primes(VP *P)
{
    while (is_char(&P->toks[P->pos], '\'') && glued(P->last, &P->toks[P->pos])) {
        next(P);
        Token *r = &P->toks[P->pos];
        bool digits = r->kind == TK_NUMBER && r->is_int && !r->err;
        if ((r->kind == TK_NAME || digits) && glued(P->last, r))
            next(P);
    }
}

/* An optional glued "+k" / "-k" after an axis name. */
static bool index_offset(VP *P, Index *ix, const Token *start)
{
    Token *sign = &P->toks[P->pos];
    if (!(is_char(sign, '+') || is_char(sign, '-')) || !glued(P->last, sign))
        return true;
    next(P);
    Token *num = &P->toks[P->pos];
    int64_t v;
    bool dotted;
    if (!glued(sign, num) || !fe_tok_int(num, &v, &dotted))
        return invalid_index(P, start, ": an offset must be an integer, as in t+1 or t-1");
    next(P);
    ix->offset = sign->text[0] == '-' ? -v : v;
    ix->is_dotted = dotted;
    return true;
}

static bool axis_item(VP *P, Index *ix, const Token *start)
{
    next(P);
    glue_primes(P);
    ix->kind = IX_AXIS;
    if (!(ix->name = text_between(P, start, P->last)))
        return false;
    if (at(P, ":"))
        return error_span(P, start->span, "slice bounds must be integers: %s", ix->name) != NULL;
    return index_offset(P, ix, start);
}

static bool stream_item(VP *P, Index *ix, const Token *start)
{
    next(P);
    Token *name = &P->toks[P->pos];
    if (name->kind != TK_NAME || !glued(start, name))
        return invalid_index(P, start, ": a streaming index is *t, *t+1 or *t-1");
    next(P);
    glue_primes(P);
    ix->kind = IX_STREAM;
    if (!(ix->name = text_between(P, name, P->last)))
        return false;
    return index_offset(P, ix, start);
}

/* One slice bound or integer index: [sign] digits; absent is fine. */
static bool bound(VP *P, bool *present, int64_t *value, bool *dotted, const Token *start)
{
    *present = *dotted = false;
    Token *t = peek(P);
    bool sign = is_char(t, '+') || is_char(t, '-');
    if (!sign && t->kind != TK_NUMBER)
        return true;
    Token *num = sign ? t + 1 : t;
    if ((sign && !glued(t, num)) || !fe_tok_int(num, value, dotted))
        return invalid_index(P, start, ": slice bounds and positions must be integers");
    if (sign)
        next(P);
    next(P);
    if (sign && t->text[0] == '-')
        *value = -*value;
    *present = true;
    return true;
}

/* 0, -1, 0:3, ::2, -1:, : */
static bool numeric_item(VP *P, Index *ix, const Token *start)
{
    bool has[3] = {false, false, false}, dotted = false;
    int64_t v[3] = {0, 0, 0};
    int n = 1;
    if (!bound(P, &has[0], &v[0], &dotted, start))
        return false;
    while (n < 3 && at(P, ":")) {
        if (dotted)
            return invalid_index(P, start, "");
        next(P);
        if (!bound(P, &has[n], &v[n], &dotted, start))
            return false;
        n++;
    }
    if (at(P, ":"))
        return invalid_index(P, start, ": a slice is start:stop or start:stop:step");
    ix->is_dotted = dotted;
    if (n == 1) {
        if (!has[0])
            return invalid_index(P, start, "");
        ix->kind = IX_INT;
        ix->offset = v[0];
        return true;
    }
    ix->kind = IX_SLICE;
    ix->has_start = has[0];
    ix->start = v[0];
    ix->has_stop = has[1];
    ix->stop = v[1];
    ix->has_step = n == 3 && has[2];
    ix->step = n == 3 ? v[2] : 0;
    if (ix->has_step && ix->step == 0)
        return error_span(P, start->span, "slice step cannot be zero") != NULL;
    char buf[96];
    int len = 0;
    for (int i = 0; i < n && len < 80; i++) {
        if (i)
            buf[len++] = ':';
        if (has[i])
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%lld", (long long)v[i]);
    }
    ix->name = arena_strndup(P->arena, buf, (size_t)len);
    return ix->name != NULL;
}

static bool index_item(VP *P, Index *ix, char closer)
{
    Token *start = peek(P);
    memset(ix, 0, sizeof *ix);
    bool ok;
    if (is_char(start, '*'))
        ok = stream_item(P, ix, start);
    else if (start->kind == TK_NAME)
        ok = axis_item(P, ix, start);
    else if (start->kind == TK_NUMBER || is_char(start, '+') || is_char(start, '-') ||
             is_char(start, ':'))
        ok = numeric_item(P, ix, start);
    else
        ok = expected(P, start, "an index (an axis such as i, an integer, a slice such as "
                                "0:3, or a streaming index such as *t)") != NULL;
    if (!ok)
        return false;
    Token *r = &P->toks[P->pos];
    if (!ix->is_dotted && is_char(r, '.') && glued(P->last, r)) {
        next(P);
        ix->is_dotted = true;
    }
    r = &P->toks[P->pos];
    if (glued(P->last, r) && !is_char(r, ',') && !is_char(r, closer) && r->kind != TK_NEWLINE)
        return invalid_index(P, start, "");
    ix->span = start->span;
    ix->span.len = chars_between(start, P->last);
    return true;
}

/* "[" items "]" or "(" items ")"; empty brackets give no indices. */
static bool index_list(VP *P, Index **out, int *n_out)
{
    Token *open = next(P);
    char closer = open->text[0] == '[' ? ']' : ')';
    P->nest++;
    Index *arr = NULL;
    int n = 0;
    while (!is_char(peek(P), closer)) {
        Index ix;
        if (!index_item(P, &ix, closer) || !push(P, &arr, &n, &ix, sizeof ix))
            return false;
        if (is_char(peek(P), closer))
            break;
        if (!is_char(peek(P), ',')) {
            char alts[16];
            snprintf(alts, sizeof alts, "',' or '%c'", closer);
            return close_error(P, open, alts) != NULL;
        }
        next(P);
    }
    next(P);
    P->nest--;
    if (n > FUSE_MAX_RANK)
        return error_span(P, open->span, "a tensor has at most %d axes; this one is indexed "
                          "with %d", FUSE_MAX_RANK, n) != NULL;
    *out = arr;
    *n_out = n;
    return true;
}

/* ---- expressions ---- */

static VNode *parse_expr(VP *P);
static VNode *parse_mul(VP *P);
static VNode *parse_unary(VP *P);

static const char *const KEYWORDS[] = {"let", "fn", "param", "axis", "const", "import",
                                       "export", "when", "case", "default", "reduce"};

static bool is_keyword(const Token *t)
{
    for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
        if (is_name(t, KEYWORDS[i]))
            return true;
    return false;
}

static bool is_user_fn(const VP *P, const char *name, int len)
{
    for (int i = 0; i < P->n_fns; i++)
        if ((int)strlen(P->fns[i]) == len && memcmp(P->fns[i], name, (size_t)len) == 0)
            return true;
    return false;
}

static VNode *number_leaf(VP *P)
{
    Token *t = next(P);
    if (t->err)
        return error_span(P, t->span, "%s", t->err);
    Expr *e = leaf_expr(P, EX_NUMBER, t);
    if (!e)
        return NULL;
    e->is_int = t->is_int;
    e->ival = t->ival;
    e->num = t->is_int ? (double)t->ival : t->fval;
    return leaf(P, e, t);
}

static VNode *parse_literal(VP *P);

/* list := "[" [literal {"," literal} [","]] "]"; dict := "{" [lit ":" lit {...}] "}" */
static VNode *parse_collection(VP *P)
{
    Token *open = next(P);
    bool is_dict = open->text[0] == '{';
    char closer = is_dict ? '}' : ']';
    int saved = P->nest;
    P->nest = saved + 1;
    Expr *e = leaf_expr(P, is_dict ? EX_DICT : EX_LIST, open);
    if (!e)
        return NULL;
    while (!is_char(peek(P), closer)) {
        VNode *k = parse_literal(P);
        if (!k || !push(P, &e->items, &e->n_items, &k->leaf, sizeof k->leaf))
            return NULL;
        if (is_dict) {
            if (!expect(P, ":", "':' after the dict key"))
                return NULL;
            VNode *v = parse_literal(P);
            if (!v || !push(P, &e->items, &e->n_items, &v->leaf, sizeof v->leaf))
                return NULL;
        }
        if (is_char(peek(P), closer))
            break;
        char alts[16];
        snprintf(alts, sizeof alts, "',' or '%c'", closer);
        if (!is_char(peek(P), ','))
            return close_error(P, open, alts);
        next(P);
    }
    next(P);
    P->nest = saved;
    return leaf(P, e, open);
}

static VNode *keyword_literal(VP *P)
{
    Token *t = next(P);
    bool none = t->len == 4 && (t->text[0] == 'n' || t->text[0] == 'N');
    Expr *e = leaf_expr(P, none ? EX_NONE : EX_BOOL, t);
    if (e && !none)
        e->num = t->text[0] == 't' || t->text[0] == 'T';
    return leaf(P, e, t);
}

static bool is_keyword_literal(const Token *t)
{
    static const char *const words[] = {"true", "false", "none", "True", "False", "None",
                                        "TRUE", "FALSE", "NONE"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (is_name(t, words[i]))
            return true;
    return false;
}

/* A literal inside a list or dict: [sign] number, string, true/false/none, list, dict. */
static VNode *parse_literal(VP *P)
{
    if (!enter(P))
        return NULL;
    Token *t = peek(P);
    VNode *n;
    if (t->kind == TK_NUMBER) {
        n = number_leaf(P);
    } else if ((is_char(t, '-') || is_char(t, '+')) && (t + 1)->kind == TK_NUMBER &&
               glued(t, t + 1)) {
        next(P);
        n = number_leaf(P);
        if (n && t->text[0] == '-') {
            n->leaf->num = -n->leaf->num;
            n->leaf->ival = -n->leaf->ival;
        }
    } else if (t->kind == TK_STRING) {
        Expr *e = leaf_expr(P, EX_STRING, next(P));
        if (e)
            e->str = t->str;
        n = leaf(P, e, t);
    } else if (is_keyword_literal(t)) {
        n = keyword_literal(P);
    } else if (is_char(t, '[') || is_char(t, '{')) {
        n = parse_collection(P);
    } else {
        n = expected(P, t, "a literal (a number, string, true, false, none, list or dict)");
    }
    P->depth--;
    return n;
}

/* A keyword argument starts here: NAME "=" (not "=="), or the token max= / avg=. */
static bool at_kwarg(VP *P)
{
    Token *t = peek(P);
    if (is_assign(t, "max=") || is_assign(t, "avg="))
        return true;
    if (t->kind != TK_NAME)
        return false;
    Token *u = t + 1;
    while (P->nest > 0 && u->kind == TK_NEWLINE)
        u++;
    return is_assign(u, "=") && !(is_char(u + 1, '=') && glued(u, u + 1));
}

static bool parse_kwarg(VP *P, VNode *call)
{
    Token *kw = next(P);
    bool joined = kw->kind == TK_OP_ASSIGN; /* max= / avg= */
    VKwarg k = {.span = kw->span};
    k.name = arena_strndup(P->arena, kw->text, (size_t)(joined ? kw->len - 1 : kw->len));
    if (!k.name)
        return P->failed = true, false;
    if (!joined)
        next(P);
    for (int i = 0; i < call->n_kwargs; i++)
        if (strcmp(call->kwargs[i].name, k.name) == 0)
            return error_span(P, k.span, "duplicate keyword argument '%s'", k.name) != NULL;
    k.value = (is_char(peek(P), '[') || is_char(peek(P), '{')) ? parse_collection(P)
                                                               : parse_expr(P);
    if (k.value && k.value->height + 1 > call->height)
        call->height = k.value->height + 1;
    if (call->height > V2_MAX_HEIGHT)
        return error_span(P, k.span, "expression too large (more than %d nested operators)",
                          V2_MAX_HEIGHT) != NULL;
    return k.value && push(P, &call->kwargs, &call->n_kwargs, &k, sizeof k);
}

/* "(" [ arg { "," arg } [","] ] ")", arg := NAME "=" expr | list | dict | expr */
static bool parse_args(VP *P, VNode *call)
{
    Token *open = next(P);
    P->nest++;
    while (!is_char(peek(P), ')')) {
        if (at_kwarg(P)) {
            if (!parse_kwarg(P, call))
                return false;
        } else {
            Token *t = peek(P);
            VNode *a = (is_char(t, '[') || is_char(t, '{')) ? parse_collection(P)
                                                            : parse_expr(P);
            if (!add_kid(P, call, a))
                return false;
        }
        if (is_char(peek(P), ')'))
            break;
        if (!is_char(peek(P), ','))
            return close_error(P, open, "',' or ')'") != NULL;
        next(P);
    }
    next(P);
    P->nest--;
    return true;
}

/* even(i) / odd(axis=i): the legacy index functions. */
static VNode *parse_indexfn(VP *P, const Token *name)
{
    Expr *e = leaf_expr(P, EX_INDEXFN, name);
    if (!e || !(e->name = tok_str(P, name)))
        return NULL;
    for (char *c = (char *)e->name; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    Token *open = peek(P);
    int saved = P->pos, saved_nest = P->nest, errors = P->dl->n_errors;
    Index *ix = NULL;
    int n = 0;
    P->quiet++;
    bool ok = index_list(P, &ix, &n);
    P->quiet--;
    if (ok && n == 1 && ix[0].kind == IX_AXIS && ix[0].offset == 0 && !ix[0].is_dotted) {
        e->axis_name = ix[0].name;
        return leaf(P, e, name);
    }
    if (P->dl->n_errors > errors) /* too deep: reported whatever the reading */
        return NULL;
    P->failed = false;
    P->pos = saved;
    P->nest = saved_nest;
    VNode *call = node(P, V_CALL, name);
    if (!call || !parse_args(P, call))
        return NULL;
    const VNode *v = call->n_kids == 1 && call->n_kwargs == 0 ? call->kids[0]
                   : call->n_kids == 0 && call->n_kwargs == 1 &&
                     strcmp(call->kwargs[0].name, "axis") == 0 ? call->kwargs[0].value : NULL;
    if (!v || v->kind != V_NAME)
        return error_span(P, open->span, "%s takes one axis name, as in %s(i) or "
                          "%s(axis=i)", e->name, e->name, e->name);
    e->axis_name = v->name;
    return leaf(P, e, name);
}

/* NAME(...) where NAME is no function: a boolean tensor when the content reads as
 * index items, else a call (an unknown function, reported by the lowering). */
static VNode *parse_paren_tensor(VP *P, const Token *name)
{
    int saved = P->pos, saved_nest = P->nest, errors = P->dl->n_errors;
    Expr *e = leaf_expr(P, EX_TENSOR, name);
    if (!e || !(e->name = tok_str(P, name)))
        return NULL;
    P->quiet++;
    bool ok = index_list(P, &e->indices, &e->n_indices);
    P->quiet--;
    if (ok) {
        e->is_paren = e->n_indices > 0;
        return leaf(P, e, name);
    }
    if (P->dl->n_errors > errors) /* too deep: reported whatever the reading */
        return NULL;
    P->failed = false;
    P->pos = saved;
    P->nest = saved_nest;
    VNode *call = node(P, V_CALL, name);
    if (!call || !(call->name = e->name) || !parse_args(P, call))
        return NULL;
    return finish(P, call, name);
}

/* NAME { "::" NAME } "(" args ")" */
static VNode *parse_call(VP *P, const Token *first)
{
    while (at(P, "::")) {
        take(P, "::");
        if (peek(P)->kind != TK_NAME)
            return expected(P, peek(P), "a name after '::'");
        next(P);
    }
    VNode *call = node(P, V_CALL, first);
    if (!call || !(call->name = text_between(P, first, P->last)))
        return NULL;
    if (!is_char(peek(P), '(') || !glued(P->last, peek(P))) { /* m::c: a module's const */
        call->kind = V_NAME;
        return finish(P, call, first);
    }
    if (!parse_args(P, call))
        return NULL;
    return finish(P, call, first);
}

/* reduce "(" OP "," AXIS { "," AXIS } ")" mul */
static VNode *parse_reduce(VP *P)
{
    Token *first = next(P);
    VNode *n = node(P, V_REDUCE, first);
    if (!n)
        return NULL;
    next(P); /* '(' */
    P->nest++;
    if (peek(P)->kind != TK_NAME)
        return expected(P, peek(P), "a reduction (sum, max, min, mean or prod)");
    if (!(n->name = tok_str(P, next(P))))
        return NULL;
    if (!is_char(peek(P), ','))
        return expected(P, peek(P), "',' and the axes to reduce, as in reduce(sum, j)");
    while (is_char(peek(P), ',')) {
        next(P);
        Token *a = peek(P);
        if (a->kind != TK_NAME)
            return expected(P, a, "an axis name");
        next(P);
        glue_primes(P);
        const char *name = text_between(P, a, P->last);
        Span sp = a->span;
        sp.len = chars_between(a, P->last);
        int n_spans = n->n_axes;
        if (!name || !push(P, &n->axis_spans, &n_spans, &sp, sizeof sp) ||
            !push(P, &n->axes, &n->n_axes, &name, sizeof name))
            return NULL;
    }
    if (!expect(P, ")", "')' to close reduce("))
        return NULL;
    P->nest--;
    Token *t = peek(P);
    if (t->kind == TK_NEWLINE || t->kind == TK_EOF || is_char(t, ';') || is_char(t, '}'))
        return expected(P, t, "the body of reduce(...)");
    if (!add_kid(P, n, parse_mul(P)))
        return NULL;
    return finish(P, n, first);
}

/* Separators inside { }: newlines and ';'. */
static void skip_seps(VP *P)
{
    while (peek(P)->kind == TK_NEWLINE || is_char(peek(P), ';'))
        next(P);
}

/* case "{" branch { sep branch } [ sep "default" "->" expr ] "}" */
static VNode *parse_case(VP *P)
{
    Token *first = next(P);
    VNode *n = node(P, V_CASE, first);
    Token *open = next(P);
    int saved = P->nest;
    P->nest = 0;
    if (!n)
        return NULL;
    for (;;) {
        skip_seps(P);
        Token *t = peek(P);
        if (is_char(t, '}'))
            break;
        if (n->has_default)
            return expected(P, t, "'}' after the default branch");
        bool is_default = is_name(t, "default");
        if (is_default) {
            next(P);
            n->has_default = true;
        } else if (!add_kid(P, n, parse_expr(P))) {
            return NULL;
        }
        if (!expect(P, "->", "'->' after the condition") || !add_kid(P, n, parse_expr(P)))
            return NULL;
        t = peek(P);
        if (!is_char(t, '}') && t->kind != TK_NEWLINE && !is_char(t, ';'))
            return expected(P, t, "';', a newline or '}' after a case branch");
    }
    if (n->n_kids == 0 || (n->has_default && n->n_kids == 1))
        return error_span(P, open->span, "case needs at least one 'condition -> value' "
                          "branch");
    next(P);
    P->nest = saved;
    return finish(P, n, first);
}

/* "@" NAME "(" args ")" */
static VNode *parse_macro(VP *P)
{
    Token *at_tok = next(P);
    Token *name = peek(P);
    if (name->kind != TK_NAME || !glued(at_tok, name))
        return expected(P, name, "a macro name after '@', as in @softmax(x, axis=j)");
    next(P);
    VNode *n = node(P, V_MACRO, at_tok);
    if (!n || !(n->name = tok_str(P, name)))
        return NULL;
    if (!is_char(peek(P), '('))
        return expected(P, peek(P), "'(' after the macro name");
    if (!parse_args(P, n))
        return NULL;
    return finish(P, n, at_tok);
}

static VNode *parse_name_primary(VP *P)
{
    Token *t = peek(P);
    Token *r = t + 1;
    if (is_name(t, "reduce") && is_char(r, '('))
        return parse_reduce(P);
    if (is_name(t, "case") && is_char(r, '{'))
        return parse_case(P);
    bool call = is_char(r, '(') && glued(t, r);
    /* const(...) and case(...) are the builtins; a legacy tensor may be named
     * like a keyword when it is indexed (let[i]) */
    if (is_keyword(t) && !(call && (is_name(t, "const") || is_name(t, "case"))) &&
        !is_char(r, '['))
        return error_span(P, t->span, "'%.*s' is a reserved word and cannot be used here",
                          t->len, t->text);
    if (!call && !is_char(r, '[') && is_keyword_literal(t))
        return keyword_literal(P);
    next(P);
    if (is_char(r, ':') && is_char(r + 1, ':') && glued(r, r + 1))
        return parse_call(P, t);
    if (call) {
        bool even_odd = (t->len == 4 && strncasecmp(t->text, "even", 4) == 0) ||
                        (t->len == 3 && strncasecmp(t->text, "odd", 3) == 0);
        if (even_odd)
            return parse_indexfn(P, t);
        char *name = tok_str(P, t);
        if (!name)
            return NULL;
        if (fe_is_builtin(name) || is_user_fn(P, t->text, t->len) ||
            strcmp(name, "select") == 0 || strcmp(name, "pow") == 0)
            return parse_call(P, t);
        return parse_paren_tensor(P, t);
    }
    if (is_char(r, '[')) {
        Expr *e = leaf_expr(P, EX_TENSOR, t);
        if (!e || !(e->name = tok_str(P, t)) || !index_list(P, &e->indices, &e->n_indices))
            return NULL;
        return leaf(P, e, t);
    }
    VNode *n = node(P, V_NAME, t);
    if (n)
        n->name = tok_str(P, t);
    return finish(P, n, t);
}

static VNode *parse_group(VP *P)
{
    Token *open = next(P);
    P->nest++;
    VNode *n = node(P, V_GROUP, open);
    if (!add_kid(P, n, parse_expr(P)))
        return NULL;
    if (!is_char(peek(P), ')'))
        return close_error(P, open, "')'");
    next(P);
    P->nest--;
    return finish(P, n, open);
}

static VNode *parse_primary(VP *P)
{
    Token *t = peek(P);
    switch (t->kind) {
    case TK_NAME:
        return parse_name_primary(P);
    case TK_NUMBER:
        return number_leaf(P);
    case TK_STRING: {
        Expr *e = leaf_expr(P, EX_STRING, next(P));
        if (e)
            e->str = t->str;
        return leaf(P, e, t);
    }
    default:
        if (is_char(t, '('))
            return parse_group(P);
        if (is_char(t, '['))
            return parse_collection(P);
        if (is_char(t, '@'))
            return parse_macro(P);
        return expected(P, t, "an expression");
    }
}

/* unary := ("-" | "!") unary | "+" NUMBER | primary */
static VNode *parse_unary(VP *P)
{
    if (!enter(P))
        return NULL;
    Token *t = peek(P);
    VNode *n;
    if (at(P, "-") || at(P, "!")) {
        next(P);
        n = node(P, V_UNARY, t);
        if (n)
            n->op = t->text[0] == '-' ? VO_NEG : VO_NOT;
        if (!add_kid(P, n, parse_unary(P)))
            n = NULL;
        n = finish(P, n, t);
    } else if (at(P, "+")) {
        next(P);
        n = peek(P)->kind == TK_NUMBER && glued(t, peek(P))
                ? number_leaf(P)
                : expected(P, peek(P), "a number after '+' (unary plus is only allowed "
                                       "on numbers)");
    } else {
        n = parse_primary(P);
    }
    P->depth--;
    return n;
}

static VNode *binary(VP *P, VOp op, VNode *a, VNode *b, const Token *first)
{
    if (!a || !b)
        return NULL;
    VNode *n = node(P, V_BINARY, first);
    if (!n)
        return NULL;
    n->op = op;
    if (!add_kid(P, n, a) || !add_kid(P, n, b))
        return NULL;
    n->span = a->span;
    return finish(P, n, first);
}

/* pow := unary [ "**" pow ] (right associative; -x ** y is (-x) ** y) */
static VNode *parse_pow(VP *P)
{
    Token *first = peek(P);
    VNode *a = parse_unary(P);
    if (!a || !at(P, "**"))
        return a;
    take(P, "**");
    if (!enter(P))
        return NULL;
    VNode *b = parse_pow(P);
    P->depth--;
    return binary(P, VO_POW, a, b, first);
}

/* A primary that can follow another by juxtaposition (a legacy product). */
static bool at_juxtaposed(VP *P)
{
    Token *t = peek(P);
    if (t->kind == TK_NAME)
        return !is_keyword(t) || is_char(t + 1, '[') ||
               (is_name(t, "reduce") && is_char(t + 1, '(')) ||
               ((is_name(t, "const") || is_name(t, "case")) && is_char(t + 1, '(') &&
                glued(t, t + 1)) ||
               (is_name(t, "case") && is_char(t + 1, '{'));
    return t->kind == TK_NUMBER || t->kind == TK_STRING || is_char(t, '(') || is_char(t, '@');
}

/* mul := pow { ("*" | "/" | juxtaposition) pow } */
static VNode *parse_mul(VP *P)
{
    Token *first = peek(P);
    VNode *a = parse_pow(P), *juxt = NULL;
    while (a) {
        if (at(P, "*") || at(P, "/")) {
            VOp op = next(P)->text[0] == '*' ? VO_MUL : VO_DIV;
            a = binary(P, op, a, parse_pow(P), first);
        } else if (at_juxtaposed(P)) {
            if (a != juxt) { /* a new juxtaposition starts with what came before */
                juxt = node(P, V_JUXT, first);
                if (!add_kid(P, juxt, a))
                    return NULL;
                a = juxt;
            }
            if (!add_kid(P, a, parse_pow(P)))
                return NULL;
            a = finish(P, a, first);
        } else {
            break;
        }
    }
    return a;
}

/* add := mul { ("+" | "-") mul } */
static VNode *parse_add(VP *P)
{
    Token *first = peek(P);
    VNode *a = parse_mul(P);
    while (a && (at(P, "+") || at(P, "-"))) {
        VOp op = next(P)->text[0] == '+' ? VO_ADD : VO_SUB;
        a = binary(P, op, a, parse_mul(P), first);
    }
    return a;
}

/* cmp := add [ ("<" | "<=" | ">" | ">=" | "==" | "!=") add ] (left associative) */
static VNode *parse_cmp(VP *P)
{
    static const char *const ops[] = {"<=", ">=", "==", "!=", "<", ">"};
    static const VOp codes[] = {VO_LE, VO_GE, VO_EQ, VO_NE, VO_LT, VO_GT};
    Token *first = peek(P);
    VNode *a = parse_add(P);
    for (bool again = true; a && again;) {
        again = false;
        for (int i = 0; i < 6 && !again; i++)
            if (at(P, ops[i])) {
                take(P, ops[i]);
                a = binary(P, codes[i], a, parse_add(P), first);
                again = true;
            }
    }
    return a;
}

static VNode *parse_and(VP *P)
{
    Token *first = peek(P);
    VNode *a = parse_cmp(P);
    while (a && at(P, "&&")) {
        take(P, "&&");
        a = binary(P, VO_AND, a, parse_cmp(P), first);
    }
    return a;
}

static VNode *parse_or(VP *P)
{
    Token *first = peek(P);
    VNode *a = parse_and(P);
    while (a && at(P, "||")) {
        take(P, "||");
        a = binary(P, VO_OR, a, parse_and(P), first);
    }
    return a;
}

/* expr := or [ "?" expr ":" expr ] */
static VNode *parse_expr(VP *P)
{
    if (!enter(P))
        return NULL;
    Token *first = peek(P);
    VNode *c = parse_or(P);
    if (c && at(P, "?")) {
        next(P);
        VNode *n = node(P, V_TERNARY, first);
        if (!add_kid(P, n, c) || !add_kid(P, n, parse_expr(P)) ||
            !expect(P, ":", "':' of the conditional c ? a : b") ||
            !add_kid(P, n, parse_expr(P)))
            c = NULL;
        else
            c = finish(P, n, first);
    }
    P->depth--;
    return c;
}

/* ---- statements ---- */

static VStmt *parse_stmt(VP *P, bool top);

/* lhs := NAME [ "[" items "]" | "(" items ")" ] */
static bool parse_lhs(VP *P, VLhs *lhs)
{
    Token *t = peek(P);
    if (t->kind != TK_NAME)
        return expected(P, t, "a tensor name") != NULL;
    if (is_keyword(t) && !is_char(t + 1, '[')) /* let[i] = ...: a legacy tensor */
        return error_span(P, t->span, "'%.*s' is a reserved word and cannot name a tensor",
                          t->len, t->text) != NULL;
    next(P);
    lhs->span = t->span;
    if (!(lhs->name = tok_str(P, t)))
        return false;
    Token *r = &P->toks[P->pos];
    if (is_char(r, '[') || is_char(r, '(')) {
        if (!index_list(P, &lhs->indices, &lhs->n_indices))
            return false;
        lhs->is_paren = is_char(r, '(') && lhs->n_indices > 0;
    }
    for (int i = 0; i < lhs->n_indices; i++) {
        const Index *ix = &lhs->indices[i];
        if (ix->kind == IX_INT) /* a slice names its axis, as in legacy */
            return error_span(P, ix->span, "integer index not allowed on the left-hand "
                              "side") != NULL;
        if (ix->kind == IX_AXIS && ix->offset != 0)
            return error_span(P, ix->span, "offset index '%s%+lld' not allowed on the "
                              "left-hand side", ix->name, (long long)ix->offset) != NULL;
    }
    return true;
}

static AssignOp assign_op(const Token *op)
{
    return is_assign(op, "+=") ? AOP_ADD : is_assign(op, "max=") ? AOP_MAX
         : is_assign(op, "avg=") ? AOP_AVG : AOP_SET;
}

/* The string of a lone string expression, through parentheses; else NULL. */
static const Expr *lone_string(const VNode *n)
{
    while (n->kind == V_GROUP)
        n = n->kids[0];
    return n->kind == V_LEAF && n->leaf->kind == EX_STRING ? n->leaf : NULL;
}

/* equation := lhs [ "when" expr ] OP expr; a lone string RHS is a source. */
static VStmt *parse_equation(VP *P, VStmt *s, bool is_let)
{
    Token *t = peek(P);
    if (is_assign(t, "max=") || is_assign(t, "avg=")) { /* a tensor named max / avg */
        next(P);
        s->lhs.name = arena_strndup(P->arena, t->text, 3);
        s->lhs.span = t->span;
        s->op = AOP_SET;
    } else {
        if (!parse_lhs(P, &s->lhs))
            return NULL;
        if (!is_let && is_name(peek(P), "when")) {
            next(P);
            if (!(s->guard = parse_expr(P)))
                return NULL;
        }
        Token *op = peek(P);
        if (op->kind != TK_OP_ASSIGN || at(P, "=="))
            return expected(P, op, is_let ? "'=' after the let binding"
                                          : "'=', '+=', 'max=', 'avg=' or 'when' after the "
                                            "left-hand side");
        if (is_let && !is_assign(op, "="))
            return error_span(P, op->span, "let binds with '=', not '%.*s'", op->len, op->text);
        next(P);
        s->op = assign_op(op);
    }
    s->kind = VS_EQUATION;
    s->is_let = is_let;
    if (!(s->rhs = parse_expr(P)))
        return NULL;
    const Expr *str = lone_string(s->rhs);
    if (str && (s->op != AOP_SET || s->guard || is_let))
        return error_span(P, str->span, "a file source is read with a plain '=' only");
    if (str) {
        s->kind = VS_SOURCE;
        s->path = str->str;
        s->path_span = str->span;
    }
    return s;
}

/* One statement of a body and what ends it; false on an error (reported). */
static bool parse_body_stmt(VP *P, bool top, VStmt ***out, int *n_out)
{
    Token *t = peek(P);
    if (top && is_char(t, '}'))
        return error_span(P, t->span, "unmatched '}'") != NULL;
    VStmt *s = parse_stmt(P, top);
    if (!s || !push(P, out, n_out, &s, sizeof s))
        return false;
    t = peek(P);
    if (t->kind != TK_NEWLINE && !is_char(t, ';') && t->kind != TK_EOF &&
        !(!top && is_char(t, '}'))) {
        if (t->err)
            return error_span(P, t->span, "%s", t->err) != NULL;
        if (is_char(t, ')') || is_char(t, ']') || is_char(t, '}'))
            return error_span(P, t->span, "unmatched '%c'", t->text[0]) != NULL;
        return error_span(P, t->span, "expected an operator, ';' or the end of the line, "
                          "found %s", fe_tok_describe(t).s) != NULL;
    }
    return true;
}

static bool is_bracket_open(const Token *t)
{
    return is_char(t, '(') || is_char(t, '[') || is_char(t, '{');
}

static bool is_bracket_close(const Token *t)
{
    return is_char(t, ')') || is_char(t, ']') || is_char(t, '}');
}

/* After an error in the top-level statement that starts at token `first`: skips
 * to its end, the next newline or ';' outside brackets (counted from the
 * statement's start, so the error's place in the parser does not matter), or a
 * newline before an unindented line (an unclosed bracket). */
static void resync(VP *P, int first)
{
    int depth = 0;
    for (int i = first; i < P->pos && i < P->n_toks; i++)
        depth += is_bracket_open(&P->toks[i]) - is_bracket_close(&P->toks[i]);
    if (P->pos > first && P->toks[P->pos - 1].kind == TK_NEWLINE &&
        P->toks[P->pos].span.col == 1)
        return; /* the error is at the start of the next line: a statement */
    for (;;) {
        const Token *t = &P->toks[P->pos];
        if (t->kind == TK_EOF)
            return;
        P->pos++;
        if (t->kind == TK_NEWLINE || is_char(t, ';')) {
            if (depth <= 0 || (t->kind == TK_NEWLINE && P->toks[P->pos].span.col == 1))
                return;
        } else {
            depth += is_bracket_open(t) - is_bracket_close(t);
        }
    }
}

/* Statements up to '}' or EOF, separated by newlines or ';'. A top-level body
 * goes on after an error (at the next statement) until the diagnostics' limit;
 * a nested one stops, and its top-level statement resynchronises. */
static bool parse_body(VP *P, bool top, VStmt ***out, int *n_out)
{
    for (;;) {
        skip_seps(P);
        Token *t = peek(P);
        if (t->kind == TK_EOF || (!top && is_char(t, '}')))
            return true;
        int first = P->pos;
        if (parse_body_stmt(P, top, out, n_out))
            continue;
        if (!top || P->arena->is_oom || fe_diags_stopped(P->dl))
            return false;
        P->n_failed++;
        P->failed = false;
        P->quiet = P->depth = P->nest = 0;
        P->last = NULL;
        resync(P, first);
    }
}

/* block := "{" stmts "}" */
static VStmt *parse_block(VP *P, VStmt *s)
{
    if (!enter(P)) /* nested blocks recurse too */
        return NULL;
    Token *open = next(P);
    int saved = P->nest;
    P->nest = 0;
    s->kind = VS_BLOCK;
    if (!parse_body(P, false, &s->body, &s->n_body))
        return NULL;
    P->depth--;
    if (!is_char(peek(P), '}')) {
        char want[48];
        snprintf(want, sizeof want, "'}' to close '{' opened at line %d", open->span.line);
        return expected(P, peek(P), want);
    }
    next(P);
    P->nest = saved;
    return s;
}

/* fn := "fn" qname "(" [ lhs { "," lhs } ] ")" [ "->" lhs ] block */
static VStmt *parse_fn(VP *P, VStmt *s)
{
    next(P);
    Token *first = peek(P);
    if (first->kind != TK_NAME || is_keyword(first))
        return expected(P, first, "a function name after 'fn'");
    next(P);
    while (at(P, "::")) {
        take(P, "::");
        if (peek(P)->kind != TK_NAME)
            return expected(P, peek(P), "a name after '::'");
        next(P);
    }
    s->kind = VS_FN;
    s->lhs.name = text_between(P, first, P->last);
    s->lhs.span = first->span;
    if (!is_char(peek(P), '('))
        return expected(P, peek(P), "'(' after the function name");
    next(P);
    P->nest++;
    while (!is_char(peek(P), ')')) {
        VLhs p = {0};
        if (!parse_lhs(P, &p) || !push(P, &s->params, &s->n_params, &p, sizeof p))
            return NULL;
        if (is_char(peek(P), ')'))
            break;
        if (!expect(P, ",", "',' or ')' after a parameter"))
            return NULL;
    }
    next(P);
    P->nest--;
    if (at(P, "->")) {
        take(P, "->");
        if (!parse_lhs(P, &s->ret))
            return NULL;
        s->has_ret = true;
    }
    if (!is_char(peek(P), '{'))
        return expected(P, peek(P), "'{' starting the function body (on the same line)");
    return parse_block(P, s) ? (s->kind = VS_FN, s) : NULL;
}

/* const NAME = expr | param NAME [: TYPE] [= expr] | axis NAME [= expr] */
static VStmt *parse_decl(VP *P, VStmt *s)
{
    Token *kw = next(P);
    s->kind = kw->text[0] == 'c' ? VS_CONST : kw->text[0] == 'p' ? VS_PARAM : VS_AXIS;
    Token *name = peek(P);
    if (name->kind != TK_NAME || is_keyword(name))
        return expected(P, name, "a name");
    next(P);
    if (!(s->name = tok_str(P, name)))
        return NULL;
    s->lhs.span = name->span;
    if (s->kind == VS_PARAM && at(P, ":")) {
        next(P);
        if (peek(P)->kind != TK_NAME)
            return expected(P, peek(P), "a type name (int, float or bool)");
        if (!(s->type_name = tok_str(P, next(P))))
            return NULL;
    }
    if (is_assign(peek(P), "=") && !at(P, "==")) {
        next(P);
        return (s->rhs = parse_expr(P)) ? s : NULL;
    }
    if (s->kind == VS_CONST)
        return expected(P, peek(P), "'=' and the constant's value");
    return s;
}

/* import "path" [ as NAME ] */
static VStmt *parse_import(VP *P, VStmt *s)
{
    next(P);
    Token *path = next(P);
    s->kind = VS_IMPORT;
    s->path = path->str;
    s->path_span = path->span;
    if (is_name(peek(P), "as")) {
        next(P);
        if (peek(P)->kind != TK_NAME)
            return expected(P, peek(P), "a namespace name after 'as'");
        if (!(s->name = tok_str(P, next(P))))
            return NULL;
    }
    return s;
}

/* sink := STRING "=" expr */
static VStmt *parse_sink(VP *P, VStmt *s)
{
    Token *path = next(P);
    if (!is_assign(peek(P), "=") || at(P, "=="))
        return expected(P, peek(P), "'=' after the sink path");
    next(P);
    s->kind = VS_SINK;
    s->path = path->str;
    s->path_span = path->span;
    return (s->rhs = parse_expr(P)) ? s : NULL;
}

/* Which declaration keyword starts here, if any: the word followed by a name
 * (by a string for import), so `axis[i] = ...` stays an equation. */
static int decl_kind(const Token *t)
{
    Token *n = (Token *)t + 1;
    if (t->kind != TK_NAME)
        return 0;
    if (is_name(t, "import"))
        return n->kind == TK_STRING ? 'i' : 0;
    if (n->kind != TK_NAME)
        return 0;
    if (is_name(t, "fn"))
        return 'f';
    if (is_name(t, "param") || is_name(t, "axis") || is_name(t, "const"))
        return 'd';
    if (is_name(t, "let"))
        return 'l';
    if (is_name(t, "export"))
        return 'e';
    return 0;
}

static VStmt *parse_stmt(VP *P, bool top)
{
    Token *first = peek(P);
    VStmt *s = alloc(P, sizeof *s);
    if (!s)
        return NULL;
    s->span = first->span;
    int kind = decl_kind(first);
    if (!top && kind && kind != 'l')
        return error_span(P, first->span, "'%.*s' is only allowed at the top level, not "
                          "inside a block", first->len, first->text);
    VStmt *done;
    if (kind == 'f')
        done = parse_fn(P, s);
    else if (kind == 'd')
        done = parse_decl(P, s);
    else if (kind == 'i')
        done = parse_import(P, s);
    else if (kind == 'e') {
        next(P);
        s->kind = VS_EXPORT;
        s->name = tok_str(P, next(P));
        done = s;
    } else if (kind == 'l') {
        next(P);
        done = parse_equation(P, s, true);
    } else if (is_char(first, '{'))
        done = parse_block(P, s);
    else if (first->kind == TK_STRING)
        done = parse_sink(P, s);
    else if (first->kind == TK_NAME || is_assign(first, "max=") || is_assign(first, "avg="))
        done = parse_equation(P, s, false);
    else
        done = expected(P, first, "a statement");
    if (!done || P->failed)
        return NULL;
    s->text = text_between(P, first, P->last);
    return s->text ? s : NULL;
}

/* The names defined with fn anywhere, so a call may come before its definition. */
static bool collect_fns(VP *P)
{
    for (int i = 0; i + 1 < P->n_toks; i++) {
        if (!is_name(&P->toks[i], "fn") || P->toks[i + 1].kind != TK_NAME)
            continue;
        int j = i + 1;
        while (j + 3 < P->n_toks && is_char(&P->toks[j + 1], ':') &&
               is_char(&P->toks[j + 2], ':') && P->toks[j + 3].kind == TK_NAME)
            j += 3;
        const char *name = text_between(P, &P->toks[i + 1], &P->toks[j]);
        if (!name || !push(P, &P->fns, &P->n_fns, &name, sizeof name))
            return false;
    }
    return true;
}

fuse_status fe_v2_parse(Arena *arena, const Source *src, DiagList *dl, VProgram *out)
{
    memset(out, 0, sizeof *out);
    VP P = {.arena = arena, .src = src, .dl = dl};
    int errors = dl->n_errors;
    fuse_status st = fe_lex_all(arena, arena, src, NULL, &P.toks, &P.n_toks);
    if (st != FUSE_OK)
        return st;
    if (!collect_fns(&P))
        return FUSE_E_NOMEM;
    parse_body(&P, true, &out->stmts, &out->n_stmts);
    if (arena->is_oom)
        return FUSE_E_NOMEM;
    bool failed = P.failed || P.n_failed;
    if (failed && dl->n_errors == errors)
        fe_error(dl, FUSE_E_SYNTAX, peek(&P)->span, "syntax error");
    return failed || dl->n_errors > errors ? FUSE_E_SYNTAX : FUSE_OK;
}

/* ---- choosing the parser ---- */

fuse_syntax fe_syntax_of(const char *text, size_t len, fuse_syntax fallback)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    static const char tag[] = "#!fuse";
    size_t n = sizeof tag - 1;
    if (len < n || memcmp(text, tag, n) != 0)
        return fallback;
    const char *p = text + n, *end = text + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *word = p;
    while (p < end && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
        p++;
    size_t wl = (size_t)(p - word);
    if (wl == 2 && memcmp(word, "v2", 2) == 0)
        return FUSE_SYNTAX_V2;
    if (wl == 6 && memcmp(word, "legacy", 6) == 0)
        return FUSE_SYNTAX_LEGACY;
    return fallback;
}

fuse_status fe_parse_program(Arena *arena, const Source *src,
                             const fuse_program_options *opts, DiagList *dl, Ast *out)
{
    if (!arena || !src || !src->text || !dl || !out)
        return FUSE_E_ARG;
    fuse_syntax syntax = opts ? opts->syntax : FUSE_SYNTAX_LEGACY;
    if (opts) /* kept for the checks that follow, which use the same list */
        dl->error_limit = opts->error_limit;
    const fuse_param *params = opts ? opts->params : NULL;
    size_t n_params = opts ? opts->n_params : 0;
    if (fe_syntax_of(src->text, src->len, syntax) != FUSE_SYNTAX_V2) {
        if (n_params)
            return fe_error(dl, FUSE_E_SHAPE, (Span){0}, "the program declares no param '%s' "
                            "(params are v2 syntax: use --parser v2)", params[0].name);
        return fe_parse(arena, src, dl, out);
    }
    memset(out, 0, sizeof *out);
    VProgram prog;
    fuse_status st = fe_v2_parse(arena, src, dl, &prog);
    if (st != FUSE_OK)
        return st;
    return fe_v2_lower(arena, src, &prog, params, n_params, dl, out);
}
