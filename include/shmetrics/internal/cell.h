// The 64-bit cell: the unit every meter value is made of.
//
// A Cell lives in the shared heap and is updated by many threads of many processes at once.
// Where 64-bit atomics are lock-free (every 64-bit platform) a Cell is one std::atomic<uint64_t>,
// and every update is one atomic read-modify-write. Elsewhere — or when the build forces it with
// SHMETRICS_FORCE_MUTEX_CELLS, so the fallback is tested on 64-bit machines too — a Cell carries
// a robust process-shared pthread mutex guarding two 32-bit halves, plus a sequence word that
// lets readers without write access (a read-only collector) take a consistent copy.
//
// The bits of a Cell are either an unsigned integer, a two's complement signed integer, or an
// IEEE-754 double; the meter that owns the cell decides which, and always uses the same one.
//
// Thread safety: every method is safe from any thread of any process that maps the heap, without
// external synchronization. Process safety: a process killed at any instruction leaves the cell
// holding either the old or the new value; with mutex cells the next writer recovers the mutex.
//
// Memory ordering: updates are relaxed. A cell publishes nothing but its own value; the heap
// publishes new cells through release stores of their offsets (see shm/table.h), and a scrape
// reads each cell independently.
//
// This header is visible because meter handles inline their hot paths; it is not API.
#ifndef SHMETRICS_INTERNAL_CELL_H_
#define SHMETRICS_INTERNAL_CELL_H_

#include <pthread.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <type_traits>

#if defined(SHMETRICS_FORCE_MUTEX_CELLS) || !defined(__GCC_ATOMIC_LLONG_LOCK_FREE) || \
    __GCC_ATOMIC_LLONG_LOCK_FREE != 2
#define SHMETRICS_MUTEX_CELLS 1
#else
#define SHMETRICS_MUTEX_CELLS 0
#endif

namespace shmetrics::internal {

// True when cells use the mutex fallback. Recorded in the heap header, so a heap made by one kind
// of build is never opened by the other.
inline constexpr bool kMutexCells = SHMETRICS_MUTEX_CELLS;

#if !SHMETRICS_MUTEX_CELLS

class Cell {
 public:
  // Called once, when the record holding the cell is created and before it is published.
  void Init(uint64_t bits = 0) noexcept { v_.store(bits, std::memory_order_relaxed); }

  uint64_t Load() const noexcept { return v_.load(std::memory_order_relaxed); }
  void Store(uint64_t bits) noexcept { v_.store(bits, std::memory_order_relaxed); }
  // Returns the previous value. Signed adds work through two's complement.
  uint64_t Add(uint64_t delta) noexcept { return v_.fetch_add(delta, std::memory_order_relaxed); }

  double LoadDouble() const noexcept { return std::bit_cast<double>(Load()); }
  void StoreDouble(double d) noexcept { Store(std::bit_cast<uint64_t>(d)); }
  void AddDouble(double d) noexcept {
    uint64_t old = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(old, std::bit_cast<uint64_t>(std::bit_cast<double>(old) + d),
                                     std::memory_order_relaxed)) {
    }
  }
  // Stores d if it is greater (or smaller) than the current double. NaN never replaces a number.
  void MaxDouble(double d) noexcept {
    Replace(d, [](double cur, double x) { return x > cur; });
  }
  void MinDouble(double d) noexcept {
    Replace(d, [](double cur, double x) { return x < cur; });
  }
  void MaxU64(uint64_t x) noexcept {
    uint64_t old = v_.load(std::memory_order_relaxed);
    while (x > old && !v_.compare_exchange_weak(old, x, std::memory_order_relaxed)) {
    }
  }
  // Atomically replaces the value and returns the previous one.
  uint64_t Exchange(uint64_t bits) noexcept { return v_.exchange(bits, std::memory_order_relaxed); }
  // Atomically replaces the value v by f(v) and returns the previous one. f must be a pure
  // function of v: it may run more than once.
  template <typename F>
  uint64_t Transform(F f) noexcept {
    uint64_t old = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
    }
    return old;
  }
  void Or(uint64_t bits) noexcept { v_.fetch_or(bits, std::memory_order_relaxed); }
  void And(uint64_t bits) noexcept { v_.fetch_and(bits, std::memory_order_relaxed); }

 private:
  template <typename Pred>
  void Replace(double d, Pred better) noexcept {
    uint64_t old = v_.load(std::memory_order_relaxed);
    while (better(std::bit_cast<double>(old), d) &&
           !v_.compare_exchange_weak(old, std::bit_cast<uint64_t>(d), std::memory_order_relaxed)) {
    }
  }

  std::atomic<uint64_t> v_;
};

