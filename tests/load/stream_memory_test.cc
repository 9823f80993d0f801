// Streamed scrapes of a big heap: 4 concurrent scrapes of 1,000,000 mixed series, with and
// without gzip, raise the serving process's peak resident memory by at most 64 MiB, and every
// body is complete (OpenMetrics' `# EOF`) with every series in it. The server is a forked child
// running an HttpExposer, so its memory is its own in /proc. Also: the streamed gzip body (one
// member written piece by piece) as Python's gzip module and `curl --compressed` read it.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "load/serve_helpers.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::kSanitized;
using ::shmetrics::testing::ProcStatusKib;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int64_t kFamilySize = 10000;

// 70% counters with two labels, 20% gauges, 10% histograms of 12 buckets, as the scrape
// benchmarks' mix.
void BuildMix(Registry& r, int64_t n) {
  const int64_t counters = n * 7 / 10, gauges = n * 2 / 10, histograms = n - counters - gauges;
  const char* codes[] = {"200", "404", "500"};
  for (int64_t done = 0, f = 0; done < counters; ++f) {
    auto& fam =
        r.AddCounter(absl::StrCat("app_requests_", f), "Requests handled.", {"handler", "code"});
    for (int64_t i = 0; i < kFamilySize && done < counters; ++i, ++done) {
      fam.Labels(absl::StrCat("/api/v1/item", i / 3), codes[i % 3]).Inc(done);
    }
  }
  for (int64_t done = 0, f = 0; done < gauges; ++f) {
    auto& fam = r.AddGauge(absl::StrCat("app_queue_depth_", f), "Items waiting.", {"queue"});
    for (int64_t i = 0; i < kFamilySize && done < gauges; ++i, ++done) {
      fam.Labels(absl::StrCat("q", i)).Set(static_cast<double>(done) * 0.5);
    }
  }
  std::vector<double> buckets;
  for (int i = 0; i < 12; ++i) buckets.push_back(0.001 * (1 << i));
  for (int64_t done = 0, f = 0; done < histograms; ++f) {
    auto& fam = r.AddHistogram(absl::StrCat("app_latency_seconds_", f), "Request latency.",
                               {"handler"}, {.buckets = buckets});
    for (int64_t i = 0; i < kFamilySize && done < histograms; ++i, ++done) {
      fam.Labels(absl::StrCat("/api/v1/item", i)).Observe(0.01 * static_cast<double>(i % 50));
    }
  }
}

struct ScrapeResult {
  bool complete = false;  // framing intact, gzip intact, `# EOF` last
  int64_t series = 0;     // app_ series: counters' _total, histograms' _count, gauges
  std::string error;
};

