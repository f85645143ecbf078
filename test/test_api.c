/*
 * test_api.c: the public API under misuse and under threads. Every NULL
 * argument, bad tensor, bad configuration and wrong shape must come back as a
 * status with a diagnostic, never a crash; a runner outlives its program; borrowed
 * and copied inputs give the same results; several threads run runners of one
 * context at once, each with its own last error. Versioned structs of
 * older and newer hosts, a program's tensors before it runs, interrupting a run
 * from another thread, and the log callback.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fusejit.h"

/* S[i] = sum_k A[i,k] X[k], both sources bound by the host. */
static const char MATVEC[] = "A[i,k] = \"a.npy\"\n"
                             "X[k] = \"x.npy\"\n"
                             "S[i] = A[i,k] X[k]\n"
                             "export S\n";

static fuse_input f32_input(const char *name, int rank, int64_t d0, int64_t d1, float *data)
{
    fuse_input in = {.name = name, .tensor = {.dtype = FUSE_F32, .rank = rank, .data = data}};
    in.tensor.shape[0] = d0;
    in.tensor.shape[1] = d1;
    return in;
}

/* A context and a runner of MATVEC for a 2x3 A and a 3-vector X. */
typedef struct Fixture {
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_runner *run;
    float a[6], x[3];
    fuse_input in[2];
} Fixture;

static void fixture_open(Fixture *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 6; i++)
        f->a[i] = (float)(i + 1);
    f->x[0] = 1, f->x[1] = 0, f->x[2] = -1;
    f->in[0] = f32_input("A", 2, 2, 3, f->a);
    f->in[1] = f32_input("X", 1, 3, 0, f->x);
    ck_assert_int_eq(fuse_ctx_new(&f->ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(f->ctx, MATVEC, "mv.fuse", &f->prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(f->prog, NULL, f->in, 2, &f->run), FUSE_OK);
}

static void fixture_close(Fixture *f)
{
    fuse_runner_free(f->run);
    fuse_program_free(f->prog);
    fuse_ctx_free(f->ctx);
}

/* Runs and checks S against the host's own matrix-vector product. */
static void expect_matvec(fuse_runner *run, const fuse_input *in, const float *a,
                          const float *x)
{
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, in, 2, &out), FUSE_OK);
    const fuse_tensor *s = fuse_outputs_find(out, "S");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->rank, 1);
    ck_assert_int_eq(s->shape[0], 2);
    for (int i = 0; i < 2; i++) {
        float want = a[3 * i] * x[0] + a[3 * i + 1] * x[1] + a[3 * i + 2] * x[2];
        ck_assert_float_eq_tol(((const float *)s->data)[i], want, 1e-5f);
    }
    fuse_outputs_free(out);
}

