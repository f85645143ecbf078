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
#include <stddef.h>

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
    /* the log callback and interrupt flag every plan of the context
     * borrows, and the runs in progress (api_run_begin) */
    RtHost host;
    atomic_int n_running;
};

struct fusejit_program {
    fuse_ctx *ctx;
    char *text;
    char *name;
    char *dir;             /* the program file's directory, or NULL for text */
    RtPlan *plan;          /* parsed and checked, not compiled */
    fuse_program_options opts; /* as given, with params (and their names) owned */
    /* api_info.c: tensor ids of the sources in program order, then of
     * the exports that are not sources, in export order */
    int *listed;
    int n_listed_inputs, n_listed;
};

struct fusejit_runner {
    fuse_ctx *ctx;
    RtPlan *plan;
    atomic_bool busy;      /* a call is using the runner (api_runner_enter) */
};

struct fusejit_outputs {
    size_t n;
    char **names;
    fuse_tensor *tensors;
};

/* ---- api.c ---- */

/* The plan behind a runner, for white-box tests of the executor (test_modes
 * declares it itself, so no test needs this header). */
RtPlan *api_runner_plan(const fuse_runner *run);

/* Sets the calling thread's diagnostic of ctx to msg (malloc'd, taken). */
void rt_ctx_set_error(struct fusejit_ctx *ctx, char *msg);

/* bracket every public call on a runner: enter takes the runner
 * for the calling thread, or, when another call holds it, sets the calling
 * thread's diagnostic (naming `what`, the API function) and returns false
 * without touching the runner; the caller then returns FUSE_E_BUSY. */
bool api_runner_enter(struct fusejit_runner *run, const char *what);
void api_runner_leave(struct fusejit_runner *run);

/* a versioned struct of fusejit.h. It opens with `size_t size`, the
 * sizeof the host was compiled with; each published layout appended fields to
 * the one before. A host's struct is read and written up to the last field of the
 * largest layout within its size, never in its trailing padding, where a later
 * layout's first field may lie. */
enum { API_LAYOUTS = 4 };
typedef struct ApiLayout {
    const char *name;         /* "fuse_config", for diagnostics */
    size_t ends[API_LAYOUTS]; /* where each layout's last field ends, ascending;
                                 the last is this library's; 0 after it */
    size_t known;             /* this library's sizeof */
    size_t align;             /* _Alignof: every layout's sizeof is a multiple */
} ApiLayout;

/* Where field f of struct type T ends. */
#define API_FIELD_END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

/* The largest size taken: larger than any layout will be, so a garbage size
 * (a host that never set it) is refused rather than trusted. */
#define API_STRUCT_MAX 4096

/* How many bytes of a host's struct of `size` this library reads or writes (the
 * end of the largest layout within it), or 0 when the size is refused, with the
 * reason in why (cap bytes): below the first layout, not a multiple of l->align,
 * past API_STRUCT_MAX, or (host_in, the host's struct of an input, not NULL)
 * larger than l->known with a nonzero byte past this library's last field. The
 * one check of every versioned struct: fuse_config_init_size and the two copies
 * below. */
size_t api_layout_bytes(const ApiLayout *l, size_t size, const void *host_in, char *why,
                        size_t cap);
/* Takes the host's input struct `host` into the library's `lib` (which holds the
 * defaults): the fields api_layout_bytes gives are copied, the others kept.
 * FUSE_E_ARG with ctx's diagnostic (ctx may be NULL) when the size is refused. */
fuse_status api_struct_in(fuse_ctx *ctx, const ApiLayout *l, const void *host, void *lib);
/* Gives the library's `lib` to the host's output struct `host`: writes the
 * fields api_layout_bytes gives, never `size` itself nor anything else (a newer
 * host's own fields keep what it set). FUSE_E_ARG as api_struct_in. */
fuse_status api_struct_out(fuse_ctx *ctx, const ApiLayout *l, const void *lib, void *host);

/* the host's configuration (NULL: the defaults) as this library's
 * struct: *out holds the defaults under the fields cfg->size covers. FUSE_E_ARG
 * as api_struct_in. */
fuse_status api_config_take(fuse_ctx *ctx, const fuse_config *cfg, fuse_config *out);

/* ---- api_dist.c ---- */

/* fuse_runner_new's step for fuse_config.distributed, after the plan was made
 * with status st: rt_dist_attach, its message (if any) in the plan's
 * diagnostics. */
fuse_status api_dist_attach(struct fusejit_runner *run, fuse_status st, int distributed);

/* bracket every run of a runner (fuse_runner_run, _run_into, _query):
 * the first to begin with no run in progress clears an interrupt left pending
 * (fuse_ctx_interrupt, as sqlite3_interrupt). */
void api_run_begin(fuse_ctx *ctx);
void api_run_end(fuse_ctx *ctx);

/* ---- api_info.c ---- */

/* Fills prog->listed (fuse_program_tensor_count/_info); FUSE_E_NOMEM. */
fuse_status api_program_list(fuse_program *prog);

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
