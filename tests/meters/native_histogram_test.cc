// Native histograms: Prometheus's bucket index against exact computation, schema reduction,
// spans, registration checks, the scrape (exact with several processes, consistent under
// concurrent writers) and the text exposition.
#include "shmetrics/native_histogram.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "collect/collector.h"
#include "expose/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "meters/native_histogram.h"
#include "shm/heap_access.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/parsers.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using meters::NativeBucket;
using meters::NativeIndex;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kSchemas[] = {-4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8};

// Prometheus's algorithm as client_golang writes it: frexp, then a binary search of the
// schema's row of bounds (every 2^(8-s)-th entry of the schema 8 row) or the exponent alone.
int32_t ReferenceIndex(double v, int schema) {
  if (v == kInf) v = DBL_MAX;
  int exp = 0;
  const double frac = std::frexp(v, &exp);
  if (schema > 0) {
    std::vector<double> row;
    for (int j = 0; j < 256; j += 1 << (8 - schema)) row.push_back(internal::kNativeBounds[j]);
    const auto j = std::lower_bound(row.begin(), row.end(), frac) - row.begin();
    return static_cast<int32_t>(j + (exp - 1) * static_cast<int64_t>(row.size()));
  }
  int key = exp;
  if (frac == 0.5) --key;
  const int offset = (1 << -schema) - 1;
  return (key + offset) >> -schema;
}

// Whether 2^((i-1)/2^s) < v <= 2^(i/2^s), in long double (64-bit mantissa on x86-64).
bool ExactlyIn(double v, int32_t i, int schema) {
  const long double per = std::ldexp(1.0L, schema);  // 2^s
  const long double lo = std::exp2l(static_cast<long double>(i - 1) / per);
  const long double hi = std::exp2l(static_cast<long double>(i) / per);
  return lo < v && v <= hi;
}

// Values at, and next to, powers of two and at the table's bounds across the exponent range,
// plus subnormals and the extremes.
std::vector<double> InterestingValues() {
  std::vector<double> out = {DBL_MIN,
                             std::nextafter(DBL_MIN, 0.0),
                             std::numeric_limits<double>::denorm_min(),
                             2 * std::numeric_limits<double>::denorm_min(),
                             3e-320,
                             1e-310,
                             DBL_MAX,
                             std::nextafter(DBL_MAX, 0.0),
                             1e-6,
                             1e4,
                             0.1,
                             0.3,
                             1.0,
                             3.0};
  for (int e : {-1073, -1060, -1022, -1021, -200, -20, -1, 0, 1, 2, 7, 30, 500, 1023}) {
    for (int j = 0; j < 256; j += 3) {
      const double b = std::ldexp(internal::kNativeBounds[j], e + 1);
      if (b == 0 || !std::isfinite(b)) continue;
      out.push_back(b);
      out.push_back(std::nextafter(b, 0.0));
      out.push_back(std::nextafter(b, kInf));
    }
  }
  return out;
}

TEST(NativeIndexTest, TableIsClientGolangsAndWithinFourUlpsOfExact) {
  // Schema 3's row as client_golang's histogram.go spells it.
  const double schema3[] = {0.5,
                            0.5452538663326288,
                            0.5946035575013605,
                            0.6484197773255048,
                            0.7071067811865475,
                            0.7711054127039704,
                            0.8408964152537144,
                            0.9170040432046711};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(internal::kNativeBounds[j * 32], schema3[j]) << j;
  EXPECT_EQ(internal::kNativeBounds[255], 0.9972960560854698);
  for (int j = 0; j < 256; ++j) {
    const long double exact = std::exp2l(static_cast<long double>(j) / 256 - 1);
    const double b = internal::kNativeBounds[j];
    EXPECT_LE(std::fabs(static_cast<long double>(b) - exact),
              4 * static_cast<long double>(std::nextafter(b, 1.0) - b))
        << j;
    if (j > 0) {
      EXPECT_GT(b, internal::kNativeBounds[j - 1]);
    }
  }
}

