/*
 * lexer.c: turns legacy Fuse source text into tokens.
 *
 * The lexer is context free; the parser gives tokens their meaning. It reports no
 * diagnostics itself: a malformed token comes back with Token.err set, and the
 * parser reports it when it reaches it, so errors appear in statement order and
 * only the first one of a statement is shown. Rules (SPEC §3, notes A §1):
 *   - spaces and tabs separate tokens; '#' starts a comment to the end of the line;
 *     "\n" and "\r\n" are newlines, and a run of them (with blank and comment lines)
 *     is one TK_NEWLINE. Whether a newline ends a statement is the parser's call
 *     (inside open brackets it is whitespace).
 *   - NAME is [A-Za-z_][A-Za-z0-9_]*, greedy ("Ymax=" is NAME Ymax then '=').
 *   - numbers are unsigned C literals: 12, 1.5, .5, 5., 1e-3; an exponent needs
 *     digits ("2exp" is 2 then NAME exp). Signs are separate '+'/'-' tokens.
 *   - '=', '+=', 'max=', 'avg=' are TK_OP_ASSIGN (never '==': that is '=' '=').
 *   - strings are double-quoted, single-line, with Python escapes.
 *   - anything else ASCII and printable is a one-character TK_PUNCT; non-ASCII and
 *     control characters outside strings and comments are errors.
 */
#include "frontend.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static int peekc(const Lexer *lx, int k)
{
    return lx->p + k < lx->end ? (unsigned char)lx->p[k] : -1;
}

/* Advances over one byte, keeping line and (character) column up to date. */
static void advance(Lexer *lx)
{
    if (lx->p >= lx->end)
        return;
    if (*lx->p == '\n') {
        lx->line++;
        lx->col = 1;
    } else if (!is_cont((unsigned char)*lx->p)) {
        lx->col++;
    }
    lx->p++;
}

static void advance_n(Lexer *lx, int n)
{
    while (n-- > 0)
        advance(lx);
}

/* Characters (not bytes) in s[0..n). */
static int char_count(const char *s, int n)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        count += !is_cont((unsigned char)s[i]);
    return count;
}

void fe_lex_init(Lexer *lx, Arena *arena, const Source *src)
{
    memset(lx, 0, sizeof *lx);
    lx->arena = arena;
    lx->src = src;
    lx->p = src->text;
    lx->end = src->text + src->len;
    lx->line = 1;
    lx->col = 1;
    if (src->len >= 3 && memcmp(src->text, "\xEF\xBB\xBF", 3) == 0)
        lx->p += 3;
}

const char *fe_tok_kind_name(TokKind kind)
{
    static const char *const names[] = {"end of input", "newline", "name", "number",
                                        "string", "punctuation", "assignment operator"};
    _Static_assert(sizeof names / sizeof names[0] == TK_COUNT, "one name per kind");
    return (unsigned)kind < TK_COUNT ? names[kind] : "?";
}

/* Starts a token of `kind` at the current position. */
static void tok_begin(const Lexer *lx, Token *tok, TokKind kind)
{
    memset(tok, 0, sizeof *tok);
    tok->kind = kind;
    tok->text = lx->p;
    tok->span.src = lx->src;
    tok->span.line = lx->line;
    tok->span.col = lx->col;
}

/* Ends a token at the current position. */
static void tok_end(const Lexer *lx, Token *tok)
{
    tok->len = (int)(lx->p - tok->text);
    tok->span.len = char_count(tok->text, tok->len);
    if (tok->span.len < 1)
        tok->span.len = 1;
}

/* Marks tok as malformed with message msg (an arena string or a literal). */
static void tok_fail(Token *tok, const char *msg)
{
    tok->kind = TK_PUNCT;
    tok->err = msg ? msg : "out of memory";
}

/* Skips spaces, tabs and comments (not newlines). */
static void skip_blanks(Lexer *lx)
{
    for (;;) {
        int c = peekc(lx, 0);
        if (c == ' ' || c == '\t') {
            advance(lx);
        } else if (c == '#') {
            while (peekc(lx, 0) != -1 && peekc(lx, 0) != '\n')
                advance(lx);
        } else {
            return;
        }
    }
}

