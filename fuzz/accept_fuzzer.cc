// Fuzzes the parsers of the Accept and Accept-Encoding headers of a /metrics request.
// Input: an Accept header, a newline, an Accept-Encoding header.
// Checks beyond "no crash": the answer is one of the three formats, is the same when asked twice,
// agrees between NegotiateFormat and Negotiate, and does not depend on the case of media types,
// parameter names and the parameter values the parser looks at.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "expose/negotiate.h"

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shmetrics::expose::Format;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view accept = in.substr(0, nl);
  const std::string_view encoding = nl == std::string_view::npos ? "" : in.substr(nl + 1);

  const Format f = shmetrics::expose::NegotiateFormat(accept);
  if (f != Format::kOpenMetrics && f != Format::kPrometheus && f != Format::kProtobuf) {
    std::abort();
  }
  if (shmetrics::expose::NegotiateFormat(accept) != f) std::abort();
  if (shmetrics::expose::ContentType(f).empty()) std::abort();
  // Media types, parameter names and the values the parsers look at compare case-insensitively.
  if (shmetrics::expose::NegotiateFormat(Lower(accept)) != f) std::abort();
  const shmetrics::expose::Negotiated n = shmetrics::expose::Negotiate(accept);
  const shmetrics::expose::Negotiated lower = shmetrics::expose::Negotiate(Lower(accept));
  if (n.format != f || lower.format != f || lower.escaping != n.escaping) std::abort();
  if (shmetrics::expose::ContentType(n.format, n.escaping)
          .find(shmetrics::expose::ContentType(f)) != 0) {
    std::abort();
  }

  const bool gzip = shmetrics::expose::AcceptsGzip(encoding);
  if (shmetrics::expose::AcceptsGzip(encoding) != gzip) std::abort();
  if (shmetrics::expose::AcceptsGzip(Lower(encoding)) != gzip) std::abort();
  return 0;
}
