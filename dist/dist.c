/*
 * dist.c: the MPI calls of a distributed run, behind small functions that compile
 * to stubs without MPI (FUSE_HAVE_MPI unset). Only MPI_COMM_WORLD is used: one
 * distributed run per process at a time, every rank running the same program.
 * Collectives are called from the thread that runs the plan; the one call made
 * from the kernels' OpenMP teams, a claim of the next block
 * (dist_counter_next), is serialised by its caller, which MPI_THREAD_SERIALIZED
 * allows (a host that initialised MPI with less gets dist_any_thread false).
 * Open MPI is loaded with dlopen on first use (below).
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "support.h"

#ifdef FUSE_HAVE_MPI
#include <dlfcn.h>
#include <pthread.h>

#include <mpi.h>
#endif

static int world_rank = 0;
static int world_size = 1;
static bool is_any_thread; /* MPI_THREAD_SERIALIZED or more */
static _Atomic uint64_t bytes_reduced;
static _Atomic uint64_t bytes_gathered;
static _Atomic uint64_t n_calls;

bool dist_is_built(void)
{
#ifdef FUSE_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int dist_rank(void) { return world_rank; }
bool dist_any_thread(void) { return is_any_thread; }
int dist_size(void) { return world_size; }
uint64_t dist_bytes_reduced(void) { return atomic_load(&bytes_reduced); }
uint64_t dist_bytes_gathered(void) { return atomic_load(&bytes_gathered); }
uint64_t dist_calls(void) { return atomic_load(&n_calls); }

void dist_row_range(int64_t rows, int64_t rank_rows, int rank, int64_t *lo, int64_t *hi)
{
    int64_t a = rank_rows * rank, b = a + rank_rows;
    *lo = a < rows ? a : rows;
    *hi = b < rows ? b : rows;
}

#ifdef FUSE_HAVE_MPI

#ifndef OPEN_MPI
#error "dist.c loads Open MPI's libmpi at run time: build with Open MPI's mpi.h"
#endif

/* Open MPI is loaded with dlopen on the first distributed call, not linked: a
 * plain run does not pay for loading and relocating libmpi and its libraries
 * (about 1 ms of every process start here). Open MPI's handles (MPI_COMM_WORLD,
 * MPI_INT, MPI_MAX...) are the addresses of its global objects, so they are
 * looked up by name too. */
typedef struct MpiApi {
    int (*Initialized)(int *);
    int (*Finalized)(int *);
    int (*Init_thread)(int *, char ***, int, int *);
    int (*Finalize)(void);
    int (*Comm_rank)(MPI_Comm, int *);
    int (*Comm_size)(MPI_Comm, int *);
    int (*Allreduce)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm);
    int (*Allgatherv)(const void *, int, MPI_Datatype, void *, const int *, const int *,
                      MPI_Datatype, MPI_Comm);
    int (*Gatherv)(const void *, int, MPI_Datatype, void *, const int *, const int *,
                   MPI_Datatype, int, MPI_Comm);
    int (*Type_contiguous)(int, MPI_Datatype, MPI_Datatype *);
    int (*Type_indexed)(int, const int *, const int *, MPI_Datatype, MPI_Datatype *);
    int (*Type_commit)(MPI_Datatype *);
    int (*Type_free)(MPI_Datatype *);
    int (*Query_thread)(int *);
    int (*Barrier)(MPI_Comm);
    int (*Bcast)(void *, int, MPI_Datatype, int, MPI_Comm);
    int (*Send)(const void *, int, MPI_Datatype, int, int, MPI_Comm);
    int (*Recv)(void *, int, MPI_Datatype, int, int, MPI_Comm, MPI_Status *);
    int (*Win_allocate)(MPI_Aint, int, MPI_Info, MPI_Comm, void *, MPI_Win *);
    int (*Win_lock_all)(int, MPI_Win);
    int (*Win_unlock_all)(MPI_Win);
    int (*Win_flush)(int, MPI_Win);
    int (*Win_free)(MPI_Win *);
    int (*Fetch_and_op)(const void *, void *, MPI_Datatype, int, MPI_Aint, MPI_Op, MPI_Win);
    MPI_Comm world;
    MPI_Info info_null;
    MPI_Datatype t_int, t_int64, t_uint8, t_uint64, t_float, t_double;
    MPI_Op op_land, op_lor, op_max, op_bxor, op_bor, op_sum, op_replace;
    const char *error; /* why loading failed, or NULL */
} MpiApi;

