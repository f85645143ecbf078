/*
 * program.c: fusejit.Program, a parsed and checked program. Each Program owns a
 * context (its JIT session and diagnostics), which its runners share; a lock
 * lets one thread at a time use the program, as the library requires.
 */
#include "pyfuse.h"

#include <pythread.h>
#include <string.h>
#include <sys/stat.h>

/* Takes the program's lock, waiting with the GIL released when it is held. */
void pf_program_lock(PfProgram *self)
{
    if (PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
        return;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(self->lock, WAIT_LOCK);
    Py_END_ALLOW_THREADS
}

void pf_program_unlock(PfProgram *self)
{
    PyThread_release_lock(self->lock);
}

/* A str source is a path when it is one line naming an existing file or ending
 * in .fuse; os.PathLike objects are always paths. */
static int looks_like_path(PyObject *source, const char *text)
{
    if (!PyUnicode_Check(source))
        return 1;
    if (strchr(text, '\n'))
        return 0;
    size_t n = strlen(text);
    struct stat st;
    return (n > 5 && strcmp(text + n - 5, ".fuse") == 0) ||
           (stat(text, &st) == 0 && S_ISREG(st.st_mode));
}

/* params: a dict name -> number for the program's v2 `param` declarations. */
static int build_params(PyObject *params, fuse_param **out, size_t *n_out, PyObject **keep)
{
    *out = NULL;
    *n_out = 0;
    *keep = NULL;
    if (!params || params == Py_None)
        return 0;
    if (!PyDict_Check(params)) {
        PyErr_SetString(PyExc_TypeError, "params must be a dict name -> number");
        return -1;
    }
    Py_ssize_t n = PyDict_Size(params);
    *out = PyMem_Calloc((size_t)n + 1, sizeof **out);
    *keep = PyDict_Copy(params); /* keeps the names alive */
    if (!*out || !*keep)
        return PyErr_NoMemory(), -1;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(*keep, &pos, &key, &value)) {
        fuse_param *p = &(*out)[*n_out];
        p->name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!p->name) {
            PyErr_SetString(PyExc_TypeError, "param names must be str");
            return -1;
        }
        p->value = PyFloat_AsDouble(value);
        if (p->value == -1.0 && PyErr_Occurred())
            return -1;
        (*n_out)++;
    }
    return 0;
}

static int program_init(PfProgram *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"source", "parser", "params", "name", NULL};
    PyObject *source, *params = NULL;
    const char *parser = "legacy", *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|sOz:Program", kwlist, &source, &parser,
                                     &params, &name))
        return -1;
    if (self->prog) {
        PyErr_SetString(PyExc_RuntimeError, "Program is already initialised");
        return -1;
    }
    fuse_program_options opts;
    fuse_program_options_init(&opts);
    if (strcmp(parser, "legacy") == 0)
        opts.syntax = FUSE_SYNTAX_LEGACY;
    else if (strcmp(parser, "v2") == 0)
        opts.syntax = FUSE_SYNTAX_V2;
    else {
        PyErr_Format(PyExc_ValueError, "parser must be 'legacy' or 'v2', not '%s'", parser);
        return -1;
    }
    PyObject *bytes = NULL, *keep = NULL;
    fuse_param *plist = NULL;
    int result = -1;
    if (PyUnicode_Check(source)) {
        bytes = PyUnicode_AsUTF8String(source);
    } else if (!PyUnicode_FSConverter(source, &bytes)) {
        bytes = NULL;
    }
    if (!bytes || build_params(params, &plist, &opts.n_params, &keep) < 0)
        goto done;
    opts.params = plist;
    const char *text = PyBytes_AS_STRING(bytes);
    int is_path = looks_like_path(source, text);
    if (!self->lock && !(self->lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        goto done;
    }
    fuse_status st = FUSE_OK;
    Py_BEGIN_ALLOW_THREADS
    if (!self->ctx) {
        st = fuse_ctx_new(&self->ctx);
        if (st != FUSE_OK)
            self->ctx = NULL;
        else
            st = fuse_ctx_set_log(self->ctx, pf_log_to_warnings, NULL);
    }
    if (st == FUSE_OK)
        st = is_path ? fuse_program_from_file_opts(self->ctx, text, &opts, &self->prog)
                     : fuse_program_from_text_opts(self->ctx, text, name, &opts, &self->prog);
    Py_END_ALLOW_THREADS
    if (st != FUSE_OK) {
        self->prog = NULL;
        pf_raise(self->ctx, st);
        goto done;
    }
    Py_XSETREF(self->source, Py_NewRef(source));
    self->is_path = is_path;
    result = 0;
done:
    PyMem_Free(plist);
    Py_XDECREF(keep);
    Py_XDECREF(bytes);
    return result;
}

static void program_dealloc(PfProgram *self)
{
    /* runners hold a reference to their program: none is left here */
    fuse_program_free(self->prog);
    fuse_ctx_free(self->ctx);
    if (self->lock)
        PyThread_free_lock(self->lock);
    Py_XDECREF(self->source);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_ready(PfProgram *self)
{
    if (self->prog)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "the Program was not initialised");
    return -1;
}

/* ---- methods ---- */

static PyObject *program_compile(PfProgram *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "inputs", "backend", NULL};
    PyObject *config = Py_None, *inputs = Py_None;
    const char *backend = NULL;
    if (check_ready(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|OOz:compile", kwlist, &config, &inputs,
                                     &backend))
        return NULL;
    /* backend= is accepted so that code written for the seeds' evaluators runs:
     * every backend name means fuse-jit's native code */
    if (backend && strcmp(backend, "jit") != 0 && strcmp(backend, "llvm") != 0 &&
        strcmp(backend, "numpy") != 0) {
        PyErr_Format(PyExc_ValueError,
                     "backend must be 'jit' (or 'llvm', 'numpy': the same native code), "
                     "not '%s'", backend);
        return NULL;
    }
    return pf_runner_new(self, config, inputs);
}

