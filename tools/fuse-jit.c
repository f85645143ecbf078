/*
 * fuse-jit.c: the fuse-jit command. Parses the command line, then drives the public
 * API (include/fusejit.h) like any host application: `run` compiles and runs a
 * program and prints or saves its exports, `check` parses and checks it, `explain`
 * describes it, `emit` prints one compilation stage, `cache` manages the disk cache
 * of compiled code.
 *
 * Exit status: 0 success; 1 runtime or I/O error (including a missing program
 * file); 2 usage error (bad flags or arguments, FUSE_E_ARG); 3 the program does
 * not parse or check (FUSE_E_SYNTAX, FUSE_E_SHAPE); 4 a fixpoint did not
 * converge (FUSE_E_NOT_CONVERGED; the outputs are still printed or written).
 * Results go to stdout;
 * diagnostics, already formatted by the library as `FILE:LINE:COL: error: ...`
 * with the source line and a caret, go to stderr.
 *
 * The option parser is a small table-driven one: each command accepts a subset of
 * the options in OPTIONS; `--name value` and `--name=value` are equivalent, options
 * and the PROGRAM argument may come in any order, and `--` ends the options.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusejit.h"
#include "cli_cache.h"
#include "cli_modes.h"
#include "print.h"
#include "repl.h"
#include "support.h"

enum {
    EXIT_RUNTIME = 1, /* runtime, I/O, JIT or memory error */
    EXIT_USAGE = 2,   /* bad command line */
    EXIT_PROGRAM = 3, /* the program does not parse or check */
    EXIT_NOT_CONVERGED = 4 /* a fixpoint hit --max-iters (outputs still written) */
};

/* ---- options ---- */

/* Option bits; a command lists the ones it accepts. */
enum {
    OPT_OUT = 1u << 0,
    OPT_INPUT = 1u << 1,
    OPT_BASE_DIR = 1u << 2,
    OPT_OUT_DIR = 1u << 3,
    OPT_THREADS = 1u << 4,
    OPT_NO_SINKS = 1u << 5,
    OPT_JSON = 1u << 6,
    OPT_WHAT = 1u << 7,
    OPT_PARSER = 1u << 8,
    OPT_PARAM = 1u << 10,
    OPT_PRECISION = 1u << 11, /* --precision (cli_modes.c) */
    OPT_DIAG = OPT_PARSER, /* --color, --error-limit: every command that parses */
    OPT_MAX_MEMORY = 1u << 9,
    OPT_COMPRESS = 1u << 15,
    OPT_MODES = 1u << 20, /* every execution-mode option (cli_modes.c) */
    OPT_TIME = 1u << 24,      /* code cache and phase times (cli_cache.c) */
    OPT_CACHE_DIR = 1u << 25,
    OPT_NO_CACHE = 1u << 26,
    OPT_WEIGHTS = 1u << 28,   /* a weights manifest (fuse_program_options.weights) */
    OPT_DISTRIBUTED = 1u << 29 /* across MPI ranks (fuse_config.distributed) */
};

typedef struct OptionSpec {
    const char *name; /* without the leading "--" */
    unsigned bit;
    const char *value; /* placeholder of the value in help, NULL for a flag */
    const char *help;
} OptionSpec;

static const OptionSpec OPTIONS[] = {
    {"out", OPT_OUT, "FILE",
     "write the exports to FILE instead of printing them:\n"
     "                        .npz holds every export (a member per name); .npy,\n"
     "                        .json and .jsonl hold the only export of a program\n"
     "                        that has exactly one"},
    {"compress", OPT_COMPRESS, NULL, "deflate the members of an --out .npz (as NumPy's\n"
                                     "                        savez_compressed; default: stored, as savez)"},
    {"input", OPT_INPUT, "NAME=FILE.npy",
     "bind tensor NAME to the data in FILE.npy (repeatable);\n"
     "                        NAME@t-1 seeds an earlier step of a streaming tensor"},
    {"base-dir", OPT_BASE_DIR, "DIR", "resolve source files against DIR (default: the\n"
                                      "                        program's directory)"},
    {"out-dir", OPT_OUT_DIR, "DIR", "write sink files under DIR (default: the program's\n"
                                    "                        directory)"},
    {"threads", OPT_THREADS, "N", "worker threads (default 0: one per core)"},
    {"max-memory", OPT_MAX_MEMORY, "SIZE",
     "refuse a program whose buffers need more than SIZE\n"
     "                        bytes (suffix K, M, G, T or KiB, MiB, GiB, TiB;\n"
     "                        0 or none: no cap; default: the machine's memory)"},
    {"no-sinks", OPT_NO_SINKS, NULL, "do not write the program's sink files"},
    {"json", OPT_JSON, NULL, "print JSON instead of text"},
    {"what", OPT_WHAT, "STAGE", "the stage to print: ast, ir, llvm (optimised LLVM IR),\n"
                                "                        llvm-raw (before optimisation) or asm"},
    {"parser", OPT_PARSER, "SYNTAX", "legacy (default) or v2, the structured syntax (a\n"
                                     "                        first line `#!fuse v2` also selects it)"},
    {"weights", OPT_WEIGHTS, "FILE.json",
     "a weights manifest: tensors of the program read from\n"
     "                        files or shards, dequantised or LoRA-merged\n"
     "                        (docs/files.md, \"Weight manifests\")"},
    {"color", OPT_DIAG, "WHEN", "colour the diagnostics: auto (default: when stderr is\n"
                                "                        a terminal, TERM is not dumb and NO_COLOR\n"
                                "                        is unset or empty), always or never"},
    {"error-limit", OPT_DIAG, "N", "stop after N errors (default 20; 0: no limit)"},
    {"param", OPT_PARAM, "NAME=VALUE", "the value of `param NAME` (v2), replacing its\n"
                                       "                        default (repeatable)"},
    /* code cache */
    {"time", OPT_TIME, NULL, "print the phases (parse, check, lower, compile or cache\n"
                             "                        load, run) to stderr"},
    {"cache-dir", OPT_CACHE_DIR, "DIR", "the disk cache of compiled code (default:\n"
                                        "                        $FUSE_JIT_CACHE_DIR, else\n"
                                        "                        $XDG_CACHE_HOME/fuse-jit, else\n"
                                        "                        ~/.cache/fuse-jit)"},
    {"no-cache", OPT_NO_CACHE, NULL, "neither read nor write the disk cache"},
    /* execution modes */
    {"mode", OPT_MODES, "MODE", "single (default: one sweep), fixpoint (iterate recursion\n"
                                "                        until nothing changes) or demand (only what the\n"
                                "                        exports, sinks or --query need)"},
    {"fixpoint-strategy", OPT_MODES, "S", "synchronous (default) or semi_naive"},
    {"max-iters", OPT_MODES, "N", "fixpoint sweeps at most (default 32); more is exit\n"
                                  "                        status 4, with the outputs still written"},
    {"tol", OPT_MODES, "X", "fixpoint tolerance: |new-old| <= X + 1e-5|new| (default 0)"},
    {"query", OPT_MODES, "NAME[AX=I,...]",
     "compute only NAME's dependency closure to a fixpoint\n"
     "                        and print it; AX=I selects index I of axis AX\n"
     "                        (repeatable; replaces the exports; with --out the\n"
     "                        results go to the file: an .npz member per query\n"
     "                        named by its text, or the only one in .npy/.json)"},
    {"precision", OPT_PRECISION, "P", "fp32 (default), fp64, bf16 or fp16: the element type\n"
                                      "                        of every tensor (bf16 and fp16 compute in\n"
                                      "                        fp32; docs/execution.md, \"Precision\")"},
    {"projection", OPT_MODES, "P", "exact (default) or monte_carlo"},
    {"samples", OPT_MODES, "N", "Monte Carlo samples per equation"},
    {"seed", OPT_MODES, "S", "random seed (Monte Carlo)"},
    {"temperature", OPT_MODES, "NAME=SPEC",
     "temperature of sig without T in NAME's equations\n"
     "                        (NAME * for all): 0.5, linear:START:END:STEPS or\n"
     "                        piecewise:STEP=VALUE,... (repeatable)"},
    {"steps", OPT_MODES, "N", "run N time steps: each run is one step of the *t axes\n"
                              "                        (H[i,*t] = f(H[i,*t-1])); seeds given as\n"
                              "                        --input H@t-1=FILE set the first step's past;\n"
                              "                        the exports give the last step"},
    {"explain", OPT_MODES, NULL, "print the run's trace after the outputs: per sweep and\n"
                                 "                        equation the status, time, T and changes"},
    {"explain-json", OPT_MODES, NULL, "print the run's trace as JSON after the outputs"},
    {"distributed", OPT_DISTRIBUTED, NULL,
     "run across the MPI ranks of `mpirun -np R fuse-jit ...`:\n"
     "                        large equations split across the ranks, results as\n"
     "                        one process's; rank 0 prints and writes (README,\n"
     "                        \"Running across MPI ranks\")"},
};

