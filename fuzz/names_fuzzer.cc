// Fuzzes name and label validation: the validators themselves, and the public API that applies
// them — registering a family with arbitrary metric and label names, and looking up a child with
// arbitrary label values. Input: fields separated by '\0': a metric name, label names, then label
// values.
// Checks beyond "no crash": the API throws only shmetrics::Error, with kInvalidArgument,
// kAlreadyExists or kResourceExhausted; a valid label value never makes Labels() throw; an
// invalid one (not UTF-8, too long) always does, and changes nothing.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "meters/names.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"

namespace {

struct World {
  std::string path;
  std::unique_ptr<shmetrics::Heap> heap;
  std::unique_ptr<shmetrics::Registry> registry;
};

World& TheWorld() {
  static World* w = [] {
    auto* w = new World;
    w->path = "/dev/shm/shmetrics-names-fuzzer-" + std::to_string(getpid());
    w->heap = std::make_unique<shmetrics::Heap>(shmetrics::Heap::CreateAtPath(
        w->path, {.max_size = uint64_t{64} << 20, .initial_size = 1 << 20}));
    // The heap file is gone when the process ends; the mapping stays usable.
    shmetrics::Heap::RemoveAtPath(w->path);
    w->registry = std::make_unique<shmetrics::Registry>(
        *w->heap, shmetrics::RegistryOptions{.read_environment = false});
    return w;
  }();
  return *w;
}

bool Allowed(shmetrics::ErrorCode c) {
  return c == shmetrics::ErrorCode::kInvalidArgument || c == shmetrics::ErrorCode::kAlreadyExists ||
         c == shmetrics::ErrorCode::kResourceExhausted;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace meters = shmetrics::meters;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  for (size_t start = 0;;) {
    const size_t end = in.find('\0', start);
    fields.emplace_back(in.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }

  // The validators agree with their definitions.
  for (const std::string& f : fields) {
    const bool metric = meters::IsValidMetricName(f);
    const bool label = meters::IsValidLabelName(f);
    if (label && !metric) std::abort();  // every label name is a valid metric name
    if (meters::IsValidUtf8(f) && meters::Utf8Length(f) > f.size()) std::abort();
    if (!f.empty() &&
        f.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:"
                            "0123456789") == std::string::npos &&
        (f[0] < '0' || f[0] > '9') && !metric) {
      std::abort();
    }
  }

  // The API.
  World& w = TheWorld();
  const size_t num_labels = fields.size() > 1 ? (fields.size() - 1) / 2 : 0;
  shmetrics::LabelNames names(fields.begin() + 1, fields.begin() + 1 + num_labels);
  std::vector<std::string_view> values(fields.begin() + 1 + num_labels, fields.end());
  shmetrics::CounterFamily* family = nullptr;
  try {
    family = &w.registry->AddCounter(fields[0], "Fuzzed", names);
  } catch (const shmetrics::Error& e) {
    if (!Allowed(e.code())) std::abort();
    return 0;
  }
  const size_t before = family->size();
  bool valid = values.size() == names.size();
  for (std::string_view v : values) {
    valid = valid && v.size() <= shmetrics::kMaxLabelValueBytes && meters::IsValidUtf8(v);
  }
  try {
    family->Labels(std::span<const std::string_view>(values)).Inc();
    if (!valid) std::abort();  // should have thrown
  } catch (const shmetrics::Error& e) {
    if (valid || e.code() != shmetrics::ErrorCode::kInvalidArgument) std::abort();
    if (family->size() != before) std::abort();  // nothing recorded
  }
  return 0;
}
