/*
 * test_diag.c: diagnostics as a user sees them from fuse-jit: every error of a
 * phase up to --error-limit, no cascades, size conflicts with their notes,
 * unclosed brackets, the "declare it" hint, and colour (--color, NO_COLOR).
 * Expected messages are written out in full.
 */
#include <check.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "print.h"

/* Runs `fuse-jit ARGS... prog.fuse` on text and checks exit status and stderr. */
static void expect_stderr(const char *text, const char *want, const char *a1, const char *a2)
{
    write_text("prog.fuse", text);
    Result r = a2   ? run_cli("run", a1, a2, "prog.fuse", NULL)
               : a1 ? run_cli("run", a1, "prog.fuse", NULL)
                    : run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_str_eq(r.err, want);
    result_free(&r);
}

static void write_vectors(void)
{
    const float three[3] = {1, 2, 3}, four[4] = {1, 2, 3, 4};
    write_npy("a.npy", 1, (const int64_t[]){3}, three);
    write_npy("b.npy", 1, (const int64_t[]){4}, four);
}

START_TEST(test_legacy_syntax_errors_all_reported)
{
    expect_stderr("A[i] = \"a.npy\"\nB[i] = A[i] +\nC[i] = A[i]]\nD[i] = A[i] * 2\n",
                  "prog.fuse:2:14: error: expected an expression after '+', found end of line\n"
                  "  B[i] = A[i] +\n"
                  "               ^\n"
                  "prog.fuse:3:12: error: unmatched ']'\n"
                  "  C[i] = A[i]]\n"
                  "             ^\n"
                  "prog.fuse:4:13: error: unexpected '*': a product is written by "
                  "juxtaposition, as in A[i] B[i]\n"
                  "  D[i] = A[i] * 2\n"
                  "              ^\n",
                  NULL, NULL);
}
END_TEST

START_TEST(test_v2_syntax_errors_all_reported)
{
    /* ';' separates statements: the one after the bad one is parsed too */
    expect_stderr("#!fuse v2\nA[i] = \"a.npy\"\nB[i] = A[i] +\nC[i] = A[i]]; D[i] = A[i] **\n"
                  "E[i] = A[i]\n",
                  "prog.fuse:3:14: error: expected an expression, found end of line\n"
                  "  B[i] = A[i] +\n"
                  "               ^\n"
                  "prog.fuse:4:12: error: unmatched ']'\n"
                  "  C[i] = A[i]]; D[i] = A[i] **\n"
                  "             ^\n"
                  "prog.fuse:4:29: error: expected an expression, found end of line\n"
                  "  C[i] = A[i]]; D[i] = A[i] **\n"
                  "                              ^\n",
                  NULL, NULL);
}
END_TEST

