// shmetrics._shmetrics: the native module under the `shmetrics` package. Heaps, registries,
// exposition and the HTTP exposer are bound with pybind11 (nothing there is hot); the metric
// objects, whose methods are, are CPython types of their own (metrics.cc).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "metrics.h"
#include "shmetrics/exposition.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"

namespace py = pybind11;
using namespace pybind11::literals;

namespace shmetrics::python {
namespace {

// Turns a shmetrics::Error escaping into pybind11 into the module's exception classes.
void TranslateErrors(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const Error&) {
    SetErrorFromException();
  }
}

[[noreturn]] void ThrowPython() { throw py::error_already_set(); }

// Options of a registration, taken one by one; whatever is left is a TypeError.
class Options {
 public:
  Options(const char* what, py::kwargs kwargs) : what_(what), left_(py::dict(kwargs)) {}

  template <typename T>
  std::optional<T> Take(const char* key) {
    if (!left_.contains(key)) return std::nullopt;
    py::object v = left_[key];
    PyDict_DelItemString(left_.ptr(), key);
    if (v.is_none()) return std::nullopt;
    return v.cast<T>();
  }
  std::string Unit() { return Take<std::string>("unit").value_or(""); }
  uint32_t MaxChildren() { return Take<uint32_t>("max_children").value_or(0); }
  std::chrono::nanoseconds Seconds(const char* key, std::chrono::nanoseconds fallback) {
    const std::optional<double> s = Take<double>(key);
    if (!s) return fallback;
    if (!(*s >= 0) || *s > 9.2e9) {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(what_) + ": " + key + " must be a non-negative number of seconds");
    }
    return std::chrono::nanoseconds(std::llround(*s * 1e9));
  }
  void Done() {
    if (left_.empty()) return;
    std::string keys;
    for (auto item : left_)
      keys += (keys.empty() ? "" : ", ") + py::str(item.first).cast<std::string>();
    throw py::type_error(std::string(what_) + "() got unexpected options: " + keys);
  }

 private:
  const char* what_;
  py::dict left_;
};

GaugeMode ParseGaugeMode(const std::string& mode) {
  static const std::pair<const char*, GaugeMode> kModes[] = {
      {"shared", GaugeMode::kShared},
      {"sum", GaugeMode::kSum},
      {"min", GaugeMode::kMin},
      {"max", GaugeMode::kMax},
      {"mostrecent", GaugeMode::kMostRecent},
      {"all", GaugeMode::kAll},
      {"livesum", GaugeMode::kLiveSum},
      {"livemin", GaugeMode::kLiveMin},
      {"livemax", GaugeMode::kLiveMax},
      {"livemostrecent", GaugeMode::kLiveMostRecent},
      {"liveall", GaugeMode::kLiveAll},
  };
  for (const auto& [name, m] : kModes) {
    if (mode == name) return m;
  }
  throw Error(ErrorCode::kInvalidArgument,
              "unknown gauge mode '" + mode +
                  "' (shared, sum, min, max, mostrecent, all, livesum, livemin, livemax, "
                  "livemostrecent, liveall)");
}

