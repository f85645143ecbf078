/*
 * test_allocfail.c: allocation failures. The suite is linked with
 * -Wl,--wrap=malloc,... so that every allocation of fuse-jit's own static
 * libraries goes through the counter below (LLVM's, libzip's and jansson's are
 * theirs and are never failed). Each scenario (a context; a program parsed,
 * checked, compiled and run through the public API; files read) is run once to
 * count its allocations, then again for every k with the k-th allocation
 * failing: each run must return (a status, not a crash) and free everything it
 * allocated. A block that outlives its run is reported with k and its index;
 * under ASan the process's leak check gives its stack.
 *
 * FUSE_ALLOCFAIL_K=k runs each scenario with only that k (and says which blocks
 * leaked); FUSE_ALLOCFAIL_VERBOSE=1 prints every k with the failed allocation's
 * call site as an offset in the executable (`addr2line -e test_allocfail OFFSET`)
 * and the status it gave.
 */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusejit.h"

/* ---- the wrapped allocator ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t m, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_free(void *p);

/* While `tracking`, allocations are numbered from 1 and the live ones kept in an
 * open-addressing table (pointer, number); number fail_at returns NULL. */
#define TAB_SIZE (1u << 20)
static uintptr_t tab_ptr[TAB_SIZE]; /* 0 empty, 1 deleted */
static long tab_num[TAB_SIZE];
static long live;
static atomic_bool tracking;
static long n_allocs, fail_at, failed_k;
static void *failed_site; /* the return address of the failed allocation */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(uintptr_t p)
{
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 44) & (TAB_SIZE - 1);
}

static void tab_add(void *p, long num)
{
    size_t i = slot_of((uintptr_t)p);
    while (tab_ptr[i] > 1)
        i = (i + 1) & (TAB_SIZE - 1);
    tab_ptr[i] = (uintptr_t)p;
    tab_num[i] = num;
    live++;
}

static void tab_remove(void *p)
{
    size_t i = slot_of((uintptr_t)p);
    for (size_t probes = 0; tab_ptr[i] != 0 && probes < TAB_SIZE; probes++) {
        if (tab_ptr[i] == (uintptr_t)p) {
            tab_ptr[i] = 1;
            live--;
            return;
        }
        i = (i + 1) & (TAB_SIZE - 1);
    }
}

/* The number of the next allocation, or 0 when it is to fail. Called locked. */
static long next_alloc(void *site)
{
    long num = ++n_allocs;
    if (num == fail_at) {
        failed_k = num;
        failed_site = site;
        return 0;
    }
    return num;
}

typedef enum { A_MALLOC, A_CALLOC, A_ALIGNED, A_STRDUP, A_STRNDUP } AllocKind;

static void *do_alloc(AllocKind kind, size_t a, size_t n, const char *s, void *site)
{
    if (!atomic_load(&tracking)) {
        switch (kind) {
        case A_MALLOC: return __real_malloc(n);
        case A_CALLOC: return __real_calloc(a, n);
        case A_ALIGNED: return __real_aligned_alloc(a, n);
        case A_STRDUP: return __real_strdup(s);
        case A_STRNDUP: return __real_strndup(s, n);
        }
    }
    pthread_mutex_lock(&lock);
    long num = next_alloc(site);
    void *p = NULL;
    if (num) {
        switch (kind) {
        case A_MALLOC: p = __real_malloc(n); break;
        case A_CALLOC: p = __real_calloc(a, n); break;
        case A_ALIGNED: p = __real_aligned_alloc(a, n); break;
        case A_STRDUP: p = __real_strdup(s); break;
        case A_STRNDUP: p = __real_strndup(s, n); break;
        }
        if (p)
            tab_add(p, num);
    }
    pthread_mutex_unlock(&lock);
    return p;
}

#define SITE __builtin_return_address(0)
void *__wrap_malloc(size_t n) { return do_alloc(A_MALLOC, 0, n, NULL, SITE); }
void *__wrap_calloc(size_t m, size_t n) { return do_alloc(A_CALLOC, m, n, NULL, SITE); }
void *__wrap_aligned_alloc(size_t a, size_t n) { return do_alloc(A_ALIGNED, a, n, NULL, SITE); }
char *__wrap_strdup(const char *s) { return do_alloc(A_STRDUP, 0, 0, s, SITE); }
char *__wrap_strndup(const char *s, size_t n) { return do_alloc(A_STRNDUP, 0, n, s, SITE); }

