// BasicAuth against hashes made by tools independent of the libxcrypt that verifies them:
// Apache's htpasswd (bcrypt) and the openssl command (sha256-crypt, sha512-crypt).
#include "http/basic_auth.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/tls_helpers.h"
#include "util/subprocess.h"

namespace shmetrics::http {
namespace {

using ::shmetrics::http::testing::BasicCredentials;
using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::shmetrics::http::testing::ShellQuote;
using ::shmetrics::testing::Shell;
using ::testing::HasSubstr;

std::string OpensslPasswd(const std::string& kind, const std::string& password) {
  int rc = -1;
  std::string out = Shell("openssl passwd -" + kind + " " + ShellQuote(password), &rc);
  if (rc != 0) return "";
  return out.substr(0, out.find('\n'));
}

std::unique_ptr<BasicAuth> MakeAuth(const std::map<std::string, std::string>& users) {
  auto auth = BasicAuth::Create(users);
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? *std::move(auth) : nullptr;
}

TEST(BasicAuthTest, AcceptsTheRightPasswordForAnHtpasswdBcryptHash) {
  const std::string hash = HtpasswdBcrypt("alice", "s3cret pass");
  ASSERT_THAT(hash, ::testing::StartsWith("$2y$04$"));
  auto auth = MakeAuth({{"alice", hash}});
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(auth->Check(BasicCredentials("alice", "s3cret pass")));
  // Again, from the cache, and with the scheme in another case and extra spaces.
  EXPECT_TRUE(auth->Check(BasicCredentials("alice", "s3cret pass")));
  EXPECT_TRUE(auth->Check("basic   " + BasicCredentials("alice", "s3cret pass").substr(6)));
}

TEST(BasicAuthTest, RejectsWrongPasswordsUsersAndHeaders) {
  auto auth = MakeAuth({{"alice", HtpasswdBcrypt("alice", "s3cret")}});
  ASSERT_NE(auth, nullptr);
  ASSERT_TRUE(auth->Check(BasicCredentials("alice", "s3cret")));  // now cached
  EXPECT_FALSE(auth->Check(BasicCredentials("alice", "s3cre")));
  EXPECT_FALSE(auth->Check(BasicCredentials("alice", "s3cret ")));
  EXPECT_FALSE(auth->Check(BasicCredentials("alice", "")));
  EXPECT_FALSE(auth->Check(BasicCredentials("bob", "s3cret")));
  EXPECT_FALSE(auth->Check(BasicCredentials("", "s3cret")));
  EXPECT_FALSE(auth->Check(BasicCredentials("Alice", "s3cret")));
  EXPECT_FALSE(auth->Check(BasicCredentials("alice", std::string("s3cret\0x", 8))));
  EXPECT_FALSE(auth->Check(""));
  EXPECT_FALSE(auth->Check("Basic"));
  EXPECT_FALSE(auth->Check("Basic "));
  EXPECT_FALSE(auth->Check("Basic !!!not-base64!!!"));
  EXPECT_FALSE(auth->Check("Basic YWxpY2U="));  // "alice", no colon
  EXPECT_FALSE(auth->Check("Bearer " + BasicCredentials("alice", "s3cret").substr(6)));
  EXPECT_FALSE(auth->Check("Basicx" + BasicCredentials("alice", "s3cret").substr(6)));
  EXPECT_TRUE(auth->Check(BasicCredentials("alice", "s3cret")));
}

TEST(BasicAuthTest, AcceptsSha256AndSha512CryptHashesFromOpenssl) {
  const std::string sha256 = OpensslPasswd("5", "pw five");
  const std::string sha512 = OpensslPasswd("6", "pw six");
  ASSERT_THAT(sha256, ::testing::StartsWith("$5$"));
  ASSERT_THAT(sha512, ::testing::StartsWith("$6$"));
  auto auth = MakeAuth({{"five", sha256}, {"six", sha512}});
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(auth->Check(BasicCredentials("five", "pw five")));
  EXPECT_TRUE(auth->Check(BasicCredentials("six", "pw six")));
  EXPECT_FALSE(auth->Check(BasicCredentials("five", "pw six")));
  EXPECT_FALSE(auth->Check(BasicCredentials("six", "pw five")));
}

TEST(BasicAuthTest, UnsupportedHashesAndBadUserNamesAreClearErrors) {
  const std::string good = HtpasswdBcrypt("u", "p");
  struct Case {
    std::string user, hash;
  };
  for (const Case& c : std::vector<Case>{
           {"plain", "secret"},
           {"md5", OpensslPasswd("1", "pw")},      // $1$: too weak, not accepted
           {"apr1", OpensslPasswd("apr1", "pw")},  // htpasswd's default MD5 variant
           {"truncated", good.substr(0, 20)},
           {"empty", ""},
           {"", good},
           {"a:b", good},
       }) {
    auto auth = BasicAuth::Create({{c.user, c.hash}});
    ASSERT_FALSE(auth.ok()) << c.user;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(auth.status().message()), HasSubstr("\"" + c.user + "\""));
  }
}

TEST(BasicAuthTest, ManyDistinctPasswordsThatPassDoNotGrowTheCacheWithoutBound) {
  // bcrypt reads 72 bytes of a password: every longer password with that prefix passes.
  const std::string prefix(72, 'p');
  auto auth = MakeAuth({{"alice", HtpasswdBcrypt("alice", prefix)}});
  ASSERT_NE(auth, nullptr);
  for (size_t i = 0; i < 3 * BasicAuth::kMaxCached; ++i) {
    ASSERT_TRUE(auth->Check(BasicCredentials("alice", prefix + std::to_string(i)))) << i;
  }
  EXPECT_FALSE(auth->Check(BasicCredentials("alice", prefix.substr(1))));
}

TEST(BasicAuthTest, ConcurrentChecksAgree) {
  auto auth = MakeAuth({{"alice", HtpasswdBcrypt("alice", "a")}, {"bob", OpensslPasswd("6", "b")}});
  ASSERT_NE(auth, nullptr);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const bool alice = (i + t) % 2 == 0;
        const bool good = i % 3 != 0;
        const std::string user = alice ? "alice" : "bob";
        const std::string pass = good ? (alice ? "a" : "b") : "nope";
        if (auth->Check(BasicCredentials(user, pass)) != good) wrong.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(BasicAuthTest, UnauthorizedCarriesTheChallengeAndNothingElse) {
  const Response r = Unauthorized();
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "Unauthorized\n");
  ASSERT_EQ(r.extra_headers.size(), 1u);
  EXPECT_EQ(r.extra_headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r.extra_headers[0].second, "Basic");
}

}  // namespace
}  // namespace shmetrics::http
