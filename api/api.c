/*
 * api.c: the public API of include/fusejit.h. Contexts, programs, runners and output
 * maps wrap the runtime's plans (exec.c); every failure becomes a status plus a
 * formatted diagnostic kept in the context.
 */
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jit.h"
#include "runtime.h"

/* ---- versions and names ---- */

int fuse_version_number(void) { return FUSE_VERSION_NUMBER; }
const char *fuse_version_string(void) { return FUSE_VERSION_STRING; }

static const char *const STATUS_NAMES[] = {
    "ok", "syntax error", "shape error", "I/O error", "out of memory", "JIT error",
    "runtime error", "invalid argument", "unsupported", "did not converge", "interrupted",
    "busy",
};
_Static_assert(sizeof STATUS_NAMES / sizeof STATUS_NAMES[0] == FUSE_STATUS_COUNT,
               "status names");

const char *fuse_status_name(fuse_status status)
{
    return (unsigned)status < FUSE_STATUS_COUNT ? STATUS_NAMES[status] : "unknown status";
}

void fuse_free(void *p) { free(p); }

/* ---- errors ---- */

/* Each thread's last diagnostic (fusejit.h: fuse_ctx_error reports the calling
 * thread's). One entry per thread that ever failed in this context; glibc reuses
 * the ids of joined threads, so the table stays about as large as the number of
 * threads alive at once. Messages are freed with the context. */
struct RtThreadError {
    pthread_t tid;
    char *err; /* NULL: the message could not be allocated */
};

static struct RtThreadError *thread_error_slot(fuse_ctx *ctx)
{
    pthread_t self = pthread_self();
    for (size_t i = 0; i < ctx->n_errs; i++)
        if (pthread_equal(ctx->errs[i].tid, self))
            return &ctx->errs[i];
    if (!sup_grow((void **)&ctx->errs, &ctx->cap_errs, ctx->n_errs + 1, sizeof *ctx->errs))
        return NULL;
    struct RtThreadError *slot = &ctx->errs[ctx->n_errs++];
    slot->tid = self;
    slot->err = NULL;
    return slot;
}

static void set_error_owned(fuse_ctx *ctx, char *msg)
{
    if (!ctx) {
        free(msg);
        return;
    }
    pthread_mutex_lock(&ctx->lock);
    struct RtThreadError *slot = thread_error_slot(ctx);
    if (slot) {
        free(slot->err);
        slot->err = msg;
    } else {
        free(msg);
    }
    pthread_mutex_unlock(&ctx->lock);
}

/* the same for api_modes.c and query.c (takes msg; accepts NULL ctx) */
void rt_ctx_set_error(fuse_ctx *ctx, char *msg)
{
    set_error_owned(ctx, msg);
}

static fuse_status fail(fuse_ctx *ctx, fuse_status st, const char *msg)
{
    set_error_owned(ctx, sup_strprintf("error: %s", msg));
    return st;
}

/* ---- one call at a time on a runner ---- */

/* The flag is taken with an atomic exchange, so of two threads entering at once
 * exactly one gets the runner; the other fails before it has read or written any
 * of the runner's state, which is why a busy call leaves both calls' results
 * intact. Exchange and store are sequentially consistent: what one call wrote
 * is seen by the next. */
bool api_runner_enter(fuse_runner *run, const char *what)
{
    if (!atomic_exchange(&run->busy, true))
        return true;
    char *msg = sup_strprintf("error: %s: the runner is in use by another thread (a runner "
                              "takes one call at a time)", what);
    set_error_owned(run->ctx, msg);
    return false;
}

void api_runner_leave(fuse_runner *run)
{
    atomic_store(&run->busy, false);
}

/* Takes the diagnostics of a plan into the context. */
static fuse_status fail_plan(fuse_ctx *ctx, fuse_status st, const RtPlan *plan)
{
    char *text = plan && plan->dl.first ? fe_diags_format(&plan->dl) : NULL;
    if (!text)
        return fail(ctx, st, fuse_status_name(st));
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    set_error_owned(ctx, text);
    return st;
}

/* ---- versioned structs ---- */

size_t api_layout_bytes(const ApiLayout *l, size_t size, const void *host_in, char *why,
                        size_t cap)
{
    size_t n = 0, last = 0; /* the largest layout within size; this library's */
    for (int i = 0; i < API_LAYOUTS && l->ends[i]; i++) {
        last = l->ends[i];
        if (last <= size)
            n = last;
    }
    bool is_bad = n == 0 || size % l->align || size > API_STRUCT_MAX;
    bool is_newer = !is_bad && host_in && size > l->known;
    const unsigned char *b = host_in;
    size_t set = last; /* the first nonzero byte past this library's fields */
    while (is_newer && set < size && !b[set])
        set++;
    if (size == 0)
        snprintf(why, cap, "%s.size is 0: set it to sizeof(%s)", l->name, l->name);
    else if (is_bad)
        snprintf(why, cap, "%s.size %zu is no size of a %s (a multiple of %zu from %zu "
                 "bytes; this library's is %zu)", l->name, size, l->name, l->align, l->ends[0],
                 l->known);
    else if (is_newer && set < size)
        snprintf(why, cap, "%s.size %zu is larger than this library's %zu and sets a field "
                 "it does not know: the host's fusejit.h is newer than the library", l->name,
                 size, l->known);
    else
        return n;
    return 0;
}

