#include "cli/served_heaps.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "meters/names.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"

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

bool Selected(const collect::CollectOptions& options, std::string_view name) {
  if (options.names.empty()) return true;
  for (const std::string& n : options.names) {
    if (n == name) return true;
  }
  return false;
}

}  // namespace

ServedHeap::ServedHeap(std::string spec, const Heap::OpenOptions& options)
    : spec_(std::move(spec)), options_(options) {
  if (IsPath(spec_)) {
    path_ = shm::Location::ForPath(spec_).path;
  } else if (auto where = shm::Location::ForName(spec_); where.ok()) {
    path_ = where->path;
  }
}

absl::Status ServedHeap::Refresh() {
  struct stat st {};
  const bool exists = !path_.empty() && ::stat(path_.c_str(), &st) == 0;
  const bool missing = !exists && !path_.empty() && errno == ENOENT;
  if (exists && heap_ && st.st_dev == dev_ && st.st_ino == ino_) return absl::OkStatus();
  heap_.reset();  // removed, or replaced by another file: let go of the old mapping
  if (missing) return absl::OkStatus();
  // A new file, one stat cannot see or an invalid name: Open tells which, or opens it.
  try {
    heap_ = std::make_shared<const Heap>(OpenReadOnly(spec_, options_));
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

ServedHeaps::ServedHeaps(std::vector<ServedHeap> heaps, std::string heap_label, HeapVerb verb)
    : heaps_(std::move(heaps)), heap_label_(std::move(heap_label)), verb_(verb) {
  util::Locked lock(mu_);
  last_error_.resize(heaps_.size());
}

absl::Status ServedHeaps::Collect(expose::Encoder& enc, const collect::CollectOptions& options,
                                  std::vector<collect::MergeConflict>* conflicts) {
  // The walk runs without the lock, so a slow client does not hold up other scrapes; the
  // mappings it walks stay alive in `held` even if a concurrent scrape's Refresh drops them.
  std::vector<std::shared_ptr<const Heap>> held;
  std::vector<collect::HeapSource> sources;
  std::vector<std::pair<std::string, bool>> up;  // each --heap and whether it is read
  {
    util::Locked lock(mu_);
    for (size_t i = 0; i < heaps_.size(); ++i) {
      ServedHeap& h = heaps_[i];
      Report(i, h.Refresh());
      up.emplace_back(h.spec(), h.heap() != nullptr);
      if (h.heap() == nullptr) continue;
      held.push_back(h.shared_heap());
      sources.push_back({&shm::HeapAccess::segment(*held.back()), h.spec()});
    }
  }
  std::vector<collect::MergeConflict> found;
  absl::Status s =
      collect::CollectMerged(sources, up.size() > 1 ? heap_label_ : "", enc, options, &found);
  if (!s.ok()) return s;
  if (conflicts != nullptr) {
    *conflicts = std::move(found);
  } else {
    util::Locked lock(mu_);
    LogConflicts(found);
  }
  if (Selected(options, "shmetrics_heap_up")) {
    const std::string help =
        absl::StrCat("1 when shmetrics ", verb_.command, " ", verb_.third_person,
                     " the heap, 0 when the heap does not exist or cannot be opened.");
    enc.BeginFamily({.name = "shmetrics_heap_up",
                     .type = expose::MetricType::kGauge,
                     .help = help,
                     .unit = ""});
    for (const auto& [spec, read] : up) {
      const expose::Label label[] = {{heap_label_, spec}};
      enc.Gauge(label, read ? 1 : 0);
    }
    enc.EndFamily();
  }
  return absl::OkStatus();
}

void ServedHeaps::Report(size_t i, const absl::Status& s) {
  const std::string now = s.ok() ? "" : std::string(s.message());
  if (now == last_error_[i]) return;
  if (s.ok()) {
    std::fprintf(stderr, "shmetrics: %s: %s is %s again\n", verb_.command, heaps_[i].spec().c_str(),
                 verb_.participle);
  } else {
    std::fprintf(stderr, "shmetrics: %s: %s is not %s: %s\n", verb_.command,
                 heaps_[i].spec().c_str(), verb_.participle, OneLine(now).c_str());
  }
  last_error_[i] = now;
}

void ServedHeaps::LogConflicts(const std::vector<collect::MergeConflict>& found) {
  std::set<std::string> now;
  for (const collect::MergeConflict& c : found) {
    if (!logged_conflicts_.contains(c.message)) {
      std::fprintf(stderr, "shmetrics: %s: %s\n", verb_.command, c.message.c_str());
    }
    now.insert(c.message);
  }
  logged_conflicts_ = std::move(now);
}

std::optional<Failure> OpenServedHeaps(const Args& args, HeapVerb verb,
                                       std::shared_ptr<ServedHeaps>* out) {
  const std::string command(verb.command);
  if (!meters::IsValidLabelName(args.heap_label) || meters::IsReservedLabelName(args.heap_label)) {
    return Usage(absl::StrCat(command, ": --heap-label \"", args.heap_label,
                              "\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting "
                              "with __)"));
  }
  const Heap::OpenOptions open_options = ReadOnlyOptions(args);
  std::vector<ServedHeap> served;
  for (const std::string& h : args.heaps) {
    served.emplace_back(h, open_options);
    if (absl::Status s = served.back().Refresh(); !s.ok()) throw ToError(s);
    if (served.back().heap() != nullptr) continue;
    if (args.no_wait) OpenReadOnly(h, open_options);  // throws the usual kNotFound error
    std::fprintf(stderr, "shmetrics: %s: %s does not exist yet; %s it as down until it does\n",
                 verb.command, h.c_str(), verb.gerund);
  }
  auto heaps = std::make_shared<ServedHeaps>(std::move(served), args.heap_label, verb);
  // Heaps that disagree on a family are a mistake to show now, not one collection at a time.
  {
    std::string ignored;
    auto probe = expose::MakeEncoder(expose::Format::kOpenMetrics, &ignored);
    std::vector<collect::MergeConflict> conflicts;
    collect::CollectOptions o;
    o.reset_maxima = false;
    o.self_metrics = o.process_metrics = false;
    if (absl::Status s = heaps->Collect(*probe, o, &conflicts); !s.ok()) throw ToError(s);
    if (!conflicts.empty()) {
      return Failure{kExitRuntime, absl::StrCat(command, ": ", conflicts[0].message)};
    }
  }
  *out = std::move(heaps);
  return std::nullopt;
}

}  // namespace shmetrics::cli
