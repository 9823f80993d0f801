// MutexLock: holds a RobustMutex for a scope, in a way clang's -Wthread-safety can check.
//
// libstdc++'s std::scoped_lock and std::lock_guard carry no thread-safety attributes, so code that
// takes a heap lock through them looks to the analysis as if it held nothing. Take heap locks
// with this guard instead:
//   shm::MutexLock lock(segment.lock());
//   auto offset = segment.Allocate(size, kind);  // checked: REQUIRES segment.lock()
//
// Thread safety: a guard belongs to the thread that made it. Process safety: as RobustMutex.
#ifndef SHMETRICS_SHM_MUTEX_LOCK_H_
#define SHMETRICS_SHM_MUTEX_LOCK_H_

#include "absl/base/thread_annotations.h"
#include "shm/robust_mutex.h"

namespace shmetrics::shm {

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(RobustMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  RobustMutex& mu_;
};

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_MUTEX_LOCK_H_
