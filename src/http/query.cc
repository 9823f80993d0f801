#include "http/query.h"

#include <unordered_set>

namespace shmetrics::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (text.size() - i < 3) return std::nullopt;
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> ParseNameFilters(std::string_view query) {
  std::vector<std::string> names;
  std::unordered_set<std::string> seen;  // keeps hostile queries with many names linear
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;  // "name[]" alone names nothing
    std::optional<std::string> key = UrlDecode(pair.substr(0, eq));
    if (!key.has_value() || *key != "name[]") continue;
    std::optional<std::string> value = UrlDecode(pair.substr(eq + 1));
    if (!value.has_value() || value->empty()) continue;
    if (!seen.insert(*value).second) continue;
    names.push_back(*std::move(value));
  }
  return names;
}

}  // namespace shmetrics::http
