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
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "shmetrics/heap.h"

namespace shmetrics::collect {

// The label that names each heap when several are served together.
inline constexpr std::string_view kDefaultHeapLabel = "heap";

// Writes every family of the heaps into the encoder, without Finish(). Several heaps are merged
// (CollectMerged), each series labelled heap="<Heap::name()>"; a family their definitions
// disagree on is left out and reported on stderr.
absl::Status CollectHeaps(const std::vector<Heap>& heaps, expose::Encoder& encoder,
                          const CollectOptions& options);

// Appends one exposition of every family of the heaps to *out, as CollectHeaps.
absl::Status EncodeHeaps(const std::vector<Heap>& heaps, expose::Format format,
                         const CollectOptions& options, std::string* out);

}  // namespace shmetrics::collect

#endif  // SHMETRICS_SRC_COLLECT_EXPOSITION_H_
