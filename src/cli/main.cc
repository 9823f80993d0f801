// shmetrics: the command-line tool — serve, dump, inspect, list and remove shmetrics heaps.
//
// Every command opens heaps read-only except `rm`. A --heap value that contains a '/' is a file
// path (Heap::OpenAtPath), anything else a heap name in /dev/shm. Errors are one line on stderr
// starting "shmetrics: ", with exit status 2 for usage errors and 1 for everything else.
//
// Thread safety: single-threaded, except for the HttpExposer's own thread under `serve`, which is
// started after SIGTERM and SIGINT are blocked so that only main's sigwait receives them. Once it
// runs, only that thread touches the served heaps (between scrapes, one scrape at a time).
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "http_exposer/family_source.h"
#include "meters/names.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"

namespace shmetrics::cli {
namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kMainUsage =
    "usage: shmetrics <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve    serve heaps over HTTP for Prometheus\n"
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
    "                       [--allow-shared-write] [--heap-label NAME]\n"
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
    "  --no-wait                exit 1 when a heap does not exist at start; by default serve\n"
    "                           says so on stderr, serves it as down and waits for "
    "it\n" SHMETRICS_OPEN_FLAGS_USAGE;

constexpr std::string_view kDumpUsage =
    "usage: shmetrics dump --heap NAME [--format openmetrics|prometheus] [--allow-other-owner]\n"
    "                      [--allow-shared-write]\n"
    "\n"
    "Prints one exposition of the heap (opened read-only) to stdout.\n"
    "  --heap NAME              a heap name or path\n"
    "  --format FORMAT          openmetrics (default) or prometheus\n" SHMETRICS_OPEN_FLAGS_USAGE;

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

// Keeps the error to one line whatever the library put in its message.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// The one way a command fails: a message and an exit status.
struct Failure {
  int exit_code;
  std::string message;
};

Failure Usage(std::string message) { return {kExitUsage, absl::StrCat(message, " (see --help)")}; }

// Command-line options common to the commands; each command accepts a subset.
struct Args {
  bool help = false;
  std::vector<std::string> heaps;
  std::optional<std::string> listen;
  std::optional<std::string> format;
  std::optional<std::string> web_config_file;
  std::string heap_label = "heap";
  bool verify = false;
  bool no_wait = false;
  bool allow_other_owner = false;
  bool allow_shared_write = false;
};

// Parses argv[first..] for `command`, accepting only the flags in `allowed` ("--heap" etc.).
// Accepts both "--flag value" and "--flag=value".
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
    if (bool* on = flag == "--verify"               ? &args->verify
                   : flag == "--no-wait"            ? &args->no_wait
                   : flag == "--allow-other-owner"  ? &args->allow_other_owner
                   : flag == "--allow-shared-write" ? &args->allow_shared_write
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
    }
  }
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

// The device and inode of the file mapped at addr in this process, from /proc/self/maps.
bool MappedFile(const void* addr, dev_t* dev, ino_t* ino) {
  std::ifstream maps("/proc/self/maps");
  const auto at = reinterpret_cast<uintptr_t>(addr);
  for (std::string line; std::getline(maps, line);) {
    uintptr_t start = 0, end = 0;
    unsigned major_dev = 0, minor_dev = 0;
    unsigned long long inode = 0, offset = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %7s %llx %x:%x %llu", &start, &end,
                    perms, &offset, &major_dev, &minor_dev, &inode) != 7) {
      continue;
    }
    if (start <= at && at < end) {
      *dev = makedev(major_dev, minor_dev);
      *ino = static_cast<ino_t>(inode);
      return true;
    }
  }
  return false;
}

// One --heap of `serve`: whichever heap the name (or path) points to now. Refresh, before each
// scrape, compares the file the name points to with the one mapped, by device and inode: a
// service that restarted and created its heap again is served anew, a heap removed is dropped
// (and its memory unmapped). Each ServedHeap is its own object, swapped independently.
class ServedHeap {
 public:
  ServedHeap(std::string spec, const Heap::OpenOptions& options)
      : spec_(std::move(spec)), options_(options) {
    if (IsPath(spec_)) {
      path_ = shm::Location::ForPath(spec_).path;
    } else if (auto where = shm::Location::ForName(spec_); where.ok()) {
      path_ = where->path;
    }
  }

