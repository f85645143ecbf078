/*
 * dl.c: symbols of a library loaded with dlopen, for the optional libraries
 * fuse-jit loads only when a feature first needs them (libzip, libedit, Open
 * MPI).
 */
#include <dlfcn.h>
#include <string.h>

#include "support.h"

bool sup_dl_symbol(void *lib, const char *name, void *slot, size_t n)
{
    void *sym = dlsym(lib, name);
    if (!sym)
        return false;
    /* dlsym returns a void *; POSIX guarantees it converts to a function
     * pointer, and a library's object handles are the address itself. */
    memcpy(slot, &sym, n);
    return true;
}
