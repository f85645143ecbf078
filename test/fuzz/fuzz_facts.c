/*
 * fuzz_facts.c: a .tsv/.csv facts file through io_facts_read (rank from the
 * first fact), then with a fixed rank of 2.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("in.tsv", data, size);
    fuse_tensor t = {0};
    char *err = NULL;
    (void)io_facts_read(path, &t, &err);
    free(err);
    free(t.data);
    fuse_tensor r = {0};
    err = NULL;
    (void)io_facts_read_rank(path, 2, &r, &err);
    free(err);
    free(r.data);
    return 0;
}
