/*
 * grow.c: growth of malloc'd arrays by doubling.
 */
#include "support.h"

#include <stdint.h>
#include <stdlib.h>

bool sup_grow(void **items, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : 8;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2)
            return false;
        cap2 *= 2;
    }
    if (elem && cap2 > SIZE_MAX / elem)
        return false;
    void *p = realloc(*items, cap2 * elem);
    if (!p)
        return false;
    *items = p;
    *cap = cap2;
    return true;
}