/* The bytes of the host's struct the library takes, or 0 (and the context's
 * diagnostic) when its size is refused. */
static size_t host_bytes(fuse_ctx *ctx, const ApiLayout *l, const void *host, bool is_input)
{
    size_t size;
    memcpy(&size, host, sizeof size);
    char why[256];
    size_t n = api_layout_bytes(l, size, is_input ? host : NULL, why, sizeof why);
    if (!n)
        fail(ctx, FUSE_E_ARG, why);
    return n;
}

fuse_status api_struct_in(fuse_ctx *ctx, const ApiLayout *l, const void *host, void *lib)
{
    size_t n = host_bytes(ctx, l, host, true), skip = sizeof(size_t);
    if (!n)
        return FUSE_E_ARG;
    memcpy((char *)lib + skip, (const char *)host + skip, n - skip);
    return FUSE_OK;
}

fuse_status api_struct_out(fuse_ctx *ctx, const ApiLayout *l, const void *lib, void *host)
{
    size_t n = host_bytes(ctx, l, host, false), skip = sizeof(size_t);
    if (!n)
        return FUSE_E_ARG;
    memcpy((char *)host + skip, (const char *)lib + skip, n - skip);
    return FUSE_OK;
}

const char *fuse_ctx_error(fuse_ctx *ctx)
{
    if (!ctx)
        return "error: no context";
    const char *msg = "";
    pthread_mutex_lock(&ctx->lock);
    pthread_t self = pthread_self();
    for (size_t i = 0; i < ctx->n_errs; i++)
        if (pthread_equal(ctx->errs[i].tid, self))
            msg = ctx->errs[i].err ? ctx->errs[i].err : "error: out of memory";
    pthread_mutex_unlock(&ctx->lock);
    return msg;
}

/* ---- contexts ---- */

fuse_status fuse_ctx_new(fuse_ctx **out)
{
    if (!out)
        return FUSE_E_ARG;
    *out = NULL;
    fuse_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return FUSE_E_NOMEM;
    pthread_mutex_init(&ctx->lock, NULL);
    atomic_init(&ctx->host.interrupt, 0);
    atomic_init(&ctx->n_running, 0);
    char *err = NULL;
    fuse_status st = jit_session_new(&ctx->js, &err);
    if (st != FUSE_OK) {
        free(err);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        return st;
    }
    st = rt_host_symbols_define(ctx->js, &err); /* tucker */
    if (st != FUSE_OK) {
        free(err);
        fuse_ctx_free(ctx);
        return st;
    }
    ctx->cache = jit_cache_new();
    if (!ctx->cache) {
        fuse_ctx_free(ctx);
        return FUSE_E_NOMEM;
    }
    *out = ctx;
    return FUSE_OK;
}

