/*
 * test_cli.c: Check suite for the fuse-jit command. Runs the built binary
 * (FUSE_JIT_BIN) in a fresh scratch directory per test, with stdout and stderr
 * captured to files, and checks exit codes, messages and results.
 *
 * Program tests write random inputs as .npy (io_npy_write), run
 * `fuse-jit run prog.fuse --out ...`, read the results back (io_npy_read,
 * io_npz_read) and compare them with values computed here by naive loops in
 * double precision, within 1e-4 absolute plus 1e-4 relative.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <zip.h>

#include "fusejit.h"
#include "harness.h"
#include "runtime.h"

enum { TIMEOUT_S = 120 };

/* ---- programs, checked against naive loops ---- */

static void matmul_ref(const float *a, const float *b, double *c, int m, int k, int n)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)a[i * k + p] * b[p * n + j];
            c[i * n + j] = s;
        }
}

static const char MATMUL[] = "A[i,k] = \"a.npy\"\n"
                             "B[k,j] = \"b.npy\"\n"
                             "C[i,j] = A[i,k] B[k,j]\n"
                             "export C\n";

START_TEST(test_run_matmul_from_npy)
{
    enum { M = 300, K = 200, N = 100 };
    float *a = malloc(M * K * sizeof *a), *b = malloc(K * N * sizeof *b);
    double *want = malloc(M * N * sizeof *want);
    fill_random(a, M * K, 1, -1, 1);
    fill_random(b, K * N, 2, -1, 1);
    write_npy("a.npy", 2, (int64_t[]){M, K}, a);
    write_npy("b.npy", 2, (int64_t[]){K, N}, b);
    run_program(MATMUL, "c.npy");
    float *got = read_npy("c.npy", 2, (int64_t[]){M, N});
    matmul_ref(a, b, want, M, K, N);
    expect_close("C", got, want, M * N);
    free(a), free(b), free(want), free(got);
}
END_TEST

START_TEST(test_run_input_overrides_source)
{
    enum { M = 7, K = 5, N = 3 };
    float a[M * K], a2[M * K], b[K * N];
    double want[M * N];
    fill_random(a, M * K, 3, -1, 1);
    fill_random(a2, M * K, 4, -1, 1);
    fill_random(b, K * N, 5, -1, 1);
    write_npy("a.npy", 2, (int64_t[]){M, K}, a);
    write_npy("other.npy", 2, (int64_t[]){M, K}, a2);
    write_npy("b.npy", 2, (int64_t[]){K, N}, b);
    write_text("prog.fuse", MATMUL);
    Result r = run_cli("run", "prog.fuse", "--input", "A=other.npy", "--threads", "1", "--out",
                       "c.npy", NULL);
    expect_exit(&r, 0);
    float *got = read_npy("c.npy", 2, (int64_t[]){M, N});
    matmul_ref(a2, b, want, M, K, N);
    expect_close("C", got, want, M * N);
    free(got);
    result_free(&r);
}
END_TEST

START_TEST(test_run_transpose)
{
    enum { R = 5, C = 7 };
    float x[R * C];
    double want[C * R];
    fill_random(x, R * C, 6, -2, 2);
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    run_program("X[i,j] = \"x.npy\"\nT[j,i] = X[i,j]\nexport T\n", "out.npz");
    float *got = read_member("out.npz", "T", 2, (int64_t[]){C, R});
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            want[j * R + i] = x[i * C + j];
    expect_close("T", got, want, R * C);
    free(got);
}
END_TEST

/* The compression method of an .npz member (ZIP_CM_STORE or ZIP_CM_DEFLATE). */
static int32_t member_method(const char *npz, const char *member)
{
    int code;
    zip_t *za = zip_open(npz, ZIP_RDONLY, &code);
    ck_assert_ptr_nonnull(za);
    zip_stat_t sb;
    ck_assert_int_eq(zip_stat(za, member, 0, &sb), 0);
    zip_discard(za);
    return (int32_t)sb.comp_method;
}

/* --out x.npz stores its members (numpy.savez); --compress deflates them
 * (savez_compressed); both read back the same values. */
START_TEST(test_run_npz_stored_or_compressed)
{
    enum { R = 16, C = 32 };
    static float x[R * C];
    double want[C * R];
    for (int i = 0; i < R * C; i++)
        x[i] = (float)(i % 4); /* compressible */
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    const char *prog = "X[i,j] = \"x.npy\"\nT[j,i] = X[i,j]\nexport T\n";
    run_program(prog, "stored.npz");
    write_text("prog.fuse", prog);
    Result r = run_cli("run", "prog.fuse", "--compress", "--out", "deflated.npz", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    ck_assert_int_eq(member_method(spath("stored.npz"), "T.npy"), ZIP_CM_STORE);
    ck_assert_int_eq(member_method(spath("deflated.npz"), "T.npy"), ZIP_CM_DEFLATE);
    struct stat a, b;
    ck_assert_int_eq(stat(spath("stored.npz"), &a), 0);
    ck_assert_int_eq(stat(spath("deflated.npz"), &b), 0);
    ck_assert_int_gt(a.st_size, R * C * 4);
    ck_assert_int_lt(b.st_size, a.st_size / 4);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            want[j * R + i] = x[i * C + j];
    const char *files[] = {"stored.npz", "deflated.npz"};
    for (int f = 0; f < 2; f++) {
        float *got = read_member(files[f], "T", 2, (int64_t[]){C, R});
        expect_close(files[f], got, want, R * C);
        free(got);
    }
}
END_TEST

START_TEST(test_run_diagonal)
{
    enum { N = 6 };
    float a[N * N];
    double want[N];
    fill_random(a, N * N, 7, -1, 1);
    write_npy("a.npy", 2, (int64_t[]){N, N}, a);
    run_program("A[i,j] = \"a.npy\"\nD[i] = A[i,i]\nexport D\n", "out.npz");
    float *got = read_member("out.npz", "D", 1, (int64_t[]){N});
    for (int i = 0; i < N; i++)
        want[i] = a[i * N + i];
    expect_close("D", got, want, N);
    free(got);
}
END_TEST

START_TEST(test_run_row_softmax)
{
    enum { R = 4, C = 9 };
    float x[R * C];
    double want[R * C];
    fill_random(x, R * C, 8, -3, 3);
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    run_program("X[i,j] = \"x.npy\"\nS[i,j.] = softmax(X[i,j])\nexport S\n", "out.npz");
    float *got = read_member("out.npz", "S", 2, (int64_t[]){R, C});
    for (int i = 0; i < R; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < C; j++)
            mx = fmax(mx, x[i * C + j]);
        for (int j = 0; j < C; j++)
            sum += exp(x[i * C + j] - mx);
        for (int j = 0; j < C; j++)
            want[i * C + j] = exp(x[i * C + j] - mx) / sum;
    }
    expect_close("S", got, want, R * C);
    free(got);
}
END_TEST

