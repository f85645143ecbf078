/*
 * query.c: demand queries (fuse_runner_query, SPEC §6.2). A query computes the
 * dependency closure of one tensor to a fixpoint (groups outside the closure never
 * run: the trace shows them skipped), then returns the tensor sliced by its
 * selectors: "x=3,y=-1" fixes LHS axes by name to an integer position (negative
 * counts from the end) and drops them from the result.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "modes.h"

static fuse_status set_error(fuse_ctx *ctx, fuse_status st, char *msg)
{
    rt_ctx_set_error(ctx, msg);
    return st;
}

static int axis_slot(const IrTensor *t, const char *name, size_t n)
{
    for (int s = 0; s < t->rank; s++)
        if (t->axis_names[s] && strlen(t->axis_names[s]) == n &&
            strncmp(t->axis_names[s], name, n) == 0)
            return s;
    return -1;
}

/* Parses one "name=int" selector at *p into pos[slot]; advances *p. */
static fuse_status parse_selector(const IrTensor *t, const char **p, int64_t *pos, char **err)
{
    const char *s = *p;
    while (isspace((unsigned char)*s))
        s++;
    const char *name = s;
    while (*s && *s != '=' && *s != ',' && !isspace((unsigned char)*s))
        s++;
    size_t n = (size_t)(s - name);
    while (isspace((unsigned char)*s))
        s++;
    if (n == 0 || *s != '=')
        return sup_fail(err, FUSE_E_ARG, "bad selector near '%s': expected AXIS=INDEX", name);
    int slot = axis_slot(t, name, n);
    if (slot < 0)
        return sup_fail(err, FUSE_E_ARG, "%s has no axis '%.*s'", t->name, (int)n, name);
    char *end;
    errno = 0;
    long long v = strtoll(s + 1, &end, 10);
    if (end == s + 1 || errno)
        return sup_fail(err, FUSE_E_ARG, "selector %.*s: expected an integer index", (int)n, name);
    if (v < 0)
        v += t->shape[slot];
    if (v < 0 || v >= t->shape[slot])
        return sup_fail(err, FUSE_E_ARG, "selector %.*s=%s is out of range: axis size %lld",
                       (int)n, name, s + 1, (long long)t->shape[slot]);
    if (pos[slot] >= 0)
        return sup_fail(err, FUSE_E_ARG, "axis %.*s is selected twice", (int)n, name);
    pos[slot] = v;
    while (isspace((unsigned char)*end))
        end++;
    if (*end && *end != ',')
        return sup_fail(err, FUSE_E_ARG, "bad selector near '%s'", end);
    *p = *end ? end + 1 : end;
    return FUSE_OK;
}

