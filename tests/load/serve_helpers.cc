#include "load/serve_helpers.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "util/subprocess.h"

namespace shmetrics::testing {

ServeProcess::ServeProcess(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics", "serve",
                                   "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  int out[2];
  if (::pipe(out) != 0) return;
  fflush(stdout);
  fflush(stderr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> c_argv;
    for (std::string& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    ::execv(c_argv[0], c_argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (output_.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    output_.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);  // the server's later writes to stdout fail quietly (it writes none)
  const std::string prefix = "listening on 127.0.0.1:";
  if (output_.rfind(prefix, 0) == 0) {
    port_ = static_cast<uint16_t>(std::atoi(output_.c_str() + prefix.size()));
  } else if (pid_ > 0) {
    // It failed to start: collect its exit status rather than signal it.
    exit_code_ = WaitChild(pid_, std::chrono::seconds(60));
    pid_ = -1;
  }
}

ServeProcess::~ServeProcess() { Stop(); }

int ServeProcess::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    exit_code_ = WaitChild(pid_, std::chrono::seconds(60));
    pid_ = -1;
  }
  return exit_code_;
}

long ProcStatusKib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

long RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur == RLIM_INFINITY ? 1L << 20 : static_cast<long>(limit.rlim_cur);
}

std::vector<pid_t> ForkUpdaters(int n, std::chrono::milliseconds duration,
                                const std::function<void()>& init,
                                const std::function<void(int)>& update) {
  std::vector<pid_t> pids;
  for (int w = 0; w < n; ++w) {
    pids.push_back(ForkChild([&] {
      init();
      const auto end = std::chrono::steady_clock::now() + duration;
      for (int i = 0;; ++i) {
        update(i);
        if ((i & 1023) == 0 && std::chrono::steady_clock::now() > end) return 0;
      }
    }));
  }
  return pids;
}

}  // namespace shmetrics::testing
