/*
 * npz_write.c: .npz archives written with minizip (zlib's ZIP writer).
 *
 * The whole archive is built in memory (minizip writing through the callbacks
 * below into a growing buffer) and then written as every other format is, through
 * sup_write_file_atomic (or, for a sink, beneath the output root); a failure
 * writes nothing. Members are "<name>.npy", stored as numpy.savez does (deflating
 * 9 MB costs about 400 ms), or deflated on request (io_npz_write_as, as
 * savez_compressed) at level 9, what libzip wrote before. A member that may
 * reach 4 GiB is written with ZIP64 headers; a name that is not ASCII is marked
 * UTF-8. An archive with no members is the bare 22-byte end record.
 *
 * minizip is linked rather than libzip (which npz.c still loads to read): it
 * needs only zlib, already loaded, where libzip brings libcrypto and libbz2,
 * about 3 ms of the start of a run that writes an .npz.
 */
#include "io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zip.h> /* minizip's (this file alone has its include directory) */

/* ---- the archive in memory ---- */

/* minizip's output: it writes forward, and seeks back to complete each member's
 * local header (CRC and sizes) once the data is written. */
typedef struct MemZip {
    unsigned char *data;
    size_t len; /* bytes written: the furthest offset reached */
    size_t cap;
    size_t pos; /* where the next read or write goes */
    bool nomem; /* a write could not grow the buffer */
} MemZip;

static bool mem_reserve(MemZip *m, size_t need)
{
    if (need <= m->cap)
        return true;
    /* by half at least, so that many small members stay linear, and not double,
     * which would be a lot of spare room after one large member */
    size_t grown = m->cap > SIZE_MAX / 3 * 2 ? SIZE_MAX : m->cap + m->cap / 2;
    size_t cap = grown < need ? need : grown;
    unsigned char *p = realloc(m->data, cap);
    if (!p)
        return false;
    m->data = p;
    m->cap = cap;
    return true;
}

static voidpf ZCALLBACK mem_open(voidpf opaque, const void *name, int mode)
{
    (void)name;
    (void)mode;
    return opaque; /* the stream is the buffer itself */
}

static uLong ZCALLBACK mem_read(voidpf opaque, voidpf stream, void *buf, uLong size)
{
    (void)opaque;
    MemZip *m = stream;
    size_t n = m->len - m->pos < size ? m->len - m->pos : (size_t)size;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (uLong)n;
}

static uLong ZCALLBACK mem_write(voidpf opaque, voidpf stream, const void *buf, uLong size)
{
    (void)opaque;
    MemZip *m = stream;
    if (size > SIZE_MAX - m->pos || !mem_reserve(m, m->pos + size)) {
        m->nomem = true;
        return 0; /* minizip reports ZIP_ERRNO */
    }
    memcpy(m->data + m->pos, buf, size);
    m->pos += size;
    if (m->pos > m->len)
        m->len = m->pos;
    return size;
}

static ZPOS64_T ZCALLBACK mem_tell(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return ((MemZip *)stream)->pos;
}

/* Offsets are unsigned: only forward from the origin, and never past the end (no
 * holes). */
static long ZCALLBACK mem_seek(voidpf opaque, voidpf stream, ZPOS64_T offset, int origin)
{
    (void)opaque;
    MemZip *m = stream;
    size_t base = origin == ZLIB_FILEFUNC_SEEK_SET   ? 0
                  : origin == ZLIB_FILEFUNC_SEEK_CUR ? m->pos
                                                     : m->len;
    if (offset > m->len - base)
        return -1;
    m->pos = base + (size_t)offset;
    return 0;
}

static int ZCALLBACK mem_close(voidpf opaque, voidpf stream)
{
    (void)opaque;
    (void)stream;
    return 0; /* the buffer outlives the zipFile: the caller takes or frees it */
}

static int ZCALLBACK mem_error(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return ((MemZip *)stream)->nomem;
}

/* ---- members ---- */

