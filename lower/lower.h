/*
 * lower.h: the third stage of fuse-jit. A shaped IR program becomes one LLVM module
 * (through the LLVM-C API) with one kernel function per group. All sizes are
 * constants in the emitted IR: a different input shape is a different module.
 *
 * Kernel ABI: `void KERNEL(float **bufs, int64_t tid, int64_t nth,
 * void (*barrier)(void), const atomic_int *stop)`. bufs[t] is the current buffer
 * of tensor t (C order, 64-byte aligned; elements float32, or as
 * LowerOptions.precision says); bufs[n_tensors + t] is its
 * previous-sweep buffer when the tensor is read by a recursive component
 * (IrTensor.is_read_prev);
 * bufs[2 n_tensors] is scratch of nth x lower_scratch_bytes bytes (contraction
 * panels, one slice per thread). A kernel for which lower_group_is_parallel is
 * true may be called by every thread of a team at once (tid 0..nth-1, `barrier`
 * the team's barrier); any kernel may be called alone with tid 0, nth 1 and a
 * barrier that does nothing. `stop` is never NULL: once the host sets it (to
 * interrupt the run), long loop nests skip their remaining blocks, so the kernel
 * ends early but still reaches every barrier (emit.h: stopping a run). It is
 * passed at each call, never compiled in: cached code serves every context.
 */
#ifndef FUSE_LOWER_H
#define FUSE_LOWER_H

#include <stddef.h>

#include <llvm-c/Core.h>

#include "ir.h"

typedef struct LowerOptions {
    const char *prefix; /* prepended to kernel names; unique per runner */
    int vector_bits;    /* widest vectors to prefer (jit_vector_bits) */
    /* cache sizes for the contraction kernels' blocking, bytes; 0 = the
     * host's (sysconf). They change code, so they are part of the cache key. */
    int64_t l1_bytes, l2_bytes, l3_bytes;
    bool no_contract;   /* plain loop nests only (tests compare both paths) */
    /* the element type of every tensor buffer (storage): fp32 (0, the default),
     * fp64 (arithmetic in double), bf16 or fp16 (arithmetic in float, a value
     * widened on load and rounded to nearest even on store); lower/elem.c */
    fuse_precision precision;
    bool soft_half;     /* fp16 conversions as integer ops (host without F16C) */
    /* a contraction whose M is the output's leading axis shares its rows (M
     * panels) among a team instead of its columns, so each thread's share is a
     * block of whole output rows: a distributed run keeps such outputs as row
     * blocks (dist.h). Each thread then packs all of B. */
    bool split_rows;
} LowerOptions;

/* Bytes of one element of a tensor buffer under opt (storage), and of the type
 * arithmetic runs in (compute: packed panels, scratch). */
size_t lower_store_bytes(const LowerOptions *opt);
size_t lower_compute_bytes(const LowerOptions *opt);

/* A quantised weight (IrTensor.quant) keeps its count int8/uint8 elements in
 * its buffer, then, at lower_quant_table_offset(count) bytes (64-byte
 * aligned), its float32 scales and then its float32 zero points, `dim` of each
 * (the size of IrTensor.quant_axis, or 1). They are data the kernels read at
 * run time, so the code (and its cache key) does not depend on their values.
 * lower_quant_bytes: the whole buffer. */
int64_t lower_quant_table_offset(int64_t count);
int64_t lower_quant_bytes(int64_t count, int64_t dim);
/* the dim of tensor t's tables (1 unless quantised per axis) */
int64_t lower_quant_dim(const IrTensor *t);

/* Bytes of scratch one thread needs in bufs[2 * n_tensors] (packed contraction
 * panels; a multiple of 64); 0 when none. The plan allocates it. */
size_t lower_scratch_bytes(const IrProgram *p, const LowerOptions *opt);

/* Whether group g has work for a thread team: a contraction kernel of at least
 * 2^20 multiply-adds and more than one panel to share, or a cell run (fusion.c) of
 * at least 2^16 cells whose outermost slot has 2 or more rows. */
bool lower_group_is_parallel(const IrProgram *p, const Group *g, const LowerOptions *opt);

