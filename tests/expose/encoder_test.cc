#include "expose/encoder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "expose/exposition_helpers.h"

namespace shmetrics::expose {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

FamilyInfo Family(std::string_view name, MetricType type, std::string_view help = "",
                  std::string_view unit = "") {
  return FamilyInfo{.name = name, .type = type, .help = help, .unit = unit};
}

// Encodes one family holding the series that body writes.
std::string EncodeFamily(Format format, const FamilyInfo& family,
                         const std::function<void(Encoder&)>& body) {
  return Encode(format, [&](Encoder& enc) {
    enc.BeginFamily(family);
    body(enc);
    enc.EndFamily();
  });
}

TEST(EncoderTest, EmptyExposition) {
  EXPECT_EQ(Encode(Format::kOpenMetrics, [](Encoder&) {}), "# EOF\n");
  EXPECT_EQ(Encode(Format::kPrometheus, [](Encoder&) {}), "");
}

TEST(EncoderTest, AppendsToWhatIsAlreadyThere) {
  std::string out = "prefix\n";
  auto enc = MakeEncoder(Format::kOpenMetrics, &out);
  enc->BeginFamily(Family("up", MetricType::kGauge));
  enc->Gauge({}, 1);
  enc->EndFamily();
  enc->Finish();
  EXPECT_EQ(out, "prefix\n# TYPE up gauge\nup 1\n# EOF\n");
}

TEST(EncoderTest, FamilyWithoutSeries) {
  const FamilyInfo f = Family("jobs", MetricType::kCounter, "Jobs run.");
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, f, [](Encoder&) {}),
            "# TYPE jobs counter\n# HELP jobs Jobs run.\n# EOF\n");
  EXPECT_EQ(EncodeFamily(Format::kPrometheus, f, [](Encoder&) {}),
            "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\n");
}

// --- Counters ---

void WriteCounters(Encoder& enc) {
  const Label labels[] = {{"method", "GET"}, {"code", "200"}};
  const Label trace[] = {{"trace_id", "abc"}};
  const Exemplar with_ts{.labels = trace, .value = 0.5, .timestamp = 1700000000.25};
  enc.Counter(labels, 42, 1700000000, &with_ts);
  const Label labels2[] = {{"method", "POST"}, {"code", "500"}};
  const Exemplar no_ts{.labels = {}, .value = 3, .timestamp = std::nullopt};
  enc.Counter(labels2, 0.5, std::nullopt, &no_ts);
  enc.Counter({}, 7, 1.5, nullptr);
}

TEST(EncoderTest, CounterOpenMetrics) {
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics,
                         Family("http_requests", MetricType::kCounter, "Requests served."),
                         WriteCounters),
            "# TYPE http_requests counter\n"
            "# HELP http_requests Requests served.\n"
            "http_requests_total{method=\"GET\",code=\"200\"} 42 # {trace_id=\"abc\"} 0.5 "
            "1700000000.25\n"
            "http_requests_created{method=\"GET\",code=\"200\"} 1700000000\n"
            "http_requests_total{method=\"POST\",code=\"500\"} 0.5 # {} 3\n"
            "http_requests_total 7\n"
            "http_requests_created 1.5\n"
            "# EOF\n");
}

TEST(EncoderTest, CounterPrometheusHasNoCreatedNorExemplars) {
  EXPECT_EQ(EncodeFamily(Format::kPrometheus,
                         Family("http_requests", MetricType::kCounter, "Requests served."),
                         WriteCounters),
            "# HELP http_requests_total Requests served.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{method=\"GET\",code=\"200\"} 42\n"
            "http_requests_total{method=\"POST\",code=\"500\"} 0.5\n"
            "http_requests_total 7\n");
}

