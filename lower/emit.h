/*
 * emit.h: private to lower/: the emission state shared by lower.c (module and
 * kernel functions) and emit.c (loop nests of single ops), and small builder
 * helpers. Later stages include only lower.h.
 */
#ifndef FUSE_LOWER_EMIT_H
#define FUSE_LOWER_EMIT_H

#include <llvm-c/Core.h>

#include "lower.h"

#define EMIT_MAX_AXES 64
_Static_assert(EMIT_MAX_AXES >= IR_MAX_OP_AXES && EMIT_MAX_AXES >= IR_MAX_OP_OPERANDS,
               "the IR's limits of one op must fit the emitter's arrays");

typedef struct Emit {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef bld;
    /* t_f32 is the compute type (float; double under fp64), t_store the element
     * type of tensor buffers (elem.c; t_f32 itself under fp32 and fp64) */
    LLVMTypeRef t_f32, t_store, t_i64, t_i1, t_ptr, t_void;
    const IrProgram *p;
    const LowerOptions *opt;
    /* per op function */
    LLVMValueRef fn;
    const Op *op;
    LLVMValueRef v_out;                      /* out buffer */
    LLVMValueRef v_in[EMIT_MAX_AXES];        /* operand buffers */
    LLVMValueRef v_counter[EMIT_MAX_AXES];   /* loop counters (i64), per loop axis */
    /* fusion: operand i's value when it is kept in a register (not NULL) */
    LLVMValueRef v_reg_in[EMIT_MAX_AXES];
    /* team ops (a cell run, a row-wise op on a thread team): the loop over axis
     * share_axis (-1: none) runs only thread v_tid's share of it, of v_nth */
    int share_axis;
    LLVMValueRef v_tid, v_nth;
    /* the run's stop flag (a ptr to an i32 the host sets to interrupt the run)
     * in the function being built; NULL: the function has none */
    LLVMValueRef v_stop;
} Emit;

/* A loop being emitted: counter from 0 to n-1, body in the header block; a
 * shared loop (is_shared) runs rows lo..hi-1 of the thread, tested at the top. */
typedef struct Loop {
    int axis;
    bool is_trivial;        /* size 1: no loop, counter is 0 */
    bool is_shared;
    LLVMBasicBlockRef header, exit;
    LLVMValueRef v_phi;
    /* set by emit_loop_stop_check: where the rest of an iteration goes once the
     * run is stopped (emit_loop_end closes it); NULL: no check */
    LLVMBasicBlockRef resume;
} Loop;

/* lower.c: zeroes e and sets up the builder and types for module mod. */
void emit_state_init(Emit *e, const IrProgram *p, LLVMModuleRef mod, const LowerOptions *opt);

/* emit.c: combines a finished JOIN contribution value into the current output
 * cell (threshold and OR for booleans; overwrite on the first contribution). */
void emit_store_contribution(Emit *e, LLVMValueRef v);

/* emit.c */
/* fusion: one cell of the current op (a MAP or a sum JOIN without projected axes)
 * at the current counters: stored into its output, or with store false (a MAP or
 * a first contribution whose result stays in a register) only returned. */
LLVMValueRef emit_cell(Emit *e, bool store);
/* Emits the internal function computing one op; returns it (NULL on failure).
 * is_team (a row-wise op lower_row_op_is_team accepts): two more parameters,
 * i64 tid and nth, and the thread computes only its share of the rows of the
 * op's first out slot. The last parameter is always the stop flag (ptr; see
 * emit_never_stop for callers without one). */
LLVMValueRef emit_op_function(Emit *e, const Op *op, const char *name, bool is_team);

/* ---- stopping a run (emit.c) ----
 * A kernel cannot return early (a thread team meets at barriers between ops), so
 * once the host sets the stop flag a long loop nest skips the rest of its
 * blocks: once per iteration of one outer loop whose iteration covers at least
 * EMIT_STOP_BLOCK_CELLS cells, it loads the flag (a relaxed atomic load) and, when
 * it is set, skips that iteration's work. Ops of fewer than EMIT_STOP_MIN_CELLS
 * cells do not check (they take a millisecond or so). */
enum { EMIT_STOP_BLOCK_CELLS = 1 << 12, EMIT_STOP_MIN_CELLS = 1 << 20 };
/* A pointer to an i32 0 in the module (internal constant): the stop flag of a
 * kernel the host cannot interrupt (the check then folds away). */
LLVMValueRef emit_never_stop(Emit *e);
/* The index of the loop of a nest over `axes` (outermost first; each iteration
 * of the innermost does inner_cells cells) that checks the flag: the innermost
 * loop of size > 1 whose iteration covers EMIT_STOP_BLOCK_CELLS cells or more;
 * -1 for none (no flag, a small op, no such loop). */
int emit_stop_level(const Emit *e, const int *axes, int n, int64_t inner_cells);
/* The rest of loop l's body (until emit_loop_end) runs only while the flag is
 * clear; nothing without a flag or for a trivial loop. */
void emit_loop_stop_check(Emit *e, Loop *l);
/* For hand-made loops (contract.c): code until emit_unless_stopped_end runs only
 * while the flag is clear; returns the block after it (NULL: no flag, no check). */
