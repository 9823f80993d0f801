// The protobuf exposition end to end: every type of examples/every_type decoded by libprotobuf's
// Python module and compared with the OpenMetrics text sample for sample
// (tests/e2e/protobuf_vs_text.py), the same gzip'd from the HTTP endpoint, and a real Prometheus
// server (Debian's 2.42, --enable-feature=native-histograms, which asks for protobuf first)
// storing what a text scrape shows.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "e2e/prefork_helpers.h"
#include "expose/gzip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shmetrics/exposition.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::EveryTypeReaper;
using ::shmetrics::testing::ParseOpenMetrics;
using ::shmetrics::testing::ScrapingPrometheus;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::StartEveryType;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// What Prometheus 2.42 sends with --enable-feature=native-histograms.
constexpr char kProtobufAccept[] =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const std::string kPb2Dir = std::string(SHMETRICS_BINARY_DIR) + "/tests/proto_py";
const std::string kCompare = std::string(SHMETRICS_SOURCE_DIR) + "/tests/e2e/protobuf_vs_text.py";

// Why the protobuf cannot be decoded here, or empty when it can.
std::string NoDecoder() {
  if (access((kPb2Dir + "/metrics_pb2.py").c_str(), R_OK) != 0) {
    return "no Python classes of metrics.proto (protoc was not found at configure time)";
  }
  int rc = -1;
  Shell("/usr/bin/python3 -c 'import google.protobuf, prometheus_client' 2>&1", &rc);
  return rc == 0 ? "" : "python3-protobuf or python3-prometheus-client is not installed";
}

std::string Write(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// protobuf_vs_text.py on the two files (and its further arguments): its output, and *rc its
// exit status.
std::string Compare(const std::string& pb_file, const std::string& om_file, int* rc,
                    const std::string& more = "") {
  return Shell("/usr/bin/python3 " + kCompare + " " + kPb2Dir + " " + pb_file + " " + om_file +
                   " " + more + " 2>&1",
               rc);
}

TEST(ProtobufExpositionTest, EveryTypeDecodesToTheTextSampleForSample) {
  if (const std::string why = NoDecoder(); !why.empty()) GTEST_SKIP() << why;
  const std::string name = UniqueHeapName("pb_every");
  const pid_t pid = StartEveryType(name);
  ASSERT_GT(pid, 0);
  EveryTypeReaper reaper{pid, name};
  const std::string tool = std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics";
  // Wait until its loop has run (the histogram exists from the first iteration), then stop it so
  // that both formats show one state of the heap.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         Shell(tool + " dump --heap " + name).find("latency_seconds_count") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status));
  const std::string base = ::testing::TempDir() + "/" + name;
  int rc = -1;
  Shell(tool + " dump --format protobuf --heap " + name + " > " + base + ".pb", &rc);
  EXPECT_EQ(rc, 0);
  const std::string om = Shell(tool + " dump --heap " + name);
  Write(base + ".om", om);
  {
    // The public API writes the same.
    const Heap heap = Heap::Open(name, {.read_only = true});
    Write(base + ".api.pb", Expose(heap, ExpositionFormat::kProtobuf));
  }
  kill(pid, SIGCONT);

  // An age gauge is the time since an event, read at each scrape: the one sample that differs.
  const std::string ignore = "--ignore last_refresh_seconds";
  for (const char* pb : {".pb", ".api.pb"}) {
    const std::string result = Compare(base + pb, base + ".om", &rc, ignore);
    EXPECT_EQ(rc, 0) << pb << ": " << result << "\n" << om;
    EXPECT_THAT(result, StartsWith("OK ")) << pb;
    // every_type's native histogram went through with its buckets, adding up to its count.
    EXPECT_THAT(result, HasSubstr("native: rpc_duration_seconds{method=\"Get\"}")) << pb;
    std::cout << pb << ": " << result;
  }
  // Every family of every_type took part, with its exemplars and created timestamps.
  const std::string printed = Compare(base + ".pb", "--print", &rc);
  for (const char* want :
       {"requests_total{path=\"/\"}", "build_info{", "mode{component=\"api\",mode=\"serving\"}",
        "temperature_celsius{", "latency_seconds_bucket{", "rpc_latency_seconds{",
        "fetch_seconds_bucket{", "requests_created{", "latency_seconds_created{"}) {
    EXPECT_THAT(printed, HasSubstr(want));
  }
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitChild(pid), 0);
  reaper.pid = -1;
  for (const char* ext : {".pb", ".api.pb", ".om"}) std::remove((base + ext).c_str());
}