static MpiApi mpi;
static pthread_once_t mpi_once = PTHREAD_ONCE_INIT;

#define MPI_SYM(field, name) ok &= sup_dl_symbol(lib, name, &mpi.field, sizeof mpi.field)

static void mpi_load(void)
{
    /* global: Open MPI's own plugins resolve libmpi's symbols */
    void *lib = dlopen(FUSE_MPI_SONAME, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        mpi.error = "cannot load Open MPI (" FUSE_MPI_SONAME "; Debian: openmpi-bin)";
        return;
    }
    bool ok = true;
    MPI_SYM(Initialized, "MPI_Initialized");
    MPI_SYM(Finalized, "MPI_Finalized");
    MPI_SYM(Init_thread, "MPI_Init_thread");
    MPI_SYM(Finalize, "MPI_Finalize");
    MPI_SYM(Comm_rank, "MPI_Comm_rank");
    MPI_SYM(Comm_size, "MPI_Comm_size");
    MPI_SYM(Allreduce, "MPI_Allreduce");
    MPI_SYM(Allgatherv, "MPI_Allgatherv");
    MPI_SYM(Gatherv, "MPI_Gatherv");
    MPI_SYM(Type_contiguous, "MPI_Type_contiguous");
    MPI_SYM(Type_indexed, "MPI_Type_indexed");
    MPI_SYM(Type_commit, "MPI_Type_commit");
    MPI_SYM(Type_free, "MPI_Type_free");
    MPI_SYM(Query_thread, "MPI_Query_thread");
    MPI_SYM(Barrier, "MPI_Barrier");
    MPI_SYM(Bcast, "MPI_Bcast");
    MPI_SYM(Send, "MPI_Send");
    MPI_SYM(Recv, "MPI_Recv");
    MPI_SYM(Win_allocate, "MPI_Win_allocate");
    MPI_SYM(Win_lock_all, "MPI_Win_lock_all");
    MPI_SYM(Win_unlock_all, "MPI_Win_unlock_all");
    MPI_SYM(Win_flush, "MPI_Win_flush");
    MPI_SYM(Win_free, "MPI_Win_free");
    MPI_SYM(Fetch_and_op, "MPI_Fetch_and_op");
    MPI_SYM(world, "ompi_mpi_comm_world");
    MPI_SYM(info_null, "ompi_mpi_info_null");
    MPI_SYM(t_int, "ompi_mpi_int");
    MPI_SYM(t_int64, "ompi_mpi_int64_t");
    MPI_SYM(t_uint8, "ompi_mpi_uint8_t");
    MPI_SYM(t_uint64, "ompi_mpi_uint64_t");
    MPI_SYM(t_float, "ompi_mpi_float");
    MPI_SYM(t_double, "ompi_mpi_double");
    MPI_SYM(op_land, "ompi_mpi_op_land");
    MPI_SYM(op_lor, "ompi_mpi_op_lor");
    MPI_SYM(op_max, "ompi_mpi_op_max");
    MPI_SYM(op_bxor, "ompi_mpi_op_bxor");
    MPI_SYM(op_bor, "ompi_mpi_op_bor");
    MPI_SYM(op_sum, "ompi_mpi_op_sum");
    MPI_SYM(op_replace, "ompi_mpi_op_replace");
    if (!ok)
        mpi.error = "cannot find Open MPI's functions in " FUSE_MPI_SONAME;
    /* lib stays loaded for the life of the process */
}

