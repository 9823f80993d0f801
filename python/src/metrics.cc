#include "metrics.h"

#include <structmember.h>
#include <time.h>

#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.h"
#include "meters/names.h"
#include "shmetrics/age_gauge.h"
#include "shmetrics/counter.h"
#include "shmetrics/distribution_summary.h"
#include "shmetrics/gauge.h"
#include "shmetrics/histogram.h"
#include "shmetrics/info.h"
#include "shmetrics/max_gauge.h"
#include "shmetrics/native_histogram.h"
#include "shmetrics/percentile_timer.h"
#include "shmetrics/registry.h"
#include "shmetrics/summary.h"
#include "shmetrics/timer.h"

namespace shmetrics::python {
namespace {

using internal::FamilyBase;
using internal::SeriesRef;

constexpr size_t kHandleBytes = 64;

struct MetricObject {
  PyObject_HEAD PyObject* registry;  // owns `family`; nullptr until bound
  PyObject* parent;                  // a child's family object; nullptr for a family object
  PyObject* label_values;  // a child's label values (a tuple of str); nullptr for a family
  PyObject* spec;          // what the Python layer registered a family with (for pickling)
  PyObject* cache;         // a family's children by label values (see Cached); or nullptr
  const FamilyBase* family;
  char* record;      // a child's series record and when it was created, which a cached child
  uint64_t created;  // checks before each reuse
  MetricType type;
  bool bound;        // `handle` holds a child
  bool owns_parent;  // holds a reference to `parent` (a child in its family's cache does not)
  PyObject* weakrefs;
  alignas(16) unsigned char handle[kHandleBytes];
};

MetricObject* Self(PyObject* o) { return reinterpret_cast<MetricObject*>(o); }

template <typename H>
H& Get(MetricObject* o) {
  return *std::launder(reinterpret_cast<H*>(o->handle));
}

template <typename H>
void Emplace(MetricObject* o, const SeriesRef& ref) {
  static_assert(sizeof(H) <= kHandleBytes && alignof(H) <= 16);
  static_assert(std::is_trivially_destructible_v<H>, "handles are dropped without a destructor");
  new (o->handle) H(ref);
}

// The one switch over the type for making a child handle.
void EmplaceHandle(MetricObject* o, const SeriesRef& ref) {
  switch (o->type) {
    case MetricType::kCounter:
      Emplace<Counter>(o, ref);
      break;
    case MetricType::kGauge:
      Emplace<Gauge>(o, ref);
      break;
    case MetricType::kHistogram:
      Emplace<Histogram>(o, ref);
      break;
    case MetricType::kSummary:
      Emplace<Summary>(o, ref);
      break;
    case MetricType::kInfo:
      Emplace<Info>(o, ref);
      break;
    case MetricType::kStateSet:
      Emplace<StateSet>(o, ref);
      break;
    case MetricType::kTimer:
      Emplace<Timer>(o, ref);
      break;
    case MetricType::kDistributionSummary:
      Emplace<DistributionSummary>(o, ref);
      break;
    case MetricType::kMaxGauge:
      Emplace<MaxGauge>(o, ref);
      break;
    case MetricType::kAgeGauge:
      Emplace<AgeGauge>(o, ref);
      break;
    case MetricType::kPercentileTimer:
      Emplace<PercentileTimer>(o, ref);
      break;
    case MetricType::kPercentileDistributionSummary:
      Emplace<PercentileDistributionSummary>(o, ref);
      break;
    case MetricType::kNativeHistogram:
      Emplace<NativeHistogram>(o, ref);
      break;
  }
  o->bound = true;
}

constexpr size_t kTypes = 14;  // MetricType values are 1..13
PyTypeObject* g_base[kTypes] = {};

// The word prometheus_client uses for the type in its messages ("counter metric is missing
// label values").
const char* TypeWord(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kInfo:
      return "info";
    case MetricType::kStateSet:
      return "stateset";
    case MetricType::kTimer:
      return "timer";
    case MetricType::kDistributionSummary:
      return "distribution_summary";
    case MetricType::kMaxGauge:
      return "max_gauge";
    case MetricType::kAgeGauge:
      return "age_gauge";
    case MetricType::kPercentileTimer:
      return "percentile_timer";
    case MetricType::kPercentileDistributionSummary:
      return "percentile_distribution_summary";
    case MetricType::kNativeHistogram:
      return "native_histogram";
  }
  return "metric";
}

PyObject* NotBound(MetricObject* o) {
  if (o->family == nullptr) {
    PyErr_SetString(PyExc_RuntimeError,
                    "this metric is not registered: create it through a shmetrics.Registry");
    return nullptr;
  }
  PyErr_Format(PyExc_ValueError, "%s metric is missing label values", TypeWord(o->type));
  return nullptr;
}

bool Registered(MetricObject* o) {
  if (o->family != nullptr) return true;
  NotBound(o);
  return false;
}

// Owns the references it is given: the str() of arguments that were not str. Fixed-size, so
// the hot path never allocates.
class Refs {
 public:
  static constexpr size_t kCapacity = 2 * kMaxLabels + 2;
  Refs() = default;
  Refs(const Refs&) = delete;
  Refs& operator=(const Refs&) = delete;
  ~Refs() {
    for (size_t i = 0; i < n_; ++i) Py_DECREF(refs_[i]);
  }
  bool Add(PyObject* o) {
    if (n_ == kCapacity) {
      Py_DECREF(o);
      PyErr_SetString(PyExc_ValueError, "too many values");
      return false;
    }
    refs_[n_++] = o;
    return true;
  }

