/*
 * footprint.c: the memory a plan holds, checked against the runner's cap before
 * any of it is allocated, the errors of allocations that fail, and the
 * lifetimes that keep a run's peak below the sum of its buffers.
 *
 * The cap is checked against the sum of the planned buffers (every mode may
 * need all of them):
 *   - one buffer per tensor (sources, computed tensors, temporaries) of the
 *     plan's element type (elem.c: float32 unless the precision says otherwise);
 *   - a second one for a tensor read as its previous sweep;
 *   - the stored steps of a streaming tensor's window (stream.c, made at the first
 *     run, counted here all the same);
 *   - the packing scratch of the contraction kernels for one thread (a thread team
 *     takes more only while that stays under the cap: exec.c).
 * Not counted: what a fixpoint mode allocates lazily (snapshots, semi-naive deltas:
 * a failure is logged as a warning naming the tensor, and the fixpoint ends
 * unconverged), the temporary copy a reader makes of a file, and the output map
 * a run returns.
 *
 * The default cap is the machine's memory: physical RAM, or the memory limit of
 * the process's control group (cgroup v2 memory.max, v1 memory.limit_in_bytes)
 * when lower. A plan above it could only be paged to death or killed by the
 * kernel's OOM killer, so it is refused with a message naming its largest
 * tensors instead.
 *
 * Lifetimes. Buffers are allocated zeroed but untouched (io_alloc_aligned), so
 * a buffer takes resident memory only from its first write. A buffer of at least
 * 16 MiB (FUSE_JIT_RELEASE_MIN_BYTES) whose tensor no later group reads gives its
 * pages back (madvise) once the component of its last reader is done, in every
 * run but a query; the next run fills it again. Kept whole: exports, what sinks
 * touch, constants, host inputs, stream windows, previous-sweep values and
 * recursive components. And in a plain run (single mode, exact, not a query) a
 * tensor y may be written straight over the buffer of a dead tensor x of its
 * shape (reuse_of): x is read by y's group alone, cell for cell (cell c of y
 * comes from cell c of x only, however the ops are fused or tiled), and no op
 * reads x after y's first write. The planned peak (fuse_timings.peak_bytes) is
 * the most bytes live during any component of such a run, counting each
 * temporary as touched (a fused kernel may keep it in registers), so it bounds
 * the buffers' share of the resident size from above.
 */
#include "modes.h"
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- text ---- */

void rt_format_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64 " bytes", bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    char num[32];
    snprintf(num, sizeof num, v < 100.0 ? "%.1f" : "%.0f", v);
    size_t n = strlen(num);
    if (n > 2 && strcmp(num + n - 2, ".0") == 0)
        num[n - 2] = '\0'; /* "64 MiB", not "64.0 MiB" */
    snprintf(buf, cap, "%s %s", num, units[u]);
}

void rt_describe_tensor(const RtPlan *pl, const IrTensor *t, uint64_t bytes, char *buf,
                        size_t cap)
{
    char size[32], shape[160] = "[";
    rt_format_bytes(bytes, size, sizeof size);
    for (int d = 0; d < t->rank; d++) {
        size_t n = strlen(shape);
        snprintf(shape + n, sizeof shape - n, "%s%" PRId64, d ? ", " : "", t->shape[d]);
    }
    size_t n = strlen(shape);
    snprintf(shape + n, sizeof shape - n, "]");
    /* a name is cut so that three of them fit one message */
    snprintf(buf, cap, "%.40s%s: %s %s %s", t->name, strlen(t->name) > 40 ? "..." : "",
             size, shape, fuse_dtype_name(rt_tensor_dtype(pl, t->id)));
}

fuse_status rt_alloc_failed(RtPlan *pl, const IrTensor *t, const char *what, uint64_t bytes)
{
    char desc[256];
    if (t) {
        rt_describe_tensor(pl, t, bytes, desc, sizeof desc);
        return fe_error(&pl->dl, FUSE_E_NOMEM, t->span, "out of memory allocating %s %s", what,
                        desc);
    }
    rt_format_bytes(bytes, desc, sizeof desc);
    return fe_error(&pl->dl, FUSE_E_NOMEM, (Span){0}, "out of memory allocating %s: %s", what,
                    desc);
}

