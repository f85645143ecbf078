/*
 * cache.h: the code cache of fuse-jit (issue 5). Object files produced by
 * jit_module_emit_object are kept by content key, in memory (one JitCache per
 * context, thread-safe) and on disk (one file per key in a cache directory, shared
 * by processes).
 *
 * The key (jit_cache_key) is BLAKE3 over, in order: a key-format tag, the fuse-jit
 * version, the LLVM version, the host target triple, CPU name and CPU features, the
 * caller's option bytes (every option that changes code) and the program bytes (the
 * canonical IR, ir_serialize, which includes every tensor shape).
 *
 * Disk entries: DIR/<64 hex digits of the key>.fjo, a 96-byte header (magic
 * "FUSEJITC", format version, header size, key, uncompressed and compressed
 * lengths, BLAKE3 of the uncompressed object) then the zlib-compressed object.
 * Written to a temporary file in DIR and renamed, so readers never see a partial
 * entry. An entry that is too short, foreign (magic, version or key), corrupt
 * (decompression or checksum) is counted, deleted and reported as a miss. The
 * directory is capped (FUSE_JIT_CACHE_MAX_BYTES, default 256 MiB): after a write,
 * least recently used entries (by mtime, touched on every hit) are removed.
 */
#ifndef FUSE_JIT_CACHE_H
#define FUSE_JIT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuse.h"
#include "jit.h"

#define JIT_KEY_BYTES 32
#define JIT_CACHE_DEFAULT_MAX_BYTES ((uint64_t)256 << 20)

typedef struct JitKey {
    unsigned char b[JIT_KEY_BYTES];
} JitKey;

typedef struct JitCache JitCache;

typedef enum JitHit { JIT_MISS, JIT_MEMORY_HIT, JIT_DISK_HIT } JitHit;

/* NULL on OOM. */
JitCache *jit_cache_new(void);
/* Accepts NULL. */
void jit_cache_free(JitCache *c);

/* The key of a program (ir: n_ir bytes) compiled with options (opts: n_opts bytes)
 * for the session's host. */
void jit_cache_key(const JitSession *js, const void *ir, size_t n_ir, const void *opts,
                   size_t n_opts, JitKey *key);
/* The key as 64 lowercase hex digits and a NUL (hex: 65 bytes). */
void jit_key_hex(const JitKey *key, char *hex);

/* Finds the object of key: in memory, else (when dir is not NULL) on disk. On a hit
 * *data is a malloc'd copy (caller frees). A rejected disk entry is deleted and
 * counted, and *warning (when not NULL) gets a malloc'd message (caller frees). */
fuse_status jit_cache_get(JitCache *c, const JitKey *key, const char *dir, void **data,
                          size_t *n, JitHit *hit, char **warning);
/* Records a compilation and stores its object in memory and (dir not NULL) on
 * disk. A failed disk write is not an error: *warning says why. */
fuse_status jit_cache_put(JitCache *c, const JitKey *key, const char *dir, const void *data,
                          size_t n, char **warning);
/* The counters so far. */
void jit_cache_stats(JitCache *c, fuse_stats *out);

/* incr (issue 7): the per-group index, in memory only. A group key (the key of one
 * group's kernel, ir_serialize_group) refers to the key of the cached object that
 * holds that kernel (an object may hold the kernels of many groups). Older
 * references are dropped past a few thousand; a reference whose object has left
 * the cache is simply a miss. */
fuse_status jit_cache_ref_put(JitCache *c, const JitKey *group, const JitKey *object);
/* Whether group has a reference; *object gets it. */
bool jit_cache_ref_get(JitCache *c, const JitKey *group, JitKey *object);
/* Adds to the groups_compiled and groups_cached counters. */
void jit_cache_count_groups(JitCache *c, uint64_t compiled, uint64_t cached);

/* The default directory: $FUSE_JIT_CACHE_DIR, else $XDG_CACHE_HOME/fuse-jit, else
 * $HOME/.cache/fuse-jit; malloc'd; NULL when none can be found or on OOM. */
char *jit_cache_default_dir(void);
/* Number of entries and their total size in bytes (0 for a missing directory). */
fuse_status jit_cache_dir_usage(const char *dir, uint64_t *entries, uint64_t *bytes,
                                char **err);
/* Deletes every entry (and leftover temporary files); *removed counts entries. */
fuse_status jit_cache_dir_clear(const char *dir, uint64_t *removed, char **err);

#endif /* FUSE_JIT_CACHE_H */
