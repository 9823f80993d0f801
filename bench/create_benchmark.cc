// Creating series: registering labelled children, and the heap memory each one costs.
//
// BM_CreateSeries/N registers N children of one counter family in a fresh heap (two short labels,
// each lookup a miss that takes the heap lock, allocates the record and its index entry).
// BM_BareHashMapInsert/N is the in-process floor: the same keys inserted into a flat hash map
// of heap-allocated atomics.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/counter.h"

namespace shmetrics::bench {
namespace {

// Label values of child i: method m<i%8>, path /p<i/8> — two short labels.
struct Keys {
  explicit Keys(int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      methods.push_back(absl::StrCat("m", i % 8));
      paths.push_back(absl::StrCat("/p", i / 8));
    }
  }
  std::vector<std::string> methods, paths;
};

void BM_BareHashMapInsert(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Keys keys(n);
  for (auto _ : state) {
    absl::flat_hash_map<std::string, std::unique_ptr<std::atomic<uint64_t>>> map;
    for (int64_t i = 0; i < n; ++i) {
      map.emplace(absl::StrCat(keys.methods[i], "\xff", keys.paths[i]),
                  std::make_unique<std::atomic<uint64_t>>(0));
    }
    benchmark::DoNotOptimize(map.size());
    state.PauseTiming();
    map = {};
    state.ResumeTiming();
  }
  state.counters["series_per_second"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BareHashMapInsert)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_CreateSeries(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Keys keys(n);
  for (auto _ : state) {
    state.PauseTiming();
    auto fx = std::make_unique<Fixture>();
    auto& family = fx->registry->AddCounter("http_requests", "Requests", {"method", "path"});
    state.ResumeTiming();
    for (int64_t i = 0; i < n; ++i) family.Labels(keys.methods[i], keys.paths[i]).Inc();
    state.PauseTiming();
    if (family.size() != static_cast<size_t>(n)) state.SkipWithError("children missing");
    fx.reset();
    state.ResumeTiming();
  }
  state.counters["series_per_second"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CreateSeries)->Arg(100000)->Unit(benchmark::kMillisecond);

// Heap bytes held per counter series with two short labels (live blocks only: the series
// record, its index entry and its share of the index's slot array), beside the label text.
void BM_HeapBytesPerSeries(benchmark::State& state) {
  constexpr int64_t kSeries = 100000;
  const Keys keys(kSeries);
  double per_series = 0, label_text = 0;
  for (auto _ : state) {
    state.PauseTiming();
    Fixture fx;
    auto& family = fx.registry->AddCounter("http_requests", "Requests", {"method", "path"});
    const auto before = shm::HeapAccess::segment(fx.heap).ComputeUsage();
    state.ResumeTiming();
    size_t text = 0;
    for (int64_t i = 0; i < kSeries; ++i) {
      family.Labels(keys.methods[i], keys.paths[i]).Inc();
      text += keys.methods[i].size() + keys.paths[i].size();
    }
    state.PauseTiming();
    const auto after = shm::HeapAccess::segment(fx.heap).ComputeUsage();
    if (!before.ok() || !after.ok()) {
      state.SkipWithError("cannot compute heap usage");
      break;
    }
    const auto live = [](const shm::Segment::Usage& u) {
      return static_cast<double>(u.used_bytes - u.free_bytes);
    };
    per_series = (live(*after) - live(*before)) / kSeries;
    label_text = static_cast<double>(text) / kSeries;
    state.ResumeTiming();
  }
  state.counters["heap_bytes_per_series"] = per_series;
  state.counters["label_text_bytes"] = label_text;
  state.counters["overhead_bytes"] = per_series - label_text;
}
BENCHMARK(BM_HeapBytesPerSeries)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shmetrics::bench
