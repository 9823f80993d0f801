// shmetrics::Counter: a monotonically increasing value shared by every process of a heap.
//
// A Counter is a small handle to one series (a family's child, see Family::Labels); copy it
// freely and keep it: a held handle costs nothing to use. Inc() is one atomic add in the shared
// heap; an integral Inc(v) too; a fractional one is a compare-exchange loop on a second cell, so
// the value is exact for integers and IEEE-exact for each fractional step.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Updates never throw, never allocate, never take a lock (except with mutex
// cells), never make a system call.
//
// REQUIRES: the series was not removed (Family::Remove / Clear, in any process) while the handle
// is used; after a removal look the child up again. A stale handle only ever writes into a series
// of the same family.
//
// Example:
//   auto& requests = registry.AddCounter("http_requests", "Requests served", {"method", "code"});
//   shmetrics::Counter ok = requests.Labels("GET", "200");
//   ok.Inc();
//   ok.IncWithExemplar(1, {{"trace_id", "4bf92f3577b34da6"}});
#ifndef SHMETRICS_COUNTER_H_
#define SHMETRICS_COUNTER_H_

#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <utility>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/meter_types.h"

namespace shmetrics {

using ExemplarLabels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
// The same, for label sets known only at run time (from a binding, say).
using ExemplarLabelSpan = std::span<const std::pair<std::string_view, std::string_view>>;

class Counter {
 public:
  explicit Counter(const internal::SeriesRef& ref)
      : cells_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)),
        stripes_(ref.family->stripes()),
        stride_(ref.family->stripe_stride()),
        ref_(ref) {}

  void Inc() noexcept { Stripe()[internal::CounterCells::kInteger].Add(1); }

  // Adds n. Rejects (returns false, changes nothing) a negative n.
  template <std::integral I>
  bool Inc(I n) noexcept {
    if constexpr (std::is_signed_v<I>) {
      if (n < 0) return false;
    }
    Stripe()[internal::CounterCells::kInteger].Add(static_cast<uint64_t>(n));
    return true;
  }

  // Adds v. Rejects (returns false, changes nothing) a negative, NaN or infinite v. Integral
  // values below 2^53 take the integer cell, so mixing Inc(1.0) and Inc() stays exact.
  bool Inc(double v) noexcept {
    if (!(v >= 0) || std::isinf(v)) return false;
    if (v < 9007199254740992.0 && v == static_cast<double>(static_cast<uint64_t>(v))) {
      Stripe()[internal::CounterCells::kInteger].Add(static_cast<uint64_t>(v));
    } else {
      Stripe()[internal::CounterCells::kFraction].AddDouble(v);
    }
    return true;
  }

  // Adds v and records an exemplar (OpenMetrics: the label text is limited to 128 characters;
  // longer sets are dropped and the increment still counts). May lock; use it on sampled
  // requests, not on every update.
  bool IncWithExemplar(double v, ExemplarLabels labels) noexcept {
    return IncWithExemplar(v, ExemplarLabelSpan(labels.begin(), labels.size()));
  }
  bool IncWithExemplar(double v, ExemplarLabelSpan labels) noexcept;

  // The current value, summed over stripes.
  double Value() const noexcept;

 private:
  // Striped counters (CounterOptions::striped) give each worker its own 64-byte line.
  internal::Cell* Stripe() const noexcept {
    if (stripes_ <= 1) return cells_;
    const uint32_t s = internal::g_worker_stripe.load(std::memory_order_relaxed);
    return cells_ + stride_ * (s < stripes_ ? s : stripes_ - 1);
  }

  internal::Cell* cells_;
  uint32_t stripes_;
  uint32_t stride_;
  internal::SeriesRef ref_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_COUNTER_H_
