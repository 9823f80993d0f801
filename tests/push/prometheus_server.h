// A real Prometheus server (Debian's /usr/bin/prometheus) as a remote-write receiver for the
// push tests, optionally behind TLS and basic authentication, and its query API.
#ifndef SHMETRICS_TESTS_PUSH_PROMETHEUS_SERVER_H_
#define SHMETRICS_TESTS_PUSH_PROMETHEUS_SERVER_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "push/samples.h"
#include "util/subprocess.h"

namespace shmetrics::testing {

inline constexpr char kPrometheus[] = "/usr/bin/prometheus";

// A Prometheus that only receives remote writes, on a port found free (tried again on another
// when the one found was taken meanwhile). With a web config (--web.config.file: TLS, basic
// auth), `user` and `password` are what the test itself queries it with, over TLS when the
// config has tls_server_config (its certificate is not checked by the test's queries).
class Prometheus {
 public:
  explicit Prometheus(const std::string& dir, const std::string& web_config = "",
                      const std::string& user = "", const std::string& password = "")
      : dir_(dir),
        scheme_(web_config.find("tls_server_config") != std::string::npos ? "https" : "http"),
        user_(user),
        password_(password) {
    Shell("rm -rf " + dir_ + " && mkdir -p " + dir_);
    std::ofstream(dir_ + "/prometheus.yml") << "global:\n  scrape_interval: 1h\n";
    if (!web_config.empty()) {
      web_config_ = dir_ + "/web.yml";
      std::ofstream(web_config_) << web_config;
    }
    for (int attempt = 0; attempt < 10 && pid_ <= 0; ++attempt) Start();
  }
  ~Prometheus() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      WaitChild(pid_, std::chrono::seconds(60));
    }
    Shell("rm -rf " + dir_);
  }

  bool up() const { return pid_ > 0; }
  std::string write_url() const { return scheme_ + "://" + address_ + "/api/v1/write"; }
  const std::string& address() const { return address_; }

  // The query's result as SampleKeys, without the labels job and instance.
  std::multiset<std::string> Query(const std::string& promql) const {
    const std::string script =
        "import base64,json,ssl,sys,urllib.request,urllib.parse\n"
        "u='" +
        scheme_ + "://" + address_ +
        "/api/v1/query?'+urllib.parse.urlencode({'query':sys.argv[1]})\n"
        "q=urllib.request.Request(u)\n"
        "if sys.argv[2]:\n"
        "  q.add_header('Authorization','Basic '+base64.b64encode(sys.argv[2].encode()).decode())\n"
        "c=ssl._create_unverified_context()\n"
        "for r in json.load(urllib.request.urlopen(q,timeout=10,context=c))['data']['result']:\n"
        "  m=r['metric']\n"
        "  print('\\x01'.join(k+'\\x02'+v for k,v in m.items() if k not in ('job','instance'))"
        "+'\\x03'+r['value'][1])\n";
    std::ofstream(dir_ + "/query.py") << script;
    const std::string out = Shell("/usr/bin/python3 " + dir_ + "/query.py '" + promql + "' '" +
                                  (user_.empty() ? "" : user_ + ":" + password_) + "' 2>/dev/null");
    std::multiset<std::string> keys;
    size_t pos = 0;
    while (pos < out.size()) {
      const size_t nl = out.find('\n', pos);
      const std::string line = out.substr(pos, nl - pos);
      pos = nl == std::string::npos ? out.size() : nl + 1;
      const size_t value_at = line.find('\x03');
      if (value_at == std::string::npos) continue;
      ::shmetrics::testing::LabelSet labels;
      for (size_t i = 0; i < value_at;) {
        const size_t end = std::min(line.find('\x01', i), value_at);
        const std::string pair = line.substr(i, end - i);
        const size_t sep = pair.find('\x02');
        labels.emplace_back(pair.substr(0, sep), pair.substr(sep + 1));
        i = end + 1;
      }
      keys.insert(SampleKey(labels, std::strtod(line.c_str() + value_at + 1, nullptr)));
    }
    return keys;
  }

 private:
  void Start() {
    const std::string port = Shell(
        "/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
        "print(s.getsockname()[1])'");
    address_ = "127.0.0.1:" + port.substr(0, port.find('\n'));
    const std::string log = dir_ + "/prometheus.log";
    const pid_t pid = fork();
    if (pid == 0) {
      freopen(log.c_str(), "w", stderr);
      execl(kPrometheus, "prometheus", ("--config.file=" + dir_ + "/prometheus.yml").c_str(),
            ("--storage.tsdb.path=" + dir_ + "/data").c_str(),
            ("--web.listen-address=" + address_).c_str(), "--web.enable-remote-write-receiver",
            web_config_.empty() ? static_cast<char*>(nullptr)
                                : ("--web.config.file=" + web_config_).c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Ready when /-/ready answers; gone when it exited (the port was taken).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) return;
      int rc = -1;
      const std::string auth = user_.empty() ? "" : " -u '" + user_ + ":" + password_ + "'";
      Shell("curl -skf -o /dev/null" + auth + " " + scheme_ + "://" + address_ + "/-/ready", &rc);
      if (rc == 0) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    kill(pid, SIGKILL);
    WaitChild(pid);
  }

  const std::string dir_;
  const std::string scheme_, user_, password_;
  std::string web_config_;
  std::string address_;
  pid_t pid_ = -1;
};

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_PUSH_PROMETHEUS_SERVER_H_
