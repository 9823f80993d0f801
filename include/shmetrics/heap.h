// shmetrics::Heap: a named shared-memory heap that holds every meter of a service.
//
// The master of a pre-fork server creates the heap before it forks; workers inherit it; other
// programs open it by name. A Heap object is a cheap shared handle (copies refer to the same
// mapping). The heap is a POSIX shared memory object (/dev/shm/shmetrics.<name>) or a file at an
// explicit path, created mode 0600. It grows on demand up to CreateOptions::max_size.
//
// Thread safety: all methods are safe from any thread. Process safety: a heap may be used from
// any number of processes at once, forked or unrelated; a process killed at any instruction never
// blocks the others nor corrupts the heap.
//
// Errors: every function that can fail throws shmetrics::Error (see error.h).
//
// Example:
//   auto heap = shmetrics::Heap::Create("myapp");   // /dev/shm/shmetrics.myapp, mode 0600
//   ... fork workers; in each worker:
//   uint32_t id = heap.AttachWorker();              // 0..N-1, reused after a respawn
#ifndef SHMETRICS_HEAP_H_
#define SHMETRICS_HEAP_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmetrics/error.h"

namespace shmetrics {
namespace shm {
class Segment;
class HeapAccess;
}  // namespace shm

struct HeapCreateOptions {
  // Default: 1 GiB. The heap never grows past this; when it is full, new series go to the
  // overflow series (see registry.h). Each process reserves this much address space, not memory.
  uint64_t max_size = uint64_t{1} << 30;
  // Default: 1 MiB. Memory committed at creation; the heap doubles as it fills.
  uint64_t initial_size = uint64_t{1} << 20;
  // Default: 0600 (owner only).
  mode_t mode = 0600;
  // Default: 64. Number of worker ids (AttachWorker) and of per-worker gauge slots.
  uint32_t max_workers = 64;
};
struct HeapOpenOptions {
  // Default: false. Map read-only: enough to collect, never to update.
  bool read_only = false;
  // Default: false. Accept a heap owned by another user.
  bool allow_other_owner = false;
  // Default: false. Accept a heap that group or others may write.
  bool allow_shared_write = false;
};

class Heap {
 public:
  using CreateOptions = HeapCreateOptions;
  using OpenOptions = HeapOpenOptions;

  // Creates a heap. REQUIRES: name is 1..200 characters of [A-Za-z0-9_.-], not "." or "..", so
  // it never leaves /dev/shm.
  // Throws Error: kAlreadyExists if it exists (the message says whether its creator still
  // runs), kInvalidArgument for a bad name (with '/', "..", ...) or options out of range
  // (max_size outside 8 KiB..1 TiB, max_workers outside 1..65536), kPermissionDenied,
  // kResourceExhausted.
  static Heap Create(std::string_view name, const CreateOptions& options = CreateOptions());
  // Opens an existing heap, or creates it when there is none (concurrent callers agree).
  static Heap OpenOrCreate(std::string_view name, const CreateOptions& options = CreateOptions());
  // Opens an existing heap. Throws Error: kInvalidArgument (a bad name), kNotFound, kDataLoss
  // (not a heap, truncated, corrupt), kFailedPrecondition (another layout version or cell kind,
  // not a regular file), kPermissionDenied (owned by another user, writable by group or others
  // — see OpenOptions — or the file cannot be opened, e.g. a directory).
  static Heap Open(std::string_view name, const OpenOptions& options = OpenOptions());
  // The same, for a heap in a file at an explicit path (tmpfs or disk).
  static Heap CreateAtPath(std::string_view path, const CreateOptions& options = CreateOptions());
  static Heap OpenAtPath(std::string_view path, const OpenOptions& options = OpenOptions());
  // Removes the name. Processes that have it open keep working on the unlinked memory.
  // Throws Error: kNotFound, kInvalidArgument, kPermissionDenied.
  static void Remove(std::string_view name);
  static void RemoveAtPath(std::string_view path);
  // Names of the heaps in /dev/shm that this user can see.
  static std::vector<std::string> List();

  // Claims a stable worker id for the calling process: the lowest id whose previous owner is
  // gone, so a respawned worker takes the id of the one it replaces. Idempotent per process,
  // whichever Heap object of the same heap (another Open of the same file) it is called on.
  // Call it in each worker after fork(). A process is a worker of one heap at a time (its
  // per-worker cells are one stripe, whatever the heap): attaching to a second heap throws
  // kFailedPrecondition naming both, until DetachWorker on the first or until every copy of the
  // Heap object that attached is destroyed. A forked child is attached to none. Heaps are told
  // apart by their creation (creator pid and time in the header), not by name or object.
  // Throws Error kResourceExhausted when max_workers live processes hold ids,
  // kFailedPrecondition when the heap was opened read-only or as above.
  uint32_t AttachWorker();
  // The id claimed by this process, if any, through this Heap object or another of the same heap
  // (a forked child does not inherit its parent's).
  std::optional<uint32_t> worker_id() const;
  // Gives the id back early (it is reclaimed automatically when the process dies).
  void DetachWorker();

  struct Usage {
    uint64_t used_bytes;       // allocated, including freed blocks awaiting reuse
    uint64_t committed_bytes;  // memory backing the heap
    uint64_t max_bytes;
  };
  Usage usage() const;

  // "name" for a named heap, the path otherwise.
  std::string name() const;
  bool read_only() const;

 private:
  friend class shm::HeapAccess;  // the library's own layers reach the segment through it

  explicit Heap(std::shared_ptr<shm::Segment> segment) : segment_(std::move(segment)) {}

  std::shared_ptr<shm::Segment> segment_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_HEAP_H_
