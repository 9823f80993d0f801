#include "e2e/prefork_helpers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "util/subprocess.h"

namespace shmetrics::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value after `key` on the line that starts with it, e.g. ("Threads:") in a status file.
std::optional<double> FieldAfter(const std::string& text, const std::string& key) {
  size_t at = 0;
  if (text.compare(0, key.size(), key) != 0) {
    at = text.find("\n" + key);
    if (at == std::string::npos) return std::nullopt;
    ++at;
  }
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

// Lines `key value` into a map.
std::map<std::string, double> KeyedSamples(const std::string& out) {
  std::map<std::string, double> samples;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    samples[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return samples;
}

}  // namespace

std::string BuiltProgram(const std::string& relative) {
  return std::string(SHMETRICS_BINARY_DIR) + "/" + relative;
}

EveryTypeReaper::~EveryTypeReaper() {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  WaitChild(pid);
  Heap::Remove(heap);
}

pid_t StartEveryType(const std::string& heap) {
  int out[2];
  if (pipe(out) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    const std::string bin = BuiltProgram("examples/every_type");
    execl(bin.c_str(), "every_type", "--heap", heap.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  char buf[16] = {};
  const ssize_t n = read(out[0], buf, 6);
  close(out[0]);
  return n == 6 && std::string(buf, 6) == "ready\n" ? pid : -1;
}

bool ScrapingPrometheus::Installed() { return access("/usr/bin/prometheus", X_OK) == 0; }

ScrapingPrometheus::ScrapingPrometheus(const std::string& dir, int target_port,
                                       const std::vector<std::string>& flags)
    : dir_(dir) {
  Shell("rm -rf " + dir_ + " && mkdir -p " + dir_);
  std::ofstream(dir_ + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: shmetrics\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << target_port << "']\n";
  // A free port for Prometheus's own web server.
  const std::string port = Shell(
      "/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
      "print(s.getsockname()[1])'");
  web_ = "127.0.0.1:" + port.substr(0, port.find('\n'));
  std::vector<std::string> args = {"prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                                   "--storage.tsdb.path=" + dir_ + "/data",
                                   "--web.listen-address=" + web_};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_ = fork();
  if (pid_ == 0) {
    const std::string log = dir_ + "/prometheus.log";
    if (freopen(log.c_str(), "w", stderr) == nullptr) _exit(126);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/usr/bin/prometheus", argv.data());
    _exit(127);
  }
}

ScrapingPrometheus::~ScrapingPrometheus() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    WaitChild(pid_, std::chrono::seconds(30));
  }
  Shell("rm -rf " + dir_);
}

std::string ScrapingPrometheus::Get(const std::string& path_and_query) const {
  return Shell("curl -s -g 'http://" + web_ + path_and_query + "'");
}

bool ScrapingPrometheus::TargetUp() const {
  return Get("/api/v1/targets").find("\"health\":\"up\"") != std::string::npos;
}

std::map<std::string, double> ScrapingPrometheus::Query(const std::string& promql) const {
  const std::string out = Shell(
      "/usr/bin/python3 -c 'import json,sys,urllib.parse,urllib.request\n"
      "u=\"http://" +
      web_ +
      "/api/v1/query?\"+urllib.parse.urlencode({\"query\":sys.argv[1]})\n"
      "for r in json.load(urllib.request.urlopen(u,timeout=10))[\"data\"][\"result\"]:\n"
      "  if \"value\" not in r: continue\n"
      "  m=r[\"metric\"]; n=m.pop(\"__name__\",\"\"); m.pop(\"job\",0); m.pop(\"instance\",0)\n"
      "  l=\",\".join(k+\"=\\\"\"+v+\"\\\"\" for k,v in sorted(m.items()))\n"
      "  print(n+\"{\"+l+\"}\", repr(float(r[\"value\"][1])))\n' '" +
      promql + "' 2>/dev/null");
  return KeyedSamples(out);
}

std::string ScrapingPrometheus::LogTail() const {
  return Shell("tail -20 " + dir_ + "/prometheus.log");
}

PreforkServer::PreforkServer(int workers, const std::string& heap,
                             const std::vector<std::string>& extra, std::chrono::seconds timeout)
    : heap_(heap) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return;
  std::vector<std::string> args = {
      "prefork_server", "--workers", std::to_string(workers), "--port", "0", "--metrics-port", "0",
      "--heap",         heap};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string bin = BuiltProgram("examples/prefork_server");
  fflush(stdout);
  fflush(stderr);
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);  // its own group: the destructor can kill master and workers at once
    dup2(out[1], 1);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  out_fd_ = out[0];
  if (pid_ < 0) return;
  setpgid(pid_, pid_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (output_.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) break;
    output_.append(buf, static_cast<size_t>(n));
  }
  if (std::sscanf(output_.c_str(), "port=%d metrics_port=%d", &port_, &metrics_port_) != 2) {
    port_ = metrics_port_ = 0;
  }
}

PreforkServer::~PreforkServer() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    WaitChild(pid_, std::chrono::seconds(30));
    try {
      Heap::Remove(heap_);
    } catch (const Error&) {
    }
  }
  if (out_fd_ >= 0) close(out_fd_);
}