static const char *const WHAT_VALUES[] = {"ast", "ir", "llvm", "llvm-raw", "asm"};

/* The parsed command line of one command. Owns input_names. */
typedef struct Args {
    const char *program;
    const char *out;
    const char *base_dir;
    const char *out_dir;
    const char *what;
    const char *weights;      /* --weights FILE.json */
    fuse_syntax syntax;       /* --parser */
    fuse_param *params;       /* --param NAME=VALUE; names malloc'd */
    size_t n_params;
    int error_limit;          /* --error-limit: 0 not given (the library's 20), -1 none */
    uint64_t max_memory;      /* --max-memory; 0 = not given (the default cap) */
    int threads;
    bool no_sinks;
    bool compress;            /* --compress: deflate the --out .npz */
    bool json;
    char **input_names;       /* malloc'd names of --input NAME=FILE */
    const char **input_paths; /* the FILE parts, pointing into argv */
    size_t n_inputs;
    /* code cache */
    bool time;
    bool no_cache;
    const char *cache_dir;
    /* execution modes */
    CliModes modes;
    const char *option; /* name of the option being applied */
    bool distributed;   /* --distributed */
    int rank;           /* this process's MPI rank with --distributed, else 0 */
} Args;

typedef struct Command Command;
struct Command {
    const char *name;
    const char *synopsis; /* after "fuse-jit " */
    const char *summary;  /* one line for the command list */
    const char *about;    /* a paragraph for the command's help */
    unsigned options;
    int (*run)(const Args *a); /* NULL for help, handled by help_command */
};

static void args_free(Args *a)
{
    for (size_t i = 0; i < a->n_inputs; i++)
        free(a->input_names[i]);
    free(a->input_names);
    free(a->input_paths);
    for (size_t i = 0; i < a->n_params; i++)
        free((char *)a->params[i].name);
    free(a->params);
    cli_modes_free(&a->modes);
}

/* Prints `fuse-jit: error: ...` and a pointer to the help; returns EXIT_USAGE. */
static int usage_error(const Command *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const Command *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuse-jit: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (c)
        fprintf(stderr, "\nTry 'fuse-jit %s --help' for more information.\n", c->name);
    else
        fputs("\nTry 'fuse-jit --help' for more information.\n", stderr);
    return EXIT_USAGE;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool out_is_single(const char *path)
{
    return ends_with(path, ".npy") || ends_with(path, ".json") || ends_with(path, ".jsonl");
}

/* --input NAME=FILE: records the pair. */
static int add_input(const Command *c, const char *spec, Args *a)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || eq[1] == '\0')
        return usage_error(c, "--input expects NAME=FILE, got '%s'", spec);
    char **names = realloc(a->input_names, (a->n_inputs + 1) * sizeof *names);
    if (names)
        a->input_names = names;
    const char **paths = realloc(a->input_paths, (a->n_inputs + 1) * sizeof *paths);
    if (paths)
        a->input_paths = paths;
    char *name = names && paths ? strndup(spec, (size_t)(eq - spec)) : NULL;
    if (!name) {
        fputs("fuse-jit: error: out of memory\n", stderr);
        return EXIT_RUNTIME;
    }
    a->input_names[a->n_inputs] = name;
    a->input_paths[a->n_inputs++] = eq + 1;
    return 0;
}

