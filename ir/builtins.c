/*
 * builtins.c: the builtins of SPEC §5 beyond the elementwise ones: reductions over
 * one axis, layer norm, masked softmax, case, attention and rope.
 *
 * Each builder checks its arguments (count, keywords, axes) with positioned errors,
 * materialises its arguments as Values (calls.c) and adds ops that write one new
 * temporary whose axes follow the builtin's result rule:
 *   reductions       the argument's axes minus the reduced one (a JOIN);
 *   lnorm, masked_softmax, rope
 *                    the argument's axes (one row-wise op, lower/emit_rows.c);
 *   case, pow, less, ... (the comparisons)
 *                    the union of its operands' axes, first appearance first;
 *   attention        (q's first axis, v's other axes), built from a JOIN for the
 *                    scores, a masked softmax over a call-local key axis and a JOIN
 *                    with v;
 *   tucker_dense     the argument's axes (an OP_HOST: runtime/tucker.c).
 * Alignment is by axis name everywhere; attention's key axis is renamed to a name
 * no program can write ("%key3"), so self-attention over one axis name works.
 */
#include <string.h>
#include <strings.h>

#include "build.h"

/* ---- small helpers ---- */

static int slot_of(const char *const *names, int n, const char *name)
{
    for (int s = 0; s < n; s++)
        if (strcmp(names[s], name) == 0)
            return s;
    return -1;
}

static bool fail_call(Builder *b, Span span, const char *fmt, const char *name)
{
    ir_fail(b, FUSE_E_SHAPE, span, fmt, name);
    return false;
}

/* A numeric keyword value: a number or boolean literal, possibly negated. */
static bool number_arg(Builder *b, const Kwarg *kw, double *out)
{
    const Expr *v = kw->value;
    double sign = 1.0;
    while (v->kind == EX_GROUP || v->kind == EX_NEG) {
        if (v->kind == EX_NEG)
            sign = -sign;
        v = v->items[0];
    }
    if (v->kind != EX_NUMBER && v->kind != EX_BOOL)
        return fail_call(b, kw->value->span, "keyword argument '%s' takes a number", kw->name);
    *out = sign * v->num;
    return true;
}

/* A tensor-valued argument. A bare name of a tensor of rank > 0 (mask=M) is the
 * whole tensor with its declared axis names (notes B §6.1). */
static bool value_arg(Builder *b, const Expr *e, const NameList *ref, Value *out)
{
    if (e->kind == EX_TENSOR && e->n_indices == 0) {
        IrTensor *t = ir_tensor_find(b->p, e->name);
        if (t && t->rank > 0) {
            memset(out, 0, sizeof *out);
            out->t = t;
            out->rank = t->rank;
            for (int s = 0; s < t->rank; s++)
                out->names[s] = t->axis_names[s];
            return true;
        }
    }
    return ir_build_value(b, e, ref, out);
}

/* The slot an axis= keyword (or the default rule) selects in x. */
static bool select_axis(Builder *b, const Expr *call, const Value *x, int *slot)
{
    if (x->rank == 0)
        return fail_call(b, call->span, "%s needs an argument with at least one axis",
                         call->name);
    *slot = ir_default_axis(b, x);
    const Kwarg *axis = ir_kwarg_find(call, "axis");
    return !axis || ir_axis_arg(b, axis->value, x, slot);
}

/* ---- reductions: reduce_max, max, reduce_mean, mean, sum ---- */

static IrTensor *build_reduce(Builder *b, const Expr *call, const NameList *ref, ReduceOp red)
{
    static const char *const kw[] = {"axis"};
    Value x;
    int slot;
    if (!ir_check_positional(b, call, 1, 1) || !ir_check_kwargs(b, call, kw, 1) ||
        !value_arg(b, call->items[0], ref, &x) || !select_axis(b, call, &x, &slot))
        return NULL;
    const char *names[FUSE_MAX_RANK];
    int n = 0;
    for (int s = 0; s < x.rank; s++)
        if (s != slot)
            names[n++] = x.names[s];
    IrTensor *out = ir_temp_new(b, ir_reduce_name(red), n, names, call->span);
    Op *op = out ? ir_op_new(b, OP_JOIN, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, names, n) ||
        !ir_value_operand(b, op, x.t, x.names, call->span))
        return NULL;
    op->red = red;
    op->is_init = true;
    ir_group_push(b, op);
    return out;
}

