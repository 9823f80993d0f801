// The public Heap: shmetrics::Heap over shm::Segment, turning Status into Error.
#include "shmetrics/heap.h"

#include <dirent.h>
#include <pthread.h>

#include <algorithm>

#include "shm/segment.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/internal/worker.h"

namespace shmetrics {
namespace internal {

std::atomic<uint32_t> g_worker_stripe{UINT32_MAX};
std::atomic<uint64_t> g_worker_epoch{0};

namespace {
// A forked child is not its parent's worker until it claims an id of its own.
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, [] {
  g_worker_stripe.store(UINT32_MAX, std::memory_order_relaxed);
  g_worker_epoch.store(0, std::memory_order_relaxed);
});
}  // namespace

}  // namespace internal

namespace {

template <typename T>
T ValueOrThrow(absl::StatusOr<T> v) {
  if (!v.ok()) throw ToError(v.status());
  return std::move(*v);
}

shm::Location NameOrThrow(std::string_view name) {
  return ValueOrThrow(shm::Location::ForName(name));
}

shm::CreateOptions ToShm(const Heap::CreateOptions& o, bool open_existing) {
  return {.max_size = o.max_size,
          .initial_size = o.initial_size,
          .mode = o.mode,
          .max_workers = o.max_workers,
          .open_existing = open_existing};
}

shm::OpenOptions ToShm(const Heap::OpenOptions& o) {
  return {.read_only = o.read_only,
          .allow_other_owner = o.allow_other_owner,
          .allow_shared_write = o.allow_shared_write};
}

}  // namespace

Heap Heap::Create(std::string_view name, const CreateOptions& options) {
  return Heap(ValueOrThrow(shm::Segment::Create(NameOrThrow(name), ToShm(options, false))));
}

Heap Heap::OpenOrCreate(std::string_view name, const CreateOptions& options) {
  return Heap(ValueOrThrow(shm::Segment::Create(NameOrThrow(name), ToShm(options, true))));
}

Heap Heap::Open(std::string_view name, const OpenOptions& options) {
  return Heap(ValueOrThrow(shm::Segment::Open(NameOrThrow(name), ToShm(options))));
}

Heap Heap::CreateAtPath(std::string_view path, const CreateOptions& options) {
  return Heap(
      ValueOrThrow(shm::Segment::Create(shm::Location::ForPath(path), ToShm(options, false))));
}

Heap Heap::OpenAtPath(std::string_view path, const OpenOptions& options) {
  return Heap(ValueOrThrow(shm::Segment::Open(shm::Location::ForPath(path), ToShm(options))));
}

void Heap::Remove(std::string_view name) {
  if (absl::Status s = shm::Segment::Remove(NameOrThrow(name)); !s.ok()) throw ToError(s);
}

void Heap::RemoveAtPath(std::string_view path) {
  if (absl::Status s = shm::Segment::Remove(shm::Location::ForPath(path)); !s.ok())
    throw ToError(s);
}

std::vector<std::string> Heap::List() {
  std::vector<std::string> names;
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (const dirent* e = readdir(dir)) {
    const std::string_view n = e->d_name;
    if (n.size() > shm::kShmPrefix.size() &&
        n.substr(0, shm::kShmPrefix.size()) == shm::kShmPrefix) {
      names.emplace_back(n.substr(shm::kShmPrefix.size()));
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

uint32_t Heap::AttachWorker() {
  const uint32_t id = ValueOrThrow(segment_->ClaimWorker());
  internal::g_worker_epoch.store(segment_->ClaimedEpoch(), std::memory_order_relaxed);
  internal::g_worker_stripe.store(id, std::memory_order_relaxed);
  return id;
}

std::optional<uint32_t> Heap::worker_id() const {
  const int64_t id = segment_->ClaimedWorker();
  if (id < 0) return std::nullopt;
  return static_cast<uint32_t>(id);
}

void Heap::DetachWorker() {
  if (auto id = worker_id()) {
    segment_->ReleaseWorker(*id);
    internal::g_worker_stripe.store(UINT32_MAX, std::memory_order_relaxed);
    internal::g_worker_epoch.store(0, std::memory_order_relaxed);
  }
}

Heap::Usage Heap::usage() const {
  const shm::Header& h = segment_->header();
  return {h.used.load(std::memory_order_relaxed), h.committed.load(std::memory_order_relaxed),
          h.max_size};
}

std::string Heap::name() const {
  const shm::Location& loc = segment_->location();
  return loc.name.empty() ? loc.path : loc.name;
}

bool Heap::read_only() const { return segment_->read_only(); }

}  // namespace shmetrics
