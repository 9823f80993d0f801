#include "cli/args.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "shmetrics/heap.h"

namespace shmetrics::cli {

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

Failure Usage(std::string message) { return {kExitUsage, absl::StrCat(message, " (see --help)")}; }

std::optional<Failure> ParseArgs(const std::string& command, int argc, char** argv, int first,
                                 const std::vector<std::string_view>& allowed, Args* args) {
  auto is_allowed = [&](std::string_view flag) {
    for (std::string_view a : allowed) {
      if (a == flag) return true;
    }
    return false;
  };
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      args->help = true;
      continue;
    }
    std::string_view flag = arg;
    std::optional<std::string> value;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    if (!flag.starts_with("--") || !is_allowed(flag)) {
      return Usage(absl::StrCat(command, ": unknown argument \"", std::string(arg), "\""));
    }
    if (bool* on = flag == "--verify"                     ? &args->verify
                   : flag == "--no-wait"                  ? &args->no_wait
                   : flag == "--no-created"               ? &args->no_created
                   : flag == "--allow-other-owner"        ? &args->allow_other_owner
                   : flag == "--allow-shared-write"       ? &args->allow_shared_write
                   : flag == "--tls-insecure-skip-verify" ? &args->tls_insecure_skip_verify
                                                          : nullptr;
        on != nullptr) {
      if (value) return Usage(absl::StrCat(command, ": ", std::string(flag), " takes no value"));
      *on = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) {
        return Usage(absl::StrCat(command, ": ", std::string(flag), " needs a value"));
      }
      value = argv[++i];
    }
    if (value->empty()) {
      return Usage(absl::StrCat(command, ": ", std::string(flag), " needs a non-empty value"));
    }
    if (flag == "--heap") {
      args->heaps.push_back(*value);
    } else if (flag == "--listen") {
      args->listen = *value;
    } else if (flag == "--heap-label") {
      args->heap_label = *value;
    } else if (flag == "--format") {
      args->format = *value;
    } else if (flag == "--web-config-file") {
      args->web_config_file = *value;
    } else {
      args->values.emplace_back(std::string(flag), *value);
    }
  }
  return std::nullopt;
}

std::optional<Failure> RequireOneHeap(const std::string& command, const Args& args) {
  if (args.heaps.empty()) return Usage(absl::StrCat(command, ": missing --heap"));
  if (args.heaps.size() > 1) return Usage(absl::StrCat(command, ": --heap given more than once"));
  return std::nullopt;
}

bool IsPath(std::string_view heap) { return heap.find('/') != std::string_view::npos; }

Heap::OpenOptions ReadOnlyOptions(const Args& args) {
  return {.read_only = true,
          .allow_other_owner = args.allow_other_owner,
          .allow_shared_write = args.allow_shared_write};
}

Heap OpenReadOnly(const std::string& heap, const Heap::OpenOptions& options) {
  return IsPath(heap) ? Heap::OpenAtPath(heap, options) : Heap::Open(heap, options);
}

}  // namespace shmetrics::cli
