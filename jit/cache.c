/*
 * cache.c: the code cache (declared in jit.h): content keys, the in-memory map of a context
 * and the on-disk entries shared by processes.
 *
 * Memory: a small array of (key, object) searched linearly (a context holds a few
 * programs), guarded by one mutex, capped at JIT_MEMORY_MAX_BYTES with the least
 * recently used entry evicted first. Disk: see cache.h for the entry format. Every
 * disk failure degrades to a miss or an unwritten entry with a warning; a bad entry
 * is never loaded. Several processes may read and write one directory at once:
 * entries appear by rename, and a racing eviction or clear only causes misses.
 */

#include "jit.h"
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/blake3.h>
#include <zlib.h>

#define JIT_MEMORY_MAX_BYTES ((size_t)64 << 20)
#define JIT_ENTRY_MAGIC "FUSEJITC"
#define JIT_ENTRY_VERSION 1u
#define JIT_HEADER_BYTES 96
#define JIT_MAX_OBJECT_BYTES ((uint64_t)1 << 30)
#define JIT_KEY_FORMAT "fuse-jit cache key v2"
#define JIT_ENTRY_SUFFIX ".fjo"

/* at most this many group references; the older half goes first. */
#define JIT_MAX_REFS 16384

typedef struct JitRef {
    JitKey group, object;
} JitRef;

typedef struct MemEntry {
    JitKey key;
    void *data;
    size_t n;
    uint64_t last_use;  /* tick of the last hit or store */
} MemEntry;

struct JitCache {
    pthread_mutex_t lock;   /* guards everything below */
    MemEntry *entries;
    int n_entries, cap_entries;
    size_t bytes;
    uint64_t tick;
    fuse_stats stats;
    /* group key -> key of the object holding its kernel */
    JitRef *refs;
    int n_refs, cap_refs;
    /* refs[] by group key, open addressing: 1 + index, 0 empty;
     * cap_refs slots, rebuilt when refs[] grows or drops its older half */
    int *ref_slots;
};

/* ---- messages ---- */

/* Sets *out (when out is not NULL) to a formatted message. */
#define CACHE_SAY(out, ...)                          \
    do {                                             \
        if (out)                                     \
            *(out) = sup_strprintf(__VA_ARGS__);   \
    } while (0)

/* ---- keys ---- */

static void hash_str(llvm_blake3_hasher *h, const char *s)
{
    uint64_t n = s ? strlen(s) : 0;
    llvm_blake3_hasher_update(h, &n, sizeof n);
    if (n)
        llvm_blake3_hasher_update(h, s, (size_t)n);
}

void jit_cache_key(const JitSession *js, const void *ir, size_t n_ir, const void *opts,
                   size_t n_opts, JitKey *key)
{
    llvm_blake3_hasher h;
    llvm_blake3_hasher_init(&h);
    hash_str(&h, JIT_KEY_FORMAT);
    hash_str(&h, FUSE_VERSION_STRING);
    unsigned v[3] = {0, 0, 0};
    LLVMGetVersion(&v[0], &v[1], &v[2]);
    llvm_blake3_hasher_update(&h, v, sizeof v);
    unsigned pipeline = JIT_PIPELINE_VERSION;
    llvm_blake3_hasher_update(&h, &pipeline, sizeof pipeline);
    hash_str(&h, jit_target_triple(js));
    hash_str(&h, jit_cpu_name(js));
    hash_str(&h, jit_cpu_features(js));
    uint64_t lens[2] = {n_opts, n_ir};
    llvm_blake3_hasher_update(&h, &lens[0], sizeof lens[0]);
    if (n_opts)
        llvm_blake3_hasher_update(&h, opts, n_opts);
    llvm_blake3_hasher_update(&h, &lens[1], sizeof lens[1]);
    if (n_ir)
        llvm_blake3_hasher_update(&h, ir, n_ir);
    llvm_blake3_hasher_finalize(&h, key->b, JIT_KEY_BYTES);
}

void jit_key_hex(const JitKey *key, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < JIT_KEY_BYTES; i++) {
        hex[2 * i] = digits[key->b[i] >> 4];
        hex[2 * i + 1] = digits[key->b[i] & 15];
    }
    hex[2 * JIT_KEY_BYTES] = '\0';
}

static void checksum(const void *data, size_t n, unsigned char out[32])
{
    llvm_blake3_hasher h;
    llvm_blake3_hasher_init(&h);
    llvm_blake3_hasher_update(&h, data, n);
    llvm_blake3_hasher_finalize(&h, out, 32);
}

/* ---- the in-memory map ---- */

