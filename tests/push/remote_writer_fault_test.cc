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
#include "push/wire_decoder.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "shmetrics/remote_writer.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::UniqueHeapName;
using Clock = std::chrono::steady_clock;

// A remote-write receiver on 127.0.0.1 that answers each request with status(n) (n counts
// requests from 0); a status of 0 means never answer (the connection is held open).
class FakeReceiver {
 public:
  explicit FakeReceiver(std::function<int(int)> status) : status_(std::move(status)) { Listen(0); }
  ~FakeReceiver() { Down(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/write"; }
  int requests() const { return requests_.load(); }

  // Closes the listener (connections are refused) and every held connection.
  void Down() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int fd : held_) close(fd);
    held_.clear();
    if (listener_ >= 0) close(listener_);
    listener_ = -1;
  }
  // Listens again on the same port.
  void Up() {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!Listen(port_) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // The value of the last pushed sample named `name`, or -1.
  double Last(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return last_.count(name) ? last_[name] : -1;
  }

 private:
  bool Listen(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
      close(fd);
      return false;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listener_ = fd;
    stop_ = false;
    thread_ = std::thread([this] { Serve(); });
    return true;
  }

  void Serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      char buf[65536];
      size_t header_end = std::string::npos, length = 0;
      while (header_end == std::string::npos || in.size() < header_end + 4 + length) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 5000) <= 0) break;
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, n);
        if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != in.npos) {
          const size_t at = in.find("Content-Length: ");
          if (at != std::string::npos && at < header_end) length = std::stoul(in.substr(at + 16));
        }
      }
      const int status = status_(requests_++);
      if (status == 0) {
        held_.push_back(c);
        continue;
      }
      if (status / 100 == 2 && header_end != std::string::npos) Record(in.substr(header_end + 4));
      const std::string response =
          "HTTP/1.1 " + std::to_string(status) +
          " Status\r\nContent-Length: 6\r\nConnection: close\r\n\r\nno no\n";
      (void)!write(c, response.data(), response.size());
      close(c);
    }
  }

  void Record(const std::string& compressed) {
    const auto raw = ::shmetrics::testing::SnappyUncompress(compressed);
    if (!raw) return;
    const auto series = ::shmetrics::testing::DecodeWriteRequest(*raw);
    if (!series) return;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : *series) {
      for (const auto& [n, v] : s.labels) {
        if (n == "__name__" && !s.samples.empty()) last_[v] = s.samples[0].first;
      }
    }
  }

  const std::function<int(int)> status_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::vector<int> held_;  // the serving thread's own, then Down's
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, double> last_;
};

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
