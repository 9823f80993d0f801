// shmetrics::Registry: registers metric families in a heap and hands out their children.
//
// A Registry is a process-local view of the families in a heap. Registering a family writes its
// definition into the heap once; registering the same definition again — in this process, in a
// forked worker, or in an unrelated process — returns the same family, so every process shares
// the same series. A definition that conflicts (another type, set of label names, unit or
// buckets), or whose exposition would share a sample name with another family's, throws Error
// kAlreadyExists. Several registries may share one heap, each with its own name prefix (a
// namespace).
//
// A family has fixed label names; Labels(values...) returns a child handle (Counter, Gauge, ...).
// A lookup of an existing child is a lock-free hash probe in the heap; creating one takes the
// heap's robust mutex, which a dying process cannot leave held. A family of no labels has its one
// child from registration on, so the first scrape shows it at 0. Past the family's child limit,
// or when the heap is full, Labels() returns the overflow child (every label "__overflow__"),
// counted in shmetrics_series_overflow_total{family=...}: never an exception on the update path.
// Registration sets aside the overflow child's space (a series record and an index entry), so
// it can always be created, however full the heap (failed allocations are counted in
// shmetrics_heap_allocation_failures_total). Existing series, the collector and the endpoint
// keep working. Only a heap opened read-only, or one whose overflow child was removed after
// its space was used, hands out a detached child, whose updates go nowhere.
//
// Thread safety: all methods are safe from any thread. Process safety: see above.
// Fork safety: a child may register and look up children right after fork(), even if other
// threads of the parent were registering at that moment.
//
// Errors: registration and Labels() with wrong or invalid label values throw shmetrics::Error
// (kInvalidArgument, kAlreadyExists); see each method.
//
// Example:
//   shmetrics::Registry registry(heap, {.prefix = "shop"});
//   auto& requests = registry.AddCounter("http_requests", "Requests served", {"method", "code"});
//   requests.Labels("GET", "200").Inc();                        // shop_http_requests_total
//   requests.Labels({{"code", "200"}, {"method", "GET"}}).Inc();  // the same series
#ifndef SHMETRICS_REGISTRY_H_
#define SHMETRICS_REGISTRY_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shmetrics/age_gauge.h"
#include "shmetrics/counter.h"
#include "shmetrics/distribution_summary.h"
#include "shmetrics/error.h"
#include "shmetrics/gauge.h"
#include "shmetrics/heap.h"
#include "shmetrics/histogram.h"
#include "shmetrics/info.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/max_gauge.h"
#include "shmetrics/native_histogram.h"
#include "shmetrics/percentile_timer.h"
#include "shmetrics/summary.h"
#include "shmetrics/timer.h"

namespace shmetrics {

// Limits enforced at registration and lookup. Prometheus and OpenMetrics set no length limit on
// names (a Prometheus server may: label_name_length_limit); these bounds keep a mistaken name
// from filling the heap. A metric name counts the registry prefix and the unit suffix; a
// stateset's name is also a label name. An empty HELP text is accepted (no HELP line is
// written); the help of a family is the first registration's.
inline constexpr size_t kMaxMetricNameBytes = 1024;
inline constexpr size_t kMaxLabelNameBytes = 256;
inline constexpr size_t kMaxLabelValueBytes = 4096;
inline constexpr size_t kMaxHelpBytes = 16384;
inline constexpr size_t kMaxBuckets = 1024;
inline constexpr size_t kMaxStates = 64;
// Bucket cells of a native histogram's series, negative ones included (8 bytes each).
inline constexpr size_t kMaxNativeBuckets = 16384;
inline constexpr size_t kMaxLabels = 32;
// The value of every label of the overflow child.
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";

using LabelNames = std::vector<std::string>;
using LabelPairs = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Options of every family type. Use designated initializers: {.unit = "seconds"}.
struct MetricOptions {
  // Default: none. OpenMetrics unit, e.g. "seconds" or "bytes"; the name is given the suffix
  // `_<unit>` if it lacks it.
  std::string unit = {};
  // Default: 0, the registry's default (RegistryOptions::max_children). Children past this
  // limit share the overflow child.
  uint32_t max_children = 0;
};

struct CounterOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: false. Give each worker its own cache line for this counter (the collector adds
  // them up), so the hottest counters scale with workers instead of bouncing one line between
  // cores. Costs max_workers cache lines per child.
  bool striped = false;
};

struct GaugeOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: kShared. See GaugeMode.
  GaugeMode mode = GaugeMode::kShared;
  // Default: 0, off. A time-to-live, as Spectator gives gauges (it uses 15 minutes): a series
  // (for per-worker modes, a worker's value) not set for longer than ttl is not exposed, and
  // with a ttl setting NaN stops exposing it too, until the next Set. A series never set is not
  // exposed. REQUIRES: 0 or at least 1 ms. Costs a shared gauge a second cell and a second
  // relaxed store per update (a clock read, vDSO); per-worker gauges stamp their sets anyway.
  std::chrono::nanoseconds ttl = std::chrono::nanoseconds(0);
};
// Spectator's default gauge time-to-live.
inline constexpr std::chrono::minutes kSpectatorGaugeTtl{15};

