// The embedded endpoint with basic authentication under a flood of wrong passwords: 50 clients
// send wrong passwords (bcrypt, cost 10) as fast as the server answers them, while a scraper
// that knows the password scrapes on a keep-alive connection, as Prometheus does. Its median
// latency under the flood must stay within 3x its median when idle, both measured in this run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/client_helpers.h"
#include "http/tls_helpers.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::http::testing::BasicCredentials;
using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::shmetrics::http::testing::ParsedResponse;
using ::shmetrics::http::testing::TestClient;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kFloodClients = 50;
constexpr int kScrapes = 50;
constexpr int kBurst = 5;
constexpr std::chrono::milliseconds kGap{150};
// bcrypt cost of the test's user: 10, the cost htpasswd and exporter-toolkit's docs use.
constexpr int kCost = 10;

std::string Scrape(const std::string& credentials) {
  return "GET /metrics HTTP/1.1\r\nHost: h\r\nAuthorization: " + credentials + "\r\n\r\n";
}

Clock::duration Median(std::vector<Clock::duration> v) {
  if (v.empty()) return Clock::duration::max();
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

class AuthFloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string hash = HtpasswdBcrypt("prometheus", "right pw", kCost);
    ASSERT_FALSE(hash.empty());
    name_ = UniqueHeapName("authflood");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    auto& family = registry_->AddCounter("flood_jobs", "Jobs", {"kind"});
    for (int i = 0; i < 100; ++i) family.Labels("k" + std::to_string(i)).Inc(i);
    exposer_ = std::make_unique<HttpExposer>(
        *heap_, HttpExposerOptions{.port = 0, .web = {.basic_auth_users = {{"prometheus", hash}}}});
  }
  void TearDown() override {
    exposer_.reset();
    registry_.reset();
    heap_.reset();
    if (!name_.empty()) Heap::Remove(name_);
  }

  uint16_t port() const { return exposer_->port(); }

  // Latencies of kScrapes scrapes on `client`, each checked for the full exposition. They go
  // in bursts of kBurst, back to back (so the median is of warm scrapes, the strictest idle
  // value), kGap apart, so that the loaded ones span many verifications and waves of 503s.
  std::vector<Clock::duration> Scrapes(TestClient& client) {
    const std::string request = Scrape(BasicCredentials("prometheus", "right pw"));
    std::vector<Clock::duration> latencies;
    for (int i = 0; i < kScrapes; ++i) {
      if (i % kBurst == 0) std::this_thread::sleep_for(kGap);
      const auto start = Clock::now();
      if (!client.Send(request)) break;
      std::optional<ParsedResponse> r = client.ReadResponse();
      latencies.push_back(Clock::now() - start);
      EXPECT_TRUE(r.has_value());
      if (!r.has_value()) break;
      EXPECT_EQ(r->status, 200);
      EXPECT_THAT(r->body, HasSubstr("flood_jobs_total{kind=\"k99\"} 99\n"));
    }
    EXPECT_EQ(latencies.size(), static_cast<size_t>(kScrapes));
    return latencies;
  }

  std::string name_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<HttpExposer> exposer_;
};

TEST_F(AuthFloodTest, WrongPasswordsFromFiftyClientsKeepScrapesWithinThreeTimesIdleLatency) {
  TestClient scraper(port());
  ASSERT_TRUE(scraper.connected());
  // The first scrape pays the bcrypt; its credentials are remembered from then on.
  ASSERT_TRUE(scraper.Send(Scrape(BasicCredentials("prometheus", "right pw"))));
  std::optional<ParsedResponse> first = scraper.ReadResponse();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->status, 200);
  std::vector<Clock::duration> idle = Scrapes(scraper);

  std::atomic<bool> stop{false};
  std::atomic<long> unauthorized{0}, busy{0}, other{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < kFloodClients; ++t) {
    flood.emplace_back([&, t] {
      std::unique_ptr<TestClient> client;
      for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        if (client == nullptr) client = std::make_unique<TestClient>(port());
        // A different wrong password every time, as a guesser sends.
        const std::string guess = "guess " + std::to_string(t) + " " + std::to_string(i);
        std::optional<ParsedResponse> r;
        if (client->Send(Scrape(BasicCredentials("prometheus", guess)))) {
          r = client->ReadResponse(/*head=*/false, 30s);
        }
        if (!r.has_value()) {
          client.reset();
          other.fetch_add(1);
          continue;
        }
        (r->status == 401 ? unauthorized : r->status == 503 ? busy : other).fetch_add(1);
      }
    });
  }
  // The flood is on once wrong passwords are being hashed and turned away (bounded wait).
  const auto deadline = Clock::now() + 60s;
  while ((unauthorized.load() < 3 || busy.load() < 100) && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  const long unauthorized_before = unauthorized.load();
  const Clock::duration loaded = Median(Scrapes(scraper));
  const long hashed_during = unauthorized.load() - unauthorized_before;
  stop = true;
  for (auto& t : flood) t.join();
  // Idle again: the idle median is over scrapes before and after the flood, so that a change in
  // the machine's own load during the run weighs on both sides alike.
  for (Clock::duration d : Scrapes(scraper)) idle.push_back(d);
  const Clock::duration idle_median = Median(idle);

  using std::chrono::microseconds;
  std::cout << "median scrape: idle "
            << std::chrono::duration_cast<microseconds>(idle_median).count()
            << " us, under the flood " << std::chrono::duration_cast<microseconds>(loaded).count()
            << " us; flood answers: " << unauthorized.load() << " 401, " << busy.load() << " 503, "
            << other.load() << " other; " << hashed_during
            << " wrong passwords hashed during the loaded scrapes\n";
  EXPECT_GE(unauthorized_before, 3) << "the flood never got going";
  EXPECT_GE(hashed_during, 2) << "the scrapes were not measured under the flood";
  EXPECT_GE(busy.load(), 100);
  EXPECT_EQ(other.load(), 0);
  EXPECT_LE(loaded, 3 * idle_median);
}

}  // namespace
}  // namespace shmetrics
