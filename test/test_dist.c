/*
 * test_dist.c: distributed runs (dist/, runtime/dist_exec.c) through
 * `mpirun -np N fuse-jit run ... --distributed`, for N = 1, 2 and 3 (more ranks
 * than cores: --oversubscribe). Each program's exports are checked against
 * values computed here (naive loops in double), and every rank count must give
 * exactly the bits of the single-process run: split groups compute each cell on
 * one rank in the order one process does, and the merge moves bits. Built only
 * with MPI (test/CMakeLists.txt).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io.h"

/* Runs `bin first ...` (NULL-terminated) in the scratch directory. */
static Result call_tool(const char *bin, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    Result r = run_tool_va(bin, first, ap);
    va_end(ap);
    return r;
}

/* `mpirun -np np fuse-jit run prog.fuse --out out --distributed` and up to four
 * more arguments (NULL ends them early); expects success. */
static void mpi_run(int np, const char *out, const char *a1, const char *a2, const char *a3,
                    const char *a4)
{
    char n[16];
    snprintf(n, sizeof n, "%d", np);
    Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", n,
                         FUSE_JIT_BIN, "run", "prog.fuse", "--out", out, "--distributed", a1, a2,
                         a3, a4, NULL);
    expect_exit(&r, 0);
    result_free(&r);
}

/* The same run in one process, without --distributed. */
static void plain_run(const char *out, const char *a1, const char *a2, const char *a3,
                      const char *a4)
{
    Result r = run_cli("run", "prog.fuse", "--out", out, a1, a2, a3, a4, NULL);
    expect_exit(&r, 0);
    result_free(&r);
}

/* Member `name` of two .npz files: the same shape, and the same bits (rel < 0)
 * or values within rel of the larger magnitude (at least 1: sums added up in
 * another order). */
static void expect_members(const char *a, const char *b, const char *name, int rank,
                           const int64_t *shape, double rel)
{
    int64_t n = 1;
    for (int k = 0; k < rank; k++)
        n *= shape[k];
    float *x = read_member(a, name, rank, shape);
    float *y = read_member(b, name, rank, shape);
    for (int64_t i = 0; i < n; i++) {
        bool same = rel < 0 ? memcmp(&x[i], &y[i], sizeof(float)) == 0
                            : fabs((double)x[i] - y[i]) <=
                                  rel * fmax(1.0, fmax(fabs(x[i]), fabs(y[i])));
        ck_assert_msg(same, "%s[%lld]: %s has %.9g, %s has %.9g", name, (long long)i, a, x[i], b,
                      y[i]);
    }
    free(x);
    free(y);
}

static void expect_same_bits(const char *a, const char *b, const char *name, int rank,
                             const int64_t *shape)
{
    expect_members(a, b, name, rank, shape, -1);
}

/* ---- a product chain with replicated equations after it ---- */

enum { CH_I = 200, CH_K = 150 };

static const char CHAIN[] = "A[i,k] = \"a.npy\"\n"
                            "B[k,j] = \"b.npy\"\n"
                            "C[i,j] = A[i,k] B[k,j]\n"
                            "D[i,j] = C[i,k] B[k,j]\n"
                            "S[i] = D[i,j]\n"           /* a row projection */
                            "T[j] = D[i,j]\n"           /* a projection over the leading axis */
                            "P[i,j.] = softmax(D[i,j])\n"
                            "export D\nexport S\nexport T\nexport P\n";

/* D = A B B, then its projections and row softmax, in double. */
static void chain_reference(const float *a, const float *b, double *d, double *s, double *t,
                            double *p)
{
    double *c = calloc((size_t)CH_I * CH_K, sizeof *c);
    ck_assert_ptr_nonnull(c);
    memset(d, 0, (size_t)CH_I * CH_K * sizeof *d);
    for (int i = 0; i < CH_I; i++)
        for (int k = 0; k < CH_K; k++)
            for (int j = 0; j < CH_K; j++)
                c[i * CH_K + j] += (double)a[i * CH_K + k] * b[k * CH_K + j];
    for (int i = 0; i < CH_I; i++)
        for (int k = 0; k < CH_K; k++)
            for (int j = 0; j < CH_K; j++)
                d[i * CH_K + j] += c[i * CH_K + k] * b[k * CH_K + j];
    memset(t, 0, CH_K * sizeof *t);
    for (int i = 0; i < CH_I; i++) {
        double sum = 0, mx = -INFINITY, z = 0;
        for (int j = 0; j < CH_K; j++) {
            sum += d[i * CH_K + j];
            t[j] += d[i * CH_K + j];
            mx = fmax(mx, d[i * CH_K + j]);
        }
        s[i] = sum;
        for (int j = 0; j < CH_K; j++)
            z += exp(d[i * CH_K + j] - mx);
        for (int j = 0; j < CH_K; j++)
            p[i * CH_K + j] = exp(d[i * CH_K + j] - mx) / z;
    }
    free(c);
}

/* D's values reach ~30: its tolerance scales with the sums' size. */
static void expect_near(const char *what, const float *got, const double *want, int64_t n,
                        double tol)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])),
                      "%s[%lld]: got %.8g, want %.8g", what, (long long)i, got[i], want[i]);
}

static void check_chain_values(const char *npz, const float *a, const float *b)
{
    double *d = malloc((size_t)CH_I * CH_K * sizeof *d), *s = malloc(CH_I * sizeof *s);
    double *t = malloc(CH_K * sizeof *t), *p = malloc((size_t)CH_I * CH_K * sizeof *p);
    ck_assert(d && s && t && p);
    chain_reference(a, b, d, s, t, p);
    int64_t sd[2] = {CH_I, CH_K}, ss[1] = {CH_I}, st[1] = {CH_K};
    float *gd = read_member(npz, "D", 2, sd), *gs = read_member(npz, "S", 1, ss);
    float *gt = read_member(npz, "T", 1, st), *gp = read_member(npz, "P", 2, sd);
    expect_near("D", gd, d, CH_I * CH_K, 1e-4);
    expect_near("S", gs, s, CH_I, 1e-4);
    expect_near("T", gt, t, CH_K, 1e-4);
    expect_near("P", gp, p, CH_I * CH_K, 1e-4);
    free(gd), free(gs), free(gt), free(gp);
    free(d), free(s), free(t), free(p);
}

/* Writes the chain's program and random inputs (seed and seed + 1), returning
 * them (the caller frees both). */