static int set_threads(const Command *c, const char *v, Args *a)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < 0 || n > INT_MAX)
        return usage_error(c, "--threads expects a number of threads (0 = all cores), got '%s'",
                           v);
    a->threads = (int)n;
    return 0;
}

static int set_what(const Command *c, const char *v, Args *a)
{
    for (size_t i = 0; i < sizeof WHAT_VALUES / sizeof WHAT_VALUES[0]; i++)
        if (strcmp(v, WHAT_VALUES[i]) == 0) {
            a->what = WHAT_VALUES[i];
            return 0;
        }
    return usage_error(c, "--what expects ast, ir, llvm, llvm-raw or asm, got '%s'", v);
}

static int set_out(const Command *c, const char *v, Args *a)
{
    if (!ends_with(v, ".npz") && !out_is_single(v))
        return usage_error(c, "--out expects a file ending in .npz, .npy, .json or .jsonl, "
                              "got '%s'", v);
    a->out = v;
    return 0;
}

static int set_parser(const Command *c, const char *v, Args *a)
{
    if (strcmp(v, "legacy") == 0)
        a->syntax = FUSE_SYNTAX_LEGACY;
    else if (strcmp(v, "v2") == 0)
        a->syntax = FUSE_SYNTAX_V2;
    else
        return usage_error(c, "--parser expects legacy or v2, got '%s'", v);
    return 0;
}

static int set_max_memory(const Command *c, const char *v, Args *a)
{
    if (!cli_parse_bytes(v, &a->max_memory))
        return usage_error(c, "--max-memory expects a size such as 4G, 512MiB or 1000000 "
                              "(0 or none: no cap), got '%s'", v);
    return 0;
}

/* --param NAME=VALUE: records the pair. */
static int add_param(const Command *c, const char *spec, Args *a)
{
    const char *eq = strchr(spec, '=');
    char *end = NULL;
    double v = eq ? strtod(eq + 1, &end) : 0;
    if (!eq || eq == spec || !end || end == eq + 1 || *end != '\0' || !isfinite(v))
        return usage_error(c, "--param expects NAME=NUMBER, got '%s'", spec);
    fuse_param *ps = realloc(a->params, (a->n_params + 1) * sizeof *ps);
    char *name = ps ? strndup(spec, (size_t)(eq - spec)) : NULL;
    if (ps)
        a->params = ps;
    if (!name) {
        fputs("fuse-jit: error: out of memory\n", stderr);
        return EXIT_RUNTIME;
    }
    a->params[a->n_params++] = (fuse_param){name, v};
    return 0;
}

static int set_color(const Command *c, const char *v)
{
    CliColor when;
    if (!cli_color_parse(v, &when))
        return usage_error(c, "--color expects auto, always or never, got '%s'", v);
    cli_color_set(when);
    return 0;
}

static int set_error_limit(const Command *c, const char *v, Args *a)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < 0 || n > INT_MAX)
        return usage_error(c, "--error-limit expects a number of errors (0 = no limit), "
                              "got '%s'", v);
    a->error_limit = n ? (int)n : -1;
    return 0;
}

/* Stores an execution-mode option (cli_modes.c). */
static int set_modes(const Command *c, const char *v, Args *a)
{
    char *msg = NULL;
    if (cli_modes_set(&a->modes, a->option, v, &msg) == 0)
        return 0;
    int rc = usage_error(c, "%s", msg ? msg : "out of memory");
    free(msg);
    return rc;
}

/* Stores the value of one recognised option. */
static int apply_option(const Command *c, unsigned bit, const char *v, Args *a)
{
    switch (bit) {
    case OPT_OUT: return set_out(c, v, a);
    case OPT_INPUT: return add_input(c, v, a);
    case OPT_BASE_DIR: a->base_dir = v; return 0;
    case OPT_OUT_DIR: a->out_dir = v; return 0;
    case OPT_THREADS: return set_threads(c, v, a);
    case OPT_MAX_MEMORY: return set_max_memory(c, v, a);
    case OPT_NO_SINKS: a->no_sinks = true; return 0;
    case OPT_COMPRESS: a->compress = true; return 0;
    case OPT_JSON: a->json = true; return 0;
    case OPT_PARSER: /* also OPT_DIAG */
        if (strcmp(a->option, "color") == 0)
            return set_color(c, v);
        if (strcmp(a->option, "error-limit") == 0)
            return set_error_limit(c, v, a);
        return set_parser(c, v, a);
    case OPT_PARAM: return add_param(c, v, a);
    case OPT_WHAT: return set_what(c, v, a);
    case OPT_MODES:
    case OPT_PRECISION: return set_modes(c, v, a);
    case OPT_TIME: a->time = true; return 0;
    case OPT_CACHE_DIR: a->cache_dir = v; return 0;
    case OPT_NO_CACHE: a->no_cache = true; return 0;
    case OPT_WEIGHTS: a->weights = v; return 0;
    case OPT_DISTRIBUTED: a->distributed = true; return 0;
    default: return usage_error(c, "internal: unhandled option");
    }
}

static const OptionSpec *find_option(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++)
        if (strlen(OPTIONS[i].name) == n && strncmp(OPTIONS[i].name, name, n) == 0)
            return &OPTIONS[i];
    return NULL;
}

/* "; did you mean '--NAME'?" for the option of c (every option when c is NULL)
 * nearest to word (leading dashes and any "=VALUE" ignored), else "". */
static const char *option_hint(const Command *c, const char *word, char *buf, size_t size)
{
    char name[64];
    while (*word == '-')
        word++;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(word, "="), word);
    const char *names[sizeof OPTIONS / sizeof OPTIONS[0] + 2];
    size_t n = 0;
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++)
        if (c && (c->options & OPTIONS[i].bit))
            names[n++] = OPTIONS[i].name;
    names[n++] = "help";
    if (!c)
        names[n++] = "version";
    const char *near = sup_nearest(name, names, n);
    if (near)
        snprintf(buf, size, "; did you mean '--%s'?", near);
    else if (size)
        buf[0] = '\0';
    return buf;
}

/* Parses argv[*i], an option of command c, taking its value from the same word
 * ("--out=x") or the next one ("--out x"). */
