/*
 * cli_modes.h: the execution-mode options of `fuse-jit run` (cli_modes.c):
 * --mode, --fixpoint-strategy, --max-iters, --tol, --query (repeatable),
 * --projection, --samples, --seed, --temperature NAME=SPEC (repeatable),
 * --steps, --explain and --explain-json. They become fields of fuse_config, and
 * the run prints the queries' results and the run trace.
 */
#ifndef FUSE_TOOLS_CLI_MODES_H
#define FUSE_TOOLS_CLI_MODES_H

#include <stdbool.h>
#include <stddef.h>

#include "fusejit.h"

typedef struct CliModes {
    fuse_mode mode;
    fuse_strategy strategy;
    int max_iters;
    double tol;
    fuse_projection projection;
    fuse_precision precision;  /* --precision */
    int64_t samples;
    uint64_t seed;
    int steps;                 /* runs of the program (streaming steps); 0 = 1 */
    bool explain, explain_json;
    const char **queries;      /* "Name" or "Name[x=3,y=1]", pointing into argv */
    size_t n_queries;
    fuse_temperature *temps;   /* name malloc'd, spec points into argv */
    size_t n_temps;
} CliModes;

/* Stores option `name` (without "--") with value v (NULL for a flag). Returns 0,
 * or 1 with a malloc'd message in *msg for a usage error (NULL on OOM). */
int cli_modes_set(CliModes *m, const char *name, const char *v, char **msg);

/* Copies the options into a runner configuration (pointers stay in m). */
void cli_modes_config(const CliModes *m, fuse_config *cfg);

void cli_modes_free(CliModes *m);

/* Splits a query "Name[x=3,y=1]" into a malloc'd name and selectors "x=3,y=1"
 * (NULL when there are none; freed with the name... separately). Returns false
 * when the text is malformed or on OOM. */
bool cli_query_split(const char *q, char **name, char **selectors);

/* the inputs of time step `step` (0-based) of --steps: every
 * input at step 0; later steps leave out the seeds (names with '@', "H@t-1"),
 * which set earlier steps before the first one only. Writes them to out (room
 * for n) and returns how many. */
size_t cli_step_inputs(const fuse_input *in, size_t n, int step, fuse_input *out);

/* a byte count for --max-memory and the REPL's `:set max_memory`: a number
 * (a fraction allowed) with an optional binary suffix K, M, G, T or KiB, MiB, GiB,
 * TiB (any case; K = KiB = 1024); "0" or "none" is FUSE_MEMORY_UNLIMITED. False
 * for anything else. */
bool cli_parse_bytes(const char *v, uint64_t *out);

#endif /* FUSE_TOOLS_CLI_MODES_H */
