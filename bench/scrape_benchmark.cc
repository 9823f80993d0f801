// Scrapes: the collector's walk of a heap and the encoders, in process and over HTTP.
//
// BM_Scrape/N            N series, a realistic mix (70% counters with two labels, 20% gauges,
//                        10% histograms of 12 buckets), encoded as OpenMetrics text.
// BM_ScrapeCounters/N    one counter family, a HELP line, one label id="<i>" with value i —
//                        the layout other client libraries are measured with — as Prometheus
//                        0.0.4 text.
// BM_WalkCounters/N/0|1  the heap walk alone over that heap: every entry, key and record read
//                        and nothing encoded (0), or only the gathering and ordering of the
//                        entries (1: the walk stops at the first one).
// BM_ScrapeCountersProtobuf/N  the same heap as Prometheus's delimited protobuf.
// BM_HttpScrapeCounters  the same, served by HttpExposer over a real loopback request.
// BM_ScrapeAfterWorkers  a fixed heap scraped after N worker processes attached and died.
// BM_HttpScrapePeakMemory/N  the peak RSS that 4 concurrent plain and then 4 gzip'd scrapes of
//                        N mixed series add to the serving process (a counter, in MiB).
// BM_GzipExposition/0|1  libdeflate level 1 / LineGzipWriter alone on BM_ScrapeCounters's text.
// BM_BareEncodeCounters  the bare baseline for the text: the same bytes written with
//                        std::to_chars from a plain array, no heap and no collector.
//
// Each reports bytes produced per second and series per second (and its inverse, the time per
// series) as counters. The in-process ones reuse one output string, warmed up by a scrape
// before timing, so they measure the walk and the encoding; the HTTP ones measure the whole
// request, including the response body the endpoint builds for each scrape.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench_util.h"
#include "benchmark/benchmark.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "expose/gzip.h"
#include "expose/line_deflate.h"
#include "meters/layout.h"
#include "shm/heap_access.h"
#include "shmetrics/http_exposer.h"

