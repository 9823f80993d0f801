// Spectator's meters: Timer, DistributionSummary, MaxGauge, AgeGauge, gauge time-to-live and the
// percentile meters, with values checked against exact computations, across forked processes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "collect/collector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/internal/percentile_buckets.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"
#include "util/test_clock.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::TestClock;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;
namespace pb = internal::percentile_buckets;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

class SpectatorTest : public ::shmetrics::testing::HeapTest {
 protected:
  // Runs f in `procs` forked processes (f gets the process number) and expects each to exit 0.
  template <typename F>
  static void InProcesses(int procs, F f) {
    std::vector<pid_t> kids;
    for (int p = 0; p < procs; ++p) kids.push_back(ForkChild([&f, p] { return f(p); }));
    for (pid_t k : kids) EXPECT_EQ(WaitChild(k), 0);
  }
};

// --- Timer ---

TEST_F(SpectatorTest, TimerKeepsCountTotalSquaresAndMaxAcrossProcesses) {
  auto& f = registry_->AddTimer("db_query", "Queries", {"table"});
  constexpr int kProcs = 4, kPer = 1000;
  InProcesses(kProcs, [&](int p) {
    Timer t = f.Labels("users");
    for (int i = 1; i <= kPer; ++i) {
      if (!t.Record(microseconds(i + p * kPer))) return 1;
    }
    return 0;
  });
  Timer t = f.Labels("users");
  // Durations 1..4000 us, once each.
  const uint64_t n = kProcs * kPer;
  EXPECT_EQ(t.Count(), n);
  EXPECT_EQ(t.TotalTime(), microseconds(n * (n + 1) / 2));
  double squares = 0;
  for (uint64_t i = 1; i <= n; ++i) squares += 1e6 * static_cast<double>(i * i);
  EXPECT_NEAR(t.TotalOfSquares(), squares, squares * 1e-12);
  EXPECT_EQ(t.Max(), microseconds(n));
  EXPECT_FALSE(t.Record(nanoseconds(-1)));
  EXPECT_EQ(t.Count(), n);

  const std::string text = Scrape();
  EXPECT_THAT(text,
              HasSubstr("# TYPE db_query_seconds summary\n# UNIT db_query_seconds seconds\n"));
  EXPECT_THAT(text, HasSubstr("db_query_seconds_count{table=\"users\"} 4000\n"));
  EXPECT_THAT(text, HasSubstr("db_query_seconds_sum{table=\"users\"} 8.002\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE db_query_seconds_max gauge\n"));
  EXPECT_THAT(text, HasSubstr("db_query_seconds_max{table=\"users\"} 0.004\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE db_query_seconds_sum_of_squares gauge\n"));
  // sum of i^2 us^2 for i = 1..4000, in s^2: 4000*4001*8001/6 * 1e-12.
  EXPECT_THAT(text, HasSubstr("db_query_seconds_sum_of_squares{table=\"users\"} 0.0213413"));
  // That scrape could write the heap, so it emptied the max: the next shows only newer records.
  EXPECT_EQ(t.Max(), nanoseconds(0));
  EXPECT_THAT(Scrape(), HasSubstr("db_query_seconds_max{table=\"users\"} 0\n"));
  t.Record(milliseconds(3));
  EXPECT_THAT(Scrape(), HasSubstr("db_query_seconds_max{table=\"users\"} 0.003\n"));
}

TEST_F(SpectatorTest, ReadOnlyCollectorDoesNotResetMaxima) {
  auto t = registry_->AddTimer("op", "Ops").Labels();
  auto m = registry_->AddMaxGauge("depth", "Depth").Labels();
  t.Record(milliseconds(5));
  m.Set(9);
  Heap ro = Heap::Open(name_, {.read_only = true});
  for (int i = 0; i < 2; ++i) {
    const std::string text = Scrape(ro);
    EXPECT_THAT(text, HasSubstr("op_seconds_max 0.005\n"));
    EXPECT_THAT(text, HasSubstr("depth 9\n"));
  }
  EXPECT_EQ(t.Max(), milliseconds(5));
}

