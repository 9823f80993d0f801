// Native histogram observations against the bare hardware: one relaxed fetch_add
// (BM_BareAtomicAdd in counter_benchmark.cc) and the classic histogram (histogram_benchmark.cc).
//
// Observe is a table lookup for the bucket index (no log, no division), an add to the bucket
// and a compare-exchange add to the sum. Values cycle through 14 octaves (0.2 ms to 3.2 s), as
// latencies do.
#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shmetrics/native_histogram.h"

namespace shmetrics::bench {
namespace {

void BM_NativeHistogramObserve(benchmark::State& state) {
  Fixture fx;
  NativeHistogram h =
      fx.registry->AddNativeHistogram("latency_seconds", "Latency", {}, {.schema = 3}).Labels();
  size_t i = 0;
  for (auto _ : state) h.Observe(kObservedValues[i++ & 15]);
  benchmark::DoNotOptimize(h.Count());
}
BENCHMARK(BM_NativeHistogramObserve);

}  // namespace
}  // namespace shmetrics::bench
