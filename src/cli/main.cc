// shmetrics: the command-line tool — serve, dump, inspect, list and remove shmetrics heaps.
//
// Every command opens heaps read-only except `rm`. A --heap value that contains a '/' is a file
// path (Heap::OpenAtPath), anything else a heap name in /dev/shm. Errors are one line on stderr
// starting "shmetrics: ", with exit status 2 for usage errors and 1 for everything else.
//
// Thread safety: single-threaded, except for the HttpExposer's own thread under `serve`, which is
// started after SIGTERM and SIGINT are blocked so that only main's sigwait receives them. Once it
// runs, only that thread touches the served heaps (between scrapes, one scrape at a time).
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "cli/heaps.h"
#include "cli/inspect.h"
#include "cli/push.h"
#include "cli/serve.h"
#include "shmetrics/error.h"

namespace shmetrics::cli {
namespace {

constexpr std::string_view kMainUsage =
    "usage: shmetrics <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve    serve heaps over HTTP for Prometheus\n"
    "  push     send heaps' metrics out by remote write or to a Pushgateway\n"
    "  dump     print one exposition of a heap\n"
    "  inspect  print a heap's size, families, series and workers as JSON\n"
    "  list     print the names of the heaps in /dev/shm\n"
    "  rm       remove a heap\n"
    "\n"
    "`shmetrics <command> --help` describes a command. A --heap value containing '/' is a file\n"
    "path, anything else a heap name (/dev/shm/shmetrics.<name>).\n"
    "Exit status: 0 success, 1 runtime error, 2 usage error.\n";

// The open options of serve, dump and inspect, described once.
#define SHMETRICS_OPEN_FLAGS_USAGE                                                              \
  "  --allow-other-owner      open a heap owned by another user (a monitoring agent running\n"  \
  "                           as its own user); by default such a heap is refused\n"            \
  "  --allow-shared-write     open a heap that group or others may write (e.g. mode 0660 for\n" \
  "                           a shared group); by default such a heap is refused\n"

constexpr std::string_view kServeUsage =
    "usage: shmetrics serve --heap NAME [--heap NAME2 ...] [--listen ADDR:PORT]\n"
    "                       [--web-config-file FILE] [--no-wait] [--allow-other-owner]\n"
    "                       [--allow-shared-write] [--heap-label NAME] [--no-created]\n"
    "\n"
    "Opens the heaps read-only and serves them at http://ADDR:PORT/metrics until SIGTERM or\n"
    "SIGINT, then exits 0. Prints `listening on ADDR:PORT` (the bound port) once ready.\n"
    "Before each scrape it checks what each name points to: a heap removed and created again\n"
    "(a restarted service) is served anew, a heap removed and not recreated is left out.\n"
    "shmetrics_heap_up{heap=\"NAME\"} is 1 for each heap served, 0 for one that is not.\n"
    "With several heaps, a family they hold with the same definition is served as one family,\n"
    "each series labelled heap=\"NAME\" (self and process_* series too); a family they define\n"
    "differently is an error at start and, should a heap change later, left out and logged.\n"
    "  --heap NAME              a heap name or path; repeat to serve several heaps\n"
    "  --listen ADDR:PORT       default 127.0.0.1:9464; port 0 picks a free port; [::1]:PORT\n"
    "                           for IPv6\n"
    "  --web-config-file FILE   TLS and basic auth, in the YAML format of Prometheus exporters'\n"
    "                           --web.config.file (tls_server_config: cert_file, key_file;\n"
    "                           basic_auth_users: user: bcrypt hash)\n"
    "  --heap-label NAME        the label naming each heap when several are served (default\n"
    "                           heap)\n"
    "  --no-created             leave out every _created sample\n"
    "  --no-wait                exit 1 when a heap does not exist at start; by default serve\n"
    "                           says so on stderr, serves it as down and waits for "
    "it\n" SHMETRICS_OPEN_FLAGS_USAGE;

constexpr std::string_view kDumpUsage =
    "usage: shmetrics dump --heap NAME [--format openmetrics|prometheus|protobuf]\n"
    "                      [--allow-other-owner] [--allow-shared-write]\n"
    "\n"
    "Prints one exposition of the heap (opened read-only) to stdout.\n"
    "  --heap NAME              a heap name or path\n"
    "  --format FORMAT          openmetrics (default), prometheus, or protobuf (delimited\n"
    "                           io.prometheus.client.MetricFamily, "
    "binary)\n" SHMETRICS_OPEN_FLAGS_USAGE;

constexpr std::string_view kInspectUsage =
    "usage: shmetrics inspect --heap NAME [--verify] [--allow-other-owner]\n"
    "                         [--allow-shared-write]\n"
    "\n"
    "Prints the heap's name, layout_version, size_bytes (committed), max_bytes, used_bytes,\n"
    "families, series and workers as one JSON object.\n"
    "  --heap NAME              a heap name or path\n"
    "  --verify                 first check every block, family and series record; when the\n"
    "                           check fails, print the problem on stderr, no JSON, and exit "
    "1\n" SHMETRICS_OPEN_FLAGS_USAGE;

#undef SHMETRICS_OPEN_FLAGS_USAGE

constexpr std::string_view kListUsage =
    "usage: shmetrics list\n"
    "\n"
    "Prints the names of the heaps in /dev/shm that this user can see, one per line.\n";

constexpr std::string_view kRmUsage =
    "usage: shmetrics rm --heap NAME\n"
    "\n"
    "Removes a heap (an error if it does not exist). Processes that have it open keep working.\n"
    "  --heap NAME  a heap name or path\n";

struct Command {
  std::string_view name;
  std::string_view usage;
  std::vector<std::string_view> flags;
};

std::optional<Failure> Run(int argc, char** argv) {
  if (argc < 2) return Usage("missing command");
  const std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kMainUsage;
    return std::nullopt;
  }
  static const Command kCommands[] = {
      {"serve",
       kServeUsage,
       {"--heap", "--listen", "--web-config-file", "--no-wait", "--heap-label",
        "--allow-other-owner", "--allow-shared-write", "--no-created"}},
      {"push", kPushUsage, kPushFlags},
      {"dump", kDumpUsage, {"--heap", "--format", "--allow-other-owner", "--allow-shared-write"}},
      {"inspect",
       kInspectUsage,
       {"--heap", "--verify", "--allow-other-owner", "--allow-shared-write"}},
      {"list", kListUsage, {}},
      {"rm", kRmUsage, {"--heap"}},
  };
  for (const Command& c : kCommands) {
    if (c.name != command) continue;
    Args args;
    if (auto f = ParseArgs(std::string(c.name), argc, argv, 2, c.flags, &args)) return f;
    if (args.help) {
      std::cout << c.usage;
      return std::nullopt;
    }
    if (c.name == "serve") return Serve(args);
    if (c.name == "push") return Push(args);
    if (c.name == "dump") return Dump(args);
    if (c.name == "inspect") return Inspect(args);
    if (c.name == "list") return List();
    return Remove(args);
  }
  return Usage(absl::StrCat("unknown command \"", std::string(command), "\""));
}

}  // namespace
}  // namespace shmetrics::cli

int main(int argc, char** argv) {
  std::optional<shmetrics::cli::Failure> failure;
  try {
    failure = shmetrics::cli::Run(argc, argv);
  } catch (const shmetrics::Error& e) {
    failure = shmetrics::cli::Failure{shmetrics::cli::kExitRuntime, e.what()};
  } catch (const std::exception& e) {
    failure = shmetrics::cli::Failure{shmetrics::cli::kExitRuntime, e.what()};
  }
  std::cout.flush();
  if (!failure) return std::ferror(stdout) ? shmetrics::cli::kExitRuntime : 0;
  std::fprintf(stderr, "shmetrics: %s\n", shmetrics::cli::OneLine(failure->message).c_str());
  return failure->exit_code;
}