// What worker w observes into the native histogram: 1 ms to 1 s in 1 ms steps, and 0.5 s to
// 2.5 s in 10 ms steps.
std::vector<double> WorkerValues(int w) {
  std::vector<double> v;
  for (int i = 0; i < (w == 0 ? 1000 : 200); ++i)
    v.push_back(w == 0 ? 0.001 * (i + 1) : 0.5 + 0.01 * i);
  return v;
}

// The q quantile of both workers' values as Prometheus defines it over exact data: the value of
// rank ceil(q * n).
double ExactQuantile(double q) {
  std::vector<double> all = WorkerValues(0);
  const std::vector<double> more = WorkerValues(1);
  all.insert(all.end(), more.begin(), more.end());
  std::sort(all.begin(), all.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(all.size())));
  return all[std::max<size_t>(rank, 1) - 1];
}

// A heap of one series of each Prometheus type (with exemplars) and a native histogram, and an
// endpoint over it.
class ProtobufEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueHeapName("pb_http");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    registry_->AddCounter("pb_jobs", "Jobs", {"kind"})
        .Labels("mail")
        .IncWithExemplar(1234, {{"trace_id", "abc"}});
    registry_->AddGauge("pb_temperature", "Temperature", {"room"}, {.unit = "celsius"})
        .Labels("lab")
        .Set(21.5);
    auto& latency = registry_->AddHistogram("pb_latency", "Latency", {"route"},
                                            {.unit = "seconds", .buckets = {0.01, 0.1, 1}});
    latency.Labels("/a").ObserveWithExemplar(0.05, {{"trace_id", "t1"}});
    latency.Labels("/a").Observe(0.5);
    latency.Labels("/a").ObserveWithExemplar(7, {{"trace_id", "t2"}});
    auto& quantiles = registry_->AddSummary("pb_rpc", "RPC latency", {"method"},
                                            {.unit = "seconds", .quantiles = {0.5, 0.9}});
    for (int i = 1; i <= 100; ++i) quantiles.Labels("Get").Observe(0.001 * i);
    registry_->AddSummary("pb_payload", "Payload", {}, {.unit = "bytes"}).Labels().Observe(100);
    registry_->AddInfo("pb_build", "Build", {"version"}).Labels("1.2.3");
    registry_->AddStateSet("pb_mode", "Mode", {}, {"on", "off"}).Labels().SetOnly("on");
    // A native histogram that two worker processes observe into.
    auto& native = registry_->AddNativeHistogram("pb_native", "Native latency", {"route"},
                                                 {.unit = "seconds", .schema = 3});
    for (int w = 0; w < 2; ++w) {
      const pid_t worker = ::shmetrics::testing::ForkChild([&] {
        heap_->AttachWorker();
        for (const double v : WorkerValues(w)) native.Labels("/b").Observe(v);
        return 0;
      });
      ASSERT_EQ(WaitChild(worker), 0);
    }
    exposer_ = std::make_unique<HttpExposer>(
        *heap_, HttpExposerOptions{.port = 0, .process_metrics = false});
    url_ = "http://127.0.0.1:" + std::to_string(exposer_->port()) + "/metrics";
  }
  void TearDown() override {
    exposer_.reset();
    registry_.reset();
    heap_.reset();
    Heap::Remove(name_);
  }

  std::string name_, url_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<HttpExposer> exposer_;
};

