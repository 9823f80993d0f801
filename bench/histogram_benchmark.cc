// Histogram observations against the bare hardware: one relaxed fetch_add.
//
// BM_BareHistogramObserve is the same work written by hand on a plain array (a linear scan of
// 12 bounds, an add to the bucket, a compare-exchange add to the sum): the floor any shared
// histogram of this design can reach.
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <vector>

#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shmetrics/histogram.h"

namespace shmetrics::bench {
namespace {

void BM_BareHistogramObserve(benchmark::State& state) {
  const std::vector<double> bounds = TwelveBuckets();
  struct alignas(64) Cells {
    std::atomic<uint64_t> sum{0};
    std::atomic<uint64_t> bucket[13] = {};
  };
  auto cells = std::make_unique<Cells>();
  size_t i = 0;
  for (auto _ : state) {
    const double v = kObservedValues[i++ & 15];
    size_t b = 0;
    while (b < bounds.size() && v > bounds[b]) ++b;
    cells->bucket[b].fetch_add(1, std::memory_order_relaxed);
    BareAddDouble(cells->sum, v);
  }
  benchmark::DoNotOptimize(cells->sum.load(std::memory_order_relaxed));
}
BENCHMARK(BM_BareHistogramObserve);

void BM_HistogramObserve(benchmark::State& state) {
  Fixture fx;
  Histogram h =
      fx.registry->AddHistogram("latency_seconds", "Latency", {}, {.buckets = TwelveBuckets()})
          .Labels();
  size_t i = 0;
  for (auto _ : state) h.Observe(kObservedValues[i++ & 15]);
  benchmark::DoNotOptimize(h.Count());
}
BENCHMARK(BM_HistogramObserve);

}  // namespace
}  // namespace shmetrics::bench