struct SummaryOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: none (count and sum only). Quantiles to report over the sliding window, each in
  // [0, 1], no NaN, no duplicates, at most 64; given in any order, reported ascending.
  std::vector<double> quantiles = {};
  // Default: 10 minutes. The sliding window of the quantiles. REQUIRES: max_age / age_buckets is
  // at least 100 ms (the coarse clock's resolution is a few ms).
  std::chrono::nanoseconds max_age = std::chrono::minutes(10);
  // Default: 5. Time slices the window is cut into (1..1024); the window slides by one slice.
  uint32_t age_buckets = 5;
  // Default: 0.01. Relative error bound of every quantile inside [min_value, max_value], in
  // [0.0001, 0.5]. Smaller costs more cells: about 1 / (2 * relative_accuracy) per octave.
  double relative_accuracy = 0.01;
  // Default: 1e-6 and 1e6. The range with the relative error bound (see summary.h).
  // REQUIRES: 0 < min_value <= max_value, finite; at most 2^18 cells in all.
  double min_value = 1e-6;
  double max_value = 1e6;
};

struct TimerOptions {
  uint32_t max_children = 0;  // as MetricOptions::max_children
};

struct DistributionSummaryOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
};

struct PercentileTimerOptions {
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: 0 and the int64 maximum of nanoseconds (all 276 buckets). Durations are clamped
  // into [min, max] and only the buckets in between exist. REQUIRES: 0 <= min <= max.
  std::chrono::nanoseconds min = std::chrono::nanoseconds(0);
  std::chrono::nanoseconds max = std::chrono::nanoseconds::max();
};

struct PercentileDistributionSummaryOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: 0 and the int64 maximum (all 276 buckets), as PercentileTimerOptions.
  int64_t min = 0;
  int64_t max = INT64_MAX;
};

struct HistogramOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: DefaultBuckets(). Finite, strictly increasing, no NaN; +Inf is implied (a trailing
  // +Inf is accepted and dropped).
  std::vector<double> buckets = {};
};

struct NativeHistogramOptions {
  std::string unit = {};      // as MetricOptions::unit
  uint32_t max_children = 0;  // as MetricOptions::max_children
  // Default: 3 (8 buckets per doubling, 9% relative error). -4..8; the resolution is
  // 2^(2^-schema), and each step up doubles the buckets of a range.
  int32_t schema = 3;
  // Default: 2^-128, as client_golang. |v| at most this counts in the zero bucket. Finite,
  // >= 0, below min_value.
  double zero_threshold = 0x1p-128;
  // Default: 1e-6 and 1e4, latencies in seconds from 1 us to 2.8 hours. The magnitudes with
  // buckets of their own: the series keeps the buckets from the one holding min_value to the
  // one holding max_value; values beyond count in the outermost of them. At schema 3 the
  // defaults are 267 buckets, 2.1 KB per series. REQUIRES: 0 < min_value <= max_value, finite,
  // and at most kMaxNativeBuckets buckets (with negative buckets, twice the range).
  double min_value = 1e-6;
  double max_value = 1e4;
  // Default: false: negative values count in the zero bucket (latencies and sizes are never
  // negative). true gives them buckets of their own, doubling the series.
  bool negative_buckets = false;
  // Default: 160, as client_golang. A scrape showing more non-empty buckets lowers the schema
  // (down to -4) until it shows at most this many; 0: no limit.
  uint32_t max_buckets = 160;
};

