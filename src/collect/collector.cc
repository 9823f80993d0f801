#include "collect/collector.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "meters/layout.h"
#include "process/proc_stats.h"
#include "process/process_metrics.h"
#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"
#include "shmetrics/internal/percentile_buckets.h"
#include "shmetrics/internal/quantile_sketch.h"
#include "shmetrics/max_gauge.h"

namespace shmetrics::collect {
namespace {

using internal::Cell;
using meters::Definition;
using meters::FamilyRecord;
using meters::SeriesHeader;

// A family as read from the heap, validated.
struct FamilyView {
  uint64_t offset;
  const FamilyRecord* rec;
  Definition def;
  uint32_t stripes, stride, cells, series_size, exemplar_slots;
  uint64_t table;
};

absl::Status Corrupt(const shm::Segment& seg, std::string_view what) {
  return absl::DataLossError(
      absl::StrCat(seg.location().Describe(), " is corrupt: ", std::string(what)));
}

bool PercentileRangeIsSane(const Definition& d) {
  if (d.type != MetricType::kPercentileTimer &&
      d.type != MetricType::kPercentileDistributionSummary) {
    return true;
  }
  return d.percentile_first <= d.percentile_last &&
         d.percentile_last < internal::percentile_buckets::kLength &&
         d.bounds.size() == d.percentile_last - d.percentile_first + 1;
}

bool HasCompanions(MetricType t) {
  return t == MetricType::kTimer || t == MetricType::kDistributionSummary;
}

absl::StatusOr<FamilyView> ReadFamily(const shm::Segment& seg, std::string_view key, uint64_t off) {
  const auto* rec = reinterpret_cast<const FamilyRecord*>(seg.Checked(off, sizeof(FamilyRecord)));
  const std::string name(key);
  if (rec == nullptr || rec->magic != meters::kFamilyMagic) {
    return Corrupt(seg, absl::StrCat("family record of \"", name, "\" at offset ", off));
  }
  const uint64_t def_len = rec->definition_len;
  const char* def_bytes = seg.Checked(rec->definition, def_len);
  if (def_bytes == nullptr || def_len > (1u << 24)) {
    return Corrupt(seg, absl::StrCat("definition of \"", name, "\" out of range"));
  }
  auto def = meters::DecodeDefinition(std::string_view(def_bytes, def_len));
  if (!def.ok()) return Corrupt(seg, absl::StrCat("\"", name, "\": ", def.status().message()));
  FamilyView f{off,
               rec,
               std::move(*def),
               rec->stripes,
               rec->stripe_stride,
               rec->cells_per_stripe,
               rec->series_size,
               rec->exemplar_slots,
               rec->series_table.load(std::memory_order_acquire)};
  // Everything a series read relies on must agree with the definition.
  if (!meters::SketchIsSane(f.def) || !PercentileRangeIsSane(f.def)) {
    return Corrupt(seg, absl::StrCat("meter parameters of \"", name, "\" are inconsistent"));
  }
  const uint32_t want_cells = meters::CellsPerStripe(f.def);
  const uint32_t want_slots = meters::ExemplarSlots(f.def);
  const uint64_t want_size =
      internal::kSeriesCellsOffset + uint64_t{f.stripes} * f.stride * sizeof(Cell);
  if (f.def.name != key || f.cells != want_cells || f.exemplar_slots != want_slots ||
      f.stripes == 0 || f.stripes > 65537 || f.stride < f.cells || f.series_size != want_size ||
      rec->num_labels != f.def.label_names.size() || f.def.label_names.size() > 64) {
    return Corrupt(seg, absl::StrCat("family record of \"", name, "\" is inconsistent"));
  }
  return f;
}

// Copies an exemplar slot out under its sequence word; nullopt when absent or torn.
struct ExemplarCopy {
  double value;
  double timestamp;
  std::vector<std::string> strings;
  std::vector<expose::Label> labels;
  expose::Exemplar ex;
};

bool ReadExemplar(const shm::Segment& seg, const SeriesHeader* h, uint32_t slot, uint32_t slots,
                  ExemplarCopy* out) {
  const uint64_t block = h->exemplars.load(std::memory_order_acquire);
  if (block == 0 || slot >= slots) return false;
  const auto* ex = reinterpret_cast<const meters::ExemplarSlot*>(
      seg.Checked(block, uint64_t{slots} * sizeof(meters::ExemplarSlot)));
  if (ex == nullptr) return false;
  ex += slot;
  char buf[meters::kMaxExemplarLabelBytes];
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint64_t s1 = ex->seq.load(std::memory_order_acquire);
    if (s1 == 0) return false;
    if (s1 & 1) continue;
    const uint64_t v = ex->value.load(std::memory_order_relaxed);
    const uint64_t t = ex->timestamp.load(std::memory_order_relaxed);
    const uint32_t len = std::min<uint32_t>(ex->labels_len, meters::kMaxExemplarLabelBytes);
    const uint32_t count = ex->count;
    std::memcpy(buf, ex->labels, len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (ex->seq.load(std::memory_order_relaxed) != s1) continue;
    std::vector<std::string_view> parts;
    if (count > 64 || !meters::SplitKey(std::string_view(buf, len), size_t{count} * 2, &parts)) {
      return false;
    }
    out->value = std::bit_cast<double>(v);
    out->timestamp = std::bit_cast<double>(t);
    out->strings.assign(parts.begin(), parts.end());
    out->labels.clear();
    for (size_t i = 0; i + 1 < out->strings.size(); i += 2) {
      out->labels.push_back({out->strings[i], out->strings[i + 1]});
    }
    out->ex = {out->labels, out->value, out->timestamp};
    return true;
  }
  return false;
}

// Every family of the heap, validated, sorted by name.
absl::StatusOr<std::vector<FamilyView>> ReadFamilies(const shm::Segment& seg) {
  std::vector<std::pair<std::string, uint64_t>> names;
  absl::Status walk = seg.ForEachEntry(seg.header().root_table.load(std::memory_order_acquire),
                                       [&](std::string_view key, uint64_t value) {
                                         names.emplace_back(std::string(key), value);
                                         return names.size() < (1u << 20);
                                       });
  if (!walk.ok()) return walk;
  std::sort(names.begin(), names.end());
  std::vector<FamilyView> families;
  families.reserve(names.size());
  for (const auto& [name, off] : names) {
    auto f = ReadFamily(seg, name, off);
    if (!f.ok()) return f.status();
    families.push_back(std::move(*f));
  }
  return families;
}

bool Selected(const CollectOptions& o, const Definition& d) {
  if (o.names.empty()) return true;
  auto has = [&](std::string_view n) {
    return std::find(o.names.begin(), o.names.end(), n) != o.names.end();
  };
  if (has(d.name)) return true;
  static constexpr std::string_view kSuffixes[] = {"_total", "_created", "_bucket",
                                                   "_count", "_sum",     "_info"};
  for (std::string_view s : kSuffixes) {
    if (has(d.name + std::string(s))) return true;
  }
  return HasCompanions(d.type) && (has(d.name + "_max") || has(d.name + "_sum_of_squares"));
}

expose::MetricType ToExpose(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return expose::MetricType::kCounter;
    case MetricType::kGauge:
      return expose::MetricType::kGauge;
    case MetricType::kHistogram:
      return expose::MetricType::kHistogram;
    case MetricType::kSummary:
      return expose::MetricType::kSummary;
    case MetricType::kInfo:
      return expose::MetricType::kInfo;
    case MetricType::kStateSet:
      return expose::MetricType::kStateSet;
    case MetricType::kTimer:
    case MetricType::kDistributionSummary:
      return expose::MetricType::kSummary;
    case MetricType::kMaxGauge:
    case MetricType::kAgeGauge:
      return expose::MetricType::kGauge;
    case MetricType::kPercentileTimer:
    case MetricType::kPercentileDistributionSummary:
      return expose::MetricType::kHistogram;
  }
  return expose::MetricType::kUnknown;
}

struct WorkerState {
  bool alive = false;
  uint64_t epoch = 0;
};

// What one collection shares between families.
struct Moment {
  uint64_t now_unix_ns;    // for gauge time-to-live and age gauges
  uint64_t now_coarse_ns;  // for quantile windows (the clock writers use)
  bool reset_maxima;       // the heap is writable and the caller asked for it
};

// Which samples of a family a pass writes: a timer or distribution summary is three families.
enum class Pass { kMain, kMax, kSumOfSquares };

// Emits the series of one family.
class FamilyWriter {
 public:
  FamilyWriter(const shm::Segment& seg, expose::Encoder& enc, const FamilyView& f,
               const std::vector<WorkerState>& workers, bool creator_alive, const Moment& moment,
               Pass pass = Pass::kMain)
      : seg_(seg),
        enc_(enc),
        f_(f),
        workers_(workers),
        creator_alive_(creator_alive),
        moment_(moment),
        pass_(pass) {}

