// Registration of names beyond the legacy character set (RegistryOptions::utf8_names), and how
// a heap of such names is scraped with and without UTF-8.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "collect/collector.h"
#include "expose/encoder.h"
#include "shm/heap_access.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/parsers.h"

namespace shmetrics {
namespace {

using ::testing::HasSubstr;

class Utf8NamesTest : public testing::HeapTest {
 protected:
  Registry Utf8Registry(std::string prefix = "") {
    RegistryOptions o;
    o.prefix = std::move(prefix);
    o.read_environment = false;
    o.utf8_names = true;
    return Registry(*heap_, o);
  }

  std::string ScrapeWith(expose::Format format, expose::Escaping e) {
    std::string out;
    expose::EncoderOptions o;
    o.escaping = e;
    auto enc = expose::MakeEncoder(format, &out, o);
    const absl::Status s = collect::Collect(shm::HeapAccess::segment(*heap_), *enc,
                                            {.self_metrics = false, .process_metrics = false});
    EXPECT_TRUE(s.ok()) << s;
    enc->Finish();
    return out;
  }
};

TEST_F(Utf8NamesTest, RefusedWithoutTheOption) {
  ErrorCode code{};
  EXPECT_THAT(ErrorOf([&] { registry_->AddCounter("http.requests", "h"); }, &code),
              HasSubstr("utf8_names"));
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("g", "h", {"my.label"}); }),
              HasSubstr("must match [a-zA-Z_][a-zA-Z0-9_]*"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("caf\xC3\xA9", "h"); }),
              HasSubstr("invalid metric name"));
}

TEST_F(Utf8NamesTest, AcceptedWithTheOptionAndExposed) {
  Registry r = Utf8Registry();
  r.AddCounter("http.requests_total", "Requests", {"http.method"}).Labels("GET").Inc(2);
  r.AddGauge(
       "temp\xC2\xB0"
       "C",
       "h")
      .Labels()
      .Set(21.5);
  r.AddStateSet("svc.state", "h", {}, {"up", "down"}).Labels().Set("up", true);
  r.AddGauge("legacy_name", "h").Labels().Set(1);
  const std::string utf8 = ScrapeWith(expose::Format::kOpenMetrics, expose::Escaping::kAllowUtf8);
  EXPECT_THAT(utf8, HasSubstr("# TYPE \"http.requests\" counter\n"
                              "# HELP \"http.requests\" Requests\n"
                              "{\"http.requests_total\",\"http.method\"=\"GET\"} 2\n"));
  EXPECT_THAT(utf8, HasSubstr("{\"temp\xC2\xB0"
                              "C\"} 21.5\n"));
  EXPECT_THAT(utf8, HasSubstr("{\"svc.state\",\"svc.state\"=\"up\"} 1\n"));
  EXPECT_THAT(utf8, HasSubstr("\nlegacy_name 1\n"));
  const std::string under = ScrapeWith(expose::Format::kPrometheus, expose::Escaping::kUnderscores);
  EXPECT_THAT(under, HasSubstr("http_requests_total{http_method=\"GET\"} 2\n"));
  EXPECT_THAT(under, HasSubstr("\ntemp_C 21.5\n"));
  const std::string values = ScrapeWith(expose::Format::kOpenMetrics, expose::Escaping::kValues);
  EXPECT_THAT(values, HasSubstr("U__http_2e_requests_total{U__http_2e_method=\"GET\"} 2\n"));
  EXPECT_THAT(values, HasSubstr("U__temp_b0_C 21.5\n"));
  std::vector<std::string> prom, om;
  for (expose::Escaping e :
       {expose::Escaping::kUnderscores, expose::Escaping::kDots, expose::Escaping::kValues}) {
    prom.push_back(ScrapeWith(expose::Format::kPrometheus, e));
    om.push_back(ScrapeWith(expose::Format::kOpenMetrics, e));
  }
  if (testing::HavePromtool()) {
    for (const std::string& t : prom) EXPECT_EQ(testing::PromtoolRejects(t), "") << t;
  }
  if (testing::HavePythonClient()) {
    for (const std::string& p : testing::PythonProblems(prom, false)) EXPECT_EQ(p, "");
    for (const std::string& p : testing::PythonProblems(om, true)) EXPECT_EQ(p, "");
  }
}

TEST_F(Utf8NamesTest, InvalidUtf8NulEmptyAndOverlongAreRefused) {
  Registry r = Utf8Registry();
  ErrorCode code{};
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("bad\xFF", "h"); }, &code),
              HasSubstr("invalid metric name \"bad\\xff\" is not valid UTF-8"));
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("a\xC0\x80", "h"); }), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge(std::string_view("a\0b", 3), "h"); }),
              HasSubstr("holds a NUL byte"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("", "h"); }), HasSubstr("metric name is empty"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge(std::string(kMaxMetricNameBytes + 1, '.'), "h"); }),
              HasSubstr("the limit is 1024"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("g", "h", {"l\xFF"}); }),
              HasSubstr("invalid label name \"l\\xff\" is not valid UTF-8"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("g", "h", {std::string(kMaxLabelNameBytes + 1, '.')}); }),
              HasSubstr("the limit is 256"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("g", "h", {""}); }), HasSubstr("label name is empty"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("__x.y", "h"); }), HasSubstr("reserved"));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("g", "h", {"__a.b"}); }), HasSubstr("reserved"));
  RegistryOptions bad;
  bad.utf8_names = true;
  bad.read_environment = false;
  bad.prefix = "p\xFF";
  EXPECT_THAT(ErrorOf([&] { Registry(*heap_, bad); }), HasSubstr("registry prefix"));
  bad.prefix = "ok";
  bad.const_labels = {{"c\xFF", "v"}};
  EXPECT_THAT(ErrorOf([&] { Registry(*heap_, bad); }), HasSubstr("not valid UTF-8"));
  // Nothing was recorded.
  EXPECT_EQ(Scrape(), "# EOF\n");
}

