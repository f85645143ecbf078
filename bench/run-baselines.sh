#!/bin/sh
# run-baselines.sh: fuse-bench's suite and its baselines in one run, so the
# numbers in RESULTS.md compare like with like on the same (possibly busy)
# machine. OpenBLAS 0.3.21 detects this CPU as a generic core, so it runs with
# OPENBLAS_CORETYPE=Cooperlake (its AVX-512 kernels); baselines are single
# threaded (OPENBLAS_NUM_THREADS=1) like fuse-bench --threads 1.
#
# The whole sequence runs ROUNDS times (default 2): on a shared machine, compare
# numbers of the same round.
#
#   bench/run-baselines.sh BUILD_DIR [REPEAT] [THREADS] [ROUNDS]
set -eu
build=${1:?usage: run-baselines.sh BUILD_DIR [REPEAT] [THREADS] [ROUNDS]}
repeat=${2:-10}
threads=${3:-1}
rounds=${4:-2}
cores=$(nproc --all)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-clang-19}
$cc -O2 -o "$tmp/sgemm_openblas" "$here/sgemm_openblas.c" -lopenblas
export OPENBLAS_CORETYPE=Cooperlake OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
round=1
while [ "$round" -le "$rounds" ]; do
    echo "# round $round: $(date -u '+%Y-%m-%d %H:%M UTC'), $cores cores, threads $threads," \
         "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$build/fuse-bench" --suite --repeat "$repeat" --warmup 2 --threads "$threads"
    "$tmp/sgemm_openblas" "$repeat"
    if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        /usr/bin/python3 "$here/numpy_einsum.py" --repeat "$repeat"
    else
        echo "numpy: not installed, skipped"
    fi
    round=$((round + 1))
done
