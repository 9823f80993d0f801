// Per-process runtime statistics read from Linux procfs.
//
// The collector of a pre-fork server calls ReadProcessStats for the master and every live worker
// at scrape time, so workers need no thread of their own to report CPU, memory, fds and so on.
// Everything is read with plain open/read/getdents64 into fixed stack buffers: no heap allocation
// on the success path, no iostreams, and a hard cap on the bytes read from every file, so a
// hostile or corrupt /proc tree (tests point ProcRoot at crafted files) yields an error, never a
// crash, a hang or a huge allocation.
//
// Thread safety: every function is safe to call from any thread concurrently. The only shared
// state is the cached boot time, an atomic that is never locked, so calling these around fork()
// is safe too.
//
// Example:
//   absl::StatusOr<ProcessStats> s = ReadProcessStats(worker_pid);
//   if (absl::IsNotFound(s.status())) { /* the worker exited; drop its series */ }
#ifndef SHMETRICS_SRC_PROCESS_PROC_STATS_H_
#define SHMETRICS_SRC_PROCESS_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace shmetrics::process {

// Where procfs is mounted. Tests point it at a directory of crafted files laid out like procfs:
// <path>/stat (for `btime`), <path>/<pid>/stat, <pid>/status, <pid>/limits and <pid>/fd/.
struct ProcRoot {
  // REQUIRES: no trailing slash; at most ~4000 bytes (longer paths give InvalidArgument).
  // Default: "/proc".
  std::string path = "/proc";
};

// A snapshot of one process. Counters are cumulative since the process started.
struct ProcessStats {
  double cpu_user_seconds = 0;         // utime / sysconf(_SC_CLK_TCK)
  double cpu_system_seconds = 0;       // stime / sysconf(_SC_CLK_TCK)
  uint64_t resident_memory_bytes = 0;  // status VmRSS, else stat rss pages * page size
  uint64_t virtual_memory_bytes = 0;   // vsize
  uint64_t open_fds = 0;               // entries of /proc/<pid>/fd
  // Soft limit of "Max open files". "unlimited" is reported as UINT64_MAX, which is also the
  // value of RLIM_INFINITY, so it compares equal to what getrlimit() returns (and matches what
  // the Go procfs library reports for Prometheus's own process collector).
  uint64_t max_fds = 0;
  uint64_t threads = 0;
  // Context switches of the main thread only: procfs counts them per thread and summing
  // /proc/<pid>/task/*/status would cost a file per thread per scrape. Pre-fork workers do
  // their work on the main thread, which is what these are for.
  uint64_t voluntary_context_switches = 0;
  uint64_t involuntary_context_switches = 0;
  // Page faults of all threads, like getrusage(RUSAGE_SELF).
  uint64_t minor_page_faults = 0;
  uint64_t major_page_faults = 0;
  double start_time_seconds = 0;  // since the epoch: btime + starttime / sysconf(_SC_CLK_TCK)
};

// ReadProcessStats()
//
// Reads /proc/<pid>/{stat,status,limits,fd} and the boot time from /proc/stat. The boot time
// is cached after the first successful read when root is the default "/proc"; other roots are
// read every time so tests can vary it.
//
// Errors:
//   InvalidArgument    pid <= 0, or root.path too long.
//   NotFound           the process does not exist or exited while it was being read.
//   PermissionDenied   procfs refused access (typically /proc/<pid>/fd of another user).
//   DataLoss           a file is malformed or larger than its cap; the message names the file.
//   Internal           any other I/O error, with its errno text.
// A zombie (exited, not yet reaped) is still readable and reports its final counters, with
// zero memory and fds; shm::ProcessRunning() (shm/liveness.h) tells it from a running process.
//
// Bytes read are capped: 4 KiB for <pid>/stat (the kernel writes about 1.2 KiB at most),
// 64 KiB for status and limits, 1 MiB for /proc/stat (one-time, it is long on big machines).
//
// The files are read one after another, not atomically: if the pid is reused between two reads
// the snapshot may mix two processes. Callers that care compare shm::ProcessStartTicks()
// (shm/liveness.h) before and after.
[[nodiscard]] absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid, const ProcRoot& root = {});

}  // namespace shmetrics::process

#endif  // SHMETRICS_SRC_PROCESS_PROC_STATS_H_
