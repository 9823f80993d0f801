#include "process/proc_stats.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/subprocess.h"

namespace shmetrics::process {
namespace {

using ::shmetrics::testing::BlockedChild;

using ::testing::HasSubstr;

double Hz() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }
uint64_t PageSize() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

rusage Usage(int who) {
  rusage ru{};
  EXPECT_EQ(getrusage(who, &ru), 0);
  return ru;
}

// /proc/self/statm: size and resident, in pages.
std::pair<uint64_t, uint64_t> Statm() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return {size * PageSize(), resident * PageSize()};
}

ProcessStats ReadSelf() {
  absl::StatusOr<ProcessStats> s = ReadProcessStats(getpid());
  EXPECT_TRUE(s.ok()) << s.status();
  return s.value_or(ProcessStats{});
}

// ---------------------------------------------------------------------------------------------
// The real /proc, checked against independent sources.

TEST(ReadProcessStatsSelf, CpuMatchesGetrusage) {
  // Burn some user time so the comparison is not 0 vs 0.
  volatile uint64_t sink = 0;
  const double until = Seconds(Usage(RUSAGE_SELF).ru_utime) + 0.2;
  while (Seconds(Usage(RUSAGE_SELF).ru_utime) < until) {
    for (int i = 0; i < 100000; ++i) sink = sink + i;
  }
  rusage before = Usage(RUSAGE_SELF);
  ProcessStats s = ReadSelf();
  rusage after = Usage(RUSAGE_SELF);
  // procfs truncates the same adjusted times to clock ticks.
  const double tick = 1 / Hz();
  EXPECT_GE(s.cpu_user_seconds, Seconds(before.ru_utime) - 2 * tick);
  EXPECT_LE(s.cpu_user_seconds, Seconds(after.ru_utime) + tick);
  EXPECT_GE(s.cpu_system_seconds, Seconds(before.ru_stime) - 2 * tick);
  EXPECT_LE(s.cpu_system_seconds, Seconds(after.ru_stime) + tick);
  EXPECT_GE(s.cpu_user_seconds, 0.2 - 2 * tick);
}

TEST(ReadProcessStatsSelf, MemoryMatchesStatm) {
  auto [size_before, rss_before] = Statm();
  ProcessStats s = ReadSelf();
  auto [size_after, rss_after] = Statm();
  EXPECT_GT(s.resident_memory_bytes, 0u);
  EXPECT_GE(s.resident_memory_bytes, 0.9 * std::min(rss_before, rss_after));
  EXPECT_LE(s.resident_memory_bytes, 1.1 * std::max(rss_before, rss_after));
  EXPECT_GE(s.virtual_memory_bytes, 0.9 * std::min(size_before, size_after));
  EXPECT_LE(s.virtual_memory_bytes, 1.1 * std::max(size_before, size_after));
  EXPECT_EQ(s.resident_memory_bytes % PageSize(), 0u);
}

TEST(ReadProcessStatsSelf, ResidentMemoryGrowsWhenPagesAreTouched) {
  constexpr size_t kBytes = 64 << 20;
  ProcessStats before = ReadSelf();
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  for (size_t i = 0; i < kBytes; i += PageSize()) static_cast<volatile char*>(p)[i] = 1;
  ProcessStats during = ReadSelf();
  munmap(p, kBytes);
  EXPECT_GE(during.virtual_memory_bytes, before.virtual_memory_bytes + kBytes * 9 / 10);
  EXPECT_GE(during.resident_memory_bytes, before.resident_memory_bytes + kBytes * 9 / 10);
}

