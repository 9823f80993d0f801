// Streamed bodies (Response::stream): framing, HEAD, HTTP/1.0, keep-alive, errors before and
// after the header went out, and producers stopped by clients that stop reading or leave.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/client_helpers.h"
#include "http/server.h"

namespace shmetrics::http {
namespace {

using ::shmetrics::http::testing::GetRequest;
using ::shmetrics::http::testing::ParsedResponse;
using ::shmetrics::http::testing::TestClient;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Piece i of a streamed body: a line naming it, padded to `size` bytes.
std::string Piece(int i, size_t size) {
  std::string s = absl::StrCat("piece ", i, "\n");
  s.resize(size, 'x');
  s.back() = '\n';
  return s;
}

std::string Body(int pieces, size_t size) {
  std::string s;
  for (int i = 0; i < pieces; ++i) s += Piece(i, size);
  return s;
}

// Polls until pred() holds or 20 s pass.
template <class Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class StreamTest : public ::testing::Test {
 protected:
  // Serves /stream?<pieces> with `pieces` pieces of piece_size_ bytes, /fail-early, /fail-late
  // and /endless (until the sink refuses); counts producer runs and refusals.
  void Start() {
    auto server = Server::Start(options_, [this](const Request& r) {
      Response response{.content_type = "text/plain"};
      const std::string path(r.path);
      int pieces = 0;
      if (path == "/stream") pieces = std::atoi(std::string(r.query).c_str());
      if (path == "/endless") pieces = 1 << 30;
      const size_t size = piece_size_;
      const bool fail_early = path == "/fail-early";
      const bool fail_late = path == "/fail-late";
      response.stream = [this, pieces, size, fail_early,
                         fail_late](const BodySink& sink) -> absl::Status {
        runs_.fetch_add(1);
        if (fail_early) return absl::InternalError("cannot collect: early");
        std::string buffer;
        for (int i = 0; i < (fail_late ? 4 : pieces); ++i) {
          buffer = Piece(i, size);
          if (!sink(&buffer)) {
            refused_.fetch_add(1);
            return absl::CancelledError("gone");
          }
          produced_.fetch_add(1);
        }
        if (fail_late) return absl::InternalError("late");
        finished_.fetch_add(1);
        return absl::OkStatus();
      };
      return response;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  uint16_t port() const { return server_->port(); }

  ServerOptions options_;
  size_t piece_size_ = 64 << 10;
  std::atomic<int> runs_{0};
  std::atomic<int> produced_{0};
  std::atomic<int> refused_{0};
  std::atomic<int> finished_{0};
  std::unique_ptr<Server> server_;
};

TEST_F(StreamTest, ManyPiecesAreChunkedAndTheConnectionIsKeptAlive) {
  Start();
  TestClient client(port());
  ASSERT_TRUE(client.connected());
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(client.Send("GET /stream?20 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::optional<ParsedResponse> r = client.ReadResponse();
    ASSERT_TRUE(r.has_value()) << round;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Header("transfer-encoding"), "chunked");
    EXPECT_FALSE(r->Has("content-length"));
    EXPECT_EQ(r->Header("content-type"), "text/plain");
    EXPECT_EQ(r->chunks, 21);  // one per piece, and the last, empty one
    EXPECT_EQ(r->body, Body(20, piece_size_));
  }
  EXPECT_EQ(finished_.load(), 3);
}

TEST_F(StreamTest, OnePieceGetsContentLength) {
  Start();
  for (const char* target : {"/stream?1", "/stream?0"}) {
    std::optional<ParsedResponse> r = testing::Fetch(port(), GetRequest(target));
    ASSERT_TRUE(r.has_value()) << target;
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(r->Has("transfer-encoding"));
    EXPECT_EQ(r->Header("content-length"), std::to_string(r->body.size()));
    EXPECT_EQ(r->body, Body(target == std::string("/stream?1") ? 1 : 0, piece_size_));
  }
}

TEST_F(StreamTest, ErrorBeforeAnythingWentOutIsA500) {
  Start();
  std::optional<ParsedResponse> r = testing::Fetch(port(), GetRequest("/fail-early"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
  EXPECT_THAT(r->body, HasSubstr("cannot collect: early"));
}

TEST_F(StreamTest, ErrorAfterTheHeaderTruncatesTheBody) {
  Start();
  TestClient client(port());
  ASSERT_TRUE(client.Send("GET /fail-late HTTP/1.1\r\nHost: x\r\n\r\n"));
  // No final chunk arrives: the client cannot take the pieces for a whole body.
  EXPECT_FALSE(client.ReadResponse().has_value());
  const std::string& got = client.pending();
  EXPECT_THAT(got, HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos);
  // The server goes on serving.
  std::optional<ParsedResponse> next = testing::Fetch(port(), GetRequest("/stream?3"));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->body, Body(3, piece_size_));
}

TEST_F(StreamTest, HeadRunsNoProducerAndKeepsTheConnection) {
  Start();
  TestClient client(port());
  ASSERT_TRUE(client.Send("HEAD /stream?5 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<ParsedResponse> head = client.ReadResponse(/*head=*/true);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("transfer-encoding"), "chunked");
  EXPECT_TRUE(head->body.empty());
  ASSERT_TRUE(client.Send("GET /stream?5 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::optional<ParsedResponse> get = client.ReadResponse();
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->body, Body(5, piece_size_));
  EXPECT_EQ(runs_.load(), 1);  // the GET's only
}

TEST_F(StreamTest, Http10GetsABodyEndedByTheClose) {
  Start();
  TestClient client(port());
  ASSERT_TRUE(client.Send("GET /stream?6 HTTP/1.0\r\n\r\n"));
  std::optional<std::string> all = client.ReadUntilClosed();
  ASSERT_TRUE(all.has_value());
  const size_t end = all->find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  const std::string header = all->substr(0, end);
  EXPECT_THAT(header, HasSubstr("HTTP/1.0 200"));
  EXPECT_THAT(header, ::testing::Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(header, ::testing::Not(HasSubstr("Content-Length")));
  EXPECT_EQ(all->substr(end + 4), Body(6, piece_size_));
}

// A client that stops reading holds its producer (2 pieces at most wait for it) until
// write_timeout drops it; the producer then stops at its next piece, and meanwhile others are
// served.
TEST_F(StreamTest, AClientThatStopsReadingStopsItsProducer) {
  options_.write_timeout = 1000ms;
  Start();
  TestClient stalled(port());
  ASSERT_TRUE(stalled.Send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(WaitFor([&] { return produced_.load() > 2; }));
  // Served while the stalled one waits (the other scrape thread).
  std::optional<ParsedResponse> other = testing::Fetch(port(), GetRequest("/stream?4"));
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->body, Body(4, piece_size_));
  ASSERT_TRUE(WaitFor([&] { return refused_.load() == 1; }));
  // What it produced fits in the socket buffers plus the 2 pieces in flight, far below endless.
  EXPECT_LT(produced_.load(), 2000);
  std::optional<ParsedResponse> after = testing::Fetch(port(), GetRequest("/stream?2"));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->body, Body(2, piece_size_));
}

TEST_F(StreamTest, AClientThatLeavesStopsItsProducer) {
  Start();
  {
    TestClient leaving(port());
    ASSERT_TRUE(leaving.Send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(WaitFor([&] { return produced_.load() > 2; }));
    // Reset rather than FIN, so the server's next write fails at once.
    linger l{1, 0};
    ::setsockopt(leaving.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  ASSERT_TRUE(WaitFor([&] { return refused_.load() == 1; }));
  std::optional<ParsedResponse> after = testing::Fetch(port(), GetRequest("/stream?2"));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->body, Body(2, piece_size_));
}

TEST_F(StreamTest, StopEndsAProducerWaitingForAStalledClient) {
  Start();
  TestClient stalled(port());
  ASSERT_TRUE(stalled.Send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(WaitFor([&] { return produced_.load() > 2; }));
  server_->Stop();  // returns: the producer gave up waiting for room
  EXPECT_EQ(refused_.load(), 1);
}

TEST_F(StreamTest, ScrapesBeyondTheQueueGet503) {
  options_.scrape_threads = 1;
  options_.max_queued_scrapes = 8;
  options_.write_timeout = 20000ms;
  Start();
  // 8 responses wait or run at once. Fill them with stalled clients.
  std::vector<std::unique_ptr<TestClient>> stalled;
  for (int i = 0; i < 8; ++i) {
    stalled.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(stalled.back()->Send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  ASSERT_TRUE(WaitFor([&] { return produced_.load() > 2; }));
  // However the 16 requests race, at most 8 are taken: some probe gets 503. A probe that was
  // taken waits behind the stalled ones, so probes are polled in turn.
  std::vector<std::unique_ptr<TestClient>> probes;
  for (int i = 0; i < 8; ++i) {
    probes.push_back(std::make_unique<TestClient>(port()));
    ASSERT_TRUE(probes.back()->Send(GetRequest("/stream?1")));
  }
  bool refused = false;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    for (auto& probe : probes) {
      std::optional<ParsedResponse> r = probe->ReadResponse(false, 20ms);
      if (r.has_value() && r->status == 503) {
        refused = true;
        EXPECT_EQ(r->Header("retry-after"), "1");
        EXPECT_THAT(r->body, HasSubstr("Too many scrapes at once"));
        break;
      }
    }
  }
  EXPECT_TRUE(refused);
  probes.clear();
  stalled.clear();  // they leave; their producers stop
  ASSERT_TRUE(WaitFor([&] {
    std::optional<ParsedResponse> r = testing::Fetch(port(), GetRequest("/stream?1"));
    return r.has_value() && r->status == 200;
  }));
}

// curl, a real client: chunked over HTTP/1.1, close-delimited over HTTP/1.0.
TEST_F(StreamTest, CurlReadsTheStreamedBody) {
  if (::access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
  Start();
  for (const char* version : {"--http1.1", "--http1.0"}) {
    const std::string cmd = absl::StrCat("/usr/bin/curl -sS --max-time 20 ", version,
                                         " http://127.0.0.1:", port(), "/stream?30");
    FILE* pipe = ::popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string out;
    std::array<char, 65536> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    EXPECT_EQ(::pclose(pipe), 0) << version;
    EXPECT_EQ(out, Body(30, piece_size_)) << version;
  }
}

}  // namespace
}  // namespace shmetrics::http
