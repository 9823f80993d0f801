// A small pre-fork demo: the master creates a heap and registers metrics, four forked workers
// update them, one worker is killed and respawned under the same worker id, and the master
// prints the totals, which include every update of every worker, dead or alive.
//
//   fork_demo [--workers N] [--requests R]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shmetrics/error.h"
#include "shmetrics/registry.h"

namespace {

int Worker(shmetrics::Heap heap, shmetrics::CounterFamily& requests,
           shmetrics::HistogramFamily& latency, int count, int write_fd) {
  const uint32_t id = heap.AttachWorker();
  const char* codes[] = {"200", "404", "500"};
  for (int i = 0; i < count; ++i) {
    requests.Labels("GET", codes[i % 10 == 0 ? (i % 20 == 0 ? 2 : 1) : 0]).Inc();
    latency.Labels().Observe(0.001 * (i % 50));
  }
  const uint32_t msg[2] = {static_cast<uint32_t>(getpid()), id};
  (void)!write(write_fd, msg, sizeof msg);
  pause();  // stay alive until the master stops us
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 4, count = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--workers") == 0) workers = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--requests") == 0) count = std::atoi(argv[i + 1]);
  }
  const std::string name = "fork-demo-" + std::to_string(getpid());
  try {
    auto heap = shmetrics::Heap::Create(name);
    shmetrics::Registry registry(heap);
    auto& requests = registry.AddCounter("http_requests", "Requests served", {"method", "code"});
    auto& latency =
        registry.AddHistogram("http_request_duration", "Request latency", {}, {.unit = "seconds"});
    int pipefd[2];
    if (pipe(pipefd) != 0) return 1;
    auto spawn = [&] {
      const pid_t pid = fork();
      if (pid == 0) _exit(Worker(heap, requests, latency, count, pipefd[1]));
      return pid;
    };
    std::vector<pid_t> pids;
    for (int w = 0; w < workers; ++w) pids.push_back(spawn());
    std::vector<uint32_t> ids(workers);
    for (int w = 0; w < workers; ++w) {
      uint32_t msg[2];
      if (read(pipefd[0], msg, sizeof msg) != sizeof msg) return 1;
      for (int k = 0; k < workers; ++k) {
        if (static_cast<uint32_t>(pids[k]) == msg[0]) ids[k] = msg[1];
      }
    }
    std::printf("heap /dev/shm/shmetrics.%s: %d workers did %d requests each\n", name.c_str(),
                workers, count);
    // Kill a worker and respawn it: the replacement gets the same id and the dead worker's
    // counts stay in the totals.
    kill(pids[1], SIGKILL);
    waitpid(pids[1], nullptr, 0);
    const pid_t dead = pids[1];
    pids[1] = spawn();
    uint32_t msg[2];
    if (read(pipefd[0], msg, sizeof msg) != sizeof msg) return 1;
    std::printf("worker id %u (pid %d) was killed; its replacement (pid %u) took worker id %u\n",
                ids[1], dead, msg[0], msg[1]);
    for (pid_t p : pids) kill(p, SIGTERM);
    for (pid_t p : pids) waitpid(p, nullptr, 0);

    double total = 0;
    for (const char* code : {"200", "404", "500"}) {
      const double v = requests.Labels("GET", code).Value();
      total += v;
      std::printf("http_requests_total{method=\"GET\",code=\"%s\"} %.0f\n", code, v);
    }
    std::printf("sum of http_requests_total: %.0f (expected %d)\n", total, (workers + 1) * count);
    std::printf("http_request_duration_seconds_count %llu\n",
                static_cast<unsigned long long>(latency.Labels().Count()));
    const auto usage = heap.usage();
    std::printf("heap: %llu bytes used, %llu committed, %llu max\n",
                static_cast<unsigned long long>(usage.used_bytes),
                static_cast<unsigned long long>(usage.committed_bytes),
                static_cast<unsigned long long>(usage.max_bytes));
    shmetrics::Heap::Remove(name);
    return total == (workers + 1) * count ? 0 : 1;
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "fork_demo: %s\n", e.what());
    return 1;
  }
}
