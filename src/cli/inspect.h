// The commands that print one heap, opened read-only: `dump` (one exposition of it) and
// `inspect` (its size, families, series and workers as one JSON object).
//
// Thread safety: called from main's thread only.
#ifndef SHMETRICS_SRC_CLI_INSPECT_H_
#define SHMETRICS_SRC_CLI_INSPECT_H_

#include <optional>

#include "cli/args.h"

namespace shmetrics::cli {

// Runs `dump` with `args` (--heap, --format and the open flags): the exposition on stdout.
// Throws shmetrics::Error when the heap cannot be opened.
[[nodiscard]] std::optional<Failure> Dump(const Args& args);

// Runs `inspect` with `args` (--heap, --verify and the open flags): the JSON object on stdout.
// Throws shmetrics::Error when the heap cannot be opened.
[[nodiscard]] std::optional<Failure> Inspect(const Args& args);

}  // namespace shmetrics::cli

#endif  // SHMETRICS_SRC_CLI_INSPECT_H_
