// Segment's index tables: open-addressing hash tables from keys to offsets. Inserts and removals
// hold Header::lock; lookups and walks are lock-free and validate everything they read.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "shm/segment.h"
#include "util/bytes.h"

namespace shmetrics::shm {

absl::StatusOr<uint64_t> Segment::NewTable(uint64_t initial_capacity) {
  uint64_t cap = 16;
  while (cap < initial_capacity) cap *= 2;
  auto table = Allocate(sizeof(TableHeader), BlockKind::kTable);
  if (!table.ok()) return table.status();
  auto slots = Allocate(8 + cap * 8, BlockKind::kSlots);
  if (!slots.ok()) {
    Free(*table);
    return slots.status();
  }
  At<SlotArray>(*slots)->capacity = cap;
  At<TableHeader>(*table)->slots.store(*slots, std::memory_order_release);
  return *table;
}

namespace {

// Reads a word of the index without the lock. The block holding it may be freed meanwhile, and a
// freed block's first word becomes a free-list link (see ReleaseBlock), so the word is read
// atomically and whatever it holds is validated by the caller.
uint64_t LoadShared(const uint64_t& word) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(word)).load(std::memory_order_relaxed);
}

// The current slot array of a table and its capacity, validated, or nullptr. The capacity is read
// once: the array may be freed and its bytes reused right after, so callers must use *capacity,
// never re-read arr->capacity.
// `limit` is seg.CheckedLimit(), read once by the caller for all its checks.
const SlotArray* CheckedSlots(const Segment& seg, uint64_t limit, uint64_t table,
                              uint64_t* capacity) {
  const auto* th =
      reinterpret_cast<const TableHeader*>(seg.CheckedWithin(limit, table, sizeof(TableHeader)));
  if (th == nullptr) return nullptr;
  const uint64_t off = th->slots.load(std::memory_order_acquire);
  const auto* arr = reinterpret_cast<const SlotArray*>(seg.CheckedWithin(limit, off, 16));
  if (arr == nullptr) return nullptr;
  const uint64_t cap = LoadShared(arr->capacity);
  // A power of two up to 2^32 keeps 8 + cap * 8 from overflowing.
  if (cap == 0 || (cap & (cap - 1)) != 0 || cap > (uint64_t{1} << 32) ||
      8 + cap * 8 > limit - off) {
    return nullptr;
  }
  *capacity = cap;
  return arr;
}
const SlotArray* CheckedSlots(const Segment& seg, uint64_t table, uint64_t* capacity) {
  return CheckedSlots(seg, seg.CheckedLimit(), table, capacity);
}

// The entry at a slot value, validated, or nullptr (a block freed under a racing reader, or
// garbage).
const Entry* CheckedEntry(const Segment& seg, uint64_t limit, uint64_t off) {
  const char* p =
      seg.CheckedWithin(limit, off - kBlockHeaderSize, kBlockHeaderSize + sizeof(Entry));
  if (p == nullptr) return nullptr;
  const auto* bh = reinterpret_cast<const BlockHeader*>(p);
  if (bh->kind.load(std::memory_order_relaxed) != static_cast<uint16_t>(BlockKind::kEntry) ||
      bh->state.load(std::memory_order_acquire) != static_cast<uint16_t>(BlockState::kLive)) {
    return nullptr;
  }
  const auto* e = reinterpret_cast<const Entry*>(p + kBlockHeaderSize);
  // off - kBlockHeaderSize + kBlockHeaderSize + sizeof(Entry) <= limit was checked above.
  if (uint64_t{e->key_len} + sizeof(Entry) + kBlockHeaderSize > bh->size ||
      uint64_t{e->key_len} > limit - off - sizeof(Entry)) {
    return nullptr;
  }
  return e;
}

// Whether n bytes at a and b are equal; keys are short, so without a call into the C library.
bool SameBytes(const char* a, const char* b, size_t n) {
  if (n < 8) return std::memcmp(a, b, n) == 0;
  uint64_t diff = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    diff |= x ^ y;
  }
  if (i < n) {  // the last word again, overlapping the one before
    uint64_t x, y;
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    diff |= x ^ y;
  }
  return diff == 0;
}

}  // namespace