  absl::Status Run() {
    const FamilyView& f = f_;
    const size_t nl = f.def.label_names.size();
    std::vector<std::string_view> values;
    labels_.reserve(f.def.const_labels.size() + nl + 1);
    absl::Status status = seg_.ForEachEntry(f.table, [&](std::string_view key, uint64_t off) {
      const char* p = seg_.Checked(off, f.series_size);
      if (p == nullptr) {
        status_ = Corrupt(seg_, absl::StrCat("series of \"", f.def.name, "\" out of range"));
        return false;
      }
      const auto* h = reinterpret_cast<const SeriesHeader*>(p);
      if (h->magic != meters::kSeriesMagic) return true;  // removed while we looked
      if (!meters::SplitKey(key, nl, &values)) {
        status_ = Corrupt(seg_, absl::StrCat("series key of \"", f.def.name, "\""));
        return false;
      }
      labels_.clear();
      for (const auto& [n, v] : f.def.const_labels) labels_.push_back({n, v});
      for (size_t i = 0; i < nl; ++i) labels_.push_back({f.def.label_names[i], values[i]});
      Series(h, reinterpret_cast<const Cell*>(p + internal::kSeriesCellsOffset));
      return true;
    });
    if (!status.ok()) return status;
    return status_;
  }

 private:
  void Series(const SeriesHeader* h, const Cell* cells) {
    const std::optional<double> created = static_cast<double>(h->created_unix_ns) / 1e9;
    if (pass_ != Pass::kMain) {
      Companion(cells);
      return;
    }
    switch (f_.def.type) {
      case MetricType::kCounter: {
        double v = 0;
        for (uint32_t s = 0; s < f_.stripes; ++s) {
          const Cell* c = cells + uint64_t{s} * f_.stride;
          v += static_cast<double>(c[0].Load()) + c[1].LoadDouble();
        }
        const bool has_ex = ReadExemplar(seg_, h, 0, f_.exemplar_slots, &ex_);
        enc_.Counter(labels_, v, created, has_ex ? &ex_.ex : nullptr);
        break;
      }
      case MetricType::kGauge:
        Gauge(cells);
        break;
      case MetricType::kHistogram: {
        const size_t n = f_.def.bounds.size() + 1;
        cumulative_.resize(n);
        uint64_t running = 0;
        for (size_t i = 0; i < n; ++i) {
          running += cells[1 + i].Load();
          cumulative_[i] = running;
        }
        exemplar_ptrs_.clear();
        if (h->exemplars.load(std::memory_order_acquire) != 0) {
          bucket_ex_.resize(n);
          exemplar_ptrs_.resize(n, nullptr);
          for (size_t i = 0; i < n; ++i) {
            if (ReadExemplar(seg_, h, static_cast<uint32_t>(i), f_.exemplar_slots,
                             &bucket_ex_[i])) {
              exemplar_ptrs_[i] = &bucket_ex_[i].ex;
            }
          }
        }
        enc_.Histogram(labels_, f_.def.bounds, cumulative_, cells[0].LoadDouble(), created,
                       exemplar_ptrs_);
        break;
      }
      case MetricType::kSummary:
        Summary(cells, created);
        break;
      case MetricType::kTimer:
        // Cells: count, total ns, sum of squares ns^2, max ns.
        enc_.Summary(labels_, cells[0].Load(), static_cast<double>(cells[1].Load()) / 1e9, {},
                     created);
        break;
      case MetricType::kDistributionSummary:
        enc_.Summary(labels_, cells[0].Load(), cells[1].LoadDouble(), {}, created);
        break;
      case MetricType::kMaxGauge: {
        const uint64_t bits = moment_.reset_maxima
                                  ? Writable(cells)[0].Exchange(internal::kEmptyMaxBits)
                                  : cells[0].Load();
        if (bits != internal::kEmptyMaxBits) enc_.Gauge(labels_, std::bit_cast<double>(bits));
        break;
      }
      case MetricType::kAgeGauge: {
        const uint64_t reset = cells[0].Load();
        const uint64_t since = reset != 0 ? reset : h->created_unix_ns;
        const double age = moment_.now_unix_ns > since
                               ? static_cast<double>(moment_.now_unix_ns - since) / 1e9
                               : 0.0;
        enc_.Gauge(labels_, age);
        break;
      }
      case MetricType::kPercentileTimer:
      case MetricType::kPercentileDistributionSummary: {
        // Cells: total (ns or amount), then the counts of the kept buckets.
        const size_t n = f_.def.bounds.size();
        cumulative_.resize(n + 1);
        uint64_t running = 0;
        for (size_t i = 0; i < n; ++i) {
          running += cells[1 + i].Load();
          cumulative_[i] = running;
        }
        cumulative_[n] = running;
        const double total = static_cast<double>(cells[0].Load());
        const bool timer = f_.def.type == MetricType::kPercentileTimer;
        enc_.Histogram(labels_, f_.def.bounds, cumulative_, timer ? total / 1e9 : total, created,
                       {});
        break;
      }
      case MetricType::kInfo:
        enc_.Info(labels_);
        break;
      case MetricType::kStateSet: {
        const uint64_t bits = cells[0].Load();
        states_.clear();
        for (size_t i = 0; i < f_.def.states.size() && i < 64; ++i) {
          states_.push_back({f_.def.states[i], ((bits >> i) & 1) != 0});
        }
        enc_.StateSet(labels_, states_);
        break;
      }
    }
  }

