// shmetrics::Summary: count and sum of observations, and optionally quantiles over a sliding
// time window, shared by every process of a heap.
//
// Without quantiles (the default), Observe(v) is two atomic adds: count and sum.
//
// With quantiles (SummaryOptions::quantiles, e.g. {0.5, 0.9, 0.99}), every process also counts
// the observation in a shared sketch (see internal/quantile_sketch.h): log-linear buckets of
// relative width 2 * relative_accuracy, in a ring of age_buckets time slices covering max_age
// (the options Prometheus's Go and Java clients use; defaults 10 minutes and 5). The collector
// computes each quantile at scrape time from the counts of the window, so the quantiles cover
// the observations of every process, and Observe takes no lock: one clock read (vDSO, coarse),
// one compare-exchange on the bucket's cell, plus the count and sum adds.
//
// Accuracy. A quantile q is the observation of rank max(1, ceil(q * n)) among the n of the
// window, in ascending order (the "nearest rank" definition); the reported value is within
// relative error relative_accuracy (default 1%) of that observation when it lies in
// [min_value, max_value] (defaults 1e-6 and 1e6). Observations below min_value — zero, negative
// or tiny — rank first and are reported as 0; from 2^(floor(log2(max_value)) + 1) up they rank
// last and are reported as that power of two. NaN when the window is empty. Count and sum are
// all-time, as in Prometheus: only quantiles are windowed, over between max_age * (1 -
// 1/age_buckets) and max_age of the most recent observations.
//
// Memory: quantiles cost age_buckets * buckets cells per series, where buckets =
// (octaves between min_value and max_value, rounded out) * ceil((1/relative_accuracy - 1) / 2)
// + 2: with the defaults 40 octaves * 50 + 2 = 2002 buckets, so 10010 cells, 80 KiB per series.
// Narrow the range or loosen the accuracy for many series.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Observe never throws, allocates, locks (except with mutex cells) or makes a
// system call.
//
// Example:
//   auto sizes = registry.AddSummary("response_size", "Response sizes", {}, {.unit = "bytes"});
//   sizes.Labels().Observe(512);
//   auto& latency = registry.AddSummary("rpc_latency", "RPC latency", {"method"},
//       {.unit = "seconds", .quantiles = {0.5, 0.9, 0.99}});
//   latency.Labels("Get").Observe(0.012);
#ifndef SHMETRICS_SUMMARY_H_
#define SHMETRICS_SUMMARY_H_

#include <chrono>
#include <cmath>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"
#include "shmetrics/internal/quantile_sketch.h"

namespace shmetrics {

class Summary {
 public:
  explicit Summary(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)),
        sketch_(ref.family->sketch().enabled() ? &ref.family->sketch() : nullptr) {}

  // Records v. NaN is rejected (returns false).
  // Cells: [count, sum], then with quantiles the sketch's slices * buckets cells.
  bool Observe(double v) noexcept {
    if (std::isnan(v)) return false;
    if (sketch_ != nullptr) {
      sketch_->Add(cells_ + internal::SummaryCells::kSketch, v,
                   sketch_->Slice(internal::CoarseNowUnixNanos()));
    }
    cells_[internal::SummaryCells::kCount].Add(1);
    cells_[internal::SummaryCells::kSum].AddDouble(v);
    return true;
  }

  // Observes the seconds between the call and the end of the returned scope (steady clock).
  // Every meter that can time a scope calls it Time().
  class Scope;
  [[nodiscard]] Scope Time() noexcept;
  // Deprecated spellings of Scope and Time(), kept so existing code builds.
  using Timer [[deprecated("use Scope")]] = Scope;
  [[deprecated("use Time()")]] [[nodiscard]] Scope StartTimer() noexcept;

  uint64_t Count() const noexcept { return cells_[internal::SummaryCells::kCount].Load(); }
  double Sum() const noexcept { return cells_[internal::SummaryCells::kSum].LoadDouble(); }
  // The q-quantile of the current window, as the collector computes it (see above); NaN without
  // quantiles, when the window is empty or q is not in [0, 1]. Quantiles are in [0, 1]
  // throughout the library (0.99, as in the `quantile` label), percentiles nowhere. Reads every
  // cell of the sketch: not for the hot path.
  double Quantile(double q) const;

 private:
  internal::Cell* cells_;
  const internal::SketchLayout* sketch_;
};

class Summary::Scope {
 public:
  explicit Scope(Summary s) : s_(s), start_(std::chrono::steady_clock::now()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() {
    s_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  Summary s_;
  std::chrono::steady_clock::time_point start_;
};

inline Summary::Scope Summary::Time() noexcept { return Scope(*this); }
inline Summary::Scope Summary::StartTimer() noexcept { return Scope(*this); }

}  // namespace shmetrics

#endif  // SHMETRICS_SUMMARY_H_
