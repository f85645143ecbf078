/*
 * test_programs.c: whole programs through `fuse-jit run`, one per language
 * feature or file format of SPEC §2-§3 and §7: every index form, every source
 * format read and every sink format written (checked against values computed
 * here), and a malformed file of each format, which must exit 1 naming the file.
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

/* Runs prog.fuse and returns export `name` from out.npz. */
static float *run_and_get(const char *text, const char *name, int rank, const int64_t *shape)
{
    run_program(text, "out.npz");
    return read_member("out.npz", name, rank, shape);
}

static void expect_values(const char *what, const float *got, const double *want, int64_t n)
{
    expect_close(what, got, want, n);
}

/* ---- index forms ---- */

START_TEST(test_slices)
{
    const char *prog = "X[i,j] = const([[0,1,2,3,4],[5,6,7,8,9]])\n"
                       "A[i,0:3] = X[i,0:3]\nB[i,::2] = X[i,::2]\nC[::-1] = X[1,::-1]\n"
                       "D[i,-2:] = X[i,-2:]\nS[i] = X[i,1:4]\n"
                       "export A\nexport B\nexport C\nexport D\nexport S\n";
    run_program(prog, "out.npz");
    float *a = read_member("out.npz", "A", 2, (int64_t[]){2, 3});
    float *b = read_member("out.npz", "B", 2, (int64_t[]){2, 3});
    float *c = read_member("out.npz", "C", 1, (int64_t[]){5});
    float *d = read_member("out.npz", "D", 2, (int64_t[]){2, 2});
    float *s = read_member("out.npz", "S", 1, (int64_t[]){2});
    expect_values("A", a, (double[]){0, 1, 2, 5, 6, 7}, 6);
    expect_values("B", b, (double[]){0, 2, 4, 5, 7, 9}, 6);
    expect_values("C", c, (double[]){9, 8, 7, 6, 5}, 5);
    expect_values("D", d, (double[]){3, 4, 8, 9}, 4);
    expect_values("S", s, (double[]){6, 21}, 2);
    free(a), free(b), free(c), free(d), free(s);
}
END_TEST

START_TEST(test_primes_shifts_and_selection)
{
    float *y = run_and_get("X[t] = const([1,2,3,4])\nM[p,p'] = const([[1,2],[3,4]])\n"
                           "Y[t] = X[t+1] + X[t-1] + X[-1]\nT[p',p] = M[p,p']\n"
                           "export Y\nexport T\n", "Y", 1, (int64_t[]){4});
    /* X[t+1] = 2 3 4 0, X[t-1] = 0 1 2 3, X[-1] = 4 */
    expect_values("Y", y, (double[]){6, 8, 10, 7}, 4);
    free(y);
    float *t = read_member("out.npz", "T", 2, (int64_t[]){2, 2});
    expect_values("T", t, (double[]){1, 3, 2, 4}, 4);
    free(t);
}
END_TEST

START_TEST(test_lhs_integer_index_is_syntax_error)
{
    write_text("prog.fuse", "X[i] = const([1,2])\nY[1] = X[i]\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:2:"));
    ck_assert_ptr_nonnull(strstr(r.err, "index"));
    result_free(&r);
}
END_TEST

