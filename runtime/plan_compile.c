/*
 * plan_compile.c: compiles a plan's kernels through the code cache, incrementally
 * (issues 5 and 7).
 *
 * Every group (equation or sink) is lowered on its own view of the program
 * (View): only the tensors its ops touch, numbered 0..n-1 in order of first use,
 * so its kernel reads bufs[local] and knows nothing of the rest of the program.
 * At run time rt_group_bufs hands the kernel a small table of its buffers
 * (RtGroupBufs: local slot -> plan slot; previous-sweep buffers at n + i, the
 * scratch slot at 2n). A group's key is then BLAKE3 (jit_cache_key) of the
 * canonical serialisation of that view (ir_serialize_group: its ops and the shapes
 * of the tensors they touch, its own scratch size) and of every option that
 * changes code, including the build ID of fuse-jit: adding, removing or changing
 * another equation (which renumbers tensors) leaves it alone. Its kernel is
 * exported as "fuse_" + 32 hex digits of that key, so a kernel's name says what it
 * computes and any object holding it will do.
 *
 * Order of search:
 *   1. the whole program's key (canonical IR + options): one object with every
 *      kernel, from memory or the disk cache (the fast path of an unchanged
 *      program, also across processes);
 *   2. group by group, the context's in-memory index (jit_cache_ref_get): group key
 *      -> key of a cached object holding that kernel;
 *   3. the groups still missing are lowered into one module per compiling thread
 *      (one per online CPU, at most 4 and one per kernel; one for a small
 *      program), compiled at once to one object (a bundle of the threads'
 *      objects) and stored: under the program key (memory
 *      and disk) when no group was found, else under a key made of the missing
 *      groups' keys (memory only). Each of those groups then refers to it.
 * Every object needed is loaded into a JITDylib of its own (jit_object_load) and
 * each kernel is looked up in its object. So changing one equation recompiles only
 * its group; the others link from the objects already compiled.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit.h"
#include "lower.h"
#include "runtime.h"

#define RT_NAME_HEX 32 /* hex digits of the group key in a kernel name */

/* A group on its own: a program of one group over the tensors it touches. */
typedef struct View {
    IrProgram p;
    Group g;
    Group *gp;
    Op **ops;
    Op *op;           /* copies of the group's ops, tensor ids made local */
    Operand *in;      /* their operands */
    IrTensor **t;     /* local id -> tensor (borrowed from the plan's IR) */
    int *global;      /* local id -> the plan's tensor id */
    int n;
} View;

/* One group of the plan: which, its key and kernel name, its object (-1: none). */
typedef struct GroupSlot {
    bool is_sink;
    int index;
    JitKey key;
    char name[48];
    int obj;
    int first;        /* the first slot with the same key (itself when none before) */
    View v;           /* its own view; empty in a group absorbed by a span */
    const View *vp;   /* its kernel's view: &v, or the span head's */
} GroupSlot;

/* The option bytes of every key of a plan's code: every lowering option that
 * changes code, and the build ID of fuse-jit (any rebuild of the code
 * generator makes other keys). */
typedef struct KeyOptions {
    int64_t opts[8];
    unsigned char build_id[64];
} KeyOptions;

static void key_options(const LowerOptions *opt, KeyOptions *ko)
{
    int64_t o[8] = {opt->vector_bits, opt->l1_bytes,  opt->l2_bytes,   opt->l3_bytes,
                    opt->no_contract, opt->precision, opt->soft_half, opt->split_rows};
    memset(ko, 0, sizeof *ko);
    memcpy(ko->opts, o, sizeof o);
    rt_build_id(ko->build_id, sizeof ko->build_id);
}

/* The state of one compilation. */
typedef struct Build {
    RtPlan *pl;
    LowerOptions opt;
    KeyOptions opts;         /* the option bytes of every key */
    GroupSlot *g;
    int n;
    JitKey *obj_key;         /* objects found or compiled: key, bytes */
    void **obj;
    size_t *obj_n;
    int n_obj;
    int n_missing;
} Build;

static fuse_status fail_jit(RtPlan *pl, fuse_status st, char *err)
{
    fe_error(&pl->dl, st, (Span){0}, "code generation failed: %s", err ? err : "unknown");
    free(err);
    return st;
}

/* A cache problem never fails a compilation; the user hears of it. */
/* A cache problem never fails a compilation; the host hears of it through its
 * log callback (fuse_ctx_set_log). */
static void cache_warn(const RtPlan *pl, char *warning)
{
    if (warning)
        rt_log(pl, FUSE_LEVEL_WARNING, "%s", warning);
    free(warning);
}

static const Group *group_of(const Build *b, int i)
{
    const IrProgram *p = b->pl->ir;
    return b->g[i].is_sink ? p->sink_groups[b->g[i].index] : p->groups[b->g[i].index];
}

/* every slot's `first`, through a hash of the group keys (BLAKE3
 * digests, so 8 of their bytes are a good hash), not a comparison of every pair. */
static bool index_keys(Build *b)
{
    int cap = 16;
    while (cap < 2 * b->n)
        cap *= 2;
    int *table = malloc((size_t)cap * sizeof *table); /* 1 + slot, 0 empty */
    if (!table)
        return false;
    memset(table, 0, (size_t)cap * sizeof *table);
    for (int i = 0; i < b->n; i++) {
        uint64_t h;
        memcpy(&h, b->g[i].key.b, sizeof h);
        int k = (int)(h & (uint64_t)(cap - 1));
        while (table[k] && memcmp(b->g[table[k] - 1].key.b, b->g[i].key.b, JIT_KEY_BYTES) != 0)
            k = (k + 1) & (cap - 1);
        if (!table[k])
            table[k] = i + 1;
        b->g[i].first = table[k] - 1;
    }
    free(table);
    return true;
}

