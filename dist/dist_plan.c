/*
 * dist_plan.c: the distribution planner. For each equation group it decides
 * where the group runs on R ranks and what that moves, from the shaped IR and
 * the facts of the group's kernel (DistKernelFacts). The rule, kept simple so
 * that a distributed run gives the single-process bits:
 *
 *   - split: a kernel that splits its work by thread id (a contraction by column
 *     or row panels, a cell run or a row-wise op by rows; lower.h) and makes one
 *     call (no op of it reads another op's cells, which another rank would hold)
 *     runs as if its team had R times as many threads, rank r taking thread
 *     shares r*T .. r*T+T-1; the output is then all-reduced whole. Each cell is
 *     computed by one rank in the same order as in one process.
 *   - rows: a split kernel whose thread shares are blocks of whole output rows
 *     (a contraction sharing M, compiled so for a distributed runner; a cell
 *     run; a row-wise op) and that is not recursive: rank r computes its block
 *     of rows and keeps it. Nothing moves then: a later group that reads those
 *     rows row for row on the same blocks runs on them as they are, and a
 *     reader that needs the tensor whole (another placement, an export, a sink)
 *     first gathers it (one all-gather: each rank receives the others' rows).
 *   - replicated: anything else (small groups, whose kernels run on one thread;
 *     groups of several calls; groups fused with the next equation; sinks). Every
 *     rank computes them on its own copy: no bytes move, the results are equal.
 *
 * A size threshold keeps small groups replicated even when their kernels are
 * team work: a split pays one all-reduce of the output (tens of microseconds at
 * least, a collective every rank waits in) to save half the kernel, so a group
 * is split only from DIST_MIN_WORK loop cells (multiply-adds of a product).
 *
 * The bytes of a split group are its output's float32 buffer, handed to one
 * all-reduce per run of the group (per sweep in a fixpoint).
 */
#include "dist.h"

static const char *const PLACE_NAMES[] = {"replicated", "split", "rows"};
_Static_assert(sizeof PLACE_NAMES / sizeof PLACE_NAMES[0] == DIST_PLACE_COUNT,
               "a name per placement");

const char *dist_place_name(DistPlace place)
{
    return (unsigned)place < DIST_PLACE_COUNT ? PLACE_NAMES[place] : "?";
}

/* 2^22 loop cells: about 2 ms of one core's work for a product */
#define DIST_MIN_WORK ((uint64_t)1 << 22)

/* The loop cells of the group's ops (a product's multiply-adds). */
static uint64_t group_work(const Group *grp)
{
    uint64_t total = 0;
    for (int i = 0; i < grp->n_ops; i++) {
        uint64_t cells = 1;
        for (int a = 0; a < grp->ops[i]->n_axes; a++)
            cells *= (uint64_t)grp->ops[i]->axes[a].size;
        total += cells;
    }
    return total;
}

static uint64_t tensor_bytes(const IrTensor *t, size_t elem_bytes)
{
    uint64_t n = 1;
    for (int k = 0; k < t->rank; k++)
        n *= (uint64_t)t->shape[k];
    return n * elem_bytes;
}

DistGroupPlan dist_plan_group(const IrProgram *p, int g, const DistKernelFacts *facts,
                              int ranks)
{
    DistGroupPlan plan = {DIST_REPLICATED, 0};
    if (!p->is_shaped || g < 0 || g >= p->n_groups || ranks < 2)
        return plan;
    const Group *grp = p->groups[g];
    if (grp->is_sink || !facts->is_team || !facts->is_one_call || facts->is_span ||
        group_work(grp) < DIST_MIN_WORK)
        return plan;
    if (facts->rank_rows > 0 && !grp->is_recursive) {
        plan.place = DIST_ROWS; /* nothing moves until a reader needs it whole */
        return plan;
    }
    plan.place = DIST_SPLIT;
    plan.bytes = tensor_bytes(p->tensors[grp->tensor], facts->elem_bytes);
    return plan;
}

uint64_t dist_model_gather_bytes(uint64_t bytes, int ranks)
{
    return ranks > 1 ? bytes * (uint64_t)(ranks - 1) / (uint64_t)ranks : 0;
}

uint64_t dist_model_bytes(uint64_t bytes, int ranks)
{
    return ranks > 1 ? 2 * bytes * (uint64_t)(ranks - 1) / (uint64_t)ranks : 0;
}
