/*
 * test_parser.c: Check suite for the legacy parser (fe_parse), the AST dump and
 * fe_is_builtin: every statement and index form, literals, calls, boolean
 * references, sums, positioned errors with their exact text, a table of malformed
 * inputs, an out-of-memory loop, and the 30 conformance programs (read at test time
 * from $FUSE_CONFORMANCE_DIR, default ../shared/conformance/cases beside the repository).
 */
#define _POSIX_C_SOURCE 200809L

#include "frontend.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

typedef struct Parsed {
    Arena arena;
    Source src;
    DiagList dl;
    Ast ast;
    fuse_status st;
} Parsed;

static void parse_n(Parsed *p, const char *text, size_t len)
{
    arena_init(&p->arena);
    fe_diags_init(&p->dl, &p->arena);
    p->src = (Source){"t.fuse", text, len};
    p->st = fe_parse(&p->arena, &p->src, &p->dl, &p->ast);
}

static void parse(Parsed *p, const char *text)
{
    parse_n(p, text, strlen(text));
}

/* Parses text that must be valid; fails the test with the diagnostics if not. */
static void parse_ok(Parsed *p, const char *text)
{
    parse(p, text);
    if (p->st != FUSE_OK) {
        char *d = fe_diags_format(&p->dl);
        ck_abort_msg("'%s' failed to parse:\n%s", text, d ? d : "");
        free(d);
    }
}

static void parsed_free(Parsed *p)
{
    arena_free_all(&p->arena);
}

/* The first statement's RHS of a one-statement program. */
static const Expr *rhs_of(Parsed *p, const char *text)
{
    parse_ok(p, text);
    ck_assert_int_eq(p->ast.n_stmts, 1);
    ck_assert_ptr_nonnull(p->ast.stmts[0]->rhs);
    return p->ast.stmts[0]->rhs;
}

static void assert_dump(const char *text, const char *expected)
{
    Parsed p;
    parse_ok(&p, text);
    char *d = fe_ast_dump(&p.ast);
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strcmp(d, expected) == 0, "dump of '%s':\n%s\nexpected:\n%s", text, d,
                  expected);
    free(d);
    parsed_free(&p);
}

/* Expects FUSE_E_SYNTAX whose first diagnostic is msg (exactly) at line:col. */
static void assert_error(const char *text, int line, int col, const char *msg)
{
    Parsed p;
    parse(&p, text);
    ck_assert_msg(p.st == FUSE_E_SYNTAX, "'%s': status %d, expected a syntax error", text,
                  p.st);
    const Diag *d = p.dl.first;
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strcmp(d->msg, msg) == 0, "'%s': message\n  '%s'\nexpected\n  '%s'", text,
                  d->msg, msg);
    ck_assert_msg(d->span.line == line && d->span.col == col, "'%s': at %d:%d, expected %d:%d",
                  text, d->span.line, d->span.col, line, col);
    ck_assert_int_eq(d->code, FUSE_E_SYNTAX);
    parsed_free(&p);
}

/* ---- statements ---- */

START_TEST(test_stmt_equation_ops)
{
    Parsed p;
    parse_ok(&p, "Y[i,j] = A[i,k] B[k,j]\nY[i] += X[i]\nM[i] max= X[i,k]\nA[o] avg= P[b,o]");
    ck_assert_int_eq(p.ast.n_stmts, 4);
    AssignOp ops[] = {AOP_SET, AOP_ADD, AOP_MAX, AOP_AVG};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(p.ast.stmts[i]->kind, ST_EQUATION);
        ck_assert_int_eq(p.ast.stmts[i]->op, ops[i]);
    }
    const Stmt *s = p.ast.stmts[0];
    ck_assert_str_eq(s->name, "Y");
    ck_assert_int_eq(s->n_indices, 2);
    ck_assert_str_eq(s->indices[1].name, "j");
    ck_assert(!s->is_paren);
    ck_assert_int_eq(s->rhs->kind, EX_PRODUCT);
    ck_assert_int_eq(p.ast.stmts[2]->span.line, 3);
    parsed_free(&p);
}
END_TEST

START_TEST(test_stmt_whitespace_variants)
{
    const char *texts[] = {"Y[i]=X[i]", "Y[i]\t=\tX[i]", "Y [i] = X[ i ]", "  Y[i] = X[i]  "};
    for (int i = 0; i < 4; i++)
        assert_dump(texts[i], "equation Y[i] op== rhs:\n  tensor X[i]\n");
    assert_dump("Y[i]max=X[i]", "equation Y[i] op=max= rhs:\n  tensor X[i]\n");
    assert_dump("Ymax= X", "equation Ymax op== rhs:\n  tensor X\n");
    assert_dump("max=X\navg =2", "equation max op== rhs:\n  tensor X\n"
                                 "equation avg op== rhs:\n  number 2\n");
}
END_TEST

START_TEST(test_stmt_sources)
{
    Parsed p;
    parse_ok(&p, "A[i] = \"a.npy\"\nA[i] = ((\"b.npy\"))\nS(x, y) = \"s.tsv\"\n"
                 "H[*t] = \"h.npy\"\nE = \"\"");
    ck_assert_int_eq(p.ast.n_stmts, 5);
    const char *paths[] = {"a.npy", "b.npy", "s.tsv", "h.npy", ""};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(p.ast.stmts[i]->kind, ST_SOURCE);
        ck_assert_str_eq(p.ast.stmts[i]->path, paths[i]);
        ck_assert_ptr_null(p.ast.stmts[i]->rhs);
    }
    ck_assert(p.ast.stmts[2]->is_paren);
    ck_assert_int_eq(p.ast.stmts[3]->indices[0].kind, IX_STREAM);
    ck_assert_int_eq(p.ast.stmts[0]->path_span.col, 8);
    parsed_free(&p);
}
END_TEST

START_TEST(test_stmt_sinks_and_exports)
{
    Parsed p;
    parse_ok(&p, "\"runs/y.npy\" = Y[i,j]\n\"s.npy\" = X[i] + Z[i]\nexport Y\nexport Y\n"
                 "exportX = 1\nexport = 2\nexport[i] = 3");
    ck_assert_int_eq(p.ast.n_stmts, 7);
    ck_assert_int_eq(p.ast.stmts[0]->kind, ST_SINK);
    ck_assert_str_eq(p.ast.stmts[0]->path, "runs/y.npy");
    ck_assert_int_eq(p.ast.stmts[0]->rhs->kind, EX_TENSOR);
    ck_assert_int_eq(p.ast.stmts[1]->rhs->kind, EX_SUM);
    ck_assert_int_eq(p.ast.stmts[2]->kind, ST_EXPORT);
    ck_assert_str_eq(p.ast.stmts[2]->name, "Y");
    ck_assert_int_eq(p.ast.stmts[3]->kind, ST_EXPORT);
    ck_assert_int_eq(p.ast.stmts[4]->kind, ST_EQUATION);
    ck_assert_str_eq(p.ast.stmts[4]->name, "exportX"); /* a whole word only */
    ck_assert_str_eq(p.ast.stmts[5]->name, "export");
    ck_assert_int_eq(p.ast.stmts[6]->n_indices, 1);
    parsed_free(&p);
}
END_TEST

