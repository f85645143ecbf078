/*
 * test_formats.c: the Check suite for the file formats of facts.c (.tsv/.csv),
 * text.c (bag of words and its vocabulary sidecar), topk.c (fuse.topk sink) and
 * readers.c (.json, .jsonl, .safetensors): good files with every value checked,
 * and tables of malformed files that must each fail with FUSE_E_IO and a message
 * naming the file. Every test works in its own mkdtemp directory.
 */
#define _XOPEN_SOURCE 700

#include "harness.h"
#include "runtime.h"

#include <check.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- scratch directory and file helpers ---- */


/* A path inside the scratch directory; eight rotating buffers. */
static const char *P(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", scratch, name);
    return b;
}

static void write_text_at(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

/* The whole file, NUL-terminated (malloc'd); NULL if it cannot be read. */
static char *slurp_n(const char *path, size_t *n)
{
    void *data;
    size_t len;
    if (sup_read_file(path, &data, &len, NULL) != FUSE_OK)
        return NULL;
    if (n)
        *n = len;
    return data;
}

static void assert_file_text(const char *path, const char *want)
{
    char *got = slurp_n(path, NULL);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

static bool path_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Checks dtype, shape and every value (NaN matches NaN). */
static void assert_tensor(const fuse_tensor *t, int rank, const int64_t *shape,
                          const float *want)
{
    ck_assert_int_eq(t->dtype, FUSE_F32);
    ck_assert_int_eq(t->rank, rank);
    for (int d = 0; d < rank; d++)
        ck_assert_int_eq(t->shape[d], shape[d]);
    int64_t n = io_shape_count(rank, shape);
    const float *x = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i]))
            ck_assert_msg(isnan(x[i]), "element %lld: want NaN, got %g", (long long)i, x[i]);
        else
            ck_assert_msg(x[i] == want[i], "element %lld: want %g, got %g", (long long)i,
                          want[i], x[i]);
    }
}

/* A malformed-input case: the file's content and a substring the message needs
 * besides the file name (a line number, a reason). len 0 means strlen. */
typedef struct BadCase {
    const char *content;
    size_t len;
    const char *needle;
} BadCase;

typedef fuse_status (*ReadFn)(const char *path, fuse_tensor *out, char **err);

/* Writes the case to `name`, reads it, and demands FUSE_E_IO naming the file. */
static void assert_bad_file(ReadFn read, const char *name, const BadCase *c)
{
    const char *path = P(name);
    write_file(path, c->content, c->len ? c->len : strlen(c->content));
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(read(path, &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, path) != NULL, "message does not name the file: %s", err);
    ck_assert_msg(strstr(err, c->needle) != NULL, "message lacks '%s': %s", c->needle, err);
    ck_assert_ptr_null(t.data);
    free(err);
}

/* ---- facts: reading ---- */

START_TEST(test_facts_read_tsv)
{
    write_text_at(P("edge.tsv"), "0\t1\n1\t2\n2\t2\n");
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_facts_read(P("edge.tsv"), &t, &err), FUSE_OK);
    const int64_t shape[] = {3, 3};
    const float want[] = {0, 1, 0, 0, 0, 1, 0, 0, 1};
    assert_tensor(&t, 2, shape, want);
    free(t.data);
}
END_TEST

START_TEST(test_facts_read_forgiving_csv)
{
    /* comments, CRLF, blank lines, blanks around fields, '+', separator runs, no
     * final newline, a duplicate fact */
    write_text_at(P("f.csv"), "# parent, child\r\n\r\n 0 , 1 \r\n+1,\t2\r\n   \n2,,0\n1\t2");
    fuse_tensor t;
    ck_assert_int_eq(io_facts_read(P("f.csv"), &t, NULL), FUSE_OK);
    const int64_t shape[] = {3, 3};
    const float want[] = {0, 1, 0, 0, 0, 1, 1, 0, 0};
    assert_tensor(&t, 2, shape, want);
    free(t.data);
}
END_TEST

START_TEST(test_facts_read_rank1_and_rank3)
{
    write_text_at(P("v.tsv"), "3\n0\n");
    fuse_tensor t;
    ck_assert_int_eq(io_facts_read(P("v.tsv"), &t, NULL), FUSE_OK);
    const int64_t s1[] = {4};
    const float w1[] = {1, 0, 0, 1};
    assert_tensor(&t, 1, s1, w1);
    free(t.data);

    write_text_at(P("r3.tsv"), "1\t0\t2\n0\t1\t0\n");
    ck_assert_int_eq(io_facts_read(P("r3.tsv"), &t, NULL), FUSE_OK);
    const int64_t s3[] = {2, 2, 3};
    float w3[12] = {0};
    w3[0 * 6 + 1 * 3 + 0] = 1;
    w3[1 * 6 + 0 * 3 + 2] = 1;
    assert_tensor(&t, 3, s3, w3);
    free(t.data);
}
END_TEST

START_TEST(test_facts_read_empty)
{
    write_text_at(P("none.tsv"), "# no facts yet\n\n");
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_facts_read(P("none.tsv"), &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, P("none.tsv")));
    ck_assert_ptr_nonnull(strstr(err, "rank"));
    free(err);
    /* with the rank known, an empty relation */
    ck_assert_int_eq(io_facts_read_rank(P("none.tsv"), 2, &t, NULL), FUSE_OK);
    ck_assert_int_eq(t.rank, 2);
    ck_assert_int_eq(t.shape[0], 0);
    ck_assert_int_eq(t.shape[1], 0);
    free(t.data);
    write_text_at(P("zero.tsv"), "");
    ck_assert_int_eq(io_facts_read_rank(P("zero.tsv"), 1, &t, NULL), FUSE_OK);
    ck_assert_int_eq(t.rank, 1);
    ck_assert_int_eq(t.shape[0], 0);
    free(t.data);
}
END_TEST

START_TEST(test_facts_read_rank_mismatch)
{
    write_text_at(P("two.tsv"), "0\t1\n");
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_facts_read_rank(P("two.tsv"), 3, &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, ":1:"));
    ck_assert_ptr_nonnull(strstr(err, "expected 3"));
    free(err);
    ck_assert_int_eq(io_facts_read_rank(P("two.tsv"), 2, &t, NULL), FUSE_OK);
    free(t.data);
}
END_TEST

START_TEST(test_facts_read_missing_file)
{
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_facts_read(P("absent.tsv"), &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, P("absent.tsv")));
    free(err);
}
END_TEST

static const BadCase bad_facts[] = {
    {"0\t1\n0\t1\t2\n", 0, ":2: 3 columns, expected 2"},
    {"0\t1\n3\n", 0, ":2: 1 column"},
    {"0\t-1\n", 0, ":1: negative"},
    {"src\tdst\n0\t1\n", 0, ":1: 'src'"},
    {"0\t1\n1.5\t2\n", 0, ":2:"},
    {"0 1\n", 0, ":1:"},
    {"0\t1\n+\t2\n", 0, ":2:"},
    {"0\t99999999999\n", 0, ":1: coordinate '99999999999' is too large"},
    {"100000\t100000\n", 0, "too large"},
    {"0\t1\t2\t3\t4\t5\t6\t7\t8\n", 0, ":1: more than 8 columns"},
    {",\t,\n", 0, ":1: a line of separators"},
    {"0\t1\n\n\n0\tx\n", 0, ":4:"},
    {"0\t1\r\n0\t1\t1\r\n", 0, ":2:"},
    {"0x1\t2\n", 0, ":1:"},
    {"1_0\t2\n", 0, ":1:"},
    {"0\t1\n0\t\0\n", 8, ":2:"},
    {"-\t1\n", 0, ":1:"},
};

START_TEST(test_facts_read_malformed)
{
    assert_bad_file(io_facts_read, "bad.tsv", &bad_facts[_i]);
}
END_TEST

/* ---- facts: writing ---- */

/* A float32 tensor over caller storage. */
static fuse_tensor f32_tensor(int rank, const int64_t *shape, float *data)
{
    fuse_tensor t = {.dtype = FUSE_F32, .rank = rank, .data = data};
    for (int d = 0; d < rank; d++)
        t.shape[d] = shape[d];
    return t;
}

START_TEST(test_facts_write_known)
{
    float x[] = {0, 1, 2, 0};
    const int64_t shape[] = {2, 2};
    fuse_tensor t = f32_tensor(2, shape, x);
    ck_assert_int_eq(io_facts_write(P("out.tsv"), &t, NULL), FUSE_OK);
    assert_file_text(P("out.tsv"), "0\t1\n1\t0\n");
    ck_assert_int_eq(io_facts_write(P("out.CSV"), &t, NULL), FUSE_OK);
    assert_file_text(P("out.CSV"), "0,1\n1,0\n");
}
END_TEST

START_TEST(test_facts_write_ranks_and_dtypes)
{
    float v[] = {0, 5, 0, -1};
    const int64_t s1[] = {4};
    fuse_tensor t = f32_tensor(1, s1, v);
    ck_assert_int_eq(io_facts_write(P("v.tsv"), &t, NULL), FUSE_OK);
    assert_file_text(P("v.tsv"), "1\n3\n");

    float c[8] = {0};
    c[0 * 4 + 1 * 2 + 1] = 1;
    c[1 * 4 + 0 * 2 + 0] = 0.5f;
    const int64_t s3[] = {2, 2, 2};
    t = f32_tensor(3, s3, c);
    ck_assert_int_eq(io_facts_write(P("c.tsv"), &t, NULL), FUSE_OK);
    assert_file_text(P("c.tsv"), "0\t1\t1\n1\t0\t0\n");

    int32_t iv[] = {0, 0, 7, 0, 0, -2};
    fuse_tensor ti = {.dtype = FUSE_I32, .rank = 2, .shape = {2, 3}, .data = iv};
    ck_assert_int_eq(io_facts_write(P("i.csv"), &ti, NULL), FUSE_OK);
    assert_file_text(P("i.csv"), "0,2\n1,2\n");

    double dv[] = {1e-300, 0, NAN};
    fuse_tensor td = {.dtype = FUSE_F64, .rank = 1, .shape = {3}, .data = dv};
    ck_assert_int_eq(io_facts_write(P("d.tsv"), &td, NULL), FUSE_OK);
    assert_file_text(P("d.tsv"), "0\n2\n");

    uint16_t hv[] = {0x0000, 0x8000, 0x0001, 0x7E00}; /* +0, -0, 2^-24, NaN */
    fuse_tensor th = {.dtype = FUSE_F16, .rank = 1, .shape = {4}, .data = hv};
    ck_assert_int_eq(io_facts_write(P("h.tsv"), &th, NULL), FUSE_OK);
    assert_file_text(P("h.tsv"), "2\n3\n");
}
END_TEST

