// The bucket math of native histograms besides the writer's index (shmetrics/internal/
// native_buckets.h): the index at any schema, the parameters' checks, schema reduction and span
// building for a scrape.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_METERS_NATIVE_HISTOGRAM_H_
#define SHMETRICS_SRC_METERS_NATIVE_HISTOGRAM_H_

#include <cstdint>
#include <vector>

#include "expose/encoder.h"
#include "meters/layout.h"

namespace shmetrics::meters {

// Prometheus's bucket index of v > 0 (+Inf as the largest double) at schema -4..8.
int32_t NativeIndex(double v, int32_t schema);

// Bucket cells of one sign of a series, and of both (with negative buckets); 0 when the range
// is inverted. REQUIRES: d is a native histogram's definition.
uint64_t NativeBucketsPerSign(const Definition& d);
uint64_t NativeBucketCells(const Definition& d);
// Whether untrusted parameters give a series of bounded size (kMaxNativeBuckets).
bool NativeParametersSane(const Definition& d);

// A non-empty bucket: its index and count.
struct NativeBucket {
  int32_t index;
  uint64_t count;
};

// Lowers *schema by one while the buckets of both signs together are more than max_buckets
// (0: no limit) and the schema is above -4. Each step merges bucket i into (i + 1) >> 1, which
// is exact: bucket j of schema s - 1 is buckets 2j - 1 and 2j of schema s. Buckets are sorted by
// index and stay so.
void ReduceSchema(uint32_t max_buckets, int32_t* schema, std::vector<NativeBucket>* positive,
                  std::vector<NativeBucket>* negative);
// Lowers the schema of sorted buckets by `steps`, merging as ReduceSchema does.
void LowerSchema(int steps, std::vector<NativeBucket>* buckets);

// The spans and absolute counts of sorted non-empty buckets. A gap of one or two empty buckets
// stays inside a span (written as zero counts), as client_golang does: a new span costs more
// than two counts.
void MakeSpans(const std::vector<NativeBucket>& buckets, std::vector<expose::BucketSpan>* spans,
               std::vector<uint64_t>* counts);

}  // namespace shmetrics::meters

#endif  // SHMETRICS_SRC_METERS_NATIVE_HISTOGRAM_H_
