/*
 * modes.h: execution modes of a plan (SPEC §6.2-6.3): the schedule that runs the
 * equation groups component by component (single sweep, fixpoint, demand
 * closure), the change test, temperature schedules and the per-run trace that
 * fuse_runner_trace formats. Internal to the runtime; the public side is the
 * configuration fields of fuse_config and fuse_runner_trace/query/reset.
 */
#ifndef FUSE_MODES_H
#define FUSE_MODES_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime.h"

/* Status of one group in one sweep. */
typedef enum RtEvalStatus {
    RT_EVAL_EVALUATED, /* ran and its value changed (or single mode) */
    RT_EVAL_UNCHANGED, /* ran and its value did not change */
    RT_EVAL_SKIPPED,   /* outside the demanded closure: never ran */
    RT_EVAL_CACHED,    /* semi-naive: not re-run, nothing new could come */
    RT_EVAL_COUNT
} RtEvalStatus;

/* One trace entry: a group in one sweep. */
typedef struct RtTraceEntry {
    int group;
    int component;
    int sweep;
    RtEvalStatus status;
    double ms;           /* wall time of the kernel */
    double temperature;  /* T used by sig without an explicit T (NAN: none) */
    int64_t changed;     /* cells whose value changed (fixpoint) */
    int64_t samples;     /* Monte Carlo samples per sampled join (0: exact) */
    double max_delta;    /* largest |new - old| (fixpoint) */
    bool is_fused;       /* computed by the kernel of an earlier group (its time there) */
} RtTraceEntry;

/* One component's outcome in a run. */
typedef struct RtTraceComp {
    int component;
    int first_group, n_groups;
    bool is_recursive;
    bool is_iterated;    /* run as a fixpoint (false: one sweep) */
    bool is_skipped;
    bool is_converged;
    bool is_diverged;    /* values went to inf or NaN: not converged */
    bool is_semi_naive;  /* sweeps after the first joined only new facts */
    int sweeps;
} RtTraceComp;

typedef struct RtTrace {
    RtTraceEntry *entries;
    int n_entries, cap_entries;
    RtTraceComp *comps;
    int n_comps, cap_comps;
    const char *mode;     /* "single", "fixpoint", "demand", "query" */
    const char *strategy;
    double total_ms;
    bool is_converged;    /* every iterated component converged */
    bool is_valid;        /* a run happened */
    int64_t step;         /* stream: the time step the run computed (0 first); -1 for a
                             program without *t axes */
} RtTrace;

/* A temperature schedule (copied from fuse_temperature). */
typedef enum RtSchedKind { RT_SCHED_CONST, RT_SCHED_LINEAR, RT_SCHED_PIECEWISE,
                           RT_SCHED_CALLBACK } RtSchedKind;

typedef struct RtSchedule {
    char *name;          /* LHS name or "*" */
    RtSchedKind kind;
    double value;        /* const */
    double start, end;   /* linear */
    int steps;           /* linear */
    int *points_step;    /* piecewise, sorted by step */
    double *points_value;
    int n_points;
    fuse_temperature_fn fn;
    void *user;
} RtSchedule;

/* The mode state of a plan (RtPlan.modes). */
typedef struct RtModes {
    fuse_mode mode;
    fuse_strategy strategy;
    int max_iters;
    double tol;
    RtSchedule *scheds;
    int n_scheds;
    int *temp_tensor;    /* per group: tensor holding its temperature, or -1 */
    float **snap;        /* per group: previous value when there is no prev buffer */
    float **delta;       /* per group: semi-naive new facts of the last sweep */
    struct JitCode *delta_code; /* the delta kernels (seminaive.c), made on first use */
    RtKernel *delta_fn;              /* per group: its delta kernel, or NULL */
    RtKernel *base_fn;               /* per group: its base kernel (first sweep) */
    fuse_projection projection;
    int64_t samples;     /* Monte Carlo samples per equation */
    uint64_t seed;
    struct JitCode *mc_code; /* the Monte Carlo kernels (montecarlo.c), made on first use */
    void (**mc_fn)(float **bufs); /* per group */
    int64_t *mc_samples; /* per group: samples of its sampled joins (0: exact) */
    int n_groups;        /* entries of temp_tensor, snap and delta */
    int64_t n_diverged;  /* cells of the component being iterated that went from a
                            finite value to inf or NaN after its first sweep */
    RtTrace trace;
} RtModes;

