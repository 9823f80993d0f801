// A fake remote-write receiver on 127.0.0.1 for the push tests: answers each request with a
// status the test chooses, decodes what it accepts, and can go down (connections refused) and
// come back on the same port.
#ifndef SHMETRICS_TESTS_PUSH_FAKE_RECEIVER_H_
#define SHMETRICS_TESTS_PUSH_FAKE_RECEIVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "push/wire_decoder.h"

namespace shmetrics::testing {

// A remote-write receiver on 127.0.0.1 that answers each request with status(n) (n counts
// requests from 0); a status of 0 means never answer (the connection is held open).
class FakeReceiver {
 public:
  explicit FakeReceiver(std::function<int(int)> status) : status_(std::move(status)) { Listen(0); }
  ~FakeReceiver() { Down(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/write"; }
  int requests() const { return requests_.load(); }

  // Closes the listener (connections are refused) and every held connection.
  void Down() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int fd : held_) close(fd);
    held_.clear();
    if (listener_ >= 0) close(listener_);
    listener_ = -1;
  }
  // Listens again on the same port.
  void Up() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!Listen(port_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // The value of the last pushed sample named `name`, or -1.
  double Last(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return last_.count(name) ? last_[name] : -1;
  }
  // The value of the last pushed sample named `name` that carries every label of `labels`,
  // or -1.
  double Last(const std::string& name,
              const std::vector<std::pair<std::string, std::string>>& labels) {
    std::lock_guard<std::mutex> lock(mu_);
    double value = -1;
    for (const DecodedSeries& s : series_) {
      bool match = !s.samples.empty();
      for (const auto& want : labels) {
        if (std::find(s.labels.begin(), s.labels.end(), want) == s.labels.end()) match = false;
      }
      const std::pair<std::string, std::string> named("__name__", name);
      if (match && std::find(s.labels.begin(), s.labels.end(), named) != s.labels.end()) {
        value = s.samples[0].first;
      }
    }
    return value;
  }
  // The size of the last body accepted (compressed, as sent), 0 before the first.
  size_t last_body_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_bytes_;
  }
  // The Authorization header of the last request, "" when it had none.
  std::string authorization() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorization_;
  }

 private:
  bool Listen(uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
      close(fd);
      return false;
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listener_ = fd;
    stop_ = false;
    thread_ = std::thread([this] { Serve(); });
    return true;
  }

  void Serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      char buf[65536];
      size_t header_end = std::string::npos, length = 0;
      while (header_end == std::string::npos || in.size() < header_end + 4 + length) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 5000) <= 0) break;
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, n);
        if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != in.npos) {
          const size_t at = in.find("Content-Length: ");
          if (at != std::string::npos && at < header_end) length = std::stoul(in.substr(at + 16));
        }
      }
      if (header_end != std::string::npos) {
        // Header names as Beast writes them; a request without one has no Authorization.
        const size_t at = in.find("\r\nAuthorization: ");
        std::lock_guard<std::mutex> lock(mu_);
        authorization_ =
            at < header_end ? in.substr(at + 17, in.find("\r\n", at + 2) - at - 17) : std::string();
      }
      const int status = status_(requests_++);
      if (status == 0) {
        held_.push_back(c);
        continue;
      }
      if (status / 100 == 2 && header_end != std::string::npos) Record(in.substr(header_end + 4));
      const std::string response =
          "HTTP/1.1 " + std::to_string(status) +
          " Status\r\nContent-Length: 6\r\nConnection: close\r\n\r\nno no\n";
      (void)!write(c, response.data(), response.size());
      close(c);
    }
  }

  void Record(const std::string& compressed) {
    const auto raw = SnappyUncompress(compressed);
    if (!raw) return;
    const auto series = DecodeWriteRequest(*raw);
    if (!series) return;
    std::lock_guard<std::mutex> lock(mu_);
    series_ = *series;
    last_body_bytes_ = compressed.size();
    for (const auto& s : *series) {
      for (const auto& [n, v] : s.labels) {
        if (n == "__name__" && !s.samples.empty()) last_[v] = s.samples[0].first;
      }
    }
  }

  const std::function<int(int)> status_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::vector<int> held_;  // the serving thread's own, then Down's
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, double> last_;  // by name, of every push accepted
  std::vector<DecodedSeries> series_;   // of the last push accepted
  std::string authorization_;
  size_t last_body_bytes_ = 0;
};

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_PUSH_FAKE_RECEIVER_H_
