// The public Heap: shmetrics::Heap over shm::Segment, turning Status into Error.
#include "shmetrics/heap.h"

#include <dirent.h>
#include <pthread.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "shm/segment.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/internal/worker.h"

namespace shmetrics {
namespace internal {

std::atomic<uint32_t> g_worker_stripe{UINT32_MAX};
std::atomic<uint64_t> g_worker_epoch{0};

namespace {

// The heap this process is a worker of: a process has one stripe (g_worker_stripe), so it may be
// a worker of one heap only. A heap is known by its creation (creator pid and start, creation
// time), the same for every mapping of its file, whatever name or Heap object reached it.
struct HeapIdentity {
  uint64_t created_unix_ns = 0;
  uint64_t creator_pid = 0;
  uint64_t creator_start_ticks = 0;
  bool operator==(const HeapIdentity&) const = default;
};
struct Attachment {
  HeapIdentity heap;
  std::string description;         // for messages
  std::weak_ptr<shm::Segment> by;  // the attachment ends when the Heap that made it is gone
};

std::mutex& AttachmentMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::optional<Attachment>& Attached() {
  static auto* a = new std::optional<Attachment>;
  return *a;
}

// A forked child is not its parent's worker until it claims an id of its own. The mutex is
// held across fork() so the child inherits it unlocked.
[[maybe_unused]] const int g_atfork =
    pthread_atfork([] { AttachmentMutex().lock(); }, [] { AttachmentMutex().unlock(); },
                   [] {
                     g_worker_stripe.store(UINT32_MAX, std::memory_order_relaxed);
                     g_worker_epoch.store(0, std::memory_order_relaxed);
                     Attached().reset();
                     AttachmentMutex().unlock();
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

namespace {
internal::HeapIdentity IdentityOf(const shm::Segment& seg) {
  const shm::Header& h = seg.header();
  return {h.created_unix_ns, h.creator_pid, h.creator_start_ticks};
}
}  // namespace

uint32_t Heap::AttachWorker() {
  std::scoped_lock lock(internal::AttachmentMutex());
  const internal::HeapIdentity self = IdentityOf(*segment_);
  std::optional<internal::Attachment>& attached = internal::Attached();
  if (attached.has_value() && !(attached->heap == self) && !attached->by.expired()) {
    throw ToError(absl::FailedPreconditionError(
        absl::StrCat("cannot attach this process as a worker of ", segment_->location().Describe(),
                     ": it is already a worker of ", attached->description,
                     ", and a process writes its per-worker cells in one stripe, so it can be a "
                     "worker of one heap only (DetachWorker there first)")));
  }
  const uint32_t id = ValueOrThrow(segment_->ClaimWorker());
  internal::g_worker_epoch.store(segment_->ClaimedEpoch(), std::memory_order_relaxed);
  internal::g_worker_stripe.store(id, std::memory_order_relaxed);
  // Again on the same heap: the attachment lasts as long as the Heap that made it first.
  if (!attached.has_value() || !(attached->heap == self) || attached->by.expired()) {
    attached = internal::Attachment{self, segment_->location().Describe(), segment_};
  }
  return id;
}

std::optional<uint32_t> Heap::worker_id() const {
  if (const int64_t id = segment_->ClaimedWorker(); id >= 0) return static_cast<uint32_t>(id);
  // Attached through another Heap object of the same heap (another Open of the same file).
  std::scoped_lock lock(internal::AttachmentMutex());
  const std::optional<internal::Attachment>& attached = internal::Attached();
  const uint32_t stripe = internal::g_worker_stripe.load(std::memory_order_relaxed);
  if (stripe != UINT32_MAX && attached.has_value() && !attached->by.expired() &&
      attached->heap == IdentityOf(*segment_)) {
    return stripe;
  }
  return std::nullopt;
}

void Heap::DetachWorker() {
  std::scoped_lock lock(internal::AttachmentMutex());
  std::optional<internal::Attachment>& attached = internal::Attached();
  if (attached.has_value() && attached->heap == IdentityOf(*segment_)) attached.reset();
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
