/*
 * trace.c: the explanation of a run (SPEC §8, fuse_runner_trace). The schedule
 * logs one entry per group per sweep (status evaluated, unchanged, skipped or
 * cached; kernel time; temperature; cells changed) and one summary per component
 * (iterated or not, sweeps, convergence); this file stores them and formats them
 * as text or as JSON (through jansson).
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"

static const char *const STATUS_NAMES[] = {"evaluated", "unchanged", "skipped", "cached"};

void rt_trace_reset(RtTrace *t, const char *mode, const char *strategy)
{
    t->n_entries = t->n_comps = 0;
    t->mode = mode;
    t->strategy = strategy;
    t->total_ms = 0.0;
    t->is_converged = true;
    t->is_valid = false;
    t->step = -1;
}

bool rt_trace_add(RtTrace *t, const RtTraceEntry *e)
{
    if (t->n_entries == t->cap_entries) {
        int cap = t->cap_entries ? 2 * t->cap_entries : 64;
        RtTraceEntry *p = realloc(t->entries, (size_t)cap * sizeof *p);
        if (!p)
            return false;
        t->entries = p;
        t->cap_entries = cap;
    }
    t->entries[t->n_entries++] = *e;
    return true;
}

RtTraceComp *rt_trace_add_comp(RtTrace *t, const RtTraceComp *c)
{
    if (t->n_comps == t->cap_comps) {
        int cap = t->cap_comps ? 2 * t->cap_comps : 16;
        RtTraceComp *p = realloc(t->comps, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        t->comps = p;
        t->cap_comps = cap;
    }
    t->comps[t->n_comps] = *c;
    return &t->comps[t->n_comps++];
}

void rt_trace_free(RtTrace *t)
{
    free(t->entries);
    free(t->comps);
    memset(t, 0, sizeof *t);
}

/* The kinds of a group's ops, e.g. "join" or "map+join". Written into buf. */
static const char *kernel_kind(const Group *g, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < g->n_ops; i++) {
        const char *k = ir_op_kind_name(g->ops[i]->kind);
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = g->ops[j]->kind == g->ops[i]->kind;
        if (seen)
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? "+" : "", k);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    return buf;
}

/* ---- text ---- */

