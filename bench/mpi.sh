#!/usr/bin/env bash
# mpi.sh: fuse-jit across MPI ranks, -np 1 against -np 2, one thread per rank.
#
#   bench/mpi.sh BUILD_DIR [RUNS=3] [WORKLOAD...]   (default: chain tc)
#
# Workloads (inputs made by numpy with fixed seeds in a scratch directory):
#   chain  D = (A B) B over 4096 x 4096 float32 (two products, 275 GFLOP)
#   tc     the transitive closure of a 4,000-node random graph (about 1.5 edges
#          per node), a semi-naive fixpoint
# Other processes on the machine slow -np 2 (both cores) more than -np 1: the
# load average before and after is printed. Each run is `mpirun -np R BUILD_DIR/fuse-jit run P --distributed --threads 1
# --time --out OUT.npz` with OMP_NUM_THREADS=1 and the code cache warm (one run
# first). Prints per workload and R: the median "time: run" (the program's run,
# rank 0) and whole-process wall time, the speedup of -np 2 over -np 1, and the
# bytes rank 0 moved (all-reduced, plus received in gathers and while writing
# --out) against the model. The run ends where the exports are computed: the
# .npz --out is written afterwards (outside "time: run", inside wall time), by
# rank 0, which receives the others' rows of the export 1 MiB at a time as it
# writes them (fuse_runner_run_save; before, the export was gathered to rank 0
# at the end of the run, inside "time: run").
#   chain: both products stay in row blocks (D reads C row for row); D, the
#          export, goes to rank 0 once, as it writes --out: rank 0 receives
#          the other ranks' rows, about (R-1)/R x n^2 x 4 bytes
#   tc:    the base sweep and the semi-naive sweeps stay in row blocks of Path
#          that the ranks claim as they go (each rank's rows of the next delta
#          depend only on its rows of this one); the ranks agree once at the
#          end (sweeps, convergence, and who ran which block: 4 bytes a
#          block; not counted); Path, the export, goes to rank 0 once, as it
#          writes --out: rank 0 receives the other ranks' blocks, about
#          (R-1)/R x n^2 x 4 bytes when the ranks ran as many blocks each
set -euo pipefail
build="$(cd "${1:?usage: mpi.sh BUILD_DIR [RUNS]}" && pwd)"
runs="${2:-3}"
shift $(( $# < 2 ? $# : 2 ))
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(chain tc)
bin="$build/fuse-jit"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export FUSE_JIT_CACHE_DIR="$work/cache" OMP_NUM_THREADS=1
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to core)

/usr/bin/python3 - "$work" <<'PY'
import sys, numpy as np
w = sys.argv[1]
r = np.random.default_rng(42)
n = 4096
np.save(f"{w}/a.npy", r.standard_normal((n, n), dtype=np.float32) / 64)
np.save(f"{w}/b.npy", r.standard_normal((n, n), dtype=np.float32) / 64)
g = 4000
np.save(f"{w}/edge.npy", (r.random((g, g)) < 1.5 / g).astype(np.float32))
PY
cat > "$work/chain.fuse" <<'F'
A[i,k] = "a.npy"
B[k,j] = "b.npy"
C[i,j] = A[i,k] B[k,j]
D[i,j] = C[i,k] B[k,j]
export D
F
cat > "$work/tc.fuse" <<'F'
Edge(x,y) = "edge.npy"
Path(x,y) = Edge(x,y)
Path(x,z) = Path(x,y) Edge(y,z)
export Path
F
tc_args=(--mode fixpoint --fixpoint-strategy semi_naive --max-iters 1000)

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# run WORKLOAD NP EXTRA...: one timed run; prints "run_ms wall_ms bytes"
run() {
    local w="$1" np="$2"
    shift 2
    local t0 t1
    t0=$(date +%s%N)
    "${mpi[@]}" -np "$np" "$bin" run "$work/$w.fuse" --distributed --threads 1 --time \
        --out "$work/$w-np$np.npz" "$@" 2> "$work/err"
    t1=$(date +%s%N)
    local ms bytes
    ms=$(awk '/^time: run/ {print $3}' "$work/err")
    bytes=$(awk '/^distributed:/ {print $8}' "$work/err")
    echo "$ms $(( (t1 - t0) / 1000000 )) $bytes"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for w in "${workloads[@]}"; do
    extra=()
    [ "$w" = tc ] && extra=("${tc_args[@]}")
    run "$w" 1 "${extra[@]}" > /dev/null # warm the code cache
    : > "$work/$w-1.txt"
    : > "$work/$w-2.txt"
    for _ in $(seq "$runs"); do # alternated, so a busy spell slows both alike
        run "$w" 1 "${extra[@]}" >> "$work/$w-1.txt"
        run "$w" 2 "${extra[@]}" >> "$work/$w-2.txt"
    done
    for np in 1 2; do
        echo "$w np=$np run_ms: $(awk '{print $1}' "$work/$w-$np.txt" | tr '\n' ' ')"
    done
    r1=$(awk '{print $1}' "$work/$w-1.txt" | median)
    r2=$(awk '{print $1}' "$work/$w-2.txt" | median)
    w1=$(awk '{print $2}' "$work/$w-1.txt" | median)
    w2=$(awk '{print $2}' "$work/$w-2.txt" | median)
    b2=$(head -1 "$work/$w-2.txt" | awk '{print $3}')
    same=$(/usr/bin/python3 -c "import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
print('yes' if all(np.array_equal(a[k].view(np.uint32), b[k].view(np.uint32)) for k in a) else 'no')" \
        "$work/$w-np1.npz" "$work/$w-np2.npz")
    echo "$w: run median np1 ${r1} ms, np2 ${r2} ms, speedup $(echo "$r1 / $r2" | bc -l | cut -c1-4)x;" \
         "wall np1 ${w1} ms, np2 ${w2} ms, speedup $(echo "$w1 / $w2" | bc -l | cut -c1-4)x;" \
         "np2 rank 0 moved ${b2} bytes; outputs identical: $same"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model chain: D to rank 0: (2-1)/2 x 4096^2 x 4 = $((4096 * 4096 * 4 / 2)) bytes received by rank 0"
echo "model tc: Path to rank 0: (2-1)/2 x 4000^2 x 4 = $((4000 * 4000 * 4 / 2)) bytes received by rank 0"
