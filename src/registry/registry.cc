#include "shmetrics/registry.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meters/layout.h"
#include "meters/names.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/internal/percentile_buckets.h"

namespace shmetrics {

using meters::Definition;
using meters::FamilyRecord;
using meters::SeriesHeader;

namespace internal {

uint64_t NowUnixNanos() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace internal

namespace {

std::string Quoted(std::string_view s) {
  return absl::StrCat("\"", std::string(s.substr(0, 200)), s.size() > 200 ? "...\"" : "\"");
}

const char* TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kInfo:
      return "info";
    case MetricType::kStateSet:
      return "stateset";
    case MetricType::kTimer:
      return "timer";
    case MetricType::kDistributionSummary:
      return "distribution summary";
    case MetricType::kMaxGauge:
      return "max gauge";
    case MetricType::kAgeGauge:
      return "age gauge";
    case MetricType::kPercentileTimer:
      return "percentile timer";
    case MetricType::kPercentileDistributionSummary:
      return "percentile distribution summary";
  }
  return "unknown";
}

std::string Describe(const Definition& d) {
  std::string s =
      absl::StrCat(TypeName(d.type), " with labels [", absl::StrJoin(d.label_names, ", "), "]");
  if (!d.unit.empty()) absl::StrAppend(&s, ", unit ", d.unit);
  if (!d.bounds.empty()) absl::StrAppend(&s, ", buckets [", absl::StrJoin(d.bounds, ", "), "]");
  if (!d.states.empty()) absl::StrAppend(&s, ", states [", absl::StrJoin(d.states, ", "), "]");
  if (d.gauge_mode != GaugeMode::kShared) {
    absl::StrAppend(&s, ", gauge mode ", static_cast<int>(d.gauge_mode));
  }
  if (d.striped) absl::StrAppend(&s, ", striped");
  if (d.ttl_ns != 0) absl::StrAppend(&s, ", ttl ", d.ttl_ns, " ns");
  if (!d.quantiles.empty()) {
    absl::StrAppend(&s, ", quantiles [", absl::StrJoin(d.quantiles, ", "), "] over ", d.max_age_ns,
                    " ns in ", d.age_buckets, " slices, accuracy ", d.relative_accuracy, " in [",
                    d.min_value, ", ", d.max_value, "]");
  }
  if (!d.const_labels.empty()) {
    absl::StrAppend(&s, ", const labels {",
                    absl::StrJoin(d.const_labels, ", ", absl::PairFormatter("=")), "}");
  }
  return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void ValidateLabelName(std::string_view family, std::string_view label) {
  if (!meters::IsValidLabelName(label)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("invalid label name ", Quoted(label), " for metric ", Quoted(family),
                       ": must match [a-zA-Z_][a-zA-Z0-9_]*"));
  }
  if (meters::IsReservedLabelName(label)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("label name ", Quoted(label), " for metric ", Quoted(family),
                       " is reserved: names starting with \"__\" belong to Prometheus"));
  }
}

void ValidateLabelValue(std::string_view family, std::string_view label, std::string_view value) {
  if (value.size() > kMaxLabelValueBytes) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("value of label ", Quoted(label), " of metric ", Quoted(family), " is ",
                       value.size(), " bytes; the limit is ", kMaxLabelValueBytes));
  }
  if (!meters::IsValidUtf8(value)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("value of label ", Quoted(label), " of metric ", Quoted(family),
                       " is not valid UTF-8"));
  }
}

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

std::map<std::string, std::string> ParseCommonLabels(const char* text) {
  std::map<std::string, std::string> out;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("SHMETRICS_COMMON_LABELS: ", Quoted(item),
                         " is not name=value (expected e.g. \"app=shop,region=eu\")"));
    }
    out.emplace(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
  }
  return out;
}

