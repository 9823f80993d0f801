// shmetrics::HttpExposer: serves a heap's metrics over HTTP for Prometheus. (shmetrics::Expose,
// one exposition as a string without HTTP, is in exposition.h, which this header includes.)
//
// The master of a pre-fork server embeds an HttpExposer: it starts the threads that serve
//   GET/HEAD /metrics      OpenMetrics 1.0.0 or Prometheus 0.0.4 text by the Accept header,
//                          gzip when Accept-Encoding allows; `?name[]=x` selects families;
//                          only a GET resets the maxima (see max_gauge.h), never a HEAD
//   GET/HEAD /-/healthy    "OK"
//   GET/HEAD /             a landing page linking to both
// with 404 for other paths and 405 for other methods. It binds 127.0.0.1 unless told otherwise.
// Header size, body size, connections and the read, idle and write times of every connection
// are bounded (see HttpExposerOptions): slow or silent clients are dropped, oversized requests
// get 431 or 413, malformed ones 400, and connections past the limit 503, while other clients
// keep being served. /metrics is streamed: the exposition goes out in pieces of about 256 KiB
// (chunked; to HTTP/1.0 clients, ended by the close) as the heap is walked, on 2 scrape threads
// of the endpoint's own, so a scrape's memory stays bounded whatever the heap's size (a few MiB
// for 4 concurrent scrapes of 1,000,000 series, gzip included) and a slow client slows only its
// own walk. A short exposition (one piece) keeps Content-Length. At most 128 scrapes wait or run
// at once; more get 503. A walk that fails after the first piece went out resets the connection,
// so a scraper never mistakes a truncated body for a whole one. Optionally the endpoint speaks only
// HTTPS and/or requires HTTP basic authentication, configured like a Prometheus exporter (see
// WebOptions, LoadWebConfigFile).
//
// Thread safety: construct and destroy from one thread. Fork safety: the serving threads exist
// only in the process that constructed the exposer; forked workers never run it and must not
// destroy it (a child that exits with _exit or exit is fine). Workers never hold the metrics
// port: the listening socket is close-on-exec and a pthread_atfork child handler closes it in
// every forked child, so a worker that outlives its master (the master killed) leaves the port
// free for the restarted master, and connections to it are refused instead of hanging. Accepted
// connections are close-on-exec too, and shut down when the master closes them, so a child's
// inherited copy never keeps a scrape open. A child forked while the exposer runs therefore
// cannot serve metrics itself: start the exposer after daemonizing, not before.
//
// Example:
//   shmetrics::HttpExposer exposer(heap, {.port = 9464});
//   ... fork workers ...
//
//   // HTTPS with basic auth, from a Prometheus exporter web configuration file:
//   shmetrics::HttpExposer secure(
//       heap, {.port = 9464, .web = shmetrics::LoadWebConfigFile("/etc/myapp/web.yml")});
#ifndef SHMETRICS_HTTP_EXPOSER_H_
#define SHMETRICS_HTTP_EXPOSER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/heap.h"

