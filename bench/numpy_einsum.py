#!/usr/bin/env python3
"""numpy_einsum.py: the NumPy baseline of fuse-bench's suite (optional: CI never
runs it). Times the suite's workloads with NumPy: matrix products with `@`, the
batched product and the 4-index contraction with einsum(..., optimize=True), and
the attention block, the MLP and the elementwise chain as the same steps
written in NumPy. Prints min and median of --repeat runs in fuse-bench's format. Debian's NumPy calls the
system BLAS (OpenBLAS here): run it with OPENBLAS_CORETYPE=Cooperlake and
OPENBLAS_NUM_THREADS=1 for a single-thread comparison (run-baselines.sh does).

    python3 numpy_einsum.py [--repeat N] [--only NAME]
"""
import argparse
import time

import numpy as np


def timed(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[0], float(np.median(ts))


def rand(*shape):
    return (np.random.default_rng(len(shape)).random(shape, dtype=np.float32) * 2 - 1)


def softmax_rows(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def workloads():
    for n in (256, 512, 1024, 2048):
        a, b = rand(n, n), rand(n, n)
        yield f"matmul-{n}", (lambda a=a, b=b: a @ b), 2.0 * n ** 3
    a, b = rand(32, 256, 256), rand(32, 256, 256)
    yield "batched-32x256", lambda: np.einsum("bik,bkj->bij", a, b, optimize=True), \
        2.0 * 32 * 256 ** 3
    a4, b4 = rand(32, 32, 32, 32), rand(32, 32, 32, 32)
    yield "4index-32", lambda: np.einsum("aebf,ecfd->abcd", a4, b4, optimize=True), \
        2.0 * 32 ** 6
    x, wq, wk, wv = rand(512, 512), rand(512, 64), rand(512, 64), rand(512, 64)

    def attention():
        q, k, v = x @ wq, x @ wk, x @ wv
        return softmax_rows(0.125 * (q @ k.T)) @ v
    yield "attention-512", attention, 3 * 2.0 * 512 * 512 * 64 + 2 * 2.0 * 512 * 512 * 64
    xm, w1, b1, w2, b2 = rand(256, 1024), rand(1024, 1024), rand(1024), rand(1024, 256), rand(256)
    yield "mlp-256x1024", lambda: np.maximum(xm @ w1 + b1, 0) @ w2 + b2, \
        2.0 * 256 * 1024 * 1024 + 2.0 * 256 * 1024 * 256
    xc, yc = rand(1024, 1024), rand(1024, 1024)

    def chain():
        a1 = xc * yc
        a2 = np.maximum(a1, 0)
        a3 = a2 + xc
        a4 = 0.5 * a3
        a5 = np.tanh(a4)
        a6 = a5 * yc
        a7 = np.abs(a6)
        return a7 + 1.0
    yield "elementwise-chain", chain, 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--only", default="", help="only workloads whose name contains this")
    args = ap.parse_args()
    print(f"{'numpy':<22} {'min_ms':>10} {'median_ms':>10} {'GFLOP/s':>9}")
    for name, fn, flops in workloads():
        if args.only not in name:
            continue
        mn, med = timed(fn, args.repeat)
        gflops = f"{flops / (med * 1e6):9.1f}" if flops else f"{'-':>9}"
        print(f"{name:<22} {mn:10.3f} {med:10.3f} {gflops}", flush=True)


if __name__ == "__main__":
    main()