START_TEST(test_stmt_text_and_span)
{
    Parsed p;
    parse_ok(&p, "# c\n  Y[i] = X[i]   # trailing\nC = const([1,\n   2])  # x\n");
    ck_assert_int_eq(p.ast.n_stmts, 2);
    ck_assert_str_eq(p.ast.stmts[0]->text, "Y[i] = X[i]");
    ck_assert_int_eq(p.ast.stmts[0]->span.line, 2);
    ck_assert_int_eq(p.ast.stmts[0]->span.col, 3);
    ck_assert_str_eq(p.ast.stmts[1]->text, "C = const([1,\n   2])");
    ck_assert_int_eq(p.ast.stmts[1]->span.line, 3);
    parsed_free(&p);
}
END_TEST

START_TEST(test_stmt_lhs_forms)
{
    Parsed p;
    parse_ok(&p, "Y(x,z) = S(x,y) P(y,z)\nY() = X()\nZ[] = X[]\nT[*t+1] = X[*t]\n"
                 "true = X\nW[i, 0:2] = X[i, 0:2]\nA[p.] = softmax(X[p])");
    ck_assert(p.ast.stmts[0]->is_paren);
    ck_assert_int_eq(p.ast.stmts[0]->n_indices, 2);
    ck_assert(!p.ast.stmts[1]->is_paren); /* empty parentheses: a bare scalar */
    ck_assert_int_eq(p.ast.stmts[1]->n_indices, 0);
    ck_assert_int_eq(p.ast.stmts[1]->rhs->kind, EX_TENSOR);
    ck_assert_int_eq(p.ast.stmts[1]->rhs->n_indices, 0);
    ck_assert_int_eq(p.ast.stmts[2]->n_indices, 0);
    ck_assert_int_eq(p.ast.stmts[3]->indices[0].offset, 1);
    ck_assert_str_eq(p.ast.stmts[4]->name, "true");
    ck_assert_int_eq(p.ast.stmts[5]->indices[1].kind, IX_SLICE);
    ck_assert(p.ast.stmts[6]->indices[0].is_dotted);
    parsed_free(&p);
}
END_TEST

/* ---- index forms ---- */

START_TEST(test_index_axes_primes_offsets)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y[i] = X[p', p'', p'q, t+1, t-1, x+01, q., t+1.]");
    ck_assert_int_eq(e->kind, EX_TENSOR);
    ck_assert_int_eq(e->n_indices, 8);
    const char *names[] = {"p'", "p''", "p'q", "t", "t", "x", "q", "t"};
    int64_t offsets[] = {0, 0, 0, 1, -1, 1, 0, 1};
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(e->indices[i].kind, IX_AXIS);
        ck_assert_str_eq(e->indices[i].name, names[i]);
        ck_assert_int_eq(e->indices[i].offset, offsets[i]);
        ck_assert(e->indices[i].is_dotted == (i >= 6));
    }
    ck_assert_int_eq(e->indices[3].span.col, 24);
    ck_assert_int_eq(e->indices[3].span.len, 3);
    parsed_free(&p);
}
END_TEST

/* SPEC §3.2: only a name glued to '(' is a call; with whitespace it is a
 * bare scalar times a group. Whitespace before '[' does not matter. */
START_TEST(test_name_space_paren_is_product)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y[i] = G (1 + X[i])");
    ck_assert_int_eq(e->kind, EX_PRODUCT);
    ck_assert_int_eq(e->n_items, 2);
    ck_assert_int_eq(e->items[0]->kind, EX_TENSOR);
    ck_assert_str_eq(e->items[0]->name, "G");
    ck_assert_int_eq(e->items[0]->n_indices, 0);
    ck_assert_int_eq(e->items[1]->kind, EX_GROUP);
    parsed_free(&p);
    e = rhs_of(&p, "Y[i] = relu(X[i])");
    ck_assert_int_eq(e->kind, EX_CALL);
    parsed_free(&p);
    e = rhs_of(&p, "Y[i] = X [i]");
    ck_assert_int_eq(e->kind, EX_TENSOR);
    ck_assert_int_eq(e->n_indices, 1);
    parsed_free(&p);
}
END_TEST

START_TEST(test_index_integers)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y[d] = X[0, d, -1, +2, 007]");
    int64_t pos[] = {0, 0, -1, 2, 7};
    for (int i = 0; i < 5; i++) {
        if (i == 1) {
            ck_assert_int_eq(e->indices[i].kind, IX_AXIS);
            continue;
        }
        ck_assert_int_eq(e->indices[i].kind, IX_INT);
        ck_assert_int_eq(e->indices[i].offset, pos[i]);
    }
    parsed_free(&p);
}
END_TEST

typedef struct SliceCase {
    const char *item, *name;
    bool has_start, has_stop, has_step;
    int64_t start, stop, step;
} SliceCase;

