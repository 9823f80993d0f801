// The embedded HTTP endpoint, over real loopback sockets, with curl as the client.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "e2e/prefork_helpers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shmetrics/error.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/parsers.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::OpenMetricsParserRejects;
using ::shmetrics::testing::ParseOpenMetrics;
using ::shmetrics::testing::PromtoolRejects;
using ::shmetrics::testing::ReadUntilClosed;
using ::shmetrics::testing::SendRequest;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;

// The local TCP port of socket fd, or 0 when fd is not an IPv4/IPv6 socket.
uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

// Whether fd is a socket bound to local TCP port `port`, listening or connected as asked.
bool IsSocketOn(int fd, uint16_t port, bool listening) {
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0) return false;
  return (accepting != 0) == listening && LocalPort(fd) == port;
}

// Whether this process holds a socket listening on `port`. Probes every descriptor number
// instead of reading /proc/self/fd, so a forked child can ask without allocating.
bool HoldsListenerOn(uint16_t port) {
  for (int fd = 0; fd < 4096; ++fd) {
    if (IsSocketOn(fd, port, /*listening=*/true)) return true;
  }
  return false;
}

// This process's descriptors of sockets bound to local port `port` (listening or not).
std::vector<int> SocketsOn(uint16_t port, bool listening) {
  std::vector<int> fds;
  for (int fd = 0; fd < 4096; ++fd) {
    if (IsSocketOn(fd, port, listening)) fds.push_back(fd);
  }
  return fds;
}

// "socket:[inode]", what /proc/<pid>/fd/<fd> links to.
std::string SocketLink(int fd) {
  char buf[128] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// What `ls -l /proc/self/fd` prints in a program started with posix_spawn, which (unlike
// fork) runs no pthread_atfork handler: only close-on-exec keeps a descriptor out of it.
std::string SpawnedProgramsDescriptors() {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return "";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  char ls[] = "ls", l[] = "-l", dir[] = "/proc/self/fd";
  char* argv[] = {ls, l, dir, nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/ls", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  std::string text;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(WaitChild(pid), 0);
  }
  close(out[0]);
  return text;
}

class ExposerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
    unsetenv("SHMETRICS_COMMON_LABELS");
    name_ = UniqueHeapName("exp");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    exposer_ = std::make_unique<HttpExposer>(*heap_, HttpExposerOptions{.port = 0});
    base_ = "http://127.0.0.1:" + std::to_string(exposer_->port());
  }
  void TearDown() override {
    exposer_.reset();
    registry_.reset();
    heap_.reset();
    if (!name_.empty()) Heap::Remove(name_);
  }
  std::string name_, base_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<HttpExposer> exposer_;
};

TEST_F(ExposerTest, ServesWhatAForkedWorkerWrote) {
  auto& f = registry_->AddCounter("jobs", "Jobs", {"kind"});
  const pid_t child = ForkChild([&] {
    heap_->AttachWorker();
    f.Labels("email").Inc(41);
    f.Labels("email").Inc();
    return 0;
  });
  ASSERT_EQ(WaitChild(child), 0);
  const std::string om =
      Shell("curl -s -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5' " +
            base_ + "/metrics");
  EXPECT_THAT(om, HasSubstr("jobs_total{kind=\"email\"} 42\n"));
  EXPECT_THAT(om, HasSubstr("# EOF\n"));
  const std::string prom = Shell("curl -s " + base_ + "/metrics");
  EXPECT_THAT(prom, HasSubstr("jobs_total{kind=\"email\"} 42\n"));
  EXPECT_THAT(prom, Not(HasSubstr("# EOF")));
  const std::string gz = Shell("curl -s --compressed -D - " + base_ + "/metrics");
  EXPECT_THAT(gz, HasSubstr("Content-Encoding: gzip"));
  EXPECT_THAT(gz, HasSubstr("jobs_total{kind=\"email\"} 42\n"));
  const std::string filtered = Shell("curl -s -g '" + base_ + "/metrics?name[]=jobs_total'");
  EXPECT_THAT(filtered, HasSubstr("jobs_total"));
  EXPECT_THAT(filtered, Not(HasSubstr("shmetrics_heap")));
}

