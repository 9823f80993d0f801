// Counter increments against a bare relaxed fetch_add on a heap-allocated 64-bit atomic.
//
// BM_CounterInc is the hot path the library promises costs what the hardware costs: one
// `lock xadd` in the shared heap. The contended pair runs two threads on one line, library and
// bare side by side.
#include <atomic>
#include <cstdint>

#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shmetrics/counter.h"

namespace shmetrics::bench {
namespace {

void BM_BareAtomicAdd(benchmark::State& state) {
  auto a = NewPaddedAtomic();
  for (auto _ : state) a->v.fetch_add(1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(a->v.load(std::memory_order_relaxed));
}
BENCHMARK(BM_BareAtomicAdd);

void BM_CounterInc(benchmark::State& state) {
  Fixture fx;
  Counter c = fx.registry->AddCounter("requests", "Requests").Labels();
  for (auto _ : state) c.Inc();
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterInc);

// A fractional step: the compare-exchange loop on the counter's double cell.
void BM_CounterIncDouble(benchmark::State& state) {
  Fixture fx;
  Counter c = fx.registry->AddCounter("bytes", "Bytes").Labels();
  for (auto _ : state) c.Inc(0.5);
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterIncDouble);

// A held child handle of a labelled family: must cost what an unlabelled counter costs.
void BM_CounterIncLabelledHandle(benchmark::State& state) {
  Fixture fx;
  Counter c =
      fx.registry->AddCounter("http_requests", "Requests", {"method", "code"}).Labels("GET", "200");
  for (auto _ : state) c.Inc();
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterIncLabelledHandle);

// A striped counter in a process without a worker id writes the shared last stripe: the cost of
// the stripe choice on the hot path.
void BM_CounterIncStriped(benchmark::State& state) {
  Fixture fx;
  Counter c = fx.registry->AddCounter("hot", "Hot", {}, {.striped = true}).Labels();
  for (auto _ : state) c.Inc();
  benchmark::DoNotOptimize(c.Value());
}
BENCHMARK(BM_CounterIncStriped);

// Two threads on one cache line. Threads of one process share a stripe, so striping does not
// apply here; shmetrics_mpbench shows it across processes.
PaddedAtomic* g_contended_atomic = nullptr;
void BM_BareAtomicAddContended(benchmark::State& state) {
  static std::unique_ptr<PaddedAtomic> a;
  if (state.thread_index() == 0) {
    a = NewPaddedAtomic();
    g_contended_atomic = a.get();
  }
  // The framework starts the timed loop of all threads together, after this set-up.
  for (auto _ : state) g_contended_atomic->v.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_BareAtomicAddContended)->Threads(2)->UseRealTime();

Counter* g_contended_counter = nullptr;
void BM_CounterIncContended(benchmark::State& state) {
  static std::unique_ptr<Fixture> fx;
  static std::unique_ptr<Counter> c;
  if (state.thread_index() == 0) {
    fx = std::make_unique<Fixture>();
    c = std::make_unique<Counter>(fx->registry->AddCounter("contended", "Contended").Labels());
    g_contended_counter = c.get();
  }
  for (auto _ : state) g_contended_counter->Inc();
}
BENCHMARK(BM_CounterIncContended)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace shmetrics::bench