/* True at "\n" or "\r\n". */
static bool at_newline(const Lexer *lx)
{
    return peekc(lx, 0) == '\n' || (peekc(lx, 0) == '\r' && peekc(lx, 1) == '\n');
}

/* Consumes a run of newlines, blank lines and comment lines. */
static void lex_newlines(Lexer *lx, Token *tok)
{
    tok_begin(lx, tok, TK_NEWLINE);
    advance_n(lx, peekc(lx, 0) == '\r' ? 2 : 1);
    tok->len = (int)(lx->p - tok->text);
    tok->span.len = 1;
    for (;;) {
        skip_blanks(lx);
        if (!at_newline(lx))
            return;
        advance_n(lx, peekc(lx, 0) == '\r' ? 2 : 1);
    }
}

static void lex_name(Lexer *lx, Token *tok)
{
    tok_begin(lx, tok, TK_NAME);
    while (is_alpha(peekc(lx, 0)) || is_digit(peekc(lx, 0)))
        advance(lx);
    tok_end(lx, tok);
    bool is_op = tok->len == 3 && (memcmp(tok->text, "max", 3) == 0 ||
                                   memcmp(tok->text, "avg", 3) == 0);
    if (is_op && peekc(lx, 0) == '=' && peekc(lx, 1) != '=') {
        advance(lx);
        tok->kind = TK_OP_ASSIGN;
        tok_end(lx, tok);
    }
}

