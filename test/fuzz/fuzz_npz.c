/*
 * fuzz_npz.c: an .npz archive through io_npz_read (libzip, then the .npy decoder
 * on the member's stream): the default member, then the member "x".
 */
#include <stdlib.h>

#include "fuzz.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.npz", data, size);
    fuse_tensor t = {0};
    char *err = NULL;
    if (io_npz_read(path, NULL, "x", &t, &err) != FUSE_OK) {
        free(err);
        err = NULL;
        (void)io_npz_read(path, "x", NULL, &t, &err);
    }
    free(err);
    free(t.data);
    return 0;
}
