/*
 * npz_write.c: .npz archives written with minizip (zlib's ZIP writer).
 *
 * io_npz_write builds the whole archive in memory (minizip writing through the
 * callbacks below into a growing buffer) and then writes it as every other
 * format is, through sup_write_file_atomic (or, for a sink, beneath the output
 * root); a failure writes nothing. IoOut (the end of the file) writes an .npz
 * or .npy forward into a temporary file instead, a tensor's data in pieces,
 * for a run's exports (runtime/save.c): no copy of them in memory. Members
 * are "<name>.npy", stored as numpy.savez does (deflating 9 MB costs about
 * 400 ms), or deflated on request (io_npz_write_as, as
 * savez_compressed) at level 9, what libzip wrote before. A member that may
 * reach 4 GiB is written with ZIP64 headers; a name that is not ASCII is marked
 * UTF-8. An archive with no members is the bare 22-byte end record.
 *
 * minizip is linked rather than libzip (which npz.c still loads to read): it
 * needs only zlib, already loaded, where libzip brings libcrypto and libbz2,
 * about 3 ms of the start of a run that writes an .npz.
 */
#include "io.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zip.h> /* minizip's (this file alone has its include directory) */

/* ---- minizip's streams ---- */

/* minizip writes forward, and seeks back to complete each member's local
 * header (CRC and sizes) once the data is written. Where a stream is: the
 * first member of both streams below (an archive in memory, a file). */
typedef struct ZipPos {
    uint64_t pos; /* where the next read or write goes */
    uint64_t len; /* bytes written: the furthest offset reached */
} ZipPos;

static ZPOS64_T ZCALLBACK pos_tell(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return ((ZipPos *)stream)->pos;
}

/* Offsets are unsigned: only forward from the origin, and never past the end (no
 * holes). */
static long ZCALLBACK pos_seek(voidpf opaque, voidpf stream, ZPOS64_T offset, int origin)
{
    (void)opaque;
    ZipPos *at = stream;
    uint64_t base = origin == ZLIB_FILEFUNC_SEEK_SET   ? 0
                    : origin == ZLIB_FILEFUNC_SEEK_CUR ? at->pos
                                                       : at->len;
    if (offset > at->len - base)
        return -1;
    at->pos = base + offset;
    return 0;
}

/* The stream is the opaque pointer given with the callbacks (the MemZip or
 * FileZip); its owner frees it, and closes the file, after zipClose. */
static voidpf ZCALLBACK stream_open(voidpf opaque, const void *name, int mode)
{
    (void)name;
    (void)mode;
    return opaque;
}

static int ZCALLBACK stream_close(voidpf opaque, voidpf stream)
{
    (void)opaque;
    (void)stream;
    return 0;
}

/* ---- the archive in memory ---- */

