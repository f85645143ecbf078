/*
 * ir.h: the second stage of fuse-jit. The AST becomes a program of tensors and
 * loop-nest operations (Ops) grouped by the tensor they define; groups are put in
 * dependency order with recursive components marked; every axis gets a size by
 * unification (SPEC §2). Nothing here knows about LLVM or files: sizes of sources
 * come in from the runtime as ShapeFacts.
 *
 * The model: every Op is a loop nest over named LoopAxes. Operands read tensors at
 * positions computed from the loop counters (one loop axis per slot, plus a shift;
 * or a fixed position). A JOIN multiplies its operands and reduces the loop axes
 * its output does not have (sum, max or mean); a MAP applies a builtin elementwise;
 * a SOFTMAX normalises along one output axis. Every tensor slot and loop axis has a
 * size variable; shape inference unifies them.
 *
 * Memory: everything lives in the arena passed to ir_build.
 */
#ifndef FUSE_IR_H
#define FUSE_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "frontend.h"

/* Limits of one Op, checked while building (a program over them is an error, not a
 * crash): the lowering keeps per-axis and per-operand state in arrays this big. */
#define IR_MAX_OP_AXES 64
#define IR_MAX_OP_OPERANDS 64
#define IR_STR_(x) #x
#define IR_STR(x) IR_STR_(x)

typedef enum TensorKind {
    TEN_DEFINED, /* the LHS of one or more equations */
    TEN_SOURCE,  /* read from a file (or a runtime input) */
    TEN_CONST,   /* literal data known at compile time (const(...)) */
    TEN_TEMP,    /* an intermediate value inside one group (call results, sinks) */
    TEN_COUNT
} TensorKind;

typedef struct IrTensor {
    int id;                  /* index in IrProgram.tensors */
    const char *name;        /* program name; temporaries are "%3.relu" style */
    TensorKind kind;
    int rank;
    const char *axis_names[FUSE_MAX_RANK]; /* from the defining LHS (first equation) */
    int var[FUSE_MAX_RANK];  /* size variable of each slot */
    int64_t shape[FUSE_MAX_RANK]; /* filled by ir_infer_shapes */
    int dotted;              /* slot of the first dotted LHS axis, or -1 */
    bool is_bool;            /* defined with Name(...): values are 0/1, contributions OR */
    bool is_export;
    bool is_recursive;       /* its group is in a recursive component */
    bool is_read_prev;       /* some operand reads its previous-sweep value */
    Span span;               /* the defining statement (first one) */
    const Index *lhs_indices;/* its LHS indices (rank of them), or NULL: messages point
                                at the index of a slot */
    const char *path;        /* TEN_SOURCE: the file path as written */
    float *data;             /* TEN_CONST: count(shape) values, C order */
    bool is_fixed_shape;     /* shape[] known from the program (const, causal_mask) */
    const char *origin;      /* is_fixed_shape: what fixed it, for messages */
    Span origin_span;
    int group;               /* the group computing it (TEN_DEFINED/TEN_TEMP), or -1 */
    /* stream (SPEC §6.4): a slot of a streaming tensor's window */
    int stream;              /* 1 + its index in IrProgram.streams, or 0: not streaming */
    int64_t stream_offset;   /* the *t offset this slot holds */
    bool is_stream_state;    /* an earlier step (offset below the written one): a
                                TEN_SOURCE the runtime fills from its stored steps */
    /* set by the runtime before lowering: 1 + the fuse_precision its buffer holds
     * when that is not the runner's (a 16-bit source kept as it was bound);
     * 0: the runner's precision */
    int elem;
    /* set by the runtime before lowering: a quantised weight kept as stored
     * (lower.h: lower_quant_bytes): IR_QUANT_I8 or IR_QUANT_U8, 0: none. An
     * element is (q - zero_point) * scale, in float32, with the scale and zero
     * point of its position on axis quant_axis (-1: one of each) */
    int quant;
    int quant_axis;
} IrTensor;

enum { IR_QUANT_NONE, IR_QUANT_I8, IR_QUANT_U8 };

typedef struct LoopAxis {
    const char *name;
    int var;      /* size variable */
    int64_t size; /* filled by ir_infer_shapes */
} LoopAxis;

typedef enum SlotKind {
    SL_AXIS,  /* position = loop counter of `axis` + offset; out of range reads 0 */
    SL_FIXED, /* position = offset (an integer index; negative counts from the end) */
    SL_COUNT
} SlotKind;

