/*
 * sources.c: the program's files at run time. Sources are probed for their sizes
 * (only the header of an .npy is read) before shapes are inferred, read at every
 * run (or taken from host inputs) and converted to the runner's element type
 * (a 16-bit source is kept as it is: rt_keep_sources), zero-padded when the
 * format only bounds sizes from below (facts, bags of words); sinks are written by
 * extension under the output root, which they may not escape. A large .npy is
 * converted straight from a memory mapping (mmap.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"
#include "stream.h"

/* ---- paths ---- */

static char *join_path(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !dir[0])
        return strdup(path);
    return sup_strprintf("%s/%s", dir, path);
}

static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : "";
}

/* A sink path may not escape the output root: no absolute path, no "..". */
static bool path_stays_inside(const char *path)
{
    if (path[0] == '/' || path[0] == '\0')
        return false;
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        while (*p == '/')
            p++;
    }
    return true;
}

/* ---- sources ---- */

static const fuse_input *find_input(const fuse_input *inputs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (inputs[i].name && strcmp(inputs[i].name, name) == 0)
            return &inputs[i];
    return NULL;
}

/* Facts files and bags of words only bound their sizes from below (SPEC §2.2). */
static bool is_lower_bound_format(const char *path)
{
    const char *ext = extension(path);
    return strcasecmp(ext, ".tsv") == 0 || strcasecmp(ext, ".csv") == 0 ||
           strcasecmp(ext, ".txt") == 0 || strcasecmp(ext, ".md") == 0;
}

/* A bag of words. Its vocabulary sidecar is read first from under the output
 * root, where a run saves it (docs/files.md), else from beside the text; it is
 * saved only when `save` (a run that writes sinks). Not saving it is a warning:
 * this run's columns are right, only later runs may number new words anew. */
static fuse_status read_bow(const RtPlan *pl, const char *path, const IrTensor *t, bool save,
                            fuse_tensor *out, char **err)
{
    char *rel = io_bow_saved_vocab_path(t->path), *warn = NULL;
    IoVocabPlace place = {.root = pl->out_dir, .rel = rel, .save = save};
    fuse_status st = rel ? io_bow_read_ex(path, &place, out, &warn, err)
                         : sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    if (warn)
        rt_log(pl, FUSE_LEVEL_WARNING, "source %s: %s", t->name, warn);
    free(warn);
    free(rel);
    return st;
}

/* Reads a whole source file as a host tensor (its own dtype for .npy/.npz); `save`
 * lets a bag of words save its vocabulary. */
static fuse_status read_source(const RtPlan *pl, const char *path, const IrTensor *t,
                               bool save, fuse_tensor *out, char **err)
{
    const char *ext = extension(path);
    if (strcasecmp(ext, ".npy") == 0)
        return io_npy_read(path, out, err);
    if (strcasecmp(ext, ".npz") == 0)
        return io_npz_read(path, NULL, t->name, out, err);
    if (strcasecmp(ext, ".tsv") == 0 || strcasecmp(ext, ".csv") == 0)
        return io_facts_read_rank(path, t->rank, out, err);
    if (strcasecmp(ext, ".txt") == 0 || strcasecmp(ext, ".md") == 0)
        return read_bow(pl, path, t, save, out, err);
    if (strcasecmp(ext, ".json") == 0)
        return io_json_read(path, out, err);
    if (strcasecmp(ext, ".jsonl") == 0)
        return io_jsonl_read(path, out, err);
    if (strcasecmp(ext, ".safetensors") == 0)
        return io_safetensors_read_native(path, t->name, out, err); /* bound: any dtype */
    *err = sup_strprintf("%s: unsupported source format '%s'", path, ext);
    return FUSE_E_UNSUPPORTED;
}

/* Only the header of an .npy is read to learn its shape; a file too short for
 * the data it announces fails here, before buffers are sized from it. */
static fuse_status probe_npy(const char *path, ShapeFact *f, fuse_dtype *dt, char **err)
{
    NpyHeader h;
    fuse_status st = io_npy_probe(path, &h, err);
    if (st != FUSE_OK)
        return st;
    *dt = h.dtype;
    f->rank = h.rank;
    memcpy(f->dims, h.shape, sizeof f->dims);
    return FUSE_OK;
}