TEST_F(Utf8NamesTest, ReservedSuffixesAndClashesStillApply) {
  Registry r = Utf8Registry("my.app");
  r.AddCounter("req.count", "h");  // my.app_req.count: _total and _created
  ErrorCode code{};
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("req.count_total", "h"); }, &code),
              HasSubstr("both would expose samples named \"my.app_req.count_total\""));
  EXPECT_EQ(code, ErrorCode::kAlreadyExists);
  EXPECT_THAT(ErrorOf([&] { r.AddHistogram("lat.\xC3\xA9_bucket", "h"); }),
              HasSubstr("ends in _bucket"));
  EXPECT_THAT(ErrorOf([&] { r.AddHistogram("h.x", "h", {"le"}); }), HasSubstr("reserved"));
  // Escaped for a legacy scraper, it would be one of the collector's own families.
  Registry plain = Utf8Registry();
  EXPECT_THAT(ErrorOf([&] { plain.AddGauge("process.resident_memory_bytes", "h"); }, &code),
              HasSubstr("written by the collector itself"));
  EXPECT_EQ(code, ErrorCode::kAlreadyExists);
}

TEST_F(Utf8NamesTest, LabelNamesThatEscapeAlikeAreRefused) {
  Registry r = Utf8Registry();
  EXPECT_THAT(ErrorOf([&] {
                r.AddGauge("g", "h", {"a.b", "a_b"});
              }),
              HasSubstr("would both be written \"a_b\" for a scraper that asks for names "
                        "escaped with underscores"));
  EXPECT_THAT(ErrorOf([&] {
                r.AddGauge("g", "h",
                           {"a.b",
                            "a\xC3\xA9"
                            "b"});
              }),
              HasSubstr("would both be written"));
  EXPECT_THAT(ErrorOf([&] { r.AddStateSet("s_t", "h", {"s.t"}, {"a"}); }),
              HasSubstr("would both be written \"s_t\""));
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("w", "h", {"worker.id"}, {.mode = GaugeMode::kLiveAll}); }),
              HasSubstr("would both be written \"worker_id\""));
  // Labels that stay apart in every scheme are fine.
  r.AddGauge("g", "h", {"a.b", "c.d"}).Labels("1", "2").Set(3);
  EXPECT_THAT(ScrapeWith(expose::Format::kOpenMetrics, expose::Escaping::kDots),
              HasSubstr("g{a_dot_b=\"1\",c_dot_d=\"2\"} 3\n"));
}

// Two families that only escaping makes alike: the scrape without UTF-8 keeps the first (in
// name order) and leaves out the other, so no parser sees a family twice.
TEST_F(Utf8NamesTest, FamiliesThatEscapeAlikeAppearOnce) {
  Registry r = Utf8Registry();
  r.AddGauge("a.b", "h").Labels().Set(1);
  r.AddGauge("a_b", "h").Labels().Set(2);
  const std::string under = ScrapeWith(expose::Format::kPrometheus, expose::Escaping::kUnderscores);
  EXPECT_THAT(under, HasSubstr("a_b 1\n"));
  EXPECT_THAT(under, ::testing::Not(HasSubstr("a_b 2\n")));
  if (testing::HavePromtool()) {
    EXPECT_EQ(testing::PromtoolRejects(under), "");
  }
  const std::string utf8 = ScrapeWith(expose::Format::kOpenMetrics, expose::Escaping::kAllowUtf8);
  EXPECT_THAT(utf8, HasSubstr("{\"a.b\"} 1\n"));
  EXPECT_THAT(utf8, HasSubstr("\na_b 2\n"));
}

TEST_F(Utf8NamesTest, ExposeOptions) {
  Registry r = Utf8Registry();
  r.AddCounter("jobs.done", "h").Labels().Inc();
  const std::string escaped = Expose(*heap_, ExposeOptions{});
  EXPECT_THAT(escaped, HasSubstr("\njobs_done_total 1\n"));
  EXPECT_THAT(escaped, HasSubstr("\njobs_done_created "));
  ExposeOptions o;
  o.utf8_names = true;
  o.created_samples = false;
  const std::string utf8 = Expose(*heap_, o);
  EXPECT_THAT(utf8, HasSubstr("\n{\"jobs.done_total\"} 1\n"));
  EXPECT_THAT(utf8, ::testing::Not(HasSubstr("_created")));
  o.format = ExpositionFormat::kPrometheus;
  EXPECT_THAT(Expose(*heap_, o), HasSubstr("# TYPE \"jobs.done_total\" counter\n"));
}

}  // namespace
}  // namespace shmetrics
