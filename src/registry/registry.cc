// Registration: the Registry's Add* calls and the three steps of Register (see definition.h,
// heap_records.h and the family objects below); the process-wide fork bookkeeping of registries.
#include "shmetrics/registry.h"

#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "meters/layout.h"
#include "meters/meter_types.h"
#include "meters/names.h"
#include "registry/definition.h"
#include "registry/heap_records.h"
#include "shm/heap_access.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"

namespace shmetrics {

using meters::Definition;
using meters::FamilyRecord;
using registry::Describe;
using registry::Quoted;
using registry::ValidateLabelName;
using registry::ValidateLabelValue;

namespace {

// Registries alive in this process, so fork() can take their locks (see AtFork*). Never
// destroyed: a registry with static storage duration (a global, or one created lazily by a
// function-local static) may be destroyed at exit after these would have been.
std::mutex& RegistriesMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::set<std::mutex*>& RegistryMutexes() {
  static auto* s = new std::set<std::mutex*>;
  return *s;
}

// Holding every registry lock across fork() guarantees the child inherits them unlocked: a
// thread registering in the parent at that instant finishes first.
void AtForkPrepare() {
  RegistriesMutex().lock();
  for (std::mutex* m : RegistryMutexes()) m->lock();
}
void AtForkRelease() {
  for (std::mutex* m : RegistryMutexes()) m->unlock();
  RegistriesMutex().unlock();
}

void InstallAtForkOnce() {
  static const int installed = pthread_atfork(AtForkPrepare, AtForkRelease, AtForkRelease);
  (void)installed;
}

// SHMETRICS_COMMON_LABELS: name=value pairs separated by commas; spaces around a pair are
// ignored; a value runs to the next unescaped comma and may hold '='; "\," is a comma and "\\"
// a backslash in a value. A name given twice is an error.
std::map<std::string, std::string> ParseCommonLabels(std::string_view text) {
  auto bad = [](std::string why) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("SHMETRICS_COMMON_LABELS: ", why,
                       " (expected e.g. \"app=shop,region=eu\"; write a comma in a value as "
                       "\\, and a backslash as \\\\)"));
  };
  // Split at unescaped commas, unescaping as we go.
  std::vector<std::string> items(1);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ',') {
      items.emplace_back();
    } else if (c == '\\') {
      if (i + 1 == text.size() || (text[i + 1] != ',' && text[i + 1] != '\\')) {
        bad(absl::StrCat("a backslash at byte ", i, " escapes neither a comma nor a backslash"));
      }
      items.back().push_back(text[++i]);
    } else {
      items.back().push_back(c);
    }
  }
  std::map<std::string, std::string> out;
  for (std::string_view item : items) {
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      bad(absl::StrCat(Quoted(item), " is not name=value"));
    }
    if (!out.emplace(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))).second) {
      bad(absl::StrCat("label ", Quoted(item.substr(0, eq)), " is given twice"));
    }
  }
  return out;
}

// Const labels may not be a label the exposition adds itself to some family (le, quantile,
// worker_id: the meter table's reserved labels).
void CheckConstLabelName(std::string_view label) {
  for (const meters::MeterType& t : meters::AllMeterTypes()) {
    for (const meters::ReservedLabel& r : t.reserved_labels) {
      if (label == r.label) {
        Throw(absl::StatusCode::kInvalidArgument,
              absl::StrCat("const label ", Quoted(label), " is reserved for ",
                           std::string(r.reserved_for), ": the exposition adds it itself"));
      }
    }
  }
}

}  // namespace

// Makes the process-local family object (Family<Child>) of a family whose heap records exist;
// the one place that knows both the registry and the family internals (FamilyBase and Family<T>
// name it their friend).
class RegistryAccess {
 public:
  // The family object of a family of this type, not yet initialized.
  static std::unique_ptr<internal::FamilyBase> New(MetricType type);

  // Binds the family object to the family record at family_off, whose definition is def;
  // `declared` are the label names in the order the caller declared them.
  static void Init(internal::FamilyBase& f, std::shared_ptr<shm::Segment> seg, uint64_t family_off,
                   const meters::Definition& def, std::vector<std::string> declared);

 private:
  template <typename Child>
  static std::unique_ptr<internal::FamilyBase> Make() {
    return std::unique_ptr<internal::FamilyBase>(new Family<Child>());
  }
};

