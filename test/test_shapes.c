/*
 * test_shapes.c: IR building, dependency order and shape inference: sizes found by
 * unification, lower bounds, and every shape error with its position and origins.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "ir.h"

typedef struct Fixture {
    Arena arena;
    Source src;
    DiagList dl;
    Ast ast;
    IrProgram *ir;
    char *msg;
} Fixture;

/* Parses, builds and orders text; returns the status of the first failing step. */
static fuse_status build(Fixture *f, const char *text)
{
    memset(f, 0, sizeof *f);
    arena_init(&f->arena);
    fe_diags_init(&f->dl, &f->arena);
    f->src = (Source){"s.fuse", text, strlen(text)};
    fuse_status st = fe_parse(&f->arena, &f->src, &f->dl, &f->ast);
    if (st == FUSE_OK)
        st = ir_build(&f->arena, &f->ast, &f->dl, &f->ir);
    if (st == FUSE_OK)
        st = ir_order(f->ir, &f->dl);
    return st;
}

static fuse_status shape(Fixture *f, const char *text, const ShapeFact *facts)
{
    fuse_status st = build(f, text);
    if (st != FUSE_OK)
        return st;
    return ir_infer_shapes(f->ir, facts, &f->dl);
}

static const char *message(Fixture *f)
{
    free(f->msg);
    f->msg = fe_diags_format(&f->dl);
    return f->msg ? f->msg : "";
}

static void done(Fixture *f)
{
    free(f->msg);
    arena_free_all(&f->arena);
}

static const int64_t *shape_of(Fixture *f, const char *name)
{
    IrTensor *t = ir_tensor_find(f->ir, name);
    ck_assert_ptr_nonnull(t);
    return t->shape;
}

START_TEST(test_sizes_flow_through_equations)
{
    Fixture f;
    ck_assert_int_eq(shape(&f, "A[i,k] = const([[1,2,3],[4,5,6]])\nB[k,j] = const([[1],[2],[3]])\n"
                               "C[i,j] = A[i,k] B[k,j]\nT[j,i] = C[i,j]\nexport T\n", NULL),
                     FUSE_OK);
    ck_assert_int_eq(shape_of(&f, "C")[0], 2);
    ck_assert_int_eq(shape_of(&f, "C")[1], 1);
    ck_assert_int_eq(shape_of(&f, "T")[0], 1);
    ck_assert_int_eq(shape_of(&f, "T")[1], 2);
    done(&f);
}
END_TEST

START_TEST(test_broadcast_size_from_later_use)
{
    /* HiddenBias's b comes from its use with X (SPEC §2.2, conformance 04). */
    Fixture f;
    ck_assert_int_eq(shape(&f, "B1[h] = const([1,2,3])\nX[b,h] = const([[1,2,3],[4,5,6]])\n"
                               "HiddenBias[b,h] = B1[h]\nY[b,h] = X[b,h] + HiddenBias[b,h]\n",
                           NULL), FUSE_OK);
    ck_assert_int_eq(shape_of(&f, "HiddenBias")[0], 2);
    ck_assert_int_eq(shape_of(&f, "HiddenBias")[1], 3);
    done(&f);
}
END_TEST

START_TEST(test_source_facts_exact_and_lower_bound)
{
    Fixture f;
    const char *text = "E[x,d] = \"e.npy\"\nR(x,y) = \"r.tsv\"\nS[x,y] = R(x,y) E[x,d] E[y,d]\n";
    ck_assert_int_eq(build(&f, text), FUSE_OK);
    ShapeFact facts[8] = {0};
    IrTensor *e = ir_tensor_find(f.ir, "E"), *r = ir_tensor_find(f.ir, "R");
    facts[e->id] = (ShapeFact){true, false, 2, {5, 4}, "\"e.npy\""};
    facts[r->id] = (ShapeFact){true, true, 2, {3, 2}, "\"r.tsv\""};
    ck_assert_int_eq(ir_infer_shapes(f.ir, facts, &f.dl), FUSE_OK);
    /* the relation is padded up to the exact size of its class */
    ck_assert_int_eq(r->shape[0], 5);
    ck_assert_int_eq(r->shape[1], 5);
    done(&f);
}
END_TEST

START_TEST(test_lower_bound_only_takes_largest)
{
    Fixture f;
    ck_assert_int_eq(build(&f, "R(x,y) = \"r.tsv\"\nQ(y,z) = \"q.tsv\"\nP(x,z) = R(x,y) Q(y,z)\n"),
                     FUSE_OK);
    ShapeFact facts[8] = {0};
    facts[ir_tensor_find(f.ir, "R")->id] = (ShapeFact){true, true, 2, {3, 2}, "r"};
    facts[ir_tensor_find(f.ir, "Q")->id] = (ShapeFact){true, true, 2, {4, 6}, "q"};
    ck_assert_int_eq(ir_infer_shapes(f.ir, facts, &f.dl), FUSE_OK);
    ck_assert_int_eq(shape_of(&f, "R")[1], 4);
    ck_assert_int_eq(shape_of(&f, "P")[0], 3);
    ck_assert_int_eq(shape_of(&f, "P")[1], 6);
    done(&f);
}
END_TEST