void ValidateQuantiles(std::string_view name, const SummaryOptions& o, Definition* def) {
  auto bad = [&](std::string why) {
    Throw(absl::StatusCode::kInvalidArgument, absl::StrCat("summary ", Quoted(name), ": ", why));
  };
  std::vector<double> q = o.quantiles;
  if (q.size() > 64) bad(absl::StrCat(q.size(), " quantiles; the limit is 64"));
  for (double v : q) {
    if (!(v >= 0 && v <= 1)) bad(absl::StrCat("quantile ", v, " is not in [0, 1]"));
  }
  std::sort(q.begin(), q.end());
  for (size_t i = 1; i < q.size(); ++i) {
    if (q[i] == q[i - 1]) bad(absl::StrCat("quantile ", q[i], " is given twice"));
  }
  const auto max_age_ns = static_cast<uint64_t>(std::max<int64_t>(0, o.max_age.count()));
  if (o.age_buckets < 1 || o.age_buckets > 1024) {
    bad(absl::StrCat("age_buckets must be 1 to 1024; got ", o.age_buckets));
  }
  if (max_age_ns / o.age_buckets < 100000000) {
    bad(absl::StrCat("max_age / age_buckets must be at least 100 ms; got ",
                     max_age_ns / o.age_buckets, " ns"));
  }
  if (!(o.relative_accuracy >= 0.0001 && o.relative_accuracy <= 0.5)) {
    bad(absl::StrCat("relative_accuracy must be in [0.0001, 0.5]; got ", o.relative_accuracy));
  }
  if (!(o.min_value > 0) || !(o.max_value >= o.min_value) || !std::isfinite(o.max_value)) {
    bad(absl::StrCat("needs 0 < min_value <= max_value, finite; got ", o.min_value, " and ",
                     o.max_value));
  }
  def->quantiles = std::move(q);
  def->max_age_ns = max_age_ns;
  def->age_buckets = o.age_buckets;
  def->relative_accuracy = o.relative_accuracy;
  def->min_value = o.min_value;
  def->max_value = o.max_value;
  if (!meters::SketchIsSane(*def)) {
    bad(absl::StrCat("the quantile sketch would need more than ", meters::kMaxSketchCells,
                     " cells; narrow [min_value, max_value], raise relative_accuracy or lower "
                     "age_buckets"));
  }
}

// Percentile meters keep Spectator's buckets IndexOf(min)..IndexOf(max); their exposed bounds
// (`le`) are the largest integer each bucket holds, in seconds for timers.
void SetPercentileRange(std::string_view name, bool timer, int64_t min, int64_t max,
                        Definition* def) {
  namespace pb = internal::percentile_buckets;
  if (min < 0 || max < min) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("percentile meter ", Quoted(name), ": needs 0 <= min <= max; got ", min,
                       " and ", max));
  }
  def->percentile_first = static_cast<uint32_t>(pb::IndexOf(min));
  def->percentile_last = static_cast<uint32_t>(pb::IndexOf(max));
  def->bounds.clear();
  for (uint32_t i = def->percentile_first; i <= def->percentile_last; ++i) {
    const int64_t top = pb::LargestIn(i);
    def->bounds.push_back(timer ? static_cast<double>(top) / 1e9 : static_cast<double>(top));
  }
}

bool IsCompanionCarrier(uint32_t type) {
  return type == static_cast<uint32_t>(MetricType::kTimer) ||
         type == static_cast<uint32_t>(MetricType::kDistributionSummary);
}

// A timer or distribution summary N is exposed with two gauge families, N_max and
// N_sum_of_squares: refuse a definition that would make two families of one name.
// REQUIRES: the heap lock is held (so the check and the insert are one step for every process).
void CheckCompanionNames(const shm::Segment& seg, uint64_t root, const Definition& def) {
  static constexpr std::string_view kCompanions[] = {"_max", "_sum_of_squares"};
  auto clash = [&](std::string_view other) {
    Throw(absl::StatusCode::kAlreadyExists,
          absl::StrCat("metric ", Quoted(def.name), " would clash with metric ", Quoted(other),
                       ": a timer or distribution summary N is also exposed as N_max and "
                       "N_sum_of_squares"));
  };
  if (IsCompanionCarrier(static_cast<uint32_t>(def.type))) {
    for (std::string_view c : kCompanions) {
      const std::string other = absl::StrCat(def.name, std::string(c));
      if (seg.Find(root, other) != 0) clash(other);
    }
  }
  for (std::string_view c : kCompanions) {
    if (!EndsWith(def.name, c)) continue;
    const std::string stem = def.name.substr(0, def.name.size() - c.size());
    const uint64_t off = seg.Find(root, stem);
    if (off == 0) continue;
    const auto* rec = reinterpret_cast<const FamilyRecord*>(seg.Checked(off, sizeof(FamilyRecord)));
    if (rec != nullptr && IsCompanionCarrier(rec->type)) clash(stem);
  }
}

}  // namespace

