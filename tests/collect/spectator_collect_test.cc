// Collection of Spectator's meters and summary quantiles: resets under concurrent writers,
// quantile scrapes under concurrent writers, name filters, and damaged heaps.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collect/collector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meters/layout.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"

namespace shmetrics::collect {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;

// Keeps the gauges and summaries the collector emits.
class Recorder : public expose::Encoder {
 public:
  void BeginFamily(const expose::FamilyInfo& f) override { family_ = std::string(f.name); }
  void Counter(expose::LabelSpan, double, std::optional<double>, const expose::Exemplar*) override {
  }
  void Gauge(expose::LabelSpan, double v) override { gauges[family_].push_back(v); }
  void Histogram(expose::LabelSpan, std::span<const double>, std::span<const uint64_t>, double,
                 std::optional<double>, std::span<const expose::Exemplar* const>) override {}
  void Summary(expose::LabelSpan, uint64_t count, double, std::span<const expose::Quantile> q,
               std::optional<double>) override {
    counts[family_] = count;
    quantiles[family_].assign(q.begin(), q.end());
  }
  void Info(expose::LabelSpan) override {}
  void StateSet(expose::LabelSpan, std::span<const expose::State>) override {}
  void EndFamily() override {}
  void Finish() override {}

  std::map<std::string, std::vector<double>> gauges;
  std::map<std::string, uint64_t> counts;
  std::map<std::string, std::vector<expose::Quantile>> quantiles;

 private:
  std::string family_;
};

class SpectatorCollectTest : public ::shmetrics::testing::HeapTest {
 protected:
  Recorder Collected() {
    Recorder r;
    const absl::Status s = Collect(shm::HeapAccess::segment(*heap_), r,
                                   {.self_metrics = false, .process_metrics = false});
    EXPECT_TRUE(s.ok()) << s;
    return r;
  }
  std::string Text(const CollectOptions& o) {
    std::string out;
    auto enc = expose::MakeEncoder(expose::Format::kOpenMetrics, &out);
    EXPECT_TRUE(Collect(shm::HeapAccess::segment(*heap_), *enc, o).ok());
    enc->Finish();
    return out;
  }
};

// Maxima reset by concurrent scrapes lose nothing: the largest value any process set shows in
// some scrape, and no scrape shows a value nobody set.
TEST_F(SpectatorCollectTest, MaxResetsRacingWithWritersLoseNothing) {
  auto& gauge = registry_->AddMaxGauge("peak", "P");
  auto& timer = registry_->AddTimer("op", "O");
  constexpr int kProcs = 3, kSets = 200000;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&, p] {
      MaxGauge g = gauge.Labels();
      Timer t = timer.Labels();
      for (int i = 0; i < kSets; ++i) {
        // Values 0..999; process 1 sets 5000 (and records 5000 ns) once, half-way.
        const int v = (p == 1 && i == kSets / 2) ? 5000 : (i * 7919 + p) % 1000;
        g.Set(v);
        t.Record(std::chrono::nanoseconds(v));
      }
      return 0;
    }));
  }
  double best_gauge = -1, best_timer = -1;
  bool bad = false;
  auto scrape = [&] {
    Recorder r = Collected();
    for (double v : r.gauges["peak"]) {
      best_gauge = std::max(best_gauge, v);
      bad |= v != 5000 && (v < 0 || v > 999 || v != std::floor(v));
    }
    for (double v : r.gauges["op_seconds_max"]) best_timer = std::max(best_timer, v);
  };
  for (pid_t k : kids) {
    while (waitpid(k, nullptr, WNOHANG) == 0) scrape();
  }
  scrape();
  EXPECT_FALSE(bad);
  EXPECT_EQ(best_gauge, 5000);
  EXPECT_DOUBLE_EQ(best_timer, 5000e-9);
  EXPECT_EQ(timer.Labels().Count(), uint64_t{kProcs} * kSets);
  // Nothing set since the last scrape: the gauge is absent and the timer's max 0.
  Recorder r = Collected();
  EXPECT_TRUE(r.gauges["peak"].empty());
  EXPECT_EQ(r.gauges["op_seconds_max"], std::vector<double>{0});
}