  // Brings the mapping in line with the name. Returns the error that keeps the heap from being
  // served, OK when it is served or simply does not exist (then heap() is null).
  absl::Status Refresh() {
    struct stat st {};
    const bool exists = !path_.empty() && ::stat(path_.c_str(), &st) == 0;
    const bool missing = !exists && !path_.empty() && errno == ENOENT;
    if (exists && heap_ && st.st_dev == dev_ && st.st_ino == ino_) return absl::OkStatus();
    heap_.reset();  // removed, or replaced by another file: let go of the old mapping
    if (missing) return absl::OkStatus();
    // A new file, one stat cannot see or an invalid name: Open tells which, or opens it.
    try {
      heap_ = OpenReadOnly(spec_, options_);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) return absl::OkStatus();  // removed meanwhile
      return absl::Status(ToStatusCode(e.code()), e.what());
    }
    // The file mapped, which is the one the name pointed to when Open ran: should the name have
    // moved on since the stat, the next Refresh sees the difference.
    if (!MappedFile(shm::HeapAccess::segment(*heap_).base(), &dev_, &ino_)) {
      dev_ = st.st_dev;
      ino_ = st.st_ino;
    }
    return absl::OkStatus();
  }

  const std::string& spec() const { return spec_; }
  const Heap* heap() const { return heap_ ? &*heap_ : nullptr; }

 private:
  const std::string spec_;
  const Heap::OpenOptions options_;
  std::string path_;  // the file the name stands for; empty for an invalid name
  std::optional<Heap> heap_;
  dev_t dev_ = 0;  // of the file mapped by heap_
  ino_t ino_ = 0;
};

// What `serve` exposes: the families of every heap served, merged (one heap: as it is; several:
// each series labelled with its heap), and shmetrics_heap_up for each --heap. Only the
// exposer's thread calls Collect.
class ServedHeaps {
 public:
  ServedHeaps(std::vector<ServedHeap> heaps, std::string heap_label)
      : heaps_(std::move(heaps)), heap_label_(std::move(heap_label)) {
    last_error_.resize(heaps_.size());
  }

  // conflicts: where given, the families the heaps disagree on are returned there instead of
  // logged (at start, when they are an error).
  absl::Status Collect(expose::Encoder& enc, const collect::CollectOptions& options,
                       std::vector<collect::MergeConflict>* conflicts = nullptr) {
    std::vector<collect::HeapSource> sources;
    for (size_t i = 0; i < heaps_.size(); ++i) {
      ServedHeap& h = heaps_[i];
      Report(i, h.Refresh());
      if (h.heap() == nullptr) continue;
      sources.push_back({&shm::HeapAccess::segment(*h.heap()), h.spec()});
    }
    std::vector<collect::MergeConflict> found;
    absl::Status s =
        collect::CollectMerged(sources, heaps_.size() > 1 ? heap_label_ : "", enc, options, &found);
    if (!s.ok()) return s;
    if (conflicts != nullptr) {
      *conflicts = std::move(found);
    } else {
      LogConflicts(found);
    }
    if (Selected(options, "shmetrics_heap_up")) {
      enc.BeginFamily({.name = "shmetrics_heap_up",
                       .type = expose::MetricType::kGauge,
                       .help = "1 when shmetrics serve serves the heap, 0 when the heap does not "
                               "exist or cannot be opened.",
                       .unit = ""});
      for (const ServedHeap& h : heaps_) {
        const expose::Label label[] = {{heap_label_, h.spec()}};
        enc.Gauge(label, h.heap() != nullptr ? 1 : 0);
      }
      enc.EndFamily();
    }
    return absl::OkStatus();
  }

  std::vector<ServedHeap>& heaps() { return heaps_; }

 private:
  static bool Selected(const collect::CollectOptions& options, std::string_view name) {
    if (options.names.empty()) return true;
    for (const std::string& n : options.names) {
      if (n == name) return true;
    }
    return false;
  }

