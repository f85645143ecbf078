/*
 * repl.c: the fuse-jit REPL. A session is a growing Fuse program. Each entered
 * equation, source, sink or export is appended to the session's text and the
 * whole text is checked and compiled (loading its sources) through the public
 * API: on an error the diagnostic (with its caret) is printed and the entry is
 * dropped, so the session keeps its last good state. At the prompt `S[i] = ...`
 * replaces the statements defining S (`+=` adds one); :load of a file again
 * replaces what it added; :drop and :undo take statements back. A bare tensor
 * name prints the tensor's value (the program is compiled with that name
 * exported, then run; the library's cache keeps unchanged code from being
 * compiled again); another expression is evaluated the same way as a temporary
 * tensor over its free axes. Lines starting with ':' are commands
 * (the table of repl_help.c; :help NAME also describes any builtin).
 *
 * On a terminal, lines come from libedit: emacs key bindings, persistent history
 * (~/.fuse_jit_history; a statement over several lines is one entry), tab
 * completion (repl_complete.c: names, builtins, commands, :set keys and values,
 * file names), a "...   " prompt while brackets are open, Ctrl-C cancels the
 * line (or interrupts the evaluation in progress: fuse_ctx_interrupt) and
 * Ctrl-D on an empty line quits. Otherwise lines are read with getline and
 * nothing but results and diagnostics is printed, so sessions can be scripted.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "fusejit.h"
#include "support.h"
#include "cli_modes.h"
#include "print.h"
#include "edit_dl.h"
#include "repl.h"

/* The mutable global state, for the SIGINT handler (it can reach nothing else):
 * the flag it sets for the line reader, the thread reading lines, and the
 * session's context, whose runs it interrupts. */
static volatile sig_atomic_t repl_interrupted;
static pthread_t repl_thread;
static fuse_ctx *volatile repl_ctx;

/* ---- word lists ---- */

static const char *buf_str(const SupBuf *b) { return b->p ? b->p : ""; }

/* ---- lexical scanning of the session text ---- */

/* Words that are not tensor names: the builtins (the compiler's table) and a
 * few keywords. */
static bool is_builtin(const char *s, size_t n)
{
    static const char *const KEYWORDS[] = {"export", "true", "false", "none"};
    for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
        if (strlen(KEYWORDS[i]) == n && strncasecmp(KEYWORDS[i], s, n) == 0)
            return true;
    return repl_is_builtin(s, n);
}

static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* Skips a string literal starting at s (at the opening quote). */
static const char *skip_string(const char *s)
{
    for (s++; *s && *s != '"' && *s != '\n'; s++)
        if (*s == '\\' && s[1])
            s++;
    return *s == '"' ? s + 1 : s;
}

/* Open brackets minus closed ones in s, outside strings and comments. */
static int bracket_depth(const char *s)
{
    int depth = 0;
    while (*s) {
        if (*s == '"')
            s = skip_string(s);
        else if (*s == '#')
            s += strcspn(s, "\n");
        else
            depth += (*s == '(' || *s == '[' || *s == '{') - (*s == ')' || *s == ']' || *s == '}'),
                s++;
    }
    return depth;
}

/* The innermost bracket of s left open (outside strings and comments): its
 * character, and its line (from 0) and column (from 1); false when none is. */
static bool open_bracket(const char *s, char *ch, int *line, int *col)
{
    enum { MAX_DEPTH = 256 };
    struct { char ch; int line, col; } stack[MAX_DEPTH];
    int depth = 0, ln = 0;
    const char *bol = s;
    while (*s) {
        if (*s == '"') {
            s = skip_string(s);
            continue;
        }
        if (*s == '#') {
            s += strcspn(s, "\n");
            continue;
        }
        if (*s == '\n')
            ln++, bol = s + 1;
        else if (*s == '(' || *s == '[' || *s == '{') {
            if (depth < MAX_DEPTH)
                stack[depth].ch = *s, stack[depth].line = ln, stack[depth].col = (int)(s - bol) + 1;
            depth++;
        } else if ((*s == ')' || *s == ']' || *s == '}') && depth > 0)
            depth--;
        s++;
    }
    if (depth <= 0)
        return false;
    int top = depth <= MAX_DEPTH ? depth - 1 : MAX_DEPTH - 1;
    *ch = stack[top].ch, *line = stack[top].line, *col = stack[top].col;
    return true;
}

/* Classifies one identifier of the text: a tensor when it starts a statement (the
 * LHS), follows `export`, or is indexed (NAME[ or NAME() and is not a builtin. */
static bool names_note(Words *w, const char *id, size_t n, bool at_start, bool after_export,
                       const char *next)
{
    while (*next == ' ' || *next == '\t')
        next++;
    bool indexed = (*next == '[' || *next == '(') && !is_builtin(id, n);
    bool lhs = at_start && !is_builtin(id, n) && !(n == 2 && strncmp(id, "fn", 2) == 0);
    if (lhs || after_export || indexed)
        return words_add(w, id, n);
    return true;
}

/* The tensor names of a program text, in order of first appearance. */
static bool collect_names(const char *s, Words *w)
{
    int depth = 0;
    bool at_start = true, after_export = false;
    while (*s) {
        if (*s == '"') {
            s = skip_string(s);
            at_start = after_export = false;
        } else if (*s == '#') {
            s += strcspn(s, "\n");
        } else if (is_ident_start(*s)) {
            const char *id = s;
            while (is_ident_char(*s))
                s++;
            size_t n = (size_t)(s - id);
            if (!names_note(w, id, n, at_start && depth == 0, after_export, s))
                return false;
            after_export = n == 6 && strncmp(id, "export", 6) == 0;
            at_start = false;
        } else {
            if (*s == '\n' || *s == ';')
                at_start = depth == 0;
            else if (!isspace((unsigned char)*s))
                at_start = after_export = false;
            depth += (*s == '(' || *s == '[' || *s == '{') - (*s == ')' || *s == ']' || *s == '}');
            s++;
        }
    }
    return true;
}

static bool is_identifier(const char *s)
{
    if (!is_ident_start(*s))
        return false;
    while (is_ident_char(*s))
        s++;
    return *s == '\0';
}

/* The first identifier of a statement (its LHS), or NULL; *n its length. */
static const char *statement_lhs(const char *line, size_t *n)
{
    while (isspace((unsigned char)*line))
        line++;
    if (!is_ident_start(*line))
        return NULL;
    const char *id = line;
    while (is_ident_char(*line))
        line++;
    *n = (size_t)(line - id);
    return id;
}

/* Trims spaces at both ends, in place. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* ---- the session ---- */

/* One statement of the session (with its newline), the canonical path of the
 * file it was :loaded from (NULL: entered at the prompt), and where diagnostics
 * place it: the name of its file or script (NULL: the session's own lines) and
 * the line it starts on there. */
typedef struct Stmt {
    char *text;
    char *file;
    char *where;
    int line;
} Stmt;

/* The session's statements in order, and where sources resolve; :undo keeps
 * earlier copies. */
typedef struct Session {
    Stmt *v;
    size_t n, cap;
    char *base_dir; /* sources and sinks resolve here (:load); NULL: current dir */
} Session;

static void session_free(Session *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].text), free(s->v[i].file), free(s->v[i].where);
    free(s->v);
    free(s->base_dir);
    *s = (Session){0};
}

static bool session_push(Session *s, const char *text, size_t n, const char *file,
                         const char *where, int line)
{
    if (!sup_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v))
        return false;
    Stmt st = {strndup(text, n), file ? strdup(file) : NULL, where ? strdup(where) : NULL,
               line};
    if (!st.text || (file && !st.file) || (where && !st.where)) {
        free(st.text), free(st.file), free(st.where);
        return false;
    }
    s->v[s->n++] = st;
    return true;
}

static bool session_copy(const Session *s, Session *out)
{
    *out = (Session){0};
    bool ok = !s->base_dir || (out->base_dir = strdup(s->base_dir)) != NULL;
    for (size_t i = 0; i < s->n && ok; i++)
        ok = session_push(out, s->v[i].text, strlen(s->v[i].text), s->v[i].file,
                          s->v[i].where, s->v[i].line);
    if (!ok)
        session_free(out);
    return ok;
}

