/*
 * edit_dl.c: libedit, loaded with dlopen when the REPL starts on a terminal.
 *
 * Linking libedit made every fuse-jit process load and relocate it and what it
 * depends on (libtinfo, libbsd, libmd), about 0.3 ms of each start, though only
 * an interactive REPL uses it. The soname is the one histedit.h belongs to
 * (libedit 3.1, soname 2); $FUSE_JIT_LIBEDIT names another library to load
 * instead (the tests use it to check the fallback). The handle stays open for the
 * process. Only the REPL's thread calls this, before any other thread exists.
 */
#include "edit_dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define EDIT_SONAME "libedit.so.2"

EditLib edit_lib;

static bool edit_tried, edit_loaded;
static char edit_why[512];

static void edit_load(void)
{
    const char *env = getenv("FUSE_JIT_LIBEDIT");
    const char *name = env && *env ? env : EDIT_SONAME;
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    bool ok = lib != NULL;
#define EDIT_RESOLVE(fn) ok = ok && sup_dl_symbol(lib, #fn, &edit_lib.fn, sizeof edit_lib.fn);
    EDIT_FUNCTIONS(EDIT_RESOLVE)
#undef EDIT_RESOLVE
    if (ok) {
        edit_loaded = true;
        return;
    }
    const char *why = dlerror();
    snprintf(edit_why, sizeof edit_why, "%s: %s", name,
             why ? why : "a libedit function is missing");
    if (lib)
        dlclose(lib);
}

bool edit_lib_load(char *why, size_t cap)
{
    if (!edit_tried) {
        edit_tried = true;
        edit_load();
    }
    if (!edit_loaded && why && cap)
        snprintf(why, cap, "%s", edit_why);
    return edit_loaded;
}
