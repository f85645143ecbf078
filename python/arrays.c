/*
 * arrays.c: tensors between the library and NumPy. Host arrays go in through the
 * buffer protocol (a copy only when the layout or element type needs converting);
 * tensors come out as NumPy arrays over the library's own memory, which a small
 * buffer-exporting object keeps alive: an output map stays allocated until the
 * last array over it is collected.
 */
#include "pyfuse.h"

#include <string.h>

/* ---- the owner of an output map ---- */

typedef struct {
    PyObject_HEAD
    fuse_outputs *out;
} OutputsHandle;

static void handle_dealloc(OutputsHandle *self)
{
    fuse_outputs_free(self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OutputsHandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fusejit._OutputsHandle",
    .tp_basicsize = sizeof(OutputsHandle),
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The library's output map behind the arrays of one run.",
};

/* ---- one tensor's memory, exported through the buffer protocol ---- */

typedef struct {
    PyObject_HEAD
    PyObject *owner;  /* OutputsHandle holding the data, or NULL */
    void *owned;      /* data to fuse_free when there is no owner */
    void *data;
    const char *format;
    Py_ssize_t itemsize, len;
    int rank;
    Py_ssize_t shape[FUSE_MAX_RANK], strides[FUSE_MAX_RANK];
} TensorBuffer;

static void tbuf_dealloc(TensorBuffer *self)
{
    Py_XDECREF(self->owner);
    fuse_free(self->owned);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int tbuf_getbuffer(TensorBuffer *self, Py_buffer *view, int flags)
{
    (void)flags; /* the memory is C-contiguous and writable: every request fits */
    view->buf = self->data;
    view->obj = Py_NewRef((PyObject *)self);
    view->len = self->len;
    view->readonly = 0;
    view->itemsize = self->itemsize;
    view->format = (char *)self->format;
    view->ndim = self->rank;
    view->shape = self->shape;
    view->strides = self->strides;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyBufferProcs tbuf_as_buffer = {.bf_getbuffer = (getbufferproc)tbuf_getbuffer};

static PyTypeObject TensorBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fusejit._TensorBuffer",
    .tp_basicsize = sizeof(TensorBuffer),
    .tp_dealloc = (destructor)tbuf_dealloc,
    .tp_as_buffer = &tbuf_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory of a tensor the library returned, seen by a NumPy array.",
};

/* The buffer-protocol format of a dtype (NULL: none). */
static const char *dtype_format(fuse_dtype d)
{
    static const char *const formats[FUSE_DTYPE_COUNT] = {
        [FUSE_F32] = "f", [FUSE_F64] = "d", [FUSE_I8] = "b",  [FUSE_I16] = "h",
        [FUSE_I32] = "i", [FUSE_I64] = "q", [FUSE_U8] = "B",  [FUSE_U16] = "H",
        [FUSE_U32] = "I", [FUSE_U64] = "Q", [FUSE_BOOL] = "?", [FUSE_F16] = "e",
    };
    return (unsigned)d < FUSE_DTYPE_COUNT ? formats[d] : NULL;
}

static PyObject *array_over(const fuse_tensor *t, PyObject *owner);

/* NumPy has no bfloat16: a bfloat16 tensor (precision='bf16') becomes a float32
 * array of the values it holds exactly (bf16 bits are a float32's top half). */
static PyObject *array_over_bf16(const fuse_tensor *t, PyObject *owner)
{
    Py_ssize_t count = 1;
    for (int k = 0; k < t->rank && k < FUSE_MAX_RANK; k++)
        count *= (Py_ssize_t)t->shape[k];
    uint32_t *wide = malloc(sizeof *wide * (size_t)(count > 0 ? count : 1));
    const uint16_t *bits = t->data;
    for (Py_ssize_t i = 0; wide && i < count; i++)
        wide[i] = (uint32_t)bits[i] << 16;
    if (!owner)
        fuse_free(t->data); /* the copy replaces it */
    if (!wide)
        return PyErr_NoMemory();
    fuse_tensor f = *t;
    f.dtype = FUSE_F32;
    f.data = wide;
    return array_over(&f, NULL); /* the array owns (and frees) the copy */
}

/* A NumPy array over t's data; owner (new reference taken) keeps it alive, or,
 * when owner is NULL, the array frees the data with fuse_free. */
static PyObject *array_over(const fuse_tensor *t, PyObject *owner)
{
    if (t->dtype == FUSE_BF16 && t->rank >= 0 && t->rank <= FUSE_MAX_RANK)
        return array_over_bf16(t, owner);
    const char *format = dtype_format(t->dtype);
    if (!format || t->rank < 0 || t->rank > FUSE_MAX_RANK) {
        if (!owner)
            fuse_free(t->data);
        return pf_raise_msg(FUSE_E_ARG, "the library returned a tensor of an unknown type");
    }
    TensorBuffer *buf = PyObject_New(TensorBuffer, &TensorBufferType);
    if (!buf) {
        if (!owner)
            fuse_free(t->data);
        return NULL;
    }
    buf->owner = Py_XNewRef(owner);
    buf->owned = owner ? NULL : t->data;
    buf->data = t->data;
    buf->format = format;
    buf->itemsize = (Py_ssize_t)fuse_dtype_size(t->dtype);
    buf->rank = t->rank;
    Py_ssize_t count = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        buf->shape[k] = (Py_ssize_t)t->shape[k];
        buf->strides[k] = count * buf->itemsize;
        count *= buf->shape[k];
    }
    buf->len = count * buf->itemsize;
    PyObject *array;
    if (count == 0 || !t->data) {
        /* an empty tensor may have no memory at all: give NumPy its own */
        PyObject *shape = PyTuple_New(t->rank);
        for (int k = 0; shape && k < t->rank; k++)
            PyTuple_SET_ITEM(shape, k, PyLong_FromSsize_t(buf->shape[k]));
        array = shape ? PyObject_CallMethod(pf_numpy, "zeros", "Os", shape, format) : NULL;
        Py_XDECREF(shape);
    } else {
        array = PyObject_CallMethod(pf_numpy, "asarray", "O", (PyObject *)buf);
    }
    Py_DECREF(buf);
    return array;
}

PyObject *pf_tensor_to_array(fuse_tensor *t)
{
    return array_over(t, NULL);
}

/* ---- output maps as dicts ---- */

/* fusejit.Outputs: a dict subclass made at initialisation; instances carry the
 * map's handle (_map) and the arrays they were made with (_arrays). */
static PyObject *outputs_class;

PyObject *pf_outputs_to_dict(fuse_outputs *out)
{
    OutputsHandle *handle = PyObject_New(OutputsHandle, &OutputsHandleType);
    if (!handle) {
        fuse_outputs_free(out);
        return NULL;
    }
    handle->out = out;
    size_t n = fuse_outputs_count(out);
    PyObject *dict = PyObject_CallNoArgs(outputs_class);
    PyObject *arrays = PyTuple_New((Py_ssize_t)n);
    if (!dict || !arrays)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        PyObject *array = array_over(fuse_outputs_tensor(out, i), (PyObject *)handle);
        if (!array)
            goto fail;
        PyTuple_SET_ITEM(arrays, (Py_ssize_t)i, array);
        if (PyDict_SetItemString(dict, fuse_outputs_name(out, i), array) < 0)
            goto fail;
    }
    if (PyObject_SetAttrString(dict, "_map", (PyObject *)handle) < 0 ||
        PyObject_SetAttrString(dict, "_arrays", arrays) < 0)
        goto fail;
    Py_DECREF(arrays);
    Py_DECREF(handle);
    return dict;
fail:
    Py_XDECREF(arrays);
    Py_XDECREF(dict);
    Py_DECREF(handle);
    return NULL;
}