// --- The family object ---

// The one place that maps a type to its Family<Child>; -Wswitch names a type left out.
std::unique_ptr<internal::FamilyBase> RegistryAccess::New(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return Make<Counter>();
    case MetricType::kGauge:
      return Make<Gauge>();
    case MetricType::kHistogram:
      return Make<Histogram>();
    case MetricType::kSummary:
      return Make<Summary>();
    case MetricType::kInfo:
      return Make<Info>();
    case MetricType::kStateSet:
      return Make<StateSet>();
    case MetricType::kTimer:
      return Make<Timer>();
    case MetricType::kDistributionSummary:
      return Make<DistributionSummary>();
    case MetricType::kMaxGauge:
      return Make<MaxGauge>();
    case MetricType::kAgeGauge:
      return Make<AgeGauge>();
    case MetricType::kPercentileTimer:
      return Make<PercentileTimer>();
    case MetricType::kPercentileDistributionSummary:
      return Make<PercentileDistributionSummary>();
    case MetricType::kNativeHistogram:
      return Make<NativeHistogram>();
  }
  Throw(absl::StatusCode::kDataLoss, "unknown metric type");  // a decoded definition never has one
}

void RegistryAccess::Init(internal::FamilyBase& f, std::shared_ptr<shm::Segment> seg,
                          uint64_t family_off, const meters::Definition& def,
                          std::vector<std::string> declared) {
  const auto* rec = seg->At<meters::FamilyRecord>(family_off);
  f.segment_ = std::move(seg);
  f.family_off_ = family_off;
  f.table_off_ = rec->series_table.load(std::memory_order_acquire);
  f.name_ = def.name;
  f.type_ = def.type;
  f.declared_names_ = std::move(declared);
  f.canonical_names_ = def.label_names;
  f.to_canonical_.resize(def.label_names.size());
  for (size_t i = 0; i < def.label_names.size(); ++i) {
    f.to_canonical_[i] = static_cast<uint32_t>(
        std::find(f.declared_names_.begin(), f.declared_names_.end(), def.label_names[i]) -
        f.declared_names_.begin());
  }
  f.bounds_ = def.bounds;
  f.states_ = def.states;
  f.ttl_ns_ = def.ttl_ns;
  f.quantiles_ = def.quantiles;
  f.sketch_ = meters::MakeSketchLayout(def);
  f.percentile_first_ = def.percentile_first;
  f.percentile_last_ = def.percentile_last;
  f.native_schema_ = def.native_schema;
  f.native_zero_threshold_ = def.native_zero_threshold;
  f.native_min_index_ = def.native_min_index;
  f.native_max_index_ = def.native_max_index;
  f.native_negative_ = def.native_negative;
  f.stripes_ = rec->stripes;
  f.cells_per_stripe_ = rec->cells_per_stripe;
  f.stripe_stride_ = rec->stripe_stride;
  f.series_size_ = rec->series_size;
  f.exemplar_slots_ = rec->exemplar_slots;
  f.max_children_ = rec->max_children;
  f.dummy_ = std::make_unique<char[]>(f.series_size_ + 64);
  f.InitSeries(f.Dummy());
}

// --- Registry ---