START_TEST(test_index_slices)
{
    static const SliceCase cases[] = {
        {"0:3", "0:3", true, true, false, 0, 3, 0},
        {"::2", "::2", false, false, true, 0, 0, 2},
        {"-1:", "-1:", true, false, false, -1, 0, 0},
        {":", ":", false, false, false, 0, 0, 0},
        {"0 : 3", "0:3", true, true, false, 0, 3, 0},
        {"+1:3", "+1:3", true, true, false, 1, 3, 0},
        {"1:10:-2", "1:10:-2", true, true, true, 1, 10, -2},
        {":3", ":3", false, true, false, 0, 3, 0},
        {"::", "::", false, false, false, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "Y = X[%s]", cases[i].item);
        Parsed p;
        const Expr *e = rhs_of(&p, text);
        const Index *ix = &e->indices[0];
        ck_assert_int_eq(ix->kind, IX_SLICE);
        ck_assert_str_eq(ix->name, cases[i].name);
        ck_assert(ix->has_start == cases[i].has_start);
        ck_assert(ix->has_stop == cases[i].has_stop);
        ck_assert(ix->has_step == cases[i].has_step);
        if (ix->has_start)
            ck_assert_int_eq(ix->start, cases[i].start);
        if (ix->has_stop)
            ck_assert_int_eq(ix->stop, cases[i].stop);
        if (ix->has_step)
            ck_assert_int_eq(ix->step, cases[i].step);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(test_index_streaming_and_dotted)
{
    Parsed p;
    parse_ok(&p, "Y[*t+1.] = X[*t, *t-1, *t'+2, *t+0, 0:3., :.]");
    const Stmt *s = p.ast.stmts[0];
    ck_assert_int_eq(s->indices[0].kind, IX_STREAM);
    ck_assert_str_eq(s->indices[0].name, "t");
    ck_assert_int_eq(s->indices[0].offset, 1);
    ck_assert(s->indices[0].is_dotted);
    const Expr *e = s->rhs;
    int64_t off[] = {0, -1, 2, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(e->indices[i].kind, IX_STREAM);
        ck_assert_int_eq(e->indices[i].offset, off[i]);
    }
    ck_assert_str_eq(e->indices[2].name, "t'");
    ck_assert_str_eq(e->indices[4].name, "0:3");
    ck_assert(e->indices[4].is_dotted);
    ck_assert_str_eq(e->indices[5].name, ":");
    ck_assert(e->indices[5].is_dotted);
    parsed_free(&p);
}
END_TEST

START_TEST(test_index_name_glued_to_bracket_is_one_unit)
{
    /* R1: NAME [ ... ] is always an index list, never "bare tensor times a list".
     * SPEC §3.2 departs from R1 for '(': with whitespace it is a scalar times a group. */
    assert_dump("Y = X [i]", "equation Y op== rhs:\n  tensor X[i]\n");
    assert_dump("Y = A X[]", "equation Y op== rhs:\n  product\n    tensor A\n    tensor X\n");
    assert_dump("Y = X [1]", "equation Y op== rhs:\n  tensor X[1]\n");
    assert_dump("Y = A\t(i)", "equation Y op== rhs:\n  product\n    tensor A\n    group\n"
                               "      tensor i\n");
    assert_dump("Y = A(i)", "equation Y op== rhs:\n  tensor A(i)\n");
    assert_dump("Y = 2 [1, 2]",
                "equation Y op== rhs:\n  product\n    number 2\n    list\n      number 1\n"
                "      number 2\n");
}
END_TEST

/* ---- literals ---- */

START_TEST(test_literal_numbers)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y = const(3, -3, 0.5, .5, 5., 1e-4, -1.5e3, +5, 007, 1e400, "
                               "-9223372036854775807)");
    ck_assert_int_eq(e->kind, EX_CALL);
    ck_assert_int_eq(e->n_items, 11);
    ck_assert(e->items[0]->is_int);
    ck_assert_int_eq(e->items[0]->ival, 3);
    ck_assert_int_eq(e->items[1]->ival, -3);
    ck_assert_double_eq(e->items[1]->num, -3.0);
    ck_assert(!e->items[2]->is_int);
    ck_assert_double_eq(e->items[2]->num, 0.5);
    ck_assert_double_eq(e->items[3]->num, 0.5);
    ck_assert(!e->items[4]->is_int);
    ck_assert_double_eq(e->items[4]->num, 5.0);
    ck_assert_double_eq_tol(e->items[5]->num, 1e-4, 1e-18);
    ck_assert_double_eq(e->items[6]->num, -1500.0);
    ck_assert_int_eq(e->items[7]->ival, 5);
    ck_assert_int_eq(e->items[8]->ival, 7);
    ck_assert(e->items[9]->num > 1e308);
    ck_assert_int_eq(e->items[10]->ival, -INT64_MAX);
    ck_assert_int_eq(e->items[1]->span.col, 14);
    ck_assert_int_eq(e->items[1]->span.len, 2);
    parsed_free(&p);
}
END_TEST

START_TEST(test_literal_strings_bools_none)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y = const(\"a\\tb\", TRUE, false, None, nOnE, \"\\x41\")");
    ck_assert_int_eq(e->items[0]->kind, EX_STRING);
    ck_assert_str_eq(e->items[0]->str, "a\tb");
    ck_assert_int_eq(e->items[1]->kind, EX_BOOL);
    ck_assert_double_eq(e->items[1]->num, 1);
    ck_assert_int_eq(e->items[2]->kind, EX_BOOL);
    ck_assert_double_eq(e->items[2]->num, 0);
    ck_assert_int_eq(e->items[3]->kind, EX_NONE);
    ck_assert_int_eq(e->items[4]->kind, EX_NONE);
    ck_assert_str_eq(e->items[5]->str, "A");
    parsed_free(&p);
    assert_dump("Y = true", "equation Y op== rhs:\n  bool true\n");
    assert_dump("Y = True[i]", "equation Y op== rhs:\n  tensor True[i]\n");
}
END_TEST

START_TEST(test_literal_lists_and_dicts)
{
    assert_dump("Y = const([[1, 2], [3, -4.5]])",
                "equation Y op== rhs:\n  call const\n    list\n      list\n        number 1\n"
                "        number 2\n      list\n        number 3\n        number -4.5\n");
    assert_dump("P = const({\"bias\": [0, 1,], \"n\": {\"a\": none},},)",
                "equation P op== rhs:\n  call const\n    dict\n      string \"bias\"\n"
                "      list\n        number 0\n        number 1\n      string \"n\"\n"
                "      dict\n        string \"a\"\n        none\n");
    assert_dump("Y = const([TRUE, False, NONE, 1, [], {}])",
                "equation Y op== rhs:\n  call const\n    list\n      bool true\n"
                "      bool false\n      none\n      number 1\n      list\n      dict\n");
}
END_TEST

START_TEST(test_literal_newlines_inside_brackets)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y = const([\n  [1, 2],  # row 0\n\n  [3, 4]\n])");
    ck_assert_int_eq(e->items[0]->kind, EX_LIST);
    ck_assert_int_eq(e->items[0]->n_items, 2);
    ck_assert_int_eq(e->items[0]->items[1]->items[1]->ival, 4);
    parsed_free(&p);
    e = rhs_of(&p, "Z = const({\n \"a\": 1\n})");
    ck_assert_int_eq(e->items[0]->kind, EX_DICT);
    ck_assert_int_eq(e->items[0]->n_items, 2);
    parsed_free(&p);
    parse_ok(&p, "Y[i,\n  j] = A[i,\n j]");
    ck_assert_int_eq(p.ast.stmts[0]->n_indices, 2);
    parsed_free(&p);
}
END_TEST

/* ---- calls, index functions, boolean references ---- */

START_TEST(test_call_kwargs)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y = softmax(A[i], axis=j, s=\"j\", n=0, r=R[i], t=true, "
                               "e=1e-3, p=+5, max=2, k=X Y, z=A - B)");
    ck_assert_int_eq(e->kind, EX_CALL);
    ck_assert_str_eq(e->name, "softmax");
    ck_assert_int_eq(e->n_items, 1);
    ck_assert_int_eq(e->n_kwargs, 10);
    const Kwarg *k = e->kwargs;
    ck_assert_str_eq(k[0].name, "axis");
    ck_assert_int_eq(k[0].value->kind, EX_TENSOR);
    ck_assert_str_eq(k[0].value->name, "j");
    ck_assert_int_eq(k[0].value->n_indices, 0);
    ck_assert_int_eq(k[1].value->kind, EX_STRING);
    ck_assert_int_eq(k[2].value->kind, EX_NUMBER);
    ck_assert_int_eq(k[3].value->n_indices, 1);
    ck_assert_int_eq(k[4].value->kind, EX_BOOL);
    ck_assert_int_eq(k[6].value->ival, 5);
    ck_assert_str_eq(k[7].name, "max");
    ck_assert_int_eq(k[8].value->kind, EX_PRODUCT);
    ck_assert_int_eq(k[9].value->kind, EX_SUM);
    ck_assert_int_eq(k[0].span.col, 19);
    parsed_free(&p);
}
END_TEST

START_TEST(test_call_forms)
{
    assert_dump("Y = SIG(X, T=2)", "equation Y op== rhs:\n  call SIG\n    tensor X\n"
                                   "    kwarg T:\n      number 2\n");
    assert_dump("Y = relu()", "equation Y op== rhs:\n  call relu\n");
    assert_dump("Y = concat(axis=1, A[i], B[i],)",
                "equation Y op== rhs:\n  call concat\n    tensor A[i]\n    tensor B[i]\n"
                "    kwarg axis:\n      number 1\n");
    assert_dump("Y = relu(A[i] + B[i])", "equation Y op== rhs:\n  call relu\n    sum\n"
                                         "      + tensor A[i]\n      + tensor B[i]\n");
    assert_dump("Y = step(\n  A[i],\n  B[i],\n)",
                "equation Y op== rhs:\n  call step\n    tensor A[i]\n    tensor B[i]\n");
    assert_dump("Y = f(\n  i,\n  j\n)", "equation Y op== rhs:\n  tensor f(i,j)\n");
}
END_TEST

