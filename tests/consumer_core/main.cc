// Keeps a counter and a histogram in a heap and exposes them, with shmetrics::core alone.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"

namespace {

int failures = 0;

void ExpectHas(const std::string& text, const std::string& line) {
  if (text.find(line) == std::string::npos) {
    std::fprintf(stderr, "missing \"%s\" in:\n%s\n", line.c_str(), text.c_str());
    ++failures;
  }
}

}  // namespace

int main() {
  const std::string name = "consumer-core-" + std::to_string(getpid());
  try {
    auto heap = shmetrics::Heap::Create(name);
    shmetrics::Registry registry(heap);
    auto runs = registry.AddCounter("consumer_runs", "Runs").Labels();
    runs.Inc();
    runs.Inc(2);
    auto latency =
        registry.AddHistogram("consumer_latency_seconds", "Latency", {}, {.buckets = {0.1, 1}})
            .Labels();
    latency.Observe(0.0625);
    latency.Observe(0.5);
    latency.Observe(4);
    if (runs.Value() != 3 || latency.Count() != 3 || latency.Sum() != 4.5625) ++failures;

    const std::string text = shmetrics::Expose(heap);
    ExpectHas(text, "consumer_runs_total 3\n");
    ExpectHas(text, "consumer_latency_seconds_bucket{le=\"0.1\"} 1\n");
    ExpectHas(text, "consumer_latency_seconds_bucket{le=\"1.0\"} 2\n");
    ExpectHas(text, "consumer_latency_seconds_bucket{le=\"+Inf\"} 3\n");
    ExpectHas(text, "consumer_latency_seconds_count 3\n");
    ExpectHas(text, "consumer_latency_seconds_sum 4.5625\n");
    ExpectHas(text, "# EOF\n");

    // The documented exception, with a code of the library's own.
    try {
      registry.AddGauge("consumer_runs", "Runs");
      ++failures;
    } catch (const shmetrics::Error& e) {
      if (e.code() != shmetrics::ErrorCode::kAlreadyExists) ++failures;
    }
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "%s: %s\n", shmetrics::ErrorCodeName(e.code()), e.what());
    ++failures;
  }
  shmetrics::Heap::Remove(name);
  return failures == 0 ? 0 : 1;
}
