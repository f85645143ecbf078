/*
 * test_lexer.c: Check suite for the frontend basics: the arena, diagnostics and
 * their text form, and the lexer (tokens, numbers, strings and escapes, comments,
 * newlines, positions, malformed tokens).
 */
#include "frontend.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

typedef struct Lexed {
    Arena arena;
    Source src;
    Token *toks;
    int n;
} Lexed;

/* Tokenises text (length from strlen) into lx; returns fe_lex_all's status. */
static fuse_status lex(Lexed *lx, const char *text, DiagList *dl)
{
    arena_init(&lx->arena);
    lx->src = (Source){"t.fuse", text, strlen(text)};
    return fe_lex_all(&lx->arena, &lx->arena, &lx->src, dl, &lx->toks, &lx->n);
}

static void lexed_free(Lexed *lx)
{
    arena_free_all(&lx->arena);
}

/* Asserts that token i has the given kind and text. */
static void assert_tok(const Lexed *lx, int i, TokKind kind, const char *text)
{
    ck_assert_int_lt(i, lx->n);
    const Token *t = &lx->toks[i];
    ck_assert_msg(t->kind == kind, "token %d: kind %s, expected %s", i,
                  fe_tok_kind_name(t->kind), fe_tok_kind_name(kind));
    if (text) {
        ck_assert_int_eq(t->len, (int)strlen(text));
        ck_assert_msg(memcmp(t->text, text, strlen(text)) == 0, "token %d: '%.*s' != '%s'", i,
                      t->len, t->text, text);
    }
}

static void assert_pos(const Lexed *lx, int i, int line, int col)
{
    ck_assert_int_eq(lx->toks[i].span.line, line);
    ck_assert_int_eq(lx->toks[i].span.col, col);
}

/* ---- arena ---- */

START_TEST(test_arena_alignment_and_zero)
{
    Arena a;
    arena_init(&a);
    for (size_t size = 1; size < 200; size += 7) {
        unsigned char *p = arena_alloc(&a, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            ck_assert_uint_eq(p[i], 0);
        memset(p, 0xAB, size);
    }
    void *big = arena_alloc(&a, 5u << 20); /* larger than any chunk */
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq((uintptr_t)big % 16, 0);
    ck_assert(!a.is_oom);
    arena_free_all(&a);
    ck_assert_ptr_null(a.head);
}
END_TEST

START_TEST(test_arena_strings)
{
    Arena a;
    arena_init(&a);
    ck_assert_str_eq(arena_strdup(&a, "tensor"), "tensor");
    ck_assert_str_eq(arena_strndup(&a, "abcdef", 3), "abc");
    ck_assert_str_eq(arena_printf(&a, "%s[%d]", "X", 42), "X[42]");
    int *old = arena_alloc(&a, 4 * sizeof(int));
    for (int i = 0; i < 4; i++)
        old[i] = i + 1;
    int *grown = arena_grow(&a, old, 4 * sizeof(int), 8 * sizeof(int));
    ck_assert_int_eq(grown[3], 4);
    ck_assert_int_eq(grown[7], 0);
    arena_free_all(&a);
}
END_TEST

START_TEST(test_arena_push_ptr)
{
    Arena a;
    arena_init(&a);
    void **items = NULL;
    int n = 0, cap = 0;
    static int values[100];
    for (int i = 0; i < 100; i++)
        ck_assert(arena_push_ptr(&a, &items, &n, &cap, &values[i]));
    ck_assert_int_eq(n, 100);
    ck_assert_int_ge(cap, 100);
    for (int i = 0; i < 100; i++)
        ck_assert_ptr_eq(items[i], &values[i]);
    arena_free_all(&a);
}
END_TEST

START_TEST(test_arena_sticky_oom)
{
    Arena a;
    arena_init(&a);
    a.fail_countdown = 3;
    ck_assert_ptr_nonnull(arena_alloc(&a, 8));
    ck_assert_ptr_nonnull(arena_alloc(&a, 8));
    ck_assert_ptr_null(arena_alloc(&a, 8));
    ck_assert(a.is_oom);
    ck_assert_ptr_null(arena_alloc(&a, 8)); /* sticky */
    ck_assert_ptr_null(arena_strdup(&a, "x"));
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX));
    arena_free_all(&a);
    ck_assert(!a.is_oom);
    ck_assert_ptr_nonnull(arena_alloc(&a, 8)); /* reusable after free_all */
    ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 4));
    ck_assert(a.is_oom);
    arena_free_all(&a);
}
END_TEST

