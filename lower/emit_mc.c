/*
 * emit_mc.c: Monte Carlo projection kernels (see lower.h). The sample table of a
 * sampled join (the projected loop counters of each sample) is computed here and
 * baked into the module as a constant; the op function loops over the output
 * cells and, inside, over the samples, setting the projected counters from the
 * table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

#define MC_MAX_TABLE ((int64_t)1 << 26) /* counters in one sample table */

void lower_mc_name(const LowerOptions *opt, int g, char *buf, size_t n)
{
    snprintf(buf, n, "%sm%d", opt->prefix ? opt->prefix : "", g);
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static bool is_out_axis(const Op *op, const IrTensor *out, int a)
{
    for (int k = 0; k < out->rank; k++)
        if (op->out_axis[k] == a || op->out_minor[k] == a + 1)
            return true;
    return false;
}

/* The projected axes of a join and their number of joint cells. */
static int64_t projected(const IrProgram *p, const Op *op, int *axes, int *n)
{
    int64_t cells = 1;
    *n = 0;
    for (int a = 0; a < op->n_axes; a++)
        if (!is_out_axis(op, p->tensors[op->out], a)) {
            axes[(*n)++] = a;
            cells *= op->axes[a].size;
        }
    return cells;
}

int64_t lower_mc_op_samples(const IrProgram *p, const Op *op, int64_t samples)
{
    int axes[EMIT_MAX_AXES], n;
    if (op->kind != OP_JOIN || op->concat_slot >= 0 || samples <= 0 || op->red == RED_PROD)
        return 0; /* a product of samples estimates nothing: computed exactly */
    for (int k = 0; k < p->tensors[op->out]->rank; k++)
        if (op->out_minor[k])
            return 0;
    int64_t cells = projected(p, op, axes, &n);
    if (n == 0 || samples >= cells || samples * n > MC_MAX_TABLE)
        return 0;
    return samples;
}

/* The constant table of projected counters: samples x n_proj i64. */
static LLVMValueRef sample_table(Emit *e, const int *axes, int n_proj, int64_t samples,
                                 uint64_t key, const char *name)
{
    LLVMValueRef *vals = malloc((size_t)(samples * n_proj) * sizeof *vals);
    if (!vals)
        return NULL;
    int64_t cells = 1;
    for (int j = 0; j < n_proj; j++)
        cells *= e->op->axes[axes[j]].size;
    for (int64_t s = 0; s < samples; s++) {
        uint64_t idx = splitmix64(key ^ splitmix64((uint64_t)s)) % (uint64_t)cells;
        for (int j = n_proj - 1; j >= 0; j--) {
            uint64_t size = (uint64_t)e->op->axes[axes[j]].size;
            vals[s * n_proj + j] = emit_i64(e, (int64_t)(idx % size));
            idx /= size;
        }
    }
    LLVMTypeRef aty = LLVMArrayType2(e->t_i64, (uint64_t)(samples * n_proj));
    LLVMValueRef g = LLVMAddGlobal(e->mod, aty, name);
    LLVMSetInitializer(g, LLVMConstArray2(e->t_i64, vals, (uint64_t)(samples * n_proj)));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    free(vals);
    return g;
}

/* acc over the samples; returns the reduced value (before scaling). */
static LLVMValueRef sample_loop(Emit *e, LLVMValueRef table, const int *axes, int n_proj,
                                int64_t samples)
{
    const Op *op = e->op;
    LLVMValueRef acc = emit_entry_alloca(e, "v.mcacc");
    LLVMBuildStore(e->bld, emit_reduce_init(e, op), acc);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.sample");
    LLVMBuildBr(e->bld, head);
    LLVMPositionBuilderAtEnd(e->bld, head);
    LLVMValueRef s = LLVMBuildPhi(e->bld, e->t_i64, "v.s");
    LLVMValueRef zero = emit_i64(e, 0);
    LLVMAddIncoming(s, &zero, &pre, 1);
    LLVMTypeRef aty = LLVMArrayType2(e->t_i64, (uint64_t)(samples * n_proj));
    for (int j = 0; j < n_proj; j++) {
        LLVMValueRef at = LLVMBuildAdd(e->bld, LLVMBuildMul(e->bld, s, emit_i64(e, n_proj), "v.row"),
                                       emit_i64(e, j), "v.at");
        LLVMValueRef idx[2] = {zero, at};
        LLVMValueRef ptr = LLVMBuildInBoundsGEP2(e->bld, aty, table, idx, 2, "v.tab");
        e->v_counter[axes[j]] = LLVMBuildLoad2(e->bld, e->t_i64, ptr, "v.pos");
    }
    LLVMValueRef x = emit_f32(e, 1.0);
    for (int i = 0; i < op->n_in; i++)
        x = LLVMBuildFMul(e->bld, x, emit_load_operand(e, i), "v.prod");
    LLVMValueRef a = LLVMBuildLoad2(e->bld, e->t_f32, acc, "v.a");
    LLVMBuildStore(e->bld, emit_reduce_step(e, op, a, x), acc);
    LLVMValueRef next = LLVMBuildNUWAdd(e->bld, s, emit_i64(e, 1), "v.snext");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->bld);
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.sdone");
    LLVMBuildCondBr(e->bld, LLVMBuildICmp(e->bld, LLVMIntULT, next, emit_i64(e, samples), "v.smore"),
                    head, exit);
    LLVMAddIncoming(s, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(e->bld, exit);
    return LLVMBuildLoad2(e->bld, e->t_f32, acc, "v.mc");
}

static LLVMValueRef mc_op_function(Emit *e, const Op *op, const char *name, int64_t samples,
                                   uint64_t key)
{
    int axes[EMIT_MAX_AXES], n_proj;
    int64_t cells = projected(e->p, op, axes, &n_proj);
    char tname[224];
    snprintf(tname, sizeof tname, "%s.samples", name);
    e->op = op;
    LLVMValueRef table = sample_table(e, axes, n_proj, samples, key, tname);
    if (!table)
        return NULL;
    int n_params = op->n_in + 1;
    LLVMTypeRef params[EMIT_MAX_AXES + 1];
    for (int i = 0; i < n_params; i++)
        params[i] = e->t_ptr;
    e->fn = LLVMAddFunction(e->mod, name, LLVMFunctionType(e->t_void, params, (unsigned)n_params, 0));
    e->op = op;
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    e->v_out = LLVMGetParam(e->fn, 0);
    for (int i = 0; i < op->n_in; i++)
        e->v_in[i] = LLVMGetParam(e->fn, (unsigned)i + 1);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.entry"));
    Loop loops[EMIT_MAX_AXES];
    int n = 0;
    for (int a = 0; a < op->n_axes; a++)
        if (is_out_axis(op, e->p->tensors[op->out], a))
            loops[n++] = emit_loop_begin(e, a);
    LLVMValueRef v = sample_loop(e, table, axes, n_proj, samples);
    double scale = op->coef;
    if (op->is_rsqrt_scaled)
        scale /= sqrt((double)cells);
    scale *= op->red == RED_SUM ? (double)cells / (double)samples
             : op->red == RED_AVG ? 1.0 / (double)samples : 1.0;
    if (scale != 1.0)
        v = LLVMBuildFMul(e->bld, v, emit_f32(e, scale), "v.scaled");
    emit_store_contribution(e, v);
    while (n > 0)
        emit_loop_end(e, &loops[--n]);
    LLVMBuildRetVoid(e->bld);
    return e->fn;
}

static LLVMValueRef buffer_of(Emit *e, LLVMValueRef bufs, int index)
{
    LLVMValueRef idx = emit_i64(e, index);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e->bld, e->t_ptr, bufs, &idx, 1, "v.slot");
    return LLVMBuildLoad2(e->bld, e->t_ptr, slot, "v.buf");
}

