#include "meters/decode.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>

#include "shmetrics/internal/meter_types.h"
#include "shmetrics/internal/quantile_sketch.h"
#include "shmetrics/max_gauge.h"

namespace shmetrics::meters {
namespace {

using internal::Cell;

// Copies exemplar slot `slot` of the series out under its sequence word; false when absent,
// torn or malformed.
bool ReadExemplar(const shm::Segment& seg, const SeriesHeader* h, uint32_t slot, uint32_t slots,
                  ExemplarCopy* out) {
  const uint64_t block = h->exemplars.load(std::memory_order_acquire);
  if (block == 0 || slot >= slots) return false;
  const auto* ex = reinterpret_cast<const ExemplarSlot*>(
      seg.Checked(block, uint64_t{slots} * sizeof(ExemplarSlot)));
  if (ex == nullptr) return false;
  ex += slot;
  char buf[kMaxExemplarLabelBytes];
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint64_t s1 = ex->seq.load(std::memory_order_acquire);
    if (s1 == 0) return false;
    if (s1 & 1) continue;
    const uint64_t v = ex->value.load(std::memory_order_relaxed);
    const uint64_t t = ex->timestamp.load(std::memory_order_relaxed);
    const uint32_t len = std::min<uint32_t>(ex->labels_len, kMaxExemplarLabelBytes);
    const uint32_t count = ex->count;
    std::memcpy(buf, ex->labels, len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (ex->seq.load(std::memory_order_relaxed) != s1) continue;
    std::vector<std::string_view> parts;
    if (count > 64 || !SplitKey(std::string_view(buf, len), size_t{count} * 2, &parts)) {
      return false;
    }
    out->value = std::bit_cast<double>(v);
    out->timestamp = std::bit_cast<double>(t);
    out->strings.assign(parts.begin(), parts.end());
    out->labels.clear();
    for (size_t i = 0; i + 1 < out->strings.size(); i += 2) {
      out->labels.push_back({out->strings[i], out->strings[i + 1]});
    }
    out->ex = {out->labels, out->value, out->timestamp};
    return true;
  }
  return false;
}

// The collector resets maxima only where the segment is writable (Moment::reset_maxima).
Cell* Writable(const Cell* cells) { return const_cast<Cell*>(cells); }

}  // namespace

// The one place that knows how each type's cells become samples.
void SeriesDecoder::Decode(const SeriesHeader* h, const Cell* cells) {
  const std::optional<double> created = static_cast<double>(h->created_unix_ns) / 1e9;
  if (companion_ != kMainSamples) {
    Companion(cells);
    return;
  }
  switch (f_.def.type) {
    case MetricType::kCounter:
      return Counter(h, cells, created);
    case MetricType::kGauge:
      return Gauge(cells);
    case MetricType::kHistogram:
      return Histogram(h, cells, created);
    case MetricType::kSummary:
      return Summary(cells, created);
    case MetricType::kTimer: {
      using C = internal::SpectatorCells;
      enc_.Summary(labels_, cells[C::kCount].Load(),
                   static_cast<double>(cells[C::kTotal].Load()) / 1e9, {}, created);
      return;
    }
    case MetricType::kDistributionSummary: {
      using C = internal::SpectatorCells;
      enc_.Summary(labels_, cells[C::kCount].Load(), cells[C::kTotal].LoadDouble(), {}, created);
      return;
    }
    case MetricType::kMaxGauge:
      return MaxGauge(cells);
    case MetricType::kAgeGauge:
      return AgeGauge(h, cells);
    case MetricType::kPercentileTimer:
    case MetricType::kPercentileDistributionSummary:
      return Percentiles(cells, created);
    case MetricType::kInfo:
      enc_.Info(labels_);
      return;
    case MetricType::kStateSet:
      return StateSet(cells);
    case MetricType::kNativeHistogram:
      return Native(h, cells, created);
  }
}

void SeriesDecoder::Counter(const SeriesHeader* h, const Cell* cells,
                            std::optional<double> created) {
  using C = internal::CounterCells;
  double v = 0;
  for (uint32_t s = 0; s < f_.stripes; ++s) {
    const Cell* c = cells + uint64_t{s} * f_.stride;
    v += static_cast<double>(c[C::kInteger].Load()) + c[C::kFraction].LoadDouble();
  }
  // Most series never had an exemplar: the block's offset is 0 and the call is saved.
  const bool has_ex = f_.exemplar_slots != 0 && h->exemplars.load(std::memory_order_acquire) != 0 &&
                      ReadExemplar(seg_, h, 0, f_.exemplar_slots, &ex_);
  enc_.Counter(labels_, v, created, has_ex ? &ex_.ex : nullptr);
}

void SeriesDecoder::Histogram(const SeriesHeader* h, const Cell* cells,
                              std::optional<double> created) {
  using C = internal::HistogramCells;
  const size_t n = f_.def.bounds.size() + 1;
  cumulative_.resize(n);
  uint64_t running = 0;
  for (size_t i = 0; i < n; ++i) {
    running += cells[C::kFirstBucket + i].Load();
    cumulative_[i] = running;
  }
  exemplar_ptrs_.clear();
  if (h->exemplars.load(std::memory_order_acquire) != 0) {
    bucket_ex_.resize(n);
    exemplar_ptrs_.resize(n, nullptr);
    for (size_t i = 0; i < n; ++i) {
      if (ReadExemplar(seg_, h, static_cast<uint32_t>(i), f_.exemplar_slots, &bucket_ex_[i])) {
        exemplar_ptrs_[i] = &bucket_ex_[i].ex;
      }
    }
  }
  enc_.Histogram(labels_, f_.def.bounds, cumulative_, cells[C::kSum].LoadDouble(), created,
                 exemplar_ptrs_);
}

// Each bucket is read once and the count is their total, so count == zero + buckets in every
// scrape, whatever the writers do meanwhile.
void SeriesDecoder::Native(const SeriesHeader* h, const Cell* cells,
                           std::optional<double> created) {
  using C = internal::NativeHistogramCells;
  const Definition& d = f_.def;
  const uint64_t per_sign = NativeBucketsPerSign(d);
  expose::NativeHistogram nh;
  nh.schema = d.native_schema;
  nh.zero_threshold = d.native_zero_threshold;
  nh.zero_count = cells[C::kZero].Load();
  nh.sum = cells[C::kSum].LoadDouble();
  uint64_t count = nh.zero_count;
  auto read = [&](uint64_t first, std::vector<NativeBucket>* out) {
    out->clear();
    for (uint64_t i = 0; i < per_sign; ++i) {
      const uint64_t n = cells[C::kFirstBucket + first + i].Load();
      if (n == 0) continue;
      out->push_back({static_cast<int32_t>(d.native_min_index + static_cast<int64_t>(i)), n});
      count += n;
    }
  };
  read(0, &native_pos_);
  if (d.native_negative) {
    read(per_sign, &native_neg_);
  } else {
    native_neg_.clear();
  }
  nh.count = count;
  ReduceSchema(d.native_max_buckets, &nh.schema, &native_pos_, &native_neg_);
  MakeSpans(native_pos_, &pos_spans_, &pos_counts_);
  MakeSpans(native_neg_, &neg_spans_, &neg_counts_);
  nh.positive_spans = pos_spans_;
  nh.positive_counts = pos_counts_;
  nh.negative_spans = neg_spans_;
  nh.negative_counts = neg_counts_;
  exemplar_ptrs_.clear();
  if (h->exemplars.load(std::memory_order_acquire) != 0) {
    bucket_ex_.resize(f_.exemplar_slots);
    for (uint32_t i = 0; i < f_.exemplar_slots; ++i) {
      if (ReadExemplar(seg_, h, i, f_.exemplar_slots, &bucket_ex_[i])) {
        exemplar_ptrs_.push_back(&bucket_ex_[i].ex);
      }
    }
  }
  enc_.NativeHistogram(labels_, nh, created, exemplar_ptrs_);
}

void SeriesDecoder::Percentiles(const Cell* cells, std::optional<double> created) {
  using C = internal::PercentileBucketCells;
  const size_t n = f_.def.bounds.size();
  cumulative_.resize(n + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < n; ++i) {
    running += cells[C::kFirstBucket + i].Load();
    cumulative_[i] = running;
  }
  cumulative_[n] = running;
  const double total = static_cast<double>(cells[C::kTotal].Load());
  const bool timer = f_.def.type == MetricType::kPercentileTimer;
  enc_.Histogram(labels_, f_.def.bounds, cumulative_, timer ? total / 1e9 : total, created, {});
}

void SeriesDecoder::StateSet(const Cell* cells) {
  const uint64_t bits = cells[internal::SingleCell::kValue].Load();
  states_.clear();
  for (size_t i = 0; i < f_.def.states.size() && i < 64; ++i) {
    states_.push_back({f_.def.states[i], ((bits >> i) & 1) != 0});
  }
  enc_.StateSet(labels_, states_);
}

void SeriesDecoder::MaxGauge(const Cell* cells) {
  constexpr uint32_t kValue = internal::SingleCell::kValue;
  const uint64_t bits = moment_.reset_maxima
                            ? Writable(cells)[kValue].Exchange(internal::kEmptyMaxBits)
                            : cells[kValue].Load();
  if (bits != internal::kEmptyMaxBits) enc_.Gauge(labels_, std::bit_cast<double>(bits));
}

void SeriesDecoder::AgeGauge(const SeriesHeader* h, const Cell* cells) {
  const uint64_t reset = cells[internal::SingleCell::kValue].Load();
  const uint64_t since = reset != 0 ? reset : h->created_unix_ns;
  const double age =
      moment_.now_unix_ns > since ? static_cast<double>(moment_.now_unix_ns - since) / 1e9 : 0.0;
  enc_.Gauge(labels_, age);
}

// A value set at `stamp` (Unix ns, 0 = never) is past its time-to-live, or NaN under one.
bool SeriesDecoder::Expired(uint64_t stamp, double v) const {
  const uint64_t ttl = f_.def.ttl_ns;
  if (ttl == 0) return false;
  return stamp == 0 || std::isnan(v) ||
         (moment_.now_unix_ns > stamp && moment_.now_unix_ns - stamp > ttl);
}

void SeriesDecoder::Summary(const Cell* cells, std::optional<double> created) {
  using C = internal::SummaryCells;
  quantiles_.clear();
  if (!f_.def.quantiles.empty()) {
    const internal::SketchLayout sketch = MakeSketchLayout(f_.def);
    sketch.WindowCounts(cells + C::kSketch, sketch.Slice(moment_.now_coarse_ns), &window_);
    for (double q : f_.def.quantiles) quantiles_.push_back({q, sketch.Quantile(window_, q)});
  }
  enc_.Summary(labels_, cells[C::kCount].Load(), cells[C::kSum].LoadDouble(), quantiles_, created);
}

// The _max (companion 0) and _sum_of_squares (companion 1) gauges of timers and distribution
// summaries (see MeterType::companions).
void SeriesDecoder::Companion(const Cell* cells) {
  using C = internal::SpectatorCells;
  const bool timer = f_.def.type == MetricType::kTimer;
  if (companion_ == 1) {
    const double sq = cells[C::kSumOfSquares].LoadDouble();
    enc_.Gauge(labels_, timer ? sq / 1e18 : sq);
    return;
  }
  const uint64_t bits =
      moment_.reset_maxima ? Writable(cells)[C::kMax].Exchange(0) : cells[C::kMax].Load();
  enc_.Gauge(labels_, timer ? static_cast<double>(bits) / 1e9 : std::bit_cast<double>(bits));
}

void SeriesDecoder::Gauge(const Cell* cells) {
  using C = internal::GaugeCells;
  const GaugeMode mode = f_.def.gauge_mode;
  if (mode == GaugeMode::kShared) {
    const double v = cells[C::kValue].LoadDouble();
    if (f_.def.ttl_ns != 0 && Expired(cells[C::kStamp].Load(), v)) return;
    enc_.Gauge(labels_, v);
    return;
  }
  const bool live = mode >= GaugeMode::kLiveSum;
  const auto base = static_cast<GaugeMode>(static_cast<uint32_t>(mode) - (live ? 5 : 0));
  bool any = false;
  double agg = 0;
  uint64_t newest = 0;
  for (uint32_t s = 0; s < f_.stripes; ++s) {
    const Cell* c = cells + uint64_t{s} * f_.stride;
    const uint64_t stamp = c[C::kStamp].Load();
    if (stamp == 0) continue;  // never set
    const bool unattached = s + 1 == f_.stripes;
    if (live) {
      const bool ok = unattached ? creator_alive_
                                 : s < workers_.size() && workers_[s].alive &&
                                       workers_[s].epoch == c[C::kEpoch].Load();
      if (!ok) continue;
    }
    const double v = c[C::kValue].LoadDouble();
    if (Expired(stamp, v)) continue;
    switch (base) {
      case GaugeMode::kSum:
        agg += v;
        break;
      case GaugeMode::kMin:
        agg = any ? std::min(agg, v) : v;
        break;
      case GaugeMode::kMax:
        agg = any ? std::max(agg, v) : v;
        break;
      case GaugeMode::kMostRecent:
        if (!any || stamp >= newest) {
          agg = v;
          newest = stamp;
        }
        break;
      default: {  // kAll: one series per worker
        worker_label_ = unattached ? "master" : std::to_string(s);
        labels_.push_back({"worker_id", worker_label_});
        enc_.Gauge(labels_, v);
        labels_.pop_back();
        break;
      }
    }
    any = true;
  }
  if (base == GaugeMode::kAll) return;
  // A sum of no values is 0, unless the values are gone past their time-to-live: then, like
  // a shared gauge past it, the series is not exposed.
  if (any || (base == GaugeMode::kSum && f_.def.ttl_ns == 0)) enc_.Gauge(labels_, agg);
}

}  // namespace shmetrics::meters
