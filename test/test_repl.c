/*
 * test_repl.c: the fuse-jit REPL, driven as a user would: a scripted
 * session through a pipe (values, an error with its caret after which the session
 * goes on, explain, save and reload, settings, redefinition, :drop, :undo, rejected
 * statements, expressions), and an interactive one through a
 * pseudo-terminal (forkpty) that checks the prompts, tab completion of a tensor
 * name, the continuation prompt, Ctrl-C (on a line, and during an evaluation)
 * and the history file in $HOME; `:help`, Tab completion of commands, :set
 * keys and values and file names, and Up recalling a two-line statement whole.
 * The completion and help functions are also called directly (no timing), and
 * the builtin table is checked against docs/builtins.md and the compiler.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fusejit.h"
#include "ir.h"
#include "repl.h"

enum { TIMEOUT_MS = 25000 };

/* A fresh scratch directory per test. */
static char scratch[64];

static void scratch_setup(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/fuse_repl_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void scratch_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", scratch);
}

static char *path_in(const char *name)
{
    static char buf[4][256]; /* test helper: a few paths alive at once */
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/%s", scratch, name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs `fuse-jit repl [program]` with stdin from `script`, in the scratch dir;
 * stdout and stderr go to out.txt and err.txt. Returns the exit status. */
static int run_piped_bytes(const char *script, size_t len, const char *program)
{
    FILE *f = fopen(path_in("script.txt"), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(script, 1, len, f), len);
    fclose(f);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(scratch) != 0)
            _exit(126);
        int in = open("script.txt", O_RDONLY);
        int out = open("out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open("err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0), dup2(out, 1), dup2(err, 2);
        execl(FUSE_JIT_BIN, "fuse-jit", "repl", program, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int run_piped(const char *script, const char *program)
{
    return run_piped_bytes(script, strlen(script), program);
}

static void expect_has(const char *text, const char *want)
{
    ck_assert_msg(strstr(text, want) != NULL, "expected '%s' in:\n%s", want, text);
}

/* Index of `want` in text, after position `from`; fails when absent. */
static size_t expect_after(const char *text, size_t from, const char *want)
{
    const char *p = strstr(text + from, want);
    ck_assert_msg(p != NULL, "expected '%s' after offset %zu in:\n%s", want, from, text);
    return (size_t)(p - text) + strlen(want);
}

START_TEST(piped_session)
{
    int rc = run_piped("A[i,k] = const([[1.0, 2.0], [3.0, 4.0]])\n"
                       "S[i] = A[i,k]\n"
                       "S\n"
                       "Bad[i] = A[i,k] +\n"
                       "T[k] = A[i,k]\n"
                       "P[i,k.] = softmax(\n"
                       "    A[i,k])\n"
                       "T\n"
                       ":shape P\n"
                       ":explain T\n"
                       ":save saved.fuse\n"
                       ":reset\n"
                       "S\n"
                       ":load saved.fuse\n"
                       "T\n"
                       ":set mode nonsense\n"
                       ":set threads 1\n"
                       ":list\n"
                       ":quit\n"
                       "S\n",
                       NULL);
    ck_assert_int_eq(rc, 1); /* entries failed, so a script can tell */
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    size_t at = expect_after(out, 0, "# S shape=(2,) dtype=float32\n[3. 7.]\n");
    at = expect_after(out, at, "# T shape=(2,) dtype=float32\n[4. 6.]\n");
    at = expect_after(out, at, "P shape=(2, 2) dtype=float32\n");
    at = expect_after(out, at, "equations:\n");
    at = expect_after(out, at, "T[k] = A[i,k]");
    at = expect_after(out, at, "session cleared\n");
    at = expect_after(out, at, "# T shape=(2,) dtype=float32\n[4. 6.]\n");
    at = expect_after(out, at, "   1  A[i,k] = const");
    at = expect_after(out, at, "   4  P[i,k.] = softmax(\n");
    ck_assert_ptr_null(strstr(out + at, "# S")); /* nothing after :quit */
    ck_assert_ptr_null(strstr(out, "fuse>"));    /* no prompt when piped */
    ck_assert_ptr_null(strstr(out, "Bad"));      /* the failed entry was dropped */
    /* the error names the script's line and puts a caret under it */
    at = expect_after(err, 0, "<stdin>:4:18: error: ");
    at = expect_after(err, at, "Bad[i] = A[i,k] +\n");
    at = expect_after(err, at, "^");
    at = expect_after(err, at, "unknown tensor 'S'"); /* after :reset */
    at = expect_after(err, at, ":set mode expects single, fixpoint or demand");
    char *saved = read_text(path_in("saved.fuse"));
    ck_assert_str_eq(saved, "A[i,k] = const([[1.0, 2.0], [3.0, 4.0]])\n"
                            "S[i] = A[i,k]\n"
                            "T[k] = A[i,k]\n"
                            "P[i,k.] = softmax(\n"
                            "    A[i,k])\n");
    free(saved), free(out), free(err);
}
END_TEST

START_TEST(piped_program_and_sinks)
{
    write_text(path_in("prog.fuse"), "X[i] = \"x.json\"\nY[i] = 2 X[i]\n\"y.json\" = Y[i]\n");
    write_text(path_in("x.json"), "[1.5, -2, 4]\n");
    int rc = run_piped("Y\n:set sinks on\n:run\n:show Y\n:emit Y llvm\n:time\nX\n", "prog.fuse");
    ck_assert_int_eq(rc, 0);
    char *out = read_text(path_in("out.txt"));
    size_t at = expect_after(out, 0, "# Y shape=(3,) dtype=float32\n[ 3. -4.  8.]\n");
    at = expect_after(out, at, "   2  Y[i] = 2 X[i]\n");
    at = expect_after(out, at, "define void @"); /* :emit */
    at = expect_after(out, at, "timing on\n");
    at = expect_after(out, at, "time: compile ");
    at = expect_after(out, at, "time: run ");
    expect_after(out, at, "# X shape=(3,) dtype=float32\n[ 1.5 -2.   4. ]\n");
    free(out);
    char *y = read_text(path_in("y.json")); /* written by :run with sinks on */
    expect_has(y, "-4");
    free(y);
}
END_TEST

/* ---- through a pseudo-terminal ---- */

typedef struct Pty {
    int fd;
    pid_t pid;
    char buf[1 << 16];
    size_t len, seen; /* bytes read; how far expectations have consumed */
} Pty;

static void pty_spawn(Pty *p, bool with_repl_word)
{
    memset(p, 0, sizeof *p);
    struct winsize ws = {.ws_row = 24, .ws_col = 100};
    p->pid = forkpty(&p->fd, NULL, NULL, &ws);
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        if (chdir(scratch) != 0)
            _exit(126);
        setenv("HOME", scratch, 1);
        setenv("TERM", "xterm", 1);
        setenv("NO_COLOR", "1", 1); /* diagnostics are matched as plain text */
        if (with_repl_word)
            execl(FUSE_JIT_BIN, "fuse-jit", "repl", (char *)NULL);
        else
            execl(FUSE_JIT_BIN, "fuse-jit", (char *)NULL);
        _exit(127);
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads until `want` appears after what was already matched. */
static void pty_expect(Pty *p, const char *want)
{
    long long end = now_ms() + TIMEOUT_MS;
    for (;;) {
        char *hit = memmem(p->buf + p->seen, p->len - p->seen, want, strlen(want));
        if (hit) {
            p->seen = (size_t)(hit - p->buf) + strlen(want);
            return;
        }
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
        long long left = end - now_ms();
        ck_assert_msg(left > 0 && p->len + 1 < sizeof p->buf,
                      "timed out waiting for '%s' in:\n%.*s", want, (int)p->len, p->buf);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(p->fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        ck_assert_msg(n > 0, "the REPL ended while waiting for '%s':\n%.*s", want, (int)p->len,
                      p->buf);
        p->len += (size_t)n;
    }
}

/* libedit prints its prompt before it puts the terminal in raw mode; input typed
 * in between would meet the cooked line discipline (no completion, ^D as EOF). The
 * terminal's modes are shared by both ends of the pty, so wait for raw mode. */
static void pty_wait_raw(Pty *p)
{
    long long end = now_ms() + TIMEOUT_MS;
    struct termios t;
    while (tcgetattr(p->fd, &t) == 0 && (t.c_lflag & ICANON) && now_ms() < end)
        usleep(2000);
}

static void pty_send(Pty *p, const char *s)
{
    pty_wait_raw(p);
    ck_assert_int_eq(write(p->fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Waits for the REPL to exit (killing it after TIMEOUT_MS); its exit status. */
static int pty_wait(Pty *p)
{
    char sink[4096];
    long long end = now_ms() + TIMEOUT_MS;
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(p->pid, &status, WNOHANG)) == 0 && now_ms() < end) {
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) > 0 && read(p->fd, sink, sizeof sink) <= 0)
            usleep(10000);
    }
    if (done == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        ck_abort_msg("the REPL did not exit:\n%.*s", (int)p->len, p->buf);
    }
    close(p->fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(terminal_session)
{
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, true);
    pty_expect(p, "fuse> ");
    pty_send(p, "Alphabet[i] = const([1.0, 2.0, 3.0])\n");
    pty_expect(p, "fuse> ");
    pty_send(p, "Alp\t\n"); /* completes to Alphabet, then prints it */
    pty_expect(p, "# Alphabet shape=(3,) dtype=float32");
    pty_expect(p, "[1. 2. 3.]");
    pty_expect(p, "fuse> ");
    pty_send(p, "Beta[i] = 2 (\n"); /* brackets open: continuation prompt */
    pty_expect(p, "...   ");
    pty_send(p, "Alphabet[i])\n");
    pty_expect(p, "fuse> ");
    pty_send(p, "Beta\n");
    pty_expect(p, "[2. 4. 6.]");
    pty_expect(p, "fuse> ");
    /* Ctrl-C drops the line. The ^C goes alone once the text is echoed: a ^C in the
     * same write can make the line discipline flush input libedit has not read. */
    pty_send(p, "Gamma[i] = Nope[i");
    pty_expect(p, "Nope[i");
    pty_send(p, "\x03");
    pty_expect(p, "fuse> ");
    pty_send(p, ":li\t\n"); /* commands complete too */
    pty_expect(p, "   2  Beta[i] = 2 (");
    pty_expect(p, "fuse> ");
    /* Ctrl-D quits (pty_send waits for raw mode, where ^D is a character). */
    pty_send(p, "\x04");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
    char *hist = read_text(path_in(".fuse_jit_history"));
    expect_has(hist, "Alphabet");
    expect_has(hist, "Beta");
    ck_assert_ptr_null(strstr(hist, "Gamma")); /* the cancelled line is not kept */
    free(hist);
}
END_TEST

/* `fuse-jit` alone on a terminal is the REPL; :quit leaves with status 0. */
START_TEST(terminal_without_arguments)
{
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, false);
    pty_expect(p, "fuse> ");
    pty_send(p, "Nope\n");
    pty_expect(p, "unknown tensor 'Nope'");
    pty_expect(p, "fuse> ");
    pty_send(p, ":quit\n");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
}
END_TEST

/* A thread of the REPL other than the one reading lines (OpenBLAS starts its
 * threads when it is loaded, before the editor blocks SIGINT) that takes a
 * Ctrl-C passes it on: the line is dropped at once. The signal goes to that
 * thread alone (tgkill); with no such thread (OpenBLAS is loaded only by the
 * first tucker_dense) it goes to the reader itself. */
START_TEST(ctrl_c_on_another_thread)
{
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, true);
    pty_expect(p, "fuse> ");
    pty_send(p, "Gamma[i] = Nope[i");
    pty_expect(p, "Nope[i");
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)p->pid);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    pid_t other = 0;
    for (struct dirent *de; (de = readdir(d)) && !other;)
        if (de->d_name[0] != '.' && atoi(de->d_name) != p->pid)
            other = atoi(de->d_name);
    closedir(d);
    ck_assert_int_eq(syscall(SYS_tgkill, p->pid, other ? other : p->pid, SIGINT), 0);
    pty_expect(p, "fuse> ");
    pty_send(p, "Nope\n"); /* the dropped line left nothing pending */
    pty_expect(p, "unknown tensor 'Nope'");
    pty_expect(p, "fuse> ");
    pty_send(p, ":quit\n");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
}
END_TEST

