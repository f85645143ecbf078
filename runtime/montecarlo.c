/*
 * montecarlo.c: Monte Carlo projection (SPEC §6.5). When a runner's projection is
 * monte_carlo, its first run compiles a module of Monte Carlo kernels (one per
 * equation group, lower/emit_mc.c) in which every join with projected axes
 * evaluates only `samples` joint projected cells drawn from (seed, group, op,
 * sample); the schedule then runs those kernels instead of the exact ones. Sinks
 * stay exact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "lower.h"
#include "modes.h"

static void count_samples(const RtPlan *pl, int64_t *per_group)
{
    const IrProgram *p = pl->ir;
    for (int g = 0; g < p->n_groups; g++)
        for (int i = 0; i < p->groups[g]->n_ops; i++) {
            int64_t s = lower_mc_op_samples(p, p->groups[g]->ops[i], pl->modes->samples);
            if (s > per_group[g])
                per_group[g] = s;
        }
}

fuse_status rt_mc_prepare(RtPlan *pl, char **err)
{
    RtModes *m = pl->modes;
    if (m->projection != FUSE_PROJECTION_MONTE_CARLO || m->mc_fn)
        return FUSE_OK;
    if (!pl->js)
        return FUSE_E_UNSUPPORTED;
    const IrProgram *p = pl->ir;
    void (**fns)(float **) = calloc((size_t)p->n_groups + 1, sizeof *fns);
    m->mc_samples = calloc((size_t)p->n_groups + 1, sizeof *m->mc_samples);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "%smc_", pl->prefix);
    LowerOptions opt;
    rt_lower_options(pl, prefix, &opt);
    JitModule *jm = fns && m->mc_samples ? jit_module_new(pl->js, prefix) : NULL;
    fuse_status st = jm ? FUSE_OK : FUSE_E_NOMEM;
    if (st == FUSE_OK)
        st = lower_mc_program(p, jit_module_llvm(jm), &opt, m->samples, m->seed, err);
    if (st == FUSE_OK)
        st = jit_module_optimize(pl->js, jm, err);
    if (st == FUSE_OK)
        st = jit_module_load(pl->js, jm, &m->mc_code, err);
    for (int g = 0; st == FUSE_OK && g < p->n_groups; g++) {
        char name[128];
        void *addr = NULL;
        lower_mc_name(&opt, g, name, sizeof name);
        st = jit_code_lookup(m->mc_code, name, &addr, err);
        memcpy(&fns[g], &addr, sizeof fns[g]);
    }
    jit_module_free(jm);
    if (st != FUSE_OK) {
        free(fns);
        return st;
    }
    count_samples(pl, m->mc_samples);
    m->mc_fn = fns;
    return FUSE_OK;
}
