/*
 * test_v2.c: Check suite for the structured ("v2") syntax: selecting it (API
 * options, `#!fuse v2`, the CLI's --parser), every construct against values
 * worked out by hand or by a naive loop here, the golden tests of notes C §8,
 * legacy programs giving the same results under both parsers, the diagnostics
 * with their file:line:col, and random mutations that must never crash.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fusejit.h"
#include "harness.h"

/* ---- running programs in process ---- */

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

static fuse_status compile(const char *text, fuse_syntax syntax, fuse_program **prog)
{
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.syntax = syntax;
    return fuse_program_from_text_opts(ctx, text, "t.fuse", &o, prog);
}

/* Runs text in `syntax` and returns its outputs (the program must compile). */
static fuse_outputs *run_text(const char *text, fuse_syntax syntax)
{
    fuse_program *prog = NULL;
    fuse_status st = compile(text, syntax, &prog);
    ck_assert_msg(st == FUSE_OK, "program failed: %s\n%s", fuse_ctx_error(ctx), text);
    fuse_runner *run = NULL;
    st = fuse_runner_new(prog, NULL, NULL, 0, &run);
    ck_assert_msg(st == FUSE_OK, "runner failed: %s", fuse_ctx_error(ctx));
    fuse_outputs *out = NULL;
    st = fuse_runner_run(run, NULL, 0, &out);
    ck_assert_msg(st == FUSE_OK, "run failed: %s", fuse_ctx_error(ctx));
    fuse_runner_free(run);
    fuse_program_free(prog);
    return out;
}

/* Checks export `name` of out: its element count and values. */
static void expect_values(const fuse_outputs *out, const char *name, const double *want,
                          int64_t n)
{
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_msg(t != NULL, "no export %s", name);
    int64_t count = 1;
    for (int s = 0; s < t->rank; s++)
        count *= t->shape[s];
    ck_assert_msg(count == n, "%s has %lld elements, want %lld", name, (long long)count,
                  (long long)n);
    const float *v = t->data;
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(isinf(want[i]) ? v[i] == want[i]
                                     : fabs(v[i] - want[i]) <= 1e-4 + 1e-4 * fabs(want[i]),
                      "%s[%lld] = %g, want %g", name, (long long)i, v[i], want[i]);
}

/* Runs a v2 program and checks one export. */
static void expect_v2(const char *text, const char *name, const double *want, int64_t n)
{
    fuse_outputs *out = run_text(text, FUSE_SYNTAX_V2);
    expect_values(out, name, want, n);
    fuse_outputs_free(out);
}

/* The program must fail under v2 with an error at line:col mentioning `what`. */
static void expect_error(const char *text, int line, int col, const char *what)
{
    fuse_program *prog = NULL;
    fuse_status st = compile(text, FUSE_SYNTAX_V2, &prog);
    const char *msg = fuse_ctx_error(ctx);
    ck_assert_msg(st != FUSE_OK, "accepted: %s", text);
    char where[64];
    snprintf(where, sizeof where, "t.fuse:%d:%d: error:", line, col);
    ck_assert_msg(strstr(msg, where) != NULL, "want %s in:\n%s", where, msg);
    ck_assert_msg(strstr(msg, what) != NULL, "want '%s' in:\n%s", what, msg);
}

/* ---- selection ---- */

START_TEST(test_v2_options_and_first_line)
{
    fuse_program *prog = NULL;
    /* '*' is not legacy syntax */
    ck_assert_int_eq(compile("x[i] = const([1,2])\ny[i] = x[i] * 2\n", FUSE_SYNTAX_LEGACY,
                             &prog), FUSE_E_SYNTAX);
    ck_assert_int_eq(compile("x[i] = const([1,2])\ny[i] = x[i] * 2\n", FUSE_SYNTAX_V2, &prog),
                     FUSE_OK);
    fuse_program_free(prog);
    /* the first line wins over the default */
    ck_assert_int_eq(fuse_program_from_text(ctx, "#!fuse v2\nx = 2 * 3\nexport x\n", "t.fuse",
                                            &prog), FUSE_OK);
    fuse_program_free(prog);
    ck_assert_int_eq(compile("#!fuse legacy\nx = 2 * 3\n", FUSE_SYNTAX_V2, &prog),
                     FUSE_E_SYNTAX);
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.syntax = (fuse_syntax)7;
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, "x = 1\n", NULL, &o, &prog), FUSE_E_ARG);
    o.syntax = FUSE_SYNTAX_V2;
    o.size = 3;
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, "x = 1\n", NULL, &o, &prog), FUSE_E_ARG);
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, "x = 1\nexport x\n", NULL, NULL, &prog),
                     FUSE_OK);
    fuse_program_free(prog);
}
END_TEST

/* ---- golden tests, notes C §8 ---- */

START_TEST(test_v2_golden_let_and_precedence)
{
    /* G1: t = 1 + 2 * 3 = 7 */
    expect_v2("x[i] = const([1,2,3])\nlet t = 1 + 2 * 3; A[i] = t * x[i]; export A\n", "A",
              (double[]){7, 14, 21}, 3);
    /* G2 and G3 */
    expect_v2("r = 2 - 3 - 4\nexport r\n", "r", (double[]){-5}, 1);
    expect_v2("r = 2 ** 3 ** 2\nexport r\n", "r", (double[]){512}, 1);
    expect_v2("r = -2 ** 2\nexport r\n", "r", (double[]){4}, 1);
    expect_v2("r = 1 ? 0 ? 3 : 4 : 5\nexport r\n", "r", (double[]){4}, 1);
    expect_v2("r = 8 / 2 / 2\nexport r\n", "r", (double[]){2}, 1);
    /* the same rules on tensors, where nothing folds: (-x) ** 2, a - b - c */
    expect_v2("x[i] = const([-2, 3])\ny[i] = -x[i] ** 2 - x[i] - 1\nexport y\n", "y",
              (double[]){4 + 2 - 1, 9 - 3 - 1}, 2);
    expect_v2("x[i] = const([2, 3])\ny[i] = 2 ** x[i] ** 2\nexport y\n", "y",
              (double[]){16, 512}, 2);
}
END_TEST

