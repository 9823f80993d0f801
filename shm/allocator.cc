// Segment's allocator: blocks carved from the bump pointer, reused through size-class free
// lists. Every step is ordered so that a process killed at any instruction leaves the blocks
// tiling the heap (a leaked block at worst); see shm/FORMAT.md.
#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "shm/segment.h"
#include "shm/segment_internal.h"

namespace shmetrics::shm {

uint64_t Segment::PopFree(uint64_t* head, uint32_t block_size) {
  // Walk a bounded prefix of the list for a block of exactly block_size. A link that does not
  // point at a free block of this heap means the list was damaged (a stale handle writing into a
  // freed block, or a hostile process): drop the rest of the list rather than follow it.
  uint64_t* link = head;
  for (int steps = 0; steps < 64 && *link != 0; ++steps) {
    const uint64_t off = *link;
    const char* p = Checked(off - kBlockHeaderSize, kBlockHeaderSize + 8);
    auto* bh = reinterpret_cast<const BlockHeader*>(p);
    if (p == nullptr ||
        bh->state.load(std::memory_order_relaxed) != static_cast<uint16_t>(BlockState::kFree) ||
        Checked(off, bh->size - kBlockHeaderSize) == nullptr) {
      *link = 0;
      return 0;
    }
    if (bh->size == block_size) {
      *link = *At<uint64_t>(off);
      header().blocks_reused.fetch_add(1, std::memory_order_relaxed);
      return off;
    }
    link = At<uint64_t>(off);
  }
  return 0;
}

absl::StatusOr<uint64_t> Segment::AllocateFromList(uint64_t* head, uint64_t size, BlockKind kind) {
  if (read_only_) return absl::FailedPreconditionError("the heap is open read-only");
  Header& h = header();
  if (size > h.max_size) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("allocation of ", size, " bytes is too large"));
  }
  const uint64_t block = RoundUp(size + kBlockHeaderSize, kBlockAlign);
  if (block > UINT32_MAX) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("allocation of ", size, " bytes is too large"));
  }
  uint64_t off = 0;
  if (head == nullptr) {
    head = block <= kMaxSmallBlock ? &h.free_small[block / kBlockAlign - 1] : &h.free_large;
  }
  off = PopFree(head, static_cast<uint32_t>(block));
  if (off != 0) {
    auto* bh = At<BlockHeader>(off - kBlockHeaderSize);
    std::memset(base_ + off, 0, block - kBlockHeaderSize);
    bh->kind.store(static_cast<uint16_t>(kind), std::memory_order_relaxed);
    bh->state.store(static_cast<uint16_t>(BlockState::kLive), std::memory_order_release);
    return off;
  }
  const uint64_t start = h.used.load(std::memory_order_relaxed);
  const uint64_t end = start + block;
  if (end > h.max_size) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat(location_.Describe(), " is full: ", start, " of ", h.max_size, " bytes used, ",
                     block, " more requested (create it with a larger max_size)"));
  }
  if (absl::Status s = Commit(end); !s.ok()) {
    h.alloc_failures.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  // The block header is written before `used` moves past it, so the blocks below `used` always
  // tile the heap, whatever instruction a process dies at.
  auto* bh = At<BlockHeader>(start);
  bh->size = static_cast<uint32_t>(block);
  bh->kind.store(static_cast<uint16_t>(kind), std::memory_order_relaxed);
  bh->state.store(static_cast<uint16_t>(BlockState::kLive), std::memory_order_relaxed);
  h.used.store(end, std::memory_order_release);
  return start + kBlockHeaderSize;
}

bool Segment::FitsWithoutFailing(uint64_t size) const {
  const Header& h = header();
  const uint64_t block = RoundUp(size + kBlockHeaderSize, kBlockAlign);
  return size <= h.max_size && block <= UINT32_MAX &&
         h.used.load(std::memory_order_relaxed) + block <= h.max_size;
}

absl::StatusOr<uint64_t> Segment::Allocate(uint64_t size, BlockKind kind) {
  return AllocateFromList(nullptr, size, kind);
}

void Segment::ReleaseBlock(uint64_t* head, uint64_t offset) {
  auto* bh = At<BlockHeader>(offset - kBlockHeaderSize);
  bh->state.store(static_cast<uint16_t>(BlockState::kFree), std::memory_order_relaxed);
  // Lock-free readers of the index may still read this word (LoadShared).
  std::atomic_ref<uint64_t>(*At<uint64_t>(offset)).store(*head, std::memory_order_relaxed);
  *head = offset;
  header().blocks_freed.fetch_add(1, std::memory_order_relaxed);
}

void Segment::Free(uint64_t offset) {
  Header& h = header();
  const uint32_t block = At<BlockHeader>(offset - kBlockHeaderSize)->size;
  ReleaseBlock(block <= kMaxSmallBlock ? &h.free_small[block / kBlockAlign - 1] : &h.free_large,
               offset);
}

void Segment::FreeToList(uint64_t* head, uint64_t offset) { ReleaseBlock(head, offset); }
}  // namespace shmetrics::shm
