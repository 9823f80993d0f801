// shmetrics::Expose: one exposition of a heap's metrics as a string, in the OpenMetrics or the
// Prometheus text format or as Prometheus's delimited protobuf (binary bytes in the string),
// without any HTTP (for the endpoint, see http_exposer.h).
//
// Thread safety: safe from any thread. Process safety: any process attached to the heap may
// expose it while others update it; each value is read atomically. On a heap open for writing,
// an exposition resets the maxima (MaxGauge, Timer's max) as a scrape does.
//
// Example:
//   std::string text = shmetrics::Expose(heap);  // "# TYPE requests counter\n..."
#ifndef SHMETRICS_EXPOSITION_H_
#define SHMETRICS_EXPOSITION_H_

#include <string>

#include "shmetrics/error.h"
#include "shmetrics/heap.h"

namespace shmetrics {

enum class ExpositionFormat {
  kOpenMetrics,  // OpenMetrics 1.0.0 text
  kPrometheus,   // Prometheus text 0.0.4
  kProtobuf,     // io.prometheus.client.MetricFamily messages, each preceded by its varint length
};

// One exposition of every family of the heap. Throws Error kDataLoss when the heap is corrupt.
std::string Expose(const Heap& heap, ExpositionFormat format = ExpositionFormat::kOpenMetrics);

struct ExposeOptions {
  ExpositionFormat format = ExpositionFormat::kOpenMetrics;
  // Default: true. False leaves out every `_created` sample.
  bool created_samples = true;
  // Default: false: names outside [a-zA-Z_:][a-zA-Z0-9_:]* (RegistryOptions::utf8_names) are
  // escaped with underscores, as for a scraper that does not ask for UTF-8. True writes them as
  // they are, quoted (`{"my.metric",label="v"} 1`), which only UTF-8-aware parsers read.
  bool utf8_names = false;
};
// As Expose(heap, format), with options.
std::string Expose(const Heap& heap, const ExposeOptions& options);

}  // namespace shmetrics

#endif  // SHMETRICS_EXPOSITION_H_
