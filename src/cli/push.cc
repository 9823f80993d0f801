#include "cli/push.h"

#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "cli/served_heaps.h"
#include "collect/collector.h"
#include "collect/exposition.h"
#include "expose/encoder.h"
#include "http_exposer/family_source.h"
#include "meters/names.h"
#include "push/http_client.h"
#include "push/pushgateway.h"
#include "shm/heap_access.h"
#include "shmetrics/heap.h"
#include "shmetrics/push.h"
#include "shmetrics/remote_writer.h"

namespace shmetrics::cli {

const std::string_view kPushUsage =
    "usage: shmetrics push --heap NAME [--heap NAME2 ...] --remote-write URL [--interval 15s]\n"
    "                      [--timeout 10s] [--job J] [--instance I] [--external-label K=V ...]\n"
    "                      [--heap-label NAME] [--basic-auth-user U --basic-auth-password-file F]\n"
    "                      [--bearer-token-file F] [--tls-ca-file F] [--tls-cert-file F\n"
    "                      --tls-key-file F] [--tls-server-name NAME]\n"
    "                      [--tls-insecure-skip-verify] [--allow-other-owner]\n"
    "                      [--allow-shared-write] [--no-wait]\n"
    "\n"
    "Opens the heaps read-only and sends their series by Prometheus remote write 1.0 to URL\n"
    "(e.g. http://127.0.0.1:9090/api/v1/write) at once and then every --interval, until SIGTERM\n"
    "or SIGINT: then it sends a last push and exits 0. What is sent is what `shmetrics serve`\n"
    "would serve (several heaps merged, each series labelled with its heap), every sample\n"
    "stamped with the time of the push, labels job and instance and the external labels added\n"
    "where a series has no label of that name. A push that fails with a 5xx, 429 or network\n"
    "error is retried with capped exponential backoff until the next is due, other 4xx are not;\n"
    "each failed push is one line on stderr. Prints `pushing to URL` once started.\n"
    "As for serve, each --heap is followed by name: a heap removed and created again is pushed\n"
    "anew, one that does not exist yet is waited for (shmetrics_heap_up 0 until it does).\n"
    "  --remote-write URL         http:// or https:// URL of the remote-write receiver\n"
    "  --interval DURATION        time between pushes (default 15s; e.g. 500ms, 1m)\n"
    "  --timeout DURATION         bound on each HTTP request (default 10s)\n"
    "  --job J, --instance I      the job label (default shmetrics) and instance label (default\n"
    "                             none)\n"
    "  --external-label K=V       another label for every series; repeat for several\n"
    "  --heap-label NAME          the label naming each heap when several are pushed (default\n"
    "                             heap)\n"
    "  --basic-auth-user U        HTTP basic authentication, the password read from\n"
    "  --basic-auth-password-file F   F at every push\n"
    "  --bearer-token-file F      `Authorization: Bearer <contents of F>`, read at every push\n"
    "  --tls-ca-file F            CA certificates (PEM) for an https:// receiver (default: the\n"
    "                             system's)\n"
    "  --tls-cert-file F, --tls-key-file F   a client certificate and its key (PEM)\n"
    "  --tls-server-name NAME     the name the receiver's certificate must carry (default: the\n"
    "                             URL's host)\n"
    "  --tls-insecure-skip-verify  encrypt but do not authenticate the receiver (no certificate\n"
    "                             or name check)\n"
    "  --allow-other-owner, --allow-shared-write, --no-wait   as for serve\n"
    "\n"
    "usage: shmetrics push --heap NAME [--heap NAME2 ...] --pushgateway URL --job J\n"
    "                      [--grouping K=V ...] [--method put|post|delete] [--timeout 10s]\n"
    "                      [--heap-label NAME] and the credential and TLS flags above\n"
    "\n"
    "Sends one exposition of the heaps (what `shmetrics serve` would serve, in the Prometheus\n"
    "text format) to the Pushgateway at URL (e.g. http://127.0.0.1:9091) under the group\n"
    "URL/metrics/job/J/K/V..., and exits: 0 when the Pushgateway accepted it, 1 with its answer\n"
    "on stderr otherwise. Nothing is retried.\n"
    "  --pushgateway URL          http:// or https:// URL of the Pushgateway\n"
    "  --job J                    the group's job label (required)\n"
    "  --grouping K=V             another label of the group; repeat for several (values with\n"
    "                             '/' or empty are sent base64-encoded)\n"
    "  --method M                 put (default: replace the group), post (replace only the\n"
    "                             families pushed) or delete (remove the group; --heap is then\n"
    "                             not needed and not read)\n";

const std::vector<std::string_view> kPushFlags = {"--heap",
                                                  "--remote-write",
                                                  "--interval",
                                                  "--timeout",
                                                  "--job",
                                                  "--instance",
                                                  "--external-label",
                                                  "--heap-label",
                                                  "--basic-auth-user",
                                                  "--basic-auth-password-file",
                                                  "--bearer-token-file",
                                                  "--tls-ca-file",
                                                  "--tls-cert-file",
                                                  "--tls-key-file",
                                                  "--tls-server-name",
                                                  "--tls-insecure-skip-verify",
                                                  "--allow-other-owner",
                                                  "--allow-shared-write",
                                                  "--no-wait",
                                                  "--pushgateway",
                                                  "--grouping",
                                                  "--method"};

namespace {

std::optional<Failure> ParseDuration(std::string_view flag, const std::string& text,
                                     std::chrono::milliseconds* out) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return Usage(absl::StrCat("push: ", std::string(flag),
                              " wants a positive duration such as 15s or 500ms, "
                              "got \"",
                              text, "\""));
  }
  *out = std::chrono::milliseconds(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
  return std::nullopt;
}

std::optional<Failure> RemoteWrite(const Args& args, RemoteWriteOptions options) {
  for (const auto& [flag, value] : args.values) {
    if (flag == "--interval") {
      if (auto f = ParseDuration(flag, value, &options.interval)) return f;
    } else if (flag == "--timeout") {
      if (auto f = ParseDuration(flag, value, &options.timeout)) return f;
    } else if (flag == "--job") {
      options.job = value;
    } else if (flag == "--instance") {
      options.instance = value;
    } else if (flag == "--external-label") {
      const size_t eq = value.find('=');
      const std::string name = value.substr(0, eq);
      if (eq == std::string::npos || !meters::IsValidLabelName(name) ||
          meters::IsReservedLabelName(name)) {
        return Usage(
            absl::StrCat("push: --external-label wants NAME=VALUE with a label name, "
                         "got \"",
                         value, "\""));
      }
      options.external_labels[name] = value.substr(eq + 1);
    } else if (flag == "--basic-auth-user") {
      options.basic_auth_user = value;
    } else if (flag == "--basic-auth-password-file") {
      options.basic_auth_password_file = value;
    } else if (flag == "--bearer-token-file") {
      options.bearer_token_file = value;
    } else if (flag == "--tls-ca-file") {
      options.tls_ca_file = value;
    } else if (flag == "--tls-cert-file") {
      options.tls_cert_file = value;
    } else if (flag == "--tls-key-file") {
      options.tls_key_file = value;
    } else if (flag == "--tls-server-name") {
      options.tls_server_name = value;
    }
  }
  options.tls_insecure_skip_verify = args.tls_insecure_skip_verify;
  // As serve: every heap opens now, or push fails; a heap that does not exist yet is waited for
  // (unless --no-wait); each push reads whichever heap the name points to then.
  std::shared_ptr<ServedHeaps> heaps;
  if (auto f = OpenServedHeaps(args, {"push", "pushes", "pushed", "pushing"}, &heaps)) return f;
  internal::FamilySource source{
      .collect = [heaps](expose::Encoder& enc, const collect::CollectOptions& o) {
        return heaps->Collect(enc, o);
      }};

  // Blocked before the writer starts its thread, which inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return Failure{kExitRuntime, "push: cannot block signals"};
  }
  {
    RemoteWriter writer(source, options);
    std::cout << "pushing to " << options.url.substr(0, options.url.find('?')) << std::endl;
    int received = 0;
    while (sigwait(&signals, &received) != 0) {
    }
  }  // ~RemoteWriter makes the last push.
  return std::nullopt;
}

