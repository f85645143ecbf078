/*
 * fusejit.h: the embedding API of fuse-jit, a just-in-time compiler for Fuse tensor
 * equation programs. This is the only public header; whatever it does not declare
 * is not API.
 *
 * A context (fuse_ctx) owns the LLVM JIT session and collects diagnostics. A program
 * (fuse_program) is parsed and checked source text. A runner (fuse_runner) is a
 * program compiled to native code for one configuration and one set of input
 * shapes. Running a runner returns the program's exports as an output map that the
 * caller frees with one call. Every function that can fail returns a fuse_status;
 * the context then holds a diagnostic (fuse_ctx_error) with the file, line and
 * column where the problem is.
 *
 *     fuse_ctx *ctx;
 *     fuse_program *prog;
 *     fuse_runner *run;
 *     fuse_outputs *out;
 *     if (fuse_ctx_new(&ctx) != FUSE_OK) return 1;
 *     if (fuse_program_from_text(ctx, "A[i,j] = \"a.npy\"\n"
 *                                     "S[i] = A[i,j]\nexport S\n", "demo.fuse", &prog)
 *         || fuse_runner_new(prog, NULL, NULL, 0, &run)
 *         || fuse_runner_run(run, NULL, 0, &out)) {
 *         fprintf(stderr, "%s\n", fuse_ctx_error(ctx));
 *         return 1;
 *     }
 *     const fuse_tensor *s = fuse_outputs_find(out, "S");
 *     printf("S[0] = %g\n", ((float *)s->data)[0]);
 *     fuse_outputs_free(out);
 *     fuse_runner_free(run);
 *     fuse_program_free(prog);
 *     fuse_ctx_free(ctx);
 *
 * Threads: a context may be shared by several threads; each program and runner must
 * be used by one thread at a time. fuse_ctx_error reports the last error of the
 * calling thread. A runner detects a second call made while one is in progress
 * (fuse_runner_run, _run_into, _query, _trace, _reset, _emit, _timings): that call
 * returns FUSE_E_BUSY at once with the calling thread's diagnostic set, leaving the
 * runner and the call in progress untouched; the runner works again when the
 * other call has returned. Nothing detects fuse_runner_free racing a call.
 *
 * Versioned structs: fuse_config, fuse_program_options, fuse_stats, fuse_timings
 * and fuse_tensor_info open with `size_t size`, the sizeof the host was compiled
 * with (fuse_config_init and fuse_program_options_init set it; set it yourself for the others: `fuse_stats s = {.size = sizeof s};`).
 * Fields are only ever appended, so a library newer than the host reads and writes
 * only the fields within the host's `size` (the others keep their defaults). A
 * library older than the host takes a larger fuse_config only when every byte
 * past its own fields is 0 (the newer fields' defaults), and leaves the fields of
 * an output struct it does not know as the host set them. A size of 0, below the
 * struct's first layout, not a multiple of its alignment or above 4096 is
 * FUSE_E_ARG.
 */
#ifndef FUSEJIT_H
#define FUSEJIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FUSE_BUILDING_LIBRARY)
#define FUSE_API __attribute__((visibility("default")))
#else
#define FUSE_API
#endif

#define FUSE_VERSION_MAJOR 0
#define FUSE_VERSION_MINOR 2
#define FUSE_VERSION_PATCH 0
/* The one place the version is written: CMake reads the three numbers above. */
#define FUSE_VERSION_STR_(x) #x
#define FUSE_VERSION_STR(x) FUSE_VERSION_STR_(x)
#define FUSE_VERSION_STRING                                                            \
    FUSE_VERSION_STR(FUSE_VERSION_MAJOR) "." FUSE_VERSION_STR(FUSE_VERSION_MINOR) "."  \
    FUSE_VERSION_STR(FUSE_VERSION_PATCH)
#define FUSE_VERSION_NUMBER \
    (FUSE_VERSION_MAJOR * 10000 + FUSE_VERSION_MINOR * 100 + FUSE_VERSION_PATCH)

/* The largest tensor rank the runtime handles. */
#define FUSE_MAX_RANK 8

