/*
 * bench_workloads.c: fuse-bench's built-in suite. Each workload is program text
 * whose sources are bound with fuse_input to random data (a fixed-seed
 * generator, 64-byte aligned, borrowed: no copy is timed), so no file is read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* xorshift64: a fixed-seed generator so every run times the same data. */
static float rand_unit(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

/* Adds a source input of the given shape filled with random data. */
static int add_input(Workload *w, const char *name, int rank, const int64_t *shape, uint64_t *seed)
{
    if (w->n_inputs >= BENCH_MAX_INPUTS)
        return 1;
    fuse_input *in = &w->inputs[w->n_inputs++];
    memset(in, 0, sizeof *in);
    in->name = name;
    in->tensor.dtype = FUSE_F32;
    in->tensor.rank = rank;
    int64_t n = 1;
    for (int k = 0; k < rank; k++)
        n *= in->tensor.shape[k] = shape[k];
    if (w->shapes_only)
        return 0;
    /* 64-byte aligned and borrowed: runs use the data in place (no copy timed) */
    float *d = aligned_alloc(64, ((size_t)n * sizeof *d + 63) / 64 * 64);
    if (!d)
        return 1;
    in->borrow = 1;
    for (int64_t i = 0; i < n; i++)
        d[i] = w->is_bool ? (rand_unit(seed) > 0.9f ? 1.0f : 0.0f) : rand_unit(seed);
    in->tensor.data = d;
    return 0;
}

void bench_workload_free(Workload *w)
{
    for (size_t i = 0; i < w->n_inputs; i++)
        free(w->inputs[i].tensor.data);
    w->n_inputs = 0;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static int make_matmul(Workload *w, int64_t n, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\nexport C\n");
    w->flops = 2.0 * (double)n * (double)n * (double)n;
    w->product = BENCH_MATMUL;
    w->n = n;
    return add_input(w, "A", 2, SHAPE(n, n), seed) || add_input(w, "B", 2, SHAPE(n, n), seed);
}

static int make_batched(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "A[b,i,k] = \"a.npy\"\nB[b,k,j] = \"b.npy\"\n"
             "C[b,i,j] = A[b,i,k] B[b,k,j]\nexport C\n");
    w->flops = 2.0 * 32 * 256.0 * 256 * 256;
    w->product = BENCH_BATCHED;
    w->n = 256;
    return add_input(w, "A", 3, SHAPE(32, 256, 256), seed) ||
           add_input(w, "B", 3, SHAPE(32, 256, 256), seed);
}

static int make_4index(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "A[a,e,b,f] = \"a.npy\"\nB[e,c,f,d] = \"b.npy\"\n"
             "C[a,b,c,d] = A[a,e,b,f] B[e,c,f,d]\nexport C\n");
    w->flops = 2.0 * 32 * 32 * 32 * 32 * 32 * 32;
    w->product = BENCH_4INDEX;
    w->n = 32;
    return add_input(w, "A", 4, SHAPE(32, 32, 32, 32), seed) ||
           add_input(w, "B", 4, SHAPE(32, 32, 32, 32), seed);
}

/* One attention head: 512 positions, 512 features, head dimension 64. */
static int make_attention(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "X[p,f] = \"x.npy\"\nWq[f,h] = \"wq.npy\"\nWk[f,h] = \"wk.npy\"\n"
             "Wv[f,h] = \"wv.npy\"\n"
             "Q[p,h] = X[p,f] Wq[f,h]\nK[p,h] = X[p,f] Wk[f,h]\nV[p,h] = X[p,f] Wv[f,h]\n"
             "S[p,q] = 0.125 Q[p,h] K[q,h]\nP[p,q.] = softmax(S[p,q])\n"
             "O[p,h] = P[p,q] V[q,h]\nexport O\n");
    w->flops = 3 * 2.0 * 512 * 512 * 64 + 2 * 2.0 * 512 * 512 * 64;
    return add_input(w, "X", 2, SHAPE(512, 512), seed) ||
           add_input(w, "Wq", 2, SHAPE(512, 64), seed) ||
           add_input(w, "Wk", 2, SHAPE(512, 64), seed) ||
           add_input(w, "Wv", 2, SHAPE(512, 64), seed);
}

