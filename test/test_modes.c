/*
 * test_modes.c: Check suite for the execution modes (SPEC §6.2-6.3):
 * transitive closure on chains and cycles in every mode and strategy against a
 * closure computed here (Warshall), mutual recursion, a float fixpoint stopping by
 * the change test, a non-converging program (status, outputs, CLI exit code 4),
 * demand runs and queries with selectors (unrelated tensors skipped in the
 * trace), temperature schedules per sweep and the JSON trace's fields.
 */
#define _XOPEN_SOURCE 700

#include "lower.h"
#include "modes.h"
#include "runtime.h"

/* White box: the zeroing tests read a runner's plan (api/api.c). */
RtPlan *api_runner_plan(const fuse_runner *run);

#include <check.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static fuse_ctx *ctx;

static void ctx_setup(void)
{
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
}

static void ctx_teardown(void)
{
    fuse_ctx_free(ctx);
    ctx = NULL;
}

/* A square 0/1 float matrix with edges i -> next(i). */
static float *graph(int n, int (*next)(int i, int n))
{
    float *m = calloc((size_t)n * (size_t)n, sizeof *m);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < n; i++) {
        int j = next(i, n);
        if (j >= 0)
            m[i * n + j] = 1.0f;
    }
    return m;
}

static int chain_next(int i, int n) { return i + 1 < n ? i + 1 : -1; }
static int cycle_next(int i, int n) { return (i + 1) % n; }

/* Transitive closure by Warshall's algorithm (independent of the library). */
static float *closure(const float *e, int n)
{
    float *c = malloc((size_t)n * (size_t)n * sizeof *c);
    ck_assert_ptr_nonnull(c);
    memcpy(c, e, (size_t)n * (size_t)n * sizeof *c);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (c[i * n + k] != 0 && c[k * n + j] != 0)
                    c[i * n + j] = 1.0f;
    return c;
}

static fuse_input matrix_input(const char *name, float *data, int n)
{
    fuse_input in = {.name = name};
    in.tensor.dtype = FUSE_F32;
    in.tensor.rank = 2;
    in.tensor.shape[0] = in.tensor.shape[1] = n;
    in.tensor.data = data;
    return in;
}

typedef struct Run {
    fuse_program *prog;
    fuse_runner *run;
    fuse_outputs *out;
    fuse_status st;
} Run;

/* Compiles text with cfg and inputs and runs it once (st: the run's status). */
static void run_text(Run *r, const char *text, const fuse_config *cfg, const fuse_input *in,
                     size_t n_in)
{
    memset(r, 0, sizeof *r);
    ck_assert_msg(fuse_program_from_text(ctx, text, "t.fuse", &r->prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(r->prog, cfg, in, n_in, &r->run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    r->st = fuse_runner_run(r->run, in, n_in, &r->out);
}

static void run_free(Run *r)
{
    fuse_outputs_free(r->out);
    fuse_runner_free(r->run);
    fuse_program_free(r->prog);
}

static const float *output(const Run *r, const char *name, int64_t count)
{
    const fuse_tensor *t = fuse_outputs_find(r->out, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, FUSE_F32);
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->shape[i];
    ck_assert_int_eq(n, count);
    return t->data;
}

static void assert_floats_eq(const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "cell %lld: got %g, want %g", (long long)i,
                      (double)got[i], (double)want[i]);
}

static fuse_config config(fuse_mode mode, fuse_strategy strategy)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.write_sinks = 0;
    cfg.mode = mode;
    cfg.strategy = strategy;
    return cfg;
}

static json_t *trace_json(fuse_runner *run)
{
    char *text = NULL;
    ck_assert_int_eq(fuse_runner_trace(run, 1, &text), FUSE_OK);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    ck_assert_msg(root != NULL, "trace is not JSON: %s", jerr.text);
    fuse_free(text);
    return root;
}

/* Entries of the JSON trace for one tensor name, in order. */
static int entries_of(json_t *root, const char *name, json_t **out, int max)
{
    json_t *entries = json_object_get(root, "entries");
    ck_assert(json_is_array(entries));
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0 && n < max)
            out[n++] = e;
    return n;
}

/* The first recursive component of a JSON trace. */
static json_t *recursive_comp(json_t *root)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "components"), i, c)
        if (json_is_true(json_object_get(c, "recursive")))
            return c;
    ck_abort_msg("no recursive component in the trace");
    return NULL;
}

/* ---- transitive closure in every mode ---- */

static const char *const TC =
    "Edge(x,y) = \"edge.npy\"\n"
    "Path(x,y) = Edge(x,y)\n"
    "Path(x,z) = Path(x,y) Edge(y,z)\n"
    "export Path\n";

