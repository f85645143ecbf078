/*
 * calls.c: builtin calls, argument values and sinks, as IR.
 *
 * A call is materialised into a temporary tensor before the op that reads it. Its
 * argument is a Value: a tensor read with named axes. A lone tensor reference with
 * plain axes is read in place; anything else is computed into a temporary by JOINs
 * (SPEC §3.6: a product of two or more factors is summed onto the reference axes it
 * mentions, in reference order; a lone factor keeps all its axes).
 */
#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "build.h"

typedef struct MapBuiltin {
    const char *name;
    MapFn fn;
} MapBuiltin;

static const MapBuiltin MAP_BUILTINS[] = {
    {"step", FN_STEP}, {"relu", FN_RELU}, {"sig", FN_SIG},   {"gelu", FN_GELU},
    {"exp", FN_EXP},   {"log", FN_LOG},   {"tanh", FN_TANH}, {"sqrt", FN_SQRT},
    {"abs", FN_ABS},   {"sin", FN_SIN},   {"cos", FN_COS},   {"recip", FN_RECIP},
};

/* ---- axes of terms and values ---- */

static bool names_has(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* Appends name to names (n entries, FUSE_MAX_RANK capacity) when absent. */
static bool names_add(Builder *b, const char **names, int *n, const char *name, Span span)
{
    if (names_has(names, *n, name))
        return true;
    if (*n >= FUSE_MAX_RANK) {
        ir_fail(b, FUSE_E_SHAPE, span, "more than 8 axes in one value (at '%s')", name);
        return false;
    }
    names[(*n)++] = name;
    return true;
}

/* The axes factor f of term contributes, in written order. */
static bool factor_axes(Builder *b, const Term *t, int f, const char **names, int *n)
{
    if (t->temps && t->temps[f]) {
        for (int s = 0; s < t->temps[f]->rank; s++)
            if (!names_add(b, names, n, t->temps[f]->axis_names[s], t->factors[f]->span))
                return false;
        return true;
    }
    const Expr *e = t->factors[f];
    for (int s = 0; s < e->n_indices; s++)
        if (e->indices[s].kind == IX_AXIS &&
            !names_add(b, names, n, e->indices[s].name, e->indices[s].span))
            return false;
    return true;
}

/* The axes of one term as a value: all axes of a lone factor; the reference axes a
 * product mentions, in reference order. */
static bool term_axes(Builder *b, const Term *t, const NameList *ref, const char **out,
                      int *n_out)
{
    const char *all[FUSE_MAX_RANK * 4];
    int n_all = 0;
    for (int f = 0; f < t->n; f++) {
        const char *mine[FUSE_MAX_RANK];
        int n_mine = 0;
        if (!factor_axes(b, t, f, mine, &n_mine))
            return false;
        for (int i = 0; i < n_mine; i++)
            if (!names_has(all, n_all, mine[i]) && n_all < FUSE_MAX_RANK * 4)
                all[n_all++] = mine[i];
    }
    if (t->n <= 1) {
        for (int i = 0; i < n_all; i++)
            if (!names_add(b, out, n_out, all[i], t->n ? t->factors[0]->span : b->stmt->span))
                return false;
        return true;
    }
    for (int i = 0; i < ref->n; i++)
        if (names_has(all, n_all, ref->names[i]) &&
            !names_add(b, out, n_out, ref->names[i], t->factors[0]->span))
            return false;
    return true;
}

/* Builds the calls among a term's factors so their axes are known. */
static bool term_prepare(Builder *b, Term *t, const NameList *ref)
{
    t->temps = t->n ? arena_alloc(b->p->arena, sizeof *t->temps * (size_t)t->n) : NULL;
    if (t->n && !t->temps)
        return false;
    for (int f = 0; f < t->n; f++) {
        if (t->factors[f]->kind == EX_TENSOR)
            continue;
        t->temps[f] = ir_build_call(b, t->factors[f], ref);
        if (!t->temps[f])
            return false;
    }
    return true;
}

/* A lone tensor reference whose indices are distinct plain axes is read in place. */
static bool value_in_place(Builder *b, const Expr *e, Value *out)
{
    if (e->kind != EX_TENSOR)
        return false;
    IrTensor *t = ir_tensor_find(b->p, e->name);
    if (!t || t->rank != e->n_indices)
        return false;
    for (int s = 0; s < e->n_indices; s++) {
        const Index *ix = &e->indices[s];
        if (ix->kind != IX_AXIS || ix->offset != 0 || names_has(out->names, s, ix->name))
            return false;
        out->names[s] = ix->name;
    }
    out->t = t;
    out->rank = t->rank;
    return true;
}

bool ir_build_value(Builder *b, const Expr *e, const NameList *ref, Value *out)
{
    while (e->kind == EX_GROUP)
        e = e->items[0];
    memset(out, 0, sizeof *out);
    if (value_in_place(b, e, out))
        return true;
    if (e->kind == EX_CALL || e->kind == EX_INDEXFN) {
        out->t = ir_build_call(b, e, ref);
        if (!out->t)
            return false;
        out->rank = out->t->rank;
        memcpy(out->names, out->t->axis_names, sizeof out->names);
        return true;
    }
    TermList terms = {0};
    if (!ir_expand(b, e, &terms))
        return false;
    for (int i = 0; i < terms.n; i++)
        if (!term_prepare(b, terms.items[i], ref) ||
            !term_axes(b, terms.items[i], ref, out->names, &out->rank))
            return false;
    out->t = ir_temp_new(b, "value", out->rank, out->names, e->span);
    if (!out->t)
        return false;
    for (int i = 0; i < terms.n; i++)
        if (!ir_join_term(b, out->t, out->names, terms.items[i], RED_SUM, i == 0, ref))
            return false;
    return true;
}

/* ---- argument helpers ---- */

const Kwarg *ir_kwarg_find(const Expr *call, const char *name)
{
    for (int i = 0; i < call->n_kwargs; i++)
        if (strcmp(call->kwargs[i].name, name) == 0)
            return &call->kwargs[i];
    return NULL;
}

bool ir_check_kwargs(Builder *b, const Expr *call, const char *const *allowed, int n)
{
    for (int i = 0; i < call->n_kwargs; i++) {
        bool ok = false;
        for (int j = 0; j < n; j++)
            ok |= strcmp(call->kwargs[i].name, allowed[j]) == 0;
        if (!ok) {
            char *msg = arena_printf(b->p->arena, "unknown keyword argument '%s' for %s",
                                     call->kwargs[i].name, call->name);
            ir_fail(b, FUSE_E_SHAPE, call->kwargs[i].span, "%s", msg ? msg : call->name);
            return false;
        }
    }
    return true;
}

bool ir_check_positional(Builder *b, const Expr *call, int min, int max)
{
    if (call->n_items >= min && call->n_items <= max)
        return true;
    char *msg = min == max
        ? arena_printf(b->p->arena, "%s takes %d positional argument%s, got %d", call->name,
                       min, min == 1 ? "" : "s", call->n_items)
        : arena_printf(b->p->arena, "%s takes %d to %d positional arguments, got %d",
                       call->name, min, max, call->n_items);
    ir_fail(b, FUSE_E_SHAPE, call->span, "%s", msg ? msg : call->name);
    return false;
}

/* The name an axis argument gives: a bare name, a string, or a position. */
bool ir_axis_arg(Builder *b, const Expr *v, const Value *x, int *slot)
{
    if (v->kind == EX_NUMBER && v->is_int) {
        int64_t k = (int64_t)v->num;
        if (k < 0)
            k += x->rank;
        if (k < 0 || k >= x->rank) {
            ir_fail(b, FUSE_E_SHAPE, v->span, "axis position %s is out of range", "given");
            return false;
        }
        *slot = (int)k;
        return true;
    }
    const char *name = v->kind == EX_STRING ? v->str
                     : v->kind == EX_TENSOR && v->n_indices == 0 ? v->name : NULL;
    if (!name) {
        ir_fail(b, FUSE_E_SHAPE, v->span, "axis= takes an axis name or position%s", "");
        return false;
    }
    for (int s = 0; s < x->rank; s++)
        if (strcmp(x->names[s], name) == 0) {
            *slot = s;
            return true;
        }
    ir_fail(b, FUSE_E_SHAPE, v->span, "the argument has no axis '%s'", name);
    return false;
}

/* Default normalisation axis: the first dotted LHS axis if the argument has it,
 * else the argument's last axis (SPEC §5). */
int ir_default_axis(Builder *b, const Value *x)
{
    const Stmt *st = b->stmt;
    if (st && st->kind == ST_EQUATION)
        for (int i = 0; i < st->n_indices; i++)
            if (st->indices[i].is_dotted)
                for (int s = 0; s < x->rank; s++)
                    if (strcmp(x->names[s], st->indices[i].name) == 0)
                        return s;
    return x->rank - 1;
}

/* ---- builtins ---- */

IrTensor *ir_map_output(Builder *b, const char *what, Value *x, Op **op_out)
{
    IrTensor *out = ir_temp_new(b, what, x->rank, x->names, b->stmt->span);
    Op *op = out ? ir_op_new(b, OP_MAP, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, x->names, x->rank) ||
        !ir_value_operand(b, op, x->t, x->names, b->stmt->span))
        return NULL;
    *op_out = op;
    return out;
}

