/*
 * print.h: text the fuse-jit tools print (print.c): tensors, laid out as NumPy's
 * str() of an array with its default print options (precision 8, line width 75,
 * threshold 1000, edge items 3) and suppress=True, so values read like
 * `print(array)` in Python; and the library's log messages.
 */
#ifndef FUSE_TOOLS_PRINT_H
#define FUSE_TOOLS_PRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "fusejit.h"

/* The values of t as text without a trailing newline: nested brackets for arrays,
 * a bare number for a scalar. malloc'd (caller frees); NULL on OOM or when t has
 * an unknown dtype. */
char *cli_tensor_text(const fuse_tensor *t);

/* The shape as a Python tuple: "(2, 3)", "(3,)", "()". Writes at most n bytes
 * (NUL included) into buf. */
void cli_shape_text(const fuse_tensor *t, char *buf, size_t n);

/* Writes `# NAME shape=(..) dtype=..` and the values on the following lines.
 * Returns FUSE_E_NOMEM when the text cannot be built, FUSE_E_IO when f fails. */
fuse_status cli_print_export(FILE *f, const char *name, const fuse_tensor *t);

/* A fuse_log_fn for fuse_ctx_set_log: prints errors and warnings to
 * stderr as "TOOL: warning: MSG", TOOL being `user` (a const char *); drops info.
 * The library itself never prints. */
void cli_log(int level, const char *msg, void *user);

/* Diagnostics in colour, as clang prints them: a bold location, a red "error:",
 * magenta "warning:", cyan "note:", a bold message and a green caret line. */
typedef enum CliColor { CLI_COLOR_AUTO, CLI_COLOR_ALWAYS, CLI_COLOR_NEVER } CliColor;

/* "auto", "always" or "never" into *out; false for anything else. */
bool cli_color_parse(const char *when, CliColor *out);
/* The tools' choice (--color); the default is CLI_COLOR_AUTO. */
void cli_color_set(CliColor when);
/* Whether stderr gets colour: always, never, or (auto) when stderr is a terminal,
 * TERM is not "dumb" and NO_COLOR is unset or empty. */
bool cli_color_stderr(void);
/* text (diagnostic lines as the library formats them) with colour escapes;
 * malloc'd, NULL on OOM. Lines neither a diagnostic nor a caret stay as they are. */
char *cli_color_diags(const char *text);
/* Writes text to f, coloured when f is stderr and cli_color_stderr() says so. */
void cli_print_diags(FILE *f, const char *text);

#endif /* FUSE_TOOLS_PRINT_H */
