#include "shm/segment.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shmetrics::shm {
namespace bip = boost::interprocess;

namespace {

uint64_t NowUnixNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

std::string ErrnoText(int err) { return std::strerror(err); }

// What the mapping layer keeps alive: Boost's object (the name's handle) and its region.
struct Mapping {
  std::unique_ptr<bip::shared_memory_object> shm;
  std::unique_ptr<bip::file_mapping> file;
  bip::mapped_region region;
};

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// Reads a small /proc file; returns false when it cannot.
bool ReadSmallFile(const char* path, char* buf, size_t cap, size_t* len) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = ::read(fd, buf, cap - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  *len = static_cast<size_t>(n);
  return true;
}

// Parses /proc/<pid>/stat: the state letter and field 22 (start time in clock ticks).
bool ReadProcStat(pid_t pid, char* state, uint64_t* start_ticks) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  char buf[1024];
  size_t len = 0;
  if (!ReadSmallFile(path, buf, sizeof buf, &len)) return false;
  // comm may hold spaces and parentheses: fields resume after the last ')'.
  const char* p = strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return false;
  p += 2;
  *state = *p;
  // Field 3 is the state; skip to field 22.
  for (int field = 3; field < 22; ++field) {
    p = strchr(p, ' ');
    if (p == nullptr) return false;
    ++p;
  }
  *start_ticks = strtoull(p, nullptr, 10);
  return true;
}

}  // namespace

bool ProcessRunning(pid_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  char state = 0;
  uint64_t ticks = 0;
  if (!ReadProcStat(pid, &state, &ticks)) {
    if (access("/proc/self/stat", R_OK) == 0) return false;  // /proc works: the pid is gone
    return kill(pid, 0) == 0 || errno == EPERM;
  }
  if (state == 'Z' || state == 'X' || state == 'x') return false;
  return start_ticks == 0 || ticks == start_ticks;
}

uint64_t ProcessStartTicks(pid_t pid) {
  char state = 0;
  uint64_t ticks = 0;
  return ReadProcStat(pid, &state, &ticks) ? ticks : 0;
}

// --- Location ---

absl::StatusOr<Location> Location::ForName(std::string_view name) {
  if (name.empty() || name.size() > 200) {
    return absl::InvalidArgumentError(absl::StrCat("invalid heap name \"",
                                                   std::string(name.substr(0, 64)),
                                                   "\": must be 1 to 200 characters"));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid heap name \"", std::string(name), "\""));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid heap name \"", absl::CHexEscape(std::string(name.substr(0, 64))),
          "\": only letters, digits, '_', '-' and '.' are allowed (use a path for files)"));
    }
  }
  Location loc;
  loc.name = std::string(name);
  loc.path = absl::StrCat("/dev/shm/", std::string(kShmPrefix), std::string(name));
  return loc;
}

Location Location::ForPath(std::string_view path) {
  Location loc;
  loc.path = std::string(path);
  return loc;
}

std::string Location::Describe() const {
  return name.empty() ? absl::StrCat("heap file ", path)
                      : absl::StrCat("heap \"", name, "\" (", path, ")");
}

// --- Create / Open / Remove ---

