#include "expose/names.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <set>

namespace shmetrics::expose {
namespace {

constexpr bool IsLetter(uint32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
constexpr bool IsDigit(uint32_t c) { return c >= '0' && c <= '9'; }

// Whether code point c may stand at byte offset i of a legacy name of this kind.
constexpr bool IsLegacyRune(uint32_t c, size_t i, NameKind kind) {
  return IsLetter(c) || (c == ':' && kind == NameKind::kMetric) || (IsDigit(c) && i > 0);
}

constexpr uint32_t kReplacement = 0xfffd;

// The code point at s[i] and its length in bytes; an invalid sequence is U+FFFD of one byte,
// as Go decodes it.
uint32_t Decode(std::string_view s, size_t i, size_t* len) {
  const auto c = static_cast<uint8_t>(s[i]);
  *len = 1;
  if (c < 0x80) return c;
  size_t n;
  uint32_t cp;
  uint32_t min;
  if ((c & 0xe0) == 0xc0) {
    n = 1, cp = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 2, cp = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 3, cp = c & 0x07, min = 0x10000;
  } else {
    return kReplacement;
  }
  if (n >= s.size() - i) return kReplacement;
  for (size_t k = 1; k <= n; ++k) {
    const auto cc = static_cast<uint8_t>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return kReplacement;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return kReplacement;
  *len = n + 1;
  return cp;
}

bool IsLegacy(std::string_view name, NameKind kind) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsLegacyRune(static_cast<uint8_t>(name[i]), i, kind)) return false;
  }
  return true;
}

void AppendHex(uint32_t v, std::string* out) {
  char buf[8];
  size_t n = 0;
  do {
    buf[n++] = "0123456789abcdef"[v & 0xf];
    v >>= 4;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

}  // namespace

bool IsLegacyMetricName(std::string_view name) { return IsLegacy(name, NameKind::kMetric); }
bool IsLegacyLabelName(std::string_view name) { return IsLegacy(name, NameKind::kLabel); }

std::string_view EscapeName(std::string_view name, Escaping scheme, std::string* scratch,
                            NameKind kind) {
  if (name.empty() || scheme == Escaping::kAllowUtf8 || IsLegacy(name, kind)) return name;
  std::string& out = *scratch;
  out.clear();
  if (scheme == Escaping::kValues) out.append("U__");
  size_t len = 0;
  for (size_t i = 0; i < name.size(); i += len) {
    const uint32_t c = Decode(name, i, &len);
    const bool valid = IsLegacyRune(c, i, kind);
    switch (scheme) {
      case Escaping::kUnderscores:
        out.push_back(valid ? static_cast<char>(c) : '_');
        break;
      case Escaping::kDots:
        if (c == '_') {
          out.append("__");
        } else if (c == '.') {
          out.append("_dot_");
        } else if (valid) {
          out.push_back(static_cast<char>(c));
        } else {
          out.append("__");
        }
        break;
      case Escaping::kValues:
        if (c == '_') {
          out.append("__");
        } else if (valid) {
          out.push_back(static_cast<char>(c));
        } else {
          out.push_back('_');
          AppendHex(c, &out);
          out.push_back('_');
        }
        break;
      case Escaping::kAllowUtf8:
        break;
    }
  }
  return out;
}

std::string_view SchemeName(Escaping scheme) {
  switch (scheme) {
    case Escaping::kAllowUtf8:
      return "allow-utf-8";
    case Escaping::kUnderscores:
      return "underscores";
    case Escaping::kDots:
      return "dots";
    case Escaping::kValues:
      return "values";
  }
  return "?";
}

void NoteOnce(const std::string& message) {
  static std::mutex mu;
  static auto* logged = new std::set<std::string>;
  std::lock_guard<std::mutex> lock(mu);
  if (logged->insert(message).second) std::fprintf(stderr, "shmetrics: %s\n", message.c_str());
}

namespace {

// The sample suffixes a family of this type writes besides its own name; with the name, what two
// families must not share (as registration's meters::ClaimedNames).
std::span<const std::string_view> ClaimSuffixes(MetricType type) {
  static constexpr std::string_view kCounter[] = {"_total", "_created"};
  static constexpr std::string_view kHistogram[] = {"_bucket", "_count", "_sum", "_created"};
  static constexpr std::string_view kSummary[] = {"_count", "_sum", "_created"};
  static constexpr std::string_view kInfo[] = {"_info"};
  switch (type) {
    case MetricType::kCounter:
      return kCounter;
    case MetricType::kHistogram:
      return kHistogram;
    case MetricType::kSummary:
      return kSummary;
    case MetricType::kInfo:
      return kInfo;
    case MetricType::kGauge:
    case MetricType::kStateSet:
    case MetricType::kUnknown:
      break;
  }
  return {};
}

}  // namespace

bool FamilyNameClaims::Claim(std::string_view raw, std::string_view escaped, MetricType type) {
  if (scheme_ == Escaping::kAllowUtf8) return true;
  if (!claiming_) {
    if (escaped == raw) {
      seen_.emplace_back(std::string(escaped), type);
      return true;
    }
    claiming_ = true;
    for (const auto& [n, t] : seen_) Add(n, t, /*check=*/false);
    seen_.clear();
  }
  if (!Add(std::string(escaped), type, /*check=*/true)) {
    NoteOnce(std::string("metric \"") + std::string(raw) + "\" is left out of expositions with " +
             "escaping=" + std::string(SchemeName(scheme_)) + ": its escaped name \"" +
             std::string(escaped) + "\" writes a sample that an earlier family writes");
    return false;
  }
  return true;
}

bool FamilyNameClaims::Add(const std::string& name, MetricType type, bool check) {
  const std::span<const std::string_view> suffixes = ClaimSuffixes(type);
  if (check) {
    if (claimed_.count(name) != 0) return false;
    for (std::string_view s : suffixes) {
      if (claimed_.count(name + std::string(s)) != 0) return false;
    }
  }
  claimed_.insert(name);
  for (std::string_view s : suffixes) claimed_.insert(name + std::string(s));
  return true;
}

bool HasDuplicateLabel(std::span<const std::string_view> names, std::string_view added) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == added) return true;
    for (size_t j = i + 1; j < names.size(); ++j) {
      if (names[i] == names[j]) return true;
    }
  }
  return false;
}

}  // namespace shmetrics::expose