/* Ctrl-C while a value is computed (a fixpoint that never converges)
 * interrupts the run; the prompt comes back with the session intact. The ^C is
 * written as is: during the evaluation the terminal is in cooked mode, where the
 * line discipline turns it into SIGINT. */
START_TEST(ctrl_c_interrupts_an_evaluation)
{
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, true);
    static const char *const setup[] = {"One[i] = const([1.0, 1.0])\n",
                                        "X[i] = One[i] - X[i]\n", ":set mode fixpoint\n",
                                        ":set max_iters 2000000000\n"};
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        pty_expect(p, "fuse> ");
        pty_send(p, setup[i]);
    }
    pty_expect(p, "fuse> ");
    pty_send(p, "X\n"); /* flips between 0 and 1 for two billion sweeps */
    usleep(500 * 1000);
    ck_assert_int_eq(write(p->fd, "\x03", 1), 1);
    pty_expect(p, "error: interrupted");
    pty_expect(p, "fuse> ");
    pty_send(p, ":set max_iters 3\n"); /* 1, 0, 1: not converged, printed anyway */
    pty_expect(p, "fuse> ");
    pty_send(p, "X\n");
    pty_expect(p, "[1. 1.]");
    pty_expect(p, "fuse> ");
    pty_send(p, ":quit\n");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
}
END_TEST

