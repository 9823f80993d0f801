// `shmetrics serve`: serves heaps over HTTP until SIGTERM or SIGINT, following each --heap
// name as its heap is removed and created again.
//
// Thread safety: called from main's thread only. It starts the HttpExposer's thread after
// blocking SIGTERM and SIGINT, so that only its own sigwait receives them; once that thread runs,
// only it touches the served heaps (between scrapes, one scrape at a time).
#ifndef SHMETRICS_SRC_CLI_SERVE_H_
#define SHMETRICS_SRC_CLI_SERVE_H_

#include <optional>

#include "cli/args.h"

namespace shmetrics::cli {

// Runs `serve` with `args` (--heap, --listen, --web-config-file, --no-wait and the open flags).
// Returns nullopt once SIGTERM or SIGINT asks it to stop, or the failure. Throws shmetrics::Error
// when a heap cannot be opened at start, the web configuration is invalid or the listen address
// cannot be bound.
[[nodiscard]] std::optional<Failure> Serve(const Args& args);

}  // namespace shmetrics::cli

#endif  // SHMETRICS_SRC_CLI_SERVE_H_