/* A text the library returns (freed with fuse_free), as str or parsed JSON. */
static PyObject *text_result(PfProgram *self, fuse_status st, char *text, int json)
{
    if (st != FUSE_OK)
        return pf_raise(self->ctx, st);
    PyObject *r = json ? pf_json_loads(text) : PyUnicode_FromString(text);
    fuse_free(text);
    return r;
}

static PyObject *program_explain(PfProgram *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"json", NULL};
    int json = 1;
    if (check_ready(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|p:explain", kwlist, &json))
        return NULL;
    char *text = NULL;
    pf_program_lock(self);
    fuse_status st = fuse_program_explain(self->prog, json, &text);
    PyObject *r = text_result(self, st, text, json);
    pf_program_unlock(self);
    return r;
}

static PyObject *program_dump(PfProgram *self, PyObject *args)
{
    const char *what;
    if (check_ready(self) < 0 || !PyArg_ParseTuple(args, "s:dump", &what))
        return NULL;
    char *text = NULL;
    pf_program_lock(self);
    fuse_status st = fuse_program_dump(self->prog, what, &text);
    PyObject *r = text_result(self, st, text, 0);
    pf_program_unlock(self);
    return r;
}

/* The inputs or exports a program lists (fuse_program_tensor_info) as dicts. */
static PyObject *tensor_list(PfProgram *self, int which)
{
    if (check_ready(self) < 0)
        return NULL;
    pf_program_lock(self);
    size_t n = fuse_program_tensor_count(self->prog, which);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        fuse_tensor_info info = {.size = sizeof info};
        fuse_status st = fuse_program_tensor_info(self->prog, which, i, &info);
        if (st != FUSE_OK) {
            Py_CLEAR(list);
            pf_raise(self->ctx, st);
            break;
        }
        PyObject *shape = Py_None;
        Py_INCREF(shape);
        if (info.is_shape_known) {
            Py_SETREF(shape, PyTuple_New(info.rank));
            for (int k = 0; shape && k < info.rank; k++)
                PyTuple_SET_ITEM(shape, k, PyLong_FromLongLong(info.shape[k]));
        }
        PyObject *item = shape ? Py_BuildValue("{s:s,s:i,s:O,s:O,s:O,s:O}", "name", info.name,
                                               "rank", info.rank, "shape", shape, "is_input",
                                               info.is_input ? Py_True : Py_False, "is_export",
                                               info.is_export ? Py_True : Py_False, "is_bool",
                                               info.is_bool ? Py_True : Py_False)
                               : NULL;
        Py_XDECREF(shape);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    pf_program_unlock(self);
    return list;
}

static PyObject *program_inputs(PfProgram *self, void *closure)
{
    (void)closure;
    return tensor_list(self, FUSE_TENSORS_INPUTS);
}

static PyObject *program_exports(PfProgram *self, void *closure)
{
    (void)closure;
    return tensor_list(self, FUSE_TENSORS_EXPORTS);
}

static PyObject *program_repr(PfProgram *self)
{
    if (self->source && self->is_path)
        return PyUnicode_FromFormat("fusejit.Program(%R)", self->source);
    return PyUnicode_FromString("fusejit.Program(<text>)");
}

static PyMethodDef program_methods[] = {
    {"compile", (PyCFunction)(void (*)(void))program_compile, METH_VARARGS | METH_KEYWORDS,
     "compile(config=None, inputs=None, backend=None) -> Runner\n\n"
     "Compiles the program to native code for an ExecutionConfig (None: defaults).\n"
     "inputs (a dict name -> array) fix the shapes of the sources they name; every\n"
     "run must then give the same names. The GIL is released while LLVM compiles."},
    {"explain", (PyCFunction)(void (*)(void))program_explain, METH_VARARGS | METH_KEYWORDS,
     "explain(json=True) -> dict\n\nThe static explanation (sources, equations, order, "
     "recursive components) as a dict; json=False gives the text."},
    {"dump", (PyCFunction)program_dump, METH_VARARGS,
     "dump(what) -> str\n\nThe program's 'ast' or 'ir' as text."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef program_getset[] = {
    {"inputs", (getter)program_inputs, NULL,
     "The sources a run may bind: a list of dicts (name, rank, shape or None, ...).", NULL},
    {"exports", (getter)program_exports, NULL, "The exports, as inputs lists the sources.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PfProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fusejit.Program",
    .tp_basicsize = sizeof(PfProgram),
    .tp_dealloc = (destructor)program_dealloc,
    .tp_repr = (reprfunc)program_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Program(source, parser='legacy', params=None, name=None)\n\n"
              "A parsed and checked Fuse program. source is the program's text, or a\n"
              "path (an os.PathLike, or a one-line str that names an existing file or\n"
              "ends in .fuse); sources of a file resolve beside it, those of a text\n"
              "against the current directory (or the config's base_dir). parser is\n"
              "'legacy' or 'v2'; params (dict) overrides v2 `param` defaults; name\n"
              "is the file name diagnostics give a text. Errors raise FuseError\n"
              "subclasses with .file, .line and .column.",
    .tp_methods = program_methods,
    .tp_getset = program_getset,
    .tp_init = (initproc)program_init,
    .tp_new = PyType_GenericNew,
};
