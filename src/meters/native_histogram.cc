#include "meters/native_histogram.h"

#include <cmath>

#include "shmetrics/internal/native_buckets.h"
#include "shmetrics/registry.h"

namespace shmetrics::meters {

int32_t NativeIndex(double v, int32_t schema) {
  return internal::NativeKey(v, static_cast<uint32_t>(internal::kNativeMaxSchema - schema));
}

uint64_t NativeBucketsPerSign(const Definition& d) {
  if (d.native_max_index < d.native_min_index) return 0;
  return static_cast<uint64_t>(int64_t{d.native_max_index} - d.native_min_index + 1);
}

uint64_t NativeBucketCells(const Definition& d) {
  return NativeBucketsPerSign(d) * (d.native_negative ? 2 : 1);
}

bool NativeParametersSane(const Definition& d) {
  return d.native_schema >= internal::kNativeMinSchema &&
         d.native_schema <= internal::kNativeMaxSchema && std::isfinite(d.native_zero_threshold) &&
         d.native_zero_threshold >= 0 && d.native_min_index <= d.native_max_index &&
         NativeBucketCells(d) <= kMaxNativeBuckets;
}

void LowerSchema(int steps, std::vector<NativeBucket>* buckets) {
  for (int s = 0; s < steps; ++s) {
    size_t out = 0;
    for (const NativeBucket& b : *buckets) {
      const int32_t merged = (b.index + 1) >> 1;  // arithmetic shift: floor
      if (out > 0 && (*buckets)[out - 1].index == merged) {
        (*buckets)[out - 1].count += b.count;
      } else {
        (*buckets)[out++] = {merged, b.count};
      }
    }
    buckets->resize(out);
  }
}

void ReduceSchema(uint32_t max_buckets, int32_t* schema, std::vector<NativeBucket>* positive,
                  std::vector<NativeBucket>* negative) {
  if (max_buckets == 0) return;
  while (*schema > internal::kNativeMinSchema &&
         positive->size() + negative->size() > max_buckets) {
    LowerSchema(1, positive);
    LowerSchema(1, negative);
    --*schema;
  }
}

void MakeSpans(const std::vector<NativeBucket>& buckets, std::vector<expose::BucketSpan>* spans,
               std::vector<uint64_t>* counts) {
  spans->clear();
  counts->clear();
  int32_t next = 0;  // the index after the last one written
  for (size_t i = 0; i < buckets.size(); ++i) {
    const NativeBucket& b = buckets[i];
    const int64_t gap = i == 0 ? 0 : int64_t{b.index} - next;
    if (i == 0 || gap > 2) {
      // A span's offset is from the end of the previous span (from 0 for the first).
      spans->push_back({static_cast<int32_t>(i == 0 ? b.index : gap), 0});
    } else {
      for (int64_t g = 0; g < gap; ++g) counts->push_back(0);
      spans->back().length += static_cast<uint32_t>(gap);
    }
    counts->push_back(b.count);
    spans->back().length += 1;
    next = b.index + 1;
  }
}

}  // namespace shmetrics::meters

namespace shmetrics {

uint64_t NativeHistogram::Count() const noexcept {
  using C = internal::NativeHistogramCells;
  const uint64_t per_sign = static_cast<uint64_t>(int64_t{max_index_} - min_index_ + 1);
  const uint64_t cells = 1 + per_sign * (negative_ ? 2 : 1);  // the zero bucket and the rest
  uint64_t n = 0;
  for (uint64_t i = 0; i < cells; ++i) n += cells_[C::kZero + i].Load();
  return n;
}

bool NativeHistogram::ObserveWithExemplar(double v, ExemplarLabelSpan labels) noexcept {
  if (!Observe(v)) return false;
  // The cell's place from the most negative bucket to the highest positive one, in
  // kExemplarSlots equal parts.
  using C = internal::NativeHistogramCells;
  const uint64_t per_sign = static_cast<uint64_t>(int64_t{max_index_} - min_index_ + 1);
  const uint32_t cell = CellOf(v);
  uint64_t place;  // 0 .. total - 1
  uint64_t total = per_sign + 1;
  if (negative_) total += per_sign;
  if (cell == C::kZero) {
    place = negative_ ? per_sign : 0;
  } else if (cell - C::kFirstBucket >= per_sign) {  // negative: the most negative comes first
    place = per_sign - 1 - (cell - C::kFirstBucket - per_sign);
  } else {
    place = (negative_ ? per_sign : 0) + 1 + (cell - C::kFirstBucket);
  }
  const auto slot = static_cast<uint32_t>(place * kExemplarSlots / total);
  ref_.family->WriteExemplar(ref_.record, slot, v, labels);
  return true;
}

}  // namespace shmetrics
