#include "registry/definition.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "meters/meter_types.h"
#include "meters/names.h"
#include "meters/native_histogram.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/internal/percentile_buckets.h"

namespace shmetrics::registry {

using meters::Definition;
using meters::MeterType;

std::string Quoted(std::string_view s) {
  return absl::StrCat("\"", std::string(s.substr(0, 200)), s.size() > 200 ? "...\"" : "\"");
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string Describe(const Definition& d) {
  std::string s = absl::StrCat(std::string(meters::MeterTypeOf(d.type).name), " with labels [",
                               absl::StrJoin(d.label_names, ", "), "]");
  if (!d.unit.empty()) absl::StrAppend(&s, ", unit ", d.unit);
  if (!d.bounds.empty()) absl::StrAppend(&s, ", buckets [", absl::StrJoin(d.bounds, ", "), "]");
  if (!d.states.empty()) absl::StrAppend(&s, ", states [", absl::StrJoin(d.states, ", "), "]");
  if (d.gauge_mode != GaugeMode::kShared) {
    absl::StrAppend(&s, ", gauge mode ", static_cast<int>(d.gauge_mode));
  }
  if (d.striped) absl::StrAppend(&s, ", striped");
  if (d.type == MetricType::kNativeHistogram) {
    absl::StrAppend(&s, ", schema ", d.native_schema, ", zero threshold ", d.native_zero_threshold,
                    ", bucket indices [", d.native_min_index, ", ", d.native_max_index, "]",
                    d.native_negative ? " and negative" : "", ", max buckets ",
                    d.native_max_buckets);
  }
  if (d.ttl_ns != 0) absl::StrAppend(&s, ", ttl ", d.ttl_ns, " ns");
  if (!d.quantiles.empty()) {
    absl::StrAppend(&s, ", quantiles [", absl::StrJoin(d.quantiles, ", "), "] over ", d.max_age_ns,
                    " ns in ", d.age_buckets, " slices, accuracy ", d.relative_accuracy, " in [",
                    d.min_value, ", ", d.max_value, "]");
  }
  if (!d.const_labels.empty()) {
    absl::StrAppend(&s, ", const labels {",
                    absl::StrJoin(d.const_labels, ", ", absl::PairFormatter("=")), "}");
  }
  return s;
}

std::string Differences(const Definition& a, const Definition& b) {
  std::vector<std::string> d;
  if (a.type != b.type) {
    d.push_back(absl::StrCat("type ", std::string(meters::MeterTypeOf(a.type).name), " vs ",
                             std::string(meters::MeterTypeOf(b.type).name)));
  }
  if (a.label_names != b.label_names) {
    d.push_back(absl::StrCat("label names [", absl::StrJoin(a.label_names, ", "), "] vs [",
                             absl::StrJoin(b.label_names, ", "), "]"));
  }
  if (a.unit != b.unit) d.push_back(absl::StrCat("unit ", Quoted(a.unit), " vs ", Quoted(b.unit)));
  if (a.const_labels != b.const_labels) d.push_back("const labels");
  if (a.bounds != b.bounds) d.push_back("buckets");
  if (a.states != b.states) d.push_back("states");
  if (a.gauge_mode != b.gauge_mode) d.push_back("gauge mode");
  if (a.striped != b.striped) d.push_back("striping");
  if (a.ttl_ns != b.ttl_ns) d.push_back("ttl");
  if (a.quantiles != b.quantiles || a.max_age_ns != b.max_age_ns ||
      a.age_buckets != b.age_buckets || a.relative_accuracy != b.relative_accuracy ||
      a.min_value != b.min_value || a.max_value != b.max_value) {
    d.push_back("quantile options");
  }
  if (a.percentile_first != b.percentile_first || a.percentile_last != b.percentile_last) {
    d.push_back("percentile range");
  }
  if (a.native_schema != b.native_schema || a.native_zero_threshold != b.native_zero_threshold ||
      a.native_min_index != b.native_min_index || a.native_max_index != b.native_max_index ||
      a.native_negative != b.native_negative || a.native_max_buckets != b.native_max_buckets) {
    d.push_back("native histogram options");
  }
  if (d.empty()) return "the definitions are the same";
  return absl::StrCat("they differ in ", absl::StrJoin(d, "; "));
}

void ValidateLabelName(std::string_view family, std::string_view label) {
  if (label.size() > kMaxLabelNameBytes) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("label name ", Quoted(label), " for metric ", Quoted(family), " is ",
                       label.size(), " bytes; the limit is ", kMaxLabelNameBytes));
  }
  if (!meters::IsValidLabelName(label)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("invalid label name ", Quoted(label), " for metric ", Quoted(family),
                       ": must match [a-zA-Z_][a-zA-Z0-9_]*"));
  }
  if (meters::IsReservedLabelName(label)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("label name ", Quoted(label), " for metric ", Quoted(family),
                       " is reserved: names starting with \"__\" belong to Prometheus"));
  }
}

