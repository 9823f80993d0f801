#include "process/proc_stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace shmetrics::process {
namespace {

// Caps on the bytes read per file; see the header for why each is what it is.
constexpr size_t kStatCap = 4 * 1024;
constexpr size_t kTextFileCap = 64 * 1024;
constexpr size_t kProcStatCap = 1024 * 1024;
// ForEachLine's window. Lines longer than this are skipped whole: none of the lines we look for
// comes close, so a long line is never one we need, and skipping beats handing on a prefix that
// could end mid-number.
constexpr size_t kLineWindow = 4 * 1024;
constexpr size_t kMaxRootPath = 4000;

// A path built in place, so reading a process costs no heap allocation.
class Path {
 public:
  // root + "/" + leaf, or root + "/" + pid + "/" + leaf when pid > 0.
  absl::Status Set(const ProcRoot& root, pid_t pid, const char* leaf) {
    if (root.path.size() > kMaxRootPath) {
      return absl::InvalidArgumentError(
          absl::StrCat("proc root path longer than ", kMaxRootPath, " bytes"));
    }
    int n = pid > 0 ? std::snprintf(buf_, sizeof(buf_), "%s/%d/%s", root.path.c_str(),
                                    static_cast<int>(pid), leaf)
                    : std::snprintf(buf_, sizeof(buf_), "%s/%s", root.path.c_str(), leaf);
    if (n < 0 || static_cast<size_t>(n) >= sizeof(buf_)) {
      return absl::InvalidArgumentError("proc path too long");
    }
    return absl::OkStatus();
  }
  const char* c_str() const { return buf_; }

 private:
  char buf_[kMaxRootPath + 64];
};

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Debian's Abseil is built with its own absl::string_view, not an alias of std::string_view,
// so std::string_view crosses into Abseil through this.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ENOENT and ESRCH are what procfs returns once a process is gone (before and after open).
absl::Status ErrnoStatus(int err, std::string_view op, const char* path) {
  std::string msg = absl::StrCat(AV(op), " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ESRCH:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Malformed(const char* path, std::string_view why) {
  return absl::DataLossError(absl::StrCat("malformed ", path, ": ", AV(why)));
}

// O_NONBLOCK so that a FIFO planted in a fake tree reads as empty instead of hanging.
absl::StatusOr<int> OpenForRead(const char* path, int extra_flags = 0) {
  int fd;
  do {
    fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | extra_flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  return fd;
}

ssize_t ReadRetrying(int fd, char* buf, size_t len) {
  ssize_t n;
  do {
    n = ::read(fd, buf, len);
  } while (n < 0 && errno == EINTR);
  return n;
}

// Reads all of path into buf; a file of more than cap bytes is DataLoss.
absl::StatusOr<std::string_view> ReadWhole(const char* path, char* buf, size_t cap) {
  absl::StatusOr<int> fd_or = OpenForRead(path);
  if (!fd_or.ok()) return fd_or.status();
  ScopedFd fd(*fd_or);
  size_t len = 0;
  while (true) {
    char* dst = buf + len;
    size_t room = cap - len;
    char probe;
    if (room == 0) {  // full: one more byte means the file is over the cap
      dst = &probe;
      room = 1;
    }
    ssize_t n = ReadRetrying(fd.get(), dst, room);
    if (n < 0) return ErrnoStatus(errno, "read", path);
    if (n == 0) break;
    if (dst == &probe) return Malformed(path, absl::StrCat("longer than ", cap, " bytes"));
    len += static_cast<size_t>(n);
  }
  return std::string_view(buf, len);
}

// Calls on_line(line) for each line of path, without its '\n', until on_line returns false.
// Lines longer than kLineWindow are skipped; a file of more than cap bytes is DataLoss.
template <typename OnLine>
absl::Status ForEachLine(const char* path, size_t cap, OnLine&& on_line) {
  absl::StatusOr<int> fd_or = OpenForRead(path);
  if (!fd_or.ok()) return fd_or.status();
  ScopedFd fd(*fd_or);
  char buf[kLineWindow];
  size_t have = 0;
  size_t total = 0;
  bool skipping = false;  // inside a line too long for the window
  while (true) {
    ssize_t n = ReadRetrying(fd.get(), buf + have, sizeof(buf) - have);
    if (n < 0) return ErrnoStatus(errno, "read", path);
    total += static_cast<size_t>(n);
    if (total > cap) return Malformed(path, absl::StrCat("longer than ", cap, " bytes"));
    have += static_cast<size_t>(n);
    size_t start = 0;
    while (const void* nl = std::memchr(buf + start, '\n', have - start)) {
      size_t end = static_cast<size_t>(static_cast<const char*>(nl) - buf);
      if (!skipping && !on_line(std::string_view(buf + start, end - start))) {
        return absl::OkStatus();
      }
      skipping = false;
      start = end + 1;
    }
    std::memmove(buf, buf + start, have - start);
    have -= start;
    if (n == 0) {  // EOF: a last line without '\n' still counts
      if (have > 0 && !skipping) on_line(std::string_view(buf, have));
      return absl::OkStatus();
    }
    if (have == sizeof(buf)) {
      skipping = true;
      have = 0;
    }
  }
}

std::string_view TrimBlanks(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Splits off the next token separated by spaces or tabs; empty when there is none.
std::string_view NextToken(std::string_view& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(b);
  size_t e = s.find_first_of(" \t");
  std::string_view tok = s.substr(0, e);
  s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  return tok;
}

// Digits only, no sign, no spaces (the kernel writes nothing else), and no overflow.
bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) return false;
  }
  *out = v;
  return true;
}

// Fields of /proc/<pid>/stat that we use; numbers are the man proc(5) field numbers.
struct StatFields {
  char state = 0;          // 3
  uint64_t minflt = 0;     // 10
  uint64_t majflt = 0;     // 12
  uint64_t utime = 0;      // 14, clock ticks
  uint64_t stime = 0;      // 15, clock ticks
  uint64_t starttime = 0;  // 22, clock ticks after boot
  uint64_t vsize = 0;      // 23, bytes
  uint64_t rss_pages = 0;  // 24
};

// `pid (comm) state ppid ...`: comm is whatever the process chose (prctl, argv[0]), up to 64
// bytes of anything but NUL, ')' and newlines included, so fields are counted from the LAST ')'.
absl::StatusOr<StatFields> ParseStat(std::string_view text, pid_t pid, const char* path) {
  size_t open = text.find(" (");
  if (open == std::string_view::npos) return Malformed(path, "no ' (' after the pid");
  uint64_t file_pid = 0;
  if (!ParseDecimal(text.substr(0, open), &file_pid) || file_pid != static_cast<uint64_t>(pid)) {
    return Malformed(path, absl::StrCat("pid field is not ", pid));
  }
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close < open + 2) {
    return Malformed(path, "no ')' closing the command name");
  }
  std::string_view rest = text.substr(close + 1);
  if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
  if (rest.empty() || rest.front() != ' ') return Malformed(path, "nothing after the command name");
  rest.remove_prefix(1);

