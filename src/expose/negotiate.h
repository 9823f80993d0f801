// HTTP content negotiation for /metrics: which format to send and how to escape names (from the
// Accept header), the Content-Type that names them, and whether to gzip the body (from
// Accept-Encoding).
//
// The parsers face whatever a client sends: they never fail, never allocate, and do work linear
// in the header's length. Malformed parts are skipped, not guessed at.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_NEGOTIATE_H_
#define SHMETRICS_SRC_EXPOSE_NEGOTIATE_H_

#include <string>
#include <string_view>

#include "expose/encoder.h"

namespace shmetrics::expose {

// Picks the format for an Accept header: protobuf as Negotiate (below) says, else OpenMetrics
// when the header accepts
// `application/openmetrics-text` with `version=1.0.0` or no version, with a q above zero and at
// least the q given to Prometheus text (`text/plain` with version 0.0.4 or none, `text/*`, or
// `*/*`); Prometheus text 0.0.4 otherwise, including for an empty or unparsable header. Media
// types and parameter names compare case-insensitively; an invalid q makes its entry count as
// absent.
//
// Example (what Prometheus 2.x sends):
//   NegotiateFormat("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
//                   "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
//     == Format::kOpenMetrics
//   NegotiateFormat("*/*") == Format::kPrometheus
[[nodiscard]] Format NegotiateFormat(std::string_view accept_header);

struct Negotiated {
  Format format = Format::kPrometheus;
  Escaping escaping = Escaping::kUnderscores;
  friend bool operator==(const Negotiated&, const Negotiated&) = default;
};

// The format as NegotiateFormat picks it, with protobuf first: Format::kProtobuf when the header
// accepts `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily` and
// `encoding=delimited`, with a q above zero and at least the q of either text format. The
// escaping is the `escaping` parameter (`allow-utf-8`, `underscores`, `dots`, `values`) of the
// entry that won, kUnderscores when it has none or an unknown one. Parameter values compare
// case-insensitively too.
//
// Example (Prometheus 2.42 with --enable-feature=native-histograms):
//   Negotiate("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
//             "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,...")
//     == {Format::kProtobuf, Escaping::kUnderscores}
// Example (Prometheus 3.x):
//   Negotiate("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,...")
//     == {Format::kOpenMetrics, Escaping::kAllowUtf8}
[[nodiscard]] Negotiated Negotiate(std::string_view accept_header);

// The Content-Type header value for a format:
//   kOpenMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
//   kPrometheus:  "text/plain; version=0.0.4; charset=utf-8"
//   kProtobuf:    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//                  encoding=delimited"
[[nodiscard]] std::string_view ContentType(Format format);

// The same followed by `; escaping=<scheme>` when escaping is not kUnderscores, the default a
// scraper assumes, as Prometheus 3 reads it.
[[nodiscard]] std::string ContentType(Format format, Escaping escaping);

// True when an Accept-Encoding header allows gzip: a `gzip` (or `x-gzip`) entry with q above
// zero, or, when gzip is not named, a `*` entry with q above zero. `gzip;q=0` refuses gzip even if
// `*` is accepted.
[[nodiscard]] bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_NEGOTIATE_H_
