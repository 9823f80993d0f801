// HttpClient: a small blocking HTTP/1.1 client for pushing metrics out (Boost.Beast underneath).
//
// One request per call: the client resolves the URL's host, connects, optionally speaks TLS,
// writes the request with its body, reads the status line, header and at most
// max_response_body_bytes of the body, and closes the connection. A single deadline covers the
// whole request (resolve, connect, handshake, write and read), so a receiver that accepts the
// connection and never answers costs at most `timeout`. Authentication (basic auth or a bearer
// token, as Prometheus's `remote_write` and the Pushgateway clients configure it) and TLS (CA
// file, client certificate, server name, insecure_skip_verify) are fixed at Create.
//
// An HTTP answer of any status is a successful Send: the caller decides what 4xx and 5xx mean.
// Send fails only when no complete response header arrived.
//
// Thread safety: Send may be called from any number of threads at once; each call has its own
// connection and event loop, and the client's state is constant after Create.
// Process safety (fork): the client holds no thread and no open connection between calls, so a
// forked child may use the parent's client as its own.
//
// Example:
//   auto client = shmetrics::push::HttpClient::Create({.timeout = std::chrono::seconds(10)});
//   if (!client.ok()) return client.status();
//   auto response = (*client)->Send({.method = "PUT",
//                                    .url = "http://127.0.0.1:9091/metrics/job/batch",
//                                    .headers = {{"Content-Type", "text/plain; version=0.0.4"}},
//                                    .body = "done 1\n"});
//   if (!response.ok()) return response.status();        // network, TLS or timeout
//   if (response->status / 100 != 2) ... response->status_line ...
#ifndef SHMETRICS_SRC_PUSH_HTTP_CLIENT_H_
#define SHMETRICS_SRC_PUSH_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace shmetrics::push {

struct TlsClientOptions {
  // PEM file of the CA certificates that may sign the server's certificate.
  // Default: "" (the system's default trust store)
  std::string ca_file{};

  // PEM files of a client certificate (chain, leaf first) and its private key, sent when the
  // server asks for one (mutual TLS).
  // REQUIRES: both set or both empty
  // Default: "" (no client certificate)
  std::string cert_file{};
  std::string key_file{};

  // The name sent as SNI and checked against the server's certificate (DNS name or IP
  // address).
  // Default: "" (the URL's host)
  std::string server_name{};

  // Accepts any certificate the server presents. For tests and trusted networks only: the
  // connection is encrypted but the server is not authenticated.
  // Default: false
  bool insecure_skip_verify = false;
};

struct ClientOptions {
  // The whole of one request, from resolving the host to the last byte of the response read,
  // must finish within this time; Send fails with DeadlineExceeded otherwise.
  // REQUIRES: timeout > 0
  // Default: 30 s (Prometheus's remote_timeout)
  std::chrono::milliseconds timeout{30000};

  // Most response body bytes kept; the rest is not read (the connection is closed anyway) and
  // HttpResponse::body_truncated is set.
  // Default: 64 KiB
  size_t max_response_body_bytes = 64 * 1024;

  // Largest response status line plus header fields accepted, in bytes.
  // Default: 16 KiB
  size_t max_response_header_bytes = 16 * 1024;

  // Used for https:// URLs only.
  TlsClientOptions tls{};

  // HTTP basic authentication: `Authorization: Basic base64(user:password)`. The password comes
  // from basic_auth_password or, when that is empty, from the file basic_auth_password_file
  // (read at every request, so a rotated password is picked up; surrounding whitespace is
  // dropped, as Prometheus does).
  // REQUIRES: at most one of basic auth, bearer_token and bearer_token_file
  // Default: "" (none)
  std::string basic_auth_user{};
  std::string basic_auth_password{};
  std::string basic_auth_password_file{};

  // `Authorization: Bearer <token>`, the token given here or read from bearer_token_file at
  // every request (surrounding whitespace dropped).
  // Default: "" (none)
  std::string bearer_token{};
  std::string bearer_token_file{};

  // The User-Agent header of every request.
  // Default: "shmetrics"
  std::string user_agent = "shmetrics";
};

struct HttpRequest {
  // "GET", "POST", "PUT", "DELETE", ... (any token).
  std::string method{};

  // "http://host[:port][/path][?query]" or "https://...". The host may be a name, an IPv4
  // literal or a bracketed IPv6 literal ("[::1]"). Path and query are sent as written (already
  // percent-encoded where needed); a fragment is dropped. User information ("user@") is refused:
  // credentials belong in ClientOptions.
  std::string url{};

  // More header fields, e.g. {"Content-Type", "application/x-protobuf"}. Host, Content-Length,
  // Transfer-Encoding, Connection, User-Agent and (when the client authenticates) Authorization
  // are the client's own and may not appear here; names must be tokens and values free of CR,
  // LF and NUL.
  std::vector<std::pair<std::string, std::string>> headers{};

  // Sent with Content-Length (also when empty, for methods other than GET, HEAD and DELETE).
  std::string body{};
};

struct HttpResponse {
  int status = 0;               // e.g. 400
  std::string status_line{};    // the first line as received, e.g. "HTTP/1.1 400 Bad Request"
  std::string body{};           // at most max_response_body_bytes of it
  bool body_truncated = false;  // the body was longer than max_response_body_bytes
  std::vector<std::pair<std::string, std::string>> headers{};  // as received, in order
};

class HttpClient {
 public:
  // A client with `options`. InvalidArgument for contradictory options (two kinds of
  // authentication, a client certificate without its key, timeout <= 0) and for TLS files that
  // cannot be loaded (naming the file). Token and password files are only read by Send.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpClient>> Create(ClientOptions options);

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  // Sends `request` and returns the response, whatever its status. Errors:
  // - InvalidArgument: a malformed URL, method or header, an unsupported scheme, or a token or
  //   password file that cannot be read (naming it). Nothing was sent.
  // - DeadlineExceeded: options.timeout passed before the response header (and the kept part of
  //   the body) arrived.
  // - Unavailable: the host did not resolve, the connection was refused or reset, the TLS
  //   handshake or the server's certificate failed, or the response was not valid HTTP/1.x.
  // Every message names the method and the URL (without its query) and says what failed.
  // Caveat: a host name (not an IP literal) whose DNS server never answers holds the call for
  // the system resolver's own timeout, since getaddrinfo cannot be interrupted.
  [[nodiscard]] absl::StatusOr<HttpResponse> Send(const HttpRequest& request) const;

 private:
  class Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);

  // Constant after construction.
  const std::unique_ptr<Impl> impl_;
};

// The parts of an http:// or https:// URL, as HttpClient::Send reads it. Exposed for the
// pushers that build URLs (and for tests).
struct ParsedUrl {
  bool tls = false;           // https
  std::string host{};         // without brackets, e.g. "::1" or "example.com"
  uint16_t port = 0;          // explicit or 80 / 443
  std::string target{};       // path and query, at least "/"
  std::string host_header{};  // host[:port] as the Host header says it (port only when explicit
                              // and not the default)
};

// InvalidArgument (naming the URL) unless `url` is "http(s)://host[:port][/path][?query][#frag]"
// without user information, with a port in 1..65535 when given.
[[nodiscard]] absl::StatusOr<ParsedUrl> ParseUrl(std::string_view url);

}  // namespace shmetrics::push

#endif  // SHMETRICS_SRC_PUSH_HTTP_CLIENT_H_
