/*
 * test_semantics.c: the legacy semantics SPEC.md decides where fuse-jit and the
 * independent evaluator (../shared/oracle) once disagreed, and the
 * reproducers the differential fuzzer shrank. Every expected value is worked out
 * by hand in the comment beside it.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusejit.h"
#include "harness.h"
#include "runtime.h"

static float *run_and_get(const char *text, const char *name, int rank, const int64_t *shape)
{
    run_program(text, "out.npz");
    return read_member("out.npz", name, rank, shape);
}

static void expect_export(const char *text, const char *name, int rank, const int64_t *shape,
                          const double *want, int64_t n)
{
    float *got = run_and_get(text, name, rank, shape);
    expect_close(name, got, want, n);
    free(got);
}

/* ---- SPEC §2.4: a source bound to a boolean tensor is thresholded ---- */

/* P(j) read from `file` holding [0.5, -2, 3] reads as [1, 0, 1]; 1 - P negates it. */
static void expect_bool_source(const char *file)
{
    char prog[256];
    snprintf(prog, sizeof prog, "P(j) = \"%s\"\nQ[j] = P(j)\nN[j] = 1 - P[j]\n"
                                "export Q\nexport N\n", file);
    run_program(prog, "out.npz");
    float *q = read_member("out.npz", "Q", 1, (int64_t[]){3});
    float *n = read_member("out.npz", "N", 1, (int64_t[]){3});
    expect_close(file, q, (double[]){1, 0, 1}, 3);
    expect_close(file, n, (double[]){0, 1, 0}, 3);
    free(q);
    free(n);
}

START_TEST(test_bool_source_every_format)
{
    const float v[3] = {0.5f, -2.0f, 3.0f};
    write_npy("p.npy", 1, (int64_t[]){3}, v);
    expect_bool_source("p.npy");
    write_text("p.json", "[0.5, -2, 3]");
    expect_bool_source("p.json");
    write_text("p.jsonl", "{\"schema\":\"fuse.tensor\",\"version\":1,\"shape\":[3]}\n"
                          "{\"value\":[0.5,-2,3]}\n");
    expect_bool_source("p.jsonl");
    fuse_tensor t = {.dtype = FUSE_F32, .rank = 1, .shape = {3}, .data = (void *)v};
    const char *names[1] = {"arr_0"};
    char *err = NULL;
    ck_assert_int_eq(io_npz_write(spath("p.npz"), names, &t, 1, &err), FUSE_OK);
    expect_bool_source("p.npz");
    const char *hdr = "{\"P\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
    uint64_t len = strlen(hdr);
    unsigned char buf[256];
    for (int k = 0; k < 8; k++)
        buf[k] = (unsigned char)(len >> (8 * k));
    memcpy(buf + 8, hdr, len);
    memcpy(buf + 8 + len, v, sizeof v);
    write_file(spath("p.safetensors"), buf, 8 + len + sizeof v);
    expect_bool_source("p.safetensors");
}
END_TEST

/* A float64 source: 1e-50 is > 0 although it is 0 in float32. */
START_TEST(test_bool_source_float64_tiny_is_true)
{
    const double v[2] = {1e-50, -1e-50};
    fuse_tensor t = {.dtype = FUSE_F64, .rank = 1, .shape = {2}, .data = (void *)v};
    char *err = NULL;
    ck_assert_int_eq(io_npy_write(spath("d.npy"), &t, &err), FUSE_OK);
    expect_export("P(j) = \"d.npy\"\nQ[j] = P(j)\nexport Q\n", "Q", 1, (int64_t[]){2},
                  (double[]){1, 0}, 2);
}
END_TEST

/* A boolean join over thresholded sources: R(x,y) = E(x,z) E(z,y) with E from
 * [[0.5,-1],[2,0]] -> [[1,0],[1,0]]; E.E = [[1,0],[1,0]]. Unthresholded it would
 * still be positive where 0.5*0.5 > 0, so the negation test below tells them apart:
 * 1 - E = [[0,1],[0,1]]. */
START_TEST(test_bool_source_join_and_negation)
{
    write_npy("e.npy", 2, (int64_t[]){2, 2}, (float[]){0.5f, -1, 2, 0});
    const char *prog = "E(x,y) = \"e.npy\"\nR(x,y) = E(x,z) E(z,y)\nN[x,y] = 1 - E[x,y]\n"
                       "S[x] = E[x,y]\nexport R\nexport N\nexport S\n";
    run_program(prog, "out.npz");
    float *r = read_member("out.npz", "R", 2, (int64_t[]){2, 2});
    float *n = read_member("out.npz", "N", 2, (int64_t[]){2, 2});
    float *s = read_member("out.npz", "S", 1, (int64_t[]){2});
    expect_close("R", r, (double[]){1, 0, 1, 0}, 4);
    expect_close("N", n, (double[]){0, 1, 0, 1}, 4);
    expect_close("S", s, (double[]){1, 1}, 2);
    free(r), free(n), free(s);
}
END_TEST