static void write_chain(unsigned seed, float **a, float **b)
{
    *a = malloc((size_t)CH_I * CH_K * sizeof **a);
    *b = malloc(CH_K * CH_K * sizeof **b);
    ck_assert(*a && *b);
    fill_random(*a, CH_I * CH_K, seed, -0.5f, 0.5f);
    fill_random(*b, CH_K * CH_K, seed + 1, -0.2f, 0.2f);
    int64_t sa[2] = {CH_I, CH_K}, sb[2] = {CH_K, CH_K};
    write_npy("a.npy", 2, sa, *a);
    write_npy("b.npy", 2, sb, *b);
    write_text("prog.fuse", CHAIN);
}

START_TEST(test_chain_equals_one_process)
{
    float *a, *b;
    write_chain(11, &a, &b);
    plain_run("one.npz", "--threads", "2", NULL, NULL);
    check_chain_values("one.npz", a, b);
    const char *outs[] = {"np1.npz", "np2.npz", "np3.npz"};
    for (int np = 1; np <= 3; np++) {
        mpi_run(np, outs[np - 1], "--threads", "2", NULL, NULL);
        int64_t sd[2] = {CH_I, CH_K}, ss[1] = {CH_I}, st[1] = {CH_K};
        expect_same_bits("one.npz", outs[np - 1], "D", 2, sd);
        /* S sums its own rows on each rank (the others' rows add exact zeros);
         * T, a projection over the rows, adds the ranks' partial sums in
         * another order than one process */
        expect_same_bits("one.npz", outs[np - 1], "S", 1, ss);
        expect_members("one.npz", outs[np - 1], "T", 1, st, 1e-5);
        expect_same_bits("one.npz", outs[np - 1], "P", 2, sd);
    }
    free(a);
    free(b);
}
END_TEST

/* Member `name` of two .npz files: the same dtype, shape and bytes. */
static void expect_same_bytes(const char *a, const char *b, const char *name, fuse_dtype dt)
{
    fuse_tensor x, y;
    char *err = NULL;
    ck_assert_msg(io_npz_read(spath(a), name, NULL, &x, &err) == FUSE_OK, "%s", err);
    ck_assert_msg(io_npz_read(spath(b), name, NULL, &y, &err) == FUSE_OK, "%s", err);
    ck_assert_int_eq(x.dtype, dt);
    ck_assert_int_eq(y.dtype, dt);
    ck_assert_int_eq(x.rank, y.rank);
    size_t n = fuse_dtype_size(dt);
    for (int k = 0; k < x.rank; k++) {
        ck_assert_int_eq(x.shape[k], y.shape[k]);
        n *= (size_t)x.shape[k];
    }
    ck_assert_msg(memcmp(x.data, y.data, n) == 0, "%s: %s and %s differ", name, a, b);
    free(x.data);
    free(y.data);
}

/* Other precisions: row blocks are gathered in elements of their own width (8
 * bytes for fp64, 2 for fp16), still bit for bit. */
START_TEST(test_chain_in_other_precisions)
{
    float *a, *b;
    write_chain(13, &a, &b);
    const char *precisions[] = {"fp64", "fp16"};
    const fuse_dtype dtypes[] = {FUSE_F64, FUSE_F16};
    for (int i = 0; i < 2; i++) {
        plain_run("one.npz", "--threads", "2", "--precision", precisions[i]);
        mpi_run(2, "np2.npz", "--threads", "2", "--precision", precisions[i]);
        expect_same_bytes("one.npz", "np2.npz", "D", dtypes[i]);
        expect_same_bytes("one.npz", "np2.npz", "P", dtypes[i]);
    }
    free(a);
    free(b);
}
END_TEST

/* explain --distributed names each product's placement and the bytes moved. */
START_TEST(test_explain_shows_placement)
{
    float *a = calloc((size_t)CH_I * CH_K, sizeof *a), *b = calloc(CH_K * CH_K, sizeof *b);
    ck_assert(a && b);
    int64_t sa[2] = {CH_I, CH_K}, sb[2] = {CH_K, CH_K};
    write_npy("a.npy", 2, sa, a);
    write_npy("b.npy", 2, sb, b);
    write_text("prog.fuse", CHAIN);
    Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                         FUSE_JIT_BIN, "explain", "prog.fuse", "--distributed", "--threads", "1",
                         NULL);
    expect_exit(&r, 0);
    /* C and D stay in row blocks (D reads C row for row); S and T, sums over
     * D, are summed on each rank and all-reduced (200 and 150 floats); P reads
     * D whole: it is gathered first, each rank receiving half of its 200 x 150
     * float32 = 120,000 bytes in the model */
    const char *want[] = {
        "over 2 MPI ranks",
        "  C                rows       nothing moved",
        "  D                rows       nothing moved",
        "  S                summed     each rank sums its rows of D, then all-reduce 800 bytes "
        "(800 bytes) per run",
        "  T                summed     each rank sums its rows of D, then all-reduce 600 bytes "
        "(600 bytes) per run",
        "  D                gathered   58.6 KiB (60000 bytes) received by each rank, read whole "
        "next\n  P                replicated",
        "total: 2 rows, 0 split, 2 summed, 1 replicated; when each runs once, 1.4 KiB (1400 "
        "bytes) all-reduced",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(r.out, want[i]), "no \"%s\" in:\n%s", want[i], r.out);
    /* C (kept: small) is no export: with the results on rank 0 (the command
     * line's), nothing reads it after the run, so it stays in its blocks */
    ck_assert_msg(!strstr(r.out, "  C                gathered"), "%s", r.out);
    /* rank 1 prints nothing: the text appears once */
    ck_assert_ptr_null(strstr(strstr(r.out, "total:") + 1, "total:"));
    result_free(&r);
    /* a 128 x 128 x 200 product is team work (3.3 million multiply-adds: split
     * without the threshold) but below the split threshold (2^22): replicated */
    float *small = calloc(128 * 200, sizeof *small);
    ck_assert_ptr_nonnull(small);
    int64_t ss[2] = {128, 200};
    write_npy("s.npy", 2, ss, small);
    write_text("prog.fuse", "S[i,k] = \"s.npy\"\nP[i,j] = S[i,k] S[j,k]\nexport P\n");
    r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2", FUSE_JIT_BIN,
                  "explain", "prog.fuse", "--distributed", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "  P                replicated"), "%s", r.out);
    result_free(&r);
    /* a batched product (its rows are not one M axis): split by column panels
     * and all-reduced, 4 x 200 x 150 float32 */
    float *x = calloc(4 * CH_I * CH_K, sizeof *x);
    ck_assert_ptr_nonnull(x);
    int64_t sx[3] = {4, CH_I, CH_K}, sy[3] = {4, CH_K, CH_K};
    write_npy("x.npy", 3, sx, x);
    write_npy("y.npy", 3, sy, x);
    write_text("prog.fuse", "X[b,i,k] = \"x.npy\"\nY[b,k,j] = \"y.npy\"\n"
                            "E[b,i,j] = X[b,i,k] Y[b,k,j]\nexport E\n");
    r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2", FUSE_JIT_BIN,
                  "explain", "prog.fuse", "--distributed", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "  E                split      all-reduce 469 KiB (480000 bytes) "
                                "per run"),
                  "%s", r.out);
    ck_assert_msg(strstr(r.out, "total: 0 rows, 1 split, 0 summed, 0 replicated; when each runs "
                                "once, 469 KiB (480000 bytes) all-reduced"),
                  "%s", r.out);
    free(x);
    result_free(&r);
    free(small);
    free(a);
    free(b);
}
END_TEST

