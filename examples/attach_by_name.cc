// attach_by_name: a separate program — a cron job, a sidecar, a one-off script — that opens a
// running service's heap by name and updates meters there. It is not forked from the service's
// master and shares nothing with it but the heap's name; the master's embedded exposer (or
// `shmetrics serve --heap NAME`) serves what it writes along with everything else in the heap.
//
//   attach_by_name --heap NAME [--jobs N] [--kind KIND]
//
// Records one run of a batch job: adds N (default 1) to batch_jobs_total{kind="KIND"} (default
// kind "report") and sets batch_last_success_timestamp_seconds to now. Registering a family that
// already exists in the heap, from any process, returns it, so every run adds to the same series.
// Prints the counter's new value. Exits 1 with a message when the heap does not exist.
//
// Example, next to a running `prefork_server --heap shop`:
//   attach_by_name --heap shop --jobs 3 --kind invoices
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shmetrics/error.h"
#include "shmetrics/registry.h"

namespace {

int Usage() {
  std::fprintf(stderr, "usage: attach_by_name --heap NAME [--jobs N] [--kind KIND]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name, kind = "report";
  long jobs = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    }
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (a == "--heap") {
      name = v;
    } else if (a == "--kind") {
      kind = v;
    } else if (a == "--jobs") {
      char* end = nullptr;
      jobs = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || jobs < 0 || jobs > 1000000000) return Usage();
    } else {
      return Usage();
    }
  }
  if (name.empty()) return Usage();
  try {
    // Opens the existing heap (it never creates one: a typo must not start an unseen heap).
    shmetrics::Heap heap = shmetrics::Heap::Open(name);
    shmetrics::Registry registry(heap);
    shmetrics::Counter done =
        registry.AddCounter("batch_jobs", "Jobs processed by batch runs", {"kind"}).Labels(kind);
    done.Inc(jobs);
    registry
        .AddGauge("batch_last_success_timestamp", "When a batch run last succeeded", {},
                  {.unit = "seconds"})
        .Labels()
        .SetToCurrentTime();
    std::printf("batch_jobs_total{kind=\"%s\"} %.0f\n", kind.c_str(), done.Value());
    return 0;
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "attach_by_name: %s\n", e.what());
    return 1;
  }
}