START_TEST(test_exact_below_lower_bound_is_error)
{
    Fixture f;
    ck_assert_int_eq(build(&f, "E[x] = \"e.npy\"\nR(x) = \"r.tsv\"\nS[x] = R(x) E[x]\n"), FUSE_OK);
    ShapeFact facts[8] = {0};
    facts[ir_tensor_find(f.ir, "E")->id] = (ShapeFact){true, false, 1, {2}, "\"e.npy\""};
    facts[ir_tensor_find(f.ir, "R")->id] = (ShapeFact){true, true, 1, {7}, "\"r.tsv\""};
    ck_assert_int_eq(ir_infer_shapes(f.ir, facts, &f.dl), FUSE_E_SHAPE);
    const char *m = message(&f);
    ck_assert_ptr_nonnull(strstr(m, "smaller"));
    ck_assert_ptr_nonnull(strstr(m, "e.npy"));
    ck_assert_ptr_nonnull(strstr(m, "r.tsv"));
    done(&f);
}
END_TEST

START_TEST(test_conflict_names_both_origins)
{
    Fixture f;
    ck_assert_int_eq(shape(&f, "A[i] = const([1,2,3])\nB[i] = const([1,2])\nC[i] = A[i] B[i]\n",
                           NULL), FUSE_E_SHAPE);
    const char *m = message(&f);
    /* at B's index, with a note at each origin */
    ck_assert_ptr_nonnull(strstr(m, "s.fuse:3:15: error: size conflict for axis i"));
    ck_assert_ptr_nonnull(strstr(m, "s.fuse:1:8: note: i has size 3 here\n"));
    ck_assert_ptr_nonnull(strstr(m, "s.fuse:2:8: note: i has size 2 here\n"));
    ck_assert_ptr_nonnull(strstr(m, "3 (from const(...) at s.fuse:1:"));
    ck_assert_ptr_nonnull(strstr(m, "2 (from const(...) at s.fuse:2:"));
    done(&f);
}
END_TEST

START_TEST(test_causal_mask_conflict_mentions_origin_line)
{
    Fixture f;
    ck_assert_int_eq(build(&f, "X[p,d] = \"x.npy\"\nC[p,q] = causal_mask(4)\n"
                               "S[p,q] = X[p,d] X[q,d] + C[p,q]\n"), FUSE_OK);
    ShapeFact facts[8] = {0};
    facts[ir_tensor_find(f.ir, "X")->id] = (ShapeFact){true, false, 2, {3, 2}, "\"x.npy\""};
    ck_assert_int_eq(ir_infer_shapes(f.ir, facts, &f.dl), FUSE_E_SHAPE);
    const char *m = message(&f);
    ck_assert_ptr_nonnull(strstr(m, "s.fuse:3:"));
    ck_assert_ptr_nonnull(strstr(m, "causal_mask(4) at s.fuse:2:"));
    ck_assert_ptr_nonnull(strstr(m, "\"x.npy\" at s.fuse:1:1"));
    done(&f);
}
END_TEST

START_TEST(test_uninferable_axis)
{
    Fixture f;
    ck_assert_int_eq(shape(&f, "B1[h] = const([1,2])\nHiddenBias[b,h] = B1[h]\n", NULL),
                     FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "cannot infer the size of axis b of HiddenBias"));
    done(&f);
}
END_TEST

