// shmetrics::Timer: Spectator's timer — count, total time, total of squares and max of durations,
// shared by every process of a heap.
//
// Record(d) adds one duration: a count, the total in integer nanoseconds (exact), the sum of
// squares in nanoseconds squared (a double), and the max. The max is the largest duration
// recorded since the last collection by a collector with write access (see "Max" below), as
// Spectator reports the max of its last step. Negative durations are rejected, as Spectator does.
//
// Exposition (OpenMetrics), for a timer registered as "db_query" (the unit "seconds" is implied
// and appended to the name):
//   # TYPE db_query_seconds summary             db_query_seconds_count, db_query_seconds_sum
//   # TYPE db_query_seconds_max gauge            the max since the previous scrape, seconds
//   # TYPE db_query_seconds_sum_of_squares gauge  the sum of squares, seconds^2
// The two gauges are families of their own (as Micrometer exposes `_max`); registering a family
// under either name, or a timer whose companions would clash with a family, throws
// kAlreadyExists. The summary carries no quantiles (use a PercentileTimer or a Summary with
// quantiles for distributions).
//
// Max: a collector that can write the heap (the embedded HttpExposer, Expose() on a writable
// heap) reads the max and resets it to 0 in one atomic exchange, so each scrape shows the largest
// duration recorded since the scrape before it and no Record is lost between the two. With two
// such scrapers (say, two Prometheus servers scraping one exposer) each sees the max since the
// other's scrape. A read-only collector (`shmetrics serve` on a heap it cannot write) does not
// reset: it shows the max since the last reset by a writing collector, or since creation.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Record never throws, allocates, locks (except with mutex cells) or makes a
// system call: four atomic read-modify-writes at most (the max is a plain load unless exceeded).
//
// Example:
//   auto& queries = registry.AddTimer("db_query", "Database queries", {"table"});
//   shmetrics::Timer users = queries.Labels("users");
//   users.Record(std::chrono::microseconds(350));
//   {
//     auto scope = users.Time();  // records the scope's duration
//     ...
//   }
#ifndef SHMETRICS_TIMER_H_
#define SHMETRICS_TIMER_H_

#include <chrono>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"

namespace shmetrics {

class Timer {
 public:
  explicit Timer(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)) {}

  // Records one duration. Returns false (recording nothing) when it is negative.
  // Cells: [count, total ns, sum of squares in ns^2 (double), max ns].
  template <typename Rep, typename Period>
  bool Record(std::chrono::duration<Rep, Period> d) noexcept {
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns < 0) return false;
    const auto n = static_cast<uint64_t>(ns);
    cells_[internal::SpectatorCells::kCount].Add(1);
    cells_[internal::SpectatorCells::kTotal].Add(n);
    cells_[internal::SpectatorCells::kSumOfSquares].AddDouble(static_cast<double>(ns) *
                                                              static_cast<double>(ns));
    cells_[internal::SpectatorCells::kMax].MaxU64(n);
    return true;
  }

  // Records the time between the call and the end of the returned scope (steady clock). Every
  // meter that can time a scope calls it Time().
  class Scope;
  [[nodiscard]] Scope Time() noexcept;

  uint64_t Count() const noexcept { return cells_[internal::SpectatorCells::kCount].Load(); }
  std::chrono::nanoseconds TotalTime() const noexcept {
    return std::chrono::nanoseconds(
        static_cast<int64_t>(cells_[internal::SpectatorCells::kTotal].Load()));
  }
  // In nanoseconds squared.
  double TotalOfSquares() const noexcept {
    return cells_[internal::SpectatorCells::kSumOfSquares].LoadDouble();
  }
  // The max since the last reset by a collector (see above).
  std::chrono::nanoseconds Max() const noexcept {
    return std::chrono::nanoseconds(static_cast<int64_t>(cells_[3].Load()));
  }

 private:
  internal::Cell* cells_;
};

class Timer::Scope {
 public:
  explicit Scope(Timer t) : t_(t), start_(std::chrono::steady_clock::now()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() { t_.Record(std::chrono::steady_clock::now() - start_); }

 private:
  Timer t_;
  std::chrono::steady_clock::time_point start_;
};

inline Timer::Scope Timer::Time() noexcept { return Scope(*this); }

}  // namespace shmetrics

#endif  // SHMETRICS_TIMER_H_
