// Registration, first step: what an Add* call asks for (FamilySpec), checked and normalized into
// the Definition that is written into the heap. Also the checks and message helpers the rest of
// the registry shares.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_REGISTRY_DEFINITION_H_
#define SHMETRICS_SRC_REGISTRY_DEFINITION_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "meters/layout.h"
#include "shm/status_error.h"
#include "shmetrics/registry.h"

namespace shmetrics::internal {

// What an Add* call asks for, before any check (Registry::Spec).
struct FamilySpec {
  MetricType type = MetricType::kCounter;
  std::string_view name = {};
  std::string_view help = {};
  LabelNames labels = {};  // in declared order
  std::string unit = {};
  uint32_t max_children = 0;
  GaugeMode gauge_mode = GaugeMode::kShared;
  bool striped = false;
  std::vector<double> bounds = {};
  std::vector<std::string> states = {};
  int64_t ttl_ns = 0;
  const SummaryOptions* summary = nullptr;  // summaries: quantile options
  int64_t percentile_min = 0;               // percentile meters: the range kept
  int64_t percentile_max = 0;
  const NativeHistogramOptions* native = nullptr;  // native histograms
};

}  // namespace shmetrics::internal

namespace shmetrics::registry {

// The definition a spec asks for: the full name (prefix, dropped and added suffixes), labels in
// canonical order, the registry's const labels, and the type's checked parameters.
// Throws Error kInvalidArgument, with the messages documented on Registry::Add*.
meters::Definition MakeDefinition(const internal::FamilySpec& spec, std::string_view prefix,
                                  const std::map<std::string, std::string>& const_labels);

// "type with labels [...], unit ..., ...": a definition in messages.
std::string Describe(const meters::Definition& d);

// What differs between two definitions of one name, for messages: "they differ in label names
// [a, b] vs [a, c]; unit ...".
std::string Differences(const meters::Definition& a, const meters::Definition& b);

// s in double quotes, cut at 200 bytes.
std::string Quoted(std::string_view s);
bool EndsWith(std::string_view s, std::string_view suffix);

// Throw Error kInvalidArgument for a label name or value the exposition cannot carry.
void ValidateLabelName(std::string_view family, std::string_view label);
void ValidateLabelValue(std::string_view family, std::string_view label, std::string_view value);

}  // namespace shmetrics::registry

#endif  // SHMETRICS_SRC_REGISTRY_DEFINITION_H_