const fuse_outputs *pf_outputs_map(PyObject *obj)
{
    if (PyObject_IsInstance(obj, outputs_class) != 1) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *handle = PyObject_GetAttrString(obj, "_map");
    PyObject *arrays = PyObject_GetAttrString(obj, "_arrays");
    const fuse_outputs *out = NULL;
    if (handle && arrays && Py_IS_TYPE(handle, &OutputsHandleType) && PyTuple_Check(arrays)) {
        const fuse_outputs *map = ((OutputsHandle *)handle)->out;
        size_t n = fuse_outputs_count(map);
        int same = PyDict_Size(obj) == (Py_ssize_t)n && PyTuple_GET_SIZE(arrays) == (Py_ssize_t)n;
        for (size_t i = 0; same && i < n; i++)
            same = PyDict_GetItemString(obj, fuse_outputs_name(map, i)) ==
                   PyTuple_GET_ITEM(arrays, (Py_ssize_t)i);
        if (same)
            out = map; /* the dict's arrays hold the handle, so `out` outlives this call */
    }
    PyErr_Clear();
    Py_XDECREF(handle);
    Py_XDECREF(arrays);
    return out;
}

/* ---- host arrays in ---- */

/* The dtype of a buffer-protocol format in native byte order, or -1. */
static int format_dtype(const char *format, Py_ssize_t itemsize)
{
    if (!format)
        format = "B";
    if (*format == '@' || *format == '=' || *format == '<')
        format++;
    if (!format[0] || format[1])
        return -1;
    int d;
    switch (format[0]) {
    case 'f': d = FUSE_F32; break;
    case 'd': d = FUSE_F64; break;
    case 'e': d = FUSE_F16; break;
    case 'b': d = FUSE_I8; break;
    case 'B': d = FUSE_U8; break;
    case 'h': d = FUSE_I16; break;
    case 'H': d = FUSE_U16; break;
    case 'i': d = FUSE_I32; break;
    case 'I': d = FUSE_U32; break;
    case 'l': case 'q': d = FUSE_I64; break;
    case 'L': case 'Q': d = FUSE_U64; break;
    case '?': d = FUSE_BOOL; break;
    default: return -1;
    }
    return (Py_ssize_t)fuse_dtype_size((fuse_dtype)d) == itemsize ? d : -1;
}

