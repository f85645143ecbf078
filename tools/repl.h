/*
 * repl.h: the interactive session of fuse-jit (`fuse-jit repl [PROGRAM]`, and
 * `fuse-jit` with no arguments on a terminal). Implemented in repl.c on top of the
 * public API (include/fusejit.h) and libedit.
 */
#ifndef FUSE_TOOLS_REPL_H
#define FUSE_TOOLS_REPL_H

#include <stdio.h>

/* Runs a session reading stdin until :quit or end of input. `program` (may be
 * NULL) is loaded first, as by `:load`. On a terminal: line editing, history in
 * ~/.fuse_jit_history, tab completion and prompts; otherwise lines are read
 * plainly and no prompt is printed. Returns the exit status: 0, or 1 when stdin
 * is not a terminal and some entry failed (so a script can tell). */
int repl_main(const char *program);

/* Writes the help of the session: what entries do and the `:` commands. */
void repl_print_help(FILE *f);

#endif /* FUSE_TOOLS_REPL_H */