static void textf(SupBuf *b, bool *ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void textf(SupBuf *b, bool *ok, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    *ok &= sup_buf_append(b, line, (size_t)n);
}

static void text_entry(const RtPlan *pl, const RtTraceEntry *e, SupBuf *b, bool *ok)
{
    const Group *g = pl->ir->groups[e->group];
    const IrTensor *t = pl->ir->tensors[g->tensor];
    char kind[64];
    textf(b, ok, "[sweep %02d] %s %s", e->sweep, t->name, STATUS_NAMES[e->status]);
    if (e->is_fused)
        textf(b, ok, " fused"); /* in the previous equation's kernel, which took the time */
    else if (e->status != RT_EVAL_SKIPPED)
        textf(b, ok, " %.3fms", e->ms);
    textf(b, ok, " kernel=%s cells=%lld", kernel_kind(g, kind, sizeof kind),
          (long long)pl->count[g->tensor]);
    if (e->status == RT_EVAL_UNCHANGED || (e->status == RT_EVAL_EVALUATED && e->changed))
        textf(b, ok, " changed=%lld delta=%g", (long long)e->changed, e->max_delta);
    if (!isnan(e->temperature))
        textf(b, ok, " T=%g", e->temperature);
    if (e->samples)
        textf(b, ok, " samples=%lld", (long long)e->samples);
    textf(b, ok, "\n");
}

static void text_comp(const RtPlan *pl, const RtTraceComp *c, SupBuf *b, bool *ok)
{
    if (!c->is_recursive && !c->is_skipped && !c->is_iterated)
        return;
    textf(b, ok, "[component %d]", c->component);
    for (int g = c->first_group; g < c->first_group + c->n_groups; g++)
        textf(b, ok, " %s", pl->ir->tensors[pl->ir->groups[g]->tensor]->name);
    if (c->is_skipped)
        textf(b, ok, ": skipped (outside the demanded closure)\n");
    else if (!c->is_iterated)
        textf(b, ok, ": recursive, one sweep (single mode; use --mode fixpoint)\n");
    else if (c->is_diverged)
        textf(b, ok, ": diverged (values became inf or NaN) after %d sweeps\n", c->sweeps);
    else if (c->is_converged)
        textf(b, ok, ": converged after %d sweeps%s\n", c->sweeps,
              c->is_semi_naive ? " (semi-naive)" : "");
    else
        textf(b, ok, ": did not converge in %d sweeps\n", c->sweeps);
}

static char *format_text(const RtPlan *pl, const RtTrace *t)
{
    SupBuf b = {0};
    bool ok = true;
    textf(&b, &ok, "run mode=%s strategy=%s total=%.3fms converged=%s", t->mode, t->strategy,
          t->total_ms, t->is_converged ? "yes" : "no");
    if (t->step >= 0)
        textf(&b, &ok, " step=%lld", (long long)t->step); /* stream: which time step */
    textf(&b, &ok, "\n");
    for (int i = 0; i < t->n_entries; i++)
        text_entry(pl, &t->entries[i], &b, &ok);
    for (int i = 0; i < t->n_comps; i++)
        text_comp(pl, &t->comps[i], &b, &ok);
    if (!ok || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- JSON ---- */

static json_t *json_num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *json_entry(const RtPlan *pl, const RtTraceEntry *e)
{
    const Group *g = pl->ir->groups[e->group];
    char kind[64];
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(pl->ir->tensors[g->tensor]->name));
    json_object_set_new(o, "component", json_integer(e->component));
    json_object_set_new(o, "sweep", json_integer(e->sweep));
    json_object_set_new(o, "status", json_string(STATUS_NAMES[e->status]));
    json_object_set_new(o, "duration_ms", json_real(e->ms));
    json_object_set_new(o, "fused", json_boolean(e->is_fused));
    json_object_set_new(o, "temperature", json_num_or_null(e->temperature));
    json_object_set_new(o, "kernel", json_string(kernel_kind(g, kind, sizeof kind)));
    json_object_set_new(o, "cells", json_integer(pl->count[g->tensor]));
    json_object_set_new(o, "changed", json_integer(e->changed));
    json_object_set_new(o, "max_delta", json_num_or_null(e->max_delta));
    json_object_set_new(o, "samples", e->samples ? json_integer(e->samples) : json_null());
    return o;
}

static json_t *json_comp(const RtPlan *pl, const RtTraceComp *c)
{
    json_t *o = json_object(), *names = json_array();
    for (int g = c->first_group; g < c->first_group + c->n_groups; g++)
        json_array_append_new(names, json_string(pl->ir->tensors[pl->ir->groups[g]->tensor]->name));
    json_object_set_new(o, "component", json_integer(c->component));
    json_object_set_new(o, "tensors", names);
    json_object_set_new(o, "recursive", json_boolean(c->is_recursive));
    json_object_set_new(o, "iterated", json_boolean(c->is_iterated));
    json_object_set_new(o, "skipped", json_boolean(c->is_skipped));
    json_object_set_new(o, "converged", json_boolean(c->is_converged));
    json_object_set_new(o, "diverged", json_boolean(c->is_diverged));
    json_object_set_new(o, "sweeps", json_integer(c->sweeps));
    json_object_set_new(o, "strategy", json_string(!c->is_iterated ? "none"
                                                   : c->is_semi_naive ? "semi_naive"
                                                                      : "synchronous"));
    return o;
}

static char *format_json(const RtPlan *pl, const RtTrace *t)
{
    json_t *root = json_object(), *entries = json_array(), *comps = json_array();
    json_object_set_new(root, "mode", json_string(t->mode));
    json_object_set_new(root, "strategy", json_string(t->strategy));
    json_object_set_new(root, "total_ms", json_real(t->total_ms));
    json_object_set_new(root, "converged", json_boolean(t->is_converged));
    json_object_set_new(root, "step", t->step >= 0 ? json_integer(t->step) : json_null());
    for (int i = 0; i < t->n_entries; i++)
        json_array_append_new(entries, json_entry(pl, &t->entries[i]));
    for (int i = 0; i < t->n_comps; i++)
        json_array_append_new(comps, json_comp(pl, &t->comps[i]));
    json_object_set_new(root, "entries", entries);
    json_object_set_new(root, "components", comps);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        return NULL;
    /* jansson allocates with malloc by default; copy with a newline for printing. */
    char *out = sup_strprintf("%s\n", s);
    free(s);
    return out;
}

char *rt_trace_format(const RtPlan *pl, bool json)
{
    const RtTrace *t = &pl->modes->trace;
    if (!t->is_valid)
        return json ? strdup("{\"mode\": null, \"entries\": [], \"components\": []}\n")
                    : strdup("no run yet\n");
    return json ? format_json(pl, t) : format_text(pl, t);
}