START_TEST(test_error_limit)
{
    const char *prog = "A[i] = \"a.npy\"\nB[i] = A[i] +\nC[i] = A[i]]\nD[i] = A[i] * 2\n";
    expect_stderr(prog,
                  "prog.fuse:2:14: error: expected an expression after '+', found end of line\n"
                  "  B[i] = A[i] +\n"
                  "               ^\n"
                  "prog.fuse:3:12: error: unmatched ']'\n"
                  "  C[i] = A[i]]\n"
                  "             ^\n"
                  "error: too many errors emitted, stopping now\n",
                  "--error-limit", "2");
    /* 0: no limit; the default (20) is far above 3 */
    write_text("prog.fuse", prog);
    Result r = run_cli("check", "--error-limit=0", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_null(strstr(r.err, "too many"));
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:4:13: error:"));
    result_free(&r);
    r = run_cli("check", "--error-limit", "-1", "prog.fuse", NULL);
    expect_exit(&r, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--error-limit expects a number of errors"));
    result_free(&r);
}
END_TEST

START_TEST(test_default_limit_is_twenty)
{
    char prog[2048] = "";
    for (int i = 0; i < 25; i++)
        strcat(prog, "Y[i] = +\n");
    write_text("prog.fuse", prog);
    Result r = run_cli("check", "prog.fuse", NULL);
    expect_exit(&r, 3);
    int n = 0;
    for (const char *p = r.err; (p = strstr(p, ": error: expected")) != NULL; p++)
        n++;
    ck_assert_int_eq(n, 20);
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:20:8: error:"));
    ck_assert_ptr_nonnull(strstr(r.err, "\nerror: too many errors emitted, stopping now\n"));
    result_free(&r);
}
END_TEST

START_TEST(test_check_errors_no_cascade)
{
    /* X is unknown: reported where first used only; the rank error is independent */
    write_vectors();
    expect_stderr("A[i] = \"a.npy\"\nB[i] = X[i]\nC[i] = X[i] A[i]\nD[i] = A[i,j]\n",
                  "prog.fuse:2:8: error: unknown tensor 'X'\n"
                  "  B[i] = X[i]\n"
                  "         ^\n"
                  "prog.fuse:4:8: error: 'A' has rank 1 but is indexed with 2 axes\n"
                  "  D[i] = A[i,j]\n"
                  "         ^\n",
                  NULL, NULL);
}
END_TEST

START_TEST(test_size_conflict_caret_and_notes)
{
    /* the second equation's conflict is in the same class: not reported again */
    write_vectors();
    expect_stderr("A[i] = \"a.npy\"\nB[j] = \"b.npy\"\nC[i] = A[i] B[i]\nD[i] = B[i] A[i]\n",
                  "prog.fuse:3:15: error: size conflict for axis i: 3 (from \"a.npy\" at "
                  "prog.fuse:1:1) vs 4 (from \"b.npy\" at prog.fuse:2:1)\n"
                  "  C[i] = A[i] B[i]\n"
                  "                ^\n"
                  "prog.fuse:1:3: note: i has size 3 here\n"
                  "  A[i] = \"a.npy\"\n"
                  "    ^\n"
                  "prog.fuse:2:3: note: j has size 4 here\n"
                  "  B[j] = \"b.npy\"\n"
                  "    ^\n",
                  NULL, NULL);
}
END_TEST

START_TEST(test_two_independent_size_conflicts)
{
    write_vectors();
    write_text("prog.fuse", "A[i] = \"a.npy\"\nB[j] = \"b.npy\"\nC[i] = A[i] B[i]\n"
                            "P[k] = \"a.npy\"\nQ[k] = \"b.npy\"\nR[k] = P[k] + Q[k]\n");
    Result r = run_cli("run", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:3:15: error: size conflict for axis i"));
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:6:17: error: size conflict for axis k"));
    ck_assert_ptr_nonnull(strstr(r.err, "prog.fuse:5:3: note: k has size 4 here\n"));
    result_free(&r);
}
END_TEST

START_TEST(test_unclosed_bracket_legacy)
{
    expect_stderr("Y[i, j = X[i]\nZ = relu(X[i]\n",
                  "prog.fuse:1:2: error: '[' is never closed\n"
                  "  Y[i, j = X[i]\n"
                  "   ^\n"
                  "prog.fuse:1:8: note: expected ',' or ']' to close it, found '='\n"
                  "  Y[i, j = X[i]\n"
                  "         ^\n"
                  "prog.fuse:2:9: error: '(' is never closed\n"
                  "  Z = relu(X[i]\n"
                  "          ^\n"
                  "prog.fuse:3:1: note: expected ',' or ')' to close it, found end of input\n"
                  "  \n"
                  "  ^\n",
                  NULL, NULL);
    /* closed later: the missing ',' is the error */
    expect_stderr("Y[i] = X[i j]\n",
                  "prog.fuse:1:12: error: expected ',' or ']' to close '[' opened at line 1, "
                  "found 'j'\n"
                  "  Y[i] = X[i j]\n"
                  "             ^\n",
                  NULL, NULL);
}
END_TEST

START_TEST(test_unclosed_bracket_v2)
{
    expect_stderr("y = (1 + 2\n",
                  "prog.fuse:1:5: error: '(' is never closed\n"
                  "  y = (1 + 2\n"
                  "      ^\n"
                  "prog.fuse:1:11: note: expected ')' to close it, found the end of input\n"
                  "  y = (1 + 2\n"
                  "            ^\n",
                  "--parser", "v2");
}
END_TEST

START_TEST(test_declare_hint)
{
    write_vectors();
    expect_stderr("A[i] = \"a.npy\"\nY[i,j] = A[i]\n",
                  "prog.fuse:2:5: error: cannot infer the size of axis j of Y; bind it on the "
                  "right-hand side (index a tensor of known size with j) or declare it with "
                  "`axis j = SIZE` (v2 syntax)\n"
                  "  Y[i,j] = A[i]\n"
                  "      ^\n",
                  NULL, NULL);
}
END_TEST

/* The API: fuse_ctx_error holds every error, one after another, as the CLI
 * prints them; fuse_program_options.error_limit caps them. */
START_TEST(test_api_gives_every_error)
{
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    const char *text = "Y[i] = +\nZ[i] = ]\nW[i] = )\n";
    fuse_program *prog = NULL;
    ck_assert_int_eq(fuse_program_from_text(ctx, text, "t.fuse", &prog), FUSE_E_SYNTAX);
    ck_assert_str_eq(fuse_ctx_error(ctx),
                     "t.fuse:1:8: error: expected an expression after '=', found '+'\n"
                     "  Y[i] = +\n"
                     "         ^\n"
                     "t.fuse:2:8: error: expected an expression after '=', found ']'\n"
                     "  Z[i] = ]\n"
                     "         ^\n"
                     "t.fuse:3:8: error: expected an expression after '=', found ')'\n"
                     "  W[i] = )\n"
                     "         ^");
    fuse_program_options o;
    fuse_program_options_init(&o);
    o.error_limit = 1;
    ck_assert_int_eq(fuse_program_from_text_opts(ctx, text, "t.fuse", &o, &prog), FUSE_E_SYNTAX);
    ck_assert_str_eq(fuse_ctx_error(ctx),
                     "t.fuse:1:8: error: expected an expression after '=', found '+'\n"
                     "  Y[i] = +\n"
                     "         ^\n"
                     "error: too many errors emitted, stopping now");
    ck_assert_ptr_null(prog);
    fuse_ctx_free(ctx);
}
END_TEST

/* ---- colour ---- */

static const char *const BAD = "Y[i] = +\n";

START_TEST(test_color_always)
{
    write_text("prog.fuse", BAD);
    Result r = run_cli("check", "--color=always", "prog.fuse", NULL);
    expect_exit(&r, 3);
    ck_assert_str_eq(r.err, "\033[1mprog.fuse:1:8: \033[0;1;31merror:\033[0m\033[1m expected an "
                            "expression after '=', found '+'\033[0m\n"
                            "  Y[i] = +\n"
                            "         \033[0;1;32m^\033[0m\n");
    result_free(&r);
    r = run_cli("check", "--color", "always", "prog.fuse", NULL); /* --color WHEN */
    ck_assert_ptr_nonnull(strstr(r.err, "\033[0;1;31merror:"));
    result_free(&r);
}
END_TEST

START_TEST(test_color_never_and_pipe)
{
    const char *plain = "prog.fuse:1:8: error: expected an expression after '=', found '+'\n"
                        "  Y[i] = +\n"
                        "         ^\n";
    write_text("prog.fuse", BAD);
    Result r = run_cli("check", "--color=never", "prog.fuse", NULL);
    ck_assert_str_eq(r.err, plain);
    result_free(&r);
    r = run_cli("check", "prog.fuse", NULL); /* auto, stderr is a file */
    ck_assert_str_eq(r.err, plain);
    result_free(&r);
    r = run_cli("check", "--color=sometimes", "prog.fuse", NULL);
    expect_exit(&r, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--color expects auto, always or never, got "
                                        "'sometimes'"));
    result_free(&r);
}
END_TEST

/* auto on a terminal: NO_COLOR (non-empty) and TERM=dumb turn it off. */
START_TEST(test_color_auto_on_a_terminal)
{
    int master, slave;
    ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    int saved = dup(STDERR_FILENO);
    dup2(slave, STDERR_FILENO);
    cli_color_set(CLI_COLOR_AUTO);
    setenv("TERM", "xterm", 1);
    unsetenv("NO_COLOR");
    bool plain_tty = cli_color_stderr();
    setenv("NO_COLOR", "", 1);
    bool empty_no_color = cli_color_stderr();
    setenv("NO_COLOR", "1", 1);
    bool no_color = cli_color_stderr();
    unsetenv("NO_COLOR");
    setenv("TERM", "dumb", 1);
    bool dumb = cli_color_stderr();
    cli_color_set(CLI_COLOR_ALWAYS);
    bool always_dumb = cli_color_stderr();
    cli_color_set(CLI_COLOR_AUTO);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(slave);
    close(master);
    ck_assert(plain_tty);
    ck_assert(empty_no_color);
    ck_assert(!no_color);
    ck_assert(!dumb);
    ck_assert(always_dumb);
    ck_assert(!cli_color_stderr()); /* stderr is not a terminal here */
}
END_TEST

/* Runs fuse-jit with args on a pseudo-terminal (TERM=xterm; NO_COLOR set to
 * no_color unless NULL), typing `input` (may be NULL) after a moment; returns
 * everything it printed. */
static char *run_on_tty(const char *const *args, const char *no_color, const char *input)
{
    int master;
    fflush(NULL);
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(scratch) != 0)
            _exit(126);
        setenv("TERM", "xterm", 1);
        if (no_color)
            setenv("NO_COLOR", no_color, 1);
        else
            unsetenv("NO_COLOR");
        execv(FUSE_JIT_BIN, (char *const *)args);
        _exit(127);
    }
    if (input) {
        usleep(300 * 1000);
        ck_assert_int_eq(write(master, input, strlen(input)), (ssize_t)strlen(input));
    }
    size_t n = 0, cap = 1 << 16;
    char *out = calloc(cap, 1);
    ck_assert_ptr_nonnull(out);
    for (ssize_t k; n + 1 < cap && (k = read(master, out + n, cap - 1 - n)) > 0;)
        n += (size_t)k; /* EIO once the child has exited */
    int status;
    waitpid(pid, &status, 0);
    close(master);
    return out;
}