START_TEST(test_v2_golden_broadcast_by_name)
{
    const char *xy = "x[i,j] = const([[0,1,2],[3,4,5]])\n";
    char prog[512];
    /* G4 */
    snprintf(prog, sizeof prog, "%sy[i] = const([10,20])\nz[i,j] = x[i,j] + y[i]\n"
             "export z\n", xy);
    expect_v2(prog, "z", (double[]){10, 11, 12, 23, 24, 25}, 6);
    /* G5: the first operand lacks i */
    snprintf(prog, sizeof prog, "%sy[j] = const([100,200,300])\nz[i,j] = y[j] + x[i,j]\n"
             "export z\n", xy);
    expect_v2(prog, "z", (double[]){100, 201, 302, 103, 204, 305}, 6);
    /* an outer sum and an outer comparison */
    expect_v2("a[i] = const([1,2])\nb[j] = const([10,20,30])\nz[i,j] = a[i] + b[j]\n"
              "export z\n", "z", (double[]){11, 21, 31, 12, 22, 32}, 6);
    expect_v2("a[i] = const([1,25])\nb[j] = const([10,20,30])\nz[i,j] = a[i] > b[j]\n"
              "export z\n", "z", (double[]){0, 0, 0, 1, 1, 0}, 6);
}
END_TEST

/* G6 against a naive loop: z = a @ b + c. */
START_TEST(test_v2_golden_matmul_plus_bias)
{
    double a[2][3], b[3][4], want[8];
    char prog[1024];
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++)
            a[i][k] = i * 3 + k;
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++)
            b[k][j] = k * 4 + j;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            want[i * 4 + j] = 1;
            for (int k = 0; k < 3; k++)
                want[i * 4 + j] += a[i][k] * b[k][j];
        }
    snprintf(prog, sizeof prog,
             "a[i,k] = const([[0,1,2],[3,4,5]])\n"
             "b[k,j] = const([[0,1,2,3],[4,5,6,7],[8,9,10,11]])\n"
             "c[i,j] = const([[1,1,1,1],[1,1,1,1]])\n"
             "z[i,j] = a[i,k] * b[k,j] + c[i,j]\nexport z\n");
    expect_v2(prog, "z", want, 8);
}
END_TEST

START_TEST(test_v2_golden_reduce)
{
    const char *m = "M[i,j] = const([[0,1,2],[3,4,5]])\n";
    char prog[256];
    static const char *const ops[] = {"sum", "max", "mean", "min"};
    static const double want[4][3] = {{3, 5, 7}, {3, 4, 5}, {1.5, 2.5, 3.5}, {0, 1, 2}};
    for (int k = 0; k < 4; k++) { /* G7, and min */
        snprintf(prog, sizeof prog, "%sr[j] = reduce(%s, i) M[i,j]\nexport r\n", m, ops[k]);
        expect_v2(prog, "r", want[k], 3);
    }
    /* prod: signs and zeros, [[1,-2,3],[0,4,5]] */
    expect_v2("x[i,j] = const([[1,-2,3],[0,4,5]])\na[i] = reduce(prod, j) x[i,j]\n"
              "b[j] = reduce(prod, i) x[i,j] * 2 - 1\nexport a; export b\n", "b",
              (double[]){0 * 4 - 1, -2 * 2 * 4 * 2 - 1, 3 * 2 * 5 * 2 - 1}, 3);
    expect_v2("x[i,j] = const([[1,-2,3],[0,4,5]])\na[i] = reduce(prod, j) x[i,j]\nexport a\n",
              "a", (double[]){-6, 0}, 2);
    /* G8: the body is the whole product */
    expect_v2("x[i,d] = const([[0,1,2],[3,4,5]])\nn[i] = reduce(sum, d) x[i,d] * x[i,d]\n"
              "export n\n", "n", (double[]){5, 50}, 2);
    /* a body with a sum and a call: sum_j relu(M - 2) = [0, 1+2+3] */
    snprintf(prog, sizeof prog, "%sr[i] = reduce(sum, j) relu(M[i,j] - 2)\nexport r\n", m);
    expect_v2(prog, "r", (double[]){0, 1 + 2 + 3}, 2);
    /* both axes at once, and the body ends where '+' starts */
    snprintf(prog, sizeof prog, "%sr = reduce(max, i, j) M[i,j] + 1\nexport r\n", m);
    expect_v2(prog, "r", (double[]){6}, 1);
}
END_TEST

/* Runs v2 text under a runner configuration (NULL: the defaults) with inputs. */
static fuse_outputs *run_v2_with(const char *text, const fuse_config *cfg,
                                 const fuse_input *in, size_t n_in)
{
    fuse_program *prog = NULL;
    ck_assert_msg(compile(text, FUSE_SYNTAX_V2, &prog) == FUSE_OK, "program failed: %s\n%s",
                  fuse_ctx_error(ctx), text);
    fuse_runner *run = NULL;
    ck_assert_msg(fuse_runner_new(prog, cfg, in, n_in, &run) == FUSE_OK, "runner failed: %s",
                  fuse_ctx_error(ctx));
    fuse_outputs *out = NULL;
    ck_assert_msg(fuse_runner_run(run, in, n_in, &out) == FUSE_OK, "run failed: %s",
                  fuse_ctx_error(ctx));
    fuse_runner_free(run);
    fuse_program_free(prog);
    return out;
}

/* The float32 values of export `name`, which must hold n of them. */
static const float *export_values(const fuse_outputs *out, const char *name, int64_t n)
{
    const fuse_tensor *t = fuse_outputs_find(out, name);
    ck_assert_msg(t != NULL, "no export %s", name);
    int64_t count = 1;
    for (int s = 0; s < t->rank; s++)
        count *= t->shape[s];
    ck_assert_msg(count == n, "%s has %lld elements, want %lld", name, (long long)count,
                  (long long)n);
    return t->data;
}