void fuse_ctx_free(fuse_ctx *ctx)
{
    if (!ctx)
        return;
    jit_session_free(ctx->js);
    jit_cache_free(ctx->cache);
    for (size_t i = 0; i < ctx->n_errs; i++)
        free(ctx->errs[i].err);
    free(ctx->errs);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* ---- interrupts and the log ---- */

/* fuse_ctx_interrupt may run in a signal handler: the store must not lock. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int is lock-free");

void fuse_ctx_interrupt(fuse_ctx *ctx)
{
    if (ctx)
        atomic_store(&ctx->host.interrupt, 1);
}

void api_run_begin(fuse_ctx *ctx)
{
    if (atomic_fetch_add(&ctx->n_running, 1) == 0)
        atomic_store(&ctx->host.interrupt, 0);
}

void api_run_end(fuse_ctx *ctx)
{
    atomic_fetch_sub(&ctx->n_running, 1);
}

fuse_status fuse_ctx_set_log(fuse_ctx *ctx, fuse_log_fn fn, void *user)
{
    if (!ctx)
        return FUSE_E_ARG;
    ctx->host.log = fn;
    ctx->host.log_user = user;
    return FUSE_OK;
}

/* ---- programs ---- */

static void options_free(fuse_program_options *o)
{
    for (size_t i = 0; i < o->n_params; i++)
        free((char *)o->params[i].name);
    free((fuse_param *)o->params);
    free((char *)o->weights);
    o->params = NULL;
    o->n_params = 0;
    o->weights = NULL;
}

/* Takes text and *opts (freed on failure too). */
static fuse_status program_new(fuse_ctx *ctx, char *text, const char *name, const char *dir,
                               fuse_program_options *opts, fuse_program **out)
{
    fuse_program *prog = calloc(1, sizeof *prog);
    if (!prog) {
        free(text);
        options_free(opts);
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    }
    prog->ctx = ctx;
    prog->text = text;
    prog->opts = *opts; /* the params now belong to prog */
    prog->name = strdup(name ? name : "<input>");
    prog->dir = dir ? strdup(dir) : NULL;
    if (!prog->name || (dir && !prog->dir)) {
        fuse_program_free(prog);
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    }
    fuse_status st = rt_plan_new(&prog->plan, text, prog->name, prog->dir, prog->dir, false,
                                 NULL, 0, NULL, NULL, NULL, NULL, &ctx->host, &prog->opts, 0,
                                 FUSE_PRECISION_FP32, false);
    if (st == FUSE_OK && api_program_list(prog) != FUSE_OK) {
        fuse_program_free(prog);
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    }
    if (st != FUSE_OK) {
        fail_plan(ctx, st, prog->plan);
        fuse_program_free(prog);
        return st;
    }
    *out = prog;
    return FUSE_OK;
}

/* fuse_program_options' layouts: the first ends at n_params, the second at
 * weights, the third at strict_sources (error_limit and strict_sources came
 * together: a layout ending at error_limit would have its sizeof too). */
static const ApiLayout PROGRAM_OPTIONS_LAYOUT = {
    "fuse_program_options",
    {API_FIELD_END(fuse_program_options, n_params),
     API_FIELD_END(fuse_program_options, weights),
     API_FIELD_END(fuse_program_options, strict_sources)},
    sizeof(fuse_program_options), _Alignof(fuse_program_options)};

void fuse_program_options_init_size(fuse_program_options *o, size_t size)
{
    char why[256];
    if (!o || !api_layout_bytes(&PROGRAM_OPTIONS_LAYOUT, size, NULL, why, sizeof why))
        return;
    memset(o, 0, size);
    o->size = size;
}

/* A checked copy of opts (NULL: the defaults) whose params the caller owns
 * (options_free); FUSE_E_ARG with a message when bad. */
static fuse_status options_take(fuse_ctx *ctx, const fuse_program_options *opts,
                                fuse_program_options *out)
{
    fuse_program_options o;
    fuse_program_options_init(&o);
    fuse_program_options_init(out);
    fuse_status st = opts ? api_struct_in(ctx, &PROGRAM_OPTIONS_LAYOUT, opts, &o) : FUSE_OK;
    if (st != FUSE_OK)
        return st;
    if ((unsigned)o.syntax >= FUSE_SYNTAX_COUNT)
        return fail(ctx, FUSE_E_ARG, "fuse_program_options: syntax must be "
                                     "FUSE_SYNTAX_LEGACY or FUSE_SYNTAX_V2");
    if (o.n_params && (!o.params || o.n_params > 4096))
        return fail(ctx, FUSE_E_ARG, "fuse_program_options: n_params without params");
    for (size_t i = 0; i < o.n_params; i++)
        if (!o.params[i].name)
            return fail(ctx, FUSE_E_ARG, "fuse_program_options: a param without a name");
    out->syntax = o.syntax;
    out->error_limit = o.error_limit;
    out->strict_sources = o.strict_sources;
    if (o.weights && !(out->weights = strdup(o.weights)))
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    fuse_param *ps = o.n_params ? calloc(o.n_params, sizeof *ps) : NULL;
    if (o.n_params && !ps) {
        options_free(out);
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    }
    out->params = ps;
    for (size_t i = 0; i < o.n_params; i++, out->n_params++) {
        ps[i].value = o.params[i].value;
        if (!(ps[i].name = strdup(o.params[i].name))) {
            options_free(out);
            return fail(ctx, FUSE_E_NOMEM, "out of memory");
        }
    }
    return FUSE_OK;
}

fuse_status fuse_program_from_text_opts(fuse_ctx *ctx, const char *text, const char *name,
                                        const fuse_program_options *opts, fuse_program **out)
{
    if (!ctx || !text || !out)
        return fail(ctx, FUSE_E_ARG, "fuse_program_from_text: NULL argument");
    *out = NULL;
    fuse_program_options o;
    fuse_status st = options_take(ctx, opts, &o);
    if (st != FUSE_OK)
        return st;
    char *copy = strdup(text);
    if (!copy) {
        options_free(&o);
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    }
    return program_new(ctx, copy, name, NULL, &o, out);
}

fuse_status fuse_program_from_text(fuse_ctx *ctx, const char *text, const char *name,
                                   fuse_program **out)
{
    return fuse_program_from_text_opts(ctx, text, name, NULL, out);
}

fuse_status fuse_program_from_file_opts(fuse_ctx *ctx, const char *path,
                                        const fuse_program_options *opts, fuse_program **out)
{
    if (!ctx || !path || !out)
        return fail(ctx, FUSE_E_ARG, "fuse_program_from_file: NULL argument");
    *out = NULL;
    fuse_program_options o;
    fuse_status st = options_take(ctx, opts, &o);
    if (st != FUSE_OK)
        return st;
    void *data = NULL;
    size_t n = 0;
    char *err = NULL;
    st = sup_read_file(path, &data, &n, &err);
    if (st != FUSE_OK) {
        options_free(&o);
        fail(ctx, st, err ? err : path);
        free(err);
        return st;
    }
    char *dircopy = memchr(data, '\0', n) ? NULL : strdup(path);
    if (!dircopy) {
        bool has_nul = memchr(data, '\0', n) != NULL;
        free(data);
        options_free(&o);
        return has_nul ? fail(ctx, FUSE_E_SYNTAX, "the program file contains a NUL byte")
                       : fail(ctx, FUSE_E_NOMEM, "out of memory");
    }
    st = program_new(ctx, data, path, dirname(dircopy), &o, out);
    free(dircopy);
    return st;
}

fuse_status fuse_program_from_file(fuse_ctx *ctx, const char *path, fuse_program **out)
{
    return fuse_program_from_file_opts(ctx, path, NULL, out);
}

void fuse_program_free(fuse_program *prog)
{
    if (!prog)
        return;
    rt_plan_free(prog->plan);
    options_free(&prog->opts);
    free(prog->listed);
    free(prog->text);
    free(prog->name);
    free(prog->dir);
    free(prog);
}

fuse_status fuse_program_explain(fuse_program *prog, int json, char **out)
{
    if (!prog || !out)
        return fail(prog ? prog->ctx : NULL, FUSE_E_ARG, "fuse_program_explain: NULL argument");
    *out = ir_explain(prog->plan->ir, json != 0);
    return *out ? FUSE_OK : fail(prog->ctx, FUSE_E_NOMEM, "out of memory");
}

fuse_status fuse_program_dump(fuse_program *prog, const char *what, char **out)
{
    if (!prog || !what || !out)
        return fail(prog ? prog->ctx : NULL, FUSE_E_ARG, "fuse_program_dump: NULL argument");
    if (strcmp(what, "ast") == 0)
        *out = fe_ast_dump(&prog->plan->ast);
    else if (strcmp(what, "ir") == 0)
        *out = ir_dump(prog->plan->ir);
    else
        return fail(prog->ctx, FUSE_E_ARG, "dump: what must be \"ast\" or \"ir\"");
    return *out ? FUSE_OK : fail(prog->ctx, FUSE_E_NOMEM, "out of memory");
}

/* ---- runners ---- */

/* fuse_config's layouts: the first ended at write_sinks. */
static const ApiLayout CONFIG_LAYOUT = {
    "fuse_config",
    {API_FIELD_END(fuse_config, write_sinks), API_FIELD_END(fuse_config, no_cache),
     API_FIELD_END(fuse_config, max_memory), API_FIELD_END(fuse_config, distributed)},
    sizeof(fuse_config), _Alignof(fuse_config)};

void fuse_config_init_size(fuse_config *cfg, size_t size)
{
    char why[256];
    size_t n = api_layout_bytes(&CONFIG_LAYOUT, size, NULL, why, sizeof why);
    if (!cfg || !n)
        return;
    fuse_config d;
    memset(&d, 0, sizeof d);
    d.write_sinks = 1;
    memset(cfg, 0, size); /* padding, and a newer header's fields: 0, their default */
    memcpy(cfg, &d, n);
    cfg->size = size;
}

fuse_status api_config_take(fuse_ctx *ctx, const fuse_config *cfg, fuse_config *out)
{
    fuse_config_init(out);
    return cfg ? api_struct_in(ctx, &CONFIG_LAYOUT, cfg, out) : FUSE_OK;
}

/* what is wrong with a configuration (NULL when nothing): every count
 * non-negative, every enum in range, schedules present when counted. */
static const char *config_problem(const fuse_config *c)
{
    if (c->threads < 0)
        return "config: threads must be >= 0";
    if ((unsigned)c->mode >= FUSE_MODE_COUNT || (unsigned)c->strategy >= FUSE_STRATEGY_COUNT ||
        (unsigned)c->projection >= FUSE_PROJECTION_COUNT ||
        (unsigned)c->precision >= FUSE_PRECISION_COUNT || (unsigned)c->device >= FUSE_DEVICE_COUNT)
        return "config: mode, strategy, projection, precision or device out of range";
    if (c->max_iters < 0 || c->samples < 0 || !(c->tol >= 0))
        return "config: max_iters, samples and tol must be >= 0";
    if (c->n_temperatures && !c->temperatures)
        return "config: n_temperatures > 0 but temperatures is NULL";
    for (size_t i = 0; i < c->n_temperatures; i++)
        if (!c->temperatures[i].name || (!c->temperatures[i].spec && !c->temperatures[i].fn))
            return "config: a temperature needs a name and a spec or a callback";
    return NULL;
}

/* Valid settings this build cannot honour yet: refused rather than ignored. */
static const char *config_unsupported(const fuse_config *c)
{
    if (c->device == FUSE_DEVICE_CUDA)
        return "device cuda is not available: this build has no GPU path (use auto or cpu)";
    return NULL;
}

fuse_status fuse_runner_new(fuse_program *prog, const fuse_config *cfg,
                            const fuse_input *inputs, size_t n_inputs, fuse_runner **out)
{
    if (!prog || !out || (n_inputs && !inputs))
        return fail(prog ? prog->ctx : NULL, FUSE_E_ARG, "fuse_runner_new: NULL argument");
    *out = NULL;
    fuse_config c; /* the host's cfg as this library's struct */
    if (api_config_take(prog->ctx, cfg, &c) != FUSE_OK)
        return FUSE_E_ARG;
    cfg = &c;
    const char *bad = config_problem(cfg);
    if (bad)
        return fail(prog->ctx, FUSE_E_ARG, bad);
    bad = config_unsupported(cfg);
    if (bad)
        return fail(prog->ctx, FUSE_E_UNSUPPORTED, bad);
    fuse_runner *run = calloc(1, sizeof *run);
    if (!run)
        return fail(prog->ctx, FUSE_E_NOMEM, "out of memory");
    run->ctx = prog->ctx;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "r%d_", atomic_fetch_add(&prog->ctx->next_runner, 1));
    const char *base = cfg->base_dir ? cfg->base_dir : prog->dir;
    const char *outd = cfg->out_dir ? cfg->out_dir : prog->dir;
    bool is_nomem = false; /* the disk cache of this configuration */
    char *cache_dir = rt_cache_dir_of(cfg, &is_nomem);
    if (is_nomem) {
        free(run);
        return fail(prog->ctx, FUSE_E_NOMEM, "out of memory");
    }
    fuse_status st = rt_plan_new(&run->plan, prog->text, prog->name, base, outd,
                                 cfg->write_sinks != 0, inputs, n_inputs, prog->ctx->js, prefix,
                                 prog->ctx->cache, cache_dir, &prog->ctx->host, &prog->opts,
                                 cfg->max_memory, cfg->precision, cfg->distributed != 0);
    free(cache_dir);
    if (run->plan)
        run->plan->threads = cfg->threads; /* the kernels' team (also per MPI rank) */
    if (cfg->distributed)
        st = api_dist_attach(run, st, cfg->distributed); /* MPI: every rank made it, or none */
    if (st != FUSE_OK) {
        fail_plan(prog->ctx, st, run->plan);
        fuse_runner_free(run);
        return st;
    }
    st = rt_modes_apply(run, cfg); /* mode, strategy, schedules */
    if (st != FUSE_OK) {
        fuse_runner_free(run);
        return st;
    }
    *out = run;
    return FUSE_OK;
}