START_TEST(test_call_vs_boolean_ref_vs_indexfn)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Confidence = sig(GoalScore, Temperature)");
    ck_assert_int_eq(e->kind, EX_CALL);
    ck_assert_int_eq(e->n_items, 2);
    ck_assert_int_eq(e->items[0]->kind, EX_TENSOR);
    ck_assert_str_eq(e->items[1]->name, "Temperature");
    parsed_free(&p);
    e = rhs_of(&p, "Y = Foo(x, y)");
    ck_assert_int_eq(e->kind, EX_TENSOR);
    ck_assert(e->is_paren);
    ck_assert_int_eq(e->n_indices, 2);
    parsed_free(&p);
    e = rhs_of(&p, "Y = even(i)");
    ck_assert_int_eq(e->kind, EX_INDEXFN);
    ck_assert_str_eq(e->name, "even");
    ck_assert_str_eq(e->axis_name, "i");
    parsed_free(&p);
    e = rhs_of(&p, "Y = foo()");
    ck_assert_int_eq(e->kind, EX_TENSOR);
    ck_assert(!e->is_paren);
    ck_assert_int_eq(e->n_indices, 0);
    parsed_free(&p);
    e = rhs_of(&p, "Y = A relu(X[i]) B(i)");
    ck_assert_int_eq(e->kind, EX_PRODUCT);
    ck_assert_int_eq(e->items[1]->kind, EX_CALL);
    ck_assert(e->items[2]->is_paren);
    parsed_free(&p);
}
END_TEST

START_TEST(test_indexfn_forms)
{
    const char *forms[] = {"Even(i)", "EVEN(i)", "even(axis=i)", "even(axis=\"i\")",
                           "even(\"i\")", "even( i )"};
    for (int i = 0; i < 6; i++) {
        char text[64];
        snprintf(text, sizeof text, "Y[i] = %s", forms[i]);
        assert_dump(text, "equation Y[i] op== rhs:\n  indexfn even(i)\n");
    }
    assert_dump("Y[d] = Odd(d) + even[d]",
                "equation Y[d] op== rhs:\n  sum\n    + indexfn odd(d)\n    + tensor even[d]\n");
    assert_dump("Y = case(Even(d), sin(A[p,d]), Odd(d), cos(A[p,d-1]))",
                "equation Y op== rhs:\n  call case\n    indexfn even(d)\n    call sin\n"
                "      tensor A[p,d]\n    indexfn odd(d)\n    call cos\n      tensor A[p,d-1]\n");
}
END_TEST

/* ---- sums, products, minus ---- */

START_TEST(test_sum_and_minus)
{
    assert_dump("Y[i] = X[i] -1", "equation Y[i] op== rhs:\n  sum\n    + tensor X[i]\n"
                                  "    - number 1\n");
    assert_dump("Y[i] = X[i] +1", "equation Y[i] op== rhs:\n  sum\n    + tensor X[i]\n"
                                  "    + number 1\n");
    assert_dump("Y = A - B + C", "equation Y op== rhs:\n  sum\n    + tensor A\n"
                                 "    - tensor B\n    + tensor C\n");
    assert_dump("Y = -X[i]", "equation Y op== rhs:\n  neg\n    tensor X[i]\n");
    assert_dump("Y = -3", "equation Y op== rhs:\n  number -3\n");
    assert_dump("Y = - 3", "equation Y op== rhs:\n  neg\n    number 3\n");
    assert_dump("Y = A - -1", "equation Y op== rhs:\n  sum\n    + tensor A\n    - number -1\n");
    assert_dump("Y = -2X", "equation Y op== rhs:\n  product\n    number -2\n    tensor X\n");
    assert_dump("Y = 2X", "equation Y op== rhs:\n  product\n    number 2\n    tensor X\n");
    assert_dump("Y = A -(B)", "equation Y op== rhs:\n  sum\n    + tensor A\n    - group\n"
                              "      tensor B\n");
}
END_TEST

START_TEST(test_grouped_sums_and_products)
{
    assert_dump("S[p,q] = (1 - C[p,q]) N",
                "equation S[p,q] op== rhs:\n  product\n    group\n      sum\n"
                "        + number 1\n        - tensor C[p,q]\n    tensor N\n");
    assert_dump("Y[i] = (A[i] B[i]) C[i]",
                "equation Y[i] op== rhs:\n  product\n    group\n      product\n"
                "        tensor A[i]\n        tensor B[i]\n    tensor C[i]\n");
    assert_dump("Y[i] = ((A[i]))", "equation Y[i] op== rhs:\n  group\n    group\n"
                                   "      tensor A[i]\n");
    Parsed p;
    const Expr *e = rhs_of(&p, "Y[i] = A[i] B[i] + C[i] D[i] - E[i]");
    ck_assert_int_eq(e->kind, EX_SUM);
    ck_assert_int_eq(e->n_items, 3);
    ck_assert_int_eq(e->signs[0], 1);
    ck_assert_int_eq(e->signs[1], 1);
    ck_assert_int_eq(e->signs[2], -1);
    ck_assert_int_eq(e->items[1]->kind, EX_PRODUCT);
    ck_assert_int_eq(e->items[1]->span.col, 20);
    parsed_free(&p);
}
END_TEST

START_TEST(test_newline_inside_call_is_blank)
{
    Parsed p;
    const Expr *e = rhs_of(&p, "Y = relu(A[i]\n   B[i])  # product across lines");
    ck_assert_int_eq(e->items[0]->kind, EX_PRODUCT);
    parsed_free(&p);
    parse_ok(&p, "C = step(\n   A[i],     # comment ok\n   k=1)\nD = 1");
    ck_assert_int_eq(p.ast.n_stmts, 2);
    ck_assert_int_eq(p.ast.stmts[0]->rhs->n_kwargs, 1);
    parsed_free(&p);
}
END_TEST

START_TEST(test_empty_and_comment_only)
{
    const char *texts[] = {"", "\n\n", "# only a comment", "# a\n\n   # b\n", "\xef\xbb\xbf"};
    for (int i = 0; i < 5; i++) {
        Parsed p;
        parse_ok(&p, texts[i]);
        ck_assert_int_eq(p.ast.n_stmts, 0);
        ck_assert_int_eq(p.dl.n_errors, 0);
        parsed_free(&p);
    }
    Parsed p;
    parse_ok(&p, "Y[i] = X[i]\r\n\r\nZ[i] = Y[i]");
    ck_assert_int_eq(p.ast.n_stmts, 2);
    ck_assert_str_eq(p.ast.stmts[0]->text, "Y[i] = X[i]");
    parsed_free(&p);
}
END_TEST

/* ---- errors with exact text and position ---- */

