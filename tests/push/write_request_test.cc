// The remote-write payload: decoded independently, it holds exactly the samples a Prometheus text
// scrape of the same heaps shows, with sorted labels, the extra labels and one timestamp.
#include "push/write_request.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "collect/exposition.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "push/samples.h"
#include "push/wire_decoder.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics::push {
namespace {

using ::shmetrics::testing::DecodedSeries;
using ::shmetrics::testing::DecodeWriteRequest;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Pair;

using ::shmetrics::testing::LabelSet;
using ::shmetrics::testing::TextSamples;

std::string Key(LabelSet labels, double value) {
  return ::shmetrics::testing::SampleKey(std::move(labels), value);
}

class WriteRequestTest : public ::testing::Test {
 protected:
  WriteRequestTest() : name_(UniqueHeapName("rw")), heap_(Heap::Create(name_)), registry_(heap_) {}
  ~WriteRequestTest() override { Heap::Remove(name_); }

  std::vector<DecodedSeries> Encode(const std::vector<Heap>& heaps,
                                    const WriteRequestOptions& options, uint64_t* samples) {
    std::string body;
    auto enc = MakeWriteRequestEncoder(options, &body, samples);
    collect::CollectOptions o;
    o.process_metrics = false;
    EXPECT_TRUE(collect::CollectHeaps(heaps, *enc, o).ok());
    enc->Finish();
    // Through snappy and back, as it travels.
    const auto raw = ::shmetrics::testing::SnappyUncompress(SnappyCompress(body));
    EXPECT_EQ(raw, body);
    auto decoded = DecodeWriteRequest(body);
    EXPECT_TRUE(decoded.has_value());
    return decoded.value_or(std::vector<DecodedSeries>{});
  }

  std::string Text(const std::vector<Heap>& heaps) {
    std::string text;
    collect::CollectOptions o;
    o.process_metrics = false;
    EXPECT_TRUE(collect::EncodeHeaps(heaps, expose::Format::kPrometheus, o, &text).ok());
    return text;
  }

  void Fill(Registry& r) {
    r.AddCounter("jobs", "Jobs", {"kind"}).Labels("mail").Inc(7);
    r.AddGauge("temp_celsius", "T", {"sensor"}).Labels("a\"b\\c\nd").Set(-1.5);
    r.AddGauge("inf_gauge", "T", {"sensor"}).Labels("x").Set(INFINITY);
    auto& h = r.AddHistogram("latency_seconds", "L", {"path"}, {.buckets = {0.1, 1, 2.5}});
    h.Labels("/a").Observe(0.05);
    h.Labels("/a").Observe(2);
    r.AddSummary("size_bytes", "S", {}, {.quantiles = {0.5, 0.99}}).Labels().Observe(10);
    r.AddInfo("build", "B", {"version"}).Labels("1.2");
    r.AddStateSet("mode", "M", {}, {"on", "off"}).Labels();
  }