/* The sizes of source src's file into *f, and the dtype of its data into *dt. */
static fuse_status probe_source(const RtPlan *pl, const char *path, const IrTensor *src,
                                ShapeFact *f, fuse_dtype *dt, char **err)
{
    if (strcasecmp(extension(path), ".npy") == 0)
        return probe_npy(path, f, dt, err);
    fuse_tensor t;
    fuse_status st = read_source(pl, path, src, false, &t, err);
    if (st != FUSE_OK)
        return st;
    *dt = t.dtype;
    f->rank = t.rank;
    memcpy(f->dims, t.shape, sizeof f->dims);
    f->is_lower_bound = is_lower_bound_format(path);
    free(t.data);
    return FUSE_OK;
}

/* Whether a source file that is missing or does not fit the program is left to
 * the runner: when only checking (no JIT session), unless the host said it binds
 * no source (fuse_program_options.strict_sources, as fuse-jit check). */
static bool defers_files(const RtPlan *pl)
{
    const fuse_program_options *o = pl->popts;
    bool is_strict = o && o->size >= sizeof *o && o->strict_sources;
    return !pl->js && !is_strict;
}

/* Reads the sizes of every source. When only checking (no JIT session), a source
 * that cannot be read is left unknown (facts[t].is_known false, an info message
 * for the host) and sets *is_skipped instead of failing; the others are still
 * probed (fuse_program_tensor_info reports their shapes). */
fuse_status rt_probe_sources(RtPlan *pl, const fuse_input *inputs, size_t n_inputs,
                             ShapeFact *facts, bool *is_skipped)
{
    IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_tensors; i++) {
        IrTensor *t = p->tensors[i];
        if (t->kind != TEN_SOURCE || t->is_stream_state) /* stream: sized by its tensor */
            continue;
        ShapeFact *f = &facts[i];
        const fuse_input *in = find_input(inputs, n_inputs, t->name);
        f->is_known = true;
        if (in) {
            f->rank = in->tensor.rank;
            memcpy(f->dims, in->tensor.shape, sizeof f->dims);
            f->origin = arena_printf(&pl->arena, "input %s", t->name);
            pl->is_input[i] = true;
            pl->src_dtype[i] = 1 + (int)in->tensor.dtype;
            continue;
        }
        if (rt_weights_probe(pl, t, f, &pl->src_dtype[i])) { /* bound at every run */
            pl->is_input[i] = true;
            continue;
        }
        char *path = join_path(pl->base_dir, t->path), *err = NULL;
        fuse_dtype dt = FUSE_F32;
        fuse_status st = path ? probe_source(pl, path, t, f, &dt, &err) : FUSE_E_NOMEM;
        pl->src_dtype[i] = 1 + (int)dt;
        free(path);
        if (st != FUSE_OK && defers_files(pl) && st != FUSE_E_NOMEM) {
            /* Checking only: the host may bind this source at run time. */
            rt_log(pl, FUSE_LEVEL_INFO, "source %s: %s (its sizes are checked when a "
                   "runner is made)", t->name, err ? err : "cannot be read");
            free(err);
            f->is_known = false;
            *is_skipped = true;
            continue;
        }
        if (st != FUSE_OK) {
            fe_error(&pl->dl, st, t->span, "source %s: %s", t->name, err ? err : "out of memory");
            free(err);
            return st;
        }
        f->origin = arena_printf(&pl->arena, "\"%s\"", t->path);
    }
    if (!pl->js) /* once, when the program is checked */
        rt_weights_warn_unused(pl);
    return FUSE_OK;
}

/* A bindable source: not an earlier step of a streaming tensor (seeded "H@t-1"). */
static bool is_bindable_source(const IrTensor *t)
{
    return t->kind == TEN_SOURCE && !t->is_stream_state;
}

/* The source tensor nearest name in spelling, for a "did you mean" hint, or NULL. */
static const char *nearest_source(const IrProgram *p, const char *name)
{
    const char **names = p->n_tensors > 0 ? malloc((size_t)p->n_tensors * sizeof *names) : NULL;
    if (!names)
        return NULL;
    size_t n = 0;
    for (int i = 0; i < p->n_tensors; i++)
        if (is_bindable_source(p->tensors[i]))
            names[n++] = p->tensors[i]->name;
    const char *near = sup_nearest(name, names, n);
    free(names);
    return near;
}