static bool emit_mc_group(Emit *e, int g, const char *kname, int64_t samples, uint64_t seed)
{
    const Group *grp = e->p->groups[g];
    LLVMValueRef *fns = calloc((size_t)grp->n_ops + 1, sizeof *fns);
    if (!fns)
        return false;
    bool ok = true;
    for (int i = 0; i < grp->n_ops && ok; i++) {
        char name[192];
        int64_t s = lower_mc_op_samples(e->p, grp->ops[i], samples);
        snprintf(name, sizeof name, "%s.op%d.%s", kname, i, s ? "mc" : "exact");
        uint64_t key = splitmix64(seed ^ splitmix64(((uint64_t)g << 20) + (uint64_t)i));
        fns[i] = s ? mc_op_function(e, grp->ops[i], name, s, key)
                   : emit_op_function(e, grp->ops[i], name, false);
        ok = fns[i] != NULL;
    }
    if (ok) {
        LLVMValueRef fn = LLVMAddFunction(e->mod, kname, LLVMFunctionType(e->t_void, &e->t_ptr, 1, 0));
        LLVMValueRef bufs = LLVMGetParam(fn, 0);
        LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, fn, "b.entry"));
        int n_t = e->p->n_tensors;
        for (int i = 0; i < grp->n_ops; i++) {
            const Op *op = grp->ops[i];
            LLVMValueRef args[EMIT_MAX_AXES + 2];
            args[0] = buffer_of(e, bufs, op->out);
            for (int k = 0; k < op->n_in; k++)
                args[k + 1] = buffer_of(e, bufs, op->in[k].tensor + (op->in[k].reads_prev ? n_t : 0));
            unsigned n = (unsigned)op->n_in + 1;
            if (!lower_mc_op_samples(e->p, op, samples)) /* the exact op's stop flag */
                args[n++] = emit_never_stop(e);
            LLVMBuildCall2(e->bld, LLVMGlobalGetValueType(fns[i]), fns[i], args, n, "");
        }
        LLVMBuildRetVoid(e->bld);
    }
    free(fns);
    return ok;
}

fuse_status lower_mc_program(const IrProgram *p, LLVMModuleRef mod, const LowerOptions *opt,
                             int64_t samples, uint64_t seed, char **err)
{
    Emit e;
    emit_state_init(&e, p, mod, opt);
    bool ok = true;
    for (int g = 0; g < p->n_groups && ok; g++) {
        char name[128];
        lower_mc_name(opt, g, name, sizeof name);
        ok = emit_mc_group(&e, g, name, samples, seed);
    }
    LLVMDisposeBuilder(e.bld);
    if (!ok && err)
        *err = strdup("cannot emit the Monte Carlo kernels (out of memory or too many operands)");
    return ok ? FUSE_OK : FUSE_E_JIT;
}