START_TEST(test_run_max_and_avg_projections)
{
    enum { R = 5, C = 8 };
    float x[R * C];
    double want_m[R], want_v[C];
    fill_random(x, R * C, 9, -5, 5);
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    run_program("X[i,j] = \"x.npy\"\nM[i] max= X[i,j]\nV[j] avg= X[i,j]\nexport M\nexport V\n",
                "out.npz");
    float *m = read_member("out.npz", "M", 1, (int64_t[]){R});
    float *v = read_member("out.npz", "V", 1, (int64_t[]){C});
    for (int i = 0; i < R; i++) {
        want_m[i] = -INFINITY;
        for (int j = 0; j < C; j++)
            want_m[i] = fmax(want_m[i], x[i * C + j]);
    }
    for (int j = 0; j < C; j++) {
        want_v[j] = 0;
        for (int i = 0; i < R; i++)
            want_v[j] += x[i * C + j] / (double)R;
    }
    expect_close("M", m, want_m, R);
    expect_close("V", v, want_v, C);
    free(m), free(v);
}
END_TEST

START_TEST(test_run_broadcast_bias)
{
    enum { R = 4, C = 6 };
    float x[R * C], b[C];
    double want[R * C];
    fill_random(x, R * C, 10, -1, 1);
    fill_random(b, C, 11, -1, 1);
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    write_npy("b.npy", 1, (int64_t[]){C}, b);
    run_program("X[i,j] = \"x.npy\"\nB[j] = \"b.npy\"\nY[i,j] = X[i,j] + B[j]\nexport Y\n",
                "out.npz");
    float *got = read_member("out.npz", "Y", 2, (int64_t[]){R, C});
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            want[i * C + j] = (double)x[i * C + j] + b[j];
    expect_close("Y", got, want, R * C);
    free(got);
}
END_TEST

START_TEST(test_run_same_lhs_group_adds)
{
    enum { R = 4, C = 5 };
    float x[R * C], y[R];
    double want[R];
    fill_random(x, R * C, 12, -1, 1);
    fill_random(y, R, 13, -1, 1);
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    write_npy("y.npy", 1, (int64_t[]){R}, y);
    run_program("X[i,j] = \"x.npy\"\nY[i] = \"y.npy\"\n"
                "Z[i] = X[i,j]\nZ[i] = Y[i]\n"
                "W[i] = X[i,j]\nW[i] += Y[i]\n"
                "export Z\nexport W\n",
                "out.npz");
    float *z = read_member("out.npz", "Z", 1, (int64_t[]){R});
    float *w = read_member("out.npz", "W", 1, (int64_t[]){R});
    for (int i = 0; i < R; i++) {
        want[i] = y[i];
        for (int j = 0; j < C; j++)
            want[i] += x[i * C + j];
    }
    expect_close("Z", z, want, R);
    expect_close("W", w, want, R);
    free(z), free(w);
}
END_TEST

START_TEST(test_run_three_factor_join)
{
    enum { I = 3, J = 4, K = 5, L = 2 };
    float a[I * J], b[J * K], c[K * L];
    double ab[I * K], want[I * L];
    fill_random(a, I * J, 14, -1, 1);
    fill_random(b, J * K, 15, -1, 1);
    fill_random(c, K * L, 16, -1, 1);
    write_npy("a.npy", 2, (int64_t[]){I, J}, a);
    write_npy("b.npy", 2, (int64_t[]){J, K}, b);
    write_npy("c.npy", 2, (int64_t[]){K, L}, c);
    run_program("A[i,j] = \"a.npy\"\nB[j,k] = \"b.npy\"\nC[k,l] = \"c.npy\"\n"
                "R[i,l] = A[i,j] B[j,k] C[k,l]\nexport R\n",
                "out.npz");
    float *got = read_member("out.npz", "R", 2, (int64_t[]){I, L});
    matmul_ref(a, b, ab, I, J, K);
    for (int i = 0; i < I; i++)
        for (int l = 0; l < L; l++) {
            want[i * L + l] = 0;
            for (int k = 0; k < K; k++)
                want[i * L + l] += ab[i * K + k] * c[k * L + l];
        }
    expect_close("R", got, want, I * L);
    free(got);
}
END_TEST

START_TEST(test_run_literal_factor)
{
    enum { N = 10 };
    float x[N];
    double want[N];
    fill_random(x, N, 17, -4, 4);
    write_npy("x.npy", 1, (int64_t[]){N}, x);
    run_program("X[i] = \"x.npy\"\nH[i] = 0.5 X[i]\nexport H\n", "out.npz");
    float *got = read_member("out.npz", "H", 1, (int64_t[]){N});
    for (int i = 0; i < N; i++)
        want[i] = 0.5 * x[i];
    expect_close("H", got, want, N);
    free(got);
}
END_TEST

