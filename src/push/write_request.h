// The remote-write 1.0 payload: an expose::Encoder that writes a protobuf prometheus.WriteRequest
// from the same collect walk a scrape uses, and the snappy block compression the protocol sends.
//
// Each sample a Prometheus text scrape would show becomes one TimeSeries with one Sample: the
// same names (counters with `_total`, histograms as `_bucket` with `le`, `_count` and `_sum`,
// summaries with `quantile`, infos as `_info` 1, statesets as one series per state), the same
// labels, plus the extra labels (job, instance, external labels) where the series has no label
// of that name. Labels are sorted by name (bytewise, `__name__` among them), as the protocol
// requires. `_created` samples and exemplars are not sent: remote write 1.0 has no place for
// exemplars, and a 0.0.4 scrape shows no `_created`.
//
// Wire format (prometheus/prompb, hand-encoded; no protobuf library):
//   WriteRequest { repeated TimeSeries timeseries = 1; }
//   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//   Label        { string name = 1; string value = 2; }
//   Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds since the epoch
//
// Thread safety: an encoder is used by one thread at a time. Nothing here touches the heap.
//
// Example:
//   std::string body;
//   uint64_t samples = 0;
//   auto enc = push::MakeWriteRequestEncoder({.extra_labels = {{"job", "api"}},
//                                             .timestamp_ms = now_ms}, &body, &samples);
//   absl::Status s = collect::CollectHeaps(heaps, *enc, {});
//   enc->Finish();
//   std::string compressed = push::SnappyCompress(body);
#ifndef SHMETRICS_SRC_PUSH_WRITE_REQUEST_H_
#define SHMETRICS_SRC_PUSH_WRITE_REQUEST_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "expose/encoder.h"

namespace shmetrics::push {

struct WriteRequestOptions {
  // Added to every series that has no label of the same name (the series' own label wins, as
  // Prometheus's external_labels). REQUIRES: valid label names, distinct. Default: none
  std::vector<std::pair<std::string, std::string>> extra_labels = {};
  // The timestamp of every sample. Default: 0
  int64_t timestamp_ms = 0;
};

// Appends one serialized WriteRequest to *out as the collect walk feeds the encoder; Finish()
// ends it. *samples (if given) is incremented once per sample written. Both must outlive the
// encoder.
std::unique_ptr<expose::Encoder> MakeWriteRequestEncoder(const WriteRequestOptions& options,
                                                         std::string* out,
                                                         uint64_t* samples = nullptr);

// Snappy block format (not the framed format), as remote write's `Content-Encoding: snappy`.
std::string SnappyCompress(std::string_view data);

}  // namespace shmetrics::push

#endif  // SHMETRICS_SRC_PUSH_WRITE_REQUEST_H_