TEST(NativeIndexTest, MatchesPrometheusAtBoundariesSubnormalsAndExtremes) {
  const std::vector<double> values = InterestingValues();
  for (int s : kSchemas) {
    for (double v : values) {
      ASSERT_EQ(NativeIndex(v, s), ReferenceIndex(v, s)) << "schema " << s << " v " << v;
    }
    EXPECT_EQ(NativeIndex(kInf, s), NativeIndex(DBL_MAX, s)) << s;
  }
}

TEST(NativeIndexTest, MatchesPrometheusOnRandomValues) {
  std::mt19937_64 rng(42);
  for (int n = 0; n < 200000; ++n) {
    double v;
    do {
      v = std::bit_cast<double>(rng() & 0x7fffffffffffffffULL);
    } while (!std::isfinite(v) || v == 0);
    const int s = kSchemas[n % std::size(kSchemas)];
    ASSERT_EQ(NativeIndex(v, s), ReferenceIndex(v, s)) << "schema " << s << " v " << v;
  }
}

// The bounds of schemas <= 0, and every integral power of two, are exact doubles: there the
// index is the exact one even at the boundary and next to it.
TEST(NativeIndexTest, ExactAtPowersOfTwo) {
  for (int s : kSchemas) {
    for (int e = -1074; e <= 1023; e += (e > -1000 && e < 1000) ? 7 : 1) {
      const double p = std::ldexp(1.0, e);
      for (double v : {p, std::nextafter(p, 0.0), std::nextafter(p, kInf)}) {
        if (v == 0 || !std::isfinite(v)) continue;
        const int32_t i = NativeIndex(v, s);
        ASSERT_TRUE(ExactlyIn(v, i, s)) << "schema " << s << " v " << v << " index " << i;
      }
    }
  }
}

// Elsewhere the bounds are client_golang's doubles, up to 4 ulps below the exact power: a value
// more than 8 ulps from every bound has its exact index; one at a bound has the table's (the
// lower bucket), and the exact answer differs by at most one.
TEST(NativeIndexTest, ExactAwayFromTheTablesRounding) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mant(0.5, 1.0);
  for (int s : {1, 3, 8}) {
    for (int n = 0; n < 50000; ++n) {
      const int e = static_cast<int>(rng() % 200) - 100;
      const double v = std::ldexp(mant(rng), e);
      const int32_t i = NativeIndex(v, s);
      const double ulp = std::nextafter(v, kInf) - v;
      const long double per = std::ldexp(1.0L, s);
      const long double hi = std::exp2l(static_cast<long double>(i) / per);
      const long double lo = std::exp2l(static_cast<long double>(i - 1) / per);
      const bool near = std::fabs(hi - v) <= 8 * ulp || std::fabs(v - lo) <= 8 * ulp;
      if (!near) {
        ASSERT_TRUE(ExactlyIn(v, i, s)) << "schema " << s << " v " << v;
      }
    }
    for (int j = 0; j < 256; j += 1 << (8 - s)) {
      const double b = internal::kNativeBounds[j] * 2;  // in [1, 2)
      const int32_t i = NativeIndex(b, s);
      EXPECT_EQ(i, j >> (8 - s)) << "schema " << s << " bound " << j;
      EXPECT_TRUE(ExactlyIn(b, i, s) || ExactlyIn(b, i + 1, s));
      const double below = std::nextafter(b, 0.0) - 8 * (std::nextafter(b, 2.0) - b);
      const double above = std::nextafter(b, 2.0) + 8 * (std::nextafter(b, 2.0) - b);
      if (j > 0) {
        EXPECT_TRUE(ExactlyIn(below, NativeIndex(below, s), s)) << below;
      }
      EXPECT_TRUE(ExactlyIn(above, NativeIndex(above, s), s)) << above;
    }
  }
}

