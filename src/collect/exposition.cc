#include "collect/exposition.h"

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "shm/heap_access.h"
#include "shm/status_error.h"
#include "shmetrics/exposition.h"

namespace shmetrics {
namespace collect {

absl::Status CollectHeaps(const std::vector<Heap>& heaps, expose::Encoder& enc,
                          const CollectOptions& options) {
  std::vector<HeapSource> sources;
  for (const Heap& h : heaps) sources.push_back({&shm::HeapAccess::segment(h), h.name()});
  // One heap is served as it is; several are merged, each series labelled with its heap.
  std::vector<MergeConflict> conflicts;
  absl::Status s =
      CollectMerged(sources, heaps.size() > 1 ? kDefaultHeapLabel : "", enc, options, &conflicts);
  // A conflict is the program's own doing (two heaps it serves disagree, or a heap an older
  // version wrote): say so once per process, not at every scrape, and serve everything else.
  static absl::Mutex mu(absl::kConstInit);
  static auto* logged ABSL_GUARDED_BY(mu) = new std::set<std::string>;
  for (const MergeConflict& c : conflicts) {
    absl::MutexLock lock(&mu);
    if (logged->insert(c.message).second) {
      std::fprintf(stderr, "shmetrics: %s\n", c.message.c_str());
    }
  }
  return s;
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
  return Expose(heap, ExposeOptions{.format = format});
}

std::string Expose(const Heap& heap, const ExposeOptions& options) {
  expose::Format format = expose::Format::kOpenMetrics;
  switch (options.format) {
    case ExpositionFormat::kOpenMetrics:
      break;
    case ExpositionFormat::kPrometheus:
      format = expose::Format::kPrometheus;
      break;
    case ExpositionFormat::kProtobuf:
      format = expose::Format::kProtobuf;
      break;
  }
  expose::EncoderOptions encoder_options;
  encoder_options.created = options.created_samples;
  encoder_options.escaping =
      options.utf8_names ? expose::Escaping::kAllowUtf8 : expose::Escaping::kUnderscores;
  std::string out;
  auto enc = expose::MakeEncoder(format, &out, encoder_options);
  if (const absl::Status s = collect::CollectHeaps({heap}, *enc, {}); !s.ok()) throw ToError(s);
  enc->Finish();
  return out;
}

}  // namespace shmetrics