/* ---- diagnostics ---- */

START_TEST(test_diag_format_caret)
{
    Arena a;
    arena_init(&a);
    DiagList dl;
    fe_diags_init(&dl, &a);
    Source src = {"p.fuse", "A[i] = B[i]\nY[i, j = X[i]\n", 27};
    Span span = {&src, 2, 8, 3};
    ck_assert_int_eq(fe_error(&dl, FUSE_E_SYNTAX, span, "bad %s", "thing"), FUSE_E_SYNTAX);
    ck_assert_int_eq(dl.n_errors, 1);
    char *s = fe_diag_format(dl.first);
    ck_assert_str_eq(s, "p.fuse:2:8: error: bad thing\n  Y[i, j = X[i]\n         ^~~\n");
    free(s);
    arena_free_all(&a);
}
END_TEST

START_TEST(test_diag_format_tabs_utf8_and_clip)
{
    Arena a;
    arena_init(&a);
    DiagList dl;
    fe_diags_init(&dl, &a);
    /* "\t" counts one column and is copied; "é" is one column; the span is clipped. */
    const char *text = "\tY = \"\xc3\xa9\" X\r\n";
    Source src = {"u.fuse", text, strlen(text)};
    fe_error(&dl, FUSE_E_SYNTAX, (Span){&src, 1, 9, 10}, "here");
    char *s = fe_diag_format(dl.first);
    ck_assert_str_eq(s, "u.fuse:1:9: error: here\n  \tY = \"\xc3\xa9\" X\n  \t       ^~\n");
    free(s);
    arena_free_all(&a);
}
END_TEST

START_TEST(test_diag_no_location_and_list)
{
    Arena a;
    arena_init(&a);
    DiagList dl;
    fe_diags_init(&dl, &a);
    Source src = {NULL, "X = 1", 5};
    fe_error(&dl, FUSE_E_IO, (Span){0}, "cannot open '%s'", "a.npy");
    fe_note(&dl, (Span){&src, 1, 5, 1}, "defined here");
    ck_assert_int_eq(dl.n_errors, 1);
    ck_assert_int_eq(dl.first->code, FUSE_E_IO);
    ck_assert_int_eq(dl.last->severity, DS_NOTE);
    char *s = fe_diags_format(&dl);
    ck_assert_str_eq(s, "error: cannot open 'a.npy'\n"
                        "<input>:1:5: note: defined here\n  X = 1\n      ^\n");
    free(s);
    arena_free_all(&a);
}
END_TEST

START_TEST(test_diag_oom_is_counted)
{
    Arena a;
    arena_init(&a);
    DiagList dl;
    fe_diags_init(&dl, &a);
    a.fail_countdown = 1;
    ck_assert_int_eq(fe_error(&dl, FUSE_E_SHAPE, (Span){0}, "x"), FUSE_E_SHAPE);
    ck_assert_int_eq(dl.n_errors, 1);
    ck_assert_ptr_null(dl.first);
    ck_assert(a.is_oom);
    arena_free_all(&a);
}
END_TEST

/* ---- tokens ---- */

