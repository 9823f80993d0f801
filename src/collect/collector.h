// The collector: a bounds-checked walk of a heap that streams every family to an Encoder.
//
// Works from the creating process, a worker, or an unrelated process that opened the heap
// read-only. It trusts nothing it reads: every offset, length and count is checked against the
// readable heap, so a corrupt or hostile heap gives an error, never a crash, a hang or a huge
// allocation. Cost grows with the number of series (per-worker gauges and striped counters add
// their stripes), not with the number of workers that ever ran.
//
// Thread safety: Collect may run in any number of threads at once; it only reads the heap.
#ifndef SHMETRICS_SRC_COLLECT_COLLECTOR_H_
#define SHMETRICS_SRC_COLLECT_COLLECTOR_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "expose/encoder.h"
#include "shm/segment.h"
#include "shmetrics/metric_type.h"

namespace shmetrics::collect {

struct CollectOptions {
  // Default: empty, every family. Otherwise only families whose name, or one of whose sample
  // names (name_total, name_bucket, ...), is listed (the `name[]=` query parameter).
  std::vector<std::string> names = {};
  // Default: true. Heap usage, overflow and lock-recovery self-metrics (shmetrics_*).
  bool self_metrics = true;
  // Default: true. process_* metrics of every live worker and of the heap's creator, read from
  // /proc, labelled worker_id="<id>" and worker_id="master".
  bool process_metrics = true;
  // Default: true. Empty every MaxGauge and the max of every Timer and DistributionSummary as
  // they are read (one atomic exchange each), so the next collection shows the largest value
  // since this one. Ignored for a read-only segment, which cannot be written.
  bool reset_maxima = true;
};

// Encodes every family of the heap. Does not call Finish(): the caller may add more.
// Errors: DataLoss naming the first inconsistency found (the output so far is then incomplete).
absl::Status Collect(const shm::Segment& segment, expose::Encoder& encoder,
                     const CollectOptions& options = {});

// One heap of a merged collection.
struct HeapSource {
  const shm::Segment* segment = nullptr;
  // The value of the heap label on every series, self-metric and process_* series of this heap.
  std::string label_value;
};

// A family left out of a merged collection, and why.
struct MergeConflict {
  std::string family;
  std::string message;
};

// Encodes the families of several heaps as one exposition, without Finish(). A family that
// several heaps hold with the same definition (the first heap's help text wins) is one family
// whose series each carry the label `heap_label`="<the heap's label_value>", so no two series
// collide; a family whose definitions differ, or that has a label named heap_label, is left out
// and reported in *conflicts (if given), never emitted twice. The self-metrics and process_*
// series of every heap appear, each with its heap label. With an empty heap_label no label is
// added (for a single heap: the same as Collect).
// Errors: as Collect, naming the heap.
absl::Status CollectMerged(std::span<const HeapSource> heaps, std::string_view heap_label,
                           expose::Encoder& encoder, const CollectOptions& options,
                           std::vector<MergeConflict>* conflicts);

// A family of the heap, as `shmetrics inspect` counts it.
struct FamilySummary {
  std::string name;
  MetricType type;
  uint64_t series;  // children in its series table, across all processes
};

// Every family of the heap, checked as Collect checks it, sorted by name.
// Errors: DataLoss naming the first inconsistency; when a family record is what fails,
// *bad_family (if given) is set to its name.
absl::StatusOr<std::vector<FamilySummary>> ListFamilies(const shm::Segment& segment,
                                                        std::string* bad_family = nullptr);

// Checks every family and series record, on top of Segment::Verify, and that no two families
// (nor a family and the collector's own, CollectorFamilies) write a sample of the same name
// (see meters::ClaimedNames), as a heap written by an older version may. For
// `inspect --verify`.
absl::Status VerifyMetrics(const shm::Segment& segment);

// The families the collector writes itself, shmetrics_* and process_*, from the lists that
// write them: registration refuses a family whose names clash with one of them.
std::span<const expose::FamilyInfo> CollectorFamilies();

}  // namespace shmetrics::collect

#endif  // SHMETRICS_SRC_COLLECT_COLLECTOR_H_
