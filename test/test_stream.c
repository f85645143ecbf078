/*
 * test_stream.c: Check suite for streaming `*t` axes (SPEC §6.4): an RNN
 * recurrence over 5 steps against a C loop (API, with a new input per step, and
 * the CLI's --steps), seeding at t-1 (API "H@t-1", CLI --input H@t-1=FILE), a
 * two-step window seeded at t-1 and t-2, a streamed source read at t and t-1,
 * reset, exports giving the latest step of tensors written at *t and *t+1,
 * queries that do not advance time, fixpoint and demand modes within a step, and
 * the errors (an offset on the LHS without *, a read of a later step, a streaming
 * tensor read without its time index, unknown seeding offsets and names).
 */
#include "harness.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4      /* hidden size of the recurrence */
#define STEPS 5

static fuse_ctx *ctx;

static void ctx_setup(void) { ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK); }

static void ctx_teardown(void)
{
    fuse_ctx_free(ctx);
    ctx = NULL;
}

static fuse_input vec_input(const char *name, float *data, int64_t n)
{
    fuse_input in = {.name = name};
    in.tensor.dtype = FUSE_F32;
    in.tensor.rank = 1;
    in.tensor.shape[0] = n;
    in.tensor.data = data;
    return in;
}

static fuse_runner *compile(const char *text, const fuse_config *cfg, const fuse_input *in,
                            size_t n_in, fuse_program **prog)
{
    fuse_runner *run = NULL;
    ck_assert_msg(fuse_program_from_text(ctx, text, "stream.fuse", prog) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    ck_assert_msg(fuse_runner_new(*prog, cfg, in, n_in, &run) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    return run;
}

/* Runs one step and returns a copy of export `name` (n floats). */
static float *step(fuse_runner *run, const fuse_input *in, size_t n_in, const char *name,
                   int64_t n)
{
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_runner_run(run, in, n_in, &out) == FUSE_OK, "%s", fuse_ctx_error(ctx));
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->rank, 1);
    ck_assert_int_eq(t->shape[0], n);
    float *v = malloc(sizeof *v * (size_t)n);
    ck_assert_ptr_nonnull(v);
    memcpy(v, t->data, sizeof *v * (size_t)n);
    fuse_outputs_free(out);
    return v;
}

static void expect_vec(const char *what, const float *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-5 + 1e-5 * fabs(want[i]),
                      "%s[%d]: got %.8g, want %.8g", what, i, got[i], want[i]);
}

/* ---- the recurrence H_t = tanh(W H_{t-1} + X_t), computed here ---- */

static const char *RNN =
    "W[i,j] = \"w.npy\"\n"
    "X[i,*t] = \"x.npy\"\n"
    "H[i,*t] = tanh(W[i,j] H[j,*t-1] + X[i,*t])\n"
    "export H\n";

typedef struct Rnn {
    float w[N * N];
    float x[STEPS][N];
    float h0[N];
} Rnn;

static void rnn_data(Rnn *r)
{
    fill_random(r->w, N * N, 7, -0.6f, 0.6f);
    fill_random(&r->x[0][0], STEPS * N, 11, -1.0f, 1.0f);
    fill_random(r->h0, N, 13, -1.0f, 1.0f);
}

/* want[s] = H after step s + 1, starting from h0. */
static void rnn_expected(const Rnn *r, const float *h0, double want[STEPS][N])
{
    double h[N];
    for (int i = 0; i < N; i++)
        h[i] = h0 ? h0[i] : 0.0;
    for (int s = 0; s < STEPS; s++) {
        double next[N];
        for (int i = 0; i < N; i++) {
            double acc = r->x[s][i];
            for (int j = 0; j < N; j++)
                acc += (double)r->w[i * N + j] * h[j];
            next[i] = tanh(acc);
        }
        memcpy(h, next, sizeof h);
        memcpy(want[s], h, sizeof h);
    }
}

