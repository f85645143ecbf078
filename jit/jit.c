/*
 * jit.c: the ORC LLJIT session of fuse-jit. It detects the host CPU, optimises
 * modules built by lower/ with the new pass manager (O3, and a light pipeline
 * for functions vectorised by their emitter), prints them as IR or assembly,
 * and compiles and loads them in-process with LLJIT.
 *
 * Approach. One session holds code generators for the same host description
 * (process triple, CPU name, CPU features, CodeGenOpt Aggressive, PIC, small code
 * model): `tms`, ours, drive the pass pipeline's cost model, object emission and
 * assembly printing;
 * LLJIT owns a second one, made from an identical target machine, for the code it
 * runs. So the assembly jit_module_asm shows is the code the JIT runs. Each
 * JitModule has its own ThreadSafeContext, so modules never share LLVM state. A
 * loaded module is tracked by its own ResourceTracker: freeing the JitCode removes
 * exactly that module's code and symbols, and the names can be defined again.
 * ORC compiles lazily: a module becomes machine code on the first lookup of one of
 * its symbols, not in jit_module_load.
 *
 * Objects (the code cache). jit_module_emit_object compiles an optimised
 * module to a relocatable object file with a target machine of `tms`;
 * jit_object_load links such an object (or a bundle of them, one per thread that
 * compiled part of a program) into a JITDylib of its own (a bare one with a process-symbol generator,
 * named "fuse.objN"), so two loads of the same object, with the same symbol names,
 * never collide. Lookups of that code search only its JITDylib. Host symbols
 * (jit_define_symbol, tucker) are absolute symbols defined in the main JITDylib
 * and again in every object's JITDylib, so generated code calls runtime functions
 * by name and cached objects hold no address of the process that compiled them. Freeing the code
 * removes its resource tracker; the emptied JITDylib stays in the session (the C
 * API cannot remove one) and is reclaimed when the session ends.
 *
 * Threads. Several threads may use one session at once:
 *   - jit_module_new, jit_module_load, jit_code_lookup and jit_code_free may be
 *     called concurrently (LLJIT add, lookup and remove are thread-safe). Lookups
 *     are serialised by `lookup_lock`, because the LLVM C API builds LLJIT without
 *     concurrent compilation: its single compiler target machine must not run
 *     twice at once, and a lookup is where ORC compiles.
 *   - jit_object_load may be called concurrently with all of these (creating a
 *     JITDylib and adding an object are thread-safe in ORC); lookups of object
 *     code take `lookup_lock` too, since a first lookup links.
 *   - jit_module_optimize, jit_module_emit_object and jit_module_asm on distinct
 *     modules may be called concurrently. Each locks a target machine of the
 *     session's pool (`tms`; LLVM's TargetMachine caches subtargets without
 *     locking) for its work, so up to JIT_TM_POOL modules are optimised and
 *     compiled at once, each in its own context (runtime/plan_compile.c splits
 *     a program's kernels this way); more threads wait.
 *   - A JitModule is used by one thread at a time.
 *   - jit_session_new and jit_session_free may run concurrently for different
 *     sessions; LLVM's target registration happens once (pthread_once).
 */
#include "jit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

/* Target machines of a session: at most this many threads optimise or emit code
 * at once (more wait for the first). */
#define JIT_TM_POOL 4

struct JitSession {
    LLVMOrcLLJITRef lljit;         /* owned: the JIT, its code and its compiler */
    LLVMOrcJITDylibRef main_jd;    /* owned by lljit: where every module goes */
    /* owned: our target machines (passes, objects, asm), each used under its
     * lock by one thread at a time; NULL until a thread needs one (jit_tm_take) */
    struct {
        LLVMTargetMachineRef tm;
        pthread_mutex_t lock;
    } tms[JIT_TM_POOL];
    pthread_mutex_t lookup_lock;   /* one lookup (= one compilation) at a time */
    pthread_mutex_t report_lock;   /* guards last_report */
    char *last_report;             /* last error ORC reported outside a call */
    char *triple;                  /* owned copies of the host description */
    char *cpu;
    char *features;                /* "+avx,+avx2,-amx-fp16,..." */
    char *data_layout;             /* LLJIT's; every module gets this one */
    int vector_bits;               /* widest vector register, bits */
    atomic_int next_dylib;         /* names the JITDylibs of loaded objects */
    /* tucker: host symbols (jit_define_symbol), defined again in every object's
     * JITDylib; written only before code is loaded */
    struct {
        char *name;                /* owned */
        void *addr;
    } host[JIT_MAX_HOST_SYMBOLS];
    int n_host;
};

struct JitModule {
    LLVMOrcThreadSafeContextRef tsc; /* owned reference; NULL once loaded */
    LLVMContextRef ctx;              /* borrowed from tsc */
    LLVMModuleRef mod;               /* owned until jit_module_load */
};

