#include "expose/encoder.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "expose/names.h"
#include "expose/number_format.h"
#include "expose/protobuf_encoder.h"
#include "util/bytes.h"

namespace shmetrics::expose {
namespace {

// OpenMetrics: "The combined length of the label names and values of an Exemplar's LabelSet MUST
// NOT exceed 128 UTF-8 characters."
constexpr size_t kMaxExemplarLabelChars = 128;

// The longest suffix an encoder adds to a family name ("_created").
constexpr size_t kMaxSuffix = 8;

// Quotes and braces a quoted UTF-8 name adds to a sample line: `{"` and `"`.
constexpr size_t kQuotedNameExtra = 3;

// --- Raw writers. Each writes at p, which the caller has made big enough, and returns the end.
// Lines are assembled this way rather than by a dozen std::string::append calls each, because
// encoding is dominated by such small copies and 100,000 series must take milliseconds.

[[gnu::always_inline]] inline char* Put(char* p, std::string_view s) {
  util::CopyShort(p, s.data(), s.size());  // a default string_view's data() is null, its size 0
  return p + s.size();
}

// Whether a byte of the word is c (the classic "has a zero byte" test on w ^ c repeated).
constexpr uint64_t kByteOnes = 0x0101010101010101ULL;
inline uint64_t HasByte(uint64_t w, char c) {
  const uint64_t x = w ^ (kByteOnes * static_cast<unsigned char>(c));
  return (x - kByteOnes) & ~x & (kByteOnes << 7);
}

// Whether s holds a byte that PutEscaped rewrites, tested a word at a time. Bytes of a short
// string are gathered into one word the way CopyShort reads them (repeats and zero padding
// change nothing: a zero byte is none of the escaped ones).
template <bool kEscapeQuote>
[[gnu::always_inline]] inline bool NeedsEscaping(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  auto special = [](uint64_t w) {
    return (HasByte(w, '\\') | HasByte(w, '\n') | (kEscapeQuote ? HasByte(w, '"') : 0)) != 0;
  };
  uint64_t w;
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, 8);
      if (special(w)) return true;
    }
    if (i == n) return false;
    std::memcpy(&w, p + n - 8, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    w = uint64_t{a} | (uint64_t{b} << 32);
  } else if (n != 0) {
    const auto byte = [p](size_t k) { return uint64_t{static_cast<unsigned char>(p[k])}; };
    w = byte(0) | (byte(n / 2) << 8) | (byte(n - 1) << 16);
  } else {
    return false;
  }
  return special(w);
}