typedef struct Builtin {
    const char *name;   /* export name */
    const char *call;   /* builtin name in the program */
    const char *source; /* X (any sign) or P (positive) */
    double (*ref)(double);
} Builtin;

static double ref_relu(double x) { return x > 0 ? x : 0; }
static double ref_step(double x) { return x > 0 ? 1 : 0; }
static double ref_gelu(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static const Builtin BUILTINS[] = {
    {"Relu", "relu", "X", ref_relu}, {"Exp", "exp", "X", exp},
    {"Tanh", "tanh", "X", tanh},     {"Sin", "sin", "X", sin},
    {"Cos", "cos", "X", cos},        {"Abs", "abs", "X", fabs},
    {"Step", "step", "X", ref_step}, {"Gelu", "gelu", "X", ref_gelu},
    {"Sqrt", "sqrt", "P", sqrt},     {"Log", "log", "P", log},
};

START_TEST(test_run_elementwise_builtins)
{
    enum { R = 3, C = 4, NB = sizeof BUILTINS / sizeof BUILTINS[0] };
    float x[R * C], p[R * C];
    double want[R * C];
    char prog[2048] = "X[i,j] = \"x.npy\"\nP[i,j] = \"p.npy\"\n";
    fill_random(x, R * C, 18, -2, 2);
    fill_random(p, R * C, 19, 0.1f, 3);
    write_npy("x.npy", 2, (int64_t[]){R, C}, x);
    write_npy("p.npy", 2, (int64_t[]){R, C}, p);
    for (int b = 0; b < NB; b++) {
        size_t n = strlen(prog);
        snprintf(prog + n, sizeof prog - n, "%s[i,j] = %s(%s[i,j])\nexport %s\n",
                 BUILTINS[b].name, BUILTINS[b].call, BUILTINS[b].source, BUILTINS[b].name);
    }
    run_program(prog, "out.npz");
    for (int b = 0; b < NB; b++) {
        const float *in = BUILTINS[b].source[0] == 'P' ? p : x;
        float *got = read_member("out.npz", BUILTINS[b].name, 2, (int64_t[]){R, C});
        for (int i = 0; i < R * C; i++)
            want[i] = BUILTINS[b].ref(in[i]);
        expect_close(BUILTINS[b].name, got, want, R * C);
        free(got);
    }
}
END_TEST

/* ---- printing and output files ---- */

START_TEST(test_print_small_tensors)
{
    write_text("prog.fuse", "Y[i,j] = const([[1, 2.5], [-3, 4]])\n"
                            "V[k] = const([0.5, 1, 2])\n"
                            "S = const(2.5)\n"
                            "export Y\nexport V\nexport S\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.out, "# Y shape=(2, 2) dtype=float32\n"
                            "[[ 1.   2.5]\n"
                            " [-3.   4. ]]\n"
                            "# V shape=(3,) dtype=float32\n"
                            "[0.5 1.  2. ]\n"
                            "# S shape=() dtype=float32\n"
                            "2.5\n");
    result_free(&r);
}
END_TEST

START_TEST(test_print_elides_long_axes)
{
    enum { N = 2000 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)i;
    write_npy("x.npy", 1, (int64_t[]){N}, x);
    write_text("prog.fuse", "X[i] = \"x.npy\"\nY[i] = X[i]\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.out, "# Y shape=(2000,) dtype=float32\n"
                            "[   0.    1.    2. ... 1997. 1998. 1999.]\n");
    result_free(&r);
}
END_TEST

START_TEST(test_out_json)
{
    write_text("prog.fuse", "Y[i,j] = const([[1, 2.5], [-3, 4]])\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", "--out", "y.json", NULL);
    expect_exit(&r, 0);
    json_error_t jerr;
    json_t *root = json_load_file(spath("y.json"), 0, &jerr);
    ck_assert_msg(root != NULL, "y.json: %s", jerr.text);
    const double want[2][2] = {{1, 2.5}, {-3, 4}};
    ck_assert(json_is_array(root) && json_array_size(root) == 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *row = json_array_get(root, i);
        ck_assert(json_is_array(row) && json_array_size(row) == 2);
        for (size_t j = 0; j < 2; j++)
            ck_assert_double_eq_tol(json_number_value(json_array_get(row, j)), want[i][j], 1e-6);
    }
    json_decref(root);
    result_free(&r);
}
END_TEST

START_TEST(test_out_single_file_needs_one_export)
{
    write_text("prog.fuse", "A[i] = const([1, 2])\nB[i] = A[i] A[i]\nexport A\nexport B\n");
    Result r = run_cli("run", "prog.fuse", "--out", "x.npy", NULL);
    expect_exit(&r, 2);
    ck_assert_ptr_nonnull(strstr(r.err, ".npz"));
    ck_assert(!file_exists("x.npy"));
    result_free(&r);
}
END_TEST

/* ---- sinks and directories ---- */

static const char SINK_PROG[] = "X[i] = \"x.npy\"\nY[i] = 2 X[i]\n\"s.npy\" = Y[i]\nexport Y\n";

static void write_sink_inputs(const char *name, double *want)
{
    float x[3] = {1, -2, 3.5f};
    write_npy(name, 1, (int64_t[]){3}, x);
    for (int i = 0; i < 3; i++)
        want[i] = 2.0 * x[i];
}

START_TEST(test_sinks_written_and_suppressed)
{
    double want[3];
    write_sink_inputs("x.npy", want);
    write_text("prog.fuse", SINK_PROG);
    Result r = run_cli("run", "prog.fuse", "--no-sinks", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(!file_exists("s.npy"), "--no-sinks wrote s.npy");
    result_free(&r);
    r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 0);
    float *got = read_npy("s.npy", 1, (int64_t[]){3});
    expect_close("s.npy", got, want, 3);
    free(got);
    result_free(&r);
}
END_TEST

START_TEST(test_base_dir_and_out_dir)
{
    double want[3];
    ck_assert_int_eq(mkdir(spath("data"), 0755), 0);
    ck_assert_int_eq(mkdir(spath("results"), 0755), 0);
    write_sink_inputs("data/x.npy", want);
    write_text("prog.fuse", SINK_PROG);
    Result r = run_cli("run", "prog.fuse", "--base-dir", "data", "--out-dir=results", NULL);
    expect_exit(&r, 0);
    float *got = read_npy("results/s.npy", 1, (int64_t[]){3});
    expect_close("results/s.npy", got, want, 3);
    ck_assert(!file_exists("s.npy"));
    free(got);
    result_free(&r);
}
END_TEST

/* A sink through a symbolic link to a directory outside the output root is
 * refused, naming the link, and writes nothing there; a link that stays inside
 * is followed; a link at the sink's own path is replaced, not written through. */
START_TEST(test_sink_links_cannot_leave_the_root)
{
    double want[3];
    ck_assert_int_eq(mkdir(spath("outside"), 0755), 0);
    ck_assert_int_eq(mkdir(spath("root"), 0755), 0);
    ck_assert_int_eq(mkdir(spath("root/in"), 0755), 0);
    ck_assert_int_eq(symlink("../outside", spath("root/link")), 0);
    ck_assert_int_eq(symlink("in", spath("root/inlink")), 0);
    write_text("outside/keep.npy", "not mine");
    ck_assert_int_eq(symlink("../outside/keep.npy", spath("root/s.npy")), 0);
    write_sink_inputs("root/x.npy", want);
    write_text("root/esc.fuse", "X[i] = \"x.npy\"\nY[i] = 2 X[i]\n\"link/sub/s.npy\" = Y[i]\n");
    Result r = run_cli("run", "root/esc.fuse", NULL);
    expect_exit(&r, 1);
    ck_assert_msg(strstr(r.err, "sink \"link/sub/s.npy\"") &&
                  strstr(r.err, "'link' is a symbolic link to '../outside'"), "%s", r.err);
    ck_assert(!file_exists("outside/sub"));
    result_free(&r);
    write_text("root/ok.fuse", SINK_PROG);
    write_text("root/in.fuse", "X[i] = \"x.npy\"\nY[i] = 2 X[i]\n\"inlink/d/s.npy\" = Y[i]\n");
    r = run_cli("run", "root/in.fuse", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    r = run_cli("run", "root/ok.fuse", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *got = read_npy("root/in/d/s.npy", 1, (int64_t[]){3});
    expect_close("root/in/d/s.npy", got, want, 3);
    free(got);
    got = read_npy("root/s.npy", 1, (int64_t[]){3});
    expect_close("root/s.npy", got, want, 3);
    free(got);
    char *kept = slurp(spath("outside/keep.npy"));
    ck_assert_str_eq(kept, "not mine");
    free(kept);
}
END_TEST

/* The vocabulary sidecar of a .txt source is written only by `run` with sinks,
 * under the output root; check, explain and --no-sinks write nothing, and the
 * source's directory is never written when the root is elsewhere. */
START_TEST(test_vocab_sidecar_only_from_run)
{
    ck_assert_int_eq(mkdir(spath("data"), 0755), 0);
    write_text("data/doc.txt", "the cat saw the dog");
    write_text("prog.fuse", "D[p,w] = \"data/doc.txt\"\nexport D\n");
    const char *quiet[][4] = {{"check", "prog.fuse", NULL},
                              {"explain", "prog.fuse", NULL},
                              {"run", "prog.fuse", "--no-sinks", NULL}};
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        Result r = run_cli(quiet[i][0], quiet[i][1], quiet[i][2], NULL);
        expect_exit(&r, 0);
        ck_assert_msg(!file_exists("data/doc.vocab.json"), "%s wrote the sidecar", quiet[i][0]);
        result_free(&r);
    }
    Result r = run_cli("run", "prog.fuse", "--out-dir", "results", NULL);
    expect_exit(&r, 0);
    ck_assert(!file_exists("data/doc.vocab.json"));
    char *side = slurp(spath("results/data/doc.vocab.json"));
    ck_assert_str_eq(side, "{\"version\": 1, \"items\": [{\"token\": \"the\", \"index\": 0}, "
                           "{\"token\": \"cat\", \"index\": 1}, {\"token\": \"saw\", "
                           "\"index\": 2}, {\"token\": \"dog\", \"index\": 3}]}\n");
    free(side);
    result_free(&r);
    r = run_cli("run", "prog.fuse", NULL); /* the root is the program's directory */
    expect_exit(&r, 0);
    ck_assert(file_exists("data/doc.vocab.json"));
    result_free(&r);
}
END_TEST

/* A text with a NUL byte: its sidecar reads back, so every later run agrees. */
START_TEST(test_vocab_with_nul_reads_back)
{
    static const char text[] = "b\0x a b\0x";
    write_file(spath("z.txt"), text, sizeof text - 1);
    write_text("prog.fuse", "D[p,w] = \"z.txt\"\nexport D\n");
    Result first = run_cli("run", "prog.fuse", NULL);
    expect_exit(&first, 0);
    ck_assert(file_exists("z.vocab.json"));
    Result again = run_cli("run", "prog.fuse", NULL);
    expect_exit(&again, 0);
    ck_assert_str_eq(again.out, first.out);
    ck_assert_msg(strstr(first.out, "shape=(3, 2)"), "%s", first.out);
    result_free(&first);
    result_free(&again);
}
END_TEST

/* ---- diagnostics and exit codes ---- */

/* True when some line of s is a caret line: only spaces, '|', digits, '~', '^'. */
static bool has_caret_line(const char *s)
{
    for (const char *line = s; *line;) {
        size_t n = strcspn(line, "\n");
        size_t k = strspn(line, " |0123456789~^");
        if (k == n && memchr(line, '^', n))
            return true;
        line += n + (line[n] == '\n');
    }
    return false;
}

START_TEST(test_syntax_error_is_positioned)
{
    write_text("prog.fuse", "X[i] = const([1, 2])\nY[i] = = X[i]\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 3);
    const char *at = strstr(r.err, "prog.fuse:2:");
    ck_assert_msg(at != NULL, "no prog.fuse:2: in\n%s", r.err);
    at += strlen("prog.fuse:2:");
    ck_assert_msg(*at >= '0' && *at <= '9', "no column in\n%s", r.err);
    while (*at >= '0' && *at <= '9')
        at++;
    ck_assert_msg(strncmp(at, ": error:", 8) == 0, "no ': error:' in\n%s", r.err);
    ck_assert_msg(has_caret_line(r.err), "no caret line in\n%s", r.err);
    result_free(&r);
}
END_TEST

START_TEST(test_check_reports_errors_and_ok)
{
    write_text("good.fuse", "X[i] = const([1, 2])\nY[i] = X[i]\nexport Y\n");
    write_text("bad.fuse", "Y[i] = = X[i]\n");
    Result r = run_cli("check", "good.fuse", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.out, "good.fuse: ok\n");
    result_free(&r);
    r = run_cli("check", "bad.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "bad.fuse:1:"));
    result_free(&r);
}
END_TEST

START_TEST(test_unknown_tensor_is_exit_3)
{
    write_text("prog.fuse", "X[i] = const([1, 2])\nY[i] = X[i] Nowhere[i]\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "error"));
    ck_assert_ptr_nonnull(strstr(r.err, "Nowhere"));
    result_free(&r);
}
END_TEST

START_TEST(test_size_conflict_is_exit_3)
{
    write_text("prog.fuse", "A[i] = const([1, 2, 3])\nB[i] = const([1, 2])\n"
                            "C[i] = A[i] B[i]\nexport C\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:"));
    ck_assert_ptr_nonnull(strstr(r.err, "error"));
    result_free(&r);
}
END_TEST

START_TEST(test_missing_program_file)
{
    Result r = run_cli("run", "no-such-program.fuse", NULL);
    expect_exit(&r, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "no-such-program.fuse"));
    result_free(&r);
}
END_TEST

START_TEST(test_missing_source_file)
{
    write_text("prog.fuse", "X[i] = \"absent.npy\"\nY[i] = X[i]\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "absent.npy"));
    result_free(&r);
}
END_TEST

START_TEST(test_truncated_npy_source)
{
    float x[64];
    fill_random(x, 64, 20, -1, 1);
    write_npy("x.npy", 2, (int64_t[]){8, 8}, x);
    struct stat st;
    ck_assert_int_eq(stat(spath("x.npy"), &st), 0);
    ck_assert_int_eq(truncate(spath("x.npy"), st.st_size - 10), 0);
    write_text("prog.fuse", "X[i,j] = \"x.npy\"\nY[i] = X[i,j]\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 1);
    ck_assert_msg(strstr(r.err, "x.npy") != NULL, "x.npy not named in\n%s", r.err);
    result_free(&r);
}
END_TEST

/* ---- explain and emit ---- */

/* True when one line of s contains both a and b. */
static bool line_has_both(const char *s, const char *a, const char *b)
{
    for (const char *line = s; *line;) {
        size_t n = strcspn(line, "\n");
        char *copy = strndup(line, n);
        bool ok = copy && strstr(copy, a) && strstr(copy, b);
        free(copy);
        if (ok)
            return true;
        line += n + (line[n] == '\n');
    }
    return false;
}

START_TEST(test_explain_lists_program_parts)
{
    write_text("prog.fuse", "Weights[row,col] = \"w.npy\"\n"
                            "Peak[row] max= Weights[row,col]\n"
                            "\"peak.npy\" = Peak[row]\n"
                            "export Peak\n");
    Result r = run_cli("explain", "prog.fuse", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "Weights") && strstr(r.out, "w.npy"), "no source in\n%s", r.out);
    ck_assert_msg(line_has_both(r.out, "Peak", "col"), "no projected axis in\n%s", r.out);
    ck_assert_msg(strstr(r.out, "max") != NULL, "no operator in\n%s", r.out);
    ck_assert_msg(strstr(r.out, "peak.npy") != NULL, "no sink in\n%s", r.out);
    result_free(&r);
    r = run_cli("explain", "prog.fuse", "--json", NULL);
    expect_exit(&r, 0);
    json_error_t jerr;
    json_t *root = json_loads(r.out, 0, &jerr);
    ck_assert_msg(root != NULL, "explain --json is not JSON: %s\n%s", jerr.text, r.out);
    json_decref(root);
    result_free(&r);
}
END_TEST

static const char CONST_PROG[] = "A[i,k] = const([[1, 2], [3, 4], [5, 6]])\n"
                                 "B[k,j] = const([[1, 0, 2], [0, 1, 3]])\n"
                                 "C[i,j] = A[i,k] B[k,j]\nexport C\n";

START_TEST(test_emit_llvm_and_ast)
{
    write_text("prog.fuse", CONST_PROG);
    Result r = run_cli("emit", "prog.fuse", "--what=llvm", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "define") != NULL, "no function definition in\n%s", r.out);
    result_free(&r);
    r = run_cli("emit", "prog.fuse", "--what", "ast", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "C") != NULL, "AST dump does not mention C:\n%s", r.out);
    result_free(&r);
}
END_TEST

/* ---- usage (these work without the library doing anything) ---- */

START_TEST(test_help_lists_commands)
{
    static const char *const commands[] = {"run", "check", "explain", "emit", "help"};
    Result r = run_cli("--help", NULL);
    expect_exit(&r, 0);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        ck_assert_msg(strstr(r.out, commands[i]) != NULL, "--help lacks %s", commands[i]);
    result_free(&r);
    r = run_cli("help", NULL);
    expect_exit(&r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "explain"));
    result_free(&r);
}
END_TEST

START_TEST(test_command_help)
{
    static const char *const run_flags[] = {"--out", "--input", "--base-dir", "--out-dir",
                                            "--threads", "--no-sinks"};
    Result r = run_cli("run", "--help", NULL);
    expect_exit(&r, 0);
    for (size_t i = 0; i < sizeof run_flags / sizeof run_flags[0]; i++)
        ck_assert_msg(strstr(r.out, run_flags[i]) != NULL, "run --help lacks %s", run_flags[i]);
    Result h = run_cli("help", "run", NULL);
    expect_exit(&h, 0);
    ck_assert_str_eq(h.out, r.out);
    result_free(&r);
    result_free(&h);
    r = run_cli("help", "emit", NULL);
    expect_exit(&r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "llvm-raw"));
    result_free(&r);
}
END_TEST

