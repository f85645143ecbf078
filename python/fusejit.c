/*
 * fusejit.c: the fusejit module. Its initialisation, the exceptions (one class per
 * library status, carrying the diagnostic's file, line and column) and the file
 * functions load and save.
 */
#include "pyfuse.h"

#include <stdlib.h>
#include <string.h>

PyObject *pf_numpy;
PyObject *pf_json;

static PyObject *fuse_error;                       /* fusejit.FuseError */
static PyObject *fuse_warning;                     /* fusejit.FuseWarning */
static PyObject *status_errors[FUSE_STATUS_COUNT]; /* its subclass per status */
static unsigned long main_thread_ident;
static fuse_ctx *file_ctx; /* the context of load and save, made on first use */

/* Class names of the statuses; FUSE_E_INTERRUPTED raises KeyboardInterrupt. */
static const char *const STATUS_CLASSES[FUSE_STATUS_COUNT] = {
    [FUSE_E_SYNTAX] = "FuseSyntaxError",   [FUSE_E_SHAPE] = "ShapeError",
    [FUSE_E_IO] = "FuseIOError",           [FUSE_E_NOMEM] = "FuseMemoryError",
    [FUSE_E_JIT] = "JitError",             [FUSE_E_RUNTIME] = "FuseRuntimeError",
    [FUSE_E_ARG] = "ArgumentError",        [FUSE_E_UNSUPPORTED] = "UnsupportedError",
    [FUSE_E_NOT_CONVERGED] = "NotConvergedError", [FUSE_E_BUSY] = "BusyError",
};

PyObject *pf_error_class(fuse_status status)
{
    if (status == FUSE_E_INTERRUPTED)
        return PyExc_KeyboardInterrupt;
    if ((unsigned)status < FUSE_STATUS_COUNT && status_errors[status])
        return status_errors[status];
    return fuse_error;
}

int pf_on_main_thread(void)
{
    return PyThread_get_thread_ident() == main_thread_ident;
}

PyObject *pf_json_loads(const char *text)
{
    return PyObject_CallMethod(pf_json, "loads", "s", text);
}

/* ---- warnings ---- */

void pf_log_to_warnings(int level, const char *msg, void *user)
{
    (void)user;
    if (level > FUSE_LEVEL_WARNING)
        return;
    /* called inside a library call, usually with the GIL released */
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb); /* an exception in flight stays as it was */
    if (PyErr_WarnEx(fuse_warning, msg, 1) < 0)
        PyErr_WriteUnraisable(fuse_warning); /* e.g. a filter that turns it into an error */
    PyErr_Restore(type, value, tb);
    PyGILState_Release(gil);
}

/* ---- exceptions ---- */

/* Splits the first line of a diagnostic, "FILE:LINE:COL: error: MESSAGE" (or
 * "FILE: error: ...", "error: ..."), into its parts. */
typedef struct {
    PyObject *file, *line, *column, *message; /* new references; None when absent */
} Diagnostic;

/* Parses ":DIGITS" at the end of s[0..*len), shortening *len past it; -1 if none. */
static long trailing_number(const char *s, size_t *len)
{
    size_t end = *len, i = end;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
        i--;
    if (i == end || i == 0 || s[i - 1] != ':' || end - i > 9)
        return -1;
    long v = strtol(s + i, NULL, 10);
    *len = i - 1;
    return v;
}

static int parse_diagnostic(const char *text, Diagnostic *d)
{
    size_t first_line = strcspn(text, "\n");
    const char *marker = strstr(text, "error: ");
    d->file = Py_NewRef(Py_None);
    d->line = Py_NewRef(Py_None);
    d->column = Py_NewRef(Py_None);
    if (!marker || (size_t)(marker - text) > first_line) {
        d->message = PyUnicode_FromStringAndSize(text, (Py_ssize_t)first_line);
        return d->message ? 0 : -1;
    }
    const char *msg = marker + strlen("error: ");
    d->message = PyUnicode_FromStringAndSize(msg, (Py_ssize_t)(text + first_line - msg));
    if (!d->message)
        return -1;
    if (marker == text || marker - text < 2 || marker[-2] != ':')
        return 0;
    size_t len = (size_t)(marker - text) - 2; /* the location, before ": error: " */
    long b = trailing_number(text, &len);
    long a = b >= 0 ? trailing_number(text, &len) : -1;
    if (a >= 0) {
        Py_SETREF(d->line, PyLong_FromLong(a));
        Py_SETREF(d->column, PyLong_FromLong(b));
    } else if (b >= 0) {
        Py_SETREF(d->line, PyLong_FromLong(b));
    }
    Py_SETREF(d->file, PyUnicode_DecodeFSDefaultAndSize(text, (Py_ssize_t)len));
    return d->file && d->line && d->column ? 0 : -1;
}