void rt_log_nomem(const RtPlan *pl, const IrTensor *t, const char *what, uint64_t bytes)
{
    char desc[256];
    rt_describe_tensor(pl, t, bytes, desc, sizeof desc);
    rt_log(pl, FUSE_LEVEL_WARNING, "out of memory allocating %s %s", what, desc);
}

/* ---- the machine ---- */

/* The number in a one-line file (a cgroup limit), or 0 when it is missing or not
 * a number ("max": no limit). */
static uint64_t read_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[64] = "";
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *end;
    unsigned long long v = ok ? strtoull(line, &end, 10) : 0;
    return ok && end != line ? (uint64_t)v : 0;
}

uint64_t rt_machine_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    /* a container sees its own cgroup at these paths; an unlimited v1 group
     * reports a number above any RAM, which the minimum drops */
    static const char *const limits[] = {"/sys/fs/cgroup/memory.max",
                                         "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        uint64_t v = read_limit(limits[i]);
        if (v && (mem == 0 || v < mem))
            mem = v;
    }
    return mem ? mem : FUSE_MEMORY_UNLIMITED; /* unknown: no cap */
}

/* ---- the footprint ---- */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The bytes the plan keeps for tensor t: its buffer, its previous-sweep buffer
 * and its stored steps. */
static uint64_t tensor_bytes(const RtPlan *pl, int t)
{
    uint64_t one = rt_tensor_alloc_bytes(pl, t);
    uint64_t n = pl->ir->tensors[t]->is_read_prev ? 2 : 1;
    for (int k = 0; k < pl->ir->n_streams; k++)
        if (pl->ir->streams[k]->tensor == t)
            n += (uint64_t)(pl->ir->streams[k]->offset - pl->ir->streams[k]->lo);
    return one > UINT64_MAX / n ? UINT64_MAX : one * n;
}

/* Lists the three tensors holding most into buf ("A: 1 GiB [..] float32, B: ...,
 * and 4 more"); returns the largest (-1: none). */
static int largest_tensors(const RtPlan *pl, char *buf, size_t cap)
{
    int n = pl->ir->n_tensors, top[3] = {-1, -1, -1};
    for (int t = 0; t < n; t++) {
        uint64_t b = tensor_bytes(pl, t);
        for (int k = 0; k < 3; k++)
            if (top[k] < 0 || b > tensor_bytes(pl, top[k])) {
                memmove(top + k + 1, top + k, sizeof *top * (size_t)(2 - k));
                top[k] = t;
                break;
            }
    }
    buf[0] = '\0';
    int listed = 0;
    for (int k = 0; k < 3 && top[k] >= 0; k++, listed++) {
        char desc[256];
        rt_describe_tensor(pl, pl->ir->tensors[top[k]], tensor_bytes(pl, top[k]), desc,
                           sizeof desc);
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", k ? ", " : "", desc);
    }
    if (n > listed) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, ", and %d more tensor%s", n - listed,
                 n - listed > 1 ? "s" : "");
    }
    return top[0];
}

uint64_t rt_plan_footprint(const RtPlan *pl)
{
    uint64_t sum = pl->scratch_bytes;
    for (int t = 0; t < pl->ir->n_tensors; t++)
        sum = add_sat(sum, tensor_bytes(pl, t));
    return sum;
}

fuse_status rt_plan_check_memory(RtPlan *pl, uint64_t max_memory)
{
    bool is_default = max_memory == 0;
    pl->max_memory = is_default ? rt_machine_memory() : max_memory;
    pl->planned_bytes = rt_plan_footprint(pl);
    if (pl->planned_bytes <= pl->max_memory)
        return FUSE_OK;
    char list[1024], need[32], cap[32];
    int top = largest_tensors(pl, list, sizeof list);
    rt_format_bytes(pl->planned_bytes, need, sizeof need);
    rt_format_bytes(pl->max_memory, cap, sizeof cap);
    Span span = top >= 0 ? pl->ir->tensors[top]->span : (Span){0};
    return fe_error(&pl->dl, FUSE_E_NOMEM, span,
                    "the plan needs %s (%s), above the memory cap of %s%s (--max-memory, "
                    "fuse_config.max_memory)", need, list, cap,
                    is_default ? ", the machine's memory" : "");
}