  // Logs a heap's open error once, when it starts (or changes), and its recovery.
  void Report(size_t i, const absl::Status& s) {
    const std::string now = s.ok() ? "" : std::string(s.message());
    if (now == last_error_[i]) return;
    if (s.ok()) {
      std::fprintf(stderr, "shmetrics: serve: %s is served again\n", heaps_[i].spec().c_str());
    } else {
      std::fprintf(stderr, "shmetrics: serve: %s is not served: %s\n", heaps_[i].spec().c_str(),
                   OneLine(now).c_str());
    }
    last_error_[i] = now;
  }

  // Logs each conflict once, when it appears, and again only after it went away and came back.
  void LogConflicts(const std::vector<collect::MergeConflict>& found) {
    std::set<std::string> now;
    for (const collect::MergeConflict& c : found) {
      if (!logged_conflicts_.contains(c.message)) {
        std::fprintf(stderr, "shmetrics: serve: %s\n", c.message.c_str());
      }
      now.insert(c.message);
    }
    logged_conflicts_ = std::move(now);
  }

  std::vector<ServedHeap> heaps_;
  const std::string heap_label_;
  std::vector<std::string> last_error_;  // per heap, "" while it opens fine
  std::set<std::string> logged_conflicts_;
};

std::optional<Failure> RequireOneHeap(const std::string& command, const Args& args) {
  if (args.heaps.empty()) return Usage(absl::StrCat(command, ": missing --heap"));
  if (args.heaps.size() > 1) return Usage(absl::StrCat(command, ": --heap given more than once"));
  return std::nullopt;
}

// Splits "ADDR:PORT" (or "[V6ADDR]:PORT").
std::optional<Failure> ParseListen(const std::string& listen, HttpExposerOptions* options) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return Usage(absl::StrCat("serve: --listen wants ADDR:PORT, got \"", listen, "\""));
  }
  std::string address = listen.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  const std::string port_text = listen.substr(colon + 1);
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) {
      return Usage(absl::StrCat("serve: bad port in --listen \"", listen, "\""));
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return Usage(absl::StrCat("serve: bad port in --listen \"", listen, "\""));
  if (address.empty())
    return Usage(absl::StrCat("serve: bad address in --listen \"", listen, "\""));
  options->address = address;
  options->port = static_cast<uint16_t>(port);
  return std::nullopt;
}

std::optional<Failure> Serve(const Args& args) {
  if (args.heaps.empty()) return Usage("serve: missing --heap");
  if (!meters::IsValidLabelName(args.heap_label) || meters::IsReservedLabelName(args.heap_label)) {
    return Usage(absl::StrCat("serve: --heap-label \"", args.heap_label,
                              "\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting "
                              "with __)"));
  }
  const Heap::OpenOptions open_options = ReadOnlyOptions(args);
  HttpExposerOptions options;
  if (args.listen) {
    if (auto f = ParseListen(*args.listen, &options)) return f;
  }
  if (args.web_config_file) options.web = LoadWebConfigFile(*args.web_config_file);
  // Each connection holds a descriptor: allow as many as the hard limit permits, so the
  // connection cap, not a default soft limit of 1024, decides how many clients are served.
  if (rlimit nofile{};
      getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // Every heap opens now, or serve fails as it would at a scrape; only a heap that does not
  // exist yet is waited for (unless --no-wait).
  std::vector<ServedHeap> served;
  for (const std::string& h : args.heaps) {
    served.emplace_back(h, open_options);
    if (absl::Status s = served.back().Refresh(); !s.ok()) throw ToError(s);
    if (served.back().heap() != nullptr) continue;
    if (args.no_wait) OpenReadOnly(h, open_options);  // throws the usual kNotFound error
    std::fprintf(stderr,
                 "shmetrics: serve: %s does not exist yet; serving it as down until it does\n",
                 h.c_str());
  }
  auto heaps = std::make_shared<ServedHeaps>(std::move(served), args.heap_label);
  // Heaps that disagree on a family are a mistake to show now, not one scrape at a time.
  {
    std::string ignored;
    auto probe = expose::MakeEncoder(expose::Format::kOpenMetrics, &ignored);
    std::vector<collect::MergeConflict> conflicts;
    collect::CollectOptions o;
    o.reset_maxima = false;
    o.self_metrics = o.process_metrics = false;
    if (absl::Status s = heaps->Collect(*probe, o, &conflicts); !s.ok()) throw ToError(s);
    if (!conflicts.empty())
      return Failure{kExitRuntime, absl::StrCat("serve: ", conflicts[0].message)};
  }

  // Blocked before the exposer starts its thread, which inherits the mask: the signals then
  // wait for sigwait below instead of killing the process or landing on the server thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return Failure{kExitRuntime, "serve: cannot block signals"};
  }
  HttpExposer exposer(
      internal::FamilySource{
          .collect = [heaps](expose::Encoder& enc,
                             const collect::CollectOptions& o) { return heaps->Collect(enc, o); }},
      options);
  const bool v6 = options.address.find(':') != std::string::npos;
  std::cout << "listening on " << (v6 ? "[" : "") << options.address << (v6 ? "]" : "") << ":"
            << exposer.port() << std::endl;
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  return std::nullopt;  // ~HttpExposer stops the server and joins its thread.
}