/* ---- row blocks read in other ways ---- */

enum { RB_I = 2048, RB_K = 48, RB_J = 2048 };

/* C, U, R and P stay in row blocks (U first: the product's kernel would
 * otherwise compute R too, a fused span, which is never split). R (an
 * elementwise run) and P (a row softmax, two calls) read C row for row on the
 * same blocks (a distributed runner's loop nests share rows in whole panels of
 * the products'); U reads C through a product with C as B and T transposed,
 * and a sink writes R: every way a block is gathered. */
static const char ROWS[] = "A[i,k] = \"a.npy\"\n"
                           "B[k,j] = \"b.npy\"\n"
                           "C[i,j] = A[i,k] B[k,j]\n"
                           "U[k,j] = B[k,i] C[i,j]\n"
                           "R[i,j] = relu(C[i,j])\n"
                           "P[i,j.] = softmax(C[i,j])\n"
                           "T[j,i] = C[i,j]\n"
                           "\"r.npy\" = R[i,j]\n"
                           "export R\nexport T\nexport U\nexport P\n";

START_TEST(test_row_blocks_gathered_for_other_readers)
{
    float *a = malloc((size_t)RB_I * RB_K * sizeof *a), *b = malloc(RB_K * RB_J * sizeof *b);
    double *c = calloc((size_t)RB_I * RB_J, sizeof *c), *u = calloc(RB_K * RB_J, sizeof *u);
    ck_assert(a && b && c && u);
    fill_random(a, RB_I * RB_K, 21, -0.5f, 0.5f);
    fill_random(b, RB_K * RB_J, 22, -0.5f, 0.5f);
    for (int i = 0; i < RB_I; i++)
        for (int k = 0; k < RB_K; k++)
            for (int j = 0; j < RB_J; j++)
                c[(size_t)i * RB_J + j] += (double)a[i * RB_K + k] * b[k * RB_J + j];
    for (int k = 0; k < RB_K; k++) /* U = B C, B read as [k,i] (RB_I == RB_J) */
        for (int i = 0; i < RB_I; i++)
            for (int j = 0; j < RB_J; j++)
                u[k * RB_J + j] += (double)b[k * RB_J + i] * c[(size_t)i * RB_J + j];
    int64_t sa[2] = {RB_I, RB_K}, sb[2] = {RB_K, RB_J}, sc[2] = {RB_I, RB_J};
    write_npy("a.npy", 2, sa, a);
    write_npy("b.npy", 2, sb, b);
    write_text("prog.fuse", ROWS);
    plain_run("one.npz", "--threads", "2", NULL, NULL);
    float *r = read_member("one.npz", "R", 2, sc), *t = read_member("one.npz", "T", 2, sc);
    float *gu = read_member("one.npz", "U", 2, sb);
    for (int i = 0; i < RB_I; i++)
        for (int j = 0; j < RB_J; j++) {
            double want = c[(size_t)i * RB_J + j];
            ck_assert(fabs(r[(size_t)i * RB_J + j] - fmax(want, 0)) <= 1e-4);
            ck_assert(fabs(t[(size_t)j * RB_I + i] - want) <= 1e-4);
        }
    expect_near("U", gu, u, RB_K * RB_J, 1e-4);
    free(r), free(t), free(gu);
    const char *outs[] = {"np1.npz", "np2.npz", "np3.npz"};
    for (int np = 1; np <= 3; np++) {
        remove(spath("r.npy"));
        mpi_run(np, outs[np - 1], "--threads", "2", NULL, NULL);
        expect_same_bits("one.npz", outs[np - 1], "R", 2, sc);
        expect_same_bits("one.npz", outs[np - 1], "T", 2, sc);
        expect_same_bits("one.npz", outs[np - 1], "U", 2, sb);
        expect_same_bits("one.npz", outs[np - 1], "P", 2, sc);
        float *sink = read_npy("r.npy", 2, sc), *want = read_member("one.npz", "R", 2, sc);
        ck_assert(memcmp(sink, want, (size_t)RB_I * RB_J * sizeof *sink) == 0);
        free(sink), free(want);
    }
    /* explain: R and P run on C's blocks as they are; C is gathered once */
    Result ex = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                          FUSE_JIT_BIN, "explain", "prog.fuse", "--distributed", NULL);
    expect_exit(&ex, 0);
    ck_assert_msg(strstr(ex.out, "  R                rows       nothing moved") &&
                      strstr(ex.out, "  P                rows       nothing moved"),
                  "%s", ex.out);
    const char *first = strstr(ex.out, "  C                gathered");
    ck_assert_msg(first && !strstr(first + 1, "  C                gathered"), "%s", ex.out);
    result_free(&ex);
    /* run --time says what rank 0 moved: others' rows of C, R, P and U at most */
    Result res = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                           FUSE_JIT_BIN, "run", "prog.fuse", "--distributed", "--time", NULL);
    expect_exit(&res, 0);
    const char *line = strstr(res.err, "distributed: 2 MPI ranks; rank 0 moved ");
    ck_assert_msg(line, "%s", res.err);
    unsigned long long moved = strtoull(line + strlen("distributed: 2 MPI ranks; rank 0 moved "),
                                        NULL, 10);
    ck_assert_msg(moved > 0 && moved <= 3ull * RB_I * RB_J * sizeof(float), "moved %llu", moved);
    result_free(&res);
    /* R not exported: the sink alone reads it, as its own tensor (no op of
     * the sink's group reads it): rank 0 must still gather it first */
    char *text = strdup(ROWS);
    ck_assert(text);
    char *at = strstr(text, "export R\n");
    memmove(at, at + strlen("export R\n"), strlen(at + strlen("export R\n")) + 1);
    write_text("prog.fuse", text);
    free(text);
    remove(spath("r.npy"));
    mpi_run(2, "np2.npz", "--threads", "1", NULL, NULL);
    float *sink = read_npy("r.npy", 2, sc);
    for (int i = 0; i < RB_I; i++)
        for (int j = 0; j < RB_J; j++)
            ck_assert_msg(fabs(sink[(size_t)i * RB_J + j] - fmax(c[(size_t)i * RB_J + j], 0)) <=
                              1e-4, "r.npy[%d,%d]", i, j);
    free(sink);
    free(a), free(b), free(c), free(u);
}
END_TEST