TEST(ReadProcessStatsSelf, PageFaultsMatchGetrusage) {
  constexpr size_t kPages = 256;
  void* p = mmap(nullptr, kPages * PageSize(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  madvise(p, kPages * PageSize(), MADV_NOHUGEPAGE);
  rusage ru0 = Usage(RUSAGE_SELF);
  ProcessStats s0 = ReadSelf();
  for (size_t i = 0; i < kPages; ++i) static_cast<volatile char*>(p)[i * PageSize()] = 1;
  rusage ru1 = Usage(RUSAGE_SELF);
  ProcessStats s1 = ReadSelf();
  rusage ru2 = Usage(RUSAGE_SELF);
  munmap(p, kPages * PageSize());
  EXPECT_GE(s1.minor_page_faults, static_cast<uint64_t>(ru1.ru_minflt));
  EXPECT_LE(s1.minor_page_faults, static_cast<uint64_t>(ru2.ru_minflt));
  EXPECT_GE(s1.minor_page_faults, s0.minor_page_faults + kPages);
  EXPECT_LE(s0.minor_page_faults, static_cast<uint64_t>(ru1.ru_minflt));
  EXPECT_GE(s1.major_page_faults, static_cast<uint64_t>(ru0.ru_majflt));
  EXPECT_LE(s1.major_page_faults, static_cast<uint64_t>(ru2.ru_majflt));
}

TEST(ReadProcessStatsSelf, VoluntaryContextSwitchesAreTheMainThreads) {
  // The test body runs on the main thread, whose counts procfs reports.
  rusage before = Usage(RUSAGE_THREAD);
  for (int i = 0; i < 5; ++i) usleep(1000);
  rusage mid = Usage(RUSAGE_THREAD);
  ProcessStats s = ReadSelf();
  rusage after = Usage(RUSAGE_THREAD);
  EXPECT_GE(static_cast<uint64_t>(mid.ru_nvcsw), static_cast<uint64_t>(before.ru_nvcsw) + 5);
  EXPECT_GE(s.voluntary_context_switches, static_cast<uint64_t>(mid.ru_nvcsw));
  EXPECT_LE(s.voluntary_context_switches, static_cast<uint64_t>(after.ru_nvcsw));
  EXPECT_GE(s.involuntary_context_switches, static_cast<uint64_t>(mid.ru_nivcsw));
  EXPECT_LE(s.involuntary_context_switches, static_cast<uint64_t>(after.ru_nivcsw));
}

TEST(ReadProcessStatsSelf, OpenFdsCountsEveryDescriptor) {
  ProcessStats before = ReadSelf();
  int fds[3];
  for (int& fd : fds) {
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
  }
  ProcessStats during = ReadSelf();
  for (int fd : fds) close(fd);
  ProcessStats after = ReadSelf();
  EXPECT_EQ(during.open_fds, before.open_fds + 3);
  EXPECT_EQ(after.open_fds, before.open_fds);
  EXPECT_GE(before.open_fds, 3u);  // at least stdin, stdout, stderr
}

TEST(ReadProcessStatsSelf, ThreadsCountsBlockedThreads) {
  // ThreadSanitizer starts a helper thread of its own with the first thread; get it going first.
  std::thread([] {}).join();
  ProcessStats before = ReadSelf();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started[2];
  std::vector<std::thread> threads;
  for (auto& s : started) {
    threads.emplace_back([&s, released] {
      s.set_value();
      released.wait();
    });
  }
  for (auto& s : started) s.get_future().wait();
  ProcessStats during = ReadSelf();
  release.set_value();
  for (auto& t : threads) t.join();
  ProcessStats after = ReadSelf();
  EXPECT_EQ(during.threads, before.threads + 2);
  EXPECT_EQ(after.threads, before.threads);
  EXPECT_GE(before.threads, 1u);
}

TEST(ReadProcessStatsSelf, MaxFdsIsTheSoftRlimit) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  EXPECT_EQ(ReadSelf().max_fds, static_cast<uint64_t>(lim.rlim_cur));

  // Lowering the soft limit is always allowed; the change must show.
  ASSERT_GT(lim.rlim_cur, 64u);
  rlimit lower = lim;
  lower.rlim_cur = lim.rlim_cur - 7;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lower), 0);
  uint64_t seen = ReadSelf().max_fds;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  EXPECT_EQ(seen, static_cast<uint64_t>(lim.rlim_cur - 7));
}

// Start times are compared with those of processes started before and after, read the same way
// (one cached boot time plus start ticks), never with the wall clock, which NTP may step.
double StartTime(pid_t pid) {
  absl::StatusOr<ProcessStats> s = ReadProcessStats(pid);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? s->start_time_seconds : -1;
}

TEST(ReadProcessStatsSelf, StartTimeIsInThePast) {
  ProcessStats s = ReadSelf();
  EXPECT_GT(s.start_time_seconds, 0);
  EXPECT_GE(s.start_time_seconds, StartTime(getppid()));  // after the process that started us
  BlockedChild later = BlockedChild::Start();
  EXPECT_LE(s.start_time_seconds, StartTime(later.pid));  // before one started now
  later.StopAndReap();
}