/* Status codes. Values are explicit and append-only. */
typedef enum fusejit_status {
    FUSE_OK = 0,
    FUSE_E_SYNTAX = 1,      /* the program text does not parse */
    FUSE_E_SHAPE = 2,       /* names, sizes or semantics do not check */
    FUSE_E_IO = 3,          /* a file is missing, unreadable or malformed */
    FUSE_E_NOMEM = 4,       /* an allocation failed */
    FUSE_E_JIT = 5,         /* LLVM could not compile or load the code */
    FUSE_E_RUNTIME = 6,     /* evaluation failed */
    FUSE_E_ARG = 7,         /* an API argument is invalid (NULL, wrong shape, ...) */
    FUSE_E_UNSUPPORTED = 8, /* a valid request this build cannot do yet */
    FUSE_E_NOT_CONVERGED = 9, /* a fixpoint hit max_iters; outputs are still returned */
    FUSE_E_INTERRUPTED = 10,  /* fuse_ctx_interrupt stopped the run; no outputs */
    FUSE_E_BUSY = 11,         /* another thread is in a call on this runner; nothing done */
    FUSE_STATUS_COUNT
} fuse_status;

/* Element types of tensors crossing the API. */
typedef enum fusejit_dtype {
    FUSE_F32 = 0,
    FUSE_F64 = 1,
    FUSE_I8 = 2,
    FUSE_I16 = 3,
    FUSE_I32 = 4,
    FUSE_I64 = 5,
    FUSE_U8 = 6,
    FUSE_U16 = 7,
    FUSE_U32 = 8,
    FUSE_U64 = 9,
    FUSE_BOOL = 10,
    FUSE_F16 = 11,          /* IEEE binary16; appended, so older values keep theirs */
    FUSE_BF16 = 12,         /* bfloat16 (the top 16 bits of a float32); appended */
    FUSE_DTYPE_COUNT
} fuse_dtype;

/* A dense C-ordered tensor. Plain data: the API never frees `data` of a tensor the
 * host passes in; tensors in an output map belong to that map. */
typedef struct fusejit_tensor {
    fuse_dtype dtype;
    int rank;                       /* 0 for a scalar */
    int64_t shape[FUSE_MAX_RANK];   /* elements per axis */
    void *data;                     /* rank 0: one element */
} fuse_tensor;

/* A named input: binds a program tensor (normally a source) to host data.
 * `name` may carry a streaming offset ("H@t-1") to seed a window (SPEC §6.4). */
typedef struct fusejit_input {
    const char *name;
    fuse_tensor tensor;
    int borrow;             /* nonzero: use `data` in place (zero-copy) when it is
                               of the runner's dtype (float32 unless
                               fuse_config.precision says otherwise), or
                               bfloat16/float16, which a runner keeps as given
                               (docs/execution.md, "Precision"); at element
                               alignment; 64-byte aligned data
                               is a little faster); it must stay valid and
                               unchanged until the run returns */
} fuse_input;

/* Execution modes (SPEC §6.2). */
typedef enum fusejit_mode {
    FUSE_MODE_SINGLE = 0,   /* every group once; recursion gets one sweep */
    FUSE_MODE_FIXPOINT = 1, /* recursive components iterate until nothing changes */
    FUSE_MODE_DEMAND = 2,   /* only the dependency closure of the exports or a query */
    FUSE_MODE_COUNT
} fuse_mode;

typedef enum fusejit_strategy {
    FUSE_STRATEGY_SYNCHRONOUS = 0, /* every sweep reads the previous sweep (Jacobi) */
    FUSE_STRATEGY_SEMI_NAIVE = 1,  /* boolean components join only new facts */
    FUSE_STRATEGY_COUNT
} fuse_strategy;

typedef enum fusejit_projection {
    FUSE_PROJECTION_EXACT = 0,
    FUSE_PROJECTION_MONTE_CARLO = 1, /* `samples` joint projected cells per equation */
    FUSE_PROJECTION_COUNT
} fuse_projection;

/* The element type of every tensor a runner computes (docs/execution.md,
 * "Precision"): fp32, fp64 (arithmetic and accumulation in double), bf16 and
 * fp16 (stored in 16 bits, computed and accumulated in float32, rounded to
 * nearest even on store). Sources and inputs are converted to it when bound;
 * output maps hold FUSE_F32, FUSE_F64, FUSE_BF16 or FUSE_F16 accordingly. */
typedef enum fusejit_precision {
    FUSE_PRECISION_FP32 = 0,
    FUSE_PRECISION_FP64 = 1,
    FUSE_PRECISION_BF16 = 2, /* storage; accumulation in fp32 */
    FUSE_PRECISION_FP16 = 3,
    FUSE_PRECISION_COUNT
} fuse_precision;

