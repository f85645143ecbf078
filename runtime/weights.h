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

#endif /* FUSE_WEIGHTS_H */
