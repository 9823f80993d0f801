#include "expose/encoder.h"

#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "expose/number_format.h"
#include "expose/protobuf_encoder.h"

namespace shmetrics::expose {
namespace {

// OpenMetrics: "The combined length of the label names and values of an Exemplar's LabelSet MUST
// NOT exceed 128 UTF-8 characters."
constexpr size_t kMaxExemplarLabelChars = 128;

// The longest suffix an encoder adds to a family name ("_created").
constexpr size_t kMaxSuffix = 8;

// --- Raw writers. Each writes at p, which the caller has made big enough, and returns the end.
// Lines are assembled this way rather than by a dozen std::string::append calls each, because
// encoding is dominated by such small copies and 100,000 series must take milliseconds.

char* Put(char* p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());  // a default string_view's data() is null
  return p + s.size();
}

// Writes s with backslash, newline and (if kEscapeQuote) double quote escaped. At most
// 2 * s.size() bytes.
template <bool kEscapeQuote>
char* PutEscaped(char* p, std::string_view s) {
  for (const char c : s) {
    if (c == '\\') {
      *p++ = '\\';
      *p++ = '\\';
    } else if (c == '\n') {
      *p++ = '\\';
      *p++ = 'n';
    } else if (kEscapeQuote && c == '"') {
      *p++ = '\\';
      *p++ = '"';
    } else {
      *p++ = c;
    }
  }
  return p;
}

size_t LabelPairsBound(LabelSpan labels) {
  size_t n = 0;
  for (const Label& l : labels) n += l.name.size() + 2 * l.value.size() + 4;  // ,name="value"
  return n;
}

// Writes `a="x",b="y"` (no braces); at most LabelPairsBound(labels) bytes.
char* PutLabelPairs(char* p, LabelSpan labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) *p++ = ',';
    p = Put(p, labels[i].name);
    *p++ = '=';
    *p++ = '"';
    p = PutEscaped<true>(p, labels[i].value);
    *p++ = '"';
  }
  return p;
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool ExemplarFits(const Exemplar& e) {
  size_t n = 0;
  for (const Label& l : e.labels) n += Utf8Length(l.name) + Utf8Length(l.value);
  return n <= kMaxExemplarLabelChars;
}

size_t ExemplarBound(const Exemplar& e) {
  return LabelPairsBound(e.labels) + 8 + 2 * kMaxNumberChars;  // ` # {` `} ` value ` ` ts
}

// Writes ` # {<labels>} <value>[ <timestamp>]`; at most ExemplarBound(e) bytes.
char* PutExemplar(char* p, const Exemplar& e) {
  p = Put(p, " # {");
  p = PutLabelPairs(p, e.labels);
  p = Put(p, "} ");
  p = WriteSampleValue(e.value, p);
  // A timestamp that is not a finite number would make the line unparsable; drop just it.
  if (e.timestamp.has_value() && std::isfinite(*e.timestamp)) {
    *p++ = ' ';
    p = WriteSampleValue(*e.timestamp, p);
  }
  return p;
}

// One encoder for both formats: they share the sample syntax and differ in metadata, in which
// samples exist, and in exemplars, so a flag reads more plainly than two near-copies.
class TextEncoder final : public Encoder {
 public:
  TextEncoder(Format format, std::string* out)
      : out_(out), openmetrics_(format == Format::kOpenMetrics) {}

  void BeginFamily(const FamilyInfo& family) override {
    assert(!in_family_ && !finished_);
    in_family_ = true;
    type_ = family.type;
    // Copied because the caller's views need only live through this call; the buffer is reused
    // from family to family.
    name_.assign(family.name);
    if (openmetrics_) {
      BeginOpenMetricsFamily(family);
    } else {
      BeginPrometheusFamily(family);
    }
  }

  void Counter(LabelSpan labels, double value, std::optional<double> created,
               const Exemplar* exemplar) override {
    assert(in_family_ && type_ == MetricType::kCounter);
    SetSeriesLabels(labels);
    if (openmetrics_ && exemplar != nullptr && ExemplarFits(*exemplar)) {
      char* p = BeginLine(ExemplarBound(*exemplar));
      p = PutSampleStart(p, "_total");
      p = WriteSampleValue(value, p);
      p = PutExemplar(p, *exemplar);
      EndLine(p);
    } else {
      SampleLine("_total", value);
    }
    if (openmetrics_ && created.has_value()) SampleLine("_created", *created);
  }

  void Gauge(LabelSpan labels, double value) override {
    assert(in_family_ && (type_ == MetricType::kGauge || type_ == MetricType::kUnknown));
    SetSeriesLabels(labels);
    SampleLine("", value);
  }

