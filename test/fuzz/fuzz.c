/*
 * fuzz.c: the scratch directory and checks the fuzz targets share (fuzz.h).
 */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file may describe a dense tensor of gigabytes in a few bytes (a facts line,
 * a .npy header): such a request is legitimate, and the memory cap lives above
 * the readers. Here a single allocation above 256 MiB fails instead, so that the
 * targets check that the readers turn it into a clean FUSE_E_NOMEM. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=256";
}

static char dir[4096];
static char path[4096 + 256];

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[sizeof dir + 256];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

const char *fuzz_dir(void)
{
    if (dir[0])
        return dir;
    const char *base = "/dev/shm";
    struct stat st;
    if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode) || access(base, W_OK) != 0) {
        base = getenv("TMPDIR");
        if (!base || !*base)
            base = "/tmp";
    }
    snprintf(dir, sizeof dir, "%s/fuse-fuzz-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return dir;
}

const char *fuzz_path(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return path;
}

const char *fuzz_write(const char *name, const void *data, size_t n)
{
    const char *p = fuzz_path(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("fuzz: open");
        abort();
    }
    const char *s = data;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            perror("fuzz: write");
            abort();
        }
        s += w;
        n -= (size_t)w;
    }
    close(fd);
    return p;
}

size_t fuzz_tensor_bytes(const fuse_tensor *t)
{
    if (t->rank < 0 || t->rank > FUSE_MAX_RANK)
        return 0;
    size_t n = fuse_dtype_size(t->dtype);
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] < 0)
            return 0;
        n *= (size_t)t->shape[i];
    }
    return n;
}

void fuzz_assert_same(const fuse_tensor *a, const fuse_tensor *b, const char *what)
{
    bool same = a->dtype == b->dtype && a->rank == b->rank &&
                memcmp(a->shape, b->shape, (size_t)a->rank * sizeof a->shape[0]) == 0;
    size_t n = same ? fuzz_tensor_bytes(a) : 0;
    if (same && n > 0)
        same = a->data && b->data && memcmp(a->data, b->data, n) == 0;
    if (!same) {
        fprintf(stderr, "fuzz: %s: the two reads differ\n", what);
        abort();
    }
}
