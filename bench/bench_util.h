// Helpers shared by the benchmarks: throwaway heaps and the workloads several files measure.
//
// Every heap a benchmark makes is named after the process id and a sequence number and is
// removed from /dev/shm as soon as it is created, so nothing is left behind when a benchmark is
// interrupted; the mapping lives as long as the Heap handle.
#ifndef SHMETRICS_BENCH_BENCH_UTIL_H_
#define SHMETRICS_BENCH_BENCH_UTIL_H_

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"

namespace shmetrics::bench {

// A fresh heap, already unlinked from /dev/shm.
inline Heap NewHeap(uint64_t max_size = uint64_t{1} << 30, uint32_t max_workers = 64) {
  static std::atomic<int> seq{0};
  const std::string name = absl::StrCat("bench_", getpid(), "_", seq.fetch_add(1));
  Heap heap = Heap::Create(name, {.max_size = max_size, .max_workers = max_workers});
  Heap::Remove(name);
  return heap;
}

// A heap and a registry over it; families may hold any number of children.
struct Fixture {
  explicit Fixture(uint64_t max_size = uint64_t{1} << 30, uint32_t max_workers = 64)
      : heap(NewHeap(max_size, max_workers)),
        registry(std::make_unique<Registry>(
            heap, RegistryOptions{.read_environment = false, .max_children = 1u << 24})) {}

  Heap heap;
  std::unique_ptr<Registry> registry;
};

// The bare-hardware baseline: a 64-bit atomic alone on its cache line in the process heap.
struct alignas(64) PaddedAtomic {
  std::atomic<uint64_t> v{0};
};

inline std::unique_ptr<PaddedAtomic> NewPaddedAtomic() { return std::make_unique<PaddedAtomic>(); }

// Adds d to the double whose bits a holds: the compare-exchange loop a double cell is made of.
inline void BareAddDouble(std::atomic<uint64_t>& a, double d) {
  uint64_t old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, std::bit_cast<uint64_t>(std::bit_cast<double>(old) + d),
                                  std::memory_order_relaxed)) {
  }
}

// 12 finite histogram buckets, 1 ms to about 2 s.
inline std::vector<double> TwelveBuckets() { return ExponentialBuckets(0.001, 2, 12); }

// Observed values cycle through every bucket, so the bucket scan varies as it does in practice.
inline constexpr std::array<double, 16> kObservedValues = {
    0.0005, 0.0015, 0.003, 0.006, 0.012, 0.025, 0.05, 0.1,
    0.2,    0.4,    0.8,   1.6,   3.2,   0.004, 0.03, 0.0002};

// "0", "1", ... "n-1": label values built before a measurement starts.
inline std::vector<std::string> Ids(size_t n) {
  std::vector<std::string> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) ids.push_back(std::to_string(i));
  return ids;
}

// The family label lookups are measured in: http_requests{method, code} with
// kLookupFamilySize children, ("GET", "0") to ("GET", "999"), so a probe meets a realistic table.
inline constexpr size_t kLookupFamilySize = 1000;
inline const CounterFamily& FamilyOfThousand(Fixture& fx) {
  auto& family = fx.registry->AddCounter("http_requests", "Requests", {"method", "code"});
  for (const std::string& id : Ids(kLookupFamilySize)) family.Labels("GET", id).Inc();
  return family;
}

// One heap kept across the repetitions of a benchmark; building 1,000,000 series takes longer
// than scraping them, so it is built once per (layout, N) and replaced by the next layout.
// One cache for the whole program: benchmarks of different files share the heap they ask for.
struct Cached {
  std::string key;
  std::unique_ptr<Fixture> fx;
};
inline Fixture& CachedHeap(std::string_view layout, int64_t n, void (*build)(Fixture&, int64_t)) {
  static Cached cache;
  const std::string key = absl::StrCat(absl::string_view(layout.data(), layout.size()), "/", n);
  if (cache.key != key) {
    cache.fx.reset();  // free the previous heap before building the next
    const uint64_t max_size = std::max<uint64_t>(uint64_t{1} << 30, uint64_t(n) * 2048);
    cache.fx = std::make_unique<Fixture>(max_size);
    build(*cache.fx, n);
    cache.key = key;
  }
  return *cache.fx;
}

inline constexpr int64_t kFamilySize = 10000;  // children per family in the mix
inline constexpr const char* kCodes[] = {"200", "404", "500"};

// The scrape benchmarks' realistic mix of n series: 70% counters with two labels, 20% gauges,
// 10% histograms of 12 buckets, in families of kFamilySize children.
inline void BuildMix(Fixture& fx, int64_t n) {
  Registry& r = *fx.registry;
  const int64_t counters = n * 7 / 10, gauges = n * 2 / 10, histograms = n - counters - gauges;
  const std::vector<double> buckets = TwelveBuckets();
  for (int64_t done = 0, f = 0; done < counters; ++f) {
    auto& fam =
        r.AddCounter(absl::StrCat("app_requests_", f), "Requests handled.", {"handler", "code"});
    for (int64_t i = 0; i < kFamilySize && done < counters; ++i, ++done) {
      fam.Labels(absl::StrCat("/api/v1/item", i / 3), kCodes[i % 3]).Inc(done);
    }
  }
  for (int64_t done = 0, f = 0; done < gauges; ++f) {
    auto& fam = r.AddGauge(absl::StrCat("app_queue_depth_", f), "Items waiting.", {"queue"});
    for (int64_t i = 0; i < kFamilySize && done < gauges; ++i, ++done) {
      fam.Labels(absl::StrCat("q", i)).Set(static_cast<double>(done) * 0.5);
    }
  }
  for (int64_t done = 0, f = 0; done < histograms; ++f) {
    auto& fam = r.AddHistogram(absl::StrCat("app_latency_seconds_", f), "Request latency.",
                               {"handler"}, {.buckets = buckets});
    for (int64_t i = 0; i < kFamilySize && done < histograms; ++i, ++done) {
      Histogram h = fam.Labels(absl::StrCat("/api/v1/item", i));
      for (int k = 0; k < 4; ++k) h.Observe(kObservedValues[(done + k) & 15]);
    }
  }
}

}  // namespace shmetrics::bench

#endif  // SHMETRICS_BENCH_BENCH_UTIL_H_
