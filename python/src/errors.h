// Python exceptions for shmetrics::Error: a shmetrics.Error subclass per error code, and
// ValueError for invalid arguments (shmetrics.InvalidArgumentError is both).
#ifndef SHMETRICS_PYTHON_ERRORS_H_
#define SHMETRICS_PYTHON_ERRORS_H_

#include <Python.h>

namespace shmetrics::python {

// Creates the exception classes and adds them to `module`. Returns false with a Python error set.
bool AddExceptions(PyObject* module);

// Sets the Python error for the exception being handled (call only inside a catch block):
// shmetrics::Error by its code, std::bad_alloc as MemoryError, anything else as shmetrics.Error.
void SetErrorFromException();

// Raises shmetrics.InvalidArgumentError (a ValueError) with `message`; returns nullptr.
PyObject* RaiseValueError(const char* message);

}  // namespace shmetrics::python

#endif  // SHMETRICS_PYTHON_ERRORS_H_