Registry::Registry(Heap heap, RegistryOptions options)
    : heap_(std::move(heap)), prefix_(options.prefix), max_children_(options.max_children) {
  if (!prefix_.empty() && !meters::IsValidMetricName(prefix_)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("invalid registry prefix ", Quoted(prefix_),
                       ": must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (options.read_environment) {
    if (const char* env = std::getenv("SHMETRICS_COMMON_LABELS"); env != nullptr) {
      const_labels_ = ParseCommonLabels(env);
    }
  }
  for (auto& [k, v] : options.const_labels) const_labels_[k] = v;
  for (const auto& [k, v] : const_labels_) {
    ValidateLabelName("(const labels)", k);
    CheckConstLabelName(k);
    ValidateLabelValue("(const labels)", k, v);
  }
  InstallAtForkOnce();
  std::scoped_lock lock(RegistriesMutex());
  RegistryMutexes().insert(&mu_);
}

Registry::~Registry() {
  std::scoped_lock lock(RegistriesMutex());
  RegistryMutexes().erase(&mu_);
}

CounterFamily& Registry::AddCounter(std::string_view name, std::string_view help, LabelNames labels,
                                    const CounterOptions& options) {
  return static_cast<CounterFamily&>(Register({.type = MetricType::kCounter,
                                               .name = name,
                                               .help = help,
                                               .labels = std::move(labels),
                                               .unit = options.unit,
                                               .max_children = options.max_children,
                                               .striped = options.striped}));
}

GaugeFamily& Registry::AddGauge(std::string_view name, std::string_view help, LabelNames labels,
                                const GaugeOptions& options) {
  return static_cast<GaugeFamily&>(Register({.type = MetricType::kGauge,
                                             .name = name,
                                             .help = help,
                                             .labels = std::move(labels),
                                             .unit = options.unit,
                                             .max_children = options.max_children,
                                             .gauge_mode = options.mode,
                                             .ttl_ns = options.ttl.count()}));
}

HistogramFamily& Registry::AddHistogram(std::string_view name, std::string_view help,
                                        LabelNames labels, const HistogramOptions& options) {
  return static_cast<HistogramFamily&>(
      Register({.type = MetricType::kHistogram,
                .name = name,
                .help = help,
                .labels = std::move(labels),
                .unit = options.unit,
                .max_children = options.max_children,
                .bounds = options.buckets.empty() ? DefaultBuckets() : options.buckets}));
}

SummaryFamily& Registry::AddSummary(std::string_view name, std::string_view help, LabelNames labels,
                                    const SummaryOptions& options) {
  return static_cast<SummaryFamily&>(Register({.type = MetricType::kSummary,
                                               .name = name,
                                               .help = help,
                                               .labels = std::move(labels),
                                               .unit = options.unit,
                                               .max_children = options.max_children,
                                               .summary = &options}));
}

InfoFamily& Registry::AddInfo(std::string_view name, std::string_view help, LabelNames labels) {
  return static_cast<InfoFamily&>(Register(
      {.type = MetricType::kInfo, .name = name, .help = help, .labels = std::move(labels)}));
}

StateSetFamily& Registry::AddStateSet(std::string_view name, std::string_view help,
                                      LabelNames labels, std::vector<std::string> states) {
  return static_cast<StateSetFamily&>(Register({.type = MetricType::kStateSet,
                                                .name = name,
                                                .help = help,
                                                .labels = std::move(labels),
                                                .states = std::move(states)}));
}

TimerFamily& Registry::AddTimer(std::string_view name, std::string_view help, LabelNames labels,
                                const TimerOptions& options) {
  return static_cast<TimerFamily&>(Register({.type = MetricType::kTimer,
                                             .name = name,
                                             .help = help,
                                             .labels = std::move(labels),
                                             .unit = "seconds",
                                             .max_children = options.max_children}));
}

DistributionSummaryFamily& Registry::AddDistributionSummary(
    std::string_view name, std::string_view help, LabelNames labels,
    const DistributionSummaryOptions& options) {
  return static_cast<DistributionSummaryFamily&>(Register({.type = MetricType::kDistributionSummary,
                                                           .name = name,
                                                           .help = help,
                                                           .labels = std::move(labels),
                                                           .unit = options.unit,
                                                           .max_children = options.max_children}));
}

MaxGaugeFamily& Registry::AddMaxGauge(std::string_view name, std::string_view help,
                                      LabelNames labels, const MetricOptions& options) {
  return static_cast<MaxGaugeFamily&>(Register({.type = MetricType::kMaxGauge,
                                                .name = name,
                                                .help = help,
                                                .labels = std::move(labels),
                                                .unit = options.unit,
                                                .max_children = options.max_children}));
}

AgeGaugeFamily& Registry::AddAgeGauge(std::string_view name, std::string_view help,
                                      LabelNames labels, const MetricOptions& options) {
  if (!options.unit.empty() && options.unit != "seconds") {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("age gauge ", Quoted(name), " is in seconds; got unit ",
                       Quoted(options.unit)));
  }
  return static_cast<AgeGaugeFamily&>(Register({.type = MetricType::kAgeGauge,
                                                .name = name,
                                                .help = help,
                                                .labels = std::move(labels),
                                                .unit = "seconds",
                                                .max_children = options.max_children}));
}