START_TEST(test_lhs_offset_is_error)
{
    write_text("prog.fuse", "X[t] = const([1,2])\nY[t+1] = X[t]\n");
    Result r = run_cli("check", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:2:"));
    result_free(&r);
}
END_TEST

START_TEST(test_concat_merges_last_two_axes)
{
    const char *prog = "X[a,b,c] = const([[[1,2,3],[4,5,6]],[[7,8,9],[10,11,12]]])\n"
                       "M[a,m] = concat(X[a,b,c])\nS[a] = M[a,m]\nexport M\nexport S\n";
    float *m = run_and_get(prog, "M", 2, (int64_t[]){2, 6});
    expect_values("M", m, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 12);
    free(m);
    float *s = read_member("out.npz", "S", 1, (int64_t[]){2});
    expect_values("S", s, (double[]){21, 57}, 2);
    free(s);
}
END_TEST

/* ---- sources of every format ---- */

static const char SUM_PROG[] = "X[i,j] = \"%s\"\nS[i] = X[i,j]\nexport S\nexport X\n";

static void run_sum(const char *file, const int64_t *shape, const double *want_x)
{
    char prog[256];
    snprintf(prog, sizeof prog, SUM_PROG, file);
    run_program(prog, "out.npz");
    float *x = read_member("out.npz", "X", 2, shape);
    float *s = read_member("out.npz", "S", 1, shape);
    int64_t n = shape[0] * shape[1];
    double want_s[16] = {0};
    for (int64_t k = 0; k < n; k++)
        want_s[k / shape[1]] += want_x[k];
    expect_values(file, x, want_x, n);
    expect_values("S", s, want_s, shape[0]);
    free(x), free(s);
}

START_TEST(test_source_json_and_jsonl)
{
    write_text("x.json", "[[1, 2.5, -3], [4, true, false]]");
    run_sum("x.json", (int64_t[]){2, 3}, (double[]){1, 2.5, -3, 4, 1, 0});
    write_text("x.jsonl", "{\"schema\":\"fuse.tensor\",\"version\":1,\"shape\":[2,2]}\n"
                          "{\"value\":[[1,2],[3,4]]}\n");
    run_sum("x.jsonl", (int64_t[]){2, 2}, (double[]){1, 2, 3, 4});
}
END_TEST

START_TEST(test_source_npz_member_choice)
{
    fuse_tensor t[2] = {{.dtype = FUSE_F32, .rank = 2, .shape = {2, 2}, .data = (float[]){1, 2, 3, 4}},
                        {.dtype = FUSE_F32, .rank = 2, .shape = {2, 2}, .data = (float[]){5, 6, 7, 8}}};
    const char *names[2] = {"other", "X"};
    char *err = NULL;
    ck_assert_int_eq(io_npz_write(spath("x.npz"), names, t, 2, &err), FUSE_OK);
    /* no arr_0 and two members: the member named like the tensor */
    run_sum("x.npz", (int64_t[]){2, 2}, (double[]){5, 6, 7, 8});
}
END_TEST

START_TEST(test_source_facts_padded)
{
    /* facts give lower bounds: X is 2x3 from the file, padded to 3x3 by Y */
    write_text("r.tsv", "0\t1\n1\t2\n");
    write_text("r.csv", "0,1\n1,2\n");
    const char *prog = "R(x,y) = \"r.tsv\"\nC(x,y) = \"r.csv\"\nY[x,y] = const([[1,1,1],[1,1,1],[1,1,1]])\n"
                       "Z[x,y] = R(x,y) Y[x,y] + C(x,y)\nexport Z\n";
    float *z = run_and_get(prog, "Z", 2, (int64_t[]){3, 3});
    expect_values("Z", z, (double[]){0, 2, 0, 0, 0, 2, 0, 0, 0}, 9);
    free(z);
}
END_TEST

START_TEST(test_source_bag_of_words)
{
    write_text("p.txt", "the cat saw the dog\n");
    float *x = run_and_get("X[p,t] = \"p.txt\"\nC[t] = X[p,t]\nexport C\nexport X\n", "C", 1,
                           (int64_t[]){4});
    expect_values("C", x, (double[]){2, 1, 1, 1}, 4);
    free(x);
    char *vocab = slurp(spath("p.vocab.json"));
    ck_assert_ptr_nonnull(strstr(vocab, "\"dog\""));
    free(vocab);
}
END_TEST

START_TEST(test_source_safetensors)
{
    const char *hdr = "{\"X\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    uint64_t n = strlen(hdr);
    unsigned char buf[256];
    for (int k = 0; k < 8; k++)
        buf[k] = (unsigned char)(n >> (8 * k));
    memcpy(buf + 8, hdr, n);
    float vals[4] = {1.5f, -2, 3, 0.25f};
    memcpy(buf + 8 + n, vals, sizeof vals);
    write_file(spath("x.safetensors"), buf, 8 + n + sizeof vals);
    run_sum("x.safetensors", (int64_t[]){2, 2}, (double[]){1.5, -2, 3, 0.25});
}
END_TEST

/* A float16 .npy source: written as float16 here, read and widened
 * to float32 by the runner; the half values are exact in float32. */
START_TEST(test_source_npy_float16)
{
    const float v[] = {1.0f, -2.0f, 0.333251953125f, 65504.0f, 0x1p-24f, 0.5f};
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_tensor_from_f32(FUSE_F16, 2, (int64_t[]){2, 3}, v, &t), FUSE_OK);
    ck_assert_int_eq(io_npy_write(spath("h.npy"), &t, &err), FUSE_OK);
    free(t.data);
    /* Read normally, then memory-mapped (any size is mapped with threshold 0). */
    for (int mapped = 0; mapped <= 1; mapped++) {
        setenv("FUSE_JIT_MMAP_MIN_BYTES", mapped ? "0" : "", 1);
        run_sum("h.npy", (int64_t[]){2, 3},
                (double[]){1, -2, 0.333251953125, 65504, 0x1p-24, 0.5});
        float *x = read_member("out.npz", "X", 2, (int64_t[]){2, 3});
        for (int i = 0; i < 6; i++)
            ck_assert_msg(x[i] == v[i], "X[%d] = %a, want %a", i, x[i], v[i]);
        free(x);
    }
    unsetenv("FUSE_JIT_MMAP_MIN_BYTES");
}
END_TEST

