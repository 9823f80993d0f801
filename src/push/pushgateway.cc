#include "push/pushgateway.h"

#include <algorithm>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collect/exposition.h"
#include "expose/encoder.h"
#include "expose/negotiate.h"
#include "shm/status_error.h"

namespace shmetrics::push {
namespace {

bool IsLabelName(std::string_view name) {
  if (name.empty()) return false;
  auto ok = [](char c, bool first) {
    return c == '_' || absl::ascii_isalpha(static_cast<unsigned char>(c)) ||
           (!first && absl::ascii_isdigit(static_cast<unsigned char>(c)));
  };
  for (size_t i = 0; i < name.size(); ++i) {
    if (!ok(name[i], i == 0)) return false;
  }
  return true;
}

// RFC 3986 unreserved characters stay, every other byte becomes %XX.
std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

// "/<name>/<value>" in the Pushgateway's encoding.
std::string Segment(std::string_view name, std::string_view value) {
  if (value.empty()) return absl::StrCat("/", std::string(name), "@base64/=");
  if (value.find('/') != std::string_view::npos) {
    return absl::StrCat("/", std::string(name), "@base64/",
                        absl::WebSafeBase64Escape(absl::string_view(value.data(), value.size())));
  }
  return absl::StrCat("/", std::string(name), "/", PercentEncode(value));
}

const char* MethodName(PushMethod method) {
  switch (method) {
    case PushMethod::kPut:
      return "PUT";
    case PushMethod::kPost:
      return "POST";
    case PushMethod::kDelete:
      return "DELETE";
  }
  return "PUT";
}

absl::StatusCode CodeForStatus(int status) {
  if (status == 400) return absl::StatusCode::kInvalidArgument;
  if (status == 401) return absl::StatusCode::kUnauthenticated;
  if (status == 403) return absl::StatusCode::kPermissionDenied;
  if (status >= 500) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kFailedPrecondition;
}

}  // namespace

absl::StatusOr<std::string> GroupPath(
    std::string_view job, const std::vector<std::pair<std::string, std::string>>& grouping) {
  if (job.empty()) return absl::InvalidArgumentError("the Pushgateway job name is empty");
  std::string path = absl::StrCat("/metrics", Segment("job", job));
  std::set<std::string> seen;
  for (const auto& [name, value] : grouping) {
    if (!IsLabelName(name) || name.rfind("__", 0) == 0 || name == "job") {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid grouping label name '", name,
          "': it must match [a-zA-Z_][a-zA-Z0-9_]*, not start with '__' and not be 'job'"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the grouping label '", name, "' is given twice"));
    }
    path += Segment(name, value);
  }
  return path;
}

ClientOptions GatewayClientOptions(const PushGatewayOptions& o) {
  ClientOptions c;
  c.timeout = o.timeout;
  c.tls = {.ca_file = o.ca_file,
           .cert_file = o.cert_file,
           .key_file = o.key_file,
           .server_name = o.server_name,
           .insecure_skip_verify = o.insecure_skip_verify};
  c.basic_auth_user = o.basic_auth_user;
  c.basic_auth_password = o.basic_auth_password;
  c.bearer_token = o.bearer_token;
  return c;
}

absl::Status PushToGateway(const HttpClient& client, std::string_view base_url,
                           const std::string& group_path, PushMethod method, std::string body) {
  auto parsed = ParseUrl(base_url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->target.find('?') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("the Pushgateway URL '", std::string(base_url), "' may not have a query"));
  }
  std::string url(base_url.substr(0, base_url.find('#')));
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += group_path;
  HttpRequest request{.method = MethodName(method), .url = url};
  if (method != PushMethod::kDelete) {
    request.headers.emplace_back("Content-Type",
                                 std::string(expose::ContentType(expose::Format::kPrometheus)));
    request.body = std::move(body);
  }
  auto response = client.Send(request);
  if (!response.ok()) return response.status();
  if (response->status / 100 == 2) return absl::OkStatus();
  std::string detail = response->body.substr(0, 512);
  while (!detail.empty() && absl::ascii_isspace(static_cast<unsigned char>(detail.back()))) {
    detail.pop_back();
  }
  return absl::Status(CodeForStatus(response->status),
                      absl::StrCat("the Pushgateway answered ", request.method, " ", url, " with ",
                                   response->status_line, detail.empty() ? "" : ": ", detail));
}

absl::Status PushHeapsToGateway(const std::string& url, const std::vector<Heap>& heaps,
                                const PushGatewayOptions& options) {
  auto path = GroupPath(options.job, options.grouping);
  if (!path.ok()) return path.status();
  auto client = HttpClient::Create(GatewayClientOptions(options));
  if (!client.ok()) return client.status();
  std::string body;
  if (options.method != PushMethod::kDelete) {
    if (absl::Status s = collect::EncodeHeaps(heaps, expose::Format::kPrometheus, {}, &body);
        !s.ok()) {
      return s;
    }
  }
  return PushToGateway(**client, url, *path, options.method, std::move(body));
}

}  // namespace shmetrics::push

namespace shmetrics {

void PushToGateway(const std::string& url, const std::vector<Heap>& heaps,
                   const PushGatewayOptions& options) {
  if (absl::Status s = push::PushHeapsToGateway(url, heaps, options); !s.ok()) throw ToError(s);
}

void PushToGateway(const std::string& url, const Heap& heap, const PushGatewayOptions& options) {
  PushToGateway(url, std::vector<Heap>{heap}, options);
}

}  // namespace shmetrics
