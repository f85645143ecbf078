/*
 * suggest.c: the nearest spelling among candidates, for "did you mean" hints.
 * Distance is the optimal-string-alignment form of Damerau-Levenshtein (an
 * adjacent swap costs 1), compared without case. Also the one comparison of
 * option values the CLI and the REPL share.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define MAX_WORD 64 /* longer words are not compared */

size_t sup_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > MAX_WORD || m > MAX_WORD)
        return (size_t)-1;
    size_t d[MAX_WORD + 1][MAX_WORD + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *sup_nearest(const char *word, const char *const *candidates, size_t n)
{
    if (!word || !*word)
        return NULL;
    size_t len = strlen(word);
    size_t limit = len < 3 ? 0 : len / 3 > 1 ? len / 3 : 1;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i])
            continue;
        size_t d = sup_edit_distance(word, candidates[i]);
        if (d < best_d)
            best = candidates[i], best_d = d;
    }
    return best;
}

static int fold_word_char(unsigned char c)
{
    return c == '-' ? '_' : tolower(c);
}

bool sup_same_word(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (fold_word_char((unsigned char)*a) != fold_word_char((unsigned char)*b))
            return false;
    return *a == *b;
}
