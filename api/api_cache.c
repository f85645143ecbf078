/*
 * api_cache.c: the public face of the code cache (issue 5): the context's cache
 * counters, a runner's phase timings, and the helpers plan.c and api.c use to time
 * phases and find a configuration's disk cache directory.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "jit.h"
#include "runtime.h"

char *rt_cache_dir_of(const fuse_config *cfg, bool *is_nomem)
{
    *is_nomem = false;
    if (cfg->no_cache)
        return NULL;
    char *dir = cfg->cache_dir ? strdup(cfg->cache_dir) : jit_cache_default_dir();
    /* Without a HOME, no default directory exists: run without a disk cache. */
    if (!dir && cfg->cache_dir)
        *is_nomem = true;
    return dir;
}

fuse_status fuse_ctx_stats(fuse_ctx *ctx, fuse_stats *out)
{
    if (!ctx || !out)
        return FUSE_E_ARG;
    jit_cache_stats(ctx->cache, out);
    return FUSE_OK;
}

fuse_status fuse_runner_timings(const fuse_runner *run, fuse_timings *out)
{
    if (!run || !out)
        return FUSE_E_ARG;
    *out = run->plan->timings;
    return FUSE_OK;
}

fuse_status fuse_cache_dir(const fuse_config *cfg, char **out)
{
    if (!out)
        return FUSE_E_ARG;
    fuse_config defaults;
    fuse_config_init(&defaults);
    bool is_nomem = false;
    *out = rt_cache_dir_of(cfg ? cfg : &defaults, &is_nomem);
    return is_nomem ? FUSE_E_NOMEM : FUSE_OK;
}

fuse_status fuse_cache_usage(const char *dir, uint64_t *entries, uint64_t *bytes)
{
    if (!dir || !entries || !bytes)
        return FUSE_E_ARG;
    char *err = NULL;
    fuse_status st = jit_cache_dir_usage(dir, entries, bytes, &err);
    free(err);
    return st;
}

fuse_status fuse_cache_clear(const char *dir, uint64_t *removed)
{
    if (!dir)
        return FUSE_E_ARG;
    uint64_t n = 0;
    char *err = NULL;
    fuse_status st = jit_cache_dir_clear(dir, &n, &err);
    free(err);
    if (removed)
        *removed = n;
    return st;
}