void ValidateLabelValue(std::string_view family, std::string_view label, std::string_view value) {
  if (value.size() > kMaxLabelValueBytes) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("value of label ", Quoted(label), " of metric ", Quoted(family), " is ",
                       value.size(), " bytes; the limit is ", kMaxLabelValueBytes));
  }
  if (!meters::IsValidUtf8(value)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("value of label ", Quoted(label), " of metric ", Quoted(family),
                       " is not valid UTF-8"));
  }
}

namespace {

// The full name: checked, without the type's dropped suffix, with prefix and unit.
std::string FullName(const internal::FamilySpec& spec, std::string_view prefix) {
  const MeterType& type = meters::MeterTypeOf(spec.type);
  auto too_long = [](std::string_view n) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric name ", Quoted(n), " is ", n.size(), " bytes; the limit is ",
                       kMaxMetricNameBytes, " (prefix and unit included)"));
  };
  if (spec.name.size() > kMaxMetricNameBytes) too_long(spec.name);
  std::string name(spec.name);
  if (!meters::IsValidMetricName(name)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("invalid metric name ", Quoted(name),
                       ": must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (name.substr(0, 2) == "__") {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric name ", Quoted(name),
                       " is reserved: names starting with \"__\" "
                       "belong to Prometheus"));
  }
  if (!type.dropped_suffix.empty() && EndsWith(name, type.dropped_suffix)) {
    name.resize(name.size() - type.dropped_suffix.size());
  }
  if (name.empty()) Throw(absl::StatusCode::kInvalidArgument, "metric name is empty");
  if (!prefix.empty()) name = absl::StrCat(std::string(prefix), "_", name);
  if (!spec.unit.empty()) {
    if (!std::all_of(spec.unit.begin(), spec.unit.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("invalid unit ", Quoted(spec.unit), " for metric ", Quoted(name),
                         ": must match [a-zA-Z0-9_]+"));
    }
    if (!EndsWith(name, "_" + spec.unit)) absl::StrAppend(&name, "_", spec.unit);
  }
  if (name.size() > kMaxMetricNameBytes) too_long(name);
  if (name.substr(0, 2) == "__") {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric name ", Quoted(name),
                       " is reserved: names starting with \"__\" belong to Prometheus"));
  }
  // A stateset's name is also the label of its states: it must be a label name too.
  if (type.name_is_label && (!meters::IsValidLabelName(name) || name.size() > kMaxLabelNameBytes)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("stateset name ", Quoted(name),
                       " must also be a valid label name (it labels the states): [a-zA-Z_]"
                       "[a-zA-Z0-9_]* of at most ",
                       kMaxLabelNameBytes, " bytes, so no ':', in the prefix either"));
  }
  for (std::string_view s : type.reserved_suffixes) {
    if (EndsWith(name, s)) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("metric name ", Quoted(name), " ends in ", std::string(s),
                         ", which the exposition of a ", std::string(type.name),
                         " uses for its own samples"));
    }
  }
  return name;
}

// What label `l` of a family of this spec is reserved for, or empty.
std::string_view ReservedFor(const internal::FamilySpec& spec, std::string_view name,
                             std::string_view l) {
  const MeterType& type = meters::MeterTypeOf(spec.type);
  for (const meters::ReservedLabel& r : type.reserved_labels) {
    if (l != r.label) continue;
    if (r.per_worker_gauges_only && !meters::OneSeriesPerWorker(spec.gauge_mode)) continue;
    return r.reserved_for;
  }
  if (type.name_is_label && l == name) return "this stateset's states";
  return {};
}

void CheckHelpAndLabels(const internal::FamilySpec& spec, const std::string& name,
                        const std::map<std::string, std::string>& const_labels) {
  if (spec.help.size() > kMaxHelpBytes || !meters::IsValidUtf8(spec.help)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("help text of metric ", Quoted(name), " must be UTF-8 of at most ",
                       kMaxHelpBytes, " bytes"));
  }
  if (spec.labels.size() > kMaxLabels) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("metric ", Quoted(name), " has ", spec.labels.size(),
                       " labels; the limit is ", kMaxLabels));
  }
  if (meters::MeterTypeOf(spec.type).name_is_label && const_labels.count(name) != 0) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("stateset ", Quoted(name),
                       " is named like a const label of the registry; its states use that label"));
  }
  std::set<std::string> seen;
  for (const std::string& l : spec.labels) {
    ValidateLabelName(name, l);
    if (!seen.insert(l).second) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("label name ", Quoted(l), " appears twice in metric ", Quoted(name)));
    }
    if (const std::string_view why = ReservedFor(spec, name, l); !why.empty()) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("label name ", Quoted(l), " is reserved for ", std::string(why),
                         " (metric ", Quoted(name), ")"));
    }
    if (const_labels.count(l) != 0) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("label name ", Quoted(l), " of metric ", Quoted(name),
                         " is also a const label of the registry"));
    }
  }
}