// The one switch over the type for registration: the options of each type.
const internal::FamilyBase& RegisterFamily(Registry& r, MetricType type, const std::string& name,
                                           const std::string& help, LabelNames labels, Options& o) {
  switch (type) {
    case MetricType::kCounter: {
      CounterOptions c{.unit = o.Unit(), .max_children = o.MaxChildren()};
      c.striped = o.Take<bool>("striped").value_or(false);
      o.Done();
      return r.AddCounter(name, help, std::move(labels), c);
    }
    case MetricType::kGauge: {
      GaugeOptions g{.unit = o.Unit(), .max_children = o.MaxChildren()};
      g.mode = ParseGaugeMode(o.Take<std::string>("mode").value_or("shared"));
      g.ttl = o.Seconds("ttl", std::chrono::nanoseconds(0));
      o.Done();
      return r.AddGauge(name, help, std::move(labels), g);
    }
    case MetricType::kHistogram: {
      HistogramOptions h{.unit = o.Unit(), .max_children = o.MaxChildren()};
      h.buckets = o.Take<std::vector<double>>("buckets").value_or(std::vector<double>{});
      o.Done();
      return r.AddHistogram(name, help, std::move(labels), h);
    }
    case MetricType::kSummary: {
      SummaryOptions s{.unit = o.Unit(), .max_children = o.MaxChildren()};
      s.quantiles = o.Take<std::vector<double>>("quantiles").value_or(std::vector<double>{});
      s.max_age = o.Seconds("max_age", s.max_age);
      s.age_buckets = o.Take<uint32_t>("age_buckets").value_or(s.age_buckets);
      s.relative_accuracy = o.Take<double>("relative_accuracy").value_or(s.relative_accuracy);
      s.min_value = o.Take<double>("min_value").value_or(s.min_value);
      s.max_value = o.Take<double>("max_value").value_or(s.max_value);
      o.Done();
      return r.AddSummary(name, help, std::move(labels), s);
    }
    case MetricType::kInfo:
      o.Done();
      return r.AddInfo(name, help, std::move(labels));
    case MetricType::kStateSet: {
      auto states = o.Take<std::vector<std::string>>("states");
      o.Done();
      if (!states) throw py::type_error("a stateset needs states=[...]");
      return r.AddStateSet(name, help, std::move(labels), std::move(*states));
    }
    case MetricType::kTimer: {
      TimerOptions t{.max_children = o.MaxChildren()};
      o.Done();
      return r.AddTimer(name, help, std::move(labels), t);
    }
    case MetricType::kDistributionSummary: {
      DistributionSummaryOptions d{.unit = o.Unit(), .max_children = o.MaxChildren()};
      o.Done();
      return r.AddDistributionSummary(name, help, std::move(labels), d);
    }
    case MetricType::kMaxGauge: {
      MetricOptions m{.unit = o.Unit(), .max_children = o.MaxChildren()};
      o.Done();
      return r.AddMaxGauge(name, help, std::move(labels), m);
    }
    case MetricType::kAgeGauge: {
      MetricOptions m{.unit = o.Unit(), .max_children = o.MaxChildren()};
      o.Done();
      return r.AddAgeGauge(name, help, std::move(labels), m);
    }
    case MetricType::kPercentileTimer: {
      PercentileTimerOptions p{.max_children = o.MaxChildren()};
      p.min = o.Seconds("min", p.min);
      p.max = o.Seconds("max", p.max);
      o.Done();
      return r.AddPercentileTimer(name, help, std::move(labels), p);
    }
    case MetricType::kPercentileDistributionSummary: {
      PercentileDistributionSummaryOptions p{.unit = o.Unit(), .max_children = o.MaxChildren()};
      p.min = o.Take<int64_t>("min").value_or(p.min);
      p.max = o.Take<int64_t>("max").value_or(p.max);
      o.Done();
      return r.AddPercentileDistributionSummary(name, help, std::move(labels), p);
    }
    case MetricType::kNativeHistogram: {
      NativeHistogramOptions n{.unit = o.Unit(), .max_children = o.MaxChildren()};
      n.schema = o.Take<int32_t>("schema").value_or(n.schema);
      n.zero_threshold = o.Take<double>("zero_threshold").value_or(n.zero_threshold);
      n.min_value = o.Take<double>("min_value").value_or(n.min_value);
      n.max_value = o.Take<double>("max_value").value_or(n.max_value);
      n.negative_buckets = o.Take<bool>("negative_buckets").value_or(n.negative_buckets);
      n.max_buckets = o.Take<uint32_t>("max_buckets").value_or(n.max_buckets);
      o.Done();
      return r.AddNativeHistogram(name, help, std::move(labels), n);
    }
  }
  throw py::type_error("unknown metric type");
}

struct PyRegistry {
  py::object heap;  // the Python Heap object, for pickling and introspection
  std::unique_ptr<Registry> registry;
  RegistryOptions options;
};

// The exposer's thread exists only in the process that started it. A forked child that drops
// its copy of the object (a gunicorn worker exiting) must not join a thread it does not have.
struct PyExposer {
  std::unique_ptr<HttpExposer> exposer;
  pid_t owner = getpid();
  void Close() {
    if (getpid() == owner) {
      py::gil_scoped_release unlocked;
      exposer.reset();
    } else {
      (void)exposer.release();  // the parent's; leaked on purpose
    }
  }
  ~PyExposer() {
    if (getpid() != owner) (void)exposer.release();
  }
};

ExpositionFormat ParseFormat(const std::string& f) {
  if (f == "openmetrics") return ExpositionFormat::kOpenMetrics;
  if (f == "prometheus" || f == "text") return ExpositionFormat::kPrometheus;
  if (f == "protobuf") return ExpositionFormat::kProtobuf;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown exposition format '" + f + "' (openmetrics, prometheus, protobuf)");
}