/* ---- lifetimes ---- */

/* Buffers below this many bytes keep their pages between groups: giving back
 * and faulting in again a few pages costs more time than the memory is worth.
 * FUSE_JIT_RELEASE_MIN_BYTES overrides it (0: every buffer of a whole page). */
#define RT_RELEASE_DEFAULT_MIN ((uint64_t)16 << 20)

static uint64_t release_min_bytes(void)
{
    const char *s = getenv("FUSE_JIT_RELEASE_MIN_BYTES");
    if (!s || !*s || s[0] == '-')
        return RT_RELEASE_DEFAULT_MIN;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    return *end ? RT_RELEASE_DEFAULT_MIN : (uint64_t)v;
}

/* The kernel that runs equation group g: its span's head (plan_compile.c). */
static int kernel_of(const RtPlan *pl, int g)
{
    return pl->span_head ? pl->span_head[g] : g;
}

/* Marks in keep[] every tensor that must hold its value for the whole run:
 * what the host or a later run reads (exports, sinks' values and whatever a sink
 * group touches, stream windows, previous-sweep values), what no run refills
 * (constants, host inputs, temperatures set by the schedule) and, to be safe,
 * everything of a recursive component. */
static void mark_kept(const RtPlan *pl, bool *keep)
{
    const IrProgram *p = pl->ir;
    for (int t = 0; t < p->n_tensors; t++) {
        const IrTensor *x = p->tensors[t];
        keep[t] = x->kind == TEN_CONST || x->is_export || x->is_read_prev || x->is_recursive ||
                  x->stream != 0 || x->is_stream_state || (pl->is_input && pl->is_input[t]) ||
                  strncmp(x->name, "%T.", 3) == 0;
    }
    for (int g = 0; g < p->n_sink_groups; g++) {
        const Group *grp = p->sink_groups[g];
        keep[grp->tensor] = true;
        for (int i = 0; i < grp->n_ops; i++) {
            keep[grp->ops[i]->out] = true;
            for (int k = 0; k < grp->ops[i]->n_in; k++)
                keep[grp->ops[i]->in[k].tensor] = true;
        }
    }
    for (int s = 0; s < p->n_streams; s++)
        keep[p->streams[s]->tensor] = true;
}

/* first[t]/last[t]: the first and last equation group whose kernel touches
 * tensor t (a span's kernel runs at its head's turn), -1 for none. */
static void find_uses(const RtPlan *pl, int *first, int *last)
{
    const IrProgram *p = pl->ir;
    for (int t = 0; t < p->n_tensors; t++)
        first[t] = last[t] = -1;
    for (int g = 0; g < p->n_groups; g++) {
        const Group *grp = p->groups[g];
        int k = kernel_of(pl, g);
        for (int i = 0; i < grp->n_ops; i++)
            for (int j = -1; j < grp->ops[i]->n_in; j++) {
                int t = j < 0 ? grp->ops[i]->out : grp->ops[i]->in[j].tensor;
                if (first[t] < 0 || k < first[t])
                    first[t] = k;
                if (g > last[t])
                    last[t] = g; /* its value is read or written in g's turn at the latest */
            }
    }
}

/* ---- reuse: a tensor written over a dead one's buffer ---- */

/* Ops that compute each output cell from the operands' cells at the same
 * position only: elementwise maps, cases and joins without a projected axis,
 * each loop axis the whole of one out slot (no diagonal, no shift). */
