/*
 * diag.c: diagnostics with source spans, and their text form.
 *
 * Diagnostics are appended to a DiagList whose nodes and messages live in the
 * list's arena. Formatting is separate and returns malloc'd text:
 *
 *     prog.fuse:3:9: error: expected ']' to close '[' opened at line 3
 *       Y[i, j = X[i]
 *              ^
 *
 * Columns count characters (UTF-8 code points), a tab is one column; the caret line
 * copies the tabs of the source line so the caret lines up when printed. A line
 * longer than EXCERPT_COLS characters is quoted as a window of that many around
 * the caret, with "..." where it is cut, so a one-line program of megabytes
 * gives a message of one screen line:
 *
 *     big.fuse:1:28680: error: expression expands to more than 4096 terms
 *       ...i] + X[i] + X[i] + X[i] + X[i] + X[i] + X[i] + X[i]...
 *                             ^
 *
 * (shortened here: the window is 100 characters, 40 of them before the caret).
 */
#include "frontend.h"
#include "support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fe_diags_init(DiagList *dl, Arena *arena)
{
    memset(dl, 0, sizeof *dl);
    dl->arena = arena;
}

/* Appends a diagnostic with a vprintf message. Out of memory leaves the list
 * unchanged (the arena's is_oom flag records it). */
static void diag_add(DiagList *dl, DiagSeverity sev, fuse_status code, Span span,
                     const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    Diag *d = arena_alloc(dl->arena, sizeof *d);
    char *msg = d ? arena_strdup(dl->arena, buf) : NULL;
    if (!msg)
        return;
    d->severity = sev;
    d->code = code;
    d->msg = msg;
    d->span = span;
    if (d->span.len < 1)
        d->span.len = 1;
    if (dl->last)
        dl->last->next = d;
    else
        dl->first = d;
    dl->last = d;
}

int fe_diags_limit(const DiagList *dl)
{
    if (!dl || dl->error_limit < 0)
        return 0;
    return dl->error_limit ? dl->error_limit : FE_ERROR_LIMIT_DEFAULT;
}

/* The list holds as many errors as it may. */
static bool is_full(const DiagList *dl)
{
    int limit = fe_diags_limit(dl);
    return limit > 0 && dl->n_errors >= limit;
}

bool fe_diags_stopped(const DiagList *dl)
{
    int limit = fe_diags_limit(dl);
    return limit > 0 && dl->n_errors > limit;
}

/* The one diagnostic that ends a list at its limit (no location, no varargs). */
static void add_too_many(DiagList *dl, fuse_status code, ...)
{
    va_list ap;
    va_start(ap, code);
    diag_add(dl, DS_ERROR, code, (Span){0}, "too many errors emitted, stopping now", ap);
    va_end(ap);
}

fuse_status fe_error(DiagList *dl, fuse_status code, Span span, const char *fmt, ...)
{
    dl->is_dropping = is_full(dl);
    if (dl->is_dropping) {
        if (dl->n_errors++ == fe_diags_limit(dl))
            add_too_many(dl, code);
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    diag_add(dl, DS_ERROR, code, span, fmt, ap);
    va_end(ap);
    dl->n_errors++;
    return code;
}

void fe_note(DiagList *dl, Span span, const char *fmt, ...)
{
    if (dl->is_dropping)
        return;
    va_list ap;
    va_start(ap, fmt);
    diag_add(dl, DS_NOTE, FUSE_OK, span, fmt, ap);
    va_end(ap);
}

/* Finds the start of 1-based line `line` in src; NULL when there is no such line. */
static const char *line_start(const Source *src, int line)
{
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
    }
    return p;
}

static bool is_utf8_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* The most characters of a source line an excerpt quotes, and how many of them
 * come before the caret when a long line is cut. */
#define EXCERPT_COLS 100
#define EXCERPT_LEAD 40

/* p moved forward by up to n characters, stopping at end; *moved (may be NULL)
 * counts them. */
