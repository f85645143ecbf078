/*
 * modes.c: the lifetime of a plan's mode state (modes.h): the API layer fills it
 * from a configuration; the plan frees it with itself.
 */
#include <stdlib.h>

#include "jit.h"
#include "modes.h"

void rt_modes_free(RtModes *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_scheds; i++)
        rt_sched_clear(&m->scheds[i]);
    for (int g = 0; g < m->n_groups; g++) {
        io_free_aligned(m->snap ? m->snap[g] : NULL);
        io_free_aligned(m->delta ? m->delta[g] : NULL);
    }
    free(m->delta);
    jit_code_free(m->delta_code);
    jit_code_free(m->mc_code);
    free(m->mc_fn);
    free(m->mc_samples);
    free(m->delta_fn);
    free(m->base_fn);
    free(m->scheds);
    free(m->temp_tensor);
    free(m->snap);
    rt_trace_free(&m->trace);
    free(m);
}