struct JitCode {
    JitSession *js;                /* borrowed: must outlive the code */
    LLVMOrcResourceTrackerRef rt;  /* owned: tracks this module's code */
    LLVMOrcJITDylibRef jd;         /* objects: their own JITDylib; NULL = main */
};

/* LLVM's target registries are process-wide. pthread_once needs this one static
 * flag; it is written once, inside the once-routine, and only read afterwards. */
static pthread_once_t jit_llvm_once = PTHREAD_ONCE_INIT;
static int jit_llvm_init_failed;

static void jit_llvm_init(void)
{
    jit_llvm_init_failed = LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter() ||
                           LLVMInitializeNativeAsmParser();
}

/* ---- strings and errors ---------------------------------------------------- */

/* malloc'd copy of s; NULL when s is NULL or on OOM. */
static char *jit_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

/* Sets *err (when err is not NULL) to "what: detail", or "what" when detail is
 * NULL or empty, and returns status. *err is NULL if that allocation fails. */
static fuse_status jit_fail(char **err, fuse_status status, const char *what, const char *detail)
{
    if (!err)
        return status;
    bool has_detail = detail && *detail;
    size_t n = strlen(what) + (has_detail ? strlen(detail) + 2 : 0) + 1;
    *err = malloc(n);
    if (*err)
        snprintf(*err, n, has_detail ? "%s: %s" : "%s", what, has_detail ? detail : "");
    return status;
}

/* Consumes e, turning its message into *err; returns FUSE_E_JIT. */
static fuse_status jit_fail_llvm(char **err, const char *what, LLVMErrorRef e)
{
    char *msg = LLVMGetErrorMessage(e);
    fuse_status status = jit_fail(err, FUSE_E_JIT, what, msg);
    LLVMDisposeErrorMessage(msg);
    return status;
}

/* Copies an LLVM-allocated message into malloc'd memory and disposes LLVM's. */
static char *jit_take_message(char *msg)
{
    char *copy = jit_strdup(msg);
    LLVMDisposeMessage(msg);
    return copy;
}

/* ---- host description ------------------------------------------------------ */

/* True when the comma-separated feature list holds exactly `flag` ("+avx"
 * must not match "+avx2"). */
static bool jit_has_feature(const char *features, const char *flag)
{
    size_t n = strlen(flag);
    const char *p = features;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, flag, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static int jit_vector_bits_of(const char *features)
{
    if (jit_has_feature(features, "+avx512f"))
        return 512;
    if (jit_has_feature(features, "+avx"))
        return 256;
    return 128;
}

/* FUSE_JIT_NO_F16C set (and not "0"): the host is treated as lacking F16C, so
 * half-precision conversions take the integer-op path a CPU without it needs
 * (tests run it on any machine). The feature string is part of the cache key,
 * so such code never mixes with the host's. */
static void jit_apply_overrides(char *features)
{
    const char *v = getenv("FUSE_JIT_NO_F16C");
    if (!v || !*v || strcmp(v, "0") == 0)
        return;
    for (char *p = features; (p = strstr(p, "+f16c")) != NULL; p++)
        if ((p == features || p[-1] == ',') && (p[5] == ',' || p[5] == '\0'))
            *p = '-';
}

/* Fills triple, cpu and features. The triple is the one ORC's host detection
 * uses (the process triple, which can differ from LLVM's default target). */
static fuse_status jit_detect_host(JitSession *js, char **err)
{
    LLVMOrcJITTargetMachineBuilderRef jtmb = NULL;
    LLVMErrorRef e = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    if (e)
        return jit_fail_llvm(err, "cannot detect the host", e);
    js->triple = jit_take_message(LLVMOrcJITTargetMachineBuilderGetTargetTriple(jtmb));
    LLVMOrcDisposeJITTargetMachineBuilder(jtmb);
    js->cpu = jit_take_message(LLVMGetHostCPUName());
    js->features = jit_take_message(LLVMGetHostCPUFeatures());
    if (!js->triple || !js->cpu || !js->features)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    jit_apply_overrides(js->features);
    js->vector_bits = jit_vector_bits_of(js->features);
    return FUSE_OK;
}

/* A target machine for the host at CodeGenOpt Aggressive; caller disposes. */
static fuse_status jit_host_tm(const JitSession *js, LLVMTargetMachineRef *out, char **err)
{
    LLVMTargetRef target = NULL;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(js->triple, &target, &msg)) {
        fuse_status status = jit_fail(err, FUSE_E_JIT, "no LLVM target for the host", msg);
        LLVMDisposeMessage(msg);
        return status;
    }
    *out = LLVMCreateTargetMachine(target, js->triple, js->cpu, js->features,
                                   LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                   LLVMCodeModelSmall);
    if (!*out)
        return jit_fail(err, FUSE_E_JIT, "cannot create a target machine for", js->triple);
    return FUSE_OK;
}

/* ---- session ----------------------------------------------------------------- */

/* Stores the message of an error ORC reports asynchronously (a failed link
 * during a lookup, say), so the next failing lookup can include it. */