START_TEST(test_errors_exact)
{
    assert_error("Y[i] = X[i] @ Z[i]", 1, 13,
                 "unexpected '@': the legacy syntax has only '+', '-' and juxtaposition");
    assert_error("Y[i] = X[i] * Z[i]", 1, 13,
                 "unexpected '*': a product is written by juxtaposition, as in A[i] B[i]");
    assert_error("Y[t] = X[t + 1]", 1, 12,
                 "spaces are not allowed inside an index offset (write t+1, not t + 1)");
    assert_error("Y[i,] = X[i]", 1, 5, "expected an index after ',', found ']'");
    /* an unclosed bracket is reported where it was opened (a note says where the
     * parser noticed: test_diag.c) */
    assert_error("Y[i = X[i]", 1, 2, "'[' is never closed");
    assert_error("A = 1\nY[i, j = X[i]\n", 2, 2, "'[' is never closed");
    assert_error("Y[i]] = X[i]", 1, 5, "unmatched ']'");
    assert_error("Y = relu(X[i]))", 1, 15, "unmatched ')'");
    assert_error("Y[i] max = X[i]", 1, 6,
                 "expected '=', '+=', 'max=' or 'avg=' after the left-hand side, found 'max'");
    assert_error("Y[i] == X[i]", 1, 7, "expected an expression after '=', found '='");
    assert_error("Y[i] -= X[i]", 1, 6,
                 "expected '=', '+=', 'max=' or 'avg=' after the left-hand side, found '-'");
    assert_error("= X[i]", 1, 1, "expected a statement (NAME[...] = expression, \"path\" = "
                                 "expression or export NAME), found '='");
    assert_error("export X Y", 1, 10, "expected the end of the line after 'export NAME', "
                                      "found 'Y'");
    assert_error("export \"X\"", 1, 8, "expected a tensor name after 'export', found '\"X\"'");
    assert_error("Export X", 1, 8,
                 "expected '=', '+=', 'max=' or 'avg=' after the left-hand side, found 'X'");
    assert_error("Y[i] = \"unterminated", 1, 8,
                 "unterminated string (a string must end on its line)");
    assert_error("Y[i] = ", 1, 8, "expected an expression after '=', found end of input");
    assert_error("Y = relu(X[i]", 1, 9, "'(' is never closed");
    assert_error("Y = (A[i]\n", 1, 5, "'(' is never closed");
    assert_error("Y = A +", 1, 8, "expected an expression after '+', found end of input");
    assert_error("Y = A - ;", 1, 9, "';' is not a statement separator; put each statement on "
                                    "its own line");
    assert_error("A[i] = B[i]; C[i] = D[i]", 1, 12,
                 "';' is not a statement separator; put each statement on its own line");
    assert_error("Y = f\n(A[i])", 2, 1, "expected a statement (NAME[...] = expression, "
                                        "\"path\" = expression or export NAME), found '('");
    assert_error("\"a.npy\" += X", 1, 9,
                 "a sink is written \"path\" = expression; '+=' is not allowed");
    assert_error("A[i] max= \"a.npy\"", 1, 6, "a file source is read with '=' only, not 'max='");
    assert_error("Y[i] = X[é]", 1, 10,
                 "unexpected character 'é'; only ASCII is allowed outside strings and comments");
}
END_TEST

START_TEST(test_errors_index_items)
{
    assert_error("Y[t] = X[t+x]", 1, 10,
                 "invalid index 't+x': an offset must be an integer, as in t+1 or t-1");
    assert_error("Y[*] = X[i]", 1, 3, "invalid index '*': a streaming index is *t, *t+1 or *t-1");
    assert_error("Y = X[*0]", 1, 7, "invalid index '*0': a streaming index is *t, *t+1 or *t-1");
    assert_error("Y[i] = X[i, a:b]", 1, 13, "slice bounds must be integers: a");
    assert_error("Y[i] = X[i, 0:b]", 1, 13, "slice bounds must be integers: b");
    assert_error("Y[i] = X[1.5:3]", 1, 10, "slice bounds must be integers: 1.5");
    assert_error("Y[i] = X[1.5]", 1, 10, "invalid index '1.5': an index must be an integer");
    assert_error("Y[i] = X[:::]", 1, 10,
                 "invalid index ':::': a slice is start:stop or start:stop:step");
    assert_error("Y[i..] = X[i]", 1, 3, "invalid index 'i..'");
    assert_error("Y[a.b] = X[i]", 1, 3, "invalid index 'a.b'");
    assert_error("Y = X[::0]", 1, 7, "slice step cannot be zero");
    /* more indices than a tensor may have is an error, not a crash */
    assert_error("Zz[a,b,c,d,e,f,g,h,k] = X[a]", 1, 3,
                 "a tensor has at most 8 axes; this one is indexed with 9");
    assert_error("Y[i] = X[a,b,c,d,e,f,g,h,k]", 1, 9,
                 "a tensor has at most 8 axes; this one is indexed with 9");
    assert_error("Y[,i] = X[i]", 1, 3, "expected an index (an axis such as i, an integer, a "
                                       "slice such as 0:3, or a streaming index such as *t), "
                                       "found ','");
    assert_error("X'[i] = Y[i]", 1, 2, "unexpected \"'\" (a prime belongs to an axis name "
                                       "inside [...]; strings use double quotes)");
}
END_TEST

START_TEST(test_errors_lhs_index)
{
    assert_error("Weights2[1,h] = X[h]", 1, 10,
                 "integer index not allowed on the left-hand side");
    assert_error("Y[-1] = X", 1, 3, "integer index not allowed on the left-hand side");
    assert_error("Y[t+1] = X[t]", 1, 3,
                 "offset index 't+1' not allowed on the left-hand side (only a streaming "
                 "index such as *t+1 may be shifted)");
    assert_error("even(i) = X[i]", 1, 1,
                 "the left-hand side must be a tensor, not the index function 'even'");
    /* the earliest error of the statement wins */
    assert_error("Y[0] = X[i] @", 1, 3, "integer index not allowed on the left-hand side");
}
END_TEST

START_TEST(test_errors_calls_and_indexfns)
{
    assert_error("W = Foo(A[i])", 1, 5, "unknown function 'Foo'");
    assert_error("W = Foo(x, k=1)", 1, 5, "unknown function 'Foo'");
    assert_error("W = relu(Foo(A[i]))", 1, 10, "unknown function 'Foo'");
    assert_error("Y = sum(A[i], k=1, k=2)", 1, 20, "duplicate keyword argument 'k'");
    assert_error("Y = relu(,)", 1, 10, "expected an argument, found ','");
    assert_error("Y = relu(A[i] B[i] C[i]", 1, 9, "'(' is never closed");
    assert_error("Y = relu(k=)", 1, 12, "expected an expression after '=', found ')'");
    assert_error("Y[i] = odd(i, j)", 1, 12, "odd requires exactly one axis");
    assert_error("Y[i] = even(i+1)", 1, 13, "even axis does not support offsets");
    assert_error("Y[i] = even(i.)", 1, 13, "even axis cannot include dotted indices");
    assert_error("Y[i] = Even(*i)", 1, 13, "Even axis cannot be streaming");
    assert_error("Y[i] = even(0:2)", 1, 13, "even axis does not support slices");
    assert_error("Y[i] = even(3)", 1, 13, "even axis must be a symbol");
    assert_error("Y[i] = even(i, axis=i)", 1, 8, "even axis specified twice");
    assert_error("Y[i] = even(axis=i, foo=1, bar=2)", 1, 8,
                 "Unexpected keyword arguments for even: bar, foo");
    assert_error("Y[i] = even(X[i])", 1, 8, "even axis must be a scalar symbol");
    assert_error("Y[i] = even(axis=2.5)", 1, 8, "even axis must be a symbol");
    assert_error("Y[i] = EVEN(\n)", 1, 8, "EVEN requires an axis argument");
    assert_error("Y[i] = even(\"i\", \"j\")", 1, 8, "even accepts at most one positional "
                                                  "argument");
}
END_TEST