/* ---- transitive closure: a fixpoint, semi-naive and synchronous ---- */

enum { TC_N = 320 }; /* 102,400 cells: the delta kernels split (>= 2^16) */

/* Right-linear: a delta row x yields only row x of the next delta, so the
 * semi-naive sweeps stay in row blocks (dealt to the ranks in turn). */
static const char CLOSURE[] = "Edge(x,y) = \"edge.npy\"\n"
                              "Path(x,y) = Edge(x,y)\n"
                              "Path(x,z) = Path(x,y) Edge(y,z)\n"
                              "export Path\n";
/* Left-linear: the delta's rows feed other rows; its join runs whole on one
 * thread share and the ranks merge the delta as bits every sweep. */
static const char CLOSURE_LEFT[] = "Edge(x,y) = \"edge.npy\"\n"
                                   "Path(x,y) = Edge(x,y)\n"
                                   "Path(x,z) = Edge(x,y) Path(y,z)\n"
                                   "export Path\n";

/* Warshall's closure of e (0/1), in place. */
static void closure_reference(double *r)
{
    for (int k = 0; k < TC_N; k++)
        for (int i = 0; i < TC_N; i++)
            if (r[i * TC_N + k] != 0)
                for (int j = 0; j < TC_N; j++)
                    if (r[k * TC_N + j] != 0)
                        r[i * TC_N + j] = 1;
}

static void run_closure(const char *program, const char *strategy)
{
    float *e = malloc((size_t)TC_N * TC_N * sizeof *e);
    double *want = malloc((size_t)TC_N * TC_N * sizeof *want);
    ck_assert(e && want);
    srand(7);
    for (int i = 0; i < TC_N * TC_N; i++) /* about 1.5 edges per node: long paths */
        e[i] = rand() % (2 * TC_N) < 3 ? 1.0f : 0.0f;
    for (int i = 0; i < TC_N * TC_N; i++)
        want[i] = e[i];
    closure_reference(want);
    int64_t se[2] = {TC_N, TC_N};
    write_npy("edge.npy", 2, se, e);
    write_text("prog.fuse", program);
    plain_run("one.npz", "--mode", "fixpoint", "--fixpoint-strategy", strategy);
    float *got = read_member("one.npz", "Path", 2, se);
    expect_close("Path", got, want, TC_N * TC_N);
    free(got);
    const char *outs[] = {"np1.npz", "np2.npz", "np3.npz"};
    for (int np = 1; np <= 3; np++) {
        mpi_run(np, outs[np - 1], "--mode", "fixpoint", "--fixpoint-strategy", strategy);
        expect_same_bits("one.npz", outs[np - 1], "Path", 2, se);
    }
    free(e);
    free(want);
}

START_TEST(test_closure_semi_naive)
{
    run_closure(CLOSURE, "semi_naive");
    /* Edge's file (400 KiB, counted large) used in place by every rank: the
     * ranks read one page-cache copy of it, with the same results */
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1);
    run_closure(CLOSURE, "semi_naive");
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

/* A closure read after its fixpoint: its semi-naive sweeps leave Path in the
 * blocks dealt to the ranks in turn, which neither a row-for-row reader of
 * other blocks nor a projection can read as they are. */
static const char CLOSURE_READ[] = "Edge(x,y) = \"edge.npy\"\n"
                                   "Path(x,y) = Edge(x,y)\n"
                                   "Path(x,z) = Path(x,y) Edge(y,z)\n"
                                   "Mine(x,y) = Path(x,y) Edge(x,y)\n"
                                   "Both(x,y) = Path(x,y) Path(y,x)\n"
                                   "Reach[x] = Path(x,y)\n"
                                   "export Mine\nexport Both\nexport Reach\n";

START_TEST(test_closure_read_after_its_fixpoint)
{
    float *e = malloc((size_t)TC_N * TC_N * sizeof *e);
    double *path = malloc((size_t)TC_N * TC_N * sizeof *path);
    double *mine = malloc((size_t)TC_N * TC_N * sizeof *mine);
    double *both = malloc((size_t)TC_N * TC_N * sizeof *both);
    double *reach = calloc(TC_N, sizeof *reach);
    ck_assert(e && path && mine && both && reach);
    srand(11);
    for (int i = 0; i < TC_N * TC_N; i++)
        e[i] = rand() % (2 * TC_N) < 3 ? 1.0f : 0.0f;
    for (int i = 0; i < TC_N * TC_N; i++)
        path[i] = e[i];
    closure_reference(path);
    for (int i = 0; i < TC_N; i++)
        for (int j = 0; j < TC_N; j++) {
            mine[i * TC_N + j] = path[i * TC_N + j] * e[i * TC_N + j];
            both[i * TC_N + j] = path[i * TC_N + j] * path[j * TC_N + i];
            reach[i] += path[i * TC_N + j];
        }
    int64_t se[2] = {TC_N, TC_N}, sr[1] = {TC_N};
    write_npy("edge.npy", 2, se, e);
    write_text("prog.fuse", CLOSURE_READ);
    const char *outs[] = {"np1.npz", "np2.npz", "np3.npz"};
    for (int np = 1; np <= 3; np++) {
        mpi_run(np, outs[np - 1], "--mode", "fixpoint", "--fixpoint-strategy", "semi_naive");
        float *got = read_member(outs[np - 1], "Mine", 2, se);
        expect_close("Mine", got, mine, TC_N * TC_N);
        free(got);
        got = read_member(outs[np - 1], "Both", 2, se);
        expect_close("Both", got, both, TC_N * TC_N);
        free(got);
        got = read_member(outs[np - 1], "Reach", 1, sr);
        expect_close("Reach", got, reach, TC_N);
        free(got);
    }
    free(e), free(path), free(mine), free(both), free(reach);
}
END_TEST