static IrTensor *build_sum(Builder *b, const Expr *call, const NameList *ref)
{
    return build_reduce(b, call, ref, RED_SUM);
}

static IrTensor *build_max(Builder *b, const Expr *call, const NameList *ref)
{
    return build_reduce(b, call, ref, RED_MAX);
}

static IrTensor *build_mean(Builder *b, const Expr *call, const NameList *ref)
{
    return build_reduce(b, call, ref, RED_AVG);
}

/* ---- lnorm, layernorm, layer_norm ---- */

static IrTensor *build_lnorm(Builder *b, const Expr *call, const NameList *ref)
{
    static const char *const kw[] = {"axis", "eps"};
    Value x;
    int slot;
    double eps = 1e-5;
    const Kwarg *k_eps = ir_kwarg_find(call, "eps");
    if (!ir_check_positional(b, call, 1, 1) || !ir_check_kwargs(b, call, kw, 2) ||
        (k_eps && !number_arg(b, k_eps, &eps)) || !value_arg(b, call->items[0], ref, &x) ||
        !select_axis(b, call, &x, &slot))
        return NULL;
    if (eps < 0) {
        fail_call(b, k_eps->value->span, "%s's eps must not be negative", call->name);
        return NULL;
    }
    Op *op;
    IrTensor *out = ir_map_output(b, "lnorm", &x, &op);
    if (!out)
        return NULL;
    op->kind = OP_LNORM;
    op->axis = slot;
    op->param[0] = eps;
    ir_group_push(b, op);
    return out;
}

/* ---- masked_softmax ---- */

/* Adds mask operand m to op, its axes renamed by `names`; every one must be an out
 * axis of op (the mask broadcasts over the others). */
static bool mask_operand(Builder *b, Op *op, const Value *m, const char *const *names,
                         const char *const *out_names, int out_rank, Span span)
{
    for (int s = 0; s < m->rank; s++)
        if (slot_of(out_names, out_rank, names[s]) < 0)
            return fail_call(b, span, "the mask has axis '%s', which the argument lacks",
                             names[s]);
    return ir_value_operand(b, op, m->t, names, span);
}

/* An OP_MSOFTMAX of x along `slot` into a new temporary; mask may be NULL. */
static IrTensor *msoftmax_op(Builder *b, Value *x, int slot, const Value *mask,
                             const char *const *mask_names, Span span, Op **op_out)
{
    Op *op;
    IrTensor *out = ir_map_output(b, "masked_softmax", x, &op);
    if (!out)
        return NULL;
    op->kind = mask ? OP_MSOFTMAX : OP_SOFTMAX;
    op->axis = slot;
    if (mask && !mask_operand(b, op, mask, mask_names, x->names, x->rank, span))
        return NULL;
    *op_out = op;
    return out;
}

static IrTensor *build_masked_softmax(Builder *b, const Expr *call, const NameList *ref)
{
    static const char *const kw[] = {"mask", "axis", "fill"};
    const Kwarg *k_mask = ir_kwarg_find(call, "mask"), *k_fill = ir_kwarg_find(call, "fill");
    Value x, m;
    int slot;
    double fill = 0;
    if (!ir_check_positional(b, call, 1, k_mask ? 1 : 2) || !ir_check_kwargs(b, call, kw, 3) ||
        (k_fill && !number_arg(b, k_fill, &fill)) || !value_arg(b, call->items[0], ref, &x) ||
        !select_axis(b, call, &x, &slot))
        return NULL;
    const Expr *me = call->n_items == 2 ? call->items[1] : k_mask ? k_mask->value : NULL;
    if (me && !value_arg(b, me, ref, &m))
        return NULL;
    Op *op;
    IrTensor *out = msoftmax_op(b, &x, slot, me ? &m : NULL, m.names, me ? me->span : call->span,
                                &op);
    if (!out)
        return NULL;
    op->param[0] = fill;
    op->param[1] = k_fill ? 1.0 : 0.0;
    ir_group_push(b, op);
    return out;
}

/* ---- case ---- */

