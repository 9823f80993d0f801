// Summary quantiles: the sketch's relative-error bound checked against exact quantiles of the
// same data (nearest rank), for skewed and heavy-tailed distributions observed by several forked
// processes; the sliding window; the tagged-cell rotation; validation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "collect/collector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meters/layout.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
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

using ::shmetrics::testing::kSanitized;
constexpr int kPerProcess = kSanitized ? 5000 : 50000;
constexpr int kProcs = 4;

class QuantileSummaryTest : public ::shmetrics::testing::HeapTest {
 protected:
  // The sketch's time slices follow this clock, not the wall clock: observations stay in the
  // window however long a test takes (or NTP steps), and move out only when a test advances it.
  // It starts at a slice boundary (a whole second).
  TestClock clock_;
};

// The data process p observes: deterministic from (distribution, p).
std::vector<double> Data(int dist, int p, int n) {
  std::mt19937_64 rng(1234 + 100 * dist + p);
  std::vector<double> v(n);
  switch (dist) {
    case 0: {  // lognormal, heavily skewed: latencies around 1 ms
      std::lognormal_distribution<double> d(std::log(1e-3), 1.5);
      for (double& x : v) x = d(rng);
      break;
    }
    case 1: {  // Pareto, heavy tail (alpha 1.2): sizes from 100
      std::uniform_real_distribution<double> u(0, 1);
      for (double& x : v) x = 100 * std::pow(1 - u(rng), -1 / 1.2);
      break;
    }
    case 2: {  // exponential
      std::exponential_distribution<double> d(1 / 0.05);
      for (double& x : v) x = d(rng);
      break;
    }
    default: {  // uniform over six decades
      std::uniform_real_distribution<double> d(-3, 3);
      for (double& x : v) x = std::pow(10, d(rng));
      break;
    }
  }
  return v;
}

// The nearest-rank quantile the summary documents: rank max(1, ceil(q * n)).
double Exact(std::vector<double> sorted, double q) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<size_t>(std::ceil(q * n));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// The value of `<series>quantile="<q>"} ` in an exposition; q as OpenMetrics writes it.
double QuantileLine(const std::string& text, const std::string& series, const std::string& q) {
  const std::string key = series + "quantile=\"" + q + "\"} ";
  const size_t at = text.find(key);
  return at == std::string::npos ? std::nan("") : std::stod(text.substr(at + key.size()));
}

TEST_F(QuantileSummaryTest, QuantilesWithinTheRelativeErrorBoundAcrossProcesses) {
  const std::vector<double> qs = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0};
  const std::vector<std::string> q_text = {"0.0", "0.5", "0.9", "0.99", "0.999", "1.0"};
  auto& f = registry_->AddSummary("obs", "Observations", {"dist"}, {.quantiles = qs});
  const char* names[] = {"lognormal", "pareto", "exponential", "uniform"};
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&, p] {
      for (int dist = 0; dist < 4; ++dist) {
        Summary s = f.Labels(names[dist]);
        for (double x : Data(dist, p, kPerProcess)) {
          if (!s.Observe(x)) return 1;
        }
      }
      return 0;
    }));
  }
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  const std::string text = Expose(*heap_, ExpositionFormat::kOpenMetrics);
  for (int dist = 0; dist < 4; ++dist) {
    std::vector<double> all;
    for (int p = 0; p < kProcs; ++p) {
      const auto d = Data(dist, p, kPerProcess);
      all.insert(all.end(), d.begin(), d.end());
    }
    std::sort(all.begin(), all.end());
    Summary s = f.Labels(names[dist]);
    EXPECT_EQ(s.Count(), all.size());
    double sum = 0;
    for (double x : all) sum += x;
    EXPECT_NEAR(s.Sum(), sum, std::abs(sum) * 1e-9);
    const std::string series = std::string("obs{dist=\"") + names[dist] + "\",";
    for (size_t qi = 0; qi < qs.size(); ++qi) {
      const double q = qs[qi];
      const double exact = Exact(all, q);
      // Every value here is inside the default range [1e-6, 1e6] except the Pareto tail, which
      // the checks skip when it is out of range.
      if (exact > 1e6 || exact < 1e-6) continue;
      const double est = s.Quantile(q);
      EXPECT_LE(std::abs(est - exact), 0.01 * exact)
          << names[dist] << " q=" << q << " exact=" << exact << " est=" << est;
      const double exposed = QuantileLine(text, series, q_text[qi]);
      EXPECT_LE(std::abs(exposed - exact), 0.01 * exact)
          << names[dist] << " q=" << q << " exposed=" << exposed << "\n";
    }
  }
  EXPECT_THAT(text,
              HasSubstr("obs_count{dist=\"pareto\"} " + std::to_string(kProcs * kPerProcess)));
}