// Quantiles scraped while processes observe are ordered, and the final scrape is exact to 1%.
// Writers pause half-way until a scrape has seen them all there, so some scrapes fall between
// writes however the machine schedules the processes.
TEST_F(SpectatorCollectTest, QuantileScrapesUnderConcurrentWriters) {
  auto& f = registry_->AddSummary("lat", "L", {}, {.quantiles = {0.1, 0.5, 0.9, 0.99}});
  constexpr int kProcs = 3, kObs = 100000;
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&] {
      close(go[1]);
      Summary s = f.Labels();
      for (int i = 1; i <= kObs; ++i) {  // every process: 1..kObs
        if (i == kObs / 2 + 1) {
          char c;
          if (read(go[0], &c, 1) != 1) return 1;
        }
        s.Observe(i);
      }
      return 0;
    }));
  }
  close(go[0]);
  int scrapes = 0;
  bool released = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto scrape = [&] {
    Recorder r = Collected();
    const auto& q = r.quantiles["lat"];
    EXPECT_EQ(q.size(), 4u);
    for (size_t i = 1; i < q.size(); ++i) {
      if (!std::isnan(q[i - 1].value)) {
        EXPECT_LE(q[i - 1].value, q[i].value) << "scrape " << scrapes;
      }
    }
    ++scrapes;
    return r.counts["lat"];
  };
  while (!released && std::chrono::steady_clock::now() < deadline) {
    if (scrape() == uint64_t{kProcs} * (kObs / 2)) {
      ASSERT_EQ(write(go[1], std::string(kProcs, 'g').data(), kProcs), kProcs);
      released = true;
    }
  }
  close(go[1]);
  for (pid_t k : kids) {
    int status = 0;
    while (waitpid(k, &status, WNOHANG) == 0) scrape();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_TRUE(released);
  Recorder r = Collected();
  EXPECT_EQ(r.counts["lat"], uint64_t{kProcs} * kObs);
  // Each value kProcs times: the nearest-rank q-quantile is ceil(q * kObs).
  for (const auto& q : r.quantiles["lat"]) {
    const double exact = std::ceil(q.quantile * kObs);
    EXPECT_LE(std::abs(q.value - exact), 0.01 * exact) << q.quantile;
  }
}

TEST_F(SpectatorCollectTest, NameFilterSelectsTimersByAnySampleName) {
  registry_->AddTimer("db", "D").Labels().Record(std::chrono::milliseconds(1));
  registry_->AddGauge("other", "O").Labels().Set(1);
  for (const char* name : {"db_seconds_max", "db_seconds_sum_of_squares", "db_seconds_count"}) {
    const std::string text = Text({.names = {name}, .self_metrics = false, .reset_maxima = false});
    EXPECT_THAT(text, HasSubstr("db_seconds_max 0.001\n")) << name;
    EXPECT_THAT(text, HasSubstr("db_seconds_sum_of_squares 1e-06\n")) << name;
    EXPECT_THAT(text, Not(HasSubstr("other")));
  }
  // Only timers and distribution summaries have _max samples.
  EXPECT_THAT(Text({.names = {"other_max"}, .self_metrics = false}), Not(HasSubstr("other")));
}

// Collecting from a read-only copy whose records were damaged fails cleanly, never crashes.
TEST_F(SpectatorCollectTest, DamagedCopiesFailCleanly) {
  registry_->AddTimer("t", "T", {"a"}).Labels("x").Record(std::chrono::microseconds(3));
  registry_->AddDistributionSummary("d", "D").Labels().Record(2);
  registry_->AddMaxGauge("m", "M").Labels().Set(1);
  registry_->AddAgeGauge("g", "G").Labels().Reset();
  registry_->AddPercentileTimer("p", "P", {}, {.max = std::chrono::seconds(1)})
      .Labels()
      .Record(std::chrono::milliseconds(5));
  auto& q = registry_->AddSummary(
      "q", "Q", {}, {.quantiles = {0.5}, .age_buckets = 2, .min_value = 1, .max_value = 1000});
  q.Labels().Observe(10);
  const shm::Segment& seg = shm::HeapAccess::segment(*heap_);
  const std::string path = ::testing::TempDir() + "/" + name_ + ".copy";
  const std::string bytes(seg.base(), heap_->usage().committed_bytes);
  auto collect_copy = [&](const std::string& copy) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << copy;
    auto s = shm::Segment::Open(shm::Location::ForPath(path), {.read_only = true});
    if (!s.ok()) return s.status();
    std::string out;
    auto enc = expose::MakeEncoder(expose::Format::kOpenMetrics, &out);
    return Collect(**s, *enc, {.process_metrics = false});
  };
  ASSERT_TRUE(collect_copy(bytes).ok());

  // A summary definition that asks for a huge sketch, and one that disagrees with its records.
  const uint64_t fam = seg.Find(seg.header().root_table.load(), "q");
  ASSERT_NE(fam, 0u);
  const auto* rec = seg.At<meters::FamilyRecord>(fam);
  const std::string blob(seg.base() + rec->definition, rec->definition_len);
  for (uint32_t age_buckets : {1000000u, 3u}) {
    auto def = meters::DecodeDefinition(blob);
    ASSERT_TRUE(def.ok());
    def->age_buckets = age_buckets;
    const std::string patched = meters::EncodeDefinition(*def);
    ASSERT_EQ(patched.size(), blob.size());
    std::string copy = bytes;
    std::memcpy(copy.data() + rec->definition, patched.data(), patched.size());
    const absl::Status s = collect_copy(copy);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("\"q\"")) << s;
  }

  // Random damage anywhere in the records.
  const uint64_t used = heap_->usage().used_bytes;
  uint64_t rng = 7;
  int failures = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::string copy = bytes;
    testing::DamageRecords(&copy, used, &rng);
    if (!collect_copy(copy).ok()) ++failures;
  }
  EXPECT_GT(failures, 0);
  unlink(path.c_str());
}

}  // namespace
}  // namespace shmetrics::collect
