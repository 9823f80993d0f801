// The embedded HTTP endpoint, over real loopback sockets, with curl as the client.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shmetrics/error.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::Shell;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;
using ::testing::Not;

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

}  // namespace
}  // namespace shmetrics
