#!/bin/sh
# threads.sh: the speed-up of 2 (or THREADS) threads over 1 on the suite's
# square products, fuse-jit and OpenBLAS, the runs of each round back to back
# (this machine's speed drifts over minutes). Prints per round the medians with
# 1 and THREADS threads and the speed-up, then the median speed-up of the rounds.
#
#   bench/threads.sh BUILD_DIR [ROUNDS] [THREADS] [SIZE...]
set -eu
build=${1:?usage: threads.sh BUILD_DIR [ROUNDS] [THREADS] [SIZE...]}
rounds=${2:-5}
threads=${3:-2}
shift $(($# < 3 ? $# : 3))
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-clang-19} -O2 -o "$tmp/sgemm_openblas" "$here/sgemm_openblas.c" -lopenblas
export OPENBLAS_CORETYPE=Cooperlake
median_of() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
fuse_ms() {
    "$build/fuse-bench" --suite --only "matmul-$1" --threads "$2" --repeat "$3" --json "$tmp/f.json" > /dev/null &&
        /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["median_ms"])' "$tmp/f.json"
}
blas_ms() { OPENBLAS_NUM_THREADS=$2 "$tmp/sgemm_openblas" "$3" "sgemm-$1" | awk 'NR == 2 {print $3}'; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds rounds, 1 vs $threads threads"
printf '%-10s %5s %10s %10s %8s %10s %10s %8s\n' size round fuse_1 "fuse_$threads" speedup \
    blas_1 "blas_$threads" speedup
for n in ${*:-1024 2048}; do
    repeat=$((n >= 2048 ? 8 : 20))
    : > "$tmp/f"
    : > "$tmp/b"
    r=1
    while [ "$r" -le "$rounds" ]; do
        f1=$(fuse_ms "$n" 1 "$repeat")
        fn=$(fuse_ms "$n" "$threads" "$repeat")
        b1=$(blas_ms "$n" 1 "$repeat")
        bn=$(blas_ms "$n" "$threads" "$repeat")
        fs=$(awk -v a="$f1" -v b="$fn" 'BEGIN {printf "%.2f", a / b}')
        bs=$(awk -v a="$b1" -v b="$bn" 'BEGIN {printf "%.2f", a / b}')
        echo "$fs" >> "$tmp/f"
        echo "$bs" >> "$tmp/b"
        printf '%-10s %5d %10s %10s %8s %10s %10s %8s\n' "$n" "$r" "$f1" "$fn" "$fs" "$b1" "$bn" "$bs"
        r=$((r + 1))
    done
    printf '%-10s median speed-up: fuse-jit %s, OpenBLAS %s\n' "$n" "$(median_of < "$tmp/f")" \
        "$(median_of < "$tmp/b")"
done
