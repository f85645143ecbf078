/*
 * runner.c: fusejit.Runner, a program compiled for one configuration. Calls into
 * the library release the GIL. A call on the main thread turns Ctrl-C into
 * fuse_ctx_interrupt: the run stops at its next check and KeyboardInterrupt is
 * raised, leaving the runner usable.
 */
#include "pyfuse.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    PfProgram *program; /* keeps the context alive as long as the runner */
    fuse_runner *run;
    PfConfigData config; /* the fuse_config and the schedules it points to */
} PfRunner;

/* ---- Ctrl-C during a call ---- */

/* Python handles signals on the main thread only, so only a call there installs
 * this handler: it interrupts the context of the call in progress, then passes
 * the signal on to the handler it replaced (normally Python's, which makes
 * KeyboardInterrupt pending). */
static _Atomic(fuse_ctx *) sigint_ctx;
static struct sigaction sigint_previous;

static void on_sigint(int sig, siginfo_t *info, void *uctx)
{
    fuse_ctx *ctx = atomic_load(&sigint_ctx);
    if (ctx)
        fuse_ctx_interrupt(ctx);
    if (sigint_previous.sa_flags & SA_SIGINFO)
        sigint_previous.sa_sigaction(sig, info, uctx);
    else if (sigint_previous.sa_handler != SIG_DFL && sigint_previous.sa_handler != SIG_IGN)
        sigint_previous.sa_handler(sig);
}

/* Installs on_sigint for a call on ctx; 1 when installed (restore it after). */
static int sigint_begin(fuse_ctx *ctx)
{
    if (!pf_on_main_thread())
        return 0;
    struct sigaction current;
    if (sigaction(SIGINT, NULL, &current) != 0)
        return 0;
    /* SIG_DFL kills the process and SIG_IGN ignores Ctrl-C: leave both alone; a
     * call made from a temperature callback during a call leaves the outer one's */
    if (!(current.sa_flags & SA_SIGINFO) &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN))
        return 0;
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_sigint)
        return 0;
    sigint_previous = current;
    atomic_store(&sigint_ctx, ctx);
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_sigint;
    ours.sa_flags = SA_SIGINFO | (current.sa_flags & SA_ONSTACK);
    sigemptyset(&ours.sa_mask);
    if (sigaction(SIGINT, &ours, NULL) != 0) {
        atomic_store(&sigint_ctx, NULL);
        return 0;
    }
    return 1;
}

static void sigint_end(int installed)
{
    if (!installed)
        return;
    sigaction(SIGINT, &sigint_previous, NULL);
    atomic_store(&sigint_ctx, NULL);
}

/* ---- results ---- */

/* Raises the exception a temperature callback left, if any; -1 when it did. */
static int raise_callback_error(PfRunner *self)
{
    PyObject *exc = self->config.callback_error;
    if (!exc)
        return 0;
    self->config.callback_error = NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return -1;
}

/* The Python result of a call that returned `st` and, for FUSE_OK and
 * FUSE_E_NOT_CONVERGED, the output map `out` (taken over). */
static PyObject *finish_call(PfRunner *self, fuse_status st, fuse_outputs *out)
{
    int has_out = st == FUSE_OK || st == FUSE_E_NOT_CONVERGED;
    if (raise_callback_error(self) < 0) {
        if (has_out)
            fuse_outputs_free(out);
        return NULL;
    }
    if (st == FUSE_E_INTERRUPTED) {
        /* the pending signal raises through Python's own handler */
        if (PyErr_CheckSignals() < 0)
            return NULL;
        PyErr_SetString(PyExc_KeyboardInterrupt, "the run was interrupted");
        return NULL;
    }
    if (!has_out)
        return pf_raise(self->program->ctx, st);
    PyObject *dict = pf_outputs_to_dict(out);
    if (!dict || st == FUSE_OK)
        return dict;
    /* not converged: NotConvergedError carries the last sweep's outputs */
    pf_raise(self->program->ctx, st);
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (exc && PyObject_SetAttrString(exc, "outputs", dict) < 0)
        PyErr_Clear();
    Py_DECREF(dict);
    PyErr_Restore(type, exc, tb);
    return NULL;
}

