/*
 * harness.h: helpers shared by the suites that run the fuse-jit binary
 * (test_cli, test_programs). Each test runs in its own scratch directory.
 */
#ifndef FUSE_TEST_HARNESS_H
#define FUSE_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fusejit.h"

typedef struct Result {
    int code; /* exit status, or 128 + signal */
    char *out;
    char *err;
} Result;

extern char scratch_root[4096];
extern char scratch[4200];

void root_setup(void);
void root_teardown(void);
void scratch_setup(void);
const char *spath(const char *name);
char *slurp(const char *path);
/* Writes n bytes to a full path (write_text takes a name in the scratch directory). */
void write_file(const char *path, const void *data, size_t n);
void write_text(const char *name, const char *text);
bool file_exists(const char *name);
void write_npy(const char *name, int rank, const int64_t *shape, const float *data);
float *take_f32(fuse_tensor *t, const char *what, int rank, const int64_t *shape);
float *read_npy(const char *name, int rank, const int64_t *shape);
float *read_member(const char *npz, const char *member, int rank, const int64_t *shape);
void fill_random(float *x, int64_t n, unsigned seed, float lo, float hi);
void expect_close(const char *what, const float *got, const double *want, int64_t n);
void result_free(Result *r);
Result run_cli(const char *first, ...);
/* Runs the binary `bin` with the arguments first, ... (NULL-terminated) in ap, as
 * run_cli does fuse-jit. */
Result run_tool_va(const char *bin, const char *first, va_list ap);
void expect_exit(const Result *r, int code);
void run_program(const char *text, const char *out);
/* A test case whose tests each run in a fresh scratch directory under one root,
 * with a 120 s timeout. */
struct TCase *harness_case(const char *name);

#endif /* FUSE_TEST_HARNESS_H */
