/*
 * runtime.h: the last stage of fuse-jit. Tensors and aligned memory, file sources
 * and sinks, and the executor that binds inputs, runs the compiled kernels in order,
 * writes sinks and returns exports. The public API (include/fuse.h) is implemented
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

#include "fuse.h"
#include "frontend.h"
#include "ir.h"
#include "support.h"

/* ---- tensor.c: aligned buffers and host tensors ---- */

#define RT_ALIGN 64

/* 64-byte aligned, zeroed memory for n bytes (n may be 0); NULL on OOM. Free with
 * rt_free_aligned or plain free() (it is aligned_alloc memory). */
void *rt_alloc_aligned(size_t n);
void rt_free_aligned(void *p);

/* Number of elements of a shape (1 for rank 0); -1 if it overflows int64. */
int64_t rt_shape_count(int rank, const int64_t *shape);

/* Converts n elements of any dtype to float32 (bool/ints exactly as values). */
void rt_convert_to_f32(fuse_dtype dt, const void *src, float *dst, int64_t n);
/* The same thresholded for a boolean tensor (SPEC §2.4): 1 where the value is > 0
 * in its own dtype, else 0 (NaN too). */
void rt_convert_to_bool(fuse_dtype dt, const void *src, float *dst, int64_t n);
/* rt_convert_to_bool when is_bool, else rt_convert_to_f32: how a source or input
 * bound to a tensor is stored. */
void rt_convert_source(fuse_dtype dt, const void *src, float *dst, int64_t n, bool is_bool);

/* Makes a host tensor of dtype `dt` holding a copy of n float32 values converted
 * to dt; data 64-byte aligned, free with free. Integers truncate toward zero and
 * saturate at their range (NaN gives 0); bool is "nonzero". */
fuse_status rt_tensor_from_f32(fuse_dtype dt, int rank, const int64_t *shape,
                               const float *src, fuse_tensor *out);

/* Checks that t is a well-formed host tensor: valid dtype, rank 0..FUSE_MAX_RANK,
 * non-negative shape whose size in bytes fits size_t, data present unless empty.
 * Sets *nbytes (may be NULL) to its data size. FUSE_E_ARG, with a message naming
 * `what`, otherwise. */
fuse_status rt_tensor_check(const fuse_tensor *t, const char *what, size_t *nbytes,
                            char **err);

/* ---- npy.c: NumPy .npy files ---- */

typedef struct NpyHeader {
    fuse_dtype dtype;
    bool is_big_endian;
    bool is_fortran;
    int rank;
    int64_t shape[FUSE_MAX_RANK];
    size_t data_offset; /* bytes from the start of the file to the data */
} NpyHeader;

/* Parses a .npy header held in memory (n bytes available from buf). Versions 1-3;
 * dtypes float32/64, int8..64, uint8..64, bool (either byte order). Errors name the
 * image ".npy header"; rt_npy_parse_header_named names it `what` instead. */
fuse_status rt_npy_parse_header(const void *buf, size_t n, NpyHeader *h, char **err);
fuse_status rt_npy_parse_header_named(const void *buf, size_t n, const char *what,
                                      NpyHeader *h, char **err);

/* A byte stream to decode from: reads up to n bytes into dst and returns how many
 * were read (fewer than n only at the end of the stream), or -1 on a read error. */
typedef int64_t (*RtReadFn)(void *ctx, void *dst, size_t n);

/* Decodes one .npy image from a stream (a file, an .npz member) straight into a
 * C-ordered host tensor; `size` is the stream's total length in bytes when known
 * (UINT64_MAX if not), which lets a truncated image be rejected before its data is
 * allocated. out->data is malloc'd; caller frees. */
fuse_status rt_npy_read_stream(RtReadFn read, void *ctx, uint64_t size, const char *what,
                               fuse_tensor *out, char **err);

/* Reads a whole .npy file into a C-ordered host tensor of its own dtype (Fortran
 * order is transposed into C order). out->data is malloc'd; caller frees. */
fuse_status rt_npy_read(const char *path, fuse_tensor *out, char **err);

/* Same, from memory (as found inside an .npz member). `what` names it in errors. */
fuse_status rt_npy_read_mem(const void *buf, size_t n, const char *what, fuse_tensor *out,
                            char **err);

/* Serialises a tensor as a version 1.0 .npy image; *buf malloc'd, *n its size. */
fuse_status rt_npy_encode(const fuse_tensor *t, void **buf, size_t *n, char **err);

/* Writes a .npy file atomically (temporary file in the same directory, then
 * rename). */
