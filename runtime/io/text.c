/*
 * text.c: bag-of-words sources (.txt, .md) and their vocabulary sidecar.
 *
 * A text file is UTF-8; it is split on runs of whitespace as Python's str.split()
 * does (the Unicode White_Space characters, plus the ASCII separators 0x1C-0x1F),
 * so tokens keep their case and punctuation ("Hello," and "hello" differ). Token
 * p becomes row p of a (tokens × vocabulary) 0/1 matrix, with its 1 in the
 * token's vocabulary column.
 *
 * The vocabulary sidecar, "<path minus its extension>.vocab.json", keeps column
 * numbers stable across runs and edits of the text. It is read in any of the
 * three layouts the original implementation accepted (see io.h); indices need not
 * be contiguous (the vocabulary size is the largest index + 1) but must be
 * distinct, as must tokens. Tokens not in it get the next free indices in order
 * of first occurrence. Where it is read and saved is the caller's (IoVocabPlace):
 * the runtime saves it only under the output root, only from a run that writes
 * sinks, so checking a program or reading from a read-only directory writes
 * nothing. It is saved (atomically, in the items layout, sorted by index, spaced
 * like Python's json.dumps) only when none was found or it gained a token: an
 * unchanged vocabulary leaves the file untouched. Tokens are kept byte for byte:
 * one holding U+0000 is written as "\u0000" and read back with JSON_ALLOW_NUL,
 * and text that is not UTF-8 is refused before any token is made. Unlike the
 * original, a sidecar that does not parse is an error, not silently replaced, and
 * "a.b.txt" owns "a.b.vocab.json" rather than sharing "a.vocab.json".
 *
 * The vocabulary is an array of entries plus an open-addressing hash index.
 */
#define _POSIX_C_SOURCE 200809L

#include "io.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct VocabEntry {
    char *tok;      /* malloc'd, NUL-terminated copy */
    size_t len;     /* bytes */
    int64_t index;  /* column */
} VocabEntry;

typedef struct Vocab {
    const char *path;   /* the sidecar read (or to be saved), for messages */
    VocabEntry *e;
    size_t n, cap;
    int64_t *slots;     /* entry number + 1 per hash slot; 0 = empty */
    size_t n_slots;     /* a power of two, at least twice n */
    int64_t size;       /* largest index + 1 */
} Vocab;

static void vocab_free(Vocab *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->e[i].tok);
    free(v->e);
    free(v->slots);
}

