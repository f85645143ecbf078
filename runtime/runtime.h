/*
 * runtime.h: the last stage of fuse-jit. The executor: it binds a program's sources
 * and inputs (the formats are in io/), runs the compiled kernels in order, writes
 * sinks and returns exports. The public API (include/fusejit.h) is implemented
 * here (api.c), orchestrating the earlier stages.
 *
 * Errors: functions return fuse_status and set *err to a malloc'd message (caller
 * frees) that names the file involved.
 */
#ifndef FUSE_RUNTIME_H
#define FUSE_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusejit.h"
#include "frontend.h"
#include "ir.h"
#include "support.h"
#include "io.h"

/* The prefix of the plan's kernel names (the code cache names them by content
 * after it): constant, so one object serves every runner (each loads it into a
 * JITDylib of its own). */
#define RT_KERNEL_PREFIX "fuse_"

/* ---- buildid.c ---- */

/* Copies up to cap bytes of the GNU build ID of the module holding fuse-jit's code;
 * returns the number copied (0 when the module has none). */
size_t rt_build_id(unsigned char *out, size_t cap);

/* ---- exec.c: compiling and running a program (the lead's section) ---- */

/* A group kernel (lower.h: kernel ABI): buffers, thread id, team size, barrier,
 * and the flag that stops it early (rt_stop_flag). */
typedef void (*RtKernel)(float **bufs, int64_t tid, int64_t nth, void (*barrier)(void),
                         const atomic_int *stop);

/* The barrier of a kernel run alone (does nothing). */
void rt_no_barrier(void);

/* what a plan tells its host and hears from it, kept in the context
 * (api/): the log callback (fuse_ctx_set_log) and the interrupt flag
 * (fuse_ctx_interrupt). */
typedef struct RtHost {
    fuse_log_fn log;        /* NULL: messages are dropped */
    void *log_user;
    atomic_int interrupt;   /* nonzero: runs stop at their next check (exec.c) */
} RtHost;

/* A program compiled for one configuration and one set of input shapes. Owns its
 * own parse of the source text, so it outlives the fuse_program it came from. */
