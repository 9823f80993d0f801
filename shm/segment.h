// Segment: one mapped shmetrics heap — create, open, grow, allocate, index, remove.
//
// A segment is a POSIX shared memory object (/dev/shm/shmetrics.<name>) or a file at an explicit
// path, mapped through Boost.Interprocess. Every process maps the whole configured maximum size
// once, so the mapping never moves; the file behind it grows on demand (posix_fallocate, so
// memory is committed only for what is allocated and a full tmpfs is an error, never a SIGBUS),
// and a process that attached earlier sees later allocations without remapping.
//
// The parts live in files of their own behind this one class: mapping.cc (Location, create,
// open, map, grow, remove), allocator.cc, index_table.cc, worker_table.cc, verify.cc, and
// liveness.cc (shm/liveness.h: is a worker or the creator still running).
//
// Errors come back as absl::Status; nothing here throws (Boost.Interprocess exceptions are
// caught and converted).
//
// Thread safety: the const read paths (Find, ForEachEntry, Checked) are safe from any thread of
// any process without locks. Mutating calls that say REQUIRES: lock() held must be called with
// Header::lock held (shm::MutexLock lock(segment.lock()), see shm/mutex_lock.h); they carry
// ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()), so clang's -Wthread-safety checks the callers. Process
// safety: any process killed at any instruction leaves a valid heap (at worst a leaked block);
// see RobustMutex.
#ifndef SHMETRICS_SHM_SEGMENT_H_
#define SHMETRICS_SHM_SEGMENT_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shm/layout.h"
#include "shm/liveness.h"

namespace shmetrics::shm {

// Where a heap lives: a name (POSIX shared memory) or an explicit file path.
struct Location {
  // Returns the location for a heap name. REQUIRES: the name is 1..200 characters of
  // [A-Za-z0-9_.-], not "." or "..": no '/', so a name can never escape /dev/shm.
  static absl::StatusOr<Location> ForName(std::string_view name);
  // Returns the location for a file path (tmpfs or disk).
  static Location ForPath(std::string_view path);

  std::string name;  // empty for a path location
  std::string path;  // the file: /dev/shm/shmetrics.<name> for a name

  std::string Describe() const;  // for error messages
};

// The prefix of the shared memory objects that hold named heaps.
inline constexpr std::string_view kShmPrefix = "shmetrics.";

struct CreateOptions {
  // Default: 1 GiB. The heap never grows past this; allocations beyond fail cleanly.
  // Every process reserves this much address space (not memory).
  uint64_t max_size = uint64_t{1} << 30;
  // Default: 1 MiB. Memory committed at creation. The heap grows by doubling.
  uint64_t initial_size = uint64_t{1} << 20;
  // Default: 0600, owner only.
  mode_t mode = 0600;
  // Default: 256. Capacity of the worker slot table.
  uint32_t max_workers = 256;
  // Default: false. When true an existing heap is opened instead of failing with
  // AlreadyExists (its own options win).
  bool open_existing = false;
};

struct OpenOptions {
  // Default: false. Map read-only: the process can snapshot but never write.
  bool read_only = false;
  // Default: false. Accept a heap file owned by another user.
  bool allow_other_owner = false;
  // Default: false. Accept a heap file that group or others may write.
  bool allow_shared_write = false;
};

class Segment {
 public:
  static absl::StatusOr<std::unique_ptr<Segment>> Create(const Location& where,
                                                         const CreateOptions& options = {});
  static absl::StatusOr<std::unique_ptr<Segment>> Open(const Location& where,
                                                       const OpenOptions& options = {});
  // Removes the name; processes that have the heap mapped keep using it until they unmap.
  static absl::Status Remove(const Location& where);

  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  const Location& location() const { return location_; }
  bool read_only() const { return read_only_; }
  char* base() const { return base_; }
  Header& header() const { return *reinterpret_cast<Header*>(base_); }
  uint64_t mapped_size() const { return mapped_size_; }
  RobustMutex& lock() const { return header().lock; }

  // Unchecked access for writers, which only follow offsets they or the library produced.
  template <typename T>
  T* At(uint64_t offset) const {
    return reinterpret_cast<T*>(base_ + offset);
  }
  uint64_t OffsetOf(const void* p) const {
    return static_cast<uint64_t>(static_cast<const char*>(p) - base_);
  }