/* The local id of plan tensor t in v (added on first use). */
static int local_id(View *v, const IrProgram *p, int t)
{
    for (int i = 0; i < v->n; i++)
        if (v->global[i] == t)
            return i;
    v->global[v->n] = t;
    v->t[v->n] = p->tensors[t];
    return v->n++;
}

static void view_free(View *v)
{
    free(v->ops);
    free(v->op);
    free(v->in);
    free(v->t);
    free(v->global);
}

/* Builds the view of group g of p whose ops are ops[0..n_ops) (g's own, or with
 * the ops of the groups it absorbs after them). */
static fuse_status view_build(View *v, const IrProgram *p, const Group *g, Op *const *ops,
                              int n_ops)
{
    int cap = 1, n_in = 0;
    for (int i = 0; i < n_ops; i++) {
        cap += ops[i]->n_in + 1;
        n_in += ops[i]->n_in;
    }
    v->ops = calloc((size_t)n_ops + 1, sizeof *v->ops);
    v->op = calloc((size_t)n_ops + 1, sizeof *v->op);
    v->in = calloc((size_t)n_in + 1, sizeof *v->in);
    v->t = calloc((size_t)cap, sizeof *v->t);
    v->global = calloc((size_t)cap, sizeof *v->global);
    if (!v->ops || !v->op || !v->in || !v->t || !v->global)
        return FUSE_E_NOMEM;
    for (int i = 0, at = 0; i < n_ops; i++) {
        const Op *src = ops[i];
        Op *o = &v->op[i];
        *o = *src;
        o->out = local_id(v, p, src->out);
        o->in = v->in + at;
        for (int k = 0; k < src->n_in; k++) {
            o->in[k] = src->in[k];
            o->in[k].tensor = local_id(v, p, src->in[k].tensor);
        }
        at += src->n_in;
        v->ops[i] = o;
    }
    v->g = *g;
    v->g.ops = v->ops;
    v->g.n_ops = n_ops;
    v->g.tensor = local_id(v, p, g->tensor);
    v->g.is_sink = false; /* equation group 0 of the view */
    v->gp = &v->g;
    v->p = (IrProgram){.arena = p->arena, .ast = p->ast, .tensors = v->t, .n_tensors = v->n,
                       .groups = &v->gp, .n_groups = 1, .n_vars = p->n_vars,
                       .n_components = p->n_components, .is_shaped = true};
    return FUSE_OK;
}

/* ---- fusion across equations ----
 * An equation group whose ops are all elementwise over the cells of the group
 * before it (`H[b,h] = relu(Z[b,h])` after `Z[b,h] = X[b,i] W[i,h] + B[h]`) runs
 * inside that group's kernel: the kernel is lowered on the view of both groups'
 * ops, where the contraction's write-out or the elementwise loop (lower/fusion.c)
 * takes them in, so the second equation costs no pass over memory. Only when:
 * both groups are non-recursive (each is a component of its own, run once per
 * run, in order, with nothing between them), the later one reads what the span
 * writes (so it never runs without it: a demand closure holding it holds the
 * span's first group) and has no temperature (set just before its own kernel),
 * and lowering says every op of the later group runs in a pass started before
 * it. Every group of the span has the span's view, so they share one kernel: a
 * run that reaches an absorbed group without the span's kernel having run first
 * (none does today: it would need its first group) runs the whole span again,
 * which recomputes the same values (schedule.c). */

/* The ops of groups g..g+k in order, malloc'd. */
static bool span_ops(const IrProgram *p, int g, int k, Op ***ops, int *n_ops)
{
    int n = 0;
    for (int h = g; h <= g + k; h++)
        n += p->groups[h]->n_ops;
    Op **all = malloc((size_t)n * sizeof *all + 1);
    if (!all)
        return false;
    n = 0;
    for (int h = g; h <= g + k; h++)
        for (int i = 0; i < p->groups[h]->n_ops; i++)
            all[n++] = p->groups[h]->ops[i];
    *ops = all;
    *n_ops = n;
    return true;
}

static bool has_temperature(const IrProgram *p, const Group *g)
{
    char name[256];
    snprintf(name, sizeof name, "%%T.%s", p->tensors[g->tensor]->name);
    return ir_tensor_find(p, name) != NULL;
}

/* Group h reads the tensor of a group in [g, h). */
static bool reads_span(const IrProgram *p, int g, int h)
{
    const Group *x = p->groups[h];
    for (int i = 0; i < x->n_ops; i++)
        for (int k = 0; k < x->ops[i]->n_in; k++)
            for (int s = g; s < h; s++)
                if (p->groups[s]->tensor == x->ops[i]->in[k].tensor)
                    return true;
    return false;
}

