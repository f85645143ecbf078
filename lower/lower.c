/*
 * lower.c: a shaped IR program as one LLVM module.
 *
 * Each op is an internal function with noalias buffer parameters (emit.c); each
 * group is an exported kernel `void PREFIXgN(float **bufs, int64_t tid, int64_t
 * nth, void (*barrier)(void), const atomic_int *stop)` that loads the buffers of
 * its ops from the table and calls them in order, passing each the stop flag.
 * O3 inlines the op functions (of a group of at most
 * INLINE_MAX_CALLS calls) and keeps the noalias facts as scoped metadata, except
 * the light ones (mark_light: contraction kernels and ops of few cells), which
 * jit.c optimises with a light pipeline and keeps out of line. Sum
 * joins that are contractions get a packed, blocked kernel instead (contract.c)
 * that also takes its thread's scratch (bufs[2 n_tensors] + tid x the scratch
 * size), tid and nth, and computes only thread tid's share of the output
 * (columns, or rows of a thin product).
 * Following elementwise ops of the group run inside an earlier op's pass
 * (fusion.c): a contraction's epilogue, or a cell run (one loop nest for an
 * elementwise op and the ops over its cells). Every thread of a team runs the
 * kernel: contractions, cell runs and large row-wise ops (softmax, layer norm)
 * split their work by thread; other ops run on thread 0 only, and when the group
 * has team work, `barrier` (the team's barrier, or a no-op) separates
 * consecutive calls. lower_groups emits the kernels it is given into one module;
 * runtime/plan_compile.c gives each compiling thread's module its share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "fold.h"
#include "fusion.h"

void lower_kernel_name(const LowerOptions *opt, bool is_sink, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s%c%d", opt->prefix ? opt->prefix : "", is_sink ? 's' : 'g', i);
}

/* Loads bufs[index] as a pointer. */
static LLVMValueRef buffer_of(Emit *e, LLVMValueRef bufs, int index)
{
    LLVMValueRef idx = emit_i64(e, index);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e->bld, e->t_ptr, bufs, &idx, 1, "v.slot");
    return LLVMBuildLoad2(e->bld, e->t_ptr, slot, "v.buf");
}

/* A cell run or a row-wise op pays off on a team from about this many cells (a
 * few microseconds of fork and join against about a nanosecond per cell). */
#define PARALLEL_MIN_CELLS ((int64_t)1 << 16)

static int64_t cells_of(const IrTensor *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++)
        n *= t->shape[k];
    return n;
}

/* A row-wise op (softmax, layer norm, masked softmax) that shares its rows out
 * among a team: enough cells, and its first out slot is a row axis (not the one
 * it works along) of 2 rows or more, which its function then splits by thread. */
static bool row_op_is_team(const IrProgram *p, const Op *op)
{
    const IrTensor *t = p->tensors[op->out];
    if ((op->kind != OP_SOFTMAX && op->kind != OP_LNORM && op->kind != OP_MSOFTMAX)
        || t->rank < 2 || op->axis == 0 || op->out_axis[0] == op->out_axis[op->axis])
        return false;
    return t->shape[0] >= 2 && cells_of(t) >= PARALLEL_MIN_CELLS;
}

/* Functions that get jit.c's light pipeline (JIT_ATTR_LIGHT in jit.h) instead
 * of O3: a contraction kernel, vectorised, unrolled and blocked by contract.c
 * already (O3's loop passes cost two thirds of its compile and gain nothing
 * there), and an op whose loop nest has at most LIGHT_MAX_CELLS cells, which
 * runs in a few microseconds however it is compiled (O3 unrolls and vectorises
 * such small loops whole, several milliseconds of compile per op). */
#define LIGHT_MAX_CELLS 1024

static int64_t loop_cells(const Op *op)
{
    int64_t n = 1;
    for (int k = 0; k < op->n_axes && n <= LIGHT_MAX_CELLS; k++)
        n *= op->axes[k].size > 0 ? op->axes[k].size : 1;
    return n;
}

static LLVMValueRef mark_light(Emit *e, LLVMValueRef fn)
{
    static const char key[] = "fuse-light";
    if (fn)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(e->ctx, key, sizeof key - 1, "", 0));
    return fn;
}

