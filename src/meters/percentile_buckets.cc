// Spectator's percentile computation over its bucket counts (see
// shmetrics/internal/percentile_buckets.h).
#include "shmetrics/internal/percentile_buckets.h"

#include <cmath>
#include <limits>

namespace shmetrics::internal::percentile_buckets {

static_assert(kValues[0] == 1 && kValues[3] == 4 && kValues[14] == 16 && kValues[15] == 21);
static_assert(kValues[kLength - 1] == std::numeric_limits<int64_t>::max());
static_assert(IndexOf(0) == 0 && IndexOf(1) == 1 && IndexOf(4) == 4 && IndexOf(5) == 5);
static_assert(LargestIn(14) == 14 && LargestIn(15) == 20 && LargestIn(41) == 1020);

double Percentile(std::span<const uint64_t> counts, double p) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return std::numeric_limits<double>::quiet_NaN();
  // As PercentileBuckets.percentiles: walk the buckets keeping the running percentage; inside
  // the bucket where it reaches p, interpolate linearly between the previous bucket's value and
  // this one's.
  uint64_t prev = 0;
  double prev_p = 0;
  double prev_b = 0;
  for (size_t i = 0; i < kLength; ++i) {
    const uint64_t next = prev + (i < counts.size() ? counts[i] : 0);
    const double next_p = 100.0 * static_cast<double>(next) / static_cast<double>(total);
    const auto next_b = static_cast<double>(kValues[i]);
    if (next > prev && next_p >= p) {
      const double f = (p - prev_p) / (next_p - prev_p);
      return f * (next_b - prev_b) + prev_b;
    }
    prev = next;
    prev_p = next_p;
    prev_b = next_b;
  }
  const double f = (p - prev_p) / (100.0 - prev_p);
  return f * (static_cast<double>(kValues[kLength - 1]) - prev_b) + prev_b;
}

}  // namespace shmetrics::internal::percentile_buckets
