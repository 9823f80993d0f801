#include "http/responses.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace shmetrics::http {

bool IsGetOrHead(const Request& request) {
  return request.method == "GET" || request.method == "HEAD";
}

Response TextResponse(int status, std::string body) {
  return Response{
      .status = status, .content_type = "text/plain; charset=utf-8", .body = std::move(body)};
}

Response NotFound() { return TextResponse(404, "Not Found\n"); }

Response MethodNotAllowed() {
  Response response = TextResponse(405, "Method Not Allowed\n");
  response.extra_headers.emplace_back("Allow", "GET, HEAD");
  return response;
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Response LandingPage(std::string_view title, std::string_view metrics_path) {
  std::string t = HtmlEscape(title);
  std::string m = HtmlEscape(metrics_path);
  return Response{
      .status = 200,
      .content_type = "text/html; charset=utf-8",
      .body = absl::StrCat("<!DOCTYPE html>\n<html><head><title>", t, "</title></head>\n<body><h1>",
                           t, "</h1>\n<p><a href=\"", m, "\">Metrics</a></p>\n</body></html>\n")};
}

}  // namespace shmetrics::http