static fuse_status check_members(const char *path, const char *const *names,
                                 const fuse_tensor *tensors, int n, char **err)
{
    if (n < 0 || (n > 0 && (!names || !tensors)))
        return sup_fail(err, FUSE_E_ARG, "%s: invalid member list", path);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !*names[i])
            return sup_fail(err, FUSE_E_ARG, "%s: member %d has no name", path, i);
        char *what = sup_strprintf("%s (member %s)", path, names[i]);
        fuse_status st = io_tensor_check(&tensors[i], what ? what : path, NULL, err);
        free(what);
        if (st != FUSE_OK)
            return st;
    }
    return FUSE_OK;
}

/* minizip adds a second member of the same name without a word; a reader would
 * then see only one of them. */
static fuse_status check_unique(const char *path, const char *const *names, int n, char **err)
{
    bool is_oom;
    const char *dup = sup_duplicate_name(names, (size_t)n, &is_oom);
    if (is_oom)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    if (dup)
        return sup_fail(err, FUSE_E_IO, "%s: cannot add member %s.npy: a member of that "
                        "name is already there", path, dup);
    return FUSE_OK;
}

/* Why a minizip call returned rc (not ZIP_OK). */
static const char *zip_reason(const MemZip *m, int rc)
{
    if (m->nomem || rc == Z_MEM_ERROR)
        return "out of memory";
    return rc == ZIP_PARAMERROR ? "invalid argument"
           : rc == ZIP_INTERNALERROR ? "minizip internal error"
                                     : "zlib error";
}

static fuse_status zip_fail(const MemZip *m, int rc, const char *path, const char *doing,
                            const char *member, char **err)
{
    bool nomem = m->nomem || rc == Z_MEM_ERROR;
    return sup_fail(err, nomem ? FUSE_E_NOMEM : FUSE_E_IO, "%s: cannot %s%s: %s", path, doing,
                    member ? member : "", zip_reason(m, rc));
}

/* Bit 11 of the general-purpose flags: the name is UTF-8 (else CP437). */
#define ZIP_FLAG_UTF8 (1u << 11)

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* Starts member `name`, stored or deflated, of len bytes. */
static int open_member(zipFile zf, const char *name, const zip_fileinfo *info, size_t len,
                       bool deflate)
{
    /* ZIP64 when a size may not fit in 32 bits: deflating can grow data a little. */
    uLong most = deflate ? compressBound((uLong)len) : (uLong)len;
    int zip64 = len >= 0xffffffffu || most >= 0xffffffffu;
    return zipOpenNewFileInZip4_64(zf, name, info, NULL, 0, NULL, 0, NULL,
                                   deflate ? Z_DEFLATED : 0,
                                   deflate ? Z_BEST_COMPRESSION : 0, 0, -MAX_WBITS,
                                   DEF_MEM_LEVEL, Z_DEFAULT_STRATEGY, NULL, 0, 0,
                                   is_ascii(name) ? 0 : ZIP_FLAG_UTF8, zip64);
}

/* zipWriteInFileInZip takes an unsigned length: 1 GiB at a time. */
static int write_data(zipFile zf, const unsigned char *p, size_t len)
{
    int rc = ZIP_OK;
    while (len > 0 && rc == ZIP_OK) {
        unsigned chunk = len > (1u << 30) ? 1u << 30 : (unsigned)len;
        rc = zipWriteInFileInZip(zf, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return rc;
}

/* Upper bounds of the headers' sizes: local (30 bytes, the name, a ZIP64 extra
 * field of 20), central (46, the name, a ZIP64 extra of 32), and the end records
 * (ZIP64 end and locator: 76, plain: 22). */
#define ZIP_LOCAL_MAX(name_len) (30 + (name_len) + 20)
#define ZIP_CENTRAL_MAX(name_len) (46 + (name_len) + 32)
#define ZIP_END_MAX (76 + 22)

/* Room for the member and, should it be the last, the whole central directory
 * (*central: its size so far, this member's entry added) and end: reserved
 * before minizip is called, whose writes then cannot fail. (A failed write
 * inside zipOpenNewFileInZip would leak minizip's header block.) */
static bool reserve_member(MemZip *m, size_t name_len, size_t len, bool deflate,
                           size_t *central)
{
    uLong most = deflate ? compressBound((uLong)len) : (uLong)len;
    *central += ZIP_CENTRAL_MAX(name_len);
    size_t need = m->pos;
    size_t parts[] = {ZIP_LOCAL_MAX(name_len), (size_t)most, *central, ZIP_END_MAX};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i] > SIZE_MAX - need)
            return false;
        need += parts[i];
    }
    return mem_reserve(m, need);
}

