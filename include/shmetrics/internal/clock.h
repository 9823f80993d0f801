// The library's wall-clock reads, and the one hook through which tests control them.
//
// Every reading of the Unix time the library takes (gauge time-to-live stamps, age gauges, the
// summary sketch's time slices, created timestamps, the collector's "now") goes through
// NowUnixNanos or CoarseNowUnixNanos. While a test has set a time with SetClockForTesting, both
// return it instead of the system's clock, so a test advances time explicitly and asserts exact
// outcomes instead of sleeping and hoping CLOCK_REALTIME moved forward. The cost on the update
// paths is one relaxed load and a branch that is never taken outside tests.
//
// Visible because Summary::Observe inlines CoarseNowUnixNanos; not API.
#ifndef SHMETRICS_INTERNAL_CLOCK_H_
#define SHMETRICS_INTERNAL_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>

namespace shmetrics::internal {

// The time every clock read returns, in Unix nanoseconds; 0 (the default) means the system's
// clock. Written only by SetClockForTesting.
extern std::atomic<uint64_t> g_clock_for_testing;

// For tests only: makes NowUnixNanos and CoarseNowUnixNanos return `unix_ns` in this process
// (from every thread) until called again; 0 restores the system's clock. The time stays where it
// is set: it moves only when the test sets it again. A child forked afterwards inherits it, so for
// a writer in another process set it before the fork.
void SetClockForTesting(uint64_t unix_ns) noexcept;

// Unix time in nanoseconds (CLOCK_REALTIME, a vDSO read).
uint64_t NowUnixNanos() noexcept;

// Unix time in nanoseconds from the coarse clock (a vDSO read of the kernel's tick-resolution
// time: a few nanoseconds, never a system call). Enough for time slices of 100 ms or more.
inline uint64_t CoarseNowUnixNanos() noexcept {
  if (const uint64_t set = g_clock_for_testing.load(std::memory_order_relaxed); set != 0)
      [[unlikely]] {
    return set;
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace shmetrics::internal

#endif  // SHMETRICS_INTERNAL_CLOCK_H_
