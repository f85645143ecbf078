#!/usr/bin/python3
"""Writes the tiny int8 MLP of this directory: its weights, quantised from a
float32 model, and the manifest that tells fuse-jit how to read them.

    /usr/bin/python3 examples/mlp_int8/make.py      # rewrites the files here

W1 (4 x 8) is int8 with one scale per output column (quant axis 1, zero point
0); W2 (8 x 3) is uint8 with one scale and zero point 128 for the whole tensor,
stored as two shards of 4 rows each; the biases and the input stay float32.
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)

x = rng.standard_normal((2, 4)).astype(np.float32)
w1 = rng.standard_normal((4, 8)).astype(np.float32)
b1 = (0.1 * rng.standard_normal(8)).astype(np.float32)
w2 = rng.standard_normal((8, 3)).astype(np.float32)
b2 = (0.1 * rng.standard_normal(3)).astype(np.float32)

# per output column: the largest magnitude maps to 127
w1_scale = (np.abs(w1).max(axis=0) / 127).astype(np.float32)
w1_q = np.clip(np.round(w1 / w1_scale), -127, 127).astype(np.int8)
# one scale for W2, zero point 128
w2_scale = float(np.abs(w2).max() / 127)
w2_q = np.clip(np.round(w2 / w2_scale) + 128, 0, 255).astype(np.uint8)

def save(name, a):
    np.save(os.path.join(HERE, name), a)

save("x.npy", x)
save("w1.npy", w1_q)
save("w1_scale.npy", w1_scale)
save("b1.npy", b1)
save("w2.0.npy", w2_q[:4])
save("w2.1.npy", w2_q[4:])
save("b2.npy", b2)

manifest = {"tensors": {
    "W1": {"path": "w1.npy", "dtype": "int8", "shape": [4, 8],
           "quant": {"scale": "w1_scale.npy", "zero_point": 0, "axis": 1}},
    "B1": {"path": "b1.npy"},
    "W2": {"shards": ["w2.0.npy", "w2.1.npy"], "axis": 0, "dtype": "uint8",
           "quant": {"scale": round(w2_scale, 8), "zero_point": 128}},
    "B2": {"path": "b2.npy"},
}}
with open(os.path.join(HERE, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")

# what fuse-jit should print, from the same dequantisation in float32
w1_d = (w1_q.astype(np.int32) - 0).astype(np.float32) * w1_scale
w2_d = (w2_q.astype(np.int32) - 128).astype(np.float32) * np.float32(round(w2_scale, 8))
h = np.maximum(x @ w1_d + b1, 0)
print(h @ w2_d + b2)