// Builds families; the one place that knows both the registry and the family internals.
class RegistryAccess {
 public:
  template <typename Child>
  static std::unique_ptr<internal::FamilyBase> New() {
    return std::unique_ptr<internal::FamilyBase>(new Family<Child>());
  }

  static void Init(internal::FamilyBase& f, std::shared_ptr<shm::Segment> seg, uint64_t family_off,
                   const Definition& def, std::vector<std::string> declared) {
    const auto* rec = seg->At<FamilyRecord>(family_off);
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
    f.stripes_ = rec->stripes;
    f.cells_per_stripe_ = rec->cells_per_stripe;
    f.stripe_stride_ = rec->stripe_stride;
    f.series_size_ = rec->series_size;
    f.exemplar_slots_ = rec->exemplar_slots;
    f.max_children_ = rec->max_children;
    f.dummy_ = std::make_unique<char[]>(f.series_size_ + 64);
    f.InitSeries(f.Dummy());
  }
};

// --- FamilyBase ---

namespace internal {

FamilyBase::~FamilyBase() = default;

char* FamilyBase::Dummy() const {
  // 64-byte aligned inside the buffer, like a heap block would be for cells.
  auto p = reinterpret_cast<uintptr_t>(dummy_.get());
  return reinterpret_cast<char*>((p + 63) & ~uintptr_t{63});
}

std::string_view FamilyBase::BuildKey(std::span<const std::string_view> canonical, char* buf,
                                      size_t cap, std::string* spill) const {
  size_t total = 0;
  for (std::string_view v : canonical) total += 4 + v.size();
  char* out = buf;
  if (total > cap) {
    spill->resize(total);
    out = spill->data();
  }
  char* p = out;
  for (std::string_view v : canonical) {
    const auto n = static_cast<uint32_t>(v.size());
    std::memcpy(p, &n, 4);
    std::memcpy(p + 4, v.data(), v.size());
    p += 4 + v.size();
  }
  return std::string_view(out, total);
}

SeriesRef FamilyBase::Lookup(std::span<const std::string_view> values) const {
  if (values.size() != declared_names_.size()) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name_), " has ", declared_names_.size(), " label names [",
                       absl::StrJoin(declared_names_, ", "), "]; got ", values.size(), " values"));
  }
  // Only values.size() views are used: constructing all kMaxLabels of a std::array (zeroing
  // 512 bytes) cost a fifth of a lookup's instructions.
  alignas(std::string_view) std::byte storage[kMaxLabels * sizeof(std::string_view)];
  auto* canonical = reinterpret_cast<std::string_view*>(storage);
  for (size_t i = 0; i < values.size(); ++i) {
    new (&canonical[i]) std::string_view(values[to_canonical_[i]]);
  }
  char buf[512];
  std::string spill;
  const std::span<const std::string_view> c(canonical, values.size());
  const std::string_view key = BuildKey(c, buf, sizeof buf, &spill);
  if (const uint64_t off = segment_->Find(table_off_, key); off != 0) {
    return {segment_->base() + off, this};
  }
  return CreateSeries(key, c);
}

SeriesRef FamilyBase::LookupMap(
    std::span<const std::pair<std::string_view, std::string_view>> labels) const {
  std::array<std::string_view, kMaxLabels> values;
  if (labels.size() != declared_names_.size()) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name_), " has ", declared_names_.size(), " label names [",
                       absl::StrJoin(declared_names_, ", "), "]; got ", labels.size(), " labels"));
  }
  std::vector<bool> seen(declared_names_.size());
  for (const auto& [n, v] : labels) {
    const auto it = std::find(declared_names_.begin(), declared_names_.end(), n);
    if (it == declared_names_.end() || seen[it - declared_names_.begin()]) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("metric ", Quoted(name_), " has no label ", Quoted(n),
                         " (or it was given twice); its labels are [",
                         absl::StrJoin(declared_names_, ", "), "]"));
    }
    seen[it - declared_names_.begin()] = true;
    values[it - declared_names_.begin()] = v;
  }
  return Lookup(std::span<const std::string_view>(values.data(), labels.size()));
}

