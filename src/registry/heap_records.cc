#include "registry/heap_records.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collect/collector.h"
#include "expose/names.h"
#include "meters/meter_types.h"
#include "registry/definition.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"

namespace shmetrics::registry {
namespace {

using meters::Definition;
using meters::FamilyRecord;

// Frees, in the reverse order of Keep, every block kept since construction, unless Commit()
// was called. REQUIRES: the heap lock is held for its whole life.
class UndoGuard {
 public:
  explicit UndoGuard(shm::Segment& seg) : seg_(seg) {}
  UndoGuard(const UndoGuard&) = delete;
  UndoGuard& operator=(const UndoGuard&) = delete;
  // Lives only inside CreateFamilyRecords, whose caller's lock the analysis checks there; it
  // cannot tie this member's segment to that one.
  ~UndoGuard() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (committed_) return;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      if (it->table) {
        seg_.FreeTable(it->offset);
      } else {
        seg_.Free(it->offset);
      }
    }
  }

  // The value of a successful allocation, kept for undo; throws its error otherwise.
  uint64_t Block(const absl::StatusOr<uint64_t>& off) { return Keep(off, false); }
  uint64_t Table(const absl::StatusOr<uint64_t>& off) { return Keep(off, true); }
  void Commit() { committed_ = true; }

 private:
  struct Undo {
    uint64_t offset;
    bool table;
  };
  uint64_t Keep(const absl::StatusOr<uint64_t>& off, bool table) {
    if (!off.ok()) throw ToError(off.status());
    undo_.push_back({*off, table});
    return *off;
  }

  shm::Segment& seg_;
  std::vector<Undo> undo_;
  bool committed_ = false;
};

}  // namespace

void CheckClaimedNames(const shm::Segment& seg, uint64_t root, const Definition& def) {
  const std::vector<std::string> claims = meters::ClaimedNames(def);
  auto clash = [&](std::string_view other, std::string_view other_type, std::string_view sample) {
    Throw(absl::StatusCode::kAlreadyExists,
          absl::StrCat("metric ", Quoted(def.name), " (",
                       std::string(meters::MeterTypeOf(def.type).name),
                       ") would clash with metric ", Quoted(other), " (", std::string(other_type),
                       "): both would expose samples named ", Quoted(sample)));
  };
  for (const std::string& name : claims) {
    // The collector's own families.
    for (const expose::FamilyInfo& own : collect::CollectorFamilies()) {
      for (const std::string& n : meters::ClaimedNames(own.name, own.type)) {
        if (n == name) clash(own.name, "written by the collector itself", name);
      }
    }
    // The families that may claim `name`: the one of that name, and each stem of it.
    auto check_owner = [&](std::string_view stem) {
      if (stem.empty() || stem == def.name) return;
      const uint64_t off = seg.Find(root, stem);
      if (off == 0) return;
      const Definition other = ReadHeapDefinition(seg, off, stem);
      for (const std::string& n : meters::ClaimedNames(other)) {
        if (n == name) clash(other.name, meters::MeterTypeOf(other.type).name, name);
      }
    };
    check_owner(name);
    for (std::string_view suffix : meters::ClaimSuffixes()) {
      if (EndsWith(name, suffix))
        check_owner(std::string_view(name).substr(0, name.size() - suffix.size()));
    }
  }
  // A UTF-8 name escaped for a scraper that did not ask for UTF-8 must not become one of the
  // collector's own: the collector writes its families last, so they would be the ones left out.
  if (!expose::IsLegacyMetricName(def.name)) {
    for (expose::Escaping e :
         {expose::Escaping::kUnderscores, expose::Escaping::kDots, expose::Escaping::kValues}) {
      std::string scratch;
      Definition escaped = def;
      escaped.name = std::string(expose::EscapeName(def.name, e, &scratch));
      for (const std::string& name : meters::ClaimedNames(escaped)) {
        for (const expose::FamilyInfo& own : collect::CollectorFamilies()) {
          for (const std::string& n : meters::ClaimedNames(own.name, own.type)) {
            if (n == name) clash(own.name, "written by the collector itself", name);
          }
        }
      }
    }
  }
}

uint64_t CreateFamilyRecords(shm::Segment& seg, uint64_t root, const Definition& def,
                             uint32_t max_children) {
  const std::string blob = meters::EncodeDefinition(def);
  const meters::SeriesShape shape = meters::ShapeOf(def, seg.header().max_workers);
  UndoGuard undo(seg);
  const uint64_t blob_off = undo.Block(seg.Allocate(blob.size(), shm::BlockKind::kBlob));
  std::memcpy(seg.base() + blob_off, blob.data(), blob.size());
  const uint64_t table = undo.Table(seg.NewTable(16));
  const uint64_t fam = undo.Block(seg.Allocate(sizeof(FamilyRecord), shm::BlockKind::kRecord));
  auto* rec = seg.At<FamilyRecord>(fam);
  rec->magic = meters::kFamilyMagic;
  rec->type = static_cast<uint32_t>(def.type);
  rec->gauge_mode = static_cast<uint32_t>(def.gauge_mode);
  rec->num_labels = static_cast<uint32_t>(def.label_names.size());
  rec->num_values = static_cast<uint32_t>(  // a definition has states or bounds, not both
      !def.states.empty() ? def.states.size() : def.bounds.size());
  rec->stripes = shape.stripes;
  rec->stripe_stride = shape.stripe_stride;
  rec->cells_per_stripe = shape.cells_per_stripe;
  rec->series_size = static_cast<uint32_t>(shape.series_size);
  rec->max_children = max_children;
  rec->exemplar_slots = shape.exemplar_slots;
  rec->series_table.store(table, std::memory_order_relaxed);
  rec->definition = blob_off;
  rec->definition_len = blob.size();
  rec->created_unix_ns = internal::NowUnixNanos();
  // Space for the overflow series, so a full heap still has somewhere to send new children.
  if (!def.label_names.empty()) {
    const size_t key_len = def.label_names.size() * (4 + kOverflowLabelValue.size());
    auto spare_record = seg.Allocate(shape.series_size, shm::BlockKind::kRecord);
    auto spare_entry = seg.AllocateSpareEntry(key_len);
    rec->spare_record = spare_record.ok() ? *spare_record : 0;
    rec->spare_entry = spare_entry.ok() ? *spare_entry : 0;
    // Kept so that the undo frees the record first, then the entry.
    if (spare_entry.ok()) undo.Block(spare_entry);
    if (spare_record.ok()) undo.Block(spare_record);
    if (!spare_entry.ok()) throw ToError(spare_entry.status());
    if (!spare_record.ok()) throw ToError(spare_record.status());
  }
  if (absl::Status s = seg.Insert(root, def.name, fam); !s.ok()) throw ToError(s);
  undo.Commit();
  return fam;
}

Definition ReadHeapDefinition(const shm::Segment& seg, uint64_t offset, std::string_view name) {
  const auto* rec =
      reinterpret_cast<const FamilyRecord*>(seg.Checked(offset, sizeof(FamilyRecord)));
  if (rec == nullptr || rec->magic != meters::kFamilyMagic ||
      seg.Checked(rec->definition, rec->definition_len) == nullptr) {
    Throw(absl::StatusCode::kDataLoss,
          absl::StrCat("the heap's record of metric ", Quoted(name), " is corrupt"));
  }
  auto existing =
      meters::DecodeDefinition(std::string_view(seg.base() + rec->definition, rec->definition_len));
  if (!existing.ok()) throw ToError(existing.status());
  return *std::move(existing);
}

}  // namespace shmetrics::registry
