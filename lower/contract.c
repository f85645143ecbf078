/*
 * contract.c: BLIS-style contraction kernels for sum joins of two operands.
 *
 * Classification: every loop axis of size > 1 must be in exactly one of four
 * groups: batch (out, A, B), M (out, A), N (out, B), K (A, B). N is the group of
 * the output's innermost axis, so the micro-kernel's vectors run along the
 * output's contiguous dimension. Operands are plain reads (no shift, fixed
 * position, slice or repeated axis) and the output is written whole.
 *
 * Kernel `op(out, in0, in1, scratch, tid, nth, [epilogue buffers,] stop)`: thread
 * tid of nth takes a run
 * of whole NR-wide column panels of N, or for a thin product (N <= 4 NR, M >= 8 N:
 * two column panels would leave each thread packing all of A) a run of whole
 * MR-row panels of M, so every output cell is computed by one thread, in the
 * same order whatever nth is; for each batch index (BLIS loop order, all sizes
 * constant):
 *   for jc in its columns step NC:  for pc in K step KC:  pack B[pc.., jc..] -> Bp
 *     for ic in its rows step MC:  pack A[ic.., pc..] -> Ap
 *       for jr in nc step NR:  for ir in mc step MR:
 *         prefetch the output tile; micro-kernel: MR x NR accumulators
 *         (<vw x float>, llvm.fma) over kc; then out[tile] (=|+=) coef * acc, only
 *         the rows and columns inside the block ("=" on the first K block of the
 *         first contribution, so the output is never zeroed in a separate pass)
 * The micro-kernel's K loop is unrolled MICRO_UNROLL times and prefetches both
 * packed panels MICRO_PREFETCH_K steps ahead (the K % MICRO_UNROLL last steps run
 * in a plain loop). Packing reads the strided tensors directly (a group's flat
 * index is decoded with constant divisions, once per panel lane and K step), so
 * no transposed copy is ever made: a panel whose lanes are contiguous in the
 * tensor is copied a whole vector per K step, any other panel lane by lane
 * (scalar loads assembled into one vector store; LLVM's own vectorisation of
 * the scalar loop used gathers and scatters). Panels are zero-padded to whole
 * micro-tiles so the micro-kernel has no edge cases, and edge tiles only mask
 * the update (a full tile of contiguous output rows is updated straight from the
 * registers; other tiles go through a stack buffer). Blocks come from the host's
 * cache sizes (sysconf unless LowerOptions gives them): a KC x NR micro-panel of
 * B is the size of L1 (at most KC = 384; measured: 384 was faster than 256, 192
 * or 128 here, where L1 is 48 KiB), an MC x KC block of A half of L2, a KC x NC
 * block of B a quarter of L3. With AVX-512 the tile is
 * 12 x 32 (24 zmm accumulators), with 256-bit vectors 6 x 16. Each thread's
 * scratch (Bp, then Ap) is its slice of the plan's bufs[2 n_tensors].
 * Boolean joins (a relation's rule) are contractions too: K is one block, so
 * the update has the whole sum and stores out = max(old, sum * coef > 0).
 * Fusion (fusion.c): with an epilogue, the kernel takes the buffers of the fused
 * ops' tensors as extra parameters, and on the last K block calls the
 * out-of-line `NAME.epi` on each finished tile (its cells' loop counters are
 * decoded from the batch index and the tile's flat M and N indices).
 * Stopping (emit.h): each (jc, pc) block and each MC block of it first checks the
 * run's stop flag and skips its packing and tiles once it is set (a block is a
 * few milliseconds of work at most; the kernel still returns normally, so a
 * team's threads all reach their barriers).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"

#include <llvm-c/TargetMachine.h>

/* ---- classification ---- */

static void tensor_strides(const IrTensor *t, int64_t *stride)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        stride[k] = s;
        s *= t->shape[k];
    }
}

/* Per loop axis: has[a][w] and stride[a][w] in w = 0 out, 1 in0, 2 in1. False
 * when an access is not a plain read of distinct axes. */
static bool axis_usage(const IrProgram *p, const Op *op, bool (*has)[3], int64_t (*st)[3])
{
    int64_t s[FUSE_MAX_RANK];
    const IrTensor *t = p->tensors[op->out];
    tensor_strides(t, s);
    for (int k = 0; k < t->rank; k++) {
        int a = op->out_axis[k];
        if (has[a][0] || op->out_offset[k] != 0)
            return false;
        has[a][0] = true;
        st[a][0] = s[k];
    }
    for (int i = 0; i < 2; i++) {
        const Operand *o = &op->in[i];
        t = p->tensors[o->tensor];
        tensor_strides(t, s);
        for (int k = 0; k < t->rank; k++) {
            int a = o->axis[k];
            if (o->kind[k] != SL_AXIS || o->offset[k] != 0 || o->slice[k] || has[a][1 + i])
                return false;
            has[a][1 + i] = true;
            st[a][1 + i] = s[k];
        }
    }
    return true;
}

static void group_add(CGroup *g, int axis, int64_t size, const int64_t *st, int a_slot,
                      int b_slot)
{
    CAxis *x = &g->ax[g->n++];
    x->axis = axis;
    x->size = size;
    x->stride[0] = st[0];
    x->stride[1] = st[a_slot];
    x->stride[2] = st[b_slot];
    g->total *= size;
}

/* The operand that holds the output's innermost axis of size > 1 alone is B. */
static int pick_b(const IrProgram *p, const Op *op, bool (*has)[3])
{
    const IrTensor *t = p->tensors[op->out];
    for (int k = t->rank - 1; k >= 0; k--) {
        int a = op->out_axis[k];
        if (op->axes[a].size > 1)
            return has[a][1] && !has[a][2] ? 0 : 1;
    }
    return 1;
}

/* Fills the groups: batch, M, N in out slot order; K in A's slot order. */
static bool fill_groups(const IrProgram *p, const Op *op, bool (*has)[3], int64_t (*st)[3],
                        Contraction *c)
{
    int sa = 1 + c->a, sb = 1 + c->b;
    const IrTensor *t = p->tensors[op->out];
    for (int k = 0; k < t->rank; k++) {
        int a = op->out_axis[k];
        int64_t n = op->axes[a].size;
        if (n == 1)
            continue;
        CGroup *g = has[a][sa] && has[a][sb] ? &c->batch : has[a][sa] ? &c->m
                  : has[a][sb] ? &c->n : NULL;
        if (!g)
            return false; /* broadcast output axis */
        group_add(g, a, n, st[a], sa, sb);
    }
    const Operand *oa = &op->in[c->a];
    for (int k = 0; k < p->tensors[oa->tensor]->rank; k++) {
        int a = oa->axis[k];
        if (op->axes[a].size > 1 && !has[a][0] && has[a][sb])
            group_add(&c->k, a, op->axes[a].size, st[a], sa, sb);
    }
    for (int a = 0; a < op->n_axes; a++)
        if (op->axes[a].size > 1 && !has[a][0] && !(has[a][1] && has[a][2]))
            return false; /* projected from one operand only */
    return true;
}