/* MPI_Finalize at exit when this library initialised MPI: a host that
 * initialised it finalises it itself. */
static void finalize_at_exit(void)
{
    int is_finalized = 0;
    mpi.Finalized(&is_finalized);
    if (!is_finalized)
        mpi.Finalize();
}

fuse_status dist_init(int *rank, int *size, char **err)
{
    pthread_once(&mpi_once, mpi_load);
    if (mpi.error) {
        *err = strdup(mpi.error);
        return FUSE_E_UNSUPPORTED;
    }
    int is_up = 0, is_finalized = 0;
    mpi.Initialized(&is_up);
    mpi.Finalized(&is_finalized);
    if (is_finalized) {
        *err = strdup("MPI was already finalised: a distributed run needs it running");
        return FUSE_E_UNSUPPORTED;
    }
    int provided = MPI_THREAD_SINGLE;
    if (!is_up) {
        if (mpi.Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
            *err = strdup("MPI_Init_thread failed");
            return FUSE_E_UNSUPPORTED;
        }
        atexit(finalize_at_exit);
    } else {
        mpi.Query_thread(&provided);
    }
    is_any_thread = provided >= MPI_THREAD_SERIALIZED;
    mpi.Comm_rank(mpi.world, &world_rank);
    mpi.Comm_size(mpi.world, &world_size);
    *rank = world_rank;
    *size = world_size;
    return FUSE_OK;
}

bool dist_agree_ok(bool ok)
{
    int mine = ok ? 1 : 0, all = 0;
    mpi.Allreduce(&mine, &all, 1, mpi.t_int, mpi.op_land, mpi.world);
    return all != 0;
}

bool dist_any(bool flag)
{
    int mine = flag ? 1 : 0, any = 0;
    mpi.Allreduce(&mine, &any, 1, mpi.t_int, mpi.op_lor, mpi.world);
    return any != 0;
}

void dist_sum_ints(int *v, int n)
{
    mpi.Allreduce(MPI_IN_PLACE, v, n, mpi.t_int, mpi.op_sum, mpi.world);
}

int64_t dist_max_i64(int64_t v)
{
    int64_t m = v;
    mpi.Allreduce(&v, &m, 1, mpi.t_int64, mpi.op_max, mpi.world);
    return m;
}

/* MPI counts are ints: large buffers go in chunks of at most 2^30 elements. */
#define DIST_CHUNK ((int64_t)1 << 30)

static void allreduce_in_place(void *buf, int64_t n, MPI_Datatype type, MPI_Op op, size_t elem)
{
    for (int64_t at = 0; at < n; at += DIST_CHUNK) {
        int64_t k = n - at < DIST_CHUNK ? n - at : DIST_CHUNK;
        mpi.Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)at * elem, (int)k, type, op,
                      mpi.world);
    }
    atomic_fetch_add(&bytes_reduced, (uint64_t)n * elem);
    atomic_fetch_add(&n_calls, 1);
}

/* The cells a rank did not change are equal to `before` on every rank, so their
 * XOR with it is 0 everywhere; a changed cell's XOR is non-zero on its owner
 * only. XOR over the ranks then gives each owner's change, and XOR with before
 * again gives the owner's bits: no rounding, -0.0 and NaN payloads kept. The
 * bytes are XORed as such, whatever the element type. */
static void xor_bytes(void *cur, const void *before, size_t bytes)
{
    unsigned char *c = cur;
    const unsigned char *b = before;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) { /* memcpy: the bits, without aliasing */
        uint64_t x, y;
        memcpy(&x, c + i, 8);
        memcpy(&y, b + i, 8);
        x ^= y;
        memcpy(c + i, &x, 8);
    }
    for (; i < bytes; i++)
        c[i] ^= b[i];
}

/* XOR over the ranks, in 8-byte words where the size allows (fewer, larger
 * elements for MPI's reduction loop), else in bytes. */
