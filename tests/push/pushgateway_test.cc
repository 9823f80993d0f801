#include "push/pushgateway.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/tls_helpers.h"
#include "push/http_client.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/push.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics::push {
namespace {

using ::shmetrics::PushToGateway;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// --- Group paths ---

TEST(GroupPathTest, EncodesValuesAsThePushgatewayExpects) {
  auto p = GroupPath("batch", {{"instance", "db1"}, {"path", "/var/lib"}, {"empty", ""}});
  ASSERT_TRUE(p.ok()) << p.status();
  // base64url("/var/lib") = "L3Zhci9saWI"
  EXPECT_EQ(*p, "/metrics/job/batch/instance/db1/path@base64/L3Zhci9saWI/empty@base64/=");
  p = GroupPath("a b%?", {{"x", "é"}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "/metrics/job/a%20b%25%3F/x/%C3%A9");
  p = GroupPath("a/b", {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "/metrics/job@base64/YS9i");
}

TEST(GroupPathTest, RefusesWhatCannotNameAGroup) {
  EXPECT_FALSE(GroupPath("", {}).ok());
  for (const char* name : {"", "job", "__name__", "1x", "a-b"}) {
    EXPECT_FALSE(GroupPath("j", {{name, "v"}}).ok()) << name;
  }
  EXPECT_FALSE(GroupPath("j", {{"a", "1"}, {"a", "2"}}).ok());
}

// --- A real Pushgateway ---

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts `binary` with `args` and --web.listen-address=127.0.0.1:0, its log in `log`, and
// reads the address it got from the log (Prometheus and the Pushgateway both print
// `msg="Listening on" address=127.0.0.1:PORT`). Returns the pid, or -1 with *address empty.
pid_t StartListening(const std::string& binary, std::vector<std::string> args,
                     const std::string& log, std::string* address) {
  args.insert(args.begin(), binary);
  args.push_back("--web.listen-address=127.0.0.1:0");
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log.c_str(), "w", stderr)) _exit(126);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  const std::regex listening(R"re(msg="Listening on" address=(127\.0\.0\.1:[0-9]+))re");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::smatch m;
  address->clear();
  while (pid > 0 && std::chrono::steady_clock::now() < deadline) {
    const std::string text = ReadFile(log);
    if (std::regex_search(text, m, listening)) {
      *address = m[1].str();
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  return pid;
}

// Debian's prometheus-pushgateway on 127.0.0.1:0, keeping nothing on disk.
class PushgatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/prometheus-pushgateway", X_OK) != 0) {
      GTEST_SKIP() << "prometheus-pushgateway not installed";
    }
    dir_ = ::testing::TempDir() + "/pushgateway-" + std::to_string(getpid()) + "-" +
           std::to_string(++counter_);
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    std::string address;
    // Memory only: Debian's default persists to a file every test would share.
    pid_ = StartListening("/usr/bin/prometheus-pushgateway", {"--persistence.file="},
                          dir_ + "/pushgateway.log", &address);
    ASSERT_FALSE(address.empty()) << ReadFile(dir_ + "/pushgateway.log");
    url_ = "http://" + address;
    auto client = HttpClient::Create({.timeout = 20s});
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      ::shmetrics::testing::WaitChild(pid_, 30s);
    }
    for (const std::string& name : heaps_) {
      try {
        Heap::Remove(name);
      } catch (const Error&) {
      }
    }
    if (!dir_.empty()) (void)system(("rm -rf " + dir_).c_str());
  }

  Heap NewHeap(const char* tag) {
    heaps_.push_back(UniqueHeapName(tag));
    return Heap::Create(heaps_.back());
  }

  // What the Pushgateway serves on /metrics.
  std::string Scrape() {
    auto r = client_->Send({.method = "GET", .url = url_ + "/metrics"});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->body : "";
  }

  static inline int counter_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
  std::string url_;
  std::unique_ptr<HttpClient> client_;
  std::vector<std::string> heaps_;
};

// The lines of `text` for the sample `name`, e.g. `name{a="b",...} 3`.
std::vector<std::string> Samples(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) out.push_back(line);
  }
  return out;
}