static bool group_is_contiguous(const CGroup *g, int which)
{
    int64_t s = 1;
    for (int i = g->n - 1; i >= 0; i--) {
        if (g->ax[i].stride[which] != s)
            return false;
        s *= g->ax[i].size;
    }
    return true;
}

/* `given`, else the host's cache size (sysconf), else `fallback`. */
static int64_t cache_bytes(int64_t given, int name, int64_t fallback)
{
    if (given > 0)
        return given;
    long v = sysconf(name);
    return v > 0 ? v : fallback;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }
static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* A boolean contraction keeps all of K in one block (its thresholded update
 * needs the whole sum); past this, the B micro-panel (K x NR) outgrows L2 and the
 * loop nest takes it. */
#define BOOL_MAX_K 16384

/* Compute elements per vector under opt: 4, 8 or 16. */
static int64_t vector_width(const LowerOptions *opt)
{
    int64_t vw = opt->vector_bits / (8 * (int64_t)lower_compute_bytes(opt));
    return vw >= 16 ? 16 : vw >= 8 ? 8 : 4;
}

int64_t contract_mr(const LowerOptions *opt) { return vector_width(opt) == 16 ? 12 : 6; }

static void choose_blocks(const LowerOptions *opt, Contraction *c)
{
    c->csize = (int64_t)lower_compute_bytes(opt);
    c->esize = (unsigned)lower_store_bytes(opt);
    c->vw = vector_width(opt);
    c->nr = 2 * c->vw;
    c->mr = contract_mr(opt);
    int64_t l1 = cache_bytes(opt->l1_bytes, _SC_LEVEL1_DCACHE_SIZE, 32 << 10);
    int64_t l2 = cache_bytes(opt->l2_bytes, _SC_LEVEL2_CACHE_SIZE, 1 << 20);
    int64_t l3 = cache_bytes(opt->l3_bytes, _SC_LEVEL3_CACHE_SIZE, 8 << 20);
    c->kc = clamp64(l1 / (c->nr * c->csize) / 16 * 16, 32, 384);
    if (c->kc > c->k.total || c->is_bool)
        c->kc = c->k.total;
    c->mc = clamp64(l2 / 2 / (c->kc * c->csize) / c->mr * c->mr, c->mr, 160 * c->mr);
    c->mc = c->mc < round_up(c->m.total, c->mr) ? c->mc : round_up(c->m.total, c->mr);
    c->nc = clamp64(l3 / 4 / (c->kc * c->csize) / c->nr * c->nr, c->nr, 128 * c->nr);
    c->nc = c->nc < round_up(c->n.total, c->nr) ? c->nc : round_up(c->n.total, c->nr);
}

/* Whether M is exactly the output's rows: one axis, the output's first slot
 * (unshifted), and no batch axes around it. */
static bool m_is_leading(const IrProgram *p, const Op *op, const Contraction *c)
{
    const IrTensor *t = p->tensors[op->out];
    return c->batch.total == 1 && c->m.n == 1 && t->rank > 0 &&
           c->m.ax[0].axis == op->out_axis[0] && t->shape[0] == c->m.total &&
           op->out_offset[0] == 0 && op->out_minor[0] == 0;
}

bool contract_classify(const IrProgram *p, const Op *op, const LowerOptions *opt,
                       Contraction *c)
{
    if (op->kind != OP_JOIN || op->red != RED_SUM || op->n_in != 2
        || op->concat_slot >= 0 || op->n_axes > EMIT_MAX_AXES || opt->vector_bits < 128)
        return false;
    bool has[EMIT_MAX_AXES][3];
    int64_t st[EMIT_MAX_AXES][3];
    memset(has, 0, sizeof has);
    memset(st, 0, sizeof st);
    for (int a = 0; a < op->n_axes; a++)
        if (op->axes[a].size < 1)
            return false;
    if (!axis_usage(p, op, has, st))
        return false;
    memset(c, 0, sizeof *c);
    c->batch.total = c->m.total = c->n.total = c->k.total = 1;
    c->b = pick_b(p, op, has);
    c->a = 1 - c->b;
    if (!fill_groups(p, op, has, st, c))
        return false;
    if (c->m.total < 2 || c->n.total < 8 || c->k.total < 2
        || c->m.total * c->n.total * c->k.total < 8192)
        return false;
    c->coef = op->coef;
    if (op->is_rsqrt_scaled)
        c->coef /= sqrt((double)c->k.total);
    c->is_n_contiguous = group_is_contiguous(&c->n, 0);
    c->is_bool = op->is_bool_out;
    if (c->is_bool && c->k.total > BOOL_MAX_K)
        return false;
    choose_blocks(opt, c);
    c->is_m_leading = m_is_leading(p, op, c);
    c->is_split_m = (c->n.total <= 4 * c->nr && c->m.total >= 8 * c->n.total) ||
                    (opt->split_rows && c->is_m_leading && c->m.total > c->mr);
    return true;
}

size_t contract_scratch_bytes(const Contraction *c)
{
    return (size_t)((c->kc * c->nc + c->mc * c->kc) * c->csize) + 64;
}

/* ---- emission helpers ---- */

typedef struct CLoop {
    LLVMBasicBlockRef header;
    LLVMValueRef phi, bound;
    int64_t step;
} CLoop;

/* A do-while loop: counter 0, step, ... while < bound (bound >= 1). */
static LLVMValueRef cl_begin(Emit *e, CLoop *l, LLVMValueRef bound, int64_t step,
                             const char *name)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    l->header = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
    l->bound = bound;
    l->step = step;
    LLVMBuildBr(e->bld, l->header);
    LLVMPositionBuilderAtEnd(e->bld, l->header);
    l->phi = LLVMBuildPhi(e->bld, e->t_i64, "v.c");
    LLVMValueRef zero = emit_i64(e, 0);
    LLVMAddIncoming(l->phi, &zero, &pre, 1);
    return l->phi;
}

