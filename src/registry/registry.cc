#include "shmetrics/registry.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meters/layout.h"
#include "meters/names.h"
#include "shm/segment.h"
#include "shmetrics/error.h"

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

[[noreturn]] void Throw(absl::StatusCode code, std::string message) { throw Error(code, message); }

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

// Registries alive in this process, so fork() can take their locks (see AtFork*).
std::mutex& RegistriesMutex() {
  static std::mutex mu;
  return mu;
}
std::set<std::mutex*>& RegistryMutexes() {
  static std::set<std::mutex*> s;
  return s;
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
  std::array<std::string_view, kMaxLabels> canonical;
  for (size_t i = 0; i < values.size(); ++i) canonical[i] = values[to_canonical_[i]];
  char buf[512];
  std::string spill;
  const std::span<const std::string_view> c(canonical.data(), values.size());
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

char* FamilyBase::FindOrInsertSeries(std::string_view key) const {
  shm::Segment& seg = *segment_;
  auto* fam = seg.At<FamilyRecord>(family_off_);
  std::scoped_lock lock(seg.lock());
  if (const uint64_t off = seg.Find(table_off_, key); off != 0) return seg.base() + off;
  auto rec = seg.AllocateFromList(&fam->free_series, series_size_, shm::BlockKind::kRecord);
  if (!rec.ok()) return nullptr;
  InitSeries(seg.base() + *rec);
  if (!seg.Insert(table_off_, key, *rec).ok()) {
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
  char* record = FindOrInsertSeries(key);
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
                                             .gauge_mode = options.mode}));
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
                                    const MetricOptions& options) {
  return static_cast<SummaryFamily&>(Register({.type = MetricType::kSummary,
                                               .name = name,
                                               .help = help,
                                               .labels = std::move(labels),
                                               .unit = options.unit,
                                               .max_children = options.max_children}));
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
  const std::vector<std::string_view>* suffixes = nullptr;
  static const std::vector<std::string_view> kCounterSuffixes = {"_created"};
  if (spec.type == MetricType::kCounter) suffixes = &kCounterSuffixes;
  if (spec.type == MetricType::kHistogram) suffixes = &kHistogramSuffixes;
  if (spec.type == MetricType::kSummary) suffixes = &kSummarySuffixes;
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
    if (l == "le" && spec.type == MetricType::kHistogram)
      reserved_for = "histograms (bucket bound)";
    if (l == "quantile" && spec.type == MetricType::kSummary) reserved_for = "summaries";
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
    const auto* rec = heap_.segment().At<FamilyRecord>(it->second->offset());
    auto existing = meters::DecodeDefinition(
        std::string_view(heap_.segment().base() + rec->definition, rec->definition_len));
    if (!existing.ok() || !existing->SameShape(def) || it->second->label_names() != spec.labels) {
      Throw(absl::StatusCode::kAlreadyExists,
            absl::StrCat("metric ", Quoted(name), " is already registered as a ",
                         existing.ok() ? Describe(*existing) : "different metric",
                         "; cannot register it as a ", Describe(def)));
    }
    return *it->second;
  }

  // --- The heap has it, or we create it ---
  shm::Segment& seg = heap_.segment();
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
      uint32_t cells = 1, stripes = 1, stride = 1, exemplar_slots = 0;
      const uint32_t line = std::max<uint32_t>(1, 64 / sizeof(internal::Cell));
      switch (def.type) {
        case MetricType::kCounter:
          cells = 2;
          exemplar_slots = 1;
          stripes = def.striped ? max_workers + 1 : 1;
          stride = def.striped ? std::max(cells, line) : cells;
          break;
        case MetricType::kGauge:
          cells = def.gauge_mode == GaugeMode::kShared ? 1 : 3;
          stripes = def.gauge_mode == GaugeMode::kShared ? 1 : max_workers + 1;
          stride = cells;
          break;
        case MetricType::kHistogram:
          cells = 2 + static_cast<uint32_t>(def.bounds.size());
          exemplar_slots = cells - 1;
          stride = cells;
          break;
        case MetricType::kSummary:
          cells = stride = 2;
          break;
        case MetricType::kInfo:
        case MetricType::kStateSet:
          cells = stride = 1;
          break;
      }
      const uint64_t series_size =
          internal::kSeriesCellsOffset + uint64_t{stripes} * stride * sizeof(internal::Cell);
      auto blob_off = seg.Allocate(blob.size(), shm::BlockKind::kBlob);
      if (!blob_off.ok()) throw Error(blob_off.status());
      std::memcpy(seg.base() + *blob_off, blob.data(), blob.size());
      auto table = seg.NewTable(16);
      if (!table.ok()) {
        seg.Free(*blob_off);
        throw Error(table.status());
      }
      auto fam = seg.Allocate(sizeof(FamilyRecord), shm::BlockKind::kRecord);
      if (!fam.ok()) {
        seg.FreeTable(*table);
        seg.Free(*blob_off);
        throw Error(fam.status());
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
      if (absl::Status s = seg.Insert(root, name, *fam); !s.ok()) {
        seg.Free(*fam);
        seg.FreeTable(*table);
        seg.Free(*blob_off);
        throw Error(s);
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
  if (!existing.ok()) throw Error(existing.status());
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
  }
  RegistryAccess::Init(*family, heap_.segment_ptr(), family_off, *existing, spec.labels);
  internal::FamilyBase& ref = *family;
  families_.emplace(name, std::move(family));
  // A family without labels exists at zero from registration on.
  if (spec.labels.empty()) (void)ref.Lookup({});
  return ref;
}

}  // namespace shmetrics
