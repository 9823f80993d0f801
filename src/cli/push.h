// `shmetrics push`: sends heaps' metrics out, by remote write (--remote-write URL, every
// --interval until SIGTERM or SIGINT) or to a Pushgateway.
//
// Thread safety: called from main's thread only. It starts the RemoteWriter's thread after
// blocking SIGTERM and SIGINT, so that only its own sigwait receives them; once that thread
// runs, only it touches the heaps.
#ifndef SHMETRICS_SRC_CLI_PUSH_H_
#define SHMETRICS_SRC_CLI_PUSH_H_

#include <optional>
#include <string_view>

#include "cli/args.h"

namespace shmetrics::cli {

// What `shmetrics push --help` prints.
extern const std::string_view kPushUsage;

// The flags `push` accepts.
extern const std::vector<std::string_view> kPushFlags;

// Runs `push` with `args`. Remote write: returns nullopt once SIGTERM or SIGINT asked it to stop
// and the last push was made (whether or not the receiver took it). Pushgateway: pushes once and
// returns nullopt when the Pushgateway accepted it, a Failure (exit status 1) quoting its
// answer or the network error otherwise. Throws shmetrics::Error when
// a heap cannot be opened or the options are invalid.
[[nodiscard]] std::optional<Failure> Push(const Args& args);

}  // namespace shmetrics::cli

#endif  // SHMETRICS_SRC_CLI_PUSH_H_