TEST(ReadProcessStatsChild, StartTimeOfAFreshChildIsNow) {
  // Each child holds the release pipes of those started before it: stop them in reverse order.
  BlockedChild before = BlockedChild::Start();
  BlockedChild child = BlockedChild::Start();
  BlockedChild after = BlockedChild::Start();
  const double t0 = StartTime(before.pid);
  const double t1 = StartTime(after.pid);
  after.StopAndReap();
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer's runtime may start a background thread of its own in the child, at a moment
  // of its choosing: expect what the kernel lists, read when it holds still around our read.
  const auto tasks = [&] {
    uint64_t n = 0;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(child.pid) + "/task")) {
      (void)task;
      ++n;
    }
    return n;
  };
  absl::StatusOr<ProcessStats> s;
  uint64_t expected_threads = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    expected_threads = tasks();
    s = ReadProcessStats(child.pid);
    if (tasks() == expected_threads) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
#else
  absl::StatusOr<ProcessStats> s = ReadProcessStats(child.pid);
  const uint64_t expected_threads = 1;
#endif
  child.StopAndReap();
  before.StopAndReap();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GE(s->start_time_seconds, t0);
  EXPECT_LE(s->start_time_seconds, t1);
  EXPECT_GE(s->start_time_seconds, ReadSelf().start_time_seconds);
  EXPECT_EQ(s->threads, expected_threads);
}

TEST(ReadProcessStatsChild, ReapedChildIsNotFound) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);

  absl::StatusOr<ProcessStats> s = ReadProcessStats(pid);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr(absl::StrCat("/proc/", pid, "/stat")));
}

// Liveness (running or zombie) is shm::ProcessRunning's; see tests/shm/liveness_test.cc.
TEST(ReadProcessStatsChild, ZombieIsReadable) {
  BlockedChild child = BlockedChild::Start();
  // Let it exit, and wait for that without reaping it: it stays a zombie.
  close(child.release_fd);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child.pid, &info, WEXITED | WNOWAIT), 0);
  // A zombie is still readable, with its memory and files released.
  absl::StatusOr<ProcessStats> z = ReadProcessStats(child.pid);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->resident_memory_bytes, 0u);
  EXPECT_EQ(z->open_fds, 0u);

  int status = 0;
  ASSERT_EQ(waitpid(child.pid, &status, 0), child.pid);
}