/* sig without T: reads its group's temperature, the scalar constant
 * "%T.<LHS>" that the runtime sets before each sweep from the temperature
 * schedules (SPEC §6.3; 0, the hard threshold, when none applies). Sinks see no
 * group temperature: T stays 0. */
static bool group_temperature(Builder *b, Op *op, Span span)
{
    if (!b->group || b->group->is_sink)
        return true;
    const char *name = arena_printf(b->p->arena, "%%T.%s", b->p->tensors[b->group->tensor]->name);
    if (!name)
        return false;
    IrTensor *t = ir_tensor_find(b->p, name);
    if (!t) {
        t = ir_tensor_new(b, name, TEN_CONST, 0, span);
        float *zero = arena_alloc(b->p->arena, sizeof *zero);
        if (!t || !zero)
            return false;
        *zero = 0.0f;
        t->data = zero;
        t->is_fixed_shape = true;
        t->origin = "the temperature schedule";
        t->origin_span = span;
    }
    return ir_value_operand(b, op, t, NULL, span);
}

/* sig's temperature: a number, or a scalar tensor read as a second operand. */
static bool sig_temperature(Builder *b, const Expr *call, Op *op, const NameList *ref)
{
    const Kwarg *kw = ir_kwarg_find(call, "T");
    const Expr *t = call->n_items == 2 ? call->items[1] : kw ? kw->value : NULL;
    if (!t)
        return group_temperature(b, op, call->span);
    if (t->kind == EX_NUMBER) {
        op->param[0] = t->num;
        return true;
    }
    Value tv;
    if (!ir_build_value(b, t, ref, &tv))
        return false;
    if (tv.rank != 0) {
        ir_fail(b, FUSE_E_SHAPE, t->span, "sig's temperature must be a scalar%s", "");
        return false;
    }
    return ir_value_operand(b, op, tv.t, tv.names, t->span);
}