START_TEST(test_lex_statement_tokens)
{
    Lexed lx;
    ck_assert_int_eq(lex(&lx, "Y[i,j] = A[i,k] B[k,j]", NULL), FUSE_OK);
    const char *texts[] = {"Y", "[", "i", ",", "j", "]", "=", "A", "[", "i", ",",
                           "k", "]", "B", "[", "k", ",", "j", "]"};
    TokKind kinds[] = {TK_NAME, TK_PUNCT, TK_NAME, TK_PUNCT, TK_NAME, TK_PUNCT, TK_OP_ASSIGN,
                       TK_NAME, TK_PUNCT, TK_NAME, TK_PUNCT, TK_NAME, TK_PUNCT, TK_NAME,
                       TK_PUNCT, TK_NAME, TK_PUNCT, TK_NAME, TK_PUNCT};
    ck_assert_int_eq(lx.n, 20);
    for (int i = 0; i < 19; i++)
        assert_tok(&lx, i, kinds[i], texts[i]);
    assert_tok(&lx, 19, TK_EOF, NULL);
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_assignment_operators)
{
    Lexed lx;
    lex(&lx, "a += b max= c avg= d = e == Ymax= f max =", NULL);
    assert_tok(&lx, 1, TK_OP_ASSIGN, "+=");
    assert_tok(&lx, 3, TK_OP_ASSIGN, "max=");
    assert_tok(&lx, 5, TK_OP_ASSIGN, "avg=");
    assert_tok(&lx, 7, TK_OP_ASSIGN, "=");
    assert_tok(&lx, 9, TK_OP_ASSIGN, "="); /* '==' is two '=' */
    assert_tok(&lx, 10, TK_OP_ASSIGN, "=");
    assert_tok(&lx, 11, TK_NAME, "Ymax"); /* greedy names */
    assert_tok(&lx, 12, TK_OP_ASSIGN, "=");
    assert_tok(&lx, 14, TK_NAME, "max"); /* with a space it is a name */
    assert_tok(&lx, 15, TK_OP_ASSIGN, "=");
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_punctuation_and_index_pieces)
{
    Lexed lx;
    lex(&lx, "X[p', *t+1, 0:3, q.] {a: -}", NULL);
    const char *texts[] = {"X", "[", "p", "'", ",", "*", "t", "+", "1", ",", "0", ":",
                           "3", ",", "q", ".", "]", "{", "a", ":", "-", "}"};
    for (int i = 0; i < 22; i++)
        assert_tok(&lx, i, i == 8 || i == 10 || i == 12 ? TK_NUMBER
                           : (i == 0 || i == 2 || i == 6 || i == 14 || i == 18) ? TK_NAME
                                                                                 : TK_PUNCT,
                   texts[i]);
    lexed_free(&lx);
}
END_TEST

/* ---- numbers ---- */

typedef struct NumCase {
    const char *text;
    bool is_int;
    int64_t ival;
    double fval;
} NumCase;