static void cl_end(Emit *e, CLoop *l)
{
    LLVMValueRef next = LLVMBuildNUWAdd(e->bld, l->phi, emit_i64(e, l->step), "v.next");
    LLVMValueRef more = LLVMBuildICmp(e->bld, LLVMIntULT, next, l->bound, "v.more");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.done");
    emit_leave_loop_alone(e, LLVMBuildCondBr(e->bld, more, l->header, exit));
    LLVMAddIncoming(l->phi, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(e->bld, exit);
}

static LLVMValueRef add(Emit *e, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildNUWAdd(e->bld, x, y, "v.add");
}

static LLVMValueRef mul(Emit *e, LLVMValueRef x, int64_t k)
{
    return k == 1 ? x : LLVMBuildNUWMul(e->bld, x, emit_i64(e, k), "v.mul");
}

static LLVMValueRef umin(Emit *e, LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef lt = LLVMBuildICmp(e->bld, LLVMIntULT, x, y, "v.lt");
    return LLVMBuildSelect(e->bld, lt, x, y, "v.min");
}

/* &base[off] in packed panels and the stack tile (compute elements) */
static LLVMValueRef gep(Emit *e, LLVMValueRef base, LLVMValueRef off)
{
    return LLVMBuildInBoundsGEP2(e->bld, e->t_f32, base, &off, 1, "v.p");
}

/* &base[off] in tensor t's buffer (storage elements) */
static LLVMValueRef tgep(Emit *e, int t, LLVMValueRef base, LLVMValueRef off)
{
    return emit_tensor_gep(e, t, base, off, "v.tp");
}

/* the same in the output's buffer */
static LLVMValueRef ogep(Emit *e, LLVMValueRef base, LLVMValueRef off)
{
    return tgep(e, e->op->out, base, off);
}

/* Element offset in tensor `which` (0 out, 1 A, 2 B) of flat index x of g. */
static LLVMValueRef group_offset(Emit *e, const CGroup *g, int which, LLVMValueRef x)
{
    LLVMValueRef off = emit_i64(e, 0), q = x;
    for (int i = g->n - 1; i >= 0; i--) {
        const CAxis *a = &g->ax[i];
        LLVMValueRef d = i > 0 ? LLVMBuildURem(e->bld, q, emit_i64(e, a->size), "v.d") : q;
        if (a->stride[which])
            off = add(e, off, mul(e, d, a->stride[which]));
        if (i > 0)
            q = LLVMBuildUDiv(e->bld, q, emit_i64(e, a->size), "v.q");
    }
    return off;
}

static void set_align(LLVMValueRef inst, unsigned bytes) { LLVMSetAlignment(inst, bytes); }

/* ---- packing ---- */

/* The packing of one micro-panel: lanes L (MR of A or NR of B) of the lane
 * group `lg` from flat index x0 (n_valid of them inside the block), K steps
 * pc .. pc + kc - 1: dst[k * L + l] = src[lg x0 + l, kg pc + k], 0 for l >=
 * n_valid. `which` is the tensor's slot in the strides (1 A, 2 B). */
typedef struct CPanel {
    const CGroup *lg, *kg;
    int which;
    int64_t lanes;
    bool lanes_contiguous; /* lg is contiguous in the tensor: one vector per k */
    int tensor;            /* the tensor packed (its element type) */
    LLVMValueRef v_start;  /* the start of its buffer (a quantised weight's
                              loads need offsets from there: a batch's src is
                              further on) */
} CPanel;

/* The alignment a panel's per-k vector store may claim: the panel starts 64-byte
 * aligned and step k is at k * lanes floats, so only the power of two dividing
 * lanes * 4 bytes holds for every k (6 lanes with 256-bit vectors: 8 bytes). */
static unsigned panel_store_align(int64_t lanes, int64_t csize)
{
    unsigned bytes = (unsigned)csize;
    while (bytes < 16 && (lanes * csize) % (bytes * 2) == 0)
        bytes *= 2;
    return bytes;
}

static LLVMTypeRef lane_vector_type(Emit *e, int64_t lanes)
{
    return LLVMVectorType(e->t_f32, (unsigned)lanes);
}

/* The bytes from `from` to `to` (pointers into one buffer), as i64: the element
 * offset in a buffer of 1-byte elements. */
static LLVMValueRef byte_distance(Emit *e, LLVMValueRef from, LLVMValueRef to)
{
    LLVMValueRef a = LLVMBuildPtrToInt(e->bld, from, e->t_i64, "v.pfrom");
    LLVMValueRef b = LLVMBuildPtrToInt(e->bld, to, e->t_i64, "v.pto");
    return LLVMBuildNUWSub(e->bld, b, a, "v.pdist");
}

/* Full panel of contiguous lanes: per k, one unaligned vector load and store. */
static void pack_panel_vector(Emit *e, const CPanel *pp, LLVMValueRef src, LLVMValueRef dst,
                              LLVMValueRef x0, LLVMValueRef pc, LLVMValueRef kc)
{
    LLVMTypeRef vt = lane_vector_type(e, pp->lanes);
    LLVMValueRef lane_off = group_offset(e, pp->lg, pp->which, x0);
    LLVMValueRef base = tgep(e, pp->tensor, src, lane_off);
    bool is_quant = emit_is_quantised(e, pp->tensor); /* its loads need the offset */
    LLVMValueRef quant_off = is_quant ? add(e, byte_distance(e, pp->v_start, src), lane_off)
                                      : NULL;
    CLoop lk;
    LLVMValueRef k = cl_begin(e, &lk, kc, 1, "b.pk.v");
    LLVMValueRef k_off = group_offset(e, pp->kg, pp->which, add(e, pc, k));
    LLVMValueRef v = is_quant
                         ? emit_quant_load_vector(e, pp->tensor, pp->v_start,
                                                  add(e, quant_off, k_off), (unsigned)pp->lanes)
                         : emit_tensor_load(e, pp->tensor, vt, tgep(e, pp->tensor, base, k_off),
                                            emit_store_bytes(e, pp->tensor), "v.pv");
    set_align(LLVMBuildStore(e->bld, v, gep(e, dst, mul(e, k, pp->lanes))),
              panel_store_align(pp->lanes, lower_compute_bytes(e->opt)));
    cl_end(e, &lk);
}

/* Any panel: each lane's offset is decoded once, then per k L scalar loads
 * (lanes past n_valid read lane 0 and store 0) assembled into one vector store.
 * A quantised weight's elements are dequantised with the scale and zero point
 * of their own positions (elem.c). */
static void pack_panel_lanes(Emit *e, const CPanel *pp, LLVMValueRef src, LLVMValueRef dst,
                             LLVMValueRef x0, LLVMValueRef n_valid, LLVMValueRef pc,
                             LLVMValueRef kc)
{
    LLVMTypeRef vt = lane_vector_type(e, pp->lanes);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef off[64], valid[64];
    for (int64_t l = 0; l < pp->lanes; l++) {
        valid[l] = LLVMBuildICmp(e->bld, LLVMIntULT, emit_i64(e, l), n_valid, "v.lv");
        LLVMValueRef x = LLVMBuildSelect(e->bld, valid[l], add(e, x0, emit_i64(e, l)), x0, "v.lx");
        off[l] = group_offset(e, pp->lg, pp->which, x);
    }
    CLoop lk;
    LLVMValueRef k = cl_begin(e, &lk, kc, 1, "b.pk.l");
    LLVMValueRef row_off = group_offset(e, pp->kg, pp->which, add(e, pc, k));
    LLVMValueRef row = tgep(e, pp->tensor, src, row_off);
    bool is_quant = emit_is_quantised(e, pp->tensor); /* its loads need the offset */
    LLVMValueRef src_off = is_quant ? byte_distance(e, pp->v_start, src) : NULL;
    LLVMValueRef v = LLVMGetUndef(vt);
    for (int64_t l = 0; l < pp->lanes; l++) {
        LLVMValueRef x = is_quant ? emit_tensor_load_at(e, pp->tensor, pp->v_start,
                                                        add(e, row_off, add(e, src_off, off[l])),
                                                        "v.pl")
                                  : emit_tensor_load(e, pp->tensor, e->t_f32,
                                                     tgep(e, pp->tensor, row, off[l]), 0, "v.pl");
        x = LLVMBuildSelect(e->bld, valid[l], x, emit_f32(e, 0.0), "v.pl0");
        v = LLVMBuildInsertElement(e->bld, v, x, LLVMConstInt(i32, (unsigned long long)l, 0), "v.pi");
    }
    set_align(LLVMBuildStore(e->bld, v, gep(e, dst, mul(e, k, pp->lanes))),
              panel_store_align(pp->lanes, lower_compute_bytes(e->opt)));
    cl_end(e, &lk);
}

/* Packs the micro-panels of a block: panel p (lanes x0 + p*L ..) goes to
 * dst + p*L*kc; `len` lanes of the block start at lane x_lo. */
static void pack_block(Emit *e, const CPanel *pp, LLVMValueRef src, LLVMValueRef dst,
                       LLVMValueRef x_lo, LLVMValueRef len, LLVMValueRef pc, LLVMValueRef kc)
{
    CLoop lp;
    LLVMValueRef p0 = cl_begin(e, &lp, len, pp->lanes, "b.pk.p");
    LLVMValueRef panel = gep(e, dst, LLVMBuildNUWMul(e->bld, p0, kc, "v.pko"));
    LLVMValueRef n_valid = umin(e, emit_i64(e, pp->lanes), LLVMBuildNUWSub(e->bld, len, p0, "v.nv"));
    LLVMValueRef x0 = add(e, x_lo, p0);
    LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.pk.vec");
    LLVMBasicBlockRef lanes = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.pk.lanes");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.pk.next");
    LLVMValueRef full = LLVMBuildICmp(e->bld, LLVMIntEQ, n_valid, emit_i64(e, pp->lanes), "v.pf");
    if (!pp->lanes_contiguous)
        full = LLVMConstInt(LLVMInt1TypeInContext(e->ctx), 0, 0);
    LLVMBuildCondBr(e->bld, full, vec, lanes);
    LLVMPositionBuilderAtEnd(e->bld, vec);
    if (pp->lanes_contiguous)
        pack_panel_vector(e, pp, src, panel, x0, pc, kc);
    LLVMBuildBr(e->bld, done);
    LLVMPositionBuilderAtEnd(e->bld, lanes);
    pack_panel_lanes(e, pp, src, panel, x0, n_valid, pc, kc);
    LLVMBuildBr(e->bld, done);
    LLVMPositionBuilderAtEnd(e->bld, done);
    cl_end(e, &lp);
}