LLVMBasicBlockRef emit_unless_stopped_begin(Emit *e);
void emit_unless_stopped_end(Emit *e, LLVMBasicBlockRef after);

/* Builder helpers (emit.c) */
/* Marks a hand-made loop (its latch branch) for the unroller and the loop
 * vectoriser to leave alone. */
void emit_leave_loop_alone(Emit *e, LLVMValueRef latch_br);
LLVMValueRef emit_f32(Emit *e, double v);
LLVMValueRef emit_i64(Emit *e, int64_t v);
LLVMValueRef emit_intrinsic1(Emit *e, const char *name, LLVMValueRef x);
LLVMValueRef emit_intrinsic2(Emit *e, const char *name, LLVMValueRef x, LLVMValueRef y);
void emit_fast(LLVMValueRef inst);
/* A JOIN's reduction step and its identity. max= scales the product by the
 * coefficient before projecting (SPEC §1): for a negative coefficient the
 * accumulator takes the min of the unscaled products, which coef then turns into
 * the max of the scaled ones. */
LLVMValueRef emit_reduce_init(Emit *e, const Op *op);
LLVMValueRef emit_reduce_step(Emit *e, const Op *op, LLVMValueRef acc, LLVMValueRef x);
/* A float slot in the entry block (so loops may reuse it without stack growth). */
LLVMValueRef emit_entry_alloca(Emit *e, const char *name);
/* The same for a slot of type `ty`. */
LLVMValueRef emit_entry_alloca_type(Emit *e, LLVMTypeRef ty, const char *name);
/* In the function being built (e->bld's), code until emit_thread0_end runs only
 * where the thread index `tid` (an i64 value) is 0; returns the block after it. */
LLVMBasicBlockRef emit_thread0_begin(Emit *e, LLVMValueRef tid);
void emit_thread0_end(Emit *e, LLVMBasicBlockRef after);
/* Opens the loop over op axis `axis` (no loop for size 1; only the thread's
 * share of it when it is e->share_axis); its counter is e->v_counter[axis]
 * until emit_loop_end. */
Loop emit_loop_begin(Emit *e, int axis);
void emit_loop_end(Emit *e, Loop *l);
/* Operand i at the current counters (0 where a shifted read leaves range). */
LLVMValueRef emit_load_operand(Emit *e, int i);
/* Address of the output cell at the current counters. */
LLVMValueRef emit_out_addr(Emit *e);

/* ---- elem.c: tensor elements in their storage type ----
 * Every load from and store to a tensor buffer goes through these, so one
 * precision setting changes them all; under fp32 they emit exactly what a plain
 * float load, store or GEP would. v and ty may be scalars or vectors. A
 * buffer holds the runner's precision, or (IrTensor.elem) a 16-bit source's
 * own type, widened on every load. */
void elem_types_init(Emit *e);
/* &base[off] in the buffer of tensor t (an id of e->p) */
LLVMValueRef emit_tensor_gep(Emit *e, int t, LLVMValueRef base, LLVMValueRef off,
                             const char *name);
/* a value of compute type ty (scalar or vector) loaded from tensor t's buffer
 * (align: bytes the load may claim; 0: the type's) */
LLVMValueRef emit_tensor_load(Emit *e, int t, LLVMTypeRef ty, LLVMValueRef ptr, unsigned align,
                              const char *name);
/* stores compute value v into tensor t's buffer; returns the store */
LLVMValueRef emit_tensor_store(Emit *e, int t, LLVMValueRef v, LLVMValueRef ptr);
/* A scalar element of tensor t at element offset `off` (i64) from its buffer's
 * start `base`, in the compute type: emit_tensor_load, or, for a quantised
 * weight (IrTensor.quant), its dequantised value. */
LLVMValueRef emit_tensor_load_at(Emit *e, int t, LLVMValueRef base, LLVMValueRef off,
                                 const char *name);
/* n consecutive elements of quantised weight t from element offset `off` of
 * its buffer `base`, dequantised, as a vector of the compute type (contraction
 * packing; elem.c) */
LLVMValueRef emit_quant_load_vector(Emit *e, int t, LLVMValueRef base, LLVMValueRef off,
                                    unsigned n);
/* whether tensor t is a quantised weight (emit_tensor_load_at and
 * emit_quant_load_vector read it) */
bool emit_is_quantised(const Emit *e, int t);
/* bytes of one element of tensor t's buffer (the alignment an access may claim) */
unsigned emit_store_bytes(const Emit *e, int t);
/* v (float or double, scalar) as type ty: fpext, fptrunc or v itself */
LLVMValueRef emit_fpcast(Emit *e, LLVMValueRef v, LLVMTypeRef ty, const char *name);
/* the compute type is double (fp64) */
bool emit_is_f64(const Emit *e);

/* emit_rows.c: ops over rows (every out axis but op->axis) and elementwise
 * multi-operand ops */
void emit_lnorm(Emit *e);
void emit_masked_softmax(Emit *e);
void emit_case(Emit *e);
void emit_rope(Emit *e);

/* emit_host.c (tucker): an OP_HOST op as a call of its runtime function */
void emit_host(Emit *e);

#endif /* FUSE_LOWER_EMIT_H */
