/*
 * fuzz_parse.c: program text through the public API's parse and check
 * (fuse_program_from_file_opts: lexer, parser, IR, order, shapes, builtins), with
 * each parser (legacy, v2), then the error message (diagnostics with their
 * caret) or, for a program that checks, its explanations and dumps. The program
 * file sits in the scratch directory, so its sources resolve there. Nothing is
 * compiled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static fuse_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fuse_ctx_new(&ctx) != FUSE_OK) {
        fprintf(stderr, "fuzz_parse: no context\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Long programs are the resource limits' business (test_scale); small ones
     * keep the executions fast. */
    if (size > 64 * 1024)
        return 0;
    char *path = strdup(fuzz_write("in.fuse", data, size));
    if (!path)
        return 0;
    for (int syntax = 0; syntax < FUSE_SYNTAX_COUNT; syntax++) {
        fuse_program_options opts;
        fuse_program_options_init(&opts);
        opts.syntax = (fuse_syntax)syntax;
        fuse_program *prog = NULL;
        if (fuse_program_from_file_opts(ctx, path, &opts, &prog) != FUSE_OK) {
            if (strlen(fuse_ctx_error(ctx)) == 0)
                abort(); /* an error without a message */
            continue;
        }
        char *out = NULL;
        for (int json = 0; json < 2; json++) {
            if (fuse_program_explain(prog, json, &out) == FUSE_OK)
                fuse_free(out);
        }
        if (fuse_program_dump(prog, "ast", &out) == FUSE_OK)
            fuse_free(out);
        if (fuse_program_dump(prog, "ir", &out) == FUSE_OK)
            fuse_free(out);
        fuse_program_free(prog);
    }
    free(path);
    return 0;
}
