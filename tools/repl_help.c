/*
 * repl_help.c: the REPL's help. `:help` lists what entries do, the `:` commands
 * and the builtins; `:help NAME` prints one builtin (from the compiler's own
 * table, ir/builtins.c: signature, result axes, what it does, an example) or one
 * command (its usage). The command table lives here; repl.c runs the commands by
 * their ids.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ir.h"
#include "repl.h"
#include "support.h"

/* The help of continued lines is indented to this column in the listing. */
#define HELP_COLUMN 21

const ReplCommandDoc REPL_COMMANDS[CMD_COUNT] = {
    [CMD_HELP] = {":help", "[NAME]",
                  "list the commands and builtins; with NAME, one builtin or command"},
    [CMD_LOAD] = {":load", "FILE", "add the statements of FILE (sources then resolve beside it)"},
    [CMD_SAVE] = {":save", "FILE", "write the session as a .fuse program"},
    [CMD_LIST] = {":list", "", "print the session's program with line numbers"},
    [CMD_SHOW] = {":show", "NAME", "print the statements that define or export NAME"},
    [CMD_SHAPE] = {":shape", "NAME", "print the shape and dtype of NAME"},
    [CMD_EXPLAIN] = {":explain", "[NAME]", "explain the program (only the lines naming NAME)"},
    [CMD_RUN] = {":run", "", "run the program and print every export (sinks: see :set)"},
    [CMD_TIME] = {":time", "", "toggle check, compile (kernels compiled/cached) and run timings"},
    [CMD_SET] = {":set", "[KEY VALUE]",
                 "alone: list every setting and its value; else set (checked at once)\n"
                 "mode, strategy, projection, precision, device, threads,\n"
                 "seed, samples, max_iters, tol, sinks (on|off), cache (on|off),\n"
                 "max_memory (4G, none), parser (legacy|v2),\n"
                 "param (NAME=VALUE, for v2 `param` declarations),\n"
                 "weights (a manifest FILE.json, or none)"},
    [CMD_EMIT] = {":emit", "[NAME] STAGE", "print the generated llvm, llvm-raw or asm"},
    [CMD_DROP] = {":drop", "NAME",
                  "remove the statements that define or export NAME\n"
                  "(refused while another statement uses NAME)"},
    [CMD_UNDO] = {":undo", "", "take back the last statement, :load, :drop or :reset"},
    [CMD_RESET] = {":reset", "", "forget every statement (settings stay)"},
    [CMD_QUIT] = {":quit", "", "leave (Ctrl-D too)"},
};

ReplCommandId repl_command_find(const char *name, size_t n)
{
    bool colon = n > 0 && name[0] == ':';
    for (int i = 0; i < CMD_COUNT; i++) {
        const char *want = REPL_COMMANDS[i].name + !colon;
        if (strlen(want) == n && strncmp(want, name, n) == 0)
            return (ReplCommandId)i;
    }
    return CMD_COUNT;
}

bool repl_is_builtin(const char *s, size_t n)
{
    for (size_t i = 0; i < ir_builtin_count(); i++) {
        const IrBuiltinInfo *b = ir_builtin_info(i);
        if (!b->is_internal && strlen(b->name) == n && strncasecmp(b->name, s, n) == 0)
            return true;
    }
    return false;
}

/* Prints text, each line after the first indented by `indent` columns. */
static void print_indented(FILE *f, const char *text, int indent)
{
    for (bool first = true; *text; first = false) {
        size_t n = strcspn(text, "\n");
        fprintf(f, "%*s%.*s\n", first ? 0 : indent, "", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

/* The visible builtin names, wrapped to about 80 columns. */
static void print_builtin_names(FILE *f)
{
    int col = 0;
    for (size_t i = 0; i < ir_builtin_count(); i++) {
        const IrBuiltinInfo *b = ir_builtin_info(i);
        if (b->is_internal)
            continue;
        int w = (int)strlen(b->name);
        if (col && col + 1 + w > 78) {
            fputc('\n', f);
            col = 0;
        }
        col += fprintf(f, "%s%s", col ? " " : "  ", b->name);
    }
    fputc('\n', f);
}

void repl_print_help(FILE *f)
{
    fputs("Enter statements (equations, sources, sinks, export NAME) to add them to the\n"
          "session's program: `S[i] = ...` replaces S's definition, `S[i] += ...` adds a\n"
          "contribution; a statement that does not check or load is not kept. A bare\n"
          "tensor NAME prints its value; another expression (2 A[i], M[i,k] B[k,j])\n"
          "prints its value over its free axes (an index repeated in a product is\n"
          "summed) and is not kept. Errors name the line of a :loaded file or a piped\n"
          "script (<stdin>). Tab completes names, commands, :set keys and values and\n"
          "file names. Commands:\n",
          f);
    for (int i = 0; i < CMD_COUNT; i++) {
        char left[32];
        snprintf(left, sizeof left, "%s %s", REPL_COMMANDS[i].name, REPL_COMMANDS[i].args);
        fprintf(f, "  %-18s ", left);
        print_indented(f, REPL_COMMANDS[i].help, HELP_COLUMN);
    }
    fputs("Builtins (:help NAME for one):\n", f);
    print_builtin_names(f);
}

static void print_builtin(FILE *f, const IrBuiltinInfo *b)
{
    fprintf(f, "%s", b->signature);
    if (b->alias_of)
        fprintf(f, "   (another name for %s)", b->alias_of);
    fprintf(f, "\n  %s\n  result axes: %s\n  example:\n", b->summary, b->axes);
    for (const char *s = b->example; *s;) {
        size_t n = strcspn(s, "\n");
        fprintf(f, "    %.*s\n", (int)n, s);
        s += n + (s[n] == '\n');
    }
}

/* A command's usage; `:set` also lists the values each key takes. */
static void print_command(FILE *f, ReplCommandId id)
{
    const ReplCommandDoc *c = &REPL_COMMANDS[id];
    fprintf(f, "usage: %s%s%s\n  ", c->name, *c->args ? " " : "", c->args);
    print_indented(f, c->help, 2);
    if (id != CMD_SET)
        return;
    fputs("  keys and values:\n", f);
    for (size_t i = 0; i < REPL_N_SETTINGS; i++) {
        const ReplSetting *s = &REPL_SETTINGS[i];
        fprintf(f, "    %-11s %s\n", s->key, s->expects);
    }
}

/* The nearest builtin or command name to `word` (no ':'), or NULL. */
static const char *nearest_topic(const char *word)
{
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < ir_builtin_count() && n < 256; i++)
        if (!ir_builtin_info(i)->is_internal)
            names[n++] = ir_builtin_info(i)->name;
    for (int i = 0; i < CMD_COUNT && n < 256; i++)
        names[n++] = REPL_COMMANDS[i].name + 1;
    return sup_nearest(word, names, n);
}

bool repl_help_topic(FILE *f, const char *name, const char **near)
{
    *near = NULL;
    bool colon = name[0] == ':';
    const IrBuiltinInfo *b = colon ? NULL : ir_builtin_lookup(name);
    if (b && !b->is_internal) {
        print_builtin(f, b);
        return true;
    }
    for (int i = 0; i < CMD_COUNT; i++)
        if (strcasecmp(REPL_COMMANDS[i].name + !colon, name) == 0) {
            print_command(f, (ReplCommandId)i);
            return true;
        }
    *near = nearest_topic(name + colon);
    return false;
}