/* "X, W, B" (the first 16, then "..."), or "none": the names an input may take.
 * In the plan's arena; NULL on OOM. */
static const char *source_list(RtPlan *pl)
{
    SupBuf b = {0};
    int n = 0;
    for (int i = 0; i < pl->ir->n_tensors; i++) {
        const IrTensor *t = pl->ir->tensors[i];
        if (!is_bindable_source(t))
            continue;
        if (n++ == 16) {
            sup_buf_puts(&b, ", ...");
            break;
        }
        sup_buf_printf(&b, "%s%s", n > 1 ? ", " : "", t->name);
    }
    char *text = sup_buf_finish(&b);
    const char *list = arena_strdup(&pl->arena, text ? text : n ? "?" : "none");
    free(text);
    return list;
}

/* An input whose name is no source: the sources it may name, and the nearest. */
static fuse_status not_a_source(RtPlan *pl, const char *name, const IrTensor *t)
{
    const char *near = t ? NULL : nearest_source(pl->ir, name);
    const char *list = source_list(pl);
    char hint[160] = "";
    if (near)
        snprintf(hint, sizeof hint, "; did you mean '%.100s'?", near);
    return fe_error(&pl->dl, FUSE_E_ARG, (Span){0},
                    "input '%s' does not name a source tensor of the program%s%s (its "
                    "sources: %s)", name, t ? ": it is computed by an equation" : "", hint,
                    list ? list : "?");
}

/* "(3, 4)", "(3,)" or "()" into buf. */
static const char *shape_text(int rank, const int64_t *shape, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "(");
    for (int k = 0; k < rank && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", k ? ", " : "",
                               (long long)shape[k]);
    if (at < cap)
        snprintf(buf + at, cap - at, "%s)", rank == 1 ? "," : "");
    return buf;
}

/* A runner's inputs must have the shapes it was compiled for. */
static fuse_status check_compiled_shape(RtPlan *pl, const IrTensor *t, const fuse_input *in)
{
    const fuse_tensor *s = &in->tensor;
    bool same = s->rank == t->rank;
    for (int k = 0; k < t->rank && same; k++)
        same = s->shape[k] == t->shape[k];
    if (same)
        return FUSE_OK;
    char has[160], needs[160];
    return fe_error(&pl->dl, FUSE_E_ARG, (Span){0},
                    "input %s has shape %s, but the runner was compiled for %s (a runner "
                    "takes the shapes it was made with; make another for these)", t->name,
                    shape_text(s->rank, s->shape, has, sizeof has),
                    shape_text(t->rank, t->shape, needs, sizeof needs));
}

fuse_status rt_check_inputs(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    for (size_t i = 0; i < n_inputs; i++) {
        if (!inputs[i].name)
            return fe_error(&pl->dl, FUSE_E_ARG, (Span){0}, "input %zu has no name", i);
        IrTensor *t = ir_tensor_find(pl->ir, inputs[i].name);
        if (rt_stream_is_seed(inputs[i].name)) { /* "H@t-1" */
            if (rt_stream_check_seed(pl, inputs[i].name) != FUSE_OK)
                return FUSE_E_ARG;
        } else if (t && t->stream && t->kind != TEN_SOURCE) {
            return rt_stream_not_source(pl, inputs[i].name);
        } else if (!t || t->kind != TEN_SOURCE) {
            return not_a_source(pl, inputs[i].name, t);
        }
        char *err = NULL; /* rank before shape, so a bad rank never reads past it */
        fuse_status st = io_tensor_check(&inputs[i].tensor, inputs[i].name, NULL, &err);
        if (st != FUSE_OK) {
            fe_error(&pl->dl, st, (Span){0}, "input %s", err ? err : "is invalid");
            free(err);
            return st;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(inputs[j].name, inputs[i].name) == 0)
                return fe_error(&pl->dl, FUSE_E_ARG, (Span){0}, "input '%s' is given twice",
                                inputs[i].name);
        bool is_compiled = pl->bufs && pl->ir->is_shaped; /* a runner's, not a check's */
        if (is_compiled && !rt_stream_is_seed(inputs[i].name) &&
            (check_compiled_shape(pl, t, &inputs[i]) != FUSE_OK ||
             rt_check_kept_source(pl, t, &inputs[i]) != FUSE_OK))
            return FUSE_E_ARG;
    }
    return FUSE_OK;
}

