// shmetrics::PercentileTimer and shmetrics::PercentileDistributionSummary: Spectator's
// percentile meters — a count per bucket of Spectator's fixed log-linear bucket layout, shared by
// every process of a heap, from which any percentile can be computed.
//
// The layout (see internal/percentile_buckets.h) is Spectator's PercentileBuckets: 276 buckets
// over the non-negative int64 range — 1, 2, 3, then steps of a third of each power of 4 — so a
// bucket is at most a third of its value wide (and much finer near each power of 4). A timer
// counts nanoseconds, a distribution summary integer amounts. Options min and max trim the range:
// values are clamped into [min, max] before they are counted (as Spectator's withRange does) and
// only the buckets from IndexOf(min) to IndexOf(max) exist in the heap.
//
// Record is two atomic adds: the bucket's count and the total. Quantile(q) computes a quantile
// from the counts exactly as Spectator's PercentileBuckets.percentile does for the percentile
// 100 * q (linear interpolation inside the bucket where the running count crosses it).
// Quantiles are in [0, 1] throughout the library (0.99, as Summary::Quantile and the Prometheus
// `quantile` label); Percentile(p), which took 0..100, remains as a deprecated spelling.
//
// Exposition (OpenMetrics): a histogram. Bucket i of the kept range is exposed with `le` = the
// largest integer Spectator's index function puts in it (internal::percentile_buckets::LargestIn,
// e.g. 1020 for the bucket of 1000; in seconds for timers, whose family gets the unit "seconds"),
// so the cumulative counts are exact; then +Inf. `_count` is the sum of the counts, `_sum` the
// total of the values as recorded, not clamped (in seconds for timers).
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Record never throws, allocates, locks (except with mutex cells) or makes a
// system call.
//
// Example:
//   auto& latency = registry.AddPercentileTimer("rpc", "RPC latency", {"method"},
//       {.min = std::chrono::milliseconds(1), .max = std::chrono::seconds(10)});
//   auto get = latency.Labels("Get");
//   get.Record(std::chrono::milliseconds(12));
//   double p99 = get.Quantile(0.99);  // seconds
#ifndef SHMETRICS_PERCENTILE_TIMER_H_
#define SHMETRICS_PERCENTILE_TIMER_H_

#include <chrono>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"
#include "shmetrics/internal/percentile_buckets.h"

namespace shmetrics {

namespace internal {
// What the two percentile meters share. Cells: [total, count of bucket first, ..., last].
class PercentileCells {
 public:
  explicit PercentileCells(const SeriesRef& ref)
      : cells_(reinterpret_cast<Cell*>(ref.record + kSeriesCellsOffset)),
        first_(ref.family->percentile_first()),
        last_(ref.family->percentile_last()) {}

  void Add(int64_t v) noexcept {
    size_t i = percentile_buckets::IndexOf(v);
    if (i < first_) i = first_;
    if (i > last_) i = last_;
    cells_[PercentileBucketCells::kFirstBucket + i - first_].Add(1);
    cells_[PercentileBucketCells::kTotal].Add(static_cast<uint64_t>(v));
  }
  uint64_t Count() const noexcept;
  uint64_t Total() const noexcept { return cells_[PercentileBucketCells::kTotal].Load(); }
  // In recorded units (nanoseconds, amounts); p in 0..100, as Spectator's percentiles (the
  // public meters take quantiles and multiply).
  double Percentile(double p) const noexcept;

 private:
  Cell* cells_;
  uint32_t first_;
  uint32_t last_;
};
}  // namespace internal

class PercentileTimer {
 public:
  explicit PercentileTimer(const internal::SeriesRef& ref) : cells_(ref) {}

  // Records one duration. Returns false (recording nothing) when it is negative.
  template <typename Rep, typename Period>
  bool Record(std::chrono::duration<Rep, Period> d) noexcept {
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns < 0) return false;
    cells_.Add(ns);
    return true;
  }

  // Records the time between the call and the end of the returned scope (steady clock). Every
  // meter that can time a scope calls it Time().
  class Scope;
  [[nodiscard]] Scope Time() noexcept;

  uint64_t Count() const noexcept { return cells_.Count(); }
  std::chrono::nanoseconds TotalTime() const noexcept {
    return std::chrono::nanoseconds(static_cast<int64_t>(cells_.Total()));
  }
  // The q-quantile (0 <= q <= 1) in seconds, as Spectator computes the percentile 100 * q; NaN
  // when nothing was recorded. Reads every bucket: meant for occasional use, not the hot path.
  double Quantile(double q) const noexcept { return cells_.Percentile(100 * q) / 1e9; }
  // Deprecated: the p-th percentile (0 <= p <= 100), that is Quantile(p / 100).
  [[deprecated("use Quantile(q), q in [0, 1]")]] double Percentile(double p) const noexcept {
    return cells_.Percentile(p) / 1e9;
  }

 private:
  internal::PercentileCells cells_;
};

class PercentileTimer::Scope {
 public:
  explicit Scope(PercentileTimer t) : t_(t), start_(std::chrono::steady_clock::now()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() { t_.Record(std::chrono::steady_clock::now() - start_); }

 private:
  PercentileTimer t_;
  std::chrono::steady_clock::time_point start_;
};

inline PercentileTimer::Scope PercentileTimer::Time() noexcept { return Scope(*this); }

class PercentileDistributionSummary {
 public:
  explicit PercentileDistributionSummary(const internal::SeriesRef& ref) : cells_(ref) {}

  // Records one integer amount. Returns false (recording nothing) when it is negative.
  bool Record(int64_t amount) noexcept {
    if (amount < 0) return false;
    cells_.Add(amount);
    return true;
  }

  uint64_t Count() const noexcept { return cells_.Count(); }
  uint64_t TotalAmount() const noexcept { return cells_.Total(); }
  // The q-quantile (0 <= q <= 1), as Spectator computes the percentile 100 * q; NaN when
  // nothing was recorded. Reads every bucket.
  double Quantile(double q) const noexcept { return cells_.Percentile(100 * q); }
  // Deprecated: the p-th percentile (0 <= p <= 100), that is Quantile(p / 100).
  [[deprecated("use Quantile(q), q in [0, 1]")]] double Percentile(double p) const noexcept {
    return cells_.Percentile(p);
  }

 private:
  internal::PercentileCells cells_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_PERCENTILE_TIMER_H_
