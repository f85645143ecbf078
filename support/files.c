/*
 * files.c: whole-file reads, atomic whole-file writes and mkdir -p of a file's
 * parent, for every stage (the runtime's formats, the code cache).
 *
 * Atomic write: the bytes go to a fresh temporary file created (O_EXCL) in the
 * target's own directory (so rename(2) cannot cross file systems), which is then
 * renamed over the target. On any failure the temporary file is unlinked, so a
 * reader sees either the old file or the complete new one and no stray temporaries
 * are left. The data is not fsync'ed: atomic against concurrent readers and failed
 * writes, not against power loss. Both steps work in an open directory fd, so the
 * directory is resolved once.
 *
 * Writing beneath a root (the sinks' output root): the root is opened, then each
 * directory of the relative path is opened from the root's fd with
 * openat2(RESOLVE_BENEATH), which fails with EXDEV on a symbolic link or ".."
 * that leads out, and a missing one is made with mkdirat inside its parent's fd.
 * Without openat2 (ENOSYS: Linux < 5.6) the path is walked one component at a
 * time with O_NOFOLLOW, refusing every link. Checking the path text first and
 * writing by name later could be raced or fooled by a link; holding fds cannot.
 */
#define _POSIX_C_SOURCE 200809L

#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* openat2 came with Linux 5.6: built against older headers, only the
 * component-wise walk is used. */
#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif
#if defined(RESOLVE_BENEATH) && defined(SYS_openat2)
#define HAVE_OPENAT2 1
#else
#define HAVE_OPENAT2 0
#endif

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

/* Makes the directory dir[0..len) and every missing one above it; `path` names
 * the file being written, for messages. dir is changed and restored in place. */
static fuse_status make_dirs(char *dir, size_t len, const char *path, char **err)
{
    fuse_status st = FUSE_OK;
    /* Make each prefix ending just before a '/', then the whole directory. */
    for (size_t i = 1; i <= len && st == FUSE_OK; i++) {
        if (i < len && (dir[i] != '/' || dir[i - 1] == '/'))
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        st = make_one_dir(dir, path, err);
        dir[i] = saved;
    }
    return st;
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
    fuse_status st = make_dirs(dir, len, path, err);
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

/* Mode for the new file: that of the regular file it replaces (a symbolic link
 * there is replaced, not followed), else 0666 minus umask. */
static mode_t target_mode(int dfd, const char *name)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        return st.st_mode & 07777;
    return 0666 & ~current_umask();
}

/* Random bytes for temporary names: getrandom, else the clock, the pid and a
 * counter stirred by xorshift. The names need only differ: O_EXCL keeps them
 * safe. */
static void fill_random(unsigned char *r, size_t n)
{
    if (getrandom(r, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 ((uint64_t)getpid() << 12) ^
                 (atomic_fetch_add(&counter, 1) + 1) * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r[i] = (unsigned char)x;
    }
}

/* Creates the temporary ".NAME.tmpXXXXXX" (six letters or digits, as mkstemp
 * names them; mkstemp itself has no directory-fd form) in dfd, mode 0600; its
 * name goes to tmp (strlen(name) + 12 bytes). -1 with errno on failure. */
static int create_temp(int dfd, const char *name, char *tmp)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(name);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char r[6];
        fill_random(r, sizeof r);
        snprintf(tmp, len + 12, ".%s.tmp", name);
        for (size_t i = 0; i < sizeof r; i++)
            tmp[len + 5 + i] = alnum[r[i] % (sizeof alnum - 1)];
        tmp[len + 11] = '\0';
        int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Fills the open temporary file, gives it its mode and closes it; closes fd
 * always. */
static fuse_status fill_temp(int fd, mode_t mode, const char *shown, const void *data,
                             size_t n, char **err)
{
    int e = write_all(fd, data, n);
    if (e == 0 && fchmod(fd, mode) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    return e ? file_error(err, shown, "cannot write", e) : FUSE_OK;
}

/* Removes the temporaries a killed write of `name` in dfd left: files named as
 * create_temp names them whose last change is over an hour old, so a write in
 * progress elsewhere keeps its own. Best effort: nothing here fails the write
 * (a directory that cannot be listed is left alone). */
static void remove_stale_temps(int dfd, const char *name)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char *prefix = sup_strprintf(".%s.tmp", name);
    size_t plen = prefix ? strlen(prefix) : 0;
    time_t old = time(NULL) - SUP_STALE_TEMP_SECONDS;
    struct dirent *de;
    while (prefix && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) != 0 || strlen(de->d_name) != plen + 6)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_mtime < old)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
    free(prefix);
}

