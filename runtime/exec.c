/*
 * exec.c: compiles a program for its input shapes and runs it.
 *
 * rt_plan_new drives the stages: parse (frontend), build and order (ir), read the
 * headers of sources to learn their sizes, infer shapes, lower to one LLVM module,
 * optimise and load it (jit), look the kernels up and allocate one buffer per
 * tensor. rt_plan_run zeroes computed tensors, reads sources (or takes host
 * inputs), calls the group kernels in order, then the sink kernels, and writes the
 * sink files. Diagnostics name the statement involved (file:line:col).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jit.h"
#include "lower.h"
#include "runtime.h"

/* ---- paths ---- */

static char *join_path(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !dir[0])
        return strdup(path);
    return rt_strprintf("%s/%s", dir, path);
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

/* Reads a whole source file as a host tensor (its own dtype for .npy/.npz). */
static fuse_status read_source(const char *path, const IrTensor *t, fuse_tensor *out,
                               char **err)
{
    const char *ext = extension(path);
    if (strcasecmp(ext, ".npy") == 0)
        return rt_npy_read(path, out, err);
    if (strcasecmp(ext, ".npz") == 0)
        return rt_npz_read(path, NULL, t->name, out, err);
    if (strcasecmp(ext, ".tsv") == 0 || strcasecmp(ext, ".csv") == 0)
        return rt_facts_read_rank(path, t->rank, out, err);
    if (strcasecmp(ext, ".txt") == 0 || strcasecmp(ext, ".md") == 0)
        return rt_bow_read(path, out, err);
    if (strcasecmp(ext, ".json") == 0)
        return rt_json_read(path, out, err);
    if (strcasecmp(ext, ".jsonl") == 0)
        return rt_jsonl_read(path, out, err);
    if (strcasecmp(ext, ".safetensors") == 0)
        return rt_safetensors_read(path, t->name, out, err);
    *err = rt_strprintf("%s: unsupported source format '%s'", path, ext);
    return FUSE_E_UNSUPPORTED;
}

/* Only the header of an .npy is read to learn its shape. */
static fuse_status probe_npy(const char *path, ShapeFact *f, char **err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *err = rt_strprintf("cannot open '%s': %s", path, strerror(errno));
        return FUSE_E_IO;
    }
    unsigned char buf[65536 + 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    NpyHeader h;
    fuse_status st = rt_npy_parse_header(buf, n, &h, err);
    if (st != FUSE_OK)
        return st;
    f->rank = h.rank;
    memcpy(f->dims, h.shape, sizeof f->dims);
    return FUSE_OK;
}

static fuse_status probe_source(const char *path, const IrTensor *src, ShapeFact *f, char **err)
{
    if (strcasecmp(extension(path), ".npy") == 0)
        return probe_npy(path, f, err);
    fuse_tensor t;
    fuse_status st = read_source(path, src, &t, err);
    if (st != FUSE_OK)
        return st;
    f->rank = t.rank;
    memcpy(f->dims, t.shape, sizeof f->dims);
    f->is_lower_bound = is_lower_bound_format(path);
    free(t.data);
    return FUSE_OK;
}

/* Reads the sizes of every source. When only checking (no JIT session), a source
 * that cannot be read sets *is_skipped instead of failing. */
