// shmetrics::internal::FamilySource: what an HttpExposer serves at /metrics when that is not a
// fixed list of heaps — `shmetrics serve`, whose heaps are recreated, removed and created while
// it runs, swaps them between scrapes. Not API: for the library's own tools.
//
// Thread safety: `collect` runs on the exposer's scrape threads, one scrape at a time unless
// `concurrent` says it may run in several threads at once. It may throw (the exposer stops a
// walk whose client is gone by throwing through it), so it must not leave state half-updated on
// an exception.
#ifndef SHMETRICS_SRC_EXPOSER_FAMILY_SOURCE_H_
#define SHMETRICS_SRC_EXPOSER_FAMILY_SOURCE_H_

#include <functional>

#include "absl/status/status.h"
#include "collect/collector.h"
#include "expose/encoder.h"

namespace shmetrics::internal {

struct FamilySource {
  // Writes every family of one scrape, filtered and configured by the options (names,
  // process_metrics, reset_maxima); the exposer then calls Finish. An error becomes a 500.
  std::function<absl::Status(expose::Encoder&, const collect::CollectOptions&)> collect;
  // True when collect may run in several threads at once (CollectHeaps over fixed heaps,
  // `serve`'s ServedHeaps). False serializes scrapes: a slow client then delays the others, by
  // at most write_timeout.
  bool concurrent = false;
};

}  // namespace shmetrics::internal

#endif  // SHMETRICS_SRC_EXPOSER_FAMILY_SOURCE_H_
