/*
 * save.c: a run's exports written to one .npy or .npz file straight from the
 * plan's buffers (io_out: forward into a temporary put in place at the end),
 * without the copies of fuse_outputs or an archive in memory.
 *
 * Across MPI ranks the run leaves its exports where the ranks computed them
 * (rt_dist_keep_exports) and rank 0 writes the file: every run of rows another
 * rank holds comes to it piece by piece as it writes, so rank 0 never holds
 * the others' rows (no gather into fresh memory, the same file as one process
 * writes). Every rank takes the same steps (the plan's shapes and the blocks'
 * holders are the same on every rank); a write that fails on rank 0 still
 * takes every piece, and the ranks agree on the outcome at the end.
 */
#include <stdlib.h>

#include "runtime.h"

typedef struct SaveState {
    IoOut *out;      /* rank 0's file, else NULL */
    fuse_status st;  /* the first failure of rank 0's writes */
    char *err;
} SaveState;

static bool put_rows(void *ctx, const void *p, size_t n)
{
    SaveState *s = ctx;
    if (s->st == FUSE_OK)
        s->st = io_out_data(s->out, p, n, &s->err);
    return s->st == FUSE_OK;
}

/* Export t: its header and its rows in order, from whichever rank holds them. */
static void save_tensor(RtPlan *pl, const IrTensor *t, SaveState *s, void *scratch)
{
    bool is_root = rt_dist_is_root(pl);
    fuse_tensor meta = rt_elem_view(pl, t, pl->bufs[t->id]);
    if (is_root && s->st == FUSE_OK)
        s->st = io_out_begin(s->out, t->name, &meta, &s->err);
    int64_t rows = t->rank > 0 ? t->shape[0] : 1;
    size_t row_bytes =
        rows > 0 ? (size_t)(pl->count[t->id] / rows) * rt_tensor_bytes(pl, t->id) : 0;
    for (int64_t row = 0, end; row < rows && row_bytes > 0; row = end) {
        int holder = rt_dist_rows_holder(pl, t->id, row, &end);
        const char *at = (const char *)pl->bufs[t->id] + (size_t)row * row_bytes;
        rt_dist_rows_to_root(pl, holder, at, (size_t)(end - row) * row_bytes, scratch, put_rows,
                             s);
    }
    if (is_root && s->st == FUSE_OK)
        s->st = io_out_end(s->out, &s->err);
}

fuse_status rt_save_exports(RtPlan *pl, const char *path, bool deflate)
{
    const IrProgram *p = pl->ir;
    SaveState s = {0};
    bool is_root = rt_dist_is_root(pl);
    void *scratch = is_root ? malloc(RT_ROWS_SCRATCH) : NULL; /* where pieces arrive */
    if (is_root && !scratch)
        s.st = FUSE_E_NOMEM, s.err = sup_strprintf("out of memory");
    else if (is_root)
        s.st = io_out_open(path, deflate, &s.out, &s.err);
    /* every rank takes part, or none (rank 0 could not create the file) */
    fuse_status st = rt_dist_agree(pl, s.st, "to open the output file");
    for (int i = 0; i < p->n_exports && st == FUSE_OK; i++)
        save_tensor(pl, p->tensors[p->exports[i]], &s, scratch);
    if (st == FUSE_OK && s.st == FUSE_OK && s.out)
        s.st = io_out_commit(s.out, &s.err); /* frees s.out */
    else
        io_out_abort(s.out);
    if (s.st != FUSE_OK) /* rank 0's reason */
        fe_error(&pl->dl, s.st, (Span){0}, "%s", s.err ? s.err : fuse_status_name(s.st));
    if (st == FUSE_OK)
        st = rt_dist_agree(pl, s.st, "to write the output file");
    free(s.err);
    free(scratch);
    return st;
}