  // Fields 3..24 are single-space separated; an empty field (two spaces) is malformed too.
  constexpr int kFirst = 3;
  constexpr int kLast = 24;
  std::string_view field[kLast + 1];
  for (int i = kFirst; i <= kLast; ++i) {
    size_t sp = rest.find(' ');
    field[i] = rest.substr(0, sp);
    if (field[i].empty()) return Malformed(path, absl::StrCat("field ", i, " missing"));
    // Every kernel writes 44 or more fields; a file that ends right after field 24 was cut off,
    // and its last number may be cut short too.
    if (i == kLast && sp == std::string_view::npos) return Malformed(path, "truncated");
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  StatFields f;
  if (field[3].size() != 1) return Malformed(path, "state (field 3) is not one character");
  f.state = field[3][0];
  struct {
    int index;
    uint64_t* out;
  } const numbers[] = {{10, &f.minflt},    {12, &f.majflt}, {14, &f.utime},    {15, &f.stime},
                       {22, &f.starttime}, {23, &f.vsize},  {24, &f.rss_pages}};
  for (const auto& n : numbers) {
    std::string_view s = field[n.index];
    if (!ParseDecimal(s, n.out)) {
      return Malformed(path, absl::StrCat("field ", n.index, " is not a number: '",
                                          absl::CHexEscape(AV(s.substr(0, 32))), "'"));
    }
  }
  return f;
}

absl::StatusOr<StatFields> ReadStat(pid_t pid, const ProcRoot& root) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("invalid pid ", pid));
  Path path;
  if (absl::Status s = path.Set(root, pid, "stat"); !s.ok()) return s;
  char buf[kStatCap];
  absl::StatusOr<std::string_view> text = ReadWhole(path.c_str(), buf, sizeof(buf));
  if (!text.ok()) return text.status();
  return ParseStat(*text, pid, path.c_str());
}