TEST(ReadProcessStats, InvalidPid) {
  EXPECT_TRUE(absl::IsInvalidArgument(ReadProcessStats(0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ReadProcessStats(-5).status()));
}

// ---------------------------------------------------------------------------------------------
// A crafted /proc tree.

constexpr pid_t kPid = 4242;
constexpr uint64_t kBtime = 1700000000;

// Field i (man proc numbering) of the default stat line holds 1000 + i, so reading the wrong
// field gives a wrong, recognizable value.
std::string StatLine(pid_t pid, const std::string& comm, char state = 'S',
                     const std::map<int, std::string>& overrides = {}) {
  std::string line = absl::StrCat(pid, " (", comm, ") ", std::string(1, state));
  for (int i = 4; i <= 52; ++i) {
    auto it = overrides.find(i);
    absl::StrAppend(&line, " ", it != overrides.end() ? it->second : std::to_string(1000 + i));
  }
  return line + "\n";
}

// rss: VmRSS's value, or "" for no VmRSS line (a kernel thread's or a zombie's status).
// The default is the 1024 pages of StatLine's rss.
std::string StatusFile(const std::string& threads = "7", const std::string& vol = "123",
                       const std::string& invol = "45",
                       const std::string& rss = absl::StrCat("   ", PageSize(), " kB")) {
  return absl::StrCat("Name:\tworker\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n",
                      rss.empty() ? "" : absl::StrCat("VmRSS:\t", rss, "\n"), "Threads:\t", threads,
                      "\nSigQ:\t0/96365\nCpus_allowed_list:\t0-1\n"
                      "voluntary_ctxt_switches:\t",
                      vol, "\nnonvoluntary_ctxt_switches:\t", invol, "\n");
}

std::string LimitsFile(const std::string& soft = "1024", const std::string& hard = "4096") {
  return absl::StrCat(
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max processes             96365                96365                processes \n"
      "Max open files            ",
      soft, std::string(21 - std::min<size_t>(soft.size(), 20), ' '), hard,
      std::string(21 - std::min<size_t>(hard.size(), 20), ' '),
      "files     \n"
      "Max locked memory         8388608              8388608              bytes     \n");
}

class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string tmpl = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/shmetrics_fakeproc_XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_.path = tmpl;
    Write("stat", absl::StrCat("cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 12 0 0\nctxt 99\nbtime ", kBtime,
                               "\nprocesses 4000\n"));
    AddProcess(kPid, StatLine(kPid, "worker"));
  }
  void TearDown() override { std::filesystem::remove_all(root_.path); }

  std::string PathOf(const std::string& rel) const { return absl::StrCat(root_.path, "/", rel); }

  void Write(const std::string& rel, const std::string& content) {
    std::filesystem::path p = PathOf(rel);
    std::filesystem::create_directories(p.parent_path());
    // Replace, never write through, what a test planted there (a FIFO, a link to /dev/zero).
    std::filesystem::remove(p);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good());
  }

  void AddProcess(pid_t pid, const std::string& stat, int fds = 5) {
    Write(absl::StrCat(pid, "/stat"), stat);
    Write(absl::StrCat(pid, "/status"), StatusFile());
    Write(absl::StrCat(pid, "/limits"), LimitsFile());
    std::filesystem::remove_all(PathOf(absl::StrCat(pid, "/fd")));
    std::filesystem::create_directories(PathOf(absl::StrCat(pid, "/fd")));
    for (int i = 0; i < fds; ++i) {
      std::filesystem::create_symlink("/dev/null", PathOf(absl::StrCat(pid, "/fd/", i)));
    }
  }

  absl::StatusOr<ProcessStats> Read(pid_t pid = kPid) { return ReadProcessStats(pid, root_); }

  // The stat file is malformed: DataLoss naming the file.
  void ExpectMalformedStat(const std::string& stat, const std::string& why) {
    SCOPED_TRACE(absl::StrCat("stat: '", stat, "'"));
    Write(absl::StrCat(kPid, "/stat"), stat);
    absl::StatusOr<ProcessStats> s = Read();
    EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
    EXPECT_THAT(s.status().message(), HasSubstr(PathOf(absl::StrCat(kPid, "/stat"))));
    EXPECT_THAT(s.status().message(), HasSubstr(why));
  }

  ProcRoot root_;
};

TEST_F(FakeProcTest, EveryFieldComesFromItsPlace) {
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->cpu_user_seconds, 1014 / Hz());
  EXPECT_DOUBLE_EQ(s->cpu_system_seconds, 1015 / Hz());
  EXPECT_EQ(s->minor_page_faults, 1010u);
  EXPECT_EQ(s->major_page_faults, 1012u);
  EXPECT_EQ(s->virtual_memory_bytes, 1023u);
  EXPECT_EQ(s->resident_memory_bytes, 1024u * PageSize());
  EXPECT_DOUBLE_EQ(s->start_time_seconds, kBtime + 1022 / Hz());
  EXPECT_EQ(s->threads, 7u);
  EXPECT_EQ(s->voluntary_context_switches, 123u);
  EXPECT_EQ(s->involuntary_context_switches, 45u);
  EXPECT_EQ(s->max_fds, 1024u);
  EXPECT_EQ(s->open_fds, 5u);
}

TEST_F(FakeProcTest, CommWithParenthesesSpacesAndNewlines) {
  for (std::string comm :
       {") (", "a) (b c", "x) R 1 2 3 (y", "))", "(", "", " ", "two\nlines) S 9", "z) Z 1"}) {
    SCOPED_TRACE(absl::StrCat("comm: '", comm, "'"));
    Write(absl::StrCat(kPid, "/stat"), StatLine(kPid, comm, 'R'));
    absl::StatusOr<ProcessStats> s = Read();
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_DOUBLE_EQ(s->cpu_user_seconds, 1014 / Hz());
    EXPECT_EQ(s->resident_memory_bytes, 1024u * PageSize());
    EXPECT_DOUBLE_EQ(s->start_time_seconds, kBtime + 1022 / Hz());
  }
}

