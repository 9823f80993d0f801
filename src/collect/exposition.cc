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

absl::Status EncodeHeaps(const std::vector<Heap>& heaps, expose::Format format,
                         const CollectOptions& options, std::string* out) {
  auto enc = expose::MakeEncoder(format, out);
  for (size_t i = 0; i < heaps.size(); ++i) {
    CollectOptions o = options;
    if (i > 0) o.self_metrics = o.process_metrics = false;
    if (absl::Status s = Collect(shm::HeapAccess::segment(heaps[i]), *enc, o); !s.ok()) return s;
  }
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
