// shmetrics_mpbench: cross-process contention on one counter, beside a bare atomic.
//
// Usage: shmetrics_mpbench [--procs N] [--seconds S] [--reps R]
//
// For each mode below, runs the update loop in 1 and then in N forked processes (side by side,
// interleaved over R repetitions) for S seconds each, and prints the median total updates per
// second and the scaling from 1 to N processes, and the same per CPU-second the processes got
// (on a machine whose cores are busy with other work, N processes may not run at once; the
// "processes running at once" column says how many did, and the CPU-second rate shows what an
// update costs when they do):
//   bare shared atomic      fetch_add on one atomic in MAP_SHARED memory (the hardware)
//   bare atomic per process each process its own atomic on its own cache line
//   counter, shared cell    one shmetrics Counter, all processes on its one cell
//   counter, striped        CounterOptions::striped: each worker (Heap::AttachWorker) its line
//   counter per process     a family with one child per process (label proc="<i>")
// Every run checks that the counter holds exactly the updates the processes counted.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "shmetrics/counter.h"

namespace shmetrics::bench {
namespace {

constexpr int kMaxProcs = 64;
constexpr uint64_t kBatch = 1024;  // updates between looks at the stop flag

// Shared between the parent and the children (MAP_SHARED | MAP_ANONYMOUS).
struct Control {
  alignas(64) std::atomic<int> ready{0};
  alignas(64) std::atomic<int> go{0};
  alignas(64) std::atomic<int> stop{0};
  alignas(64) PaddedAtomic bare_shared;
  PaddedAtomic bare_own[kMaxProcs];
  alignas(64) uint64_t done[kMaxProcs] = {};
  uint64_t cpu_ns[kMaxProcs] = {};  // CPU time each process spent in its loop
};

uint64_t CpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

enum class Mode { kBareShared, kBareOwn, kCounterShared, kCounterStriped, kCounterPerProc };
constexpr Mode kModes[] = {Mode::kBareShared, Mode::kBareOwn, Mode::kCounterShared,
                           Mode::kCounterStriped, Mode::kCounterPerProc};

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kBareShared:
      return "bare shared atomic";
    case Mode::kBareOwn:
      return "bare atomic per process";
    case Mode::kCounterShared:
      return "counter, shared cell";
    case Mode::kCounterStriped:
      return "counter, striped";
    case Mode::kCounterPerProc:
      return "counter per process";
  }
  return "?";
}

template <typename Inc>
uint64_t Loop(Control* ctl, int p, Inc inc) {
  ctl->ready.fetch_add(1);
  while (ctl->go.load(std::memory_order_acquire) == 0) {
  }
  const uint64_t cpu_start = CpuNanos();
  uint64_t n = 0;
  while (ctl->stop.load(std::memory_order_relaxed) == 0) {
    for (uint64_t i = 0; i < kBatch; ++i) inc();
    n += kBatch;
  }
  ctl->cpu_ns[p] = CpuNanos() - cpu_start;
  return n;
}

struct Rates {
  double per_second;      // total updates per wall-clock second
  double per_cpu_second;  // total updates per CPU-second the processes got
  double parallelism;     // CPU-seconds per wall-clock second: how many ran at once
};

