// Encoders: turn a stream of metric families into exposition text.
//
// The collector walks a heap and calls an Encoder once per family and once per series, in
// order; the encoder appends text to a caller-owned std::string as it goes, so no snapshot is
// ever built as objects. Two formats: OpenMetrics 1.0.0 text and Prometheus text 0.0.4.
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
  virtual void Summary(LabelSpan labels, uint64_t count, double sum,
                       std::span<const Quantile> quantiles, std::optional<double> created) = 0;
  virtual void Info(LabelSpan labels) = 0;
  virtual void StateSet(LabelSpan labels, std::span<const State> states) = 0;
  virtual void EndFamily() = 0;
  // Ends the exposition (`# EOF` in OpenMetrics). Nothing may follow.
  virtual void Finish() = 0;
};

// Appends to *out, which must outlive the encoder.
std::unique_ptr<Encoder> MakeEncoder(Format format, std::string* out);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_ENCODER_H_