static int parse_option(const Command *c, int argc, char **argv, int *i, Args *a)
{
    const char *word = argv[*i];
    char hint[96];
    if (strncmp(word, "--", 2) != 0)
        return usage_error(c, "unknown option '%s' for '%s'%s", word, c->name,
                           option_hint(c, word, hint, sizeof hint));
    const char *name = word + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    const OptionSpec *o = find_option(name, n);
    if (!o || !(c->options & o->bit))
        return usage_error(c, "unknown option '--%.*s' for '%s'%s", (int)n, name, c->name,
                           option_hint(c, name, hint, sizeof hint));
    a->option = o->name;
    if (!o->value) {
        if (eq)
            return usage_error(c, "option '--%s' takes no value", o->name);
        return apply_option(c, o->bit, NULL, a);
    }
    if (eq)
        return apply_option(c, o->bit, eq + 1, a);
    if (*i + 1 >= argc)
        return usage_error(c, "option '--%s' needs a value %s", o->name, o->value);
    return apply_option(c, o->bit, argv[++(*i)], a);
}

typedef enum Parsed { PARSED_OK, PARSED_HELP, PARSED_ERROR } Parsed;

/* Parses the words after the command name. On PARSED_ERROR *rc is the exit code
 * (the message is printed). */
static Parsed args_parse(const Command *c, int argc, char **argv, Args *a, int *rc)
{
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!options_done && strcmp(w, "--") == 0) {
            options_done = true;
        } else if (!options_done && (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0)) {
            return PARSED_HELP;
        } else if (!options_done && w[0] == '-' && w[1] != '\0') {
            if ((*rc = parse_option(c, argc, argv, &i, a)) != 0)
                return PARSED_ERROR;
        } else if (a->program) {
            *rc = usage_error(c, "unexpected argument '%s' (PROGRAM is '%s')", w, a->program);
            return PARSED_ERROR;
        } else {
            a->program = w;
        }
    }
    *rc = 0;
    if (!a->program)
        *rc = usage_error(c, "missing PROGRAM (a .fuse file)");
    else if ((c->options & OPT_WHAT) && !a->what)
        *rc = usage_error(c, "missing --what=ast|ir|llvm|llvm-raw|asm");
    else if (a->compress && (!a->out || !ends_with(a->out, ".npz")))
        *rc = usage_error(c, "--compress needs --out FILE.npz");
    return *rc ? PARSED_ERROR : PARSED_OK;
}

/* ---- sessions: context, program, inputs and runner of one command ---- */

typedef struct Session {
    fuse_ctx *ctx;
    fuse_program *prog;
    fuse_runner *run;
    fuse_input *inputs; /* tensors loaded from --input files; data freed with fuse_free */
    size_t n_inputs;
    bool binds_nothing; /* check: every source is read from its file */
    /* --distributed on a rank other than 0 (rank): its errors before the
     * runner (the same on every rank: rank 0 prints them) and those saying
     * another rank failed are not printed; the others name the rank */
    bool is_quiet;
    bool is_compiling;  /* session_compile was reached */
    int rank;
} Session;

static int exit_code(fuse_status st)
{
    switch (st) {
    case FUSE_OK: return 0;
    case FUSE_E_SYNTAX:
    case FUSE_E_SHAPE: return EXIT_PROGRAM;
    case FUSE_E_ARG: return EXIT_USAGE;
    case FUSE_E_NOT_CONVERGED: return EXIT_NOT_CONVERGED;
    default: return EXIT_RUNTIME;
    }
}

/* Prints the context's diagnostic for a failed call; returns the exit code. */
static int report(const Session *s, fuse_status st)
{
    const char *msg = s->ctx ? fuse_ctx_error(s->ctx) : "";
    if (s->is_quiet && (!s->is_compiling || (msg && strstr(msg, "another MPI rank failed"))))
        return exit_code(st);
    if (s->is_quiet)
        fprintf(stderr, "fuse-jit: on MPI rank %d:\n", s->rank);
    if (!msg || !*msg)
        fprintf(stderr, "fuse-jit: error: %s\n", fuse_status_name(st));
    else { /* a message without a position gets the program's name, as usage errors do */
        char *text = sup_strprintf("%s%s%s", strncmp(msg, "error: ", 7) == 0 ? "fuse-jit: " : "",
                                   msg, ends_with(msg, "\n") ? "" : "\n");
        cli_print_diags(stderr, text ? text : msg);
        free(text);
    }
    return exit_code(st);
}

static void session_close(Session *s)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        fuse_free(s->inputs[i].tensor.data);
    free(s->inputs);
    fuse_runner_free(s->run);
    fuse_program_free(s->prog);
    fuse_ctx_free(s->ctx);
}

/* Creates the context and parses and checks the program file. */
static int session_open(const Args *a, Session *s)
{
    s->rank = a->rank;
    s->is_quiet = a->rank > 0;
    FILE *f = fopen(a->program, "r");
    if (!f) {
        if (!s->is_quiet)
            fprintf(stderr, "fuse-jit: error: cannot open program file '%s': %s\n", a->program,
                strerror(errno));
        return EXIT_RUNTIME;
    }
    fclose(f);
    fuse_status st = fuse_ctx_new(&s->ctx);
    if (st != FUSE_OK) {
        fprintf(stderr, "fuse-jit: error: cannot create the JIT context: %s\n",
                fuse_status_name(st));
        return exit_code(st);
    }
    fuse_ctx_set_log(s->ctx, cli_log, "fuse-jit"); /* warnings to stderr */
    fuse_program_options opts;
    fuse_program_options_init(&opts);
    opts.syntax = a->syntax;
    opts.error_limit = a->error_limit;
    opts.params = a->params;
    opts.n_params = a->n_params;
    opts.weights = a->weights;
    opts.strict_sources = s->binds_nothing;
    st = fuse_program_from_file_opts(s->ctx, a->program, &opts, &s->prog);
    return st == FUSE_OK ? 0 : report(s, st);
}

