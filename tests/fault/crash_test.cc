// Fault injection: workers that update counters, histograms and labelled children and create new
// series are SIGKILLed at random moments, hundreds of times, while a collector scrapes without
// pause. Nothing a dead worker leaves behind may block the others, break a scrape, make a counter
// go down, or lose an update the worker reported as completed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "collect/collector.h"
#include "fault/snapshot_helpers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::Shell;
using ::shmetrics::testing::Snapshot;
using ::shmetrics::testing::SnapshotEncoder;
using Clock = std::chrono::steady_clock;

using ::shmetrics::testing::kSanitized;

// What a worker has completed so far, written to its pipe after every update. 32 bytes, below
// PIPE_BUF, so a write is all or nothing even when the worker dies in it.
struct Progress {
  uint64_t ops = 0;       // fault_ops_total: Inc() or IncWithExemplar() on a held handle
  uint64_t labelled = 0;  // fault_labelled_total: Labels(slot).Inc(), a lookup each time
  uint64_t observed = 0;  // fault_latency_seconds: Labels(route).Observe(v)
  uint64_t created = 0;   // fault_series_total: a new child, created and incremented once
};
static_assert(sizeof(Progress) <= PIPE_BUF);

struct Worker {
  pid_t pid = 0;
  int fd = -1;  // read end of its progress pipe
  Progress last;
  Clock::time_point last_heard;
  std::string partial;  // bytes of an incomplete record
};

class CrashTest : public testing::HeapTest {
 protected:
  void SetUp() override {
    CreateHeap("crash", {.max_workers = 16});
    ops_ = &registry_->AddCounter("fault_ops", "Updates on a held handle");
    labelled_ = &registry_->AddCounter("fault_labelled", "Updates through a lookup", {"slot"});
    latency_ = &registry_->AddHistogram("fault_latency_seconds", "Observations", {"route"},
                                        {.buckets = {0.001, 0.01, 0.1, 1}});
    series_ = &registry_->AddCounter("fault_series", "One child per creation", {"id"},
                                     {.max_children = 1000000});
  }

  // The body of a worker: attach, register again, then update forever (until killed), telling
  // the parent through `fd` after each completed update.
  [[noreturn]] void RunWorker(int fd, uint32_t seed) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    heap_->AttachWorker();  // the worker table lock
    // A registry of its own, as a worker that registers after fork() would: the same families.
    Registry mine(*heap_);
    auto& ops = mine.AddCounter("fault_ops", "Updates on a held handle");
    auto& labelled = mine.AddCounter("fault_labelled", "Updates through a lookup", {"slot"});
    auto& latency = *latency_;  // and the inherited ones work as well
    auto& series = *series_;
    // A family only some workers create: registration under the heap lock.
    mine.AddGauge("fault_family_" + std::to_string(seed % 8), "Created by whoever comes first");
    Counter held = ops.Labels();
    std::mt19937 rng(seed);
    Progress p;
    const std::string me = std::to_string(getpid());
    for (uint64_t i = 0;; ++i) {
      const uint32_t r = rng() % 1000;
      if (r < 1) {
        series.Labels(me + "-" + std::to_string(p.created)).Inc();
        ++p.created;
      } else if (r < 20) {
        held.IncWithExemplar(1, {{"trace_id", std::to_string(i)}});  // the exemplar lock
        ++p.ops;
      } else if (r < 400) {
        held.Inc();
        ++p.ops;
      } else if (r < 700) {
        labelled.Labels(std::to_string(rng() % 8)).Inc();
        ++p.labelled;
      } else {
        latency.Labels(r % 2 == 0 ? "/a" : "/b").Observe((rng() % 2000) / 1000.0);
        ++p.observed;
      }
      if (write(fd, &p, sizeof p) != sizeof p || Clock::now() > give_up) _exit(3);
    }
  }

  // Forks a worker with a fresh progress pipe.
  Worker Spawn(uint32_t seed) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      RunWorker(fds[1], seed);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    Worker w;
    w.pid = pid;
    w.fd = fds[0];
    w.last_heard = Clock::now();
    return w;
  }

  // Reads whatever the worker has written; returns false at end of file.
  static bool Drain(Worker& w) {
    char buf[4096];
    for (;;) {
      const ssize_t n = read(w.fd, buf, sizeof buf);
      if (n == 0) return false;
      if (n < 0) return true;  // EAGAIN: nothing more for now
      w.partial.append(buf, static_cast<size_t>(n));
      const size_t whole = w.partial.size() / sizeof(Progress) * sizeof(Progress);
      if (whole > 0) {
        std::memcpy(&w.last, w.partial.data() + whole - sizeof(Progress), sizeof(Progress));
        w.partial.erase(0, whole);
        w.last_heard = Clock::now();
      }
    }
  }

  CounterFamily* ops_ = nullptr;
  CounterFamily* labelled_ = nullptr;
  HistogramFamily* latency_ = nullptr;
  CounterFamily* series_ = nullptr;
};

