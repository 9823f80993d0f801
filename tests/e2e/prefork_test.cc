// examples/prefork_server end to end, as a user meets it: the real server (a master and forked
// workers), a real HTTP client (ab from apache2-utils) and curl, a worker killed with SIGKILL
// in the middle of the load, examples/attach_by_name as an unrelated process, the scrape read
// by python's OpenMetrics parser and the process_* series compared with /proc.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/prefork_helpers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/parsers.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::BuiltProgram;
using ::shmetrics::testing::ConnectionHolder;
using ::shmetrics::testing::HaveParsers;
using ::shmetrics::testing::OpenMetricsParserRejects;
using ::shmetrics::testing::ParseOpenMetrics;
using ::shmetrics::testing::PreforkServer;
using ::shmetrics::testing::PromtoolRejects;
using ::shmetrics::testing::ReadProcFacts;
using ::shmetrics::testing::ReadUntilClosed;
using ::shmetrics::testing::SampleValue;
using ::shmetrics::testing::SendRequest;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;

using Clock = std::chrono::steady_clock;

constexpr char kGetOk[] = "http_requests_total{code=\"200\",method=\"GET\"}";
// Readiness waits are generous: the machine may be busy and sanitizers slow.
constexpr auto kPatience = std::chrono::seconds(120);

// ab's request count, the 20,000 (sanitized builds too: ab itself is not slowed).
constexpr int kAbRequests = 20000;

std::string WorkerLabel(uint32_t id) { return "{worker_id=\"" + std::to_string(id) + "\"}"; }