void FamilyBase::InitSeries(char* record) const {
  auto* h = reinterpret_cast<SeriesHeader*>(record);
  h->magic = meters::kSeriesMagic;
  h->created_unix_ns = NowUnixNanos();
  h->exemplars.store(0, std::memory_order_relaxed);
  h->reserved = 0;
  auto* cells = reinterpret_cast<Cell*>(record + kSeriesCellsOffset);
  const size_t n = (series_size_ - kSeriesCellsOffset) / sizeof(Cell);
  for (size_t i = 0; i < n; ++i) cells[i].Init(0);
  if (type_ == MetricType::kMaxGauge) {
    for (uint32_t s = 0; s < stripes_; ++s) cells[uint64_t{s} * stripe_stride_].Init(kEmptyMaxBits);
  }
}

SeriesRef FamilyBase::CreateSeries(std::string_view key,
                                   std::span<const std::string_view> canonical) const {
  for (size_t i = 0; i < canonical.size(); ++i) {
    ValidateLabelValue(name_, canonical_names_[i], canonical[i]);
  }
  shm::Segment& seg = *segment_;
  if (segment_->read_only()) return {Dummy(), this};
  if (max_children_ != 0 && seg.TableSize(table_off_) >= max_children_) return Overflow();
  if (char* record = FindOrInsertSeries(key); record != nullptr) return {record, this};
  // The heap is full: the overflow child takes the updates when it exists (or still fits),
  // else they go nowhere; either way the self-metric counts the lookup.
  return Overflow();
}

char* FamilyBase::FindOrInsertSeries(std::string_view key, bool use_spares) const {
  shm::Segment& seg = *segment_;
  auto* fam = seg.At<FamilyRecord>(family_off_);
  std::scoped_lock lock(seg.lock());
  if (const uint64_t off = seg.Find(table_off_, key); off != 0) return seg.base() + off;
  absl::StatusOr<uint64_t> rec =
      seg.AllocateFromList(&fam->free_series, series_size_, shm::BlockKind::kRecord);
  if (!rec.ok()) {
    if (!use_spares || fam->spare_record == 0) return nullptr;
    rec = std::exchange(fam->spare_record, 0);  // a crash from here on leaks it, at worst
  }
  InitSeries(seg.base() + *rec);
  if (!seg.Insert(table_off_, key, *rec, use_spares ? &fam->spare_entry : nullptr).ok()) {
    seg.FreeToList(&fam->free_series, *rec);
    return nullptr;
  }
  return seg.base() + *rec;
}

SeriesRef FamilyBase::Overflow() const {
  shm::Segment& seg = *segment_;
  auto* fam = seg.At<FamilyRecord>(family_off_);
  fam->overflowed.fetch_add(1, std::memory_order_relaxed);
  std::string key;
  for (size_t i = 0; i < canonical_names_.size(); ++i) {
    meters::AppendKeyPart(&key, kOverflowLabelValue);
  }
  if (const uint64_t off = seg.Find(table_off_, key); off != 0) return {seg.base() + off, this};
  char* record = FindOrInsertSeries(key, /*use_spares=*/true);
  return {record != nullptr ? record : Dummy(), this};
}

void FamilyBase::FreeSeries(uint64_t rec) const {
  shm::Segment& seg = *segment_;
  auto* h = seg.At<SeriesHeader>(rec);
  if (const uint64_t ex = h->exemplars.load(std::memory_order_relaxed); ex != 0) {
    h->exemplars.store(0, std::memory_order_relaxed);
    seg.Free(ex);
  }
  seg.FreeToList(&seg.At<FamilyRecord>(family_off_)->free_series, rec);
}

