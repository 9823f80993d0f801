#include "cli/serve.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
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
#include "cli/args.h"
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

}  // namespace

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

}  // namespace shmetrics::cli
