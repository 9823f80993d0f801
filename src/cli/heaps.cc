#include "cli/heaps.h"

#include <iostream>
#include <optional>
#include <string>

#include "cli/args.h"
#include "shmetrics/heap.h"

namespace shmetrics::cli {

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

}  // namespace shmetrics::cli