bool FamilyBase::Remove(std::span<const std::string_view> values) const {
  if (values.size() != declared_names_.size()) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name_), " has ", declared_names_.size(),
                       " label names; got ", values.size(), " values"));
  }
  if (values.empty() || segment_->read_only()) return false;
  std::array<std::string_view, kMaxLabels> canonical;
  for (size_t i = 0; i < values.size(); ++i) canonical[i] = values[to_canonical_[i]];
  char buf[512];
  std::string spill;
  const std::string_view key = BuildKey({canonical.data(), values.size()}, buf, sizeof buf, &spill);
  std::scoped_lock lock(segment_->lock());
  const uint64_t rec = segment_->Erase(table_off_, key);
  if (rec == 0) return false;
  FreeSeries(rec);
  return true;
}

void FamilyBase::Clear() const {
  if (segment_->read_only()) return;
  {
    std::scoped_lock lock(segment_->lock());
    segment_->EraseAll(table_off_, [this](uint64_t rec) { FreeSeries(rec); });
  }
  // A family without labels always has its one series.
  if (declared_names_.empty()) (void)Lookup({});
}

size_t FamilyBase::size() const { return segment_->TableSize(table_off_); }

}  // namespace internal

// --- Registry ---

struct Registry::Spec {
  MetricType type = MetricType::kCounter;
  std::string_view name = {};
  std::string_view help = {};
  LabelNames labels = {};
  std::string unit = {};
  uint32_t max_children = 0;
  GaugeMode gauge_mode = GaugeMode::kShared;
  bool striped = false;
  std::vector<double> bounds = {};
  std::vector<std::string> states = {};
  int64_t ttl_ns = 0;
  const SummaryOptions* summary = nullptr;  // summaries: quantile options
  int64_t percentile_min = 0;               // percentile meters: the range kept
  int64_t percentile_max = 0;
};

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

