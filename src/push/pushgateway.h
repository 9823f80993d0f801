// The Pushgateway protocol: the path that names a group, and one push of a text exposition.
// shmetrics::PushToGateway (include/shmetrics/push.h) and `shmetrics push --pushgateway` are
// built on these.
//
// Thread safety: pure functions (PushToGateway is as safe as HttpClient::Send).
#ifndef SHMETRICS_SRC_PUSH_PUSHGATEWAY_H_
#define SHMETRICS_SRC_PUSH_PUSHGATEWAY_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "push/http_client.h"
#include "shmetrics/heap.h"
#include "shmetrics/push.h"

namespace shmetrics::push {

// "/metrics/job/<job>{/<name>/<value>}", each value percent-encoded, or written
// "<name>@base64/<base64url(value)>" when it holds '/', and "<name>@base64/=" when empty (the
// Pushgateway's own encoding). InvalidArgument for an empty job, a grouping label name that is
// invalid, reserved ("__..."), "job", or given twice.
[[nodiscard]] absl::StatusOr<std::string> GroupPath(
    std::string_view job, const std::vector<std::pair<std::string, std::string>>& grouping);

// The ClientOptions that PushGatewayOptions' timeout, TLS and credentials describe.
[[nodiscard]] ClientOptions GatewayClientOptions(const PushGatewayOptions& options);

// Sends `body` (text format 0.0.4; ignored for kDelete) to the group `group_path` of the
// Pushgateway at `base_url` ("http(s)://host:port[/prefix]", no query) with `method`. OK for a
// 2xx answer; otherwise the codes listed at shmetrics::PushToGateway, the message quoting the
// answer's status line and up to 512 bytes of its body.
[[nodiscard]] absl::Status PushToGateway(const HttpClient& client, std::string_view base_url,
                                         const std::string& group_path, PushMethod method,
                                         std::string body);

// Encodes `heaps` as a scrape would (text format 0.0.4) and pushes them (nothing is read for
// kDelete).
[[nodiscard]] absl::Status PushHeapsToGateway(const std::string& url,
                                              const std::vector<Heap>& heaps,
                                              const PushGatewayOptions& options);

}  // namespace shmetrics::push

#endif  // SHMETRICS_SRC_PUSH_PUSHGATEWAY_H_
