// A test fixture that owns a fresh named heap and a registry on it, and removes the heap after
// the test.
#ifndef SHMETRICS_TESTS_UTIL_HEAP_FIXTURE_H_
#define SHMETRICS_TESTS_UTIL_HEAP_FIXTURE_H_

#include <stdlib.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics::testing {

class HeapTest : public ::testing::Test {
 protected:
  // Creates heap_ (named "test-<tag>-<pid>-<n>") and registry_; the environment's common labels
  // are ignored.
  void CreateHeap(const char* tag, const Heap::CreateOptions& options = {}) {
    unsetenv("SHMETRICS_COMMON_LABELS");
    name_ = UniqueHeapName(tag);
    heap_ = std::make_unique<Heap>(Heap::Create(name_, options));
    registry_ = std::make_unique<Registry>(*heap_);
  }
  void TearDown() override {
    registry_.reset();
    heap_.reset();
    if (name_.empty()) return;
    try {
      Heap::Remove(name_);
    } catch (const Error&) {
    }
  }

  std::string name_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
};

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_UTIL_HEAP_FIXTURE_H_