/* A full panel of `lanes` (starting at a multiple of lanes) is contiguous in
 * tensor `which`: the group is, or its innermost axis has stride 1 and a size
 * that is a multiple of lanes (a panel then never crosses its end). */
static bool panel_is_contiguous(const CGroup *g, int which, int64_t lanes)
{
    if (group_is_contiguous(g, which))
        return true;
    if (g->n == 0)
        return false;
    const CAxis *in = &g->ax[g->n - 1];
    return in->stride[which] == 1 && in->size % lanes == 0;
}

/* Ap[ir*kc + k*MR + r] = A[ic + ir + r, pc + k], 0 past mc. */
static void pack_a(Emit *e, const Contraction *c, LLVMValueRef a, LLVMValueRef ap,
                   LLVMValueRef ic, LLVMValueRef mc, LLVMValueRef pc, LLVMValueRef kc)
{
    int t = e->op->in[c->a].tensor;
    CPanel pp = {&c->m, &c->k, 1, c->mr, panel_is_contiguous(&c->m, 1, c->mr), t,
                 e->v_in[c->a]};
    pack_block(e, &pp, a, ap, ic, mc, pc, kc);
}

/* Bp[jr*kc + k*NR + col] = B[pc + k, jc + jr + col], 0 past nc. */
static void pack_b(Emit *e, const Contraction *c, LLVMValueRef b, LLVMValueRef bp,
                   LLVMValueRef jc, LLVMValueRef nc, LLVMValueRef pc, LLVMValueRef kc)
{
    int t = e->op->in[c->b].tensor;
    CPanel pp = {&c->n, &c->k, 2, c->nr, panel_is_contiguous(&c->n, 2, c->nr), t,
                 e->v_in[c->b]};
    pack_block(e, &pp, b, bp, jc, nc, pc, kc);
}

/* ---- micro-kernel ---- */

static LLVMValueRef vec_fma(Emit *e, LLVMTypeRef vt, LLVMValueRef a, LLVMValueRef b,
                            LLVMValueRef acc)
{
    unsigned id = LLVMLookupIntrinsicID("llvm.fma", 8);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, &vt, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(e->ctx, id, &vt, 1);
    LLVMValueRef args[3] = {a, b, acc};
    return LLVMBuildCall2(e->bld, fty, fn, args, 3, "v.fma");
}

static LLVMValueRef splat(Emit *e, LLVMTypeRef vt, int64_t vw, LLVMValueRef x)
{
    LLVMValueRef one = LLVMBuildInsertElement(e->bld, LLVMGetUndef(vt), x, emit_i64(e, 0), "v.ins");
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef mask = LLVMConstNull(LLVMVectorType(i32, (unsigned)vw));
    return LLVMBuildShuffleVector(e->bld, one, LLVMGetUndef(vt), mask, "v.splat");
}

/* llvm.prefetch(ptr, rw, locality, data). */
static void prefetch(Emit *e, LLVMValueRef at, int write, int locality)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMTypeRef params[4] = {e->t_ptr, i32, i32, i32};
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, params, 4, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, "llvm.prefetch.p0");
    if (!fn)
        fn = LLVMAddFunction(e->mod, "llvm.prefetch.p0", fty);
    LLVMValueRef args[4] = {at, LLVMConstInt(i32, (unsigned)write, 0),
                            LLVMConstInt(i32, (unsigned)locality, 0), LLVMConstInt(i32, 1, 0)};
    LLVMBuildCall2(e->bld, fty, fn, args, 4, "");
}

/* K steps per iteration of the unrolled micro-kernel loop, and how many K steps
 * ahead it prefetches the packed panels (measured: see bench/RESULTS.md). */
#define MICRO_UNROLL 4
#define MICRO_PREFETCH_K 16

/* One K step: acc += Ap[k*MR + r] (x) Bp[k*NR + ..], MR x NR/vw vector fmas. */
static void micro_step(Emit *e, const Contraction *c, LLVMValueRef arow, LLVMValueRef brow,
                       LLVMValueRef *acc)
{
    LLVMTypeRef vt = LLVMVectorType(e->t_f32, (unsigned)c->vw);
    int nv = (int)(c->nr / c->vw);
    LLVMValueRef bvec[8];
    for (int j = 0; j < nv; j++) {
        bvec[j] = LLVMBuildLoad2(e->bld, vt, gep(e, brow, emit_i64(e, j * c->vw)), "v.bv");
        set_align(bvec[j], (unsigned)(c->vw * c->csize));
    }
    for (int r = 0; r < c->mr; r++) {
        LLVMValueRef x = LLVMBuildLoad2(e->bld, e->t_f32, gep(e, arow, emit_i64(e, r)), "v.av");
        LLVMValueRef sp = splat(e, vt, c->vw, x);
        for (int j = 0; j < nv; j++)
            acc[r * nv + j] = vec_fma(e, vt, sp, bvec[j], acc[r * nv + j]);
    }
}