/* ---- api_modes.c ---- */

/* Creates pl->modes from a configuration (NULL: defaults). Validates mode,
 * strategy, max_iters, tol and schedules (FUSE_E_ARG with a message in *err). */
fuse_status rt_modes_configure(RtPlan *pl, const fuse_config *cfg, char **err);
void rt_modes_free(RtModes *m);

/* ---- schedule.c ---- */

/* Runs the equation groups of the plan. `want` (per group, may be NULL = all)
 * limits the run to a closure; `force_fixpoint` iterates recursive components
 * whatever the mode. Returns FUSE_E_NOT_CONVERGED when a component hit max_iters
 * (every value is still computed), or an allocation failure. */
fuse_status rt_sched_run(RtPlan *pl, const bool *want, bool force_fixpoint,
                         const char *mode_name);

/* The groups (want[g] = true) needed for tensor t: its group and, transitively,
 * the groups of every tensor their ops read. */
void rt_sched_closure(const RtPlan *pl, int tensor, bool *want);

/* The demanded groups: the closure of tensor `query`, or (query < 0) of every
 * export and every sink's value. calloc'd (free it); NULL on OOM. */
bool *rt_sched_demand_mask(const RtPlan *pl, int query);

/* ---- exec.c ---- */

/* Runs the plan once: sources (or inputs), the equation groups through the
 * schedule, then the sinks. `query` >= 0 runs only that tensor's closure to a
 * fixpoint, without sinks. FUSE_E_NOT_CONVERGED leaves every value computed. */
fuse_status rt_plan_run_query(RtPlan *pl, const fuse_input *inputs, size_t n_inputs,
                              int query);

/* ---- seminaive.c ---- */

/* True when the boolean component [g0, g1) can run semi-naively (see seminaive.c);
 * its first sweep must have run (operand values are checked). */
bool rt_semi_naive_applies(RtPlan *pl, int g0, int g1);
/* Group g's base kernel (the joins without a recursive operand) into its
 * zeroed relation: the first sweep of a semi-naive component. */
void rt_semi_naive_base(RtPlan *pl, int g);
/* Runs delta sweeps from sweep index first_sweep until nothing is new or
 * max_iters; the full relations are in the previous-sweep buffers after the
 * first (synchronous) sweep. Returns the number of sweeps done in total. */
int rt_semi_naive_run(RtPlan *pl, int g0, int g1, int first_sweep, int max_iters,
                      bool *is_converged);
/* The whole semi-naive fixpoint of a row-local component block by block, the
 * base kernels' sweep included (seminaive.c): the sweeps done, or -1 when it
 * cannot run so (nothing done: the caller runs the first sweep and
 * rt_semi_naive_run). */
int rt_semi_naive_blocks(RtPlan *pl, int g0, int g1, int max_iters, bool *is_converged);

/* ---- montecarlo.c ---- */

/* Compiles the Monte Carlo kernels once when the projection is monte_carlo. */
fuse_status rt_mc_prepare(RtPlan *pl, char **err);

/* ---- schedules (temperature.c) ---- */

/* Parses "0.5", "linear:START:END:STEPS" or "piecewise:STEP=VALUE,...". */
fuse_status rt_sched_parse(const char *spec, RtSchedule *out, char **err);
/* The value of a schedule at a sweep. */
double rt_sched_value(const RtSchedule *s, const char *tensor, int iteration);
/* True when the schedule keeps its value at `iteration` for every later sweep
 * (a callback: for the next one). A fixpoint does not stop before. */
bool rt_sched_settled(const RtSchedule *s, const char *tensor, int iteration);
/* The schedule for an LHS name (exact name first, then "*"), or NULL. */
const RtSchedule *rt_sched_find(const RtModes *m, const char *name);
void rt_sched_clear(RtSchedule *s);

/* ---- trace.c ---- */

void rt_trace_reset(RtTrace *t, const char *mode, const char *strategy);
/* false on OOM (the entry is dropped). */
bool rt_trace_add(RtTrace *t, const RtTraceEntry *e);
RtTraceComp *rt_trace_add_comp(RtTrace *t, const RtTraceComp *c);
void rt_trace_free(RtTrace *t);
/* Formats the trace of the last run: text or JSON. malloc'd; NULL on OOM. */
char *rt_trace_format(const RtPlan *pl, bool json);

#endif /* FUSE_MODES_H */
