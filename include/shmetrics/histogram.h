// shmetrics::Histogram: counts observations in buckets, shared by every process of a heap.
//
// Observe(v) is two atomic operations: an add to the bucket that v falls in and an add to the
// sum. The count is not stored: the collector derives it, and the cumulative buckets, from the
// per-bucket counts it reads, so every scrape is consistent (count equals the +Inf bucket,
// buckets are cumulative, nothing goes down) without blocking writers and without anything a
// writer killed half-way could leave for the collector to wait on. The one thing such a writer
// can leave is its value missing from _sum.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Observe never throws, allocates or locks (except with mutex cells).
//
// Example:
//   auto& latency = registry.AddHistogram("http_request_duration_seconds", "Latency", {"route"},
//                                         {.buckets = shmetrics::ExponentialBuckets(0.001, 2,
//                                         12)});
//   {
//     auto scope = latency.Labels("/api").Time();  // observes the scope's duration
//     ...
//   }
#ifndef SHMETRICS_HISTOGRAM_H_
#define SHMETRICS_HISTOGRAM_H_

#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

#include "shmetrics/counter.h"
#include "shmetrics/error.h"
#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"

namespace shmetrics {

// Prometheus's default buckets: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10.
std::vector<double> DefaultBuckets();
// count buckets: start, start+width, ... REQUIRES: 1 <= count <= kMaxBuckets (1024), finite
// start, finite width > 0; else throws Error kInvalidArgument.
std::vector<double> LinearBuckets(double start, double width, int count);
// count buckets: start, start*factor, ... REQUIRES: 1 <= count <= kMaxBuckets (1024), finite
// start > 0, finite factor > 1; else throws Error kInvalidArgument.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

namespace internal {
// A hook for tests: called between the bucket add and the sum add of Observe.
extern void (*g_observe_hook)();
}  // namespace internal

class Histogram {
 public:
  explicit Histogram(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)),
        bounds_(ref.family->bounds().data()),
        num_bounds_(static_cast<uint32_t>(ref.family->bounds().size())),
        ref_(ref) {}

  // Records v. NaN is rejected (returns false). Cells: [sum, bucket 0, ..., bucket +Inf].
  bool Observe(double v) noexcept {
    if (std::isnan(v)) return false;
    cells_[internal::HistogramCells::kFirstBucket + Bucket(v)].Add(1);
    if (internal::g_observe_hook != nullptr) internal::g_observe_hook();
    cells_[internal::HistogramCells::kSum].AddDouble(v);
    return true;
  }
  // Records v with an exemplar on its bucket. May lock.
  bool ObserveWithExemplar(double v, ExemplarLabels labels) noexcept {
    return ObserveWithExemplar(v, ExemplarLabelSpan(labels.begin(), labels.size()));
  }
  bool ObserveWithExemplar(double v, ExemplarLabelSpan labels) noexcept;

  // Observes the seconds between the call and the end of the returned scope (steady clock).
  // Every meter that can time a scope calls it Time().
  class Scope;
  [[nodiscard]] Scope Time() noexcept;
  // Deprecated spellings of Scope and Time(), kept so existing code builds.
  using Timer [[deprecated("use Scope")]] = Scope;
  [[deprecated("use Time()")]] [[nodiscard]] Scope StartTimer() noexcept;

  uint64_t Count() const noexcept;
  double Sum() const noexcept { return cells_[internal::HistogramCells::kSum].LoadDouble(); }

 private:
  uint32_t Bucket(double v) const noexcept {
    // Buckets are few: a linear scan beats a binary search up to a few dozen.
    if (num_bounds_ <= 32) {
      uint32_t i = 0;
      while (i < num_bounds_ && v > bounds_[i]) ++i;
      return i;
    }
    uint32_t lo = 0, hi = num_bounds_;
    while (lo < hi) {
      const uint32_t mid = (lo + hi) / 2;
      if (v > bounds_[mid]) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  internal::Cell* cells_;
  const double* bounds_;
  uint32_t num_bounds_;
  internal::SeriesRef ref_;
};

class Histogram::Scope {
 public:
  explicit Scope(Histogram h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() {
    h_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  Histogram h_;
  std::chrono::steady_clock::time_point start_;
};

inline Histogram::Scope Histogram::Time() noexcept { return Scope(*this); }
inline Histogram::Scope Histogram::StartTimer() noexcept { return Scope(*this); }

}  // namespace shmetrics

#endif  // SHMETRICS_HISTOGRAM_H_
