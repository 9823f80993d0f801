// Server: a small HTTP/1.1 server for the metrics endpoint (Boost.Beast underneath).
//
// The server parses requests, enforces limits and timeouts, and answers protocol errors itself
// (400, 413, 431, 503), optionally behind TLS (OpenSSL) and HTTP basic authentication; every
// well-formed (and authenticated) request goes to one Handler, which does all routing and
// content negotiation. Keep-alive, pipelining, HEAD and
// `Expect: 100-continue` are handled here so the handler only ever maps a Request to a Response.
//
// Thread safety: Start, port, endpoint and Stop may be called from any thread, except that
// Stop (and the destructor) must not be called from inside the handler. The handler runs on the
// server's io threads, concurrently with itself when options.threads > 1. A streamed body's
// producer (Response::stream) runs on the server's scrape threads, concurrently with other
// producers. Password hashes are verified on the server's verifier threads.
//
// Process safety (fork): the server's threads (io and verifier) exist only in the process that
// called Start. A child forked while the server runs must not use it; it may simply ignore it and
// exit() or _exit() freely (the server registers no atexit handler). A pthread_atfork child handler
// closes the child's copy of every running server's listening socket, so a child that outlives
// its parent never holds the port. If a child destroys the server anyway, the destructor
// notices the fork and leaks its state instead of touching the parent's threads or event queue,
// so the parent keeps serving. Connections the server closes are shut down first, so a child
// holding inherited copies of their descriptors does not keep them open for the client.
// Listening and accepted sockets are created close-on-exec (SOCK_CLOEXEC), so a fork+exec in any
// thread, or a posix_spawn, which runs no atfork handler, never passes them on.
//
// Example (NotFound and friends are in http/responses.h):
//   auto server = shmetrics::http::Server::Start(
//       {.address = "127.0.0.1", .port = 9464},
//       [](const shmetrics::http::Request& req) {
//         if (req.path != "/metrics") return shmetrics::http::NotFound();
//         return shmetrics::http::Response{.content_type = "text/plain", .body = "up 1\n"};
//       });
//   if (!server.ok()) return server.status();
//   ... (*server)->port() ...
//   (*server)->Stop();  // or let the unique_ptr go
#ifndef SHMETRICS_SRC_HTTP_SERVER_H_
#define SHMETRICS_SRC_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shmetrics::http {

struct ServerOptions {
  // Host to listen on: an IPv4 or IPv6 literal ("::1" and "[::1]" both work). Names are not
  // resolved.
  // Default: "127.0.0.1" (loopback only: the endpoint is owner-only unless told otherwise).
  std::string address = "127.0.0.1";

  // TCP port. 0 asks the kernel for a free port; port() tells which.
  // Default: 0
  uint16_t port = 0;

  // Number of io threads. The handler runs on them, so a slow handler delays other
  // connections when this is 1.
  // REQUIRES: threads >= 1
  // Default: 1
  int threads = 1;

  // The whole request (header and body) must arrive within this time, counted from the accept
  // for the first request of a connection and from the first byte for later ones. Slow clients
  // are dropped when it expires.
  // REQUIRES: read_timeout > 0
  // Default: 10 s
  std::chrono::milliseconds read_timeout{10000};

  // How long a keep-alive connection may sit idle between requests before it is closed.
  // REQUIRES: idle_timeout > 0
  // Default: 30 s
  std::chrono::milliseconds idle_timeout{30000};

  // The whole response must be written within this time, or the connection is dropped. For a
  // streamed body the time counts from its producer's start, not from a wait for a scrape thread.
  // REQUIRES: write_timeout > 0
  // Default: 30 s
  std::chrono::milliseconds write_timeout{30000};

  // Largest request line plus header fields, in bytes. Larger requests get 431 and a close.
  // REQUIRES: max_header_bytes >= 64
  // Default: 8192
  size_t max_header_bytes = 8192;

  // Largest request body, in bytes. Larger bodies (declared or chunked) get 413 and a close.
  // The metrics endpoint has no use for bodies; the limit only bounds what a client can push.
  // Default: 4096
  size_t max_body_bytes = 4096;

  // TLS: PEM files holding the certificate chain (leaf first) and its private key. Both empty
  // (the default) serves plain HTTP; both set serves HTTPS only: a connection must complete the
  // TLS handshake within read_timeout, and one that speaks plain HTTP or anything else is closed
  // without an answer. Files are read once, by Start; errors name the file.
  // REQUIRES: both set or both empty
  // Default: "" (plain HTTP)
  std::string tls_cert_file{};
  std::string tls_key_file{};

  // Oldest TLS version accepted: 12 (TLS 1.2) or 13 (TLS 1.3). Renegotiation and compression
  // are always off.
  // Default: 12
  int tls_min_version = 12;

  // Most connections open at once. A connection accepted beyond it gets a canned 503 (written
  // only if the socket takes it at once; not under TLS) and is closed, so the listener never
  // stalls. When accept() fails (EMFILE, ENFILE, ENOBUFS), the listener retries 50 ms later and
  // the pending connections wait in the kernel's backlog.
  // REQUIRES: max_connections >= 1
  // Default: 512
  size_t max_connections = 512;

