/*
 * repl_complete.c: what Tab completes at the REPL's prompt, as a pure function of
 * the line and the cursor (so it is tested without a terminal): commands, `:set`
 * keys and values (the lists :set checks against), file names, builtins (the
 * compiler's table) and the session's tensor names. Also the string lists the
 * REPL's files share.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ir.h"
#include "repl.h"
#include "support.h"

/* At most this many file names are offered (a huge directory stays quick). */
enum { MAX_FILES = 4096 };

/* Words that are neither tensors nor builtins but complete like them. */
static const char *const KEYWORDS[] = {"export", "true", "false", "none"};

/* ---- word lists ---- */

bool words_has(const Words *w, const char *s, size_t n)
{
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->v[i]) == n && strncmp(w->v[i], s, n) == 0)
            return true;
    return false;
}

/* Appends a copy of s[0..n) (no check for duplicates); false on OOM. */
static bool words_push(Words *w, const char *s, size_t n)
{
    if (!sup_grow((void **)&w->v, &w->cap, w->n + 1, sizeof *w->v))
        return false;
    char *copy = strndup(s, n);
    if (!copy)
        return false;
    w->v[w->n++] = copy;
    return true;
}

bool words_add(Words *w, const char *s, size_t n)
{
    return words_has(w, s, n) || words_push(w, s, n);
}

void words_free(Words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    *w = (Words){0};
}

static int compare_words(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- candidates ---- */

/* Adds `name` (with `prefix` before it) when it starts with word[0..n). */
static bool offer(ReplCompletion *c, const char *word, size_t n, const char *prefix,
                  const char *name)
{
    size_t k = strlen(prefix);
    bool match = k >= n ? strncmp(prefix, word, n) == 0
                        : strncmp(prefix, word, k) == 0 && strncmp(name, word + k, n - k) == 0;
    if (!match)
        return true;
    size_t len = k + strlen(name);
    char *both = malloc(len + 1);
    if (!both)
        return false;
    memcpy(both, prefix, k);
    memcpy(both + k, name, len - k + 1);
    bool ok = words_add(&c->cands, both, len);
    free(both);
    return ok;
}

static bool offer_commands(ReplCompletion *c, const char *word, size_t n)
{
    bool ok = true;
    for (int i = 0; i < CMD_COUNT && ok; i++)
        ok = offer(c, word, n, "", REPL_COMMANDS[i].name);
    return ok;
}

static bool offer_builtins(ReplCompletion *c, const char *word, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < ir_builtin_count() && ok; i++)
        if (!ir_builtin_info(i)->is_internal)
            ok = offer(c, word, n, "", ir_builtin_info(i)->name);
    return ok;
}

static bool offer_tensors(ReplCompletion *c, const char *word, size_t n, const Words *tensors)
{
    bool ok = true;
    for (size_t i = 0; tensors && i < tensors->n && ok; i++)
        ok = offer(c, word, n, "", tensors->v[i]);
    return ok;
}

/* Whether directory entry e of dir is a directory (following links). */
static bool is_directory(const char *dir, const struct dirent *e)
{
    if (e->d_type == DT_DIR)
        return true;
    if (e->d_type != DT_LNK && e->d_type != DT_UNKNOWN)
        return false;
    SupBuf path = {0};
    struct stat st;
    bool yes = sup_buf_printf(&path, "%s/%s", dir, e->d_name) && stat(path.p, &st) == 0 &&
               S_ISDIR(st.st_mode);
    free(path.p);
    return yes;
}

/* The files whose path starts with word[0..n): the directory part as typed, then
 * each matching entry ('/' after a directory). Hidden entries only when the
 * typed name starts with '.'. A directory that cannot be read offers nothing. */
static bool offer_files(ReplCompletion *c, const char *word, size_t n)
{
    const char *slash = NULL;
    for (const char *p = word; p < word + n; p++)
        if (*p == '/')
            slash = p;
    size_t dir_len = slash ? (size_t)(slash - word) + 1 : 0;
    char *dir = slash == word ? strdup("/") : slash ? strndup(word, dir_len - 1) : strdup(".");
    char *typed_dir = strndup(word, dir_len);
    const char *base = word + dir_len;
    size_t base_len = n - dir_len;
    bool ok = dir && typed_dir;
    DIR *d = ok ? opendir(dir) : NULL;
    for (struct dirent *e; d && ok && c->cands.n < MAX_FILES && (e = readdir(d)) != NULL;) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            (name[0] == '.' && (base_len == 0 || base[0] != '.')) ||
            strncmp(name, base, base_len) != 0)
            continue;
        SupBuf full = {0};
        ok = sup_buf_printf(&full, "%s%s%s", typed_dir, name, is_directory(dir, e) ? "/" : "") &&
             words_push(&c->cands, full.p, full.len);
        free(full.p);
    }
    if (d)
        closedir(d);
    free(dir), free(typed_dir);
    return ok;
}

/* ---- where the cursor is ---- */

