#include "process/process_metrics.h"

#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "expose/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shmetrics::process {
namespace {

using expose::MetricType;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records every call as one line of text, and every family with its series, so tests compare
// whole streams. Calls the process metrics must never make are recorded as "UNEXPECTED ...".
class RecordingEncoder : public expose::Encoder {
 public:
  struct Series {
    std::string labels;  // name=value,...
    double value;
  };
  struct Family {
    std::string name;
    MetricType type;
    std::string help;
    std::string unit;
    std::vector<Series> series;
  };

  void BeginFamily(const expose::FamilyInfo& f) override {
    calls.push_back("BeginFamily " + std::string(f.name));
    families.push_back({std::string(f.name), f.type, std::string(f.help), std::string(f.unit), {}});
  }
  void Counter(expose::LabelSpan labels, double value, std::optional<double> created,
               const expose::Exemplar* exemplar) override {
    calls.push_back(
        absl::StrCat("Counter created=", created.has_value(), " exemplar=", exemplar != nullptr));
    AddSeries(MetricType::kCounter, labels, value);
  }
  void Gauge(expose::LabelSpan labels, double value) override {
    calls.push_back("Gauge");
    AddSeries(MetricType::kGauge, labels, value);
  }
  void Histogram(expose::LabelSpan, std::span<const double>, std::span<const uint64_t>, double,
                 std::optional<double>, std::span<const expose::Exemplar* const>) override {
    calls.push_back("UNEXPECTED Histogram");
  }
  void Summary(expose::LabelSpan, uint64_t, double, std::span<const expose::Quantile>,
               std::optional<double>) override {
    calls.push_back("UNEXPECTED Summary");
  }
  void Info(expose::LabelSpan) override { calls.push_back("UNEXPECTED Info"); }
  void StateSet(expose::LabelSpan, std::span<const expose::State>) override {
    calls.push_back("UNEXPECTED StateSet");
  }
  void EndFamily() override { calls.push_back("EndFamily"); }
  void Finish() override { calls.push_back("UNEXPECTED Finish"); }

  std::vector<std::string> calls;
  std::vector<Family> families;