/* Loads every --input file. */
static int session_load_inputs(const Args *a, Session *s)
{
    if (a->n_inputs == 0)
        return 0;
    s->inputs = calloc(a->n_inputs, sizeof *s->inputs);
    if (!s->inputs)
        return report(s, FUSE_E_NOMEM);
    for (size_t i = 0; i < a->n_inputs; i++) {
        fuse_input *in = &s->inputs[i];
        in->name = a->input_names[i];
        fuse_status st = fuse_tensor_load(s->ctx, a->input_paths[i], &in->tensor);
        if (st != FUSE_OK)
            return report(s, st);
        s->n_inputs++;
    }
    return 0;
}

/* Compiles the program for the command line's configuration and inputs. */
static int session_compile(const Args *a, Session *s)
{
    fuse_config cfg;
    fuse_config_init(&cfg);
    cfg.threads = a->threads;
    if (a->base_dir)
        cfg.base_dir = a->base_dir;
    if (a->out_dir)
        cfg.out_dir = a->out_dir;
    if (a->no_sinks)
        cfg.write_sinks = 0;
    cli_modes_config(&a->modes, &cfg);
    cfg.cache_dir = a->cache_dir;
    cfg.no_cache = a->no_cache;
    cfg.max_memory = a->max_memory;
    cfg.distributed = a->distributed ? FUSE_DISTRIBUTED_RANK0 : 0; /* rank 0 prints */
    s->is_compiling = true;
    fuse_status st = fuse_runner_new(s->prog, &cfg, s->inputs, s->n_inputs, &s->run);
    return st == FUSE_OK ? 0 : report(s, st);
}

/* Prints NUL-terminated text from the library, ending it with a newline. */
static void put_text(const char *text)
{
    fputs(text, stdout);
    if (!ends_with(text, "\n"))
        fputc('\n', stdout);
}

/* ---- run ---- */

/* Prints every export in program order. */
static int print_outputs(const fuse_outputs *out)
{
    for (size_t i = 0; i < fuse_outputs_count(out); i++) {
        fuse_status st = cli_print_export(stdout, fuse_outputs_name(out, i),
                                          fuse_outputs_tensor(out, i));
        if (st != FUSE_OK) {
            fprintf(stderr, "fuse-jit: error: cannot print export '%s': %s\n",
                    fuse_outputs_name(out, i), fuse_status_name(st));
            return exit_code(st);
        }
    }
    return 0;
}

/* Writes the exports to the --out file. */
static int save_outputs(const Args *a, const Session *s, const fuse_outputs *out)
{
    size_t n = fuse_outputs_count(out);
    fuse_status st;
    if (!out_is_single(a->out)) {
        st = a->compress ? fuse_outputs_save_npz_compressed(s->ctx, out, a->out)
                         : fuse_outputs_save_npz(s->ctx, out, a->out);
    } else if (n != 1) {
        fprintf(stderr, "fuse-jit: error: --out %s holds one tensor, but %s has %zu exports%s\n",
                a->out, a->program, n, n ? "; use an .npz file to save them all" : "");
        return EXIT_USAGE;
    } else {
        st = fuse_tensor_save(s->ctx, fuse_outputs_tensor(out, 0), a->out);
    }
    return st == FUSE_OK ? 0 : report(s, st);
}

/* ---- run: execution modes ---- */

/* Runs the program --steps times (default once): each run is one time step of the
 * *t axes, and seeds (--input H@t-1=...) go to the first only; *out holds the last
 * outputs, also when the status is FUSE_E_NOT_CONVERGED. With `save` (an .npz
 * --out, or an .npy one of the only export) the last run writes its exports
 * there instead (fuse_runner_run_save: straight from the runner's buffers;
 * across MPI ranks, no rank gathers them whole) and *out stays NULL. */
static fuse_status run_steps(const Args *a, Session *s, const char *save, fuse_outputs **out)
{
    int steps = a->modes.steps > 0 ? a->modes.steps : 1;
    fuse_status st = FUSE_OK;
    fuse_input *in = calloc(s->n_inputs + 1, sizeof *in); /* stream: seeds at step 0 only */
    if (!in)
        return FUSE_E_NOMEM;
    for (int i = 0; i < steps; i++) {
        fuse_outputs_free(*out);
        *out = NULL;
        size_t n = cli_step_inputs(s->inputs, s->n_inputs, i, in);
        st = save && i == steps - 1 ? fuse_runner_run_save(s->run, in, n, save, a->compress)
                                    : fuse_runner_run(s->run, in, n, out);
        if (st != FUSE_OK && st != FUSE_E_NOT_CONVERGED)
            break;
    }
    free(in);
    return st;
}

/* Prints the trace of the last run for --explain (text) and --explain-json. */
static int print_trace(const Args *a, const Session *s)
{
    for (int json = 0; json < 2; json++) {
        if (!(json ? a->modes.explain_json : a->modes.explain))
            continue;
        char *text = NULL;
        fuse_status st = fuse_runner_trace(s->run, json, &text);
        if (st != FUSE_OK)
            return report(s, st);
        put_text(text);
        fuse_free(text);
    }
    return 0;
}

/* The results of the --query options, named by their texts, for --out. */
typedef struct QueryResults {
    const char **names;
    fuse_outputs **outs;
    fuse_tensor *tensors;
    size_t n;
} QueryResults;

static void query_results_free(QueryResults *r)
{
    for (size_t i = 0; i < r->n; i++)
        fuse_outputs_free(r->outs[i]);
    free(r->names);
    free(r->outs);
    free(r->tensors);
}

/* Runs one --query: prints its result under the query's text, or keeps it in r
 * (not NULL) for --out. */
static int run_query(const Args *a, Session *s, const char *q, QueryResults *r)
{
    char *name = NULL, *sel = NULL;
    if (!cli_query_split(q, &name, &sel))
        return report(s, FUSE_E_NOMEM);
    fuse_outputs *out = NULL;
    fuse_status st = fuse_runner_query(s->run, name, sel, s->inputs, s->n_inputs, &out);
    free(name);
    free(sel);
    int rc = st == FUSE_OK ? 0 : report(s, st);
    if (out && (rc == 0 || rc == EXIT_NOT_CONVERGED)) {
        fuse_status pst = FUSE_OK;
        if (r) { /* taken: the file is written once every query has run */
            r->names[r->n] = q;
            r->outs[r->n] = out;
            r->tensors[r->n++] = *fuse_outputs_tensor(out, 0);
            out = NULL;
        } else if (a->rank == 0) { /* across MPI ranks, rank 0 prints */
            pst = cli_print_export(stdout, q, fuse_outputs_tensor(out, 0));
        }
        int rc2 = pst != FUSE_OK ? exit_code(pst) : a->rank == 0 ? print_trace(a, s) : 0;
        rc = rc2 ? rc2 : rc;
    }
    fuse_outputs_free(out);
    return rc;
}