/* ---- shapes of bound and file sources ---- */

/* Source t's probed sizes may be relaxed when a conflict is explained: its
 * file's when only checking (a host may bind it), an input's when compiling. */
static bool is_relaxable(const RtPlan *pl, const IrTensor *t, const ShapeFact *f)
{
    if (!is_bindable_source(t) || !f->is_known)
        return false;
    return pl->js ? pl->is_input[t->id] : !pl->is_input[t->id];
}

/* The sizes the program needs for every source whose facts are relaxable, found
 * by inferring again with those facts as lower bounds of 0 (so they constrain
 * nothing); their dims then hold the needed sizes, 0 where the program leaves an
 * axis free. False when the program fails even so (its own error) or on OOM. */
static bool needed_shapes(RtPlan *pl, const ShapeFact *facts, ShapeFact *needs)
{
    IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_tensors; i++) {
        needs[i] = facts[i];
        if (!is_relaxable(pl, p->tensors[i], &facts[i]))
            continue;
        needs[i].is_lower_bound = true;
        needs[i].rank = p->tensors[i]->rank;
        memset(needs[i].dims, 0, sizeof needs[i].dims);
    }
    DiagList scratch; /* the retry's own errors are not the program's */
    fe_diags_init(&scratch, &pl->arena);
    bool is_ok = ir_infer_shapes(p, needs, &scratch) == FUSE_OK;
    for (int i = 0; is_ok && i < p->n_tensors; i++)
        if (is_relaxable(pl, p->tensors[i], &facts[i]))
            memcpy(needs[i].dims, p->tensors[i]->shape, sizeof needs[i].dims);
    p->is_shaped = false;
    return is_ok;
}

/* Whether fact f disagrees with the sizes `need` (0: free) of t. */
static bool differs(const IrTensor *t, const ShapeFact *f, const int64_t *need)
{
    if (f->rank != t->rank)
        return true;
    for (int k = 0; k < t->rank; k++)
        if (need[k] > 0 && need[k] != f->dims[k])
            return true;
    return false;
}

/* Checking only: a file that conflicts with the program may be stale beside a
 * source the host binds, so its sizes are left to the runner, like an
 * unreadable file's (an info message says so). */
static void defer_file_sizes(RtPlan *pl, ShapeFact *facts, const ShapeFact *needs,
                             const char *why)
{
    for (int i = 0; i < pl->ir->n_tensors; i++) {
        const IrTensor *t = pl->ir->tensors[i];
        if (!is_relaxable(pl, t, &facts[i]) || !differs(t, &facts[i], needs[i].dims))
            continue;
        rt_log(pl, FUSE_LEVEL_INFO, "source %s: the sizes of its file do not fit the "
               "program (%s); they are checked when a runner is made, unless it is bound",
               t->name, why);
        facts[i].is_known = false;
    }
}

/* Compiling: the first input whose shape is not the one the program needs, or
 * -1 (inputs that conflict only among themselves). */
static int misfit_input(const RtPlan *pl, const ShapeFact *facts, const ShapeFact *needs)
{
    for (int i = 0; i < pl->ir->n_tensors; i++)
        if (is_relaxable(pl, pl->ir->tensors[i], &facts[i]) &&
            differs(pl->ir->tensors[i], &facts[i], needs[i].dims))
            return i;
    return -1;
}

/* The error naming both shapes of input i, instead of the conflict of one axis. */
static fuse_status input_shape_error(RtPlan *pl, int i, const ShapeFact *f,
                                     const ShapeFact *needs)
{
    const IrTensor *t = pl->ir->tensors[i];
    char has[160], needs_text[160];
    if (f->rank != t->rank)
        return fe_error(&pl->dl, FUSE_E_SHAPE, t->span,
                        "input %s has shape %s, but the program reads it with %d axes",
                        t->name, shape_text(f->rank, f->dims, has, sizeof has), t->rank);
    int64_t need[FUSE_MAX_RANK];
    for (int k = 0; k < t->rank; k++) /* a free axis takes the input's size */
        need[k] = needs->dims[k] > 0 ? needs->dims[k] : f->dims[k];
    return fe_error(&pl->dl, FUSE_E_SHAPE, t->span,
                    "input %s has shape %s, but the program needs %s", t->name,
                    shape_text(f->rank, f->dims, has, sizeof has),
                    shape_text(t->rank, need, needs_text, sizeof needs_text));
}