TEST_F(FakeProcTest, UnlimitedMaxFilesIsUint64Max) {
  Write(absl::StrCat(kPid, "/limits"), LimitsFile("unlimited", "unlimited"));
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->max_fds, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(s->max_fds, static_cast<uint64_t>(RLIM_INFINITY));
}

TEST_F(FakeProcTest, LargeCountersAndEmptyFdDirectory) {
  AddProcess(
      kPid,
      StatLine(kPid, "w", 'S',
               {{14, "18446744073709551615"}, {23, "18446744073709551615"}, {10, "0"}, {24, "0"}}),
      /*fds=*/0);
  Write(absl::StrCat(kPid, "/status"), StatusFile("7", "1", "2", ""));
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->virtual_memory_bytes, std::numeric_limits<uint64_t>::max());
  EXPECT_DOUBLE_EQ(s->cpu_user_seconds, 18446744073709551615.0 / Hz());
  EXPECT_EQ(s->minor_page_faults, 0u);
  EXPECT_EQ(s->resident_memory_bytes, 0u);
  EXPECT_EQ(s->open_fds, 0u);
}

TEST_F(FakeProcTest, ManyFdsNeedSeveralDirectoryReads) {
  AddProcess(kPid, StatLine(kPid, "w"), /*fds=*/2000);
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->open_fds, 2000u);
}

// VmRSS is exact where stat's rss is the per-CPU counters' estimate; stat's serves processes
// whose status has no VmRSS.
TEST_F(FakeProcTest, ResidentMemoryIsVmRssElseStatRss) {
  Write(absl::StrCat(kPid, "/status"), StatusFile("7", "1", "2", "\t  777 kB"));
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->resident_memory_bytes, 777u * 1024);
  Write(absl::StrCat(kPid, "/status"), StatusFile("7", "1", "2", ""));
  Write(absl::StrCat(kPid, "/stat"), StatLine(kPid, "w", 'S', {{24, "3"}}));
  s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->resident_memory_bytes, 3 * PageSize());
}

TEST_F(FakeProcTest, RssOverflowIsAnError) {
  Write(absl::StrCat(kPid, "/status"), StatusFile("7", "1", "2", ""));
  Write(absl::StrCat(kPid, "/stat"), StatLine(kPid, "w", 'S', {{24, "18446744073709551615"}}));
  EXPECT_TRUE(absl::IsDataLoss(Read().status())) << Read().status();
}

TEST_F(FakeProcTest, MissingProcessOrFileIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(Read(kPid + 1).status()));
  // A process that exits between two reads loses its files: NotFound, not a parse error.
  for (std::string file : {"status", "limits", "fd"}) {
    SCOPED_TRACE(file);
    AddProcess(kPid, StatLine(kPid, "w"));
    std::filesystem::remove_all(PathOf(absl::StrCat(kPid, "/", file)));
    absl::StatusOr<ProcessStats> s = Read();
    EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
    EXPECT_THAT(s.status().message(), HasSubstr(file));
  }
}

TEST_F(FakeProcTest, MissingProcStatIsNotFoundAndMissingBtimeIsDataLoss) {
  std::filesystem::remove(PathOf("stat"));
  EXPECT_TRUE(absl::IsNotFound(Read().status())) << Read().status();
  Write("stat", "cpu 1 2 3\nctxt 5\n");
  EXPECT_TRUE(absl::IsDataLoss(Read().status())) << Read().status();
  EXPECT_THAT(Read().status().message(), HasSubstr("btime"));
  Write("stat", "btime soon\n");
  EXPECT_TRUE(absl::IsDataLoss(Read().status())) << Read().status();
}

TEST_F(FakeProcTest, LongProcStatBeforeBtimeIsRead) {
  // /proc/stat on a big machine: a 200 KB intr line, then btime.
  std::string intr = "intr";
  while (intr.size() < 200000) intr += " 0";
  Write("stat", absl::StrCat("cpu 1 2 3\n", intr, "\nbtime 1600000000\n"));
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1600000000 + 1022 / Hz());
}

