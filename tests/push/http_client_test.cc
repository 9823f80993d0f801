#include "push/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "http/tls_helpers.h"

namespace shmetrics::push {
namespace {

using ::shmetrics::http::testing::BasicCredentials;
using ::shmetrics::http::testing::TestCertificate;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

std::string Message(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

// A receiver over raw sockets on 127.0.0.1 (a port the kernel picks): it records each request
// exactly as it arrived (header up to the blank line, then Content-Length bytes of body) and
// answers it with `response` written verbatim, then closes. kSilent accepts and never answers,
// holding the connection until destroyed; kAtOnce answers as soon as any byte arrives (for a
// client that does not speak HTTP first, such as a TLS client hello).
class RawReceiver {
 public:
  enum Mode { kAnswer, kSilent, kAtOnce };

  explicit RawReceiver(std::string response, Mode mode = kAnswer)
      : response_(std::move(response)), mode_(mode) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      ADD_FAILURE() << "cannot listen";
      return;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }

  ~RawReceiver() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& target = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + target;
  }

  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  // Waits up to 50 ms for fd to be readable; false when it is not (yet).
  static bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void Run() {
    while (!stop_.load()) {
      if (!Readable(listen_fd_)) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
      ::close(fd);
    }
  }

  void Serve(int fd) {
    std::string in;
    size_t need = std::string::npos;  // total request bytes, once the header is in
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (!stop_.load() && std::chrono::steady_clock::now() < give_up &&
           (need == std::string::npos || in.size() < need) && !(mode_ == kAtOnce && !in.empty())) {
      if (!Readable(fd)) continue;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      size_t end = in.find("\r\n\r\n");
      if (need == std::string::npos && end != std::string::npos) {
        size_t length = 0;
        std::string lower;
        for (char c : in.substr(0, end)) lower += static_cast<char>(std::tolower(c));
        if (size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
          length = std::stoul(lower.substr(at + 17));
        }
        need = end + 4 + length;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(in);
    }
    if (mode_ == kSilent) {
      while (!stop_.load()) std::this_thread::sleep_for(10ms);
      return;
    }
    size_t sent = 0;
    while (sent < response_.size()) {
      ssize_t n = ::send(fd, response_.data() + sent, response_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the client stopped reading (a truncated body): fine
      sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    // Let the client read everything before the close (unread input would make it a reset).
    const auto linger = std::chrono::steady_clock::now() + 5s;
    char buf[4096];
    while (std::chrono::steady_clock::now() < linger && !stop_.load()) {
      if (!Readable(fd)) continue;
      if (::recv(fd, buf, sizeof(buf), 0) <= 0) break;
    }
  }

  const std::string response_;
  const Mode mode_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;  // guarded by mu_
};

std::unique_ptr<HttpClient> MakeClient(ClientOptions options = {}) {
  auto client = HttpClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

std::string WriteFile(const std::string& name, const std::string& content) {
  std::string path =
      ::testing::TempDir() + "/http_client_test_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

constexpr char kNoContent[] = "HTTP/1.1 204 No Content\r\n\r\n";

// --- URLs ---

TEST(ParseUrlTest, DefaultsPortsAndTargets) {
  auto u = ParseUrl("http://example.com");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "example.com");

  u = ParseUrl("HTTPS://Gateway:9091/metrics/job/x?a=b#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 9091);
  EXPECT_EQ(u->target, "/metrics/job/x?a=b");
  EXPECT_EQ(u->host_header, "Gateway:9091");

  u = ParseUrl("https://[::1]:443?q");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/?q");
  EXPECT_EQ(u->host_header, "[::1]");
}

TEST(ParseUrlTest, RefusesWhatItCannotSend) {
  for (const char* bad :
       {"ftp://x/", "example.com:80", "http://", "http://:80/", "http://user:pw@host/",
        "http://host:0/", "http://host:65536/", "http://host:8x/", "http://host:/", "http://::1/",
        "http://[::1/", "http://[::1]x/", "http://host/a b", "http://ho st/",
        "http://host/\r\nX: y"}) {
    auto u = ParseUrl(bad);
    EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// --- Requests and responses ---

TEST(HttpClientTest, PostSendsTheBodyAndHeadersExactly) {
  RawReceiver receiver(kNoContent);
  auto client = MakeClient({.user_agent = "shmetrics-test/1"});
  const std::string body("\x00\x01snappy\xff", 9);
  auto response = client->Send({.method = "POST",
                                .url = receiver.url("/api/v1/write?x=1"),
                                .headers = {{"Content-Type", "application/x-protobuf"},
                                            {"X-Prometheus-Remote-Write-Version", "0.1.0"}},
                                .body = body});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 204);
  EXPECT_EQ(response->status_line, "HTTP/1.1 204 No Content");
  EXPECT_EQ(response->body, "");
  EXPECT_FALSE(response->body_truncated);

  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 1u);
  const std::string& r = requests[0];
  EXPECT_THAT(r, StartsWith("POST /api/v1/write?x=1 HTTP/1.1\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nHost: 127.0.0.1:" + std::to_string(receiver.port()) + "\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nUser-Agent: shmetrics-test/1\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nContent-Type: application/x-protobuf\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nContent-Length: 9\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_EQ(r.find("Authorization"), std::string::npos);
  ASSERT_GE(r.size(), body.size());
  EXPECT_EQ(r.substr(r.size() - body.size()), body);
}

TEST(HttpClientTest, PutWithAnEmptyBodySaysSoAndDeleteSendsNoBody) {
  RawReceiver receiver("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
  auto client = MakeClient();
  auto put = client->Send({.method = "PUT", .url = receiver.url("/metrics/job/j")});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->status, 202);
  auto del = client->Send({.method = "DELETE", .url = receiver.url("/metrics/job/j")});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->status, 202);
  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[0], StartsWith("PUT /metrics/job/j HTTP/1.1\r\n"));
  EXPECT_THAT(requests[0], HasSubstr("\r\nContent-Length: 0\r\n"));
  EXPECT_THAT(requests[1], StartsWith("DELETE /metrics/job/j HTTP/1.1\r\n"));
  EXPECT_EQ(requests[1].find("Content-Length"), std::string::npos);
}

TEST(HttpClientTest, AnErrorStatusIsAResponseWithItsFirstLineAndBody) {
  RawReceiver receiver(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n\r\n"
      "out of order sample: up\n\n");
  auto client = MakeClient();
  auto response = client->Send({.method = "POST", .url = receiver.url(), .body = "x"});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->status_line, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(response->body, "out of order sample: up\n\n");
  EXPECT_THAT(response->headers, ::testing::Contains(std::pair<std::string, std::string>(
                                     "Content-Type", "text/plain")));
}

TEST(HttpClientTest, ReadsChunkedAndCloseDelimitedBodies) {
  {
    RawReceiver receiver(
        "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    auto response = MakeClient()->Send({.method = "POST", .url = receiver.url()});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 500);
    EXPECT_EQ(response->body, "hello world");
  }
  {
    RawReceiver receiver("HTTP/1.0 503 Service Unavailable\r\n\r\nuntil the close");
    auto response = MakeClient()->Send({.method = "POST", .url = receiver.url()});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status_line, "HTTP/1.0 503 Service Unavailable");
    EXPECT_EQ(response->body, "until the close");
  }
}

TEST(HttpClientTest, SkipsInterimAnswersAndReadsNoBodyAfterHead) {
  {
    RawReceiver receiver(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    auto response = MakeClient()->Send({.method = "POST", .url = receiver.url(), .body = "x"});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(response->body, "ok");
  }
  {
    // No body follows the header: a client reading the announced 1000 bytes would fail.
    RawReceiver receiver("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    auto response = MakeClient({.timeout = 20s})->Send({.method = "HEAD", .url = receiver.url()});
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "");
  }
}

TEST(HttpClientTest, KeepsAtMostMaxResponseBodyBytes) {
  const std::string big(200000, 'b');
  RawReceiver receiver("HTTP/1.1 400 Bad Request\r\nContent-Length: 200000\r\n\r\n" + big);
  auto client = MakeClient({.max_response_body_bytes = 1000});
  auto response = client->Send({.method = "POST", .url = receiver.url()});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, std::string(1000, 'b'));
  EXPECT_TRUE(response->body_truncated);

  RawReceiver exact("HTTP/1.1 400 Bad Request\r\nContent-Length: 1000\r\n\r\n" +
                    std::string(1000, 'e'));
  response = client->Send({.method = "POST", .url = exact.url()});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, std::string(1000, 'e'));
  EXPECT_FALSE(response->body_truncated);
}

TEST(HttpClientTest, ResolvesHostNames) {
  RawReceiver receiver(kNoContent);
  auto response = MakeClient()->Send(
      {.method = "POST", .url = "http://localhost:" + std::to_string(receiver.port()) + "/"});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 204);
  ASSERT_EQ(receiver.requests().size(), 1u);
  EXPECT_THAT(receiver.requests()[0],
              HasSubstr("\r\nHost: localhost:" + std::to_string(receiver.port()) + "\r\n"));
}

TEST(HttpClientTest, RefusesHeadersAndMethodsItCannotSendSafely) {
  RawReceiver receiver(kNoContent);
  auto client = MakeClient({.bearer_token = "t"});
  for (const char* own : {"Content-Length", "host", "Transfer-Encoding", "Connection", "User-Agent",
                          "Authorization"}) {
    auto r = client->Send({.method = "POST", .url = receiver.url(), .headers = {{own, "1"}}});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << own;
  }
  auto r = client->Send(
      {.method = "POST", .url = receiver.url(), .headers = {{"X-A", "1\r\nX-Injected: 1"}}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = client->Send({.method = "POST", .url = receiver.url(), .headers = {{"Bad Name", "1"}}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = client->Send({.method = "PO ST", .url = receiver.url()});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = client->Send({.method = "POST", .url = "ftp://127.0.0.1/"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(receiver.requests().empty());
}

// --- Authentication ---

TEST(HttpClientTest, BasicAuthFromThePasswordOrItsFile) {
  RawReceiver receiver(kNoContent);
  auto client = MakeClient({.basic_auth_user = "pusher", .basic_auth_password = "s3cret"});
  ASSERT_TRUE(client->Send({.method = "POST", .url = receiver.url()}).ok());
  const std::string file = WriteFile("password", "from file\n");
  auto from_file = MakeClient({.basic_auth_user = "pusher", .basic_auth_password_file = file});
  ASSERT_TRUE(from_file->Send({.method = "POST", .url = receiver.url()}).ok());
  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[0],
              HasSubstr("\r\nAuthorization: " + BasicCredentials("pusher", "s3cret") + "\r\n"));
  EXPECT_THAT(requests[1],
              HasSubstr("\r\nAuthorization: " + BasicCredentials("pusher", "from file") + "\r\n"));
  std::remove(file.c_str());
}

TEST(HttpClientTest, BearerTokenFileIsReadAtEveryRequest) {
  RawReceiver receiver(kNoContent);
  const std::string file = WriteFile("token", "  first-token\n");
  auto client = MakeClient({.bearer_token_file = file});
  ASSERT_TRUE(client->Send({.method = "POST", .url = receiver.url()}).ok());
  WriteFile("token", "second-token");
  ASSERT_TRUE(client->Send({.method = "POST", .url = receiver.url()}).ok());
  std::remove(file.c_str());
  auto gone = client->Send({.method = "POST", .url = receiver.url()});
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(gone.status()), HasSubstr(file));

  auto plain = MakeClient({.bearer_token = "given"});
  ASSERT_TRUE(plain->Send({.method = "POST", .url = receiver.url()}).ok());
  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_THAT(requests[0], HasSubstr("\r\nAuthorization: Bearer first-token\r\n"));
  EXPECT_THAT(requests[1], HasSubstr("\r\nAuthorization: Bearer second-token\r\n"));
  EXPECT_THAT(requests[2], HasSubstr("\r\nAuthorization: Bearer given\r\n"));
}

TEST(HttpClientTest, CreateRefusesContradictoryOptions) {
  auto code = [](ClientOptions o) { return HttpClient::Create(std::move(o)).status().code(); };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({.basic_auth_user = "u", .bearer_token = "t"}), kInvalid);
  EXPECT_EQ(code({.bearer_token = "t", .bearer_token_file = "/f"}), kInvalid);
  EXPECT_EQ(code({.basic_auth_password = "p"}), kInvalid);
  EXPECT_EQ(code({.basic_auth_user = "u:v"}), kInvalid);
  EXPECT_EQ(code({.bearer_token = "a\nb"}), kInvalid);
  EXPECT_EQ(code({.timeout = 0ms}), kInvalid);
  EXPECT_EQ(code({.tls = {.cert_file = "/c.pem"}}), kInvalid);
  auto missing = HttpClient::Create({.tls = {.ca_file = "/nonexistent/ca.pem"}});
  EXPECT_EQ(missing.status().code(), kInvalid);
  EXPECT_THAT(Message(missing.status()), HasSubstr("/nonexistent/ca.pem"));
}

// --- Failures ---

TEST(HttpClientTest, ARefusedConnectionIsUnavailable) {
  // A socket bound and not listening: its port refuses connections for as long as it is held.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/w?q=1";
  auto r = MakeClient()->Send({.method = "POST", .url = url});
  ::close(fd);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(r.status()), HasSubstr("POST http://127.0.0.1:"));
  EXPECT_THAT(Message(r.status()), HasSubstr("/w: connecting failed"));
}

TEST(HttpClientTest, AReceiverThatNeverAnswersCostsTheTimeoutOnly) {
  RawReceiver receiver("", RawReceiver::kSilent);
  auto client = MakeClient({.timeout = 300ms});
  const auto start = std::chrono::steady_clock::now();
  auto r = client->Send({.method = "POST", .url = receiver.url(), .body = "x"});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(Message(r.status()), HasSubstr("timed out after 300 ms while reading the response"));
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 20s);  // a generous bound: the point is that it does not hang
}

TEST(HttpClientTest, AHeaderCutShortIsUnavailable) {
  // The receiver writes part of a header and closes its side.
  RawReceiver receiver("HTTP/1.1 200 OK\r\nContent-Len");
  auto r = MakeClient({.timeout = 2000ms})->Send({.method = "POST", .url = receiver.url()});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST(HttpClientTest, GarbageAndOversizedHeadersAreUnavailable) {
  {
    RawReceiver receiver("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    auto r = MakeClient()->Send({.method = "POST", .url = receiver.url()});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }
  {
    RawReceiver receiver("HTTP/1.1 200 OK\r\nX-Big: " + std::string(40000, 'x') +
                         "\r\nContent-Length: 0\r\n\r\n");
    auto r = MakeClient({.max_response_header_bytes = 1024})
                 ->Send({.method = "POST", .url = receiver.url()});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }
}

TEST(HttpClientTest, ConcurrentSendsFromManyThreads) {
  http::ServerOptions options;
  options.threads = 2;
  std::atomic<int> calls{0};
  auto server = http::Server::Start(options, [&](const http::Request&) {
    calls.fetch_add(1);
    return http::Response{.status = 200, .body = "ok"};
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = MakeClient();
  const std::string url = "http://127.0.0.1:" + std::to_string((*server)->port()) + "/";
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = client->Send({.method = "POST", .url = url, .body = "b"});
        if (r.ok() && r->status == 200 && r->body == "ok") good.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 40);
  EXPECT_EQ(calls.load(), 40);
}

// --- TLS, against the project's own HTTPS server ---

class HttpClientTlsTest : public ::testing::Test {
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
    http::ServerOptions options;
    options.tls_cert_file = cert_->cert_file();
    options.tls_key_file = cert_->key_file();
    auto server = http::Server::Start(options, [](const http::Request& r) {
      return http::Response{.status = 200,
                            .body = std::string(r.method) + " " + std::string(r.path) + " " +
                                    std::string(r.authorization)};
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::string url(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(server_->port()) + "/push";
  }

  static TestCertificate* cert_;
  static TestCertificate* other_;
  std::unique_ptr<http::Server> server_;
};

TestCertificate* HttpClientTlsTest::cert_ = nullptr;
TestCertificate* HttpClientTlsTest::other_ = nullptr;

TEST_F(HttpClientTlsTest, VerifiesTheServerAgainstTheCaFile) {
  auto client = MakeClient({.tls = {.ca_file = cert_->cert_file()}, .bearer_token = "tok"});
  for (const std::string& host : {std::string("127.0.0.1"), std::string("localhost")}) {
    auto r = client->Send({.method = "PUT", .url = url(host), .body = "x"});
    ASSERT_TRUE(r.ok()) << host << ": " << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "PUT /push Bearer tok");
  }
  // The name checked can differ from the host connected to.
  auto named = MakeClient({.tls = {.ca_file = cert_->cert_file(), .server_name = "localhost"}});
  auto r = named->Send({.method = "POST", .url = url()});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTlsTest, RefusesAnUntrustedOrMisnamedServer) {
  auto untrusted = MakeClient({.tls = {.ca_file = other_->cert_file()}});
  auto r = untrusted->Send({.method = "POST", .url = url()});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(r.status()), HasSubstr("certificate"));

  auto misnamed =
      MakeClient({.tls = {.ca_file = cert_->cert_file(), .server_name = "example.com"}});
  r = misnamed->Send({.method = "POST", .url = url()});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Message(r.status()), HasSubstr("certificate"));

  // Insecure: encrypted, not authenticated.
  auto insecure =
      MakeClient({.tls = {.ca_file = other_->cert_file(), .insecure_skip_verify = true}});
  r = insecure->Send({.method = "POST", .url = url()});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTlsTest, PlainHttpToTlsAndTlsToPlainHttpFail) {
  auto client = MakeClient({.timeout = 10s, .tls = {.ca_file = cert_->cert_file()}});
  auto r = client->Send(
      {.method = "POST", .url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/"});
  EXPECT_FALSE(r.ok());
  RawReceiver plain("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", RawReceiver::kAtOnce);
  r = client->Send(
      {.method = "POST", .url = "https://127.0.0.1:" + std::to_string(plain.port()) + "/"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(Message(r.status()), HasSubstr("TLS handshake failed"));
}

TEST_F(HttpClientTlsTest, LoadsAClientCertificateAndChecksItsKey) {
  EXPECT_TRUE(
      HttpClient::Create({.tls = {.cert_file = cert_->cert_file(), .key_file = cert_->key_file()}})
          .ok());
  auto mismatched = HttpClient::Create(
      {.tls = {.cert_file = cert_->cert_file(), .key_file = other_->key_file()}});
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(mismatched.status()), HasSubstr(other_->key_file()));
}

// Mutual TLS against `openssl s_server -Verify 1`, which demands a client certificate signed by
// the CA it is given (here other_'s self-signed certificate) and answers GET with a status page.
TEST_F(HttpClientTlsTest, SendsTheClientCertificateWhenTheServerDemandsOne) {
  const std::string log = cert_->dir() + "/s_server.log";
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log.c_str(), "w", stdout)) _exit(126);
    dup2(1, 2);
    execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
           cert_->cert_file().c_str(), "-key", cert_->key_file().c_str(), "-Verify", "1", "-CAfile",
           other_->cert_file().c_str(), "-www", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  std::string port;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (port.empty() && std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("ACCEPT 127.0.0.1:", 0) == 0) port = line.substr(17);
    }
    if (port.empty()) std::this_thread::sleep_for(20ms);
  }
  const std::string url = "https://127.0.0.1:" + port + "/";
  auto with_cert = MakeClient({.tls = {.ca_file = cert_->cert_file(),
                                       .cert_file = other_->cert_file(),
                                       .key_file = other_->key_file()}});
  auto without = MakeClient({.tls = {.ca_file = cert_->cert_file()}});
  absl::StatusOr<HttpResponse> good, refused;
  if (!port.empty()) {
    good = with_cert->Send({.method = "GET", .url = url});
    refused = without->Send({.method = "GET", .url = url});
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(port.empty()) << "openssl s_server did not start";
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->status, 200);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
}

}  // namespace
}  // namespace shmetrics::push
