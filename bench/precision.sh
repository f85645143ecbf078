#!/bin/sh
# precision.sh: products in fp32, fp64, bf16 and fp16 (fuse_config.precision)
# against OpenBLAS's cblas_dgemm and cblas_sgemm, single thread (bench/precision.c:
# square products 1024 and 2048, a 4096 x 4096 matrix-vector product at batch 1
# and 8). Medians and minima of REPEAT runs after one warm-up, and GFLOP/s.
#
#   bench/precision.sh BUILD_DIR [REPEAT=5]
set -eu
build=$(cd "$1" && pwd)
repeat=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clang-19 -O2 -std=c17 -mf16c -I"$root/include" "$root/bench/precision.c" -L"$build/lib" \
    -lfusejit -lopenblas -Wl,-rpath,"$build/lib" -o "$work/precision"
export FUSE_JIT_CACHE_DIR="$work/cache" OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
"$work/precision" "$repeat"