/* ---- sinks of every format ---- */

START_TEST(test_sinks_every_format)
{
    write_text("prog.fuse", "X[i,j] = const([[1,0,2],[0,3,0]])\n"
                            "\"o/x.npy\" = X[i,j]\n\"o/x.npz\" = X[i,j]\n\"o/x.json\" = X[i,j]\n"
                            "\"o/x.jsonl\" = X[i,j]\n\"o/x.tsv\" = X[i,j]\n\"o/x.csv\" = X[i,j]\n"
                            "\"o/t.jsonl\" = topk(X[i,j], k=2)\n\"o/xt.npy\" = X[j,i]\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *x = read_npy("o/x.npy", 2, (int64_t[]){2, 3});
    expect_values("npy", x, (double[]){1, 0, 2, 0, 3, 0}, 6);
    free(x);
    /* a sink keeps axes in order of first appearance: naming X[j,i] relabels, it
     * does not transpose */
    float *xt = read_npy("o/xt.npy", 2, (int64_t[]){2, 3});
    expect_values("npy", xt, (double[]){1, 0, 2, 0, 3, 0}, 6);
    free(xt);
    float *z = read_member("o/x.npz", "arr_0", 2, (int64_t[]){2, 3});
    expect_values("npz", z, (double[]){1, 0, 2, 0, 3, 0}, 6);
    free(z);
    char *tsv = slurp(spath("o/x.tsv")), *csv = slurp(spath("o/x.csv"));
    ck_assert_str_eq(tsv, "0\t0\n0\t2\n1\t1\n");
    ck_assert_str_eq(csv, "0,0\n0,2\n1,1\n");
    char *json = slurp(spath("o/x.json")), *jsonl = slurp(spath("o/x.jsonl"));
    ck_assert_ptr_nonnull(strstr(json, "[[1"));
    ck_assert_ptr_nonnull(strstr(jsonl, "\"fuse.tensor\""));
    ck_assert_ptr_nonnull(strstr(jsonl, "\"shape\": [2, 3]"));
    char *topk = slurp(spath("o/t.jsonl"));
    ck_assert_ptr_nonnull(strstr(topk, "{\"topk\":[{\"index\":2,\"value\":2.0},"
                                       "{\"index\":0,\"value\":1.0}]}"));
    ck_assert_ptr_nonnull(strstr(topk, "{\"topk\":[{\"index\":1,\"value\":3.0},"
                                       "{\"index\":0,\"value\":0.0}]}"));
    free(tsv), free(csv), free(json), free(jsonl), free(topk);
}
END_TEST

/* A sink that run would refuse is a program error that check reports too (exit 3),
 * before anything runs: escaping the output root, a format no sink writes, and
 * two sinks writing one file (the last would silently win). */
START_TEST(test_sink_may_not_escape_root)
{
    const char *progs[][2] = {
        {"X[i] = const([1,2])\n\"../escape.npy\" = X[i]\n", "inside the output directory"},
        {"X[i] = const([1,2])\n\"x.xyz\" = X[i]\n", "unsupported sink format '.xyz'"},
        {"X[i] = const([1,2])\n\"a.npy\" = X[i]\n\"./a.npy\" = 2 X[i]\n",
         "two sinks write \"./a.npy\": the first is at line 2"},
    };
    for (size_t k = 0; k < sizeof progs / sizeof progs[0]; k++) {
        write_text("prog.fuse", progs[k][0]);
        const char *cmds[2] = {"check", "run"};
        for (int c = 0; c < 2; c++) {
            Result r = run_cli(cmds[c], "prog.fuse", NULL);
            expect_exit(&r, 3);
            ck_assert_msg(strstr(r.err, "prog.fuse:") && strstr(r.err, progs[k][1]), "%s",
                          r.err);
            result_free(&r);
        }
        ck_assert(!file_exists("a.npy") && !file_exists("x.xyz"));
    }
}
END_TEST

START_TEST(test_topk_outside_sink_is_error)
{
    write_text("prog.fuse", "X[i] = const([1,2])\nY[i] = topk(X[i], k=1)\n");
    Result r = run_cli("check", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "topk is only allowed"));
    result_free(&r);
}
END_TEST

