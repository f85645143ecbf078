/*
 * fuzz_text.c: a .txt bag of words through io_bow_read_ex with its vocabulary
 * sidecar: the input up to the separator "\0VOCAB\0" is the text, what follows
 * it (when present) the sidecar beside it (in.vocab.json); without one there is
 * none. The vocabulary is saved under the scratch directory as a run saves it
 * under the output root; a read that succeeds and saves it must read back the
 * same matrix from what it saved.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io.h"

static const char SEP[] = "\0VOCAB\0";
#define SEP_LEN (sizeof SEP - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t text_n = size;
    const uint8_t *vocab = NULL;
    for (size_t i = 0; i + SEP_LEN <= size; i++) {
        if (memcmp(data + i, SEP, SEP_LEN) == 0) {
            text_n = i;
            vocab = data + i + SEP_LEN;
            break;
        }
    }
    unlink(fuzz_path("saved.vocab.json"));
    if (vocab)
        fuzz_write("in.vocab.json", vocab, size - (size_t)(vocab - data));
    else
        unlink(fuzz_path("in.vocab.json"));
    char *path = strdup(fuzz_write("in.txt", data, text_n));
    if (!path)
        return 0;
    IoVocabPlace place = {.root = fuzz_dir(), .rel = "saved.vocab.json", .save = true};
    fuse_tensor t = {0};
    char *warn = NULL, *err = NULL;
    fuse_status st = io_bow_read_ex(path, &place, &t, &warn, &err);
    free(err);
    if (st == FUSE_OK && !warn && access(fuzz_path("saved.vocab.json"), F_OK) == 0) {
        fuse_tensor again = {0};
        char *warn2 = NULL;
        err = NULL;
        if (io_bow_read_ex(path, &place, &again, &warn2, &err) != FUSE_OK)
            abort(); /* what the first read saved must read back */
        fuzz_assert_same(&t, &again, "a bag of words read before and after its sidecar");
        free(again.data);
        free(warn2);
        free(err);
    }
    free(warn);
    free(t.data);
    free(path);
    return 0;
}