RtPlan *api_runner_plan(const fuse_runner *run)
{
    return run ? run->plan : NULL;
}

void fuse_runner_free(fuse_runner *run)
{
    if (!run)
        return;
    rt_plan_free(run->plan);
    free(run);
}

fuse_status fuse_runner_emit(fuse_runner *run, const char *what, char **out)
{
    if (!run || !what || !out)
        return fail(run ? run->ctx : NULL, FUSE_E_ARG, "fuse_runner_emit: NULL argument");
    *out = NULL;
    if (strcmp(what, "llvm") && strcmp(what, "llvm-raw") && strcmp(what, "asm"))
        return fail(run->ctx, FUSE_E_ARG, "emit: what must be llvm, llvm-raw or asm");
    if (!api_runner_enter(run, "fuse_runner_emit"))
        return FUSE_E_BUSY;
    char *err = NULL;
    fuse_status st = rt_plan_emit(run->plan, what, out, &err);
    api_runner_leave(run);
    if (st != FUSE_OK) {
        fail(run->ctx, st, err ? err : fuse_status_name(st));
        free(err);
    }
    return st;
}

/* ---- outputs ---- */

static fuse_status outputs_collect(fuse_runner *run, fuse_outputs **out)
{
    const IrProgram *p = run->plan->ir;
    fuse_outputs *o = calloc(1, sizeof *o);
    if (!o)
        return FUSE_E_NOMEM;
    *out = o;
    o->names = calloc((size_t)p->n_exports + 1, sizeof *o->names);
    o->tensors = calloc((size_t)p->n_exports + 1, sizeof *o->tensors);
    if (!o->names || !o->tensors)
        return FUSE_E_NOMEM;
    if (!rt_dist_has_results(run->plan))
        return FUSE_OK; /* MPI: the results are on rank 0 */
    for (int i = 0; i < p->n_exports; i++) {
        const IrTensor *t = p->tensors[p->exports[i]];
        fuse_status st = rt_elem_copy(run->plan, t, &o->tensors[i]); /* the plan's dtype */
        o->names[i] = strdup(t->name);
        o->n = (size_t)i + 1;
        if (st != FUSE_OK) /* the diagnostic names the export and its bytes */
            return rt_alloc_failed(run->plan, t, "the output map's copy of",
                                   (uint64_t)run->plan->count[t->id] *
                                       rt_tensor_bytes(run->plan, t->id));
        if (!o->names[i])
            return FUSE_E_NOMEM;
    }
    return FUSE_OK;
}

