#include "meters/meter_types.h"

#include <algorithm>
#include <array>

#include "meters/native_histogram.h"
#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/meter_types.h"
#include "shmetrics/internal/percentile_buckets.h"
#include "shmetrics/max_gauge.h"
#include "shmetrics/native_histogram.h"

namespace shmetrics::meters {
namespace {

using expose::MetricType::kCounter;
using expose::MetricType::kGauge;
using expose::MetricType::kHistogram;
using expose::MetricType::kInfo;
using expose::MetricType::kStateSet;
using expose::MetricType::kSummary;

constexpr std::string_view kCounterReserved[] = {"_created"};
constexpr std::string_view kCounterSamples[] = {"_total", "_created"};
constexpr std::string_view kHistogramSuffixes[] = {"_bucket", "_count", "_sum", "_created"};
constexpr std::string_view kSummarySuffixes[] = {"_count", "_sum", "_created"};
constexpr std::string_view kSpectatorReserved[] = {"_count", "_sum", "_created", "_max",
                                                   "_sum_of_squares"};
constexpr std::string_view kInfoSamples[] = {"_info"};

constexpr ReservedLabel kBucketLabel[] = {{"le", "histograms (bucket bound)"}};
constexpr ReservedLabel kQuantileLabel[] = {{"quantile", "summaries"}};
constexpr ReservedLabel kWorkerLabel[] = {{"worker_id", "per-worker gauges", true}};

constexpr CompanionFamily kTimerCompanions[] = {
    {"_max", "Largest duration since the previous scrape, in seconds."},
    {"_sum_of_squares", "Sum of the squares of the durations, in seconds squared."}};
constexpr CompanionFamily kDistributionCompanions[] = {
    {"_max", "Largest amount since the previous scrape."},
    {"_sum_of_squares", "Sum of the squares of the amounts."}};

uint32_t OneCell(const Definition&) { return internal::SingleCell::kCells; }
uint32_t CounterCellCount(const Definition&) { return internal::CounterCells::kCount; }
uint32_t GaugeCellCount(const Definition& d) {
  using internal::GaugeCells;
  if (d.gauge_mode != GaugeMode::kShared) return GaugeCells::kPerWorker;
  return d.ttl_ns != 0 ? GaugeCells::kSharedWithTtl : GaugeCells::kShared;
}
uint32_t HistogramCellCount(const Definition& d) {
  // The buckets: one per bound and +Inf.
  return internal::HistogramCells::kFirstBucket + static_cast<uint32_t>(d.bounds.size()) + 1;
}
uint32_t SummaryCellCount(const Definition& d) {
  return internal::SummaryCells::kSketch + static_cast<uint32_t>(MakeSketchLayout(d).cells());
}
uint32_t SpectatorCellCount(const Definition&) { return internal::SpectatorCells::kCells; }
uint32_t PercentileCellCount(const Definition& d) {
  // One count per kept bucket: bounds has one entry for each.
  return internal::PercentileBucketCells::kFirstBucket + static_cast<uint32_t>(d.bounds.size());
}

uint32_t NativeCellCount(const Definition& d) {
  // The sum, the zero bucket and the buckets; an insane range is caught by NativeParametersSane
  // before any series is read.
  const uint64_t buckets = NativeParametersSane(d) ? NativeBucketCells(d) : 0;
  return internal::NativeHistogramCells::kFirstBucket + static_cast<uint32_t>(buckets);
}

bool PercentileRangeIsSane(const Definition& d) {
  return d.percentile_first <= d.percentile_last &&
         d.percentile_last < internal::percentile_buckets::kLength &&
         d.bounds.size() == d.percentile_last - d.percentile_first + 1;
}

// Indexed by the MetricType value minus one; kMeterTypes[i].type checks the order.
constexpr MeterType kMeterTypes[] = {
    {.type = MetricType::kCounter,
     .name = "counter",
     .exposed = kCounter,
     .dropped_suffix = "_total",
     .reserved_suffixes = kCounterReserved,
     .sample_suffixes = kCounterSamples,
     .stripes = StripeRule::kPerWorkerWhenStriped,
     .cells_per_stripe = CounterCellCount,
     .exemplar_slots = 1},
    {.type = MetricType::kGauge,
     .name = "gauge",
     .exposed = kGauge,
     .reserved_labels = kWorkerLabel,
     .stripes = StripeRule::kPerWorkerGaugeModes,
     .cells_per_stripe = GaugeCellCount},
    {.type = MetricType::kHistogram,
     .name = "histogram",
     .exposed = kHistogram,
     .reserved_suffixes = kHistogramSuffixes,
     .sample_suffixes = kHistogramSuffixes,
     .reserved_labels = kBucketLabel,
     .cells_per_stripe = HistogramCellCount,
     .exemplar_slots_per_bucket = 1},
    {.type = MetricType::kSummary,
     .name = "summary",
     .exposed = kSummary,
     .reserved_suffixes = kSummarySuffixes,
     .sample_suffixes = kSummarySuffixes,
     .reserved_labels = kQuantileLabel,
     .cells_per_stripe = SummaryCellCount},
    {.type = MetricType::kInfo,
     .name = "info",
     .exposed = kInfo,
     .dropped_suffix = "_info",
     .sample_suffixes = kInfoSamples,
     .cells_per_stripe = OneCell},
    {.type = MetricType::kStateSet,
     .name = "stateset",
     .exposed = kStateSet,
     .name_is_label = true,
     .cells_per_stripe = OneCell},
    {.type = MetricType::kTimer,
     .name = "timer",
     .exposed = kSummary,
     .reserved_suffixes = kSpectatorReserved,
     .sample_suffixes = kSummarySuffixes,
     .reserved_labels = kQuantileLabel,
     .companions = kTimerCompanions,
     .cells_per_stripe = SpectatorCellCount},
    {.type = MetricType::kDistributionSummary,
     .name = "distribution summary",
     .exposed = kSummary,
     .reserved_suffixes = kSpectatorReserved,
     .sample_suffixes = kSummarySuffixes,
     .reserved_labels = kQuantileLabel,
     .companions = kDistributionCompanions,
     .cells_per_stripe = SpectatorCellCount},
    {.type = MetricType::kMaxGauge,
     .name = "max gauge",
     .exposed = kGauge,
     .cells_per_stripe = OneCell,
     .initial_value = internal::kEmptyMaxBits},
    {.type = MetricType::kAgeGauge,
     .name = "age gauge",
     .exposed = kGauge,
     .cells_per_stripe = OneCell},
    {.type = MetricType::kPercentileTimer,
     .name = "percentile timer",
     .exposed = kHistogram,
     .reserved_suffixes = kHistogramSuffixes,
     .sample_suffixes = kHistogramSuffixes,
     .reserved_labels = kBucketLabel,
     .cells_per_stripe = PercentileCellCount,
     .parameters_sane = PercentileRangeIsSane},
    {.type = MetricType::kPercentileDistributionSummary,
     .name = "percentile distribution summary",
     .exposed = kHistogram,
     .reserved_suffixes = kHistogramSuffixes,
     .sample_suffixes = kHistogramSuffixes,
     .reserved_labels = kBucketLabel,
     .cells_per_stripe = PercentileCellCount,
     .parameters_sane = PercentileRangeIsSane},
    {.type = MetricType::kNativeHistogram,
     .name = "native histogram",
     .exposed = kHistogram,
     .reserved_suffixes = kHistogramSuffixes,
     .sample_suffixes = kHistogramSuffixes,
     .reserved_labels = kBucketLabel,
     .cells_per_stripe = NativeCellCount,
     .exemplar_slots = NativeHistogram::kExemplarSlots,
     .parameters_sane = NativeParametersSane},
};

constexpr bool InOrder() {
  for (size_t i = 0; i < std::size(kMeterTypes); ++i) {
    if (static_cast<uint32_t>(kMeterTypes[i].type) != i + 1) return false;
  }
  return true;
}
static_assert(InOrder(), "kMeterTypes[i] describes MetricType value i + 1");

}  // namespace

const MeterType* FindMeterType(uint32_t type) {
  if (type < 1 || type > std::size(kMeterTypes)) return nullptr;
  return &kMeterTypes[type - 1];
}

const MeterType& MeterTypeOf(MetricType type) {
  return *FindMeterType(static_cast<uint32_t>(type));
}

std::span<const MeterType> AllMeterTypes() { return kMeterTypes; }

bool OneSeriesPerWorker(GaugeMode mode) {
  return mode == GaugeMode::kAll || mode == GaugeMode::kLiveAll;
}

SeriesShape ShapeOf(const Definition& d, uint32_t max_workers) {
  const MeterType& t = MeterTypeOf(d.type);
  SeriesShape s;
  s.cells_per_stripe = t.cells_per_stripe(d);
  s.stripes = 1;
  s.stripe_stride = s.cells_per_stripe;
  s.exemplar_slots = ExemplarSlots(d);
  const uint32_t line = std::max<uint32_t>(1, 64 / sizeof(internal::Cell));
  if (t.stripes == StripeRule::kPerWorkerWhenStriped && d.striped) {
    s.stripes = max_workers + 1;
    s.stripe_stride = std::max(s.cells_per_stripe, line);
  }
  if (t.stripes == StripeRule::kPerWorkerGaugeModes && d.gauge_mode != GaugeMode::kShared) {
    s.stripes = max_workers + 1;
  }
  s.series_size =
      internal::kSeriesCellsOffset + uint64_t{s.stripes} * s.stripe_stride * sizeof(internal::Cell);
  return s;
}

namespace {

std::vector<std::string> Claims(std::string_view name, const MeterType& t) {
  std::vector<std::string> out{std::string(name)};
  for (std::string_view s : t.sample_suffixes) out.push_back(std::string(name) + std::string(s));
  for (const CompanionFamily& c : t.companions)
    out.push_back(std::string(name) + std::string(c.suffix));
  return out;
}

std::vector<std::string_view> CollectClaimSuffixes() {
  std::vector<std::string_view> out;
  auto add = [&](std::string_view s) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  for (const MeterType& t : kMeterTypes) {
    for (std::string_view s : t.sample_suffixes) add(s);
    for (const CompanionFamily& c : t.companions) add(c.suffix);
  }
  return out;
}

}  // namespace

std::vector<std::string> ClaimedNames(const Definition& d) {
  return Claims(d.name, MeterTypeOf(d.type));
}

std::vector<std::string> ClaimedNames(std::string_view name, expose::MetricType type) {
  for (const MeterType& t : kMeterTypes) {
    if (t.exposed == type) {
      std::vector<std::string> out{std::string(name)};
      for (std::string_view s : t.sample_suffixes)
        out.push_back(std::string(name) + std::string(s));
      return out;
    }
  }
  return {std::string(name)};
}

std::span<const std::string_view> ClaimSuffixes() {
  static const auto* suffixes = new std::vector<std::string_view>(CollectClaimSuffixes());
  return *suffixes;
}

bool ParametersAreSane(const Definition& d) {
  if (!SketchIsSane(d)) return false;
  const MeterType* t = FindMeterType(static_cast<uint32_t>(d.type));
  return t != nullptr && (t->parameters_sane == nullptr || t->parameters_sane(d));
}

}  // namespace shmetrics::meters
