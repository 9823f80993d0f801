#include "expose/names.h"

#include <cstddef>
#include <cstdint>

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

}  // namespace shmetrics::expose
