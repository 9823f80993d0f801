// Spectator's percentile buckets: 276 fixed log-linear buckets over the non-negative int64 range.
//
// The table is Netflix Spectator's PercentileBuckets, reproduced exactly so that counts recorded
// here mean the same as Spectator's: 1, 2, 3, then for every power of 4, 4^k, the values
// 4^k + j * floor(4^k / 3) while below 4^(k+1) - floor(4^k / 3), and finally INT64_MAX. (The
// power 4^31 contributes nothing: Spectator's computation of its end overflows, which is why
// there are 276 buckets and not 285.) IndexOf(v) is Spectator's index function, quirks included:
// it is monotonic and every v < kValues[i] has IndexOf(v) <= i, but near each power of 4 a bucket
// holds fewer values than the table suggests (IndexOf(15) is 15, whose value is 21: bucket 14,
// of value 16, holds only 14). LargestIn(i) is the largest v with IndexOf(v) == i, the exact
// upper bound a histogram exposes.
//
// Visible because the percentile meters inline their hot path; not API.
#ifndef SHMETRICS_INTERNAL_PERCENTILE_BUCKETS_H_
#define SHMETRICS_INTERNAL_PERCENTILE_BUCKETS_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace shmetrics::internal::percentile_buckets {

inline constexpr size_t kLength = 276;

namespace detail {

struct Tables {
  std::array<int64_t, kLength> values{};
  std::array<uint32_t, 32> power_of_4_index{};
};

// Spectator's generator, with its 64-bit wrap-around made explicit (signed overflow is undefined
// in C++, so the arithmetic is done unsigned and reinterpreted, as Java's long does it).
constexpr Tables Generate() {
  Tables t;
  size_t n = 0;
  t.values[n++] = 1;
  t.values[n++] = 2;
  t.values[n++] = 3;
  size_t p = 0;
  t.power_of_4_index[p++] = 0;
  for (int exp = 2; exp < 64; exp += 2) {
    int64_t current = static_cast<int64_t>(uint64_t{1} << exp);
    const int64_t delta = current / 3;
    const int64_t next =
        static_cast<int64_t>((static_cast<uint64_t>(current) << 2) - static_cast<uint64_t>(delta));
    t.power_of_4_index[p++] = static_cast<uint32_t>(n);
    while (current < next) {
      t.values[n++] = current;
      current += delta;
    }
  }
  t.values[n++] = std::numeric_limits<int64_t>::max();
  return t;
}

inline constexpr Tables kTables = Generate();

}  // namespace detail

// kValues[i] is the (exclusive) upper end of bucket i.
inline constexpr const std::array<int64_t, kLength>& kValues = detail::kTables.values;

// Spectator's PercentileBuckets.indexOf.
constexpr size_t IndexOf(int64_t v) {
  if (v <= 0) return 0;
  if (v <= 4) return static_cast<size_t>(v);
  int shift = 63 - std::countl_zero(static_cast<uint64_t>(v));
  const int64_t prev_power_of_2 = (v >> shift) << shift;
  int64_t prev_power_of_4 = prev_power_of_2;
  if (shift % 2 != 0) {
    --shift;
    prev_power_of_4 = prev_power_of_2 >> 1;
  }
  const int64_t base = prev_power_of_4;
  const int64_t delta = base / 3;
  const auto offset = static_cast<size_t>((v - base) / delta);
  const size_t pos = offset + detail::kTables.power_of_4_index[shift / 2];
  return pos >= kLength - 1 ? kLength - 1 : pos + 1;
}

// The largest v >= 0 with IndexOf(v) <= i (so, IndexOf being monotonic, bucket i's largest).
constexpr int64_t LargestIn(size_t i) {
  if (i + 1 >= kLength) return std::numeric_limits<int64_t>::max();
  int64_t lo = 0, hi = kValues[i];  // IndexOf(lo) <= i < IndexOf(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (IndexOf(mid) <= i) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Spectator's PercentileBuckets.percentile: p in [0, 100]; linear interpolation between the
// values of the previous bucket and of the bucket where the running count reaches p percent.
// counts[i] is bucket i (kLength entries, or fewer: the missing tail counts as zero). Two
// deviations, where Spectator divides 0 by 0: empty buckets never end the walk (so p = 0 gives
// the lower end of the first non-empty bucket, not NaN), and all-zero counts give NaN.
double Percentile(std::span<const uint64_t> counts, double p);

}  // namespace shmetrics::internal::percentile_buckets

#endif  // SHMETRICS_INTERNAL_PERCENTILE_BUCKETS_H_
