// Basic authentication inside the server: checked before the handler, hashes verified on the
// verifier threads, verified credentials accepted from the cache, and a full verifier queue
// answered with 503 at once.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/client_helpers.h"
#include "http/server.h"
#include "http/tls_helpers.h"

namespace shmetrics::http {
namespace {

using ::shmetrics::http::testing::BasicCredentials;
using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::shmetrics::http::testing::ParsedResponse;
using ::shmetrics::http::testing::TestClient;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string Get(const std::string& user, const std::string& password,
                const std::string& method = "GET") {
  return method +
         " /metrics HTTP/1.1\r\nHost: h\r\nAuthorization: " + BasicCredentials(user, password) +
         "\r\n\r\n";
}

class ServerAuthTest : public ::testing::Test {
 protected:
  void Start(const std::map<std::string, std::string>& users) {
    ServerOptions options;
    options.basic_auth_users = users;
    auto server = Server::Start(options, [this](const Request&) {
      calls_.fetch_add(1);
      return Response{.content_type = "text/plain", .body = "secret 1\n"};
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  uint16_t port() const { return server_->port(); }

  std::atomic<int> calls_{0};
  std::unique_ptr<Server> server_;
};

TEST_F(ServerAuthTest, OnlyTheRightPasswordReachesTheHandlerAndTheConnectionStaysOpen) {
  Start({{"alice", HtpasswdBcrypt("alice", "right")}});
  TestClient client(port());
  ASSERT_TRUE(client.connected());
  for (const std::string& request :
       {Get("alice", "wrong"), Get("bob", "right"), Get("Alice", "right"),
        std::string("GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"),
        std::string("GET /metrics HTTP/1.1\r\nHost: h\r\nAuthorization: Basic !!\r\n\r\n")}) {
    ASSERT_TRUE(client.Send(request));
    std::optional<ParsedResponse> r = client.ReadResponse();
    ASSERT_TRUE(r.has_value()) << request;
    EXPECT_EQ(r->status, 401) << request;
    EXPECT_EQ(r->Header("www-authenticate"), "Basic");
    EXPECT_EQ(r->body, "Unauthorized\n");
  }
  EXPECT_EQ(calls_.load(), 0);
  // Twice: hashed on a verifier thread, then accepted from the cache; a HEAD as well.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.Send(Get("alice", "right")));
    std::optional<ParsedResponse> r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "secret 1\n");
  }
  ASSERT_TRUE(client.Send(Get("alice", "right", "HEAD")));
  std::optional<ParsedResponse> head = client.ReadResponse(/*head=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "9");
  EXPECT_EQ(calls_.load(), 3);
}

TEST_F(ServerAuthTest, PipelinedRequestsAreAnsweredInOrderAcrossVerifications) {
  Start({{"alice", HtpasswdBcrypt("alice", "right")}});
  TestClient client(port());
  ASSERT_TRUE(client.Send(Get("alice", "wrong") + Get("alice", "right") + Get("nobody", "x") +
                          Get("alice", "right")));
  for (int status : {401, 200, 401, 200}) {
    std::optional<ParsedResponse> r = client.ReadResponse();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, status);
  }
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(ServerAuthTest, InvalidUsersMakeStartFail) {
  std::string hash = HtpasswdBcrypt("u", "p");
  hash.replace(4, 2, "16");
  ServerOptions options;
  options.basic_auth_users = {{"heavy", hash}};
  auto server = Server::Start(options, [](const Request&) { return Response{}; });
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("\"heavy\": bcrypt cost 16 is above the maximum of 14"));
}

// Cost 11 (about 0.15 s a hash here): the flood below fills the queue (at most 16 slots) in
// milliseconds, long before its verifications (a second or more of them) finish.
TEST_F(ServerAuthTest, AFullQueueIsAnswered503WhileCachedCredentialsStillPass) {
  Start({{"alice", HtpasswdBcrypt("alice", "right", 11)}, {"bob", HtpasswdBcrypt("bob", "b")}});
  {
    TestClient first(port());
    ASSERT_TRUE(first.Send(Get("alice", "right")));
    std::optional<ParsedResponse> r = first.ReadResponse();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200);
  }
  constexpr int kFlood = 60;
  std::vector<std::unique_ptr<TestClient>> flood;
  for (int i = 0; i < kFlood; ++i) {
    flood.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(flood.back()->Send(Get("alice", "guess " + std::to_string(i))));
  }
  TestClient cached(port());
  ASSERT_TRUE(cached.Send(Get("alice", "right")));
  TestClient uncached(port());
  ASSERT_TRUE(uncached.Send(Get("bob", "b")));

  std::optional<ParsedResponse> r = cached.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  r = uncached.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "Too many password checks at once\n");
  EXPECT_EQ(r->Header("retry-after"), "1");
  EXPECT_EQ(r->Header("connection"), "");  // kept alive
  int unauthorized = 0, busy = 0;
  for (auto& client : flood) {
    r = client->ReadResponse(/*head=*/false, 60s);
    ASSERT_TRUE(r.has_value());
    if (r->status == 401) ++unauthorized;
    if (r->status == 503) ++busy;
  }
  EXPECT_EQ(unauthorized + busy, kFlood);
  EXPECT_GE(unauthorized, 1);
  EXPECT_LE(unauthorized, 16);
  EXPECT_GE(busy, kFlood - 16);
  // Once the queue drains, the uncached user gets in on the same connection.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int status = 0;
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(uncached.Send(Get("bob", "b")));
    r = uncached.ReadResponse();
    ASSERT_TRUE(r.has_value());
    status = r->status;
    if (status == 503) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(calls_.load(), 3);
}

TEST_F(ServerAuthTest, StopWithVerificationsQueuedReturns) {
  Start({{"alice", HtpasswdBcrypt("alice", "right", 11)}});
  std::vector<std::unique_ptr<TestClient>> flood;
  for (int i = 0; i < 20; ++i) {
    flood.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(flood.back()->Send(Get("alice", "guess " + std::to_string(i))));
  }
  // A 503 answered proves the queue is full before the stop.
  std::optional<ParsedResponse> r = flood.back()->ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  server_->Stop();
  for (auto& client : flood) {
    // Every connection ends: answered before the stop, or closed by it.
    EXPECT_TRUE(client->ReadUntilClosed(20s).has_value());
  }
  EXPECT_EQ(calls_.load(), 0);
}

}  // namespace
}  // namespace shmetrics::http