static IrTensor *build_map(Builder *b, const Expr *call, MapFn fn, const NameList *ref)
{
    static const char *const sig_kw[] = {"T"};
    bool is_sig = fn == FN_SIG;
    if (!ir_check_positional(b, call, 1, is_sig ? 2 : 1) ||
        !ir_check_kwargs(b, call, sig_kw, is_sig ? 1 : 0))
        return NULL;
    Value x;
    Op *op;
    if (!ir_build_value(b, call->items[0], ref, &x))
        return NULL;
    IrTensor *out = ir_map_output(b, ir_map_fn_name(fn), &x, &op);
    if (!out)
        return NULL;
    op->fn = fn;
    if (is_sig && !sig_temperature(b, call, op, ref))
        return NULL;
    ir_group_push(b, op);
    return out;
}

static IrTensor *build_softmax(Builder *b, const Expr *call, const NameList *ref)
{
    static const char *const kw[] = {"axis"};
    Value x;
    if (!ir_check_positional(b, call, 1, 1) || !ir_check_kwargs(b, call, kw, 1) ||
        !ir_build_value(b, call->items[0], ref, &x))
        return NULL;
    if (x.rank == 0) {
        ir_fail(b, FUSE_E_SHAPE, call->span, "softmax needs an argument with an axis%s", "");
        return NULL;
    }
    int slot = ir_default_axis(b, &x);
    const Kwarg *axis = ir_kwarg_find(call, "axis");
    if (axis && !ir_axis_arg(b, axis->value, &x, &slot))
        return NULL;
    Op *op;
    IrTensor *out = ir_map_output(b, "softmax", &x, &op);
    if (!out)
        return NULL;
    op->kind = OP_SOFTMAX;
    op->axis = slot;
    ir_group_push(b, op);
    return out;
}