static fuse_status probe_all(RtPlan *pl, const fuse_input *inputs, size_t n_inputs,
                             ShapeFact *facts, bool *is_skipped)
{
    IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_tensors; i++) {
        IrTensor *t = p->tensors[i];
        if (t->kind != TEN_SOURCE)
            continue;
        ShapeFact *f = &facts[i];
        const fuse_input *in = find_input(inputs, n_inputs, t->name);
        f->is_known = true;
        if (in) {
            f->rank = in->tensor.rank;
            memcpy(f->dims, in->tensor.shape, sizeof f->dims);
            f->origin = arena_printf(&pl->arena, "input %s", t->name);
            pl->is_input[i] = true;
            continue;
        }
        char *path = join_path(pl->base_dir, t->path), *err = NULL;
        fuse_status st = path ? probe_source(path, t, f, &err) : FUSE_E_NOMEM;
        free(path);
        if (st != FUSE_OK && !pl->js && st != FUSE_E_NOMEM) {
            /* Checking only: the host may bind this source at run time. */
            free(err);
            *is_skipped = true;
            return FUSE_OK;
        }
        if (st != FUSE_OK) {
            fe_error(&pl->dl, st, t->span, "source %s: %s", t->name, err ? err : "out of memory");
            free(err);
            return st;
        }
        f->origin = arena_printf(&pl->arena, "\"%s\"", t->path);
    }
    return FUSE_OK;
}

static fuse_status check_inputs(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    for (size_t i = 0; i < n_inputs; i++) {
        if (!inputs[i].name || (!inputs[i].tensor.data &&
                                rt_shape_count(inputs[i].tensor.rank, inputs[i].tensor.shape)))
            return fe_error(&pl->dl, FUSE_E_ARG, (Span){0}, "input %zu has no name or data", i);
        IrTensor *t = ir_tensor_find(pl->ir, inputs[i].name);
        if (!t || t->kind != TEN_SOURCE)
            return fe_error(&pl->dl, FUSE_E_ARG, (Span){0},
                            "input '%s' does not name a source tensor of the program",
                            inputs[i].name);
        if (inputs[i].tensor.rank < 0 || inputs[i].tensor.rank > FUSE_MAX_RANK ||
            fuse_dtype_size(inputs[i].tensor.dtype) == 0)
            return fe_error(&pl->dl, FUSE_E_ARG, (Span){0}, "input '%s' has a bad rank or dtype",
                            inputs[i].name);
    }
    return FUSE_OK;
}

/* ---- compile ---- */

static fuse_status alloc_buffers(RtPlan *pl)
{
    IrProgram *p = pl->ir;
    int n = p->n_tensors;
    pl->bufs = calloc((size_t)n * 2 + 1, sizeof *pl->bufs);
    pl->count = calloc((size_t)n + 1, sizeof *pl->count);
    if (!pl->bufs || !pl->count)
        return FUSE_E_NOMEM;
    for (int i = 0; i < n; i++) {
        IrTensor *t = p->tensors[i];
        pl->count[i] = rt_shape_count(t->rank, t->shape);
        if (pl->count[i] < 0 || (uint64_t)pl->count[i] > ((uint64_t)1 << 40))
            return fe_error(&pl->dl, FUSE_E_SHAPE, t->span, "tensor %s is too large", t->name);
        size_t bytes = (size_t)pl->count[i] * sizeof(float);
        pl->bufs[i] = rt_alloc_aligned(bytes);
        if (t->is_read_prev)
            pl->bufs[n + i] = rt_alloc_aligned(bytes);
        if (!pl->bufs[i] || (t->is_read_prev && !pl->bufs[n + i]))
            return FUSE_E_NOMEM;
        if (t->kind == TEN_CONST)
            memcpy(pl->bufs[i], t->data, bytes);
    }
    return FUSE_OK;
}

static fuse_status jit_fail(RtPlan *pl, fuse_status st, char *err)
{
    fe_error(&pl->dl, st, (Span){0}, "code generation failed: %s", err ? err : "unknown");
    free(err);
    return st;
}