TEST(EncoderTest, UnitLineOnlyInOpenMetricsAndOnlyWhenSet) {
  const auto body = [](Encoder& enc) { enc.Counter({}, 1, std::nullopt, nullptr); };
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics,
                         Family("cpu_seconds", MetricType::kCounter, "CPU time.", "seconds"), body),
            "# TYPE cpu_seconds counter\n"
            "# UNIT cpu_seconds seconds\n"
            "# HELP cpu_seconds CPU time.\n"
            "cpu_seconds_total 1\n"
            "# EOF\n");
  EXPECT_EQ(EncodeFamily(Format::kPrometheus,
                         Family("cpu_seconds", MetricType::kCounter, "CPU time.", "seconds"), body),
            "# HELP cpu_seconds_total CPU time.\n"
            "# TYPE cpu_seconds_total counter\n"
            "cpu_seconds_total 1\n");
}

TEST(EncoderTest, ExemplarOverTheLabelLimitIsDropped) {
  // 128 characters of names and values is the OpenMetrics limit; é counts as one character.
  const std::string at_limit_value(128 - 2 - 1, 'x');
  const std::string at_limit = at_limit_value + "\xc3\xa9";  // 127 characters, 128 bytes
  const std::string over_limit = at_limit + "y";
  const Label fits[] = {{"id", at_limit}};
  const Label too_long[] = {{"id", over_limit}};
  const Exemplar ok{.labels = fits, .value = 1, .timestamp = std::nullopt};
  const Exemplar dropped{.labels = too_long, .value = 1, .timestamp = std::nullopt};
  const std::string out =
      EncodeFamily(Format::kOpenMetrics, Family("c", MetricType::kCounter), [&](Encoder& enc) {
        const Label a[] = {{"s", "a"}};
        const Label b[] = {{"s", "b"}};
        enc.Counter(a, 1, std::nullopt, &ok);
        enc.Counter(b, 1, std::nullopt, &dropped);
      });
  EXPECT_EQ(out,
            "# TYPE c counter\n"
            "c_total{s=\"a\"} 1 # {id=\"" +
                at_limit +
                "\"} 1\n"
                "c_total{s=\"b\"} 1\n"
                "# EOF\n");
}

TEST(EncoderTest, ExemplarTimestampThatIsNotFiniteIsLeftOut) {
  const Exemplar ex{.labels = {}, .value = 2, .timestamp = kNaN};
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("c", MetricType::kCounter),
                         [&](Encoder& enc) { enc.Counter({}, 1, std::nullopt, &ex); }),
            "# TYPE c counter\nc_total 1 # {} 2\n# EOF\n");
}

// --- Gauges and sample values ---

