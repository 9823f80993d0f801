// shmetrics::AgeGauge: Spectator's age gauge — seconds since an event last happened, shared by
// every process of a heap.
//
// The heap holds the Unix time of the last Reset() in nanoseconds; the collector computes the
// age when it scrapes, so the gauge keeps growing without anyone updating it. A new series counts
// from its creation (age 0 at creation). The family's unit is "seconds" (appended to the name
// when missing). Typical use: seconds since the last successful job, cache refresh or heartbeat.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Reset is one clock read (vDSO, not a system call) and one atomic store.
//
// Example:
//   auto& since = registry.AddAgeGauge("last_refresh", "Seconds since the cache was refreshed");
//   since.Labels().Reset();  // after each refresh
#ifndef SHMETRICS_AGE_GAUGE_H_
#define SHMETRICS_AGE_GAUGE_H_

#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"

namespace shmetrics {

class AgeGauge {
 public:
  explicit AgeGauge(const internal::SeriesRef& ref)
      : cell_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)) {}

  // Restarts the age at 0 now.
  void Reset() noexcept { cell_->Store(internal::NowUnixNanos()); }
  // Unix time of the last Reset() in nanoseconds; 0 when never reset (the age counts from the
  // series' creation).
  uint64_t LastResetUnixNanos() const noexcept { return cell_->Load(); }

 private:
  internal::Cell* cell_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_AGE_GAUGE_H_