/* Ctrl-C inside one long kernel: P is a single loop nest of 512^4 = 6.9e10
 * cells (a max-projection of three factors is not split into pairs), a minute
 * or so; the kernel checks the interrupt flag between row blocks, so the prompt
 * is back in well under the 5 s bound (only a kernel ignoring the flag could
 * miss it), and the session still evaluates (P dropped: it would run again). */
START_TEST(ctrl_c_stops_a_long_kernel)
{
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, true);
    static const char *const setup[] = {"M[i,j] = causal_mask(512)\n",
                                        "P[i,l] max= M[i,j] M[j,k] M[k,l]\n", "D = M[i,j]\n"};
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
        pty_expect(p, "fuse> ");
        pty_send(p, setup[i]);
    }
    pty_expect(p, "fuse> ");
    pty_send(p, "P\n");
    usleep(2000 * 1000); /* compiled by now, busy in P's kernel */
    long long sent = now_ms();
    ck_assert_int_eq(write(p->fd, "\x03", 1), 1);
    pty_expect(p, "interrupted"); /* "error: interrupted", maybe in colour */
    long long late = now_ms() - sent;
    ck_assert_msg(late < 5000, "the evaluation stopped %lld ms after Ctrl-C", late);
    pty_expect(p, "fuse> ");
    pty_send(p, ":drop P\n"); /* an evaluation runs every statement */
    pty_expect(p, "fuse> ");
    pty_send(p, "D\n"); /* 512 x 513 / 2 ones below and on the diagonal */
    pty_expect(p, "131328.0");
    pty_expect(p, "fuse> ");
    pty_send(p, ":quit\n");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
}
END_TEST

/* a second equation reuses the kernels compiled for the first. */
START_TEST(piped_incremental_compile)
{
    setenv("FUSE_JIT_CACHE_DIR", path_in("cache"), 1); /* a fresh disk cache: nothing cached yet */
    int rc = run_piped(":time\n"
                       "A[i,k] = const([[1.0, 2.0], [3.0, 4.0]])\n"
                       "S[i] = A[i,k]\n"
                       "S\n"
                       "T[k] = 2.0 A[i,k]\n"
                       "T\n"
                       "S\n",
                       NULL);
    unsetenv("FUSE_JIT_CACHE_DIR");
    ck_assert_int_eq(rc, 0);
    char *out = read_text(path_in("out.txt"));
    /* each statement is compiled when entered (A, then S) */
    size_t at = expect_after(out, 0, "(1 kernel compiled, 0 from the cache)\n");
    at = expect_after(out, at, "(1 kernel compiled, 1 from the cache)\n");
    at = expect_after(out, at, "(0 kernels compiled, 2 from the cache)\n");
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[3. 7.]\n");
    /* T is new; A's and S's kernels come from the cache */
    at = expect_after(out, at, "(1 kernel compiled, 2 from the cache)\n");
    at = expect_after(out, at, "(0 kernels compiled, 3 from the cache)\n");
    at = expect_after(out, at, "# T shape=(2,) dtype=float32\n[ 8. 12.]\n");
    at = expect_after(out, at, "(0 kernels compiled, 3 from the cache)\n");
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[3. 7.]\n");
    free(out);
}
END_TEST

/* `=` replaces a definition, `+=` adds to it, :undo takes a change back */
START_TEST(piped_redefine_and_undo)
{
    int rc = run_piped("A[i] = const([1.0, 2.0])\n"
                       "S[i] = A[i]\n"
                       "S[i] = 3 A[i]\n"
                       "S\n"
                       "S[i] += A[i]\n"
                       "S\n"
                       ":undo\n"
                       "S\n"
                       ":undo\n"
                       "S\n"
                       ":list\n",
                       NULL);
    ck_assert_int_eq(rc, 0);
    char *out = read_text(path_in("out.txt"));
    size_t at = expect_after(out, 0, "S redefined\n");
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[3. 6.]\n"); /* 3 A only */
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[4. 8.]\n"); /* 3 A + A */
    at = expect_after(out, at, "undone\n");
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[3. 6.]\n");
    at = expect_after(out, at, "undone\n");
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[1. 2.]\n");
    at = expect_after(out, at, "   1  A[i] = const([1.0, 2.0])\n   2  S[i] = A[i]\n");
    ck_assert_ptr_null(strstr(out + at, "   3  "));
    free(out);
}
END_TEST