typedef struct Operand {
    int tensor;
    SlotKind kind[FUSE_MAX_RANK];
    int axis[FUSE_MAX_RANK];       /* SL_AXIS: index into Op.axes */
    int64_t offset[FUSE_MAX_RANK]; /* SL_AXIS: shift (slices: the first position, set by
                                      shape inference); SL_FIXED: position (>= 0 after shapes) */
    bool reads_prev;               /* read the previous sweep's value (recursion) */
    Span span;
    const Index *indices;          /* the reference's indices (rank of them), or NULL (a
                                      value built from a call): for messages */
    const Index *slice[FUSE_MAX_RANK]; /* SL_AXIS read through a slice (X[0:3]), or NULL */
    int64_t step[FUSE_MAX_RANK];   /* slices: position = offset + step * counter */
} Operand;

/* RED_PROD and RED_MIN come from v2's reduce(prod|min, ...) only: no legacy
 * operator writes them, and contraction, fusion and semi-naive deltas take sums
 * (and max) only. */
typedef enum ReduceOp { RED_SUM, RED_MAX, RED_AVG, RED_PROD, RED_MIN, RED_COUNT } ReduceOp;

/* Elementwise functions of MAP ops. */
typedef enum MapFn {
    FN_COPY,
    FN_STEP,
    FN_RELU,
    FN_SIG,     /* param[0] = T, or operand 1 = T when n_in == 2 */
    FN_GELU,
    FN_EXP,
    FN_LOG,
    FN_TANH,
    FN_SQRT,
    FN_ABS,
    FN_SIN,
    FN_COS,
    FN_CAUSAL,  /* no operands: 1 where axis 0 >= axis 1 */
    FN_EVEN,    /* no operands: 1 where the loop counter of axis 0 is even */
    FN_ODD,
    FN_RECIP,   /* 1 / x (the v2 syntax's division a / b is a * recip(b)) */
    /* binary: operand 1 is the second argument, broadcast by axis name */
    FN_POW,     /* x ** y */
    FN_LT,      /* 1 where x < y, else 0; then <=, >, >=, ==, != */
    FN_LE,
    FN_GT,
    FN_GE,
    FN_EQ,
    FN_NE,
    FN_COUNT
} MapFn;

typedef enum OpKind {
    OP_JOIN,    /* out[o] (=|+=) coef * reduce_{projected} prod(in) */
    OP_MAP,     /* out[o] = fn(in...) over all loop axes (all are out axes) */
    OP_SOFTMAX, /* out = softmax(in) along out slot `axis` */
    OP_LNORM,   /* out = (in - mean) / sqrt(var + param[0]) along out slot `axis` */
    OP_MSOFTMAX,/* masked softmax along out slot `axis`: in[0] = x, in[1] = mask (kept where
                   nonzero; its axes are out axes); param[0] = fill, used only when
                   param[1] != 0 (masked entries then enter the sum with value fill);
                   masked entries are 0, a fully masked row is all 0 */
    OP_CASE,    /* in = c1, v1, c2, v2, ... [, default]: the first nonzero c wins, else
                   the default (0 when n_in is even); every operand axis is an out axis */
    OP_ROPE,    /* rotary embedding of in[0]: position = out slot 0, features = out slot
                   `axis` (size d); feature k pairs with k + d/2, angle
                   pos * param[0]^(-2k/d); with an odd d the last feature is copied */
    OP_HOST,    /* tucker: out = a runtime C function (Op.host_fn) of in[0], whose axes are
                   the out axes in the same order (the raw buffers have one layout) */
    OP_COUNT
} OpKind;

/* tucker: the runtime functions OP_HOST ops call (runtime/tucker.c). */
typedef enum HostFn {
    HOST_TUCKER, /* tucker_dense: param[0] = threshold, host_ranks = rank per out slot */
    HOST_COUNT
} HostFn;