typedef struct RtPlan {
    Arena arena;            /* AST and IR */
    Source src;
    /* the parser and param values (a `#!fuse` first line overrides the
     * parser); borrowed for rt_plan_new only, then NULL */
    const fuse_program_options *popts;
    Ast ast;
    DiagList dl;
    IrProgram *ir;
    char *base_dir;         /* sources resolve here */
    char *out_dir;          /* sinks are written under here */
    bool write_sinks;
    char prefix[32];        /* kernel name prefix, unique in the context */
    struct JitSession *js;  /* borrowed from the context */
    RtKernel *group_fn;     /* per equation group */
    RtKernel *sink_fn;      /* per sink group */
    float **bufs;           /* 2 * n_tensors: current, then previous-sweep buffers */
    int64_t *count;         /* elements of each tensor */
    bool *is_input;         /* tensor bound to a host input */
    /* per tensor: 1 + the dtype of the data its source holds as probed (a host
     * input, a manifest entry or a file); 0: none or not known (rt_keep_sources) */
    int *src_dtype;
    /* while a run uses a borrowed host buffer as bufs[t], the
     * plan's own buffer waits here (NULL otherwise; sources.c) */
    float **own_bufs;
    /* per tensor: the mapping of the file a source's buffer is this run (a
     * large float32 .npy used in place, sources.c); NULL until one is */
    struct IoMapped *mapped;
    /* mode, strategy, schedules and the last run's trace
     * (runtime/modes.h); NULL until configured (rt_plan_run then uses defaults) */
    struct RtModes *modes;
    /* the context's code cache and this runner's disk cache
     * directory (NULL: no disk cache), both set by rt_plan_new; the phase times of
     * the plan's creation and last run (fuse_runner_timings) */
    struct JitCache *cache;
    char *cache_dir;
    fuse_timings timings;
    /* worker threads (0: all cores; set from fuse_config), the
     * per-thread packing scratch in bytes and how many threads bufs[2 n_tensors]
     * has room for, and which groups run on a thread team (lower_group_is_parallel) */
    int threads;
    size_t scratch_bytes;
    int scratch_threads;
    bool *group_par, *sink_par;
    /* the loaded objects holding the kernels, each in a JITDylib
     * of its own (plan_compile.c) */
    struct JitCode **codes;
    int n_codes;
    /* each kernel's buffer table (n_groups equation groups, then
     * the sink groups); kernels are compiled on their group's tensors alone */
    struct RtGroupBufs *gbufs;
    int n_gbufs;
    /* the stored time steps of streaming tensors (stream.h);
     * NULL until the first run of a program with *t axes */
    struct RtStreamState *stream;
    /* perf (zeroing.c): per tensor, true when a run's kernels write
     * every cell before anything reads it, so the run need not zero it first
     * (exec.c); made by the first run, in the plan's arena (NULL until then) */
    bool *is_written_whole;
    /* every buffer of a computed tensor still holds the zeros it was
     * allocated with (no run yet): the first run need not zero them, which
     * would also make every page of them resident */
    bool is_zero_yet;
    /* fusion across equations (plan_compile.c): absorbs[g] > 0 when
     * equation group g's kernel also computes the next absorbs[g] groups (their
     * elementwise ops run in g's pass over memory); those groups' kernel is the
     * same one; while a run is inside such a span, (fused_from, fused_until] are
     * the groups its last kernel computed, so the schedule does not run them
     * again (-1: none) */
    int *absorbs;
    int *span_head;   /* the group whose kernel computes group g (g itself if none) */
    int fused_from, fused_until;
    /* output binding (fuse_runner_run_into): while a run delivers an
     * export into host memory that its kernels may write directly, out_bind[t]
     * is that memory (NULL otherwise; exec.c binds it after the sources) */
    float **out_bind;
    /* the context's RtHost (borrowed; NULL: none), and the sources'
     * sizes as probed, in the arena (facts[t] of a source file not readable yet
     * is not is_known; NULL when the probe did not run) */
    RtHost *host;
    ShapeFact *facts;
    /* the memory cap in bytes (resolved: FUSE_MEMORY_UNLIMITED for
     * none) and the bytes of the buffers the plan holds (footprint.c) */
    uint64_t max_memory;
    uint64_t planned_bytes;
    /* lifetimes (footprint.c): per tensor, the last equation group whose
     * kernel touches it when its pages may be given back once that group's
     * component is done (-1: kept for the whole run), in the arena; and the
     * planned peak of a run's buffers (set after compiling; 0 until then) */
    int *last_use;
    uint64_t peak_bytes;
    /* buffer reuse (footprint.c): reuse_of[y] = x when tensor y may be
     * written over x's buffer in a plain run (x dead once y's group has read it,
     * cell by cell), reused_by[x] = y; -1 otherwise; in the arena */
    int *reuse_of, *reused_by;
    /* the weights manifest of fuse_program_options.weights (weights.c;
     * NULL: none): its tensors, float32 when the plan compiles */
    struct RtWeights *weights;
    /* the element type of every buffer (elem.c); set before compiling */
    fuse_precision precision;
    /* contractions share rows among a team (LowerOptions.split_rows): set for
     * a distributed runner, whose split outputs then stay row blocks */
    bool split_rows;
    /* a distributed run's state (dist_exec.c; NULL: one process) */
    struct RtDist *dist;
} RtPlan;

/* the buffers of one kernel, numbered as its group's view numbers
 * them: tab[k] = plan bufs[map[k]] (n entries: tensors, previous-sweep buffers,
 * the scratch slot). */
typedef struct RtGroupBufs {
    int n;
    int *map;
    float **tab;
} RtGroupBufs;

/* perf (parallel.c): runs kernel k on a team of nth OpenMP threads (each
 * with its tid; `stop` as rt_stop_flag); returns the team size used. */
int rt_parallel_run(RtKernel k, float **bufs, int nth, const atomic_int *stop);
/* The team size for `threads` (0: all cores, as OpenMP sees them). */
int rt_parallel_threads(int threads);

/* Frees a plan's mode state (accepts NULL). */
void rt_modes_free(struct RtModes *m);

/* Parses, builds, checks shapes (reading source headers) and, when js is not NULL,
 * compiles: through `cache` (borrowed; NULL: none) and the disk directory
 * `cache_dir` (copied; NULL: no disk cache). Diagnostics go to plan->dl, log
 * messages to `host` (borrowed; NULL: none); on failure the plan must still be
 * freed with rt_plan_free. `inputs` fix the shapes of the tensors they name.
 * `popts` (borrowed; NULL: legacy) selects the parser (a `#!fuse` first line
 * overrides it) and the param values. `max_memory`
 * caps the bytes of the buffers the plan allocates, as fuse_config.max_memory (0:
 * the machine's memory; checked before any is allocated: footprint.c).
 * `precision` is the buffers' element type; `split_rows` compiles contractions
 * to share rows among a team (a distributed runner: dist.h). */