fuse_status rt_npy_write(const char *path, const fuse_tensor *t, char **err);

/* ---- npz.c: .npz archives (ZIP of .npy members, through libzip) ---- */

/* Writes an .npz atomically with one member "<names[i]>.npy" per tensor, deflated;
 * missing parent directories are created. n == 0 writes an empty archive. A
 * failure leaves the target as it was and no temporary behind. */
fuse_status rt_npz_write(const char *path, const char *const *names,
                         const fuse_tensor *tensors, int n, char **err);

/* Reads one member of an .npz: `member` names it (without ".npy"); NULL picks
 * "arr_0", else the only member. `fallback` (may be NULL) is tried when neither
 * applies (the tensor's name). A name N matches member "N.npy", else "N". Stored
 * and deflated members; a bad CRC is an error. out->data malloc'd. */
fuse_status rt_npz_read(const char *path, const char *member, const char *fallback,
                        fuse_tensor *out, char **err);

/* ---- json.c: .json and .jsonl tensors (through jansson) ---- */

/* Writes nested lists of numbers (booleans as true/false when dtype is bool). */
fuse_status rt_json_write(const char *path, const fuse_tensor *t, char **err);

/* Writes the fuse.tensor JSON-lines schema: a header line then {"value": [...]}. */
fuse_status rt_jsonl_write(const char *path, const fuse_tensor *t, char **err);

/* The text either writer would produce (jsonl: the two-line schema), ending in
 * '\n'; *text malloc'd and NUL-terminated, *len its length. Non-finite floats are
 * written as null (JSON has no NaN); float32 prints with 9 significant digits,
 * float64 with 17, so values read back exactly. */
fuse_status rt_json_encode(const fuse_tensor *t, bool jsonl, char **text, size_t *len,
                           char **err);

/* ---- facts.c, text.c, topk.c, readers.c: the other file formats ---- */

/* The readers of this section return host float32 tensors in C order whose data
 * comes from rt_alloc_aligned (release with free). A missing or malformed file is
 * FUSE_E_IO with a message naming the file (and its line where it has lines); an
 * allocation failure is FUSE_E_NOMEM; a tensor of more than RT_MAX_READ_ELEMS
 * elements is refused with FUSE_E_IO. On failure *out is left zeroed. */
#define RT_MAX_READ_ELEMS ((int64_t)1 << 31)

/* Reads a .tsv/.csv facts file into a 0/1 relation. One fact per line: `rank`
 * non-negative integer coordinates separated by tabs or commas (either, in either
 * kind of file; a run of separators counts as one); blanks around a field, CRLF
 * line ends, blank lines and lines starting with '#' are allowed; anything else
 * (a header line, a sign other than '+', a decimal point) is an error naming
 * file:line. The size of each axis is the largest coordinate + 1: a lower bound
 * that the caller pads. `rank` is the expected number of columns, or -1 to take it
 * from the first fact; a file without facts then has no rank and is an error,
 * while with rank >= 0 it gives an empty relation of shape (0, ..., 0). */
fuse_status rt_facts_read_rank(const char *path, int rank, fuse_tensor *out, char **err);
fuse_status rt_facts_read(const char *path, fuse_tensor *out, char **err); /* rank -1 */

/* Writes the coordinates of t's nonzero cells (NaN counts as nonzero) in row-major
 * order, one per line ending in '\n', separated by ',' when the path ends in ".csv"
 * (any case) and by a tab otherwise. No cell → an empty file. Rank 0 has no
 * coordinates: FUSE_E_ARG. Any dtype. Atomic; creates missing parent dirs. */
fuse_status rt_facts_write(const char *path, const fuse_tensor *t, char **err);

/* The vocabulary sidecar of a bag-of-words file: the path with its last extension
 * replaced by ".vocab.json" ("d/a.b.txt" → "d/a.b.vocab.json"; no extension:
 * appended). malloc'd; NULL on OOM. */
char *rt_bow_vocab_path(const char *path);

/* Reads a .txt/.md bag of words: UTF-8 text (a leading BOM is skipped) split on
 * runs of Unicode whitespace into tokens → a (tokens × vocabulary) 0/1 matrix whose
 * row p has a 1 in the column of token p. The vocabulary comes from the sidecar
 * (formats: {"version": 1, "items": [{"token": T, "index": I}, ...]}, a plain
 * {"T": I} object, or a ["T", ...] list); its size is the largest index + 1.
 * Unknown tokens get the next indices in order of first occurrence, and the
 * sidecar is then (or when missing) rewritten atomically in the items format;
 * otherwise it is not touched. A corrupt sidecar is an error, never overwritten.
 * Both sizes are lower bounds. When the sidecar cannot be written, rt_bow_read_ex
 * with warn != NULL sets *warn (malloc'd) and still succeeds; rt_bow_read fails. */
