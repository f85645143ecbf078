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
 * copies the tabs of the source line so the caret lines up when printed.
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

fuse_status fe_error(DiagList *dl, fuse_status code, Span span, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(dl, DS_ERROR, code, span, fmt, ap);
    va_end(ap);
    dl->n_errors++;
    return code;
}

void fe_note(DiagList *dl, Span span, const char *fmt, ...)
{
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

/* Appends the source line and the caret line under span. */
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
    sup_buf_puts(sb, "  ");
    sup_buf_append(sb, ls, (size_t)(le - ls));
    sup_buf_puts(sb, "\n  ");
    const char *p = ls;
    for (int col = 1; col < span->col; col++) {
        sup_buf_putc(sb, p < le && *p == '\t' ? '\t' : ' ');
        if (p < le)
            p++;
        while (p < le && is_utf8_cont((unsigned char)*p))
            p++;
    }
    sup_buf_putc(sb, '^');
    for (int i = 1; i < span->len && p < le; i++) {
        p++;
        while (p < le && is_utf8_cont((unsigned char)*p))
            p++;
        if (p < le)
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
