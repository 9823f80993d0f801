#include "expose/protobuf_encoder.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "expose/encoder.h"
#include "expose/names.h"
#include "expose/protobuf_wire.h"

namespace shmetrics::expose {
namespace {

using wire::AppendDoubleField;
using wire::AppendStringField;
using wire::AppendVarint;
using wire::AppendVarintField;
using wire::CloseMessage;
using wire::OpenMessage;
using wire::PutVarint;
using wire::VarintSize;
using wire::ZigZag;

// Field numbers of io.prometheus.client (src/expose/metrics.proto).
namespace family_field {
constexpr uint32_t kName = 1, kHelp = 2, kType = 3, kMetric = 4, kUnit = 5;
}
namespace metric_field {
constexpr uint32_t kLabel = 1, kGauge = 2, kCounter = 3, kSummary = 4, kUntyped = 5, kHistogram = 7;
}
namespace counter_field {
constexpr uint32_t kValue = 1, kExemplar = 2, kCreated = 3;
}
namespace summary_field {
constexpr uint32_t kCount = 1, kSum = 2, kQuantile = 3, kCreated = 4;
}
namespace quantile_field {
constexpr uint32_t kQuantile = 1, kValue = 2;
}
namespace histogram_field {
constexpr uint32_t kCount = 1, kSum = 2, kBucket = 3, kSchema = 5, kZeroThreshold = 6,
                   kZeroCount = 7, kNegativeSpan = 9, kNegativeDelta = 10, kPositiveSpan = 12,
                   kPositiveDelta = 13, kCreated = 15, kExemplars = 16;
}
namespace bucket_field {
constexpr uint32_t kCumulativeCount = 1, kUpperBound = 2, kExemplar = 3;
}
namespace span_field {
constexpr uint32_t kOffset = 1, kLength = 2;
}
namespace exemplar_field {
constexpr uint32_t kLabel = 1, kValue = 2, kTimestamp = 3;
}
namespace timestamp_field {
constexpr uint32_t kSeconds = 1, kNanos = 2;
}
constexpr uint32_t kValueField = 1;  // Gauge.value, Untyped.value

// io.prometheus.client.MetricType
enum class WireType : uint64_t {
  kCounter = 0,
  kGauge = 1,
  kSummary = 2,
  kUntyped = 3,
  kHistogram = 4
};

WireType ToWireType(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return WireType::kCounter;
    case MetricType::kHistogram:
      return WireType::kHistogram;
    case MetricType::kSummary:
      return WireType::kSummary;
    case MetricType::kGauge:
    case MetricType::kInfo:
    case MetricType::kStateSet:
      return WireType::kGauge;
    case MetricType::kUnknown:
      break;
  }
  return WireType::kUntyped;
}

// google.protobuf.Timestamp's range: years 1 to 9999.
constexpr double kMinTimestampSeconds = -62135596800.0;
constexpr double kMaxTimestampSeconds = 253402300799.0;

// The longest Timestamp message body: two tags and two ten-byte varints. It fits a one-byte length.
constexpr size_t kMaxTimestampBody = 2 + 2 * wire::kMaxVarint;

// A google.protobuf.Timestamp's fields and the size of its message body.
struct Timestamp {
  bool valid = false;
  int64_t seconds = 0;
  int64_t nanos = 0;
  size_t size = 0;
};

// From seconds since the epoch. A time outside the type's range (or not a number) is not valid:
// it is left out rather than written as something a decoder rejects.
Timestamp ToTimestamp(double seconds) {
  Timestamp t;
  if (!(seconds >= kMinTimestampSeconds && seconds <= kMaxTimestampSeconds)) return t;
  // Truncation and a rounding add rather than floor and llround, which are calls into libm: this
  // runs once per counter.
  t.seconds = static_cast<int64_t>(seconds);
  if (static_cast<double>(t.seconds) > seconds) --t.seconds;  // toward -inf for negative times
  t.nanos = static_cast<int64_t>((seconds - static_cast<double>(t.seconds)) * 1e9 + 0.5);
  if (t.nanos >= 1'000'000'000) {
    ++t.seconds;
    t.nanos -= 1'000'000'000;
  }
  t.valid = true;
  // int64 is a plain varint: a negative value takes all ten bytes. Zero fields are left out.
  if (t.seconds != 0) t.size += 1 + VarintSize(static_cast<uint64_t>(t.seconds));
  if (t.nanos != 0) t.size += 1 + VarintSize(static_cast<uint64_t>(t.nanos));
  return t;
}

char* PutTimestampBody(char* p, const Timestamp& t) {
  if (t.seconds != 0) {
    *p++ = static_cast<char>(wire::Tag(timestamp_field::kSeconds, wire::kVarint));
    p = PutVarint(p, static_cast<uint64_t>(t.seconds));
  }
  if (t.nanos != 0) {
    *p++ = static_cast<char>(wire::Tag(timestamp_field::kNanos, wire::kVarint));
    p = PutVarint(p, static_cast<uint64_t>(t.nanos));
  }
  return p;
}

size_t LabelsSize(LabelSpan labels) {
  size_t total = 0;
  for (const Label& l : labels) total += wire::LabelFieldSize(l.name, l.value);
  return total;
}

char* PutLabels(char* p, LabelSpan labels) {
  static_assert(metric_field::kLabel == 1 && exemplar_field::kLabel == 1);
  for (const Label& l : labels) p = wire::PutLabelField(p, l.name, l.value);
  return p;
}

class ProtobufEncoder final : public Encoder {
 public:
  ProtobufEncoder(std::string* out, const EncoderOptions& options)
      : out_(out),
        created_(options.created),
        escaping_(options.escaping),
        claims_(options.escaping) {}

