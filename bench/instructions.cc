// shmetrics_instructions: the hot paths in loops of their own, for counting instructions.
//
// Usage:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=Loop<Op>
//            shmetrics_instructions <Op> <iterations>
// where <Op> is BareAtomicAdd, CounterInc, HistogramObserve, SummaryObserve, LabelsLookup,
// BareHashMapLookup or CreateSeries (n children of a fresh family).
// Callgrind then reports ("Collected :") the instructions executed inside that loop only; divided
// by the iterations it is the instruction count of one call (plus the loop's own two or three
// instructions, which BareAtomicAdd shows). Unlike time, this count does not change with load,
// so it is the number to compare on a busy machine. scripts/bench runs it.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bench_util.h"
#include "shmetrics/counter.h"
#include "shmetrics/histogram.h"
#include "shmetrics/summary.h"

using shmetrics::Counter;
using shmetrics::CounterFamily;
using shmetrics::Histogram;
using shmetrics::Summary;

// extern "C" so the names callgrind matches are exactly these.
extern "C" {
[[gnu::noinline]] void LoopBareAtomicAdd(std::atomic<uint64_t>* a, long n) {
  for (long i = 0; i < n; ++i) a->fetch_add(1, std::memory_order_relaxed);
}
[[gnu::noinline]] void LoopCounterInc(Counter* c, long n) {
  Counter local = *c;
  for (long i = 0; i < n; ++i) local.Inc();
}
[[gnu::noinline]] void LoopHistogramObserve(Histogram* h, long n) {
  Histogram local = *h;
  for (long i = 0; i < n; ++i) local.Observe(shmetrics::bench::kObservedValues[i & 15]);
}
[[gnu::noinline]] void LoopSummaryObserve(Summary* s, long n) {
  Summary local = *s;
  for (long i = 0; i < n; ++i) local.Observe(shmetrics::bench::kObservedValues[i & 15]);
}
// The baseline of LabelsLookup: an in-process client's lookup of the same two values (as
// BM_BareHashMapLookup).
[[gnu::noinline]] void LoopBareHashMapLookup(const absl::flat_hash_map<std::string, uint64_t>* m,
                                             long n) {
  const std::string_view method = "GET", code = "200";
  for (long i = 0; i < n; ++i) {
    char key[64];
    std::memcpy(key, method.data(), method.size());
    key[method.size()] = '\xff';
    std::memcpy(key + method.size() + 1, code.data(), code.size());
    auto it = m->find(absl::string_view(key, method.size() + 1 + code.size()));
    asm volatile("" : : "r"(&it) : "memory");
  }
}
// Creation of n children (two short labels, as BM_CreateSeries): each a miss that takes the heap
// lock and allocates a record and an index entry.
[[gnu::noinline]] void LoopCreateSeries(const CounterFamily* f, const std::vector<std::string>* m,
                                        const std::vector<std::string>* p, long n) {
  for (long i = 0; i < n; ++i) f->Labels((*m)[i], (*p)[i]).Inc();
}
[[gnu::noinline]] void LoopLabelsLookup(const CounterFamily* f, long n) {
  const std::string_view method = "GET", code = "200";
  for (long i = 0; i < n; ++i) {
    Counter c = f->Labels(method, code);
    asm volatile("" : : "r"(&c) : "memory");
  }
}
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: shmetrics_instructions <Op> <iterations>\n");
    return 2;
  }
  const std::string_view op = argv[1];
  const long n = std::atol(argv[2]);
  shmetrics::bench::Fixture fx;
  auto& r = *fx.registry;
  if (op == "BareAtomicAdd") {
    auto a = shmetrics::bench::NewPaddedAtomic();
    LoopBareAtomicAdd(&a->v, n);
  } else if (op == "CounterInc") {
    Counter c = r.AddCounter("requests", "Requests").Labels();
    LoopCounterInc(&c, n);
  } else if (op == "HistogramObserve") {
    Histogram h = r.AddHistogram("latency_seconds", "Latency", {},
                                 {.buckets = shmetrics::bench::TwelveBuckets()})
                      .Labels();
    LoopHistogramObserve(&h, n);
  } else if (op == "SummaryObserve") {
    Summary s = r.AddSummary("sizes", "Sizes").Labels();
    LoopSummaryObserve(&s, n);
  } else if (op == "BareHashMapLookup") {
    absl::flat_hash_map<std::string, uint64_t> map;
    const auto ids = shmetrics::bench::Ids(shmetrics::bench::kLookupFamilySize);
    for (size_t i = 0; i < ids.size(); ++i) map[absl::StrCat("GET", "\xff", ids[i])] = i;
    LoopBareHashMapLookup(&map, n);
  } else if (op == "CreateSeries") {
    std::vector<std::string> methods, paths;
    for (long i = 0; i < n; ++i) {
      methods.push_back(absl::StrCat("m", i % 8));
      paths.push_back(absl::StrCat("/p", i / 8));
    }
    auto& family = r.AddCounter("http_requests", "Requests", {"method", "path"});
    LoopCreateSeries(&family, &methods, &paths, n);
  } else if (op == "LabelsLookup") {
    LoopLabelsLookup(&shmetrics::bench::FamilyOfThousand(fx), n);
  } else {
    std::fprintf(stderr, "unknown op %s\n", argv[1]);
    return 2;
  }
  return 0;
}
