// A tiny blocking HTTP/1.1 client over POSIX sockets for the server tests. It speaks just
// enough HTTP to check what the server sends byte for byte: raw requests go out as written,
// and responses are parsed by Content-Length, chunked transfer encoding (a truncated chunked
// body is nullopt, never a short body) or, without either, the close.
//
// Thread safety: one TestClient per thread.
#ifndef SHMETRICS_TESTS_HTTP_CLIENT_HELPERS_H_
#define SHMETRICS_TESTS_HTTP_CLIENT_HELPERS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace shmetrics::http::testing {

struct ParsedResponse {
  std::string status_line;                     // e.g. "HTTP/1.1 200 OK"
  int status = 0;                              // e.g. 200
  std::map<std::string, std::string> headers;  // names lower-cased; last one wins
  std::string body;
  int chunks = 0;  // chunks read, the final empty one included; 0 when not chunked

  bool Has(const std::string& name) const { return headers.count(name) > 0; }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class TestClient {
 public:
  // Connects to 127.0.0.1:port; connected() tells whether it worked.
  explicit TestClient(uint16_t port);
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Writes all of data; false if the connection is gone.
  bool Send(std::string_view data);

  // Reads one response. For a response to HEAD pass head=true: the body is not read even if
  // Content-Length is set. nullopt on timeout, close or garbage before a full response.
  std::optional<ParsedResponse> ReadResponse(
      bool head = false, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Waits for the peer to close (EOF or reset). Returns what arrived before the close, or
  // nullopt if the connection is still open at the timeout.
  std::optional<std::string> ReadUntilClosed(
      std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Bytes received and not consumed by ReadResponse yet.
  const std::string& pending() const { return buffer_; }

  void Close();

 private:
  // Reads more into buffer_. 1: got data, 0: EOF/reset, -1: timeout.
  int ReadMore(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection: sends `request` and reads one response.
std::optional<ParsedResponse> Fetch(uint16_t port, std::string_view request, bool head = false);

// A GET of `target` with Host and Connection: close.
std::string GetRequest(std::string_view target, std::string_view extra_headers = "");

}  // namespace shmetrics::http::testing

#endif  // SHMETRICS_TESTS_HTTP_CLIENT_HELPERS_H_