START_TEST(test_facts_write_datalog_case)
{
    /* conformance case 14: Aunt[x,z] = Sibling[x,y] Parent[y,z] */
    const float parent[3][3] = {{0, 1, 0}, {0, 0, 1}, {0, 0, 0}};
    const float sibling[3][3] = {{0, 0, 1}, {0, 0, 0}, {1, 0, 0}};
    float aunt[9] = {0}, anc[9] = {0};
    for (int x = 0; x < 3; x++)
        for (int z = 0; z < 3; z++) {
            float step = 0;
            for (int y = 0; y < 3; y++) {
                aunt[x * 3 + z] += sibling[x][y] * parent[y][z];
                step += parent[x][y] * parent[y][z];
            }
            anc[x * 3 + z] = parent[x][z] + step > 0 ? 1.0f : 0.0f;
        }
    const int64_t shape[] = {3, 3};
    fuse_tensor t = f32_tensor(2, shape, aunt);
    ck_assert_int_eq(io_facts_write(P("runs/logic_aunt.tsv"), &t, NULL), FUSE_OK);
    assert_file_text(P("runs/logic_aunt.tsv"), "2\t1\n");
    t = f32_tensor(2, shape, anc);
    ck_assert_int_eq(io_facts_write(P("runs/logic_ancestor.tsv"), &t, NULL), FUSE_OK);
    assert_file_text(P("runs/logic_ancestor.tsv"), "0\t1\n0\t2\n1\t2\n");
}
END_TEST

START_TEST(test_facts_write_edge_cases)
{
    float z[6] = {0};
    const int64_t shape[] = {2, 3};
    fuse_tensor t = f32_tensor(2, shape, z);
    ck_assert_int_eq(io_facts_write(P("a/b/c/none.tsv"), &t, NULL), FUSE_OK);
    assert_file_text(P("a/b/c/none.tsv"), "");

    float s = 1;
    fuse_tensor sc = f32_tensor(0, NULL, &s);
    char *err = NULL;
    ck_assert_int_eq(io_facts_write(P("scalar.tsv"), &sc, &err), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(err, P("scalar.tsv")));
    ck_assert(!path_exists(P("scalar.tsv")));
    free(err);
}
END_TEST

START_TEST(test_facts_round_trip)
{
    float x[3 * 4 * 2];
    for (int i = 0; i < 24; i++)
        x[i] = (i * 7 % 5 == 1) ? 1.0f : 0.0f;
    x[23] = 1; /* the last cell, so the read-back sizes are exact */
    const int64_t shape[] = {3, 4, 2};
    fuse_tensor t = f32_tensor(3, shape, x);
    ck_assert_int_eq(io_facts_write(P("rt.csv"), &t, NULL), FUSE_OK);
    fuse_tensor back;
    ck_assert_int_eq(io_facts_read(P("rt.csv"), &back, NULL), FUSE_OK);
    assert_tensor(&back, 3, shape, x);
    free(back.data);
}
END_TEST

/* ---- bag of words ---- */

static const char case03_vocab[] =
    "{\"version\": 1, \"items\": [{\"token\": \"Alice\", \"index\": 0}, {\"token\": "
    "\"loves\", \"index\": 1}, {\"token\": \"Bob\", \"index\": 2}, {\"token\": \"coding\", "
    "\"index\": 3}]}\n";

/* Expects a one-hot (rows × vsize) matrix with row p at column cols[p]. */
static void assert_one_hot(const fuse_tensor *t, int64_t rows, int64_t vsize,
                           const int64_t *cols)
{
    float *want = calloc((size_t)(rows * vsize + 1), sizeof *want);
    for (int64_t p = 0; p < rows; p++)
        want[p * vsize + cols[p]] = 1;
    const int64_t shape[] = {rows, vsize};
    assert_tensor(t, 2, shape, want);
    free(want);
}

/* Reads the bag of words `name` of the scratch directory as a run that writes
 * sinks does, the scratch directory being the output root: the vocabulary is
 * saved there, beside the text. */
static fuse_status bow_read_saving(const char *name, fuse_tensor *t, char **warn, char **err)
{
    char *rel = io_bow_saved_vocab_path(name);
    IoVocabPlace place = {.root = scratch, .rel = rel, .save = true};
    fuse_status st = io_bow_read_ex(P(name), &place, t, warn, err);
    free(rel);
    return st;
}

START_TEST(test_bow_case03_sidecar_untouched)
{
    write_text_at(P("prompt.txt"), "Alice loves Bob Alice loves coding");
    write_text_at(P("prompt.vocab.json"), case03_vocab);
    struct stat before, after;
    ck_assert_int_eq(stat(P("prompt.vocab.json"), &before), 0);
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_bow_read(P("prompt.txt"), &t, &err), FUSE_OK);
    const int64_t cols[] = {0, 1, 2, 0, 1, 3};
    assert_one_hot(&t, 6, 4, cols);
    free(t.data);
    assert_file_text(P("prompt.vocab.json"), case03_vocab);
    ck_assert_int_eq(stat(P("prompt.vocab.json"), &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino); /* not replaced by a rename */
}
END_TEST

START_TEST(test_bow_sidecar_created)
{
    write_text_at(P("doc.txt"), "b a b\n");
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("doc.txt", &t, NULL, NULL), FUSE_OK);
    const int64_t cols[] = {0, 1, 0};
    assert_one_hot(&t, 3, 2, cols);
    free(t.data);
    const char *want = "{\"version\": 1, \"items\": [{\"token\": \"b\", \"index\": 0}, "
                       "{\"token\": \"a\", \"index\": 1}]}\n";
    assert_file_text(P("doc.vocab.json"), want);
    struct stat before, after;
    ck_assert_int_eq(stat(P("doc.vocab.json"), &before), 0);
    ck_assert_int_eq(bow_read_saving("doc.txt", &t, NULL, NULL), FUSE_OK);
    assert_one_hot(&t, 3, 2, cols);
    free(t.data);
    ck_assert_int_eq(stat(P("doc.vocab.json"), &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino);
    assert_file_text(P("doc.vocab.json"), want);
}
END_TEST

START_TEST(test_bow_sidecar_extended)
{
    write_text_at(P("e.md"), "y z x\tw\n\nz");
    write_text_at(P("e.vocab.json"), "{\"version\":1,\"items\":[{\"token\":\"x\",\"index\":0},"
                                  "{\"token\":\"y\",\"index\":1}]}");
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("e.md", &t, NULL, NULL), FUSE_OK);
    const int64_t cols[] = {1, 2, 0, 3, 2};
    assert_one_hot(&t, 5, 4, cols);
    free(t.data);
    assert_file_text(P("e.vocab.json"),
                     "{\"version\": 1, \"items\": [{\"token\": \"x\", \"index\": 0}, "
                     "{\"token\": \"y\", \"index\": 1}, {\"token\": \"z\", \"index\": 2}, "
                     "{\"token\": \"w\", \"index\": 3}]}\n");
}
END_TEST

START_TEST(test_bow_other_sidecar_layouts)
{
    /* a plain object with a gap: size is max index + 1; left as is when complete */
    const char *plain = "{\"a\": 3, \"b\": 0}";
    write_text_at(P("p.txt"), "a b a");
    write_text_at(P("p.vocab.json"), plain);
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("p.txt", &t, NULL, NULL), FUSE_OK);
    const int64_t pc[] = {3, 0, 3};
    assert_one_hot(&t, 3, 4, pc);
    free(t.data);
    assert_file_text(P("p.vocab.json"), plain);

    /* a list: index = position; extended and rewritten in the items layout */
    write_text_at(P("l.txt"), "q p r");
    write_text_at(P("l.vocab.json"), "[\"p\", \"q\"]");
    ck_assert_int_eq(bow_read_saving("l.txt", &t, NULL, NULL), FUSE_OK);
    const int64_t lc[] = {1, 0, 2};
    assert_one_hot(&t, 3, 3, lc);
    free(t.data);
    assert_file_text(P("l.vocab.json"),
                     "{\"version\": 1, \"items\": [{\"token\": \"p\", \"index\": 0}, "
                     "{\"token\": \"q\", \"index\": 1}, {\"token\": \"r\", \"index\": 2}]}\n");

    /* {"version": 1} alone is an empty vocabulary, not a token "version" */
    write_text_at(P("v.txt"), "version");
    write_text_at(P("v.vocab.json"), "{\"version\": 1}");
    ck_assert_int_eq(io_bow_read(P("v.txt"), &t, NULL), FUSE_OK);
    const int64_t vc[] = {0};
    assert_one_hot(&t, 1, 1, vc);
    free(t.data);
}
END_TEST

START_TEST(test_bow_vocab_path)
{
    const char *cases[][2] = {
        {"d/a.b.txt", "d/a.b.vocab.json"}, {"x.md", "x.vocab.json"},
        {"dir.v/noext", "dir.v/noext.vocab.json"}, {".hidden", ".hidden.vocab.json"},
        {"/abs/p.TXT", "/abs/p.vocab.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = io_bow_vocab_path(cases[i][0]);
        ck_assert_str_eq(p, cases[i][1]);
        free(p);
    }
    write_text_at(P("a.b.txt"), "one");
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("a.b.txt", &t, NULL, NULL), FUSE_OK);
    free(t.data);
    ck_assert(path_exists(P("a.b.vocab.json")));
    ck_assert(!path_exists(P("a.vocab.json")));
}
END_TEST

START_TEST(test_bow_unicode)
{
    /* NBSP and ideographic space split; punctuation and case are kept; BOM skipped */
    write_text_at(P("u.txt"), "\xEF\xBB\xBFh\xC3\xA9llo\xC2\xA0w\xC3\xB6rld\xE3\x80\x80"
                           "h\xC3\xA9llo\tH\xC3\xA9llo, end.\r\n");
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("u.txt", &t, NULL, NULL), FUSE_OK);
    const int64_t cols[] = {0, 1, 0, 2, 3};
    assert_one_hot(&t, 5, 4, cols);
    free(t.data);
    char *side = slurp_n(P("u.vocab.json"), NULL);
    ck_assert_ptr_nonnull(side);
    ck_assert_ptr_nonnull(strstr(side, "\"token\": \"w\xC3\xB6rld\", \"index\": 1"));
    ck_assert_ptr_nonnull(strstr(side, "\"token\": \"H\xC3\xA9llo,\", \"index\": 2"));
    ck_assert_ptr_null(strstr(side, "\xEF\xBB\xBF"));
    free(side);
}
END_TEST