/* Drops the diagnostics added since `saved` was taken. */
static void restore_diags(RtPlan *pl, DiagList saved)
{
    pl->dl = saved;
    if (saved.last)
        saved.last->next = NULL;
}

fuse_status rt_infer_source_shapes(RtPlan *pl, ShapeFact *facts, bool *is_deferred)
{
    DiagList saved = pl->dl;
    fuse_status st = ir_infer_shapes(pl->ir, facts, &pl->dl);
    if (st != FUSE_E_SHAPE || (!pl->js && !defers_files(pl)))
        return st; /* strict checking: the files' conflict stands */
    ShapeFact *needs = malloc(sizeof *needs * ((size_t)pl->ir->n_tensors + 1));
    if (!needs || !needed_shapes(pl, facts, needs)) {
        free(needs);
        return st; /* the program's own conflict: the first error stands */
    }
    if (!pl->js) {
        const char *why = pl->dl.last && pl->dl.last->msg ? pl->dl.last->msg : "a conflict";
        defer_file_sizes(pl, facts, needs, why);
        restore_diags(pl, saved);
        *is_deferred = true;
        free(needs);
        return FUSE_OK;
    }
    int i = misfit_input(pl, facts, needs);
    if (i >= 0) {
        restore_diags(pl, saved);
        st = input_shape_error(pl, i, &facts[i], &needs[i]);
    }
    free(needs);
    return st;
}

/* ---- loading ---- */

/* Copies src (elements of esize bytes, C order) into the larger dst,
 * zero-padding every axis. */
static void copy_padded(const char *src, const int64_t *sshape, char *dst,
                        const int64_t *dshape, int rank, size_t esize)
{
    if (rank == 0) {
        memcpy(dst, src, esize);
        return;
    }
    int64_t sinner = 1, dinner = 1;
    for (int k = 1; k < rank; k++) {
        sinner *= sshape[k];
        dinner *= dshape[k];
    }
    for (int64_t i = 0; i < sshape[0]; i++)
        copy_padded(src + (size_t)(i * sinner) * esize, sshape + 1,
                    dst + (size_t)(i * dinner) * esize, dshape + 1, rank - 1, esize);
}

static fuse_status load_tensor(RtPlan *pl, const IrTensor *t, const fuse_tensor *src,
                               const char *what, bool may_pad)
{
    if (t->elem && src->dtype != rt_tensor_dtype(pl, t->id)) /* its buffer holds that dtype */
        return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                        "source %s: %s holds %s now, but the runner keeps it as %s, the dtype "
                        "it had when the runner was made (make a new runner)", t->name, what,
                        fuse_dtype_name(src->dtype), fuse_dtype_name(rt_tensor_dtype(pl, t->id)));
    bool same = src->rank == t->rank, fits = same;
    for (int k = 0; k < t->rank && same; k++) {
        same = src->shape[k] == t->shape[k];
        fits = fits && src->shape[k] <= t->shape[k];
    }
    if (same) {
        rt_tensor_from_source(pl, t, src->dtype, src->data, pl->bufs[t->id], pl->count[t->id]);
        return FUSE_OK;
    }
    if (!may_pad || !fits)
        return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                        "source %s: %s changed shape since the program was compiled", t->name,
                        what);
    int64_t n = io_shape_count(src->rank, src->shape);
    size_t esize = rt_tensor_bytes(pl, t->id);
    char *tmp = malloc(esize * (size_t)(n > 0 ? n : 1));
    if (!tmp)
        return rt_alloc_failed(pl, t, "the padded copy of source", esize * (size_t)n);
    rt_tensor_from_source(pl, t, src->dtype, src->data, tmp, n);
    memset(pl->bufs[t->id], 0, esize * (size_t)pl->count[t->id]);
    if (n > 0)
        copy_padded(tmp, src->shape, (char *)pl->bufs[t->id], t->shape, t->rank, esize);
    free(tmp);
    return FUSE_OK;
}