JitCache *jit_cache_new(void)
{
    JitCache *c = calloc(1, sizeof *c);
    if (c && pthread_mutex_init(&c->lock, NULL)) {
        free(c);
        return NULL;
    }
    return c;
}

void jit_cache_free(JitCache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_entries; i++)
        free(c->entries[i].data);
    free(c->entries);
    free(c->refs);
    free(c->ref_slots);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void jit_cache_stats(JitCache *c, fuse_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    pthread_mutex_unlock(&c->lock);
}

/* Index of key in memory, or -1. Called with the lock held. */
static int mem_find(const JitCache *c, const JitKey *key)
{
    for (int i = 0; i < c->n_entries; i++)
        if (memcmp(c->entries[i].key.b, key->b, JIT_KEY_BYTES) == 0)
            return i;
    return -1;
}

static void mem_remove(JitCache *c, int i)
{
    c->bytes -= c->entries[i].n;
    free(c->entries[i].data);
    c->entries[i] = c->entries[--c->n_entries];
}

/* Evicts least recently used entries until `extra` more bytes fit. Lock held. */
static void mem_make_room(JitCache *c, size_t extra)
{
    while (c->n_entries > 0 && c->bytes + extra > JIT_MEMORY_MAX_BYTES) {
        int oldest = 0;
        for (int i = 1; i < c->n_entries; i++)
            if (c->entries[i].last_use < c->entries[oldest].last_use)
                oldest = i;
        mem_remove(c, oldest);
    }
}

/* Stores a copy of the object under key (a no-op when present). Lock held. */
static fuse_status mem_store(JitCache *c, const JitKey *key, const void *data, size_t n)
{
    if (mem_find(c, key) >= 0 || n > JIT_MEMORY_MAX_BYTES)
        return FUSE_OK;
    mem_make_room(c, n);
    if (c->n_entries == c->cap_entries) {
        int cap = c->cap_entries ? 2 * c->cap_entries : 8;
        MemEntry *e = realloc(c->entries, (size_t)cap * sizeof *e);
        if (!e)
            return FUSE_E_NOMEM;
        c->entries = e;
        c->cap_entries = cap;
    }
    void *copy = malloc(n);
    if (!copy)
        return FUSE_E_NOMEM;
    memcpy(copy, data, n);
    c->entries[c->n_entries++] = (MemEntry){*key, copy, n, ++c->tick};
    c->bytes += n;
    return FUSE_OK;
}

/* A malloc'd copy of the entry of key, or NULL (absent or OOM). */
static void *mem_get(JitCache *c, const JitKey *key, size_t *n)
{
    void *copy = NULL;
    pthread_mutex_lock(&c->lock);
    int i = mem_find(c, key);
    if (i >= 0 && (copy = malloc(c->entries[i].n)) != NULL) {
        memcpy(copy, c->entries[i].data, c->entries[i].n);
        *n = c->entries[i].n;
        c->entries[i].last_use = ++c->tick;
        c->stats.memory_hits++;
    }
    pthread_mutex_unlock(&c->lock);
    return copy;
}

/* ---- disk entries ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static char *entry_path(const char *dir, const JitKey *key)
{
    char hex[2 * JIT_KEY_BYTES + 1];
    jit_key_hex(key, hex);
    return sup_strprintf("%s/%s%s", dir, hex, JIT_ENTRY_SUFFIX);
}

/* Checks and decompresses an entry image; NULL with *why set when it is bad. */
static void *entry_decode(const unsigned char *img, size_t n, const JitKey *key,
                          size_t *out_n, const char **why)
{
    if (n < JIT_HEADER_BYTES)
        return *why = n ? "truncated header" : "empty file", NULL;
    if (memcmp(img, JIT_ENTRY_MAGIC, 8) != 0)
        return *why = "not a fuse-jit cache entry", NULL;
    if (get_u32(img + 8) != JIT_ENTRY_VERSION || get_u32(img + 12) != JIT_HEADER_BYTES)
        return *why = "another entry format version", NULL;
    if (memcmp(img + 16, key->b, JIT_KEY_BYTES) != 0)
        return *why = "the key does not match the file name", NULL;
    uint64_t raw = get_u64(img + 48), packed = get_u64(img + 56);
    if (packed != n - JIT_HEADER_BYTES)
        return *why = "truncated or overlong data", NULL;
    if (raw == 0 || raw > JIT_MAX_OBJECT_BYTES)
        return *why = "implausible object length", NULL;
    unsigned char *obj = malloc((size_t)raw);
    if (!obj)
        return *why = "out of memory", NULL;
    uLongf got = (uLongf)raw;
    unsigned char sum[32];
    if (uncompress(obj, &got, img + JIT_HEADER_BYTES, (uLong)packed) != Z_OK || got != raw) {
        free(obj);
        return *why = "corrupt compressed data", NULL;
    }
    checksum(obj, (size_t)raw, sum);
    if (memcmp(sum, img + 64, 32) != 0) {
        free(obj);
        return *why = "checksum mismatch", NULL;
    }
    *out_n = (size_t)raw;
    return obj;
}

