// examples/every_type as a separate process; its heap read by name from this one; the output
// fed to real parsers (python-prometheus-client's OpenMetrics parser, promtool) and to a real
// Prometheus server.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "e2e/prefork_helpers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shmetrics/error.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::EveryTypeReaper;
using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::ScrapingPrometheus;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::StartEveryType;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;

TEST(EveryTypeTest, OutputOfEveryTypePassesIndependentParsers) {
  const std::string name = UniqueHeapName("every");
  const pid_t pid = StartEveryType(name);
  ASSERT_GT(pid, 0);
  EveryTypeReaper reaper{pid, name};
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it update a few times
  Heap heap = Heap::Open(name, {.read_only = true});
  // The shmetrics tool, an unrelated process, reads the heap by name.
  const std::string tool = std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics";
  const std::string om = Shell(tool + " dump --heap " + name);
  const std::string prom = Shell(tool + " dump --format prometheus --heap " + name);
  EXPECT_THAT(Expose(heap, ExpositionFormat::kOpenMetrics), HasSubstr("# TYPE build info"));
  for (const char* want :
       {"# TYPE requests counter", "# TYPE temperature_celsius gauge", "# UNIT latency_seconds",
        "# TYPE payload_bytes summary", "# TYPE build info", "# TYPE mode stateset",
        "temperature_celsius{sensor=\"inf\"} +Inf", "temperature_celsius{sensor=\"nan\"} NaN",
        "path=\"back\\\\slash \\\"quoted\\\"\\nnew line\"} 1 # {trace_id=\"4bf92f3577b34da6\"}",
        "queue_depth{queue=\"mail\",worker_id=\"master\"} 3", "latency_seconds_bucket{",
        // Spectator's meters and summary quantiles.
        "# TYPE rpc_latency_seconds summary",
        "rpc_latency_seconds{method=\"Get\",quantile=\"0.99\"} ", "# TYPE db_query_seconds summary",
        "db_query_seconds_count{table=\"users\"} ", "# TYPE db_query_seconds_max gauge",
        "# TYPE db_query_seconds_sum_of_squares gauge", "# TYPE batch_size_items_max gauge",
        "# TYPE queue_peak gauge", "# TYPE last_refresh_seconds gauge",
        "heartbeat_value{source=\"alive\"} 1", "# TYPE fetch_seconds histogram",
        "fetch_seconds_bucket{backend=\"s3\",le=\"0.001048572\"} ",
        "# TYPE response_bytes histogram",
        "response_bytes_bucket{route=\"/api\",le=\"1020.0\"} "}) {
    EXPECT_THAT(om, HasSubstr(want));
  }
  const std::string base = ::testing::TempDir() + "/" + name;
  std::ofstream(base + ".om") << om;
  std::ofstream(base + ".prom") << prom;
  int rc = -1;
  const std::string parsed = Shell(
      "/usr/bin/python3 -c 'import sys\n"
      "from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n"
      "for f in p(open(sys.argv[1]).read()): print(f.name, f.type, len(f.samples))\n' " +
          base + ".om 2>&1",
      &rc);
  EXPECT_EQ(rc, 0) << parsed << "\n" << om;
  for (const char* fam :
       {"requests counter", "temperature_celsius gauge", "latency_seconds histogram",
        "payload_bytes summary", "build info", "mode stateset", "queue_depth gauge",
        "rpc_latency_seconds summary 6", "db_query_seconds summary 3",
        "db_query_seconds_max gauge 1", "db_query_seconds_sum_of_squares gauge 1",
        "batch_size_items summary 3", "batch_size_items_max gauge 1",
        "batch_size_items_sum_of_squares gauge 1", "queue_peak gauge 1",
        "last_refresh_seconds gauge 1", "heartbeat_value gauge 1", "fetch_seconds histogram 63",
        "response_bytes histogram 280"}) {
    EXPECT_THAT(parsed, HasSubstr(fam));
  }
  // The native histogram: in text, a histogram with the +Inf bucket only.
  EXPECT_THAT(om, HasSubstr("rpc_duration_seconds_bucket{method=\"Get\",le=\"+Inf\"} "));
  EXPECT_THAT(parsed, HasSubstr("rpc_duration_seconds histogram 4"));
  const std::string lint = Shell("/usr/bin/promtool check metrics < " + base + ".prom 2>&1", &rc);
  // 0 is clean; 3 means the text parsed and only the linter has remarks. 1 is a parse error.
  EXPECT_TRUE(rc == 0 || rc == 3) << rc << lint << "\n" << prom;
  EXPECT_THAT(lint, ::testing::Not(HasSubstr("error while linting")));
  EXPECT_THAT(om, ::testing::Not(HasSubstr("source=\"gone\"")));  // NaN under a ttl
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitChild(pid), 0);
  reaper.pid = -1;
  EXPECT_THROW(Heap::Open(name), Error);  // every_type removed its heap
}

// A real Prometheus server scrapes the embedded endpoint over a heap a forked worker updates.
TEST(PrometheusTest, RealServerScrapesWhatAWorkerWrote) {
  if (!ScrapingPrometheus::Installed()) GTEST_SKIP() << "prometheus not installed";
  const std::string name = UniqueHeapName("prom");
  Heap heap = Heap::Create(name);
  Registry registry(heap);
  auto& jobs = registry.AddCounter("e2e_jobs", "Jobs", {"kind"});
  HttpExposer exposer(heap, {.port = 0});
  const pid_t worker = ForkChild([&] {
    heap.AttachWorker();
    jobs.Labels("mail").Inc(1234);
    return 0;
  });
  ASSERT_EQ(WaitChild(worker), 0);

  ScrapingPrometheus prom(::testing::TempDir() + "/" + name + "-prom", exposer.port());
  std::string query;
  bool up = false, value = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && !(up && value)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    up = prom.TargetUp();
    query = prom.Get("/api/v1/query?query=e2e_jobs_total");
    value = query.find("\"1234\"") != std::string::npos;
  }
  EXPECT_TRUE(up) << prom.Get("/api/v1/targets") << prom.LogTail();
  EXPECT_TRUE(value) << query;
  EXPECT_THAT(query, HasSubstr("\"kind\":\"mail\""));
  Heap::Remove(name);
}

}  // namespace
}  // namespace shmetrics