void rt_unborrow_sources(RtPlan *pl)
{
    if (!pl || !pl->own_bufs || !pl->ir || !pl->bufs)
        return;
    for (int i = 0; i < pl->ir->n_tensors; i++)
        if (pl->own_bufs[i]) {
            pl->bufs[i] = pl->own_bufs[i];
            pl->own_bufs[i] = NULL;
        }
    for (int i = 0; pl->mapped && i < pl->ir->n_tensors; i++)
        io_npy_unmap(&pl->mapped[i]);
}

/* A source used in place moves into the plan's own buffer: copied, or
 * converted as a float32 file is (thresholded for a boolean). */
static void leave_mapping(RtPlan *pl, int t, bool is_converted)
{
    if (!pl->mapped || !pl->own_bufs || !pl->own_bufs[t] || !pl->mapped[t].map)
        return;
    if (is_converted)
        rt_tensor_from_source(pl, pl->ir->tensors[t], FUSE_F32, pl->bufs[t], pl->own_bufs[t],
                              pl->count[t]);
    else
        memcpy(pl->own_bufs[t], pl->bufs[t], (size_t)pl->count[t] * rt_tensor_bytes(pl, t));
    pl->bufs[t] = pl->own_bufs[t];
    pl->own_bufs[t] = NULL; /* the mapping stays until the next run: its check */
}

void rt_source_own_buffer(RtPlan *pl, int t) { leave_mapping(pl, t, false); }

void rt_source_settle_bool(RtPlan *pl, int t) { leave_mapping(pl, t, true); }

fuse_status rt_check_mapped_sources(RtPlan *pl)
{
    for (int i = 0; pl->mapped && i < pl->ir->n_tensors; i++)
        if (!io_npy_mapped_intact(&pl->mapped[i]))
            return fe_error(&pl->dl, FUSE_E_IO, pl->ir->tensors[i]->span,
                            "source %s: its file %s was truncated while the program ran "
                            "(it is read in place)", pl->ir->tensors[i]->name,
                            pl->ir->tensors[i]->path);
    return FUSE_OK;
}

/* Zero-copy binding: float32 data of exactly the compiled shape and
 * 64-byte aligned becomes the tensor's buffer for this run. Never for a boolean
 * tensor: its values are thresholded into its own buffer (SPEC §2.4). */
static bool try_borrow(RtPlan *pl, const IrTensor *t, const fuse_input *in)
{
    const fuse_tensor *s = &in->tensor;
    if (!in->borrow || s->dtype != rt_tensor_dtype(pl, t->id) || !s->data ||
        ((uintptr_t)s->data % rt_tensor_bytes(pl, t->id)) ||
        s->rank != t->rank || t->is_read_prev || t->is_bool)
        return false;
    for (int k = 0; k < t->rank; k++)
        if (s->shape[k] != t->shape[k])
            return false;
    if (!pl->own_bufs)
        pl->own_bufs = calloc((size_t)pl->ir->n_tensors + 1, sizeof *pl->own_bufs);
    if (!pl->own_bufs)
        return false;
    pl->own_bufs[t->id] = pl->bufs[t->id];
    pl->bufs[t->id] = s->data;
    return true;
}

/* A large float32 .npy used in place (mmap.c): t's buffer is the file's
 * mapping this run, not a copy (less memory, nothing to convert; processes
 * reading the same file share the page cache's copy: MPI ranks). Never for an
 * export bound to host memory or a tensor read at its previous sweep; nothing
 * writes into a source's buffer. *is_mapped false: not so. */
static fuse_status use_in_place(RtPlan *pl, const IrTensor *t, const char *path, bool *is_mapped,
                                char **err)
{
    int id = t->id, n = pl->ir->n_tensors;
    if (t->is_read_prev || (pl->out_bind && pl->out_bind[id]))
        return FUSE_OK;
    if (!pl->own_bufs)
        pl->own_bufs = calloc((size_t)n + 1, sizeof *pl->own_bufs);
    if (!pl->mapped)
        pl->mapped = calloc((size_t)n + 1, sizeof *pl->mapped);
    if (!pl->own_bufs || !pl->mapped)
        return FUSE_OK; /* copied instead */
    const float *data = NULL;
    int64_t lo = 0, hi = INT64_MAX; /* MPI: a boolean's 0s and 1s checked by shares */
    bool is_share = t->is_bool && rt_dist_check_share(pl, id, &lo, &hi);
    fuse_status st = io_npy_map_in_place_part(path, t->rank, t->shape, t->is_bool, lo, hi,
                                              &pl->mapped[id], &data, is_mapped, err);
    if (st != FUSE_OK || !*is_mapped)
        return st;
    if (is_share)
        rt_dist_share_checked(pl, id);
    pl->own_bufs[id] = pl->bufs[id];
    pl->bufs[id] = (float *)data; /* read-only pages: kernels only read sources */
    return FUSE_OK;
}

