// Fuzzes every reader of a heap with hostile bytes: opening it, verifying it, snapshotting it
// (the collector), and the per-family checks of `shmetrics inspect --verify`.
//
// Input, by its first byte:
//   even: the heap file is the rest of the input, as is ("arbitrary heap bytes");
//   odd:  patches to a real heap holding every meter type, labels, exemplars and workers, made
//         once at start-up: records of a 4-byte little-endian offset (taken modulo the heap's
//         size), a length byte (1..16) and that many bytes, each written over the heap.
// Any outcome but a crash, a hang or a sanitizer report is fine: readers must turn damage into
// an error.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "collect/collector.h"
#include "expose/encoder.h"
#include "shm/layout.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/registry.h"

namespace {

std::string ScratchPath() { return "/dev/shm/shmetrics-heap-fuzzer-" + std::to_string(getpid()); }

// The bytes of a heap with a little of everything in it.
const std::string& Template() {
  static const std::string* bytes = [] {
    const std::string path = ScratchPath() + ".template";
    unlink(path.c_str());
    {
      shmetrics::Heap heap = shmetrics::Heap::CreateAtPath(
          path, {.max_size = 1 << 20, .initial_size = 16384, .max_workers = 4});
      heap.AttachWorker();
      shmetrics::Registry r(heap, {.const_labels = {{"app", "fuzz"}}, .read_environment = false});
      auto& c = r.AddCounter("requests", "Requests", {"method", "code"});
      c.Labels("GET", "200").Inc(3);
      c.Labels("POST", "500").IncWithExemplar(1, {{"trace_id", "abc"}});
      r.AddCounter("striped", "Striped", {}, {.striped = true}).Labels().Inc();
      r.AddGauge("temp", "Temperature", {"room"}).Labels("a").Set(21.5);
      r.AddGauge("per_worker", "Per worker", {}, {.mode = shmetrics::GaugeMode::kAll})
          .Labels()
          .Set(2);
      auto& h = r.AddHistogram("latency", "Latency", {"route"},
                               {.unit = "seconds", .buckets = {0.1, 1, 10}});
      h.Labels("/").Observe(0.5);
      h.Labels("/x").ObserveWithExemplar(5, {{"trace_id", "def"}});
      r.AddSummary("size", "Size").Labels().Observe(10);
      r.AddInfo("build", "Build", {"version"}).Labels("1.0");
      r.AddStateSet("mode", "Mode", {}, {"on", "off"}).Labels().SetOnly("on");
    }
    std::ifstream in(path, std::ios::binary);
    auto* s =
        new std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    unlink(path.c_str());
    return s;
  }();
  return *bytes;
}

// Null output, but the encoders still run: the collector hands them what it read.
void ReadEverything(const shmetrics::shm::Segment& seg) {
  (void)seg.Verify();
  (void)seg.ComputeUsage();
  (void)seg.Workers();
  (void)seg.CreatorAlive();
  (void)shmetrics::collect::VerifyMetrics(seg);
  for (auto format :
       {shmetrics::expose::Format::kOpenMetrics, shmetrics::expose::Format::kPrometheus}) {
    std::string out;
    auto enc = shmetrics::expose::MakeEncoder(format, &out);
    if (shmetrics::collect::Collect(seg, *enc).ok()) enc->Finish();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Template();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string heap;
  if (data[0] % 2 == 0) {
    heap.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  } else {
    heap = Template();
    for (size_t i = 1; i + 5 <= size;) {
      uint32_t off;
      std::memcpy(&off, data + i, 4);
      const size_t len = 1 + data[i + 4] % 16;
      i += 5;
      for (size_t k = 0; k < len && i < size; ++k, ++i) heap[(off + k) % heap.size()] = data[i];
    }
  }
  // Open waits up to a second for a creator to publish a header that is short or has no magic
  // yet; unit tests cover that path. Here it would only slow the fuzzer down.
  if (heap.size() < shmetrics::shm::kHeaderSize ||
      std::memcmp(heap.data(), "\0\0\0\0\0\0\0\0", 8) == 0) {
    return 0;
  }
  const std::string path = ScratchPath();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  const bool written = write(fd, heap.data(), heap.size()) == static_cast<ssize_t>(heap.size());
  close(fd);
  if (written) {
    auto seg =
        shmetrics::shm::Segment::Open(shmetrics::shm::Location::ForPath(path), {.read_only = true});
    if (seg.ok()) ReadEverything(**seg);
  }
  unlink(path.c_str());
  return 0;
}
