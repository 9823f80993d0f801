// The shmetrics command-line tool, run as the real built binary against heaps made here.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/definition.h"
#include "registry/heap_records.h"
#include "shm/heap_access.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/parsers.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::HaveParsers;
using ::shmetrics::testing::OpenMetricsParserRejects;
using ::shmetrics::testing::PromtoolRejects;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string& Tool() {
  static const std::string path = std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics";
  return path;
}

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(int fd) {
  std::string s;
  std::array<char, 4096> buf;
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) s.append(buf.data(), static_cast<size_t>(n));
  return s;
}

// Runs the tool with `args`; stderr goes to a temporary file so a full pipe can never block it.
Result RunTool(std::vector<std::string> args) {
  args.insert(args.begin(), Tool());
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  char err_path[] = "/tmp/shmetrics_cli_err_XXXXXX";
  const int err_fd = mkstemp(err_path);
  EXPECT_GE(err_fd, 0);
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    close(err_fd);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  Result r;
  r.out = ReadAll(out[0]);
  close(out[0]);
  r.exit_code = WaitChild(pid);
  lseek(err_fd, 0, SEEK_SET);
  r.err = ReadAll(err_fd);
  close(err_fd);
  unlink(err_path);
  return r;
}

// The error contract: exactly one line, prefixed, and a failing exit status.
void ExpectOneLineError(const Result& r, int exit_code, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, exit_code) << r.err;
  EXPECT_THAT(r.err, StartsWith("shmetrics: "));
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(fragment));
}