/* One run of the plan for fuse_runner_run and _run_into: FUSE_OK or
 * FUSE_E_NOT_CONVERGED (outputs are still delivered), with the host's
 * buffers still bound; any other status is the context's error, buffers given
 * back. */
static fuse_status run_plan(fuse_runner *run, const fuse_input *inputs, size_t n_inputs)
{
    RtPlan *pl = run->plan;
    pl->dl.first = pl->dl.last = NULL;
    pl->dl.n_errors = 0;
    double run_t0 = sup_clock_ms();
    fuse_input *all = NULL; /* the host's inputs and the manifest's tensors */
    size_t n_all = 0;
    fuse_status st = rt_check_inputs(pl, inputs, n_inputs);
    if (st == FUSE_OK && rt_weights_bind(pl, inputs, n_inputs, &all, &n_all) != FUSE_OK)
        st = fe_error(&pl->dl, FUSE_E_NOMEM, (Span){0}, "out of memory");
    api_run_begin(run->ctx); /* fuse_ctx_interrupt */
    if (st == FUSE_OK)
        st = rt_plan_run(pl, all, n_all);
    api_run_end(run->ctx);
    if (all != inputs)
        free(all);
    pl->timings.last_run_ms = sup_clock_ms() - run_t0;
    if (st == FUSE_OK || st == FUSE_E_NOT_CONVERGED)
        return st;
    rt_unborrow_sources(pl);
    return fail_plan(run->ctx, st, pl);
}

