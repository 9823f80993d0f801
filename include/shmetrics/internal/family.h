// The machinery shared by every metric family: label lookup, series creation, removal.
// Visible because Family<T> is a template; not API.
#ifndef SHMETRICS_INTERNAL_FAMILY_H_
#define SHMETRICS_INTERNAL_FAMILY_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/clock.h"
#include "shmetrics/internal/quantile_sketch.h"
#include "shmetrics/internal/worker.h"
#include "shmetrics/metric_type.h"

namespace shmetrics {
class Heap;
class RegistryAccess;
namespace shm {
class Segment;
}

namespace internal {

// Offsets inside a series record (see src/meters/layout.h for the whole layout).
inline constexpr uint32_t kSeriesCellsOffset = 32;
// The first word of a live series record; a freed record holds a free-list link there.
inline constexpr uint64_t kLiveSeriesMagic = 0x7365697265734d53ULL;  // "SMseries"

// When a series record was created (Unix ns). A process that keeps handles in a cache (the
// Python binding does) stores this with each handle and checks SeriesStillHolds before reusing
// one: another process may have removed the series, and its record been reused for another.
inline uint64_t SeriesCreatedUnixNanos(const char* record) noexcept {
  return __atomic_load_n(reinterpret_cast<const uint64_t*>(record + 8), __ATOMIC_RELAXED);
}
inline bool SeriesStillHolds(const char* record, uint64_t created_unix_ns) noexcept {
  return __atomic_load_n(reinterpret_cast<const uint64_t*>(record), __ATOMIC_RELAXED) ==
             kLiveSeriesMagic &&
         SeriesCreatedUnixNanos(record) == created_unix_ns;
}

class FamilyBase;

struct SeriesRef {
  char* record;
  const FamilyBase* family;
};

class FamilyBase {
 public:
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  virtual ~FamilyBase();

  // values in the order the label names were declared.
  SeriesRef Lookup(std::span<const std::string_view> values) const {
    return Lookup(values, nullptr);
  }
  // The same; *own is set to whether the ref is the series of exactly these values (not the
  // overflow series, nor the detached one of a read-only heap), which a cache may keep.
  SeriesRef Lookup(std::span<const std::string_view> values, bool* own) const;
  SeriesRef LookupMap(std::span<const std::pair<std::string_view, std::string_view>> labels) const;
  bool Remove(std::span<const std::string_view> values) const;
  void Clear() const;
  // Number of series (children) in the family, across all processes.
  size_t size() const;

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return declared_names_; }
  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<std::string>& states() const { return states_; }
  uint32_t stripes() const { return stripes_; }
  // Gauges: the time-to-live in nanoseconds, 0 when off.
  uint64_t ttl_ns() const { return ttl_ns_; }
  // Summaries: the quantiles reported (empty: count and sum only) and their sketch.
  const std::vector<double>& quantiles() const { return quantiles_; }
  const SketchLayout& sketch() const { return sketch_; }
  // Percentile meters: the first and last Spectator bucket index kept (see
  // percentile_buckets.h); values are clamped into that range.
  uint32_t percentile_first() const { return percentile_first_; }
  uint32_t percentile_last() const { return percentile_last_; }
  // Native histograms: the schema, the zero threshold, the bucket indices kept (values beyond
  // them count in the outermost bucket) and whether negative values have buckets of their own.
  int32_t native_schema() const { return native_schema_; }
  double native_zero_threshold() const { return native_zero_threshold_; }
  int32_t native_min_index() const { return native_min_index_; }
  int32_t native_max_index() const { return native_max_index_; }
  bool native_negative() const { return native_negative_; }
  // Cells from one stripe to the next: at least a cache line, so workers never share one.
  uint32_t stripe_stride() const { return stripe_stride_; }
  shm::Segment& segment() const { return *segment_; }
  uint64_t offset() const { return family_off_; }

  // Writes an exemplar into slot `slot` of the series. May lock (exemplars are rare). Returns
  // false, writing nothing, for labels OpenMetrics does not allow (over 128 characters, invalid
  // names) or when the heap is full.
  bool WriteExemplar(char* record, uint32_t slot, double value,
                     std::span<const std::pair<std::string_view, std::string_view>> labels) const;

 protected:
  FamilyBase() = default;

 private:
  friend class ::shmetrics::RegistryAccess;
  // values in declared order, as Lookup's.
  SeriesRef CreateSeries(std::string_view key, uint64_t hash,
                         std::span<const std::string_view> values, bool* own) const;
  SeriesRef Overflow() const;
  // Takes the heap lock. Returns nullptr when the heap is full.
  // With use_spares, the family's reserved record and entry serve when the heap is full (the
  // overflow series).
  // hash is the key's index hash.
  char* FindOrInsertSeries(std::string_view key, uint64_t hash, bool use_spares = false) const;
  char* Dummy() const;
  // The index key of values given in declared order (the key holds them in canonical order),
  // in buf when it fits in cap bytes, else in *spill.
  std::string_view BuildKey(std::span<const std::string_view> values, char* buf, size_t cap,
                            std::string* spill) const;
  void InitSeries(char* record) const;

  // Constant after construction.
  std::shared_ptr<shm::Segment> segment_;
  uint64_t family_off_ = 0;
  uint64_t table_off_ = 0;
  std::string name_;
  MetricType type_ = MetricType::kCounter;
  std::vector<std::string> declared_names_;
  std::vector<uint32_t>
      to_canonical_;  // canonical position i holds declared label to_canonical_[i]
  std::vector<std::string> canonical_names_;
  std::vector<double> bounds_;
  std::vector<std::string> states_;
  uint32_t stripes_ = 1;
  uint32_t cells_per_stripe_ = 1;
  uint32_t stripe_stride_ = 0;  // in cells
  uint32_t series_size_ = 0;
  uint32_t exemplar_slots_ = 0;
  uint32_t max_children_ = 0;
  uint64_t ttl_ns_ = 0;
  std::vector<double> quantiles_;
  SketchLayout sketch_;
  uint32_t percentile_first_ = 0;
  uint32_t percentile_last_ = 0;
  int32_t native_schema_ = 0;
  double native_zero_threshold_ = 0;
  int32_t native_min_index_ = 0;
  int32_t native_max_index_ = 0;
  bool native_negative_ = false;
  std::unique_ptr<char[]> dummy_;  // where updates go when even the overflow series is missing
};

}  // namespace internal

}  // namespace shmetrics

#endif  // SHMETRICS_INTERNAL_FAMILY_H_
