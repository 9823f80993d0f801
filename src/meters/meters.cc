// Out-of-line parts of the meters: bucket helpers, exemplars, reads that sum cells.
#include <cmath>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "meters/layout.h"
#include "meters/names.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"

namespace shmetrics {

namespace internal {
void (*g_observe_hook)() = nullptr;
}  // namespace internal

std::vector<double> DefaultBuckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

std::vector<double> LinearBuckets(double start, double width, int count) {
  if (count < 1 || count > static_cast<int>(kMaxBuckets) || !(width > 0) || !std::isfinite(start) ||
      !std::isfinite(width)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        absl::StrCat("LinearBuckets(", start, ", ", width, ", ", count,
                     "): needs count >= 1 (at most ", kMaxBuckets, ") and a finite width > 0"));
  }
  std::vector<double> b(count);
  for (int i = 0; i < count; ++i) b[i] = start + width * i;
  return b;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (count < 1 || count > static_cast<int>(kMaxBuckets) || !(start > 0) || !(factor > 1) ||
      !std::isfinite(start) || !std::isfinite(factor)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        absl::StrCat("ExponentialBuckets(", start, ", ", factor, ", ", count,
                     "): needs count >= 1 (at most ", kMaxBuckets, "), start > 0 and factor > 1"));
  }
  std::vector<double> b(count);
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) b[i] = v;
  return b;
}

double Counter::Value() const noexcept {
  double total = 0;
  for (uint32_t s = 0; s < stripes_; ++s) {
    const internal::Cell* c = cells_ + uint64_t{stride_} * s;
    total += static_cast<double>(c[internal::CounterCells::kInteger].Load()) +
             c[internal::CounterCells::kFraction].LoadDouble();
  }
  return total;
}

bool Counter::IncWithExemplar(double v, ExemplarLabelSpan labels) noexcept {
  if (!Inc(v)) return false;
  ref_.family->WriteExemplar(ref_.record, 0, v, labels);
  return true;
}

uint64_t Histogram::Count() const noexcept {
  uint64_t n = 0;
  for (uint32_t i = 0; i <= num_bounds_; ++i)
    n += cells_[internal::HistogramCells::kFirstBucket + i].Load();
  return n;
}

bool Histogram::ObserveWithExemplar(double v, ExemplarLabelSpan labels) noexcept {
  if (!Observe(v)) return false;
  ref_.family->WriteExemplar(ref_.record, Bucket(v), v, labels);
  return true;
}

int StateSet::Index(std::string_view state) const noexcept {
  const auto& states = family_->states();
  for (size_t i = 0; i < states.size(); ++i) {
    if (states[i] == state) return static_cast<int>(i);
  }
  return -1;
}

bool StateSet::Set(std::string_view state, bool on) noexcept {
  const int i = Index(state);
  if (i < 0) return false;
  if (on) {
    cell_->Or(uint64_t{1} << i);
  } else {
    cell_->And(~(uint64_t{1} << i));
  }
  return true;
}

bool StateSet::SetOnly(std::string_view state) noexcept {
  const int i = Index(state);
  if (i < 0) return false;
  cell_->Store(uint64_t{1} << i);
  return true;
}

bool StateSet::IsSet(std::string_view state) const noexcept {
  const int i = Index(state);
  return i >= 0 && (cell_->Load() >> i & 1) != 0;
}

namespace internal {

bool FamilyBase::WriteExemplar(
    char* record, uint32_t slot, double value,
    std::span<const std::pair<std::string_view, std::string_view>> labels) const {
  if (slot >= exemplar_slots_ || record == Dummy() || segment_->read_only()) return false;
  // OpenMetrics: at most 128 UTF-8 characters of label names and values together.
  size_t chars = 0;
  std::string encoded;
  for (const auto& [n, v] : labels) {
    if (!meters::IsValidLabelName(n) || !meters::IsValidUtf8(v)) return false;
    chars += meters::Utf8Length(n) + meters::Utf8Length(v);
    meters::AppendKeyPart(&encoded, n);
    meters::AppendKeyPart(&encoded, v);
  }
  if (chars > 128 || encoded.size() > meters::kMaxExemplarLabelBytes) return false;
  shm::Segment& seg = *segment_;
  auto* series = reinterpret_cast<meters::SeriesHeader*>(record);
  shm::MutexLock lock(seg.header().exemplar_lock);
  uint64_t block = series->exemplars.load(std::memory_order_acquire);
  if (block == 0) {
    shm::MutexLock heap_lock(seg.lock());
    auto off = seg.Allocate(uint64_t{exemplar_slots_} * sizeof(meters::ExemplarSlot),
                            shm::BlockKind::kBlob);
    if (!off.ok()) return false;
    block = *off;
    series->exemplars.store(block, std::memory_order_release);
  }
  auto* ex = seg.At<meters::ExemplarSlot>(block) + slot;
  // A writer that died mid-write left the sequence odd: make it even before starting.
  if (ex->seq.load(std::memory_order_relaxed) & 1) ex->seq.fetch_add(1, std::memory_order_relaxed);
  ex->seq.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  ex->value.store(std::bit_cast<uint64_t>(value), std::memory_order_relaxed);
  ex->timestamp.store(std::bit_cast<uint64_t>(static_cast<double>(NowUnixNanos()) / 1e9),
                      std::memory_order_relaxed);
  ex->labels_len = static_cast<uint32_t>(encoded.size());
  ex->count = static_cast<uint32_t>(labels.size());
  std::memcpy(ex->labels, encoded.data(), encoded.size());
  ex->seq.fetch_add(1, std::memory_order_release);
  return true;
}

}  // namespace internal
}  // namespace shmetrics
