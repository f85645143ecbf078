/*
 * npz.c: .npz archives (ZIP files of .npy members), read and written with libzip.
 *
 * Reading streams the chosen member (stored or deflated; ZIP64 is libzip's job)
 * through io_npy_read_exact, so data is inflated straight into the tensor, then
 * reads once more to reach the member's end, so that libzip checks its CRC. The
 * member's declared size is trusted only as far as it is checked: it must fit
 * what the compressed bytes can inflate to, and equal the size of the .npy image
 * its header describes, before the data is allocated; inflating stops at that
 * size, and a member that inflates to more or less is an error. Member choice: the
 * explicit member if one is named; else "arr_0"; else the only member; else the
 * fallback (the tensor's name). A name N matches the member "N.npy" first, then a
 * member called exactly "N".
 *
 * Writing builds the whole archive in memory (libzip writing to a buffer source)
 * and writes it as every other format does, through sup_write_file_atomic (or, for a sink,
 * beneath the output root); a failure writes nothing. Members are stored, as
 * numpy.savez does (deflating 9 MB costs about 400 ms), or deflated on request
 * (io_npz_write_as, as savez_compressed). An archive with no members is the bare
 * 22-byte end record, because libzip deletes rather than writes an empty archive.
 *
 * libzip is called through io_zip (zip_dl.c), loaded on the first read or write
 * of an .npz: a process that never touches one never loads it (nor libcrypto,
 * libbz2... which it brings).
 */
#include "io.h"

#include <stdlib.h>
#include <string.h>

#include "zip_dl.h"

/* ---- reading ---- */

typedef struct ZipStream {
    zip_file_t *zf;
    bool failed; /* zip_fread reported an error (corrupt data, bad CRC, I/O) */
} ZipStream;

static int64_t zip_stream_read(void *ctx, void *dst, size_t n)
{
    ZipStream *s = ctx;
    zip_int64_t r = io_zip.zip_fread(s->zf, dst, n);
    if (r < 0)
        s->failed = true;
    return r < 0 ? -1 : (int64_t)r;
}

static fuse_status open_archive(const char *path, zip_t **za, char **err)
{
    int code = 0;
    *za = io_zip.zip_open(path, ZIP_RDONLY, &code);
    if (*za)
        return FUSE_OK;
    zip_error_t ze;
    io_zip.zip_error_init_with_code(&ze, code);
    fuse_status st = sup_fail(err, FUSE_E_IO, "%s: cannot open .npz archive: %s", path,
                             io_zip.zip_error_strerror(&ze));
    io_zip.zip_error_fini(&ze);
    return st;
}

/* Index of the member "<name>.npy", else "<name>"; -1 if neither exists. */
static zip_int64_t locate(zip_t *za, const char *name)
{
    char *with_ext = sup_strprintf("%s.npy", name);
    zip_int64_t idx = with_ext ? io_zip.zip_name_locate(za, with_ext, 0) : -1;
    free(with_ext);
    return idx >= 0 ? idx : io_zip.zip_name_locate(za, name, 0);
}

/* Number of file (non-directory) members; *only is the last one's index. */
static zip_int64_t count_files(zip_t *za, zip_int64_t *only)
{
    zip_int64_t n = io_zip.zip_get_num_entries(za, 0), files = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = io_zip.zip_get_name(za, (zip_uint64_t)i, 0);
        size_t len = name ? strlen(name) : 0;
        if (len > 0 && name[len - 1] != '/') {
            files++;
            *only = i;
        }
    }
    return files;
}

static fuse_status choose_member(zip_t *za, const char *path, const char *member,
                                 const char *fallback, zip_int64_t *idx, char **err)
{
    if (member) {
        *idx = locate(za, member);
        return *idx >= 0 ? FUSE_OK
                         : sup_fail(err, FUSE_E_IO, "%s: the archive has no member '%s'", path,
                                   member);
    }
    zip_int64_t only = -1, files = count_files(za, &only);
    if (files == 0)
        return sup_fail(err, FUSE_E_IO, "%s: the archive contains no arrays", path);
    if ((*idx = locate(za, "arr_0")) >= 0)
        return FUSE_OK;
    if (files == 1) {
        *idx = only;
        return FUSE_OK;
    }
    if (fallback && (*idx = locate(za, fallback)) >= 0)
        return FUSE_OK;
    return sup_fail(err, FUSE_E_IO,
                   "%s: the archive has %lld members and none is named 'arr_0'%s%s%s", path,
                   (long long)files, fallback ? " or '" : "", fallback ? fallback : "",
                   fallback ? "'" : "");
}