absl::StatusOr<std::unique_ptr<Segment>> Segment::Map(const Location& where, int fd,
                                                      uint64_t map_size, bool read_only) {
  auto mapping = std::make_shared<Mapping>();
  const bip::mode_t mode = read_only ? bip::read_only : bip::read_write;
  try {
    if (!where.name.empty()) {
      mapping->shm = std::make_unique<bip::shared_memory_object>(
          bip::open_only, (std::string(kShmPrefix) + where.name).c_str(), mode);
      mapping->region = bip::mapped_region(*mapping->shm, mode, 0, map_size);
    } else {
      mapping->file = std::make_unique<bip::file_mapping>(where.path.c_str(), mode);
      mapping->region = bip::mapped_region(*mapping->file, mode, 0, map_size);
    }
  } catch (const bip::interprocess_exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot map ", where.Describe(), " (", map_size, " bytes): ", e.what()));
  }
  auto seg = std::unique_ptr<Segment>(new Segment());
  seg->location_ = where;
  seg->fd_ = fd;
  seg->base_ = static_cast<char*>(mapping->region.get_address());
  seg->mapped_size_ = map_size;
  seg->read_only_ = read_only;
  seg->mapping_ = std::move(mapping);
  return seg;
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Create(const Location& where,
                                                         const CreateOptions& options) {
  const uint64_t page = PageSize();
  if (options.max_size < 2 * kHeaderSize || options.max_size > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_size ", options.max_size, " is out of range: 8192 bytes to 1 TiB"));
  }
  if (options.max_workers == 0 || options.max_workers > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_workers ", options.max_workers, " is out of range: 1 to 65536"));
  }
  const uint64_t max_size = RoundUp(options.max_size, page);
  const uint64_t worker_bytes = 16 + uint64_t{options.max_workers} * sizeof(WorkerSlot);
  const uint64_t initial = std::min(
      max_size,
      RoundUp(std::max<uint64_t>(options.initial_size, kHeaderSize + worker_bytes + 4096), page));

  // O_EXCL creation through the OS, so that "already exists" is atomic and reported exactly.
  int fd;
  const int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
  if (!where.name.empty()) {
    fd = shm_open((std::string("/") + std::string(kShmPrefix) + where.name).c_str(), flags,
                  options.mode);
  } else {
    fd = ::open(where.path.c_str(), flags, options.mode);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      if (options.open_existing) return Open(where);
      std::string hint;
      if (auto existing = Open(where, {.read_only = true}); existing.ok()) {
        hint = (*existing)->CreatorAlive()
                   ? absl::StrCat(" (its creator, pid ", (*existing)->header().creator_pid,
                                  ", is running)")
                   : absl::StrCat(" and was left behind by its creator (pid ",
                                  (*existing)->header().creator_pid,
                                  ", no longer running); remove it with `shmetrics rm` or "
                                  "Heap::Remove");
      }
      return absl::AlreadyExistsError(absl::StrCat(where.Describe(), " already exists", hint));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", where.Describe(), ": ", ErrnoText(err)));
  }
  auto fail = [&](absl::Status s) {
    ::close(fd);
    if (!where.name.empty()) {
      shm_unlink((std::string("/") + std::string(kShmPrefix) + where.name).c_str());
    } else {
      ::unlink(where.path.c_str());
    }
    return s;
  };
  // The mode must not depend on the caller's umask.
  if (fchmod(fd, options.mode) != 0) {
    return fail(absl::PermissionDeniedError(
        absl::StrCat("cannot set mode of ", where.Describe(), ": ", ErrnoText(errno))));
  }
  if (const int rc = posix_fallocate(fd, 0, static_cast<off_t>(initial)); rc != 0) {
    return fail(absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", initial, " bytes for ", where.Describe(), ": ", ErrnoText(rc))));
  }
  auto seg = Map(where, fd, max_size, /*read_only=*/false);
  if (!seg.ok()) return fail(seg.status());
  Header& h = (*seg)->header();
  h.layout_version = kLayoutVersion;
  h.header_size = kHeaderSize;
  h.max_size = max_size;
  h.flags = internal::kMutexCells ? kFlagMutexCells : 0;
  h.cell_size = sizeof(internal::Cell);
  h.committed.store(initial, std::memory_order_relaxed);
  h.used.store(kHeaderSize, std::memory_order_relaxed);
  h.created_unix_ns = NowUnixNs();
  h.creator_pid = static_cast<uint32_t>(getpid());
  h.creator_start_ticks = ProcessStartTicks(getpid());
  h.max_workers = options.max_workers;
  h.lock.Init();
  h.worker_lock.Init();
  h.exemplar_lock.Init();
  {
    std::scoped_lock lock(h.lock);
    auto root = (*seg)->NewTable(64);
    if (!root.ok()) return fail(root.status());
    auto workers = (*seg)->Allocate(worker_bytes, BlockKind::kWorkerTable);
    if (!workers.ok()) return fail(workers.status());
    (*seg)->At<WorkerTable>(*workers)->capacity = options.max_workers;
    h.root_table.store(*root, std::memory_order_relaxed);
    h.worker_table.store(*workers, std::memory_order_relaxed);
  }
  // Published last: an opener that sees the magic sees a complete header.
  h.magic.store(kMagic, std::memory_order_release);
  return seg;
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Open(const Location& where,
                                                       const OpenOptions& options) {
  const int oflags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  int fd;
  if (!where.name.empty()) {
    fd = shm_open((std::string("/") + std::string(kShmPrefix) + where.name).c_str(), oflags, 0);
  } else {
    fd = ::open(where.path.c_str(), oflags);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(absl::StrCat(where.Describe(), " does not exist"));
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open ", where.Describe(), ": ", ErrnoText(err)));
  }
  auto fail = [fd](absl::Status s) {
    ::close(fd);
    return s;
  };
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return fail(absl::InternalError(absl::StrCat("cannot stat ", where.Describe())));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(
        absl::FailedPreconditionError(absl::StrCat(where.Describe(), " is not a regular file")));
  }
  if (!options.allow_other_owner && st.st_uid != geteuid()) {
    return fail(absl::PermissionDeniedError(
        absl::StrFormat("%s is owned by uid %d, not by this user (uid %d); refusing to use it",
                        where.Describe(), st.st_uid, geteuid())));
  }
  if (!options.allow_shared_write && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fail(absl::PermissionDeniedError(absl::StrFormat(
        "%s has mode %04o: group or others may write it; refusing to use it (expected 0600)",
        where.Describe(), st.st_mode & 07777)));
  }
  // A creator publishes the magic last; give a concurrent creator a moment to finish.
  Header probe;
  for (int attempt = 0;; ++attempt) {
    if (fstat(fd, &st) != 0) return fail(absl::InternalError("fstat failed"));
    if (static_cast<uint64_t>(st.st_size) >= kHeaderSize &&
        pread(fd, &probe, sizeof probe, 0) == static_cast<ssize_t>(sizeof probe) &&
        probe.magic.load(std::memory_order_relaxed) != 0) {
      break;
    }
    if (attempt >= 200) {
      if (static_cast<uint64_t>(st.st_size) < kHeaderSize) {
        return fail(
            absl::DataLossError(absl::StrFormat("%s is truncated: %d bytes, a heap has at least %d",
                                                where.Describe(), st.st_size, kHeaderSize)));
      }
      return fail(absl::DataLossError(
          absl::StrCat(where.Describe(),
                       " is not a shmetrics heap: its header is all zero (a creator that "
                       "died while creating it?)")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (probe.magic.load(std::memory_order_relaxed) != kMagic) {
    return fail(absl::DataLossError(
        absl::StrFormat("%s is not a shmetrics heap: magic 0x%016x, expected 0x%016x",
                        where.Describe(), probe.magic.load(std::memory_order_relaxed), kMagic)));
  }
  if (probe.layout_version != kLayoutVersion) {
    return fail(absl::FailedPreconditionError(
        absl::StrFormat("%s has layout version %d; this build of shmetrics reads layout version %d",
                        where.Describe(), probe.layout_version, kLayoutVersion)));
  }
  if (probe.max_size < 2 * kHeaderSize || probe.max_size > (uint64_t{1} << 40) ||
      probe.max_size % PageSize() != 0) {
    return fail(absl::DataLossError(absl::StrFormat(
        "%s is corrupt: max_size %d is not a valid heap size", where.Describe(), probe.max_size)));
  }
  auto seg = Map(where, fd, probe.max_size, options.read_only);
  if (!seg.ok()) return fail(seg.status());
  if (absl::Status s = (*seg)->Validate(static_cast<uint64_t>(st.st_size)); !s.ok()) {
    (*seg)->fd_ = -1;
    return fail(s);
  }
  return seg;
}

absl::Status Segment::Validate(uint64_t file_size) const {
  const Header& h = header();
  const std::string what = location_.Describe();
  if (h.header_size != kHeaderSize) {
    return absl::DataLossError(absl::StrFormat("%s is corrupt: header size %d, expected %d", what,
                                               h.header_size, kHeaderSize));
  }
  const bool mutex_cells = (h.flags & kFlagMutexCells) != 0;
  if (mutex_cells != internal::kMutexCells || h.cell_size != sizeof(internal::Cell)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s was made by a build with %s cells (%d bytes); this build uses %s cells (%d bytes)",
        what, mutex_cells ? "mutex" : "atomic", h.cell_size,
        internal::kMutexCells ? "mutex" : "atomic", sizeof(internal::Cell)));
  }
  const uint64_t committed = h.committed.load(std::memory_order_acquire);
  const uint64_t used = h.used.load(std::memory_order_acquire);
  if (committed > h.max_size || used > committed || used < kHeaderSize) {
    return absl::DataLossError(
        absl::StrFormat("%s is corrupt: used %d, committed %d, max %d bytes are inconsistent", what,
                        used, committed, h.max_size));
  }
  if (committed > file_size) {
    return absl::DataLossError(
        absl::StrFormat("%s is truncated: the header says %d bytes are in use, the file has %d",
                        what, committed, file_size));
  }
  const uint64_t root = h.root_table.load(std::memory_order_acquire);
  const uint64_t workers = h.worker_table.load(std::memory_order_acquire);
  if (Checked(root, sizeof(TableHeader)) == nullptr ||
      Checked(workers, sizeof(WorkerTable)) == nullptr) {
    return absl::DataLossError(absl::StrCat(what, " is corrupt: root offsets out of range"));
  }
  const uint64_t cap = reinterpret_cast<const WorkerTable*>(base_ + workers)->capacity;
  if (cap == 0 || cap > 65536 || Checked(workers, 16 + cap * sizeof(WorkerSlot)) == nullptr) {
    return absl::DataLossError(absl::StrCat(what, " is corrupt: worker table out of range"));
  }
  return absl::OkStatus();
}

absl::Status Segment::Remove(const Location& where) {
  int rc;
  if (!where.name.empty()) {
    rc = shm_unlink((std::string("/") + std::string(kShmPrefix) + where.name).c_str());
  } else {
    rc = ::unlink(where.path.c_str());
  }
  if (rc != 0) {
    const int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(absl::StrCat(where.Describe(), " does not exist"));
    return absl::PermissionDeniedError(
        absl::StrCat("cannot remove ", where.Describe(), ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

Segment::~Segment() {
  mapping_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool Segment::CreatorAlive() const {
  const Header& h = header();
  return ProcessRunning(static_cast<pid_t>(h.creator_pid), h.creator_start_ticks);
}

// --- Checked reads ---

uint64_t Segment::ReadableSize() const {
  uint64_t limit = std::min(header().committed.load(std::memory_order_acquire), mapped_size_);
  struct stat st;
  if (fd_ >= 0 && fstat(fd_, &st) == 0) {
    limit = std::min(limit, static_cast<uint64_t>(st.st_size));
  }
  return limit;
}

// --- Allocation ---

absl::Status Segment::Commit(uint64_t end) {
  Header& h = header();
  const uint64_t committed = h.committed.load(std::memory_order_relaxed);
  if (end <= committed) return absl::OkStatus();
  uint64_t target = RoundUp(std::max(end, committed * 2), PageSize());
  target = std::min(target, h.max_size);
  if (const int rc = posix_fallocate(fd_, static_cast<off_t>(committed),
                                     static_cast<off_t>(target - committed));
      rc != 0) {
    // Try for just what is needed before giving up.
    target = RoundUp(end, PageSize());
    if (posix_fallocate(fd_, static_cast<off_t>(committed),
                        static_cast<off_t>(target - committed)) != 0) {
      return absl::ResourceExhaustedError(absl::StrCat(location_.Describe(), ": cannot grow to ",
                                                       target, " bytes: ", ErrnoText(rc)));
    }
  }
  h.committed.store(target, std::memory_order_release);
  return absl::OkStatus();
}

uint64_t Segment::PopFree(uint64_t* head, uint32_t block_size) {
  // Walk a bounded prefix of the list for a block of exactly block_size. A link that does not
  // point at a free block of this heap means the list was damaged (a stale handle writing into a
  // freed block, or a hostile process): drop the rest of the list rather than follow it.
  uint64_t* link = head;
  for (int steps = 0; steps < 64 && *link != 0; ++steps) {
    const uint64_t off = *link;
    const char* p = Checked(off - kBlockHeaderSize, kBlockHeaderSize + 8);
    auto* bh = reinterpret_cast<const BlockHeader*>(p);
    if (p == nullptr ||
        bh->state.load(std::memory_order_relaxed) != static_cast<uint16_t>(BlockState::kFree) ||
        Checked(off, bh->size - kBlockHeaderSize) == nullptr) {
      *link = 0;
      return 0;
    }
    if (bh->size == block_size) {
      *link = *At<uint64_t>(off);
      header().blocks_reused.fetch_add(1, std::memory_order_relaxed);
      return off;
    }
    link = At<uint64_t>(off);
  }
  return 0;
}

absl::StatusOr<uint64_t> Segment::AllocateFromList(uint64_t* head, uint64_t size, BlockKind kind) {
  if (read_only_) return absl::FailedPreconditionError("the heap is open read-only");
  Header& h = header();
  if (size > h.max_size) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("allocation of ", size, " bytes is too large"));
  }
  const uint64_t block = RoundUp(size + kBlockHeaderSize, kBlockAlign);
  if (block > UINT32_MAX) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("allocation of ", size, " bytes is too large"));
  }
  uint64_t off = 0;
  if (head == nullptr) {
    head = block <= kMaxSmallBlock ? &h.free_small[block / kBlockAlign - 1] : &h.free_large;
  }
  off = PopFree(head, static_cast<uint32_t>(block));
  if (off != 0) {
    auto* bh = At<BlockHeader>(off - kBlockHeaderSize);
    std::memset(base_ + off, 0, block - kBlockHeaderSize);
    bh->kind.store(static_cast<uint16_t>(kind), std::memory_order_relaxed);
    bh->state.store(static_cast<uint16_t>(BlockState::kLive), std::memory_order_release);
    return off;
  }
  const uint64_t start = h.used.load(std::memory_order_relaxed);
  const uint64_t end = start + block;
  if (end > h.max_size) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat(location_.Describe(), " is full: ", start, " of ", h.max_size, " bytes used, ",
                     block, " more requested (create it with a larger max_size)"));
  }
  if (absl::Status s = Commit(end); !s.ok()) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  // The block header is written before `used` moves past it, so the blocks below `used` always
  // tile the heap, whatever instruction a process dies at.
  auto* bh = At<BlockHeader>(start);
  bh->size = static_cast<uint32_t>(block);
  bh->kind.store(static_cast<uint16_t>(kind), std::memory_order_relaxed);
  bh->state.store(static_cast<uint16_t>(BlockState::kLive), std::memory_order_relaxed);
  h.used.store(end, std::memory_order_release);
  return start + kBlockHeaderSize;
}

absl::StatusOr<uint64_t> Segment::Allocate(uint64_t size, BlockKind kind) {
  return AllocateFromList(nullptr, size, kind);
}

void Segment::ReleaseBlock(uint64_t* head, uint64_t offset) {
  auto* bh = At<BlockHeader>(offset - kBlockHeaderSize);
  bh->state.store(static_cast<uint16_t>(BlockState::kFree), std::memory_order_relaxed);
  // Lock-free readers of the index may still read this word (LoadShared).
  std::atomic_ref<uint64_t>(*At<uint64_t>(offset)).store(*head, std::memory_order_relaxed);
  *head = offset;
  header().blocks_freed.fetch_add(1, std::memory_order_relaxed);
}

void Segment::Free(uint64_t offset) {
  Header& h = header();
  const uint32_t block = At<BlockHeader>(offset - kBlockHeaderSize)->size;
  ReleaseBlock(block <= kMaxSmallBlock ? &h.free_small[block / kBlockAlign - 1] : &h.free_large,
               offset);
}

void Segment::FreeToList(uint64_t* head, uint64_t offset) { ReleaseBlock(head, offset); }

// --- Tables ---

absl::StatusOr<uint64_t> Segment::NewTable(uint64_t initial_capacity) {
  uint64_t cap = 16;
  while (cap < initial_capacity) cap *= 2;
  auto table = Allocate(sizeof(TableHeader), BlockKind::kTable);
  if (!table.ok()) return table.status();
  auto slots = Allocate(8 + cap * 8, BlockKind::kSlots);
  if (!slots.ok()) {
    Free(*table);
    return slots.status();
  }
  At<SlotArray>(*slots)->capacity = cap;
  At<TableHeader>(*table)->slots.store(*slots, std::memory_order_release);
  return *table;
}

namespace {

// Reads a word of the index without the lock. The block holding it may be freed meanwhile, and a
// freed block's first word becomes a free-list link (see ReleaseBlock), so the word is read
// atomically and whatever it holds is validated by the caller.
uint64_t LoadShared(const uint64_t& word) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(word)).load(std::memory_order_relaxed);
}

// The current slot array of a table and its capacity, validated, or nullptr. The capacity is read
// once: the array may be freed and its bytes reused right after, so callers must use *capacity,
// never re-read arr->capacity.
const SlotArray* CheckedSlots(const Segment& seg, uint64_t table, uint64_t* capacity) {
  const auto* th = reinterpret_cast<const TableHeader*>(seg.Checked(table, sizeof(TableHeader)));
  if (th == nullptr) return nullptr;
  const uint64_t off = th->slots.load(std::memory_order_acquire);
  const auto* arr = reinterpret_cast<const SlotArray*>(seg.Checked(off, 16));
  if (arr == nullptr) return nullptr;
  const uint64_t cap = LoadShared(arr->capacity);
  if (cap == 0 || (cap & (cap - 1)) != 0 || cap > (uint64_t{1} << 32) ||
      seg.Checked(off, 8 + cap * 8) == nullptr) {
    return nullptr;
  }
  *capacity = cap;
  return arr;
}

// The entry at a slot value, validated, or nullptr (a block freed under a racing reader, or
// garbage).
const Entry* CheckedEntry(const Segment& seg, uint64_t off) {
  const char* p = seg.Checked(off - kBlockHeaderSize, kBlockHeaderSize + sizeof(Entry));
  if (p == nullptr) return nullptr;
  const auto* bh = reinterpret_cast<const BlockHeader*>(p);
  if (bh->kind.load(std::memory_order_relaxed) != static_cast<uint16_t>(BlockKind::kEntry) ||
      bh->state.load(std::memory_order_acquire) != static_cast<uint16_t>(BlockState::kLive)) {
    return nullptr;
  }
  const auto* e = reinterpret_cast<const Entry*>(p + kBlockHeaderSize);
  if (uint64_t{e->key_len} + sizeof(Entry) + kBlockHeaderSize > bh->size ||
      seg.Checked(off, sizeof(Entry) + e->key_len) == nullptr) {
    return nullptr;
  }
  return e;
}

}  // namespace

uint64_t Segment::Find(uint64_t table, std::string_view key) const {
  uint64_t capacity = 0;
  const SlotArray* arr = CheckedSlots(*this, table, &capacity);
  if (arr == nullptr) return 0;
  const uint64_t hash = KeyHash(key.data(), key.size());
  const uint64_t mask = capacity - 1;
  for (uint64_t i = 0; i <= mask; ++i) {
    const uint64_t s = arr->slot[(hash + i) & mask].load(std::memory_order_acquire);
    if (s == kSlotEmpty) return 0;
    if (s == kSlotTombstone) continue;
    const Entry* e = CheckedEntry(*this, s);
    if (e == nullptr || LoadShared(e->hash) != hash || e->key_len != key.size()) continue;
    if (std::memcmp(reinterpret_cast<const char*>(e + 1), key.data(), key.size()) == 0) {
      return e->value;
    }
  }
  return 0;
}

absl::Status Segment::Rebuild(TableHeader* table, uint64_t capacity) {
  const uint64_t old_off = table->slots.load(std::memory_order_relaxed);
  auto* old = At<SlotArray>(old_off);
  auto fresh_off = Allocate(8 + capacity * 8, BlockKind::kSlots);
  if (!fresh_off.ok()) return fresh_off.status();
  auto* fresh = At<SlotArray>(*fresh_off);
  fresh->capacity = capacity;
  const uint64_t mask = capacity - 1;
  for (uint64_t i = 0; i < old->capacity; ++i) {
    const uint64_t s = old->slot[i].load(std::memory_order_relaxed);
    if (s == kSlotEmpty || s == kSlotTombstone) continue;
    uint64_t j = At<Entry>(s)->hash & mask;
    while (fresh->slot[j].load(std::memory_order_relaxed) != kSlotEmpty) j = (j + 1) & mask;
    fresh->slot[j].store(s, std::memory_order_relaxed);
  }
  table->slots.store(*fresh_off, std::memory_order_release);
  table->tombstones = 0;
  // As a seqlock writer: the count moves before any write that reuses the old array, so a walker
  // that read such a write sees the count moved (ForEachEntry).
  table->rebuilds.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  Free(old_off);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Segment::AllocateSpareEntry(size_t key_len) {
  return Allocate(sizeof(Entry) + key_len, BlockKind::kEntry);
}

absl::Status Segment::Insert(uint64_t table_off, std::string_view key, uint64_t value,
                             uint64_t* spare_entry) {
  auto* table = At<TableHeader>(table_off);
  uint64_t cap = At<SlotArray>(table->slots.load(std::memory_order_relaxed))->capacity;
  const uint64_t live = table->live.load(std::memory_order_relaxed);
  if ((live + table->tombstones + 1) * 4 > cap * 3) {
    const uint64_t want = (live + 1) * 2 > cap ? cap * 2 : cap;
    if (absl::Status s = Rebuild(table, want); s.ok()) {
      cap = want;
    } else if (spare_entry == nullptr || live + table->tombstones + 2 > cap) {
      // Without a reservation, or when no slot would stay empty for lookups to stop at.
      return s;
    }
  }
  if (key.size() > UINT32_MAX) return absl::InvalidArgumentError("key too long");
  absl::StatusOr<uint64_t> entry_off = Allocate(sizeof(Entry) + key.size(), BlockKind::kEntry);
  if (!entry_off.ok()) {
    if (spare_entry == nullptr || *spare_entry == 0 ||
        PayloadSize(*spare_entry) < sizeof(Entry) + key.size()) {
      return entry_off.status();
    }
    entry_off = std::exchange(*spare_entry, 0);  // a crash from here on leaks it, at worst
  }
  auto* e = At<Entry>(*entry_off);
  e->hash = KeyHash(key.data(), key.size());
  e->value = value;
  e->key_len = static_cast<uint32_t>(key.size());
  std::memcpy(reinterpret_cast<char*>(e + 1), key.data(), key.size());
  auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  const uint64_t mask = cap - 1;
  for (uint64_t i = 0;; ++i) {
    auto& slot = arr->slot[(e->hash + i) & mask];
    const uint64_t s = slot.load(std::memory_order_relaxed);
    if (s == kSlotEmpty || s == kSlotTombstone) {
      if (s == kSlotTombstone) --table->tombstones;
      table->live.fetch_add(1, std::memory_order_relaxed);
      slot.store(*entry_off, std::memory_order_release);
      return absl::OkStatus();
    }
  }
}

namespace {
// As a seqlock writer: the count moves before the entry's block can be reused, so a walker that
// read such a reuse sees the count moved (ForEachEntry).
void CountErasure(TableHeader* table) {
  table->erasures.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}
}  // namespace

uint64_t Segment::Erase(uint64_t table_off, std::string_view key) {
  auto* table = At<TableHeader>(table_off);
  auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  const uint64_t hash = KeyHash(key.data(), key.size());
  const uint64_t mask = LoadShared(arr->capacity) - 1;
  for (uint64_t i = 0; i <= mask; ++i) {
    auto& slot = arr->slot[(hash + i) & mask];
    const uint64_t s = slot.load(std::memory_order_relaxed);
    if (s == kSlotEmpty) return 0;
    if (s == kSlotTombstone) continue;
    auto* e = At<Entry>(s);
    if (e->hash != hash || e->key_len != key.size() ||
        std::memcmp(reinterpret_cast<const char*>(e + 1), key.data(), key.size()) != 0) {
      continue;
    }
    const uint64_t value = e->value;
    slot.store(kSlotTombstone, std::memory_order_release);
    ++table->tombstones;
    table->live.fetch_sub(1, std::memory_order_relaxed);
    CountErasure(table);
    Free(s);
    return value;
  }
  return 0;
}

void Segment::EraseAll(uint64_t table_off, const std::function<void(uint64_t)>& on_erase) {
  auto* table = At<TableHeader>(table_off);
  auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  for (uint64_t i = 0; i < arr->capacity; ++i) {
    const uint64_t s = arr->slot[i].load(std::memory_order_relaxed);
    if (s == kSlotEmpty || s == kSlotTombstone) continue;
    const uint64_t value = At<Entry>(s)->value;
    arr->slot[i].store(kSlotTombstone, std::memory_order_release);
    ++table->tombstones;
    table->live.fetch_sub(1, std::memory_order_relaxed);
    CountErasure(table);
    Free(s);
    on_erase(value);
  }
  // Shrink back; on failure the emptied array stays, which is valid.
  (void)Rebuild(table, 16);
}

void Segment::FreeTable(uint64_t table_off) {
  auto* table = At<TableHeader>(table_off);
  Free(table->slots.load(std::memory_order_relaxed));
  Free(table_off);
}

absl::Status Segment::ForEachEntry(uint64_t table,
                                   const std::function<bool(std::string_view, uint64_t)>& f) const {
  // A writer that grows the table publishes a new slot array and frees the old one, whose bytes
  // may be reused at once (its first word becomes a free-list link, so even its capacity
  // changes). So the walk first gathers the entries of one array, reading its capacity once, and
  // starts again when the table was rebuilt meanwhile (TableHeader::rebuilds); only then are they
  // handed to f, so f never sees an entry twice. Rebuilds are rare, so retries are few.
  const auto* th = reinterpret_cast<const TableHeader*>(Checked(table, sizeof(TableHeader)));
  std::vector<uint64_t> entries;
  bool erased = false;
  for (int attempt = 0;; ++attempt) {
    const uint64_t rebuilds = th == nullptr ? 0 : th->rebuilds.load(std::memory_order_acquire);
    const uint64_t erasures = th == nullptr ? 0 : th->erasures.load(std::memory_order_acquire);
    const uint64_t slots = th == nullptr ? 0 : th->slots.load(std::memory_order_acquire);
    uint64_t capacity = 0;
    const SlotArray* arr = CheckedSlots(*this, table, &capacity);
    if (arr == nullptr) {
      // Freed and reused between our reads of the table and of the array: try the new one.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (th != nullptr && th->rebuilds.load(std::memory_order_acquire) != rebuilds &&
          attempt < 64) {
        continue;
      }
      return absl::DataLossError(absl::StrCat(location_.Describe(), ": table at offset ", table,
                                              " is out of range or malformed"));
    }
    entries.clear();
    bool bad = false;
    uint64_t bad_slot = 0, bad_value = 0;
    // Distinct entries take at least 32 bytes each; more slots than that repeat offsets, which
    // only a corrupt (or racing) table does. The bound keeps the list proportional to the heap.
    const uint64_t max_entries = ReadableSize() / (kBlockHeaderSize + sizeof(Entry));
    for (uint64_t i = 0; i < capacity; ++i) {
      const uint64_t s = arr->slot[i].load(std::memory_order_acquire);
      if (s == kSlotEmpty || s == kSlotTombstone) continue;
      if (s % 8 != 0 || Checked(s, sizeof(Entry)) == nullptr || entries.size() >= max_entries) {
        bad = true;
        bad_slot = i;
        bad_value = s;
        break;
      }
      entries.push_back(s);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    const bool moved = th->rebuilds.load(std::memory_order_acquire) != rebuilds ||
                       reinterpret_cast<const char*>(arr) != base_ + slots;
    erased = th->erasures.load(std::memory_order_acquire) != erasures;
    if (moved && attempt < 64) continue;
    if (bad) {
      return absl::DataLossError(absl::StrCat(location_.Describe(), ": index slot ", bad_slot,
                                              " holds offset ", bad_value, ", out of range"));
    }
    break;
  }
  // An entry removed while we gathered may have had its block reused by an entry inserted into
  // another slot, so the same offset can appear twice: keep its first appearance only. Without
  // an erasure meanwhile no block was freed, so the (costly) check is skipped.
  if (erased) {
    std::vector<uint64_t> sorted = entries;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
      std::vector<bool> taken(sorted.size());
      size_t kept = 0;
      for (const uint64_t s : entries) {
        const size_t i = std::lower_bound(sorted.begin(), sorted.end(), s) - sorted.begin();
        if (!taken[i]) {
          taken[i] = true;
          entries[kept++] = s;
        }
      }
      entries.resize(kept);
    }
  }
  // Slots are in hash order, so the entries and the records they point to are scattered over
  // the heap: without help the walk waits on a cache miss per entry, then another per record.
  // Prefetching the entry kAhead places ahead and, once it has arrived, its record kAhead / 2
  // places ahead keeps those misses in flight. Prefetches never fault; offsets beyond the
  // committed heap are skipped, and everything used below is still checked.
  constexpr size_t kAhead = 16;
  const uint64_t limit = ReadableSize();
  const size_t n = entries.size();
  for (size_t i = 0; i < n; ++i) {
    // Gathered offsets are 8-aligned and inside the heap.
    if (i + kAhead < n) __builtin_prefetch(base_ + entries[i + kAhead] - kBlockHeaderSize);
    if (i + kAhead / 2 < n) {
      const uint64_t v =
          LoadShared(reinterpret_cast<const Entry*>(base_ + entries[i + kAhead / 2])->value);
      if (v < limit) __builtin_prefetch(base_ + v);
    }
    const Entry* e = CheckedEntry(*this, entries[i]);
    if (e == nullptr) continue;  // removed while we looked
    if (!f(std::string_view(reinterpret_cast<const char*>(e + 1), e->key_len), e->value)) break;
  }
  return absl::OkStatus();
}

uint64_t Segment::TableSize(uint64_t table) const {
  const auto* th = reinterpret_cast<const TableHeader*>(Checked(table, sizeof(TableHeader)));
  return th == nullptr ? 0 : th->live.load(std::memory_order_relaxed);
}

// --- Workers ---

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
  std::scoped_lock lock(header().worker_lock);
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
  std::scoped_lock lock(header().worker_lock);
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

// --- Verification ---

absl::StatusOr<Segment::Usage> Segment::ComputeUsage() const {
  const Header& h = header();
  const uint64_t used = h.used.load(std::memory_order_acquire);
  const uint64_t limit = ReadableSize();
  if (used > limit) {
    return absl::DataLossError(absl::StrFormat("%s: used %d bytes exceeds the readable %d",
                                               location_.Describe(), used, limit));
  }
  Usage u{used, h.committed.load(std::memory_order_acquire), h.max_size, 0, 0, 0};
  for (uint64_t off = kHeaderSize; off < used;) {
    const auto* bh = reinterpret_cast<const BlockHeader*>(base_ + off);
    const uint32_t size = bh->size;
    const uint16_t kind = bh->kind.load(std::memory_order_relaxed);
    const uint16_t state = bh->state.load(std::memory_order_relaxed);
    if (size < kBlockAlign || size % kBlockAlign != 0 || size > used - off) {
      return absl::DataLossError(
          absl::StrFormat("%s: block at offset %d has size %d", location_.Describe(), off, size));
    }
    if (kind < static_cast<uint16_t>(BlockKind::kTable) ||
        kind > static_cast<uint16_t>(BlockKind::kBlob)) {
      return absl::DataLossError(absl::StrFormat("%s: block at offset %d has unknown kind %d",
                                                 location_.Describe(), off, kind));
    }
    if (state == static_cast<uint16_t>(BlockState::kLive)) {
      ++u.live_blocks;
    } else if (state == static_cast<uint16_t>(BlockState::kFree)) {
      ++u.free_blocks;
      u.free_bytes += size;
    } else {
      return absl::DataLossError(absl::StrFormat("%s: block at offset %d has unknown state %d",
                                                 location_.Describe(), off, state));
    }
    off += size;
  }
  return u;
}

absl::Status Segment::Verify() const {
  const Header& h = header();
  if (h.magic.load(std::memory_order_acquire) != kMagic) {
    return absl::DataLossError(absl::StrCat(location_.Describe(), ": bad magic"));
  }
  if (absl::Status s = Validate(ReadableSize()); !s.ok()) return s;
  auto usage = ComputeUsage();
  if (!usage.ok()) return usage.status();
  // Free lists: every link a free block of the right size, no cycles (bounded walk).
  const uint64_t max_links = usage->free_blocks + 1;
  for (uint32_t c = 0; c <= kSmallClasses; ++c) {
    uint64_t off = c < kSmallClasses ? h.free_small[c] : h.free_large;
    for (uint64_t n = 0; off != 0; ++n) {
      const char* p = Checked(off - kBlockHeaderSize, kBlockHeaderSize + 8);
      const auto* bh = reinterpret_cast<const BlockHeader*>(p);
      if (p == nullptr || n > max_links ||
          bh->state.load(std::memory_order_relaxed) != static_cast<uint16_t>(BlockState::kFree) ||
          (c < kSmallClasses && bh->size != (c + 1) * kBlockAlign)) {
        return absl::DataLossError(absl::StrFormat("%s: free list %d is damaged at offset %d",
                                                   location_.Describe(), c, off));
      }
      off = *reinterpret_cast<const uint64_t*>(p + kBlockHeaderSize);
    }
  }
  // The root table: every entry live and pointing inside the heap.
  absl::Status walk = ForEachEntry(h.root_table.load(std::memory_order_acquire),
                                   [](std::string_view, uint64_t) { return true; });
  if (!walk.ok()) return walk;
  if (Workers_() == nullptr) {
    return absl::DataLossError(absl::StrCat(location_.Describe(), ": worker table is corrupt"));
  }
  return absl::OkStatus();
}

}  // namespace shmetrics::shm