  void Histogram(LabelSpan labels, std::span<const double> upper_bounds,
                 std::span<const uint64_t> cumulative, double sum, std::optional<double> created,
                 std::span<const Exemplar* const> exemplars) override {
    assert(in_family_ && type_ == MetricType::kHistogram);
    assert(cumulative.size() == upper_bounds.size() + 1);
    assert(exemplars.empty() || exemplars.size() == cumulative.size());
    SetSeriesLabels(labels);
    const bool with_exemplars = openmetrics_ && !exemplars.empty();
    for (size_t i = 0; i < cumulative.size(); ++i) {
      const Exemplar* ex = with_exemplars ? exemplars[i] : nullptr;
      if (ex != nullptr && !ExemplarFits(*ex)) ex = nullptr;
      char* p = BeginLine(ex != nullptr ? ExemplarBound(*ex) : 0);
      p = PutSampleStartWithNumberLabel(p, "_bucket", "le",
                                        i < upper_bounds.size() ? upper_bounds[i] : kPlusInf);
      p = WriteUint(cumulative[i], p);
      if (ex != nullptr) p = PutExemplar(p, *ex);
      EndLine(p);
    }
    CountLine(cumulative.empty() ? 0 : cumulative.back());
    SampleLine("_sum", sum);
    if (openmetrics_ && created.has_value()) SampleLine("_created", *created);
  }

  void Summary(LabelSpan labels, uint64_t count, double sum, std::span<const Quantile> quantiles,
               std::optional<double> created) override {
    assert(in_family_ && type_ == MetricType::kSummary);
    SetSeriesLabels(labels);
    for (const Quantile& q : quantiles) {
      char* p = BeginLine(0);
      p = PutSampleStartWithNumberLabel(p, "", "quantile", q.quantile);
      p = WriteSampleValue(q.value, p);
      EndLine(p);
    }
    CountLine(count);
    SampleLine("_sum", sum);
    if (openmetrics_ && created.has_value()) SampleLine("_created", *created);
  }

  void Info(LabelSpan labels) override {
    assert(in_family_ && type_ == MetricType::kInfo);
    SetSeriesLabels(labels);
    SampleLine("_info", 1);
  }

  void StateSet(LabelSpan labels, std::span<const State> states) override {
    assert(in_family_ && type_ == MetricType::kStateSet);
    SetSeriesLabels(labels);
    for (const State& s : states) {
      // `<name>{<labels>,<name>="<state>"} 0|1`: the state label is named after the family.
      char* p = BeginLine(name_.size() + 2 * s.name.size());
      p = Put(p, name_);
      *p++ = '{';
      if (!labels_.empty()) {
        p = Put(p, labels_);
        *p++ = ',';
      }
      p = Put(p, name_);
      *p++ = '=';
      *p++ = '"';
      p = PutEscaped<true>(p, s.name);
      p = Put(p, s.enabled ? "\"} 1" : "\"} 0");
      EndLine(p);
    }
  }

  void EndFamily() override {
    assert(in_family_);
    in_family_ = false;
  }

  void Finish() override {
    assert(!in_family_ && !finished_);
    finished_ = true;
    if (openmetrics_) out_->append("# EOF\n");
  }

 private:
  static constexpr double kPlusInf = std::numeric_limits<double>::infinity();

  // --- Metadata lines: once per family, so plain appends.

  void BeginOpenMetricsFamily(const FamilyInfo& family) {
    AppendMetadata("TYPE", "");
    out_->append(OpenMetricsTypeName(family.type));
    out_->push_back('\n');
    // Info and stateset families must have no unit; leaving it out keeps the output valid even
    // if a caller passes one.
    if (!family.unit.empty() && family.type != MetricType::kInfo &&
        family.type != MetricType::kStateSet) {
      AppendMetadata("UNIT", "");
      out_->append(family.unit);
      out_->push_back('\n');
    }
    if (!family.help.empty()) AppendHelp(family.help, "", /*escape_quote=*/true);
  }

  void BeginPrometheusFamily(const FamilyInfo& family) {
    // In 0.0.4 the metadata names the samples, so counters and infos carry their suffix here.
    std::string_view suffix;
    if (family.type == MetricType::kCounter) suffix = "_total";
    if (family.type == MetricType::kInfo) suffix = "_info";
    if (!family.help.empty()) AppendHelp(family.help, suffix, /*escape_quote=*/false);
    AppendMetadata("TYPE", suffix);
    out_->append(PrometheusTypeName(family.type));
    out_->push_back('\n');
  }

  // Appends `# <keyword> <name><suffix> `.
  void AppendMetadata(std::string_view keyword, std::string_view suffix) {
    out_->append("# ");
    out_->append(keyword);
    out_->push_back(' ');
    out_->append(name_);
    out_->append(suffix);
    out_->push_back(' ');
  }