/* The union of the operands' axis names, in order of first appearance. */
static bool case_names(Builder *b, const Expr *call, const Value *vals, const char **names,
                       int *n)
{
    *n = 0;
    for (int i = 0; i < call->n_items; i++)
        for (int s = 0; s < vals[i].rank; s++) {
            if (slot_of(names, *n, vals[i].names[s]) >= 0)
                continue;
            if (*n >= FUSE_MAX_RANK)
                return fail_call(b, call->span, "case's result would have more than 8 axes%s",
                                 "");
            names[(*n)++] = vals[i].names[s];
        }
    return true;
}

static IrTensor *build_case(Builder *b, const Expr *call, const NameList *ref)
{
    int n = call->n_items;
    if (n < 2) {
        fail_call(b, call->span, "case takes pairs of condition and value, then an optional "
                  "default%s; got fewer than 2 arguments", "");
        return NULL;
    }
    if (!ir_check_kwargs(b, call, NULL, 0))
        return NULL;
    Value *vals = arena_alloc(b->p->arena, sizeof *vals * (size_t)n);
    if (!vals)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!value_arg(b, call->items[i], ref, &vals[i]))
            return NULL;
    const char *names[FUSE_MAX_RANK];
    int rank;
    if (!case_names(b, call, vals, names, &rank))
        return NULL;
    IrTensor *out = ir_temp_new(b, "case", rank, names, call->span);
    Op *op = out ? ir_op_new(b, OP_CASE, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, names, rank))
        return NULL;
    for (int i = 0; i < n; i++)
        if (!ir_value_operand(b, op, vals[i].t, vals[i].names, call->items[i]->span))
            return NULL;
    ir_group_push(b, op);
    return out;
}

/* ---- binary elementwise: pow and the comparisons (the v2 operators) ---- */

static const struct {
    const char *name;
    MapFn fn;
} BINARY_FNS[] = {
    {"pow", FN_POW},          {"less", FN_LT},  {"less_equal", FN_LE},
    {"greater", FN_GT},       {"greater_equal", FN_GE},
    {"equal", FN_EQ},         {"not_equal", FN_NE},
};

/* fn(x, y) over the union of both operands' axes (a MAP with two operands). */
static IrTensor *build_binary(Builder *b, const Expr *call, const NameList *ref)
{
    MapFn fn = FN_COUNT;
    for (size_t i = 0; i < sizeof BINARY_FNS / sizeof BINARY_FNS[0]; i++)
        if (strcasecmp(call->name, BINARY_FNS[i].name) == 0)
            fn = BINARY_FNS[i].fn;
    Value v[2];
    if (fn == FN_COUNT || !ir_check_positional(b, call, 2, 2) ||
        !ir_check_kwargs(b, call, NULL, 0) || !value_arg(b, call->items[0], ref, &v[0]) ||
        !value_arg(b, call->items[1], ref, &v[1]))
        return NULL;
    const char *names[FUSE_MAX_RANK];
    int rank;
    if (!case_names(b, call, v, names, &rank))
        return NULL;
    IrTensor *out = ir_temp_new(b, ir_map_fn_name(fn), rank, names, call->span);
    Op *op = out ? ir_op_new(b, OP_MAP, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, names, rank))
        return NULL;
    op->fn = fn;
    for (int i = 0; i < 2; i++)
        if (!ir_value_operand(b, op, v[i].t, v[i].names, call->items[i]->span))
            return NULL;
    ir_group_push(b, op);
    return out;
}

/* ---- attention ---- */

typedef struct Attn {
    Value q, k, v;
    const char *key;                     /* the call-local key axis name */
    const char *kn[FUSE_MAX_RANK];       /* k's names, slot 0 renamed to key */
    const char *vn[FUSE_MAX_RANK];       /* v's names, slot 0 renamed to key */
    const char *sn[2];                   /* scores: (query axis, key) */
} Attn;