// Heap::Create and its kin, and Heap::Open and its kin, with their options as keywords.
template <auto F>
auto Creating() {
  return [](const std::string& where, uint64_t max_size, uint64_t initial_size, uint32_t mode,
            uint32_t max_workers) {
    return F(where, {.max_size = max_size,
                     .initial_size = initial_size,
                     .mode = static_cast<mode_t>(mode),
                     .max_workers = max_workers});
  };
}
template <auto F>
auto Opening() {
  return [](const std::string& where, bool read_only, bool allow_other_owner,
            bool allow_shared_write) {
    return F(where, {.read_only = read_only,
                     .allow_other_owner = allow_other_owner,
                     .allow_shared_write = allow_shared_write});
  };
}
#define CREATE_OPTIONS                                                                     \
  "max_size"_a = uint64_t{1} << 30, "initial_size"_a = uint64_t{1} << 20, "mode"_a = 0600, \
  "max_workers"_a = 64
#define OPEN_OPTIONS \
  "read_only"_a = false, "allow_other_owner"_a = false, "allow_shared_write"_a = false

void BindHeap(py::module_& m) {
  py::class_<Heap>(m, "Heap", R"(A named shared-memory heap holding every meter of a service.

Create it in the master before forking (Heap.create), open it by name elsewhere (Heap.open).
Copies of a Heap refer to the same mapping. Every method is safe from any thread and process.)")
      .def_static("create", Creating<&Heap::Create>(), "name"_a, py::kw_only(), CREATE_OPTIONS)
      .def_static("open_or_create", Creating<&Heap::OpenOrCreate>(), "name"_a, py::kw_only(),
                  CREATE_OPTIONS)
      .def_static("create_at_path", Creating<&Heap::CreateAtPath>(), "path"_a, py::kw_only(),
                  CREATE_OPTIONS)
      .def_static("open", Opening<&Heap::Open>(), "name"_a, py::kw_only(), OPEN_OPTIONS)
      .def_static("open_at_path", Opening<&Heap::OpenAtPath>(), "path"_a, py::kw_only(),
                  OPEN_OPTIONS)
      .def_static(
          "remove", [](const std::string& name) { Heap::Remove(name); }, py::arg("name"))
      .def_static(
          "remove_at_path", [](const std::string& p) { Heap::RemoveAtPath(p); }, py::arg("path"))
      .def_static("list", &Heap::List, "Names of the heaps in /dev/shm this user can see.")
      .def("attach_worker", &Heap::AttachWorker,
           "Claims a stable worker id (0..max_workers-1) for this process; idempotent.")
      .def("detach_worker", &Heap::DetachWorker)
      .def_property_readonly("worker_id", &Heap::worker_id)
      .def_property_readonly("name", &Heap::name, "The name, or the path of a heap at a path.")
      .def_property_readonly("read_only", &Heap::read_only)
      .def("usage",
           [](const Heap& h) {
             const Heap::Usage u = h.usage();
             py::dict d;
             d["used_bytes"] = u.used_bytes;
             d["committed_bytes"] = u.committed_bytes;
             d["max_bytes"] = u.max_bytes;
             return d;
           })
      .def("__repr__", [](const Heap& h) { return "<shmetrics.Heap '" + h.name() + "'>"; });
}

#undef CREATE_OPTIONS
#undef OPEN_OPTIONS