struct StatusFields {
  uint64_t threads = 0;
  uint64_t voluntary = 0;
  uint64_t involuntary = 0;
  // VmRSS in bytes; absent for kernel threads and zombies.
  std::optional<uint64_t> rss_bytes;
};

// "  3608 kB" -> 3608 * 1024.
bool ParseKilobytes(std::string_view text, uint64_t* bytes) {
  text = TrimBlanks(text);
  if (!text.ends_with(" kB")) return false;
  uint64_t kb = 0;
  return ParseDecimal(TrimBlanks(text.substr(0, text.size() - 3)), &kb) &&
         !__builtin_mul_overflow(kb, uint64_t{1024}, bytes);
}

absl::StatusOr<StatusFields> ReadStatus(pid_t pid, const ProcRoot& root) {
  Path path;
  if (absl::Status s = path.Set(root, pid, "status"); !s.ok()) return s;
  StatusFields f;
  struct Key {
    std::string_view prefix;
    uint64_t* out;
    bool seen;
  } keys[] = {{"Threads:", &f.threads, false},
              {"voluntary_ctxt_switches:", &f.voluntary, false},
              {"nonvoluntary_ctxt_switches:", &f.involuntary, false}};
  const Key* bad = nullptr;
  bool bad_rss = false;
  absl::Status s = ForEachLine(path.c_str(), kTextFileCap, [&](std::string_view line) {
    if (constexpr std::string_view kRss = "VmRSS:"; !f.rss_bytes && line.starts_with(kRss)) {
      uint64_t bytes = 0;
      bad_rss = !ParseKilobytes(line.substr(kRss.size()), &bytes);
      f.rss_bytes = bytes;
      return !bad_rss;
    }
    for (Key& k : keys) {
      if (!k.seen && line.starts_with(k.prefix)) {
        k.seen = true;
        if (!ParseDecimal(TrimBlanks(line.substr(k.prefix.size())), k.out)) {
          bad = &k;
          return false;
        }
      }
    }
    return true;
  });
  if (!s.ok()) return s;
  if (bad_rss) return Malformed(path.c_str(), "bad value for VmRSS:");
  if (bad != nullptr)
    return Malformed(path.c_str(), absl::StrCat("bad value for ", AV(bad->prefix)));
  for (const Key& k : keys) {
    if (!k.seen) return Malformed(path.c_str(), absl::StrCat("no ", AV(k.prefix), " line"));
  }
  return f;
}

absl::StatusOr<uint64_t> ReadMaxFds(pid_t pid, const ProcRoot& root) {
  Path path;
  if (absl::Status s = path.Set(root, pid, "limits"); !s.ok()) return s;
  constexpr std::string_view kKey = "Max open files ";
  bool seen = false;
  bool ok = false;
  uint64_t soft = 0;
  absl::Status s = ForEachLine(path.c_str(), kTextFileCap, [&](std::string_view line) {
    if (!line.starts_with(kKey)) return true;
    seen = true;
    line.remove_prefix(kKey.size());
    std::string_view tok = NextToken(line);
    if (tok == "unlimited") {
      soft = std::numeric_limits<uint64_t>::max();
      ok = true;
    } else {
      ok = ParseDecimal(tok, &soft);
    }
    return false;
  });
  if (!s.ok()) return s;
  if (!seen) return Malformed(path.c_str(), "no 'Max open files' line");
  if (!ok) return Malformed(path.c_str(), "bad 'Max open files' soft limit");
  return soft;
}

absl::StatusOr<uint64_t> CountFds(pid_t pid, const ProcRoot& root) {
  Path path;
  if (absl::Status s = path.Set(root, pid, "fd"); !s.ok()) return s;
  absl::StatusOr<int> fd_or = OpenForRead(path.c_str(), O_DIRECTORY);
  if (!fd_or.ok()) return fd_or.status();
  ScopedFd fd(*fd_or);
  alignas(struct dirent64) char buf[8192];
  constexpr size_t kNameOffset = offsetof(struct dirent64, d_name);
  uint64_t count = 0;
  while (true) {
    ssize_t n = ::getdents64(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "getdents64", path.c_str());
    }
    if (n == 0) break;
    for (size_t off = 0; off < static_cast<size_t>(n);) {
      unsigned short reclen;  // memcpy: the records are packed at arbitrary offsets in buf
      std::memcpy(&reclen, buf + off + offsetof(struct dirent64, d_reclen), sizeof(reclen));
      if (reclen <= kNameOffset || off + reclen > static_cast<size_t>(n)) {
        return absl::InternalError(absl::StrCat("getdents64 ", path.c_str(), ": bad record"));
      }
      std::string_view name(buf + off + kNameOffset,
                            strnlen(buf + off + kNameOffset, reclen - kNameOffset));
      if (name != "." && name != "..") ++count;
      off += reclen;
    }
  }
  return count;
}

