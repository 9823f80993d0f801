// Lock-free walks of the index while another process grows and churns it: a table rebuild frees
// the slot array a walker may be reading, and the block is reused at once. The walk must neither
// fail nor report an entry twice nor stop short.
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "util/subprocess.h"

namespace shmetrics::shm {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;

TEST(IndexWalkTest, WalksSurviveRebuildsByAnotherProcess) {
  const Location loc = *Location::ForName(UniqueHeapName("walk"));
  auto seg = Segment::Create(loc);
  ASSERT_TRUE(seg.ok()) << seg.status();
  Segment& s = **seg;
  uint64_t table = 0;
  {
    MutexLock lock(s.lock());
    auto t = s.NewTable(16);
    ASSERT_TRUE(t.ok());
    table = *t;
  }
  // 5000 live keys in 8192 slots; replacing keys fills the table with tombstones, so it is
  // rebuilt in place every ~1100 replacements: about 200 rebuilds.
  constexpr int kLive = 5000;
  constexpr int kReplacements = 200000;
  const pid_t writer = ForkChild([&] {
    auto key = [](int i) { return "key-" + std::to_string(i); };
    for (int i = 0; i < kLive + kReplacements; ++i) {
      MutexLock lock(s.lock());
      const uint64_t before = s.At<TableHeader>(table)->slots.load();
      if (i >= kLive) s.Free(s.Erase(table, key(i - kLive)));
      auto rec = s.Allocate(16, BlockKind::kRecord);
      if (!rec.ok() || !s.Insert(table, key(i), *rec).ok()) return 1;
      if (s.At<TableHeader>(table)->slots.load() != before) {
        // A rebuild freed the old array: reuse its block at once and scribble over it, as
        // another allocation would.
        auto reuse = s.Allocate(s.PayloadSize(before), BlockKind::kBlob);
        if (reuse.ok()) std::memset(s.At<char>(*reuse), 0xa5, s.PayloadSize(*reuse));
      }
    }
    return 0;
  });
  int walks = 0;
  for (;;) {
    const bool writer_done = waitpid(writer, nullptr, WNOHANG) == writer;
    std::set<std::string> seen;
    bool duplicate = false;
    const absl::Status status = s.ForEachEntry(table, [&](std::string_view key, uint64_t) {
      duplicate = duplicate || !seen.insert(std::string(key)).second;
      return true;
    });
    ASSERT_TRUE(status.ok()) << "walk " << walks << ": " << status;
    ASSERT_FALSE(duplicate) << "walk " << walks;
    // A walk that raced with replacements may miss or add a few keys, never many.
    if (seen.size() >= kLive / 2) {
      ASSERT_LE(seen.size(), static_cast<size_t>(kLive + 100)) << "walk " << walks;
    }
    ++walks;
    if (writer_done) {
      EXPECT_EQ(seen.size(), static_cast<size_t>(kLive));
      break;
    }
  }
  EXPECT_GT(walks, 1);
  EXPECT_TRUE(s.Verify().ok()) << s.Verify();
  (void)Segment::Remove(loc);
}

}  // namespace
}  // namespace shmetrics::shm
