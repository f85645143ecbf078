/*
 * fuzz_cache.c: a code-cache entry file through jit_cache_get, which checks its
 * header (magic, version, key, lengths), inflates the object and verifies its
 * checksum before anything hands it to LLVM. The entry sits under a fixed key in
 * the scratch directory; a fresh in-memory cache each time makes every lookup go
 * to the disk. A rejected entry is deleted by the cache itself.
 *
 * FUSE_FUZZ_WRITE_SEEDS=DIR writes valid entries (made by jit_cache_put) to DIR
 * and exits: how the seed corpus was made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "jit.h"

static JitKey key;

static char *entry_file(const char *dir)
{
    char hex[2 * JIT_KEY_BYTES + 1];
    jit_key_hex(&key, hex);
    size_t n = strlen(dir) + sizeof hex + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s.fjo", dir, hex);
    return p;
}

static void write_seeds(const char *out)
{
    static const char *objects[] = {"x", ("\x7f" "ELF fake object")};
    for (int i = 0; i < 3; i++) {
        char dir[] = "/tmp/fuse-fuzz-seed-XXXXXX";
        if (!mkdtemp(dir))
            abort();
        JitCache *c = jit_cache_new();
        char big[300];
        for (size_t j = 0; j < sizeof big; j++)
            big[j] = (char)(j % 7);
        const void *obj = i < 2 ? objects[i] : big;
        size_t n = i < 2 ? strlen(objects[i]) : sizeof big;
        char *warn = NULL;
        if (!c || jit_cache_put(c, &key, dir, obj, n, &warn) != FUSE_OK)
            abort();
        free(warn);
        jit_cache_free(c);
        char *from = entry_file(dir);
        char to[4096];
        snprintf(to, sizeof to, "%s/entry-%d.fjo", out, i);
        if (!from || rename(from, to) != 0) {
            perror("fuzz_cache: rename");
            abort();
        }
        free(from);
        rmdir(dir);
    }
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < JIT_KEY_BYTES; i++)
        key.b[i] = (unsigned char)(0x5a ^ (i * 37));
    const char *out = getenv("FUSE_FUZZ_WRITE_SEEDS");
    if (out)
        write_seeds(out);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir();
    char *path = entry_file(dir);
    if (!path)
        return 0;
    fuzz_write(strrchr(path, '/') + 1, data, size);
    JitCache *c = jit_cache_new();
    if (c) {
        void *obj = NULL;
        size_t n = 0;
        JitHit hit = JIT_MISS;
        char *warn = NULL;
        (void)jit_cache_get(c, &key, dir, &obj, &n, &hit, &warn);
        free(warn);
        free(obj);
        jit_cache_free(c);
    }
    unlink(path);
    free(path);
    return 0;
}
