// The cells of each meter type's series, by name: what the writers (counter.h, gauge.h, ...)
// and the decoder of the collector (src/meters/decode.cc) agree on. The rest of each type's
// description (cells per stripe, exemplar slots, exposition, reserved names) is the table in
// src/meters/meter_types.h. Visible because the writers are inline; not API.
//
// A series record holds `stripes` copies of its cells, `stripe_stride` cells apart; the indices
// below are within one stripe. Changing any of them changes the heap format (shm/FORMAT.md).
#ifndef SHMETRICS_INTERNAL_METER_TYPES_H_
#define SHMETRICS_INTERNAL_METER_TYPES_H_

#include <cstdint>

namespace shmetrics::internal {

// MetricType::kCounter: an integer part (exact up to 2^64) and a double part.
struct CounterCells {
  static constexpr uint32_t kInteger = 0;
  static constexpr uint32_t kFraction = 1;  // double
  static constexpr uint32_t kCount = 2;
};

// MetricType::kGauge. A shared gauge without a time-to-live has kValue only; with one it adds
// kStamp; per-worker stripes hold all three.
struct GaugeCells {
  static constexpr uint32_t kValue = 0;  // double
  static constexpr uint32_t kStamp = 1;  // last set, Unix ns; 0: never
  static constexpr uint32_t kEpoch = 2;  // the worker epoch of the stripe's last writer
  static constexpr uint32_t kShared = 1;
  static constexpr uint32_t kSharedWithTtl = 2;
  static constexpr uint32_t kPerWorker = 3;
};

// MetricType::kHistogram: the sum, then one count per bucket, +Inf last (not cumulative).
struct HistogramCells {
  static constexpr uint32_t kSum = 0;  // double
  static constexpr uint32_t kFirstBucket = 1;
};

// MetricType::kNativeHistogram: the sum, the zero bucket, then one count per bucket index from
// the family's lowest to its highest (positive values), and with negative buckets the same
// indices again for negative values. Not cumulative; the count is their total.
struct NativeHistogramCells {
  static constexpr uint32_t kSum = 0;  // double
  static constexpr uint32_t kZero = 1;
  static constexpr uint32_t kFirstBucket = 2;
};

// MetricType::kSummary: count and sum, then with quantiles the sketch's slices * buckets cells.
struct SummaryCells {
  static constexpr uint32_t kCount = 0;
  static constexpr uint32_t kSum = 1;  // double
  static constexpr uint32_t kSketch = 2;
};

// MetricType::kTimer and kDistributionSummary. Timers keep kTotal and kMax in integer
// nanoseconds and kSumOfSquares in ns^2 (a double); distribution summaries keep all three as
// doubles.
struct SpectatorCells {
  static constexpr uint32_t kCount = 0;
  static constexpr uint32_t kTotal = 1;
  static constexpr uint32_t kSumOfSquares = 2;
  static constexpr uint32_t kMax = 3;
  static constexpr uint32_t kCells = 4;
};

// MetricType::kPercentileTimer and kPercentileDistributionSummary: the total (integer ns or
// amount), then the counts of the kept Spectator buckets, first to last.
struct PercentileBucketCells {
  static constexpr uint32_t kTotal = 0;
  static constexpr uint32_t kFirstBucket = 1;
};

// MetricType::kInfo (unused), kStateSet (one bit per state), kMaxGauge (double bits, or
// kEmptyMaxBits), kAgeGauge (last reset, Unix ns; 0: never): one cell.
struct SingleCell {
  static constexpr uint32_t kValue = 0;
  static constexpr uint32_t kCells = 1;
};

}  // namespace shmetrics::internal

#endif  // SHMETRICS_INTERNAL_METER_TYPES_H_
