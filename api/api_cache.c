/*
 * api_cache.c: the public face of the code the context's cache
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

/* the layouts of the versioned output structs; the first ended at
 * disk_rejected and at is_cache_hit. */
static const ApiLayout STATS_LAYOUT = {
    "fuse_stats",
    {API_FIELD_END(fuse_stats, disk_rejected), API_FIELD_END(fuse_stats, groups_cached)},
    sizeof(fuse_stats), _Alignof(fuse_stats)};
static const ApiLayout TIMINGS_LAYOUT = {
    "fuse_timings",
    {API_FIELD_END(fuse_timings, is_cache_hit), API_FIELD_END(fuse_timings, flops),
     API_FIELD_END(fuse_timings, peak_bytes)},
    sizeof(fuse_timings), _Alignof(fuse_timings)};

fuse_status fuse_ctx_stats(fuse_ctx *ctx, fuse_stats *out)
{
    if (!ctx || !out)
        return FUSE_E_ARG;
    fuse_stats s;
    jit_cache_stats(ctx->cache, &s);
    return api_struct_out(ctx, &STATS_LAYOUT, &s, out);
}

fuse_status fuse_runner_timings(const fuse_runner *run, fuse_timings *out)
{
    if (!run || !out)
        return FUSE_E_ARG;
    /* the runner is the host's, allocated without const: taking its flag is allowed */
    fuse_runner *held = (fuse_runner *)run;
    if (!api_runner_enter(held, "fuse_runner_timings"))
        return FUSE_E_BUSY;
    fuse_status st = api_struct_out(run->ctx, &TIMINGS_LAYOUT, &run->plan->timings, out);
    api_runner_leave(held);
    return st;
}

fuse_status fuse_cache_dir(const fuse_config *cfg, char **out)
{
    if (!out)
        return FUSE_E_ARG;
    *out = NULL;
    fuse_config c; /* as fuse_runner_new reads it */
    if (api_config_take(NULL, cfg, &c) != FUSE_OK)
        return FUSE_E_ARG;
    bool is_nomem = false;
    *out = rt_cache_dir_of(&c, &is_nomem);
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