TEST_F(ExposerTest, RoutesAndMethods) {
  EXPECT_EQ(Shell("curl -s -o /dev/null -w '%{http_code}' " + base_ + "/nope"), "404");
  EXPECT_EQ(Shell("curl -s -o /dev/null -w '%{http_code}' -X POST " + base_ + "/metrics"), "405");
  EXPECT_EQ(Shell("curl -s " + base_ + "/-/healthy"), "OK\n");
  EXPECT_THAT(Shell("curl -s " + base_ + "/"), HasSubstr("/metrics"));
  const std::string head = Shell("curl -s -I " + base_ + "/metrics");
  EXPECT_THAT(head, HasSubstr("200"));
  EXPECT_THAT(head, HasSubstr("text/plain; version=0.0.4"));
}

TEST_F(ExposerTest, BindFailureIsAClearError) {
  try {
    HttpExposer second(*heap_, {.port = exposer_->port()});
    FAIL() << "bound the same port twice";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(std::to_string(exposer_->port())));
  }
}

// The listening socket and every accepted connection are close-on-exec, and a forked child
// holds no copy of the listening socket.
TEST_F(ExposerTest, ForkedAndSpawnedChildrenHoldNoListeningSocket) {
  const uint16_t port = exposer_->port();
  const std::vector<int> listeners = SocketsOn(port, /*listening=*/true);
  ASSERT_EQ(listeners.size(), 1u) << "the exposer's own listening socket";
  EXPECT_NE(fcntl(listeners[0], F_GETFD) & FD_CLOEXEC, 0);
  // A keep-alive connection the exposer has answered, so it holds the accepted socket now.
  const int client = SendRequest(port, "GET /-/healthy HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_GE(client, 0);
  std::string reply;
  for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       reply.find("\r\n\r\nOK\n") == std::string::npos &&
       std::chrono::steady_clock::now() < deadline;) {
    char buf[512];
    const ssize_t n = recv(client, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ASSERT_THAT(reply, HasSubstr("\r\n\r\nOK\n"));
  std::vector<int> accepted;
  for (int fd : SocketsOn(port, /*listening=*/false)) {
    if (fd != client) accepted.push_back(fd);
  }
  ASSERT_EQ(accepted.size(), 1u) << "the exposer's side of the connection";
  EXPECT_NE(fcntl(accepted[0], F_GETFD) & FD_CLOEXEC, 0);

  // A forked child (no exec): the atfork handler closed its copy of the listener.
  const pid_t child = ForkChild([&] { return HoldsListenerOn(port) ? 3 : 0; });
  EXPECT_EQ(WaitChild(child), 0) << "a forked child holds the metrics port";
  // A spawned program sees neither socket.
  const std::string fds = SpawnedProgramsDescriptors();
  EXPECT_THAT(fds, HasSubstr(" 1 -> pipe:")) << "ls ran and listed its descriptors";
  EXPECT_THAT(fds, Not(HasSubstr(SocketLink(listeners[0]))));
  EXPECT_THAT(fds, Not(HasSubstr(SocketLink(accepted[0]))));
  close(client);
  // The parent still serves.
  EXPECT_EQ(Shell("curl -s --max-time 60 " + base_ + "/-/healthy"), "OK\n");
}

// A master with an embedded exposer forks a worker and is killed. The orphaned worker must not
// keep the metrics port, so a restarted master can bind it. The worker itself looks, once its
// master is gone: whether another process took the port since is no concern of this test.
TEST_F(ExposerTest, WorkerOrphanedByAKilledMasterHoldsNoMetricsPort) {
  // The master is forked from a single-threaded test process, as a real one starts: without the
  // fixture's exposer thread (ThreadSanitizer refuses threads in a multi-threaded fork's child).
  exposer_.reset();
  int report[2], go[2], verdict[2];
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(verdict, O_CLOEXEC), 0);
  const pid_t master = ForkChild([&] {
    close(report[0]);
    close(go[1]);
    close(verdict[0]);
    HttpExposer exposer(*heap_, {.port = 0});
    const uint16_t port = exposer.port();
    const pid_t worker = ForkChild([&] {
      char c;
      (void)!read(go[0], &c, 1);  // the test writes once the master is dead
      const char held = HoldsListenerOn(port) ? 'y' : 'n';
      (void)!write(verdict[1], &held, 1);
      return 0;
    });
    const int32_t facts[2] = {port, worker};
    (void)!write(report[1], facts, sizeof facts);
    pause();  // until killed by the test
    return 4;
  });
  close(report[1]);
  close(go[0]);
  close(verdict[1]);
  int32_t facts[2] = {0, 0};
  ASSERT_EQ(read(report[0], facts, sizeof facts), static_cast<ssize_t>(sizeof facts));
  close(report[0]);
  const auto port = static_cast<uint16_t>(facts[0]);
  ASSERT_GT(port, 0);
  ASSERT_GT(facts[1], 0);
  ASSERT_EQ(kill(master, SIGKILL), 0);
  EXPECT_EQ(WaitChild(master), 128 + SIGKILL);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  close(go[1]);
  char held = 0;
  // The worker answers, or its end closes when it dies: never a wait without end.
  ASSERT_EQ(read(verdict[0], &held, 1), 1) << "the orphaned worker died before it answered";
  close(verdict[0]);
  EXPECT_EQ(held, 'n') << "the orphaned worker holds the metrics port " << port;
}

// A HEAD of /metrics (Prometheus never sends one, but load balancers and probes do) gets the
// headers only, so it must leave the maxima for the next GET; the GET then empties them.
TEST_F(ExposerTest, HeadLeavesMaximaForTheNextGet) {
  registry_->AddMaxGauge("queue_peak", "Deepest queue since the last scrape").Labels().Set(17);
  registry_->AddTimer("rpc", "RPC time").Labels().Record(std::chrono::milliseconds(250));
  registry_->AddDistributionSummary("payload", "Payload size", {}, {.unit = "bytes"})
      .Labels()
      .Record(4096);
  const std::string om_accept = "Accept: application/openmetrics-text;version=1.0.0\r\n";
  for (const std::string& accept : {om_accept, std::string()}) {
    const int head = SendRequest(exposer_->port(), "HEAD /metrics HTTP/1.1\r\nHost: t\r\n" +
                                                       accept + "Connection: close\r\n\r\n");
    ASSERT_GE(head, 0);
    bool closed = false;
    const std::string reply = ReadUntilClosed(head, std::chrono::seconds(60), &closed);
    close(head);
    EXPECT_TRUE(closed);
    EXPECT_THAT(reply, HasSubstr("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(reply, Not(HasSubstr("queue_peak"))) << "a HEAD answer has no body";
  }
  const std::string get =
      "curl -s --max-time 60 -H 'Accept: application/openmetrics-text;"
      "version=1.0.0' " +
      base_ + "/metrics";
  const std::string first = Shell(get);
  std::string error;
  const auto samples = ParseOpenMetrics(first, &error);
  ASSERT_TRUE(samples.has_value()) << error << "\n" << first;
  EXPECT_EQ(samples->count("queue_peak{}"), 1u) << first;
  EXPECT_EQ(samples->count("queue_peak{}") ? samples->at("queue_peak{}") : -1, 17);
  EXPECT_THAT(first, HasSubstr("\nrpc_seconds_max 0.25\n"));
  EXPECT_THAT(first, HasSubstr("\npayload_bytes_max 4096\n"));
  EXPECT_EQ(OpenMetricsParserRejects(first), "");
  // That GET (and the one after it) started new windows: nothing was set since.
  const std::string prom = Shell("curl -s --max-time 60 " + base_ + "/metrics");
  EXPECT_EQ(PromtoolRejects(prom), "") << prom;
  const std::string second = Shell(get);
  EXPECT_THAT(second, Not(HasSubstr("\nqueue_peak ")));
  EXPECT_THAT(second, HasSubstr("\nrpc_seconds_max 0\n"));
  EXPECT_EQ(OpenMetricsParserRejects(second), "");
}

// created_samples = false: no _created sample in either format, over a real socket.
TEST_F(ExposerTest, CreatedSamplesCanBeLeftOut) {
  registry_->AddCounter("jobs", "Jobs").Labels().Inc(3);
  registry_->AddSummary("lat", "Latency").Labels().Observe(1);
  const std::string accept = " -H 'Accept: application/openmetrics-text;version=1.0.0' ";
  EXPECT_THAT(Shell("curl -s" + accept + base_ + "/metrics"), HasSubstr("\njobs_created "));
  HttpExposerOptions o;
  o.port = 0;
  o.created_samples = false;
  HttpExposer without(*heap_, o);
  const std::string url = "http://127.0.0.1:" + std::to_string(without.port()) + "/metrics";
  const std::string om = Shell("curl -s" + accept + url);
  EXPECT_THAT(om, HasSubstr("\njobs_total 3\n"));
  EXPECT_THAT(om, HasSubstr("\nlat_count 1\n"));
  EXPECT_THAT(om, Not(HasSubstr("_created")));
  EXPECT_EQ(OpenMetricsParserRejects(om), "");
  const std::string prom = Shell("curl -s " + url);
  EXPECT_THAT(prom, HasSubstr("\njobs_total 3\n"));
  EXPECT_THAT(prom, Not(HasSubstr("_created")));
}

}  // namespace
}  // namespace shmetrics
