// Out-of-line reads of the Spectator meters and of summary quantiles.
#include <array>
#include <vector>

#include "shmetrics/internal/percentile_buckets.h"
#include "shmetrics/percentile_timer.h"
#include "shmetrics/summary.h"

namespace shmetrics {

namespace internal {

uint64_t PercentileCells::Count() const noexcept {
  uint64_t n = 0;
  for (uint32_t i = first_; i <= last_; ++i)
    n += cells_[PercentileBucketCells::kFirstBucket + i - first_].Load();
  return n;
}

double PercentileCells::Percentile(double p) const noexcept {
  std::array<uint64_t, percentile_buckets::kLength> counts{};
  for (uint32_t i = first_; i <= last_; ++i)
    counts[i] = cells_[PercentileBucketCells::kFirstBucket + i - first_].Load();
  return percentile_buckets::Percentile(counts, p);
}

}  // namespace internal

double Summary::Quantile(double q) const {
  if (sketch_ == nullptr) return std::nan("");
  std::vector<uint64_t> counts;
  sketch_->WindowCounts(cells_ + internal::SummaryCells::kSketch,
                        sketch_->Slice(internal::CoarseNowUnixNanos()), &counts);
  return sketch_->Quantile(counts, q);
}

}  // namespace shmetrics