 private:
  void AddSeries(MetricType type, expose::LabelSpan labels, double value) {
    if (families.empty() || families.back().type != type) {
      calls.push_back("UNEXPECTED series outside a family of its type");
      return;
    }
    std::vector<std::string> parts;
    for (const expose::Label& l : labels)
      parts.push_back(std::string(l.name) + "=" + std::string(l.value));
    families.back().series.push_back({absl::StrJoin(parts, ","), value});
  }
};

ProcessStats Sample(double base) {
  ProcessStats s;
  s.cpu_user_seconds = base + 0.25;
  s.cpu_system_seconds = base + 0.5;
  s.resident_memory_bytes = static_cast<uint64_t>(base) * 4096;
  s.virtual_memory_bytes = static_cast<uint64_t>(base) * 8192;
  s.open_fds = static_cast<uint64_t>(base) + 1;
  s.max_fds = 1024;
  s.threads = static_cast<uint64_t>(base) + 2;
  s.voluntary_context_switches = static_cast<uint64_t>(base) + 3;
  s.involuntary_context_switches = static_cast<uint64_t>(base) + 4;
  s.minor_page_faults = static_cast<uint64_t>(base) + 5;
  s.major_page_faults = static_cast<uint64_t>(base) + 6;
  s.start_time_seconds = 1.7e9 + base;
  return s;
}

TEST(EncodeProcessMetrics, EmitsEveryFamilyWithOneSeriesPerWorker) {
  const WorkerProcessStats workers[] = {{"0", Sample(10)}, {"master", Sample(100)}};
  RecordingEncoder enc;
  EncodeProcessMetrics(enc, workers);

  struct Expected {
    std::string name;
    MetricType type;
    std::string unit;
    double worker0;
    double master;
  };
  const Expected expected[] = {
      {"process_cpu_seconds", MetricType::kCounter, "seconds", 20.75, 200.75},
      {"process_cpu_user_seconds", MetricType::kCounter, "seconds", 10.25, 100.25},
      {"process_cpu_system_seconds", MetricType::kCounter, "seconds", 10.5, 100.5},
      {"process_resident_memory_bytes", MetricType::kGauge, "bytes", 40960, 409600},
      {"process_virtual_memory_bytes", MetricType::kGauge, "bytes", 81920, 819200},
      {"process_open_fds", MetricType::kGauge, "", 11, 101},
      {"process_max_fds", MetricType::kGauge, "", 1024, 1024},
      {"process_threads", MetricType::kGauge, "", 12, 102},
      {"process_start_time_seconds", MetricType::kGauge, "seconds", 1.7e9 + 10, 1.7e9 + 100},
      {"process_voluntary_context_switches", MetricType::kCounter, "", 13, 103},
      {"process_involuntary_context_switches", MetricType::kCounter, "", 14, 104},
      {"process_minor_page_faults", MetricType::kCounter, "", 15, 105},
      {"process_major_page_faults", MetricType::kCounter, "", 16, 106},
  };
  ASSERT_EQ(enc.families.size(), std::size(expected));
  for (size_t i = 0; i < std::size(expected); ++i) {
    const auto& got = enc.families[i];
    const Expected& want = expected[i];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.unit, want.unit);
    EXPECT_FALSE(got.help.empty());
    // OpenMetrics: a unit is the name's suffix; counters are named without _total.
    if (!got.unit.empty()) {
      EXPECT_TRUE(absl::EndsWith(got.name, absl::StrCat("_", got.unit)));
    }
    EXPECT_FALSE(absl::EndsWith(got.name, "_total"));
    ASSERT_EQ(got.series.size(), 2u);
    EXPECT_EQ(got.series[0].labels, "worker_id=0");
    EXPECT_DOUBLE_EQ(got.series[0].value, want.worker0);
    EXPECT_EQ(got.series[1].labels, "worker_id=master");
    EXPECT_DOUBLE_EQ(got.series[1].value, want.master);
  }
}

TEST(EncodeProcessMetrics, CallSequenceIsBalancedWithoutCreatedOrExemplars) {
  const WorkerProcessStats workers[] = {{"3", Sample(1)}};
  RecordingEncoder enc;
  EncodeProcessMetrics(enc, workers);
  ASSERT_EQ(enc.calls.size(), 13u * 3);
  EXPECT_THAT(std::vector<std::string>(enc.calls.begin(), enc.calls.begin() + 6),
              ElementsAre("BeginFamily process_cpu_seconds", "Counter created=0 exemplar=0",
                          "EndFamily", "BeginFamily process_cpu_user_seconds",
                          "Counter created=0 exemplar=0", "EndFamily"));
  for (const std::string& c : enc.calls) EXPECT_FALSE(absl::StartsWith(c, "UNEXPECTED")) << c;
}

TEST(EncodeProcessMetrics, CustomLabelNameAndUnlimitedMaxFds) {
  ProcessStats s = Sample(1);
  s.max_fds = std::numeric_limits<uint64_t>::max();
  const WorkerProcessStats workers[] = {{"a", s}, {"b", s}, {"c", s}};
  RecordingEncoder enc;
  EncodeProcessMetrics(enc, workers, "pid_slot");
  ASSERT_EQ(enc.families.size(), 13u);
  for (const auto& f : enc.families) {
    ASSERT_EQ(f.series.size(), 3u) << f.name;
    EXPECT_EQ(f.series[0].labels, "pid_slot=a");
    EXPECT_EQ(f.series[1].labels, "pid_slot=b");
    EXPECT_EQ(f.series[2].labels, "pid_slot=c");
  }
  EXPECT_EQ(enc.families[6].name, "process_max_fds");
  EXPECT_EQ(enc.families[6].series[0].value, 18446744073709551616.0);
}

TEST(EncodeProcessMetrics, NoWorkersEmitsNothing) {
  RecordingEncoder enc;
  EncodeProcessMetrics(enc, {});
  EXPECT_THAT(enc.calls, IsEmpty());
}

}  // namespace
}  // namespace shmetrics::process