static void jit_report_error(void *ctx, LLVMErrorRef e)
{
    JitSession *js = ctx;
    char *msg = LLVMGetErrorMessage(e);
    char *copy = jit_strdup(msg);
    LLVMDisposeErrorMessage(msg);
    pthread_mutex_lock(&js->report_lock);
    free(js->last_report);
    js->last_report = copy;
    pthread_mutex_unlock(&js->report_lock);
}

/* Returns (and clears) the last reported error; caller frees; may be NULL. */
static char *jit_take_report(JitSession *js)
{
    pthread_mutex_lock(&js->report_lock);
    char *report = js->last_report;
    js->last_report = NULL;
    pthread_mutex_unlock(&js->report_lock);
    return report;
}

/* Creates LLJIT from a copy of the host target machine, so the JIT compiles
 * with the host CPU's features at the same optimisation level as `tm`. */
static fuse_status jit_create_lljit(JitSession *js, char **err)
{
    LLVMTargetMachineRef jit_tm = NULL;
    fuse_status status = jit_host_tm(js, &jit_tm, err);
    if (status)
        return status;
    /* jit_tm moves into the builder, the builder into LLVMOrcCreateLLJIT (which
     * takes it even when it fails). */
    LLVMOrcJITTargetMachineBuilderRef jtmb =
        LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm);
    jit_tm = NULL;
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    jtmb = NULL;
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&js->lljit, builder);
    builder = NULL;
    if (e) {
        js->lljit = NULL;
        return jit_fail_llvm(err, "cannot create the JIT", e);
    }
    js->main_jd = LLVMOrcLLJITGetMainJITDylib(js->lljit);
    LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(js->lljit),
                                            jit_report_error, js);
    js->data_layout = jit_strdup(LLVMOrcLLJITGetDataLayoutStr(js->lljit));
    if (!js->data_layout)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    return FUSE_OK;
}

/* Makes process symbols (libm, libc) resolvable from the main JITDylib. */
static fuse_status jit_add_process_symbols(JitSession *js, char **err)
{
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    char prefix = LLVMOrcLLJITGetGlobalPrefix(js->lljit);
    LLVMErrorRef e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, prefix, NULL, NULL);
    if (e)
        return jit_fail_llvm(err, "cannot search process symbols", e);
    /* gen moves to the JITDylib. */
    LLVMOrcJITDylibAddGenerator(js->main_jd, gen);
    gen = NULL;
    return FUSE_OK;
}

/* Destroys the first n locks of the target machine pool. */
static void jit_tm_locks_destroy(JitSession *js, int n)
{
    for (int i = 0; i < n; i++)
        pthread_mutex_destroy(&js->tms[i].lock);
}

/* Initialises the session's locks; on failure none is left initialised. */
static bool jit_locks_init(JitSession *js)
{
    for (int i = 0; i < JIT_TM_POOL; i++)
        if (pthread_mutex_init(&js->tms[i].lock, NULL)) {
            jit_tm_locks_destroy(js, i);
            return false;
        }
    if (pthread_mutex_init(&js->lookup_lock, NULL)) {
        jit_tm_locks_destroy(js, JIT_TM_POOL);
        return false;
    }
    if (pthread_mutex_init(&js->report_lock, NULL)) {
        pthread_mutex_destroy(&js->lookup_lock);
        jit_tm_locks_destroy(js, JIT_TM_POOL);
        return false;
    }
    return true;
}

/* Builds the session's parts in order; on failure the caller frees js. */
static fuse_status jit_session_build(JitSession *js, char **err)
{
    /* js->tms wait for the first compile: a run whose code comes from the cache
     * never builds it (an X86 target machine costs about half a millisecond). */
    fuse_status status = jit_detect_host(js, err);
    if (!status)
        status = jit_create_lljit(js, err);
    if (!status)
        status = jit_add_process_symbols(js, err);
    return status;
}

fuse_status jit_session_new(JitSession **out, char **err)
{
    if (err)
        *err = NULL;
    if (!out)
        return jit_fail(err, FUSE_E_ARG, "jit_session_new: out is NULL", NULL);
    *out = NULL;
    if (pthread_once(&jit_llvm_once, jit_llvm_init) || jit_llvm_init_failed)
        return jit_fail(err, FUSE_E_JIT, "LLVM has no native target for this host", NULL);
    JitSession *js = calloc(1, sizeof *js);
    if (!js)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    if (!jit_locks_init(js)) {
        free(js);
        return jit_fail(err, FUSE_E_NOMEM, "cannot initialise the JIT's locks", NULL);
    }
    fuse_status status = jit_session_build(js, err);
    if (status) {
        jit_session_free(js);
        return status;
    }
    *out = js;
    return FUSE_OK;
}

