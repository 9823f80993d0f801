// Fuzzes the parsers of the Accept and Accept-Encoding headers of a /metrics request.
// Input: an Accept header, a newline, an Accept-Encoding header.
// Checks beyond "no crash": the answer is one of the two formats, is the same when asked twice,
// and does not depend on the case of media types and parameter names.
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
  if (f != Format::kOpenMetrics && f != Format::kPrometheus) std::abort();
  if (shmetrics::expose::NegotiateFormat(accept) != f) std::abort();
  if (shmetrics::expose::ContentType(f).empty()) std::abort();
  // Media types, parameter names and the values the parsers look at compare case-insensitively.
  if (shmetrics::expose::NegotiateFormat(Lower(accept)) != f) std::abort();

  const bool gzip = shmetrics::expose::AcceptsGzip(encoding);
  if (shmetrics::expose::AcceptsGzip(encoding) != gzip) std::abort();
  if (shmetrics::expose::AcceptsGzip(Lower(encoding)) != gzip) std::abort();
  return 0;
}
