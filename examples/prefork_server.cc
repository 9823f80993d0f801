// prefork_server: a small pre-fork HTTP server with shmetrics, the shape of gunicorn or Apache
// prefork. The master creates the heap, registers the metrics, serves them with an embedded
// HttpExposer, opens the listening socket and forks N workers that accept on it. A dead worker
// is respawned under the same worker id; its counts stay in the totals.
//
//   prefork_server --workers N --port P --metrics-port M [--heap NAME] [--listen-address A]
//
// Every request is answered "200 ok": `/slow?ms=K` sleeps K ms first, `/crash` makes the worker
// exit abruptly. SIGTERM or SIGINT: workers finish their request in flight, the master removes
// the heap and exits 0.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "shmetrics/error.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"

namespace {

// A worker's stop request. Workers keep SIGTERM and SIGINT blocked and read them from a
// signalfd, so there is no asynchronous handler and a request in flight is never interrupted.
int g_signal_fd = -1;
bool g_stopping = false;

// True once SIGTERM or SIGINT arrived (it is read from the signalfd, which never blocks).
bool Stopping() {
  signalfd_siginfo si;
  if (!g_stopping && read(g_signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    g_stopping = true;
  }
  return g_stopping;
}

struct Metrics {
  shmetrics::CounterFamily* requests;
  shmetrics::HistogramFamily* duration;
  shmetrics::GaugeFamily* in_flight;
};

// A bound on the requests of one keep-alive connection, as Apache's MaxKeepAliveRequests.
constexpr int kMaxKeepAliveRequests = 1000;
// An idle keep-alive connection is closed after this, as Apache's KeepAliveTimeout.
constexpr auto kKeepAliveTimeout = std::chrono::seconds(5);
// ... or after this when other connections wait for a worker.
constexpr auto kKeepAliveTimeoutWhenBusy = std::chrono::seconds(1);
// Request headers larger than this close the connection.
constexpr size_t kMaxHeaderBytes = 16384;

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The method as a label value: the standard ones, else "other", so clients cannot make up
// series (or send bytes that are no valid label value).
std::string_view MethodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "other";
}

// True when a connection waits in the listen queue for a worker.
bool OthersWaiting(int listen_fd) {
  pollfd p{listen_fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

// Reads until buf holds a whole request head (up to "\r\n\r\n"). Returns its end, or npos when
// the connection closed, broke, sent too much, or stayed idle past the keep-alive timeout.
size_t ReadHead(int fd, int listen_fd, std::string& buf) {
  char chunk[4096];
  const auto idle_since = std::chrono::steady_clock::now();
  for (;;) {
    if (const size_t end = buf.find("\r\n\r\n"); end != std::string::npos) return end;
    if (buf.size() > kMaxHeaderBytes) return std::string::npos;
    pollfd p[2] = {{fd, POLLIN, 0}, {g_signal_fd, POLLIN, 0}};
    const int r = poll(p, 2, 100);
    if (r < 0 && errno != EINTR) return std::string::npos;
    if (r <= 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      // Idle between requests. Closing here races the client's next request (it may be on the
      // wire already, and the client sees it fail), so it is only done after a timeout, or at
      // once when the worker is stopping and the client has sent nothing of a next request.
      const bool stopping = Stopping();  // also drains the signalfd that woke the poll
      const auto idle = std::chrono::steady_clock::now() - idle_since;
      if (buf.empty() && (stopping || idle >= kKeepAliveTimeout ||
                          (idle >= kKeepAliveTimeoutWhenBusy && OthersWaiting(listen_fd)))) {
        return std::string::npos;
      }
      if (!buf.empty() && idle >= kKeepAliveTimeout) return std::string::npos;
      continue;
    }
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::string::npos;
    buf.append(chunk, static_cast<size_t>(n));
  }
}

// Discards n bytes of request body (from buf first). False when the connection ends first.
bool SkipBody(int fd, std::string& buf, size_t n) {
  const size_t from_buf = std::min(n, buf.size());
  buf.erase(0, from_buf);
  n -= from_buf;
  char chunk[4096];
  while (n > 0) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(kKeepAliveTimeout / std::chrono::milliseconds(1))) <= 0) {
      return false;
    }
    const ssize_t r = recv(fd, chunk, std::min(n, sizeof chunk), 0);
    if (r <= 0) return false;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Serves one connection until it closes, a response closes it, or it idles out.
//
// One worker serves one connection at a time (the pre-fork model), so a keep-alive client holds
// its worker. The worker gives the connection up cleanly rather than starving the connections
// that queue behind it: when another connection waits to be accepted, the response in hand says
// "Connection: close" and the worker closes after it. That never loses a request: a client
// reconnects for its next one. Keep-alive stays on while no one else waits.
void ServeConnection(int fd, int listen_fd, const Metrics& m) {
  std::string buf;
  for (int served = 0; served < kMaxKeepAliveRequests;) {
    const size_t end = ReadHead(fd, listen_fd, buf);
    if (end == std::string::npos) return;
    const auto start = std::chrono::steady_clock::now();
    const std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    const size_t sp1 = head.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? sp1 : head.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) return;
    const std::string method = head.substr(0, sp1);
    const std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string version = head.substr(sp2 + 1, head.find("\r\n") - sp2 - 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return;
    const std::string lower = Lower(head);
    bool keep_alive = version == "HTTP/1.1"
                          ? lower.find("\r\nconnection: close") == std::string::npos
                          : lower.find("\r\nconnection: keep-alive") != std::string::npos;
    // A body is read past (Content-Length only; a chunked one ends the connection after this).
    if (lower.find("\r\ntransfer-encoding:") != std::string::npos) keep_alive = false;
    if (const size_t cl = lower.find("\r\ncontent-length:"); cl != std::string::npos) {
      const long long n = std::atoll(lower.c_str() + cl + 17);
      if (n < 0 || !SkipBody(fd, buf, static_cast<size_t>(n))) return;
    }
    ++served;
    if (served >= kMaxKeepAliveRequests || Stopping() || OthersWaiting(listen_fd)) {
      keep_alive = false;
    }

    auto in_flight = m.in_flight->Labels().TrackInProgress();
    if (target == "/crash") _exit(3);
    if (target.rfind("/slow", 0) == 0) {
      const size_t ms = target.find("ms=");
      const long wait = ms == std::string::npos ? 100 : std::atol(target.c_str() + ms + 3);
      // Finished even when SIGTERM arrives meanwhile: it waits in the signalfd.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(wait, 0L, 60000L)));
    }
    std::string resp = version + " 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n";
    resp += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (method != "HEAD") resp += "ok\n";
    const bool sent = WriteAll(fd, resp.data(), resp.size());
    // Recorded once the answer is sent, so the counts are the requests clients were answered.
    // (A worker killed between the two loses the count of the answer in hand.)
    if (sent) {
      m.requests->Labels(MethodLabel(method), "200").Inc();
      m.duration->Labels().Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (!sent || !keep_alive) return;
  }
}

// Closes a connection without a reset: our FIN first, then what the client still sends is read
// until its FIN (bounded), so the kernel never answers unread bytes with a reset that would
// destroy the response before the client read it.
void LingeringClose(int fd) {
  shutdown(fd, SHUT_WR);
  char drain[512];
  for (int i = 0; i < 20; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0 || recv(fd, drain, sizeof drain, 0) <= 0) break;
  }
  close(fd);
}

int WorkerMain(shmetrics::Heap heap, int listen_fd, const Metrics& m, pid_t master) {
  // A worker whose master is gone (killed with SIGKILL, say) stops as on SIGTERM.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master) return 0;
  // SIGTERM and SIGINT stay blocked (as the master left them) and arrive through the signalfd.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  g_signal_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  if (g_signal_fd < 0) {
    std::fprintf(stderr, "prefork_server: worker %d: signalfd: %s\n", getpid(),
                 std::strerror(errno));
    return 1;
  }
  sigset_t others;
  sigemptyset(&others);
  sigaddset(&others, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &others, nullptr);
  try {
    heap.AttachWorker();
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "prefork_server: worker %d: %s\n", getpid(), e.what());
    return 1;
  }
  while (!Stopping()) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {g_signal_fd, POLLIN, 0}};
    if (poll(p, 2, 1000) <= 0 || (p[0].revents & POLLIN) == 0) continue;
    // The listening socket is non-blocking: the workers woken for one connection race for it.
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ServeConnection(fd, listen_fd, m);
    LingeringClose(fd);
  }
  return 0;
}