TEST_F(FakeProcTest, TruncatedStatIsAnErrorAtEveryLength) {
  const std::string full = StatLine(kPid, "a) (b", 'S');
  // The stat is complete once field 24 (rss, 1024) and the space after it are in.
  const size_t complete = full.find(" 1024 ") + 6;
  for (size_t len = 0; len <= full.size(); ++len) {
    SCOPED_TRACE(len);
    Write(absl::StrCat(kPid, "/stat"), full.substr(0, len));
    absl::StatusOr<ProcessStats> s = Read();
    if (len < complete) {
      EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
    } else {
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ(s->resident_memory_bytes, 1024u * PageSize());
    }
  }
}

TEST_F(FakeProcTest, MalformedStat) {
  ExpectMalformedStat("", "no ' (' after the pid");
  ExpectMalformedStat("4242", "no ' (' after the pid");
  ExpectMalformedStat("4242 worker S 1 2 3", "no ' (' after the pid");
  ExpectMalformedStat(StatLine(4243, "w"), "pid field is not 4242");
  ExpectMalformedStat(StatLine(kPid, "w").replace(0, 4, "x242"), "pid field is not 4242");
  ExpectMalformedStat("4242 (worker S 1 2 3", "no ')' closing");
  ExpectMalformedStat("4242 (w)", "nothing after the command name");
  ExpectMalformedStat("4242 (w)\n", "nothing after the command name");
  ExpectMalformedStat("4242 (w)S 1 2", "nothing after the command name");
  ExpectMalformedStat(StatLine(kPid, "w", 'S', {{14, "-3"}}), "field 14 is not a number");
  ExpectMalformedStat(StatLine(kPid, "w", 'S', {{22, "+3"}}), "field 22 is not a number");
  ExpectMalformedStat(StatLine(kPid, "w", 'S', {{23, "0x10"}}), "field 23 is not a number");
  ExpectMalformedStat(StatLine(kPid, "w", 'S', {{10, "18446744073709551616"}}),
                      "field 10 is not a number");
  ExpectMalformedStat(StatLine(kPid, "w", 'S', {{12, ""}}), "field 12 missing");
  std::string with_state = StatLine(kPid, "w", 'S');
  with_state.replace(with_state.find(") S ") + 2, 1, "SS");
  ExpectMalformedStat(with_state, "state (field 3)");
  // Over the 4 KiB cap: a padded comm.
  ExpectMalformedStat(StatLine(kPid, std::string(5000, 'x')), "longer than 4096 bytes");
}