void *__wrap_realloc(void *p, size_t n)
{
    if (!atomic_load(&tracking))
        return __real_realloc(p, n);
    pthread_mutex_lock(&lock);
    long num = next_alloc(SITE);
    void *q = NULL;
    if (num) {
        q = __real_realloc(p, n);
        if (q || n == 0) {
            if (p)
                tab_remove(p);
            if (q)
                tab_add(q, num);
        }
    }
    pthread_mutex_unlock(&lock);
    return q;
}

void __wrap_free(void *p)
{
    if (p && atomic_load(&tracking)) {
        pthread_mutex_lock(&lock);
        tab_remove(p);
        pthread_mutex_unlock(&lock);
    }
    __real_free(p);
}

/* ---- running scenarios ---- */

static const char *current_scenario = "";
static long current_k;

/* Says which run crashed before the crash report (ASan calls __asan_on_error;
 * without ASan a signal handler does). */
/* The failed allocation's call site as binary+offset (for addr2line). */
static unsigned long site_offset(void *site)
{
    Dl_info info;
    if (site && dladdr(site, &info) && info.dli_fbase)
        return (unsigned long)((uintptr_t)site - (uintptr_t)info.dli_fbase);
    return 0;
}

static void say_where(void)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "allocfail: scenario %s, allocation %ld failing (site +0x%lx)\n",
                     current_scenario, current_k, site_offset(failed_site));
    if (n > 0)
        (void)!write(2, buf, (size_t)n);
}

void __asan_on_error(void);
void __asan_on_error(void)
{
    say_where();
}

static void on_signal(int sig)
{
    say_where();
    signal(sig, SIG_DFL);
    raise(sig);
}

typedef fuse_status (*ScenarioFn)(void *arg);

static void tracking_begin(long k)
{
    pthread_mutex_lock(&lock);
    memset(tab_ptr, 0, sizeof tab_ptr);
    live = 0;
    n_allocs = 0;
    fail_at = k;
    failed_k = 0;
    atomic_store(&tracking, true);
    pthread_mutex_unlock(&lock);
}

/* A block we allocated may be freed by a library linked as a shared object
 * (libzip frees the buffers it is given), which the wrappers do not see. Under
 * ASan its allocator says whether a block is still allocated; without it, the
 * scenarios that hand memory over are not run. */
int __sanitizer_get_ownership(const volatile void *p) __attribute__((weak));

/* Stops tracking; the number of blocks still live. */
static long tracking_end(bool list)
{
    atomic_store(&tracking, false);
    pthread_mutex_lock(&lock);
    long n = 0;
    for (size_t i = 0; live > 0 && i < TAB_SIZE; i++) {
        if (tab_ptr[i] <= 1)
            continue;
        if (__sanitizer_get_ownership && !__sanitizer_get_ownership((void *)tab_ptr[i]))
            continue;
        n++;
        if (list)
            fprintf(stderr, "allocfail: %s: allocation #%ld (%p) still live\n",
                    current_scenario, tab_num[i], (void *)tab_ptr[i]);
    }
    pthread_mutex_unlock(&lock);
    return n;
}

static bool status_is_valid(fuse_status st)
{
    return st >= FUSE_OK && st <= FUSE_E_INTERRUPTED;
}

/* Runs fn with every allocation failing in turn; fails the test on a leak or an
 * invalid status. Returns how many allocations the full run makes. */