START_TEST(test_bow_empty_text)
{
    write_text_at(P("e.txt"), " \n\t ");
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("e.txt", &t, NULL, NULL), FUSE_OK);
    ck_assert_int_eq(t.rank, 2);
    ck_assert_int_eq(t.shape[0], 0);
    ck_assert_int_eq(t.shape[1], 0);
    free(t.data);
    assert_file_text(P("e.vocab.json"), "{\"version\": 1, \"items\": []}\n");

    write_text_at(P("f.txt"), "");
    write_text_at(P("f.vocab.json"), case03_vocab);
    ck_assert_int_eq(io_bow_read(P("f.txt"), &t, NULL), FUSE_OK);
    ck_assert_int_eq(t.shape[0], 0);
    ck_assert_int_eq(t.shape[1], 4);
    free(t.data);
}
END_TEST

START_TEST(test_bow_unwritable_sidecar_warns)
{
    /* a stem so long that the sidecar's temporary name exceeds NAME_MAX */
    char name[300];
    memset(name, 'n', 240);
    strcpy(name + 240, ".txt");
    write_text_at(P(name), "new words");
    fuse_tensor t;
    char *err = NULL, *warn = NULL;
    ck_assert_int_eq(bow_read_saving(name, &t, NULL, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, ".vocab.json"));
    free(err);
    ck_assert_int_eq(bow_read_saving(name, &t, &warn, NULL), FUSE_OK);
    ck_assert_ptr_nonnull(warn);
    ck_assert_ptr_nonnull(strstr(warn, ".vocab.json"));
    const int64_t cols[] = {0, 1};
    assert_one_hot(&t, 2, 2, cols);
    free(t.data);
    free(warn);
}
END_TEST

START_TEST(test_bow_bad_text)
{
    const BadCase bad[] = {
        {"ok \xFF\n", 0, ":1: not valid UTF-8"},
        {"a\nb \xC0\xAF", 0, ":2: not valid UTF-8"},
        {"a\n\nb \xED\xA0\x80", 0, ":3:"},
        {"cut \xE3\x80", 0, ":1:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_bad_file(io_bow_read, "bad.txt", &bad[i]);
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_bow_read(P("missing.txt"), &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, P("missing.txt")));
    free(err);
}
END_TEST

static const BadCase bad_sidecars[] = {
    {"{not json", 0, ":1:"},
    {"{\"a\": 0, \"b\": 0}", 0, "share index 0"},
    {"{\"a\": -1}", 0, "'a'"},
    {"{\"a\": 1.5}", 0, "'a'"},
    {"{\"version\": 1, \"items\": 3}", 0, "not a list"},
    {"{\"version\": 1, \"items\": [{\"index\": 0}]}", 0, "item 0"},
    {"{\"version\": 2, \"items\": []}", 0, "version"},
    {"3", 0, "object or list"},
    {"[\"a\", \"a\"]", 0, "twice"},
    {"[\"a\", 7]", 0, "entry 1"},
    {"{\"a\": 0, \"a\": 1}", 0, "duplicate"},
    {"{\"a\": 4294967296}", 0, "'a'"},
};

START_TEST(test_bow_bad_sidecar)
{
    const BadCase *c = &bad_sidecars[_i];
    write_text_at(P("s.txt"), "a b");
    write_file(P("s.vocab.json"), c->content, strlen(c->content));
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_bow_read(P("s.txt"), &t, &err), FUSE_E_IO);
    ck_assert_msg(strstr(err, P("s.vocab.json")) != NULL, "no sidecar name: %s", err);
    ck_assert_msg(strstr(err, c->needle) != NULL, "lacks '%s': %s", c->needle, err);
    ck_assert_ptr_null(t.data);
    free(err);
    assert_file_text(P("s.vocab.json"), c->content); /* never overwritten */
}
END_TEST

/* Only a read that may save writes: io_bow_read and a place without save
 * (check, explain, --no-sinks) leave no sidecar anywhere. */
START_TEST(test_bow_read_only_writes_nothing)
{
    write_text_at(P("n.txt"), "new words here");
    fuse_tensor t;
    ck_assert_int_eq(io_bow_read(P("n.txt"), &t, NULL), FUSE_OK);
    const int64_t cols[] = {0, 1, 2};
    assert_one_hot(&t, 3, 3, cols);
    free(t.data);
    ck_assert(!path_exists(P("n.vocab.json")));
    IoVocabPlace place = {.root = P("out"), .rel = "n.vocab.json", .save = false};
    ck_assert_int_eq(io_bow_read_ex(P("n.txt"), &place, &t, NULL, NULL), FUSE_OK);
    assert_one_hot(&t, 3, 3, cols);
    free(t.data);
    ck_assert(!path_exists(P("out")));
    ck_assert(!path_exists(P("n.vocab.json")));
}
END_TEST

/* A token holding a NUL byte (U+0000 is not whitespace) is saved as "\u0000"
 * and read back as the same token by every later read. */
START_TEST(test_bow_nul_token_round_trips)
{
    static const char text[] = "a\0b c a\0b a";
    write_file(P("z.txt"), text, sizeof text - 1);
    fuse_tensor t;
    ck_assert_int_eq(bow_read_saving("z.txt", &t, NULL, NULL), FUSE_OK);
    const int64_t cols[] = {0, 1, 0, 2};
    assert_one_hot(&t, 4, 3, cols);
    free(t.data);
    assert_file_text(P("z.vocab.json"),
                     "{\"version\": 1, \"items\": [{\"token\": \"a\\u0000b\", \"index\": 0}, "
                     "{\"token\": \"c\", \"index\": 1}, {\"token\": \"a\", \"index\": 2}]}\n");
    struct stat before, after;
    ck_assert_int_eq(stat(P("z.vocab.json"), &before), 0);
    ck_assert_int_eq(bow_read_saving("z.txt", &t, NULL, NULL), FUSE_OK);
    assert_one_hot(&t, 4, 3, cols);
    free(t.data);
    ck_assert_int_eq(stat(P("z.vocab.json"), &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino); /* complete: not rewritten */
    ck_assert_int_eq(io_bow_read(P("z.txt"), &t, NULL), FUSE_OK);
    assert_one_hot(&t, 4, 3, cols);
    free(t.data);
}
END_TEST

START_TEST(test_bow_saved_vocab_path)
{
    const char *cases[][2] = {
        {"doc.txt", "doc.vocab.json"},       {"d/a.b.txt", "d/a.b.vocab.json"},
        {"./d/x.md", "./d/x.vocab.json"},    {"../shared/a.txt", "a.vocab.json"},
        {"d/../b.txt", "b.vocab.json"},      {"/abs/p.TXT", "p.vocab.json"},
        {"..a/b.txt", "..a/b.vocab.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = io_bow_saved_vocab_path(cases[i][0]);
        ck_assert_str_eq(p, cases[i][1]);
        free(p);
    }
}
END_TEST

/* With the output root elsewhere: the sidecar beside the text is read but never
 * written (its directory may be read-only); the vocabulary is saved under the
 * root, and that saved copy is what later reads use. */
START_TEST(test_bow_saved_under_the_output_root)
{
    ck_assert_int_eq(mkdir(P("src"), 0755), 0);
    write_text_at(P("src/doc.txt"), "y x y");
    const char *beside = "{\"x\": 0}";
    write_text_at(P("src/doc.vocab.json"), beside);
    ck_assert_int_eq(chmod(P("src"), 0555), 0);
    IoVocabPlace place = {.root = P("out"), .rel = "src/doc.vocab.json", .save = true};
    fuse_tensor t;
    char *warn = NULL, *err = NULL;
    fuse_status st = io_bow_read_ex(P("src/doc.txt"), &place, &t, &warn, &err);
    ck_assert_int_eq(chmod(P("src"), 0755), 0);
    ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
    ck_assert_ptr_null(warn);
    const int64_t cols[] = {1, 0, 1};
    assert_one_hot(&t, 3, 2, cols);
    free(t.data);
    assert_file_text(P("src/doc.vocab.json"), beside);
    assert_file_text(P("out/src/doc.vocab.json"),
                     "{\"version\": 1, \"items\": [{\"token\": \"x\", \"index\": 0}, "
                     "{\"token\": \"y\", \"index\": 1}]}\n");
    /* the saved copy wins over an edited one beside the text */
    write_text_at(P("src/doc.vocab.json"), "{\"y\": 0, \"x\": 1}");
    place.save = false;
    ck_assert_int_eq(io_bow_read_ex(P("src/doc.txt"), &place, &t, NULL, NULL), FUSE_OK);
    assert_one_hot(&t, 3, 2, cols);
    free(t.data);
}
END_TEST

/* A sidecar whose saved path leads out of the root through a link is not
 * written: a warning names the link, and the result stands. */
START_TEST(test_bow_sidecar_cannot_escape)
{
    ck_assert_int_eq(mkdir(P("root"), 0755), 0);
    ck_assert_int_eq(mkdir(P("elsewhere"), 0755), 0);
    ck_assert_int_eq(symlink("../elsewhere", P("root/lk")), 0);
    write_text_at(P("doc.txt"), "p q");
    IoVocabPlace place = {.root = P("root"), .rel = "lk/doc.vocab.json", .save = true};
    fuse_tensor t;
    char *warn = NULL;
    ck_assert_int_eq(io_bow_read_ex(P("doc.txt"), &place, &t, &warn, NULL), FUSE_OK);
    const int64_t cols[] = {0, 1};
    assert_one_hot(&t, 2, 2, cols);
    free(t.data);
    ck_assert_msg(warn && strstr(warn, "'lk' is a symbolic link"), "%s", warn ? warn : "");
    free(warn);
    ck_assert(!path_exists(P("elsewhere/doc.vocab.json")));
    ck_assert(!path_exists(P("doc.vocab.json")));
}
END_TEST

/* ---- top-k ---- */

static char *topk_text(const fuse_tensor *t, int64_t k)
{
    char *text = NULL, *err = NULL;
    size_t len = 0;
    ck_assert_int_eq(io_topk_encode(t, k, &text, &len, &err), FUSE_OK);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

#define TOPK_HEAD "{\"schema\":\"fuse.topk\",\"version\":1}\n"

START_TEST(test_topk_exact_text)
{
    float x[] = {0.5f, 1, 0.25f, 2, 2, -1};
    const int64_t shape[] = {2, 3};
    fuse_tensor t = f32_tensor(2, shape, x);
    char *s = topk_text(&t, 2);
    ck_assert_str_eq(s, TOPK_HEAD
                     "{\"topk\":[{\"index\":1,\"value\":1.0},{\"index\":0,\"value\":0.5}]}\n"
                     "{\"topk\":[{\"index\":0,\"value\":2.0},{\"index\":1,\"value\":2.0}]}\n");
    free(s);
}
END_TEST

START_TEST(test_topk_case02_all_ties)
{
    /* conformance case 02: Score rows are all 1.0 or all 0.0 */
    float x[] = {1, 1, 1, 0, 0, 0, 1, 1, 1};
    const int64_t shape[] = {3, 3};
    fuse_tensor t = f32_tensor(2, shape, x);
    ck_assert_int_eq(io_topk_write(P("runs/sally.jsonl"), &t, 3, NULL), FUSE_OK);
    assert_file_text(P("runs/sally.jsonl"), TOPK_HEAD
        "{\"topk\":[{\"index\":0,\"value\":1.0},{\"index\":1,\"value\":1.0},"
        "{\"index\":2,\"value\":1.0}]}\n"
        "{\"topk\":[{\"index\":0,\"value\":0.0},{\"index\":1,\"value\":0.0},"
        "{\"index\":2,\"value\":0.0}]}\n"
        "{\"topk\":[{\"index\":0,\"value\":1.0},{\"index\":1,\"value\":1.0},"
        "{\"index\":2,\"value\":1.0}]}\n");
}
END_TEST

START_TEST(test_topk_k_larger_and_ranks)
{
    float v[] = {3, 1, 2};
    const int64_t s1[] = {3};
    fuse_tensor t = f32_tensor(1, s1, v);
    char *s = topk_text(&t, 10);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":0,\"value\":3.0},{\"index\":2,"
                        "\"value\":2.0},{\"index\":1,\"value\":1.0}]}\n");
    free(s);

    float sc = 4.5f;
    t = f32_tensor(0, NULL, &sc);
    s = topk_text(&t, 5);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":0,\"value\":4.5}]}\n");
    free(s);

    float c[12];
    for (int i = 0; i < 12; i++)
        c[i] = (float)((i * 5) % 12);
    const int64_t s3[] = {2, 2, 3};
    t = f32_tensor(3, s3, c);
    s = topk_text(&t, 1);
    /* rows: {0,5,10} {3,8,1} {6,11,4} {9,2,7} */
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":2,\"value\":10.0}]}\n"
                        "{\"topk\":[{\"index\":1,\"value\":8.0}]}\n"
                        "{\"topk\":[{\"index\":1,\"value\":11.0}]}\n"
                        "{\"topk\":[{\"index\":0,\"value\":9.0}]}\n");
    free(s);
}
END_TEST

