/*
 * zip_dl.h: the libzip functions npz.c calls to read an .npz, as pointers loaded
 * with dlopen on the first .npz read (zip_dl.c; npz_write.c writes with minizip).
 * zip.h is included for the types and prototypes only; nothing links libzip.
 */
#ifndef FUSE_ZIP_DL_H
#define FUSE_ZIP_DL_H

#include <zip.h>

#include "fusejit.h"

/* Every libzip function npz.c uses (reading only); X(name) once each. */
#define IO_ZIP_FUNCTIONS(X)                                                             \
    X(zip_discard) X(zip_error_fini) X(zip_error_init_with_code) X(zip_error_strerror)  \
    X(zip_fclose) X(zip_file_strerror) X(zip_fopen_index) X(zip_fread) X(zip_get_name)  \
    X(zip_get_num_entries) X(zip_name_locate) X(zip_open) X(zip_stat_index)             \
    X(zip_stat_init) X(zip_strerror)

/* One field per function, named and typed as libzip declares it. */
typedef struct IoZip {
#define IO_ZIP_FIELD(name) __typeof__(&name) name;
    IO_ZIP_FUNCTIONS(IO_ZIP_FIELD)
#undef IO_ZIP_FIELD
} IoZip;

/* The table; valid (and never changed again) once io_zip_load returned FUSE_OK. */
extern IoZip io_zip;

/* Loads libzip once per process (thread-safe): libzip.so.4, or the library named by
 * $FUSE_JIT_LIBZIP. If it cannot be loaded, FUSE_E_IO and *err = "<verb> <path>
 * needs libzip (<library>): <reason>", on this and every later call. */
fuse_status io_zip_load(const char *verb, const char *path, char **err);

#endif