TEST(EncoderTest, GaugeSpecialValues) {
  const std::vector<std::pair<double, std::string>> cases = {
      {kInf, "+Inf"},
      {-kInf, "-Inf"},
      {kNaN, "NaN"},
      {0.0, "0"},
      {-0.0, "-0"},
      {1e-300, "1e-300"},
      {1e300, "1e+300"},
      {0.1, "0.1"},
      {-2.5, "-2.5"},
      {1000000, "1000000"},
      {9007199254740991.0, "9007199254740991"},          // 2^53 - 1
      {9007199254740992.0, "9007199254740992"},          // 2^53
      {-9007199254740992.0, "-9007199254740992"},        // -2^53
      {9007199254740994.0, "9007199254740994"},          // 2^53 + 2, shortest form is still fixed
      {18446744073709551616.0, "18446744073709551616"},  // 2^64: fixed form prints it exactly
      {1e21, "1e+21"},
      {123456.789, "123456.789"},
      {1.0 / 3, "0.3333333333333333"},
      {std::numeric_limits<double>::denorm_min(), "5e-324"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
  };
  for (const Format format : {Format::kOpenMetrics, Format::kPrometheus}) {
    const std::string out =
        EncodeFamily(format, Family("g", MetricType::kGauge), [&](Encoder& enc) {
          for (const auto& [value, text] : cases) enc.Gauge({}, value);
        });
    std::string want = "# TYPE g gauge\n";
    for (const auto& [value, text] : cases) want += "g " + text + "\n";
    if (format == Format::kOpenMetrics) want += "# EOF\n";
    EXPECT_EQ(out, want);
  }
}

TEST(EncoderTest, LabelValueEscaping) {
  const Label labels[] = {
      {"path", "C:\\dir \"quoted\"\nnext"}, {"empty", ""}, {"utf8", "\xc3\xa9"}};
  for (const Format format : {Format::kOpenMetrics, Format::kPrometheus}) {
    const std::string out = EncodeFamily(format, Family("g", MetricType::kGauge),
                                         [&](Encoder& enc) { enc.Gauge(labels, 1); });
    EXPECT_EQ(out,
              std::string(
                  "# TYPE g gauge\n"
                  "g{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\",empty=\"\",utf8=\"\xc3\xa9\"} 1\n") +
                  (format == Format::kOpenMetrics ? "# EOF\n" : ""));
  }
}

// Label values are checked for bytes to escape a word at a time, short ones through
// overlapping reads: every length up to past two words, with each escaped byte at every
// position (and none), must come out as the byte-by-byte rule says.
TEST(EncoderTest, LabelValueEscapingAtEveryLengthAndPosition) {
  auto escaped = [](const std::string& v) {
    std::string e;
    for (const char c : v) {
      if (c == '\\' || c == '"') e += '\\';
      if (c == '\n') {
        e += "\\n";
      } else {
        e += c;
      }
    }
    return e;
  };
  for (size_t len = 0; len <= 40; ++len) {
    std::string plain(len, 'a');
    for (size_t i = 0; i < len; ++i) plain[i] = static_cast<char>('a' + i % 26);
    std::vector<std::string> values = {plain};
    for (const char special : {'\\', '"', '\n'}) {
      for (size_t at = 0; at < len; ++at) {
        values.push_back(plain);
        values.back()[at] = special;
      }
    }
    for (const std::string& v : values) {
      const Label labels[] = {{"k", v}};
      const std::string out = EncodeFamily(Format::kPrometheus, Family("g", MetricType::kGauge),
                                           [&](Encoder& enc) { enc.Gauge(labels, 1); });
      ASSERT_EQ(out, "# TYPE g gauge\ng{k=\"" + escaped(v) + "\"} 1\n") << "length " << len;
    }
  }
}

TEST(EncoderTest, ExemplarLabelValuesAreEscaped) {
  const Label trace[] = {{"note", "a\\b\"c\nd"}};
  const Exemplar ex{.labels = trace, .value = 1, .timestamp = std::nullopt};
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("c", MetricType::kCounter),
                         [&](Encoder& enc) { enc.Counter({}, 1, std::nullopt, &ex); }),
            "# TYPE c counter\nc_total 1 # {note=\"a\\\\b\\\"c\\nd\"} 1\n# EOF\n");
}

TEST(EncoderTest, HelpEscaping) {
  const FamilyInfo f = Family("g", MetricType::kGauge, "back\\slash \"quote\"\nnewline");
  // OpenMetrics escapes the quote in HELP too; 0.0.4 escapes only backslash and newline.
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, f, [](Encoder&) {}),
            "# TYPE g gauge\n# HELP g back\\\\slash \\\"quote\\\"\\nnewline\n# EOF\n");
  EXPECT_EQ(EncodeFamily(Format::kPrometheus, f, [](Encoder&) {}),
            "# HELP g back\\\\slash \"quote\"\\nnewline\n# TYPE g gauge\n");
}

// --- Histograms ---

