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
  // Unknown users are hashed against one of these (the decoy) and still turned away.
  EXPECT_FALSE(auth->Check(BasicCredentials("seven", "pw six")));
  EXPECT_FALSE(auth->Check(BasicCredentials("seven", "pw five")));
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

TEST(BasicAuthTest, CostsAboveTheCapAreRefusedBeforeAnyHashing) {
  // A cost-4 hash with its cost field rewritten: checked by the cap before crypt runs it (at 31,
  // crypt would take days, so this test finishing says the cap comes first).
  const std::string good = HtpasswdBcrypt("u", "p");
  ASSERT_THAT(good, ::testing::StartsWith("$2y$04$"));
  for (const std::string cost : {"15", "20", "31", "99"}) {
    std::string hash = good;
    hash.replace(4, 2, cost);
    auto auth = BasicAuth::Create({{"carol", hash}});
    ASSERT_FALSE(auth.ok()) << cost;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(auth.status().message());
    EXPECT_THAT(message, HasSubstr("\"carol\""));
    EXPECT_THAT(message, HasSubstr("bcrypt cost " + std::to_string(std::stoi(cost)) +
                                   " is above the maximum of 14"));
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
  for (const std::string rounds : {"1000001", "999999999", "99999999999999999999999"}) {
    auto auth = BasicAuth::Create({{"dave", "$6$rounds=" + rounds + "$saltsalt$abc"}});
    ASSERT_FALSE(auth.ok()) << rounds;
    EXPECT_THAT(std::string(auth.status().message()), HasSubstr("\"dave\": sha-crypt rounds="));
  }
}

TEST(BasicAuthTest, TheHighestAcceptedCostWorks) {
  std::string hash = HtpasswdBcrypt("u", "p");
  ASSERT_THAT(hash, ::testing::StartsWith("$2y$04$"));
  hash.replace(4, 2, "14");  // a well-formed cost-14 hash (of some other password)
  auto auth = BasicAuth::Create({{"erin", hash}});
  EXPECT_TRUE(auth.ok()) << auth.status();
}

TEST(BasicAuthTest, PrecheckDecidesWhatItCanAndVerifyTheRest) {
  auto auth = MakeAuth({{"alice", HtpasswdBcrypt("alice", "s3cret")}});
  ASSERT_NE(auth, nullptr);
  using Verdict = BasicAuth::Verdict;
  BasicAuth::Attempt attempt;
  EXPECT_EQ(auth->Precheck("", &attempt), Verdict::kRejected);
  EXPECT_EQ(auth->Precheck("Basic !!!", &attempt), Verdict::kRejected);
  EXPECT_EQ(auth->Precheck("Basic YWxpY2U=", &attempt), Verdict::kRejected);  // no colon

  // A wrong password, for a known or an unknown user, always goes on to the hash.
  for (int i = 0; i < 2; ++i) {
    for (const std::string user : {"alice", "mallory"}) {
      ASSERT_EQ(auth->Precheck(BasicCredentials(user, "guess"), &attempt), Verdict::kNeedsHash);
      EXPECT_EQ(attempt.known, user == "alice");
      EXPECT_FALSE(auth->Verify(attempt));
    }
  }
  ASSERT_EQ(auth->Precheck(BasicCredentials("alice", "s3cret"), &attempt), Verdict::kNeedsHash);
  EXPECT_TRUE(auth->Verify(attempt));
  EXPECT_EQ(auth->Precheck(BasicCredentials("alice", "s3cret"), &attempt), Verdict::kAccepted);
  // The unknown user with the known user's password is not let in by the decoy hash.
  ASSERT_EQ(auth->Precheck(BasicCredentials("bob", "s3cret"), &attempt), Verdict::kNeedsHash);
  EXPECT_FALSE(auth->Verify(attempt));
}

TEST(BasicAuthTest, AFullCacheForgetsItsOldestEntryFirst) {
  const std::string prefix(72, 'p');
  auto auth = MakeAuth({{"alice", HtpasswdBcrypt("alice", prefix)}});
  ASSERT_NE(auth, nullptr);
  BasicAuth::Attempt attempt;
  for (size_t i = 0; i <= BasicAuth::kMaxCached; ++i) {
    ASSERT_TRUE(auth->Check(BasicCredentials("alice", prefix + std::to_string(i)))) << i;
  }
  EXPECT_EQ(auth->Precheck(BasicCredentials("alice", prefix + "0"), &attempt),
            BasicAuth::Verdict::kNeedsHash);
  for (size_t i = 1; i <= BasicAuth::kMaxCached; ++i) {
    EXPECT_EQ(auth->Precheck(BasicCredentials("alice", prefix + std::to_string(i)), &attempt),
              BasicAuth::Verdict::kAccepted)
        << i;
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
