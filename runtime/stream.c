/*
 * stream.c: streaming `*t` axes at run time (SPEC §6.4; stream.h).
 *
 * Each run of a plan is one time step. For a streaming tensor H written at offset
 * w whose window reaches back to lo, the store keeps the last w - lo values of the
 * written slot, newest first. At the run for time T the state slot of offset o
 * (o < w) holds step T + o, which the run (w - o) runs ago wrote: hist[w - o - 1].
 * Before a run every state slot is copied from the store; after a complete run
 * the written slot is pushed in front and the oldest value dropped (the buffers
 * rotate, so a commit costs one copy per streaming tensor). Queries run without a
 * commit: they evaluate the current step again and do not advance time.
 *
 * Seeds: an input "H@t-1" sets the stored step that the run reads at offset -1
 * (and, as the window moves, at older offsets in later runs). Offsets outside the
 * window, the written offset itself and names that are not streaming tensors are
 * errors that say what the window holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

/* A seed name "NAME@AXIS", "NAME@AXIS+K" or "NAME@AXIS-K", split. */
typedef struct SeedName {
    char base[256];
    char axis[64];
    int64_t offset;
} SeedName;

bool rt_stream_is_seed(const char *name) { return name && strchr(name, '@'); }

static bool seed_parse(const char *name, SeedName *out)
{
    const char *at = strchr(name, '@');
    size_t nb = (size_t)(at - name);
    const char *sign = at + 1 + strcspn(at + 1, "+-");
    size_t na = (size_t)(sign - (at + 1));
    if (nb == 0 || nb >= sizeof out->base || na == 0 || na >= sizeof out->axis)
        return false;
    memcpy(out->base, name, nb);
    out->base[nb] = '\0';
    memcpy(out->axis, at + 1, na);
    out->axis[na] = '\0';
    out->offset = 0;
    if (!*sign)
        return true;
    const char *d = sign + 1;
    if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 9)
        return false;
    out->offset = strtoll(d, NULL, 10) * (*sign == '-' ? -1 : 1);
    return true;
}

static int stream_find(const IrProgram *p, const char *name)
{
    for (int k = 0; k < p->n_streams; k++)
        if (strcmp(p->streams[k]->name, name) == 0)
            return k;
    return -1;
}

/* "*t", "*t-1". */
static void offset_text(char *buf, size_t n, const char *axis, int64_t o)
{
    if (o)
        snprintf(buf, n, "*%s%+lld", axis, (long long)o);
    else
        snprintf(buf, n, "*%s", axis);
}

/* Why seed offset o of stream s cannot be set. */
static fuse_status bad_offset(RtPlan *pl, const char *name, const IrStream *s, int64_t o)
{
    const IrTensor *t = pl->ir->tensors[s->tensor];
    char w[96], lo[96], last[96], seedable[200];
    offset_text(w, sizeof w, s->axis, s->offset);
    offset_text(lo, sizeof lo, s->axis, s->lo);
    offset_text(last, sizeof last, s->axis, s->offset - 1);
    snprintf(seedable, sizeof seedable, "%s%s%s", lo, s->lo + 1 < s->offset ? ".." : "",
             s->lo + 1 < s->offset ? last : "");
    if (o == s->offset && t->kind == TEN_SOURCE)
        return fe_error(&pl->dl, FUSE_E_ARG, s->span,
                        "input '%s' is the current step of %s: bind it as '%s'", name, s->name,
                        s->name);
    if (o == s->offset)
        return fe_error(&pl->dl, FUSE_E_ARG, s->span,
                        "input '%s': the program computes %s at %s; a seed sets an earlier "
                        "step", name, s->name, w);
    if (s->lo == s->offset)
        return fe_error(&pl->dl, FUSE_E_ARG, s->span,
                        "input '%s': unknown seeding offset; no equation reads %s before %s, "
                        "so it has no earlier step to seed", name, s->name, w);
    return fe_error(&pl->dl, FUSE_E_ARG, s->span,
                    "input '%s': unknown seeding offset; the window of %s holds %s..%s, and "
                    "a seed sets %s", name, s->name, lo, w, seedable);
}

/* The stream and offset a seed name sets (checked); -1 with a diagnostic. */
static int seed_resolve(RtPlan *pl, const char *name, int64_t *offset)
{
    const IrProgram *p = pl->ir;
    SeedName sn;
    if (!seed_parse(name, &sn)) {
        fe_error(&pl->dl, FUSE_E_ARG, (Span){0},
                 "input '%s': a seed is written NAME@AXIS-K, like H@t-1", name);
        return -1;
    }
    int k = stream_find(p, sn.base);
    if (k < 0) {
        fe_error(&pl->dl, FUSE_E_ARG, (Span){0}, "input '%s': '%s' is %s", name, sn.base,
                 ir_tensor_find(p, sn.base) ? "not a streaming tensor (no *t index)"
                                            : "not a tensor of the program");
        return -1;
    }
    const IrStream *s = p->streams[k];
    if (strcmp(sn.axis, s->axis) != 0) {
        fe_error(&pl->dl, FUSE_E_ARG, s->span, "input '%s': the time axis of %s is *%s", name,
                 s->name, s->axis);
        return -1;
    }
    if (sn.offset < s->lo || sn.offset >= s->offset) {
        bad_offset(pl, name, s, sn.offset);
        return -1;
    }
    *offset = sn.offset;
    return k;
}