static PyObject *raise_text(fuse_status status, const char *text)
{
    Diagnostic d = {0};
    if (parse_diagnostic(text, &d) < 0)
        goto done;
    PyObject *cls = pf_error_class(status);
    PyObject *exc = PyObject_CallFunction(cls, "s", text);
    if (!exc)
        goto done;
    if (cls != PyExc_KeyboardInterrupt) {
        PyObject *st = PyLong_FromLong(status);
        PyObject *name = PyUnicode_FromString(fuse_status_name(status));
        int ok = st && name && PyObject_SetAttrString(exc, "status", st) == 0 &&
                 PyObject_SetAttrString(exc, "status_name", name) == 0 &&
                 PyObject_SetAttrString(exc, "file", d.file) == 0 &&
                 PyObject_SetAttrString(exc, "line", d.line) == 0 &&
                 PyObject_SetAttrString(exc, "column", d.column) == 0 &&
                 PyObject_SetAttrString(exc, "message", d.message) == 0;
        Py_XDECREF(st);
        Py_XDECREF(name);
        if (!ok) {
            Py_DECREF(exc);
            goto done;
        }
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
done:
    Py_XDECREF(d.file);
    Py_XDECREF(d.line);
    Py_XDECREF(d.column);
    Py_XDECREF(d.message);
    return NULL;
}

PyObject *pf_raise(fuse_ctx *ctx, fuse_status status)
{
    const char *text = fuse_ctx_error(ctx);
    return raise_text(status, text && *text ? text : fuse_status_name(status));
}

PyObject *pf_raise_msg(fuse_status status, const char *msg)
{
    char *text = malloc(strlen(msg) + 8);
    if (!text)
        return PyErr_NoMemory();
    strcpy(text, "error: ");
    strcat(text, msg);
    raise_text(status, text);
    free(text);
    return NULL;
}

static int add_exceptions(PyObject *m)
{
    fuse_error = PyErr_NewExceptionWithDoc(
        "fusejit.FuseError",
        "An error of the fuse-jit library. str() is the full diagnostic; .status (the\n"
        "library's status code), .status_name, .file, .line, .column (None when the\n"
        "diagnostic has no location) and .message (the text after 'error: ').",
        NULL, NULL);
    if (!fuse_error || PyModule_AddObjectRef(m, "FuseError", fuse_error) < 0)
        return -1;
    fuse_warning = PyErr_NewExceptionWithDoc(
        "fusejit.FuseWarning", "A warning of the fuse-jit library (its log, level warning).",
        PyExc_UserWarning, NULL);
    if (!fuse_warning || PyModule_AddObjectRef(m, "FuseWarning", fuse_warning) < 0)
        return -1;
    for (int s = 0; s < FUSE_STATUS_COUNT; s++) {
        if (!STATUS_CLASSES[s])
            continue;
        char qualified[64];
        snprintf(qualified, sizeof qualified, "fusejit.%s", STATUS_CLASSES[s]);
        PyObject *bases = s == FUSE_E_ARG ? PyTuple_Pack(2, fuse_error, PyExc_ValueError)
                                          : PyTuple_Pack(1, fuse_error);
        if (!bases)
            return -1;
        status_errors[s] = PyErr_NewException(qualified, bases, NULL);
        Py_DECREF(bases);
        if (!status_errors[s] ||
            PyModule_AddObjectRef(m, STATUS_CLASSES[s], status_errors[s]) < 0)
            return -1;
    }
    return 0;
}

/* ---- load and save ---- */

static fuse_ctx *get_file_ctx(void)
{
    if (!file_ctx && fuse_ctx_new(&file_ctx) != FUSE_OK) {
        file_ctx = NULL;
        pf_raise_msg(FUSE_E_JIT, "could not create a fuse-jit context");
    }
    return file_ctx;
}

/* A UTF-8 copy of a path (str or os.PathLike); NULL with an exception. */
static PyObject *fs_path(PyObject *path)
{
    PyObject *bytes = NULL;
    if (!PyUnicode_FSConverter(path, &bytes))
        return NULL;
    return bytes;
}

static PyObject *fusejit_load(PyObject *module, PyObject *arg)
{
    (void)module;
    fuse_ctx *ctx = get_file_ctx();
    PyObject *path = ctx ? fs_path(arg) : NULL;
    if (!path)
        return NULL;
    fuse_tensor t;
    fuse_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fuse_tensor_load(ctx, PyBytes_AS_STRING(path), &t);
    Py_END_ALLOW_THREADS
    Py_DECREF(path);
    if (st != FUSE_OK)
        return pf_raise(ctx, st);
    return pf_tensor_to_array(&t);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* .npz of a mapping or array that is not an unchanged run result: numpy's writer,
 * which produces the same format (members stored, or deflated with compress). */
static PyObject *save_npz_numpy(PyObject *path, PyObject *obj, int compress)
{
    const char *fn = compress ? "savez_compressed" : "savez";
    PyObject *save = PyObject_GetAttrString(pf_numpy, fn);
    if (!save)
        return NULL;
    PyObject *args = PyTuple_Pack(PyDict_Check(obj) ? 1 : 2, path, obj);
    PyObject *r = args ? PyObject_Call(save, args, PyDict_Check(obj) ? obj : NULL) : NULL;
    Py_XDECREF(args);
    Py_DECREF(save);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *fusejit_save(PyObject *module, PyObject *args, PyObject *kwds)
{
    (void)module;
    static char *kwlist[] = {"path", "data", "compress", NULL};
    PyObject *path_arg, *obj;
    int compress = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|p:save", kwlist, &path_arg, &obj,
                                     &compress))
        return NULL;
    fuse_ctx *ctx = get_file_ctx();
    PyObject *path = ctx ? fs_path(path_arg) : NULL;
    if (!path)
        return NULL;
    const char *p = PyBytes_AS_STRING(path);
    fuse_status st;
    if (ends_with(p, ".npz")) {
        const fuse_outputs *map = pf_outputs_map(obj);
        if (!map) {
            PyObject *r = save_npz_numpy(path_arg, obj, compress);
            Py_DECREF(path);
            return r;
        }
        Py_BEGIN_ALLOW_THREADS
        st = compress ? fuse_outputs_save_npz_compressed(ctx, map, p)
                      : fuse_outputs_save_npz(ctx, map, p);
        Py_END_ALLOW_THREADS
    } else {
        fuse_tensor t;
        Py_buffer view;
        int is_f32;
        if (pf_tensor_from_object(obj, &t, &view, &is_f32) < 0) {
            Py_DECREF(path);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        st = fuse_tensor_save(ctx, &t, p);
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&view);
    }
    Py_DECREF(path);
    if (st != FUSE_OK)
        return pf_raise(ctx, st);
    Py_RETURN_NONE;
}

/* ---- the module ---- */

static PyMethodDef module_methods[] = {
    {"load", (PyCFunction)fusejit_load, METH_O,
     "load(path) -> ndarray\n\nReads a .npy file (fuse_tensor_load) in its own dtype."},
    {"save", (PyCFunction)(void (*)(void))fusejit_save, METH_VARARGS | METH_KEYWORDS,
     "save(path, data, compress=False)\n\n"
     "Writes an array to .npy, .json or .jsonl (fuse_tensor_save), or the result of a\n"
     "run to .npz (fuse_outputs_save_npz; deflated with compress=True). Any other dict\n"
     "or array saved as .npz goes through numpy.savez."},
    {"aligned", (PyCFunction)pf_aligned, METH_O,
     "aligned(array) -> ndarray\n\nA float32 C-contiguous copy at a 64-byte aligned "
     "address: runs then use it in place, without a copy."},
    {NULL, NULL, 0, NULL},
};

static void module_free(void *m)
{
    (void)m;
    fuse_ctx_free(file_ctx);
    file_ctx = NULL;
}

static struct PyModuleDef fusejit_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fusejit",
    .m_doc = "fuse-jit from Python: compile Fuse tensor-equation programs to native code "
             "and run them on NumPy arrays.\n\n"
             "    prog = fusejit.Program(\"examples/attention.fuse\")\n"
             "    runner = prog.compile(fusejit.ExecutionConfig(mode=\"fixpoint\"))\n"
             "    out = runner.run(inputs={\"V\": v})   # dict name -> ndarray\n",
    .m_size = -1,
    .m_methods = module_methods,
    .m_free = module_free,
};

