// Helpers shared by the benchmarks: throwaway heaps and the workloads several files measure.
//
// Every heap a benchmark makes is named after the process id and a sequence number and is
// removed from /dev/shm as soon as it is created, so nothing is left behind when a benchmark is
// interrupted; the mapping lives as long as the Heap handle.
#ifndef SHMETRICS_BENCH_BENCH_UTIL_H_
#define SHMETRICS_BENCH_BENCH_UTIL_H_

#include <unistd.h>

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
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

}  // namespace shmetrics::bench

#endif  // SHMETRICS_BENCH_BENCH_UTIL_H_