/* ---- a closure whose blocks the ranks claim as they go ---- */

enum { CL_N = 1000 }; /* rows of 4,000 bytes: 32 rows a block, 32 blocks */

/* The reachability of each node by breadth-first search over e (CL_N x CL_N,
 * 0/1): path[x * CL_N + z] = 1 when z is reachable from x in one step or more. */
static void closure_bfs(const float *e, double *path)
{
    int *queue = malloc(CL_N * sizeof *queue);
    ck_assert_ptr_nonnull(queue);
    memset(path, 0, (size_t)CL_N * CL_N * sizeof *path);
    for (int x = 0; x < CL_N; x++) {
        double *row = path + (size_t)x * CL_N;
        int head = 0, tail = 0;
        for (int z = 0; z < CL_N; z++)
            if (e[(size_t)x * CL_N + z] != 0) {
                row[z] = 1;
                queue[tail++] = z;
            }
        while (head < tail) {
            int y = queue[head++];
            for (int z = 0; z < CL_N; z++)
                if (e[(size_t)y * CL_N + z] != 0 && row[z] == 0) {
                    row[z] = 1;
                    queue[tail++] = z;
                }
        }
    }
    free(queue);
}

/* Path exported alone (gathered to rank 0 at the end, whose pages rank 0
 * faults in while it claims blocks), and Path read whole after its fixpoint
 * (gathered to every rank: each rank's claimed blocks broadcast), on 2 and 3
 * ranks of 1 and 2 threads (a team's threads take turns drawing blocks). */
/* A boolean source used in place is checked for 0s and 1s by shares, one per
 * rank; when a later rank's share holds other values (a file that must be
 * thresholded), the ranks that used it in place threshold it too: the same
 * bits as one process, whose check saw the whole file (Deg reads the values). The index of Edge's
 * non-zeros is made by shares as well. */
START_TEST(test_boolean_source_checked_by_shares)
{
    float *e = malloc((size_t)CL_N * CL_N * sizeof *e);
    ck_assert_ptr_nonnull(e);
    int64_t se[2] = {CL_N, CL_N}, sd[1] = {CL_N};
    /* Deg sums Edge's values as the runner holds them: 1 for 2.5, 0 for -1 */
    write_text("prog.fuse", "Edge(x,y) = \"edge.npy\"\n"
                            "Path(x,y) = Edge(x,y)\n"
                            "Path(x,z) = Path(x,y) Edge(y,z)\n"
                            "Deg[x] = Edge(x,y)\n"
                            "export Path\nexport Deg\n");
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1); /* map this small file */
    for (int dirty = 0; dirty <= 1; dirty++) {
        srand(29);
        for (int i = 0; i < CL_N * CL_N; i++)
            e[i] = rand() % (5 * CL_N) < 6 ? 1.0f : 0.0f;
        for (int k = 0; dirty && k < 400; k++) /* rows 600 on: the last rank's share */
            e[(size_t)(600 + k) * CL_N + (size_t)(k * 7 % CL_N)] = k % 2 ? 2.5f : -1.0f;
        write_npy("edge.npy", 2, se, e);
        Result r = run_cli("run", "prog.fuse", "--out", "one.npz", "--mode", "fixpoint",
                           "--fixpoint-strategy", "semi_naive", "--max-iters", "1000", NULL);
        expect_exit(&r, 0);
        result_free(&r);
        for (int np = 2; np <= 3; np++) {
            r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-x",
                          "FUSE_JIT_MMAP_MIN_BYTES", "-np", np == 2 ? "2" : "3", FUSE_JIT_BIN,
                          "run", "prog.fuse", "--out", "out.npz", "--distributed", "--threads", "1",
                          "--mode", "fixpoint", "--fixpoint-strategy", "semi_naive",
                          "--max-iters", "1000", NULL);
            expect_exit(&r, 0);
            result_free(&r);
            expect_same_bits("one.npz", "out.npz", "Path", 2, se);
            expect_same_bits("one.npz", "out.npz", "Deg", 1, sd);
        }
    }
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
    free(e);
}
END_TEST

START_TEST(test_closure_blocks_claimed)
{
    static const char *programs[] = {
        CLOSURE, "Edge(x,y) = \"edge.npy\"\n"
                 "Path(x,y) = Edge(x,y)\n"
                 "Path(x,z) = Path(x,y) Edge(y,z)\n"
                 "Reach[x] = Path(x,y)\n"
                 "Both(x,y) = Path(x,y) Path(y,x)\n"
                 "export Path\nexport Reach\nexport Both\n"};
    float *e = malloc((size_t)CL_N * CL_N * sizeof *e);
    double *path = malloc((size_t)CL_N * CL_N * sizeof *path);
    double *both = malloc((size_t)CL_N * CL_N * sizeof *both);
    double *reach = calloc(CL_N, sizeof *reach);
    ck_assert(e && path && both && reach);
    srand(23);
    for (int i = 0; i < CL_N * CL_N; i++) /* about 1.2 edges per node */
        e[i] = rand() % (5 * CL_N) < 6 ? 1.0f : 0.0f;
    closure_bfs(e, path);
    for (int x = 0; x < CL_N; x++)
        for (int y = 0; y < CL_N; y++) {
            both[x * CL_N + y] = path[x * CL_N + y] * path[y * CL_N + x];
            reach[x] += path[x * CL_N + y];
        }
    int64_t se[2] = {CL_N, CL_N}, sr[1] = {CL_N};
    write_npy("edge.npy", 2, se, e);
    for (int k = 0; k < 2; k++) {
        write_text("prog.fuse", programs[k]);
        for (int np = 2; np <= 3; np++)
            for (int threads = 1; threads <= 2; threads++) {
                char th[8];
                snprintf(th, sizeof th, "%d", threads);
                Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe",
                                     "-np", np == 2 ? "2" : "3", FUSE_JIT_BIN, "run", "prog.fuse",
                                     "--out", "out.npz", "--distributed", "--threads", th,
                                     "--mode", "fixpoint", "--fixpoint-strategy", "semi_naive",
                                     "--max-iters", "1000", NULL);
                expect_exit(&r, 0);
                result_free(&r);
                float *got = read_member("out.npz", "Path", 2, se);
                expect_close("Path", got, path, CL_N * CL_N);
                free(got);
                if (k == 0)
                    continue;
                got = read_member("out.npz", "Both", 2, se);
                expect_close("Both", got, both, CL_N * CL_N);
                free(got);
                got = read_member("out.npz", "Reach", 1, sr);
                expect_close("Reach", got, reach, CL_N);
                free(got);
            }
    }
    free(e), free(path), free(both), free(reach);
}
END_TEST

