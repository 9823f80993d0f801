// Names in an exposition: the legacy character sets, and the escaping schemes by which a name
// outside them reaches a scraper that did not ask for UTF-8 (the `escaping` parameter of
// Accept), exactly as Prometheus's expfmt writes them (prometheus/common model.EscapeName as
// model.EscapeMetricFamily applies it).
//
// Every encoder writes names through these functions, so that text and protobuf agree.
// Pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_NAMES_H_
#define SHMETRICS_SRC_EXPOSE_NAMES_H_

#include <string>
#include <string_view>

#include "expose/encoder.h"

namespace shmetrics::expose {

// [a-zA-Z_:][a-zA-Z0-9_:]*, the names the text formats write without quotes.
bool IsLegacyMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*.
bool IsLegacyLabelName(std::string_view name);

enum class NameKind { kMetric, kLabel };

// The name as `scheme` writes it. A name already in the legacy set of its kind is returned
// unchanged by every scheme (expfmt escapes only names that need it: under kDots too, whose
// doubling of underscores applies only to names that are escaped at all); so is every name under
// kAllowUtf8. Otherwise each code point outside the set is replaced:
//   kUnderscores: by '_' (a leading digit too: "0a" becomes "_a");
//   kDots:        '.' by "_dot_", '_' by "__", any other by "__";
//   kValues:      "U__" first, then '_' by "__", any other by "_<lowercase hex code point>_".
// A byte that is not part of valid UTF-8 counts as U+FFFD, as Go's range over a string does.
// Label names differ from metric names only in that ':' is outside their set: expfmt leaves a
// label "a:b" alone, which the 0.0.4 and OpenMetrics 1.0 parsers then reject; here it becomes
// "a_b" (kUnderscores), "a__b" (kDots) or "U__a_3a_b" (kValues).
// Returns a view of `name` when it is unchanged, else of *scratch, which holds the result.
std::string_view EscapeName(std::string_view name, Escaping scheme, std::string* scratch,
                            NameKind kind = NameKind::kMetric);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_NAMES_H_