/* A loop over K steps lo .. hi-1 (step `unroll`, hi - lo a multiple of it) that
 * carries the accumulators acc (in: values before, out: after); skipped when
 * lo == hi. With unroll > 1 each iteration prefetches the panels
 * MICRO_PREFETCH_K steps ahead (whole cache lines: the unrolled steps span
 * unroll * NR * 4 bytes of Bp and unroll * MR * 4 of Ap). */
static void micro_loop(Emit *e, const Contraction *c, LLVMValueRef ap, LLVMValueRef bp,
                       LLVMValueRef lo, LLVMValueRef hi, int unroll, LLVMValueRef *acc)
{
    LLVMTypeRef vt = LLVMVectorType(e->t_f32, (unsigned)c->vw);
    int n_acc = (int)(c->mr * (c->nr / c->vw));
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.micro");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.micro.done");
    LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntULT, lo, hi, "v.any"), body, exit);
    LLVMPositionBuilderAtEnd(e->bld, body);
    LLVMValueRef k = LLVMBuildPhi(e->bld, e->t_i64, "v.k");
    LLVMAddIncoming(k, &lo, &pre, 1);
    LLVMValueRef phi[64], cur[64];
    for (int i = 0; i < n_acc; i++) {
        cur[i] = phi[i] = LLVMBuildPhi(e->bld, vt, "v.acc");
        LLVMAddIncoming(phi[i], &acc[i], &pre, 1);
    }
    if (unroll > 1) {
        LLVMValueRef ka = add(e, k, emit_i64(e, MICRO_PREFETCH_K));
        LLVMValueRef pb = gep(e, bp, mul(e, ka, c->nr)), pa = gep(e, ap, mul(e, ka, c->mr));
        for (int64_t off = 0; off < unroll * c->nr; off += 64 / c->csize)
            prefetch(e, gep(e, pb, emit_i64(e, off)), 0, 3);
        for (int64_t off = 0; off < unroll * c->mr; off += 64 / c->csize)
            prefetch(e, gep(e, pa, emit_i64(e, off)), 0, 3);
    }
    for (int u = 0; u < unroll; u++) {
        LLVMValueRef ku = add(e, k, emit_i64(e, u));
        micro_step(e, c, gep(e, ap, mul(e, ku, c->mr)), gep(e, bp, mul(e, ku, c->nr)), cur);
    }
    LLVMValueRef next = add(e, k, emit_i64(e, unroll));
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->bld);
    LLVMAddIncoming(k, &next, &latch, 1);
    for (int i = 0; i < n_acc; i++)
        LLVMAddIncoming(phi[i], &cur[i], &latch, 1);
    LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntULT, next, hi, "v.more"), body, exit);
    LLVMPositionBuilderAtEnd(e->bld, exit);
    for (int i = 0; i < n_acc; i++) {
        LLVMValueRef merged = LLVMBuildPhi(e->bld, vt, "v.acc.out");
        LLVMValueRef from[2] = {acc[i], cur[i]};
        LLVMBasicBlockRef bbs[2] = {pre, latch};
        LLVMAddIncoming(merged, from, bbs, 2);
        acc[i] = merged;
    }
}

/* result[r * NR/vw + j] = sum over k < kc of Ap panel (x) Bp panel, in
 * registers: the vector j of row r of the MR x NR tile. The K loop is unrolled
 * MICRO_UNROLL times with software prefetch of both panels; the last kc mod
 * MICRO_UNROLL steps run one at a time. */
static void micro_kernel(Emit *e, const Contraction *c, LLVMValueRef ap, LLVMValueRef bp,
                         LLVMValueRef kc, LLVMValueRef *result)
{
    LLVMTypeRef vt = LLVMVectorType(e->t_f32, (unsigned)c->vw);
    int n_acc = (int)(c->mr * (c->nr / c->vw));
    for (int i = 0; i < n_acc; i++)
        result[i] = LLVMConstNull(vt);
    LLVMValueRef main_end = LLVMBuildAnd(e->bld, kc, emit_i64(e, -(int64_t)MICRO_UNROLL), "v.kmain");
    micro_loop(e, c, ap, bp, emit_i64(e, 0), main_end, MICRO_UNROLL, result);
    micro_loop(e, c, ap, bp, main_end, kc, 1, result);
}

/* tile[MR x NR] (a stack buffer) = the accumulators. */
static void store_tile(Emit *e, const Contraction *c, LLVMValueRef tile, const LLVMValueRef *acc)
{
    for (int64_t i = 0; i < c->mr * (c->nr / c->vw); i++)
        set_align(LLVMBuildStore(e->bld, acc[i], gep(e, tile, emit_i64(e, i * c->vw))), 64);
}

/* ---- the output update ---- */

/* The old value of an output cell (or vector): 0 on the first K block of the
 * first contribution (`first` is NULL when the op is not the first). */
static LLVMValueRef old_value(Emit *e, LLVMTypeRef ty, LLVMValueRef at, unsigned align,
                              LLVMValueRef first)
{
    LLVMValueRef old = emit_tensor_load(e, e->op->out, ty, at, align, "v.o");
    return first ? LLVMBuildSelect(e->bld, first, LLVMConstNull(ty), old, "v.o0") : old;
}

/* old + v, or for a boolean contraction old OR (v > 0) (1.0 or 0.0; the
 * loop nest's rule, emit_store_contribution), for scalars or vectors of type ty. */
static LLVMValueRef combine(Emit *e, const Contraction *c, LLVMTypeRef ty, LLVMValueRef old,
                            LLVMValueRef v)
{
    if (!c->is_bool) {
        LLVMValueRef sum = LLVMBuildFAdd(e->bld, old, v, "v.s");
        emit_fast(sum);
        return sum;
    }
    LLVMValueRef pos = LLVMBuildFCmp(e->bld, LLVMRealOGT, v, LLVMConstNull(ty), "v.pos");
    LLVMValueRef b = LLVMBuildUIToFP(e->bld, pos, ty, "v.bool");
    return emit_intrinsic2(e, "llvm.maxnum", old, b);
}

/* out[at] (=|+=) coef * tile[t]. */
static void update_cell(Emit *e, const Contraction *c, LLVMValueRef at, LLVMValueRef t,
                        LLVMValueRef first)
{
    LLVMValueRef v = LLVMBuildLoad2(e->bld, e->t_f32, t, "v.t");
    if (c->coef != 1.0) {
        v = LLVMBuildFMul(e->bld, v, emit_f32(e, c->coef), "v.sc");
        emit_fast(v);
    }
    LLVMValueRef old = old_value(e, e->t_f32, at, c->esize, first);
    emit_tensor_store(e, e->op->out, combine(e, c, e->t_f32, old, v), at);
}

/* A whole row of NR contiguous output cells from the row's accumulators. */
static void update_row_vector(Emit *e, const Contraction *c, LLVMValueRef at,
                              const LLVMValueRef *acc, LLVMValueRef first)
{
    LLVMTypeRef vt = LLVMVectorType(e->t_f32, (unsigned)c->vw);
    for (int64_t j = 0; j < c->nr; j += c->vw) {
        LLVMValueRef pa = ogep(e, at, emit_i64(e, j));
        LLVMValueRef v = acc[j / c->vw];
        if (c->coef != 1.0) {
            LLVMValueRef k = splat(e, vt, c->vw, emit_f32(e, c->coef));
            v = LLVMBuildFMul(e->bld, v, k, "v.sc");
            emit_fast(v);
        }
        LLVMValueRef old = old_value(e, vt, pa, c->esize, first);
        set_align(emit_tensor_store(e, e->op->out, combine(e, c, vt, old, v), pa), c->esize);
    }
}

