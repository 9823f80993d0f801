// The protobuf encoder's bytes: a hand-computed case, and the rest read back by a small wire
// decoder written from the protobuf encoding rules, independent of the encoder's own helpers.
// (The whole of every_type decoded by libprotobuf's Python module is tests/e2e/protobuf_test.)
#include "expose/protobuf_encoder.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "expose/encoder.h"

namespace shmetrics::expose {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// One field of a message as it is on the wire.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;  // wire type 0; the raw bits for 1
  std::string bytes;    // wire type 2
  double AsDouble() const { return std::bit_cast<double>(varint); }
  int64_t AsSint() const { return UnZigZag(varint); }
  static int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }
};

FamilyInfo Family(std::string_view name, MetricType type, std::string_view help = "",
                  std::string_view unit = "") {
  return FamilyInfo{.name = name, .type = type, .help = help, .unit = unit};
}

bool ReadVarint(std::string_view* s, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !s->empty(); shift += 7) {
    const auto b = static_cast<uint8_t>(s->front());
    s->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// The fields of one message, in order. Fails the test on anything malformed.
std::vector<Field> Parse(std::string_view s) {
  std::vector<Field> fields;
  while (!s.empty()) {
    uint64_t tag = 0;
    if (!ReadVarint(&s, &tag)) {
      ADD_FAILURE() << "bad tag";
      return fields;
    }
    Field f;
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire_type = static_cast<uint32_t>(tag & 7);
    if (f.wire_type == 0) {
      EXPECT_TRUE(ReadVarint(&s, &f.varint));
    } else if (f.wire_type == 1) {
      EXPECT_GE(s.size(), 8u);
      if (s.size() < 8) return fields;
      for (int i = 7; i >= 0; --i) f.varint = (f.varint << 8) | static_cast<uint8_t>(s[i]);
      s.remove_prefix(8);
    } else if (f.wire_type == 2) {
      uint64_t n = 0;
      EXPECT_TRUE(ReadVarint(&s, &n));
      EXPECT_LE(n, s.size());
      if (n > s.size()) return fields;
      f.bytes = std::string(s.substr(0, n));
      s.remove_prefix(n);
    } else {
      ADD_FAILURE() << "wire type " << f.wire_type;
      return fields;
    }
    fields.push_back(std::move(f));
  }
  return fields;
}

std::vector<Field> All(const std::vector<Field>& fields, uint32_t number) {
  std::vector<Field> out;
  for (const Field& f : fields) {
    if (f.number == number) out.push_back(f);
  }
  return out;
}

Field One(const std::vector<Field>& fields, uint32_t number) {
  const std::vector<Field> all = All(fields, number);
  EXPECT_EQ(all.size(), 1u) << "field " << number;
  return all.empty() ? Field{} : all[0];
}

bool Has(const std::vector<Field>& fields, uint32_t number) { return !All(fields, number).empty(); }

// The delimited stream's MetricFamily messages.
std::vector<std::string> Families(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    uint64_t n = 0;
    EXPECT_TRUE(ReadVarint(&s, &n));
    EXPECT_LE(n, s.size());
    if (n > s.size()) break;
    out.emplace_back(s.substr(0, n));
    s.remove_prefix(n);
  }
  return out;
}

std::string EncodeOne(const FamilyInfo& family, const std::function<void(Encoder&)>& body,
                      const EncoderOptions& options = {}) {
  std::string out;
  auto enc = MakeEncoder(Format::kProtobuf, &out, options);
  enc->BeginFamily(family);
  body(*enc);
  enc->EndFamily();
  enc->Finish();
  return out;
}

// The single family of an encoding, parsed.
std::vector<Field> OnlyFamily(const std::string& encoded) {
  const std::vector<std::string> families = Families(encoded);
  EXPECT_EQ(families.size(), 1u);
  return families.empty() ? std::vector<Field>{} : Parse(families[0]);
}