/* The atomic write proper, of `name` in the open directory dfd; `shown` names
 * the target in messages. The temporary is created and renamed within dfd, so no
 * path is resolved again, and a symbolic link at `name` is replaced by the new
 * file rather than followed. */
static fuse_status write_in_dir(int dfd, const char *name, const char *shown,
                                const void *data, size_t n, char **err)
{
    remove_stale_temps(dfd, name);
    char *tmp = malloc(strlen(name) + 12);
    if (!tmp)
        return nomem(err, shown);
    mode_t mode = target_mode(dfd, name);
    int fd = create_temp(dfd, name, tmp);
    fuse_status st = fd < 0 ? file_error(err, shown, "cannot create a temporary file", errno)
                            : fill_temp(fd, mode, shown, data, n, err);
    if (st == FUSE_OK && renameat(dfd, tmp, dfd, name) != 0)
        st = file_error(err, shown, "cannot replace the file", errno);
    if (st != FUSE_OK && fd >= 0)
        unlinkat(dfd, tmp, 0);
    free(tmp);
    return st;
}

/* A file name (a path's last component) that cannot name a regular file. */
static bool is_dir_name(const char *name)
{
    return !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* *dfd: the directory of path, opened (O_PATH), its parents made. */
static fuse_status open_parent(const char *path, int *dfd, char **err)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (is_dir_name(name)) {
        if (err)
            *err = sup_strprintf("%s: is a directory, not a file name", path);
        return FUSE_E_IO;
    }
    fuse_status st = sup_make_parent_dirs(path, err);
    if (st != FUSE_OK)
        return st;
    char *dir = !slash ? strdup(".") : slash == path ? strdup("/")
                                                     : strndup(path, (size_t)(slash - path));
    if (!dir)
        return nomem(err, path);
    *dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    return *dfd < 0 ? file_error(err, path, "cannot open its directory", errno) : FUSE_OK;
}

fuse_status sup_write_file_atomic(const char *path, const void *data, size_t n, char **err)
{
    if (!path || !*path || (n > 0 && !data)) {
        if (err)
            *err = sup_strprintf("%s: invalid arguments to write", path ? path : "(null)");
        return FUSE_E_ARG;
    }
    int dfd;
    fuse_status st = open_parent(path, &dfd, err);
    if (st != FUSE_OK)
        return st;
    const char *slash = strrchr(path, '/');
    st = write_in_dir(dfd, slash ? slash + 1 : path, path, data, n, err);
    close(dfd);
    return st;
}

/* ---- a file written forward, then put in place ---- */

struct SupTemp {
    int dfd, fd;
    mode_t mode;
    char *name, *tmp; /* the target's name in dfd, the temporary's */
};

fuse_status sup_temp_open(const char *path, SupTemp **out, char **err)
{
    *out = NULL;
    if (!path || !*path)
        return sup_fail(err, FUSE_E_ARG, "(null): no file name given");
    int dfd;
    fuse_status st = open_parent(path, &dfd, err);
    if (st != FUSE_OK)
        return st;
    const char *slash = strrchr(path, '/');
    SupTemp *t = calloc(1, sizeof *t);
    char *name = strdup(slash ? slash + 1 : path);
    char *tmp = name ? malloc(strlen(name) + 12) : NULL;
    if (!t || !tmp) {
        free(t);
        free(name);
        close(dfd);
        return nomem(err, path);
    }
    remove_stale_temps(dfd, name);
    *t = (SupTemp){.dfd = dfd, .mode = target_mode(dfd, name), .name = name, .tmp = tmp};
    t->fd = create_temp(dfd, name, tmp);
    if (t->fd < 0) {
        st = file_error(err, path, "cannot create a temporary file", errno);
        t->fd = -1;
        free(t->tmp);
        t->tmp = NULL; /* not created: nothing to remove */
        sup_temp_discard(t);
        return st;
    }
    *out = t;
    return FUSE_OK;
}

int sup_temp_fd(const SupTemp *t) { return t->fd; }