/* Takes obj's buffer when it is C-contiguous, of a known dtype and rank; 1 when
 * taken, 0 when obj needs converting (no exception set). */
static int take_buffer(PyObject *obj, fuse_tensor *t, Py_buffer *view)
{
    if (!PyObject_CheckBuffer(obj))
        return 0;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return 0;
    }
    int dtype = format_dtype(view->format, view->itemsize);
    if (dtype < 0 || view->ndim > FUSE_MAX_RANK || (view->ndim > 0 && !view->shape)) {
        PyBuffer_Release(view);
        return 0;
    }
    memset(t, 0, sizeof *t);
    t->dtype = (fuse_dtype)dtype;
    t->rank = view->ndim;
    for (int k = 0; k < view->ndim; k++)
        t->shape[k] = view->shape[k];
    t->data = view->buf;
    return 1;
}

int pf_tensor_from_object(PyObject *obj, fuse_tensor *t, Py_buffer *view, int *is_f32)
{
    if (!take_buffer(obj, t, view)) {
        PyObject *converted =
            PyObject_CallMethod(pf_numpy, "ascontiguousarray", "Os", obj, "float32");
        if (!converted)
            return -1;
        int ok = take_buffer(converted, t, view);
        Py_DECREF(converted); /* the view holds the array */
        if (!ok) {
            PyErr_SetString(PyExc_ValueError,
                            "an array of at most 8 axes was expected");
            return -1;
        }
    }
    *is_f32 = t->dtype == FUSE_F32;
    return 0;
}

int pf_inputs_from_dict(PyObject *dict, PfInputs *in)
{
    memset(in, 0, sizeof *in);
    if (!dict || dict == Py_None)
        return 0;
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "inputs must be a dict of name -> array");
        return -1;
    }
    Py_ssize_t n = PyDict_Size(dict);
    in->items = PyMem_Calloc((size_t)n + 1, sizeof *in->items);
    in->views = PyMem_Calloc((size_t)n + 1, sizeof *in->views);
    in->keys = PyMem_Calloc((size_t)n + 1, sizeof *in->keys);
    if (!in->items || !in->views || !in->keys) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "input names must be str");
            return -1;
        }
        fuse_input *item = &in->items[in->n];
        item->name = PyUnicode_AsUTF8(key);
        if (!item->name)
            return -1;
        int is_f32;
        if (pf_tensor_from_object(value, &item->tensor, &in->views[in->n], &is_f32) < 0)
            return -1;
        /* the library uses a float32 buffer in place (zero-copy) */
        item->borrow = is_f32;
        in->keys[in->n++] = Py_NewRef(key); /* keeps item->name valid */
    }
    return 0;
}