void jit_session_free(JitSession *js)
{
    if (!js)
        return;
    if (js->lljit) {
        /* Disposing ends the ORC session and frees all code still loaded. A
         * failure here has no caller to go to: drop it. */
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(js->lljit);
        if (e)
            LLVMConsumeError(e);
    }
    for (int i = 0; i < JIT_TM_POOL; i++)
        if (js->tms[i].tm)
            LLVMDisposeTargetMachine(js->tms[i].tm);
    free(js->last_report);
    free(js->triple);
    free(js->cpu);
    free(js->features);
    free(js->data_layout);
    for (int i = 0; i < js->n_host; i++)
        free(js->host[i].name);
    pthread_mutex_destroy(&js->report_lock);
    pthread_mutex_destroy(&js->lookup_lock);
    jit_tm_locks_destroy(js, JIT_TM_POOL);
    free(js);
}

const char *jit_target_triple(const JitSession *js)
{
    return js ? js->triple : NULL;
}

const char *jit_cpu_name(const JitSession *js)
{
    return js ? js->cpu : NULL;
}

bool jit_has_f16c(const JitSession *js)
{
    return js && jit_has_feature(js->features, "+f16c");
}

const char *jit_cpu_features(const JitSession *js)
{
    return js ? js->features : NULL;
}

int jit_vector_bits(const JitSession *js)
{
    return js ? js->vector_bits : 128;
}

/* ---- modules ----------------------------------------------------------------- */

JitModule *jit_module_new(JitSession *js, const char *name)
{
    if (!js)
        return NULL;
    JitModule *jm = calloc(1, sizeof *jm);
    if (!jm)
        return NULL;
    jm->tsc = LLVMOrcCreateNewThreadSafeContext();
    jm->ctx = LLVMOrcThreadSafeContextGetContext(jm->tsc);
    jm->mod = LLVMModuleCreateWithNameInContext(name ? name : "fuse", jm->ctx);
    LLVMSetTarget(jm->mod, js->triple);
    LLVMSetDataLayout(jm->mod, js->data_layout);
    return jm;
}

LLVMContextRef jit_module_context(JitModule *jm)
{
    return jm ? jm->ctx : NULL;
}

LLVMModuleRef jit_module_llvm(JitModule *jm)
{
    return jm ? jm->mod : NULL;
}

void jit_module_free(JitModule *jm)
{
    if (!jm)
        return;
    /* The module lives in the context: dispose it first. */
    if (jm->mod)
        LLVMDisposeModule(jm->mod);
    if (jm->tsc)
        LLVMOrcDisposeThreadSafeContext(jm->tsc);
    free(jm);
}

/* FUSE_E_ARG unless the session and a not yet loaded module are given. */
static fuse_status jit_check_module(JitSession *js, JitModule *jm, const char *fn, char **err)
{
    if (err)
        *err = NULL;
    if (!js || !jm)
        return jit_fail(err, FUSE_E_ARG, fn, "session or module is NULL");
    if (!jm->mod)
        return jit_fail(err, FUSE_E_ARG, fn, "the module was already loaded");
    return FUSE_OK;
}

/* FUSE_E_JIT with the verifier's message when m is not valid IR. Code generation
 * on invalid IR can crash LLVM, so every path into it verifies first. */
static fuse_status jit_verify(LLVMModuleRef m, char **err)
{
    char *msg = NULL;
    LLVMBool broken = LLVMVerifyModule(m, LLVMReturnStatusAction, &msg);
    fuse_status status = FUSE_OK;
    if (broken)
        status = jit_fail(err, FUSE_E_JIT, "invalid LLVM module", msg);
    LLVMDisposeMessage(msg);
    return status;
}

/* Locks a target machine of the pool, a free one when there is one (else the
 * first, waiting for it), and creates it on first use. Returns its index, or -1
 * (with *err) when it cannot be created; release it with jit_tm_give. */
static int jit_tm_take(JitSession *js, char **err)
{
    int i = 0;
    while (i < JIT_TM_POOL && pthread_mutex_trylock(&js->tms[i].lock) != 0)
        i++;
    if (i == JIT_TM_POOL) {
        i = 0;
        pthread_mutex_lock(&js->tms[0].lock);
    }
    if (!js->tms[i].tm && jit_host_tm(js, &js->tms[i].tm, err) != FUSE_OK) {
        pthread_mutex_unlock(&js->tms[i].lock);
        return -1;
    }
    return i;
}

static void jit_tm_give(JitSession *js, int i)
{
    pthread_mutex_unlock(&js->tms[i].lock);
}

/* O3, after merging equal functions: equal ops (1,000 contributions `M[u,d] +=
 * A[u,v] E[v,d]`, or the same product in many kernels of one batch) have equal
 * functions, and merging them first makes O3 optimise one (a 1,000-op group:
 * 7.2 s -> 0.6 s). */
