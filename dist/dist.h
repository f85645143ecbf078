/*
 * dist.h: running one program on several MPI ranks (Open MPI), the stage between
 * lowering and the runtime. Two jobs, one file each:
 *
 *   dist.c       thin wrappers over the MPI calls the runtime needs (initialise if
 *                the host has not, rank and size, the all-reduces that merge a
 *                split kernel's output and agree on flags, counts and statuses,
 *                the gathers of row blocks, a counter the ranks draw work
 *                from), plus the byte counters behind `--time` and `explain`;
 *   dist_plan.c  the planner: a pure function deciding, per equation group, where
 *                it runs (every rank alike, or split across the ranks) and what it
 *                moves.
 *
 * Data model: a tensor is whole on every rank, with the same bits, or in row
 * blocks: rank r holds rows [r*b, (r+1)*b) of axis 0 (dist_row_range) and its
 * other rows hold nothing it reads. A split group is one kernel call whose thread
 * team already partitions the output's cells (lower.h); rank r of R runs the
 * thread shares r*T .. r*T+T-1 of a team of R*T, so each cell is computed by
 * exactly one rank, in exactly the order one process computes it. When those
 * shares are blocks of whole rows the output stays in row blocks (DIST_ROWS),
 * to be read as it is by a group reading it row for row on the same blocks, or
 * gathered (dist_gather_rows) for any other reader; otherwise an all-reduce makes
 * it whole again (dist_merge_changes: bitwise, so the result equals the
 * single-process bits). A semi-naive relation may instead be in blocks any
 * rank holds (DistBlocks: dealt in turn, or claimed from a DistCounter as the
 * ranks got through them), gathered by dist_gather_blocks. The runtime
 * (runtime/dist_exec.c) tracks which tensors are in blocks.
 *
 * Built without MPI (FUSE_MPI off or not found) the same header compiles to stubs:
 * dist_is_built() is false, dist_init fails with a clear message, the size is 1.
 */
#ifndef FUSE_DIST_H
#define FUSE_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusejit.h"
#include "ir.h"

/* ---- dist.c: MPI wrappers ---- */

/* Whether this fuse-jit was built with MPI. */
bool dist_is_built(void);

/* Initialises MPI when the host has not (MPI_Init_thread, serialised: the
 * calling thread makes the collectives, a team's threads take turns drawing
 * from a DistCounter; MPI_Finalize then runs at exit) and fills the world
 * rank and size. FUSE_E_UNSUPPORTED with *err (malloc'd) in a build
 * without MPI. Safe to call again. */
fuse_status dist_init(int *rank, int *size, char **err);

/* The world rank and size once dist_init succeeded (0 and 1 before). */
int dist_rank(void);
int dist_size(void);

/* true on every rank when ok is true on every rank: how ranks agree that a step
 * (making the plan, loading sources) succeeded everywhere before the next
 * collective, so one rank's failure stops them all instead of leaving the
 * others waiting. */
bool dist_agree_ok(bool ok);

/* true on every rank when flag is true on some rank (logical or). */
bool dist_any(bool flag);
/* the largest of v over the ranks. */
int64_t dist_max_i64(int64_t v);
/* v[0..n) summed over the ranks, in place (how many ranks set each flag). */
void dist_sum_ints(int *v, int n);

/* Makes a split output whole: every rank holds `before` (`bytes` bytes,
 * identical on every rank before the split kernel ran) and its own `cur`, in
 * which it changed only the cells it owns; afterwards cur holds, on every rank,
 * each cell as its owner computed it (an all-reduce of cur XOR before, bit for
 * bit, whatever the element type). */
void dist_merge_changes(void *cur, const void *before, size_t bytes);
/* The same when `before` is all zeros on every rank (the output was zeroed
 * before the kernel): one all-reduce, no passes over the buffer. */
void dist_merge_zeroed(void *cur, size_t bytes);
/* buf's n floats (size 4) or doubles (size 8) summed over the ranks, in
 * place: the partial sums of a projection over row blocks made whole. */
void dist_sum_reals(void *buf, int64_t n, size_t size);

/* Makes a boolean split output of n elements of `size` bytes (floats of that
 * width) whole: a cell is `one` (the element 1) where it is non-zero on some
 * rank, else 0 (several ranks may set one cell). The cells travel as bits:
 * `words` has room for (n + 63) / 64 of them. */
void dist_merge_or(void *cur, int64_t n, size_t size, const void *one, uint64_t *words);

/* Row blocks: a tensor of `rows` rows (axis 0) split so that rank r holds
 * rows [lo, hi) = [r * rank_rows, (r + 1) * rank_rows) cut to `rows`. */
void dist_row_range(int64_t rows, int64_t rank_rows, int rank, int64_t *lo, int64_t *hi);

/* Makes a row-block tensor whole on every rank: each rank holds its rows of
 * buf (`row_bytes` bytes a row) and gets the others' (one all-gather). False,
 * with nothing moved on any rank, when the sizes do not fit MPI's int counts
 * (rows or row_bytes above INT_MAX: the same on every rank). */