START_TEST(test_topk_ties_nan_inf)
{
    float x[] = {1, 3, 3, 0, 3};
    const int64_t s1[] = {5};
    fuse_tensor t = f32_tensor(1, s1, x);
    char *s = topk_text(&t, 2);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":1,\"value\":3.0},{\"index\":2,"
                        "\"value\":3.0}]}\n");
    free(s);

    float y[] = {NAN, 1, -INFINITY, 2};
    const int64_t s2[] = {4};
    t = f32_tensor(1, s2, y);
    s = topk_text(&t, 4);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":3,\"value\":2.0},{\"index\":1,"
                        "\"value\":1.0},{\"index\":2,\"value\":\"-Infinity\"},{\"index\":0,"
                        "\"value\":\"NaN\"}]}\n");
    free(s);
}
END_TEST

START_TEST(test_topk_empty_shapes_and_k0)
{
    const int64_t s0[] = {0, 3};
    fuse_tensor t = f32_tensor(2, s0, NULL);
    char *s = topk_text(&t, 2);
    ck_assert_str_eq(s, TOPK_HEAD);
    free(s);
    const int64_t s1[] = {2, 0};
    t = f32_tensor(2, s1, NULL);
    s = topk_text(&t, 2);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[]}\n{\"topk\":[]}\n");
    free(s);
    float x[] = {1, 2};
    const int64_t s2[] = {2};
    t = f32_tensor(1, s2, x);
    s = topk_text(&t, 0);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[]}\n");
    free(s);
    char *err = NULL, *text = NULL;
    size_t len;
    ck_assert_int_eq(io_topk_encode(&t, -1, &text, &len, &err), FUSE_E_ARG);
    free(err);
    err = NULL;
    ck_assert_int_eq(io_topk_write(P("neg.jsonl"), &t, -1, &err), FUSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(err, P("neg.jsonl")));
    ck_assert(!path_exists(P("neg.jsonl")));
    free(err);
}
END_TEST

START_TEST(test_topk_int_dtype)
{
    int32_t x[] = {5, 7, 6};
    fuse_tensor t = {.dtype = FUSE_I32, .rank = 1, .shape = {3}, .data = x};
    char *s = topk_text(&t, 2);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":1,\"value\":7.0},{\"index\":2,"
                        "\"value\":6.0}]}\n");
    free(s);
}
END_TEST

START_TEST(test_topk_short_values)
{
    /* short values print short, integral ones without an exponent */
    float one[] = {0.1f};
    const int64_t s1[] = {1};
    fuse_tensor t = f32_tensor(1, s1, one);
    char *s = topk_text(&t, 1);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":0,\"value\":0.1}]}\n");
    free(s);

    float mixed[] = {1e-5f, 100000, 10};
    const int64_t s3[] = {3};
    t = f32_tensor(1, s3, mixed);
    s = topk_text(&t, 3);
    ck_assert_str_eq(s, TOPK_HEAD "{\"topk\":[{\"index\":1,\"value\":100000.0},{\"index\":2,"
                        "\"value\":10.0},{\"index\":0,\"value\":1e-5}]}\n");
    free(s);
}
END_TEST

START_TEST(test_topk_values_round_trip)
{
    /* every value reads back as the same float32, rows sorted */
    float x[4 * 50];
    uint32_t r = 12345;
    for (int i = 0; i < 200; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * (i % 7 == 0 ? 1e-6f : 1e3f);
    }
    const int64_t shape[] = {4, 50};
    fuse_tensor t = f32_tensor(2, shape, x);
    ck_assert_int_eq(io_topk_write(P("rt.jsonl"), &t, 50, NULL), FUSE_OK);
    FILE *f = fopen(P("rt.jsonl"), "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    for (int row = 0; row < 4; row++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        json_t *j = json_loads(line, 0, NULL);
        json_t *list = json_object_get(j, "topk");
        ck_assert_uint_eq(json_array_size(list), 50);
        float prev = INFINITY;
        for (size_t i = 0; i < 50; i++) {
            json_t *it = json_array_get(list, i);
            json_int_t idx = json_integer_value(json_object_get(it, "index"));
            ck_assert(json_is_real(json_object_get(it, "value")));
            float v = (float)json_real_value(json_object_get(it, "value"));
            ck_assert_float_eq(v, x[row * 50 + idx]);
            ck_assert(v <= prev);
            prev = v;
        }
        json_decref(j);
    }
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);
}
END_TEST

/* ---- .json ---- */

START_TEST(test_json_read_good)
{
    fuse_tensor t;
    write_text_at(P("a.json"), "[[1, 2.5], [true, false]]");
    ck_assert_int_eq(io_json_read(P("a.json"), &t, NULL), FUSE_OK);
    const int64_t s22[] = {2, 2};
    const float w22[] = {1, 2.5f, 1, 0};
    assert_tensor(&t, 2, s22, w22);
    free(t.data);

    write_text_at(P("s.json"), " 3.25\n");
    ck_assert_int_eq(io_json_read(P("s.json"), &t, NULL), FUSE_OK);
    const float w0[] = {3.25f};
    assert_tensor(&t, 0, NULL, w0);
    free(t.data);

    write_text_at(P("e.json"), "[]");
    ck_assert_int_eq(io_json_read(P("e.json"), &t, NULL), FUSE_OK);
    ck_assert_int_eq(t.rank, 1);
    ck_assert_int_eq(t.shape[0], 0);
    free(t.data);

    write_text_at(P("e2.json"), "[[], []]");
    ck_assert_int_eq(io_json_read(P("e2.json"), &t, NULL), FUSE_OK);
    ck_assert_int_eq(t.rank, 2);
    ck_assert_int_eq(t.shape[0], 2);
    ck_assert_int_eq(t.shape[1], 0);
    free(t.data);

    write_text_at(P("d.json"), "[[[1], [-2e3]]]");
    ck_assert_int_eq(io_json_read(P("d.json"), &t, NULL), FUSE_OK);
    const int64_t s3[] = {1, 2, 1};
    const float w3[] = {1, -2000};
    assert_tensor(&t, 3, s3, w3);
    free(t.data);

    write_text_at(P("n.json"), "[\"NaN\", 1, \"Infinity\", \"-Infinity\"]");
    ck_assert_int_eq(io_json_read(P("n.json"), &t, NULL), FUSE_OK);
    const int64_t s4[] = {4};
    const float wn[] = {NAN, 1, INFINITY, -INFINITY};
    assert_tensor(&t, 1, s4, wn);
    free(t.data);
}
END_TEST

START_TEST(test_json_round_trip)
{
    float x[] = {0.1f, -3, 1e-7f, 123456.78f, 0, 2};
    const int64_t shape[] = {2, 3};
    fuse_tensor t = f32_tensor(2, shape, x);
    ck_assert_int_eq(io_json_write(P("rt.json"), &t, NULL), FUSE_OK);
    fuse_tensor back;
    ck_assert_int_eq(io_json_read(P("rt.json"), &back, NULL), FUSE_OK);
    assert_tensor(&back, 2, shape, x);
    free(back.data);
}
END_TEST

static const BadCase bad_json[] = {
    {"[[1, 2], [3]]", 0, "[1] has 1 entry where 2"},
    {"[[1], [2, 3]]", 0, "[1] has 2 entries"},
    {"[1, [2]]", 0, "[1] is a list"},
    {"[[1], 2]", 0, "[1] is not a list"},
    {"[\"a\"]", 0, "[0] is a string"},
    {"{\"a\": 1}", 0, "is an object"},
    {"[{}]", 0, "[0] is an object"},
    {"[1, 2", 0, "invalid JSON"},
    {"", 0, "invalid JSON"},
    {"[[[[[[[[[1]]]]]]]]]", 0, "deeper than 8"},
    {"nan", 0, "invalid JSON"},
    {"[1]\n[2]", 0, ":2:"},
    {"[1, null]", 0, ":1:5: [1] is null, which is not a number; write \"NaN\""},
    {"null", 0, ":1:1: the value is null"},
    {"[[1, 2],\n [3, null]]", 0, ":2:6: [1][1] is null"},
    {"[\"nan\"]", 0, "[0] is a string"},
    {"[\"inf\"]", 0, "[0] is a string"},
    {"[\"Infinity \"]", 0, "[0] is a string"},
};

