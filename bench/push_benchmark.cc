// Remote write: one push of a heap (the collector's walk, the WriteRequest encoding and snappy
// compression, as RemoteWriter does before sending) beside a text scrape of the same heap.
//
// BM_RemoteWritePush/N     N series of the scrape benchmarks' mix (70% counters with two
//                          labels, 20% gauges, 10% histograms of 12 buckets): walk, encode as a
//                          prometheus.WriteRequest with job and instance labels, snappy.
// BM_RemoteWriteEncode/N   the same without the compression.
// BM_TextScrapeOfPushHeap/N  the same heap as Prometheus 0.0.4 text (what a scrape costs).
//
// Each reports series per second (and its inverse, the time per series), the samples per push
// (a histogram series is 15 samples: 13 buckets, _count and _sum) and the bytes produced (for
// the push, compressed and uncompressed). Buffers are reused across iterations after one
// untimed round, as RemoteWriter reuses its own.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "push/write_request.h"
#include "shm/heap_access.h"

namespace shmetrics::bench {
namespace {

const std::vector<std::pair<std::string, std::string>> kExtraLabels = {{"job", "api"},
                                                                       {"instance", "host-1"}};

void Walk(const Heap& heap, expose::Encoder& enc) {
  collect::CollectOptions options;
  options.process_metrics = false;
  options.reset_maxima = false;
  if (absl::Status s = collect::Collect(shm::HeapAccess::segment(heap), enc, options); !s.ok()) {
    throw std::runtime_error(std::string(s.message()));
  }
  enc.Finish();
}

// One push's payload: *body the WriteRequest, returned compressed; *samples its sample count.
std::string Push(const Heap& heap, std::string* body, uint64_t* samples, bool compress) {
  body->clear();
  *samples = 0;
  auto enc = push::MakeWriteRequestEncoder(
      {.extra_labels = kExtraLabels, .timestamp_ms = 1764633600000}, body, samples);
  Walk(heap, *enc);
  return compress ? push::SnappyCompress(*body) : std::string();
}

void SetCounters(benchmark::State& state, int64_t series, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["series_per_second"] = benchmark::Counter(
      static_cast<double>(series), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["time_per_series"] = benchmark::Counter(
      static_cast<double>(series),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void TimePushes(benchmark::State& state, bool compress) {
  const int64_t n = state.range(0);
  Fixture& fx = CachedHeap("mix", n, BuildMix);
  std::string body;
  uint64_t samples = 0;
  std::string sent = Push(fx.heap, &body, &samples, compress);
  for (auto _ : state) {
    sent = Push(fx.heap, &body, &samples, compress);
    benchmark::DoNotOptimize(sent.data());
  }
  SetCounters(state, n, body.size());
  state.counters["samples_per_push"] = static_cast<double>(samples);
  state.counters["uncompressed_bytes"] = static_cast<double>(body.size());
  if (compress) state.counters["compressed_bytes"] = static_cast<double>(sent.size());
}

void BM_RemoteWritePush(benchmark::State& state) { TimePushes(state, /*compress=*/true); }
void BM_RemoteWriteEncode(benchmark::State& state) { TimePushes(state, /*compress=*/false); }

void BM_TextScrapeOfPushHeap(benchmark::State& state) {
  const int64_t n = state.range(0);
  Fixture& fx = CachedHeap("mix", n, BuildMix);
  std::string out;
  auto scrape = [&] {
    out.clear();
    auto enc = expose::MakeEncoder(expose::Format::kPrometheus, &out);
    Walk(fx.heap, *enc);
  };
  scrape();
  for (auto _ : state) {
    scrape();
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state, n, out.size());
  state.counters["text_bytes"] = static_cast<double>(out.size());
}

BENCHMARK(BM_RemoteWritePush)->Arg(1000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RemoteWriteEncode)
    ->Arg(1000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_TextScrapeOfPushHeap)
    ->Arg(1000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace shmetrics::bench