fuse_status sup_temp_commit(SupTemp *t, const char *shown, char **err)
{
    int e = fchmod(t->fd, t->mode) != 0 ? errno : 0;
    if (close(t->fd) != 0 && e == 0)
        e = errno;
    t->fd = -1;
    fuse_status st = e ? file_error(err, shown, "cannot write", e) : FUSE_OK;
    if (st == FUSE_OK && renameat(t->dfd, t->tmp, t->dfd, t->name) != 0)
        st = file_error(err, shown, "cannot replace the file", errno);
    if (st == FUSE_OK) {
        free(t->tmp);
        t->tmp = NULL; /* in place: nothing to remove */
    }
    sup_temp_discard(t);
    return st;
}

void sup_temp_discard(SupTemp *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    if (t->tmp)
        unlinkat(t->dfd, t->tmp, 0);
    close(t->dfd);
    free(t->tmp);
    free(t->name);
    free(t);
}

/* ---- writing beneath a root ---- */

/* Set once the kernel said it has no openat2 (Linux < 5.6), or by a test. */
static atomic_bool no_openat2;

void sup_beneath_use_walk(bool on)
{
    atomic_store(&no_openat2, on);
}

/* Whether name in dfd is a symbolic link. */
static bool is_link_at(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* Opens the directory `sub` beneath root_fd one component at a time, following no
 * symbolic link and refusing "..": the fallback for kernels without openat2,
 * stricter than RESOLVE_BENEATH (a link that stays inside is refused too). -1
 * with errno, EXDEV for a link or "..". */
static int open_walk(int root_fd, const char *sub)
{
    int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    char comp[NAME_MAX + 1];
    for (const char *p = sub; fd >= 0 && *p; p += strspn(p, "/")) {
        size_t n = strcspn(p, "/");
        bool is_dot = n == 1 && p[0] == '.', is_up = n == 2 && p[0] == '.' && p[1] == '.';
        int e = n > NAME_MAX ? ENAMETOOLONG : is_up ? EXDEV : 0;
        if (e == 0) {
            memcpy(comp, p, n);
            comp[n] = '\0';
        }
        p += n;
        if (e == 0 && is_dot)
            continue;
        int next = e ? -1 : openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && e == 0) {
            e = errno;
            if ((e == ENOTDIR || e == ELOOP) && is_link_at(fd, comp))
                e = EXDEV;
        }
        close(fd);
        fd = next;
        if (fd < 0)
            errno = e;
    }
    return fd;
}

/* openat2(root_fd, sub) of a directory with RESOLVE_BENEATH; -1 with errno,
 * ENOSYS when neither the kernel nor the headers of this build have it. */
