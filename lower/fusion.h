/*
 * fusion.h: private to lower/: runs of elementwise ops that share one pass over
 * their cells (fusion.c). A contraction's epilogue is declared in contract.h;
 * this header has the "cell run": an elementwise op (the head) and the
 * following ops of its group over exactly its cells, emitted as one loop nest.
 */
#ifndef FUSE_LOWER_FUSION_H
#define FUSE_LOWER_FUSION_H

#include "emit.h"

/* A head (ops[0]) and the n ops after it in its group that run in its pass. */
typedef struct FuseRun {
    const Op *const *ops;
    int n;
    bool reg[EMIT_MAX_AXES + 1];   /* ops[j]'s result (a temporary) stays in a register */
    int tensor[EMIT_MAX_AXES];     /* the distinct tensors the run's function takes */
    int n_tensors;
} FuseRun;

/* How many ops after g->ops[i] (not a contraction) run in its cell run; fills r
 * (its tensors are the run function's parameters, in order). 0 when op i is not
 * an elementwise head or nothing follows it. Reads only the group's ops and the
 * tensors they touch. */
int fuse_cell_run(const IrProgram *p, const Group *g, int i, FuseRun *r);

/* Emits `internal void NAME(ptr noalias t0, ..., i64 tid, i64 nth, ptr stop)`
 * (r->tensor order): one loop nest over the head's cells, each cell running every
 * op of r in order; thread tid of a team of nth takes its share of the outermost
 * slot (tid 0 of 1: all of it); a large run checks the stop flag (emit.h). */
LLVMValueRef fuse_emit_run_function(Emit *e, const FuseRun *r, const char *name);

#endif /* FUSE_LOWER_FUSION_H */