typedef enum fusejit_device {
    FUSE_DEVICE_AUTO = 0,
    FUSE_DEVICE_CPU = 1,
    FUSE_DEVICE_CUDA = 2,   /* not available: FUSE_E_UNSUPPORTED */
    FUSE_DEVICE_COUNT
} fuse_device;

/* A host temperature schedule: the temperature of `tensor` at fixpoint sweep
 * `iteration` (0 in single mode). */
typedef double (*fuse_temperature_fn)(const char *tensor, int iteration, void *user);

/* A temperature schedule for the LHS `name` ("*" for every tensor): either `spec`
 * ("0.5", "linear:START:END:STEPS", "piecewise:STEP=VALUE,STEP=VALUE...") or, when
 * spec is NULL, the callback `fn` with `user`. */
typedef struct fusejit_temperature {
    const char *name;
    const char *spec;
    fuse_temperature_fn fn;
    void *user;
} fuse_temperature;

/* Runner configuration. fuse_config_init is the required initialiser: it sets
 * `size`, write_sinks = 1 and every other field to 0, which is each one's
 * default; then change fields. write_sinks is the one field whose zero is not its
 * default (0: no sink is written). Fields are appended only, and an appended
 * field's zero is its default. Versioned (the header's overview): the first
 * layout ends at write_sinks. */
typedef struct fusejit_config {
    size_t size;            /* sizeof(fuse_config) of the host: fuse_config_init */
    int threads;            /* worker threads; 0 = all cores */
    const char *base_dir;   /* where sources resolve; NULL = the program's dir */
    const char *out_dir;    /* root for sinks; NULL = the program's dir */
    int write_sinks;        /* nonzero (fuse_config_init): runs write the program's
                               sink files; 0: they do not */
    fuse_mode mode;
    fuse_strategy strategy;
    int max_iters;          /* fixpoint sweeps at most; 0 = 32 */
    double tol;             /* fixpoint float tolerance (plus 1e-5 relative) */
    fuse_projection projection;
    int64_t samples;        /* Monte Carlo samples per equation (> 0 needed with
                               FUSE_PROJECTION_MONTE_CARLO; unused otherwise) */
    uint64_t seed;          /* Monte Carlo and other randomness */
    fuse_precision precision;
    fuse_device device;
    const fuse_temperature *temperatures; /* n_temperatures schedules, copied */
    size_t n_temperatures;
    const char *cache_dir;  /* NULL: $FUSE_JIT_CACHE_DIR, else $XDG_CACHE_HOME/fuse-jit,
                               else ~/.cache/fuse-jit */
    int no_cache;           /* nonzero: neither read nor write the disk cache */
    /* Bytes the runner's buffers may take: every tensor's buffer (4 bytes an
     * element; 8 under fp64, 2 under bf16 and fp16), the
     * previous-sweep copies, stored steps and kernel scratch, summed (they all
     * live as long as the runner). Checked when the runner is made, before any
     * is allocated: above it fuse_runner_new is FUSE_E_NOMEM, naming the largest
     * tensors. 0 = the machine's memory (physical RAM, or the process's cgroup
     * limit when lower); FUSE_MEMORY_UNLIMITED = no cap. */
    uint64_t max_memory;
    /* Nonzero: run across the MPI ranks of the job (README, "Running across MPI
     * ranks"): every rank makes the runner with the same program, configuration
     * and inputs; large groups are split across the ranks, the rest runs on each;
     * results equal one process's on every rank, and only rank 0 writes sinks.
     * FUSE_DISTRIBUTED_RANK0: the results of fuse_runner_run and _run_into
     * equal one process's on rank 0 only (the others' rows are sent there and
     * nowhere else; rank 0 alone computes the sinks): on the other ranks
     * fuse_runner_run gives an empty output map and _run_into leaves the
     * outputs' memory unspecified. Queries still end on every rank.
     * fuse_runner_new initialises MPI when the host has not; FUSE_E_UNSUPPORTED
     * in a build without MPI (fuse_distributed_available). */
    int distributed;
} fuse_config;

/* fuse_config.distributed: results on every rank (any other nonzero value
 * too), or on rank 0 only. */
#define FUSE_DISTRIBUTED_EVERY_RANK 1
#define FUSE_DISTRIBUTED_RANK0 2

/* fuse_config.max_memory: no cap. */
#define FUSE_MEMORY_UNLIMITED UINT64_MAX

