// Exposition of per-process statistics under Prometheus's standard process_* metric names.
//
// The collector reads ProcessStats for the master and each live worker (see proc_stats.h) and
// hands them here, one entry per process; every series is labelled with the entry's worker
// label (`worker_id="0"`, ..., `worker_id="master"`), so one scrape of the master shows every
// process of the server.
//
// Families, in the order emitted (counters are named without `_total`, which encoders add):
//   process_cpu_seconds                   counter  user + system CPU time   unit seconds
//   process_cpu_user_seconds              counter                           unit seconds
//   process_cpu_system_seconds            counter                           unit seconds
//   process_resident_memory_bytes         gauge                             unit bytes
//   process_virtual_memory_bytes          gauge                             unit bytes
//   process_open_fds                      gauge
//   process_max_fds                       gauge    UINT64_MAX when unlimited
//   process_threads                       gauge
//   process_start_time_seconds            gauge    since the epoch          unit seconds
//   process_voluntary_context_switches    counter  of the main thread
//   process_involuntary_context_switches  counter  of the main thread
//   process_minor_page_faults             counter
//   process_major_page_faults             counter
//
// Thread safety: EncodeProcessMetrics keeps no state; it is as thread-safe as the Encoder.
//
// Example:
//   WorkerProcessStats procs[] = {{"0", *ReadProcessStats(worker0)},
//                                 {"master", *ReadProcessStats(getpid())}};
//   EncodeProcessMetrics(*encoder, procs);
#ifndef SHMETRICS_SRC_PROCESS_PROCESS_METRICS_H_
#define SHMETRICS_SRC_PROCESS_PROCESS_METRICS_H_

#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "expose/encoder.h"
#include "process/proc_stats.h"

namespace shmetrics::process {

// One process to expose. worker_label_value is not copied: it must outlive the call.
struct WorkerProcessStats {
  std::string_view worker_label_value;
  ProcessStats stats;
  // With a heap_label_name, the value of that label: the heap the process belongs to.
  std::string_view heap_label_value = {};
};

// EncodeProcessMetrics()
//
// Emits the families above through enc, each holding one series per entry of workers, in the
// order given, labelled {label_name="<worker_label_value>"}. Emits nothing at all when workers
// is empty, so no metadata-only families appear. Counters carry no created timestamp and no
// exemplar. Does not call enc.Finish(): the caller's exposition goes on after these families.
//
// With `selected`, only the families it accepts are emitted (a name[] filter).
// REQUIRES: label_name is a valid label name; the worker label values are distinct, and no
// other family of the exposition uses these names (the registry refuses them: see
// ProcessFamilies).
// With a heap_label_name, each series also carries {heap_label_name="<heap_label_value>"}, so
// processes of several heaps served together never make one series twice.
void EncodeProcessMetrics(expose::Encoder& enc, std::span<const WorkerProcessStats> workers,
                          std::string_view label_name = "worker_id",
                          const std::function<bool(const expose::FamilyInfo&)>& selected = {},
                          std::string_view heap_label_name = {});

// The families above, in the order emitted: the list the registry checks names against.
std::span<const expose::FamilyInfo> ProcessFamilies();

}  // namespace shmetrics::process

#endif  // SHMETRICS_SRC_PROCESS_PROCESS_METRICS_H_
