// `shmetrics push --remote-write` with TLS and authentication end to end: a real Prometheus
// receiver behind TLS and basic authentication (its --web.config.file) gets the values, a wrong
// password is refused (401, not retried), an untrusted certificate is refused unless
// --tls-insecure-skip-verify; a receiver requiring a bearer token gets it from
// --bearer-token-file.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/tls_helpers.h"
#include "push/fake_receiver.h"
#include "push/prometheus_server.h"
#include "push/push_process.h"
#include "push/samples.h"
#include "shmetrics/heap.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::shmetrics::http::testing::TestCertificate;
using ::shmetrics::testing::FakeReceiver;
using ::shmetrics::testing::kPrometheus;
using ::shmetrics::testing::Occurrences;
using ::shmetrics::testing::Prometheus;
using ::shmetrics::testing::PushProcess;
using ::shmetrics::testing::SampleKey;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;

class PushSecureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cert_ = new TestCertificate();
    other_ = new TestCertificate();
  }
  static void TearDownTestSuite() {
    delete cert_;
    delete other_;
  }

  void SetUp() override {
    ASSERT_TRUE(cert_->ok()) << cert_->error();
    ASSERT_TRUE(other_->ok()) << other_->error();
    name_ = UniqueHeapName("pushtls");
    heap_ = std::make_unique<Heap>(Heap::Create(name_));
    Registry(*heap_).AddCounter("secure_jobs", "Jobs", {"kind"}).Labels("mail").Inc(1234);
    dir_ = ::testing::TempDir() + "/" + name_;
    Shell("mkdir -p " + dir_);
    std::ofstream(dir_ + "/password") << "right pw\n";
    std::ofstream(dir_ + "/wrong") << "wrong pw";
    std::ofstream(dir_ + "/token") << "s3cret-token\n";
  }
  void TearDown() override {
    heap_.reset();
    Heap::Remove(name_);
    Shell("rm -rf " + dir_);
  }

  // A Prometheus receiving remote writes over TLS (cert_) with basic auth "pusher".
  std::unique_ptr<Prometheus> SecurePrometheus() {
    const std::string hash = HtpasswdBcrypt("pusher", "right pw", 4);
    EXPECT_FALSE(hash.empty());
    return std::make_unique<Prometheus>(dir_ + "/prom",
                                        "tls_server_config:\n  cert_file: " + cert_->cert_file() +
                                            "\n  key_file: " + cert_->key_file() +
                                            "\nbasic_auth_users:\n  pusher: " + hash + "\n",
                                        "pusher", "right pw");
  }

  // Polls (bounded) until the query returns the counter's sample from the pusher with the
  // instance label `instance`.
  static bool Arrived(const Prometheus& prom, double value, const std::string& instance = "") {
    const std::string want =
        SampleKey({{"__name__", "secure_jobs_total"}, {"kind", "mail"}}, value);
    const std::string query = "secure_jobs_total{job=\"secure\"" +
                              (instance.empty() ? "" : ",instance=\"" + instance + "\"") + "}";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (prom.Query(query).count(want) > 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return false;
  }

  // Polls (bounded) until push's stderr holds `text`.
  static bool Logged(const PushProcess& push, const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (push.Stderr().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static TestCertificate* cert_;
  static TestCertificate* other_;
  std::string name_, dir_;
  std::unique_ptr<Heap> heap_;
};

TestCertificate* PushSecureTest::cert_ = nullptr;
TestCertificate* PushSecureTest::other_ = nullptr;

TEST_F(PushSecureTest, PrometheusBehindTlsAndBasicAuthReceivesThePushes) {
  if (access(kPrometheus, X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  auto prom = SecurePrometheus();
  ASSERT_TRUE(prom->up());
  ASSERT_THAT(prom->write_url(), ::testing::StartsWith("https://"));
  PushProcess push({"--heap", name_, "--remote-write", prom->write_url(), "--interval", "200ms",
                    "--job", "secure", "--tls-ca-file", cert_->cert_file(), "--basic-auth-user",
                    "pusher", "--basic-auth-password-file", dir_ + "/password"});
  ASSERT_TRUE(push.started()) << push.Stderr();
  EXPECT_TRUE(Arrived(*prom, 1234)) << push.Stderr();
  // The certificate names localhost too. This pusher's series carry an instance of their own:
  // two writers of one series would race, and Prometheus rejects the older sample as out of
  // order.
  PushProcess named({"--heap", name_, "--remote-write",
                     "https://localhost:" + prom->address().substr(prom->address().rfind(':') + 1) +
                         "/api/v1/write",
                     "--interval", "1h", "--job", "secure", "--instance", "named", "--tls-ca-file",
                     cert_->cert_file(), "--tls-server-name", "localhost", "--basic-auth-user",
                     "pusher", "--basic-auth-password-file", dir_ + "/password"});
  ASSERT_TRUE(named.started()) << named.Stderr();
  EXPECT_TRUE(Arrived(*prom, 1234, "named")) << named.Stderr();
  Registry(*heap_).AddCounter("secure_jobs", "Jobs", {"kind"}).Labels("mail").Inc(1);
  EXPECT_TRUE(Arrived(*prom, 1235)) << push.Stderr();
  EXPECT_EQ(push.Stop(), 0);
  EXPECT_EQ(named.Stop(), 0);
  // Its last push, at stop, carries the new value.
  EXPECT_TRUE(Arrived(*prom, 1235, "named")) << named.Stderr();
  EXPECT_EQ(push.Stderr().find("failed"), std::string::npos) << push.Stderr();
  EXPECT_EQ(named.Stderr().find("failed"), std::string::npos) << named.Stderr();
}

TEST_F(PushSecureTest, AWrongPasswordIsRefusedAndNotRetried) {
  if (access(kPrometheus, X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  auto prom = SecurePrometheus();
  ASSERT_TRUE(prom->up());
  PushProcess push({"--heap", name_, "--remote-write", prom->write_url(), "--interval", "1h",
                    "--job", "secure", "--tls-ca-file", cert_->cert_file(), "--basic-auth-user",
                    "pusher", "--basic-auth-password-file", dir_ + "/wrong"});
  ASSERT_TRUE(push.started()) << push.Stderr();
  ASSERT_TRUE(Logged(push, "not retried: ")) << push.Stderr();
  EXPECT_THAT(push.Stderr(), HasSubstr("401 Unauthorized"));
  EXPECT_EQ(push.Stop(), 0);
  // The push at start and the last one, each one request refused and logged once.
  EXPECT_EQ(Occurrences(push.Stderr(), "not retried: "), 2) << push.Stderr();
  EXPECT_TRUE(prom->Query("secure_jobs_total").empty());
}

TEST_F(PushSecureTest, AnUntrustedCertificateIsRefusedUnlessVerificationIsSkipped) {
  if (access(kPrometheus, X_OK) != 0) GTEST_SKIP() << "prometheus not installed";
  auto prom = SecurePrometheus();
  ASSERT_TRUE(prom->up());
  const std::vector<std::string> args = {"--heap",
                                         name_,
                                         "--remote-write",
                                         prom->write_url(),
                                         "--interval",
                                         "1h",
                                         "--job",
                                         "secure",
                                         "--tls-ca-file",
                                         other_->cert_file(),
                                         "--basic-auth-user",
                                         "pusher",
                                         "--basic-auth-password-file",
                                         dir_ + "/password"};
  {
    // A retryable failure is logged when the push gives up, at the next interval: a short one.
    std::vector<std::string> short_interval = args;
    short_interval[5] = "300ms";
    PushProcess untrusted(short_interval);
    ASSERT_TRUE(untrusted.started()) << untrusted.Stderr();
    EXPECT_TRUE(Logged(untrusted, "certificate")) << untrusted.Stderr();
  }
  EXPECT_TRUE(prom->Query("secure_jobs_total").empty());
  std::vector<std::string> insecure = args;
  insecure.push_back("--tls-insecure-skip-verify");
  PushProcess skipping(insecure);
  ASSERT_TRUE(skipping.started()) << skipping.Stderr();
  EXPECT_TRUE(Arrived(*prom, 1234)) << skipping.Stderr();
}

TEST_F(PushSecureTest, ABearerTokenFromItsFileReachesTheReceiver) {
  FakeReceiver receiver([&](int) { return 204; });
  PushProcess push({"--heap", name_, "--remote-write", receiver.url(), "--interval", "1h", "--job",
                    "secure", "--bearer-token-file", dir_ + "/token"});
  ASSERT_TRUE(push.started()) << push.Stderr();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (receiver.Last("secure_jobs_total", {{"kind", "mail"}}) != 1234 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(receiver.Last("secure_jobs_total", {{"kind", "mail"}}), 1234);
  EXPECT_EQ(receiver.authorization(), "Bearer s3cret-token");
  EXPECT_EQ(push.Stop(), 0);
}

TEST_F(PushSecureTest, ContradictoryCredentialsAreAUsageError) {
  PushProcess push({"--heap", name_, "--remote-write", "https://127.0.0.1:1/api/v1/write",
                    "--basic-auth-user", "pusher", "--basic-auth-password-file", dir_ + "/password",
                    "--bearer-token-file", dir_ + "/token"});
  EXPECT_FALSE(push.started());
  EXPECT_NE(push.Wait(), 0);
  EXPECT_THAT(push.Stderr(), HasSubstr("bearer"));
}

}  // namespace
}  // namespace shmetrics
