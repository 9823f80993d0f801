// The escaping schemes against the examples of Prometheus's own tests (prometheus/common
// model/metric_test.go, TestEscapeName and TestEscapeMetricFamily), and the exact bytes the text
// encoders write for UTF-8 names under each scheme. No parser available here reads quoted UTF-8
// names (promtool 2.42 and python3-prometheus-client 0.16 predate them), so the allow-utf-8
// output is compared byte for byte; the escaped output goes through both parsers.
#include "expose/names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "expose/encoder.h"
#include "expose/exposition_helpers.h"
#include "util/parsers.h"

namespace shmetrics::expose {
namespace {

std::string Esc(std::string_view name, Escaping e, NameKind kind = NameKind::kMetric) {
  std::string scratch;
  return std::string(EscapeName(name, e, &scratch, kind));
}

struct Case {
  const char* input;
  const char* underscores;
  const char* dots;
  const char* values;
};

// From TestEscapeName. Its "legacy valid name" case escapes to "no:escaping__required" under
// dots when EscapeName is called alone, but expfmt escapes through EscapeMetricFamily, which
// never changes a legacy-valid name: the exposition keeps it, as here.
constexpr Case kSpecCases[] = {
    {"no:escaping_required", "no:escaping_required", "no:escaping_required",
     "no:escaping_required"},
    {"mysystem.prod.west.cpu.load", "mysystem_prod_west_cpu_load",
     "mysystem_dot_prod_dot_west_dot_cpu_dot_load", "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load"},
    {"mysystem.prod.west.cpu.load_total", "mysystem_prod_west_cpu_load_total",
     "mysystem_dot_prod_dot_west_dot_cpu_dot_load__total",
     "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load__total"},
    {"http.status:sum", "http_status:sum", "http_dot_status:sum", "U__http_2e_status:sum"},
    {"label with \xF0\x9F\x98\xB1", "label_with__", "label__with____",
     "U__label_20_with_20__1f631_"},
    {"\xE8\x8A\xB1\xE7\x81\xAB", "__", "____", "U___82b1__706b_"},
    {"label with \xC4\x80", "label_with__", "label__with____", "U__label_20_with_20__100_"},
    // TestEscapeMetricFamily: "my.metric" (values), "unicode.and.dots.花火" (dots).
    {"my.metric", "my_metric", "my_dot_metric", "U__my_2e_metric"},
    {"unicode.and.dots.\xE8\x8A\xB1\xE7\x81\xAB", "unicode_and_dots___",
     "unicode_dot_and_dot_dots_dot_____", "U__unicode_2e_and_2e_dots_2e__82b1__706b_"},
};

TEST(EscapeName, SpecExamples) {
  for (const Case& c : kSpecCases) {
    SCOPED_TRACE(c.input);
    EXPECT_EQ(Esc(c.input, Escaping::kUnderscores), c.underscores);
    EXPECT_EQ(Esc(c.input, Escaping::kDots), c.dots);
    EXPECT_EQ(Esc(c.input, Escaping::kValues), c.values);
    EXPECT_EQ(Esc(c.input, Escaping::kAllowUtf8), c.input);
  }
}

TEST(EscapeName, LeadingDigitIsReplacedNotPrefixed) {
  EXPECT_EQ(Esc("0abc.d", Escaping::kUnderscores), "_abc_d");
  EXPECT_EQ(Esc("0abc.d", Escaping::kDots), "__abc_dot_d");
  EXPECT_EQ(Esc("0abc.d", Escaping::kValues), "U___30_abc_2e_d");
  // A digit after a multi-byte first character is not leading.
  EXPECT_EQ(Esc("\xC3\xA9"
                "0",
                Escaping::kUnderscores),
            "_0");
}

TEST(EscapeName, LabelNamesTreatColonAsInvalid) {
  EXPECT_EQ(Esc("a:b", Escaping::kUnderscores), "a:b");
  EXPECT_EQ(Esc("a:b", Escaping::kUnderscores, NameKind::kLabel), "a_b");
  EXPECT_EQ(Esc("a:b", Escaping::kDots, NameKind::kLabel), "a__b");
  EXPECT_EQ(Esc("a:b", Escaping::kValues, NameKind::kLabel), "U__a_3a_b");
  EXPECT_EQ(Esc("some.label", Escaping::kValues, NameKind::kLabel), "U__some_2e_label");
  EXPECT_EQ(Esc("some?label", Escaping::kValues, NameKind::kLabel), "U__some_3f_label");
  EXPECT_EQ(Esc("some_label", Escaping::kDots, NameKind::kLabel), "some_label");
}

TEST(EscapeName, InvalidUtf8BytesCountAsReplacementCharacter) {
  EXPECT_EQ(Esc("a\xFF"
                "b",
                Escaping::kUnderscores),
            "a_b");
  EXPECT_EQ(Esc("a\xFF"
                "b",
                Escaping::kDots),
            "a__b");
  EXPECT_EQ(Esc("a\xFF"
                "b",
                Escaping::kValues),
            "U__a_fffd_b");
  // A truncated sequence: each of its bytes is one replacement.
  EXPECT_EQ(Esc("a\xE8\x8A", Escaping::kUnderscores), "a__");
  EXPECT_EQ(Esc("a\xC0\x80", Escaping::kValues), "U__a_fffd__fffd_");  // overlong NUL
}

TEST(EscapeName, UnchangedNamesAreViewsOfTheInput) {
  std::string scratch;
  const std::string_view in = "http_requests";
  EXPECT_EQ(EscapeName(in, Escaping::kDots, &scratch).data(), in.data());
  EXPECT_EQ(EscapeName("", Escaping::kValues, &scratch), "");
  EXPECT_TRUE(IsLegacyMetricName("a:b_c9"));
  EXPECT_FALSE(IsLegacyMetricName("9a"));
  EXPECT_FALSE(IsLegacyMetricName(""));
  EXPECT_FALSE(IsLegacyLabelName("a:b"));
  EXPECT_TRUE(IsLegacyLabelName("_a9"));
}

FamilyInfo Fam(std::string_view name, MetricType type, std::string_view help = "",
               std::string_view unit = "") {
  FamilyInfo f;
  f.name = name;
  f.type = type;
  f.help = help;
  f.unit = unit;
  return f;
}

EncoderOptions Opts(Escaping e, bool created = true) {
  EncoderOptions o;
  o.escaping = e;
  o.created = created;
  return o;
}

std::string Write(Format format, EncoderOptions options, bool with_created = true) {
  std::string out;
  auto enc = MakeEncoder(format, &out, options);
  const std::optional<double> created =
      with_created ? std::optional<double>(1.5) : std::optional<double>();
  const Label l[] = {{"my.label", "v\"1"}, {"code", "200"}};
  enc->BeginFamily(Fam("my.requests", MetricType::kCounter, "Requests \"served\""));
  enc->Counter(l, 3, created, nullptr);
  enc->EndFamily();
  const double bounds[] = {0.5};
  const uint64_t cumulative[] = {1, 2};
  enc->BeginFamily(Fam("req.seconds", MetricType::kHistogram, "", "seconds"));
  enc->Histogram({}, bounds, cumulative, 0.75, created, {});
  enc->EndFamily();
  const Quantile q[] = {{0.5, 0.25}};
  enc->BeginFamily(Fam("lat\xC3\xA9ncy", MetricType::kSummary));
  enc->Summary(std::span(l).subspan(1), 2, 0.5, q, created);
  enc->EndFamily();
  enc->BeginFamily(Fam("build.info", MetricType::kInfo, "h"));
  const Label v[] = {{"version.major", "1"}};
  enc->Info(v);
  enc->EndFamily();
  const State s[] = {{"a", true}, {"b", false}};
  enc->BeginFamily(Fam("svc.state", MetricType::kStateSet));
  enc->StateSet({}, s);
  enc->EndFamily();
  enc->BeginFamily(Fam("plain_gauge", MetricType::kGauge));
  const Label g[] = {{"zone.name", "eu"}};
  enc->Gauge(g, 1);
  enc->EndFamily();
  enc->Finish();
  return out;
}

TEST(TextEncoderNames, OpenMetricsAllowUtf8QuotesNamesOutsideTheLegacySet) {
  EXPECT_EQ(Write(Format::kOpenMetrics, Opts(Escaping::kAllowUtf8)),
            "# TYPE \"my.requests\" counter\n"
            "# HELP \"my.requests\" Requests \\\"served\\\"\n"
            "{\"my.requests_total\",\"my.label\"=\"v\\\"1\",code=\"200\"} 3\n"
            "{\"my.requests_created\",\"my.label\"=\"v\\\"1\",code=\"200\"} 1.5\n"
            "# TYPE \"req.seconds\" histogram\n"
            "# UNIT \"req.seconds\" seconds\n"
            "{\"req.seconds_bucket\",le=\"0.5\"} 1\n"
            "{\"req.seconds_bucket\",le=\"+Inf\"} 2\n"
            "{\"req.seconds_count\"} 2\n"
            "{\"req.seconds_sum\"} 0.75\n"
            "{\"req.seconds_created\"} 1.5\n"
            "# TYPE \"lat\xC3\xA9ncy\" summary\n"
            "{\"lat\xC3\xA9ncy\",code=\"200\",quantile=\"0.5\"} 0.25\n"
            "{\"lat\xC3\xA9ncy_count\",code=\"200\"} 2\n"
            "{\"lat\xC3\xA9ncy_sum\",code=\"200\"} 0.5\n"
            "{\"lat\xC3\xA9ncy_created\",code=\"200\"} 1.5\n"
            "# TYPE \"build.info\" info\n"
            "# HELP \"build.info\" h\n"
            "{\"build.info_info\",\"version.major\"=\"1\"} 1\n"
            "# TYPE \"svc.state\" stateset\n"
            "{\"svc.state\",\"svc.state\"=\"a\"} 1\n"
            "{\"svc.state\",\"svc.state\"=\"b\"} 0\n"
            "# TYPE plain_gauge gauge\n"
            "plain_gauge{\"zone.name\"=\"eu\"} 1\n"
            "# EOF\n");
}

TEST(TextEncoderNames, PrometheusAllowUtf8QuotesNamesOutsideTheLegacySet) {
  EXPECT_EQ(Write(Format::kPrometheus, Opts(Escaping::kAllowUtf8)),
            "# HELP \"my.requests_total\" Requests \"served\"\n"
            "# TYPE \"my.requests_total\" counter\n"
            "{\"my.requests_total\",\"my.label\"=\"v\\\"1\",code=\"200\"} 3\n"
            "# TYPE \"req.seconds\" histogram\n"
            "{\"req.seconds_bucket\",le=\"0.5\"} 1\n"
            "{\"req.seconds_bucket\",le=\"+Inf\"} 2\n"
            "{\"req.seconds_count\"} 2\n"
            "{\"req.seconds_sum\"} 0.75\n"
            "# TYPE \"lat\xC3\xA9ncy\" summary\n"
            "{\"lat\xC3\xA9ncy\",code=\"200\",quantile=\"0.5\"} 0.25\n"
            "{\"lat\xC3\xA9ncy_count\",code=\"200\"} 2\n"
            "{\"lat\xC3\xA9ncy_sum\",code=\"200\"} 0.5\n"
            "# HELP \"build.info_info\" h\n"
            "# TYPE \"build.info_info\" gauge\n"
            "{\"build.info_info\",\"version.major\"=\"1\"} 1\n"
            "# TYPE \"svc.state\" gauge\n"
            "{\"svc.state\",\"svc.state\"=\"a\"} 1\n"
            "{\"svc.state\",\"svc.state\"=\"b\"} 0\n"
            "# TYPE plain_gauge gauge\n"
            "plain_gauge{\"zone.name\"=\"eu\"} 1\n");
}

TEST(TextEncoderNames, QuotedNamesEscapeBackslashNewlineAndQuote) {
  std::string out;
  auto enc = MakeEncoder(Format::kOpenMetrics, &out, Opts(Escaping::kAllowUtf8));
  enc->BeginFamily(Fam("a\"b\\c\nd", MetricType::kGauge));
  const Label l[] = {{"x\"y", "1"}};
  enc->Gauge(l, 1);
  enc->EndFamily();
  enc->Finish();
  EXPECT_EQ(out,
            "# TYPE \"a\\\"b\\\\c\\nd\" gauge\n"
            "{\"a\\\"b\\\\c\\nd\",\"x\\\"y\"=\"1\"} 1\n"
            "# EOF\n");
}

TEST(TextEncoderNames, EachSchemeEscapesEveryName) {
  const std::string values = Write(Format::kOpenMetrics, Opts(Escaping::kValues));
  EXPECT_NE(values.find("# TYPE U__my_2e_requests counter\n"
                        "# HELP U__my_2e_requests Requests \\\"served\\\"\n"
                        "U__my_2e_requests_total{U__my_2e_label=\"v\\\"1\",code=\"200\"} 3\n"),
            std::string::npos)
      << values;
  EXPECT_NE(values.find("U__svc_2e_state{U__svc_2e_state=\"a\"} 1\n"), std::string::npos);
  EXPECT_NE(values.find("U__lat_e9_ncy_count{code=\"200\"} 2\n"), std::string::npos);
  const std::string dots = Write(Format::kPrometheus, Opts(Escaping::kDots));
  EXPECT_NE(dots.find("# TYPE my_dot_requests_total counter\n"
                      "my_dot_requests_total{my_dot_label=\"v\\\"1\",code=\"200\"} 3\n"),
            std::string::npos)
      << dots;
  EXPECT_NE(dots.find("plain_gauge{zone_dot_name=\"eu\"} 1\n"), std::string::npos);
  const std::string under = Write(Format::kPrometheus, {});  // the default: underscores
  EXPECT_NE(under.find("build_info_info{version_major=\"1\"} 1\n"), std::string::npos) << under;
  EXPECT_NE(under.find("lat_ncy_sum{code=\"200\"} 0.5\n"), std::string::npos);
}

TEST(TextEncoderNames, EscapedOutputPassesPromtoolAndPythonParsers) {
  std::vector<std::string> prom, om;
  for (Escaping e : {Escaping::kUnderscores, Escaping::kDots, Escaping::kValues}) {
    prom.push_back(Write(Format::kPrometheus, {.escaping = e}));
    om.push_back(Write(Format::kOpenMetrics, {.escaping = e}));
  }
  if (testing::HavePromtool()) {
    for (const std::string& t : prom) EXPECT_EQ(testing::PromtoolRejects(t), "") << t;
  }
  if (!testing::HavePythonClient()) GTEST_SKIP() << "python3-prometheus-client not installed";
  for (const std::string& p : testing::PythonProblems(prom, false)) EXPECT_EQ(p, "");
  for (const std::string& p : testing::PythonProblems(om, true)) EXPECT_EQ(p, "");
}

TEST(TextEncoderNames, CreatedFalseLeavesOutEveryCreatedSample) {
  const std::string with = Write(Format::kOpenMetrics, {});
  const std::string without = Write(Format::kOpenMetrics, Opts(Escaping::kUnderscores, false));
  EXPECT_NE(with.find("_created"), std::string::npos);
  EXPECT_EQ(without.find("_created"), std::string::npos) << without;
  // Nothing else changes.
  std::string stripped;
  size_t pos = 0;
  while (pos < with.size()) {
    const size_t end = with.find('\n', pos) + 1;
    const std::string line = with.substr(pos, end - pos);
    if (line.find("_created") == std::string::npos) stripped += line;
    pos = end;
  }
  EXPECT_EQ(without, stripped);
}

// Two families that escape to one name: the first keeps it, the later one is left out, and so
// is a family whose escaped name writes a sample name of an earlier one.
TEST(TextEncoderNames, EscapingCollisionsLeaveOutTheLaterFamily) {
  for (Format f : {Format::kOpenMetrics, Format::kPrometheus}) {
    std::string out;
    auto enc = MakeEncoder(f, &out, Opts(Escaping::kUnderscores));
    enc->BeginFamily(Fam("a.b", MetricType::kCounter));
    enc->Counter({}, 1, std::nullopt, nullptr);
    enc->EndFamily();
    enc->BeginFamily(Fam("a_b", MetricType::kGauge));  // the same name
    enc->Gauge({}, 2);
    enc->EndFamily();
    enc->BeginFamily(Fam("a_b_total", MetricType::kGauge));  // a_b's sample
    enc->Gauge({}, 3);
    enc->EndFamily();
    enc->BeginFamily(Fam("c", MetricType::kGauge));  // unaffected
    enc->Gauge({}, 4);
    enc->EndFamily();
    enc->Finish();
    EXPECT_EQ(out.find(" 2\n"), std::string::npos) << out;
    EXPECT_EQ(out.find(" 3\n"), std::string::npos) << out;
    EXPECT_NE(out.find("a_b_total 1\n"), std::string::npos) << out;
    EXPECT_NE(out.find("c 4\n"), std::string::npos) << out;
    if (f == Format::kPrometheus && testing::HavePromtool()) {
      EXPECT_EQ(testing::PromtoolRejects(out), "");
    }
  }
  // A legacy family first and a UTF-8 one after it: the legacy one stays.
  std::string out;
  auto enc = MakeEncoder(Format::kOpenMetrics, &out, Opts(Escaping::kUnderscores));
  enc->BeginFamily(Fam("x_y", MetricType::kGauge));
  enc->Gauge({}, 1);
  enc->EndFamily();
  enc->BeginFamily(Fam("x\xC3\xA9y", MetricType::kGauge));  // x_y too
  enc->Gauge({}, 2);
  enc->EndFamily();
  enc->Finish();
  EXPECT_EQ(out, "# TYPE x_y gauge\nx_y 1\n# EOF\n");
  // With allow-utf-8 nothing collides.
  out.clear();
  enc = MakeEncoder(Format::kOpenMetrics, &out, Opts(Escaping::kAllowUtf8));
  enc->BeginFamily(Fam("a.b", MetricType::kGauge));
  enc->Gauge({}, 1);
  enc->EndFamily();
  enc->BeginFamily(Fam("a_b", MetricType::kGauge));
  enc->Gauge({}, 2);
  enc->EndFamily();
  enc->Finish();
  EXPECT_EQ(out, "# TYPE \"a.b\" gauge\n{\"a.b\"} 1\n# TYPE a_b gauge\na_b 2\n# EOF\n");
}

TEST(TextEncoderNames, LabelsThatEscapeAlikeLeaveOutTheSeries) {
  std::string out;
  auto enc = MakeEncoder(Format::kOpenMetrics, &out, Opts(Escaping::kUnderscores));
  enc->BeginFamily(Fam("g", MetricType::kGauge));
  const Label bad[] = {{"a.b", "1"}, {"a_b", "2"}};
  enc->Gauge(bad, 1);
  const Label good[] = {{"a.b", "1"}, {"c", "2"}};
  enc->Gauge(good, 2);
  enc->EndFamily();
  const State s[] = {{"on", true}};
  enc->BeginFamily(Fam("s_t", MetricType::kStateSet));
  const Label clash[] = {{"s.t", "x"}};  // escapes to s_t, the state label
  enc->StateSet(clash, s);
  enc->EndFamily();
  enc->Finish();
  EXPECT_EQ(out, "# TYPE g gauge\ng{a_b=\"1\",c=\"2\"} 2\n# TYPE s_t stateset\n# EOF\n");
}

}  // namespace
}  // namespace shmetrics::expose