/* Shape of a nested list literal; false when ragged or not numeric. */
static bool literal_shape(const Expr *e, int depth, int *rank, int64_t *shape)
{
    if (e->kind == EX_NUMBER || e->kind == EX_BOOL) {
        if (*rank < 0)
            *rank = depth;
        return *rank == depth;
    }
    if (e->kind != EX_LIST || depth >= FUSE_MAX_RANK)
        return false;
    if (*rank >= 0 && depth >= *rank)
        return false;
    if (shape[depth] < 0)
        shape[depth] = e->n_items;
    if (shape[depth] != e->n_items || e->n_items == 0)
        return false;
    for (int i = 0; i < e->n_items; i++)
        if (!literal_shape(e->items[i], depth + 1, rank, shape))
            return false;
    return true;
}

static void literal_values(const Expr *e, float *out, int64_t *n)
{
    if (e->kind != EX_LIST) {
        out[(*n)++] = (float)e->num;
        return;
    }
    for (int i = 0; i < e->n_items; i++)
        literal_values(e->items[i], out, n);
}

/* Anonymous axes of a call result take the reference axis names by position. */
static bool positional_names(Builder *b, const Expr *call, int rank, const NameList *ref,
                             const char **names)
{
    if (rank > ref->n) {
        char *msg = arena_printf(b->p->arena,
                                 "%s(...) has %d axes but only %d are named on the left-hand "
                                 "side", call->name, rank, ref->n);
        ir_fail(b, FUSE_E_SHAPE, call->span, "%s", msg ? msg : call->name);
        return false;
    }
    for (int s = 0; s < rank; s++)
        names[s] = ref->names[s];
    return true;
}

static IrTensor *build_const(Builder *b, const Expr *call, const NameList *ref)
{
    if (!ir_check_positional(b, call, 1, 1) || !ir_check_kwargs(b, call, NULL, 0))
        return NULL;
    int rank = -1;
    int64_t shape[FUSE_MAX_RANK];
    for (int s = 0; s < FUSE_MAX_RANK; s++)
        shape[s] = -1;
    if (!literal_shape(call->items[0], 0, &rank, shape)) {
        ir_fail(b, FUSE_E_SHAPE, call->items[0]->span,
                "const(...) takes a number or a rectangular nested list of numbers%s", "");
        return NULL;
    }
    const char *names[FUSE_MAX_RANK];
    if (!positional_names(b, call, rank, ref, names))
        return NULL;
    IrTensor *t = ir_temp_new(b, "const", rank, names, call->span);
    if (!t)
        return NULL;
    t->kind = TEN_CONST;
    t->group = -1;
    int64_t count = 1;
    for (int s = 0; s < rank; s++)
        count *= t->shape[s] = shape[s];
    t->data = arena_alloc(b->p->arena, sizeof(float) * (size_t)count);
    if (!t->data)
        return NULL;
    int64_t n = 0;
    literal_values(call->items[0], t->data, &n);
    t->is_fixed_shape = true;
    t->origin = "const(...)";
    t->origin_span = call->span;
    return t;
}

