#!/usr/bin/env bash
# closure.sh: the semi-naive transitive closure of a 4,000-node random graph
# (about 1.5 edges per node), right-linear and left-linear, in one process.
#
#   bench/closure.sh BUILD_DIR [RUNS=5] [BASE_BUILD_DIR]
#
# Each run is `taskset -c 0 BUILD_DIR/fuse-jit run P --mode fixpoint
# --fixpoint-strategy semi_naive --max-iters 1000 --threads 1 --time --out
# OUT.npz` with the code cache warm (one run of BUILD_DIR first); prints the median
# "time: run" per program and build. With BASE_BUILD_DIR, the two builds run
# in turn (same inputs, same minutes) and the ratio base / build is printed; a
# run that takes more than LIMIT seconds (default 120) is cut, shown as
# ">LIMIT" and not repeated. Both builds' results must equal numpy's closure.
set -euo pipefail
build="$(cd "${1:?usage: closure.sh BUILD_DIR [RUNS] [BASE_BUILD_DIR]}" && pwd)"
runs="${2:-5}"
base="${3:-}"
[ -n "$base" ] && base="$(cd "$base" && pwd)"
limit="${LIMIT:-120}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export FUSE_JIT_CACHE_DIR="$work/cache" OMP_NUM_THREADS=1

/usr/bin/python3 - "$work" <<'PY'
import sys, numpy as np
w = sys.argv[1]
g = 4000
e = (np.random.default_rng(7).random((g, g)) < 1.5 / g).astype(np.float32)
np.save(f"{w}/edge.npy", e)
p = e.astype(bool)
while True:  # the closure by repeated boolean products
    q = p | ((p.astype(np.float32) @ e) > 0)
    if (q == p).all():
        break
    p = q
np.save(f"{w}/want.npy", p.astype(np.float32))
PY
printf 'Edge(x,y) = "edge.npy"\nPath(x,y) = Edge(x,y)\nPath(x,z) = Path(x,y) Edge(y,z)\nexport Path\n' \
    > "$work/right.fuse"
printf 'Edge(x,y) = "edge.npy"\nPath(x,y) = Edge(x,y)\nPath(x,z) = Edge(x,y) Path(y,z)\nexport Path\n' \
    > "$work/left.fuse"

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# run BIN PROGRAM: prints the run's milliseconds (">LIMIT" when cut)
run() {
    if ! timeout "$limit" taskset -c 0 "$1/fuse-jit" run "$work/$2.fuse" --mode fixpoint \
        --fixpoint-strategy semi_naive --max-iters 1000 --threads 1 --time \
        --out "$work/out.npz" 2> "$work/err"; then
        echo ">$((limit * 1000))"
        return
    fi
    /usr/bin/python3 -c "
import sys, numpy as np
got = np.load(sys.argv[1])['Path']; want = np.load(sys.argv[2])
sys.exit(0 if (got == want).all() else 1)" "$work/out.npz" "$work/want.npy" ||
        { echo "closure.sh: $1 $2: wrong closure" >&2; exit 1; }
    awk '/^time: run/ {print $3}' "$work/err"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for prog in right left; do
    builds=("$build")
    [ -n "$base" ] && builds+=("$base")
    run "$build" "$prog" > /dev/null # warm the code cache (the base may take minutes)
    declare -A times=() cut=()
    for ((i = 0; i < runs; i++)); do
        for b in "${builds[@]}"; do
            [ -n "${cut[$b]:-}" ] && continue # once cut, not run again
            t=$(run "$b" "$prog")
            times[$b]+="$t "
            [[ "$t" == ">"* ]] && cut[$b]=1
        done
    done
    for b in "${builds[@]}"; do
        echo "$prog $b run_ms: ${times[$b]}"
    done
    m=$(tr ' ' '\n' <<< "${times[$build]}" | grep . | median)
    if [ -n "$base" ]; then
        if grep -q '>' <<< "${times[$base]}"; then
            echo "$prog: median $m ms; base cut at ${limit} s"
        else
            mb=$(tr ' ' '\n' <<< "${times[$base]}" | grep . | median)
            echo "$prog: median $m ms, base $mb ms, base / build $(awk -v a="$mb" -v b="$m" 'BEGIN {printf "%.2f", a / b}')x"
        fi
    else
        echo "$prog: median $m ms"
    fi
    unset times cut
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