void SetBuckets(std::string_view name, std::vector<double> b, Definition* def) {
  if (!b.empty() && b.back() == std::numeric_limits<double>::infinity()) b.pop_back();
  if (b.empty() || b.size() > kMaxBuckets) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("histogram ", Quoted(name), " needs 1 to ", kMaxBuckets,
                       " finite buckets; got ", b.size()));
  }
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1]))) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("histogram ", Quoted(name),
                         " buckets must be finite and strictly increasing; bucket ", i, " is ",
                         b[i], i > 0 ? absl::StrCat(" after ", b[i - 1]) : std::string()));
    }
  }
  def->bounds = std::move(b);
}

void SetTtl(std::string_view name, int64_t ttl_ns, Definition* def) {
  if (ttl_ns < 0 || (ttl_ns != 0 && ttl_ns < 1000000)) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("gauge ", Quoted(name), ": ttl must be 0 (off) or at least 1 ms; got ",
                       ttl_ns, " ns"));
  }
  def->ttl_ns = static_cast<uint64_t>(ttl_ns);
}

void SetQuantiles(std::string_view name, const SummaryOptions& o, Definition* def) {
  auto bad = [&](std::string why) {
    Throw(absl::StatusCode::kInvalidArgument, absl::StrCat("summary ", Quoted(name), ": ", why));
  };
  std::vector<double> q = o.quantiles;
  if (q.size() > 64) bad(absl::StrCat(q.size(), " quantiles; the limit is 64"));
  for (double v : q) {
    if (!(v >= 0 && v <= 1)) bad(absl::StrCat("quantile ", v, " is not in [0, 1]"));
  }
  std::sort(q.begin(), q.end());
  for (size_t i = 1; i < q.size(); ++i) {
    if (q[i] == q[i - 1]) bad(absl::StrCat("quantile ", q[i], " is given twice"));
  }
  const auto max_age_ns = static_cast<uint64_t>(std::max<int64_t>(0, o.max_age.count()));
  if (o.age_buckets < 1 || o.age_buckets > 1024) {
    bad(absl::StrCat("age_buckets must be 1 to 1024; got ", o.age_buckets));
  }
  if (max_age_ns / o.age_buckets < 100000000) {
    bad(absl::StrCat("max_age / age_buckets must be at least 100 ms; got ",
                     max_age_ns / o.age_buckets, " ns"));
  }
  if (!(o.relative_accuracy >= 0.0001 && o.relative_accuracy <= 0.5)) {
    bad(absl::StrCat("relative_accuracy must be in [0.0001, 0.5]; got ", o.relative_accuracy));
  }
  if (!(o.min_value > 0) || !(o.max_value >= o.min_value) || !std::isfinite(o.max_value)) {
    bad(absl::StrCat("needs 0 < min_value <= max_value, finite; got ", o.min_value, " and ",
                     o.max_value));
  }
  def->quantiles = std::move(q);
  def->max_age_ns = max_age_ns;
  def->age_buckets = o.age_buckets;
  def->relative_accuracy = o.relative_accuracy;
  def->min_value = o.min_value;
  def->max_value = o.max_value;
  if (!meters::SketchIsSane(*def)) {
    bad(absl::StrCat("the quantile sketch would need more than ", meters::kMaxSketchCells,
                     " cells; narrow [min_value, max_value], raise relative_accuracy or lower "
                     "age_buckets"));
  }
}

// Percentile meters keep Spectator's buckets IndexOf(min)..IndexOf(max); their exposed bounds
// (`le`) are the largest integer each bucket holds, in seconds for timers.
void SetPercentileRange(std::string_view name, bool timer, int64_t min, int64_t max,
                        Definition* def) {
  namespace pb = internal::percentile_buckets;
  if (min < 0 || max < min) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("percentile meter ", Quoted(name), ": needs 0 <= min <= max; got ", min,
                       " and ", max));
  }
  def->percentile_first = static_cast<uint32_t>(pb::IndexOf(min));
  def->percentile_last = static_cast<uint32_t>(pb::IndexOf(max));
  def->bounds.clear();
  for (uint32_t i = def->percentile_first; i <= def->percentile_last; ++i) {
    const int64_t top = pb::LargestIn(i);
    def->bounds.push_back(timer ? static_cast<double>(top) / 1e9 : static_cast<double>(top));
  }
}

