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
 * file's size before any data page is touched, so a file that is already short is
 * a FUSE_E_IO error naming it.
 *
 * A file truncated by someone else WHILE it is being converted would make the next
 * access past its new end raise SIGBUS, which kills the process by default. So each
 * mapping being read is registered in a small table (guard/unguard below), and a
 * SIGBUS handler, installed once and chaining to whatever handler was there before,
 * looks the faulting address up: inside a registered mapping it maps anonymous zero
 * pages over the rest of that mapping (MAP_FIXED, so the faulting load restarts and
 * reads zeros) and flags the slot. The reader checks the flag when the conversion
 * is done and fails with "truncated while being read": the zeros are never
 * returned. Addresses not ours go to the previous handler, or to the default
 * action. The handler uses only lock-free atomics, mmap and sigaction; mmap is not
 * on POSIX's list of async-signal-safe functions, but on Linux it is a plain system
 * call with no user-space state, which is what matters.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/* ---- the SIGBUS guard ---- */

/* Mappings read at the same time (one per thread converting a source); a read
 * that finds every slot taken takes the ordinary path instead. */
#define GUARD_SLOTS 32

enum { SLOT_FREE, SLOT_BUSY, SLOT_ACTIVE }; /* BUSY: being filled or emptied */

typedef struct GuardSlot {
    atomic_int state;
    atomic_uintptr_t begin, end; /* the mapped pages, [begin, end) */
    atomic_int is_faulted;       /* the handler replaced pages of this mapping */
} GuardSlot;

static GuardSlot guard_slots[GUARD_SLOTS];
static struct sigaction guard_prev; /* the SIGBUS handler before ours */
static uintptr_t guard_page_size;   /* read before the handler is installed */
static bool guard_is_installed;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_POINTER_LOCK_FREE == 2,
               "the SIGBUS handler needs lock-free atomics");

/* Hands a SIGBUS that is not ours to the handler that was installed before. */
static void guard_chain(int sig, siginfo_t *si, void *uctx)
{
    if ((guard_prev.sa_flags & SA_SIGINFO) && guard_prev.sa_sigaction) {
        guard_prev.sa_sigaction(sig, si, uctx);
        return;
    }
    if (guard_prev.sa_handler != SIG_DFL && guard_prev.sa_handler != SIG_IGN) {
        guard_prev.sa_handler(sig);
        return;
    }
    /* The default action: restore it; a faulting access repeats when we return
     * and is then fatal as it would have been; a sent signal is sent again. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

static void guard_on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    int saved_errno = errno;
    uintptr_t addr = (uintptr_t)si->si_addr;
    /* BUS_ADRERR: a page with no backing, which is what a truncated file gives
     * (a hardware memory error, BUS_MCEERR_*, is not ours to hide) */
    for (int i = 0; si->si_code == BUS_ADRERR && i < GUARD_SLOTS; i++) {
        GuardSlot *s = &guard_slots[i];
        if (atomic_load(&s->state) != SLOT_ACTIVE)
            continue;
        uintptr_t begin = atomic_load(&s->begin), end = atomic_load(&s->end);
        if (addr < begin || addr >= end)
            continue;
        /* Every page from here on lies past the new end of the file. */
        uintptr_t page = addr & ~(guard_page_size - 1);
        void *z = mmap((void *)page, end - page, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (z != MAP_FAILED) {
            atomic_store(&s->is_faulted, 1);
            errno = saved_errno;
            return;
        }
        break;
    }
    guard_chain(sig, si, uctx);
    errno = saved_errno;
}

static void guard_install(void)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || (page & (page - 1)) != 0)
        return;
    guard_page_size = (uintptr_t)page;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    guard_is_installed = sigaction(SIGBUS, &sa, &guard_prev) == 0;
}

int io_mmap_guard(const void *addr, size_t len)
{
    pthread_once(&guard_once, guard_install);
    if (!guard_is_installed || len == 0)
        return -1;
    uintptr_t begin = (uintptr_t)addr;
    uintptr_t span = (len + guard_page_size - 1) & ~(guard_page_size - 1);
    for (int i = 0; i < GUARD_SLOTS; i++) {
        GuardSlot *s = &guard_slots[i];
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&s->state, &expected, SLOT_BUSY))
            continue;
        atomic_store(&s->begin, begin);
        atomic_store(&s->end, begin + span);
        atomic_store(&s->is_faulted, 0);
        atomic_store(&s->state, SLOT_ACTIVE);
        return i;
    }
    return -1;
}