START_TEST(null_arguments)
{
    ck_assert_int_eq(fuse_ctx_new(NULL), FUSE_E_ARG);
    ck_assert_ptr_nonnull(fuse_ctx_error(NULL));
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    char *text = NULL;
    ck_assert_int_eq(fuse_program_from_text(NULL, "x", NULL, &prog), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_from_text(ctx, NULL, NULL, &prog), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "NULL argument"));
    ck_assert_int_eq(fuse_program_from_text(ctx, "x", NULL, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_from_file(ctx, NULL, &prog), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_from_file(NULL, "a.fuse", &prog), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_explain(NULL, 0, &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_dump(NULL, "ast", &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_new(NULL, NULL, NULL, 0, &run), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_run(NULL, NULL, 0, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_emit(NULL, "llvm", &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_tensor_save(ctx, NULL, "x.npy"), FUSE_E_ARG);
    ck_assert_int_eq(fuse_tensor_load(ctx, NULL, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_outputs_save_npz(ctx, NULL, "x.npz"), FUSE_E_ARG);
    ck_assert_int_eq(fuse_outputs_save_npz_compressed(ctx, NULL, "x.npz"), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_trace(NULL, 0, &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_query(NULL, "S", NULL, NULL, 0, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_reset(NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_timings(NULL, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_ctx_stats(NULL, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_ctx_stats(ctx, NULL), FUSE_E_ARG);
    ck_assert_ptr_null(fuse_outputs_find(NULL, "S"));
    ck_assert_ptr_null(fuse_outputs_name(NULL, 0));
    ck_assert_uint_eq(fuse_outputs_count(NULL), 0);
    fuse_config_init(NULL);
    fuse_outputs_free(NULL);
    fuse_runner_free(NULL);
    fuse_program_free(NULL);
    fuse_free(NULL);
    ck_assert_ptr_null(prog);
    ck_assert_ptr_null(run);
    ck_assert_ptr_null(text);
    fuse_ctx_free(ctx);
    fuse_ctx_free(NULL);
}
END_TEST

START_TEST(null_arguments_on_live_objects)
{
    Fixture f;
    fixture_open(&f);
    char *text = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_program_explain(f.prog, 0, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_dump(f.prog, NULL, &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_dump(f.prog, "bogus", &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_run(f.run, NULL, 2, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_run(f.run, f.in, 2, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_emit(f.run, NULL, &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_emit(f.run, "pdf", &text), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_trace(f.run, 0, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_query(f.run, NULL, NULL, f.in, 2, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_query(f.run, "S", NULL, NULL, 2, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_query(f.run, "Nope", NULL, f.in, 2, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_timings(f.run, NULL), FUSE_E_ARG);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(text);
    /* the runner still works after all that */
    expect_matvec(f.run, f.in, f.a, f.x);
    fixture_close(&f);
}
END_TEST

START_TEST(bad_inputs)
{
    Fixture f;
    fixture_open(&f);
    fuse_outputs *out = NULL;
    fuse_input in[2] = {f.in[0], f.in[1]};
    in[0].tensor.shape[1] = 4; /* A is 2x3 in the runner */
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(f.ctx), "shape"));
    in[0] = f.in[0];
    in[0].tensor.rank = 100;
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    in[0] = f.in[0];
    in[0].tensor.data = NULL;
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    in[0] = f.in[0];
    in[0].tensor.dtype = (fuse_dtype)77;
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    in[0] = f.in[0];
    in[0].tensor.shape[0] = -2;
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    in[0] = f.in[0];
    in[0].name = NULL;
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    in[0].name = "S"; /* not a source */
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    in[0].name = "X"; /* twice */
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_run(f.run, f.in, 1, &out), FUSE_E_ARG); /* X missing */
    ck_assert_ptr_null(out);
    expect_matvec(f.run, f.in, f.a, f.x);
    fixture_close(&f);
}
END_TEST

START_TEST(bad_config)
{
    Fixture f;
    fixture_open(&f);
    fuse_runner *run = NULL;
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = -1;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_E_ARG);
    fuse_config_init(&cfg);
    cfg.mode = (fuse_mode)42;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(f.ctx), "mode"));
    fuse_config_init(&cfg);
    cfg.n_temperatures = 2;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_E_ARG);
    ck_assert_ptr_null(run);
    /* valid but not available here: refused, never silently ignored */
    fuse_config_init(&cfg);
    cfg.device = FUSE_DEVICE_CUDA;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(f.ctx), "cuda is not available"));
    /* every precision is available: bf16 runs and returns bfloat16 outputs */
    fuse_config_init(&cfg);
    cfg.precision = FUSE_PRECISION_BF16;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_OK);
    fuse_outputs *o = NULL;
    ck_assert_int_eq(fuse_runner_run(run, f.in, 2, &o), FUSE_OK);
    const fuse_tensor *s = fuse_outputs_find(o, "S");
    ck_assert_int_eq(s->dtype, FUSE_BF16);
    const uint16_t *bits = s->data; /* S = [1 - 3, 4 - 6] = [-2, -2]: exact in bf16 */
    ck_assert_uint_eq(bits[0], 0xC000);
    ck_assert_uint_eq(bits[1], 0xC000);
    fuse_outputs_free(o);
    fuse_runner_free(run);
    fuse_config_init(&cfg);
    cfg.precision = (fuse_precision)FUSE_PRECISION_COUNT;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_E_ARG);
    fuse_config_init(&cfg);
    cfg.device = FUSE_DEVICE_CPU;
    ck_assert_int_eq(fuse_runner_new(f.prog, &cfg, f.in, 2, &run), FUSE_OK);
    fuse_runner_free(run);
    fixture_close(&f);
}
END_TEST

START_TEST(program_errors_have_positions)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, "A[i] = const([1.0])\nB[i] = A[i] +\n",
                                            "bad.fuse", &prog), FUSE_E_SYNTAX);
    ck_assert_ptr_null(prog);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "bad.fuse:"));
    ck_assert_int_eq(fuse_program_from_text(ctx, "export Nope\n", "n.fuse", &prog), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "n.fuse:1:"));
    ck_assert_int_eq(fuse_program_from_file(ctx, "/nonexistent/x.fuse", &prog), FUSE_E_IO);
    fuse_ctx_free(ctx);
}
END_TEST

START_TEST(runner_outlives_program)
{
    Fixture f;
    fixture_open(&f);
    fuse_program_free(f.prog);
    f.prog = NULL;
    expect_matvec(f.run, f.in, f.a, f.x);
    f.x[1] = 5;
    expect_matvec(f.run, f.in, f.a, f.x);
    fixture_close(&f);
}
END_TEST

/* Borrowed float32, 64-byte aligned or not (both zero-copy), and float64 (copied)
 * inputs all give the product; a borrowed buffer freed after a run is not used by
 * the next run. */
START_TEST(borrowed_inputs)
{
    Fixture f;
    fixture_open(&f);
    float *a = aligned_alloc(64, 64 * sizeof(float));
    float *x = aligned_alloc(64, 64 * sizeof(float));
    ck_assert(a && x);
    for (int i = 0; i < 6; i++)
        a[i] = (float)(i * i) - 3.0f;
    x[0] = 2, x[1] = -1, x[2] = 0.5f;
    fuse_input in[2] = {f32_input("A", 2, 2, 3, a), f32_input("X", 1, 3, 0, x)};
    in[0].borrow = in[1].borrow = 1;
    expect_matvec(f.run, in, a, x);
    ck_assert_float_eq(a[4], 13.0f); /* the host's data is unchanged */
    free(a);
    /* 4 bytes past a 64-byte boundary: read in place all the same */
    float *buf = aligned_alloc(64, 64 * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 6; i++)
        buf[i + 1] = (float)i;
    in[0].tensor.data = buf + 1;
    expect_matvec(f.run, in, buf + 1, x);
    /* float64 borrowed: converted */
    double a64[6] = {1, 2, 3, 4, 5, 6};
    float a32[6] = {1, 2, 3, 4, 5, 6};
    in[0].tensor.dtype = FUSE_F64;
    in[0].tensor.data = a64;
    expect_matvec(f.run, in, a32, x);
    expect_matvec(f.run, f.in, f.a, f.x); /* copied inputs again */
    free(buf);
    free(x);
    fixture_close(&f);
}
END_TEST

/* ---- outputs into host memory ---- */

/* S[i] = sum_k A[i,k] X[k] and T[i] = X[i-1] + 1 (written whole), and the
 * diagonal G[i,i] = X[i] (written in part: the rest must read 0), delivered into
 * host buffers prefilled with garbage, borrowed (written in place) or not. */
static const char SHIFTED[] = "A[i,k] = \"a.npy\"\n"
                              "X[k] = \"x.npy\"\n"
                              "S[i] = A[i,k] X[k]\n"
                              "T[i] = X[i-1]\n"
                              "T[i] += 1.0\n"
                              "G[i,i] = X[i]\n"
                              "export S\nexport T\nexport G\n";

static void expect_run_into(fuse_runner *run, const fuse_input *in, float *s, float *t,
                            int borrow)
{
    float *g = t + 16;
    for (int i = 0; i < 16; i++)
        s[i] = t[i] = g[i] = 7.0f;
    fuse_input out[3] = {f32_input("T", 1, 3, 0, t), f32_input("S", 1, 3, 0, s),
                         f32_input("G", 2, 3, 3, g)};
    out[0].borrow = out[1].borrow = out[2].borrow = borrow;
    ck_assert_int_eq(fuse_runner_run_into(run, in, 2, out, 3), FUSE_OK);
    const float *a = in[0].tensor.data, *x = in[1].tensor.data;
    for (int i = 0; i < 3; i++) {
        float want = a[3 * i] * x[0] + a[3 * i + 1] * x[1] + a[3 * i + 2] * x[2];
        ck_assert_float_eq_tol(s[i], want, 1e-5f);
        ck_assert_float_eq(t[i], (i ? x[i - 1] : 0.0f) + 1.0f);
        for (int j = 0; j < 3; j++)
            ck_assert_float_eq(g[3 * i + j], i == j ? x[i] : 0.0f);
    }
    ck_assert_float_eq(s[3], 7.0f); /* nothing past the tensor is written */
}

START_TEST(outputs_into_host_memory)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    float a[9], x[3] = {2, -1, 0.5f};
    for (int i = 0; i < 9; i++)
        a[i] = (float)(i % 4) - 1.5f;
    fuse_input in[2] = {f32_input("A", 2, 3, 3, a), f32_input("X", 1, 3, 0, x)};
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, SHIFTED, "s.fuse", &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, in, 2, &run), FUSE_OK);
    float *s = aligned_alloc(64, 64 * sizeof(float)), *t = aligned_alloc(64, 64 * sizeof(float));
    ck_assert(s && t); /* t: T at t, G at t + 16 */
    for (int borrow = 1; borrow >= 0; borrow--) {
        expect_run_into(run, in, s, t, borrow);
        x[0] = -3; /* the next run sees new inputs and writes over the old values */
        expect_run_into(run, in, s, t, borrow);
        expect_run_into(run, in, s + 1, t + 1, borrow); /* unaligned: in place too */
        x[0] = 2;
    }
    /* after all that, the runner's own outputs are still right */
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, in, 2, &out), FUSE_OK);
    ck_assert_float_eq(((const float *)fuse_outputs_find(out, "T")->data)[1], 3.0f);
    fuse_outputs_free(out);
    /* only some exports: fine; bad outputs: FUSE_E_ARG naming the problem */
    fuse_input one = f32_input("S", 1, 3, 0, s);
    ck_assert_int_eq(fuse_runner_run_into(run, in, 2, &one, 1), FUSE_OK);
    static const struct {
        const char *name;
        int rank;
        int64_t d0;
        fuse_dtype dt;
        const char *msg;
    } bad[] = {{"A", 2, 3, FUSE_F32, "not an export"}, {"S", 1, 4, FUSE_F32, "wrong shape"},
               {"S", 2, 3, FUSE_F32, "wrong rank"}, {"S", 1, 3, FUSE_F64, "float32"},
               {NULL, 1, 3, FUSE_F32, "no name"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fuse_input o = f32_input(bad[i].name, bad[i].rank, bad[i].d0, 3, s);
        o.tensor.dtype = bad[i].dt;
        ck_assert_int_eq(fuse_runner_run_into(run, in, 2, &o, 1), FUSE_E_ARG);
        ck_assert_msg(strstr(fuse_ctx_error(ctx), bad[i].msg), "%s", fuse_ctx_error(ctx));
    }
    fuse_input twice[2] = {one, one};
    ck_assert_int_eq(fuse_runner_run_into(run, in, 2, twice, 2), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "named twice"));
    ck_assert_int_eq(fuse_runner_run_into(NULL, in, 2, &one, 1), FUSE_E_ARG);
    ck_assert_int_eq(fuse_runner_run_into(run, in, 2, NULL, 1), FUSE_E_ARG);
    expect_run_into(run, in, s, t, 1); /* and the runner still works */
    free(s);
    free(t);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- threads ---- */

