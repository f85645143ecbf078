/*
 * fold.h: private to lower/: copies the group kernels leave out (fold.c).
 */
#ifndef FUSE_LOWER_FOLD_H
#define FUSE_LOWER_FOLD_H

#include <stdbool.h>

#include "ir.h"

/* Whether op i of g is a call (softmax, a map, ...) whose temporary result the
 * next op only copies into the group's tensor, so the call can write that
 * tensor itself and the copy can be left out. *out is then the tensor the call
 * writes instead of its temporary. */
bool fold_call_copy(const IrProgram *p, const Group *g, int i, int *out);

#endif /* FUSE_LOWER_FOLD_H */
