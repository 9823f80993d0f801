// Looking up an existing child by its label values, against a process-local hash map lookup of
// the same two values (the cost an in-process client pays for the same call).
//
// BM_LabelsLookup is the promise "a repeated Labels(...) costs a hash probe": the values are
// encoded into a key, hashed and probed in the family's table in the shared heap, and a
// Counter handle is returned. The family holds 1,000 children so the probe is realistic.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "shmetrics/counter.h"

namespace shmetrics::bench {
namespace {

// An in-process client's lookup: both values joined into one key, probed in a flat hash map.
void BM_BareHashMapLookup(benchmark::State& state) {
  absl::flat_hash_map<std::string, uint64_t> map;
  const auto ids = Ids(kLookupFamilySize);
  for (size_t i = 0; i < kLookupFamilySize; ++i) map[absl::StrCat("GET", "\xff", ids[i])] = i;
  const std::string_view method = "GET", code = "200";
  for (auto _ : state) {
    char key[64];
    std::memcpy(key, method.data(), method.size());
    key[method.size()] = '\xff';
    std::memcpy(key + method.size() + 1, code.data(), code.size());
    auto it = map.find(absl::string_view(key, method.size() + 1 + code.size()));
    benchmark::DoNotOptimize(it);
  }
}
BENCHMARK(BM_BareHashMapLookup);

void BM_LabelsLookup(benchmark::State& state) {
  Fixture fx;
  const CounterFamily& family = FamilyOfThousand(fx);
  const std::string method = "GET", code = "200";
  for (auto _ : state) {
    Counter c = family.Labels(method, code);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_LabelsLookup);

// The lookup and one increment: what `family.Labels("GET", "200").Inc()` costs per call.
void BM_LabelsLookupInc(benchmark::State& state) {
  Fixture fx;
  const CounterFamily& family = FamilyOfThousand(fx);
  const std::string method = "GET", code = "200";
  for (auto _ : state) family.Labels(method, code).Inc();
}
BENCHMARK(BM_LabelsLookupInc);

// Name/value pairs in any order: a sort into declared order before the same probe.
void BM_LabelsLookupPairs(benchmark::State& state) {
  Fixture fx;
  const CounterFamily& family = FamilyOfThousand(fx);
  for (auto _ : state) {
    Counter c = family.Labels({{"code", "200"}, {"method", "GET"}});
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_LabelsLookupPairs);

}  // namespace
}  // namespace shmetrics::bench
