// A test fixture that owns a fresh named heap and a registry on it, and removes the heap after
// the test.
#ifndef SHMETRICS_TESTS_UTIL_HEAP_FIXTURE_H_
#define SHMETRICS_TESTS_UTIL_HEAP_FIXTURE_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "collect/collector.h"
#include "expose/encoder.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics::testing {

// Flips `flips` random bytes of a copy of a heap's bytes, past its 4096-byte header and below
// `used`, drawing from the caller's seeded generator so the damage is the same in every run.
inline void DamageRecords(std::string* copy, uint64_t used, uint64_t* rng, int flips = 6) {
  for (int k = 0; k < flips; ++k) {
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    (*copy)[4096 + (*rng >> 33) % (used - 4096)] ^= static_cast<char>(1 + (*rng >> 20) % 255);
  }
}

class HeapTest : public ::testing::Test {
 protected:
  // A default heap; fixtures that need other options override SetUp and call CreateHeap.
  void SetUp() override { CreateHeap("meter"); }

  // Creates heap_ (named "test-<tag>-<pid>-<n>") and registry_; the environment's common labels
  // are ignored.
  // A test may make several heaps one after the other: each replaces (and removes) the last,
  // so none is left in /dev/shm, where a later process given the same pid would collide with it.
  void CreateHeap(const char* tag, const Heap::CreateOptions& options = {}) {
    RemoveHeap();
    unsetenv("SHMETRICS_COMMON_LABELS");
    name_ = UniqueHeapName(tag);
    heap_ = std::make_unique<Heap>(Heap::Create(name_, options));
    registry_ = std::make_unique<Registry>(*heap_);
  }
  void TearDown() override { RemoveHeap(); }
  void RemoveHeap() {
    registry_.reset();
    heap_.reset();
    if (name_.empty()) return;
    try {
      Heap::Remove(name_);
    } catch (const Error&) {
    }
    name_.clear();
  }

  // Runs f and returns the message of the Error it throws (and its code, when asked), or ""
  // when it does not throw.
  template <typename F>
  static std::string ErrorOf(F f, ErrorCode* code = nullptr) {
    try {
      f();
    } catch (const Error& e) {
      if (code != nullptr) *code = e.code();
      return e.what();
    }
    return "";
  }

  // The families of the heap in OpenMetrics, without self and process metrics.
  static std::string Scrape(const Heap& heap) {
    std::string out;
    auto enc = expose::MakeEncoder(expose::Format::kOpenMetrics, &out);
    const absl::Status s = collect::Collect(shm::HeapAccess::segment(heap), *enc,
                                            {.self_metrics = false, .process_metrics = false});
    EXPECT_TRUE(s.ok()) << s;
    enc->Finish();
    return out;
  }
  std::string Scrape() { return Scrape(*heap_); }

  std::string name_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
};

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_UTIL_HEAP_FIXTURE_H_