/* Bit-exact, so the sign of a zero counts. */
static void expect_exact(const fuse_outputs *out, const char *name, const float *want, int64_t n)
{
    const float *v = export_values(out, name, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&v[i], &want[i], sizeof v[i]) == 0, "%s[%lld] = %a, want %a", name,
                      (long long)i, (double)v[i], (double)want[i]);
}

/* reduce(prod) multiplies and reduce(min) takes the minimum, exactly (they were
 * exp(sum log|x|) with a sign, and -max(-x), which made a zero minimum -0). */
START_TEST(test_v2_reduce_prod_min_exact)
{
    fuse_outputs *out = run_v2_with(
        "x[i] = const([-1.5, 2, -3, 0.5])\np = reduce(prod, i) x[i]\n"
        "y[i,j] = const([[1, -2, 3, -4], [0.5, -0.25, 8, 2], [-2, 0, 3, 5]])\n"
        "r[i] = reduce(prod, j) y[i,j]\nc[j] = reduce(prod, i) y[i,j]\n"
        "n = reduce(prod, i) -x[i]\nd = reduce(prod, i) 2 * x[i]\n"
        "export p; export r; export c; export n; export d\n", NULL, NULL, 0);
    expect_exact(out, "p", (float[]){4.5f}, 1);
    /* a zero factor gives zero (its sign, -0 here, does not survive the copy of
     * the reduction's temporary into r, a sum that starts at +0) */
    const float *r = export_values(out, "r", 3);
    ck_assert_msg(r[0] == 24 && r[1] == -2 && r[2] == 0, "r = %a %a %a", (double)r[0],
                  (double)r[1], (double)r[2]);
    expect_exact(out, "c", (float[]){-1, 0, 72, -40}, 4);
    /* the body's number multiplies every factor: prod(-x) and prod(2x) = 16 prod(x) */
    expect_exact(out, "n", (float[]){4.5f}, 1);
    expect_exact(out, "d", (float[]){72}, 1);
    fuse_outputs_free(out);

    /* 40 factors of 1.1f: what a double loop gives, rounded once */
    char text[512] = "x[i] = const([1.1";
    for (int k = 1; k < 40; k++)
        strcat(text, ", 1.1");
    strcat(text, "])\np = reduce(prod, i) x[i]\nexport p\n");
    double want = 1;
    for (int k = 0; k < 40; k++)
        want *= (double)1.1f;
    out = run_v2_with(text, NULL, NULL, 0);
    expect_exact(out, "p", (float[]){(float)want}, 1);
    fuse_outputs_free(out);

    /* min: a zero minimum is +0; a negated body; NaN skipped as by max */
    out = run_v2_with("z[i] = const([3, 0, 2])\nm = reduce(min, i) z[i]\n"
                      "w[i,j] = const([[3, -1, 2], [0, 5, 4]])\nr[i] = reduce(min, j) w[i,j]\n"
                      "n[j] = reduce(min, i) -w[i,j]\n"
                      "q[i] = const([4, -1, 9])\nlo = reduce(min, i) sqrt(q[i])\n"
                      "hi = reduce(max, i) sqrt(q[i])\n"
                      "export m; export r; export n; export lo; export hi\n", NULL, NULL, 0);
    expect_exact(out, "m", (float[]){0}, 1);
    expect_exact(out, "r", (float[]){-1, 0}, 2);
    expect_exact(out, "n", (float[]){-3, -5, -4}, 3);
    expect_exact(out, "lo", (float[]){2}, 1);
    expect_exact(out, "hi", (float[]){3}, 1);
    fuse_outputs_free(out);

    /* an empty reduced axis: a product is 1; min, like max and every other
     * reduction of nothing, 0 */
    float none[1] = {0};
    fuse_input e = {.name = "e", .tensor = {.dtype = FUSE_F32, .rank = 2, .shape = {2, 0},
                                           .data = none}};
    out = run_v2_with("e[i,j] = \"e.npy\"\np[i] = reduce(prod, j) e[i,j]\n"
                      "m[i] = reduce(min, j) e[i,j]\nexport p; export m\n", NULL, &e, 1);
    expect_exact(out, "p", (float[]){1, 1}, 2);
    expect_exact(out, "m", (float[]){0, 0}, 2);
    fuse_outputs_free(out);

    /* Monte Carlo: a product is computed exactly, a min from the samples */
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.projection = FUSE_PROJECTION_MONTE_CARLO;
    cfg.samples = 3;
    cfg.seed = 7;
    out = run_v2_with("x[i] = const([5, 3, 7, 4, 6, 8, 9, 2])\np = reduce(prod, i) x[i]\n"
                      "m = reduce(min, i) x[i]\nexport p; export m\n", &cfg, NULL, 0);
    expect_exact(out, "p", (float[]){362880}, 1);
    float m = export_values(out, "m", 1)[0];
    ck_assert_msg(m >= 2 && m <= 9 && m == floorf(m), "sampled min %g", (double)m);
    fuse_outputs_free(out);
}
END_TEST

START_TEST(test_v2_golden_case_guard_let)
{
    /* G9: the first true branch wins */
    expect_v2("c1[i] = const([1,1,0,0])\nc2[i] = const([1,0,1,0])\n"
              "r[i] = case { c1[i] -> 10; c2[i] -> 20; default -> 30 }\nexport r\n", "r",
              (double[]){10, 10, 20, 30}, 4);
    /* newlines separate branches too; no default gives 0 */
    expect_v2("c[i] = const([0,2])\nr[i] = case {\n  c[i] -> 5\n}\nexport r\n", "r",
              (double[]){0, 5}, 2);
    /* G11: guards */
    expect_v2("r[u] = const([1,0])\na[u] = const([1,2])\nb[u] = const([10,20])\n"
              "s[u] when r[u] = a[u]\ns[u] when !r[u] = b[u]\nexport s\n", "s",
              (double[]){1, 20}, 2);
    /* a guard of value 2 selects, it does not scale */
    expect_v2("g[u] = const([2,0])\na[u] = const([3,4])\ns[u] when g[u] = a[u] + 1\n"
              "export s\n", "s", (double[]){4, 0}, 2);
    /* G12: let transposes like an equation */
    expect_v2("M[i,j] = const([[0,1,2],[3,4,5]])\nlet B[j,i] = M[i,j]\nexport B\n", "B",
              (double[]){0, 3, 1, 4, 2, 5}, 6);
    /* G15: contributions add up */
    expect_v2("x[i] = const([1,2])\nA[i] = x[i]; A[i] = x[i]\nexport A\n", "A",
              (double[]){2, 4}, 2);
    /* G20: a block over several lines */
    expect_v2("x[i] = const([1,2])\n{\n  let t = 2\n  A[i] = t * x[i]\n}\nexport A\n", "A",
              (double[]){2, 4}, 2);
}
END_TEST

