#include "process/process_metrics.h"

namespace shmetrics::process {
namespace {

using expose::MetricType;

struct FamilySpec {
  expose::FamilyInfo info;
  double (*value)(const ProcessStats&);
};

// Help texts of the standard names follow the Prometheus client libraries word for word, so
// dashboards that show help read the same as for any other exporter.
constexpr FamilySpec kFamilies[] = {
    {{"process_cpu_seconds", MetricType::kCounter,
      "Total user and system CPU time spent in seconds.", "seconds"},
     [](const ProcessStats& s) { return s.cpu_user_seconds + s.cpu_system_seconds; }},
    {{"process_cpu_user_seconds", MetricType::kCounter, "Total user CPU time spent in seconds.",
      "seconds"},
     [](const ProcessStats& s) { return s.cpu_user_seconds; }},
    {{"process_cpu_system_seconds", MetricType::kCounter, "Total system CPU time spent in seconds.",
      "seconds"},
     [](const ProcessStats& s) { return s.cpu_system_seconds; }},
    {{"process_resident_memory_bytes", MetricType::kGauge, "Resident memory size in bytes.",
      "bytes"},
     [](const ProcessStats& s) { return static_cast<double>(s.resident_memory_bytes); }},
    {{"process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size in bytes.", "bytes"},
     [](const ProcessStats& s) { return static_cast<double>(s.virtual_memory_bytes); }},
    {{"process_open_fds", MetricType::kGauge, "Number of open file descriptors.", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.open_fds); }},
    {{"process_max_fds", MetricType::kGauge, "Maximum number of open file descriptors.", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.max_fds); }},
    {{"process_threads", MetricType::kGauge, "Number of OS threads in the process.", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.threads); }},
    {{"process_start_time_seconds", MetricType::kGauge,
      "Start time of the process since unix epoch in seconds.", "seconds"},
     [](const ProcessStats& s) { return s.start_time_seconds; }},
    {{"process_voluntary_context_switches", MetricType::kCounter,
      "Context switches of the main thread made because it waited (I/O, a lock, a sleep).", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.voluntary_context_switches); }},
    {{"process_involuntary_context_switches", MetricType::kCounter,
      "Context switches of the main thread forced by the scheduler while it could run.", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.involuntary_context_switches); }},
    {{"process_minor_page_faults", MetricType::kCounter,
      "Page faults served without reading from disk.", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.minor_page_faults); }},
    {{"process_major_page_faults", MetricType::kCounter,
      "Page faults that required reading from disk.", ""},
     [](const ProcessStats& s) { return static_cast<double>(s.major_page_faults); }},
};

}  // namespace

void EncodeProcessMetrics(expose::Encoder& enc, std::span<const WorkerProcessStats> workers,
                          std::string_view label_name,
                          const std::function<bool(const expose::FamilyInfo&)>& selected,
                          std::string_view heap_label_name) {
  if (workers.empty()) return;
  for (const FamilySpec& family : kFamilies) {
    if (selected && !selected(family.info)) continue;
    enc.BeginFamily(family.info);
    for (const WorkerProcessStats& w : workers) {
      const expose::Label labels[] = {{label_name, w.worker_label_value},
                                      {heap_label_name, w.heap_label_value}};
      const std::span<const expose::Label> used(labels, heap_label_name.empty() ? 1 : 2);
      const double v = family.value(w.stats);
      if (family.info.type == MetricType::kCounter) {
        enc.Counter(used, v, /*created=*/std::nullopt, /*exemplar=*/nullptr);
      } else {
        enc.Gauge(used, v);
      }
    }
    enc.EndFamily();
  }
}

std::span<const expose::FamilyInfo> ProcessFamilies() {
  static const auto* infos = [] {
    auto* v = new std::vector<expose::FamilyInfo>;
    for (const FamilySpec& f : kFamilies) v->push_back(f.info);
    return v;
  }();
  return *infos;
}

}  // namespace shmetrics::process