START_TEST(test_left_linear_closure_semi_naive)
{
    run_closure(CLOSURE_LEFT, "semi_naive");
}
END_TEST

/* explain says which closure sweeps in row blocks and which merges bits. */
START_TEST(test_explain_shows_closure_sweeps)
{
    float *e = calloc((size_t)TC_N * TC_N, sizeof *e);
    ck_assert_ptr_nonnull(e);
    int64_t se[2] = {TC_N, TC_N};
    write_npy("edge.npy", 2, se, e);
    const char *programs[] = {CLOSURE, CLOSURE_LEFT};
    const char *says[] = {"its sweeps stay in row blocks", "its delta sweeps split, "
                                                                 "all-reducing"};
    for (int i = 0; i < 2; i++) {
        write_text("prog.fuse", programs[i]);
        Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                             FUSE_JIT_BIN, "explain", "prog.fuse", "--distributed", NULL);
        expect_exit(&r, 0);
        ck_assert_msg(strstr(r.out, says[i]), "%s", r.out);
        result_free(&r);
    }
    free(e);
}
END_TEST

START_TEST(test_closure_synchronous)
{
    run_closure(CLOSURE, "synchronous");
}
END_TEST

/* A boolean join stores max(old, fact): its output is not written whole before
 * it is read, so the merge goes through the values held before the kernel (the
 * XOR against them) rather than from zeros. */
START_TEST(test_boolean_join_merged_from_old_values)
{
    enum { N = 300 };
    float *e = malloc((size_t)N * N * sizeof *e);
    double *want = calloc((size_t)N * N, sizeof *want);
    ck_assert(e && want);
    srand(3);
    for (int i = 0; i < N * N; i++)
        e[i] = rand() % 50 == 0 ? 1.0f : 0.0f;
    for (int x = 0; x < N; x++)
        for (int y = 0; y < N; y++)
            for (int z = 0; e[x * N + y] != 0 && z < N; z++)
                if (e[y * N + z] != 0)
                    want[x * N + z] = 1;
    int64_t se[2] = {N, N};
    write_npy("e.npy", 2, se, e);
    write_text("prog.fuse", "E(x,y) = \"e.npy\"\nR(x,z) = E(x,y) E(y,z)\nexport R\n");
    plain_run("one.npz", NULL, NULL, NULL, NULL);
    float *got = read_member("one.npz", "R", 2, se);
    expect_close("R", got, want, N * N);
    free(got);
    mpi_run(2, "np2.npz", NULL, NULL, NULL, NULL);
    mpi_run(3, "np3.npz", NULL, NULL, NULL, NULL);
    expect_same_bits("one.npz", "np2.npz", "R", 2, se);
    expect_same_bits("one.npz", "np3.npz", "R", 2, se);
    free(e);
    free(want);
}
END_TEST

/* ---- errors stop every rank ---- */

/* A source read in row blocks that rank 0 uses in place (its file's data
 * 64-byte aligned) while rank 1 converts only its rows (its copy of the file
 * has the data at byte 80): the ranks then gather it, and rank 0 first copies
 * it out of the read-only mapping. The results equal one process's. */
START_TEST(test_source_in_place_on_one_rank_only)
{
    static const char PROG[] = "A[i,k] = \"a.npy\"\n"
                               "B[k,j] = \"b.npy\"\n"
                               "C[i,j] = A[i,k] B[k,j]\n"
                               "D[i,j] = C[i,k] B[k,j]\n"
                               "export D\n";
    float *a, *b;
    write_chain(17, &a, &b);
    write_text("prog.fuse", PROG);
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1024", 1); /* map these small files */
    plain_run("one.npz", NULL, NULL, NULL, NULL);
    ck_assert_int_eq(mkdir(spath("r0"), 0755), 0);
    ck_assert_int_eq(mkdir(spath("r1"), 0755), 0);
    write_npy("r0/a.npy", 2, (int64_t[]){CH_I, CH_K}, a);
    write_npy("r0/b.npy", 2, (int64_t[]){CH_K, CH_K}, b);
    write_npy("r1/b.npy", 2, (int64_t[]){CH_K, CH_K}, b);
    write_text("r0/prog.fuse", PROG);
    write_text("r1/prog.fuse", PROG);
    /* a v1.0 .npy whose header ends at byte 80: valid, not 64-byte aligned */
    char head[80] = "\x93NUMPY\x01\x00";
    head[8] = 70;
    head[9] = 0;
    int n = snprintf(head + 10, 70, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }",
                     CH_I, CH_K);
    memset(head + 10 + n, ' ', (size_t)(69 - n));
    head[79] = '\n';
    size_t bytes = (size_t)CH_I * CH_K * sizeof *a;
    char *file = malloc(sizeof head + bytes);
    ck_assert_ptr_nonnull(file);
    memcpy(file, head, sizeof head);
    memcpy(file + sizeof head, a, bytes);
    write_file(spath("r1/a.npy"), file, sizeof head + bytes);
    char r0[4096], r1[4096], out[4096]; /* spath's result lasts until its next call */
    snprintf(r0, sizeof r0, "%s", spath("r0"));
    snprintf(r1, sizeof r1, "%s", spath("r1"));
    snprintf(out, sizeof out, "%s", spath("np2.npz"));
    /* every rank takes part in writing --out (rank 0 writes) */
    Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-x",
                         "FUSE_JIT_MMAP_MIN_BYTES", "-np", "1", "--wdir", r0, FUSE_JIT_BIN, "run",
                         "prog.fuse", "--out", out, "--distributed", ":", "-x",
                         "FUSE_JIT_MMAP_MIN_BYTES", "-np", "1", "--wdir", r1, FUSE_JIT_BIN, "run",
                         "prog.fuse", "--out", out, "--distributed", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    int64_t sd[2] = {CH_I, CH_K};
    expect_same_bits("one.npz", "np2.npz", "D", 2, sd);
    /* --out on rank 0 only: an error on every rank, not a hang */
    r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-x",
                  "FUSE_JIT_MMAP_MIN_BYTES", "-np", "1", "--wdir", r0, FUSE_JIT_BIN, "run",
                  "prog.fuse", "--out", out, "--distributed", ":", "-x",
                  "FUSE_JIT_MMAP_MIN_BYTES", "-np", "1", "--wdir", r1, FUSE_JIT_BIN, "run",
                  "prog.fuse", "--distributed", NULL);
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
    ck_assert_int_ne(r.code, 0);
    ck_assert_int_lt(r.code, 128);
    ck_assert_msg(strstr(r.err, "give every rank the same --out"), "%s", r.err);
    result_free(&r);
    free(file), free(a), free(b);
}
END_TEST

