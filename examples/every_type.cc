// every_type --heap NAME: a heap holding a labelled series of every metric type, with units,
// help text and label values that need escaping, exemplars and special values. Prints "ready"
// once everything exists, keeps updating until SIGTERM or SIGINT, then removes the heap and
// exits 0. The reference input for format tests: `shmetrics dump --heap NAME` shows every type.
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "shmetrics/error.h"
#include "shmetrics/registry.h"

int main(int argc, char** argv) {
  std::string name;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--heap") == 0 && i + 1 < argc) {
      name = argv[++i];
    } else if (std::strcmp(argv[i], "--help") == 0) {
      std::printf("usage: every_type --heap NAME\n");
      return 0;
    }
  }
  if (name.empty()) {
    std::fprintf(stderr, "every_type: --heap NAME is required\n");
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  try {
    auto heap = shmetrics::Heap::Create(name);
    shmetrics::Registry registry(heap);
    const char* tricky = "back\\slash \"quoted\"\nnew line";
    auto& counter =
        registry.AddCounter("requests", "Requests with \\ and \"quotes\"\nand a newline", {"path"});
    auto& gauge = registry.AddGauge("temperature", "Temperature", {"sensor"}, {.unit = "celsius"});
    auto& per_worker = registry.AddGauge("queue_depth", "Queue depth of each worker", {"queue"},
                                         {.mode = shmetrics::GaugeMode::kAll});
    auto& histogram = registry.AddHistogram("latency", "Latency", {"route"},
                                            {.unit = "seconds", .buckets = {0.01, 0.1, 1}});
    auto& summary = registry.AddSummary("payload", "Payload sizes", {"kind"}, {.unit = "bytes"});
    auto& info = registry.AddInfo("build", "Build information", {"version", "revision"});
    auto& state = registry.AddStateSet("mode", "Operating mode", {"component"},
                                       {"starting", "serving", "draining"});
    auto& quantiles = registry.AddSummary("rpc_latency", "RPC latency with quantiles", {"method"},
                                          {.unit = "seconds", .quantiles = {0.5, 0.9, 0.99}});
    auto& timer = registry.AddTimer("db_query", "Database queries", {"table"});
    auto& dist = registry.AddDistributionSummary("batch_size", "Items per batch", {"queue"},
                                                 {.unit = "items"});
    auto& max_gauge =
        registry.AddMaxGauge("queue_peak", "Deepest queue since the last scrape", {"queue"});
    auto& age =
        registry.AddAgeGauge("last_refresh", "Seconds since the cache was refreshed", {"cache"});
    auto& ttl_gauge = registry.AddGauge("heartbeat_value", "A gauge with a time-to-live",
                                        {"source"}, {.ttl = shmetrics::kSpectatorGaugeTtl});
    auto& pct_timer = registry.AddPercentileTimer(
        "fetch", "Fetch latency", {"backend"},
        {.min = std::chrono::milliseconds(1), .max = std::chrono::seconds(10)});
    auto& pct_dist = registry.AddPercentileDistributionSummary("response", "Response sizes",
                                                               {"route"}, {.unit = "bytes"});
    auto& native = registry.AddNativeHistogram("rpc_duration", "RPC latency, native buckets",
                                               {"method"}, {.unit = "seconds"});
    info.Labels("1.0.0", "abc123");
    counter.Labels(tricky).IncWithExemplar(1, {{"trace_id", "4bf92f3577b34da6"}});
    gauge.Labels("inf").Set(std::numeric_limits<double>::infinity());
    gauge.Labels("minus_inf").Set(-std::numeric_limits<double>::infinity());
    gauge.Labels("nan").Set(std::nan(""));
    gauge.Labels("small").Set(1e-300);
    per_worker.Labels("mail").Set(3);
    state.Labels("api").SetOnly("serving");
    age.Labels("users").Reset();
    ttl_gauge.Labels("alive").Set(1);
    ttl_gauge.Labels("gone").Set(std::nan(""));  // not exposed: NaN under a ttl
    native.Labels("Get").Observe(0.0042);        // exposed from "ready" on
    std::printf("ready\n");
    std::fflush(stdout);
    timespec tick{0, 100 * 1000 * 1000};
    for (int i = 0;; ++i) {
      const int sig = sigtimedwait(&stop, nullptr, &tick);
      if (sig == SIGTERM || sig == SIGINT) break;
      counter.Labels("/").Inc();
      counter.Labels("/frac").Inc(0.5);
      gauge.Labels("room").Set(20 + i % 5);
      histogram.Labels("/api").ObserveWithExemplar(0.001 * (i % 2000),
                                                   {{"trace_id", std::to_string(i)}});
      summary.Labels("json").Observe(100 + i % 50);
      quantiles.Labels("Get").Observe(0.001 * (1 + i % 100));
      timer.Labels("users").Record(std::chrono::microseconds(100 + i % 900));
      dist.Labels("mail").Record(i % 64);
      max_gauge.Labels("mail").Set(i % 17);
      pct_timer.Labels("s3").Record(std::chrono::microseconds(500 * (1 + i % 40)));
      pct_dist.Labels("/api").Record(1000 + 37 * (i % 300));
      native.Labels("Get").ObserveWithExemplar(0.0001 * (1 + i % 3000),
                                               {{"trace_id", std::to_string(i)}});
    }
    shmetrics::Heap::Remove(name);
    return 0;
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "every_type: %s\n", e.what());
    return 1;
  }
}