std::string PreforkServer::Scrape() const {
  return Shell(
      "curl -sS --max-time 60 -H 'Accept: application/openmetrics-text;version=1.0.0' "
      "http://127.0.0.1:" +
      std::to_string(metrics_port_) + "/metrics");
}

int PreforkServer::Stop(int sig, std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  const int rc = WaitChild(pid_, timeout);
  if (rc != -1) {
    // The master is gone; a worker left behind would be a bug the test reports, not leaks.
    kill(-pid_, SIGKILL);
    pid_ = -1;
  }
  return rc;
}

std::optional<double> SampleValue(const std::string& exposition, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const size_t at = exposition.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(exposition.c_str() + at + key.size(), nullptr);
}

std::optional<std::map<std::string, double>> ParseOpenMetrics(const std::string& exposition,
                                                              std::string* error) {
  char path[] = "/tmp/shmetrics-prefork-scrape-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return std::nullopt;
  {
    std::ofstream(path) << exposition;
    close(fd);
  }
  int rc = -1;
  const std::string out = Shell(
      "/usr/bin/python3 -c 'import sys\n"
      "from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n"
      "for f in p(open(sys.argv[1]).read()):\n"
      "  for s in f.samples:\n"
      "    l = \",\".join(k + \"=\\\"\" + v + \"\\\"\" for k, v in sorted(s.labels.items()))\n"
      "    print(s.name + \"{\" + l + \"}\", repr(float(s.value)))\n' " +
          std::string(path) + " 2>&1",
      &rc);
  unlink(path);
  if (rc != 0) {
    if (error != nullptr) *error = out;
    return std::nullopt;
  }
  return KeyedSamples(out);
}

std::optional<ProcFacts> ReadProcFacts(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::string stat = ReadFile(dir + "/stat");
  const std::string status = ReadFile(dir + "/status");
  const std::string statm = ReadFile(dir + "/statm");
  const std::string limits = ReadFile(dir + "/limits");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || status.empty() || statm.empty() || limits.empty()) {
    return std::nullopt;
  }
  // Fields after the command name: state is field 3; utime 14, stime 15, starttime 22.
  std::istringstream fields(stat.substr(paren + 2));
  std::vector<std::string> f(3);  // f[3] is field 3
  for (std::string w; fields >> w;) f.push_back(w);
  if (f.size() < 23) return std::nullopt;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto btime = FieldAfter(ReadFile("/proc/stat"), "btime ");
  const auto threads = FieldAfter(status, "Threads:");
  if (!btime || !threads) return std::nullopt;
  ProcFacts facts;
  facts.cpu_seconds =
      (std::strtod(f[14].c_str(), nullptr) + std::strtod(f[15].c_str(), nullptr)) / tick;
  facts.start_time = *btime + std::strtod(f[22].c_str(), nullptr) / tick;
  facts.threads = *threads;
  unsigned long size = 0, resident = 0;
  if (std::sscanf(statm.c_str(), "%lu %lu", &size, &resident) != 2) return std::nullopt;
  facts.resident_bytes = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  const size_t mof = limits.find("Max open files");
  if (mof == std::string::npos) return std::nullopt;
  std::istringstream lim(limits.substr(mof + 14));
  std::string soft;
  lim >> soft;
  facts.max_fds = soft == "unlimited" ? 18446744073709551615.0 : std::strtod(soft.c_str(), nullptr);
  DIR* d = opendir((dir + "/fd").c_str());
  if (d == nullptr) return std::nullopt;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') facts.open_fds += 1;
  }
  closedir(d);
  return facts;
}

pid_t ConnectionHolder(int client_fd, int server_port, const std::vector<pid_t>& pids) {
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (getsockname(client_fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return -1;
  // The server side of the connection, looked up by the kernel through sock_diag: one exact
  // lookup, fast even when thousands of TIME_WAIT sockets make /proc/net/tcp slow to read.
  const int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = AF_INET;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  msg.req.id.idiag_sport = htons(static_cast<uint16_t>(server_port));
  msg.req.id.idiag_dport = local.sin_port;
  msg.req.id.idiag_src[0] = local.sin_addr.s_addr;
  msg.req.id.idiag_dst[0] = local.sin_addr.s_addr;
  msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  alignas(nlmsghdr) char reply[8192];
  ssize_t n = -1;
  if (send(nl, &msg, sizeof msg, 0) == static_cast<ssize_t>(sizeof msg)) {
    n = recv(nl, reply, sizeof reply, 0);
  }
  close(nl);
  const auto* h = reinterpret_cast<const nlmsghdr*>(reply);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr)) || !NLMSG_OK(h, static_cast<size_t>(n)) ||
      h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return -1;
  }
  const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
  if (diag->idiag_inode == 0) return -1;  // still in the accept queue
  const std::string target = "socket:[" + std::to_string(diag->idiag_inode) + "]";
  for (pid_t pid : pids) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    bool found = false;
    while (dirent* e = readdir(d)) {
      char link[128];
      const ssize_t k = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
      if (k > 0 && std::string(link, static_cast<size_t>(k)) == target) found = true;
    }
    closedir(d);
    if (found) return pid;
  }
  return -1;
}

int SendRequest(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, bool* closed) {
  std::string got;
  *closed = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

}  // namespace shmetrics::testing
