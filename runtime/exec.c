/*
 * exec.c: runs a compiled plan: zero the computed tensors, load the sources (or
 * host inputs), run the equation groups in order, then the sink groups, writing
 * each sink's file.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static void zero_computed(RtPlan *pl)
{
    IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_tensors; i++) {
        TensorKind k = p->tensors[i]->kind;
        size_t bytes = (size_t)pl->count[i] * sizeof(float);
        if (k == TEN_DEFINED || k == TEN_TEMP)
            memset(pl->bufs[i], 0, bytes);
        if (pl->bufs[p->n_tensors + i])
            memset(pl->bufs[p->n_tensors + i], 0, bytes);
    }
}

void rt_run_group(RtPlan *pl, bool is_sink, int g)
{
    (is_sink ? pl->sink_fn : pl->group_fn)[g](pl->bufs);
}

fuse_status rt_plan_run(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    IrProgram *p = pl->ir;
    zero_computed(pl);
    fuse_status st = rt_load_sources(pl, inputs, n_inputs);
    if (st != FUSE_OK)
        return st;
    for (int g = 0; g < p->n_groups; g++)
        rt_run_group(pl, false, g);
    for (int s = 0; s < p->n_sinks; s++) {
        const Sink *sink = p->sinks[s];
        rt_run_group(pl, true, sink->group);
        if (pl->write_sinks) {
            st = rt_write_sink(pl, sink, p->tensors[p->sink_groups[sink->group]->tensor]);
            if (st != FUSE_OK)
                return st;
        }
    }
    return FUSE_OK;
}