void WriteHistograms(Encoder& enc) {
  const Label labels[] = {{"path", "/"}};
  const double bounds[] = {0.005, 0.25, 1, 2.5, 100000, 1e6};
  const uint64_t cumulative[] = {0, 3, 3, 7, 8, 8, 10};
  const Label t1[] = {{"trace_id", "t1"}};
  const Label t2[] = {{"trace_id", "t2"}};
  const Exemplar e1{.labels = t1, .value = 0.2, .timestamp = 1700000000};
  const Exemplar e2{.labels = t2, .value = 2e6, .timestamp = std::nullopt};
  const Exemplar* exemplars[] = {nullptr, &e1, nullptr, nullptr, nullptr, nullptr, &e2};
  enc.Histogram(labels, bounds, cumulative, 2000012.75, 1700000000, exemplars);
  // No labels, no finite buckets, no exemplars, no created.
  const uint64_t only_inf[] = {0};
  enc.Histogram({}, {}, only_inf, 0, std::nullopt, {});
}

TEST(EncoderTest, HistogramOpenMetrics) {
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics,
                         Family("latency_seconds", MetricType::kHistogram, "Latency.", "seconds"),
                         WriteHistograms),
            "# TYPE latency_seconds histogram\n"
            "# UNIT latency_seconds seconds\n"
            "# HELP latency_seconds Latency.\n"
            "latency_seconds_bucket{path=\"/\",le=\"0.005\"} 0\n"
            "latency_seconds_bucket{path=\"/\",le=\"0.25\"} 3 # {trace_id=\"t1\"} 0.2 1700000000\n"
            "latency_seconds_bucket{path=\"/\",le=\"1.0\"} 3\n"
            "latency_seconds_bucket{path=\"/\",le=\"2.5\"} 7\n"
            "latency_seconds_bucket{path=\"/\",le=\"100000.0\"} 8\n"
            "latency_seconds_bucket{path=\"/\",le=\"1e+06\"} 8\n"
            "latency_seconds_bucket{path=\"/\",le=\"+Inf\"} 10 # {trace_id=\"t2\"} 2000000\n"
            "latency_seconds_count{path=\"/\"} 10\n"
            "latency_seconds_sum{path=\"/\"} 2000012.75\n"
            "latency_seconds_created{path=\"/\"} 1700000000\n"
            "latency_seconds_bucket{le=\"+Inf\"} 0\n"
            "latency_seconds_count 0\n"
            "latency_seconds_sum 0\n"
            "# EOF\n");
}

