/*
 * strbuf.c: a growing NUL-terminated text buffer, a malloc'ing printf, the
 * error-message helper every stage's fallible functions use, and the check that
 * names are distinct.
 */
#include "support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sup_buf_append(SupBuf *b, const char *s, size_t n)
{
    if (b->is_oom)
        return false;
    if (n + 1 > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (n + 1 > cap - b->len && cap <= SIZE_MAX / 2)
            cap *= 2;
        char *p = n + 1 > cap - b->len ? NULL : realloc(b->p, cap);
        if (!p) {
            b->is_oom = true;
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

bool sup_buf_puts(SupBuf *b, const char *s)
{
    return sup_buf_append(b, s, strlen(s));
}

bool sup_buf_putc(SupBuf *b, char c)
{
    return sup_buf_append(b, &c, 1);
}

char *sup_buf_finish(SupBuf *b)
{
    if (!b->is_oom && !b->p)
        sup_buf_append(b, "", 0);
    if (b->is_oom) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    return b->p;
}

bool sup_buf_printf(SupBuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    bool ok = len >= 0 && !b->is_oom;
    if (len < 0)
        b->is_oom = true; /* an encoding error: the text would be wrong, so fail it */
    if (ok && (size_t)len < sizeof small) {
        ok = sup_buf_append(b, small, (size_t)len);
    } else if (ok) {
        char *big = malloc((size_t)len + 1);
        ok = big != NULL;
        b->is_oom |= !ok;
        if (ok) {
            vsnprintf(big, (size_t)len + 1, fmt, ap2);
            ok = sup_buf_append(b, big, (size_t)len);
            free(big);
        }
    }
    va_end(ap2);
    return ok;
}

char *sup_strprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

fuse_status sup_fail(char **err, fuse_status st, const char *fmt, ...)
{
    if (!err)
        return st;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *err = len < 0 ? NULL : malloc((size_t)len + 1);
    if (*err)
        vsnprintf(*err, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    return st;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *sup_duplicate_name(const char *const *names, size_t n, bool *is_oom)
{
    *is_oom = false;
    if (n < 2)
        return NULL;
    const char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        *is_oom = true;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_names);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    free(sorted);
    return dup;
}