/* ---- malformed files: exit 1, the file named, no crash ---- */

typedef struct Malformed {
    const char *file;
    const char *bytes;
    size_t n;
} Malformed;

/* A string literal and its length without the terminating NUL. */
#define BYTES(s) s, sizeof(s) - 1

static const Malformed MALFORMED[] = {
    {"bad.npy", BYTES("\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }")},
    {"complex.npy", BYTES("\x93NUMPY\x01\x00\x3c\x00{'descr': '<c8', 'fortran_order': False, 'shape': (1, 1), }\n"
                          "\0\0\x80\x3f\0\0\0\0")},
    {"bad.npz", BYTES("PK\x03\x04 this is not a zip archive")},
    {"bad.json", BYTES("[[1, 2], [3]]")},
    {"bad.jsonl", BYTES("{\"schema\":\"fuse.tensor\",\"version\":1,\"shape\":[2]}\n{\"value\":[1,2,3]}\n")},
    {"bad.tsv", BYTES("0\t1\n2\n")},
    {"bad.csv", BYTES("0,x\n")},
    {"bad.safetensors", BYTES("\xff\xff\x00\x00\x00\x00\x00\x00{}")},
};

START_TEST(test_malformed_source_files)
{
    for (size_t i = 0; i < sizeof MALFORMED / sizeof MALFORMED[0]; i++) {
        const Malformed *m = &MALFORMED[i];
        write_file(spath(m->file), m->bytes, m->n);
        char prog[128];
        snprintf(prog, sizeof prog, "X[i,j] = \"%s\"\nS[i] = X[i,j]\nexport S\n", m->file);
        write_text("prog.fuse", prog);
        Result r = run_cli("run", "prog.fuse", NULL);
        ck_assert_msg(r.code == 1, "%s: exit %d\n%s", m->file, r.code, r.err);
        ck_assert_msg(strstr(r.err, m->file) != NULL, "%s not named in: %s", m->file, r.err);
        ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:1:1"));
        result_free(&r);
    }
}
END_TEST