static void check_closure_all_modes(float *e, int n)
{
    float *want = closure(e, n);
    fuse_input in = matrix_input("Edge", e, n);
    static const struct { fuse_mode m; fuse_strategy s; } cases[] = {
        {FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS},
        {FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE},
        {FUSE_MODE_DEMAND, FUSE_STRATEGY_SYNCHRONOUS},
        {FUSE_MODE_DEMAND, FUSE_STRATEGY_SEMI_NAIVE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fuse_config cfg = config(cases[k].m, cases[k].s);
        Run r;
        run_text(&r, TC, &cfg, &in, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        assert_floats_eq(output(&r, "Path", (int64_t)n * n), want, (int64_t)n * n);
        /* the semi-naive fixpoint really ran delta sweeps */
        json_t *root = trace_json(r.run);
        json_t *comp = recursive_comp(root);
        const char *want_strategy =
            cases[k].s == FUSE_STRATEGY_SEMI_NAIVE ? "semi_naive" : "synchronous";
        ck_assert_str_eq(json_string_value(json_object_get(comp, "strategy")), want_strategy);
        json_decref(root);
        run_free(&r);
    }
    /* single mode: one Jacobi sweep reading zeros for Path gives Edge itself */
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    run_text(&r, TC, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_OK);
    assert_floats_eq(output(&r, "Path", (int64_t)n * n), e, (int64_t)n * n);
    /* and a query of any runner computes the closure to a fixpoint */
    fuse_outputs *q = NULL;
    ck_assert_int_eq(fuse_runner_query(r.run, "Path", NULL, &in, 1, &q), FUSE_OK);
    assert_floats_eq(fuse_outputs_tensor(q, 0)->data, want, (int64_t)n * n);
    fuse_outputs_free(q);
    run_free(&r);
    free(want);
}

/* A graph of 300 nodes (a relation of 90,000 cells: its delta kernel runs on
 * the thread team) whose closure takes several sweeps; rule `left` extends
 * paths on the left (the delta's first axis is not the output's first: that
 * join runs on one thread), else on the right (rows shared out). Semi-naive
 * and synchronous fixpoints on 1 and 2 threads give Warshall's closure. */
static void check_big_closure(bool left)
{
    enum { N = 300 };
    float *e = calloc((size_t)N * N, sizeof *e);
    ck_assert_ptr_nonnull(e);
    unsigned seed = 5;
    for (int i = 0; i < N; i++) {
        e[i * N + (i + 1) % N] = (float)(i % 97 != 0); /* long chains */
        e[i * N + (int)(rand_r(&seed) % N)] = (float)(rand_r(&seed) % 4 == 0);
    }
    float *want = closure(e, N);
    const char *text = left ? "Edge(x,y) = \"edge.npy\"\nPath(x,y) = Edge(x,y)\n"
                              "Path(x,z) = Edge(x,y) Path(y,z)\nexport Path\n"
                            : TC;
    fuse_input in = matrix_input("Edge", e, N);
    for (int k = 0; k < 4; k++) {
        fuse_config cfg = config(FUSE_MODE_FIXPOINT, k % 2 ? FUSE_STRATEGY_SEMI_NAIVE
                                                           : FUSE_STRATEGY_SYNCHRONOUS);
        cfg.max_iters = 1000;
        cfg.threads = 1 + k / 2;
        Run r;
        run_text(&r, text, &cfg, &in, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        assert_floats_eq(output(&r, "Path", (int64_t)N * N), want, (int64_t)N * N);
        run_free(&r);
    }
    free(want);
    free(e);
}

START_TEST(test_big_closure_threads)
{
    check_big_closure(_i == 1);
}
END_TEST

/* A right-linear closure runs block by block (seminaive.c), each block of rows
 * to its own fixpoint on a team of 1 to 3 threads: against the shortest path
 * lengths of a BFS from each node, with D the longest, it must find exactly
 * the pairs at distance 1 .. max_iters, take min(max_iters, D + 1) sweeps,
 * converge only with D + 1 sweeps or more, and count at sweep i the pairs at
 * distance i + 1. 260 nodes (67,600 cells: a thread team from 2^16), 1,040-byte
 * rows: blocks of 126 rows, three. */
START_TEST(test_closure_blocks_match_bfs)
{
    enum { N = 260 };
    float *e = calloc((size_t)N * N, sizeof *e);
    int *dist = malloc((size_t)N * N * sizeof *dist), *queue = malloc(N * sizeof *queue);
    ck_assert(e && dist && queue);
    unsigned seed = 23;
    for (int i = 0; i < N; i++) { /* a long chain with shortcuts: D in the tens */
        e[i * N + (i + 1) % N] = (float)(i % 90 != 89);
        if (rand_r(&seed) % 8 == 0)
            e[i * N + (int)(rand_r(&seed) % N)] = 1.0f;
    }
    int longest = 0;
    for (int x = 0; x < N; x++) { /* dist[x][z]: edges on a shortest path, 0: none */
        int *d = dist + (size_t)x * N, head = 0, tail = 0;
        memset(d, 0, N * sizeof *d);
        for (int z = 0; z < N; z++)
            if (e[x * N + z] != 0)
                d[z] = 1, queue[tail++] = z;
        while (head < tail) {
            int y = queue[head++];
            for (int z = 0; z < N; z++)
                if (e[y * N + z] != 0 && d[z] == 0)
                    d[z] = d[y] + 1, queue[tail++] = z;
        }
        for (int z = 0; z < N; z++)
            longest = d[z] > longest ? d[z] : longest;
    }
    ck_assert_int_gt(longest, 10);
    fuse_input in = matrix_input("Edge", e, N);
    const int iters[] = {1, longest, longest + 1, 1000}, teams[] = {3, 1, 3, 1};
    float *want = malloc((size_t)N * N * sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (int k = 0; k < 4; k++) { /* cut short, and whole; on 3 and on 1 thread */
        fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE);
        cfg.max_iters = iters[k];
        cfg.threads = teams[k];
        Run r;
        run_text(&r, TC, &cfg, &in, 1);
        bool converges = iters[k] >= longest + 1;
        ck_assert_int_eq(r.st, converges ? FUSE_OK : FUSE_E_NOT_CONVERGED);
        for (int i = 0; i < N * N; i++)
            want[i] = dist[i] >= 1 && dist[i] <= iters[k] ? 1.0f : 0.0f;
        assert_floats_eq(output(&r, "Path", (int64_t)N * N), want, (int64_t)N * N);
        json_t *root = trace_json(r.run);
        json_t *c = recursive_comp(root);
        ck_assert_str_eq(json_string_value(json_object_get(c, "strategy")), "semi_naive");
        ck_assert(json_is_boolean(json_object_get(c, "converged")) &&
                  json_is_true(json_object_get(c, "converged")) == converges);
        int sweeps = iters[k] < longest + 1 ? iters[k] : longest + 1;
        ck_assert_int_eq(json_integer_value(json_object_get(c, "sweeps")), sweeps);
        json_t *es[1024];
        int n = entries_of(root, "Path", es, 1024);
        ck_assert_int_eq(n, sweeps);
        for (int i = 0; i < n; i++) {
            int64_t at = 0;
            for (int j = 0; j < N * N; j++)
                at += dist[j] == i + 1;
            ck_assert_int_eq(json_integer_value(json_object_get(es[i], "changed")), at);
        }
        json_decref(root);
        run_free(&r);
    }
    free(want), free(queue), free(dist), free(e);
}
END_TEST

/* Whether some recursive join of run r's program reads its other operand
 * through an index of non-zeros (white box: lower.h). */
static bool has_sparse_join(const Run *r)
{
    const IrProgram *p = api_runner_plan(r->run)->ir;
    for (int g = 0; g < p->n_groups; g++)
        for (int i = 0; p->groups[g]->is_recursive && i < p->groups[g]->n_ops; i++)
            if (lower_delta_sparse_operand(p, g, p->groups[g]->ops[i], NULL) >= 0)
                return true;
    return false;
}

/* Semi-naive joins whose other operand is read by its non-zeros: a closure per
 * label of a sparse three-axis relation, extended on the right and on the left
 * (two axes of it bound by each fact: row l * N + y of its index), a
 * closure extended both ways (Edge read along two slots: no index), and a
 * closure of a dense graph (too dense for an
 * index: the join loops over the whole axis). Rows of 70 cells: the deltas are
 * scanned in blocks of 16 with a short last one. Both against Warshall's
 * closure, on 1 and 2 threads. */
START_TEST(test_sparse_delta_joins)
{
    enum { N = 70, L = 3 };
    float *e = calloc((size_t)L * N * N, sizeof *e), *want = calloc((size_t)L * N * N, sizeof *e);
    ck_assert(e && want);
    unsigned seed = 11;
    for (int l = 0; l < L; l++)
        for (int i = 0; i < N; i++) /* about 1.5 edges a node, fewer on label 2 */
            for (int j = 0; j < N; j++)
                e[((size_t)l * N + i) * N + j] = (float)(rand_r(&seed) % (N * (l + 2) / 3) == 0);
    for (int l = 0; l < L; l++) {
        float *c = closure(e + (size_t)l * N * N, N);
        for (int x = 0; x < N; x++)
            for (int z = 0; z < N; z++)
                want[((size_t)x * L + l) * N + z] = c[x * N + z];
        free(c);
    }
    fuse_input in = {.name = "E"};
    in.tensor.dtype = FUSE_F32;
    in.tensor.rank = 3;
    in.tensor.shape[0] = L;
    in.tensor.shape[1] = in.tensor.shape[2] = N;
    in.tensor.data = e;
    /* right-linear (free slot last), then left-linear (free slot in the middle:
     * rows of the index are (l, y), positions x) */
    const char *texts[2] = {"E(l,y,z) = \"e.npy\"\nR(x,l,y) = E(l,x,y)\n"
                            "R(x,l,z) = R(x,l,y) E(l,y,z)\nexport R\n",
                            "E(l,y,z) = \"e.npy\"\nR(x,l,y) = E(l,x,y)\n"
                            "R(x,l,z) = E(l,x,y) R(y,l,z)\nexport R\n"};
    for (int k = 0; k < 4; k++) {
        fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE);
        cfg.max_iters = 1000;
        cfg.threads = 1 + k % 2;
        Run r;
        run_text(&r, texts[k / 2], &cfg, &in, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        ck_assert(has_sparse_join(&r));
        assert_floats_eq(output(&r, "R", (int64_t)L * N * N), want, (int64_t)L * N * N);
        run_free(&r);
    }
    /* Edge read along both slots in one component: no index, the same closure */
    float *c0 = closure(e, N);
    fuse_input e0 = matrix_input("Edge", e, N);
    Run both;
    fuse_config cfg2 = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE);
    cfg2.max_iters = 1000;
    run_text(&both, "Edge(x,y) = \"edge.npy\"\nPath(x,y) = Edge(x,y)\n"
                    "Path(x,z) = Path(x,y) Edge(y,z)\nPath(x,z) = Edge(x,y) Path(y,z)\n"
                    "export Path\n", &cfg2, &e0, 1);
    ck_assert_msg(both.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
    assert_floats_eq(output(&both, "Path", (int64_t)N * N), c0, (int64_t)N * N);
    run_free(&both);
    free(c0);
    for (int i = 0; i < N * N; i++) /* a third of the cells: no index */
        e[i] = (float)(rand_r(&seed) % 3 == 0);
    float *dense = closure(e, N);
    fuse_input m = matrix_input("Edge", e, N);
    for (int threads = 1; threads <= 2; threads++) {
        fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE);
        cfg.threads = threads;
        Run r;
        run_text(&r, TC, &cfg, &m, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        ck_assert(has_sparse_join(&r));
        assert_floats_eq(output(&r, "Path", (int64_t)N * N), dense, (int64_t)N * N);
        run_free(&r);
    }
    free(dense);
    free(want);
    free(e);
}
END_TEST

/* A float16 weight read by a recursive boolean rule is kept as float16 (half
 * the bytes); the semi-naive strategy's check that it is non-negative reads it
 * as such (it read float32 cells past the buffer's end), and the closure is
 * Warshall's. */
START_TEST(test_semi_naive_half_operand)
{
    enum { N = 40 };
    float *e = calloc((size_t)N * N, sizeof *e);
    uint16_t *h = calloc((size_t)N * N, sizeof *h);
    ck_assert(e && h);
    unsigned seed = 3;
    for (int i = 0; i < N * N; i++) {
        e[i] = (float)(rand_r(&seed) % 30 == 0);
        h[i] = e[i] != 0.0f ? 0x3c00 : 0; /* 1.0 and 0.0 in IEEE half */
    }
    float *want = closure(e, N);
    fuse_input in = {.name = "W"};
    in.tensor.dtype = FUSE_F16;
    in.tensor.rank = 2;
    in.tensor.shape[0] = in.tensor.shape[1] = N;
    in.tensor.data = h;
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE);
    cfg.max_iters = 1000;
    Run r;
    run_text(&r, "W[x,y] = \"w.npy\"\nPath(x,y) = W[x,y]\nPath(x,z) = Path(x,y) W[y,z]\n"
                 "export Path\n", &cfg, &in, 1);
    ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
    ck_assert_int_eq(api_runner_plan(r.run)->ir->tensors[0]->elem, 1 + FUSE_PRECISION_FP16);
    assert_floats_eq(output(&r, "Path", (int64_t)N * N), want, (int64_t)N * N);
    json_t *root = trace_json(r.run);
    ck_assert_str_eq(json_string_value(json_object_get(recursive_comp(root), "strategy")),
                     "semi_naive");
    json_decref(root);
    run_free(&r);
    free(want);
    free(h);
    free(e);
}
END_TEST

/* The delta kernels go through the code cache: a second runner of the same
 * semi-naive program finds them (and the program's kernels) in memory. */
START_TEST(test_delta_kernels_cached)
{
    float *e = graph(7, cycle_next), *want = closure(e, 7);
    fuse_input in = matrix_input("Edge", e, 7);
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SEMI_NAIVE);
    cfg.no_cache = 1; /* memory only: no entry of an earlier test */
    for (int k = 0; k < 2; k++) {
        Run r;
        run_text(&r, TC, &cfg, &in, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        assert_floats_eq(output(&r, "Path", 49), want, 49);
        run_free(&r);
        fuse_stats st = {.size = sizeof st};
        ck_assert_int_eq(fuse_ctx_stats(ctx, &st), FUSE_OK);
        ck_assert_uint_eq(st.compiles, 2); /* the program, its deltas */
        ck_assert_uint_eq(st.memory_hits, k ? 2 : 0);
    }
    free(want);
    free(e);
}
END_TEST

START_TEST(test_closure_chain)
{
    float *e = graph(6, chain_next);
    check_closure_all_modes(e, 6);
    free(e);
}
END_TEST

START_TEST(test_closure_cycle)
{
    float *e = graph(5, cycle_next);
    check_closure_all_modes(e, 5);
    free(e);
}
END_TEST

/* Sweeps of the chain's fixpoint: one per path length, plus one that changes
 * nothing; the trace says evaluated, then unchanged in the last sweep. */
START_TEST(test_fixpoint_trace_sweeps)
{
    int n = 5;
    float *e = graph(n, chain_next);
    fuse_input in = matrix_input("Edge", e, n);
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    run_text(&r, TC, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_OK);
    json_t *root = trace_json(r.run);
    ck_assert_str_eq(json_string_value(json_object_get(root, "mode")), "fixpoint");
    ck_assert(json_is_true(json_object_get(root, "converged")));
    json_t *es[64];
    int k = entries_of(root, "Path", es, 64);
    ck_assert_int_eq(k, n); /* lengths 1..n-1, then no change */
    for (int i = 0; i < k; i++) {
        ck_assert_int_eq(json_integer_value(json_object_get(es[i], "sweep")), i);
        ck_assert_str_eq(json_string_value(json_object_get(es[i], "status")),
                         i + 1 < k ? "evaluated" : "unchanged");
        ck_assert_int_eq(json_integer_value(json_object_get(es[i], "cells")), n * n);
        ck_assert(json_is_number(json_object_get(es[i], "duration_ms")));
        ck_assert(json_is_null(json_object_get(es[i], "temperature")));
        ck_assert_str_eq(json_string_value(json_object_get(es[i], "kernel")), "join");
        /* sweep i adds the paths of length i + 1: n - 1 - i of them */
        ck_assert_int_eq(json_integer_value(json_object_get(es[i], "changed")),
                         i + 1 < k ? n - 1 - i : 0);
    }
    json_t *comps = json_object_get(root, "components");
    bool seen = false;
    size_t i;
    json_t *c;
    json_array_foreach(comps, i, c)
        if (json_is_true(json_object_get(c, "recursive"))) {
            seen = true;
            ck_assert(json_is_true(json_object_get(c, "iterated")));
            ck_assert(json_is_true(json_object_get(c, "converged")));
            ck_assert_int_eq(json_integer_value(json_object_get(c, "sweeps")), n);
        }
    ck_assert(seen);
    json_decref(root);
    char *text = NULL;
    ck_assert_int_eq(fuse_runner_trace(r.run, 0, &text), FUSE_OK);
    ck_assert_ptr_nonnull(strstr(text, "converged after 5 sweeps"));
    ck_assert_ptr_nonnull(strstr(text, "[sweep 04] Path unchanged"));
    fuse_free(text);
    run_free(&r);
    free(e);
}
END_TEST

/* A(x,y): odd-length paths; B: even-length paths (>= 2). */
START_TEST(test_mutual_recursion)
{
    const char *text = "Edge(x,y) = \"edge.npy\"\n"
                       "A(x,y) = Edge(x,y)\n"
                       "A(x,z) = B(x,y) Edge(y,z)\n"
                       "B(x,z) = A(x,y) Edge(y,z)\n"
                       "export A\nexport B\n";
    int n = 7;
    float *e = graph(n, chain_next);
    e[6 * n + 3] = 1.0f; /* a back edge 6 -> 3 makes a cycle of length 4 */
    /* Independently: reach[len][i][j] by powers of E up to length 4n. */
    float *wa = calloc((size_t)n * n, sizeof *wa), *wb = calloc((size_t)n * n, sizeof *wb);
    float *cur = malloc((size_t)n * n * sizeof *cur), *nxt = malloc((size_t)n * n * sizeof *nxt);
    memcpy(cur, e, (size_t)n * n * sizeof *cur);
    for (int len = 1; len <= 4 * n; len++) {
        for (int i = 0; i < n * n; i++)
            if (cur[i] != 0)
                (len % 2 ? wa : wb)[i] = 1.0f;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                float v = 0;
                for (int k = 0; k < n; k++)
                    v = v != 0 || (cur[i * n + k] != 0 && e[k * n + j] != 0) ? 1.0f : 0.0f;
                nxt[i * n + j] = v;
            }
        memcpy(cur, nxt, (size_t)n * n * sizeof *cur);
    }
    fuse_input in = matrix_input("Edge", e, n);
    for (int s = 0; s < 2; s++) {
        fuse_config cfg = config(FUSE_MODE_FIXPOINT, (fuse_strategy)s);
        Run r;
        run_text(&r, text, &cfg, &in, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        assert_floats_eq(output(&r, "A", n * n), wa, n * n);
        assert_floats_eq(output(&r, "B", n * n), wb, n * n);
        json_t *root = trace_json(r.run);
        ck_assert_str_eq(json_string_value(json_object_get(recursive_comp(root), "strategy")),
                         s ? "semi_naive" : "synchronous");
        json_decref(root);
        run_free(&r);
    }
    free(wa), free(wb), free(cur), free(nxt), free(e);
}
END_TEST

/* X = 0.5 X + 1 converges to 2; the sweeps stop by |new-old| <= tol + 1e-5|new|. */
START_TEST(test_float_fixpoint_tolerance)
{
    const char *text = "Half[i] = const([0.5, 0.5])\n"
                       "One[i] = const([1.0, 1.0])\n"
                       "X[i] = X[i] Half[i]\n"
                       "X[i] += One[i]\n"
                       "export X\n";
    static const double tols[] = {0.0, 1e-2};
    for (int k = 0; k < 2; k++) {
        /* independent iteration in float, as the kernels compute */
        float x = 0;
        int sweeps = 0;
        for (;;) {
            float nx = x * 0.5f + 1.0f;
            sweeps++;
            bool same = fabs((double)nx - x) <= tols[k] + 1e-5 * fabs((double)nx);
            x = nx;
            if (same || sweeps == 32)
                break;
        }
        fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS);
        cfg.tol = tols[k];
        Run r;
        run_text(&r, text, &cfg, NULL, 0);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        const float *v = output(&r, "X", 2);
        ck_assert_float_eq(v[0], x);
        json_t *root = trace_json(r.run);
        json_t *es[64];
        ck_assert_int_eq(entries_of(root, "X", es, 64), sweeps);
        json_decref(root);
        run_free(&r);
    }
}
END_TEST

/* Counting paths on a 3-cycle grows forever: FUSE_E_NOT_CONVERGED, outputs kept. */
static const char *const COUNT =
    "Edge[x,y] = \"edge.npy\"\n"
    "C[x,y] = Edge[x,y]\n"
    "C[x,z] += C[x,y] Edge[y,z]\n"
    "export C\n";

START_TEST(test_not_converged)
{
    int n = 3;
    float *e = graph(n, cycle_next);
    fuse_input in = matrix_input("Edge", e, n);
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS);
    cfg.max_iters = 5;
    Run r;
    run_text(&r, COUNT, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_E_NOT_CONVERGED);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "did not converge"));
    /* independently: C_k = E + C_{k-1} E, C_0 = 0, five sweeps */
    float c[9] = {0}, nc[9];
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                float v = e[i * n + j];
                for (int k = 0; k < n; k++)
                    v += c[i * n + k] * e[k * n + j];
                nc[i * n + j] = v;
            }
        memcpy(c, nc, sizeof c);
    }
    assert_floats_eq(output(&r, "C", 9), c, 9);
    json_t *root = trace_json(r.run);
    ck_assert(json_is_false(json_object_get(root, "converged")));
    json_decref(root);
    run_free(&r);
    /* semi-naive does not apply to a float component: the same synchronous result */
    cfg.strategy = FUSE_STRATEGY_SEMI_NAIVE;
    run_text(&r, COUNT, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_E_NOT_CONVERGED);
    assert_floats_eq(output(&r, "C", 9), c, 9);
    run_free(&r);
    free(e);
}
END_TEST

