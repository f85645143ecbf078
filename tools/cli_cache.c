/*
 * cli_cache.c: `fuse-jit cache stats|clear|dir` and the `run --time` report, both
 * through the public API (fuse_cache_dir, fuse_cache_usage, fuse_cache_clear,
 * fuse_runner_timings, fuse_ctx_stats).
 */
#include "cli_cache.h"

#include <inttypes.h>
#include <string.h>

/* The directory the command works on, malloc'd by the library; NULL (with a
 * message) when there is none. */
static char *cache_dir_of(const char *cache_dir)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.cache_dir = cache_dir;
    char *dir = NULL;
    if (fuse_cache_dir(&cfg, &dir) != FUSE_OK || !dir)
        fputs("fuse-jit: error: no cache directory: set FUSE_JIT_CACHE_DIR or HOME, or "
              "pass --cache-dir DIR\n", stderr);
    return dir;
}

int cli_cache_command(const char *action, const char *cache_dir)
{
    char *dir = cache_dir_of(cache_dir);
    if (!dir)
        return 1;
    fuse_status st = FUSE_OK;
    uint64_t entries = 0, bytes = 0;
    if (strcmp(action, "dir") == 0) {
        printf("%s\n", dir);
    } else if (strcmp(action, "stats") == 0) {
        st = fuse_cache_usage(dir, &entries, &bytes);
        if (st == FUSE_OK)
            printf("directory: %s\nentries: %" PRIu64 "\nbytes: %" PRIu64 "\n", dir, entries,
                   bytes);
    } else {
        st = fuse_cache_clear(dir, &entries);
        if (st == FUSE_OK)
            printf("removed %" PRIu64 " entries from %s\n", entries, dir);
    }
    if (st != FUSE_OK)
        fprintf(stderr, "fuse-jit: error: cannot read the cache directory %s: %s\n", dir,
                fuse_status_name(st));
    fuse_free(dir);
    return st == FUSE_OK ? 0 : 1;
}

void cli_cache_print_times(FILE *f, fuse_ctx *ctx, const fuse_runner *run)
{
    fuse_timings t = {.size = sizeof t}; /* versioned structs */
    fuse_stats s = {.size = sizeof s};
    if (fuse_runner_timings(run, &t) != FUSE_OK || fuse_ctx_stats(ctx, &s) != FUSE_OK)
        return;
    fprintf(f, "time: parse %.3f ms\ntime: check %.3f ms\n", t.parse_ms, t.check_ms);
    if (t.is_cache_hit) {
        fprintf(f, "time: cache load %.3f ms (%s hit)\n", t.cache_load_ms,
                s.disk_hits ? "disk" : "memory");
    } else {
        fprintf(f, "time: lower %.3f ms\ntime: compile %.3f ms (cache miss; %llu kernel%s%s)\n",
                t.lower_ms, t.compile_ms, (unsigned long long)s.groups_compiled,
                s.groups_compiled == 1 ? "" : "s", s.disk_writes ? "; entry written" : "");
    }
    fprintf(f, "time: run %.3f ms\n", t.last_run_ms);
    double total = t.parse_ms + t.check_ms + t.lower_ms + t.compile_ms + t.cache_load_ms +
                   t.last_run_ms;
    fprintf(f, "time: total %.3f ms\n", total);
    if (t.buffer_bytes) /* the plan's buffers: a run's peak and all of them */
        fprintf(f, "memory: planned peak %.1f MiB (buffers %.1f MiB)\n",
                (double)t.peak_bytes / 1048576.0, (double)t.buffer_bytes / 1048576.0);
}