void pf_inputs_release(PfInputs *in)
{
    for (size_t i = 0; i < in->n; i++) {
        PyBuffer_Release(&in->views[i]);
        Py_DECREF(in->keys[i]);
    }
    PyMem_Free(in->items);
    PyMem_Free(in->views);
    PyMem_Free(in->keys);
    memset(in, 0, sizeof *in);
}

/* ---- fusejit.aligned ---- */

PyObject *pf_aligned(PyObject *module, PyObject *arg)
{
    (void)module;
    PyObject *src = PyObject_CallMethod(pf_numpy, "asarray", "Os", arg, "float32");
    if (!src)
        return NULL;
    PyObject *size = PyObject_GetAttrString(src, "size");
    Py_ssize_t count = size ? PyLong_AsSsize_t(size) : -1;
    Py_XDECREF(size);
    PyObject *raw = count < 0 ? NULL
                              : PyObject_CallMethod(pf_numpy, "empty", "ns",
                                                    count * 4 + 64, "uint8");
    Py_buffer view;
    PyObject *result = NULL;
    if (raw && PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE) == 0) {
        Py_ssize_t offset = (Py_ssize_t)((64 - (uintptr_t)view.buf % 64) % 64);
        PyBuffer_Release(&view);
        PyObject *slice = PySequence_GetSlice(raw, offset, offset + count * 4);
        PyObject *flat = slice ? PyObject_CallMethod(slice, "view", "s", "float32") : NULL;
        PyObject *shape = PyObject_GetAttrString(src, "shape");
        PyObject *shaped = flat && shape ? PyObject_CallMethod(flat, "reshape", "O", shape)
                                         : NULL;
        if (shaped && PyObject_SetAttrString(shaped, "flat", src) == 0) {
            /* flat assignment copies src's values in C order */
            result = Py_NewRef(shaped);
        }
        Py_XDECREF(shaped);
        Py_XDECREF(shape);
        Py_XDECREF(flat);
        Py_XDECREF(slice);
    }
    Py_XDECREF(raw);
    Py_DECREF(src);
    return result;
}

/* ---- registration ---- */

/* Outputs.__reduce__: pickles and copies as a plain dict (the handle stays out). */
static PyObject *outputs_reduce(PyObject *unused, PyObject *self)
{
    (void)unused;
    return Py_BuildValue("(O(N))", (PyObject *)&PyDict_Type, PyDict_Copy(self));
}

static PyMethodDef outputs_reduce_def = {"__reduce__", outputs_reduce, METH_O,
                                         "Pickles as a plain dict."};

int pf_arrays_init(PyObject *module)
{
    if (PyType_Ready(&OutputsHandleType) < 0 || PyType_Ready(&TensorBufferType) < 0)
        return -1;
    PyObject *ns = Py_BuildValue("{s:s,s:s}", "__module__", "fusejit", "__doc__",
                                 "The exports of one run: name -> NumPy array. The arrays "
                                 "share the library's memory; fusejit.save writes an "
                                 "unchanged Outputs to .npz through the library.");
    PyObject *fn = ns ? PyCFunction_New(&outputs_reduce_def, NULL) : NULL;
    PyObject *method = fn ? PyInstanceMethod_New(fn) : NULL;
    Py_XDECREF(fn);
    if (!method || PyDict_SetItemString(ns, "__reduce__", method) < 0) {
        Py_XDECREF(method);
        Py_XDECREF(ns);
        return -1;
    }
    Py_DECREF(method);
    outputs_class =
        PyObject_CallFunction((PyObject *)&PyType_Type, "s(O)O", "Outputs", &PyDict_Type, ns);
    Py_DECREF(ns);
    if (!outputs_class)
        return -1;
    return PyModule_AddObjectRef(module, "Outputs", outputs_class);
}