TEST_F(PushgatewayTest, PutReplacesTheGroupPostAddsToItDeleteRemovesIt) {
  Heap first = NewHeap("pgw-a");
  Registry first_registry(first);
  first_registry.AddCounter("pgw_jobs", "Jobs done", {"kind"}).Labels("mail").Inc(3);
  first_registry.AddGauge("pgw_last_size", "Bytes").Labels().Set(42.5);
  Heap second = NewHeap("pgw-b");
  Registry second_registry(second);
  second_registry.AddCounter("pgw_retries", "Retries").Labels().Inc(7);

  const PushGatewayOptions put{.job = "nightly",
                               .grouping = {{"instance", "db1"}, {"path", "/var/lib"}}};
  ASSERT_NO_THROW(PushToGateway(url_, first, put));
  std::string text = Scrape();
  auto jobs = Samples(text, "pgw_jobs_total");
  ASSERT_EQ(jobs.size(), 1u) << text;
  EXPECT_THAT(jobs[0], HasSubstr("instance=\"db1\""));
  EXPECT_THAT(jobs[0], HasSubstr("job=\"nightly\""));
  EXPECT_THAT(jobs[0], HasSubstr("kind=\"mail\""));
  EXPECT_THAT(jobs[0], HasSubstr("path=\"/var/lib\""));
  EXPECT_THAT(jobs[0], ::testing::EndsWith("} 3"));
  auto size = Samples(text, "pgw_last_size");
  ASSERT_EQ(size.size(), 1u) << text;
  EXPECT_THAT(size[0], ::testing::EndsWith("} 42.5"));
  EXPECT_THAT(text, HasSubstr("# HELP pgw_jobs_total Jobs done"));

  // POST adds the second heap's families and keeps the first's.
  PushGatewayOptions post = put;
  post.method = PushMethod::kPost;
  ASSERT_NO_THROW(PushToGateway(url_, second, post));
  text = Scrape();
  EXPECT_EQ(Samples(text, "pgw_jobs_total").size(), 1u) << text;
  auto retries = Samples(text, "pgw_retries_total");
  ASSERT_EQ(retries.size(), 1u) << text;
  EXPECT_THAT(retries[0], ::testing::EndsWith("} 7"));

  // An update is there after the next push; PUT of the second heap alone drops the first's.
  second_registry.AddCounter("pgw_retries", "Retries").Labels().Inc(1);
  ASSERT_NO_THROW(PushToGateway(url_, second, put));
  text = Scrape();
  EXPECT_TRUE(Samples(text, "pgw_jobs_total").empty()) << text;
  retries = Samples(text, "pgw_retries_total");
  ASSERT_EQ(retries.size(), 1u) << text;
  EXPECT_THAT(retries[0], ::testing::EndsWith("} 8"));

  // Another group is another group; DELETE removes one group only.
  ASSERT_NO_THROW(PushToGateway(url_, first, {.job = "nightly", .grouping = {{"instance", ""}}}));
  PushGatewayOptions del = put;
  del.method = PushMethod::kDelete;
  ASSERT_NO_THROW(PushToGateway(url_, std::vector<Heap>{}, del));
  text = Scrape();
  EXPECT_TRUE(Samples(text, "pgw_retries_total").empty()) << text;
  jobs = Samples(text, "pgw_jobs_total");
  ASSERT_EQ(jobs.size(), 1u) << text;
  EXPECT_THAT(jobs[0], HasSubstr("job=\"nightly\""));
  EXPECT_THAT(jobs[0], Not(HasSubstr("path=")));
}

TEST_F(PushgatewayTest, SeveralHeapsArePushedAsAScrapeMergesThem) {
  Heap a = NewHeap("pgw-m1");
  Heap b = NewHeap("pgw-m2");
  Registry ra(a), rb(b);
  ra.AddCounter("pgw_merged", "Merged").Labels().Inc(1);
  rb.AddCounter("pgw_merged", "Merged").Labels().Inc(2);
  ASSERT_NO_THROW(PushToGateway(url_, {a, b}, {.job = "merge"}));
  auto merged = Samples(Scrape(), "pgw_merged_total");
  ASSERT_EQ(merged.size(), 2u);
  std::string both = merged[0] + "\n" + merged[1];
  EXPECT_THAT(both, HasSubstr("heap=\"" + a.name() + "\""));
  EXPECT_THAT(both, HasSubstr("heap=\"" + b.name() + "\""));
}

TEST_F(PushgatewayTest, ARefusedPushThrowsWithTheAnswer) {
  Heap counters = NewHeap("pgw-c");
  Registry(counters).AddCounter("pgw_kind", "Kind").Labels().Inc(1);
  Heap gauges = NewHeap("pgw-g");
  Registry(gauges).AddGauge("pgw_kind_total", "Kind").Labels().Set(1);
  ASSERT_NO_THROW(PushToGateway(url_, counters, {.job = "counters"}));
  // The Pushgateway refuses a family whose type differs from another group's: 400.
  try {
    PushToGateway(url_, gauges, {.job = "gauges"});
    ADD_FAILURE() << "a clashing push succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("HTTP/1.1 400 Bad Request: pushed metrics are invalid"));
  }
  // A path the Pushgateway does not serve: 404, a FailedPrecondition.
  try {
    PushToGateway(url_ + "/nowhere/", counters, {.job = "counters"});
    ADD_FAILURE() << "a push to a wrong path succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("/nowhere/metrics/job/counters with HTTP/1.1 404 Not Found"));
  }
}