/* tucker: a large .npy used in place, else converted straight from a mapping
 * into t's buffer (mmap.c), only this MPI rank's rows when the plan reads it in
 * blocks (dist_exec.c); *is_mapped false leaves the file to read_source. Used
 * in place, a source the plan reads in blocks is whole on this rank as it is on
 * every other (the mapping of the whole file, of which the rank's kernels touch
 * only its rows): nothing to convert, and no gather if something reads it
 * whole later. */
static fuse_status map_source(RtPlan *pl, const IrTensor *t, const char *path, bool *is_mapped,
                              char **err)
{
    *is_mapped = false;
    if (strcasecmp(extension(path), ".npy") != 0 || pl->precision != FUSE_PRECISION_FP32 ||
        t->elem) /* a kept 16-bit source is copied as it is */
        return FUSE_OK;
    int64_t lo = 0, hi = t->rank > 0 ? t->shape[0] : 1;
    fuse_status st = use_in_place(pl, t, path, is_mapped, err);
    if (st != FUSE_OK || *is_mapped)
        return st;
    bool is_block = rt_dist_source_rows(pl, t->id, &lo, &hi); /* MPI: this rank's rows */
    st = io_npy_read_mapped_rows(path, t->rank, t->shape, lo, hi, pl->bufs[t->id], t->is_bool,
                                 is_mapped, err);
    if (st == FUSE_OK && *is_mapped && is_block)
        rt_dist_source_read(pl, t->id);
    return st;
}

/* The error of a source whose reading ran out of memory: the reader's message and
 * the size of the tensor it was read for. */
static void source_nomem(RtPlan *pl, const IrTensor *t, const char *err)
{
    char desc[256];
    rt_describe_tensor(pl, t, (uint64_t)pl->count[t->id] * rt_tensor_bytes(pl, t->id), desc,
                       sizeof desc);
    fe_error(&pl->dl, FUSE_E_NOMEM, t->span, "source %s: %s (reading it into %s)", t->name,
             err ? err : "out of memory", desc);
}