START_TEST(test_version)
{
    Result r = run_cli("--version", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.out, "fuse-jit " FUSE_VERSION_STRING "\n");
    result_free(&r);
}
END_TEST

/* Expects a usage error: exit 2, the standard prefix and a pointer to --help. */
static void expect_usage_error(Result r, const char *mentions)
{
    expect_exit(&r, 2);
    ck_assert_msg(strncmp(r.err, "fuse-jit: error: ", 17) == 0, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "--help") != NULL, "no --help hint in\n%s", r.err);
    ck_assert_msg(strstr(r.err, mentions) != NULL, "'%s' not in\n%s", mentions, r.err);
    ck_assert_str_eq(r.out, "");
    result_free(&r);
}

/* Option values are one word however they are spelt: semi-naive = semi_naive,
 * Monte-Carlo = monte_carlo; a misspelt one is still refused. */
START_TEST(test_option_value_spellings)
{
    write_text("prog.fuse", "X[i] = const([1,2])\nY[i] = 2 X[i]\nexport Y\n");
    Result r = run_cli("run", "prog.fuse", "--mode", "Fixpoint", "--fixpoint-strategy",
                       "semi-naive", "--projection", "Monte-Carlo", "--samples", "8", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.out, "[2. 4.]") != NULL, "output:\n%s", r.out);
    result_free(&r);
    r = run_cli("run", "prog.fuse", "--fixpoint-strategy", "semi-nave", NULL);
    expect_exit(&r, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--fixpoint-strategy expects synchronous or semi_naive"));
    result_free(&r);
    /* a library error without a position is named after the program, as usage errors */
    r = run_cli("run", "prog.fuse", "--projection", "monte_carlo", NULL);
    expect_exit(&r, 2);
    ck_assert_msg(strncmp(r.err, "fuse-jit: error: Monte Carlo projection needs samples", 52) == 0,
                  "stderr:\n%s", r.err);
    result_free(&r);
}
END_TEST

