#include "shm/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/mutex_lock.h"
#include "util/subprocess.h"

namespace shmetrics::shm {

// Reaches into a segment the way a process that died half-way would have left it.
class SegmentTestingPeer {
 public:
  static uint64_t& FreeSmall(Segment& seg, uint32_t cls) { return seg.header().free_small[cls]; }
};

namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;

class SegmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueHeapName("seg");
    loc_ = *Location::ForName(name_);
  }
  void TearDown() override { (void)Segment::Remove(loc_); }

  std::unique_ptr<Segment> CreateHeap(CreateOptions opts = {}) {
    auto seg = Segment::Create(loc_, opts);
    EXPECT_TRUE(seg.ok()) << seg.status();
    return seg.ok() ? std::move(*seg) : nullptr;
  }
  std::unique_ptr<Segment> OpenHeap(OpenOptions opts = {}) {
    auto seg = Segment::Open(loc_, opts);
    EXPECT_TRUE(seg.ok()) << seg.status();
    return seg.ok() ? std::move(*seg) : nullptr;
  }

  // Finds key in the root table, creating it with a fresh 8-byte record if absent.
  static uint64_t FindOrCreate(Segment& seg, std::string_view key) {
    const uint64_t table = seg.header().root_table.load();
    if (uint64_t v = seg.Find(table, key); v != 0) return v;
    MutexLock lock(seg.lock());
    if (uint64_t v = seg.Find(table, key); v != 0) return v;
    // 8 bytes of record header (the free-list link) and one cell.
    auto rec = seg.Allocate(8 + sizeof(internal::Cell), BlockKind::kRecord);
    if (!rec.ok()) return 0;
    seg.At<internal::Cell>(*rec + 8)->Init(0);
    if (!seg.Insert(table, key, *rec).ok()) return 0;
    return *rec;
  }

  std::string name_;
  Location loc_;
};

// FORMAT.md, "Index": a slot is the entry's offset with the top 16 bits of its key hash above,
// and a probe must not take a slot whose tag differs for a match.
TEST_F(SegmentTest, IndexSlotsCarryTheTopBitsOfTheHash) {
  auto seg = CreateHeap();
  ASSERT_NE(seg, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_NE(FindOrCreate(*seg, "key" + std::to_string(i)), 0u);
  const uint64_t table = seg->header().root_table.load();
  auto* arr = seg->At<SlotArray>(seg->At<TableHeader>(table)->slots.load());
  int tagged = 0;
  for (uint64_t i = 0; i < arr->capacity; ++i) {
    const uint64_t slot = arr->slot[i].load();
    if (slot == kSlotEmpty || slot == kSlotTombstone) continue;
    const auto* e = seg->At<Entry>(slot & 0x0000ffffffffffffULL);
    EXPECT_EQ(slot >> 48, e->hash >> 48);
    if ((slot >> 48) != 0) ++tagged;
    // The same entry under another tag is another key's slot: no longer found.
    const std::string key(reinterpret_cast<const char*>(e + 1), e->key_len);
    EXPECT_EQ(seg->Find(table, key), e->value);
    arr->slot[i].store(slot ^ (uint64_t{1} << 63));
    EXPECT_EQ(seg->Find(table, key), 0u) << key;
    arr->slot[i].store(slot);
  }
  EXPECT_GT(tagged, 90);
}

// A walk gathers the slots a chunk at a time without branching on each; every entry still
// comes out once, and a slot with an offset that is misaligned or outside the heap ends the
// walk with DataLoss naming that slot, wherever in a chunk it lies.
TEST_F(SegmentTest, WalksReportEachEntryOnceAndNameABadSlot) {
  auto seg = CreateHeap();
  ASSERT_NE(seg, nullptr);
  std::set<std::string> want;
  for (int i = 0; i < 1000; ++i) {
    want.insert("key" + std::to_string(i));
    ASSERT_NE(FindOrCreate(*seg, "key" + std::to_string(i)), 0u);
  }
  const uint64_t table = seg->header().root_table.load();
  auto walk = [&](std::multiset<std::string>* got) {
    return seg->ForEachEntry(table, [&](std::string_view key, uint64_t) {
      got->insert(std::string(key));
      return true;
    });
  };
  std::multiset<std::string> got;
  ASSERT_TRUE(walk(&got).ok());
  EXPECT_EQ(got, std::multiset<std::string>(want.begin(), want.end()));

  auto* arr = seg->At<SlotArray>(seg->At<TableHeader>(table)->slots.load());
  const uint64_t readable = seg->ReadableSize();
  int checked = 0;
  for (uint64_t i = 0; i < arr->capacity; ++i) {
    const uint64_t slot = arr->slot[i].load();
    if (slot == kSlotEmpty || slot == kSlotTombstone || i % 7 != 0) continue;
    for (const uint64_t bad : {SlotOffset(slot) + 4, readable + 4096, uint64_t{16}}) {
      arr->slot[i].store((slot & ~kSlotOffsetMask) | bad);
      got.clear();
      const absl::Status s = walk(&got);
      EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << i << " " << bad;
      EXPECT_THAT(std::string(s.message()),
                  HasSubstr("index slot " + std::to_string(i) + " holds offset " +
                            std::to_string(bad) + ", out of range"));
      ++checked;
    }
    arr->slot[i].store(slot);
  }
  EXPECT_GT(checked, 100);
  got.clear();
  ASSERT_TRUE(walk(&got).ok());
  EXPECT_EQ(got.size(), want.size());
}

TEST(LocationTest, RejectsNamesThatEscapeTheShmDirectory) {
  for (const char* bad : {"", ".", "..", "a/b", "../etc", "x y", "a\nb"}) {
    auto loc = Location::ForName(bad);
    ASSERT_FALSE(loc.ok()) << bad;
    EXPECT_THAT(std::string(loc.status().message()), HasSubstr("invalid heap name"));
  }
  EXPECT_FALSE(Location::ForName(std::string(201, 'a')).ok());
  auto ok = Location::ForName("my-app_1.0");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->path, "/dev/shm/shmetrics.my-app_1.0");
}

