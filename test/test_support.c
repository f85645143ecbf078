/*
 * test_support.c: Check suite for support/: the text buffer, array growth, the
 * clock, and whole-file reads and atomic writes (with the removal of the
 * temporaries a killed write left behind), also beneath a root that symbolic
 * links may not lead out of.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "support.h"

/* ---- strbuf.c ---- */

START_TEST(test_buf_builds_text)
{
    SupBuf b = {0};
    ck_assert(sup_buf_puts(&b, "ab"));
    ck_assert(sup_buf_putc(&b, 'c'));
    ck_assert(sup_buf_append(&b, "dexx", 2));
    ck_assert(sup_buf_printf(&b, "[%d,%s]", 42, "z"));
    char big[600];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert(sup_buf_printf(&b, "%s!", big)); /* longer than printf's first try */
    ck_assert_uint_eq(b.len, 5 + 6 + 599 + 1);
    ck_assert(strncmp(b.p, "abcde[42,z]qq", 13) == 0);
    ck_assert_int_eq(b.p[b.len - 1], '!');
    ck_assert_int_eq(b.p[b.len], '\0');
    char *s = sup_buf_finish(&b);
    ck_assert_ptr_eq(s, b.p);
    free(s);
}
END_TEST

START_TEST(test_buf_empty_and_oom)
{
    SupBuf b = {0};
    char *s = sup_buf_finish(&b);
    ck_assert_str_eq(s, "");
    free(s);
    /* after a failed allocation every append fails and finish gives NULL */
    SupBuf o = {0};
    ck_assert(sup_buf_puts(&o, "x"));
    o.is_oom = true;
    ck_assert(!sup_buf_puts(&o, "y"));
    ck_assert_uint_eq(o.len, 1);
    ck_assert_ptr_null(sup_buf_finish(&o));
}
END_TEST

START_TEST(test_strprintf_and_fail)
{
    char *s = sup_strprintf("%s-%03d", "k", 7);
    ck_assert_str_eq(s, "k-007");
    free(s);
    char *err = NULL;
    ck_assert_int_eq(sup_fail(&err, FUSE_E_IO, "%s: bad", "f.npy"), FUSE_E_IO);
    ck_assert_str_eq(err, "f.npy: bad");
    free(err);
    ck_assert_int_eq(sup_fail(NULL, FUSE_E_ARG, "x"), FUSE_E_ARG);
}
END_TEST

/* Duplicates are found wherever they stand, and only real ones; 20,000 distinct
 * names (pairwise: 200 million comparisons) are checked through the sort. */
START_TEST(test_duplicate_name)
{
    bool is_oom = true;
    const char *none[] = {"b", "a", "c"}, *dup[] = {"x", "y", "z", "y", "w"};
    ck_assert_ptr_null(sup_duplicate_name(none, 3, &is_oom));
    ck_assert(!is_oom);
    ck_assert_ptr_null(sup_duplicate_name(none, 0, &is_oom));
    ck_assert_str_eq(sup_duplicate_name(dup, 5, &is_oom), "y");
    enum { N = 20000 };
    char(*text)[8] = malloc(sizeof *text * N);
    const char **many = malloc(sizeof *many * N);
    ck_assert(text && many);
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "t%d", (i * 7919) % N); /* a permutation */
        many[i] = text[i];
    }
    ck_assert_ptr_null(sup_duplicate_name(many, N, &is_oom));
    many[N - 1] = many[0];
    ck_assert_str_eq(sup_duplicate_name(many, N, &is_oom), text[0]);
    free(many);
    free(text);
}
END_TEST

/* ---- grow.c ---- */

START_TEST(test_grow_doubles_and_refuses_overflow)
{
    int *v = NULL;
    size_t cap = 0;
    for (size_t n = 1; n <= 1000; n++) {
        ck_assert(sup_grow((void **)&v, &cap, n, sizeof *v));
        ck_assert_uint_ge(cap, n);
        v[n - 1] = (int)n;
    }
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(v[i], i + 1);
    ck_assert_uint_eq(cap, 1024); /* 8, doubled */
    int *keep = v;
    ck_assert(!sup_grow((void **)&v, &cap, SIZE_MAX / 2, sizeof *v));
    ck_assert_ptr_eq(v, keep);
    ck_assert_uint_eq(cap, 1024);
    free(v);
}
END_TEST

/* ---- clock.c ---- */

START_TEST(test_clock_is_monotonic_ms)
{
    double a = sup_clock_ms();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double b = sup_clock_ms();
    ck_assert(b - a >= 19.0 && b - a < 5000.0);
}
END_TEST