static void allreduce_xor(void *cur, size_t bytes)
{
    if (bytes % 8 == 0)
        allreduce_in_place(cur, (int64_t)(bytes / 8), mpi.t_uint64, mpi.op_bxor, 8);
    else
        allreduce_in_place(cur, (int64_t)bytes, mpi.t_uint8, mpi.op_bxor, 1);
}

void dist_sum_reals(void *buf, int64_t n, size_t size)
{
    allreduce_in_place(buf, n, size == 8 ? mpi.t_double : mpi.t_float, mpi.op_sum, size);
}

void dist_merge_changes(void *cur, const void *before, size_t bytes)
{
    xor_bytes(cur, before, bytes);
    allreduce_xor(cur, bytes);
    xor_bytes(cur, before, bytes);
}

void dist_merge_zeroed(void *cur, size_t bytes)
{
    allreduce_xor(cur, bytes);
}

/* Ranks whose counts fit on the stack: no allocation that could fail on one
 * rank only and leave the others in the collective. */
#define DIST_STACK_RANKS 256

/* The rows of every rank to all of them (is_root_only false) or to rank 0
 * alone. The rows travel as elements of one row's bytes, so counts stay small
 * ints (rows, not bytes) for buffers of any size. */
static bool gather_rows(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows,
                        bool is_root_only)
{
    if (rows > INT_MAX || row_bytes > INT_MAX || row_bytes == 0)
        return false;
    int stack_counts[DIST_STACK_RANKS], stack_displs[DIST_STACK_RANKS];
    bool is_big = world_size > DIST_STACK_RANKS;
    int *counts = is_big ? malloc((size_t)world_size * sizeof *counts) : stack_counts;
    int *displs = is_big ? malloc((size_t)world_size * sizeof *displs) : stack_displs;
    MPI_Datatype row;
    bool ok = counts && displs && mpi.Type_contiguous((int)row_bytes, mpi.t_uint8, &row) ==
                                      MPI_SUCCESS;
    if (ok && mpi.Type_commit(&row) != MPI_SUCCESS) {
        mpi.Type_free(&row);
        ok = false;
    }
    if (ok) {
        for (int r = 0; r < world_size; r++) {
            int64_t lo, hi;
            dist_row_range(rows, rank_rows, r, &lo, &hi);
            displs[r] = (int)lo;
            counts[r] = (int)(hi - lo);
        }
        char *mine = (char *)buf + (size_t)displs[world_rank] * row_bytes;
        if (!is_root_only)
            ok = mpi.Allgatherv(MPI_IN_PLACE, 0, mpi.t_uint8, buf, counts, displs, row,
                                mpi.world) == MPI_SUCCESS;
        else if (world_rank == 0)
            ok = mpi.Gatherv(MPI_IN_PLACE, 0, mpi.t_uint8, buf, counts, displs, row, 0,
                             mpi.world) == MPI_SUCCESS;
        else
            ok = mpi.Gatherv(mine, counts[world_rank], row, NULL, NULL, NULL, row, 0,
                             mpi.world) == MPI_SUCCESS;
        mpi.Type_free(&row);
        if (!is_root_only || world_rank == 0)
            atomic_fetch_add(&bytes_gathered,
                             (uint64_t)(rows - counts[world_rank]) * (uint64_t)row_bytes);
        atomic_fetch_add(&n_calls, 1);
    }
    if (is_big) {
        free(counts);
        free(displs);
    }
    return ok;
}

bool dist_gather_rows(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows)
{
    return gather_rows(buf, rows, row_bytes, rank_rows, false);
}

bool dist_gather_rows_root(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows)
{
    return gather_rows(buf, rows, row_bytes, rank_rows, true);
}

/* Rank r's blocks as one datatype of `row` elements: the runs of rows it
 * holds, adjacent blocks merged (lens and displs have room for one run a
 * block). *n_rows is the rows it holds; no type when it holds none. */