  // The collector resets maxima only where the segment is writable (Moment::reset_maxima).
  static Cell* Writable(const Cell* cells) { return const_cast<Cell*>(cells); }

  // A value set at `stamp` (Unix ns, 0 = never) is past its time-to-live, or NaN under one.
  bool Expired(uint64_t stamp, double v) const {
    const uint64_t ttl = f_.def.ttl_ns;
    if (ttl == 0) return false;
    return stamp == 0 || std::isnan(v) ||
           (moment_.now_unix_ns > stamp && moment_.now_unix_ns - stamp > ttl);
  }

  void Summary(const Cell* cells, std::optional<double> created) {
    quantiles_.clear();
    if (!f_.def.quantiles.empty()) {
      const internal::SketchLayout sketch = meters::MakeSketchLayout(f_.def);
      sketch.WindowCounts(cells + 2, sketch.Slice(moment_.now_coarse_ns), &window_);
      for (double q : f_.def.quantiles) quantiles_.push_back({q, sketch.Quantile(window_, q)});
    }
    enc_.Summary(labels_, cells[0].Load(), cells[1].LoadDouble(), quantiles_, created);
  }

  // The _max and _sum_of_squares gauges of timers and distribution summaries.
  void Companion(const Cell* cells) {
    const bool timer = f_.def.type == MetricType::kTimer;
    if (pass_ == Pass::kSumOfSquares) {
      const double sq = cells[2].LoadDouble();
      enc_.Gauge(labels_, timer ? sq / 1e18 : sq);
      return;
    }
    const uint64_t bits = moment_.reset_maxima ? Writable(cells)[3].Exchange(0) : cells[3].Load();
    enc_.Gauge(labels_, timer ? static_cast<double>(bits) / 1e9 : std::bit_cast<double>(bits));
  }