static fuse_status parse_selectors(const IrTensor *t, const char *sel, int64_t *pos, char **err)
{
    for (int s = 0; s < FUSE_MAX_RANK; s++)
        pos[s] = -1;
    const char *p = sel ? sel : "";
    while (*p) {
        fuse_status st = parse_selector(t, &p, pos, err);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

/* Copies the selected part of t's buffer (elements of the plan's dtype) into a
 * new tensor of that dtype. */
static fuse_status slice(const RtPlan *pl, const IrTensor *t, const void *buf,
                         const int64_t *pos, fuse_tensor *out)
{
    size_t esize = rt_tensor_bytes(pl, t->id);
    int64_t shape[FUSE_MAX_RANK], stride[FUSE_MAX_RANK];
    int rank = 0;
    int64_t st = 1;
    for (int s = t->rank - 1; s >= 0; s--) {
        stride[s] = st;
        st *= t->shape[s];
    }
    for (int s = 0; s < t->rank; s++)
        if (pos[s] < 0)
            shape[rank++] = t->shape[s];
    int64_t n = io_shape_count(rank, shape);
    char *vals = io_alloc_aligned((size_t)(n > 0 ? n : 1) * esize);
    if (!vals)
        return FUSE_E_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, off = 0;
        for (int s = t->rank - 1, k = rank - 1; s >= 0; s--) {
            int64_t c = pos[s];
            if (c < 0) {
                c = rem % shape[k];
                rem /= shape[k--];
            }
            off += c * stride[s];
        }
        memcpy(vals + (size_t)i * esize, (const char *)buf + (size_t)off * esize, esize);
    }
    memset(out, 0, sizeof *out);
    out->dtype = rt_tensor_dtype(pl, t->id);
    out->rank = rank;
    memcpy(out->shape, shape, sizeof shape[0] * (size_t)rank);
    out->data = vals;
    return FUSE_OK;
}

static fuse_status one_output(const char *name, fuse_tensor *t, fuse_outputs **out)
{
    fuse_outputs *o = calloc(1, sizeof *o);
    if (o) {
        o->names = calloc(1, sizeof *o->names);
        o->tensors = calloc(1, sizeof *o->tensors);
    }
    if (o && o->names && o->tensors && (o->names[0] = strdup(name))) {
        o->tensors[0] = *t;
        o->n = 1;
        *out = o;
        return FUSE_OK;
    }
    if (o) {
        free(o->names);
        free(o->tensors);
    }
    free(o);
    free(t->data);
    return FUSE_E_NOMEM;
}

static fuse_status query_fail(fuse_runner *run, fuse_status st, char *err)
{
    char *msg = sup_strprintf("error: %s", err ? err : fuse_status_name(st));
    free(err);
    return set_error(run->ctx, st, msg);
}

static fuse_status plan_fail(fuse_runner *run, fuse_status st)
{
    char *text = run->plan->dl.first ? fe_diags_format(&run->plan->dl) : NULL;
    if (!text)
        return query_fail(run, st, NULL);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    return set_error(run->ctx, st, text);
}

/* fuse_runner_query with the runner held. */
static fuse_status runner_query(fuse_runner *run, const char *name, const char *selectors,
                                const fuse_input *inputs, size_t n_inputs, fuse_outputs **out)
{
    RtPlan *pl = run->plan;
    const IrTensor *t = ir_tensor_find(pl->ir, name);
    if (!t || t->kind == TEN_TEMP) {
        const char *near = ir_tensor_nearest(pl->ir, name);
        return query_fail(run, FUSE_E_ARG,
                          near ? sup_strprintf("query: unknown tensor '%s'; did you mean '%s'?",
                                               name, near)
                               : sup_strprintf("query: unknown tensor '%s'", name));
    }
    if (t->quant) /* its buffer holds int8/uint8 data; the kernels dequantise it */
        return query_fail(run, FUSE_E_ARG,
                          sup_strprintf("query: tensor '%s' is a quantised weight, held as "
                                        "int8/uint8; query a tensor computed from it", name));
    int64_t pos[FUSE_MAX_RANK];
    char *err = NULL;
    fuse_status st = parse_selectors(t, selectors, pos, &err);
    if (st != FUSE_OK)
        return query_fail(run, st, err);
    pl->dl.first = pl->dl.last = NULL;
    pl->dl.n_errors = 0;
    fuse_input *all = NULL; /* the host's inputs and the manifest's tensors */
    size_t n_all = 0;
    st = rt_check_inputs(pl, inputs, n_inputs);
    if (st == FUSE_OK && rt_weights_bind(pl, inputs, n_inputs, &all, &n_all) != FUSE_OK)
        st = fe_error(&pl->dl, FUSE_E_NOMEM, (Span){0}, "out of memory");
    api_run_begin(run->ctx); /* fuse_ctx_interrupt */
    if (st == FUSE_OK)
        st = rt_plan_run_query(pl, all, n_all, t->id);
    api_run_end(run->ctx);
    if (all != inputs)
        free(all);
    fuse_status run_st = st;
    if (st != FUSE_OK && st != FUSE_E_NOT_CONVERGED) {
        rt_unborrow_sources(pl);
        return plan_fail(run, st);
    }
    fuse_tensor res;
    st = slice(pl, t, pl->bufs[t->id], pos, &res);
    fuse_status src_st = rt_check_mapped_sources(pl); /* none cut while it was read */
    rt_unborrow_sources(pl);
    if (st == FUSE_OK && src_st != FUSE_OK) {
        free(res.data);
        return plan_fail(run, src_st);
    }
    if (st == FUSE_OK)
        st = one_output(name, &res, out);
    if (st != FUSE_OK)
        return query_fail(run, st, strdup("out of memory"));
    return run_st == FUSE_OK ? FUSE_OK : rt_modes_not_converged(run);
}

fuse_status fuse_runner_query(fuse_runner *run, const char *name, const char *selectors,
                              const fuse_input *inputs, size_t n_inputs, fuse_outputs **out)
{
    if (!run || !name || !out || (n_inputs && !inputs))
        return run ? query_fail(run, FUSE_E_ARG, strdup("fuse_runner_query: NULL argument"))
                   : FUSE_E_ARG;
    *out = NULL;
    if (!api_runner_enter(run, "fuse_runner_query"))
        return FUSE_E_BUSY;
    fuse_status st = runner_query(run, name, selectors, inputs, n_inputs, out);
    api_runner_leave(run);
    return st;
}
