// shmetrics::DistributionSummary: Spectator's distribution summary — count, total, total of
// squares and max of amounts (sizes, counts of items), shared by every process of a heap.
//
// Record(amount) adds one amount: a count, the total and the sum of squares (doubles) and the
// max since the last collection by a collector with write access — the same rules as Timer's
// max (see timer.h). Negative, NaN and infinite amounts are rejected (Spectator ignores negative
// amounts).
//
// Exposition (OpenMetrics), for "response_size" with unit "bytes":
//   # TYPE response_size_bytes summary                  _count and _sum
//   # TYPE response_size_bytes_max gauge                the max since the previous scrape
//   # TYPE response_size_bytes_sum_of_squares gauge     the sum of squares
// Both gauges are families of their own; their names are reserved as for timers.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Record never throws, allocates, locks (except with mutex cells) or makes a
// system call.
//
// Example:
//   auto& sizes = registry.AddDistributionSummary("response_size", "Response sizes", {"route"},
//                                                 {.unit = "bytes"});
//   sizes.Labels("/api").Record(512);
#ifndef SHMETRICS_DISTRIBUTION_SUMMARY_H_
#define SHMETRICS_DISTRIBUTION_SUMMARY_H_

#include <cmath>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"

namespace shmetrics {

class DistributionSummary {
 public:
  explicit DistributionSummary(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)) {}

  // Records one amount. Returns false (recording nothing) for a negative, NaN or infinite one.
  // Cells: [count, total, sum of squares, max] (the last three doubles).
  bool Record(double amount) noexcept {
    if (!(amount >= 0) || std::isinf(amount)) return false;
    cells_[internal::SpectatorCells::kCount].Add(1);
    cells_[internal::SpectatorCells::kTotal].AddDouble(amount);
    cells_[internal::SpectatorCells::kSumOfSquares].AddDouble(amount * amount);
    cells_[internal::SpectatorCells::kMax].MaxDouble(amount);
    return true;
  }

  uint64_t Count() const noexcept { return cells_[internal::SpectatorCells::kCount].Load(); }
  double TotalAmount() const noexcept {
    return cells_[internal::SpectatorCells::kTotal].LoadDouble();
  }
  double TotalOfSquares() const noexcept {
    return cells_[internal::SpectatorCells::kSumOfSquares].LoadDouble();
  }
  // The max since the last reset by a collector (see timer.h).
  double Max() const noexcept { return cells_[internal::SpectatorCells::kMax].LoadDouble(); }

 private:
  internal::Cell* cells_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_DISTRIBUTION_SUMMARY_H_