TEST(NativeIndexTest, KnownIndices) {
  EXPECT_EQ(NativeIndex(1.0, 0), 0);
  EXPECT_EQ(NativeIndex(2.0, 0), 1);
  EXPECT_EQ(NativeIndex(std::nextafter(2.0, 3.0), 0), 2);
  EXPECT_EQ(NativeIndex(0.5, 0), -1);
  EXPECT_EQ(NativeIndex(1.0, 3), 0);
  EXPECT_EQ(NativeIndex(std::nextafter(1.0, 2.0), 3), 1);
  EXPECT_EQ(NativeIndex(2.0, 3), 8);
  EXPECT_EQ(NativeIndex(16.0, -2), 1);  // (1, 16]
  EXPECT_EQ(NativeIndex(17.0, -2), 2);
  EXPECT_EQ(NativeIndex(1.0, -4), 0);
  EXPECT_EQ(NativeIndex(65536.0, -4), 1);
  EXPECT_EQ(NativeIndex(65537.0, -4), 2);
  EXPECT_EQ(NativeIndex(DBL_MAX, 8), 1024 * 256);
  EXPECT_EQ(NativeIndex(std::numeric_limits<double>::denorm_min(), 0), -1074);
}

// --- Schema reduction and spans ---

std::vector<NativeBucket> Bucketize(const std::vector<double>& values, int schema) {
  std::map<int32_t, uint64_t> m;
  for (double v : values) ++m[NativeIndex(v, schema)];
  std::vector<NativeBucket> out;
  for (auto [i, n] : m) out.push_back({i, n});
  return out;
}

bool SameBuckets(const std::vector<NativeBucket>& a, const std::vector<NativeBucket>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].index != b[i].index || a[i].count != b[i].count) return false;
  }
  return true;
}

TEST(NativeReductionTest, MergedCountsEqualADirectComputationAtTheLowerSchema) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> dist(-3, 3);
  std::vector<double> values;
  for (int n = 0; n < 20000; ++n) values.push_back(dist(rng));
  for (double v : InterestingValues()) values.push_back(v);
  for (int from : {8, 5, 3, 0}) {
    for (int to = from; to >= -4; --to) {
      std::vector<NativeBucket> b = Bucketize(values, from);
      meters::LowerSchema(from - to, &b);
      EXPECT_TRUE(SameBuckets(b, Bucketize(values, to))) << from << " -> " << to;
    }
  }
}

TEST(NativeReductionTest, LowersUntilAtMostMaxBucketsAndStopsAtMinusFour) {
  std::vector<double> values;
  for (int e = -300; e < 300; ++e) values.push_back(std::ldexp(1.3, e));
  std::vector<NativeBucket> pos = Bucketize(values, 3), neg = Bucketize({1.0, 3.0}, 3);
  int32_t schema = 3;
  meters::ReduceSchema(160, &schema, &pos, &neg);
  // One value per octave: schema -2 (4 octaves a bucket) is the first to give 150 + 2 <= 160.
  EXPECT_EQ(schema, -2);
  EXPECT_LE(pos.size() + neg.size(), 160u);
  EXPECT_TRUE(SameBuckets(pos, Bucketize(values, -2)));
  EXPECT_TRUE(SameBuckets(neg, Bucketize({1.0, 3.0}, -2)));

  pos = Bucketize(values, 3);
  neg.clear();
  schema = 3;
  meters::ReduceSchema(2, &schema, &pos, &neg);
  EXPECT_EQ(schema, -4);  // 600 octaves need more than 2 buckets even at -4

  pos = Bucketize(values, 3);
  schema = 3;
  meters::ReduceSchema(0, &schema, &pos, &neg);  // no limit
  EXPECT_EQ(schema, 3);
  EXPECT_EQ(pos.size(), 600u);
}

TEST(NativeSpansTest, GapsOfUpToTwoStayInsideASpan) {
  std::vector<expose::BucketSpan> spans;
  std::vector<uint64_t> counts;
  meters::MakeSpans({{-3, 1}, {-2, 2}, {0, 3}, {3, 4}, {7, 5}, {8, 6}}, &spans, &counts);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].offset, -3);
  EXPECT_EQ(spans[0].length, 7u);  // -3..3
  EXPECT_EQ(spans[1].offset, 3);   // 4, 5, 6 empty
  EXPECT_EQ(spans[1].length, 2u);
  EXPECT_EQ(counts, (std::vector<uint64_t>{1, 2, 0, 3, 0, 0, 4, 5, 6}));
  meters::MakeSpans({}, &spans, &counts);
  EXPECT_TRUE(spans.empty());
  EXPECT_TRUE(counts.empty());
}