/* Y = 2Y + X doubles until float32 overflows; once infinite its values stop
 * changing, which is divergence, not convergence: FUSE_E_NOT_CONVERGED with
 * "diverged", and the trace says so. Y after sweep s (0-based) is (2^(s+1) - 1) X:
 * for X = 2, sweep 126 gives 2^128 - 2, inf in float32, while X = 1 gives 2^127
 * (rounded), still finite; the run stops at that sweep, the 127th. A contracting
 * Y = 0.5Y + X still converges. */
START_TEST(test_diverged_is_not_converged)
{
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS);
    cfg.max_iters = 200;
    Run r;
    run_text(&r, "X[i] = const([1, 2])\nY[i] = 2.0 Y[i] + X[i]\nexport Y\n", &cfg, NULL, 0);
    ck_assert_int_eq(r.st, FUSE_E_NOT_CONVERGED);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "diverged"));
    const float *y = output(&r, "Y", 2);
    ck_assert(isinf(y[1]) && y[1] > 0);
    ck_assert_float_eq(y[0], 0x1p127f);
    json_t *root = trace_json(r.run);
    ck_assert(json_is_false(json_object_get(root, "converged")));
    json_t *comp = recursive_comp(root);
    ck_assert(json_is_true(json_object_get(comp, "diverged")));
    ck_assert_int_eq(json_integer_value(json_object_get(comp, "sweeps")), 127);
    json_decref(root);
    run_free(&r);
    run_text(&r, "X[i] = const([1, 2])\nY[i] = 0.5 Y[i] + X[i]\nexport Y\n", &cfg, NULL, 0);
    ck_assert_int_eq(r.st, FUSE_OK);
    const float *c = output(&r, "Y", 2);
    ck_assert(fabsf(c[0] - 2.0f) < 1e-3f && fabsf(c[1] - 4.0f) < 1e-3f);
    run_free(&r);
}
END_TEST

