// What the commands of the `shmetrics` tool share: their options as parsed from the command
// line, the one way a command fails (a message and an exit status), and what a --heap value
// means (a path when it contains a '/', a heap name otherwise).
//
// Thread safety: called from main's thread only.
#ifndef SHMETRICS_SRC_CLI_ARGS_H_
#define SHMETRICS_SRC_CLI_ARGS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shmetrics/heap.h"

namespace shmetrics::cli {

// Exit statuses: 0 for success, these for a failure.
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Keeps the error to one line whatever the library put in its message.
[[nodiscard]] std::string OneLine(std::string s);

// The one way a command fails: a message and an exit status.
struct Failure {
  int exit_code;
  std::string message;
};

// A usage error (exit status 2): `message` and a pointer to --help.
[[nodiscard]] Failure Usage(std::string message);

// Command-line options common to the commands; each command accepts a subset.
struct Args {
  bool help = false;
  std::vector<std::string> heaps;
  std::optional<std::string> listen;
  std::optional<std::string> format;
  std::optional<std::string> web_config_file;
  std::string heap_label = "heap";  // serve: the label naming each heap when several are served
  bool verify = false;
  bool no_wait = false;
  bool no_created = false;  // serve: leave out _created samples
  bool allow_other_owner = false;
  bool allow_shared_write = false;
  bool tls_insecure_skip_verify = false;  // push
  // Every other flag with a value, in the order given (a command reads the ones it accepts).
  std::vector<std::pair<std::string, std::string>> values;
};

// Parses argv[first..] for `command`, accepting only the flags in `allowed` ("--heap" etc.).
// Accepts both "--flag value" and "--flag=value".
[[nodiscard]] std::optional<Failure> ParseArgs(const std::string& command, int argc, char** argv,
                                               int first,
                                               const std::vector<std::string_view>& allowed,
                                               Args* args);

// A usage error unless exactly one --heap was given.
[[nodiscard]] std::optional<Failure> RequireOneHeap(const std::string& command, const Args& args);

// True when a --heap value is a file path (it contains a '/') rather than a heap name.
[[nodiscard]] bool IsPath(std::string_view heap);

// The options that open a heap read-only, as --allow-other-owner and --allow-shared-write ask.
[[nodiscard]] Heap::OpenOptions ReadOnlyOptions(const Args& args);

// Opens the heap a --heap value names (Heap::OpenAtPath for a path, Heap::Open for a name).
// Throws shmetrics::Error as those do.
Heap OpenReadOnly(const std::string& heap, const Heap::OpenOptions& options);

}  // namespace shmetrics::cli

#endif  // SHMETRICS_SRC_CLI_ARGS_H_
