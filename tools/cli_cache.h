/*
 * cli_cache.h: the code-cache side of the fuse-jit command (cli_cache.c):
 * the `cache stats|clear|dir` command and the phase times `run --time` prints.
 */
#ifndef FUSE_TOOLS_CLI_CACHE_H
#define FUSE_TOOLS_CLI_CACHE_H

#include <stdio.h>

#include "fusejit.h"

/* `fuse-jit cache ACTION`: ACTION is "stats", "clear" or "dir"; cache_dir (NULL:
 * the default directory) is the --cache-dir value. Returns the exit status. */
int cli_cache_command(const char *action, const char *cache_dir);

/* Prints the phases of a runner's creation and last run to f, one per line
 * ("time: parse 0.12 ms"), and whether the code came from a cache. */
void cli_cache_print_times(FILE *f, fuse_ctx *ctx, const fuse_runner *run);

#endif /* FUSE_TOOLS_CLI_CACHE_H */
