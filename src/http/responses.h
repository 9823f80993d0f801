// The canned responses of the metrics endpoint's handler: 404, 405 with Allow, a plain-text body,
// the landing page, and the GET/HEAD test they go with. The routing itself is a few `if`s in the
// handler (see the example), not a table.
//
// Thread safety: pure functions, safe from any thread.
//
// Example (the handler of an exposer):
//   Response Handle(const Request& req) {
//     if (req.path != "/metrics" && req.path != "/" && req.path != "/-/healthy") {
//       return NotFound();
//     }
//     if (!IsGetOrHead(req)) return MethodNotAllowed();
//     if (req.path == "/") return LandingPage("myapp", "/metrics");
//     if (req.path == "/-/healthy") return TextResponse(200, "OK\n");
//     ...
//   }
#ifndef SHMETRICS_SRC_HTTP_RESPONSES_H_
#define SHMETRICS_SRC_HTTP_RESPONSES_H_

#include <string>
#include <string_view>

#include "http/server.h"

namespace shmetrics::http {

// True for GET and HEAD, the only methods the metrics endpoint serves.
[[nodiscard]] bool IsGetOrHead(const Request& request);

// `status` with a text/plain; charset=utf-8 body.
[[nodiscard]] Response TextResponse(int status, std::string body);

// 404 "Not Found\n".
[[nodiscard]] Response NotFound();

// 405 "Method Not Allowed\n" with `Allow: GET, HEAD`.
[[nodiscard]] Response MethodNotAllowed();

// 200 with a small HTML page titled `title` (HTML-escaped) linking to `metrics_path`.
[[nodiscard]] Response LandingPage(std::string_view title, std::string_view metrics_path);

// Escapes &, <, >, " and ' for HTML text and attribute values.
[[nodiscard]] std::string HtmlEscape(std::string_view text);

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_RESPONSES_H_