template <bool kEscapeQuote>
[[gnu::noinline]] char* PutEscapedSlow(char* p, std::string_view s) {
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

// Writes s with backslash, newline and (if kEscapeQuote) double quote escaped. At most
// 2 * s.size() bytes.
template <bool kEscapeQuote>
[[gnu::always_inline]] inline char* PutEscaped(char* p, std::string_view s) {
  return NeedsEscaping<kEscapeQuote>(s) ? PutEscapedSlow<kEscapeQuote>(p, s) : Put(p, s);
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

bool SumIsCounterLike(double sum) { return sum >= 0; }  // false for NaN too

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
  TextEncoder(Format format, std::string* out, const EncoderOptions& options)
      : out_(out),
        openmetrics_(format == Format::kOpenMetrics),
        created_(openmetrics_ && options.created),
        escaping_(options.escaping),
        claims_(options.escaping) {}

  void BeginFamily(const FamilyInfo& family) override {
    assert(!in_family_ && !finished_);
    in_family_ = true;
    type_ = family.type;
    // Copied because the caller's views need only live through this call; the buffers are
    // reused from family to family.
    SetName(family.name);
    known_legacy_.Forget();
    direct_prefix_valid_ = false;
    // Escaping can give two families one name: the first keeps it, a later one is left out.
    skip_family_ = !claims_.Claim(family.name, quoted_ ? family.name : name_, type_);
    if (skip_family_) return;
    if (type_ == MetricType::kStateSet) {
      const std::string_view l = WriteLabelName(family.name, &state_label_scratch_);
      state_label_.assign(l);
    }
    if (openmetrics_) {
      BeginOpenMetricsFamily(family);
    } else {
      BeginPrometheusFamily(family);
    }
  }

  void Counter(LabelSpan labels, double value, std::optional<double> created,
               const Exemplar* exemplar) override {
    assert(in_family_ && type_ == MetricType::kCounter);
    if (skip_family_) return;
    const bool with_exemplar = openmetrics_ && exemplar != nullptr && ExemplarFits(*exemplar);
    const bool with_created = created_ && created.has_value();
    if (!with_exemplar && !with_created && DirectLine(labels, "_total", value)) return;
    if (!SetSeriesLabels(labels, {})) return;
    if (with_exemplar) {
      char* p = BeginLine(ExemplarBound(*exemplar));
      p = PutSampleStart(p, "_total");
      p = WriteSampleValue(value, p);
      p = PutExemplar(p, *exemplar);
      EndLine(p);
    } else {
      SampleLine("_total", value);
    }
    if (with_created) SampleLine("_created", *created);
  }

  void Gauge(LabelSpan labels, double value) override {
    assert(in_family_ && (type_ == MetricType::kGauge || type_ == MetricType::kUnknown));
    if (skip_family_ || DirectLine(labels, "", value)) return;
    if (!SetSeriesLabels(labels, {})) return;
    SampleLine("", value);
  }

  void Histogram(LabelSpan labels, std::span<const double> upper_bounds,
                 std::span<const uint64_t> cumulative, double sum, std::optional<double> created,
                 std::span<const Exemplar* const> exemplars) override {
    assert(in_family_ && type_ == MetricType::kHistogram);
    assert(cumulative.size() == upper_bounds.size() + 1);
    assert(exemplars.empty() || exemplars.size() == cumulative.size());
    if (!SetSeriesLabels(labels, "le")) return;
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
    // OpenMetrics makes _sum a counter: never negative or NaN, and absent when a bucket bound
    // is negative; _count goes with it (a parser wants both or neither). +Inf still counts.
    if (!openmetrics_ ||
        (SumIsCounterLike(sum) && (upper_bounds.empty() || upper_bounds[0] >= 0))) {
      CountLine(cumulative.empty() ? 0 : cumulative.back());
      SampleLine("_sum", sum);
    }
    if (created_ && created.has_value()) SampleLine("_created", *created);
  }

  void Summary(LabelSpan labels, uint64_t count, double sum, std::span<const Quantile> quantiles,
               std::optional<double> created) override {
    assert(in_family_ && type_ == MetricType::kSummary);
    if (!SetSeriesLabels(labels, "quantile")) return;
    for (const Quantile& q : quantiles) {
      char* p = BeginLine(0);
      p = PutSampleStartWithNumberLabel(p, "", "quantile", q.quantile);
      p = WriteSampleValue(q.value, p);
      EndLine(p);
    }
    CountLine(count);
    if (!openmetrics_ || SumIsCounterLike(sum)) SampleLine("_sum", sum);  // as for histograms
    if (created_ && created.has_value()) SampleLine("_created", *created);
  }

  void Info(LabelSpan labels) override {
    assert(in_family_ && type_ == MetricType::kInfo);
    if (skip_family_ || DirectLine(labels, "_info", 1)) return;
    if (!SetSeriesLabels(labels, {})) return;
    SampleLine("_info", 1);
  }

  void StateSet(LabelSpan labels, std::span<const State> states) override {
    assert(in_family_ && type_ == MetricType::kStateSet);
    if (!SetSeriesLabels(labels, state_label_)) return;
    for (const State& s : states) {
      // `<name>{<labels>,<name>="<state>"} 0|1`: the state label is named after the family.
      char* p = BeginLine(state_label_.size() + 2 * s.name.size());
      p = PutSampleStartWithLabel(p, "", state_label_);
      p = PutEscaped<true>(p, s.name);
      p = Put(p, s.enabled ? "\"} 1" : "\"} 0");
      EndLine(p);
    }
  }

  void EndFamily() override {
    assert(in_family_);
    in_family_ = false;
    skip_family_ = false;
  }

  void Finish() override {
    assert(!in_family_ && !finished_);
    finished_ = true;
    if (openmetrics_) out_->append("# EOF\n");
  }

 private:
  static constexpr double kPlusInf = std::numeric_limits<double>::infinity();

  // --- Names.

  // Sets name_ to the family name as this exposition writes it: escaped, or (with kAllowUtf8,
  // outside the legacy set) the text between the quotes.
  void SetName(std::string_view raw) {
    quoted_ = escaping_ == Escaping::kAllowUtf8 && !IsLegacyMetricName(raw);
    if (quoted_) {
      name_.resize(2 * raw.size());
      name_.resize(PutEscaped<true>(name_.data(), raw) - name_.data());
    } else {
      name_.assign(EscapeName(raw, escaping_, &scratch_));
    }
  }

  // A label name as written: itself, quoted (kAllowUtf8) or escaped. The view is of raw or of
  // *storage.
  std::string_view WriteLabelName(std::string_view raw, std::string* storage) const {
    if (IsLegacyLabelName(raw)) return raw;
    if (escaping_ != Escaping::kAllowUtf8) {
      return EscapeName(raw, escaping_, storage, NameKind::kLabel);
    }
    storage->resize(2 * raw.size() + 2);
    char* p = storage->data();
    *p++ = '"';
    p = PutEscaped<true>(p, raw);
    *p++ = '"';
    storage->resize(p - storage->data());
    return *storage;
  }

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

  // Appends `# <keyword> <name><suffix> `, the name in quotes when it needs them.
  void AppendMetadata(std::string_view keyword, std::string_view suffix) {
    out_->append("# ");
    out_->append(keyword);
    out_->push_back(' ');
    if (quoted_) out_->push_back('"');
    out_->append(name_);
    out_->append(suffix);
    if (quoted_) out_->push_back('"');
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

  // Renders the series' own labels once, for all the lines of a histogram or summary. Returns
  // false when the series must be left out: its family is, or escaping gives two of its labels
  // (or one of them and the label the encoder adds, `added`) the same name.
  bool SetSeriesLabels(LabelSpan labels, std::string_view added) {
    if (skip_family_) return false;
    if (known_legacy_.Holds(labels)) {
      // The last series' names, none escaped (the collector passes a family's names as the same
      // views for every series): only the values are new.
      size_t bound = 0;
      for (const Label& l : labels) bound += l.name.size() + 2 * l.value.size() + 4;
      char* p = LabelBuffer(bound);
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) *p++ = ',';
        p = Put(p, labels[i].name);
        *p++ = '=';
        *p++ = '"';
        p = PutEscaped<true>(p, labels[i].value);
        *p++ = '"';
      }
      labels_len_ = p - labels_buf_.get();
      return true;
    }
    if (label_scratch_.size() < labels.size()) label_scratch_.resize(labels.size());
    label_names_.resize(labels.size());
    bool escaped = false;
    size_t bound = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
      label_names_[i] = WriteLabelName(labels[i].name, &label_scratch_[i]);
      escaped |= label_names_[i].data() != labels[i].name.data();
      bound += label_names_[i].size() + 2 * labels[i].value.size() + 4;  // ,name="value"
    }
    if (!escaped) {
      known_legacy_.Remember(labels);
      direct_prefix_valid_ = false;
    }
    if (escaped && escaping_ != Escaping::kAllowUtf8 && HasDuplicateLabel(label_names_, added)) {
      NoteOnce(std::string("a series of metric \"") + name_ + "\" is left out of expositions " +
               "with escaping=" + std::string(SchemeName(escaping_)) +
               ": two of its label names escape to the same name");
      return false;
    }
    char* p = LabelBuffer(bound);
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) *p++ = ',';
      p = Put(p, label_names_[i]);
      *p++ = '=';
      *p++ = '"';
      p = PutEscaped<true>(p, labels[i].value);
      *p++ = '"';
    }
    labels_len_ = p - labels_buf_.get();
    return true;
  }

  // Room for `bound` bytes of rendered labels, which the caller writes from the start.
  char* LabelBuffer(size_t bound) {
    if (bound > labels_cap_) {
      labels_cap_ = std::max(bound, 2 * labels_cap_);
      labels_buf_ = std::make_unique<char[]>(labels_cap_);
    }
    return labels_buf_.get();
  }
  std::string_view labels() const { return {labels_buf_.get(), labels_len_}; }

  // Room for one sample line of the current series plus extra bytes, in a buffer of the
  // encoder's; EndLine(end of what was written) ends the line and appends it to *out_. Lines are
  // written with plain stores and appended with one copy: growing *out_ in place instead costs a
  // zero-fill of the bound and a trim per line, more than the copy.
  char* BeginLine(size_t extra) {
    // name, suffix, `{labels,le="<number>"} `, value, newline.
    const size_t bound = name_.size() + kQuotedNameExtra + kMaxSuffix + labels_len_ + 16 +
                         2 * kMaxNumberChars + extra;
    if (bound > line_cap_) {
      line_cap_ = std::max(bound, 2 * line_cap_);
      line_buf_ = std::make_unique<char[]>(line_cap_);
    }
    return line_buf_.get();
  }
  void EndLine(char* p) {
    *p++ = '\n';
    out_->append(line_buf_.get(), p - line_buf_.get());
  }

  // Writes the one sample line of a series straight from its labels, rather than rendering them
  // apart first and copying them in. False when SetSeriesLabels and the general path must: the
  // labels' names are not the last series' unescaped ones, or the name is quoted.
  bool DirectLine(LabelSpan labels, std::string_view suffix, double value) {
    if (quoted_ || !known_legacy_.Holds(labels)) return false;
    // `<name><suffix>{<first label>="` is the same for every series of the family (their names
    // are the ones known_legacy_ holds), so it is written once and copied.
    // Suffixes are literals: the same one comes as the same view, so compare views first.
    if (!direct_prefix_valid_ || suffix.data() != direct_suffix_view_.data() ||
        suffix.size() != direct_suffix_view_.size()) {
      direct_suffix_view_ = suffix;
      direct_prefix_.assign(name_).append(suffix);
      if (!labels.empty()) direct_prefix_.append("{").append(labels[0].name).append("=\"");
      direct_prefix_valid_ = true;
    }
    size_t bound = 0;
    for (const Label& l : labels) bound += l.name.size() + 2 * l.value.size() + 4;
    labels_len_ = 0;
    char* p = BeginLine(bound);
    p = Put(p, direct_prefix_);
    if (!labels.empty()) {
      p = PutEscaped<true>(p, labels[0].value);
      *p++ = '"';
      for (size_t i = 1; i < labels.size(); ++i) {
        *p++ = ',';
        p = Put(p, labels[i].name);
        *p++ = '=';
        *p++ = '"';
        p = PutEscaped<true>(p, labels[i].value);
        *p++ = '"';
      }
      *p++ = '}';
    }
    *p++ = ' ';
    EndLine(WriteSampleValue(value, p));
    return true;
  }

  // Writes `<name><suffix>`, or `"<name><suffix>"`.
  char* PutName(char* p, std::string_view suffix) {
    if (quoted_) *p++ = '"';
    p = Put(p, name_);
    p = Put(p, suffix);
    if (quoted_) *p++ = '"';
    return p;
  }

  // Writes `<name><suffix>[{<labels>}] `; a quoted name goes inside the braces:
  // `{"<name><suffix>"[,<labels>]} `.
  char* PutSampleStart(char* p, std::string_view suffix) {
    if (quoted_) {
      *p++ = '{';
      p = PutName(p, suffix);
      if (labels_len_ != 0) {
        *p++ = ',';
        p = Put(p, labels());
      }
      *p++ = '}';
    } else {
      p = PutName(p, suffix);
      if (labels_len_ != 0) {
        *p++ = '{';
        p = Put(p, labels());
        *p++ = '}';
      }
    }
    *p++ = ' ';
    return p;
  }

  // Writes `<name><suffix>{<labels>,<label>="` (the name inside the braces when quoted); the
  // caller writes the value and `"} `.
  char* PutSampleStartWithLabel(char* p, std::string_view suffix, std::string_view label) {
    if (quoted_) {
      *p++ = '{';
      p = PutName(p, suffix);
      *p++ = ',';
    } else {
      p = PutName(p, suffix);
      *p++ = '{';
    }
    if (labels_len_ != 0) {
      p = Put(p, labels());
      *p++ = ',';
    }
    p = Put(p, label);
    *p++ = '=';
    *p++ = '"';
    return p;
  }

  // Writes `<name><suffix>{<labels>,<label>="<canonical v>"} `. label is "le" or "quantile".
  char* PutSampleStartWithNumberLabel(char* p, std::string_view suffix, std::string_view label,
                                      double v) {
    p = PutSampleStartWithLabel(p, suffix, label);
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
  const bool created_;  // write `_created` samples
  const Escaping escaping_;

  // State of the family and series being written
  std::string name_;  // as written: escaped, or the inside of its quotes
  bool quoted_ = false;
  std::string state_label_;  // a stateset's state label name, as written
  MetricType type_ = MetricType::kUnknown;
  // The line being written (BeginLine)
  std::unique_ptr<char[]> line_buf_;
  size_t line_cap_ = 0;
  // The current series' rendered label pairs
  std::unique_ptr<char[]> labels_buf_;
  size_t labels_cap_ = 0;
  size_t labels_len_ = 0;
  std::vector<std::string_view> label_names_;  // its label names as written
  bool in_family_ = false;
  bool skip_family_ = false;  // left out: its escaped name is an earlier family's
  bool finished_ = false;

  // DirectLine's constant start of a line, for the suffix direct_suffix_view_; see DirectLine
  std::string direct_prefix_;
  std::string_view direct_suffix_view_;  // the caller's view of the suffix, a literal
  bool direct_prefix_valid_ = false;

  FamilyNameClaims claims_;
  KnownLegacyLabels known_legacy_;

  // Buffers reused from call to call
  std::string scratch_;
  std::string state_label_scratch_;
  std::vector<std::string> label_scratch_;
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
  return std::make_unique<TextEncoder>(format, out, options);
}

}  // namespace shmetrics::expose