/* A two-layer perceptron on a batch of 256: 1024 -> 1024 (relu) -> 256. */
static int make_mlp(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "X[b,i] = \"x.npy\"\nW1[i,h] = \"w1.npy\"\nB1[h] = \"b1.npy\"\n"
             "W2[h,o] = \"w2.npy\"\nB2[o] = \"b2.npy\"\n"
             "Z[b,h] = X[b,i] W1[i,h] + B1[h]\nH[b,h] = relu(Z[b,h])\n"
             "Y[b,o] = H[b,h] W2[h,o] + B2[o]\nexport Y\n");
    w->flops = 2.0 * 256 * 1024 * 1024 + 2.0 * 256 * 1024 * 256;
    return add_input(w, "X", 2, SHAPE(256, 1024), seed) ||
           add_input(w, "W1", 2, SHAPE(1024, 1024), seed) ||
           add_input(w, "B1", 1, SHAPE(1024), seed) ||
           add_input(w, "W2", 2, SHAPE(1024, 256), seed) || add_input(w, "B2", 1, SHAPE(256), seed);
}

/* Eight elementwise steps over a 1024 x 1024 tensor. */
static int make_chain(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "X[i,j] = \"x.npy\"\nY[i,j] = \"y.npy\"\n"
             "A1[i,j] = X[i,j] Y[i,j]\nA2[i,j] = relu(A1[i,j])\nA3[i,j] = A2[i,j] + X[i,j]\n"
             "A4[i,j] = 0.5 A3[i,j]\nA5[i,j] = tanh(A4[i,j])\nA6[i,j] = A5[i,j] Y[i,j]\n"
             "A7[i,j] = abs(A6[i,j])\nA8[i,j] = A7[i,j] + 1.0\nexport A8\n");
    w->flops = 0;
    return add_input(w, "X", 2, SHAPE(1024, 1024), seed) ||
           add_input(w, "Y", 2, SHAPE(1024, 1024), seed);
}

/* Grandparent over 512 people: a boolean join with a projected axis. */
static int make_bool(Workload *w, uint64_t *seed)
{
    snprintf(w->text, sizeof w->text,
             "Parent(x,y) = \"parent.npy\"\n"
             "Grand(x,z) = Parent(x,y) Parent(y,z)\nexport Grand\n");
    w->flops = 2.0 * 512 * 512 * 512;
    w->is_bool = 1;
    return add_input(w, "Parent", 2, SHAPE(512, 512), seed);
}

const char *const bench_workload_names[] = {
    "matmul-256", "matmul-512",    "matmul-1024",  "matmul-2048",       "batched-32x256",
    "4index-32",  "attention-512", "mlp-256x1024", "elementwise-chain", "bool-join-512"};

int bench_workload_count(void)
{
    return (int)(sizeof bench_workload_names / sizeof bench_workload_names[0]);
}

int bench_workload_make(int i, Workload *w, bool with_data)
{
    memset(w, 0, sizeof *w);
    if (i < 0 || i >= bench_workload_count())
        return 1;
    w->name = bench_workload_names[i];
    w->shapes_only = !with_data;
    /* each workload its own stream: its data does not depend on the others */
    uint64_t state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(i + 1) * 0xbf58476d1ce4e5b9ull);
    uint64_t *seed = &state;
    switch (i) {
    case 0: return make_matmul(w, 256, seed);
    case 1: return make_matmul(w, 512, seed);
    case 2: return make_matmul(w, 1024, seed);
    case 3: return make_matmul(w, 2048, seed);
    case 4: return make_batched(w, seed);
    case 5: return make_4index(w, seed);
    case 6: return make_attention(w, seed);
    case 7: return make_mlp(w, seed);
    case 8: return make_chain(w, seed);
    default: return make_bool(w, seed);
    }
}
