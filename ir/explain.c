/*
 * explain.c: the static explanation of a program (text and JSON, through jansson)
 * and the IR dump used by `fuse-jit emit --what=ir`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ir.h"
#include "support.h"

static const char *const MAP_FN_NAMES[] = {
    "copy", "step", "relu", "sig", "gelu", "exp", "log", "tanh",
    "sqrt", "abs", "sin", "cos", "causal_mask", "even", "odd", "recip",
    "pow", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
};
_Static_assert(sizeof MAP_FN_NAMES / sizeof MAP_FN_NAMES[0] == FN_COUNT, "MapFn names");

static const char *const REDUCE_NAMES[] = {"sum", "max", "avg", "prod", "min"};
_Static_assert(sizeof REDUCE_NAMES / sizeof REDUCE_NAMES[0] == RED_COUNT, "ReduceOp names");

static const char *const OP_KIND_NAMES[] = {
    "join", "map", "softmax", "lnorm", "masked_softmax", "case", "rope", "host",
};
_Static_assert(sizeof OP_KIND_NAMES / sizeof OP_KIND_NAMES[0] == OP_COUNT, "OpKind names");

const char *ir_op_kind_name(OpKind k) { return k < OP_COUNT ? OP_KIND_NAMES[k] : "?"; }
const char *ir_map_fn_name(MapFn fn) { return fn < FN_COUNT ? MAP_FN_NAMES[fn] : "?"; }
const char *ir_reduce_name(ReduceOp r) { return r < RED_COUNT ? REDUCE_NAMES[r] : "?"; }

/* ---- per-statement axis summary ---- */

typedef struct AxisSummary {
    const char *lhs[FUSE_MAX_RANK];
    int n_lhs;
    const char *rhs_only[64];
    int n_rhs_only;
    const char *projected[64];
    int n_projected;
    ReduceOp red;
} AxisSummary;

static void add_unique(const char **list, int *n, int cap, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(list[i], name) == 0)
            return;
    if (*n < cap)
        list[(*n)++] = name;
}

static bool op_is_out_axis(const Op *op, int rank, int a)
{
    for (int k = 0; k < rank; k++)
        if (op->out_axis[k] == a)
            return true;
    return false;
}

/* The axes of equation statement st, from its ops: they are all in the group of
 * its left-hand side, so only that group is read (reading every group
 * for every statement made explain quadratic in the program's size). */
static void summarise(const IrProgram *p, const Stmt *st, AxisSummary *sum)
{
    memset(sum, 0, sizeof *sum);
    for (int k = 0; k < st->n_indices; k++)
        add_unique(sum->lhs, &sum->n_lhs, FUSE_MAX_RANK, st->indices[k].name);
    const IrTensor *lhs = ir_tensor_find(p, st->name);
    bool is_one = lhs && lhs->kind == TEN_DEFINED && lhs->group >= 0
                  && lhs->group < p->n_groups && p->groups[lhs->group]->tensor == lhs->id;
    for (int g = is_one ? lhs->group : 0; g < (is_one ? lhs->group + 1 : p->n_groups); g++)
        for (int i = 0; i < p->groups[g]->n_ops; i++) {
            const Op *op = p->groups[g]->ops[i];
            if (op->stmt != st)
                continue;
            int rank = p->tensors[op->out]->rank;
            for (int a = 0; a < op->n_axes; a++) {
                bool in_lhs = false;
                for (int k = 0; k < sum->n_lhs; k++)
                    in_lhs |= strcmp(sum->lhs[k], op->axes[a].name) == 0;
                if (!in_lhs)
                    add_unique(sum->rhs_only, &sum->n_rhs_only, 64, op->axes[a].name);
                if (op->is_contribution && !op_is_out_axis(op, rank, a))
                    add_unique(sum->projected, &sum->n_projected, 64, op->axes[a].name);
            }
            if (op->is_contribution)
                sum->red = op->red;
        }
}

static void bjoin(SupBuf *b, const char *const *names, int n)
{
    if (n == 0)
        sup_buf_printf(b, "-");
    for (int i = 0; i < n; i++)
        sup_buf_printf(b, "%s%s", i ? "," : "", names[i]);
}

