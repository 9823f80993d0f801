// `shmetrics push` as a child process for the push tests: started with the arguments given,
// its stderr kept in a file, its resident memory read from /proc.
#ifndef SHMETRICS_TESTS_PUSH_PUSH_PROCESS_H_
#define SHMETRICS_TESTS_PUSH_PUSH_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "util/subprocess.h"

namespace shmetrics::testing {

class PushProcess {
 public:
  // Runs `shmetrics push ARGS...` and waits (bounded) for it to say it started, or to exit.
  explicit PushProcess(std::vector<std::string> args) {
    args.insert(args.begin(), {std::string(SHMETRICS_BINARY_DIR) + "/src/shmetrics", "push"});
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    const int err_fd = mkstemp(err_path_);
    EXPECT_GE(err_fd, 0);
    fflush(stdout);
    fflush(stderr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err_fd, STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      close(err_fd);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err_fd);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      if (read(out[0], &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    close(out[0]);
    started_ = line.rfind("pushing to ", 0) == 0;
  }
  ~PushProcess() {
    if (pid_ > 0) Stop();
    unlink(err_path_);
  }
  PushProcess(const PushProcess&) = delete;
  PushProcess& operator=(const PushProcess&) = delete;

  // True once it printed "pushing to URL".
  bool started() const { return started_; }
  pid_t pid() const { return pid_; }

  // SIGTERM (a last push, then exit); the exit code.
  int Stop() {
    kill(pid_, SIGTERM);
    const int rc = WaitChild(pid_);
    pid_ = -1;
    return rc;
  }
  // Waits (bounded) for it to exit by itself; the exit code, -1 if it did not.
  int Wait() {
    const int rc = WaitChild(pid_, std::chrono::seconds(60));
    pid_ = -1;
    return rc;
  }
  std::string Stderr() const {
    std::ifstream in(err_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // Its resident set size (VmRSS) in KiB, -1 when it cannot be read.
  long RssKiB() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool started_ = false;
  char err_path_[40] = "/tmp/shmetrics_push_err_XXXXXX";
};

// How often `needle` occurs in `text`.
inline int Occurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_PUSH_PUSH_PROCESS_H_