/* Decimal digits of text[0..n) into *out; false on int64 overflow. */
static bool parse_int64(const char *text, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        int d = text[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* strtod on a copy of the token, independent of the host's LC_NUMERIC. */
static double parse_double(Lexer *lx, const char *text, int n)
{
    char local[64];
    char *buf = n < (int)sizeof local ? local : arena_alloc(lx->arena, (size_t)n + 1);
    if (!buf)
        return 0.0;
    memcpy(buf, text, (size_t)n);
    buf[n] = '\0';
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = dp[0];
    }
    return strtod(buf, NULL);
}

static void lex_number(Lexer *lx, Token *tok)
{
    tok_begin(lx, tok, TK_NUMBER);
    bool is_int = true;
    while (is_digit(peekc(lx, 0)))
        advance(lx);
    if (peekc(lx, 0) == '.') {
        is_int = false;
        advance(lx);
        while (is_digit(peekc(lx, 0)))
            advance(lx);
    }
    int e = peekc(lx, 0), s = peekc(lx, 1);
    if ((e == 'e' || e == 'E') &&
        (is_digit(s) || ((s == '+' || s == '-') && is_digit(peekc(lx, 2))))) {
        is_int = false;
        advance_n(lx, 2);
        while (is_digit(peekc(lx, 0)))
            advance(lx);
    }
    tok_end(lx, tok);
    tok->is_int = is_int;
    if (is_int && !parse_int64(tok->text, tok->len, &tok->ival)) {
        tok_fail(tok, "integer literal out of range (the largest is 9223372036854775807)");
        return;
    }
    tok->fval = is_int ? (double)tok->ival : parse_double(lx, tok->text, tok->len);
}

/* Appends code point cp as UTF-8 to buf at *n (buf has room for 4 more bytes). */
static void put_utf8(char *buf, int *n, uint32_t cp)
{
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xC0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | (cp >> 12));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | (cp >> 18));
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex_value(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads exactly `digits` hex digits at p[0..]; -1 if they are not all there. */
static long read_hex(const char *p, const char *end, int digits)
{
    long v = 0;
    for (int i = 0; i < digits; i++) {
        int h = p + i < end ? hex_value((unsigned char)p[i]) : -1;
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Decodes the escape at p (just after the backslash) into buf. Returns the bytes
 * consumed after the backslash, or 0 for an invalid escape. */
static int decode_escape(const char *p, const char *end, char *buf, int *n)
{
    static const char simple_in[] = "\\\"'abfnrtv";
    static const char simple_out[] = "\\\"'\a\b\f\n\r\t\v";
    const char *s = strchr(simple_in, *p);
    if (*p && s) {
        buf[(*n)++] = simple_out[s - simple_in];
        return 1;
    }
    if (*p >= '0' && *p <= '7') {
        int v = 0, k = 0;
        while (k < 3 && p + k < end && p[k] >= '0' && p[k] <= '7')
            v = v * 8 + (p[k++] - '0');
        put_utf8(buf, n, (uint32_t)v);
        return k;
    }
    int digits = *p == 'x' ? 2 : *p == 'u' ? 4 : *p == 'U' ? 8 : 0;
    if (digits == 0) { /* unknown escape: kept as written, as Python does */
        buf[(*n)++] = '\\';
        buf[(*n)++] = *p;
        return 1;
    }
    long cp = read_hex(p + 1, end, digits);
    if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    put_utf8(buf, n, (uint32_t)cp);
    return 1 + digits;
}

/* Finishes a bad string token: it runs to the end of the line so lexing resumes
 * there; the span stays on `at` (the opening quote or the bad escape). */
static void string_fail(Lexer *lx, Token *tok, Span at, const char *msg)
{
    while (peekc(lx, 0) != -1 && !at_newline(lx))
        advance(lx);
    tok_end(lx, tok);
    tok->span = at;
    tok_fail(tok, msg);
}

/* Bytes from the opening quote at p to the closing quote or the end of the line;
 * decoded text is never longer (no escape yields more bytes than it is written
 * with), so this sizes the buffer. */
static size_t string_extent(const char *p, const char *end)
{
    const char *q = p + 1;
    while (q < end && *q != '"' && *q != '\n') {
        if (*q == '\\' && q + 1 < end && q[1] != '\n')
            q++;
        q++;
    }
    return (size_t)(q - p);
}

/* Decodes one escape at the backslash under lx->p into buf; false (token failed)
 * when it is invalid or the line ends. */
static bool lex_escape(Lexer *lx, Token *tok, Span open, char *buf, int *n)
{
    Span esc = {lx->src, lx->line, lx->col, 2};
    int next = peekc(lx, 1);
    if (next == -1 || next == '\n' || next == '\r') {
        string_fail(lx, tok, open, "unterminated string (a string must end on its line)");
        return false;
    }
    int used = decode_escape(lx->p + 1, lx->end, buf, n);
    if (used == 0) {
        string_fail(lx, tok, esc, "invalid escape in string literal");
        return false;
    }
    advance_n(lx, 1 + used);
    return true;
}

static void lex_string(Lexer *lx, Token *tok)
{
    tok_begin(lx, tok, TK_STRING);
    Span open = tok->span;
    open.len = 1;
    char *buf = arena_alloc(lx->arena, string_extent(lx->p, lx->end) + 8);
    if (!buf) {
        string_fail(lx, tok, open, NULL);
        return;
    }
    int n = 0;
    advance(lx);
    for (;;) {
        int c = peekc(lx, 0);
        if (c == -1 || c == '\n' || (c == '\r' && peekc(lx, 1) == '\n')) {
            string_fail(lx, tok, open, "unterminated string (a string must end on its line)");
            return;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            if (!lex_escape(lx, tok, open, buf, &n))
                return;
            continue;
        }
        buf[n++] = (char)c;
        advance(lx);
    }
    advance(lx);
    tok_end(lx, tok);
    buf[n] = '\0';
    tok->str = buf;
    tok->str_len = n;
}

/* Length of the UTF-8 sequence at p, or 0 when it is malformed. */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    int n = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (p[0] >= 0xF5 || n == 0 || end - p < n)
        return 0;
    for (int i = 1; i < n; i++)
        if (!is_cont(p[i]))
            return 0;
    return n;
}

/* A character that cannot start a token: one bad token. */
static void lex_bad_char(Lexer *lx, Token *tok)
{
    tok_begin(lx, tok, TK_PUNCT);
    unsigned char c = (unsigned char)*lx->p;
    const char *msg;
    if (c >= 0x80) {
        int n = utf8_len((const unsigned char *)lx->p, (const unsigned char *)lx->end);
        if (n > 0) {
            msg = arena_printf(lx->arena,
                               "unexpected character '%.*s'; only ASCII is allowed "
                               "outside strings and comments", n, lx->p);
            advance_n(lx, n);
        } else {
            msg = arena_printf(lx->arena, "invalid UTF-8 byte 0x%02X", c);
            lx->p++; /* a stray byte: one column */
            lx->col++;
        }
    } else {
        msg = c == '\r' ? "carriage return without a following newline"
                        : arena_printf(lx->arena, "unexpected control character 0x%02X", c);
        advance(lx);
    }
    tok_end(lx, tok);
    tok_fail(tok, msg);
}

/* One-character punctuation, '+=' and '='. */
static void lex_punct(Lexer *lx, Token *tok)
{
    int c = peekc(lx, 0);
    tok_begin(lx, tok, TK_PUNCT);
    if (c == '=' || (c == '+' && peekc(lx, 1) == '=')) {
        tok->kind = TK_OP_ASSIGN;
        advance_n(lx, c == '=' ? 1 : 2);
    } else {
        advance(lx);
    }
    tok_end(lx, tok);
}

/* Dispatches on the first character of a token. */
static void lex_token(Lexer *lx, Token *tok)
{
    int c = peekc(lx, 0);
    if (at_newline(lx))
        lex_newlines(lx, tok);
    else if (is_alpha(c))
        lex_name(lx, tok);
    else if (is_digit(c) || (c == '.' && is_digit(peekc(lx, 1))))
        lex_number(lx, tok);
    else if (c == '"')
        lex_string(lx, tok);
    else if (c > ' ' && c < 0x7F)
        lex_punct(lx, tok);
    else
        lex_bad_char(lx, tok);
}

fuse_status fe_lex_next(Lexer *lx, Token *tok)
{
    for (;;) {
        skip_blanks(lx);
        if (lx->p >= lx->end) {
            tok_begin(lx, tok, TK_EOF);
            tok->span.len = 1;
            break;
        }
        lex_token(lx, tok);
        /* Leading newlines and repeats carry no information. */
        if (tok->kind != TK_NEWLINE || (lx->emitted && !lx->at_newline))
            break;
    }
    lx->at_newline = tok->kind == TK_NEWLINE;
    if (tok->kind != TK_NEWLINE)
        lx->emitted = true;
    return lx->arena->is_oom ? FUSE_E_NOMEM : FUSE_OK;
}

fuse_status fe_lex_all(Arena *arena, Arena *array_arena, const Source *src, DiagList *dl,
                       Token **toks, int *n_toks)
{
    Lexer lx;
    fe_lex_init(&lx, arena, src);
    Token *arr = NULL;
    int n = 0, cap = 0;
    fuse_status st = FUSE_OK;
    for (;;) {
        if (n == cap) {
            int new_cap = cap ? cap * 2 : 64;
            if (cap > INT32_MAX / 4)
                return FUSE_E_NOMEM;
            arr = arena_grow(array_arena, arr, (size_t)n * sizeof *arr,
                             (size_t)new_cap * sizeof *arr);
            if (!arr)
                return FUSE_E_NOMEM;
            cap = new_cap;
        }
        Token *t = &arr[n++];
        if (fe_lex_next(&lx, t) != FUSE_OK)
            return FUSE_E_NOMEM;
        if (t->err && dl)
            st = fe_error(dl, FUSE_E_SYNTAX, t->span, "%s", t->err);
        if (t->kind == TK_EOF)
            break;
    }
    *toks = arr;
    *n_toks = n;
    return st;
}

/* ---- token helpers shared by the two parsers ---- */

TokDesc fe_tok_describe(const Token *t)
{
    TokDesc d;
    if (t->kind == TK_EOF)
        snprintf(d.s, sizeof d.s, "end of input");
    else if (t->kind == TK_NEWLINE)
        snprintf(d.s, sizeof d.s, "end of line");
    else if (t->len > 24)
        snprintf(d.s, sizeof d.s, "'%.21s...'", t->text);
    else
        snprintf(d.s, sizeof d.s, "'%.*s'", t->len, t->text);
    return d;
}

bool fe_tok_int(const Token *t, int64_t *v, bool *dotted)
{
    *dotted = false;
    if (t->kind != TK_NUMBER || t->err)
        return false;
    if (t->is_int) {
        *v = t->ival;
        return true;
    }
    int64_t x = 0;
    for (int i = 0; i < t->len - 1; i++) {
        if (t->text[i] < '0' || t->text[i] > '9' || x > (INT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (t->text[i] - '0');
    }
    if (t->len < 2 || t->text[t->len - 1] != '.')
        return false;
    *v = x;
    *dotted = true;
    return true;
}