absl::StatusOr<uint64_t> ReadBootTimeUncached(const ProcRoot& root) {
  Path path;
  if (absl::Status s = path.Set(root, 0, "stat"); !s.ok()) return s;
  constexpr std::string_view kKey = "btime ";
  bool seen = false;
  bool ok = false;
  uint64_t btime = 0;
  absl::Status s = ForEachLine(path.c_str(), kProcStatCap, [&](std::string_view line) {
    if (!line.starts_with(kKey)) return true;
    seen = true;
    ok = ParseDecimal(TrimBlanks(line.substr(kKey.size())), &btime);
    return false;
  });
  if (!s.ok()) return s;
  if (!seen) return Malformed(path.c_str(), "no btime line");
  if (!ok) return Malformed(path.c_str(), "bad btime value");
  return btime;
}

// Boot time never changes while the machine is up, so the real one is read once. 0 means
// "not read yet" (a machine booted at the epoch has other problems). Relaxed is enough: the
// value is self-contained and racing readers just both read the file.
std::atomic<uint64_t> cached_boot_time{0};

absl::StatusOr<uint64_t> ReadBootTime(const ProcRoot& root) {
  const bool cacheable = root.path == "/proc";
  if (cacheable) {
    if (uint64_t b = cached_boot_time.load(std::memory_order_relaxed); b != 0) return b;
  }
  absl::StatusOr<uint64_t> b = ReadBootTimeUncached(root);
  if (cacheable && b.ok()) cached_boot_time.store(*b, std::memory_order_relaxed);
  return b;
}

absl::StatusOr<uint64_t> SysconfPositive(int name, const char* what) {
  long v = ::sysconf(name);
  if (v <= 0) return absl::InternalError(absl::StrCat("sysconf(", what, ") failed"));
  return static_cast<uint64_t>(v);
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid, const ProcRoot& root) {
  absl::StatusOr<uint64_t> ticks = SysconfPositive(_SC_CLK_TCK, "_SC_CLK_TCK");
  if (!ticks.ok()) return ticks.status();
  absl::StatusOr<uint64_t> page = SysconfPositive(_SC_PAGESIZE, "_SC_PAGESIZE");
  if (!page.ok()) return page.status();

  // stat first: it is the file that tells a vanished process (NotFound) most cheaply.
  absl::StatusOr<StatFields> stat = ReadStat(pid, root);
  if (!stat.ok()) return stat.status();
  absl::StatusOr<StatusFields> status = ReadStatus(pid, root);
  if (!status.ok()) return status.status();
  absl::StatusOr<uint64_t> max_fds = ReadMaxFds(pid, root);
  if (!max_fds.ok()) return max_fds.status();
  absl::StatusOr<uint64_t> open_fds = CountFds(pid, root);
  if (!open_fds.ok()) return open_fds.status();
  absl::StatusOr<uint64_t> boot = ReadBootTime(root);
  if (!boot.ok()) return boot.status();

  ProcessStats out;
  const double hz = static_cast<double>(*ticks);
  out.cpu_user_seconds = static_cast<double>(stat->utime) / hz;
  out.cpu_system_seconds = static_cast<double>(stat->stime) / hz;
  // status's VmRSS where there is one: recent kernels (6.17) make it the exact count while stat's
  // rss stays the per-CPU counters' approximation, off by up to 64 pages per CPU and kind.
  if (status->rss_bytes) {
    out.resident_memory_bytes = *status->rss_bytes;
  } else if (__builtin_mul_overflow(stat->rss_pages, *page, &out.resident_memory_bytes)) {
    return absl::DataLossError(absl::StrCat("rss of pid ", pid, " overflows 64 bits"));
  }
  out.virtual_memory_bytes = stat->vsize;
  out.open_fds = *open_fds;
  out.max_fds = *max_fds;
  out.threads = status->threads;
  out.voluntary_context_switches = status->voluntary;
  out.involuntary_context_switches = status->involuntary;
  out.minor_page_faults = stat->minflt;
  out.major_page_faults = stat->majflt;
  out.start_time_seconds = static_cast<double>(*boot) + static_cast<double>(stat->starttime) / hz;
  return out;
}

}  // namespace shmetrics::process