/* The op's function: a contraction kernel (contract.c) when it is one (with
 * n_fused epilogue ops), a cell run's loop nest over ops i..i+n_fused (fusion.c),
 * else the op's loop nest (emit.c). *is_contract says which calling convention
 * it has. */
static LLVMValueRef emit_op(Emit *e, const Group *g, const char *kname, int i, int n_fused,
                            bool *is_contract)
{
    char name[160];
    Contraction c;
    FuseRun r;
    const Op *op = g->ops[i];
    *is_contract = !e->opt->no_contract && contract_classify(e->p, op, e->opt, &c);
    if (*is_contract) {
        fuse_epilogue(e->p, g, i, &c);
        snprintf(name, sizeof name, n_fused ? "%s.op%d.contract.fused%d" : "%s.op%d.contract",
                 kname, i, n_fused);
        return mark_light(e, contract_emit_function(e, op, &c, name));
    }
    snprintf(name, sizeof name, "%s.op%d.%s", kname, i,
             op->kind == OP_MAP ? ir_map_fn_name(op->fn) : ir_op_kind_name(op->kind));
    bool is_small = loop_cells(op) <= LIGHT_MAX_CELLS;
    LLVMValueRef fn;
    if (n_fused && fuse_cell_run(e->p, g, i, &r) == n_fused) {
        size_t len = strlen(name);
        snprintf(name + len, sizeof name - len, ".cells%d", n_fused);
        fn = fuse_emit_run_function(e, &r, name);
    } else {
        fn = emit_op_function(e, op, name, row_op_is_team(e->p, op));
    }
    return is_small ? mark_light(e, fn) : fn;
}

/* fusion: how many ops after op i run in its kernel: a contraction's epilogue
 * or an elementwise op's cell run (fusion.c). */
int lower_run_length(const IrProgram *p, const Group *g, int i, const LowerOptions *opt)
{
    Contraction c;
    FuseRun r;
    if (!opt->no_contract && contract_classify(p, g->ops[i], opt, &c))
        return fuse_epilogue(p, g, i, &c);
    return fuse_cell_run(p, g, i, &r);
}

/* fusion: the buffers of a fused contraction's epilogue tensors (fusion.c). */
static unsigned epilogue_args(Emit *e, const Group *g, int i, LLVMValueRef bufs,
                              LLVMValueRef *args)
{
    Contraction c;
    if (!contract_classify(e->p, g->ops[i], e->opt, &c) || !fuse_epilogue(e->p, g, i, &c))
        return 0;
    for (int j = 0; j < c.n_epi_tensors; j++)
        args[j] = buffer_of(e, bufs, c.epi_tensor[j]);
    return (unsigned)c.n_epi_tensors;
}

/* fusion: the buffers of a cell run's tensors, its function's parameters. */
static unsigned cell_run_args(Emit *e, const Group *g, int i, LLVMValueRef bufs,
                              LLVMValueRef *args)
{
    FuseRun r;
    fuse_cell_run(e->p, g, i, &r);
    for (int j = 0; j < r.n_tensors; j++)
        args[j] = buffer_of(e, bufs, r.tensor[j]);
    return (unsigned)r.n_tensors;
}

/* The op's arguments: out, operands, and for a contraction this thread's
 * scratch, tid and nth. Returns the count. */
static unsigned op_args(Emit *e, const Op *op, int out, bool is_contract, LLVMValueRef kfn,
                        int64_t scratch_floats, LLVMValueRef *args)
{
    LLVMValueRef bufs = LLVMGetParam(kfn, 0);
    int n_t = e->p->n_tensors;
    args[0] = buffer_of(e, bufs, out);
    for (int k = 0; k < op->n_in; k++)
        args[k + 1] = buffer_of(e, bufs, op->in[k].tensor + (op->in[k].reads_prev ? n_t : 0));
    unsigned n = (unsigned)op->n_in + 1;
    if (is_contract) {
        LLVMValueRef tid = LLVMGetParam(kfn, 1);
        LLVMValueRef off = LLVMBuildNUWMul(e->bld, tid, emit_i64(e, scratch_floats), "v.so");
        args[n++] = LLVMBuildInBoundsGEP2(e->bld, e->t_f32, buffer_of(e, bufs, 2 * n_t), &off, 1,
                                          "v.scratch");
        args[n++] = tid;
        args[n++] = LLVMGetParam(kfn, 2);
    }
    return n;
}