std::vector<std::pair<std::string, std::string>> LabelsOf(const std::vector<Field>& message) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Field& l : All(message, 1)) {
    const auto pair = Parse(l.bytes);
    out.emplace_back(One(pair, 1).bytes, One(pair, 2).bytes);
  }
  return out;
}

TEST(ProtobufEncoderTest, CounterBytesAsComputedByHand) {
  const std::string out = EncodeOne(Family("a", MetricType::kCounter), [](Encoder& e) {
    const Label labels[] = {{"k", "v"}};
    e.Counter(labels, 1, std::nullopt, nullptr);
  });
  const std::string want(
      "\x20"  // MetricFamily, 32 bytes
      "\x0a\x07"
      "a_total"   // name
      "\x18\x00"  // type COUNTER
      "\x22\x13"  // metric, 19 bytes
      "\x0a\x06"
      "\x0a\x01k"
      "\x12\x01v"  // label k="v"
      "\x1a\x09"
      "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f",  // counter { value 1.0 }
      33);
  EXPECT_EQ(out, want);
}

TEST(ProtobufEncoderTest, LongMessagesGetMultiByteLengths) {
  const std::string help(300, 'h');
  const std::string value(200, 'v');
  const std::string out = EncodeOne(Family("g", MetricType::kGauge, help), [&](Encoder& e) {
    for (int i = 0; i < 100; ++i) {
      const Label labels[] = {{"id", value}};
      e.Gauge(labels, i);
    }
  });
  const auto family = OnlyFamily(out);
  EXPECT_EQ(One(family, 1).bytes, "g");
  EXPECT_EQ(One(family, 2).bytes, help);
  EXPECT_EQ(One(family, 3).varint, 1u);  // GAUGE
  const auto metrics = All(family, 4);
  ASSERT_EQ(metrics.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    const auto m = Parse(metrics[i].bytes);
    EXPECT_EQ(LabelsOf(m), (std::vector<std::pair<std::string, std::string>>{{"id", value}}));
    EXPECT_EQ(One(Parse(One(m, 2).bytes), 1).AsDouble(), i);
  }
}

TEST(ProtobufEncoderTest, CounterCreatedAndExemplar) {
  const Label ex_labels[] = {{"trace_id", "abc"}};
  const Exemplar ex{.labels = ex_labels, .value = 2.5, .timestamp = 1700000000.25};
  const auto body = [&](Encoder& e) { e.Counter({}, 7, 1600000000.5, &ex); };
  const auto family = OnlyFamily(EncodeOne(Family("jobs", MetricType::kCounter), body));
  EXPECT_EQ(One(family, 1).bytes, "jobs_total");
  const auto counter = Parse(One(Parse(One(family, 4).bytes), 3).bytes);
  EXPECT_EQ(One(counter, 1).AsDouble(), 7);
  const auto created = Parse(One(counter, 3).bytes);
  EXPECT_EQ(One(created, 1).varint, 1600000000u);
  EXPECT_EQ(One(created, 2).varint, 500000000u);
  const auto exemplar = Parse(One(counter, 2).bytes);
  EXPECT_EQ(LabelsOf(exemplar),
            (std::vector<std::pair<std::string, std::string>>{{"trace_id", "abc"}}));
  EXPECT_EQ(One(exemplar, 2).AsDouble(), 2.5);
  const auto ts = Parse(One(exemplar, 3).bytes);
  EXPECT_EQ(One(ts, 1).varint, 1700000000u);
  EXPECT_EQ(One(ts, 2).varint, 250000000u);

  // Without created timestamps, and with a created time no Timestamp can hold.
  const auto without =
      OnlyFamily(EncodeOne(Family("jobs", MetricType::kCounter), body, {.created = false}));
  EXPECT_FALSE(Has(Parse(One(Parse(One(without, 4).bytes), 3).bytes), 3));
  const auto huge = OnlyFamily(EncodeOne(Family("jobs", MetricType::kCounter),
                                         [](Encoder& e) { e.Counter({}, 1, 1e300, nullptr); }));
  EXPECT_FALSE(Has(Parse(One(Parse(One(huge, 4).bytes), 3).bytes), 3));
}