START_TEST(test_v2_golden_functions)
{
    /* G10: sim = Emb Emb^T; score = row sums of sim where mask */
    expect_v2("axis i; axis j; axis d\n"
              "fn dot(a[d], b[d]) -> s { s = a[d] * b[d] }\n"
              "Emb[i,d] = const([[1,0],[0,1],[1,1]])\nmask[i] = const([1,0,1])\n"
              "sim[i,j] = dot(Emb[i,d], Emb[j,d])\n"
              "score[i] = reduce(sum, j) select(mask[i], sim[i,j], 0)\nexport score\n",
              "score", (double[]){2, 0, 4}, 3);
    /* G13: the batch axis i is carried, d is reduced after the call */
    expect_v2("fn sq(a[d]) -> s { s[d] = a[d] * a[d] }\n"
              "M[i,d] = const([[1,2,3],[4,5,6]])\ny[i] = reduce(sum, d) sq(M[i,d])\n"
              "export y\n", "y", (double[]){14, 77}, 2);
    /* G14 against a naive loop: y = 2 A B^T */
    double A[2][3] = {{1, 2, 3}, {4, 5, 6}}, B[4][3] = {{1, 0, 2}, {0, 1, 0}, {3, 0, 1},
                                                        {1, 1, 1}};
    double want[8];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            want[i * 4 + j] = 0;
            for (int d = 0; d < 3; d++)
                want[i * 4 + j] += 2 * A[i][d] * B[j][d];
        }
    expect_v2("fn f(a[x], b[x]) -> r {\n  t[x] = a[x] * 2\n  r = t[x] * b[x]\n}\n"
              "A[i,d] = const([[1,2,3],[4,5,6]])\n"
              "B[j,d] = const([[1,0,2],[0,1,0],[3,0,1],[1,1,1]])\n"
              "y[i,j] = f(A[i,d], B[j,d])\nexport y\n", "y", want, 8);
    /* a transpose through use-site indices, an expression argument, two calls */
    expect_v2("fn tr(a[x,y]) -> r { r[y,x] = a[x,y] }\nM[i,j] = const([[1,2],[3,4]])\n"
              "T[j,i] = tr(M[i,j] * 10)\nU[i,j] = tr(M[i,j]) + tr(M[i,j])\n"
              "export T; export U\n", "T", (double[]){10, 30, 20, 40}, 4);
    /* calls nest, and locals do not clash between calls */
    expect_v2("fn dbl(a[x]) -> r { t[x] = a[x] + a[x]; r[x] = t[x] }\n"
              "fn quad(a[x]) -> r { r[x] = dbl(dbl(a[x])) }\nv[i] = const([1,2])\n"
              "y[i] = quad(v[i]) + dbl(v[i])\nexport y\n", "y", (double[]){6, 12}, 2);
}
END_TEST

START_TEST(test_v2_golden_builtins_logic_params)
{
    /* G16: softmax of [1,2,3] and of [1,1,1] */
    double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0), z = e1 + e2 + e3;
    expect_v2("x[i,j] = const([[1,2,3],[1,1,1]])\ny[i,j] = @softmax(x[i,j], axis=j)\n"
              "export y\n", "y", (double[]){e1 / z, e2 / z, e3 / z, 1.0 / 3, 1.0 / 3, 1.0 / 3},
              6);
    /* G17 */
    expect_v2("x[i,j] = const([[1,5,3],[4,2,0]])\ny[i] = max(x[i,j], axis=j)\nexport y\n", "y",
              (double[]){5, 4}, 2);
    /* G18 */
    expect_v2("y = 1 && 0\nexport y\n", "y", (double[]){0}, 1);
    expect_v2("y = 0 || 3\nexport y\n", "y", (double[]){1}, 1);
    expect_v2("y = !5\nexport y\n", "y", (double[]){0}, 1);
    /* axis n = 4 sizes an axis nothing else gives a size */
    expect_v2("axis n = 2 + 2\ny[n] = 1\nexport y\n", "y", (double[]){1, 1, 1, 1}, 4);
    /* G19 without a host override; const folds from a param */
    expect_v2("param N = 4\nconst M = 2 * N\nv[i] = const([1,2,3])\ny[i] = v[i] * N + M\n"
              "export y\n", "y", (double[]){12, 16, 20}, 3);
    /* @layer_norm of [1,3] is [-1,1] (eps aside) */
    expect_v2("x[i,d] = const([[1,3]])\ny[i,d] = @layer_norm(x[i,d], axis=d, eps=0)\n"
              "export y\n", "y", (double[]){-1, 1}, 2);
}
END_TEST