TEST_F(SpectatorTest, TimerScopeRecordsTheScope) {
  auto t = registry_->AddTimer("scoped", "S").Labels();
  const auto before = std::chrono::steady_clock::now();
  {
    auto scope = t.Time();
    std::this_thread::sleep_for(milliseconds(2));
  }
  const auto elapsed = std::chrono::steady_clock::now() - before;
  EXPECT_EQ(t.Count(), 1u);
  EXPECT_GE(t.TotalTime(), milliseconds(2));
  EXPECT_LE(t.TotalTime(), elapsed);
}

TEST_F(SpectatorTest, CompanionNamesAreReserved) {
  registry_->AddTimer("rpc", "R");
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("rpc_seconds_max", "G"); }),
              HasSubstr("would clash"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("rpc_seconds_sum_of_squares", "G"); }),
              HasSubstr("would clash"));
  registry_->AddGauge("size_bytes_max", "taken first");
  EXPECT_THAT(
      ErrorOf([&] { registry_->AddDistributionSummary("size", "S", {}, {.unit = "bytes"}); }),
      HasSubstr("would clash"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddDistributionSummary("y_max", "T"); }),
              HasSubstr("ends in _max"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddTimer("t", "T", {"quantile"}); }), HasSubstr("reserved"));
  // The same timer again is the same family.
  EXPECT_EQ(&registry_->AddTimer("rpc", "R"), &registry_->AddTimer("rpc_seconds", "R"));
}

// --- DistributionSummary ---

TEST_F(SpectatorTest, DistributionSummaryAcrossProcesses) {
  auto& f = registry_->AddDistributionSummary("payload", "Payloads", {}, {.unit = "bytes"});
  InProcesses(3, [&](int p) {
    DistributionSummary d = f.Labels();
    for (int i = 0; i < 100; ++i) d.Record(0.5 * (p * 100 + i));
    return 0;
  });
  DistributionSummary d = f.Labels();
  EXPECT_EQ(d.Count(), 300u);
  double total = 0, squares = 0;
  for (int i = 0; i < 300; ++i) {
    total += 0.5 * i;
    squares += 0.25 * i * i;
  }
  EXPECT_DOUBLE_EQ(d.TotalAmount(), total);
  EXPECT_DOUBLE_EQ(d.TotalOfSquares(), squares);
  EXPECT_EQ(d.Max(), 149.5);
  EXPECT_FALSE(d.Record(-1));
  EXPECT_FALSE(d.Record(std::nan("")));
  EXPECT_FALSE(d.Record(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(d.Count(), 300u);
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("payload_bytes_count 300\n"));
  EXPECT_THAT(text, HasSubstr("payload_bytes_sum 22425\n"));
  EXPECT_THAT(text, HasSubstr("payload_bytes_max 149.5\n"));
  EXPECT_THAT(text, HasSubstr("payload_bytes_sum_of_squares 2238762.5\n"));
}

// --- MaxGauge ---

TEST_F(SpectatorTest, MaxGaugeKeepsTheLargestSinceTheLastScrape) {
  auto& f = registry_->AddMaxGauge("queue_depth_max", "Deepest", {"queue"});
  MaxGauge g = f.Labels("mail");
  EXPECT_TRUE(std::isnan(g.Value()));
  EXPECT_THAT(Scrape(), Not(HasSubstr("queue_depth_max{")));  // empty: not exposed
  InProcesses(4, [&](int p) {
    MaxGauge m = f.Labels("mail");
    for (int i = 0; i < 1000; ++i) m.Set((i * 37 + p * 11) % 1000 - 500.0);
    return 0;
  });
  EXPECT_EQ(g.Value(), 499);
  EXPECT_FALSE(g.Set(std::nan("")));
  g.Set(-1e9);
  EXPECT_THAT(Scrape(), HasSubstr("queue_depth_max{queue=\"mail\"} 499\n"));
  EXPECT_THAT(Scrape(), Not(HasSubstr("queue_depth_max{")));
  g.Set(-3);
  g.Set(-7);
  EXPECT_THAT(Scrape(), HasSubstr("queue_depth_max{queue=\"mail\"} -3\n"));
}

// --- AgeGauge ---

TEST_F(SpectatorTest, AgeGaugeCountsSecondsSinceReset) {
  TestClock clock;
  auto& f = registry_->AddAgeGauge("last_refresh", "Since refresh", {"cache"});
  EXPECT_EQ(f.name(), "last_refresh_seconds");
  AgeGauge a = f.Labels("users");
  EXPECT_EQ(a.LastResetUnixNanos(), 0u);
  auto age = [&] {
    const std::string text = Scrape();
    const std::string key = "last_refresh_seconds{cache=\"users\"} ";
    const size_t at = text.find(key);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + key.size()));
  };
  EXPECT_EQ(age(), 0);  // counts from the series' creation
  clock.Advance(milliseconds(300));
  EXPECT_EQ(age(), 0.3);
  clock.Advance(milliseconds(200));
  const uint64_t reset_at = clock.now();
  const pid_t kid = ForkChild([&] {  // the child inherits the clock
    f.Labels("users").Reset();
    return 0;
  });
  ASSERT_EQ(WaitChild(kid), 0);
  EXPECT_EQ(a.LastResetUnixNanos(), reset_at);
  EXPECT_EQ(age(), 0);
  clock.Advance(milliseconds(250));
  EXPECT_EQ(age(), 0.25);  // keeps growing without updates
  EXPECT_THAT(ErrorOf([&] { registry_->AddAgeGauge("x", "X", {}, {.unit = "bytes"}); }),
              HasSubstr("seconds"));
}