/* fuse_runner_run with the runner held. */
static fuse_status runner_run(fuse_runner *run, const fuse_input *inputs, size_t n_inputs,
                              fuse_outputs **out)
{
    fuse_status run_st = run_plan(run, inputs, n_inputs);
    if (run_st != FUSE_OK && run_st != FUSE_E_NOT_CONVERGED)
        return run_st;
    fuse_outputs *o = NULL;
    fuse_status st = outputs_collect(run, &o);
    if (st == FUSE_OK) /* no source file used in place was cut while it was read */
        st = rt_check_mapped_sources(run->plan);
    rt_unborrow_sources(run->plan); /* the host's buffers go back */
    if (st != FUSE_OK) {
        fuse_outputs_free(o);
        return run->plan->dl.first ? fail_plan(run->ctx, st, run->plan)
                                   : fail(run->ctx, st, "out of memory");
    }
    *out = o;
    return run_st == FUSE_E_NOT_CONVERGED ? rt_modes_not_converged(run) : FUSE_OK;
}

fuse_status fuse_runner_run(fuse_runner *run, const fuse_input *inputs, size_t n_inputs,
                            fuse_outputs **out)
{
    if (!run || !out || (n_inputs && !inputs))
        return fail(run ? run->ctx : NULL, FUSE_E_ARG, "fuse_runner_run: NULL argument");
    *out = NULL;
    if (!api_runner_enter(run, "fuse_runner_run"))
        return FUSE_E_BUSY;
    fuse_status st = runner_run(run, inputs, n_inputs, out);
    api_runner_leave(run);
    return st;
}

/* ---- outputs to a file ---- */

/* Whether path can hold the exports of run's program (set as the error). */
static bool check_save_path(fuse_runner *run, const char *path)
{
    const char *dot = strrchr(path, '.');
    int n = run->plan->ir->n_exports;
    if (!dot || (strcmp(dot, ".npy") != 0 && strcmp(dot, ".npz") != 0)) {
        set_error_owned(run->ctx, sup_strprintf("error: fuse_runner_run_save: %s: the file "
                                                "must end in .npy or .npz", path));
        return false;
    }
    if (strcmp(dot, ".npy") == 0 && n != 1) {
        set_error_owned(run->ctx, sup_strprintf("error: fuse_runner_run_save: %s holds one "
                                                "tensor, but the program has %d exports%s",
                                                path, n, n ? "; use an .npz file" : ""));
        return false;
    }
    return true;
}

/* fuse_runner_run_save with the runner held. */
static fuse_status runner_run_save(fuse_runner *run, const fuse_input *inputs,
                                   size_t n_inputs, const char *path, bool deflate)
{
    rt_dist_keep_exports(run->plan, true); /* MPI: rank 0 takes the rows as it writes */
    fuse_status run_st = run_plan(run, inputs, n_inputs);
    rt_dist_keep_exports(run->plan, false);
    if (run_st != FUSE_OK && run_st != FUSE_E_NOT_CONVERGED)
        return run_st;
    fuse_status st = rt_save_exports(run->plan, path, deflate);
    if (st == FUSE_OK) /* no source file used in place was cut while it was read */
        st = rt_check_mapped_sources(run->plan);
    rt_unborrow_sources(run->plan);
    if (st != FUSE_OK)
        return fail_plan(run->ctx, st, run->plan);
    return run_st == FUSE_E_NOT_CONVERGED ? rt_modes_not_converged(run) : FUSE_OK;
}

