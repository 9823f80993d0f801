// shmetrics::Gauge: a value that goes up and down, shared by every process of a heap.
//
// By default (GaugeMode::kShared) a gauge is one double in the heap: Set stores it, Inc/Dec add
// to it atomically, whichever process calls them. With a per-worker mode (see GaugeMode in
// registry.h) each worker writes its own value and the collector combines them. With a
// time-to-live (GaugeOptions::ttl) a value not set within the ttl, or set to NaN, is not exposed.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Updates never throw, allocate or lock (except with mutex cells).
//
// Example:
//   auto in_flight = registry.AddGauge("http_requests_in_flight", "Requests being
//   served").Labels();
//   {
//     auto tracker = in_flight.TrackInProgress();  // +1 now, -1 at the end of the scope
//     ...
//   }
#ifndef SHMETRICS_GAUGE_H_
#define SHMETRICS_GAUGE_H_

#include <chrono>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"

namespace shmetrics {

class Gauge {
 public:
  explicit Gauge(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)),
        stripes_(ref.family->stripes()),
        stride_(ref.family->stripe_stride()),
        ttl_ns_(ref.family->ttl_ns()),
        stamp_(ref.family->stripes() > 1 || ref.family->ttl_ns() != 0) {}

  void Set(double v) noexcept {
    internal::Cell* c = Mine();
    c[internal::GaugeCells::kValue].StoreDouble(v);
    Stamp(c, stamp_ ? internal::NowUnixNanos() : 0);
  }
  // With a time-to-live, Inc on a value past it starts from 0, as if it had never been set
  // (two processes racing at that moment on a shared gauge may lose one's increment).
  void Inc(double v = 1) noexcept {
    internal::Cell* c = Mine();
    const uint64_t now = stamp_ ? internal::NowUnixNanos() : 0;
    Adopt(c, now);
    c[internal::GaugeCells::kValue].AddDouble(v);
    Stamp(c, now);
  }
  void Dec(double v = 1) noexcept { Inc(-v); }
  // Sets the gauge to the current Unix time in seconds.
  void SetToCurrentTime() noexcept { Set(static_cast<double>(internal::NowUnixNanos()) / 1e9); }
  // This process's value (for per-worker modes, this worker's).
  double Value() const noexcept {
    const internal::Cell* c = Mine();
    return stripes_ > 1 && c[internal::GaugeCells::kEpoch].Load() !=
                               internal::g_worker_epoch.load(std::memory_order_relaxed)
               ? 0
               : c[internal::GaugeCells::kValue].LoadDouble();
  }

  // Adds 1 now and subtracts it when the returned object is destroyed.
  class InProgress;
  [[nodiscard]] InProgress TrackInProgress() noexcept;

  // Sets the gauge to the seconds elapsed between the call and the end of the returned scope
  // (steady clock). Every meter that can time a scope calls it Time().
  class Scope;
  [[nodiscard]] Scope Time() noexcept;
  // Deprecated spellings of Scope and Time(), kept so existing code builds.
  using Timer [[deprecated("use Scope")]] = Scope;
  [[deprecated("use Time()")]] [[nodiscard]] Scope StartTimer() noexcept;

 private:
  // Per-worker stripes hold [value, last set (Unix ns), worker epoch]; a shared gauge with a
  // time-to-live holds [value, last set (Unix ns)].
  internal::Cell* Mine() const noexcept {
    if (stripes_ <= 1) return cells_;
    const uint32_t s = internal::g_worker_stripe.load(std::memory_order_relaxed);
    return cells_ + stride_ * (s < stripes_ ? s : stripes_ - 1);
  }
  // A stripe last written by an earlier process in this worker slot (one that died, say in the
  // middle of a TrackInProgress scope) holds that process's value: its successor starts from 0
  // instead of adding to it. Only the slot's owner writes the stripe, so load-then-store is safe.
  // Likewise a value past its time-to-live (the collector no longer shows it) is not added to.
  void Adopt(internal::Cell* c, uint64_t now) const noexcept {
    if ((stripes_ > 1 && c[internal::GaugeCells::kEpoch].Load() !=
                             internal::g_worker_epoch.load(std::memory_order_relaxed)) ||
        (ttl_ns_ != 0 && Expired(c[internal::GaugeCells::kStamp].Load(), now))) {
      c[internal::GaugeCells::kValue].StoreDouble(0);
    }
  }
  bool Expired(uint64_t stamp, uint64_t now) const noexcept {
    return now > stamp && now - stamp > ttl_ns_;
  }
  void Stamp(internal::Cell* c, uint64_t now) const noexcept {
    if (!stamp_) return;
    c[internal::GaugeCells::kStamp].Store(now);
    if (stripes_ > 1)
      c[internal::GaugeCells::kEpoch].Store(
          internal::g_worker_epoch.load(std::memory_order_relaxed));
  }

  internal::Cell* cells_;
  uint32_t stripes_;
  uint32_t stride_;
  uint64_t ttl_ns_;  // 0: none
  bool stamp_;       // per-worker, or with a time-to-live: Set and Inc record when
};

class Gauge::InProgress {
 public:
  explicit InProgress(Gauge g) : g_(g) { g_.Inc(); }
  InProgress(const InProgress&) = delete;
  InProgress& operator=(const InProgress&) = delete;
  ~InProgress() { g_.Dec(); }

 private:
  Gauge g_;
};

class Gauge::Scope {
 public:
  explicit Scope(Gauge g) : g_(g), start_(std::chrono::steady_clock::now()) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() {
    g_.Set(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  Gauge g_;
  std::chrono::steady_clock::time_point start_;
};

inline Gauge::InProgress Gauge::TrackInProgress() noexcept { return InProgress(*this); }

inline Gauge::Scope Gauge::Time() noexcept { return Scope(*this); }
inline Gauge::Scope Gauge::StartTimer() noexcept { return Scope(*this); }

}  // namespace shmetrics

#endif  // SHMETRICS_GAUGE_H_
