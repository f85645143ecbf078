/*
 * parser.c: recursive-descent parser for the legacy Fuse syntax (SPEC §3).
 *
 *   program   := NEWLINE* { statement (NEWLINE | EOF) }
 *   statement := "export" NAME | STRING "=" sum | lhs OP sum
 *   lhs       := NAME [ "[" items "]" | "(" items ")" ]      OP := = += max= avg=
 *   sum       := term { ("+" | "-") term }
 *   term      := factor { primary }                          (juxtaposition)
 *   factor    := ["-"] primary
 *   primary   := NAME | NAME "[" items "]" | NAME "(" ... ")" | NUMBER | STRING
 *              | "(" sum ")" | list | dict
 *
 * Tokens are lexed on demand (tok_at) into chunks that never move, so token
 * pointers stay valid until the next statement while lookahead and backtracking
 * are index moves; reading past the end gives the final TK_EOF, which keeps even
 * broken input in bounds. Between statements, and while a failed statement is
 * skipped, the tokens behind the parser are dropped (compact), so memory is
 * bounded by the part of the longest statement that was parsed. Newlines end
 * statements, except inside an open bracket: `nest` counts the open brackets of
 * the current statement and peek() skips newlines while it is positive.
 *
 * Limits: a sum is counted as its terms are parsed, a product as its factors are
 * (FE_MAX_TERMS, FE_MAX_FACTORS), so a line far over the IR's limits fails at the
 * first term past them, with the rest of the line skipped, never built.
 *
 * NAME "(" is decided by the name: even/odd are index functions, builtins are
 * calls; any other name is a boolean tensor when the content parses as index
 * items, else an unknown function. Where the content decides, it is parsed
 * speculatively: the attempt runs "quiet" (its first error is recorded, not
 * reported) and the parser rewinds to a Mark on failure.
 *
 * Errors: the first error of a statement is reported and the parser resynchronises
 * at the next statement, until the list's error limit stops it. Structural errors
 * stop the statement at once. Semantic errors (unknown function, a bad even/odd
 * axis, a duplicate keyword, an integer index on an LHS) are "pending": parsing
 * goes on, so they never change which speculative reading wins, and the earliest
 * one is reported when the statement ends. Recursion is capped at FE_MAX_DEPTH.
 */
#include "frontend.h"
#include "support.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FE_MAX_DEPTH 256
#define TOK_CHUNK 512 /* tokens per chunk of the token buffer */
#define MAX_STATEMENT_TOKENS (1 << 26) /* beyond, a statement is out of memory */

typedef struct Parser {
    Arena *arena;    /* AST, strings and diagnostics */
    const Source *src;
    DiagList *dl;
    Lexer lx;
    Arena *scratch;  /* holds the token chunks; freed when fe_parse returns */
    Token **chunks;  /* token i is chunks[i / TOK_CHUNK][i % TOK_CHUNK] */
    int n_chunks, cap_chunks;
    int n_toks;      /* tokens lexed (since the last compact) */
    bool lexed_eof;  /* the lexer has returned TK_EOF (the last token) */
    Token oom_tok;   /* a TK_EOF at the end of the source, read once lexing fails */
    int pos;         /* next token */
    int stmt_start;  /* the first token of the statement being parsed */
    Token *last;     /* last consumed token (NULL at a statement's start) */
    int nest;        /* open brackets in this statement; newlines inside are blanks */
    int depth;       /* recursion depth of primary/literal parsing */
    int n_errors;    /* errors reported */
    bool failed;     /* this statement hit a structural error */
    bool fatal;      /* ... one no other reading can avoid (too deep): never undone */
    bool nomem;
    int quiet;               /* > 0: speculative; errors are recorded, not reported */
    const char *quiet_msg;   /* first error while quiet */
    Span quiet_span;
    const char *pending_msg; /* earliest semantic error of this statement */
    Span pending_span;
    const char *note_msg;    /* a note for the next structural error (unclosed brackets) */
    Span note_span;
    const char *quiet_note;  /* ... recorded with quiet_msg */
    Span quiet_note_span;
} Parser;

/* A point to rewind a speculative parse to. */
typedef struct Mark {
    int pos, nest, depth;
    Token *last;
    const char *pending_msg;
    Span pending_span;
} Mark;

/* ---- tokens ---- */

static Token *tok_at(Parser *P, int i);

static Token *peek(Parser *P)
{
    while (P->nest > 0 && tok_at(P, P->pos)->kind == TK_NEWLINE)
        P->pos++;
    return tok_at(P, P->pos);
}

/* The token after peek(), skipping newlines inside brackets. */
static Token *peek2(Parser *P)
{
    if (peek(P)->kind == TK_EOF)
        return peek(P);
    int i = P->pos + 1;
    while (P->nest > 0 && tok_at(P, i)->kind == TK_NEWLINE)
        i++;
    return tok_at(P, i);
}

/* The token right after the last consumed one, newlines not skipped. */
static Token *raw(Parser *P)
{
    return tok_at(P, P->pos);
}

static Token *next(Parser *P)
{
    Token *t = peek(P);
    if (t->kind != TK_EOF)
        P->pos++;
    P->last = t;
    return t;
}

static bool is_punct(const Token *t, char c)
{
    return t->kind == TK_PUNCT && !t->err && t->len == 1 && t->text[0] == c;
}

static bool is_op(const Token *t, const char *op)
{
    return t->kind == TK_OP_ASSIGN && t->len == (int)strlen(op) &&
           memcmp(t->text, op, (size_t)t->len) == 0;
}

static bool is_name(const Token *t, const char *name)
{
    return t->kind == TK_NAME && t->len == (int)strlen(name) &&
           memcmp(t->text, name, (size_t)t->len) == 0;
}

/* ASCII only, whatever the host's locale. */
static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || lower(c) != c || (c >= 'a' && c <= 'z');
}