/* How op i of a group is called (emit_group). */
typedef struct OpCall {
    LLVMValueRef fn;
    int out;          /* the tensor it writes (fold.c may redirect a call's) */
    int n_fused;      /* ops after it that run in its kernel (lower_run_length) */
    bool is_contract;
    bool is_team_row; /* a row-wise op sharing its rows (row_op_is_team) */
    bool is_folded;   /* the next op, a copy, is left out */
} OpCall;

/* Calls op i: every thread runs a contraction (on its share of the columns),
 * a cell run and a team row-wise op (on its share of the rows); thread 0 alone
 * runs any other op. */
static void call_op(Emit *e, LLVMValueRef kfn, const Group *g, int i, const OpCall *oc,
                    int64_t scratch_floats)
{
    bool is_run = !oc->is_contract && oc->n_fused;
    bool is_alone = !oc->is_contract && !is_run && !oc->is_team_row;
    LLVMBasicBlockRef after = is_alone ? emit_thread0_begin(e, LLVMGetParam(kfn, 1)) : NULL;
    LLVMValueRef args[EMIT_MAX_AXES + 8], bufs = LLVMGetParam(kfn, 0);
    unsigned n;
    if (is_run) {
        n = cell_run_args(e, g, i, bufs, args);
        args[n++] = LLVMGetParam(kfn, 1); /* tid */
        args[n++] = LLVMGetParam(kfn, 2); /* nth */
    } else {
        n = op_args(e, g->ops[i], oc->out, oc->is_contract, kfn, scratch_floats, args);
    }
    if (oc->is_team_row) {
        args[n++] = LLVMGetParam(kfn, 1); /* tid */
        args[n++] = LLVMGetParam(kfn, 2); /* nth */
    }
    if (oc->is_contract)
        n += epilogue_args(e, g, i, bufs, args + n);
    args[n++] = LLVMGetParam(kfn, 4); /* the stop flag */
    LLVMBuildCall2(e->bld, LLVMGlobalGetValueType(oc->fn), oc->fn, args, n, "");
    if (after)
        emit_thread0_end(e, after);
}

/* The ops are inlined into the group kernel and vectorised there: it prefers the
 * host's widest vectors too (else LLVM's x86 default of 256 bits applies). */
static void set_vector_width(Emit *e, LLVMValueRef fn)
{
    char width[16];
    snprintf(width, sizeof width, "%d", e->opt->vector_bits);
    static const char key[] = "prefer-vector-width";
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(e->ctx, key, sizeof key - 1, width,
                                                      (unsigned)strlen(width)));
}

/* Plans op i's call: its run length, and whether its copy folds into it (not
 * when the copy heads a run: as many passes, and lower_run_length's walk over
 * the group stays exact). Returns the next op index. */
static int plan_call(Emit *e, const Group *g, const char *kname, int i, OpCall *oc)
{
    oc->out = g->ops[i]->out;
    oc->n_fused = lower_run_length(e->p, g, i, e->opt);
    oc->is_folded = !oc->n_fused && i + 1 < g->n_ops
                    && !lower_run_length(e->p, g, i + 1, e->opt)
                    && fold_call_copy(e->p, g, i, &oc->out);
    oc->fn = emit_op(e, g, kname, i, oc->n_fused, &oc->is_contract);
    oc->is_team_row = !oc->is_contract && !oc->n_fused && row_op_is_team(e->p, g->ops[i]);
    return i + 1 + (oc->is_folded ? 1 : oc->n_fused);
}

/* A group kernel calls its ops' functions, which O3 inlines into it. Past this
 * many calls they stay out of line: one function holding hundreds of inlined,
 * unrolled loop nests is one huge basic block, on which LLVM's SLP vectoriser is
 * quadratic (400 contributions `M[u,d] = A[u,v] E[v,d]` to one tensor
 * compiled in 27 s, 1000 did not finish). A call costs nothing next to a loop
 * nest, and the ops of a group run one after another anyway. */
