#!/usr/bin/env bash
# cache_start.sh: cold vs warm start of `fuse-jit run` with the code cache.
#
#   bench/cache_start.sh BUILD_DIR [RUNS=15]
#
# Programs: examples/attention.fuse (the attention block) and a generated
# 30-equation program (matrix products, relu, bias adds, softmax). For each, RUNS
# cold runs (the cache directory emptied before each) and RUNS warm runs (after a
# priming run), in a scratch FUSE_JIT_CACHE_DIR. Prints the median wall time of the
# whole process (date +%s%N) and the median "parse to first result" time that
# `--time` reports (parse + check + lower + compile or cache load + run), then the
# cold/warm ratios. Also builds bench/cache_inproc.c against BUILD_DIR/lib/libfusejit.so
# and reports the in-process hit against the cold compile.
set -euo pipefail
build="$(cd "${1:?usage: cache_start.sh BUILD_DIR [RUNS]}" && pwd)"
runs="${2:-15}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$build/fuse-jit"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export FUSE_JIT_CACHE_DIR="$work/cache"

# A 30-equation program: 10 blocks of product, bias add and relu over 8x8 tensors.
gen30() {
    local vals="" i j
    for i in 0 1 2 3 4 5 6 7; do
        local row=""
        for j in 0 1 2 3 4 5 6 7; do row+="${row:+, }0.$(( (i * 8 + j) % 9 + 1 ))"; done
        vals+="${vals:+, }[$row]"
    done
    echo "X[i,j] = const([$vals])"
    echo "W[j,k] = const([$vals])"
    echo "B[k] = const([0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8])"
    local prev=X
    for i in $(seq 1 9); do
        echo "M$i[i,k] = $prev[i,j] W[j,k]"
        echo "S$i[i,k] = M$i[i,k] + B[k]"
        echo "H$i[i,k] = relu(S$i[i,k])"
        prev="H$i"
    done
    echo "P[i,k.] = softmax($prev[i,k])"
    echo "export P"
}
gen30 > "$work/eq30.fuse"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# One run: prints "WALL_MS TIMED_MS".
one() {
    local t0 t1 total
    t0=$(date +%s%N)
    total=$("$bin" run "$1" --time 2>&1 >/dev/null | awk '/^time: total/ {print $3}')
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))e-3 $total"
}

measure() { # PROGRAM cold|warm
    local i
    for i in $(seq 1 "$runs"); do
        if [ "$2" = cold ]; then "$bin" cache clear >/dev/null; fi
        one "$1"
    done
}

printf "%-22s %12s %12s %12s %12s %8s %8s\n" program cold_wall_ms warm_wall_ms \
    cold_first_ms warm_first_ms wall_x first_x
for prog in "$root/examples/attention.fuse" "$work/eq30.fuse"; do
    measure "$prog" cold > "$work/cold"
    "$bin" run "$prog" >/dev/null
    measure "$prog" warm > "$work/warm"
    cw=$(awk '{printf "%.3f\n", $1}' "$work/cold" | median)
    ww=$(awk '{printf "%.3f\n", $1}' "$work/warm" | median)
    cf=$(awk '{print $2}' "$work/cold" | median)
    wf=$(awk '{print $2}' "$work/warm" | median)
    printf "%-22s %12s %12s %12s %12s %8.1f %8.1f\n" "$(basename "$prog")" "$cw" "$ww" "$cf" "$wf" \
        "$(echo "$cw / $ww" | bc -l)" "$(echo "$cf / $wf" | bc -l)"
done

if [ -f "$build/lib/libfusejit.so" ]; then
    clang-19 -O2 -std=c17 -I"$root/include" "$root/bench/cache_inproc.c" -L"$build/lib" -lfusejit \
        -Wl,-rpath,"$build/lib" -o "$work/cache_inproc"
    "$work/cache_inproc" "$root/examples/attention.fuse" "$work/eq30.fuse" 50
fi
