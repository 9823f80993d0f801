// AnnotatedMutex and Locked: std::mutex and its scoped guard, with clang's thread-safety
// annotations, so that -Wthread-safety checks ABSL_GUARDED_BY members locked through them.
//
// Not absl::Mutex: Debian's libabsl is not built for ThreadSanitizer, which then cannot see its
// locking and takes every guarded access for a race. libstdc++'s std::lock_guard carries no
// annotations, so the analysis would see nothing held through it.
//
// Thread safety: as std::mutex; a Locked belongs to the thread that made it.
#ifndef SHMETRICS_SRC_UTIL_ANNOTATED_MUTEX_H_
#define SHMETRICS_SRC_UTIL_ANNOTATED_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace shmetrics::util {

class ABSL_LOCKABLE AnnotatedMutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE Locked {
 public:
  explicit Locked(AnnotatedMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
  ~Locked() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  AnnotatedMutex& mu_;
};

}  // namespace shmetrics::util

#endif  // SHMETRICS_SRC_UTIL_ANNOTATED_MUTEX_H_
