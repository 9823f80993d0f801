#include "collect/collector.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"

namespace shmetrics::collect {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;

// Records histogram snapshots and gauge values as the collector emits them.
class RecordingEncoder : public expose::Encoder {
 public:
  void BeginFamily(const expose::FamilyInfo& f) override { family_ = std::string(f.name); }
  void Counter(expose::LabelSpan, double v, std::optional<double>,
               const expose::Exemplar*) override {
    counters[family_] += v;
  }
  void Gauge(expose::LabelSpan labels, double v) override {
    std::string key = family_;
    for (const auto& l : labels) key += "," + std::string(l.name) + "=" + std::string(l.value);
    gauges[key] = v;
  }
  void Histogram(expose::LabelSpan, std::span<const double>, std::span<const uint64_t> cumulative,
                 double, std::optional<double>, std::span<const expose::Exemplar* const>) override {
    histograms.emplace_back(cumulative.begin(), cumulative.end());
  }
  void Summary(expose::LabelSpan, uint64_t, double, std::span<const expose::Quantile>,
               std::optional<double>) override {}
  void Info(expose::LabelSpan) override {}
  void StateSet(expose::LabelSpan, std::span<const expose::State>) override {}
  void EndFamily() override {}
  void Finish() override {}

  std::map<std::string, double> counters;
  std::map<std::string, double> gauges;
  std::vector<std::vector<uint64_t>> histograms;

