// GCC 12 warns (-Wtsan) that the fences inside Asio's handler invocation are invisible to
// ThreadSanitizer; see src/http/connection.cc.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "push/http_client.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "openssl/err.h"
#include "openssl/ssl.h"
#include "openssl/x509v3.h"

namespace shmetrics::push {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Debian's Abseil is built with its own string_view, which std::string_view does not convert
// to, so the few string utilities needed here are local (as in src/http/connection.cc).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return absl::ascii_tolower(static_cast<unsigned char>(x)) ==
                  absl::ascii_tolower(static_cast<unsigned char>(y));
         });
}

std::string_view StripWhitespace(std::string_view text) {
  auto space = [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool IsValidFieldValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Visible ASCII only: what may go into a request line or a Host field unescaped.
bool IsVisibleAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
}

// The OpenSSL error queue's newest entry, for messages; clears the queue.
std::string TlsErrorText(const error_code& ec) {
  std::string text = ec ? ec.message() : std::string("unknown error");
  if (unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the ", std::string(what), " file '", path, "'"));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the ", std::string(what), " file '", path, "'"));
  }
  return std::string(StripWhitespace(content.str()));
}

// Runs one request's asynchronous steps on its own io_context, each until it completes or the
// request's deadline passes. On the deadline, `abort` (closing the socket, cancelling the
// resolver) makes the pending operation complete with an error, which the caller reports as
// the timeout because expired() is then true.
class Loop {
 public:
  explicit Loop(Clock::time_point deadline) : deadline_(deadline) {}

  asio::io_context& context() { return ioc_; }
  bool expired() const { return expired_; }

  void Wait(const bool& done, const std::function<void()>& abort) {
    ioc_.restart();
    while (!done) {
      if (expired_) {
        if (ioc_.run_one() == 0) return;  // nothing pending: cannot happen, but never spin
        continue;
      }
      if (ioc_.run_one_until(deadline_) == 0 && !done) {
        if (Clock::now() >= deadline_) {
          expired_ = true;
          abort();
        } else if (ioc_.stopped()) {
          return;  // nothing pending: cannot happen, but never spin
        }
      }
    }
  }

 private:
  asio::io_context ioc_{1};
  const Clock::time_point deadline_;
  bool expired_ = false;
};

// The socket (plain) or the TLS stream over it, as one writable/readable thing.
struct Connection {
  explicit Connection(asio::io_context& ioc) : socket(ioc) {}

  void Close() {
    error_code ignored;
    tcp::socket& s = tls ? tls->next_layer() : socket;
    s.shutdown(tcp::socket::shutdown_both, ignored);
    s.close(ignored);
  }

  tcp::socket socket;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
};

std::string UrlForMessages(const ParsedUrl& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  std::string path = url.target.substr(0, url.target.find('?'));
  return absl::StrCat(url.tls ? "https://" : "http://", host, ":", url.port, path);
}

}  // namespace

absl::StatusOr<ParsedUrl> ParseUrl(std::string_view url) {
  auto invalid = [url](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid URL '", std::string(url), "': ", std::string(why)));
  };
  ParsedUrl out;
  std::string_view rest;
  auto has_scheme = [url](std::string_view scheme) {
    return url.size() >= scheme.size() && EqualsIgnoreCase(url.substr(0, scheme.size()), scheme);
  };
  if (has_scheme("http://")) {
    rest = url.substr(7);
  } else if (has_scheme("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return invalid("the scheme must be http:// or https://");
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  target = target.substr(0, target.find('#'));
  if (authority.find('@') != std::string_view::npos) {
    return invalid("user information is not accepted; configure the credentials instead");
  }
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid("unterminated '[' in the host");
    host = authority.substr(1, close - 1);
    bracketed = true;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("unexpected text after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return invalid("empty port");
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return invalid("empty port");
      if (port.find(':') != std::string_view::npos) {
        return invalid("an IPv6 host must be written in brackets");
      }
    }
  }
  if (host.empty()) return invalid("empty host");
  if (!IsVisibleAscii(host) || host.find_first_of("[]/\\") != std::string_view::npos ||
      (!bracketed && host.find(':') != std::string_view::npos)) {
    return invalid("bad character in the host");
  }
  out.port = out.tls ? 443 : 80;
  if (!port.empty()) {
    uint32_t value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return invalid("the port is not a number");
      value = value * 10 + static_cast<uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) return invalid("the port must be in 1..65535");
    out.port = static_cast<uint16_t>(value);
  }
  if (!IsVisibleAscii(target)) return invalid("the path holds spaces or control characters");
  out.host = std::string(host);
  out.target = target.empty() || target.front() == '?' ? absl::StrCat("/", std::string(target))
                                                       : std::string(target);
  out.host_header = bracketed ? absl::StrCat("[", out.host, "]") : out.host;
  if (out.port != (out.tls ? 443 : 80)) absl::StrAppend(&out.host_header, ":", out.port);
  return out;
}