static fuse_input mat_input(const char *name, float *data)
{
    fuse_input in = vec_input(name, data, N);
    in.tensor.rank = 2;
    in.tensor.shape[1] = N;
    return in;
}

/* Runs the recurrence for STEPS steps (seeded at t-1 with h0 when not NULL) and
 * checks every step against the C loop. */
static void check_rnn(fuse_runner *run, Rnn *r, float *h0)
{
    double want[STEPS][N];
    rnn_expected(r, h0, want);
    for (int s = 0; s < STEPS; s++) {
        fuse_input in[3] = {mat_input("W", r->w), vec_input("X", r->x[s], N),
                            vec_input("H@t-1", h0, N)};
        float *h = step(run, in, s == 0 && h0 ? 3 : 2, "H", N);
        char what[32];
        snprintf(what, sizeof what, "H step %d", s + 1);
        expect_vec(what, h, want[s], N);
        free(h);
    }
}

START_TEST(test_rnn_five_steps)
{
    Rnn r;
    rnn_data(&r);
    fuse_program *prog;
    fuse_input in[2] = {mat_input("W", r.w), vec_input("X", r.x[0], N)};
    fuse_runner *run = compile(RNN, NULL, in, 2, &prog);
    check_rnn(run, &r, NULL);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

START_TEST(test_seed_and_reset)
{
    Rnn r;
    rnn_data(&r);
    fuse_program *prog;
    fuse_input in[2] = {mat_input("W", r.w), vec_input("X", r.x[0], N)};
    fuse_runner *run = compile(RNN, NULL, in, 2, &prog);
    check_rnn(run, &r, r.h0);
    /* reset forgets every step: the same inputs give step 1 from zeros again */
    ck_assert_int_eq(fuse_runner_reset(run), FUSE_OK);
    check_rnn(run, &r, NULL);
    /* and a seed after a reset starts a new sequence from it */
    ck_assert_int_eq(fuse_runner_reset(run), FUSE_OK);
    check_rnn(run, &r, r.h0);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* fuse_runner_run_into on a streaming program: H, the written step, is copied
 * out (its buffer is the stream's own), and the steps still follow each other. */
START_TEST(test_run_into_steps)
{
    Rnn r;
    rnn_data(&r);
    double want[STEPS][N];
    rnn_expected(&r, NULL, want);
    fuse_program *prog;
    fuse_input in[2] = {mat_input("W", r.w), vec_input("X", r.x[0], N)};
    fuse_runner *run = compile(RNN, NULL, in, 2, &prog);
    float *h = aligned_alloc(64, 64 * sizeof(float));
    ck_assert_ptr_nonnull(h);
    fuse_input out = vec_input("H", h, N);
    out.borrow = 1;
    for (int s = 0; s < STEPS; s++) {
        in[1] = vec_input("X", r.x[s], N);
        for (int i = 0; i < N; i++)
            h[i] = 99.0f;
        ck_assert_int_eq(fuse_runner_run_into(run, in, 2, &out, 1), FUSE_OK);
        char what[32];
        snprintf(what, sizeof what, "H step %d", s + 1);
        expect_vec(what, h, want[s], N);
    }
    free(h);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* The run trace names the time step each run computed (a query: the next one,
 * without moving time); a program without *t axes has none. */
START_TEST(test_trace_step)
{
    Rnn r;
    rnn_data(&r);
    fuse_program *prog;
    fuse_input in[2] = {mat_input("W", r.w), vec_input("X", r.x[0], N)};
    fuse_runner *run = compile(RNN, NULL, in, 2, &prog);
    char *text = NULL, want[32];
    for (int s = 0; s < 3; s++) {
        free(step(run, in, 2, "H", N));
        ck_assert_int_eq(fuse_runner_trace(run, 0, &text), FUSE_OK);
        snprintf(want, sizeof want, " step=%d\n", s);
        ck_assert_msg(strstr(text, want) != NULL, "%s", text);
        fuse_free(text);
    }
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_query(run, "H", NULL, in, 2, &out), FUSE_OK);
    fuse_outputs_free(out);
    ck_assert_int_eq(fuse_runner_trace(run, 1, &text), FUSE_OK);
    ck_assert_msg(strstr(text, "\"step\": 3") != NULL, "%s", text);
    fuse_free(text);
    fuse_runner_free(run);
    fuse_program_free(prog);
    run = compile("W[i,j] = \"w.npy\"\nV[i] = W[i,j]\nexport V\n", NULL, in, 1, &prog);
    free(step(run, in, 1, "V", N));
    ck_assert_int_eq(fuse_runner_trace(run, 0, &text), FUSE_OK);
    ck_assert_msg(strstr(text, "step=") == NULL, "%s", text);
    fuse_free(text);
    ck_assert_int_eq(fuse_runner_trace(run, 1, &text), FUSE_OK);
    ck_assert_msg(strstr(text, "\"step\": null") != NULL, "%s", text);
    fuse_free(text);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* A query evaluates the next step without storing it: time does not move. */
START_TEST(test_query_does_not_advance)
{
    Rnn r;
    rnn_data(&r);
    double want[STEPS][N];
    rnn_expected(&r, NULL, want);
    fuse_program *prog;
    fuse_input in[2] = {mat_input("W", r.w), vec_input("X", r.x[0], N)};
    fuse_runner *run = compile(RNN, NULL, in, 2, &prog);
    for (int s = 0; s < 2; s++) {
        in[1] = vec_input("X", r.x[s], N);
        free(step(run, in, 2, "H", N));
    }
    in[1] = vec_input("X", r.x[2], N);
    for (int rep = 0; rep < 2; rep++) {
        fuse_outputs *out = NULL;
        ck_assert_int_eq(fuse_runner_query(run, "H", NULL, in, 2, &out), FUSE_OK);
        expect_vec("queried H", fuse_outputs_find(out, "H")->data, want[2], N);
        fuse_outputs_free(out);
    }
    float *h = step(run, in, 2, "H", N);
    expect_vec("H step 3", h, want[2], N);
    free(h);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* Two earlier steps: Fibonacci, seeded at t-1 and t-2. */
START_TEST(test_two_step_window)
{
    const char *text = "One[i] = const([1.0, 1.0])\n"
                       "F[i,*t] = F[i,*t-1] + F[i,*t-2]\n"
                       "G[i,*t] = F[i,*t-2] One[i]\n"
                       "export F\nexport G\n";
    fuse_program *prog;
    fuse_runner *run = compile(text, NULL, NULL, 0, &prog);
    float f1[2] = {1, 2}, f2[2] = {0, 1};
    fuse_input seed[2] = {vec_input("F@t-1", f1, 2), vec_input("F@t-2", f2, 2)};
    double a[2] = {0, 1}, b[2] = {1, 2}; /* F at t-2, t-1 */
    for (int s = 0; s < 8; s++) {
        fuse_outputs *out = NULL;
        ck_assert_int_eq(fuse_runner_run(run, seed, s == 0 ? 2 : 0, &out), FUSE_OK);
        double f[2] = {a[0] + b[0], a[1] + b[1]};
        expect_vec("F", fuse_outputs_find(out, "F")->data, f, 2);
        expect_vec("G", fuse_outputs_find(out, "G")->data, a, 2);
        memcpy(a, b, sizeof a);
        memcpy(b, f, sizeof b);
        fuse_outputs_free(out);
    }
    ck_assert_double_eq(b[0], 34.0); /* the 8 steps went 1 2 3 5 8 13 21 34 */
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* A streamed source read at t and t-1: differences of the inputs. */
START_TEST(test_streamed_source)
{
    const char *text = "X[i,*t] = \"x.npy\"\n"
                       "D[i,*t] = X[i,*t] - X[i,*t-1]\n"
                       "export D\n";
    float xs[4][3] = {{1, 2, 3}, {2, 2, 5}, {0, -1, 5}, {4, 4, 4}};
    fuse_program *prog;
    fuse_input in = vec_input("X", xs[0], 3);
    fuse_runner *run = compile(text, NULL, &in, 1, &prog);
    for (int s = 0; s < 4; s++) {
        in = vec_input("X", xs[s], 3);
        float *d = step(run, &in, 1, "D", 3);
        double want[3];
        for (int i = 0; i < 3; i++)
            want[i] = xs[s][i] - (s ? xs[s - 1][i] : 0.0f);
        expect_vec("D", d, want, 3);
        free(d);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* Exports give each tensor's latest step, whether written at *t or *t+1 (SPEC
 * notes B §2.12's worked example, plus a tensor written at *t). */
START_TEST(test_exports_latest_step)
{
    const char *text = "Input[i]       = const([0.2,-0.1])\n"
                       "Weight[i,j]    = const([[0.5,-0.3],[0.1,0.4]])\n"
                       "Pre[i]         = Weight[i,j] Hidden[j,*t]\n"
                       "Sum[i]         = Pre[i] + Input[i]\n"
                       "Hidden[i,*t+1] = relu(Sum[i])\n"
                       "Twice[i,*t]    = 2 Hidden[i,*t]\n"
                       "export Hidden\nexport Twice\n";
    const double w[2][2] = {{0.5, -0.3}, {0.1, 0.4}}, x[2] = {0.2, -0.1};
    fuse_program *prog;
    fuse_runner *run = compile(text, NULL, NULL, 0, &prog);
    float ones[2] = {1, 1};
    double h[2] = {0, 0};
    for (int s = 0; s < 5; s++) {
        fuse_input seed = vec_input("Hidden@t", ones, 2);
        bool seeded = s == 3; /* a seed in the middle overrides the stored step */
        if (seeded)
            h[0] = h[1] = 1.0;
        fuse_outputs *out = NULL;
        ck_assert_int_eq(fuse_runner_run(run, &seed, seeded ? 1 : 0, &out), FUSE_OK);
        double twice[2] = {2 * h[0], 2 * h[1]}, next[2];
        for (int i = 0; i < 2; i++)
            next[i] = fmax(0.0, w[i][0] * h[0] + w[i][1] * h[1] + x[i]);
        expect_vec("Hidden", fuse_outputs_find(out, "Hidden")->data, next, 2);
        expect_vec("Twice", fuse_outputs_find(out, "Twice")->data, twice, 2);
        memcpy(h, next, sizeof h);
        fuse_outputs_free(out);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* Fixpoint within a step: H = 0.5 H + X + H_{t-1} converges to 2 (X + H_{t-1}). */
START_TEST(test_fixpoint_within_step)
{
    const char *text = "X[i] = const([1.0, -2.0])\n"
                       "H[i,*t] = 0.5 H[i,*t] + X[i] + H[i,*t-1]\n"
                       "export H\n";
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.mode = FUSE_MODE_FIXPOINT;
    cfg.max_iters = 200;
    fuse_program *prog;
    fuse_runner *run = compile(text, &cfg, NULL, 0, &prog);
    double h[2] = {0, 0};
    for (int s = 0; s < 3; s++) {
        h[0] = 2 * (1.0 + h[0]);
        h[1] = 2 * (-2.0 + h[1]);
        float *got = step(run, NULL, 0, "H", 2);
        for (int i = 0; i < 2; i++)
            ck_assert_msg(fabs(got[i] - h[i]) < 1e-3 * (1 + fabs(h[i])), "H[%d]=%g want %g", i,
                          got[i], h[i]);
        free(got);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* Demand mode: an export reading only H at t-1 still keeps H computed. */
START_TEST(test_demand_keeps_window)
{
    const char *text = "One[i] = const([1.0, 2.0])\n"
                       "H[i,*t] = H[i,*t-1] + One[i]\n"
                       "Y[i,*t] = 10 H[i,*t-1]\n"
                       "Unrelated[i] = One[i] One[i]\n"
                       "export Y\n";
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.mode = FUSE_MODE_DEMAND;
    fuse_program *prog;
    fuse_runner *run = compile(text, &cfg, NULL, 0, &prog);
    for (int s = 0; s < 4; s++) {
        float *y = step(run, NULL, 0, "Y", 2);
        double want[2] = {10.0 * s, 20.0 * s};
        expect_vec("Y", y, want, 2);
        free(y);
    }
    char *trace = NULL;
    ck_assert_int_eq(fuse_runner_trace(run, 0, &trace), FUSE_OK);
    ck_assert_msg(strstr(trace, "Unrelated skipped"), "%s", trace);
    fuse_free(trace);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* ---- errors ---- */

static void expect_program_error(const char *text, fuse_status want, const char *msg)
{
    fuse_program *prog = NULL;
    fuse_status st = fuse_program_from_text(ctx, text, "bad.fuse", &prog);
    ck_assert_msg(st == want, "status %s for:\n%s\n%s", fuse_status_name(st), text,
                  fuse_ctx_error(ctx));
    ck_assert_msg(strstr(fuse_ctx_error(ctx), msg), "'%s' not in: %s", msg,
                  fuse_ctx_error(ctx));
    ck_assert_msg(strstr(fuse_ctx_error(ctx), "bad.fuse:"), "no position: %s",
                  fuse_ctx_error(ctx));
    fuse_program_free(prog);
}

START_TEST(test_program_errors)
{
    expect_program_error("A[i] = const([1,2])\nB[t+1] = A[t]\nexport B\n", FUSE_E_SYNTAX,
                         "not allowed on the left-hand side");
    expect_program_error("A[i,*t] = const([1,2])\nB[i,*t] = A[i,*t+1]\nexport B\n",
                         FUSE_E_SHAPE, "a step cannot read the future");
    expect_program_error("A[i,*t] = const([1,2])\nB[i] = A[i]\nexport B\n", FUSE_E_SHAPE,
                         "index it with its time axis");
    expect_program_error("A[i] = const([1,2])\nB[i,*t] = A[i,*t]\nexport B\n", FUSE_E_SHAPE,
                         "'A' has no streaming axis");
    expect_program_error("A[i,*t] = const([1,2])\nA[i,*t+1] += const([1,2])\nexport A\n",
                         FUSE_E_SHAPE, "written at one offset");
    expect_program_error("A[i,*t] = const([1,2])\nB[i,*s] = A[i,*t-1]\nexport B\n",
                         FUSE_E_SHAPE, "one time axis");
    expect_program_error("A[i,*t] = const([1,2])\nB[i,*t] = A[i,*t-99999999999]\nexport B\n",
                         FUSE_E_SHAPE, "at most 4096 steps");
}
END_TEST

static void expect_seed_error(fuse_runner *run, const char *name, const char *msg)
{
    float v[2] = {1, 2};
    fuse_input in = vec_input(name, v, 2);
    fuse_outputs *out = NULL;
    fuse_status st = fuse_runner_run(run, &in, 1, &out);
    ck_assert_msg(st == FUSE_E_ARG, "%s: status %s", name, fuse_status_name(st));
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(fuse_ctx_error(ctx), msg), "%s: '%s' not in: %s", name, msg,
                  fuse_ctx_error(ctx));
}

START_TEST(test_seed_errors)
{
    const char *text = "One[i] = const([1.0, 2.0])\n"
                       "H[i,*t] = H[i,*t-1] + One[i]\n"
                       "export H\n";
    fuse_program *prog;
    fuse_runner *run = compile(text, NULL, NULL, 0, &prog);
    expect_seed_error(run, "H@t-2", "unknown seeding offset");
    expect_seed_error(run, "H@t+1", "unknown seeding offset");
    expect_seed_error(run, "H@t", "a seed sets an earlier step");
    expect_seed_error(run, "H@s-1", "time axis of H is *t");
    expect_seed_error(run, "One@t-1", "not a streaming tensor");
    expect_seed_error(run, "Nope@t-1", "not a tensor of the program");
    expect_seed_error(run, "H@t-", "written NAME@AXIS-K");
    expect_seed_error(run, "H", "seed an earlier step instead, like 'H@t-1'");
    float big[3] = {1, 2, 3};
    fuse_input in = vec_input("H@t-1", big, 3);
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, &in, 1, &out), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(fuse_ctx_error(ctx), "must have the shape of H"));
    /* the failed runs stored nothing: the first good step starts from zeros */
    float *h = step(run, NULL, 0, "H", 2);
    double want[2] = {1, 2};
    expect_vec("H after errors", h, want, 2);
    free(h);
    fuse_runner_free(run);
    fuse_program_free(prog);
}
END_TEST

/* ---- the CLI: --steps and --input H@t-1=FILE ---- */

START_TEST(test_cli_steps_and_seed)
{
    scratch_setup();
    Rnn r;
    rnn_data(&r);
    /* the CLI binds one X for every step */
    for (int s = 1; s < STEPS; s++)
        memcpy(r.x[s], r.x[0], sizeof r.x[0]);
    write_text("rnn.fuse", RNN);
    int64_t ws[2] = {N, N}, vs[1] = {N};
    write_npy("w.npy", 2, ws, r.w);
    write_npy("x.npy", 1, vs, r.x[0]);
    write_npy("h0.npy", 1, vs, r.h0);
    double want[STEPS][N];
    rnn_expected(&r, r.h0, want);
    Result res = run_cli("run", "rnn.fuse", "--steps", "5", "--input", "H@t-1=h0.npy", "--out",
                         "h.npy", NULL);
    expect_exit(&res, 0);
    result_free(&res);
    float *h = read_npy("h.npy", 1, vs);
    expect_vec("CLI H after 5 steps", h, want[STEPS - 1], N);
    free(h);
    rnn_expected(&r, NULL, want);
    res = run_cli("run", "rnn.fuse", "--steps", "3", "--out", "h3.npy", NULL);
    expect_exit(&res, 0);
    result_free(&res);
    h = read_npy("h3.npy", 1, vs);
    expect_vec("CLI H after 3 steps", h, want[2], N);
    free(h);
    res = run_cli("run", "rnn.fuse", "--input", "H@t-3=h0.npy", NULL);
    ck_assert_int_ne(res.code, 0);
    ck_assert_msg(strstr(res.err, "unknown seeding offset"), "%s", res.err);
    result_free(&res);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *api = tcase_create("api");
    tcase_add_checked_fixture(api, ctx_setup, ctx_teardown);
    tcase_set_timeout(api, 120);
    tcase_add_test(api, test_rnn_five_steps);
    tcase_add_test(api, test_seed_and_reset);
    tcase_add_test(api, test_query_does_not_advance);
    tcase_add_test(api, test_trace_step);
    tcase_add_test(api, test_run_into_steps);
    tcase_add_test(api, test_two_step_window);
    tcase_add_test(api, test_streamed_source);
    tcase_add_test(api, test_exports_latest_step);
    tcase_add_test(api, test_fixpoint_within_step);
    tcase_add_test(api, test_demand_keeps_window);
    tcase_add_test(api, test_program_errors);
    tcase_add_test(api, test_seed_errors);
    suite_add_tcase(s, api);
    TCase *cli = tcase_create("cli");
    tcase_add_unchecked_fixture(cli, root_setup, root_teardown);
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, test_cli_steps_and_seed);
    suite_add_tcase(s, cli);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