/* ---- files.c ---- */

START_TEST(test_write_atomic_creates_parents_and_replaces)
{
    char *err = NULL;
    ck_assert_int_eq(sup_write_file_atomic(spath("d/e/f.txt"), "one", 3, &err), FUSE_OK);
    ck_assert_int_eq(sup_write_file_atomic(spath("d/e/f.txt"), "second", 6, &err), FUSE_OK);
    void *data = NULL;
    size_t n = 0;
    ck_assert_int_eq(sup_read_file(spath("d/e/f.txt"), &data, &n, &err), FUSE_OK);
    ck_assert_uint_eq(n, 6);
    ck_assert_str_eq(data, "second"); /* NUL-terminated */
    free(data);
    ck_assert_int_eq(sup_read_file(spath("absent.txt"), &data, &n, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, "absent.txt"));
    free(err);
    err = NULL;
    /* a parent that is a file */
    ck_assert_int_eq(sup_write_file_atomic(spath("d/e/f.txt/g"), "x", 1, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, "f.txt"));
    free(err);
}
END_TEST

static void touch_aged(const char *name, time_t age)
{
    write_text(name, "partial");
    struct timespec t[2];
    t[0].tv_sec = t[1].tv_sec = time(NULL) - age;
    t[0].tv_nsec = t[1].tv_nsec = 0;
    ck_assert_int_eq(utimensat(AT_FDCWD, spath(name), t, 0), 0);
}

/* A temporary a killed write of y.npy left (".y.npy.tmpXXXXXX", two hours old)
 * goes with the next write of y.npy; a fresh one (a write in progress) and
 * files of other names stay. */
START_TEST(test_write_atomic_removes_stale_temps)
{
    touch_aged(".y.npy.tmpAbC123", 2 * 3600);
    touch_aged(".y.npy.tmpFresh1", 10);
    touch_aged(".y.npy.tmp-renamed", 2 * 3600); /* not six characters: not ours */
    touch_aged(".z.npy.tmpAbC123", 2 * 3600); /* another target's */
    touch_aged("notes.txt", 2 * 3600);
    char *err = NULL;
    ck_assert_int_eq(sup_write_file_atomic(spath("y.npy"), "data", 4, &err), FUSE_OK);
    ck_assert(!file_exists(".y.npy.tmpAbC123"));
    ck_assert(file_exists(".y.npy.tmpFresh1"));
    ck_assert(file_exists(".y.npy.tmp-renamed"));
    ck_assert(file_exists(".z.npy.tmpAbC123"));
    ck_assert(file_exists("notes.txt"));
    ck_assert(file_exists("y.npy"));
}
END_TEST

/* ---- writing beneath a root ---- */

/* The whole file as a string (malloc'd), or NULL when it cannot be read. */
static char *read_text(const char *name)
{
    void *data = NULL;
    size_t n = 0;
    return sup_read_file(spath(name), &data, &n, NULL) == FUSE_OK ? data : NULL;
}

static void expect_text(const char *name, const char *want)
{
    char *got = read_text(name);
    ck_assert_msg(got != NULL, "%s was not written", name);
    ck_assert_str_eq(got, want);
    free(got);
}

/* A root with a link to a directory outside it, one to a directory inside, an
 * absolute link and a dangling one leading out; "outside" is not under root. */
static void make_linked_root(void)
{
    ck_assert_int_eq(mkdir(spath("root"), 0755), 0);
    ck_assert_int_eq(mkdir(spath("root/in"), 0755), 0);
    ck_assert_int_eq(mkdir(spath("outside"), 0755), 0);
    ck_assert_int_eq(symlink("../outside", spath("root/out")), 0);
    ck_assert_int_eq(symlink("in", spath("root/inlink")), 0);
    ck_assert_int_eq(symlink(spath("outside"), spath("root/abs")), 0);
    ck_assert_int_eq(symlink("../outside/new", spath("root/dangling")), 0);
    write_text("outside/x.npy", "precious");
    ck_assert_int_eq(symlink(spath("outside/x.npy"), spath("root/x.npy")), 0);
}

/* Refused with FUSE_E_IO naming the link, and nothing appears outside. */
static void expect_escape_refused(const char *rel, const char *link)
{
    char *err = NULL;
    ck_assert_int_eq(sup_write_file_beneath(spath("root"), rel, "bad", 3, &err), FUSE_E_IO);
    ck_assert_msg(err && strstr(err, rel) && strstr(err, link), "%s: %s", rel,
                  err ? err : "(no message)");
    free(err);
    ck_assert(!file_exists("outside/y.npy"));
    ck_assert(!file_exists("outside/sub"));
    ck_assert(!file_exists("outside/new"));
    expect_text("outside/x.npy", "precious");
}

