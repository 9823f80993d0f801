// Decoding: turns the cells of one series record into the Encoder calls of its samples.
//
// The collector (src/collect/collector.cc) walks the heap, checks every family and series record
// it reads and hands each series that checks out to a SeriesDecoder. The decoder trusts the
// family's shape (FamilyView: stripes, stride, cells, exemplar slots, all checked against the
// definition) but nothing else it reads: exemplar blocks are bounds-checked, and cells are only
// read where the shape says they are.
//
// Thread safety: a SeriesDecoder is used by one thread; any number may read one heap at once.
#ifndef SHMETRICS_SRC_METERS_DECODE_H_
#define SHMETRICS_SRC_METERS_DECODE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "expose/encoder.h"
#include "meters/layout.h"
#include "meters/native_histogram.h"
#include "shm/segment.h"
#include "shmetrics/internal/cell.h"

namespace shmetrics::meters {

// A family record read from the heap and checked against its decoded definition.
struct FamilyView {
  uint64_t offset;
  const FamilyRecord* rec;
  Definition def;
  uint32_t stripes, stride, cells, series_size, exemplar_slots;
  uint64_t table;
};

// A worker slot as the collection found it.
struct WorkerState {
  bool alive = false;
  uint64_t epoch = 0;
};

// What one collection shares between families.
struct Moment {
  uint64_t now_unix_ns;    // for gauge time-to-live and age gauges
  uint64_t now_coarse_ns;  // for quantile windows (the clock writers use)
  bool reset_maxima;       // the heap is writable and the caller asked for it
};

// An exemplar slot copied out under its sequence word.
struct ExemplarCopy {
  double value;
  double timestamp;
  std::vector<std::string> strings;
  std::vector<expose::Label> labels;
  expose::Exemplar ex;
};

// Decodes the series of one family (kMainSamples) or of one of its companion families (the
// index into MeterType::companions).
class SeriesDecoder {
 public:
  static constexpr int kMainSamples = -1;

  SeriesDecoder(const shm::Segment& seg, expose::Encoder& enc, const FamilyView& f,
                const std::vector<WorkerState>& workers, bool creator_alive, const Moment& moment,
                int companion = kMainSamples)
      : seg_(seg),
        enc_(enc),
        f_(f),
        workers_(workers),
        creator_alive_(creator_alive),
        moment_(moment),
        companion_(companion) {}

  // The labels of the next series: the collector fills them before each Decode.
  std::vector<expose::Label>& labels() { return labels_; }

  // REQUIRES: h is a live series record of the family, f.series_size bytes inside the heap, and
  // cells = its cells (h + internal::kSeriesCellsOffset).
  void Decode(const SeriesHeader* h, const internal::Cell* cells);

 private:
  bool Expired(uint64_t stamp, double v) const;
  void Counter(const SeriesHeader* h, const internal::Cell* cells, std::optional<double> created);
  void Gauge(const internal::Cell* cells);
  void Histogram(const SeriesHeader* h, const internal::Cell* cells, std::optional<double> created);
  void Summary(const internal::Cell* cells, std::optional<double> created);
  void Percentiles(const internal::Cell* cells, std::optional<double> created);
  void Native(const SeriesHeader* h, const internal::Cell* cells, std::optional<double> created);
  void StateSet(const internal::Cell* cells);
  void MaxGauge(const internal::Cell* cells);
  void AgeGauge(const SeriesHeader* h, const internal::Cell* cells);
  void Companion(const internal::Cell* cells);

  const shm::Segment& seg_;
  expose::Encoder& enc_;
  const FamilyView& f_;
  const std::vector<WorkerState>& workers_;
  const bool creator_alive_;
  const Moment& moment_;
  const int companion_;
  // Reused across series, so a scrape allocates per family, not per series.
  std::vector<expose::Label> labels_;
  std::vector<uint64_t> cumulative_;
  std::vector<ExemplarCopy> bucket_ex_;
  std::vector<const expose::Exemplar*> exemplar_ptrs_;
  std::vector<NativeBucket> native_pos_, native_neg_;
  std::vector<expose::BucketSpan> pos_spans_, neg_spans_;
  std::vector<uint64_t> pos_counts_, neg_counts_;
  std::vector<expose::State> states_;
  std::vector<expose::Quantile> quantiles_;
  std::vector<uint64_t> window_;
  ExemplarCopy ex_;
  std::string worker_label_;
};

}  // namespace shmetrics::meters

#endif  // SHMETRICS_SRC_METERS_DECODE_H_