fuse_status rt_load_sources(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    IrProgram *p = pl->ir;
    rt_unborrow_sources(pl); /* never write into a host buffer of an earlier run */
    for (int i = 0; i < p->n_tensors; i++) {
        const IrTensor *t = p->tensors[i];
        if (t->kind != TEN_SOURCE || t->is_stream_state) /* stream: filled by stream.c */
            continue;
        const fuse_input *in = find_input(inputs, n_inputs, t->name);
        if (pl->is_input[i] && !in)
            return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                            "input %s was given when compiling but not to this run", t->name);
        if (in && try_borrow(pl, t, in))
            continue;
        if (in) {
            fuse_status st = load_tensor(pl, t, &in->tensor, "the input", false);
            if (st != FUSE_OK)
                return st;
            continue;
        }
        char *path = join_path(pl->base_dir, t->path), *err = NULL;
        fuse_tensor data = {0};
        bool is_mapped = false; /* tucker: a large .npy converts from a mapping */
        fuse_status st = path ? map_source(pl, t, path, &is_mapped, &err) : FUSE_E_NOMEM;
        if (st == FUSE_OK && !is_mapped)
            st = read_source(pl, path, t, pl->write_sinks, &data, &err);
        if (st == FUSE_OK && !is_mapped)
            st = load_tensor(pl, t, &data, path, is_lower_bound_format(path));
        else if (st == FUSE_E_NOMEM) /* say what the tensor takes in the plan */
            source_nomem(pl, t, err);
        else if (st != FUSE_OK)
            fe_error(&pl->dl, st, t->span, "source %s: %s", t->name, err ? err : "out of memory");
        free(err);
        free(path);
        free(data.data);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

/* ---- sinks ---- */

static bool is_sink_format(const char *path)
{
    const char *ext = extension(path);
    const char *known[] = {".npy", ".npz", ".json", ".jsonl", ".tsv", ".csv"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(ext, known[i]) == 0)
            return true;
    return false;
}

/* The same file, as written: "a.npy", "./a.npy" and "d//a.npy" vs "d/a.npy". */
static bool same_sink_path(const char *a, const char *b)
{
    for (;;) {
        while (a[0] == '.' && a[1] == '/')
            a += 2;
        while (b[0] == '.' && b[1] == '/')
            b += 2;
        if (*a == '\0' || *b == '\0')
            return *a == *b;
        if (*a != *b)
            return false;
        bool slash = *a == '/';
        a++, b++;
        while (slash && *a == '/')
            a++;
        while (slash && *b == '/')
            b++;
    }
}

fuse_status rt_check_sinks(RtPlan *pl)
{
    const IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_sinks; i++) {
        const Sink *s = p->sinks[i];
        Span at = s->stmt->span;
        if (!path_stays_inside(s->path))
            return fe_error(&pl->dl, FUSE_E_SHAPE, at, "sink path \"%s\" must stay inside the "
                            "output directory (no absolute path, no \"..\")", s->path);
        if (!s->is_topk && !is_sink_format(s->path))
            return fe_error(&pl->dl, FUSE_E_SHAPE, at, "sink \"%s\": unsupported sink format "
                            "'%s' (.npy, .npz, .json, .jsonl, .tsv or .csv)", s->path,
                            extension(s->path));
        for (int j = 0; j < i; j++)
            if (same_sink_path(p->sinks[j]->path, s->path))
                return fe_error(&pl->dl, FUSE_E_SHAPE, at, "two sinks write \"%s\": the "
                                "first is at line %d", s->path, p->sinks[j]->stmt->span.line);
    }
    return FUSE_OK;
}

/* The bytes of sink s holding v, by extension; *buf malloc'd. */
static fuse_status encode_sink(const Sink *s, const fuse_tensor *v, void **buf, size_t *len,
                               char **err)
{
    const char *ext = extension(s->path);
    char *text = NULL;
    fuse_status st;
    if (s->is_topk)
        st = io_topk_encode(v, s->k, &text, len, err);
    else if (strcasecmp(ext, ".tsv") == 0 || strcasecmp(ext, ".csv") == 0)
        st = io_facts_encode(s->path, v, &text, len, err);
    else if (strcasecmp(ext, ".npy") == 0)
        return io_npy_encode(v, buf, len, err);
    else if (strcasecmp(ext, ".npz") == 0) {
        const char *names[1] = {"arr_0"};
        return io_npz_encode(s->path, names, v, 1, buf, len, err);
    } else if (strcasecmp(ext, ".json") == 0 || strcasecmp(ext, ".jsonl") == 0)
        st = io_json_encode(v, strcasecmp(ext, ".jsonl") == 0, &text, len, err);
    else
        st = FUSE_E_UNSUPPORTED, *err = sup_strprintf("unsupported sink format '%s'", ext);
    *buf = text;
    return st;
}

/* The file is encoded in memory and written by sup_write_file_beneath, which
 * opens each directory from the output root's fd: the path text was checked
 * already (rt_check_sinks), but only the kernel can tell where a symbolic link
 * on the way leads. */
fuse_status rt_write_sink(RtPlan *pl, const Sink *s, const IrTensor *t)
{
    if (!path_stays_inside(s->path))
        return fe_error(&pl->dl, FUSE_E_IO, s->stmt->span,
                        "sink path \"%s\" must stay inside the output directory", s->path);
    fuse_tensor v = rt_elem_view(pl, t, pl->bufs[t->id]); /* bf16: .npy/.npz widen it */
    void *buf = NULL;
    size_t len = 0;
    char *err = NULL;
    fuse_status st = encode_sink(s, &v, &buf, &len, &err);
    if (st == FUSE_OK)
        st = sup_write_file_beneath(pl->out_dir, s->path, buf, len, &err);
    if (st != FUSE_OK)
        fe_error(&pl->dl, st, s->stmt->span, "sink \"%s\": %s", s->path, err ? err : "failed");
    free(err);
    free(buf);
    return st;
}