// --- Gauge time-to-live ---

TEST_F(SpectatorTest, GaugeTtlStopsExposingStaleAndNaNValues) {
  TestClock clock;
  auto& f = registry_->AddGauge("temp", "T", {"room"}, {.ttl = milliseconds(400)});
  auto& plain = registry_->AddGauge("plain", "P", {"room"});
  f.Labels("never");
  f.Labels("a").Set(21);
  plain.Labels("a").Set(std::nan(""));
  std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("temp{room=\"a\"} 21\n"));
  EXPECT_THAT(text, Not(HasSubstr("temp{room=\"never\"}")));  // never set
  EXPECT_THAT(text, HasSubstr("plain{room=\"a\"} NaN\n"));    // without a ttl NaN shows
  f.Labels("a").Set(std::nan(""));
  EXPECT_THAT(Scrape(), Not(HasSubstr("temp{room=\"a\"}")));
  f.Labels("a").Set(22);
  EXPECT_THAT(Scrape(), HasSubstr("temp{room=\"a\"} 22\n"));
  clock.Advance(milliseconds(400));  // exactly the ttl: still fresh
  EXPECT_THAT(Scrape(), HasSubstr("temp{room=\"a\"} 22\n"));
  clock.Advance(nanoseconds(1));
  EXPECT_THAT(Scrape(), Not(HasSubstr("temp{room=\"a\"}")));
  // Another process (inheriting the clock) sets it: back, counting from 0, not from the expired 22.
  const pid_t kid = ForkChild([&] {
    f.Labels("a").Inc(2);
    return 0;
  });
  ASSERT_EQ(WaitChild(kid), 0);
  EXPECT_THAT(Scrape(), HasSubstr("temp{room=\"a\"} 2\n"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("bad", "B", {}, {.ttl = microseconds(5)}); }),
              HasSubstr("ttl"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("bad", "B", {}, {.ttl = milliseconds(-5)}); }),
              HasSubstr("ttl"));
  // A different ttl is a different definition.
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("temp", "T", {"room"}); }),
              HasSubstr("already registered"));
}

TEST_F(SpectatorTest, PerWorkerGaugeTtlDropsStaleWorkers) {
  TestClock clock;
  auto& f =
      registry_->AddGauge("busy", "B", {}, {.mode = GaugeMode::kSum, .ttl = milliseconds(400)});
  const pid_t kid = ForkChild([&] {
    heap_->AttachWorker();
    f.Labels().Set(5);
    return 0;
  });
  ASSERT_EQ(WaitChild(kid), 0);
  f.Labels().Set(1);
  EXPECT_THAT(Scrape(), HasSubstr("busy 6\n"));
  clock.Advance(milliseconds(300));
  f.Labels().Set(2);
  EXPECT_THAT(Scrape(), HasSubstr("busy 7\n"));  // 300 ms old: the worker's 5 still counts
  clock.Advance(milliseconds(101));
  EXPECT_THAT(Scrape(), HasSubstr("busy 2\n"));  // the worker's 5 is stale, 2 is 101 ms old
}