/* Whether the span g..h-1 can take group h in. */
static bool span_takes(const Build *b, int g, int h, bool *oom)
{
    const IrProgram *p = b->pl->ir;
    if (h >= p->n_groups || p->groups[g]->is_recursive || p->groups[h]->is_recursive
        || has_temperature(p, p->groups[h]) || !reads_span(p, g, h))
        return false;
    Op **ops = NULL;
    int n = 0;
    if (!span_ops(p, g, h - g, &ops, &n)) {
        *oom = true;
        return false;
    }
    Group merged = *p->groups[g];
    merged.ops = ops;
    merged.n_ops = n;
    bool yes = lower_fuses_across(p, &merged, n - p->groups[h]->n_ops, &b->opt);
    free(ops);
    return yes;
}

/* pl->absorbs: spans from the left, each as long as it takes groups in. */
static fuse_status find_spans(Build *b)
{
    const IrProgram *p = b->pl->ir;
    RtPlan *pl = b->pl;
    free(pl->absorbs);
    free(pl->span_head);
    pl->absorbs = calloc((size_t)p->n_groups + 1, sizeof *pl->absorbs);
    pl->span_head = calloc((size_t)p->n_groups + 1, sizeof *pl->span_head);
    if (!pl->absorbs || !pl->span_head)
        return FUSE_E_NOMEM;
    bool oom = false;
    for (int g = 0; g < p->n_groups;) {
        int k = 0;
        while (span_takes(b, g, g + k + 1, &oom))
            k++;
        pl->absorbs[g] = k;
        for (int h = g; h <= g + k; h++)
            pl->span_head[h] = g;
        g += k + 1;
    }
    return oom ? FUSE_E_NOMEM : FUSE_OK;
}

/* Fills every group's slot: key and kernel name. */
static fuse_status key_groups(Build *b)
{
    const IrProgram *p = b->pl->ir;
    for (int i = 0; i < b->n; i++) {
        GroupSlot *s = &b->g[i];
        s->is_sink = i >= p->n_groups;
        s->index = s->is_sink ? i - p->n_groups : i;
        s->obj = -1;
        s->vp = &s->v;
        /* a group in a span has the span's kernel: its head's view, key and name
         * (made once per span) */
        int h = s->is_sink ? i : b->pl->span_head[i];
        if (h != i) {
            s->vp = &b->g[h].v;
            s->key = b->g[h].key;
            memcpy(s->name, b->g[h].name, sizeof s->name);
            continue;
        }
        const Group *g = group_of(b, h);
        Op **ops = g->ops;
        int n_ops = g->n_ops;
        if (!s->is_sink && b->pl->absorbs[h] > 0 && !span_ops(p, h, b->pl->absorbs[h], &ops, &n_ops))
            return FUSE_E_NOMEM;
        fuse_status st = view_build(&s->v, p, g, ops, n_ops);
        if (ops != g->ops)
            free(ops);
        if (st != FUSE_OK)
            return st;
        int64_t scratch = (int64_t)lower_scratch_bytes(&s->v.p, &b->opt);
        unsigned char *ser = NULL;
        size_t n = 0;
        st = ir_serialize_group(&s->v.p, &s->v.g, scratch, &ser, &n);
        if (st != FUSE_OK)
            return st;
        jit_cache_key(b->pl->js, ser, n, &b->opts, sizeof b->opts, &s->key);
        free(ser);
        char hex[2 * JIT_KEY_BYTES + 1];
        jit_key_hex(&s->key, hex);
        snprintf(s->name, sizeof s->name, "%s%.*s", RT_KERNEL_PREFIX, RT_NAME_HEX, hex);
    }
    return index_keys(b) ? FUSE_OK : FUSE_E_NOMEM;
}

/* The key of the plan's canonical IR followed by `tag` (NULL: none) and the
 * option bytes ko. */
static fuse_status ir_key(const RtPlan *pl, const KeyOptions *ko, const char *tag, JitKey *key)
{
    unsigned char *ir = NULL;
    size_t n = 0, n_tag = tag ? strlen(tag) + 1 : 0;
    fuse_status st = ir_serialize(pl->ir, &ir, &n);
    unsigned char *bytes = st != FUSE_OK ? NULL : n_tag ? realloc(ir, n + n_tag) : ir;
    if (st == FUSE_OK && !bytes)
        st = FUSE_E_NOMEM;
    if (st != FUSE_OK) {
        free(ir);
        return st;
    }
    if (n_tag)
        memcpy(bytes + n, tag, n_tag);
    jit_cache_key(pl->js, bytes, n + n_tag, ko, sizeof *ko, key);
    free(bytes);
    return FUSE_OK;
}

fuse_status rt_plan_extra_key(const RtPlan *pl, const char *tag, struct JitKey *key)
{
    LowerOptions opt;
    KeyOptions ko;
    rt_lower_options(pl, RT_KERNEL_PREFIX, &opt);
    key_options(&opt, &ko);
    return ir_key(pl, &ko, tag, key);
}

/* The whole program's key: canonical IR plus the option bytes. */
static fuse_status program_key(Build *b, JitKey *key)
{
    return ir_key(b->pl, &b->opts, NULL, key);
}

static int find_obj(const Build *b, const JitKey *key)
{
    for (int i = 0; i < b->n_obj; i++)
        if (memcmp(b->obj_key[i].b, key->b, JIT_KEY_BYTES) == 0)
            return i;
    return -1;
}

/* The object of key from the cache (memory, then disk when dir is set): its index
 * in b, or -1 on a miss. */
