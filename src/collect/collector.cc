#include "collect/collector.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <span>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meters/decode.h"
#include "meters/layout.h"
#include "meters/meter_types.h"
#include "process/proc_stats.h"
#include "process/process_metrics.h"
#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"

namespace shmetrics::collect {
namespace {

using internal::Cell;
using meters::Definition;
using meters::FamilyRecord;
using meters::FamilyView;
using meters::MeterType;
using meters::SeriesHeader;

absl::Status Corrupt(const shm::Segment& seg, std::string_view what) {
  return absl::DataLossError(
      absl::StrCat(seg.location().Describe(), " is corrupt: ", std::string(what)));
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
  if (!meters::ParametersAreSane(f.def)) {
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

// Every family of the heap, validated, sorted by name.
// When a family record is what fails, *bad_family (if given) names it.
absl::StatusOr<std::vector<FamilyView>> ReadFamilies(const shm::Segment& seg,
                                                     std::string* bad_family = nullptr) {
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
    if (!f.ok()) {
      if (bad_family != nullptr) *bad_family = name;
      return f.status();
    }
    families.push_back(std::move(*f));
  }
  return families;
}

// A family is selected by its name or by one of its sample names. As it always has, the filter
// takes the sample suffixes of every type, not only the family's own.
bool Selected(const CollectOptions& o, const Definition& d) {
  if (o.names.empty()) return true;
  auto has = [&](std::string_view n) {
    return std::find(o.names.begin(), o.names.end(), n) != o.names.end();
  };
  if (has(d.name)) return true;
  for (const MeterType& t : meters::AllMeterTypes()) {
    for (std::string_view s : t.sample_suffixes) {
      if (has(d.name + std::string(s))) return true;
    }
  }
  for (const meters::CompanionFamily& c : meters::MeterTypeOf(d.type).companions) {
    if (has(d.name + std::string(c.suffix))) return true;
  }
  return false;
}

// Streams the series of one family (or of one of its companion families) to a decoder,
// checking every series record on the way.
class FamilyWalk {
 public:
  FamilyWalk(const shm::Segment& seg, const FamilyView& f, meters::SeriesDecoder& decoder,
             std::span<const expose::Label> extra = {})
      : seg_(seg), f_(f), decoder_(decoder), extra_(extra) {}

  absl::Status Run() {
    const FamilyView& f = f_;
    const size_t nl = f.def.label_names.size();
    // The label names are the family's: laid out once, so a series only sets its values.
    std::vector<expose::Label>& labels = decoder_.labels();
    labels.clear();
    labels.reserve(f.def.const_labels.size() + nl + extra_.size() + 1);
    for (const auto& [n, v] : f.def.const_labels) labels.push_back({n, v});
    const size_t first = labels.size();
    for (size_t i = 0; i < nl; ++i) labels.push_back({f.def.label_names[i], {}});
    labels.insert(labels.end(), extra_.begin(), extra_.end());
    absl::Status status = seg_.ForEachEntry(f.table, [&](std::string_view key, uint64_t off) {
      const char* p = seg_.Checked(off, f.series_size);
      if (p == nullptr) {
        status_ = Corrupt(seg_, absl::StrCat("series of \"", f.def.name, "\" out of range"));
        return false;
      }
      const auto* h = reinterpret_cast<const SeriesHeader*>(p);
      if (h->magic != meters::kSeriesMagic) return true;    // removed while we looked
      expose::Label* const values = labels.data() + first;  // the decoder may have grown it
      if (!meters::SplitKeyInto(key, nl,
                                [&](size_t i, std::string_view v) { values[i].value = v; })) {
        status_ = Corrupt(seg_, absl::StrCat("series key of \"", f.def.name, "\""));
        return false;
      }
      decoder_.Decode(h, reinterpret_cast<const Cell*>(p + internal::kSeriesCellsOffset));
      return true;
    });
    if (!status.ok()) return status;
    return status_;
  }

 private:
  const shm::Segment& seg_;
  const FamilyView& f_;
  meters::SeriesDecoder& decoder_;
  const std::span<const expose::Label> extra_;  // the heap label of a merged collection
  absl::Status status_;
};

// One heap of a collection, read and checked: its families and what their decoding shares.
struct HeapRead {
  const shm::Segment* seg = nullptr;
  std::vector<FamilyView> families;
  std::vector<shm::Segment::WorkerInfo> infos;
  std::vector<meters::WorkerState> workers;
  bool creator_alive = false;
  meters::Moment moment{};
  std::vector<expose::Label> extra;  // {heap label, value} when merging, else empty
};

absl::Status ReadHeap(const shm::Segment& seg, const CollectOptions& options, HeapRead* out) {
  if (seg.header().magic.load(std::memory_order_acquire) != shm::kMagic) {
    return Corrupt(seg, "bad magic");
  }
  auto read = ReadFamilies(seg);
  if (!read.ok()) return read.status();
  out->seg = &seg;
  out->families = std::move(*read);
  out->infos = seg.Workers();
  for (const auto& w : out->infos) {
    if (w.id >= out->workers.size()) out->workers.resize(w.id + 1);
    out->workers[w.id] = {w.alive, w.epoch};
  }
  out->creator_alive = seg.CreatorAlive();
  out->moment = {internal::NowUnixNanos(), internal::CoarseNowUnixNanos(),
                 options.reset_maxima && !seg.read_only()};
  return absl::OkStatus();
}

// A family as one or more heaps hold it, with identical definitions.
struct Member {
  const HeapRead* heap;
  const FamilyView* family;
};

// Encodes one family and its companion families, with the series of every heap that holds it.
absl::Status EncodeFamily(expose::Encoder& enc, std::span<const Member> members) {
  const FamilyView& first = *members[0].family;
  const MeterType& type = meters::MeterTypeOf(first.def.type);
  for (int companion = meters::SeriesDecoder::kMainSamples;
       companion < static_cast<int>(type.companions.size()); ++companion) {
    if (companion == meters::SeriesDecoder::kMainSamples) {
      enc.BeginFamily({first.def.name, type.exposed, first.def.help, first.def.unit});
    } else {
      const meters::CompanionFamily& c = type.companions[companion];
      const std::string name = first.def.name + std::string(c.suffix);
      enc.BeginFamily({name, expose::MetricType::kGauge, c.help, ""});
    }
    for (const Member& m : members) {
      const HeapRead& h = *m.heap;
      meters::SeriesDecoder decoder(*h.seg, enc, *m.family, h.workers, h.creator_alive, h.moment,
                                    companion);
      if (absl::Status s = FamilyWalk(*h.seg, *m.family, decoder, h.extra).Run(); !s.ok()) {
        enc.EndFamily();
        return s;
      }
    }
    enc.EndFamily();
  }
  return absl::OkStatus();
}

using expose::MetricType::kCounter;
using expose::MetricType::kGauge;

// The self-metrics, in the order SelfMetrics writes them.
constexpr expose::FamilyInfo kSelfFamilies[] = {
    {"shmetrics_heap_used_bytes", kGauge, "Bytes of the heap allocated, free lists included.",
     "bytes"},
    {"shmetrics_heap_committed_bytes", kGauge, "Bytes of memory backing the heap.", "bytes"},
    {"shmetrics_heap_max_bytes", kGauge, "Size the heap may grow to.", "bytes"},
    {"shmetrics_heap_allocation_failures", kCounter,
     "Allocations refused because the heap was full.", ""},
    {"shmetrics_lock_recoveries", kCounter,
     "Times a heap lock was recovered from a process that died holding it.", ""},
    {"shmetrics_series_overflow", kCounter,
     "Label lookups sent to a family's overflow series (child limit or full heap).", ""},
};

// A family the collector writes itself is selected by its name or one of its sample names.
bool SelectedOwn(const CollectOptions& o, const expose::FamilyInfo& f) {
  if (o.names.empty()) return true;
  for (const std::string& n : meters::ClaimedNames(f.name, f.type)) {
    if (std::find(o.names.begin(), o.names.end(), n) != o.names.end()) return true;
  }
  return false;
}

// The self-metrics of every heap, each heap's samples with its heap label.
void SelfMetrics(expose::Encoder& enc, std::span<const HeapRead> heaps, const CollectOptions& o) {
  constexpr size_t kScalars = std::size(kSelfFamilies) - 1;
  auto values = [](const shm::Header& h) -> std::array<double, kScalars> {
    return {static_cast<double>(h.used.load(std::memory_order_relaxed)),
            static_cast<double>(h.committed.load(std::memory_order_relaxed)),
            static_cast<double>(h.max_size),
            static_cast<double>(h.alloc_failures.load(std::memory_order_relaxed)),
            static_cast<double>(h.lock.recoveries() + h.worker_lock.recoveries() +
                                h.exemplar_lock.recoveries())};
  };
  for (size_t i = 0; i < kScalars; ++i) {
    const expose::FamilyInfo& f = kSelfFamilies[i];
    if (!SelectedOwn(o, f)) continue;
    enc.BeginFamily(f);
    for (const HeapRead& h : heaps) {
      const double v = values(h.seg->header())[i];
      if (f.type == kCounter) {
        enc.Counter(h.extra, v, std::nullopt, nullptr);
      } else {
        enc.Gauge(h.extra, v);
      }
    }
    enc.EndFamily();
  }
  const expose::FamilyInfo& overflow = kSelfFamilies[kScalars];
  if (!SelectedOwn(o, overflow)) return;
  enc.BeginFamily(overflow);
  std::vector<expose::Label> labels;
  for (const HeapRead& h : heaps) {
    for (const FamilyView& f : h.families) {
      const uint64_t n = f.rec->overflowed.load(std::memory_order_relaxed);
      if (n == 0) continue;
      labels.assign({{"family", f.def.name}});
      labels.insert(labels.end(), h.extra.begin(), h.extra.end());
      enc.Counter(labels, static_cast<double>(n), std::nullopt, nullptr);
    }
  }
  enc.EndFamily();
}

// process_* of every live worker and of the creator of each heap.
void ProcessMetrics(expose::Encoder& enc, std::span<const HeapRead> heaps,
                    const CollectOptions& options) {
  const auto selected = [&](const expose::FamilyInfo& f) { return SelectedOwn(options, f); };
  if (!std::any_of(process::ProcessFamilies().begin(), process::ProcessFamilies().end(),
                   selected)) {
    return;
  }
  std::vector<std::string> label_values;
  std::vector<process::WorkerProcessStats> stats;
  std::vector<size_t> heap_of;
  std::string_view heap_label;
  for (size_t i = 0; i < heaps.size(); ++i) {
    const HeapRead& h = heaps[i];
    if (!h.extra.empty()) heap_label = h.extra[0].name;
    auto add = [&](pid_t pid, std::string label) {
      auto s = process::ReadProcessStats(pid);
      if (!s.ok()) return;
      label_values.push_back(std::move(label));
      stats.push_back({{}, *s});
      heap_of.push_back(i);
    };
    if (h.creator_alive) add(static_cast<pid_t>(h.seg->header().creator_pid), "master");
    for (const auto& w : h.infos) {
      if (w.alive) add(w.pid, std::to_string(w.id));
    }
  }
  for (size_t i = 0; i < stats.size(); ++i) {
    stats[i].worker_label_value = label_values[i];
    const HeapRead& h = heaps[heap_of[i]];
    if (!h.extra.empty()) stats[i].heap_label_value = h.extra[0].value;
  }
  process::EncodeProcessMetrics(enc, stats, "worker_id", selected, heap_label);
}

// Why two heaps' families of one name cannot be one family; "" when they can.
std::string MergeProblem(const Member& a, const Member& b) {
  const Definition& x = a.family->def;
  const Definition& y = b.family->def;
  if (x.SameShape(y)) return "";
  auto describe = [](const Definition& d) {
    return absl::StrCat(std::string(meters::MeterTypeOf(d.type).name), " with labels [",
                        absl::StrJoin(d.label_names, ", "), "]");
  };
  return absl::StrCat("family \"", x.name, "\" is a ", describe(x), " in ",
                      a.heap->seg->location().Describe(), " and a ", describe(y), " in ",
                      b.heap->seg->location().Describe(),
                      " (the definitions differ in type, labels, unit, buckets or options): "
                      "they cannot be served as one family, so it is left out");
}

// Records the names family `members` would write; a name another family of the merged
// exposition already writes makes it a conflict (the message), and nothing is recorded.
std::string ClaimNames(std::span<const Member> members,
                       std::map<std::string, std::string_view>* claimed) {
  const Definition& d = members[0].family->def;
  const std::vector<std::string> names = meters::ClaimedNames(d);
  for (const std::string& n : names) {
    const auto it = claimed->find(n);
    if (it == claimed->end()) continue;
    return absl::StrCat("family \"", d.name, "\" would write the sample name \"", n,
                        "\", which family \"", std::string(it->second),
                        "\" writes too, so it is left out");
  }
  for (const std::string& n : names) claimed->emplace(n, d.name);
  return "";
}

bool HasLabel(const Definition& d, std::string_view label) {
  if (label.empty()) return false;
  for (const auto& n : d.label_names) {
    if (n == label) return true;
  }
  for (const auto& [n, v] : d.const_labels) {
    if (n == label) return true;
  }
  return false;
}

}  // namespace

absl::Status Collect(const shm::Segment& seg, expose::Encoder& enc, const CollectOptions& options) {
  const HeapSource one[] = {{&seg, ""}};
  return CollectMerged(one, "", enc, options, nullptr);
}

absl::Status CollectMerged(std::span<const HeapSource> sources, std::string_view heap_label,
                           expose::Encoder& enc, const CollectOptions& options,
                           std::vector<MergeConflict>* conflicts) {
  std::vector<HeapRead> heaps(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    if (absl::Status s = ReadHeap(*sources[i].segment, options, &heaps[i]); !s.ok()) return s;
    if (!heap_label.empty()) heaps[i].extra = {{heap_label, sources[i].label_value}};
  }
  // Families by name, each with the heaps that hold it, in the order the heaps were given.
  std::map<std::string_view, std::vector<Member>> by_name;
  for (const HeapRead& h : heaps) {
    for (const FamilyView& f : h.families) by_name[f.def.name].push_back({&h, &f});
  }
  // Registration keeps the families of a heap from sharing a sample name, but families of
  // different heaps may (counter x in one, gauge x_total in another), and so may those of a
  // heap an older version wrote or someone crafted: the later one in name order is left out.
  std::map<std::string, std::string_view> claimed;  // sample or family name -> its family
  for (const auto& [name, members] : by_name) {
    if (!Selected(options, members[0].family->def)) continue;
    std::string problem;
    for (size_t i = 1; i < members.size() && problem.empty(); ++i) {
      problem = MergeProblem(members[0], members[i]);
    }
    if (problem.empty()) problem = ClaimNames(members, &claimed);
    if (problem.empty() && HasLabel(members[0].family->def, heap_label)) {
      problem = absl::StrCat("family \"", std::string(name), "\" has a label named \"",
                             std::string(heap_label),
                             "\", the label that names each served heap, so it is left out");
    }
    if (!problem.empty()) {
      if (conflicts != nullptr) conflicts->push_back({std::string(name), std::move(problem)});
      continue;
    }
    if (absl::Status s = EncodeFamily(enc, members); !s.ok()) return s;
  }
  if (heaps.empty()) return absl::OkStatus();  // no family without a sample
  if (options.self_metrics) SelfMetrics(enc, heaps, options);
  if (options.process_metrics) ProcessMetrics(enc, heaps, options);
  return absl::OkStatus();
}

std::span<const expose::FamilyInfo> CollectorFamilies() {
  static const auto* all = [] {
    auto* v =
        new std::vector<expose::FamilyInfo>(std::begin(kSelfFamilies), std::end(kSelfFamilies));
    for (const expose::FamilyInfo& f : process::ProcessFamilies()) v->push_back(f);
    return v;
  }();
  return *all;
}

absl::Status VerifyMetrics(const shm::Segment& seg) {
  if (absl::Status s = seg.Verify(); !s.ok()) return s;
  auto families = ReadFamilies(seg);
  if (!families.ok()) return families.status();
  // Which family (or collector family) writes each name; the first name written twice fails.
  std::map<std::string, std::string> owner;
  auto claim = [&](const std::vector<std::string>& names, const std::string& family) {
    for (const std::string& n : names) {
      const auto [it, inserted] = owner.emplace(n, family);
      if (!inserted) {
        return absl::DataLossError(
            absl::StrCat(seg.location().Describe(), " holds clashing families: metric \"",
                         it->second, "\" and metric \"", family, "\" both expose samples named \"",
                         n, "\", which makes every scrape invalid"));
      }
    }
    return absl::OkStatus();
  };
  for (const expose::FamilyInfo& f : CollectorFamilies()) {
    if (absl::Status s = claim(meters::ClaimedNames(f.name, f.type),
                               absl::StrCat(std::string(f.name), " (the collector's own)"));
        !s.ok()) {
      return s;
    }
  }
  for (const FamilyView& f : *families) {
    if (absl::Status s = claim(meters::ClaimedNames(f.def), f.def.name); !s.ok()) return s;
  }
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

absl::StatusOr<std::vector<FamilySummary>> ListFamilies(const shm::Segment& seg,
                                                        std::string* bad_family) {
  auto families = ReadFamilies(seg, bad_family);
  if (!families.ok()) return families.status();
  std::vector<FamilySummary> out;
  out.reserve(families->size());
  for (const FamilyView& f : *families) {
    out.push_back({f.def.name, f.def.type, seg.TableSize(f.table)});
  }
  return out;
}

}  // namespace shmetrics::collect
