/*
 * support.h: the small helpers every stage may use (LLVM calls its own Support):
 * a growing text buffer and printf helpers (strbuf.c), the monotonic clock
 * (clock.c), whole-file reads, atomic writes and mkdir -p (files.c), array
 * growth (grow.c) and "did you mean" spellings (suggest.c). It knows nothing of
 * Fuse but the status codes of fusejit.h.
 *
 * Errors: fallible functions return fuse_status and set *err (when err is not
 * NULL) to a malloc'd message naming the file involved; the caller frees it.
 */
#ifndef FUSE_SUPPORT_H
#define FUSE_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "fusejit.h"

/* ---- strbuf.c ---- */

/* A growing NUL-terminated text buffer. Start from {0}; free p, or take it with
 * sup_buf_finish. A failed allocation sets is_oom, and every later append then
 * does nothing, so a writer may check once at the end. */
typedef struct SupBuf {
    char *p;
    size_t len, cap;
    bool is_oom;
} SupBuf;

/* Appends n bytes (or a string, a character, printf output); false on OOM, the
 * text then being what it was before the call. */
bool sup_buf_append(SupBuf *b, const char *s, size_t n);
bool sup_buf_puts(SupBuf *b, const char *s);
bool sup_buf_putc(SupBuf *b, char c);
bool sup_buf_printf(SupBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The finished malloc'd string ("" when nothing was written), or NULL after an
 * allocation failure (the buffer is then freed). */
char *sup_buf_finish(SupBuf *b);

/* malloc'd printf, for building error messages; NULL on OOM. */
char *sup_strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sets *err (when err is not NULL) to the formatted message and returns st, so an
 * error path reads `return sup_fail(err, FUSE_E_IO, "%s: ...", path);`. */
fuse_status sup_fail(char **err, fuse_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A name that occurs more than once among names[0..n) (non-NULL strings), or
 * NULL when all differ; O(n log n) through a sorted copy of the pointers.
 * *is_oom is set (and NULL returned) when that copy cannot be had. */
const char *sup_duplicate_name(const char *const *names, size_t n, bool *is_oom);

/* ---- dl.c ---- */

/* *slot (a function or object pointer of n bytes) = the address of symbol
 * `name` in the dlopen'ed library lib; false (slot unchanged) when absent. */
bool sup_dl_symbol(void *lib, const char *name, void *slot, size_t n);

/* ---- clock.c ---- */

/* Monotonic wall clock in milliseconds, for phase timings and traces. */
double sup_clock_ms(void);

/* ---- files.c ---- */

/* Writes n bytes to path atomically, creating missing parent directories: a
 * new temporary file beside the target (".NAME.tmpXXXXXX", as mkstemp names
 * them), renamed over it; unlinked on any failure. The new file gets the replaced
 * file's mode, else 0666 minus the umask; a symbolic link at path is replaced,
 * not followed. No fsync. Temporaries of that name that a killed write left
 * beside the target, over SUP_STALE_TEMP_SECONDS old, are removed first. */
#define SUP_STALE_TEMP_SECONDS 3600
fuse_status sup_write_file_atomic(const char *path, const void *data, size_t n, char **err);

/* The same for a file written forward by its writer: sup_temp_open creates
 * the temporary beside path (parents made, stale temporaries removed) and
 * sup_temp_fd gives its descriptor; sup_temp_commit closes it, gives it its
 * mode and renames it over path (`shown` names it in errors), and frees t
 * whatever happens; sup_temp_discard removes it and frees t. */
typedef struct SupTemp SupTemp;
fuse_status sup_temp_open(const char *path, SupTemp **out, char **err);
int sup_temp_fd(const SupTemp *t);
fuse_status sup_temp_commit(SupTemp *t, const char *shown, char **err);
void sup_temp_discard(SupTemp *t);

/* The same for the relative path rel under the directory root (created when
 * missing), never writing outside root: the missing directories of rel are made
 * one at a time inside it, and a symbolic link on the way may lead elsewhere
 * under root but not out of it (without openat2, Linux < 5.6, no link is
 * followed at all). A link at rel itself is replaced, not followed. A path that
 * leads out is FUSE_E_IO naming root/rel and the link (or ".."); an absolute rel
 * is FUSE_E_ARG. */
fuse_status sup_write_file_beneath(const char *root, const char *rel, const void *data,
                                   size_t n, char **err);

/* For tests: true makes sup_write_file_beneath walk components as it does on a
 * kernel without openat2. */
void sup_beneath_use_walk(bool on);

/* Reads a whole file; *data malloc'd (NUL-terminated for convenience), *n bytes. */
fuse_status sup_read_file(const char *path, void **data, size_t *n, char **err);

/* Creates every missing directory of a file path's parent. */
fuse_status sup_make_parent_dirs(const char *path, char **err);

/* ---- grow.c ---- */

/* Makes room for `need` elements of `elem` bytes in the malloc'd array *items of
 * capacity *cap (doubling); false on OOM or overflow, *items then unchanged. */
bool sup_grow(void **items, size_t *cap, size_t need, size_t elem);

/* ---- suggest.c ---- */

/* Edit distance between a and b without case (Damerau-Levenshtein, optimal
 * string alignment: an adjacent swap costs 1); SIZE_MAX beyond 64 characters. */
size_t sup_edit_distance(const char *a, const char *b);

/* The candidate nearest to word, for a "did you mean" hint, or NULL when none is
 * near enough: within max(1, len/3) edits for words of 3 or more characters, only
 * a difference of case for shorter ones (a candidate equal to word is returned);
 * the first of equally near candidates wins. */
const char *sup_nearest(const char *word, const char *const *candidates, size_t n);

/* Whether two option values are the same word: without case, and with '-' and
 * '_' alike, so semi-naive and semi_naive (or MONTE-CARLO) are one value in the
 * CLI and the REPL. */
bool sup_same_word(const char *a, const char *b);

#endif /* FUSE_SUPPORT_H */