TEST(EncoderTest, HistogramPrometheus) {
  EXPECT_EQ(EncodeFamily(Format::kPrometheus,
                         Family("latency_seconds", MetricType::kHistogram, "Latency.", "seconds"),
                         WriteHistograms),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{path=\"/\",le=\"0.005\"} 0\n"
            "latency_seconds_bucket{path=\"/\",le=\"0.25\"} 3\n"
            "latency_seconds_bucket{path=\"/\",le=\"1.0\"} 3\n"
            "latency_seconds_bucket{path=\"/\",le=\"2.5\"} 7\n"
            "latency_seconds_bucket{path=\"/\",le=\"100000.0\"} 8\n"
            "latency_seconds_bucket{path=\"/\",le=\"1e+06\"} 8\n"
            "latency_seconds_bucket{path=\"/\",le=\"+Inf\"} 10\n"
            "latency_seconds_count{path=\"/\"} 10\n"
            "latency_seconds_sum{path=\"/\"} 2000012.75\n"
            "latency_seconds_bucket{le=\"+Inf\"} 0\n"
            "latency_seconds_count 0\n"
            "latency_seconds_sum 0\n");
}

TEST(EncoderTest, HistogramCountsPastTwoToThe53AreExact) {
  const uint64_t cumulative[] = {std::numeric_limits<uint64_t>::max()};
  EXPECT_EQ(EncodeFamily(
                Format::kPrometheus, Family("h", MetricType::kHistogram),
                [&](Encoder& enc) { enc.Histogram({}, {}, cumulative, 1e300, std::nullopt, {}); }),
            "# TYPE h histogram\n"
            "h_bucket{le=\"+Inf\"} 18446744073709551615\n"
            "h_count 18446744073709551615\n"
            "h_sum 1e+300\n");
}

// OpenMetrics parsers refuse a negative or NaN _sum, and any _sum beside a negative bucket
// bound; _count may not stand without _sum. Those series keep their buckets only.
TEST(EncoderTest, HistogramSumThatIsNotCounterLikeIsLeftOutOfOpenMetrics) {
  const double negative_bounds[] = {-1, 0, 1};
  const uint64_t four[] = {1, 2, 3, 4};
  const double bounds[] = {1};
  const uint64_t two[] = {1, 2};
  auto body = [&](Encoder& enc) {
    enc.Histogram({}, negative_bounds, four, 2.5, std::nullopt, {});
    const Label a[] = {{"s", "negative"}};
    enc.Histogram(a, bounds, two, -0.5, std::nullopt, {});
    const Label b[] = {{"s", "nan"}};
    enc.Histogram(b, bounds, two, kNaN, std::nullopt, {});
  };
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("d", MetricType::kHistogram), body),
            "# TYPE d histogram\n"
            "d_bucket{le=\"-1.0\"} 1\n"
            "d_bucket{le=\"0.0\"} 2\n"
            "d_bucket{le=\"1.0\"} 3\n"
            "d_bucket{le=\"+Inf\"} 4\n"
            "d_bucket{s=\"negative\",le=\"1.0\"} 1\n"
            "d_bucket{s=\"negative\",le=\"+Inf\"} 2\n"
            "d_bucket{s=\"nan\",le=\"1.0\"} 1\n"
            "d_bucket{s=\"nan\",le=\"+Inf\"} 2\n"
            "# EOF\n");
  const std::string text =
      EncodeFamily(Format::kPrometheus, Family("d", MetricType::kHistogram), body);
  EXPECT_NE(text.find("d_sum{s=\"negative\"} -0.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_count 4\n"), std::string::npos) << text;
}

TEST(EncoderTest, SummarySumThatIsNotCounterLikeIsLeftOutOfOpenMetrics) {
  auto body = [&](Encoder& enc) { enc.Summary({}, 3, -7, {}, std::nullopt); };
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("s", MetricType::kSummary), body),
            "# TYPE s summary\ns_count 3\n# EOF\n");
  EXPECT_EQ(EncodeFamily(Format::kPrometheus, Family("s", MetricType::kSummary), body),
            "# TYPE s summary\ns_count 3\ns_sum -7\n");
}

// --- Summaries ---

void WriteSummaries(Encoder& enc) {
  const Label labels[] = {{"op", "read"}};
  const Quantile quantiles[] = {{0, 0.001}, {0.5, 0.02}, {0.99, 0.5}, {0.999, kNaN}, {1, 3}};
  enc.Summary(labels, 12345, 678.9, quantiles, 1700000000.5);
  enc.Summary({}, 0, 0, {}, std::nullopt);
}

TEST(EncoderTest, SummaryOpenMetrics) {
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics,
                         Family("op_seconds", MetricType::kSummary, "Op time.", "seconds"),
                         WriteSummaries),
            "# TYPE op_seconds summary\n"
            "# UNIT op_seconds seconds\n"
            "# HELP op_seconds Op time.\n"
            "op_seconds{op=\"read\",quantile=\"0.0\"} 0.001\n"
            "op_seconds{op=\"read\",quantile=\"0.5\"} 0.02\n"
            "op_seconds{op=\"read\",quantile=\"0.99\"} 0.5\n"
            "op_seconds{op=\"read\",quantile=\"0.999\"} NaN\n"
            "op_seconds{op=\"read\",quantile=\"1.0\"} 3\n"
            "op_seconds_count{op=\"read\"} 12345\n"
            "op_seconds_sum{op=\"read\"} 678.9\n"
            "op_seconds_created{op=\"read\"} 1700000000.5\n"
            "op_seconds_count 0\n"
            "op_seconds_sum 0\n"
            "# EOF\n");
}