/* ---- demand ---- */

static const char *const FAMILY =
    "Edge(x,y) = \"edge.npy\"\n"
    "Path(x,y) = Edge(x,y)\n"
    "Path(x,z) = Path(x,y) Edge(y,z)\n"
    "Deg[x] = Edge(x,y)\n"
    "Other[x] = Deg[x] Deg[x]\n"
    "export Path\n";

START_TEST(test_demand_skips_unrelated)
{
    int n = 5;
    float *e = graph(n, chain_next);
    fuse_input in = matrix_input("Edge", e, n);
    fuse_config cfg = config(FUSE_MODE_DEMAND, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    run_text(&r, FAMILY, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_OK);
    json_t *root = trace_json(r.run);
    json_t *es[64];
    ck_assert_int_eq(entries_of(root, "Deg", es, 64), 1);
    ck_assert_str_eq(json_string_value(json_object_get(es[0], "status")), "skipped");
    ck_assert_int_eq(entries_of(root, "Other", es, 64), 1);
    ck_assert_str_eq(json_string_value(json_object_get(es[0], "status")), "skipped");
    ck_assert_int_eq(entries_of(root, "Path", es, 64), n);
    json_decref(root);
    /* a query for Other runs Deg and Other, never Path */
    fuse_outputs *q = NULL;
    ck_assert_int_eq(fuse_runner_query(r.run, "Other", "x=2", &in, 1, &q), FUSE_OK);
    const fuse_tensor *t = fuse_outputs_tensor(q, 0);
    ck_assert_int_eq(t->rank, 0);
    ck_assert_float_eq(((float *)t->data)[0], 1.0f); /* node 2 has one edge */
    fuse_outputs_free(q);
    root = trace_json(r.run);
    ck_assert_str_eq(json_string_value(json_object_get(root, "mode")), "query");
    ck_assert_int_eq(entries_of(root, "Path", es, 64), 1);
    ck_assert_str_eq(json_string_value(json_object_get(es[0], "status")), "skipped");
    ck_assert_int_eq(entries_of(root, "Deg", es, 64), 1);
    ck_assert_str_eq(json_string_value(json_object_get(es[0], "status")), "evaluated");
    json_decref(root);
    run_free(&r);
    free(e);
}
END_TEST

START_TEST(test_query_selectors)
{
    int n = 5;
    float *e = graph(n, chain_next);
    float *want = closure(e, n);
    fuse_input in = matrix_input("Edge", e, n);
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    run_text(&r, FAMILY, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_OK);
    fuse_outputs *q = NULL;
    ck_assert_int_eq(fuse_runner_query(r.run, "Path", "x=1", &in, 1, &q), FUSE_OK);
    const fuse_tensor *t = fuse_outputs_tensor(q, 0);
    ck_assert_str_eq(fuse_outputs_name(q, 0), "Path");
    ck_assert_int_eq(t->rank, 1);
    ck_assert_int_eq(t->shape[0], n);
    assert_floats_eq(t->data, want + 1 * n, n);
    fuse_outputs_free(q);
    /* both axes (y from the end) drop to a scalar */
    ck_assert_int_eq(fuse_runner_query(r.run, "Path", " y = -1 , x=0", &in, 1, &q), FUSE_OK);
    t = fuse_outputs_tensor(q, 0);
    ck_assert_int_eq(t->rank, 0);
    ck_assert_float_eq(((float *)t->data)[0], want[0 * n + n - 1]);
    fuse_outputs_free(q);
    /* by the other axis: column 3 */
    ck_assert_int_eq(fuse_runner_query(r.run, "Path", "y=3", &in, 1, &q), FUSE_OK);
    t = fuse_outputs_tensor(q, 0);
    for (int i = 0; i < n; i++)
        ck_assert_float_eq(((float *)t->data)[i], want[i * n + 3]);
    fuse_outputs_free(q);
    static const char *const bad[] = {"z=1", "x=5", "x=-6", "x=1,x=2", "x", "x=a", "x=1;"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q = (fuse_outputs *)1;
        ck_assert_int_eq(fuse_runner_query(r.run, "Path", bad[i], &in, 1, &q), FUSE_E_ARG);
        ck_assert_ptr_null(q);
    }
    ck_assert_int_eq(fuse_runner_query(r.run, "Nope", NULL, &in, 1, &q), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_query(r.run, NULL, NULL, NULL, 0, &q), FUSE_E_ARG);
    run_free(&r);
    free(want);
    free(e);
}
END_TEST

/* ---- fusion across equations ---- */

#define FUSED_TEXT "X[i,k] = \"x.npy\"\nW[k,j] = \"w.npy\"\nB[j] = \"b.npy\"\n" \
                   "Z[i,j] = X[i,k] W[k,j] + B[j]\nH[i,j] = relu(Z[i,j])\n" \
                   "Y[i,j] = 0.5 H[i,j] + Z[i,j]\nexport H\nexport Y\n"

static fuse_input input_2d(const char *name, float *data, int64_t rows, int64_t cols)
{
    fuse_input in = {.name = name};
    in.tensor.dtype = FUSE_F32;
    in.tensor.rank = cols ? 2 : 1;
    in.tensor.shape[0] = rows;
    in.tensor.shape[1] = cols;
    in.tensor.data = data;
    return in;
}

/* Z, H and Y of FUSED_TEXT by naive loops (z and h: m x n each). */
static void fused_reference(const float *x, const float *w, const float *b, int m, int k, int n,
                            float *h, float *y)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double z = 0;
            for (int t = 0; t < k; t++)
                z += (double)x[i * k + t] * w[t * n + j];
            z += b[j];
            h[i * n + j] = (float)(z > 0 ? z : 0);
            y[i * n + j] = (float)(0.5 * h[i * n + j] + z);
        }
}

