// Registration, second step: the heap records of a new family (definition blob, series table,
// family record, the overflow series' spare record and index entry) and its root-table entry.
//
// Every function here REQUIRES the heap lock (Segment::lock()) held by the caller, so that the
// checks and the insert are one step for every process. A failure frees whatever was allocated
// (an undo guard); a crash in between leaks those blocks at worst, and the heap stays valid.
#ifndef SHMETRICS_SRC_REGISTRY_HEAP_RECORDS_H_
#define SHMETRICS_SRC_REGISTRY_HEAP_RECORDS_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "meters/layout.h"
#include "shm/segment.h"

namespace shmetrics::registry {

// Creates the family `def` in the heap and returns its record's offset. Throws Error
// kAlreadyExists when its companion names clash with a family (or it is a companion name of
// one), or the allocator's error (kResourceExhausted when the heap is full).
// REQUIRES: the heap lock is held; root has no entry named def.name.
uint64_t CreateFamilyRecords(shm::Segment& seg, uint64_t root, const meters::Definition& def,
                             uint32_t max_children) ABSL_EXCLUSIVE_LOCKS_REQUIRED(seg.lock());

// The definition the heap holds for the family record at `offset`, checked. Throws Error
// kDataLoss when the record or its definition is corrupt.
meters::Definition ReadHeapDefinition(const shm::Segment& seg, uint64_t offset,
                                      std::string_view name);

}  // namespace shmetrics::registry

#endif  // SHMETRICS_SRC_REGISTRY_HEAP_RECORDS_H_