  // Threads that run streamed bodies' producers (Response::stream), so a long exposition never
  // holds an io thread.
  // REQUIRES: scrape_threads >= 1
  // Default: 2
  int scrape_threads = 2;

  // Most streamed responses waiting for a scrape thread or running on one; a request beyond
  // that gets 503 "Too many scrapes at once" (with Retry-After: 1). A waiting one holds no body
  // buffer, only its connection.
  // REQUIRES: max_queued_scrapes >= 1
  // Default: 128
  size_t max_queued_scrapes = 128;

  // Basic authentication (see basic_auth.h): user -> crypt hash. Non-empty: every request must
  // carry the credentials of one of these users, or gets 401 without reaching the handler.
  // Password hashes are verified off the io threads, on min(2, cores / 2) (at least 1) verifier
  // threads of their own, so a flood of wrong passwords costs those threads, not the
  // scrapes; credentials verified once are remembered and accepted on the io thread without
  // hashing again. At most 8 verifications per verifier thread wait or run at once; a request
  // beyond that gets 503 "Too many password checks at once" (with Retry-After: 1) after a 1 s
  // pause that holds no thread, so clients retrying at once cannot keep the io threads busy.
  // Invalid users or hashes (bcrypt cost above 14, for one) make Start fail.
  // Default: {} (no authentication)
  std::map<std::string, std::string> basic_auth_users{};
};

// A well-formed request, as the handler sees it. Every view points into the server's buffers
// and is valid only during the handler call; copy what must outlive it.
struct Request {
  std::string_view method{};  // as sent, e.g. "GET", "HEAD", "POST"
  std::string_view path{};    // raw (not percent-decoded) target up to '?', e.g. "/metrics"
  std::string_view query{};   // raw, after '?'; empty if none
  std::string_view accept{};  // header values; empty when absent
  std::string_view accept_encoding{};
  std::string_view authorization{};
  bool head = false;  // method is HEAD: the server will send the headers only
};

// How a streamed body's producer hands the server its next piece: the server takes *piece's
// contents (leaving *piece empty, possibly with the capacity of a piece already sent, to reuse)
// and returns true, or returns false once the response cannot go on (the client is gone or too
// slow for write_timeout, or the server is stopping): the producer should then return at once.
// It blocks while 2 pieces of the response are still unsent, so a slow client slows its producer
// instead of growing memory. Called only from the producer's thread.
using BodySink = std::function<bool(std::string* piece)>;

// Writes a whole body through the sink, in pieces of any size (a few hundred KiB keeps both
// memory and per-piece costs small). An error returned before the server sent anything becomes
// a 500 carrying its message; after that, the connection is reset, without the final chunk, so
// the client sees a truncated body rather than a short one that looks complete.
using BodyProducer = std::function<absl::Status(const BodySink& sink)>;

// What the handler answers. The server adds Content-Length and Connection itself.
// (Members carry `{}` initializers so designated initializers such as
// `Response{.status = 404, .body = "..."}` build under -Wextra -Werror, where GCC would
// otherwise warn about the members left out.)
struct Response {
  // REQUIRES: 200 <= status <= 599 (others are sent as 500, since 1xx would break framing).
  int status = 200;
  std::string content_type{};      // omitted when empty
  std::string content_encoding{};  // omitted when empty, e.g. "gzip"
  std::string body{};              // not sent for HEAD, 204 and 304; its size is still announced
                                   // as Content-Length for HEAD
  // Set instead of body: the body is produced on a scrape thread, piece by piece, and sent as it
  // comes. A body of at most one piece is sent with Content-Length like `body`; a longer one with
  // chunked transfer encoding (HTTP/1.1) or, to an HTTP/1.0 client, delimited by the close of
  // the connection. HEAD (and 204, 304) runs no producer and announces no length.
  BodyProducer stream{};
  // More header fields, e.g. {"Allow", "GET, HEAD"}. Fields that carry framing
  // (Content-Length, Transfer-Encoding, Connection, Keep-Alive) and fields with invalid names or
  // values (CR, LF, NUL) are dropped rather than sent.
  std::vector<std::pair<std::string, std::string>> extra_headers{};
};

// Called once per well-formed request. May throw: an exception becomes a 500.
using Handler = std::function<Response(const Request&)>;

class Server {
 public:
  // Binds options.address:options.port, starts the io threads and returns the running server.
  // Errors name the address and port: InvalidArgument for bad options, an unreadable or
  // mismatched TLS certificate or key (naming the file), or an unparsable or non-local address,
  // Unavailable when the port is in use, PermissionDenied for a privileged port, Internal
  // otherwise.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options,
                                                                     Handler handler);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops the server (see Stop).
  ~Server();

  // The bound port (the real one when options.port was 0). Valid until destruction.
  [[nodiscard]] uint16_t port() const;

  // "address:port" as bound, e.g. "127.0.0.1:9464" or "[::1]:9464".
  [[nodiscard]] const std::string& endpoint() const;

  // Stops listening, abandons every connection (in-flight requests get no response unless
  // their handler already returned and the write completed), waits for a handler that is
  // running to return, and joins the io threads. Idempotent; later calls return at once.
  // REQUIRES: not called from the handler (it would join its own thread; aborts).
  void Stop();

 private:
  class Impl;
  explicit Server(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_SERVER_H_