static size_t skip_blanks(const char *s, size_t i, size_t end)
{
    while (i < end && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

static size_t word_end(const char *s, size_t i, size_t end)
{
    while (i < end && s[i] != ' ' && s[i] != '\t')
        i++;
    return i;
}

/* `:set KEY VALUE`: the key, or the values of the key, at the cursor. */
static bool complete_set(const char *line, size_t at, size_t cursor, ReplCompletion *c)
{
    size_t key_end = word_end(line, at, cursor);
    c->start = at;
    if (key_end == cursor) {
        c->unique_suffix = " ";
        bool ok = true;
        for (size_t i = 0; i < REPL_N_SETTINGS && ok; i++)
            ok = offer(c, line + at, cursor - at, "", REPL_SETTINGS[i].key);
        return ok;
    }
    size_t v = skip_blanks(line, key_end, cursor);
    if (word_end(line, v, cursor) != cursor)
        return true; /* past the value */
    c->start = v;
    if (key_end - at == 7 && strncmp(line + at, "weights", 7) == 0)
        return offer_files(c, line + v, cursor - v); /* a manifest path */
    bool ok = true;
    for (size_t i = 0; i < REPL_N_SETTINGS && ok; i++) {
        const ReplSetting *s = &REPL_SETTINGS[i];
        if (strlen(s->key) != key_end - at || strncmp(s->key, line + at, key_end - at) != 0)
            continue;
        for (size_t k = 0; k < s->n_values && ok; k++)
            ok = offer(c, line + v, cursor - v, "", s->values[k]);
    }
    return ok;
}

/* A line starting with ':' (from `colon`): the command, or its argument. */
static bool complete_command(const char *line, size_t colon, size_t cursor, const Words *tensors,
                             ReplCompletion *c)
{
    size_t end = word_end(line, colon, cursor);
    if (end == cursor) {
        c->start = colon;
        c->unique_suffix = " ";
        return offer_commands(c, line + colon, cursor - colon);
    }
    ReplCommandId id = repl_command_find(line + colon, end - colon);
    size_t at = skip_blanks(line, end, cursor);
    const char *word = line + at;
    size_t n = cursor - at;
    c->start = at;
    switch (id) {
    case CMD_LOAD:
    case CMD_SAVE: return offer_files(c, word, n);
    case CMD_SET: return complete_set(line, at, cursor, c);
    case CMD_HELP: return offer_builtins(c, word, n) && offer_commands(c, word, n);
    case CMD_SHOW:
    case CMD_SHAPE:
    case CMD_DROP:
    case CMD_EXPLAIN:
    case CMD_EMIT:
        return word_end(line, at, cursor) != cursor || offer_tensors(c, word, n, tensors);
    default: return true;
    }
}

/* Where an open string starts in line[0..cursor) (the index after its quote),
 * or (size_t)-1 when the cursor is not inside a string. A comment ends the
 * search: nothing there completes. */
static size_t open_quote(const char *line, size_t cursor, bool *in_comment)
{
    *in_comment = false;
    for (size_t i = 0; i < cursor; i++) {
        if (line[i] == '#') {
            *in_comment = true;
            return (size_t)-1;
        }
        if (line[i] != '"')
            continue;
        size_t j = i + 1;
        while (j < cursor && line[j] != '"')
            j += line[j] == '\\' && j + 1 < cursor ? 2 : 1;
        if (j >= cursor)
            return i + 1;
        i = j;
    }
    return (size_t)-1;
}

static bool is_name_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

bool repl_complete(const char *line, size_t cursor, const Words *tensors, ReplCompletion *c)
{
    *c = (ReplCompletion){.unique_suffix = ""};
    if (!line)
        return true;
    size_t len = strlen(line);
    if (cursor > len)
        cursor = len;
    c->start = c->end = cursor;
    size_t first = skip_blanks(line, 0, cursor);
    bool ok;
    bool in_comment = false;
    size_t quote = open_quote(line, cursor, &in_comment);
    if (first < cursor && line[first] == ':') {
        ok = complete_command(line, first, cursor, tensors, c);
    } else if (in_comment) {
        ok = true;
    } else if (quote != (size_t)-1) {
        c->start = quote;
        c->unique_suffix = "\"";
        ok = offer_files(c, line + quote, cursor - quote);
    } else {
        size_t start = cursor;
        while (start > 0 && is_name_char(line[start - 1]))
            start--;
        c->start = start;
        const char *word = line + start;
        size_t n = cursor - start;
        ok = offer_tensors(c, word, n, tensors) && offer_builtins(c, word, n);
        for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0] && ok; i++)
            ok = offer(c, word, n, "", KEYWORDS[i]);
    }
    if (!ok) {
        repl_completion_free(c);
        return false;
    }
    if (c->cands.n > 1)
        qsort(c->cands.v, c->cands.n, sizeof *c->cands.v, compare_words);
    return true;
}

void repl_completion_free(ReplCompletion *c)
{
    words_free(&c->cands);
}

char *repl_completion_text(const ReplCompletion *c, bool *show)
{
    *show = false;
    size_t typed = c->end - c->start;
    if (c->cands.n == 0)
        return strdup("");
    const char *first = c->cands.v[0];
    size_t k = strlen(first);
    for (size_t i = 1; i < c->cands.n; i++) {
        size_t j = 0;
        while (j < k && c->cands.v[i][j] == first[j])
            j++;
        k = j;
    }
    while (k > typed && ((unsigned char)first[k] & 0xC0) == 0x80)
        k--; /* not inside a UTF-8 character */
    if (k < typed)
        k = typed;
    *show = c->cands.n > 1 && k == typed;
    bool unique = c->cands.n == 1 && first[0] && first[strlen(first) - 1] != '/';
    const char *suffix = unique ? c->unique_suffix : "";
    SupBuf out = {0};
    if (!sup_buf_append(&out, first + typed, k - typed) || !sup_buf_puts(&out, suffix) ||
        !sup_buf_puts(&out, "")) {
        free(out.p);
        return NULL;
    }
    return out.p;
}
