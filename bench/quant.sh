#!/bin/sh
# quant.sh: the MLP of examples/mlp_int8 scaled to X 256 x 1024, W1 1024 x 1024
# (int8, a scale per column), W2 1024 x 256 (uint8, one scale and zero point),
# run three ways through weights manifests (bench/quant.c, one process each,
# single thread, ROUNDS rounds in turn; medians of REPEAT runs per process):
#
#   int8 kept        the kernels dequantise W1 and W2 on load (the default)
#   int8 at load     FUSE_JIT_DEQUANTISE=1: float32 copies made when the
#                    runner is made (the path before int8 weights were kept)
#   fp32 weights     the dequantised weights saved as float32 .npy files
#
#   bench/quant.sh BUILD_DIR [REPEAT=10] [ROUNDS=3]
set -eu
build=$(cd "$1" && pwd)
repeat=${2:-10}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clang-19 -O2 -std=c17 -I"$root/include" "$root/bench/quant.c" -L"$build/lib" -lfusejit \
    -Wl,-rpath,"$build/lib" -o "$work/quant"
/usr/bin/python3 - "$work" <<'PY'
import json, os, sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
x = rng.standard_normal((256, 1024)).astype(np.float32)
w1 = rng.standard_normal((1024, 1024)).astype(np.float32)
w2 = rng.standard_normal((1024, 256)).astype(np.float32)
b1 = (0.1 * rng.standard_normal(1024)).astype(np.float32)
b2 = (0.1 * rng.standard_normal(256)).astype(np.float32)
s1 = (np.abs(w1).max(axis=0) / 127).astype(np.float32)
q1 = np.clip(np.round(w1 / s1), -127, 127).astype(np.int8)
s2 = float(np.float32(np.abs(w2).max() / 127))
q2 = np.clip(np.round(w2 / s2) + 128, 0, 255).astype(np.uint8)
for name, a in [("x", x), ("b1", b1), ("b2", b2), ("q1", q1), ("s1", s1), ("q2", q2)]:
    np.save(os.path.join(d, name + ".npy"), a)
np.save(os.path.join(d, "w1.npy"), (q1.astype(np.int32)).astype(np.float32) * s1)
np.save(os.path.join(d, "w2.npy"), (q2.astype(np.int32) - 128).astype(np.float32) * np.float32(s2))
with open(os.path.join(d, "int8.json"), "w") as f:
    json.dump({"tensors": {
        "W1": {"path": "q1.npy", "quant": {"scale": "s1.npy", "zero_point": 0, "axis": 1}},
        "W2": {"path": "q2.npy", "quant": {"scale": s2, "zero_point": 128}},
        "B1": {"path": "b1.npy"}, "B2": {"path": "b2.npy"}}}, f)
with open(os.path.join(d, "fp32.json"), "w") as f:
    json.dump({"tensors": {"W1": {"path": "w1.npy"}, "W2": {"path": "w2.npy"},
                           "B1": {"path": "b1.npy"}, "B2": {"path": "b2.npy"}}}, f)
PY
cp "$root/examples/mlp_int8/mlp.fuse" "$work/mlp.fuse"
export FUSE_JIT_CACHE_DIR="$work/cache" OMP_NUM_THREADS=1
# every configuration's kernels into the disk cache first (the two int8 ways
# compile different code), so no timed process compiles
"$work/quant" "$work/mlp.fuse" "$work/int8.json" 1 warm >/dev/null
FUSE_JIT_DEQUANTISE=1 "$work/quant" "$work/mlp.fuse" "$work/int8.json" 1 warm >/dev/null
"$work/quant" "$work/mlp.fuse" "$work/fp32.json" 1 warm >/dev/null
echo "| weights | make runner ms | run median ms | run min ms | buffers MiB | peak RSS KiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
i=0
while [ "$i" -lt "$rounds" ]; do
    "$work/quant" "$work/mlp.fuse" "$work/int8.json" "$repeat" "int8 kept"
    FUSE_JIT_DEQUANTISE=1 "$work/quant" "$work/mlp.fuse" "$work/int8.json" "$repeat" \
        "int8 at load"
    "$work/quant" "$work/mlp.fuse" "$work/fp32.json" "$repeat" "fp32 weights"
    i=$((i + 1))
done