static_assert(sizeof(Cell) == 8);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

#else  // SHMETRICS_MUTEX_CELLS

class Cell {
 public:
  void Init(uint64_t bits = 0) noexcept;

  uint64_t Load() const noexcept;
  void Store(uint64_t bits) noexcept {
    Update([bits](uint64_t) { return bits; });
  }
  uint64_t Add(uint64_t delta) noexcept {
    return Update([delta](uint64_t v) { return v + delta; });
  }

  double LoadDouble() const noexcept { return std::bit_cast<double>(Load()); }
  void StoreDouble(double d) noexcept { Store(std::bit_cast<uint64_t>(d)); }
  void AddDouble(double d) noexcept {
    Update([d](uint64_t v) { return std::bit_cast<uint64_t>(std::bit_cast<double>(v) + d); });
  }
  void MaxDouble(double d) noexcept {
    Update(
        [d](uint64_t v) { return d > std::bit_cast<double>(v) ? std::bit_cast<uint64_t>(d) : v; });
  }
  void MinDouble(double d) noexcept {
    Update(
        [d](uint64_t v) { return d < std::bit_cast<double>(v) ? std::bit_cast<uint64_t>(d) : v; });
  }
  void MaxU64(uint64_t x) noexcept {
    Update([x](uint64_t v) { return x > v ? x : v; });
  }
  uint64_t Exchange(uint64_t bits) noexcept {
    return Update([bits](uint64_t) { return bits; });
  }
  void Or(uint64_t bits) noexcept {
    Update([bits](uint64_t v) { return v | bits; });
  }
  void And(uint64_t bits) noexcept {
    Update([bits](uint64_t v) { return v & bits; });
  }
  template <typename F>
  uint64_t Transform(F f) noexcept {
    return Update(f);
  }

 private:
  friend class CellTestingPeer;  // tests kill a process that holds mu_
  // Runs f on the value under the mutex; returns the previous value.
  template <typename F>
  uint64_t Update(F f) noexcept {
    Lock();
    const uint64_t old = Read();
    Write(f(old));
    pthread_mutex_unlock(&mu_);
    return old;
  }
  void Lock() noexcept;
  uint64_t Read() const noexcept {
    return uint64_t{lo_.load(std::memory_order_relaxed)} |
           uint64_t{hi_.load(std::memory_order_relaxed)} << 32;
  }
  // Seqlock write: an odd sequence tells lock-free readers a write is in progress.
  void Write(uint64_t v) noexcept {
    seq_.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    lo_.store(static_cast<uint32_t>(v), std::memory_order_relaxed);
    hi_.store(static_cast<uint32_t>(v >> 32), std::memory_order_relaxed);
    seq_.fetch_add(1, std::memory_order_release);
  }

  pthread_mutex_t mu_;  // robust, process-shared
  std::atomic<uint32_t> seq_;
  std::atomic<uint32_t> lo_;
  std::atomic<uint32_t> hi_;
  uint32_t pad_;
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);

#endif  // SHMETRICS_MUTEX_CELLS

static_assert(std::is_standard_layout_v<Cell>);

}  // namespace shmetrics::internal

#endif  // SHMETRICS_INTERNAL_CELL_H_