/* Where one micro-tile goes: rows m0 + r < m0 + mr_eff, columns n0 + col <
 * n0 + nr_eff; `first` as in old_value. */
typedef struct CTile {
    LLVMValueRef m0, mr_eff, n0, nr_eff, first;
} CTile;

/* Through the stack tile, cell by cell: edge tiles and non-contiguous rows. */
static void update_tile_cells(Emit *e, const Contraction *c, LLVMValueRef out,
                              LLVMValueRef tile, const CTile *w)
{
    CLoop lr, lc;
    LLVMValueRef r = cl_begin(e, &lr, w->mr_eff, 1, "b.up.r");
    LLVMValueRef row = ogep(e, out, group_offset(e, &c->m, 0, add(e, w->m0, r)));
    LLVMValueRef trow = gep(e, tile, mul(e, r, c->nr));
    LLVMValueRef col = cl_begin(e, &lc, w->nr_eff, 1, "b.up.c");
    LLVMValueRef at = c->is_n_contiguous
                          ? ogep(e, row, add(e, w->n0, col))
                          : ogep(e, row, group_offset(e, &c->n, 0, add(e, w->n0, col)));
    update_cell(e, c, at, gep(e, trow, col), w->first);
    cl_end(e, &lc);
    cl_end(e, &lr);
}

/* out[tile] (=|+=) coef * acc. A full tile of contiguous rows updates straight
 * from the registers, MR rows of NR/vw vectors; other tiles go through `tile`. */
static void update_tile(Emit *e, const Contraction *c, LLVMValueRef out, LLVMValueRef tile,
                        const LLVMValueRef *acc, const CTile *w)
{
    if (!c->is_n_contiguous) {
        store_tile(e, c, tile, acc);
        update_tile_cells(e, c, out, tile, w);
        return;
    }
    LLVMValueRef full = LLVMBuildAnd(
        e->bld, LLVMBuildICmp(e->bld, LLVMIntEQ, w->mr_eff, emit_i64(e, c->mr), "v.fm"),
        LLVMBuildICmp(e->bld, LLVMIntEQ, w->nr_eff, emit_i64(e, c->nr), "v.fn"), "v.full");
    LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.up.full");
    LLVMBasicBlockRef edge = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.up.edge");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.up.next");
    LLVMBuildCondBr(e->bld, full, vec, edge);
    LLVMPositionBuilderAtEnd(e->bld, vec);
    for (int64_t r = 0; r < c->mr; r++) {
        LLVMValueRef row = ogep(e, out, group_offset(e, &c->m, 0, add(e, w->m0, emit_i64(e, r))));
        update_row_vector(e, c, ogep(e, row, w->n0), acc + r * (c->nr / c->vw), w->first);
    }
    LLVMBuildBr(e->bld, done);
    LLVMPositionBuilderAtEnd(e->bld, edge);
    store_tile(e, c, tile, acc);
    update_tile_cells(e, c, out, tile, w);
    LLVMBuildBr(e->bld, done);
    LLVMPositionBuilderAtEnd(e->bld, done);
}

/* Prefetches the output rows of a tile (contiguous rows only) before the
 * micro-kernel, so their loads in update_tile do not wait for memory. Rows past
 * the tile's edge repeat its last row. */
static void prefetch_tile(Emit *e, const Contraction *c, LLVMValueRef out, const CTile *w)
{
    if (!c->is_n_contiguous)
        return;
    LLVMValueRef last = LLVMBuildSub(e->bld, w->mr_eff, emit_i64(e, 1), "v.last");
    for (int64_t r = 0; r < c->mr; r++) {
        LLVMValueRef rr = umin(e, emit_i64(e, r), last);
        LLVMValueRef row = ogep(e, out, group_offset(e, &c->m, 0, add(e, w->m0, rr)));
        row = ogep(e, row, w->n0);
        for (int64_t j = 0; j < c->nr; j += 16)
            prefetch(e, ogep(e, row, emit_i64(e, j)), 1, 3);
    }
}

/* ---- the kernel ---- */

typedef struct CPtrs {
    LLVMValueRef out, a, b, ap, bp, tile;
    LLVMValueRef n_lo, n_len; /* this thread's columns: n_lo .. n_lo + n_len - 1 */
    LLVMValueRef m_lo, m_len; /* and rows (all of them unless c->is_split_m) */
    LLVMValueRef bi;          /* fusion: the batch index */
    const LLVMValueRef *extra; /* fusion: buffers of c->epi_tensor */
    LLVMValueRef epi_fn;       /* fusion: the epilogue (epilogue_function) */
} CPtrs;

/* ---- fusion: the epilogue of a finished tile (fusion.c) ---- */

/* ctr[axis] = the counter of each axis of g at flat index x. */
static void group_counters(Emit *e, const CGroup *g, LLVMValueRef x, LLVMValueRef *ctr)
{
    LLVMValueRef q = x;
    for (int i = g->n - 1; i >= 0; i--) {
        const CAxis *a = &g->ax[i];
        ctr[a->axis] = i > 0 ? LLVMBuildURem(e->bld, q, emit_i64(e, a->size), "v.d") : q;
        if (i > 0)
            q = LLVMBuildUDiv(e->bld, q, emit_i64(e, a->size), "v.q");
    }
}

static LLVMValueRef mxcsr_with(Emit *e, bool ftz);
static void mxcsr_restore(Emit *e, LLVMValueRef saved);

/* `internal noinline void NAME.epi(ptr out, ptr extra..., i64 bi, i64 m0, i64 mr,
 * i64 n0, i64 nr)`: the epilogue of the tile's cells (rows outer). Out of line so
 * its calls (tanhf...) do not make the micro-kernel's values live across a call. */