/* Writes the results of the queries to the --out file: an .npz member per query
 * named by its text (`Path[x=3]`), or the only query's result in .npy, .json or
 * .jsonl. */
static int save_queries(const Args *a, const Session *s, const QueryResults *r)
{
    fuse_status st;
    if (!out_is_single(a->out)) {
        st = fuse_tensors_save_npz(s->ctx, r->names, r->tensors, r->n, a->compress, a->out);
    } else if (r->n != 1) {
        fprintf(stderr, "fuse-jit: error: --out %s holds one tensor, but %zu queries were "
                        "given; use an .npz file to save them all\n", a->out, r->n);
        return EXIT_USAGE;
    } else {
        st = fuse_tensor_save(s->ctx, &r->tensors[0], a->out);
    }
    return st == FUSE_OK ? 0 : report(s, st);
}

/* Two queries of one text would be two members of one name. */
static int check_query_names(const Args *a)
{
    for (size_t i = 0; i < a->modes.n_queries; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->modes.queries[i], a->modes.queries[j]) == 0) {
                fprintf(stderr, "fuse-jit: error: --query '%s' is given twice; with --out "
                                "each query is a member named by its text\n",
                        a->modes.queries[i]);
                return EXIT_USAGE;
            }
    return 0;
}

static int run_queries(const Args *a, Session *s)
{
    size_t nq = a->modes.n_queries;
    QueryResults r = {0};
    if (a->out) {
        int rc = check_query_names(a);
        if (rc)
            return rc;
        r.names = calloc(nq, sizeof *r.names);
        r.outs = calloc(nq, sizeof *r.outs);
        r.tensors = calloc(nq, sizeof *r.tensors);
        if (!r.names || !r.outs || !r.tensors) {
            query_results_free(&r);
            return report(s, FUSE_E_NOMEM);
        }
    }
    int rc = 0;
    for (size_t i = 0; i < nq; i++) {
        int q = run_query(a, s, a->modes.queries[i], a->out ? &r : NULL);
        if (q != 0 && q != EXIT_NOT_CONVERGED) {
            query_results_free(&r);
            return q;
        }
        rc = rc ? rc : q;
    }
    int saved = a->out && a->rank == 0 ? save_queries(a, s, &r) : 0;
    query_results_free(&r);
    return saved ? saved : rc;
}

/* --time --distributed: what this rank moved. */
static void print_distributed_time(FILE *f)
{
    int rank = 0, size = 1;
    uint64_t bytes = 0;
    if (fuse_distributed_rank(&rank, &size, &bytes) == FUSE_OK)
        fprintf(f, "distributed: %d MPI ranks; rank %d moved %llu bytes (%.1f MiB)\n",
                size, rank, (unsigned long long)bytes, (double)bytes / (1024.0 * 1024.0));
}

static int cmd_run(const Args *a)
{
    Session s = {0};
    fuse_outputs *out = NULL;
    int rc = session_open(a, &s);
    if (rc == 0)
        rc = session_load_inputs(a, &s);
    if (rc == 0)
        rc = session_compile(a, &s);
    if (rc == 0 && a->modes.n_queries) {
        rc = run_queries(a, &s);
    } else if (rc == 0) {
        bool is_one_npy = a->out && ends_with(a->out, ".npy") &&
                          fuse_program_tensor_count(s.prog, FUSE_TENSORS_EXPORTS) == 1;
        const char *save = a->out && (ends_with(a->out, ".npz") || is_one_npy) ? a->out : NULL;
        fuse_status st = run_steps(a, &s, save, &out);
        rc = st == FUSE_OK ? 0 : report(&s, st);
        if (save && (rc == 0 || rc == EXIT_NOT_CONVERGED) && a->rank == 0) {
            int rc2 = print_trace(a, &s);
            rc = rc2 ? rc2 : rc;
        }
        /* a fixpoint that did not converge still gives its outputs; across MPI
         * ranks every rank has them, and rank 0 prints or saves them */
        if (out && (rc == 0 || rc == EXIT_NOT_CONVERGED) && a->rank == 0) {
            int rc2 = a->out ? save_outputs(a, &s, out) : print_outputs(out);
            if (rc2 == 0)
                rc2 = print_trace(a, &s);
            rc = rc2 ? rc2 : rc;
        }
    }
    if (a->time && s.run && a->rank == 0) {
        cli_cache_print_times(stderr, s.ctx, s.run);
        if (a->distributed)
            print_distributed_time(stderr);
    }
    fuse_outputs_free(out);
    session_close(&s);
    return rc;
}

/* ---- check, explain, emit ---- */

static int cmd_check(const Args *a)
{
    Session s = {.binds_nothing = true};
    int rc = session_open(a, &s);
    if (rc == 0)
        printf("%s: ok\n", a->program);
    session_close(&s);
    return rc;
}

/* explain --distributed: compiles the program for the job's ranks and prints
 * each equation's placement (rank 0). */
static int explain_distributed(const Args *a, Session *s, char **text)
{
    int rc = session_load_inputs(a, s);
    if (rc == 0)
        rc = session_compile(a, s);
    if (rc != 0)
        return rc;
    fuse_status st = fuse_runner_explain_distributed(s->run, text);
    return st == FUSE_OK ? 0 : report(s, st);
}

static int cmd_explain(const Args *a)
{
    Session s = {0};
    char *text = NULL;
    int rc = session_open(a, &s);
    if (rc == 0 && a->distributed) {
        rc = explain_distributed(a, &s, &text);
    } else if (rc == 0) {
        fuse_status st = fuse_program_explain(s.prog, a->json, &text);
        rc = st == FUSE_OK ? 0 : report(&s, st);
    }
    if (rc == 0 && a->rank == 0)
        put_text(text);
    fuse_free(text);
    session_close(&s);
    return rc;
}

