// `shmetrics push --remote-write` into a real Prometheus (Debian 2.42) started with
// --web.enable-remote-write-receiver: what two worker processes wrote is what its query API
// returns, an update after the first push is there after the next, the last push on SIGTERM
// arrives, and a pusher killed with SIGKILL loses nothing the heap holds.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "push/samples.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::SampleKey;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::TextSamples;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::Contains;
using ::testing::IsSupersetOf;

constexpr char kPrometheus[] = "/usr/bin/prometheus";

std::string Tool() { return std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics"; }

// A Prometheus that only receives remote writes, on a port found free (tried again on another
// when the one found was taken meanwhile).
class Prometheus {
 public:
  explicit Prometheus(const std::string& dir) : dir_(dir) {
    Shell("rm -rf " + dir_ + " && mkdir -p " + dir_);
    std::ofstream(dir_ + "/prometheus.yml") << "global:\n  scrape_interval: 1h\n";
    for (int attempt = 0; attempt < 10 && pid_ <= 0; ++attempt) Start();
  }
  ~Prometheus() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      WaitChild(pid_, std::chrono::seconds(60));
    }
    Shell("rm -rf " + dir_);
  }

  bool up() const { return pid_ > 0; }
  std::string write_url() const { return "http://" + address_ + "/api/v1/write"; }

  // The query's result as SampleKeys, without the labels job and instance.
  std::multiset<std::string> Query(const std::string& promql) const {
    const std::string script =
        "import json,sys,urllib.request,urllib.parse\n"
        "u='http://" +
        address_ +
        "/api/v1/query?'+urllib.parse.urlencode({'query':sys.argv[1]})\n"
        "for r in json.load(urllib.request.urlopen(u,timeout=10))['data']['result']:\n"
        "  m=r['metric']\n"
        "  print('\\x01'.join(k+'\\x02'+v for k,v in m.items() if k not in ('job','instance'))"
        "+'\\x03'+r['value'][1])\n";
    std::ofstream(dir_ + "/query.py") << script;
    const std::string out =
        Shell("/usr/bin/python3 " + dir_ + "/query.py '" + promql + "' 2>/dev/null");
    std::multiset<std::string> keys;
    size_t pos = 0;
    while (pos < out.size()) {
      const size_t nl = out.find('\n', pos);
      const std::string line = out.substr(pos, nl - pos);
      pos = nl == std::string::npos ? out.size() : nl + 1;
      const size_t value_at = line.find('\x03');
      if (value_at == std::string::npos) continue;
      ::shmetrics::testing::LabelSet labels;
      for (size_t i = 0; i < value_at;) {
        const size_t end = std::min(line.find('\x01', i), value_at);
        const std::string pair = line.substr(i, end - i);
        const size_t sep = pair.find('\x02');
        labels.emplace_back(pair.substr(0, sep), pair.substr(sep + 1));
        i = end + 1;
      }
      keys.insert(SampleKey(labels, std::strtod(line.c_str() + value_at + 1, nullptr)));
    }
    return keys;
  }

 private:
  void Start() {
    const std::string port = Shell(
        "/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
        "print(s.getsockname()[1])'");
    address_ = "127.0.0.1:" + port.substr(0, port.find('\n'));
    const std::string log = dir_ + "/prometheus.log";
    const pid_t pid = fork();
    if (pid == 0) {
      freopen(log.c_str(), "w", stderr);
      execl(kPrometheus, "prometheus", ("--config.file=" + dir_ + "/prometheus.yml").c_str(),
            ("--storage.tsdb.path=" + dir_ + "/data").c_str(),
            ("--web.listen-address=" + address_).c_str(), "--web.enable-remote-write-receiver",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Ready when /-/ready answers; gone when it exited (the port was taken).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) return;
      int rc = -1;
      Shell("curl -sf -o /dev/null http://" + address_ + "/-/ready", &rc);
      if (rc == 0) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    kill(pid, SIGKILL);
    WaitChild(pid);
  }

  const std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
};