START_TEST(test_errors_literals)
{
    assert_error("Y = const([a])", 1, 12, "expected a literal (a number, string, true, false, "
                                          "none, list or dict), found 'a'");
    assert_error("Y = const([1 2])", 1, 14,
                 "expected ',' or ']' to close '[' opened at line 1, found '2'");
    assert_error("Y = const({\"a\" 1})", 1, 16, "expected ':' after the dict key, found '1'");
    assert_error("Y = const([1,\n 2,\n 3\n", 1, 11, "'[' is never closed");
    assert_error("Y = g(\"\\x4\")", 1, 8, "invalid escape in string literal");
    assert_error("Z = 9223372036854775808", 1, 5,
                 "integer literal out of range (the largest is 9223372036854775807)");
}
END_TEST

START_TEST(test_errors_deep_nesting)
{
    static char text[4096];
    const char *heads[] = {"(", "relu(", "Foo(", "const(["};
    for (int k = 0; k < 4; k++) {
        size_t n = (size_t)snprintf(text, sizeof text, "Y = ");
        for (int i = 0; i < 300; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, "%s", k == 3 && i ? "[" : heads[k]);
        snprintf(text + n, sizeof text - n, "1");
        Parsed p;
        parse(&p, text);
        ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
        ck_assert_int_eq(p.dl.n_errors, 1);
        ck_assert_str_eq(p.dl.first->msg, "expression nested too deeply (more than 256 levels)");
        parsed_free(&p);
    }
}
END_TEST

/* "HEAD" then n copies of UNIT joined by SEP, then TAIL and a newline, malloc'd. */
static char *repeat_line(const char *head, const char *unit, const char *sep, int n,
                         const char *tail)
{
    size_t len = strlen(head) + (size_t)n * (strlen(unit) + strlen(sep)) + strlen(tail) + 2;
    char *text = malloc(len), *p = text;
    ck_assert_ptr_nonnull(text);
    p += sprintf(p, "%s", head);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i ? sep : "", unit);
    sprintf(p, "%s\n", tail);
    return text;
}

/* The column where the k-th (0-based) unit of repeat_line starts. */
static int unit_col(const char *head, const char *unit, const char *sep, int k)
{
    return (int)(strlen(head) + (size_t)k * (strlen(unit) + strlen(sep))) + 1;
}

/* Sums and products are counted as they are parsed: the first term or factor past
 * the IR's limits is the error, and one under them parses. */
START_TEST(test_errors_term_and_factor_limits)
{
    static const struct {
        const char *unit, *sep;
        int ok, bad; /* the most that parse, and a count that fails */
        int at;      /* the unit the error points at */
        const char *msg;
    } cases[] = {
        {"X[i]", " + ", FE_MAX_TERMS, 5000, FE_MAX_TERMS,
         "expression expands to more than 4096 terms"},
        {"1", " - ", FE_MAX_TERMS, 4097, FE_MAX_TERMS, "expression expands to more than 4096 terms"},
        {"X[i]", " ", FE_MAX_FACTORS, 100, FE_MAX_FACTORS,
         "an equation term has more than 64 factors (the limit)"},
        {"sig(X[i])", " ", FE_MAX_FACTORS, 65, FE_MAX_FACTORS,
         "an equation term has more than 64 factors (the limit)"},
        /* 2^12 terms expand from 12 groups; the 13th doubles past the limit */
        {"(X[i] + X[i])", " ", 12, 40, 12, "expression expands to more than 4096 terms"},
        {"i", ", ", 8, 70, -1, "a tensor has at most 8 axes; this one is indexed with more "
                               "than 64"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bool is_index = strcmp(cases[c].unit, "i") == 0;
        const char *head = is_index ? "Y[i] = X[" : "Y[i] = ";
        const char *tail = is_index ? "]" : "";
        char *text = repeat_line(head, cases[c].unit, cases[c].sep, cases[c].ok, tail);
        Parsed p;
        parse_ok(&p, text);
        parsed_free(&p);
        free(text);
        text = repeat_line(head, cases[c].unit, cases[c].sep, cases[c].bad, tail);
        assert_error(text, 1, cases[c].at < 0 ? 9 : unit_col(head, cases[c].unit,
                                                            cases[c].sep, cases[c].at),
                     cases[c].msg);
        free(text);
    }
}
END_TEST

/* A one-line program of megabytes far over the limits is refused after a few
 * thousand tokens, the rest of its line skipped in constant memory: the parse adds
 * little to the process's peak (before: about 1.8 GB for 7 MB), and the
 * statement after it still parses. */
START_TEST(test_errors_long_line_in_bounded_memory)
{
    const char *units[] = {"X[i]", "X[i]", "1"};
    const char *seps[] = {" + ", " ", " + "};
    for (int k = 0; k < 3; k++) {
        char *line = repeat_line("Y[i] = ", units[k], seps[k], 1000000, "");
        size_t n = strlen(line);
        char *text = malloc(n + 32);
        ck_assert_ptr_nonnull(text);
        memcpy(text, line, n);
        strcpy(text + n, "Z[i] = X[i] X[i]\n");
        free(line);
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        Parsed p;
        parse(&p, text);
        getrusage(RUSAGE_SELF, &after);
        ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
        ck_assert_int_eq(p.dl.n_errors, 1);
        ck_assert_int_eq(p.ast.n_stmts, 1); /* Z */
        ck_assert_str_eq(p.ast.stmts[0]->name, "Z");
        long grown_kb = after.ru_maxrss - before.ru_maxrss;
        ck_assert_msg(grown_kb < 64 * 1024, "parsing %zu bytes grew the peak by %ld KiB", n,
                      grown_kb);
        parsed_free(&p);
        free(text);
    }
}
END_TEST

/* A diagnostic on a long line quotes a window of about 100 characters around the
 * caret, with "..." where the line is cut, and the caret under the right one. */
START_TEST(test_errors_long_line_excerpt)
{
    char *text = repeat_line("Y[i] = ", "X[i]", " + ", 5000, "");
    Parsed p;
    parse(&p, text);
    ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
    char *d = fe_diag_format(p.dl.first);
    ck_assert_ptr_nonnull(d);
    ck_assert_msg(strlen(d) < 400, "%zu bytes:\n%s", strlen(d), d);
    char *quote = strchr(d, '\n') + 1, *caret_line = strchr(quote, '\n') + 1;
    ck_assert_msg(strncmp(quote, "  ...", 5) == 0, "%s", d);
    ck_assert_msg(strstr(quote, "...\n") == strchr(quote, '\n') - 3, "%s", d);
    int caret = (int)(strchr(caret_line, '^') - caret_line);
    ck_assert_int_eq(quote[caret], 'X'); /* the 4097th term */
    int col = p.dl.first->span.col;
    ck_assert_int_eq(col, unit_col("Y[i] = ", "X[i]", " + ", FE_MAX_TERMS));
    ck_assert(strncmp(quote + caret, text + col - 1, 20) == 0);
    free(d);
    parsed_free(&p);
    /* a short line is quoted whole, without marks */
    parse(&p, "Y[i] = X[i] * X[i]\n");
    d = fe_diag_format(p.dl.first);
    ck_assert_ptr_nonnull(strstr(d, "\n  Y[i] = X[i] * X[i]\n              ^\n"));
    free(d);
    parsed_free(&p);
    free(text);
}
END_TEST

START_TEST(test_errors_several_statements_resync)
{
    Parsed p;
    parse(&p, "A = 1 @\nB = f(X[i] @,\n   Y[i])\nC = 2\nD = ;\nE[i] = X[0]\nF = )\n");
    ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
    ck_assert_int_eq(p.dl.n_errors, 4);
    int lines[] = {1, 2, 5, 7};
    int i = 0;
    for (const Diag *d = p.dl.first; d; d = d->next)
        ck_assert_int_eq(d->span.line, lines[i++]);
    ck_assert_int_eq(p.ast.n_stmts, 2); /* C and E parsed */
    ck_assert_str_eq(p.ast.stmts[0]->name, "C");
    ck_assert_str_eq(p.ast.stmts[1]->name, "E");
    char *s = fe_diags_format(&p.dl);
    ck_assert_ptr_nonnull(strstr(s, "t.fuse:2:12: error: unexpected '@'"));
    ck_assert_ptr_nonnull(strstr(s, "  D = ;\n      ^\n"));
    free(s);
    parsed_free(&p);
}
END_TEST

START_TEST(test_errors_unclosed_note)
{
    Parsed p;
    parse(&p, "Y[i = X[i]\nZ = 1\n");
    const Diag *d = p.dl.first, *note = d ? d->next : NULL;
    ck_assert_ptr_nonnull(note);
    ck_assert_int_eq(note->severity, DS_NOTE);
    ck_assert_str_eq(note->msg, "expected ',' or ']' to close it, found '='");
    ck_assert_int_eq(note->span.line, 1);
    ck_assert_int_eq(note->span.col, 5);
    ck_assert_ptr_null(note->next);
    ck_assert_int_eq(p.ast.n_stmts, 1); /* Z, the next line, is parsed */
    parsed_free(&p);
}
END_TEST

START_TEST(test_errors_capped)
{
    static char text[4096];
    size_t n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "Y%d = @\n", i);
    Parsed p;
    parse(&p, text);
    ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
    ck_assert_int_eq(p.dl.n_errors, 21); /* 20 kept, the 21st stops the parse */
    char *s = fe_diags_format(&p.dl);
    ck_assert_ptr_nonnull(strstr(s, "t.fuse:20:7: error: "));
    ck_assert_ptr_null(strstr(s, "t.fuse:21:"));
    ck_assert_ptr_nonnull(strstr(s, "\nerror: too many errors emitted, stopping now\n"));
    free(s);
    parsed_free(&p);
}
END_TEST