START_TEST(test_write_beneath_creates_and_replaces)
{
    char *err = NULL;
    ck_assert_int_eq(sup_write_file_beneath(spath("r/s"), "a/b//c.txt", "one", 3, &err),
                     FUSE_OK);
    ck_assert_int_eq(sup_write_file_beneath(spath("r/s"), "./a/b/c.txt", "two", 3, &err),
                     FUSE_OK);
    expect_text("r/s/a/b/c.txt", "two");
    ck_assert_int_eq(sup_write_file_beneath(spath("r/s"), "e.txt", "", 0, &err), FUSE_OK);
    expect_text("r/s/e.txt", "");
    /* a file where a directory is needed; an absolute path; a directory name */
    ck_assert_int_eq(sup_write_file_beneath(spath("r/s"), "e.txt/f", "x", 1, &err), FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, "e.txt/f"));
    free(err);
    err = NULL;
    ck_assert_int_eq(sup_write_file_beneath(spath("r"), "/tmp/f", "x", 1, &err), FUSE_E_ARG);
    free(err);
    err = NULL;
    ck_assert_int_eq(sup_write_file_beneath(spath("r"), "s/a/", "x", 1, &err), FUSE_E_IO);
    free(err);
}
END_TEST

START_TEST(test_write_beneath_refuses_links_out)
{
    make_linked_root();
    expect_escape_refused("out/y.npy", "'out' is a symbolic link to '../outside'");
    expect_escape_refused("out/sub/y.npy", "'out'");
    expect_escape_refused("in/../out/y.npy", "'in/../out' is a symbolic link");
    expect_escape_refused("abs/y.npy", "'abs'");
    expect_escape_refused("dangling/y.npy", "'dangling'");
    expect_escape_refused("../outside/y.npy", "'..' leads outside");
    /* a link that stays inside is followed; parents are made through it */
    char *err = NULL;
    ck_assert_int_eq(sup_write_file_beneath(spath("root"), "inlink/sub/y.npy", "ok", 2, &err),
                     FUSE_OK);
    expect_text("root/in/sub/y.npy", "ok");
    /* a link at the target itself is replaced, not followed */
    ck_assert_int_eq(sup_write_file_beneath(spath("root"), "x.npy", "mine", 4, &err), FUSE_OK);
    expect_text("outside/x.npy", "precious");
    expect_text("root/x.npy", "mine");
    struct stat st;
    ck_assert_int_eq(lstat(spath("root/x.npy"), &st), 0);
    ck_assert(S_ISREG(st.st_mode));
}
END_TEST

/* Without openat2 every link is refused, even one that stays inside. */
START_TEST(test_write_beneath_walk_refuses_every_link)
{
    make_linked_root();
    sup_beneath_use_walk(true);
    expect_escape_refused("out/y.npy", "'out' is a symbolic link (to '../outside')");
    expect_escape_refused("../outside/y.npy", "'..'");
    char *err = NULL;
    ck_assert_int_eq(sup_write_file_beneath(spath("root"), "inlink/y.npy", "no", 2, &err),
                     FUSE_E_IO);
    ck_assert_ptr_nonnull(strstr(err, "'inlink'"));
    free(err);
    err = NULL;
    fuse_status st = sup_write_file_beneath(spath("root"), "in/new/y.npy", "ok", 2, &err);
    ck_assert_int_eq(sup_write_file_beneath(spath("root"), "x.npy", "mine", 4, NULL), FUSE_OK);
    sup_beneath_use_walk(false);
    ck_assert_msg(st == FUSE_OK, "%s", err ? err : "");
    expect_text("root/in/new/y.npy", "ok");
    expect_text("outside/x.npy", "precious");
    expect_text("root/x.npy", "mine");
}
END_TEST

/* The stale temporaries of a killed write go, as with sup_write_file_atomic. */
START_TEST(test_write_beneath_removes_stale_temps)
{
    ck_assert_int_eq(mkdir(spath("d"), 0755), 0);
    touch_aged("d/.y.npy.tmpAbC123", 2 * 3600);
    touch_aged("d/.y.npy.tmpFresh1", 10);
    ck_assert_int_eq(sup_write_file_beneath(scratch, "d/y.npy", "data", 4, NULL), FUSE_OK);
    ck_assert(!file_exists("d/.y.npy.tmpAbC123"));
    ck_assert(file_exists("d/.y.npy.tmpFresh1"));
    expect_text("d/y.npy", "data");
}
END_TEST

