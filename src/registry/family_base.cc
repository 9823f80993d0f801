// FamilyBase: a family's label lookup, series creation and removal, shared by every Family<T>.
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meters/layout.h"
#include "meters/meter_types.h"
#include "registry/definition.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shmetrics/registry.h"
#include "util/bytes.h"

namespace shmetrics {

using meters::FamilyRecord;
using meters::SeriesHeader;
using registry::Quoted;
using registry::ValidateLabelValue;

namespace internal {

namespace {

// Returns a removed series' record (and its exemplars) to the family's free list.
void FreeSeries(shm::Segment& seg, uint64_t family_off, uint64_t rec)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(seg.lock()) {
  auto* h = seg.At<SeriesHeader>(rec);
  if (const uint64_t ex = h->exemplars.load(std::memory_order_relaxed); ex != 0) {
    h->exemplars.store(0, std::memory_order_relaxed);
    seg.Free(ex);
  }
  seg.FreeToList(&seg.At<FamilyRecord>(family_off)->free_series, rec);
}

}  // namespace

std::atomic<uint64_t> g_clock_for_testing{0};

void SetClockForTesting(uint64_t unix_ns) noexcept {
  g_clock_for_testing.store(unix_ns, std::memory_order_relaxed);
}

uint64_t NowUnixNanos() noexcept {
  if (const uint64_t set = g_clock_for_testing.load(std::memory_order_relaxed); set != 0)
      [[unlikely]] {
    return set;
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

FamilyBase::~FamilyBase() = default;

char* FamilyBase::Dummy() const {
  // 64-byte aligned inside the buffer, like a heap block would be for cells.
  auto p = reinterpret_cast<uintptr_t>(dummy_.get());
  return reinterpret_cast<char*>((p + 63) & ~uintptr_t{63});
}

std::string_view FamilyBase::BuildKey(std::span<const std::string_view> values, char* buf,
                                      size_t cap, std::string* spill) const {
  size_t total = 0;
  for (std::string_view v : values) total += 4 + v.size();
  char* out = buf;
  if (total > cap) [[unlikely]] {
    spill->resize(total);
    out = spill->data();
  }
  char* p = out;
  const uint32_t* order = to_canonical_.data();
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string_view v = values[order[i]];
    const auto n = static_cast<uint32_t>(v.size());
    std::memcpy(p, &n, 4);
    util::CopyShort(p + 4, v.data(), v.size());
    p += 4 + v.size();
  }
  return std::string_view(out, total);
}

SeriesRef FamilyBase::Lookup(std::span<const std::string_view> values, bool* own) const {
  if (values.size() != declared_names_.size()) [[unlikely]] {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name_), " has ", declared_names_.size(), " label names [",
                       absl::StrJoin(declared_names_, ", "), "]; got ", values.size(), " values"));
  }
  char buf[512];
  std::string spill;
  const std::string_view key = BuildKey(values, buf, sizeof buf, &spill);
  bool found = true;
  if (own == nullptr) own = &found;
  *own = true;
  const uint64_t hash = shm::KeyHash(key.data(), key.size());
  if (const uint64_t off = segment_->Find(table_off_, key, hash); off != 0) [[likely]] {
    return {segment_->base() + off, this};
  }
  return CreateSeries(key, hash, values, own);
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
  if (const uint64_t initial = meters::MeterTypeOf(type_).initial_value; initial != 0) {
    for (uint32_t s = 0; s < stripes_; ++s) cells[uint64_t{s} * stripe_stride_].Init(initial);
  }
}

SeriesRef FamilyBase::CreateSeries(std::string_view key, uint64_t hash,
                                   std::span<const std::string_view> values, bool* own) const {
  for (size_t i = 0; i < values.size(); ++i) {
    ValidateLabelValue(name_, declared_names_[i], values[i]);
  }
  shm::Segment& seg = *segment_;
  *own = false;
  if (segment_->read_only()) return {Dummy(), this};
  if (max_children_ != 0 && seg.TableSize(table_off_) >= max_children_) return Overflow();
  if (char* record = FindOrInsertSeries(key, hash); record != nullptr) {
    *own = true;
    return {record, this};
  }
  // The heap is full: the overflow child takes the updates when it exists (or still fits),
  // else they go nowhere; either way the self-metric counts the lookup.
  return Overflow();
}

char* FamilyBase::FindOrInsertSeries(std::string_view key, uint64_t hash, bool use_spares) const {
  shm::Segment& seg = *segment_;
  auto* fam = seg.At<FamilyRecord>(family_off_);
  shm::MutexLock lock(seg.lock());
  // Another process may have created it since the lock-free miss.
  if (const uint64_t off = seg.FindLocked(table_off_, key, hash); off != 0) return seg.base() + off;
  absl::StatusOr<uint64_t> rec =
      seg.AllocateFromList(&fam->free_series, series_size_, shm::BlockKind::kRecord);
  if (!rec.ok()) {
    if (!use_spares || fam->spare_record == 0) return nullptr;
    rec = std::exchange(fam->spare_record, 0);  // a crash from here on leaks it, at worst
  }
  InitSeries(seg.base() + *rec);
  if (!seg.Insert(table_off_, key, hash, *rec, use_spares ? &fam->spare_entry : nullptr).ok()) {
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
  const uint64_t hash = shm::KeyHash(key.data(), key.size());
  if (const uint64_t off = seg.Find(table_off_, key, hash); off != 0) {
    return {seg.base() + off, this};
  }
  char* record = FindOrInsertSeries(key, hash, /*use_spares=*/true);
  return {record != nullptr ? record : Dummy(), this};
}

bool FamilyBase::Remove(std::span<const std::string_view> values) const {
  if (values.size() != declared_names_.size()) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name_), " has ", declared_names_.size(),
                       " label names; got ", values.size(), " values"));
  }
  if (values.empty() || segment_->read_only()) return false;
  char buf[512];
  std::string spill;
  const std::string_view key = BuildKey(values, buf, sizeof buf, &spill);
  shm::MutexLock lock(segment_->lock());
  const uint64_t rec = segment_->Erase(table_off_, key);
  if (rec == 0) return false;
  FreeSeries(*segment_, family_off_, rec);
  return true;
}

void FamilyBase::Clear() const {
  if (segment_->read_only()) return;
  {
    shm::MutexLock lock(segment_->lock());
    // EraseAll calls back under the lock taken above, which the analysis cannot see through.
    segment_->EraseAll(table_off_, [this](uint64_t rec) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      FreeSeries(*segment_, family_off_, rec);
    });
  }
  // A family without labels always has its one series.
  if (declared_names_.empty()) (void)Lookup({});
}

size_t FamilyBase::size() const { return segment_->TableSize(table_off_); }

}  // namespace internal

}  // namespace shmetrics
