/*
 * api_dist.c: the public side of distributed runs (fusejit.h, "distributed runs"):
 * whether MPI is built in, this process's rank, a runner's distribution as text,
 * and the step of fuse_runner_new that makes a runner distributed. The work is in
 * runtime/dist_exec.c and dist/.
 */
#include <stdlib.h>

#include "api.h"
#include "dist.h"

int fuse_distributed_available(void)
{
    return dist_is_built() ? 1 : 0;
}

fuse_status fuse_distributed_rank(int *rank, int *size, uint64_t *bytes_moved)
{
    int r = 0, n = 1;
    char *err = NULL;
    fuse_status st = dist_init(&r, &n, &err);
    free(err);
    if (rank)
        *rank = r;
    if (size)
        *size = n;
    if (bytes_moved)
        *bytes_moved = dist_bytes_reduced() + dist_bytes_gathered();
    return st;
}

fuse_status api_dist_attach(fuse_runner *run, fuse_status st, int distributed)
{
    if (!run->plan) /* no plan to report on: out of memory before it existed */
        return st;
    char *err = NULL;
    fuse_status r = rt_dist_attach(run->plan, st, distributed == FUSE_DISTRIBUTED_RANK0, &err);
    if (err) /* fuse_runner_new reports the plan's diagnostics */
        fe_error(&run->plan->dl, r, (Span){0}, "%s", err);
    free(err);
    return r;
}

fuse_status fuse_runner_explain_distributed(fuse_runner *run, char **out)
{
    if (!run || !out)
        return FUSE_E_ARG;
    *out = NULL;
    if (!run->plan || !run->plan->dist) {
        rt_ctx_set_error(run->ctx, sup_strprintf("error: fuse_runner_explain_distributed: "
                                                 "the runner is not distributed"));
        return FUSE_E_ARG;
    }
    if (!api_runner_enter(run, "fuse_runner_explain_distributed"))
        return FUSE_E_BUSY;
    fuse_status st = rt_dist_explain(run->plan, out);
    api_runner_leave(run);
    return st;
}