static fuse_status lookup_kernels(RtPlan *pl, const LowerOptions *opt)
{
    IrProgram *p = pl->ir;
    pl->group_fn = calloc((size_t)p->n_groups + 1, sizeof *pl->group_fn);
    pl->sink_fn = calloc((size_t)p->n_sink_groups + 1, sizeof *pl->sink_fn);
    if (!pl->group_fn || !pl->sink_fn)
        return FUSE_E_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++) {
            char name[128], *err = NULL;
            void *addr = NULL;
            lower_kernel_name(opt, pass == 1, g, name, sizeof name);
            fuse_status st = jit_code_lookup(pl->code, name, &addr, &err);
            if (st != FUSE_OK)
                return jit_fail(pl, st, err);
            /* Object pointer to function pointer: the JIT returns code addresses. */
            RtKernel k;
            memcpy(&k, &addr, sizeof k);
            (pass ? pl->sink_fn : pl->group_fn)[g] = k;
        }
    }
    return FUSE_OK;
}

static fuse_status build_module(RtPlan *pl, JitModule **out, char **err)
{
    LowerOptions opt = {pl->prefix, jit_vector_bits(pl->js)};
    JitModule *jm = jit_module_new(pl->js, pl->prefix);
    if (!jm)
        return FUSE_E_NOMEM;
    fuse_status st = lower_program(pl->ir, jm, &opt, err);
    if (st != FUSE_OK) {
        jit_module_free(jm);
        return st;
    }
    *out = jm;
    return FUSE_OK;
}

static fuse_status compile(RtPlan *pl)
{
    JitModule *jm = NULL;
    char *err = NULL;
    fuse_status st = build_module(pl, &jm, &err);
    if (st == FUSE_OK)
        st = jit_module_optimize(pl->js, jm, &err);
    if (st == FUSE_OK)
        st = jit_module_load(pl->js, jm, &pl->code, &err);
    jit_module_free(jm);
    if (st != FUSE_OK)
        return jit_fail(pl, st, err);
    LowerOptions opt = {pl->prefix, 0};
    return lookup_kernels(pl, &opt);
}

fuse_status rt_plan_emit(RtPlan *pl, const char *what, char **out, char **err)
{
    JitModule *jm = NULL;
    fuse_status st = build_module(pl, &jm, err);
    if (st != FUSE_OK)
        return st;
    if (strcmp(what, "llvm") == 0 || strcmp(what, "asm") == 0)
        st = jit_module_optimize(pl->js, jm, err);
    if (st == FUSE_OK && strcmp(what, "asm") == 0)
        st = jit_module_asm(pl->js, jm, out, err);
    else if (st == FUSE_OK) {
        *out = jit_module_print(jm);
        st = *out ? FUSE_OK : FUSE_E_NOMEM;
    }
    jit_module_free(jm);
    return st;
}

static fuse_status parse_and_check(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    fuse_status st = fe_parse(&pl->arena, &pl->src, &pl->dl, &pl->ast);
    if (st == FUSE_OK)
        st = ir_build(&pl->arena, &pl->ast, &pl->dl, &pl->ir);
    if (st == FUSE_OK)
        st = ir_order(pl->ir, &pl->dl);
    if (st == FUSE_OK)
        st = check_inputs(pl, inputs, n_inputs);
    if (st != FUSE_OK)
        return st;
    ShapeFact *facts = arena_alloc(&pl->arena, sizeof *facts * ((size_t)pl->ir->n_tensors + 1));
    pl->is_input = calloc((size_t)pl->ir->n_tensors + 1, sizeof *pl->is_input);
    if (!facts || !pl->is_input)
        return FUSE_E_NOMEM;
    bool is_skipped = false;
    st = probe_all(pl, inputs, n_inputs, facts, &is_skipped);
    if (is_skipped)
        return FUSE_OK; /* a source is not readable yet: sizes are checked per runner */
    if (st == FUSE_OK)
        st = ir_infer_shapes(pl->ir, facts, &pl->dl);
    if (st == FUSE_OK)
        st = ir_check_builtins(pl->ir, &pl->dl);
    return st;
}