#define INLINE_MAX_CALLS 32

static void keep_calls_out_of_line(Emit *e, const Group *g, const OpCall *calls)
{
    int n_calls = 0;
    for (int i = 0; i < g->n_ops; i += 1 + (calls[i].is_folded ? 1 : calls[i].n_fused))
        n_calls++;
    if (n_calls <= INLINE_MAX_CALLS)
        return;
    unsigned kind = LLVMGetEnumAttributeKindForName("noinline", 8);
    for (int i = 0; i < g->n_ops; i += 1 + (calls[i].is_folded ? 1 : calls[i].n_fused))
        LLVMAddAttributeAtIndex(calls[i].fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(e->ctx, kind, 0));
}

/* `void KERNEL(ptr bufs, i64 tid, i64 nth, ptr barrier, ptr stop)`: runs the
 * group's ops in order (ops fused into an earlier op's kernel and folded copies
 * are not called); when some call is team work (a contraction, a cell run, a row-wise op
 * sharing its rows), `barrier()` separates the calls. */
static bool emit_group(Emit *e, const Group *g, const char *kname, int64_t scratch_floats)
{
    OpCall calls[1024];
    bool has_team = false; /* a contraction, cell run or team row op: every thread calls it */
    if (g->n_ops > 1024)
        return false;
    for (int i = 0; i < g->n_ops;) {
        int next = plan_call(e, g, kname, i, &calls[i]);
        if (!calls[i].fn)
            return false;
        has_team |= calls[i].is_contract || calls[i].n_fused || calls[i].is_team_row;
        i = next;
    }
    keep_calls_out_of_line(e, g, calls);
    LLVMTypeRef params[5] = {e->t_ptr, e->t_i64, e->t_i64, e->t_ptr, e->t_ptr};
    LLVMValueRef fn = LLVMAddFunction(e->mod, kname, LLVMFunctionType(e->t_void, params, 5, 0));
    LLVMSetValueName2(LLVMGetParam(fn, 0), "bufs", 4);
    set_vector_width(e, fn);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, fn, "b.entry"));
    LLVMTypeRef bty = LLVMFunctionType(e->t_void, NULL, 0, 0);
    for (int i = 0; i < g->n_ops;) {
        const OpCall *oc = &calls[i];
        call_op(e, fn, g, i, oc, scratch_floats);
        i += 1 + (oc->is_folded ? 1 : oc->n_fused);
        if (has_team && i < g->n_ops)
            LLVMBuildCall2(e->bld, bty, LLVMGetParam(fn, 3), NULL, 0, "");
    }
    LLVMBuildRetVoid(e->bld);
    return true;
}

void emit_state_init(Emit *e, const IrProgram *p, LLVMModuleRef mod, const LowerOptions *opt)
{
    memset(e, 0, sizeof *e);
    e->share_axis = -1;
    e->ctx = LLVMGetModuleContext(mod);
    e->mod = mod;
    e->bld = LLVMCreateBuilderInContext(e->ctx);
    e->t_i64 = LLVMInt64TypeInContext(e->ctx);
    e->t_i1 = LLVMInt1TypeInContext(e->ctx);
    e->t_ptr = LLVMPointerTypeInContext(e->ctx, 0);
    e->t_void = LLVMVoidTypeInContext(e->ctx);
    e->p = p;
    e->opt = opt;
    elem_types_init(e); /* t_f32 (compute) and t_store */
}