#define JIT_FULL_PIPELINE "mergefunc,default<O3>"
/* Clean-up of code that is vectorised and unrolled already: allocas to
 * registers, repeated loads and address arithmetic, constant branches, and the
 * SLP vectoriser for the straight-line lane code of panel edges (without it,
 * packing a 512 x 64 panel is 6% slower). On a contraction kernel it gives the
 * GFLOP/s of O3 for a sixth of O3's time. The instcombine of a textual pipeline
 * would verify its fixpoint (a fatal error when one round is not enough); the
 * default pipelines turn that off too. */
#define JIT_LIGHT_PIPELINE                                                                 \
    "function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,slp-vectorizer," \
    "instcombine<no-verify-fixpoint>)"

static bool jit_is_light(LLVMValueRef fn)
{
    return !LLVMIsDeclaration(fn) &&
           LLVMGetStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, JIT_ATTR_LIGHT,
                                         (unsigned)strlen(JIT_ATTR_LIGHT)) != NULL;
}

/* Hides every light function from a pipeline (optnone, which needs noinline:
 * the functions stay calls, as they would past the inliner's budget anyway) or
 * shows it again (optnone only: at optnone, code generation would use its
 * fastest, worst settings). Returns how many light functions there are. */
static int jit_hide_light(LLVMModuleRef m, bool hide)
{
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    unsigned optnone = LLVMGetEnumAttributeKindForName("optnone", 7);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    int n = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        if (!jit_is_light(fn))
            continue;
        n++;
        if (!hide) {
            LLVMRemoveEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, optnone);
            continue;
        }
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(ctx, noinline, 0));
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(ctx, optnone, 0));
    }
    return n;
}

/* O3 for every function but the light ones, then the light pipeline (which
 * the others, optimised already, pass through nearly unchanged). tm is locked. */
static LLVMErrorRef jit_run_pipelines(LLVMTargetMachineRef tm, LLVMModuleRef m,
                                      LLVMPassBuilderOptionsRef opts)
{
    int n_light = jit_hide_light(m, true);
    LLVMErrorRef e = LLVMRunPasses(m, JIT_FULL_PIPELINE, tm, opts);
    jit_hide_light(m, false);
    if (!e && n_light > 0)
        e = LLVMRunPasses(m, JIT_LIGHT_PIPELINE, tm, opts);
    return e;
}

fuse_status jit_module_optimize(JitSession *js, JitModule *jm, char **err)
{
    fuse_status status = jit_check_module(js, jm, "jit_module_optimize", err);
    if (!status)
        status = jit_verify(jm->mod, err);
    if (status)
        return status;
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
    LLVMPassBuilderOptionsSetLoopInterleaving(opts, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, 1);
    int t = jit_tm_take(js, err);
    LLVMErrorRef e = t < 0 ? NULL : jit_run_pipelines(js->tms[t].tm, jm->mod, opts);
    if (t >= 0)
        jit_tm_give(js, t);
    LLVMDisposePassBuilderOptions(opts);
    if (t < 0)
        return FUSE_E_JIT;
    if (e)
        return jit_fail_llvm(err, "the optimisation pipeline failed", e);
    return FUSE_OK;
}

fuse_status jit_module_merge_functions(JitModule *jm, char **err)
{
    if (err)
        *err = NULL;
    if (!jm || !jm->mod)
        return jit_fail(err, FUSE_E_ARG, "jit_module_merge_functions", "no module");
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(jm->mod, "mergefunc", NULL, opts);
    LLVMDisposePassBuilderOptions(opts);
    return e ? jit_fail_llvm(err, "mergefunc failed", e) : FUSE_OK;
}

char *jit_module_print(JitModule *jm)
{
    if (!jm || !jm->mod)
        return NULL;
    return jit_take_message(LLVMPrintModuleToString(jm->mod));
}

/* Copies a memory buffer into a malloc'd NUL-terminated string; NULL on OOM. */
static char *jit_buffer_text(LLVMMemoryBufferRef buf)
{
    size_t n = LLVMGetBufferSize(buf);
    char *text = malloc(n + 1);
    if (!text)
        return NULL;
    memcpy(text, LLVMGetBufferStart(buf), n);
    text[n] = '\0';
    return text;
}

fuse_status jit_module_asm(JitSession *js, JitModule *jm, char **text, char **err)
{
    fuse_status status = jit_check_module(js, jm, "jit_module_asm", err);
    if (!status && !text)
        status = jit_fail(err, FUSE_E_ARG, "jit_module_asm", "text is NULL");
    if (!status)
        status = jit_verify(jm->mod, err);
    if (status)
        return status;
    *text = NULL;
    /* Code generation rewrites the IR it compiles: work on a clone. */
    LLVMModuleRef clone = LLVMCloneModule(jm->mod);
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    int t = jit_tm_take(js, err);
    LLVMBool failed = t < 0 ||
        LLVMTargetMachineEmitToMemoryBuffer(js->tms[t].tm, clone, LLVMAssemblyFile, &msg, &buf);
    if (t >= 0)
        jit_tm_give(js, t);
    LLVMDisposeModule(clone);
    if (t < 0)
        return FUSE_E_JIT;
    if (failed) {
        status = jit_fail(err, FUSE_E_JIT, "cannot emit assembly", msg);
        LLVMDisposeMessage(msg);
        return status;
    }
    *text = jit_buffer_text(buf);
    LLVMDisposeMemoryBuffer(buf);
    return *text ? FUSE_OK : jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
}

