/*
 * temperature.c: temperature schedules (SPEC §6.3). A schedule maps the fixpoint
 * sweep index to the temperature of `sig` calls without an explicit T: a
 * constant, a linear ramp (START at iteration <= 0, END at >= STEPS, linear
 * between), piecewise points (the value of the last point at or before the
 * iteration; before the first point, the first value) or a host callback. Values
 * with |v| <= 1e-9 are snapped to 0 (the hard threshold).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"

static bool parse_double(const char *s, char **end, double *out)
{
    errno = 0;
    *out = strtod(s, end);
    return *end != s && errno == 0 && isfinite(*out);
}

static bool parse_int(const char *s, char **end, int *out)
{
    errno = 0;
    long v = strtol(s, end, 10);
    if (*end == s || errno || v < -1000000000L || v > 1000000000L)
        return false;
    *out = (int)v;
    return true;
}

static fuse_status parse_linear(const char *s, RtSchedule *out, char **err)
{
    char *end;
    out->kind = RT_SCHED_LINEAR;
    if (!parse_double(s, &end, &out->start) || *end != ':' ||
        !parse_double(end + 1, &end, &out->end) || *end != ':' ||
        !parse_int(end + 1, &end, &out->steps) || *end || out->steps <= 0)
        return sup_fail(err, FUSE_E_ARG,
                       "bad linear schedule '%s': expected linear:START:END:STEPS with STEPS > 0",
                       s);
    return FUSE_OK;
}

static int cmp_points(const void *a, const void *b)
{
    const double *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Sorts the points by step (stable for equal steps: the later one wins). */
static fuse_status sort_points(RtSchedule *out)
{
    double *pairs = malloc((size_t)out->n_points * 3 * sizeof *pairs);
    if (!pairs)
        return FUSE_E_NOMEM;
    for (int i = 0; i < out->n_points; i++) {
        pairs[3 * i] = out->points_step[i] + i / (double)(out->n_points + 1);
        pairs[3 * i + 1] = out->points_value[i];
        pairs[3 * i + 2] = out->points_step[i];
    }
    qsort(pairs, (size_t)out->n_points, 3 * sizeof *pairs, cmp_points);
    for (int i = 0; i < out->n_points; i++) {
        out->points_step[i] = (int)pairs[3 * i + 2];
        out->points_value[i] = pairs[3 * i + 1];
    }
    free(pairs);
    return FUSE_OK;
}

static fuse_status parse_piecewise(const char *s, RtSchedule *out, char **err)
{
    out->kind = RT_SCHED_PIECEWISE;
    int cap = 1;
    for (const char *c = s; *c; c++)
        cap += *c == ',';
    out->points_step = calloc((size_t)cap, sizeof *out->points_step);
    out->points_value = calloc((size_t)cap, sizeof *out->points_value);
    if (!out->points_step || !out->points_value)
        return FUSE_E_NOMEM;
    const char *c = s;
    for (;;) {
        char *end;
        int i = out->n_points;
        if (!parse_int(c, &end, &out->points_step[i]) || *end != '=' ||
            !parse_double(end + 1, &end, &out->points_value[i]) || (*end && *end != ','))
            return sup_fail(err, FUSE_E_ARG,
                           "bad piecewise schedule '%s': expected piecewise:STEP=VALUE,...", s);
        out->n_points++;
        if (!*end)
            break;
        c = end + 1;
    }
    return sort_points(out);
}

fuse_status rt_sched_parse(const char *spec, RtSchedule *out, char **err)
{
    if (strncmp(spec, "linear:", 7) == 0)
        return parse_linear(spec + 7, out, err);
    if (strncmp(spec, "piecewise:", 10) == 0)
        return parse_piecewise(spec + 10, out, err);
    char *end;
    out->kind = RT_SCHED_CONST;
    if (!parse_double(spec, &end, &out->value) || *end)
        return sup_fail(err, FUSE_E_ARG,
                       "bad temperature schedule '%s': expected a number, "
                       "linear:START:END:STEPS or piecewise:STEP=VALUE,...", spec);
    return FUSE_OK;
}

static double raw_value(const RtSchedule *s, const char *tensor, int it)
{
    switch (s->kind) {
    case RT_SCHED_CONST: return s->value;
    case RT_SCHED_LINEAR:
        if (it <= 0)
            return s->start;
        if (it >= s->steps)
            return s->end;
        return s->start + (s->end - s->start) * it / s->steps;
    case RT_SCHED_PIECEWISE: {
        double v = s->points_value[0];
        for (int i = 0; i < s->n_points && s->points_step[i] <= it; i++)
            v = s->points_value[i];
        return v;
    }
    case RT_SCHED_CALLBACK: return s->fn(tensor, it, s->user);
    }
    return 0.0;
}

double rt_sched_value(const RtSchedule *s, const char *tensor, int iteration)
{
    double v = raw_value(s, tensor, iteration);
    return fabs(v) <= 1e-9 || !isfinite(v) ? (isfinite(v) ? 0.0 : v) : v;
}

bool rt_sched_settled(const RtSchedule *s, const char *tensor, int iteration)
{
    double now = rt_sched_value(s, tensor, iteration);
    switch (s->kind) {
    case RT_SCHED_CONST: return true;
    case RT_SCHED_LINEAR: return iteration >= s->steps || s->start == s->end;
    case RT_SCHED_PIECEWISE:
        for (int i = 0; i < s->n_points; i++)
            if (s->points_step[i] > iteration &&
                rt_sched_value(s, tensor, s->points_step[i]) != now)
                return false;
        return true;
    case RT_SCHED_CALLBACK: return rt_sched_value(s, tensor, iteration + 1) == now;
    }
    return true;
}

const RtSchedule *rt_sched_find(const RtModes *m, const char *name)
{
    const RtSchedule *star = NULL;
    for (int i = 0; m && i < m->n_scheds; i++) {
        if (strcmp(m->scheds[i].name, name) == 0)
            return &m->scheds[i];
        if (strcmp(m->scheds[i].name, "*") == 0)
            star = &m->scheds[i];
    }
    return star;
}

void rt_sched_clear(RtSchedule *s)
{
    free(s->name);
    free(s->points_step);
    free(s->points_value);
    memset(s, 0, sizeof *s);
}