/* A recursive equation in single mode gets one sweep (SPEC §6): a warning names
 * the tensor and the mode that iterates; fixpoint mode says nothing. */
START_TEST(test_single_mode_recursion_warns)
{
    write_text("prog.fuse", "X[i] = const([1,2])\nAcc[i] = X[i] + 0.5 Acc[i]\nexport Acc\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "[1. 2.]")); /* one sweep: Acc read as zeros */
    ck_assert_msg(strstr(r.err, "warning: Acc reads itself") && strstr(r.err, "--mode fixpoint"),
                  "stderr:\n%s", r.err);
    result_free(&r);
    r = run_cli("run", "prog.fuse", "--mode", "fixpoint", NULL);
    expect_exit(&r, 0);
    ck_assert_msg(strstr(r.err, "reads itself") == NULL, "stderr:\n%s", r.err);
    result_free(&r);
}
END_TEST

START_TEST(test_usage_errors)
{
    write_text("prog.fuse", CONST_PROG);
    expect_usage_error(run_cli("frobnicate", NULL), "frobnicate");
    expect_usage_error(run_cli(NULL), "COMMAND");
    expect_usage_error(run_cli("run", NULL), "PROGRAM");
    expect_usage_error(run_cli("run", "prog.fuse", "--frob", NULL), "--frob");
    expect_usage_error(run_cli("run", "prog.fuse", "--out", NULL), "--out");
    expect_usage_error(run_cli("run", "prog.fuse", "--out", "x.txt", NULL), "x.txt");
    expect_usage_error(run_cli("run", "prog.fuse", "--compress", NULL), "--compress");
    expect_usage_error(run_cli("run", "prog.fuse", "--compress", "--out", "x.npy", NULL),
                       "--compress");
    expect_usage_error(run_cli("run", "prog.fuse", "--threads", "many", NULL), "many");
    expect_usage_error(run_cli("run", "prog.fuse", "--input", "A", NULL), "NAME=FILE");
    expect_usage_error(run_cli("run", "prog.fuse", "other.fuse", NULL), "other.fuse");
    expect_usage_error(run_cli("check", "prog.fuse", "--json", NULL), "--json");
    expect_usage_error(run_cli("emit", "prog.fuse", NULL), "--what");
    expect_usage_error(run_cli("emit", "prog.fuse", "--what=bytecode", NULL), "bytecode");
    expect_usage_error(run_cli("help", "nope", NULL), "nope");
}
END_TEST

/* Unknown commands, options and names get the nearest spelling. */
START_TEST(test_did_you_mean)
{
    write_text("prog.fuse", CONST_PROG);
    expect_usage_error(run_cli("rnu", "prog.fuse", NULL),
                       "unknown command 'rnu'; did you mean 'run'?");
    expect_usage_error(run_cli("help", "chek", NULL),
                       "unknown command 'chek'; did you mean 'check'?");
    expect_usage_error(run_cli("--verson", NULL), "unknown option '--verson'; did you mean "
                                                  "'--version'?");
    expect_usage_error(run_cli("run", "prog.fuse", "--outt", "x.npy", NULL),
                       "unknown option '--outt' for 'run'; did you mean '--out'?");
    expect_usage_error(run_cli("run", "prog.fuse", "-threads", "2", NULL),
                       "unknown option '-threads' for 'run'; did you mean '--threads'?");
    expect_usage_error(run_cli("run", "prog.fuse", "--max-iter=3", NULL),
                       "unknown option '--max-iter' for 'run'; did you mean '--max-iters'?");
    expect_usage_error(run_cli("run", "prog.fuse", "--zzzzzz", NULL), "unknown option "
                                                                      "'--zzzzzz' for 'run'\n");
    expect_usage_error(run_cli("explain", "prog.fuse", "--jsn", NULL),
                       "unknown option '--jsn' for 'explain'; did you mean '--json'?");

    float w[2] = {1, 2};
    write_npy("w.npy", 1, (int64_t[]){2}, w);
    write_text("src.fuse", "Weights[i] = \"w.npy\"\nOut[i] = Weights[i]\nexport Out\n");
    Result r = run_cli("run", "src.fuse", "--input", "Wieghts=w.npy", NULL);
    ck_assert_int_ne(r.code, 0);
    ck_assert_msg(strstr(r.err, "input 'Wieghts' does not name a source tensor of the program; "
                                "did you mean 'Weights'?"), "%s", r.err);
    result_free(&r);
    r = run_cli("run", "src.fuse", "--query", "Weihgts[0]", NULL);
    ck_assert_int_ne(r.code, 0);
    ck_assert_msg(strstr(r.err, "query: unknown tensor 'Weihgts'; did you mean 'Weights'?"),
                  "%s", r.err);
    result_free(&r);
    write_text("bad.fuse", "Weights[i] = const([1, 2])\nOut[i] = Weigths[i]\nexport Outt\n");
    r = run_cli("check", "bad.fuse", NULL);
    ck_assert_int_ne(r.code, 0);
    ck_assert_msg(strstr(r.err, "bad.fuse:2:10: error: unknown tensor 'Weigths'; did you mean "
                                "'Weights'?"), "%s", r.err);
    result_free(&r);
}
END_TEST

/* A test case with its own scratch root; timeout in seconds (0: Check's default). */
static TCase *new_case(const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, scratch_setup, NULL);
    if (timeout)
        tcase_set_timeout(tc, timeout);
    return tc;
}

