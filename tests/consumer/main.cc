#include <unistd.h>

#include <string>

#include "shmetrics/registry.h"

int main() {
  const std::string name = "consumer-" + std::to_string(getpid());
  auto heap = shmetrics::Heap::Create(name);
  shmetrics::Registry registry(heap);
  auto c = registry.AddCounter("consumer_runs", "Runs").Labels();
  c.Inc();
  shmetrics::Heap::Remove(name);
  return c.Value() == 1 ? 0 : 1;
}