/* a file loaded twice counts once; :drop refuses a tensor in use, then drops */
START_TEST(piped_reload_and_drop)
{
    write_text(path_in("f.fuse"), "B[i] = const([10.0, 20.0])\nC[i] = B[i]\nexport C\n");
    int rc = run_piped(":load f.fuse\n"
                       "D[i] = 2 C[i]\n"
                       ":load f.fuse\n"
                       "C\n"
                       "D\n"
                       ":drop C\n"
                       ":drop D\n"
                       ":drop C\n"
                       "C\n"
                       ":list\n"
                       ":undo\n"
                       "C\n"
                       ":drop Nothing\n"
                       ":undo\n:undo\n:undo\n:undo\n:undo\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    size_t at = expect_after(out, 0, "reloaded f.fuse\n");
    at = expect_after(out, at, "# C shape=(2,) dtype=float32\n[10. 20.]\n"); /* not doubled */
    at = expect_after(out, at, "# D shape=(2,) dtype=float32\n[20. 40.]\n");
    at = expect_after(out, at, "dropped D\n");
    at = expect_after(out, at, "dropped C\n");
    at = expect_after(out, at, "   1  B[i] = const([10.0, 20.0])\n");
    ck_assert_ptr_null(strstr(out + at, "   2  "));
    at = expect_after(out, at, "undone\n");
    at = expect_after(out, at, "# C shape=(2,) dtype=float32\n[10. 20.]\n");
    at = expect_after(err, 0, "error: cannot drop 'C': used by 'D'");
    at = expect_after(err, at, "error: unknown tensor 'C'\n");
    at = expect_after(err, at, "error: no statement defines 'Nothing'\n");
    at = expect_after(err, at, "error: nothing to undo\n"); /* 5 changes, 6 undos */
    free(out), free(err);
}
END_TEST

/* a statement that does not check or load is not kept */
START_TEST(piped_bad_statement_not_kept)
{
    int rc = run_piped("A[i] = const([1.0, 2.0])\n"
                       "X[i] = \"nofile.npy\"\n"
                       "M[i,j] = const([[1.0, 2.0, 3.0]])\n"
                       "D[i] = A[i] M[i,j]\n"
                       "A\n"
                       "X\n"
                       "S[i] = 5 A[i]\n"
                       "S\n"
                       ":undo\n"
                       ":list\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    size_t at = expect_after(out, 0, "# A shape=(2,) dtype=float32\n[1. 2.]\n");
    at = expect_after(out, at, "# S shape=(2,) dtype=float32\n[ 5. 10.]\n");
    at = expect_after(out, at, "undone\n");
    at = expect_after(out, at, "   1  A[i] = const([1.0, 2.0])\n"
                               "   2  M[i,j] = const([[1.0, 2.0, 3.0]])\n");
    ck_assert_ptr_null(strstr(out + at, "   3  "));
    at = expect_after(err, 0, "nofile.npy");
    at = expect_after(err, at, "size conflict for axis i");
    at = expect_after(err, at, "error: unknown tensor 'X'\n");
    ck_assert_ptr_null(strstr(err + at, "nofile")); /* later evaluations unaffected */
    free(out), free(err);
}
END_TEST

/* expressions evaluate over their free axes, in order of appearance, and are not kept */
START_TEST(piped_expressions)
{
    int rc = run_piped("A[i] = const([1.0, 2.0])\n"
                       "M[i,k] = const([[1.0, 2.0], [3.0, 4.0]])\n"
                       "B[k,j] = const([[1.0, 0.0], [0.0, 2.0]])\n"
                       "2 A[i]\n"
                       "A[1]\n"
                       "M[i,k] B[k,j]\n"
                       "B[j,k]\n"
                       "A[i] A[i]\n"
                       "A[i] + M[k,i]\n"
                       "exp(\n"
                       "    0 A[i])\n"
                       "Q[i] + 1\n"
                       ":list\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    size_t at = expect_after(out, 0, "# 2 A[i] shape=(2,) dtype=float32\n[2. 4.]\n");
    at = expect_after(out, at, "# A[1] shape=() dtype=float32\n2.0\n");
    /* M B: [[1*1, 2*2], [3*1, 4*2]] */
    at = expect_after(out, at, "# M[i,k] B[k,j] shape=(2, 2) dtype=float32\n[[1. 4.]\n [3. 8.]]\n");
    at = expect_after(out, at, "# B[j,k] shape=(2, 2) dtype=float32\n[[1. 0.]\n [0. 2.]]\n");
    at = expect_after(out, at, "# A[i] A[i] shape=() dtype=float32\n5.0\n"); /* 1 + 4 */
    /* [i,k] = A[i] + M[k,i]: [[1+1, 1+3], [2+2, 2+4]] */
    at = expect_after(out, at, "# A[i] + M[k,i] shape=(2, 2) dtype=float32\n[[2. 4.]\n [4. 6.]]\n");
    at = expect_after(out, at, "shape=(2,) dtype=float32\n[1. 1.]\n"); /* exp(0) */
    at = expect_after(out, at, "   3  B[k,j] = const");
    ck_assert_ptr_null(strstr(out + at, "   4  ")); /* nothing kept */
    expect_has(err, "unknown tensor 'Q'");
    free(out), free(err);
}
END_TEST

/* unknown commands, settings, tensors and functions get the nearest spelling */
START_TEST(piped_did_you_mean)
{
    int rc = run_piped("Weights[i] = const([1.0, 2.0])\n"
                       ":lod f.fuse\n"
                       ":sett mode single\n"
                       ":zzzzzz\n"
                       ":set treads 2\n"
                       "Weigths\n"
                       "Y[i] = sigmoid(Weights[i])\n"
                       "Y[i] = Weihgts[i]\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *err = read_text(path_in("err.txt"));
    size_t at = expect_after(err, 0, "unknown command ':lod' (:help lists them); did you mean "
                                     "':load'?\n");
    at = expect_after(err, at,
                      "unknown command ':sett' (:help lists them); did you mean ':set'?\n");
    at = expect_after(err, at, "unknown command ':zzzzzz' (:help lists them)\n");
    at = expect_after(err, at, "unknown setting 'treads' (keys: ");
    at = expect_after(err, at, "); did you mean 'threads'?\n");
    at = expect_after(err, at, "error: unknown tensor 'Weigths'; did you mean 'Weights'?\n");
    at = expect_after(err, at, "unknown function 'sigmoid'; did you mean 'sig'? (sig(x, T): "
                               "logistic sigmoid; T=0 gives a hard step)");
    at = expect_after(err, at, "unknown tensor 'Weihgts'; did you mean 'Weights'?");
    free(err);
}
END_TEST

/* errors in a :loaded file or a piped script name it and its own line; EOF inside
 * brackets, a NUL byte and a fixpoint that does not converge are reported */
/* :set weights: a manifest's (quantised) tensor is read by the session; a
 * missing manifest, and dropping one the program needs, are refused and change
 * nothing. W = (q - 1) * 0.5 for q = [1, 3, -1] is [0, 1, -1]; Y = 2 W. */
START_TEST(piped_set_weights)
{
    int8_t q[3] = {1, 3, -1};
    fuse_tensor t = {.dtype = FUSE_I8, .rank = 1, .shape = {3}, .data = q};
    ck_assert_int_eq(fuse_tensor_save(NULL, &t, path_in("q.npy")), FUSE_OK);
    write_text(path_in("m.json"), "{\"tensors\": {\"W\": {\"path\": \"q.npy\", \"quant\": "
                                  "{\"scale\": 0.5, \"zero_point\": 1}}}}");
    int rc = run_piped(":set weights nope.json\n"
                       ":set weights m.json\n"
                       "Y[i] = 2.0 W[i]\n"
                       "Y\n"
                       ":set weights none\n"
                       ":set\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    size_t at = expect_after(out, 0, "# Y shape=(3,) dtype=float32\n[ 0.  2. -2.]\n");
    at = expect_after(out, at, "weights = m.json\n");
    at = expect_after(err, 0, "error: :set weights nope.json refused: ");
    at = expect_after(err, at, "nope.json");
    at = expect_after(err, at, "error: :set weights none refused: <repl>:1:12: error: unknown "
                               "tensor 'W'\n");
    ck_assert_ptr_null(strstr(err + at, "error"));
    free(out), free(err);
}
END_TEST

START_TEST(piped_error_positions)
{
    write_text(path_in("bad.fuse"), "A[i] = const([1.0, 2.0])\n"
                                     "\n"
                                     "B[i] = A[i] + Q[i]\n");
    static const char script[] = "A[i] = const([1.0])\n"
                                 ":load bad.fuse\n"
                                 "\n"
                                 "  C[i] = Z[i]\n"
                                 "\0A[i] = Q[i]\n"
                                 "D[i] = (A[i] +\n"
                                 "  Q[i])\n"
                                 "  2 Q[i]\n"
                                 "E[i] = (A[i]\n"
                                 "  + A[i]\n";
    int rc = run_piped_bytes(script, sizeof script - 1, NULL);
    ck_assert_int_eq(rc, 1);
    char *err = read_text(path_in("err.txt"));
    size_t at = expect_after(err, 0, "bad.fuse:3:15: error: unknown tensor 'Q'\n");
    at = expect_after(err, at, "<stdin>:4:10: error: unknown tensor 'Z'\n");
    at = expect_after(err, at, "<stdin>:5:1: error: a NUL byte in the input (the line is "
                               "ignored)\n");
    at = expect_after(err, at, "<stdin>:7:3: error: unknown tensor 'Q'\n");
    at = expect_after(err, at, "<stdin>:8:5: error: unknown tensor 'Q'\n");
    at = expect_after(err, at, "<stdin>:11:1: error: unexpected end of input: unclosed '(' "
                               "opened at 9:8\n");
    ck_assert_ptr_null(strstr(err, "<repl>"));
    free(err);

    /* the same warning as the CLI, and its exit status */
    rc = run_piped(":set mode fixpoint\n"
                   ":set max_iters 2\n"
                   "X[i] = const([1.0, 2.0]) + 0.5 X[i]\n"
                   "X\n",
                   NULL);
    ck_assert_int_eq(rc, 4);
    err = read_text(path_in("err.txt"));
    expect_has(err, "error: the fixpoint of X did not converge in 2 sweeps (max_iters); the "
                    "outputs hold the last sweep\n");
    free(err);
    char *out = read_text(path_in("out.txt"));
    expect_has(out, "[1.5 3. ]");
    free(out);

    /* a program given on the command line is named too */
    write_text(path_in("q.fuse"), "Z[i] = Q[i]\n");
    rc = run_piped("", "q.fuse");
    ck_assert_int_eq(rc, 1);
    err = read_text(path_in("err.txt"));
    expect_has(err, "q.fuse:1:8: error: unknown tensor 'Q'\n");
    free(err);
}
END_TEST

/* :set alone lists the settings; a value this build cannot use is refused at once */
START_TEST(piped_set_lists_and_validates)
{
    int rc = run_piped(":set max_iters 5\n"
                       ":set precision fp64\n"
                       ":set device cuda\n"
                       ":set threads many\n"
                       ":set\n"
                       "A[i] = const([1.0, 2.0])\n"
                       "A\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    size_t at = expect_after(out, 0, "mode = single\nstrategy = synchronous\n"
                                     "projection = exact\nprecision = fp64\ndevice = auto\n");
    at = expect_after(out, at, "max_iters = 5\n");
    at = expect_after(out, at, "sinks = off\ncache = on\n");
    at = expect_after(out, at, "parser = legacy\nparam = (none)\n");
    at = expect_after(out, at, "# A shape=(2,) dtype=float64\n[1. 2.]\n");
    at = expect_after(err, 0, "error: :set device cuda refused: device cuda is not available: "
                              "this build has no GPU path (use auto or cpu)\n");
    at = expect_after(err, at, "error: :set threads expects a count >= 0, got 'many'\n");
    ck_assert_ptr_null(strstr(err + at, "error"));
    free(out), free(err);
}
END_TEST

/* ---- help and completion, called directly ---- */

/* The completion of line[0..cursor): the candidates and the text Tab inserts. */
typedef struct Tab {
    ReplCompletion c;
    char *insert;
    bool show;
} Tab;

static void tab_at(Tab *t, const char *line, size_t cursor, const Words *tensors)
{
    ck_assert(repl_complete(line, cursor, tensors, &t->c));
    t->insert = repl_completion_text(&t->c, &t->show);
    ck_assert_ptr_nonnull(t->insert);
}

static void tab(Tab *t, const char *line, const Words *tensors)
{
    tab_at(t, line, strlen(line), tensors);
}

static void tab_free(Tab *t)
{
    repl_completion_free(&t->c);
    free(t->insert);
}

/* Tab on `line` inserts `want` (and lists nothing). */
static void expect_tab(const char *line, const Words *tensors, const char *want)
{
    Tab t;
    tab(&t, line, tensors);
    ck_assert_msg(strcmp(t.insert, want) == 0, "Tab after '%s' inserted '%s', not '%s'", line,
                  t.insert, want);
    ck_assert(!t.show);
    tab_free(&t);
}

static bool has_candidate(const Tab *t, const char *want)
{
    for (size_t i = 0; i < t->c.cands.n; i++)
        if (strcmp(t->c.cands.v[i], want) == 0)
            return true;
    return false;
}

START_TEST(complete_commands_and_settings)
{
    expect_tab(":se", NULL, "t ");
    expect_tab("  :qu", NULL, "it ");
    Tab t;
    tab(&t, ":s", NULL); /* :save :set :shape :show: nothing common to add */
    ck_assert_str_eq(t.insert, "");
    ck_assert(t.show);
    ck_assert_uint_eq(t.c.cands.n, 4);
    ck_assert_str_eq(t.c.cands.v[0], ":save"); /* sorted */
    tab_free(&t);
    expect_tab(":set prec", NULL, "ision ");
    expect_tab(":set max_it", NULL, "ers ");
    expect_tab(":set precision fp6", NULL, "4");
    expect_tab(":set precision f", NULL, "p"); /* fp32 fp64 fp16 */
    expect_tab(":set strategy semi", NULL, "_naive");
    tab(&t, ":set mode ", NULL);
    ck_assert_uint_eq(t.c.cands.n, 3);
    ck_assert_str_eq(t.c.cands.v[0], "demand");
    ck_assert_str_eq(t.c.cands.v[1], "fixpoint");
    ck_assert_str_eq(t.c.cands.v[2], "single");
    ck_assert_uint_eq(t.c.start, strlen(":set mode "));
    tab_free(&t);
    tab(&t, ":set threads ", NULL); /* a number: nothing to offer */
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    tab(&t, ":set bogus x", NULL);
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    tab(&t, ":set mode single x", NULL); /* past the value */
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    expect_tab(":help softm", NULL, "ax");
    expect_tab(":help :lo", NULL, "ad");
    /* every key :set knows completes to itself */
    for (size_t i = 0; i < REPL_N_SETTINGS; i++) {
        char line[64];
        snprintf(line, sizeof line, ":set %s", REPL_SETTINGS[i].key);
        tab(&t, line, NULL);
        ck_assert(has_candidate(&t, REPL_SETTINGS[i].key));
        tab_free(&t);
    }
}
END_TEST

START_TEST(complete_names)
{
    Words tensors = {0};
    ck_assert(words_add(&tensors, "Alphabet", 8));
    ck_assert(words_add(&tensors, "Alpha2", 6));
    ck_assert(words_add(&tensors, "Alpha2", 6)); /* no duplicates */
    ck_assert_uint_eq(tensors.n, 2);
    expect_tab("Y[i] = Alp", &tensors, "ha");
    expect_tab("Y[i] = 2 Alphab", &tensors, "et");
    expect_tab("Y[i] = soft", &tensors, "max");
    expect_tab("Y[i] = tucker", &tensors, "_dense");
    expect_tab("Y[i] = Alp # Alp", &tensors, ""); /* a comment */
    expect_tab(":show Alphab", &tensors, "et");
    Tab t;
    tab(&t, "Y[i] = layer", &tensors);
    ck_assert(t.show);
    ck_assert(has_candidate(&t, "layer_norm") && has_candidate(&t, "layernorm"));
    tab_free(&t);
    /* internal builtins (what v2's operators lower to) are not offered */
    tab(&t, "Y[i] = les", &tensors);
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    /* the cursor in the middle: the word before it */
    tab_at(&t, "Y[i] = Alp + 1", strlen("Y[i] = Alp"), &tensors);
    ck_assert_str_eq(t.insert, "ha");
    tab_free(&t);
    words_free(&tensors);
}
END_TEST

START_TEST(complete_files)
{
    char line[512];
    write_text(path_in("model.fuse"), "X = 1\n");
    write_text(path_in(".hidden"), "");
    ck_assert_int_eq(mkdir(path_in("data"), 0755), 0);
    snprintf(line, sizeof line, ":load %s/mo", scratch);
    expect_tab(line, NULL, "del.fuse");
    snprintf(line, sizeof line, ":save %s/da", scratch);
    expect_tab(line, NULL, "ta/"); /* a directory: no space after it */
    snprintf(line, sizeof line, ":set weights %s/mo", scratch); /* a manifest path */
    expect_tab(line, NULL, "del.fuse");
    snprintf(line, sizeof line, "X[i] = \"%s/mo", scratch); /* inside a quote */
    expect_tab(line, NULL, "del.fuse\"");
    snprintf(line, sizeof line, "X[i] = \"%s/da", scratch);
    expect_tab(line, NULL, "ta/");
    Tab t;
    snprintf(line, sizeof line, ":load %s/", scratch);
    tab(&t, line, NULL);
    char want[300];
    snprintf(want, sizeof want, "%s/data/", scratch);
    ck_assert(has_candidate(&t, want));
    snprintf(want, sizeof want, "%s/model.fuse", scratch);
    ck_assert(has_candidate(&t, want));
    snprintf(want, sizeof want, "%s/.hidden", scratch);
    ck_assert(!has_candidate(&t, want)); /* hidden unless asked for */
    tab_free(&t);
    snprintf(line, sizeof line, ":load %s/.h", scratch);
    expect_tab(line, NULL, "idden");
    /* a closed string is not a file name */
    tab(&t, "X[i] = \"x.json\" Alp", NULL);
    ck_assert(!t.show || !has_candidate(&t, "model.fuse"));
    tab_free(&t);
}
END_TEST

/* Odd input never crashes and offers what makes sense. */
START_TEST(complete_odd_input)
{
    Tab t;
    tab(&t, "", NULL); /* an empty line: every builtin */
    ck_assert(has_candidate(&t, "softmax"));
    tab_free(&t);
    tab_at(&t, ":se", 1000, NULL); /* a cursor past the end */
    ck_assert_str_eq(t.insert, "t ");
    tab_free(&t);
    tab(&t, "\"", NULL); /* an unmatched quote: the current directory */
    tab_free(&t);
    tab(&t, ":load /no/such/directory/x", NULL);
    ck_assert_uint_eq(t.c.cands.n, 0);
    ck_assert_str_eq(t.insert, "");
    tab_free(&t);
    tab(&t, "X[i] = \"/no/such/dir/", NULL);
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    size_t n = 200000;
    char *longline = malloc(n + 16);
    memset(longline, 'a', n);
    longline[n] = '\0';
    tab(&t, longline, NULL);
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    memcpy(longline, ":load ", 6); /* a very long path */
    memset(longline + 6, '/', n - 6);
    tab(&t, longline, NULL);
    tab_free(&t);
    memcpy(longline, "X = \"\\", 6); /* a string ending in a backslash */
    longline[6] = '\0';
    tab(&t, longline, NULL);
    tab_free(&t);
    free(longline);
    tab(&t, ":", NULL); /* every command */
    ck_assert_uint_eq(t.c.cands.n, CMD_COUNT);
    tab_free(&t);
    tab(&t, ":nosuch x", NULL);
    ck_assert_uint_eq(t.c.cands.n, 0);
    tab_free(&t);
    ReplCompletion c;
    ck_assert(repl_complete(NULL, 0, NULL, &c));
    ck_assert_uint_eq(c.cands.n, 0);
    repl_completion_free(&c);
}
END_TEST

/* :help NAME for every builtin prints its signature, axes and example; names
 * are case-insensitive; an unknown one gets the nearest name. */
START_TEST(help_topics)
{
    for (size_t i = 0; i < ir_builtin_count(); i++) {
        const IrBuiltinInfo *b = ir_builtin_info(i);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        const char *near = NULL;
        bool found = repl_help_topic(f, b->name, &near);
        fclose(f);
        ck_assert_msg(found == !b->is_internal, "help for %s", b->name);
        if (found) {
            expect_has(text, b->signature);
            expect_has(text, b->axes);
            expect_has(text, b->summary);
            size_t first = strcspn(b->example, "\n");
            char line[256];
            snprintf(line, sizeof line, "%.*s", (int)first, b->example);
            expect_has(text, line);
            ck_assert(b->summary[0] && !strchr(b->summary, '\n')); /* one line */
        }
        free(text);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *near = NULL;
    ck_assert(repl_help_topic(f, "SoftMax", &near));
    ck_assert(repl_help_topic(f, ":load", &near));
    ck_assert(repl_help_topic(f, "undo", &near));
    ck_assert(!repl_help_topic(f, "sofmax", &near));
    ck_assert_str_eq(near, "softmax");
    ck_assert(!repl_help_topic(f, ":lst", &near));
    ck_assert_str_eq(near, "list");
    ck_assert(!repl_help_topic(f, "qqqqqqqq", &near));
    ck_assert_ptr_null(near);
    ck_assert(!repl_help_topic(f, "less", &near)); /* internal */
    fclose(f);
    expect_has(text, "softmax(x, axis=)");
    expect_has(text, "usage: :load FILE");
    expect_has(text, "usage: :undo");
    free(text);
}
END_TEST

/* Every builtin of the compiler's table is in docs/builtins.md with the same
 * signature, and its example compiles (so help, docs and compiler agree). */
START_TEST(builtin_table_matches_docs_and_compiler)
{
    char *doc = read_text(FUSE_TEST_DIR "/../docs/builtins.md");
    fuse_ctx *ctx = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    size_t visible = 0;
    for (size_t i = 0; i < ir_builtin_count(); i++) {
        const IrBuiltinInfo *b = ir_builtin_info(i);
        if (b->is_internal)
            continue;
        visible++;
        char want[160];
        snprintf(want, sizeof want, "%s`", b->signature);
        ck_assert_msg(strstr(doc, want) != NULL, "docs/builtins.md lacks `%s`", b->signature);
        snprintf(want, sizeof want, "`%s`", b->name);
        ck_assert_msg(strstr(doc, want) != NULL, "docs/builtins.md's table lacks %s", want);
        ck_assert(!b->alias_of || ir_builtin_lookup(b->alias_of));
        /* the example checks, with the legacy parser or else v2 (pow) */
        fuse_program *prog = NULL;
        fuse_status st = fuse_program_from_text(ctx, b->example, "<example>", &prog);
        if (st != FUSE_OK) {
            fuse_program_options o;
            fuse_program_options_init(&o);
            o.syntax = FUSE_SYNTAX_V2;
            st = fuse_program_from_text_opts(ctx, b->example, "<example>", &o, &prog);
        }
        ck_assert_msg(st == FUSE_OK, "the example of %s does not check: %s", b->name,
                      fuse_ctx_error(ctx));
        fuse_program_free(prog);
        ck_assert_ptr_nonnull(strstr(b->example, b->name));
    }
    ck_assert_uint_ge(visible, 30);
    ck_assert_ptr_nonnull(ir_builtin_lookup("LNORM"));
    ck_assert_ptr_null(ir_builtin_lookup("sigmoid"));
    ck_assert_ptr_null(ir_builtin_info(ir_builtin_count()));
    fuse_ctx_free(ctx);
    free(doc);
}
END_TEST

/* :help in a script: the listing names every command and builtin; a topic in
 * any case; an alias says whose; an unknown name fails with the nearest one. */
START_TEST(piped_help)
{
    int rc = run_piped(":help\n:help LAYER_NORM\n:help :lst\n:help drop\n:help nothing_near\n",
                       NULL);
    ck_assert_int_eq(rc, 1);
    char *out = read_text(path_in("out.txt")), *err = read_text(path_in("err.txt"));
    for (int i = 0; i < CMD_COUNT; i++)
        expect_has(out, REPL_COMMANDS[i].name);
    size_t at = expect_after(out, 0, "Builtins (:help NAME for one):\n");
    for (size_t i = 0; i < ir_builtin_count(); i++) {
        const IrBuiltinInfo *b = ir_builtin_info(i);
        char word[64];
        snprintf(word, sizeof word, " %s", b->name);
        ck_assert_msg((strstr(out + at, word) != NULL) == !b->is_internal, "listing of %s",
                      b->name);
    }
    at = expect_after(out, at, "layer_norm(x, axis=, eps=1e-5)   (another name for lnorm)\n");
    at = expect_after(out, at, "    L[i,j] = layer_norm(X[i,j])\n");
    expect_after(out, at, "usage: :drop NAME\n");
    at = expect_after(err, 0, "did you mean ':list'?");
    expect_after(err, at, "no builtin or command 'nothing_near' (:help lists them)\n");
    free(out), free(err);
}
END_TEST

/* Through the terminal: :help, Tab after :se, a :set key and value and a file
 * name after :load. */
START_TEST(terminal_help_and_completion)
{
    write_text(path_in("prog_for_tab.fuse"), "Zed[i] = const([4.0, 5.0])\n");
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, true);
    pty_expect(p, "fuse> ");
    pty_send(p, ":help softmax\n");
    pty_expect(p, ir_builtin_lookup("softmax")->signature);
    pty_expect(p, "result axes: the axes of x");
    pty_expect(p, "fuse> ");
    pty_send(p, ":help :load\n");
    pty_expect(p, "usage: :load FILE");
    pty_expect(p, "fuse> ");
    pty_send(p, ":help sofmax\n");
    pty_expect(p, "did you mean 'softmax'?");
    pty_expect(p, "fuse> ");
    /* :se -> ":set ", max_it -> "max_iters " (libedit may redraw in between) */
    pty_send(p, ":se\t");
    pty_expect(p, "t ");
    pty_send(p, "max_it\t");
    pty_expect(p, "ers ");
    pty_send(p, "7\n");
    pty_expect(p, "max_iters = 7");
    pty_expect(p, "fuse> ");
    pty_send(p, ":set mode fix\t\n");
    pty_expect(p, "mode = fixpoint");
    pty_expect(p, "fuse> ");
    pty_send(p, ":load prog_f\t\n");
    pty_expect(p, "loaded prog_for_tab.fuse");
    pty_expect(p, "fuse> ");
    pty_send(p, "Zed\n");
    pty_expect(p, "[4. 5.]");
    pty_expect(p, "fuse> ");
    pty_send(p, ":quit\n");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
}
END_TEST

/* Up after a statement typed on two lines recalls both lines as one entry:
 * Enter evaluates it again (a redefinition). */
START_TEST(terminal_history_multiline)
{
    Pty *p = malloc(sizeof *p);
    pty_spawn(p, true);
    pty_expect(p, "fuse> ");
    pty_send(p, "Alpha[i] = const([1.0, 2.0])\n");
    pty_expect(p, "fuse> ");
    pty_send(p, "Beta[i] = 3 (\n");
    pty_expect(p, "...   ");
    pty_send(p, "Alpha[i])\n");
    pty_expect(p, "fuse> ");
    pty_send(p, "\x1b[A");
    pty_expect(p, "Alpha[i])"); /* the second line is shown again */
    pty_send(p, "\n");
    pty_expect(p, "Beta redefined");
    pty_expect(p, "fuse> ");
    pty_send(p, "Beta\n");
    pty_expect(p, "[3. 6.]");
    pty_expect(p, "fuse> ");
    pty_send(p, ":quit\n");
    ck_assert_int_eq(pty_wait(p), 0);
    free(p);
    /* one entry in the file (libedit encodes a newline as \012, a space as
     * \040): no line of its own for the second line */
    char *hist = read_text(path_in(".fuse_jit_history"));
    expect_has(hist, "(\\012Alpha[i])");
    ck_assert_msg(strstr(hist, "\nAlpha[i])") == NULL, "split entry in:\n%s", hist);
    free(hist);
}
END_TEST

/* libedit is loaded when a terminal session starts: without it the REPL says so
 * and reads plain lines, still evaluating them. */
START_TEST(terminal_without_libedit)
{
    Pty p;
    setenv("FUSE_JIT_LIBEDIT", "/nonexistent/libedit.so", 1);
    pty_spawn(&p, true);
    unsetenv("FUSE_JIT_LIBEDIT");
    pty_expect(&p, "no line editing (cannot load libedit: /nonexistent/libedit.so: ");
    /* the terminal stays in cooked mode: write without waiting for raw mode */
    static const char input[] = "A[i] = const([1.0, 2.5])\nA\n:quit\n";
    ck_assert_int_eq(write(p.fd, input, sizeof input - 1), (ssize_t)(sizeof input - 1));
    pty_expect(&p, "# A shape=(2,) dtype=float32");
    pty_expect(&p, "[1.  2.5]");
    ck_assert_int_eq(pty_wait(&p), 0);
}
END_TEST

static Suite *repl_suite(void)
{
    Suite *s = suite_create("repl");
    TCase *tc = tcase_create("repl");
    tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, piped_session);
    tcase_add_test(tc, piped_incremental_compile);
    tcase_add_test(tc, piped_program_and_sinks);
    tcase_add_test(tc, piped_redefine_and_undo);
    tcase_add_test(tc, piped_reload_and_drop);
    tcase_add_test(tc, piped_bad_statement_not_kept);
    tcase_add_test(tc, piped_expressions);
    tcase_add_test(tc, piped_did_you_mean);
    tcase_add_test(tc, piped_set_weights);
    tcase_add_test(tc, piped_error_positions);
    tcase_add_test(tc, piped_set_lists_and_validates);
    tcase_add_test(tc, terminal_session);
    tcase_add_test(tc, terminal_without_arguments);
    tcase_add_test(tc, ctrl_c_on_another_thread);
    tcase_add_test(tc, ctrl_c_interrupts_an_evaluation);
    tcase_add_test(tc, ctrl_c_stops_a_long_kernel);
    tcase_add_test(tc, complete_commands_and_settings);
    tcase_add_test(tc, complete_names);
    tcase_add_test(tc, complete_files);
    tcase_add_test(tc, complete_odd_input);
    tcase_add_test(tc, help_topics);
    tcase_add_test(tc, piped_help);
    tcase_add_test(tc, builtin_table_matches_docs_and_compiler);
    tcase_add_test(tc, terminal_help_and_completion);
    tcase_add_test(tc, terminal_history_multiline);
    tcase_add_test(tc, terminal_without_libedit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(repl_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
