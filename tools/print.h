/*
 * print.h: text the fuse-jit tools print (print.c): tensors, laid out as NumPy's
 * str() of an array with its default print options (precision 8, line width 75,
 * threshold 1000, edge items 3) and suppress=True, so values read like
 * `print(array)` in Python; and the library's log messages.
 */
#ifndef FUSE_TOOLS_PRINT_H
#define FUSE_TOOLS_PRINT_H

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

#endif /* FUSE_TOOLS_PRINT_H */