class HttpClient::Impl {
 public:
  Impl(ClientOptions options, std::unique_ptr<asio::ssl::context> tls)
      : options_(std::move(options)), tls_(std::move(tls)) {}

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) const;

 private:
  absl::StatusOr<std::string> Authorization() const;
  absl::StatusOr<bhttp::request<bhttp::string_body>> BuildRequest(const HttpRequest& request,
                                                                  const ParsedUrl& url) const;

  // Constant after construction.
  const ClientOptions options_;
  const std::unique_ptr<asio::ssl::context> tls_;  // SSL_CTX is safe to share across threads
};

absl::StatusOr<std::string> HttpClient::Impl::Authorization() const {
  const ClientOptions& o = options_;
  if (!o.basic_auth_user.empty()) {
    std::string password = o.basic_auth_password;
    if (password.empty() && !o.basic_auth_password_file.empty()) {
      auto read = ReadSecretFile(o.basic_auth_password_file, "basic auth password");
      if (!read.ok()) return read.status();
      password = *std::move(read);
    }
    return absl::StrCat("Basic ",
                        absl::Base64Escape(absl::StrCat(o.basic_auth_user, ":", password)));
  }
  if (!o.bearer_token.empty()) return absl::StrCat("Bearer ", o.bearer_token);
  if (!o.bearer_token_file.empty()) {
    auto read = ReadSecretFile(o.bearer_token_file, "bearer token");
    if (!read.ok()) return read.status();
    if (read->empty() || !IsValidFieldValue(*read)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the bearer token file '", o.bearer_token_file, "' holds no usable token"));
    }
    return absl::StrCat("Bearer ", *read);
  }
  return std::string();
}

absl::StatusOr<bhttp::request<bhttp::string_body>> HttpClient::Impl::BuildRequest(
    const HttpRequest& request, const ParsedUrl& url) const {
  if (!IsToken(request.method)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid HTTP method '", request.method, "'"));
  }
  auto authorization = Authorization();
  if (!authorization.ok()) return authorization.status();
  bhttp::request<bhttp::string_body> req;
  req.method_string(request.method);
  req.target(url.target);
  req.version(11);
  req.set(bhttp::field::host, url.host_header);
  req.set(bhttp::field::user_agent, options_.user_agent);
  if (!authorization->empty()) req.set(bhttp::field::authorization, *authorization);
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name) || !IsValidFieldValue(value)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid header field '", name, "'"));
    }
    for (std::string_view own : {"host", "content-length", "transfer-encoding", "connection",
                                 "keep-alive", "user-agent"}) {
      if (EqualsIgnoreCase(name, own)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the header field '", name, "' is set by the client itself"));
      }
    }
    if (!authorization->empty() && EqualsIgnoreCase(name, "authorization")) {
      return absl::InvalidArgumentError(
          "an Authorization header field conflicts with the client's configured credentials");
    }
    req.insert(name, value);
  }
  req.set(bhttp::field::connection, "close");
  req.body() = request.body;
  const std::string_view method = request.method;
  if (!request.body.empty() || (method != "GET" && method != "HEAD" && method != "DELETE")) {
    req.content_length(request.body.size());
  }
  return req;
}