uint64_t Segment::Find(uint64_t table, std::string_view key, uint64_t hash) const {
  const uint64_t limit = CheckedLimit();
  uint64_t capacity = 0;
  const SlotArray* arr = CheckedSlots(*this, limit, table, &capacity);
  if (arr == nullptr) return 0;
  const uint64_t mask = capacity - 1;
  for (uint64_t i = 0; i <= mask; ++i) {
    const uint64_t s = arr->slot[(hash + i) & mask].load(std::memory_order_acquire);
    if (s == kSlotEmpty) return 0;
    if (s == kSlotTombstone || !SlotTagMatches(s, hash)) continue;
    const Entry* e = CheckedEntry(*this, limit, SlotOffset(s));
    if (e == nullptr || LoadShared(e->hash) != hash || e->key_len != key.size()) continue;
    if (SameBytes(reinterpret_cast<const char*>(e + 1), key.data(), key.size())) {
      return e->value;
    }
  }
  return 0;
}

uint64_t Segment::FindLocked(uint64_t table_off, std::string_view key, uint64_t hash) const {
  const auto* table = At<TableHeader>(table_off);
  const auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  const uint64_t mask = arr->capacity - 1;
  for (uint64_t i = 0; i <= mask; ++i) {
    const uint64_t s = arr->slot[(hash + i) & mask].load(std::memory_order_relaxed);
    if (s == kSlotEmpty) return 0;
    if (s == kSlotTombstone || !SlotTagMatches(s, hash)) continue;
    const auto* e = At<Entry>(SlotOffset(s));
    if (e->hash == hash && e->key_len == key.size() &&
        SameBytes(reinterpret_cast<const char*>(e + 1), key.data(), key.size())) {
      return e->value;
    }
  }
  return 0;
}