/* ---- malformed inputs: all are syntax errors with a located diagnostic ---- */

static const char *const malformed[] = {
    "Y[i = X[i]",          "Y[i]] = X[i]",       "Y = relu(X[i]",        "Y = relu(X[i]))",
    "Y = (A[i]",           "Y = A[i])",          "Y = const([1, 2)",     "Y = const({\"a\": 1]",
    "Y[i] = X[i]; Z = 1",  "Y[i,] = X",          "Y[1] = X",             "\"a.npy\" += X",
    "Y = \"abc",           "*",                  "max =",                "Y[i] max = X[i]",
    "Y = X *",             "Y = X / 2",          "Y = X ^ 2",            "Y[i] = ",
    "Y",                   "Y[i]",               "export",               "export X Y",
    "export 3",            "= 3",                "3 = Y",                "Y = --X",
    "Y = + X",             "Y = f(,)",           "Y = relu(a=1, a=2)",   "Y = X[t + 1]",
    "Y = X[**t]",          "Y = X[i:j]",         "Y = X[1:2:3:4]",       "Y = const([a])",
    "Y = 'a'",             "\\",                 "Y = X \\\n + 1",       "Y = X\x01",
    "Y = X[é]",            "(((((",              "]]]]]",                "Y = {}}",
    "A = B = C",           "A += += B",          "\"a\" \"b\" = X",      "Y(1) = X",
    "Y = even(*t)",        "Y = Foo(k=1)",       "Y = #\n",              "Y = X[i] [",
    "Y = a\nZ = ;\nW = )", "Y=\"\\q\\",          "\xef\xbb\xbf\xef\xbb\xbf",
    "Y = 1e400 @",          "Y = X[t+]",          "Y = X[-]",             "Y = X['i]",
    "~!$%&?|<>`",          "Y = X\rZ",           "Y = \xff\xfe",
};

START_TEST(test_malformed_table)
{
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        Parsed p;
        parse(&p, malformed[i]);
        ck_assert_msg(p.st == FUSE_E_SYNTAX, "'%s': status %d", malformed[i], p.st);
        const Diag *d = p.dl.first;
        ck_assert_msg(d && d->span.src && d->span.line >= 1 && d->span.col >= 1,
                      "'%s': no located diagnostic", malformed[i]);
        char *s = fe_diag_format(d);
        ck_assert_msg(s && strstr(s, "t.fuse:") == s && strchr(s, '^'),
                      "'%s': badly formatted: %s", malformed[i], s ? s : "(null)");
        free(s);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(test_binary_garbage)
{
    /* Deterministic pseudo-random bytes (no NUL): must give a status, never crash. */
    static char text[8192];
    uint32_t x = 12345;
    for (int round = 0; round < 50; round++) {
        size_t n = 100 + (size_t)round * 150;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            text[i] = (char)(1 + (x >> 16) % 255);
        }
        text[n] = '\0';
        Parsed p;
        parse(&p, text);
        ck_assert(p.st == FUSE_E_SYNTAX || p.st == FUSE_OK);
        if (p.st == FUSE_E_SYNTAX)
            ck_assert_ptr_nonnull(p.dl.first);
        char *d = fe_ast_dump(&p.ast);
        ck_assert_ptr_nonnull(d);
        free(d);
        parsed_free(&p);
    }
}
END_TEST

START_TEST(test_embedded_nul_and_bad_args)
{
    Parsed p;
    parse_n(&p, "Y = X\0Z", 7);
    ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(p.dl.first->msg, "0x00"));
    parsed_free(&p);
    Arena a;
    arena_init(&a);
    DiagList dl;
    fe_diags_init(&dl, &a);
    Ast ast;
    ck_assert_int_eq(fe_parse(&a, NULL, &dl, &ast), FUSE_E_ARG);
    ck_assert_int_eq(ast.n_stmts, 0);
    arena_free_all(&a);
}
END_TEST

/* ---- out of memory ---- */