PercentileTimerFamily& Registry::AddPercentileTimer(std::string_view name, std::string_view help,
                                                    LabelNames labels,
                                                    const PercentileTimerOptions& options) {
  return static_cast<PercentileTimerFamily&>(Register({.type = MetricType::kPercentileTimer,
                                                       .name = name,
                                                       .help = help,
                                                       .labels = std::move(labels),
                                                       .unit = "seconds",
                                                       .max_children = options.max_children,
                                                       .percentile_min = options.min.count(),
                                                       .percentile_max = options.max.count()}));
}

PercentileDistributionSummaryFamily& Registry::AddPercentileDistributionSummary(
    std::string_view name, std::string_view help, LabelNames labels,
    const PercentileDistributionSummaryOptions& options) {
  return static_cast<PercentileDistributionSummaryFamily&>(
      Register({.type = MetricType::kPercentileDistributionSummary,
                .name = name,
                .help = help,
                .labels = std::move(labels),
                .unit = options.unit,
                .max_children = options.max_children,
                .percentile_min = options.min,
                .percentile_max = options.max}));
}

NativeHistogramFamily& Registry::AddNativeHistogram(std::string_view name, std::string_view help,
                                                    LabelNames labels,
                                                    const NativeHistogramOptions& options) {
  return static_cast<NativeHistogramFamily&>(Register({.type = MetricType::kNativeHistogram,
                                                       .name = name,
                                                       .help = help,
                                                       .labels = std::move(labels),
                                                       .unit = options.unit,
                                                       .max_children = options.max_children,
                                                       .native = &options}));
}

internal::FamilyBase& Registry::Register(Spec spec) {
  const Definition def = registry::MakeDefinition(spec, prefix_, const_labels_);
  const std::string& name = def.name;
  auto refuse = [&](std::string_view where, const Definition& existing) {
    Throw(absl::StatusCode::kAlreadyExists,
          absl::StrCat("metric ", Quoted(name), " is already registered", std::string(where),
                       " as a ", Describe(existing), "; cannot register it as a ", Describe(def),
                       " (", registry::Differences(existing, def), ")"));
  };

  // --- This process already has it? ---
  // The same label names in another order are the same family (the heap keeps them sorted);
  // each declared order has its own family object, whose Labels(...) follow that order.
  std::scoped_lock lock(mu_);
  std::vector<std::unique_ptr<internal::FamilyBase>>* objects = nullptr;
  if (auto it = families_.find(name); it != families_.end()) {
    objects = &it->second;
    const internal::FamilyBase& first = *objects->front();
    const Definition existing =
        registry::ReadHeapDefinition(shm::HeapAccess::segment(heap_), first.offset(), name);
    if (!existing.SameShape(def)) refuse("", existing);
    for (const auto& f : *objects) {
      if (f->label_names() == spec.labels) return *f;
    }
  }

  // --- The heap has it, or we create it ---
  shm::Segment& seg = shm::HeapAccess::segment(heap_);
  uint64_t family_off = objects != nullptr ? objects->front()->offset() : 0;
  if (family_off == 0) {
    const uint64_t root = seg.header().root_table.load(std::memory_order_acquire);
    family_off = seg.Find(root, name);
    if (family_off == 0 && seg.read_only()) {
      Throw(absl::StatusCode::kFailedPrecondition,
            absl::StrCat("cannot register ", Quoted(name), ": the heap is open read-only"));
    }
    if (family_off == 0) {
      shm::MutexLock heap_lock(seg.lock());
      family_off = seg.Find(root, name);
      if (family_off == 0) {
        registry::CheckClaimedNames(seg, root, def);
        family_off = registry::CreateFamilyRecords(
            seg, root, def, spec.max_children != 0 ? spec.max_children : max_children_);
      }
    }
  }
  // Compare with what the heap holds (another process may have registered it first).
  const Definition existing = registry::ReadHeapDefinition(seg, family_off, name);
  if (!existing.SameShape(def)) refuse(" in the heap", existing);

  // --- The family object ---
  std::unique_ptr<internal::FamilyBase> family = RegistryAccess::New(existing.type);
  RegistryAccess::Init(*family, shm::HeapAccess::segment_ptr(heap_), family_off, existing,
                       spec.labels);
  internal::FamilyBase& ref = *family;
  families_[name].push_back(std::move(family));
  // A family without labels exists at zero from registration on.
  if (spec.labels.empty()) (void)ref.Lookup({});
  return ref;
}

}  // namespace shmetrics
