#include "meters/names.h"

#include <gtest/gtest.h>

namespace shmetrics::meters {
namespace {

TEST(NamesTest, MetricNames) {
  EXPECT_TRUE(IsValidMetricName("http_requests"));
  EXPECT_TRUE(IsValidMetricName("_x"));
  EXPECT_TRUE(IsValidMetricName(":x:y1"));
  EXPECT_TRUE(IsValidMetricName("A9_:"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9x"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_FALSE(IsValidMetricName("a.b"));
  EXPECT_FALSE(IsValidMetricName("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidMetricName(std::string_view("a\0b", 3)));
}

TEST(NamesTest, LabelNames) {
  EXPECT_TRUE(IsValidLabelName("code"));
  EXPECT_TRUE(IsValidLabelName("_"));
  EXPECT_TRUE(IsValidLabelName("a1_B"));
  EXPECT_TRUE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidLabelName("1a"));
  EXPECT_FALSE(IsValidLabelName("a:b"));  // colons are for metric names only
  EXPECT_FALSE(IsValidLabelName("a-b"));
  EXPECT_FALSE(IsValidLabelName(std::string_view("a\0", 2)));
}

TEST(NamesTest, ReservedLabelNames) {
  EXPECT_TRUE(IsReservedLabelName("__name__"));
  EXPECT_TRUE(IsReservedLabelName("__"));
  EXPECT_FALSE(IsReservedLabelName("_a"));
  EXPECT_FALSE(IsReservedLabelName("a__"));
  EXPECT_FALSE(IsReservedLabelName("_"));
  EXPECT_FALSE(IsReservedLabelName(""));
}

static_assert(IsValidMetricName("up") && !IsValidLabelName("le-"),
              "usable in constant expressions");

}  // namespace
}  // namespace shmetrics::meters