  // Checked access for readers that trust nothing: returns the address of `len` bytes at
  // `offset` when they lie inside the committed heap (past the header) and offset is 8-byte
  // aligned, else nullptr. Inline: a label lookup makes five of these checks.
  const char* Checked(uint64_t offset, uint64_t len) const {
    return CheckedWithin(CheckedLimit(), offset, len);
  }
  // The same against a limit read once (CheckedLimit), for a reader making several checks in
  // a row: the committed size only grows, so an earlier limit is only stricter.
  uint64_t CheckedLimit() const {
    const uint64_t committed = header().committed.load(std::memory_order_acquire);
    return committed < mapped_size_ ? committed : mapped_size_;
  }
  const char* CheckedWithin(uint64_t limit, uint64_t offset, uint64_t len) const {
    if (offset < kHeaderSize || offset % 8 != 0 || offset > limit || len > limit - offset) {
      return nullptr;
    }
    return base_ + offset;
  }
  // Bytes that may be read: the committed size, capped by the mapping and the file's size.
  uint64_t ReadableSize() const;

  // Allocates a zeroed payload of `size` bytes and returns its offset.
  // REQUIRES: lock() held, not read-only.
  // Errors: ResourceExhausted when the heap reached max_size or the file system is full.
  absl::StatusOr<uint64_t> Allocate(uint64_t size, BlockKind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Whether Allocate(size) can take fresh space below max_size, so an optional allocation
  // (growing a table early) need not fail and count a failure. The file may still refuse to
  // grow (a full tmpfs), which Allocate reports as ever.
  bool FitsWithoutFailing(uint64_t size) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Returns a block to the free lists. REQUIRES: lock() held; offset came from Allocate.
  void Free(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Like Allocate/Free but with a caller-owned free list (a uint64_t head in the heap) of blocks
  // that are reused only by the same owner, e.g. a family's records, so that a stale handle can
  // never write into a block reused for another purpose. REQUIRES: lock() held.
  absl::StatusOr<uint64_t> AllocateFromList(uint64_t* head, uint64_t size, BlockKind kind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void FreeToList(uint64_t* head, uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  // The size of the payload of an allocated block.
  uint64_t PayloadSize(uint64_t offset) const {
    return At<BlockHeader>(offset - kBlockHeaderSize)->size - kBlockHeaderSize;
  }

  // --- Tables (the series index); see TableHeader in layout.h ---

  // REQUIRES: lock() held.
  absl::StatusOr<uint64_t> NewTable(uint64_t initial_capacity = 16)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Returns the value stored for key, or 0. Lock-free; validates what it reads. The overloads
  // taking `hash` (KeyHash of key) let a caller that probes several times hash once.
  uint64_t Find(uint64_t table, std::string_view key) const {
    return Find(table, key, KeyHash(key.data(), key.size()));
  }
  uint64_t Find(uint64_t table, std::string_view key, uint64_t hash) const;
  // The same under the lock, which keeps writers out: nothing moves, so nothing is re-checked.
  // REQUIRES: lock() held.
  uint64_t FindLocked(uint64_t table, std::string_view key, uint64_t hash) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Inserts key -> value. REQUIRES: lock() held, key absent, value != 0.
  // When the heap is full, a `spare_entry` made by AllocateSpareEntry for a key at least as long
  // is used instead (and set to 0), and a table too full to grow takes the entry as long as a
  // slot stays empty: so a reserved insert succeeds in a full heap.
  absl::Status Insert(uint64_t table, std::string_view key, uint64_t value,
                      uint64_t* spare_entry = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock()) {
    return Insert(table, key, KeyHash(key.data(), key.size()), value, spare_entry);
  }
  absl::Status Insert(uint64_t table, std::string_view key, uint64_t hash, uint64_t value,
                      uint64_t* spare_entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // An index entry block for a key of key_len bytes, for a later Insert. REQUIRES: lock() held.
  absl::StatusOr<uint64_t> AllocateSpareEntry(size_t key_len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Removes key; returns its value or 0 when absent. REQUIRES: lock() held.
  uint64_t Erase(uint64_t table, std::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Removes every entry; calls on_erase(value) for each. REQUIRES: lock() held.
  void EraseAll(uint64_t table, const std::function<void(uint64_t value)>& on_erase)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  // Frees the table itself. REQUIRES: lock() held; the table is empty.
  void FreeTable(uint64_t table) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());

  // Calls f(key, value) for every live entry, lock-free, in about the order the entries lie in
  // the heap (see FORMAT.md, "Order"). Every offset and length is checked; a corrupt table ends
  // the walk with DataLoss. Stops early when f returns false.
  template <typename F>
  absl::Status ForEachEntry(uint64_t table, F&& f) const {
    return ForEachEntryBatch(table, [&f](std::span<const TableEntry> batch) {
      for (const TableEntry& e : batch) {
        if (!f(e.key, e.value)) return false;
      }
      return true;
    });
  }
  // A live entry of a walk; key is valid until the walk's next batch.
  struct TableEntry {
    std::string_view key;
    uint64_t value;
  };
  // ForEachEntry in batches of checked entries: one call per batch rather than per entry, and
  // while f reads the records of one batch, the next one's are already on their way to the cache.
  absl::Status ForEachEntryBatch(uint64_t table,
                                 const std::function<bool(std::span<const TableEntry>)>& f) const;
  // Number of live entries (approximate while writers run).
  uint64_t TableSize(uint64_t table) const;

  // --- Workers ---

  // Claims the lowest worker id whose slot is free or whose owner is dead, for this process.
  // Idempotent: a process that holds a slot gets the same id again.
  // Errors: ResourceExhausted when every slot belongs to a live process.
  absl::StatusOr<uint32_t> ClaimWorker();
  // Releases this process's slot, if it holds `id`.
  void ReleaseWorker(uint32_t id);
  // The id ClaimWorker gave this process, or -1.
  int64_t ClaimedWorker() const;
  // The epoch of the slot this process claimed (0 when none).
  uint64_t ClaimedEpoch() const;
  struct WorkerInfo {
    uint32_t id;
    pid_t pid;
    uint64_t epoch;
    bool alive;
  };
  // Every slot that was ever claimed, in id order.
  std::vector<WorkerInfo> Workers() const;

  // True when the process that created the heap is still running.
  bool CreatorAlive() const;

  // Walks every block from the header to Header::used and checks the structure: block sizes,
  // kinds and states, the root table and its entries, the worker table, the free lists.
  // Read-only; meant for a quiescent heap (a writer racing with it may be reported as
  // inconsistent). Returns DataLoss naming the first problem found.
  absl::Status Verify() const;
  struct Usage {
    uint64_t used_bytes;       // Header::used
    uint64_t committed_bytes;  // backed by the file
    uint64_t max_bytes;
    uint64_t live_blocks;
    uint64_t free_blocks;
    uint64_t free_bytes;
  };
  // Counts blocks by walking the heap (cost grows with the heap's size).
  absl::StatusOr<Usage> ComputeUsage() const;

 private:
  friend class SegmentTestingPeer;
  Segment() = default;

  static absl::StatusOr<std::unique_ptr<Segment>> Map(const Location& where, int fd,
                                                      uint64_t map_size, bool read_only);
  // Writes a new heap's header, its locks, root table and worker table (all but the magic).
  absl::Status Initialize(const CreateOptions& options, uint64_t initial_size);
  absl::Status Validate(uint64_t file_size) const;
  // Grows the file to cover `end` bytes. REQUIRES: lock() held.
  absl::Status Commit(uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  uint64_t PopFree(uint64_t* head, uint32_t block_size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  void ReleaseBlock(uint64_t* head, uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  absl::Status Rebuild(TableHeader* table, uint64_t capacity) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock());
  const WorkerTable* Workers_() const;

  // The worker id this process claimed: pid << 32 | id, or 0. Keyed by pid so that a forked
  // child does not inherit its parent's id.
  mutable std::atomic<uint64_t> claimed_{0};

  // Constant after construction.
  Location location_;
  int fd_ = -1;
  char* base_ = nullptr;
  uint64_t mapped_size_ = 0;
  bool read_only_ = false;
  std::shared_ptr<void> mapping_;  // the Boost.Interprocess objects that own fd_ and the mapping
};

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_SEGMENT_H_