START_TEST(test_json_read_malformed)
{
    assert_bad_file(io_json_read, "bad.json", &bad_json[_i]);
}
END_TEST

/* ---- .jsonl ---- */

START_TEST(test_jsonl_read_good)
{
    fuse_tensor t;
    write_text_at(P("a.jsonl"), "{\"schema\": \"fuse.tensor\", \"version\": 1, \"shape\": [2, 3]}"
                             "\r\n{\"value\": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.5]]}\r\n\n\n");
    ck_assert_int_eq(io_jsonl_read(P("a.jsonl"), &t, NULL), FUSE_OK);
    const int64_t shape[] = {2, 3};
    const float want[] = {0, 1, 2, 3, 4, 5.5f};
    assert_tensor(&t, 2, shape, want);
    free(t.data);

    write_text_at(P("s.jsonl"), "\n{\"schema\":\"fuse.tensor\",\"shape\":[]}\n{\"value\":true}");
    ck_assert_int_eq(io_jsonl_read(P("s.jsonl"), &t, NULL), FUSE_OK);
    const float w0[] = {1};
    assert_tensor(&t, 0, NULL, w0);
    free(t.data);

    write_text_at(P("z.jsonl"), "{\"schema\":\"fuse.tensor\",\"version\":1,\"shape\":[0,2]}\n"
                             "{\"value\":[]}\n");
    ck_assert_int_eq(io_jsonl_read(P("z.jsonl"), &t, NULL), FUSE_OK);
    ck_assert_int_eq(t.rank, 2);
    ck_assert_int_eq(t.shape[0], 0);
    ck_assert_int_eq(t.shape[1], 2);
    free(t.data);
}
END_TEST

START_TEST(test_jsonl_round_trip)
{
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i / 7.0f - 1.0f;
    const int64_t shape[] = {2, 3, 4};
    fuse_tensor t = f32_tensor(3, shape, x);
    ck_assert_int_eq(io_jsonl_write(P("rt.jsonl"), &t, NULL), FUSE_OK);
    fuse_tensor back;
    ck_assert_int_eq(io_jsonl_read(P("rt.jsonl"), &back, NULL), FUSE_OK);
    assert_tensor(&back, 3, shape, x);
    free(back.data);
}
END_TEST

#define JH "{\"schema\": \"fuse.tensor\", \"version\": 1, \"shape\": [2]}\n"

static const BadCase bad_jsonl[] = {
    {"", 0, "empty"},
    {"\n  \n", 0, "empty"},
    {JH, 0, "no {\"value\""},
    {"{\"schema\": \"fuse.matrix\", \"shape\": [2]}\n{\"value\": [1, 2]}\n", 0, ":1:"},
    {"{\"schema\":\"fuse.topk\",\"version\":1}\n{\"topk\":[]}\n", 0, "fuse.topk"},
    {JH "{\"value\": [1, 2, 3]}\n", 0, ":2: the value has 3 entries"},
    {JH "{\"values\": [1, 2]}\n", 0, ":2: expected {\"value\""},
    {JH "{\"value\": [1, 2]}\n{\"value\": [1, 2]}\n", 0, ":3: unexpected line"},
    {"{\"schema\": \"fuse.tensor\", \"shape\": [-1]}\n{\"value\": []}\n", 0, "entry 0"},
    {"{\"schema\": \"fuse.tensor\", \"shape\": 2}\n{\"value\": [1, 2]}\n", 0, "\"shape\""},
    {"{\"schema\": \"fuse.tensor\", \"version\": 2, \"shape\": [2]}\n{\"value\": [1, 2]}\n",
     0, "version"},
    {"{\"schema\": \"fuse.tensor\"\n", 0, ":1:"},
    {"\n" JH "{\"value\": [[1], [2, 3]]}\n", 0, ":3: [0] is a list"},
    {JH "\n[1, 2]\n", 0, ":3: expected a JSON object"},
    {"{\"schema\": \"fuse.tensor\", \"shape\": [1,1,1,1,1,1,1,1,1]}\n{\"value\": 0}\n", 0,
     "at most 8"},
    {JH "{\"value\": [1, \"x\"]}\n", 0, "[1] is a string"},
    {"{\"schema\": \"fuse.tensor\", \"shape\": [65536, 65536]}\n{\"value\": []}\n", 0,
     "too large"},
    /* 1.6e9 elements: refused for the value line's size, before 6.4 GB are zeroed */
    {"{\"schema\": \"fuse.tensor\", \"shape\": [40000, 40000]}\n{\"value\": [[1]]}\n", 0,
     ":2: a shape of 1600000000 elements cannot fit in 16 bytes"},
    {JH "{\"value\": [1, null]}\n", 0, ":2:15: [1] is null"},
};

START_TEST(test_jsonl_read_malformed)
{
    assert_bad_file(io_jsonl_read, "bad.jsonl", &bad_jsonl[_i]);
}
END_TEST

/* ---- .safetensors ---- */

/* Writes a safetensors file: the 8-byte header length, the header, the data. */
static void st_write(const char *path, const char *header, const void *data, size_t n)
{
    size_t h = strlen(header);
    unsigned char *buf = malloc(8 + h + n + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    if (n)
        memcpy(buf + 8 + h, data, n);
    write_file(path, buf, 8 + h + n);
    free(buf);
}

static fuse_status st_read_named(const char *path, const char *name, fuse_tensor *t)
{
    return io_safetensors_read(path, name, t, NULL);
}

START_TEST(test_safetensors_f32_only_tensor)
{
    const float x[] = {1, -2, 3.5f, 0, 1e-3f, 6};
    st_write(P("m.safetensors"),
             "{\"__metadata__\": {\"format\": \"pt\"}, \"w\": {\"dtype\": \"F32\", \"shape\": "
             "[2, 3], \"data_offsets\": [0, 24]}}      ", x, sizeof x);
    fuse_tensor t;
    const int64_t shape[] = {2, 3};
    ck_assert_int_eq(st_read_named(P("m.safetensors"), NULL, &t), FUSE_OK);
    assert_tensor(&t, 2, shape, x);
    free(t.data);
    /* a name that is absent still finds the only tensor */
    ck_assert_int_eq(st_read_named(P("m.safetensors"), "Other", &t), FUSE_OK);
    assert_tensor(&t, 2, shape, x);
    free(t.data);
}
END_TEST

/* Appends n bytes of little-endian values to the data blob. */
static size_t put_le(unsigned char *dst, size_t at, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        dst[at + (size_t)i] = (unsigned char)(v >> (8 * i));
    return at + (size_t)n;
}

/* A file with one small tensor of every dtype, named h b d l i s c u o w x y. */
static void st_write_all_dtypes(const char *path)
{
    unsigned char d[512];
    size_t at = 0;
    const uint16_t f16[] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00, 0xFC00, 0x7E00};
    for (int i = 0; i < 8; i++)
        at = put_le(d, at, f16[i], 2); /* 0..16 */
    const uint16_t bf16[] = {0x3F80, 0xC040, 0x4049};
    for (int i = 0; i < 3; i++)
        at = put_le(d, at, bf16[i], 2); /* 16..22 */
    double f64 = 0.1;
    uint64_t f64b;
    memcpy(&f64b, &f64, 8);
    at = put_le(d, at, f64b, 8);                     /* 22..30 */
    at = put_le(d, at, (uint64_t)(int64_t)-5, 8);    /* 30..38 */
    at = put_le(d, at, (uint64_t)1 << 40, 8);        /* 38..46 */
    at = put_le(d, at, (uint32_t)-70000, 4);         /* 46..50 */
    at = put_le(d, at, (uint16_t)-300, 2);           /* 50..52 */
    at = put_le(d, at, 0x80, 1);                     /* 52 I8 -128 */
    at = put_le(d, at, 0x7F, 1);                     /* 53 I8 127 */
    at = put_le(d, at, 255, 1);                      /* 54 U8 */
    at = put_le(d, at, 0, 1);                        /* 55..58 BOOL */
    at = put_le(d, at, 1, 1);
    at = put_le(d, at, 2, 1);
    at = put_le(d, at, 65535, 2);                    /* 58..60 U16 */
    at = put_le(d, at, 4000000000u, 4);              /* 60..64 U32 */
    at = put_le(d, at, UINT64_MAX, 8);               /* 64..72 U64 */
    ck_assert_uint_eq(at, 72);
    st_write(path,
             "{\"h\": {\"dtype\": \"F16\", \"shape\": [8], \"data_offsets\": [0, 16]},"
             " \"b\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [16, 22]},"
             " \"d\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [22, 30]},"
             " \"l\": {\"dtype\": \"I64\", \"shape\": [2, 1], \"data_offsets\": [30, 46]},"
             " \"i\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [46, 50]},"
             " \"s\": {\"dtype\": \"I16\", \"shape\": [1], \"data_offsets\": [50, 52]},"
             " \"c\": {\"dtype\": \"I8\", \"shape\": [2], \"data_offsets\": [52, 54]},"
             " \"u\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [54, 55]},"
             " \"o\": {\"dtype\": \"BOOL\", \"shape\": [3], \"data_offsets\": [55, 58]},"
             " \"w\": {\"dtype\": \"U16\", \"shape\": [1], \"data_offsets\": [58, 60]},"
             " \"x\": {\"dtype\": \"U32\", \"shape\": [1], \"data_offsets\": [60, 64]},"
             " \"y\": {\"dtype\": \"U64\", \"shape\": [1], \"data_offsets\": [64, 72]}}",
             d, at);
}

START_TEST(test_safetensors_dtypes)
{
    const char *path = P("all.safetensors");
    st_write_all_dtypes(path);
    fuse_tensor t;
    const int64_t s8[] = {8}, s3[] = {3}, s21[] = {2, 1}, s1[] = {1}, s2[] = {2};
    ck_assert_int_eq(st_read_named(path, "h", &t), FUSE_OK);
    const float wh[] = {1, -2, 0.5f, 65504, ldexpf(1, -24), INFINITY, -INFINITY, NAN};
    assert_tensor(&t, 1, s8, wh);
    free(t.data);
    ck_assert_int_eq(st_read_named(path, "b", &t), FUSE_OK);
    const float wb[] = {1, -3, 3.140625f};
    assert_tensor(&t, 1, s3, wb);
    free(t.data);
    ck_assert_int_eq(st_read_named(path, "d", &t), FUSE_OK);
    const float wd[] = {0.1f};
    assert_tensor(&t, 0, NULL, wd);
    free(t.data);
    ck_assert_int_eq(st_read_named(path, "l", &t), FUSE_OK);
    const float wl[] = {-5, 1099511627776.0f};
    assert_tensor(&t, 2, s21, wl);
    free(t.data);
    struct { const char *name; int rank; const int64_t *shape; float want[3]; } one[] = {
        {"i", 1, s1, {-70000}}, {"s", 1, s1, {-300}}, {"c", 1, s2, {-128, 127}},
        {"u", 1, s1, {255}},    {"o", 1, s3, {0, 1, 1}}, {"w", 1, s1, {65535}},
        {"x", 1, s1, {4e9f}},   {"y", 1, s1, {18446744073709551615.0f}},
    };
    for (size_t k = 0; k < sizeof one / sizeof one[0]; k++) {
        ck_assert_int_eq(st_read_named(path, one[k].name, &t), FUSE_OK);
        assert_tensor(&t, one[k].rank, one[k].shape, one[k].want);
        free(t.data);
    }
}
END_TEST