static const char *skip_chars(const char *p, const char *end, long n, long *moved)
{
    long k = 0;
    for (; k < n && p < end; k++) {
        p++;
        while (p < end && is_utf8_cont((unsigned char)*p))
            p++;
    }
    if (moved)
        *moved = k;
    return p;
}

/* The part of line [ls, le) an excerpt quotes, *from to *to: all of it, or a
 * window of EXCERPT_COLS characters that holds the caret's column col. Returns
 * the characters before *from. */
static long excerpt_window(const char *ls, const char *le, int col, const char **from,
                           const char **to)
{
    long skipped = 0;
    *from = ls;
    *to = le;
    if (skip_chars(ls, le, EXCERPT_COLS, NULL) == le)
        return 0; /* short enough */
    if (col - 1 > EXCERPT_LEAD)
        *from = skip_chars(ls, le, col - 1 - EXCERPT_LEAD, &skipped);
    *to = skip_chars(*from, le, EXCERPT_COLS, NULL);
    return skipped;
}

/* Appends the source line (or its window around the caret) and the caret line
 * under span. */
static void put_excerpt(SupBuf *sb, const Span *span)
{
    const Source *src = span->src;
    const char *ls = src->text ? line_start(src, span->line) : NULL;
    if (!ls)
        return;
    const char *end = src->text + src->len, *le = ls;
    while (le < end && *le != '\n')
        le++;
    if (le > ls && le[-1] == '\r')
        le--;
    const char *from, *to;
    int col = span->col > 0 ? span->col : 1;
    long skipped = excerpt_window(ls, le, col, &from, &to);
    sup_buf_puts(sb, from > ls ? "  ..." : "  ");
    sup_buf_append(sb, from, (size_t)(to - from));
    sup_buf_puts(sb, to < le ? "...\n  " : "\n  ");
    if (from > ls)
        sup_buf_puts(sb, "   "); /* under the leading "..." */
    const char *p = from;
    for (long c = skipped + 1; c < col; c++) {
        sup_buf_putc(sb, p < to && *p == '\t' ? '\t' : ' ');
        p = skip_chars(p, to, 1, NULL);
    }
    sup_buf_putc(sb, '^');
    for (int i = 1; i < span->len && p < to; i++) {
        p = skip_chars(p, to, 1, NULL);
        if (p < to)
            sup_buf_putc(sb, '~');
    }
    sup_buf_putc(sb, '\n');
}

static const char *severity_name(DiagSeverity s)
{
    static const char *const names[] = {"error", "warning", "note"};
    _Static_assert(sizeof names / sizeof names[0] == DS_COUNT, "one name per severity");
    return (unsigned)s < DS_COUNT ? names[s] : "error";
}

/* Appends one formatted diagnostic. */
static void put_diag(SupBuf *sb, const Diag *d)
{
    char head[64];
    const Span *sp = &d->span;
    bool located = sp->src && sp->line > 0;
    if (located) {
        sup_buf_puts(sb, sp->src->name ? sp->src->name : "<input>");
        snprintf(head, sizeof head, ":%d:%d: ", sp->line, sp->col > 0 ? sp->col : 1);
        sup_buf_puts(sb, head);
    }
    sup_buf_puts(sb, severity_name(d->severity));
    sup_buf_puts(sb, ": ");
    sup_buf_puts(sb, d->msg ? d->msg : "");
    sup_buf_putc(sb, '\n');
    if (located)
        put_excerpt(sb, sp);
}

char *fe_diag_format(const Diag *d)
{
    if (!d)
        return NULL;
    SupBuf sb = {0};
    put_diag(&sb, d);
    return sup_buf_finish(&sb);
}

char *fe_diags_format(const DiagList *dl)
{
    SupBuf sb = {0};
    for (const Diag *d = dl ? dl->first : NULL; d; d = d->next)
        put_diag(&sb, d);
    return sup_buf_finish(&sb);
}