TEST_F(FakeProcTest, GarbageStatIsAnErrorNeverACrash) {
  std::mt19937 rng(20240611);
  for (int iter = 0; iter < 300; ++iter) {
    std::string junk(rng() % 700, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    Write(absl::StrCat(kPid, "/stat"), junk);
    absl::StatusOr<ProcessStats> s = Read();
    EXPECT_TRUE(absl::IsDataLoss(s.status())) << iter << ": " << s.status();
  }
  // Single-byte corruptions of a good line may still parse (a digit for a digit), but never
  // give anything other than a result or DataLoss.
  const std::string good = StatLine(kPid, "w");
  for (int iter = 0; iter < 300; ++iter) {
    std::string bad = good;
    bad[rng() % bad.size()] = static_cast<char>(rng());
    Write(absl::StrCat(kPid, "/stat"), bad);
    absl::StatusOr<ProcessStats> s = Read();
    EXPECT_TRUE(s.ok() || absl::IsDataLoss(s.status())) << iter << ": " << s.status();
  }
}

TEST_F(FakeProcTest, MalformedStatus) {
  const std::string path = PathOf(absl::StrCat(kPid, "/status"));
  struct Case {
    std::string content;
    std::string why;
  } const cases[] = {
      {"", "no Threads: line"},
      {StatusFile("x"), "bad value for Threads:"},
      {StatusFile("-1"), "bad value for Threads:"},
      {StatusFile("7", ""), "bad value for voluntary_ctxt_switches:"},
      {StatusFile("7", "1", "2 3"), "bad value for nonvoluntary_ctxt_switches:"},
      {"Threads:\t1\nvoluntary_ctxt_switches:\t2\n", "no nonvoluntary_ctxt_switches: line"},
      {StatusFile("7", "1", "2", "12"), "bad value for VmRSS:"},
      {StatusFile("7", "1", "2", "12 MB"), "bad value for VmRSS:"},
      {StatusFile("7", "1", "2", "-1 kB"), "bad value for VmRSS:"},
      {StatusFile("7", "1", "2", "18446744073709551615 kB"), "bad value for VmRSS:"},
      {std::string(70000, '\n'), "longer than 65536 bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.why);
    Write(absl::StrCat(kPid, "/status"), c.content);
    absl::StatusOr<ProcessStats> s = Read();
    EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
    EXPECT_THAT(s.status().message(), HasSubstr(path));
    EXPECT_THAT(s.status().message(), HasSubstr(c.why));
  }
}

TEST_F(FakeProcTest, OverlongStatusLinesAreSkipped) {
  // A line longer than the reader's window (huge Mems_allowed) before and after the keys, and
  // a last line without '\n'.
  Write(absl::StrCat(kPid, "/status"),
        absl::StrCat("Mems_allowed:\t", std::string(10000, '0'), "\nThreads:\t3\n",
                     "Cpus_allowed:\t", std::string(9000, 'f'),
                     "\nvoluntary_ctxt_switches:\t8\nnonvoluntary_ctxt_switches:\t9"));
  absl::StatusOr<ProcessStats> s = Read();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->threads, 3u);
  EXPECT_EQ(s->voluntary_context_switches, 8u);
  EXPECT_EQ(s->involuntary_context_switches, 9u);
  // ... but a key inside an overlong line is not trusted.
  Write(absl::StrCat(kPid, "/status"),
        absl::StrCat("Threads:\t", std::string(5000, '1'),
                     "\nvoluntary_ctxt_switches:\t8\nnonvoluntary_ctxt_switches:\t9\n"));
  EXPECT_THAT(Read().status().message(), HasSubstr("no Threads: line"));
}

TEST_F(FakeProcTest, MalformedLimits) {
  Write(absl::StrCat(kPid, "/limits"), "Limit  Soft Limit  Hard Limit  Units\n");
  EXPECT_THAT(Read().status().message(), HasSubstr("no 'Max open files' line"));
  EXPECT_TRUE(absl::IsDataLoss(Read().status()));
  Write(absl::StrCat(kPid, "/limits"), LimitsFile("lots"));
  EXPECT_THAT(Read().status().message(), HasSubstr("bad 'Max open files' soft limit"));
  Write(absl::StrCat(kPid, "/limits"), "Max open files            \n");
  EXPECT_THAT(Read().status().message(), HasSubstr("bad 'Max open files' soft limit"));
}

TEST_F(FakeProcTest, EndlessOrBlockingFilesDoNotHang) {
  // An endless file is cut off at the cap.
  std::filesystem::remove(PathOf(absl::StrCat(kPid, "/status")));
  std::filesystem::create_symlink("/dev/zero", PathOf(absl::StrCat(kPid, "/status")));
  absl::StatusOr<ProcessStats> s = Read();
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("longer than 65536 bytes"));

  std::filesystem::remove(PathOf(absl::StrCat(kPid, "/stat")));
  std::filesystem::create_symlink("/dev/zero", PathOf(absl::StrCat(kPid, "/stat")));
  EXPECT_THAT(Read().status().message(), HasSubstr("longer than 4096 bytes"));

  // A FIFO with no writer reads as empty instead of blocking.
  std::filesystem::remove(PathOf(absl::StrCat(kPid, "/stat")));
  ASSERT_EQ(mkfifo(PathOf(absl::StrCat(kPid, "/stat")).c_str(), 0600), 0);
  EXPECT_TRUE(absl::IsDataLoss(Read().status())) << Read().status();

  // A plain file where the fd directory should be.
  AddProcess(kPid, StatLine(kPid, "w"));
  std::filesystem::remove_all(PathOf(absl::StrCat(kPid, "/fd")));
  Write(absl::StrCat(kPid, "/fd"), "not a directory");
  EXPECT_TRUE(absl::IsInternal(Read().status())) << Read().status();
  EXPECT_THAT(Read().status().message(), HasSubstr("Not a directory"));
}

TEST_F(FakeProcTest, OverlongRootIsInvalidArgument) {
  ProcRoot long_root{std::string(5000, 'a')};
  EXPECT_TRUE(absl::IsInvalidArgument(ReadProcessStats(kPid, long_root).status()));
}

}  // namespace
}  // namespace shmetrics::process
