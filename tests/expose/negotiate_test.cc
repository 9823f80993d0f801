#include "expose/negotiate.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace shmetrics::expose {
namespace {

// What Prometheus servers send (scrape/scrape.go): 2.x before and after OpenMetrics 1.0.0, and
// 2.49+ with its default scrape_protocols.
constexpr char kPrometheus2Accept[] =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
constexpr char kPrometheusOldAccept[] =
    "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
constexpr char kPrometheusLegacyAccept[] = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
constexpr char kPrometheus249Accept[] =
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
// scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]
constexpr char kPrometheusPrefersText[] =
    "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.3";

TEST(NegotiateFormatTest, RealPrometheusHeaders) {
  EXPECT_EQ(NegotiateFormat(kPrometheus2Accept), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat(kPrometheus249Accept), Format::kOpenMetrics);
  // Only OpenMetrics 0.0.1 offered, which we do not claim to serve.
  EXPECT_EQ(NegotiateFormat(kPrometheusOldAccept), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(kPrometheusLegacyAccept), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(kPrometheusPrefersText), Format::kPrometheus);
}

TEST(NegotiateFormatTest, CommonClients) {
  EXPECT_EQ(NegotiateFormat(""), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("*/*"), Format::kPrometheus);  // curl
  EXPECT_EQ(NegotiateFormat("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Format::kPrometheus);  // a browser
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text"), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::kOpenMetrics);
}

TEST(NegotiateFormatTest, VersionsAndWeights) {
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;version=2.0.0"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;version=\"1.0.0\""),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0.000"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0.001"), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("text/plain,application/openmetrics-text;q=0.9"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("text/plain;q=0.9,application/openmetrics-text"), Format::kOpenMetrics);
  // A tie goes to OpenMetrics, the richer format.
  EXPECT_EQ(NegotiateFormat("text/plain,application/openmetrics-text"), Format::kOpenMetrics);
  // text/plain in another version does not compete.
  EXPECT_EQ(NegotiateFormat("text/plain;version=1.0.0,application/openmetrics-text;q=0.1"),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("text/*,application/openmetrics-text;q=0.5"), Format::kPrometheus);
}

TEST(NegotiateFormatTest, CaseAndWhitespace) {
  EXPECT_EQ(
      NegotiateFormat("  Application/OpenMetrics-Text ; Version=1.0.0 ; Q=0.5 , text/plain;q=0.4"),
      Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("\tapplication/openmetrics-text\t"), Format::kOpenMetrics);
}

TEST(NegotiateFormatTest, MalformedParts) {
  // An invalid q counts as absent, not as 1.
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=2"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=abc"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q="), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0.5000"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=1.001"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=-1"), Format::kPrometheus);
  // Garbage around a good element does not spoil it.
  EXPECT_EQ(NegotiateFormat(",,;;,=,application/openmetrics-text,;q=0,"), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;;;version=1.0.0;foo;bar=\"x,y;z\""),
            Format::kOpenMetrics);
  // A comma inside a quoted value does not start a new element.
  EXPECT_EQ(NegotiateFormat("text/plain;x=\",application/openmetrics-text,\""),
            Format::kPrometheus);
  // Unterminated quotes and trailing backslashes end the header, not the program.
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;version=\"1.0.0"), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;x=\"\\"), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;x=\"a\\\"b\",text/plain;q=0.1"),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat(std::string_view("application/openmetrics-text\0", 29)),
            Format::kPrometheus);
}

TEST(NegotiateFormatTest, HostileInputIsHandledInLinearTime) {
  // 8 MiB of each pathological pattern; a quadratic parser would take minutes.
  const std::string patterns[] = {std::string(8 << 20, ','), std::string(8 << 20, ';'),
                                  std::string(8 << 20, '"'), std::string(8 << 20, '\\'),
                                  std::string(8 << 20, '='), std::string(8 << 20, ' ')};
  for (const std::string& p : patterns) {
    EXPECT_EQ(NegotiateFormat(p), Format::kPrometheus);
    EXPECT_FALSE(AcceptsGzip(p));
  }
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "application/openmetrics-text;version=0.0.1;q=0.5,";
  many += "application/openmetrics-text";
  EXPECT_EQ(NegotiateFormat(many), Format::kOpenMetrics);
}