 private:
  PyObject* refs_[kCapacity];
  size_t n_ = 0;
};

// str(value) as UTF-8 that lives as long as `keep` (or `value`, when it is a str already).
// prometheus_client turns label values into strings the same way (labels(200) is
// labels("200")). Sets *text to the str used.
bool AsText(PyObject* value, Refs& keep, std::string_view* out, PyObject** text = nullptr) {
  PyObject* s = value;
  if (!PyUnicode_Check(value)) {
    s = PyObject_Str(value);
    if (s == nullptr || !keep.Add(s)) return false;
  }
  Py_ssize_t len = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(s, &len);
  if (utf8 == nullptr) return false;
  *out = std::string_view(utf8, static_cast<size_t>(len));
  if (text != nullptr) *text = s;
  return true;
}

// Arguments by position or keyword, as a def f(a=None, b=None) would take them. Each out is a
// borrowed reference or nullptr when not given.
bool ParseArgs(const char* fn, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
               std::initializer_list<const char*> names, std::initializer_list<PyObject**> outs) {
  for (PyObject** out : outs) *out = nullptr;
  const auto n = static_cast<Py_ssize_t>(names.size());
  if (nargs > n) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", fn, n, nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) *outs.begin()[i] = args[i];
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t i = 0;
    while (i < n && PyUnicode_CompareWithASCIIString(key, names.begin()[i]) != 0) ++i;
    if (i == n) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn, key);
      return false;
    }
    if (*outs.begin()[i] != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%U'", fn, key);
      return false;
    }
    *outs.begin()[i] = args[nargs + k];
  }
  return true;
}

bool ToDouble(PyObject* v, double* out) {
  if (PyFloat_CheckExact(v)) {
    *out = PyFloat_AS_DOUBLE(v);
    return true;
  }
  *out = PyFloat_AsDouble(v);
  return !(*out == -1.0 && PyErr_Occurred());
}

// An exemplar's labels, checked as OpenMetrics and prometheus_client check them: valid label
// names, at most 128 characters of names and values together.
bool ExemplarPairs(PyObject* exemplar, Refs& keep,
                   std::vector<std::pair<std::string_view, std::string_view>>* out) {
  if (!PyDict_Check(exemplar)) {
    PyErr_SetString(PyExc_TypeError, "exemplar must be a dict of label names to values");
    return false;
  }
  Py_ssize_t pos = 0, runes = 0;
  PyObject *k, *v;
  while (PyDict_Next(exemplar, &pos, &k, &v)) {
    std::string_view name, value;
    PyObject* value_text = nullptr;
    if (!PyUnicode_Check(k)) {
      PyErr_SetString(PyExc_TypeError, "exemplar label names must be str");
      return false;
    }
    if (!AsText(k, keep, &name) || !AsText(v, keep, &value, &value_text)) return false;
    if (!meters::IsValidLabelName(name)) {
      PyErr_Format(PyExc_ValueError, "Invalid label metric name: %U", k);
      return false;
    }
    runes += PyUnicode_GET_LENGTH(k) + PyUnicode_GET_LENGTH(value_text);
    out->emplace_back(name, value);
  }
  if (runes > 128) {
    PyErr_Format(PyExc_ValueError,
                 "Exemplar labels have %zd UTF-8 characters, exceeding the limit of 128", runes);
    return false;
  }
  return true;
}

// ---- what every metric object has ----------------------------------------------------------

// Each family object caches its children by label values, as prometheus_client does, so
// labels() on a known label set is a dict lookup instead of building a key, probing the heap's
// index and making an object. A cached child is reused only while its series record still
// holds the series it was made for: another process may have removed it (and the record been
// reused for another). Bounded: a family whose label sets keep changing starts over.
//
// A cached child does not hold its family (the family holds it): no cycle, so the garbage
// collector need not track cached children, and does not, which keeps it from walking (in a
// forked worker: copying) what it would otherwise have to. A child that leaves the cache takes a
// reference to its family; a family that goes away first leaves its children parentless.
constexpr Py_ssize_t kMaxCachedChildren = 16384;

PyObject* NewChild(MetricObject* parent, const SeriesRef& ref, PyObject* values, bool cached) {
  PyTypeObject* tp = Py_TYPE(parent);
  auto* c = reinterpret_cast<MetricObject*>(tp->tp_alloc(tp, 0));
  if (c == nullptr) {
    Py_DECREF(values);
    return nullptr;
  }
  Py_INCREF(parent->registry);
  c->registry = parent->registry;
  c->parent = reinterpret_cast<PyObject*>(parent);
  c->owns_parent = !cached;
  if (!cached) Py_INCREF(parent);
  c->label_values = values;  // a tuple of str: never part of a cycle
  if (PyObject_GC_IsTracked(values)) PyObject_GC_UnTrack(values);
  c->family = parent->family;
  c->type = parent->type;
  c->record = ref.record;
  c->created = internal::SeriesCreatedUnixNanos(ref.record);
  EmplaceHandle(c, ref);
  if (cached) PyObject_GC_UnTrack(c);
  return reinterpret_cast<PyObject*>(c);
}

// A cached child about to leave the cache, which others may still hold: it keeps its family
// alive itself from now on.
void Uncache(PyObject* child) {
  MetricObject* c = Self(child);
  if (c->owns_parent || c->parent == nullptr) return;
  Py_INCREF(c->parent);
  c->owns_parent = true;
  if (!PyObject_GC_IsTracked(child)) PyObject_GC_Track(child);  // it refers to its family now
}

void UncacheAll(MetricObject* o) {
  if (o->cache == nullptr) return;
  Py_ssize_t pos = 0;
  PyObject *key, *child;
  while (PyDict_Next(o->cache, &pos, &key, &child)) Uncache(child);
  PyDict_Clear(o->cache);
}

// The cache key of a label-value tuple: the value itself for one label.
PyObject* CacheKey(PyObject* values) {
  return PyTuple_GET_SIZE(values) == 1 ? PyTuple_GET_ITEM(values, 0) : values;
}

// The cached child for `key` (borrowed), or nullptr (with an error set only if one occurred).
PyObject* Cached(MetricObject* o, PyObject* key) {
  if (o->cache == nullptr) return nullptr;
  PyObject* child = PyDict_GetItemWithError(o->cache, key);
  if (child == nullptr) return nullptr;
  if (internal::SeriesStillHolds(Self(child)->record, Self(child)->created)) return child;
  Uncache(child);
  if (PyDict_DelItem(o->cache, key) < 0) PyErr_Clear();
  return nullptr;
}

void Remember(MetricObject* o, PyObject* child) {
  if (o->cache == nullptr) {
    o->cache = PyDict_New();
    if (o->cache == nullptr) {
      PyErr_Clear();
      Uncache(child);
      return;
    }
  } else if (PyDict_GET_SIZE(o->cache) >= kMaxCachedChildren) {
    UncacheAll(o);
  }
  if (PyDict_SetItem(o->cache, CacheKey(Self(child)->label_values), child) < 0) {
    PyErr_Clear();
    Uncache(child);
  }
}

