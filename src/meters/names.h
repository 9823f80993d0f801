// Validation of metric names, label names and label values, as OpenMetrics defines them.
// Pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_METERS_NAMES_H_
#define SHMETRICS_SRC_METERS_NAMES_H_

#include <cstddef>
#include <string_view>

namespace shmetrics::meters {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*
bool IsValidLabelName(std::string_view name);
// Names starting with "__" are reserved for Prometheus's internal use.
inline bool IsReservedLabelName(std::string_view name) { return name.substr(0, 2) == "__"; }
bool IsValidUtf8(std::string_view s);
// Number of code points in valid UTF-8.
size_t Utf8Length(std::string_view s);

}  // namespace shmetrics::meters

#endif  // SHMETRICS_SRC_METERS_NAMES_H_
