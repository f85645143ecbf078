#!/usr/bin/env python3
"""Write a Fuse program that is a chain of N one-line equations.

The compile-time benchmark of issues 11 and 14: compile time must grow
linearly with the number of equations.

    python3 bench/chain.py 1000 > chain.fuse
    FUSE_JIT_CACHE_DIR=$(mktemp -d) build/fuse-jit run chain.fuse --time
    python3 bench/chain.py 1000 --expected      # the values ZN must have

Equal equations compile to equal kernels, which the code cache compiles once;
--distinct adds a different constant to each equation so that none are equal.
"""

import argparse
import sys

KINDS = ("copy", "relu", "two", "contract")


def rhs_of(kind, k, distinct):
    """The right-hand side of equation k (Zk from Zk-1)."""
    p = k - 1
    rhs = {"copy": "Z%d[i]" % p,
           "relu": "relu(Z%d[i]) + 1" % p,
           "two": "Z%d[i] B[i] + B[i]" % p,
           "contract": "M[i,j] Z%d[j,c]" % p}[kind]
    return rhs + (" + %d" % k if distinct else "")


def chain(n, kind, size, distinct):
    """Return the program text of an n-equation chain."""
    if kind == "contract":
        z0 = [[float(r * size + c) for c in range(size)] for r in range(size)]
        m = [[1.0 if c == (r + 1) % size else 0.0 for c in range(size)]
             for r in range(size)]
        out = ["Z0[i,c] = const(%s)" % z0, "M[i,j] = const(%s)" % m]
        lhs = "Z%d[i,c]"
    else:
        out = ["Z0[i] = const([1.0, 2.0, 3.0])"]
        if kind == "two":
            out.append("B[i] = const([0.5, -0.25, 0.125])")
        lhs = "Z%d[i]"
    out += [(lhs % k) + " = " + rhs_of(kind, k, distinct) for k in range(1, n + 1)]
    out.append("export Z%d" % n)
    return "\n".join(out) + "\n"


def expected(n, kind, size, distinct):
    """Return the values of ZN (flattened, C order), computed in Python."""
    if kind == "contract":
        z = [[float(r * size + c) for c in range(size)] for r in range(size)]
    else:
        z = [[1.0], [2.0], [3.0]]
    b = [0.5, -0.25, 0.125]
    for k in range(1, n + 1):
        if kind == "contract":  # M shifts the rows up by one
            z = [list(z[(r + 1) % size]) for r in range(size)]
        elif kind == "relu":
            z = [[max(v[0], 0.0) + 1.0] for v in z]
        elif kind == "two":
            z = [[v[0] * w + w] for v, w in zip(z, b)]
        if distinct:
            z = [[v + k for v in row] for row in z]
    return [v for row in z for v in row]


def main():
    ap = argparse.ArgumentParser(
        description="Write a chain of N Fuse equations, Zk computed from Zk-1, ending "
                    "in 'export ZN' (the compile-time benchmark of issues 11 and 14).")
    ap.add_argument("n", type=int, help="number of equations after Z0")
    ap.add_argument("--kind", choices=KINDS, default="copy",
                    help="copy: Zk[i] = Zk-1[i]; relu: relu(Zk-1[i]) + 1; "
                         "two: Zk-1[i] B[i] + B[i] (a second tensor); "
                         "contract: Zk[i,c] = M[i,j] Zk-1[j,c], M a SIZE x SIZE "
                         "cyclic shift (default: copy)")
    ap.add_argument("--size", type=int, default=3,
                    help="axis size of the contract chain (default 3; 32 and up "
                         "uses the packed contraction kernels)")
    ap.add_argument("--distinct", action="store_true",
                    help="add k to equation k, so that no two kernels are equal")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    ap.add_argument("--expected", action="store_true",
                    help="print the expected values of ZN (flattened) instead")
    a = ap.parse_args()
    if a.n < 1 or a.size < 1:
        ap.error("n and --size must be at least 1")
    if a.expected:
        vals = expected(a.n, a.kind, a.size, a.distinct)
        text = " ".join("%.9g" % v for v in vals) + "\n"
    else:
        text = chain(a.n, a.kind, a.size, a.distinct)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