 private:
  std::string family_;
};

class CollectorTest : public testing::HeapTest {
 protected:
  void SetUp() override { CreateHeap("col"); }
  std::string Scrape(expose::Format format, const CollectOptions& options = {}) {
    std::string out;
    auto enc = expose::MakeEncoder(format, &out);
    const absl::Status s = Collect(shm::HeapAccess::segment(*heap_), *enc, options);
    EXPECT_TRUE(s.ok()) << s;
    enc->Finish();
    return out;
  }
  void Populate() {
    auto& c = registry_->AddCounter("http_requests", "Requests \"served\"\nwith \\ escapes",
                                    {"method", "code"});
    c.Labels("GET", "200").Inc(3);
    c.Labels("P\"O\\ST\n", "500").IncWithExemplar(1, {{"trace_id", "abc"}});
    registry_->AddGauge("temperature", "T", {"room"}, {.unit = "celsius"}).Labels("a").Set(-1.5);
    auto h =
        registry_->AddHistogram("latency", "L", {"route"}, {.unit = "seconds", .buckets = {0.1, 1}})
            .Labels("/x");
    h.Observe(0.05);
    h.ObserveWithExemplar(0.5, {{"trace_id", "def"}});
    h.Observe(7);
    registry_->AddSummary("sizes", "S", {}, {.unit = "bytes"}).Labels().Observe(512);
    registry_->AddInfo("build", "B", {"version"}).Labels("1.2.3");
    registry_->AddStateSet("mode", "M", {}, {"on", "off"}).Labels().SetOnly("on");
  }
};

TEST_F(CollectorTest, EveryTypeInOpenMetrics) {
  Populate();
  const std::string text = Scrape(expose::Format::kOpenMetrics, {.process_metrics = false});
  EXPECT_THAT(text, HasSubstr("# TYPE http_requests counter\n"));
  EXPECT_THAT(text, HasSubstr("http_requests_total{code=\"200\",method=\"GET\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("method=\"P\\\"O\\\\ST\\n\"} 1 # {trace_id=\"abc\"} 1 "));
  EXPECT_THAT(text, HasSubstr("# UNIT temperature_celsius celsius\n"));
  EXPECT_THAT(text, HasSubstr("temperature_celsius{room=\"a\"} -1.5\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr("latency_seconds_bucket{route=\"/x\",le=\"1.0\"} 2 # {trace_id=\"def\"} 0.5"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_count{route=\"/x\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_sum{route=\"/x\"} 7.55\n"));
  EXPECT_THAT(text, HasSubstr("sizes_bytes_count 1\n"));
  EXPECT_THAT(text, HasSubstr("build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mode{mode=\"on\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mode{mode=\"off\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("shmetrics_heap_used_bytes "));
  EXPECT_TRUE(text.ends_with("# EOF\n"));
}

TEST_F(CollectorTest, IndependentParsersAcceptTheOutput) {
  Populate();
  heap_->AttachWorker();
  const std::string om = Scrape(expose::Format::kOpenMetrics);
  EXPECT_THAT(om, HasSubstr("process_resident_memory_bytes{worker_id=\"0\"}"));
  EXPECT_THAT(om, HasSubstr("process_resident_memory_bytes{worker_id=\"master\"}"));
  const std::string prom = Scrape(expose::Format::kPrometheus);
  const std::string dir = ::testing::TempDir() + "/" + name_;
  {
    std::ofstream(dir + ".om") << om;
    std::ofstream(dir + ".prom") << prom;
  }
  if (access("/usr/bin/python3", X_OK) == 0 &&
      system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") == 0) {
    const std::string cmd =
        "/usr/bin/python3 -c 'import sys\n"
        "from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n"
        "fams = list(p(open(sys.argv[1]).read()))\n"
        "names = {f.name for f in fams}\n"
        "assert {\"http_requests\", \"latency_seconds\", \"build\", \"mode\"} <= names, names\n"
        "' " +
        dir + ".om";
    EXPECT_EQ(system(cmd.c_str()), 0) << om;
  }
  if (access("/usr/bin/promtool", X_OK) == 0) {
    // Exit 0 or 3 (lint findings only); 1 is a parse error.
    const int rc =
        system(("/usr/bin/promtool check metrics < " + dir + ".prom >/dev/null 2>&1").c_str());
    EXPECT_TRUE(WIFEXITED(rc) && (WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 3)) << prom;
  }
}

TEST_F(CollectorTest, NameFilterSelectsFamiliesBySampleName) {
  Populate();
  const std::string text =
      Scrape(expose::Format::kOpenMetrics, {.names = {"http_requests_total", "build"}});
  EXPECT_THAT(text, HasSubstr("http_requests_total{"));
  EXPECT_THAT(text, HasSubstr("build_info{"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("latency")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("shmetrics_heap")));
}

TEST_F(CollectorTest, ReadOnlyUnrelatedOpenSeesTheSameValues) {
  Populate();
  Heap ro = Heap::Open(name_, {.read_only = true});
  std::string a, b;
  auto ea = expose::MakeEncoder(expose::Format::kOpenMetrics, &a);
  auto eb = expose::MakeEncoder(expose::Format::kOpenMetrics, &b);
  ASSERT_TRUE(Collect(shm::HeapAccess::segment(*heap_), *ea, {.process_metrics = false}).ok());
  ASSERT_TRUE(Collect(shm::HeapAccess::segment(ro), *eb, {.process_metrics = false}).ok());
  EXPECT_EQ(a, b);
  EXPECT_TRUE(VerifyMetrics(shm::HeapAccess::segment(ro)).ok());
}

TEST_F(CollectorTest, HistogramSnapshotsStayConsistentUnderConcurrentWriters) {
  auto& f = registry_->AddHistogram("lat", "L", {}, {.buckets = LinearBuckets(1, 1, 10)});
  constexpr int kProcs = 4, kObs = 250000;
  // Writers pause half-way until the collector has seen them all there, so some snapshots are
  // taken while they write however the machine schedules the processes.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&, p] {
      close(go[1]);
      Histogram h = f.Labels();
      for (int i = 0; i < kObs; ++i) {
        if (i == kObs / 2) {
          char c;
          if (read(go[0], &c, 1) != 1) return 1;
        }
        h.Observe((i * 7 + p) % 13);
      }
      return 0;
    }));
  }
  close(go[0]);
  std::vector<uint64_t> last;
  int snapshots = 0;
  bool released = false;
  for (;;) {
    RecordingEncoder rec;
    ASSERT_TRUE(Collect(shm::HeapAccess::segment(*heap_), rec,
                        {.self_metrics = false, .process_metrics = false})
                    .ok());
    ASSERT_EQ(rec.histograms.size(), 1u);
    const auto& cum = rec.histograms[0];
    for (size_t i = 1; i < cum.size(); ++i) ASSERT_LE(cum[i - 1], cum[i]);
    if (!last.empty()) {
      for (size_t i = 0; i < cum.size(); ++i) ASSERT_GE(cum[i], last[i]);
    }
    last = cum;
    ++snapshots;
    if (!released && cum.back() == uint64_t{kProcs} * kObs / 2) {
      ASSERT_EQ(write(go[1], std::string(kProcs, 'g').data(), kProcs), kProcs);
      released = true;
    }
    if (cum.back() == uint64_t{kProcs} * kObs) break;
  }
  close(go[1]);
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  EXPECT_TRUE(released);
  EXPECT_GT(snapshots, 1);
  EXPECT_EQ(f.Labels().Count(), uint64_t{kProcs} * kObs);
}

TEST_F(CollectorTest, PerWorkerGaugeModes) {
  auto& sum = registry_->AddGauge("g_sum", "S", {}, {.mode = GaugeMode::kSum});
  auto& live = registry_->AddGauge("g_live", "L", {}, {.mode = GaugeMode::kLiveSum});
  auto& all = registry_->AddGauge("g_all", "A", {}, {.mode = GaugeMode::kAll});
  auto& mx = registry_->AddGauge("g_max", "M", {}, {.mode = GaugeMode::kMax});
  int go[2], set[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(set), 0);
  std::vector<pid_t> kids;
  for (int w = 0; w < 3; ++w) {
    kids.push_back(ForkChild([&, w] {
      const uint32_t id = heap_->AttachWorker();
      sum.Labels().Set(10 + w);
      live.Labels().Set(1);
      all.Labels().Set(static_cast<double>(id));
      mx.Labels().Set(100 + w);
      const char done = 'x';
      if (write(set[1], &done, 1) != 1) return 2;
      char c;
      (void)!read(go[0], &c, 1);
      return 0;
    }));
    // Each worker has attached and set its values before the next starts, so ids follow w.
    char c = 0;
    ASSERT_EQ(read(set[0], &c, 1), 1) << "worker " << w;
  }
  close(set[0]);
  close(set[1]);
  RecordingEncoder rec;
  ASSERT_TRUE(Collect(shm::HeapAccess::segment(*heap_), rec,
                      {.self_metrics = false, .process_metrics = false})
                  .ok());
  EXPECT_EQ(rec.gauges["g_sum"], 33);
  EXPECT_EQ(rec.gauges["g_live"], 3);
  EXPECT_EQ(rec.gauges["g_max"], 102);
  EXPECT_EQ(rec.gauges["g_all,worker_id=1"], 1);
  EXPECT_EQ(rec.gauges["g_all,worker_id=2"], 2);
  // Worker 0 dies: the live sum forgets it, the plain sum keeps its last value.
  kill(kids[0], SIGKILL);
  EXPECT_EQ(WaitChild(kids[0]), 128 + SIGKILL);
  RecordingEncoder after;
  ASSERT_TRUE(Collect(shm::HeapAccess::segment(*heap_), after,
                      {.self_metrics = false, .process_metrics = false})
                  .ok());
  EXPECT_EQ(after.gauges["g_live"], 2);
  EXPECT_EQ(after.gauges["g_sum"], 33);
  for (int i = 0; i < 3; ++i) (void)!write(go[1], "x", 1);
  for (size_t i = 1; i < kids.size(); ++i) EXPECT_EQ(WaitChild(kids[i]), 0);
  close(go[0]);
  close(go[1]);
}

TEST_F(CollectorTest, CorruptCopiesFailCleanly) {
  Populate();
  // Copy the heap file, damage records, and collect from the copy.
  const std::string path = ::testing::TempDir() + "/" + name_ + ".copy";
  const uint64_t used = heap_->usage().used_bytes;
  std::string bytes(reinterpret_cast<const char*>(shm::HeapAccess::segment(*heap_).base()),
                    heap_->usage().committed_bytes);
  uint64_t rng = 99;
  int failures = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::string copy = bytes;
    testing::DamageRecords(&copy, used, &rng);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << copy;
    auto seg = shm::Segment::Open(shm::Location::ForPath(path), {.read_only = true});
    if (!seg.ok()) continue;
    std::string out;
    auto enc = expose::MakeEncoder(expose::Format::kOpenMetrics, &out);
    if (!Collect(**seg, *enc, {.process_metrics = false}).ok()) ++failures;
    (void)VerifyMetrics(**seg);
  }
  EXPECT_GT(failures, 0);
  unlink(path.c_str());
}

}  // namespace
}  // namespace shmetrics::collect