// Polls f every 50 ms until it returns true or `patience` passes.
template <typename F>
bool Eventually(F f, std::chrono::seconds patience = kPatience) {
  const auto deadline = Clock::now() + patience;
  while (Clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return f();
}

std::vector<shm::Segment::WorkerInfo> LiveWorkers(const Heap& heap) {
  std::vector<shm::Segment::WorkerInfo> live;
  for (const auto& w : shm::HeapAccess::segment(heap).Workers()) {
    if (w.alive) live.push_back(w);
  }
  return live;
}

// Forks and execs argv with stdout on pipe `out`'s write end.
pid_t ForkChildExec(const int out[2], std::vector<std::string> argv) {
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::vector<pid_t> Pids(const std::vector<shm::Segment::WorkerInfo>& workers) {
  std::vector<pid_t> pids;
  for (const auto& w : workers) pids.push_back(w.pid);
  return pids;
}

// Starts `ab -k -n requests -c 8` against port with its output in `log`.
pid_t StartAb(int port, int requests, const std::string& log) {
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    const std::string n = std::to_string(requests);
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
    execlp("ab", "ab", "-q", "-k", "-s", "300", "-n", n.c_str(), "-c", "8", url.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// "Complete requests:      20000" -> 20000; -1 when the line is missing.
long AbField(const std::string& report, const std::string& field) {
  const size_t at = report.find(field);
  if (at == std::string::npos) return -1;
  return std::strtol(report.c_str() + at + field.size(), nullptr, 10);
}

// Compares every process_* series of one process with /proc/<pid>, read just after the scrape.
void ExpectProcessSeriesMatchProc(const std::map<std::string, double>& samples,
                                  const std::string& label, pid_t pid) {
  SCOPED_TRACE("process " + label + " pid " + std::to_string(pid));
  const auto facts = ReadProcFacts(pid);
  ASSERT_TRUE(facts.has_value());
  auto sample = [&](const std::string& name) {
    const auto it = samples.find(name + label);
    EXPECT_NE(it, samples.end()) << name + label;
    return it == samples.end() ? -1.0 : it->second;
  };
  const double rss = sample("process_resident_memory_bytes");
  // Read apart in time: an idle worker's heap may still move by a few pages.
  EXPECT_NEAR(rss, facts->resident_bytes, std::max(facts->resident_bytes * 0.10, 512.0 * 1024));
  EXPECT_GT(sample("process_virtual_memory_bytes"), rss);
  EXPECT_EQ(sample("process_threads"), facts->threads);
  // The master opens a /proc file or two while it scrapes itself.
  EXPECT_NEAR(sample("process_open_fds"), facts->open_fds, 2);
  EXPECT_EQ(sample("process_max_fds"), facts->max_fds);
  EXPECT_NEAR(sample("process_start_time_seconds"), facts->start_time, 0.01);
  const double cpu = sample("process_cpu_seconds_total");
  EXPECT_GE(cpu, 0);
  EXPECT_LE(cpu, facts->cpu_seconds + 0.011);  // read after the scrape: never less
  EXPECT_NEAR(cpu,
              sample("process_cpu_user_seconds_total") + sample("process_cpu_system_seconds_total"),
              1e-6);
  EXPECT_GE(sample("process_voluntary_context_switches_total"), 0);
  EXPECT_GE(sample("process_minor_page_faults_total"), 0);
}

// The main scenario. ab sends kAbRequests keep-alive requests at concurrency 8 to four
// workers. Mid-load the test kills, with SIGKILL, the worker that is blocked in a /slow request
// the test sent itself: that request is never answered and so never counted, while every
// request ab saw answered is, whichever worker served it, dead or alive.
TEST(PreforkServerTest, CountsEveryAnsweredRequestThroughAWorkerKill) {
  if (access("/usr/bin/ab", X_OK) != 0) GTEST_SKIP() << "ab (apache2-utils) not installed";
  const std::string name = UniqueHeapName("prefork");
  PreforkServer server(4, name);
  ASSERT_TRUE(server.ok()) << server.output();
  const Heap heap = Heap::Open(name, {.read_only = true});
  ASSERT_TRUE(Eventually([&] { return LiveWorkers(heap).size() == 4; }));

  const std::string ab_log = ::testing::TempDir() + "/" + name + ".ab";
  const pid_t ab = StartAb(server.port(), kAbRequests, ab_log);
  ASSERT_GT(ab, 0);

  // Early in the load: every worker has served some of ab's requests (its in-flight series
  // exists once it served one), so the victim has counts of its own to lose.
  std::string scrape;
  ASSERT_TRUE(Eventually([&] {
    scrape = server.Scrape();
    for (uint32_t id = 0; id < 4; ++id) {
      if (!SampleValue(scrape, "http_requests_in_flight" + WorkerLabel(id))) return false;
    }
    return true;
  })) << scrape;

  // A request of the test's own that blocks its worker; find that worker.
  const int slow = SendRequest(
      server.port(), "GET /slow?ms=60000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_GE(slow, 0);
  pid_t victim = -1;
  ASSERT_TRUE(Eventually([&] {
    victim = ConnectionHolder(slow, server.port(), Pids(LiveWorkers(heap)));
    return victim > 0;
  }));
  uint32_t victim_id = UINT32_MAX;
  uint64_t victim_epoch = 0;
  for (const auto& w : LiveWorkers(heap)) {
    if (w.pid == victim) victim_id = w.id, victim_epoch = w.epoch;
  }
  ASSERT_NE(victim_id, UINT32_MAX);
  // The victim serves nothing but this connection, so in flight 1 means it is inside /slow.
  ASSERT_TRUE(Eventually([&] {
    scrape = server.Scrape();
    return SampleValue(scrape, "http_requests_in_flight" + WorkerLabel(victim_id)) == 1.0;
  })) << scrape;
  const double before_kill = SampleValue(scrape, kGetOk).value_or(-1);

  ASSERT_EQ(kill(victim, SIGKILL), 0);
  int ab_status = 0;
  const pid_t ab_reaped = waitpid(ab, &ab_status, WNOHANG);
  const bool ab_still_running = ab_reaped == 0;
  bool closed = false;
  const std::string slow_reply = ReadUntilClosed(slow, std::chrono::seconds(60), &closed);
  close(slow);
  EXPECT_TRUE(closed);
  EXPECT_THAT(slow_reply, Not(HasSubstr("HTTP/"))) << "the killed worker answered";

  // The master respawns the worker under the same id: the slot is claimed again (a new epoch).
  ASSERT_TRUE(Eventually([&] {
    for (const auto& w : LiveWorkers(heap)) {
      if (w.id == victim_id && w.pid != victim) return true;
    }
    return false;
  }));
  std::set<uint32_t> ids;
  pid_t successor = -1;
  for (const auto& w : shm::HeapAccess::segment(heap).Workers()) {
    if (w.alive) ids.insert(w.id);
    if (w.id == victim_id) {
      successor = w.pid;
      EXPECT_GT(w.epoch, victim_epoch);
    }
  }
  EXPECT_EQ(ids, (std::set<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(shm::HeapAccess::segment(heap).Workers().size(), 4u)
      << "a slot other than the victim's was claimed";
  // Nothing the victim recorded went with it.
  EXPECT_GE(SampleValue(server.Scrape(), kGetOk).value_or(-1), before_kill);

  const int ab_rc = ab_reaped == ab ? (WIFEXITED(ab_status) ? WEXITSTATUS(ab_status) : -1)
                                    : WaitChild(ab, std::chrono::seconds(600));
  ASSERT_EQ(ab_rc, 0) << Shell("cat " + ab_log);
  std::ifstream in(ab_log);
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(AbField(report, "Complete requests:"), kAbRequests) << report;
  EXPECT_EQ(AbField(report, "Failed requests:"), 0) << report;
  EXPECT_THAT(report, Not(HasSubstr("Non-2xx"))) << report;
  EXPECT_TRUE(ab_still_running) << "ab finished before the kill; the kill was not mid-load";
  unlink(ab_log.c_str());

  // The totals are exactly the requests ab saw answered, read by an independent parser.
  scrape = server.Scrape();
  std::string error;
  const auto samples = ParseOpenMetrics(scrape, &error);
  ASSERT_TRUE(samples.has_value()) << error << "\n" << scrape;
  double total = 0;
  std::set<std::string> worker_labels;
  for (const auto& [series, value] : *samples) {
    if (series.rfind("http_requests_total{", 0) == 0) total += value;
    if (series.rfind("process_resident_memory_bytes{", 0) == 0) worker_labels.insert(series);
    if (series.rfind("http_requests_in_flight{", 0) == 0) {
      EXPECT_EQ(value, 0) << series << ": nothing is in flight once ab is done";
    }
  }
  EXPECT_EQ(total, kAbRequests);
  EXPECT_EQ(samples->at(kGetOk), kAbRequests);
  EXPECT_EQ(samples->at("http_request_duration_seconds_count{}"), kAbRequests);
  EXPECT_EQ(samples->at("http_request_duration_seconds_bucket{le=\"+Inf\"}"), kAbRequests);

  // process_* series: the master and each live worker, the victim replaced by its successor.
  EXPECT_EQ(worker_labels,
            (std::set<std::string>{"process_resident_memory_bytes{worker_id=\"0\"}",
                                   "process_resident_memory_bytes{worker_id=\"1\"}",
                                   "process_resident_memory_bytes{worker_id=\"2\"}",
                                   "process_resident_memory_bytes{worker_id=\"3\"}",
                                   "process_resident_memory_bytes{worker_id=\"master\"}"}));
  ExpectProcessSeriesMatchProc(*samples, "{worker_id=\"master\"}", server.pid());
  for (const auto& w : LiveWorkers(heap)) {
    ExpectProcessSeriesMatchProc(*samples, WorkerLabel(w.id), w.pid);
  }
  const auto successor_facts = ReadProcFacts(successor);
  ASSERT_TRUE(successor_facts.has_value());
  EXPECT_NEAR(samples->at("process_start_time_seconds" + WorkerLabel(victim_id)),
              successor_facts->start_time, 0.01)
      << "worker " << victim_id << "'s series are its successor's";

  EXPECT_EQ(server.Stop(SIGTERM), 0);
  EXPECT_THROW(Heap::Open(name), Error) << "the master removes its heap";
}

// SIGTERM or SIGINT: the workers finish the request in flight, the exited workers' process_*
// series drop out while the busy one still runs, and the master exits 0 and removes its heap.
void ExpectGracefulStop(int sig) {
  SCOPED_TRACE(strsignal(sig));
  const std::string name = UniqueHeapName("graceful");
  PreforkServer server(2, name, {"--listen-address", "127.0.0.1"});
  ASSERT_TRUE(server.ok()) << server.output();
  const Heap heap = Heap::Open(name, {.read_only = true});
  ASSERT_TRUE(Eventually([&] { return LiveWorkers(heap).size() == 2; }));
  const auto workers = LiveWorkers(heap);

  const int slow = SendRequest(
      server.port(), "GET /slow?ms=5000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_GE(slow, 0);
  pid_t busy = -1;
  ASSERT_TRUE(Eventually([&] {
    busy = ConnectionHolder(slow, server.port(), Pids(workers));
    return busy > 0;
  }));
  const auto& idle = workers[0].pid == busy ? workers[1] : workers[0];
  const auto& busy_worker = workers[0].pid == busy ? workers[0] : workers[1];
  std::string scrape;
  ASSERT_TRUE(Eventually([&] {
    scrape = server.Scrape();
    return SampleValue(scrape, "http_requests_in_flight" + WorkerLabel(busy_worker.id)) == 1.0;
  })) << scrape;

  ASSERT_EQ(kill(server.pid(), sig), 0);
  // The idle worker exits at once; the busy one is still in its request.
  ASSERT_TRUE(Eventually([&] {
    scrape = server.Scrape();
    return !SampleValue(scrape, "process_threads" + WorkerLabel(idle.id)).has_value();
  })) << scrape;
  pollfd p{slow, POLLIN, 0};
  if (poll(&p, 1, 0) == 0) {  // no answer yet, so the busy worker was alive during the scrape
    EXPECT_TRUE(SampleValue(scrape, "process_threads" + WorkerLabel(busy_worker.id)).has_value())
        << scrape;
    EXPECT_TRUE(SampleValue(scrape, "process_threads{worker_id=\"master\"}").has_value());
  }
  bool closed = false;
  const std::string reply = ReadUntilClosed(slow, kPatience, &closed);
  close(slow);
  EXPECT_TRUE(closed);
  EXPECT_THAT(reply, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(reply, HasSubstr("Connection: close\r\n\r\nok\n"));
  EXPECT_EQ(server.Stop(sig), 0) << "exit code of the master";
  EXPECT_THROW(Heap::Open(name), Error) << "the master removes its heap";
}

TEST(PreforkServerTest, SigtermFinishesInFlightRequestsAndRemovesTheHeap) {
  ExpectGracefulStop(SIGTERM);
}

TEST(PreforkServerTest, SigintFinishesInFlightRequestsAndRemovesTheHeap) {
  ExpectGracefulStop(SIGINT);
}

// /crash kills the worker that serves it; the master respawns it under the same id and the
// counts stay.
TEST(PreforkServerTest, CrashedWorkerIsRespawnedAndItsCountsStay) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  const std::string name = UniqueHeapName("crash");
  PreforkServer server(2, name);
  ASSERT_TRUE(server.ok()) << server.output();
  const Heap heap = Heap::Open(name, {.read_only = true});
  ASSERT_TRUE(Eventually([&] { return LiveWorkers(heap).size() == 2; }));
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string ok = Shell("for i in $(seq 10); do curl -sS --max-time 60 " + url +
                               "/item/$i; done; curl -sS --max-time 60 -X POST " + url +
                               "/form; curl -sS --max-time 60 -X BREW " + url + "/pot");
  std::string twelve_oks;
  for (int i = 0; i < 12; ++i) twelve_oks += "ok\n";
  EXPECT_EQ(ok, twelve_oks);
  const auto before = shm::HeapAccess::segment(heap).Workers();
  int rc = 0;
  Shell("curl -s --max-time 60 " + url + "/crash", &rc);
  EXPECT_NE(rc, 0) << "a crashed worker sends no answer";
  ASSERT_TRUE(Eventually([&] {
    const auto now = shm::HeapAccess::segment(heap).Workers();
    for (size_t i = 0; i < now.size() && i < before.size(); ++i) {
      if (now[i].alive && now[i].epoch > before[i].epoch) return true;
    }
    return false;
  }));
  EXPECT_EQ(shm::HeapAccess::segment(heap).Workers().size(), 2u)
      << "the replacement took the dead worker's id";
  const std::string scrape = server.Scrape();
  EXPECT_EQ(SampleValue(scrape, kGetOk), 10.0) << scrape;
  EXPECT_EQ(SampleValue(scrape, "http_requests_total{code=\"200\",method=\"POST\"}"), 1.0);
  // Methods outside the standard set share one series: clients cannot make up series.
  EXPECT_EQ(SampleValue(scrape, "http_requests_total{code=\"200\",method=\"other\"}"), 1.0);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

// examples/attach_by_name is not forked from the server: it opens the heap by name, and the
// server's endpoint serves what it wrote.
TEST(PreforkServerTest, AttachByNameUpdatesTheServersHeap) {
  const std::string name = UniqueHeapName("attach");
  PreforkServer server(2, name);
  ASSERT_TRUE(server.ok()) << server.output();
  const std::string tool = BuiltProgram("examples/attach_by_name");
  // The timestamp is another process's wall-clock reading, and the wall clock may step either
  // way (NTP, or time()'s coarse clock lagging the precise one): the test plants a value of its
  // own that no clock reads, and checks that the tool replaced it with a reading near ours.
  constexpr double kPlanted = -1;
  {
    Heap heap = Heap::Open(name);
    Registry registry(heap);
    registry
        .AddGauge("batch_last_success_timestamp", "When a batch run last succeeded", {},
                  {.unit = "seconds"})
        .Labels()
        .Set(kPlanted);
  }
  int rc = -1;
  EXPECT_EQ(Shell(tool + " --heap " + name + " --jobs 5 --kind invoices", &rc),
            "batch_jobs_total{kind=\"invoices\"} 5\n");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(Shell(tool + " --heap " + name + " --jobs 2 --kind invoices", &rc),
            "batch_jobs_total{kind=\"invoices\"} 7\n");
  EXPECT_EQ(rc, 0);
  const std::string scrape = server.Scrape();
  std::string error;
  const auto samples = ParseOpenMetrics(scrape, &error);
  ASSERT_TRUE(samples.has_value()) << error << "\n" << scrape;
  EXPECT_EQ(samples->at("batch_jobs_total{kind=\"invoices\"}"), 7);
  const double last = samples->at("batch_last_success_timestamp_seconds{}");
  EXPECT_NE(last, kPlanted);
  EXPECT_NEAR(last, static_cast<double>(time(nullptr)), 24 * 3600) << "a wall-clock reading";
  EXPECT_EQ(server.Stop(SIGTERM), 0);

  // Without the heap there is nothing to attach to: a clear error, and no heap is created.
  const std::string out = Shell(tool + " --heap " + name + " 2>&1", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("does not exist"));
  EXPECT_THROW(Heap::Open(name), Error);
}

// Bad flags are refused before anything is created; a port in use is a clear error that leaves
// no heap behind.
TEST(PreforkServerTest, RefusesBadFlagsAndLeavesNoHeapBehind) {
  const std::string bin = BuiltProgram("examples/prefork_server");
  int rc = -1;
  for (const char* args : {"--workers 0", "--workers 65", "--port abc", "--metrics-port -1",
                           "--port 70000", "--bogus 1", "--workers"}) {
    const std::string out = Shell(bin + " " + args + " 2>&1", &rc);
    EXPECT_EQ(rc, 2) << args;
    EXPECT_THAT(out, HasSubstr("usage: prefork_server")) << args;
  }
  const std::string name = UniqueHeapName("flags");
  PreforkServer first(1, name);
  ASSERT_TRUE(first.ok()) << first.output();
  const std::string second = UniqueHeapName("flags");
  std::string out = Shell(bin + " --workers 1 --metrics-port 0 --heap " + second + " --port " +
                              std::to_string(first.port()) + " 2>&1",
                          &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("cannot listen on 127.0.0.1 port " + std::to_string(first.port())));
  EXPECT_THROW(Heap::Open(second), Error);
  out = Shell(bin +
                  " --workers 1 --port 0 --metrics-port 0 --listen-address not-an-address "
                  "--heap " +
                  second + " 2>&1",
              &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THROW(Heap::Open(second), Error);
  // The same heap name twice: the second server refuses and leaves the first one's heap alone.
  out = Shell(bin + " --workers 1 --port 0 --metrics-port 0 --heap " + name + " 2>&1", &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_THAT(out, HasSubstr("exists"));
  EXPECT_NO_THROW(Heap::Open(name, {.read_only = true}));
  EXPECT_EQ(first.Stop(SIGINT), 0);
}

// `shmetrics serve --heap NAME` beside a prefork_server that is stopped and started again:
// while it is down its heap is gone and serve says so; once it is back the next scrape serves
// the new heap, never the old one. Every scrape passes both parsers.
TEST(PreforkServerTest, ServeFollowsAServerThatRestartsItsHeap) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  const std::string name = UniqueHeapName("restart");
  auto server = std::make_unique<PreforkServer>(1, name);
  ASSERT_TRUE(server->ok()) << server->output();
  auto get = [&](int n) {
    const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/item/1";
    for (int i = 0; i < n; ++i) EXPECT_EQ(Shell("curl -sS --max-time 60 " + url), "ok\n");
  };
  get(3);

  // serve, started by path of its binary, its "listening on" line read through a pipe.
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string tool = BuiltProgram("src/shmetrics");
  const pid_t serve =
      ForkChildExec(out, {tool, "serve", "--heap", name, "--listen", "127.0.0.1:0"});
  close(out[1]);
  std::string line;
  for (const auto deadline = Clock::now() + kPatience; Clock::now() < deadline;) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char c;
    if (read(out[0], &c, 1) != 1 || c == '\n') break;
    line += c;
  }
  close(out[0]);
  const std::string prefix = "listening on 127.0.0.1:";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
  const std::string base = "http://127.0.0.1:" + line.substr(prefix.size()) + "/metrics";
  auto scrape = [&] {
    const std::string om = Shell(
        "curl -s --max-time 60 -H 'Accept: application/openmetrics-text;version=1.0.0' " + base);
    EXPECT_EQ(OpenMetricsParserRejects(om), "") << om;
    const std::string prom = Shell("curl -s --max-time 60 " + base);
    EXPECT_EQ(PromtoolRejects(prom), "") << prom;
    return om;
  };
  const std::string up = "\nshmetrics_heap_up{heap=\"" + name + "\"} ";
  std::string om = scrape();
  EXPECT_EQ(SampleValue(om, kGetOk), 3.0) << om;
  EXPECT_THAT(om, HasSubstr(up + "1\n"));

  EXPECT_EQ(server->Stop(SIGTERM), 0);  // removes its heap
  om = scrape();
  EXPECT_THAT(om, HasSubstr(up + "0\n"));
  EXPECT_THAT(om, Not(HasSubstr("http_requests_total"))) << "the old heap is still served";
  EXPECT_THAT(om, Not(HasSubstr("process_")));

  server = std::make_unique<PreforkServer>(1, name);
  ASSERT_TRUE(server->ok()) << server->output();
  get(1);
  om = scrape();
  EXPECT_EQ(SampleValue(om, kGetOk), 1.0) << om;
  EXPECT_THAT(om, HasSubstr(up + "1\n"));
  EXPECT_THAT(om, HasSubstr("process_start_time_seconds{worker_id=\"master\"}"));

  ASSERT_EQ(kill(serve, SIGTERM), 0);
  EXPECT_EQ(WaitChild(serve), 0);
  EXPECT_EQ(server->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace shmetrics