fuse_status rt_plan_new(RtPlan **out, const char *text, const char *name,
                        const char *base_dir, const char *out_dir, bool write_sinks,
                        const fuse_input *inputs, size_t n_inputs,
                        struct JitSession *js, const char *prefix,
                        struct JitCache *cache, const char *cache_dir, RtHost *host,
                        const fuse_program_options *popts, uint64_t max_memory,
                        fuse_precision precision, bool split_rows);
void rt_plan_free(RtPlan *plan);

/* sends a message of `level` (FUSE_LEVEL_*) to the host's log callback;
 * nothing without one. */
void rt_log(const RtPlan *plan, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* whether the host interrupted the run (fuse_ctx_interrupt). Runs check
 * it between groups (rt_run_group) and sweeps; a relaxed load, cheap enough to
 * call per group. */
static inline bool rt_interrupted(const RtPlan *plan)
{
    return plan->host && atomic_load_explicit(&plan->host->interrupt, memory_order_relaxed);
}

/* Whether the schedule stops here, now, at an interrupt: in one process when
 * the host interrupted the run; never on its own in a distributed plan, whose
 * ranks must call the same collectives: an interrupted rank's kernels stop
 * early (the stop flag) and it goes on through the schedule, and the ranks
 * stop together where they agree (rt_dist_stop_agreed: each fixpoint sweep,
 * the end of the run). */
static inline bool rt_stop_now(const RtPlan *plan)
{
    return !plan->dist && rt_interrupted(plan);
}

/* The flag a plan's kernels watch while they run (lower.h: kernel ABI): the
 * host's interrupt flag, or one that is never set when the plan has no host.
 * Within a kernel the flag is checked once per block of work, so an interrupt
 * stops even one long kernel within a few milliseconds. */
const atomic_int *rt_stop_flag(const RtPlan *plan);

/* incr (plan_compile.c): compiles the shaped plan's kernels through the
 * code cache group by group (only groups not cached are compiled), loads them and
 * fills group_fn/sink_fn/group_par/sink_par. Called by rt_plan_new after the
 * buffers are allocated. */
fuse_status rt_plan_compile(RtPlan *plan);

struct JitModule;
struct JitKey;

/* The cache key of code the plan makes later, beside its kernels (the
 * semi-naive delta kernels): the program's canonical IR, then `tag`, with the
 * option bytes of every kernel key. */
fuse_status rt_plan_extra_key(const RtPlan *plan, const char *tag, struct JitKey *key);

/* The module rt_plan_compile's kernels come from, for `emit`: every group lowered on
 * the same view (fusion across equations included), kernels named PREFIXgN /
 * PREFIXsN instead of by key. *out is freed with jit_module_free. */
fuse_status rt_plan_emit_module(RtPlan *plan, struct JitModule **out, char **err);
/* The buffer table to call kernel g (sink group g when is_sink) with, refreshed
 * from plan->bufs (call after any change of bufs, e.g. right before the call). */
float **rt_group_bufs(RtPlan *plan, bool is_sink, int g);
/* Frees the tables (rt_plan_free). */
void rt_group_bufs_free(RtPlan *plan);

/* Runs the plan once: sources (or inputs), kernels, sinks. Errors in plan->dl. */
fuse_status rt_plan_run(RtPlan *plan, const fuse_input *inputs, size_t n_inputs);

/* perf (zeroing.c): the plan's is_written_whole flags (the rule is
 * at the top of zeroing.c), allocated in plan->arena; NULL when the plan is not
 * shaped or memory runs out (then a run zeroes everything). */
bool *rt_zeroing_flags(RtPlan *plan);

/* Emits the plan's code again as text: "llvm", "llvm-raw" or "asm". */
fuse_status rt_plan_emit(RtPlan *plan, const char *what, char **out, char **err);

/* Runs equation group g (is_sink false) or sink group g on the plan's buffers;
 * once the run is interrupted (rt_interrupted), does nothing, so the rest of a
 * schedule only compares unchanged values and ends. */
void rt_run_group(RtPlan *plan, bool is_sink, int g);

/* ---- sources.c: sources and sinks of a plan ---- */

/* Checks host inputs name source tensors and have a valid rank and dtype. */
fuse_status rt_check_inputs(RtPlan *plan, const fuse_input *inputs, size_t n_inputs);
/* Fills facts[t] for every source (host input shapes, else file headers). When
 * plan->js is NULL (checking only), an unreadable source sets *is_skipped. */
fuse_status rt_probe_sources(RtPlan *plan, const fuse_input *inputs, size_t n_inputs,
                             ShapeFact *facts, bool *is_skipped);
/* ir_infer_shapes over the probed facts, and when it fails on sizes, why: a
 * runner's input whose shape the program cannot take is named with both shapes;
 * when only checking, a source file whose sizes conflict (it may be a stale file
 * beside a source the host binds) is left to the runner (*is_deferred set, an
 * info message), as an unreadable one is. */
fuse_status rt_infer_source_shapes(RtPlan *plan, ShapeFact *facts, bool *is_deferred);
/* Reads every source (or its host input) into its buffer. A borrowed input
 * (fuse_input.borrow) that is float32, 64-byte aligned and of the compiled shape
 * is used in place: bufs[t] points at the host's data until rt_unborrow_sources. */
fuse_status rt_load_sources(RtPlan *plan, const fuse_input *inputs, size_t n_inputs);
/* Gives every borrowed buffer back: bufs[t] is the plan's own buffer again (a
 * mapped source's file is unmapped). Call when a run's results have been
 * collected (and before freeing the plan). */
void rt_unborrow_sources(RtPlan *plan);
/* When source t is used in place (its buffer is the file's read-only
 * mapping), copies it into the plan's own buffer, which becomes t's for the
 * rest of the run: before something writes into it (MPI: a source some other
 * rank read in row blocks is gathered). Otherwise nothing. */
void rt_source_own_buffer(RtPlan *plan, int t);
/* The same for a boolean source, thresholded on the way (its mapping held
 * values other than 0 and 1 where this rank did not check). */
void rt_source_settle_bool(RtPlan *plan, int t);
/* FUSE_E_IO naming the source when the file of a source used in place was
 * truncated since it was mapped (pages of it then read as zeros). */
fuse_status rt_check_mapped_sources(RtPlan *plan);

/* whether export t can be written in place in host memory by a run's
 * kernels (a computed tensor outside any stream window and not read as a
 * previous sweep); others are copied out after the run. */
bool rt_output_bindable(const RtPlan *plan, int t);
/* Checks the sinks before anything runs, so `check` rejects what `run` would:
 * each path stays inside the output root and has a format a sink can write, and
 * no two sinks write one path (the last would silently win). FUSE_E_SHAPE with a
 * positioned diagnostic otherwise. */
fuse_status rt_check_sinks(RtPlan *plan);
/* Writes one sink's value t to its file under the output root. */
fuse_status rt_write_sink(RtPlan *plan, const Sink *s, const IrTensor *t);

/* ---- elem.c: the element type of a plan's buffers (precision) ---- */

struct LowerOptions;
/* "fp32", "fp64", "bf16", "fp16" */
const char *rt_precision_name(fuse_precision p);
/* bytes of one buffer element, and its dtype (FUSE_F32, F64, BF16 or F16) */
size_t rt_elem_bytes(const RtPlan *pl);
fuse_dtype rt_elem_dtype(const RtPlan *pl);
/* The options every kernel of the plan is lowered with: kernel names after
 * `prefix` (RT_KERNEL_PREFIX for the plan's groups), the session's vector
 * width, the precision and the half conversions of its CPU. */
void rt_lower_options(const RtPlan *pl, const char *prefix, struct LowerOptions *opt);
/* element i of a buffer of the plan, as double; and set to v (rounded to
 * nearest even into 16-bit storage). Inline: fixpoint change tests and
 * semi-naive merges call them per element, and fp32 must stay as fast. */
static inline double rt_elem_get(const RtPlan *pl, const void *buf, int64_t i)
{
    switch (pl->precision) {
    case FUSE_PRECISION_FP64: return ((const double *)buf)[i];
    case FUSE_PRECISION_BF16: return io_bf16_to_float(((const uint16_t *)buf)[i]);
    case FUSE_PRECISION_FP16: return io_half_to_float(((const uint16_t *)buf)[i]);
    default: return ((const float *)buf)[i];
    }
}

static inline void rt_elem_set(const RtPlan *pl, void *buf, int64_t i, double v)
{
    switch (pl->precision) {
    case FUSE_PRECISION_FP64: ((double *)buf)[i] = v; break;
    case FUSE_PRECISION_BF16: ((uint16_t *)buf)[i] = io_float_to_bf16((float)v); break;
    case FUSE_PRECISION_FP16: ((uint16_t *)buf)[i] = io_float_to_half((float)v); break;
    default: ((float *)buf)[i] = (float)v; break;
    }
}
/* n source elements of dtype dt into a buffer of the plan (io_convert_source's
 * rules: booleans thresholded) */
void rt_elem_from_source(const RtPlan *pl, fuse_dtype dt, const void *src, void *dst, int64_t n,
                         bool is_bool);
/* Per tensor: a 16-bit source (bfloat16 or float16) whose data has that dtype
 * when the runner is made (a host input, a manifest entry or a file:
 * RtPlan.src_dtype) keeps it when the runner's precision stores another type:
 * its buffer holds the data as given (half the bytes of float32, exact),
 * kernels widen it on every load, and later runs must bind or read it in the
 * same dtype. Not for booleans, streaming tensors, tensors read as their
 * previous sweep or read by a host op. IrTensor.elem records it.
 * Likewise a quantised manifest entry stays int8/uint8 (IrTensor.quant) when
 * only kernels read it: not exported, not read by a recursive rule, a host op
 * or a sink, not streaming, and FUSE_JIT_DEQUANTISE unset; otherwise it is
 * dequantised to float32 here. */
fuse_status rt_keep_sources(RtPlan *pl);
/* bytes of tensor t's buffer: count x rt_tensor_bytes, plus a quantised
 * weight's scales and zero points (lower_quant_bytes) */
uint64_t rt_tensor_alloc_bytes(const RtPlan *pl, int t);
/* FUSE_E_ARG with a diagnostic when input `in` of kept source t has another dtype */
fuse_status rt_check_kept_source(RtPlan *pl, const IrTensor *t, const fuse_input *in);
/* bytes of one element of tensor t's buffer, and its dtype */
size_t rt_tensor_bytes(const RtPlan *pl, int t);
fuse_dtype rt_tensor_dtype(const RtPlan *pl, int t);
/* n elements of dtype dt into t's buffer dst (rt_elem_from_source, or a copy for
 * a kept source; a quantised weight's with its tables) */
void rt_tensor_from_source(const RtPlan *pl, const IrTensor *t, fuse_dtype dt, const void *src,
                           void *dst, int64_t n);
/* a tensor viewing buffer buf of t (t's dtype and shape; not owned) */
fuse_tensor rt_elem_view(const RtPlan *pl, const IrTensor *t, const void *buf);
/* a copy of t's buffer as a tensor of t's dtype (data from
 * io_alloc_aligned); FUSE_E_NOMEM */
fuse_status rt_elem_copy(const RtPlan *pl, const IrTensor *t, fuse_tensor *out);
/* FUSE_OK under fp32; otherwise FUSE_E_UNSUPPORTED with a diagnostic naming the
 * precision and `feature` (what only fp32 supports yet) */
fuse_status rt_elem_refuse(RtPlan *pl, const char *feature);

/* ---- weights.c: weight manifests (SPEC §8) ---- */

typedef struct RtWeights RtWeights;

/* Reads the manifest at path and every tensor it names, as float32 when `load`
 * (else only their shapes, from .npy headers where it can). FUSE_E_IO with *err
 * naming the manifest, the entry and the key for anything malformed. */
fuse_status rt_weights_load(const char *path, bool load, RtWeights **out, char **err);
void rt_weights_free(RtWeights *w);
/* After parsing: loads plan->popts->weights (nothing without one) into
 * plan->weights, data only when the plan compiles; a tensor the program reads
 * but never defines becomes a source statement the manifest fills, and one
 * whose LoRA pair is kept apart an equation joining base, up and down. */
fuse_status rt_weights_open(RtPlan *plan);
/* The probe of source t: when the manifest supplies it, fills *f, sets *dtype to
 * 1 + the dtype it is bound in and marks the entry used (true); false otherwise. */
bool rt_weights_probe(RtPlan *plan, const IrTensor *t, ShapeFact *f, int *dtype);
/* Source t, when a quantised manifest entry supplies it: keep (the kernels
 * dequantise its int8/uint8 data on load; sets t->quant and t->quant_axis) or
 * dequantise it to float32 now, as bound at every run. */
fuse_status rt_weights_keep_quantised(RtPlan *plan, IrTensor *t, bool keep);
/* Warns (the host's log) about every entry that supplies no source. */
void rt_weights_warn_unused(const RtPlan *plan);
/* inputs plus the manifest's tensors the plan takes from it (borrowed float32,
 * 16-bit or quantised, used in place), except those the host gives itself: *merged is inputs when
 * there are none (else malloc'd: free it when it is not inputs). */
fuse_status rt_weights_bind(const RtPlan *plan, const fuse_input *inputs, size_t n_inputs,
                            fuse_input **merged, size_t *n_merged);

/* ---- footprint.c: the memory a plan holds ---- */

/* bytes as text: "512 bytes", "64 MiB", "1.5 GiB". */
void rt_format_bytes(uint64_t bytes, char *buf, size_t cap);
/* tensor t of plan pl taking `bytes` as text: "C: 64 MiB [4096, 4096] float32"
 * (the plan's element type). */
void rt_describe_tensor(const RtPlan *pl, const IrTensor *t, uint64_t bytes, char *buf,
                        size_t cap);
/* the diagnostic of an allocation of `bytes` that failed, for `what` ("tensor",
 * "the stored steps of", ...) of tensor t (NULL: not a tensor's, e.g. the
 * packing scratch); returns FUSE_E_NOMEM. */
fuse_status rt_alloc_failed(RtPlan *plan, const IrTensor *t, const char *what, uint64_t bytes);
/* the same as a warning to the host's log, for a buffer whose failure a run
 * survives (a fixpoint's snapshot or delta: the fixpoint then does not converge). */
void rt_log_nomem(const RtPlan *plan, const IrTensor *t, const char *what, uint64_t bytes);
/* the default cap: physical memory, or the process's cgroup limit when lower
 * (FUSE_MEMORY_UNLIMITED when neither can be read). */
uint64_t rt_machine_memory(void);
/* the bytes of every buffer the shaped plan will hold (count[] and
 * scratch_bytes set); a plain run's peak is lower (rt_plan_lifetimes). */
uint64_t rt_plan_footprint(const RtPlan *plan);
/* Sets plan->max_memory (max_memory as fuse_config's) and planned_bytes, and
 * refuses a plan above the cap: FUSE_E_NOMEM naming the bytes, the cap and the
 * largest tensors. Call before allocating any buffer. */
fuse_status rt_plan_check_memory(RtPlan *plan, uint64_t max_memory);
/* Sets plan->last_use, reuse_of, reused_by and peak_bytes for the compiled plan
 * (spans known). Out of memory, it leaves them NULL: runs then keep every
 * buffer, and the peak is planned_bytes. */
void rt_plan_lifetimes(RtPlan *plan);
/* Gives back the pages of every tensor whose last use is in the equation groups
 * [g0, g1) (a component just done; a schedule calls it, never in a query): they
 * read as 0 afterwards, and the next run fills them again. */
void rt_release_dead(RtPlan *plan, int g0, int g1);
/* At the start of a run's schedule: in a plain run (single mode, exact, not a
 * query) every tensor y with reuse_of[y] >= 0 takes x's buffer until
 * rt_unborrow_sources (as a borrowed buffer does, through own_bufs). */
void rt_reuse_begin(RtPlan *plan, bool is_query);

/* ---- dist_exec.c: a plan run across MPI ranks (dist/dist.h) ---- */

typedef struct RtDist RtDist;

/* Makes plan a distributed one after rt_plan_new returned `st` (on every rank:
 * the ranks agree first that every one compiled it): MPI initialised when the
 * host has not, each equation group placed (dist_plan_group), sinks written by
 * rank 0 only; with is_root_results (FUSE_DISTRIBUTED_RANK0) a plain run's
 * results end on rank 0 alone (rt_dist_finish). FUSE_E_UNSUPPORTED with *err (malloc'd) in a build without MPI;
 * `st` where it failed; FUSE_E_RUNTIME with plan->dl set where another rank
 * failed. */
fuse_status rt_dist_attach(RtPlan *plan, fuse_status st, bool is_root_results, char **err);
void rt_dist_free(RtDist *d);
/* In a distributed plan, agrees on `st` (the step `when` names, for the message
 * of a rank whose peer failed); otherwise returns st. */
fuse_status rt_dist_agree(RtPlan *plan, fuse_status st, const char *when);
/* flag or-ed, and v maximised, over the ranks of a distributed plan (flag and v
 * as they are otherwise): fixpoints stop on the ranks' common verdict. */
bool rt_dist_any(const RtPlan *plan, bool flag);
/* rt_interrupted on some rank (one collective in a distributed plan; otherwise
 * rt_interrupted): where all ranks stop together. */
bool rt_dist_stop_agreed(const RtPlan *plan);
int64_t rt_dist_max(const RtPlan *plan, int64_t v);
/* Runs equation group g as this rank's share when the plan splits it (true),
 * merging its output (DIST_SPLIT) or keeping this rank's rows (DIST_ROWS);
 * false (nothing done) when g runs on every rank alike. */
bool rt_dist_run_group(RtPlan *plan, int g);
/* The same for group g's semi-naive delta kernel (seminaive.c). */
bool rt_dist_run_delta(RtPlan *plan, int g, RtKernel delta);
/* When group g's semi-naive sweeps stay in MPI row blocks: share i = 0, 1, ...
 * of this rank's shares of its kernels (*share of *nth; false past the last),
 * the blocks rt_dist_delta_span covers. False without such blocks. */
bool rt_dist_delta_share(const RtPlan *plan, int g, int i, int64_t *share, int64_t *nth);
/* A .npy source every reader of which reads it row for row in the same blocks:
 * true, with this rank's rows [*lo, *hi), when the plan has one rank read just
 * them (sources.c); rt_dist_source_read records that it did. */
bool rt_dist_source_rows(const RtPlan *plan, int t, int64_t *lo, int64_t *hi);
void rt_dist_source_read(RtPlan *plan, int t);
/* rt_dist_agree for the loading of sources ("to load its sources"), and the
 * ranks' agreement on the sources read in blocks (a source some rank read
 * whole is gathered by all). */
fuse_status rt_dist_agree_sources(RtPlan *plan, fuse_status st);
/* Row blocks (DIST_ROWS, dist.h): before group g (or sink group g) runs, its
 * operands held in row blocks are gathered unless it reads them row for row on
 * the same blocks; afterwards its output's blocks are recorded. */
void rt_dist_before_group(RtPlan *plan, bool is_sink, int g);
void rt_dist_after_group(RtPlan *plan, bool is_sink, int g);
/* Gathers every tensor held in row blocks (before code that reads anything). */
void rt_dist_gather_all(RtPlan *plan);
/* After the groups of a run: every row-block tensor still live (all of them
 * with keep_all, a query's run) is gathered, so a run ends with every tensor
 * whole on every rank; with results on rank 0 only (a plain run), whole on
 * rank 0 (a step of a stream still on every rank). */
void rt_dist_finish(RtPlan *plan, bool keep_all);
/* Whether this rank ends a plain run with its results: the exports whole, the
 * sinks computed (rank 0 writes them). Not the other ranks when the results are
 * on rank 0 only. */
bool rt_dist_has_results(const RtPlan *plan);
/* Exports to a file (save.c): with keep set before a run, its exports stay
 * where the ranks computed them at its end (no gather). Then, for each run of
 * rows [row, *end) of tensor t that one rank holds (rt_dist_rows_holder: that
 * rank; rank 0 for a tensor whole there, or any plan without ranks), every
 * rank calls rt_dist_rows_to_root: rank 0 passes the bytes to put, its own
 * or received from the holder piece by piece into scratch (1 MiB), which the
 * holder sends (scratch: only rank 0's is used). False on rank 0 when put
 * failed (every piece is still taken). rt_dist_is_root: rank 0, or no ranks. */
void rt_dist_keep_exports(RtPlan *plan, bool keep);
/* A boolean source used in place (sources.c) is checked for 0s and 1s by
 * shares on MPI ranks: rt_dist_check_share gives this rank's cells [lo, hi)
 * (false without ranks: check them all), rt_dist_share_checked records that
 * this rank used it in place on that check. At the agreement after loading,
 * unless every rank did, the ones that did threshold it into their own buffer
 * (rt_source_settle_bool): a share no rank checked may hold other values. */
bool rt_dist_check_share(const RtPlan *plan, int t, int64_t *lo, int64_t *hi);
void rt_dist_share_checked(RtPlan *plan, int t);
/* A list of cells of a tensor of `count` cells made by shares across the
 * ranks (seminaive.c: the non-zeros of a sparse operand): each rank takes
 * cells [lo, hi) (rt_dist_cell_share: all of them without ranks; shares
 * start at multiples of align), finds its own (mine, n of them: a malloc'd
 * list, or NULL when it could not or found more than limit), and every rank
 * calls rt_dist_join_cells, which gives on every rank the whole list in
 * memory order (*n_all values: mine itself without ranks), or NULL on every
 * rank when some rank's part is NULL or the whole is over limit; mine is
 * taken either way. */
void rt_dist_cell_share(const RtPlan *plan, int64_t count, int64_t align, int64_t *lo,
                        int64_t *hi);
int64_t *rt_dist_join_cells(const RtPlan *plan, int64_t *mine, int64_t n, int64_t limit,
                            int64_t *n_all);
/* save.c: writes the exports of the run just made to path (.npy: the only
 * export; .npz: a member per export, deflated with deflate) from the plan's
 * buffers, or across MPI ranks from where the ranks hold them (a run made
 * with rt_dist_keep_exports; every rank calls it). Errors are the plan's
 * diagnostics; the file is written whole or not at all. */
fuse_status rt_save_exports(RtPlan *plan, const char *path, bool deflate);
bool rt_dist_is_root(const RtPlan *plan);
int rt_dist_rows_holder(const RtPlan *plan, int t, int64_t row, int64_t *end);
#define RT_ROWS_SCRATCH ((size_t)1 << 20)
bool rt_dist_rows_to_root(RtPlan *plan, int holder, const void *rows, size_t bytes,
                          void *scratch, bool (*put)(void *ctx, const void *p, size_t n),
                          void *ctx);
/* The cells [*lo, *hi) of span i = 0, 1, ... of group g's relation that this
 * rank's semi-naive sweeps touch (false past the last): its blocks of rows when
 * the component's deltas stay in blocks (the other rows are never read), else
 * one span of all of them. */
bool rt_dist_delta_span(const RtPlan *plan, int g, int i, int64_t *lo, int64_t *hi);
/* Group g's semi-naive base kernel on this rank's blocks of rows, each zeroed
 * first, when its component's sweeps stay in row blocks (true; the other rows
 * are never read), else false (nothing done). */
bool rt_dist_run_base(RtPlan *plan, int g, RtKernel base);
/* After a semi-naive base sweep: group g's relation is in those blocks from
 * now on (its sweeps keep them; a reader that needs it whole gathers it). */
void rt_dist_base_done(RtPlan *plan, int g);
/* Whether the blocks of group g's component, run block by block from the base
 * sweep on (seminaive.c) on `team` threads a rank, are claimed by the ranks
 * as they go: the component's sweeps stay in row blocks, and the team's
 * threads may take turns calling MPI (or there is one). Then, on every rank:
 * rt_dist_claims_begin (collective), rt_dist_claim for each block a thread
 * takes (serialised by the caller: 0, 1, ... in the order the draws arrive on
 * any rank; past the last, none left), and rt_dist_claims_end (collective)
 * with `mine`, the n blocks this rank ran: the component's relations are in
 * those blocks (of block_rows rows) from then on. */
bool rt_dist_claims(const RtPlan *plan, int g, int team);
void rt_dist_claims_begin(RtPlan *plan);
int64_t rt_dist_claim(RtPlan *plan);
void rt_dist_claims_end(RtPlan *plan, int g0, int g1, int64_t block_rows, int64_t n,
                        const uint8_t *mine);
/* Whether this rank ends the run with group g's relation whole while the
 * other ranks compute most of it: rank 0 of several, which gathers the
 * exports to itself (results on rank 0). Its pages are better faulted in while
 * the ranks still share out blocks than during the gather, when the others
 * only wait. */
bool rt_dist_fills_root(const RtPlan *plan, int g);
/* Each equation's placement and bytes moved, as text (malloc'd). */
fuse_status rt_dist_explain(const RtPlan *plan, char **out);

/* ---- tucker.c: runtime functions generated code calls (tucker) ---- */

/* Defines every host function (lower/lower.h) in js (jit_define_symbol); call it
 * right after jit_session_new. */
fuse_status rt_host_symbols_define(struct JitSession *js, char **err);

#endif /* FUSE_RUNTIME_H */
