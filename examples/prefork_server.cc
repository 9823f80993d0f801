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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "shmetrics/error.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;

struct Metrics {
  shmetrics::CounterFamily* requests;
  shmetrics::HistogramFamily* duration;
  shmetrics::GaugeFamily* in_flight;
};

// A bound on the requests of one keep-alive connection, as Apache's MaxKeepAliveRequests.
constexpr int kMaxKeepAliveRequests = 1000000;

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
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

// Serves one connection until it closes, a request asks to close, or the worker is stopping.
void ServeConnection(int fd, int listen_fd, const Metrics& m) {
  std::string buf;
  char chunk[4096];
  for (int served = 0; served < kMaxKeepAliveRequests;) {
    size_t end;
    const auto idle_since = std::chrono::steady_clock::now();
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > 16384) return;
      pollfd p[2] = {{fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
      const int r = poll(p, 2, 50);
      if (r < 0) return;
      if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        const auto idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - idle_since)
                                 .count();
        // Waiting connections wake this poll at once; don't spin on them.
        if (p[1].revents != 0 && idle_ms < 200) usleep(10000);
        // An idle keep-alive client yields the worker to waiting connections (after a grace
        // period), and to nobody after the keep-alive timeout, like Apache's KeepAliveTimeout.
        if (g_stop || idle_ms >= 5000 || (buf.empty() && idle_ms >= 200 && p[1].revents != 0)) {
          return;
        }
        continue;
      }
      const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    const size_t sp1 = head.find(' ');
    const size_t sp2 = head.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) return;
    const std::string method = head.substr(0, sp1);
    const std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string version = head.substr(sp2 + 1, head.find("\r\n") - sp2 - 1);
    const std::string lower = Lower(head);
    bool keep_alive = version == "HTTP/1.1"
                          ? lower.find("connection: close") == std::string::npos
                          : lower.find("connection: keep-alive") != std::string::npos;
    ++served;
    if (served >= kMaxKeepAliveRequests || g_stop) keep_alive = false;
    shmetrics::Gauge in_flight = m.in_flight->Labels();
    auto tracker = in_flight.TrackInProgress();
    if (target == "/crash") _exit(3);
    if (target.rfind("/slow", 0) == 0) {
      const size_t ms = target.find("ms=");
      const long wait = ms == std::string::npos ? 100 : std::atol(target.c_str() + ms + 3);
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(wait, 60000L)));
    }
    const bool head_only = method == "HEAD";
    std::string resp = version == "HTTP/1.1" ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n";
    resp += "Content-Type: text/plain\r\nContent-Length: 3\r\n";
    resp += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (!head_only) resp += "ok\n";
    const bool sent = WriteAll(fd, resp.data(), resp.size());
    // Recorded once the client has its answer, so the counts match what clients saw.
    if (sent) {
      m.requests->Labels(method, "200").Inc();
      m.duration->Labels().Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (!sent || !keep_alive) return;
  }
}

int WorkerMain(shmetrics::Heap heap, int listen_fd, const Metrics& m) {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  heap.AttachWorker();
  while (!g_stop) {
    pollfd p{listen_fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ServeConnection(fd, listen_fd, m);
    // Lingering close: send our FIN, then drain what the client still sends until its FIN, so
    // the kernel never answers unread bytes with a reset the client would see as an error.
    shutdown(fd, SHUT_WR);
    char drain[512];
    for (int i = 0; i < 20; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0 || recv(fd, drain, sizeof drain, 0) <= 0) break;
    }
    close(fd);
  }
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: prefork_server --workers N --port P --metrics-port M [--heap NAME] "
               "[--listen-address A]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 4;
  int port = 8080, metrics_port = 9464;
  std::string heap_name = "prefork-" + std::to_string(getpid());
  std::string address = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help") return Usage() - 2;
    if (i + 1 >= argc) return Usage();
    const std::string v = argv[++i];
    if (a == "--workers") {
      workers = std::atoi(v.c_str());
    } else if (a == "--port") {
      port = std::atoi(v.c_str());
    } else if (a == "--metrics-port") {
      metrics_port = std::atoi(v.c_str());
    } else if (a == "--heap") {
      heap_name = v;
    } else if (a == "--listen-address") {
      address = v;
    } else {
      return Usage();
    }
  }
  if (workers < 1 || workers > 64) return Usage();

  // Signals are taken by sigwait in the master; workers unblock them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGCHLD);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);

  try {
    shmetrics::Heap heap = shmetrics::Heap::Create(heap_name);
    shmetrics::Registry registry(heap);
    Metrics m{
        &registry.AddCounter("http_requests", "HTTP requests served", {"method", "code"}),
        &registry.AddHistogram("http_request_duration", "Time to serve a request", {},
                               {.unit = "seconds"}),
        &registry.AddGauge("http_requests_in_flight", "Requests being served, by worker", {},
                           {.mode = shmetrics::GaugeMode::kLiveAll}),
    };
    shmetrics::HttpExposer exposer(
        heap, {.address = address, .port = static_cast<uint16_t>(metrics_port)});

    const int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, address.c_str(), &sin.sin_addr) != 1 ||
        bind(listen_fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        listen(listen_fd, 1024) != 0) {
      std::fprintf(stderr, "prefork_server: cannot listen on %s:%d: %s\n", address.c_str(), port,
                   std::strerror(errno));
      shmetrics::Heap::Remove(heap_name);
      return 1;
    }
    socklen_t len = sizeof sin;
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&sin), &len);
    std::printf("port=%d metrics_port=%d\n", ntohs(sin.sin_port), exposer.port());
    std::fflush(stdout);

    std::map<pid_t, int> children;
    auto spawn = [&] {
      const pid_t pid = fork();
      if (pid == 0) _exit(WorkerMain(heap, listen_fd, m));
      if (pid > 0) children[pid] = 1;
    };
    for (int i = 0; i < workers; ++i) spawn();
    bool stopping = false;
    while (!children.empty()) {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (sig == SIGTERM || sig == SIGINT) {
        stopping = true;
        for (const auto& [pid, _] : children) kill(pid, SIGTERM);
      }
      pid_t pid;
      int status;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        children.erase(pid);
        // The replacement claims the lowest free worker id: the one the dead worker had.
        if (!stopping) spawn();
      }
    }
    close(listen_fd);
    shmetrics::Heap::Remove(heap_name);
    return 0;
  } catch (const shmetrics::Error& e) {
    std::fprintf(stderr, "prefork_server: %s\n", e.what());
    return 1;
  }
}
