/*
 * api_modes.c: the execution-mode side of the public API (include/fusejit.h):
 * applying a configuration's mode, strategy, max_iters, tol and temperature
 * schedules to a runner's plan, the run trace (fuse_runner_trace), demand
 * queries with selectors (fuse_runner_query) and fuse_runner_reset.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jit.h"
#include "modes.h"
#include "stream.h"

/* ---- errors (the context's diagnostic, as api.c keeps it) ---- */

static fuse_status set_error(fuse_ctx *ctx, fuse_status st, char *msg)
{
    rt_ctx_set_error(ctx, msg);
    return st;
}

static fuse_status fail(fuse_ctx *ctx, fuse_status st, const char *msg)
{
    return set_error(ctx, st, sup_strprintf("error: %s", msg));
}

/* ---- configuration ---- */

static fuse_status check_config(const fuse_config *cfg, char **err)
{
    if ((unsigned)cfg->mode >= FUSE_MODE_COUNT)
        return sup_fail(err, FUSE_E_ARG, "invalid mode %d", (int)cfg->mode);
    if ((unsigned)cfg->strategy >= FUSE_STRATEGY_COUNT)
        return sup_fail(err, FUSE_E_ARG, "invalid fixpoint strategy %d", (int)cfg->strategy);
    if (cfg->max_iters < 0)
        return sup_fail(err, FUSE_E_ARG, "max_iters must be >= 0 (0: the default 32), got %d",
                       cfg->max_iters);
    if (!(cfg->tol >= 0.0) || !isfinite(cfg->tol))
        return sup_fail(err, FUSE_E_ARG, "tol must be a finite number >= 0");
    if ((unsigned)cfg->projection >= FUSE_PROJECTION_COUNT)
        return sup_fail(err, FUSE_E_ARG, "invalid projection %d", (int)cfg->projection);
    if (cfg->projection == FUSE_PROJECTION_MONTE_CARLO && cfg->samples <= 0)
        return sup_fail(err, FUSE_E_ARG, "Monte Carlo projection needs samples > 0");
    if (cfg->n_temperatures && !cfg->temperatures)
        return sup_fail(err, FUSE_E_ARG, "n_temperatures is %zu but temperatures is NULL",
                       cfg->n_temperatures);
    return FUSE_OK;
}

static fuse_status copy_schedule(const fuse_temperature *in, RtSchedule *out, char **err)
{
    if (!in->name || !*in->name)
        return sup_fail(err, FUSE_E_ARG, "a temperature schedule needs a tensor name (or \"*\")");
    out->name = strdup(in->name);
    if (!out->name)
        return FUSE_E_NOMEM;
    if (in->spec) {
        fuse_status st = rt_sched_parse(in->spec, out, err);
        if (st == FUSE_E_ARG && err && *err) {
            char *msg = sup_strprintf("temperature %s: %s", in->name, *err);
            if (msg) {
                free(*err);
                *err = msg;
            }
        }
        return st;
    }
    if (!in->fn)
        return sup_fail(err, FUSE_E_ARG, "temperature %s: neither a spec nor a callback",
                       in->name);
    out->kind = RT_SCHED_CALLBACK;
    out->fn = in->fn;
    out->user = in->user;
    return FUSE_OK;
}

/* The tensor holding group g's temperature: "%T.<LHS>" when sig reads one. */
static int temperature_tensor(const IrProgram *p, int g)
{
    char name[256];
    snprintf(name, sizeof name, "%%T.%s", p->tensors[p->groups[g]->tensor]->name);
    const IrTensor *t = ir_tensor_find(p, name);
    return t && t->rank == 0 ? t->id : -1;
}