static bool is_cellwise(const IrProgram *p, const Op *op)
{
    const IrTensor *out = p->tensors[op->out];
    if ((op->kind != OP_MAP && op->kind != OP_CASE && op->kind != OP_JOIN) ||
        op->concat_slot >= 0 || op->n_axes != out->rank)
        return false;
    for (int k = 0; k < out->rank; k++) {
        int a = op->out_axis[k];
        if (a < 0 || a >= op->n_axes || op->axes[a].size != out->shape[k] ||
            op->out_offset[k] != 0 || op->out_minor[k] != 0)
            return false;
        for (int j = 0; j < k; j++)
            if (op->out_axis[j] == a)
                return false;
    }
    return true;
}

/* Whether operand o of op reads its tensor at the op's own output cell: every
 * slot the loop axis of the same out slot, unshifted, unsliced, same size. */
static bool reads_same_cell(const IrProgram *p, const Op *op, const Operand *o)
{
    const IrTensor *x = p->tensors[o->tensor], *out = p->tensors[op->out];
    if (x->rank != out->rank)
        return false;
    for (int k = 0; k < x->rank; k++)
        if (o->kind[k] != SL_AXIS || o->offset[k] != 0 || o->slice[k] ||
            o->axis[k] != op->out_axis[k] || x->shape[k] != out->shape[k])
            return false;
    return true;
}

/* Whether y, written by group g, may be written over x's buffer: within g,
 * every op reading x, or a temporary computed from x, is cellwise and reads it
 * at its own output cell (so cell c of y is computed from cell c of x alone,
 * however the ops are fused or tiled), and every op reading x itself comes
 * before the first op writing y. */
static bool reads_cellwise_before(const IrProgram *p, const Group *g, int x, int y)
{
    bool *from_x = calloc((size_t)p->n_tensors + 1, sizeof *from_x);
    if (!from_x)
        return false;
    from_x[x] = true;
    bool ok = true, is_y_written = false;
    for (int i = 0; i < g->n_ops && ok; i++) {
        const Op *op = g->ops[i];
        bool reads = false;
        for (int k = 0; k < op->n_in && ok; k++) {
            int t = op->in[k].tensor;
            if (!from_x[t])
                continue;
            reads = true;
            ok = is_cellwise(p, op) && reads_same_cell(p, op, &op->in[k]);
            ok = ok && !(t == x && is_y_written);
        }
        if (reads && op->out != y)
            from_x[op->out] = true; /* a temporary of the group */
        is_y_written |= op->out == y;
    }
    free(from_x);
    return ok;
}

/* The groups (equation and sink) with an op reading tensor t, counted; *group
 * is the last such equation group. */
static int readers_of(const IrProgram *p, int t, int *group)
{
    int n = 0;
    *group = -1;
    for (int s = 0; s < 2; s++)
        for (int g = 0; g < (s ? p->n_sink_groups : p->n_groups); g++) {
            const Group *grp = s ? p->sink_groups[g] : p->groups[g];
            bool reads = false;
            for (int i = 0; i < grp->n_ops && !reads; i++)
                for (int k = 0; k < grp->ops[i]->n_in; k++)
                    reads |= grp->ops[i]->in[k].tensor == t;
            n += reads;
            if (reads && !s)
                *group = g;
        }
    return n;
}

/* Whether tensor y can take part in reuse: computed, written whole by one
 * group before anything reads it (zeroing.c), nothing a run keeps apart. */
static bool is_plain_computed(const RtPlan *pl, const bool *whole, int t)
{
    const IrTensor *x = pl->ir->tensors[t];
    return (x->kind == TEN_DEFINED || x->kind == TEN_TEMP) && whole && whole[t] &&
           !x->is_read_prev && !x->is_recursive && x->stream == 0 && !x->is_stream_state &&
           !(pl->is_input && pl->is_input[t]) && strncmp(x->name, "%T.", 3) != 0;
}

/* The dead tensor whose buffer y (computed by group g) may take, or -1: one
 * of y's size and shape, computed by earlier groups, read by g alone, never
 * kept (last_use is g), not taken yet, and read cellwise (reads_cellwise_before). */
