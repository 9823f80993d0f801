// shmetrics::MetricType and shmetrics::GaugeMode: what kind of meter a family is, and how the
// values that different workers set on one gauge combine.
//
// Both are written into every family record of the heap (see shm/FORMAT.md), so processes built
// from different versions, and readers in other languages, agree on them. These values are the
// heap format: never renumber. A new meter type takes the next unused value.
//
// Thread safety and process safety: plain values, safe anywhere.
#ifndef SHMETRICS_METRIC_TYPE_H_
#define SHMETRICS_METRIC_TYPE_H_

#include <cstdint>

namespace shmetrics {

// These values are the heap format: never renumber.
enum class MetricType : uint32_t {
  kCounter = 1,
  kGauge = 2,
  kHistogram = 3,
  kSummary = 4,
  kInfo = 5,
  kStateSet = 6,
  // Spectator's meters (see timer.h, distribution_summary.h, max_gauge.h, age_gauge.h,
  // percentile_timer.h).
  kTimer = 7,
  kDistributionSummary = 8,
  kMaxGauge = 9,
  kAgeGauge = 10,
  kPercentileTimer = 11,
  kPercentileDistributionSummary = 12,
  // Prometheus's native (sparse exponential) histograms (see native_histogram.h).
  kNativeHistogram = 13,
};

// How the values that different workers set on one gauge combine (Prometheus's multiprocess
// modes). kShared: one value for the whole service, the last Set wins. The others keep one value
// per worker (see Heap::AttachWorker) and aggregate at collection; the kLive* variants forget a
// worker's value as soon as it dies.
// These values are the heap format: never renumber.
enum class GaugeMode : uint32_t {
  kShared = 0,
  kSum = 1,
  kMin = 2,
  kMax = 3,
  kMostRecent = 4,
  kAll = 5,  // one series per worker, labelled worker_id
  kLiveSum = 6,
  kLiveMin = 7,
  kLiveMax = 8,
  kLiveMostRecent = 9,
  kLiveAll = 10,
};

static_assert(static_cast<uint32_t>(MetricType::kCounter) == 1);
static_assert(static_cast<uint32_t>(MetricType::kGauge) == 2);
static_assert(static_cast<uint32_t>(MetricType::kHistogram) == 3);
static_assert(static_cast<uint32_t>(MetricType::kSummary) == 4);
static_assert(static_cast<uint32_t>(MetricType::kInfo) == 5);
static_assert(static_cast<uint32_t>(MetricType::kStateSet) == 6);
static_assert(static_cast<uint32_t>(MetricType::kTimer) == 7);
static_assert(static_cast<uint32_t>(MetricType::kDistributionSummary) == 8);
static_assert(static_cast<uint32_t>(MetricType::kMaxGauge) == 9);
static_assert(static_cast<uint32_t>(MetricType::kAgeGauge) == 10);
static_assert(static_cast<uint32_t>(MetricType::kPercentileTimer) == 11);
static_assert(static_cast<uint32_t>(MetricType::kPercentileDistributionSummary) == 12);
static_assert(static_cast<uint32_t>(MetricType::kNativeHistogram) == 13);

static_assert(static_cast<uint32_t>(GaugeMode::kShared) == 0);
static_assert(static_cast<uint32_t>(GaugeMode::kSum) == 1);
static_assert(static_cast<uint32_t>(GaugeMode::kMin) == 2);
static_assert(static_cast<uint32_t>(GaugeMode::kMax) == 3);
static_assert(static_cast<uint32_t>(GaugeMode::kMostRecent) == 4);
static_assert(static_cast<uint32_t>(GaugeMode::kAll) == 5);
static_assert(static_cast<uint32_t>(GaugeMode::kLiveSum) == 6);
static_assert(static_cast<uint32_t>(GaugeMode::kLiveMin) == 7);
static_assert(static_cast<uint32_t>(GaugeMode::kLiveMax) == 8);
static_assert(static_cast<uint32_t>(GaugeMode::kLiveMostRecent) == 9);
static_assert(static_cast<uint32_t>(GaugeMode::kLiveAll) == 10);

}  // namespace shmetrics

#endif  // SHMETRICS_METRIC_TYPE_H_
