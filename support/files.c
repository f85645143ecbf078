/*
 * files.c: whole-file reads, atomic whole-file writes and mkdir -p of a file's
 * parent, for every stage (the runtime's formats, the code cache).
 *
 * Atomic write: the bytes go to a fresh temporary file created with mkstemp in the
 * target's own directory (so rename(2) cannot cross file systems), which is then
 * renamed over the target. On any failure the temporary file is unlinked, so a
 * reader sees either the old file or the complete new one and no stray temporaries
 * are left. The data is not fsync'ed: atomic against concurrent readers and failed
 * writes, not against power loss.
 */
#define _POSIX_C_SOURCE 200809L

#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Sets *err (when err is non-NULL) to "path: what: strerror(errnum)". */
static fuse_status file_error(char **err, const char *path, const char *what, int errnum)
{
    if (err)
        *err = sup_strprintf("%s: %s: %s", path, what, strerror(errnum));
    return FUSE_E_IO;
}

static fuse_status nomem(char **err, const char *path)
{
    if (err)
        *err = sup_strprintf("%s: out of memory", path);
    return FUSE_E_NOMEM;
}

/* Creates one directory unless a directory already exists there. */
static fuse_status make_one_dir(const char *dir, const char *path, char **err)
{
    if (mkdir(dir, 0777) == 0)
        return FUSE_OK;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return FUSE_OK;
        if (err)
            *err = sup_strprintf("%s: cannot create directory '%s': a file of that name "
                                "exists", path, dir);
        return FUSE_E_IO;
    }
    if (err)
        *err = sup_strprintf("%s: cannot create directory '%s': %s", path, dir, strerror(e));
    return FUSE_E_IO;
}

fuse_status sup_make_parent_dirs(const char *path, char **err)
{
    if (!path || !*path) {
        if (err)
            *err = sup_strprintf("(empty path): no file name");
        return FUSE_E_ARG;
    }
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return FUSE_OK; /* parent is "." or "/" */
    size_t len = (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (!dir)
        return nomem(err, path);
    memcpy(dir, path, len);
    dir[len] = '\0';
    fuse_status st = FUSE_OK;
    /* Make each prefix ending just before a '/', then the whole parent. */
    for (size_t i = 1; i <= len && st == FUSE_OK; i++) {
        if (i < len && (dir[i] != '/' || dir[i - 1] == '/'))
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        st = make_one_dir(dir, path, err);
        dir[i] = saved;
    }
    free(dir);
    return st;
}

/* Writes all n bytes to fd, retrying short writes and EINTR; returns 0 or errno. */
static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The process umask, read without changing it (umask(2) is racy across threads);
 * 022 when /proc is unavailable. */
static mode_t current_umask(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 022;
    char line[256];
    mode_t mask = 022;
    while (fgets(line, sizeof line, f)) {
        unsigned m;
        if (sscanf(line, "Umask: %o", &m) == 1) {
            mask = (mode_t)m;
            break;
        }
    }
    fclose(f);
    return mask;
}

/* Mode for the new file: that of the file it replaces, else 0666 minus umask. */
static mode_t target_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return st.st_mode & 07777;
    return 0666 & ~current_umask();
}

/* "<dir>/.<base>.tmpXXXXXX" for mkstemp; NULL on OOM. */
static char *temp_template(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return sup_strprintf(".%s.tmpXXXXXX", path);
    return sup_strprintf("%.*s.%s.tmpXXXXXX", (int)(slash - path + 1), path, slash + 1);
}

/* Fills the open temporary file, fixes its mode and closes it; closes fd always. */
static fuse_status fill_temp(int fd, const char *path, const void *data, size_t n,
                             char **err)
{
    int e = write_all(fd, data, n);
    if (e == 0 && fchmod(fd, target_mode(path)) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    return e ? file_error(err, path, "cannot write", e) : FUSE_OK;
}

/* Removes the temporaries a killed write of `path` left: files named as
 * temp_template names them (".NAME.tmpXXXXXX", beside the target) whose last
 * change is over an hour old, so a write in progress elsewhere keeps its own.
 * Best effort: nothing here fails the write. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? sup_strprintf("%.*s", (int)(slash - path + 1), path) : strdup(".");
    char *prefix = sup_strprintf(".%s.tmp", slash ? slash + 1 : path);
    DIR *d = dir && prefix ? opendir(dir) : NULL;
    size_t plen = prefix ? strlen(prefix) : 0;
    time_t old = time(NULL) - SUP_STALE_TEMP_SECONDS;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) != 0 || strlen(de->d_name) != plen + 6)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_mtime < old)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d)
        closedir(d);
    free(prefix);
    free(dir);
}

fuse_status sup_write_file_atomic(const char *path, const void *data, size_t n, char **err)
{
    if (!path || !*path || (n > 0 && !data)) {
        if (err)
            *err = sup_strprintf("%s: invalid arguments to write", path ? path : "(null)");
        return FUSE_E_ARG;
    }
    size_t plen = strlen(path);
    if (path[plen - 1] == '/') {
        if (err)
            *err = sup_strprintf("%s: is a directory, not a file name", path);
        return FUSE_E_IO;
    }
    fuse_status st = sup_make_parent_dirs(path, err);
    if (st != FUSE_OK)
        return st;
    remove_stale_temps(path);
    char *tmp = temp_template(path);
    if (!tmp)
        return nomem(err, path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = file_error(err, path, "cannot create a temporary file", errno);
        free(tmp);
        return st;
    }
    st = fill_temp(fd, path, data, n, err);
    if (st == FUSE_OK && rename(tmp, path) != 0)
        st = file_error(err, path, "cannot replace the file", errno);
    if (st != FUSE_OK)
        unlink(tmp);
    free(tmp);
    return st;
}

/* Reads fd to EOF into a growing buffer (works for pipes and changing files). */
static fuse_status read_fd(int fd, const char *path, size_t hint, void **data, size_t *n,
                           char **err)
{
    size_t cap = hint + 2, len = 0; /* room for the NUL and a read that sees EOF */
    char *buf = malloc(cap);
    if (!buf)
        return nomem(err, path);
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return nomem(err, path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return file_error(err, path, "cannot read", e);
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *data = buf;
    *n = len;
    return FUSE_OK;
}

fuse_status sup_read_file(const char *path, void **data, size_t *n, char **err)
{
    if (!path || !data || !n) {
        if (err)
            *err = sup_strprintf("%s: invalid arguments to read", path ? path : "(null)");
        return FUSE_E_ARG;
    }
    *data = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return file_error(err, path, "cannot open", errno);
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e != 0) {
        close(fd);
        return file_error(err, path, "cannot read", e);
    }
    size_t hint = st.st_size > 0 && (uint64_t)st.st_size < SIZE_MAX / 2 ? (size_t)st.st_size
                                                                       : 4096;
    fuse_status s = read_fd(fd, path, hint, data, n, err);
    close(fd);
    return s;
}