START_TEST(test_edit_distance)
{
    ck_assert_uint_eq(sup_edit_distance("", ""), 0);
    ck_assert_uint_eq(sup_edit_distance("abc", ""), 3);
    ck_assert_uint_eq(sup_edit_distance("kitten", "sitting"), 3);
    ck_assert_uint_eq(sup_edit_distance("Threads", "threads"), 0); /* without case */
    ck_assert_uint_eq(sup_edit_distance("trheads", "threads"), 1); /* adjacent swap */
    ck_assert_uint_eq(sup_edit_distance("ca", "abc"), 3);          /* OSA, not full DL */
    ck_assert_uint_eq(sup_edit_distance("sigmoid", "sig"), 4);
    char longw[80];
    memset(longw, 'a', sizeof longw - 1);
    longw[sizeof longw - 1] = '\0';
    ck_assert_uint_eq(sup_edit_distance(longw, "a"), (size_t)-1);
}
END_TEST

START_TEST(test_same_word)
{
    ck_assert(sup_same_word("semi-naive", "semi_naive"));
    ck_assert(sup_same_word("MONTE-CARLO", "monte_carlo"));
    ck_assert(sup_same_word("exact", "exact"));
    ck_assert(!sup_same_word("semi", "semi_naive"));
    ck_assert(!sup_same_word("semi_naive", "semi"));
    ck_assert(!sup_same_word("semi naive", "semi_naive"));
    ck_assert(sup_same_word("", ""));
}
END_TEST

START_TEST(test_nearest)
{
    static const char *const opts[] = {"out", "threads", "max-iters", "max-memory", "help"};
    ck_assert_str_eq(sup_nearest("otu", opts, 5), "out");
    ck_assert_str_eq(sup_nearest("trheads", opts, 5), "threads");
    ck_assert_str_eq(sup_nearest("THREAD", opts, 5), "threads");
    ck_assert_str_eq(sup_nearest("max-iter", opts, 5), "max-iters");
    ck_assert_str_eq(sup_nearest("max-memry", opts, 5), "max-memory");
    ck_assert_str_eq(sup_nearest("out", opts, 5), "out"); /* an exact match is nearest */
    ck_assert_ptr_null(sup_nearest("xyz", opts, 5));       /* 3 letters: 1 edit at most */
    ck_assert_ptr_null(sup_nearest("max", opts, 5));
    ck_assert_ptr_null(sup_nearest("", opts, 5));
    ck_assert_ptr_null(sup_nearest(NULL, opts, 5));
    ck_assert_ptr_null(sup_nearest("out", opts, 0));
    /* shorter than 3 characters: only a difference of case */
    static const char *const names[] = {"A", "B", "xy"};
    ck_assert_ptr_null(sup_nearest("C", names, 3));
    ck_assert_str_eq(sup_nearest("a", names, 3), "A");
    ck_assert_ptr_null(sup_nearest("xz", names, 3));
    ck_assert_str_eq(sup_nearest("XY", names, 3), "xy");
    /* 6 letters allow 2 edits; ties go to the first candidate */
    static const char *const ties[] = {"abcdef", "abcdeg", NULL};
    ck_assert_str_eq(sup_nearest("abcdex", ties, 3), "abcdef");
    ck_assert_str_eq(sup_nearest("abcxyf", ties, 3), "abcdef");
    ck_assert_ptr_null(sup_nearest("axyzef", ties, 3));
}
END_TEST

static Suite *support_suite(void)
{
    Suite *s = suite_create("support");
    TCase *tc = tcase_create("memory");
    tcase_add_test(tc, test_buf_builds_text);
    tcase_add_test(tc, test_buf_empty_and_oom);
    tcase_add_test(tc, test_strprintf_and_fail);
    tcase_add_test(tc, test_duplicate_name);
    tcase_add_test(tc, test_grow_doubles_and_refuses_overflow);
    tcase_add_test(tc, test_clock_is_monotonic_ms);
    tcase_add_test(tc, test_edit_distance);
    tcase_add_test(tc, test_nearest);
    tcase_add_test(tc, test_same_word);
    suite_add_tcase(s, tc);
    tc = harness_case("files");
    tcase_add_test(tc, test_write_atomic_creates_parents_and_replaces);
    tcase_add_test(tc, test_write_atomic_removes_stale_temps);
    tcase_add_test(tc, test_write_beneath_creates_and_replaces);
    tcase_add_test(tc, test_write_beneath_refuses_links_out);
    tcase_add_test(tc, test_write_beneath_walk_refuses_every_link);
    tcase_add_test(tc, test_write_beneath_removes_stale_temps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(support_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
