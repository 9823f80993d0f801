// HTTPS and basic authentication end to end: the embedded HttpExposer and `shmetrics serve
// --web-config-file`, scraped by curl and by a real Prometheus server over TLS with basic auth.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/client_helpers.h"
#include "http/tls_helpers.h"
#include "load/serve_helpers.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::http::testing::BasicCredentials;
using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::shmetrics::http::testing::ShellQuote;
using ::shmetrics::http::testing::TestCertificate;
using ::shmetrics::http::testing::TestClient;
using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::ServeProcess;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;

class SecureEndpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cert_ = new TestCertificate();
    hash_ = new std::string(HtpasswdBcrypt("prometheus", "right pw", 10));
  }
  static void TearDownTestSuite() {
    delete cert_;
    delete hash_;
  }

  void SetUp() override {
    ASSERT_TRUE(cert_->ok()) << cert_->error();
    ASSERT_FALSE(hash_->empty());
    name_ = UniqueHeapName("secure");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    registry_ = std::make_unique<Registry>(*heap_);
    registry_->AddCounter("secret_jobs", "Jobs", {"kind"}).Labels("mail").Inc(1234);
    web_yml_ = cert_->dir() + "/web-" + std::to_string(getpid()) + ".yml";
    // Relative paths, as exporter-toolkit resolves them: against the file's directory.
    std::ofstream(web_yml_) << "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
                            << "basic_auth_users:\n  prometheus: " << *hash_ << "\n";
  }
  void TearDown() override {
    registry_.reset();
    heap_.reset();
    if (!name_.empty()) Heap::Remove(name_);
  }

  // curl with the test CA; "%{http_code}" and headers go to stdout with the body (-i).
  std::string Curl(uint16_t port, const std::string& path, const std::string& args,
                   int* rc = nullptr) const {
    return Shell("curl -sS -i --max-time 20 --cacert " + ShellQuote(cert_->cert_file()) + " " +
                     args + " " + ShellQuote("https://127.0.0.1:" + std::to_string(port) + path) +
                     " 2>&1",
                 rc);
  }

  // Wrong, missing and malformed credentials on every path get exactly the 401.
  void ExpectOnlyUnauthorized(uint16_t port) {
    for (const std::string path : {"/metrics", "/", "/-/healthy", "/nope"}) {
      for (const std::string& args :
           {std::string(""), std::string("-u prometheus:wrong"),
            std::string("-u nobody:right\\ pw"), std::string("-u PROMETHEUS:right\\ pw"),
            std::string("-H 'Authorization: Bearer cHJvbWV0aGV1czpyaWdodCBwdw=='")}) {
        const std::string out = Curl(port, path, args);
        EXPECT_THAT(out, ::testing::StartsWith("HTTP/1.1 401 Unauthorized\r\n")) << path << args;
        EXPECT_THAT(out, HasSubstr("\r\nWWW-Authenticate: Basic\r\n")) << path << args;
        EXPECT_THAT(out, ::testing::EndsWith("\r\n\r\nUnauthorized\n")) << path << args;
        EXPECT_THAT(out, Not(HasSubstr("secret_jobs"))) << path << args;
        EXPECT_THAT(out, Not(HasSubstr("OK"))) << path << args;
      }
    }
  }

  static TestCertificate* cert_;
  static std::string* hash_;
  std::string name_, web_yml_;
  std::unique_ptr<Heap> heap_;
  std::unique_ptr<Registry> registry_;
};

TestCertificate* SecureEndpointTest::cert_ = nullptr;
std::string* SecureEndpointTest::hash_ = nullptr;

