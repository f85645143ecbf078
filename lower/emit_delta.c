/*
 * emit_delta.c: semi-naive delta kernels (see lower.h). The op function of a
 * recursive join loops first over the axes of its driver operand (the delta),
 * tests the cell and, when it holds a fact, loops over the remaining axes and
 * ORs (product of the other operands > 0) into the output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

static int driver_of(const Op *op)
{
    int d = -1;
    for (int k = 0; k < op->n_in; k++)
        if (op->in[k].reads_prev) {
            if (d >= 0)
                return -2;
            d = k;
        }
    return d;
}

bool lower_delta_eligible(const IrProgram *p, int g)
{
    const Group *grp = p->groups[g];
    if (!grp->is_recursive || !p->tensors[grp->tensor]->is_bool)
        return false;
    for (int i = 0; i < grp->n_ops; i++) {
        const Op *op = grp->ops[i];
        if (op->kind != OP_JOIN || !op->is_contribution || !op->is_bool_out ||
            !(op->coef > 0) || (op->red != RED_SUM && op->red != RED_MAX) ||
            op->concat_slot >= 0 || driver_of(op) < -1 || op->n_in + 1 > EMIT_MAX_AXES ||
            op->n_axes > EMIT_MAX_AXES)
            return false;
    }
    return true;
}

void lower_delta_name(const LowerOptions *opt, int g, bool is_base, char *buf, size_t n)
{
    snprintf(buf, n, "%s%c%d", opt->prefix ? opt->prefix : "", is_base ? 'b' : 'd', g);
}

static void emit_body(Emit *e, int driver, const bool *is_driver_axis)
{
    const Op *op = e->op;
    Loop loops[EMIT_MAX_AXES];
    int n = 0;
    for (int a = 0; a < op->n_axes; a++)
        if (!is_driver_axis[a])
            loops[n++] = emit_loop_begin(e, a);
    LLVMValueRef prod = emit_f32(e, 1.0);
    for (int k = 0; k < op->n_in; k++)
        if (k != driver)
            prod = LLVMBuildFMul(e->bld, prod, emit_load_operand(e, k), "v.p");
    LLVMValueRef fact = LLVMBuildUIToFP(
        e->bld, LLVMBuildFCmp(e->bld, LLVMRealOGT, prod, emit_f32(e, 0.0), "v.pos"), e->t_f32,
        "v.fact");
    LLVMValueRef addr = emit_out_addr(e);
    LLVMValueRef old = LLVMBuildLoad2(e->bld, e->t_f32, addr, "v.old");
    LLVMBuildStore(e->bld, emit_intrinsic2(e, "llvm.maxnum", old, fact), addr);
    while (n > 0)
        emit_loop_end(e, &loops[--n]);
}

static void emit_delta_join(Emit *e)
{
    const Op *op = e->op;
    int driver = driver_of(op);
    bool is_driver_axis[EMIT_MAX_AXES] = {false};
    Loop loops[FUSE_MAX_RANK];
    int n = 0;
    const Operand *d = &op->in[driver];
    for (int k = 0; k < e->p->tensors[d->tensor]->rank; k++)
        if (d->kind[k] == SL_AXIS && !is_driver_axis[d->axis[k]]) {
            is_driver_axis[d->axis[k]] = true;
            loops[n++] = emit_loop_begin(e, d->axis[k]);
        }
    LLVMValueRef x = emit_load_operand(e, driver);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.fact");
    LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.skip");
    LLVMBuildCondBr(e->bld, LLVMBuildFCmp(e->bld, LLVMRealUNE, x, emit_f32(e, 0.0), "v.new"),
                    body, skip);
    LLVMPositionBuilderAtEnd(e->bld, body);
    emit_body(e, driver, is_driver_axis);
    LLVMBuildBr(e->bld, skip);
    LLVMPositionBuilderAtEnd(e->bld, skip);
    while (n > 0)
        emit_loop_end(e, &loops[--n]);
}

static LLVMValueRef delta_op_function(Emit *e, const Op *op, const char *name)
{
    int n_params = op->n_in + 1;
    LLVMTypeRef params[EMIT_MAX_AXES + 1];
    for (int i = 0; i < n_params; i++)
        params[i] = e->t_ptr;
    e->fn = LLVMAddFunction(e->mod, name, LLVMFunctionType(e->t_void, params,
                                                           (unsigned)n_params, 0));
    e->op = op;
    LLVMSetLinkage(e->fn, LLVMInternalLinkage);
    e->v_out = LLVMGetParam(e->fn, 0);
    for (int i = 0; i < op->n_in; i++)
        e->v_in[i] = LLVMGetParam(e->fn, (unsigned)i + 1);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "b.entry"));
    emit_delta_join(e);
    LLVMBuildRetVoid(e->bld);
    return e->fn;
}

static LLVMValueRef buffer_of(Emit *e, LLVMValueRef bufs, int index)
{
    LLVMValueRef idx = emit_i64(e, index);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e->bld, e->t_ptr, bufs, &idx, 1, "v.slot");
    return LLVMBuildLoad2(e->bld, e->t_ptr, slot, "v.buf");
}

/* The delta kernel (recursive joins, delta-driven) or, with is_base, the base
 * kernel (the other joins, ordinary loop nests) of group g. */
static void emit_delta_group(Emit *e, int g, bool is_base, const char *kname)
{
    const Group *grp = e->p->groups[g];
    int n_t = e->p->n_tensors;
    LLVMValueRef fns[64];
    int n_fns = 0, which[64];
    for (int i = 0; i < grp->n_ops && n_fns < 64; i++) {
        if ((driver_of(grp->ops[i]) < 0) != is_base)
            continue;
        char name[192];
        snprintf(name, sizeof name, "%s.op%d.%s", kname, i, is_base ? "base" : "delta");
        which[n_fns] = i;
        fns[n_fns++] = is_base ? emit_op_function(e, grp->ops[i], name, false)
                               : delta_op_function(e, grp->ops[i], name);
    }
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, &e->t_ptr, 1, 0);
    LLVMValueRef fn = LLVMAddFunction(e->mod, kname, fty);
    LLVMValueRef bufs = LLVMGetParam(fn, 0);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, fn, "b.entry"));
    for (int f = 0; f < n_fns; f++) {
        const Op *op = grp->ops[which[f]];
        LLVMValueRef args[EMIT_MAX_AXES + 1];
        args[0] = buffer_of(e, bufs, op->out);
        for (int k = 0; k < op->n_in; k++)
            args[k + 1] = buffer_of(e, bufs, op->in[k].tensor + (op->in[k].reads_prev ? n_t : 0));
        LLVMBuildCall2(e->bld, LLVMGlobalGetValueType(fns[f]), fns[f], args,
                       (unsigned)op->n_in + 1, "");
    }
    LLVMBuildRetVoid(e->bld);
}

fuse_status lower_delta_program(const IrProgram *p, JitModule *jm, const LowerOptions *opt,
                                const bool *want, char **err)
{
    Emit e;
    emit_state_init(&e, p, jm, opt);
    fuse_status st = FUSE_OK;
    for (int g = 0; g < p->n_groups; g++) {
        if (!want[g])
            continue;
        if (!lower_delta_eligible(p, g)) {
            st = FUSE_E_JIT;
            if (err)
                *err = strdup("internal error: a delta kernel for an ineligible group");
            break;
        }
        char name[128];
        for (int base = 0; base < 2; base++) {
            lower_delta_name(opt, g, base, name, sizeof name);
            emit_delta_group(&e, g, base, name);
        }
    }
    LLVMDisposeBuilder(e.bld);
    return st;
}
