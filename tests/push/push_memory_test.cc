// `shmetrics push --remote-write` against a receiver that refuses every push (503) for many
// intervals: the pusher's resident memory does not grow with the number of pushes refused (a
// push that fails is not kept: values are cumulative, the next success carries everything),
// and the retries are counted in the self-metrics it sends once the receiver takes pushes again.
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "push/fake_receiver.h"
#include "push/push_process.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::FakeReceiver;
using ::shmetrics::testing::PushProcess;
using ::shmetrics::testing::UniqueHeapName;

// Polls (bounded by two minutes) until the receiver has had at least `n` requests.
bool WaitForRequests(const FakeReceiver& r, int n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (r.requests() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return r.requests() >= n;
}

TEST(PushMemoryTest, StaysBoundedWhileTheReceiverRefusesAndCountsTheRetries) {
  const std::string name = UniqueHeapName("pushmem");
  Heap heap = Heap::Create(name);
  Registry registry(heap);
  // Enough series that keeping even a few refused pushes would show: each is about 1 MB.
  auto& requests = registry.AddCounter("mem_requests", "Requests", {"handler", "code"});
  constexpr int kSeries = 20000;
  for (int i = 0; i < kSeries; ++i) {
    requests.Labels("/api/v1/item/" + std::to_string(i), i % 2 ? "200" : "500").Inc(i);
  }
  Counter done = registry.AddCounter("mem_done", "Done").Labels();

  if (::shmetrics::testing::kSanitized) {
    // AddressSanitizer keeps freed memory in quarantine (256 MiB by default), which would look
    // like growth: the pusher run here gets a small one.
    const char* asan = getenv("ASAN_OPTIONS");
    const std::string options =
        (asan != nullptr && *asan != '\0' ? std::string(asan) + ":" : "") + "quarantine_size_mb=1";
    setenv("ASAN_OPTIONS", options.c_str(), 1);
  }
  std::atomic<bool> refuse{false};
  FakeReceiver receiver([&](int) { return refuse ? 503 : 204; });
  PushProcess push({"--heap", name, "--remote-write", receiver.url(), "--interval", "100ms",
                    "--timeout", "10s"});
  ASSERT_TRUE(push.started()) << push.Stderr();
  ASSERT_TRUE(WaitForRequests(receiver, 3));
  const size_t payload = receiver.last_body_bytes();
  ASSERT_GT(payload, 100u << 10) << "the pushes are too small to tell a leak from noise";

  // The receiver refuses; after a first few refusals every buffer has its working size.
  refuse = true;
  ASSERT_TRUE(WaitForRequests(receiver, receiver.requests() + 20));
  const long rss_before = push.RssKiB();
  ASSERT_GT(rss_before, 0);
  done.Inc(1);
  // Many more refused pushes (each with its retries): a pusher that kept what it could not send
  // would hold `refusals` payloads more by now.
  constexpr int kRefusals = 300;
  ASSERT_TRUE(WaitForRequests(receiver, receiver.requests() + kRefusals));
  const long rss_after = push.RssKiB();
  // The bound: a few payloads (the one being sent and its uncompressed form, allocator slack),
  // far below the kRefusals payloads a queue would hold.
  const long bound_kib = static_cast<long>(4 * payload / 1024) + 4096;
  ASSERT_LT(bound_kib * 4, static_cast<long>(kRefusals * payload / 1024));
  // Under ThreadSanitizer the pusher's RSS (its shadow memory and allocator caches included)
  // swings by about 6.5 MB between two samples, either way (56.2 -> 49.7 MB and 49.8 -> 56.3 MB
  // seen), more than this bound; a release build's stays flat. So only the other builds check it.
  if (!::shmetrics::testing::kThreadSanitized) {
    EXPECT_LT(rss_after - rss_before, bound_kib)
        << "RSS " << rss_before << " KiB -> " << rss_after << " KiB after " << kRefusals
        << " refused pushes of " << payload << " bytes";
  }

  std::printf("RSS %ld KiB -> %ld KiB after %d refused pushes of %zu bytes\n", rss_before,
              rss_after, kRefusals, payload);

  // Back: the value that changed while it was refused arrives, and the failures were counted.
  // (Whether a refused push had time for a retry before the next was due depends on how fast
  // this machine encodes 20,000 series; RemoteWriterFaultTest counts retries.)
  refuse = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (receiver.Last("mem_done_total", {}) != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(receiver.Last("mem_done_total", {}), 1);
  EXPECT_GT(receiver.Last("shmetrics_remote_write_samples_failed_total", {}), 0);
  EXPECT_EQ(push.Stop(), 0);
  Heap::Remove(name);
}

}  // namespace
}  // namespace shmetrics