/* A safetensors file given as raw bytes with a header length that may lie. */
static void st_write_raw(const char *path, uint64_t hlen, const char *rest, size_t n)
{
    unsigned char buf[512];
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, rest, n);
    write_file(path, buf, 8 + n);
}

START_TEST(test_safetensors_bad_lengths)
{
    fuse_tensor t;
    char *err = NULL;
    const char *path = P("len.safetensors");
    write_file(path, "\x05\0\0", 3);
    ck_assert_int_eq(io_safetensors_read(path, NULL, &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "too short"));
    free(err);
    const char *hdr = "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}x";
    const uint64_t lies[] = {strlen(hdr) + 1, 1000, UINT64_MAX, (uint64_t)1 << 40, 0};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        st_write_raw(path, lies[i], hdr, strlen(hdr));
        err = NULL;
        ck_assert_int_eq(io_safetensors_read(path, NULL, &t, &err), FUSE_E_IO);
        ck_assert_ptr_nonnull(strstr(err, path));
        ck_assert_msg(strstr(err, "header length") != NULL, "%s", err);
        ck_assert_ptr_null(t.data);
        free(err);
    }
    /* the correct length reads the one byte of data */
    st_write_raw(path, strlen(hdr) - 1, hdr, strlen(hdr));
    ck_assert_int_eq(io_safetensors_read(path, NULL, &t, NULL), FUSE_OK);
    const int64_t s1[] = {1};
    const float w[] = {'x'};
    assert_tensor(&t, 1, s1, w);
    free(t.data);
    err = NULL;
    ck_assert_int_eq(io_safetensors_read(P("none.safetensors"), NULL, &t, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, P("none.safetensors")));
    free(err);
}
END_TEST

typedef struct BadSt {
    const char *header;
    size_t data_len; /* zero bytes of data after the header */
    const char *name;
    const char *needle;
} BadSt;

#define STE(dt, shape, b, e) "{\"dtype\": \"" dt "\", \"shape\": " shape \
                             ", \"data_offsets\": [" #b ", " #e "]}"

static const BadSt bad_st[] = {
    {"{\"w\": " STE("F32", "[2]", 0, 8) "}", 4, NULL, "past the end"},
    {"{\"w\": " STE("F32", "[2]", 0, 12) "}", 12, NULL, "need 8"},
    {"{\"w\": " STE("F32", "[2]", 8, 16) "}", 8, NULL, "past the end"},
    {"{\"w\": " STE("F64", "[1]", 0, 9223372036854775807) "}", 8, NULL, "need 8"},
    {"{\"w\": " STE("F32", "[2]", 8, 0) "}", 8, NULL, "data_offsets"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8, NULL,
     "data_offsets"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, NULL, "data_offsets"},
    {"{\"w\": " STE("F8_E4M3", "[2]", 0, 2) "}", 2, NULL, "unsupported dtype F8_E4M3"},
    {"{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, NULL, "missing dtype"},
    {"{\"w\": " STE("F32", "[-2]", 0, 8) "}", 8, NULL, "shape"},
    {"{\"w\": " STE("F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, NULL, "shape"},
    {"{\"w\": " STE("U8", "[1048576, 1048576]", 0, 1) "}", 1, NULL, "too large"},
    {"{\"w\": 3}", 0, NULL, "not a JSON object"},
    {"[1, 2]", 0, NULL, "not a JSON object"},
    {"{\"w\": ", 0, NULL, "invalid JSON"},
    {"{\"__metadata__\": {}}", 0, NULL, "no tensors"},
    {"{\"a\": " STE("U8", "[1]", 0, 1) ", \"b\": " STE("U8", "[1]", 1, 2) "}", 2, NULL,
     "2 tensors"},
    {"{\"a\": " STE("U8", "[1]", 0, 1) ", \"b\": " STE("U8", "[1]", 1, 2) "}", 2, "c",
     "no tensor named 'c'"},
    {"{\"w\": " STE("F32", "[2]", 0, 8) ", \"w\": " STE("F32", "[2]", 0, 8) "}", 8, NULL,
     "duplicate"},
    {"{\"w\": " STE("F64", "[1]", 9223372036854775807, 9223372036854775807) "}", 8, NULL,
     "need 8"},
};

START_TEST(test_safetensors_malformed)
{
    const BadSt *c = &bad_st[_i];
    const char *path = P("bad.safetensors");
    unsigned char zeros[16] = {0};
    st_write(path, c->header, zeros, c->data_len);
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_safetensors_read(path, c->name, &t, &err), FUSE_E_IO);
    ck_assert_msg(strstr(err, path) != NULL, "no file name: %s", err);
    ck_assert_msg(strstr(err, c->needle) != NULL, "lacks '%s': %s", c->needle, err);
    ck_assert_ptr_null(t.data);
    free(err);
}
END_TEST

START_TEST(test_safetensors_named_among_many)
{
    unsigned char d[3] = {7, 8, 9};
    st_write(P("many.safetensors"),
             "{\"a\": " STE("U8", "[1]", 0, 1) ", \"b\": " STE("U8", "[2]", 1, 3) "}", d, 3);
    fuse_tensor t;
    ck_assert_int_eq(st_read_named(P("many.safetensors"), "b", &t), FUSE_OK);
    const int64_t s2[] = {2};
    const float w[] = {8, 9};
    assert_tensor(&t, 1, s2, w);
    free(t.data);
}
END_TEST

/* ---- non-finite values in JSON, sizes checked before allocating ---- */

START_TEST(test_json_nonfinite_round_trip)
{
    float x[] = {NAN, INFINITY, -INFINITY, 1.5f, -0.0f, 3};
    const int64_t shape[] = {2, 3};
    fuse_tensor t = f32_tensor(2, shape, x);
    ck_assert_int_eq(io_json_write(P("nf.json"), &t, NULL), FUSE_OK);
    assert_file_text(P("nf.json"), "[[\"NaN\", \"Infinity\", \"-Infinity\"], [1.5, -0.0, 3.0]]\n");
    ck_assert_int_eq(io_jsonl_write(P("nf.jsonl"), &t, NULL), FUSE_OK);
    fuse_tensor back;
    ck_assert_int_eq(io_json_read(P("nf.json"), &back, NULL), FUSE_OK);
    assert_tensor(&back, 2, shape, x);
    ck_assert(signbit(((float *)back.data)[4])); /* -0.0 stays negative */
    free(back.data);
    ck_assert_int_eq(io_jsonl_read(P("nf.jsonl"), &back, NULL), FUSE_OK);
    assert_tensor(&back, 2, shape, x);
    free(back.data);

    double d[] = {-INFINITY, NAN};
    fuse_tensor t64 = {.dtype = FUSE_F64, .rank = 1, .shape = {2}, .data = d};
    ck_assert_int_eq(io_jsonl_write(P("d.jsonl"), &t64, NULL), FUSE_OK);
    ck_assert_int_eq(io_jsonl_read(P("d.jsonl"), &back, NULL), FUSE_OK);
    const int64_t s2[] = {2};
    const float want[] = {-INFINITY, NAN};
    assert_tensor(&back, 1, s2, want);
    free(back.data);
}
END_TEST

START_TEST(test_json_null_position_skips_strings)
{
    /* "null" inside strings (with an escaped quote before it) is not the null */
    const char *line = "{\"n\": \"a\\\"null\", \"value\": [[1, 2], [null, 4]]}";
    char text[256];
    snprintf(text, sizeof text, "{\"schema\": \"fuse.tensor\", \"shape\": [2, 2]}\n%s\n", line);
    write_text_at(P("p.jsonl"), text);
    char *err = NULL;
    fuse_tensor t;
    ck_assert_int_eq(io_jsonl_read(P("p.jsonl"), &t, &err), FUSE_E_IO);
    char want[600];
    snprintf(want, sizeof want, "%s:2:%d: [1][0] is null", P("p.jsonl"),
             (int)(strstr(line, "[null") - line) + 2);
    ck_assert_msg(err && strstr(err, want), "want '%s' in: %s", want, err ? err : "(none)");
    free(err);
}
END_TEST

START_TEST(test_json_ragged_shape_refused_before_alloc)
{
    /* The first elements make a (5001, 1000) shape: 5 million floats from a
     * 17 kB file, which is ragged anyway. */
    SupBuf b = {0};
    ck_assert(sup_buf_append(&b, "[[", 2));
    for (int i = 0; i < 1000; i++)
        ck_assert(sup_buf_append(&b, i ? ",1" : "1", i ? 2 : 1));
    ck_assert(sup_buf_append(&b, "]", 1));
    for (int i = 0; i < 5000; i++)
        ck_assert(sup_buf_append(&b, ",[]", 3));
    ck_assert(sup_buf_append(&b, "]", 1));
    write_file(P("r.json"), b.p, b.len);
    char *err = NULL;
    fuse_tensor t;
    ck_assert_int_eq(io_json_read(P("r.json"), &t, &err), FUSE_E_IO);
    char want[128];
    snprintf(want, sizeof want, "a shape of 5001000 elements cannot fit in %zu bytes", b.len);
    ck_assert_msg(err && strstr(err, want) && strstr(err, P("r.json")), "message: %s", err);
    free(err);
    free(b.p);
}
END_TEST

/* A version 1.0 .npy whose header claims `shape` ("(268435456,)") of <f4 but
 * which holds only `data` zero bytes of data. */
static void write_npy_claim(const char *path, const char *shape, size_t data)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                     shape);
    size_t hlen = (10 + (size_t)n + 1 + 63) / 64 * 64 - 10, total = 10 + hlen + data;
    unsigned char *img = calloc(1, total);
    memcpy(img, "\x93NUMPY\x01\x00", 8);
    img[8] = (unsigned char)(hlen & 0xff);
    img[9] = (unsigned char)(hlen >> 8);
    memset(img + 10, ' ', hlen - 1);
    memcpy(img + 10, dict, (size_t)n);
    img[10 + hlen - 1] = '\n';
    write_file(path, img, total);
    free(img);
}

