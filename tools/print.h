/*
 * print.h: text rendering of tensors for the fuse-jit command (print.c). The layout
 * follows NumPy's str() of an array with its default print options (precision 8,
 * line width 75, threshold 1000, edge items 3) and suppress=True, so values read
 * like `print(array)` in Python.
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

#endif /* FUSE_TOOLS_PRINT_H */
