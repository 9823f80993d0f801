// The shared quantile sketch behind Summary quantiles: log-linear buckets (in the spirit of
// DDSketch) in a ring of time slices, every cell tagged with the slice it counts.
//
// Buckets. A positive double v = 2^e * (1 + f), f in [0, 1), falls in bucket
//   1 + (e - min_exp) * per_octave + floor(f * per_octave)
// for min_exp <= e <= max_exp; bucket 0 holds every v below 2^min_exp (zero, negatives, tiny
// values) and bucket num_buckets - 1 every v of 2^(max_exp + 1) or more. A bucket [a, b) is
// reported as 2ab / (a + b), whose relative distance to anything in [a, b) is at most
// (b - a) / (a + b) <= 1 / (2 * per_octave + 1): with per_octave = ceil((1 / alpha - 1) / 2) every
// in-range quantile is within relative error alpha of the true one. The index comes from the
// IEEE-754 bits (one multiply, no logarithm), which is what keeps Observe cheap.
//
// Time slices. The window (max_age) is cut into `slices` slices of max_age / slices; slice number
// E = floor(unix_ns / slice_ns) writes ring slot E mod slices. Each cell is one 64-bit word:
//   bits 63..32  tag: the low 32 bits of the slice number the count belongs to
//   bits 31..0   count of observations in that slice (saturates at 2^32 - 1)
// A writer in slice E updates the word with one compare-exchange: when the tag is E or up to
// kAhead slices newer, count + 1, keeping the tag; otherwise (an older slice, or empty) (E, 1),
// which retires the old slice's count. A reader at slice N counts the words whose tag t
// satisfies -slices < (int32)(N - t) < slices: the current slice and the slices - 1 before it,
// that is the observations of the last max_age * (1 - 1/slices) to max_age.
// Invariant: a word's tag never moves back by less than kAhead slices.
//
// Races. There is no separate reset step and every update is one compare-exchange, so a process
// killed at any instruction leaves each word old or new, and two writers can never wipe each
// other's counts: a writer racing with the retirement of a slice either retires it itself or
// sees the new tag and adds to it. A writer delayed between its clock read and its update past the
// end of its slice counts its observation in the newer slice it finds (misattributed by at most
// its own delay); one delayed by kAhead slices or more (or a wall clock stepped back that far)
// would retire the newer slice's count of that one bucket — the one way to lose observations,
// besides saturation at 2^32 - 1 per bucket per slice. Count and sum, outside the sketch, are
// never lost. Readers copy word by word without stopping writers: a scrape may see a concurrent
// observation in the sketch and not yet in the count, never a torn word.
//
// Visible because Summary::Observe inlines it; not API.
#ifndef SHMETRICS_INTERNAL_QUANTILE_SKETCH_H_
#define SHMETRICS_INTERNAL_QUANTILE_SKETCH_H_

#include <bit>
#include <cstdint>
#include <span>
#include <vector>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/clock.h"

namespace shmetrics::internal {

// Derived from a summary's options; constant after registration.
struct SketchLayout {
  // How far (in slices) a cell's tag may be ahead of a writer's slice and still take its count:
  // a writer that read the clock, then lost the processor for less than kAhead slices, adds to
  // the newer slice instead of wiping it. Tags are compared modulo 2^32, so a cell left alone
  // for between 2^32 - kAhead and 2^32 slices (13 years of 100 ms slices) would keep its stale
  // tag — and not be counted by readers — until the clock passes it.
  static constexpr uint32_t kAhead = 1u << 16;

  uint32_t slices = 0;  // 0: no quantiles
  uint32_t per_octave = 0;
  int32_t min_exp = 0;
  int32_t max_exp = 0;
  uint32_t num_buckets = 0;  // (max_exp - min_exp + 1) * per_octave + 2
  uint64_t slice_ns = 0;
  double inv_slice_ns = 0;  // 1 / slice_ns

  bool enabled() const noexcept { return slices != 0; }
  uint64_t cells() const noexcept { return uint64_t{slices} * num_buckets; }

  uint32_t Bucket(double v) const noexcept {
    if (!(v > 0)) return 0;
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    const int32_t e = static_cast<int32_t>(bits >> 52) - 1023;
    if (e < min_exp) return 0;
    if (e > max_exp) return num_buckets - 1;
    const double f =
        static_cast<double>(bits & ((uint64_t{1} << 52) - 1)) * (1.0 / 4503599627370496.0);
    return 1 + static_cast<uint32_t>(e - min_exp) * per_octave +
           static_cast<uint32_t>(f * per_octave);
  }

  uint64_t Slice(uint64_t unix_ns) const noexcept {
    return static_cast<uint64_t>(static_cast<double>(unix_ns) * inv_slice_ns);
  }

  // Counts one observation of v made at slice number `slice`, into cells (slices * num_buckets).
  void Add(Cell* cells, double v, uint64_t slice) const noexcept {
    const auto tag = static_cast<uint32_t>(slice);
    Cell& c = cells[(slice % slices) * num_buckets + Bucket(v)];
    c.Transform([tag](uint64_t w) {
      // The cell's slice is the writer's or up to kAhead slices later: count there.
      if (static_cast<uint32_t>(static_cast<uint32_t>(w >> 32) - tag) < kAhead) {
        return (w & 0xffffffffu) == 0xffffffffu ? w : w + 1;
      }
      return uint64_t{tag} << 32 | 1;
    });
  }

  // The value a quantile falling in bucket i is reported as.
  double Representative(uint32_t i) const noexcept;
  // Window counts per bucket at slice `now_slice`, from a copy of the cells.
  void WindowCounts(const Cell* cells, uint64_t now_slice, std::vector<uint64_t>* counts) const;
  // The q-quantile (0 <= q <= 1) of the window: the representative of the bucket holding the
  // observation of rank max(1, ceil(q * n)) (1-based, in ascending order) among the n in the
  // window. NaN when the window is empty or q is not in [0, 1].
  double Quantile(std::span<const uint64_t> counts, double q) const noexcept;
};

}  // namespace shmetrics::internal

#endif  // SHMETRICS_INTERNAL_QUANTILE_SKETCH_H_
