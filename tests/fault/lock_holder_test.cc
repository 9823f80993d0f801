// A process SIGKILLed while it holds one of the heap's locks — registration (the heap lock), the
// worker table lock, the exemplar lock, and with mutex cells a cell's mutex — blocks nobody: the
// next process to need the lock gets it at once and carries on.
#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"

namespace shmetrics {

namespace internal {
#if SHMETRICS_MUTEX_CELLS
// Takes a cell's mutex the way Cell::Update does, and leaves it held.
class CellTestingPeer {
 public:
  static void LockAndBeginWrite(Cell& cell) {
    cell.Lock();
    cell.seq_.fetch_add(1);  // odd: a write in progress, as if killed inside Write()
  }
};
#endif
}  // namespace internal

namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;

// A deadlock shows up as a child that does not finish; anything that finishes waited for no lock.
constexpr auto kBound = std::chrono::seconds(20);

class LockHolderTest : public testing::HeapTest {
 protected:
  void SetUp() override {
    CreateHeap("locks", {.max_workers = 8});
    requests_ = &registry_->AddCounter("requests", "Requests", {"code"});
    requests_->Labels("200").Inc();
  }

  // Forks a child that runs take_lock, tells us, and waits to be killed; SIGKILLs it. The
  // take_lock functions acquire and never release, so they opt out of -Wthread-safety.
  void KillWhileHolding(const std::function<void()>& take_lock) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = ForkChild([&] {
      take_lock();
      (void)!write(ready[1], "x", 1);
      for (;;) pause();
      return 0;
    });
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    ASSERT_EQ(kill(child, SIGKILL), 0);
    EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
    close(ready[0]);
    close(ready[1]);
  }

  // Everything that takes a lock, done by another process: register, create a series, attach a
  // worker, write an exemplar. Returns its exit code (0 when all worked).
  int EverythingElseGoesOn() {
    const pid_t other = ForkChild([&] {
      Registry r(*heap_);
      auto& fresh = r.AddCounter("registered_after", "After the kill", {"k"});  // heap lock
      fresh.Labels("v").Inc();                                                  // heap lock
      requests_->Labels("500").Inc();
      if (heap_->AttachWorker() >= 8) return 2;  // worker table lock
      Counter ok = requests_->Labels("200");
      if (!ok.IncWithExemplar(1, {{"trace_id", "after"}})) return 3;  // exemplar lock
      return 0;
    });
    return WaitChild(other, kBound);
  }

  void ExpectAllRecorded() {
    EXPECT_EQ(requests_->Labels("200").Value(), 2);
    EXPECT_EQ(requests_->Labels("500").Value(), 1);
    EXPECT_EQ(
        registry_->AddCounter("registered_after", "After the kill", {"k"}).Labels("v").Value(), 1);
    EXPECT_THAT(Expose(*heap_), HasSubstr("# {trace_id=\"after\"} 1"));
    EXPECT_TRUE(shm::HeapAccess::segment(*heap_).Verify().ok())
        << shm::HeapAccess::segment(*heap_).Verify();
  }

  CounterFamily* requests_ = nullptr;
};

TEST_F(LockHolderTest, RegistrationLockHolderKilled) {
  KillWhileHolding(
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { shm::HeapAccess::segment(*heap_).lock().lock(); });
  EXPECT_EQ(EverythingElseGoesOn(), 0);
  EXPECT_EQ(shm::HeapAccess::segment(*heap_).header().lock.recoveries(), 1u);
  ExpectAllRecorded();
}

TEST_F(LockHolderTest, WorkerTableLockHolderKilled) {
  KillWhileHolding([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    shm::HeapAccess::segment(*heap_).header().worker_lock.lock();
  });
  EXPECT_EQ(EverythingElseGoesOn(), 0);
  EXPECT_EQ(shm::HeapAccess::segment(*heap_).header().worker_lock.recoveries(), 1u);
  ExpectAllRecorded();
  // This process attaches too.
  EXPECT_LT(heap_->AttachWorker(), 8u);
}

TEST_F(LockHolderTest, ExemplarLockHolderKilled) {
  KillWhileHolding([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    shm::HeapAccess::segment(*heap_).header().exemplar_lock.lock();
  });
  EXPECT_EQ(EverythingElseGoesOn(), 0);
  EXPECT_EQ(shm::HeapAccess::segment(*heap_).header().exemplar_lock.recoveries(), 1u);
  ExpectAllRecorded();
}

TEST_F(LockHolderTest, EveryLockHeldByOneKilledProcess) {
  KillWhileHolding([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    shm::HeapAccess::segment(*heap_).lock().lock();
    shm::HeapAccess::segment(*heap_).header().worker_lock.lock();
    shm::HeapAccess::segment(*heap_).header().exemplar_lock.lock();
  });
  EXPECT_EQ(EverythingElseGoesOn(), 0);
  ExpectAllRecorded();
}

TEST_F(LockHolderTest, KilledWhileRegisteringInALoop) {
  // Not a lock taken by hand: children that register families and create series as fast as
  // they can, killed wherever they are. Each kill is followed by a check that others go on.
  for (int round = 0; round < 20; ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = ForkChild([&] {
      (void)!write(ready[1], "x", 1);
      Registry r(*heap_);
      for (int i = 0;; ++i) {
        r.AddGauge("churn_" + std::to_string(i % 50), "Churn").Labels().Set(i);
        requests_->Labels("churn-" + std::to_string(round) + "-" + std::to_string(i)).Inc();
        heap_->AttachWorker();
        heap_->DetachWorker();
      }
      return 0;
    });
    char c = 0;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    usleep(1000 + 500 * round);
    ASSERT_EQ(kill(child, SIGKILL), 0);
    EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
    close(ready[0]);
    close(ready[1]);
    const pid_t other = ForkChild([&] {
      Registry r(*heap_);
      r.AddCounter("after_churn", "After").Labels().Inc();
      return heap_->AttachWorker() < 8 ? 0 : 1;
    });
    ASSERT_EQ(WaitChild(other, kBound), 0) << "round " << round;
    EXPECT_TRUE(shm::HeapAccess::segment(*heap_).Verify().ok())
        << shm::HeapAccess::segment(*heap_).Verify();
  }
  EXPECT_EQ(registry_->AddCounter("after_churn", "After").Labels().Value(), 20);
}

#if SHMETRICS_MUTEX_CELLS
TEST_F(LockHolderTest, CellMutexHolderKilledMidWrite) {
  Counter ok = requests_->Labels("200");
  // Reach the cell through the series record that Labels() returned.
  const internal::SeriesRef ref = requests_->Lookup(std::array<std::string_view, 1>{"200"});
  auto* first = reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset);
  KillWhileHolding([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    internal::CellTestingPeer::LockAndBeginWrite(*first);
  });
  // A reader does not wait forever on the odd sequence, and the next writer recovers the mutex.
  EXPECT_EQ(ok.Value(), 1);
  const pid_t writer = ForkChild([&] {
    requests_->Labels("200").Inc();
    return 0;
  });
  EXPECT_EQ(WaitChild(writer, kBound), 0);
  EXPECT_EQ(ok.Value(), 2);
  ok.Inc();
  EXPECT_EQ(ok.Value(), 3);
}
#endif

}  // namespace
}  // namespace shmetrics
