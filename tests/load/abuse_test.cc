// The embedded endpoint under abuse, over real loopback sockets: 1,000 idle connections, clients
// that send their header one byte a second, oversized headers and bodies and malformed request
// lines, all at once. Each is answered (400/413/431) or dropped within the configured timeouts,
// and a normal scrape succeeds meanwhile.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/client_helpers.h"
#include "load/serve_helpers.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::http::testing::Fetch;
using ::shmetrics::http::testing::GetRequest;
using ::shmetrics::http::testing::TestClient;
using ::shmetrics::testing::RaiseDescriptorLimit;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using ::shmetrics::testing::kSanitized;

// Long enough that the abusive clients are all still connected while the test scrapes (slower
// under sanitizers, and with room for a loaded machine: ctest runs two tests at once), short
// enough to watch them being dropped.
constexpr std::chrono::milliseconds kReadTimeout = kSanitized ? 15s : 8s;
constexpr int kWantedIdle = 1000;
constexpr int kSlowClients = 8;

class AbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Each idle connection costs two descriptors in this process (the client's end and the
    // server's). Where the hard limit is too low for 1,000 (e.g. 1024), fewer are opened.
    const long fds = RaiseDescriptorLimit();
    idle_count_ = static_cast<int>(std::min<long>(kWantedIdle, (fds - 200) / 2));
    if (idle_count_ < kWantedIdle) {
      std::cout << "note: RLIMIT_NOFILE hard limit " << fds << " allows " << idle_count_
                << " idle connections, not " << kWantedIdle << "\n";
    }
    ASSERT_GT(idle_count_, 100);
    name_ = UniqueHeapName("abuse");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    registry_->AddCounter("abuse_requests", "Requests", {"code"}).Labels("200").Inc(42);
    exposer_ = std::make_unique<HttpExposer>(
        *heap_, HttpExposerOptions{.port = 0,
                                   .read_timeout = kReadTimeout,
                                   .idle_timeout = kReadTimeout,
                                   .write_timeout = 10s,
                                   .max_header_bytes = 2048,
                                   .max_body_bytes = 1024,
                                   .max_connections = static_cast<size_t>(idle_count_) + 100});
  }
  void TearDown() override {
    exposer_.reset();
    registry_.reset();
    heap_.reset();
    if (!name_.empty()) Heap::Remove(name_);
  }

  uint16_t port() const { return exposer_->port(); }

  // A scrape as Prometheus does it, on a fresh connection.
  void ExpectNormalScrape(const char* when) {
    auto r = Fetch(port(), GetRequest("/metrics", "Accept: application/openmetrics-text\r\n"));
    ASSERT_TRUE(r.has_value()) << when;
    EXPECT_EQ(r->status, 200) << when;
    EXPECT_THAT(r->body, HasSubstr("abuse_requests_total{code=\"200\"} 42\n")) << when;
    EXPECT_THAT(r->body, ::testing::EndsWith("# EOF\n")) << when;
  }

  // Sends `request` on a fresh connection; expects `status` and then the close.
  void ExpectAnsweredAndClosed(const std::string& what, const std::string& request, int status) {
    TestClient client(port());
    ASSERT_TRUE(client.connected()) << what;
    client.Send(request);  // may fail part-way once the server has answered
    auto r = client.ReadResponse(false, 20s);
    ASSERT_TRUE(r.has_value()) << what;
    EXPECT_EQ(r->status, status) << what;
    EXPECT_EQ(r->Header("connection"), "close") << what;
    EXPECT_THAT(r->body, ::testing::Not(HasSubstr("abuse_requests"))) << what;
    EXPECT_TRUE(client.ReadUntilClosed(20s).has_value()) << what << ": not closed";
  }

  int idle_count_ = 0;
  std::string name_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<HttpExposer> exposer_;
};