fuse_status rt_bow_read_ex(const char *path, fuse_tensor *out, char **warn, char **err);
fuse_status rt_bow_read(const char *path, fuse_tensor *out, char **err);

/* The fuse.topk JSON-lines text for t: the line {"schema":"fuse.topk","version":1},
 * then per row (rows run over all leading axes in C order; rank 1 is one row, rank
 * 0 one row of one entry) {"topk":[{"index":i,"value":v},...]} with the
 * min(k, row length) largest entries of the last axis: value descending, ties to
 * the lower index, NaN last. Values are JSON reals (1.0), printed with the fewest
 * digits that read back to the same float32; non-finite values print as null.
 * Any dtype (converted to float32). k < 0 is FUSE_E_ARG. *text malloc'd. */
fuse_status rt_topk_encode(const fuse_tensor *t, int64_t k, char **text, size_t *len,
                           char **err);

/* rt_topk_encode written atomically to path (parent directories created). */
fuse_status rt_topk_write(const char *path, const fuse_tensor *t, int64_t k, char **err);

/* Reads a .json tensor: rectangular nested lists of numbers and booleans (true is
 * 1), null read as NaN (the writers' spelling of a non-finite value); a bare number
 * is rank 0, [] is shape (0). */
fuse_status rt_json_read(const char *path, fuse_tensor *out, char **err);

/* Reads the fuse.tensor JSON-lines schema (as rt_jsonl_write writes it): a header
 * line {"schema": "fuse.tensor", "version": 1, "shape": [...]} ("version" may be
 * left out) then one line {"value": nested} of exactly that shape. Blank lines
 * are skipped; a fuse.topk file is refused. */
fuse_status rt_jsonl_read(const char *path, fuse_tensor *out, char **err);

/* Reads one tensor of a .safetensors file: the member called `name` if there is
 * one, else the only member (name may be NULL). Dtypes F64 F32 F16 BF16 I64 I32
 * I16 I8 U64 U32 U16 U8 BOOL, converted to float32. The header (at most 100 MB)
 * and the data offsets are checked against the file size; only the selected
 * tensor's bytes are read. */
fuse_status rt_safetensors_read(const char *path, const char *name, fuse_tensor *out,
                                char **err);

/* ---- buildid.c ---- */

/* Copies up to cap bytes of the GNU build ID of the module holding fuse-jit's code;
 * returns the number copied (0 when the module has none). */
size_t rt_build_id(unsigned char *out, size_t cap);

/* ---- exec.c: compiling and running a program (the lead's section) ---- */

/* A group kernel (lower.h: kernel ABI): buffers, thread id, team size, barrier. */
typedef void (*RtKernel)(float **bufs, int64_t tid, int64_t nth, void (*barrier)(void));

/* The barrier of a kernel run alone (does nothing). */
void rt_no_barrier(void);

/* A program compiled for one configuration and one set of input shapes. Owns its
 * own parse of the source text, so it outlives the fuse_program it came from. */