START_TEST(test_lex_numbers)
{
    static const NumCase cases[] = {
        {"0", true, 0, 0},         {"42", true, 42, 42},       {"007", true, 7, 7},
        {"1.5", false, 0, 1.5},    {".5", false, 0, 0.5},      {"5.", false, 0, 5.0},
        {"1e-4", false, 0, 1e-4},  {"1E5", false, 0, 1e5},     {"2.5e+2", false, 0, 250},
        {"9223372036854775807", true, INT64_MAX, 9223372036854775807.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Lexed lx;
        ck_assert_int_eq(lex(&lx, cases[i].text, NULL), FUSE_OK);
        ck_assert_int_eq(lx.n, 2);
        assert_tok(&lx, 0, TK_NUMBER, cases[i].text);
        ck_assert_msg(lx.toks[0].is_int == cases[i].is_int, "%s: is_int", cases[i].text);
        if (cases[i].is_int)
            ck_assert_int_eq(lx.toks[0].ival, cases[i].ival);
        ck_assert_msg(fabs(lx.toks[0].fval - cases[i].fval) <= 1e-12 * fabs(cases[i].fval),
                      "%s: value %g", cases[i].text, lx.toks[0].fval);
        lexed_free(&lx);
    }
}
END_TEST

START_TEST(test_lex_number_boundaries)
{
    Lexed lx;
    lex(&lx, "2X 1e400 0x10 2exp 1.5e-3X", NULL);
    assert_tok(&lx, 0, TK_NUMBER, "2");
    assert_tok(&lx, 1, TK_NAME, "X");
    assert_tok(&lx, 2, TK_NUMBER, "1e400");
    ck_assert(isinf(lx.toks[2].fval));
    assert_tok(&lx, 3, TK_NUMBER, "0");
    assert_tok(&lx, 4, TK_NAME, "x10");
    assert_tok(&lx, 5, TK_NUMBER, "2"); /* no digits after e: not an exponent */
    assert_tok(&lx, 6, TK_NAME, "exp");
    assert_tok(&lx, 7, TK_NUMBER, "1.5e-3");
    ck_assert_double_eq_tol(lx.toks[7].fval, 0.0015, 1e-15);
    assert_tok(&lx, 8, TK_NAME, "X");
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_integer_out_of_range)
{
    Lexed lx;
    Arena da;
    arena_init(&da);
    DiagList dl;
    fe_diags_init(&dl, &da);
    ck_assert_int_eq(lex(&lx, "X = 9223372036854775808", &dl), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(lx.toks[2].err);
    ck_assert_ptr_nonnull(strstr(dl.first->msg, "out of range"));
    ck_assert_int_eq(dl.first->span.col, 5);
    lexed_free(&lx);
    arena_free_all(&da);
}
END_TEST

/* ---- strings ---- */

START_TEST(test_lex_strings_and_escapes)
{
    Lexed lx;
    lex(&lx, "\"a.npy\" \"out#1.npy\" \"\" \"q\\\"\\\\\\n\\t\" \"\\x41\\u00e9\\U0001F600\\101\\q\"",
        NULL);
    assert_tok(&lx, 0, TK_STRING, "\"a.npy\"");
    ck_assert_str_eq(lx.toks[0].str, "a.npy");
    ck_assert_str_eq(lx.toks[1].str, "out#1.npy"); /* '#' inside a string */
    ck_assert_str_eq(lx.toks[2].str, "");
    ck_assert_int_eq(lx.toks[2].str_len, 0);
    ck_assert_str_eq(lx.toks[3].str, "q\"\\\n\t");
    ck_assert_str_eq(lx.toks[4].str, "A\xc3\xa9\xf0\x9f\x98\x80" "A\\q");
    ck_assert_int_eq(lx.toks[4].str_len, 10);
    assert_tok(&lx, 5, TK_EOF, NULL);
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_string_utf8_columns)
{
    Lexed lx;
    lex(&lx, "\"\xc3\xa9t\xc3\xa9\" X", NULL);
    ck_assert_str_eq(lx.toks[0].str, "\xc3\xa9t\xc3\xa9");
    ck_assert_int_eq(lx.toks[0].span.len, 5); /* characters, not bytes */
    assert_pos(&lx, 1, 1, 7);
    lexed_free(&lx);
}
END_TEST

/* Lexes text, expects one malformed token with message containing msg at line:col. */
static void check_bad_token(const char *text, const char *msg, int line, int col)
{
    Lexed lx;
    Arena da;
    arena_init(&da);
    DiagList dl;
    fe_diags_init(&dl, &da);
    ck_assert_int_eq(lex(&lx, text, &dl), FUSE_E_SYNTAX);
    ck_assert_int_eq(dl.n_errors, 1);
    ck_assert_msg(strstr(dl.first->msg, msg), "'%s': message '%s' lacks '%s'", text,
                  dl.first->msg, msg);
    ck_assert_int_eq(dl.first->span.line, line);
    ck_assert_int_eq(dl.first->span.col, col);
    ck_assert_int_eq(lx.toks[lx.n - 1].kind, TK_EOF);
    lexed_free(&lx);
    arena_free_all(&da);
}

START_TEST(test_lex_string_errors)
{
    check_bad_token("Y[i] = \"unterminated", "unterminated string", 1, 8);
    check_bad_token("A = 1\nY = f(\"ab\ncd)", "unterminated string", 2, 7);
    check_bad_token("Y = \"ab\\\ncd", "unterminated string", 1, 5);
    check_bad_token("Y = g(\"\\x4\")", "invalid escape", 1, 8);
    check_bad_token("Y = g(\"ok \\uD800\")", "invalid escape", 1, 11);
    check_bad_token("Y = g(\"\\U00110000\")", "invalid escape", 1, 8);
}
END_TEST

START_TEST(test_lex_bad_characters)
{
    check_bad_token("Y[\xc3\xa9] = X[i]", "unexpected character '\xc3\xa9'", 1, 3);
    check_bad_token("\xc5\xb8 = X", "only ASCII", 1, 1);
    check_bad_token("Y = X\x01", "control character 0x01", 1, 6);
    check_bad_token("Y = X\rZ", "carriage return", 1, 6);
    check_bad_token("Y = X\f", "control character 0x0C", 1, 6);
    check_bad_token("Y = \xff", "invalid UTF-8 byte 0xFF", 1, 5);
}
END_TEST

/* ---- comments, newlines, positions ---- */

START_TEST(test_lex_comments_and_newline_runs)
{
    Lexed lx;
    lex(&lx, "# header\n\n  \nA = 1  # trailing\n# only comment\n\n\nB = \"#x\"\n\n", NULL);
    assert_tok(&lx, 0, TK_NAME, "A"); /* no leading newline token */
    assert_tok(&lx, 3, TK_NEWLINE, NULL);
    assert_tok(&lx, 4, TK_NAME, "B"); /* one newline for the whole run */
    assert_tok(&lx, 6, TK_STRING, "\"#x\"");
    assert_tok(&lx, 7, TK_NEWLINE, NULL);
    assert_tok(&lx, 8, TK_EOF, NULL);
    ck_assert_int_eq(lx.n, 9);
    assert_pos(&lx, 0, 4, 1);
    assert_pos(&lx, 3, 4, 18);
    assert_pos(&lx, 4, 8, 1);
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_newlines_inside_brackets_are_tokens)
{
    /* The lexer is context free: the parser decides that these are blanks. */
    Lexed lx;
    lex(&lx, "Y = f(\n  A[i],\n  B[i]\n)", NULL);
    assert_tok(&lx, 4, TK_NEWLINE, NULL);
    assert_tok(&lx, 5, TK_NAME, "A");
    assert_pos(&lx, 5, 2, 3);
    assert_tok(&lx, 11, TK_NAME, "B");
    assert_pos(&lx, 11, 3, 3);
    assert_tok(&lx, 15, TK_NEWLINE, NULL);
    assert_tok(&lx, 16, TK_PUNCT, ")");
    assert_pos(&lx, 16, 4, 1);
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_crlf_bom_and_tabs)
{
    Lexed lx;
    lex(&lx, "\xef\xbb\xbfY\t=\tX\r\n\r\nZ = 1\r\n", NULL);
    assert_tok(&lx, 0, TK_NAME, "Y");
    assert_pos(&lx, 0, 1, 1); /* the BOM is skipped */
    assert_pos(&lx, 1, 1, 3); /* a tab is one column */
    assert_pos(&lx, 2, 1, 5);
    assert_tok(&lx, 3, TK_NEWLINE, NULL);
    assert_tok(&lx, 4, TK_NAME, "Z");
    assert_pos(&lx, 4, 3, 1);
    assert_tok(&lx, 7, TK_NEWLINE, NULL);
    assert_tok(&lx, 8, TK_EOF, NULL);
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_positions_and_eof)
{
    Lexed lx;
    lex(&lx, "Score[p,p'] = (Q[p,dk] K[p',dk])\n   InvSqrt", NULL);
    assert_pos(&lx, 0, 1, 1);
    ck_assert_int_eq(lx.toks[0].span.len, 5);
    assert_tok(&lx, 7, TK_OP_ASSIGN, "=");
    assert_pos(&lx, 7, 1, 13);
    assert_tok(&lx, 8, TK_PUNCT, "(");
    assert_pos(&lx, 8, 1, 15);
    int last = lx.n - 1;
    assert_tok(&lx, last - 1, TK_NAME, "InvSqrt");
    assert_pos(&lx, last - 1, 2, 4);
    assert_pos(&lx, last, 2, 11); /* EOF just after the last character */
    lexed_free(&lx);
}
END_TEST

START_TEST(test_lex_next_streaming_api)
{
    Arena a;
    arena_init(&a);
    Source src = {"s", "A\n\nB", 4};
    Lexer lx;
    fe_lex_init(&lx, &a, &src);
    Token t;
    TokKind expect[] = {TK_NAME, TK_NEWLINE, TK_NAME, TK_EOF, TK_EOF};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(fe_lex_next(&lx, &t), FUSE_OK);
        ck_assert_int_eq(t.kind, expect[i]);
    }
    ck_assert_str_eq(fe_tok_kind_name(TK_NUMBER), "number");
    arena_free_all(&a);
}
END_TEST

START_TEST(test_lex_empty_and_oom)
{
    Lexed lx;
    ck_assert_int_eq(lex(&lx, "", NULL), FUSE_OK);
    ck_assert_int_eq(lx.n, 1);
    assert_tok(&lx, 0, TK_EOF, NULL);
    assert_pos(&lx, 0, 1, 1);
    lexed_free(&lx);
    for (long n = 1; n <= 3; n++) {
        Arena a;
        arena_init(&a);
        a.fail_countdown = n;
        Source src = {"s", "Y = \"a\" \"b\" \"c\"", 15};
        Token *toks;
        int nt;
        ck_assert_int_eq(fe_lex_all(&a, &a, &src, NULL, &toks, &nt), FUSE_E_NOMEM);
        arena_free_all(&a);
    }
}
END_TEST

/* The token helpers both parsers share: integer values (with the dotted "1."
 * of t+1.) and the quoted descriptions in messages. */
START_TEST(test_token_int_and_describe)
{
    Lexed lx;
    ck_assert_int_eq(lex(&lx, "42 1. 2.5 name averyveryverylongname_over_24\n", NULL), FUSE_OK);
    int64_t v = -1;
    bool dotted = true;
    ck_assert(fe_tok_int(&lx.toks[0], &v, &dotted));
    ck_assert_int_eq(v, 42);
    ck_assert(!dotted);
    ck_assert(fe_tok_int(&lx.toks[1], &v, &dotted));
    ck_assert_int_eq(v, 1);
    ck_assert(dotted);
    ck_assert(!fe_tok_int(&lx.toks[2], &v, &dotted)); /* 2.5 */
    ck_assert(!fe_tok_int(&lx.toks[3], &v, &dotted)); /* a name */
    ck_assert_str_eq(fe_tok_describe(&lx.toks[3]).s, "'name'");
    ck_assert_str_eq(fe_tok_describe(&lx.toks[4]).s, "'averyveryverylongname...'");
    ck_assert_str_eq(fe_tok_describe(&lx.toks[lx.n - 1]).s, "end of input");
    lexed_free(&lx);
}
END_TEST

static Suite *lexer_suite(void)
{
    Suite *s = suite_create("lexer");
    TCase *tc = tcase_create("arena");
    tcase_add_test(tc, test_arena_alignment_and_zero);
    tcase_add_test(tc, test_arena_strings);
    tcase_add_test(tc, test_arena_push_ptr);
    tcase_add_test(tc, test_arena_sticky_oom);
    suite_add_tcase(s, tc);
    tc = tcase_create("diag");
    tcase_add_test(tc, test_diag_format_caret);
    tcase_add_test(tc, test_diag_format_tabs_utf8_and_clip);
    tcase_add_test(tc, test_diag_no_location_and_list);
    tcase_add_test(tc, test_diag_oom_is_counted);
    suite_add_tcase(s, tc);
    tc = tcase_create("lexer");
    tcase_add_test(tc, test_lex_statement_tokens);
    tcase_add_test(tc, test_lex_assignment_operators);
    tcase_add_test(tc, test_lex_punctuation_and_index_pieces);
    tcase_add_test(tc, test_lex_numbers);
    tcase_add_test(tc, test_lex_number_boundaries);
    tcase_add_test(tc, test_lex_integer_out_of_range);
    tcase_add_test(tc, test_lex_strings_and_escapes);
    tcase_add_test(tc, test_lex_string_utf8_columns);
    tcase_add_test(tc, test_lex_string_errors);
    tcase_add_test(tc, test_lex_bad_characters);
    tcase_add_test(tc, test_lex_comments_and_newline_runs);
    tcase_add_test(tc, test_lex_newlines_inside_brackets_are_tokens);
    tcase_add_test(tc, test_lex_crlf_bom_and_tabs);
    tcase_add_test(tc, test_lex_positions_and_eof);
    tcase_add_test(tc, test_lex_next_streaming_api);
    tcase_add_test(tc, test_lex_empty_and_oom);
    tcase_add_test(tc, test_token_int_and_describe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lexer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
