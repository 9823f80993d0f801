// One description per meter type: what registration, the series layout and the collector need
// to know about a MetricType, in one table.
//
// The cells themselves are named in shmetrics/internal/meter_types.h (the writers are inline);
// turning a series' cells into samples is src/meters/decode.cc; making the typed Family<Child>
// is RegistryAccess in src/registry/registry.cc. Everything else that depends on the type reads
// this table.
//
// Thread safety: constant data, safe from any thread.
#ifndef SHMETRICS_SRC_METERS_METER_TYPES_H_
#define SHMETRICS_SRC_METERS_METER_TYPES_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "expose/encoder.h"
#include "meters/layout.h"
#include "shmetrics/metric_type.h"

namespace shmetrics::meters {

// A label name a meter type's exposition adds itself, so a family of that type may not declare
// it. With per_worker_gauges_only, only gauges of a mode with one series per worker reserve it.
struct ReservedLabel {
  std::string_view label = {};
  std::string_view reserved_for = {};  // completes "label name "x" is reserved for ..."
  bool per_worker_gauges_only = false;
};

// A gauge family exposed beside a family of this type, named by appending `suffix`, with no
// unit (N_seconds_max does not end in _seconds).
struct CompanionFamily {
  std::string_view suffix = {};
  std::string_view help = {};
};

// How many stripes (copies of the cells) a series holds.
enum class StripeRule {
  kOne,
  kPerWorkerWhenStriped,  // counters with CounterOptions::striped: one 64-byte line per worker
  kPerWorkerGaugeModes,   // gauges of every mode but kShared: one stripe per worker
};

struct MeterType {
  MetricType type = MetricType::kCounter;
  std::string_view name = {};  // in messages: "counter", "percentile timer"
  expose::MetricType exposed = expose::MetricType::kUnknown;
  // A registered name ending in this loses it (the encoders add it back): "_total", "_info".
  std::string_view dropped_suffix = {};
  // Registration refuses names ending in one of these: the exposition uses them for samples.
  std::span<const std::string_view> reserved_suffixes = {};
  // The suffixes of the sample names the exposition writes (name[] selects a family by them).
  std::span<const std::string_view> sample_suffixes = {};
  std::span<const ReservedLabel> reserved_labels = {};
  bool name_is_label = false;  // statesets: the family name labels the states
  std::span<const CompanionFamily> companions = {};
  StripeRule stripes = StripeRule::kOne;
  uint32_t (*cells_per_stripe)(const Definition& d) = nullptr;
  uint32_t exemplar_slots_per_bucket = 0;  // per bound plus one (+Inf) when histogram-like
  uint32_t exemplar_slots = 0;             // besides the per-bucket ones
  uint64_t initial_value = 0;              // of the first cell of each stripe of a new series
  // Type-specific checks that untrusted parameters give the cells the readers expect; null
  // when there are none beyond SketchIsSane.
  bool (*parameters_sane)(const Definition& d) = nullptr;
};

// The description of a type; nullptr for a value that is no MetricType (an untrusted record).
const MeterType* FindMeterType(uint32_t type);
// REQUIRES: type is one of the enumerators.
const MeterType& MeterTypeOf(MetricType type);
std::span<const MeterType> AllMeterTypes();

// Gauges whose modes keep one series per worker reserve the worker_id label.
bool OneSeriesPerWorker(GaugeMode mode);

// Where a family's series keeps its cells.
struct SeriesShape {
  uint32_t cells_per_stripe;
  uint32_t stripes;
  uint32_t stripe_stride;  // in cells
  uint32_t exemplar_slots;
  uint64_t series_size;  // bytes of a series record, header included
};
// REQUIRES: d is valid (a validated or decoded definition).
SeriesShape ShapeOf(const Definition& d, uint32_t max_workers);

// Every name the exposition of family `d` writes, in both text formats: its family name, each
// sample name (the name plus each of the type's sample suffixes) and each companion family's
// name. No two families of one exposition may share any of these (Prometheus drops a scrape
// that holds a sample twice); the registry refuses a family that would, and VerifyMetrics
// flags a heap that holds such a pair.
std::vector<std::string> ClaimedNames(const Definition& d);
// The same for a family that is not a meter (the collector's own): the first meter type
// exposed as `type` gives the sample suffixes.
std::vector<std::string> ClaimedNames(std::string_view name, expose::MetricType type);
// Every suffix ClaimedNames appends to a family name, each once: stripping each from a claimed
// name gives the names of the families that may claim it.
std::span<const std::string_view> ClaimSuffixes();

// Whether an untrusted definition's meter parameters are consistent with its type.
bool ParametersAreSane(const Definition& d);

}  // namespace shmetrics::meters

#endif  // SHMETRICS_SRC_METERS_METER_TYPES_H_