/* Counters of a context's code cache (fuse_ctx_stats). Versioned: set `size`
 * first; the first layout ends at disk_rejected. */
typedef struct fusejit_stats {
    size_t size;              /* sizeof(fuse_stats) of the host, set by the caller */
    uint64_t compiles;        /* modules compiled by LLVM */
    uint64_t memory_hits;     /* objects taken from the in-process cache (one per
                                 runner of an unchanged program; a runner reusing
                                 kernels of several programs takes several) */
    uint64_t disk_hits;       /* object files loaded from the disk cache */
    uint64_t disk_writes;     /* entries written to the disk cache */
    uint64_t disk_rejected;   /* corrupt, truncated or foreign entries deleted */
    /* kernels (one per equation or sink group) compiled by LLVM,
     * and kernels taken from the cache, whole program or group by group */
    uint64_t groups_compiled;
    uint64_t groups_cached;
} fuse_stats;

/* Wall-clock milliseconds of a runner's phases (fuse_runner_timings). Versioned:
 * set `size` first; the first layout ends at is_cache_hit. */
typedef struct fusejit_timings {
    size_t size;              /* sizeof(fuse_timings) of the host, set by the caller */
    double parse_ms, check_ms, lower_ms, compile_ms, cache_load_ms, last_run_ms;
    int is_cache_hit;         /* the machine code came from a cache */
    uint64_t flops;           /* floating-point operations of one run's sum joins:
                                 2 x loop cells each (fuse-bench's GFLOP/s) */
    uint64_t buffer_bytes;    /* the bytes of every buffer the runner planned */
    uint64_t peak_bytes;      /* the most of them a plain run holds at once: a large
                                 buffer no later equation reads is given back */
} fuse_timings;

/* Which tensors fuse_program_tensor_count and fuse_program_tensor_info list; or
 * them for both. */
#define FUSE_TENSORS_INPUTS 1   /* sources, which a host may bind with a fuse_input */
#define FUSE_TENSORS_EXPORTS 2  /* exports, the entries of an output map */

/* What a program says of one of its tensors before it runs
 * (fuse_program_tensor_info). Versioned: set `size` first. */
typedef struct fusejit_tensor_info {
    size_t size;            /* sizeof(fuse_tensor_info) of the host, set by the caller */
    const char *name;       /* valid until the program is freed */
    int is_input;           /* a source: a fuse_input may bind it */
    int is_export;          /* an export */
    int rank;               /* always known */
    int is_shape_known;     /* shape[] holds the sizes a runner made without inputs
                               gets: for every tensor when every source file can be
                               read; else only for const data, sizes the program
                               fixes (causal_mask) and a source whose own file
                               gives them exactly (not .csv .tsv .txt .md) */
    int64_t shape[FUSE_MAX_RANK];
    fuse_dtype dtype;       /* FUSE_F32: output maps hold float32, and run_into
                               takes float32 (inputs may have any dtype); a
                               runner of another precision uses its dtype
                               (FUSE_F64, FUSE_BF16, FUSE_F16) instead */
    int is_bool;            /* a boolean tensor (Name(...)): its float32 values are
                               0 or 1 (FUSE_BOOL is never reported) */
} fuse_tensor_info;

/* Levels of the messages a context logs (fuse_ctx_set_log). */
#define FUSE_LEVEL_ERROR 0    /* reserved: failures are statuses (fuse_ctx_error) */
#define FUSE_LEVEL_WARNING 1  /* e.g. a disk cache entry rejected or not written */
#define FUSE_LEVEL_INFO 2     /* e.g. a source not readable yet when a program is checked */

/* Receives a context's log messages: one line without a newline, valid during
 * the call. Called on the thread whose API call logs it, with no lock held; it
 * must not use the program or runner of that call. */
typedef void (*fuse_log_fn)(int level, const char *msg, void *user);

typedef struct fusejit_ctx fuse_ctx;
typedef struct fusejit_program fuse_program;
typedef struct fusejit_runner fuse_runner;
typedef struct fusejit_outputs fuse_outputs;

/* Version of the library at run time (FUSE_VERSION_NUMBER at compile time). */
FUSE_API int fuse_version_number(void);
FUSE_API const char *fuse_version_string(void);

/* Name of a status ("syntax error", ...); never NULL. */
FUSE_API const char *fuse_status_name(fuse_status status);

/* Name of a dtype in NumPy spelling ("float32", ...); never NULL. */
FUSE_API const char *fuse_dtype_name(fuse_dtype dtype);