struct RegistryOptions {
  // Default: none. Prefix of every metric name ("shop" makes "shop_http_requests"): a valid
  // metric name, so it may hold ':' ("ns:sub" makes "ns:sub_x"); a stateset's full name is
  // also a label name, so a prefix with ':' refuses every stateset (kInvalidArgument).
  std::string prefix = {};
  // Default: none. Labels added to every series of every family of this registry. Refused
  // (kInvalidArgument): names the exposition adds itself ("le", "quantile", "worker_id"),
  // invalid or "__" names; a family that declares a const label's name, or a stateset named
  // like one, is refused at registration.
  std::map<std::string, std::string> const_labels = {};
  // Default: true. Also read common labels from SHMETRICS_COMMON_LABELS ("app=shop,region=eu"),
  // as Spectator does with common tags. Explicit const_labels win over the variable. Pairs are
  // separated by commas, spaces around a pair are ignored, a value runs from the first '=' to
  // the next unescaped comma (so it may hold '='); write a comma in a value as "\," and a
  // backslash as "\\". A name given twice, a pair without '=' or any other backslash is an
  // error (kInvalidArgument), as are the names refused in const_labels.
  bool read_environment = true;
  // Default: 10000. Children per family before the overflow child is used.
  uint32_t max_children = 10000;
};

template <typename Child>
class Family : public internal::FamilyBase {
 public:
  // The child for these label values, in the order the label names were declared.
  // Throws Error kInvalidArgument on a wrong number of values, a value that is not UTF-8 or
  // longer than kMaxLabelValueBytes (only checked when the child is created).
  template <typename... V>
  Child Labels(const V&... values) const {
    const std::array<std::string_view, sizeof...(V)> v{std::string_view(values)...};
    return Child(Lookup(v));
  }
  Child Labels(std::span<const std::string_view> values) const { return Child(Lookup(values)); }
  // The child for a label set given as name/value pairs in any order.
  Child Labels(LabelPairs labels) const {
    return Child(LookupMap({labels.begin(), labels.size()}));
  }

  // Removes a child from the heap (every process stops seeing it); its space is reused.
  // Returns false when there was no such child.
  template <typename... V>
  bool Remove(const V&... values) const {
    const std::array<std::string_view, sizeof...(V)> v{std::string_view(values)...};
    return FamilyBase::Remove(v);
  }
  // Removes every child (a family of no labels keeps its one child, reset to zero).
  void Clear() const { FamilyBase::Clear(); }