/* Emits a selection of groups under given names (lower.h). */
fuse_status lower_groups(const IrProgram *p, const LowerGroup *sel, int n, LLVMModuleRef mod,
                         const LowerOptions *opt, char **err)
{
    if (!p->is_shaped) {
        if (err)
            *err = strdup("internal error: lowering an unshaped program");
        return FUSE_E_JIT;
    }
    Emit e;
    emit_state_init(&e, p, mod, opt);
    /* scratch holds compute-type elements (packed panels) */
    int64_t scratch_floats = (int64_t)(lower_scratch_bytes(p, opt) / lower_compute_bytes(opt));
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        int g = sel[i].index;
        bool in_range = g >= 0 && g < (sel[i].is_sink ? p->n_sink_groups : p->n_groups);
        ok = in_range && emit_group(&e, sel[i].is_sink ? p->sink_groups[g] : p->groups[g],
                                    sel[i].name, scratch_floats);
    }
    LLVMDisposeBuilder(e.bld);
    if (!ok) {
        if (err)
            *err = strdup("a group has too many ops or operands to lower");
        return FUSE_E_JIT;
    }
    return FUSE_OK;
}

/* Applies f to every op of p's equation and sink groups. */
static void each_op(const IrProgram *p, void (*f)(const IrProgram *, const Op *, void *),
                    void *user)
{
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++) {
            const Group *gr = pass ? p->sink_groups[g] : p->groups[g];
            for (int i = 0; i < gr->n_ops; i++)
                f(p, gr->ops[i], user);
        }
    }
}

typedef struct ScratchAcc {
    const LowerOptions *opt;
    size_t bytes;
} ScratchAcc;

static void scratch_of(const IrProgram *p, const Op *op, void *user)
{
    ScratchAcc *s = user;
    Contraction c;
    if (!s->opt->no_contract && contract_classify(p, op, s->opt, &c)) {
        size_t b = contract_scratch_bytes(&c);
        s->bytes = b > s->bytes ? b : s->bytes;
    }
}

size_t lower_scratch_bytes(const IrProgram *p, const LowerOptions *opt)
{
    ScratchAcc s = {opt, 0};
    if (p->is_shaped)
        each_op(p, scratch_of, &s);
    return (s.bytes + 63) / 64 * 64;
}

/* A team pays off from about a million multiply-adds (a fork and join costs a
 * few microseconds) and needs two column panels to share. */
#define PARALLEL_MIN_MACS ((int64_t)1 << 20)

/* Op i heads a cell run worth a team: enough cells and rows to share out. */
static bool is_parallel_run(const IrProgram *p, const Group *g, int i)
{
    FuseRun r;
    const Op *op = g->ops[i];
    const IrTensor *t = p->tensors[op->out];
    if (t->rank == 0 || fuse_cell_run(p, g, i, &r) == 0 || t->shape[0] < 2)
        return false;
    return cells_of(t) >= PARALLEL_MIN_CELLS;
}

bool lower_group_is_parallel(const IrProgram *p, const Group *g, const LowerOptions *opt)
{
    Contraction c;
    for (int i = 0; i < g->n_ops && p->is_shaped; i += 1 + lower_run_length(p, g, i, opt)) {
        bool is_contract = !opt->no_contract && contract_classify(p, g->ops[i], opt, &c);
        if (is_contract && (c.is_split_m ? c.m.total > c.mr : c.n.total > c.nr)
            && c.batch.total * c.m.total * c.n.total * c.k.total >= PARALLEL_MIN_MACS)
            return true;
        if (!is_contract && (is_parallel_run(p, g, i) || row_op_is_team(p, g->ops[i])))
            return true;
    }
    return false;
}

/* Rows per thread of a contraction sharing M panels of mr rows (contract.c
 * thread_share). */
static int64_t panel_chunk(int64_t rows, int64_t mr, int64_t nth)
{
    int64_t panels = (rows + mr - 1) / mr;
    return (panels + nth - 1) / nth * mr;
}

int64_t lower_row_quantum(const LowerOptions *opt)
{
    return opt->split_rows ? contract_mr(opt) : 1;
}

int64_t lower_row_block(int64_t rows, int64_t nth, const LowerOptions *opt)
{
    return panel_chunk(rows, lower_row_quantum(opt), nth);
}

/* Whether op writes its output's axis 0 as its first loop slot, unshifted. */
static bool writes_rows(const IrProgram *p, const Op *op)
{
    const IrTensor *t = p->tensors[op->out];
    return t->rank > 0 && op->concat_slot != 0 && op->out_offset[0] == 0 &&
           op->out_minor[0] == 0 && op->axes[op->out_axis[0]].size == t->shape[0];
}

