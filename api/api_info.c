/*
 * api_info.c: what a program reads and exports, before any runner is made:
 * fuse_program_tensor_count and fuse_program_tensor_info list the sources a
 * host may bind and the exports, with rank, shape when known, dtype and whether
 * boolean. Everything comes from the plan fuse_program_from_* checked: every
 * shape when all source files could be read (the IR is then shaped), else the
 * sizes of the sources that could be (RtPlan.facts) and those the program fixes.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* The one layout of fuse_tensor_info so far. */
static const ApiLayout INFO_LAYOUT = {"fuse_tensor_info",
                                      {API_FIELD_END(fuse_tensor_info, is_bool)},
                                      sizeof(fuse_tensor_info), _Alignof(fuse_tensor_info)};

enum { BOTH = FUSE_TENSORS_INPUTS | FUSE_TENSORS_EXPORTS };

static fuse_status fail(fuse_ctx *ctx, fuse_status st, char *msg)
{
    rt_ctx_set_error(ctx, msg);
    return st;
}

/* A source a host may bind, as rt_check_inputs takes it: not an earlier step of
 * a streaming tensor (a run seeds those as "H@t-1"). */
static bool is_bindable(const IrTensor *t)
{
    return t->kind == TEN_SOURCE && !t->is_stream_state;
}

fuse_status api_program_list(fuse_program *prog)
{
    const IrProgram *p = prog->plan->ir;
    prog->listed = malloc(((size_t)p->n_tensors + (size_t)p->n_exports + 1) * sizeof(int));
    if (!prog->listed)
        return FUSE_E_NOMEM;
    int n = 0;
    for (int i = 0; i < p->n_tensors; i++)
        if (is_bindable(p->tensors[i]))
            prog->listed[n++] = i;
    prog->n_listed_inputs = n;
    for (int i = 0; i < p->n_exports; i++)
        if (!is_bindable(p->tensors[p->exports[i]]))
            prog->listed[n++] = p->exports[i];
    prog->n_listed = n;
    return FUSE_OK;
}

size_t fuse_program_tensor_count(const fuse_program *prog, int which)
{
    if (!prog)
        return 0;
    switch (which & BOTH) {
    case FUSE_TENSORS_INPUTS: return (size_t)prog->n_listed_inputs;
    case FUSE_TENSORS_EXPORTS: return (size_t)prog->plan->ir->n_exports;
    case BOTH: return (size_t)prog->n_listed;
    }
    return 0;
}

/* Copies t's sizes into shape when the plan knows them before running
 * (fusejit.h: fuse_tensor_info.is_shape_known). */
static bool known_shape(const RtPlan *pl, const IrTensor *t, int64_t *shape)
{
    const ShapeFact *f = pl->facts && t->kind == TEN_SOURCE ? &pl->facts[t->id] : NULL;
    const int64_t *dims = NULL;
    if (pl->ir->is_shaped || t->is_fixed_shape)
        dims = t->shape;
    else if (f && f->is_known && !f->is_lower_bound && f->rank == t->rank)
        dims = f->dims;
    if (dims)
        memcpy(shape, dims, (size_t)t->rank * sizeof *shape);
    return dims != NULL;
}

fuse_status fuse_program_tensor_info(const fuse_program *prog, int which, size_t index,
                                     fuse_tensor_info *out)
{
    if (!prog || !out)
        return fail(prog ? prog->ctx : NULL, FUSE_E_ARG,
                    strdup("error: fuse_program_tensor_info: NULL argument"));
    size_t n = fuse_program_tensor_count(prog, which);
    if (index >= n)
        return fail(prog->ctx, FUSE_E_ARG,
                    sup_strprintf("error: fuse_program_tensor_info: index %zu is out of "
                                  "range (%zu tensors listed)", index, n));
    const RtPlan *pl = prog->plan;
    int id = (which & BOTH) == FUSE_TENSORS_EXPORTS ? pl->ir->exports[index]
                                                     : prog->listed[index];
    const IrTensor *t = pl->ir->tensors[id];
    fuse_tensor_info info;
    memset(&info, 0, sizeof info);
    info.name = t->name;
    info.is_input = is_bindable(t);
    info.is_export = t->is_export;
    info.rank = t->rank;
    info.is_shape_known = known_shape(pl, t, info.shape);
    info.dtype = FUSE_F32; /* every tensor is float32 in the runtime */
    info.is_bool = t->is_bool;
    return api_struct_out(prog->ctx, &INFO_LAYOUT, &info, out);
}
