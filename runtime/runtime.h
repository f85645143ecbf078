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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fuse.h"
#include "frontend.h"
#include "ir.h"

/* ---- tensor.c: aligned buffers and host tensors ---- */

#define RT_ALIGN 64

/* 64-byte aligned, zeroed memory for n bytes (n may be 0); NULL on OOM. Free with
 * rt_free_aligned. */
void *rt_alloc_aligned(size_t n);
void rt_free_aligned(void *p);

/* Number of elements of a shape (1 for rank 0); -1 if it overflows int64. */
int64_t rt_shape_count(int rank, const int64_t *shape);

/* Converts n elements of any dtype to float32 (bool/ints exactly as values). */
void rt_convert_to_f32(fuse_dtype dt, const void *src, float *dst, int64_t n);

/* Makes a host tensor of dtype `dt` holding a copy of n float32 values converted
 * to dt; data malloc'd (free with free). */
fuse_status rt_tensor_from_f32(fuse_dtype dt, int rank, const int64_t *shape,
                               const float *src, fuse_tensor *out);

/* Checks that t is a well-formed host tensor: valid dtype, rank 0..FUSE_MAX_RANK,
 * non-negative shape whose size in bytes fits size_t, data present unless empty.
 * Sets *nbytes (may be NULL) to its data size. FUSE_E_ARG, with a message naming
 * `what`, otherwise. Memory from rt_alloc_aligned may also be released with free(). */
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

/* Writes an .npz atomically with one member "<names[i]>.npy" per tensor, deflated. */
fuse_status rt_npz_write(const char *path, const char *const *names,
                         const fuse_tensor *tensors, int n, char **err);

/* Reads one member of an .npz: `member` names it (without ".npy"); NULL picks
 * "arr_0", else the only member. `fallback` (may be NULL) is tried when neither
 * applies (the tensor's name). out->data malloc'd. */
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

/* ---- fileutil.c: atomic writes and paths ---- */

/* Writes n bytes to path atomically, creating missing parent directories. */
fuse_status rt_write_file_atomic(const char *path, const void *data, size_t n, char **err);

/* Reads a whole file; *data malloc'd (NUL-terminated for convenience), *n bytes. */
fuse_status rt_read_file(const char *path, void **data, size_t *n, char **err);

/* Creates every missing directory of a file path's parent. */
fuse_status rt_make_parent_dirs(const char *path, char **err);

/* malloc'd printf, for building error messages; NULL on OOM. */
char *rt_strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sets *err (when err is not NULL) to the formatted message and returns st, so an
 * error path reads `return rt_fail(err, FUSE_E_IO, "%s: ...", path);`. */
fuse_status rt_fail(char **err, fuse_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- exec.c: compiling and running a program (the lead's section) ---- */

typedef void (*RtKernel)(float **bufs);

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
} RtPlan;

/* Parses, builds, checks shapes (reading source headers) and, when js is not NULL,
 * compiles. Diagnostics go to plan->dl; on failure the plan must still be freed
 * with rt_plan_free. `inputs` fix the shapes of the tensors they name. */
fuse_status rt_plan_new(RtPlan **out, const char *text, const char *name,
                        const char *base_dir, const char *out_dir, bool write_sinks,
                        const fuse_input *inputs, size_t n_inputs,
                        struct JitSession *js, const char *prefix);
void rt_plan_free(RtPlan *plan);

/* Runs the plan once: sources (or inputs), kernels, sinks. Errors in plan->dl. */
fuse_status rt_plan_run(RtPlan *plan, const fuse_input *inputs, size_t n_inputs);

/* Emits the plan's code again as text: "llvm", "llvm-raw" or "asm". */
fuse_status rt_plan_emit(RtPlan *plan, const char *what, char **out, char **err);

#endif /* FUSE_RUNTIME_H */
