// Segment's worker table: one slot per worker process, claimed under Header::worker_lock and
// read lock-free.
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shm/segment_internal.h"

namespace shmetrics::shm {

const WorkerTable* Segment::Workers_() const {
  const uint64_t off = header().worker_table.load(std::memory_order_acquire);
  const auto* wt = reinterpret_cast<const WorkerTable*>(Checked(off, 16));
  if (wt == nullptr || wt->capacity == 0 || wt->capacity > 65536 ||
      Checked(off, 16 + wt->capacity * sizeof(WorkerSlot)) == nullptr) {
    return nullptr;
  }
  return wt;
}

absl::StatusOr<uint32_t> Segment::ClaimWorker() {
  if (read_only_) return absl::FailedPreconditionError("the heap is open read-only");
  auto* wt = const_cast<WorkerTable*>(Workers_());
  if (wt == nullptr) return absl::DataLossError("the worker table is corrupt");
  const pid_t self = getpid();
  const uint64_t ticks = ProcessStartTicks(self);
  MutexLock lock(header().worker_lock);
  for (uint32_t i = 0; i < wt->capacity; ++i) {
    WorkerSlot& s = wt->slot[i];
    if (s.pid.load(std::memory_order_relaxed) == static_cast<uint64_t>(self) &&
        s.start_ticks.load(std::memory_order_relaxed) == ticks) {
      claimed_.store(uint64_t{static_cast<uint32_t>(self)} << 32 | i, std::memory_order_relaxed);
      return i;
    }
  }
  for (uint32_t i = 0; i < wt->capacity; ++i) {
    WorkerSlot& s = wt->slot[i];
    const uint64_t pid = s.pid.load(std::memory_order_relaxed);
    if (pid != 0 &&
        ProcessRunning(static_cast<pid_t>(pid), s.start_ticks.load(std::memory_order_relaxed))) {
      continue;
    }
    // pid is written last: a claimer that dies earlier leaves the slot looking free.
    s.pid.store(0, std::memory_order_relaxed);
    s.start_ticks.store(ticks, std::memory_order_relaxed);
    s.claimed_unix_ns.store(NowUnixNs(), std::memory_order_relaxed);
    s.epoch.fetch_add(1, std::memory_order_relaxed);
    s.pid.store(static_cast<uint64_t>(self), std::memory_order_release);
    claimed_.store(uint64_t{static_cast<uint32_t>(self)} << 32 | i, std::memory_order_relaxed);
    return i;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("all ", wt->capacity, " worker slots of ", location_.Describe(),
                   " belong to running processes (create the heap with a larger max_workers)"));
}

int64_t Segment::ClaimedWorker() const {
  const uint64_t c = claimed_.load(std::memory_order_relaxed);
  if (c == 0 || (c >> 32) != static_cast<uint32_t>(getpid())) return -1;
  return static_cast<int64_t>(c & 0xffffffffu);
}

uint64_t Segment::ClaimedEpoch() const {
  const int64_t id = ClaimedWorker();
  const WorkerTable* wt = Workers_();
  if (id < 0 || wt == nullptr || static_cast<uint64_t>(id) >= wt->capacity) return 0;
  return wt->slot[id].epoch.load(std::memory_order_relaxed);
}

void Segment::ReleaseWorker(uint32_t id) {
  claimed_.store(0, std::memory_order_relaxed);
  auto* wt = const_cast<WorkerTable*>(Workers_());
  if (wt == nullptr || read_only_ || id >= wt->capacity) return;
  MutexLock lock(header().worker_lock);
  WorkerSlot& s = wt->slot[id];
  if (s.pid.load(std::memory_order_relaxed) == static_cast<uint64_t>(getpid())) {
    s.pid.store(0, std::memory_order_release);
  }
}

std::vector<Segment::WorkerInfo> Segment::Workers() const {
  std::vector<WorkerInfo> out;
  const WorkerTable* wt = Workers_();
  if (wt == nullptr) return out;
  for (uint32_t i = 0; i < wt->capacity; ++i) {
    const WorkerSlot& s = wt->slot[i];
    const uint64_t epoch = s.epoch.load(std::memory_order_acquire);
    if (epoch == 0) continue;
    const uint64_t pid = s.pid.load(std::memory_order_acquire);
    const bool alive =
        pid != 0 && pid < (uint64_t{1} << 31) &&
        ProcessRunning(static_cast<pid_t>(pid), s.start_ticks.load(std::memory_order_relaxed));
    out.push_back({i, static_cast<pid_t>(pid), epoch, alive});
  }
  return out;
}
}  // namespace shmetrics::shm
