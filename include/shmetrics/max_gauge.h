// shmetrics::MaxGauge: Spectator's max gauge — the largest value set since the last scrape,
// shared by every process of a heap.
//
// Set(v) keeps the largest of the values set by any process. A collector with write access (the
// embedded HttpExposer, Expose() on a writable heap) reads the value and empties the gauge in one
// atomic exchange, so each scrape shows the largest value set since the scrape before it, and a
// Set racing with the scrape lands in this scrape or the next, never in neither. An empty gauge
// (nothing set since the last scrape, or ever) is not exposed, as Spectator reports no value.
//
// Only a GET of the exposer's /metrics empties the gauge: a HEAD, which sends no body, leaves it
// for the next GET.
//
// "The last scrape" is the last collection by any collector that can write the heap: with two
// scrapers each sees the largest value since the other's scrape. A read-only collector (for
// example `shmetrics serve` on a heap it may only read) cannot empty the gauge: it shows the
// largest value since the last writing collection, or since creation.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization. Set is one atomic load, plus a compare-exchange when the value is a new max.
//
// Example:
//   auto& depth = registry.AddMaxGauge("queue_depth_max", "Deepest queue since the last scrape");
//   depth.Labels().Set(17);
#ifndef SHMETRICS_MAX_GAUGE_H_
#define SHMETRICS_MAX_GAUGE_H_

#include <bit>
#include <cmath>
#include <cstdint>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"

namespace shmetrics {

namespace internal {
// The bits of an empty max gauge: a quiet NaN, which Set never stores.
inline constexpr uint64_t kEmptyMaxBits = 0x7ff8000000000000ULL;
}  // namespace internal

class MaxGauge {
 public:
  explicit MaxGauge(const internal::SeriesRef& ref)
      : cell_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)) {}

  // Raises the gauge to v if v is larger than what it holds (or it is empty). Returns false,
  // changing nothing, for NaN.
  bool Set(double v) noexcept {
    if (std::isnan(v)) return false;
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    uint64_t cur = cell_->Load();
    if (cur != internal::kEmptyMaxBits && !(v > std::bit_cast<double>(cur))) return true;
    cell_->Transform([bits, v](uint64_t old) {
      return old == internal::kEmptyMaxBits || v > std::bit_cast<double>(old) ? bits : old;
    });
    return true;
  }

  // The value held now; NaN when empty.
  double Value() const noexcept { return cell_->LoadDouble(); }

 private:
  internal::Cell* cell_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_MAX_GAUGE_H_