// --- Registration ---

class NativeHistogramTest : public testing::HeapTest {};

TEST_F(NativeHistogramTest, RegistrationChecksEveryOption) {
  auto err = [&](const NativeHistogramOptions& o) {
    ErrorCode code = ErrorCode::kOk;
    std::string m = ErrorOf([&] { registry_->AddNativeHistogram("lat", "h", {}, o); }, &code);
    EXPECT_EQ(code, ErrorCode::kInvalidArgument) << m;
    return m;
  };
  EXPECT_THAT(err({.schema = 9}), HasSubstr("schema must be -4 to 8; got 9"));
  EXPECT_THAT(err({.schema = -5}), HasSubstr("schema must be -4 to 8; got -5"));
  EXPECT_THAT(err({.zero_threshold = -1}), HasSubstr("zero_threshold must be finite and >= 0"));
  EXPECT_THAT(err({.zero_threshold = std::nan("")}), HasSubstr("zero_threshold must be finite"));
  EXPECT_THAT(err({.zero_threshold = kInf}), HasSubstr("zero_threshold must be finite"));
  EXPECT_THAT(err({.min_value = 0}), HasSubstr("needs 0 < min_value <= max_value, finite"));
  EXPECT_THAT(err({.min_value = 2, .max_value = 1}), HasSubstr("0 < min_value <= max_value"));
  EXPECT_THAT(err({.max_value = kInf}), HasSubstr("0 < min_value <= max_value, finite"));
  EXPECT_THAT(err({.min_value = std::nan("")}), HasSubstr("0 < min_value <= max_value"));
  EXPECT_THAT(err({.zero_threshold = 1e-3, .min_value = 1e-3}),
              HasSubstr("zero_threshold 0.001 must be below min_value 0.001"));
  EXPECT_THAT(err({.schema = 8, .negative_buckets = true}),
              HasSubstr("needs 17010 buckets (both signs); the limit is 16384"));
  EXPECT_THAT(err({.schema = 8, .zero_threshold = 0, .min_value = 1e-300, .max_value = 1e300}),
              HasSubstr("narrow the range or lower the schema"));
  EXPECT_THAT(err({.schema = 9}), HasSubstr("native histogram \"lat\""));
  // Nothing was recorded: a valid registration of the name works.
  EXPECT_NO_THROW(registry_->AddNativeHistogram("lat", "h", {}, {.schema = 8}));
}

TEST_F(NativeHistogramTest, SameOptionsAreTheSameFamilyOthersConflict) {
  auto& a = registry_->AddNativeHistogram("lat", "h", {"x"}, {.schema = 2});
  auto& b = registry_->AddNativeHistogram("lat", "h", {"x"}, {.schema = 2});
  EXPECT_EQ(&a, &b);
  ErrorCode code = ErrorCode::kOk;
  const std::string m =
      ErrorOf([&] { registry_->AddNativeHistogram("lat", "h", {"x"}, {.schema = 3}); }, &code);
  EXPECT_EQ(code, ErrorCode::kAlreadyExists);
  EXPECT_THAT(m, HasSubstr("native histogram options"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddNativeHistogram("x_bucket", "h"); }),
              HasSubstr("ends in _bucket"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddNativeHistogram("y", "h", {"le"}); }),
              HasSubstr("reserved"));
  code = ErrorCode::kOk;
  ErrorOf([&] { registry_->AddCounter("lat_count", "c"); }, &code);
  EXPECT_EQ(code, ErrorCode::kAlreadyExists);  // lat's exposition writes lat_count
}

// --- Observing and scraping ---