  // OpenMetrics escapes `"` in HELP as well; 0.0.4 escapes only backslash and newline.
  void AppendHelp(std::string_view help, std::string_view suffix, bool escape_quote) {
    AppendMetadata("HELP", suffix);
    const size_t old = out_->size();
    out_->resize(old + 2 * help.size() + 1);
    char* p = out_->data() + old;
    p = escape_quote ? PutEscaped<true>(p, help) : PutEscaped<false>(p, help);
    *p++ = '\n';
    out_->resize(p - out_->data());
  }

  static std::string_view OpenMetricsTypeName(MetricType type) {
    switch (type) {
      case MetricType::kCounter:
        return "counter";
      case MetricType::kGauge:
        return "gauge";
      case MetricType::kHistogram:
        return "histogram";
      case MetricType::kSummary:
        return "summary";
      case MetricType::kInfo:
        return "info";
      case MetricType::kStateSet:
        return "stateset";
      case MetricType::kUnknown:
        break;
    }
    return "unknown";
  }

  // 0.0.4 has no info or stateset; python-prometheus-client exposes both as gauges, and so do we.
  static std::string_view PrometheusTypeName(MetricType type) {
    switch (type) {
      case MetricType::kCounter:
        return "counter";
      case MetricType::kHistogram:
        return "histogram";
      case MetricType::kSummary:
        return "summary";
      case MetricType::kGauge:
      case MetricType::kInfo:
      case MetricType::kStateSet:
        return "gauge";
      case MetricType::kUnknown:
        break;
    }
    return "untyped";
  }

  // --- Sample lines.

  // Renders the series' own labels once, for all the lines of a histogram or summary.
  void SetSeriesLabels(LabelSpan labels) {
    labels_.resize(LabelPairsBound(labels));
    labels_.resize(PutLabelPairs(labels_.data(), labels) - labels_.data());
  }

  // Grows *out_ by enough for one sample line of the current series plus extra bytes, and returns
  // where the line starts. EndLine(end of what was written) ends the line and trims the rest.
  // The resize zero-fills a few hundred bytes at most; it is what lets the line be written with
  // plain stores.
  char* BeginLine(size_t extra) {
    const size_t old = out_->size();
    // name, suffix, `{labels,le="<number>"} `, value, newline.
    out_->resize(old + name_.size() + kMaxSuffix + labels_.size() + 16 + 2 * kMaxNumberChars +
                 extra);
    return out_->data() + old;
  }
  void EndLine(char* p) {
    *p++ = '\n';
    out_->resize(p - out_->data());
  }

  // Writes `<name><suffix>[{<labels>}] `.
  char* PutSampleStart(char* p, std::string_view suffix) {
    p = Put(p, name_);
    p = Put(p, suffix);
    if (!labels_.empty()) {
      *p++ = '{';
      p = Put(p, labels_);
      *p++ = '}';
    }
    *p++ = ' ';
    return p;
  }

  // Writes `<name><suffix>{<labels>,<label>="<canonical v>"} `. label is "le" or "quantile".
  char* PutSampleStartWithNumberLabel(char* p, std::string_view suffix, std::string_view label,
                                      double v) {
    p = Put(p, name_);
    p = Put(p, suffix);
    *p++ = '{';
    if (!labels_.empty()) {
      p = Put(p, labels_);
      *p++ = ',';
    }
    p = Put(p, label);
    *p++ = '=';
    *p++ = '"';
    p = WriteCanonicalNumber(v, p);
    return Put(p, "\"} ");
  }

  void SampleLine(std::string_view suffix, double value) {
    char* p = BeginLine(0);
    p = PutSampleStart(p, suffix);
    EndLine(WriteSampleValue(value, p));
  }

  void CountLine(uint64_t count) {
    char* p = BeginLine(0);
    p = PutSampleStart(p, "_count");
    EndLine(WriteUint(count, p));
  }

  // Constant after construction
  std::string* const out_;
  const bool openmetrics_;

  // State of the family and series being written
  std::string name_;
  MetricType type_ = MetricType::kUnknown;
  std::string labels_;  // the current series' rendered label pairs
  bool in_family_ = false;
  bool finished_ = false;
};

}  // namespace

void Encoder::NativeHistogram(LabelSpan labels, const expose::NativeHistogram& h,
                              std::optional<double> created,
                              std::span<const Exemplar* const> exemplars) {
  const uint64_t cumulative[] = {h.count};
  const Exemplar* inf_exemplar[] = {exemplars.empty() ? nullptr : exemplars.back()};
  Histogram(labels, {}, cumulative, h.sum, created,
            exemplars.empty() ? std::span<const Exemplar* const>() : inf_exemplar);
}

std::unique_ptr<Encoder> MakeEncoder(Format format, std::string* out,
                                     const EncoderOptions& options) {
  if (format == Format::kProtobuf) return MakeProtobufEncoder(out, options);
  (void)options;
  return std::make_unique<TextEncoder>(format, out);
}

}  // namespace shmetrics::expose