  std::string name_;
  Heap heap_;
  Registry registry_;
};

TEST_F(WriteRequestTest, HoldsExactlyTheSamplesOfATextScrape) {
  Fill(registry_);
  uint64_t samples = 0;
  const auto series = Encode({heap_}, {.timestamp_ms = 1700000000123}, &samples);
  std::multiset<std::string> pushed;
  for (const DecodedSeries& s : series) {
    ASSERT_EQ(s.samples.size(), 1u);
    EXPECT_EQ(s.samples[0].second, 1700000000123);
    pushed.insert(Key(s.labels, s.samples[0].first));
  }
  EXPECT_EQ(samples, series.size());
  EXPECT_EQ(pushed, TextSamples(Text({heap_})));
  EXPECT_THAT(
      pushed,
      Contains(Key({{"__name__", "latency_seconds_bucket"}, {"path", "/a"}, {"le", "+Inf"}}, 2)));
  EXPECT_THAT(pushed, Contains(Key({{"__name__", "jobs_total"}, {"kind", "mail"}}, 7)));
  EXPECT_THAT(pushed, Contains(Key({{"__name__", "size_bytes_sum"}}, 10)));
  EXPECT_THAT(pushed, Contains(Key({{"__name__", "mode"}, {"mode", "on"}}, 0)));
}

TEST_F(WriteRequestTest, SeveralHeapsCarryTheHeapLabelAsTheScrapeDoes) {
  const std::string other_name = UniqueHeapName("rw2");
  Heap other = Heap::Create(other_name);
  Registry other_registry(other);
  Fill(registry_);
  Fill(other_registry);
  uint64_t samples = 0;
  const auto series = Encode({heap_, other}, {}, &samples);
  std::multiset<std::string> pushed;
  for (const DecodedSeries& s : series) pushed.insert(Key(s.labels, s.samples.at(0).first));
  EXPECT_EQ(pushed, TextSamples(Text({heap_, other})));
  EXPECT_THAT(pushed,
              Contains(Key({{"__name__", "jobs_total"}, {"kind", "mail"}, {"heap", name_}}, 7)));
  Heap::Remove(other_name);
}

TEST_F(WriteRequestTest, LabelsAreSortedAndExtraLabelsYieldToTheSeriesOwn) {
  registry_.AddCounter("jobs", "Jobs", {"job", "Zone", "a"}).Labels("own", "z", "x").Inc();
  uint64_t samples = 0;
  const auto series =
      Encode({heap_}, {.extra_labels = {{"job", "pusher"}, {"instance", "host:1"}, {"dc", "eu"}}},
             &samples);
  const DecodedSeries* jobs = nullptr;
  for (const DecodedSeries& s : series) {
    for (const auto& l : s.labels) {
      if (l == std::pair<std::string, std::string>{"__name__", "jobs_total"}) jobs = &s;
    }
    // Sorted bytewise: uppercase before "__name__", lowercase after.
    EXPECT_TRUE(std::is_sorted(s.labels.begin(), s.labels.end(),
                               [](const auto& a, const auto& b) { return a.first < b.first; }));
  }
  ASSERT_NE(jobs, nullptr);
  EXPECT_THAT(jobs->labels,
              ElementsAre(Pair("Zone", "z"), Pair("__name__", "jobs_total"), Pair("a", "x"),
                          Pair("dc", "eu"), Pair("instance", "host:1"), Pair("job", "own")));
}

TEST(WriteRequestEncoderTest, EncodesValuesTimestampsAndLongLabelsOnTheWire) {
  std::string body;
  auto enc = MakeWriteRequestEncoder({.timestamp_ms = -5}, &body);
  const std::string long_value(300, 'v');  // a two-byte length
  const expose::Label labels[] = {{"l", long_value}};
  enc->BeginFamily({.name = "g", .type = expose::MetricType::kGauge, .help = "", .unit = ""});
  enc->Gauge(labels, NAN);
  enc->Gauge({}, 0.25);
  enc->EndFamily();
  enc->Finish();
  const auto series = DecodeWriteRequest(body);
  ASSERT_TRUE(series.has_value());
  ASSERT_EQ(series->size(), 2u);
  EXPECT_THAT((*series)[0].labels, ElementsAre(Pair("__name__", "g"), Pair("l", long_value)));
  EXPECT_TRUE(std::isnan((*series)[0].samples.at(0).first));
  EXPECT_EQ((*series)[0].samples.at(0).second, -5);
  EXPECT_EQ((*series)[1].samples.at(0).first, 0.25);
}

TEST(WriteRequestEncoderTest, AnEmptyHeapIsAnEmptyRequest) {
  std::string body;
  auto enc = MakeWriteRequestEncoder({}, &body);
  enc->Finish();
  EXPECT_EQ(body, "");
  EXPECT_EQ(SnappyCompress(body), std::string(1, '\0'));  // snappy: length 0, no data
}

}  // namespace
}  // namespace shmetrics::push