static TCase *usage_case(void)
{
    TCase *tc = new_case("usage", 0);
    tcase_add_test(tc, test_help_lists_commands);
    tcase_add_test(tc, test_command_help);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_usage_errors);
    tcase_add_test(tc, test_option_value_spellings);
    tcase_add_test(tc, test_single_mode_recursion_warns);
    tcase_add_test(tc, test_did_you_mean);
    tcase_add_test(tc, test_missing_program_file);
    return tc;
}

static TCase *programs_case(void)
{
    TCase *tc = new_case("programs", TIMEOUT_S);
    tcase_add_test(tc, test_run_matmul_from_npy);
    tcase_add_test(tc, test_run_input_overrides_source);
    tcase_add_test(tc, test_run_transpose);
    tcase_add_test(tc, test_run_npz_stored_or_compressed);
    tcase_add_test(tc, test_run_diagonal);
    tcase_add_test(tc, test_run_row_softmax);
    tcase_add_test(tc, test_run_max_and_avg_projections);
    tcase_add_test(tc, test_run_broadcast_bias);
    tcase_add_test(tc, test_run_same_lhs_group_adds);
    tcase_add_test(tc, test_run_three_factor_join);
    tcase_add_test(tc, test_run_literal_factor);
    tcase_add_test(tc, test_run_elementwise_builtins);
    return tc;
}