/* Every operator on tensors (nothing folds), each against C on the same values. */
START_TEST(test_v2_operators_on_tensors)
{
    static const char *const ops[] = {"+", "-", "*", "/", "**", "<", "<=", ">", ">=", "==",
                                      "!=", "&&", "||"};
    const double a[4] = {0, 1, 2, 3}, b[4] = {2, 1, 0, 0.5};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        char prog[256];
        snprintf(prog, sizeof prog, "a[i] = const([0,1,2,3])\nb[i] = const([2,1,0,0.5])\n"
                 "y[i] = a[i] %s b[i]\nexport y\n", ops[k]);
        double want[4];
        for (int i = 0; i < 4; i++) {
            double x = a[i], y = b[i];
            switch (k) {
            case 0: want[i] = x + y; break;
            case 1: want[i] = x - y; break;
            case 2: want[i] = x * y; break;
            case 3: want[i] = y != 0 ? x / y : (x == 0 ? NAN : INFINITY); break;
            case 4: want[i] = pow(x, y); break;
            case 5: want[i] = x < y; break;
            case 6: want[i] = x <= y; break;
            case 7: want[i] = x > y; break;
            case 8: want[i] = x >= y; break;
            case 9: want[i] = x == y; break;
            case 10: want[i] = x != y; break;
            case 11: want[i] = x != 0 && y != 0; break;
            default: want[i] = x != 0 || y != 0; break;
            }
        }
        expect_v2(prog, "y", want, 4);
    }
    /* unary minus, not, and comparisons binding looser than + */
    expect_v2("a[i] = const([0,1,2])\ny[i] = !a[i] + -a[i]\nz[i] = a[i] + 1 > 2\n"
              "export y; export z\n", "y", (double[]){1, -1, -2}, 3);
    expect_v2("a[i] = const([0,1,2])\nz[i] = a[i] + 1 > 2 && 1\nexport z\n", "z",
              (double[]){0, 0, 1}, 3);
}
END_TEST

START_TEST(test_v2_conditionals_and_projection)
{
    /* select and ?: broadcast by name: mask on i, values on (i,j) */
    expect_v2("m[i] = const([1,0])\nv[i,j] = const([[1,2],[3,4]])\n"
              "y[i,j] = select(m[i], v[i,j], -v[i,j])\nz[i,j] = m[i] ? v[i,j] : 0\n"
              "export y; export z\n", "y", (double[]){1, 2, -3, -4}, 4);
    /* implicit projection over a top-level factor; division keeps the numerator's */
    expect_v2("s[i,j] = const([[1,2],[3,4]])\nw[j] = const([1,1])\n"
              "score[i] = s[i,j] * w[j] / 4\nexport score\n", "score", (double[]){0.75, 1.75},
              2);
    /* the explicit reduce the nonlinear case needs */
    expect_v2("W[i,j] = const([[1,-2],[3,4]])\nx[j] = const([1,1])\n"
              "y[i] = relu(reduce(sum, j) W[i,j] * x[j])\nexport y\n", "y", (double[]){0, 7},
              2);
    /* a juxtaposed product in an argument keeps its legacy contraction, even in a
     * v2 statement: relu(W x) * 2 with W x = [-1, -1] */
    expect_v2("W[i,j] = const([[1,2],[3,4]])\nx[j] = const([1,-1])\n"
              "y[i] = relu(W[i,j] x[j]) * 2 + relu(x[i])\nexport y\n", "y",
              (double[]){0 + 1, 0 + 0}, 2);
    /* newlines inside parentheses and brackets are blanks */
    expect_v2("x[i] = const([1,\n 2])\ny[i] = (x[i]\n + 1)\nexport y\n", "y",
              (double[]){2, 3}, 2);
}
END_TEST

/* G19 with a host value: param N replaced before lowering; errors for bad values. */
START_TEST(test_v2_params_from_host)
{
    const char *text = "param N = 4\nparam K: int = 2\nconst M = N * K\n"
                       "v[i] = const([1,2,3])\ny[i] = v[i] * N + M\nexport y\n";
    fuse_param ps[2] = {{"N", 10}, {"K", 3}};
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.syntax = FUSE_SYNTAX_V2;
    o.params = ps;
    o.n_params = 2;
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, text, "t.fuse", &o, &prog), FUSE_OK);
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_runner_new(prog, NULL, NULL, 0, &run), FUSE_OK);
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    expect_values(out, "y", (double[]){40, 50, 60}, 3); /* 10 v + 30 */
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    ps[1].value = 2.5; /* K is an int */
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, text, "t.fuse", &o, &prog), FUSE_E_SHAPE);
    ck_assert(strstr(fuse_ctx_error(ctx), "t.fuse:2:7: error: param 'K' is declared int"));
    ps[1] = (fuse_param){"Q", 1};
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, text, "t.fuse", &o, &prog), FUSE_E_SHAPE);
    ck_assert(strstr(fuse_ctx_error(ctx), "declares no param 'Q'"));
    /* a param without a default needs a value */
    o.n_params = 1;
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, "param N\nparam P\ny = N + P\n", "t.fuse",
                                                 &o, &prog), FUSE_E_SHAPE);
    ck_assert(strstr(fuse_ctx_error(ctx), "t.fuse:2:7: error: param 'P' has no value"));
}
END_TEST

/* ---- legacy programs: the same results under both parsers ---- */

static const char *const LEGACY[] = {
    "A[i,k] = const([[1,2],[3,4]])\nB[k,j] = const([[5,6],[7,8]])\n"
    "C[i,j] = A[i,k] B[k,j] + A[i,j]\nC[i,j] += 1\nexport C\n",
    "X[i,j] = const([[1,5],[7,2]])\nM[i] max= X[i,j]\nV[i] avg= X[i,j]\nexport M\nexport V\n",
    "S(x, y) = const([[1,0],[0,1]])\nP(y, z) = const([[0,1],[1,1]])\n"
    "A(x, z) = S(x, y) P(y, z)\nexport A\n",
    "X[i] = const([1,2,3,4])\nE[i] = X[i] even(i)\nO[i] = X[i] odd(axis=i)\n"
    "D[i] = X[i+1] - X[i]\nH[1:3] = X[1:3]\nexport E\nexport O\nexport D\nexport H\n",
    "X[i,j] = const([[1,2],[3,4]])\nY[i,j.] = softmax(X[i,j])\nZ[i] = sig(X[i,j] X[i,j], "
    "T=1.0)\nexport Y\nexport Z\n",
    "W = const(2)\nX[i] = const([1, -2])\nY[i] = relu(W X[i]) - (X[i] + 1) 3\nexport Y\n",
    "G = const(0.5)\nX[i] = const([2,4])\nY[i] = G (1 + X[i])\nexport Y\n",
};