  void BeginFamily(const FamilyInfo& family) override {
    assert(!in_family_ && !finished_);
    in_family_ = true;
    type_ = family.type;
    name_.assign(EscapeName(family.name, escaping_, &scratch_));
    known_legacy_.Forget();
    // As in the text formats: a family whose escaped name an earlier one took is left out.
    skip_family_ = !claims_.Claim(family.name, name_, type_);
    if (skip_family_) return;
    family_start_ = OpenMessage(out_, 0);
    // Name, help and unit are written with their own length prefixes; the name gets the suffix
    // that the text formats put on every sample.
    std::string_view suffix;
    if (family.type == MetricType::kCounter) suffix = "_total";
    if (family.type == MetricType::kInfo) suffix = "_info";
    AppendVarint(out_, wire::Tag(family_field::kName, wire::kLengthDelimited));
    AppendVarint(out_, name_.size() + suffix.size());
    out_->append(name_);
    out_->append(suffix);
    if (!family.help.empty()) AppendStringField(out_, family_field::kHelp, family.help);
    AppendVarintField(out_, family_field::kType, static_cast<uint64_t>(ToWireType(family.type)));
    if (!family.unit.empty() && family.type != MetricType::kInfo &&
        family.type != MetricType::kStateSet) {
      AppendStringField(out_, family_field::kUnit, family.unit);
    }
  }

  void Counter(LabelSpan labels, double value, std::optional<double> created,
               const Exemplar* exemplar) override {
    assert(in_family_ && type_ == MetricType::kCounter);
    if (!UseLabels(&labels, {})) return;
    if (exemplar == nullptr) {
      // The bulk of most scrapes: sized up front and written with one resize.
      const Timestamp ts = created_ && created.has_value() ? ToTimestamp(*created) : Timestamp{};
      const size_t counter_size = 9 + (ts.valid ? 2 + ts.size : 0);  // below 128: 1-byte length
      const size_t metric_size = LabelsSize(labels) + 2 + counter_size;
      const size_t old = out_->size();
      out_->resize(old + 1 + VarintSize(metric_size) + metric_size);
      char* p = out_->data() + old;
      *p++ = static_cast<char>(wire::Tag(family_field::kMetric, wire::kLengthDelimited));
      p = PutVarint(p, metric_size);
      p = PutLabels(p, labels);
      *p++ = static_cast<char>(wire::Tag(metric_field::kCounter, wire::kLengthDelimited));
      *p++ = static_cast<char>(counter_size);
      *p++ = static_cast<char>(wire::Tag(counter_field::kValue, wire::kFixed64));
      p = wire::PutDouble(p, value);
      if (ts.valid) {
        *p++ = static_cast<char>(wire::Tag(counter_field::kCreated, wire::kLengthDelimited));
        *p++ = static_cast<char>(ts.size);
        p = PutTimestampBody(p, ts);
      }
      assert(p == out_->data() + out_->size());
      return;
    }
    const size_t metric = BeginMetric(labels);
    const size_t counter = OpenMessage(out_, metric_field::kCounter);
    AppendDoubleField(out_, counter_field::kValue, value);
    if (exemplar != nullptr) AppendExemplar(counter_field::kExemplar, *exemplar);
    if (created_ && created.has_value()) AppendTimestamp(counter_field::kCreated, *created);
    CloseMessage(out_, counter);
    CloseMessage(out_, metric);
  }

