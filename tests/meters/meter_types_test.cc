// The meter type table: one row per MetricType, and the shapes it gives agree with the layout.
#include "meters/meter_types.h"

#include <algorithm>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "meters/layout.h"
#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/meter_types.h"

namespace shmetrics::meters {
namespace {

TEST(MeterTypesTest, EveryTypeHasOneRowAndOnlyTypesHaveRows) {
  std::set<std::string_view> names;
  for (uint32_t v = 1; v <= 13; ++v) {
    const MeterType* t = FindMeterType(v);
    ASSERT_NE(t, nullptr) << v;
    EXPECT_EQ(static_cast<uint32_t>(t->type), v);
    EXPECT_NE(t->cells_per_stripe, nullptr) << t->name;
    EXPECT_TRUE(names.insert(t->name).second) << t->name;
  }
  EXPECT_EQ(AllMeterTypes().size(), 13u);
  EXPECT_EQ(FindMeterType(0), nullptr);
  EXPECT_EQ(FindMeterType(14), nullptr);
  EXPECT_EQ(FindMeterType(0xffffffffu), nullptr);
}

TEST(MeterTypesTest, ShapesFollowTheCellNames) {
  Definition d;
  d.type = MetricType::kCounter;
  EXPECT_EQ(CellsPerStripe(d), internal::CounterCells::kCount);
  EXPECT_EQ(ExemplarSlots(d), 1u);
  d.striped = true;
  SeriesShape s = ShapeOf(d, 7);
  EXPECT_EQ(s.stripes, 8u);
  // A striped counter's stripe is a cache line of cells, or its cells where a cell is larger
  // (the mutex fallback).
  const uint32_t line = std::max<uint32_t>(internal::CounterCells::kCount,
                                           std::max<size_t>(1, 64 / sizeof(internal::Cell)));
  EXPECT_EQ(s.stripe_stride, line);
  EXPECT_EQ(s.series_size, internal::kSeriesCellsOffset + 8 * line * sizeof(internal::Cell));

  d = {};
  d.type = MetricType::kGauge;
  EXPECT_EQ(ShapeOf(d, 7).stripes, 1u);
  EXPECT_EQ(CellsPerStripe(d), internal::GaugeCells::kShared);
  d.ttl_ns = 1000000;
  EXPECT_EQ(CellsPerStripe(d), internal::GaugeCells::kSharedWithTtl);
  d.gauge_mode = GaugeMode::kLiveMax;
  s = ShapeOf(d, 7);
  EXPECT_EQ(s.cells_per_stripe, internal::GaugeCells::kPerWorker);
  EXPECT_EQ(s.stripes, 8u);
  EXPECT_EQ(s.stripe_stride, internal::GaugeCells::kPerWorker);

  d = {};
  d.type = MetricType::kHistogram;
  d.bounds = {1, 2, 3};
  EXPECT_EQ(CellsPerStripe(d), 5u);  // sum, three buckets, +Inf
  EXPECT_EQ(ExemplarSlots(d), 4u);
  d.type = MetricType::kPercentileTimer;
  EXPECT_EQ(CellsPerStripe(d), 4u);  // total, three kept buckets
  EXPECT_EQ(ExemplarSlots(d), 0u);

  d = {};
  d.type = MetricType::kTimer;
  EXPECT_EQ(CellsPerStripe(d), internal::SpectatorCells::kCells);
  d.type = MetricType::kMaxGauge;
  EXPECT_EQ(CellsPerStripe(d), 1u);
}

TEST(MeterTypesTest, SpectatorCarriersHaveTheirCompanionFamilies) {
  for (const MeterType& t : AllMeterTypes()) {
    const bool carrier = t.type == MetricType::kTimer || t.type == MetricType::kDistributionSummary;
    ASSERT_EQ(t.companions.size(), carrier ? 2u : 0u) << t.name;
    if (!carrier) continue;
    EXPECT_EQ(t.companions[0].suffix, "_max");
    EXPECT_EQ(t.companions[1].suffix, "_sum_of_squares");
    EXPECT_EQ(t.exposed, expose::MetricType::kSummary);
  }
}

TEST(MeterTypesTest, UntrustedPercentileRangesAreChecked) {
  Definition d;
  d.type = MetricType::kPercentileDistributionSummary;
  d.percentile_first = 3;
  d.percentile_last = 4;
  d.bounds = {1, 2};
  EXPECT_TRUE(ParametersAreSane(d));
  d.bounds = {1, 2, 3};
  EXPECT_FALSE(ParametersAreSane(d));
  d.type = MetricType::kCounter;  // the range means nothing to a counter
  EXPECT_TRUE(ParametersAreSane(d));
}

}  // namespace
}  // namespace shmetrics::meters