static void assert_close(const float *got, const float *want, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])),
                      "cell %lld: got %g, want %g", (long long)i, (double)got[i],
                      (double)want[i]);
}

/* H and Y run inside Z's contraction kernel (the trace says so), with the
 * values of the equations run one by one, on 1 and 2 threads; a query of Z or Y
 * alone is right too. */
START_TEST(test_fused_equations)
{
    enum { M = 37, K = 40, N = 53 };
    float *x = malloc(M * K * sizeof *x), *w = malloc(K * N * sizeof *w), b[N];
    float *h = malloc(M * N * sizeof *h), *y = malloc(M * N * sizeof *y);
    ck_assert(x && w && h && y);
    for (int i = 0; i < M * K; i++)
        x[i] = (float)((i * 37 % 101) - 50) / 25.0f;
    for (int i = 0; i < K * N; i++)
        w[i] = (float)((i * 53 % 89) - 44) / 30.0f;
    for (int j = 0; j < N; j++)
        b[j] = (float)(j % 7) - 3.0f;
    fused_reference(x, w, b, M, K, N, h, y);
    fuse_input in[3] = {input_2d("X", x, M, K), input_2d("W", w, K, N), input_2d("B", b, N, 0)};
    for (int threads = 1; threads <= 2; threads++) {
        fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
        cfg.threads = threads;
        Run r;
        run_text(&r, FUSED_TEXT, &cfg, in, 3);
        ck_assert_int_eq(r.st, FUSE_OK);
        assert_close(output(&r, "H", M * N), h, M * N);
        assert_close(output(&r, "Y", M * N), y, M * N);
        json_t *root = trace_json(r.run), *es[4];
        ck_assert_int_eq(entries_of(root, "Z", es, 4), 1);
        ck_assert(json_is_false(json_object_get(es[0], "fused")));
        ck_assert_int_eq(entries_of(root, "H", es, 4), 1);
        ck_assert(json_is_true(json_object_get(es[0], "fused")));
        ck_assert_str_eq(json_string_value(json_object_get(es[0], "status")), "evaluated");
        ck_assert_int_eq(entries_of(root, "Y", es, 4), 1);
        ck_assert(json_is_true(json_object_get(es[0], "fused")));
        json_decref(root);
        fuse_outputs *q = NULL;
        ck_assert_int_eq(fuse_runner_query(r.run, "Y", "i=5", in, 3, &q), FUSE_OK);
        assert_close(fuse_outputs_tensor(q, 0)->data, y + 5 * N, N);
        fuse_outputs_free(q);
        ck_assert_int_eq(fuse_runner_query(r.run, "Z", "i=2", in, 3, &q), FUSE_OK);
        const float *z = fuse_outputs_tensor(q, 0)->data;
        for (int j = 0; j < N; j++) /* y = 0.5 relu(z) + z, so z = y - 0.5 h */
            ck_assert_msg(fabsf(z[j] - (y[2 * N + j] - 0.5f * h[2 * N + j])) < 1e-3f,
                          "Z[2,%d] = %g", j, (double)z[j]);
        fuse_outputs_free(q);
        /* the query needed Z alone, but Z's kernel computed H and Y too: the
         * trace says they were evaluated (fused), not skipped */
        root = trace_json(r.run);
        ck_assert_int_eq(entries_of(root, "H", es, 4), 1);
        ck_assert_str_eq(json_string_value(json_object_get(es[0], "status")), "evaluated");
        ck_assert(json_is_true(json_object_get(es[0], "fused")));
        json_decref(root);
        run_free(&r);
    }
    free(x);
    free(w);
    free(h);
    free(y);
}
END_TEST

/* ---- configuration ---- */

START_TEST(test_config_checks)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i] = const([1.0])\nexport A\n", NULL, &prog),
                     FUSE_OK);
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS);
    cfg.max_iters = -1;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_E_ARG);
    cfg.max_iters = 0;
    cfg.tol = -1;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_E_ARG);
    cfg.tol = 0;
    cfg.mode = (fuse_mode)7;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_E_ARG);
    cfg.mode = FUSE_MODE_FIXPOINT;
    fuse_temperature t = {.name = "A", .spec = "linear:1:0"};
    cfg.temperatures = &t;
    cfg.n_temperatures = 1;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "linear"));
    t.spec = NULL;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_E_ARG);
    ck_assert_ptr_null(run);
    fuse_program_free(prog);
}
END_TEST

/* ---- temperature schedules ---- */

START_TEST(test_schedule_values)
{
    RtSchedule s = {0};
    char *err = NULL;
    ck_assert_int_eq(rt_sched_parse("0.5", &s, &err), FUSE_OK);
    for (int it = 0; it < 5; it++)
        ck_assert_double_eq(rt_sched_value(&s, "X", it), 0.5);
    rt_sched_clear(&s);
    ck_assert_int_eq(rt_sched_parse("linear:1:0:4", &s, &err), FUSE_OK);
    static const double lin[] = {1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0};
    for (int it = -1; it < 6; it++)
        ck_assert_double_eq_tol(rt_sched_value(&s, "X", it), lin[it + 1], 1e-12);
    ck_assert(!rt_sched_settled(&s, "X", 3));
    ck_assert(rt_sched_settled(&s, "X", 4));
    rt_sched_clear(&s);
    ck_assert_int_eq(rt_sched_parse("piecewise:3=0.1,1=2,5=0", &s, &err), FUSE_OK);
    static const double pw[] = {2, 2, 2, 0.1, 0.1, 0, 0};
    for (int it = 0; it < 7; it++)
        ck_assert_double_eq_tol(rt_sched_value(&s, "X", it), pw[it], 1e-12);
    ck_assert(!rt_sched_settled(&s, "X", 4));
    ck_assert(rt_sched_settled(&s, "X", 5));
    rt_sched_clear(&s);
    static const char *const bad[] = {"", "x", "linear:1:0", "linear:1:0:0", "piecewise:",
                                      "piecewise:1=", "piecewise:1=2,", "0.5x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(rt_sched_parse(bad[i], &s, &err), FUSE_E_ARG);
        ck_assert_ptr_nonnull(err);
        free(err);
        err = NULL;
        rt_sched_clear(&s);
    }
}
END_TEST

static double step_temperature(const char *tensor, int it, void *user)
{
    ck_assert_str_eq(tensor, "Y");
    ++*(int *)user;
    return it < 2 ? 2.0 : 0.25;
}

static double sigmoid(double x, double t) { return 1.0 / (1.0 + exp(-x / t)); }

/* Y = sig(X) has no recursion, but a fixpoint keeps iterating while its schedule
 * still changes: piecewise 0=1,3=0.5 gives T = 1, 1, 1, 0.5, 0.5 (then settled). */
