/*
 * repl.h: the interactive session of fuse-jit (`fuse-jit repl [PROGRAM]`, and
 * `fuse-jit` with no arguments on a terminal). Implemented in repl.c on top of the
 * public API (include/fusejit.h) and libedit.
 */
#ifndef FUSE_TOOLS_REPL_H
#define FUSE_TOOLS_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Runs a session reading stdin until :quit or end of input. `program` (may be
 * NULL) is loaded first, as by `:load`. On a terminal: line editing, history in
 * ~/.fuse_jit_history, tab completion and prompts; otherwise lines are read
 * plainly and no prompt is printed. Returns the exit status: 0, or 1 when stdin
 * is not a terminal and some entry failed (so a script can tell). */
int repl_main(const char *program);

/* Writes the help of the session: what entries do, the `:` commands and the
 * builtins (repl_help.c). */
void repl_print_help(FILE *f);

/* ---- shared by the REPL's files ---- */

/* A list of distinct strings (malloc'd copies). */
typedef struct Words {
    char **v;
    size_t n, cap;
} Words;

bool words_has(const Words *w, const char *s, size_t n);
/* Adds a copy of s[0..n) unless present; false on OOM. */
bool words_add(Words *w, const char *s, size_t n);
void words_free(Words *w);

/* The `:` commands: their names, arguments and help (repl_help.c); repl.c runs
 * them by the same ids. */
typedef enum ReplCommandId {
    CMD_HELP, CMD_LOAD, CMD_SAVE, CMD_LIST, CMD_SHOW, CMD_SHAPE, CMD_EXPLAIN, CMD_RUN,
    CMD_TIME, CMD_SET, CMD_EMIT, CMD_DROP, CMD_UNDO, CMD_RESET, CMD_QUIT, CMD_COUNT
} ReplCommandId;

typedef struct ReplCommandDoc {
    const char *name; /* with the ':' */
    const char *args;
    const char *help; /* lines after the first are indented for the listing */
} ReplCommandDoc;

extern const ReplCommandDoc REPL_COMMANDS[CMD_COUNT];

/* The command called `name` (":load" or "load"; the exact name), or CMD_COUNT. */
ReplCommandId repl_command_find(const char *name, size_t n);

/* Whether s[0..n) names a builtin programs call (the compiler's table; without
 * case). */
bool repl_is_builtin(const char *s, size_t n);

/* `:help NAME`: prints the help of a builtin (signature, result axes, what it
 * does, an example) or of a command, without case. False when NAME is neither;
 * then *near is the nearest name (NULL: none near). */
bool repl_help_topic(FILE *f, const char *name, const char **near);

/* The settings of `:set` (repl_settings.c): each key, and for those that take
 * one of a list of values, the list (the same :set checks against). */
typedef struct ReplSetting {
    const char *key;
    const char *const *values; /* NULL: a number, size or NAME=VALUE */
    size_t n_values;
    const char *expects; /* what the value is: "a count >= 0", "on or off"... */
} ReplSetting;

extern const char *const REPL_MODES[3], *const REPL_STRATEGIES[2], *const REPL_PROJECTIONS[2],
    *const REPL_PRECISIONS[4], *const REPL_DEVICES[3], *const REPL_SWITCHES[2],
    *const REPL_SYNTAXES[2];
extern const ReplSetting REPL_SETTINGS[];
extern const size_t REPL_N_SETTINGS;

/* ---- completion (repl_complete.c) ---- */

/* What Tab may put in place of the word before the cursor. */
typedef struct ReplCompletion {
    size_t start, end; /* the word: line[start..end), end being the cursor */
    Words cands;   /* whole replacements of the word, sorted */
    const char *unique_suffix; /* added after a single candidate: " ", "\"" or "" */
} ReplCompletion;

/* The candidates for line[0..cursor): after `:load `/`:save ` and inside an open
 * quote file names (directories end in '/'); after `:set ` the keys, after
 * `:set KEY ` its values; after `:help ` builtins and commands; a `:` word at the
 * start of the line the commands; elsewhere `tensors` and the builtins. False
 * on OOM; no candidates is not an error. */
bool repl_complete(const char *line, size_t cursor, const Words *tensors, ReplCompletion *out);
void repl_completion_free(ReplCompletion *c);

/* The text Tab inserts at the cursor (malloc'd, may be ""): what all candidates
 * share beyond the typed word, and the suffix when one candidate is left. NULL
 * on OOM. *show: several candidates and nothing to insert (list them). */
char *repl_completion_text(const ReplCompletion *c, bool *show);

#endif /* FUSE_TOOLS_REPL_H */
