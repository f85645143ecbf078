/*
 * fuzz.h: what the libFuzzer targets of test/fuzz share: a per-process scratch
 * directory for the readers that take paths, and tensor comparison for the
 * targets that read one input two ways.
 */
#ifndef FUSE_FUZZ_H
#define FUSE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusejit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's scratch directory: made on first use under /dev/shm (else
 * $TMPDIR, else /tmp) and removed, with its files, at exit. */
const char *fuzz_dir(void);

/* The path of `name` in the scratch directory (static storage, valid until the
 * next call). */
const char *fuzz_path(const char *name);

/* Writes n bytes to `name` in the scratch directory (replacing it) and returns
 * its path as fuzz_path does. Aborts when it cannot. */
const char *fuzz_write(const char *name, const void *data, size_t n);

/* Bytes of a tensor's data (0 when its shape is not valid). */
size_t fuzz_tensor_bytes(const fuse_tensor *t);

/* Aborts (a finding) unless a and b have the same dtype, shape and bytes. */
void fuzz_assert_same(const fuse_tensor *a, const fuse_tensor *b, const char *what);

#endif /* FUSE_FUZZ_H */