 private:
  friend class RegistryAccess;
  Family() = default;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
using SummaryFamily = Family<Summary>;
using InfoFamily = Family<Info>;
using StateSetFamily = Family<StateSet>;
using TimerFamily = Family<Timer>;
using DistributionSummaryFamily = Family<DistributionSummary>;
using MaxGaugeFamily = Family<MaxGauge>;
using AgeGaugeFamily = Family<AgeGauge>;
using PercentileTimerFamily = Family<PercentileTimer>;
using PercentileDistributionSummaryFamily = Family<PercentileDistributionSummary>;
using NativeHistogramFamily = Family<NativeHistogram>;

namespace internal {
struct FamilySpec;
}  // namespace internal

class Registry {
 public:
  // Throws Error kInvalidArgument for an invalid prefix or const label (see RegistryOptions),
  // or a malformed SHMETRICS_COMMON_LABELS.
  explicit Registry(Heap heap, RegistryOptions options = {});
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // Each Add* throws Error kInvalidArgument (invalid or reserved names, more than kMaxLabels
  // labels, help over kMaxHelpBytes or not UTF-8, bad buckets or states), kAlreadyExists (the
  // name is registered with another definition), kFailedPrecondition (a read-only heap, and the
  // family is not registered yet), kResourceExhausted (the heap is full) or kDataLoss (the
  // heap's record of the family is corrupt). Nothing is recorded when it throws. The returned
  // family lives as long as the registry.
  //
  // kAlreadyExists also when a name the family's exposition writes — its name, its sample
  // names (counter N: N_total and N_created; histogram N: N_bucket, N_count, N_sum, N_created;
  // summary, timer, distribution summary N: N_count, N_sum, N_created; info N: N_info) or its
  // companion families (timer N: N_max, N_sum_of_squares) — is one another family of the heap
  // writes, or one the collector writes itself (shmetrics_*, process_*): counter "x" and gauge
  // "x_total" cannot both exist. The message names both families and the sample.
  //
  // The same label names in another order are the same family, in this process and in any
  // other: the returned family's Labels(values...) take the values in the order of this call
  // (a family object per declared order; every one shares the same series).
  //
  // Counter names may end in "_total"; it is dropped from the family name and exposed again.
  CounterFamily& AddCounter(std::string_view name, std::string_view help, LabelNames labels = {},
                            const CounterOptions& options = {});
  GaugeFamily& AddGauge(std::string_view name, std::string_view help, LabelNames labels = {},
                        const GaugeOptions& options = {});
  HistogramFamily& AddHistogram(std::string_view name, std::string_view help,
                                LabelNames labels = {}, const HistogramOptions& options = {});
  // With SummaryOptions::quantiles the label "quantile" is reserved and the quantiles are
  // validated (see SummaryOptions).
  SummaryFamily& AddSummary(std::string_view name, std::string_view help, LabelNames labels = {},
                            const SummaryOptions& options = {});
  InfoFamily& AddInfo(std::string_view name, std::string_view help, LabelNames labels);
  // Spectator's meters. Timers and percentile timers have the unit "seconds" (appended to the
  // name when missing). A timer or distribution summary named N also owns the names N_max and
  // N_sum_of_squares (see timer.h): kAlreadyExists when either is taken, and later families of
  // those names are refused.
  TimerFamily& AddTimer(std::string_view name, std::string_view help, LabelNames labels = {},
                        const TimerOptions& options = {});
  DistributionSummaryFamily& AddDistributionSummary(std::string_view name, std::string_view help,
                                                    LabelNames labels = {},
                                                    const DistributionSummaryOptions& options = {});
  MaxGaugeFamily& AddMaxGauge(std::string_view name, std::string_view help, LabelNames labels = {},
                              const MetricOptions& options = {});
  AgeGaugeFamily& AddAgeGauge(std::string_view name, std::string_view help, LabelNames labels = {},
                              const MetricOptions& options = {});
  // The label "le" is reserved, as for histograms.
  PercentileTimerFamily& AddPercentileTimer(std::string_view name, std::string_view help,
                                            LabelNames labels = {},
                                            const PercentileTimerOptions& options = {});
  PercentileDistributionSummaryFamily& AddPercentileDistributionSummary(
      std::string_view name, std::string_view help, LabelNames labels = {},
      const PercentileDistributionSummaryOptions& options = {});
  // Prometheus's native histogram (see native_histogram.h): exposed with the histogram type
  // and the names of a histogram (N_bucket, N_count, N_sum, N_created, the label "le").
  // kInvalidArgument for options outside NativeHistogramOptions' bounds.
  NativeHistogramFamily& AddNativeHistogram(std::string_view name, std::string_view help,
                                            LabelNames labels = {},
                                            const NativeHistogramOptions& options = {});
  StateSetFamily& AddStateSet(std::string_view name, std::string_view help, LabelNames labels,
                              std::vector<std::string> states);

  Heap& heap() { return heap_; }
  const std::map<std::string, std::string>& const_labels() const { return const_labels_; }

 private:
  using Spec = internal::FamilySpec;  // what an Add* asks for (src/registry/definition.h)
  internal::FamilyBase& Register(Spec spec);

  Heap heap_;
  std::string prefix_;
  std::map<std::string, std::string> const_labels_;
  uint32_t max_children_;
  std::mutex mu_;  // guards families_; held across fork() by an atfork handler
  // By name: one family object per order in which its label names were declared.
  std::map<std::string, std::vector<std::unique_ptr<internal::FamilyBase>>> families_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_REGISTRY_H_