TEST(EncoderTest, SummaryPrometheus) {
  EXPECT_EQ(EncodeFamily(Format::kPrometheus,
                         Family("op_seconds", MetricType::kSummary, "Op time.", "seconds"),
                         WriteSummaries),
            "# HELP op_seconds Op time.\n"
            "# TYPE op_seconds summary\n"
            "op_seconds{op=\"read\",quantile=\"0.0\"} 0.001\n"
            "op_seconds{op=\"read\",quantile=\"0.5\"} 0.02\n"
            "op_seconds{op=\"read\",quantile=\"0.99\"} 0.5\n"
            "op_seconds{op=\"read\",quantile=\"0.999\"} NaN\n"
            "op_seconds{op=\"read\",quantile=\"1.0\"} 3\n"
            "op_seconds_count{op=\"read\"} 12345\n"
            "op_seconds_sum{op=\"read\"} 678.9\n"
            "op_seconds_count 0\n"
            "op_seconds_sum 0\n");
}

// --- Info, stateset, unknown ---

void WriteInfos(Encoder& enc) {
  const Label labels[] = {{"version", "1.0"}, {"commit", "a\"b"}};
  enc.Info(labels);
  enc.Info({});
}

TEST(EncoderTest, InfoOpenMetrics) {
  EXPECT_EQ(
      EncodeFamily(Format::kOpenMetrics, Family("build", MetricType::kInfo, "Build."), WriteInfos),
      "# TYPE build info\n"
      "# HELP build Build.\n"
      "build_info{version=\"1.0\",commit=\"a\\\"b\"} 1\n"
      "build_info 1\n"
      "# EOF\n");
}

TEST(EncoderTest, InfoPrometheusIsAGauge) {
  EXPECT_EQ(
      EncodeFamily(Format::kPrometheus, Family("build", MetricType::kInfo, "Build."), WriteInfos),
      "# HELP build_info Build.\n"
      "# TYPE build_info gauge\n"
      "build_info{version=\"1.0\",commit=\"a\\\"b\"} 1\n"
      "build_info 1\n");
}

TEST(EncoderTest, InfoAndStateSetNeverCarryAUnit) {
  // OpenMetrics forbids units on both; a unit passed anyway must not make the output invalid.
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("build", MetricType::kInfo, "", "bytes"),
                         [](Encoder& enc) { enc.Info({}); }),
            "# TYPE build info\nbuild_info 1\n# EOF\n");
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("mode", MetricType::kStateSet, "", "bytes"),
                         [](Encoder&) {}),
            "# TYPE mode stateset\n# EOF\n");
}

void WriteStateSets(Encoder& enc) {
  const Label labels[] = {{"host", "a"}};
  const State states[] = {{"starting", false}, {"running", true}, {"we\"ird\n", false}};
  enc.StateSet(labels, states);
  const State one[] = {{"on", true}};
  enc.StateSet({}, one);
}

TEST(EncoderTest, StateSetOpenMetrics) {
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("mode", MetricType::kStateSet, "Mode."),
                         WriteStateSets),
            "# TYPE mode stateset\n"
            "# HELP mode Mode.\n"
            "mode{host=\"a\",mode=\"starting\"} 0\n"
            "mode{host=\"a\",mode=\"running\"} 1\n"
            "mode{host=\"a\",mode=\"we\\\"ird\\n\"} 0\n"
            "mode{mode=\"on\"} 1\n"
            "# EOF\n");
}