static IrTensor *build_causal_mask(Builder *b, const Expr *call, const NameList *ref)
{
    if (!ir_check_positional(b, call, 1, 1) || !ir_check_kwargs(b, call, NULL, 0))
        return NULL;
    const Expr *l = call->items[0];
    if (l->kind != EX_NUMBER || !l->is_int || l->num < 1 || l->num > 1e8) {
        ir_fail(b, FUSE_E_SHAPE, l->span, "causal_mask takes a positive integer size%s", "");
        return NULL;
    }
    const char *names[2];
    if (!positional_names(b, call, 2, ref, names))
        return NULL;
    IrTensor *t = ir_temp_new(b, "causal_mask", 2, names, call->span);
    Op *op = t ? ir_op_new(b, OP_MAP, t->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, names, 2))
        return NULL;
    op->fn = FN_CAUSAL;
    t->shape[0] = t->shape[1] = (int64_t)l->num;
    t->is_fixed_shape = true;
    t->origin = arena_printf(b->p->arena, "causal_mask(%lld)", (long long)l->num);
    t->origin_span = call->span;
    ir_group_push(b, op);
    return t;
}

static IrTensor *build_index_fn(Builder *b, const Expr *e)
{
    const char *names[1] = {e->axis_name};
    IrTensor *t = ir_temp_new(b, e->name, 1, names, e->span);
    Op *op = t ? ir_op_new(b, OP_MAP, t->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, names, 1))
        return NULL;
    op->fn = strcmp(e->name, "even") == 0 ? FN_EVEN : FN_ODD;
    ir_group_push(b, op);
    return t;
}

/* ---- concat ---- */

static int find_name(const Value *v, const char *name)
{
    for (int s = 0; s < v->rank; s++)
        if (strcmp(v->names[s], name) == 0)
            return s;
    return -1;
}

/* Output names: the first operand's, the concatenated slot named by the reference
 * axes at that position (SPEC §5). */
static bool concat_names(Builder *b, const Expr *call, const Value *v0, int slot,
                         const NameList *ref, const char **names)
{
    for (int s = 0; s < v0->rank; s++)
        names[s] = v0->names[s];
    if (slot < ref->n)
        names[slot] = ref->names[slot];
    for (int s = 0; s < v0->rank; s++)
        if (s != slot && strcmp(names[s], names[slot]) == 0) {
            ir_fail(b, FUSE_E_SHAPE, call->span,
                    "concat's result would have axis '%s' twice", names[s]);
            return false;
        }
    return true;
}

/* One part: copies operand v into out, its concat axis a loop axis of its own. */
static Op *concat_part(Builder *b, IrTensor *out, const Value *v0, Value *v, int slot,
                       int vslot, int i)
{
    const char *out_names[FUSE_MAX_RANK], *in_names[FUSE_MAX_RANK];
    const char *local = arena_printf(b->p->arena, "%%cat%d", i);
    if (!local)
        return NULL;
    for (int s = 0; s < v->rank; s++)
        in_names[s] = s == vslot ? local : v->names[s];
    for (int s = 0; s < out->rank; s++) {
        out_names[s] = s == slot ? local : v0->names[s];
        if (s != slot && find_name(v, out_names[s]) < 0) {
            ir_fail(b, FUSE_E_SHAPE, b->stmt->span, "concat operand %s lacks an axis",
                    v->t->name);
            return NULL;
        }
    }
    Op *op = ir_op_new(b, OP_MAP, out->id);
    if (!op || !ir_op_bind_out(b, op, out_names, out->rank) ||
        !ir_value_operand(b, op, v->t, in_names, b->stmt->span))
        return NULL;
    op->fn = FN_COPY;
    op->concat_slot = slot;
    ir_group_push(b, op);
    return op;
}

static bool concat_slots(Builder *b, const Expr *call, Value *vals, int n, int *slots)
{
    static const char *const kw[] = {"axis"};
    const Kwarg *axis = ir_kwarg_find(call, "axis");
    if (!ir_check_kwargs(b, call, kw, 1))
        return false;
    for (int i = 0; i < n; i++) {
        if (vals[i].rank != vals[0].rank || vals[i].rank == 0) {
            ir_fail(b, FUSE_E_SHAPE, call->items[i]->span,
                    "concat operands must have the same rank (at least 1)%s", "");
            return false;
        }
        slots[i] = ir_default_axis(b, &vals[i]);
        if (axis && !ir_axis_arg(b, axis->value, &vals[i], &slots[i]))
            return false;
    }
    return true;
}

