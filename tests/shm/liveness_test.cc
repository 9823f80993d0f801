#include "shm/liveness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "util/subprocess.h"

namespace shmetrics::shm {
namespace {

using ::shmetrics::testing::BlockedChild;

// A /proc/<pid>/stat line: field i (4..52) is 1000 + i unless overridden.
std::string StatLine(pid_t pid, const std::string& comm, char state = 'S',
                     const std::map<int, std::string>& overrides = {}) {
  std::string line = absl::StrCat(pid, " (", comm, ") ", std::string(1, state));
  for (int i = 4; i <= 52; ++i) {
    auto it = overrides.find(i);
    absl::StrAppend(&line, " ", it != overrides.end() ? it->second : std::to_string(1000 + i));
  }
  return line + "\n";
}

TEST(ProcessRunning, RunningChildIsAliveAndZombieIsNot) {
  EXPECT_TRUE(ProcessRunning(getpid(), 0));
  EXPECT_TRUE(ProcessRunning(getpid(), ProcessStartTicks(getpid())));

  BlockedChild child = BlockedChild::Start();
  EXPECT_TRUE(ProcessRunning(child.pid, 0));
  const uint64_t ticks = ProcessStartTicks(child.pid);
  ASSERT_NE(ticks, 0u);
  EXPECT_TRUE(ProcessRunning(child.pid, ticks));
  // Other start ticks name another process that had the pid: not this one.
  EXPECT_FALSE(ProcessRunning(child.pid, ticks + 1));

  // Let it exit, and wait for that without reaping it: it stays a zombie.
  close(child.release_fd);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child.pid, &info, WEXITED | WNOWAIT), 0);
  EXPECT_FALSE(ProcessRunning(child.pid, 0));
  EXPECT_FALSE(ProcessRunning(child.pid, ticks));
  // Its start ticks still name it, so a reused pid would be told apart.
  EXPECT_EQ(ProcessStartTicks(child.pid), ticks);

  int status = 0;
  ASSERT_EQ(waitpid(child.pid, &status, 0), child.pid);
  EXPECT_FALSE(ProcessRunning(child.pid, 0));
  EXPECT_EQ(ProcessStartTicks(child.pid), 0u);
}

TEST(ProcessRunning, ReapedChildIsGone) {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(ProcessStartTicks(pid), 0u);
  EXPECT_FALSE(ProcessRunning(pid, 0));
}

TEST(ProcessRunning, InvalidPid) {
  EXPECT_FALSE(ProcessRunning(0, 0));
  EXPECT_FALSE(ProcessRunning(-1, 0));
  EXPECT_EQ(ProcessStartTicks(0), 0u);
}

TEST(ProcessStartTicks, StableAndOrderedByStart) {
  const uint64_t self1 = ProcessStartTicks(getpid());
  const uint64_t self2 = ProcessStartTicks(getpid());
  ASSERT_NE(self1, 0u);
  EXPECT_EQ(self1, self2);

  BlockedChild child = BlockedChild::Start();
  const uint64_t c = ProcessStartTicks(child.pid);
  child.StopAndReap();
  ASSERT_NE(c, 0u);
  EXPECT_GE(c, self1);
}

TEST(ParseProcStat, StateAndStartTicks) {
  char state = 0;
  uint64_t ticks = 0;
  ASSERT_TRUE(ParseProcStat(StatLine(4242, "worker", 'R').c_str(), &state, &ticks));
  EXPECT_EQ(state, 'R');
  EXPECT_EQ(ticks, 1022u);
}

TEST(ParseProcStat, CommWithParenthesesSpacesAndNewlines) {
  for (std::string comm : {") (", "a) (b c", "x) R 1 2 3 (y", "))", "(", "", " ", "two\nlines) S 9",
                           "z) Z 1", "w) Z ("}) {
    SCOPED_TRACE(absl::StrCat("comm: '", comm, "'"));
    char state = 0;
    uint64_t ticks = 0;
    ASSERT_TRUE(ParseProcStat(StatLine(4242, comm, 'S').c_str(), &state, &ticks));
    EXPECT_EQ(state, 'S');
    EXPECT_EQ(ticks, 1022u);
  }
}

TEST(ParseProcStat, MalformedIsRejected) {
  for (std::string stat : {"", "4242", "4242 worker S 1 2 3", "4242 (worker S 1 2 3", "4242 (w)",
                           "4242 (w)S 1 2", "4242 (w) S 1 2 3"}) {
    SCOPED_TRACE(absl::StrCat("stat: '", stat, "'"));
    char state = 0;
    uint64_t ticks = 0;
    EXPECT_FALSE(ParseProcStat(stat.c_str(), &state, &ticks));
  }
}

TEST(RunningState, ZombieAndDeadStatesAreNotRunning) {
  const std::pair<char, bool> cases[] = {{'R', true},  {'S', true},  {'D', true},
                                         {'T', true},  {'t', true},  {'I', true},
                                         {'Z', false}, {'X', false}, {'x', false}};
  for (auto [state, running] : cases) EXPECT_EQ(RunningState(state), running) << state;
}

}  // namespace
}  // namespace shmetrics::shm