static fuse_status add_member(zipFile zf, MemZip *m, const char *path, const char *name,
                              const fuse_tensor *t, const zip_fileinfo *info, bool deflate,
                              size_t *central, char **err)
{
    void *img;
    size_t len;
    fuse_status st = io_npy_encode(t, &img, &len, err);
    if (st != FUSE_OK)
        return st;
    char *member = sup_strprintf("%s.npy", name);
    if (!member || !reserve_member(m, strlen(member), len, deflate, central)) {
        free(img);
        free(member);
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    }
    int rc = open_member(zf, member, info, len, deflate);
    if (rc == ZIP_OK) {
        rc = write_data(zf, img, len);
        int closed = zipCloseFileInZip(zf);
        rc = rc != ZIP_OK ? rc : closed;
    }
    free(img);
    if (rc != ZIP_OK)
        st = zip_fail(m, rc, path, "add member ", member, err);
    free(member);
    return st;
}

/* The members' time: now, local, as libzip and numpy.savez write it. */
static zip_fileinfo now_info(void)
{
    zip_fileinfo info = {0};
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) {
        info.tmz_date = (tm_zip){(uInt)tm.tm_sec, (uInt)tm.tm_min, (uInt)tm.tm_hour,
                                 (uInt)tm.tm_mday, (uInt)tm.tm_mon, (uInt)tm.tm_year + 1900};
    }
    return info;
}

/* minizip writes into a MemZip (zipOpen2_64 with the callbacks above); the
 * buffer becomes *buf. */
fuse_status io_npz_encode_as(const char *path, const char *const *names,
                             const fuse_tensor *tensors, int n, bool deflate, void **buf,
                             size_t *len, char **err)
{
    path = path && *path ? path : ".npz archive";
    fuse_status st = check_members(path, names, tensors, n, err);
    if (st == FUSE_OK)
        st = check_unique(path, names, n, err);
    if (st != FUSE_OK)
        return st;
    MemZip m = {0};
    zlib_filefunc64_def io = {mem_open, mem_read, mem_write, mem_tell, mem_seek,
                              mem_close, mem_error, &m};
    zipFile zf = mem_reserve(&m, ZIP_END_MAX) /* the end, should there be no member */
                     ? zipOpen2_64(path, APPEND_STATUS_CREATE, NULL, &io)
                     : NULL;
    if (!zf) {
        free(m.data);
        return sup_fail(err, FUSE_E_NOMEM, "%s: cannot create .npz archive: out of memory",
                        path);
    }
    zip_fileinfo info = now_info();
    size_t central = 0;
    for (int i = 0; i < n && st == FUSE_OK; i++)
        st = add_member(zf, &m, path, names[i], &tensors[i], &info, deflate, &central, err);
    int rc = zipClose(zf, NULL); /* frees zf whatever it returns */
    if (st == FUSE_OK && rc != ZIP_OK)
        st = zip_fail(&m, rc, path, "write .npz archive", NULL, err);
    if (st != FUSE_OK) {
        free(m.data);
        return st;
    }
    *buf = m.data;
    *len = m.len;
    return FUSE_OK;
}

fuse_status io_npz_encode(const char *path, const char *const *names,
                          const fuse_tensor *tensors, int n, void **buf, size_t *len,
                          char **err)
{
    return io_npz_encode_as(path, names, tensors, n, false, buf, len, err);
}

fuse_status io_npz_write_as(const char *path, const char *const *names,
                            const fuse_tensor *tensors, int n, bool deflate, char **err)
{
    if (!path || !*path)
        return sup_fail(err, FUSE_E_ARG, "(null): no .npz path given");
    void *img;
    size_t len;
    fuse_status st = io_npz_encode_as(path, names, tensors, n, deflate, &img, &len, err);
    if (st != FUSE_OK)
        return st;
    st = sup_write_file_atomic(path, img, len, err);
    free(img);
    return st;
}

fuse_status io_npz_write(const char *path, const char *const *names,
                         const fuse_tensor *tensors, int n, char **err)
{
    return io_npz_write_as(path, names, tensors, n, false, err);
}
