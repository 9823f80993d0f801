// shmetrics::PushToGateway: sends the metrics of heaps to a Prometheus Pushgateway, as the
// client libraries' push_to_gateway does, for batch jobs that end before anyone scrapes them.
//
// What is pushed is what a scrape of the same heaps shows (the Prometheus text format 0.0.4:
// same names, labels and merging of several heaps), under the group the job and the grouping
// labels name: PUT replaces the whole group, POST replaces only the metric families pushed,
// DELETE removes the group. One call is one HTTP request, bounded by options.timeout; nothing is
// retried and nothing runs in the background.
//
// Thread safety: safe from any thread. Process safety: any process attached to the heaps may
// push them while others update them; each value is read atomically. On heaps open for writing,
// a push resets the maxima (MaxGauge, Timer's max) as a scrape does.
//
// Example (at the end of a batch program):
//   shmetrics::PushToGateway("http://pushgateway:9091", heap,
//                            {.job = "nightly_backup", .grouping = {{"instance", "db1"}}});
#ifndef SHMETRICS_PUSH_H_
#define SHMETRICS_PUSH_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "shmetrics/error.h"
#include "shmetrics/heap.h"

namespace shmetrics {

enum class PushMethod {
  kPut,     // replace every metric of the group
  kPost,    // replace only the families pushed, keep the group's others
  kDelete,  // remove the group (the heaps are not read)
};

struct PushGatewayOptions {
  // The job label of the group.
  // REQUIRES: not empty
  std::string job{};

  // More labels naming the group, in order, e.g. {{"instance", "db1"}}. Values may be empty or
  // hold '/' (they are sent base64url-encoded, as the Pushgateway expects).
  // REQUIRES: valid label names, not "job", not starting with "__", no name twice
  // Default: none
  std::vector<std::pair<std::string, std::string>> grouping{};

  // Default: kPut
  PushMethod method = PushMethod::kPut;

  // The whole request (connect, TLS handshake, write, read the answer) must finish within this.
  // REQUIRES: > 0
  // Default: 30 s
  std::chrono::milliseconds timeout{30000};

  // TLS, for https:// URLs: a PEM CA file (default: the system's trust store), a client
  // certificate and key (both or neither), the name checked against the server's certificate
  // (default: the URL's host), and insecure_skip_verify (accepts any certificate).
  std::string ca_file{};
  std::string cert_file{};
  std::string key_file{};
  std::string server_name{};
  bool insecure_skip_verify = false;

  // Credentials: HTTP basic authentication or a bearer token, at most one.
  // Default: none
  std::string basic_auth_user{};
  std::string basic_auth_password{};
  std::string bearer_token{};
};

// Pushes one exposition of `heaps` (merged as a scrape of several heaps merges them: each series
// labelled heap="<name>" when there are more than one) to the Pushgateway at `url`
// ("http(s)://host:port", optionally with a path prefix), under
// <url>/metrics/job/<job>{/<label>/<value>}.
// Throws Error:
// - kInvalidArgument: bad options or URL; or the Pushgateway answered 400 (metrics it refuses,
//   such as ones clashing with the group's labels or with another group's types or help);
// - kUnauthenticated / kPermissionDenied: it answered 401 / 403;
// - kFailedPrecondition: another 4xx answer;
// - kUnavailable: a 5xx answer, a refused or broken connection, a TLS failure;
// - kDeadlineExceeded: options.timeout passed;
// - kDataLoss: a heap is corrupt.
// An answer's message quotes its status line and the start of its body.
void PushToGateway(const std::string& url, const std::vector<Heap>& heaps,
                   const PushGatewayOptions& options);

// The same with one heap.
void PushToGateway(const std::string& url, const Heap& heap, const PushGatewayOptions& options);

}  // namespace shmetrics

#endif  // SHMETRICS_PUSH_H_