static TCase *output_case(void)
{
    TCase *tc = new_case("output", TIMEOUT_S);
    tcase_add_test(tc, test_print_small_tensors);
    tcase_add_test(tc, test_print_elides_long_axes);
    tcase_add_test(tc, test_out_json);
    tcase_add_test(tc, test_out_single_file_needs_one_export);
    tcase_add_test(tc, test_sinks_written_and_suppressed);
    tcase_add_test(tc, test_base_dir_and_out_dir);
    tcase_add_test(tc, test_sink_links_cannot_leave_the_root);
    tcase_add_test(tc, test_vocab_sidecar_only_from_run);
    tcase_add_test(tc, test_vocab_with_nul_reads_back);
    tcase_add_test(tc, test_explain_lists_program_parts);
    tcase_add_test(tc, test_emit_llvm_and_ast);
    return tc;
}

static TCase *diagnostics_case(void)
{
    TCase *tc = new_case("diagnostics", TIMEOUT_S);
    tcase_add_test(tc, test_syntax_error_is_positioned);
    tcase_add_test(tc, test_check_reports_errors_and_ok);
    tcase_add_test(tc, test_unknown_tensor_is_exit_3);
    tcase_add_test(tc, test_size_conflict_is_exit_3);
    tcase_add_test(tc, test_missing_source_file);
    tcase_add_test(tc, test_truncated_npy_source);
    return tc;
}

