/*
 * npz.c: .npz archives (ZIP files of .npy members), read with libzip; npz_write.c
 * writes them (with minizip).
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
 * libzip is called through io_zip (zip_dl.c), loaded on the first read of an
 * .npz: a process that never reads one never loads it (nor libcrypto, libbz2...
 * which it brings).
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