void Forget(MetricObject* o, PyObject* values) {
  if (o->cache == nullptr) return;
  PyObject* key = CacheKey(values);
  if (PyObject* child = PyDict_GetItemWithError(o->cache, key)) {
    Uncache(child);
    if (PyDict_DelItem(o->cache, key) < 0) PyErr_Clear();
  }
  PyErr_Clear();
}

// The values of labels(*values) or labels(**pairs), in the order the family declared its label
// names. Sets `canonical` to the views and returns the tuple of str, or nullptr with an error.
PyObject* LabelValues(MetricObject* o, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                      Refs& keep, std::string_view* views) {
  const std::vector<std::string>& names = o->family->label_names();
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  const auto n = static_cast<Py_ssize_t>(names.size());
  if (n == 0) {
    PyErr_Format(PyExc_ValueError, "No label names were set when constructing %s:%s",
                 TypeWord(o->type), o->family->name().c_str());
    return nullptr;
  }
  if (nargs != 0 && nkw != 0) {
    PyErr_SetString(PyExc_ValueError, "Can't pass both *args and **kwargs");
    return nullptr;
  }
  PyObject* given[kMaxLabels] = {};
  if (nkw == 0) {
    if (nargs != n) {
      PyErr_Format(PyExc_ValueError, "Incorrect label count");
      return nullptr;
    }
    for (Py_ssize_t i = 0; i < n; ++i) given[i] = args[i];
  } else {
    bool ok = nkw == n;
    for (Py_ssize_t k = 0; ok && k < nkw; ++k) {
      Py_ssize_t len = 0;
      const char* key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(kwnames, k), &len);
      if (key == nullptr) return nullptr;
      Py_ssize_t i = 0;
      while (i < n && names[i] != std::string_view(key, len)) ++i;
      ok = i < n && given[i] == nullptr;
      if (ok) given[i] = args[k];
    }
    if (!ok) {
      PyErr_SetString(PyExc_ValueError, "Incorrect label names");
      return nullptr;
    }
  }
  PyObject* tuple = PyTuple_New(n);
  if (tuple == nullptr) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* text = nullptr;
    if (!AsText(given[i], keep, &views[i], &text)) {
      Py_DECREF(tuple);
      return nullptr;
    }
    Py_INCREF(text);
    PyTuple_SET_ITEM(tuple, i, text);
  }
  return tuple;
}

PyObject* MetricLabels(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  MetricObject* o = Self(self);
  if (!Registered(o)) return nullptr;
  if (o->label_values != nullptr) {
    PyErr_Format(PyExc_ValueError,
                 "%s:%s already has labels set (%R); can not chain calls to .labels()",
                 TypeWord(o->type), o->family->name().c_str(), o->label_values);
    return nullptr;
  }
  // The common case first: label values given as str, by position, and seen before.
  if (kwnames == nullptr && o->cache != nullptr && nargs >= 1 &&
      static_cast<size_t>(nargs) == o->family->label_names().size()) {
    bool all_str = true;
    for (Py_ssize_t i = 0; all_str && i < nargs; ++i) all_str = PyUnicode_CheckExact(args[i]);
    if (all_str && nargs == 1) {
      if (PyObject* child = Cached(o, args[0])) return Py_NewRef(child);
      if (PyErr_Occurred()) return nullptr;
    } else if (all_str) {
      PyObject* key = PyTuple_New(nargs);
      if (key == nullptr) return nullptr;
      for (Py_ssize_t i = 0; i < nargs; ++i) PyTuple_SET_ITEM(key, i, Py_NewRef(args[i]));
      PyObject* child = Cached(o, key);
      Py_DECREF(key);
      if (child != nullptr) return Py_NewRef(child);
      if (PyErr_Occurred()) return nullptr;
    }
  }
  Refs keep;
  std::string_view views[kMaxLabels];
  PyObject* values = LabelValues(o, args, nargs, kwnames, keep, views);
  if (values == nullptr) return nullptr;
  if (PyObject* child = Cached(o, CacheKey(values))) {
    Py_DECREF(values);
    return Py_NewRef(child);
  }
  if (PyErr_Occurred()) {
    Py_DECREF(values);
    return nullptr;
  }
  SeriesRef ref;
  bool own = false;
  try {
    ref = o->family->Lookup({views, static_cast<size_t>(PyTuple_GET_SIZE(values))}, &own);
  } catch (...) {
    Py_DECREF(values);
    SetErrorFromException();
    return nullptr;
  }
  PyObject* child = NewChild(o, ref, values, own);
  if (child != nullptr && own) Remember(o, child);
  return child;
}

PyObject* MetricRemove(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  MetricObject* o = Self(self);
  if (!Registered(o)) return nullptr;
  Refs keep;
  std::string_view views[kMaxLabels];
  PyObject* values = LabelValues(o, args, nargs, kwnames, keep, views);
  if (values == nullptr) return nullptr;
  const Py_ssize_t n = PyTuple_GET_SIZE(values);
  Forget(o, values);
  Py_DECREF(values);
  bool removed = false;
  try {
    removed = o->family->Remove({views, static_cast<size_t>(n)});
  } catch (...) {
    SetErrorFromException();
    return nullptr;
  }
  return PyBool_FromLong(removed);
}

