// `shmetrics push --remote-write` follows each --heap by name, as `serve` does: a heap that does
// not exist yet is waited for (pushed as down until it does), a heap removed and created again
// is pushed anew, and families the heaps come to disagree on are logged once.
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "push/fake_receiver.h"
#include "push/push_process.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::FakeReceiver;
using ::shmetrics::testing::Occurrences;
using ::shmetrics::testing::PushProcess;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;
using Labels = std::vector<std::pair<std::string, std::string>>;

// Polls (bounded by a minute) until the receiver's last push has `name`{labels} == value.
bool WaitForValue(FakeReceiver& r, const std::string& name, const Labels& labels, double value) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (r.Last(name, labels) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Polls (bounded) until the receiver has had `n` more requests than now.
bool WaitForRequests(FakeReceiver& r, int n) {
  const int until = r.requests() + n;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (r.requests() < until && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return r.requests() >= until;
}

class PushFollowTest : public ::testing::Test {
 protected:
  PushFollowTest() : name_(UniqueHeapName("pushfollow")), receiver_([](int) { return 204; }) {}
  ~PushFollowTest() override {
    for (const std::string& n : {name_, name_ + "-b"}) {
      try {
        Heap::Remove(n);
      } catch (const Error&) {
      }
    }
  }

  std::vector<std::string> Args(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"--remote-write", receiver_.url(), "--interval",
                                     "50ms",           "--timeout",     "10s"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  std::string name_;
  FakeReceiver receiver_;
};

TEST_F(PushFollowTest, WaitsForAHeapThatDoesNotExistYet) {
  PushProcess push(Args({"--heap", name_}));
  ASSERT_TRUE(push.started()) << push.Stderr();
  EXPECT_THAT(push.Stderr(), HasSubstr(name_ + " does not exist yet; pushing it as down"));
  ASSERT_TRUE(WaitForValue(receiver_, "shmetrics_heap_up", {{"heap", name_}}, 0));

  Heap heap = Heap::Create(name_);
  Registry registry(heap);
  registry.AddCounter("follow_jobs", "Jobs").Labels().Inc(7);
  EXPECT_TRUE(WaitForValue(receiver_, "follow_jobs_total", {}, 7));
  EXPECT_TRUE(WaitForValue(receiver_, "shmetrics_heap_up", {{"heap", name_}}, 1));
  EXPECT_EQ(push.Stop(), 0);
}

TEST_F(PushFollowTest, NoWaitFailsForAHeapThatDoesNotExist) {
  PushProcess push(Args({"--heap", name_, "--no-wait"}));
  EXPECT_FALSE(push.started());
  EXPECT_EQ(push.Wait(), 1);
  EXPECT_THAT(push.Stderr(), HasSubstr(name_));
  EXPECT_EQ(receiver_.requests(), 0);
}

TEST_F(PushFollowTest, PushesAHeapRemovedAndCreatedAgainAnew) {
  {
    Heap heap = Heap::Create(name_);
    Registry(heap).AddCounter("follow_jobs", "Jobs").Labels().Inc(5);
  }
  PushProcess push(Args({"--heap", name_}));
  ASSERT_TRUE(push.started()) << push.Stderr();
  ASSERT_TRUE(WaitForValue(receiver_, "follow_jobs_total", {}, 5));

  // The service stops and removes its heap: pushed as down, the old mapping let go.
  Heap::Remove(name_);
  ASSERT_TRUE(WaitForValue(receiver_, "shmetrics_heap_up", {{"heap", name_}}, 0));
  EXPECT_EQ(receiver_.Last("follow_jobs_total", {}), -1);

  // It starts again with a new heap of the same name, and another value.
  Heap heap = Heap::Create(name_);
  Registry registry(heap);
  registry.AddCounter("follow_jobs", "Jobs").Labels().Inc(2);
  EXPECT_TRUE(WaitForValue(receiver_, "follow_jobs_total", {}, 2));
  EXPECT_TRUE(WaitForValue(receiver_, "shmetrics_heap_up", {{"heap", name_}}, 1));
  EXPECT_EQ(push.Stop(), 0);
}

TEST_F(PushFollowTest, AConflictBetweenHeapsIsLoggedOnceAndTheRestPushed) {
  const std::string other = name_ + "-b";
  Heap a = Heap::Create(name_);
  Heap b = Heap::Create(other);
  Registry ra(a), rb(b);
  ra.AddCounter("follow_shared", "In a, a counter").Labels().Inc(3);
  rb.AddGauge("follow_b_only", "Only in b").Labels().Set(9);
  PushProcess push(Args({"--heap", name_, "--heap", other}));
  ASSERT_TRUE(push.started()) << push.Stderr();
  ASSERT_TRUE(WaitForValue(receiver_, "follow_shared_total", {{"heap", name_}}, 3));

  // b comes to define the same family as a gauge: a mistake logged once, not at every push.
  rb.AddGauge("follow_shared", "In b, a gauge").Labels().Set(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Occurrences(push.Stderr(), "follow_shared") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(WaitForRequests(receiver_, 10));
  EXPECT_THAT(push.Stderr(), HasSubstr("shmetrics: push: "));
  EXPECT_EQ(Occurrences(push.Stderr(), "follow_shared"), 1) << push.Stderr();
  // The families they agree on are still pushed.
  EXPECT_EQ(receiver_.Last("follow_b_only", {{"heap", other}}), 9);
  EXPECT_EQ(push.Stop(), 0);
}

TEST_F(PushFollowTest, HeapsThatDisagreeAtStartAreAnError) {
  const std::string other = name_ + "-b";
  Heap a = Heap::Create(name_);
  Heap b = Heap::Create(other);
  Registry(a).AddCounter("follow_shared", "A counter").Labels().Inc(1);
  Registry(b).AddGauge("follow_shared", "A gauge").Labels().Set(1);
  PushProcess push(Args({"--heap", name_, "--heap", other}));
  EXPECT_FALSE(push.started());
  EXPECT_EQ(push.Wait(), 1);
  EXPECT_THAT(push.Stderr(), HasSubstr("push: "));
  EXPECT_THAT(push.Stderr(), HasSubstr("follow_shared"));
  EXPECT_EQ(receiver_.requests(), 0);
}

}  // namespace
}  // namespace shmetrics