  void Gauge(const Cell* cells) {
    const GaugeMode mode = f_.def.gauge_mode;
    if (mode == GaugeMode::kShared) {
      const double v = cells[0].LoadDouble();
      if (f_.def.ttl_ns != 0 && Expired(cells[1].Load(), v)) return;
      enc_.Gauge(labels_, v);
      return;
    }
    const bool live = mode >= GaugeMode::kLiveSum;
    const auto base = static_cast<GaugeMode>(static_cast<uint32_t>(mode) - (live ? 5 : 0));
    bool any = false;
    double agg = 0;
    uint64_t newest = 0;
    for (uint32_t s = 0; s < f_.stripes; ++s) {
      const Cell* c = cells + uint64_t{s} * f_.stride;
      const uint64_t stamp = c[1].Load();
      if (stamp == 0) continue;  // never set
      const bool unattached = s + 1 == f_.stripes;
      if (live) {
        const bool ok = unattached ? creator_alive_
                                   : s < workers_.size() && workers_[s].alive &&
                                         workers_[s].epoch == c[2].Load();
        if (!ok) continue;
      }
      const double v = c[0].LoadDouble();
      if (Expired(stamp, v)) continue;
      switch (base) {
        case GaugeMode::kSum:
          agg += v;
          break;
        case GaugeMode::kMin:
          agg = any ? std::min(agg, v) : v;
          break;
        case GaugeMode::kMax:
          agg = any ? std::max(agg, v) : v;
          break;
        case GaugeMode::kMostRecent:
          if (!any || stamp >= newest) {
            agg = v;
            newest = stamp;
          }
          break;
        default: {  // kAll: one series per worker
          worker_label_ = unattached ? "master" : std::to_string(s);
          labels_.push_back({"worker_id", worker_label_});
          enc_.Gauge(labels_, v);
          labels_.pop_back();
          break;
        }
      }
      any = true;
    }
    if (base == GaugeMode::kAll) return;
    if (any || base == GaugeMode::kSum) enc_.Gauge(labels_, agg);
  }