START_TEST(test_missing_source_stops_all_ranks)
{
    write_text("prog.fuse", "A[i,k] = \"absent.npy\"\nC[i,j] = A[i,k] A[j,k]\nexport C\n");
    Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2",
                         FUSE_JIT_BIN, "run", "prog.fuse", "--distributed", NULL);
    ck_assert_int_ne(r.code, 0);
    ck_assert_int_lt(r.code, 128); /* an error, not a crash */
    ck_assert_msg(strstr(r.err, "absent.npy"), "%s", r.err);
    result_free(&r);
}
END_TEST

/* ---- an interrupt on one rank (this binary as the MPI program) ---- */

/* `mpirun -np 2 test_dist --interrupt-host`: every rank runs a long closure (a
 * path of IH_N nodes: IH_N sweeps) in a distributed runner, semi-naive and then
 * synchronous; on rank 1 only, a thread calls fuse_ctx_interrupt 300 ms into
 * each run, then again from its first moments (while sources load). Each rank
 * prints "rank R STRATEGY DELAY: STATUS SECONDS". The other rank must stop too,
 * as interrupted (it was not, but its peer's outputs are gone), and neither may
 * wait for the other. */
enum { IH_N = 3000 };

typedef struct HostInterrupter {
    fuse_ctx *ctx;
    int delay_ms;
    atomic_int is_done;
} HostInterrupter;

static void *interrupt_later(void *arg)
{
    HostInterrupter *h = arg;
    nanosleep(&(struct timespec){.tv_nsec = h->delay_ms * 1000000L}, NULL);
    while (!atomic_load(&h->is_done)) { /* until the run returns */
        fuse_ctx_interrupt(h->ctx);
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
    }
    return NULL;
}

static int interrupt_host(void)
{
    float *edge = calloc((size_t)IH_N * IH_N, sizeof *edge);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    if (!edge || fuse_ctx_new(&ctx) != FUSE_OK ||
        fuse_program_from_text(ctx, CLOSURE, "path.fuse", &prog) != FUSE_OK)
        return 2;
    for (int i = 0; i + 1 < IH_N; i++)
        edge[(size_t)i * IH_N + i + 1] = 1.0f;
    fuse_input in = {.name = "Edge", .tensor = {.dtype = FUSE_F32, .rank = 2, .data = edge}};
    in.tensor.shape[0] = in.tensor.shape[1] = IH_N;
    int rank = 0;
    fuse_distributed_rank(&rank, NULL, NULL);
    const fuse_strategy strategies[] = {FUSE_STRATEGY_SEMI_NAIVE, FUSE_STRATEGY_SYNCHRONOUS};
    const char *names[] = {"semi_naive", "synchronous"};
    for (int r = 0; r < 4; r++) {
        int s = r % 2, delay_ms = r < 2 ? 300 : 0;
        fuse_config cfg;
        fuse_config_init(&cfg);
        cfg.threads = 1;
        cfg.mode = FUSE_MODE_FIXPOINT;
        cfg.strategy = strategies[s];
        cfg.max_iters = 2 * IH_N;
        cfg.distributed = 1;
        fuse_runner *run = NULL;
        if (fuse_runner_new(prog, &cfg, &in, 1, &run) != FUSE_OK)
            return 2;
        HostInterrupter h = {.ctx = ctx, .delay_ms = delay_ms};
        pthread_t tid;
        if (rank == 1 && pthread_create(&tid, NULL, interrupt_later, &h) != 0)
            return 2;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fuse_outputs *out = NULL;
        fuse_status st = fuse_runner_run(run, &in, 1, &out);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        atomic_store(&h.is_done, 1);
        if (rank == 1)
            pthread_join(tid, NULL);
        printf("rank %d %s %d: %s %.2f\n", rank, names[s], delay_ms, fuse_status_name(st),
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
        fflush(stdout);
        fuse_outputs_free(out);
        fuse_runner_free(run);
    }
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(edge);
    return 0;
}

/* Both ranks stop with FUSE_E_INTERRUPTED (named "interrupted"), well before
 * the closure would end. */
START_TEST(test_interrupt_on_one_rank_stops_all)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert(n > 0);
    self[n] = 0;
    Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2", self,
                         "--interrupt-host", NULL);
    expect_exit(&r, 0);
    const char *lines[] = {
        "rank 0 semi_naive 300: interrupted",  "rank 1 semi_naive 300: interrupted",
        "rank 0 synchronous 300: interrupted", "rank 1 synchronous 300: interrupted",
        "rank 0 semi_naive 0: interrupted",    "rank 1 semi_naive 0: interrupted",
        "rank 0 synchronous 0: interrupted",   "rank 1 synchronous 0: interrupted",
    };
    for (int i = 0; i < 8; i++) {
        const char *at = strstr(r.out, lines[i]);
        ck_assert_msg(at, "%s\n%s", r.out, r.err);
        double secs = atof(at + strlen(lines[i]));
        ck_assert_msg(secs < 20.0, "%s took %.2f s\n%s", lines[i], secs, r.out);
    }
    result_free(&r);
}
END_TEST

/* ---- results on every rank, or on rank 0 only (this binary as the MPI program) ---- */

/* `mpirun -np 2 test_dist --results-host`: every rank runs RESULTS (C and R in
 * row blocks, R also a sink) through the API twice with results on every rank
 * (sinks under every/) and twice with results on rank 0 only (sinks under
 * rank0/), and prints "rank R MODE RUN: exports N hash H" for each run, H a
 * hash of R's bits (0 without exports). */
