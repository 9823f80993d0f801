// Helpers for the load tests: the built `shmetrics serve` as a real child process (so its memory
// can be read from /proc), forked updater processes, and the file-descriptor budget.
#ifndef SHMETRICS_TESTS_LOAD_SERVE_HELPERS_H_
#define SHMETRICS_TESTS_LOAD_SERVE_HELPERS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace shmetrics::testing {

// `shmetrics serve --listen 127.0.0.1:0 ARGS...`, started by the constructor, which waits (up to
// 60 s) for its "listening on" line; when none comes, it waits for the process to exit. The
// destructor sends SIGTERM to a running server and waits for the exit.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args);
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // True once the server printed its port. Otherwise output() holds what it said.
  bool ok() const { return port_ != 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& output() const { return output_; }

  // SIGTERM, then the exit status (see WaitChild). Idempotent.
  int Stop();

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int exit_code_ = -1;
  std::string output_;
};

// A field of /proc/PID/status in KiB (e.g. "VmRSS", "VmHWM"); -1 when unreadable.
long ProcStatusKib(pid_t pid, const std::string& field);

// Raises the RLIMIT_NOFILE soft limit to the hard limit and returns the new soft limit.
long RaiseDescriptorLimit();

// Forks `n` processes that each call `init()` once, then `update(i)` for i = 0, 1, ... as fast
// as they can until `duration` passes (checked every 1024 calls); returns their pids. Each
// exits 0.
std::vector<pid_t> ForkUpdaters(int n, std::chrono::milliseconds duration,
                                const std::function<void()>& init,
                                const std::function<void(int)>& update);

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_LOAD_SERVE_HELPERS_H_
