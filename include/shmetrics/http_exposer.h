// shmetrics::HttpExposer: serves a heap's metrics over HTTP for Prometheus; shmetrics::Expose:
// one exposition as a string.
//
// The master of a pre-fork server embeds an HttpExposer: it starts one thread that serves
//   GET/HEAD /metrics      OpenMetrics 1.0.0 or Prometheus 0.0.4 text by the Accept header,
//                          gzip when Accept-Encoding allows; `?name[]=x` selects families
//   GET/HEAD /-/healthy    "OK"
//   GET/HEAD /             a landing page linking to both
// with 404 for other paths and 405 for other methods. It binds 127.0.0.1 unless told otherwise.
// Header size, body size, idle and read timeouts are bounded (see HttpExposerOptions).
//
// Thread safety: construct and destroy from one thread. Fork safety: the serving thread exists
// only in the process that constructed the exposer; forked workers never run it and must not
// destroy it (a child that exits with _exit or exit is fine).
//
// Example:
//   shmetrics::HttpExposer exposer(heap, {.port = 9464});
//   ... fork workers ...
#ifndef SHMETRICS_HTTP_EXPOSER_H_
#define SHMETRICS_HTTP_EXPOSER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shmetrics/heap.h"

namespace shmetrics {

enum class ExpositionFormat { kOpenMetrics, kPrometheus };

// One exposition of every family of the heaps. With several heaps, each must hold different
// family names. Throws Error kDataLoss when a heap is corrupt.
std::string Expose(const Heap& heap, ExpositionFormat format = ExpositionFormat::kOpenMetrics);

struct HttpExposerOptions {
  // Default: "127.0.0.1" (loopback only). "0.0.0.0" or "::" to serve other hosts.
  std::string address = "127.0.0.1";
  // Default: 9464. 0 picks a free port; HttpExposer::port() tells which.
  uint16_t port = 9464;
  // Default: 10 s. The whole request must arrive within this.
  std::chrono::milliseconds read_timeout{10000};
  // Default: 30 s. An idle keep-alive connection is closed after this.
  std::chrono::milliseconds idle_timeout{30000};
  // Default: 8 KiB. Larger request headers get 431.
  size_t max_header_bytes = 8192;
  // Default: 512. Connections beyond this are refused.
  size_t max_connections = 512;
  // Default: true. Include process_* metrics of the master and every live worker.
  bool process_metrics = true;
};

class HttpExposer {
 public:
  // Starts serving. Throws Error naming address:port when it cannot bind.
  explicit HttpExposer(std::vector<Heap> heaps, const HttpExposerOptions& options = {});
  explicit HttpExposer(Heap heap, const HttpExposerOptions& options = {})
      : HttpExposer(std::vector<Heap>{std::move(heap)}, options) {}
  HttpExposer(const HttpExposer&) = delete;
  HttpExposer& operator=(const HttpExposer&) = delete;
  // Stops serving and joins the thread.
  ~HttpExposer();

  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_HTTP_EXPOSER_H_