  const shm::Segment& seg_;
  expose::Encoder& enc_;
  const FamilyView& f_;
  const std::vector<WorkerState>& workers_;
  const bool creator_alive_;
  const Moment& moment_;
  const Pass pass_;
  absl::Status status_;
  // Reused across series, so a scrape allocates per family, not per series.
  std::vector<expose::Label> labels_;
  std::vector<uint64_t> cumulative_;
  std::vector<ExemplarCopy> bucket_ex_;
  std::vector<const expose::Exemplar*> exemplar_ptrs_;
  std::vector<expose::State> states_;
  std::vector<expose::Quantile> quantiles_;
  std::vector<uint64_t> window_;
  ExemplarCopy ex_;
  std::string worker_label_;
};

void SelfMetrics(const shm::Segment& seg, expose::Encoder& enc,
                 const std::vector<FamilyView>& families) {
  const shm::Header& h = seg.header();
  auto gauge = [&](std::string_view name, std::string_view help, double v) {
    enc.BeginFamily({name, expose::MetricType::kGauge, help, "bytes"});
    enc.Gauge({}, v);
    enc.EndFamily();
  };
  gauge("shmetrics_heap_used_bytes", "Bytes of the heap allocated, free lists included.",
        static_cast<double>(h.used.load(std::memory_order_relaxed)));
  gauge("shmetrics_heap_committed_bytes", "Bytes of memory backing the heap.",
        static_cast<double>(h.committed.load(std::memory_order_relaxed)));
  gauge("shmetrics_heap_max_bytes", "Size the heap may grow to.", static_cast<double>(h.max_size));
  enc.BeginFamily({"shmetrics_heap_allocation_failures", expose::MetricType::kCounter,
                   "Allocations refused because the heap was full.", ""});
  enc.Counter({}, static_cast<double>(h.alloc_failures.load(std::memory_order_relaxed)),
              std::nullopt, nullptr);
  enc.EndFamily();
  enc.BeginFamily({"shmetrics_lock_recoveries", expose::MetricType::kCounter,
                   "Times a heap lock was recovered from a process that died holding it.", ""});
  enc.Counter({},
              static_cast<double>(h.lock.recoveries() + h.worker_lock.recoveries() +
                                  h.exemplar_lock.recoveries()),
              std::nullopt, nullptr);
  enc.EndFamily();
  enc.BeginFamily({"shmetrics_series_overflow", expose::MetricType::kCounter,
                   "Label lookups sent to a family's overflow series (child limit or full heap).",
                   ""});
  for (const FamilyView& f : families) {
    const uint64_t n = f.rec->overflowed.load(std::memory_order_relaxed);
    if (n == 0) continue;
    const expose::Label l[] = {{"family", f.def.name}};
    enc.Counter(l, static_cast<double>(n), std::nullopt, nullptr);
  }
  enc.EndFamily();
}

}  // namespace