/* ASCII case-insensitive comparison of a[0..n) with the NUL-terminated b. */
static bool equal_ci(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* Case-insensitive is_name. */
static bool is_name_ci(const Token *t, const char *name)
{
    return t->kind == TK_NAME && equal_ci(t->text, (size_t)t->len, name);
}

/* True when b starts exactly where a ends (no blank between them). */
static bool adjacent(const Token *a, const Token *b)
{
    return a && a->text + a->len == b->text;
}

static bool is_opener(const Token *t)
{
    return is_punct(t, '(') || is_punct(t, '[') || is_punct(t, '{');
}

static bool is_closer(const Token *t)
{
    return is_punct(t, ')') || is_punct(t, ']') || is_punct(t, '}');
}

/* ---- errors ---- */

static bool span_before(Span a, Span b)
{
    return a.line < b.line || (a.line == b.line && a.col < b.col);
}

/* Reports (or, when quiet, records) a structural error of this statement. */
static void verror(Parser *P, Span span, const char *fmt, va_list ap)
{
    const char *note = P->note_msg;
    Span note_span = P->note_span;
    P->note_msg = NULL;
    if (P->failed)
        return;
    P->failed = true;
    char buf[400];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (P->quiet) {
        P->quiet_msg = arena_strdup(P->arena, buf);
        P->quiet_span = span;
        P->quiet_note = note;
        P->quiet_note_span = note_span;
        P->nomem |= P->quiet_msg == NULL;
        return;
    }
    if (P->pending_msg && span_before(P->pending_span, span)) {
        fe_error(P->dl, FUSE_E_SYNTAX, P->pending_span, "%s", P->pending_msg);
    } else {
        fe_error(P->dl, FUSE_E_SYNTAX, span, "%s", buf);
        if (note)
            fe_note(P->dl, note_span, "%s", note);
    }
    P->pending_msg = NULL;
    P->n_errors++;
}

static void *error_span(Parser *P, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *error_span(Parser *P, Span span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(P, span, fmt, ap);
    va_end(ap);
    return NULL;
}

/* An error at token t; a malformed token reports the lexer's message instead. */
static void *error_at(Parser *P, const Token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *error_at(Parser *P, const Token *t, const char *fmt, ...)
{
    if (t->err)
        return error_span(P, t->span, "%s", t->err);
    va_list ap;
    va_start(ap, fmt);
    verror(P, t->span, fmt, ap);
    va_end(ap);
    return NULL;
}

static void *error_expected(Parser *P, const Token *t, const char *expected);

/* Tokens from i on, up to the end of the statement (EOF, or a newline before an
 * unindented line), hold no closer for a bracket open before i. Long scans give
 * up (false): the plain message is right then too. */
static bool never_closed(Parser *P, int i)
{
    int depth = 1;
    for (int n = 0; n < 10000; n++, i++) {
        const Token *t = tok_at(P, i);
        if (t->kind == TK_EOF)
            return true;
        if (t->kind == TK_NEWLINE && tok_at(P, i + 1)->span.col == 1)
            return true;
        depth += is_opener(t) - is_closer(t);
        if (depth == 0)
            return false;
    }
    return false;
}

/* An opener whose closer is missing where the parser is: when it is never
 * closed, the error is reported where it was opened, with a note where the
 * parser noticed ("expected ALTS to close it, found ..."); else as "expected ALTS
 * to close '(' opened at line N, found ...". */
static void *close_error(Parser *P, const Token *open, const char *alts)
{
    Token *t = peek(P);
    char want[96];
    if (!t->err && never_closed(P, P->pos)) {
        snprintf(want, sizeof want, "expected %s to close it, found %s", alts,
                 fe_tok_describe(t).s);
        P->note_msg = arena_strdup(P->arena, want);
        P->note_span = t->span;
        return error_span(P, open->span, "'%c' is never closed", open->text[0]);
    }
    snprintf(want, sizeof want, "%s to close '%c' opened at line %d", alts, open->text[0],
             open->span.line);
    return error_expected(P, t, want);
}

/* "expected X, found Y", or a dedicated message for tokens people often try. */
static void *error_expected(Parser *P, const Token *t, const char *expected)
{
    if (is_punct(t, ';'))
        return error_at(P, t, "';' is not a statement separator; put each statement "
                              "on its own line");
    if (is_punct(t, '*'))
        return error_at(P, t, "unexpected '*': a product is written by juxtaposition, "
                              "as in A[i] B[i]");
    if (is_punct(t, '/') || is_punct(t, '^') || is_punct(t, '@'))
        return error_at(P, t, "unexpected '%c': the legacy syntax has only '+', '-' and "
                              "juxtaposition", t->text[0]);
    if (is_punct(t, '\''))
        return error_at(P, t, "unexpected \"'\" (a prime belongs to an axis name inside "
                              "[...]; strings use double quotes)");
    return error_at(P, t, "expected %s, found %s", expected, fe_tok_describe(t).s);
}

/* Records a semantic error; the statement goes on parsing (see the file comment). */
static void semantic_error(Parser *P, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void semantic_error(Parser *P, Span span, const char *fmt, ...)
{
    if (P->pending_msg && !span_before(span, P->pending_span))
        return;
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const char *msg = arena_strdup(P->arena, buf);
    if (!msg) {
        P->nomem = P->failed = true;
        return;
    }
    P->pending_msg = msg;
    P->pending_span = span;
}

/* A limit of the IR (frontend.h) is passed. No other reading of the statement
 * avoids it, so, like too deep a nesting, it is reported at once even in a quiet
 * attempt, and the rest of the statement is skipped rather than parsed. */
static void *limit_error(Parser *P, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *limit_error(Parser *P, Span span, const char *fmt, ...)
{
    if (P->failed && !P->quiet)
        return NULL;
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    P->failed = P->fatal = true;
    fe_error(P->dl, FUSE_E_SYNTAX, span, "%s", buf);
    P->n_errors++;
    return NULL;
}

/* ---- memory ---- */

static void *p_alloc(Parser *P, size_t size)
{
    void *p = arena_alloc(P->arena, size);
    if (!p)
        P->nomem = P->failed = true;
    return p;
}

/* Appends elem (size bytes) to an arena vector: arr is the address of its pointer
 * (an Index **, Expr ***, ...; read and written with memcpy, as its type varies),
 * n the items used, cap the items allocated. */
static bool push(Parser *P, void *arr, int *n, int *cap, const void *elem, size_t size)
{
    char *items;
    memcpy(&items, arr, sizeof items);
    if (*n == *cap) {
        int new_cap = *cap ? *cap * 2 : 4;
        char *grown = *cap > (1 << 28) ? NULL
                                       : arena_grow(P->arena, items, (size_t)*n * size,
                                                    (size_t)new_cap * size);
        if (!grown) {
            P->nomem = P->failed = true;
            return false;
        }
        items = grown;
        memcpy(arr, &items, sizeof items);
        *cap = new_cap;
    }
    memcpy(items + (size_t)*n * size, elem, size);
    (*n)++;
    return true;
}

static char *tok_str(Parser *P, const Token *t)
{
    char *s = arena_strndup(P->arena, t->text, (size_t)t->len);
    if (!s)
        P->nomem = P->failed = true;
    return s;
}

/* Source text from the start of token a to the end of token b. */
static char *text_between(Parser *P, const Token *a, const Token *b)
{
    char *s = arena_strndup(P->arena, a->text, (size_t)(b->text + b->len - a->text));
    if (!s)
        P->nomem = P->failed = true;
    return s;
}

static Expr *new_expr(Parser *P, ExprKind kind, const Token *t)
{
    Expr *e = p_alloc(P, sizeof *e);
    if (e) {
        e->kind = kind;
        e->span = t->span;
    }
    return e;
}

/* Characters from the start of token a to the end of token b (a span length). */
static int chars_between(const Token *a, const Token *b)
{
    int n = 0;
    for (const char *p = a->text; p < b->text + b->len; p++)
        n += ((unsigned char)*p & 0xC0) != 0x80;
    return n;
}

/* ---- speculation ---- */

static Mark mark(const Parser *P)
{
    return (Mark){P->pos, P->nest, P->depth, P->last, P->pending_msg, P->pending_span};
}

static void rewind_to(Parser *P, Mark m)
{
    P->pos = m.pos;
    P->nest = m.nest;
    P->depth = m.depth;
    P->last = m.last;
    P->pending_msg = m.pending_msg;
    P->pending_span = m.pending_span;
}

/* The outcome of a quiet attempt: its first error, if it failed. */
typedef struct Attempt {
    bool ok;
    const char *msg;
    Span span;
    const char *note; /* and its note, or NULL */
    Span note_span;
} Attempt;

static void quiet_begin(Parser *P)
{
    P->quiet++;
    P->quiet_msg = NULL;
}

/* Ends a quiet attempt begun at m; a failed one is undone. */
static Attempt quiet_end(Parser *P, Mark m, bool ok)
{
    Attempt a = {ok && !P->failed, P->quiet_msg, P->quiet_span, P->quiet_note,
                 P->quiet_note_span};
    P->quiet--;
    P->quiet_msg = P->quiet_note = NULL;
    if (!a.ok && !P->nomem && !P->fatal) {
        rewind_to(P, m);
        P->failed = false;
    }
    return a;
}

/* ---- index items ---- */

/* The raw text of a malformed index item starting at t, for messages. */
static int index_text_len(const Parser *P, const Token *t)
{
    const char *end = P->src->text + P->src->len, *p = t->text;
    while (p < end && (is_alnum(*p) || (*p && strchr("_:'+-.*", *p))))
        p++;
    return p > t->text ? (int)(p - t->text) : 1;
}

static bool invalid_index(Parser *P, const Token *start, const char *why)
{
    int len = index_text_len(P, start);
    Span span = start->span;
    span.len = len; /* the item text is ASCII */
    error_span(P, span, "invalid index '%.*s'%s", len, start->text, why);
    return false;
}

/* Glues primes to an axis name just read: p', p'', p'q. */
static void glue_primes(Parser *P)
{
    while (is_punct(raw(P), '\'') && adjacent(P->last, raw(P))) {
        next(P);
        Token *r = raw(P);
        bool digits = r->kind == TK_NUMBER && r->is_int && !r->err;
        if ((r->kind == TK_NAME || digits) && adjacent(P->last, r))
            next(P);
    }
}

/* Optional glued offset "+k" / "-k" after an axis name. */
static bool parse_offset(Parser *P, Index *ix, const Token *start)
{
    Token *sign = raw(P);
    if (!(is_punct(sign, '+') || is_punct(sign, '-')) || !adjacent(P->last, sign))
        return true;
    next(P);
    Token *num = raw(P);
    int64_t v;
    bool dotted;
    if (!adjacent(sign, num) || !fe_tok_int(num, &v, &dotted))
        return invalid_index(P, start, ": an offset must be an integer, as in t+1 or t-1");
    next(P);
    ix->offset = sign->text[0] == '-' ? -v : v;
    ix->is_dotted = dotted;
    return true;
}

/* i, p', t+1, t-1 */
static bool parse_axis_item(Parser *P, Index *ix, const Token *start)
{
    next(P);
    glue_primes(P);
    ix->kind = IX_AXIS;
    if (!(ix->name = text_between(P, start, P->last)))
        return false;
    if (is_punct(peek(P), ':')) {
        error_span(P, start->span, "slice bounds must be integers: %s", ix->name);
        return false;
    }
    return parse_offset(P, ix, start);
}

/* *t, *t+1, *t-1 */
static bool parse_stream_item(Parser *P, Index *ix, const Token *start)
{
    next(P);
    Token *name = raw(P);
    if (name->kind != TK_NAME || !adjacent(start, name))
        return invalid_index(P, start, ": a streaming index is *t, *t+1 or *t-1");
    next(P);
    glue_primes(P);
    ix->kind = IX_STREAM;
    if (!(ix->name = text_between(P, name, P->last)))
        return false;
    return parse_offset(P, ix, start);
}

/* One bound of a slice or an integer index: [sign] digits. */
typedef struct Bound {
    bool present, dotted;
    int64_t value;
    const Token *first, *last;
} Bound;

static bool parse_bound(Parser *P, Bound *b, const Token *start, bool in_slice)
{
    memset(b, 0, sizeof *b);
    Token *t = peek(P);
    if (t->kind == TK_NAME) {
        error_span(P, start->span, "slice bounds must be integers: %.*s", t->len, t->text);
        return false;
    }
    bool has_sign = is_punct(t, '+') || is_punct(t, '-');
    if (!has_sign && t->kind != TK_NUMBER)
        return true; /* absent */
    int at = P->pos + has_sign; /* t is peek(), at P->pos */
    Token *num = tok_at(P, at);
    if (has_sign && !adjacent(t, num))
        return invalid_index(P, start, "");
    if (!fe_tok_int(num, &b->value, &b->dotted)) {
        if (num->kind != TK_NUMBER || num->err)
            return invalid_index(P, start, "");
        if (!in_slice && !is_punct(tok_at(P, at + 1), ':'))
            return invalid_index(P, start, ": an index must be an integer");
        error_span(P, start->span, "slice bounds must be integers: %.*s",
                   (int)(num->text + num->len - t->text), t->text);
        return false;
    }
    if (has_sign)
        next(P);
    next(P);
    b->present = true;
    b->first = t;
    b->last = num;
    if (has_sign && t->text[0] == '-')
        b->value = -b->value;
    return true;
}

/* The text of a slice item, spaces removed: "0:3", "::2", "-1:". */
static bool slice_name(Parser *P, Index *ix, const Bound *b, int n_bounds)
{
    char buf[128];
    size_t len = 0;
    for (int i = 0; i < n_bounds; i++) {
        if (i > 0)
            buf[len++] = ':';
        if (b[i].present) {
            int n = (int)(b[i].last->text + b[i].last->len - b[i].first->text);
            n -= b[i].dotted;
            if (len + (size_t)n + 2 >= sizeof buf)
                return invalid_index(P, b[i].first, ": slice bound too long");
            memcpy(buf + len, b[i].first->text, (size_t)n);
            len += (size_t)n;
        }
    }
    ix->name = arena_strndup(P->arena, buf, len);
    if (!ix->name)
        P->nomem = P->failed = true;
    return ix->name != NULL;
}

/* 0, -1, +2, 0:3, ::2, -1:, : */
static bool parse_numeric_item(Parser *P, Index *ix, const Token *start)
{
    Bound b[3];
    int n = 1;
    if (!parse_bound(P, &b[0], start, false))
        return false;
    while (n < 3 && is_punct(peek(P), ':')) {
        if (b[n - 1].dotted)
            return invalid_index(P, start, "");
        next(P);
        if (!parse_bound(P, &b[n++], start, true))
            return false;
    }
    if (is_punct(peek(P), ':'))
        return invalid_index(P, start, ": a slice is start:stop or start:stop:step");
    if (n == 1) {
        if (!b[0].present)
            return invalid_index(P, start, "");
        ix->kind = IX_INT;
        ix->offset = b[0].value;
        ix->is_dotted = b[0].dotted;
        return true;
    }
    ix->kind = IX_SLICE;
    ix->is_dotted = b[n - 1].dotted;
    ix->has_start = b[0].present;
    ix->start = b[0].value;
    ix->has_stop = b[1].present;
    ix->stop = b[1].value;
    ix->has_step = n == 3 && b[2].present;
    ix->step = n == 3 ? b[2].value : 0;
    if (ix->has_step && ix->step == 0)
        semantic_error(P, start->span, "slice step cannot be zero");
    return slice_name(P, ix, b, n);
}

/* One index item, with an optional trailing '.' (dotted). */
static bool parse_index_item(Parser *P, Index *ix, char closer)
{
    Token *start = peek(P);
    memset(ix, 0, sizeof *ix);
    bool ok;
    if (is_punct(start, '*'))
        ok = parse_stream_item(P, ix, start);
    else if (start->kind == TK_NAME)
        ok = parse_axis_item(P, ix, start);
    else if (start->kind == TK_NUMBER || is_punct(start, '+') || is_punct(start, '-') ||
             is_punct(start, ':'))
        ok = parse_numeric_item(P, ix, start);
    else
        ok = error_expected(P, start, "an index (an axis such as i, an integer, a slice "
                                      "such as 0:3, or a streaming index such as *t)") != NULL;
    if (!ok)
        return false;
    if (!ix->is_dotted && is_punct(raw(P), '.') && adjacent(P->last, raw(P))) {
        next(P);
        ix->is_dotted = true;
    }
    Token *g = raw(P);
    if (adjacent(P->last, g) && !is_punct(g, ',') && !is_punct(g, closer) &&
        g->kind != TK_NEWLINE && g->kind != TK_EOF)
        return invalid_index(P, start, "");
    ix->span = start->span;
    ix->span.len = chars_between(start, P->last);
    return true;
}

/* An index on an LHS: integers never, offsets only in streaming form. */
static void check_lhs_index(Parser *P, const Index *ix)
{
    if (ix->kind == IX_INT)
        semantic_error(P, ix->span, "integer index not allowed on the left-hand side");
    else if (ix->kind == IX_AXIS && ix->offset != 0)
        semantic_error(P, ix->span,
                       "offset index '%s%+lld' not allowed on the left-hand side (only a "
                       "streaming index such as *t+1 may be shifted)",
                       ix->name, (long long)ix->offset);
}

/* After an item: anything but ',' or the closer. */
static bool index_list_error(Parser *P, const Token *open, char closer)
{
    Token *t = peek(P);
    if ((is_punct(t, '+') || is_punct(t, '-')) && !adjacent(P->last, t)) {
        error_at(P, t, "spaces are not allowed inside an index offset (write t+1, not t + 1)");
        return false;
    }
    char alts[16];
    snprintf(alts, sizeof alts, "',' or '%c'", closer);
    close_error(P, open, alts);
    return false;
}

/* "[" items "]" or "(" items ")"; empty brackets give no indices (a bare name). */
static bool parse_index_list(Parser *P, Index **out, int *n_out, bool is_lhs)
{
    Token *open = next(P);
    char closer = open->text[0] == '[' ? ']' : ')';
    P->nest++;
    Index *arr = NULL;
    int n = 0, cap = 0;
    bool empty = is_punct(peek(P), closer);
    while (!empty) {
        Index ix;
        if (!parse_index_item(P, &ix, closer) || !push(P, &arr, &n, &cap, &ix, sizeof ix))
            return false;
        if (is_lhs)
            check_lhs_index(P, &ix);
        if (n > FE_MAX_INDICES) {
            limit_error(P, open->span, "a tensor has at most %d axes; this one is indexed "
                        "with more than %d", FUSE_MAX_RANK, FE_MAX_INDICES);
            return false;
        }
        if (is_punct(peek(P), closer))
            break;
        if (!is_punct(peek(P), ','))
            return index_list_error(P, open, closer);
        next(P);
        if (is_punct(peek(P), closer)) {
            error_expected(P, peek(P), "an index after ','");
            return false;
        }
    }
    next(P);
    P->nest--;
    if (n > FUSE_MAX_RANK)
        semantic_error(P, open->span, "a tensor has at most %d axes; this one is indexed "
                       "with %d", FUSE_MAX_RANK, n);
    *out = arr;
    *n_out = n;
    return true;
}

/* ---- expressions ---- */

static Expr *parse_sum(Parser *P);
static Expr *parse_primary(Parser *P);
static Expr *parse_literal(Parser *P);

static bool can_start_primary(const Token *t)
{
    return t->kind == TK_NAME || t->kind == TK_NUMBER || t->kind == TK_STRING ||
           is_punct(t, '(') || is_punct(t, '[') || is_punct(t, '{');
}

/* An expression may start with a primary, '-', or '+' glued to a number. */
static bool can_start_expr(Parser *P)
{
    Token *t = peek(P);
    if (can_start_primary(t) || is_punct(t, '-'))
        return true;
    Token *n = peek2(P);
    return is_punct(t, '+') && n->kind == TK_NUMBER && adjacent(t, n);
}

/* sum, after token `after` (named in the error when no expression follows). */
static Expr *parse_expr_after(Parser *P, const Token *after)
{
    if (!can_start_expr(P)) {
        char want[64];
        snprintf(want, sizeof want, "an expression after %s", fe_tok_describe(after).s);
        return error_expected(P, peek(P), want);
    }
    return parse_sum(P);
}

/* A number token with an optional sign token glued to it. */
static Expr *make_number(Parser *P, const Token *sign, const Token *num)
{
    Expr *e = new_expr(P, EX_NUMBER, sign ? sign : num);
    if (!e)
        return NULL;
    bool neg = sign && sign->text[0] == '-';
    e->is_int = num->is_int;
    if (num->is_int) {
        e->ival = neg ? -num->ival : num->ival;
        e->num = (double)e->ival;
    } else {
        e->num = neg ? -num->fval : num->fval;
    }
    if (sign)
        e->span.len = chars_between(sign, num);
    return e;
}

/* factor := ["-"] primary; a '-' or '+' glued to a number folds into it. */
static Expr *parse_factor(Parser *P)
{
    Token *t = peek(P);
    if (!is_punct(t, '-') && !is_punct(t, '+'))
        return parse_primary(P);
    Token *n = peek2(P);
    if (n->kind == TK_NUMBER && !n->err && adjacent(t, n)) {
        next(P);
        next(P);
        return make_number(P, t, n);
    }
    if (is_punct(t, '+') || !can_start_primary(n)) {
        char want[64];
        snprintf(want, sizeof want, "an expression after '%c'", t->text[0]);
        return error_expected(P, n, want);
    }
    next(P);
    Expr *e = new_expr(P, EX_NEG, t);
    Expr *inner = parse_primary(P);
    if (!e || !inner)
        return NULL;
    e->n_items = 1;
    e->items = p_alloc(P, sizeof(Expr *));
    if (!e->items)
        return NULL;
    e->items[0] = inner;
    return e;
}

/* ---- limits ---- */

/* e without the groups and signs around it. */
static const Expr *unwrap(const Expr *e)
{
    while (e->kind == EX_GROUP || e->kind == EX_NEG)
        e = e->items[0];
    return e;
}

/* How deep min_terms and min_factors look into nested groups: far enough for any
 * expression written by hand, and each node is visited by at most this many
 * enclosing counts, so counting stays linear. Deeper nests are left to the IR,
 * which checks the same limits while it expands (ir/build.c). */
#define COUNT_DEPTH 4

/* The fewest terms e expands to: a sum has the sum of its items', a product the
 * product of its factors'. A lower bound of ir_expand's count (it never merges
 * terms), capped just past FE_MAX_TERMS. */
static int64_t min_terms(const Expr *e, int depth)
{
    e = unwrap(e);
    bool is_sum = e->kind == EX_SUM;
    if ((!is_sum && e->kind != EX_PRODUCT) || depth == 0)
        return is_sum ? e->n_items : 1;
    int64_t n = is_sum ? 0 : 1;
    for (int i = 0; i < e->n_items && n <= FE_MAX_TERMS; i++) {
        int64_t k = min_terms(e->items[i], depth - 1);
        n = is_sum ? n + k : n * k;
    }
    return n > FE_MAX_TERMS ? FE_MAX_TERMS + 1 : n;
}

static bool is_tensor_factor(const Expr *e)
{
    return e->kind == EX_TENSOR || e->kind == EX_CALL || e->kind == EX_INDEXFN;
}

/* The fewest tensor factors (IR operands) in each term e expands to: a tensor,
 * call or index function is one, a number none, a product the sum of its
 * factors', a sum the least of its terms'. Capped just past FE_MAX_FACTORS. */
static int min_factors(const Expr *e, int depth)
{
    e = unwrap(e);
    if (is_tensor_factor(e))
        return 1;
    if (depth == 0 || (e->kind != EX_PRODUCT && e->kind != EX_SUM))
        return 0;
    int n = e->kind == EX_SUM ? FE_MAX_FACTORS + 1 : 0;
    for (int i = 0; i < e->n_items; i++) {
        int k = min_factors(e->items[i], depth - 1);
        n = e->kind == EX_SUM ? (k < n ? k : n) : n + k;
        if (e->kind == EX_SUM ? n == 0 : n > FE_MAX_FACTORS)
            break; /* no later item changes the answer */
    }
    return n > FE_MAX_FACTORS ? FE_MAX_FACTORS + 1 : n;
}

/* Counts factor g into a term: *factors and *terms (the bounds above) against the
 * limits; false after the error. */
static bool count_factor(Parser *P, const Expr *g, int *factors, int64_t *terms)
{
    *factors += min_factors(g, COUNT_DEPTH);
    *terms *= min_terms(g, COUNT_DEPTH);
    if (*terms > FE_MAX_TERMS)
        *terms = FE_MAX_TERMS + 1; /* capped, so it never overflows */
    if (*factors > FE_MAX_FACTORS)
        return limit_error(P, g->span, "an equation term has more than %d factors (the "
                           "limit)", FE_MAX_FACTORS) != NULL;
    if (*terms > FE_MAX_TERMS)
        return limit_error(P, g->span, "expression expands to more than %d terms",
                           FE_MAX_TERMS) != NULL;
    return true;
}

/* term := factor { primary }: two or more factors make an EX_PRODUCT. */
static Expr *parse_term(Parser *P)
{
    Token *first = peek(P);
    Expr *f = parse_factor(P);
    if (!f || !can_start_primary(peek(P)))
        return f;
    Expr *prod = new_expr(P, EX_PRODUCT, first);
    int cap = 0, factors = 0;
    int64_t terms = 1;
    if (!prod || !push(P, &prod->items, &prod->n_items, &cap, &f, sizeof f) ||
        !count_factor(P, f, &factors, &terms))
        return NULL;
    while (can_start_primary(peek(P))) {
        Expr *g = parse_primary(P);
        if (!g || !push(P, &prod->items, &prod->n_items, &cap, &g, sizeof g) ||
            !count_factor(P, g, &factors, &terms))
            return NULL;
    }
    return prod;
}

/* sum := term { ("+" | "-") term }: two or more terms make an EX_SUM. */
static Expr *parse_sum(Parser *P)
{
    Token *first = peek(P);
    Expr *t = parse_term(P);
    if (!t || !(is_punct(peek(P), '+') || is_punct(peek(P), '-')))
        return t;
    Expr *sum = new_expr(P, EX_SUM, first);
    int cap = 0, scap = 0, n_signs = 0, sign = 1;
    int64_t terms = min_terms(t, COUNT_DEPTH);
    if (!sum || !push(P, &sum->items, &sum->n_items, &cap, &t, sizeof t) ||
        !push(P, &sum->signs, &n_signs, &scap, &sign, sizeof sign))
        return NULL;
    while (is_punct(peek(P), '+') || is_punct(peek(P), '-')) {
        Token *op = next(P);
        sign = op->text[0] == '-' ? -1 : 1;
        if (!can_start_expr(P)) {
            char want[64];
            snprintf(want, sizeof want, "an expression after '%c'", op->text[0]);
            return error_expected(P, peek(P), want);
        }
        t = parse_term(P);
        if (!t || !push(P, &sum->items, &sum->n_items, &cap, &t, sizeof t) ||
            !push(P, &sum->signs, &n_signs, &scap, &sign, sizeof sign))
            return NULL;
        terms += min_terms(t, COUNT_DEPTH); /* each at most FE_MAX_TERMS + 1 */
        if (terms > FE_MAX_TERMS)
            return limit_error(P, t->span, "expression expands to more than %d terms",
                               FE_MAX_TERMS);
    }
    return sum;
}

/* "(" sum ")" → EX_GROUP. */
static Expr *parse_group(Parser *P)
{
    Token *open = next(P);
    P->nest++;
    Expr *g = new_expr(P, EX_GROUP, open);
    Expr *inner = parse_expr_after(P, open);
    if (!g || !inner)
        return NULL;
    if (!is_punct(peek(P), ')'))
        return close_error(P, open, "')'");
    next(P);
    P->nest--;
    g->items = p_alloc(P, sizeof(Expr *));
    if (!g->items)
        return NULL;
    g->items[0] = inner;
    g->n_items = 1;
    return g;
}

/* Consumes "(" ")" (blank lines allowed between) and returns true, else nothing. */
static bool skip_empty_parens(Parser *P)
{
    peek(P); /* '(' here, at P->pos */
    int i = P->pos + 1;
    while (tok_at(P, i)->kind == TK_NEWLINE)
        i++;
    Token *t = tok_at(P, i);
    if (!is_punct(t, ')'))
        return false;
    P->pos = i + 1;
    P->last = t;
    return true;
}

/* A keyword argument starts here: NAME "=" (or the single token max= / avg=). */
static bool at_kwarg(Parser *P)
{
    Token *t = peek(P);
    if (is_op(t, "max=") || is_op(t, "avg="))
        return true;
    return t->kind == TK_NAME && is_op(peek2(P), "=");
}

/* keyword := NAME "=" sum; a repeated keyword is a (pending) error. */
static bool parse_kwarg(Parser *P, Expr *call, int *cap)
{
    Token *kw = next(P);
    bool glued = kw->kind == TK_OP_ASSIGN; /* max= / avg= */
    Kwarg k = {.span = kw->span};
    k.name = arena_strndup(P->arena, kw->text, (size_t)(glued ? kw->len - 1 : kw->len));
    if (!k.name) {
        P->nomem = P->failed = true;
        return false;
    }
    if (glued)
        k.span.len--;
    Token *eq = glued ? kw : next(P);
    for (int i = 0; i < call->n_kwargs; i++)
        if (strcmp(call->kwargs[i].name, k.name) == 0)
            semantic_error(P, k.span, "duplicate keyword argument '%s'", k.name);
    k.value = parse_expr_after(P, eq);
    return k.value && push(P, &call->kwargs, &call->n_kwargs, cap, &k, sizeof k);
}

/* "(" [ arg { "," arg } [","] ] ")" with arg := sum | NAME "=" sum. */
static bool parse_call_args(Parser *P, Expr *call)
{
    Token *open = next(P);
    P->nest++;
    int cap = 0, kcap = 0;
    while (!is_punct(peek(P), ')')) {
        if (is_punct(peek(P), ',')) {
            error_expected(P, peek(P), "an argument");
            return false;
        }
        if (at_kwarg(P)) {
            if (!parse_kwarg(P, call, &kcap))
                return false;
        } else {
            Expr *a = parse_expr_after(P, P->last);
            if (!a || !push(P, &call->items, &call->n_items, &cap, &a, sizeof a))
                return false;
        }
        if (is_punct(peek(P), ')'))
            break;
        if (!is_punct(peek(P), ',')) {
            close_error(P, open, "',' or ')'");
            return false;
        }
        next(P);
    }
    next(P);
    P->nest--;
    return true;
}

/* Content of NAME(...) that could be index items or call arguments: tries index
 * items first. Returns 1 (indices filled), 2 (call arguments filled) or 0 (error
 * reported: the one of the attempt that got further). */
static int parse_paren_content(Parser *P, Expr *e)
{
    Mark m = mark(P);
    quiet_begin(P);
    bool ok = parse_index_list(P, &e->indices, &e->n_indices, false);
    Attempt as_index = quiet_end(P, m, ok);
    if (as_index.ok)
        return 1;
    if (P->nomem || P->fatal)
        return 0;
    e->indices = NULL;
    e->n_indices = 0;
    quiet_begin(P);
    ok = parse_call_args(P, e);
    Attempt as_call = quiet_end(P, m, ok);
    if (as_call.ok)
        return 2;
    if (P->nomem || P->fatal)
        return 0;
    /* the attempt that got further: where it noticed its error */
    Span reach_index = as_index.note ? as_index.note_span : as_index.span;
    Span reach_call = as_call.note ? as_call.note_span : as_call.span;
    const Attempt *a = span_before(reach_index, reach_call) ? &as_call : &as_index;
    P->note_msg = a->note;
    P->note_span = a->note_span;
    error_span(P, a->span, "%s", a->msg ? a->msg : "syntax error");
    return 0;
}

/* even(i) / even(0:2) ...: the index form of an index function. */
static void check_indexfn_item(Parser *P, Expr *e, const char *fn)
{
    const Index *ix = &e->indices[0];
    if (e->n_indices > 1)
        semantic_error(P, ix->span, "%s requires exactly one axis", fn);
    else if (ix->is_dotted)
        semantic_error(P, ix->span, "%s axis cannot include dotted indices", fn);
    else if (ix->kind == IX_STREAM)
        semantic_error(P, ix->span, "%s axis cannot be streaming", fn);
    else if (ix->kind == IX_SLICE)
        semantic_error(P, ix->span, "%s axis does not support slices", fn);
    else if (ix->kind == IX_INT)
        semantic_error(P, ix->span, "%s axis must be a symbol", fn);
    else if (ix->offset != 0)
        semantic_error(P, ix->span, "%s axis does not support offsets", fn);
    e->axis_name = ix->name;
}

/* Unknown keywords of an index function, sorted, as "a, b". */
static void unknown_kwargs(const Expr *e, char *buf, size_t size)
{
    const char *names[64];
    int n = 0;
    for (int i = 0; i < e->n_kwargs && n < 64; i++) {
        if (strcmp(e->kwargs[i].name, "axis") == 0)
            continue;
        int j = n++;
        for (; j > 0 && strcmp(names[j - 1], e->kwargs[i].name) > 0; j--)
            names[j] = names[j - 1];
        names[j] = e->kwargs[i].name;
    }
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? ", " : "", names[i]);
    }
}

/* The axis value of even(axis=...) / even(...): a bare name or a string. */
static void indexfn_axis_value(Parser *P, Expr *e, const Expr *v, const char *fn)
{
    if (v->kind == EX_TENSOR && v->n_indices == 0)
        e->axis_name = v->name;
    else if (v->kind == EX_STRING)
        e->axis_name = v->str;
    else if (v->kind == EX_TENSOR || v->kind == EX_CALL || v->kind == EX_INDEXFN ||
             v->kind == EX_PRODUCT || v->kind == EX_SUM || v->kind == EX_GROUP)
        semantic_error(P, e->span, "%s axis must be a scalar symbol", fn);
    else
        semantic_error(P, e->span, "%s axis must be a symbol", fn);
}

/* even(axis=i), even("i"): the call form of an index function. */
static void check_indexfn_call(Parser *P, Expr *e, const char *fn)
{
    char extra[256];
    unknown_kwargs(e, extra, sizeof extra);
    const Expr *axis_kw = NULL;
    for (int i = 0; i < e->n_kwargs; i++)
        if (strcmp(e->kwargs[i].name, "axis") == 0)
            axis_kw = e->kwargs[i].value;
    if (e->n_items > 1)
        semantic_error(P, e->span, "%s accepts at most one positional argument", fn);
    else if (e->n_items == 1 && axis_kw)
        semantic_error(P, e->span, "%s axis specified twice", fn);
    else if (extra[0])
        semantic_error(P, e->span, "Unexpected keyword arguments for %s: %s", fn, extra);
    else if (e->n_items == 0 && !axis_kw)
        semantic_error(P, e->span, "%s requires an axis argument", fn);
    else
        indexfn_axis_value(P, e, e->n_items ? e->items[0] : axis_kw, fn);
    e->items = NULL;
    e->n_items = 0;
    e->kwargs = NULL;
    e->n_kwargs = 0;
}

/* even(...) / odd(...), any case → EX_INDEXFN with the name lowercased. */
static Expr *parse_indexfn(Parser *P, const Token *name)
{
    Expr *e = new_expr(P, EX_INDEXFN, name);
    char *fn = tok_str(P, name);
    if (!e || !fn || !(e->name = tok_str(P, name)))
        return NULL;
    for (char *c = (char *)e->name; *c; c++)
        *c = lower(*c);
    if (skip_empty_parens(P)) {
        semantic_error(P, e->span, "%s requires an axis argument", fn);
        return e;
    }
    int how = parse_paren_content(P, e);
    if (how == 1)
        check_indexfn_item(P, e, fn);
    else if (how == 2)
        check_indexfn_call(P, e, fn);
    e->indices = NULL;
    e->n_indices = 0;
    return how ? e : NULL;
}

/* NAME(...) after NAME: index function, builtin call, boolean tensor reference,
 * bare tensor (empty parentheses) or unknown function (SPEC §3.3). */
static Expr *parse_call_like(Parser *P, const Token *name)
{
    if (is_name_ci(name, "even") || is_name_ci(name, "odd"))
        return parse_indexfn(P, name);
    Expr *e = new_expr(P, EX_CALL, name);
    if (!e || !(e->name = tok_str(P, name)))
        return NULL;
    if (fe_is_builtin(e->name))
        return parse_call_args(P, e) ? e : NULL;
    e->kind = EX_TENSOR;
    if (skip_empty_parens(P))
        return e;
    int how = parse_paren_content(P, e);
    if (how == 1)
        e->is_paren = true;
    else if (how == 2)
        e->kind = EX_CALL;
    char hint[FE_HINT_SIZE];
    if (how == 2)
        semantic_error(P, e->span, "unknown function '%s'%s", e->name,
                       fe_builtin_hint(e->name, hint, sizeof hint));
    return how ? e : NULL;
}

/* true / false / none, any case → EX_BOOL (num 0 or 1) or EX_NONE. */
static Expr *parse_keyword_literal(Parser *P)
{
    Token *t = next(P);
    Expr *e = new_expr(P, is_name_ci(t, "none") ? EX_NONE : EX_BOOL, t);
    if (e && e->kind == EX_BOOL)
        e->num = lower(t->text[0]) == 't';
    return e;
}

/* The token right after t in the text, with no whitespace between them. */
static bool is_glued(const Token *t, const Token *r)
{
    return r->text == t->text + t->len;
}

/* NAME, NAME[...] or NAME(...). Only a name glued to '(' is a call, a boolean
 * reference or an index function: `G (1 + X[i])` is the scalar G times a group
 * (SPEC §3.2). Whitespace before '[' does not matter: `X [i]` is `X[i]`. */
static Expr *parse_name_primary(Parser *P)
{
    Token *t = peek(P);
    Token *r = tok_at(P, P->pos + 1); /* the raw token after the name */
    bool is_call = is_punct(r, '(') && is_glued(t, r);
    bool glued = is_call || is_punct(r, '[');
    if (!glued && (is_name_ci(t, "true") || is_name_ci(t, "false") || is_name_ci(t, "none")))
        return parse_keyword_literal(P);
    next(P);
    if (is_call)
        return parse_call_like(P, t);
    Expr *e = new_expr(P, EX_TENSOR, t);
    if (!e || !(e->name = tok_str(P, t)))
        return NULL;
    if (is_punct(r, '[') && !parse_index_list(P, &e->indices, &e->n_indices, false))
        return NULL;
    return e;
}

static Expr *parse_string(Parser *P)
{
    Token *t = next(P);
    Expr *e = new_expr(P, EX_STRING, t);
    if (e)
        e->str = t->str;
    return e;
}

static Expr *parse_primary_inner(Parser *P)
{
    Token *t = peek(P);
    switch (t->kind) {
    case TK_NAME:
        return parse_name_primary(P);
    case TK_NUMBER:
        return make_number(P, NULL, next(P));
    case TK_STRING:
        return parse_string(P);
    default:
        if (is_punct(t, '('))
            return parse_group(P);
        if (is_punct(t, '[') || is_punct(t, '{'))
            return parse_literal(P);
        return error_expected(P, t, "an expression");
    }
}

/* Bumps the recursion depth; beyond FE_MAX_DEPTH the statement fails with an
 * error that is reported at once, even during a speculative parse. */
static bool enter(Parser *P)
{
    if (++P->depth <= FE_MAX_DEPTH)
        return true;
    P->depth--;
    if (!P->failed || P->quiet) {
        P->failed = P->fatal = true;
        fe_error(P->dl, FUSE_E_SYNTAX, peek(P)->span,
                 "expression nested too deeply (more than %d levels)", FE_MAX_DEPTH);
        P->n_errors++;
    }
    return false;
}

static Expr *parse_primary(Parser *P)
{
    if (!enter(P))
        return NULL;
    Expr *e = parse_primary_inner(P);
    P->depth--;
    return e;
}

/* Closes a list or dict: ',' continues, the closer ends; false on anything else. */
static bool literal_sep(Parser *P, const Token *open, char closer, bool *done)
{
    Token *t = peek(P);
    *done = is_punct(t, closer);
    if (*done)
        return true;
    if (is_punct(t, ',')) {
        next(P);
        *done = is_punct(peek(P), closer); /* trailing comma */
        return true;
    }
    char alts[16];
    snprintf(alts, sizeof alts, "',' or '%c'", closer);
    close_error(P, open, alts);
    return false;
}

/* list := "[" [ literal { "," literal } [","] ] "]" */
static Expr *parse_list(Parser *P)
{
    Token *open = next(P);
    P->nest++;
    Expr *e = new_expr(P, EX_LIST, open);
    if (!e)
        return NULL;
    int cap = 0;
    bool done = is_punct(peek(P), ']');
    while (!done) {
        Expr *item = parse_literal(P);
        if (!item || !push(P, &e->items, &e->n_items, &cap, &item, sizeof item) ||
            !literal_sep(P, open, ']', &done))
            return NULL;
    }
    next(P);
    P->nest--;
    return e;
}

/* dict := "{" [ literal ":" literal { "," ... } [","] ] "}" */
static Expr *parse_dict(Parser *P)
{
    Token *open = next(P);
    P->nest++;
    Expr *e = new_expr(P, EX_DICT, open);
    if (!e)
        return NULL;
    int cap = 0;
    bool done = is_punct(peek(P), '}');
    while (!done) {
        Expr *key = parse_literal(P);
        if (!key)
            return NULL;
        if (!is_punct(peek(P), ':'))
            return error_expected(P, peek(P), "':' after the dict key");
        next(P);
        Expr *value = parse_literal(P);
        if (!value || !push(P, &e->items, &e->n_items, &cap, &key, sizeof key) ||
            !push(P, &e->items, &e->n_items, &cap, &value, sizeof value) ||
            !literal_sep(P, open, '}', &done))
            return NULL;
    }
    next(P);
    P->nest--;
    return e;
}

static Expr *parse_literal_inner(Parser *P)
{
    Token *t = peek(P);
    Token *n = peek2(P);
    if (t->kind == TK_NUMBER)
        return make_number(P, NULL, next(P));
    if ((is_punct(t, '-') || is_punct(t, '+')) && n->kind == TK_NUMBER && !n->err &&
        adjacent(t, n)) {
        next(P);
        next(P);
        return make_number(P, t, n);
    }
    if (t->kind == TK_STRING)
        return parse_string(P);
    if (is_name_ci(t, "true") || is_name_ci(t, "false") || is_name_ci(t, "none"))
        return parse_keyword_literal(P);
    if (is_punct(t, '['))
        return parse_list(P);
    if (is_punct(t, '{'))
        return parse_dict(P);
    return error_expected(P, t, "a literal (a number, string, true, false, none, list "
                                "or dict)");
}

/* A literal: number, string, true/false/none, list or dict. */
static Expr *parse_literal(Parser *P)
{
    if (!enter(P))
        return NULL;
    Expr *e = parse_literal_inner(P);
    P->depth--;
    return e;
}

/* ---- statements ---- */

/* True at the end of a statement: a newline or the end of input. */
static bool end_of_statement(Parser *P, const char *after)
{
    Token *t = peek(P);
    if (t->kind == TK_NEWLINE || t->kind == TK_EOF)
        return true;
    if (is_closer(t)) {
        error_at(P, t, "unmatched '%c'", t->text[0]);
        return false;
    }
    char want[80];
    snprintf(want, sizeof want, "'+', '-' or the end of the line after %s", after);
    error_expected(P, t, want);
    return false;
}

/* export := "export" NAME */
static Stmt *parse_export(Parser *P, Stmt *s)
{
    next(P);
    Token *t = peek(P);
    if (t->kind != TK_NAME)
        return error_expected(P, t, "a tensor name after 'export'");
    next(P);
    s->kind = ST_EXPORT;
    if (!(s->name = tok_str(P, t)))
        return NULL;
    Token *e = peek(P);
    if (e->kind != TK_NEWLINE && e->kind != TK_EOF)
        return error_expected(P, e, "the end of the line after 'export NAME'");
    return s;
}

/* sink := STRING "=" sum */
static Stmt *parse_sink(Parser *P, Stmt *s)
{
    Token *path = next(P);
    Token *op = peek(P);
    if (op->kind == TK_OP_ASSIGN && !is_op(op, "="))
        return error_at(P, op, "a sink is written \"path\" = expression; '%.*s' is not "
                               "allowed", op->len, op->text);
    if (!is_op(op, "="))
        return error_expected(P, op, "'=' after the sink path");
    next(P);
    s->kind = ST_SINK;
    s->path = path->str;
    s->path_span = path->span;
    s->rhs = parse_expr_after(P, op);
    return s->rhs ? s : NULL;
}

static AssignOp assign_op(const Token *op)
{
    if (is_op(op, "+="))
        return AOP_ADD;
    if (is_op(op, "max="))
        return AOP_MAX;
    if (is_op(op, "avg="))
        return AOP_AVG;
    return AOP_SET;
}

/* lhs := NAME [ "[" items "]" | "(" items ")" ]; a statement that starts with
 * the token max= / avg= assigns to a tensor named max / avg. */
static Token *parse_lhs(Parser *P, Stmt *s)
{
    Token *t = next(P);
    if (t->kind == TK_OP_ASSIGN) {
        s->name = arena_strndup(P->arena, t->text, 3);
        return s->name ? t : NULL;
    }
    if (!(s->name = tok_str(P, t)))
        return NULL;
    Token *r = raw(P);
    if (is_punct(r, '(') && (is_name_ci(t, "even") || is_name_ci(t, "odd")))
        semantic_error(P, t->span, "the left-hand side must be a tensor, not the index "
                                   "function '%s'", s->name);
    if (is_punct(r, '[') || is_punct(r, '(')) {
        if (!parse_index_list(P, &s->indices, &s->n_indices, true))
            return NULL;
        s->is_paren = is_punct(r, '(') && s->n_indices > 0;
    }
    Token *op = peek(P);
    if (is_closer(op))
        return error_at(P, op, "unmatched '%c'", op->text[0]);
    if (op->kind != TK_OP_ASSIGN)
        return error_expected(P, op, "'=', '+=', 'max=' or 'avg=' after the left-hand side");
    return next(P);
}

/* The string of a lone string RHS, through any parentheses; else NULL. */
static const Expr *lone_string(const Expr *e)
{
    while (e->kind == EX_GROUP)
        e = e->items[0];
    return e->kind == EX_STRING ? e : NULL;
}

/* assign := lhs OP sum; a lone string RHS with '=' is a source. */
static Stmt *parse_assign(Parser *P, Stmt *s)
{
    Token *first = peek(P);
    Token *op = parse_lhs(P, s);
    if (!op)
        return NULL;
    s->kind = ST_EQUATION;
    s->op = op == first ? AOP_SET : assign_op(op); /* "max=X": tensor max, '=' */
    Expr *rhs = parse_expr_after(P, op);
    if (!rhs)
        return NULL;
    const Expr *str = lone_string(rhs);
    if (str && s->op != AOP_SET) {
        semantic_error(P, op->span, "a file source is read with '=' only, not '%.*s'",
                       op->len, op->text);
    } else if (str) {
        s->kind = ST_SOURCE;
        s->path = str->str;
        s->path_span = str->span;
        return s;
    }
    s->rhs = rhs;
    return s;
}

/* statement := export | sink | assign, then the end of the line. */
static Stmt *parse_statement(Parser *P)
{
    Token *first = peek(P);
    Token *r = tok_at(P, P->pos + 1);
    Stmt *s = p_alloc(P, sizeof *s);
    if (!s)
        return NULL;
    s->span = first->span;
    Stmt *done;
    if (is_name(first, "export") && r->kind != TK_OP_ASSIGN && !is_punct(r, '[') &&
        !is_punct(r, '('))
        done = parse_export(P, s);
    else if (first->kind == TK_STRING)
        done = parse_sink(P, s);
    else if (first->kind == TK_NAME || is_op(first, "max=") || is_op(first, "avg="))
        done = parse_assign(P, s);
    else
        done = error_expected(P, first, "a statement (NAME[...] = expression, "
                                        "\"path\" = expression or export NAME)");
    Token *last = P->last;
    if (!done || !end_of_statement(P, "the expression"))
        return NULL;
    if (P->pending_msg) {
        error_span(P, P->pending_span, "%s", P->pending_msg);
        return NULL;
    }
    if (peek(P)->kind == TK_NEWLINE)
        next(P);
    s->text = text_between(P, first, last);
    return s->text ? s : NULL;
}

/* ---- the token buffer ---- */

/* Where token i is kept (i below the chunks' room). */
static Token *tok_slot(Parser *P, int i)
{
    return &P->chunks[i / TOK_CHUNK][i % TOK_CHUNK];
}

/* Lexes until token i exists (or the input ended); false when out of memory. A new
 * chunk is added when the ones there are full: tokens never move while a
 * statement is parsed. */
static bool ensure(Parser *P, int i)
{
    while (P->n_toks <= i && !P->lexed_eof) {
        if (P->n_toks >= MAX_STATEMENT_TOKENS) { /* kept int-sized: out of memory */
            P->nomem = true;
            return false;
        }
        if (P->n_toks == P->n_chunks * TOK_CHUNK) {
            Token *chunk = arena_alloc(P->scratch, sizeof(Token) * TOK_CHUNK);
            if (!chunk || !arena_push_ptr(P->scratch, (void ***)&P->chunks, &P->n_chunks,
                                          &P->cap_chunks, chunk)) {
                P->nomem = true;
                return false;
            }
        }
        Token *t = tok_slot(P, P->n_toks++);
        if (fe_lex_next(&P->lx, t) != FUSE_OK) {
            P->nomem = true;
            return false;
        }
        P->lexed_eof = t->kind == TK_EOF;
    }
    return true;
}

/* Token i, lexed on demand; past the end, the final TK_EOF (or, once lexing has
 * failed, oom_tok). */
static Token *tok_at(Parser *P, int i)
{
    if (P->nomem || !ensure(P, i))
        return &P->oom_tok;
    return tok_slot(P, i < P->n_toks ? i : P->n_toks - 1);
}

/* Drops the tokens before pos when they are at least half of those kept (so the
 * copying stays linear in the input). Only where no token pointer is held: at a
 * statement's start, and while a failed one is skipped. */
static void compact(Parser *P)
{
    if (P->pos < TOK_CHUNK || P->pos < P->n_toks / 2)
        return;
    int n = P->n_toks - P->pos;
    for (int i = 0; i < n; i++)
        *tok_slot(P, i) = *tok_slot(P, P->pos + i);
    P->n_toks = n;
    P->pos = 0;
}

/* Skips the rest of a failed statement: up to a newline outside brackets (counted
 * from where the error left the parser), or one before an unindented line. */
static void resync(Parser *P)
{
    int depth = P->nest;
    P->last = NULL;
    if (P->pos > P->stmt_start && tok_at(P, P->pos - 1)->kind == TK_NEWLINE &&
        tok_at(P, P->pos)->span.col == 1)
        return; /* the error is at the start of the next line: a statement */
    for (;;) {
        const Token *t = tok_at(P, P->pos);
        if (t->kind == TK_EOF)
            return;
        P->pos++;
        if (t->kind == TK_NEWLINE) {
            if (depth <= 0 || tok_at(P, P->pos)->span.col == 1)
                return;
        } else {
            depth += is_opener(t) - is_closer(t);
        }
        compact(P); /* a long line is skipped in constant memory */
    }
}

/* Skips newlines before a statement; false at the end of input or out of memory. */
static bool next_statement(Parser *P)
{
    while (tok_at(P, P->pos)->kind == TK_NEWLINE)
        P->pos++;
    compact(P);
    return tok_at(P, P->pos)->kind != TK_EOF && !P->nomem;
}

/* program := NEWLINE* { statement } */
static void parse_program(Parser *P, Ast *ast)
{
    while (next_statement(P)) {
        P->nest = P->depth = 0;
        P->failed = P->fatal = false;
        P->pending_msg = NULL;
        P->last = NULL;
        P->stmt_start = P->pos;
        Stmt *s = parse_statement(P);
        if (P->nomem)
            break;
        if (s) {
            push(P, &ast->stmts, &ast->n_stmts, &ast->cap_stmts, &s, sizeof s);
            continue;
        }
        if (fe_diags_stopped(P->dl))
            break;
        resync(P);
    }
}

/* What each builtin does, in a phrase, for "did you mean" hints. */
static const struct {
    const char *name, *what;
} BUILTIN_HELP[] = {
    {"step", "step(x): 1 where x > 0, else 0"},
    {"relu", "relu(x): max(x, 0)"},
    {"sig", "sig(x, T): logistic sigmoid; T=0 gives a hard step"},
    {"gelu", "gelu(x): GELU, tanh form"},
    {"exp", "exp(x): natural exponential"},
    {"log", "log(x): natural logarithm"},
    {"tanh", "tanh(x): hyperbolic tangent"},
    {"sqrt", "sqrt(x): square root"},
    {"abs", "abs(x): absolute value"},
    {"sin", "sin(x): sine, in radians"},
    {"cos", "cos(x): cosine, in radians"},
    {"softmax", "softmax(x, axis=): softmax along one axis"},
    {"masked_softmax", "masked_softmax(x, mask, axis=): softmax leaving out masked cells"},
    {"lnorm", "lnorm(x, axis=, eps=): layer normalisation along one axis"},
    {"layernorm", "layernorm(x, axis=): layer normalisation along one axis"},
    {"layer_norm", "layer_norm(x, axis=): layer normalisation along one axis"},
    {"attention", "attention(q, k, v): scaled dot-product attention"},
    {"rope", "rope(x, base=): rotary position embedding"},
    {"concat", "concat(a, b, ..., axis=): joins operands along one axis"},
    {"causal_mask", "causal_mask(L): L x L lower-triangular 0/1 mask"},
    {"const", "const(value): a tensor from literal data"},
    {"topk", "topk(x, k=): the k largest of each row, in a sink only"},
    {"reduce_max", "reduce_max(x, axis=): maximum along one axis"},
    {"reduce_mean", "reduce_mean(x, axis=): mean along one axis"},
    {"max", "max(x, axis=): maximum along one axis"},
    {"mean", "mean(x, axis=): mean along one axis"},
    {"sum", "sum(x, axis=): sum along one axis"},
    {"case", "case(c1, v1, ..., default): the value of the first true condition"},
    {"tucker_dense", "tucker_dense(x, rank=, threshold=): truncated HOSVD, then a threshold"},
};

/* Names users of NumPy and PyTorch type, and the builtin (or the way) to say it. */
static const struct {
    const char *alias, *builtin, *how;
} BUILTIN_ALIASES[] = {
    {"sigmoid", "sig", NULL},
    {"logistic", "sig", NULL},
    {"expit", "sig", NULL},
    {"heaviside", "step", NULL},
    {"average", "mean", NULL},
    {"avg", "mean", NULL},
    {"amax", "max", NULL},
    {"reduce_sum", "sum", NULL},
    {"where", "case", NULL},
    {"cat", "concat", NULL},
    {"concatenate", "concat", NULL},
    {"ln", "log", NULL},
    {"tril", "causal_mask", NULL},
    {"scaled_dot_product_attention", "attention", NULL},
    {"matmul", NULL, "write a product by juxtaposition: C[i,j] = A[i,k] B[k,j]"},
    {"dot", NULL, "write a product by juxtaposition: C[i,j] = A[i,k] B[k,j]"},
    {"einsum", NULL, "write a product by juxtaposition: C[i,j] = A[i,k] B[k,j]"},
};

const char *fe_builtin_hint(const char *name, char *buf, size_t size)
{
    if (!size)
        return buf;
    buf[0] = '\0';
    if (!name)
        return buf;
    const char *near = NULL;
    for (size_t i = 0; i < sizeof BUILTIN_ALIASES / sizeof BUILTIN_ALIASES[0]; i++)
        if (equal_ci(name, strlen(name), BUILTIN_ALIASES[i].alias)) {
            if (!BUILTIN_ALIASES[i].builtin) {
                snprintf(buf, size, "; %s", BUILTIN_ALIASES[i].how);
                return buf;
            }
            near = BUILTIN_ALIASES[i].builtin;
        }
    if (!near) {
        const char *names[sizeof BUILTIN_HELP / sizeof BUILTIN_HELP[0]];
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            names[i] = BUILTIN_HELP[i].name;
        near = sup_nearest(name, names, sizeof names / sizeof names[0]);
    }
    for (size_t i = 0; near && i < sizeof BUILTIN_HELP / sizeof BUILTIN_HELP[0]; i++)
        if (strcmp(near, BUILTIN_HELP[i].name) == 0) {
            snprintf(buf, size, "; did you mean '%s'? (%s)", near, BUILTIN_HELP[i].what);
            break;
        }
    return buf;
}

bool fe_is_builtin(const char *name)
{
    static const char *const builtins[] = {
        "step",      "relu",           "sig",         "gelu",        "exp",
        "log",       "tanh",           "sqrt",        "abs",         "sin",
        "cos",       "softmax",        "masked_softmax", "lnorm",    "layernorm",
        "layer_norm", "attention",     "rope",        "concat",      "causal_mask",
        "const",     "topk",           "reduce_max",  "reduce_mean", "max",
        "mean",      "sum",            "case",        "tucker_dense",
    };
    if (!name)
        return false;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (equal_ci(name, strlen(name), builtins[i]))
            return true;
    return false;
}

fuse_status fe_parse(Arena *arena, const Source *src, DiagList *dl, Ast *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!arena || !src || !src->text || !dl || !out)
        return FUSE_E_ARG;
    Arena scratch; /* the token buffer: the AST keeps no pointer into it */
    arena_init(&scratch);
    Parser P = {.arena = arena, .src = src, .dl = dl, .scratch = &scratch};
    P.oom_tok.kind = TK_EOF;
    P.oom_tok.text = src->text + src->len;
    P.oom_tok.span = (Span){src, 1, 1, 1};
    fe_lex_init(&P.lx, arena, src);
    parse_program(&P, out);
    arena_free_all(&scratch);
    if (P.nomem || arena->is_oom)
        return FUSE_E_NOMEM;
    return P.n_errors ? FUSE_E_SYNTAX : FUSE_OK;
}