bool dist_gather_rows(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows);
/* dist_gather_rows to rank 0 only: the others send their rows and keep them. */
bool dist_gather_rows_root(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows);

/* Row blocks held by any rank: `rows` rows of `row_bytes` bytes in blocks of
 * `block_rows` (the last one cut to `rows`), block k held by rank owner[k]
 * (dealt in turn, or claimed as the ranks went: dist_counter_next). */
typedef struct DistBlocks {
    int64_t rows, block_rows;
    size_t row_bytes;
    const int *owner;
} DistBlocks;

/* Makes such a tensor whole on every rank (each rank's blocks broadcast in
 * turn) or on rank 0 only (the others send theirs there and keep them): one
 * message per rank, its blocks described by a datatype. lens and displs are
 * scratch of one int per block. False as dist_gather_rows (sizes). */
bool dist_gather_blocks(void *buf, const DistBlocks *b, int *lens, int *displs,
                        bool is_root_only);

/* Every rank's list of counts[r] values (mine: this rank's), concatenated in
 * rank order into all on every rank (one all-gather); displs is scratch of
 * one int per rank. False when the total exceeds INT_MAX (nothing moved). */
bool dist_gather_lists(const int64_t *mine, int64_t *all, const int *counts, int *displs);
/* One message of `bytes` (at most INT_MAX) from this rank to rank `to`, and
 * its receipt into buf on `to` (the bytes count as gathered there); messages
 * between two ranks arrive in the order they were sent. */
bool dist_send(const void *buf, size_t bytes, int to);
bool dist_recv(void *buf, size_t bytes, int from);
/* Whether any thread may call MPI, one at a time (MPI_THREAD_SERIALIZED): a
 * team's threads may then draw from a counter, serialised by the caller. */
bool dist_any_thread(void);

/* A counter on rank 0 that every rank draws numbers from, 0, 1, 2, ... in the
 * order the draws arrive (MPI one-sided atomics: rank 0 need not be listening),
 * so that ranks share out work as they get through it. _new, _reset and _free
 * are collective; _new gives NULL on every rank when some rank could not make
 * it. dist_counter_next is not thread-safe (dist_any_thread). */
typedef struct DistCounter DistCounter;
DistCounter *dist_counter_new(void);
void dist_counter_reset(DistCounter *c);
int64_t dist_counter_next(DistCounter *c);
void dist_counter_free(DistCounter *c);

/* Bytes this process handed to MPI all-reduces since dist_init (each rank's
 * buffer, counted once per call), the bytes it received from all-gathers (the
 * other ranks' rows), and the calls. */
uint64_t dist_bytes_reduced(void);
uint64_t dist_bytes_gathered(void);
uint64_t dist_calls(void);

/* ---- dist_plan.c: the distribution planner ---- */

typedef enum DistPlace {
    DIST_REPLICATED, /* every rank runs the group on its own copy */
    DIST_SPLIT,      /* each rank runs its share of the kernel's team work; merged */
    DIST_ROWS,       /* each rank computes its block of the output's rows, which
                        stays a row block until something reads it whole */
    DIST_PLACE_COUNT
} DistPlace;

/* What the planner needs to know of a group's kernel (lowering and the runtime
 * know it; the planner does not look at machine code). */
typedef struct DistKernelFacts {
    bool is_team;     /* the kernel splits work by thread (lower_group_is_parallel) */
    bool is_one_call; /* the kernel makes one call: no op reads another's partial
                         output, so a rank's share needs no other rank's cells */
    bool is_span;     /* the kernel also computes other groups (fusion across
                         equations): never split */
    size_t elem_bytes; /* bytes of an element of the group's output buffer */
    int64_t rank_rows; /* > 0: the kernel's shares are blocks of output rows, rank r's
                          thread shares making rows [r * rank_rows, ...) */
} DistKernelFacts;

typedef struct DistGroupPlan {
    DistPlace place;
    uint64_t bytes;   /* bytes each rank hands to the all-reduce per run of it */
} DistGroupPlan;

/* The placement of equation group g of the shaped program p on `ranks` ranks:
 * when ranks > 1, the kernel is team work made of one call (facts), the group's
 * ops have at least 2^22 loop cells and it is not a sink, DIST_ROWS if its
 * kernel shares rows (facts->rank_rows) and it is not recursive (0 bytes: a
 * reader that needs it whole gathers it), else DIST_SPLIT (its output
 * all-reduced); otherwise DIST_REPLICATED with 0 bytes. */
DistGroupPlan dist_plan_group(const IrProgram *p, int g, const DistKernelFacts *facts,
                              int ranks);

/* A ring all-reduce's model of what one rank sends for a buffer of `bytes`:
 * 2 (R - 1) / R of it (reduce-scatter, then all-gather). */
uint64_t dist_model_bytes(uint64_t bytes, int ranks);

/* A ring all-gather's model of what one rank receives for a buffer of `bytes`
 * split in R even blocks: (R - 1) / R of it. */
uint64_t dist_model_gather_bytes(uint64_t bytes, int ranks);

/* A placement's name for explain ("replicated", "split", "rows"). */
const char *dist_place_name(DistPlace place);

#endif /* FUSE_DIST_H */
