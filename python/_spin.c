/*
 * _spin.c - onnxrun._spin: the GOMP_SPINCOUNT for ONR_SPIN_US microseconds
 * on this CPU (src/gemm/spin.h, the same measurement as the library's
 * onr_gomp_spincount). A module of its own, not linked to the library or
 * to libgomp: the package's __init__ must put the count in the environment
 * before the extension that loads libgomp is imported.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gemm/spin.h"
#include "onnxrun.h" /* ONR_SPIN_US only: nothing of the library is called */

static PyObject *spin_spincount(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    return PyLong_FromLong(onr_spin_count_for(ONR_SPIN_US));
}

static PyMethodDef spin_methods[] = {
    {"spincount", spin_spincount, METH_NOARGS,
     "spincount() -> int: the GOMP_SPINCOUNT that spins idle OpenMP workers ONR_SPIN_US "
     "microseconds on this CPU"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef spin_module = {PyModuleDef_HEAD_INIT, "_spin", NULL, -1, spin_methods,
                                         NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__spin(void)
{
    PyObject *m = PyModule_Create(&spin_module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "SPIN_US", ONR_SPIN_US) ||
        PyModule_AddIntConstant(m, "MIN", ONR_SPIN_COUNT_MIN) ||
        PyModule_AddIntConstant(m, "MAX", ONR_SPIN_COUNT_MAX)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