typedef struct MemZip {
    ZipPos at;
    unsigned char *data;
    size_t cap;
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

static uLong ZCALLBACK mem_read(voidpf opaque, voidpf stream, void *buf, uLong size)
{
    (void)opaque;
    MemZip *m = stream;
    size_t n = m->at.len - m->at.pos < size ? m->at.len - m->at.pos : (size_t)size;
    memcpy(buf, m->data + m->at.pos, n);
    m->at.pos += n;
    return (uLong)n;
}

static uLong ZCALLBACK mem_write(voidpf opaque, voidpf stream, const void *buf, uLong size)
{
    (void)opaque;
    MemZip *m = stream;
    if (size > SIZE_MAX - m->at.pos || !mem_reserve(m, m->at.pos + size)) {
        m->nomem = true;
        return 0; /* minizip reports ZIP_ERRNO */
    }
    memcpy(m->data + m->at.pos, buf, size);
    m->at.pos += size;
    if (m->at.pos > m->at.len)
        m->at.len = m->at.pos;
    return size;
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
    size_t need = m->at.pos;
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
    zlib_filefunc64_def io = {stream_open, mem_read, mem_write, pos_tell, pos_seek,
                              stream_close, mem_error, &m};
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
    *len = m.at.len;
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

/* ---- written forward: IoOut ---- */

/* The file of an IoOut: minizip's stream for an .npz, written in place
 * (pwrite at pos), as minizip seeks back to complete each member's header. */
typedef struct FileZip {
    ZipPos at;
    int fd;
    int errnum; /* the first failed write's errno */
} FileZip;

struct IoOut {
    SupTemp *tmp;
    char *path;
    bool is_npz, deflate, in_tensor;
    int n_tensors;      /* begun so far (an .npy holds one) */
    FileZip fz;
    zipFile zf;
    fuse_dtype dtype;   /* of the tensor being written */
    uint64_t left;      /* its data bytes still to come */
    unsigned char *wide; /* room for a piece converted to its file form */
};

static uLong ZCALLBACK file_read(voidpf opaque, voidpf stream, void *buf, uLong size)
{
    (void)opaque;
    FileZip *f = stream;
    ssize_t n = pread(f->fd, buf, size, (off_t)f->at.pos);
    if (n < 0)
        return 0;
    f->at.pos += (uint64_t)n;
    return (uLong)n;
}

static int write_at(FileZip *f, const void *buf, size_t size)
{
    const char *p = buf;
    while (size > 0) {
        ssize_t n = pwrite(f->fd, p, size, (off_t)f->at.pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            f->errnum = f->errnum ? f->errnum : n < 0 ? errno : EIO;
            return -1;
        }
        p += n;
        size -= (size_t)n;
        f->at.pos += (uint64_t)n;
        f->at.len = f->at.pos > f->at.len ? f->at.pos : f->at.len;
    }
    return 0;
}

static uLong ZCALLBACK file_write(voidpf opaque, voidpf stream, const void *buf, uLong size)
{
    (void)opaque;
    return write_at(stream, buf, size) == 0 ? size : 0;
}

static int ZCALLBACK file_error(voidpf opaque, voidpf stream)
{
    (void)opaque;
    return ((FileZip *)stream)->errnum;
}

/* The error of a failed write to the file, or of minizip's rc. */
static fuse_status out_fail(const IoOut *o, int rc, char **err)
{
    if (o->fz.errnum)
        return sup_fail(err, FUSE_E_IO, "%s: cannot write: %s", o->path, strerror(o->fz.errnum));
    return sup_fail(err, rc == Z_MEM_ERROR ? FUSE_E_NOMEM : FUSE_E_IO, "%s: cannot write: %s",
                    o->path, rc == Z_MEM_ERROR ? "out of memory" : "minizip failed");
}

#define IO_OUT_PIECE ((size_t)1 << 16) /* bytes converted at a time (o->wide) */

fuse_status io_out_open(const char *path, bool deflate, IoOut **out, char **err)
{
    *out = NULL;
    const char *dot = path ? strrchr(path, '.') : NULL;
    bool is_npz = dot && strcmp(dot, ".npz") == 0;
    if (!dot || (!is_npz && strcmp(dot, ".npy") != 0))
        return sup_fail(err, FUSE_E_ARG, "%s: not an .npy or .npz file name",
                        path ? path : "(null)");
    IoOut *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path)) || !(o->wide = malloc(2 * IO_OUT_PIECE))) {
        io_out_abort(o);
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
    }
    o->is_npz = is_npz;
    o->deflate = deflate;
    fuse_status st = sup_temp_open(path, &o->tmp, err);
    if (st != FUSE_OK) {
        io_out_abort(o);
        return st;
    }
    o->fz.fd = sup_temp_fd(o->tmp);
    if (is_npz) {
        zlib_filefunc64_def io = {stream_open, file_read, file_write, pos_tell, pos_seek,
                                  stream_close, file_error, &o->fz};
        o->zf = zipOpen2_64(path, APPEND_STATUS_CREATE, NULL, &io);
        if (!o->zf) {
            io_out_abort(o);
            return sup_fail(err, FUSE_E_NOMEM, "%s: cannot create .npz archive", path);
        }
    }
    *out = o;
    return FUSE_OK;
}

