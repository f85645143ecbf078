/*
 * zip_dl.c: libzip, loaded with dlopen the first time an .npz is read (npz_write.c
 * writes them with minizip, which needs only zlib).
 *
 * Linking libzip made every process load and relocate it and what it depends on
 * (libcrypto, libbz2, libzstd, liblzma...), about a millisecond of each start,
 * though most programs never touch an .npz. The soname is the one zip.h belongs
 * to (libzip 1.x); $FUSE_JIT_LIBZIP names another library to load instead (the
 * tests use it to check the error). The handle stays open for the process.
 */
#include "zip_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define IO_ZIP_SONAME "libzip.so.4"

IoZip io_zip;

static pthread_once_t zip_once = PTHREAD_ONCE_INIT;
static bool zip_loaded;
/* What was loaded and, on failure, why: kept so that every later call (on any
 * thread: dlerror's text is per thread and gone after one read) says the same. */
static char zip_library[256];
static char zip_why[512];

static bool resolve_all(void *lib)
{
    bool ok = true;
#define IO_ZIP_RESOLVE(name) ok = ok && sup_dl_symbol(lib, #name, &io_zip.name, sizeof io_zip.name);
    IO_ZIP_FUNCTIONS(IO_ZIP_RESOLVE)
#undef IO_ZIP_RESOLVE
    return ok;
}

static void zip_load(void)
{
    const char *name = getenv("FUSE_JIT_LIBZIP");
    snprintf(zip_library, sizeof zip_library, "%s", name && *name ? name : IO_ZIP_SONAME);
    void *lib = dlopen(zip_library, RTLD_NOW | RTLD_LOCAL);
    if (lib && resolve_all(lib)) {
        zip_loaded = true;
        return;
    }
    const char *why = dlerror();
    snprintf(zip_why, sizeof zip_why, "%s", why ? why : "a libzip function is missing");
    if (lib)
        dlclose(lib);
}

fuse_status io_zip_load(const char *verb, const char *path, char **err)
{
    if (pthread_once(&zip_once, zip_load) == 0 && zip_loaded)
        return FUSE_OK;
    return sup_fail(err, FUSE_E_IO, "%s %s needs libzip (%s): %s", verb, path,
                    zip_library[0] ? zip_library : IO_ZIP_SONAME,
                    zip_why[0] ? zip_why : "cannot be loaded");
}