/* Whether group g's kernel shares out whole rows of its output's axis 0 when a
 * team of nth threads runs it: every call of it (a contraction with its
 * epilogue, a cell run, a team row-wise op) shares the same blocks of rows,
 * and a call reads what an earlier one wrote only row for row, so thread s
 * writes, and reads of the group's own tensors, exactly the rows
 * [s * chunk, min((s + 1) * chunk, rows)); sets *chunk. False for any other
 * kernel (a contraction sharing columns, a call on thread 0 alone). */
bool lower_group_row_chunk(const IrProgram *p, const Group *g, const LowerOptions *opt,
                           int64_t nth, int64_t *chunk);

/* The rows a loop nest shared by a team of nth gives each thread (emit.c
 * share_begin): ceil(rows / nth), or with opt->split_rows rounded up to whole
 * micro-panels of the contractions (lower_row_quantum rows), so that a
 * distributed run's loop nests and products cut the same row blocks. */
int64_t lower_row_quantum(const LowerOptions *opt);
int64_t lower_row_block(int64_t rows, int64_t nth, const LowerOptions *opt);

/* Whether op reads its operand k row for row: the operand's first slot is the
 * op's output's first slot (same loop axis, no shift or slice, same size), so
 * a thread writing output rows [lo, hi) reads only rows [lo, hi) of it. */
bool lower_reads_own_rows(const IrProgram *p, const Op *op, int k);

/* Floating-point operations of one run of p's joins: 2 x the loop cells of every
 * sum join (equation and sink groups). */
uint64_t lower_flops(const IrProgram *p);

/* The kernel name of equation group i (is_sink false) or sink group i. */
void lower_kernel_name(const LowerOptions *opt, bool is_sink, int i, char *buf, size_t n);

/* a subset of a program's groups, each under a kernel name of the
 * caller's choice (the code cache names kernels after their group's content). */
typedef struct LowerGroup {
    bool is_sink;     /* sink group `index` rather than equation group `index` */
    int index;
    const char *name; /* the exported kernel's name */
} LowerGroup;

/* Emits the n selected groups of p into mod, each a kernel of the ABI above under
 * its given name (the scratch stride is lower_scratch_bytes of p). */
fuse_status lower_groups(const IrProgram *p, const LowerGroup *sel, int n, LLVMModuleRef mod,
                         const LowerOptions *opt, char **err);

/* how many ops after g->ops[i] run fused in op i's kernel:
 * a contraction's epilogue (its write-out) or an elementwise op's cell run (one
 * loop nest over its cells); 0 when op i runs alone. p must be shaped. Reads
 * only the group's ops, the tensors they touch and opt. */
int lower_run_length(const IrProgram *p, const Group *g, int i, const LowerOptions *opt);

/* fusion across equations (runtime/plan_compile.c): true when, in the
 * group `merged` made of a group's ops followed by those of the next equation
 * (from op index `first` on), every op of the next equation runs inside a pass
 * that starts before it (a contraction's write-out or an elementwise loop), so
 * lowering both as one kernel saves the next equation its passes over memory. */
bool lower_fuses_across(const IrProgram *p, const Group *merged, int first,
                        const LowerOptions *opt);

/* ---- emit_mc.c: Monte Carlo projection kernels ----
 * Issue 6, SPEC §6.5. Every
 * group gets a kernel `void PREFIXmG(float **bufs)` in which each JOIN with
 * projected axes evaluates only `samples` joint projected cells, drawn uniformly
 * with replacement by a counter-based hash of (seed, group, op, sample) at compile
 * time: one draw per equation, shared by its output cells, so threads and runs
 * cannot change the result. Sum is estimated as mean * P, avg as mean, max as
 * max and min as min (P: the number of projected cells). An op with samples >= P
 * is exact (its ordinary loop nest), and so is a product. Other ops are the
 * ordinary loop nests.
 */

/* The Monte Carlo kernel name of group g. */
void lower_mc_name(const LowerOptions *opt, int g, char *buf, size_t n);

/* Samples used by group g's op i (0: the op is exact). */
int64_t lower_mc_op_samples(const IrProgram *p, const Op *op, int64_t samples);