TEST(NegotiateFormatTest, RandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  const char alphabet[] = "application/openmetrics-text;version=1.0.0,q=0.5\"\\ \t*/\0\xff";
  int openmetrics = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 64, ' ');
    for (char& c : s) c = alphabet[rng() % (sizeof(alphabet) - 1)];
    openmetrics += NegotiateFormat(s) == Format::kOpenMetrics;
    (void)AcceptsGzip(s);
  }
  EXPECT_LT(openmetrics, 20000);  // random noise is not an OpenMetrics request
}

// Prometheus 2.42 with --enable-feature=native-histograms (scrape/scrape.go,
// scrapeAcceptHeaderWithProtobuf).
constexpr char kPrometheus242ProtobufAccept[] =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
// Prometheus 3.x (scrape/scrape.go acceptHeader): its default scrape_protocols, and the
// protobuf-first ones of scrape_native_histograms, with UTF-8 names allowed. The escaping
// parameter goes only on the text formats that define it.
constexpr char kPrometheus3Accept[] =
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
constexpr char kPrometheus3ProtobufAccept[] =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
    "q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

TEST(NegotiateTest, RealPrometheusHeaders) {
  EXPECT_EQ(Negotiate(kPrometheus242ProtobufAccept),
            (Negotiated{Format::kProtobuf, Escaping::kUnderscores}));
  EXPECT_EQ(NegotiateFormat(kPrometheus242ProtobufAccept), Format::kProtobuf);
  EXPECT_EQ(Negotiate(kPrometheus3ProtobufAccept),
            (Negotiated{Format::kProtobuf, Escaping::kUnderscores}));
  EXPECT_EQ(Negotiate(kPrometheus3Accept),
            (Negotiated{Format::kOpenMetrics, Escaping::kAllowUtf8}));
  EXPECT_EQ(Negotiate(kPrometheus2Accept),
            (Negotiated{Format::kOpenMetrics, Escaping::kUnderscores}));
  EXPECT_EQ(Negotiate(kPrometheusLegacyAccept),
            (Negotiated{Format::kPrometheus, Escaping::kUnderscores}));
  EXPECT_EQ(Negotiate(""), (Negotiated{Format::kPrometheus, Escaping::kUnderscores}));
}

