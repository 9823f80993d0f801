// shmetrics::Summary: count and sum of observations, shared by every process of a heap.
//
// Observe(v) is two atomic adds. (Quantiles are not computed: use a Histogram for
// distributions.)
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Observe never throws, allocates or locks (except with mutex cells).
//
// Example:
//   auto sizes = registry.AddSummary("response_size", "Response sizes", {}, {.unit = "bytes"});
//   sizes.Labels().Observe(512);
#ifndef SHMETRICS_SUMMARY_H_
#define SHMETRICS_SUMMARY_H_

#include <chrono>
#include <cmath>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"

namespace shmetrics {

class Summary {
 public:
  explicit Summary(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)) {}

  // Records v. NaN is rejected (returns false). Cells: [count, sum].
  bool Observe(double v) noexcept {
    if (std::isnan(v)) return false;
    cells_[0].Add(1);
    cells_[1].AddDouble(v);
    return true;
  }

  class Timer;
  [[nodiscard]] Timer StartTimer() noexcept;

  uint64_t Count() const noexcept { return cells_[0].Load(); }
  double Sum() const noexcept { return cells_[1].LoadDouble(); }

 private:
  internal::Cell* cells_;
};

class Summary::Timer {
 public:
  explicit Timer(Summary s) : s_(s), start_(std::chrono::steady_clock::now()) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() {
    s_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  Summary s_;
  std::chrono::steady_clock::time_point start_;
};

inline Summary::Timer Summary::StartTimer() noexcept { return Timer(*this); }

}  // namespace shmetrics

#endif  // SHMETRICS_SUMMARY_H_