/* Reads q, k, v and checks their axes: k's feature axes are q's, by name. */
static bool attn_values(Builder *b, const Expr *call, const NameList *ref, Attn *a)
{
    if (!value_arg(b, call->items[0], ref, &a->q) || !value_arg(b, call->items[1], ref, &a->k) ||
        !value_arg(b, call->items[2], ref, &a->v))
        return false;
    if (a->q.rank < 1 || a->k.rank < 1 || a->v.rank < 1)
        return fail_call(b, call->span, "attention's q, k and v need a position axis first%s",
                         "");
    a->key = arena_printf(b->p->arena, "%%key%d", b->n_temps);
    if (!a->key)
        return false;
    for (int s = 0; s < a->k.rank; s++)
        a->kn[s] = s ? a->k.names[s] : a->key;
    for (int s = 0; s < a->v.rank; s++)
        a->vn[s] = s ? a->v.names[s] : a->key;
    a->sn[0] = a->q.names[0];
    a->sn[1] = a->key;
    for (int s = 1; s < a->k.rank; s++)
        if (slot_of(a->q.names + 1, a->q.rank - 1, a->k.names[s]) < 0)
            return fail_call(b, call->items[1]->span,
                             "attention: k's feature axis '%s' is not an axis of q",
                             a->k.names[s]);
    for (int s = 1; s < a->q.rank; s++)
        if (slot_of(a->k.names + 1, a->k.rank - 1, a->q.names[s]) < 0)
            return fail_call(b, call->items[0]->span,
                             "attention: q's feature axis '%s' is not an axis of k",
                             a->q.names[s]);
    return true;
}

/* The scale: a number (coef), a scalar tensor (an operand), or 1/sqrt(d). */
static bool attn_scale(Builder *b, const Expr *call, const NameList *ref, Op *op)
{
    const Kwarg *kw = ir_kwarg_find(call, "scale");
    if (!kw) {
        op->is_rsqrt_scaled = true;
        return true;
    }
    const Expr *v = kw->value;
    while (v->kind == EX_GROUP || v->kind == EX_NEG)
        v = v->items[0];
    if (v->kind == EX_NUMBER)
        return number_arg(b, kw, &op->coef);
    Value s;
    if (!value_arg(b, kw->value, ref, &s))
        return false;
    if (s.rank != 0)
        return fail_call(b, kw->value->span, "attention's scale must be a scalar%s", "");
    return ir_value_operand(b, op, s.t, s.names, kw->value->span);
}

/* scores[query, key] = scale * sum over features of q * k. */
static IrTensor *attn_scores(Builder *b, const Expr *call, const NameList *ref, Attn *a)
{
    IrTensor *out = ir_temp_new(b, "scores", 2, a->sn, call->span);
    Op *op = out ? ir_op_new(b, OP_JOIN, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, a->sn, 2) ||
        !ir_value_operand(b, op, a->q.t, a->q.names, call->items[0]->span) ||
        !ir_value_operand(b, op, a->k.t, a->kn, call->items[1]->span) ||
        !attn_scale(b, call, ref, op))
        return NULL;
    op->red = RED_SUM;
    op->is_init = true;
    ir_group_push(b, op);
    return out;
}

static bool attn_causal(Builder *b, const Expr *call, bool *is_causal)
{
    const Kwarg *kw = ir_kwarg_find(call, "causal");
    double v = 0;
    if (kw && !number_arg(b, kw, &v))
        return false;
    *is_causal = v != 0;
    return true;
}

/* The user mask renamed onto (query, key): its last axis is the key axis, a first
 * axis of a rank-2 mask the query axis. */
static bool attn_user_mask(Builder *b, const Expr *me, const NameList *ref, Attn *a, Value *m)
{
    if (!value_arg(b, me, ref, m))
        return false;
    if (m->rank < 1 || m->rank > 2)
        return fail_call(b, me->span, "attention's mask needs 1 axis (keys) or 2 (queries, "
                         "keys)%s", "");
    m->names[m->rank - 1] = a->key;
    if (m->rank == 2)
        m->names[0] = a->sn[0];
    return true;
}

