// Query-string helpers for the metrics endpoint.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_HTTP_QUERY_H_
#define SHMETRICS_SRC_HTTP_QUERY_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shmetrics::http {

// ParseNameFilters()
//
// Returns the values of the `name[]` parameters of a raw query string (the part after '?'), as
// Prometheus client libraries accept them to restrict a scrape to some metric families. Keys
// and values are URL-decoded ('+' is a space; `name%5B%5D` and `name%5b%5d` are `name[]`).
// Other parameters are ignored. Parameters whose key or value holds an invalid %-escape, and
// empty values, are skipped; duplicates are kept once, in order of first appearance. Any input,
// however hostile, yields a result (possibly empty) and never more than the input's size in
// total bytes.
//
// Example:
//   ParseNameFilters("name[]=up&name%5B%5D=http_requests&x=1")  // {"up", "http_requests"}
std::vector<std::string> ParseNameFilters(std::string_view query);

// Decodes %XX escapes and '+' (as a space). Returns nullopt on an invalid escape.
std::optional<std::string> UrlDecode(std::string_view text);

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_QUERY_H_