fuse_status io_out_begin(IoOut *o, const char *name, const fuse_tensor *meta, char **err)
{
    if (o->in_tensor || (!o->is_npz && o->n_tensors > 0))
        return sup_fail(err, FUSE_E_ARG, "%s: %s", o->path,
                        o->in_tensor ? "a tensor was not finished" : "an .npy holds one tensor");
    fuse_tensor probe = *meta;
    size_t nbytes = 0;
    probe.data = probe.data ? probe.data : o; /* only the shape and dtype are checked */
    fuse_status st = io_tensor_check(&probe, o->path, &nbytes, err);
    if (st != FUSE_OK)
        return st;
    uint8_t head[IO_NPY_HEADER_MAX];
    size_t hlen = io_npy_header(meta, head);
    uint64_t data = meta->dtype == FUSE_BF16 ? 2 * (uint64_t)nbytes : nbytes;
    o->dtype = meta->dtype;
    o->left = nbytes;
    o->in_tensor = true;
    o->n_tensors++;
    if (!o->is_npz)
        return write_at(&o->fz, head, hlen) == 0 ? FUSE_OK : out_fail(o, 0, err);
    char *member = sup_strprintf("%s.npy", name);
    if (!member)
        return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", o->path);
    zip_fileinfo info = now_info();
    int rc = open_member(o->zf, member, &info, (size_t)(hlen + data), o->deflate);
    free(member);
    if (rc == ZIP_OK)
        rc = zipWriteInFileInZip(o->zf, head, (unsigned)hlen);
    return rc == ZIP_OK ? FUSE_OK : out_fail(o, rc, err);
}

/* n bytes of the file's data (converted or as they are) */
static int out_put(IoOut *o, const void *p, size_t n)
{
    if (!o->is_npz)
        return write_at(&o->fz, p, n) == 0 ? ZIP_OK : ZIP_ERRNO;
    return write_data(o->zf, p, n);
}

/* A piece as the file holds it, in o->wide (its bytes returned): bfloat16
 * widened to float32, little-endian. */
static size_t file_form(IoOut *o, const unsigned char *p, size_t n)
{
    size_t es = fuse_dtype_size(o->dtype);
    if (o->dtype == FUSE_BF16) {
        io_convert_to_f32(FUSE_BF16, p, (float *)(void *)o->wide, (int64_t)(n / 2));
        n *= 2, es = 4;
    } else {
        memcpy(o->wide, p, n);
    }
    if (io_host_is_big_endian())
        io_swap_bytes(o->wide, n / es, es);
    return n;
}

fuse_status io_out_data(IoOut *o, const void *p, size_t n, char **err)
{
    if (!o->in_tensor || n > o->left)
        return sup_fail(err, FUSE_E_ARG, "%s: more data than the tensor holds", o->path);
    o->left -= n;
    int rc = ZIP_OK;
    if (o->dtype != FUSE_BF16 && (!io_host_is_big_endian() || fuse_dtype_size(o->dtype) == 1)) {
        rc = out_put(o, p, n);
    } else {
        const unsigned char *c = p;
        for (size_t at = 0; at < n && rc == ZIP_OK; at += IO_OUT_PIECE) {
            size_t piece = n - at < IO_OUT_PIECE ? n - at : IO_OUT_PIECE;
            rc = out_put(o, o->wide, file_form(o, c + at, piece));
        }
    }
    return rc == ZIP_OK ? FUSE_OK : out_fail(o, rc, err);
}

fuse_status io_out_end(IoOut *o, char **err)
{
    if (!o->in_tensor || o->left)
        return sup_fail(err, FUSE_E_ARG, "%s: a tensor's data ended %llu bytes short", o->path,
                        (unsigned long long)o->left);
    o->in_tensor = false;
    int rc = o->is_npz ? zipCloseFileInZip(o->zf) : ZIP_OK;
    return rc == ZIP_OK ? FUSE_OK : out_fail(o, rc, err);
}

fuse_status io_out_commit(IoOut *o, char **err)
{
    fuse_status st = FUSE_OK;
    if (o->in_tensor)
        st = sup_fail(err, FUSE_E_ARG, "%s: a tensor was not finished", o->path);
    if (o->zf) {
        int rc = zipClose(o->zf, NULL); /* frees zf whatever it returns */
        o->zf = NULL;
        if (st == FUSE_OK && rc != ZIP_OK)
            st = out_fail(o, rc, err);
    }
    if (st == FUSE_OK) {
        st = sup_temp_commit(o->tmp, o->path, err);
        o->tmp = NULL;
    }
    io_out_abort(o);
    return st;
}

void io_out_abort(IoOut *o)
{
    if (!o)
        return;
    if (o->zf)
        zipClose(o->zf, NULL);
    sup_temp_discard(o->tmp);
    free(o->wide);
    free(o->path);
    free(o);
}