fuse_status rt_plan_new(RtPlan **out, const char *text, const char *name,
                        const char *base_dir, const char *out_dir, bool write_sinks,
                        const fuse_input *inputs, size_t n_inputs, JitSession *js,
                        const char *prefix)
{
    RtPlan *pl = calloc(1, sizeof *pl);
    *out = pl;
    if (!pl)
        return FUSE_E_NOMEM;
    arena_init(&pl->arena);
    fe_diags_init(&pl->dl, &pl->arena);
    pl->src.name = arena_strdup(&pl->arena, name ? name : "<input>");
    pl->src.text = arena_strdup(&pl->arena, text);
    pl->src.len = strlen(text);
    pl->base_dir = strdup(base_dir ? base_dir : ".");
    pl->out_dir = strdup(out_dir ? out_dir : pl->base_dir ? pl->base_dir : ".");
    pl->write_sinks = write_sinks;
    pl->js = js;
    snprintf(pl->prefix, sizeof pl->prefix, "%s", prefix ? prefix : "fuse_");
    if (!pl->src.name || !pl->src.text || !pl->base_dir || !pl->out_dir)
        return FUSE_E_NOMEM;
    fuse_status st = parse_and_check(pl, inputs, n_inputs);
    if (st == FUSE_OK && js)
        st = alloc_buffers(pl);
    if (st == FUSE_OK && js)
        st = compile(pl);
    return st;
}

void rt_plan_free(RtPlan *pl)
{
    if (!pl)
        return;
    jit_code_free(pl->code);
    if (pl->bufs && pl->ir)
        for (int i = 0; i < 2 * pl->ir->n_tensors; i++)
            rt_free_aligned(pl->bufs[i]);
    free(pl->bufs);
    free(pl->count);
    free(pl->is_input);
    free(pl->group_fn);
    free(pl->sink_fn);
    free(pl->base_dir);
    free(pl->out_dir);
    arena_free_all(&pl->arena);
    free(pl);
}

/* ---- run ---- */

/* Copies src (float32, C order) into the larger dst, zero-padding every axis. */
static void copy_padded(const float *src, const int64_t *sshape, float *dst,
                        const int64_t *dshape, int rank)
{
    if (rank == 0) {
        dst[0] = src[0];
        return;
    }
    int64_t sinner = 1, dinner = 1;
    for (int k = 1; k < rank; k++) {
        sinner *= sshape[k];
        dinner *= dshape[k];
    }
    for (int64_t i = 0; i < sshape[0]; i++)
        copy_padded(src + i * sinner, sshape + 1, dst + i * dinner, dshape + 1, rank - 1);
}

static fuse_status load_tensor(RtPlan *pl, const IrTensor *t, const fuse_tensor *src,
                               const char *what, bool may_pad)
{
    bool same = src->rank == t->rank, fits = same;
    for (int k = 0; k < t->rank && same; k++) {
        same = src->shape[k] == t->shape[k];
        fits = fits && src->shape[k] <= t->shape[k];
    }
    if (same) {
        rt_convert_to_f32(src->dtype, src->data, pl->bufs[t->id], pl->count[t->id]);
        return FUSE_OK;
    }
    if (!may_pad || !fits)
        return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                        "source %s: %s changed shape since the program was compiled", t->name,
                        what);
    int64_t n = rt_shape_count(src->rank, src->shape);
    float *tmp = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!tmp)
        return FUSE_E_NOMEM;
    rt_convert_to_f32(src->dtype, src->data, tmp, n);
    memset(pl->bufs[t->id], 0, sizeof(float) * (size_t)pl->count[t->id]);
    if (n > 0)
        copy_padded(tmp, src->shape, pl->bufs[t->id], t->shape, t->rank);
    free(tmp);
    return FUSE_OK;
}

