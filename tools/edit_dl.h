/*
 * edit_dl.h: the libedit functions the REPL calls, as pointers loaded with
 * dlopen when a terminal session starts (edit_dl.c). histedit.h is included for
 * the types and prototypes only; fuse-jit does not link libedit.
 */
#ifndef FUSE_EDIT_DL_H
#define FUSE_EDIT_DL_H

#include <histedit.h>
#include <stdbool.h>
#include <stddef.h>

/* Every libedit function repl.c uses; X(name) once each. */
#define EDIT_FUNCTIONS(X)                                                                \
    X(el_init) X(el_end) X(el_get) X(el_gets) X(el_set) X(el_wset) X(el_line)            \
    X(el_insertstr) X(history_init) X(history_end) X(history)

/* One field per function, named and typed as libedit declares it. */
typedef struct EditLib {
#define EDIT_FIELD(name) __typeof__(&name) name;
    EDIT_FUNCTIONS(EDIT_FIELD)
#undef EDIT_FIELD
} EditLib;

/* The table; valid once edit_lib_load returned true. */
extern EditLib edit_lib;

/* Loads libedit once (libedit.so.2, or the library $FUSE_JIT_LIBEDIT names);
 * false with the reason in why (cap bytes) when it cannot be loaded. */
bool edit_lib_load(char *why, size_t cap);

#endif