static LLVMValueRef epilogue_function(Emit *e, const Contraction *c, const char *name)
{
    LLVMTypeRef params[EMIT_MAX_AXES + 6];
    unsigned n = 1 + (unsigned)c->n_epi_tensors;
    for (unsigned j = 0; j < n; j++)
        params[j] = e->t_ptr;
    for (unsigned j = n; j < n + 5; j++)
        params[j] = e->t_i64;
    char full[200];
    snprintf(full, sizeof full, "%s.epi", name);
    e->fn = LLVMAddFunction(e->mod, full, LLVMFunctionType(e->t_void, params, n + 5, 0));
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(e->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(e->ctx, noinline, 0));
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned j = 0; j < n; j++) /* distinct tensors; the epilogue writes none of C's inputs */
        LLVMAddAttributeAtIndex(e->fn, j + 1, LLVMCreateEnumAttribute(e->ctx, noalias, 0));
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.entry"));
    LLVMValueRef extra[EMIT_MAX_AXES], out = e->v_out;
    e->v_out = LLVMGetParam(e->fn, 0);
    for (int j = 0; j < c->n_epi_tensors; j++)
        extra[j] = LLVMGetParam(e->fn, 1 + (unsigned)j);
    LLVMValueRef ctr[EMIT_MAX_AXES];
    for (int a = 0; a < e->op->n_axes; a++)
        ctr[a] = emit_i64(e, 0);
    CLoop lr, lc;
    LLVMValueRef csr = mxcsr_with(e, false); /* the unfused ops' subnormals */
    LLVMValueRef r = cl_begin(e, &lr, LLVMGetParam(e->fn, n + 2), 1, "b.epi.r");
    LLVMValueRef col = cl_begin(e, &lc, LLVMGetParam(e->fn, n + 4), 1, "b.epi.c");
    group_counters(e, &c->batch, LLVMGetParam(e->fn, n), ctr);
    group_counters(e, &c->m, add(e, LLVMGetParam(e->fn, n + 1), r), ctr);
    group_counters(e, &c->n, add(e, LLVMGetParam(e->fn, n + 3), col), ctr);
    fuse_emit_cell(e, c, ctr, extra);
    cl_end(e, &lc);
    cl_end(e, &lr);
    mxcsr_restore(e, csr);
    LLVMBuildRetVoid(e->bld);
    LLVMValueRef fn = e->fn;
    e->v_out = out;
    return fn;
}

/* On the last K block, the finished tile (in L1) runs the epilogue. */
static void emit_epilogue(Emit *e, const Contraction *c, const CPtrs *q, const CTile *w,
                          LLVMValueRef pc, LLVMValueRef kc)
{
    LLVMValueRef end = add(e, pc, kc);
    LLVMValueRef last = LLVMBuildICmp(e->bld, LLVMIntEQ, end, emit_i64(e, c->k.total), "v.lastk");
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.epi");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.epi.next");
    LLVMBuildCondBr(e->bld, last, run, next);
    LLVMPositionBuilderAtEnd(e->bld, run);
    LLVMValueRef args[EMIT_MAX_AXES + 6];
    unsigned n = 0;
    args[n++] = e->v_out;
    for (int j = 0; j < c->n_epi_tensors; j++)
        args[n++] = q->extra[j];
    args[n++] = q->bi;
    args[n++] = w->m0;
    args[n++] = w->mr_eff;
    args[n++] = w->n0;
    args[n++] = w->nr_eff;
    LLVMBuildCall2(e->bld, LLVMGlobalGetValueType(q->epi_fn), q->epi_fn, args, n, "");
    LLVMBuildBr(e->bld, next);
    LLVMPositionBuilderAtEnd(e->bld, next);
}

/* Inside one (jc, pc) block with B packed: for each MC block of M, pack A, then
 * every micro-tile, columns outer: B's KC x NR micro-panel stays in L1 while A's
 * micro-panels stream from the L2-sized Ap. */
static void emit_ic_loop(Emit *e, const Contraction *c, const CPtrs *q, LLVMValueRef jc,
                         LLVMValueRef nc, LLVMValueRef pc, LLVMValueRef kc)
{
    CLoop li, lj, lp;
    CTile w;
    w.first = e->op->is_init ? LLVMBuildICmp(e->bld, LLVMIntEQ, pc, emit_i64(e, 0), "v.first")
                             : NULL;
    LLVMValueRef il = cl_begin(e, &li, q->m_len, c->mc, "b.ic");
    LLVMBasicBlockRef resume = emit_unless_stopped_begin(e);
    LLVMValueRef mc = umin(e, emit_i64(e, c->mc), LLVMBuildNUWSub(e->bld, q->m_len, il, "v.rest"));
    LLVMValueRef ic = add(e, q->m_lo, il);
    pack_a(e, c, q->a, q->ap, ic, mc, pc, kc);
    LLVMValueRef jr = cl_begin(e, &lj, nc, c->nr, "b.jr");
    LLVMValueRef bpanel = gep(e, q->bp, LLVMBuildNUWMul(e->bld, jr, kc, "v.bo"));
    w.nr_eff = umin(e, emit_i64(e, c->nr), LLVMBuildNUWSub(e->bld, nc, jr, "v.nr"));
    w.n0 = add(e, jc, jr);
    LLVMValueRef ir = cl_begin(e, &lp, mc, c->mr, "b.ir");
    LLVMValueRef apanel = gep(e, q->ap, LLVMBuildNUWMul(e->bld, ir, kc, "v.ao"));
    w.mr_eff = umin(e, emit_i64(e, c->mr), LLVMBuildNUWSub(e->bld, mc, ir, "v.mr"));
    w.m0 = add(e, ic, ir);
    prefetch_tile(e, c, q->out, &w);
    LLVMValueRef acc[64];
    micro_kernel(e, c, apanel, bpanel, kc, acc);
    update_tile(e, c, q->out, q->tile, acc, &w);
    if (c->n_epi)
        emit_epilogue(e, c, q, &w, pc, kc);
    cl_end(e, &lp);
    cl_end(e, &lj);
    emit_unless_stopped_end(e, resume);
    cl_end(e, &li);
}

/* For each NC block of this thread's columns and KC block of K: pack B, then the
 * M blocks. */
static void emit_blocks(Emit *e, const Contraction *c, const CPtrs *q)
{
    CLoop lj, lp;
    LLVMValueRef kt = emit_i64(e, c->k.total);
    LLVMValueRef jl = cl_begin(e, &lj, q->n_len, c->nc, "b.jc");
    LLVMValueRef nc = umin(e, emit_i64(e, c->nc), LLVMBuildNUWSub(e->bld, q->n_len, jl, "v.rest"));
    LLVMValueRef jc = add(e, q->n_lo, jl);
    LLVMValueRef pc = cl_begin(e, &lp, kt, c->kc, "b.pc");
    LLVMValueRef kc = umin(e, emit_i64(e, c->kc), LLVMBuildNUWSub(e->bld, kt, pc, "v.rest"));
    LLVMBasicBlockRef resume = emit_unless_stopped_begin(e);
    pack_b(e, c, q->b, q->bp, jc, nc, pc, kc);
    emit_ic_loop(e, c, q, jc, nc, pc, kc);
    emit_unless_stopped_end(e, resume);
    cl_end(e, &lp);
    cl_end(e, &lj);
}

static LLVMValueRef tile_alloca(Emit *e, const Contraction *c)
{
    LLVMTypeRef at = LLVMArrayType(e->t_f32, (unsigned)(c->mr * c->nr));
    LLVMValueRef v = LLVMBuildAlloca(e->bld, at, "v.tile");
    set_align(v, 64);
    return v;
}

/* Thread tid of nth takes the tid-th run of whole micro-panels of `total`
 * (width `w`): *lo = tid * chunk, *len = min(chunk, total - lo); returns the
 * "has work" flag. */
static LLVMValueRef thread_share(Emit *e, int64_t total, int64_t w, LLVMValueRef tid,
                                 LLVMValueRef nth, LLVMValueRef *lo, LLVMValueRef *len)
{
    int64_t panels = (total + w - 1) / w;
    LLVMValueRef per = LLVMBuildUDiv(e->bld, add(e, emit_i64(e, panels - 1), nth), nth, "v.per");
    LLVMValueRef chunk = mul(e, per, w);
    *lo = LLVMBuildNUWMul(e->bld, tid, chunk, "v.lo");
    LLVMValueRef t = emit_i64(e, total);
    LLVMValueRef has = LLVMBuildICmp(e->bld, LLVMIntULT, *lo, t, "v.has");
    *len = umin(e, chunk, LLVMBuildSub(e->bld, t, *lo, "v.rest"));
    return has;
}

