#include "cli/serve.h"

#include <signal.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "cli/served_heaps.h"
#include "collect/collector.h"
#include "expose/encoder.h"
#include "http_exposer/family_source.h"
#include "shmetrics/error.h"
#include "shmetrics/heap.h"
#include "shmetrics/http_exposer.h"

namespace shmetrics::cli {
namespace {

// Splits "ADDR:PORT" (or "[V6ADDR]:PORT").
std::optional<Failure> ParseListen(const std::string& listen, HttpExposerOptions* options) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return Usage(absl::StrCat("serve: --listen wants ADDR:PORT, got \"", listen, "\""));
  }
  std::string address = listen.substr(0, colon);
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  const std::string port_text = listen.substr(colon + 1);
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9' || port > 65535) {
      return Usage(absl::StrCat("serve: bad port in --listen \"", listen, "\""));
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port > 65535) return Usage(absl::StrCat("serve: bad port in --listen \"", listen, "\""));
  if (address.empty())
    return Usage(absl::StrCat("serve: bad address in --listen \"", listen, "\""));
  options->address = address;
  options->port = static_cast<uint16_t>(port);
  return std::nullopt;
}

}  // namespace

std::optional<Failure> Serve(const Args& args) {
  if (args.heaps.empty()) return Usage("serve: missing --heap");
  HttpExposerOptions options;
  if (args.listen) {
    if (auto f = ParseListen(*args.listen, &options)) return f;
  }
  if (args.web_config_file) options.web = LoadWebConfigFile(*args.web_config_file);
  options.created_samples = !args.no_created;
  // Each connection holds a descriptor: allow as many as the hard limit permits, so the
  // connection cap, not a default soft limit of 1024, decides how many clients are served.
  if (rlimit nofile{};
      getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // Every heap opens now, or serve fails as it would at a scrape; only a heap that does not
  // exist yet is waited for (unless --no-wait).
  std::shared_ptr<ServedHeaps> heaps;
  if (auto f = OpenServedHeaps(args, {"serve", "serves", "served", "serving"}, &heaps)) return f;

  // Blocked before the exposer starts its thread, which inherits the mask: the signals then
  // wait for sigwait below instead of killing the process or landing on the server thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return Failure{kExitRuntime, "serve: cannot block signals"};
  }
  HttpExposer exposer(
      internal::FamilySource{
          .collect = [heaps](expose::Encoder& enc,
                             const collect::CollectOptions& o) { return heaps->Collect(enc, o); },
          .concurrent = true},
      options);
  const bool v6 = options.address.find(':') != std::string::npos;
  std::cout << "listening on " << (v6 ? "[" : "") << options.address << (v6 ? "]" : "") << ":"
            << exposer.port() << std::endl;
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  return std::nullopt;  // ~HttpExposer stops the server and joins its thread.
}

}  // namespace shmetrics::cli