// Keeps the native histograms of one scrape, by their first label's value ("" without labels).
struct NativeCopy {
  int32_t schema = 0;
  double zero_threshold = 0;
  uint64_t zero_count = 0, count = 0;
  double sum = 0;
  std::map<int32_t, uint64_t> positive, negative;  // index -> count, zeros left out
  size_t exemplars = 0;
  std::string problems;
};

class NativeCapture : public expose::Encoder {
 public:
  std::map<std::string, NativeCopy> got;
  std::string family_type_problems;

  void BeginFamily(const expose::FamilyInfo& f) override {
    if (f.type != expose::MetricType::kHistogram) family_type_problems += "not a histogram; ";
  }
  void Counter(expose::LabelSpan, double, std::optional<double>, const expose::Exemplar*) override {
  }
  void Gauge(expose::LabelSpan, double) override {}
  void Histogram(expose::LabelSpan, std::span<const double>, std::span<const uint64_t>, double,
                 std::optional<double>, std::span<const expose::Exemplar* const>) override {}
  void NativeHistogram(expose::LabelSpan labels, const expose::NativeHistogram& h,
                       std::optional<double>,
                       std::span<const expose::Exemplar* const> exemplars) override {
    NativeCopy c;
    c.schema = h.schema;
    c.zero_threshold = h.zero_threshold;
    c.zero_count = h.zero_count;
    c.count = h.count;
    c.sum = h.sum;
    c.exemplars = exemplars.size();
    uint64_t total = h.zero_count;
    auto unpack = [&](std::span<const expose::BucketSpan> spans, std::span<const uint64_t> counts,
                      std::map<int32_t, uint64_t>* out) {
      size_t k = 0;
      int32_t index = 0;
      for (size_t s = 0; s < spans.size(); ++s) {
        index += spans[s].offset;
        for (uint32_t l = 0; l < spans[s].length; ++l, ++index, ++k) {
          if (k >= counts.size()) {
            c.problems += "spans cover more than the counts; ";
            return;
          }
          total += counts[k];
          if (counts[k] != 0) (*out)[index] = counts[k];
        }
      }
      if (k != counts.size()) c.problems += "counts outside the spans; ";
    };
    unpack(h.positive_spans, h.positive_counts, &c.positive);
    unpack(h.negative_spans, h.negative_counts, &c.negative);
    if (total != h.count) c.problems += "count is not the zero bucket plus every bucket; ";
    got[labels.empty() ? std::string() : std::string(labels[0].value)] = c;
  }
  void Summary(expose::LabelSpan, uint64_t, double, std::span<const expose::Quantile>,
               std::optional<double>) override {}
  void Info(expose::LabelSpan) override {}
  void StateSet(expose::LabelSpan, std::span<const expose::State>) override {}
  void EndFamily() override {}
  void Finish() override {}
};

NativeCapture Capture(const Heap& heap) {
  NativeCapture c;
  const absl::Status s = collect::Collect(shm::HeapAccess::segment(heap), c,
                                          {.self_metrics = false, .process_metrics = false});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.family_type_problems, "");
  return c;
}