START_TEST(test_npy_header_claiming_more_than_the_file)
{
    /* 192 bytes claiming 2^28 floats (1 GiB), and 2^40 (4 TiB: allocating that
     * would fail with FUSE_E_NOMEM instead of the size error). */
    const char *shapes[] = {"(268435456,)", "(1099511627776,)"};
    for (int k = 0; k < 2; k++) {
        write_npy_claim(P("big.npy"), shapes[k], 64);
        struct stat sb;
        ck_assert_int_eq(stat(P("big.npy"), &sb), 0);
        ck_assert_int_eq(sb.st_size, 192);
        char *err = NULL;
        NpyHeader h;
        ck_assert_int_eq(io_npy_probe(P("big.npy"), &h, &err), FUSE_E_IO);
        ck_assert_msg(err && strstr(err, P("big.npy")) && strstr(err, "truncated .npy data"),
                      "message: %s", err);
        free(err);
        err = NULL;
        fuse_tensor t;
        ck_assert_int_eq(io_npy_read(P("big.npy"), &t, &err), FUSE_E_IO);
        ck_assert_msg(err && strstr(err, "found 64"), "message: %s", err);
        free(err);
    }
    /* A file that backs its header probes fine. */
    write_npy_claim(P("ok.npy"), "(16,)", 64);
    NpyHeader h;
    ck_assert_int_eq(io_npy_probe(P("ok.npy"), &h, NULL), FUSE_OK);
    ck_assert_int_eq(h.rank, 1);
    ck_assert_int_eq(h.shape[0], 16);
}
END_TEST