std::optional<Failure> Dump(const Args& args) {
  if (auto f = RequireOneHeap("dump", args)) return f;
  ExpositionFormat format = ExpositionFormat::kOpenMetrics;
  if (args.format) {
    if (*args.format == "openmetrics") {
      format = ExpositionFormat::kOpenMetrics;
    } else if (*args.format == "prometheus") {
      format = ExpositionFormat::kPrometheus;
    } else {
      return Usage(absl::StrCat("dump: unknown --format \"", *args.format,
                                "\" (openmetrics or prometheus)"));
    }
  }
  const Heap heap = OpenReadOnly(args.heaps[0], ReadOnlyOptions(args));
  const std::string text = Expose(heap, format);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::nullopt;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

std::optional<Failure> Inspect(const Args& args) {
  if (auto f = RequireOneHeap("inspect", args)) return f;
  const Heap heap = OpenReadOnly(args.heaps[0], ReadOnlyOptions(args));
  const shm::Segment& seg = shm::HeapAccess::segment(heap);
  if (args.verify) {
    if (absl::Status s = collect::VerifyMetrics(seg); !s.ok()) {
      return Failure{kExitRuntime,
                     absl::StrCat("inspect: ", heap.name(), " failed verification: ", s.message())};
    }
  }
  // Counting trusts nothing either: a family record that does not check out is an error.
  std::string bad_family;
  const auto listed = collect::ListFamilies(seg, &bad_family);
  if (!listed.ok() && !bad_family.empty()) {
    return Failure{kExitRuntime,
                   absl::StrCat("inspect: ", heap.name(), ": corrupt family record \"", bad_family,
                                "\" (try --verify)")};
  }
  if (!listed.ok()) {
    return Failure{kExitRuntime,
                   absl::StrCat("inspect: ", heap.name(), ": ", listed.status().message())};
  }
  const uint64_t families = listed->size();
  uint64_t series = 0;
  for (const collect::FamilySummary& f : *listed) series += f.series;
  const Heap::Usage usage = heap.usage();
  std::string out = absl::StrCat(
      "{\"name\": ", JsonString(heap.name()), ", \"layout_version\": ", seg.header().layout_version,
      ", \"size_bytes\": ", usage.committed_bytes, ", \"max_bytes\": ", usage.max_bytes,
      ", \"used_bytes\": ", usage.used_bytes, ", \"families\": ", families,
      ", \"series\": ", series, ", \"workers\": [");
  bool first = true;
  for (const shm::Segment::WorkerInfo& w : seg.Workers()) {
    absl::StrAppend(&out, first ? "" : ", ", "{\"id\": ", w.id, ", \"pid\": ", w.pid,
                    ", \"alive\": ", w.alive ? "true" : "false", "}");
    first = false;
  }
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::nullopt;
}

std::optional<Failure> List() {
  for (const std::string& name : Heap::List()) std::cout << name << '\n';
  return std::nullopt;
}

std::optional<Failure> Remove(const Args& args) {
  if (auto f = RequireOneHeap("rm", args)) return f;
  const std::string& heap = args.heaps[0];
  if (IsPath(heap)) {
    Heap::RemoveAtPath(heap);
  } else {
    Heap::Remove(heap);
  }
  return std::nullopt;
}

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
        "--allow-other-owner", "--allow-shared-write"}},
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
