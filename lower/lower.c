/*
 * lower.c: a shaped IR program as one LLVM module.
 *
 * Each op is an internal function with noalias buffer parameters (emit.c); each
 * group is an exported kernel `void PREFIXgN(float **bufs)` that loads the buffers
 * of its ops from the table and calls them in order. O3 inlines the op functions
 * and keeps the noalias facts as scoped metadata. All kernels of a program share
 * one module, so the pass pipeline is set up once (DESIGN.md: facts measured).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"

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

static bool emit_group(Emit *e, const Group *g, const char *kname)
{
    LLVMValueRef op_fns[1024];
    if (g->n_ops > 1024)
        return false;
    for (int i = 0; i < g->n_ops; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.op%d.%s", kname, i,
                 g->ops[i]->kind == OP_MAP ? ir_map_fn_name(g->ops[i]->fn)
                                           : ir_op_kind_name(g->ops[i]->kind));
        op_fns[i] = emit_op_function(e, g->ops[i], name);
        if (!op_fns[i])
            return false;
    }
    LLVMTypeRef fty = LLVMFunctionType(e->t_void, &e->t_ptr, 1, 0);
    LLVMValueRef fn = LLVMAddFunction(e->mod, kname, fty);
    LLVMValueRef bufs = LLVMGetParam(fn, 0);
    LLVMSetValueName2(bufs, "bufs", 4);
    LLVMPositionBuilderAtEnd(e->bld, LLVMAppendBasicBlockInContext(e->ctx, fn, "b.entry"));
    int n_t = e->p->n_tensors;
    for (int i = 0; i < g->n_ops; i++) {
        const Op *op = g->ops[i];
        LLVMValueRef args[EMIT_MAX_AXES + 1];
        args[0] = buffer_of(e, bufs, op->out);
        for (int k = 0; k < op->n_in; k++)
            args[k + 1] = buffer_of(e, bufs, op->in[k].tensor + (op->in[k].reads_prev ? n_t : 0));
        LLVMTypeRef oty = LLVMGlobalGetValueType(op_fns[i]);
        LLVMBuildCall2(e->bld, oty, op_fns[i], args, (unsigned)op->n_in + 1, "");
    }
    LLVMBuildRetVoid(e->bld);
    return true;
}

static void emit_init(Emit *e, const IrProgram *p, JitModule *jm, const LowerOptions *opt)
{
    memset(e, 0, sizeof *e);
    e->ctx = jit_module_context(jm);
    e->mod = jit_module_llvm(jm);
    e->bld = LLVMCreateBuilderInContext(e->ctx);
    e->t_f32 = LLVMFloatTypeInContext(e->ctx);
    e->t_i64 = LLVMInt64TypeInContext(e->ctx);
    e->t_i1 = LLVMInt1TypeInContext(e->ctx);
    e->t_ptr = LLVMPointerTypeInContext(e->ctx, 0);
    e->t_void = LLVMVoidTypeInContext(e->ctx);
    e->p = p;
    e->opt = opt;
}

fuse_status lower_program(const IrProgram *p, JitModule *jm, const LowerOptions *opt,
                          char **err)
{
    if (!p->is_shaped) {
        if (err)
            *err = strdup("internal error: lowering an unshaped program");
        return FUSE_E_JIT;
    }
    Emit e;
    emit_init(&e, p, jm, opt);
    bool ok = true;
    char name[128];
    for (int g = 0; g < p->n_groups && ok; g++) {
        lower_kernel_name(opt, false, g, name, sizeof name);
        ok = emit_group(&e, p->groups[g], name);
    }
    for (int g = 0; g < p->n_sink_groups && ok; g++) {
        lower_kernel_name(opt, true, g, name, sizeof name);
        ok = emit_group(&e, p->sink_groups[g], name);
    }
    LLVMDisposeBuilder(e.bld);
    if (!ok) {
        if (err)
            *err = strdup("a group has too many ops or operands to lower");
        return FUSE_E_JIT;
    }
    return FUSE_OK;
}