TEST_F(CrashTest, RandomSigkillsLoseNothingCompletedAndBlockNobody) {
  // The issue asks for at least 500 kills in one run; sanitizer builds, 3-10x slower, do the same
  // number with a shorter life per worker.
  constexpr int kKills = 600;
  constexpr int kLiveWorkers = 3;
  const int max_life_us = kSanitized ? 30000 : 20000;
  // No process may stall for more than a second: not a worker (its progress reports are its
  // heartbeat), not a scrape. Under ASan or TSan five busy processes on a 2-core machine can
  // wait that long for a core without anything blocking them, so those builds allow 3 s.
  constexpr auto kMaxStall = std::chrono::seconds(kSanitized ? 3 : 1);
  // A scrape takes no lock, so its length is CPU time only: under ASan or TSan (3-15x slower)
  // walking the ~10,000 series takes longer than a second without anything being blocked.
  constexpr auto kMaxScrape = std::chrono::seconds(kSanitized ? 10 : 1);

  // --- The collector: scrapes continuously, checks every scrape and each against the last ---
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> collector_problems;  // guarded by mu
  uint64_t scrapes = 0;
  Clock::duration longest_scrape{};
  std::thread collector([&] {
    // An unrelated reader: its own read-only mapping, as `shmetrics serve` would have.
    auto seg = shm::Segment::Open(*shm::Location::ForName(name_), {.read_only = true});
    if (!seg.ok()) {
      std::scoped_lock lock(mu);
      collector_problems.push_back("open: " + seg.status().ToString());
      return;
    }
    Snapshot last;
    while (!stop.load()) {
      Snapshot now;
      SnapshotEncoder enc(&now);
      const auto start = Clock::now();
      const absl::Status s = collect::Collect(**seg, enc);
      const auto took = Clock::now() - start;
      std::vector<std::string> problems = now.problems;
      if (s.ok()) {
        testing::CompareScrapes(last, now, &problems);
      } else {
        problems.push_back("scrape failed: " + s.ToString());
      }
      std::scoped_lock lock(mu);
      ++scrapes;
      longest_scrape = std::max(longest_scrape, took);
      for (auto& p : problems) {
        if (collector_problems.size() < 20) collector_problems.push_back(std::move(p));
      }
      if (s.ok()) last = std::move(now);
    }
  });

  // --- Kill workers at random moments, replace them, keep score ---
  std::mt19937 rng(7);
  std::vector<Worker> live;
  Progress reported;  // of the workers that are gone
  int kills = 0;
  uint32_t next_seed = 1;
  Clock::duration longest_silence{};
  std::vector<std::string> stalls;
  auto account = [&](Worker& w) {
    while (Drain(w)) {  // the worker is dead: read to the end of its pipe
      pollfd pfd{w.fd, POLLIN, 0};
      poll(&pfd, 1, 1000);
    }
    close(w.fd);
    reported.ops += w.last.ops;
    reported.labelled += w.last.labelled;
    reported.observed += w.last.observed;
    reported.created += w.last.created;
  };
  const auto started = Clock::now();
  while (kills < kKills) {
    while (live.size() < kLiveWorkers) live.push_back(Spawn(next_seed++));
    // Let them run for a random while, listening to them.
    const auto until = Clock::now() + std::chrono::microseconds(rng() % max_life_us);
    do {
      std::vector<pollfd> pfds;
      for (const Worker& w : live) pfds.push_back({w.fd, POLLIN, 0});
      poll(pfds.data(), pfds.size(), 1);
      const auto now = Clock::now();
      for (Worker& w : live) {
        Drain(w);
        const auto silence = now - w.last_heard;
        longest_silence = std::max(longest_silence, silence);
        if (silence > kMaxStall && stalls.size() < 10) {
          stalls.push_back("worker " + std::to_string(w.pid) + " silent for " +
                           std::to_string(silence / std::chrono::milliseconds(1)) + " ms");
        }
      }
    } while (Clock::now() < until);
    // SIGKILL one of them, wherever it is.
    const size_t victim = rng() % live.size();
    Worker w = live[victim];
    live.erase(live.begin() + victim);
    ASSERT_EQ(kill(w.pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(w.pid, &status, 0), w.pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "worker " << w.pid << " ended by itself with status " << status;
    account(w);
    ++kills;
  }
  // The survivors are killed too; every worker ends by SIGKILL.
  for (Worker& w : live) {
    ASSERT_EQ(kill(w.pid, SIGKILL), 0);
    ASSERT_EQ(waitpid(w.pid, nullptr, 0), w.pid);
    account(w);
    ++kills;
  }
  const auto elapsed = Clock::now() - started;
  stop = true;
  collector.join();

  // --- Afterwards ---
  {
    std::scoped_lock lock(mu);
    EXPECT_THAT(collector_problems, ::testing::IsEmpty());
    EXPECT_GT(scrapes, 10u);
    EXPECT_LT(longest_scrape, kMaxScrape);
  }
  EXPECT_THAT(stalls, ::testing::IsEmpty());
  EXPECT_LT(longest_silence, kMaxStall);

  Snapshot final_scrape;
  SnapshotEncoder enc(&final_scrape);
  ASSERT_TRUE(collect::Collect(shm::HeapAccess::segment(*heap_), enc).ok());
  EXPECT_THAT(final_scrape.problems, ::testing::IsEmpty());
  // Every update a worker reported is there. An update in flight when its worker was killed may
  // be there too: at most one per kill, since a worker does one update at a time.
  const uint64_t ops = static_cast<uint64_t>(final_scrape.CounterTotal("fault_ops"));
  const uint64_t labelled = static_cast<uint64_t>(final_scrape.CounterTotal("fault_labelled"));
  const uint64_t observed = final_scrape.HistogramCount("fault_latency_seconds");
  const uint64_t created = final_scrape.series["fault_series"];
  EXPECT_GE(ops, reported.ops);
  EXPECT_GE(labelled, reported.labelled);
  EXPECT_GE(observed, reported.observed);
  EXPECT_GE(created, reported.created);
  const uint64_t in_flight = (ops - reported.ops) + (labelled - reported.labelled) +
                             (observed - reported.observed) + (created - reported.created);
  EXPECT_LE(in_flight, static_cast<uint64_t>(kills));
  // Each created child was incremented once right after its creation.
  const uint64_t series_total = static_cast<uint64_t>(final_scrape.CounterTotal("fault_series"));
  EXPECT_GE(series_total, reported.created);
  EXPECT_LE(series_total, created);
  EXPECT_GT(reported.ops, 0u);
  EXPECT_GT(reported.created, 0u);

  EXPECT_TRUE(shm::HeapAccess::segment(*heap_).Verify().ok())
      << shm::HeapAccess::segment(*heap_).Verify();
  EXPECT_TRUE(collect::VerifyMetrics(shm::HeapAccess::segment(*heap_)).ok())
      << collect::VerifyMetrics(shm::HeapAccess::segment(*heap_));
  int rc = -1;
  const std::string out = Shell(std::string(SHMETRICS_BINARY_DIR) +
                                    "/src/shmetrics inspect --heap " + name_ + " --verify 2>&1",
                                &rc);
  EXPECT_EQ(rc, 0) << out;

  // The heap still takes new work from a new process.
  const pid_t after = testing::ForkChild([&] {
    Registry r(*heap_);
    r.AddCounter("fault_after", "After the storm").Labels().Inc();
    series_->Labels("after").Inc();
    return heap_->AttachWorker() < 16 ? 0 : 1;
  });
  EXPECT_EQ(testing::WaitChild(after, std::chrono::seconds(30)), 0);

  std::printf(
      "%d kills in %.1f s; %llu scrapes; reported ops=%llu labelled=%llu observed=%llu "
      "created=%llu; in flight at a kill: %llu; longest silence %lld ms, longest "
      "scrape %lld ms; lock recoveries %llu/%llu/%llu\n",
      kills, std::chrono::duration<double>(elapsed).count(),
      static_cast<unsigned long long>(scrapes), static_cast<unsigned long long>(reported.ops),
      static_cast<unsigned long long>(reported.labelled),
      static_cast<unsigned long long>(reported.observed),
      static_cast<unsigned long long>(reported.created), static_cast<unsigned long long>(in_flight),
      static_cast<long long>(longest_silence / std::chrono::milliseconds(1)),
      static_cast<long long>(longest_scrape / std::chrono::milliseconds(1)),
      static_cast<unsigned long long>(shm::HeapAccess::segment(*heap_).header().lock.recoveries()),
      static_cast<unsigned long long>(
          shm::HeapAccess::segment(*heap_).header().worker_lock.recoveries()),
      static_cast<unsigned long long>(
          shm::HeapAccess::segment(*heap_).header().exemplar_lock.recoveries()));
}

}  // namespace
}  // namespace shmetrics