/* Bytes per element of a dtype; 0 for an invalid value. */
FUSE_API size_t fuse_dtype_size(fuse_dtype dtype);

/* Creates a context with its JIT session. *out is freed with fuse_ctx_free.
 * Returns FUSE_E_ARG for NULL, FUSE_E_JIT when LLVM cannot target this host. */
FUSE_API fuse_status fuse_ctx_new(fuse_ctx **out);

/* Frees a context. Every program and runner made from it must be freed first.
 * Accepts NULL. */
FUSE_API void fuse_ctx_free(fuse_ctx *ctx);

/* Interrupts the runs in progress on the context (fuse_runner_run, _run_into,
 * _query, on any thread): each stops at its next check (between equation groups,
 * between fixpoint sweeps, and inside a kernel between blocks of a few
 * milliseconds of work) and returns
 * FUSE_E_INTERRUPTED with the diagnostic "interrupted", without outputs and
 * without writing sinks; the runner stays usable. Only an atomic store: safe from
 * another thread and from a signal handler. As sqlite3_interrupt: a run that
 * starts while interrupted runs are still returning is interrupted too, but an
 * interrupt with no run in progress has no effect (the next run to start with
 * none in progress clears it). Compiling (fuse_runner_new) is not interrupted.
 * Accepts NULL. */
FUSE_API void fuse_ctx_interrupt(fuse_ctx *ctx);

/* Sends the context's warnings and notes to fn (NULL: drop them, the default: the
 * library never writes to stderr). Set it before other threads use the context:
 * it is read without a lock. FUSE_E_ARG for a NULL ctx. */
FUSE_API fuse_status fuse_ctx_set_log(fuse_ctx *ctx, fuse_log_fn fn, void *user);

/* The calling thread's last diagnostic in this context, formatted as
 * "FILE:LINE:COL: error: message" followed by the source line and a caret when
 * there is a location; "" when this thread has had no error (other threads'
 * errors never show here, and a later success does not clear it). Valid until the
 * calling thread's next failing call on this context or fuse_ctx_free; never
 * NULL. */
FUSE_API const char *fuse_ctx_error(fuse_ctx *ctx);

/* The syntax a program is written in (fuse_program_options.syntax). A file may
 * also choose for itself with a first line `#!fuse v2` (or `#!fuse legacy`),
 * which wins over the option. */
typedef enum fusejit_syntax {
    FUSE_SYNTAX_LEGACY = 0, /* SPEC §3, the default */
    FUSE_SYNTAX_V2 = 1,     /* the structured syntax of SPEC §4, a superset of legacy */
    FUSE_SYNTAX_COUNT
} fuse_syntax;

/* A value for a v2 `param NAME = default` declaration, replacing the default
 * when the program is compiled. */
typedef struct fusejit_param {
    const char *name;
    double value;
} fuse_param;

/* Options of fuse_program_from_file_opts / _text_opts. Versioned (the header's
 * overview): set size with fuse_program_options_init; the first layout ends at
 * n_params, the second at weights, the third at error_limit. */
typedef struct fusejit_program_options {
    size_t size;        /* sizeof(fuse_program_options) of the host */
    fuse_syntax syntax; /* FUSE_SYNTAX_LEGACY (0, the default) or FUSE_SYNTAX_V2 */
    const fuse_param *params; /* n_params overrides of param defaults (copied); a name
                                 the program does not declare as a param is an error */
    size_t n_params;
    /* A weights manifest (SPEC §8, docs/files.md "Weight manifests"; copied; NULL:
     * none), relative to the current directory: a JSON file naming, for tensors
     * of the program, a file or shards, with optional dequantisation and LoRA.
     * An entry supplies its tensor instead of a source statement's file, and a
     * tensor the program reads but never defines is taken from it. Checking the
     * program reads only shapes; each runner reads the tensors once, as float32,
     * and every run uses them in place (a host input of the same name wins). A
     * malformed manifest is FUSE_E_IO naming the entry and the key; an entry the
     * program does not use is a warning (fuse_ctx_set_log). */
    const char *weights;
    /* Errors reported before the check stops with "too many errors emitted,
     * stopping now" (fuse_ctx_error gives them one after another): 0 the default
     * (20), negative no limit. */
    int error_limit;
    /* Nonzero: the host binds no source, so every source statement's file must
     * exist and fit the program now (fuse-jit check sets it). 0, the default: a
     * file that is missing or does not fit is left to the runner, since the host
     * may bind that source instead (an info message says so). */
    int strict_sources;
} fuse_program_options;