TEST_F(NativeHistogramTest, ValuesGoToTheirBucketsAndOutOfRangeOnesToTheOutermost) {
  const double zt = 1e-9;
  auto& f = registry_->AddNativeHistogram(
      "v", "h", {"k"},
      {.schema = 1, .zero_threshold = zt, .min_value = 0.5, .max_value = 8, .max_buckets = 0});
  NativeHistogram h = f.Labels("a");
  const int32_t lo = NativeIndex(0.5, 1), hi = NativeIndex(8.0, 1);
  EXPECT_FALSE(h.Observe(std::nan("")));
  EXPECT_FALSE(h.Observe(-std::nan("")));
  EXPECT_TRUE(h.Observe(0));
  EXPECT_TRUE(h.Observe(zt));
  EXPECT_TRUE(h.Observe(-zt));
  EXPECT_TRUE(h.Observe(-3));                       // no negative buckets: the zero bucket
  EXPECT_TRUE(h.Observe(std::nextafter(zt, 1.0)));  // below the range: the lowest bucket
  EXPECT_TRUE(h.Observe(std::numeric_limits<double>::denorm_min() * 4e9));  // far below zt
  EXPECT_TRUE(h.Observe(1.0));
  EXPECT_TRUE(h.Observe(std::nextafter(1.0, 2.0)));
  EXPECT_TRUE(h.Observe(DBL_MAX));  // above the range: the highest bucket
  EXPECT_TRUE(h.Observe(kInf));
  EXPECT_EQ(h.Count(), 10u);
  const NativeCopy c = Capture(*heap_).got.at("a");
  EXPECT_EQ(c.problems, "");
  EXPECT_EQ(c.schema, 1);
  EXPECT_EQ(c.zero_threshold, zt);
  EXPECT_EQ(c.count, 10u);
  // 0, zt, -zt, -3 and the subnormal multiple (far below zt).
  EXPECT_EQ(c.zero_count, 5u);
  EXPECT_EQ(c.positive, (std::map<int32_t, uint64_t>{{lo, 1}, {0, 1}, {1, 1}, {hi, 2}}));
  EXPECT_TRUE(c.negative.empty());
  EXPECT_EQ(c.sum, kInf);
}

TEST_F(NativeHistogramTest, NegativeBucketsMirrorThePositiveOnes) {
  auto& f = registry_->AddNativeHistogram("v", "h", {},
                                          {.schema = 0,
                                           .zero_threshold = 0.25,
                                           .min_value = 1,
                                           .max_value = 16,
                                           .negative_buckets = true,
                                           .max_buckets = 0});
  NativeHistogram h = f.Labels();
  for (double v : {-0.25, 0.25, -std::nextafter(0.25, 1.0), -1.0, -2.0, -3.0, -1e9, -kInf, 3.0}) {
    EXPECT_TRUE(h.Observe(v));
  }
  const NativeCopy c = Capture(*heap_).got.at("");
  EXPECT_EQ(c.problems, "");
  EXPECT_EQ(c.count, 9u);
  EXPECT_EQ(c.zero_count, 2u);
  // (0, 1] is the lowest bucket kept: -0.25- counts there. 16's bucket (8, 16] is the highest.
  EXPECT_EQ(c.negative, (std::map<int32_t, uint64_t>{{0, 2}, {1, 1}, {2, 1}, {4, 2}}));
  EXPECT_EQ(c.positive, (std::map<int32_t, uint64_t>{{2, 1}}));
  EXPECT_EQ(c.sum, -kInf);
  EXPECT_EQ(h.Sum(), -kInf);
}

TEST_F(NativeHistogramTest, ScrapesLowerTheSchemaToMaxBuckets) {
  auto& f = registry_->AddNativeHistogram(
      "v", "h", {}, {.schema = 8, .min_value = 1e-6, .max_value = 1e4, .max_buckets = 20});
  NativeHistogram h = f.Labels();
  std::vector<double> values;
  for (int i = 0; i < 300; ++i) values.push_back(0.001 * std::pow(1.05, i));
  for (double v : values) h.Observe(v);
  const NativeCopy c = Capture(*heap_).got.at("");
  EXPECT_EQ(c.problems, "");
  EXPECT_LE(c.positive.size(), 20u);
  EXPECT_LT(c.schema, 8);
  std::map<int32_t, uint64_t> direct;
  for (double v : values) ++direct[NativeIndex(v, c.schema)];
  EXPECT_EQ(c.positive, direct);
  std::map<int32_t, uint64_t> one_up;  // one schema higher would not have fit
  for (double v : values) ++one_up[NativeIndex(v, c.schema + 1)];
  EXPECT_GT(one_up.size(), 20u);
}