fuse_status rt_stream_not_source(RtPlan *pl, const char *name)
{
    int k = stream_find(pl->ir, name);
    const IrStream *s = k >= 0 ? pl->ir->streams[k] : NULL;
    if (!s || s->lo == s->offset)
        return fe_error(&pl->dl, FUSE_E_ARG, s ? s->span : (Span){0},
                        "input '%s': the program computes this streaming tensor and reads "
                        "no earlier step of it, so there is nothing to bind", name);
    char lo[96];
    offset_text(lo, sizeof lo, s->axis, s->offset - 1);
    return fe_error(&pl->dl, FUSE_E_ARG, s->span,
                    "input '%s': the program computes %s; seed an earlier step instead, "
                    "like '%s@%s'", name, name, name, lo + 1);
}

fuse_status rt_stream_check_seed(RtPlan *pl, const char *name)
{
    int64_t o;
    return seed_resolve(pl, name, &o) < 0 ? FUSE_E_ARG : FUSE_OK;
}

/* ---- the store ---- */

void rt_stream_free(RtStreamState *s)
{
    if (!s)
        return;
    for (int k = 0; k < s->n; k++) {
        for (int j = 0; s->hist[k] && s->hist[k][j]; j++)
            io_free_aligned(s->hist[k][j]);
        free(s->hist[k]);
    }
    free(s->hist);
    free(s);
}

static size_t slot_bytes(const RtPlan *pl, const IrStream *s)
{
    return (size_t)pl->count[s->tensor] * rt_elem_bytes(pl);
}

/* hist[k]: depth zeroed buffers and a NULL end mark. */
static fuse_status alloc_store(RtPlan *pl)
{
    const IrProgram *p = pl->ir;
    RtStreamState *st = calloc(1, sizeof *st);
    if (!st)
        return FUSE_E_NOMEM;
    st->hist = calloc((size_t)p->n_streams, sizeof *st->hist);
    if (!st->hist) {
        free(st);
        return FUSE_E_NOMEM;
    }
    st->n = p->n_streams;
    for (int k = 0; k < p->n_streams; k++) {
        const IrStream *s = p->streams[k];
        int64_t depth = s->offset - s->lo;
        st->hist[k] = calloc((size_t)depth + 1, sizeof *st->hist[k]);
        for (int64_t j = 0; st->hist[k] && j < depth; j++)
            if (!(st->hist[k][j] = io_alloc_aligned(slot_bytes(pl, s)))) {
                rt_stream_free(st);
                return rt_alloc_failed(pl, p->tensors[s->tensor], "a stored step of",
                                       slot_bytes(pl, s));
            }
        if (!st->hist[k]) {
            rt_stream_free(st);
            return FUSE_E_NOMEM;
        }
    }
    pl->stream = st;
    return FUSE_OK;
}

/* Stores one seed input as the step it names. */
static fuse_status apply_seed(RtPlan *pl, const fuse_input *in)
{
    int64_t o;
    int k = seed_resolve(pl, in->name, &o);
    if (k < 0)
        return FUSE_E_ARG;
    const IrStream *s = pl->ir->streams[k];
    const IrTensor *t = pl->ir->tensors[s->tensor];
    bool same = in->tensor.rank == t->rank;
    for (int d = 0; same && d < t->rank; d++)
        same = in->tensor.shape[d] == t->shape[d];
    if (!same)
        return fe_error(&pl->dl, FUSE_E_ARG, s->span,
                        "input '%s' must have the shape of %s (rank %d, as compiled)", in->name,
                        s->name, t->rank);
    rt_elem_from_source(pl, in->tensor.dtype, in->tensor.data,
                        pl->stream->hist[k][s->offset - o - 1], pl->count[s->tensor], t->is_bool);
    return FUSE_OK;
}

fuse_status rt_stream_begin(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    const IrProgram *p = pl->ir;
    if (p->n_streams == 0)
        return FUSE_OK;
    fuse_status st = pl->stream ? FUSE_OK : alloc_store(pl);
    for (size_t i = 0; i < n_inputs && st == FUSE_OK; i++)
        if (rt_stream_is_seed(inputs[i].name))
            st = apply_seed(pl, &inputs[i]);
    if (st != FUSE_OK)
        return st;
    for (int k = 0; k < p->n_streams; k++) {
        const IrStream *s = p->streams[k];
        for (int64_t o = s->lo; o < s->offset; o++) {
            int id = s->slots[o - s->lo];
            if (id >= 0)
                memcpy(pl->bufs[id], pl->stream->hist[k][s->offset - o - 1], slot_bytes(pl, s));
        }
    }
    return FUSE_OK;
}

void rt_stream_commit(RtPlan *pl)
{
    RtStreamState *st = pl->stream;
    if (!st)
        return;
    for (int k = 0; k < st->n; k++) {
        const IrStream *s = pl->ir->streams[k];
        int64_t depth = s->offset - s->lo;
        if (depth == 0)
            continue;
        float **h = st->hist[k];
        float *oldest = h[depth - 1];
        memmove(h + 1, h, sizeof *h * (size_t)(depth - 1));
        h[0] = oldest;
        memcpy(oldest, pl->bufs[s->tensor], slot_bytes(pl, s));
    }
    st->steps++;
}

void rt_stream_reset(RtPlan *pl)
{
    RtStreamState *st = pl ? pl->stream : NULL;
    if (!st)
        return;
    for (int k = 0; k < st->n; k++)
        for (int j = 0; st->hist[k][j]; j++)
            memset(st->hist[k][j], 0, slot_bytes(pl, pl->ir->streams[k]));
    st->steps = 0;
}

int64_t rt_stream_steps(const RtPlan *pl)
{
    return pl && pl->stream ? pl->stream->steps : 0;
}
