// Name checks shared by the registry (which rejects bad names at registration) and the encoders
// (which assume good ones): the metric and label name grammars of the Prometheus data model and
// OpenMetrics 1.0, without the UTF-8 quoting that later versions allow.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_NAMES_H_
#define SHMETRICS_SRC_EXPOSE_NAMES_H_

#include <string_view>

namespace shmetrics::expose {

namespace internal {
constexpr bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }
}  // namespace internal

// True when name matches `[a-zA-Z_:][a-zA-Z0-9_:]*`. Colons are legal but reserved for
// recording rules; deciding whether to allow them is the registry's business.
[[nodiscard]] constexpr bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (internal::IsAsciiLetter(c) || c == '_' || c == ':') continue;
    if (i > 0 && internal::IsAsciiDigit(c)) continue;
    return false;
  }
  return true;
}

// True when name matches `[a-zA-Z_][a-zA-Z0-9_]*`. A valid name may still be reserved; see
// IsReservedLabelName.
[[nodiscard]] constexpr bool IsValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (internal::IsAsciiLetter(c) || c == '_') continue;
    if (i > 0 && internal::IsAsciiDigit(c)) continue;
    return false;
  }
  return true;
}

// True when name starts with `__`: such names belong to Prometheus itself (`__name__`,
// `__address__`, ...) and user metrics must not use them.
[[nodiscard]] constexpr bool IsReservedLabelName(std::string_view name) {
  return name.size() >= 2 && name[0] == '_' && name[1] == '_';
}

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_NAMES_H_