/* The mask over (query, key): the user's, the causal one, or their product (AND). */
static bool attn_mask(Builder *b, const Expr *call, const NameList *ref, Attn *a, Value *mask,
                      bool *has_mask)
{
    const Kwarg *kw = ir_kwarg_find(call, "mask");
    const Expr *me = call->n_items == 4 ? call->items[3] : kw ? kw->value : NULL;
    bool is_causal;
    Value user;
    if (!attn_causal(b, call, &is_causal) || (me && !attn_user_mask(b, me, ref, a, &user)))
        return false;
    *has_mask = me || is_causal;
    if (!is_causal) {
        *mask = user;
        return true;
    }
    IrTensor *t = ir_temp_new(b, "causal", 2, a->sn, call->span);
    Op *op = t ? ir_op_new(b, OP_MAP, t->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, a->sn, 2))
        return false;
    op->fn = FN_CAUSAL;
    ir_group_push(b, op);
    if (me) {
        IrTensor *both = ir_temp_new(b, "mask", 2, a->sn, call->span);
        Op *and = both ? ir_op_new(b, OP_JOIN, both->id) : NULL;
        if (!and || !ir_op_bind_out(b, and, a->sn, 2) ||
            !ir_value_operand(b, and, t, a->sn, call->span) ||
            !ir_value_operand(b, and, user.t, user.names, me->span))
            return false;
        and->is_init = true;
        ir_group_push(b, and);
        t = both;
    }
    *mask = (Value){.t = t, .rank = 2, .names = {a->sn[0], a->sn[1]}};
    return true;
}

static IrTensor *build_attention(Builder *b, const Expr *call, const NameList *ref)
{
    static const char *const kw[] = {"mask", "scale", "causal"};
    Attn a;
    memset(&a, 0, sizeof a);
    Value mask, sv;
    bool has_mask;
    if (!ir_check_positional(b, call, 3, ir_kwarg_find(call, "mask") ? 3 : 4) ||
        !ir_check_kwargs(b, call, kw, 3) || !attn_values(b, call, ref, &a))
        return NULL;
    IrTensor *scores = attn_scores(b, call, ref, &a);
    if (!scores || !attn_mask(b, call, ref, &a, &mask, &has_mask))
        return NULL;
    sv = (Value){.t = scores, .rank = 2, .names = {a.sn[0], a.sn[1]}};
    Op *sm;
    IrTensor *w = msoftmax_op(b, &sv, 1, has_mask ? &mask : NULL, mask.names, call->span, &sm);
    if (!w)
        return NULL;
    ir_group_push(b, sm);
    const char *names[FUSE_MAX_RANK] = {a.sn[0]};
    for (int s = 1; s < a.v.rank; s++) {
        if (slot_of(names, s, a.v.names[s]) >= 0) {
            fail_call(b, call->items[2]->span, "attention's result would have axis '%s' twice",
                      a.v.names[s]);
            return NULL;
        }
        names[s] = a.v.names[s];
    }
    IrTensor *out = ir_temp_new(b, "attention", a.v.rank, names, call->span);
    Op *op = out ? ir_op_new(b, OP_JOIN, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, names, a.v.rank) ||
        !ir_value_operand(b, op, w, a.sn, call->span) ||
        !ir_value_operand(b, op, a.v.t, a.vn, call->items[2]->span))
        return NULL;
    op->is_init = true;
    ir_group_push(b, op);
    return out;
}

/* ---- rope ---- */

static IrTensor *build_rope(Builder *b, const Expr *call, const NameList *ref)
{
    static const char *const kw[] = {"base"};
    const Kwarg *k_base = ir_kwarg_find(call, "base");
    double base = 10000.0;
    Value x;
    if (!ir_check_positional(b, call, 1, 1) || !ir_check_kwargs(b, call, kw, 1) ||
        (k_base && !number_arg(b, k_base, &base)) || !value_arg(b, call->items[0], ref, &x))
        return NULL;
    if (base <= 0) {
        fail_call(b, k_base->value->span, "rope's base must be positive%s", "");
        return NULL;
    }
    if (x.rank < 2) {
        fail_call(b, call->span, "rope needs a position axis and a feature axis%s", "");
        return NULL;
    }
    Op *op;
    IrTensor *out = ir_map_output(b, "rope", &x, &op);
    if (!out)
        return NULL;
    op->kind = OP_ROPE;
    op->axis = x.rank - 1;
    op->param[0] = base;
    ir_group_push(b, op);
    return out;
}

/* ---- tucker_dense (tucker) ---- */

/* A positive integer literal (ranks). */
static bool rank_literal(Builder *b, const Expr *v, int64_t *out)
{
    while (v->kind == EX_GROUP)
        v = v->items[0];
    if (v->kind != EX_NUMBER || !v->is_int || v->ival < 1)
        return fail_call(b, v->span, "tucker_dense's rank must be a positive integer or a list "
                         "of them, one per axis%s", "");
    *out = v->ival;
    return true;
}

