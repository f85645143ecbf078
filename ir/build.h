/*
 * build.h: private to ir/ (build.c and calls.c): the state of one AST-to-IR build
 * and the helpers both files use. Later stages include only ir.h.
 */
#ifndef FUSE_IR_BUILD_H
#define FUSE_IR_BUILD_H

#include "ir.h"

typedef struct IrNameMap IrNameMap;

typedef struct Builder {
    IrProgram *p;
    DiagList *dl;
    fuse_status status;     /* the statement being built failed (reset per statement;
                               FUSE_E_NOMEM stays) */
    fuse_status result;     /* sticky: the program's first error */
    IrNameMap *unknown;     /* unknown tensor names already reported (one error each) */
    const Stmt *stmt;       /* statement being built */
    Group *group;           /* group being built */
    int group_index;
    bool group_has_init;    /* the group already has its first contribution */
    int n_temps;
} Builder;

/* One term of an expanded sum: coef * factors[0] * ... (factors are tensor refs,
 * calls or index functions). */
typedef struct Term {
    double coef;
    const Expr **factors;
    IrTensor **temps; /* NULL, or per factor the temporary already built for a call */
    int n;
} Term;

/* A value with named axes: tensor t read with names[s] on slot s. */
typedef struct Value {
    IrTensor *t;
    int rank;
    const char *names[FUSE_MAX_RANK];
} Value;

typedef struct TermList {
    Term **items;
    int n, cap;
} TermList;

/* Axis names of reference: the LHS of the equation (or a sink's axes). Products
 * inside call arguments are summed onto these; anonymous axes take them by
 * position. */
typedef struct NameList {
    const char **names;
    int n;
} NameList;

/* names.c: name -> int in an arena; keys are borrowed, not copied (IrNameMap is
 * declared above Builder). */
IrNameMap *ir_name_map_new(Arena *arena); /* NULL on OOM */
/* Adds key -> val unless key is present (the first value stays); false on OOM. */
bool ir_name_map_put(IrNameMap *m, const char *key, int val);
int ir_name_map_get(const IrNameMap *m, const char *key); /* -1 when absent */

/* build.c */
/* Reports the first error of the statement being built (later ones follow from
 * it and are not reported) and returns its status. */
fuse_status ir_fail(Builder *b, fuse_status code, Span span, const char *fmt, const char *arg);
/* Starts a statement: its errors are reported anew. False when the build must
 * stop (out of memory, or the error limit reached). */
bool ir_stmt_begin(Builder *b, const Stmt *st);
int ir_new_var(Builder *b);
IrTensor *ir_tensor_new(Builder *b, const char *name, TensorKind kind, int rank, Span span);
IrTensor *ir_temp_new(Builder *b, const char *what, int rank, const char **names, Span span);
Op *ir_op_new(Builder *b, OpKind kind, int out);
int ir_op_axis(Builder *b, Op *op, const char *name);
Operand *ir_op_operand(Builder *b, Op *op, int tensor, Span span);
bool ir_op_bind_out(Builder *b, Op *op, const char **names, int rank);
void ir_group_push(Builder *b, Op *op);
bool ir_expand(Builder *b, const Expr *e, TermList *out);
bool ir_tensor_operand(Builder *b, Op *op, const Expr *e);
bool ir_factor_operand(Builder *b, Op *op, const Expr *e, const NameList *ref);
bool ir_value_operand(Builder *b, Op *op, IrTensor *t, const char *const *names, Span span);
Group *ir_group_new(Builder *b, int tensor, bool is_sink);
bool ir_join_term(Builder *b, IrTensor *out, const char **names, const Term *term,
                  ReduceOp red, bool is_init, const NameList *ref);

/* chain.c: splits a plain sum join of 3+ factors (op, not yet
 * pushed, writing `out` axes) into pairwise joins through temporaries pushed to
 * the group first; op keeps the last pair. False only on OOM/errors. */
bool ir_chain_split(Builder *b, Op *op, const char **out, int out_rank);

/* calls.c */
/* Materialises a call or index function into a new temporary; NULL on error. */
IrTensor *ir_build_call(Builder *b, const Expr *call, const NameList *ref);
/* Materialises any expression into a tensor with named axes; NULL on error. */
bool ir_build_value(Builder *b, const Expr *e, const NameList *ref, Value *out);
/* Builds one group per sink statement. */
void ir_build_sinks(Builder *b);
/* Argument helpers; each reports a positioned error and returns false/NULL. */
const Kwarg *ir_kwarg_find(const Expr *call, const char *name);
bool ir_check_kwargs(Builder *b, const Expr *call, const char *const *allowed, int n);
bool ir_check_positional(Builder *b, const Expr *call, int min, int max);
/* The slot of x an axis= value names (a name, a string or a position). */
bool ir_axis_arg(Builder *b, const Expr *v, const Value *x, int *slot);
/* The first dotted LHS axis if x has it, else x's last slot (SPEC §5). */
int ir_default_axis(Builder *b, const Value *x);
/* A temporary with x's axes and an OP_MAP (not yet pushed) reading x into it. */
IrTensor *ir_map_output(Builder *b, const char *what, Value *x, Op **op_out);

/* builtins.c */
typedef IrTensor *(*BuiltinBuild)(Builder *b, const Expr *call, const NameList *ref);
/* The builder of the builtins defined in builtins.c (reductions, normalisers, case,
 * attention, rope), or NULL. Names are case-insensitive. */
BuiltinBuild ir_builtin_find(const char *name);

#endif /* FUSE_IR_BUILD_H */