START_TEST(test_v2_legacy_same_results)
{
    for (size_t k = 0; k < sizeof LEGACY / sizeof LEGACY[0]; k++) {
        fuse_outputs *a = run_text(LEGACY[k], FUSE_SYNTAX_LEGACY);
        fuse_outputs *b = run_text(LEGACY[k], FUSE_SYNTAX_V2);
        ck_assert_int_eq(fuse_outputs_count(a), fuse_outputs_count(b));
        for (size_t i = 0; i < fuse_outputs_count(a); i++) {
            const fuse_tensor *x = fuse_outputs_tensor(a, i);
            const fuse_tensor *y = fuse_outputs_find(b, fuse_outputs_name(a, i));
            ck_assert_msg(y && x->rank == y->rank, "program %zu: %s", k,
                          fuse_outputs_name(a, i));
            int64_t n = 1;
            for (int s = 0; s < x->rank; s++) {
                ck_assert_int_eq(x->shape[s], y->shape[s]);
                n *= x->shape[s];
            }
            ck_assert_msg(memcmp(x->data, y->data, (size_t)n * sizeof(float)) == 0,
                          "program %zu: %s differs", k, fuse_outputs_name(a, i));
        }
        fuse_outputs_free(a);
        fuse_outputs_free(b);
    }
}
END_TEST

/* A v2 program and its legacy spelling lower to the same IR: the second one's
 * kernels come from the context's cache, none is compiled again. */
START_TEST(test_v2_shares_compiled_code_with_legacy)
{
    const char *legacy = "A[i,k] = const([[1,2],[3,4]])\nB[k,j] = const([[5,6],[7,8]])\n"
                         "C[i,j] = A[i,k] B[k,j] - A[i,j]\nexport C\n";
    const char *v2 = "A[i,k] = const([[1,2],[3,4]]); B[k,j] = const([[5,6],[7,8]])\n"
                     "let C[i,j] = A[i,k] * B[k,j] - A[i,j]\nexport C\n";
    fuse_ctx_free(ctx);
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.no_cache = 1; /* the in-process cache only */
    fuse_stats st[2];
    for (int k = 0; k < 2; k++) {
        fuse_program *prog = NULL;
        ck_assert_int_eq(compile(k ? v2 : legacy, k ? FUSE_SYNTAX_V2 : FUSE_SYNTAX_LEGACY,
                                 &prog), FUSE_OK);
        fuse_runner *run = NULL;
        ck_assert_int_eq(fuse_runner_new(prog, &cfg, NULL, 0, &run), FUSE_OK);
        st[k] = (fuse_stats){.size = sizeof st[k]};
        ck_assert_int_eq(fuse_ctx_stats(ctx, &st[k]), FUSE_OK);
        fuse_runner_free(run);
        fuse_program_free(prog);
    }
    ck_assert_uint_gt(st[0].groups_compiled, 0);
    ck_assert_uint_eq(st[1].groups_compiled, st[0].groups_compiled);
    ck_assert_uint_gt(st[1].memory_hits + st[1].groups_cached,
                      st[0].memory_hits + st[0].groups_cached);
}
END_TEST

/* ---- diagnostics (notes C §6.2): each positioned ---- */

START_TEST(test_v2_diagnostics_syntax)
{
    /* `1 y` is a (legacy) product, so the error is at the second '=' */
    expect_error("x = 1 y = 2\n", 1, 9, "expected an operator, ';' or the end of the line");
    expect_error("x[i] = const([1])\ny[i] = x[i] +\n", 2, 14, "expected an expression");
    expect_error("y = (1 + 2\n", 1, 5, "'(' is never closed");
    expect_error("let = 3\n", 1, 1, "reserved word");
    expect_error("y = 3 \xc3\xa9 2\n", 1, 7, "unexpected character");
    expect_error("y = 3 $ 2\n", 1, 7, "found '$'");
    expect_error("x[i] = const([1])\ny[i+1] = x[i]\n", 2, 3, "not allowed on the left-hand "
                 "side");
    expect_error("{\n  param N = 3\n}\n", 2, 3, "only allowed at the top level");
    expect_error("x[i] = const([1])\ny = case { }\n", 2, 10, "at least one");
    expect_error("y = +x\n", 1, 6, "unary plus");
    char deep[1200] = "y = ";
    for (int i = 0; i < 300; i++)
        strcat(deep, "(");
    strcat(deep, "1\n");
    fuse_program *prog = NULL;
    ck_assert_int_eq(compile(deep, FUSE_SYNTAX_V2, &prog), FUSE_E_SYNTAX);
    ck_assert(strstr(fuse_ctx_error(ctx), "nested too deeply") != NULL);
}
END_TEST

START_TEST(test_v2_diagnostics_semantic)
{
    const char *x = "x[i] = const([1,2])\n";
    char p[512];
#define ERR(text, line, col, what) \
    (snprintf(p, sizeof p, "%s%s", x, text), expect_error(p, line, col, what))
    ERR("y = reduce(median, i) x[i]\n", 2, 5, "unknown reduction 'median'");
    ERR("y = reduce(sum, j) x[i]\n", 2, 17, "reduce axis 'j' does not occur");
    ERR("W[i,j] = const([[1]])\ny[i] = sig(W[i,j] * x[j])\n", 3, 8,
        "use reduce(sum, j)");
    ERR("y[i] = select(x[i], 1)\n", 2, 8, "select takes exactly 3");
    ERR("y[i] = @foo(x[i])\n", 2, 8, "unknown macro '@foo'");
    ERR("y[i] = foo(x[i] * 2)\n", 2, 8, "unknown function 'foo'");
    ERR("y[i] = sigmoid(x[i])\n", 2, 8, "unknown function 'sigmoid'; did you mean 'sig'? "
        "(sig(x, T): logistic sigmoid; T=0 gives a hard step)");
    ERR("y[i] = relu(x[i], x[i], x[i])\n", 2, 8, "positional argument");
    ERR("y[i] = softmax(x[i], axis=i, axis=i)\n", 2, 30, "duplicate keyword argument");
    ERR("const c = 1\nconst c = 2\n", 3, 7, "declared twice");
    ERR("const c = x[i]\n", 2, 11, "not a constant expression");
    ERR("const c = 1\nc[i] = x[i]\n", 3, 1, "is a constant");
    ERR("param N\ny = N\n", 2, 7, "has no value");
    ERR("axis n = 0\n", 2, 10, "must be a positive integer");
    ERR("axis n = 2\naxis n\n", 3, 6, "declared twice");
    ERR("axis n = 4\nz[n] = x[n] * 2\n", 3, 10, "size conflict for axis n: 4 (from its axis "
        "declaration at t.fuse:2:1)");
    ERR("__t[i] = x[i]\n", 2, 1, "reserved");
#undef ERR
}
END_TEST

