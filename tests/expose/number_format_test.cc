#include "expose/number_format.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace shmetrics::expose {
namespace {

std::string Sample(double v) {
  std::string s;
  AppendSampleValue(v, &s);
  return s;
}

std::string Canonical(double v) {
  std::string s;
  AppendCanonicalNumber(v, &s);
  return s;
}

TEST(NumberFormatTest, Uint) {
  std::string s;
  AppendUint(0, &s);
  s += ' ';
  AppendUint(std::numeric_limits<uint64_t>::max(), &s);
  EXPECT_EQ(s, "0 18446744073709551615");
}

TEST(NumberFormatTest, CanonicalSpecialValues) {
  EXPECT_EQ(Canonical(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Canonical(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Canonical(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(Canonical(0), "0.0");
  EXPECT_EQ(Canonical(-0.0), "-0.0");
  EXPECT_EQ(Canonical(-0.5), "-0.5");
  EXPECT_EQ(Canonical(-2), "-2.0");
  EXPECT_EQ(Canonical(123456), "123456.0");
  EXPECT_EQ(Canonical(1234567), "1.234567e+06");
  EXPECT_EQ(Canonical(0.00012), "0.00012");
  EXPECT_EQ(Canonical(0.000012), "1.2e-05");
  EXPECT_EQ(Canonical(1e100), "1e+100");
  EXPECT_EQ(Canonical(1e-100), "1e-100");
  EXPECT_EQ(Canonical(std::numeric_limits<double>::denorm_min()), "5e-324");
  EXPECT_EQ(Canonical(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(Canonical(-std::numeric_limits<double>::max()), "-1.7976931348623157e+308");
  EXPECT_EQ(Canonical(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(Canonical(100.25), "100.25");
}

// The renderings the OpenMetrics spec lists under "Canonical Numbers": powers of ten from 1e-10 to
// 1e+10 ...
TEST(NumberFormatTest, CanonicalPowersOfTenFromTheSpec) {
  const char* const want[] = {"1e-10",   "1e-09",    "1e-08", "1e-07", "1e-06", "1e-05", "0.0001",
                              "0.001",   "0.01",     "0.1",   "1.0",   "10.0",  "100.0", "1000.0",
                              "10000.0", "100000.0", "1e+06", "1e+07", "1e+08", "1e+09", "1e+10"};
  for (int e = -10; e <= 10; ++e) {
    EXPECT_EQ(Canonical(std::pow(10.0, e)), want[e + 10]) << "10^" << e;
  }
}

// ... the values 0 to 10 in 0.001 steps (0.001, 0.002, ..., 1.0, 1.001, ..., 10.0), which covers
// 0 to 1 in 0.01 steps too.
TEST(NumberFormatTest, CanonicalThousandthsFromTheSpec) {
  for (int i = 0; i <= 10000; ++i) {
    std::string want = std::to_string(i / 1000) + ".";
    std::string frac = std::to_string(1000 + i % 1000).substr(1);  // three digits
    while (frac.size() > 1 && frac.back() == '0') frac.pop_back();
    want += frac;
    ASSERT_EQ(Canonical(i / 1000.0), want) << i;
  }
}

// Whatever the value, the canonical text must read back as the same double.
TEST(NumberFormatTest, CanonicalRoundTrips) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const double v = std::bit_cast<double>(rng());
    if (!std::isfinite(v)) continue;
    const std::string s = Canonical(v);
    double back = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), back);
    ASSERT_EQ(r.ec, std::errc()) << s;
    ASSERT_EQ(r.ptr, s.data() + s.size()) << s;
    ASSERT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(v)) << s;
    ASSERT_TRUE(s.find('.') != std::string::npos || s.find('e') != std::string::npos) << s;
  }
}

TEST(NumberFormatTest, SampleValues) {
  EXPECT_EQ(Sample(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Sample(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Sample(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(Sample(0), "0");
  EXPECT_EQ(Sample(-0.0), "-0");
  EXPECT_EQ(Sample(42), "42");
  EXPECT_EQ(Sample(-42), "-42");
  EXPECT_EQ(Sample(1e15), "1000000000000000");
  EXPECT_EQ(Sample(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(Sample(0.1), "0.1");
  EXPECT_EQ(Sample(1e-300), "1e-300");
  EXPECT_EQ(Sample(1e300), "1e+300");
  EXPECT_EQ(Sample(1.5e-7), "1.5e-07");
  EXPECT_EQ(Sample(1700000000.123), "1700000000.123");
}

TEST(NumberFormatTest, SampleValuesRoundTrip) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 100000; ++i) {
    const double v = i % 2 == 0 ? std::bit_cast<double>(rng())
                                : static_cast<double>(static_cast<int64_t>(rng() >> (i % 64)));
    if (!std::isfinite(v)) continue;
    const std::string s = Sample(v);
    double back = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), back);
    ASSERT_EQ(r.ec, std::errc()) << s;
    ASSERT_EQ(r.ptr, s.data() + s.size()) << s;
    ASSERT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(v)) << s;
  }
}

}  // namespace
}  // namespace shmetrics::expose
