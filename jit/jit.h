/*
 * jit.h: the LLVM ORC JIT session of fuse-jit. Given an LLVM module built by
 * lower/, optimise it for the host CPU (new pass manager, O3), compile it in-process
 * and hand back symbol addresses. It does not run programs.
 *
 * Ownership: a JitModule owns a thread-safe LLVM context and a module in it until
 * jit_module_load, which hands both to LLJIT (the JitModule is then empty and only
 * needs jit_module_free). A JitCode owns the loaded machine code (through an ORC
 * resource tracker); freeing it removes the code from the session. Code loaded
 * from an object file (jit_object_load, used by the code cache) lives in a
 * JITDylib of its own, so the same object can be loaded by several runners.
 *
 * Errors: functions return fuse_status and, on failure, set *err to a malloc'd
 * message (caller frees) when err is not NULL.
 */
#ifndef FUSE_JIT_H
#define FUSE_JIT_H

#include <stdbool.h>
#include <stddef.h>

#include <llvm-c/Core.h>

#include "fuse.h"

typedef struct JitSession JitSession;
typedef struct JitModule JitModule;
typedef struct JitCode JitCode;

/* Creates an LLJIT for the host (CPU name and features detected), with process
 * symbols (libm, libc) resolvable from generated code. */
fuse_status jit_session_new(JitSession **out, char **err);
/* Accepts NULL. Every JitCode of the session must be freed first. */
void jit_session_free(JitSession *js);

/* Host target description (owned by the session; valid until it is freed). */
const char *jit_target_triple(const JitSession *js);
const char *jit_cpu_name(const JitSession *js);
const char *jit_cpu_features(const JitSession *js);
/* Widest vector register in bits the kernels should use (512 with AVX-512). */
int jit_vector_bits(const JitSession *js);

/* A fresh module with the host triple and data layout set, in its own context.
 * Returns NULL on OOM. */
JitModule *jit_module_new(JitSession *js, const char *name);
LLVMContextRef jit_module_context(JitModule *jm);
LLVMModuleRef jit_module_llvm(JitModule *jm);
/* Verifies the module (FUSE_E_JIT with LLVM's message if it is broken), then runs
 * the O3 pipeline for the host target machine. */
fuse_status jit_module_optimize(JitSession *js, JitModule *jm, char **err);
/* The module as LLVM IR text; malloc'd, caller frees; NULL on OOM. */
char *jit_module_print(JitModule *jm);
/* The module compiled to host assembly text; *text malloc'd, caller frees. */
fuse_status jit_module_asm(JitSession *js, JitModule *jm, char **text, char **err);
/* Compiles and loads the module into the session. The module moves to LLJIT; jm is
 * left empty (still freed with jit_module_free). */
fuse_status jit_module_load(JitSession *js, JitModule *jm, JitCode **out, char **err);
/* Accepts NULL. */
void jit_module_free(JitModule *jm);

/* Compiles an (optimised) module to a relocatable object file for the host:
 * *data malloc'd, *n bytes. Code generation rewrites the module's IR; only free it
 * afterwards. */
fuse_status jit_module_emit_object(JitSession *js, JitModule *jm, void **data, size_t *n,
                                   char **err);
/* Links an object file (from jit_module_emit_object) into a JITDylib of its own, so
 * the same object may be loaded any number of times; the bytes are copied. Lookups
 * through the returned code search only that JITDylib (and process symbols). A
 * malformed object is FUSE_E_JIT. */
fuse_status jit_object_load(JitSession *js, const void *data, size_t n, JitCode **out,
                            char **err);

/* tucker: at most this many host symbols per session. */
#define JIT_MAX_HOST_SYMBOLS 16
/* Makes `name` resolve to addr (a function of this process) in code the session
 * loads: defined as an absolute symbol in the main JITDylib and in the JITDylib of
 * every object loaded afterwards. Call it right after jit_session_new, before any
 * code is loaded and not concurrently with other calls on the session. Defining a
 * name twice is FUSE_E_JIT. */
fuse_status jit_define_symbol(JitSession *js, const char *name, void *addr, char **err);

/* Address of a function defined by loaded code. */
fuse_status jit_code_lookup(JitCode *jc, const char *name, void **addr, char **err);
/* Removes the code from the session. Accepts NULL. */
void jit_code_free(JitCode *jc);

#endif /* FUSE_JIT_H */
