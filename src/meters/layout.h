// The heap records of metric families and series, and the definition encoding.
//
// These structs live in the heap (see shm/layout.h for the rules they follow, and shm/FORMAT.md
// for the documented format). The first 8 bytes of every record are never a cell: the allocator
// keeps its free-list link there once a record is freed, so a stale handle cannot damage a list.
#ifndef SHMETRICS_SRC_METERS_LAYOUT_H_
#define SHMETRICS_SRC_METERS_LAYOUT_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "shmetrics/internal/family.h"

namespace shmetrics::meters {

inline constexpr uint64_t kFamilyMagic = 0x796c696d61664d53ULL;       // "SMfamily"
inline constexpr uint64_t kSeriesMagic = internal::kLiveSeriesMagic;  // "SMseries"

// The value of a root-table entry (key: the full metric name).
struct FamilyRecord {
  uint64_t magic;          // kFamilyMagic
  uint32_t type;           // MetricType
  uint32_t gauge_mode;     // GaugeMode
  uint32_t num_labels;     // label names (canonical order in the definition)
  uint32_t num_values;     // histogram: finite bucket bounds; stateset: states
  uint32_t stripes;        // 1, or max_workers + 1 (per-worker gauges, striped counters)
  uint32_t stripe_stride;  // cells from one stripe to the next
  uint32_t cells_per_stripe;
  uint32_t series_size;  // payload bytes of a series record
  uint32_t max_children;
  uint32_t exemplar_slots;             // exemplar slots per series (0: none)
  std::atomic<uint64_t> series_table;  // offset of the shm table: label-value key -> series
  uint64_t free_series;                // freed series records of this family, under Header::lock
  uint64_t definition;                 // offset of the definition blob
  uint64_t definition_len;
  std::atomic<uint64_t> overflowed;  // lookups sent to the overflow series
  uint64_t created_unix_ns;
  // A series record and an index entry set aside at registration for the overflow series of a
  // family with labels, so it can be created when the heap is full; 0 once used. Under
  // Header::lock.
  uint64_t spare_record;
  uint64_t spare_entry;
  uint64_t reserved[2];
};
static_assert(std::is_standard_layout_v<FamilyRecord>);

// The value of a series-table entry. Cells start at internal::kSeriesCellsOffset.
struct SeriesHeader {
  uint64_t magic;  // kSeriesMagic while live; the free-list link once freed
  uint64_t created_unix_ns;
  std::atomic<uint64_t> exemplars;  // offset of an ExemplarBlock, or 0
  uint64_t reserved;
};
static_assert(sizeof(SeriesHeader) == internal::kSeriesCellsOffset);

// One exemplar, written under Header::exemplar_lock and read lock-free through `seq` (odd while
// a write is in progress).
inline constexpr uint32_t kMaxExemplarLabelBytes = 1008;
struct ExemplarSlot {
  std::atomic<uint64_t> seq;
  std::atomic<uint64_t> value;      // double bits
  std::atomic<uint64_t> timestamp;  // double bits, Unix seconds
  uint32_t labels_len;              // bytes of encoded labels (see EncodeLabelList)
  uint32_t count;                   // number of labels
  char labels[kMaxExemplarLabelBytes];
};
static_assert(sizeof(ExemplarSlot) == 1040);

// What a family is. Encoded into the heap so other processes (and other languages) can read it.
struct Definition {
  std::string name;  // full name: prefix, name, unit suffix; no _total
  std::string help;
  std::string unit;
  MetricType type = MetricType::kCounter;
  GaugeMode gauge_mode = GaugeMode::kShared;
  bool striped = false;
  std::vector<std::string> label_names;                           // canonical (sorted) order
  std::vector<std::pair<std::string, std::string>> const_labels;  // sorted by name
  std::vector<double> bounds;                                     // histogram
  std::vector<std::string> states;                                // stateset
  // Definition format 2 (layout version 2):
  uint64_t ttl_ns = 0;            // gauge time-to-live; 0: off
  std::vector<double> quantiles;  // summary: quantiles reported, ascending; empty: none
  uint64_t max_age_ns = 0;        // summary with quantiles: the sliding window
  uint32_t age_buckets = 0;       // summary with quantiles: time slices of the window
  double relative_accuracy = 0;   // summary with quantiles: the sketch's alpha
  double min_value = 0;           // summary with quantiles: the sketch's range
  double max_value = 0;
  uint32_t percentile_first = 0;  // percentile meters: first Spectator bucket index kept
  uint32_t percentile_last = 0;   // percentile meters: last Spectator bucket index kept
  // Definition format 3 (layout version 3): native histograms.
  int32_t native_schema = 0;
  double native_zero_threshold = 0;
  int32_t native_min_index = 0;  // the bucket indices kept, at native_schema
  int32_t native_max_index = 0;
  bool native_negative = false;     // negative values have buckets (else: the zero bucket)
  uint32_t native_max_buckets = 0;  // non-empty buckets per scrape; 0: no limit

  // Equal in everything but help text.
  bool SameShape(const Definition& o) const;
};

// Cells per stripe of a series of this family, and exemplar slots per series.
uint32_t CellsPerStripe(const Definition& d);
uint32_t ExemplarSlots(const Definition& d);
// The sketch of a summary with quantiles (disabled otherwise). REQUIRES: the definition's
// quantile fields were validated (the registry does; the collector checks SketchIsSane).
internal::SketchLayout MakeSketchLayout(const Definition& d);
// Whether untrusted sketch parameters give a sketch of bounded size.
bool SketchIsSane(const Definition& d);
// Largest number of cells a quantile sketch may have (slices * buckets).
inline constexpr uint64_t kMaxSketchCells = uint64_t{1} << 18;

std::string EncodeDefinition(const Definition& d);
// Decodes untrusted bytes; every length is checked.
absl::StatusOr<Definition> DecodeDefinition(std::string_view bytes);

// A label-value key: for each value, its length (u32 little-endian) then its bytes.
void AppendKeyPart(std::string* out, std::string_view value);
// Splits a key into its values; false when malformed or not exactly `expected` values.
bool SplitKey(std::string_view key, size_t expected, std::vector<std::string_view>* values);
// The same, handing value i to set(i, value) instead of collecting them; inline because the
// collector splits one key per series. set may be called before a malformed key is found.
template <typename Set>
inline bool SplitKeyInto(std::string_view key, size_t expected, Set&& set) {
  const char* p = key.data();
  size_t left = key.size();
  size_t i = 0;
  while (left != 0) {
    if (left < 4 || i >= expected) return false;
    uint32_t n;
    std::memcpy(&n, p, 4);
    p += 4;
    left -= 4;
    if (n > left) return false;
    set(i++, std::string_view(p, n));
    p += n;
    left -= n;
  }
  return i == expected;
}

}  // namespace shmetrics::meters

#endif  // SHMETRICS_SRC_METERS_LAYOUT_H_