static int check_open(PfRunner *self)
{
    if (self->run)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "the Runner is not compiled (use Program.compile)");
    return -1;
}

/* ---- creation ---- */

PyObject *pf_runner_new(PfProgram *prog, PyObject *config, PyObject *inputs)
{
    PfRunner *self = (PfRunner *)PfRunnerType.tp_alloc(&PfRunnerType, 0);
    if (!self)
        return NULL;
    self->program = (PfProgram *)Py_NewRef((PyObject *)prog);
    PfInputs in;
    memset(&in, 0, sizeof in);
    if (pf_config_build(config, prog->ctx, &self->config) < 0 ||
        pf_inputs_from_dict(inputs, &in) < 0) {
        pf_inputs_release(&in);
        Py_DECREF(self);
        return NULL;
    }
    pf_program_lock(prog);
    fuse_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fuse_runner_new(prog->prog, &self->config.cfg, in.items, in.n, &self->run);
    Py_END_ALLOW_THREADS
    pf_program_unlock(prog);
    pf_inputs_release(&in);
    if (st != FUSE_OK)
        self->run = NULL;
    if (raise_callback_error(self) < 0 || (st != FUSE_OK && !pf_raise(prog->ctx, st))) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void runner_dealloc(PfRunner *self)
{
    fuse_runner_free(self->run);
    pf_config_data_free(&self->config);
    Py_XDECREF(self->program);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- methods ---- */

static PyObject *runner_run(PfRunner *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"inputs", NULL};
    PyObject *inputs = Py_None;
    if (check_open(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|O:run", kwlist, &inputs))
        return NULL;
    PfInputs in;
    if (pf_inputs_from_dict(inputs, &in) < 0) {
        pf_inputs_release(&in);
        return NULL;
    }
    fuse_outputs *out = NULL;
    fuse_status st;
    int sig = sigint_begin(self->program->ctx);
    Py_BEGIN_ALLOW_THREADS
    st = fuse_runner_run(self->run, in.items, in.n, &out);
    Py_END_ALLOW_THREADS
    sigint_end(sig);
    pf_inputs_release(&in);
    return finish_call(self, st, out);
}

/* "x=3,y=-1" from a selectors string and keyword axes. */
static PyObject *selector_text(PyObject *selectors, PyObject *axes)
{
    PyObject *parts = PyList_New(0);
    if (!parts)
        return NULL;
    if (selectors && selectors != Py_None) {
        if (!PyUnicode_Check(selectors)) {
            PyErr_SetString(PyExc_TypeError, "selectors must be a str like \"x=3,y=-1\"");
            goto fail;
        }
        if (PyUnicode_GET_LENGTH(selectors) > 0 && PyList_Append(parts, selectors) < 0)
            goto fail;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (axes && PyDict_Next(axes, &pos, &key, &value)) {
        if (!PyLong_Check(value) || PyBool_Check(value)) {
            PyErr_Format(PyExc_TypeError, "query: axis %U takes an int position, not %R", key,
                         value);
            goto fail;
        }
        PyObject *part = PyUnicode_FromFormat("%U=%S", key, value);
        if (!part || PyList_Append(parts, part) < 0) {
            Py_XDECREF(part);
            goto fail;
        }
        Py_DECREF(part);
    }
    PyObject *comma = PyUnicode_FromString(",");
    PyObject *text = comma ? PyUnicode_Join(comma, parts) : NULL;
    Py_XDECREF(comma);
    Py_DECREF(parts);
    return text;
fail:
    Py_DECREF(parts);
    return NULL;
}

static PyObject *runner_query(PfRunner *self, PyObject *args, PyObject *kwds)
{
    PyObject *name, *selectors = Py_None, *inputs = Py_None;
    if (check_open(self) < 0)
        return NULL;
    if (!PyArg_ParseTuple(args, "U|O:query", &name, &selectors))
        return NULL;
    /* selectors= and inputs= are keywords of their own; the others are axes */
    PyObject *axes = kwds ? PyDict_Copy(kwds) : PyDict_New();
    if (!axes)
        return NULL;
    PyObject *v;
    if ((v = PyDict_GetItemString(axes, "inputs"))) {
        inputs = v;
        Py_INCREF(inputs);
        PyDict_DelItemString(axes, "inputs");
    } else {
        Py_INCREF(inputs);
    }
    if ((v = PyDict_GetItemString(axes, "selectors"))) {
        selectors = v;
        Py_INCREF(selectors);
        PyDict_DelItemString(axes, "selectors");
    } else {
        Py_INCREF(selectors);
    }
    PyObject *text = selector_text(selectors, axes);
    Py_DECREF(axes);
    Py_DECREF(selectors);
    PfInputs in;
    memset(&in, 0, sizeof in);
    PyObject *result = NULL;
    if (!text || pf_inputs_from_dict(inputs, &in) < 0)
        goto done;
    const char *c_name = PyUnicode_AsUTF8(name);
    const char *c_sel = PyUnicode_AsUTF8(text);
    if (!c_name || !c_sel)
        goto done;
    fuse_outputs *out = NULL;
    fuse_status st;
    int sig = sigint_begin(self->program->ctx);
    Py_BEGIN_ALLOW_THREADS
    st = fuse_runner_query(self->run, c_name, *c_sel ? c_sel : NULL, in.items, in.n, &out);
    Py_END_ALLOW_THREADS
    sigint_end(sig);
    PyObject *dict = finish_call(self, st, out);
    if (dict) {
        /* the map has one entry, named like the query */
        PyObject *values = PyDict_Values(dict);
        if (values && PyList_GET_SIZE(values) == 1)
            result = Py_NewRef(PyList_GET_ITEM(values, 0));
        else if (values)
            PyErr_SetString(PyExc_RuntimeError, "query: the library returned no result");
        Py_XDECREF(values);
        Py_DECREF(dict);
    }
done:
    pf_inputs_release(&in);
    Py_XDECREF(text);
    Py_DECREF(inputs);
    return result;
}

/* A text the library returns (freed with fuse_free), as str or parsed JSON. */
static PyObject *text_result(PfRunner *self, fuse_status st, char *text, int json)
{
    if (st != FUSE_OK)
        return pf_raise(self->program->ctx, st);
    PyObject *r = json ? pf_json_loads(text) : PyUnicode_FromString(text);
    fuse_free(text);
    return r;
}

static PyObject *runner_trace(PfRunner *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"json", NULL};
    int json = 1;
    if (check_open(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|p:trace", kwlist, &json))
        return NULL;
    char *text = NULL;
    fuse_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fuse_runner_trace(self->run, json, &text);
    Py_END_ALLOW_THREADS
    return text_result(self, st, text, json);
}

static PyObject *runner_emit(PfRunner *self, PyObject *args)
{
    const char *what;
    if (check_open(self) < 0 || !PyArg_ParseTuple(args, "s:emit", &what))
        return NULL;
    char *text = NULL;
    fuse_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fuse_runner_emit(self->run, what, &text);
    Py_END_ALLOW_THREADS
    return text_result(self, st, text, 0);
}

static PyObject *runner_explain_distributed(PfRunner *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    char *text = NULL;
    fuse_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fuse_runner_explain_distributed(self->run, &text);
    Py_END_ALLOW_THREADS
    return text_result(self, st, text, 0);
}

static PyObject *runner_reset(PfRunner *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    fuse_status st = fuse_runner_reset(self->run);
    if (st != FUSE_OK)
        return pf_raise(self->program->ctx, st);
    Py_RETURN_NONE;
}

static PyObject *runner_interrupt(PfRunner *self, PyObject *unused)
{
    (void)unused;
    fuse_ctx_interrupt(self->program->ctx);
    Py_RETURN_NONE;
}

static PyObject *runner_timings(PfRunner *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    fuse_timings t = {.size = sizeof t};
    fuse_status st = fuse_runner_timings(self->run, &t);
    if (st != FUSE_OK)
        return pf_raise(self->program->ctx, st);
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:d,s:d,s:O,s:K}", "parse_ms", t.parse_ms,
                         "check_ms", t.check_ms, "lower_ms", t.lower_ms, "compile_ms",
                         t.compile_ms, "cache_load_ms", t.cache_load_ms, "last_run_ms",
                         t.last_run_ms, "is_cache_hit", t.is_cache_hit ? Py_True : Py_False,
                         "flops", (unsigned long long)t.flops);
}

static PyObject *runner_program(PfRunner *self, void *closure)
{
    (void)closure;
    return Py_NewRef((PyObject *)self->program);
}

static PyMethodDef runner_methods[] = {
    {"run", (PyCFunction)(void (*)(void))runner_run, METH_VARARGS | METH_KEYWORDS,
     "run(inputs=None) -> Outputs\n\n"
     "Runs the program once. inputs: a dict name -> array (anything with the buffer\n"
     "protocol or that numpy.asarray takes); a C-contiguous float32 buffer is\n"
     "used in place (no copy), others are converted. Returns a dict export name -> NumPy array sharing the library's\n"
     "memory. A fixpoint that does not converge raises NotConvergedError with the\n"
     "last sweep's .outputs; Ctrl-C raises KeyboardInterrupt."},
    {"query", (PyCFunction)(void (*)(void))runner_query, METH_VARARGS | METH_KEYWORDS,
     "query(name, selectors=None, inputs=None, **axes) -> ndarray\n\n"
     "Computes only what `name` depends on, to a fixpoint. Keyword axes select one\n"
     "position each and drop the axis: query('Path', x=3); selectors=\"x=3,y=-1\"\n"
     "does the same for axis names that are not Python identifiers."},
    {"trace", (PyCFunction)(void (*)(void))runner_trace, METH_VARARGS | METH_KEYWORDS,
     "trace(json=True) -> dict\n\nThe explanation of the last run (per sweep and "
     "equation); json=False gives the text."},
    {"emit", (PyCFunction)runner_emit, METH_VARARGS,
     "emit(what) -> str\n\nThe generated code: 'llvm', 'llvm-raw' or 'asm'."},
    {"explain_distributed", (PyCFunction)runner_explain_distributed, METH_NOARGS,
     "explain_distributed() -> str\n\nHow a runner compiled with distributed=True splits its "
     "equations across the MPI ranks, and the bytes each moves (ArgumentError otherwise)."},
    {"reset", (PyCFunction)runner_reset, METH_NOARGS,
     "reset()\n\nStreaming programs: forgets every stored time step."},
    {"interrupt", (PyCFunction)runner_interrupt, METH_NOARGS,
     "interrupt()\n\nStops the runs in progress on this runner's program (any thread); "
     "each raises KeyboardInterrupt."},
    {"timings", (PyCFunction)runner_timings, METH_NOARGS,
     "timings() -> dict\n\nMilliseconds of the compile's phases and of the last run."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef runner_getset[] = {
    {"program", (getter)runner_program, NULL, "The Program this runner was compiled from.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PfRunnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fusejit.Runner",
    .tp_basicsize = sizeof(PfRunner),
    .tp_dealloc = (destructor)runner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A program compiled to native code (Program.compile). One call at a time:\n"
              "a second call from another thread while one runs raises BusyError.",
    .tp_methods = runner_methods,
    .tp_getset = runner_getset,
};