static int fetch_obj(Build *b, const JitKey *key, const char *dir)
{
    int i = find_obj(b, key);
    if (i >= 0)
        return i;
    void *data = NULL;
    size_t n = 0;
    JitHit hit = JIT_MISS;
    char *warning = NULL;
    fuse_status st = jit_cache_get(b->pl->cache, key, dir, &data, &n, &hit, &warning);
    cache_warn(b->pl, warning);
    if (st != FUSE_OK || hit == JIT_MISS)
        return -1;
    i = b->n_obj++;
    b->obj_key[i] = *key;
    b->obj[i] = data;
    b->obj_n[i] = n;
    return i;
}

/* Steps 1 and 2: the whole program, else group by group. */
static fuse_status find_cached(Build *b, const JitKey *prog)
{
    JitCache *c = b->pl->cache;
    if (fetch_obj(b, prog, b->pl->cache_dir) == 0) {
        for (int i = 0; i < b->n; i++) {
            b->g[i].obj = 0;
            /* later programs sharing a group find it in this object */
            if (jit_cache_ref_put(c, &b->g[i].key, prog) != FUSE_OK)
                return FUSE_E_NOMEM;
        }
        return FUSE_OK;
    }
    for (int i = 0; i < b->n; i++) {
        JitKey ok;
        if (jit_cache_ref_get(c, &b->g[i].key, &ok))
            b->g[i].obj = fetch_obj(b, &ok, b->pl->cache_dir);
    }
    return FUSE_OK;
}

/* ---- compiling on several threads ----
 * The distinct missing kernels are shared out among up to RT_COMPILE_THREADS
 * modules (one per online CPU), each in its own LLVM context, and the first
 * module is optimised and compiled on the calling thread, the others on threads
 * of their own at the same time (jit.c gives each its own target machine); their
 * objects become one bundle (jit_objects_bundle), cached and loaded as one
 * object. Kernels whose code shares a function go to one module, where
 * mergefunc compiles it once: equal contractions under different keys (`O[p,h]
 * = P[p,q] V[q,h]` and `Q[p,h] = X[p,f] W[f,h]` differ only in P's dotted axis).
 * To find them, every kernel is first lowered into one probe module, which only
 * mergefunc runs on; a kernel joins the cluster of the kernels owning the
 * functions its kernel function reaches there, as long as the cluster stays
 * within a fair share of the instructions (past that, compiling a shared
 * function twice is cheaper than compiling in turn), and clusters go, largest
 * first, to the module with the fewest instructions so far. A program of one
 * kernel compiles as before, on the calling thread, without a probe. */
#define RT_COMPILE_THREADS 4
#define RT_CALL_DEPTH 8 /* kernel -> op -> epilogue is 3 deep */
/* Below this many instructions of IR (a contraction kernel has 600-900) one
 * module: a thread would save a few milliseconds at most, and every cached
 * start of the program would link two objects instead of one (0.1 ms more). */
#define RT_SPLIT_MIN_INSTRUCTIONS 1000

typedef struct CompileJob {
    JitSession *js;
    JitModule *jm;
    int64_t size;     /* instructions of the kernels lowered into jm */
    void *obj;        /* its object file, malloc'd */
    size_t obj_n;
    fuse_status st;
    char *err;        /* malloc'd, on failure */
} CompileJob;

/* The distinct kernels to compile: slots, clusters and module of each. */
typedef struct Kernels {
    int *slot;        /* group slot whose kernel it is */
    int *root;        /* union-find parent: same root, same module */
    int64_t *size;    /* its own instructions in the probe after merging; a cluster's
                       * total at its root */
    int64_t max_cluster; /* the largest a cluster may grow by joining */
    int64_t total;    /* instructions of all kernels in the probe, after merging */
    int *job;         /* the module it is lowered into */
    int *table;       /* 1 + kernel by the hash of its name (0: empty), for name_owner */
    int cap;          /* table size, a power of two */
    int n;
} Kernels;

static void *compile_job(void *arg)
{
    CompileJob *j = arg;
    j->st = jit_module_optimize(j->js, j->jm, &j->err);
    if (j->st == FUSE_OK)
        j->st = jit_module_emit_object(j->js, j->jm, &j->obj, &j->obj_n, &j->err);
    return NULL;
}

/* How many modules: one per online CPU, at most one per kernel. */
static int compile_threads(int n_kernels)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int k = cpus > 1 ? (int)(cpus < RT_COMPILE_THREADS ? cpus : RT_COMPILE_THREADS) : 1;
    return n_kernels < k ? (n_kernels > 0 ? n_kernels : 1) : k;
}

static int64_t instructions_of(LLVMValueRef fn)
{
    int64_t n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
            n++;
    return n;
}

static fuse_status lower_kernel(const Build *b, int slot, LLVMModuleRef m, char **err)
{
    LowerGroup sel = {false, 0, b->g[slot].name};
    return lower_groups(&b->g[slot].vp->p, &sel, 1, m, &b->opt, err);
}

static int find_root(int *root, int i)
{
    while (root[i] != i)
        i = root[i] = root[root[i]];
    return i;
}

/* A kernel name's hash: its first 16 hex digits after the prefix (the group
 * key's first bytes, so uniform). */
static uint64_t name_hash(const char *name, size_t len)
{
    uint64_t h = 0;
    for (size_t i = strlen(RT_KERNEL_PREFIX); i < len && i < strlen(RT_KERNEL_PREFIX) + 16; i++)
        h = h * 16 + (uint64_t)(name[i] >= 'a' ? name[i] - 'a' + 10 : name[i] - '0');
    return h;
}