typedef struct RtPlan {
    Arena arena;            /* AST and IR */
    Source src;
    Ast ast;
    DiagList dl;
    IrProgram *ir;
    char *base_dir;         /* sources resolve here */
    char *out_dir;          /* sinks are written under here */
    bool write_sinks;
    char prefix[32];        /* kernel name prefix, unique in the context */
    struct JitSession *js;  /* borrowed from the context */
    struct JitCode *code;
    RtKernel *group_fn;     /* per equation group */
    RtKernel *sink_fn;      /* per sink group */
    float **bufs;           /* 2 * n_tensors: current, then previous-sweep buffers */
    int64_t *count;         /* elements of each tensor */
    bool *is_input;         /* tensor bound to a host input */
    /* issue 7 (embed): while a run uses a borrowed host buffer as bufs[t], the
     * plan's own buffer waits here (NULL otherwise; sources.c) */
    float **own_bufs;
    /* modes (issue 6): mode, strategy, schedules and the last run's trace
     * (runtime/modes.h); NULL until configured (rt_plan_run then uses defaults) */
    struct RtModes *modes;
    /* cache (issue 5): the context's code cache and this runner's disk cache
     * directory (NULL: no disk cache), both set by rt_plan_new; the phase times of
     * the plan's creation and last run (fuse_runner_timings) */
    struct JitCache *cache;
    char *cache_dir;
    fuse_timings timings;
    /* perf (issue 4): worker threads (0: all cores; set from fuse_config), the
     * per-thread packing scratch in bytes and how many threads bufs[2 n_tensors]
     * has room for, and which groups run on a thread team (lower_group_is_parallel) */
    int threads;
    size_t scratch_bytes;
    int scratch_threads;
    bool *group_par, *sink_par;
    /* incr (issue 7): the loaded objects holding the kernels, each in a JITDylib
     * of its own (plan_compile.c); `code` above is no longer used */
    struct JitCode **codes;
    int n_codes;
    /* incr (issue 7): each kernel's buffer table (n_groups equation groups, then
     * the sink groups); kernels are compiled on their group's tensors alone */
    struct RtGroupBufs *gbufs;
    int n_gbufs;
    /* stream (issue 6): the stored time steps of streaming tensors (stream.h);
     * NULL until the first run of a program with *t axes */
    struct RtStreamState *stream;
    /* perf (issue 4; zeroing.c): per tensor, true when a run's kernels write
     * every cell before anything reads it, so the run need not zero it first
     * (exec.c); made by the first run, in the plan's arena (NULL until then) */
    bool *is_written_whole;
    /* fusion across equations (issue 4; plan_compile.c): absorbs[g] > 0 when
     * equation group g's kernel also computes the next absorbs[g] groups (their
     * elementwise ops run in g's pass over memory); those groups' kernel is the
     * same one; while a run is inside such a span, (fused_from, fused_until] are
     * the groups its last kernel computed, so the schedule does not run them
     * again (-1: none) */
    int *absorbs;
    int *span_head;   /* the group whose kernel computes group g (g itself if none) */
    int fused_from, fused_until;
    /* output binding (issue 4; fuse_runner_run_into): while a run delivers an
     * export into host memory that its kernels may write directly, out_bind[t]
     * is that memory (NULL otherwise; exec.c binds it after the sources) */
    float **out_bind;
} RtPlan;

/* incr (issue 7): the buffers of one kernel, numbered as its group's view numbers
 * them: tab[k] = plan bufs[map[k]] (n entries: tensors, previous-sweep buffers,
 * the scratch slot). */
typedef struct RtGroupBufs {
    int n;
    int *map;
    float **tab;
} RtGroupBufs;

/* perf (issue 4; parallel.c): runs kernel k on a team of nth OpenMP threads (each
 * with its tid); returns the team size used. */
int rt_parallel_run(RtKernel k, float **bufs, int nth);
/* The team size for `threads` (0: all cores, as OpenMP sees them). */
int rt_parallel_threads(int threads);

/* modes (issue 6; api_modes.c): frees a plan's mode state (accepts NULL); applies
 * a configuration's modes to a runner (FUSE_E_ARG with a diagnostic when invalid);
 * sets the diagnostic of a run that did not converge and returns
 * FUSE_E_NOT_CONVERGED. */
void rt_modes_free(struct RtModes *m);
fuse_status rt_modes_apply(struct fuse_runner *run, const fuse_config *cfg);
fuse_status rt_modes_not_converged(struct fuse_runner *run);
/* Sets the calling thread's diagnostic of ctx to msg (malloc'd, taken; api.c). */
void rt_ctx_set_error(struct fuse_ctx *ctx, char *msg);

/* Parses, builds, checks shapes (reading source headers) and, when js is not NULL,
 * compiles: through `cache` (borrowed; NULL: none) and the disk directory
 * `cache_dir` (copied; NULL: no disk cache). Diagnostics go to plan->dl; on
 * failure the plan must still be freed with rt_plan_free. `inputs` fix the shapes
 * of the tensors they name. */
fuse_status rt_plan_new(RtPlan **out, const char *text, const char *name,
                        const char *base_dir, const char *out_dir, bool write_sinks,
                        const fuse_input *inputs, size_t n_inputs,
                        struct JitSession *js, const char *prefix,
                        struct JitCache *cache, const char *cache_dir);
void rt_plan_free(RtPlan *plan);

/* incr (issue 7; plan_compile.c): compiles the shaped plan's kernels through the
 * code cache group by group (only groups not cached are compiled), loads them and
 * fills group_fn/sink_fn/group_par/sink_par. Called by rt_plan_new after the
 * buffers are allocated. */
fuse_status rt_plan_compile(RtPlan *plan);

struct JitModule;

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