TEST_F(SegmentTest, CreateOpenRemove) {
  auto seg = CreateHeap();
  ASSERT_NE(seg, nullptr);
  struct stat st;
  ASSERT_EQ(stat(loc_.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(seg->header().layout_version, kLayoutVersion);
  EXPECT_TRUE(seg->CreatorAlive());

  auto again = Segment::Create(loc_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("already exists"));

  auto opened = Segment::Create(loc_, {.open_existing = true});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->header().created_unix_ns, seg->header().created_unix_ns);

  ASSERT_TRUE(Segment::Remove(loc_).ok());
  EXPECT_EQ(Segment::Open(loc_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Segment::Remove(loc_).code(), absl::StatusCode::kNotFound);
  // Mapped processes keep working after removal.
  MutexLock lock(seg->lock());
  EXPECT_TRUE(seg->Allocate(64, BlockKind::kBlob).ok());
}

TEST_F(SegmentTest, ModeIsIndependentOfUmask) {
  const mode_t old = umask(0);
  auto seg = CreateHeap({.mode = 0640});
  umask(old);
  struct stat st;
  ASSERT_EQ(stat(loc_.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(SegmentTest, RefusesHeapsOthersMayWrite) {
  auto seg = CreateHeap({.mode = 0666});
  auto opened = Segment::Open(loc_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("0666"));
  EXPECT_TRUE(Segment::Open(loc_, {.allow_shared_write = true}).ok());
}

TEST_F(SegmentTest, DetectsHeapLeftByDeadCreator) {
  const pid_t child = ForkChild([&] {
    auto seg = Segment::Create(loc_);
    return seg.ok() ? 0 : 1;
  });
  ASSERT_EQ(WaitChild(child), 0);
  auto seg = OpenHeap();
  ASSERT_NE(seg, nullptr);
  EXPECT_FALSE(seg->CreatorAlive());
  auto again = Segment::Create(loc_);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("no longer running"));
}

TEST_F(SegmentTest, ExplicitPathOnDisk) {
  const std::string path = ::testing::TempDir() + "/" + name_ + ".heap";
  const Location loc = Location::ForPath(path);
  {
    auto seg = Segment::Create(loc);
    ASSERT_TRUE(seg.ok()) << seg.status();
    auto other = Segment::Open(loc);
    ASSERT_TRUE(other.ok()) << other.status();
    MutexLock lock((*seg)->lock());
    auto off = (*seg)->Allocate(8, BlockKind::kBlob);
    ASSERT_TRUE(off.ok());
    *(*seg)->At<uint64_t>(*off) = 42;
    EXPECT_EQ(*(*other)->At<uint64_t>(*off), 42u);
  }
  EXPECT_TRUE(Segment::Remove(loc).ok());
}

TEST_F(SegmentTest, TwoMappingsAtDifferentAddressesShareData) {
  auto a = CreateHeap();
  auto b = OpenHeap();
  ASSERT_NE(a->base(), b->base());
  const uint64_t rec = FindOrCreate(*a, "key");
  ASSERT_NE(rec, 0u);
  EXPECT_EQ(b->Find(b->header().root_table.load(), "key"), rec);
  a->At<internal::Cell>(rec + 8)->Add(5);
  EXPECT_EQ(b->At<internal::Cell>(rec + 8)->Load(), 5u);
}

TEST_F(SegmentTest, GrowsOnDemandUpToMaxAndFailsCleanly) {
  auto seg = CreateHeap({.max_size = 4 << 20, .initial_size = 64 << 10});
  auto reader = OpenHeap();
  const uint64_t initial = seg->header().committed.load();
  EXPECT_LT(initial, uint64_t{1} << 20);
  std::vector<uint64_t> offs;
  MutexLock lock(seg->lock());
  absl::Status last;
  for (int i = 0; i < 100000; ++i) {
    auto off = seg->Allocate(4000, BlockKind::kBlob);
    if (!off.ok()) {
      last = off.status();
      break;
    }
    std::memset(seg->base() + *off, 0xab, 4000);
    offs.push_back(*off);
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(last.message()), HasSubstr("is full"));
  EXPECT_GT(offs.size(), 900u);
  EXPECT_GT(seg->header().committed.load(), initial);
  EXPECT_LE(seg->header().committed.load(), seg->header().max_size);
  EXPECT_EQ(seg->header().alloc_failures.load(), 1u);
  // A process that mapped the heap before it grew reads the new blocks without remapping.
  EXPECT_EQ(static_cast<unsigned char>(reader->base()[offs.back()]), 0xab);
  EXPECT_TRUE(seg->Verify().ok()) << seg->Verify();
}

TEST_F(SegmentTest, FreedBlocksAreReused) {
  auto seg = CreateHeap();
  MutexLock lock(seg->lock());
  auto a = seg->Allocate(100, BlockKind::kBlob);
  ASSERT_TRUE(a.ok());
  const uint64_t used = seg->header().used.load();
  seg->Free(*a);
  auto b = seg->Allocate(100, BlockKind::kBlob);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(seg->header().used.load(), used);
  // Reused payloads come back zeroed.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seg->base()[*b + i], 0);
}

TEST_F(SegmentTest, DamagedFreeListIsDroppedNotFollowed) {
  auto seg = CreateHeap();
  MutexLock lock(seg->lock());
  auto a = seg->Allocate(24, BlockKind::kRecord);
  ASSERT_TRUE(a.ok());
  seg->Free(*a);
  // A stale writer scribbles over the link of the freed block.
  *seg->At<uint64_t>(*a) = 12345;
  auto b = seg->Allocate(24, BlockKind::kRecord);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, *a);
  auto c = seg->Allocate(24, BlockKind::kRecord);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*c, 12345u);
  EXPECT_EQ(SegmentTestingPeer::FreeSmall(*seg, 1), 0u);
  EXPECT_TRUE(seg->Verify().ok()) << seg->Verify();
}

TEST_F(SegmentTest, TableInsertFindEraseAndChurnStaysBounded) {
  auto seg = CreateHeap();
  const uint64_t table = seg->header().root_table.load();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1000; ++i) {
      EXPECT_NE(FindOrCreate(*seg, "k" + std::to_string(i)), 0u);
    }
    EXPECT_EQ(seg->TableSize(table), 1000u);
    MutexLock lock(seg->lock());
    for (int i = 0; i < 1000; ++i) {
      const uint64_t v = seg->Erase(table, "k" + std::to_string(i));
      ASSERT_NE(v, 0u);
      seg->Free(v);
    }
  }
  const uint64_t used = seg->header().used.load();
  for (int i = 0; i < 100000; ++i) {
    const std::string key = "churn" + std::to_string(i);
    ASSERT_NE(FindOrCreate(*seg, key), 0u);
    MutexLock lock(seg->lock());
    seg->Free(seg->Erase(table, key));
  }
  EXPECT_EQ(seg->TableSize(table), 0u);
  EXPECT_LE(seg->header().used.load(), used + 64 * 1024);
  EXPECT_TRUE(seg->Verify().ok()) << seg->Verify();
}

