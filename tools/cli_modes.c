/*
 * cli_modes.c: parsing and applying the execution-mode options of `fuse-jit run`
 * (see cli_modes.h). Values are checked here so a bad one is a usage error (exit
 * status 2) that names the option; temperature specs are checked by the library
 * when the runner is made.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_modes.h"
#include "support.h"

static int bad(char **msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(char **msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *msg = strdup(buf);
    return 1;
}

static int pick(const char *v, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (sup_same_word(v, names[i])) {
            *out = i;
            return 0;
        }
    return 1;
}

static int parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi)
        return 1;
    *out = x;
    return 0;
}

static int add_query(CliModes *m, const char *v, char **msg)
{
    char *name = NULL, *sel = NULL;
    if (!cli_query_split(v, &name, &sel))
        return bad(msg, "--query expects NAME or NAME[AXIS=INDEX,...], got '%s'", v);
    free(name);
    free(sel);
    const char **q = realloc(m->queries, (m->n_queries + 1) * sizeof *q);
    if (!q)
        return bad(msg, "out of memory");
    m->queries = q;
    m->queries[m->n_queries++] = v;
    return 0;
}

static int add_temperature(CliModes *m, const char *v, char **msg)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return bad(msg, "--temperature expects NAME=SPEC (NAME may be *), got '%s'", v);
    fuse_temperature *t = realloc(m->temps, (m->n_temps + 1) * sizeof *t);
    if (!t)
        return bad(msg, "out of memory");
    m->temps = t;
    fuse_temperature *n = &m->temps[m->n_temps];
    memset(n, 0, sizeof *n);
    n->name = strndup(v, (size_t)(eq - v));
    n->spec = eq + 1;
    if (!n->name)
        return bad(msg, "out of memory");
    m->n_temps++;
    return 0;
}

static int set_number(CliModes *m, const char *name, const char *v, char **msg)
{
    int64_t x;
    if (strcmp(name, "max-iters") == 0) {
        if (parse_i64(v, 1, 1000000000, &x))
            return bad(msg, "--max-iters expects a positive number of sweeps, got '%s'", v);
        m->max_iters = (int)x;
    } else if (strcmp(name, "samples") == 0) {
        if (parse_i64(v, 1, INT64_MAX, &x))
            return bad(msg, "--samples expects a positive number, got '%s'", v);
        m->samples = x;
    } else if (strcmp(name, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-')
            return bad(msg, "--seed expects a non-negative integer, got '%s'", v);
        m->seed = s;
    } else if (strcmp(name, "steps") == 0) {
        if (parse_i64(v, 1, 1000000000, &x))
            return bad(msg, "--steps expects a positive number of steps, got '%s'", v);
        m->steps = (int)x;
    } else {
        char *end;
        errno = 0;
        double t = strtod(v, &end);
        if (end == v || *end || errno || !(t >= 0) || !isfinite(t))
            return bad(msg, "--tol expects a number >= 0, got '%s'", v);
        m->tol = t;
    }
    return 0;
}

int cli_modes_set(CliModes *m, const char *name, const char *v, char **msg)
{
    static const char *const modes[] = {"single", "fixpoint", "demand"};
    static const char *const strats[] = {"synchronous", "semi_naive"};
    static const char *const projs[] = {"exact", "monte_carlo"};
    static const char *const precs[] = {"fp32", "fp64", "bf16", "fp16"};
    int k;
    if (strcmp(name, "mode") == 0) {
        if (pick(v, modes, 3, &k))
            return bad(msg, "--mode expects single, fixpoint or demand, got '%s'", v);
        m->mode = (fuse_mode)k;
    } else if (strcmp(name, "fixpoint-strategy") == 0) {
        if (pick(v, strats, 2, &k))
            return bad(msg, "--fixpoint-strategy expects synchronous or semi_naive, got '%s'", v);
        m->strategy = (fuse_strategy)k;
    } else if (strcmp(name, "projection") == 0) {
        if (pick(v, projs, 2, &k))
            return bad(msg, "--projection expects exact or monte_carlo, got '%s'", v);
        m->projection = (fuse_projection)k;
    } else if (strcmp(name, "precision") == 0) {
        if (pick(v, precs, 4, &k))
            return bad(msg, "--precision expects fp32, fp64, bf16 or fp16, got '%s'", v);
        m->precision = (fuse_precision)k;
    } else if (strcmp(name, "query") == 0) {
        return add_query(m, v, msg);
    } else if (strcmp(name, "temperature") == 0) {
        return add_temperature(m, v, msg);
    } else if (strcmp(name, "explain") == 0) {
        m->explain = true;
    } else if (strcmp(name, "explain-json") == 0) {
        m->explain_json = true;
    } else {
        return set_number(m, name, v, msg);
    }
    return 0;
}

void cli_modes_config(const CliModes *m, fuse_config *cfg)
{
    cfg->mode = m->mode;
    cfg->strategy = m->strategy;
    cfg->max_iters = m->max_iters;
    cfg->tol = m->tol;
    cfg->projection = m->projection;
    cfg->precision = m->precision;
    cfg->samples = m->samples;
    cfg->seed = m->seed;
    cfg->temperatures = m->temps;
    cfg->n_temperatures = m->n_temps;
}

void cli_modes_free(CliModes *m)
{
    for (size_t i = 0; i < m->n_temps; i++)
        free((char *)m->temps[i].name);
    free(m->temps);
    free(m->queries);
    memset(m, 0, sizeof *m);
}

size_t cli_step_inputs(const fuse_input *in, size_t n, int step, fuse_input *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (step == 0 || !strchr(in[i].name, '@'))
            out[k++] = in[i];
    return k;
}

bool cli_query_split(const char *q, char **name, char **selectors)
{
    *name = *selectors = NULL;
    const char *br = strchr(q, '[');
    size_t n = br ? (size_t)(br - q) : strlen(q);
    if (n == 0)
        return false;
    if (br) {
        size_t len = strlen(br);
        if (len < 2 || br[len - 1] != ']' || memchr(br + 1, '[', len - 2))
            return false;
        *selectors = strndup(br + 1, len - 2);
        if (!*selectors)
            return false;
    }
    *name = strndup(q, n);
    if (!*name) {
        free(*selectors);
        *selectors = NULL;
        return false;
    }
    return true;
}

/* ---- sizes ---- */

bool cli_parse_bytes(const char *v, uint64_t *out)
{
    static const char UNITS[] = "KMGT";
    if (strcmp(v, "none") == 0) {
        *out = FUSE_MEMORY_UNLIMITED;
        return true;
    }
    if (*v < '0' || *v > '9') /* no sign, "inf" or "nan" */
        return false;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v)
        return false;
    const char *unit = *end ? strchr(UNITS, *end & ~0x20) : NULL; /* any case */
    if (*end && (!unit || (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "ib"))))
        return false;
    for (const char *u = UNITS; unit && u <= unit; u++)
        x *= 1024.0;
    if (!(x < 18446744073709551615.0))
        return false;
    *out = x == 0 ? FUSE_MEMORY_UNLIMITED : x < 1 ? 1 : (uint64_t)x;
    return true;
}
