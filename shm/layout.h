// The byte layout of a shmetrics heap: every struct that lives in the shared mapping.
//
// shm/FORMAT.md describes the same layout for readers written in other languages; keep the two
// in step, and bump kLayoutVersion whenever a byte moves.
//
// Rules every struct here follows:
//  - it lives in the heap, so it is standard layout, has a fixed size on every 64-bit platform,
//    and refers to other heap objects by offset from the start of the heap, never by pointer;
//  - integers are little-endian (the heap is shared between processes of one machine only);
//  - fields written by one process and read by others are std::atomic, whose object
//    representation is the plain integer on every platform we build for.
#ifndef SHMETRICS_SHM_LAYOUT_H_
#define SHMETRICS_SHM_LAYOUT_H_

#include <endian.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "shm/robust_mutex.h"
#include "shmetrics/internal/cell.h"

namespace shmetrics::shm {

// "shmetric" as little-endian bytes.
inline constexpr uint64_t kMagic = 0x63697274656d6873ULL;
// Bump whenever the layout changes.
inline constexpr uint32_t kLayoutVersion = 4;

inline constexpr uint32_t kHeaderSize = 4096;
inline constexpr uint32_t kBlockAlign = 16;
inline constexpr uint32_t kSmallClasses = 256;  // size classes of 16 bytes, up to 4096 bytes
inline constexpr uint32_t kMaxSmallBlock = kSmallClasses * kBlockAlign;

// Header flags.
inline constexpr uint32_t kFlagMutexCells = 1u << 0;

// The first kHeaderSize bytes of every heap.
struct Header {
  // Constant after creation. magic is written last, so a half-created heap never looks valid.
  std::atomic<uint64_t> magic;           // 0: kMagic
  uint32_t layout_version;               // 8: kLayoutVersion
  uint32_t header_size;                  // 12: kHeaderSize
  uint64_t max_size;                     // 16: the heap never grows past this
  uint32_t flags;                        // 24: kFlag*
  uint32_t cell_size;                    // 28: sizeof(internal::Cell)
  std::atomic<uint64_t> committed;       // 32: bytes of the file that are backed; readers stop here
  std::atomic<uint64_t> used;            // 40: end of the last allocated block (bump pointer)
  uint64_t created_unix_ns;              // 48
  uint32_t creator_pid;                  // 56
  uint32_t max_workers;                  // 60: capacity of the worker table
  uint64_t creator_start_ticks;          // 64: /proc/<pid>/stat field 22 of the creator
  std::atomic<uint64_t> root_table;      // 72: offset of the root Table (the registry's families)
  std::atomic<uint64_t> worker_table;    // 80: offset of the WorkerTable
  std::atomic<uint64_t> alloc_failures;  // 88: allocations refused because the heap was full
  std::atomic<uint64_t> blocks_freed;    // 96: blocks returned to a free list, ever
  std::atomic<uint64_t> blocks_reused;   // 104: allocations served from a free list, ever
  uint8_t reserved0[256 - 112];
  RobustMutex lock;  // 256: allocation, tables, registration
  uint8_t pad_lock[64 - sizeof(RobustMutex)];
  RobustMutex worker_lock;  // 320: the worker table
  uint8_t pad_worker_lock[64 - sizeof(RobustMutex)];
  RobustMutex exemplar_lock;  // 384: exemplar writes
  uint8_t pad_exemplar_lock[64 - sizeof(RobustMutex)];
  uint8_t reserved1[512 - 448];
  // Free lists, guarded by `lock`: heads of singly linked lists of free blocks (offsets of
  // payloads; the first 8 bytes of a free payload hold the next offset, 0 ends the list).
  uint64_t free_small[kSmallClasses];  // 512: class i holds blocks of (i + 1) * 16 bytes
  uint64_t free_large;                 // 2560: larger blocks, any size
  uint8_t reserved2[kHeaderSize - 2568];
};

static_assert(std::is_standard_layout_v<Header>);
static_assert(sizeof(Header) == kHeaderSize);
static_assert(offsetof(Header, committed) == 32);
static_assert(offsetof(Header, root_table) == 72);
static_assert(offsetof(Header, lock) == 256);
static_assert(offsetof(Header, free_small) == 512);
static_assert(offsetof(Header, free_large) == 2560);

// Every allocation is a block: an 8-byte BlockHeader followed by the payload. Blocks start at
// multiples of kBlockAlign, and block sizes are multiples of kBlockAlign, so the blocks between
// kHeaderSize and Header::used tile the heap and can be walked. Offsets handed out by the
// allocator point at the payload (block start + 8).
enum class BlockKind : uint16_t {
  kTable = 1,        // TableHeader
  kSlots = 2,        // SlotArray
  kEntry = 3,        // Entry (index key)
  kRecord = 4,       // a record owned by the layer above (meters)
  kWorkerTable = 5,  // WorkerTable
  kBlob = 6,         // bytes owned by the layer above
};
enum class BlockState : uint16_t { kLive = 1, kFree = 2 };

struct BlockHeader {
  uint32_t size;  // whole block, header included
  std::atomic<uint16_t> kind;
  std::atomic<uint16_t> state;
};
static_assert(sizeof(BlockHeader) == 8);
inline constexpr uint32_t kBlockHeaderSize = sizeof(BlockHeader);

// The series index: an open-addressing hash table from key bytes to an offset.
// Lookups are lock-free; inserts and removals hold Header::lock.
//
// Memory ordering: a writer fully builds an Entry (and the record its value points to), then
// publishes it with a release store into a slot; readers load slots with acquire. A table that
// grows is rebuilt into a new SlotArray published with a release store of TableHeader::slots;
// the old array is freed, so a reader that raced with the rebuild validates everything it reads
// and, on a miss, the writer path retries under the lock.
struct TableHeader {
  std::atomic<uint64_t> slots;  // offset of the current SlotArray
  std::atomic<uint64_t> live;   // entries; written under Header::lock, read without it
  uint64_t tombstones;          // removed entries still occupying slots, guarded by Header::lock
  // Rebuilds so far, bumped under Header::lock before the old SlotArray is freed. A lock-free
  // walker that sees it change knows the array it read may have been freed and reused, even when
  // a later rebuild got the same block back (slots alone cannot tell). Was `reserved`, always 0.
  std::atomic<uint64_t> rebuilds;
  // Entries erased so far, bumped under Header::lock before the entry's block is freed. A walker
  // that sees it unchanged knows no entry block was reused meanwhile, so no offset it gathered
  // can stand in two slots.
  std::atomic<uint64_t> erasures;
};
static_assert(std::is_standard_layout_v<TableHeader>);

inline constexpr uint64_t kSlotEmpty = 0;
inline constexpr uint64_t kSlotTombstone = 1;

// Any other slot holds an Entry's offset in its low 48 bits (heaps are at most 1 TiB) and the top
// 16 bits of the entry's key hash in its top 16 (FORMAT.md, "Index"): a probe passes entries of
// other keys without reading them, which in a large index would be a cache miss each.
inline constexpr int kSlotTagShift = 48;
inline constexpr uint64_t kSlotOffsetMask = (uint64_t{1} << kSlotTagShift) - 1;
inline uint64_t SlotValue(uint64_t entry_offset, uint64_t hash) {
  return entry_offset | (hash & ~kSlotOffsetMask);
}
inline uint64_t SlotOffset(uint64_t slot) { return slot & kSlotOffsetMask; }
inline bool SlotTagMatches(uint64_t slot, uint64_t hash) {
  return ((slot ^ hash) & ~kSlotOffsetMask) == 0;
}

struct SlotArray {
  uint64_t capacity;              // a power of two
  std::atomic<uint64_t> slot[1];  // capacity entries: kSlotEmpty, kSlotTombstone or SlotValue
};
static_assert(std::is_standard_layout_v<SlotArray>);

struct Entry {
  uint64_t hash;   // KeyHash(key)
  uint64_t value;  // offset of the value record; never 0 for a published entry
  uint32_t key_len;
  uint32_t reserved;
  // key_len key bytes follow.
};
static_assert(sizeof(Entry) == 24);

// The worker slot table: stable small ids for the processes of a pre-fork server.
// Guarded by Header::worker_lock for claims; readers load the atomics without the lock.
struct WorkerSlot {
  std::atomic<uint64_t> pid;          // 0 when the slot has never been claimed or was released
  std::atomic<uint64_t> start_ticks;  // start time of pid, to tell it from a reused pid
  std::atomic<uint64_t> epoch;        // incremented at every claim; 0 = never claimed
  std::atomic<uint64_t> claimed_unix_ns;
  uint64_t reserved[4];
};
static_assert(sizeof(WorkerSlot) == 64);

struct WorkerTable {
  uint64_t capacity;
  uint64_t reserved;
  WorkerSlot slot[1];  // capacity entries
};

// The index key hash (FORMAT.md, "Index"): a word at a time, 64x64->128-bit multiplies folded
// to 64 bits, so a key of 30 bytes costs four multiplies where a byte-wise hash costs thirty,
// and still a few lines in any language that reads the heap.
inline constexpr uint64_t kKeyHashSeed = 0x243f6a8885a308d3ULL;
inline constexpr uint64_t kKeyHashMultiplier = 0x9e3779b97f4a7c15ULL;

inline uint64_t KeyHashFold(uint64_t a, uint64_t b) {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

inline uint64_t KeyHash(const char* data, size_t len) {
  uint64_t h = kKeyHashSeed ^ len;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    h = KeyHashFold(h ^ le64toh(w), kKeyHashMultiplier);
  }
  if (const size_t r = len - i; r != 0) {
    // The last r bytes as a word zero-padded above them, read without a byte loop or a call:
    // from the word ending at the key's end when there is one, else from overlapping halves.
    uint64_t w;
    if (len >= 8) {
      std::memcpy(&w, data + len - 8, 8);
      w = le64toh(w) >> (8 * (8 - r));
    } else if (r >= 4) {
      uint32_t lo, hi;
      std::memcpy(&lo, data, 4);
      std::memcpy(&hi, data + r - 4, 4);
      w = uint64_t{le32toh(lo)} | (uint64_t{le32toh(hi)} << (8 * (r - 4)));
    } else {
      const auto byte = [data](size_t k) { return uint64_t{static_cast<unsigned char>(data[k])}; };
      w = byte(0) | (byte(r / 2) << (8 * (r / 2))) | (byte(r - 1) << (8 * (r - 1)));
    }
    h = KeyHashFold(h ^ w, kKeyHashMultiplier);
  }
  return KeyHashFold(h, kKeyHashSeed);
}

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_LAYOUT_H_