enum { N_THREADS = 4, N_RUNS = 12 };

typedef struct Worker {
    fuse_ctx *ctx;
    pthread_barrier_t *barrier;
    int id;
    int failures; /* checks that went wrong */
} Worker;

static int worker_runs(Worker *w, fuse_runner *run)
{
    int bad = 0;
    for (int r = 0; r < N_RUNS; r++) {
        float a[6], x[3];
        for (int i = 0; i < 6; i++)
            a[i] = (float)(w->id * 10 + r + i);
        x[0] = (float)r, x[1] = 1, x[2] = (float)w->id;
        fuse_input in[2] = {f32_input("A", 2, 2, 3, a), f32_input("X", 1, 3, 0, x)};
        fuse_outputs *out = NULL;
        if (fuse_runner_run(run, in, 2, &out) != FUSE_OK)
            return bad + 1;
        const fuse_tensor *s = fuse_outputs_find(out, "S");
        for (int i = 0; i < 2 && s; i++) {
            float want = a[3 * i] * x[0] + a[3 * i + 1] * x[1] + a[3 * i + 2] * x[2];
            float got = ((const float *)s->data)[i];
            bad += (got - want > 1e-3f || want - got > 1e-3f);
        }
        bad += !s;
        fuse_outputs_free(out);
    }
    return bad;
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    float a[6] = {0}, x[3] = {0};
    fuse_input in[2] = {f32_input("A", 2, 2, 3, a), f32_input("X", 1, 3, 0, x)};
    fuse_program *prog = NULL, *broken = NULL;
    fuse_runner *run = NULL;
    char name[32], want[40];
    snprintf(name, sizeof name, "thread%d.fuse", w->id);
    snprintf(want, sizeof want, "thread%d.fuse:1:", w->id);
    if (fuse_program_from_text(w->ctx, MATVEC, name, &prog) != FUSE_OK ||
        fuse_runner_new(prog, NULL, in, 2, &run) != FUSE_OK)
        w->failures++;
    else
        w->failures += worker_runs(w, run);
    /* every thread fails, then reads back its own error, not a neighbour's */
    w->failures += fuse_program_from_text(w->ctx, "X[i] = = 1\n", name, &broken) != FUSE_E_SYNTAX;
    pthread_barrier_wait(w->barrier);
    w->failures += strstr(fuse_ctx_error(w->ctx), want) == NULL;
    fuse_runner_free(run);
    fuse_program_free(prog);
    return NULL;
}

START_TEST(threads_share_a_context)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N_THREADS);
    pthread_t tid[N_THREADS];
    Worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (Worker){.ctx = ctx, .barrier = &barrier, .id = i};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(tid[i], NULL);
        ck_assert_int_eq(w[i].failures, 0);
    }
    pthread_barrier_destroy(&barrier);
    ck_assert_str_eq(fuse_ctx_error(ctx), ""); /* this thread has had no error */
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- versioned structs ---- */

/* The first layout of fuse_config, as a host of that header would have it. */
typedef struct OldConfig {
    size_t size;
    int threads;
    const char *base_dir;
    const char *out_dir;
    int write_sinks;
} OldConfig;

/* X = 0.5 X + 1 is 1 after the single mode's one sweep and 2 at the fixpoint;
 * the sink writes it to halving.npy. */
static const char HALVING[] = "Half[i] = const([0.5, 0.5])\n"
                              "One[i] = const([1.0, 1.0])\n"
                              "X[i] = X[i] Half[i]\n"
                              "X[i] += One[i]\n"
                              "\"halving.npy\" = X[i]\n"
                              "export X\n";

/* Runs prog with the configuration at cfg (any layout); the status, X[0] in *x. */
static fuse_status run_with(fuse_program *prog, const void *cfg, float *x)
{
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    fuse_status st = fuse_runner_new(prog, cfg, NULL, 0, &run);
    if (st == FUSE_OK)
        st = fuse_runner_run(run, NULL, 0, &out);
    if (st == FUSE_OK)
        *x = ((const float *)fuse_outputs_find(out, "X")->data)[0];
    fuse_outputs_free(out);
    fuse_runner_free(run);
    return st;
}