/* Looks the key up on disk. A bad entry is deleted, counted and warned about. */
static void *disk_get(JitCache *c, const JitKey *key, const char *dir, size_t *n,
                      char **warning)
{
    char *path = entry_path(dir, key);
    if (!path)
        return NULL;
    size_t len = 0;
    unsigned char *img = NULL;
    if (sup_read_file(path, (void **)&img, &len, NULL) != FUSE_OK)
        img = NULL; /* no entry, or unreadable: compile */
    void *obj = NULL;
    if (img) {
        const char *why = NULL;
        obj = entry_decode(img, len, key, n, &why);
        if (!obj) {
            unlink(path);
            pthread_mutex_lock(&c->lock);
            c->stats.disk_rejected++;
            pthread_mutex_unlock(&c->lock);
            CACHE_SAY(warning, "cache entry %s rejected (%s): deleted, recompiling", path, why);
        } else {
            utimensat(AT_FDCWD, path, NULL, 0); /* LRU: a hit is a use */
        }
    }
    free(img);
    free(path);
    return obj;
}

fuse_status jit_cache_get(JitCache *c, const JitKey *key, const char *dir, void **data,
                          size_t *n, JitHit *hit, char **warning)
{
    if (warning)
        *warning = NULL;
    if (!c || !key || !data || !n || !hit)
        return FUSE_E_ARG;
    *hit = JIT_MISS;
    *data = mem_get(c, key, n);
    if (*data) {
        *hit = JIT_MEMORY_HIT;
        return FUSE_OK;
    }
    if (!dir)
        return FUSE_OK;
    *data = disk_get(c, key, dir, n, warning);
    if (!*data)
        return FUSE_OK;
    *hit = JIT_DISK_HIT;
    pthread_mutex_lock(&c->lock);
    c->stats.disk_hits++;
    /* Not kept in memory when that fails: the next runner reads the disk again. */
    (void)mem_store(c, key, *data, *n);
    pthread_mutex_unlock(&c->lock);
    return FUSE_OK;
}

/* ---- writing and eviction ---- */

/* The entry image for an object: header + compressed data; malloc'd. */
static unsigned char *entry_encode(const JitKey *key, const void *data, size_t n, size_t *out_n)
{
    uLong bound = compressBound((uLong)n);
    unsigned char *img = malloc(JIT_HEADER_BYTES + (size_t)bound);
    if (!img)
        return NULL;
    uLongf packed = bound;
    if (compress2(img + JIT_HEADER_BYTES, &packed, data, (uLong)n, 6) != Z_OK) {
        free(img);
        return NULL;
    }
    memcpy(img, JIT_ENTRY_MAGIC, 8);
    put_u32(img + 8, JIT_ENTRY_VERSION);
    put_u32(img + 12, JIT_HEADER_BYTES);
    memcpy(img + 16, key->b, JIT_KEY_BYTES);
    put_u64(img + 48, n);
    put_u64(img + 56, packed);
    checksum(data, n, img + 64);
    *out_n = JIT_HEADER_BYTES + (size_t)packed;
    return img;
}

static uint64_t max_disk_bytes(void)
{
    const char *env = getenv("FUSE_JIT_CACHE_MAX_BYTES");
    if (!env || !*env)
        return JIT_CACHE_DEFAULT_MAX_BYTES;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(env, &end, 10);
    if (errno || *end || end == env)
        return JIT_CACHE_DEFAULT_MAX_BYTES;
    return (uint64_t)v;
}

typedef struct DiskFile {
    char *path;
    uint64_t size;
    struct timespec mtime;
} DiskFile;

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A temporary file of an entry write, exactly as support's atomic write names
 * it: "." + 64 hex digits + ".fjo.tmp" + 6 characters. Anything else in the
 * directory is not the cache's and is never removed. */