TEST(EncoderTest, StateSetPrometheusIsAGauge) {
  EXPECT_EQ(EncodeFamily(Format::kPrometheus, Family("mode", MetricType::kStateSet, "Mode."),
                         WriteStateSets),
            "# HELP mode Mode.\n"
            "# TYPE mode gauge\n"
            "mode{host=\"a\",mode=\"starting\"} 0\n"
            "mode{host=\"a\",mode=\"running\"} 1\n"
            "mode{host=\"a\",mode=\"we\\\"ird\\n\"} 0\n"
            "mode{mode=\"on\"} 1\n");
}

TEST(EncoderTest, Unknown) {
  const auto body = [](Encoder& enc) {
    const Label labels[] = {{"k", "v"}};
    enc.Gauge(labels, 1.25);
    enc.Gauge({}, -3);
  };
  EXPECT_EQ(EncodeFamily(Format::kOpenMetrics, Family("misc", MetricType::kUnknown, "Misc."), body),
            "# TYPE misc unknown\n# HELP misc Misc.\nmisc{k=\"v\"} 1.25\nmisc -3\n# EOF\n");
  EXPECT_EQ(EncodeFamily(Format::kPrometheus, Family("misc", MetricType::kUnknown, "Misc."), body),
            "# HELP misc Misc.\n# TYPE misc untyped\nmisc{k=\"v\"} 1.25\nmisc -3\n");
}

TEST(EncoderTest, EveryTypeGoldenOpenMetrics) {
  // The same text the independent parsers check in parsers_test.cc.
  EXPECT_EQ(Encode(Format::kOpenMetrics, [](Encoder& enc) { WriteEveryType(enc); }),
            R"(# TYPE http_requests counter
# HELP http_requests Requests served, by \"code\".\nSecond line \\ backslash.
http_requests_total{method="GET",code="200"} 1027 # {trace_id="4bf92f3577b34da6"} 0.25 1700000000.5
http_requests_created{method="GET",code="200"} 1700000000
http_requests_total{method="we\\ird \"one\"\nhere",code=""} 3
# TYPE process_start_time_seconds gauge
# UNIT process_start_time_seconds seconds
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
process_start_time_seconds 1699999999.25
# TYPE temperature_celsius gauge
# UNIT temperature_celsius celsius
# HELP temperature_celsius Odd values.
temperature_celsius{probe="a"} -Inf
temperature_celsius{probe="b"} NaN
temperature_celsius{probe="c"} 1e-300
temperature_celsius{probe="d"} -0
temperature_celsius{probe="e"} 36028797018963968
# TYPE request_duration_seconds histogram
# UNIT request_duration_seconds seconds
# HELP request_duration_seconds Request latency.
request_duration_seconds_bucket{handler="/",le="0.005"} 1
request_duration_seconds_bucket{handler="/",le="0.1"} 4 # {trace_id="a1"} 0.07
request_duration_seconds_bucket{handler="/",le="1.0"} 9
request_duration_seconds_bucket{handler="/",le="10.0"} 9
request_duration_seconds_bucket{handler="/",le="+Inf"} 12 # {trace_id="b2",span_id="c3"} 12.5 1700000001
request_duration_seconds_count{handler="/"} 12
request_duration_seconds_sum{handler="/"} 40.5
request_duration_seconds_created{handler="/"} 1700000000
request_duration_seconds_bucket{le="+Inf"} 12
request_duration_seconds_count 12
request_duration_seconds_sum 0
# TYPE rpc_duration_seconds summary
# UNIT rpc_duration_seconds seconds
# HELP rpc_duration_seconds RPC latency.
rpc_duration_seconds{service="auth",quantile="0.5"} 0.012
rpc_duration_seconds{service="auth",quantile="0.9"} 0.1
rpc_duration_seconds{service="auth",quantile="0.99"} 1.5
rpc_duration_seconds_count{service="auth"} 1000
rpc_duration_seconds_sum{service="auth"} 80.25
rpc_duration_seconds_created{service="auth"} 1700000000
rpc_duration_seconds_count 0
rpc_duration_seconds_sum 0
# TYPE build info
# HELP build Build information.
build_info{version="1.2.3",revision="abc\"def"} 1
# TYPE feature stateset
# HELP feature Feature state.
feature{region="eu",feature="enabled"} 1
feature{region="eu",feature="disabled"} 0
feature{feature="on\nline"} 0
# TYPE legacy_value unknown
# HELP legacy_value Untyped.
legacy_value 42
# EOF
)");
}