/* The kernel that owns function `name` ("KERNEL" or "KERNEL.op..."), or -1. */
static int name_owner(const Build *b, const Kernels *ks, const char *name, size_t len)
{
    size_t n = strcspn(name, ".");
    n = n < len ? n : len;
    for (int at = (int)(name_hash(name, n) & (uint64_t)(ks->cap - 1)); ks->table[at];
         at = (at + 1) & (ks->cap - 1)) {
        const char *kname = b->g[ks->slot[ks->table[at] - 1]].name;
        if (strncmp(kname, name, n) == 0 && kname[n] == '\0')
            return ks->table[at] - 1;
    }
    return -1;
}

/* Fills ks->table (kernel names are distinct). */
static void index_names(const Build *b, Kernels *ks)
{
    for (int k = 0; k < ks->n; k++) {
        const char *name = b->g[ks->slot[k]].name;
        int at = (int)(name_hash(name, strlen(name)) & (uint64_t)(ks->cap - 1));
        while (ks->table[at])
            at = (at + 1) & (ks->cap - 1);
        ks->table[at] = k + 1;
    }
}

/* Joins kernel k's cluster with the owners of every function fn calls. */
static void join_callees(const Build *b, Kernels *ks, int k, LLVMValueRef fn, int depth)
{
    if (depth > RT_CALL_DEPTH)
        return;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) {
            if (LLVMGetInstructionOpcode(in) != LLVMCall)
                continue;
            LLVMValueRef callee = LLVMGetCalledValue(in);
            if (!callee || !LLVMIsAFunction(callee) || LLVMIsDeclaration(callee))
                continue;
            size_t len = 0;
            const char *name = LLVMGetValueName2(callee, &len);
            int owner = name_owner(b, ks, name, len);
            int r = find_root(ks->root, k), o = owner >= 0 ? find_root(ks->root, owner) : r;
            /* past the cap, compiling the shared function twice costs less than
             * compiling the kernels one after another (a chain whose every
             * kernel shares one small product would be one cluster) */
            if (o != r && ks->size[o] + ks->size[r] <= ks->max_cluster) {
                ks->root[o] = r;
                ks->size[r] += ks->size[o];
            }
            join_callees(b, ks, k, callee, depth + 1);
        }
}

/* ks->size of every kernel: the instructions of the functions it owns (by
 * name) in m, and ks->max_cluster: a fair share of them among k modules. */
static void own_sizes(const Build *b, Kernels *ks, LLVMModuleRef m, int k)
{
    int64_t total = 0, largest = 0;
    for (int i = 0; i < ks->n; i++)
        ks->size[i] = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        size_t len = 0;
        const char *name = LLVMGetValueName2(fn, &len);
        int owner = name_owner(b, ks, name, len);
        if (owner >= 0)
            ks->size[owner] += instructions_of(fn);
    }
    for (int i = 0; i < ks->n; i++) {
        total += ks->size[i];
        largest = ks->size[i] > largest ? ks->size[i] : largest;
    }
    ks->max_cluster = total / k > largest ? total / k : largest;
    ks->total = total;
}

/* Lowers every kernel into a probe module, merges equal functions and joins
 * the kernels that then share code, up to ks->max_cluster instructions. */
static fuse_status find_clusters(Build *b, Kernels *ks, int k_jobs, char **err)
{
    JitModule *probe = jit_module_new(b->pl->js, "probe");
    if (!probe)
        return FUSE_E_NOMEM;
    LLVMModuleRef m = jit_module_llvm(probe);
    fuse_status st = FUSE_OK;
    for (int k = 0; k < ks->n && st == FUSE_OK; k++)
        st = lower_kernel(b, ks->slot[k], m, err);
    if (st == FUSE_OK)
        st = jit_module_merge_functions(probe, err);
    if (st == FUSE_OK)
        own_sizes(b, ks, m, k_jobs);
    for (int k = 0; k < ks->n && st == FUSE_OK; k++) {
        LLVMValueRef fn = LLVMGetNamedFunction(m, b->g[ks->slot[k]].name);
        if (fn)
            join_callees(b, ks, k, fn, 0);
    }
    jit_module_free(probe);
    return st;
}

