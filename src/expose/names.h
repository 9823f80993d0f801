// Names in an exposition: the legacy character sets, and the escaping schemes by which a name
// outside them reaches a scraper that did not ask for UTF-8 (the `escaping` parameter of
// Accept), exactly as Prometheus's expfmt writes them (prometheus/common model.EscapeName as
// model.EscapeMetricFamily applies it).
//
// Every encoder writes names through these functions, so that text and protobuf agree.
// Pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_NAMES_H_
#define SHMETRICS_SRC_EXPOSE_NAMES_H_

#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

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

// "underscores", "dots", ...: the scheme as the `escaping` parameter names it.
std::string_view SchemeName(Escaping scheme);

// Which family names one exposition has written, so that escaping never makes a parser see a
// family or a sample name twice: "a.b" and "a_b" are both "a_b" with kUnderscores, and a family
// "a_b_total" would repeat counter a.b's sample. The first family keeps its names; a later one
// with a name already written is refused. Names are only remembered (one copy per family) until
// the first family that escaping changes; from then on every family is checked. Under
// kAllowUtf8 every family is accepted: registration keeps unescaped names apart.
class FamilyNameClaims {
 public:
  explicit FamilyNameClaims(Escaping scheme) : scheme_(scheme) {}
  // Whether the family of name `raw`, written as `escaped`, may be written. On false, the
  // refusal has been noted on stderr (once per process and message).
  bool Claim(std::string_view raw, std::string_view escaped, MetricType type);

 private:
  bool Add(const std::string& name, MetricType type, bool check);

  const Escaping scheme_;
  bool claiming_ = false;
  std::vector<std::pair<std::string, MetricType>> seen_;
  std::unordered_set<std::string> claimed_;
};

// The label names of the last series an encoder wrote, when every one was in the legacy set.
// The series of one family pass the same name views (they point into its definition, which
// outlives the family's calls), so an encoder checks a family's names once, not per series; it
// forgets them at each family, whose definition may sit where the last one's was.
class KnownLegacyLabels {
 public:
  bool Holds(LabelSpan labels) const {
    if (labels.size() != names_.size()) return false;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i].name.data() != names_[i].data() || labels[i].name.size() != names_[i].size()) {
        return false;
      }
    }
    return true;
  }
  // REQUIRES: every name of labels is a legacy label name.
  void Remember(LabelSpan labels) {
    names_.resize(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) names_[i] = labels[i].name;
  }
  void Forget() { names_.clear(); }

 private:
  std::vector<std::string_view> names_;
};

// Whether two of a series' label names as written, or one of them and `added` (the label the
// encoder adds: "le", "quantile", a stateset's name; may be empty), are equal.
bool HasDuplicateLabel(std::span<const std::string_view> names, std::string_view added);

// Writes "shmetrics: <message>" to stderr once per process: what an exposition left out is the
// heap's doing, not the scraper's, and must not be logged at every scrape.
void NoteOnce(const std::string& message);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_NAMES_H_
