// The read side of the quantile sketch (see shmetrics/internal/quantile_sketch.h).
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "shmetrics/internal/quantile_sketch.h"

namespace shmetrics::internal {

double SketchLayout::Representative(uint32_t i) const noexcept {
  if (i == 0) return 0;
  if (i + 1 >= num_buckets) return std::ldexp(1.0, max_exp + 1);
  const uint32_t octave = (i - 1) / per_octave;
  const uint32_t k = (i - 1) % per_octave;
  const double m = per_octave;
  const double a = std::ldexp(1 + k / m, min_exp + static_cast<int>(octave));
  const double b = std::ldexp(1 + (k + 1) / m, min_exp + static_cast<int>(octave));
  return 2 * a * b / (a + b);
}

void SketchLayout::WindowCounts(const Cell* cells, uint64_t now_slice,
                                std::vector<uint64_t>* counts) const {
  counts->assign(num_buckets, 0);
  const auto now = static_cast<uint32_t>(now_slice);
  const auto window = static_cast<int64_t>(slices);
  for (uint32_t s = 0; s < slices; ++s) {
    const Cell* row = cells + uint64_t{s} * num_buckets;
    for (uint32_t i = 0; i < num_buckets; ++i) {
      const uint64_t w = row[i].Load();
      const uint64_t n = w & 0xffffffffu;
      if (n == 0) continue;
      const int64_t age = static_cast<int32_t>(now - static_cast<uint32_t>(w >> 32));
      if (age < window && age > -window) (*counts)[i] += n;
    }
  }
}

double SketchLayout::Quantile(std::span<const uint64_t> counts, double q) const noexcept {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0 || !(q >= 0 && q <= 1)) return std::numeric_limits<double>::quiet_NaN();
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  if (rank < 1) rank = 1;
  if (rank > total) rank = total;
  uint64_t running = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    running += counts[i];
    if (running >= rank) return Representative(static_cast<uint32_t>(i));
  }
  return Representative(static_cast<uint32_t>(counts.size() - 1));
}

}  // namespace shmetrics::internal