/* Sorts a[0..n) by decreasing size[a[i]] (stable merge sort; tmp has n ints). */
static void sort_by_size(int *a, int *tmp, int n, const int64_t *size)
{
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, o = lo;
            while (i < mid || j < hi)
                tmp[o++] = j >= hi || (i < mid && size[a[i]] >= size[a[j]]) ? a[i++] : a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

/* ks->job of every kernel: clusters, largest first, to the smallest module.
 * *k becomes the number of modules used (at most one per cluster). */
static fuse_status assign_jobs(Kernels *ks, CompileJob *jobs, int *k)
{
    int *roots = malloc(2 * (size_t)ks->n * sizeof *roots);
    if (!roots)
        return FUSE_E_NOMEM;
    int n_roots = 0;
    for (int i = 0; i < ks->n; i++)
        if (find_root(ks->root, i) == i)
            roots[n_roots++] = i;
    sort_by_size(roots, roots + ks->n, n_roots, ks->size);
    *k = n_roots < *k ? n_roots : *k;
    for (int i = 0; i < n_roots; i++) {
        int best = 0;
        for (int j = 1; j < *k; j++)
            if (jobs[j].size < jobs[best].size)
                best = j;
        ks->job[roots[i]] = best;
        jobs[best].size += ks->size[roots[i]];
    }
    for (int i = 0; i < ks->n; i++)
        ks->job[i] = ks->job[find_root(ks->root, i)];
    free(roots);
    return FUSE_OK;
}

static void kernels_free(Kernels *ks)
{
    free(ks->slot);
    free(ks->root);
    free(ks->size);
    free(ks->job);
    free(ks->table);
}

/* The distinct missing kernels, each in a cluster of its own, job 0. */
static fuse_status kernels_init(Build *b, Kernels *ks)
{
    memset(ks, 0, sizeof *ks);
    size_t m = (size_t)b->n + 1;
    ks->slot = malloc(m * sizeof *ks->slot);
    ks->root = malloc(m * sizeof *ks->root);
    ks->size = calloc(m, sizeof *ks->size);
    ks->job = calloc(m, sizeof *ks->job);
    ks->cap = 16;
    while (ks->cap < 2 * b->n)
        ks->cap *= 2;
    ks->table = calloc((size_t)ks->cap, sizeof *ks->table);
    if (!ks->slot || !ks->root || !ks->size || !ks->job || !ks->table)
        return FUSE_E_NOMEM;
    for (int i = 0; i < b->n; i++)
        /* a kernel once, however many groups share it (a span, equal groups) */
        if (b->g[i].obj < 0 && b->g[i].first == i) {
            ks->slot[ks->n] = i;
            ks->root[ks->n] = ks->n;
            ks->n++;
        }
    return FUSE_OK;
}

/* Runs jobs 1..k-1 on threads of their own (inline when a thread cannot be
 * made) and job 0 here; returns when all are done. */
static void run_jobs(CompileJob *jobs, int k)
{
    pthread_t tid[RT_COMPILE_THREADS];
    bool is_started[RT_COMPILE_THREADS] = {false};
    for (int j = 1; j < k; j++)
        is_started[j] = pthread_create(&tid[j], NULL, compile_job, &jobs[j]) == 0;
    compile_job(&jobs[0]);
    for (int j = 1; j < k; j++) {
        if (is_started[j])
            pthread_join(tid[j], NULL);
        else
            compile_job(&jobs[j]);
    }
}

/* The jobs' objects as b's object `slot`: the one object, or a bundle. */
static fuse_status collect_objects(Build *b, CompileJob *jobs, int k, int slot, char **err)
{
    for (int j = 0; j < k; j++)
        if (jobs[j].st != FUSE_OK) {
            *err = jobs[j].err;
            jobs[j].err = NULL;
            return jobs[j].st;
        }
    if (k == 1) {
        b->obj[slot] = jobs[0].obj;
        b->obj_n[slot] = jobs[0].obj_n;
        jobs[0].obj = NULL;
        return FUSE_OK;
    }
    void *objs[RT_COMPILE_THREADS];
    size_t ns[RT_COMPILE_THREADS];
    for (int j = 0; j < k; j++) {
        objs[j] = jobs[j].obj;
        ns[j] = jobs[j].obj_n;
    }
    return jit_objects_bundle(objs, ns, k, &b->obj[slot], &b->obj_n[slot], err);
}

/* Shares the kernels out among at most *k jobs (*k becomes how many), creates
 * their modules and lowers every kernel into its job's. */
static fuse_status lower_jobs(Build *b, Kernels *ks, CompileJob *jobs, int *k, char **err)
{
    fuse_status st = FUSE_OK;
    if (*k > 1) {
        index_names(b, ks);
        st = find_clusters(b, ks, *k, err);
        if (st == FUSE_OK && ks->total < RT_SPLIT_MIN_INSTRUCTIONS)
            *k = 1; /* every ks->job is 0 */
        else if (st == FUSE_OK)
            st = assign_jobs(ks, jobs, k);
    }
    for (int j = 0; j < *k && st == FUSE_OK; j++) {
        jobs[j].js = b->pl->js;
        jobs[j].jm = jit_module_new(b->pl->js, RT_KERNEL_PREFIX);
        if (!jobs[j].jm)
            st = FUSE_E_NOMEM;
    }
    for (int i = 0; i < ks->n && st == FUSE_OK; i++)
        st = lower_kernel(b, ks->slot[i], jit_module_llvm(jobs[ks->job[i]].jm), err);
    return st;
}

/* Lowers the missing groups (each distinct kernel once) into up to
 * RT_COMPILE_THREADS modules and compiles them to one object (or bundle),
 * which becomes b's object `*slot`. */
static fuse_status compile_missing(Build *b, int *slot, char **err)
{
    RtPlan *pl = b->pl;
    for (int i = 0; i < b->n; i++)
        b->n_missing += b->g[i].obj < 0;
    double t0 = sup_clock_ms();
    Kernels ks;
    CompileJob jobs[RT_COMPILE_THREADS] = {{0}};
    fuse_status st = kernels_init(b, &ks);
    int k = st == FUSE_OK ? compile_threads(ks.n) : 1;
    if (st == FUSE_OK)
        st = lower_jobs(b, &ks, jobs, &k, err);
    double t1 = sup_clock_ms();
    *slot = b->n_obj;
    if (st == FUSE_OK) {
        run_jobs(jobs, k);
        st = collect_objects(b, jobs, k, *slot, err);
    }
    for (int j = 0; j < k; j++) {
        jit_module_free(jobs[j].jm);
        free(jobs[j].obj);
        free(jobs[j].err);
    }
    kernels_free(&ks);
    if (st == FUSE_OK)
        b->n_obj++;
    pl->timings.lower_ms += t1 - t0;
    pl->timings.compile_ms += sup_clock_ms() - t1;
    return st;
}

/* Step 3: compiles what is missing and records it in the cache. */
static fuse_status compile_and_store(Build *b, const JitKey *prog, char **err)
{
    bool is_all = true;
    for (int i = 0; i < b->n; i++)
        is_all &= b->g[i].obj < 0;
    /* A partial object is keyed by the keys of the groups it holds. */
    JitKey *keys = calloc((size_t)b->n + 1, sizeof *keys);
    if (!keys)
        return FUSE_E_NOMEM;
    int n_keys = 0;
    for (int i = 0; i < b->n; i++)
        if (b->g[i].obj < 0)
            keys[n_keys++] = b->g[i].key;
    JitKey key = *prog;
    if (!is_all)
        jit_cache_key(b->pl->js, keys, (size_t)n_keys * sizeof *keys, &b->opts, sizeof b->opts,
                      &key);
    free(keys);
    int slot = -1;
    fuse_status st = compile_missing(b, &slot, err);
    if (st != FUSE_OK)
        return st;
    b->obj_key[slot] = key;
    JitCache *c = b->pl->cache;
    for (int i = 0; i < b->n; i++)
        if (b->g[i].obj < 0) {
            b->g[i].obj = slot;
            if (c && jit_cache_ref_put(c, &b->g[i].key, &key) != FUSE_OK)
                return FUSE_E_NOMEM;
        }
    if (!c)
        return FUSE_OK;
    char *warning = NULL;
    st = jit_cache_put(c, &key, is_all ? b->pl->cache_dir : NULL, b->obj[slot], b->obj_n[slot],
                       &warning);
    cache_warn(b->pl, warning);
    return st;
}

/* The buffer table of a group's view: its tensors, their previous-sweep buffers
 * and the scratch slot, as slots of the plan's bufs (n_tensors of the plan). */
static bool gbufs_init(RtGroupBufs *gb, const View *v, int n_tensors)
{
    int n = 2 * v->n + 1;
    gb->map = calloc((size_t)n, sizeof *gb->map);
    gb->tab = calloc((size_t)n, sizeof *gb->tab);
    if (!gb->map || !gb->tab)
        return false;
    for (int i = 0; i < v->n; i++) {
        gb->map[i] = v->global[i];
        gb->map[v->n + i] = n_tensors + v->global[i];
    }
    gb->map[2 * v->n] = 2 * n_tensors;
    gb->n = n;
    return true;
}

float **rt_group_bufs(RtPlan *pl, bool is_sink, int g)
{
    int i = is_sink ? pl->ir->n_groups + g : g;
    RtGroupBufs *gb = &pl->gbufs[i];
    for (int k = 0; k < gb->n; k++)
        gb->tab[k] = pl->bufs[gb->map[k]];
    return gb->tab;
}

void rt_group_bufs_free(RtPlan *pl)
{
    for (int i = 0; pl->gbufs && i < pl->n_gbufs; i++) {
        if (i < pl->ir->n_groups && pl->span_head && pl->span_head[i] != i)
            continue; /* its span head's table (load_and_link) */
        free(pl->gbufs[i].map);
        free(pl->gbufs[i].tab);
    }
    free(pl->gbufs);
    pl->gbufs = NULL;
    pl->n_gbufs = 0;
}

/* Step 4: loads every object and looks each kernel up in its own. */
static fuse_status load_and_link(Build *b)
{
    RtPlan *pl = b->pl;
    const IrProgram *p = pl->ir;
    char *err = NULL;
    pl->codes = calloc((size_t)b->n_obj + 1, sizeof *pl->codes);
    pl->group_fn = calloc((size_t)p->n_groups + 1, sizeof *pl->group_fn);
    pl->sink_fn = calloc((size_t)p->n_sink_groups + 1, sizeof *pl->sink_fn);
    pl->group_par = calloc((size_t)p->n_groups + 1, sizeof *pl->group_par);
    pl->sink_par = calloc((size_t)p->n_sink_groups + 1, sizeof *pl->sink_par);
    pl->gbufs = calloc((size_t)b->n + 1, sizeof *pl->gbufs);
    if (!pl->codes || !pl->group_fn || !pl->sink_fn || !pl->group_par || !pl->sink_par ||
        !pl->gbufs)
        return FUSE_E_NOMEM;
    pl->n_gbufs = b->n;
    for (int i = 0; i < b->n_obj; i++, pl->n_codes++) {
        fuse_status st = jit_object_load(pl->js, b->obj[i], b->obj_n[i], &pl->codes[i], &err);
        if (st != FUSE_OK)
            return fail_jit(pl, st, err);
    }
    for (int i = 0; i < b->n; i++) {
        const GroupSlot *s = &b->g[i];
        RtKernel k;
        bool is_par;
        bool is_absorbed = s->vp != &s->v;
        if (s->first < i) { /* the same kernel as an earlier group's */
            const GroupSlot *f = &b->g[s->first];
            k = (f->is_sink ? pl->sink_fn : pl->group_fn)[f->index];
            is_par = (f->is_sink ? pl->sink_par : pl->group_par)[f->index];
        } else {
            void *addr = NULL;
            fuse_status st = jit_code_lookup(pl->codes[s->obj], s->name, &addr, &err);
            if (st != FUSE_OK)
                return fail_jit(pl, st, err);
            /* Object pointer to function pointer: the JIT returns code addresses. */
            memcpy(&k, &addr, sizeof k);
            is_par = lower_group_is_parallel(&s->vp->p, &s->vp->g, &b->opt);
        }
        (s->is_sink ? pl->sink_fn : pl->group_fn)[s->index] = k;
        (s->is_sink ? pl->sink_par : pl->group_par)[s->index] = is_par;
        /* a group absorbed by a span shares its head's table (the same view);
         * rt_group_bufs_free frees it once */
        if (is_absorbed)
            pl->gbufs[i] = pl->gbufs[pl->span_head[i]];
        else if (!gbufs_init(&pl->gbufs[i], s->vp, p->n_tensors))
            return FUSE_E_NOMEM;
    }
    return FUSE_OK;
}

static fuse_status build_init(Build *b, RtPlan *pl)
{
    memset(b, 0, sizeof *b);
    b->pl = pl;
    rt_lower_options(pl, RT_KERNEL_PREFIX, &b->opt); /* the precision changes the code: in the key */
    key_options(&b->opt, &b->opts);
    b->n = pl->ir->n_groups + pl->ir->n_sink_groups;
    size_t m = (size_t)b->n + 2;
    b->g = calloc(m, sizeof *b->g);
    b->obj_key = calloc(m, sizeof *b->obj_key);
    b->obj = calloc(m, sizeof *b->obj);
    b->obj_n = calloc(m, sizeof *b->obj_n);
    if (!b->g || !b->obj_key || !b->obj || !b->obj_n)
        return FUSE_E_NOMEM;
    fuse_status st = find_spans(b);
    return st == FUSE_OK ? key_groups(b) : st;
}

static void build_free(Build *b)
{
    for (int i = 0; i < b->n_obj; i++)
        free(b->obj[i]);
    for (int i = 0; b->g && i < b->n; i++)
        view_free(&b->g[i].v);
    free(b->g);
    free(b->obj_key);
    free(b->obj);
    free(b->obj_n);
}

/* Steps 1-3: every group gets an object. */
static fuse_status find_or_compile(Build *b, char **err)
{
    RtPlan *pl = b->pl;
    JitKey prog;
    double t0 = sup_clock_ms();
    fuse_status st = pl->cache ? program_key(b, &prog) : FUSE_OK;
    if (st == FUSE_OK && pl->cache)
        st = find_cached(b, &prog);
    pl->timings.cache_load_ms = sup_clock_ms() - t0;
    bool is_missing = false;
    for (int i = 0; i < b->n; i++)
        is_missing |= b->g[i].obj < 0;
    if (st == FUSE_OK && is_missing)
        st = compile_and_store(b, &prog, err);
    return st;
}

fuse_status rt_plan_emit_module(RtPlan *pl, JitModule **out, char **err)
{
    Build b;
    *out = NULL;
    fuse_status st = build_init(&b, pl);
    JitModule *jm = st == FUSE_OK ? jit_module_new(pl->js, pl->prefix) : NULL;
    if (st == FUSE_OK && !jm)
        st = FUSE_E_NOMEM;
    LowerOptions opt = b.opt;
    opt.prefix = pl->prefix; /* readable names: PREFIXgN, PREFIXsN */
    for (int i = 0; i < b.n && st == FUSE_OK; i++) {
        char name[96];
        if (!b.g[i].is_sink && pl->span_head[i] != i)
            continue; /* absorbed: its kernel is its span's */
        lower_kernel_name(&opt, b.g[i].is_sink, b.g[i].index, name, sizeof name);
        LowerGroup sel = {false, 0, name};
        st = lower_groups(&b.g[i].v.p, &sel, 1, jit_module_llvm(jm), &b.opt, err);
    }
    build_free(&b);
    if (st != FUSE_OK) {
        jit_module_free(jm);
        return st;
    }
    *out = jm;
    return FUSE_OK;
}

fuse_status rt_plan_compile(RtPlan *pl)
{
    Build b;
    char *err = NULL;
    pl->timings.lower_ms = pl->timings.compile_ms = 0;
    double t_init = sup_clock_ms();
    fuse_status st = build_init(&b, pl);
    t_init = sup_clock_ms() - t_init;
    if (st == FUSE_OK)
        st = find_or_compile(&b, &err);
    if (st != FUSE_OK) {
        build_free(&b);
        return err ? fail_jit(pl, st, err) : st;
    }
    pl->timings.is_cache_hit = b.n_missing == 0;
    /* Spans and group keys: what a cache lookup needs, and part of lowering. */
    if (pl->timings.is_cache_hit)
        pl->timings.cache_load_ms += t_init;
    else
        pl->timings.lower_ms += t_init;
    jit_cache_count_groups(pl->cache, (uint64_t)b.n_missing, (uint64_t)(b.n - b.n_missing));
    double t0 = sup_clock_ms();
    st = load_and_link(&b);
    build_free(&b);
    /* Loading links the objects: part of the cache load on a hit, else of compiling. */
    double link_ms = sup_clock_ms() - t0;
    if (pl->timings.is_cache_hit)
        pl->timings.cache_load_ms += link_ms;
    else
        pl->timings.compile_ms += link_ms;
    return st;
}