static int cmd_emit(const Args *a)
{
    Session s = {0};
    char *text = NULL;
    bool is_program_stage = strcmp(a->what, "ast") == 0 || strcmp(a->what, "ir") == 0;
    int rc = session_open(a, &s);
    if (rc == 0 && !is_program_stage)
        rc = session_load_inputs(a, &s);
    if (rc == 0 && !is_program_stage)
        rc = session_compile(a, &s);
    if (rc == 0) {
        fuse_status st = is_program_stage ? fuse_program_dump(s.prog, a->what, &text)
                                          : fuse_runner_emit(s.run, a->what, &text);
        rc = st == FUSE_OK ? 0 : report(&s, st);
    }
    if (rc == 0)
        put_text(text);
    fuse_free(text);
    session_close(&s);
    return rc;
}

/* ---- help ---- */

static const char EXIT_HELP[] =
    "exit status: 0 ok, 1 runtime or I/O error, 2 usage error, 3 syntax or shape error,\n"
    "4 a fixpoint did not converge (outputs still written)\n";

static const Command COMMANDS[] = {
    {"run", "run PROGRAM [options]", "compile and run a program; print or save its exports",
     "Compiles PROGRAM to native code and runs it once. Without --out, prints every\n"
     "export as `# NAME shape=(..) dtype=..` followed by its values in NumPy's layout.\n"
     "A source .npy of at least 16 MiB (or FUSE_JIT_MMAP_MIN_BYTES bytes) is converted\n"
     "straight from a memory mapping of the file (float32: used in place, no copy).\n"
     "Before any buffer is allocated, the bytes of all of them are summed (they live\n"
     "for the whole run) and a program needing more than --max-memory fails with\n"
     "exit status 1, naming its largest tensors.\n",
     OPT_OUT | OPT_COMPRESS | OPT_INPUT | OPT_BASE_DIR | OPT_OUT_DIR | OPT_THREADS |
         OPT_NO_SINKS | OPT_MODES | OPT_PRECISION |
         OPT_TIME | OPT_CACHE_DIR | OPT_NO_CACHE | OPT_PARSER | OPT_PARAM | OPT_MAX_MEMORY |
         OPT_WEIGHTS | OPT_DISTRIBUTED,
     cmd_run},
    {"check", "check PROGRAM [--parser v2] [--weights FILE.json]",
     "parse and check a program (names, shapes)",
     "Parses and checks PROGRAM without compiling it; prints `PROGRAM: ok`. Every\n"
     "source file must exist and fit the program's sizes (an embedding host may bind\n"
     "sources instead; the library then leaves their files to the runner). With\n"
     "--weights, the manifest and the shapes of its files are checked too.\n",
     OPT_PARSER | OPT_PARAM | OPT_WEIGHTS,
     cmd_check},
    {"explain", "explain PROGRAM [--json] [--distributed]",
     "describe sources, equations, sinks and evaluation order",
     "Prints the static explanation of PROGRAM: its sources, its equations with\n"
     "their LHS axes, projected axes and operator, its sinks, the evaluation order\n"
     "and recursive components. With --distributed (under mpirun) it compiles the\n"
     "program instead and prints, per equation, where it runs across the ranks\n"
     "(split or replicated) and the bytes it all-reduces per run, then the totals.\n",
     OPT_JSON | OPT_PARSER | OPT_PARAM | OPT_WEIGHTS | OPT_DISTRIBUTED | OPT_THREADS |
         OPT_INPUT | OPT_BASE_DIR | OPT_CACHE_DIR | OPT_NO_CACHE, cmd_explain},
    {"emit", "emit PROGRAM --what=STAGE [options]",
     "print a compilation stage: ast, ir, llvm, llvm-raw, asm",
     "Prints one stage of the compilation of PROGRAM. llvm, llvm-raw and asm compile\n"
     "the program, so sources must be readable (or bound with --input).\n",
     OPT_WHAT | OPT_INPUT | OPT_BASE_DIR | OPT_CACHE_DIR | OPT_NO_CACHE | OPT_PARSER |
         OPT_PARAM | OPT_WEIGHTS | OPT_PRECISION, cmd_emit},
    /* main() dispatches it (cache_command) */
    {"cache", "cache stats|clear|dir [--cache-dir DIR]",
     "show, locate or empty the disk cache of compiled code",
     "Compiled code is cached by a content hash of the checked program, its input\n"
     "shapes, the code options and the host CPU and LLVM version, so a second run\n"
     "loads machine code instead of compiling. `stats` prints the directory, its\n"
     "entries and bytes; `clear` deletes every entry; `dir` prints the directory.\n"
     "FUSE_JIT_CACHE_MAX_BYTES caps the directory (default 256 MiB; least recently\n"
     "used entries go first). Within one process (the REPL, a host program) code is\n"
     "also cached kernel by kernel: a changed equation recompiles only its group.\n",
     OPT_CACHE_DIR, NULL},
    /* the REPL (repl.c); main() dispatches it, PROGRAM being optional */
    {"repl", "repl [PROGRAM]", "interactive session (also: fuse-jit alone on a terminal)",
     "Starts an interactive session, loading PROGRAM first when given. Statements\n"
     "entered are added to the session's program and checked at once; a bare tensor\n"
     "name prints its value; `:help` lists the commands. On a terminal it has line\n"
     "editing, history (~/.fuse_jit_history) and tab completion; with stdin from a\n"
     "pipe or file it reads the lines without prompts, and exits with status 1 when\n"
     "any entry failed.\n",
     0, NULL},
    {"help", "help [COMMAND]", "show help for fuse-jit or one command",
     "Shows the commands of fuse-jit, or the options of COMMAND.\n", 0, NULL},
};

static const Command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