static void shape_text(SupBuf *b, const IrTensor *t)
{
    sup_buf_printf(b, "(");
    for (int k = 0; k < t->rank; k++)
        sup_buf_printf(b, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    sup_buf_printf(b, t->rank == 1 ? ",)" : ")");
}

/* ---- text ---- */

static void explain_text_sources(const IrProgram *p, SupBuf *b)
{
    sup_buf_printf(b, "sources:\n");
    for (int i = 0; i < p->n_tensors; i++) {
        const IrTensor *t = p->tensors[i];
        if (t->kind != TEN_SOURCE)
            continue;
        sup_buf_printf(b, "  %s[", t->name);
        bjoin(b, t->axis_names, t->rank);
        sup_buf_printf(b, "] <- \"%s\"", t->path);
        if (p->is_shaped) {
            sup_buf_printf(b, " shape=");
            shape_text(b, t);
        }
        sup_buf_printf(b, "%s\n", t->is_bool ? " boolean" : "");
    }
}

static void explain_text_equations(const IrProgram *p, SupBuf *b)
{
    sup_buf_printf(b, "equations:\n");
    for (int i = 0; i < p->ast->n_stmts; i++) {
        const Stmt *st = p->ast->stmts[i];
        if (st->kind != ST_EQUATION)
            continue;
        AxisSummary s;
        summarise(p, st, &s);
        sup_buf_printf(b, "  [%d:%d] %s  lhs: ", st->span.line, st->span.col, st->text);
        bjoin(b, s.lhs, s.n_lhs);
        sup_buf_printf(b, " | rhs-only: ");
        bjoin(b, s.rhs_only, s.n_rhs_only);
        sup_buf_printf(b, " | projected: ");
        bjoin(b, s.projected, s.n_projected);
        sup_buf_printf(b, " | op: %s\n", ir_reduce_name(s.red));
    }
}

static void explain_text_rest(const IrProgram *p, SupBuf *b)
{
    sup_buf_printf(b, "sinks:\n");
    for (int i = 0; i < p->n_sinks; i++)
        sup_buf_printf(b, "  \"%s\" <- %s%s\n", p->sinks[i]->path, p->sinks[i]->stmt->text,
                p->sinks[i]->is_topk ? " (top-k)" : "");
    sup_buf_printf(b, "order:\n");
    for (int g = 0; g < p->n_groups; g++) {
        const Group *grp = p->groups[g];
        sup_buf_printf(b, "  %d. %s (component %d%s)\n", g + 1, p->tensors[grp->tensor]->name,
                grp->component, grp->is_recursive ? ", recursive" : "");
    }
    sup_buf_printf(b, "exports:");
    for (int i = 0; i < p->n_exports; i++)
        sup_buf_printf(b, " %s", p->tensors[p->exports[i]]->name);
    sup_buf_printf(b, "\n");
}

/* ---- JSON ---- */

static json_t *json_names(const char *const *names, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static json_t *json_sources(const IrProgram *p)
{
    json_t *a = json_array();
    for (int i = 0; i < p->n_tensors; i++) {
        const IrTensor *t = p->tensors[i];
        if (t->kind != TEN_SOURCE)
            continue;
        json_t *o = json_pack("{s:s, s:o, s:s, s:b}", "name", t->name, "axes",
                              json_names(t->axis_names, t->rank), "path", t->path, "boolean",
                              t->is_bool);
        if (p->is_shaped) {
            json_t *shape = json_array();
            for (int k = 0; k < t->rank; k++)
                json_array_append_new(shape, json_integer(t->shape[k]));
            json_object_set_new(o, "shape", shape);
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *json_equations(const IrProgram *p)
{
    json_t *a = json_array();
    for (int i = 0; i < p->ast->n_stmts; i++) {
        const Stmt *st = p->ast->stmts[i];
        if (st->kind != ST_EQUATION)
            continue;
        AxisSummary s;
        summarise(p, st, &s);
        json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:i, s:o, s:o, s:o, s:s}",
                                           "lhs", st->name, "text", st->text, "line",
                                           st->span.line, "column", st->span.col, "lhs_axes",
                                           json_names(s.lhs, s.n_lhs), "rhs_only_axes",
                                           json_names(s.rhs_only, s.n_rhs_only),
                                           "projected_axes",
                                           json_names(s.projected, s.n_projected), "operator",
                                           ir_reduce_name(s.red)));
    }
    return a;
}

static json_t *json_rest(const IrProgram *p, json_t *root)
{
    json_t *sinks = json_array(), *order = json_array(), *exports = json_array();
    for (int i = 0; i < p->n_sinks; i++)
        json_array_append_new(sinks, json_pack("{s:s, s:s, s:b}", "path", p->sinks[i]->path,
                                               "expr", p->sinks[i]->stmt->text, "topk",
                                               p->sinks[i]->is_topk));
    for (int g = 0; g < p->n_groups; g++)
        json_array_append_new(order, json_pack("{s:s, s:i, s:b}", "tensor",
                                               p->tensors[p->groups[g]->tensor]->name,
                                               "component", p->groups[g]->component,
                                               "recursive", p->groups[g]->is_recursive));
    for (int i = 0; i < p->n_exports; i++)
        json_array_append_new(exports, json_string(p->tensors[p->exports[i]]->name));
    json_object_set_new(root, "sinks", sinks);
    json_object_set_new(root, "order", order);
    json_object_set_new(root, "exports", exports);
    return root;
}

char *ir_explain(const IrProgram *p, bool json)
{
    if (json) {
        json_t *root = json_object();
        json_object_set_new(root, "sources", json_sources(p));
        json_object_set_new(root, "equations", json_equations(p));
        json_rest(p, root);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        return s;
    }
    SupBuf b = {0};
    explain_text_sources(p, &b);
    explain_text_equations(p, &b);
    explain_text_rest(p, &b);
    return sup_buf_finish(&b);
}

/* ---- IR dump ---- */

static const char *const KIND_NAMES[] = {"defined", "source", "const", "temp"};
_Static_assert(sizeof KIND_NAMES / sizeof KIND_NAMES[0] == TEN_COUNT, "TensorKind names");

static void dump_operand(const IrProgram *p, const Op *op, const Operand *o, SupBuf *b)
{
    const IrTensor *t = p->tensors[o->tensor];
    sup_buf_printf(b, " %s%s[", t->name, o->reads_prev ? "@prev" : "");
    for (int k = 0; k < t->rank; k++) {
        if (o->kind[k] == SL_FIXED)
            sup_buf_printf(b, "%s%lld", k ? "," : "", (long long)o->offset[k]);
        else
            sup_buf_printf(b, "%s%s%+lld", k ? "," : "", op->axes[o->axis[k]].name,
                    (long long)o->offset[k]);
    }
    sup_buf_printf(b, "]");
}

/* tucker: an OP_HOST's function and parameters. */
static void dump_host(const Op *op, int rank, SupBuf *b)
{
    sup_buf_printf(b, " fn=%s threshold=%g ranks=(", op->host_fn == HOST_TUCKER ? "tucker_dense" : "?",
            op->param[0]);
    for (int k = 0; k < rank; k++)
        sup_buf_printf(b, "%s%lld", k ? "," : "", (long long)op->host_ranks[k]);
    sup_buf_printf(b, ")");
}

static void dump_op(const IrProgram *p, const Op *op, SupBuf *b)
{
    const IrTensor *out = p->tensors[op->out];
    sup_buf_printf(b, "    %s %s[", ir_op_kind_name(op->kind), out->name);
    for (int k = 0; k < out->rank; k++)
        sup_buf_printf(b, "%s%s", k ? "," : "", op->axes[op->out_axis[k]].name);
    sup_buf_printf(b, "] loops(");
    for (int a = 0; a < op->n_axes; a++)
        sup_buf_printf(b, "%s%s:%lld", a ? "," : "", op->axes[a].name, (long long)op->axes[a].size);
    sup_buf_printf(b, ")");
    if (op->kind == OP_JOIN)
        sup_buf_printf(b, " %s coef=%g%s%s%s", ir_reduce_name(op->red), op->coef,
                op->is_rsqrt_scaled ? "/sqrt(n)" : "", op->is_init ? " init" : "",
                op->is_bool_out ? " bool" : "");
    else if (op->kind == OP_MAP)
        sup_buf_printf(b, " fn=%s", ir_map_fn_name(op->fn));
    else if (op->kind == OP_LNORM || op->kind == OP_ROPE)
        sup_buf_printf(b, " axis=%d param=%g", op->axis, op->param[0]);
    else if (op->kind == OP_MSOFTMAX)
        sup_buf_printf(b, " axis=%d%s", op->axis, op->param[1] != 0 ? " fill" : "");
    else if (op->kind == OP_SOFTMAX)
        sup_buf_printf(b, " axis=%d", op->axis);
    else if (op->kind == OP_HOST)
        dump_host(op, out->rank, b);
    for (int i = 0; i < op->n_in; i++)
        dump_operand(p, op, &op->in[i], b);
    sup_buf_printf(b, "\n");
}

static void dump_groups(const IrProgram *p, Group **gs, int n, const char *what, SupBuf *b)
{
    for (int g = 0; g < n; g++) {
        sup_buf_printf(b, "%s %d -> %s%s:\n", what, g, p->tensors[gs[g]->tensor]->name,
                gs[g]->is_recursive ? " (recursive)" : "");
        for (int i = 0; i < gs[g]->n_ops; i++)
            dump_op(p, gs[g]->ops[i], b);
    }
}

char *ir_dump(const IrProgram *p)
{
    SupBuf b = {0};
    sup_buf_printf(&b, "tensors:\n");
    for (int i = 0; i < p->n_tensors; i++) {
        const IrTensor *t = p->tensors[i];
        sup_buf_printf(&b, "  t%d %s %s%s shape=", i, KIND_NAMES[t->kind], t->name,
                t->is_bool ? " bool" : "");
        shape_text(&b, t);
        sup_buf_printf(&b, "\n");
    }
    dump_groups(p, p->groups, p->n_groups, "group", &b);
    dump_groups(p, p->sink_groups, p->n_sink_groups, "sink", &b);
    return sup_buf_finish(&b);
}
