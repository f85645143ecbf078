/*
 * arena.c: bump allocation in growing chunks, freed all at once.
 *
 * Every allocation is 16-byte aligned and zeroed (chunks come from calloc and are
 * never reused). A request that does not fit in the newest chunk opens a new chunk
 * of max(request, doubling chunk size); requests are never split. Out of memory is
 * sticky: the first failure sets is_oom and every later allocation returns NULL, so
 * a stage can check the flag once at its end (as SQLite's mallocFailed).
 * fail_countdown lets tests fail the n-th allocation to exercise those paths.
 */
#include "frontend.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_FIRST_CHUNK ((size_t)16 * 1024)
#define ARENA_MAX_CHUNK ((size_t)1024 * 1024)

struct ArenaChunk {
    ArenaChunk *next; /* older chunk */
    size_t size;      /* usable bytes in data */
    size_t used;      /* bytes handed out */
    alignas(ARENA_ALIGN) unsigned char data[];
};

void arena_init(Arena *a)
{
    memset(a, 0, sizeof *a);
}

void arena_free_all(Arena *a)
{
    if (!a)
        return;
    ArenaChunk *c = a->head;
    while (c) {
        ArenaChunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->is_oom = false;
}

/* Records a failed allocation; always returns NULL. */
static void *arena_fail(Arena *a)
{
    a->is_oom = true;
    return NULL;
}

/* Opens a chunk with room for at least `need` bytes; NULL on OOM. */
static ArenaChunk *arena_new_chunk(Arena *a, size_t need)
{
    size_t size = a->head ? a->head->size * 2 : ARENA_FIRST_CHUNK;
    if (size > ARENA_MAX_CHUNK)
        size = ARENA_MAX_CHUNK;
    if (size < need)
        size = need;
    if (size > SIZE_MAX - sizeof(ArenaChunk))
        return NULL;
    ArenaChunk *c = calloc(1, sizeof(ArenaChunk) + size);
    if (!c)
        return NULL;
    c->size = size;
    c->next = a->head;
    a->head = c;
    return c;
}

void *arena_alloc(Arena *a, size_t size)
{
    if (a->is_oom)
        return NULL;
    if (a->fail_countdown > 0 && --a->fail_countdown == 0)
        return arena_fail(a);
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ARENA_ALIGN)
        return arena_fail(a);
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    ArenaChunk *c = a->head;
    if (!c || c->size - c->used < size) {
        c = arena_new_chunk(a, size);
        if (!c)
            return arena_fail(a);
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return arena_fail(a);
    char *d = arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return arena_fail(a);
    char *d = arena_alloc(a, (size_t)n + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void *arena_grow(Arena *a, void *old, size_t old_size, size_t new_size)
{
    void *p = arena_alloc(a, new_size);
    if (!p)
        return NULL;
    if (old && old_size)
        memcpy(p, old, old_size < new_size ? old_size : new_size);
    return p;
}

bool arena_push_ptr(Arena *a, void ***items, int *n, int *cap, void *item)
{
    if (*n == *cap) {
        if (*cap > (1 << 29))
            return arena_fail(a) != NULL;
        int new_cap = *cap ? *cap * 2 : 8;
        void **grown = arena_grow(a, *items, (size_t)*n * sizeof(void *),
                                  (size_t)new_cap * sizeof(void *));
        if (!grown)
            return false;
        *items = grown;
        *cap = new_cap;
    }
    (*items)[(*n)++] = item;
    return true;
}