// --- Percentile buckets ---

TEST(PercentileBucketsTest, TableIsSpectatorsTable) {
  ASSERT_EQ(pb::kValues.size(), 276u);
  // Values derived by hand from Spectator's generator.
  const std::vector<std::pair<size_t, int64_t>> known = {
      {0, 1},   {1, 2},   {2, 3},   {3, 4},   {4, 5},    {13, 14},  {14, 16},
      {15, 21}, {22, 56}, {23, 64}, {24, 85}, {40, 936}, {41, 1024}};
  for (const auto& [i, v] : known) EXPECT_EQ(pb::kValues[i], v) << i;
  // Around 2^56 (as in Spectator's JavaScript port, which hard-codes them).
  size_t at = 0;
  while (pb::kValues[at] != 72057594037927936) ++at;
  EXPECT_EQ(pb::kValues[at - 1], 66052794534767272);
  EXPECT_EQ(pb::kValues[at + 1], 96076792050570581);
  EXPECT_EQ(pb::kValues[275], std::numeric_limits<int64_t>::max());
  // The largest finite step: 4^30 + 8 * floor(4^30 / 3).
  EXPECT_EQ(pb::kValues[274], (int64_t{1} << 60) + 8 * ((int64_t{1} << 60) / 3));
  for (size_t i = 1; i < pb::kLength; ++i) ASSERT_LT(pb::kValues[i - 1], pb::kValues[i]);
}

TEST(PercentileBucketsTest, IndexOfIsSpectatorsIndexFunction) {
  EXPECT_EQ(pb::IndexOf(std::numeric_limits<int64_t>::min()), 0u);
  EXPECT_EQ(pb::IndexOf(0), 0u);
  EXPECT_EQ(pb::IndexOf(1), 1u);
  EXPECT_EQ(pb::IndexOf(4), 4u);
  EXPECT_EQ(pb::IndexOf(1000), 41u);
  EXPECT_EQ(pb::IndexOf(std::numeric_limits<int64_t>::max()), 275u);
  EXPECT_EQ(pb::IndexOf(14), 14u);
  EXPECT_EQ(pb::IndexOf(15), 15u);  // Spectator's quirk: not bucket 14, whose value is 16
  EXPECT_EQ(pb::IndexOf(20), 15u);
  EXPECT_EQ(pb::IndexOf(21), 16u);
  // Monotonic, and every bucket holds a range ending at LargestIn(i): the exposed bounds.
  int64_t prev_top = -1;
  for (size_t i = 0; i + 1 < pb::kLength; ++i) {
    const int64_t top = pb::LargestIn(i);
    ASSERT_GT(top, prev_top) << i;
    ASSERT_EQ(pb::IndexOf(top), i) << i;
    ASSERT_EQ(pb::IndexOf(top + 1), i + 1) << i;
    ASSERT_LT(top, pb::kValues[i]) << i;  // below the bucket's value, as Spectator intends
    prev_top = top;
  }
  std::mt19937_64 rng(7);
  int64_t last = 0;
  std::vector<int64_t> sample;
  for (int i = 0; i < 100000; ++i) sample.push_back(static_cast<int64_t>(rng() >> (rng() % 63)));
  std::sort(sample.begin(), sample.end());
  for (int64_t v : sample) {
    ASSERT_GE(pb::IndexOf(v), pb::IndexOf(last)) << v;
    last = v;
  }
}