TEST(ProtobufEncoderTest, ClassicHistogramLeavesOutTheInfBucketUnlessItHasAnExemplar) {
  const double bounds[] = {0.1, 1};
  const uint64_t cumulative[] = {1, 3, 4};
  Exemplar ex;
  ex.value = 5;
  const Exemplar* without[] = {nullptr, nullptr, nullptr};
  const Exemplar* with_inf[] = {&ex, nullptr, &ex};
  for (const bool inf_exemplar : {false, true}) {
    const auto family =
        OnlyFamily(EncodeOne(Family("lat", MetricType::kHistogram), [&](Encoder& e) {
          e.Histogram({}, bounds, cumulative, 9.5, 100, inf_exemplar ? with_inf : without);
        }));
    EXPECT_EQ(One(family, 1).bytes, "lat");
    EXPECT_EQ(One(family, 3).varint, 4u);  // HISTOGRAM
    const auto h = Parse(One(Parse(One(family, 4).bytes), 7).bytes);
    EXPECT_EQ(One(h, 1).varint, 4u);
    EXPECT_EQ(One(h, 2).AsDouble(), 9.5);
    EXPECT_EQ(One(Parse(One(h, 15).bytes), 1).varint, 100u);
    EXPECT_FALSE(Has(h, 5)) << "a classic histogram has no schema";
    const auto buckets = All(h, 3);
    ASSERT_EQ(buckets.size(), inf_exemplar ? 3u : 2u);
    for (size_t i = 0; i < buckets.size(); ++i) {
      const auto b = Parse(buckets[i].bytes);
      EXPECT_EQ(One(b, 1).varint, cumulative[i]);
      EXPECT_EQ(One(b, 2).AsDouble(), i < 2 ? bounds[i] : kInf);
      EXPECT_EQ(Has(b, 3), inf_exemplar && i != 1);
    }
  }
}

TEST(ProtobufEncoderTest, NativeHistogramSpansAndDeltas) {
  const BucketSpan pos_spans[] = {{.offset = -2, .length = 2}, {.offset = 1, .length = 1}};
  const uint64_t pos_counts[] = {3, 1, 4};
  const BucketSpan neg_spans[] = {{.offset = 5, .length = 1}};
  const uint64_t neg_counts[] = {2};
  NativeHistogram nh;
  nh.schema = -1;
  nh.zero_threshold = 1e-9;
  nh.zero_count = 1;
  nh.count = 11;
  nh.sum = -3.5;
  nh.positive_spans = pos_spans;
  nh.positive_counts = pos_counts;
  nh.negative_spans = neg_spans;
  nh.negative_counts = neg_counts;
  Exemplar ex;
  ex.value = 0.5;
  const Exemplar* exemplars[] = {&ex};
  const auto family = OnlyFamily(EncodeOne(Family("rt", MetricType::kHistogram), [&](Encoder& e) {
    e.NativeHistogram({}, nh, 42, exemplars);
  }));
  const auto h = Parse(One(Parse(One(family, 4).bytes), 7).bytes);
  EXPECT_EQ(One(h, 1).varint, 11u);
  EXPECT_EQ(One(h, 2).AsDouble(), -3.5);
  EXPECT_EQ(One(h, 5).AsSint(), -1);
  EXPECT_EQ(One(h, 6).AsDouble(), 1e-9);
  EXPECT_EQ(One(h, 7).varint, 1u);
  EXPECT_FALSE(Has(h, 3)) << "no classic buckets";
  const auto spans = All(h, 12);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(One(Parse(spans[0].bytes), 1).AsSint(), -2);
  EXPECT_EQ(One(Parse(spans[0].bytes), 2).varint, 2u);
  EXPECT_EQ(One(Parse(spans[1].bytes), 1).AsSint(), 1);
  EXPECT_EQ(One(Parse(spans[1].bytes), 2).varint, 1u);
  // Packed sint64 deltas: 3, 1-3, 4-1.
  const std::string packed_bytes = One(h, 13).bytes;
  std::string_view packed = packed_bytes;
  std::vector<int64_t> deltas;
  for (uint64_t v; !packed.empty() && ReadVarint(&packed, &v);) {
    deltas.push_back(Field::UnZigZag(v));
  }
  EXPECT_EQ(deltas, (std::vector<int64_t>{3, -2, 3}));
  EXPECT_EQ(One(Parse(One(h, 9).bytes), 1).AsSint(), 5);
  EXPECT_EQ(One(h, 10).bytes, "\x04");  // zigzag(2)
  EXPECT_EQ(One(Parse(One(h, 15).bytes), 1).varint, 42u);
  EXPECT_EQ(One(Parse(One(h, 16).bytes), 2).AsDouble(), 0.5);
}