bool io_mmap_is_faulted(int slot)
{
    return slot >= 0 && slot < GUARD_SLOTS && atomic_load(&guard_slots[slot].is_faulted) != 0;
}

bool io_mmap_unguard(int slot)
{
    if (slot < 0 || slot >= GUARD_SLOTS)
        return false;
    GuardSlot *s = &guard_slots[slot];
    atomic_store(&s->state, SLOT_BUSY);
    bool is_faulted = atomic_load(&s->is_faulted) != 0;
    atomic_store(&s->state, SLOT_FREE);
    return is_faulted;
}

/* ---- reading ---- */

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

/* The error of a mapped file cut short while it was read (fd is still open:
 * its size now is reported). */
static fuse_status truncated_while_read(int fd, const char *path, uint64_t size, char **err)
{
    struct stat sb;
    long long now = fstat(fd, &sb) == 0 ? (long long)sb.st_size : -1;
    return sup_fail(err, FUSE_E_IO, "%s: truncated while being read (was %llu bytes, now %lld)",
                    path, (unsigned long long)size, now);
}

/* Converts the mapped data into dst under the SIGBUS guard; a file cut short
 * meanwhile is an error. */
static fuse_status convert_guarded(const uint8_t *map, uint64_t size, int fd, const char *path,
                                   const NpyHeader *h, int64_t first, int64_t count,
                                   float *dst, bool is_bool, char **err)
{
    int slot = io_mmap_guard(map, (size_t)size);
    if (slot < 0)
        return FUSE_E_UNSUPPORTED; /* no guard: the caller reads the file instead */
    io_convert_source(h->dtype, map + h->data_offset + (size_t)first * fuse_dtype_size(h->dtype),
                      dst + first, count, is_bool);
    if (!io_mmap_unguard(slot))
        return FUSE_OK;
    return truncated_while_read(fd, path, size, err);
}

/* io_npy_convert_mapping of rows [lo, hi) of axis 0 only (the whole file is
 * checked as before). */
static fuse_status convert_mapping_rows(const void *map, uint64_t size, int fd, const char *path,
                                        int rank, const int64_t *shape, int64_t lo, int64_t hi,
                                        float *dst, bool is_bool, bool *is_mapped, char **err)
{
    *is_mapped = false;
    if (rank > 0 && (lo < 0 || hi > shape[0] || lo > hi))
        lo = 0, hi = shape[0]; /* not a block of the tensor: all of it */
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
    int64_t row = rank > 0 && shape[0] > 0 ? count / shape[0] : count;
    if (rank == 0)
        lo = 0, hi = 1;
    st = convert_guarded(map, size, fd, path, &h, lo * row, (hi - lo) * row, dst, is_bool, err);
    if (st == FUSE_E_UNSUPPORTED)
        return FUSE_OK;
    *is_mapped = true;
    return st;
}

fuse_status io_npy_convert_mapping(const void *map, uint64_t size, int fd, const char *path,
                                   int rank, const int64_t *shape, float *dst, bool is_bool,
                                   bool *is_mapped, char **err)
{
    return convert_mapping_rows(map, size, fd, path, rank, shape, 0, rank > 0 ? shape[0] : 1, dst,
                                is_bool, is_mapped, err);
}

fuse_status io_npy_read_mapped(const char *path, int rank, const int64_t *shape, float *dst,
                               bool is_bool, bool *is_mapped, char **err)
{
    return io_npy_read_mapped_rows(path, rank, shape, 0, rank > 0 ? shape[0] : 1, dst, is_bool,
                                   is_mapped, err);
}

/* Opens path and maps it read-only when it is a regular file of at least
 * io_mmap_min_bytes() bytes: the open fd, the mapping and its size; -1 when
 * not (missing, small, not mappable: the ordinary reader takes it). */
static int open_mapped(const char *path, void **map, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1; /* the ordinary reader reports it */
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0 ||
        (uint64_t)sb.st_size < io_mmap_min_bytes() || (uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return -1;
    }
    *size = (size_t)sb.st_size;
    *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (*map == MAP_FAILED) {
        close(fd);
        return -1; /* cannot map: read it instead */
    }
    return fd;
}