// A streaming scrape client: decodes the chunks (and the gzip members) as they arrive and
// counts series line by line, holding no more than a read's worth of body, so the test's own
// memory stays small too.
class StreamingScrape {
 public:
  ScrapeResult Run(uint16_t port, bool gzip) {
    ScrapeResult result;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      result.error = "connect";
      if (fd >= 0) ::close(fd);
      return result;
    }
    const std::string req = absl::StrCat(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; "
        "version=1.0.0\r\n",
        gzip ? "Accept-Encoding: gzip\r\n" : "", "\r\n");
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    fd_ = fd;
    gzip_ = gzip;
    if (gzip) inflateInit2(&z_, 15 + 16);
    result.error = Read();
    if (gzip) inflateEnd(&z_);
    ::close(fd);
    result.series = series_;
    result.complete = result.error.empty() && last_line_ == "# EOF";
    return result;
  }

 private:
  // Reads more into in_; false at EOF, error or after 60 s without data.
  bool More() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 60000) <= 0) return false;
    char buf[1 << 16];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  std::string Read() {
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!More()) return "no header";
    }
    const std::string head = in_.substr(0, end);
    in_.erase(0, end + 4);
    if (head.rfind("HTTP/1.1 200", 0) != 0) return "status: " + head;
    if (head.find("Transfer-Encoding: chunked") == std::string::npos) {
      // A body of one piece: Content-Length.
      const size_t cl = head.find("Content-Length: ");
      if (cl == std::string::npos) return "no framing";
      const size_t length = std::stoull(head.substr(cl + 16));
      while (in_.size() < length) {
        if (!More()) return "short body";
      }
      return Body(in_.substr(0, length));
    }
    for (;;) {
      size_t eol;
      while ((eol = in_.find("\r\n")) == std::string::npos) {
        if (!More()) return "truncated chunk size";
      }
      const size_t size = std::stoull(in_.substr(0, eol), nullptr, 16);
      in_.erase(0, eol + 2);
      while (in_.size() < size + 2) {
        if (!More()) return "truncated chunk";
      }
      if (size == 0) return gzip_ && !member_done_ ? "gzip member cut" : "";
      if (std::string e = Body(in_.substr(0, size)); !e.empty()) return e;
      in_.erase(0, size + 2);
    }
  }

  std::string Body(const std::string& bytes) {
    if (!gzip_) {
      Lines(bytes);
      return "";
    }
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z_.avail_in = static_cast<uInt>(bytes.size());
    while (z_.avail_in > 0) {
      char out[1 << 16];
      z_.next_out = reinterpret_cast<Bytef*>(out);
      z_.avail_out = sizeof out;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      Lines(std::string_view(out, sizeof out - z_.avail_out));
      member_done_ = rc == Z_STREAM_END;
      if (rc == Z_STREAM_END) {
        ++members_;
        inflateReset(&z_);
      } else if (rc != Z_OK) {
        return "inflate error";
      }
    }
    return "";
  }

  void Lines(std::string_view text) {
    for (char c : text) {
      if (c != '\n') {
        line_.push_back(c);
        continue;
      }
      Count(line_);
      last_line_.swap(line_);
      line_.clear();
    }
  }

  void Count(const std::string& line) {
    if (line.rfind("app_", 0) != 0) return;
    const size_t name_end = line.find_first_of("{ ");
    const std::string_view name(line.data(), name_end);
    auto ends = [&](std::string_view suffix) {
      return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
    };
    if (ends("_total") || ends("_count") || name.rfind("app_queue_depth_", 0) == 0) ++series_;
  }

  int fd_ = -1;
  bool gzip_ = false;
  z_stream z_{};
  bool member_done_ = true;
  int members_ = 0;
  std::string in_;
  std::string line_;
  std::string last_line_;
  int64_t series_ = 0;
};

