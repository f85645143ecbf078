/*
 * emit_host.c: OP_HOST ops (tucker): the op's function calls a runtime C function
 * (lower/lower.h) by name, with the out and operand buffers and the op's constant
 * parameters (shape and ranks as private constant arrays in the module). The
 * callee is an external declaration resolved by the JIT when the code is linked,
 * so the generated code (and the cached object) holds no absolute address.
 */
#include "emit.h"

/* A private constant i64 array holding v[0..n-1] (n may be 0). */
static LLVMValueRef const_i64_array(Emit *e, const int64_t *v, int n, const char *name)
{
    LLVMValueRef elems[FUSE_MAX_RANK + 1];
    int len = n > 0 ? n : 1;
    for (int i = 0; i < len; i++)
        elems[i] = emit_i64(e, i < n ? v[i] : 0);
    LLVMTypeRef ty = LLVMArrayType2(e->t_i64, (uint64_t)len);
    LLVMValueRef g = LLVMAddGlobal(e->mod, ty, name);
    LLVMSetInitializer(g, LLVMConstArray2(e->t_i64, elems, (uint64_t)len));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

/* The external declaration of the tucker runtime function (added once). */
static LLVMValueRef tucker_decl(Emit *e, LLVMTypeRef *fty)
{
    LLVMTypeRef params[6] = {e->t_ptr, e->t_ptr, e->t_i64, e->t_ptr, e->t_ptr,
                             LLVMDoubleTypeInContext(e->ctx)};
    *fty = LLVMFunctionType(e->t_void, params, 6, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, LOWER_HOST_TUCKER);
    if (!fn) {
        fn = LLVMAddFunction(e->mod, LOWER_HOST_TUCKER, *fty);
        LLVMSetLinkage(fn, LLVMExternalLinkage);
    }
    return fn;
}

static void emit_tucker(Emit *e)
{
    const IrTensor *out = e->p->tensors[e->op->out];
    LLVMTypeRef fty;
    LLVMValueRef fn = tucker_decl(e, &fty);
    LLVMValueRef args[6] = {
        e->v_out,
        e->v_in[0],
        emit_i64(e, out->rank),
        const_i64_array(e, out->shape, out->rank, "tucker.shape"),
        const_i64_array(e, e->op->host_ranks, out->rank, "tucker.ranks"),
        LLVMConstReal(LLVMDoubleTypeInContext(e->ctx), e->op->param[0]),
    };
    LLVMBuildCall2(e->bld, fty, fn, args, 6, "");
}

void emit_host(Emit *e)
{
    switch (e->op->host_fn) {
    case HOST_TUCKER: emit_tucker(e); break;
    default: break;
    }
}