TEST_F(SecureEndpointTest, ExposerServesOnlyAuthenticatedHttpsClients) {
  HttpExposer exposer(*heap_, {.port = 0, .web = LoadWebConfigFile(web_yml_)});
  int rc = -1;
  const std::string ok = Curl(exposer.port(), "/metrics", "-u 'prometheus:right pw'", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_THAT(ok, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("secret_jobs_total{kind=\"mail\"} 1234\n"));
  EXPECT_THAT(Curl(exposer.port(), "/-/healthy", "-u 'prometheus:right pw'"),
              HasSubstr("\r\nOK\n"));
  ExpectOnlyUnauthorized(exposer.port());
  // Plain HTTP is not served at all, and the endpoint stays healthy.
  TestClient plain(exposer.port());
  plain.Send("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
  auto rest = plain.ReadUntilClosed(std::chrono::seconds(20));
  ASSERT_TRUE(rest.has_value());
  EXPECT_THAT(*rest, Not(HasSubstr("secret_jobs")));
  EXPECT_THAT(Curl(exposer.port(), "/metrics", "-u 'prometheus:right pw'"),
              HasSubstr("secret_jobs_total"));
}

TEST_F(SecureEndpointTest, BasicAuthAloneWorksOverPlainHttp) {
  HttpExposer exposer(*heap_, {.port = 0, .web = {.basic_auth_users = {{"prometheus", *hash_}}}});
  const std::string base = "http://127.0.0.1:" + std::to_string(exposer.port());
  EXPECT_THAT(Shell("curl -sS -u 'prometheus:right pw' " + base + "/metrics"),
              HasSubstr("secret_jobs_total"));
  const std::string denied = Shell("curl -sS -i -u 'prometheus:wrong' " + base + "/metrics");
  EXPECT_THAT(denied, ::testing::StartsWith("HTTP/1.1 401 Unauthorized\r\n"));
  EXPECT_THAT(denied, Not(HasSubstr("secret_jobs")));
}

TEST_F(SecureEndpointTest, BadWebOptionsAreClearErrors) {
  try {
    HttpExposer exposer(*heap_, {.port = 0, .web = {.basic_auth_users = {{"bob", "plaintext"}}}});
    ADD_FAILURE() << "a plain-text password was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("\"bob\""));
  }
  try {
    HttpExposer exposer(*heap_, {.port = 0,
                                 .web = {.tls_cert_file = cert_->dir() + "/missing.pem",
                                         .tls_key_file = cert_->key_file()}});
    ADD_FAILURE() << "a missing certificate was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("missing.pem"));
  }
  try {
    (void)LoadWebConfigFile(cert_->dir() + "/absent.yml");
    ADD_FAILURE() << "a missing file was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(SecureEndpointTest, ServeWithWebConfigFileRequiresTlsAndCredentials) {
  ServeProcess server({"--heap", name_, "--web-config-file", web_yml_});
  ASSERT_TRUE(server.ok()) << server.output();
  int rc = -1;
  EXPECT_THAT(Curl(server.port(), "/metrics", "-u 'prometheus:right pw'", &rc),
              HasSubstr("secret_jobs_total{kind=\"mail\"} 1234\n"));
  EXPECT_EQ(rc, 0);
  ExpectOnlyUnauthorized(server.port());
  EXPECT_EQ(server.Stop(), 0);
}

TEST_F(SecureEndpointTest, ServeRejectsABadWebConfigFileWithOneLine) {
  const std::string bad = cert_->dir() + "/bad.yml";
  std::ofstream(bad) << "tls_server_config:\n  cert_file: cert.pem\n  client_auth_type: x\n";
  ServeProcess server({"--heap", name_, "--web-config-file", bad});
  EXPECT_FALSE(server.ok());
  EXPECT_THAT(server.output(), ::testing::StartsWith("shmetrics: "));
  EXPECT_THAT(server.output(), HasSubstr("bad.yml"));
  EXPECT_THAT(server.output(), HasSubstr("client_auth_type"));
  EXPECT_EQ(server.Stop(), 1);
}

// A real Prometheus server scrapes the endpoint over HTTPS, verifying the certificate against
// the test CA and sending basic credentials.
TEST_F(SecureEndpointTest, PrometheusScrapesOverTlsWithBasicAuth) {
  if (access("/usr/bin/prometheus", X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  HttpExposer exposer(*heap_, {.port = 0, .web = LoadWebConfigFile(web_yml_)});
  const std::string dir = cert_->dir() + "/prom-" + std::to_string(getpid());
  ASSERT_EQ(system(("mkdir -p " + ShellQuote(dir)).c_str()), 0);
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n"
      << "  - job_name: shmetrics\n    scheme: https\n"
      << "    tls_config:\n      ca_file: " << cert_->cert_file() << "\n"
      << "    basic_auth:\n      username: prometheus\n      password: right pw\n"
      << "    static_configs:\n      - targets: ['127.0.0.1:" << exposer.port() << "']\n"
      << "  - job_name: wrong_password\n    scheme: https\n"
      << "    tls_config:\n      ca_file: " << cert_->cert_file() << "\n"
      << "    basic_auth:\n      username: prometheus\n      password: wrong\n"
      << "    static_configs:\n      - targets: ['127.0.0.1:" << exposer.port() << "']\n";
  const std::string port = Shell(
      "/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
      "print(s.getsockname()[1])'");
  const std::string web = "127.0.0.1:" + port.substr(0, port.find('\n'));
  const pid_t prom = ForkChild([&] {
    const std::string log = dir + "/prometheus.log";
    if (freopen(log.c_str(), "w", stderr) == nullptr) return 126;
    execl("/usr/bin/prometheus", "prometheus", ("--config.file=" + dir + "/prometheus.yml").c_str(),
          ("--storage.tsdb.path=" + dir + "/data").c_str(), ("--web.listen-address=" + web).c_str(),
          static_cast<char*>(nullptr));
    return 127;
  });
  std::string targets, query;
  bool up = false, value = false, refused = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && !(up && value && refused)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    targets = Shell("curl -s http://" + web + "/api/v1/targets");
    up = targets.find("\"job\":\"shmetrics\"") != std::string::npos &&
         targets.find("\"health\":\"up\"") != std::string::npos;
    refused = targets.find("401 Unauthorized") != std::string::npos;
    query = Shell("curl -s -g 'http://" + web + "/api/v1/query?query=secret_jobs_total'");
    value = query.find("\"1234\"") != std::string::npos;
  }
  kill(prom, SIGTERM);
  WaitChild(prom, std::chrono::seconds(30));
  EXPECT_TRUE(up) << targets << Shell("tail -20 " + ShellQuote(dir + "/prometheus.log"));
  EXPECT_TRUE(value) << query;
  EXPECT_THAT(query, HasSubstr("\"job\":\"shmetrics\""));
  EXPECT_THAT(query, Not(HasSubstr("\"job\":\"wrong_password\"")));
  EXPECT_TRUE(refused) << targets;  // the wrong password's target is down with a 401
}

}  // namespace
}  // namespace shmetrics