// One push to a Pushgateway (see kPushUsage).
std::optional<Failure> PushGateway(const Args& args, const std::string& url) {
  push::ClientOptions client_options{.timeout = std::chrono::seconds(10)};
  std::optional<std::string> job;
  std::vector<std::pair<std::string, std::string>> grouping;
  PushMethod method = PushMethod::kPut;
  for (const auto& [flag, value] : args.values) {
    if (flag == "--timeout") {
      if (auto f = ParseDuration(flag, value, &client_options.timeout)) return f;
    } else if (flag == "--job") {
      job = value;
    } else if (flag == "--grouping") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos) {
        return Usage(absl::StrCat("push: --grouping wants NAME=VALUE, got \"", value, "\""));
      }
      grouping.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (flag == "--method") {
      if (value == "put") {
        method = PushMethod::kPut;
      } else if (value == "post") {
        method = PushMethod::kPost;
      } else if (value == "delete") {
        method = PushMethod::kDelete;
      } else {
        return Usage(absl::StrCat("push: --method wants put, post or delete, got \"", value, "\""));
      }
    } else if (flag == "--basic-auth-user") {
      client_options.basic_auth_user = value;
    } else if (flag == "--basic-auth-password-file") {
      client_options.basic_auth_password_file = value;
    } else if (flag == "--bearer-token-file") {
      client_options.bearer_token_file = value;
    } else if (flag == "--tls-ca-file") {
      client_options.tls.ca_file = value;
    } else if (flag == "--tls-cert-file") {
      client_options.tls.cert_file = value;
    } else if (flag == "--tls-key-file") {
      client_options.tls.key_file = value;
    } else if (flag == "--tls-server-name") {
      client_options.tls.server_name = value;
    } else if (flag == "--interval" || flag == "--instance" || flag == "--external-label") {
      return Usage(absl::StrCat("push: ", flag, " is for --remote-write, not --pushgateway"));
    }
  }
  client_options.tls.insecure_skip_verify = args.tls_insecure_skip_verify;
  if (!job) return Usage("push: --pushgateway needs --job J");
  if (method != PushMethod::kDelete && args.heaps.empty()) return Usage("push: missing --heap");
  if (!meters::IsValidLabelName(args.heap_label) || meters::IsReservedLabelName(args.heap_label)) {
    return Usage(absl::StrCat("push: --heap-label \"", args.heap_label,
                              "\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting "
                              "with __)"));
  }
  auto path = push::GroupPath(*job, grouping);
  if (!path.ok()) return Usage(absl::StrCat("push: ", path.status().message()));
  auto client = push::HttpClient::Create(client_options);
  if (!client.ok()) return Usage(absl::StrCat("push: ", client.status().message()));

  std::string body;
  if (method != PushMethod::kDelete) {
    const Heap::OpenOptions open_options = ReadOnlyOptions(args);
    std::vector<Heap> heaps;
    for (const std::string& h : args.heaps) heaps.push_back(OpenReadOnly(h, open_options));
    std::vector<collect::HeapSource> sources;
    for (const Heap& h : heaps) {
      sources.push_back({&shm::HeapAccess::segment(h), std::string(h.name())});
    }
    auto enc = expose::MakeEncoder(expose::Format::kPrometheus, &body);
    std::vector<collect::MergeConflict> conflicts;
    if (absl::Status s = collect::CollectMerged(sources, heaps.size() > 1 ? args.heap_label : "",
                                                *enc, {}, &conflicts);
        !s.ok()) {
      return Failure{kExitRuntime, OneLine(absl::StrCat("push: ", s.message()))};
    }
    enc->Finish();
    for (const collect::MergeConflict& c : conflicts) {
      std::cerr << "push: left out " << c.family << ": " << OneLine(c.message) << "\n";
    }
  }
  if (absl::Status s = push::PushToGateway(**client, url, *path, method, std::move(body));
      !s.ok()) {
    return Failure{kExitRuntime, OneLine(absl::StrCat("push: ", s.message()))};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Failure> Push(const Args& args) {
  std::optional<std::string> remote_write;
  std::optional<std::string> pushgateway;
  for (const auto& [flag, value] : args.values) {
    if (flag == "--remote-write") remote_write = value;
    if (flag == "--pushgateway") pushgateway = value;
  }
  if (remote_write && pushgateway) {
    return Usage("push: --remote-write and --pushgateway exclude each other");
  }
  if (pushgateway) return PushGateway(args, *pushgateway);
  if (args.heaps.empty()) return Usage("push: missing --heap");
  if (!remote_write) return Usage("push: missing --remote-write URL or --pushgateway URL");
  for (const auto& [flag, value] : args.values) {
    if (flag == "--grouping" || flag == "--method") {
      return Usage(absl::StrCat("push: ", flag, " is for --pushgateway, not --remote-write"));
    }
  }
  return RemoteWrite(args, {.url = *remote_write});
}

}  // namespace shmetrics::cli