static char *temp_dir(void)
{
    char tmpl[] = "/tmp/fuse-api-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* An older host's struct (its size smaller, the memory past it garbage) gives
 * the defaults for every later field; fuse_config_init_size writes only `size`
 * bytes; size 0 and impossible sizes are refused. */
START_TEST(config_of_an_older_host)
{
    char *dir = temp_dir();
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, HALVING, "h.fuse", &prog), FUSE_OK);
    unsigned char buf[sizeof(fuse_config) + 64];
    memset(buf, 0xFF, sizeof buf); /* mode, max_iters, ... would be out of range */
    OldConfig old = {.size = sizeof old, .threads = 1, .out_dir = dir, .write_sinks = 0};
    memcpy(buf, &old, sizeof old);
    float x = 0;
    ck_assert_msg(run_with(prog, buf, &x) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    ck_assert_float_eq(x, 1.0f); /* mode: the default, single */
    ck_assert(!file_exists(path_in(dir, "halving.npy"))); /* its own write_sinks = 0 */
    /* the same through fuse_config_init of that host: write_sinks defaults to 1 */
    memset(buf, 0xAB, sizeof buf);
    fuse_config_init_size((fuse_config *)(void *)buf, sizeof old);
    memcpy(&old, buf, sizeof old);
    ck_assert_uint_eq(old.size, sizeof old);
    ck_assert_int_eq(old.write_sinks, 1);
    ck_assert_int_eq(old.threads, 0);
    for (size_t i = sizeof old; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xAB); /* nothing past the host's struct */
    old.out_dir = dir;
    memcpy(buf, &old, sizeof old);
    ck_assert_int_eq(run_with(prog, buf, &x), FUSE_OK);
    ck_assert(file_exists(path_in(dir, "halving.npy")));
    /* this host's own struct: the new fields count */
    fuse_config cfg;
    fuse_config_init(&cfg);
    ck_assert_uint_eq(cfg.size, sizeof cfg);
    cfg.out_dir = dir;
    cfg.mode = FUSE_MODE_FIXPOINT;
    ck_assert_int_eq(run_with(prog, &cfg, &x), FUSE_OK);
    ck_assert_float_eq_tol(x, 2.0f, 1e-4f);
    /* sizes no host has */
    static const size_t bad[] = {0, 8, sizeof old - 8, sizeof old + 4, 1u << 20};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.size = bad[i];
        ck_assert_int_eq(run_with(prog, &cfg, &x), FUSE_E_ARG);
        ck_assert_msg(strstr(fuse_ctx_error(ctx), "fuse_config.size"), "%s",
                      fuse_ctx_error(ctx));
    }
    cfg.size = 0;
    ck_assert_int_eq(run_with(prog, &cfg, &x), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "size is 0"));
    char *cache = NULL;
    ck_assert_int_eq(fuse_cache_dir(&cfg, &cache), FUSE_E_ARG);
    ck_assert_ptr_null(cache);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    unlink(path_in(dir, "halving.npy"));
    rmdir(dir);
    free(dir);
}
END_TEST

/* A newer host's larger struct: taken while every byte past this library's is
 * 0 (fuse_config_init_size zeroes them), refused once one is set. */
START_TEST(config_of_a_newer_host)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, HALVING, "h.fuse", &prog), FUSE_OK);
    union {
        fuse_config cfg;
        unsigned char b[sizeof(fuse_config) + 16];
    } u;
    memset(&u, 0xEE, sizeof u);
    fuse_config_init_size(&u.cfg, sizeof u);
    ck_assert_uint_eq(u.cfg.size, sizeof u);
    ck_assert_int_eq(u.cfg.write_sinks, 1);
    for (size_t i = sizeof(fuse_config); i < sizeof u; i++)
        ck_assert_uint_eq(u.b[i], 0);
    u.cfg.write_sinks = 0;
    u.cfg.mode = FUSE_MODE_FIXPOINT;
    float x = 0;
    ck_assert_msg(run_with(prog, &u, &x) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    ck_assert_float_eq_tol(x, 2.0f, 1e-4f);
    u.b[sizeof(fuse_config) + 3] = 1; /* a field this library does not know */
    ck_assert_int_eq(run_with(prog, &u, &x), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "newer than the library"));
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* Output structs of an older host get only their own bytes; a newer host's
 * fields past this library's are left as the host set them. */
START_TEST(stats_and_timings_sizes)
{
    Fixture f;
    fixture_open(&f);
    fuse_stats all = {.size = sizeof all};
    ck_assert_int_eq(fuse_ctx_stats(f.ctx, &all), FUSE_OK);
    ck_assert_uint_ge(all.compiles + all.memory_hits + all.disk_hits, 1);
    ck_assert_uint_ge(all.groups_compiled + all.groups_cached, 1);
    struct {
        size_t size;
        uint64_t counts[5]; /* compiles .. disk_rejected: the first layout */
        unsigned char guard[24];
    } old;
    memset(&old, 0xAB, sizeof old);
    old.size = sizeof old.size + sizeof old.counts;
    ck_assert_int_eq(fuse_ctx_stats(f.ctx, (fuse_stats *)(void *)&old), FUSE_OK);
    ck_assert_uint_eq(old.size, sizeof old.size + sizeof old.counts);
    ck_assert_uint_eq(old.counts[0], all.compiles);
    ck_assert_uint_eq(old.counts[1], all.memory_hits);
    for (size_t i = 0; i < sizeof old.guard; i++)
        ck_assert_uint_eq(old.guard[i], 0xAB);
    union {
        fuse_stats s;
        unsigned char b[sizeof(fuse_stats) + 16];
    } newer;
    memset(&newer, 0xCD, sizeof newer);
    newer.s.size = sizeof newer;
    ck_assert_int_eq(fuse_ctx_stats(f.ctx, &newer.s), FUSE_OK);
    ck_assert_uint_eq(newer.s.groups_cached, all.groups_cached);
    ck_assert_uint_eq(newer.b[sizeof(fuse_stats) + 8], 0xCD);
    /* timings: the first layout ends at is_cache_hit (flops came later) */
    fuse_timings t = {.size = sizeof t};
    ck_assert_int_eq(fuse_runner_timings(f.run, &t), FUSE_OK);
    ck_assert_uint_gt(t.flops, 0);
    union {
        fuse_timings t;
        unsigned char b[sizeof(fuse_timings)];
    } ot;
    memset(&ot, 0xAB, sizeof ot);
    ot.t.size = offsetof(fuse_timings, flops);
    ck_assert_int_eq(fuse_runner_timings(f.run, &ot.t), FUSE_OK);
    ck_assert(ot.t.parse_ms == t.parse_ms && ot.t.compile_ms == t.compile_ms);
    for (size_t i = offsetof(fuse_timings, flops); i < sizeof ot; i++)
        ck_assert_uint_eq(ot.b[i], 0xAB);
    /* a size never set, or too small */
    fuse_stats junk;
    memset(&junk, 0x5A, sizeof junk);
    ck_assert_int_eq(fuse_ctx_stats(f.ctx, &junk), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(f.ctx), "fuse_stats.size"));
    junk.size = 0;
    ck_assert_int_eq(fuse_ctx_stats(f.ctx, &junk), FUSE_E_ARG);
    t.size = sizeof(size_t) + sizeof(double);
    ck_assert_int_eq(fuse_runner_timings(f.run, &t), FUSE_E_ARG);
    fixture_close(&f);
}
END_TEST

/* ---- a program's tensors ---- */

/* Two sources, A from a real .npy (2x3) and the boolean M whose file is
 * missing; two exports, S and the boolean R; and a constant. */
static const char TWO_SOURCES[] = "A[i,j] = \"a.npy\"\n"
                                  "M(i,j) = \"m.npy\"\n"
                                  "K[j] = const([1.0, 2.0, 3.0])\n"
                                  "S[i] = A[i,j] M(i,j) K[j]\n"
                                  "R(i) = M(i,j)\n"
                                  "export S\nexport R\n";