/* "; did you mean 'NAME'?" for the command nearest to word, else "". */
static const char *command_hint(const char *word, char *buf, size_t size)
{
    const char *names[sizeof COMMANDS / sizeof COMMANDS[0]];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        names[i] = COMMANDS[i].name;
    const char *near = sup_nearest(word, names, sizeof names / sizeof names[0]);
    if (near)
        snprintf(buf, size, "; did you mean '%s'?", near);
    else if (size)
        buf[0] = '\0';
    return buf;
}

static void print_main_help(FILE *f)
{
    fputs("usage: fuse-jit COMMAND [ARGS...]\n"
          "       fuse-jit --help | --version\n\n"
          "fuse-jit compiles Fuse tensor-equation programs to native code with LLVM\n"
          "and runs them.\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fputs("\noptions:\n  -h, --help  show this help\n  --version   show the version\n\n"
          "'fuse-jit help COMMAND' or 'fuse-jit COMMAND --help' shows a command's options.\n",
          f);
    fputs(EXIT_HELP, f);
}

static void print_command_help(FILE *f, const Command *c)
{
    fprintf(f, "usage: fuse-jit %s\n\n%s\noptions:\n", c->synopsis, c->about);
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++) {
        const OptionSpec *o = &OPTIONS[i];
        if (!(c->options & o->bit))
            continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->value ? " " : "",
                 o->value ? o->value : "");
        fprintf(f, "  %-21s %s\n", left, o->help);
    }
    fprintf(f, "  %-21s %s\n\n%s", "-h, --help", "show this help", EXIT_HELP);
}

/* `help [COMMAND]`. */
static int help_command(int argc, char **argv)
{
    const Command *self = find_command("help");
    if (argc == 0) {
        print_main_help(stdout);
        return 0;
    }
    if (argc > 1)
        return usage_error(self, "help takes at most one COMMAND");
    const Command *c = find_command(argv[0]);
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)
        c = self;
    char hint[96];
    if (!c)
        return usage_error(self, "unknown command '%s'%s", argv[0],
                           command_hint(argv[0], hint, sizeof hint));
    print_command_help(stdout, c);
    return 0;
}

/* `repl [PROGRAM]`. */
static int repl_command(int argc, char **argv)
{
    const Command *self = find_command("repl");
    const char *program = NULL;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!options_done && strcmp(w, "--") == 0) {
            options_done = true;
        } else if (!options_done && (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0)) {
            print_command_help(stdout, self);
            fputc('\n', stdout);
            repl_print_help(stdout);
            return 0;
        } else if (!options_done && w[0] == '-' && w[1] != '\0') {
            char hint[96];
            return usage_error(self, "unknown option '%s' for 'repl'%s", w,
                               option_hint(self, w, hint, sizeof hint));
        } else if (program) {
            return usage_error(self, "unexpected argument '%s' (PROGRAM is '%s')", w, program);
        } else {
            program = w;
        }
    }
    return repl_main(program);
}

/* `cache stats|clear|dir [--cache-dir DIR]`. */
static int cache_command(int argc, char **argv)
{
    const Command *self = find_command("cache");
    Args a = {0};
    const char *action = NULL;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
            print_command_help(stdout, self);
            return 0;
        }
        int rc = w[0] == '-' ? parse_option(self, argc, argv, &i, &a) : 0;
        if (rc)
            return rc;
        if (w[0] != '-' && action)
            return usage_error(self, "unexpected argument '%s'", w);
        if (w[0] != '-')
            action = w;
    }
    if (!action || (strcmp(action, "stats") && strcmp(action, "clear") && strcmp(action, "dir")))
        return usage_error(self, "expected stats, clear or dir%s%s", action ? ", got " : "",
                           action ? action : "");
    return cli_cache_command(action, a.cache_dir);
}

/* ---- main ---- */

/* --distributed: MPI up and this process's rank known before the command runs
 * (the same failure on every rank: rank 0 reports it). */
static int distributed_begin(Args *a)
{
    fuse_status st = fuse_distributed_rank(&a->rank, NULL, NULL);
    if (st == FUSE_OK)
        return 0;
    if (a->rank == 0)
        fprintf(stderr, "fuse-jit: error: %s\n",
                fuse_distributed_available()
                    ? "cannot initialise MPI for --distributed"
                    : "this fuse-jit was built without MPI: --distributed needs a build with "
                      "Open MPI (README, \"Running across MPI ranks\")");
    return EXIT_RUNTIME;
}

/* Parses the arguments of command c and runs it. */
static int dispatch(const Command *c, int argc, char **argv)
{
    Args a = {0};
    int rc = 0;
    Parsed p = args_parse(c, argc, argv, &a, &rc);
    if (p == PARSED_HELP)
        print_command_help(stdout, c);
    else if (p == PARSED_OK && a.distributed)
        rc = distributed_begin(&a);
    if (p == PARSED_OK && rc == 0)
        rc = c->run(&a);
    args_free(&a);
    return rc;
}

/* Flushes stdout; a failed write (a full disk, a closed pipe) is an I/O error. */
static int finish(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "fuse-jit: error: cannot write the output: %s\n", strerror(errno));
        return rc ? rc : EXIT_RUNTIME;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 && isatty(STDIN_FILENO)) /* a terminal gets the REPL */
        return finish(repl_main(NULL));
    if (argc < 2)
        return usage_error(NULL, "missing COMMAND (run, check, explain, emit, repl or help)");
    const char *word = argv[1];
    if (strcmp(word, "repl") == 0)
        return finish(repl_command(argc - 2, argv + 2));
    if (strcmp(word, "cache") == 0)
        return finish(cache_command(argc - 2, argv + 2));
    if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
        print_main_help(stdout);
        return finish(0);
    }
    if (strcmp(word, "--version") == 0) {
        printf("fuse-jit %s\n", fuse_version_string());
        return finish(0);
    }
    if (strcmp(word, "help") == 0)
        return finish(help_command(argc - 2, argv + 2));
    const Command *c = find_command(word);
    if (!c) {
        char hint[96];
        if (word[0] == '-')
            return usage_error(NULL, "unknown option '%s'%s", word,
                               option_hint(NULL, word, hint, sizeof hint));
        return usage_error(NULL, "unknown command '%s'%s", word,
                           command_hint(word, hint, sizeof hint));
    }
    return finish(dispatch(c, argc - 2, argv + 2));
}
