// The heaps `serve` and `push` read, followed by name: whichever heap a --heap value points to
// at each collection. A service that restarted and created its heap again is read anew, a heap
// removed is dropped (and its memory unmapped), a heap that does not exist yet is waited for
// (reported by shmetrics_heap_up 0 until it does). Families the heaps disagree on are an error
// at start and logged once afterwards.
//
// Thread safety: ServedHeaps::Collect may run on several threads at once (the exposer's scrape
// threads): the heaps are refreshed under a lock, then walked without it, each mapping held
// until the last walk of it ends. A ServedHeap alone is used by one thread at a time.
// OpenServedHeaps runs on main's thread before other threads start.
#ifndef SHMETRICS_SRC_CLI_SERVED_HEAPS_H_
#define SHMETRICS_SRC_CLI_SERVED_HEAPS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "cli/args.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "shmetrics/heap.h"
#include "util/annotated_mutex.h"

namespace shmetrics::cli {

// How a command speaks of what it does with a heap, in its log lines and in the help of
// shmetrics_heap_up: {"serve", "serves", "served", "serving"}.
struct HeapVerb {
  const char* command;
  const char* third_person;
  const char* participle;
  const char* gerund;
};

// One --heap: whichever heap the name (or path) points to now. Refresh, before each
// collection, compares the file the name points to with the one mapped, by device and inode.
// Each ServedHeap is its own object, swapped independently.
class ServedHeap {
 public:
  ServedHeap(std::string spec, const Heap::OpenOptions& options);

  // Brings the mapping in line with the name. Returns the error that keeps the heap from being
  // read, OK when it is read or simply does not exist (then heap() is null).
  absl::Status Refresh();

  const std::string& spec() const { return spec_; }
  const Heap* heap() const { return heap_.get(); }
  // The mapping, kept alive by the holder even after a Refresh lets go of it.
  std::shared_ptr<const Heap> shared_heap() const { return heap_; }

 private:
  const std::string spec_;
  const Heap::OpenOptions options_;
  std::string path_;  // the file the name stands for; empty for an invalid name
  std::shared_ptr<const Heap> heap_;
  dev_t dev_ = 0;  // of the file mapped by heap_
  ino_t ino_ = 0;
};

// What a command reads: the families of every heap it can open, merged (one heap: as it is;
// several: each series labelled with its heap), and shmetrics_heap_up for each --heap.
class ServedHeaps {
 public:
  ServedHeaps(std::vector<ServedHeap> heaps, std::string heap_label, HeapVerb verb);

  // conflicts: where given, the families the heaps disagree on are returned there instead of
  // logged (at start, when they are an error).
  absl::Status Collect(expose::Encoder& enc, const collect::CollectOptions& options,
                       std::vector<collect::MergeConflict>* conflicts = nullptr);

 private:
  // Logs a heap's open error once, when it starts (or changes), and its recovery.
  void Report(size_t i, const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs each conflict once, when it appears, and again only after it went away and came back.
  void LogConflicts(const std::vector<collect::MergeConflict>& found)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  util::AnnotatedMutex mu_;
  std::vector<ServedHeap> heaps_ ABSL_GUARDED_BY(mu_);
  const std::string heap_label_;
  const HeapVerb verb_;
  std::vector<std::string> last_error_ ABSL_GUARDED_BY(mu_);  // per heap, "" while it opens fine
  std::set<std::string> logged_conflicts_ ABSL_GUARDED_BY(mu_);
};

// The heaps of args.heaps, as `serve` and `push` start: every heap opens now, or this throws
// shmetrics::Error as a collection would fail; a heap that does not exist yet is waited for
// (said once on stderr), unless args.no_wait (then the usual kNotFound error is thrown). A
// Failure when the heaps disagree on a family or --heap-label is not a label name.
[[nodiscard]] std::optional<Failure> OpenServedHeaps(const Args& args, HeapVerb verb,
                                                     std::shared_ptr<ServedHeaps>* out);

}  // namespace shmetrics::cli

#endif  // SHMETRICS_SRC_CLI_SERVED_HEAPS_H_