static int openat2_beneath(int root_fd, const char *sub)
{
#if HAVE_OPENAT2
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = -1;
    /* EAGAIN: a rename elsewhere raced the lookup; the kernel asks for a retry */
    for (int tries = 0; tries < 8; tries++) {
        fd = (int)syscall(SYS_openat2, root_fd, sub, &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    return fd;
#else
    (void)root_fd;
    (void)sub;
    errno = ENOSYS;
    return -1;
#endif
}

/* Opens the directory rel[0..len) (the root itself when len is 0) beneath root_fd:
 * with openat2(RESOLVE_BENEATH), symbolic links may be followed while they stay
 * under the root; without it, by open_walk. -1 with errno: EXDEV when the path
 * leads out of the root. */
static int open_beneath(int root_fd, const char *rel, size_t len)
{
    char *sub = len ? strndup(rel, len) : strdup(".");
    if (!sub) {
        errno = ENOMEM;
        return -1;
    }
    bool walk = atomic_load(&no_openat2);
    int fd = walk ? -1 : openat2_beneath(root_fd, sub);
    if (!walk && fd < 0 && errno == ENOSYS) {
        atomic_store(&no_openat2, true);
        walk = true;
    }
    if (walk)
        fd = open_walk(root_fd, sub);
    int e = errno;
    free(sub);
    errno = e;
    return fd;
}

/* Opens the directory rel[0..len) beneath root_fd, creating each missing one
 * inside its parent already opened beneath the root, so that mkdirat never
 * resolves a path of its own. -1 with errno. */
static int open_dirs_beneath(int root_fd, const char *rel, size_t len)
{
    int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    char comp[NAME_MAX + 1];
    for (size_t i = 0; fd >= 0 && i < len;) {
        size_t n = 0;
        while (i + n < len && rel[i + n] != '/')
            n++;
        int next = n ? open_beneath(root_fd, rel, i + n) : fd;
        if (next < 0 && errno == ENOENT && n <= NAME_MAX) {
            memcpy(comp, rel + i, n);
            comp[n] = '\0';
            if (mkdirat(fd, comp, 0777) == 0 || errno == EEXIST)
                next = open_beneath(root_fd, rel, i + n);
        }
        int e = errno;
        if (next != fd)
            close(fd);
        fd = next;
        errno = e;
        i += n + 1;
    }
    return fd;
}

/* The message of a write that would leave the root: names the first prefix of
 * rel[0..len) that cannot be opened beneath it, a symbolic link (with its
 * target) or a ".." too many. */
static fuse_status escape_error(int root_fd, const char *root, const char *rel, size_t len,
                                const char *shown, char **err)
{
    bool walk = atomic_load(&no_openat2);
    for (size_t end = 0; end < len;) {
        end += strcspn(rel + end, "/");
        end = end < len ? end : len;
        int fd = open_beneath(root_fd, rel, end);
        if (fd >= 0) {
            close(fd);
            end++;
            continue;
        }
        if (errno != EXDEV)
            break;
        char *sub = strndup(rel, end);
        char target[4096];
        ssize_t tn = sub ? readlinkat(root_fd, sub, target, sizeof target - 1) : -1;
        target[tn >= 0 ? tn : 0] = '\0';
        fuse_status st =
            !sub ? nomem(err, shown)
            : tn < 0 ? sup_fail(err, FUSE_E_IO, "%s: refused: '%s' leads outside '%s'", shown,
                                sub, root)
            : walk ? sup_fail(err, FUSE_E_IO, "%s: refused: '%s' is a symbolic link (to "
                              "'%s'), and without openat2 (Linux < 5.6) no link is followed "
                              "beneath '%s'", shown, sub, target, root)
                   : sup_fail(err, FUSE_E_IO, "%s: refused: '%s' is a symbolic link to '%s', "
                              "which leads outside '%s'", shown, sub, target, root);
        free(sub);
        return st;
    }
    return sup_fail(err, FUSE_E_IO, "%s: refused: the path leads outside '%s'", shown, root);
}

/* Refuses a rel that cannot name a file beneath a root; name is its last
 * component, shown the path for messages. */
static fuse_status check_rel(const char *rel, const char *name, const char *shown, char **err)
{
    if (rel[0] == '/')
        return sup_fail(err, FUSE_E_ARG, "%s: not a relative path", rel);
    if (is_dir_name(name))
        return sup_fail(err, FUSE_E_IO, "%s: is a directory, not a file name", shown);
    return FUSE_OK;
}

fuse_status sup_write_file_beneath(const char *root, const char *rel, const void *data,
                                   size_t n, char **err)
{
    if (!root || !*root || !rel || !*rel || (n > 0 && !data))
        return sup_fail(err, FUSE_E_ARG, "%s: invalid arguments to write", rel ? rel : "(null)");
    char *shown = sup_strprintf("%s/%s", root, rel);
    char *dir = strdup(root); /* make_dirs edits it in place */
    const char *slash = strrchr(rel, '/');
    const char *name = slash ? slash + 1 : rel;
    size_t plen = slash ? (size_t)(slash - rel) : 0;
    fuse_status st = !shown || !dir ? nomem(err, rel) : check_rel(rel, name, shown, err);
    if (st == FUSE_OK)
        st = make_dirs(dir, strlen(dir), shown, err);
    int root_fd = st == FUSE_OK ? open(root, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
    if (st == FUSE_OK && root_fd < 0)
        st = file_error(err, shown, "cannot open the directory it is written under", errno);
    int dfd = st == FUSE_OK ? open_dirs_beneath(root_fd, rel, plen) : -1;
    if (st == FUSE_OK && dfd < 0)
        st = errno == EXDEV ? escape_error(root_fd, root, rel, plen, shown, err)
                            : file_error(err, shown, "cannot open or create its directory", errno);
    if (st == FUSE_OK)
        st = write_in_dir(dfd, name, shown, data, n, err);
    if (dfd >= 0)
        close(dfd);
    if (root_fd >= 0)
        close(root_fd);
    free(dir);
    free(shown);
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