void BindRegistry(py::module_& m) {
  py::class_<PyRegistry>(m, "RegistryBase")
      .def(py::init([](py::object heap, std::string prefix,
                       std::optional<std::map<std::string, std::string>> const_labels,
                       bool read_environment, uint32_t max_children, bool utf8_names) {
             auto r = std::make_unique<PyRegistry>();
             r->options = {
                 .prefix = std::move(prefix),
                 .const_labels = const_labels.value_or(std::map<std::string, std::string>{}),
                 .read_environment = read_environment,
                 .max_children = max_children};
             r->options.utf8_names = utf8_names;
             r->registry = std::make_unique<Registry>(heap.cast<Heap>(), r->options);
             r->heap = std::move(heap);
             return r;
           }),
           py::arg("heap"), py::kw_only(), py::arg("prefix") = "",
           py::arg("const_labels") = py::none(), py::arg("read_environment") = true,
           py::arg("max_children") = 10000, py::arg("utf8_names") = false)
      .def_property_readonly("heap", [](const PyRegistry& r) { return r.heap; })
      .def_property_readonly("utf8_names", [](const PyRegistry& r) { return r.options.utf8_names; })
      .def_property_readonly("prefix", [](const PyRegistry& r) { return r.options.prefix; })
      .def_property_readonly("const_labels",
                             [](const PyRegistry& r) { return r.registry->const_labels(); })
      .def_property_readonly("_explicit_const_labels",
                             [](const PyRegistry& r) { return r.options.const_labels; })
      .def_property_readonly("read_environment",
                             [](const PyRegistry& r) { return r.options.read_environment; })
      .def_property_readonly("max_children",
                             [](const PyRegistry& r) { return r.options.max_children; })
      .def(
          "_register",
          [](py::object self, py::object metric, const std::string& name, const std::string& help,
             std::vector<std::string> labels, py::kwargs kwargs) {
            MetricType type;
            if (!CheckUnbound(metric.ptr(), &type)) ThrowPython();
            Options options("register", std::move(kwargs));
            PyRegistry& r = self.cast<PyRegistry&>();
            const internal::FamilyBase& family =
                RegisterFamily(*r.registry, type, name, help, std::move(labels), options);
            if (!BindFamily(metric.ptr(), self.ptr(), family)) ThrowPython();
            return metric;
          },
          py::arg("metric"), py::arg("name"), py::arg("help"), py::arg("labels"),
          "Registers `metric` (an unregistered object of a metric class) as the family of this "
          "name, with the type's options as keywords; returns it.");
}

void BindExposition(py::module_& m) {
  m.def(
      "expose",
      [](const Heap& heap, const std::string& format, bool created_samples, bool utf8_names) {
        const ExposeOptions options{.format = ParseFormat(format),
                                    .created_samples = created_samples,
                                    .utf8_names = utf8_names};
        std::string text;
        {
          py::gil_scoped_release unlocked;
          text = Expose(heap, options);
        }
        return py::bytes(text);
      },
      py::arg("heap"), py::arg("format") = "openmetrics", py::kw_only(),
      py::arg("created_samples") = true, py::arg("utf8_names") = false,
      "One exposition of every family of the heap as bytes: 'openmetrics' (OpenMetrics 1.0.0), "
      "'prometheus' (the 0.0.4 text format) or 'protobuf' (delimited "
      "io.prometheus.client.MetricFamily messages). created_samples=False leaves out the "
      "_created samples; utf8_names=True writes names outside the legacy set as they are "
      "(quoted) instead of escaping them with underscores. On a writable heap it resets the "
      "maxima, as a scrape does.");

  py::class_<PyExposer>(m, "HttpExposer", R"(The embedded HTTP endpoint of a master process.

It serves GET/HEAD /metrics from a thread of its own (C++, never holding the GIL). Start it in
the master after daemonizing and before forking; forked workers never serve it.)")
      .def(py::init([](std::vector<Heap> heaps, const std::string& address, uint16_t port,
                       bool process_metrics, std::optional<std::string> web_config_file,
                       bool created_samples) {
             HttpExposerOptions o;
             o.address = address;
             o.port = port;
             o.process_metrics = process_metrics;
             o.created_samples = created_samples;
             if (web_config_file) o.web = LoadWebConfigFile(*web_config_file);
             auto e = std::make_unique<PyExposer>();
             py::gil_scoped_release unlocked;
             e->exposer = std::make_unique<HttpExposer>(std::move(heaps), o);
             return e;
           }),
           py::arg("heaps"), py::kw_only(), py::arg("address") = "127.0.0.1",
           py::arg("port") = 9464, py::arg("process_metrics") = true,
           py::arg("web_config_file") = py::none(), py::arg("created_samples") = true)
      .def_property_readonly("port",
                             [](const PyExposer& e) -> int {
                               if (!e.exposer) throw py::value_error("the exposer is closed");
                               return e.exposer->port();
                             })
      .def_property_readonly("closed", [](const PyExposer& e) { return !e.exposer; })
      .def("close", &PyExposer::Close, "Stops serving (in the process that started it).");
}

}  // namespace
}  // namespace shmetrics::python

PYBIND11_MODULE(_shmetrics, m) {
  using namespace shmetrics::python;
  m.doc() = "The native part of shmetrics (see the shmetrics package).";
  if (!AddExceptions(m.ptr()) || !AddMetricTypes(m.ptr())) throw py::error_already_set();
  py::register_exception_translator(TranslateErrors);
  BindHeap(m);
  BindRegistry(m);
  BindExposition(m);
}
