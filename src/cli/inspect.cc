#include "cli/inspect.h"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "collect/collector.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/exposition.h"
#include "shmetrics/heap.h"

namespace shmetrics::cli {
namespace {

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

}  // namespace

std::optional<Failure> Dump(const Args& args) {
  if (auto f = RequireOneHeap("dump", args)) return f;
  ExpositionFormat format = ExpositionFormat::kOpenMetrics;
  if (args.format) {
    if (*args.format == "openmetrics") {
      format = ExpositionFormat::kOpenMetrics;
    } else if (*args.format == "prometheus") {
      format = ExpositionFormat::kPrometheus;
    } else if (*args.format == "protobuf") {
      format = ExpositionFormat::kProtobuf;
    } else {
      return Usage(absl::StrCat("dump: unknown --format \"", *args.format,
                                "\" (openmetrics, prometheus or protobuf)"));
    }
  }
  const Heap heap = OpenReadOnly(args.heaps[0], ReadOnlyOptions(args));
  const std::string text = Expose(heap, format);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::nullopt;
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

}  // namespace shmetrics::cli