static int reusable_for(const RtPlan *pl, const bool *whole, int g, int y)
{
    const IrProgram *p = pl->ir;
    const Group *grp = p->groups[g];
    for (int i = 0; i < grp->n_ops; i++)
        for (int k = 0; k < grp->ops[i]->n_in; k++) {
            int x = grp->ops[i]->in[k].tensor, last = -1;
            const IrTensor *tx = p->tensors[x], *ty = p->tensors[y];
            if (x == y || pl->last_use[x] != g || pl->reused_by[x] >= 0 ||
                pl->reuse_of[x] >= 0 || tx->kind != TEN_DEFINED ||
                !is_plain_computed(pl, whole, x) || tx->group < 0 || tx->group >= g ||
                pl->count[x] != pl->count[y] || tx->rank != ty->rank ||
                memcmp(tx->shape, ty->shape, sizeof tx->shape) != 0)
                continue;
            if (readers_of(p, x, &last) == 1 && last == g && reads_cellwise_before(p, grp, x, y))
                return x;
        }
    return -1;
}

/* Pairs every group's tensor with a dead buffer it may take (reuse_of,
 * reused_by). Not in a program with streams (their steps move buffers). */
static void find_reuse(RtPlan *pl, const bool *whole)
{
    const IrProgram *p = pl->ir;
    for (int t = 0; t < p->n_tensors; t++)
        pl->reuse_of[t] = pl->reused_by[t] = -1;
    for (int g = 0; g < p->n_groups && p->n_streams == 0; g++) {
        int y = p->groups[g]->tensor;
        const IrTensor *ty = p->tensors[y];
        if (p->groups[g]->is_recursive || ty->kind != TEN_DEFINED || ty->group != g ||
            !is_plain_computed(pl, whole, y) || pl->reuse_of[y] >= 0)
            continue;
        int x = reusable_for(pl, whole, g, y);
        if (x >= 0) {
            pl->reuse_of[y] = x;
            pl->reused_by[x] = y;
        }
    }
}

/* ---- the planned peak ---- */

/* Whether tensor t has pages from the start of a run (loaded, zeroed or
 * constant) rather than from its first writer's kernel. */
static bool is_touched_at_start(const RtPlan *pl, const bool *whole, int t)
{
    TensorKind k = pl->ir->tensors[t]->kind;
    return k == TEN_SOURCE || k == TEN_CONST || !whole || !whole[t];
}

/* The last group of tensor t's buffer (-1: the whole run): a buffer another
 * tensor takes lives as long as that one does. */
static int buffer_last(const RtPlan *pl, int t)
{
    int y = pl->reused_by[t];
    return y < 0 ? pl->last_use[t] : pl->last_use[y];
}

/* The bytes live while the component of groups [g0, g1) runs: every kept
 * buffer, and the others from their first touch to their last use; a tensor
 * written over another's buffer takes none of its own. */
static uint64_t live_bytes(const RtPlan *pl, const int *first, const bool *whole, int g0,
                           int g1)
{
    uint64_t sum = pl->scratch_bytes;
    for (int t = 0; t < pl->ir->n_tensors; t++) {
        if (pl->reuse_of[t] >= 0)
            continue;
        int last = buffer_last(pl, t);
        bool is_born = is_touched_at_start(pl, whole, t) || (first[t] >= 0 && first[t] < g1);
        if (is_born && (last < 0 || last >= g0))
            sum = add_sat(sum, tensor_bytes(pl, t));
    }
    return sum;
}

/* The planned peak of a plain run: the most bytes live during any component,
 * or during the sink groups at the end. */
static uint64_t peak_of_run(const RtPlan *pl, const int *first, const bool *whole)
{
    const IrProgram *p = pl->ir;
    uint64_t peak = live_bytes(pl, first, whole, p->n_groups, p->n_groups);
    for (int g0 = 0, g1; g0 < p->n_groups; g0 = g1) {
        for (g1 = g0 + 1; g1 < p->n_groups && p->groups[g1]->component == p->groups[g0]->component;)
            g1++;
        uint64_t b = live_bytes(pl, first, whole, g0, g1);
        if (b > peak)
            peak = b;
    }
    return peak;
}