// Parses a whole decimal number in [lo, hi].
bool ParseInt(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

int Usage() {
  std::fprintf(stderr,
               "usage: prefork_server [--workers N] [--port P] [--metrics-port M] [--heap NAME] "
               "[--listen-address A]\n"
               "  --workers N          worker processes, 1..64 (default 4)\n"
               "  --port P             HTTP port, 0 picks a free one (default 8080)\n"
               "  --metrics-port M     metrics port, 0 picks a free one (default 9464)\n"
               "  --heap NAME          shared heap name (default prefork-<pid>)\n"
               "  --listen-address A   IPv4 or IPv6 address of both ports (default 127.0.0.1)\n");
  return 2;
}

// Opens a non-blocking listening socket on address:port. -1 with errno set on failure.
int Listen(const std::string& address, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* ai = nullptr;
  if (getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0) {
    errno = EINVAL;
    return -1;
  }
  const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
    const int saved = errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    errno = saved;
    return -1;
  }
  freeaddrinfo(ai);
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// The master: forks the workers, respawns the dead, and on SIGTERM or SIGINT stops them and waits
// for each to finish its request in flight. Signals arrive through sigwait (blocked in `sigs`).
int Supervise(shmetrics::Heap& heap, int listen_fd, const Metrics& m, int workers,
              const sigset_t& sigs) {
  std::map<pid_t, std::chrono::steady_clock::time_point> children;
  const pid_t master = getpid();
  auto spawn = [&] {
    const pid_t pid = fork();
    if (pid == 0) _exit(WorkerMain(heap, listen_fd, m, master));
    if (pid < 0) {
      std::fprintf(stderr, "prefork_server: fork: %s\n", std::strerror(errno));
      return false;
    }
    children[pid] = std::chrono::steady_clock::now();
    return true;
  };
  for (int i = 0; i < workers; ++i) {
    if (!spawn()) {
      for (const auto& [pid, _] : children) kill(pid, SIGKILL);
      while (waitpid(-1, nullptr, 0) > 0) {
      }
      return 1;
    }
  }
  bool stopping = false;
  while (!children.empty()) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
      stopping = true;
      for (const auto& [pid, _] : children) kill(pid, SIGTERM);
    }
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      const auto it = children.find(pid);
      if (it == children.end()) continue;
      const bool died_young =
          std::chrono::steady_clock::now() - it->second < std::chrono::seconds(1);
      children.erase(it);
      if (stopping) continue;
      // Don't spin when workers die as they start (say, the heap has no free worker slot).
      if (died_young) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      // The replacement claims the lowest free worker id: the one the dead worker had.
      if (!spawn() && children.empty()) return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 4;
  int port = 8080, metrics_port = 9464;
  std::string heap_name = "prefork-" + std::to_string(getpid());
  std::string address = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    }
    if (i + 1 >= argc) return Usage();
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--workers") {
      ok = ParseInt(v, 1, 64, &workers);
    } else if (a == "--port") {
      ok = ParseInt(v, 0, 65535, &port);
    } else if (a == "--metrics-port") {
      ok = ParseInt(v, 0, 65535, &metrics_port);
    } else if (a == "--heap") {
      heap_name = v;
    } else if (a == "--listen-address") {
      address = v;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "prefork_server: bad option %s %s\n", a.c_str(), v.c_str());
      return Usage();
    }
  }

  // Blocked in the master, which takes them with sigwait, and in the workers, which inherit the
  // mask and read SIGTERM and SIGINT from a signalfd.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGCHLD);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);

  std::optional<shmetrics::Heap> heap;
  int rc = 1;
  try {
    heap = shmetrics::Heap::Create(heap_name);
    shmetrics::Registry registry(*heap);
    const Metrics m{
        &registry.AddCounter("http_requests", "HTTP requests served", {"method", "code"}),
        &registry.AddHistogram("http_request_duration", "Time to serve a request", {},
                               {.unit = "seconds"}),
        &registry.AddGauge("http_requests_in_flight", "Requests being served, by worker", {},
                           {.mode = shmetrics::GaugeMode::kLiveAll}),
    };
    shmetrics::HttpExposer exposer(
        *heap, {.address = address, .port = static_cast<uint16_t>(metrics_port)});
    const int listen_fd = Listen(address, port);
    if (listen_fd < 0) {
      std::fprintf(stderr, "prefork_server: cannot listen on %s port %d: %s\n", address.c_str(),
                   port, std::strerror(errno));
    } else {
      std::printf("port=%d metrics_port=%d\n", BoundPort(listen_fd), exposer.port());
      std::fflush(stdout);
      rc = Supervise(*heap, listen_fd, m, workers, sigs);
      close(listen_fd);
    }
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "prefork_server: %s\n", e.what());
  }
  // The heap goes with the server (a heap we did not create is not ours to remove).
  if (heap) {
    try {
      shmetrics::Heap::Remove(heap_name);
    } catch (const shmetrics::Error& e) {
      std::fprintf(stderr, "prefork_server: %s\n", e.what());
      rc = 1;
    }
  }
  return rc;
}
