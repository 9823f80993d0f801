// RobustMutex: a process-shared pthread mutex that lives in the heap and survives its owner's
// death.
//
// Used only on the rare paths that need mutual exclusion across processes: creating and removing
// records, growing the heap, writing exemplars. A process that dies while holding it (SIGKILL at
// any instruction) does not block the others: the kernel hands the next locker EOWNERDEAD, which
// this class turns into an ordinary acquisition after marking the mutex consistent. Every
// structure guarded by a RobustMutex is written so that each prefix of its update sequence leaves
// it valid (a leaked block at worst), so recovery needs no repair step.
//
// Thread safety: lock()/unlock() from any thread of any process that maps the heap.
// Fork safety: the mutex is owned by a thread; a child forked while a parent thread holds it
// waits until that thread releases it (or dies), it never deadlocks on its own.
#ifndef SHMETRICS_SHM_ROBUST_MUTEX_H_
#define SHMETRICS_SHM_ROBUST_MUTEX_H_

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "absl/base/thread_annotations.h"

namespace shmetrics::shm {

// Lives in the heap. A capability for clang's -Wthread-safety: hold it through shm::MutexLock
// (shm/mutex_lock.h), which the analysis understands, rather than std::scoped_lock.
class ABSL_LOCKABLE RobustMutex {
 public:
  // Initializes the mutex in place. Called once by the process that creates the enclosing
  // structure, before the structure is published.
  void Init() noexcept;

  // Meets the standard Lockable requirements so std::scoped_lock works.
  void lock() noexcept ABSL_EXCLUSIVE_LOCK_FUNCTION();
  bool try_lock() noexcept ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true);
  void unlock() noexcept ABSL_UNLOCK_FUNCTION();

  // Number of times a locker found the previous owner dead and recovered the mutex.
  uint64_t recoveries() const noexcept { return recoveries_.load(std::memory_order_relaxed); }

 private:
  void Recovered() noexcept;

  pthread_mutex_t mu_;
  std::atomic<uint64_t> recoveries_;
};

static_assert(std::is_standard_layout_v<RobustMutex>);
static_assert(sizeof(RobustMutex) <= 64, "the heap header reserves 64 bytes per mutex");

// Initializes a pthread mutex as process-shared and robust.
void InitRobustPthreadMutex(pthread_mutex_t* mu) noexcept;

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_ROBUST_MUTEX_H_
