#include "collect/exposition.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "shm/heap_access.h"
#include "shm/status_error.h"
#include "shmetrics/exposition.h"

namespace shmetrics {
namespace collect {

absl::Status CollectHeaps(const std::vector<Heap>& heaps, expose::Encoder& enc,
                          const CollectOptions& options) {
  for (size_t i = 0; i < heaps.size(); ++i) {
    CollectOptions o = options;
    // Self and process metrics come from the first heap only, so no family repeats.
    if (i > 0) o.self_metrics = o.process_metrics = false;
    if (absl::Status s = Collect(shm::HeapAccess::segment(heaps[i]), enc, o); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status EncodeHeaps(const std::vector<Heap>& heaps, expose::Format format,
                         const CollectOptions& options, std::string* out) {
  auto enc = expose::MakeEncoder(format, out);
  if (absl::Status s = CollectHeaps(heaps, *enc, options); !s.ok()) return s;
  enc->Finish();
  return absl::OkStatus();
}

}  // namespace collect

std::string Expose(const Heap& heap, ExpositionFormat format) {
  std::string out;
  const absl::Status s =
      collect::EncodeHeaps({heap},
                           format == ExpositionFormat::kOpenMetrics ? expose::Format::kOpenMetrics
                                                                    : expose::Format::kPrometheus,
                           {}, &out);
  if (!s.ok()) throw ToError(s);
  return out;
}

}  // namespace shmetrics