TEST(ProtobufEncoderTest, EmptyNativeHistogramIsMarkedNativeByAnEmptySpan) {
  NativeHistogram nh;
  nh.schema = 3;
  const auto family = OnlyFamily(EncodeOne(Family("rt", MetricType::kHistogram), [&](Encoder& e) {
    e.NativeHistogram({}, nh, std::nullopt, {});
  }));
  const auto h = Parse(One(Parse(One(family, 4).bytes), 7).bytes);
  EXPECT_EQ(One(h, 5).AsSint(), 3);
  const auto span = Parse(One(h, 12).bytes);
  EXPECT_EQ(One(span, 1).varint, 0u);
  EXPECT_EQ(One(span, 2).varint, 0u);
  EXPECT_FALSE(Has(h, 13));
  EXPECT_FALSE(Has(h, 15));
}

TEST(ProtobufEncoderTest, SummaryInfoStateSetAndUnknown) {
  std::string out;
  auto enc = MakeEncoder(Format::kProtobuf, &out);
  enc->BeginFamily(Family("payload_bytes", MetricType::kSummary, "", "bytes"));
  const Quantile q[] = {{0.5, 10}, {0.99, 20}};
  enc->Summary({}, 3, 30, q, 5);
  enc->EndFamily();
  enc->BeginFamily(Family("build", MetricType::kInfo, "Build", "x"));
  const Label version[] = {{"version", "1.0"}};
  enc->Info(version);
  enc->EndFamily();
  enc->BeginFamily(Family("mode", MetricType::kStateSet));
  const State states[] = {{"on", true}, {"off", false}};
  const Label component[] = {{"component", "api"}};
  enc->StateSet(component, states);
  enc->EndFamily();
  enc->BeginFamily(Family("thing", MetricType::kUnknown));
  enc->Gauge({}, -1);
  enc->EndFamily();
  enc->Finish();
  const std::vector<std::string> families = Families(out);
  ASSERT_EQ(families.size(), 4u);

  const auto summary = Parse(families[0]);
  EXPECT_EQ(One(summary, 1).bytes, "payload_bytes");
  EXPECT_EQ(One(summary, 3).varint, 2u);  // SUMMARY
  EXPECT_EQ(One(summary, 5).bytes, "bytes");
  const auto s = Parse(One(Parse(One(summary, 4).bytes), 4).bytes);
  EXPECT_EQ(One(s, 1).varint, 3u);
  EXPECT_EQ(One(s, 2).AsDouble(), 30);
  ASSERT_EQ(All(s, 3).size(), 2u);
  EXPECT_EQ(One(Parse(All(s, 3)[1].bytes), 1).AsDouble(), 0.99);
  EXPECT_EQ(One(Parse(All(s, 3)[1].bytes), 2).AsDouble(), 20);
  EXPECT_EQ(One(Parse(One(s, 4).bytes), 1).varint, 5u);

  const auto info = Parse(families[1]);
  EXPECT_EQ(One(info, 1).bytes, "build_info");
  EXPECT_EQ(One(info, 2).bytes, "Build");
  EXPECT_EQ(One(info, 3).varint, 1u);  // GAUGE
  EXPECT_FALSE(Has(info, 5)) << "an info has no unit";
  const auto info_metric = Parse(One(info, 4).bytes);
  EXPECT_EQ(LabelsOf(info_metric),
            (std::vector<std::pair<std::string, std::string>>{{"version", "1.0"}}));
  EXPECT_EQ(One(Parse(One(info_metric, 2).bytes), 1).AsDouble(), 1);

  const auto stateset = Parse(families[2]);
  EXPECT_EQ(One(stateset, 1).bytes, "mode");
  EXPECT_EQ(One(stateset, 3).varint, 1u);
  const auto metrics = All(stateset, 4);
  ASSERT_EQ(metrics.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const auto m = Parse(metrics[i].bytes);
    EXPECT_EQ(LabelsOf(m), (std::vector<std::pair<std::string, std::string>>{
                               {"component", "api"}, {"mode", i == 0 ? "on" : "off"}}));
    EXPECT_EQ(One(Parse(One(m, 2).bytes), 1).AsDouble(), i == 0 ? 1 : 0);
  }

  const auto unknown = Parse(families[3]);
  EXPECT_EQ(One(unknown, 3).varint, 3u);  // UNTYPED
  EXPECT_EQ(One(Parse(One(Parse(One(unknown, 4).bytes), 5).bytes), 1).AsDouble(), -1);
}