TEST_F(QuantileSummaryTest, TighterAccuracyAndOutOfRangeValues) {
  auto s = registry_
               ->AddSummary("tight", "T", {},
                            {.quantiles = {0.25, 0.5, 0.75},
                             .relative_accuracy = 0.001,
                             .min_value = 1,
                             .max_value = 1000})
               .Labels();
  // 0, negatives and values under 1 rank first and read 0; values from 1024 up read 1024.
  for (double x : {-5.0, 0.0, 0.5}) s.Observe(x);
  for (double x : {3.0, 7.0, 300.0}) s.Observe(x);
  for (double x : {5000.0, 1e300, 1024.0}) s.Observe(x);
  EXPECT_EQ(s.Quantile(0.25), 0);          // rank 3: 0.5, under range
  EXPECT_NEAR(s.Quantile(0.5), 7, 0.007);  // rank 5: 7
  EXPECT_EQ(s.Quantile(0.75), 1024);       // rank 7: 1024 and up
  EXPECT_EQ(s.Count(), 9u);
}

TEST_F(QuantileSummaryTest, WindowSlidesAndCountAndSumStayAllTime) {
  auto s =
      registry_
          ->AddSummary(
              "win", "W", {},
              {.quantiles = {0.5}, .max_age = std::chrono::milliseconds(1000), .age_buckets = 2})
          .Labels();
  EXPECT_TRUE(std::isnan(s.Quantile(0.5)));
  EXPECT_THAT(Expose(*heap_), HasSubstr("win{quantile=\"0.5\"} NaN\n"));
  for (int i = 0; i < 100; ++i) s.Observe(5);
  EXPECT_NEAR(s.Quantile(0.5), 5, 0.05);
  // Slices of 500 ms; a window of the current and the previous slice.
  clock_.Advance(std::chrono::milliseconds(999));  // the last instant of the next slice: kept
  EXPECT_NEAR(s.Quantile(0.5), 5, 0.05);
  EXPECT_THAT(Expose(*heap_), Not(HasSubstr("win{quantile=\"0.5\"} NaN\n")));
  clock_.Advance(std::chrono::milliseconds(1));  // two slices on: gone
  EXPECT_TRUE(std::isnan(s.Quantile(0.5)));
  EXPECT_THAT(Expose(*heap_), HasSubstr("win{quantile=\"0.5\"} NaN\n"));
  s.Observe(7);
  EXPECT_NEAR(s.Quantile(0.5), 7, 0.07);
  EXPECT_EQ(s.Count(), 101u);
  EXPECT_EQ(s.Sum(), 507);
  const std::string text = Expose(*heap_);
  EXPECT_THAT(text, HasSubstr("win_count 101\n"));
  EXPECT_THAT(text, HasSubstr("win_sum 507\n"));
}