START_TEST(test_program_refuses_npy_larger_than_its_file)
{
    write_npy_claim(P("big.npy"), "(1048576, 1048576)", 64); /* 4 TiB claimed */
    write_text_at(P("p.fuse"), "X[i,j] = \"big.npy\"\nS[i] = X[i,j]\nexport S\n");
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    fuse_status st = fuse_program_from_file(ctx, P("p.fuse"), &prog);
    if (st == FUSE_OK)
        st = fuse_runner_new(prog, NULL, NULL, 0, &run);
    ck_assert_int_eq(st, FUSE_E_IO);
    const char *msg = fuse_ctx_error(ctx);
    ck_assert_msg(strstr(msg, "big.npy") && strstr(msg, "truncated"), "message: %s", msg);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- .npz members whose sizes lie ---- */

/* Raw deflate (no zlib header) of src, as a ZIP member holds it; malloc'd. */
static unsigned char *deflate_raw(const void *src, size_t n, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uLong cap = deflateBound(&z, (uLong)n);
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

static uint32_t crc_of(const void *p, size_t n)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* A ZIP of one member "arr_0.npy" written by hand, so that the CRC and the
 * uncompressed size it declares can be anything. method: 0 stored, 8 deflated. */
static void write_zip1(const char *path, int method, const void *body, size_t body_len,
                       uint32_t crc, uint32_t size)
{
    static const char name[] = "arr_0.npy";
    const size_t nl = sizeof name - 1;
    unsigned char *z = calloc(1, 30 + nl + body_len + 46 + nl + 22);
    size_t at = put_le(z, 0, 0x04034b50, 4); /* local file header */
    at = put_le(z, at, 20, 2);
    at = put_le(z, at, 0, 2);
    at = put_le(z, at, (uint64_t)method, 2);
    at = put_le(z, at, 0, 2);
    at = put_le(z, at, 0x21, 2); /* 1980-01-01 */
    at = put_le(z, at, crc, 4);
    at = put_le(z, at, body_len, 4);
    at = put_le(z, at, size, 4);
    at = put_le(z, at, nl, 2);
    at = put_le(z, at, 0, 2);
    memcpy(z + at, name, nl);
    memcpy(z + at + nl, body, body_len);
    at += nl + body_len;
    size_t cd = at;
    at = put_le(z, at, 0x02014b50, 4); /* central directory entry */
    at = put_le(z, at, 20, 2);
    at = put_le(z, at, 20, 2);
    at = put_le(z, at, 0, 2);
    at = put_le(z, at, (uint64_t)method, 2);
    at = put_le(z, at, 0, 2);
    at = put_le(z, at, 0x21, 2);
    at = put_le(z, at, crc, 4);
    at = put_le(z, at, body_len, 4);
    at = put_le(z, at, size, 4);
    at = put_le(z, at, nl, 2);
    at = put_le(z, at, 0, 6);  /* extra, comment, disk */
    at = put_le(z, at, 0, 6);  /* internal and external attributes */
    at = put_le(z, at, 0, 4);  /* the local header's offset */
    memcpy(z + at, name, nl);
    at += nl;
    size_t cd_len = at - cd;
    at = put_le(z, at, 0x06054b50, 4); /* end of central directory */
    at = put_le(z, at, 0, 4);
    at = put_le(z, at, 1, 2);
    at = put_le(z, at, 1, 2);
    at = put_le(z, at, cd_len, 4);
    at = put_le(z, at, cd, 4);
    at = put_le(z, at, 0, 2);
    write_file(path, z, at);
    free(z);
}

/* Reads the archive and demands FUSE_E_IO naming it and its member, with `needle`. */
static void assert_npz_refused(const char *path, const char *needle)
{
    fuse_tensor t;
    char *err = NULL;
    ck_assert_int_eq(io_npz_read(path, NULL, NULL, &t, &err), FUSE_E_IO);
    ck_assert_msg(err && strstr(err, path) && strstr(err, "arr_0.npy") && strstr(err, needle),
                  "want '%s' in: %s", needle, err ? err : "(none)");
    free(err);
}

START_TEST(test_npz_declared_sizes_are_checked)
{
    float v[] = {1, 2, 3, 4};
    fuse_tensor t = {.dtype = FUSE_F32, .rank = 1, .shape = {4}, .data = v};
    void *img;
    size_t n;
    ck_assert_int_eq(io_npy_encode(&t, &img, &n, NULL), FUSE_OK);
    size_t zl;
    unsigned char *z = deflate_raw(img, n, &zl);
    /* Honest: the hand-written archive itself is sound. */
    write_zip1(P("ok.npz"), 8, z, zl, crc_of(img, n), (uint32_t)n);
    fuse_tensor back;
    ck_assert_int_eq(io_npz_read(P("ok.npz"), NULL, NULL, &back, NULL), FUSE_OK);
    const int64_t s4[] = {4};
    assert_tensor(&back, 1, s4, v);
    free(back.data);
    free(z);

    /* The image followed by 8 MiB of zeros, deflated to a few kB. */
    size_t big = n + ((size_t)8 << 20);
    unsigned char *bomb = calloc(1, big);
    memcpy(bomb, img, n);
    z = deflate_raw(bomb, big, &zl);
    ck_assert_uint_lt(zl, 64 << 10);
    /* declared as just the image: inflating stops right after it */
    write_zip1(P("bomb.npz"), 8, z, zl, crc_of(img, n), (uint32_t)n);
    assert_npz_refused(P("bomb.npz"), "inflates to more than its declared size");
    /* declared truthfully: the size disagrees with the .npy header */
    write_zip1(P("long.npz"), 8, z, zl, crc_of(bomb, big), (uint32_t)big);
    char want[96];
    snprintf(want, sizeof want, "size mismatch: %zu bytes, but its .npy header and data take "
             "%zu", big, n);
    assert_npz_refused(P("long.npz"), want);
    free(z);
    free(bomb);

    /* A 128-byte header claiming 1 GiB of data, declared as 1 GiB: no deflate
     * stream of ~100 bytes holds that much. */
    write_npy_claim(P("h.npy"), "(268435456,)", 0);
    size_t hn;
    char *head = slurp_n(P("h.npy"), &hn);
    ck_assert_uint_eq(hn, 128);
    z = deflate_raw(head, hn, &zl);
    write_zip1(P("huge.npz"), 8, z, zl, crc_of(head, hn), (uint32_t)(hn + ((size_t)1 << 30)));
    assert_npz_refused(P("huge.npz"), "compressed bytes can hold");
    free(z);
    /* Stored, declared longer than its bytes. */
    write_zip1(P("stored.npz"), 0, head, hn, crc_of(head, hn), (uint32_t)(hn + 4096));
    assert_npz_refused(P("stored.npz"), "compressed bytes can hold");
    /* Declared (and inflating to) less than the header promises. */
    unsigned char shortimg[128 + 16] = {0};
    memcpy(shortimg, head, hn);
    z = deflate_raw(shortimg, sizeof shortimg, &zl);
    write_zip1(P("short.npz"), 8, z, zl, crc_of(shortimg, sizeof shortimg),
               (uint32_t)sizeof shortimg);
    assert_npz_refused(P("short.npz"), "truncated .npy data");
    free(z);
    free(head);
    free(img);
}
END_TEST

/* ---- suite ---- */

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static TCase *fixture_case(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, scratch_setup, NULL);
    return tc;
}

static TCase *facts_case(void)
{
    TCase *tc = fixture_case("facts");
    tcase_add_test(tc, test_facts_read_tsv);
    tcase_add_test(tc, test_facts_read_forgiving_csv);
    tcase_add_test(tc, test_facts_read_rank1_and_rank3);
    tcase_add_test(tc, test_facts_read_empty);
    tcase_add_test(tc, test_facts_read_rank_mismatch);
    tcase_add_test(tc, test_facts_read_missing_file);
    tcase_add_loop_test(tc, test_facts_read_malformed, 0, N_OF(bad_facts));
    tcase_add_test(tc, test_facts_write_known);
    tcase_add_test(tc, test_facts_write_ranks_and_dtypes);
    tcase_add_test(tc, test_facts_write_datalog_case);
    tcase_add_test(tc, test_facts_write_edge_cases);
    tcase_add_test(tc, test_facts_round_trip);
    return tc;
}

static TCase *bow_case(void)
{
    TCase *tc = fixture_case("bow");
    tcase_add_test(tc, test_bow_case03_sidecar_untouched);
    tcase_add_test(tc, test_bow_sidecar_created);
    tcase_add_test(tc, test_bow_sidecar_extended);
    tcase_add_test(tc, test_bow_other_sidecar_layouts);
    tcase_add_test(tc, test_bow_vocab_path);
    tcase_add_test(tc, test_bow_unicode);
    tcase_add_test(tc, test_bow_empty_text);
    tcase_add_test(tc, test_bow_unwritable_sidecar_warns);
    tcase_add_test(tc, test_bow_bad_text);
    tcase_add_loop_test(tc, test_bow_bad_sidecar, 0, N_OF(bad_sidecars));
    tcase_add_test(tc, test_bow_read_only_writes_nothing);
    tcase_add_test(tc, test_bow_nul_token_round_trips);
    tcase_add_test(tc, test_bow_saved_vocab_path);
    tcase_add_test(tc, test_bow_saved_under_the_output_root);
    tcase_add_test(tc, test_bow_sidecar_cannot_escape);
    return tc;
}

static TCase *topk_case(void)
{
    TCase *tc = fixture_case("topk");
    tcase_add_test(tc, test_topk_exact_text);
    tcase_add_test(tc, test_topk_case02_all_ties);
    tcase_add_test(tc, test_topk_k_larger_and_ranks);
    tcase_add_test(tc, test_topk_ties_nan_inf);
    tcase_add_test(tc, test_topk_empty_shapes_and_k0);
    tcase_add_test(tc, test_topk_int_dtype);
    tcase_add_test(tc, test_topk_short_values);
    tcase_add_test(tc, test_topk_values_round_trip);
    return tc;
}

static TCase *json_case(void)
{
    TCase *tc = fixture_case("json");
    tcase_add_test(tc, test_json_read_good);
    tcase_add_test(tc, test_json_round_trip);
    tcase_add_loop_test(tc, test_json_read_malformed, 0, N_OF(bad_json));
    tcase_add_test(tc, test_jsonl_read_good);
    tcase_add_test(tc, test_jsonl_round_trip);
    tcase_add_loop_test(tc, test_jsonl_read_malformed, 0, N_OF(bad_jsonl));
    tcase_add_test(tc, test_json_nonfinite_round_trip);
    tcase_add_test(tc, test_json_null_position_skips_strings);
    tcase_add_test(tc, test_json_ragged_shape_refused_before_alloc);
    return tc;
}

/* The context's error mentions `part`. */
static void expect_ctx_error(fuse_ctx *ctx, const char *part)
{
    const char *e = fuse_ctx_error(ctx);
    ck_assert_msg(e && strstr(e, part), "error '%s' lacks '%s'", e ? e : "(none)", part);
}

/* a run's exports written straight to a file: .npz stored and deflated, the
 * only export to .npy; paths that cannot hold them are refused before the
 * run, a file that cannot be written is an error that leaves the runner
 * usable */
START_TEST(test_run_save_writes_the_exports)
{
    enum { R = 3, C = 4 };
    float x[R * C];
    fill_random(x, R * C, 7, -2.0f, 2.0f);
    int64_t shape[2] = {R, C}, rows[1] = {R};
    write_npy("rs_x.npy", 2, shape, x);
    write_text("rs.fuse", "X[i,j] = \"rs_x.npy\"\nY[i,j] = X[i,j] X[i,j]\nS[i] = X[i,j]\n"
                          "export Y\nexport S\n");
    write_text("rs1.fuse", "X[i,j] = \"rs_x.npy\"\nS[i] = X[i,j]\nexport S\n");
    double y[R * C], s[R] = {0};
    for (int i = 0; i < R * C; i++) {
        y[i] = (double)x[i] * x[i];
        s[i / C] += x[i];
    }
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL, *one = NULL;
    fuse_runner *run = NULL, *run1 = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_msg(fuse_program_from_file(ctx, spath("rs.fuse"), &prog) == FUSE_OK &&
                      fuse_program_from_file(ctx, spath("rs1.fuse"), &one) == FUSE_OK &&
                      fuse_runner_new(prog, NULL, NULL, 0, &run) == FUSE_OK &&
                      fuse_runner_new(one, NULL, NULL, 0, &run1) == FUSE_OK,
                  "%s", fuse_ctx_error(ctx));
    for (int compress = 0; compress <= 1; compress++) {
        const char *name = compress ? "rsz.npz" : "rs.npz";
        ck_assert_msg(fuse_runner_run_save(run, NULL, 0, spath(name), compress) == FUSE_OK, "%s",
                      fuse_ctx_error(ctx));
        float *gy = read_member(name, "Y", 2, shape), *gs = read_member(name, "S", 1, rows);
        expect_close("Y", gy, y, R * C);
        expect_close("S", gs, s, R);
        free(gy), free(gs);
    }
    ck_assert_int_eq(fuse_runner_run_save(run1, NULL, 0, spath("rs1.npy"), 0), FUSE_OK);
    float *g1 = read_npy("rs1.npy", 1, rows);
    expect_close("S (.npy)", g1, s, R);
    free(g1);
    struct stat sb;
    ck_assert_int_eq(fuse_runner_run_save(run, NULL, 0, spath("two.npy"), 0), FUSE_E_ARG);
    expect_ctx_error(ctx, "holds one tensor, but the program has 2 exports");
    ck_assert_int_ne(stat(spath("two.npy"), &sb), 0);
    ck_assert_int_eq(fuse_runner_run_save(run, NULL, 0, spath("rs.json"), 0), FUSE_E_ARG);
    expect_ctx_error(ctx, "must end in .npy or .npz");
    ck_assert_int_eq(fuse_runner_run_save(run, NULL, 0, NULL, 0), FUSE_E_ARG);
    /* beneath a regular file: no directory can be made there */
    ck_assert_int_eq(fuse_runner_run_save(run, NULL, 0, spath("rs_x.npy/out.npz"), 0), FUSE_E_IO);
    expect_ctx_error(ctx, "rs_x.npy");
    ck_assert_msg(fuse_runner_run_save(run, NULL, 0, spath("rs.npz"), 0) == FUSE_OK, "%s",
                  fuse_ctx_error(ctx));
    fuse_runner_free(run);
    fuse_runner_free(run1);
    fuse_program_free(prog);
    fuse_program_free(one);
    fuse_ctx_free(ctx);
}
END_TEST

/* io_out: pieces of any size make the tensor; a short or long tensor, a
 * second tensor in an .npy are errors; an aborted file leaves nothing */
START_TEST(test_io_out_pieces_and_misuse)
{
    float v[6] = {1, 2, 3, 4, 5, 6};
    fuse_tensor meta = {.dtype = FUSE_F32, .rank = 2, .shape = {2, 3}};
    IoOut *o = NULL;
    char *err = NULL;
    ck_assert_int_eq(io_out_open(spath("io.npz"), false, &o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_begin(o, "V", &meta, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, v, 4, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, v + 1, 20, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, v, 4, &err), FUSE_E_ARG); /* one float too many */
    free(err), err = NULL;
    ck_assert_int_eq(io_out_end(o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_begin(o, "W", &meta, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, v, 8, &err), FUSE_OK);
    ck_assert_int_eq(io_out_end(o, &err), FUSE_E_ARG); /* 16 bytes short */
    ck_assert_msg(err && strstr(err, "16 bytes short"), "%s", err ? err : "");
    free(err), err = NULL;
    io_out_abort(o);
    struct stat sb;
    ck_assert_int_ne(stat(spath("io.npz"), &sb), 0);
    ck_assert_int_eq(io_out_open(spath("io.npz"), false, &o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_begin(o, "V", &meta, &err), FUSE_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(io_out_data(o, v + i, 4, &err), FUSE_OK);
    ck_assert_int_eq(io_out_end(o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_commit(o, &err), FUSE_OK);
    int64_t shape[2] = {2, 3};
    float *got = read_member("io.npz", "V", 2, shape);
    ck_assert(memcmp(got, v, sizeof v) == 0);
    free(got);
    ck_assert_int_eq(io_out_open(spath("io.npy"), false, &o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_begin(o, "V", &meta, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, v, sizeof v, &err), FUSE_OK);
    ck_assert_int_eq(io_out_end(o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_begin(o, "W", &meta, &err), FUSE_E_ARG);
    free(err), err = NULL;
    ck_assert_int_eq(io_out_commit(o, &err), FUSE_OK);
    got = read_npy("io.npy", 2, shape);
    ck_assert(memcmp(got, v, sizeof v) == 0);
    free(got);
    /* bfloat16 is written as the float32 it holds, piece by piece */
    uint16_t h[3] = {io_float_to_bf16(1.5f), io_float_to_bf16(-2.0f), io_float_to_bf16(0.25f)};
    fuse_tensor hm = {.dtype = FUSE_BF16, .rank = 1, .shape = {3}};
    ck_assert_int_eq(io_out_open(spath("io_h.npy"), false, &o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_begin(o, "H", &hm, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, h, 2, &err), FUSE_OK);
    ck_assert_int_eq(io_out_data(o, h + 1, 4, &err), FUSE_OK);
    ck_assert_int_eq(io_out_end(o, &err), FUSE_OK);
    ck_assert_int_eq(io_out_commit(o, &err), FUSE_OK);
    int64_t three[1] = {3};
    got = read_npy("io_h.npy", 1, three);
    ck_assert(got[0] == 1.5f && got[1] == -2.0f && got[2] == 0.25f);
    free(got);
    ck_assert_int_eq(io_out_open(spath("io.txt"), false, &o, &err), FUSE_E_ARG);
    free(err);
}
END_TEST

static TCase *save_case(void)
{
    TCase *tc = fixture_case("save");
    tcase_add_test(tc, test_run_save_writes_the_exports);
    tcase_add_test(tc, test_io_out_pieces_and_misuse);
    return tc;
}

static TCase *sizes_case(void)
{
    TCase *tc = fixture_case("sizes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_npy_header_claiming_more_than_the_file);
    tcase_add_test(tc, test_program_refuses_npy_larger_than_its_file);
    tcase_add_test(tc, test_npz_declared_sizes_are_checked);
    return tc;
}

static TCase *safetensors_case(void)
{
    TCase *tc = fixture_case("safetensors");
    tcase_add_test(tc, test_safetensors_f32_only_tensor);
    tcase_add_test(tc, test_safetensors_dtypes);
    tcase_add_test(tc, test_safetensors_bad_lengths);
    tcase_add_loop_test(tc, test_safetensors_malformed, 0, N_OF(bad_st));
    tcase_add_test(tc, test_safetensors_named_among_many);
    return tc;
}

static Suite *formats_suite(void)
{
    Suite *s = suite_create("formats");
    suite_add_tcase(s, facts_case());
    suite_add_tcase(s, bow_case());
    suite_add_tcase(s, topk_case());
    suite_add_tcase(s, json_case());
    suite_add_tcase(s, safetensors_case());
    suite_add_tcase(s, sizes_case());
    suite_add_tcase(s, save_case());
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(formats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