// A forked child serving `heap` with an HttpExposer until the test closes its pipe.
class ServingChild {
 public:
  explicit ServingChild(const Heap& heap) {
    int port_pipe[2], stop_pipe[2];
    if (::pipe2(port_pipe, O_CLOEXEC) != 0 || ::pipe2(stop_pipe, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(port_pipe[0]);
      ::close(stop_pipe[1]);
      {
        HttpExposer exposer(heap, {.port = 0});
        const uint16_t port = exposer.port();
        if (::write(port_pipe[1], &port, sizeof port) != sizeof port) _exit(2);
        char c;
        while (::read(stop_pipe[0], &c, 1) > 0) {
        }
      }
      _exit(0);
    }
    ::close(port_pipe[1]);
    ::close(stop_pipe[0]);
    stop_fd_ = stop_pipe[1];
    pollfd p{port_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, 60000) == 1 &&
        ::read(port_pipe[0], &port_, sizeof port_) != static_cast<ssize_t>(sizeof port_)) {
      port_ = 0;
    }
    ::close(port_pipe[0]);
  }
  ~ServingChild() {
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (pid_ > 0) {
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
};

// Resets the process's VmHWM to its current VmRSS (Linux >= 4.0).
bool ResetPeak(pid_t pid) {
  std::ofstream f(absl::StrCat("/proc/", pid, "/clear_refs"));
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// 1,000,000 series in release builds (a few seconds to build, about 2 s per round of 4
// scrapes); sanitizer builds, 3-10x slower, serve 100,000 under the same bound.
constexpr int64_t kSeries = kSanitized ? 100000 : 1000000;
constexpr long kMaxGrowthKib = 64 * 1024;

TEST(StreamMemoryTest, FourConcurrentScrapesOfAMillionSeriesStayWithin64MiB) {
  const std::string name = UniqueHeapName("streammem");
  {
    Heap heap = Heap::Create(name, {.max_size = uint64_t(kSeries) * 2048});
    {
      Registry registry(heap);
      BuildMix(registry, kSeries);
    }
    ServingChild child(heap);
    ASSERT_GT(child.port(), 0);
    // One scrape of each kind first: it faults the heap's shared pages into the server (they
    // count in its RSS once touched, streaming or not) and sets up the allocator's arenas and
    // the threads' compressors.
    for (const bool gzip : {false, true}) {
      const ScrapeResult r = StreamingScrape().Run(child.port(), gzip);
      ASSERT_TRUE(r.complete) << r.error;
      EXPECT_EQ(r.series, kSeries);
    }
    const long rss_before = ProcStatusKib(child.pid(), "VmRSS");
    ASSERT_GT(rss_before, 0);
    ASSERT_TRUE(ResetPeak(child.pid()));
    for (const bool gzip : {false, true}) {
      std::vector<ScrapeResult> results(4);
      std::vector<std::thread> scrapers;
      for (ScrapeResult& r : results) {
        scrapers.emplace_back(
            [&r, &child, gzip] { r = StreamingScrape().Run(child.port(), gzip); });
      }
      for (std::thread& t : scrapers) t.join();
      for (const ScrapeResult& r : results) {
        EXPECT_TRUE(r.complete) << (gzip ? "gzip: " : "plain: ") << r.error;
        EXPECT_EQ(r.series, kSeries) << (gzip ? "gzip" : "plain");
      }
    }
    const long hwm = ProcStatusKib(child.pid(), "VmHWM");
    std::printf(
        "%lld series, 4 concurrent scrapes plain then gzip: VmRSS before %ld KiB, VmHWM "
        "after %ld KiB (+%ld KiB)\n",
        static_cast<long long>(kSeries), rss_before, hwm, hwm - rss_before);
    EXPECT_LE(hwm - rss_before, kMaxGrowthKib);
  }
  Heap::Remove(name);
}

// The streamed gzip body, sent in many chunks, is one gzip member (curl stops after the first
// member); Python's gzip module and curl --compressed get what the plain scrape says.
TEST(StreamMemoryTest, StreamedGzipBodiesDecodeWithPythonAndCurl) {
  if (::access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
  const std::string name = UniqueHeapName("streamgz");
  char dir[] = "/tmp/shmetrics-streamgz-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  {
    Heap heap = Heap::Create(name);
    {
      Registry registry(heap);
      BuildMix(registry, 100000);  // beyond the 4 MiB compressed whole: streamed
    }
    HttpExposer exposer(heap, {.port = 0});
    const std::string url = absl::StrCat("http://127.0.0.1:", exposer.port(), "/metrics");
    const std::string d = dir;
    int rc = -1;
    Shell("/usr/bin/curl -sS --max-time 60 -o " + d + "/plain " + url, &rc);
    ASSERT_EQ(rc, 0);
    Shell("/usr/bin/curl -sS --max-time 60 -H 'Accept-Encoding: gzip' -D " + d + "/head -o " + d +
              "/gz " + url,
          &rc);
    ASSERT_EQ(rc, 0);
    Shell("/usr/bin/curl -sS --max-time 60 --compressed -o " + d + "/curl " + url, &rc);
    ASSERT_EQ(rc, 0);
    const std::string head = Shell("cat " + d + "/head", &rc);
    EXPECT_THAT(head, HasSubstr("Content-Encoding: gzip"));
    EXPECT_THAT(head, HasSubstr("Transfer-Encoding: chunked"));
    // Series values do not move between the scrapes, but process metrics (CPU, memory) do:
    // compare the app_ lines.
    const std::string out = Shell(
        "/usr/bin/python3 -c '\n"
        "import gzip, sys, zlib\n"
        "d = sys.argv[1]\n"
        "raw = open(d + \"/gz\", \"rb\").read()\n"
        "members = 0\n"
        "rest = raw\n"
        "while rest:\n"
        "    z = zlib.decompressobj(31)\n"
        "    z.decompress(rest)\n"
        "    rest = z.unused_data\n"
        "    members += 1\n"
        "app = lambda t: [l for l in t.splitlines() if l.startswith(b\"app_\")]\n"
        "plain = app(open(d + \"/plain\", \"rb\").read())\n"
        "print(\"members\", members)\n"
        "print(\"python\", app(gzip.decompress(raw)) == plain, len(plain))\n"
        "print(\"curl\", app(open(d + \"/curl\", \"rb\").read()) == plain)\n"
        "' " +
            d + " 2>&1",
        &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("python True"));
    EXPECT_THAT(out, HasSubstr("curl True"));
    EXPECT_THAT(out, HasSubstr("members 1\n"));
    std::printf("%s", out.c_str());
  }
  Heap::Remove(name);
  Shell(std::string("rm -rf ") + dir);
}

}  // namespace
}  // namespace shmetrics
