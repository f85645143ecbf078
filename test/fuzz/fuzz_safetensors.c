/*
 * fuzz_safetensors.c: a .safetensors file through io_safetensors_read: the only
 * member, then the member "x".
 */
#include <stdlib.h>

#include "fuzz.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.safetensors", data, size);
    fuse_tensor t = {0};
    char *err = NULL;
    if (io_safetensors_read(path, NULL, &t, &err) != FUSE_OK) {
        free(err);
        err = NULL;
        (void)io_safetensors_read(path, "x", &t, &err);
    }
    free(err);
    free(t.data);
    return 0;
}