static bool blocks_type(int r, const DistBlocks *b, MPI_Datatype row, int *lens, int *displs,
                        MPI_Datatype *type, int64_t *n_rows)
{
    int n = 0;
    int64_t held = 0, n_blocks = (b->rows + b->block_rows - 1) / b->block_rows;
    for (int64_t k = 0; k < n_blocks; k++) {
        if (b->owner[k] != r)
            continue;
        int64_t lo = k * b->block_rows, hi = lo + b->block_rows;
        hi = hi < b->rows ? hi : b->rows;
        if (n > 0 && displs[n - 1] + lens[n - 1] == lo)
            lens[n - 1] += (int)(hi - lo);
        else {
            displs[n] = (int)lo;
            lens[n++] = (int)(hi - lo);
        }
        held += hi - lo;
    }
    *n_rows = held;
    if (n == 0)
        return true;
    if (mpi.Type_indexed(n, lens, displs, row, type) != MPI_SUCCESS)
        return false;
    if (mpi.Type_commit(type) != MPI_SUCCESS) {
        mpi.Type_free(type);
        return false;
    }
    return true;
}

bool dist_gather_blocks(void *buf, const DistBlocks *b, int *lens, int *displs,
                        bool is_root_only)
{
    if (b->rows > INT_MAX || b->row_bytes > INT_MAX || b->row_bytes == 0 || b->block_rows < 1)
        return false;
    MPI_Datatype row;
    if (mpi.Type_contiguous((int)b->row_bytes, mpi.t_uint8, &row) != MPI_SUCCESS)
        return false;
    bool ok = mpi.Type_commit(&row) == MPI_SUCCESS;
    uint64_t got = 0;
    /* every rank's blocks in turn: broadcast by their holder, or sent to rank 0 */
    for (int r = is_root_only ? 1 : 0; ok && r < world_size; r++) {
        bool is_mine = r == world_rank;
        if (is_root_only && !is_mine && world_rank != 0)
            continue;
        MPI_Datatype type;
        int64_t n_rows = 0;
        ok = blocks_type(r, b, row, lens, displs, &type, &n_rows);
        if (!ok || n_rows == 0)
            continue;
        if (!is_root_only)
            ok = mpi.Bcast(buf, 1, type, r, mpi.world) == MPI_SUCCESS;
        else if (is_mine)
            ok = mpi.Send(buf, 1, type, 0, 0, mpi.world) == MPI_SUCCESS;
        else
            ok = mpi.Recv(buf, 1, type, r, 0, mpi.world, MPI_STATUS_IGNORE) == MPI_SUCCESS;
        if (!is_mine)
            got += (uint64_t)n_rows * b->row_bytes;
        mpi.Type_free(&type);
    }
    mpi.Type_free(&row);
    atomic_fetch_add(&bytes_gathered, got);
    atomic_fetch_add(&n_calls, 1);
    return ok;
}

bool dist_gather_lists(const int64_t *mine, int64_t *all, const int *counts, int *displs)
{
    int64_t at = 0;
    for (int r = 0; r < world_size; r++) {
        if (at > INT_MAX)
            return false;
        displs[r] = (int)at;
        at += counts[r];
    }
    atomic_fetch_add(&n_calls, 1);
    atomic_fetch_add(&bytes_gathered, (uint64_t)(at - counts[world_rank]) * sizeof *all);
    return mpi.Allgatherv(mine, counts[world_rank], mpi.t_int64, all, counts, displs,
                          mpi.t_int64, mpi.world) == MPI_SUCCESS;
}

/* Tag of dist_send / dist_recv, apart from the gathers' 0. */
#define DIST_TAG_PIECES 1

bool dist_send(const void *buf, size_t bytes, int to)
{
    atomic_fetch_add(&n_calls, 1);
    return bytes <= INT_MAX &&
           mpi.Send(buf, (int)bytes, mpi.t_uint8, to, DIST_TAG_PIECES, mpi.world) == MPI_SUCCESS;
}

