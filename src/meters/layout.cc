#include "meters/layout.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "meters/meter_types.h"

namespace shmetrics::meters {
namespace {

constexpr uint32_t kDefinitionFormat = 3;

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out->append(b, 8);
}
void PutF64(std::string* out, double v) { PutU64(out, std::bit_cast<uint64_t>(v)); }
void PutStr(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

// A bounds-checked cursor over untrusted bytes.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool U32(uint32_t* v) {
    if (b_.size() < 4) return false;
    std::memcpy(v, b_.data(), 4);
    b_.remove_prefix(4);
    return true;
  }
  bool F64(double* v) {
    if (b_.size() < 8) return false;
    std::memcpy(v, b_.data(), 8);
    b_.remove_prefix(8);
    return true;
  }
  bool U64(uint64_t* v) {
    if (b_.size() < 8) return false;
    std::memcpy(v, b_.data(), 8);
    b_.remove_prefix(8);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n;
    if (!U32(&n) || n > b_.size()) return false;
    s->assign(b_.data(), n);
    b_.remove_prefix(n);
    return true;
  }
  // A count of items of at least `min_item` bytes each: never more than the bytes left allow.
  bool Count(uint32_t* n, size_t min_item) { return U32(n) && *n <= b_.size() / min_item; }
  bool done() const { return b_.empty(); }

 private:
  std::string_view b_;
};

}  // namespace

bool Definition::SameShape(const Definition& o) const {
  return name == o.name && unit == o.unit && type == o.type && gauge_mode == o.gauge_mode &&
         striped == o.striped && label_names == o.label_names && const_labels == o.const_labels &&
         bounds == o.bounds && states == o.states && ttl_ns == o.ttl_ns &&
         quantiles == o.quantiles && max_age_ns == o.max_age_ns && age_buckets == o.age_buckets &&
         relative_accuracy == o.relative_accuracy && min_value == o.min_value &&
         max_value == o.max_value && percentile_first == o.percentile_first &&
         percentile_last == o.percentile_last && native_schema == o.native_schema &&
         native_zero_threshold == o.native_zero_threshold &&
         native_min_index == o.native_min_index && native_max_index == o.native_max_index &&
         native_negative == o.native_negative && native_max_buckets == o.native_max_buckets;
}

std::string EncodeDefinition(const Definition& d) {
  std::string out;
  PutU32(&out, kDefinitionFormat);
  PutU32(&out, static_cast<uint32_t>(d.type));
  PutU32(&out, static_cast<uint32_t>(d.gauge_mode));
  PutU32(&out, d.striped ? 1 : 0);
  PutStr(&out, d.name);
  PutStr(&out, d.help);
  PutStr(&out, d.unit);
  PutU32(&out, static_cast<uint32_t>(d.label_names.size()));
  for (const auto& n : d.label_names) PutStr(&out, n);
  PutU32(&out, static_cast<uint32_t>(d.const_labels.size()));
  for (const auto& [n, v] : d.const_labels) {
    PutStr(&out, n);
    PutStr(&out, v);
  }
  PutU32(&out, static_cast<uint32_t>(d.bounds.size()));
  for (double b : d.bounds) {
    char buf[8];
    std::memcpy(buf, &b, 8);
    out.append(buf, 8);
  }
  PutU32(&out, static_cast<uint32_t>(d.states.size()));
  for (const auto& s : d.states) PutStr(&out, s);
  PutU64(&out, d.ttl_ns);
  PutU32(&out, static_cast<uint32_t>(d.quantiles.size()));
  for (double q : d.quantiles) PutF64(&out, q);
  PutU64(&out, d.max_age_ns);
  PutU32(&out, d.age_buckets);
  PutF64(&out, d.relative_accuracy);
  PutF64(&out, d.min_value);
  PutF64(&out, d.max_value);
  PutU32(&out, d.percentile_first);
  PutU32(&out, d.percentile_last);
  PutU32(&out, static_cast<uint32_t>(d.native_schema));
  PutF64(&out, d.native_zero_threshold);
  PutU32(&out, static_cast<uint32_t>(d.native_min_index));
  PutU32(&out, static_cast<uint32_t>(d.native_max_index));
  PutU32(&out, d.native_negative ? 1 : 0);
  PutU32(&out, d.native_max_buckets);
  return out;
}

