// Test helpers for the fault-injection tests: a collector Encoder that keeps the values of one
// scrape, and checks of what a scrape must always satisfy.
#ifndef SHMETRICS_TESTS_FAULT_SNAPSHOT_HELPERS_H_
#define SHMETRICS_TESTS_FAULT_SNAPSHOT_HELPERS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "expose/encoder.h"

namespace shmetrics::testing {

// One scrape as values: "family{a=x,b=y}" -> value, and histograms as cumulative buckets.
struct Snapshot {
  std::map<std::string, double> counters;
  struct Hist {
    std::vector<uint64_t> cumulative;  // the last is +Inf, which the exposition also prints as
                                       // _count
    double sum = 0;
  };
  std::map<std::string, Hist> histograms;
  // Number of series per family (every type).
  std::map<std::string, uint64_t> series;
  // Problems found while encoding: a histogram that is not cumulative, a counter that is NaN.
  std::vector<std::string> problems;

  // The sum of every series of a counter family.
  double CounterTotal(const std::string& family) const;
  // The sum of the +Inf buckets (the counts) of every series of a histogram family.
  uint64_t HistogramCount(const std::string& family) const;
};

// An Encoder that fills a Snapshot.
class SnapshotEncoder : public expose::Encoder {
 public:
  explicit SnapshotEncoder(Snapshot* out) : out_(out) {}

  void BeginFamily(const expose::FamilyInfo& family) override;
  void Counter(expose::LabelSpan labels, double value, std::optional<double> created,
               const expose::Exemplar* exemplar) override;
  void Gauge(expose::LabelSpan labels, double value) override;
  void Histogram(expose::LabelSpan labels, std::span<const double> upper_bounds,
                 std::span<const uint64_t> cumulative, double sum, std::optional<double> created,
                 std::span<const expose::Exemplar* const> exemplars) override;
  void Summary(expose::LabelSpan labels, uint64_t count, double sum,
               std::span<const expose::Quantile> quantiles, std::optional<double> created) override;
  void Info(expose::LabelSpan labels) override;
  void StateSet(expose::LabelSpan labels, std::span<const expose::State> states) override;
  void EndFamily() override {}
  void Finish() override {}

 private:
  std::string Key(expose::LabelSpan labels) const;

  Snapshot* out_;
  std::string family_;
};

// Appends to *problems every way `now` contradicts `before`, a scrape taken earlier: a counter
// or a histogram bucket that went down, a series that vanished.
void CompareScrapes(const Snapshot& before, const Snapshot& now,
                    std::vector<std::string>* problems);

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_FAULT_SNAPSHOT_HELPERS_H_