typedef struct Op {
    OpKind kind;
    int out;                       /* tensor written */
    int out_axis[FUSE_MAX_RANK];   /* loop axis of each out slot */
    LoopAxis *axes;
    int n_axes;
    Operand *in;
    int n_in;
    ReduceOp red;                  /* OP_JOIN */
    double coef;                   /* OP_JOIN: scale of the product (RED_PROD: of each
                                      factor of the reduction) */
    bool is_init;                  /* first contribution: overwrite instead of add */
    bool is_bool_out;              /* threshold the contribution (> 0) and OR it in */
    MapFn fn;                      /* OP_MAP */
    double param[2];               /* OP_MAP (sig: T), OP_LNORM, OP_MSOFTMAX, OP_ROPE */
    int axis;                      /* OP_SOFTMAX, OP_LNORM, OP_MSOFTMAX, OP_ROPE: out slot */
    bool is_rsqrt_scaled;          /* OP_JOIN: coef also divided by sqrt(projected cells)
                                      (attention's default scale 1/sqrt(d)) */
    const Stmt *stmt;              /* the statement it comes from */
    bool is_contribution;          /* writes the group's LHS (not a temporary) */
    int concat_slot;               /* out slot written at an offset (concat part), or -1 */
    int64_t out_offset[FUSE_MAX_RANK]; /* added to out positions (concat parts) */
    int out_minor[FUSE_MAX_RANK];  /* 1 + a loop axis merged into this out slot as its
                                      minor index (one-argument concat), or 0: position
                                      = out_axis counter * minor size + minor counter */
    /* tucker: OP_HOST */
    HostFn host_fn;
    int64_t host_ranks[FUSE_MAX_RANK]; /* HOST_TUCKER: requested rank per out slot (>= 1;
                                          capped at the slot's size by the runtime) */
} Op;

/* A concatenation: the size of out's slot is the sum of the parts' sizes there,
 * and part i writes at the sum of the sizes before it. */
typedef struct Concat {
    int out;
    int slot;
    Op **parts;
    int n_parts;
    Span span;
} Concat;

typedef struct Group {
    int tensor;      /* the LHS tensor, or the sink's value */
    Op **ops;        /* in execution order: temporaries first, then contributions */
    int n_ops, cap_ops;
    int component;   /* strongly connected component id */
    bool is_recursive;
    bool is_sink;
} Group;

typedef struct Sink {
    const char *path;
    int group;       /* computes the value into Group.tensor */
    const Stmt *stmt;
    bool is_topk;
    int64_t k;       /* topk */
} Sink;

/* What the runtime knows of a source's or input's size before running. */
typedef struct ShapeFact {
    bool is_known;
    bool is_lower_bound; /* facts files and bags of words only bound sizes from below */
    int rank;
    int64_t dims[FUSE_MAX_RANK];
    const char *origin;  /* for messages, e.g. "\"ckpt/emb.npy\"" or "input X" */
} ShapeFact;

typedef struct IrProgram {
    Arena *arena;
    const Ast *ast;
    IrTensor **tensors;
    int n_tensors, cap_tensors;
    Group **groups;       /* equation groups in evaluation order (after ir_order) */
    int n_groups, cap_groups;
    Group **sink_groups;  /* run after every equation group */
    int n_sink_groups, cap_sink_groups;
    Sink **sinks;
    int n_sinks, cap_sinks;
    Concat **concats;
    int n_concats, cap_concats;
    int *exports;         /* tensor ids, in program order */
    int n_exports, cap_exports;
    int n_vars;           /* size variables */
    int n_components;
    bool is_shaped;       /* ir_infer_shapes succeeded */
    /* the streaming tensors (window.c) */
    struct IrStream **streams;
    int n_streams, cap_streams;
    /* tensor name -> id for ir_tensor_find (names.c), filled by
     * ir_tensor_new; NULL (a linear search) in programs not made by ir_build */
    struct IrNameMap *tensor_names;
} IrProgram;

/* stream (SPEC §6.4): a tensor indexed with a time axis `*t`. Time is not
 * a dense axis: each offset of the window is its own tensor (slot) without it. The
 * slot the equations write (for a source: the one its file or input fills) keeps
 * the program name; the slots read at earlier offsets are named "H@t-1" etc. (the
 * offset as the program writes it: "Hidden@t" when Hidden is written at *t+1). */
typedef struct IrStream {
    const char *name;     /* program name of the tensor */
    const char *axis;     /* the time axis ("t" for *t) */
    int tensor;           /* the written slot (plain name) */
    int64_t offset;       /* its *t offset (w) */
    int64_t lo;           /* the oldest offset read; the window is lo..offset */
    int *slots;           /* offset - lo + 1 entries: slots[o - lo] is the tensor of
                             offset o, or -1 when no equation reads that step */
    Span span;            /* the first left-hand side */
} IrStream;