fuse_status io_npy_read_mapped_rows(const char *path, int rank, const int64_t *shape,
                                    int64_t lo, int64_t hi, float *dst, bool is_bool,
                                    bool *is_mapped, char **err)
{
    *is_mapped = false;
    void *map = NULL;
    size_t size = 0;
    int fd = open_mapped(path, &map, &size);
    if (fd < 0)
        return FUSE_OK;
    (void)madvise(map, size, MADV_SEQUENTIAL);
    fuse_status st = convert_mapping_rows(map, size, fd, path, rank, shape, lo, hi, dst, is_bool,
                                          is_mapped, err);
    munmap(map, size);
    close(fd);
    return st;
}

/* ---- used in place ---- */

/* Whether the n float32 words at w are all +0.0 or 1.0: a boolean tensor's
 * values as thresholding would leave them. */
static bool is_zero_one(const uint32_t *w, int64_t n)
{
    for (int64_t at = 0; at < n; at += 4096) { /* branch-free runs: vectorised */
        int64_t end = n - at < 4096 ? n : at + 4096;
        uint32_t other = 0;
        for (int64_t i = at; i < end; i++)
            other |= (w[i] != 0) & (w[i] != 0x3f800000u);
        if (other)
            return false;
    }
    return true;
}

/* Checks the mapped file for use in place; FUSE_OK with m->slot >= 0 guarding
 * it when it can be, FUSE_OK with m->slot -1 when not, else an error. */
static fuse_status check_in_place(IoMapped *m, int fd, const char *path, int rank,
                                  const int64_t *shape, bool is_bool, int64_t lo, int64_t hi,
                                  const float **data, char **err)
{
    NpyHeader h;
    fuse_status st = io_npy_parse_header_named(m->map, m->size, path, &h, err);
    if (st != FUSE_OK || !header_fits(&h, rank, shape) || h.dtype != FUSE_F32 ||
        h.data_offset % 64 != 0)
        return st;
    int64_t count = io_shape_count(h.rank, h.shape);
    if (h.data_offset > m->size || m->size - h.data_offset < (uint64_t)count * sizeof(float))
        return FUSE_OK; /* short: the reader reports it */
    m->slot = io_mmap_guard(m->map, m->size);
    if (m->slot < 0)
        return FUSE_OK;
    const char *first = (const char *)m->map + h.data_offset;
    hi = hi < count ? hi : count;
    lo = lo < hi ? lo : hi;
    bool is_plain = !is_bool || is_zero_one((const uint32_t *)(const void *)first + lo, hi - lo);
    if (io_mmap_is_faulted(m->slot))
        return truncated_while_read(fd, path, m->size, err);
    if (!is_plain) {
        io_mmap_unguard(m->slot);
        m->slot = -1;
        return FUSE_OK;
    }
    *data = (const float *)(const void *)first;
    return FUSE_OK;
}

fuse_status io_npy_map_in_place(const char *path, int rank, const int64_t *shape, bool is_bool,
                                IoMapped *m, const float **data, bool *is_mapped, char **err)
{
    return io_npy_map_in_place_part(path, rank, shape, is_bool, 0, INT64_MAX, m, data, is_mapped,
                                    err);
}

fuse_status io_npy_map_in_place_part(const char *path, int rank, const int64_t *shape,
                                     bool is_bool, int64_t lo, int64_t hi, IoMapped *m,
                                     const float **data, bool *is_mapped, char **err)
{
    *m = (IoMapped){.slot = -1};
    *data = NULL;
    *is_mapped = false;
    int fd = open_mapped(path, &m->map, &m->size);
    if (fd < 0) {
        *m = (IoMapped){.slot = -1};
        return FUSE_OK;
    }
    fuse_status st = check_in_place(m, fd, path, rank, shape, is_bool, lo, hi, data, err);
    close(fd);
    if (st != FUSE_OK || !*data) {
        io_npy_unmap(m);
        *data = NULL;
        return st;
    }
    *is_mapped = true;
    return FUSE_OK;
}

bool io_npy_mapped_intact(const IoMapped *m)
{
    return !m->map || !io_mmap_is_faulted(m->slot);
}

void io_npy_unmap(IoMapped *m)
{
    if (!m->map)
        return;
    if (m->slot >= 0)
        io_mmap_unguard(m->slot);
    munmap(m->map, m->size);
    *m = (IoMapped){.slot = -1};
}