static int record_main_thread(void)
{
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *main = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
    if (ident)
        main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_XDECREF(ident);
    Py_XDECREF(main);
    Py_XDECREF(threading);
    return ident && !PyErr_Occurred() ? 0 : -1;
}

PyMODINIT_FUNC PyInit_fusejit(void)
{
    pf_numpy = PyImport_ImportModule("numpy");
    pf_json = pf_numpy ? PyImport_ImportModule("json") : NULL;
    if (!pf_json || record_main_thread() < 0)
        return NULL;
    if (PyType_Ready(&PfConfigType) < 0 || PyType_Ready(&PfProgramType) < 0 ||
        PyType_Ready(&PfRunnerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fusejit_module);
    if (!m)
        return NULL;
    if (add_exceptions(m) < 0 || pf_arrays_init(m) < 0 ||
        PyModule_AddObjectRef(m, "ExecutionConfig", (PyObject *)&PfConfigType) < 0 ||
        PyModule_AddObjectRef(m, "Program", (PyObject *)&PfProgramType) < 0 ||
        PyModule_AddObjectRef(m, "Runner", (PyObject *)&PfRunnerType) < 0 ||
        PyModule_AddStringConstant(m, "__version__", fuse_version_string()) < 0 ||
        PyModule_AddIntConstant(m, "VERSION_NUMBER", fuse_version_number()) < 0 ||
        PyModule_AddObject(m, "MEMORY_UNLIMITED",
                           PyLong_FromUnsignedLongLong(FUSE_MEMORY_UNLIMITED)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