  void Gauge(LabelSpan labels, double value) override {
    assert(in_family_ && (type_ == MetricType::kGauge || type_ == MetricType::kUnknown));
    if (!UseLabels(&labels, {})) return;
    const size_t metric = BeginMetric(labels);
    AppendValueMessage(type_ == MetricType::kGauge ? metric_field::kGauge : metric_field::kUntyped,
                       value);
    CloseMessage(out_, metric);
  }

  void Histogram(LabelSpan labels, std::span<const double> upper_bounds,
                 std::span<const uint64_t> cumulative, double sum, std::optional<double> created,
                 std::span<const Exemplar* const> exemplars) override {
    assert(in_family_ && type_ == MetricType::kHistogram);
    if (!UseLabels(&labels, {})) return;
    assert(cumulative.size() == upper_bounds.size() + 1 &&
           (exemplars.empty() || exemplars.size() == cumulative.size()));
    const size_t metric = BeginMetric(labels);
    const size_t h = OpenMessage(out_, metric_field::kHistogram);
    const uint64_t count = cumulative.empty() ? 0 : cumulative.back();
    AppendVarintField(out_, histogram_field::kCount, count);
    AppendDoubleField(out_, histogram_field::kSum, sum);
    for (size_t i = 0; i < upper_bounds.size(); ++i) {
      AppendBucket(upper_bounds[i], cumulative[i], exemplars.empty() ? nullptr : exemplars[i]);
    }
    // The +Inf bucket is sample_count, so it is written only to carry its exemplar, as
    // client_golang does.
    if (!exemplars.empty() && exemplars.back() != nullptr) {
      AppendBucket(std::numeric_limits<double>::infinity(), count, exemplars.back());
    }
    if (created_ && created.has_value()) AppendTimestamp(histogram_field::kCreated, *created);
    CloseMessage(out_, h);
    CloseMessage(out_, metric);
  }

  void NativeHistogram(LabelSpan labels, const expose::NativeHistogram& nh,
                       std::optional<double> created,
                       std::span<const Exemplar* const> exemplars) override {
    assert(in_family_ && type_ == MetricType::kHistogram);
    if (!UseLabels(&labels, {})) return;
    const size_t metric = BeginMetric(labels);
    const size_t h = OpenMessage(out_, metric_field::kHistogram);
    AppendVarintField(out_, histogram_field::kCount, nh.count);
    AppendDoubleField(out_, histogram_field::kSum, nh.sum);
    AppendVarintField(out_, histogram_field::kSchema, ZigZag(nh.schema));
    AppendDoubleField(out_, histogram_field::kZeroThreshold, nh.zero_threshold);
    AppendVarintField(out_, histogram_field::kZeroCount, nh.zero_count);
    AppendBuckets(histogram_field::kNegativeSpan, histogram_field::kNegativeDelta,
                  nh.negative_spans, nh.negative_counts);
    AppendBuckets(histogram_field::kPositiveSpan, histogram_field::kPositiveDelta,
                  nh.positive_spans, nh.positive_counts);
    // Without any span, zero threshold or zero count, a scraper would take the series for a
    // classic histogram with no buckets: an empty span says it is native, as client_golang does.
    if (nh.positive_spans.empty() && nh.negative_spans.empty() && nh.zero_count == 0) {
      AppendSpan(histogram_field::kPositiveSpan, {.offset = 0, .length = 0});
    }
    if (created_ && created.has_value()) AppendTimestamp(histogram_field::kCreated, *created);
    for (const Exemplar* e : exemplars) {
      if (e != nullptr) AppendExemplar(histogram_field::kExemplars, *e);
    }
    CloseMessage(out_, h);
    CloseMessage(out_, metric);
  }