static long run_all(const char *name, ScenarioFn fn, void *arg)
{
    current_scenario = name;
    current_k = 0;
    tracking_begin(0);
    fuse_status st = fn(arg);
    long total = n_allocs;
    long left = tracking_end(true);
    ck_assert_msg(st == FUSE_OK, "%s: the scenario fails without a failing allocation (%s)",
                  name, fuse_status_name(st));
    ck_assert_msg(left == 0, "%s: %ld blocks leak without a failing allocation", name, left);

    const char *only = getenv("FUSE_ALLOCFAIL_K");
    bool verbose = getenv("FUSE_ALLOCFAIL_VERBOSE") != NULL;
    long first = 1, last = total;
    if (only && *only) {
        first = last = atol(only);
    }
    long leaks = 0, first_leak = 0, nomem = 0, ok = 0, other = 0;
    for (long k = first; k <= last; k++) {
        current_k = k;
        if (verbose)
            fprintf(stderr, "allocfail: %s: k=%ld\n", name, k);
        tracking_begin(k);
        st = fn(arg);
        bool hit = failed_k == k;
        long n = tracking_end(only != NULL);
        if (verbose && hit)
            fprintf(stderr, "allocfail: %s: k=%ld (site +0x%lx): %s\n", name, k,
                    site_offset(failed_site), fuse_status_name(st));
        ck_assert_msg(status_is_valid(st), "%s: k=%ld: status %d", name, k, (int)st);
        if (!hit)
            break; /* fewer allocations this time: done */
        if (n > 0) {
            if (!leaks)
                first_leak = k;
            leaks++;
            fprintf(stderr, "allocfail: %s: k=%ld (site +0x%lx): %ld blocks leak (status %s)\n",
                    name, k, site_offset(failed_site), n, fuse_status_name(st));
        }
        if (st == FUSE_OK)
            ok++;
        else if (st == FUSE_E_NOMEM)
            nomem++;
        else
            other++;
    }
    current_k = 0;
    fprintf(stderr,
            "allocfail: %s: %ld allocations; failing each: %ld out of memory, %ld other "
            "errors, %ld ok (tolerated)\n",
            name, total, nomem, other, ok);
    ck_assert_msg(leaks == 0, "%s: %ld values of k leak, the first k=%ld", name, leaks,
                  first_leak);
    return total;
}

/* ---- scenarios ---- */

static char dir[4096];

