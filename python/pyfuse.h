/*
 * pyfuse.h: what the files of the fusejit Python extension share. The extension
 * wraps the public API of include/fusejit.h and nothing else: Program owns a
 * context and a program, Runner a compiled runner, ExecutionConfig the settings
 * that become a fuse_config, and arrays cross as NumPy arrays (through the buffer
 * protocol and a few calls of the numpy module).
 */
#ifndef PYFUSE_H
#define PYFUSE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "fusejit.h"

/* ---- fusejit.c: the module's shared objects ---- */

/* The module's entry point, which Python finds by name. */
PyMODINIT_FUNC PyInit_fusejit(void);

/* The numpy and json modules, imported once at module initialisation. */
extern PyObject *pf_numpy;
extern PyObject *pf_json;

/* Raises the exception of `status` (a FuseError subclass, KeyboardInterrupt for
 * FUSE_E_INTERRUPTED) from the calling thread's diagnostic in ctx, with .status,
 * .file, .line, .column and .message. Returns NULL. */
PyObject *pf_raise(fuse_ctx *ctx, fuse_status status);

/* Raises FuseError of `status` with a message of the extension's own. NULL. */
PyObject *pf_raise_msg(fuse_status status, const char *msg);

/* The exception class of a status (borrowed). */
PyObject *pf_error_class(fuse_status status);

/* A context's log callback (fuse_ctx_set_log): warnings become Python warnings of
 * class fusejit.FuseWarning; notes are dropped. */
void pf_log_to_warnings(int level, const char *msg, void *user);

/* Parses a JSON text with Python's json module: a new reference or NULL. */
PyObject *pf_json_loads(const char *text);

/* Nonzero on the interpreter's main thread (where Python handles signals). */
int pf_on_main_thread(void);

/* ---- arrays.c: tensors as NumPy arrays ---- */

/* Registers the buffer types in the module; -1 on error. */
int pf_arrays_init(PyObject *module);

/* A dict of NumPy arrays sharing the memory of `out`, which the returned object
 * takes over (also on failure, when it frees it). The dict is a fusejit.Outputs,
 * which remembers `out` for fusejit.save. */
PyObject *pf_outputs_to_dict(fuse_outputs *out);

/* A NumPy array over a tensor whose data was allocated by the library (freed with
 * fuse_free): the array takes the data over, also on failure. */
PyObject *pf_tensor_to_array(fuse_tensor *t);

/* The fuse_outputs map behind a fusejit.Outputs dict whose entries are still the
 * arrays it was made with; NULL otherwise (no exception set). */
const fuse_outputs *pf_outputs_map(PyObject *obj);

/* A host tensor for fuse_tensor_save / fuse_input: `obj` viewed through the buffer
 * protocol, converted first (numpy.ascontiguousarray(obj, float32)) when it is not
 * C-contiguous or its element type has no fuse_dtype. view receives the buffer,
 * released with PyBuffer_Release; *is_f32 tells whether the data is float32.
 * -1 with an exception on error. */
int pf_tensor_from_object(PyObject *obj, fuse_tensor *t, Py_buffer *view, int *is_f32);

/* Named inputs of a run or a compile, from a dict name -> array: each a view of
 * the host's buffer (borrowed when float32) or of a converted copy. */
typedef struct PfInputs {
    fuse_input *items;
    Py_buffer *views;
    PyObject **keys;
    size_t n;
} PfInputs;

/* Fills *in from a dict or None; -1 with an exception (release *in anyway). */
int pf_inputs_from_dict(PyObject *dict, PfInputs *in);
void pf_inputs_release(PfInputs *in);

/* fusejit.aligned(array): a 64-byte aligned float32 copy. */
PyObject *pf_aligned(PyObject *module, PyObject *arg);

/* ---- config.c: fusejit.ExecutionConfig ---- */

extern PyTypeObject PfConfigType;

/* A fuse_config built from an ExecutionConfig (or None: the defaults), with the
 * strings and temperature schedules it points to. The runner keeps it for its
 * life: temperature callbacks are called during runs. */
typedef struct PfConfigData {
    fuse_config cfg;
    char *base_dir, *out_dir, *cache_dir;
    fuse_temperature *temps;
    size_t n_temps;
    PyObject **callbacks; /* n_temps entries, NULL for text schedules */
    char **temp_names, **temp_specs;
    fuse_ctx *ctx;        /* interrupted when a callback raises */
    PyObject *callback_error; /* the first exception a callback raised, or NULL */
} PfConfigData;

/* Fills *data from an ExecutionConfig or None; -1 with an exception. */
int pf_config_build(PyObject *config, fuse_ctx *ctx, PfConfigData *data);
void pf_config_data_free(PfConfigData *data);

/* ---- program.c / runner.c ---- */

extern PyTypeObject PfProgramType;
extern PyTypeObject PfRunnerType;

typedef struct PfProgram {
    PyObject_HEAD
    fuse_ctx *ctx;
    fuse_program *prog;
    PyObject *source;       /* the text or path it was made from */
    int is_path;            /* source named a file */
    void *lock;             /* PyThread_type_lock: one thread at a time uses prog */
} PfProgram;

/* Takes and releases the program's lock (waiting with the GIL released). */
void pf_program_lock(PfProgram *self);
void pf_program_unlock(PfProgram *self);

/* Compiles `prog` (program.compile). */
PyObject *pf_runner_new(PfProgram *prog, PyObject *config, PyObject *inputs);

#endif /* PYFUSE_H */