/* Deflate cannot expand its input more than 1032 times (a 258-byte match in about
 * two bits); a member declaring more than that is lying about its size. */
#define NPZ_DEFLATE_MAX_RATIO 1032

/* The member's declared (uncompressed) size, checked against what its compressed
 * bytes can hold before anything is sized from it; UINT64_MAX when not given. */
static fuse_status member_size(zip_t *za, zip_int64_t idx, const char *what, uint64_t *size,
                               char **err)
{
    zip_stat_t sb;
    io_zip.zip_stat_init(&sb);
    *size = UINT64_MAX;
    if (io_zip.zip_stat_index(za, (zip_uint64_t)idx, 0, &sb) != 0 || !(sb.valid & ZIP_STAT_SIZE))
        return FUSE_OK;
    *size = sb.size;
    if (!(sb.valid & ZIP_STAT_COMP_SIZE) || !(sb.valid & ZIP_STAT_COMP_METHOD))
        return FUSE_OK;
    uint64_t most = sb.comp_method == ZIP_CM_STORE ? sb.comp_size
                    : sb.comp_method == ZIP_CM_DEFLATE &&
                            sb.comp_size < UINT64_MAX / NPZ_DEFLATE_MAX_RATIO - 1
                        ? (sb.comp_size + 1) * NPZ_DEFLATE_MAX_RATIO
                        : UINT64_MAX;
    if (sb.size > most)
        return sup_fail(err, FUSE_E_IO, "%s: declares %llu bytes, more than its %llu "
                       "compressed bytes can hold", what, (unsigned long long)sb.size,
                       (unsigned long long)sb.comp_size);
    return FUSE_OK;
}

/* After the .npy image the member must end: one more read must find nothing,
 * which also makes libzip verify the CRC. Inflating stops there, so a member that
 * inflates past its declared size costs no more than the image. */
static fuse_status expect_end(ZipStream *s, const char *what, char **err)
{
    char byte;
    int64_t r = zip_stream_read(s, &byte, 1);
    if (r == 0)
        return FUSE_OK;
    return r < 0 ? FUSE_E_IO /* s->failed: the caller words it */
                 : sup_fail(err, FUSE_E_IO, "%s: inflates to more than its declared size and "
                           "its .npy data", what);
}

/* Decodes member idx; `what` ("a.npz (member x.npy)") names it in errors. */
static fuse_status read_member(zip_t *za, zip_int64_t idx, const char *what,
                               fuse_tensor *out, char **err)
{
    uint64_t size;
    fuse_status st = member_size(za, idx, what, &size, err);
    if (st != FUSE_OK)
        return st;
    ZipStream s = {io_zip.zip_fopen_index(za, (zip_uint64_t)idx, 0), false};
    if (!s.zf)
        return sup_fail(err, FUSE_E_IO, "%s: cannot read: %s", what, io_zip.zip_strerror(za));
    char *msg = NULL;
    st = io_npy_read_exact(zip_stream_read, &s, size, what, out, &msg);
    if (st == FUSE_OK && (st = expect_end(&s, what, &msg)) != FUSE_OK) {
        free(out->data);
        out->data = NULL;
    }
    if (s.failed) {
        free(msg);
        msg = sup_strprintf("%s: corrupt member: %s", what, io_zip.zip_file_strerror(s.zf));
    }
    io_zip.zip_fclose(s.zf);
    if (st != FUSE_OK && err)
        *err = msg;
    else
        free(msg);
    return st;
}

fuse_status io_npz_read(const char *path, const char *member, const char *fallback,
                        fuse_tensor *out, char **err)
{
    if (!path || !out)
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to read",
                       path ? path : "(null)");
    zip_t *za;
    fuse_status st = io_zip_load("reading", path, err);
    if (st == FUSE_OK)
        st = open_archive(path, &za, err);
    if (st != FUSE_OK)
        return st;
    zip_int64_t idx;
    st = choose_member(za, path, member, fallback, &idx, err);
    if (st == FUSE_OK) {
        const char *name = io_zip.zip_get_name(za, (zip_uint64_t)idx, 0);
        char *what = sup_strprintf("%s (member %s)", path, name ? name : "?");
        st = what ? read_member(za, idx, what, out, err)
                  : sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
        free(what);
    }
    io_zip.zip_discard(za); /* read-only: nothing to write back */
    return st;
}

/* ---- writing ---- */

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

/* Adds "<name>.npy", stored, or deflated when deflate is set (as numpy.savez and
 * savez_compressed). On success the archive owns the encoded image. */