/* Emits the Monte Carlo kernel of every equation group. */
fuse_status lower_mc_program(const IrProgram *p, LLVMModuleRef mod, const LowerOptions *opt,
                             int64_t samples, uint64_t seed, char **err);

/* ---- emit_delta.c: semi-naive delta kernels ----
 * Issue 6. For a boolean
 * recursive group whose contributions are joins with at most one recursive
 * operand, the delta kernel `void PREFIXdG(float **bufs, int64_t tid, int64_t nth,
 * void (*barrier)(void), const atomic_int *stop)` (the group kernel ABI: it may
 * run on a thread team) runs only the recursive joins, driven by that operand
 * (read from bufs[n_tensors + t], which the runtime binds to the delta
 * relation): the loops over its axes come first and a zero cell skips the rest
 * of the nest, so the work is proportional to the new facts. Each cell where
 * some product of the other operands is > 0 is OR-ed into the output (correct
 * when every other operand is non-negative: the runtime checks). The base
 * kernel is `void PREFIXbG(float **bufs)`.
 */

/* Whether tensor t is computed by a group of recursive component comp. */
bool lower_in_component(const IrProgram *p, int comp, int t);

/* True when group g can have a delta kernel (static checks only). */
bool lower_delta_eligible(const IrProgram *p, int g);

/* A recursive join of group g, `driver other`, whose other operand is a plain
 * reference to a tensor outside the component, every axis of it the driver's
 * but one, its free slot, which is the only other axis of the join (Edge in
 * `Path(x,z) = Path(x,y) Edge(y,z)`, slot 1, or in `Path(x,z) = Edge(x,y)
 * Path(y,z)`, slot 0), reads that operand through its index of non-zeros: per
 * fact only the cells along the free slot that are > 0, not a loop over all of
 * them. The index of tensor t along slot f, rows = count / shape[f] (a row:
 * the other slots' positions, row-major): int64 starts[rows + 1], then the
 * positions along f of the cells > 0, row after row (row r's at starts[r] ..
 * starts[r + 1] - 1, increasing). While a delta kernel runs, the runtime binds
 * it to bufs[n_tensors + t], or NULL there, which makes the join loop over the
 * whole axis (a dense operand, or one read along two slots). Returns that
 * operand's position in op->in and sets *slot (when not NULL), or -1. */
int lower_delta_sparse_operand(const IrProgram *p, int g, const Op *op, int *slot);

/* Whether every join of group g's delta kernel shares out the rows of the
 * output's axis 0 on a team of nth (as lower_group_row_chunk; each join's first
 * driver axis is that axis); sets *chunk. */
bool lower_delta_row_chunk(const IrProgram *p, int g, int64_t nth, const LowerOptions *opt,
                           int64_t *chunk);

/* The delta kernel name of group g; with is_base, the name of its base kernel
 * `void PREFIXbG(float **bufs)`, which runs only the joins without a recursive
 * operand (the first semi-naive sweep: the recursive ones would read nothing). */
void lower_delta_name(const LowerOptions *opt, int g, bool is_base, char *buf, size_t n);

/* Emits the delta kernels of the groups with want[g] (each must be eligible). */
fuse_status lower_delta_program(const IrProgram *p, LLVMModuleRef mod, const LowerOptions *opt,
                                const bool *want, char **err);

/* ---- emit_host.c: runtime functions called by generated code ----
 * The runtime functions that generated code calls (OP_HOST ops, tucker).
 * lower/emit_host.c declares them in the module as external functions by these
 * names; the runtime defines them in every JITDylib of its session as absolute
 * symbols (rt_host_symbols_define, runtime/tucker.c), so cached object files
 * never hold an address of this process.
 */

/* void fuse_rt_tucker_dense(float *out, const float *in, int64_t order,
 *                           const int64_t *shape, const int64_t *ranks,
 *                           double threshold)
 * in and out: C-order float32 tensors of `order` axes with sizes shape[];
 * ranks[k] >= 1 is the rank kept on axis k (capped at its size). */
#define LOWER_HOST_TUCKER "fuse_rt_tucker_dense"

#endif /* FUSE_LOWER_H */
