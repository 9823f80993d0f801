// Process liveness from /proc: whether a worker or the heap's creator is still running.
#include "shm/liveness.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shm/segment.h"

namespace shmetrics::shm {
namespace {

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

// Reads /proc/<pid>/stat: the state letter and field 22 (start time in clock ticks).
bool ReadProcStat(pid_t pid, char* state, uint64_t* start_ticks) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  char buf[1024];
  size_t len = 0;
  if (!ReadSmallFile(path, buf, sizeof buf, &len)) return false;
  return ParseProcStat(buf, state, start_ticks);
}

}  // namespace

bool ParseProcStat(const char* stat, char* state, uint64_t* start_ticks) {
  // comm may hold spaces and parentheses: fields resume after the last ')'.
  const char* p = strrchr(stat, ')');
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

bool RunningState(char state) { return state != 'Z' && state != 'X' && state != 'x'; }

bool ProcessRunning(pid_t pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  char state = 0;
  uint64_t ticks = 0;
  if (!ReadProcStat(pid, &state, &ticks)) {
    if (access("/proc/self/stat", R_OK) == 0) return false;  // /proc works: the pid is gone
    return kill(pid, 0) == 0 || errno == EPERM;
  }
  if (!RunningState(state)) return false;
  return start_ticks == 0 || ticks == start_ticks;
}

uint64_t ProcessStartTicks(pid_t pid) {
  char state = 0;
  uint64_t ticks = 0;
  return ReadProcStat(pid, &state, &ticks) ? ticks : 0;
}

bool Segment::CreatorAlive() const {
  const Header& h = header();
  return ProcessRunning(static_cast<pid_t>(h.creator_pid), h.creator_start_ticks);
}

}  // namespace shmetrics::shm