START_TEST(test_annealed_fixpoint)
{
    const char *text = "X[i] = const([1.0, -2.0, 0.5])\n"
                       "Y[i] = sig(X[i])\n"
                       "Z[i] = sig(X[i], T=2.0)\n"
                       "export Y\nexport Z\n";
    static const double xs[] = {1.0, -2.0, 0.5};
    fuse_temperature temps[2] = {{.name = "Y", .spec = "piecewise:0=1,3=0.5"},
                                 {.name = "*", .spec = "4"}};
    fuse_config cfg = config(FUSE_MODE_FIXPOINT, FUSE_STRATEGY_SYNCHRONOUS);
    cfg.temperatures = temps;
    cfg.n_temperatures = 2;
    Run r;
    run_text(&r, text, &cfg, NULL, 0);
    ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const float *y = output(&r, "Y", 3), *z = output(&r, "Z", 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq_tol(y[i], sigmoid(xs[i], 0.5), 1e-6);
        ck_assert_double_eq_tol(z[i], sigmoid(xs[i], 2.0), 1e-6); /* explicit T wins */
    }
    json_t *root = trace_json(r.run);
    json_t *es[64];
    static const double want_t[] = {1, 1, 1, 0.5, 0.5};
    ck_assert_int_eq(entries_of(root, "Y", es, 64), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq(json_real_value(json_object_get(es[i], "temperature")), want_t[i]);
    ck_assert_str_eq(json_string_value(json_object_get(es[1], "status")), "unchanged");
    ck_assert_str_eq(json_string_value(json_object_get(es[3], "status")), "evaluated");
    /* Z matches only the wildcard: a constant schedule, one sweep, T = 4 shown */
    ck_assert_int_eq(entries_of(root, "Z", es, 64), 1);
    ck_assert_double_eq(json_real_value(json_object_get(es[0], "temperature")), 4.0);
    json_decref(root);
    run_free(&r);
    /* a host callback; single mode evaluates it at iteration 0 only */
    int calls = 0;
    fuse_temperature cb = {.name = "Y", .fn = step_temperature, .user = &calls};
    cfg.temperatures = &cb;
    cfg.n_temperatures = 1;
    run_text(&r, text, &cfg, NULL, 0);
    ck_assert_int_eq(r.st, FUSE_OK);
    y = output(&r, "Y", 3);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(y[i], sigmoid(xs[i], 0.25), 1e-6);
    ck_assert_int_gt(calls, 3);
    root = trace_json(r.run);
    ck_assert_int_eq(entries_of(root, "Y", es, 64), 4); /* T = 2, 2, 0.25, 0.25 */
    json_decref(root);
    run_free(&r);
    cfg.mode = FUSE_MODE_SINGLE;
    run_text(&r, text, &cfg, NULL, 0);
    y = output(&r, "Y", 3);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(y[i], sigmoid(xs[i], 2.0), 1e-6);
    run_free(&r);
    /* no schedule: sig without T is the hard threshold */
    run_text(&r, text, NULL, NULL, 0);
    y = output(&r, "Y", 3);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(y[i], xs[i] > 0 ? 1.0f : 0.0f);
    run_free(&r);
}
END_TEST

/* ---- Monte Carlo projection ---- */

static const char *const MC =
    "A[i,j] = const([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])\n"
    "S[i] = A[i,j]\nM[i] max= A[i,j]\nV[i] avg= A[i,j]\n"
    "export S\nexport M\nexport V\n";

START_TEST(test_mc_exact)
{
    /* samples >= the 4 projected cells: exact */
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    cfg.projection = FUSE_PROJECTION_MONTE_CARLO;
    cfg.samples = 4;
    cfg.seed = 99;
    Run r;
    run_text(&r, MC, &cfg, NULL, 0);
    ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const float s[2] = {10, 26}, m[2] = {4, 8}, v[2] = {2.5f, 6.5f};
    assert_floats_eq(output(&r, "S", 2), s, 2);
    assert_floats_eq(output(&r, "M", 2), m, 2);
    assert_floats_eq(output(&r, "V", 2), v, 2);
    run_free(&r);
    /* with fewer samples, each estimate is the mean (x P for sum) of values of
     * its row, shared draws: S = 4 V, M <= the row max */
    cfg.samples = 3;
    run_text(&r, MC, &cfg, NULL, 0);
    ck_assert_int_eq(r.st, FUSE_OK);
    const float *gs = output(&r, "S", 2), *gv = output(&r, "V", 2), *gm = output(&r, "M", 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_float_eq_tol(gs[i], 4 * gv[i], 1e-4);
        ck_assert(gm[i] <= m[i] && gm[i] >= 1 + 4 * i);
        ck_assert(gv[i] >= 1 + 4 * i && gv[i] <= 4 + 4 * i);
    }
    /* one draw per equation, shared by its rows: row 1 = row 0 + 4 */
    ck_assert_float_eq_tol(gv[1], gv[0] + 4, 1e-5);
    json_t *root = trace_json(r.run);
    json_t *es[4];
    ck_assert_int_eq(entries_of(root, "S", es, 4), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(es[0], "samples")), 3);
    json_decref(root);
    run_free(&r);
}
END_TEST

/* The sum of a million uniform values from 10^4 samples: within 5 standard
 * errors, reproducible per seed, different across seeds. */
START_TEST(test_mc_large_sum)
{
    int64_t n = 1000000;
    float *x = malloc((size_t)n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    uint64_t st = 12345;
    double total = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((st >> 40) / (double)(1 << 24));
        total += x[i];
        sq += (double)x[i] * x[i];
    }
    double sd = sqrt(sq / n - (total / n) * (total / n));
    fuse_input in = {.name = "X", .tensor = {.dtype = FUSE_F32, .rank = 1, .shape = {n}, .data = x}};
    const char *text = "X[j] = \"x.npy\"\nTotal = X[j]\nexport Total\n";
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    cfg.projection = FUSE_PROJECTION_MONTE_CARLO;
    cfg.samples = 10000;
    float got[3];
    for (int k = 0; k < 3; k++) {
        cfg.seed = k < 2 ? 7 : 8;
        Run r;
        run_text(&r, text, &cfg, &in, 1);
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        got[k] = output(&r, "Total", 1)[0];
        run_free(&r);
        double stderr_sum = (double)n * sd / sqrt((double)cfg.samples);
        ck_assert_msg(fabs(got[k] - total) <= 5 * stderr_sum, "estimate %g, sum %g", got[k], total);
    }
    ck_assert_float_eq(got[0], got[1]);
    ck_assert_float_ne(got[0], got[2]);
    free(x);
}
END_TEST

/* ---- CLI ---- */

static char scratch[256];

static void scratch_setup(void)
{
    ctx_setup();
    snprintf(scratch, sizeof scratch, "/tmp/fuse_test_modes.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void scratch_teardown(void)
{
    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    ctx_teardown();
}

/* Runs the CLI with args (a shell fragment); returns the exit status and the
 * first `cap` bytes of stdout. */
static int cli(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", FUSE_JIT_BIN, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void write_program(const char *name, const char *text, float *edge, int n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    fuse_tensor t = {.dtype = FUSE_F32, .rank = 2, .shape = {n, n}, .data = edge};
    snprintf(path, sizeof path, "%s/edge.npy", scratch);
    ck_assert_int_eq(fuse_tensor_save(ctx, &t, path), FUSE_OK);
}

START_TEST(test_cli_modes)
{
    int n = 3;
    float *e = graph(n, cycle_next);
    write_program("count.fuse", COUNT, e, n);
    char args[1024], out[8192];
    snprintf(args, sizeof args, "run %s/count.fuse --mode fixpoint --max-iters 4 --explain",
             scratch);
    ck_assert_int_eq(cli(args, out, sizeof out), 4);
    ck_assert_ptr_nonnull(strstr(out, "# C shape=(3, 3)"));
    ck_assert_ptr_nonnull(strstr(out, "did not converge in 4 sweeps"));
    snprintf(args, sizeof args, "run %s/count.fuse --mode fixpoint --max-iters 3 --out %s/c.npy",
             scratch, scratch);
    ck_assert_int_eq(cli(args, out, sizeof out), 4);
    char path[512];
    snprintf(path, sizeof path, "%s/c.npy", scratch);
    fuse_tensor t;
    ck_assert_int_eq(fuse_tensor_load(ctx, path, &t), FUSE_OK); /* outputs still written */
    /* three sweeps: C = E + E^2 + E^3 on a 3-cycle: 1 on every cell */
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(((float *)t.data)[i], 1.0f);
    fuse_free(t.data);
    write_program("tc.fuse", TC, e, n);
    snprintf(args, sizeof args, "run %s/tc.fuse --mode demand --query 'Path[x=1]' "
             "--query Path[y=0,x=2]", scratch);
    ck_assert_int_eq(cli(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "# Path[x=1] shape=(3,)"));
    ck_assert_ptr_nonnull(strstr(out, "# Path[y=0,x=2] shape=()"));
    /* --explain-json after --out: stdout is the JSON trace alone */
    snprintf(args, sizeof args, "run %s/tc.fuse --mode fixpoint --fixpoint-strategy semi_naive "
             "--out %s/p.npy --explain-json --temperature '*=piecewise:0=1,2=0'", scratch, scratch);
    ck_assert_int_eq(cli(args, out, sizeof out), 0);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    ck_assert_msg(root != NULL, "%s", jerr.text);
    ck_assert_str_eq(json_string_value(json_object_get(root, "strategy")), "semi_naive");
    ck_assert(json_is_true(json_object_get(root, "converged")));
    json_t *es[64];
    int k = entries_of(root, "Path", es, 64);
    ck_assert_int_ge(k, 3);
    ck_assert_double_eq(json_real_value(json_object_get(es[0], "temperature")), 1.0);
    json_decref(root);
    static const char *const bad[] = {"--mode fast", "--fixpoint-strategy naive", "--max-iters 0",
                                      "--tol -1", "--query 'P[x=1'", "--temperature X",
                                      "--temperature X=linear:1", "--query 'Path[z=1]'"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "run %s/tc.fuse %s", scratch, bad[i]);
        ck_assert_msg(cli(args, out, sizeof out) == 2, "%s", bad[i]);
    }
    free(e);
}
END_TEST

/* ---- zeroing only what needs it (perf; runtime/zeroing.c) ---- */

#define ZERO_TEXT "X[i,k] = \"x.npy\"\nW[k,j] = \"w.npy\"\nV[i] = \"v.npy\"\n" \
                  "C[i,j] = X[i,k] W[k,j]\nD[i,j] = X[i,k] W[k,j]\nD[i,j] += C[i,j]\n" \
                  "S[i] = V[i-1]\nQ[i] = concat(V[i], S[i])\nR[i,j] = softmax(C[i,j.])\n" \
                  "G[i,i] = V[i]\nG[i,j] += V[i] V[j]\n" \
                  "export C\nexport D\nexport S\nexport Q\nexport R\nexport G\n"

enum { ZM = 16, ZK = 400, ZN = 32, ZV = 7 };

static fuse_input zero_input(const char *name, float *data, int rank, int64_t rows,
                             int64_t cols)
{
    fuse_input in = {.name = name};
    in.tensor.dtype = FUSE_F32;
    in.tensor.rank = rank;
    in.tensor.shape[0] = rows;
    in.tensor.shape[1] = cols;
    in.tensor.data = data;
    return in;
}

static void zero_fill(float *x, int n, int seed)
{
    for (int i = 0; i < n; i++)
        x[i] = (float)(((i + 1) * (seed * 2 + 37) % 97) - 48) / 50.0f;
}

static void zero_assert_close(const char *what, const float *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-4 * (1 + fabs(want[i])),
                      "%s cell %d: got %g, want %g", what, i, (double)got[i], want[i]);
}