internal::FamilyBase& Registry::Register(Spec spec) {
  // --- Validate and normalize into a Definition ---
  std::string name(spec.name);
  if (!meters::IsValidMetricName(name)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("invalid metric name ", Quoted(name),
                       ": must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (name.substr(0, 2) == "__") {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric name ", Quoted(name),
                       " is reserved: names starting with \"__\" "
                       "belong to Prometheus"));
  }
  if (spec.type == MetricType::kCounter && EndsWith(name, "_total")) {
    name.resize(name.size() - 6);
  }
  if (spec.type == MetricType::kInfo && EndsWith(name, "_info")) name.resize(name.size() - 5);
  if (name.empty()) Throw(absl::StatusCode::kInvalidArgument, "metric name is empty");
  if (!prefix_.empty()) name = absl::StrCat(prefix_, "_", name);
  if (!spec.unit.empty()) {
    if (!std::all_of(spec.unit.begin(), spec.unit.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("invalid unit ", Quoted(spec.unit), " for metric ", Quoted(name),
                         ": must match [a-zA-Z0-9_]+"));
    }
    if (!EndsWith(name, "_" + spec.unit)) absl::StrAppend(&name, "_", spec.unit);
  }
  static const std::vector<std::string_view> kHistogramSuffixes = {"_bucket", "_count", "_sum",
                                                                   "_created"};
  static const std::vector<std::string_view> kSummarySuffixes = {"_count", "_sum", "_created"};
  static const std::vector<std::string_view> kSpectatorSuffixes = {"_count", "_sum", "_created",
                                                                   "_max", "_sum_of_squares"};
  const std::vector<std::string_view>* suffixes = nullptr;
  static const std::vector<std::string_view> kCounterSuffixes = {"_created"};
  if (spec.type == MetricType::kCounter) suffixes = &kCounterSuffixes;
  if (spec.type == MetricType::kHistogram) suffixes = &kHistogramSuffixes;
  if (spec.type == MetricType::kSummary) suffixes = &kSummarySuffixes;
  if (spec.type == MetricType::kTimer || spec.type == MetricType::kDistributionSummary) {
    suffixes = &kSpectatorSuffixes;
  }
  if (spec.type == MetricType::kPercentileTimer ||
      spec.type == MetricType::kPercentileDistributionSummary) {
    suffixes = &kHistogramSuffixes;
  }
  if (suffixes != nullptr) {
    for (std::string_view s : *suffixes) {
      if (EndsWith(name, s)) {
        Throw(absl::StatusCode::kInvalidArgument,
              absl::StrCat("metric name ", Quoted(name), " ends in ", std::string(s),
                           ", which the exposition of a ", TypeName(spec.type),
                           " uses for its own samples"));
      }
    }
  }
  if (spec.help.size() > kMaxHelpBytes || !meters::IsValidUtf8(spec.help)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("help text of metric ", Quoted(name), " must be UTF-8 of at most ",
                       kMaxHelpBytes, " bytes"));
  }
  if (spec.labels.size() > kMaxLabels) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name), " has ", spec.labels.size(),
                       " labels; the limit is ", kMaxLabels));
  }
  std::set<std::string> seen;
  for (const std::string& l : spec.labels) {
    ValidateLabelName(name, l);
    if (!seen.insert(l).second) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("label name ", Quoted(l), " appears twice in metric ", Quoted(name)));
    }
    const char* reserved_for = nullptr;
    if (l == "le" &&
        (spec.type == MetricType::kHistogram || spec.type == MetricType::kPercentileTimer ||
         spec.type == MetricType::kPercentileDistributionSummary)) {
      reserved_for = "histograms (bucket bound)";
    }
    if (l == "quantile" && (spec.type == MetricType::kSummary || spec.type == MetricType::kTimer ||
                            spec.type == MetricType::kDistributionSummary)) {
      reserved_for = "summaries";
    }
    if (l == "worker_id" &&
        (spec.gauge_mode == GaugeMode::kAll || spec.gauge_mode == GaugeMode::kLiveAll)) {
      reserved_for = "per-worker gauges";
    }
    if (spec.type == MetricType::kStateSet && l == name) reserved_for = "this stateset's states";
    if (reserved_for != nullptr) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("label name ", Quoted(l), " is reserved for ", reserved_for, " (metric ",
                         Quoted(name), ")"));
    }
    if (const_labels_.count(l) != 0) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("label name ", Quoted(l), " of metric ", Quoted(name),
                         " is also a const label of the registry"));
    }
  }
  Definition def;
  def.name = name;
  def.help = std::string(spec.help);
  def.unit = spec.unit;
  def.type = spec.type;
  def.gauge_mode = spec.gauge_mode;
  def.striped = spec.striped;
  def.label_names = spec.labels;
  std::sort(def.label_names.begin(), def.label_names.end());
  def.const_labels.assign(const_labels_.begin(), const_labels_.end());
  if (spec.type == MetricType::kHistogram) {
    std::vector<double> b = spec.bounds;
    if (!b.empty() && b.back() == std::numeric_limits<double>::infinity()) b.pop_back();
    if (b.empty() || b.size() > kMaxBuckets) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("histogram ", Quoted(name), " needs 1 to ", kMaxBuckets,
                         " finite buckets; got ", b.size()));
    }
    for (size_t i = 0; i < b.size(); ++i) {
      if (!std::isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1]))) {
        Throw(absl::StatusCode::kInvalidArgument,
              absl::StrCat("histogram ", Quoted(name),
                           " buckets must be finite and strictly increasing; bucket ", i, " is ",
                           b[i], i > 0 ? absl::StrCat(" after ", b[i - 1]) : std::string()));
      }
    }
    def.bounds = std::move(b);
  }
  if (spec.type == MetricType::kGauge) {
    if (spec.ttl_ns < 0 || (spec.ttl_ns != 0 && spec.ttl_ns < 1000000)) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("gauge ", Quoted(name), ": ttl must be 0 (off) or at least 1 ms; got ",
                         spec.ttl_ns, " ns"));
    }
    def.ttl_ns = static_cast<uint64_t>(spec.ttl_ns);
  }
  if (spec.type == MetricType::kSummary && spec.summary != nullptr &&
      !spec.summary->quantiles.empty()) {
    ValidateQuantiles(name, *spec.summary, &def);
  }
  if (spec.type == MetricType::kPercentileTimer ||
      spec.type == MetricType::kPercentileDistributionSummary) {
    SetPercentileRange(name, spec.type == MetricType::kPercentileTimer, spec.percentile_min,
                       spec.percentile_max, &def);
  }
  if (spec.type == MetricType::kStateSet) {
    if (spec.states.empty() || spec.states.size() > kMaxStates) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("stateset ", Quoted(name), " needs 1 to ", kMaxStates, " states; got ",
                         spec.states.size()));
    }
    std::set<std::string> uniq;
    for (const auto& s : spec.states) {
      if (s.empty() || s.size() > kMaxLabelValueBytes || !meters::IsValidUtf8(s) ||
          !uniq.insert(s).second) {
        Throw(absl::StatusCode::kInvalidArgument,
              absl::StrCat("stateset ", Quoted(name), ": state ", Quoted(s),
                           " is empty, too long, not UTF-8 or given twice"));
      }
    }
    def.states = spec.states;
  }

  // --- This process already has it? ---
  std::scoped_lock lock(mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    const auto* rec = shm::HeapAccess::segment(heap_).At<FamilyRecord>(it->second->offset());
    auto existing = meters::DecodeDefinition(std::string_view(
        shm::HeapAccess::segment(heap_).base() + rec->definition, rec->definition_len));
    if (!existing.ok() || !existing->SameShape(def) || it->second->label_names() != spec.labels) {
      Throw(absl::StatusCode::kAlreadyExists,
            absl::StrCat("metric ", Quoted(name), " is already registered as a ",
                         existing.ok() ? Describe(*existing) : "different metric",
                         "; cannot register it as a ", Describe(def)));
    }
    return *it->second;
  }

  // --- The heap has it, or we create it ---
  shm::Segment& seg = shm::HeapAccess::segment(heap_);
  if (seg.read_only()) {
    Throw(absl::StatusCode::kFailedPrecondition,
          absl::StrCat("cannot register ", Quoted(name), ": the heap is open read-only"));
  }
  const uint64_t root = seg.header().root_table.load(std::memory_order_acquire);
  uint64_t family_off = seg.Find(root, name);
  if (family_off == 0) {
    std::scoped_lock heap_lock(seg.lock());
    family_off = seg.Find(root, name);
    if (family_off == 0) {
      const std::string blob = meters::EncodeDefinition(def);
      const uint32_t max_workers = seg.header().max_workers;
      CheckCompanionNames(seg, root, def);
      const uint32_t cells = meters::CellsPerStripe(def);
      const uint32_t exemplar_slots = meters::ExemplarSlots(def);
      uint32_t stripes = 1, stride = cells;
      const uint32_t line = std::max<uint32_t>(1, 64 / sizeof(internal::Cell));
      if (def.type == MetricType::kCounter && def.striped) {
        stripes = max_workers + 1;
        stride = std::max(cells, line);
      }
      if (def.type == MetricType::kGauge && def.gauge_mode != GaugeMode::kShared) {
        stripes = max_workers + 1;
      }
      const uint64_t series_size =
          internal::kSeriesCellsOffset + uint64_t{stripes} * stride * sizeof(internal::Cell);
      auto blob_off = seg.Allocate(blob.size(), shm::BlockKind::kBlob);
      if (!blob_off.ok()) throw ToError(blob_off.status());
      std::memcpy(seg.base() + *blob_off, blob.data(), blob.size());
      auto table = seg.NewTable(16);
      if (!table.ok()) {
        seg.Free(*blob_off);
        throw ToError(table.status());
      }
      auto fam = seg.Allocate(sizeof(FamilyRecord), shm::BlockKind::kRecord);
      if (!fam.ok()) {
        seg.FreeTable(*table);
        seg.Free(*blob_off);
        throw ToError(fam.status());
      }
      auto* rec = seg.At<FamilyRecord>(*fam);
      rec->magic = meters::kFamilyMagic;
      rec->type = static_cast<uint32_t>(def.type);
      rec->gauge_mode = static_cast<uint32_t>(def.gauge_mode);
      rec->num_labels = static_cast<uint32_t>(def.label_names.size());
      rec->num_values = static_cast<uint32_t>(
          def.type == MetricType::kStateSet ? def.states.size() : def.bounds.size());
      rec->stripes = stripes;
      rec->stripe_stride = stride;
      rec->cells_per_stripe = cells;
      rec->series_size = static_cast<uint32_t>(series_size);
      rec->max_children = spec.max_children != 0 ? spec.max_children : max_children_;
      rec->exemplar_slots = exemplar_slots;
      rec->series_table.store(*table, std::memory_order_relaxed);
      rec->definition = *blob_off;
      rec->definition_len = blob.size();
      rec->created_unix_ns = internal::NowUnixNanos();
      // Space for the overflow series, so a full heap still has somewhere to send new children.
      absl::Status spares = absl::OkStatus();
      if (!def.label_names.empty()) {
        const size_t key_len = def.label_names.size() * (4 + kOverflowLabelValue.size());
        auto spare_record = seg.Allocate(series_size, shm::BlockKind::kRecord);
        auto spare_entry = seg.AllocateSpareEntry(key_len);
        rec->spare_record = spare_record.ok() ? *spare_record : 0;
        rec->spare_entry = spare_entry.ok() ? *spare_entry : 0;
        if (!spare_record.ok()) spares = spare_record.status();
        if (!spare_entry.ok()) spares = spare_entry.status();
      }
      absl::Status s = spares.ok() ? seg.Insert(root, name, *fam) : spares;
      if (!s.ok()) {
        if (rec->spare_record != 0) seg.Free(rec->spare_record);
        if (rec->spare_entry != 0) seg.Free(rec->spare_entry);
        seg.Free(*fam);
        seg.FreeTable(*table);
        seg.Free(*blob_off);
        throw ToError(s);
      }
      family_off = *fam;
    }
  }
  // Compare with what the heap holds (another process may have registered it first).
  const auto* rec =
      reinterpret_cast<const FamilyRecord*>(seg.Checked(family_off, sizeof(FamilyRecord)));
  if (rec == nullptr || rec->magic != meters::kFamilyMagic ||
      seg.Checked(rec->definition, rec->definition_len) == nullptr) {
    Throw(absl::StatusCode::kDataLoss,
          absl::StrCat("the heap's record of metric ", Quoted(name), " is corrupt"));
  }
  auto existing =
      meters::DecodeDefinition(std::string_view(seg.base() + rec->definition, rec->definition_len));
  if (!existing.ok()) throw ToError(existing.status());
  if (!existing->SameShape(def)) {
    Throw(absl::StatusCode::kAlreadyExists,
          absl::StrCat("metric ", Quoted(name), " is already registered in the heap as a ",
                       Describe(*existing), "; cannot register it as a ", Describe(def)));
  }
  std::unique_ptr<internal::FamilyBase> family;
  switch (def.type) {
    case MetricType::kCounter:
      family = RegistryAccess::New<Counter>();
      break;
    case MetricType::kGauge:
      family = RegistryAccess::New<Gauge>();
      break;
    case MetricType::kHistogram:
      family = RegistryAccess::New<Histogram>();
      break;
    case MetricType::kSummary:
      family = RegistryAccess::New<Summary>();
      break;
    case MetricType::kInfo:
      family = RegistryAccess::New<Info>();
      break;
    case MetricType::kStateSet:
      family = RegistryAccess::New<StateSet>();
      break;
    case MetricType::kTimer:
      family = RegistryAccess::New<Timer>();
      break;
    case MetricType::kDistributionSummary:
      family = RegistryAccess::New<DistributionSummary>();
      break;
    case MetricType::kMaxGauge:
      family = RegistryAccess::New<MaxGauge>();
      break;
    case MetricType::kAgeGauge:
      family = RegistryAccess::New<AgeGauge>();
      break;
    case MetricType::kPercentileTimer:
      family = RegistryAccess::New<PercentileTimer>();
      break;
    case MetricType::kPercentileDistributionSummary:
      family = RegistryAccess::New<PercentileDistributionSummary>();
      break;
  }
  RegistryAccess::Init(*family, shm::HeapAccess::segment_ptr(heap_), family_off, *existing,
                       spec.labels);
  internal::FamilyBase& ref = *family;
  families_.emplace(name, std::move(family));
  // A family without labels exists at zero from registration on.
  if (spec.labels.empty()) (void)ref.Lookup({});
  return ref;
}

}  // namespace shmetrics
