// Gauge updates against the bare operations they are made of: a relaxed store (Set) and a
// compare-exchange loop adding a double (Inc).
#include <atomic>
#include <bit>
#include <cstdint>

#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shmetrics/gauge.h"

namespace shmetrics::bench {
namespace {

void BM_BareAtomicStore(benchmark::State& state) {
  auto a = NewPaddedAtomic();
  double v = 0;
  for (auto _ : state) {
    a->v.store(std::bit_cast<uint64_t>(v), std::memory_order_relaxed);
    v += 1;
  }
  benchmark::DoNotOptimize(a->v.load(std::memory_order_relaxed));
}
BENCHMARK(BM_BareAtomicStore);

void BM_GaugeSet(benchmark::State& state) {
  Fixture fx;
  Gauge g = fx.registry->AddGauge("temperature", "Temperature").Labels();
  double v = 0;
  for (auto _ : state) {
    g.Set(v);
    v += 1;
  }
  benchmark::DoNotOptimize(g.Value());
}
BENCHMARK(BM_GaugeSet);

void BM_BareAtomicAddDouble(benchmark::State& state) {
  auto a = NewPaddedAtomic();
  for (auto _ : state) {
    BareAddDouble(a->v, 1);
  }
  benchmark::DoNotOptimize(a->v.load(std::memory_order_relaxed));
}
BENCHMARK(BM_BareAtomicAddDouble);

void BM_GaugeInc(benchmark::State& state) {
  Fixture fx;
  Gauge g = fx.registry->AddGauge("in_flight", "In flight").Labels();
  for (auto _ : state) g.Inc();
  benchmark::DoNotOptimize(g.Value());
}
BENCHMARK(BM_GaugeInc);

// A per-worker gauge (GaugeMode::kMax) also stamps the time and the worker epoch on every Set.
void BM_GaugeSetPerWorker(benchmark::State& state) {
  Fixture fx;
  Gauge g = fx.registry->AddGauge("queue_max", "Queue", {}, {.mode = GaugeMode::kMax}).Labels();
  double v = 0;
  for (auto _ : state) {
    g.Set(v);
    v += 1;
  }
  benchmark::DoNotOptimize(g.Value());
}
BENCHMARK(BM_GaugeSetPerWorker);

}  // namespace
}  // namespace shmetrics::bench