START_TEST(test_v2_diagnostics_functions)
{
    const char *x = "x[i] = const([1,2])\n";
    char p[512];
#define ERR(text, line, col, what) \
    (snprintf(p, sizeof p, "%s%s", x, text), expect_error(p, line, col, what))
    /* G22, G24 and mutual recursion with its cycle */
    ERR("fn bad(a[x], b[x]) -> y { y = a[x] * b[x] }\nE[i,d] = const([[1]])\n"
        "F[i,e] = const([[1]])\nz[i,j] = bad(E[i,d], F[i,e])\n", 5, 22, "bound to both");
    ERR("fn f(a[x]) -> r { r[x] = f(a[x]) }\ny[i] = f(x[i])\n", 2, 26,
        "recursive function 'f' (cycle f -> f)");
    ERR("fn f(a[x]) -> r { r[x] = g(a[x]) }\nfn g(a[x]) -> r { r[x] = f(a[x]) }\n"
        "y[i] = f(x[i])\n", 3, 26, "cycle f -> g -> f");
    ERR("fn f(a[x]) -> r { r[x] = a[x] }\ny[i] = f(x[i], x[i])\n", 3, 8,
        "takes 1 argument, got 2");
    ERR("fn f(a[x]) -> r { r[x] = a[x] }\ny[i] = f(a=x[i])\n", 3, 10, "no keyword");
    ERR("fn f(a[x,y]) -> r { r[x] = a[x,y] }\ny[i] = f(x[i])\n", 3, 10, "has 1 axes");
    ERR("fn f(a[x]) { r[x] = a[x] }\n", 2, 4, "declares no return value");
    ERR("fn f(a[x]) -> r { t[x] = a[x] }\n", 2, 15, "never assigned");
    ERR("fn f(a[x], a[y]) -> r { r[x] = a[x] }\n", 2, 12, "declared twice");
    ERR("fn f(a[x]) -> r { r[x] = a[x]; export r }\n", 2, 32, "only allowed at the top");
#undef ERR
}
END_TEST

/* Random edits of valid programs: a status and a positioned message, never a crash. */
START_TEST(test_v2_mutations_never_crash)
{
    static const char *const seeds[] = {
        "x[i,j] = const([[0,1],[2,3]])\nlet t[i] = reduce(max, j) x[i,j] * 2\n"
        "y[i] = t[i] > 3 ? 1 : -1\nexport y\n",
        "fn f(a[x], b[x]) -> r { t[x] = a[x] * 2; r = t[x] * b[x] }\n"
        "A[i,d] = const([[1]])\ny[i] = f(A[i,d], A[i,d])\n",
        "c[i] = const([1,0])\nr[i] = case { c[i] -> 1; default -> @softmax(c[i], axis=i) }\n"
        "s[i] when !c[i] && c[i] <= 2 = c[i] ** 2 / 3\n{ let q = 1; z = q }\n",
    };
    static const char *const bits[] = {"(", ")", "[", "]", "{", "}", ";", "\n", "*", "**",
                                       "->", "?", ":", "@", ",", "=", "+=", "reduce(sum, i)",
                                       "case {", "default", "let", "fn", "when", "!", "&&",
                                       "\"s\"", "'", ".", "*t", "::", "param", "#", "1e"};
    unsigned seed = 12345;
    for (int k = 0; k < 400; k++) {
        char text[1024];
        snprintf(text, sizeof text, "%s", seeds[k % 3]);
        for (int m = 0; m < 3; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t len = strlen(text), at = (seed >> 8) % (len + 1);
            const char *bit = bits[(seed >> 20) % (sizeof bits / sizeof bits[0])];
            if (len + strlen(bit) + 1 >= sizeof text)
                break;
            if ((seed >> 4) & 1) { /* insert */
                memmove(text + at + strlen(bit), text + at, len - at + 1);
                memcpy(text + at, bit, strlen(bit));
            } else if (at < len) { /* delete one character */
                memmove(text + at, text + at + 1, len - at);
            }
        }
        fuse_program *prog = NULL;
        fuse_status st = compile(text, FUSE_SYNTAX_V2, &prog);
        if (st == FUSE_OK) {
            fuse_program_free(prog);
            continue;
        }
        ck_assert_msg(st == FUSE_E_SYNTAX || st == FUSE_E_SHAPE || st == FUSE_E_UNSUPPORTED,
                      "status %d for:\n%s", (int)st, text);
        ck_assert_msg(strstr(fuse_ctx_error(ctx), "t.fuse:") != NULL, "no position:\n%s\n%s",
                      fuse_ctx_error(ctx), text);
    }
}
END_TEST

/* ---- the CLI ---- */

