// The shmetrics command-line tool, run as the real built binary against heaps made here.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/definition.h"
#include "registry/heap_records.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::AllOf;
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
  // A heap with one counter, cli_requests_total, at 7.
  void CreateHeapWithCounter() {
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    registry_->AddCounter("cli_requests", "Requests").Labels().Inc(7);
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

  const shm::Segment& seg = heap_->segment();
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
  shm::Segment& seg = heap_->segment();
  {
    std::scoped_lock lock(seg.lock());
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

}  // namespace
}  // namespace shmetrics