/* The thread's share: runs of whole NR-column panels, or with c->is_split_m of
 * MR-row panels (thin products: splitting two column panels among threads made
 * each pack all of A). */
static LLVMValueRef thread_part(Emit *e, const Contraction *c, LLVMValueRef tid,
                                LLVMValueRef nth, CPtrs *q)
{
    q->n_lo = q->m_lo = emit_i64(e, 0);
    q->n_len = emit_i64(e, c->n.total);
    q->m_len = emit_i64(e, c->m.total);
    return c->is_split_m ? thread_share(e, c->m.total, c->mr, tid, nth, &q->m_lo, &q->m_len)
                         : thread_share(e, c->n.total, c->nr, tid, nth, &q->n_lo, &q->n_len);
}

static void emit_body(Emit *e, const Contraction *c, LLVMValueRef scratch, LLVMValueRef tid,
                      LLVMValueRef nth, const LLVMValueRef *extra, LLVMValueRef epi_fn)
{
    CPtrs q;
    q.extra = extra;
    q.epi_fn = epi_fn;
    q.tile = tile_alloca(e, c);
    q.bp = scratch;
    q.ap = gep(e, scratch, emit_i64(e, c->kc * c->nc));
    LLVMValueRef has = thread_part(e, c, tid, nth, &q);
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.work");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.ret");
    LLVMBuildCondBr(e->bld, has, work, done);
    LLVMPositionBuilderAtEnd(e->bld, work);
    CLoop lb;
    LLVMValueRef bi = cl_begin(e, &lb, emit_i64(e, c->batch.total), 1, "b.batch");
    q.bi = bi;
    q.out = ogep(e, e->v_out, group_offset(e, &c->batch, 0, bi));
    q.a = tgep(e, e->op->in[c->a].tensor, e->v_in[c->a], group_offset(e, &c->batch, 1, bi));
    q.b = tgep(e, e->op->in[c->b].tensor, e->v_in[c->b], group_offset(e, &c->batch, 2, bi));
    emit_blocks(e, c, &q);
    cl_end(e, &lb);
    LLVMBuildBr(e->bld, done);
    LLVMPositionBuilderAtEnd(e->bld, done);
}

/* ---- subnormals ---- */

static bool is_x86(Emit *e)
{
    const char *triple = LLVMGetTarget(e->mod);
    char *host = NULL;
    if (!triple || !*triple)
        triple = host = LLVMGetDefaultTargetTriple();
    bool yes = strncmp(triple, "x86_64", 6) == 0;
    LLVMDisposeMessage(host);
    return yes;
}

static void mxcsr_call(Emit *e, const char *name, LLVMValueRef slot)
{
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, &e->t_ptr, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
    if (!fn)
        fn = LLVMAddFunction(e->mod, name, fty);
    LLVMBuildCall2(e->bld, fty, fn, &slot, 1, "");
}

/* On x86, sets MXCSR's flush-to-zero and denormals-are-zero bits for the kernel
 * and returns the slot holding the caller's MXCSR (NULL elsewhere). An fma with a
 * subnormal operand or result takes a microcode assist there, about 100 times
 * slower: attention's softmax rows are full of them. So contraction kernels treat
 * subnormal floats (|x| < 2^-126) as zero, as BLAS libraries under FTZ/DAZ do.
 * With ftz false it clears the bits instead (a fused epilogue computes exactly
 * like the unfused ops). */
static LLVMValueRef mxcsr_with(Emit *e, bool ftz)
{
    if (!is_x86(e))
        return NULL;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef saved = LLVMBuildAlloca(e->bld, i32, "v.mxcsr");
    LLVMValueRef set = LLVMBuildAlloca(e->bld, i32, "v.mxcsr.ftz");
    mxcsr_call(e, "llvm.x86.sse.stmxcsr", saved);
    LLVMValueRef old = LLVMBuildLoad2(e->bld, i32, saved, "v.csr");
    LLVMValueRef v = ftz ? LLVMBuildOr(e->bld, old, LLVMConstInt(i32, 0x8040, 0), "v.ftz")
                         : LLVMBuildAnd(e->bld, old, LLVMConstInt(i32, ~0x8040u, 0), "v.noftz");
    LLVMBuildStore(e->bld, v, set);
    mxcsr_call(e, "llvm.x86.sse.ldmxcsr", set);
    return saved;
}

static void mxcsr_restore(Emit *e, LLVMValueRef saved)
{
    if (saved)
        mxcsr_call(e, "llvm.x86.sse.ldmxcsr", saved);
}

static LLVMValueRef flush_subnormals_begin(Emit *e) { return mxcsr_with(e, true); }

static void flush_subnormals_end(Emit *e, LLVMValueRef saved) { mxcsr_restore(e, saved); }

LLVMValueRef contract_emit_function(Emit *e, const Op *op, const Contraction *c,
                                    const char *name)
{
    e->op = op;
    e->v_out = e->v_stop = NULL;
    LLVMValueRef epi_fn = c->n_epi ? epilogue_function(e, c, name) : NULL;
    LLVMTypeRef params[7 + EMIT_MAX_AXES] = {e->t_ptr, e->t_ptr, e->t_ptr,
                                             e->t_ptr, e->t_i64, e->t_i64};
    for (int j = 0; j < c->n_epi_tensors; j++)
        params[6 + j] = e->t_ptr; /* fusion: the epilogue's tensors */
    unsigned stop_at = 6 + (unsigned)c->n_epi_tensors;
    params[stop_at] = e->t_ptr; /* the stop flag */
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, params, stop_at + 1, 0);
    e->fn = LLVMAddFunction(e->mod, name, fty);
    e->op = op;
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    LLVMAddAttributeAtIndex(e->fn, 1, LLVMCreateEnumAttribute(e->ctx, noalias, 0));
    LLVMAddAttributeAtIndex(e->fn, 4, LLVMCreateEnumAttribute(e->ctx, noalias, 0));
    e->v_out = LLVMGetParam(e->fn, 0);
    e->v_in[0] = LLVMGetParam(e->fn, 1);
    e->v_in[1] = LLVMGetParam(e->fn, 2);
    e->v_stop = LLVMGetParam(e->fn, stop_at);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.entry"));
    LLVMValueRef csr = flush_subnormals_begin(e);
    LLVMValueRef extra[EMIT_MAX_AXES];
    for (int j = 0; j < c->n_epi_tensors; j++)
        extra[j] = LLVMGetParam(e->fn, 6 + (unsigned)j);
    emit_body(e, c, LLVMGetParam(e->fn, 3), LLVMGetParam(e->fn, 4), LLVMGetParam(e->fn, 5),
              extra, epi_fn);
    flush_subnormals_end(e, csr);
    LLVMBuildRetVoid(e->bld);
    e->v_stop = NULL;
    return e->fn;
}