bool dist_recv(void *buf, size_t bytes, int from)
{
    atomic_fetch_add(&n_calls, 1);
    if (bytes > INT_MAX || mpi.Recv(buf, (int)bytes, mpi.t_uint8, from, DIST_TAG_PIECES,
                                    mpi.world, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return false;
    atomic_fetch_add(&bytes_gathered, bytes);
    return true;
}

/* ---- a counter the ranks draw from ---- */

struct DistCounter {
    MPI_Win win; /* one int64_t, on rank 0 */
};

DistCounter *dist_counter_new(void)
{
    DistCounter *c = calloc(1, sizeof *c);
    if (!dist_agree_ok(c != NULL)) { /* Win_allocate is collective */
        free(c);
        return NULL;
    }
    int64_t *base = NULL;
    MPI_Aint bytes = world_rank == 0 ? (MPI_Aint)sizeof *base : 0;
    bool ok = mpi.Win_allocate(bytes, (int)sizeof *base, mpi.info_null, mpi.world, &base,
                               &c->win) == MPI_SUCCESS;
    if (!dist_agree_ok(ok)) {
        if (ok)
            mpi.Win_free(&c->win);
        free(c);
        return NULL;
    }
    /* one passive epoch for the counter's life: a draw needs nothing from
     * rank 0, which may be computing */
    mpi.Win_lock_all(MPI_MODE_NOCHECK, c->win);
    dist_counter_reset(c);
    return c;
}

void dist_counter_reset(DistCounter *c)
{
    if (world_rank == 0) {
        int64_t zero = 0, old = 0;
        mpi.Fetch_and_op(&zero, &old, mpi.t_int64, 0, 0, mpi.op_replace, c->win);
        mpi.Win_flush(0, c->win);
    }
    mpi.Barrier(mpi.world); /* no draw before the zero is in place */
}

int64_t dist_counter_next(DistCounter *c)
{
    int64_t one = 1, got = 0;
    mpi.Fetch_and_op(&one, &got, mpi.t_int64, 0, 0, mpi.op_sum, c->win);
    mpi.Win_flush(0, c->win);
    return got;
}

void dist_counter_free(DistCounter *c)
{
    if (!c)
        return;
    mpi.Win_unlock_all(c->win);
    mpi.Win_free(&c->win);
    free(c);
}

/* Whether the element of `size` bytes at p is non-zero (as a float of that
 * width: every bit but the sign; NaN is non-zero, -0.0 is zero). */
static inline bool is_nonzero(const unsigned char *p, size_t size)
{
    uint64_t bits = 0;
    memcpy(&bits, p, size); /* little-endian: the element's low bytes */
    uint64_t sign = (uint64_t)1 << (8 * size - 1);
    return (bits & ~sign) != 0;
}

/* Bit j of the word: whether cell j of the 64 (or fewer) at c is non-zero. */
static inline uint64_t pack_cells(const unsigned char *c, int n, size_t size)
{
    uint64_t w = 0;
    for (int j = 0; j < n; j++)
        w |= (uint64_t)is_nonzero(c + (size_t)j * size, size) << j;
    return w;
}

/* pack_cells with the element size a constant in each call, so the compiler
 * makes each loop plain word compares */
static uint64_t pack_word(const unsigned char *c, int n, size_t size)
{
    switch (size) {
    case 2: return pack_cells(c, n, 2);
    case 4: return pack_cells(c, n, 4);
    case 8: return pack_cells(c, n, 8);
    default: return pack_cells(c, n, size);
    }
}

/* Cell j of the m at c set to `one` where bit j of w is set, else to zero. */
static inline void unpack_cells(unsigned char *c, uint64_t w, int m, size_t size,
                                const unsigned char *one)
{
    for (int j = 0; j < m; j++) {
        unsigned char *at = c + (size_t)j * size;
        if ((w >> j) & 1)
            memcpy(at, one, size);
        else
            memset(at, 0, size);
    }
}

/* unpack_cells with the element size a constant in each call (plain stores,
 * not a call of memcpy per cell) */
static void unpack_word(unsigned char *c, uint64_t w, int m, size_t size, const void *one)
{
    switch (size) {
    case 2: unpack_cells(c, w, m, 2, one); break;
    case 4: unpack_cells(c, w, m, 4, one); break;
    case 8: unpack_cells(c, w, m, 8, one); break;
    default: unpack_cells(c, w, m, size, one); break;
    }
}

/* A relation's cells as bits: 32 times fewer bytes to move than floats. A cell
 * non-zero here has its bit set in the OR, so a word that is 0 after the
 * all-reduce covers cells that are 0 here already: only the others are
 * rewritten (deltas are sparse), to `one` or to zero. */
void dist_merge_or(void *cur, int64_t n, size_t size, const void *one, uint64_t *words)
{
    unsigned char *c = cur;
    int64_t n_words = (n + 63) / 64;
    for (int64_t w = 0; w < n_words; w++)
        words[w] = pack_word(c + (size_t)(64 * w) * size,
                             n - 64 * w < 64 ? (int)(n - 64 * w) : 64, size);
    allreduce_in_place(words, n_words, mpi.t_uint64, mpi.op_bor, sizeof *words);
    for (int64_t w = 0; w < n_words; w++)
        if (words[w])
            unpack_word(c + (size_t)(64 * w) * size, words[w],
                        n - 64 * w < 64 ? (int)(n - 64 * w) : 64, size, one);
}

#else /* no MPI: one rank */

fuse_status dist_init(int *rank, int *size, char **err)
{
    *rank = 0;
    *size = 1;
    *err = strdup("this fuse-jit was built without MPI: --distributed needs a build with "
                  "Open MPI (libopenmpi-dev; README, \"Running across MPI ranks\")");
    return FUSE_E_UNSUPPORTED;
}

bool dist_agree_ok(bool ok) { return ok; }
bool dist_any(bool flag) { return flag; }
int64_t dist_max_i64(int64_t v) { return v; }
void dist_sum_ints(int *v, int n) { (void)v, (void)n; }

void dist_merge_changes(void *cur, const void *before, size_t bytes)
{
    (void)cur, (void)before, (void)bytes;
}

void dist_merge_zeroed(void *cur, size_t bytes) { (void)cur, (void)bytes; }
void dist_sum_reals(void *buf, int64_t n, size_t size) { (void)buf, (void)n, (void)size; }

bool dist_gather_rows(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows)
{
    (void)buf, (void)rows, (void)row_bytes, (void)rank_rows;
    return true; /* one rank holds every row */
}

bool dist_gather_rows_root(void *buf, int64_t rows, size_t row_bytes, int64_t rank_rows)
{
    return dist_gather_rows(buf, rows, row_bytes, rank_rows);
}

bool dist_gather_blocks(void *buf, const DistBlocks *b, int *lens, int *displs,
                        bool is_root_only)
{
    (void)buf, (void)b, (void)lens, (void)displs, (void)is_root_only;
    return true; /* one rank holds every block */
}

bool dist_gather_lists(const int64_t *mine, int64_t *all, const int *counts, int *displs)
{
    displs[0] = 0;
    if (counts[0] > 0)
        memcpy(all, mine, (size_t)counts[0] * sizeof *all);
    return true;
}

bool dist_send(const void *buf, size_t bytes, int to)
{
    (void)buf, (void)bytes, (void)to;
    return false; /* one rank: nobody to send to */
}

bool dist_recv(void *buf, size_t bytes, int from)
{
    (void)buf, (void)bytes, (void)from;
    return false;
}

DistCounter *dist_counter_new(void) { return NULL; }
void dist_counter_reset(DistCounter *c) { (void)c; }
int64_t dist_counter_next(DistCounter *c) { (void)c; return 0; }
void dist_counter_free(DistCounter *c) { (void)c; }

void dist_merge_or(void *cur, int64_t n, size_t size, const void *one, uint64_t *words)
{
    (void)cur, (void)n, (void)size, (void)one, (void)words;
}

#endif