TEST_F(ProtobufEndpointTest, GzippedProtobufOverARealSocketEqualsTheText) {
  if (const std::string why = NoDecoder(); !why.empty()) GTEST_SKIP() << why;
  const std::string base = ::testing::TempDir() + "/" + name_;
  // No --compressed: curl hands over the body as it came, gzip'd.
  const std::string headers =
      Shell("curl -s -D - -o " + base + ".pb.gz -H 'Accept: " + kProtobufAccept +
            "' -H 'Accept-Encoding: gzip' " + url_);
  EXPECT_THAT(headers, HasSubstr("Content-Type: application/vnd.google.protobuf; "
                                 "proto=io.prometheus.client.MetricFamily; encoding=delimited"));
  EXPECT_THAT(headers, HasSubstr("Content-Encoding: gzip"));
  std::ifstream in(base + ".pb.gz", std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto pb = expose::GzipDecompress(gz, 1 << 24);
  ASSERT_TRUE(pb.ok()) << pb.status();
  Write(base + ".pb", *pb);
  const std::string om =
      Shell("curl -s -H 'Accept: application/openmetrics-text;version=1.0.0' " + url_);
  Write(base + ".om", om);
  int rc = -1;
  const std::string result = Compare(base + ".pb", base + ".om", &rc);
  EXPECT_EQ(rc, 0) << result << "\n" << om;
  EXPECT_THAT(result, StartsWith("OK "));
  // The native histogram went through as one, its buckets adding up to its count.
  EXPECT_THAT(result, HasSubstr("native: pb_native_seconds{route=\"/b\"}"));
  EXPECT_THAT(Compare(base + ".pb", "--print", &rc),
              HasSubstr("pb_jobs_total{kind=\"mail\"} 1234.0"));
  for (const char* ext : {".pb.gz", ".pb", ".om"}) std::remove((base + ext).c_str());
}

// The samples of the test's families (pb_*) in an OpenMetrics text that a Prometheus server
// stores from a protobuf scrape as float samples: all but the `_created` ones, which Prometheus
// 2.42 does not ingest, and the native histogram's, which it stores as one native sample.
std::map<std::string, double> StoredSamples(const std::string& om) {
  std::string error;
  auto parsed = ParseOpenMetrics(om, &error);
  EXPECT_TRUE(parsed.has_value()) << error;
  std::map<std::string, double> out;
  if (!parsed) return out;
  for (const auto& [k, v] : *parsed) {
    if (k.starts_with("pb_") && !k.starts_with("pb_native") &&
        k.find("_created{") == std::string::npos) {
      out[k] = v;
    }
  }
  return out;
}

TEST_F(ProtobufEndpointTest, RealPrometheusStoresFromProtobufWhatATextScrapeShowsAndTheNative) {
  if (!ScrapingPrometheus::Installed()) GTEST_SKIP() << "prometheus not installed";
  const std::string om =
      Shell("curl -s -H 'Accept: application/openmetrics-text;version=1.0.0' " + url_);
  const std::map<std::string, double> want = StoredSamples(om);
  // pb_jobs 1, pb_temperature 1, pb_latency 6, pb_rpc 4, pb_payload 2, pb_build 1, pb_mode 2.
  ASSERT_EQ(want.size(), 17u) << om;
  ScrapingPrometheus prom(::testing::TempDir() + "/" + name_ + "-prom", exposer_->port(),
                          {"--enable-feature=native-histograms"});
  std::map<std::string, double> got;
  std::string metadata;
  // The metadata tells the formats apart: from protobuf a counter's family is named with
  // `_total` and an info is a gauge named with `_info`; from OpenMetrics both are named without.
  const auto from_protobuf = [&] {
    return metadata.find("\"pb_jobs_total\":[{\"type\":\"counter\"") != std::string::npos &&
           metadata.find("\"pb_build_info\":[{\"type\":\"gauge\"") != std::string::npos;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    got = prom.Query("{__name__=~\"pb_.+\"}");
    metadata = prom.Get("/api/v1/metadata");
    if (got.size() >= want.size() && from_protobuf()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(from_protobuf()) << metadata;
  EXPECT_EQ(got.size(), want.size()) << prom.LogTail();
  for (const auto& [series, value] : want) {
    const auto it = got.find(series);
    if (it == got.end()) {
      ADD_FAILURE() << "Prometheus lacks " << series << " " << value;
    } else {
      EXPECT_EQ(it->second, value) << series;
    }
  }
  for (const auto& [series, value] : got) {
    EXPECT_TRUE(want.contains(series)) << "only in Prometheus: " << series << " " << value;
  }

  // The native histogram: its count, and its 0.9 quantile within the schema's relative error of
  // the exact one (any point of the bucket holding the exact quantile is).
  const std::string count_key = "{route=\"/b\"}";
  std::map<std::string, double> count, quantile;
  const auto native_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < native_deadline) {
    count = prom.Query("histogram_count(pb_native_seconds)");
    quantile = prom.Query("histogram_quantile(0.9, pb_native_seconds)");
    if (count.contains(count_key) && quantile.contains(count_key)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(count.contains(count_key)) << prom.Get("/api/v1/query?query=pb_native_seconds");
  EXPECT_EQ(count[count_key], 1200);
  ASSERT_TRUE(quantile.contains(count_key));
  const double exact = ExactQuantile(0.9);
  const double bound = std::exp2(std::exp2(-3)) - 1;  // schema 3: 2^(1/8) - 1, 9.05%
  EXPECT_LE(std::fabs(quantile[count_key] / exact - 1), bound)
      << "Prometheus " << quantile[count_key] << ", exact " << exact;
  std::cout << "histogram_quantile(0.9) " << quantile[count_key] << ", exact " << exact << "\n";
}

}  // namespace
}  // namespace shmetrics