namespace shmetrics::bench {
namespace {

void SetScrapeCounters(benchmark::State& state, int64_t series, size_t bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["series_per_second"] = benchmark::Counter(
      static_cast<double>(series), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["time_per_series"] = benchmark::Counter(
      static_cast<double>(series),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
}

void BuildCounters(Fixture& fx, int64_t n) {
  auto& fam = fx.registry->AddCounter("test_counter", "A counter for benchmarking.", {"id"});
  for (int64_t i = 0; i < n; ++i) fam.Labels(std::to_string(i)).Inc(i);
}

// Collects the heap into *out (cleared first) and returns its size.
size_t Scrape(const Heap& heap, expose::Format format, std::string* out, bool process = false) {
  out->clear();
  auto enc = expose::MakeEncoder(format, out);
  collect::CollectOptions options;
  options.process_metrics = process;
  if (absl::Status s = collect::Collect(shm::HeapAccess::segment(heap), *enc, options); !s.ok()) {
    throw std::runtime_error(std::string(s.message()));
  }
  enc->Finish();
  return out->size();
}

// Scrapes fx in the timed loop into one reused string, and reports the counters. One scrape
// before the loop gives the string its full size and maps its pages: otherwise a run of one
// iteration (1,000,000 series take about a second) measures the page faults of a fresh 200 MB
// string rather than the walk and the encoding.
void TimeScrapes(benchmark::State& state, Fixture& fx, expose::Format format, int64_t series,
                 bool process = false) {
  std::string out;
  size_t bytes = Scrape(fx.heap, format, &out, process);
  for (auto _ : state) bytes = Scrape(fx.heap, format, &out, process);
  SetScrapeCounters(state, series, bytes);
}

void BM_Scrape(benchmark::State& state) {
  const int64_t n = state.range(0);
  TimeScrapes(state, CachedHeap("mix", n, BuildMix), expose::Format::kOpenMetrics, n);
}
BENCHMARK(BM_Scrape)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Arg(1000000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_BareEncodeCounters(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<uint64_t> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = i;
  std::string out;
  for (auto _ : state) {
    out.clear();
    out +=
        "# HELP test_counter_total A counter for benchmarking.\n# TYPE test_counter_total "
        "counter\n";
    for (int64_t i = 0; i < n; ++i) {
      char num[24];
      out.append("test_counter_total{id=\"");
      out.append(num, std::to_chars(num, num + sizeof num, i).ptr);
      out.append("\"} ");
      out.append(num, std::to_chars(num, num + sizeof num, values[i]).ptr);
      out.push_back('\n');
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetScrapeCounters(state, n, out.size());
}
BENCHMARK(BM_BareEncodeCounters)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ScrapeCounters(benchmark::State& state) {
  const int64_t n = state.range(0);
  TimeScrapes(state, CachedHeap("counters", n, BuildCounters), expose::Format::kPrometheus, n);
}
BENCHMARK(BM_ScrapeCounters)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The heap walk alone over BM_ScrapeCounters's heap: every series' entry, key and record read
// (the record's magic and integer cell summed), nothing encoded; with arg 1, only the gathering.
void BM_WalkCounters(benchmark::State& state) {
  const int64_t n = state.range(0);
  Fixture& fx = CachedHeap("counters", n, BuildCounters);
  const shm::Segment& seg = shm::HeapAccess::segment(fx.heap);
  const uint64_t family = seg.Find(seg.header().root_table.load(), "test_counter");
  const uint64_t table =
      reinterpret_cast<const meters::FamilyRecord*>(seg.base() + family)->series_table.load();
  constexpr size_t kRecord = internal::kSeriesCellsOffset + 2 * sizeof(internal::Cell);
  for (auto _ : state) {
    uint64_t sum = 0;
    absl::Status s = seg.ForEachEntry(table, [&](std::string_view key, uint64_t off) {
      const char* p = seg.Checked(off, kRecord);
      if (p == nullptr) return false;
      sum += key.size() + *reinterpret_cast<const uint64_t*>(p) +
             *reinterpret_cast<const uint64_t*>(p + internal::kSeriesCellsOffset);
      return state.range(1) == 0;
    });
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
    benchmark::DoNotOptimize(sum);
  }
  SetScrapeCounters(state, n, 0);
}
BENCHMARK(BM_WalkCounters)
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_ScrapeCountersProtobuf(benchmark::State& state) {
  const int64_t n = state.range(0);
  TimeScrapes(state, CachedHeap("counters", n, BuildCounters), expose::Format::kProtobuf, n);
}
BENCHMARK(BM_ScrapeCountersProtobuf)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The compressors alone on the text BM_ScrapeCounters/100000 produces, in the endpoint's 256 KiB
// pieces: arg 0 libdeflate level 1 on the whole text, arg 1 the exposer's LineGzipWriter. Bytes
// per second are of input; compressed_bytes and ratio (compressed / input) say what each gives.
void BM_GzipExposition(benchmark::State& state) {
  Fixture& fx = CachedHeap("counters", 100000, BuildCounters);
  std::string text;
  Scrape(fx.heap, expose::Format::kPrometheus, &text);
  std::string out;
  for (auto _ : state) {
    out.clear();
    if (state.range(0) == 0) {
      if (!expose::GzipCompressTo(text, expose::kGzipFastestLevel, &out).ok()) {
        throw std::runtime_error("gzip failed");
      }
    } else {
      expose::LineGzipWriter w;
      for (size_t pos = 0; pos < text.size(); pos += 256 << 10) {
        w.Write(std::string_view(text).substr(pos, 256 << 10), &out);
      }
      w.Finish(&out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(text.size()) * state.iterations());
  state.counters["compressed_bytes"] = static_cast<double>(out.size());
  state.counters["ratio"] = static_cast<double>(out.size()) / static_cast<double>(text.size());
}
BENCHMARK(BM_GzipExposition)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// A keep-alive HTTP/1.1 client on a loopback socket: enough to fetch /metrics.
class LoopbackClient {
 public:
  explicit LoopbackClient(uint16_t port) : port_(port) {}
  LoopbackClient(const LoopbackClient&) = delete;
  LoopbackClient& operator=(const LoopbackClient&) = delete;
  ~LoopbackClient() { Close(); }

  // Returns the body size; throws on any failure.
  size_t Get(std::string_view path, std::string_view extra_headers) {
    if (fd_ < 0) Connect();
    std::string req = "GET ";
    req.append(path).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n").append(extra_headers);
    req.append("\r\n");
    if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      throw std::runtime_error("send failed");
    }
    buf_.clear();
    size_t header_end = std::string::npos;
    while ((header_end = buf_.find("\r\n\r\n")) == std::string::npos) Read();
    const std::string_view head(buf_.data(), header_end);
    if (head.substr(0, 12) != "HTTP/1.1 200") throw std::runtime_error(std::string(head));
    const size_t cl = head.find("Content-Length: ");
    if (cl == std::string_view::npos) {
      if (head.find("Transfer-Encoding: chunked") == std::string_view::npos) {
        throw std::runtime_error("neither Content-Length nor chunked");
      }
      return ReadChunked(header_end + 4);
    }
    size_t length = 0;
    std::from_chars(head.data() + cl + 16, head.data() + head.size(), length);
    const size_t total = header_end + 4 + length;
    if (buf_.capacity() < total) buf_.reserve(total);
    while (buf_.size() < total) Read();
    return length;
  }

 private:
  // Reads a chunked body starting at buf_[pos]; returns its size. Consumed input is dropped as
  // it goes, as a streaming client's would be.
  size_t ReadChunked(size_t pos) {
    size_t body = 0;
    for (;;) {
      size_t eol;
      while ((eol = buf_.find("\r\n", pos)) == std::string::npos) Read();
      size_t size = 0;
      std::from_chars(buf_.data() + pos, buf_.data() + eol, size, 16);
      pos = eol + 2;
      while (buf_.size() < pos + size + 2) Read();
      pos += size + 2;
      body += size;
      buf_.erase(0, pos);
      pos = 0;
      if (size == 0) return body;
    }
  }

  void Connect() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      Close();
      throw std::runtime_error("cannot connect to the exposer");
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  void Read() {
    char chunk[1 << 16];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      Close();
      throw std::runtime_error("connection closed");
    }
    buf_.append(chunk, static_cast<size_t>(n));
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  uint16_t port_;
  int fd_ = -1;
  std::string buf_;
};

void HttpScrape(benchmark::State& state, std::string_view headers) {
  const int64_t n = state.range(0);
  Fixture& fx = CachedHeap("counters", n, BuildCounters);
  HttpExposer exposer(fx.heap, {.port = 0});
  LoopbackClient client(exposer.port());
  size_t bytes = 0;
  for (auto _ : state) bytes = client.Get("/metrics", headers);
  SetScrapeCounters(state, n, bytes);
}

// What Prometheus gets from the endpoint: the whole request, process metrics included. The CPU
// time is the whole process's (client and serving thread).
void BM_HttpScrapeCounters(benchmark::State& state) {
  HttpScrape(state, "Accept: text/plain;version=0.0.4\r\n");
}
BENCHMARK(BM_HttpScrapeCounters)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// The same with gzip, which a Prometheus server asks for (bytes are the compressed body).
void BM_HttpScrapeCountersGzip(benchmark::State& state) {
  HttpScrape(state, "Accept: text/plain;version=0.0.4\r\nAccept-Encoding: gzip\r\n");
}
BENCHMARK(BM_HttpScrapeCountersGzip)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// N worker processes attach one after another, update a striped counter and a per-worker gauge,
// and exit; then a heap of 10,000 counters, the striped counter and the gauge are scraped (with
// process metrics, which cover live workers only). The time must not grow with N.
void BuildAfterWorkers(Fixture& fx, int64_t workers) {
  BuildCounters(fx, 10000);
  Counter hot =
      fx.registry->AddCounter("hot", "A striped counter.", {}, {.striped = true}).Labels();
  Gauge depth =
      fx.registry->AddGauge("worker_depth", "Per worker.", {}, {.mode = GaugeMode::kLiveSum})
          .Labels();
  for (int64_t w = 0; w < workers; ++w) {
    const pid_t pid = fork();
    if (pid == 0) {
      fx.heap.AttachWorker();
      hot.Inc();
      depth.Set(1);
      _exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      throw std::runtime_error("worker failed");
    }
  }
}

void BM_ScrapeAfterWorkers(benchmark::State& state) {
  TimeScrapes(state, CachedHeap("workers", state.range(0), BuildAfterWorkers),
              expose::Format::kOpenMetrics, 10002, /*process=*/true);
}
BENCHMARK(BM_ScrapeAfterWorkers)
    ->Arg(0)
    ->Arg(64)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// What a scrape costs in memory: N series of the BM_Scrape mix served by a new HttpExposer, 4
// concurrent plain scrapes and then 4 concurrent gzip'd ones, each read to the end by a client
// that drops each chunk once read. Reports how far they raised the process's peak RSS (VmHWM,
// reset first) above its RSS before: everything the endpoint needed for them (its threads, its
// buffers, the pieces in flight; the clients' few hundred KiB too), bounded by the pieces in
// flight, not by N. The heap's pages are resident before, as in a process that built it.
long ProcSelfKib(const char* field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field, 0) == 0 && line.size() > std::strlen(field) &&
        line[std::strlen(field)] == ':') {
      return std::atol(line.c_str() + std::strlen(field) + 1);
    }
  }
  return -1;
}

void BM_HttpScrapePeakMemory(benchmark::State& state) {
  const int64_t n = state.range(0);
  Fixture& fx = CachedHeap("mix", n, BuildMix);
  {
    std::string warm;
    Scrape(fx.heap, expose::Format::kOpenMetrics, &warm);
  }  // heap resident
  HttpExposer exposer(fx.heap, {.port = 0});
  const char* const kinds[] = {"Accept: application/openmetrics-text;version=1.0.0\r\n",
                               "Accept: application/openmetrics-text;version=1.0.0\r\n"
                               "Accept-Encoding: gzip\r\n"};
  auto round = [&exposer](const char* headers) {
    std::vector<std::thread> scrapers;
    for (int i = 0; i < 4; ++i) {
      scrapers.emplace_back([&exposer, headers] {
        LoopbackClient client(exposer.port());
        benchmark::DoNotOptimize(client.Get("/metrics", headers));
      });
    }
    for (std::thread& t : scrapers) t.join();
  };
  double peak_mib = 0;
  for (auto _ : state) {
    state.PauseTiming();
    { std::ofstream("/proc/self/clear_refs") << "5"; }  // VmHWM := VmRSS (Linux >= 4.0)
    const long before = ProcSelfKib("VmRSS");
    state.ResumeTiming();
    for (const char* h : kinds) round(h);
    state.PauseTiming();
    peak_mib = std::max(peak_mib, static_cast<double>(ProcSelfKib("VmHWM") - before) / 1024);
    state.ResumeTiming();
  }
  state.counters["peak_rss_increase_mib"] = peak_mib;
  state.counters["series"] = static_cast<double>(n);
}
BENCHMARK(BM_HttpScrapePeakMemory)
    ->Arg(1000000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
}  // namespace shmetrics::bench
