// Test helpers for multi-process tests: fork a child that runs a function, wait with a timeout.
#ifndef SHMETRICS_TESTS_UTIL_SUBPROCESS_H_
#define SHMETRICS_TESTS_UTIL_SUBPROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace shmetrics::testing {

// True in AddressSanitizer and ThreadSanitizer builds, where tests that size their work by time
// scale it down (never their assertions).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
// True in ThreadSanitizer builds, whose shadow memory is part of every process's RSS.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitized = true;
#else
inline constexpr bool kThreadSanitized = false;
#endif

// Forks; the child runs f and _exits with its result (so no gtest or atexit state runs twice).
inline pid_t ForkChild(const std::function<int()>& f) {
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    int rc = 1;
    rc = f();
    _exit(rc);
  }
  return pid;
}

// Waits for pid; returns its exit code, 128+signal when killed, or -1 after the timeout (the
// child is then killed).
inline int WaitChild(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Runs a shell command and returns its standard output; *exit_code gets its exit status (-1 when
// it did not exit normally).
inline std::string Shell(const std::string& cmd, int* exit_code = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  if (exit_code != nullptr) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// A unique name for a heap used by one test.
inline std::string UniqueHeapName(const char* tag) {
  static int counter = 0;
  return std::string("test-") + tag + "-" + std::to_string(getpid()) + "-" +
         std::to_string(++counter);
}

// A child that blocks until release_fd is closed (or the test process dies).
struct BlockedChild {
  pid_t pid = -1;
  int release_fd = -1;

  static BlockedChild Start() {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    BlockedChild c;
    c.pid = fork();
    if (c.pid == 0) {
      close(p[1]);
      char b;
      while (read(p[0], &b, 1) > 0) {
      }
      _exit(0);
    }
    close(p[0]);
    c.release_fd = p[1];
    return c;
  }
  void StopAndReap() {
    close(release_fd);
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
  }
};

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_UTIL_SUBPROCESS_H_