/* ZERO_TEXT's exports by naive loops: c and d (ZM x ZN), r its row softmax of c,
 * s (ZV), q (2 ZV) and g (ZV x ZV). */
static void zero_reference(const float *x, const float *w, const float *v, double *c,
                           double *d, double *r, double *s, double *q, double *g)
{
    for (int i = 0; i < ZV; i++)
        for (int j = 0; j < ZV; j++)
            g[i * ZV + j] = (double)v[i] * v[j] + (i == j ? v[i] : 0.0);
    for (int i = 0; i < ZM; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < ZN; j++) {
            double z = 0;
            for (int k = 0; k < ZK; k++)
                z += (double)x[i * ZK + k] * w[k * ZN + j];
            c[i * ZN + j] = z;
            d[i * ZN + j] = 2 * z;
            mx = z > mx ? z : mx;
        }
        for (int j = 0; j < ZN; j++)
            sum += exp(c[i * ZN + j] - mx);
        for (int j = 0; j < ZN; j++)
            r[i * ZN + j] = exp(c[i * ZN + j] - mx) / sum;
    }
    for (int i = 0; i < ZV; i++) {
        s[i] = i ? v[i - 1] : 0.0;
        q[i] = v[i];
        q[ZV + i] = s[i];
    }
}

/* Whether runs skip zeroing tensor `name` (".concat": the first temporary whose
 * name contains it), as the plan's first run decided. */
static bool zero_flag(const fuse_runner *run, const char *name)
{
    const RtPlan *pl = api_runner_plan(run);
    ck_assert_ptr_nonnull(pl->is_written_whole);
    for (int t = 0; t < pl->ir->n_tensors; t++) {
        const IrTensor *x = pl->ir->tensors[t];
        bool is_temp_match = name[0] == '.' && x->kind == TEN_TEMP && strstr(x->name, name);
        if (strcmp(x->name, name) == 0 || is_temp_match)
            return pl->is_written_whole[t];
    }
    ck_abort_msg("no tensor %s", name);
    return false;
}

/* Each run, on 1 and 2 threads, with other inputs than the run before it gives
 * its own inputs' values: a contraction over several K blocks, a tensor with an
 * `=` then a `+=` contribution, a shifted read whose cell 0 reads 0, a concat and
 * a softmax folded into its equation, and a diagonal written first, then added
 * to everywhere. Which tensors skip the memset is checked too (a concat target
 * and the diagonal's tensor keep it). */
START_TEST(test_unzeroed_reruns)
{
    float *x = malloc(ZM * ZK * sizeof *x), *w = malloc(ZK * ZN * sizeof *w), v[ZV];
    double *c = malloc(ZM * ZN * sizeof *c), *d = malloc(ZM * ZN * sizeof *d);
    double *r = malloc(ZM * ZN * sizeof *r), s[ZV], q[2 * ZV], g[ZV * ZV];
    ck_assert(x && w && c && d && r);
    for (int threads = 1; threads <= 2; threads++) {
        fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
        cfg.threads = threads;
        Run run;
        for (int pass = 0; pass < 3; pass++) {
            zero_fill(x, ZM * ZK, pass + threads);
            zero_fill(w, ZK * ZN, 3 * pass + 1);
            for (int i = 0; i < ZV; i++)
                v[i] = (float)((i + 2) * (pass + 1) * (pass == 1 ? -1 : 1));
            fuse_input in[3] = {zero_input("X", x, 2, ZM, ZK), zero_input("W", w, 2, ZK, ZN),
                                zero_input("V", v, 1, ZV, 0)};
            if (pass == 0) {
                run_text(&run, ZERO_TEXT, &cfg, in, 3);
            } else {
                fuse_outputs_free(run.out);
                run.out = NULL;
                run.st = fuse_runner_run(run.run, in, 3, &run.out);
            }
            ck_assert_msg(run.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
            zero_reference(x, w, v, c, d, r, s, q, g);
            zero_assert_close("C", output(&run, "C", ZM * ZN), c, ZM * ZN);
            zero_assert_close("D", output(&run, "D", ZM * ZN), d, ZM * ZN);
            zero_assert_close("R", output(&run, "R", ZM * ZN), r, ZM * ZN);
            zero_assert_close("S", output(&run, "S", ZV), s, ZV);
            zero_assert_close("Q", output(&run, "Q", 2 * ZV), q, 2 * ZV);
            zero_assert_close("G", output(&run, "G", ZV * ZV), g, ZV * ZV);
        }
        ck_assert(zero_flag(run.run, "C") && zero_flag(run.run, "D"));
        ck_assert(zero_flag(run.run, "S") && zero_flag(run.run, "R"));
        ck_assert(zero_flag(run.run, "Q"));
        ck_assert(!zero_flag(run.run, ".concat"));
        ck_assert(!zero_flag(run.run, "G")); /* its first writer fills the diagonal only */
        run_free(&run);
    }
    free(x);
    free(w);
    free(c);
    free(d);
    free(r);
}
END_TEST

/* A first contribution over an empty projected axis writes nothing at all (not
 * even zeros), so the `+=` after it must find a zeroed tensor in every run. */
START_TEST(test_unzeroed_empty_axis)
{
    static const char text[] = "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nF[i,j] = \"f.npy\"\n"
                               "E[i,j] = A[i,k] B[k,j]\nE[i,j] += F[i,j]\nexport E\n";
    float f[3 * 4], empty[1] = {0};
    double want[3 * 4];
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 12; i++)
            want[i] = f[i] = (float)((i + 1) * (k + 1));
        fuse_input in[3] = {zero_input("A", empty, 2, 3, 0), zero_input("B", empty, 2, 0, 4),
                            zero_input("F", f, 2, 3, 4)};
        if (k == 0) {
            run_text(&r, text, &cfg, in, 3);
        } else {
            fuse_outputs_free(r.out);
            r.out = NULL;
            r.st = fuse_runner_run(r.run, in, 3, &r.out);
        }
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        zero_assert_close("E", output(&r, "E", 12), want, 12);
    }
    ck_assert(!zero_flag(r.run, "E"));
    run_free(&r);
}
END_TEST

/* A softmax over long rows (written in two passes, lower/emit.c) folded into
 * its equation, run again with other inputs: each run's own rows. */