/* perf (issue 4; zeroing.c): the plan's is_written_whole flags (the rule is
 * at the top of zeroing.c), allocated in plan->arena; NULL when the plan is not
 * shaped or memory runs out (then a run zeroes everything). */
bool *rt_zeroing_flags(RtPlan *plan);

/* Emits the plan's code again as text: "llvm", "llvm-raw" or "asm". */
fuse_status rt_plan_emit(RtPlan *plan, const char *what, char **out, char **err);

/* Runs equation group g (is_sink false) or sink group g on the plan's buffers. */
void rt_run_group(RtPlan *plan, bool is_sink, int g);

/* ---- sources.c: sources and sinks of a plan ---- */

/* Checks host inputs name source tensors and have a valid rank and dtype. */
fuse_status rt_check_inputs(RtPlan *plan, const fuse_input *inputs, size_t n_inputs);
/* Fills facts[t] for every source (host input shapes, else file headers). When
 * plan->js is NULL (checking only), an unreadable source sets *is_skipped. */
fuse_status rt_probe_sources(RtPlan *plan, const fuse_input *inputs, size_t n_inputs,
                             ShapeFact *facts, bool *is_skipped);
/* Reads every source (or its host input) into its buffer. A borrowed input
 * (fuse_input.borrow) that is float32, 64-byte aligned and of the compiled shape
 * is used in place: bufs[t] points at the host's data until rt_unborrow_sources. */
fuse_status rt_load_sources(RtPlan *plan, const fuse_input *inputs, size_t n_inputs);
/* Gives every borrowed buffer back: bufs[t] is the plan's own buffer again. Call
 * when a run's results have been collected (and before freeing the plan). */
void rt_unborrow_sources(RtPlan *plan);

/* issue 4: whether export t can be written in place in host memory by a run's
 * kernels (a computed tensor outside any stream window and not read as a
 * previous sweep); others are copied out after the run. */
bool rt_output_bindable(const RtPlan *plan, int t);
/* Writes one sink's value t to its file under the output root. */
fuse_status rt_write_sink(RtPlan *plan, const Sink *s, const IrTensor *t);

/* ---- tucker.c: runtime functions generated code calls (tucker) ---- */

/* Defines every host function (lower/lower.h) in js (jit_define_symbol); call it
 * right after jit_session_new. */
fuse_status rt_host_symbols_define(struct JitSession *js, char **err);

/* ---- mmap.c: large .npy sources through a memory mapping (tucker) ---- */

/* Bytes from which a source .npy is mapped: $FUSE_JIT_MMAP_MIN_BYTES, else 16 MiB. */
uint64_t rt_mmap_min_bytes(void);
/* When path is a regular file of at least rt_mmap_min_bytes() bytes holding a
 * little-endian, C-ordered .npy of `rank` axes with sizes `shape`, converts its data
 * from a read-only mapping into dst (float32; thresholded to 0/1 when is_bool, as
 * rt_convert_source) and sets *is_mapped. Otherwise
 * *is_mapped is false and nothing is read (the caller reads the file as usual). A
 * malformed header or data shorter than the header promises is FUSE_E_IO naming
 * the file (checked before the data is touched). */
fuse_status rt_npy_read_mapped(const char *path, int rank, const int64_t *shape, float *dst,
                               bool is_bool, bool *is_mapped, char **err);

/* ---- api_cache.c: code cache and timings (issue 5) ---- */

/* The disk cache directory of a configuration (malloc'd): NULL when cfg->no_cache
 * or when no directory can be found; *is_nomem set on OOM. */
char *rt_cache_dir_of(const fuse_config *cfg, bool *is_nomem);

/* ---- api.c: the objects behind the public handles ---- */

struct fuse_ctx {
    struct JitSession *js;
    pthread_mutex_t lock;  /* guards err */
    char *err;             /* unused since issue 7: see errs */
    atomic_int next_runner;
    /* issue 7 (embed): the last diagnostic of each thread, guarded by lock */
    struct RtThreadError *errs;
    size_t n_errs, cap_errs;
    /* cache (issue 5): compiled objects by content key (jit/jit.h) */
    struct JitCache *cache;
};

struct fuse_program {
    fuse_ctx *ctx;
    char *text;
    char *name;
    char *dir;             /* the program file's directory, or NULL for text */
    RtPlan *plan;          /* parsed and checked, not compiled */
};

struct fuse_runner {
    fuse_ctx *ctx;
    RtPlan *plan;
};

struct fuse_outputs {
    size_t n;
    char **names;
    fuse_tensor *tensors;
};

#endif /* FUSE_RUNTIME_H */