TEST_F(NativeHistogramTest, ExemplarsArePassedWithTheHistogram) {
  auto& f = registry_->AddNativeHistogram("v", "h", {"k"});
  EXPECT_TRUE(f.Labels("a").ObserveWithExemplar(0.003, {{"trace_id", "abc"}}));
  EXPECT_TRUE(f.Labels("a").ObserveWithExemplar(900, {{"trace_id", "slow"}}));
  EXPECT_FALSE(f.Labels("a").ObserveWithExemplar(std::nan(""), {{"trace_id", "x"}}));
  f.Labels("b").Observe(1);
  NativeCapture c = Capture(*heap_);
  EXPECT_EQ(c.got.at("a").exemplars, 2u);
  EXPECT_EQ(c.got.at("a").count, 2u);
  EXPECT_EQ(c.got.at("b").exemplars, 0u);
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("v_bucket{k=\"a\",le=\"+Inf\"} 2 # {trace_id=\"slow\"} 900"));
}

// Positive values only: OpenMetrics refuses a negative _sum on any histogram.
TEST_F(NativeHistogramTest, TextExpositionIsAnInfOnlyHistogramTheParsersAccept) {
  auto& f = registry_->AddNativeHistogram("rpc_duration", "RPC latency.", {"method"},
                                          {.unit = "seconds", .negative_buckets = true});
  f.Labels("Get").Observe(0.25);
  f.Labels("Get").Observe(1);
  f.Labels("Put").ObserveWithExemplar(0.5, {{"trace_id", "t1"}});
  registry_->AddNativeHistogram("empty", "Never observed.");
  const std::string om = Scrape();
  EXPECT_THAT(om, HasSubstr("# TYPE rpc_duration_seconds histogram\n"));
  EXPECT_THAT(om, HasSubstr("rpc_duration_seconds_bucket{method=\"Get\",le=\"+Inf\"} 2\n"));
  EXPECT_THAT(om, HasSubstr("rpc_duration_seconds_count{method=\"Get\"} 2\n"));
  EXPECT_THAT(om, HasSubstr("rpc_duration_seconds_sum{method=\"Get\"} 1.25\n"));
  EXPECT_THAT(om, HasSubstr("empty_count 0\n"));
  std::string prom;
  auto enc = expose::MakeEncoder(expose::Format::kPrometheus, &prom);
  ASSERT_TRUE(collect::Collect(shm::HeapAccess::segment(*heap_), *enc,
                               {.self_metrics = false, .process_metrics = false})
                  .ok());
  enc->Finish();
  if (!testing::HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client missing";
  EXPECT_EQ(testing::OpenMetricsParserRejects(om), "") << om;
  EXPECT_EQ(testing::PythonProblems(prom, /*openmetrics=*/false), "") << prom;
  EXPECT_EQ(testing::PromtoolRejects(prom), "") << prom;
}

// --- Several processes ---

TEST_F(NativeHistogramTest, ForkedProcessesCountExactly) {
  auto& f = registry_->AddNativeHistogram(
      "v", "h", {"k"}, {.schema = 3, .negative_buckets = true, .max_buckets = 0});
  constexpr int kChildren = 4;
  constexpr int kRounds = 2000;
  // Child c observes, kRounds times, the values of its row: each a bucket bound, next to one,
  // out of range, zero, or negative.
  auto values_of = [](int c) {
    std::vector<double> v = {0.0,
                             1.0,
                             std::nextafter(1.0, 2.0),
                             0.001 * (c + 1),
                             -0.5 * (c + 1),
                             1e9,
                             1e-12,
                             internal::kNativeBounds[32 * c + 1] * 2};
    return v;
  };
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    pids.push_back(testing::ForkChild([&, c] {
      NativeHistogram h = f.Labels("shared");
      for (int r = 0; r < kRounds; ++r) {
        for (double v : values_of(c)) h.Observe(v);
      }
      return 0;
    }));
  }
  for (pid_t p : pids) ASSERT_EQ(testing::WaitChild(p), 0);
  const int32_t lo = NativeIndex(1e-6, 3), hi = NativeIndex(1e4, 3);
  std::map<int32_t, uint64_t> pos, neg;
  uint64_t zero = 0;
  for (int c = 0; c < kChildren; ++c) {
    for (double v : values_of(c)) {
      if (v == 0) {
        zero += kRounds;
        continue;
      }
      const int32_t i = std::clamp(NativeIndex(std::fabs(v), 3), lo, hi);
      (v < 0 ? neg : pos)[i] += kRounds;
    }
  }
  const NativeCopy got = Capture(*heap_).got.at("shared");
  EXPECT_EQ(got.problems, "");
  EXPECT_EQ(got.count, uint64_t{kChildren} * kRounds * 8);
  EXPECT_EQ(got.zero_count, zero);
  EXPECT_EQ(got.positive, pos);
  EXPECT_EQ(got.negative, neg);
}

