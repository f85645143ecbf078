#!/usr/bin/env python3
"""modes_tc.py: times the transitive closure of a random directed graph in
fixpoint mode with both strategies. Writes edge.npy (float32, N x N,
each node gets DEG random successors, fixed seed) and tc.fuse into a temporary
directory, runs `fuse-jit run --mode fixpoint --fixpoint-strategy S --explain-json`
and prints the wall time, the sweeps and the summed kernel time of each strategy.

usage: bench/modes_tc.py FUSE_JIT [N=2000] [DEG=1.2]
"""
import json, os, random, struct, subprocess, sys, tempfile, time

def write_npy(path, n, cells):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, n)
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * pad + "\n"
    data = bytearray(4 * n * n)
    one = struct.pack("<f", 1.0)
    for i, j in cells:
        data[4 * (i * n + j):4 * (i * n + j) + 4] = one
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(data)

def main():
    exe = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    deg = float(sys.argv[3]) if len(sys.argv) > 3 else 1.2
    rng = random.Random(6)
    cells = {(rng.randrange(n), rng.randrange(n)) for _ in range(int(n * deg))}
    d = tempfile.mkdtemp(prefix="fuse_bench_tc.")
    write_npy(os.path.join(d, "edge.npy"), n, cells)
    with open(os.path.join(d, "tc.fuse"), "w") as f:
        f.write('Edge(x,y) = "edge.npy"\nPath(x,y) = Edge(x,y)\n'
                'Path(x,z) = Path(x,y) Edge(y,z)\nexport Path\n')
    results = {}
    for strat in ("synchronous", "semi_naive"):
        t0 = time.perf_counter()
        p = subprocess.run([exe, "run", os.path.join(d, "tc.fuse"), "--mode", "fixpoint",
                            "--max-iters", "1000", "--fixpoint-strategy", strat,
                            "--out", os.path.join(d, strat + ".npy"), "--explain-json"],
                           capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        trace = json.loads(p.stdout)
        comp = [c for c in trace["components"] if c["recursive"]][0]
        kernel_ms = sum(e["duration_ms"] for e in trace["entries"] if e["name"] == "Path")
        runs = sum(1 for e in trace["entries"]
                   if e["name"] == "Path" and e["status"] in ("evaluated", "unchanged"))
        results[strat] = open(os.path.join(d, strat + ".npy"), "rb").read()
        print("%-12s n=%d edges=%d sweeps=%d kernel_runs=%d kernel_ms=%.1f wall_s=%.2f"
              % (strat, n, len(cells), comp["sweeps"], runs, kernel_ms, wall))
    print("results equal:", results["synchronous"] == results["semi_naive"])

if __name__ == "__main__":
    main()
