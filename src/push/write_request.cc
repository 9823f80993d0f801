#include "push/write_request.h"

#include <snappy.h>

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "expose/encoder.h"
#include "expose/number_format.h"
#include "expose/protobuf_wire.h"

namespace shmetrics::push {
namespace {

using expose::Exemplar;
using expose::FamilyInfo;
using expose::Label;
using expose::LabelSpan;
using expose::MetricType;

// Protobuf tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
constexpr char kTagTimeSeries = 0x0A;  // WriteRequest.timeseries = 1
constexpr char kTagSample = 0x12;      // TimeSeries.samples = 2
constexpr char kTagValue = 0x09;       // Sample.value = 1, double
constexpr char kTagTimestamp = 0x10;   // Sample.timestamp = 2, int64

using expose::wire::FieldSize;
using expose::wire::PutDouble;
using expose::wire::PutVarint;
using expose::wire::VarintSize;

class WriteRequestEncoder final : public expose::Encoder {
 public:
  WriteRequestEncoder(const WriteRequestOptions& options, std::string* out, uint64_t* samples)
      : extra_(options.extra_labels),
        timestamp_ms_(options.timestamp_ms),
        out_(out),
        samples_(samples) {}

  void BeginFamily(const FamilyInfo& family) override {
    assert(!in_family_ && !finished_);
    in_family_ = true;
    type_ = family.type;
    name_.assign(family.name);
  }

  void Counter(LabelSpan labels, double value, std::optional<double> /*created*/,
               const Exemplar* /*exemplar*/) override {
    assert(in_family_ && type_ == MetricType::kCounter);
    Sample("_total", labels, value);
  }

  void Gauge(LabelSpan labels, double value) override {
    assert(in_family_ && (type_ == MetricType::kGauge || type_ == MetricType::kUnknown));
    Sample("", labels, value);
  }

  void Histogram(LabelSpan labels, std::span<const double> upper_bounds,
                 std::span<const uint64_t> cumulative, double sum,
                 std::optional<double> /*created*/,
                 std::span<const Exemplar* const> /*exemplars*/) override {
    assert(in_family_ && type_ == MetricType::kHistogram);
    assert(cumulative.size() == upper_bounds.size() + 1);
    for (size_t i = 0; i < cumulative.size(); ++i) {
      const double le =
          i < upper_bounds.size() ? upper_bounds[i] : std::numeric_limits<double>::infinity();
      Sample("_bucket", labels, static_cast<double>(cumulative[i]), "le", Canonical(le));
    }
    Sample("_count", labels, static_cast<double>(cumulative.empty() ? 0 : cumulative.back()));
    Sample("_sum", labels, sum);
  }

  void Summary(LabelSpan labels, uint64_t count, double sum,
               std::span<const expose::Quantile> quantiles,
               std::optional<double> /*created*/) override {
    assert(in_family_ && type_ == MetricType::kSummary);
    for (const expose::Quantile& q : quantiles) {
      Sample("", labels, q.value, "quantile", Canonical(q.quantile));
    }
    Sample("_count", labels, static_cast<double>(count));
    Sample("_sum", labels, sum);
  }

  void Info(LabelSpan labels) override {
    assert(in_family_ && type_ == MetricType::kInfo);
    Sample("_info", labels, 1);
  }

  void StateSet(LabelSpan labels, std::span<const expose::State> states) override {
    assert(in_family_ && type_ == MetricType::kStateSet);
    // The state label is named after the family, as in the text formats.
    for (const expose::State& s : states) Sample("", labels, s.enabled ? 1 : 0, name_, s.name);
  }

  void EndFamily() override {
    assert(in_family_);
    in_family_ = false;
  }

  void Finish() override {
    assert(!in_family_ && !finished_);
    finished_ = true;
  }

 private:
  // The canonical text of an `le` or `quantile` value, in a buffer that lives until the next call.
  std::string_view Canonical(double v) {
    char* end = expose::WriteCanonicalNumber(v, number_);
    return {number_, static_cast<size_t>(end - number_)};
  }

  // Appends one TimeSeries: __name__ = name_ + suffix, the series labels, the extra label (if
  // extra_name is not empty) and the options' labels the series lacks, sorted; one sample.
  void Sample(std::string_view suffix, LabelSpan labels, double value,
              std::string_view extra_name = {}, std::string_view extra_value = {}) {
    sample_name_.assign(name_);
    sample_name_.append(suffix);
    sorted_.clear();
    sorted_.push_back({"__name__", sample_name_});
    sorted_.insert(sorted_.end(), labels.begin(), labels.end());
    if (!extra_name.empty()) sorted_.push_back({extra_name, extra_value});
    const size_t own = sorted_.size();
    for (const auto& [name, v] : extra_) {
      bool present = false;
      for (size_t i = 0; i < own && !present; ++i) present = sorted_[i].name == name;
      if (!present) sorted_.push_back({name, v});
    }
    std::sort(sorted_.begin(), sorted_.end(),
              [](const Label& a, const Label& b) { return a.name < b.name; });

    const size_t sample_size = 9 + 1 + VarintSize(static_cast<uint64_t>(timestamp_ms_));
    size_t series_size = FieldSize(sample_size);
    for (const Label& l : sorted_) series_size += expose::wire::LabelFieldSize(l.name, l.value);

    const size_t old = out_->size();
    out_->resize(old + FieldSize(series_size));
    char* p = out_->data() + old;
    *p++ = kTagTimeSeries;
    p = PutVarint(p, series_size);
    // TimeSeries.labels = 1, Label {name = 1; value = 2;}
    for (const Label& l : sorted_) p = expose::wire::PutLabelField(p, l.name, l.value);
    *p++ = kTagSample;
    p = PutVarint(p, sample_size);
    *p++ = kTagValue;
    p = PutDouble(p, value);
    *p++ = kTagTimestamp;
    // int64 as a varint: a negative value takes its two's complement, 10 bytes.
    p = PutVarint(p, static_cast<uint64_t>(timestamp_ms_));
    assert(p == out_->data() + out_->size());
    if (samples_ != nullptr) ++*samples_;
  }

  // Constant after construction
  const std::vector<std::pair<std::string, std::string>> extra_;
  const int64_t timestamp_ms_;
  std::string* const out_;
  uint64_t* const samples_;

  // State of the family and sample being written
  std::string name_;
  MetricType type_ = MetricType::kUnknown;
  std::string sample_name_;
  std::vector<Label> sorted_;
  char number_[expose::kMaxNumberChars];
  bool in_family_ = false;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<expose::Encoder> MakeWriteRequestEncoder(const WriteRequestOptions& options,
                                                         std::string* out, uint64_t* samples) {
  return std::make_unique<WriteRequestEncoder>(options, out, samples);
}

std::string SnappyCompress(std::string_view data) {
  std::string out;
  snappy::Compress(data.data(), data.size(), &out);
  return out;
}

}  // namespace shmetrics::push
