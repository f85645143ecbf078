/*
 * fuzz_json.c: a .json tensor through io_json_read.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.json", data, size);
    fuse_tensor t = {0};
    char *err = NULL;
    (void)io_json_read(path, &t, &err);
    free(err);
    free(t.data);
    return 0;
}