START_TEST(test_color_auto_cli_and_repl)
{
    write_text("prog.fuse", BAD);
    const char *check[] = {FUSE_JIT_BIN, "check", "prog.fuse", NULL};
    char *out = run_on_tty(check, NULL, NULL);
    ck_assert_msg(strstr(out, "\033[0;1;31merror:") != NULL, "no colour on a tty:\n%s", out);
    free(out);
    out = run_on_tty(check, "1", NULL);
    ck_assert_msg(strstr(out, "prog.fuse:1:8: error: expected") != NULL && !strchr(out, '\033'),
                  "NO_COLOR:\n%s", out);
    free(out);
    const char *repl[] = {FUSE_JIT_BIN, "repl", NULL};
    out = run_on_tty(repl, NULL, "Y[i] = +\n:quit\n");
    ck_assert_msg(strstr(out, "\033[0;1;31merror:") != NULL, "REPL without colour:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\033[0;1;32m^\033[0m"));
    free(out);
    out = run_on_tty(repl, "1", "Y[i] = +\n:quit\n");
    ck_assert_msg(strstr(out, "error: expected an expression") != NULL && !strstr(out, "\033[0;1;31m"),
                  "REPL with NO_COLOR:\n%s", out);
    free(out);
}
END_TEST

START_TEST(test_colorize_lines)
{
    char *s = cli_color_diags("f.fuse:2:3: note: i has size 3 here\n  A[i]\n    ^~\n"
                              "fuse-jit: warning: w\nplain line\n");
    ck_assert_str_eq(s, "\033[1mf.fuse:2:3: \033[0;1;36mnote:\033[0m\033[1m i has size 3 "
                        "here\033[0m\n  A[i]\n    \033[0;1;32m^~\033[0m\n"
                        "\033[1mfuse-jit: \033[0;1;35mwarning:\033[0m\033[1m w\033[0m\n"
                        "plain line\n");
    free(s);
}
END_TEST

static Suite *diag_suite(void)
{
    Suite *s = suite_create("diag");
    TCase *tc = harness_case("diag");
    tcase_add_test(tc, test_legacy_syntax_errors_all_reported);
    tcase_add_test(tc, test_v2_syntax_errors_all_reported);
    tcase_add_test(tc, test_error_limit);
    tcase_add_test(tc, test_default_limit_is_twenty);
    tcase_add_test(tc, test_check_errors_no_cascade);
    tcase_add_test(tc, test_size_conflict_caret_and_notes);
    tcase_add_test(tc, test_two_independent_size_conflicts);
    tcase_add_test(tc, test_unclosed_bracket_legacy);
    tcase_add_test(tc, test_unclosed_bracket_v2);
    tcase_add_test(tc, test_declare_hint);
    tcase_add_test(tc, test_api_gives_every_error);
    tcase_add_test(tc, test_color_always);
    tcase_add_test(tc, test_color_never_and_pipe);
    tcase_add_test(tc, test_color_auto_on_a_terminal);
    tcase_add_test(tc, test_color_auto_cli_and_repl);
    tcase_add_test(tc, test_colorize_lines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(diag_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
