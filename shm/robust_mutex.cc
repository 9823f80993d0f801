#include "shm/robust_mutex.h"

#include <cerrno>

#include "absl/base/internal/raw_logging.h"
#include "shmetrics/internal/cell.h"

namespace shmetrics::shm {

void InitRobustPthreadMutex(pthread_mutex_t* mu) noexcept {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(mu, &attr);
  ABSL_RAW_CHECK(rc == 0, "pthread_mutex_init failed for a process-shared robust mutex");
  pthread_mutexattr_destroy(&attr);
}

void RobustMutex::Init() noexcept {
  InitRobustPthreadMutex(&mu_);
  recoveries_.store(0, std::memory_order_relaxed);
}

void RobustMutex::lock() noexcept {
  const int rc = pthread_mutex_lock(&mu_);
  if (rc == EOWNERDEAD) {
    Recovered();
    return;
  }
  ABSL_RAW_CHECK(rc == 0, "pthread_mutex_lock failed on a heap mutex");
}

bool RobustMutex::try_lock() noexcept {
  const int rc = pthread_mutex_trylock(&mu_);
  if (rc == EOWNERDEAD) {
    Recovered();
    return true;
  }
  return rc == 0;
}

void RobustMutex::unlock() noexcept { pthread_mutex_unlock(&mu_); }

void RobustMutex::Recovered() noexcept {
  // Every update under this mutex is crash-consistent, so the state the dead owner left is valid.
  pthread_mutex_consistent(&mu_);
  recoveries_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace shmetrics::shm

#if SHMETRICS_MUTEX_CELLS
namespace shmetrics::internal {

void Cell::Init(uint64_t bits) noexcept {
  shm::InitRobustPthreadMutex(&mu_);
  seq_.store(0, std::memory_order_relaxed);
  lo_.store(static_cast<uint32_t>(bits), std::memory_order_relaxed);
  hi_.store(static_cast<uint32_t>(bits >> 32), std::memory_order_relaxed);
  pad_ = 0;
}

void Cell::Lock() noexcept {
  const int rc = pthread_mutex_lock(&mu_);
  if (rc == EOWNERDEAD) {
    // The owner died inside Update(). If it died mid-Write the sequence is odd: make it even so
    // readers stop waiting. The value is whatever the dead writer left, old or new.
    if (seq_.load(std::memory_order_relaxed) & 1) seq_.fetch_add(1, std::memory_order_release);
    pthread_mutex_consistent(&mu_);
  }
}

uint64_t Cell::Load() const noexcept {
  // Seqlock read. A writer that died mid-write leaves the sequence odd until the next writer
  // repairs it, so the wait is bounded and then the value is taken as it is.
  for (int attempt = 0;; ++attempt) {
    const uint32_t s1 = seq_.load(std::memory_order_acquire);
    const uint64_t v = Read();
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint32_t s2 = seq_.load(std::memory_order_relaxed);
    if ((s1 == s2 && (s1 & 1) == 0) || attempt >= 10000) return v;
  }
}

}  // namespace shmetrics::internal
#endif
