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

// Throws Error kAlreadyExists when a name the exposition of `def` writes (a family, sample or
// companion family name: meters::ClaimedNames) is also written by a family of the heap or by
// the collector itself (collect::CollectorFamilies). Looks up only the families that may claim
// each name: the one of that name and those named by it less one of meters::ClaimSuffixes.
// Throws kDataLoss when one of those records is corrupt.
// REQUIRES: the heap lock is held, so that the check and CreateFamilyRecords are one step.
void CheckClaimedNames(const shm::Segment& seg, uint64_t root, const meters::Definition& def);

// Creates the family `def` in the heap and returns its record's offset. Throws the allocator's
// error (kResourceExhausted when the heap is full). Checks no names: CheckClaimedNames first.
// REQUIRES: the heap lock is held; root has no entry named def.name.
uint64_t CreateFamilyRecords(shm::Segment& seg, uint64_t root, const meters::Definition& def,
                             uint32_t max_children) ABSL_EXCLUSIVE_LOCKS_REQUIRED(seg.lock());

// The definition the heap holds for the family record at `offset`, checked. Throws Error
// kDataLoss when the record or its definition is corrupt.
meters::Definition ReadHeapDefinition(const shm::Segment& seg, uint64_t offset,
                                      std::string_view name);

}  // namespace shmetrics::registry

#endif  // SHMETRICS_SRC_REGISTRY_HEAP_RECORDS_H_