/* concat(x) merges x's last two axes into one of their sizes' product, named by the
 * reference axes at that position (SPEC §5). */
static IrTensor *build_merge(Builder *b, const Expr *call, const NameList *ref)
{
    Value x;
    if (!ir_check_kwargs(b, call, NULL, 0) || !ir_build_value(b, call->items[0], ref, &x))
        return NULL;
    if (x.rank < 2) {
        ir_fail(b, FUSE_E_SHAPE, call->span,
                "concat with one argument merges its last two axes: it needs two%s", "");
        return NULL;
    }
    int slot = x.rank - 2;
    const char *names[FUSE_MAX_RANK];
    for (int s = 0; s < slot; s++)
        names[s] = x.names[s];
    names[slot] = slot < ref->n ? ref->names[slot] : x.names[slot];
    for (int s = 0; s < slot; s++)
        if (strcmp(names[s], names[slot]) == 0) {
            ir_fail(b, FUSE_E_SHAPE, call->span, "concat's result would have axis '%s' twice",
                    names[s]);
            return NULL;
        }
    IrTensor *out = ir_temp_new(b, "merge", slot + 1, names, call->span);
    Op *op = out ? ir_op_new(b, OP_MAP, out->id) : NULL;
    if (!op || !ir_op_bind_out(b, op, x.names, slot + 1) ||
        !ir_value_operand(b, op, x.t, x.names, call->span))
        return NULL;
    op->fn = FN_COPY;
    op->out_minor[slot] = 1 + ir_op_axis(b, op, x.names[slot + 1]);
    ir_group_push(b, op);
    return out;
}

static IrTensor *build_concat(Builder *b, const Expr *call, const NameList *ref)
{
    int n = call->n_items;
    if (n == 1)
        return build_merge(b, call, ref);
    if (n < 1) {
        ir_fail(b, FUSE_E_SHAPE, call->span, "concat needs at least one operand%s", "");
        return NULL;
    }
    Value *vals = arena_alloc(b->p->arena, sizeof *vals * (size_t)n);
    int *slots = arena_alloc(b->p->arena, sizeof *slots * (size_t)n);
    Concat *c = arena_alloc(b->p->arena, sizeof *c);
    if (c)
        c->parts = arena_alloc(b->p->arena, sizeof *c->parts * (size_t)n);
    if (!vals || !slots || !c || !c->parts)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!ir_build_value(b, call->items[i], ref, &vals[i]))
            return NULL;
    const char *names[FUSE_MAX_RANK];
    if (!concat_slots(b, call, vals, n, slots) ||
        !concat_names(b, call, &vals[0], slots[0], ref, names))
        return NULL;
    IrTensor *out = ir_temp_new(b, "concat", vals[0].rank, names, call->span);
    if (!out)
        return NULL;
    *c = (Concat){.out = out->id, .slot = slots[0], .parts = c->parts, .span = call->span};
    for (int i = 0; i < n; i++) {
        c->parts[i] = concat_part(b, out, &vals[0], &vals[i], slots[0], slots[i], i);
        if (!c->parts[i])
            return NULL;
        c->n_parts++;
    }
    IrProgram *p = b->p;
    if (!arena_push_ptr(p->arena, (void ***)&p->concats, &p->n_concats, &p->cap_concats, c))
        return NULL;
    return out;
}