/* rank: an integer for every mode, or a list with one per axis of x (notes B §6). */
static bool tucker_ranks(Builder *b, const Expr *call, const Expr *re, int rank, Op *op)
{
    if (!re)
        return fail_call(b, call->span, "tucker_dense needs a rank: tucker_dense(x, rank=R) "
                         "or rank=[R1, R2, ...]%s", "");
    const Expr *v = re;
    while (v->kind == EX_GROUP)
        v = v->items[0];
    if (v->kind != EX_LIST) {
        int64_t r;
        if (!rank_literal(b, v, &r))
            return false;
        for (int s = 0; s < rank; s++)
            op->host_ranks[s] = r;
        return true;
    }
    if (v->n_items != rank) {
        const char *msg = arena_printf(b->p->arena, "tucker_dense's rank list needs one rank "
                                       "per axis of its argument: %d ranks for %d axes",
                                       v->n_items, rank);
        return fail_call(b, v->span, "%s", msg ? msg : "tucker_dense's rank list needs one "
                         "rank per axis");
    }
    for (int s = 0; s < rank; s++)
        if (!rank_literal(b, v->items[s], &op->host_ranks[s]))
            return false;
    return true;
}

/* tucker_dense(x, rank=, threshold=0.5): an OP_HOST calling the runtime's truncated
 * HOSVD (runtime/tucker.c); result axes = x's. Rank and threshold may also come
 * positionally (notes B §6). */
static IrTensor *build_tucker(Builder *b, const Expr *call, const NameList *ref)
{
    static const char *const kw[] = {"rank", "threshold"};
    const Kwarg *k_rank = ir_kwarg_find(call, "rank"), *k_thr = ir_kwarg_find(call, "threshold");
    /* Positional order (x, rank, threshold); a keyword ends the positional ones. */
    int max_pos = k_rank ? 1 : k_thr ? 2 : 3;
    Value x;
    if (!ir_check_positional(b, call, 1, max_pos) || !ir_check_kwargs(b, call, kw, 2) ||
        !value_arg(b, call->items[0], ref, &x))
        return NULL;
    const Expr *re = k_rank ? k_rank->value : call->n_items > 1 ? call->items[1] : NULL;
    Kwarg thr_pos = {.name = "threshold"};
    if (call->n_items == 3) {
        thr_pos.value = call->items[2];
        k_thr = &thr_pos;
    }
    double threshold = 0.5;
    if (k_thr && !number_arg(b, k_thr, &threshold))
        return NULL;
    for (int s = 1; s < x.rank; s++) /* the host function reads x's buffer as is */
        if (slot_of(x.names, s, x.names[s]) >= 0) {
            fail_call(b, call->items[0]->span, "tucker_dense's argument has axis '%s' twice",
                      x.names[s]);
            return NULL;
        }
    Op *op;
    IrTensor *out = ir_map_output(b, "tucker_dense", &x, &op);
    if (!out || ((re || x.rank > 0) && !tucker_ranks(b, call, re, x.rank, op)))
        return NULL;
    op->kind = OP_HOST;
    op->host_fn = HOST_TUCKER;
    op->param[0] = threshold;
    ir_group_push(b, op);
    return out;
}

/* ---- the table ---- */

typedef struct Builtin {
    IrBuiltinInfo info;
    BuiltinBuild build; /* NULL: built by calls.c (or the parser: even, odd) */
} Builtin;

#define X3 "X[i] = const([-1.0, 0.0, 2.0])\n"
#define X23 "X[i,j] = const([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])\n"
#define ELEMENTWISE(n, what)                                                                  \
    {{n, NULL, n "(x)", "the axes of x", what, X3 "Y[i] = " n "(X[i])\n", false}, NULL}
#define REDUCTION(n, alias, what, build)                                                      \
    {{n, alias, n "(x, axis=)", "the axes of x without the reduced one", what,                \
      X23 "Y[i] = " n "(X[i,j])\n", false},                                                   \
     build}
#define LNORM(n, alias)                                                                       \
    {{n, alias, n "(x, axis=, eps=1e-5)", "the axes of x",                                    \
      "(x - mean) / sqrt(var + eps) along the axis (population variance)",                  \
      X23 "L[i,j] = " n "(X[i,j])\n", false},                                                 \
     build_lnorm}
