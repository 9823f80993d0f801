#include "errors.h"

#include <exception>
#include <new>
#include <stdexcept>

#include "shmetrics/error.h"

namespace shmetrics::python {
namespace {

struct ErrorClass {
  ErrorCode code;
  const char* name;      // the class name in the module
  PyObject* extra_base;  // a builtin the class also derives from, or nullptr
  PyObject* cls = nullptr;
};

PyObject* g_error = nullptr;  // shmetrics.Error

// Created once at import; the module keeps a reference to each.
ErrorClass g_classes[] = {
    {ErrorCode::kInvalidArgument, "InvalidArgumentError", PyExc_ValueError},
    {ErrorCode::kOutOfRange, "OutOfRangeError", PyExc_ValueError},
    {ErrorCode::kNotFound, "NotFoundError", PyExc_LookupError},
    {ErrorCode::kAlreadyExists, "AlreadyExistsError", nullptr},
    {ErrorCode::kPermissionDenied, "PermissionDeniedError", PyExc_PermissionError},
    {ErrorCode::kResourceExhausted, "ResourceExhaustedError", nullptr},
    {ErrorCode::kFailedPrecondition, "FailedPreconditionError", nullptr},
    {ErrorCode::kDataLoss, "DataLossError", nullptr},
    {ErrorCode::kUnavailable, "UnavailableError", nullptr},
    {ErrorCode::kInternal, "InternalError", nullptr},
};

PyObject* ClassFor(ErrorCode code) {
  for (const ErrorClass& c : g_classes) {
    if (c.code == code) return c.cls;
  }
  return g_error;
}

}  // namespace

bool AddExceptions(PyObject* module) {
  g_error = PyErr_NewExceptionWithDoc(
      "shmetrics.Error",
      "Every error of shmetrics that is not a plain Python one. `code` names the kind of "
      "failure (\"ALREADY_EXISTS\", \"DATA_LOSS\", ...), as shmetrics::ErrorCode does in C++.",
      nullptr, nullptr);
  if (g_error == nullptr || PyObject_SetAttrString(g_error, "code", Py_None) < 0) return false;
  Py_INCREF(g_error);
  if (PyModule_AddObject(module, "Error", g_error) < 0) return false;
  for (ErrorClass& c : g_classes) {
    PyObject* bases =
        c.extra_base != nullptr ? PyTuple_Pack(2, g_error, c.extra_base) : PyTuple_Pack(1, g_error);
    if (bases == nullptr) return false;
    const std::string qualified = std::string("shmetrics.") + c.name;
    c.cls = PyErr_NewException(qualified.c_str(), bases, nullptr);
    Py_DECREF(bases);
    if (c.cls == nullptr) return false;
    PyObject* code = PyUnicode_FromString(ErrorCodeName(c.code));
    if (code == nullptr || PyObject_SetAttrString(c.cls, "code", code) < 0) return false;
    Py_DECREF(code);
    Py_INCREF(c.cls);
    if (PyModule_AddObject(module, c.name, c.cls) < 0) return false;
  }
  return true;
}

void SetErrorFromException() {
  try {
    throw;
  } catch (const Error& e) {
    PyErr_SetString(ClassFor(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(g_error, e.what());
  } catch (...) {
    PyErr_SetString(g_error, "unknown C++ exception");
  }
}

PyObject* RaiseValueError(const char* message) {
  PyErr_SetString(ClassFor(ErrorCode::kInvalidArgument), message);
  return nullptr;
}

}  // namespace shmetrics::python
