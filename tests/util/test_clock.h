// A wall clock the test controls: while a TestClock lives, every clock reading of the library
// (internal::NowUnixNanos, internal::CoarseNowUnixNanos) returns its time, which moves only when
// the test calls Advance. Forked children inherit the time set before the fork.
#ifndef SHMETRICS_TESTS_UTIL_TEST_CLOCK_H_
#define SHMETRICS_TESTS_UTIL_TEST_CLOCK_H_

#include <chrono>
#include <cstdint>

#include "shmetrics/internal/clock.h"

namespace shmetrics::testing {

class TestClock {
 public:
  // Starts at a fixed, realistic time (2026-01-01T00:00:00Z) unless told otherwise.
  explicit TestClock(uint64_t start_unix_ns = 1767225600000000000u) : now_(start_unix_ns) {
    internal::SetClockForTesting(now_);
  }
  ~TestClock() { internal::SetClockForTesting(0); }
  TestClock(const TestClock&) = delete;
  TestClock& operator=(const TestClock&) = delete;

  uint64_t now() const { return now_; }
  void Advance(std::chrono::nanoseconds d) {
    now_ += static_cast<uint64_t>(d.count());
    internal::SetClockForTesting(now_);
  }

 private:
  uint64_t now_;
};

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_UTIL_TEST_CLOCK_H_