/* Sets the `size` bytes at o to the defaults (legacy syntax); does nothing for
 * NULL or a bad size. Call it through fuse_program_options_init. */
FUSE_API void fuse_program_options_init_size(fuse_program_options *o, size_t size);

static inline void fuse_program_options_init(fuse_program_options *o)
{
    fuse_program_options_init_size(o, sizeof *o);
}

/* fuse_program_from_file / _from_text with options (NULL: the defaults). A bad
 * opts->size or syntax is FUSE_E_ARG. */
FUSE_API fuse_status fuse_program_from_file_opts(fuse_ctx *ctx, const char *path,
                                                 const fuse_program_options *opts,
                                                 fuse_program **out);
FUSE_API fuse_status fuse_program_from_text_opts(fuse_ctx *ctx, const char *text,
                                                 const char *name,
                                                 const fuse_program_options *opts,
                                                 fuse_program **out);

/* Parses and checks a program from a file. Sources resolve relative to the file's
 * directory. *out is freed with fuse_program_free. */
FUSE_API fuse_status fuse_program_from_file(fuse_ctx *ctx, const char *path,
                                            fuse_program **out);

/* Parses and checks a program from text. `name` is the file name used in
 * diagnostics (NULL: "<input>"); sources resolve relative to the current
 * directory unless the runner's config says otherwise. */
FUSE_API fuse_status fuse_program_from_text(fuse_ctx *ctx, const char *text,
                                            const char *name, fuse_program **out);

/* Frees a program. Accepts NULL. Runners made from it keep what they need. */
FUSE_API void fuse_program_free(fuse_program *prog);

/* Static explanation of a program: sources, equations (LHS axes, projected axes,
 * operator), sinks, evaluation order and recursive components. `json` nonzero
 * gives JSON. *out is a NUL-terminated string freed with fuse_free. */
FUSE_API fuse_status fuse_program_explain(fuse_program *prog, int json, char **out);

/* Text dumps of a program's stages. `what` is "ast" or "ir". *out is freed with
 * fuse_free. */
FUSE_API fuse_status fuse_program_dump(fuse_program *prog, const char *what, char **out);

/* How many tensors `which` (FUSE_TENSORS_INPUTS, FUSE_TENSORS_EXPORTS or both
 * or-ed) lists: the sources in program order, then the exports in export order
 * (an exported source once, as an input). 0 for NULL or no known bit. */
FUSE_API size_t fuse_program_tensor_count(const fuse_program *prog, int which);

/* Fills *out (out->size set by the caller) with the index-th tensor that `which`
 * lists: 0 <= index < fuse_program_tensor_count(prog, which). FUSE_E_ARG for a
 * NULL argument, an index out of range or a bad out->size. */
FUSE_API fuse_status fuse_program_tensor_info(const fuse_program *prog, int which,
                                              size_t index, fuse_tensor_info *out);

/* ---- distributed runs (MPI) ---- */

/* Nonzero when this library was built with MPI (Open MPI), so that
 * fuse_config.distributed works. */
FUSE_API int fuse_distributed_available(void);

/* Initialises MPI when neither the host nor a distributed runner has, and gives
 * this process's rank and the number of ranks (either pointer may be NULL) and
 * the bytes it has moved so far (NULL: not wanted): its buffers handed to MPI
 * all-reduces plus the other ranks' rows it received in all-gathers.
 * FUSE_E_UNSUPPORTED in a build without MPI. */
FUSE_API fuse_status fuse_distributed_rank(int *rank, int *size, uint64_t *bytes_moved);

/* The distribution of a runner made with fuse_config.distributed, as text: for
 * each equation its placement (split across the ranks or replicated on each)
 * and the bytes it moves per run, then the totals. *out is freed with fuse_free.
 * FUSE_E_ARG for a runner that is not distributed. */
FUSE_API fuse_status fuse_runner_explain_distributed(fuse_runner *run, char **out);

/* Sets the `size` bytes at cfg to the defaults (fuse_config): cfg->size = size,
 * all cores, sources and sinks beside the program, sinks written; a newer
 * header's fields are zeroed. Does nothing for NULL or a size fuse_runner_new
 * would refuse. Call it through fuse_config_init. */
FUSE_API void fuse_config_init_size(fuse_config *cfg, size_t size);