// How many of `clients` the server has closed (their socket reads EOF or reset), without
// waiting.
int CountClosed(const std::vector<std::unique_ptr<TestClient>>& clients) {
  std::vector<pollfd> fds;
  for (const auto& c : clients) fds.push_back({c->fd(), POLLIN, 0});
  if (::poll(fds.data(), fds.size(), 0) < 0) return -1;
  int closed = 0;
  for (const pollfd& p : fds) closed += (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
  return closed;
}

TEST_F(AbuseTest, IdleSlowOversizedAndMalformedClientsAreDroppedOrAnsweredWhileScrapesSucceed) {
  const auto opened = Clock::now();
  std::vector<std::unique_ptr<TestClient>> idle;
  for (int i = 0; i < idle_count_; ++i) {
    idle.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }

  // Slow clients: one byte of a valid request each second, from one thread.
  const std::string request = GetRequest("/metrics");
  std::atomic<int> slow_dropped{0}, slow_answered{0};
  std::atomic<int64_t> slow_min_ms{INT64_MAX}, slow_max_ms{0};
  std::thread slow([&] {
    std::vector<std::unique_ptr<TestClient>> clients;
    for (int i = 0; i < kSlowClients; ++i) clients.push_back(std::make_unique<TestClient>(port()));
    const auto start = Clock::now();
    std::vector<bool> done(kSlowClients, false);
    for (size_t byte = 0; byte < request.size(); ++byte) {
      for (int i = 0; i < kSlowClients; ++i) {
        if (done[i]) continue;
        // Readable now means the server closed it (it never answers a partial request).
        auto rest = clients[i]->ReadUntilClosed(0ms);
        if (!rest.has_value() && clients[i]->Send(std::string_view(&request[byte], 1))) continue;
        done[i] = true;
        if (rest.has_value() && !rest->empty()) slow_answered.fetch_add(1);
        const int64_t ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        slow_dropped.fetch_add(1);
        slow_min_ms.store(std::min(slow_min_ms.load(), ms));
        slow_max_ms.store(std::max(slow_max_ms.load(), ms));
      }
      if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
      std::this_thread::sleep_for(1s);
    }
  });

  std::this_thread::sleep_for(1500ms);  // the slow clients have sent a byte or two
  ExpectNormalScrape("with idle and slow clients connected");
  ExpectAnsweredAndClosed(
      "oversized header",
      "GET /metrics HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n", 431);
  ExpectAnsweredAndClosed("oversized request line",
                          "GET /metrics?" + std::string(4000, 'q') + " HTTP/1.1\r\n\r\n", 431);
  ExpectAnsweredAndClosed("declared body too large",
                          "POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 50000\r\n\r\n" +
                              std::string(50000, 'b'),
                          413);
  ExpectAnsweredAndClosed("chunked body too large",
                          "POST /metrics HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "800\r\n" +
                              std::string(0x800, 'c') + "\r\n0\r\n\r\n",
                          413);
  for (const std::string& line :
       {std::string("GET /metrics\r\n\r\n"), std::string("GET /metrics HTTP/9.9\r\n\r\n"),
        std::string("G\x01T /metrics HTTP/1.1\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\r\n\r\n"),
        std::string("GET /met rics HTTP/1.1 extra\r\n\r\n"),
        std::string("GET /metrics HTTP/1.1\r\nHost h\r\n\r\n")}) {
    ExpectAnsweredAndClosed("malformed: " + line.substr(0, line.find('\r')), line, 400);
  }
  ExpectNormalScrape("after the oversized and malformed requests");
  const auto checked = Clock::now();
  // Everything above happened while the idle clients were still connected.
  ASSERT_LT(checked - opened, kReadTimeout) << "the machine is too slow for this read_timeout";
  EXPECT_EQ(CountClosed(idle), 0);

  // The idle clients are dropped once read_timeout has passed, not before, all of them.
  int closed = 0;
  while (Clock::now() - opened < kReadTimeout + 30s) {
    closed = CountClosed(idle);
    if (closed == idle_count_) break;
    std::this_thread::sleep_for(100ms);
  }
  const auto all_closed = Clock::now();
  EXPECT_EQ(closed, idle_count_);
  EXPECT_GE(all_closed - opened, kReadTimeout - 100ms);
  for (const auto& c : idle) EXPECT_EQ(c->ReadUntilClosed(1s).value_or("open"), "");
  slow.join();
  EXPECT_EQ(slow_dropped.load(), kSlowClients);
  EXPECT_EQ(slow_answered.load(), 0);  // a partial request gets no answer, just the close
  EXPECT_GE(slow_min_ms.load(), kReadTimeout.count() - 1100);
  EXPECT_LT(slow_max_ms.load(), static_cast<int64_t>(request.size()) * 1000);  // never finished
  ExpectNormalScrape("after the abusive clients were dropped");
}

}  // namespace
}  // namespace shmetrics