  void Summary(LabelSpan labels, uint64_t count, double sum, std::span<const Quantile> quantiles,
               std::optional<double> created) override {
    assert(in_family_ && type_ == MetricType::kSummary);
    if (!UseLabels(&labels, {})) return;
    const size_t metric = BeginMetric(labels);
    const size_t s = OpenMessage(out_, metric_field::kSummary);
    AppendVarintField(out_, summary_field::kCount, count);
    AppendDoubleField(out_, summary_field::kSum, sum);
    for (const Quantile& q : quantiles) {
      const size_t m = OpenMessage(out_, summary_field::kQuantile);
      AppendDoubleField(out_, quantile_field::kQuantile, q.quantile);
      AppendDoubleField(out_, quantile_field::kValue, q.value);
      CloseMessage(out_, m);
    }
    if (created_ && created.has_value()) AppendTimestamp(summary_field::kCreated, *created);
    CloseMessage(out_, s);
    CloseMessage(out_, metric);
  }

  void Info(LabelSpan labels) override {
    assert(in_family_ && type_ == MetricType::kInfo);
    if (!UseLabels(&labels, {})) return;
    const size_t metric = BeginMetric(labels);
    AppendValueMessage(metric_field::kGauge, 1);
    CloseMessage(out_, metric);
  }

  void StateSet(LabelSpan labels, std::span<const State> states) override {
    assert(in_family_ && type_ == MetricType::kStateSet);
    if (!UseLabels(&labels, name_)) return;
    for (const State& s : states) {
      const size_t metric = BeginMetric(labels);
      // The state label is named after the family, as in the text formats.
      const Label state[] = {{name_, s.name}};
      AppendLabels(state);
      AppendValueMessage(metric_field::kGauge, s.enabled ? 1 : 0);
      CloseMessage(out_, metric);
    }
  }

  void EndFamily() override {
    assert(in_family_);
    in_family_ = false;
    if (!skip_family_) CloseMessage(out_, family_start_);
  }

  void Finish() override {
    assert(!in_family_ && !finished_);
    finished_ = true;
  }

 private:
  // Points *labels at the series' labels as this exposition names them (escaped_labels_ when a
  // name had to be escaped). False when the series is left out: its family is, or escaping
  // gives two of its labels (or one and `added`, the state label) one name, as in text.
  bool UseLabels(LabelSpan* labels, std::string_view added) {
    if (skip_family_) return false;
    if (escaping_ == Escaping::kAllowUtf8) return true;
    const size_t n = labels->size();
    if (known_legacy_.Holds(*labels)) return true;
    size_t first = 0;
    while (first < n && IsLegacyLabelName((*labels)[first].name)) ++first;
    if (first == n) {
      known_legacy_.Remember(*labels);
      return true;
    }
    escaped_labels_.assign(labels->begin(), labels->end());
    label_names_.resize(labels->size());
    if (label_scratch_.size() < labels->size()) label_scratch_.resize(labels->size());
    for (size_t i = 0; i < labels->size(); ++i) {
      escaped_labels_[i].name =
          EscapeName((*labels)[i].name, escaping_, &label_scratch_[i], NameKind::kLabel);
      label_names_[i] = escaped_labels_[i].name;
    }
    if (HasDuplicateLabel(label_names_, added)) {
      NoteOnce(std::string("a series of metric \"") + name_ + "\" is left out of expositions " +
               "with escaping=" + std::string(SchemeName(escaping_)) +
               ": two of its label names escape to the same name");
      return false;
    }
    *labels = escaped_labels_;
    return true;
  }