static fuse_status configure(RtPlan *pl, RtModes *m, const fuse_config *cfg, char **err)
{
    m->mode = cfg->mode;
    m->strategy = cfg->strategy;
    m->max_iters = cfg->max_iters ? cfg->max_iters : 32;
    m->tol = cfg->tol;
    m->projection = cfg->projection;
    m->samples = cfg->samples;
    m->seed = cfg->seed;
    m->n_groups = pl->ir->n_groups;
    m->temp_tensor = calloc((size_t)m->n_groups + 1, sizeof *m->temp_tensor);
    m->snap = calloc((size_t)m->n_groups + 1, sizeof *m->snap);
    m->delta = calloc((size_t)m->n_groups + 1, sizeof *m->delta);
    m->scheds = calloc(cfg->n_temperatures + 1, sizeof *m->scheds);
    if (!m->temp_tensor || !m->snap || !m->delta || !m->scheds)
        return FUSE_E_NOMEM;
    for (int g = 0; g < m->n_groups; g++)
        m->temp_tensor[g] = pl->bufs ? temperature_tensor(pl->ir, g) : -1;
    for (size_t i = 0; i < cfg->n_temperatures; i++) {
        fuse_status st = copy_schedule(&cfg->temperatures[i], &m->scheds[i], err);
        m->n_scheds = (int)i + 1;
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

fuse_status rt_modes_configure(RtPlan *pl, const fuse_config *cfg, char **err)
{
    fuse_config defaults;
    fuse_config_init(&defaults);
    if (!cfg)
        cfg = &defaults;
    fuse_status st = check_config(cfg, err);
    if (st != FUSE_OK)
        return st;
    RtModes *m = calloc(1, sizeof *m);
    if (!m)
        return FUSE_E_NOMEM;
    st = configure(pl, m, cfg, err);
    if (st != FUSE_OK) {
        rt_modes_free(m);
        return st;
    }
    rt_modes_free(pl->modes);
    pl->modes = m;
    return FUSE_OK;
}

fuse_status rt_modes_apply(fuse_runner *run, const fuse_config *cfg)
{
    char *err = NULL;
    fuse_status st = rt_modes_configure(run->plan, cfg, &err);
    if (st != FUSE_OK) {
        fail(run->ctx, st, err ? err : fuse_status_name(st));
        free(err);
    }
    return st;
}

/* The diagnostic of a run that did not converge (outputs are still returned). */
fuse_status rt_modes_not_converged(fuse_runner *run)
{
    const RtTrace *t = run->plan->modes ? &run->plan->modes->trace : NULL;
    const char *name = "?";
    int sweeps = 0;
    bool diverged = false;
    for (int i = 0; t && i < t->n_comps; i++)
        if (t->comps[i].is_iterated && !t->comps[i].is_converged) {
            const IrProgram *p = run->plan->ir;
            name = p->tensors[p->groups[t->comps[i].first_group]->tensor]->name;
            sweeps = t->comps[i].sweeps;
            diverged = t->comps[i].is_diverged;
            break;
        }
    char *msg = diverged
        ? sup_strprintf("error: the fixpoint of %s diverged: values became inf or NaN in "
                        "sweep %d; the outputs hold that sweep", name, sweeps)
        : sup_strprintf("error: the fixpoint of %s did not converge in %d sweeps "
                        "(max_iters); the outputs hold the last sweep", name, sweeps);
    return set_error(run->ctx, FUSE_E_NOT_CONVERGED, msg);
}

/* ---- trace ---- */

fuse_status fuse_runner_trace(fuse_runner *run, int json, char **out)
{
    if (!run || !out)
        return fail(run ? run->ctx : NULL, FUSE_E_ARG, "fuse_runner_trace: NULL argument");
    *out = NULL;
    if (!api_runner_enter(run, "fuse_runner_trace"))
        return FUSE_E_BUSY;
    fuse_status st = run->plan->modes ? FUSE_OK : rt_modes_apply(run, NULL);
    if (st == FUSE_OK) {
        *out = rt_trace_format(run->plan, json != 0);
        st = *out ? FUSE_OK : fail(run->ctx, FUSE_E_NOMEM, "out of memory");
    }
    api_runner_leave(run);
    return st;
}

fuse_status fuse_runner_reset(fuse_runner *run)
{
    if (!run)
        return FUSE_E_ARG;
    if (!api_runner_enter(run, "fuse_runner_reset"))
        return FUSE_E_BUSY;
    rt_stream_reset(run->plan); /* stream; nothing to forget without *t axes */
    api_runner_leave(run);
    return FUSE_OK;
}