fuse_status jit_module_load(JitSession *js, JitModule *jm, JitCode **out, char **err)
{
    fuse_status status = jit_check_module(js, jm, "jit_module_load", err);
    if (!status && !out)
        status = jit_fail(err, FUSE_E_ARG, "jit_module_load", "out is NULL");
    if (!status)
        status = jit_verify(jm->mod, err);
    if (status)
        return status;
    *out = NULL;
    JitCode *jc = calloc(1, sizeof *jc);
    if (!jc)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    jc->js = js;
    jc->rt = LLVMOrcJITDylibCreateResourceTracker(js->main_jd);
    /* The module moves into the thread-safe module, which moves into LLJIT
     * (even when adding fails); the TSM keeps the context alive, so our
     * reference to it goes too. jm is empty from here on. */
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(jm->mod, jm->tsc);
    jm->mod = NULL;
    jm->ctx = NULL;
    LLVMOrcDisposeThreadSafeContext(jm->tsc);
    jm->tsc = NULL;
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModuleWithRT(js->lljit, jc->rt, tsm);
    tsm = NULL;
    if (e) {
        jit_code_free(jc);
        return jit_fail_llvm(err, "cannot load the module", e);
    }
    *out = jc;
    return FUSE_OK;
}

/* ---- object files ------------------------------------------------------------ */

fuse_status jit_module_emit_object(JitSession *js, JitModule *jm, void **data, size_t *n,
                                   char **err)
{
    fuse_status status = jit_check_module(js, jm, "jit_module_emit_object", err);
    if (!status && (!data || !n))
        status = jit_fail(err, FUSE_E_ARG, "jit_module_emit_object", "data or n is NULL");
    if (!status)
        status = jit_verify(jm->mod, err);
    if (status)
        return status;
    *data = NULL;
    *n = 0;
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    int t = jit_tm_take(js, err);
    LLVMBool failed = t < 0 || LLVMTargetMachineEmitToMemoryBuffer(js->tms[t].tm, jm->mod,
                                                                  LLVMObjectFile, &msg, &buf);
    if (t >= 0)
        jit_tm_give(js, t);
    if (t < 0)
        return FUSE_E_JIT;
    if (failed) {
        status = jit_fail(err, FUSE_E_JIT, "cannot emit an object file", msg);
        LLVMDisposeMessage(msg);
        return status;
    }
    size_t size = LLVMGetBufferSize(buf);
    *data = malloc(size ? size : 1);
    if (*data) {
        memcpy(*data, LLVMGetBufferStart(buf), size);
        *n = size;
    }
    LLVMDisposeMemoryBuffer(buf);
    return *data ? FUSE_OK : jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
}

/* ---- host symbols (tucker) ----------------------------------------------------- */

/* Defines `name` as the absolute address addr in jd. */
static fuse_status jit_define_in(JitSession *js, LLVMOrcJITDylibRef jd, const char *name,
                                 void *addr, char **err)
{
    LLVMJITSymbolFlags flags = {
        .GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable,
        .TargetFlags = 0};
    /* The interned name moves to the materialization unit. */
    LLVMOrcCSymbolMapPair pair = {
        .Name = LLVMOrcLLJITMangleAndIntern(js->lljit, name),
        .Sym = {.Address = (LLVMOrcExecutorAddress)(uintptr_t)addr, .Flags = flags}};
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(&pair, 1);
    LLVMErrorRef e = LLVMOrcJITDylibDefine(jd, mu);
    if (e) {
        LLVMOrcDisposeMaterializationUnit(mu);
        return jit_fail_llvm(err, "cannot define a host symbol", e);
    }
    return FUSE_OK;
}

fuse_status jit_define_symbol(JitSession *js, const char *name, void *addr, char **err)
{
    if (err)
        *err = NULL;
    if (!js || !name || !*name || !addr)
        return jit_fail(err, FUSE_E_ARG, "jit_define_symbol", "NULL or empty argument");
    if (js->n_host >= JIT_MAX_HOST_SYMBOLS)
        return jit_fail(err, FUSE_E_ARG, "jit_define_symbol", "too many host symbols");
    char *copy = jit_strdup(name);
    if (!copy)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    fuse_status st = jit_define_in(js, js->main_jd, name, addr, err);
    if (st) {
        free(copy);
        return st;
    }
    js->host[js->n_host].name = copy;
    js->host[js->n_host].addr = addr;
    js->n_host++;
    return FUSE_OK;
}

/* A new bare JITDylib, named uniquely, that resolves process symbols (libm) and
 * the session's host symbols. */
