/*
 * fuzz_npy.c: a .npy file read three ways that must agree: from a file
 * (io_npy_read, streamed), from memory (io_npy_read_mem) and, for a header that
 * parses, through a memory mapping (io_npy_read_mapped, with the mapping
 * threshold at one byte) against the file read converted to float32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("FUSE_JIT_MMAP_MIN_BYTES", "1", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.npy", data, size);
    fuse_tensor f = {0}, m = {0};
    char *err = NULL;
    fuse_status sf = io_npy_read(path, &f, &err);
    free(err);
    err = NULL;
    fuse_status sm = io_npy_read_mem(data, size, "in.npy", &m, &err);
    free(err);
    err = NULL;
    if (sf == FUSE_OK && sm == FUSE_OK)
        fuzz_assert_same(&f, &m, "io_npy_read and io_npy_read_mem");

    NpyHeader h;
    if (io_npy_parse_header(data, size, &h, &err) == FUSE_OK) {
        int64_t count = io_shape_count(h.rank, h.shape);
        if (count >= 0 && count <= ((int64_t)1 << 20)) {
            float *dst = io_alloc_aligned((size_t)count * sizeof(float));
            bool mapped = false;
            char *merr = NULL;
            if (dst && io_npy_read_mapped(path, h.rank, h.shape, dst, false, &mapped, &merr) ==
                           FUSE_OK && mapped && sf == FUSE_OK) {
                float *want = io_alloc_aligned((size_t)count * sizeof(float));
                if (want) {
                    io_convert_source(f.dtype, f.data, want, count, false);
                    if (memcmp(want, dst, (size_t)count * sizeof(float)) != 0) {
                        fprintf(stderr, "fuzz: the mapped read differs from the file read\n");
                        abort();
                    }
                }
                free(want);
            }
            free(merr);
            free(dst);
        }
    }
    free(err);
    free(f.data);
    free(m.data);
    return 0;
}