namespace shmetrics {
namespace internal {
struct FamilySource;
}

// TLS and HTTP basic authentication for the endpoint: what a Prometheus exporter's web
// configuration file (exporter-toolkit's `--web.config.file`) holds. LoadWebConfigFile reads one.
struct WebOptions {
  // PEM certificate chain (leaf first) and private key. Both set: the endpoint speaks HTTPS
  // only (OpenSSL; plain HTTP connections are closed unanswered). Both empty: plain HTTP.
  // REQUIRES: both set or both empty. Default: "" (plain HTTP)
  std::string tls_cert_file{};
  std::string tls_key_file{};
  // Oldest TLS version accepted: 12 (TLS 1.2) or 13 (TLS 1.3). Default: 12
  int tls_min_version = 12;
  // User name -> crypt(3) hash of the password: bcrypt ($2a$, $2b$, $2y$, e.g. from
  // `htpasswd -nbB user password`), sha256-crypt ($5$) or sha512-crypt ($6$), verified with
  // libxcrypt. When not empty, every request (every path) must carry matching basic
  // credentials, or gets 401 with `WWW-Authenticate: Basic` and no other content. Verified
  // credentials are cached (as a SHA-256 digest), so only the first scrape pays for bcrypt;
  // hashes run on the endpoint's verifier threads, never on the thread serving scrapes, and too
  // many checks at once get 503. bcrypt cost above 14 (sha-crypt rounds above 1,000,000) is
  // refused (InvalidArgument naming the user).
  // Default: empty (no authentication)
  std::map<std::string, std::string> basic_auth_users{};
};

// Reads a web configuration file in exporter-toolkit's YAML format:
//   tls_server_config:
//     cert_file: server.crt   # relative paths are relative to the file's directory
//     key_file: server.key
//     min_version: TLS12      # optional: TLS12 or TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...
// Both sections are optional. Keys this reader does not implement (client_auth_type,
// cipher_suites, http_server_config, ...) are errors, not silently ignored. Throws Error:
// kNotFound or kPermissionDenied when the file cannot be read, kInvalidArgument naming the file
// and line for anything else. Certificate files are read later, by the HttpExposer.
WebOptions LoadWebConfigFile(const std::string& path);

struct HttpExposerOptions {
  // Default: "127.0.0.1" (loopback only). "0.0.0.0" or "::" to serve other hosts.
  std::string address = "127.0.0.1";
  // Default: 9464. 0 picks a free port; HttpExposer::port() tells which.
  uint16_t port = 9464;
  // The whole request (and the TLS handshake before a connection's first request) must arrive
  // within this, counted from the accept or from a later request's first byte; slow and silent
  // clients are dropped when it expires.
  // REQUIRES: > 0. Default: 10 s
  std::chrono::milliseconds read_timeout{10000};
  // An idle keep-alive connection is closed after this.
  // REQUIRES: > 0. Default: 30 s
  std::chrono::milliseconds idle_timeout{30000};
  // The whole response must be written within this, or the connection is dropped.
  // REQUIRES: > 0. Default: 30 s
  std::chrono::milliseconds write_timeout{30000};
  // Larger request lines plus headers get 431.
  // REQUIRES: >= 64. Default: 8 KiB
  size_t max_header_bytes = 8192;
  // Larger request bodies (the endpoint has no use for any) get 413.
  // Default: 4 KiB
  size_t max_body_bytes = 4096;
  // Connections beyond this get a best-effort 503 and are closed; the listener keeps going.
  // Each connection costs a file descriptor, so keep this below the process's RLIMIT_NOFILE.
  // REQUIRES: >= 1. Default: 512
  size_t max_connections = 512;
  // Default: true. Include process_* metrics of the master and every live worker.
  bool process_metrics = true;
  // Default: true. False leaves out every `_created` sample (counters, histograms, summaries
  // and Spectator's timers and distribution summaries in OpenMetrics), for scrapers and stores
  // that count each as a series of its own.
  bool created_samples = true;
  // TLS and basic authentication. Default: neither.
  WebOptions web{};
};

class HttpExposer {
 public:
  // Starts serving. Throws Error naming address:port when it cannot bind, and kInvalidArgument
  // for bad options, an unreadable or mismatched certificate or key (naming the file) or an
  // unsupported password hash (naming the user).
  explicit HttpExposer(std::vector<Heap> heaps, const HttpExposerOptions& options = {});
  explicit HttpExposer(Heap heap, const HttpExposerOptions& options = {})
      : HttpExposer(std::vector<Heap>{std::move(heap)}, options) {}
  // For the library's own tools (`shmetrics serve`, whose heaps come and go): serves what
  // `source` writes at each scrape.
  HttpExposer(const internal::FamilySource& source, const HttpExposerOptions& options);
  HttpExposer(const HttpExposer&) = delete;
  HttpExposer& operator=(const HttpExposer&) = delete;
  // Stops serving (a scrape being streamed stops at its next piece) and joins the threads.
  ~HttpExposer();

  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_HTTP_EXPOSER_H_