TEST(EncoderTest, EveryTypeGoldenPrometheus) {
  EXPECT_EQ(Encode(Format::kPrometheus, [](Encoder& enc) { WriteEveryType(enc); }),
            R"(# HELP http_requests_total Requests served, by "code".\nSecond line \\ backslash.
# TYPE http_requests_total counter
http_requests_total{method="GET",code="200"} 1027
http_requests_total{method="we\\ird \"one\"\nhere",code=""} 3
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1699999999.25
# HELP temperature_celsius Odd values.
# TYPE temperature_celsius gauge
temperature_celsius{probe="a"} -Inf
temperature_celsius{probe="b"} NaN
temperature_celsius{probe="c"} 1e-300
temperature_celsius{probe="d"} -0
temperature_celsius{probe="e"} 36028797018963968
# HELP request_duration_seconds Request latency.
# TYPE request_duration_seconds histogram
request_duration_seconds_bucket{handler="/",le="0.005"} 1
request_duration_seconds_bucket{handler="/",le="0.1"} 4
request_duration_seconds_bucket{handler="/",le="1.0"} 9
request_duration_seconds_bucket{handler="/",le="10.0"} 9
request_duration_seconds_bucket{handler="/",le="+Inf"} 12
request_duration_seconds_count{handler="/"} 12
request_duration_seconds_sum{handler="/"} 40.5
request_duration_seconds_bucket{le="+Inf"} 12
request_duration_seconds_count 12
request_duration_seconds_sum 0
# HELP rpc_duration_seconds RPC latency.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service="auth",quantile="0.5"} 0.012
rpc_duration_seconds{service="auth",quantile="0.9"} 0.1
rpc_duration_seconds{service="auth",quantile="0.99"} 1.5
rpc_duration_seconds_count{service="auth"} 1000
rpc_duration_seconds_sum{service="auth"} 80.25
rpc_duration_seconds_count 0
rpc_duration_seconds_sum 0
# HELP build_info Build information.
# TYPE build_info gauge
build_info{version="1.2.3",revision="abc\"def"} 1
# HELP feature Feature state.
# TYPE feature gauge
feature{region="eu",feature="enabled"} 1
feature{region="eu",feature="disabled"} 0
feature{feature="on\nline"} 0
# HELP legacy_value Untyped.
# TYPE legacy_value untyped
legacy_value 42
)");
}

// A sanity bound, not a benchmark: 100,000 labelled series must encode in well under a second
// even in an unoptimized, sanitized build (an optimized build takes a few milliseconds), which
// catches accidental quadratic work or per-sample allocation storms.
TEST(EncoderTest, HundredThousandSeriesEncodeQuickly) {
  std::vector<std::string> ids;
  ids.reserve(100000);
  for (int i = 0; i < 100000; ++i) ids.push_back(std::to_string(i));
  std::string out;
  const auto start = std::chrono::steady_clock::now();
  auto enc = MakeEncoder(Format::kOpenMetrics, &out);
  enc->BeginFamily(Family("requests", MetricType::kCounter, "Requests."));
  for (int i = 0; i < 100000; ++i) {
    const Label labels[] = {{"worker", ids[i]}, {"code", "200"}};
    enc->Counter(labels, i * 1.5, std::nullopt, nullptr);
  }
  enc->EndFamily();
  enc->Finish();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_EQ(out.substr(out.size() - 57),
            "requests_total{worker=\"99999\",code=\"200\"} 149998.5\n# EOF\n");
}

}  // namespace
}  // namespace shmetrics::expose