START_TEST(test_unknown_tensor_and_rank_errors)
{
    Fixture f;
    ck_assert_int_eq(build(&f, "Y[i] = Foo[i]\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "s.fuse:1:8: error: unknown tensor 'Foo'"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY = A\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "'A' has rank 1"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = A[i,j]\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "indexed with 2 axes"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nA[i,j] += A[i]\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "has 2 axes here but 1"));
    done(&f);
    ck_assert_int_eq(build(&f, "export Nope\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown tensor 'Nope'"));
    done(&f);
    ck_assert_int_eq(build(&f, "Y[i] = frobnicate(X[i])\n"), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown function 'frobnicate'"));
    done(&f);
}
END_TEST

START_TEST(test_did_you_mean)
{
    Fixture f;
    ck_assert_int_eq(build(&f, "Weights[i] = const([1,2])\nY[i] = Weigths[i]\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "s.fuse:2:8: error: unknown tensor 'Weigths'; "
                                              "did you mean 'Weights'?"));
    done(&f);
    ck_assert_int_eq(build(&f, "Hidden[i] = const([1,2])\nexport hiden\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "export of unknown tensor 'hiden'; did you mean "
                                              "'Hidden'?"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = relu (A[i])\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown tensor 'relu'; relu is a builtin: call it "
                                              "as relu(...), with no blank before '('"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = Q[i]\n"), FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown tensor 'Q'\n")); /* too short to guess */
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = sigmoid(A[i])\n"), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown function 'sigmoid'; did you mean 'sig'? "
                                              "(sig(x, T): logistic sigmoid; T=0 gives a hard "
                                              "step)"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = sofmax(A[i])\n"), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown function 'sofmax'; did you mean "
                                              "'softmax'? (softmax(x, axis=):"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = Average(A[i])\n"), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown function 'Average'; did you mean 'mean'?"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = matmul(A[i])\n"), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown function 'matmul'; write a product by "
                                              "juxtaposition: C[i,j] = A[i,k] B[k,j]"));
    done(&f);
    ck_assert_int_eq(build(&f, "A[i] = const([1,2])\nY[i] = frobnicate(A[i])\n"), FUSE_E_SYNTAX);
    ck_assert_ptr_nonnull(strstr(message(&f), "unknown function 'frobnicate'\n"));
    done(&f);
    char hint[FE_HINT_SIZE];
    ck_assert_str_eq(fe_builtin_hint("relux", hint, sizeof hint),
                     "; did you mean 'relu'? (relu(x): max(x, 0))");
    ck_assert_str_eq(fe_builtin_hint("zzzzzz", hint, sizeof hint), "");
}
END_TEST

START_TEST(test_integer_index_range)
{
    Fixture f;
    ck_assert_int_eq(shape(&f, "A[i,j] = const([[1,2],[3,4]])\nB[j] = A[2,j]\n", NULL),
                     FUSE_E_SHAPE);
    ck_assert_ptr_nonnull(strstr(message(&f), "out of range"));
    done(&f);
    ck_assert_int_eq(shape(&f, "A[i,j] = const([[1,2],[3,4]])\nB[j] = A[-2,j]\n", NULL), FUSE_OK);
    done(&f);
}
END_TEST

START_TEST(test_order_and_recursion)
{
    Fixture f;
    ck_assert_int_eq(build(&f, "C[i] = B[i]\nB[i] = A[i]\nA[i] = const([1,2])\n"
                               "P(x,y) = E(x,y) + P(x,z) E(z,y)\nE(x,y) = const([[0,1],[0,0]])\n"),
                     FUSE_OK);
    /* dependencies first: A, B, C; E before the recursive P */
    const char *order[5];
    for (int g = 0; g < f.ir->n_groups; g++)
        order[g] = f.ir->tensors[f.ir->groups[g]->tensor]->name;
    ck_assert_int_eq(f.ir->n_groups, 5);
    ck_assert_str_eq(order[0], "A");
    ck_assert_str_eq(order[1], "B");
    ck_assert_str_eq(order[2], "C");
    ck_assert_str_eq(order[3], "E");
    ck_assert_str_eq(order[4], "P");
    ck_assert(f.ir->groups[4]->is_recursive);
    ck_assert(!f.ir->groups[0]->is_recursive);
    ck_assert(ir_tensor_find(f.ir, "P")->is_read_prev);
    done(&f);
}
END_TEST

START_TEST(test_explain_lists_axes)
{
    Fixture f;
    ck_assert_int_eq(shape(&f, "A[i,k] = const([[1,2],[3,4]])\nB[k,j] = const([[1],[2]])\n"
                               "C[i,j] = A[i,k] B[k,j]\nM[i] max= A[i,k]\n\"c.npy\" = C[i,j]\n"
                               "export C\n", NULL), FUSE_OK);
    char *text = ir_explain(f.ir, false);
    ck_assert_ptr_nonnull(strstr(text, "C[i,j] = A[i,k] B[k,j]  lhs: i,j | rhs-only: k | "
                                       "projected: k | op: sum"));
    ck_assert_ptr_nonnull(strstr(text, "projected: k | op: max"));
    ck_assert_ptr_nonnull(strstr(text, "\"c.npy\" <- "));
    free(text);
    char *json = ir_explain(f.ir, true);
    ck_assert_ptr_nonnull(strstr(json, "\"projected_axes\""));
    ck_assert_ptr_nonnull(strstr(json, "\"operator\": \"max\""));
    free(json);
    done(&f);
}
END_TEST

static Suite *shapes_suite(void)
{
    Suite *s = suite_create("shapes");
    TCase *tc = tcase_create("inference");
    tcase_add_test(tc, test_sizes_flow_through_equations);
    tcase_add_test(tc, test_broadcast_size_from_later_use);
    tcase_add_test(tc, test_source_facts_exact_and_lower_bound);
    tcase_add_test(tc, test_lower_bound_only_takes_largest);
    tcase_add_test(tc, test_exact_below_lower_bound_is_error);
    tcase_add_test(tc, test_conflict_names_both_origins);
    tcase_add_test(tc, test_causal_mask_conflict_mentions_origin_line);
    tcase_add_test(tc, test_uninferable_axis);
    tcase_add_test(tc, test_unknown_tensor_and_rank_errors);
    tcase_add_test(tc, test_did_you_mean);
    tcase_add_test(tc, test_integer_index_range);
    tcase_add_test(tc, test_order_and_recursion);
    tcase_add_test(tc, test_explain_lists_axes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(shapes_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
