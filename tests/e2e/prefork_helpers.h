// Test helpers for the end-to-end tests: start and stop examples/prefork_server (in its own
// process group, so a failed test leaves no worker behind) and examples/every_type, scrape them,
// parse the scrape with python's OpenMetrics parser, run a real Prometheus server against an
// endpoint, read what /proc says about a process, and find the worker process that accepted a
// given client connection.
//
// Thread safety: none needed; the tests call these from one thread.
#ifndef SHMETRICS_TESTS_E2E_PREFORK_HELPERS_H_
#define SHMETRICS_TESTS_E2E_PREFORK_HELPERS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shmetrics::testing {

// A path under the build tree, e.g. BuiltProgram("examples/prefork_server").
std::string BuiltProgram(const std::string& relative);

// A running prefork_server. The destructor kills its whole process group and removes its heap
// if a test did not stop it.
class PreforkServer {
 public:
  // Starts `prefork_server --workers N --port 0 --metrics-port 0 --heap heap` plus `extra`
  // arguments and waits (up to `timeout`) for its "port=P metrics_port=M" line. ok() tells
  // whether that worked; output() holds what it printed.
  PreforkServer(int workers, const std::string& heap, const std::vector<std::string>& extra = {},
                std::chrono::seconds timeout = std::chrono::seconds(120));
  ~PreforkServer();
  PreforkServer(const PreforkServer&) = delete;
  PreforkServer& operator=(const PreforkServer&) = delete;

  bool ok() const { return port_ > 0 && metrics_port_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& heap() const { return heap_; }
  const std::string& output() const { return output_; }

  // One scrape of /metrics in OpenMetrics text (curl; empty on failure).
  std::string Scrape() const;
  // Sends sig to the master and waits for it: its exit code, 128+signal, or -1 on timeout.
  int Stop(int sig, std::chrono::seconds timeout = std::chrono::seconds(120));

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string heap_;
  std::string output_;
};

// Starts examples/every_type over a new heap of that name and waits for its "ready": its pid, or
// -1. SIGTERM stops it; it then removes its heap.
pid_t StartEveryType(const std::string& heap);

// Whatever fails in a test, the every_type it started does not outlive it, nor does its heap: the
// destructor kills pid (unless it is -1: the test stopped it itself) and removes the heap.
struct EveryTypeReaper {
  pid_t pid;
  std::string heap;
  ~EveryTypeReaper();
};

// Debian's Prometheus server (/usr/bin/prometheus) scraping one target, 127.0.0.1:target_port,
// every second, with extra command-line flags (say --enable-feature=native-histograms), its data
// and log under dir. The destructor stops it and removes dir.
class ScrapingPrometheus {
 public:
  static bool Installed();
  ScrapingPrometheus(const std::string& dir, int target_port,
                     const std::vector<std::string>& flags = {});
  ~ScrapingPrometheus();
  ScrapingPrometheus(const ScrapingPrometheus&) = delete;
  ScrapingPrometheus& operator=(const ScrapingPrometheus&) = delete;

  // The body of GET http://<its web address><path_and_query> (curl; empty on failure).
  std::string Get(const std::string& path_and_query) const;
  // Whether its targets API shows the target up.
  bool TargetUp() const;
  // The instant query's float samples, keyed as ParseOpenMetrics keys them, without the job and
  // instance labels; empty on failure.
  std::map<std::string, double> Query(const std::string& promql) const;
  // The last lines of its log, for failure messages.
  std::string LogTail() const;

 private:
  std::string dir_;
  std::string web_;
  pid_t pid_ = -1;
};

// The value of the sample line `series value` in an exposition, e.g.
// SampleValue(text, "http_requests_total{code=\"200\",method=\"GET\"}").
std::optional<double> SampleValue(const std::string& exposition, const std::string& series);

// Every sample of an OpenMetrics exposition as parsed by python3-prometheus-client's parser,
// keyed `name{label="value",...}` with labels sorted by name. nullopt (and *error set) when the
// parser rejects the text.
std::optional<std::map<std::string, double>> ParseOpenMetrics(const std::string& exposition,
                                                              std::string* error);

// What /proc says about one process, in the units of the process_* metrics.
struct ProcFacts {
  double resident_bytes = 0;  // statm resident pages * page size
  double threads = 0;         // status Threads
  double open_fds = 0;        // entries of fd/
  double max_fds = 0;         // limits, soft "Max open files"
  double start_time = 0;      // btime + starttime / CLK_TCK
  double cpu_seconds = 0;     // (utime + stime) / CLK_TCK
};
std::optional<ProcFacts> ReadProcFacts(pid_t pid);

// The process among `pids` holding the server side of the connected client socket client_fd
// (found through sock_diag and /proc/<pid>/fd), or -1 when none does (yet).
pid_t ConnectionHolder(int client_fd, int server_port, const std::vector<pid_t>& pids);

// A TCP connection to 127.0.0.1:port with `request` written to it; -1 on failure.
int SendRequest(int port, const std::string& request);
// Reads until the peer closes or resets the connection (or `timeout` passes): what arrived.
// *closed tells whether the peer closed.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, bool* closed);

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_E2E_PREFORK_HELPERS_H_