absl::StatusOr<Definition> DecodeDefinition(std::string_view bytes) {
  Reader r(bytes);
  Definition d;
  uint32_t format, type, mode, flags, n;
  auto bad = [](std::string_view what) {
    return absl::DataLossError(absl::StrCat("malformed family definition: ", std::string(what)));
  };
  if (!r.U32(&format) || format != kDefinitionFormat) return bad("unknown format");
  if (!r.U32(&type) || FindMeterType(type) == nullptr) return bad("unknown type");
  if (!r.U32(&mode) || mode > static_cast<uint32_t>(GaugeMode::kLiveAll)) {
    return bad("unknown gauge mode");
  }
  if (!r.U32(&flags)) return bad("truncated");
  d.type = static_cast<MetricType>(type);
  d.gauge_mode = static_cast<GaugeMode>(mode);
  d.striped = (flags & 1) != 0;
  if (!r.Str(&d.name) || !r.Str(&d.help) || !r.Str(&d.unit)) return bad("truncated strings");
  if (!r.Count(&n, 4)) return bad("label count");
  d.label_names.resize(n);
  for (auto& s : d.label_names) {
    if (!r.Str(&s)) return bad("label names");
  }
  if (!r.Count(&n, 8)) return bad("const label count");
  d.const_labels.resize(n);
  for (auto& [k, v] : d.const_labels) {
    if (!r.Str(&k) || !r.Str(&v)) return bad("const labels");
  }
  if (!r.Count(&n, 8)) return bad("bucket count");
  d.bounds.resize(n);
  for (double& b : d.bounds) {
    if (!r.F64(&b)) return bad("buckets");
  }
  if (!r.Count(&n, 4)) return bad("state count");
  d.states.resize(n);
  for (auto& s : d.states) {
    if (!r.Str(&s)) return bad("states");
  }
  if (!r.U64(&d.ttl_ns)) return bad("ttl");
  if (!r.Count(&n, 8)) return bad("quantile count");
  d.quantiles.resize(n);
  for (double& q : d.quantiles) {
    if (!r.F64(&q)) return bad("quantiles");
  }
  if (!r.U64(&d.max_age_ns) || !r.U32(&d.age_buckets) || !r.F64(&d.relative_accuracy) ||
      !r.F64(&d.min_value) || !r.F64(&d.max_value) || !r.U32(&d.percentile_first) ||
      !r.U32(&d.percentile_last)) {
    return bad("meter parameters");
  }
  uint32_t schema, min_index, max_index, negative;
  if (!r.U32(&schema) || !r.F64(&d.native_zero_threshold) || !r.U32(&min_index) ||
      !r.U32(&max_index) || !r.U32(&negative) || negative > 1 || !r.U32(&d.native_max_buckets)) {
    return bad("native histogram parameters");
  }
  d.native_schema = static_cast<int32_t>(schema);
  d.native_min_index = static_cast<int32_t>(min_index);
  d.native_max_index = static_cast<int32_t>(max_index);
  d.native_negative = negative == 1;
  if (!r.done()) return bad("trailing bytes");
  return d;
}

uint32_t CellsPerStripe(const Definition& d) {
  const MeterType* t = FindMeterType(static_cast<uint32_t>(d.type));
  return t != nullptr ? t->cells_per_stripe(d) : 1;
}

uint32_t ExemplarSlots(const Definition& d) {
  const MeterType* t = FindMeterType(static_cast<uint32_t>(d.type));
  if (t == nullptr) return 0;
  return t->exemplar_slots +
         t->exemplar_slots_per_bucket * (static_cast<uint32_t>(d.bounds.size()) + 1);
}

bool SketchIsSane(const Definition& d) {
  if (d.quantiles.empty()) return true;
  if (d.quantiles.size() > 64 || d.age_buckets == 0 || d.age_buckets > 1024 ||
      d.max_age_ns < d.age_buckets || !(d.relative_accuracy >= 1e-4) ||
      !(d.relative_accuracy < 1) || !(d.min_value > 0) || !(d.max_value >= d.min_value) ||
      !std::isfinite(d.max_value)) {
    return false;
  }
  for (size_t i = 0; i < d.quantiles.size(); ++i) {
    if (!(d.quantiles[i] >= 0 && d.quantiles[i] <= 1)) return false;
    if (i > 0 && !(d.quantiles[i] > d.quantiles[i - 1])) return false;
  }
  const internal::SketchLayout s = MakeSketchLayout(d);
  return s.per_octave >= 1 && s.num_buckets >= 3 && s.cells() <= kMaxSketchCells;
}

internal::SketchLayout MakeSketchLayout(const Definition& d) {
  internal::SketchLayout s;
  if (d.quantiles.empty() || d.age_buckets == 0 || !(d.relative_accuracy > 0) ||
      !(d.min_value > 0) || !(d.max_value >= d.min_value) || !std::isfinite(d.max_value)) {
    return s;
  }
  const double per_octave = std::ceil((1 / d.relative_accuracy - 1) / 2);
  if (!(per_octave >= 1) || per_octave > 1e6) return s;
  int min_exp = 0, max_exp = 0;
  std::frexp(d.min_value, &min_exp);  // min_value = m * 2^min_exp, m in [0.5, 1)
  std::frexp(d.max_value, &max_exp);
  s.per_octave = static_cast<uint32_t>(per_octave);
  s.min_exp = min_exp - 1;
  s.max_exp = max_exp - 1;
  const uint64_t buckets = uint64_t(s.max_exp - s.min_exp + 1) * s.per_octave + 2;
  if (buckets > kMaxSketchCells) return internal::SketchLayout{};
  s.num_buckets = static_cast<uint32_t>(buckets);
  s.slices = d.age_buckets;
  s.slice_ns = std::max<uint64_t>(1, d.max_age_ns / d.age_buckets);
  s.inv_slice_ns = 1.0 / static_cast<double>(s.slice_ns);
  if (s.cells() > kMaxSketchCells) return internal::SketchLayout{};
  return s;
}

void AppendKeyPart(std::string* out, std::string_view value) { PutStr(out, value); }

bool SplitKey(std::string_view key, size_t expected, std::vector<std::string_view>* values) {
  values->clear();
  return SplitKeyInto(key, expected, [&](size_t, std::string_view v) { values->push_back(v); });
}

}  // namespace shmetrics::meters
