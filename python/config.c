/*
 * config.c: fusejit.ExecutionConfig, the settings of a compile. The keywords keep
 * the values they were given (checked at construction); program.compile turns
 * them into a fuse_config, owned by the runner with the strings and temperature
 * schedules it points to. Option values are spelled as on the command line.
 */
#include "pyfuse.h"

#include <math.h>
#include <string.h>

#define N_FIELDS 18

/* Keyword order; the object keeps one value (or NULL: not given) per keyword. */
static const char *const FIELDS[N_FIELDS + 1] = {
    "mode", "precision", "device", "threads", "projection", "samples", "seed",
    "temperature", "max_iters", "tol", "strategy", "base_dir", "out_dir",
    "write_sinks", "cache_dir", "no_cache", "max_memory", "distributed", NULL,
};
enum { F_MODE, F_PRECISION, F_DEVICE, F_THREADS, F_PROJECTION, F_SAMPLES, F_SEED,
       F_TEMPERATURE, F_MAX_ITERS, F_TOL, F_STRATEGY, F_BASE_DIR, F_OUT_DIR,
       F_WRITE_SINKS, F_CACHE_DIR, F_NO_CACHE, F_MAX_MEMORY, F_DISTRIBUTED };

typedef struct {
    PyObject_HEAD
    PyObject *values[N_FIELDS];
} PfConfig;

static const char *const MODES[] = {"single", "fixpoint", "demand", NULL};
static const char *const PRECISIONS[] = {"fp32", "fp64", "bf16", "fp16", NULL};
static const char *const DEVICES[] = {"auto", "cpu", "cuda", NULL};
static const char *const PROJECTIONS[] = {"exact", "monte_carlo", NULL};
static const char *const STRATEGIES[] = {"synchronous", "semi_naive", NULL};

/* ---- value conversions: each returns 0, or -1 with ValueError/TypeError ---- */

static int to_choice(PyObject *v, const char *field, const char *const *names, int *out)
{
    const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    PyObject *list = PyUnicode_FromString("");
    for (int i = 0; list && names[i]; i++)
        PyUnicode_AppendAndDel(&list, PyUnicode_FromFormat("%s%s", i ? ", " : "", names[i]));
    if (list)
        PyErr_Format(PyExc_ValueError, "ExecutionConfig: %s must be one of %U, not %R", field,
                     list, v);
    Py_XDECREF(list);
    return -1;
}