START_TEST(test_bag_of_words_bad_utf8)
{
    write_file(spath("bad.txt"), BYTES("ok \xff\xfe words\n"));
    write_text("prog.fuse", "X[p,t] = \"bad.txt\"\nexport X\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "bad.txt"));
    result_free(&r);
}
END_TEST

/* ---- the shipped examples the README runs ---- */

#define EXAMPLES FUSE_TEST_DIR "/../examples"

static float *read_example_npy(const char *path, int rank, const int64_t *shape)
{
    fuse_tensor t;
    char *err = NULL;
    ck_assert_msg(io_npy_read(path, &t, &err) == FUSE_OK, "%s: %s", path, err ? err : "?");
    return take_f32(&t, path, rank, shape);
}

/* tc.fuse: the closure of the chain 0 -> 1 -> 2 -> 3 is every (x, y) with x < y. */
START_TEST(test_example_transitive_closure)
{
    Result r = run_cli("run", EXAMPLES "/tc.fuse", "--mode", "fixpoint", "--out",
                       spath("out.npz"), NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *path = read_member("out.npz", "Path", 2, (int64_t[]){4, 4});
    double want[16];
    for (int x = 0; x < 4; x++)
        for (int y = 0; y < 4; y++)
            want[x * 4 + y] = x < y;
    expect_close("Path", path, want, 16);
    free(path);
}
END_TEST

/* rnn.fuse: five steps of h = tanh(W h + x) from the seed, computed here. */
START_TEST(test_example_rnn_steps)
{
    Result r = run_cli("run", EXAMPLES "/rnn.fuse", "--steps", "5", "--input",
                       "H@t-1=" EXAMPLES "/data/rnn_h0.npy", "--out", spath("out.npz"), NULL);
    expect_exit(&r, 0);
    result_free(&r);
    float *w = read_example_npy(EXAMPLES "/data/rnn_w.npy", 2, (int64_t[]){4, 4});
    float *x = read_example_npy(EXAMPLES "/data/rnn_x.npy", 1, (int64_t[]){4});
    float *h0 = read_example_npy(EXAMPLES "/data/rnn_h0.npy", 1, (int64_t[]){4});
    double h[4], next[4];
    for (int i = 0; i < 4; i++)
        h[i] = h0[i];
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 4; i++) {
            double acc = x[i];
            for (int j = 0; j < 4; j++)
                acc += (double)w[i * 4 + j] * h[j];
            next[i] = tanh(acc);
        }
        memcpy(h, next, sizeof h);
    }
    float *got = read_member("out.npz", "H", 1, (int64_t[]){4});
    expect_close("H", got, h, 4);
    free(w), free(x), free(h0), free(got);
}
END_TEST

static Suite *programs_suite(void)
{
    Suite *s = suite_create("programs");
    TCase *ix = harness_case("index forms");
    tcase_add_test(ix, test_slices);
    tcase_add_test(ix, test_primes_shifts_and_selection);
    tcase_add_test(ix, test_lhs_integer_index_is_syntax_error);
    tcase_add_test(ix, test_lhs_offset_is_error);
    tcase_add_test(ix, test_concat_merges_last_two_axes);
    suite_add_tcase(s, ix);
    TCase *files = harness_case("files");
    tcase_add_test(files, test_source_json_and_jsonl);
    tcase_add_test(files, test_source_npz_member_choice);
    tcase_add_test(files, test_source_facts_padded);
    tcase_add_test(files, test_source_bag_of_words);
    tcase_add_test(files, test_source_safetensors);
    tcase_add_test(files, test_source_npy_float16);
    tcase_add_test(files, test_sinks_every_format);
    tcase_add_test(files, test_sink_may_not_escape_root);
    tcase_add_test(files, test_topk_outside_sink_is_error);
    tcase_add_test(files, test_malformed_source_files);
    tcase_add_test(files, test_bag_of_words_bad_utf8);
    suite_add_tcase(s, files);
    TCase *examples = harness_case("examples");
    tcase_add_test(examples, test_example_transitive_closure);
    tcase_add_test(examples, test_example_rnn_steps);
    suite_add_tcase(s, examples);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(programs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