// Runs `procs` children for `seconds`; returns the rates, per_second < 0 on failure.
Rates Run(Mode mode, int procs, double seconds) {
  void* mem =
      mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return {-1, 0, 0};
  auto* ctl = new (mem) Control();
  Fixture fx;
  Counter shared = fx.registry->AddCounter("shared", "One cell").Labels();
  Counter striped = fx.registry->AddCounter("striped", "Striped", {}, {.striped = true}).Labels();
  auto& per_proc = fx.registry->AddCounter("per_proc", "One per process", {"proc"});
  std::vector<pid_t> pids;
  for (int p = 0; p < procs; ++p) {
    const pid_t pid = fork();
    if (pid < 0) break;
    if (pid == 0) {
      uint64_t n = 0;
      switch (mode) {
        case Mode::kBareShared:
          n = Loop(ctl, p, [&] { ctl->bare_shared.v.fetch_add(1, std::memory_order_relaxed); });
          break;
        case Mode::kBareOwn: {
          std::atomic<uint64_t>& mine = ctl->bare_own[p].v;
          n = Loop(ctl, p, [&] { mine.fetch_add(1, std::memory_order_relaxed); });
          break;
        }
        case Mode::kCounterShared:
          n = Loop(ctl, p, [&] { shared.Inc(); });
          break;
        case Mode::kCounterStriped:
          fx.heap.AttachWorker();
          n = Loop(ctl, p, [&] { striped.Inc(); });
          break;
        case Mode::kCounterPerProc: {
          Counter mine = per_proc.Labels(std::to_string(p));
          n = Loop(ctl, p, [&] { mine.Inc(); });
          break;
        }
      }
      ctl->done[p] = n;
      _exit(0);
    }
    pids.push_back(pid);
  }
  bool ok = static_cast<int>(pids.size()) == procs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ok && ctl->ready.load() < procs) {
    if (std::chrono::steady_clock::now() > deadline) ok = false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto start = std::chrono::steady_clock::now();
  ctl->go.store(1, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  ctl->stop.store(1);
  const auto end = std::chrono::steady_clock::now();
  for (pid_t pid : pids) {
    int status = 0;
    if (!ok) kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ok = false;
    }
  }
  uint64_t total = 0, cpu_ns = 0;
  for (int p = 0; p < procs; ++p) {
    total += ctl->done[p];
    cpu_ns += ctl->cpu_ns[p];
  }
  // Every update the children counted must be in the meter.
  uint64_t recorded = total;
  switch (mode) {
    case Mode::kBareShared:
      recorded = ctl->bare_shared.v.load();
      break;
    case Mode::kBareOwn:
      recorded = 0;
      for (int p = 0; p < procs; ++p) recorded += ctl->bare_own[p].v.load();
      break;
    case Mode::kCounterShared:
      recorded = static_cast<uint64_t>(shared.Value());
      break;
    case Mode::kCounterStriped:
      recorded = static_cast<uint64_t>(striped.Value());
      break;
    case Mode::kCounterPerProc:
      recorded = 0;
      for (int p = 0; p < procs; ++p) {
        recorded += static_cast<uint64_t>(per_proc.Labels(std::to_string(p)).Value());
      }
      break;
  }
  munmap(mem, sizeof(Control));
  if (!ok) {
    std::fprintf(stderr, "mpbench: a worker process failed\n");
    return {-1, 0, 0};
  }
  if (recorded != total) {
    std::fprintf(stderr, "mpbench: %s recorded %llu updates of %llu\n", ModeName(mode),
                 static_cast<unsigned long long>(recorded), static_cast<unsigned long long>(total));
    return {-1, 0, 0};
  }
  const double wall = std::chrono::duration<double>(end - start).count();
  const double cpu = static_cast<double>(cpu_ns) / 1e9;
  return {static_cast<double>(total) / wall, cpu > 0 ? static_cast<double>(total) / cpu : 0,
          cpu / wall};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int Usage() {
  std::fprintf(stderr,
               "usage: shmetrics_mpbench [--procs N (1..%d, default 2)] [--seconds S (default 1)]"
               " [--reps R (default 5)]\n",
               kMaxProcs);
  return 2;
}

int Main(int argc, char** argv) {
  int procs = 2, reps = 5;
  double seconds = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (a == "--procs") {
      procs = std::atoi(v);
    } else if (a == "--seconds") {
      seconds = std::atof(v);
    } else if (a == "--reps") {
      reps = std::atoi(v);
    } else {
      return Usage();
    }
  }
  if (procs < 1 || procs > kMaxProcs || !(seconds > 0 && seconds <= 600) || reps < 1 ||
      reps > 100) {
    return Usage();
  }
  std::vector<int> counts = {1};
  if (procs > 1) counts.push_back(procs);
  // samples[mode][count index][rate]: one value per repetition.
  std::vector<std::vector<std::array<std::vector<double>, 3>>> samples(
      std::size(kModes), std::vector<std::array<std::vector<double>, 3>>(counts.size()));
  for (int r = 0; r < reps; ++r) {
    for (size_t m = 0; m < std::size(kModes); ++m) {
      for (size_t c = 0; c < counts.size(); ++c) {
        const Rates rates = Run(kModes[m], counts[c], seconds);
        if (rates.per_second < 0) return 1;
        samples[m][c][0].push_back(rates.per_second);
        samples[m][c][1].push_back(rates.per_cpu_second);
        samples[m][c][2].push_back(rates.parallelism);
      }
    }
  }
  std::printf("shmetrics_mpbench: %d processes, %g s per run, median of %d runs, %u CPUs\n\n",
              procs, seconds, reps, std::thread::hardware_concurrency());
  std::printf(
      "| mode | procs | total updates/s | total vs 1 process | processes running at once |"
      " updates per CPU-second | per CPU-second vs 1 process |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (size_t m = 0; m < std::size(kModes); ++m) {
    const double one = Median(samples[m][0][0]), one_cpu = Median(samples[m][0][1]);
    for (size_t c = 0; c < counts.size(); ++c) {
      const double total = Median(samples[m][c][0]), cpu = Median(samples[m][c][1]);
      std::printf("| %s | %d | %.1fM | %.2fx | %.2f | %.1fM | %.2fx |\n", ModeName(kModes[m]),
                  counts[c], total / 1e6, total / one, Median(samples[m][c][2]), cpu / 1e6,
                  cpu / one_cpu);
    }
  }
  return 0;
}

}  // namespace
}  // namespace shmetrics::bench

int main(int argc, char** argv) { return shmetrics::bench::Main(argc, argv); }