#define COMPARISON(n, op)                                                                     \
    {{n, NULL, n "(x, y)", "the union of the axes of x and y", "1 where x " op " y, else 0",  \
      X3 "Y[i] = " n "(X[i], 0)\n", true},                                                    \
     build_binary}

static const Builtin BUILTINS[] = {
    ELEMENTWISE("step", "1 where x > 0, else 0 (NaN gives 0)"),
    ELEMENTWISE("relu", "max(x, 0) (NaN gives 0)"),
    ELEMENTWISE("abs", "|x|"),
    ELEMENTWISE("sqrt", "square root (NaN below 0)"),
    ELEMENTWISE("exp", "natural exponential"),
    ELEMENTWISE("log", "natural logarithm (log(0) is -inf, negative gives NaN)"),
    ELEMENTWISE("sin", "sine, in radians"),
    ELEMENTWISE("cos", "cosine, in radians"),
    ELEMENTWISE("tanh", "hyperbolic tangent"),
    ELEMENTWISE("gelu", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))"),
    {{"sig", NULL, "sig(x, T=t)", "the axes of x",
      "1 / (1 + exp(-x / T)); x > 0 when |T| <= 1e-9 (T: 2nd argument, T=, the schedule, 0)",
      X3 "S[i] = sig(X[i], T=0.5)\n", false},
     NULL},
    {{"recip", NULL, "recip(x)", "the axes of x", "1 / x (what v2's `/` lowers to)",
      X3 "Y[i] = recip(X[i])\n", true},
     NULL},
    {{"softmax", NULL, "softmax(x, axis=)", "the axes of x",
      "exp(x - max) / sum exp(x - max) along the axis (default: a dotted LHS axis, else the "
      "last)",
      X23 "P[i,j.] = softmax(X[i,j])\n", false},
     NULL},
    {{"masked_softmax", NULL, "masked_softmax(x, mask, axis=, fill=)", "the axes of x",
      "a softmax leaving out the cells whose mask is 0 (they are 0 in the result)",
      X23 "M[i,j] = const([[1, 1, 0], [0, 0, 0]])\nP[i,j] = masked_softmax(X[i,j], M[i,j])\n",
      false},
     build_masked_softmax},
    LNORM("lnorm", NULL),
    LNORM("layernorm", "lnorm"),
    LNORM("layer_norm", "lnorm"),
    REDUCTION("reduce_max", NULL, "the maximum along the axis", build_max),
    REDUCTION("max", "reduce_max", "the maximum along the axis", build_max),
    REDUCTION("reduce_mean", NULL, "the mean along the axis", build_mean),
    REDUCTION("mean", "reduce_mean", "the mean along the axis", build_mean),
    REDUCTION("sum", NULL, "the sum along the axis", build_sum),
    {{"concat", NULL, "concat(a, b, ..., axis=)",
      "the first operand's, the joined axis named after the LHS's axis there",
      "joins the operands along one axis (one operand: merges its last two axes)",
      "A[i,j] = const([[1, 2], [3, 4]])\nC[i,k] = concat(A[i,j], A[i,j])\n", false},
     NULL},
    {{"case", NULL, "case(c1, v1, c2, v2, ..., [default])",
      "the union of the arguments' axes, in order of first appearance",
      "the value of the first nonzero condition, else default (0)",
      "X[i] = const([1.0, -2.0, 3.0])\nAbs[i] = case(step(X[i]), X[i], 0 - X[i])\n", false},
     build_case},
    {{"even", NULL, "even(i)", "the one axis i", "1 at positions 0, 2, 4, ... of axis i, else 0",
      X3 "E[i] = X[i] even(i)\n", false},
     NULL},
    {{"odd", NULL, "odd(i)", "the one axis i", "1 at positions 1, 3, 5, ... of axis i, else 0",
      X3 "O[i] = X[i] odd(i)\n", false},
     NULL},
    {{"causal_mask", NULL, "causal_mask(L)", "the LHS's first two axes",
      "an L x L matrix, 1 where the row index is at least the column index",
      "CM[q,k] = causal_mask(3)\n", false},
     NULL},
    {{"const", NULL, "const(value)", "the LHS's axes, by position",
      "a tensor from a number or a rectangular nested list of numbers",
      "M[i,j] = const([[1, 2], [3, 4]])\n", false},
     NULL},
    {{"attention", NULL, "attention(q, k, v, [mask], mask=, scale=, causal=)",
      "q's first axis, then v's axes after its first",
      "scaled dot-product attention: softmax(scale q k) v over the keys (k's, v's first axis)",
      "Q[p,d] = const([[1.0, 0.0], [0.0, 1.0]])\nV[p,e] = const([[1.0, 2.0], [3.0, 4.0]])\n"
      "A[p,e] = attention(Q[p,d], Q[p,d], V[p,e], causal=true)\n",
      false},
     build_attention},
    {{"rope", NULL, "rope(x, base=10000)", "the axes of x",
      "rotary position embedding (first axis: positions, last: features of even size)",
      "X[p,d] = const([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]])\nR[p,d] = rope(X[p,d])\n",
      false},
     build_rope},
    {{"tucker_dense", NULL, "tucker_dense(x, rank=R, threshold=0.5)", "the axes of x",
      "1 where x's truncated higher-order SVD reconstruction exceeds threshold, else 0",
      "X[i,j] = const([[1.0, 0.0], [1.0, 0.0]])\nT[i,j] = tucker_dense(X[i,j], rank=1)\n",
      false},
     build_tucker},
    {{"topk", NULL, "topk(x, k=5)", "none: a sink writing each row's k largest (last axis)",
      "the k largest values of each row, only as a whole sink expression",
      X23 "\"top.jsonl\" = topk(X[i,j], k=2)\n", false},
     NULL},
    {{"pow", NULL, "pow(x, y)", "the union of the axes of x and y",
      "x to the power y (--parser v2 only; also written x ** y)",
      "X[i] = const([1.0, 2.0, 3.0])\nY[i] = pow(X[i], 2)\n", false},
     build_binary},
    COMPARISON("less", "<"),
    COMPARISON("less_equal", "<="),
    COMPARISON("greater", ">"),
    COMPARISON("greater_equal", ">="),
    COMPARISON("equal", "=="),
    COMPARISON("not_equal", "!="),
};

