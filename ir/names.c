/*
 * names.c: a map from names to small integers, kept in an arena.
 *
 * Building the IR looks a name up for every tensor reference; a linear search
 * over the tensors made that quadratic in the program's size (a 10,000-equation
 * program spent seconds in strcmp). This is an open-addressing table (linear
 * probing, FNV-1a hashes) that doubles when half full; the old table stays in the
 * arena until the arena is freed (amortised, at most as much again). Keys are not
 * copied: they must live as long as the arena (they are AST or arena strings).
 */
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "support.h"

struct IrNameMap {
    Arena *arena;
    const char **key; /* cap slots; NULL: empty */
    int *val;
    int cap, n; /* cap is a power of two */
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of key in m, or the empty slot where it would go. */
static int name_slot(const IrNameMap *m, const char *key)
{
    int i = (int)(name_hash(key) & (uint64_t)(m->cap - 1));
    while (m->key[i] && strcmp(m->key[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static bool name_map_resize(IrNameMap *m, int cap)
{
    const char **key = arena_alloc(m->arena, sizeof *key * (size_t)cap);
    int *val = arena_alloc(m->arena, sizeof *val * (size_t)cap);
    if (!key || !val)
        return false;
    const char **old_key = m->key;
    int *old_val = m->val, old_cap = m->cap;
    m->key = key;
    m->val = val;
    m->cap = cap;
    for (int i = 0; i < old_cap; i++)
        if (old_key[i]) {
            int s = name_slot(m, old_key[i]);
            m->key[s] = old_key[i];
            m->val[s] = old_val[i];
        }
    return true;
}

IrNameMap *ir_name_map_new(Arena *arena)
{
    IrNameMap *m = arena_alloc(arena, sizeof *m);
    if (!m)
        return NULL;
    m->arena = arena;
    return name_map_resize(m, 16) ? m : NULL;
}

bool ir_name_map_put(IrNameMap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap && !name_map_resize(m, 2 * m->cap))
        return false;
    int s = name_slot(m, key);
    if (m->key[s])
        return true; /* the first entry of a name stays */
    m->key[s] = key;
    m->val[s] = val;
    m->n++;
    return true;
}

int ir_name_map_get(const IrNameMap *m, const char *key)
{
    int s = name_slot(m, key);
    return m->key[s] ? m->val[s] : -1;
}

const char *ir_tensor_nearest(const IrProgram *p, const char *name)
{
    if (p->n_tensors <= 0)
        return NULL;
    const char **names = malloc((size_t)p->n_tensors * sizeof *names);
    if (!names)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < p->n_tensors; i++)
        if (p->tensors[i]->kind != TEN_TEMP)
            names[n++] = p->tensors[i]->name;
    const char *near = sup_nearest(name, names, n);
    free(names);
    return near;
}

IrTensor *ir_tensor_find(const IrProgram *p, const char *name)
{
    if (p->tensor_names) {
        int id = ir_name_map_get(p->tensor_names, name);
        if (id < 0)
            return NULL;
        if (p->tensors[id]->kind != TEN_TEMP)
            return p->tensors[id];
        /* a temporary of that name came first: search as below */
    }
    for (int i = 0; i < p->n_tensors; i++)
        if (p->tensors[i]->kind != TEN_TEMP && strcmp(p->tensors[i]->name, name) == 0)
            return p->tensors[i];
    return NULL;
}