fuse_status fuse_runner_run_save(fuse_runner *run, const fuse_input *inputs, size_t n_inputs,
                                 const char *path, int compress)
{
    if (!run || !path || (n_inputs && !inputs))
        return fail(run ? run->ctx : NULL, FUSE_E_ARG, "fuse_runner_run_save: NULL argument");
    if (!check_save_path(run, path))
        return FUSE_E_ARG;
    if (!api_runner_enter(run, "fuse_runner_run_save"))
        return FUSE_E_BUSY;
    fuse_status st = runner_run_save(run, inputs, n_inputs, path, compress != 0);
    api_runner_leave(run);
    return st;
}

/* ---- outputs into host memory ---- */

/* The export named name, or -1. */
static int export_named(const IrProgram *p, const char *name)
{
    for (int i = 0; name && i < p->n_exports; i++)
        if (strcmp(p->tensors[p->exports[i]]->name, name) == 0)
            return p->exports[i];
    return -1;
}

/* Checks outputs[i] (an export, float32 of its shape, named once) and returns
 * its tensor, or -1 with the context's error set. */
static int check_output(fuse_runner *run, const fuse_input *outputs, size_t i)
{
    const IrProgram *p = run->plan->ir;
    const fuse_input *o = &outputs[i];
    if (!o->name) {
        fail(run->ctx, FUSE_E_ARG, "fuse_runner_run_into: an output has no name");
        return -1;
    }
    int t = export_named(p, o->name);
    const char *why = t < 0 ? "is not an export of the program"
                      : o->tensor.dtype != rt_tensor_dtype(run->plan, t)
                          ? "must have the runner's dtype (float32, or as its precision says)"
                      : !o->tensor.data ? "has no data"
                      : o->tensor.rank != p->tensors[t]->rank ? "has the wrong rank" : NULL;
    for (int k = 0; !why && k < o->tensor.rank; k++)
        if (o->tensor.shape[k] != p->tensors[t]->shape[k])
            why = "has the wrong shape";
    for (size_t j = 0; !why && j < i; j++)
        if (outputs[j].name && strcmp(outputs[j].name, o->name) == 0)
            why = "is named twice";
    if (!why)
        return t;
    char msg[320];
    snprintf(msg, sizeof msg, "fuse_runner_run_into: output '%.200s' %s", o->name, why);
    fail(run->ctx, FUSE_E_ARG, msg);
    return -1;
}

/* Marks the outputs the kernels may write in place (borrowed, aligned,
 * bindable); false when an output is invalid. */
static bool bind_run_outputs(fuse_runner *run, const fuse_input *outputs, size_t n)
{
    RtPlan *pl = run->plan;
    for (size_t i = 0; i < n; i++) {
        int t = check_output(run, outputs, i);
        if (t < 0)
            return false;
        void *data = outputs[i].tensor.data;
        /* kernels read and write tensors at float alignment: 64 is only faster */
        if (outputs[i].borrow && (uintptr_t)data % rt_tensor_bytes(pl, t) == 0 &&
            rt_output_bindable(pl, t))
            pl->out_bind[t] = data;
    }
    return true;
}

/* fuse_runner_run_into with the runner held. */
static fuse_status runner_run_into(fuse_runner *run, const fuse_input *inputs,
                                   size_t n_inputs, const fuse_input *outputs,
                                   size_t n_outputs)
{
    RtPlan *pl = run->plan;
    if (!pl->out_bind)
        pl->out_bind = calloc((size_t)pl->ir->n_tensors + 1, sizeof *pl->out_bind);
    if (!pl->out_bind)
        return fail(run->ctx, FUSE_E_NOMEM, "out of memory");
    memset(pl->out_bind, 0, (size_t)pl->ir->n_tensors * sizeof *pl->out_bind);
    if (!bind_run_outputs(run, outputs, n_outputs))
        return FUSE_E_ARG;
    fuse_status st = run_plan(run, inputs, n_inputs);
    memset(pl->out_bind, 0, (size_t)pl->ir->n_tensors * sizeof *pl->out_bind);
    if (st != FUSE_OK && st != FUSE_E_NOT_CONVERGED)
        return st;
    /* the outputs not written in place: copied from the tensors' buffers */
    for (size_t i = 0; i < n_outputs; i++) {
        int t = export_named(pl->ir, outputs[i].name);
        if (pl->bufs[t] != outputs[i].tensor.data)
            memcpy(outputs[i].tensor.data, pl->bufs[t],
                   (size_t)pl->count[t] * rt_tensor_bytes(pl, t));
    }
    /* no source file used in place was cut while it was read */
    fuse_status src_st = rt_check_mapped_sources(pl);
    rt_unborrow_sources(pl); /* the host's buffers go back */
    if (src_st != FUSE_OK)
        return fail_plan(run->ctx, src_st, pl);
    return st == FUSE_E_NOT_CONVERGED ? rt_modes_not_converged(run) : FUSE_OK;
}

