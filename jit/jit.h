/*
 * jit.h: the LLVM ORC JIT session of fuse-jit. Given an LLVM module built by
 * lower/, optimise it for the host CPU (new pass manager, O3), compile it in-process
 * and hand back symbol addresses. It does not run programs.
 *
 * Ownership: a JitModule owns a thread-safe LLVM context and a module in it until
 * jit_module_load, which hands both to LLJIT (the JitModule is then empty and only
 * needs jit_module_free). A JitCode owns the loaded machine code (through an ORC
 * resource tracker); freeing it removes the code from the session. Code loaded
 * from an object file (jit_object_load, used by the code cache) lives in a
 * JITDylib of its own, so the same object can be loaded by several runners.
 *
 * Errors: functions return fuse_status and, on failure, set *err to a malloc'd
 * message (caller frees) when err is not NULL.
 */
#ifndef FUSE_JIT_H
#define FUSE_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stddef.h>

#include <llvm-c/Core.h>

#include "fusejit.h"

typedef struct JitSession JitSession;
typedef struct JitModule JitModule;
typedef struct JitCode JitCode;

/* Creates an LLJIT for the host (CPU name and features detected), with process
 * symbols (libm, libc) resolvable from generated code. */
fuse_status jit_session_new(JitSession **out, char **err);
/* Accepts NULL. Every JitCode of the session must be freed first. */
void jit_session_free(JitSession *js);

/* Host target description (owned by the session; valid until it is freed). */
const char *jit_target_triple(const JitSession *js);
const char *jit_cpu_name(const JitSession *js);
const char *jit_cpu_features(const JitSession *js);
/* Whether generated code may use F16C (half <-> float conversions); false
 * without it or with FUSE_JIT_NO_F16C set in the environment. */
bool jit_has_f16c(const JitSession *js);
/* Widest vector register in bits the kernels should use (512 with AVX-512). */
int jit_vector_bits(const JitSession *js);

/* A fresh module with the host triple and data layout set, in its own context.
 * Returns NULL on OOM. */
JitModule *jit_module_new(JitSession *js, const char *name);
LLVMContextRef jit_module_context(JitModule *jm);
LLVMModuleRef jit_module_llvm(JitModule *jm);
/* A function carrying this string attribute (value ignored) is vectorised and
 * unrolled by its emitter already, or too small for O3 to matter (lower/: the
 * contraction kernels, ops of at most 1,024 loop cells): it gets the
 * light pipeline (clean-up: sroa, early-cse, instcombine, simplifycfg, then the
 * SLP vectoriser)
 * instead of O3, and is never inlined. */
#define JIT_ATTR_LIGHT "fuse-light"
/* Changes with what jit_module_optimize makes of a module; part of every cache
 * key (jit_cache_key). */
#define JIT_PIPELINE_VERSION 2
/* Verifies the module (FUSE_E_JIT with LLVM's message if it is broken), then runs
 * the O3 pipeline for the host target machine, after merging equal functions
 * (LLVM's mergefunc: the op functions of equal ops are optimised once), on every
 * function but the light ones (JIT_ATTR_LIGHT), which get the light pipeline. */
fuse_status jit_module_optimize(JitSession *js, JitModule *jm, char **err);
/* Only merges equal functions (LLVM's mergefunc: uses of one go to the other),
 * no other pass: cheap, and shows which functions of a module have equal code. */
fuse_status jit_module_merge_functions(JitModule *jm, char **err);
/* The module as LLVM IR text; malloc'd, caller frees; NULL on OOM. */
char *jit_module_print(JitModule *jm);
/* The module compiled to host assembly text; *text malloc'd, caller frees. */
fuse_status jit_module_asm(JitSession *js, JitModule *jm, char **text, char **err);
/* Compiles and loads the module into the session. The module moves to LLJIT; jm is
 * left empty (still freed with jit_module_free). */
fuse_status jit_module_load(JitSession *js, JitModule *jm, JitCode **out, char **err);
/* Accepts NULL. */
void jit_module_free(JitModule *jm);

/* Compiles an (optimised) module to a relocatable object file for the host:
 * *data malloc'd, *n bytes. Code generation rewrites the module's IR; only free it
 * afterwards. */
fuse_status jit_module_emit_object(JitSession *js, JitModule *jm, void **data, size_t *n,
                                   char **err);
/* Links an object file (from jit_module_emit_object) or a bundle of them
 * (jit_objects_bundle) into a JITDylib of its own, so the same object may be
 * loaded any number of times; the bytes are copied. Lookups through the returned
 * code search only that JITDylib (and process symbols). A malformed object or
 * bundle is FUSE_E_JIT. */
fuse_status jit_object_load(JitSession *js, const void *data, size_t n, JitCode **out,
                            char **err);

/* Several object files (objs[i]: ns[i] bytes, k of them, 1 <= k <= 64) as one
 * bundle, which jit_object_load loads whole into one JITDylib (so their global
 * symbols must differ) and the code cache keeps as one object: *data malloc'd,
 * *n bytes. Modules compiled on several threads make one program's code. */
fuse_status jit_objects_bundle(void *const *objs, const size_t *ns, int k, void **data,
                               size_t *n, char **err);

/* tucker: at most this many host symbols per session. */
#define JIT_MAX_HOST_SYMBOLS 16
/* Makes `name` resolve to addr (a function of this process) in code the session
 * loads: defined as an absolute symbol in the main JITDylib and in the JITDylib of
 * every object loaded afterwards. Call it right after jit_session_new, before any
 * code is loaded and not concurrently with other calls on the session. Defining a
 * name twice is FUSE_E_JIT. */
fuse_status jit_define_symbol(JitSession *js, const char *name, void *addr, char **err);

/* Address of a function defined by loaded code. */
fuse_status jit_code_lookup(JitCode *jc, const char *name, void **addr, char **err);
/* Removes the code from the session. Accepts NULL. */
void jit_code_free(JitCode *jc);

/* ---- cache.c: the code cache ----
 * Object files produced by jit_module_emit_object are kept by content key, in memory (one JitCache per
 * context, thread-safe) and on disk (one file per key in a cache directory, shared
 * by processes).
 *
 * The key (jit_cache_key) is BLAKE3 over, in order: a key-format tag, the fuse-jit
 * version, the LLVM version, JIT_PIPELINE_VERSION, the host target triple, CPU name
 * and CPU features, the
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

/* the per-group index, in memory only. A group key (the key of one
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

#endif /* FUSE_JIT_H */