enum { RH_I = 512, RH_K = 32, RH_J = 512 };

static const char RESULTS[] = "A[i,k] = \"a.npy\"\n"
                              "B[k,j] = \"b.npy\"\n"
                              "C[i,j] = A[i,k] B[k,j]\n"
                              "R[i,j] = relu(C[i,j])\n"
                              "\"r.npy\" = R[i,j]\n"
                              "export R\n";

/* FNV-1a over n bytes. */
static unsigned long long hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static int results_host(void)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    if (fuse_ctx_new(&ctx) != FUSE_OK ||
        fuse_program_from_text(ctx, RESULTS, "prog.fuse", &prog) != FUSE_OK)
        return 2;
    int rank = 0;
    fuse_distributed_rank(&rank, NULL, NULL);
    const int modes[] = {FUSE_DISTRIBUTED_EVERY_RANK, FUSE_DISTRIBUTED_RANK0};
    const char *names[] = {"every", "rank0"};
    for (int m = 0; m < 2; m++) {
        fuse_config cfg;
        fuse_config_init(&cfg);
        cfg.threads = 1;
        cfg.distributed = modes[m];
        cfg.out_dir = names[m];
        fuse_runner *run = NULL;
        if (fuse_runner_new(prog, &cfg, NULL, 0, &run) != FUSE_OK)
            return 2;
        for (int k = 0; k < 2; k++) {
            fuse_outputs *out = NULL;
            if (fuse_runner_run(run, NULL, 0, &out) != FUSE_OK)
                return 2;
            const fuse_tensor *r = fuse_outputs_find(out, "R");
            unsigned long long h = r ? hash_bytes(r->data, (size_t)RH_I * RH_J * sizeof(float)) : 0;
            printf("rank %d %s %d: exports %zu hash %016llx\n", rank, names[m], k,
                   fuse_outputs_count(out), h);
            fuse_outputs_free(out);
        }
        fuse_runner_free(run);
    }
    fflush(stdout);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return 0;
}

/* Results on every rank: each rank's R is one process's; on rank 0 only:
 * rank 0's is, the other ranks get none, and rank 0 writes the sink. A second
 * run of each runner gives the same (the blocks of the first are forgotten). */
START_TEST(test_results_on_every_rank_or_rank0)
{
    float *a = malloc((size_t)RH_I * RH_K * sizeof *a), *b = malloc(RH_K * RH_J * sizeof *b);
    ck_assert(a && b);
    fill_random(a, RH_I * RH_K, 31, -0.5f, 0.5f);
    fill_random(b, RH_K * RH_J, 32, -0.5f, 0.5f);
    int64_t sa[2] = {RH_I, RH_K}, sb[2] = {RH_K, RH_J}, sr[2] = {RH_I, RH_J};
    write_npy("a.npy", 2, sa, a);
    write_npy("b.npy", 2, sb, b);
    write_text("prog.fuse", RESULTS);
    plain_run("one.npz", "--no-sinks", NULL, NULL, NULL);
    float *one = read_member("one.npz", "R", 2, sr);
    for (int i = 0; i < RH_I; i++)
        for (int j = 0; j < RH_J; j++) {
            double c = 0;
            for (int k = 0; k < RH_K; k++)
                c += (double)a[i * RH_K + k] * b[k * RH_J + j];
            ck_assert(fabs(one[i * RH_J + j] - fmax(c, 0)) <= 1e-4);
        }
    char want[32];
    snprintf(want, sizeof want, "hash %016llx", hash_bytes(one, (size_t)RH_I * RH_J * sizeof *one));
    ck_assert(mkdir(spath("every"), 0755) == 0 && mkdir(spath("rank0"), 0755) == 0);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert(n > 0);
    self[n] = 0;
    Result r = call_tool(FUSE_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", "2", self,
                         "--results-host", NULL);
    expect_exit(&r, 0);
    const char *whole[] = {"rank 0 every 0: exports 1 ", "rank 1 every 0: exports 1 ",
                           "rank 0 every 1: exports 1 ", "rank 1 every 1: exports 1 ",
                           "rank 0 rank0 0: exports 1 ", "rank 0 rank0 1: exports 1 "};
    for (int i = 0; i < 6; i++) {
        const char *at = strstr(r.out, whole[i]);
        ck_assert_msg(at && strncmp(at + strlen(whole[i]), want, strlen(want)) == 0, "%s\n%s",
                      whole[i], r.out);
    }
    ck_assert_msg(strstr(r.out, "rank 1 rank0 0: exports 0 hash 0000000000000000") &&
                      strstr(r.out, "rank 1 rank0 1: exports 0 hash 0000000000000000"),
                  "%s", r.out);
    result_free(&r);
    const char *sinks[] = {"every/r.npy", "rank0/r.npy"};
    for (int i = 0; i < 2; i++) {
        float *sink = read_npy(sinks[i], 2, sr);
        ck_assert_msg(memcmp(sink, one, (size_t)RH_I * RH_J * sizeof *one) == 0, "%s", sinks[i]);
        free(sink);
    }
    free(one), free(a), free(b);
}
END_TEST

static Suite *dist_suite(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = harness_case("mpi");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_chain_equals_one_process);
    tcase_add_test(tc, test_chain_in_other_precisions);
    tcase_add_test(tc, test_explain_shows_placement);
    tcase_add_test(tc, test_row_blocks_gathered_for_other_readers);
    tcase_add_test(tc, test_closure_semi_naive);
    tcase_add_test(tc, test_left_linear_closure_semi_naive);
    tcase_add_test(tc, test_closure_read_after_its_fixpoint);
    tcase_add_test(tc, test_closure_blocks_claimed);
    tcase_add_test(tc, test_boolean_source_checked_by_shares);
    tcase_add_test(tc, test_explain_shows_closure_sweeps);
    tcase_add_test(tc, test_interrupt_on_one_rank_stops_all);
    tcase_add_test(tc, test_closure_synchronous);
    tcase_add_test(tc, test_boolean_join_merged_from_old_values);
    tcase_add_test(tc, test_missing_source_stops_all_ranks);
    tcase_add_test(tc, test_source_in_place_on_one_rank_only);
    tcase_add_test(tc, test_results_on_every_rank_or_rank0);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--interrupt-host") == 0)
        return interrupt_host();
    if (argc > 1 && strcmp(argv[1], "--results-host") == 0)
        return results_host();
    SRunner *sr = srunner_create(dist_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
