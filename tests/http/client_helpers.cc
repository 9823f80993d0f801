#include "http/client_helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

namespace shmetrics::http::testing {

TestClient::TestClient(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

TestClient::~TestClient() { Close(); }

void TestClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool TestClient::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

int TestClient::ReadMore(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return -1;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return -1;
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    buffer_.append(chunk, static_cast<size_t>(n));
    return 1;
  }
}

std::optional<ParsedResponse> TestClient::ReadResponse(bool head,
                                                       std::chrono::milliseconds timeout) {
  if (fd_ < 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (ReadMore(deadline) != 1) return std::nullopt;
  }
  std::string head_text = buffer_.substr(0, end);
  size_t consumed = end + 4;
  ParsedResponse response;
  size_t eol = head_text.find("\r\n");
  response.status_line = head_text.substr(0, eol);
  if (response.status_line.rfind("HTTP/1.", 0) != 0 || response.status_line.size() < 12) {
    return std::nullopt;
  }
  response.status = std::atoi(response.status_line.substr(9, 3).c_str());
  while (eol != std::string::npos) {
    size_t start = eol + 2;
    eol = head_text.find("\r\n", start);
    std::string line = head_text.substr(start, eol == std::string::npos ? eol : eol - start);
    size_t colon = line.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t v = line.find_first_not_of(' ', colon + 1);
    response.headers[name] = v == std::string::npos ? "" : line.substr(v);
  }
  if (!head && response.Header("transfer-encoding") == "chunked") {
    // Each chunk: hex size, CRLF, data, CRLF; a zero size, then trailers (none here) and CRLF.
    size_t pos = consumed;
    for (;;) {
      size_t line_end;
      while ((line_end = buffer_.find("\r\n", pos)) == std::string::npos) {
        if (ReadMore(deadline) != 1) return std::nullopt;
      }
      const std::string size_text = buffer_.substr(pos, line_end - pos);
      char* parsed_end = nullptr;
      const size_t size = std::strtoull(size_text.c_str(), &parsed_end, 16);
      if (size_text.empty() || parsed_end != size_text.c_str() + size_text.size()) {
        return std::nullopt;
      }
      pos = line_end + 2;
      while (buffer_.size() < pos + size + 2) {
        if (ReadMore(deadline) != 1) return std::nullopt;
      }
      if (buffer_.compare(pos + size, 2, "\r\n") != 0) return std::nullopt;
      response.body.append(buffer_, pos, size);
      pos += size + 2;
      ++response.chunks;
      if (size == 0) break;
    }
    buffer_.erase(0, pos);
    return response;
  }
  if (!head && !response.Has("content-length") && response.status >= 200 &&
      response.status != 204 && response.status != 304) {
    // Delimited by the close (HTTP/1.0).
    for (;;) {
      const int r = ReadMore(deadline);
      if (r == 0) break;
      if (r < 0) return std::nullopt;
    }
    response.body = buffer_.substr(consumed);
    buffer_.clear();
    return response;
  }
  size_t length = 0;
  if (!head && response.Has("content-length")) {
    length = std::strtoull(response.Header("content-length").c_str(), nullptr, 10);
  }
  while (buffer_.size() < consumed + length) {
    if (ReadMore(deadline) != 1) return std::nullopt;
  }
  response.body = buffer_.substr(consumed, length);
  buffer_.erase(0, consumed + length);
  return response;
}

std::optional<std::string> TestClient::ReadUntilClosed(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return std::string();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int r = ReadMore(deadline);
    if (r == 0) return buffer_;
    if (r < 0) return std::nullopt;
  }
}

std::optional<ParsedResponse> Fetch(uint16_t port, std::string_view request, bool head) {
  TestClient client(port);
  if (!client.connected() || !client.Send(request)) return std::nullopt;
  return client.ReadResponse(head);
}

std::string GetRequest(std::string_view target, std::string_view extra_headers) {
  std::string r = "GET ";
  r += target;
  r += " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  r += extra_headers;
  r += "\r\n";
  return r;
}

}  // namespace shmetrics::http::testing
