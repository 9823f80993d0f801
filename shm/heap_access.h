// shm::HeapAccess: how the library's own layers (registry, collector, exposer, tool) reach the
// shm::Segment behind a public shmetrics::Heap, which does not expose it.
//
// Thread safety: as the Heap and the Segment.
//
// Example:
//   const absl::Status s = collect::Collect(shm::HeapAccess::segment(heap), encoder);
#ifndef SHMETRICS_SHM_HEAP_ACCESS_H_
#define SHMETRICS_SHM_HEAP_ACCESS_H_

#include <memory>

#include "shm/segment.h"
#include "shmetrics/heap.h"

namespace shmetrics::shm {

class HeapAccess {
 public:
  HeapAccess() = delete;

  static Segment& segment(const Heap& heap) { return *heap.segment_; }
  static const std::shared_ptr<Segment>& segment_ptr(const Heap& heap) { return heap.segment_; }
};

}  // namespace shmetrics::shm

#endif  // SHMETRICS_SHM_HEAP_ACCESS_H_