#define N_BUILTINS (sizeof BUILTINS / sizeof BUILTINS[0])

BuiltinBuild ir_builtin_find(const char *name)
{
    for (size_t i = 0; i < N_BUILTINS; i++)
        if (strcasecmp(name, BUILTINS[i].info.name) == 0)
            return BUILTINS[i].build;
    return NULL;
}

size_t ir_builtin_count(void) { return N_BUILTINS; }

const IrBuiltinInfo *ir_builtin_info(size_t i)
{
    return i < N_BUILTINS ? &BUILTINS[i].info : NULL;
}

const IrBuiltinInfo *ir_builtin_lookup(const char *name)
{
    for (size_t i = 0; name && i < N_BUILTINS; i++)
        if (strcasecmp(name, BUILTINS[i].info.name) == 0)
            return &BUILTINS[i].info;
    return NULL;
}

/* ---- checks after shape inference ---- */

static fuse_status check_op(const IrProgram *p, const Op *op, DiagList *dl)
{
    if (op->kind != OP_ROPE)
        return FUSE_OK;
    int64_t d = p->tensors[op->out]->shape[op->axis];
    if (d % 2 == 0)
        return FUSE_OK;
    Span at = op->stmt ? op->stmt->span : (Span){0};
    fe_error(dl, FUSE_E_SHAPE, at, "rope needs an even feature size; axis %s has an odd size",
             p->tensors[op->out]->axis_names[op->axis]);
    return FUSE_E_SHAPE;
}

fuse_status ir_check_builtins(const IrProgram *p, DiagList *dl)
{
    for (int pass = 0; pass < 2; pass++) {
        Group **gs = pass ? p->sink_groups : p->groups;
        int n = pass ? p->n_sink_groups : p->n_groups;
        for (int g = 0; g < n; g++)
            for (int i = 0; i < gs[g]->n_ops; i++) {
                fuse_status st = check_op(p, gs[g]->ops[i], dl);
                if (st != FUSE_OK)
                    return st;
            }
    }
    return FUSE_OK;
}
