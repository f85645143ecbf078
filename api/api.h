/*
 * api.h: the objects behind the public handles of fusejit.h, private to the API layer
 * (api/). The layer orchestrates the stages: a context owns the JIT session and
 * the code cache; a program is checked source; a runner is a plan compiled for one
 * configuration (runtime.h). No file outside api/ includes this header.
 */
#ifndef FUSE_API_H
#define FUSE_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "fusejit.h"
#include "runtime.h"

struct fusejit_ctx {
    struct JitSession *js;
    pthread_mutex_t lock;  /* guards errs */
    atomic_int next_runner;
    /* the last diagnostic of each thread, guarded by lock (api.c) */
    struct RtThreadError *errs;
    size_t n_errs, cap_errs;
    /* compiled objects by content key (jit/jit.h) */
    struct JitCache *cache;
};

struct fusejit_program {
    fuse_ctx *ctx;
    char *text;
    char *name;
    char *dir;             /* the program file's directory, or NULL for text */
    RtPlan *plan;          /* parsed and checked, not compiled */
};

struct fusejit_runner {
    fuse_ctx *ctx;
    RtPlan *plan;
};

struct fusejit_outputs {
    size_t n;
    char **names;
    fuse_tensor *tensors;
};

/* ---- api.c ---- */

/* Sets the calling thread's diagnostic of ctx to msg (malloc'd, taken). */
void rt_ctx_set_error(struct fusejit_ctx *ctx, char *msg);

/* ---- api_modes.c ---- */

/* Applies a configuration's modes to a runner (FUSE_E_ARG with a diagnostic when
 * invalid). */
fuse_status rt_modes_apply(struct fusejit_runner *run, const fuse_config *cfg);
/* Sets the diagnostic of a run that did not converge; returns FUSE_E_NOT_CONVERGED. */
fuse_status rt_modes_not_converged(struct fusejit_runner *run);

/* ---- api_cache.c ---- */

/* The disk cache directory of a configuration (malloc'd): NULL when cfg->no_cache
 * or when no directory can be found; *is_nomem set on OOM. */
char *rt_cache_dir_of(const fuse_config *cfg, bool *is_nomem);

#endif /* FUSE_API_H */