absl::Status Collect(const shm::Segment& seg, expose::Encoder& enc, const CollectOptions& options) {
  if (seg.header().magic.load(std::memory_order_acquire) != shm::kMagic) {
    return Corrupt(seg, "bad magic");
  }
  auto read = ReadFamilies(seg);
  if (!read.ok()) return read.status();
  const std::vector<FamilyView>& families = *read;
  const auto infos = seg.Workers();
  std::vector<WorkerState> workers;
  for (const auto& w : infos) {
    if (w.id >= workers.size()) workers.resize(w.id + 1);
    workers[w.id] = {w.alive, w.epoch};
  }
  const bool creator_alive = seg.CreatorAlive();
  const Moment moment{internal::NowUnixNanos(), internal::CoarseNowUnixNanos(),
                      options.reset_maxima && !seg.read_only()};
  for (const FamilyView& f : families) {
    if (!Selected(options, f.def)) continue;
    enc.BeginFamily({f.def.name, ToExpose(f.def.type), f.def.help, f.def.unit});
    absl::Status s = FamilyWriter(seg, enc, f, workers, creator_alive, moment).Run();
    enc.EndFamily();
    if (!s.ok()) return s;
    if (!HasCompanions(f.def.type)) continue;
    // Separate gauge families, without a unit: N_seconds_max does not end in _seconds.
    const std::string max_name = f.def.name + "_max";
    const std::string sq_name = f.def.name + "_sum_of_squares";
    enc.BeginFamily({max_name, expose::MetricType::kGauge,
                     f.def.type == MetricType::kTimer
                         ? "Largest duration since the previous scrape, in seconds."
                         : "Largest amount since the previous scrape.",
                     ""});
    s = FamilyWriter(seg, enc, f, workers, creator_alive, moment, Pass::kMax).Run();
    enc.EndFamily();
    if (!s.ok()) return s;
    enc.BeginFamily({sq_name, expose::MetricType::kGauge,
                     f.def.type == MetricType::kTimer ? "Sum of the squares of the durations, "
                                                        "in seconds squared."
                                                      : "Sum of the squares of the amounts.",
                     ""});
    s = FamilyWriter(seg, enc, f, workers, creator_alive, moment, Pass::kSumOfSquares).Run();
    enc.EndFamily();
    if (!s.ok()) return s;
  }
  if (options.self_metrics && options.names.empty()) SelfMetrics(seg, enc, families);
  if (options.process_metrics && options.names.empty()) {
    std::vector<std::string> label_values;
    std::vector<process::WorkerProcessStats> stats;
    label_values.reserve(infos.size() + 1);
    auto add = [&](pid_t pid, std::string label) {
      auto s = process::ReadProcessStats(pid);
      if (!s.ok()) return;
      label_values.push_back(std::move(label));
      stats.push_back({{}, *s});
    };
    if (creator_alive) add(static_cast<pid_t>(seg.header().creator_pid), "master");
    for (const auto& w : infos) {
      if (w.alive) add(w.pid, std::to_string(w.id));
    }
    for (size_t i = 0; i < stats.size(); ++i) stats[i].worker_label_value = label_values[i];
    process::EncodeProcessMetrics(enc, stats);
  }
  return absl::OkStatus();
}

absl::Status VerifyMetrics(const shm::Segment& seg) {
  if (absl::Status s = seg.Verify(); !s.ok()) return s;
  auto families = ReadFamilies(seg);
  if (!families.ok()) return families.status();
  for (const FamilyView& f : *families) {
    std::vector<std::string_view> values;
    absl::Status status;
    absl::Status s = seg.ForEachEntry(f.table, [&](std::string_view key, uint64_t rec) {
      const auto* h = reinterpret_cast<const SeriesHeader*>(seg.Checked(rec, f.series_size));
      if (h == nullptr || h->magic != meters::kSeriesMagic ||
          !meters::SplitKey(key, f.def.label_names.size(), &values)) {
        status = Corrupt(seg, absl::StrCat("series of \"", f.def.name, "\" at offset ", rec));
        return false;
      }
      return true;
    });
    if (!s.ok()) return s;
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace shmetrics::collect
