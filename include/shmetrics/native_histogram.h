// shmetrics::NativeHistogram: Prometheus's native (sparse exponential) histogram, shared by every
// process of a heap.
//
// Bucket i of schema s covers (2^((i-1)/2^s), 2^(i/2^s)] (and mirrored for negative values), so
// every quantile is known within a relative error of 2^(2^-s) - 1 (schema 3: 9%), whatever the
// values, with no bucket layout to choose, and series of any processes or hosts add up. The
// index is Prometheus's, bit for bit (see internal/native_buckets.h).
//
// A series keeps a fixed range of buckets, known at registration (NativeHistogramOptions::
// min_value .. max_value): its size is 8 bytes per bucket of that range, plus 16 (see
// NativeHistogramOptions). Nothing is ever lost from the count or the sum:
//   - |v| <= zero_threshold counts in the zero bucket;
//   - zero_threshold < |v| below the range counts in the lowest bucket of its sign, above it
//     (+-Inf too) in the highest;
//   - without negative buckets (the default) a negative v counts in the zero bucket.
// A scrape that would show more than max_buckets non-empty buckets lowers the schema until it
// does not (merging neighbours is exact), as client_golang does.
//
// Observe(v) is two atomic adds: the bucket that v falls in, and the sum. The count is not
// stored: the collector derives it from the buckets it reads, so in every scrape the count
// equals the zero bucket plus every bucket and nothing goes down, without blocking writers. A
// writer killed between the two adds leaves only its value missing from the sum.
//
// The text formats have no native buckets: there the series is a histogram with the +Inf
// bucket only (count and sum); the protobuf format carries the buckets.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Observe never throws, allocates or locks (except with mutex cells).
//
// Example:
//   auto& latency = registry.AddNativeHistogram("rpc_duration_seconds", "RPC latency",
//                                               {"method"}, {.schema = 3});
//   latency.Labels("Get").Observe(0.0042);
//   {
//     auto scope = latency.Labels("Put").Time();  // observes the scope's duration
//     ...
//   }
#ifndef SHMETRICS_NATIVE_HISTOGRAM_H_
#define SHMETRICS_NATIVE_HISTOGRAM_H_

#include <chrono>
#include <cmath>
#include <cstdint>

#include "shmetrics/counter.h"
#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"
#include "shmetrics/internal/native_buckets.h"

namespace shmetrics {

class NativeHistogram {
 public:
  explicit NativeHistogram(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)),
        zero_threshold_(ref.family->native_zero_threshold()),
        min_index_(ref.family->native_min_index()),
        max_index_(ref.family->native_max_index()),
        shift_(static_cast<uint32_t>(internal::kNativeMaxSchema - ref.family->native_schema())),
        negative_(ref.family->native_negative()),
        ref_(ref) {}

  // Records v. NaN is rejected (returns false).
  bool Observe(double v) noexcept {
    if (std::isnan(v)) return false;
    cells_[CellOf(v)].Add(1);
    cells_[internal::NativeHistogramCells::kSum].AddDouble(v);
    return true;
  }
  // Records v with an exemplar. The series keeps kExemplarSlots exemplars, each for one part of
  // the bucket range (from the most negative bucket to the highest), so a rare slow value's
  // exemplar is not overwritten by the common fast ones. May lock.
  static constexpr uint32_t kExemplarSlots = 4;
  bool ObserveWithExemplar(double v, ExemplarLabels labels) noexcept {
    return ObserveWithExemplar(v, ExemplarLabelSpan(labels.begin(), labels.size()));
  }
  bool ObserveWithExemplar(double v, ExemplarLabelSpan labels) noexcept;

  // Observes the seconds between the call and the end of the returned scope (steady clock).
  class Scope;
  [[nodiscard]] Scope Time() noexcept;

  // The zero bucket plus every bucket, and the sum, as a scrape would read them now.
  uint64_t Count() const noexcept;
  double Sum() const noexcept { return cells_[internal::NativeHistogramCells::kSum].LoadDouble(); }

 private:
  // The cell of v (not NaN): see the rules at the top of this file.
  uint32_t CellOf(double v) const noexcept {
    const double a = std::fabs(v);
    if (a <= zero_threshold_ || (v < 0 && !negative_)) return internal::NativeHistogramCells::kZero;
    int32_t key = internal::NativeKey(a, shift_);
    key = key < min_index_ ? min_index_ : key > max_index_ ? max_index_ : key;
    const auto pos = static_cast<uint32_t>(key - min_index_);
    const uint32_t span = v < 0 ? static_cast<uint32_t>(max_index_ - min_index_ + 1) : 0;
    return internal::NativeHistogramCells::kFirstBucket + pos + span;
  }

  internal::Cell* cells_;
  double zero_threshold_;
  int32_t min_index_;
  int32_t max_index_;
  uint32_t shift_;  // 8 - schema
  bool negative_;
  internal::SeriesRef ref_;
};

class NativeHistogram::Scope {
 public:
  explicit Scope(NativeHistogram h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() {
    h_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  NativeHistogram h_;
  std::chrono::steady_clock::time_point start_;
};

inline NativeHistogram::Scope NativeHistogram::Time() noexcept { return Scope(*this); }

}  // namespace shmetrics

#endif  // SHMETRICS_NATIVE_HISTOGRAM_H_