absl::StatusOr<HttpResponse> HttpClient::Impl::Send(const HttpRequest& request) const {
  auto url = ParseUrl(request.url);
  if (!url.ok()) return url.status();
  auto req = BuildRequest(request, *url);
  if (!req.ok()) return req.status();

  const auto timeout = options_.timeout;
  Loop loop(Clock::now() + timeout);
  Connection conn(loop.context());
  const std::string where = UrlForMessages(*url);
  auto failure = [&](std::string_view phase, const std::string& detail) {
    if (loop.expired()) {
      return absl::DeadlineExceededError(absl::StrCat(request.method, " ", where,
                                                      ": timed out after ", timeout.count(),
                                                      " ms while ", std::string(phase)));
    }
    return absl::UnavailableError(
        absl::StrCat(request.method, " ", where, ": ", std::string(phase), " failed: ", detail));
  };

  // Resolve: IP literals directly, names through the resolver.
  tcp::resolver::results_type endpoints;
  {
    error_code ec;
    asio::ip::address literal = asio::ip::make_address(url->host, ec);
    if (!ec) {
      endpoints = tcp::resolver::results_type::create(tcp::endpoint(literal, url->port), url->host,
                                                      std::to_string(url->port));
    } else {
      tcp::resolver resolver(loop.context());
      bool done = false;
      resolver.async_resolve(url->host, std::to_string(url->port),
                             [&](const error_code& e, tcp::resolver::results_type results) {
                               ec = e;
                               endpoints = std::move(results);
                               done = true;
                             });
      loop.Wait(done, [&] { resolver.cancel(); });
      if (ec || loop.expired()) {
        return failure(absl::StrCat("resolving '", url->host, "'"), ec.message());
      }
    }
  }

  auto step = [&](std::string_view phase, auto start) -> absl::Status {
    error_code ec;
    bool done = false;
    start([&](const error_code& e, auto&&...) {
      ec = e;
      done = true;
    });
    loop.Wait(done, [&] { conn.Close(); });
    if (ec || loop.expired()) {
      return failure(phase,
                     phase == std::string_view("TLS handshake") ? TlsErrorText(ec) : ec.message());
    }
    return absl::OkStatus();
  };

  if (absl::Status s = step(
          "connecting",
          [&](auto handler) { asio::async_connect(conn.socket, endpoints, std::move(handler)); });
      !s.ok()) {
    return s;
  }
  error_code ignored;
  conn.socket.set_option(tcp::no_delay(true), ignored);

  if (url->tls) {
    conn.tls.emplace(std::move(conn.socket), *tls_);
    const TlsClientOptions& t = options_.tls;
    const std::string& name = t.server_name.empty() ? url->host : t.server_name;
    SSL* ssl = conn.tls->native_handle();
    error_code not_ip;
    asio::ip::make_address(name, not_ip);
    if (not_ip) SSL_set_tlsext_host_name(ssl, name.c_str());
    if (!t.insecure_skip_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (!not_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
      }
    }
    absl::Status s = step("TLS handshake", [&](auto handler) {
      conn.tls->async_handshake(asio::ssl::stream_base::client, std::move(handler));
    });
    if (!s.ok()) {
      if (long v = SSL_get_verify_result(ssl); v != X509_V_OK && !loop.expired()) {
        return absl::UnavailableError(absl::StrCat(
            request.method, " ", where,
            ": the server's certificate is not trusted: ", X509_verify_cert_error_string(v)));
      }
      return s;
    }
  }

  // The rest is the same over either stream.
  auto exchange = [&](auto& stream) -> absl::StatusOr<HttpResponse> {
    if (absl::Status s =
            step("writing the request",
                 [&](auto handler) { bhttp::async_write(stream, *req, std::move(handler)); });
        !s.ok()) {
      return s;
    }
    beast::flat_buffer buffer;
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_storage;
    // Interim 1xx answers (a server may send 100 Continue unasked) are skipped: each is a whole
    // message, so the final one needs a parser of its own.
    for (;;) {
      parser_storage.emplace();
      auto& p = *parser_storage;
      p.header_limit(static_cast<std::uint32_t>(
          std::min<size_t>(options_.max_response_header_bytes, UINT32_MAX)));
      // No limit (the loop below reads at most max_body + 1 bytes). Not boost::none: Beast 1.74
      // compares a Content-Length against an empty optional as if it were exceeded.
      p.body_limit(std::numeric_limits<std::uint64_t>::max());
      // A response to HEAD announces a body it does not carry.
      if (request.method == "HEAD") p.skip(true);
      if (absl::Status s = step("reading the response",
                                [&](auto handler) {
                                  bhttp::async_read_header(stream, buffer, p, std::move(handler));
                                });
          !s.ok()) {
        return s;
      }
      const unsigned status = p.get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
    }
    auto& parser = *parser_storage;
    HttpResponse response;
    const auto& head = parser.get();
    response.status = static_cast<int>(head.result_int());
    const beast::string_view reason = head.reason();
    response.status_line =
        absl::StrCat("HTTP/", head.version() / 10, ".", head.version() % 10, " ", response.status);
    if (!reason.empty()) {
      absl::StrAppend(&response.status_line, " ", std::string(reason.data(), reason.size()));
    }
    for (const auto& field : head) {
      response.headers.emplace_back(
          std::string(field.name_string().data(), field.name_string().size()),
          std::string(field.value().data(), field.value().size()));
    }
    const size_t max_body = options_.max_response_body_bytes;
    std::array<char, 8192> chunk;
    while (!parser.is_done()) {
      // Never read more than one byte past the limit: that byte tells truncation apart.
      const size_t want = std::min(chunk.size(), max_body + 1 - response.body.size());
      parser.get().body().data = chunk.data();
      parser.get().body().size = want;
      error_code ec;
      bool done = false;
      bhttp::async_read(stream, buffer, parser, [&](const error_code& e, size_t) {
        ec = e;
        done = true;
      });
      loop.Wait(done, [&] { conn.Close(); });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec || loop.expired()) return failure("reading the response body", ec.message());
      response.body.append(chunk.data(), want - parser.get().body().size);
      if (response.body.size() > max_body) {
        response.body.resize(max_body);
        response.body_truncated = true;
        break;
      }
    }
    return response;
  };
  absl::StatusOr<HttpResponse> response = conn.tls ? exchange(*conn.tls) : exchange(conn.socket);
  conn.Close();
  return response;
}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(ClientOptions options) {
  if (options.timeout.count() <= 0) {
    return absl::InvalidArgumentError("the HTTP client's timeout must be positive");
  }
  const int kinds = (!options.basic_auth_user.empty() ? 1 : 0) +
                    (!options.bearer_token.empty() ? 1 : 0) +
                    (!options.bearer_token_file.empty() ? 1 : 0);
  if (kinds > 1) {
    return absl::InvalidArgumentError(
        "at most one of basic auth, a bearer token and a bearer token file may be configured");
  }
  if (options.basic_auth_user.empty() &&
      (!options.basic_auth_password.empty() || !options.basic_auth_password_file.empty())) {
    return absl::InvalidArgumentError("a basic auth password needs a user name");
  }
  if (!options.basic_auth_password.empty() && !options.basic_auth_password_file.empty()) {
    return absl::InvalidArgumentError(
        "at most one of a basic auth password and a password file may be configured");
  }
  if (options.basic_auth_user.find(':') != std::string::npos) {
    return absl::InvalidArgumentError("a basic auth user name may not hold ':'");
  }
  if (!IsValidFieldValue(options.bearer_token) || !IsValidFieldValue(options.user_agent) ||
      !IsValidFieldValue(options.basic_auth_user) ||
      !IsValidFieldValue(options.basic_auth_password)) {
    return absl::InvalidArgumentError("credentials and User-Agent may not hold CR, LF or NUL");
  }
  const TlsClientOptions& t = options.tls;
  if (t.cert_file.empty() != t.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a TLS client certificate and its key must be configured together");
  }
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  error_code ec;
  ctx->set_verify_mode(t.insecure_skip_verify ? asio::ssl::verify_none : asio::ssl::verify_peer,
                       ec);
  if (t.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    ERR_clear_error();  // a system without a trust store fails later, at the handshake
  } else {
    ctx->load_verify_file(t.ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load the TLS CA file '", t.ca_file, "': ", TlsErrorText(ec)));
    }
  }
  if (!t.cert_file.empty()) {
    ctx->use_certificate_chain_file(t.cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load the TLS client certificate from '", t.cert_file, "': ", TlsErrorText(ec)));
    }
    ctx->use_private_key_file(t.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("cannot load the TLS client key from '",
                                                     t.key_file, "': ", TlsErrorText(ec)));
    }
    if (SSL_CTX_check_private_key(native) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("the TLS client key '", t.key_file,
                                                     "' does not match the certificate '",
                                                     t.cert_file, "': ", TlsErrorText({})));
    }
  }
  return std::unique_ptr<HttpClient>(
      new HttpClient(std::make_unique<Impl>(std::move(options), std::move(ctx))));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) const {
  return impl_->Send(request);
}

}  // namespace shmetrics::push