/* ---- host-facing: queries into --out, input shapes and names ---- */

static const char QUERY_PROG[] = "Edge(x,y) = const([[0, 1, 0], [0, 0, 1], [0, 0, 0]])\n"
                                 "Path(x,y) = Edge(x,y)\n"
                                 "Path(x,z) = Edge(x,y) Path(y,z)\n"
                                 "export Path\n";

/* --query with --out: a member per query named by its text, or the only one */
START_TEST(test_query_results_go_to_out)
{
    write_text("tc.fuse", QUERY_PROG);
    Result r = run_cli("run", "tc.fuse", "--query", "Path[x=0]", "--query", "Edge", "--out",
                       "q.npz", NULL);
    expect_exit(&r, 0);
    ck_assert_str_eq(r.out, ""); /* nothing printed */
    result_free(&r);
    float *p0 = read_member("q.npz", "Path[x=0]", 1, (int64_t[]){3});
    const double want0[3] = {0, 1, 1}; /* 0 reaches 1 and 2 */
    expect_close("Path[x=0]", p0, want0, 3);
    free(p0);
    float *e = read_member("q.npz", "Edge", 2, (int64_t[]){3, 3});
    const double want_e[9] = {0, 1, 0, 0, 0, 1, 0, 0, 0};
    expect_close("Edge", e, want_e, 9);
    free(e);
    r = run_cli("run", "tc.fuse", "--query", "Path[y=2]", "--out", "q.npy", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *p2 = read_npy("q.npy", 1, (int64_t[]){3});
    const double want2[3] = {1, 1, 0};
    expect_close("Path[y=2]", p2, want2, 3);
    free(p2);
    r = run_cli("run", "tc.fuse", "--query", "Path", "--query", "Edge", "--out", "two.npy",
                NULL);
    expect_exit(&r, 2);
    ck_assert_msg(strstr(r.err, "fuse-jit: error: --out two.npy holds one tensor, but 2 "
                                "queries were given; use an .npz file to save them all\n"),
                  "%s", r.err);
    result_free(&r);
    r = run_cli("run", "tc.fuse", "--query", "Edge", "--query", "Edge", "--out", "e.npz", NULL);
    expect_exit(&r, 2);
    ck_assert_msg(strstr(r.err, "fuse-jit: error: --query 'Edge' is given twice; with --out "
                                "each query is a member named by its text\n"), "%s", r.err);
    result_free(&r);
    ck_assert(!file_exists("two.npy"));
    ck_assert(!file_exists("e.npz"));
}
END_TEST

/* --input of a shape the program cannot take names both shapes; a stale file
 * beside the bound source is not read */
START_TEST(test_input_shapes_and_stale_files)
{
    float stale[12] = {0}, x[10];
    for (int i = 0; i < 10; i++)
        x[i] = (float)i;
    write_npy("x.npy", 2, (int64_t[]){3, 4}, stale);
    write_npy("x5.npy", 2, (int64_t[]){2, 5}, x);
    write_npy("x4.npy", 2, (int64_t[]){3, 4}, stale);
    write_text("p.fuse", "X[i,j] = \"x.npy\"\nW[j] = const([1, 2, 3, 4, 5])\n"
                         "Y[i] = X[i,j] W[j]\nexport Y\n");
    Result r = run_cli("run", "p.fuse", "--input", "X=x5.npy", "--out", "y.npy", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *y = read_npy("y.npy", 1, (int64_t[]){2});
    double want[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++)
            want[i] += x[5 * i + j] * (j + 1);
    expect_close("Y", y, want, 2);
    free(y);
    r = run_cli("run", "p.fuse", "--input", "X=x4.npy", NULL);
    expect_exit(&r, 3);
    ck_assert_msg(strstr(r.err, "p.fuse:1:1: error: input X has shape (3, 4), but the program "
                                "needs (3, 5)\n"), "%s", r.err);
    result_free(&r);
    r = run_cli("run", "p.fuse", "--input", "Q=x4.npy", NULL);
    expect_exit(&r, 2);
    ck_assert_msg(strstr(r.err, "fuse-jit: error: input 'Q' does not name a source tensor of "
                                "the program (its sources: X)\n"), "%s", r.err);
    result_free(&r);
    r = run_cli("run", "p.fuse", NULL); /* unbound, the stale file is an error */
    expect_exit(&r, 3);
    ck_assert_msg(strstr(r.err, "size conflict for axis j: 4 (from \"x.npy\""), "%s", r.err);
    result_free(&r);
    r = run_cli("check", "p.fuse", NULL); /* check binds nothing: the same error */
    expect_exit(&r, 3);
    ck_assert_msg(strstr(r.err, "size conflict for axis j: 4 (from \"x.npy\""), "%s", r.err);
    ck_assert_str_eq(r.out, "");
    result_free(&r);
    write_text("q.fuse", "X[i] = \"absent.npy\"\nY[i] = X[i]\nexport Y\n");
    r = run_cli("check", "q.fuse", NULL); /* nor may a source file be missing */
    expect_exit(&r, 1);
    ck_assert_msg(strstr(r.err, "q.fuse:1:1: error: source X: "), "%s", r.err);
    ck_assert_msg(strstr(r.err, "absent.npy"), "%s", r.err);
    result_free(&r);
}
END_TEST

static TCase *host_case(void)
{
    TCase *tc = new_case("host", TIMEOUT_S);
    tcase_add_test(tc, test_query_results_go_to_out);
    tcase_add_test(tc, test_input_shapes_and_stale_files);
    return tc;
}

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    suite_add_tcase(s, usage_case());
    suite_add_tcase(s, programs_case());
    suite_add_tcase(s, output_case());
    suite_add_tcase(s, diagnostics_case());
    suite_add_tcase(s, host_case());
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
