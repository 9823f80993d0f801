// The exposition of several heaps into one encoder: what shmetrics::Expose and the HttpExposer
// both serve.
//
// Thread safety: as Collect.
//
// Example:
//   std::string out;
//   absl::Status s = collect::EncodeHeaps(heaps, expose::Format::kOpenMetrics, {}, &out);
#ifndef SHMETRICS_SRC_COLLECT_EXPOSITION_H_
#define SHMETRICS_SRC_COLLECT_EXPOSITION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "shmetrics/heap.h"

namespace shmetrics::collect {

// Writes every family of the heaps into the encoder, without Finish(). Self and process metrics
// come from the first heap only, so no family repeats.
absl::Status CollectHeaps(const std::vector<Heap>& heaps, expose::Encoder& encoder,
                          const CollectOptions& options);

// Appends one exposition of every family of the heaps to *out. Self and process metrics come
// from the first heap only, so no family repeats.
absl::Status EncodeHeaps(const std::vector<Heap>& heaps, expose::Format format,
                         const CollectOptions& options, std::string* out);

}  // namespace shmetrics::collect

#endif  // SHMETRICS_SRC_COLLECT_EXPOSITION_H_