PyObject* MetricClear(PyObject* self, PyObject*) {
  MetricObject* o = Self(self);
  if (!Registered(o)) return nullptr;
  UncacheAll(o);
  try {
    o->family->Clear();
  } catch (...) {
    SetErrorFromException();
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* MetricSeriesCount(PyObject* self, PyObject*) {
  MetricObject* o = Self(self);
  if (!Registered(o)) return nullptr;
  return PyLong_FromSize_t(o->family->size());
}

PyObject* GetName(PyObject* self, void*) {
  MetricObject* o = Self(self);
  if (o->family == nullptr) Py_RETURN_NONE;
  return PyUnicode_FromStringAndSize(o->family->name().data(),
                                     static_cast<Py_ssize_t>(o->family->name().size()));
}

PyObject* GetLabelNames(PyObject* self, void*) {
  MetricObject* o = Self(self);
  if (o->family == nullptr) return PyTuple_New(0);
  const auto& names = o->family->label_names();
  PyObject* t = PyTuple_New(static_cast<Py_ssize_t>(names.size()));
  for (size_t i = 0; t != nullptr && i < names.size(); ++i) {
    PyObject* s = PyUnicode_FromStringAndSize(names[i].data(), names[i].size());
    if (s == nullptr) {
      Py_CLEAR(t);
      break;
    }
    PyTuple_SET_ITEM(t, i, s);
  }
  return t;
}

PyObject* Borrowed(PyObject* o) {
  if (o == nullptr) Py_RETURN_NONE;
  Py_INCREF(o);
  return o;
}
PyObject* GetLabelValues(PyObject* self, void*) { return Borrowed(Self(self)->label_values); }
PyObject* GetParent(PyObject* self, void*) { return Borrowed(Self(self)->parent); }
PyObject* GetRegistry(PyObject* self, void*) { return Borrowed(Self(self)->registry); }
PyObject* GetTypeName(PyObject* self, void*) {
  return PyUnicode_FromString(TypeWord(Self(self)->type));
}
PyObject* GetBound(PyObject* self, void*) { return PyBool_FromLong(Self(self)->bound); }
PyObject* GetSpec(PyObject* self, void*) { return Borrowed(Self(self)->spec); }
int SetSpec(PyObject* self, PyObject* value, void*) {
  Py_XINCREF(value);
  Py_XSETREF(Self(self)->spec, value);
  return 0;
}

PyMemberDef g_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(MetricObject, weakrefs), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef g_getset[] = {
    {"name", GetName, nullptr, "The family's full name (prefix, name, unit suffix).", nullptr},
    {"label_names", GetLabelNames, nullptr, "The label names, in the declared order.", nullptr},
    {"label_values", GetLabelValues, nullptr, "A child's label values; None for a family.",
     nullptr},
    {"parent", GetParent, nullptr, "The family object a child came from; None for a family.",
     nullptr},
    {"registry", GetRegistry, nullptr, "The Registry that registered the family.", nullptr},
    {"type", GetTypeName, nullptr, "The meter type: 'counter', 'gauge', ...", nullptr},
    {"_spec", GetSpec, SetSpec, "The registration, kept by the Python layer for pickling.",
     nullptr},
    {"bound", GetBound, nullptr,
     "True when updates reach a series (a child, or a family "
     "without labels).",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyObject* MetricRepr(PyObject* self) {
  MetricObject* o = Self(self);
  const char* cls = Py_TYPE(self)->tp_name;
  if (o->family == nullptr) return PyUnicode_FromFormat("<%s (unregistered)>", cls);
  if (o->label_values != nullptr) {
    return PyUnicode_FromFormat("<%s %s%R>", cls, o->family->name().c_str(), o->label_values);
  }
  return PyUnicode_FromFormat("<%s %s>", cls, o->family->name().c_str());
}

// What a metric object refers to, for the collector (a subclass may add cycles of its own).
int MetricTraverse(PyObject* self, visitproc visit, void* arg) {
  MetricObject* o = Self(self);
  Py_VISIT(Py_TYPE(self));
  if (o->owns_parent) Py_VISIT(o->parent);
  Py_VISIT(o->label_values);
  Py_VISIT(o->spec);
  Py_VISIT(o->cache);
  return 0;
}

int MetricClearRefs(PyObject* self) {
  MetricObject* o = Self(self);
  if (o->owns_parent) {
    Py_CLEAR(o->parent);
  } else {
    o->parent = nullptr;
  }
  Py_CLEAR(o->label_values);
  Py_CLEAR(o->spec);
  if (o->cache != nullptr) {
    // The children this family held, and which others still hold, outlive it without one.
    Py_ssize_t pos = 0;
    PyObject *key, *child;
    while (PyDict_Next(o->cache, &pos, &key, &child)) Self(child)->parent = nullptr;
    Py_CLEAR(o->cache);
  }
  return 0;
}

void MetricDealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (Self(self)->weakrefs != nullptr) PyObject_ClearWeakRefs(self);
  MetricClearRefs(self);
  Py_CLEAR(Self(self)->registry);
  tp->tp_free(self);
  Py_DECREF(tp);
}

template <MetricType T>
PyObject* MetricNew(PyTypeObject* tp, PyObject*, PyObject*) {
  auto* o = reinterpret_cast<MetricObject*>(tp->tp_alloc(tp, 0));
  if (o != nullptr) o->type = T;
  return reinterpret_cast<PyObject*>(o);
}

#define SHM_FASTCALL(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

constexpr int kFastKw = METH_FASTCALL | METH_KEYWORDS;

PyMethodDef g_common_methods[] = {
    {"labels", SHM_FASTCALL(MetricLabels), kFastKw,
     "labels(*values) or labels(**pairs): the child of these label values (created in the "
     "heap when new). Values are turned into str."},
    {"remove", SHM_FASTCALL(MetricRemove), kFastKw,
     "remove(*values): removes the child from the heap, in every process. True when it "
     "existed. labels() notices a removal made by any process; a child object kept from "
     "before it does not: look it up again (its updates would go to the freed series, or to "
     "another series of the family that reused its space)."},
    {"clear", MetricClear, METH_NOARGS,
     "Removes every child (a family without labels keeps its child, reset)."},
    {"series_count", MetricSeriesCount, METH_NOARGS,
     "Number of children of the family, across all processes."},
};

// ---- the update methods of each type -------------------------------------------------------

template <typename H>
H* Bound(PyObject* self) {
  MetricObject* o = Self(self);
  if (!o->bound) {
    NotBound(o);
    return nullptr;
  }
  return &Get<H>(o);
}

// prometheus_client's words, which code written for it may match.
PyObject* RejectCounterAmount(PyObject*) {
  PyErr_SetString(PyExc_ValueError, "Counters can only be incremented by non-negative amounts.");
  return nullptr;
}

PyObject* CounterInc(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Counter* c = Bound<Counter>(self);
  if (c == nullptr) return nullptr;
  if (nargs == 0 && kwnames == nullptr) {
    c->Inc();
    Py_RETURN_NONE;
  }
  PyObject *amount, *exemplar;
  if (!ParseArgs("inc", args, nargs, kwnames, {"amount", "exemplar"}, {&amount, &exemplar})) {
    return nullptr;
  }
  if (amount == nullptr && (exemplar == nullptr || exemplar == Py_None)) {
    c->Inc();
    Py_RETURN_NONE;
  }
  if (exemplar == nullptr || exemplar == Py_None) {
    if (PyLong_Check(amount)) {
      int overflow = 0;
      const long long n = PyLong_AsLongLongAndOverflow(amount, &overflow);
      if (n == -1 && PyErr_Occurred()) return nullptr;
      if (overflow == 0) {
        if (!c->Inc(n)) return RejectCounterAmount(amount);
        Py_RETURN_NONE;
      }
    }
    double v;
    if (!ToDouble(amount, &v)) return nullptr;
    if (!c->Inc(v)) return RejectCounterAmount(amount);
    Py_RETURN_NONE;
  }
  double v = 1;
  if (amount != nullptr && !ToDouble(amount, &v)) return nullptr;
  if (!(v >= 0) || std::isinf(v)) return RejectCounterAmount(amount);
  Refs keep;
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  if (!ExemplarPairs(exemplar, keep, &pairs)) return nullptr;
  c->IncWithExemplar(v, ExemplarLabelSpan(pairs.data(), pairs.size()));
  Py_RETURN_NONE;
}

PyObject* CounterValue(PyObject* self, PyObject*) {
  Counter* c = Bound<Counter>(self);
  return c == nullptr ? nullptr : PyFloat_FromDouble(c->Value());
}

// amount defaults to 1; `sign` makes dec from inc.
PyObject* GaugeAdd(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                   const char* fn, double sign) {
  Gauge* g = Bound<Gauge>(self);
  if (g == nullptr) return nullptr;
  double v = 1;
  if (nargs != 0 || kwnames != nullptr) {
    PyObject* amount;
    if (!ParseArgs(fn, args, nargs, kwnames, {"amount"}, {&amount})) return nullptr;
    if (amount != nullptr && !ToDouble(amount, &v)) return nullptr;
  }
  g->Inc(sign * v);
  Py_RETURN_NONE;
}
PyObject* GaugeInc(PyObject* self, PyObject* const* a, Py_ssize_t n, PyObject* kw) {
  return GaugeAdd(self, a, n, kw, "inc", 1);
}
PyObject* GaugeDec(PyObject* self, PyObject* const* a, Py_ssize_t n, PyObject* kw) {
  return GaugeAdd(self, a, n, kw, "dec", -1);
}
PyObject* GaugeSet(PyObject* self, PyObject* value) {
  Gauge* g = Bound<Gauge>(self);
  double v;
  if (g == nullptr || !ToDouble(value, &v)) return nullptr;
  g->Set(v);
  Py_RETURN_NONE;
}
PyObject* GaugeSetToCurrentTime(PyObject* self, PyObject*) {
  Gauge* g = Bound<Gauge>(self);
  if (g == nullptr) return nullptr;
  g->SetToCurrentTime();
  Py_RETURN_NONE;
}
PyObject* GaugeValue(PyObject* self, PyObject*) {
  Gauge* g = Bound<Gauge>(self);
  return g == nullptr ? nullptr : PyFloat_FromDouble(g->Value());
}

// Classic and native histograms alike.
template <typename H>
PyObject* HistogramObserve(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                           PyObject* kwnames) {
  H* h = Bound<H>(self);
  if (h == nullptr) return nullptr;
  double v;
  if (nargs == 1 && kwnames == nullptr) {
    if (!ToDouble(args[0], &v)) return nullptr;
    h->Observe(v);  // NaN is dropped, as a bucketless observation is in prometheus_client
    Py_RETURN_NONE;
  }
  PyObject *amount, *exemplar;
  if (!ParseArgs("observe", args, nargs, kwnames, {"amount", "exemplar"}, {&amount, &exemplar})) {
    return nullptr;
  }
  if (amount == nullptr) {
    PyErr_SetString(PyExc_TypeError, "observe() missing required argument 'amount'");
    return nullptr;
  }
  if (!ToDouble(amount, &v)) return nullptr;
  if (exemplar == nullptr || exemplar == Py_None) {
    h->Observe(v);
    Py_RETURN_NONE;
  }
  Refs keep;
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  if (!ExemplarPairs(exemplar, keep, &pairs)) return nullptr;
  h->ObserveWithExemplar(v, ExemplarLabelSpan(pairs.data(), pairs.size()));
  Py_RETURN_NONE;
}
template <typename H>
PyObject* HistogramCount(PyObject* self, PyObject*) {
  H* h = Bound<H>(self);
  return h == nullptr ? nullptr : PyLong_FromUnsignedLongLong(h->Count());
}
template <typename H>
PyObject* HistogramSum(PyObject* self, PyObject*) {
  H* h = Bound<H>(self);
  return h == nullptr ? nullptr : PyFloat_FromDouble(h->Sum());
}

PyObject* SummaryObserve(PyObject* self, PyObject* amount) {
  Summary* s = Bound<Summary>(self);
  double v;
  if (s == nullptr || !ToDouble(amount, &v)) return nullptr;
  s->Observe(v);  // NaN is dropped
  Py_RETURN_NONE;
}
PyObject* SummaryCount(PyObject* self, PyObject*) {
  Summary* s = Bound<Summary>(self);
  return s == nullptr ? nullptr : PyLong_FromUnsignedLongLong(s->Count());
}
PyObject* SummarySum(PyObject* self, PyObject*) {
  Summary* s = Bound<Summary>(self);
  return s == nullptr ? nullptr : PyFloat_FromDouble(s->Sum());
}
PyObject* SummaryQuantile(PyObject* self, PyObject* q) {
  Summary* s = Bound<Summary>(self);
  double v;
  if (s == nullptr || !ToDouble(q, &v)) return nullptr;
  double r;
  try {
    r = s->Quantile(v);
  } catch (...) {
    SetErrorFromException();
    return nullptr;
  }
  return PyFloat_FromDouble(r);
}

PyObject* UnknownState(MetricObject* o, PyObject* state) {
  std::string states;
  for (const std::string& s : o->family->states()) states += (states.empty() ? "" : ", ") + s;
  PyErr_Format(PyExc_ValueError, "%R is not a state of %s (states: %s)", state,
               o->family->name().c_str(), states.c_str());
  return nullptr;
}
PyObject* StateSetSet(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  StateSet* s = Bound<StateSet>(self);
  if (s == nullptr) return nullptr;
  PyObject *state, *on;
  if (!ParseArgs("set", args, nargs, kwnames, {"state", "on"}, {&state, &on})) return nullptr;
  Refs keep;
  std::string_view name;
  if (state == nullptr) {
    PyErr_SetString(PyExc_TypeError, "set() missing required argument 'state'");
    return nullptr;
  }
  if (!AsText(state, keep, &name)) return nullptr;
  const int truth = on == nullptr ? 1 : PyObject_IsTrue(on);
  if (truth < 0) return nullptr;
  if (!s->Set(name, truth != 0)) return UnknownState(Self(self), state);
  Py_RETURN_NONE;
}
PyObject* StateSetSetOnly(PyObject* self, PyObject* state) {
  StateSet* s = Bound<StateSet>(self);
  Refs keep;
  std::string_view name;
  if (s == nullptr || !AsText(state, keep, &name)) return nullptr;
  if (!s->SetOnly(name)) return UnknownState(Self(self), state);
  Py_RETURN_NONE;
}
PyObject* StateSetIsSet(PyObject* self, PyObject* state) {
  StateSet* s = Bound<StateSet>(self);
  Refs keep;
  std::string_view name;
  if (s == nullptr || !AsText(state, keep, &name)) return nullptr;
  return PyBool_FromLong(s->IsSet(name));
}
PyObject* StateSetStates(PyObject* self, PyObject*) {
  MetricObject* o = Self(self);
  if (!Registered(o)) return nullptr;
  const auto& states = o->family->states();
  PyObject* t = PyTuple_New(static_cast<Py_ssize_t>(states.size()));
  for (size_t i = 0; t != nullptr && i < states.size(); ++i) {
    PyObject* s = PyUnicode_FromStringAndSize(states[i].data(), states[i].size());
    if (s == nullptr) {
      Py_CLEAR(t);
      break;
    }
    PyTuple_SET_ITEM(t, i, s);
  }
  return t;
}

// Seconds as a Python number to whole nanoseconds; rejects negative, NaN and out-of-range.
bool SecondsToNanos(PyObject* seconds, std::chrono::nanoseconds* out) {
  double s;
  if (!ToDouble(seconds, &s)) return false;
  if (!(s >= 0) || s > 9.2e9) {
    PyErr_Format(PyExc_ValueError, "durations must be non-negative seconds (got %R)", seconds);
    return false;
  }
  *out = std::chrono::nanoseconds(std::llround(s * 1e9));
  return true;
}
double Seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

PyObject* TimerRecord(PyObject* self, PyObject* seconds) {
  Timer* t = Bound<Timer>(self);
  std::chrono::nanoseconds d;
  if (t == nullptr || !SecondsToNanos(seconds, &d)) return nullptr;
  t->Record(d);
  Py_RETURN_NONE;
}
PyObject* TimerCount(PyObject* self, PyObject*) {
  Timer* t = Bound<Timer>(self);
  return t == nullptr ? nullptr : PyLong_FromUnsignedLongLong(t->Count());
}
PyObject* TimerTotal(PyObject* self, PyObject*) {
  Timer* t = Bound<Timer>(self);
  return t == nullptr ? nullptr : PyFloat_FromDouble(Seconds(t->TotalTime()));
}
PyObject* TimerSquares(PyObject* self, PyObject*) {
  Timer* t = Bound<Timer>(self);
  return t == nullptr ? nullptr : PyFloat_FromDouble(t->TotalOfSquares() / 1e18);
}
PyObject* TimerMax(PyObject* self, PyObject*) {
  Timer* t = Bound<Timer>(self);
  return t == nullptr ? nullptr : PyFloat_FromDouble(Seconds(t->Max()));
}

PyObject* DistributionRecord(PyObject* self, PyObject* amount) {
  DistributionSummary* d = Bound<DistributionSummary>(self);
  double v;
  if (d == nullptr || !ToDouble(amount, &v)) return nullptr;
  if (!d->Record(v)) {
    PyErr_Format(PyExc_ValueError, "amounts must be finite and non-negative (got %R)", amount);
    return nullptr;
  }
  Py_RETURN_NONE;
}
PyObject* DistributionCount(PyObject* self, PyObject*) {
  DistributionSummary* d = Bound<DistributionSummary>(self);
  return d == nullptr ? nullptr : PyLong_FromUnsignedLongLong(d->Count());
}
PyObject* DistributionTotal(PyObject* self, PyObject*) {
  DistributionSummary* d = Bound<DistributionSummary>(self);
  return d == nullptr ? nullptr : PyFloat_FromDouble(d->TotalAmount());
}
PyObject* DistributionSquares(PyObject* self, PyObject*) {
  DistributionSummary* d = Bound<DistributionSummary>(self);
  return d == nullptr ? nullptr : PyFloat_FromDouble(d->TotalOfSquares());
}
PyObject* DistributionMax(PyObject* self, PyObject*) {
  DistributionSummary* d = Bound<DistributionSummary>(self);
  return d == nullptr ? nullptr : PyFloat_FromDouble(d->Max());
}

PyObject* MaxGaugeSet(PyObject* self, PyObject* value) {
  MaxGauge* g = Bound<MaxGauge>(self);
  double v;
  if (g == nullptr || !ToDouble(value, &v)) return nullptr;
  if (!g->Set(v)) return RaiseValueError("a max gauge cannot be set to NaN");
  Py_RETURN_NONE;
}
PyObject* MaxGaugeValue(PyObject* self, PyObject*) {
  MaxGauge* g = Bound<MaxGauge>(self);
  return g == nullptr ? nullptr : PyFloat_FromDouble(g->Value());
}

PyObject* AgeGaugeReset(PyObject* self, PyObject*) {
  AgeGauge* g = Bound<AgeGauge>(self);
  if (g == nullptr) return nullptr;
  g->Reset();
  Py_RETURN_NONE;
}
PyObject* AgeGaugeLastReset(PyObject* self, PyObject*) {
  AgeGauge* g = Bound<AgeGauge>(self);
  if (g == nullptr) return nullptr;
  const uint64_t ns = g->LastResetUnixNanos();
  if (ns == 0) Py_RETURN_NONE;
  return PyFloat_FromDouble(static_cast<double>(ns) / 1e9);
}

PyObject* PercentileTimerRecord(PyObject* self, PyObject* seconds) {
  PercentileTimer* t = Bound<PercentileTimer>(self);
  std::chrono::nanoseconds d;
  if (t == nullptr || !SecondsToNanos(seconds, &d)) return nullptr;
  t->Record(d);
  Py_RETURN_NONE;
}
PyObject* PercentileTimerCount(PyObject* self, PyObject*) {
  PercentileTimer* t = Bound<PercentileTimer>(self);
  return t == nullptr ? nullptr : PyLong_FromUnsignedLongLong(t->Count());
}
PyObject* PercentileTimerTotal(PyObject* self, PyObject*) {
  PercentileTimer* t = Bound<PercentileTimer>(self);
  return t == nullptr ? nullptr : PyFloat_FromDouble(Seconds(t->TotalTime()));
}
bool Quantile01(PyObject* q, double* out) {
  if (!ToDouble(q, out)) return false;
  if (!(*out >= 0 && *out <= 1)) {
    PyErr_Format(PyExc_ValueError, "a quantile is in [0, 1] (got %R)", q);
    return false;
  }
  return true;
}
PyObject* PercentileTimerQuantile(PyObject* self, PyObject* q) {
  PercentileTimer* t = Bound<PercentileTimer>(self);
  double v;
  if (t == nullptr || !Quantile01(q, &v)) return nullptr;
  return PyFloat_FromDouble(t->Quantile(v));
}

PyObject* PercentileDistRecord(PyObject* self, PyObject* amount) {
  PercentileDistributionSummary* d = Bound<PercentileDistributionSummary>(self);
  if (d == nullptr) return nullptr;
  const long long n = PyLong_AsLongLong(amount);
  if (n == -1 && PyErr_Occurred()) return nullptr;
  if (!d->Record(n)) {
    PyErr_Format(PyExc_ValueError, "amounts must be non-negative integers (got %R)", amount);
    return nullptr;
  }
  Py_RETURN_NONE;
}
PyObject* PercentileDistCount(PyObject* self, PyObject*) {
  PercentileDistributionSummary* d = Bound<PercentileDistributionSummary>(self);
  return d == nullptr ? nullptr : PyLong_FromUnsignedLongLong(d->Count());
}
PyObject* PercentileDistTotal(PyObject* self, PyObject*) {
  PercentileDistributionSummary* d = Bound<PercentileDistributionSummary>(self);
  return d == nullptr ? nullptr : PyLong_FromUnsignedLongLong(d->TotalAmount());
}
PyObject* PercentileDistQuantile(PyObject* self, PyObject* q) {
  PercentileDistributionSummary* d = Bound<PercentileDistributionSummary>(self);
  double v;
  if (d == nullptr || !Quantile01(q, &v)) return nullptr;
  return PyFloat_FromDouble(d->Quantile(v));
}

// ---- the types -----------------------------------------------------------------------------

struct TypeDef {
  MetricType type;
  const char* name;  // of the base type in the module
  const char* doc;
  std::vector<PyMethodDef> methods;
  newfunc tp_new;
};

std::vector<TypeDef>& TypeDefs() {
  static auto* defs = new std::vector<TypeDef>{
      {MetricType::kCounter,
       "CounterBase",
       "A counter family or child (see shmetrics.Counter).",
       {{"inc", SHM_FASTCALL(CounterInc), kFastKw,
         "inc(amount=1, exemplar=None): adds a non-negative amount."},
        {"value", CounterValue, METH_NOARGS, "The current value (every process's)."}},
       MetricNew<MetricType::kCounter>},
      {MetricType::kGauge,
       "GaugeBase",
       "A gauge family or child (see shmetrics.Gauge).",
       {{"inc", SHM_FASTCALL(GaugeInc), kFastKw, "inc(amount=1)"},
        {"dec", SHM_FASTCALL(GaugeDec), kFastKw, "dec(amount=1)"},
        {"set", GaugeSet, METH_O, "set(value)"},
        {"set_to_current_time", GaugeSetToCurrentTime, METH_NOARGS,
         "Sets the gauge to the current Unix time in seconds."},
        {"value", GaugeValue, METH_NOARGS,
         "This process's value (for per-worker modes, this worker's)."}},
       MetricNew<MetricType::kGauge>},
      {MetricType::kHistogram,
       "HistogramBase",
       "A histogram (see shmetrics.Histogram).",
       {{"observe", SHM_FASTCALL(HistogramObserve<Histogram>), kFastKw,
         "observe(amount, exemplar=None); NaN is dropped."},
        {"count", HistogramCount<Histogram>, METH_NOARGS, "Observations so far."},
        {"sum", HistogramSum<Histogram>, METH_NOARGS, "Sum of the observations."}},
       MetricNew<MetricType::kHistogram>},
      {MetricType::kSummary,
       "SummaryBase",
       "A summary (see shmetrics.Summary).",
       {{"observe", SummaryObserve, METH_O, "observe(amount); NaN is dropped."},
        {"count", SummaryCount, METH_NOARGS, "Observations so far."},
        {"sum", SummarySum, METH_NOARGS, "Sum of the observations."},
        {"quantile", SummaryQuantile, METH_O,
         "quantile(q): the q-quantile of the window; NaN without quantiles or observations."}},
       MetricNew<MetricType::kSummary>},
      {MetricType::kInfo,
       "InfoBase",
       "An info family (see shmetrics.Info).",
       {},
       MetricNew<MetricType::kInfo>},
      {MetricType::kStateSet,
       "StateSetBase",
       "A stateset (see shmetrics.StateSet).",
       {{"set", SHM_FASTCALL(StateSetSet), kFastKw, "set(state, on=True)"},
        {"set_only", StateSetSetOnly, METH_O, "set_only(state): this state on, every other off."},
        {"is_set", StateSetIsSet, METH_O, "is_set(state)"},
        {"states", StateSetStates, METH_NOARGS, "The states, in the declared order."}},
       MetricNew<MetricType::kStateSet>},
      {MetricType::kTimer,
       "TimerBase",
       "Spectator's timer (see shmetrics.Timer).",
       {{"record", TimerRecord, METH_O, "record(seconds)"},
        {"count", TimerCount, METH_NOARGS, ""},
        {"total_time", TimerTotal, METH_NOARGS, "In seconds."},
        {"total_of_squares", TimerSquares, METH_NOARGS, "In seconds squared."},
        {"max", TimerMax, METH_NOARGS, "In seconds, since the last scrape that reset it."}},
       MetricNew<MetricType::kTimer>},
      {MetricType::kDistributionSummary,
       "DistributionSummaryBase",
       "Spectator's distribution summary.",
       {{"record", DistributionRecord, METH_O, "record(amount)"},
        {"count", DistributionCount, METH_NOARGS, ""},
        {"total_amount", DistributionTotal, METH_NOARGS, ""},
        {"total_of_squares", DistributionSquares, METH_NOARGS, ""},
        {"max", DistributionMax, METH_NOARGS, ""}},
       MetricNew<MetricType::kDistributionSummary>},
      {MetricType::kMaxGauge,
       "MaxGaugeBase",
       "Spectator's max gauge.",
       {{"set", MaxGaugeSet, METH_O, "set(value): keeps the largest since the last scrape."},
        {"value", MaxGaugeValue, METH_NOARGS, "NaN when empty."}},
       MetricNew<MetricType::kMaxGauge>},
      {MetricType::kAgeGauge,
       "AgeGaugeBase",
       "Spectator's age gauge.",
       {{"reset", AgeGaugeReset, METH_NOARGS, "Restarts the age at 0 now."},
        {"last_reset", AgeGaugeLastReset, METH_NOARGS,
         "Unix time of the last reset in seconds, or None."}},
       MetricNew<MetricType::kAgeGauge>},
      {MetricType::kPercentileTimer,
       "PercentileTimerBase",
       "Spectator's percentile timer.",
       {{"record", PercentileTimerRecord, METH_O, "record(seconds)"},
        {"count", PercentileTimerCount, METH_NOARGS, ""},
        {"total_time", PercentileTimerTotal, METH_NOARGS, "In seconds."},
        {"quantile", PercentileTimerQuantile, METH_O, "quantile(q) in seconds, q in [0, 1]."}},
       MetricNew<MetricType::kPercentileTimer>},
      {MetricType::kPercentileDistributionSummary,
       "PercentileDistributionSummaryBase",
       "Spectator's percentile distribution summary.",
       {{"record", PercentileDistRecord, METH_O, "record(amount): a non-negative integer."},
        {"count", PercentileDistCount, METH_NOARGS, ""},
        {"total_amount", PercentileDistTotal, METH_NOARGS, ""},
        {"quantile", PercentileDistQuantile, METH_O, "quantile(q), q in [0, 1]."}},
       MetricNew<MetricType::kPercentileDistributionSummary>},
      {MetricType::kNativeHistogram,
       "NativeHistogramBase",
       "A native histogram (see shmetrics.NativeHistogram).",
       {{"observe", SHM_FASTCALL(HistogramObserve<NativeHistogram>), kFastKw,
         "observe(amount, exemplar=None); NaN is dropped."},
        {"count", HistogramCount<NativeHistogram>, METH_NOARGS, "Observations so far."},
        {"sum", HistogramSum<NativeHistogram>, METH_NOARGS, "Sum of the observations."}},
       MetricNew<MetricType::kNativeHistogram>},
  };
  return *defs;
}

}  // namespace

bool AddMetricTypes(PyObject* module) {
  for (TypeDef& def : TypeDefs()) {
    // Kept for the life of the process: the type refers to them.
    auto* methods =
        new std::vector<PyMethodDef>(std::begin(g_common_methods), std::end(g_common_methods));
    methods->insert(methods->end(), def.methods.begin(), def.methods.end());
    methods->push_back({nullptr, nullptr, 0, nullptr});
    auto* qualified = new std::string(std::string("shmetrics._shmetrics.") + def.name);
    auto* slots = new std::vector<PyType_Slot>{
        {Py_tp_dealloc, reinterpret_cast<void*>(MetricDealloc)},
        {Py_tp_traverse, reinterpret_cast<void*>(MetricTraverse)},
        {Py_tp_clear, reinterpret_cast<void*>(MetricClearRefs)},
        {Py_tp_repr, reinterpret_cast<void*>(MetricRepr)},
        {Py_tp_methods, methods->data()},
        {Py_tp_getset, g_getset},
        {Py_tp_members, g_members},
        {Py_tp_new, reinterpret_cast<void*>(def.tp_new)},
        {Py_tp_doc, const_cast<char*>(def.doc)},
        {0, nullptr},
    };
    auto* spec = new PyType_Spec{qualified->c_str(), sizeof(MetricObject), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
                                 slots->data()};
    PyObject* type = PyType_FromSpec(spec);
    if (type == nullptr) return false;
    g_base[static_cast<size_t>(def.type)] = reinterpret_cast<PyTypeObject*>(type);
    Py_INCREF(type);
    if (PyModule_AddObject(module, def.name, type) < 0) return false;
  }
  return true;
}

bool CheckUnbound(PyObject* obj, MetricType* type) {
  for (size_t t = 1; t < kTypes; ++t) {
    if (g_base[t] != nullptr && PyObject_TypeCheck(obj, g_base[t])) {
      if (Self(obj)->family != nullptr) {
        PyErr_SetString(PyExc_ValueError, "this metric object is registered already");
        return false;
      }
      *type = static_cast<MetricType>(t);
      return true;
    }
  }
  PyErr_Format(PyExc_TypeError, "not a shmetrics metric object: %R", obj);
  return false;
}

bool BindFamily(PyObject* obj, PyObject* registry, const FamilyBase& family) {
  MetricObject* o = Self(obj);
  if (o->family != nullptr || family.type() != o->type) {
    PyErr_SetString(PyExc_TypeError, "metric object of the wrong type or registered already");
    return false;
  }
  SeriesRef ref{};
  if (family.label_names().empty()) {
    try {
      ref = family.Lookup({});
    } catch (...) {
      SetErrorFromException();
      return false;
    }
  }
  Py_INCREF(registry);
  o->registry = registry;
  o->family = &family;
  if (family.label_names().empty()) EmplaceHandle(o, ref);
  return true;
}

}  // namespace shmetrics::python