// Names outside the legacy set are escaped as in the text formats, and a family or series that
// escaping would make twice is left out the same way.
TEST(ProtobufEncoderTest, NamesAreEscapedAsTheExpositionAsks) {
  auto two_families = [](Escaping escaping) {
    std::string out;
    auto enc = MakeEncoder(Format::kProtobuf, &out, {.escaping = escaping});
    const Label labels[] = {{"http.method", "GET"}};
    enc->BeginFamily(Family("req.count", MetricType::kGauge));
    enc->Gauge(labels, 1);
    enc->EndFamily();
    enc->BeginFamily(Family("req_count", MetricType::kGauge));  // req.count's escaped name
    enc->Gauge({}, 2);
    enc->EndFamily();
    enc->Finish();
    return out;
  };
  std::vector<std::string> families = Families(two_families(Escaping::kUnderscores));
  ASSERT_EQ(families.size(), 1u);
  std::vector<Field> family = Parse(families[0]);
  EXPECT_EQ(One(family, 1).bytes, "req_count");
  std::vector<Field> metric = Parse(One(family, 4).bytes);
  EXPECT_EQ(LabelsOf(metric),
            (std::vector<std::pair<std::string, std::string>>{{"http_method", "GET"}}));

  families = Families(two_families(Escaping::kValues));
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(One(Parse(families[0]), 1).bytes, "U__req_2e_count");
  EXPECT_EQ(LabelsOf(Parse(One(Parse(families[0]), 4).bytes)),
            (std::vector<std::pair<std::string, std::string>>{{"U__http_2e_method", "GET"}}));

  families = Families(two_families(Escaping::kAllowUtf8));
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(One(Parse(families[0]), 1).bytes, "req.count");
  EXPECT_EQ(One(Parse(families[1]), 1).bytes, "req_count");

  // Two labels that escape alike: the series is left out, the family stays.
  const std::string out = EncodeOne(Family("g", MetricType::kGauge), [](Encoder& enc) {
    const Label clash[] = {{"a.b", "1"}, {"a_b", "2"}};
    enc.Gauge(clash, 1);
    enc.Gauge({}, 2);
  });
  EXPECT_EQ(All(OnlyFamily(out), 4).size(), 1u);
}

TEST(ProtobufEncoderTest, AppendsToWhatIsAlreadyThere) {
  std::string out = "xy";
  auto enc = MakeEncoder(Format::kProtobuf, &out);
  enc->BeginFamily(Family("up", MetricType::kGauge));
  enc->Gauge({}, 1);
  enc->EndFamily();
  enc->Finish();
  ASSERT_GT(out.size(), 2u);
  EXPECT_EQ(out.substr(0, 2), "xy");
  EXPECT_EQ(One(Parse(Families(out.substr(2))[0]), 1).bytes, "up");
}

}  // namespace
}  // namespace shmetrics::expose
