/*
 * parallel.c: the OpenMP thread team of the contraction kernels.
 *
 * A group kernel with a contraction (lower_group_is_parallel) is called by every
 * thread of a team with its thread id and the team size; the kernel splits the
 * contraction's output columns by thread id, runs every other op on thread 0, and
 * calls back `barrier` between ops. An interrupted kernel skips its remaining
 * work but never returns early, so every thread reaches every barrier. The team
 * is OpenMP's (LLVM's libomp): the
 * barrier below is an orphaned `omp barrier`, which binds to the team of the
 * enclosing parallel region.
 */
#include <omp.h>

#include "runtime.h"

static void team_barrier(void)
{
#pragma omp barrier
}

int rt_parallel_threads(int threads)
{
    int n = threads > 0 ? threads : omp_get_num_procs();
    return n > 0 ? n : 1;
}

/* How long a team's idle threads spin for more work before they sleep: long
 * enough to span the gaps between the kernels of one run, short enough that a
 * host running a program now and then does not lose a core for 200 ms (libomp's
 * default KMP_BLOCKTIME) after each run. */
#define TEAM_BLOCKTIME_MS 2

int rt_parallel_run(RtKernel k, float **bufs, int nth, const atomic_int *stop)
{
    int used = 1;
    kmp_set_blocktime(TEAM_BLOCKTIME_MS); /* this thread's future teams */
#pragma omp parallel num_threads(nth)
    {
        int n = omp_get_num_threads();
#pragma omp single
        used = n;
        k(bufs, omp_get_thread_num(), n, team_barrier, stop);
    }
    return used;
}
