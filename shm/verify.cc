// Segment's verification: walks a quiescent heap's blocks, free lists, root table and worker
// table, and counts what it finds.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "shm/segment.h"

namespace shmetrics::shm {

absl::StatusOr<Segment::Usage> Segment::ComputeUsage() const {
  const Header& h = header();
  const uint64_t used = h.used.load(std::memory_order_acquire);
  const uint64_t limit = ReadableSize();
  if (used > limit) {
    return absl::DataLossError(absl::StrFormat("%s: used %d bytes exceeds the readable %d",
                                               location_.Describe(), used, limit));
  }
  Usage u{used, h.committed.load(std::memory_order_acquire), h.max_size, 0, 0, 0};
  for (uint64_t off = kHeaderSize; off < used;) {
    const auto* bh = reinterpret_cast<const BlockHeader*>(base_ + off);
    const uint32_t size = bh->size;
    const uint16_t kind = bh->kind.load(std::memory_order_relaxed);
    const uint16_t state = bh->state.load(std::memory_order_relaxed);
    if (size < kBlockAlign || size % kBlockAlign != 0 || size > used - off) {
      return absl::DataLossError(
          absl::StrFormat("%s: block at offset %d has size %d", location_.Describe(), off, size));
    }
    if (kind < static_cast<uint16_t>(BlockKind::kTable) ||
        kind > static_cast<uint16_t>(BlockKind::kBlob)) {
      return absl::DataLossError(absl::StrFormat("%s: block at offset %d has unknown kind %d",
                                                 location_.Describe(), off, kind));
    }
    if (state == static_cast<uint16_t>(BlockState::kLive)) {
      ++u.live_blocks;
    } else if (state == static_cast<uint16_t>(BlockState::kFree)) {
      ++u.free_blocks;
      u.free_bytes += size;
    } else {
      return absl::DataLossError(absl::StrFormat("%s: block at offset %d has unknown state %d",
                                                 location_.Describe(), off, state));
    }
    off += size;
  }
  return u;
}

absl::Status Segment::Verify() const {
  const Header& h = header();
  if (h.magic.load(std::memory_order_acquire) != kMagic) {
    return absl::DataLossError(absl::StrCat(location_.Describe(), ": bad magic"));
  }
  if (absl::Status s = Validate(ReadableSize()); !s.ok()) return s;
  auto usage = ComputeUsage();
  if (!usage.ok()) return usage.status();
  // Free lists: every link a free block of the right size, no cycles (bounded walk).
  const uint64_t max_links = usage->free_blocks + 1;
  for (uint32_t c = 0; c <= kSmallClasses; ++c) {
    uint64_t off = c < kSmallClasses ? h.free_small[c] : h.free_large;
    for (uint64_t n = 0; off != 0; ++n) {
      const char* p = Checked(off - kBlockHeaderSize, kBlockHeaderSize + 8);
      const auto* bh = reinterpret_cast<const BlockHeader*>(p);
      if (p == nullptr || n > max_links ||
          bh->state.load(std::memory_order_relaxed) != static_cast<uint16_t>(BlockState::kFree) ||
          (c < kSmallClasses && bh->size != (c + 1) * kBlockAlign)) {
        return absl::DataLossError(absl::StrFormat("%s: free list %d is damaged at offset %d",
                                                   location_.Describe(), c, off));
      }
      off = *reinterpret_cast<const uint64_t*>(p + kBlockHeaderSize);
    }
  }
  // The root table: every entry live and pointing inside the heap.
  absl::Status walk = ForEachEntry(h.root_table.load(std::memory_order_acquire),
                                   [](std::string_view, uint64_t) { return true; });
  if (!walk.ok()) return walk;
  if (Workers_() == nullptr) {
    return absl::DataLossError(absl::StrCat(location_.Describe(), ": worker table is corrupt"));
  }
  return absl::OkStatus();
}

}  // namespace shmetrics::shm
