// cpp_peer: a C++ process beside Python workers on one heap, for test_cpp_interop.py.
//
//   cpp_peer --heap NAME --updates N [--attach]   waits for a line on stdin ("go"), then does
//                                                 N rounds of updates and prints "done"
//   cpp_peer --heap NAME --expose                 prints the heap's Prometheus text
//
// One round adds 1 to interop_jobs_total{kind="mail",source="shared"} (declared with the label
// names in the other order than Python's), 2 to the striped interop_hot_total, and observes
// 0.05, 0.5 and 5 in interop_latency_seconds{kind="mail"} (buckets 0.1, 1, 10). --attach
// claims a worker id first; without it the process writes as a non-worker. Exits 1 with a
// message on an error (the heap is missing, a family conflicts).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"

namespace {

int Usage() {
  std::fprintf(stderr, "usage: cpp_peer --heap NAME (--updates N [--attach] | --expose)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name;
  long updates = -1;
  bool attach = false, expose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--attach") {
      attach = true;
    } else if (a == "--expose") {
      expose = true;
    } else if (i + 1 < argc && a == "--heap") {
      name = argv[++i];
    } else if (i + 1 < argc && a == "--updates") {
      char* end = nullptr;
      updates = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || updates < 0) return Usage();
    } else {
      return Usage();
    }
  }
  if (name.empty() || (updates < 0) == !expose) return Usage();
  try {
    shmetrics::Heap heap = shmetrics::Heap::Open(name, {.read_only = expose});
    if (expose) {
      std::fputs(shmetrics::Expose(heap, shmetrics::ExpositionFormat::kPrometheus).c_str(), stdout);
      return 0;
    }
    if (attach) heap.AttachWorker();
    shmetrics::Registry registry(heap);
    shmetrics::Counter jobs =
        registry.AddCounter("interop_jobs", "Jobs done, by either language", {"source", "kind"})
            .Labels("shared", "mail");
    shmetrics::Counter hot =
        registry.AddCounter("interop_hot", "A striped counter", {}, {.striped = true}).Labels();
    shmetrics::Histogram latency =
        registry
            .AddHistogram("interop_latency", "Latency, by either language", {"kind"},
                          {.unit = "seconds", .buckets = {0.1, 1, 10}})
            .Labels("mail");
    std::printf("ready\n");
    std::fflush(stdout);
    std::string go;
    if (!std::getline(std::cin, go) || go != "go") return 1;
    for (long i = 0; i < updates; ++i) {
      jobs.Inc();
      hot.Inc(2);
      latency.Observe(0.05);
      latency.Observe(0.5);
      latency.Observe(5);
    }
    std::printf("done\n");
    return 0;
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "cpp_peer: %s\n", e.what());
    return 1;
  }
}