void SetStates(std::string_view name, const std::vector<std::string>& states, Definition* def) {
  if (states.empty() || states.size() > kMaxStates) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("stateset ", Quoted(name), " needs 1 to ", kMaxStates, " states; got ",
                       states.size()));
  }
  std::set<std::string> uniq;
  for (const auto& s : states) {
    if (s.empty() || s.size() > kMaxLabelValueBytes || !meters::IsValidUtf8(s) ||
        !uniq.insert(s).second) {
      Throw(absl::StatusCode::kInvalidArgument,
            absl::StrCat("stateset ", Quoted(name), ": state ", Quoted(s),
                         " is empty, too long, not UTF-8 or given twice"));
    }
  }
  def->states = states;
}

void SetNative(std::string_view name, const NativeHistogramOptions& o, Definition* def) {
  auto bad = [&](std::string why) {
    Throw(absl::StatusCode::kInvalidArgument,
          absl::StrCat("native histogram ", Quoted(name), ": ", why));
  };
  if (o.schema < internal::kNativeMinSchema || o.schema > internal::kNativeMaxSchema) {
    bad(absl::StrCat("schema must be -4 to 8; got ", o.schema));
  }
  if (!std::isfinite(o.zero_threshold) || !(o.zero_threshold >= 0)) {
    bad(absl::StrCat("zero_threshold must be finite and >= 0; got ", o.zero_threshold));
  }
  if (!(o.min_value > 0) || !(o.max_value >= o.min_value) || !std::isfinite(o.max_value)) {
    bad(absl::StrCat("needs 0 < min_value <= max_value, finite; got ", o.min_value, " and ",
                     o.max_value));
  }
  if (!(o.zero_threshold < o.min_value)) {
    bad(absl::StrCat("zero_threshold ", o.zero_threshold, " must be below min_value ",
                     o.min_value));
  }
  def->native_schema = o.schema;
  def->native_zero_threshold = o.zero_threshold;
  def->native_min_index = meters::NativeIndex(o.min_value, o.schema);
  def->native_max_index = meters::NativeIndex(o.max_value, o.schema);
  def->native_negative = o.negative_buckets;
  def->native_max_buckets = o.max_buckets;
  if (meters::NativeBucketCells(*def) > kMaxNativeBuckets) {
    bad(absl::StrCat("[", o.min_value, ", ", o.max_value, "] at schema ", o.schema, " needs ",
                     meters::NativeBucketCells(*def), " buckets",
                     o.negative_buckets ? " (both signs)" : "", "; the limit is ",
                     kMaxNativeBuckets, ": narrow the range or lower the schema"));
  }
}

// The one place that checks each type's own parameters.
void SetParameters(const internal::FamilySpec& spec, Definition* def) {
  const std::string& name = def->name;
  switch (spec.type) {
    case MetricType::kHistogram:
      return SetBuckets(name, spec.bounds, def);
    case MetricType::kGauge:
      return SetTtl(name, spec.ttl_ns, def);
    case MetricType::kSummary:
      if (spec.summary != nullptr && !spec.summary->quantiles.empty()) {
        SetQuantiles(name, *spec.summary, def);
      }
      return;
    case MetricType::kPercentileTimer:
    case MetricType::kPercentileDistributionSummary:
      return SetPercentileRange(name, spec.type == MetricType::kPercentileTimer,
                                spec.percentile_min, spec.percentile_max, def);
    case MetricType::kStateSet:
      return SetStates(name, spec.states, def);
    case MetricType::kNativeHistogram:
      return SetNative(name, spec.native != nullptr ? *spec.native : NativeHistogramOptions{}, def);
    case MetricType::kCounter:
    case MetricType::kInfo:
    case MetricType::kTimer:
    case MetricType::kDistributionSummary:
    case MetricType::kMaxGauge:
    case MetricType::kAgeGauge:
      return;
  }
}

}  // namespace

Definition MakeDefinition(const internal::FamilySpec& spec, std::string_view prefix,
                          const std::map<std::string, std::string>& const_labels) {
  const std::string name = FullName(spec, prefix);
  CheckHelpAndLabels(spec, name, const_labels);
  Definition def;
  def.name = name;
  def.help = std::string(spec.help);
  def.unit = spec.unit;
  def.type = spec.type;
  def.gauge_mode = spec.gauge_mode;
  def.striped = spec.striped;
  def.label_names = spec.labels;
  std::sort(def.label_names.begin(), def.label_names.end());
  def.const_labels.assign(const_labels.begin(), const_labels.end());
  SetParameters(spec, &def);
  return def;
}

}  // namespace shmetrics::registry
