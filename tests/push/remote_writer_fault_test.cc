// RemoteWriter against a receiver that misbehaves: refuses with 400 (not retried), fails with
// 503 and 429 (retried), never answers (bounded by the timeout), or is down for 10 s (nothing
// missing once it is back, retries counted).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "push/fake_receiver.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "shmetrics/remote_writer.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::FakeReceiver;
using ::shmetrics::testing::UniqueHeapName;
using Clock = std::chrono::steady_clock;

class RemoteWriterFaultTest : public ::testing::Test {
 protected:
  RemoteWriterFaultTest()
      : name_(UniqueHeapName("rwfault")),
        heap_(Heap::Create(name_)),
        registry_(heap_),
        jobs_(registry_.AddCounter("fault_jobs", "Jobs").Labels()) {
    jobs_.Inc(1);
  }
  ~RemoteWriterFaultTest() override { Heap::Remove(name_); }

  RemoteWriteOptions Options(const FakeReceiver& r) {
    return {.url = r.url(),
            .interval = std::chrono::hours(1),
            .timeout = std::chrono::milliseconds(500),
            .min_backoff = std::chrono::milliseconds(5),
            .max_backoff = std::chrono::milliseconds(50),
            .process_metrics = false,
            .push_on_stop = false};
  }

  std::string name_;
  Heap heap_;
  Registry registry_;
  Counter jobs_;
};

TEST_F(RemoteWriterFaultTest, A400IsNotRetried) {
  FakeReceiver receiver([](int) { return 400; });
  RemoteWriter writer(heap_, Options(receiver));
  EXPECT_FALSE(writer.Flush());
  const RemoteWriter::Stats s = writer.stats();
  // The push at start and the flush's (one push when the flush came first): one request each.
  EXPECT_GE(s.pushes_failed, 1u);
  EXPECT_EQ(receiver.requests(), static_cast<int>(s.pushes_failed));
  EXPECT_EQ(s.samples_retried, 0u);
  EXPECT_GT(s.samples_failed, 0u);
}

TEST_F(RemoteWriterFaultTest, A503AndA429AreRetried) {
  FakeReceiver receiver([](int n) { return n == 0 ? 503 : n == 1 ? 429 : 204; });
  RemoteWriter writer(heap_, Options(receiver));
  EXPECT_TRUE(writer.Flush());
  const RemoteWriter::Stats s = writer.stats();
  EXPECT_EQ(s.pushes_failed, 0u);
  EXPECT_GE(s.pushes_succeeded, 1u);
  EXPECT_EQ(receiver.requests(), static_cast<int>(s.pushes_succeeded) + 2);
  EXPECT_GT(s.samples_retried, 0u);
  EXPECT_EQ(receiver.Last("fault_jobs_total"), 1);
}

TEST_F(RemoteWriterFaultTest, AReceiverThatNeverAnswersDoesNotStallPastTheTimeout) {
  FakeReceiver receiver([](int) { return 0; });
  RemoteWriteOptions o = Options(receiver);
  o.interval = std::chrono::seconds(2);
  const auto start = Clock::now();
  {
    RemoteWriter writer(heap_, o);
    EXPECT_FALSE(writer.Flush());
    // A push gives up by the next interval plus one timeout; generous bounds.
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
    EXPECT_GT(writer.stats().samples_retried, 0u);
  }
  // Stopping waits for one request at most.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));
}

TEST_F(RemoteWriterFaultTest, NothingIsMissingAfterTheReceiverWasDownForTenSeconds) {
  FakeReceiver receiver([](int) { return 204; });
  RemoteWriteOptions o = Options(receiver);
  o.interval = std::chrono::milliseconds(200);
  RemoteWriter writer(heap_, o);
  ASSERT_TRUE(writer.Flush());
  receiver.Down();
  jobs_.Inc(41);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  const RemoteWriter::Stats down = writer.stats();
  EXPECT_GT(down.pushes_failed, 0u);
  EXPECT_GT(down.samples_retried, 0u);
  receiver.Up();
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (receiver.Last("fault_jobs_total") != 42 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(receiver.Last("fault_jobs_total"), 42);
  EXPECT_GT(receiver.Last("shmetrics_remote_write_samples_retried_total"), 0);
}

}  // namespace
}  // namespace shmetrics