static fuse_status jit_new_dylib(JitSession *js, LLVMOrcJITDylibRef *out, char **err)
{
    char name[48];
    snprintf(name, sizeof name, "fuse.obj%d", atomic_fetch_add(&js->next_dylib, 1));
    LLVMOrcExecutionSessionRef es = LLVMOrcLLJITGetExecutionSession(js->lljit);
    LLVMOrcJITDylibRef jd = LLVMOrcExecutionSessionCreateBareJITDylib(es, name);
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    char prefix = LLVMOrcLLJITGetGlobalPrefix(js->lljit);
    LLVMErrorRef e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, prefix, NULL, NULL);
    if (e)
        return jit_fail_llvm(err, "cannot search process symbols", e);
    LLVMOrcJITDylibAddGenerator(jd, gen); /* gen moves to the JITDylib */
    for (int i = 0; i < js->n_host; i++) {
        fuse_status st = jit_define_in(js, jd, js->host[i].name, js->host[i].addr, err);
        if (st)
            return st;
    }
    *out = jd;
    return FUSE_OK;
}

/* ---- bundles: several objects as one ----
 * "FUSEOBJS", u32 count, u32 zero, count u64 lengths (little-endian), then the
 * objects back to back. An ELF object starts with "\x7fELF", so the two never
 * mix up. */

#define JIT_BUNDLE_MAGIC "FUSEOBJS"
#define JIT_BUNDLE_MAX 64

static size_t jit_bundle_header(int k)
{
    return 16 + 8 * (size_t)k;
}

fuse_status jit_objects_bundle(void *const *objs, const size_t *ns, int k, void **data,
                               size_t *n, char **err)
{
    if (err)
        *err = NULL;
    if (!objs || !ns || !data || !n || k < 1 || k > JIT_BUNDLE_MAX)
        return jit_fail(err, FUSE_E_ARG, "jit_objects_bundle", "bad argument");
    size_t total = jit_bundle_header(k);
    for (int i = 0; i < k; i++)
        total += ns[i];
    unsigned char *b = malloc(total);
    if (!b)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    memcpy(b, JIT_BUNDLE_MAGIC, 8);
    uint32_t head[2] = {(uint32_t)k, 0};
    memcpy(b + 8, head, sizeof head); /* x86-64 only (the JIT's host): little-endian */
    size_t at = jit_bundle_header(k);
    for (int i = 0; i < k; i++) {
        uint64_t len = ns[i];
        memcpy(b + 16 + 8 * (size_t)i, &len, sizeof len);
        memcpy(b + at, objs[i], ns[i]);
        at += ns[i];
    }
    *data = b;
    *n = total;
    return FUSE_OK;
}

/* The k-th object of a bundle (k < count), checked against its bounds. */
static bool jit_bundle_member(const unsigned char *b, size_t n, uint32_t count, uint32_t k,
                              const unsigned char **obj, size_t *len)
{
    size_t at = jit_bundle_header((int)count);
    for (uint32_t i = 0; i <= k; i++) {
        uint64_t m;
        memcpy(&m, b + 16 + 8 * (size_t)i, sizeof m);
        if (m == 0 || m > n - at)
            return false;
        if (i == k) {
            *obj = b + at;
            *len = (size_t)m;
        }
        at += (size_t)m;
    }
    return true;
}

static bool jit_is_bundle(const unsigned char *b, size_t n)
{
    return n >= 8 && memcmp(b, JIT_BUNDLE_MAGIC, 8) == 0;
}

/* How many objects data holds: 1 for a plain object, the count of a well-formed
 * bundle, 0 for a malformed bundle. */
static uint32_t jit_bundle_count(const unsigned char *b, size_t n)
{
    if (!jit_is_bundle(b, n))
        return 1;
    if (n < 16)
        return 0;
    uint32_t count;
    memcpy(&count, b + 8, sizeof count);
    if (count < 1 || count > JIT_BUNDLE_MAX || n < jit_bundle_header((int)count))
        return 0;
    const unsigned char *obj;
    size_t len;
    return jit_bundle_member(b, n, count, count - 1, &obj, &len) ? count : 0;
}

/* Adds one object file to jc's JITDylib under jc's resource tracker. */
static fuse_status jit_add_object(JitSession *js, JitCode *jc, const void *data, size_t n,
                                  char **err)
{
    LLVMMemoryBufferRef buf =
        LLVMCreateMemoryBufferWithMemoryRangeCopy(data, n, "fuse-object");
    /* The buffer moves to LLJIT, even when adding fails. */
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFileWithRT(js->lljit, jc->rt, buf);
    return e ? jit_fail_llvm(err, "cannot load the object file", e) : FUSE_OK;
}