// The rotation rule on one tagged cell, slice by slice.
TEST(SketchTest, TaggedCellsRotateWithoutLosingObservations) {
  meters::Definition d;
  d.type = MetricType::kSummary;
  d.quantiles = {0.5};
  d.max_age_ns = 3000000000;
  d.age_buckets = 3;
  d.relative_accuracy = 0.01;
  d.min_value = 1;
  d.max_value = 2;
  const internal::SketchLayout s = meters::MakeSketchLayout(d);
  ASSERT_TRUE(s.enabled());
  EXPECT_EQ(s.per_octave, 50u);
  EXPECT_EQ(s.num_buckets, 2u * 50u + 2u);
  EXPECT_EQ(s.slice_ns, 1000000000u);
  std::vector<internal::Cell> cells(s.cells());
  for (auto& c : cells) c.Init(0);
  std::vector<uint64_t> counts;
  auto window = [&](uint64_t now) {
    s.WindowCounts(cells.data(), now, &counts);
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    return n;
  };
  s.Add(cells.data(), 1.5, 10);
  s.Add(cells.data(), 1.5, 11);
  s.Add(cells.data(), 1.5, 12);
  EXPECT_EQ(window(12), 3u);
  EXPECT_EQ(window(13), 2u);     // slice 10 left the window
  s.Add(cells.data(), 1.5, 13);  // slot of slice 10: retires its count
  EXPECT_EQ(window(13), 3u);
  // A writer still in slice 12 whose add lands after slice 15 took the slot: counted in 15,
  // not lost and not resetting.
  s.Add(cells.data(), 1.5, 15);
  s.Add(cells.data(), 1.5, 12);
  EXPECT_EQ(window(15), 3u);  // 13 (in slot 1) and twice 15
  EXPECT_EQ(window(16), 2u);
  EXPECT_EQ(window(18), 0u);
  // Slice numbers are tagged modulo 2^32.
  const uint64_t later = (uint64_t{1} << 32) + 1000000;
  s.Add(cells.data(), 1.5, later);
  EXPECT_EQ(window(later), 1u);
  EXPECT_EQ(window(later + 2), 1u);
  EXPECT_EQ(window(later + 3), 0u);
  // Representatives: bucket [a, b) reads 2ab / (a + b), within 1/101 of both ends.
  for (uint32_t i = 1; i + 1 < s.num_buckets; ++i) {
    const double r = s.Representative(i);
    const double a = (1 + (i - 1) % 50 / 50.0) * ((i - 1) / 50 == 0 ? 1 : 2);
    EXPECT_LE((r - a) / a, 1 / 101.0 + 1e-12) << i;
    EXPECT_EQ(s.Bucket(a * (1 + 1e-12)), i) << i;
    EXPECT_EQ(s.Bucket(a * (1 - 1e-12)), i - 1) << i;
  }
}

TEST_F(QuantileSummaryTest, QuantileOptionsAreValidated) {
  auto err = [&](SummaryOptions o) {
    return ErrorOf([&] { registry_->AddSummary("v", "V", {}, o); });
  };
  EXPECT_THAT(err({.quantiles = {0.5, 1.5}}), HasSubstr("not in [0, 1]"));
  EXPECT_THAT(err({.quantiles = {std::nan("")}}), HasSubstr("not in [0, 1]"));
  EXPECT_THAT(err({.quantiles = {0.5, 0.9, 0.5}}), HasSubstr("given twice"));
  EXPECT_THAT(err({.quantiles = {0.5}, .age_buckets = 0}), HasSubstr("age_buckets"));
  EXPECT_THAT(err({.quantiles = {0.5}, .max_age = std::chrono::milliseconds(100)}),
              HasSubstr("100 ms"));
  EXPECT_THAT(err({.quantiles = {0.5}, .relative_accuracy = 0}), HasSubstr("relative_accuracy"));
  EXPECT_THAT(err({.quantiles = {0.5}, .min_value = 0}), HasSubstr("min_value"));
  EXPECT_THAT(err({.quantiles = {0.5}, .min_value = 1e-300, .max_value = 1e300}),
              HasSubstr("cells"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddSummary("v", "V", {"quantile"}, {.quantiles = {0.5}}); }),
              HasSubstr("reserved"));
  // Unsorted quantiles are accepted and reported ascending; the count-only summary still works.
  auto& q = registry_->AddSummary("sorted", "S", {}, {.quantiles = {0.9, 0.1}});
  EXPECT_EQ(q.quantiles(), (std::vector<double>{0.1, 0.9}));
  auto plain = registry_->AddSummary("plain", "P").Labels();
  plain.Observe(2);
  EXPECT_TRUE(std::isnan(plain.Quantile(0.5)));
  const std::string text = Expose(*heap_);
  EXPECT_THAT(text, HasSubstr("plain_count 1\nplain_sum 2\n"));
  EXPECT_THAT(text, HasSubstr("sorted{quantile=\"0.1\"} NaN\nsorted{quantile=\"0.9\"} NaN\n"));
}

}  // namespace
}  // namespace shmetrics
