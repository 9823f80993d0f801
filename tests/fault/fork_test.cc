// fork() while other threads of the parent register families, create series and update them:
// the child can register and update at once, and exits; no lock of the library is inherited held.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::kSanitized;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;

TEST(ForkTest, ChildRegistersAndUpdatesWhileParentThreadsRegister) {
  if (kSanitized) {
    // The sanitizer runtimes of g++ 12 do not take their allocator's and stack depot's locks
    // around fork(), so a child that allocates while a parent thread was inside malloc can hang
    // in the runtime itself (fixed upstream in 2024). The release and fallback builds run this.
    GTEST_SKIP() << "the sanitizer runtime is not fork-safe with threads allocating";
  }
  unsetenv("SHMETRICS_COMMON_LABELS");
  const std::string name = UniqueHeapName("fork");
  Heap heap = Heap::Create(name, {.max_workers = 16});
  {
    Registry registry(heap);
    auto& forks = registry.AddCounter("forks", "Children that got through", {"parity"});
    constexpr int kForks = 1000;

    // Threads that never stop taking the registry's and the heap's locks.
    std::atomic<bool> stop{false};
    std::vector<std::thread> busy;
    for (int t = 0; t < 3; ++t) {
      busy.emplace_back([&, t] {
        for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
          // Registration: a bounded set of names, so the heap stays small.
          auto& g =
              registry.AddGauge("busy_" + std::to_string(t) + "_" + std::to_string(i % 64), "Busy");
          g.Labels().Set(static_cast<double>(i));
          // New series under the heap lock, and removals that free them again.
          auto& c = registry.AddCounter("busy_series", "Busy", {"id"});
          c.Labels(std::to_string(t) + "-" + std::to_string(i % 256)).Inc();
          if (i % 7 == 0) c.Remove(std::to_string(t) + "-" + std::to_string((i + 128) % 256));
          c.Labels(std::to_string(t) + "-0").IncWithExemplar(1, {{"i", std::to_string(i)}});
          // Bursts with short pauses: busy at every fork, without starving the children of CPU
          // on a small machine (the sanitizer builds are slow enough already).
          if (i % 32 == 31) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
    }

    int failures = 0;
    for (int i = 0; i < kForks && failures < 5; ++i) {
      const pid_t child = ForkChild([&] {
        // A registry of its own and one inherited: both work at once.
        Registry mine(heap);
        mine.AddCounter("forks", "Children that got through", {"parity"})
            .Labels(i % 2 == 0 ? "even" : "odd")
            .Inc();
        mine.AddCounter("fork_child_" + std::to_string(i % 4), "Per child").Labels().Inc();
        registry.AddGauge("busy_0_0", "Busy").Labels().Set(-1);
        if (heap.AttachWorker() >= 16) return 2;
        return 0;
      });
      const int rc = WaitChild(child, std::chrono::seconds(20));
      if (rc != 0) {
        ++failures;
        ADD_FAILURE() << "fork " << i << ": child " << (rc == -1 ? "hung" : "failed") << " (exit "
                      << rc << ")";
      }
    }
    stop = true;
    for (auto& t : busy) t.join();
    EXPECT_EQ(forks.Labels("even").Value() + forks.Labels("odd").Value(), kForks);
    EXPECT_TRUE(shm::HeapAccess::segment(heap).Verify().ok())
        << shm::HeapAccess::segment(heap).Verify();
  }
  Heap::Remove(name);
}

}  // namespace
}  // namespace shmetrics
