// Hot paths of the Spectator meters and of quantile summaries, on a heap in /dev/shm. Compare
// with BM_BareAtomicAdd (a relaxed fetch_add on one uncontended 64-bit word), defined beside the
// other meter benchmarks.
//
//   BM_TimerRecord                 Timer::Record: count, total, sum of squares, max
//   BM_DistributionSummaryRecord   DistributionSummary::Record
//   BM_PercentileTimerRecord       PercentileTimer::Record: Spectator bucket index + two adds
//   BM_MaxGaugeSet                 MaxGauge::Set, mostly below the max (one load)
//   BM_SummaryObserve              count-only Summary::Observe (two adds), for reference
//   BM_QuantileSummaryObserve      Summary::Observe with quantiles: clock, bucket, tagged CAS
//   BM_QuantileSummaryCollect      Summary::Quantile: one quantile of a default-sized series
//                                  (reads its 10010 cells), what a scrape pays per quantile
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "shmetrics/registry.h"

namespace shmetrics {
namespace {

// One heap per benchmark run, removed at the end.
class BenchHeap {
 public:
  BenchHeap()
      : name_("bench-spectator-" + std::to_string(getpid())),
        heap_(Heap::Create(name_)),
        registry_(heap_) {}
  ~BenchHeap() { Heap::Remove(name_); }
  Registry& registry() { return registry_; }

 private:
  std::string name_;
  Heap heap_;
  Registry registry_;
};

// Pseudo-random values, precomputed so the generator stays out of the measurement.
std::vector<double> Values(size_t n) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> d(std::log(1e-3), 1.5);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

void BM_TimerRecord(benchmark::State& state) {
  BenchHeap h;
  Timer t = h.registry().AddTimer("bench_timer", "T").Labels();
  const auto v = Values(1024);
  size_t i = 0;
  for (auto _ : state) {
    t.Record(std::chrono::nanoseconds(static_cast<int64_t>(v[i++ & 1023] * 1e9)));
  }
  benchmark::DoNotOptimize(t.Count());
}
BENCHMARK(BM_TimerRecord);

void BM_DistributionSummaryRecord(benchmark::State& state) {
  BenchHeap h;
  DistributionSummary d = h.registry().AddDistributionSummary("bench_ds", "D").Labels();
  const auto v = Values(1024);
  size_t i = 0;
  for (auto _ : state) d.Record(v[i++ & 1023]);
  benchmark::DoNotOptimize(d.Count());
}
BENCHMARK(BM_DistributionSummaryRecord);

void BM_PercentileTimerRecord(benchmark::State& state) {
  BenchHeap h;
  PercentileTimer t = h.registry().AddPercentileTimer("bench_pct", "P").Labels();
  const auto v = Values(1024);
  size_t i = 0;
  for (auto _ : state) {
    t.Record(std::chrono::nanoseconds(static_cast<int64_t>(v[i++ & 1023] * 1e9)));
  }
  benchmark::DoNotOptimize(t.Count());
}
BENCHMARK(BM_PercentileTimerRecord);

void BM_MaxGaugeSet(benchmark::State& state) {
  BenchHeap h;
  MaxGauge g = h.registry().AddMaxGauge("bench_max", "M").Labels();
  g.Set(1e9);
  const auto v = Values(1024);
  size_t i = 0;
  for (auto _ : state) g.Set(v[i++ & 1023]);
  benchmark::DoNotOptimize(g.Value());
}
BENCHMARK(BM_MaxGaugeSet);

void BM_SummaryObserve(benchmark::State& state) {
  BenchHeap h;
  Summary s = h.registry().AddSummary("bench_summary", "S").Labels();
  const auto v = Values(1024);
  size_t i = 0;
  for (auto _ : state) s.Observe(v[i++ & 1023]);
  benchmark::DoNotOptimize(s.Count());
}
BENCHMARK(BM_SummaryObserve);

void BM_QuantileSummaryObserve(benchmark::State& state) {
  BenchHeap h;
  Summary s =
      h.registry().AddSummary("bench_quantiles", "Q", {}, {.quantiles = {0.5, 0.9, 0.99}}).Labels();
  const auto v = Values(1024);
  size_t i = 0;
  for (auto _ : state) s.Observe(v[i++ & 1023]);
  benchmark::DoNotOptimize(s.Count());
}
BENCHMARK(BM_QuantileSummaryObserve);

void BM_QuantileSummaryCollect(benchmark::State& state) {
  BenchHeap h;
  Summary s =
      h.registry().AddSummary("bench_quantiles", "Q", {}, {.quantiles = {0.5, 0.9, 0.99}}).Labels();
  for (double x : Values(100000)) s.Observe(x);
  for (auto _ : state) benchmark::DoNotOptimize(s.Quantile(0.99));
}
BENCHMARK(BM_QuantileSummaryCollect);

}  // namespace
}  // namespace shmetrics