TEST_F(SegmentTest, EightProcessesIncrementOneCell) {
  auto seg = CreateHeap();
  const uint64_t rec = FindOrCreate(*seg, "counter");
  auto* cell = seg->At<internal::Cell>(rec + 8);
  constexpr int kProcs = 8;
  constexpr int kIncrements = 1000000;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&] {
      for (int i = 0; i < kIncrements; ++i) cell->Add(1);
      return 0;
    }));
  }
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  EXPECT_EQ(cell->Load(), uint64_t{kProcs} * kIncrements);
}

TEST_F(SegmentTest, DoubleCellAddsExactlyAcrossProcesses) {
  auto seg = CreateHeap();
  const uint64_t rec = FindOrCreate(*seg, "sum");
  auto* cell = seg->At<internal::Cell>(rec + 8);
  cell->StoreDouble(0);
  std::vector<pid_t> kids;
  for (int p = 0; p < 4; ++p) {
    kids.push_back(ForkChild([&] {
      for (int i = 0; i < 100000; ++i) cell->AddDouble(0.5);
      return 0;
    }));
  }
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  EXPECT_EQ(cell->LoadDouble(), 200000.0);
}

TEST_F(SegmentTest, RacingCreatorsMakeExactlyOneRecordPerKey) {
  auto seg = CreateHeap();
  constexpr int kProcs = 8;
  constexpr int kKeys = 1000;
  // Each child writes the offsets it saw into its own row of a shared result array.
  uint64_t results_off;
  {
    MutexLock lock(seg->lock());
    auto r = seg->Allocate(uint64_t{kProcs} * kKeys * 8, BlockKind::kBlob);
    ASSERT_TRUE(r.ok());
    results_off = *r;
  }
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&, p] {
      auto mine = Segment::Open(loc_);  // a separate mapping per process
      if (!mine.ok()) return 2;
      auto* results = (*mine)->At<uint64_t>(results_off) + static_cast<uint64_t>(p) * kKeys;
      for (int k = 0; k < kKeys; ++k) {
        // Different processes walk the keys in different orders to maximize collisions.
        const int key = (p % 2 == 0) ? k : kKeys - 1 - k;
        results[key] = FindOrCreate(**mine, "key-" + std::to_string(key));
        if (results[key] == 0) return 3;
      }
      return 0;
    }));
  }
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  const uint64_t table = seg->header().root_table.load();
  EXPECT_EQ(seg->TableSize(table), uint64_t{kKeys});
  int entries = 0;
  ASSERT_TRUE(seg->ForEachEntry(table,
                                [&](std::string_view, uint64_t) {
                                  ++entries;
                                  return true;
                                })
                  .ok());
  EXPECT_EQ(entries, kKeys);
  const uint64_t* results = seg->At<uint64_t>(results_off);
  for (int k = 0; k < kKeys; ++k) {
    const uint64_t expected = seg->Find(table, "key-" + std::to_string(k));
    ASSERT_NE(expected, 0u);
    for (int p = 0; p < kProcs; ++p) {
      EXPECT_EQ(results[static_cast<uint64_t>(p) * kKeys + k], expected)
          << "process " << p << " key " << k;
    }
  }
  EXPECT_TRUE(seg->Verify().ok()) << seg->Verify();
}