std::string Tool() { return std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics"; }

// `shmetrics push --pushgateway` pushes, a real Prometheus scraping the Pushgateway sees the
// values, and the group can be deleted from the command line.
TEST_F(PushgatewayTest, TheToolPushesAndPrometheusScrapesThePushgateway) {
  if (access("/usr/bin/prometheus", X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  Heap heap = NewHeap("pgw-cli");
  Registry registry(heap);
  auto& rows_family = registry.AddCounter("pgw_cli_rows", "Rows", {"table"});
  rows_family.Labels("users").Inc(1234);
  const pid_t worker = ::shmetrics::testing::ForkChild([&] {
    heap.AttachWorker();
    rows_family.Labels("users").Inc(1);
    return 0;
  });
  ASSERT_EQ(::shmetrics::testing::WaitChild(worker), 0);

  int rc = -1;
  std::string out = ::shmetrics::testing::Shell(
      Tool() + " push --heap " + heap.name() + " --pushgateway " + url_ +
          " --job cli --grouping instance=host1 --grouping dir=/srv/a 2>&1",
      &rc);
  ASSERT_EQ(rc, 0) << out;
  auto rows = Samples(Scrape(), "pgw_cli_rows_total");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0], HasSubstr("dir=\"/srv/a\""));
  EXPECT_THAT(rows[0], ::testing::EndsWith("} 1235"));

  std::ofstream(dir_ + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n"
      << "    static_configs:\n      - targets: ['" << url_.substr(7) << "']\n";
  std::string prometheus;
  const pid_t prom = StartListening(
      "/usr/bin/prometheus",
      {"--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/data"},
      dir_ + "/prometheus.log", &prometheus);
  std::string query;
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (!prometheus.empty() && !seen && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
    auto r =
        client_->Send({.method = "GET",
                       .url = "http://" + prometheus + "/api/v1/query?query=pgw_cli_rows_total"});
    query = r.ok() ? r->body : r.status().ToString();
    seen = query.find("\"1235\"") != std::string::npos;
  }
  if (prom > 0) {
    kill(prom, SIGTERM);
    ::shmetrics::testing::WaitChild(prom, 30s);
  }
  ASSERT_FALSE(prometheus.empty()) << ReadFile(dir_ + "/prometheus.log");
  EXPECT_TRUE(seen) << query;
  EXPECT_THAT(query, HasSubstr("\"job\":\"cli\""));
  EXPECT_THAT(query, HasSubstr("\"instance\":\"host1\""));
  EXPECT_THAT(query, HasSubstr("\"table\":\"users\""));

  out = ::shmetrics::testing::Shell(Tool() + " push --pushgateway " + url_ +
                                        " --job cli --grouping instance=host1 --grouping "
                                        "dir=/srv/a --method delete 2>&1",
                                    &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(Samples(Scrape(), "pgw_cli_rows_total").empty());
}

// examples/batch_job: forked workers count rows, the master pushes at the end.
TEST_F(PushgatewayTest, TheBatchJobExamplePushesAtItsEnd) {
  int rc = -1;
  const std::string out = ::shmetrics::testing::Shell(
      std::string(SHMETRICS_BINARY_DIR) + "/examples/batch_job " + url_ +
          " --job nightly --instance db1 --workers 3 --rows 300 2>&1",
      &rc);
  ASSERT_EQ(rc, 0) << out;
  const std::string text = Scrape();
  auto rows = Samples(text, "batch_rows_processed_total");
  ASSERT_EQ(rows.size(), 2u) << text;
  const std::string both = rows[0] + "\n" + rows[1];
  EXPECT_THAT(both, HasSubstr("table=\"orders\"} 100"));
  EXPECT_THAT(both, HasSubstr("table=\"users\"} 200"));
  EXPECT_THAT(both, HasSubstr("instance=\"db1\""));
  EXPECT_THAT(both, HasSubstr("job=\"nightly\""));
  auto count = Samples(text, "batch_row_duration_seconds_count");
  ASSERT_EQ(count.size(), 1u) << text;
  EXPECT_THAT(count[0], ::testing::EndsWith("} 300"));
  EXPECT_EQ(Samples(text, "batch_last_success_seconds").size(), 1u) << text;
}

TEST_F(PushgatewayTest, TheToolReportsARefusalAndBadFlags) {
  int rc = -1;
  std::string out = ::shmetrics::testing::Shell(
      Tool() + " push --pushgateway " + url_ + "/nowhere --job x --method delete 2>&1", &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("404 Not Found"));
  out = ::shmetrics::testing::Shell(
      Tool() + " push --pushgateway " + url_ + " --method delete 2>&1", &rc);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("--job"));
  out = ::shmetrics::testing::Shell(
      Tool() + " push --pushgateway " + url_ + " --job x --method patch 2>&1", &rc);
  EXPECT_EQ(rc, 2) << out;
  out = ::shmetrics::testing::Shell(
      Tool() + " push --pushgateway " + url_ + " --job x --grouping job=y --method delete 2>&1",
      &rc);
  EXPECT_EQ(rc, 2) << out;
}

// A Pushgateway behind TLS and basic auth (its --web.config.file), reached by the C++ API and
// by the tool with the certificate's CA and the credentials; refused without them.
TEST(SecurePushgatewayTest, TlsAndBasicAuthFromTheApiAndTheTool) {
  if (access("/usr/bin/prometheus-pushgateway", X_OK) != 0) {
    GTEST_SKIP() << "prometheus-pushgateway not installed";
  }
  http::testing::TestCertificate cert;
  ASSERT_TRUE(cert.ok()) << cert.error();
  const std::string hash = http::testing::HtpasswdBcrypt("pusher", "s3cret");
  ASSERT_FALSE(hash.empty());
  std::ofstream(cert.dir() + "/web.yml")
      << "tls_server_config:\n  cert_file: " << cert.cert_file()
      << "\n  key_file: " << cert.key_file() << "\nbasic_auth_users:\n  pusher: " << hash << "\n";
  std::ofstream(cert.dir() + "/password") << "s3cret\n";
  std::string address;
  const pid_t pid =
      StartListening("/usr/bin/prometheus-pushgateway",
                     {"--persistence.file=", "--web.config.file=" + cert.dir() + "/web.yml"},
                     cert.dir() + "/pushgateway.log", &address);
  const std::string url = "https://" + address;
  const std::string name = UniqueHeapName("pgw-tls");
  std::string api_error, tool_out, scraped, anonymous_error;
  int tool_rc = -1;
  if (!address.empty()) {
    Heap heap = Heap::Create(name);
    Registry(heap).AddCounter("pgw_secure", "Secure").Labels().Inc(5);
    try {
      PushToGateway(url, heap,
                    {.job = "api",
                     .ca_file = cert.cert_file(),
                     .basic_auth_user = "pusher",
                     .basic_auth_password = "s3cret"});
    } catch (const Error& e) {
      api_error = e.what();
    }
    try {
      PushToGateway(url, heap, {.job = "anonymous", .ca_file = cert.cert_file()});
    } catch (const Error& e) {
      anonymous_error = std::string(ErrorCodeName(e.code())) + ": " + e.what();
    }
    tool_out = ::shmetrics::testing::Shell(
        Tool() + " push --heap " + name + " --pushgateway " + url + " --job tool --tls-ca-file " +
            cert.cert_file() + " --basic-auth-user pusher --basic-auth-password-file " +
            cert.dir() + "/password 2>&1",
        &tool_rc);
    auto client = HttpClient::Create({.tls = {.ca_file = cert.cert_file()},
                                      .basic_auth_user = "pusher",
                                      .basic_auth_password = "s3cret"});
    if (client.ok()) {
      auto r = (*client)->Send({.method = "GET", .url = url + "/metrics"});
      scraped = r.ok() ? r->body : r.status().ToString();
    }
    Heap::Remove(name);
  }
  if (pid > 0) {
    kill(pid, SIGTERM);
    ::shmetrics::testing::WaitChild(pid, 30s);
  }
  ASSERT_FALSE(address.empty()) << ReadFile(cert.dir() + "/pushgateway.log");
  EXPECT_EQ(api_error, "");
  EXPECT_EQ(tool_rc, 0) << tool_out;
  EXPECT_THAT(anonymous_error, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(anonymous_error, HasSubstr("401"));
  auto secure = Samples(scraped, "pgw_secure_total");
  ASSERT_EQ(secure.size(), 2u) << scraped;
  EXPECT_THAT(secure[0] + secure[1], HasSubstr("job=\"api\""));
  EXPECT_THAT(secure[0] + secure[1], HasSubstr("job=\"tool\""));
}

TEST(PushToGatewayTest, OptionsAreCheckedBeforeAnythingIsSent) {
  auto code = [](const std::string& url, const PushGatewayOptions& o) {
    try {
      PushToGateway(url, std::vector<Heap>{}, o);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kOk;
  };
  EXPECT_EQ(code("http://127.0.0.1:1", {.job = ""}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code("http://127.0.0.1:1", {.job = "j", .grouping = {{"job", "x"}}}),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code("ftp://127.0.0.1:1", {.job = "j"}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code("http://127.0.0.1:1/?q=1", {.job = "j"}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code("http://127.0.0.1:1", {.job = "j", .basic_auth_user = "u", .bearer_token = "t"}),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace shmetrics::push
