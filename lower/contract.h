/*
 * contract.h: private to lower/: the contraction kernel (contract.c). A sum join
 * of two operands whose axes split into batch, M, N and K groups is emitted as a
 * BLIS-style packed, cache-blocked kernel with a register-blocked vector
 * micro-kernel instead of a plain loop nest.
 */
#ifndef FUSE_LOWER_CONTRACT_H
#define FUSE_LOWER_CONTRACT_H

#include "emit.h"

/* One axis of a group: its size and its element stride in out, A and B (0 where
 * the tensor does not have it). */
typedef struct CAxis {
    int64_t size;
    int64_t stride[3];
    int axis;                 /* the op's loop axis (fusion decodes counters) */
} CAxis;

/* Axes of one group, outermost first; a flat index x of the group is the mixed
 * radix number of the axis counters. */
typedef struct CGroup {
    CAxis ax[EMIT_MAX_AXES];
    int n;
    int64_t total;
} CGroup;

typedef struct Contraction {
    CGroup batch, m, n, k;
    int a, b;                 /* operand index of A (has the M axes) and of B */
    int64_t vw;               /* compute elements per vector */
    int64_t csize;            /* bytes of a compute element (4, or 8 under fp64) */
    unsigned esize;           /* bytes of a tensor (storage) element */
    int64_t mr, nr;           /* micro-tile: mr rows x nr (= 2 vw) columns */
    int64_t kc, mc, nc;       /* cache blocks */
    double coef;
    bool is_n_contiguous;     /* out offset of flat n is n */
    bool is_split_m;          /* threads share out M (rows), not N: a thin product, or
                                 LowerOptions.split_rows with is_m_leading */
    bool is_m_leading;        /* M is one axis, the output's axis 0 (its rows), no batch */
    bool is_bool;             /* boolean output: out = out OR (coef * sum > 0); K is one
                                 block (kc = K), so the whole sum is in the registers */
    /* fusion (fusion.c): the elementwise ops after the contraction in its group that
     * run in its write-out, on each finished tile; 0: none */
    const Op *const *epi;
    int n_epi;
    int epi_tensor[EMIT_MAX_AXES]; /* tensors of the extra kernel parameters */
    int n_epi_tensors;
    bool epi_reg[EMIT_MAX_AXES];   /* epi[j]'s result (a temporary) stays in a register */
} Contraction;

/* Classifies op as a contraction the kernel covers and fills c (blocking from
 * opt and the host's cache sizes). False: use the plain loop nest. */
bool contract_classify(const IrProgram *p, const Op *op, const LowerOptions *opt,
                       Contraction *c);

/* The rows of a micro-panel (Contraction.mr) of every contraction under opt. */
int64_t contract_mr(const LowerOptions *opt);

/* Bytes of packing scratch c needs per thread (lower_scratch_bytes: the largest). */
size_t contract_scratch_bytes(const Contraction *c);

/* Emits `internal void NAME(ptr out, ptr in0, ptr in1, ptr scratch, i64 tid,
 * i64 nth, [ptr epilogue buffer...,] ptr stop)`: the operands in op order, this
 * thread's scratch, the thread's index and team size (it computes only its share
 * of the output columns), fusion's buffers, and the run's stop flag. */
LLVMValueRef contract_emit_function(Emit *e, const Op *op, const Contraction *c,
                                    const char *name);

/* ---- fusion.c: elementwise epilogues in the contraction's write-out ---- */

/* How many ops after g->ops[i] (a contraction classified as c) run fused in its
 * write-out; sets c's epilogue fields (0 and none when nothing fuses). Depends
 * only on the group's ops and the tensors they touch. */
int fuse_epilogue(const IrProgram *p, const Group *g, int i, Contraction *c);

/* Emits the epilogue of one finished output cell: the loop counters of the
 * contraction's axes are ctr[axis] (size-1 axes: 0); extra[j] is the buffer of
 * tensor c->epi_tensor[j]. */
void fuse_emit_cell(Emit *e, const Contraction *c, LLVMValueRef *ctr, const LLVMValueRef *extra);

#endif /* FUSE_LOWER_CONTRACT_H */