TEST_F(SegmentTest, ProcessKilledHoldingTheLockDoesNotBlockOthers) {
  auto seg = CreateHeap();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  // Takes the lock and never releases it: the analysis is off for this one child.
  const pid_t child = ForkChild([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    seg->lock().lock();
    (void)!write(ready[1], "x", 1);
    pause();  // killed while holding the lock
    return 0;
  });
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(FindOrCreate(*seg, "after-death"), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(seg->lock().recoveries(), 1u);
  EXPECT_TRUE(seg->Verify().ok()) << seg->Verify();
  close(ready[0]);
  close(ready[1]);
}

TEST_F(SegmentTest, ProcessKilledMidCreateLeavesAValidHeap) {
  auto seg = CreateHeap();
  const uint64_t table = seg->header().root_table.load();
  for (int i = 0; i < 40; ++i) FindOrCreate(*seg, "pre-" + std::to_string(i));
  // Each child dies at a different step of the create sequence: after allocating the record,
  // after allocating the entry, in the middle of a table rebuild.
  for (int step = 0; step < 3; ++step) {
    const pid_t child = ForkChild([&] {
      MutexLock lock(seg->lock());
      auto rec = seg->Allocate(16, BlockKind::kRecord);
      if (step == 0) raise(SIGKILL);
      auto entry = seg->Allocate(sizeof(Entry) + 8, BlockKind::kEntry);
      if (step == 1) raise(SIGKILL);
      // Half a rebuild: a new slot array allocated and partly filled, never published.
      auto slots = seg->Allocate(8 + 256 * 8, BlockKind::kSlots);
      (void)rec;
      (void)entry;
      (void)slots;
      raise(SIGKILL);
      return 0;
    });
    EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NE(FindOrCreate(*seg, "post-" + std::to_string(step)), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    EXPECT_TRUE(seg->Verify().ok()) << seg->Verify();
  }
  EXPECT_EQ(seg->TableSize(table), 43u);
  for (int i = 0; i < 40; ++i) EXPECT_NE(seg->Find(table, "pre-" + std::to_string(i)), 0u);
}

// --- Unrelated processes: exec()ed, open by name ---

TEST_F(SegmentTest, ExecedProcessOpensByNameAndUpdates) {
  auto seg = CreateHeap();
  const uint64_t rec = FindOrCreate(*seg, "shared");
  const pid_t child = fork();
  if (child == 0) {
    const std::string filter = "--gtest_filter=ExecChild.DISABLED_IncrementByName";
    setenv("SHMETRICS_TEST_HEAP", name_.c_str(), 1);
    execl("/proc/self/exe", "segment_test", filter.c_str(), "--gtest_also_run_disabled_tests",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_EQ(WaitChild(child), 0);
  EXPECT_EQ(seg->At<internal::Cell>(rec + 8)->Load(), 1000u);
}

// Runs only in the exec()ed child of the test above.
TEST(ExecChild, DISABLED_IncrementByName) {
  const char* name = getenv("SHMETRICS_TEST_HEAP");
  ASSERT_NE(name, nullptr);
  auto seg = Segment::Open(*Location::ForName(name));
  ASSERT_TRUE(seg.ok()) << seg.status();
  const uint64_t rec = (*seg)->Find((*seg)->header().root_table.load(), "shared");
  ASSERT_NE(rec, 0u);
  for (int i = 0; i < 1000; ++i) (*seg)->At<internal::Cell>(rec + 8)->Add(1);
}

// --- Bad files ---

class BadHeapTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = ::testing::TempDir() + "/" + UniqueHeapName("bad"); }
  void TearDown() override { unlink(path_.c_str()); }
  void Write(const std::string& bytes) {
    const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  std::string ReadAll() {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  absl::Status OpenStatus() { return Segment::Open(Location::ForPath(path_)).status(); }
  std::string path_;
};

TEST_F(BadHeapTest, Garbage) {
  std::string garbage(8192, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 7 + 3);
  Write(garbage);
  const absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is not a shmetrics heap: magic 0x"));
}

TEST_F(BadHeapTest, TooShort) {
  Write("hello");
  const absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("truncated: 5 bytes"));
}

TEST_F(BadHeapTest, TruncatedHeap) {
  {
    auto seg = Segment::Create(Location::ForPath(path_), {.initial_size = 1 << 20});
    ASSERT_TRUE(seg.ok());
  }
  ASSERT_EQ(truncate(path_.c_str(), 64 * 1024), 0);
  const absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is truncated: the header says"));
}

TEST_F(BadHeapTest, OtherLayoutVersion) {
  {
    auto seg = Segment::Create(Location::ForPath(path_));
    ASSERT_TRUE(seg.ok());
    (*seg)->header().layout_version = 99;
  }
  const absl::Status s = OpenStatus();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("has layout version 99; this build of shmetrics reads layout version 4"));
}

TEST_F(BadHeapTest, CorruptRootOffsetsAndBlocks) {
  {
    auto seg = Segment::Create(Location::ForPath(path_));
    ASSERT_TRUE(seg.ok());
    (*seg)->header().root_table.store(uint64_t{1} << 39);
  }
  EXPECT_THAT(std::string(OpenStatus().message()), HasSubstr("root offsets out of range"));
  {
    auto seg = Segment::Create(Location::ForPath(path_ + "2"));
    ASSERT_TRUE(seg.ok());
    MutexLock lock((*seg)->lock());
    auto off = (*seg)->Allocate(32, BlockKind::kBlob);
    ASSERT_TRUE(off.ok());
    (*seg)->At<BlockHeader>(*off - kBlockHeaderSize)->size = 7;
    const absl::Status v = (*seg)->Verify();
    EXPECT_EQ(v.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(v.message()), HasSubstr("has size 7"));
    unlink((path_ + "2").c_str());
  }
}

TEST_F(BadHeapTest, RandomCorruptionNeverCrashesReaders) {
  // Flip random bytes of a populated heap; every open, lookup and walk must return, not crash.
  const Location loc = Location::ForPath(path_);
  {
    auto seg = Segment::Create(loc);
    ASSERT_TRUE(seg.ok());
    for (int i = 0; i < 200; ++i) {
      MutexLock lock((*seg)->lock());
      auto rec = (*seg)->Allocate(16, BlockKind::kRecord);
      ASSERT_TRUE(rec.ok());
      ASSERT_TRUE(
          (*seg)->Insert((*seg)->header().root_table.load(), "k" + std::to_string(i), *rec).ok());
    }
  }
  const std::string pristine = ReadAll();
  const uint64_t used = reinterpret_cast<const Header*>(pristine.data())->used.load();
  uint64_t rng = 12345;
  auto next = [&] {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng >> 33;
  };
  for (int trial = 0; trial < 300; ++trial) {
    std::string copy = pristine;
    for (int flips = 0; flips < 8; ++flips) copy[next() % used] = static_cast<char>(next());
    Write(copy);
    auto seg = Segment::Open(loc);
    if (!seg.ok()) continue;
    (void)(*seg)->Verify();
    const uint64_t table = (*seg)->header().root_table.load();
    (void)(*seg)->Find(table, "k7");
    (void)(*seg)->ForEachEntry(table, [](std::string_view, uint64_t) { return true; });
    (void)(*seg)->Workers();
  }
}

// --- Workers ---

TEST_F(SegmentTest, WorkerIdsAreStableAndReusedAfterDeath) {
  auto seg = CreateHeap({.max_workers = 4});
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  // Four long-lived workers take ids 0..3.
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    kids.push_back(ForkChild([&] {
      auto id = seg->ClaimWorker();
      if (!id.ok()) return 100;
      char c;
      (void)!read(go[0], &c, 1);  // wait to be killed
      return static_cast<int>(*id);
    }));
    // Wait until the worker holds its slot, so ids are handed out in order.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seg->Workers().size() < static_cast<size_t>(i + 1) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  auto workers = seg->Workers();
  ASSERT_EQ(workers.size(), 4u);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(workers[i].id, i);
    EXPECT_EQ(workers[i].pid, kids[i]);
    EXPECT_TRUE(workers[i].alive);
  }
  // A fifth process finds no free slot.
  const pid_t fifth = ForkChild([&] {
    return seg->ClaimWorker().status().code() == absl::StatusCode::kResourceExhausted ? 0 : 1;
  });
  EXPECT_EQ(WaitChild(fifth), 0);
  // Kill worker 2; its replacement gets id 2.
  kill(kids[2], SIGKILL);
  EXPECT_EQ(WaitChild(kids[2]), 128 + SIGKILL);
  EXPECT_FALSE(seg->Workers()[2].alive);
  const pid_t replacement = ForkChild([&] {
    auto id = seg->ClaimWorker();
    auto again = seg->ClaimWorker();  // idempotent
    return id.ok() && again.ok() && *id == *again ? static_cast<int>(*id) : 100;
  });
  EXPECT_EQ(WaitChild(replacement), 2);
  EXPECT_EQ(seg->Workers()[2].epoch, 2u);
  for (int i = 0; i < 4; ++i) (void)!write(go[1], "xxxx", 1);
  for (int i : {0, 1, 3}) EXPECT_EQ(WaitChild(kids[i]), i);
  close(go[0]);
  close(go[1]);
}

TEST_F(SegmentTest, ReadOnlyOpenCannotAllocate) {
  auto seg = CreateHeap();
  FindOrCreate(*seg, "x");
  auto ro = OpenHeap({.read_only = true});
  ASSERT_NE(ro, nullptr);
  EXPECT_NE(ro->Find(ro->header().root_table.load(), "x"), 0u);
  // A read-only mapping cannot take the lock (the mutex is in memory it may not write), so this
  // calls Allocate without it, on purpose: Allocate refuses before it would touch the heap.
  auto allocate_unlocked = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return ro->Allocate(8, BlockKind::kBlob);
  };
  EXPECT_EQ(allocate_unlocked().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->ClaimWorker().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace shmetrics::shm
