// Segment's mapping: where a heap lives (Location), creating, opening, mapping, growing and
// removing the file behind it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shm/segment_internal.h"

namespace shmetrics::shm {
namespace bip = boost::interprocess;

namespace {

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

// The size of a worker table's payload: its capacity word, padding, and the slots.
uint64_t WorkerTableBytes(uint32_t max_workers) {
  return 16 + uint64_t{max_workers} * sizeof(WorkerSlot);
}

}  // namespace

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
  const uint64_t worker_bytes = WorkerTableBytes(options.max_workers);
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
  if (absl::Status s = (*seg)->Initialize(options, initial); !s.ok()) return fail(s);
  // Published last: an opener that sees the magic sees a complete header.
  (*seg)->header().magic.store(kMagic, std::memory_order_release);
  return seg;
}

absl::Status Segment::Initialize(const CreateOptions& options, uint64_t initial_size) {
  Header& h = header();
  h.layout_version = kLayoutVersion;
  h.header_size = kHeaderSize;
  h.max_size = mapped_size_;
  h.flags = internal::kMutexCells ? kFlagMutexCells : 0;
  h.cell_size = sizeof(internal::Cell);
  h.committed.store(initial_size, std::memory_order_relaxed);
  h.used.store(kHeaderSize, std::memory_order_relaxed);
  h.created_unix_ns = NowUnixNs();
  h.creator_pid = static_cast<uint32_t>(getpid());
  h.creator_start_ticks = ProcessStartTicks(getpid());
  h.max_workers = options.max_workers;
  h.lock.Init();
  h.worker_lock.Init();
  h.exemplar_lock.Init();
  MutexLock lock(this->lock());
  auto root = NewTable(64);
  if (!root.ok()) return root.status();
  auto workers = Allocate(WorkerTableBytes(options.max_workers), BlockKind::kWorkerTable);
  if (!workers.ok()) return workers.status();
  At<WorkerTable>(*workers)->capacity = options.max_workers;
  h.root_table.store(*root, std::memory_order_relaxed);
  h.worker_table.store(*workers, std::memory_order_relaxed);
  return absl::OkStatus();
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
}  // namespace shmetrics::shm