/* FNV-1a over the token's bytes. */
static uint64_t token_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The slot holding token s, or the empty slot where it would go. */
static size_t vocab_slot(const Vocab *v, const char *s, size_t n)
{
    size_t mask = v->n_slots - 1, i = (size_t)token_hash(s, n) & mask;
    while (v->slots[i]) {
        const VocabEntry *e = &v->e[v->slots[i] - 1];
        if (e->len == n && memcmp(e->tok, s, n) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

/* Column of token s, or -1. */
static int64_t vocab_find(const Vocab *v, const char *s, size_t n)
{
    if (v->n_slots == 0)
        return -1;
    int64_t k = v->slots[vocab_slot(v, s, n)];
    return k ? v->e[k - 1].index : -1;
}

/* Doubles the hash index and re-inserts every entry; false on OOM. */
static bool vocab_rehash(Vocab *v)
{
    size_t n_slots = v->n_slots ? v->n_slots * 2 : 64;
    int64_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return false;
    free(v->slots);
    v->slots = slots;
    v->n_slots = n_slots;
    for (size_t i = 0; i < v->n; i++)
        v->slots[vocab_slot(v, v->e[i].tok, v->e[i].len)] = (int64_t)i + 1;
    return true;
}

/* Adds a token that is not yet present with the given column; false on OOM. */
static bool vocab_add(Vocab *v, const char *s, size_t n, int64_t index)
{
    if ((v->n + 1) * 2 > v->n_slots && !vocab_rehash(v))
        return false;
    if (!sup_grow((void **)&v->e, &v->cap, v->n + 1, sizeof *v->e))
        return false;
    char *tok = malloc(n + 1);
    if (!tok)
        return false;
    memcpy(tok, s, n);
    tok[n] = '\0';
    v->e[v->n] = (VocabEntry){tok, n, index};
    v->slots[vocab_slot(v, s, n)] = (int64_t)++v->n;
    if (index >= v->size)
        v->size = index + 1;
    return true;
}

/* Adds one sidecar entry after checking its index and that the token is new. */
static fuse_status vocab_load_one(Vocab *v, const char *tok, size_t len, json_t *index,
                                  char **err)
{
    if (!json_is_integer(index) || json_integer_value(index) < 0 ||
        json_integer_value(index) >= IO_MAX_READ_ELEMS)
        return sup_fail(err, FUSE_E_IO, "%s: the index of token '%s' is not an integer in "
                       "0..2^31-1", v->path, tok);
    if (vocab_find(v, tok, len) >= 0)
        return sup_fail(err, FUSE_E_IO, "%s: token '%s' is listed twice", v->path, tok);
    if (!vocab_add(v, tok, len, (int64_t)json_integer_value(index)))
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", v->path);
    return FUSE_OK;
}

/* {"version": 1, "items": [{"token": T, "index": I}, ...]}; both keys optional. */
static fuse_status vocab_load_items(Vocab *v, json_t *root, char **err)
{
    json_t *version = json_object_get(root, "version");
    json_t *items = json_object_get(root, "items");
    if (version && (!json_is_integer(version) || json_integer_value(version) != 1))
        return sup_fail(err, FUSE_E_IO, "%s: unsupported vocabulary version (expected 1)",
                       v->path);
    if (items && !json_is_array(items))
        return sup_fail(err, FUSE_E_IO, "%s: \"items\" is not a list", v->path);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        json_t *tok = json_object_get(it, "token");
        if (!json_is_string(tok))
            return sup_fail(err, FUSE_E_IO, "%s: item %zu has no string \"token\"", v->path,
                           i);
        fuse_status st = vocab_load_one(v, json_string_value(tok), json_string_length(tok),
                                        json_object_get(it, "index"), err);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

/* A plain {"token": index, ...} object, or a ["token", ...] list. */
static fuse_status vocab_load_plain(Vocab *v, json_t *root, char **err)
{
    fuse_status st = FUSE_OK;
    if (json_is_object(root)) {
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach(root, key, klen, val) {
            if ((st = vocab_load_one(v, key, klen, val, err)) != FUSE_OK)
                return st;
        }
        return FUSE_OK;
    }
    size_t i;
    json_t *tok;
    json_array_foreach(root, i, tok) {
        if (!json_is_string(tok))
            return sup_fail(err, FUSE_E_IO, "%s: entry %zu is not a string", v->path, i);
        json_t *index = json_integer((json_int_t)i);
        st = index ? vocab_load_one(v, json_string_value(tok), json_string_length(tok),
                                    index, err)
                   : sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", v->path);
        json_decref(index);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

static int cmp_entry_index(const void *a, const void *b)
{
    int64_t x = (*(const VocabEntry *const *)a)->index;
    int64_t y = (*(const VocabEntry *const *)b)->index;
    return (x > y) - (x < y);
}

/* The entries ordered by column, in *order (malloc'd); false on OOM. */
static bool vocab_sorted(const Vocab *v, const VocabEntry ***order)
{
    *order = malloc((v->n ? v->n : 1) * sizeof **order);
    if (!*order)
        return false;
    for (size_t i = 0; i < v->n; i++)
        (*order)[i] = &v->e[i];
    qsort(*order, v->n, sizeof **order, cmp_entry_index);
    return true;
}

/* Two tokens may not share a column. */
static fuse_status vocab_check_distinct(const Vocab *v, char **err)
{
    const VocabEntry **order;
    if (!vocab_sorted(v, &order))
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", v->path);
    fuse_status st = FUSE_OK;
    for (size_t i = 1; i < v->n && st == FUSE_OK; i++) {
        if (order[i]->index == order[i - 1]->index)
            st = sup_fail(err, FUSE_E_IO, "%s: tokens '%s' and '%s' share index %lld",
                         v->path, order[i - 1]->tok, order[i]->tok,
                         (long long)order[i]->index);
    }
    free(order);
    return st;
}

/* Fills v from the sidecar text. */
static fuse_status vocab_parse(Vocab *v, const char *text, size_t n, char **err)
{
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                              &je);
    if (!root)
        return sup_fail(err, FUSE_E_IO, "%s:%d:%d: not a vocabulary: %s", v->path, je.line,
                       je.column, je.text);
    fuse_status st;
    if (json_is_object(root) &&
        (json_object_get(root, "items") || json_object_get(root, "version")))
        st = vocab_load_items(v, root, err);
    else if (json_is_object(root) || json_is_array(root))
        st = vocab_load_plain(v, root, err);
    else
        st = sup_fail(err, FUSE_E_IO, "%s: a vocabulary is a JSON object or list", v->path);
    json_decref(root);
    return st == FUSE_OK ? vocab_check_distinct(v, err) : st;
}

/* Whether a file is there to read: anything but ENOENT counts, so that an
 * unreadable sidecar is an error rather than silently replaced. */
static bool sidecar_exists(const char *path)
{
    struct stat sb;
    return path && (stat(path, &sb) == 0 || errno != ENOENT);
}

/* Reads the first sidecar that exists of `saved` (may be NULL) and `beside`;
 * *found says whether one did. v->path names the one read, else `beside`. */
static fuse_status vocab_read(Vocab *v, const char *saved, const char *beside, bool *found,
                              char **err)
{
    v->path = sidecar_exists(saved) ? saved : beside;
    *found = sidecar_exists(v->path);
    if (!*found)
        return FUSE_OK;
    void *text;
    size_t n;
    fuse_status st = sup_read_file(v->path, &text, &n, err);
    if (st != FUSE_OK)
        return st;
    st = vocab_parse(v, text, n, err);
    free(text);
    return st;
}

/* The sidecar document, items sorted by index; NULL on OOM. */
static json_t *vocab_to_json(const Vocab *v)
{
    const VocabEntry **order = NULL;
    json_t *items = json_array();
    json_t *root = json_object();
    bool ok = vocab_sorted(v, &order) && items && root &&
              json_object_set_new(root, "version", json_integer(1)) == 0;
    for (size_t i = 0; ok && i < v->n; i++) {
        json_t *it = json_pack("{s:s%,s:I}", "token", order[i]->tok, order[i]->len,
                               "index", (json_int_t)order[i]->index);
        ok = json_array_append_new(items, it) == 0;
    }
    ok = ok && json_object_set(root, "items", items) == 0;
    free(order);
    json_decref(items);
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Writes the sidecar atomically beneath place->root, "..."+'\n', spaced as
 * Python's json.dumps. */
static fuse_status vocab_write(const Vocab *v, const IoVocabPlace *place, char **err)
{
    json_t *root = vocab_to_json(v);
    char *text = root ? json_dumps(root, 0) : NULL;
    json_decref(root);
    SupBuf b = {0};
    bool ok = text && sup_buf_append(&b, text, strlen(text)) && sup_buf_append(&b, "\n", 1);
    free(text);
    fuse_status st = ok ? sup_write_file_beneath(place->root, place->rel, b.p, b.len, err)
                        : sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", place->rel);
    free(b.p);
    return st;
}

/* Length of the UTF-8 sequence at s (n bytes available) and its code point in
 * *cp; 0 when the bytes are not valid UTF-8 (overlong, surrogate, > U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = len == 1 ? s[0] : s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min_cp[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Whitespace as Python's str.isspace() sees it. */
static bool is_unicode_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The token list of a text: columns of each token, in order. */
typedef struct Tokens {
    int64_t *col;
    size_t n, cap;
    bool changed;   /* a token was added to the vocabulary */
} Tokens;

/* Looks a token up (adding it when new) and appends its column. */
static fuse_status tokens_push(Tokens *t, Vocab *v, const char *path, const char *s,
                               size_t n, char **err)
{
    int64_t col = vocab_find(v, s, n);
    if (col < 0) {
        col = v->size;
        if (col >= IO_MAX_READ_ELEMS)
            return sup_fail(err, FUSE_E_IO, "%s: the vocabulary is too large", path);
        if (!vocab_add(v, s, n, col))
            return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
        t->changed = true;
    }
    if (!sup_grow((void **)&t->col, &t->cap, t->n + 1, sizeof *t->col))
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    t->col[t->n++] = col;
    return FUSE_OK;
}

/* Splits the text into tokens on whitespace runs; rejects invalid UTF-8. */
static fuse_status tokenize(const char *path, const unsigned char *s, size_t n, Vocab *v,
                            Tokens *t, char **err)
{
    size_t i = n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0, start = SIZE_MAX;
    long line = 1;
    while (i <= n) {
        uint32_t cp = ' ';
        size_t len = i < n ? utf8_decode(s + i, n - i, &cp) : 1;
        if (len == 0)
            return sup_fail(err, FUSE_E_IO, "%s:%ld: not valid UTF-8 text", path, line);
        bool space = is_unicode_space(cp);
        if (space && start != SIZE_MAX) {
            fuse_status st = tokens_push(t, v, path, (const char *)s + start, i - start, err);
            if (st != FUSE_OK)
                return st;
            start = SIZE_MAX;
        } else if (!space && start == SIZE_MAX) {
            start = i;
        }
        line += cp == '\n';
        i += len;
    }
    return FUSE_OK;
}

/* The (tokens × vocabulary) one-hot matrix. */
static fuse_status bow_matrix(const char *path, const Tokens *t, int64_t vsize,
                              fuse_tensor *out, char **err)
{
    int64_t shape[2] = {(int64_t)t->n, vsize};
    int64_t count = io_shape_count(2, shape);
    if (count < 0 || count > IO_MAX_READ_ELEMS)
        return sup_fail(err, FUSE_E_IO, "%s: %lld tokens × %lld words is too large to hold "
                       "densely", path, (long long)shape[0], (long long)shape[1]);
    float *data = io_alloc_aligned((size_t)count * sizeof *data);
    if (!data)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory for the bag of words", path);
    for (size_t p = 0; p < t->n; p++)
        data[(int64_t)p * vsize + t->col[p]] = 1.0f;
    out->dtype = FUSE_F32;
    out->rank = 2;
    memcpy(out->shape, shape, sizeof shape);
    out->data = data;
    return FUSE_OK;
}

char *io_bow_vocab_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - path) : strlen(path);
    return sup_strprintf("%.*s.vocab.json", (int)stem, path);
}

/* Whether a path has a ".." component. */
static bool has_parent_step(const char *path)
{
    for (const char *p = path; *p; p += strspn(p, "/")) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
    }
    return false;
}

char *io_bow_saved_vocab_path(const char *source)
{
    const char *slash = strrchr(source, '/');
    bool is_inside = source[0] != '/' && !has_parent_step(source);
    return io_bow_vocab_path(is_inside || !slash ? source : slash + 1);
}

/* Saves the sidecar; a failure becomes a warning when warn is set. */
static fuse_status bow_save_vocab(const Vocab *v, const IoVocabPlace *place, char **warn,
                                  char **err)
{
    char *msg = NULL;
    fuse_status st = vocab_write(v, place, &msg);
    if (st == FUSE_E_IO && warn) {
        *warn = sup_strprintf("%s (the vocabulary is not saved; column numbers of new "
                             "words may change next time)", msg ? msg : place->rel);
        st = FUSE_OK;
    } else if (st != FUSE_OK && err) {
        *err = msg;
        msg = NULL;
    }
    free(msg);
    return st;
}

fuse_status io_bow_read_ex(const char *path, const IoVocabPlace *place, fuse_tensor *out,
                           char **warn, char **err)
{
    if (!path || !out || (place && (!place->root || !place->rel)))
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read a bag of words",
                       path ? path : "(null)");
    memset(out, 0, sizeof *out);
    char *beside = io_bow_vocab_path(path);
    char *saved = place ? sup_strprintf("%s/%s", place->root, place->rel) : NULL;
    Vocab v = {0};
    Tokens t = {0};
    void *text = NULL;
    size_t n = 0;
    bool found = false;
    fuse_status st = beside && (saved || !place) ? sup_read_file(path, &text, &n, err)
                   : sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    if (st == FUSE_OK)
        st = vocab_read(&v, saved, beside, &found, err);
    if (st == FUSE_OK)
        st = tokenize(path, text, n, &v, &t, err);
    if (st == FUSE_OK)
        st = bow_matrix(path, &t, v.size, out, err);
    if (st == FUSE_OK && place && place->save && (t.changed || !found))
        st = bow_save_vocab(&v, place, warn, err);
    if (st != FUSE_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    free(text);
    free(t.col);
    free(saved);
    free(beside);
    vocab_free(&v);
    return st;
}

fuse_status io_bow_read(const char *path, fuse_tensor *out, char **err)
{
    return io_bow_read_ex(path, NULL, out, NULL, err);
}