// A running `shmetrics serve ARGS --listen 127.0.0.1:0`, its stderr in a file; the destructor
// stops it if the test did not.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args) {
    args.insert(args.begin(), {Tool(), "serve"});
    args.insert(args.end(), {"--listen", "127.0.0.1:0"});
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    const int err_fd = mkstemp(err_path_);
    EXPECT_GE(err_fd, 0);
    fflush(stdout);
    fflush(stderr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err_fd, STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      close(err_fd);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err_fd);
    out_ = out[0];
    // "listening on 127.0.0.1:PORT\n", or EOF when serve failed; bounded either way.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      if (read(out_, &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    const std::string prefix = "listening on 127.0.0.1:";
    if (line.rfind(prefix, 0) == 0) port_ = std::stoi(line.substr(prefix.size()));
  }
  ~ServeProcess() {
    if (pid_ > 0) Stop();
    if (out_ >= 0) close(out_);
    unlink(err_path_);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  // One scrape: OpenMetrics text, or Prometheus text when !openmetrics.
  std::string Scrape(bool openmetrics = true) const {
    const std::string accept =
        openmetrics ? " -H 'Accept: application/openmetrics-text;version=1.0.0'" : "";
    return Shell("curl -s --max-time 60" + accept + " http://127.0.0.1:" + std::to_string(port_) +
                 "/metrics");
  }
  // Both formats of one state of the heaps, checked by both parsers; returns the OpenMetrics one.
  std::string ScrapeAndParse() const {
    const std::string om = Scrape();
    EXPECT_EQ(OpenMetricsParserRejects(om), "") << om;
    const std::string prom = Scrape(false);
    EXPECT_EQ(PromtoolRejects(prom), "") << prom;
    return om;
  }
  // SIGTERM; the exit code.
  int Stop() {
    kill(pid_, SIGTERM);
    const int rc = WaitChild(pid_);
    pid_ = -1;
    return rc;
  }
  // Waits (bounded) for serve to exit by itself; the exit code, -1 if it did not.
  int Wait() {
    const int rc = WaitChild(pid_, std::chrono::seconds(60));
    pid_ = -1;
    return rc;
  }
  std::string Stderr() const {
    const int fd = open(err_path_, O_RDONLY);
    std::string text = fd >= 0 ? ReadAll(fd) : "";
    if (fd >= 0) close(fd);
    return text;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  char err_path_[40] = "/tmp/shmetrics_serve_err_XXXXXX";
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("SHMETRICS_COMMON_LABELS");
    name_ = UniqueHeapName("cli");
  }
  void TearDown() override {
    registry_.reset();
    heap_.reset();
    if (std::filesystem::exists("/dev/shm/shmetrics." + name_)) Heap::Remove(name_);
    if (!copy_.empty()) std::filesystem::remove(copy_);
  }
  // A heap with one counter, cli_requests_total, at `value` (default 7).
  void CreateHeapWithCounter(double value = 7) {
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    registry_->AddCounter("cli_requests", "Requests").Labels().Inc(value);
  }
  // Removes the heap's name and lets go of this process's mapping, as a stopped service would.
  void RemoveHeap() {
    registry_.reset();
    heap_.reset();
    Heap::Remove(name_);
  }
  std::string HeapFile() const { return "/dev/shm/shmetrics." + name_; }
  std::string HeapUp(int up) const {
    return "\nshmetrics_heap_up{heap=\"" + name_ + "\"} " + std::to_string(up) + "\n";
  }
  std::string name_, copy_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(CliTest, HelpForEveryCommandExitsZero) {
  for (const char* command : {"serve", "dump", "inspect", "list", "rm"}) {
    const Result r = RunTool({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_THAT(r.out, StartsWith(std::string("usage: shmetrics ") + command)) << command;
    EXPECT_EQ(r.err, "") << command;
  }
  const Result r = RunTool({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("inspect"));
}

TEST_F(CliTest, UsageErrorsAreOneLineWithExitTwo) {
  ExpectOneLineError(RunTool({"frobnicate"}), 2, "unknown command \"frobnicate\"");
  ExpectOneLineError(RunTool({}), 2, "missing command");
  ExpectOneLineError(RunTool({"dump"}), 2, "missing --heap");
  ExpectOneLineError(RunTool({"inspect", "--verify"}), 2, "missing --heap");
  ExpectOneLineError(RunTool({"rm"}), 2, "missing --heap");
  ExpectOneLineError(RunTool({"serve", "--listen", "127.0.0.1:0"}), 2, "missing --heap");
  ExpectOneLineError(RunTool({"dump", "--heap"}), 2, "--heap needs a value");
  ExpectOneLineError(RunTool({"dump", "--heap", "x", "--bogus"}), 2,
                     "unknown argument \"--bogus\"");
  ExpectOneLineError(RunTool({"dump", "--heap", "x", "--format", "json"}), 2, "unknown --format");
  ExpectOneLineError(RunTool({"serve", "--heap", "x", "--listen", "nope"}), 2, "ADDR:PORT");
  ExpectOneLineError(RunTool({"serve", "--heap", "x", "--listen", "127.0.0.1:70000"}), 2, "port");
}

TEST_F(CliTest, MissingHeapIsARuntimeError) {
  ExpectOneLineError(RunTool({"dump", "--heap", name_}), 1, name_);
  ExpectOneLineError(RunTool({"inspect", "--heap", name_}), 1, name_);
  ExpectOneLineError(RunTool({"rm", "--heap", name_}), 1, name_);
}

TEST_F(CliTest, DumpShowsTheCounterInBothFormats) {
  CreateHeapWithCounter();
  Result r = RunTool({"dump", "--heap", name_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_THAT(r.out, HasSubstr("# TYPE cli_requests counter\n"));
  EXPECT_THAT(r.out, HasSubstr("# EOF\n"));

  r = RunTool({"dump", "--heap", name_, "--format=prometheus"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("# EOF")));
}

TEST_F(CliTest, DumpShowsWhatAnotherProcessWrote) {
  // The creator is a forked child that stays alive until told to go; the tool is a third
  // process with no shared ancestry of the heap object.
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  const std::string name = name_;
  const pid_t creator = ForkChild([&] {
    close(ready[0]);
    close(done[1]);
    Heap heap = Heap::Create(name);
    Registry registry(heap);
    auto& jobs = registry.AddCounter("cli_jobs", "Jobs", {"kind"});
    jobs.Labels("email").Inc(3);
    jobs.Labels("sms").Inc(5);
    char c = 'r';
    if (write(ready[1], &c, 1) != 1) return 2;
    return read(done[0], &c, 1) == 0 ? 0 : 3;  // EOF: the parent is finished
  });
  close(ready[1]);
  close(done[0]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const Result r = RunTool({"dump", "--heap", name_});
  close(done[1]);
  close(ready[0]);
  EXPECT_EQ(WaitChild(creator), 0);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("cli_jobs_total{kind=\"email\"} 3\n"));
  EXPECT_THAT(r.out, HasSubstr("cli_jobs_total{kind=\"sms\"} 5\n"));
}

TEST_F(CliTest, InspectPrintsJsonWithCountsAndWorkers) {
  CreateHeapWithCounter();
  auto& jobs = registry_->AddCounter("cli_jobs", "Jobs", {"kind"});
  jobs.Labels("a").Inc();
  jobs.Labels("b").Inc();
  jobs.Labels("c").Inc();
  const uint32_t worker = heap_->AttachWorker();
  ASSERT_EQ(worker, 0u);

  // python's json module is the judge of well-formedness; it prints the fields we check.
  const std::string out = Shell(
      Tool() + " inspect --heap " + name_ +
      " | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
      "print(d[\"name\"], d[\"families\"], d[\"series\"], d[\"layout_version\"] > 0, "
      "d[\"size_bytes\"] > 0, d[\"max_bytes\"] >= d[\"size_bytes\"] >= d[\"used_bytes\"] > 0, "
      "[(w[\"id\"], w[\"pid\"], w[\"alive\"]) for w in d[\"workers\"]])'");
  EXPECT_EQ(out, name_ + " 2 4 True True True [(0, " + std::to_string(getpid()) + ", True)]\n");
}

TEST_F(CliTest, InspectVerifyPassesOnHealthyHeapAndFailsOnCorruptCopy) {
  CreateHeapWithCounter();
  Result r = RunTool({"inspect", "--heap", name_, "--verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"families\": 1"));

  // A copy at a path (the '/' selects OpenAtPath) verifies too, until we break it.
  copy_ = "/tmp/shmetrics_cli_" + std::to_string(getpid()) + ".heap";
  std::filesystem::copy_file("/dev/shm/shmetrics." + name_, copy_,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(chmod(copy_.c_str(), 0600), 0);
  r = RunTool({"inspect", "--heap", copy_, "--verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  const shm::Segment& seg = shm::HeapAccess::segment(*heap_);
  const uint64_t family = seg.Find(seg.header().root_table.load(), "cli_requests");
  ASSERT_NE(family, 0u);
  const int fd = open(copy_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const char garbage[8] = {'c', 'o', 'r', 'r', 'u', 'p', 't', '!'};
  ASSERT_EQ(pwrite(fd, garbage, sizeof(garbage), static_cast<off_t>(family)), 8);
  close(fd);

  r = RunTool({"inspect", "--heap", copy_, "--verify"});
  ExpectOneLineError(r, 1, "failed verification");
  EXPECT_THAT(r.err, HasSubstr("cli_requests"));
  EXPECT_EQ(r.out, "");
  // Without --verify the corrupt record is still reported, not counted.
  ExpectOneLineError(RunTool({"inspect", "--heap", copy_}), 1, "corrupt family record");
  // The original is untouched.
  EXPECT_EQ(RunTool({"inspect", "--heap", name_, "--verify"}).exit_code, 0);
}

TEST_F(CliTest, InspectVerifyFlagsFamiliesWhoseSampleNamesClash) {
  CreateHeapWithCounter();
  // Registration refuses gauge cli_requests_total beside counter cli_requests; a heap written
  // without that check (an older version) holds the pair: write its records directly.
  ASSERT_THROW(registry_->AddGauge("cli_requests_total", "G"), Error);
  internal::FamilySpec spec{.type = MetricType::kGauge, .name = "cli_requests_total", .help = "G"};
  const meters::Definition def = registry::MakeDefinition(spec, "", {});
  shm::Segment& seg = shm::HeapAccess::segment(*heap_);
  {
    shm::MutexLock lock(seg.lock());
    registry::CreateFamilyRecords(seg, seg.header().root_table.load(), def, 10);
  }
  const Result r = RunTool({"inspect", "--heap", name_, "--verify"});
  ExpectOneLineError(r, 1, "failed verification");
  EXPECT_THAT(r.err, AllOf(HasSubstr("\"cli_requests\""), HasSubstr("\"cli_requests_total\""),
                           HasSubstr("samples named \"cli_requests_total\"")));
}

TEST_F(CliTest, ListShowsTheHeapAndRmRemovesIt) {
  CreateHeapWithCounter();
  Result r = RunTool({"list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(name_ + "\n"));

  r = RunTool({"rm", "--heap", name_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/shmetrics." + name_));
  EXPECT_THAT(RunTool({"list"}).out, Not(HasSubstr(name_ + "\n")));
  ExpectOneLineError(RunTool({"rm", "--heap", name_}), 1, name_);
}

TEST_F(CliTest, ServePrintsThePortServesMetricsAndStopsOnSigterm) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  CreateHeapWithCounter();
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string tool = Tool(), name = name_;
  const pid_t server = ForkChild([&] {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execl(tool.c_str(), tool.c_str(), "serve", "--heap", name.c_str(), "--listen", "127.0.0.1:0",
          static_cast<char*>(nullptr));
    return 127;
  });
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ASSERT_THAT(line, StartsWith("listening on 127.0.0.1:"));
  const std::string port = line.substr(std::string("listening on 127.0.0.1:").size());
  ASSERT_NE(port, "0");

  const std::string body = Shell("curl -s http://127.0.0.1:" + port + "/metrics");
  EXPECT_THAT(body, HasSubstr("\ncli_requests_total 7\n"));

  ASSERT_EQ(kill(server, SIGTERM), 0);
  EXPECT_EQ(WaitChild(server), 0);
  EXPECT_EQ(ReadAll(out[0]), "");
  close(out[0]);
}

TEST_F(CliTest, ServeFailsCleanlyWhenThePortIsTaken) {
  CreateHeapWithCounter();
  HttpExposer taken(*heap_, {.port = 0});
  const Result r =
      RunTool({"serve", "--heap", name_, "--listen", "127.0.0.1:" + std::to_string(taken.port())});
  ExpectOneLineError(r, 1, std::to_string(taken.port()));
}

// A heap a group may write (made so by chmod, as a service sharing it with a group would) is
// refused by default and opened with --allow-shared-write, by dump, inspect and serve alike.
TEST_F(CliTest, AllowSharedWriteOpensAGroupWritableHeap) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  CreateHeapWithCounter();
  ASSERT_EQ(chmod(HeapFile().c_str(), 0660), 0);
  ExpectOneLineError(RunTool({"dump", "--heap", name_}), 1, "group or others may write");
  ExpectOneLineError(RunTool({"inspect", "--heap", name_}), 1, "group or others may write");
  {
    ServeProcess refused({"--heap", name_});
    EXPECT_EQ(refused.port(), 0);
    EXPECT_EQ(refused.Wait(), 1);
    EXPECT_THAT(refused.Stderr(), HasSubstr("group or others may write"));
  }
  Result r = RunTool({"dump", "--heap", name_, "--allow-shared-write"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\ncli_requests_total 7\n"));
  r = RunTool({"inspect", "--heap", name_, "--verify", "--allow-shared-write"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"families\": 1"));
  ServeProcess serve({"--heap", name_, "--allow-shared-write"});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  EXPECT_THAT(serve.Scrape(), HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_EQ(serve.Stop(), 0);
  // Like --verify, the flag takes no value.
  ExpectOneLineError(RunTool({"dump", "--heap", name_, "--allow-shared-write=1"}), 2,
                     "takes no value");
}

// --no-created leaves out every _created sample, and nothing else.
TEST_F(CliTest, ServeNoCreatedLeavesOutCreatedSamples) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  CreateHeapWithCounter();
  registry_->AddHistogram("cli_latency_seconds", "Latency", {}, {.buckets = {0.1}})
      .Labels()
      .Observe(0.05);
  {
    ServeProcess with({"--heap", name_});
    ASSERT_GT(with.port(), 0) << with.Stderr();
    const std::string om = with.ScrapeAndParse();
    EXPECT_THAT(om, HasSubstr("\ncli_requests_created "));
    EXPECT_THAT(om, HasSubstr("\ncli_latency_seconds_created "));
    EXPECT_EQ(with.Stop(), 0);
  }
  ServeProcess without({"--heap", name_, "--no-created"});
  ASSERT_GT(without.port(), 0) << without.Stderr();
  const std::string om = without.ScrapeAndParse();
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_latency_seconds_count 1\n"));
  EXPECT_THAT(om, Not(HasSubstr("_created")));
  EXPECT_EQ(without.Stop(), 0);
  ExpectOneLineError(RunTool({"serve", "--heap", name_, "--no-created=1"}), 2, "takes no value");
}

// A monitoring agent running as its own user reads a service's heap with --allow-other-owner.
TEST_F(CliTest, AllowOtherOwnerOpensAnotherUsersHeap) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the heap to another user";
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  CreateHeapWithCounter();
  ASSERT_EQ(chown(HeapFile().c_str(), 65534, 65534), 0);  // nobody
  ExpectOneLineError(RunTool({"dump", "--heap", name_}), 1, "owned by uid 65534");
  ExpectOneLineError(RunTool({"inspect", "--heap", name_}), 1, "owned by uid 65534");
  ExpectOneLineError(RunTool({"dump", "--heap", name_, "--allow-shared-write"}), 1,
                     "owned by uid 65534");
  Result r = RunTool({"dump", "--heap", name_, "--allow-other-owner"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\ncli_requests_total 7\n"));
  r = RunTool({"inspect", "--heap", name_, "--allow-other-owner"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ServeProcess serve({"--heap", name_, "--allow-other-owner"});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  EXPECT_THAT(serve.Scrape(), HasSubstr("\ncli_requests_total 7\n"));
  // Both at once, for a heap that is both.
  ASSERT_EQ(chmod(HeapFile().c_str(), 0666), 0);
  r = RunTool({"dump", "--heap", name_, "--allow-other-owner", "--allow-shared-write"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(serve.Stop(), 0);
}

// The service restarts: its heap is removed and created again under the same name with new
// values. The next scrape of the serve started before shows the new heap, and no trace of the
// old one; both parsers accept every scrape.
TEST_F(CliTest, ServeSwitchesToAHeapRecreatedUnderItsName) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  CreateHeapWithCounter(7);
  ServeProcess serve({"--heap", name_});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  std::string om = serve.ScrapeAndParse();
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_THAT(om, HasSubstr(HeapUp(1)));

  RemoveHeap();
  CreateHeapWithCounter(42);
  registry_->AddGauge("cli_generation", "Which heap this is").Labels().Set(2);
  om = serve.ScrapeAndParse();
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total 42\n"));
  EXPECT_THAT(om, Not(HasSubstr("\ncli_requests_total 7\n")));
  EXPECT_THAT(om, HasSubstr("\ncli_generation 2\n"));
  EXPECT_THAT(om, HasSubstr(HeapUp(1)));
  // And once more, to show it keeps following the name.
  RemoveHeap();
  CreateHeapWithCounter(3);
  EXPECT_THAT(serve.ScrapeAndParse(), HasSubstr("\ncli_requests_total 3\n"));
  EXPECT_EQ(serve.Stop(), 0);
}

// A client that stops reading holds one scrape thread (until the write timeout, 30 s), not the
// endpoint: another scrape is answered in full meanwhile.
TEST_F(CliTest, ServeAnswersAScrapeWhileAnotherClientStopsReading) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  CreateHeapWithCounter(7);
  // About 20 MB of text, more than loopback's socket buffers hold.
  auto& wide = registry_->AddCounter("cli_wide", "Wide labels", {"id"}, {.max_children = 200000});
  const std::string pad(180, 'x');
  for (int i = 0; i < 100000; ++i) wide.Labels(absl::StrCat(pad, i)).Inc();
  ServeProcess serve({"--heap", name_});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();

  const int stalled = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(stalled, 0);
  const int small = 4096;
  setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(serve.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(stalled, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(stalled, get.data(), get.size()), static_cast<ssize_t>(get.size()));
  // Its scrape has started once the first bytes arrive; then it reads nothing more.
  pollfd p{stalled, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 60000), 1);

  const std::string body = serve.Scrape();
  EXPECT_THAT(body, HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_THAT(body, HasSubstr(absl::StrCat("{id=\"", pad, "99999\"} 1\n")));
  EXPECT_THAT(body, EndsWith("# EOF\n"));
  // The stalled scrape is still under way (its connection open, its body unfinished).
  char buf[1 << 16];
  size_t got = 0;
  ssize_t n;
  while ((n = recv(stalled, buf, sizeof buf, MSG_DONTWAIT)) > 0) got += static_cast<size_t>(n);
  EXPECT_TRUE(n < 0 && errno == EAGAIN) << "the stalled connection ended after " << got << " bytes";
  close(stalled);
  EXPECT_EQ(serve.Stop(), 0);
}

// Removed and not recreated: the heap's families (its self and process metrics too) leave the
// scrape, and shmetrics_heap_up says it is down, while the other heap is still served.
TEST_F(CliTest, ServeLeavesOutARemovedHeapAndReportsItDown) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  CreateHeapWithCounter();
  const std::string other_name = UniqueHeapName("cli-other");
  Heap other = Heap::Create(other_name);
  Registry(other).AddCounter("cli_other_jobs", "Jobs").Labels().Inc(5);
  ServeProcess serve({"--heap", name_, "--heap", other_name});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  std::string om = serve.ScrapeAndParse();
  // Two heaps: every series names its heap.
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total{heap=\"" + name_ + "\"} 7\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_other_jobs_total{heap=\"" + other_name + "\"} 5\n"));
  EXPECT_THAT(om, HasSubstr(HeapUp(1)));

  RemoveHeap();
  om = serve.ScrapeAndParse();
  EXPECT_THAT(om, Not(HasSubstr("cli_requests")));
  EXPECT_THAT(om, HasSubstr(HeapUp(0)));
  EXPECT_THAT(om, HasSubstr("\nshmetrics_heap_up{heap=\"" + other_name + "\"} 1\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_other_jobs_total{heap=\"" + other_name + "\"} 5\n"));
  // The self metrics now come from the heap still served, once.
  EXPECT_EQ(om.find("# TYPE shmetrics_heap_used_bytes gauge"),
            om.rfind("# TYPE shmetrics_heap_used_bytes gauge"));
  EXPECT_THAT(om, HasSubstr("\nshmetrics_heap_used_bytes{heap=\"" + other_name + "\"} "));
  EXPECT_THAT(om, Not(HasSubstr("shmetrics_heap_used_bytes{heap=\"" + name_ + "\"}")));

  Heap::Remove(other_name);
  om = serve.ScrapeAndParse();
  EXPECT_THAT(om, Not(HasSubstr("cli_other_jobs")));
  EXPECT_THAT(om, Not(HasSubstr("shmetrics_heap_used_bytes")));
  EXPECT_THAT(om, Not(HasSubstr("process_")));
  EXPECT_THAT(om, HasSubstr("\nshmetrics_heap_up{heap=\"" + other_name + "\"} 0\n"));
  EXPECT_EQ(serve.Stop(), 0);
}

// Two heaps of one service (or two services) holding the same family: one family in the
// scrape, each series labelled with its heap, so a Prometheus keeps both values and a sum over
// the heaps is right. Self and process_* series appear for every heap, each with its label.
TEST_F(CliTest, ServeMergesAFamilyThatSeveralHeapsHold) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  CreateHeapWithCounter(7);
  registry_->AddHistogram("cli_latency", "Latency", {}, {.buckets = {1, 2}}).Labels().Observe(1.5);
  const std::string other_name = UniqueHeapName("cli-other");
  Heap other = Heap::Create(other_name);
  Registry other_registry(other);
  // The same definitions (help text aside), registered by another process.
  const pid_t child = ForkChild([&] {
    Registry r(Heap::Open(other_name));
    r.AddCounter("cli_requests", "Requests (other help)").Labels().Inc(5);
    r.AddHistogram("cli_latency", "Latency", {}, {.buckets = {1, 2}}).Labels().Observe(0.5);
    return 0;
  });
  ASSERT_EQ(WaitChild(child), 0);
  ServeProcess serve({"--heap", name_, "--heap", other_name});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  const std::string om = serve.ScrapeAndParse();
  const std::string a = "{heap=\"" + name_ + "\"}";
  const std::string b = "{heap=\"" + other_name + "\"}";
  EXPECT_EQ(om.find("# TYPE cli_requests counter"), om.rfind("# TYPE cli_requests counter"));
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total" + a + " 7\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total" + b + " 5\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_latency_count" + a + " 1\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_latency_count" + b + " 1\n"));
  EXPECT_THAT(om, HasSubstr("\ncli_latency_bucket{heap=\"" + other_name + "\",le=\"1.0\"} 1\n"));
  EXPECT_THAT(om, HasSubstr("\nshmetrics_heap_used_bytes" + a + " "));
  EXPECT_THAT(om, HasSubstr("\nshmetrics_heap_used_bytes" + b + " "));
  EXPECT_THAT(
      om, HasSubstr("process_start_time_seconds{worker_id=\"master\",heap=\"" + name_ + "\"} "));
  EXPECT_THAT(om, HasSubstr("process_start_time_seconds{worker_id=\"master\",heap=\"" + other_name +
                            "\"} "));
  EXPECT_EQ(serve.Stop(), 0);

  // The label's name is the user's to choose.
  ServeProcess named({"--heap", name_, "--heap", other_name, "--heap-label", "service"});
  ASSERT_GT(named.port(), 0) << named.Stderr();
  EXPECT_THAT(named.ScrapeAndParse(),
              HasSubstr("\ncli_requests_total{service=\"" + name_ + "\"} 7\n"));
  EXPECT_EQ(named.Stop(), 0);
  Heap::Remove(other_name);
}

// Heaps that define one family differently cannot be served as one: a clear error at start,
// and, when a heap changes later, a logged error and that family left out of a scrape that
// stays valid.
TEST_F(CliTest, ServeRefusesOrLeavesOutAFamilyTheHeapsDefineDifferently) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  CreateHeapWithCounter(7);
  const std::string other_name = UniqueHeapName("cli-other");
  {
    Heap other = Heap::Create(other_name);
    Registry(other).AddGauge("cli_requests", "Not a counter here").Labels().Set(1);
  }
  Result r = RunTool({"serve", "--heap", name_, "--heap", other_name, "--listen", "127.0.0.1:0"});
  ExpectOneLineError(r, 1, "cli_requests");
  EXPECT_THAT(r.err, HasSubstr("counter"));
  EXPECT_THAT(r.err, HasSubstr("gauge"));
  EXPECT_THAT(r.err, HasSubstr(other_name));

  // Agreeing at start; then the other service restarts with another definition.
  Heap::Remove(other_name);
  {
    Heap other = Heap::Create(other_name);
    Registry o(other);
    o.AddCounter("cli_requests", "Requests").Labels().Inc(5);
    o.AddCounter("cli_other_jobs", "Jobs").Labels().Inc(2);
  }
  ServeProcess serve({"--heap", name_, "--heap", other_name});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  EXPECT_THAT(serve.ScrapeAndParse(),
              HasSubstr("\ncli_requests_total{heap=\"" + other_name + "\"} 5\n"));
  Heap::Remove(other_name);
  Heap recreated = Heap::Create(other_name);
  Registry o(recreated);
  o.AddGauge("cli_requests", "Not a counter here").Labels().Set(1);
  o.AddCounter("cli_other_jobs", "Jobs").Labels().Inc(3);
  const std::string om = serve.ScrapeAndParse();
  EXPECT_THAT(om, Not(HasSubstr("cli_requests")));
  EXPECT_THAT(om, HasSubstr("\ncli_other_jobs_total{heap=\"" + other_name + "\"} 3\n"));
  (void)serve.ScrapeAndParse();  // logged once, not at every scrape
  EXPECT_EQ(serve.Stop(), 0);
  const std::string err = serve.Stderr();
  const std::string logged = "family \"cli_requests\" is a counter";
  EXPECT_THAT(err, HasSubstr(logged));
  EXPECT_EQ(err.find(logged), err.rfind(logged)) << err;

  // A family with a label of the heap label's name would collide with it: an error too.
  Registry(*heap_).AddCounter("cli_by_heap", "Has a heap label", {"heap"}).Labels("x").Inc();
  r = RunTool({"serve", "--heap", name_, "--heap", other_name, "--listen", "127.0.0.1:0",
               "--heap-label", "heap"});
  ExpectOneLineError(r, 1, "cli_by_heap");
  Heap::Remove(other_name);
}

// serve started before the service: it says so, serves the heap as down, and serves it once it
// exists. --no-wait keeps the old behaviour, an immediate error.
TEST_F(CliTest, ServeStartedBeforeTheHeapWaitsForIt) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  {
    ServeProcess no_wait({"--heap", name_, "--no-wait"});
    EXPECT_EQ(no_wait.port(), 0);
    EXPECT_EQ(no_wait.Wait(), 1);
    EXPECT_THAT(no_wait.Stderr(), HasSubstr("does not exist"));
    EXPECT_THAT(no_wait.Stderr(), StartsWith("shmetrics: "));
  }
  ServeProcess serve({"--heap", name_});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  EXPECT_THAT(serve.Stderr(), HasSubstr(name_ + " does not exist yet"));
  std::string om = serve.ScrapeAndParse();
  EXPECT_THAT(om, HasSubstr(HeapUp(0)));
  EXPECT_THAT(om, Not(HasSubstr("cli_requests")));

  CreateHeapWithCounter();
  om = serve.ScrapeAndParse();
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total 7\n"));
  EXPECT_THAT(om, HasSubstr(HeapUp(1)));
  EXPECT_EQ(serve.Stop(), 0);
  // A heap that exists but cannot be opened is still an error at start, not waited for.
  ASSERT_EQ(chmod(HeapFile().c_str(), 0606), 0);
  ServeProcess refused({"--heap", name_});
  EXPECT_EQ(refused.Wait(), 1);
  EXPECT_THAT(refused.Stderr(), HasSubstr("group or others may write"));
}

// A heap recreated in a state serve must not open (here: writable by others) is reported once
// on stderr and served as down, never as the old heap, and served again once it is fixed.
TEST_F(CliTest, ServeReportsARecreatedHeapItCannotOpen) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl not installed";
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  CreateHeapWithCounter(7);
  ServeProcess serve({"--heap", name_});
  ASSERT_GT(serve.port(), 0) << serve.Stderr();
  EXPECT_THAT(serve.ScrapeAndParse(), HasSubstr("\ncli_requests_total 7\n"));
  RemoveHeap();
  CreateHeapWithCounter(8);
  ASSERT_EQ(chmod(HeapFile().c_str(), 0666), 0);
  std::string om = serve.ScrapeAndParse();
  EXPECT_THAT(om, Not(HasSubstr("cli_requests")));
  EXPECT_THAT(om, HasSubstr(HeapUp(0)));
  const std::string err = serve.Stderr();
  EXPECT_THAT(err, HasSubstr(name_ + " is not served: "));
  EXPECT_EQ(err.find("is not served"), err.rfind("is not served")) << "logged once: " << err;
  ASSERT_EQ(chmod(HeapFile().c_str(), 0600), 0);
  om = serve.ScrapeAndParse();
  EXPECT_THAT(om, HasSubstr("\ncli_requests_total 8\n"));
  EXPECT_THAT(serve.Stderr(), HasSubstr(name_ + " is served again"));
  EXPECT_EQ(serve.Stop(), 0);
}

}  // namespace
}  // namespace shmetrics