static fuse_status add_member(zip_t *za, const char *path, const char *name,
                              const fuse_tensor *t, bool deflate, char **err)
{
    void *img;
    size_t len;
    fuse_status st = io_npy_encode(t, &img, &len, err);
    if (st != FUSE_OK)
        return st;
    zip_source_t *src = io_zip.zip_source_buffer(za, img, len, 1); /* frees img when done */
    if (!src) {
        free(img);
        return sup_fail(err, FUSE_E_NOMEM, "%s: %s", path, io_zip.zip_strerror(za));
    }
    char *member = sup_strprintf("%s.npy", name);
    zip_int64_t idx = member ? io_zip.zip_file_add(za, member, src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
        io_zip.zip_source_free(src); /* still ours: the add failed */
        st = sup_fail(err, member ? FUSE_E_IO : FUSE_E_NOMEM, "%s: cannot add member %s: %s",
                     path, member ? member : name,
                     member ? io_zip.zip_strerror(za) : "out of memory");
    } else if (io_zip.zip_set_file_compression(za, (zip_uint64_t)idx,
                                               deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0) {
        st = sup_fail(err, FUSE_E_IO, "%s: cannot compress member %s: %s", path, member,
                     io_zip.zip_strerror(za));
    }
    free(member);
    return st;
}

/* The bytes of an archive written to the in-memory source mem, into *buf
 * (malloc'd) and *len. */
static fuse_status take_bytes(zip_source_t *mem, const char *path, void **buf, size_t *len,
                              char **err)
{
    zip_stat_t zs;
    io_zip.zip_stat_init(&zs);
    if (io_zip.zip_source_stat(mem, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE) ||
        zs.size > SIZE_MAX - 1 || io_zip.zip_source_open(mem) != 0)
        return sup_fail(err, FUSE_E_IO, "%s: cannot read the archive back: %s", path,
                       io_zip.zip_error_strerror(io_zip.zip_source_error(mem)));
    size_t n = (size_t)zs.size;
    void *b = malloc(n ? n : 1);
    zip_int64_t got = b ? io_zip.zip_source_read(mem, b, n) : -1;
    io_zip.zip_source_close(mem);
    if (!b || got < 0 || (zip_uint64_t)got != n) {
        free(b);
        return sup_fail(err, b ? FUSE_E_IO : FUSE_E_NOMEM, "%s: cannot read the archive "
                       "back: %s", path,
                       b ? io_zip.zip_error_strerror(io_zip.zip_source_error(mem))
                         : "out of memory");
    }
    *buf = b;
    *len = n;
    return FUSE_OK;
}

/* libzip builds the archive in a memory buffer source (kept past zip_close, which
 * would otherwise free it) and the bytes are then copied out. An archive with no
 * members is the bare end-of-central-directory record: libzip would write none. */
fuse_status io_npz_encode_as(const char *path, const char *const *names,
                             const fuse_tensor *tensors, int n, bool deflate, void **buf,
                             size_t *len, char **err)
{
    static const unsigned char eocd[22] = {'P', 'K', 5, 6};
    path = path && *path ? path : ".npz archive";
    fuse_status st = check_members(path, names, tensors, n, err);
    if (st != FUSE_OK)
        return st;
    if (n == 0) {
        *buf = malloc(sizeof eocd);
        if (!*buf)
            return sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
        memcpy(*buf, eocd, sizeof eocd);
        *len = sizeof eocd;
        return FUSE_OK;
    }
    if ((st = io_zip_load("writing", path, err)) != FUSE_OK)
        return st;
    zip_error_t ze;
    io_zip.zip_error_init(&ze);
    zip_source_t *mem = io_zip.zip_source_buffer_create(NULL, 0, 0, &ze);
    zip_t *za = mem ? io_zip.zip_open_from_source(mem, ZIP_TRUNCATE, &ze) : NULL;
    if (!za) {
        st = sup_fail(err, FUSE_E_NOMEM, "%s: cannot create .npz archive: %s", path,
                     io_zip.zip_error_strerror(&ze));
        io_zip.zip_source_free(mem); /* still ours: the open failed */
        io_zip.zip_error_fini(&ze);
        return st;
    }
    io_zip.zip_error_fini(&ze);
    io_zip.zip_source_keep(mem);
    for (int i = 0; i < n && st == FUSE_OK; i++)
        st = add_member(za, path, names[i], &tensors[i], deflate, err);
    if (st == FUSE_OK && io_zip.zip_close(za) != 0)
        st = sup_fail(err, FUSE_E_IO, "%s: cannot write .npz archive: %s", path,
                     io_zip.zip_strerror(za));
    if (st != FUSE_OK)
        io_zip.zip_discard(za);
    else
        st = take_bytes(mem, path, buf, len, err);
    io_zip.zip_source_free(mem);
    return st;
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
