// Encoders: turn a stream of metric families into exposition text.
//
// The collector walks a heap and calls an Encoder once per family and once per series, in
// order; the encoder appends text to a caller-owned std::string as it goes, so no snapshot is
// ever built as objects. Three formats: OpenMetrics 1.0.0 text, Prometheus text 0.0.4, and
// Prometheus's delimited protobuf (io.prometheus.client.MetricFamily).
//
// Thread safety: an Encoder is used by one thread at a time. Nothing here touches the heap.
//
// Example:
//   std::string out;
//   auto enc = MakeEncoder(Format::kOpenMetrics, &out);
//   enc->BeginFamily({.name = "http_requests", .type = MetricType::kCounter, .help = "Requests"});
//   Label labels[] = {{"code", "200"}};
//   enc->Counter(labels, 42, /*created=*/1.7e9, nullptr);
//   enc->EndFamily();
//   enc->Finish();
#ifndef SHMETRICS_SRC_EXPOSE_ENCODER_H_
#define SHMETRICS_SRC_EXPOSE_ENCODER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace shmetrics::expose {

enum class Format {
  kOpenMetrics,  // application/openmetrics-text; version=1.0.0
  kPrometheus,   // text/plain; version=0.0.4
  kProtobuf,     // application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
                 // encoding=delimited
};

// How names beyond the legacy character set [a-zA-Z_:][a-zA-Z0-9_:]* reach a scraper (the
// `escaping` parameter of Accept). Names inside the legacy set are written unchanged by every
// scheme, as expfmt writes them (see expose/names.h, EscapeName).
enum class Escaping {
  kAllowUtf8,    // as they are (quoted in text where needed)
  kUnderscores,  // every character outside the legacy set becomes '_'
  kDots,         // '.' becomes "_dot_", '_' becomes "__", any other one outside it "__"
  kValues,       // "U__" then each character outside it as _<hex code point>_, '_' as "__"
};

struct EncoderOptions {
  Escaping escaping = Escaping::kUnderscores;
  // False leaves out the `_created` samples (text) and created timestamps (protobuf).
  bool created = true;
};

enum class MetricType { kCounter, kGauge, kHistogram, kSummary, kInfo, kStateSet, kUnknown };

struct Label {
  std::string_view name;
  std::string_view value;
};
using LabelSpan = std::span<const Label>;

struct Exemplar {
  LabelSpan labels;
  double value = 0;
  std::optional<double> timestamp;  // seconds since the epoch
};

// REQUIRES: name is valid and is the family name as OpenMetrics defines it: without the
// `_total` suffix of counters and without `_info` of info metrics (encoders add them); when unit
// is not empty, name already ends in `_<unit>`.
struct FamilyInfo {
  std::string_view name;
  MetricType type = MetricType::kUnknown;
  std::string_view help;
  std::string_view unit;
};

struct Quantile {
  double quantile;
  double value;
};

struct State {
  std::string_view name;
  bool enabled;
};

// A run of consecutive native-histogram buckets: the first one's index is the previous span's
// end plus offset (the first span's offset is the index itself); length buckets follow.
struct BucketSpan {
  int32_t offset;
  uint32_t length;
};

// A native (sparse exponential) histogram, as Prometheus's protobuf carries it: bucket i of
// `schema` covers (2^((i-1)/2^schema), 2^(i/2^schema)] for positive values, mirrored for
// negative ones. Counts are absolute per bucket (not the protobuf's deltas), one per index that
// the spans cover; count == zero_count + every bucket count.
struct NativeHistogram {
  int32_t schema = 0;
  double zero_threshold = 0;
  uint64_t zero_count = 0;
  uint64_t count = 0;
  double sum = 0;
  std::span<const BucketSpan> positive_spans;
  std::span<const uint64_t> positive_counts;
  std::span<const BucketSpan> negative_spans;
  std::span<const uint64_t> negative_counts;
};

class Encoder {
 public:
  virtual ~Encoder() = default;

  // Every series call sits between BeginFamily and EndFamily, and matches the family's type.
  // Labels are written in the order given; encoders add `le`, `quantile` and the stateset label.
  virtual void BeginFamily(const FamilyInfo& family) = 0;
  virtual void Counter(LabelSpan labels, double value, std::optional<double> created,
                       const Exemplar* exemplar) = 0;
  // Also the series call of kUnknown families.
  virtual void Gauge(LabelSpan labels, double value) = 0;
  // upper_bounds are the finite bucket bounds, ascending; cumulative has one more entry, the
  // +Inf bucket, which is also the count. exemplars is empty or has cumulative.size() entries,
  // each possibly null.
  virtual void Histogram(LabelSpan labels, std::span<const double> upper_bounds,
                         std::span<const uint64_t> cumulative, double sum,
                         std::optional<double> created,
                         std::span<const Exemplar* const> exemplars) = 0;
  // A series of a kHistogram family kept as native buckets. The text formats have no native
  // buckets: by default it is written as a histogram with the +Inf bucket only (count, sum, the
  // last exemplar on +Inf). exemplars are non-null.
  virtual void NativeHistogram(LabelSpan labels, const expose::NativeHistogram& h,
                               std::optional<double> created,
                               std::span<const Exemplar* const> exemplars);
  virtual void Summary(LabelSpan labels, uint64_t count, double sum,
                       std::span<const Quantile> quantiles, std::optional<double> created) = 0;
  virtual void Info(LabelSpan labels) = 0;
  virtual void StateSet(LabelSpan labels, std::span<const State> states) = 0;
  virtual void EndFamily() = 0;
  // Ends the exposition (`# EOF` in OpenMetrics). Nothing may follow.
  virtual void Finish() = 0;
};

// Appends to *out, which must outlive the encoder.
std::unique_ptr<Encoder> MakeEncoder(Format format, std::string* out,
                                     const EncoderOptions& options = {});

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_ENCODER_H_