/* A runtime input bound to a boolean tensor, borrowed or copied, is thresholded
 * too, and the host's buffer is left as it was. */
START_TEST(test_bool_input_is_thresholded)
{
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, "P(j) = \"p.npy\"\nQ[j] = P(j) + P(j)\n"
                                                 "export Q\n", "b.fuse", &prog), FUSE_OK);
    static _Alignas(64) float data[16] = {0.5f, -2.0f, 3.0f, 0.0f};
    for (int borrow = 0; borrow < 2; borrow++) {
        fuse_input in = {.name = "P", .tensor = {.dtype = FUSE_F32, .rank = 1, .shape = {4},
                                                  .data = data}, .borrow = borrow};
        if (!run)
            ck_assert_int_eq(fuse_runner_new(prog, NULL, &in, 1, &run), FUSE_OK);
        fuse_outputs *out = NULL;
        ck_assert_int_eq(fuse_runner_run(run, &in, 1, &out), FUSE_OK);
        const fuse_tensor *q = fuse_outputs_find(out, "Q");
        ck_assert_ptr_nonnull(q);
        /* Q is dense: P(j) + P(j) = 2 P = [2, 0, 2, 0] */
        expect_close("Q", q->data, (double[]){2, 0, 2, 0}, 4);
        fuse_outputs_free(out);
        ck_assert(data[0] == 0.5f && data[1] == -2.0f && data[2] == 3.0f);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- SPEC §1: max= and avg= project the signed, scaled product ---- */

#define X23 "X[i,j] = const([[1,-2,3],[-4,5,-6]])\n"

START_TEST(test_max_negative_coefficient)
{
    /* max_j -X = max(-1,2,-3) = 2, max(4,-5,6) = 6 */
    expect_export(X23 "M[i] max= - X[i,j]\nexport M\n", "M", 1, (int64_t[]){2},
                  (double[]){2, 6}, 2);
    /* a negative literal: max_j -2X = 4, 12 */
    expect_export(X23 "M[i] max= -2 X[i,j]\nexport M\n", "M", 1, (int64_t[]){2},
                  (double[]){4, 12}, 2);
    /* a parenthesised difference distributes into two projected terms:
     * max X + max(-2X) = (3 + 4, 5 + 12) */
    expect_export(X23 "M[i] max= (X[i,j] - 2 X[i,j])\nexport M\n", "M", 1, (int64_t[]){2},
                  (double[]){7, 17}, 2);
    /* a positive coefficient is unchanged: max_j 0.5 X = 1.5, 2.5 */
    expect_export(X23 "M[i] max= 0.5 X[i,j]\nexport M\n", "M", 1, (int64_t[]){2},
                  (double[]){1.5, 2.5}, 2);
}
END_TEST

START_TEST(test_max_negative_coefficient_boolean_lhs)
{
    /* B(i) max= -X: 2 > 0 and 6 > 0 -> 1, 1; with Y = [[1,2],[3,4]] max(-Y) < 0 -> 0, 0 */
    expect_export(X23 "B(i) max= - X[i,j]\nexport B\n", "B", 1, (int64_t[]){2},
                  (double[]){1, 1}, 2);
    expect_export("Y[i,j] = const([[1,2],[3,4]])\nB(i) max= - Y[i,j]\nexport B\n", "B", 1,
                  (int64_t[]){2}, (double[]){0, 0}, 2);
}
END_TEST

START_TEST(test_avg_negative_coefficient)
{
    /* avg_j -X = -(2/3), 5/3; avg_j -2X = -4/3, 10/3 */
    expect_export(X23 "A[i] avg= - X[i,j]\nexport A\n", "A", 1, (int64_t[]){2},
                  (double[]){-2.0 / 3, 5.0 / 3}, 2);
    expect_export(X23 "A[i] avg= -2 X[i,j]\nexport A\n", "A", 1, (int64_t[]){2},
                  (double[]){-4.0 / 3, 10.0 / 3}, 2);
}
END_TEST

/* Monte Carlo with samples >= P is exact, for the signed max too. */
START_TEST(test_max_negative_coefficient_monte_carlo)
{
    write_text("prog.fuse", X23 "M[i] max= - X[i,j]\nexport M\n");
    Result r = run_cli("run", "prog.fuse", "--out", "out.npz", "--projection", "monte_carlo",
                       "--samples", "64", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *m = read_member("out.npz", "M", 1, (int64_t[]){2});
    expect_close("M", m, (double[]){2, 6}, 2);
    free(m);
}
END_TEST

/* ---- SPEC §3.2: only a name glued to '(' is a call ---- */

START_TEST(test_name_space_paren_is_scalar_times_group)
{
    /* G (1 + X) = 2 + 2X = 4, 6, 8 */
    expect_export("G = const(2)\nX[i] = const([1,2,3])\nY[i] = G (1 + X[i])\nexport Y\n", "Y",
                  1, (int64_t[]){3}, (double[]){4, 6, 8}, 3);
    /* whitespace before '[' does not matter */
    expect_export("X[i] = const([1,2,3])\nY[i] = 2 X [i]\nexport Y\n", "Y", 1, (int64_t[]){3},
                  (double[]){2, 4, 6}, 3);
}
END_TEST

/* ---- SPEC §2.2: sizes unify per term ---- */

START_TEST(test_unification_per_term)
{
    /* A sums to 10 whatever P's j is; P's rows sum to 6 and 15: Y = 16, 25, exactly
     * as the two += statements give */
    const char *one = "A[j] = const([1,2,3,4])\nP[x,j] = const([[1,2,3],[4,5,6]])\n"
                      "Y[x] = A[j] + P[x,j]\nexport Y\n";
    const char *two = "A[j] = const([1,2,3,4])\nP[x,j] = const([[1,2,3],[4,5,6]])\n"
                      "Y[x] = A[j]\nY[x] += P[x,j]\nexport Y\n";
    expect_export(one, "Y", 1, (int64_t[]){2}, (double[]){16, 25}, 2);
    expect_export(two, "Y", 1, (int64_t[]){2}, (double[]){16, 25}, 2);
}
END_TEST

/* ---- kernels: reproducers of miscompiles ---- */

/* difffuzz seed 9001 #1932: a group of two joins, the second reading R twice
 * (Out[k,i] = B[i,k,-2] R[i] + R[i] R[r]), lost terms on AVX2 hosts when its
 * buffers were marked noalias. Expected values from a loop here. */
START_TEST(test_join_reading_a_tensor_twice)
{
    char prog[1024] = "B[q,x,c] = const([";
    double b[3][8][2];
    const double r[3] = {-1.5, 1.75, -0.25};
    for (int q = 0; q < 3; q++) {
        strcat(prog, q ? ",[" : "[");
        for (int x = 0; x < 8; x++) {
            b[q][x][0] = (q * 8 + x) % 7 - 3.0;
            b[q][x][1] = (q + x) % 5 - 2.0;
            char cell[48];
            snprintf(cell, sizeof cell, "%s[%g,%g]", x ? "," : "", b[q][x][0], b[q][x][1]);
            strcat(prog, cell);
        }
        strcat(prog, "]");
    }
    strcat(prog, "])\nR[k] = const([-1.5, 1.75, -0.25])\n"
                 "Out[k_1,i] = B[i,k_1,-2] R[i] + R[i] R[r]\nexport Out\n");
    double want[24];
    for (int k = 0; k < 8; k++)
        for (int i = 0; i < 3; i++)
            want[k * 3 + i] = b[i][k][0] * r[i] + r[i] * (r[0] + r[1] + r[2]);
    expect_export(prog, "Out", 2, (int64_t[]){8, 3}, want, 24);
}
END_TEST

/* ---- crashfuzz: limits are errors, not signals ---- */

START_TEST(test_too_many_axes_is_an_error)
{
    char prog[8192] = "X[i] = const([1,2])\nZz[a0";
    for (int k = 1; k < 1000; k++) {
        char ax[16];
        snprintf(ax, sizeof ax, ",a%d", k);
        strcat(prog, ax);
    }
    strcat(prog, "] = X[a0]\nexport Zz\n");
    write_text("prog.fuse", prog);
    const char *cmds[2] = {"check", "run"};
    for (int c = 0; c < 2; c++) {
        Result r = run_cli(cmds[c], "prog.fuse", NULL);
        expect_exit(&r, 3);
        ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:2:3: error: a tensor has at most 8 axes"));
        result_free(&r);
    }
}
END_TEST

START_TEST(test_too_many_factors_is_an_error)
{
    char prog[8192] = "X[i] = const([1,2])\nY[i] = X[i]";
    for (int k = 0; k < 70; k++) {
        char f[24];
        snprintf(f, sizeof f, " X[a%d]", k);
        strcat(prog, f);
    }
    strcat(prog, "\nexport Y\n");
    write_text("prog.fuse", prog);
    Result r = run_cli("check", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "more than 64 factors"));
    result_free(&r);
}
END_TEST

/* ---- long sums: 2^24 followed by ones ---- */

/* A float accumulator stops counting at 2^24: 2^24 + 1 rounds back to 2^24, so a
 * sum that reaches it first (even one spread over vector lanes) drops the ones
 * that follow. Within one float ulp of the exact value here. */
static void expect_near(const char *what, float got, double want, double ulp)
{
    ck_assert_msg(fabs(got - want) <= ulp, "%s: got %.10g, want %.10g", what, got, want);
}

START_TEST(test_long_sums_are_exact_beyond_2_24)
{
    enum { N = 1 << 20, ROWS = 4, COLS = N / ROWS };
    float *x = malloc(N * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int i = 0; i < N; i++)
        x[i] = i % COLS == 0 ? 16777216.0f : 1.0f;
    /* x as a vector: 4 entries of 2^24 (one per row start), N - 4 ones */
    write_npy("x.npy", 1, (int64_t[]){N}, x);
    write_npy("m.npy", 2, (int64_t[]){ROWS, COLS}, x);
    for (int i = 0; i < N; i++) /* its transpose: 2^24 in the first row */
        x[i] = i < ROWS ? 16777216.0f : 1.0f;
    write_npy("mt.npy", 2, (int64_t[]){COLS, ROWS}, x);
    free(x);
    run_program("X[i] = \"x.npy\"\nM[r,c] = \"m.npy\"\nS = X[i]\nA avg= X[i]\n"
                "R[r] = M[r,c]\nT = M[r,c]\nMt[c,r] = \"mt.npy\"\nK[r] = Mt[c,r]\n"
                "export S\nexport A\nexport R\nexport T\nexport K\n",
                "out.npz");
    float *s = read_member("out.npz", "S", 0, NULL);
    float *a = read_member("out.npz", "A", 0, NULL);
    float *r = read_member("out.npz", "R", 1, (int64_t[]){ROWS});
    float *t = read_member("out.npz", "T", 0, NULL);
    float *k = read_member("out.npz", "K", 1, (int64_t[]){ROWS});
    double total = 4.0 * 16777216.0 + (N - 4); /* 68157436, float spacing 8 there */
    expect_near("S", s[0], total, 4.0);
    expect_near("A", a[0], total / N, 1e-5);
    for (int i = 0; i < ROWS; i++) {
        expect_near("R", r[i], 16777216.0 + (COLS - 1), 1.0); /* 17039359 */
        expect_near("K", k[i], 16777216.0 + (COLS - 1), 1.0); /* column sums */
    }
    expect_near("T", t[0], total, 4.0);
    free(s);
    free(a);
    free(r);
    free(t);
    free(k);
}
END_TEST

static Suite *semantics_suite(void)
{
    Suite *s = suite_create("semantics");
    TCase *tc = harness_case("boolean_sources");
    tcase_add_test(tc, test_bool_source_every_format);
    tcase_add_test(tc, test_bool_source_float64_tiny_is_true);
    tcase_add_test(tc, test_bool_source_join_and_negation);
    tcase_add_test(tc, test_bool_input_is_thresholded);
    suite_add_tcase(s, tc);
    tc = harness_case("signed_projection");
    tcase_add_test(tc, test_max_negative_coefficient);
    tcase_add_test(tc, test_max_negative_coefficient_boolean_lhs);
    tcase_add_test(tc, test_avg_negative_coefficient);
    tcase_add_test(tc, test_max_negative_coefficient_monte_carlo);
    suite_add_tcase(s, tc);
    tc = harness_case("syntax_and_shapes");
    tcase_add_test(tc, test_name_space_paren_is_scalar_times_group);
    tcase_add_test(tc, test_unification_per_term);
    tcase_add_test(tc, test_too_many_axes_is_an_error);
    tcase_add_test(tc, test_too_many_factors_is_an_error);
    tcase_add_test(tc, test_join_reading_a_tensor_twice);
    suite_add_tcase(s, tc);
    tc = harness_case("long_sums");
    tcase_add_test(tc, test_long_sums_are_exact_beyond_2_24);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(semantics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