absl::Status Segment::Rebuild(TableHeader* table, uint64_t capacity) {
  const uint64_t old_off = table->slots.load(std::memory_order_relaxed);
  auto* old = At<SlotArray>(old_off);
  auto fresh_off = Allocate(8 + capacity * 8, BlockKind::kSlots);
  if (!fresh_off.ok()) return fresh_off.status();
  auto* fresh = At<SlotArray>(*fresh_off);
  fresh->capacity = capacity;
  const uint64_t mask = capacity - 1;
  const uint64_t old_capacity = old->capacity;
  // Entries lie anywhere in the heap; fetching each one's hash a few slots ahead keeps those
  // cache misses in flight instead of waiting on one per slot.
  constexpr uint64_t kAhead = 8;
  for (uint64_t i = 0; i < old_capacity; ++i) {
    if (i + kAhead < old_capacity) {
      const uint64_t ahead = old->slot[i + kAhead].load(std::memory_order_relaxed);
      if (ahead > kSlotTombstone) __builtin_prefetch(base_ + SlotOffset(ahead));
    }
    const uint64_t s = old->slot[i].load(std::memory_order_relaxed);
    if (s == kSlotEmpty || s == kSlotTombstone) continue;
    uint64_t j = At<Entry>(SlotOffset(s))->hash & mask;
    while (fresh->slot[j].load(std::memory_order_relaxed) != kSlotEmpty) j = (j + 1) & mask;
    fresh->slot[j].store(s, std::memory_order_relaxed);
  }
  table->slots.store(*fresh_off, std::memory_order_release);
  table->tombstones = 0;
  // As a seqlock writer: the count moves before any write that reuses the old array, so a walker
  // that read such a write sees the count moved (ForEachEntry).
  table->rebuilds.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  Free(old_off);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Segment::AllocateSpareEntry(size_t key_len) {
  return Allocate(sizeof(Entry) + key_len, BlockKind::kEntry);
}

absl::Status Segment::Insert(uint64_t table_off, std::string_view key, uint64_t hash,
                             uint64_t value, uint64_t* spare_entry) {
  auto* table = At<TableHeader>(table_off);
  uint64_t cap = At<SlotArray>(table->slots.load(std::memory_order_relaxed))->capacity;
  const uint64_t live = table->live.load(std::memory_order_relaxed);
  const uint64_t filled = live + table->tombstones + 1;
  if (filled * 2 > cap && filled * 4 <= cap * 3 && (live + 1) * 2 > cap &&
      FitsWithoutFailing(8 + cap * 2 * 8)) {
    // Past half full the table grows when the heap has room for it: a miss (every creation is
    // one) probes about 2.5 slots at half full against 8.5 at 3/4. When the heap has no room,
    // the table fills on to 3/4 as before, so a full heap accepts exactly the children it did.
    if (Rebuild(table, cap * 2).ok()) cap *= 2;
  } else if (filled * 4 > cap * 3) {
    const uint64_t want = (live + 1) * 2 > cap ? cap * 2 : cap;
    if (absl::Status s = Rebuild(table, want); s.ok()) {
      cap = want;
    } else if (spare_entry == nullptr || live + table->tombstones + 2 > cap) {
      // Without a reservation, or when no slot would stay empty for lookups to stop at.
      return s;
    }
  }
  if (key.size() > UINT32_MAX) return absl::InvalidArgumentError("key too long");
  absl::StatusOr<uint64_t> entry_off = Allocate(sizeof(Entry) + key.size(), BlockKind::kEntry);
  if (!entry_off.ok()) {
    if (spare_entry == nullptr || *spare_entry == 0 ||
        PayloadSize(*spare_entry) < sizeof(Entry) + key.size()) {
      return entry_off.status();
    }
    entry_off = std::exchange(*spare_entry, 0);  // a crash from here on leaks it, at worst
  }
  auto* e = At<Entry>(*entry_off);
  e->hash = hash;
  e->value = value;
  e->key_len = static_cast<uint32_t>(key.size());
  std::memcpy(reinterpret_cast<char*>(e + 1), key.data(), key.size());
  auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  const uint64_t mask = cap - 1;
  for (uint64_t i = 0;; ++i) {
    auto& slot = arr->slot[(hash + i) & mask];
    const uint64_t s = slot.load(std::memory_order_relaxed);
    if (s == kSlotEmpty || s == kSlotTombstone) {
      if (s == kSlotTombstone) --table->tombstones;
      table->live.fetch_add(1, std::memory_order_relaxed);
      slot.store(SlotValue(*entry_off, hash), std::memory_order_release);
      return absl::OkStatus();
    }
  }
}

namespace {
// As a seqlock writer: the count moves before the entry's block can be reused, so a walker that
// read such a reuse sees the count moved (ForEachEntry).
void CountErasure(TableHeader* table) {
  table->erasures.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}
}  // namespace

uint64_t Segment::Erase(uint64_t table_off, std::string_view key) {
  auto* table = At<TableHeader>(table_off);
  auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  const uint64_t hash = KeyHash(key.data(), key.size());
  const uint64_t mask = LoadShared(arr->capacity) - 1;
  for (uint64_t i = 0; i <= mask; ++i) {
    auto& slot = arr->slot[(hash + i) & mask];
    const uint64_t s = slot.load(std::memory_order_relaxed);
    if (s == kSlotEmpty) return 0;
    if (s == kSlotTombstone || !SlotTagMatches(s, hash)) continue;
    auto* e = At<Entry>(SlotOffset(s));
    if (e->hash != hash || e->key_len != key.size() ||
        std::memcmp(reinterpret_cast<const char*>(e + 1), key.data(), key.size()) != 0) {
      continue;
    }
    const uint64_t value = e->value;
    slot.store(kSlotTombstone, std::memory_order_release);
    ++table->tombstones;
    table->live.fetch_sub(1, std::memory_order_relaxed);
    CountErasure(table);
    Free(SlotOffset(s));
    return value;
  }
  return 0;
}

void Segment::EraseAll(uint64_t table_off, const std::function<void(uint64_t)>& on_erase) {
  auto* table = At<TableHeader>(table_off);
  auto* arr = At<SlotArray>(table->slots.load(std::memory_order_relaxed));
  for (uint64_t i = 0; i < arr->capacity; ++i) {
    const uint64_t s = arr->slot[i].load(std::memory_order_relaxed);
    if (s == kSlotEmpty || s == kSlotTombstone) continue;
    const uint64_t value = At<Entry>(SlotOffset(s))->value;
    arr->slot[i].store(kSlotTombstone, std::memory_order_release);
    ++table->tombstones;
    table->live.fetch_sub(1, std::memory_order_relaxed);
    CountErasure(table);
    Free(SlotOffset(s));
    on_erase(value);
  }
  // Shrink back; on failure the emptied array stays, which is valid.
  (void)Rebuild(table, 16);
}

void Segment::FreeTable(uint64_t table_off) {
  auto* table = At<TableHeader>(table_off);
  Free(table->slots.load(std::memory_order_relaxed));
  Free(table_off);
}

namespace {

constexpr uint64_t kGatherChunk = 64;  // slots read without a branch per slot

// Gathers the offsets of the entries of one slot array of `table` into *entries; *erased tells
// whether an entry was erased meanwhile.
// A writer that grows the table publishes a new slot array and frees the old one, whose bytes
// may be reused at once (its first word becomes a free-list link, so even its capacity
// changes). So the walk first gathers the entries of one array, reading its capacity once, and
// starts again when the table was rebuilt meanwhile (TableHeader::rebuilds); only then are they
// handed to f, so f never sees an entry twice. Rebuilds are rare, so retries are few.
absl::Status GatherEntries(const Segment& seg, uint64_t table, std::vector<uint64_t>* entries,
                           bool* erased) {
  const auto* th = reinterpret_cast<const TableHeader*>(seg.Checked(table, sizeof(TableHeader)));
  for (int attempt = 0;; ++attempt) {
    const uint64_t rebuilds = th == nullptr ? 0 : th->rebuilds.load(std::memory_order_acquire);
    const uint64_t erasures = th == nullptr ? 0 : th->erasures.load(std::memory_order_acquire);
    const uint64_t slots = th == nullptr ? 0 : th->slots.load(std::memory_order_acquire);
    uint64_t capacity = 0;
    const SlotArray* arr = CheckedSlots(seg, table, &capacity);
    if (arr == nullptr) {
      // Freed and reused between our reads of the table and of the array: try the new one.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (th != nullptr && th->rebuilds.load(std::memory_order_acquire) != rebuilds &&
          attempt < 64) {
        continue;
      }
      return absl::DataLossError(absl::StrCat(seg.location().Describe(), ": table at offset ",
                                              table, " is out of range or malformed"));
    }
    bool bad = false;
    uint64_t bad_slot = 0, bad_value = 0;
    // Distinct entries take at least 32 bytes each; more slots than that repeat offsets, which
    // only a corrupt (or racing) table does. The bound keeps the list proportional to the heap.
    const uint64_t readable = seg.ReadableSize();
    const uint64_t max_entries = readable / (kBlockHeaderSize + sizeof(Entry));
    // Room for the live count (as the table says; the bounds keep a corrupt one harmless), so
    // the list is seldom regrown as it fills.
    const uint64_t live = th == nullptr ? 0 : th->live.load(std::memory_order_relaxed);
    entries->resize(std::min({live + live / 8 + 16, capacity, max_entries}) + kGatherChunk);
    // Slots are read kGatherChunk at a time without a branch on what each holds (live, empty
    // or tombstone fall about evenly in a hash table, and mispredicting them cost more than the
    // rest of the walk): each offset is stored and counted when live. A chunk with an offset
    // outside what was readable when the walk began is read again slot by slot: the heap may
    // have grown since (Checked then decides), or the offset is corrupt.
    // Within what was readable when the walk began is within what Checked allows now.
    auto inside = [readable](uint64_t s) {
      return (s >= kHeaderSize) & (s <= readable - sizeof(Entry));
    };
    size_t count = 0;
    for (uint64_t i = 0; i < capacity && !bad; i += kGatherChunk) {
      const uint64_t end = std::min(capacity, i + kGatherChunk);
      if (entries->size() < count + kGatherChunk) entries->resize(2 * entries->size());
      uint64_t* const out = entries->data() + count;
      size_t got = 0;
      bool outside = false;
      for (uint64_t j = i; j < end; ++j) {
        const uint64_t s = SlotOffset(arr->slot[j].load(std::memory_order_acquire));
        const bool used = s > kSlotTombstone;
        outside |= used & !((s % 8 == 0) & inside(s));
        out[got] = s;
        got += used;
      }
      if (outside) {
        got = 0;
        for (uint64_t j = i; j < end; ++j) {
          const uint64_t s = SlotOffset(arr->slot[j].load(std::memory_order_acquire));
          if (s == kSlotEmpty || s == kSlotTombstone) continue;
          if (s % 8 != 0 || (!inside(s) && seg.Checked(s, sizeof(Entry)) == nullptr)) {
            bad = true;
            bad_slot = j;
            bad_value = s;
            break;
          }
          out[got++] = s;
        }
      }
      count += got;
      if (count > max_entries && !bad) {
        bad = true;
        bad_slot = end - 1;
        bad_value = out[got - 1];
      }
    }
    entries->resize(count);
    std::atomic_thread_fence(std::memory_order_acquire);
    const bool moved = th->rebuilds.load(std::memory_order_acquire) != rebuilds ||
                       reinterpret_cast<const char*>(arr) != seg.base() + slots;
    *erased = th->erasures.load(std::memory_order_acquire) != erasures;
    if (moved && attempt < 64) continue;
    if (bad) {
      return absl::DataLossError(absl::StrCat(seg.location().Describe(), ": index slot ", bad_slot,
                                              " holds offset ", bad_value, ", out of range"));
    }
    return absl::OkStatus();
  }
}

// What a walk allocates in proportion to the table (about 16 bytes per entry), kept by each thread
// from one walk to the next: a scrape walks the same tables again, and fresh buffers of that size
// cost a page fault every 4 KiB, each time. Buffers beyond kKeptEntries entries are given back
// after the walk, so a thread keeps at most about 4.3 MiB; a walk inside a walk's callback uses
// buffers of its own.
struct WalkBuffers {
  static constexpr size_t kKeptEntries = size_t{1} << 18;

  std::vector<uint64_t> entries;
  std::vector<uint64_t> sorted;  // OrderByAddress's output, swapped with entries
  std::vector<uint32_t> start;   // OrderByAddress's buckets
  std::unique_ptr<char[]> keys;  // the keys of one batch, copied with CopyShort
  size_t keys_cap = 0;
  bool in_use = false;

  // Room for len more bytes of keys after the first `used`, which it keeps.
  char* KeyRoom(size_t used, size_t len) {
    if (used + len > keys_cap) {
      const size_t cap = std::max(used + len, 2 * keys_cap + 256);
      auto grown = std::make_unique<char[]>(cap);
      if (used != 0) std::memcpy(grown.get(), keys.get(), used);
      keys = std::move(grown);
      keys_cap = cap;
    }
    return keys.get() + used;
  }

  void Trim() {
    if (entries.capacity() > kKeptEntries) std::vector<uint64_t>().swap(entries);
    if (sorted.capacity() > kKeptEntries) std::vector<uint64_t>().swap(sorted);
    entries.clear();
    sorted.clear();
  }
};

// Lends the thread's WalkBuffers for one walk, or buffers of its own when they are lent already.
class LentBuffers {
 public:
  LentBuffers() : b_(thread_buffers_.in_use ? own_ : thread_buffers_) { b_.in_use = true; }
  ~LentBuffers() {
    b_.Trim();
    b_.in_use = false;
  }
  LentBuffers(const LentBuffers&) = delete;
  LentBuffers& operator=(const LentBuffers&) = delete;
  WalkBuffers& get() { return b_; }

 private:
  static thread_local WalkBuffers thread_buffers_;
  WalkBuffers own_;
  WalkBuffers& b_;
};
thread_local WalkBuffers LentBuffers::thread_buffers_;

// Orders b->entries by the 4 KiB page of the heap they lie in (slot order within a page): entries
// and their records were allocated side by side, mostly in creation order, so the walk then reads
// the heap nearly sequentially instead of at random in hash order. One counting pass, with
// pages merged into coarser buckets so that there are at most 64Ki of them.
void OrderByAddress(WalkBuffers* b) {
  std::vector<uint64_t>& entries = b->entries;
  const size_t n = entries.size();
  if (n < 2) return;
  const auto [lo, hi] = std::minmax_element(entries.begin(), entries.end());
  const uint64_t base = *lo;
  int shift = 12;
  while (((*hi - base) >> shift) >= (uint64_t{1} << 16)) ++shift;
  const size_t buckets = static_cast<size_t>((*hi - base) >> shift) + 1;
  std::vector<uint32_t>& start = b->start;
  start.assign(buckets + 1, 0);
  for (const uint64_t off : entries) ++start[((off - base) >> shift) + 1];
  for (size_t k = 0; k < buckets; ++k) start[k + 1] += start[k];
  std::vector<uint64_t>& sorted = b->sorted;
  sorted.resize(n);
  for (const uint64_t off : entries) sorted[start[(off - base) >> shift]++] = off;
  entries.swap(sorted);
}

// Keeps the first appearance of each offset in *entries, in order.
void DropRepeats(std::vector<uint64_t>* entries) {
  std::vector<uint64_t> sorted = *entries;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<bool> taken(sorted.size());
    size_t kept = 0;
    for (const uint64_t s : *entries) {
      const size_t i = std::lower_bound(sorted.begin(), sorted.end(), s) - sorted.begin();
      if (!taken[i]) {
        taken[i] = true;
        (*entries)[kept++] = s;
      }
    }
    entries->resize(kept);
  }
}

}  // namespace

