#include "fault/snapshot_helpers.h"

#include <cmath>

namespace shmetrics::testing {

double Snapshot::CounterTotal(const std::string& family) const {
  double total = 0;
  const std::string prefix = family + "{";
  for (auto it = counters.lower_bound(prefix);
       it != counters.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    total += it->second;
  }
  return total;
}

uint64_t Snapshot::HistogramCount(const std::string& family) const {
  uint64_t total = 0;
  const std::string prefix = family + "{";
  for (auto it = histograms.lower_bound(prefix);
       it != histograms.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    total += it->second.cumulative.empty() ? 0 : it->second.cumulative.back();
  }
  return total;
}

void SnapshotEncoder::BeginFamily(const expose::FamilyInfo& family) {
  family_ = std::string(family.name);
  out_->series[family_];  // present even with no series
}

std::string SnapshotEncoder::Key(expose::LabelSpan labels) const {
  std::string key = family_ + "{";
  for (const expose::Label& l : labels) {
    key.append(l.name).append("=").append(l.value).append(",");
  }
  return key + "}";
}

void SnapshotEncoder::Counter(expose::LabelSpan labels, double value, std::optional<double>,
                              const expose::Exemplar*) {
  ++out_->series[family_];
  if (!(value >= 0) || std::isinf(value)) {
    out_->problems.push_back(Key(labels) + " has counter value " + std::to_string(value));
  }
  out_->counters[Key(labels)] = value;
}

void SnapshotEncoder::Gauge(expose::LabelSpan, double) { ++out_->series[family_]; }

void SnapshotEncoder::Histogram(expose::LabelSpan labels, std::span<const double> upper_bounds,
                                std::span<const uint64_t> cumulative, double sum,
                                std::optional<double>, std::span<const expose::Exemplar* const>) {
  ++out_->series[family_];
  const std::string key = Key(labels);
  if (cumulative.size() != upper_bounds.size() + 1) {
    out_->problems.push_back(key + ": " + std::to_string(cumulative.size()) + " buckets for " +
                             std::to_string(upper_bounds.size()) + " bounds");
  }
  for (size_t i = 1; i < cumulative.size(); ++i) {
    if (cumulative[i] < cumulative[i - 1]) {
      out_->problems.push_back(key + ": bucket " + std::to_string(i) + " below bucket " +
                               std::to_string(i - 1) + " (not cumulative)");
    }
  }
  out_->histograms[key] = {{cumulative.begin(), cumulative.end()}, sum};
}

void SnapshotEncoder::Summary(expose::LabelSpan, uint64_t, double,
                              std::span<const expose::Quantile>, std::optional<double>) {
  ++out_->series[family_];
}

void SnapshotEncoder::Info(expose::LabelSpan) { ++out_->series[family_]; }

void SnapshotEncoder::StateSet(expose::LabelSpan, std::span<const expose::State>) {
  ++out_->series[family_];
}

void CompareScrapes(const Snapshot& before, const Snapshot& now,
                    std::vector<std::string>* problems) {
  for (const auto& [key, v] : before.counters) {
    // Process metrics (cpu seconds of workers that come and go) are per process, not totals.
    if (key.compare(0, 8, "process_") == 0) continue;
    const auto it = now.counters.find(key);
    if (it == now.counters.end()) {
      problems->push_back(key + " vanished");
    } else if (it->second < v) {
      problems->push_back(key + " went down from " + std::to_string(v) + " to " +
                          std::to_string(it->second));
    }
  }
  for (const auto& [key, h] : before.histograms) {
    const auto it = now.histograms.find(key);
    if (it == now.histograms.end()) {
      problems->push_back(key + " vanished");
      continue;
    }
    for (size_t i = 0; i < h.cumulative.size() && i < it->second.cumulative.size(); ++i) {
      if (it->second.cumulative[i] < h.cumulative[i]) {
        problems->push_back(key + " bucket " + std::to_string(i) + " went down");
      }
    }
  }
}

}  // namespace shmetrics::testing
