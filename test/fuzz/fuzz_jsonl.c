/*
 * fuzz_jsonl.c: a fuse.tensor JSON-lines file through io_jsonl_read.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.jsonl", data, size);
    fuse_tensor t = {0};
    char *err = NULL;
    (void)io_jsonl_read(path, &t, &err);
    free(err);
    free(t.data);
    return 0;
}