void rt_plan_lifetimes(RtPlan *pl)
{
    const IrProgram *p = pl->ir;
    size_t n = (size_t)p->n_tensors + 1;
    if (!pl->is_written_whole)
        pl->is_written_whole = rt_zeroing_flags(pl); /* NULL: every tensor zeroed */
    int *first = malloc(n * sizeof *first);
    bool *keep = malloc(n * sizeof *keep);
    pl->last_use = arena_alloc(&pl->arena, n * sizeof *pl->last_use);
    pl->reuse_of = arena_alloc(&pl->arena, n * sizeof *pl->reuse_of);
    pl->reused_by = arena_alloc(&pl->arena, n * sizeof *pl->reused_by);
    pl->peak_bytes = pl->planned_bytes;
    if (!first || !keep || !pl->last_use || !pl->reuse_of || !pl->reused_by) {
        free(first);
        free(keep);
        pl->last_use = pl->reuse_of = pl->reused_by = NULL; /* keep everything */
        return;
    }
    mark_kept(pl, keep);
    find_uses(pl, first, pl->last_use);
    uint64_t min = release_min_bytes();
    long page = sysconf(_SC_PAGESIZE);
    if (min < (uint64_t)(page > 0 ? page : 4096))
        min = (uint64_t)(page > 0 ? page : 4096); /* a buffer without a whole page: nothing */
    for (int t = 0; t < p->n_tensors; t++)
        if (keep[t] || (uint64_t)pl->count[t] * rt_tensor_bytes(pl, t) < min)
            pl->last_use[t] = -1;
    find_reuse(pl, pl->is_written_whole);
    pl->peak_bytes = peak_of_run(pl, first, pl->is_written_whole);
    free(first);
    free(keep);
}

/* ---- during a run ---- */

/* The whole pages of [p, p + bytes) go back to the system: anonymous memory
 * reads as zeros afterwards, a file mapping as the file. */
static void release_pages(float *p, size_t bytes)
{
    long page = sysconf(_SC_PAGESIZE);
    if (!p || page <= 0)
        return;
    uintptr_t begin = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~((uintptr_t)page - 1);
    if (end > begin)
        (void)madvise((void *)begin, end - begin, MADV_DONTNEED); /* advice: may fail */
}

/* Whether tensor t's buffer is another's this run: a host's (a borrowed input,
 * an export bound to host memory), or x's while t is written over it. */
static bool is_taken_now(const RtPlan *pl, int t)
{
    if (!pl->own_bufs || !pl->own_bufs[t])
        return false;
    int x = pl->reuse_of ? pl->reuse_of[t] : -1;
    return x < 0 || pl->bufs[t] != pl->bufs[x];
}

void rt_release_dead(RtPlan *pl, int g0, int g1)
{
    if (!pl->last_use)
        return;
    for (int t = 0; t < pl->ir->n_tensors; t++) {
        int last = pl->last_use[t], y = pl->reused_by[t];
        if (last < g0 || last >= g1 || is_taken_now(pl, t))
            continue; /* kept, not dead yet, or a host's buffer */
        if (y >= 0 && pl->bufs[y] == pl->bufs[t])
            continue; /* y lives on in it */
        release_pages(pl->bufs[t], (size_t)pl->count[t] * rt_tensor_bytes(pl, t));
    }
}

void rt_reuse_begin(RtPlan *pl, bool is_query)
{
    const IrProgram *p = pl->ir;
    const RtModes *m = pl->modes;
    /* a query reads its tensor afterwards, other modes may run a group again */
    if (!pl->reuse_of || is_query || !m || m->mode != FUSE_MODE_SINGLE ||
        m->projection != FUSE_PROJECTION_EXACT)
        return;
    if (!pl->own_bufs)
        pl->own_bufs = calloc((size_t)p->n_tensors + 1, sizeof *pl->own_bufs);
    if (!pl->own_bufs)
        return; /* no reuse this run */
    for (int y = 0; y < p->n_tensors; y++) {
        int x = pl->reuse_of[y];
        if (x < 0 || pl->own_bufs[y] || pl->own_bufs[x])
            continue; /* bound to host memory this run */
        pl->own_bufs[y] = pl->bufs[y];
        pl->bufs[y] = pl->bufs[x];
    }
}