  // Opens a Metric of the family and writes its labels; CloseMessage(out_, returned) ends it.
  size_t BeginMetric(LabelSpan labels) {
    const size_t metric = OpenMessage(out_, family_field::kMetric);
    AppendLabels(labels);
    return metric;
  }

  // LabelPair messages (field 1 of both Metric and Exemplar), written with one resize.
  void AppendLabels(LabelSpan labels) {
    const size_t old = out_->size();
    out_->resize(old + LabelsSize(labels));
    [[maybe_unused]] char* end = PutLabels(out_->data() + old, labels);
    assert(end == out_->data() + out_->size());
  }

  // A Gauge or Untyped message: just the value.
  void AppendValueMessage(uint32_t field, double value) {
    const size_t m = OpenMessage(out_, field);
    AppendDoubleField(out_, kValueField, value);
    CloseMessage(out_, m);
  }

  void AppendTimestamp(uint32_t field, double seconds) {
    const Timestamp ts = ToTimestamp(seconds);
    if (!ts.valid) return;
    char buf[2 + kMaxTimestampBody];
    char* p = buf;
    *p++ = static_cast<char>(wire::Tag(field, wire::kLengthDelimited));
    *p++ = static_cast<char>(ts.size);
    out_->append(buf, PutTimestampBody(p, ts) - buf);
  }

  void AppendExemplar(uint32_t field, const Exemplar& e) {
    const size_t m = OpenMessage(out_, field);
    AppendLabels(e.labels);
    AppendDoubleField(out_, exemplar_field::kValue, e.value);
    if (e.timestamp.has_value()) AppendTimestamp(exemplar_field::kTimestamp, *e.timestamp);
    CloseMessage(out_, m);
  }

  void AppendBucket(double upper_bound, uint64_t cumulative, const Exemplar* exemplar) {
    const size_t m = OpenMessage(out_, histogram_field::kBucket);
    AppendVarintField(out_, bucket_field::kCumulativeCount, cumulative);
    AppendDoubleField(out_, bucket_field::kUpperBound, upper_bound);
    if (exemplar != nullptr) AppendExemplar(bucket_field::kExemplar, *exemplar);
    CloseMessage(out_, m);
  }

  void AppendSpan(uint32_t field, const BucketSpan& span) {
    const size_t m = OpenMessage(out_, field);
    AppendVarintField(out_, span_field::kOffset, ZigZag(span.offset));
    AppendVarintField(out_, span_field::kLength, span.length);
    CloseMessage(out_, m);
  }

  // The spans, then the counts as packed deltas: the first bucket's count, then each one's
  // difference from the bucket before it (across spans too).
  void AppendBuckets(uint32_t span_field, uint32_t delta_field, std::span<const BucketSpan> spans,
                     std::span<const uint64_t> counts) {
    size_t covered = 0;
    for (const BucketSpan& s : spans) {
      AppendSpan(span_field, s);
      covered += s.length;
    }
    assert(covered == counts.size());
    (void)covered;
    if (counts.empty()) return;
    const size_t m = OpenMessage(out_, delta_field);
    uint64_t previous = 0;
    for (const uint64_t c : counts) {
      // Two's complement wrap-around gives the signed difference of two counts below 2^63.
      AppendVarint(out_, ZigZag(static_cast<int64_t>(c - previous)));
      previous = c;
    }
    CloseMessage(out_, m);
  }

  // Constant after construction
  std::string* const out_;
  const bool created_;
  const Escaping escaping_;

  FamilyNameClaims claims_;
  std::string scratch_;
  std::vector<Label> escaped_labels_;
  std::vector<std::string_view> label_names_;
  std::vector<std::string> label_scratch_;
  KnownLegacyLabels known_legacy_;
  bool skip_family_ = false;

  // State of the family being written
  std::string name_;
  MetricType type_ = MetricType::kUnknown;
  size_t family_start_ = 0;
  bool in_family_ = false;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Encoder> MakeProtobufEncoder(std::string* out, const EncoderOptions& options) {
  return std::make_unique<ProtobufEncoder>(out, options);
}

}  // namespace shmetrics::expose
