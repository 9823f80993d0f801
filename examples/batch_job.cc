// A batch job that leaves its results in a Prometheus Pushgateway: it creates a heap, forks
// workers that each process a share of the rows, and when they are done pushes the heap once
// (shmetrics::PushToGateway, see shmetrics/push.h) and removes it.
//
//   batch_job PUSHGATEWAY_URL [--job J] [--instance I] [--workers N] [--rows R]
//
// Exits 0 when the Pushgateway accepted the push, 1 with its answer on stderr otherwise.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shmetrics/error.h"
#include "shmetrics/push.h"
#include "shmetrics/registry.h"

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: batch_job PUSHGATEWAY_URL [--job J] [--instance I] [--workers N] "
                 "[--rows R]\n");
    return 2;
  }
  const std::string url = argv[1];
  std::string job = "batch_job", instance;
  int workers = 2, rows = 1000;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--job") == 0) job = argv[i + 1];
    if (std::strcmp(argv[i], "--instance") == 0) instance = argv[i + 1];
    if (std::strcmp(argv[i], "--workers") == 0) workers = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rows") == 0) rows = std::atoi(argv[i + 1]);
  }
  const std::string name = "batch-job-" + std::to_string(getpid());
  int rc = 0;
  try {
    auto heap = shmetrics::Heap::Create(name);
    shmetrics::Registry registry(heap);
    auto& processed = registry.AddCounter("batch_rows_processed", "Rows processed", {"table"});
    auto& duration =
        registry.AddHistogram("batch_row_duration", "Time per row", {}, {.unit = "seconds"});
    auto& finished = registry.AddGauge("batch_last_success", "When the job last finished", {},
                                       {.unit = "seconds"});

    std::vector<pid_t> pids;
    for (int w = 0; w < workers; ++w) {
      const pid_t pid = fork();
      if (pid == 0) {
        heap.AttachWorker();
        for (int r = w; r < rows; r += workers) {
          processed.Labels(r % 3 == 0 ? "orders" : "users").Inc();
          duration.Labels().Observe(0.0001 * (r % 7));
        }
        _exit(0);
      }
      pids.push_back(pid);
    }
    for (pid_t p : pids) {
      int status = 0;
      waitpid(p, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
    }
    finished.Labels().SetToCurrentTime();

    // At the end: one push of everything the workers recorded, replacing the group.
    shmetrics::PushGatewayOptions options{.job = job};
    if (!instance.empty()) options.grouping.emplace_back("instance", instance);
    shmetrics::PushToGateway(url, heap, options);
    std::printf("pushed %d rows of %d workers to %s\n", rows, workers, url.c_str());
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "batch_job: %s\n", e.what());
    rc = 1;
  }
  try {
    shmetrics::Heap::Remove(name);
  } catch (const shmetrics::Error&) {
  }
  return rc;
}