fuse_status fuse_runner_run_into(fuse_runner *run, const fuse_input *inputs, size_t n_inputs,
                                 const fuse_input *outputs, size_t n_outputs)
{
    if (!run || (n_inputs && !inputs) || (n_outputs && !outputs))
        return fail(run ? run->ctx : NULL, FUSE_E_ARG, "fuse_runner_run_into: NULL argument");
    if (!api_runner_enter(run, "fuse_runner_run_into"))
        return FUSE_E_BUSY;
    fuse_status st = runner_run_into(run, inputs, n_inputs, outputs, n_outputs);
    api_runner_leave(run);
    return st;
}

size_t fuse_outputs_count(const fuse_outputs *out) { return out ? out->n : 0; }

const char *fuse_outputs_name(const fuse_outputs *out, size_t i)
{
    return out && i < out->n ? out->names[i] : NULL;
}

const fuse_tensor *fuse_outputs_tensor(const fuse_outputs *out, size_t i)
{
    return out && i < out->n ? &out->tensors[i] : NULL;
}

const fuse_tensor *fuse_outputs_find(const fuse_outputs *out, const char *name)
{
    for (size_t i = 0; out && name && i < out->n; i++)
        if (strcmp(out->names[i], name) == 0)
            return &out->tensors[i];
    return NULL;
}

void fuse_outputs_free(fuse_outputs *out)
{
    if (!out)
        return;
    for (size_t i = 0; i < out->n; i++) {
        free(out->names[i]);
        free(out->tensors[i].data);
    }
    free(out->names);
    free(out->tensors);
    free(out);
}

/* ---- files ---- */

static fuse_status io_result(fuse_ctx *ctx, fuse_status st, char *err)
{
    if (st != FUSE_OK)
        fail(ctx, st, err ? err : fuse_status_name(st));
    free(err);
    return st;
}

fuse_status fuse_tensor_save(fuse_ctx *ctx, const fuse_tensor *t, const char *path)
{
    if (!t || !path)
        return fail(ctx, FUSE_E_ARG, "fuse_tensor_save: NULL argument");
    const char *dot = strrchr(path, '.');
    char *err = NULL;
    fuse_status st;
    if (dot && strcmp(dot, ".npy") == 0)
        st = io_npy_write(path, t, &err);
    else if (dot && strcmp(dot, ".json") == 0)
        st = io_json_write(path, t, &err);
    else if (dot && strcmp(dot, ".jsonl") == 0)
        st = io_jsonl_write(path, t, &err);
    else
        st = FUSE_E_ARG, err = sup_strprintf("%s: unsupported output format", path);
    return io_result(ctx, st, err);
}

static fuse_status save_npz(fuse_ctx *ctx, const fuse_outputs *out, const char *path,
                            bool deflate, const char *fn)
{
    if (!out || !path) {
        set_error_owned(ctx, sup_strprintf("error: %s: NULL argument", fn));
        return FUSE_E_ARG;
    }
    char *err = NULL;
    fuse_status st = io_npz_write_as(path, (const char *const *)out->names, out->tensors,
                                     (int)out->n, deflate, &err);
    return io_result(ctx, st, err);
}

fuse_status fuse_outputs_save_npz(fuse_ctx *ctx, const fuse_outputs *out, const char *path)
{
    return save_npz(ctx, out, path, false, "fuse_outputs_save_npz");
}

fuse_status fuse_outputs_save_npz_compressed(fuse_ctx *ctx, const fuse_outputs *out,
                                             const char *path)
{
    return save_npz(ctx, out, path, true, "fuse_outputs_save_npz_compressed");
}

fuse_status fuse_tensors_save_npz(fuse_ctx *ctx, const char *const *names,
                                  const fuse_tensor *tensors, size_t n, int compress,
                                  const char *path)
{
    if (!path || (n && (!names || !tensors)) || n > INT32_MAX)
        return fail(ctx, FUSE_E_ARG, "fuse_tensors_save_npz: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!names[i])
            return fail(ctx, FUSE_E_ARG, "fuse_tensors_save_npz: a tensor has no name");
    bool is_oom;
    const char *dup = sup_duplicate_name(names, n, &is_oom);
    if (is_oom)
        return fail(ctx, FUSE_E_NOMEM, "out of memory");
    if (dup) {
        set_error_owned(ctx, sup_strprintf("error: fuse_tensors_save_npz: the name '%s' is "
                                           "given twice", dup));
        return FUSE_E_ARG;
    }
    char *err = NULL;
    fuse_status st = io_npz_write_as(path, names, tensors, (int)n, compress != 0, &err);
    return io_result(ctx, st, err);
}

fuse_status fuse_tensor_load(fuse_ctx *ctx, const char *path, fuse_tensor *out)
{
    if (!path || !out)
        return fail(ctx, FUSE_E_ARG, "fuse_tensor_load: NULL argument");
    char *err = NULL;
    return io_result(ctx, io_npy_read(path, out, &err), err);
}