static fuse_status load_sources(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_tensors; i++) {
        const IrTensor *t = p->tensors[i];
        if (t->kind != TEN_SOURCE)
            continue;
        const fuse_input *in = find_input(inputs, n_inputs, t->name);
        if (pl->is_input[i] && !in)
            return fe_error(&pl->dl, FUSE_E_ARG, t->span,
                            "input %s was given when compiling but not to this run", t->name);
        if (in) {
            fuse_status st = load_tensor(pl, t, &in->tensor, "the input", false);
            if (st != FUSE_OK)
                return st;
            continue;
        }
        char *path = join_path(pl->base_dir, t->path), *err = NULL;
        fuse_tensor data = {0};
        fuse_status st = path ? read_source(path, t, &data, &err) : FUSE_E_NOMEM;
        if (st == FUSE_OK)
            st = load_tensor(pl, t, &data, path, is_lower_bound_format(path));
        else
            fe_error(&pl->dl, st, t->span, "source %s: %s", t->name, err ? err : "out of memory");
        free(err);
        free(path);
        free(data.data);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

static void zero_computed(RtPlan *pl)
{
    IrProgram *p = pl->ir;
    for (int i = 0; i < p->n_tensors; i++) {
        TensorKind k = p->tensors[i]->kind;
        size_t bytes = (size_t)pl->count[i] * sizeof(float);
        if (k == TEN_DEFINED || k == TEN_TEMP)
            memset(pl->bufs[i], 0, bytes);
        if (pl->bufs[p->n_tensors + i])
            memset(pl->bufs[p->n_tensors + i], 0, bytes);
    }
}

static fuse_status write_sink(RtPlan *pl, const Sink *s, const IrTensor *t)
{
    if (!path_stays_inside(s->path))
        return fe_error(&pl->dl, FUSE_E_IO, s->stmt->span,
                        "sink path \"%s\" must stay inside the output directory", s->path);
    fuse_tensor v = {.dtype = FUSE_F32, .rank = t->rank, .data = pl->bufs[t->id]};
    memcpy(v.shape, t->shape, sizeof v.shape);
    char *path = join_path(pl->out_dir, s->path), *err = NULL;
    if (!path)
        return FUSE_E_NOMEM;
    const char *ext = extension(path);
    fuse_status st;
    if (s->is_topk)
        st = rt_topk_write(path, &v, s->k, &err);
    else if (strcasecmp(ext, ".tsv") == 0 || strcasecmp(ext, ".csv") == 0)
        st = rt_facts_write(path, &v, &err);
    else if (strcasecmp(ext, ".npy") == 0)
        st = rt_npy_write(path, &v, &err);
    else if (strcasecmp(ext, ".npz") == 0) {
        const char *names[1] = {"arr_0"};
        st = rt_make_parent_dirs(path, &err);
        if (st == FUSE_OK)
            st = rt_npz_write(path, names, &v, 1, &err);
    } else if (strcasecmp(ext, ".json") == 0)
        st = rt_json_write(path, &v, &err);
    else if (strcasecmp(ext, ".jsonl") == 0)
        st = rt_jsonl_write(path, &v, &err);
    else
        st = FUSE_E_UNSUPPORTED, err = rt_strprintf("unsupported sink format '%s'", ext);
    if (st != FUSE_OK)
        fe_error(&pl->dl, st, s->stmt->span, "sink \"%s\": %s", s->path, err ? err : "failed");
    free(err);
    free(path);
    return st;
}

fuse_status rt_plan_run(RtPlan *pl, const fuse_input *inputs, size_t n_inputs)
{
    IrProgram *p = pl->ir;
    zero_computed(pl);
    fuse_status st = load_sources(pl, inputs, n_inputs);
    if (st != FUSE_OK)
        return st;
    for (int g = 0; g < p->n_groups; g++)
        pl->group_fn[g](pl->bufs);
    for (int s = 0; s < p->n_sinks; s++) {
        const Sink *sink = p->sinks[s];
        pl->sink_fn[sink->group](pl->bufs);
        if (pl->write_sinks) {
            st = write_sink(pl, sink, p->tensors[p->sink_groups[sink->group]->tensor]);
            if (st != FUSE_OK)
                return st;
        }
    }
    return FUSE_OK;
}