/* ---- build.c: AST -> tensors, groups and ops ----
 * requires: a parsed Ast; provides: tensors, groups (source order), sinks, exports,
 * size variables. Errors: unknown tensors, rank mismatches, unknown builtins... */
fuse_status ir_build(Arena *arena, const Ast *ast, DiagList *dl, IrProgram **out);

/* Tensor lookup by program name; NULL when absent (names.c: a hash lookup, O(1)). */
IrTensor *ir_tensor_find(const IrProgram *p, const char *name);

/* The program tensor nearest `name` in spelling (sup_nearest), for a "did you
 * mean" hint; NULL when none is near (or on OOM). */
const char *ir_tensor_nearest(const IrProgram *p, const char *name);

/* ---- order.c: dependency order and recursion ----
 * requires: ir_build; provides: groups in topological order, components, operands
 * reading the previous sweep inside recursive components. */
fuse_status ir_order(IrProgram *p, DiagList *dl);

/* ---- shapes.c: size inference by unification ----
 * requires: ir_build; `facts` has p->n_tensors entries (sources and inputs filled
 * in). provides: every tensor shape and loop axis size, fixed positions normalised. */
fuse_status ir_infer_shapes(IrProgram *p, const ShapeFact *facts, DiagList *dl);

/* ---- explain.c: static explanation and dumps ---- */

/* Static explanation (sources, equations, sinks, order, components) as text or
 * JSON. malloc'd; caller frees. NULL on OOM. */
char *ir_explain(const IrProgram *p, bool json);
/* The IR as text (tensors with shapes, groups with their ops). malloc'd. */
char *ir_dump(const IrProgram *p);

/* ---- builtins.c: checks that need sizes ----
 * requires: ir_infer_shapes; provides: positioned errors for builtins whose
 * arguments are valid only for some sizes (rope's feature axis must be even). */
fuse_status ir_check_builtins(const IrProgram *p, DiagList *dl);

/* ---- builtins.c: the table of builtins ----
 * Every builtin a program can call, with the text `fuse-jit repl`'s :help prints
 * (docs/builtins.md shows the same signatures; a test compares them). The
 * compiler finds the builders of builtins.c's builtins in the same table; the
 * others (elementwise, softmax, concat, const, causal_mask, the sink-only topk and
 * the index functions even and odd) are built by calls.c and the parser, and a
 * test (test_repl.c) checks every example of the table with the compiler.
 * Internal entries (the builtins v2's comparison operators and `/` lower to) are
 * not listed. */
typedef struct IrBuiltinInfo {
    const char *name;
    const char *alias_of;  /* the builtin this is another name of, or NULL */
    const char *signature; /* arguments and keywords: "softmax(x, axis=)" */
    const char *axes;      /* the axes of the result */
    const char *summary;   /* what it computes, one line */
    const char *example;   /* a small program using it (lines end with '\n') */
    bool is_internal;      /* not written by programs: no help, no completion */
} IrBuiltinInfo;

/* The number of entries of the table, and entry i (NULL when i is out of range). */
size_t ir_builtin_count(void);
const IrBuiltinInfo *ir_builtin_info(size_t i);
/* The entry called `name` (case-insensitive, like calls), or NULL. */
const IrBuiltinInfo *ir_builtin_lookup(const char *name);

/* ---- serialize.c: canonical serialisation (cache key) ----
 * requires: ir_infer_shapes; provides: *out (malloc'd, *n bytes) describing every
 * fact lowering reads, without spans, names or paths: equal for programs that differ
 * only in comments, whitespace or names. FUSE_E_ARG when p is not shaped. */
fuse_status ir_serialize(const IrProgram *p, unsigned char **out, size_t *n);
/* the same for the kernel of one group g of p (the per-group cache
 * key): its ops and the shapes of the tensors they touch; scratch_bytes is the
 * program's per-thread scratch when g has a contraction, else 0 (serialize.c says what
 * goes in). */
fuse_status ir_serialize_group(const IrProgram *p, const Group *g, int64_t scratch_bytes,
                               unsigned char **out, size_t *n);

/* Names for messages and dumps. */
const char *ir_op_kind_name(OpKind k);
const char *ir_map_fn_name(MapFn fn);
const char *ir_reduce_name(ReduceOp r);

#endif /* FUSE_IR_H */