START_TEST(test_oom_loop)
{
    const char *text = "X[p,d] = \"x.npy\"\nQ[p,k] = W[k,d] X[p,d]\n"
                       "S[p,p'.] = softmax((Q[p,k] Q[p',k]) 0.5 + (1 - M(p,p')) const(-1e4))\n"
                       "Z = Foo(a, b) even(axis=\"i\") case(x, [1, {\"a\": 2}], y=3)\n"
                       "Bad = (\n\"o.npy\" = S[p,p']\nexport S\n";
    bool succeeded = false;
    for (long n = 1; n < 2000 && !succeeded; n++) {
        Parsed p;
        arena_init(&p.arena);
        p.arena.fail_countdown = n;
        fe_diags_init(&p.dl, &p.arena);
        p.src = (Source){"t.fuse", text, strlen(text)};
        p.st = fe_parse(&p.arena, &p.src, &p.dl, &p.ast);
        ck_assert_msg(p.st == FUSE_E_NOMEM || p.st == FUSE_E_SYNTAX, "n=%ld: status %d", n,
                      p.st);
        if (p.st == FUSE_E_SYNTAX) {
            ck_assert(!p.arena.is_oom);
            ck_assert_int_eq(p.ast.n_stmts, 5); /* the sink is lost in Bad's recovery */
            ck_assert_int_eq(p.dl.n_errors, 1);
            succeeded = true;
        }
        char *d = fe_ast_dump(&p.ast);
        free(d);
        arena_free_all(&p.arena);
    }
    ck_assert(succeeded);
}
END_TEST

/* ---- builtins and dump ---- */

START_TEST(test_is_builtin)
{
    const char *yes[] = {"step", "RELU", "Sig", "masked_softmax", "layer_norm", "const",
                         "topk", "tucker_dense", "SUM", "case", "causal_mask"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(fe_is_builtin(yes[i]), "%s", yes[i]);
    const char *no[] = {"even", "odd", "Foo", "", "relu_", "softmaxx", "pow"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        ck_assert_msg(!fe_is_builtin(no[i]), "%s", no[i]);
    ck_assert(!fe_is_builtin(NULL));
}
END_TEST

START_TEST(test_dump_all_statement_kinds)
{
    assert_dump("X[i,j] = \"a b.npy\"\nY(x) = S(x,y)\n\"out.npy\" = Y[x]\nexport Y\n"
                "Z[*t+1.] += X[i,t-1] [\"s\\n\", none]\n",
                "source X[i,j] = \"a b.npy\"\n"
                "equation Y(x) op== rhs:\n  tensor S(x,y)\n"
                "sink \"out.npy\" rhs:\n  tensor Y[x]\n"
                "export Y\n"
                "equation Z[*t+1.] op=+= rhs:\n  product\n    tensor X[i,t-1]\n"
                "    list\n      string \"s\\n\"\n      none\n");
    Ast empty = {0};
    char *d = fe_ast_dump(&empty);
    ck_assert_str_eq(d, "");
    free(d);
}
END_TEST

/* ---- conformance programs ---- */

static const char *conformance_dir(void)
{
    const char *env = getenv("FUSE_CONFORMANCE_DIR");
    return env && env[0] ? env : FUSE_TEST_DIR "/../../shared/conformance/cases";
}

/* Reads a whole file (malloc'd, NUL-terminated) or returns NULL. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(buf, cap);
            if (!grown)
                break;
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks one conformance program: all parse except 26, which fails at line 6. */
static void check_conformance_case(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/program.fuse", dir, name);
    size_t len;
    char *text = read_file(path, &len);
    ck_assert_msg(text, "cannot read %s", path);
    Parsed p;
    parse_n(&p, text, len);
    if (strcmp(name, "26_physics_informed_nn") == 0) {
        ck_assert_int_eq(p.st, FUSE_E_SYNTAX);
        ck_assert_int_eq(p.dl.first->span.line, 6);
        ck_assert_ptr_nonnull(strstr(p.dl.first->msg, "index"));
    } else {
        char *d = fe_diags_format(&p.dl);
        ck_assert_msg(p.st == FUSE_OK, "%s: %s", name, d ? d : "");
        free(d);
        ck_assert_int_gt(p.ast.n_stmts, 3);
        ck_assert_int_eq(p.ast.stmts[p.ast.n_stmts - 1]->kind, ST_EXPORT);
    }
    parsed_free(&p);
    free(text);
}

START_TEST(test_conformance_programs)
{
    const char *dir = conformance_dir();
    DIR *d = opendir(dir);
    if (!d) {
        /* The corpus lives beside the repository (../shared), not in it. */
        fprintf(stderr, "conformance corpus not found at %s: skipped\n", dir);
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && n < 64) {
        if (ent->d_name[0] != '.')
            names[n++] = strdup(ent->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    ck_assert_int_eq(n, 30);
    for (int i = 0; i < n; i++) {
        check_conformance_case(dir, names[i]);
        free(names[i]);
    }
}
END_TEST

static Suite *parser_suite(void)
{
    Suite *s = suite_create("parser");
    TCase *tc = tcase_create("statements");
    tcase_add_test(tc, test_stmt_equation_ops);
    tcase_add_test(tc, test_stmt_whitespace_variants);
    tcase_add_test(tc, test_stmt_sources);
    tcase_add_test(tc, test_stmt_sinks_and_exports);
    tcase_add_test(tc, test_stmt_text_and_span);
    tcase_add_test(tc, test_stmt_lhs_forms);
    suite_add_tcase(s, tc);
    tc = tcase_create("indices");
    tcase_add_test(tc, test_index_axes_primes_offsets);
    tcase_add_test(tc, test_index_integers);
    tcase_add_test(tc, test_name_space_paren_is_product);
    tcase_add_test(tc, test_index_slices);
    tcase_add_test(tc, test_index_streaming_and_dotted);
    tcase_add_test(tc, test_index_name_glued_to_bracket_is_one_unit);
    suite_add_tcase(s, tc);
    tc = tcase_create("expressions");
    tcase_add_test(tc, test_literal_numbers);
    tcase_add_test(tc, test_literal_strings_bools_none);
    tcase_add_test(tc, test_literal_lists_and_dicts);
    tcase_add_test(tc, test_literal_newlines_inside_brackets);
    tcase_add_test(tc, test_call_kwargs);
    tcase_add_test(tc, test_call_forms);
    tcase_add_test(tc, test_call_vs_boolean_ref_vs_indexfn);
    tcase_add_test(tc, test_indexfn_forms);
    tcase_add_test(tc, test_sum_and_minus);
    tcase_add_test(tc, test_grouped_sums_and_products);
    tcase_add_test(tc, test_newline_inside_call_is_blank);
    tcase_add_test(tc, test_empty_and_comment_only);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors_exact);
    tcase_add_test(tc, test_errors_index_items);
    tcase_add_test(tc, test_errors_lhs_index);
    tcase_add_test(tc, test_errors_calls_and_indexfns);
    tcase_add_test(tc, test_errors_literals);
    tcase_add_test(tc, test_errors_deep_nesting);
    tcase_add_test(tc, test_errors_several_statements_resync);
    tcase_add_test(tc, test_errors_term_and_factor_limits);
    tcase_add_test(tc, test_errors_long_line_in_bounded_memory);
    tcase_add_test(tc, test_errors_long_line_excerpt);
    tcase_add_test(tc, test_errors_unclosed_note);
    tcase_add_test(tc, test_errors_capped);
    tcase_add_test(tc, test_malformed_table);
    tcase_add_test(tc, test_binary_garbage);
    tcase_add_test(tc, test_embedded_nul_and_bad_args);
    tcase_add_test(tc, test_oom_loop);
    suite_add_tcase(s, tc);
    tc = tcase_create("misc");
    tcase_add_test(tc, test_is_builtin);
    tcase_add_test(tc, test_dump_all_statement_kinds);
    tcase_add_test(tc, test_conformance_programs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(parser_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
