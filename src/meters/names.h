// Validation of metric names, label names and label values, as OpenMetrics defines them.
// Pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_METERS_NAMES_H_
#define SHMETRICS_SRC_METERS_NAMES_H_

#include <cstddef>
#include <string_view>

namespace shmetrics::meters {

namespace internal {
constexpr bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
constexpr bool IsDigit(char c) { return c >= '0' && c <= '9'; }
}  // namespace internal

// [a-zA-Z_:][a-zA-Z0-9_:]*
constexpr bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(internal::IsAlpha(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(internal::IsAlpha(c) || internal::IsDigit(c) || c == ':')) return false;
  }
  return true;
}
// [a-zA-Z_][a-zA-Z0-9_]*
constexpr bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !internal::IsAlpha(name[0])) return false;
  for (char c : name) {
    if (!(internal::IsAlpha(c) || internal::IsDigit(c))) return false;
  }
  return true;
}
// Names starting with "__" are reserved for Prometheus's internal use.
constexpr bool IsReservedLabelName(std::string_view name) { return name.substr(0, 2) == "__"; }
bool IsValidUtf8(std::string_view s);
// Number of code points in valid UTF-8.
size_t Utf8Length(std::string_view s);

}  // namespace shmetrics::meters

#endif  // SHMETRICS_SRC_METERS_NAMES_H_
