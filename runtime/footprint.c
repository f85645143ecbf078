/*
 * footprint.c: the memory a plan holds, checked against the runner's cap before
 * any of it is allocated, and the errors of allocations that fail.
 *
 * A plan keeps every buffer it plans for its whole life: lifetimes are not
 * tracked, so a tensor computed early and read once still holds its buffer at the
 * end, and the peak is the sum of the planned buffers:
 *   - one float32 buffer per tensor (sources, computed tensors, temporaries);
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
 */
#include "runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void rt_describe_tensor(const IrTensor *t, uint64_t bytes, char *buf, size_t cap)
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
    snprintf(buf, cap, "%.40s%s: %s %s float32", t->name, strlen(t->name) > 40 ? "..." : "",
             size, shape);
}

fuse_status rt_alloc_failed(RtPlan *pl, const IrTensor *t, const char *what, uint64_t bytes)
{
    char desc[256];
    if (t) {
        rt_describe_tensor(t, bytes, desc, sizeof desc);
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
    rt_describe_tensor(t, bytes, desc, sizeof desc);
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
    uint64_t one = (uint64_t)pl->count[t] * sizeof(float);
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
        rt_describe_tensor(pl->ir->tensors[top[k]], tensor_bytes(pl, top[k]), desc,
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