static void session_remove(Session *s, size_t i)
{
    free(s->v[i].text), free(s->v[i].file), free(s->v[i].where);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

/* Splits a program text into statements: a statement ends at a newline outside
 * brackets (a blank or comment line is one too), and gets a newline at the end.
 * The text starts on line `line` of `where` (for diagnostics). */
static bool session_split(Session *s, const char *text, const char *file, const char *where,
                          int line)
{
    SupBuf cur = {0};
    bool ok = true;
    int start = line;
    while (*text && ok) {
        size_t n = strcspn(text, "\n");
        ok = sup_buf_append(&cur, text, n) && sup_buf_puts(&cur, "\n");
        text += n + (text[n] == '\n');
        line++;
        if (ok && (bracket_depth(cur.p) <= 0 || !*text)) {
            ok = session_push(s, cur.p, cur.len, file, where, start);
            cur.len = 0;
            start = line;
        }
    }
    free(cur.p);
    return ok;
}

/* The tensor a statement defines (NULL: an export, a sink, a declaration...);
 * *n its length, *adds whether it is a `+=` contribution. */
static const char *stmt_target(const char *s, size_t *n, bool *adds)
{
    const char *id = statement_lhs(s, n);
    if (!id || is_builtin(id, *n) || (*n == 2 && strncmp(id, "fn", 2) == 0) ||
        (*n == 5 && strncmp(id, "param", 5) == 0))
        return NULL;
    const char *p = id + *n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[' || *p == '(') {
        int depth = 0;
        do {
            depth += (*p == '(' || *p == '[') - (*p == ')' || *p == ']');
            p++;
        } while (*p && *p != '\n' && depth > 0);
        while (*p == ' ' || *p == '\t')
            p++;
    }
    *adds = p[0] == '+' && p[1] == '=';
    bool sets = (p[0] == '=' && p[1] != '=') || strncmp(p, "max=", 4) == 0 ||
                strncmp(p, "avg=", 4) == 0;
    return *adds || sets ? id : NULL;
}

/* Whether statement s defines (or, with exports, exports) the tensor `name`. */
static bool stmt_defines(const char *s, const char *name, bool exports)
{
    size_t n = 0, want = strlen(name);
    bool adds = false;
    const char *id = stmt_target(s, &n, &adds);
    if (!id && exports) {
        const char *kw = statement_lhs(s, &n);
        if (kw && n == 6 && strncmp(kw, "export", 6) == 0)
            id = statement_lhs(kw + 6, &n);
    }
    return id && n == want && strncmp(id, name, n) == 0;
}

/* Whether statement s names `name` as an identifier (outside strings and comments). */
static bool stmt_uses(const char *s, const char *name)
{
    size_t want = strlen(name);
    while (*s) {
        if (*s == '"') {
            s = skip_string(s);
        } else if (*s == '#') {
            s += strcspn(s, "\n");
        } else if (is_ident_start(*s)) {
            const char *id = s;
            while (is_ident_char(*s))
                s++;
            if ((size_t)(s - id) == want && strncmp(id, name, want) == 0)
                return true;
        } else {
            s++;
        }
    }
    return false;
}

typedef struct Repl {
    fuse_ctx *ctx;
    fuse_config cfg;  /* what :set changes; sinks off until `:set sinks on` */
    fuse_syntax syntax; /* `:set parser legacy|v2` */
    fuse_param *params; /* `:set param NAME=VALUE`; names malloc'd */
    size_t n_params;
    char *weights;      /* `:set weights FILE.json`: a weights manifest, or NULL */
    SupBuf text;         /* the session's program: cur's statements joined */
    Session cur;         /* every accepted statement */
    Session *undo;       /* earlier sessions, the last one first to come back */
    size_t n_undo, cap_undo;
    SupBuf pending;      /* an entry whose brackets are still open */
    SupBuf entry;        /* the lines of the statement being read, for the history */
    bool interactive; /* stdin is a terminal */
    bool timing;      /* :time */
    bool quit;
    bool cancelled;   /* Ctrl-C while reading the current line */
    int failures;     /* entries that failed (the exit status when scripted) */
    bool not_converged; /* a fixpoint hit max_iters (exit 4 when scripted) */
    const char *where; /* "<stdin>" for a script; NULL: diagnostics keep <repl> lines */
    int lineno;        /* lines read */
    int pending_line;  /* where `pending` starts */
    int nul_column;    /* the line read has a NUL byte there (from 1); 0: none */
    const Session *diag; /* the session being checked (NULL: cur) */
    long expr_line;      /* the session line where an expression's statement starts */
    long expr_shift;     /* columns its first line gained (the `_repl_value[..] = `) */
    EditLine *el;
    History *hist;
    char *hist_path;  /* NULL: no history file */
    sigset_t old_mask, wait_mask; /* SIGINT is only delivered inside ppoll */
    bool signals_set;
} Repl;

static void repl_error(Repl *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void repl_error(Repl *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    r->failures++;
}

/* Prints a library diagnostic; each "<repl>:LINE:" that falls in a statement
 * from a :loaded file or a script names that file or script and its own line. */
static void print_diagnostic(Repl *r, const char *msg)
{
    static const char TAG[] = "<repl>:";
    const size_t tag = sizeof TAG - 1;
    const Session *s = r->diag ? r->diag : &r->cur;
    const char *p = msg;
    for (const char *q; (q = strstr(p, TAG)) != NULL;) {
        fwrite(p, 1, (size_t)(q - p), stderr);
        char *end = NULL;
        long line = isdigit((unsigned char)q[tag]) ? strtol(q + tag, &end, 10) : 0;
        long first = 1;
        const Stmt *st = NULL;
        for (size_t i = 0; i < s->n && !st && line > 0; i++) {
            long k = 0;
            for (const char *c = s->v[i].text; *c; c++)
                k += *c == '\n';
            if (line < first + k)
                st = &s->v[i];
            else
                first += k;
        }
        char *col_end = NULL;
        long col = end && *end == ':' ? strtol(end + 1, &col_end, 10) : 0;
        if (st && st->where && end && *end == ':') {
            fprintf(stderr, "%s:%ld:", st->where, st->line + (line - first));
            p = end + 1;
        } else if (!st && r->where && r->expr_line && line >= r->expr_line && col_end &&
                   *col_end == ':') {
            /* an expression: its own line in the script, its own column */
            if (line == r->expr_line)
                col = col > r->expr_shift ? col - r->expr_shift : 1;
            fprintf(stderr, "%s:%ld:%ld:", r->where, r->pending_line + (line - r->expr_line),
                    col);
            p = col_end + 1;
        } else {
            fwrite(q, 1, tag, stderr);
            p = q + tag;
        }
    }
    fputs(p, stderr);
}

/* Prints the library's diagnostic for a failed call. */
static void repl_lib_error(Repl *r, fuse_status st)
{
    const char *msg = fuse_ctx_error(r->ctx);
    fflush(stdout);
    if (st == FUSE_E_INTERRUPTED && r->interactive)
        fputc('\n', stderr); /* past the terminal's echoed ^C */
    if (!msg || !*msg) {
        fprintf(stderr, "error: %s\n", fuse_status_name(st));
    } else {
        char *colored = cli_color_stderr() ? cli_color_diags(msg) : NULL; /* on a tty */
        print_diagnostic(r, colored ? colored : msg);
        free(colored);
        if (msg[strlen(msg) - 1] != '\n')
            fputc('\n', stderr);
    }
    r->failures++;
}

/* Checks `text` as the whole session program. */
static fuse_status check_text(Repl *r, const char *text, fuse_program **out)
{
    double t0 = sup_clock_ms();
    fuse_program_options opts;
    fuse_program_options_init(&opts);
    opts.syntax = r->syntax;
    opts.params = r->params;
    opts.n_params = r->n_params;
    opts.weights = r->weights;
    fuse_status st = fuse_program_from_text_opts(r->ctx, text, "<repl>", &opts, out);
    if (r->timing)
        printf("time: check %.2f ms\n", sup_clock_ms() - t0);
    if (st != FUSE_OK)
        repl_lib_error(r, st);
    return st;
}

/* Keeps the current session for :undo (the last UNDO_DEPTH changes); false on OOM. */
enum { UNDO_DEPTH = 100 };

static bool undo_push(Repl *r)
{
    if (r->n_undo == UNDO_DEPTH) {
        session_free(&r->undo[0]);
        memmove(&r->undo[0], &r->undo[1], (r->n_undo - 1) * sizeof *r->undo);
        r->n_undo--;
    }
    if (!sup_grow((void **)&r->undo, &r->cap_undo, r->n_undo + 1, sizeof *r->undo))
        return false;
    r->undo[r->n_undo++] = r->cur;
    return true;
}

/* Compiles a checked program (prints the diagnostic on failure). */
static fuse_status make_runner(Repl *r, fuse_program *prog, const char *base_dir,
                               fuse_runner **run)
{
    fuse_config cfg = r->cfg;
    cfg.base_dir = cfg.out_dir = base_dir;
    double t0 = sup_clock_ms();
    /* kernels compiled vs reused */
    fuse_stats s0 = {.size = sizeof s0}, s1 = {.size = sizeof s1};
    (void)fuse_ctx_stats(r->ctx, &s0);
    fuse_status st = fuse_runner_new(prog, &cfg, NULL, 0, run);
    (void)fuse_ctx_stats(r->ctx, &s1);
    unsigned long long made = s1.groups_compiled - s0.groups_compiled;
    if (r->timing && st == FUSE_OK)
        printf("time: compile %.2f ms (%llu kernel%s compiled, %llu from the cache)\n",
               sup_clock_ms() - t0, made, made == 1 ? "" : "s",
               (unsigned long long)(s1.groups_cached - s0.groups_cached));
    if (st != FUSE_OK)
        repl_lib_error(r, st);
    return st;
}

/* Checks a candidate session and creates a runner for it (which loads its
 * sources); on success the candidate becomes the session (the old one is kept
 * for :undo), else the diagnostic is printed and the candidate is freed. */
static bool session_install(Repl *r, Session *cand)
{
    SupBuf t = {0};
    bool ok = sup_buf_puts(&t, "");
    for (size_t i = 0; i < cand->n && ok; i++)
        ok = sup_buf_puts(&t, cand->v[i].text);
    if (!ok) {
        free(t.p);
        session_free(cand);
        repl_error(r, "out of memory");
        return false;
    }
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    r->diag = cand;
    fuse_status st = check_text(r, t.p, &prog);
    if (st == FUSE_OK) {
        st = make_runner(r, prog, cand->base_dir, &run);
        fuse_runner_free(run);
        fuse_program_free(prog);
    }
    r->diag = NULL;
    if (st != FUSE_OK || !undo_push(r)) {
        if (st == FUSE_OK)
            repl_error(r, "out of memory");
        free(t.p);
        session_free(cand);
        return false;
    }
    r->cur = *cand;
    *cand = (Session){0};
    free(r->text.p);
    r->text = t;
    return true;
}

/* A statement entered at the prompt: `=` (also max=, avg=) replaces the
 * statements that define the same tensor, `+=` adds a contribution. */
static bool accept_text(Repl *r, const char *entry)
{
    Session cand;
    if (!session_copy(&r->cur, &cand)) {
        repl_error(r, "out of memory");
        return false;
    }
    size_t n = 0;
    bool adds = false, redefined = false;
    const char *id = stmt_target(entry, &n, &adds);
    char *name = id ? strndup(id, n) : NULL;
    for (size_t i = 0; name && !adds && i < cand.n;)
        if (stmt_defines(cand.v[i].text, name, false)) {
            session_remove(&cand, i);
            redefined = true;
        } else {
            i++;
        }
    bool ok = (!id || name) && session_split(&cand, entry, NULL, r->where, r->pending_line);
    if (!ok) {
        session_free(&cand);
        repl_error(r, "out of memory");
    } else if ((ok = session_install(r, &cand)) && redefined) {
        printf("%s redefined\n", name);
    }
    free(name);
    return ok;
}

/* The session's tensor names; false (and an error) on OOM. */
static bool session_names(Repl *r, Words *w)
{
    if (collect_names(buf_str(&r->text), w))
        return true;
    repl_error(r, "out of memory");
    return false;
}

static bool session_has_tensor(Repl *r, const char *name)
{
    Words w = {0};
    bool ok = session_names(r, &w) && words_has(&w, name, strlen(name));
    const char *near = ok ? NULL : sup_nearest(name, (const char *const *)w.v, w.n);
    if (near)
        repl_error(r, "unknown tensor '%s'; did you mean '%s'?", name, near);
    else if (!ok)
        repl_error(r, "unknown tensor '%s'", name);
    words_free(&w);
    return ok;
}

/* Compiles the session (with `name` exported too when not NULL). */
static fuse_status compile_session(Repl *r, const char *name, fuse_runner **run)
{
    SupBuf t = {0};
    bool ok = sup_buf_puts(&t, buf_str(&r->text));
    if (ok && name)
        ok = sup_buf_puts(&t, "export ") && sup_buf_puts(&t, name) && sup_buf_puts(&t, "\n");
    if (!ok) {
        free(t.p);
        repl_error(r, "out of memory");
        return FUSE_E_NOMEM;
    }
    fuse_program *prog = NULL;
    fuse_status st = check_text(r, t.p, &prog);
    free(t.p);
    if (st != FUSE_OK)
        return st;
    st = make_runner(r, prog, r->cur.base_dir, run);
    fuse_program_free(prog);
    return st;
}

/* Compiles and runs the session; *out holds its exports (and `name`). */
static fuse_status run_session(Repl *r, const char *name, fuse_outputs **out)
{
    fuse_runner *run = NULL;
    fuse_status st = compile_session(r, name, &run);
    if (st != FUSE_OK)
        return st;
    if (repl_interrupted) { /* Ctrl-C while compiling; a run clears it */
        fuse_runner_free(run);
        repl_error(r, "interrupted");
        return FUSE_E_INTERRUPTED;
    }
    double t0 = sup_clock_ms();
    st = fuse_runner_run(run, NULL, 0, out);
    if (r->timing)
        printf("time: run %.2f ms\n", sup_clock_ms() - t0);
    if (st == FUSE_E_NOT_CONVERGED) { /* a warning: the outputs hold the last sweep */
        const char *msg = fuse_ctx_error(r->ctx);
        fflush(stdout);
        if (msg && *msg)
            fprintf(stderr, "%s%s", msg, msg[strlen(msg) - 1] == '\n' ? "" : "\n");
        r->not_converged = true;
    } else if (st != FUSE_OK) {
        repl_lib_error(r, st);
    }
    fuse_runner_free(run);
    return *out ? FUSE_OK : st;
}

/* Computes one tensor; *out holds it (fuse_outputs_find(*out, name)). */
static const fuse_tensor *compute(Repl *r, const char *name, fuse_outputs **out)
{
    *out = NULL;
    if (!session_has_tensor(r, name) || run_session(r, name, out) != FUSE_OK)
        return NULL;
    const fuse_tensor *t = fuse_outputs_find(*out, name);
    if (!t)
        repl_error(r, "'%s' has no value", name);
    return t;
}

static void print_tensor(Repl *r, const char *name, const fuse_tensor *t)
{
    fuse_status st = cli_print_export(stdout, name, t);
    if (st != FUSE_OK)
        repl_error(r, "cannot print '%s': %s", name, fuse_status_name(st));
}

/* A bare tensor name: prints its value with shape and dtype. */
static void show_value(Repl *r, const char *name)
{
    fuse_outputs *out = NULL;
    const fuse_tensor *t = compute(r, name, &out);
    if (t)
        print_tensor(r, name, t);
    fuse_outputs_free(out);
}

/* ---- expressions at the prompt ---- */

/* Whether an entry is an expression rather than a statement: it has no
 * assignment (=, +=, max=, avg=) outside brackets and strings and does not start
 * with a declaration keyword or a block. */
static bool is_expression(const char *s)
{
    size_t n = 0;
    const char *id = statement_lhs(s, &n);
    static const char *const KEYWORDS[] = {"export", "import", "param", "axis", "fn", "let"};
    for (size_t i = 0; id && i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
        if (strlen(KEYWORDS[i]) == n && strncmp(KEYWORDS[i], id, n) == 0 &&
            is_ident_start(id[n + strspn(id + n, " \t")]))
            return false;
    if (s[strspn(s, " \t\n")] == '{')
        return false;
    int depth = 0;
    for (const char *p = s; *p;) {
        if (*p == '"') {
            p = skip_string(p);
            continue;
        }
        if (*p == '#') {
            p += strcspn(p, "\n");
            continue;
        }
        depth += (*p == '(' || *p == '[' || *p == '{') - (*p == ')' || *p == ']' || *p == '}');
        if (*p == '=' && depth == 0 && p[1] != '=' &&
            (p == s || !strchr("=<>!", p[-1])))
            return false;
        p++;
    }
    return true;
}

/* The free axes of an expression, in order of appearance: an index (a name
 * inside a tensor's brackets) is summed when it appears twice or more in one
 * term of a top-level sum, as in `A[i,k] B[k,j]`, and free when it appears once
 * in some term. */
static bool free_axes(const char *s, Words *axes)
{
    Words seen = {0}, once = {0};
    bool ok = true;
    /* per term: counts of each index, kept as parallel words */
    Words term = {0};
    size_t counts[64] = {0};
    int depth = 0, index_depth = -1;
    const char *p = s;
    for (;; p++) {
        const char *prev = p; /* the character before, spaces skipped */
        while (prev > s && (prev[-1] == ' ' || prev[-1] == '\t'))
            prev--;
        /* a binary + or - (not a sign, nor an exponent's as in 1e-3) */
        bool binary = (*p == '+' || *p == '-') && prev > s && !strchr("+-*/(,[=<>!?:", prev[-1]) &&
                      !((prev[-1] == 'e' || prev[-1] == 'E') && prev - 1 > s &&
                        isdigit((unsigned char)prev[-2]));
        bool end_term = !*p || (depth == 0 && binary);
        if (end_term) {
            for (size_t i = 0; i < term.n && ok; i++)
                if (counts[i] == 1)
                    ok = words_add(&once, term.v[i], strlen(term.v[i]));
            words_free(&term);
            memset(counts, 0, sizeof counts);
            if (!*p)
                break;
            continue;
        }
        if (*p == '"') {
            p = skip_string(p) - 1;
        } else if (*p == '[' || *p == '(' || *p == '{') {
            bool after_name = p > s && is_ident_char(p[-1]) && *p == '[';
            depth++;
            if (after_name && index_depth < 0)
                index_depth = depth;
        } else if (*p == ']' || *p == ')' || *p == '}') {
            if (depth == index_depth)
                index_depth = -1;
            depth--;
        } else if (is_ident_start(*p) && (p == s || !is_ident_char(p[-1]))) {
            const char *id = p;
            while (is_ident_char(p[1]))
                p++;
            size_t n = (size_t)(p + 1 - id);
            const char *next = p + 1 + strspn(p + 1, " \t");
            if (index_depth > 0 && *next != '[' && *next != '(' && ok) {
                size_t k = 0;
                while (k < term.n && !(strlen(term.v[k]) == n && strncmp(term.v[k], id, n) == 0))
                    k++;
                ok = words_add(&seen, id, n) && (k < term.n || term.n < 64) &&
                     words_add(&term, id, n);
                if (ok)
                    counts[k]++;
            }
        }
    }
    for (size_t i = 0; i < seen.n && ok; i++)
        if (words_has(&once, seen.v[i], strlen(seen.v[i])))
            ok = words_add(axes, seen.v[i], strlen(seen.v[i]));
    words_free(&seen), words_free(&once), words_free(&term);
    return ok;
}

/* An expression: evaluated as a temporary tensor over its free axes (not kept)
 * and printed under the expression's own text. */
static void show_expression(Repl *r, const char *expr)
{
    static const char NAME[] = "_repl_value";
    Words axes = {0};
    SupBuf def = {0}, shown = {0};
    bool ok = free_axes(expr, &axes) && sup_buf_puts(&def, NAME);
    for (size_t i = 0; i < axes.n && ok; i++)
        ok = sup_buf_printf(&def, "%s%s", i ? "," : "[", axes.v[i]);
    if (ok && axes.n)
        ok = sup_buf_puts(&def, "]");
    const char *e = expr + strspn(expr, " \t\n");
    size_t n = strlen(e);
    while (n && isspace((unsigned char)e[n - 1]))
        n--;
    ok = ok && sup_buf_printf(&def, " = %.*s\n", (int)n, e);
    for (size_t i = 0; i < n && ok; i++) /* one line, for the header */
        ok = sup_buf_putc(&shown, e[i] == '\n' ? ' ' : e[i]);
    if (!ok) {
        repl_error(r, "out of memory");
    } else {
        /* run with the temporary statement, then put the session back */
        SupBuf saved = r->text;
        SupBuf t = {0};
        ok = sup_buf_puts(&t, buf_str(&saved)) && sup_buf_puts(&t, def.p);
        if (ok) {
            r->text = t;
            r->expr_line = 1;
            for (const char *c = buf_str(&saved); *c; c++)
                r->expr_line += *c == '\n';
            r->expr_shift = (long)(strchr(def.p, '=') - def.p) + 2 - (long)(e - expr);
            fuse_outputs *out = NULL;
            if (run_session(r, NAME, &out) == FUSE_OK) {
                const fuse_tensor *v = fuse_outputs_find(out, NAME);
                if (v)
                    print_tensor(r, shown.p ? shown.p : "", v);
                else
                    repl_error(r, "the expression has no value");
            }
            fuse_outputs_free(out);
            r->text = saved;
            r->expr_line = 0;
        } else {
            repl_error(r, "out of memory");
        }
        free(t.p);
    }
    words_free(&axes);
    free(def.p), free(shown.p);
}

/* ---- :set ---- */

/* The keys and value lists are repl_settings.c's (Tab completes from them too). */

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static int choice(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sup_same_word(v, names[i]))
            return (int)i;
    return -1;
}

static bool parse_count(const char *v, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > max)
        return false;
    *out = n;
    return true;
}

/* Sets a choice field; false when v is not one of names. */
static bool set_choice(int *field, const char *v, const char *const *names, size_t n)
{
    int i = choice(v, names, n);
    if (i >= 0)
        *field = i;
    return i >= 0;
}

/* Applies `:set KEY VALUE` to c; returns NULL or the list of accepted values. */
static const char *set_option(fuse_config *c, const char *key, const char *v)
{
    long long n = 0;
    int i = 0;
    if (strcmp(key, "mode") == 0)
        return set_choice(&i, v, REPL_MODES, COUNT_OF(REPL_MODES))
                   ? (c->mode = (fuse_mode)i, NULL) : "single, fixpoint or demand";
    if (strcmp(key, "strategy") == 0)
        return set_choice(&i, v, REPL_STRATEGIES, COUNT_OF(REPL_STRATEGIES))
                   ? (c->strategy = (fuse_strategy)i, NULL) : "synchronous or semi_naive";
    if (strcmp(key, "projection") == 0)
        return set_choice(&i, v, REPL_PROJECTIONS, COUNT_OF(REPL_PROJECTIONS))
                   ? (c->projection = (fuse_projection)i, NULL) : "exact or monte_carlo";
    if (strcmp(key, "precision") == 0)
        return set_choice(&i, v, REPL_PRECISIONS, COUNT_OF(REPL_PRECISIONS))
                   ? (c->precision = (fuse_precision)i, NULL) : "fp32, fp64, bf16 or fp16";
    if (strcmp(key, "device") == 0)
        return set_choice(&i, v, REPL_DEVICES, COUNT_OF(REPL_DEVICES))
                   ? (c->device = (fuse_device)i, NULL) : "auto, cpu or cuda";
    if (strcmp(key, "sinks") == 0)
        return set_choice(&c->write_sinks, v, REPL_SWITCHES, 2) ? NULL : "on or off";
    if (strcmp(key, "cache") == 0)
        return set_choice(&i, v, REPL_SWITCHES, 2) ? (c->no_cache = !i, NULL) : "on or off";
    if (strcmp(key, "threads") == 0)
        return parse_count(v, INT_MAX, &n) ? (c->threads = (int)n, NULL) : "a count >= 0";
    if (strcmp(key, "max_iters") == 0)
        return parse_count(v, INT_MAX, &n) ? (c->max_iters = (int)n, NULL) : "a count >= 0";
    if (strcmp(key, "samples") == 0)
        return parse_count(v, LLONG_MAX, &n) ? (c->samples = n, NULL) : "a count >= 0";
    if (strcmp(key, "seed") == 0)
        return parse_count(v, LLONG_MAX, &n) ? (c->seed = (uint64_t)n, NULL) : "an integer >= 0";
    if (strcmp(key, "max_memory") == 0)
        return cli_parse_bytes(v, &c->max_memory) ? NULL : "a size such as 4G (0 or none: no cap)";
    if (strcmp(key, "tol") == 0) {
        char *end;
        double d = strtod(v, &end);
        return *v && !*end && d >= 0 ? (c->tol = d, NULL) : "a number >= 0";
    }
    return "";
}

static const char SET_KEYS[] = "mode, strategy, projection, precision, device, threads, seed, "
                               "samples, max_iters, tol, sinks, cache, max_memory, parser, param, "
                               "weights";

/* ---- commands ---- */

/* A command's handler; arg: trimmed, "" when none. */
typedef void (*ReplCommandFn)(Repl *r, char *arg);

/* `:set param NAME=VALUE`: adds or replaces the value; NULL or what is expected. */
static const char *set_param(Repl *r, const char *v)
{
    const char *eq = strchr(v, '=');
    char *end = NULL;
    double x = eq ? strtod(eq + 1, &end) : 0;
    if (!eq || eq == v || !end || end == eq + 1 || *end || !isfinite(x))
        return "NAME=NUMBER";
    size_t n = (size_t)(eq - v);
    for (size_t i = 0; i < r->n_params; i++)
        if (strlen(r->params[i].name) == n && strncmp(r->params[i].name, v, n) == 0) {
            r->params[i].value = x;
            return NULL;
        }
    fuse_param *ps = realloc(r->params, (r->n_params + 1) * sizeof *ps);
    char *name = ps ? strndup(v, n) : NULL;
    if (ps)
        r->params = ps;
    if (!name)
        return "NAME=NUMBER (out of memory)";
    r->params[r->n_params++] = (fuse_param){name, x};
    return NULL;
}

static void params_free(Repl *r)
{
    for (size_t i = 0; i < r->n_params; i++)
        free((char *)r->params[i].name);
    free(r->params);
    r->params = NULL;
    r->n_params = 0;
}

/* `:set weights FILE.json|none`: the manifest supplies tensors from the next
 * evaluation on. The session's program is checked with the new choice at once,
 * so a missing or malformed manifest, one that does not fit the program, or
 * `none` while the program reads a tensor only the manifest supplies, is
 * refused here and the previous choice stays. NULL or what is expected;
 * *is_shown when the refusal was already printed. */
static const char *set_weights(Repl *r, const char *v, bool *is_shown)
{
    bool is_none = strcmp(v, "none") == 0;
    char *path = is_none ? NULL : strdup(v);
    if (!is_none && !path)
        return "FILE.json or none (out of memory)";
    fuse_program_options opts;
    fuse_program_options_init(&opts);
    opts.syntax = r->syntax;
    opts.params = r->params;
    opts.n_params = r->n_params;
    opts.weights = path;
    fuse_program *prog = NULL;
    /* quiet: a manifest naming tensors the session does not read yet is normal */
    fuse_ctx_set_log(r->ctx, NULL, NULL);
    fuse_status st = fuse_program_from_text_opts(r->ctx, r->text.p ? r->text.p : "", "<repl>",
                                                 &opts, &prog);
    fuse_ctx_set_log(r->ctx, cli_log, "fuse-jit");
    fuse_program_free(prog);
    if (st != FUSE_OK) {
        const char *msg = fuse_ctx_error(r->ctx);
        msg = msg && *msg ? msg : fuse_status_name(st);
        if (strncmp(msg, "error: ", 7) == 0)
            msg += 7;
        repl_error(r, ":set weights %s refused: %.*s", v, (int)strcspn(msg, "\n"), msg);
        *is_shown = true;
        free(path);
        return "";
    }
    free(r->weights);
    r->weights = path;
    return NULL;
}

/* `:set` alone: every setting and its current value. */
static void print_settings(const Repl *r)
{
    const fuse_config *c = &r->cfg;
    printf("mode = %s\nstrategy = %s\nprojection = %s\nprecision = %s\ndevice = %s\n",
           REPL_MODES[c->mode], REPL_STRATEGIES[c->strategy], REPL_PROJECTIONS[c->projection],
           REPL_PRECISIONS[c->precision], REPL_DEVICES[c->device]);
    printf("threads = %d%s\nseed = %llu\nsamples = %lld\n", c->threads,
           c->threads ? "" : " (all cores)", (unsigned long long)c->seed,
           (long long)c->samples);
    printf("max_iters = %d%s\ntol = %g\nsinks = %s\ncache = %s\n", c->max_iters,
           c->max_iters ? "" : " (32)", c->tol, REPL_SWITCHES[c->write_sinks != 0],
           REPL_SWITCHES[!c->no_cache]);
    if (c->max_memory == FUSE_MEMORY_UNLIMITED)
        printf("max_memory = none\n");
    else if (c->max_memory == 0)
        printf("max_memory = 0 (the machine's memory)\n");
    else
        printf("max_memory = %llu\n", (unsigned long long)c->max_memory);
    printf("parser = %s\nparam =", REPL_SYNTAXES[r->syntax == FUSE_SYNTAX_V2]);
    for (size_t i = 0; i < r->n_params; i++)
        printf(" %s=%g", r->params[i].name, r->params[i].value);
    printf("%s\n", r->n_params ? "" : " (none)");
    printf("weights = %s\n", r->weights ? r->weights : "none");
}

/* Whether this build can run with configuration c (the library's own check: an
 * empty program is compiled with it); prints why not. */
static bool config_usable(Repl *r, const fuse_config *c, const char *key, const char *v)
{
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_status st = fuse_program_from_text(r->ctx, "", "<set>", &prog);
    if (st == FUSE_OK) {
        fuse_config probe = *c;
        probe.base_dir = probe.out_dir = NULL;
        st = fuse_runner_new(prog, &probe, NULL, 0, &run);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
    if (st == FUSE_OK)
        return true;
    const char *msg = fuse_ctx_error(r->ctx);
    if (!msg || !*msg)
        msg = fuse_status_name(st);
    if (strncmp(msg, "error: ", 7) == 0)
        msg += 7;
    repl_error(r, ":set %s %s refused: %.*s", key, v, (int)strcspn(msg, "\n"), msg);
    return false;
}

static void cmd_set(Repl *r, char *arg)
{
    char *key = arg, *v = arg + strcspn(arg, " \t");
    if (*v)
        *v++ = '\0';
    v = trim(v);
    if (!*key) {
        print_settings(r);
        return;
    }
    if (!*v) {
        repl_error(r, ":set needs KEY VALUE (keys: %s)", SET_KEYS);
        return;
    }
    int syntax = (int)r->syntax;
    fuse_config c = r->cfg;
    bool is_shown = false;
    const char *bad = strcmp(key, "param") == 0     ? set_param(r, v)
                    : strcmp(key, "weights") == 0 ? set_weights(r, v, &is_shown)
                    : strcmp(key, "parser") != 0  ? set_option(&c, key, v)
                    : set_choice(&syntax, v, REPL_SYNTAXES, 2) ? NULL : "legacy or v2";
    if (is_shown)
        return;
    if (!bad && (strcmp(key, "precision") == 0 || strcmp(key, "device") == 0) &&
        !config_usable(r, &c, key, v))
        return;
    if (!bad)
        r->cfg = c;
    r->syntax = (fuse_syntax)syntax;
    const char *keys[32];
    size_t n_keys = 0;
    for (size_t i = 0; i < REPL_N_SETTINGS && n_keys < COUNT_OF(keys); i++)
        keys[n_keys++] = REPL_SETTINGS[i].key;
    const char *near = bad && !*bad ? sup_nearest(key, keys, n_keys) : NULL;
    if (near)
        repl_error(r, "unknown setting '%s' (keys: %s); did you mean '%s'?", key, SET_KEYS, near);
    else if (bad && !*bad)
        repl_error(r, "unknown setting '%s' (keys: %s)", key, SET_KEYS);
    else if (bad)
        repl_error(r, ":set %s expects %s, got '%s'", key, bad, v);
    else if (r->interactive)
        printf("%s = %s\n", key, v);
}

static void cmd_time(Repl *r, char *arg)
{
    r->timing = !r->timing;
    printf("timing %s\n", r->timing ? "on" : "off");
}

static void cmd_quit(Repl *r, char *arg) { r->quit = true; }

static void cmd_reset(Repl *r, char *arg)
{
    if (!undo_push(r)) {
        repl_error(r, "out of memory");
        return;
    }
    r->cur = (Session){0};
    free(r->text.p);
    r->text = (SupBuf){0};
    printf("session cleared\n");
}

/* :undo: the session as it was before the last statement, :load, :drop or :reset
 * (up to UNDO_DEPTH steps back). */
static void cmd_undo(Repl *r, char *arg)
{
    if (r->n_undo == 0) {
        repl_error(r, "nothing to undo");
        return;
    }
    SupBuf t = {0};
    Session *prev = &r->undo[r->n_undo - 1];
    bool ok = sup_buf_puts(&t, "");
    for (size_t i = 0; i < prev->n && ok; i++)
        ok = sup_buf_puts(&t, prev->v[i].text);
    if (!ok) {
        free(t.p);
        repl_error(r, "out of memory");
        return;
    }
    session_free(&r->cur);
    r->cur = *prev;
    r->n_undo--;
    free(r->text.p);
    r->text = t;
    printf("undone\n");
}

/* :drop NAME: removes the statements that define or export NAME; refused while
 * another statement uses NAME. */
static void cmd_drop(Repl *r, char *arg)
{
    if (!is_identifier(arg)) {
        repl_error(r, ":drop needs a tensor NAME");
        return;
    }
    SupBuf users = {0};
    size_t found = 0;
    bool ok = true;
    for (size_t i = 0; i < r->cur.n && ok; i++) {
        const char *s = r->cur.v[i].text;
        if (stmt_defines(s, arg, true)) {
            found++;
        } else if (stmt_uses(s, arg)) {
            size_t n = 0;
            bool adds = false;
            const char *id = stmt_target(s, &n, &adds);
            const char *what = id ? id : s + strspn(s, " \t");
            if (!id)
                n = strcspn(what, "\n");
            ok = sup_buf_printf(&users, "%s'%.*s'", users.len ? ", " : "", (int)n, what);
        }
    }
    Session cand = {0};
    if (!ok) {
        repl_error(r, "out of memory");
    } else if (!found) {
        repl_error(r, "no statement defines '%s'", arg);
    } else if (users.len) {
        repl_error(r, "cannot drop '%s': used by %s (drop or redefine those first)", arg,
                   users.p);
    } else if (!session_copy(&r->cur, &cand)) {
        repl_error(r, "out of memory");
    } else {
        for (size_t i = 0; i < cand.n;)
            if (stmt_defines(cand.v[i].text, arg, true))
                session_remove(&cand, i);
            else
                i++;
        if (session_install(r, &cand))
            printf("dropped %s\n", arg);
    }
    free(users.p);
}

static void cmd_list(Repl *r, char *arg)
{
    const char *s = buf_str(&r->text);
    for (int line = 1; *s; line++) {
        size_t n = strcspn(s, "\n");
        printf("%4d  %.*s\n", line, (int)n, s);
        s += n + (s[n] == '\n');
    }
}

/* :show NAME: the statements that define or export NAME, with their lines. */
static void cmd_show(Repl *r, char *arg)
{
    if (!is_identifier(arg)) {
        repl_error(r, ":show needs a tensor NAME");
        return;
    }
    if (!session_has_tensor(r, arg))
        return;
    const char *s = buf_str(&r->text);
    size_t want = strlen(arg);
    for (int line = 1; *s; line++) {
        size_t n = strcspn(s, "\n"), k = 0;
        const char *lhs = statement_lhs(s, &k);
        bool is_export = lhs && k == 6 && strncmp(lhs, "export", 6) == 0;
        if (is_export)
            lhs = statement_lhs(lhs + 6, &k);
        if (lhs && k == want && strncmp(lhs, arg, k) == 0 && lhs < s + n)
            printf("%4d  %.*s\n", line, (int)n, s);
        s += n + (s[n] == '\n');
    }
}

static void cmd_shape(Repl *r, char *arg)
{
    if (!is_identifier(arg)) {
        repl_error(r, ":shape needs a tensor NAME");
        return;
    }
    fuse_outputs *out = NULL;
    const fuse_tensor *t = compute(r, arg, &out);
    if (t) {
        char shape[160];
        cli_shape_text(t, shape, sizeof shape);
        printf("%s shape=%s dtype=%s\n", arg, shape, fuse_dtype_name(t->dtype));
    }
    fuse_outputs_free(out);
}

/* Whether `line` mentions the identifier `name` as a whole word. */
static bool mentions(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);
    for (const char *p = line; p + k <= line + n; p++)
        if (strncmp(p, name, k) == 0 && (p == line || !is_ident_char(p[-1])) &&
            (p + k == line + n || !is_ident_char(p[k])))
            return true;
    return false;
}

/* :explain [NAME]: the static explanation; with NAME only the lines naming it
 * (and the section headers). */
static void cmd_explain(Repl *r, char *arg)
{
    fuse_program *prog = NULL;
    char *text = NULL;
    if (*arg && !is_identifier(arg)) {
        repl_error(r, ":explain takes an optional tensor NAME");
        return;
    }
    if (*arg && !session_has_tensor(r, arg))
        return;
    if (check_text(r, buf_str(&r->text), &prog) != FUSE_OK)
        return;
    fuse_status st = fuse_program_explain(prog, 0, &text);
    if (st != FUSE_OK)
        repl_lib_error(r, st);
    for (const char *s = text ? text : ""; *s;) {
        size_t n = strcspn(s, "\n");
        bool header = n && s[0] != ' ' && s[n - 1] == ':';
        if (!*arg || header || mentions(s, n, arg))
            printf("%.*s\n", (int)n, s);
        s += n + (s[n] == '\n');
    }
    fuse_free(text);
    fuse_program_free(prog);
}

/* :emit [NAME] STAGE: the generated code of the session (NAME exported too). */
static void cmd_emit(Repl *r, char *arg)
{
    char *name = arg, *stage = arg + strcspn(arg, " \t");
    if (*stage)
        *stage++ = '\0';
    stage = trim(stage);
    if (!*stage)
        stage = name, name = NULL;
    if (strcmp(stage, "llvm") && strcmp(stage, "llvm-raw") && strcmp(stage, "asm")) {
        repl_error(r, ":emit needs [NAME] llvm|llvm-raw|asm");
        return;
    }
    if (name && (!is_identifier(name) || !session_has_tensor(r, name)))
        return;
    fuse_runner *run = NULL;
    char *text = NULL;
    if (compile_session(r, name, &run) != FUSE_OK)
        return;
    fuse_status st = fuse_runner_emit(run, stage, &text);
    if (st == FUSE_OK)
        printf("%s%s", text, text[0] && text[strlen(text) - 1] == '\n' ? "" : "\n");
    else
        repl_lib_error(r, st);
    fuse_free(text);
    fuse_runner_free(run);
}

/* :run: runs the session (writing sinks when `:set sinks on`), prints exports. */
static void cmd_run(Repl *r, char *arg)
{
    fuse_outputs *out = NULL;
    if (run_session(r, NULL, &out) == FUSE_OK)
        for (size_t i = 0; i < fuse_outputs_count(out); i++)
            print_tensor(r, fuse_outputs_name(out, i), fuse_outputs_tensor(out, i));
    fuse_outputs_free(out);
}

static char *read_whole(const char *path, int *err)
{
    FILE *f = fopen(path, "rb");
    SupBuf b = {0};
    char chunk[4096];
    size_t n;
    *err = 0;
    if (!f) {
        *err = errno;
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!sup_buf_append(&b, chunk, n)) {
            *err = ENOMEM;
            break;
        }
    if (ferror(f) && !*err)
        *err = EIO;
    fclose(f);
    if (!*err && !b.p && !sup_buf_puts(&b, ""))
        *err = ENOMEM;
    if (*err || memchr(b.p, '\0', b.len)) {
        *err = *err ? *err : EINVAL;
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* :load FILE: appends the file's statements (checked together with the session);
 * its directory becomes where sources and sinks resolve. */
static void cmd_load(Repl *r, char *arg)
{
    if (!*arg) {
        repl_error(r, ":load needs a FILE");
        return;
    }
    int err = 0;
    char *text = read_whole(arg, &err);
    if (!text) {
        repl_error(r, "cannot read '%s': %s", arg, strerror(err));
        return;
    }
    char *dircopy = strdup(arg);
    char *dir = dircopy ? strdup(dirname(dircopy)) : NULL;
    char *key = realpath(arg, NULL);
    free(dircopy);
    if (!key)
        key = strdup(arg);
    Session cand = {0};
    bool reloaded = false;
    if (!dir || !key || !session_copy(&r->cur, &cand)) {
        repl_error(r, "out of memory");
    } else {
        /* a file loaded again replaces what it added before */
        for (size_t i = 0; i < cand.n;)
            if (cand.v[i].file && strcmp(cand.v[i].file, key) == 0) {
                session_remove(&cand, i);
                reloaded = true;
            } else {
                i++;
            }
        free(cand.base_dir);
        cand.base_dir = dir, dir = NULL;
        if (!session_split(&cand, text, key, arg, 1)) {
            session_free(&cand);
            repl_error(r, "out of memory");
        } else if (session_install(r, &cand) && (r->interactive || reloaded)) {
            printf("%s %s\n", reloaded ? "reloaded" : "loaded", arg);
        }
    }
    free(key);
    free(dir);
    free(text);
}

/* :save FILE: the session as a .fuse program, written atomically. */
static void cmd_save(Repl *r, char *arg)
{
    if (!*arg) {
        repl_error(r, ":save needs a FILE");
        return;
    }
    size_t n = strlen(arg);
    char *tmp = malloc(n + 8);
    if (!tmp) {
        repl_error(r, "out of memory");
        return;
    }
    memcpy(tmp, arg, n);
    memcpy(tmp + n, ".XXXXXX", 8);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f && fwrite(buf_str(&r->text), 1, r->text.len, f) == r->text.len;
    ok = f ? (fclose(f) == 0) && ok : false;
    if (!f && fd >= 0)
        close(fd);
    if (ok)
        ok = rename(tmp, arg) == 0;
    if (!ok) {
        repl_error(r, "cannot write '%s': %s", arg, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    } else if (r->interactive) {
        printf("saved %s\n", arg);
    }
    free(tmp);
}

/* `:help [NAME]` */
static void cmd_help(Repl *r, char *arg)
{
    if (!*arg) {
        repl_print_help(stdout);
        return;
    }
    const char *near = NULL;
    if (repl_help_topic(stdout, arg, &near))
        return;
    bool command = near && repl_command_find(near, strlen(near)) != CMD_COUNT &&
                   !repl_is_builtin(near, strlen(near));
    if (near)
        repl_error(r, "no builtin or command '%s' (:help lists them); did you mean '%s%s'?", arg,
                   command ? ":" : "", near);
    else
        repl_error(r, "no builtin or command '%s' (:help lists them)", arg);
}

/* The handlers, by the ids of repl_help.c's command table. */
static const ReplCommandFn COMMAND_FNS[CMD_COUNT] = {
    [CMD_HELP] = cmd_help,   [CMD_LOAD] = cmd_load,       [CMD_SAVE] = cmd_save,
    [CMD_LIST] = cmd_list,   [CMD_SHOW] = cmd_show,       [CMD_SHAPE] = cmd_shape,
    [CMD_EXPLAIN] = cmd_explain, [CMD_RUN] = cmd_run,     [CMD_TIME] = cmd_time,
    [CMD_SET] = cmd_set,     [CMD_EMIT] = cmd_emit,       [CMD_DROP] = cmd_drop,
    [CMD_UNDO] = cmd_undo,   [CMD_RESET] = cmd_reset,     [CMD_QUIT] = cmd_quit,
};

static void run_command(Repl *r, char *line)
{
    size_t n = strcspn(line, " \t");
    char *arg = trim(line + n);
    ReplCommandId id = line[0] == ':' ? repl_command_find(line, n) : CMD_COUNT;
    if (id != CMD_COUNT && COMMAND_FNS[id]) {
        COMMAND_FNS[id](r, arg);
        return;
    }
    const char *names[CMD_COUNT];
    for (size_t i = 0; i < CMD_COUNT; i++)
        names[i] = REPL_COMMANDS[i].name + 1;
    char word[32];
    snprintf(word, sizeof word, "%.*s", (int)(n > 0 && line[0] == ':' ? n - 1 : n),
             n > 0 && line[0] == ':' ? line + 1 : line);
    const char *near = sup_nearest(word, names, COUNT_OF(names));
    if (near)
        repl_error(r, "unknown command '%.*s' (:help lists them); did you mean ':%s'?", (int)n,
                   line, near);
    else
        repl_error(r, "unknown command '%.*s' (:help lists them)", (int)n, line);
}

/* One line of input: a command, a bare name, or (part of) a statement. */
static void repl_line(Repl *r, char *line)
{
    if (r->pending.len == 0) {
        char *s = trim(line);
        if (*s == ':') {
            run_command(r, s);
            return;
        }
        if (*s == '\0' || *s == '#')
            return;
        if (is_identifier(s)) {
            show_value(r, s);
            return;
        }
        r->pending_line = r->lineno; /* the line keeps its indent, for columns */
    }
    if (!sup_buf_puts(&r->pending, line) || !sup_buf_puts(&r->pending, "\n")) {
        repl_error(r, "out of memory");
        r->pending.len = 0;
        return;
    }
    if (bracket_depth(r->pending.p) > 0)
        return;
    if (is_expression(r->pending.p))
        show_expression(r, r->pending.p);
    else
        accept_text(r, r->pending.p);
    r->pending.len = 0;
}

/* ---- the terminal: libedit ---- */

/* A Ctrl-C may land on any thread that does not block SIGINT, and a library may
 * start threads before the editor blocks it (OpenBLAS does when LAPACK is loaded
 * for tucker_dense): such a thread passes the signal on to the line reader,
 * which may be asleep in ppoll waiting for it. A run in progress stops at its
 * next check (fuse_ctx_interrupt: an atomic store, safe here). */
static void on_sigint(int sig)
{
    repl_interrupted = 1;
    fuse_ctx_interrupt(repl_ctx);
    if (!pthread_equal(pthread_self(), repl_thread))
        pthread_kill(repl_thread, sig);
}

static Repl *editor_repl(EditLine *el)
{
    Repl *r = NULL;
    edit_lib.el_get(el, EL_CLIENTDATA, &r);
    return r;
}

static char *repl_prompt(EditLine *el)
{
    Repl *r = editor_repl(el);
    return (char *)(r && r->pending.len ? "...   " : "fuse> ");
}

/* Reads one character for libedit. Ctrl-C (SIGINT) ends the line as if Enter was
 * pressed and marks it cancelled, so the caller drops it. */
static int repl_getc(EditLine *el, wchar_t *wc)
{
    Repl *r = editor_repl(el);
    mbstate_t mb;
    memset(&mb, 0, sizeof mb);
    for (;;) {
        if (repl_interrupted) {
            repl_interrupted = 0;
            r->cancelled = true;
            *wc = L'\n';
            return 1;
        }
        /* SIGINT is blocked except while waiting here, so a Ctrl-C never slips
         * in between the check above and a blocking read */
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        if (ppoll(&pfd, 1, NULL, &r->wait_mask) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        char b;
        ssize_t k = read(STDIN_FILENO, &b, 1);
        if (k == 0)
            return 0;
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        size_t m = mbrtowc(wc, &b, 1, &mb);
        if (m == (size_t)-2)
            continue;
        if (m == (size_t)-1) {
            memset(&mb, 0, sizeof mb);
            *wc = L'?';
        }
        return 1;
    }
}

/* Tab: completes the word before the cursor (repl_complete.c), or lists the
 * candidates when they share nothing more. */
static unsigned char repl_complete_key(EditLine *el, int ch)
{
    Repl *r = editor_repl(el);
    const LineInfo *li = edit_lib.el_line(el);
    /* the line up to the cursor, as a string */
    char *line = strndup(li->buffer, (size_t)(li->cursor - li->buffer));
    Words tensors = {0};
    ReplCompletion c = {0};
    bool ok = line && collect_names(buf_str(&r->text), &tensors) &&
              collect_names(buf_str(&r->pending), &tensors) &&
              repl_complete(line, strlen(line), &tensors, &c);
    bool show = false;
    char *add = ok ? repl_completion_text(&c, &show) : NULL;
    unsigned char rc = CC_ERROR;
    if (add && *add) {
        rc = edit_lib.el_insertstr(el, add) == -1 ? CC_ERROR : CC_REFRESH;
    } else if (show) {
        fputc('\n', stdout);
        for (size_t i = 0; i < c.cands.n; i++)
            printf("%s%s", c.cands.v[i], i + 1 < c.cands.n ? "  " : "\n");
        fflush(stdout);
        rc = CC_REDISPLAY;
    }
    free(add);
    repl_completion_free(&c);
    words_free(&tensors);
    free(line);
    return rc;
}

static void editor_open(Repl *r)
{
    const char *home = getenv("HOME");
    if (home && *home)
        r->hist_path = malloc(strlen(home) + sizeof "/.fuse_jit_history");
    if (r->hist_path)
        sprintf(r->hist_path, "%s/.fuse_jit_history", home);
    HistEvent ev;
    char why[600];
    if (!edit_lib_load(why, sizeof why)) { /* plain lines, as from a pipe */
        fprintf(stderr, "fuse-jit: no line editing (cannot load libedit: %s)\n", why);
        return;
    }
    r->hist = edit_lib.history_init();
    r->el = edit_lib.el_init("fuse-jit", stdin, stdout, stderr);
    if (!r->hist || !r->el)
        return;
    edit_lib.history(r->hist, &ev, H_SETSIZE, 1000);
    edit_lib.history(r->hist, &ev, H_SETUNIQUE, 1);
    if (r->hist_path)
        edit_lib.history(r->hist, &ev, H_LOAD, r->hist_path);
    edit_lib.el_set(r->el, EL_CLIENTDATA, r);
    edit_lib.el_set(r->el, EL_EDITOR, "emacs");
    edit_lib.el_set(r->el, EL_PROMPT, repl_prompt);
    edit_lib.el_set(r->el, EL_HIST, edit_lib.history, r->hist);
    edit_lib.el_set(r->el, EL_GETCFN, repl_getc);
    /* the wide call: libedit keeps these pointers (the narrow one leaks copies) */
    edit_lib.el_wset(r->el, EL_ADDFN, L"fuse-complete", L"complete a name, command or file",
            repl_complete_key);
    edit_lib.el_set(r->el, EL_BIND, "^I", "fuse-complete", NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    repl_thread = pthread_self();
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART; /* for the reads and writes of an evaluation; ppoll
                                 is never restarted: it returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &r->old_mask);
    r->wait_mask = r->old_mask;
    sigdelset(&r->wait_mask, SIGINT);
    r->signals_set = true;
}

static void editor_close(Repl *r)
{
    if (r->signals_set)
        sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
    if (r->el)
        edit_lib.el_end(r->el);
    if (r->hist)
        edit_lib.history_end(r->hist);
    free(r->hist_path);
}

static void remember(Repl *r, const char *line)
{
    HistEvent ev;
    if (!r->hist || !*line)
        return;
    edit_lib.history(r->hist, &ev, H_ENTER, line);
    if (r->hist_path)
        edit_lib.history(r->hist, &ev, H_SAVE, r->hist_path);
}

/* ---- the loop ---- */

/* Evaluates one line. On a terminal SIGINT is let in meanwhile (the reader blocks
 * it outside ppoll): a Ctrl-C interrupts the run in progress, which returns to
 * the prompt with the session intact, and does not cancel the next
 * line. */
static void repl_eval(Repl *r, char *line)
{
    sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    if (r->signals_set)
        pthread_sigmask(SIG_UNBLOCK, &sigint, NULL);
    repl_line(r, line);
    if (r->signals_set) {
        pthread_sigmask(SIG_BLOCK, &sigint, NULL);
        repl_interrupted = 0;
    }
}

/* Evaluates what one read returned: a line, or several (a statement recalled
 * from the history). The history gets whole statements: the lines of one whose
 * brackets stay open are kept together, joined with newlines, so Up recalls
 * the statement as one entry. */
static void repl_entry(Repl *r, char *text)
{
    for (char *line = text, *next; line && !r->quit; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line != text)
            r->lineno++;
        if (r->pending.len == 0)
            r->entry.len = 0;
        if (!(r->entry.len == 0 || sup_buf_puts(&r->entry, "\n")) ||
            !sup_buf_puts(&r->entry, line))
            r->entry.len = 0; /* out of memory: the history misses it */
        repl_eval(r, line);
        if (r->pending.len == 0 && r->entry.len)
            remember(r, r->entry.p);
    }
}

/* Reads one line (without its newline) into *line (malloc'd); on a terminal a
 * statement recalled from the history may hold several lines. False at the
 * end. */
static bool read_line(Repl *r, char **line)
{
    *line = NULL;
    if (!r->el) {
        size_t cap = 0;
        ssize_t n = getline(line, &cap, stdin);
        if (n < 0)
            return false;
        r->lineno++;
        const char *nul = memchr(*line, '\0', (size_t)n);
        r->nul_column = nul ? (int)(nul - *line) + 1 : 0;
        (*line)[strcspn(*line, "\r\n")] = '\0';
        return true;
    }
    r->lineno++;
    int count = 0;
    r->cancelled = false;
    const char *s = edit_lib.el_gets(r->el, &count);
    if (!s || count <= 0) {
        r->lineno--;
        if (r->cancelled)
            return (*line = strdup("")) != NULL;
        fputc('\n', stdout);
        return false;
    }
    *line = strdup(s);
    if (*line) {
        size_t n = strlen(*line);
        while (n && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
            (*line)[--n] = '\0';
    }
    return *line != NULL;
}

int repl_main(const char *program)
{
    Repl r = {0};
    r.interactive = isatty(STDIN_FILENO);
    r.where = r.interactive ? NULL : "<stdin>";
    setlocale(LC_CTYPE, "");
    fuse_status st = fuse_ctx_new(&r.ctx);
    if (st != FUSE_OK) {
        fprintf(stderr, "fuse-jit: error: cannot create the JIT context: %s\n",
                fuse_status_name(st));
        return 1;
    }
    fuse_ctx_set_log(r.ctx, cli_log, "fuse-jit"); /* warnings to stderr */
    repl_ctx = r.ctx;
    fuse_config_init(&r.cfg);
    r.cfg.write_sinks = 0;
    if (r.interactive) {
        editor_open(&r);
        printf("fuse-jit %s: :help lists the commands, Ctrl-D quits\n", fuse_version_string());
    }
    if (program) {
        char *copy = strdup(program);
        if (copy)
            cmd_load(&r, copy);
        free(copy);
    }
    char *line = NULL;
    while (!r.quit && read_line(&r, &line)) {
        if (r.cancelled) {
            r.pending.len = 0;
        } else if (r.nul_column) {
            fflush(stdout);
            fprintf(stderr, "%s:%d:%d: error: a NUL byte in the input (the line is ignored)\n",
                    r.where ? r.where : "<stdin>", r.lineno, r.nul_column);
            r.failures++;
            r.pending.len = 0;
        } else {
            repl_entry(&r, line);
        }
        free(line);
        line = NULL;
        fflush(stdout);
    }
    free(line);
    char open = 0;
    int at_line = 0, at_col = 0;
    if (!r.quit && r.pending.len && open_bracket(r.pending.p, &open, &at_line, &at_col)) {
        fflush(stdout);
        fprintf(stderr, "%s:%d:%d: error: unexpected end of input: unclosed '%c' opened at %d:%d\n",
                r.where ? r.where : "<stdin>", r.lineno + 1, 1, open, r.pending_line + at_line,
                at_col);
        r.failures++;
    }
    editor_close(&r);
    free(r.text.p);
    free(r.pending.p);
    free(r.entry.p);
    session_free(&r.cur);
    for (size_t i = 0; i < r.n_undo; i++)
        session_free(&r.undo[i]);
    free(r.undo);
    params_free(&r);
    free(r.weights);
    repl_ctx = NULL; /* the handler stays installed */
    fuse_ctx_free(r.ctx);
    if (r.interactive)
        return 0;
    return r.failures ? 1 : r.not_converged ? 4 : 0;
}
