/*
 * mmap.c: large .npy sources read through a memory mapping (SPEC §7, tucker).
 *
 * A source .npy of at least io_mmap_min_bytes() bytes (16 MiB, or
 * $FUSE_JIT_MMAP_MIN_BYTES) whose data is little-endian (the host's order), C-ordered,
 * aligned for its dtype and of exactly the compiled shape is mapped read-only and
 * converted straight from the mapping into the tensor's float32 buffer, without a
 * temporary copy of the file. Anything else (small, big-endian, Fortran order, a
 * changed shape, a pipe) is left to the ordinary reader. The header is parsed from
 * the mapping within the file's size, and the data's size is checked against the
 * file's size before any data page is touched, so a truncated file is a FUSE_E_IO
 * error naming it, never a SIGBUS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define RT_MMAP_DEFAULT_MIN ((uint64_t)16 << 20)

uint64_t io_mmap_min_bytes(void)
{
    const char *s = getenv("FUSE_JIT_MMAP_MIN_BYTES");
    if (!s || !*s)
        return RT_MMAP_DEFAULT_MIN;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return RT_MMAP_DEFAULT_MIN;
    return (uint64_t)v;
}

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Whether the parsed header allows converting straight from the mapping into a
 * tensor of `rank` axes with sizes `shape`. */
static bool header_fits(const NpyHeader *h, int rank, const int64_t *shape)
{
    size_t esize = fuse_dtype_size(h->dtype);
    if ((esize > 1 && h->is_big_endian != !host_is_little_endian()) ||
        (h->is_fortran && h->rank > 1) || h->rank != rank || h->data_offset % esize != 0)
        return false;
    for (int k = 0; k < rank; k++)
        if (h->shape[k] != shape[k])
            return false;
    return true;
}

/* Parses the mapped header and converts the data into dst, or leaves *is_mapped
 * false when the file must take the ordinary path. */
static fuse_status convert_mapped(const uint8_t *map, uint64_t size, const char *path, int rank,
                                  const int64_t *shape, float *dst, bool is_bool,
                                  bool *is_mapped, char **err)
{
    NpyHeader h;
    fuse_status st = io_npy_parse_header_named(map, (size_t)size, path, &h, err);
    if (st != FUSE_OK)
        return st;
    if (!header_fits(&h, rank, shape))
        return FUSE_OK;
    int64_t count = io_shape_count(h.rank, h.shape);
    uint64_t need = (uint64_t)count * fuse_dtype_size(h.dtype);
    uint64_t have = size - h.data_offset;
    if (h.data_offset > size || have < need)
        return sup_fail(err, FUSE_E_IO, "%s: truncated .npy data: %llu elements of %s need "
                       "%llu bytes, the file has %llu after its header", path,
                       (unsigned long long)count, fuse_dtype_name(h.dtype),
                       (unsigned long long)need,
                       (unsigned long long)(h.data_offset > size ? 0 : have));
    io_convert_source(h.dtype, map + h.data_offset, dst, count, is_bool);
    *is_mapped = true;
    return FUSE_OK;
}

fuse_status io_npy_read_mapped(const char *path, int rank, const int64_t *shape, float *dst,
                               bool is_bool, bool *is_mapped, char **err)
{
    *is_mapped = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FUSE_OK; /* the ordinary reader reports it */
    struct stat sb;
    uint64_t min = io_mmap_min_bytes();
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < min ||
        sb.st_size == 0 || (uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return FUSE_OK;
    }
    uint64_t size = (uint64_t)sb.st_size;
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return FUSE_OK; /* cannot map: read it instead */
    (void)madvise(map, (size_t)size, MADV_SEQUENTIAL);
    fuse_status st = convert_mapped(map, size, path, rank, shape, dst, is_bool, is_mapped, err);
    munmap(map, (size_t)size);
    return st;
}