TEST(NegotiateTest, ProtobufNeedsItsProtoAndDelimitedEncoding) {
  const std::string pb = "application/vnd.google.protobuf";
  const std::string mf = ";proto=io.prometheus.client.MetricFamily";
  EXPECT_EQ(NegotiateFormat(pb + mf + ";encoding=delimited"), Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat(pb + mf + ";encoding=\"delimited\""), Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat(pb + ";encoding=delimited" + mf), Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat("Application/Vnd.Google.Protobuf ; Proto=io.prometheus.client."
                            "metricfamily ; Encoding=DELIMITED"),
            Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat(pb + mf), Format::kPrometheus);  // no encoding
  EXPECT_EQ(NegotiateFormat(pb + mf + ";encoding=text"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(pb + mf + ";encoding=compact-text"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(pb + ";proto=io.prometheus.client.Metric;encoding=delimited"),
            Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(pb + ";encoding=delimited"), Format::kPrometheus);  // no proto
  EXPECT_EQ(NegotiateFormat(pb), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("application/*"), Format::kPrometheus);
}

TEST(NegotiateTest, ProtobufWeights) {
  const std::string pb =
      "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
  EXPECT_EQ(NegotiateFormat(pb + ";q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat(pb + ";q=0.5,application/openmetrics-text;q=0.5"), Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat(pb + ";q=0.5,text/plain;q=0.5"), Format::kProtobuf);
  EXPECT_EQ(NegotiateFormat(pb + ";q=0.4,application/openmetrics-text;q=0.5"),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat(pb + ";q=0.4,*/*;q=0.5"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(pb + ";q=0"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat(pb + ";q=bad"), Format::kPrometheus);
  EXPECT_EQ(NegotiateFormat("text/plain;q=0.1," + pb + ";q=0.2"), Format::kProtobuf);
}

TEST(NegotiateTest, EscapingOfTheChosenEntry) {
  const std::string om = "application/openmetrics-text;version=1.0.0";
  EXPECT_EQ(Negotiate(om + ";escaping=allow-utf-8").escaping, Escaping::kAllowUtf8);
  EXPECT_EQ(Negotiate(om + ";escaping=underscores").escaping, Escaping::kUnderscores);
  EXPECT_EQ(Negotiate(om + ";escaping=dots").escaping, Escaping::kDots);
  EXPECT_EQ(Negotiate(om + ";escaping=values").escaping, Escaping::kValues);
  EXPECT_EQ(Negotiate(om + ";Escaping=\"Allow-UTF-8\"").escaping, Escaping::kAllowUtf8);
  EXPECT_EQ(Negotiate(om + ";escaping=rot13").escaping, Escaping::kUnderscores);
  EXPECT_EQ(Negotiate(om + ";escaping=").escaping, Escaping::kUnderscores);
  EXPECT_EQ(Negotiate(om).escaping, Escaping::kUnderscores);
  // Only the entry that won counts, not the escaping of a format that lost.
  EXPECT_EQ(Negotiate(om + ";escaping=dots;q=0.2,text/plain;q=0.5"),
            (Negotiated{Format::kPrometheus, Escaping::kUnderscores}));
  EXPECT_EQ(Negotiate("text/plain;q=0.5;escaping=values," + om + ";q=0.1;escaping=dots"),
            (Negotiated{Format::kPrometheus, Escaping::kValues}));
  // Of two entries for one format, the one with the higher q.
  EXPECT_EQ(Negotiate(om + ";escaping=dots;q=0.3," + om + ";escaping=values;q=0.6"),
            (Negotiated{Format::kOpenMetrics, Escaping::kValues}));
  EXPECT_EQ(Negotiate("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                      "encoding=delimited;escaping=allow-utf-8"),
            (Negotiated{Format::kProtobuf, Escaping::kAllowUtf8}));
}

TEST(ContentTypeTest, Values) {
  EXPECT_EQ(ContentType(Format::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(ContentType(Format::kPrometheus), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ContentType(Format::kProtobuf),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited");
}

TEST(ContentTypeTest, EscapingIsNamedWhenNotTheDefault) {
  EXPECT_EQ(ContentType(Format::kProtobuf, Escaping::kUnderscores), ContentType(Format::kProtobuf));
  EXPECT_EQ(ContentType(Format::kOpenMetrics, Escaping::kUnderscores),
            ContentType(Format::kOpenMetrics));
  EXPECT_EQ(ContentType(Format::kOpenMetrics, Escaping::kAllowUtf8),
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8");
  EXPECT_EQ(ContentType(Format::kProtobuf, Escaping::kDots),
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited; escaping=dots");
  EXPECT_EQ(ContentType(Format::kPrometheus, Escaping::kValues),
            "text/plain; version=0.0.4; charset=utf-8; escaping=values");
}

TEST(AcceptsGzipTest, Values) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br"));  // browsers, curl --compressed
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=1.0, *;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("GZIP"));
  EXPECT_TRUE(AcceptsGzip("x-gzip"));
  EXPECT_TRUE(AcceptsGzip("identity;q=1, gzip;q=0.001"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_TRUE(AcceptsGzip("br;q=1, *;q=0.1"));

  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("deflate, br"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0.0"));
  EXPECT_FALSE(AcceptsGzip("gzip ; q=0 , *"));  // named gzip refusal beats the wildcard
  EXPECT_FALSE(AcceptsGzip("*;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzipx"));
  EXPECT_FALSE(AcceptsGzip("xgzip"));
  // An invalid q counts as absent: here gzip is then not named and the wildcard refuses.
  EXPECT_FALSE(AcceptsGzip("gzip;q=abc, *;q=0"));
  EXPECT_TRUE(AcceptsGzip("gzip;q=abc, gzip"));
}

}  // namespace
}  // namespace shmetrics::expose
