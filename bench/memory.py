#!/usr/bin/env python3
"""memory.py: peak resident memory of bench/memory.fuse against NumPy on the same
data, in the same minute.

Writes A.npy and B.npy (4096 x 4096 float32, seeded) and a copy of memory.fuse
into DIR (default /tmp/fuse-mem), then runs, alternating, --repeat times each:
    /usr/bin/time -v FUSE_JIT run DIR/memory.fuse --out DIR/s.npz
    /usr/bin/time -v python3 -c <the same program in NumPy>
and the same again hand-tuned (inputs memory-mapped, relu and + in place),
and prints each run's "Maximum resident set size" in MB (10^6 bytes) and whether
the last fuse-jit's S agrees with NumPy's (relative 1e-3). MB are 10^6
bytes (time -v reports KiB). FUSE_JIT_CACHE_DIR is a fresh directory unless
set; a first run compiles, so each binary's first run is a cold one.

    /usr/bin/python3 bench/memory.py FUSE_JIT [FUSE_JIT ...] [--dir DIR] [--n 4096] [--repeat 3]

Several fuse-jit binaries (e.g. before and after a change) run in turn, each
named by its path.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

# The program as one would write it in NumPy, and a hand-tuned one (inputs
# memory-mapped, relu and + in place in C's buffer).
NUMPY_PROGRAM = r"""
import sys
import numpy as np
d = sys.argv[1]
a = np.load(d + "/A.npy")
b = np.load(d + "/B.npy")
c = a @ b
h = np.maximum(c, 0) + a
s = h.sum(axis=1)
np.save(d + "/s_numpy.npy", s)
"""
NUMPY_TUNED = r"""
import sys
import numpy as np
d = sys.argv[1]
a = np.load(d + "/A.npy", mmap_mode="r")
b = np.load(d + "/B.npy", mmap_mode="r")
c = a @ b
np.maximum(c, 0, out=c)
c += a
s = c.sum(axis=1)
np.save(d + "/s_tuned.npy", s)
"""


def max_rss_mb(cmd, env):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", r.stderr).group(1)
    return kb * 1024 / 1e6, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fuse_jit", nargs="+")
    ap.add_argument("--dir", default="/tmp/fuse-mem")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--numpy", action=argparse.BooleanOptionalAction, default=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "memory.fuse"), a.dir)
    rng = np.random.default_rng(14)
    for name in ("A", "B"):
        path = os.path.join(a.dir, name + ".npy")
        if not os.path.exists(path) or np.load(path, mmap_mode="r").shape != (a.n, a.n):
            np.save(path, rng.standard_normal((a.n, a.n), dtype=np.float32))
    env = dict(os.environ)
    env.setdefault("FUSE_JIT_CACHE_DIR", tempfile.mkdtemp())
    fuse_cmds = [[b, "run", os.path.join(a.dir, "memory.fuse"), "--out",
                  os.path.join(a.dir, "s.npz")] for b in a.fuse_jit]
    np_cmd = ["/usr/bin/python3", "-c", NUMPY_PROGRAM, a.dir]
    tuned_cmd = ["/usr/bin/python3", "-c", NUMPY_TUNED, a.dir]
    print("inputs: %.0f MB" % (2 * a.n * a.n * 4 / 1e6))
    for r in range(a.repeat):
        for cmd in fuse_cmds:
            mb, wall = max_rss_mb(cmd, env)
            print("%s run %d: max RSS %.1f MB, wall %s" % (cmd[0], r + 1, mb, wall))
        if a.numpy:
            mb, wall = max_rss_mb(np_cmd, env)
            print("numpy     run %d: max RSS %.1f MB, wall %s" % (r + 1, mb, wall))
            mb, wall = max_rss_mb(tuned_cmd, env)
            print("numpy-inplace run %d: max RSS %.1f MB, wall %s" % (r + 1, mb, wall))
    if a.numpy:
        s = np.load(os.path.join(a.dir, "s.npz"))["S"]
        ref = np.load(os.path.join(a.dir, "s_numpy.npy"))
        err = np.max(np.abs(s - ref)) / max(np.max(np.abs(ref)), 1e-30)
        print("S agrees with NumPy: %s (max relative error %.2e)" % (err < 1e-3, err))


if __name__ == "__main__":
    main()