static bool same_shape(const IrTensor *a, const IrTensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int k = 0; k < a->rank; k++)
        if (a->shape[k] != b->shape[k])
            return false;
    return true;
}

/* The rows per thread of the call at op i of g (its team shares blocks of rows
 * of out slot 0, as plan_call and call_op make it), or 0 when it runs on thread
 * 0 alone or shares columns; *next is the op after the call. */
static int64_t call_row_chunk(const IrProgram *p, const Group *g, int i,
                              const LowerOptions *opt, int64_t nth, int *next)
{
    int n_fused = lower_run_length(p, g, i, opt), out = g->ops[i]->out;
    bool is_folded = !n_fused && i + 1 < g->n_ops && !lower_run_length(p, g, i + 1, opt) &&
                     fold_call_copy(p, g, i, &out);
    *next = i + 1 + (is_folded ? 1 : n_fused);
    int64_t rows = p->tensors[g->tensor]->shape[0];
    Contraction c;
    if (!opt->no_contract && contract_classify(p, g->ops[i], opt, &c))
        return c.is_split_m && c.is_m_leading ? panel_chunk(rows, c.mr, nth) : 0;
    if (n_fused > 0 || row_op_is_team(p, g->ops[i])) /* share_begin over out slot 0 */
        return lower_row_block(rows, nth, opt);
    return 0;
}

/* Whether some op of g writes tensor t. */
static bool group_writes(const Group *g, int t)
{
    for (int i = 0; i < g->n_ops; i++)
        if (g->ops[i]->out == t)
            return true;
    return false;
}

bool lower_group_row_chunk(const IrProgram *p, const Group *g, const LowerOptions *opt,
                           int64_t nth, int64_t *chunk)
{
    if (!p->is_shaped || g->n_ops == 0 || nth < 1 || !lower_group_is_parallel(p, g, opt))
        return false;
    const IrTensor *t = p->tensors[g->tensor];
    for (int i = 0; i < g->n_ops; i++) { /* temporaries too: cells of the same grid */
        const Op *op = g->ops[i];
        if (!writes_rows(p, op) || !same_shape(p->tensors[op->out], t))
            return false;
        for (int k = 0; k < op->n_in; k++) /* what the group wrote: only its own rows */
            if (group_writes(g, op->in[k].tensor) && !lower_reads_own_rows(p, op, k))
                return false;
    }
    *chunk = 0;
    for (int i = 0, next; i < g->n_ops; i = next) { /* every call on the same blocks */
        int64_t c = call_row_chunk(p, g, i, opt, nth, &next);
        if (c == 0 || (*chunk && c != *chunk))
            return false;
        *chunk = c;
    }
    return *chunk > 0;
}

bool lower_reads_own_rows(const IrProgram *p, const Op *op, int k)
{
    const Operand *o = &op->in[k];
    const IrTensor *t = p->tensors[o->tensor];
    return t->rank > 0 && writes_rows(p, op) && o->kind[0] == SL_AXIS &&
           o->axis[0] == op->out_axis[0] && o->offset[0] == 0 && !o->slice[0] &&
           t->shape[0] == p->tensors[op->out]->shape[0];
}

static void flops_of(const IrProgram *p, const Op *op, void *user)
{
    (void)p;
    if (op->kind != OP_JOIN || op->red != RED_SUM)
        return;
    uint64_t cells = 1;
    for (int a = 0; a < op->n_axes; a++)
        cells *= (uint64_t)op->axes[a].size;
    *(uint64_t *)user += 2 * cells;
}

uint64_t lower_flops(const IrProgram *p)
{
    uint64_t n = 0;
    if (p->is_shaped)
        each_op(p, flops_of, &n);
    return n;
}

bool lower_fuses_across(const IrProgram *p, const Group *merged, int first,
                        const LowerOptions *opt)
{
    if (!p->is_shaped || merged->n_ops > 1024)
        return false;
    for (int i = 0; i < first;) {
        int n = lower_run_length(p, merged, i, opt);
        if (i + n >= first)
            return i + n == merged->n_ops - 1;
        i += 1 + n;
    }
    return false;
}
