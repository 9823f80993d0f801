// Process liveness as the heap sees it: whether the process behind a worker slot or the heap's
// creator is still running, read from /proc/<pid>/stat. The one liveness check of the library:
// the worker table, Segment::CreatorAlive and the collector all use it.
//
// Thread safety: every function is safe from any thread; none keeps state.
#ifndef SHMETRICS_SHM_LIVENESS_H_
#define SHMETRICS_SHM_LIVENESS_H_

#include <sys/types.h>

#include <cstdint>

namespace shmetrics::shm {

// Liveness of a process as the worker table sees it: running, not a zombie, and (when
// start_ticks is not 0) the same process that recorded start_ticks.
bool ProcessRunning(pid_t pid, uint64_t start_ticks);
// Field 22 of /proc/<pid>/stat, or 0 when it cannot be read.
uint64_t ProcessStartTicks(pid_t pid);

// Parses the NUL-terminated contents of a /proc/<pid>/stat file: the state letter (field 3)
// and the start time in clock ticks after boot (field 22). False when the text is malformed.
bool ParseProcStat(const char* stat, char* state, uint64_t* start_ticks);
// False for the states of a process that has exited: zombie ('Z') and dead ('X', 'x').
bool RunningState(char state);

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_LIVENESS_H_
