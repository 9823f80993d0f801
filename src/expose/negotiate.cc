#include "expose/negotiate.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "expose/names.h"

namespace shmetrics::expose {
namespace {

// One comma-separated element of an Accept or Accept-Encoding header, with the parameters the
// callers care about. Views point into the header.
struct Element {
  std::string_view value;  // media range or content coding, trimmed
  double q = 1;            // -1 when the q parameter is malformed
  bool has_version = false;
  std::string_view version;  // unquoted, as the other parameter values
  std::string_view proto;
  std::string_view encoding;
  std::string_view escaping;
};

// EqualsIgnoreCase would do, but Debian's Abseil has its own string_view type, not
// std::string_view. expected is lower case.
bool EqualsIgnoreCase(std::string_view s, std::string_view expected) {
  if (s.size() != expected.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != expected[i]) return false;
  }
  return true;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// Parses an RFC 9110 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]. Returns -1 otherwise.
double ParseQ(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s[0] != '0' && s[0] != '1')) return -1;
  if (s.size() == 1) return s[0] - '0';
  if (s[1] != '.') return -1;
  int thousandths = 0;
  int scale = 100;
  for (size_t i = 2; i < s.size(); ++i, scale /= 10) {
    if (s[i] < '0' || s[i] > '9') return -1;
    thousandths += (s[i] - '0') * scale;
  }
  if (s[0] == '1') return thousandths == 0 ? 1 : -1;
  return thousandths / 1000.0;
}

// Scans header once, left to right, calling fn(const Element&) for each element. Every loop
// advances pos, so the work is linear in the header's length whatever it holds. Quoted parameter
// values may hold commas and semicolons.
template <typename Fn>
void ForEachElement(std::string_view header, Fn fn) {
  size_t pos = 0;
  const size_t n = header.size();
  while (pos < n) {
    Element e;
    const size_t value_begin = pos;
    while (pos < n && header[pos] != ',' && header[pos] != ';') ++pos;
    e.value = Trim(header.substr(value_begin, pos - value_begin));
    while (pos < n && header[pos] == ';') {
      ++pos;
      const size_t name_begin = pos;
      while (pos < n && header[pos] != '=' && header[pos] != ',' && header[pos] != ';') ++pos;
      const std::string_view name = Trim(header.substr(name_begin, pos - name_begin));
      std::string_view param_value;
      if (pos < n && header[pos] == '=') {
        ++pos;
        while (pos < n && IsOws(header[pos])) ++pos;
        if (pos < n && header[pos] == '"') {
          ++pos;
          const size_t quoted_begin = pos;
          while (pos < n && header[pos] != '"') pos += header[pos] == '\\' ? 2 : 1;
          pos = std::min(pos, n);  // a trailing backslash may have stepped past the end
          param_value = header.substr(quoted_begin, pos - quoted_begin);
          if (pos < n) ++pos;                                                 // closing quote
          while (pos < n && header[pos] != ',' && header[pos] != ';') ++pos;  // junk after it
        } else {
          const size_t value_begin2 = pos;
          while (pos < n && header[pos] != ',' && header[pos] != ';') ++pos;
          param_value = Trim(header.substr(value_begin2, pos - value_begin2));
        }
      }
      if (EqualsIgnoreCase(name, "q")) {
        e.q = ParseQ(param_value);
      } else if (EqualsIgnoreCase(name, "version")) {
        e.has_version = true;
        e.version = param_value;
      } else if (EqualsIgnoreCase(name, "proto")) {
        e.proto = param_value;
      } else if (EqualsIgnoreCase(name, "encoding")) {
        e.encoding = param_value;
      } else if (EqualsIgnoreCase(name, "escaping")) {
        e.escaping = param_value;
      }
    }
    if (pos < n) ++pos;  // the comma
    if (!e.value.empty()) fn(e);
  }
}

// An unknown scheme counts as absent, as in Prometheus's expfmt.
Escaping ParseEscaping(std::string_view s) {
  if (EqualsIgnoreCase(s, "allow-utf-8")) return Escaping::kAllowUtf8;
  if (EqualsIgnoreCase(s, "dots")) return Escaping::kDots;
  if (EqualsIgnoreCase(s, "values")) return Escaping::kValues;
  return Escaping::kUnderscores;
}

}  // namespace

Negotiated Negotiate(std::string_view accept_header) {
  // The best q seen for each format, and the escaping asked for by the first entry with it.
  struct Best {
    double q = 0;
    std::string_view escaping;
    void Offer(const Element& e) {
      if (e.q > q) {
        q = e.q;
        escaping = e.escaping;
      }
    }
  };
  Best protobuf, openmetrics, prometheus;
  ForEachElement(accept_header, [&](const Element& e) {
    if (EqualsIgnoreCase(e.value, "application/vnd.google.protobuf")) {
      if (EqualsIgnoreCase(e.proto, "io.prometheus.client.metricfamily") &&
          EqualsIgnoreCase(e.encoding, "delimited")) {
        protobuf.Offer(e);
      }
    } else if (EqualsIgnoreCase(e.value, "application/openmetrics-text")) {
      if (!e.has_version || e.version == "1.0.0") openmetrics.Offer(e);
    } else if (EqualsIgnoreCase(e.value, "text/plain")) {
      if (!e.has_version || e.version == "0.0.4") prometheus.Offer(e);
    } else if (e.value == "*/*" || EqualsIgnoreCase(e.value, "text/*")) {
      prometheus.Offer(e);
    }
  });
  if (protobuf.q > 0 && protobuf.q >= openmetrics.q && protobuf.q >= prometheus.q) {
    return {Format::kProtobuf, ParseEscaping(protobuf.escaping)};
  }
  if (openmetrics.q > 0 && openmetrics.q >= prometheus.q) {
    return {Format::kOpenMetrics, ParseEscaping(openmetrics.escaping)};
  }
  return {Format::kPrometheus, ParseEscaping(prometheus.escaping)};
}

Format NegotiateFormat(std::string_view accept_header) { return Negotiate(accept_header).format; }

std::string ContentType(Format format, Escaping escaping) {
  std::string out(ContentType(format));
  if (escaping != Escaping::kUnderscores) {
    out.append("; escaping=");
    out.append(SchemeName(escaping));
  }
  return out;
}

std::string_view ContentType(Format format) {
  switch (format) {
    case Format::kOpenMetrics:
      return "application/openmetrics-text; version=1.0.0; charset=utf-8";
    case Format::kProtobuf:
      return "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
             "encoding=delimited";
    case Format::kPrometheus:
      break;
  }
  return "text/plain; version=0.0.4; charset=utf-8";
}

bool AcceptsGzip(std::string_view accept_encoding) {
  double gzip_q = -1;  // -1: not named
  double star_q = -1;
  ForEachElement(accept_encoding, [&](const Element& e) {
    if (EqualsIgnoreCase(e.value, "gzip") || EqualsIgnoreCase(e.value, "x-gzip")) {
      // A malformed q counts as absent; of two gzip entries the more generous one wins.
      if (e.q >= 0) gzip_q = std::max(gzip_q, e.q);
    } else if (e.value == "*") {
      if (e.q >= 0) star_q = std::max(star_q, e.q);
    }
  });
  if (gzip_q >= 0) return gzip_q > 0;
  return star_q > 0;
}

}  // namespace shmetrics::expose