fuse_status jit_object_load(JitSession *js, const void *data, size_t n, JitCode **out,
                            char **err)
{
    if (err)
        *err = NULL;
    if (!js || !data || !n || !out)
        return jit_fail(err, FUSE_E_ARG, "jit_object_load", "NULL or empty argument");
    *out = NULL;
    uint32_t count = jit_bundle_count(data, n);
    if (count == 0)
        return jit_fail(err, FUSE_E_JIT, "cannot load the object file", "malformed bundle");
    LLVMOrcJITDylibRef jd = NULL;
    fuse_status status = jit_new_dylib(js, &jd, err);
    if (status)
        return status;
    JitCode *jc = calloc(1, sizeof *jc);
    if (!jc)
        return jit_fail(err, FUSE_E_NOMEM, "out of memory", NULL);
    jc->js = js;
    jc->jd = jd;
    jc->rt = LLVMOrcJITDylibCreateResourceTracker(jd);
    if (!jit_is_bundle(data, n)) {
        status = jit_add_object(js, jc, data, n, err);
    } else {
        for (uint32_t k = 0; k < count && !status; k++) {
            const unsigned char *obj = NULL;
            size_t len = 0;
            jit_bundle_member(data, n, count, k, &obj, &len);
            status = jit_add_object(js, jc, obj, len, err);
        }
    }
    if (status) {
        jit_code_free(jc);
        return status;
    }
    *out = jc;
    return FUSE_OK;
}

/* ---- loaded code ------------------------------------------------------------- */

/* "what: msg (report)" for a failed lookup; consumes e. */
static fuse_status jit_fail_lookup(char **err, const char *name, LLVMErrorRef e, const char *report)
{
    char *msg = LLVMGetErrorMessage(e);
    size_t n = strlen(name) + strlen(msg) + (report ? strlen(report) : 0) + 32;
    char *detail = malloc(n);
    if (detail)
        snprintf(detail, n, "'%s': %s%s%s%s", name, msg, report ? " (" : "",
                 report ? report : "", report ? ")" : "");
    LLVMDisposeErrorMessage(msg);
    fuse_status status = jit_fail(err, FUSE_E_JIT, "symbol lookup failed", detail);
    free(detail);
    return status;
}

/* The result of an asynchronous lookup, handed over under a lock. */
typedef struct JitWait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool is_done;
    LLVMErrorRef e;
    LLVMOrcExecutorAddress addr;
} JitWait;

static void jit_lookup_done(LLVMErrorRef e, LLVMOrcCSymbolMapPairs result, size_t n, void *ctx)
{
    JitWait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->e = e;
    if (!e && n > 0)
        w->addr = result[0].Sym.Address;
    w->is_done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Looks `name` up in jd only (not the main JITDylib), waiting for the result. */
static LLVMErrorRef jit_lookup_in(JitSession *js, LLVMOrcJITDylibRef jd, const char *name,
                                  LLVMOrcExecutorAddress *found)
{
    JitWait w = {.is_done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    LLVMOrcCJITDylibSearchOrderElement order = {jd, LLVMOrcJITDylibLookupFlagsMatchAllSymbols};
    /* The interned name moves to the lookup. */
    LLVMOrcCLookupSetElement sym = {LLVMOrcLLJITMangleAndIntern(js->lljit, name),
                                    LLVMOrcSymbolLookupFlagsRequiredSymbol};
    LLVMOrcExecutionSessionLookup(LLVMOrcLLJITGetExecutionSession(js->lljit),
                                  LLVMOrcLookupKindStatic, &order, 1, &sym, 1, jit_lookup_done,
                                  &w);
    pthread_mutex_lock(&w.lock);
    while (!w.is_done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    *found = w.addr;
    return w.e;
}

fuse_status jit_code_lookup(JitCode *jc, const char *name, void **addr, char **err)
{
    if (err)
        *err = NULL;
    if (!jc || !name || !addr)
        return jit_fail(err, FUSE_E_ARG, "jit_code_lookup", "code, name or addr is NULL");
    *addr = NULL;
    JitSession *js = jc->js;
    LLVMOrcExecutorAddress found = 0;
    pthread_mutex_lock(&js->lookup_lock);
    free(jit_take_report(js));
    /* The first lookup of a module's symbol compiles and links the module. */
    LLVMErrorRef e = jc->jd ? jit_lookup_in(js, jc->jd, name, &found)
                            : LLVMOrcLLJITLookup(js->lljit, &found, name);
    char *report = jit_take_report(js);
    pthread_mutex_unlock(&js->lookup_lock);
    fuse_status status = FUSE_OK;
    if (e)
        status = jit_fail_lookup(err, name, e, report);
    else if (!found)
        status = jit_fail(err, FUSE_E_JIT, "symbol has a null address", name);
    else
        *addr = (void *)(uintptr_t)found;
    free(report);
    return status;
}

void jit_code_free(JitCode *jc)
{
    if (!jc)
        return;
    /* Removing unloads the code and frees its symbols' names for reuse. A
     * failure has no caller to go to: drop it (LLJIT frees all at the end). */
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(jc->rt);
    if (e)
        LLVMConsumeError(e);
    LLVMOrcReleaseResourceTracker(jc->rt);
    free(jc);
}