/* Sets cfg to the defaults, for the fuse_config this host was compiled with
 * (inline, so that sizeof is the host's). */
static inline void fuse_config_init(fuse_config *cfg)
{
    fuse_config_init_size(cfg, sizeof *cfg);
}

/* Compiles a program for a configuration (NULL: defaults; a cfg->size this
 * library cannot take is FUSE_E_ARG) and input shapes,
 * kernel by kernel through the context's code cache: a kernel (one per equation
 * or sink group) that any earlier runner of the context compiled, in this or
 * another program, is reused, and only the others are compiled (
 * fuse_stats.groups_compiled and groups_cached count them).
 * `inputs` (n_inputs entries, may be NULL when 0) fix the shapes of the tensors
 * they name; the same names must then be given to every run. Sources without an
 * input are read from their files at each run. *out is freed with
 * fuse_runner_free. */
FUSE_API fuse_status fuse_runner_new(fuse_program *prog, const fuse_config *cfg,
                                     const fuse_input *inputs, size_t n_inputs,
                                     fuse_runner **out);

/* Runs the compiled program once. Inputs must have the shapes the runner was
 * compiled for (FUSE_E_ARG otherwise); their data is copied, except a borrowed
 * float32 input (fuse_input.borrow), used in place. On success *out maps
 * every export to its value and is freed with fuse_outputs_free. When a fixpoint
 * reaches max_iters without converging, the status is FUSE_E_NOT_CONVERGED AND
 * *out holds the outputs of the last sweep (free it too); sinks are written.
 * stream: each run is one time step of the program's *t axes; inputs named
 * "H@t-1" seed earlier steps (SPEC §6.4). */
FUSE_API fuse_status fuse_runner_run(fuse_runner *run, const fuse_input *inputs,
                                     size_t n_inputs, fuse_outputs **out);

/* Runs the compiled program once, like fuse_runner_run, and writes its exports
 * to the file at path instead of returning them: an .npy holds the program's
 * only export (FUSE_E_ARG when it has another number of them), an .npz a
 * member "<name>.npy" per export, stored, or deflated when compress is
 * nonzero (as fuse_outputs_save_npz and _save_npz_compressed). The file is
 * written from the runner's buffers as the run left them, straight to disk:
 * no output map, no archive in memory; it is written whole or not at all.
 * Distributed (fuse_config.distributed), every rank calls it: rank 0 writes
 * the file, receiving each row the others computed piece by piece as it
 * writes (no rank gathers an export whole). Statuses as fuse_runner_run; with
 * FUSE_E_NOT_CONVERGED the file holds the last sweep's values. */
FUSE_API fuse_status fuse_runner_run_save(fuse_runner *run, const fuse_input *inputs,
                                          size_t n_inputs, const char *path, int compress);

/* Runs the compiled program once, like fuse_runner_run, but delivers exports
 * into host memory instead of a new output map: outputs[i].name is an export and
 * outputs[i].tensor a float32 tensor of its shape whose data receives its value
 * (exports not named are not delivered). With outputs[i].borrow (float-aligned
 * data), the kernels write there directly (no copy; a few exports, such as the
 * written step of a streaming tensor, are still copied); the memory must stay
 * valid until the call returns, must not overlap an input's, and its previous
 * contents are ignored. FUSE_E_ARG names an
 * output that is not an export, not float32, of another shape or named twice.
 * Statuses as fuse_runner_run (FUSE_E_NOT_CONVERGED: the last sweep's values). */
FUSE_API fuse_status fuse_runner_run_into(fuse_runner *run, const fuse_input *inputs,
                                          size_t n_inputs, const fuse_input *outputs,
                                          size_t n_outputs);

/* Text of the generated code: `what` is "llvm" (LLVM IR after optimisation),
 * "llvm-raw" (before) or "asm". *out is freed with fuse_free. */
FUSE_API fuse_status fuse_runner_emit(fuse_runner *run, const char *what, char **out);

/* Frees a runner and its machine code. Accepts NULL. */
FUSE_API void fuse_runner_free(fuse_runner *run);

/* The phase times of the runner's creation and last run, into the host's
 * out->size bytes (FUSE_E_ARG when out->size is bad). */
FUSE_API fuse_status fuse_runner_timings(const fuse_runner *run, fuse_timings *out);

