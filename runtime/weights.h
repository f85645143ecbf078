/*
 * weights.h: a weights manifest as read (weights.c), for tying it to a program
 * (weights_bind.c). Private to runtime/.
 */
#ifndef FUSE_WEIGHTS_H
#define FUSE_WEIGHTS_H

#include <stdbool.h>

#include "fusejit.h"

/* One tensor of a manifest. */
typedef struct RtWeight {
    char *name;
    fuse_tensor value; /* float32 (or bf16/f16 as stored), 64-byte aligned; data NULL
                          when only shapes were read */
    bool is_used;      /* supplies a source of the plan (set by the probe) */
    /* a quantised entry: value is int8/uint8 in the layout of lower_quant_bytes
     * (its scales and zero points behind the data) until the plan keeps it
     * (IrTensor.quant) or dequantises it to float32 (rt_weights_keep_quantised) */
    bool is_quant;
    int quant_axis;    /* -1: one scale and zero point */
} RtWeight;

/* A LoRA pair kept apart ("merge": false): the tensor `name` is computed as
 * NAME.lora_base + scale NAME.lora_up . NAME.lora_down, three entries of the
 * manifest's tensors (weights_bind.c writes the equation). */
typedef struct RtLoraSplit {
    char *name;
    double scale; /* alpha / rank */
} RtLoraSplit;

struct RtWeights {
    char *path;  /* the manifest, as given */
    char *where; /* "weights m.json": the origin of its sizes in messages */
    RtWeight *w;
    int n;
    RtLoraSplit *splits;
    int n_splits;
};

/* A quantised entry's value as float32 (the load-time dequantisation, in
 * place); nothing for any other. FUSE_E_NOMEM leaves it as it was. */
fuse_status rt_weight_dequantise(RtWeight *w);

#endif /* FUSE_WEIGHTS_H */