IrTensor *ir_build_call(Builder *b, const Expr *call, const NameList *ref)
{
    if (call->kind == EX_INDEXFN)
        return build_index_fn(b, call);
    if (call->kind != EX_CALL) {
        ir_fail(b, FUSE_E_SHAPE, call->span, "expected a call%s", "");
        return NULL;
    }
    for (size_t i = 0; i < sizeof MAP_BUILTINS / sizeof MAP_BUILTINS[0]; i++)
        if (strcasecmp(call->name, MAP_BUILTINS[i].name) == 0)
            return build_map(b, call, MAP_BUILTINS[i].fn, ref);
    if (strcasecmp(call->name, "softmax") == 0)
        return build_softmax(b, call, ref);
    if (strcasecmp(call->name, "const") == 0)
        return build_const(b, call, ref);
    if (strcasecmp(call->name, "causal_mask") == 0)
        return build_causal_mask(b, call, ref);
    if (strcasecmp(call->name, "concat") == 0)
        return build_concat(b, call, ref);
    BuiltinBuild more = ir_builtin_find(call->name);
    if (more)
        return more(b, call, ref);
    if (strcasecmp(call->name, "topk") == 0) {
        ir_fail(b, FUSE_E_SHAPE, call->span,
                "topk is only allowed as a whole sink expression (\"out.jsonl\" = topk(...))%s", "");
        return NULL;
    }
    if (fe_is_builtin(call->name)) {
        ir_fail(b, FUSE_E_UNSUPPORTED, call->span, "builtin '%s' is not supported yet",
                call->name);
        return NULL;
    }
    char hint[FE_HINT_SIZE];
    char *msg = arena_printf(b->p->arena, "unknown function '%s'%s", call->name,
                             fe_builtin_hint(call->name, hint, sizeof hint));
    ir_fail(b, FUSE_E_SHAPE, call->span, "%s", msg ? msg : call->name);
    return NULL;
}

/* ---- sinks ---- */

/* Every axis name of an expression in order of first appearance. */
static bool collect_names(Builder *b, const Expr *e, const char **names, int *n)
{
    if (e->kind == EX_TENSOR) {
        for (int s = 0; s < e->n_indices; s++)
            if (e->indices[s].kind == IX_AXIS &&
                !names_add(b, names, n, e->indices[s].name, e->indices[s].span))
                return false;
        return true;
    }
    if (e->kind == EX_INDEXFN)
        return names_add(b, names, n, e->axis_name, e->span);
    if (e->kind == EX_LIST || e->kind == EX_DICT)
        return true;
    for (int i = 0; i < e->n_items; i++)
        if (!collect_names(b, e->items[i], names, n))
            return false;
    return true;
}

static void build_sink(Builder *b, const Stmt *st)
{
    const char *names[FUSE_MAX_RANK];
    NameList ref = {names, 0};
    if (!collect_names(b, st->rhs, names, &ref.n))
        return;
    Group *g = ir_group_new(b, -1, true);
    Sink *sink = g ? arena_alloc(b->p->arena, sizeof *sink) : NULL;
    if (!sink)
        return;
    b->group = g;
    sink->path = st->path;
    sink->group = b->group_index;
    sink->stmt = st;
    const Expr *e = st->rhs;
    if (e->kind == EX_CALL && strcasecmp(e->name, "topk") == 0) {
        static const char *const kw[] = {"k"};
        const Kwarg *k = ir_kwarg_find(e, "k");
        if (!ir_check_positional(b, e, 1, 1) || !ir_check_kwargs(b, e, kw, 1))
            return;
        if (k && (k->value->kind != EX_NUMBER || !k->value->is_int || k->value->num < 1)) {
            ir_fail(b, FUSE_E_SHAPE, k->span, "topk's k must be a positive integer%s", "");
            return;
        }
        sink->is_topk = true;
        sink->k = k ? (int64_t)k->value->num : 5;
        e = e->items[0];
    }
    Value v;
    if (!ir_build_value(b, e, &ref, &v))
        return;
    g->tensor = v.t->id;
    IrProgram *p = b->p;
    if (!arena_push_ptr(p->arena, (void ***)&p->sinks, &p->n_sinks, &p->cap_sinks, sink))
        b->status = FUSE_E_NOMEM;
}

void ir_build_sinks(Builder *b)
{
    const Ast *ast = b->p->ast;
    for (int i = 0; i < ast->n_stmts && ir_stmt_begin(b, ast->stmts[i]); i++)
        if (ast->stmts[i]->kind == ST_SINK)
            build_sink(b, ast->stmts[i]);
}
