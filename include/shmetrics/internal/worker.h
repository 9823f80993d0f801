// This process's worker identity, for per-worker cells. Not API: see Heap::AttachWorker.
#ifndef SHMETRICS_INTERNAL_WORKER_H_
#define SHMETRICS_INTERNAL_WORKER_H_

#include <atomic>
#include <cstdint>

namespace shmetrics::internal {

// The stripe this process writes in per-worker cells: its worker id, or UINT32_MAX (the last
// stripe, shared by processes without an id) when it has none. Set by Heap::AttachWorker and
// reset in every forked child, so a child never writes in its parent's stripe. One per process,
// whatever the heap: so a process is a worker of one heap at a time (AttachWorker refuses a
// second).
extern std::atomic<uint32_t> g_worker_stripe;
// The epoch of the worker slot this process claimed (0 without one): lets the collector tell
// this worker's values from those its predecessor in the slot left.
extern std::atomic<uint64_t> g_worker_epoch;

}  // namespace shmetrics::internal

#endif  // SHMETRICS_INTERNAL_WORKER_H_
