// Summary observations (count and sum: two atomic read-modify-writes) against the bare
// hardware (BM_BareAtomicAdd in counter_benchmark.cc) and the same two operations by hand.
#include <atomic>
#include <bit>
#include <cstdint>

#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shmetrics/summary.h"

namespace shmetrics::bench {
namespace {

void BM_BareSummaryObserve(benchmark::State& state) {
  struct alignas(64) Cells {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum{0};
  };
  auto cells = std::make_unique<Cells>();
  size_t i = 0;
  for (auto _ : state) {
    const double v = kObservedValues[i++ & 15];
    cells->count.fetch_add(1, std::memory_order_relaxed);
    BareAddDouble(cells->sum, v);
  }
  benchmark::DoNotOptimize(cells->sum.load(std::memory_order_relaxed));
}
BENCHMARK(BM_BareSummaryObserve);

void BM_SummaryObserve(benchmark::State& state) {
  Fixture fx;
  Summary s = fx.registry->AddSummary("response_size", "Sizes", {}, {.unit = "bytes"}).Labels();
  size_t i = 0;
  for (auto _ : state) s.Observe(kObservedValues[i++ & 15]);
  benchmark::DoNotOptimize(s.Count());
}
BENCHMARK(BM_SummaryObserve);

}  // namespace
}  // namespace shmetrics::bench