// Starts `shmetrics push` and waits for it to say it started.
pid_t StartPush(const std::string& heap, const std::string& url, const std::string& interval) {
  int out[2];
  if (pipe(out) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    const std::string tool = Tool();
    execl(tool.c_str(), "shmetrics", "push", "--heap", heap.c_str(), "--remote-write", url.c_str(),
          "--interval", interval.c_str(), "--job", "e2e", "--instance", "here",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  char buf[64] = {};
  const ssize_t n = read(out[0], buf, sizeof buf - 1);
  close(out[0]);
  return n > 0 && std::string(buf, n).starts_with("pushing to ") ? pid : -1;
}

// Polls until the query's result holds every sample wanted (true), or gives up after a minute.
bool WaitForSamples(const Prometheus& prom, const std::string& promql,
                    const std::multiset<std::string>& want, std::multiset<std::string>* got) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    *got = prom.Query(promql);
    if (std::includes(got->begin(), got->end(), want.begin(), want.end())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return false;
}

TEST(RemoteWriteE2ETest, PrometheusReceivesWhatTwoWorkersWrote) {
  if (access(kPrometheus, X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  const std::string name = UniqueHeapName("rwe2e");
  Heap heap = Heap::Create(name);
  Registry registry(heap);
  auto& jobs = registry.AddCounter("e2e_jobs", "Jobs", {"kind"});
  auto& temp = registry.AddGauge("e2e_temp_celsius", "T", {"sensor"});
  auto& latency =
      registry.AddHistogram("e2e_latency_seconds", "L", {"path"}, {.buckets = {0.1, 0.5, 2}});
  auto& size = registry.AddSummary("e2e_size_bytes", "S", {}, {.quantiles = {0.5, 0.9}});
  for (int w = 0; w < 2; ++w) {
    const pid_t worker = ForkChild([&, w] {
      heap.AttachWorker();
      jobs.Labels("mail").Inc(10 + w);
      jobs.Labels(w == 0 ? "sms" : "push").Inc(3);
      latency.Labels("/a").Observe(0.05 + w);
      latency.Labels("/b").Observe(5);
      size.Labels().Observe(100 * (w + 1));
      if (w == 1) temp.Labels("cpu").Set(41.5);
      return 0;
    });
    ASSERT_EQ(WaitChild(worker), 0);
  }

  Prometheus prom(::testing::TempDir() + "/" + name + "-prom");
  ASSERT_TRUE(prom.up());
  const std::string promql = "{job=\"e2e\",__name__=~\"e2e_.*\"}";
  auto dump = [&] {
    return TextSamples(Shell(Tool() + " dump --format prometheus --heap " + name), "e2e_");
  };

  // Every series and value of a scrape, as Prometheus stored them.
  pid_t pusher = StartPush(name, prom.write_url(), "300ms");
  ASSERT_GT(pusher, 0);
  std::multiset<std::string> want = dump(), got;
  ASSERT_EQ(want.size(), 3u /*jobs*/ + 1u /*temp*/ + 2u * 6 /*latency*/ + 4u /*size*/);
  ASSERT_TRUE(WaitForSamples(prom, promql, want, &got)) << ::testing::PrintToString(got);
  EXPECT_EQ(got, want);
  EXPECT_THAT(got, Contains(SampleKey({{"__name__", "e2e_jobs_total"}, {"kind", "mail"}}, 21)));
  EXPECT_THAT(got,
              Contains(SampleKey(
                  {{"__name__", "e2e_latency_seconds_bucket"}, {"path", "/a"}, {"le", "0.1"}}, 1)));
  // The labels the pusher adds, and its self-metrics.
  EXPECT_FALSE(prom.Query("e2e_jobs_total{job=\"e2e\",instance=\"here\"}").empty());
  EXPECT_FALSE(prom.Query("shmetrics_remote_write_samples_sent_total{job=\"e2e\"}").empty());

  // An update after the first push is there after the next.
  jobs.Labels("mail").Inc(100);
  temp.Labels("cpu").Set(-3);
  want = dump();
  ASSERT_TRUE(WaitForSamples(prom, promql, want, &got)) << ::testing::PrintToString(got);
  EXPECT_THAT(got, Contains(SampleKey({{"__name__", "e2e_jobs_total"}, {"kind", "mail"}}, 121)));

  // SIGKILL loses nothing the heap holds: the next pusher sends it all.
  kill(pusher, SIGKILL);
  EXPECT_EQ(WaitChild(pusher), 128 + SIGKILL);
  jobs.Labels("mail").Inc(1000);
  pusher = StartPush(name, prom.write_url(), "1h");  // pushes once now, then only at SIGTERM
  ASSERT_GT(pusher, 0);
  want = dump();
  ASSERT_TRUE(WaitForSamples(prom, promql, want, &got)) << ::testing::PrintToString(got);

  // SIGTERM sends a last push, then exits 0.
  jobs.Labels("sms").Inc(5000);
  want = dump();
  kill(pusher, SIGTERM);
  EXPECT_EQ(WaitChild(pusher), 0);
  ASSERT_TRUE(WaitForSamples(prom, promql, want, &got)) << ::testing::PrintToString(got);
  EXPECT_THAT(got, Contains(SampleKey({{"__name__", "e2e_jobs_total"}, {"kind", "sms"}}, 5003)));
  Heap::Remove(name);
}

}  // namespace
}  // namespace shmetrics