// Two threads here and a forked process observe while this thread scrapes: every scrape has
// count == zero bucket + every bucket, and no bucket, count or sum goes down. Each writer stops
// half-way until a scrape has seen that state, so at least one scrape falls between writes
// however fast the writers run (under TSan they could otherwise finish before the second one).
TEST_F(NativeHistogramTest, ScrapesAreConsistentUnderConcurrentWriters) {
  auto& f = registry_->AddNativeHistogram(
      "v", "h", {}, {.schema = 2, .negative_buckets = true, .max_buckets = 0});
  constexpr int kPerWriter = testing::kSanitized ? 20000 : 200000;
  constexpr int kWriters = 3;
  // Half-way, every writer puts a byte into `half` and waits for one from `go`.
  int half[2], go[2];
  ASSERT_EQ(pipe(half), 0);
  ASSERT_EQ(pipe(go), 0);
  auto work = [&](uint64_t seed) {
    NativeHistogram h = f.Labels();
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> d(-4, 2);
    for (int i = 0; i < kPerWriter; ++i) {
      if (i == kPerWriter / 2) {
        char b = 'h';
        const bool waited = write(half[1], &b, 1) == 1 && read(go[0], &b, 1) == 1;
        (void)waited;  // when not, the test gave up at its deadline: go on
      }
      const double v = d(rng);
      h.Observe(i % 5 == 0 ? -v : v);
    }
  };
  const pid_t child = testing::ForkChild([&] {
    close(go[1]);
    work(1);
    return 0;
  });
  std::atomic<int> done{0};
  std::thread t1([&] {
    work(2);
    done++;
  });
  std::thread t2([&] {
    work(3);
    done++;
  });
  NativeCopy prev;
  int scrapes = 0, halves = 0;
  int status = 0;
  bool child_done = false, released = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_done && waitpid(child, &status, WNOHANG) == child) child_done = true;
    pollfd p{half[0], POLLIN, 0};
    char b;
    while (halves < kWriters && poll(&p, 1, 0) == 1 && read(half[0], &b, 1) == 1) ++halves;
    const bool at_half = !released && halves == kWriters;
    const bool last = child_done && done.load() == 2;
    const NativeCopy c = Capture(*heap_).got.at("");
    ++scrapes;
    ASSERT_EQ(c.problems, "") << "scrape " << scrapes;
    ASSERT_GE(c.count, prev.count);
    ASSERT_GE(c.zero_count, prev.zero_count);
    for (auto [i, n] : prev.positive) ASSERT_GE(c.positive.count(i) ? c.positive.at(i) : 0, n);
    for (auto [i, n] : prev.negative) ASSERT_GE(c.negative.count(i) ? c.negative.at(i) : 0, n);
    prev = c;
    if (at_half) {
      // Every writer is waiting: this scrape saw half of each one's observations.
      EXPECT_EQ(c.count, uint64_t{kWriters} * (kPerWriter / 2));
      released = true;
      ASSERT_EQ(write(go[1], std::string(kWriters, 'g').data(), kWriters), kWriters);
    }
    if (last) break;
  }
  close(go[1]);  // ends the wait of any writer still waiting
  t1.join();
  t2.join();
  if (!child_done) {
    ASSERT_EQ(testing::WaitChild(child), 0);
  }
  for (int fd : {half[0], half[1], go[0]}) close(fd);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(released);
  EXPECT_EQ(prev.count, uint64_t{kWriters} * kPerWriter);
  EXPECT_GT(scrapes, 1);
}

}  // namespace
}  // namespace shmetrics
