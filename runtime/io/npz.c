/*
 * npz.c: .npz archives (ZIP files of .npy members), read and written with libzip.
 *
 * Reading streams the chosen member (stored or deflated; ZIP64 is libzip's job)
 * through io_npy_read_stream, so data is inflated straight into the tensor, then
 * drains the member to its end so that libzip checks its CRC. Member choice: the
 * explicit member if one is named; else "arr_0"; else the only member; else the
 * fallback (the tensor's name). A name N matches the member "N.npy" first, then a
 * member called exactly "N".
 *
 * Writing is atomic: libzip builds the archive in a temporary file beside the
 * target and renames it over the target in zip_close (removing the temporary if
 * that fails); a failure before then discards the archive with zip_discard, which
 * writes nothing. An archive with no members is written as the bare 22-byte end
 * record through sup_write_file_atomic, because libzip deletes rather than writes
 * an empty archive.
 */
#include "io.h"

#include <stdlib.h>
#include <string.h>
#include <zip.h>

/* ---- reading ---- */

typedef struct ZipStream {
    zip_file_t *zf;
    bool failed; /* zip_fread reported an error (corrupt data, bad CRC, I/O) */
} ZipStream;

static int64_t zip_stream_read(void *ctx, void *dst, size_t n)
{
    ZipStream *s = ctx;
    zip_int64_t r = zip_fread(s->zf, dst, n);
    if (r < 0)
        s->failed = true;
    return r < 0 ? -1 : (int64_t)r;
}

static fuse_status open_archive(const char *path, zip_t **za, char **err)
{
    int code = 0;
    *za = zip_open(path, ZIP_RDONLY, &code);
    if (*za)
        return FUSE_OK;
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    fuse_status st = sup_fail(err, FUSE_E_IO, "%s: cannot open .npz archive: %s", path,
                             zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return st;
}

/* Index of the member "<name>.npy", else "<name>"; -1 if neither exists. */
static zip_int64_t locate(zip_t *za, const char *name)
{
    char *with_ext = sup_strprintf("%s.npy", name);
    zip_int64_t idx = with_ext ? zip_name_locate(za, with_ext, 0) : -1;
    free(with_ext);
    return idx >= 0 ? idx : zip_name_locate(za, name, 0);
}

/* Number of file (non-directory) members; *only is the last one's index. */
static zip_int64_t count_files(zip_t *za, zip_int64_t *only)
{
    zip_int64_t n = zip_get_num_entries(za, 0), files = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
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

/* Reads to the member's end, which makes libzip verify the CRC. */
static bool drain(ZipStream *s)
{
    char buf[4096];
    int64_t r;
    while ((r = zip_stream_read(s, buf, sizeof buf)) > 0) {
    }
    return r == 0;
}

/* Decodes member idx; `what` ("a.npz (member x.npy)") names it in errors. */
static fuse_status read_member(zip_t *za, zip_int64_t idx, const char *what,
                               fuse_tensor *out, char **err)
{
    zip_stat_t sb;
    zip_stat_init(&sb);
    uint64_t size = UINT64_MAX;
    if (zip_stat_index(za, (zip_uint64_t)idx, 0, &sb) == 0 && (sb.valid & ZIP_STAT_SIZE))
        size = sb.size;
    ZipStream s = {zip_fopen_index(za, (zip_uint64_t)idx, 0), false};
    if (!s.zf)
        return sup_fail(err, FUSE_E_IO, "%s: cannot read: %s", what, zip_strerror(za));
    char *msg = NULL;
    fuse_status st = io_npy_read_stream(zip_stream_read, &s, size, what, out, &msg);
    if (st == FUSE_OK && !drain(&s)) {
        free(out->data);
        out->data = NULL;
        st = FUSE_E_IO;
    }
    if (s.failed) {
        free(msg);
        msg = sup_strprintf("%s: corrupt member: %s", what, zip_file_strerror(s.zf));
    }
    zip_fclose(s.zf);
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
    fuse_status st = open_archive(path, &za, err);
    if (st != FUSE_OK)
        return st;
    zip_int64_t idx;
    st = choose_member(za, path, member, fallback, &idx, err);
    if (st == FUSE_OK) {
        const char *name = zip_get_name(za, (zip_uint64_t)idx, 0);
        char *what = sup_strprintf("%s (member %s)", path, name ? name : "?");
        st = what ? read_member(za, idx, what, out, err)
                  : sup_fail(err, FUSE_E_NOMEM, "%s: out of memory", path);
        free(what);
    }
    zip_discard(za); /* read-only: nothing to write back */
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

/* Adds "<name>.npy", deflated. On success the archive owns the encoded image. */
static fuse_status add_member(zip_t *za, const char *path, const char *name,
                              const fuse_tensor *t, char **err)
{
    void *img;
    size_t len;
    fuse_status st = io_npy_encode(t, &img, &len, err);
    if (st != FUSE_OK)
        return st;
    zip_source_t *src = zip_source_buffer(za, img, len, 1); /* frees img when done */
    if (!src) {
        free(img);
        return sup_fail(err, FUSE_E_NOMEM, "%s: %s", path, zip_strerror(za));
    }
    char *member = sup_strprintf("%s.npy", name);
    zip_int64_t idx = member ? zip_file_add(za, member, src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
        zip_source_free(src); /* still ours: the add failed */
        st = sup_fail(err, member ? FUSE_E_IO : FUSE_E_NOMEM, "%s: cannot add member %s: %s",
                     path, member ? member : name, member ? zip_strerror(za) : "out of memory");
    } else if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0) != 0) {
        st = sup_fail(err, FUSE_E_IO, "%s: cannot compress member %s: %s", path, member,
                     zip_strerror(za));
    }
    free(member);
    return st;
}

/* An archive with no members: just the end-of-central-directory record. */
static fuse_status write_empty(const char *path, char **err)
{
    static const unsigned char eocd[22] = {'P', 'K', 5, 6};
    return sup_write_file_atomic(path, eocd, sizeof eocd, err);
}

fuse_status io_npz_write(const char *path, const char *const *names,
                         const fuse_tensor *tensors, int n, char **err)
{
    if (!path || !*path)
        return sup_fail(err, FUSE_E_ARG, "(null): no .npz path given");
    fuse_status st = check_members(path, names, tensors, n, err);
    if (st != FUSE_OK)
        return st;
    if (n == 0)
        return write_empty(path, err);
    st = sup_make_parent_dirs(path, err);
    if (st != FUSE_OK)
        return st;
    int code = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        st = sup_fail(err, FUSE_E_IO, "%s: cannot create .npz archive: %s", path,
                     zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    for (int i = 0; i < n && st == FUSE_OK; i++)
        st = add_member(za, path, names[i], &tensors[i], err);
    if (st == FUSE_OK && zip_close(za) == 0)
        return FUSE_OK; /* written, renamed into place and za freed */
    if (st == FUSE_OK)
        st = sup_fail(err, FUSE_E_IO, "%s: cannot write .npz archive: %s", path,
                     zip_strerror(za));
    zip_discard(za); /* nothing reaches the target path */
    return st;
}
