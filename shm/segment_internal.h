// Helpers shared by the parts of Segment (mapping, allocator, index table, worker table,
// verification). Private to shm/: nothing outside this directory includes it.
#ifndef SHMETRICS_SHM_SEGMENT_INTERNAL_H_
#define SHMETRICS_SHM_SEGMENT_INTERNAL_H_

#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace shmetrics::shm {

inline uint64_t NowUnixNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

inline uint64_t PageSize() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

inline std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_SEGMENT_INTERNAL_H_