absl::Status Segment::ForEachEntryBatch(
    uint64_t table, const std::function<bool(std::span<const TableEntry>)>& f) const {
  LentBuffers lent;
  WalkBuffers& buffers = lent.get();
  std::vector<uint64_t>& entries = buffers.entries;
  bool erased = false;
  if (absl::Status s = GatherEntries(*this, table, &entries, &erased); !s.ok()) return s;
  // An entry removed while we gathered may have had its block reused by an entry inserted into
  // another slot, so the same offset can appear twice: keep its first appearance only. Without
  // an erasure meanwhile no block was freed, so the (costly) check is skipped.
  if (erased) DropRepeats(&entries);
  OrderByAddress(&buffers);
  // In address order the walk reads the heap as a stream with gaps: the two cache lines after
  // the entry kAhead places ahead are prefetched (an entry and the record allocated beside it
  // take about two), and, once that entry has arrived, its record kAhead / 2 places ahead, for
  // families whose creations interleaved with others'. Prefetches never fault; records beyond
  // the committed heap are skipped, and everything used below is still checked.
  constexpr size_t kAhead = 64;
  // Checked entries go to f kBatch at a time: one call per batch rather than per entry.
  constexpr size_t kBatch = 16;
  const uint64_t limit = ReadableSize();
  const uint64_t checked_limit = CheckedLimit();  // only grows: read once for the whole walk
  const size_t n = entries.size();
  TableEntry batch[kBatch];
  size_t at[kBatch];
  size_t size = 0;
  // The keys, copied as they are checked: f sees them up to a batch later, by when an entry may
  // have been erased and its block reused; the copy is what f would have read at once.
  size_t keys_used = 0;
  auto flush = [&] {
    for (size_t k = 0; k < size; ++k) {
      const size_t end = k + 1 < size ? at[k + 1] : keys_used;
      batch[k].key = std::string_view(buffers.keys.get() + at[k], end - at[k]);
    }
    const bool more = size == 0 || f(std::span<const TableEntry>(batch, size));
    size = 0;
    keys_used = 0;
    return more;
  };
  for (size_t i = 0; i < n; ++i) {
    // Gathered offsets are 8-aligned and inside the heap.
    if (i + kAhead < n) {
      const char* b = base_ + entries[i + kAhead] - kBlockHeaderSize;
      __builtin_prefetch(b);
      __builtin_prefetch(b + 64);
      __builtin_prefetch(b + 127);
    }
    if (i + kAhead / 2 < n) {
      const uint64_t v =
          LoadShared(reinterpret_cast<const Entry*>(base_ + entries[i + kAhead / 2])->value);
      if (v < limit) __builtin_prefetch(base_ + v);
    }
    const Entry* e = CheckedEntry(*this, checked_limit, entries[i]);
    if (e == nullptr) continue;  // removed while we looked
    const uint32_t len = e->key_len;
    const size_t start = keys_used;
    char* const key = buffers.KeyRoom(start, len);
    util::CopyShort(key, reinterpret_cast<const char*>(e + 1), len);
    if (erased) {
      // A block freed by an erasure may be an entry again, its key still being written: read
      // half old, half new, it could spell another live key. The inserter writes the hash
      // before the key, so a copy whose hash is not the stored one is such a torn read: skip it.
      const uint64_t hash = LoadShared(e->hash);
      if (KeyHash(key, len) != hash) continue;
    }
    keys_used = start + len;
    at[size] = start;
    batch[size++].value = e->value;
    if (size == kBatch && !flush()) return absl::OkStatus();
  }
  flush();
  return absl::OkStatus();
}

uint64_t Segment::TableSize(uint64_t table) const {
  const auto* th = reinterpret_cast<const TableHeader*>(Checked(table, sizeof(TableHeader)));
  return th == nullptr ? 0 : th->live.load(std::memory_order_relaxed);
}

}  // namespace shmetrics::shm