static fuse_tensor_info info_of(fuse_program *prog, int which, size_t i)
{
    fuse_tensor_info t = {.size = sizeof t};
    ck_assert_int_eq(fuse_program_tensor_info(prog, which, i, &t), FUSE_OK);
    return t;
}

static void expect_info(const fuse_tensor_info *t, const char *name, int is_input, int rank,
                        int is_bool, const int64_t *shape)
{
    ck_assert_str_eq(t->name, name);
    ck_assert_int_eq(t->is_input, is_input);
    ck_assert_int_eq(t->is_export, !is_input);
    ck_assert_int_eq(t->rank, rank);
    ck_assert_int_eq(t->is_bool, is_bool);
    ck_assert_int_eq(t->dtype, FUSE_F32);
    ck_assert_int_eq(t->is_shape_known, shape != NULL);
    for (int k = 0; shape && k < rank; k++)
        ck_assert_int_eq(t->shape[k], shape[k]);
}

START_TEST(program_tensors_before_running)
{
    char *dir = temp_dir();
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float a[6] = {1, 2, 3, 4, 5, 6};
    fuse_tensor ta = {.dtype = FUSE_F32, .rank = 2, .shape = {2, 3}, .data = a};
    ck_assert_int_eq(fuse_tensor_save(ctx, &ta, path_in(dir, "a.npy")), FUSE_OK);
    FILE *fp = fopen(path_in(dir, "p.fuse"), "w");
    ck_assert_ptr_nonnull(fp);
    fputs(TWO_SOURCES, fp);
    fclose(fp);
    ck_assert_msg(fuse_program_from_file(ctx, path_in(dir, "p.fuse"), &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    enum { IN = FUSE_TENSORS_INPUTS, EX = FUSE_TENSORS_EXPORTS };
    ck_assert_uint_eq(fuse_program_tensor_count(prog, IN), 2);
    ck_assert_uint_eq(fuse_program_tensor_count(prog, EX), 2);
    ck_assert_uint_eq(fuse_program_tensor_count(prog, IN | EX), 4);
    ck_assert_uint_eq(fuse_program_tensor_count(prog, 0), 0);
    ck_assert_uint_eq(fuse_program_tensor_count(NULL, IN), 0);
    const int64_t a_shape[] = {2, 3};
    fuse_tensor_info t = info_of(prog, IN, 0);
    expect_info(&t, "A", 1, 2, 0, a_shape); /* from the .npy's header */
    t = info_of(prog, IN, 1);
    expect_info(&t, "M", 1, 2, 1, NULL); /* its file is missing */
    t = info_of(prog, EX, 0);
    expect_info(&t, "S", 0, 1, 0, NULL); /* depends on M */
    t = info_of(prog, EX, 1);
    expect_info(&t, "R", 0, 1, 1, NULL);
    t = info_of(prog, IN | EX, 3); /* inputs, then exports */
    ck_assert_str_eq(t.name, "R");
    /* misuse */
    ck_assert_int_eq(fuse_program_tensor_info(prog, IN, 2, &t), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "out of range"));
    ck_assert_int_eq(fuse_program_tensor_info(prog, IN, 0, NULL), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_tensor_info(NULL, IN, 0, &t), FUSE_E_ARG);
    t.size = 0;
    ck_assert_int_eq(fuse_program_tensor_info(prog, IN, 0, &t), FUSE_E_ARG);
    fuse_program_free(prog);
    /* once m.npy exists every shape is known, inferred through the program */
    float m[6] = {1, 0, 1, 0, 0, 1};
    ck_assert_int_eq(fuse_tensor_save(ctx, &(fuse_tensor){.dtype = FUSE_F32, .rank = 2,
                                                          .shape = {2, 3}, .data = m},
                                      path_in(dir, "m.npy")), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_file(ctx, path_in(dir, "p.fuse"), &prog), FUSE_OK);
    const int64_t two[] = {2};
    t = info_of(prog, IN, 1);
    expect_info(&t, "M", 1, 2, 1, a_shape);
    t = info_of(prog, EX, 0);
    expect_info(&t, "S", 0, 1, 0, two);
    t = info_of(prog, EX, 1);
    expect_info(&t, "R", 0, 1, 1, two);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    unlink(path_in(dir, "a.npy"));
    unlink(path_in(dir, "m.npy"));
    unlink(path_in(dir, "p.fuse"));
    rmdir(dir);
    free(dir);
}
END_TEST

/* ---- interrupts ---- */

/* X = A - B X: with B = 1 it flips between 0 and A forever; with B = 0.5 it
 * converges to 2A/3. */
static const char FLIP[] = "A[i] = \"flip-a.npy\"\n"
                           "B[i] = \"flip-b.npy\"\n"
                           "X[i] = A[i] - B[i] X[i]\n"
                           "export X\n";

enum { FLIP_N = 1 << 14 };

typedef struct Interrupter {
    fuse_ctx *ctx;
    atomic_int is_done;
    int sent;
} Interrupter;

/* Interrupts every 20 ms until the run under test returns: an interrupt sent
 * before the run began would be cleared by it. */
static void *interrupter_main(void *arg)
{
    Interrupter *it = arg;
    while (!atomic_load(&it->is_done)) {
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
        fuse_ctx_interrupt(it->ctx);
        it->sent++;
    }
    return NULL;
}

static void interrupter_start(Interrupter *it, pthread_t *tid, fuse_ctx *ctx)
{
    it->ctx = ctx;
    it->sent = 0;
    atomic_init(&it->is_done, 0);
    ck_assert_int_eq(pthread_create(tid, NULL, interrupter_main, it), 0);
}

static void interrupter_stop(Interrupter *it, pthread_t tid)
{
    atomic_store(&it->is_done, 1);
    pthread_join(tid, NULL);
    ck_assert_int_ge(it->sent, 1);
}

START_TEST(interrupt_stops_a_fixpoint)
{
    ck_assert_str_eq(fuse_status_name(FUSE_E_INTERRUPTED), "interrupted");
    float *a = malloc(FLIP_N * sizeof *a), *b = malloc(FLIP_N * sizeof *b);
    ck_assert(a && b);
    for (int i = 0; i < FLIP_N; i++)
        a[i] = 3.0f, b[i] = 1.0f;
    fuse_input in[2] = {f32_input("A", 1, FLIP_N, 0, a), f32_input("B", 1, FLIP_N, 0, b)};
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, FLIP, "flip.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.mode = FUSE_MODE_FIXPOINT;
    cfg.max_iters = INT_MAX; /* hours of sweeps */
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, in, 2, &run), FUSE_OK);
    Interrupter it;
    pthread_t tid;
    fuse_outputs *out = NULL;
    interrupter_start(&it, &tid, ctx);
    fuse_status st = fuse_runner_run(run, in, 2, &out);
    interrupter_stop(&it, tid);
    ck_assert_int_eq(st, FUSE_E_INTERRUPTED);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(fuse_ctx_error(ctx), "error: interrupted");
    /* a query and a run into host memory stop the same way */
    interrupter_start(&it, &tid, ctx);
    st = fuse_runner_query(run, "X", NULL, in, 2, &out);
    interrupter_stop(&it, tid);
    ck_assert_int_eq(st, FUSE_E_INTERRUPTED);
    ck_assert_ptr_null(out);
    float *x = malloc(FLIP_N * sizeof *x);
    ck_assert_ptr_nonnull(x);
    fuse_input into = f32_input("X", 1, FLIP_N, 0, x);
    interrupter_start(&it, &tid, ctx);
    st = fuse_runner_run_into(run, in, 2, &into, 1);
    interrupter_stop(&it, tid);
    ck_assert_int_eq(st, FUSE_E_INTERRUPTED);
    /* the runner still works; an interrupt sent while nothing runs is dropped */
    fuse_ctx_interrupt(ctx);
    for (int i = 0; i < FLIP_N; i++)
        b[i] = 0.5f;
    ck_assert_msg(fuse_runner_run(run, in, 2, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const float *v = fuse_outputs_find(out, "X")->data;
    ck_assert_float_eq_tol(v[0], 2.0f, 1e-4f);
    ck_assert_float_eq_tol(v[FLIP_N - 1], 2.0f, 1e-4f);
    fuse_outputs_free(out);
    fuse_ctx_interrupt(NULL);
    free(x);
    free(a);
    free(b);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- one runner, several threads ---- */

enum { HAMMER_THREADS = 4, HAMMER_RUNS = 300, HAMMER_N = 128 };

typedef struct Hammer {
    fuse_ctx *ctx;
    fuse_runner *run;
    pthread_barrier_t *start; /* all threads begin together */
    int id;
    int ok, busy, wrong; /* calls that succeeded, were refused, gave wrong values */
} Hammer;

/* One call of fuse_runner_run on the shared runner with this thread's own
 * inputs; the result is checked against a product computed here. */
static void hammer_once(Hammer *h, int r, float *a, float *x)
{
    for (int i = 0; i < HAMMER_N * HAMMER_N; i++)
        a[i] = (float)((h->id * 7 + r + i) % 13) - 6.0f;
    for (int k = 0; k < HAMMER_N; k++)
        x[k] = (float)((h->id + k * r) % 5) - 2.0f;
    fuse_input in[2] = {f32_input("A", 2, HAMMER_N, HAMMER_N, a),
                        f32_input("X", 1, HAMMER_N, 0, x)};
    fuse_outputs *out = NULL;
    fuse_status st = fuse_runner_run(h->run, in, 2, &out);
    if (st == FUSE_E_BUSY) {
        h->busy++;
        h->wrong += out != NULL || !strstr(fuse_ctx_error(h->ctx), "in use by another thread");
        return;
    }
    const fuse_tensor *s = st == FUSE_OK ? fuse_outputs_find(out, "S") : NULL;
    bool right = s && s->shape[0] == HAMMER_N;
    for (int i = 0; right && i < HAMMER_N; i++) {
        double want = 0; /* small integers: every partial sum is exact in float */
        for (int k = 0; k < HAMMER_N; k++)
            want += (double)a[i * HAMMER_N + k] * x[k];
        right = ((const float *)s->data)[i] == (float)want;
    }
    h->ok += right;
    h->wrong += !right;
    fuse_outputs_free(out);
}

static void *hammer_main(void *arg)
{
    Hammer *h = arg;
    float *a = malloc(HAMMER_N * HAMMER_N * sizeof *a), *x = malloc(HAMMER_N * sizeof *x);
    pthread_barrier_wait(h->start);
    for (int r = 0; a && x && r < HAMMER_RUNS; r++)
        hammer_once(h, r, a, x);
    h->wrong += !a || !x;
    free(a);
    free(x);
    return NULL;
}

/* Threads that share one runner (which the API forbids) each get either their
 * own correct result or FUSE_E_BUSY, never another thread's values or a mix;
 * afterwards the runner works as before. */
START_TEST(threads_sharing_a_runner_get_busy)
{
    ck_assert_str_eq(fuse_status_name(FUSE_E_BUSY), "busy");
    static float a0[HAMMER_N * HAMMER_N], x0[HAMMER_N];
    fuse_input in[2] = {f32_input("A", 2, HAMMER_N, HAMMER_N, a0),
                        f32_input("X", 1, HAMMER_N, 0, x0)};
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, MATVEC, "mv.fuse", &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, in, 2, &run), FUSE_OK);
    pthread_t tid[HAMMER_THREADS];
    Hammer h[HAMMER_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, HAMMER_THREADS);
    for (int i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (Hammer){.ctx = ctx, .run = run, .start = &start, .id = i + 1};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, hammer_main, &h[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(tid[i], NULL);
        ck_assert_int_eq(h[i].wrong, 0);
        ck_assert_int_eq(h[i].ok + h[i].busy, HAMMER_RUNS);
        ok += h[i].ok;
    }
    ck_assert_int_gt(ok, 0);
    pthread_barrier_destroy(&start);
    Hammer alone = {.ctx = ctx, .run = run, .id = 9};
    hammer_once(&alone, 3, a0, x0);
    ck_assert_int_eq(alone.ok, 1);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

typedef struct Holder {
    fuse_runner *run;
    const fuse_input *in;
    fuse_status st;
} Holder;

/* Holds the runner in a fixpoint that never converges until it is interrupted
 * (retrying while the main thread's own call holds it). */
static void *holder_main(void *arg)
{
    Holder *h = arg;
    fuse_outputs *out = NULL;
    do
        h->st = fuse_runner_run(h->run, h->in, 2, &out);
    while (h->st == FUSE_E_BUSY);
    fuse_outputs_free(out);
    return NULL;
}

/* Every call on a runner another thread is running is FUSE_E_BUSY and leaves
 * that run alone; once it returns, sequential use works. */
START_TEST(busy_runner_refuses_every_call)
{
    float *a = malloc(FLIP_N * sizeof *a), *b1 = malloc(FLIP_N * sizeof *b1);
    float *b2 = malloc(FLIP_N * sizeof *b2), *x = malloc(FLIP_N * sizeof *x);
    ck_assert(a && b1 && b2 && x);
    for (int i = 0; i < FLIP_N; i++)
        a[i] = 3.0f, b1[i] = 1.0f, b2[i] = 0.5f;
    fuse_input flips[2] = {f32_input("A", 1, FLIP_N, 0, a), f32_input("B", 1, FLIP_N, 0, b1)};
    fuse_input converges[2] = {f32_input("A", 1, FLIP_N, 0, a),
                               f32_input("B", 1, FLIP_N, 0, b2)};
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, FLIP, "flip.fuse", &prog), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.mode = FUSE_MODE_FIXPOINT;
    cfg.max_iters = INT_MAX;
    ck_assert_int_eq(fuse_runner_new(prog, &cfg, flips, 2, &run), FUSE_OK);
    Holder holder = {.run = run, .in = flips};
    pthread_t tid;
    ck_assert_int_eq(pthread_create(&tid, NULL, holder_main, &holder), 0);
    /* until the holder is inside, this thread's own runs converge to 2A/3 = 2 */
    fuse_outputs *out = NULL;
    fuse_status st = FUSE_OK;
    time_t give_up = time(NULL) + 60;
    while ((st = fuse_runner_run(run, converges, 2, &out)) == FUSE_OK && time(NULL) < give_up) {
        ck_assert_float_eq_tol(((const float *)fuse_outputs_find(out, "X")->data)[0], 2.0f,
                               1e-4f);
        fuse_outputs_free(out);
        out = NULL;
    }
    ck_assert_int_eq(st, FUSE_E_BUSY);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "fuse_runner_run: the runner is in use"));
    fuse_input into = f32_input("X", 1, FLIP_N, 0, x);
    char *text = NULL;
    fuse_timings tm = {.size = sizeof tm};
    ck_assert_int_eq(fuse_runner_run_into(run, converges, 2, &into, 1), FUSE_E_BUSY);
    ck_assert_int_eq(fuse_runner_query(run, "X", NULL, converges, 2, &out), FUSE_E_BUSY);
    ck_assert_int_eq(fuse_runner_trace(run, 0, &text), FUSE_E_BUSY);
    ck_assert_int_eq(fuse_runner_emit(run, "llvm", &text), FUSE_E_BUSY);
    ck_assert_int_eq(fuse_runner_timings(run, &tm), FUSE_E_BUSY);
    ck_assert_int_eq(fuse_runner_reset(run), FUSE_E_BUSY);
    ck_assert_ptr_null(text);
    ck_assert_ptr_null(out);
    Interrupter it;
    pthread_t itid;
    interrupter_start(&it, &itid, ctx);
    pthread_join(tid, NULL);
    interrupter_stop(&it, itid);
    ck_assert_int_eq(holder.st, FUSE_E_INTERRUPTED); /* stopped, not disturbed */
    ck_assert_msg(fuse_runner_run(run, converges, 2, &out) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    const float *v = fuse_outputs_find(out, "X")->data;
    ck_assert_float_eq_tol(v[0], 2.0f, 1e-4f);
    ck_assert_float_eq_tol(v[FLIP_N - 1], 2.0f, 1e-4f);
    fuse_outputs_free(out);
    ck_assert_int_eq(fuse_runner_trace(run, 0, &text), FUSE_OK);
    fuse_free(text);
    free(a);
    free(b1);
    free(b2);
    free(x);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- the log ---- */

typedef struct LogSeen {
    int n, level;
    char msg[512];
} LogSeen;

static void log_collect(int level, const char *msg, void *user)
{
    LogSeen *seen = user;
    seen->n++;
    seen->level = level;
    snprintf(seen->msg, sizeof seen->msg, "%s", msg);
}

/* A source whose file cannot be read when the program is checked reaches the
 * host's callback; without one, nothing is written to stderr. */
START_TEST(log_goes_to_the_callback)
{
    static const char text[] = "Q[i] = \"/nonexistent/q.npy\"\nexport Q\n";
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_ctx_set_log(NULL, log_collect, NULL), FUSE_E_ARG);
    LogSeen seen = {0};
    ck_assert_int_eq(fuse_ctx_set_log(ctx, log_collect, &seen), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, text, "q.fuse", &prog), FUSE_OK);
    fuse_program_free(prog);
    ck_assert_int_eq(seen.n, 1);
    ck_assert_int_eq(seen.level, FUSE_LEVEL_INFO);
    ck_assert_msg(strstr(seen.msg, "source Q: ") && strstr(seen.msg, "/nonexistent/q.npy"),
                  "%s", seen.msg);
    /* no callback: dropped, not printed */
    ck_assert_int_eq(fuse_ctx_set_log(ctx, NULL, NULL), FUSE_OK);
    char tmpl[] = "/tmp/fuse-api-stderr-XXXXXX";
    int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO);
    ck_assert(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    fuse_status st = fuse_program_from_text(ctx, text, "q.fuse", &prog);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    ck_assert_int_eq(st, FUSE_OK);
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
    close(fd);
    unlink(tmpl);
    ck_assert_int_eq(seen.n, 1);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* A disk cache entry that cannot be written (its directory would be under a
 * file) is a warning the library used to print: the callback gets it, and
 * without one nothing reaches stderr. */
START_TEST(log_gets_cache_warnings)
{
    char *dir = temp_dir();
    FILE *fp = fopen(path_in(dir, "file"), "w");
    ck_assert_ptr_nonnull(fp);
    fclose(fp);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.cache_dir = path_in(dir, "file/cache");
    cfg.write_sinks = 0;
    for (int quiet = 0; quiet < 2; quiet++) {
        fuse_ctx *ctx = NULL;
        fuse_program *prog = NULL;
        fuse_runner *run = NULL;
        LogSeen seen = {0};
        ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
        if (!quiet)
            ck_assert_int_eq(fuse_ctx_set_log(ctx, log_collect, &seen), FUSE_OK);
        ck_assert_int_eq(fuse_program_from_text(ctx, HALVING, "h.fuse", &prog), FUSE_OK);
        char tmpl[] = "/tmp/fuse-api-stderr-XXXXXX";
        int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO);
        ck_assert(fd >= 0 && saved >= 0);
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        fuse_status st = fuse_runner_new(prog, &cfg, NULL, 0, &run);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        ck_assert_int_eq(st, FUSE_OK); /* the compilation itself succeeds */
        ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
        close(fd);
        unlink(tmpl);
        if (!quiet) {
            ck_assert_int_ge(seen.n, 1);
            ck_assert_int_eq(seen.level, FUSE_LEVEL_WARNING);
            ck_assert_msg(strstr(seen.msg, "cache"), "%s", seen.msg);
        }
        fuse_runner_free(run);
        fuse_program_free(prog);
        fuse_ctx_free(ctx);
    }
    unlink(path_in(dir, "file"));
    rmdir(dir);
    free(dir);
}
END_TEST


