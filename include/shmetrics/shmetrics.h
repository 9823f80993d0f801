// The whole public API of shmetrics in one include: the heap, the registry and every meter type,
// the exposition as a string, and the embedded HTTP endpoint.
//
// HttpExposer and LoadWebConfigFile (http_exposer.h) are in the library shmetrics::http; the
// rest is in shmetrics::core. shmetrics::shmetrics links both.
//
// Example:
//   #include "shmetrics/shmetrics.h"
//
//   auto heap = shmetrics::Heap::Create("myapp");
//   shmetrics::Registry registry(heap);
//   registry.AddCounter("requests", "Requests served").Labels().Inc();
//   std::string text = shmetrics::Expose(heap);
#ifndef SHMETRICS_SHMETRICS_H_
#define SHMETRICS_SHMETRICS_H_

#include "shmetrics/age_gauge.h"
#include "shmetrics/counter.h"
#include "shmetrics/distribution_summary.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/gauge.h"
#include "shmetrics/heap.h"
#include "shmetrics/histogram.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/info.h"
#include "shmetrics/max_gauge.h"
#include "shmetrics/native_histogram.h"
#include "shmetrics/percentile_timer.h"
#include "shmetrics/push.h"
#include "shmetrics/registry.h"
#include "shmetrics/summary.h"
#include "shmetrics/timer.h"

#endif  // SHMETRICS_SHMETRICS_H_
