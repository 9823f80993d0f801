// The metric objects of the Python module: one extension type per meter type, written against
// the CPython API because their methods are the hot path (a method call, one atomic add).
//
// One object is both what C++ calls a family and what it calls a child: a family object of a
// family without labels is bound to its one child from registration on (so `counter.inc()`
// works, as in prometheus_client); `labels(...)` returns a child object, bound to one series.
// Python classes (shmetrics.Counter, the prometheus_client drop-in) derive from these types and
// add what is not hot (timing scopes, pickling); `labels()` returns an object of the caller's
// own class.
//
// Lifetime: every object holds a reference to the Registry object whose C++ family it uses, so
// the family outlives it.
#ifndef SHMETRICS_PYTHON_METRICS_H_
#define SHMETRICS_PYTHON_METRICS_H_

#include <Python.h>

#include <cstdint>

#include "shmetrics/internal/family.h"
#include "shmetrics/metric_type.h"

namespace shmetrics::python {

// Creates the base types (shmetrics._shmetrics.CounterBase, ...) and adds them to `module`.
// Returns false with a Python error set.
bool AddMetricTypes(PyObject* module);

// The metric type of `obj`, when it is an object of one of the base types (or a subclass), and
// not yet registered; otherwise sets TypeError or ValueError and returns false.
bool CheckUnbound(PyObject* obj, MetricType* type);

// Binds an unbound metric object to a registered family. `registry` is the Python object that
// owns the family. A family without labels gets its child at once. Returns false with a Python
// error set.
bool BindFamily(PyObject* obj, PyObject* registry, const internal::FamilyBase& family);

}  // namespace shmetrics::python

#endif  // SHMETRICS_PYTHON_METRICS_H_
