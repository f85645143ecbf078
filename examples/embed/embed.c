/*
 * embed.c: a host application of libfusejit. It compiles one Fuse program for its
 * own buffers (a 3x4 weight matrix, borrowed without a copy, and an input vector,
 * copied), runs it twice with different inputs, prints the results and checks
 * them against the same arithmetic done here in C. Build it against an installed
 * fuse-jit with the Makefile beside it (pkg-config --cflags --libs fusejit).
 *
 * Built with -DEMBED_WITH_LIBFUSE (make WITH_LIBFUSE=1), it also includes and links
 * the FUSE filesystem library (Debian's libfuse-dev), whose header, library and
 * pkg-config names fuse-jit must not take: both work side by side.
 */
#include <stdio.h>
#include <stdlib.h>

#ifdef EMBED_WITH_LIBFUSE
#define FUSE_USE_VERSION 26
#include <fuse.h>
#endif
#include <fusejit.h>

enum { ROWS = 3, COLS = 4 };

/* W and X are sources the host binds; the file names are never read. */
static const char PROGRAM[] = "W[i,k] = \"w.npy\"\n"
                              "X[k] = \"x.npy\"\n"
                              "H[i] = relu(W[i,k] X[k])\n"
                              "Total = H[i]\n"
                              "export H\n"
                              "export Total\n";

/* Prints the outputs of one run and compares them with the host's own result. */
static int report(int run, const fuse_outputs *out, const float *w, const float *x)
{
    const fuse_tensor *h = fuse_outputs_find(out, "H");
    const fuse_tensor *total = fuse_outputs_find(out, "Total");
    if (!h || !total || h->rank != 1 || h->shape[0] != ROWS || total->rank != 0)
        return 1;
    const float *hv = h->data;
    float sum = 0;
    int bad = 0;
    printf("run %d: H = [", run);
    for (int i = 0; i < ROWS; i++) {
        float want = 0;
        for (int k = 0; k < COLS; k++)
            want += w[i * COLS + k] * x[k];
        want = want > 0 ? want : 0;
        sum += want;
        bad |= hv[i] < want - 1e-4f || hv[i] > want + 1e-4f;
        printf("%s%g", i ? ", " : "", hv[i]);
    }
    float tv = *(const float *)total->data;
    bad |= tv < sum - 1e-3f || tv > sum + 1e-3f;
    printf("], Total = %g%s\n", tv, bad ? "  (WRONG)" : "");
    return bad;
}

static int run_once(fuse_ctx *ctx, fuse_runner *run, int n, float *w, const float *x,
                    fuse_input *in)
{
    fuse_outputs *out = NULL;
    in[1].tensor.data = (void *)x;
    if (fuse_runner_run(run, in, 2, &out) != FUSE_OK) {
        fprintf(stderr, "run %d failed:\n%s\n", n, fuse_ctx_error(ctx));
        return 1;
    }
    int rc = report(n, out, w, x);
    fuse_outputs_free(out);
    return rc;
}

int main(void)
{
    /* 64-byte aligned float32: the library reads W in place (zero-copy). */
    float *w = aligned_alloc(64, 64 * sizeof(float));
    float x1[COLS] = {1, 0, -1, 2}, x2[COLS] = {0.5f, 0.5f, 0.5f, -3};
    if (!w)
        return 1;
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = (float)(i % 5) - 1.5f;
    fuse_input in[2] = {
        {"W", {FUSE_F32, 2, {ROWS, COLS}, w}, 1},
        {"X", {FUSE_F32, 1, {COLS}, x1}, 0},
    };
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    int rc = 1;
    printf("libfusejit %s\n", fuse_version_string());
#ifdef EMBED_WITH_LIBFUSE
    printf("libfuse %d\n", fuse_version());
#endif
    if (fuse_ctx_new(&ctx) != FUSE_OK) {
        fputs("cannot create a fuse context\n", stderr);
    } else if (fuse_program_from_text(ctx, PROGRAM, "embed.fuse", &prog) != FUSE_OK ||
               fuse_runner_new(prog, NULL, in, 2, &run) != FUSE_OK) {
        fprintf(stderr, "%s\n", fuse_ctx_error(ctx));
    } else {
        rc = run_once(ctx, run, 1, w, x1, in) | run_once(ctx, run, 2, w, x2, in);
    }
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    free(w);
    return rc;
}