START_TEST(test_v2_cli_parser_option)
{
    write_text("p.fuse", "x[i] = const([1,2])\ny[i] = x[i] * 3\nexport y\n");
    Result r = run_cli("run", spath("p.fuse"), "--parser", "v2", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "[3. 6.]") != NULL, "%s", r.out);
    result_free(&r);
    r = run_cli("check", spath("p.fuse"), NULL); /* legacy by default */
    expect_exit(&r, 3);
    result_free(&r);
    r = run_cli("check", spath("p.fuse"), "--parser=v2", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    r = run_cli("explain", spath("p.fuse"), "--parser", "bogus", NULL);
    expect_exit(&r, 2);
    result_free(&r);
    write_text("q.fuse", "#!fuse v2\nx[i] = const([1,2])\ny[i] = x[i] ** 2\nexport y\n");
    r = run_cli("run", spath("q.fuse"), NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "[1. 4.]") != NULL, "%s", r.out);
    result_free(&r);
    r = run_cli("emit", spath("q.fuse"), "--what=ast", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "call pow") != NULL, "%s", r.out);
    result_free(&r);
    write_text("n.fuse", "param N = 2\nx[i] = const([1,2])\ny[i] = x[i] * N\nexport y\n");
    r = run_cli("run", spath("n.fuse"), "--parser", "v2", "--param", "N=5", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "[ 5. 10.]") != NULL, "%s", r.out);
    result_free(&r);
    r = run_cli("run", spath("n.fuse"), "--parser", "v2", "--param", "N", NULL);
    expect_exit(&r, 2);
    result_free(&r);
    r = run_cli("help", "run", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "--parser") && strstr(r.out, "--param"), "%s", r.out);
    result_free(&r);
}
END_TEST

/* The REPL: `:set parser v2`, `:set param`, and a block over several lines. */
START_TEST(test_v2_repl)
{
    write_text("s.txt", ":set parser v2\n:set param N=3\nparam N = 1\nx[i] = const([1,2])\n"
                        "{\n  let y[i] = x[i] ** 2\n  z[i] = y[i] * N\n}\nz\n");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' repl < '%s' > '%s' 2>&1", FUSE_JIT_BIN, spath("s.txt"),
             spath("s.out"));
    ck_assert_int_eq(system(cmd), 0);
    char *out = slurp(spath("s.out"));
    ck_assert_msg(strstr(out, "[ 3. 12.]") != NULL, "%s", out);
    free(out);
}
END_TEST

/* import: G21, namespaces, a module's own names, and the errors naming the chain. */
START_TEST(test_v2_import)
{
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    char dir[4300];
    snprintf(dir, sizeof dir, "%s", spath("lib"));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_text("lib/m.fuse", "const TWO = 2\nfn double(a[x]) -> r { r[x] = a[x] * TWO }\n"
                             "fn quad(a[x]) -> r { r[x] = double(double(a[x])) }\n");
    write_text("main.fuse", "import \"lib/m.fuse\" as m\nv[i] = const([1,2,3])\n"
                            "y[i] = m::double(v[i])\nz[i] = m::quad(v[i]) + m::TWO\n"
                            "export y; export z\n");
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.syntax = FUSE_SYNTAX_V2;
    fuse_program *prog = NULL;
    fuse_status st = fuse_program_from_file_opts(ctx, spath("main.fuse"), &o, &prog);
    ck_assert_msg(st == FUSE_OK, "%s", fuse_ctx_error(ctx));
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_runner_new(prog, NULL, NULL, 0, &run), FUSE_OK);
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    expect_values(out, "y", (double[]){2, 4, 6}, 3);
    expect_values(out, "z", (double[]){6, 10, 14}, 3);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    static const struct {
        const char *main, *module, *what;
    } bad[] = {
        {"import \"lib/none.fuse\" as n\n", NULL, "main.fuse:1:8: error: cannot import"},
        {"import \"lib/a.fuse\" as a\n", "import \"../main.fuse\" as b\n",
         "error: import cycle: "},
        {"import \"lib/a.fuse\" as a\n", "fn f(a[x]) -> r { r[x] = a[x] +* 1 }\n",
         "a.fuse:1:32: error: expected an expression"},
        {"import \"lib/a.fuse\" as a\n", "x = 1\n", "a.fuse:1:1: error: a module holds only"},
        {"import \"lib/m.fuse\"\nimport \"lib/m.fuse\"\n", NULL, "main.fuse:2:1: error: a "
         "second import into the namespace 'm'"},
        {"import \"lib/m.fuse\" as m\ny = m::nope(1)\n", NULL,
         "main.fuse:2:5: error: unknown function 'm::nope'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        write_text("main.fuse", bad[k].main);
        if (bad[k].module)
            write_text("lib/a.fuse", bad[k].module);
        ck_assert_int_ne(fuse_program_from_file_opts(ctx, spath("main.fuse"), &o, &prog),
                         FUSE_OK);
        ck_assert_msg(strstr(fuse_ctx_error(ctx), bad[k].what), "want %s in:\n%s", bad[k].what,
                      fuse_ctx_error(ctx));
    }
    ctx_teardown();
}
END_TEST

static Suite *v2_suite(void)
{
    Suite *s = suite_create("v2");
    TCase *api = tcase_create("api");
    tcase_add_unchecked_fixture(api, ctx_setup, ctx_teardown);
    tcase_set_timeout(api, 120);
    tcase_add_test(api, test_v2_options_and_first_line);
    tcase_add_test(api, test_v2_golden_let_and_precedence);
    tcase_add_test(api, test_v2_golden_broadcast_by_name);
    tcase_add_test(api, test_v2_golden_matmul_plus_bias);
    tcase_add_test(api, test_v2_golden_reduce);
    tcase_add_test(api, test_v2_reduce_prod_min_exact);
    tcase_add_test(api, test_v2_golden_case_guard_let);
    tcase_add_test(api, test_v2_golden_functions);
    tcase_add_test(api, test_v2_golden_builtins_logic_params);
    tcase_add_test(api, test_v2_operators_on_tensors);
    tcase_add_test(api, test_v2_conditionals_and_projection);
    tcase_add_test(api, test_v2_params_from_host);
    tcase_add_test(api, test_v2_legacy_same_results);
    tcase_add_test(api, test_v2_shares_compiled_code_with_legacy);
    tcase_add_test(api, test_v2_diagnostics_syntax);
    tcase_add_test(api, test_v2_diagnostics_semantic);
    tcase_add_test(api, test_v2_diagnostics_functions);
    tcase_add_test(api, test_v2_mutations_never_crash);
    suite_add_tcase(s, api);
    TCase *cli = harness_case("cli");
    tcase_add_test(cli, test_v2_cli_parser_option);
    tcase_add_test(cli, test_v2_repl);
    tcase_add_test(cli, test_v2_import);
    suite_add_tcase(s, cli);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(v2_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