/* ---- host-facing messages and bound sources ---- */

/* the error text of the context, without the source line and caret */
static void expect_error_has(fuse_ctx *ctx, const char *want)
{
    const char *err = fuse_ctx_error(ctx);
    ck_assert_msg(strstr(err, want) != NULL, "want '%s' in '%s'", want, err);
}

/* a run given an input of another shape than the runner's names both shapes */
START_TEST(wrong_shape_input_names_both_shapes)
{
    Fixture f;
    fixture_open(&f);
    fuse_outputs *out = NULL;
    float a[8] = {0};
    fuse_input in[2] = {f32_input("A", 2, 2, 4, a), f.in[1]};
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    expect_error_has(f.ctx, "error: input A has shape (2, 4), but the runner was compiled "
                            "for (2, 3)");
    in[0] = f32_input("A", 1, 6, 0, a);
    ck_assert_int_eq(fuse_runner_query(f.run, "S", NULL, in, 2, &out), FUSE_E_ARG);
    expect_error_has(f.ctx, "error: input A has shape (6,), but the runner was compiled for "
                            "(2, 3)");
    ck_assert_ptr_null(out);
    expect_matvec(f.run, f.in, f.a, f.x); /* still usable */
    fixture_close(&f);
}
END_TEST

/* a runner made with an input the program cannot take names both shapes */
START_TEST(wrong_shape_input_at_runner_creation)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, "X[i,j] = \"x.npy\"\n"
                                                 "W[j] = const([1, 2, 3, 4, 5])\n"
                                                 "Y[i] = X[i,j] W[j]\nexport Y\n",
                                            "w.fuse", &prog), FUSE_OK);
    float x[12] = {0};
    fuse_input in = f32_input("X", 2, 3, 4, x);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, &in, 1, &run), FUSE_E_SHAPE);
    expect_error_has(ctx, "w.fuse:1:1: error: input X has shape (3, 4), but the program needs "
                          "(3, 5)");
    in = f32_input("X", 1, 5, 0, x);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, &in, 1, &run), FUSE_E_SHAPE);
    expect_error_has(ctx, "w.fuse:1:1: error: input X has shape (5,), but the program reads "
                          "it with 2 axes");
    ck_assert_ptr_null(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* an input naming no source lists the sources, with the nearest name */
START_TEST(unknown_input_lists_the_sources)
{
    Fixture f;
    fixture_open(&f);
    fuse_outputs *out = NULL;
    fuse_input in[2] = {f.in[0], f.in[1]};
    in[1].name = "x"; /* short names: only a difference of case is near */
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    expect_error_has(f.ctx, "error: input 'x' does not name a source tensor of the program; "
                            "did you mean 'X'? (its sources: A, X)");
    in[1].name = "Xs";
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    expect_error_has(f.ctx, "error: input 'Xs' does not name a source tensor of the program "
                            "(its sources: A, X)");
    in[1].name = "S";
    ck_assert_int_eq(fuse_runner_run(f.run, in, 2, &out), FUSE_E_ARG);
    expect_error_has(f.ctx, "error: input 'S' does not name a source tensor of the program: "
                            "it is computed by an equation (its sources: A, X)");
    fixture_close(&f);
}
END_TEST

/* a stale file of another shape beside a source the host binds is never read:
 * the program checks, and the runner takes the host's shape */
START_TEST(bound_source_ignores_a_stale_file)
{
    char *dir = temp_dir();
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float stale[12] = {0};
    fuse_tensor ts = {.dtype = FUSE_F32, .rank = 2, .shape = {3, 4}, .data = stale};
    ck_assert_int_eq(fuse_tensor_save(ctx, &ts, path_in(dir, "x.npy")), FUSE_OK);
    FILE *fp = fopen(path_in(dir, "p.fuse"), "w");
    ck_assert_ptr_nonnull(fp);
    fputs("X[i,j] = \"x.npy\"\nW[j] = const([1, 2, 3, 4, 5])\nY[i] = X[i,j] W[j]\nexport Y\n",
          fp);
    fclose(fp);
    ck_assert_msg(fuse_program_from_file(ctx, path_in(dir, "p.fuse"), &prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    float x[10];
    for (int i = 0; i < 10; i++)
        x[i] = (float)(i + 1);
    fuse_input in = f32_input("X", 2, 2, 5, x);
    ck_assert_msg(fuse_runner_new(prog, NULL, &in, 1, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_int_eq(fuse_runner_run(run, &in, 1, &out), FUSE_OK);
    const fuse_tensor *y = fuse_outputs_find(out, "Y");
    ck_assert_int_eq(y->shape[0], 2);
    for (int i = 0; i < 2; i++) {
        float want = 0;
        for (int j = 0; j < 5; j++)
            want += x[5 * i + j] * (float)(j + 1);
        ck_assert_float_eq_tol(((const float *)y->data)[i], want, 1e-4f);
    }
    fuse_outputs_free(out);
    fuse_runner_free(run);
    /* not bound, the stale file is the runner's error */
    ck_assert_int_eq(fuse_runner_new(prog, NULL, NULL, 0, &run), FUSE_E_SHAPE);
    expect_error_has(ctx, "size conflict for axis j");
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    unlink(path_in(dir, "x.npy"));
    unlink(path_in(dir, "p.fuse"));
    rmdir(dir);
    free(dir);
}
END_TEST

/* several named tensors into one .npz; a repeated name is refused */
START_TEST(tensors_save_npz)
{
    char *dir = temp_dir();
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    fuse_tensor ts[2] = {{.dtype = FUSE_F32, .rank = 1, .shape = {2}, .data = a},
                         {.dtype = FUSE_F32, .rank = 1, .shape = {3}, .data = b}};
    const char *names[2] = {"P[x=1]", "Q"};
    ck_assert_int_eq(fuse_tensors_save_npz(ctx, names, ts, 2, 0, path_in(dir, "t.npz")),
                     FUSE_OK);
    struct stat sb;
    ck_assert_int_eq(stat(path_in(dir, "t.npz"), &sb), 0);
    const char *twice[2] = {"Q", "Q"};
    ck_assert_int_eq(fuse_tensors_save_npz(ctx, twice, ts, 2, 1, path_in(dir, "u.npz")),
                     FUSE_E_ARG);
    expect_error_has(ctx, "the name 'Q' is given twice");
    ck_assert_int_eq(fuse_tensors_save_npz(ctx, NULL, ts, 2, 0, path_in(dir, "u.npz")),
                     FUSE_E_ARG);
    fuse_ctx_free(ctx);
    unlink(path_in(dir, "t.npz"));
    rmdir(dir);
    free(dir);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("misuse");
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, null_arguments_on_live_objects);
    tcase_add_test(tc, bad_inputs);
    tcase_add_test(tc, bad_config);
    tcase_add_test(tc, program_errors_have_positions);
    tcase_add_test(tc, runner_outlives_program);
    tcase_add_test(tc, borrowed_inputs);
    tcase_add_test(tc, outputs_into_host_memory);
    tcase_add_test(tc, config_of_an_older_host);
    tcase_add_test(tc, config_of_a_newer_host);
    tcase_add_test(tc, stats_and_timings_sizes);
    tcase_add_test(tc, program_tensors_before_running);
    tcase_add_test(tc, log_goes_to_the_callback);
    tcase_add_test(tc, log_gets_cache_warnings);
    tcase_add_test(tc, wrong_shape_input_names_both_shapes);
    tcase_add_test(tc, wrong_shape_input_at_runner_creation);
    tcase_add_test(tc, unknown_input_lists_the_sources);
    tcase_add_test(tc, bound_source_ignores_a_stale_file);
    tcase_add_test(tc, tensors_save_npz);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("threads");
    tcase_set_timeout(th, 120);
    tcase_add_test(th, threads_share_a_context);
    tcase_add_test(th, interrupt_stops_a_fixpoint);
    tcase_add_test(th, threads_sharing_a_runner_get_busy);
    tcase_add_test(th, busy_runner_refuses_every_call);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