static const char *in_dir(const char *name)
{
    static char path[4096 + 256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(in_dir(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* A float32 .npy of shape (2, 3). */
static void write_npy23(const char *name)
{
    char head[256];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t len = strlen(dict) + 1, pad = (64 - (10 + len) % 64) % 64;
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (char)(len + pad);
    head[9] = 0;
    memcpy(head + 10, dict, strlen(dict));
    memset(head + 10 + strlen(dict), ' ', pad);
    head[10 + len + pad - 1] = '\n';
    size_t n = 10 + len + pad;
    float data[6] = {1, 2, 3, 4, 5, 6};
    memcpy(head + n, data, sizeof data);
    write_bytes(name, head, n + sizeof data);
}

static fuse_status scenario_ctx(void *arg)
{
    (void)arg;
    fuse_ctx *ctx = NULL;
    fuse_status st = fuse_ctx_new(&ctx);
    fuse_ctx_free(ctx);
    return st;
}

/* A context's last errors and its in-memory code cache live as long as the
 * context, so each scenario makes its own. */
typedef struct Program {
    const char *text; /* program text, or NULL: `file` */
    const char *file; /* a program file in dir */
    fuse_mode mode;
    bool disk_cache;  /* kernels from the disk cache (warmed first), else compiled */
    bool save_npz;    /* the outputs saved as an .npz */
    bool query;       /* then a query of T */
} Program;

/* A context; parse, check, explain, compile, run, read the outputs, free. */
static fuse_status scenario_program(void *arg)
{
    Program *p = arg;
    fuse_ctx *ctx = NULL;
    fuse_status st = fuse_ctx_new(&ctx);
    if (st != FUSE_OK)
        return st;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    char *text = NULL;
    st = p->text ? fuse_program_from_text(ctx, p->text, "allocfail.fuse", &prog)
                 : fuse_program_from_file(ctx, in_dir(p->file), &prog);
    if (st == FUSE_OK)
        st = fuse_program_explain(prog, 1, &text);
    if (st == FUSE_OK) {
        fuse_config cfg;
        fuse_config_init(&cfg);
        cfg.threads = 1;
        cfg.mode = p->mode;
        cfg.no_cache = !p->disk_cache;
        cfg.cache_dir = p->disk_cache ? in_dir("cache") : NULL;
        cfg.base_dir = dir;
        cfg.out_dir = dir;
        st = fuse_runner_new(prog, &cfg, NULL, 0, &run);
    }
    if (st == FUSE_OK) {
        st = fuse_runner_run(run, NULL, 0, &out);
        if (st == FUSE_E_NOT_CONVERGED)
            st = FUSE_OK;
    }
    if (st == FUSE_OK) {
        for (size_t i = 0; i < fuse_outputs_count(out); i++)
            if (!fuse_outputs_tensor(out, i) || !fuse_outputs_name(out, i))
                st = FUSE_E_RUNTIME;
    }
    if (st == FUSE_OK && p->query) {
        fuse_outputs *q = NULL;
        st = fuse_runner_query(run, "T", "i=1", NULL, 0, &q);
        fuse_outputs_free(q);
    }
    if (st == FUSE_OK && p->save_npz)
        st = fuse_outputs_save_npz(ctx, out, in_dir("out.npz"));
    if (st == FUSE_OK) {
        char *trace = NULL;
        st = fuse_runner_trace(run, 0, &trace);
        fuse_free(trace);
    }
    if (st != FUSE_OK)
        (void)fuse_ctx_error(ctx);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_free(text);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    return st;
}

/* fuse_tensor_load of a .npy, then fuse_tensor_save to .json and .npy. */
static fuse_status scenario_files(void *arg)
{
    (void)arg;
    fuse_ctx *ctx = NULL;
    fuse_status st = fuse_ctx_new(&ctx);
    if (st != FUSE_OK)
        return st;
    fuse_tensor t = {0};
    st = fuse_tensor_load(ctx, in_dir("a.npy"), &t);
    if (st == FUSE_OK)
        st = fuse_tensor_save(ctx, &t, in_dir("saved.json"));
    if (st == FUSE_OK)
        st = fuse_tensor_save(ctx, &t, in_dir("saved.npy"));
    fuse_free(t.data);
    fuse_ctx_free(ctx);
    return st;
}

static const char MATMUL[] =
    "A[i,k] = const([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])\n"
    "B[k,j] = const([[0.5, -1.0], [1.0, 0.5], [0.0, 1.0]])\n"
    "Bias[j] = const([0.1, 0.2])\n"
    "C[i,j] = A[i,k] B[k,j]\n"
    "Y[i,j] = C[i,j] + Bias[j]\n"
    "P[i,j.] = softmax(Y[i,j])\n"
    "RowMax[i] max= Y[i,j]\n"
    "export C\nexport P\nexport RowMax\n";

static const char CLOSURE[] =
    "Edge(x,y) = const([[0, 1, 0], [0, 0, 1], [0, 0, 0]])\n"
    "Path(x,y) = Edge(x,y)\n"
    "Path(x,z) = Edge(x,y) Path(y,z)\n"
    "export Path\n";

/* Sources from files (.npy, .tsv, .json) and a sink. */
/* The other readers (.npz, .safetensors, .jsonl, a bag of words), then a query. */
static const char FORMATS[] =
    "X[i] = \"x.npz\"\n"
    "W[i] = \"w.safetensors\"\n"
    "J[i,j] = \"j.jsonl\"\n"
    "B[p,v] = \"b.txt\"\n"
    "S[i] = X[i] W[i]\n"
    "T[i] = J[i,j] S[j]\n"
    "N[p] = B[p,v]\n"
    "export T\nexport N\n";

static const char SOURCES[] =
    "A[i,j] = \"a.npy\"\n"
    "R(x,y) = \"r.tsv\"\n"
    "V[j] = \"v.json\"\n"
    "S[i] = A[i,j] V[j]\n"
    "T[x] = R(x,y)\n"
    "\"out.npy\" = S[i]\n"
    "export S\nexport T\n";

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s/fuse-allocfail-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_npy23("a.npy");
    write_bytes("r.tsv", "0\t1\n2\t0\n", 8);
    write_bytes("v.json", "[1, 0.5, -1]", 12);
    write_bytes("sources.fuse", SOURCES, strlen(SOURCES));
    write_bytes("formats.fuse", FORMATS, strlen(FORMATS));
    static const char jsonl[] = "{\"schema\": \"fuse.tensor\", \"shape\": [2, 2]}\n"
                                "{\"value\": [[1, 2], [3, 4]]}\n";
    write_bytes("j.jsonl", jsonl, strlen(jsonl));
    write_bytes("b.txt", "the cat sat on the mat\n", 23);
    static const char st_head[] = "{\"W\":{\"dtype\":\"F32\",\"shape\":[2],"
                                  "\"data_offsets\":[0,8]}}";
    unsigned char st_file[8 + sizeof st_head - 1 + 8] = {(unsigned char)(sizeof st_head - 1)};
    memcpy(st_file + 8, st_head, sizeof st_head - 1);
    float w[2] = {0.5f, -2.0f};
    memcpy(st_file + 8 + sizeof st_head - 1, w, sizeof w);
    write_bytes("w.safetensors", st_file, sizeof st_file);
    fuse_ctx *ctx = NULL;
    fuse_program *prog = NULL;
    fuse_runner *run = NULL;
    fuse_outputs *out = NULL;
    ck_assert_int_eq(fuse_ctx_new(&ctx), FUSE_OK);
    ck_assert_int_eq(fuse_program_from_text(ctx, "X[i] = const([1, 2])\nexport X\n", NULL,
                                            &prog), FUSE_OK);
    ck_assert_int_eq(fuse_runner_new(prog, NULL, NULL, 0, &run), FUSE_OK);
    ck_assert_int_eq(fuse_runner_run(run, NULL, 0, &out), FUSE_OK);
    ck_assert_int_eq(fuse_outputs_save_npz(ctx, out, in_dir("x.npz")), FUSE_OK);
    fuse_outputs_free(out);
    fuse_runner_free(run);
    fuse_program_free(prog);
    fuse_ctx_free(ctx);
    if (getenv("FUSE_ALLOCFAIL_VERBOSE") == NULL) {
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGABRT, on_signal);
    }
}

static void teardown(void)
{
    uint64_t removed = 0;
    (void)fuse_cache_clear(in_dir("cache"), &removed);
    rmdir(in_dir("cache"));
    const char *names[] = {"a.npy", "r.tsv", "v.json", "sources.fuse", "out.npy",
                           "out.npz", "saved.json", "saved.npy", "formats.fuse",
                           "j.jsonl", "b.txt", "b.vocab.json", "w.safetensors", "x.npz"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(in_dir(names[i]));
    rmdir(dir);
}

START_TEST(context)
{
    run_all("fuse_ctx_new", scenario_ctx, NULL);
}
END_TEST

START_TEST(matmul_compiled)
{
    Program p = {.text = MATMUL};
    run_all("matmul (compiled)", scenario_program, &p);
}
END_TEST

START_TEST(closure_fixpoint)
{
    Program p = {.text = CLOSURE, .mode = FUSE_MODE_FIXPOINT, .disk_cache = true};
    ck_assert_int_eq(scenario_program(&p), FUSE_OK);
    run_all("closure (fixpoint)", scenario_program, &p);
}
END_TEST

START_TEST(sources_and_sink)
{
    Program p = {.file = "sources.fuse", .disk_cache = true,
                 .save_npz = __sanitizer_get_ownership != NULL};
    ck_assert_int_eq(scenario_program(&p), FUSE_OK);
    run_all("sources and a sink", scenario_program, &p);
}
END_TEST

START_TEST(other_formats_and_a_query)
{
    Program p = {.file = "formats.fuse", .mode = FUSE_MODE_DEMAND, .disk_cache = true,
                 .query = true};
    ck_assert_int_eq(scenario_program(&p), FUSE_OK);
    run_all("other formats and a query", scenario_program, &p);
}
END_TEST

START_TEST(files)
{
    run_all("tensor load and save", scenario_files, NULL);
}
END_TEST

static Suite *allocfail_suite(void)
{
    Suite *s = suite_create("allocfail");
    TCase *tc = tcase_create("every allocation fails in turn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, context);
    tcase_add_test(tc, matmul_compiled);
    tcase_add_test(tc, closure_fixpoint);
    tcase_add_test(tc, sources_and_sink);
    tcase_add_test(tc, other_formats_and_a_query);
    tcase_add_test(tc, files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(allocfail_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
