#!/bin/sh
# interleave.sh: fuse-jit against its baselines one workload at a time, back to
# back, for ROUNDS rounds. This machine's speed drifts by 20-30% over minutes
# (a shared VM), so a suite run followed by a baseline run can compare a fast
# minute with a slow one; here each ratio compares runs seconds apart. Prints,
# per workload and round, fuse-jit's median and the baseline's (OpenBLAS's
# sgemm for matmul-N, NumPy for the others; NAME@openblas compares workload
# NAME with bench/sgemm_openblas.c's, e.g. 4index@openblas; single thread),
# then the median of the rounds' ratios (baseline / fuse-jit: above 1,
# fuse-jit is faster).
#
#   bench/interleave.sh BUILD_DIR [REPEAT] [ROUNDS] [WORKLOAD...]
set -eu
build=${1:?usage: interleave.sh BUILD_DIR [REPEAT] [ROUNDS] [WORKLOAD...]}
repeat=${2:-20}
rounds=${3:-5}
shift $(($# < 3 ? $# : 3))
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-clang-19} -O2 -o "$tmp/sgemm_openblas" "$here/sgemm_openblas.c" -lopenblas
export OPENBLAS_CORETYPE=Cooperlake OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
pin="taskset -c $(($(nproc --all) - 1))"
workloads=${*:-"matmul-256 matmul-512 matmul-1024 matmul-2048 batched 4index 4index@openblas
attention mlp elementwise"}
# fuse-bench name -> "openblas NAME" or "numpy NAME"
baseline() {
    case $1 in
    matmul-*) echo "openblas sgemm-${1#matmul-}" ;;
    *@openblas) echo "openblas ${1%@openblas}" ;;
    *) echo "numpy $1" ;;
    esac
}
# the median of fuse-bench's first workload in its --json file
median_ms() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["median_ms"])' "$1"; }
median_of() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), repeat $repeat, $rounds rounds, pinned: $pin"
printf '%-20s %5s %12s %12s %12s %7s\n' workload round fuse_ms base base_ms ratio
for w in $workloads; do
    set -- $(baseline "$w")
    kind=$1 bname=$2
    : > "$tmp/ratios"
    r=1
    while [ "$r" -le "$rounds" ]; do
        $pin "$build/fuse-bench" --suite --only "${w%@openblas}" --threads 1 --repeat "$repeat" \
            --json "$tmp/f.json" > /dev/null
        f=$(median_ms "$tmp/f.json")
        if [ "$kind" = openblas ]; then
            b=$($pin "$tmp/sgemm_openblas" "$repeat" "$bname" | awk 'NR == 2 {print $3}')
        else
            b=$($pin /usr/bin/python3 "$here/numpy_einsum.py" --repeat "$repeat" --only "$bname" |
                awk 'NR == 2 {print $3}')
        fi
        ratio=$(awk -v b="$b" -v f="$f" 'BEGIN {printf "%.3f", b / f}')
        echo "$ratio" >> "$tmp/ratios"
        printf '%-20s %5d %12s %12s %12s %7s\n' "$w" "$r" "$f" "$kind" "$b" "$ratio"
        r=$((r + 1))
    done
    printf '%-20s median ratio %s\n' "$w" "$(median_of < "$tmp/ratios")"
done