START_TEST(test_unzeroed_long_softmax)
{
    enum { ROWS = 3, LEN = 1500 };
    static const char text[] = "Y[r,i] = \"y.npy\"\nP[r,i.] = softmax(Y[r,i])\nexport P\n";
    float *y = malloc(ROWS * LEN * sizeof *y);
    double *want = malloc(ROWS * LEN * sizeof *want);
    ck_assert(y && want);
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    for (int k = 0; k < 3; k++) {
        zero_fill(y, ROWS * LEN, 5 * k + 2);
        for (int row = 0; row < ROWS; row++) {
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < LEN; i++)
                mx = y[row * LEN + i] > mx ? y[row * LEN + i] : mx;
            for (int i = 0; i < LEN; i++)
                sum += exp(y[row * LEN + i] - mx);
            for (int i = 0; i < LEN; i++)
                want[row * LEN + i] = exp(y[row * LEN + i] - mx) / sum;
        }
        fuse_input in = zero_input("Y", y, 2, ROWS, LEN);
        if (k == 0) {
            run_text(&r, text, &cfg, &in, 1);
        } else {
            fuse_outputs_free(r.out);
            r.out = NULL;
            r.st = fuse_runner_run(r.run, &in, 1, &r.out);
        }
        ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
        const float *p = output(&r, "P", ROWS * LEN);
        for (int i = 0; i < ROWS * LEN; i++) /* relative: the values are about 1 / LEN */
            ck_assert_msg(fabs(p[i] - want[i]) <= 1e-4 * want[i], "P cell %d: got %g, want %g",
                          i, (double)p[i], want[i]);
    }
    ck_assert(zero_flag(r.run, "P"));
    run_free(&r);
    free(y);
    free(want);
}
END_TEST

/* Every cell of tensor `name` in the plan's buffer is 0. */
static bool zero_buffer_is_zero(const fuse_runner *run, const char *name)
{
    const RtPlan *pl = api_runner_plan(run);
    const IrTensor *t = ir_tensor_find(pl->ir, name);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < pl->count[t->id]; i++)
        if (pl->bufs[t->id][i] != 0)
            return false;
    return true;
}

/* A query after a full run: the tensors outside its closure read 0 again (the
 * query zeroes every computed tensor, as a demand run does), and the next full
 * run computes them with its own inputs. */
START_TEST(test_unzeroed_query_after_run)
{
    int n = 6;
    float *chain = graph(n, chain_next), *cycle = graph(n, cycle_next);
    float *want = closure(chain, n);
    fuse_input in = matrix_input("Edge", chain, n);
    fuse_config cfg = config(FUSE_MODE_SINGLE, FUSE_STRATEGY_SYNCHRONOUS);
    Run r;
    run_text(&r, FAMILY, &cfg, &in, 1);
    ck_assert_int_eq(r.st, FUSE_OK);
    ck_assert(zero_flag(r.run, "Deg") && zero_flag(r.run, "Other"));
    ck_assert(!zero_flag(r.run, "Path")); /* recursive: zeroed */
    ck_assert(!zero_buffer_is_zero(r.run, "Deg") && !zero_buffer_is_zero(r.run, "Other"));
    fuse_outputs *q = NULL;
    ck_assert_int_eq(fuse_runner_query(r.run, "Path", "x=0", &in, 1, &q), FUSE_OK);
    assert_floats_eq(fuse_outputs_tensor(q, 0)->data, want, n);
    fuse_outputs_free(q);
    ck_assert(zero_buffer_is_zero(r.run, "Deg") && zero_buffer_is_zero(r.run, "Other"));
    /* a full run with a cycle, then a query of Other (Path outside its closure) */
    in = matrix_input("Edge", cycle, n);
    fuse_outputs_free(r.out);
    ck_assert_int_eq(fuse_runner_run(r.run, &in, 1, &r.out), FUSE_OK);
    const RtPlan *pl = api_runner_plan(r.run);
    const float *deg = pl->bufs[ir_tensor_find(pl->ir, "Deg")->id];
    for (int i = 0; i < n; i++)
        ck_assert_float_eq(deg[i], 1.0f);
    ck_assert(!zero_buffer_is_zero(r.run, "Path"));
    ck_assert_int_eq(fuse_runner_query(r.run, "Other", "x=5", &in, 1, &q), FUSE_OK);
    ck_assert_float_eq(((float *)fuse_outputs_tensor(q, 0)->data)[0], 1.0f);
    fuse_outputs_free(q);
    ck_assert(zero_buffer_is_zero(r.run, "Path"));
    run_free(&r);
    /* demand mode: Deg and Other are never run, so they read 0 in every run */
    cfg = config(FUSE_MODE_DEMAND, FUSE_STRATEGY_SYNCHRONOUS);
    run_text(&r, FAMILY, &cfg, &in, 1);
    for (int k = 0; k < 2; k++) {
        in = matrix_input("Edge", k ? chain : cycle, n);
        fuse_outputs_free(r.out);
        ck_assert_int_eq(fuse_runner_run(r.run, &in, 1, &r.out), FUSE_OK);
        float *c = closure(k ? chain : cycle, n);
        assert_floats_eq(output(&r, "Path", (int64_t)n * n), c, (int64_t)n * n);
        free(c);
        ck_assert(zero_buffer_is_zero(r.run, "Deg") && zero_buffer_is_zero(r.run, "Other"));
    }
    run_free(&r);
    free(want);
    free(chain);
    free(cycle);
}
END_TEST

/* A recursive program run again with other inputs (a cycle's full closure,
 * then a chain's smaller one) in both fixpoint strategies and in demand mode. */
START_TEST(test_unzeroed_fixpoint_reruns)
{
    int n = 7;
    float *es[2] = {graph(n, cycle_next), graph(n, chain_next)};
    static const fuse_mode modes[] = {FUSE_MODE_FIXPOINT, FUSE_MODE_FIXPOINT, FUSE_MODE_DEMAND};
    static const fuse_strategy strats[] = {FUSE_STRATEGY_SYNCHRONOUS, FUSE_STRATEGY_SEMI_NAIVE,
                                           FUSE_STRATEGY_SYNCHRONOUS};
    for (int m = 0; m < 3; m++) {
        fuse_config cfg = config(modes[m], strats[m]);
        Run r;
        for (int k = 0; k < 4; k++) {
            fuse_input in = matrix_input("Edge", es[k % 2], n);
            if (k == 0) {
                run_text(&r, TC, &cfg, &in, 1);
            } else {
                fuse_outputs_free(r.out);
                r.out = NULL;
                r.st = fuse_runner_run(r.run, &in, 1, &r.out);
            }
            ck_assert_msg(r.st == FUSE_OK, "%s", fuse_ctx_error(ctx));
            float *want = closure(es[k % 2], n);
            assert_floats_eq(output(&r, "Path", (int64_t)n * n), want, (int64_t)n * n);
            free(want);
        }
        ck_assert(!zero_flag(r.run, "Path"));
        run_free(&r);
    }
    free(es[0]);
    free(es[1]);
}
END_TEST

static Suite *modes_suite(void)
{
    Suite *s = suite_create("modes");
    TCase *tc = tcase_create("fixpoint");
    tcase_set_timeout(tc, 60); /* closures of a few hundred nodes, under ASan too */
    tcase_add_checked_fixture(tc, ctx_setup, ctx_teardown);
    tcase_add_test(tc, test_closure_chain);
    tcase_add_loop_test(tc, test_big_closure_threads, 0, 2);
    tcase_add_test(tc, test_closure_cycle);
    tcase_add_test(tc, test_sparse_delta_joins);
    tcase_add_test(tc, test_closure_blocks_match_bfs);
    tcase_add_test(tc, test_delta_kernels_cached);
    tcase_add_test(tc, test_semi_naive_half_operand);
    tcase_add_test(tc, test_fixpoint_trace_sweeps);
    tcase_add_test(tc, test_mutual_recursion);
    tcase_add_test(tc, test_float_fixpoint_tolerance);
    tcase_add_test(tc, test_not_converged);
    tcase_add_test(tc, test_diverged_is_not_converged);
    tcase_add_test(tc, test_demand_skips_unrelated);
    tcase_add_test(tc, test_query_selectors);
    tcase_add_test(tc, test_fused_equations);
    tcase_add_test(tc, test_config_checks);
    tcase_add_test(tc, test_schedule_values);
    tcase_add_test(tc, test_annealed_fixpoint);
    tcase_add_test(tc, test_mc_exact);
    tcase_add_test(tc, test_mc_large_sum);
    tcase_add_test(tc, test_unzeroed_reruns);
    tcase_add_test(tc, test_unzeroed_empty_axis);
    tcase_add_test(tc, test_unzeroed_long_softmax);
    tcase_add_test(tc, test_unzeroed_query_after_run);
    tcase_add_test(tc, test_unzeroed_fixpoint_reruns);
    suite_add_tcase(s, tc);
    TCase *cl = tcase_create("cli");
    tcase_add_checked_fixture(cl, scratch_setup, scratch_teardown);
    tcase_add_test(cl, test_cli_modes);
    suite_add_tcase(s, cl);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(modes_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
