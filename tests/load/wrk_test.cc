// The endpoint under load: 64 concurrent scrapers (wrk) against `shmetrics serve`, a real
// process whose memory is read from /proc, while two forked processes update the heap at full
// speed. No request may fail, and the serving process's memory must stay bounded.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/tls_helpers.h"
#include "load/serve_helpers.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::http::testing::BasicCredentials;
using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::shmetrics::http::testing::ShellQuote;
using ::shmetrics::http::testing::TestCertificate;
using ::shmetrics::testing::ForkUpdaters;
using ::shmetrics::testing::ProcStatusKib;
using ::shmetrics::testing::ServeProcess;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

using ::shmetrics::testing::kSanitized;

// Release runs the full 10 s (5 s over TLS); sanitizer builds (3-10x slower) shorter runs, same
// assertions.
constexpr int kSeconds = kSanitized ? 4 : 10;
constexpr int kTlsSeconds = kSanitized ? 3 : 5;
// How much the serving process's peak resident memory may exceed its resident memory after
// warm-up scrapes. Release: 64 concurrent responses of about 40 KiB, buffers and TLS state take
// about 5 MiB (10 MiB over TLS), far below 32 MiB, while a leak of one response per request
// (thousands of requests a second) would exceed it many times over. Sanitizer builds keep freed
// memory in quarantine and shadow memory, so their bound is larger.
constexpr long kMaxGrowthKib = kSanitized ? 768 * 1024 : 32 * 1024;

// wrk's own summary (from the done() hook of the Lua script) as name -> count.
std::map<std::string, long> RunWrk(const std::string& url, const std::string& header, int seconds,
                                   const std::string& dir, std::string* output) {
  const std::string script = dir + "/wrk.lua";
  std::ofstream(script)
      << "wrk.headers[\"Accept\"] = \"application/openmetrics-text; version=1.0.0\"\n"
      << (header.empty() ? "" : "wrk.headers[\"Authorization\"] = \"" + header + "\"\n")
      << "done = function(summary, latency, requests)\n"
      << "  local e = summary.errors\n"
      << "  io.write(string.format(\"RESULT requests=%d bytes=%d connect=%d read=%d write=%d "
         "status=%d timeout=%d\\n\", summary.requests, summary.bytes, e.connect, e.read, "
         "e.write, e.status, e.timeout))\n"
      << "end\n";
  int rc = -1;
  *output = Shell("wrk -t2 -c64 -d" + std::to_string(seconds) + "s --timeout 10s -s " +
                      ShellQuote(script) + " " + ShellQuote(url) + " 2>&1",
                  &rc);
  std::map<std::string, long> result;
  if (rc != 0) return result;
  const size_t at = output->find("RESULT ");
  if (at == std::string::npos) return result;
  static const std::regex kPair("(\\w+)=(\\d+)");
  const std::string line = output->substr(at, output->find('\n', at) - at);
  for (std::sregex_iterator it(line.begin(), line.end(), kPair), end; it != end; ++it) {
    result[(*it)[1]] = std::stol((*it)[2]);
  }
  return result;
}

class WrkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/wrk", X_OK) != 0) GTEST_SKIP() << "wrk not installed";
    name_ = UniqueHeapName("wrk");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    // About 300 series: a realistic application's worth, ~40 KiB of exposition.
    requests_ = &registry_->AddCounter("load_requests", "Requests", {"route", "code"});
    latency_ = &registry_->AddHistogram("load_latency", "Latency", {"route"},
                                        {.unit = "seconds", .buckets = {0.01, 0.1, 1}});
    for (int r = 0; r < 40; ++r) {
      for (const char* code : {"200", "404", "500"}) {
        requests_->Labels("/r" + std::to_string(r), code);
      }
      latency_->Labels("/r" + std::to_string(r));
    }
    char dir[] = "/tmp/shmetrics-wrk-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    registry_.reset();
    heap_.reset();
    if (!name_.empty()) Heap::Remove(name_);
    if (!dir_.empty()) Shell("rm -rf " + ShellQuote(dir_));
  }

  // Two processes updating every series as fast as they can for the whole run.
  std::vector<pid_t> StartUpdaters(int seconds) {
    return ForkUpdaters(
        2, std::chrono::seconds(seconds + 1), [this] { heap_->AttachWorker(); },
        [this](int i) {
          const std::string route = "/r" + std::to_string(i % 40);
          requests_->Labels(route, i % 7 == 0 ? "500" : "200").Inc();
          latency_->Labels(route).Observe(0.001 * (i % 2000));
        });
  }

  // Scrapes and checks the load went through: no failed request, memory bounded.
  void RunAndCheck(ServeProcess& server, int seconds, const std::string& scheme,
                   const std::string& header, const std::string& curl_args) {
    ASSERT_TRUE(server.ok()) << server.output();
    const std::string url = scheme + "://127.0.0.1:" + std::to_string(server.port()) + "/metrics";
    // Warm-up: the first scrapes size the buffers (and verify a bcrypt password once).
    for (int i = 0; i < 20; ++i) {
      int rc = -1;
      const std::string body = Shell("curl -sS --fail " + curl_args + " " + ShellQuote(url), &rc);
      ASSERT_EQ(rc, 0) << body;
      ASSERT_THAT(body, HasSubstr("load_requests_total{"));
    }
    const long rss_before = ProcStatusKib(server.pid(), "VmRSS");
    ASSERT_GT(rss_before, 0);

    const std::vector<pid_t> updaters = StartUpdaters(seconds);
    std::string output;
    const std::map<std::string, long> wrk = RunWrk(url, header, seconds, dir_, &output);
    const long hwm_after = ProcStatusKib(server.pid(), "VmHWM");
    const long rss_after = ProcStatusKib(server.pid(), "VmRSS");
    for (pid_t p : updaters) EXPECT_EQ(WaitChild(p), 0);

    ASSERT_EQ(wrk.size(), 7u) << output;
    EXPECT_GE(wrk.at("requests"), 10) << output;
    EXPECT_EQ(wrk.at("connect"), 0) << output;
    EXPECT_EQ(wrk.at("read"), 0) << output;
    EXPECT_EQ(wrk.at("write"), 0) << output;
    EXPECT_EQ(wrk.at("status"), 0) << output;  // any non-2xx/3xx answer
    EXPECT_EQ(wrk.at("timeout"), 0) << output;
    EXPECT_GT(wrk.at("bytes"), wrk.at("requests") * 10000) << output;  // real expositions
    EXPECT_LT(hwm_after - rss_before, kMaxGrowthKib)
        << "VmRSS before " << rss_before << " KiB, VmHWM after " << hwm_after << " KiB";
    std::cout << "wrk: " << wrk.at("requests") << " requests in " << seconds
              << " s; serving process VmRSS " << rss_before << " KiB before, VmHWM " << hwm_after
              << " KiB, VmRSS " << rss_after << " KiB after\n";

    // Still serving, with the updates visible, and the process exits cleanly.
    int rc = -1;
    const std::string body = Shell("curl -sS --fail " + curl_args + " " + ShellQuote(url), &rc);
    EXPECT_EQ(rc, 0) << body;
    EXPECT_THAT(body, HasSubstr("load_latency_seconds_count{route=\"/r1\"}"));
    EXPECT_EQ(server.Stop(), 0);
  }

  std::string name_, dir_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
  CounterFamily* requests_ = nullptr;
  HistogramFamily* latency_ = nullptr;
};

TEST_F(WrkTest, SixtyFourScrapersWhileTwoProcessesUpdateGetNoErrorsAndBoundedMemory) {
  ServeProcess server({"--heap", name_});
  RunAndCheck(server, kSeconds, "http", "", "");
}

TEST_F(WrkTest, SixtyFourScrapersOverTlsWithBasicAuthGetNoErrors) {
  TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  // bcrypt at cost 10, as deployed: only the verification cache keeps 64 scrapers served.
  const std::string hash = HtpasswdBcrypt("prometheus", "load pw", 10);
  ASSERT_FALSE(hash.empty());
  std::ofstream(dir_ + "/web.yml") << "tls_server_config:\n  cert_file: " << cert.cert_file()
                                   << "\n  key_file: " << cert.key_file()
                                   << "\nbasic_auth_users:\n  prometheus: " << hash << "\n";
  ServeProcess server({"--heap", name_, "--web-config-file", dir_ + "/web.yml"});
  RunAndCheck(
      server, kTlsSeconds, "https", BasicCredentials("prometheus", "load pw"),
      "--cacert " + ShellQuote(cert.cert_file()) + " -u " + ShellQuote("prometheus:load pw"));
}

}  // namespace
}  // namespace shmetrics
