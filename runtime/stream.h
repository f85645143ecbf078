/*
 * stream.h: streaming `*t` axes at run time (SPEC §6.4; runtime/stream.c). Each
 * run of a plan is one time step. The IR gives every streaming tensor a written
 * slot and, for each earlier offset its equations read, a state slot ("H@t-1",
 * ir.h IrStream); the runtime keeps the values the written slot had in the last
 * runs and, before each run, fills the state slots from them. Internal to the
 * runtime.
 */
#ifndef FUSE_RT_STREAM_H
#define FUSE_RT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

/* The stored steps of a plan (RtPlan.stream). */
typedef struct RtStreamState {
    float ***hist;  /* per IrStream k: offset - lo buffers; hist[k][j] is the value
                       its written slot had j + 1 committed runs ago (zeros before) */
    int n;          /* IrProgram.n_streams */
    int64_t steps;  /* runs committed since the plan was made or reset */
} RtStreamState;

/* True when an input name seeds a step ("H@t-1"): it has an '@'. */
bool rt_stream_is_seed(const char *name);

/* Checks a seed input's name against the program's windows: a streaming tensor,
 * its time axis, an offset before the written one and inside the window. A
 * positioned FUSE_E_ARG diagnostic in pl->dl otherwise. */
fuse_status rt_stream_check_seed(RtPlan *pl, const char *name);

/* The error for an input naming a streaming tensor the program computes: it says
 * which earlier steps can be seeded instead. FUSE_E_ARG. */
fuse_status rt_stream_not_source(RtPlan *pl, const char *name);

/* Before a run (after the sources are loaded): stores the seeds among `inputs`
 * as the steps they name (their shape must be the tensor's), then fills every
 * state slot from the stored steps. Allocates the store on first use. */
fuse_status rt_stream_begin(RtPlan *pl, const fuse_input *inputs, size_t n_inputs);

/* After a complete run: the written slots become the last step (the oldest
 * stored step is dropped) and the step count grows by one. */
void rt_stream_commit(RtPlan *pl);

/* Forgets every stored step (they read as zeros again); the count restarts. */
void rt_stream_reset(RtPlan *pl);

/* Runs committed since the plan was made or reset (0 for a plan that never ran). */
int64_t rt_stream_steps(const RtPlan *pl);

/* Frees the store (accepts NULL; the plan's n_streams is passed as s->n). */
void rt_stream_free(RtStreamState *s);

#endif /* FUSE_RT_STREAM_H */
