#include "meters/layout.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace shmetrics::meters {
namespace {

constexpr uint32_t kDefinitionFormat = 1;

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}
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
         bounds == o.bounds && states == o.states;
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
  if (!r.U32(&type) || type < 1 || type > 6) return bad("unknown type");
  if (!r.U32(&mode) || mode > 10) return bad("unknown gauge mode");
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
  if (!r.done()) return bad("trailing bytes");
  return d;
}

void AppendKeyPart(std::string* out, std::string_view value) { PutStr(out, value); }

bool SplitKey(std::string_view key, size_t expected, std::vector<std::string_view>* values) {
  values->clear();
  while (!key.empty()) {
    if (key.size() < 4 || values->size() >= expected) return false;
    uint32_t n;
    std::memcpy(&n, key.data(), 4);
    key.remove_prefix(4);
    if (n > key.size()) return false;
    values->push_back(key.substr(0, n));
    key.remove_prefix(n);
  }
  return values->size() == expected;
}

}  // namespace shmetrics::meters