/* The explanation of the last run: per sweep and per equation the status
 * (evaluated, unchanged, skipped, cached), time, temperature used, kernel kind and
 * size, Monte Carlo samples, and convergence. `json` nonzero gives JSON. *out is
 * freed with fuse_free. */
FUSE_API fuse_status fuse_runner_trace(fuse_runner *run, int json, char **out);

/* Demand query (any mode): computes only the dependency closure of `name` to a
 * fixpoint and returns it as a one-entry output map named `name`. `selectors`
 * (may be NULL) is like "x=3,y=-1": LHS axis names with integer positions
 * (negative counts from the end); each drops its axis. An unknown name or axis,
 * a position out of range or a malformed selector is FUSE_E_ARG. Sinks are not
 * written. FUSE_E_NOT_CONVERGED returns *out as fuse_runner_run does. */
FUSE_API fuse_status fuse_runner_query(fuse_runner *run, const char *name,
                                       const char *selectors, const fuse_input *inputs,
                                       size_t n_inputs, fuse_outputs **out);

/* Streaming: forgets every stored time step (SPEC §6.4). */
FUSE_API fuse_status fuse_runner_reset(fuse_runner *run);

/* The context's cache counters, into the host's out->size bytes (FUSE_E_ARG when
 * out->size is bad). */
FUSE_API fuse_status fuse_ctx_stats(fuse_ctx *ctx, fuse_stats *out);

/* The disk cache directory. fuse_cache_dir gives the directory runners
 * of `cfg` (NULL: defaults) use: cfg->cache_dir, else $FUSE_JIT_CACHE_DIR, else
 * $XDG_CACHE_HOME/fuse-jit, else ~/.cache/fuse-jit; *out is freed with fuse_free,
 * and is NULL (status FUSE_OK) when cfg->no_cache is set or no directory exists.
 * fuse_cache_usage counts the entries of a directory and their bytes (0 for a
 * missing one); fuse_cache_clear deletes them (*removed, may be NULL, counts
 * them). Both return FUSE_E_IO when the directory cannot be read. */
FUSE_API fuse_status fuse_cache_dir(const fuse_config *cfg, char **out);
FUSE_API fuse_status fuse_cache_usage(const char *dir, uint64_t *entries, uint64_t *bytes);
FUSE_API fuse_status fuse_cache_clear(const char *dir, uint64_t *removed);

/* Output maps: exports in program order. Index i runs 0..count-1. */
FUSE_API size_t fuse_outputs_count(const fuse_outputs *out);
FUSE_API const char *fuse_outputs_name(const fuse_outputs *out, size_t i);
FUSE_API const fuse_tensor *fuse_outputs_tensor(const fuse_outputs *out, size_t i);
/* The tensor of an export by name, or NULL. */
FUSE_API const fuse_tensor *fuse_outputs_find(const fuse_outputs *out, const char *name);
/* Frees an output map and every tensor in it. Accepts NULL. */
FUSE_API void fuse_outputs_free(fuse_outputs *out);

/* Writes one tensor to a file chosen by extension: .npy, .json or .jsonl. */
FUSE_API fuse_status fuse_tensor_save(fuse_ctx *ctx, const fuse_tensor *t, const char *path);

/* Writes every output of a map into one .npz archive, a member per export, stored
 * uncompressed (as numpy.savez). */
FUSE_API fuse_status fuse_outputs_save_npz(fuse_ctx *ctx, const fuse_outputs *out,
                                           const char *path);
/* fuse_outputs_save_npz with every member deflated (as numpy.savez_compressed):
 * smaller, and much slower to write (about 400 ms for 9 MB of float32). */
FUSE_API fuse_status fuse_outputs_save_npz_compressed(fuse_ctx *ctx, const fuse_outputs *out,
                                                      const char *path);

/* Reads a .npy file into a new tensor whose data is freed with fuse_free. */
FUSE_API fuse_status fuse_tensor_load(fuse_ctx *ctx, const char *path, fuse_tensor *out);

/* Frees memory the API returned (strings, loaded tensor data). Accepts NULL. */
FUSE_API void fuse_free(void *p);

/* Writes n named tensors into one .npz archive, a member "<names[i]>.npy" each,
 * deflated when `compress` is nonzero (as numpy.savez / savez_compressed). A NULL
 * or repeated name is FUSE_E_ARG. */
FUSE_API fuse_status fuse_tensors_save_npz(fuse_ctx *ctx, const char *const *names,
                                           const fuse_tensor *tensors, size_t n,
                                           int compress, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* FUSEJIT_H */
