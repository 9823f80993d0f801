// shmetrics::RemoteWriter: pushes a heap's metrics to a Prometheus remote-write receiver
// (Prometheus with --web.enable-remote-write-receiver, Mimir, Thanos Receive, Cortex,
// VictoriaMetrics) by remote write 1.0, every interval, from a thread of its own.
//
// Each push is one snapshot of what a scrape would show (the same names, labels and merging of
// several heaps; see shmetrics::Expose), every sample stamped with the time of the push, as a
// snappy-compressed protobuf WriteRequest with the protocol's headers. Values are cumulative, so
// a push that fails is not kept: the next one that succeeds carries everything. Nothing held in
// memory grows with the time a receiver is down. A push is retried with capped exponential
// backoff and jitter on 5xx, 429 and network errors, until the next push is due; never on other
// 4xx (a receiver that refuses the data will refuse it again). A failed push is logged on stderr
// once, with the response's first line or the network error.
//
// The writer adds its own self-metrics to every push (not to the heap, so a scrape of the heap
// does not show them): shmetrics_remote_write_samples_sent_total, _samples_failed_total,
// _samples_retried_total, _last_success_timestamp_seconds and _send_duration_seconds (of the
// last push, retries included). stats() reads the same numbers.
//
// Thread safety: construct, call and destroy from one thread; stats() from any thread.
// Process safety: the pushing thread exists only in the process that constructed the writer:
// run it in the master of a pre-fork server. It holds no connection between pushes, so a forked
// child inherits nothing in use; a child must not call Flush, and destroying the writer in a
// child does nothing (neither push nor join; its memory goes with the child).
//
// Example:
//   shmetrics::RemoteWriter writer(heap, {.url = "http://mimir:9009/api/v1/push",
//                                         .interval = std::chrono::seconds(15),
//                                         .job = "api"});
//   ... fork workers, serve ...
//   // ~RemoteWriter sends a last push and stops.
#ifndef SHMETRICS_REMOTE_WRITER_H_
#define SHMETRICS_REMOTE_WRITER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shmetrics/error.h"
#include "shmetrics/heap.h"

namespace shmetrics {
namespace internal {
struct FamilySource;
}

struct RemoteWriteOptions {
  // http:// or https:// URL of the receiver, e.g. "http://127.0.0.1:9090/api/v1/write".
  // REQUIRES: not empty.
  std::string url{};
  // Time between the starts of two pushes. REQUIRES: > 0. Default: 15 s
  std::chrono::milliseconds interval{15000};
  // Bound on one HTTP request: connect, send and the whole response. REQUIRES: > 0.
  // Default: 10 s
  std::chrono::milliseconds timeout{10000};
  // The first retry waits min_backoff, each later one twice as long up to max_backoff, each
  // scaled by a random factor in [0.5, 1). REQUIRES: 0 < min_backoff <= max_backoff.
  // Default: 30 ms and 5 s, as Prometheus's queue_config.
  std::chrono::milliseconds min_backoff{30};
  std::chrono::milliseconds max_backoff{5000};
  // Labels added to every series that has no label of the same name. Empty values add nothing.
  // Default: job "shmetrics", instance empty.
  std::string job = "shmetrics";
  std::string instance{};
  // REQUIRES: valid label names, not starting with "__". Default: none
  std::map<std::string, std::string> external_labels{};
  // Include process_* metrics of the master and every live worker. Default: true
  bool process_metrics = true;
  // Push once more from the destructor, so the last values are not lost. Default: true
  bool push_on_stop = true;

  // Authentication, as remote_write's basic_auth and authorization: at most one of them.
  // The password and token files are read at every push (so they may be rotated).
  std::string basic_auth_user{};
  std::string basic_auth_password{};
  std::string basic_auth_password_file{};
  std::string bearer_token{};
  std::string bearer_token_file{};
  // TLS for https:// URLs, as remote_write's tls_config. Default: the system's CA store.
  std::string tls_ca_file{};
  std::string tls_cert_file{};
  std::string tls_key_file{};
  std::string tls_server_name{};
  bool tls_insecure_skip_verify = false;
};

class RemoteWriter {
 public:
  // What the writer has done since it started.
  struct Stats {
    uint64_t pushes_succeeded = 0;
    uint64_t pushes_failed = 0;
    uint64_t samples_sent = 0;             // in pushes the receiver accepted
    uint64_t samples_failed = 0;           // in pushes given up on (refused, or retries ran out)
    uint64_t samples_retried = 0;          // sent again after a retryable failure
    double last_success_unix_seconds = 0;  // 0 before the first success
    double last_send_duration_seconds = 0;
  };

  // Starts the thread; the first push happens at once. Throws Error kInvalidArgument for bad
  // options (a malformed URL, contradictory authentication, TLS files that cannot be loaded).
  RemoteWriter(std::vector<Heap> heaps, const RemoteWriteOptions& options);
  RemoteWriter(Heap heap, const RemoteWriteOptions& options)
      : RemoteWriter(std::vector<Heap>{std::move(heap)}, options) {}
  // For the library's own tools (`shmetrics push`, whose heaps come and go): pushes what
  // `source` writes.
  RemoteWriter(const internal::FamilySource& source, const RemoteWriteOptions& options);
  RemoteWriter(const RemoteWriter&) = delete;
  RemoteWriter& operator=(const RemoteWriter&) = delete;
  // Stops the thread: a push under way ends within `timeout` (its retries are abandoned), then
  // one last push is made (if push_on_stop), with at most one attempt.
  ~RemoteWriter();

  // Pushes now, on the writer's thread, and waits until that push (with its retries) is done.
  // Returns true when the receiver accepted it.
  bool Flush();

  [[nodiscard]] Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_REMOTE_WRITER_H_