TEST(PercentileBucketsTest, PercentileInterpolatesInsideTheBucket) {
  std::vector<uint64_t> counts(pb::kLength, 0);
  EXPECT_TRUE(std::isnan(pb::Percentile(counts, 50)));
  counts[41] = 10;  // all in [936, 1024)
  EXPECT_DOUBLE_EQ(pb::Percentile(counts, 0), 936);
  EXPECT_DOUBLE_EQ(pb::Percentile(counts, 50), 980);
  EXPECT_DOUBLE_EQ(pb::Percentile(counts, 100), 1024);
  counts[15] = 10;  // [16, 21): half below
  EXPECT_DOUBLE_EQ(pb::Percentile(counts, 25), 18.5);
  EXPECT_DOUBLE_EQ(pb::Percentile(counts, 75), 980);
}

// --- Percentile meters ---

TEST_F(SpectatorTest, PercentileTimerCountsSpectatorBucketsAcrossProcesses) {
  auto& f = registry_->AddPercentileTimer("rpc", "RPC", {"method"});
  EXPECT_EQ(f.name(), "rpc_seconds");
  EXPECT_EQ(f.bounds().size(), 276u);
  InProcesses(4, [&](int p) {
    PercentileTimer t = f.Labels("get");
    for (int i = 0; i < 250; ++i) t.Record(nanoseconds(1000));
    if (p == 0) t.Record(nanoseconds(20));
    return 0;
  });
  PercentileTimer t = f.Labels("get");
  EXPECT_EQ(t.Count(), 1001u);
  EXPECT_EQ(t.TotalTime(), nanoseconds(1000020));
  // Rank 1 of 1001 is the 20 ns in [16, 21); the rest in [936, 1024).
  const double below = 100.0 / 1001;  // percent at or under the 20 ns
  EXPECT_NEAR(t.Quantile(0.5), (936 + (50 - below) / (100 - below) * 88) * 1e-9, 1e-18);
  EXPECT_NEAR(t.Quantile(1), 1024e-9, 1e-15);
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("# TYPE rpc_seconds histogram\n"));
  // le is each bucket's largest integer nanosecond: bucket 15 is [16, 21) -> 20 ns.
  EXPECT_THAT(text, HasSubstr("rpc_seconds_bucket{method=\"get\",le=\"1.4e-08\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_bucket{method=\"get\",le=\"2e-08\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_bucket{method=\"get\",le=\"9.35e-07\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_bucket{method=\"get\",le=\"1.02e-06\"} 1001\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_bucket{method=\"get\",le=\"+Inf\"} 1001\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_count{method=\"get\"} 1001\n"));
  EXPECT_THAT(text, HasSubstr("rpc_seconds_sum{method=\"get\"} 0.00100002\n"));
  EXPECT_FALSE(t.Record(nanoseconds(-5)));
  EXPECT_THAT(ErrorOf([&] { registry_->AddPercentileTimer("p", "P", {"le"}); }),
              HasSubstr("reserved"));
}

TEST_F(SpectatorTest, PercentileRangeTrimsBucketsAndClampsValues) {
  auto& f =
      registry_->AddPercentileDistributionSummary("items", "Items", {}, {.min = 16, .max = 1000});
  // Buckets IndexOf(16) = 15 .. IndexOf(1000) = 41.
  EXPECT_EQ(f.bounds().size(), 41u - 15u + 1u);
  EXPECT_EQ(f.bounds().front(), 20);
  EXPECT_EQ(f.bounds().back(), 1020);  // 1021 to 1023 are in bucket 42
  auto d = f.Labels();
  d.Record(0);        // clamped up to 16: bucket 15
  d.Record(5000000);  // clamped down to 1000: bucket 41
  d.Record(100);
  EXPECT_EQ(d.Count(), 3u);
  EXPECT_EQ(d.TotalAmount(), 5000100u);  // the sum keeps recorded values
  EXPECT_DOUBLE_EQ(d.Quantile(0), 16);
  EXPECT_DOUBLE_EQ(d.Quantile(1), 1024);
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("items_bucket{le=\"20.0\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("items_bucket{le=\"1020.0\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("items_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("items_sum 5000100\n"));
  EXPECT_THAT(ErrorOf([&] {
                registry_->AddPercentileDistributionSummary("bad", "B", {}, {.min = 5, .max = 4});
              }),
              HasSubstr("min <= max"));
}

}  // namespace
}  // namespace shmetrics