static bool is_temp_name(const char *name)
{
    size_t hex = 2 * JIT_KEY_BYTES, suffix = strlen(JIT_ENTRY_SUFFIX ".tmp");
    if (name[0] != '.' || strlen(name) != 1 + hex + suffix + 6 ||
        strncmp(name + 1 + hex, JIT_ENTRY_SUFFIX ".tmp", suffix) != 0)
        return false;
    for (size_t i = 1; i <= hex; i++)
        if (!strchr("0123456789abcdef", name[i]))
            return false;
    return true;
}

static int older_first(const void *a, const void *b)
{
    const DiskFile *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

/* Lists the entries of dir (sizes, mtimes). Temporary files older than an hour
 * (left by a killed process) are deleted on the way, or all of them when
 * all_temps. Returns -1 (errno set) when dir cannot be read. */
static int list_entries(const char *dir, bool all_temps, DiskFile **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t cap = 0;
    struct dirent *de;
    time_t now = time(NULL);
    while ((de = readdir(d)) != NULL) {
        bool is_entry = has_suffix(de->d_name, JIT_ENTRY_SUFFIX);
        bool is_temp = is_temp_name(de->d_name);
        struct stat st;
        char *path = (is_entry || is_temp) ? sup_strprintf("%s/%s", dir, de->d_name) : NULL;
        if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (is_temp) {
            if (all_temps || now - st.st_mtime > 3600)
                unlink(path);
            free(path);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            DiskFile *f = realloc(*out, cap * sizeof *f);
            if (!f) {
                free(path);
                break;
            }
            *out = f;
        }
        (*out)[(*n)++] = (DiskFile){path, (uint64_t)st.st_size, st.st_mtim};
    }
    closedir(d);
    return 0;
}

static void free_list(DiskFile *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
}

/* Removes the least recently used entries until the directory fits the cap. */
static void evict(const char *dir)
{
    DiskFile *files = NULL;
    size_t n = 0;
    if (list_entries(dir, false, &files, &n) != 0)
        return;
    uint64_t total = 0, cap = max_disk_bytes();
    for (size_t i = 0; i < n; i++)
        total += files[i].size;
    if (total > cap) {
        qsort(files, n, sizeof *files, older_first);
        for (size_t i = 0; i < n && total > cap; i++)
            if (unlink(files[i].path) == 0)
                total -= files[i].size;
    }
    free_list(files, n);
}

static void disk_put(const JitKey *key, const char *dir, const void *data, size_t n,
                     bool *is_written, char **warning)
{
    *is_written = false;
    char *path = entry_path(dir, key);
    size_t img_n = 0;
    unsigned char *img = path ? entry_encode(key, data, n, &img_n) : NULL;
    char *err = NULL;
    if (!img) {
        CACHE_SAY(warning, "cannot encode a cache entry: out of memory");
    } else if (sup_write_file_atomic(path, img, img_n, &err) != FUSE_OK) {
        CACHE_SAY(warning, "cannot write the cache entry: %s", err ? err : "out of memory");
    } else {
        *is_written = true;
        evict(dir);
    }
    free(err);
    free(img);
    free(path);
}

fuse_status jit_cache_put(JitCache *c, const JitKey *key, const char *dir, const void *data,
                          size_t n, char **warning)
{
    if (warning)
        *warning = NULL;
    if (!c || !key || !data || !n)
        return FUSE_E_ARG;
    pthread_mutex_lock(&c->lock);
    c->stats.compiles++;
    /* A failed memory store only costs a later compile or disk read. */
    (void)mem_store(c, key, data, n);
    pthread_mutex_unlock(&c->lock);
    if (!dir)
        return FUSE_OK;
    bool is_written = false;
    disk_put(key, dir, data, n, &is_written, warning);
    if (is_written) {
        pthread_mutex_lock(&c->lock);
        c->stats.disk_writes++;
        pthread_mutex_unlock(&c->lock);
    }
    return FUSE_OK;
}

/* ---- directories ---- */

char *jit_cache_default_dir(void)
{
    const char *env = getenv("FUSE_JIT_CACHE_DIR");
    if (env && *env)
        return sup_strprintf("%s", env);
    env = getenv("XDG_CACHE_HOME");
    if (env && *env == '/')
        return sup_strprintf("%s/fuse-jit", env);
    env = getenv("HOME");
    if (env && *env)
        return sup_strprintf("%s/.cache/fuse-jit", env);
    return NULL;
}

fuse_status jit_cache_dir_usage(const char *dir, uint64_t *entries, uint64_t *bytes,
                                char **err)
{
    if (err)
        *err = NULL;
    *entries = *bytes = 0;
    DiskFile *files = NULL;
    size_t n = 0;
    if (list_entries(dir, false, &files, &n) != 0) {
        if (errno == ENOENT)
            return FUSE_OK;
        CACHE_SAY(err, "%s: %s", dir, strerror(errno));
        return FUSE_E_IO;
    }
    for (size_t i = 0; i < n; i++)
        *bytes += files[i].size;
    *entries = n;
    free_list(files, n);
    return FUSE_OK;
}

fuse_status jit_cache_dir_clear(const char *dir, uint64_t *removed, char **err)
{
    if (err)
        *err = NULL;
    *removed = 0;
    DiskFile *files = NULL;
    size_t n = 0;
    if (list_entries(dir, true, &files, &n) != 0) {
        if (errno == ENOENT)
            return FUSE_OK;
        CACHE_SAY(err, "%s: %s", dir, strerror(errno));
        return FUSE_E_IO;
    }
    for (size_t i = 0; i < n; i++)
        if (unlink(files[i].path) == 0)
            (*removed)++;
    free_list(files, n);
    return FUSE_OK;
}

/* ---- group references ---- */

/* The hash slot of group key g in c->ref_slots: its reference's, or the empty
 * one where it would go. Keys are BLAKE3 digests, so 8 of their bytes are a
 * good hash. The table has twice as many slots as refs[] can hold. Lock held. */
static int ref_slot(const JitCache *c, const JitKey *g)
{
    uint64_t h;
    memcpy(&h, g->b, sizeof h);
    int mask = 2 * c->cap_refs - 1;
    int i = (int)(h & (uint64_t)mask);
    while (c->ref_slots[i] && memcmp(c->refs[c->ref_slots[i] - 1].group.b, g->b,
                                     JIT_KEY_BYTES) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Index of the reference of group key g, or -1. Lock held. */
static int ref_find(const JitCache *c, const JitKey *g)
{
    if (c->n_refs == 0)
        return -1;
    int s = ref_slot(c, g);
    return c->ref_slots[s] - 1;
}

/* Rebuilds the hash slots of refs[0..n_refs). Lock held. */
static void ref_reindex(JitCache *c)
{
    memset(c->ref_slots, 0, 2 * (size_t)c->cap_refs * sizeof *c->ref_slots);
    for (int i = 0; i < c->n_refs; i++)
        c->ref_slots[ref_slot(c, &c->refs[i].group)] = i + 1;
}

/* Makes room for one more reference. Lock held. */
static fuse_status ref_room(JitCache *c)
{
    if (c->n_refs == JIT_MAX_REFS) {
        int keep = c->n_refs / 2;
        memmove(c->refs, c->refs + (c->n_refs - keep), (size_t)keep * sizeof *c->refs);
        c->n_refs = keep;
        ref_reindex(c);
    }
    if (c->n_refs < c->cap_refs)
        return FUSE_OK;
    int cap = c->cap_refs ? 2 * c->cap_refs : 64; /* a power of two */
    JitRef *r = realloc(c->refs, (size_t)cap * sizeof *r);
    if (!r)
        return FUSE_E_NOMEM;
    c->refs = r;
    int *slots = malloc(2 * (size_t)cap * sizeof *slots);
    if (!slots)
        return FUSE_E_NOMEM; /* refs[] grew; cap_refs still matches ref_slots */
    free(c->ref_slots);
    c->ref_slots = slots;
    c->cap_refs = cap;
    ref_reindex(c);
    return FUSE_OK;
}

fuse_status jit_cache_ref_put(JitCache *c, const JitKey *group, const JitKey *object)
{
    if (!c || !group || !object)
        return FUSE_E_ARG;
    pthread_mutex_lock(&c->lock);
    int i = ref_find(c, group);
    fuse_status st = FUSE_OK;
    if (i >= 0)
        c->refs[i].object = *object;
    else if ((st = ref_room(c)) == FUSE_OK) {
        c->ref_slots[ref_slot(c, group)] = c->n_refs + 1;
        c->refs[c->n_refs++] = (JitRef){*group, *object};
    }
    pthread_mutex_unlock(&c->lock);
    return st;
}

bool jit_cache_ref_get(JitCache *c, const JitKey *group, JitKey *object)
{
    if (!c || !group || !object)
        return false;
    pthread_mutex_lock(&c->lock);
    int i = ref_find(c, group);
    if (i >= 0)
        *object = c->refs[i].object;
    pthread_mutex_unlock(&c->lock);
    return i >= 0;
}

void jit_cache_count_groups(JitCache *c, uint64_t compiled, uint64_t cached)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stats.groups_compiled += compiled;
    c->stats.groups_cached += cached;
    pthread_mutex_unlock(&c->lock);
}
