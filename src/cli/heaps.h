// The commands on the heaps as files: `list` (the names in /dev/shm) and `rm` (remove one).
//
// Thread safety: called from main's thread only.
#ifndef SHMETRICS_SRC_CLI_HEAPS_H_
#define SHMETRICS_SRC_CLI_HEAPS_H_

#include <optional>

#include "cli/args.h"

namespace shmetrics::cli {

// Runs `list`: the names of the heaps this user can see, one per line on stdout.
[[nodiscard]] std::optional<Failure> List();

// Runs `rm` with `args` (one --heap). Throws shmetrics::Error as Heap::Remove does.
[[nodiscard]] std::optional<Failure> Remove(const Args& args);

}  // namespace shmetrics::cli

#endif  // SHMETRICS_SRC_CLI_HEAPS_H_