static int to_int64(PyObject *v, const char *field, int64_t lo, int64_t hi, int64_t *out)
{
    if (!PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "ExecutionConfig: %s must be an int, not %R", field, v);
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow || x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "ExecutionConfig: %s=%R is out of range [%lld, %lld]",
                     field, v, (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int to_u64(PyObject *v, const char *field, uint64_t *out)
{
    if (!PyLong_Check(v) || PyBool_Check(v)) {
        PyErr_Format(PyExc_TypeError, "ExecutionConfig: %s must be an int, not %R", field, v);
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "ExecutionConfig: %s=%R is not in [0, 2**64)", field, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* A malloc'ed copy of a str or os.PathLike (NULL for None). */
static int to_path(PyObject *v, const char *field, char **out)
{
    *out = NULL;
    if (v == Py_None)
        return 0;
    PyObject *fs = PyOS_FSPath(v);
    if (!fs || !PyUnicode_Check(fs)) {
        Py_XDECREF(fs);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "ExecutionConfig: %s must be a str path, not %R", field,
                     v);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(fs);
    *out = s ? strdup(s) : NULL;
    Py_DECREF(fs);
    if (!*out)
        return s ? (PyErr_NoMemory(), -1) : -1;
    return 0;
}

/* ---- temperature schedules ---- */

/* Called by the library at each sweep (on the running thread, GIL released). */
typedef struct {
    PyObject *fn;
    PfConfigData *data;
} TempCallback;

static double call_temperature(const char *tensor, int iteration, void *user)
{
    TempCallback *cb = user;
    PyGILState_STATE gil = PyGILState_Ensure();
    double value = 0.0;
    if (!cb->data->callback_error) {
        PyObject *r = PyObject_CallFunction(cb->fn, "si", tensor, iteration);
        value = r ? PyFloat_AsDouble(r) : -1.0;
        Py_XDECREF(r);
        if (PyErr_Occurred()) {
            /* keep the exception for the caller and stop the run */
            PyObject *type, *exc, *tb;
            PyErr_Fetch(&type, &exc, &tb);
            PyErr_NormalizeException(&type, &exc, &tb);
            if (tb)
                PyException_SetTraceback(exc, tb);
            cb->data->callback_error = exc;
            Py_XDECREF(type);
            Py_XDECREF(tb);
            fuse_ctx_interrupt(cb->data->ctx);
            value = 0.0;
        }
    }
    PyGILState_Release(gil);
    return value;
}

/* One schedule: `name` (a tensor or "*") gets a number, a spec string or a
 * callable. */
static int add_schedule(PfConfigData *d, const char *name, PyObject *v)
{
    size_t i = d->n_temps;
    d->temp_names[i] = strdup(name);
    if (!d->temp_names[i])
        return PyErr_NoMemory(), -1;
    d->n_temps++; /* the slot is owned from here on, for pf_config_data_free */
    fuse_temperature *t = &d->temps[i];
    t->name = d->temp_names[i];
    if (PyCallable_Check(v)) {
        TempCallback *cb = PyMem_Calloc(1, sizeof *cb);
        if (!cb)
            return PyErr_NoMemory(), -1;
        cb->fn = Py_NewRef(v);
        cb->data = d;
        d->callbacks[i] = (PyObject *)cb; /* freed by pf_config_data_free */
        t->fn = call_temperature;
        t->user = cb;
    } else if (PyUnicode_Check(v) || (PyNumber_Check(v) && !PyBool_Check(v))) {
        PyObject *text = PyUnicode_Check(v) ? Py_NewRef(v) : PyObject_Str(v);
        const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
        d->temp_specs[i] = s ? strdup(s) : NULL;
        Py_XDECREF(text);
        if (!d->temp_specs[i])
            return s ? (PyErr_NoMemory(), -1) : -1;
        t->spec = d->temp_specs[i];
    } else {
        PyErr_Format(PyExc_TypeError,
                     "ExecutionConfig: a temperature is a number, a schedule string "
                     "(\"linear:START:END:STEPS\", \"piecewise:STEP=VALUE,...\") or a "
                     "callable (tensor, iteration) -> float, not %R", v);
        return -1;
    }
    return 0;
}

/* temperature=: one schedule for every tensor, or a dict tensor -> schedule. */
static int build_temperatures(PfConfigData *d, PyObject *v)
{
    size_t n = PyDict_Check(v) ? (size_t)PyDict_Size(v) : 1;
    d->temps = PyMem_Calloc(n + 1, sizeof *d->temps);
    d->callbacks = PyMem_Calloc(n + 1, sizeof *d->callbacks);
    d->temp_names = PyMem_Calloc(n + 1, sizeof *d->temp_names);
    d->temp_specs = PyMem_Calloc(n + 1, sizeof *d->temp_specs);
    if (!d->temps || !d->callbacks || !d->temp_names || !d->temp_specs)
        return PyErr_NoMemory(), -1;
    if (!PyDict_Check(v))
        return add_schedule(d, "*", v);
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(v, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!name) {
            PyErr_SetString(PyExc_TypeError, "ExecutionConfig: temperature keys are tensor "
                                             "names (str, \"*\" for every tensor)");
            return -1;
        }
        if (add_schedule(d, name, value) < 0)
            return -1;
    }
    return 0;
}

void pf_config_data_free(PfConfigData *d)
{
    for (size_t i = 0; i < d->n_temps; i++) {
        if (d->callbacks && d->callbacks[i]) {
            TempCallback *cb = (TempCallback *)d->callbacks[i];
            Py_DECREF(cb->fn);
            PyMem_Free(cb);
        }
        free(d->temp_names[i]);
        free(d->temp_specs ? d->temp_specs[i] : NULL);
    }
    PyMem_Free(d->temps);
    PyMem_Free(d->callbacks);
    PyMem_Free(d->temp_names);
    PyMem_Free(d->temp_specs);
    free(d->base_dir);
    free(d->out_dir);
    free(d->cache_dir);
    Py_CLEAR(d->callback_error);
    memset(d, 0, sizeof *d);
}

/* ---- building a fuse_config ---- */

/* distributed: False, True or "every_rank" (results on every rank), "rank0"
 * (results on rank 0 only: the other ranks' runs return no outputs). */
static int set_distributed(fuse_config *c, PyObject *v)
{
    if (PyUnicode_Check(v)) {
        const char *s = PyUnicode_AsUTF8(v);
        if (!s)
            return -1;
        if (strcmp(s, "rank0") == 0 || strcmp(s, "every_rank") == 0) {
            c->distributed = s[0] == 'r' ? FUSE_DISTRIBUTED_RANK0 : FUSE_DISTRIBUTED_EVERY_RANK;
            return 0;
        }
        PyErr_Format(PyExc_ValueError,
                     "distributed must be True, False, 'every_rank' or 'rank0', not '%s'", s);
        return -1;
    }
    int b = PyObject_IsTrue(v);
    if (b < 0)
        return -1;
    c->distributed = b ? FUSE_DISTRIBUTED_EVERY_RANK : 0;
    return 0;
}

static int build_fields(PyObject *const *v, PfConfigData *d)
{
    fuse_config *c = &d->cfg;
    int choice;
    int64_t n;
    if (v[F_MODE]) {
        if (to_choice(v[F_MODE], "mode", MODES, &choice) < 0)
            return -1;
        c->mode = (fuse_mode)choice;
    }
    if (v[F_PRECISION]) {
        if (to_choice(v[F_PRECISION], "precision", PRECISIONS, &choice) < 0)
            return -1;
        c->precision = (fuse_precision)choice;
    }
    if (v[F_DEVICE]) {
        if (to_choice(v[F_DEVICE], "device", DEVICES, &choice) < 0)
            return -1;
        c->device = (fuse_device)choice;
    }
    if (v[F_PROJECTION]) {
        if (to_choice(v[F_PROJECTION], "projection", PROJECTIONS, &choice) < 0)
            return -1;
        c->projection = (fuse_projection)choice;
    }
    if (v[F_STRATEGY]) {
        if (to_choice(v[F_STRATEGY], "strategy", STRATEGIES, &choice) < 0)
            return -1;
        c->strategy = (fuse_strategy)choice;
    }
    if (v[F_THREADS]) {
        if (to_int64(v[F_THREADS], "threads", 0, 4096, &n) < 0)
            return -1;
        c->threads = (int)n;
    }
    if (v[F_MAX_ITERS]) {
        if (to_int64(v[F_MAX_ITERS], "max_iters", 0, INT32_MAX, &n) < 0)
            return -1;
        c->max_iters = (int)n;
    }
    if (v[F_SAMPLES]) {
        if (to_int64(v[F_SAMPLES], "samples", 0, INT64_MAX, &n) < 0)
            return -1;
        c->samples = n;
    }
    if (v[F_SEED] && to_u64(v[F_SEED], "seed", &c->seed) < 0)
        return -1;
    if (v[F_MAX_MEMORY] && v[F_MAX_MEMORY] != Py_None &&
        to_u64(v[F_MAX_MEMORY], "max_memory", &c->max_memory) < 0)
        return -1;
    if (v[F_TOL]) {
        c->tol = PyFloat_AsDouble(v[F_TOL]);
        if (c->tol == -1.0 && PyErr_Occurred())
            return -1;
        if (!(c->tol >= 0.0) || !isfinite(c->tol)) {
            PyErr_Format(PyExc_ValueError, "ExecutionConfig: tol must be >= 0, not %R",
                         v[F_TOL]);
            return -1;
        }
    }
    if (v[F_WRITE_SINKS]) {
        int b = PyObject_IsTrue(v[F_WRITE_SINKS]);
        if (b < 0)
            return -1;
        c->write_sinks = b;
    }
    if (v[F_NO_CACHE]) {
        int b = PyObject_IsTrue(v[F_NO_CACHE]);
        if (b < 0)
            return -1;
        c->no_cache = b;
    }
    if (v[F_DISTRIBUTED] && set_distributed(c, v[F_DISTRIBUTED]) < 0)
        return -1;
    if ((v[F_BASE_DIR] && to_path(v[F_BASE_DIR], "base_dir", &d->base_dir) < 0) ||
        (v[F_OUT_DIR] && to_path(v[F_OUT_DIR], "out_dir", &d->out_dir) < 0) ||
        (v[F_CACHE_DIR] && to_path(v[F_CACHE_DIR], "cache_dir", &d->cache_dir) < 0))
        return -1;
    c->base_dir = d->base_dir;
    c->out_dir = d->out_dir;
    c->cache_dir = d->cache_dir;
    if (v[F_TEMPERATURE] && v[F_TEMPERATURE] != Py_None) {
        if (build_temperatures(d, v[F_TEMPERATURE]) < 0)
            return -1;
        c->temperatures = d->temps;
        c->n_temperatures = d->n_temps;
    }
    return 0;
}

int pf_config_build(PyObject *config, fuse_ctx *ctx, PfConfigData *d)
{
    memset(d, 0, sizeof *d);
    fuse_config_init(&d->cfg);
    d->ctx = ctx;
    if (!config || config == Py_None)
        return 0;
    if (!PyObject_TypeCheck(config, &PfConfigType)) {
        PyErr_Format(PyExc_TypeError, "config must be a fusejit.ExecutionConfig, not %R",
                     config);
        return -1;
    }
    if (build_fields(((PfConfig *)config)->values, d) < 0) {
        pf_config_data_free(d);
        return -1;
    }
    return 0;
}

/* ---- the Python type ---- */

static int config_init(PfConfig *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) > 0) {
        PyErr_SetString(PyExc_TypeError, "ExecutionConfig takes keyword arguments only");
        return -1;
    }
    for (int i = 0; i < N_FIELDS; i++)
        Py_CLEAR(self->values[i]);
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (kwds && PyDict_Next(kwds, &pos, &key, &value)) {
        const char *name = PyUnicode_AsUTF8(key);
        if (!name)
            return -1;
        int found = -1;
        for (int i = 0; i < N_FIELDS && found < 0; i++)
            if (strcmp(name, FIELDS[i]) == 0)
                found = i;
        if (strcmp(name, "demand_mode") == 0) {
            /* the seeds' spelling: demand_mode=True is mode="demand" */
            int b = PyObject_IsTrue(value);
            if (b < 0)
                return -1;
            if (!b)
                continue;
            value = PyUnicode_FromString("demand");
            if (!value)
                return -1;
            Py_XSETREF(self->values[F_MODE], value);
            continue;
        }
        if (found < 0) {
            PyErr_Format(PyExc_TypeError, "ExecutionConfig got an unexpected keyword %R", key);
            return -1;
        }
        Py_XSETREF(self->values[found], Py_NewRef(value));
    }
    PfConfigData check;
    if (pf_config_build((PyObject *)self, NULL, &check) < 0)
        return -1;
    pf_config_data_free(&check);
    return 0;
}

static void config_dealloc(PfConfig *self)
{
    for (int i = 0; i < N_FIELDS; i++)
        Py_CLEAR(self->values[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Attributes read back what was given, or the default. */
static PyObject *config_getattro(PfConfig *self, PyObject *name)
{
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    for (int i = 0; s && i < N_FIELDS; i++)
        if (strcmp(s, FIELDS[i]) == 0) {
            if (self->values[i])
                return Py_NewRef(self->values[i]);
            switch (i) {
            case F_MODE: return PyUnicode_FromString("single");
            case F_PRECISION: return PyUnicode_FromString("fp32");
            case F_DEVICE: return PyUnicode_FromString("auto");
            case F_PROJECTION: return PyUnicode_FromString("exact");
            case F_STRATEGY: return PyUnicode_FromString("synchronous");
            case F_THREADS: case F_SAMPLES: case F_SEED: case F_MAX_ITERS: case F_MAX_MEMORY:
                return PyLong_FromLong(0);
            case F_TOL: return PyFloat_FromDouble(0.0);
            case F_WRITE_SINKS: Py_RETURN_TRUE;
            case F_NO_CACHE: case F_DISTRIBUTED: Py_RETURN_FALSE;
            default: Py_RETURN_NONE;
            }
        }
    return PyObject_GenericGetAttr((PyObject *)self, name);
}

static PyObject *config_repr(PfConfig *self)
{
    PyObject *parts = PyList_New(0);
    for (int i = 0; parts && i < N_FIELDS; i++) {
        if (!self->values[i])
            continue;
        PyObject *p = PyUnicode_FromFormat("%s=%R", FIELDS[i], self->values[i]);
        if (!p || PyList_Append(parts, p) < 0)
            Py_CLEAR(parts);
        Py_XDECREF(p);
    }
    if (!parts)
        return NULL;
    PyObject *sep = PyUnicode_FromString(", ");
    PyObject *joined = sep ? PyUnicode_Join(sep, parts) : NULL;
    PyObject *r = joined ? PyUnicode_FromFormat("ExecutionConfig(%U)", joined) : NULL;
    Py_XDECREF(joined);
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return r;
}

PyTypeObject PfConfigType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fusejit.ExecutionConfig",
    .tp_basicsize = sizeof(PfConfig),
    .tp_dealloc = (destructor)config_dealloc,
    .tp_repr = (reprfunc)config_repr,
    .tp_getattro = (getattrofunc)config_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ExecutionConfig(*, mode='single', precision='fp32', device='auto', threads=0,\n"
              "    projection='exact', samples=0, seed=0, temperature=None, max_iters=0,\n"
              "    tol=0.0, strategy='synchronous', base_dir=None, out_dir=None,\n"
              "    write_sinks=True, cache_dir=None, no_cache=False, max_memory=0,\n"
              "    distributed=False, demand_mode=False)\n\n"
              "How program.compile compiles and runs a program (a fuse_config).\n"
              "precision: the element type of every tensor, 'fp32', 'fp64', 'bf16'\n"
              "(computed in float32; outputs come back as float32 arrays, NumPy having\n"
              "no bfloat16) or 'fp16'.\n"
              "distributed: run across the MPI ranks of `mpirun -np R python3 ...`\n"
              "(a build with Open MPI; results equal one process's): True or\n"
              "'every_rank' gives every rank the outputs, 'rank0' only rank 0 (the\n"
              "others' runs return an empty dict, and move fewer bytes).\n"
              "temperature: a number or schedule string for every tensor, a callable\n"
              "(tensor, iteration) -> float, or a dict tensor name -> one of those.",
    .tp_init = (initproc)config_init,
    .tp_new = PyType_GenericNew,
};
