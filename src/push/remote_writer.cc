#include "shmetrics/remote_writer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collect/collector.h"
#include "collect/exposition.h"
#include "expose/encoder.h"
#include "http_exposer/family_source.h"
#include "meters/names.h"
#include "push/http_client.h"
#include "push/write_request.h"
#include "shm/status_error.h"
#include "util/annotated_mutex.h"

namespace shmetrics {
namespace {

using Clock = std::chrono::steady_clock;

// The first line of a response body, at most 256 bytes: what a receiver says is wrong.
std::string BodyFirstLine(const std::string& body) {
  std::string line = body.substr(0, std::min(body.find_first_of("\r\n"), size_t{256}));
  return line;
}

void CheckOptions(const RemoteWriteOptions& o) {
  auto invalid = [](std::string message) {
    throw Error(ErrorCode::kInvalidArgument, "RemoteWriter: " + message);
  };
  if (o.url.empty()) invalid("url is empty");
  if (auto url = push::ParseUrl(o.url); !url.ok()) invalid(std::string(url.status().message()));
  if (o.interval <= std::chrono::milliseconds(0)) invalid("interval must be > 0");
  if (o.timeout <= std::chrono::milliseconds(0)) invalid("timeout must be > 0");
  if (o.min_backoff <= std::chrono::milliseconds(0) || o.max_backoff < o.min_backoff) {
    invalid("backoff must be 0 < min_backoff <= max_backoff");
  }
  for (const auto& [name, value] : o.external_labels) {
    if (!meters::IsValidLabelName(name) || meters::IsReservedLabelName(name)) {
      invalid(absl::StrCat("external label \"", name,
                           "\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "
                           "__)"));
    }
  }
}

}  // namespace

namespace {

using util::AnnotatedMutex;
using util::Locked;

}  // namespace

struct RemoteWriter::Impl {
  Impl(internal::FamilySource source_in, const RemoteWriteOptions& options_in)
      : source(std::move(source_in)), options(options_in), owner(getpid()) {
    CheckOptions(options);
    absl::StatusOr<std::unique_ptr<push::HttpClient>> c = push::HttpClient::Create({
        .timeout = options.timeout,
        .tls = {.ca_file = options.tls_ca_file,
                .cert_file = options.tls_cert_file,
                .key_file = options.tls_key_file,
                .server_name = options.tls_server_name,
                .insecure_skip_verify = options.tls_insecure_skip_verify},
        .basic_auth_user = options.basic_auth_user,
        .basic_auth_password = options.basic_auth_password,
        .basic_auth_password_file = options.basic_auth_password_file,
        .bearer_token = options.bearer_token,
        .bearer_token_file = options.bearer_token_file,
    });
    if (!c.ok()) throw ToError(c.status());
    client = *std::move(c);
    // job and instance first: a series' own label of the same name still wins over both.
    if (!options.job.empty()) extra_labels.emplace_back("job", options.job);
    if (!options.instance.empty()) extra_labels.emplace_back("instance", options.instance);
    for (const auto& [name, value] : options.external_labels) {
      if (name == "job" || name == "instance" || value.empty()) continue;
      extra_labels.emplace_back(name, value);
    }
    for (auto& [name, value] : extra_labels) {
      if (auto it = options.external_labels.find(name); it != options.external_labels.end()) {
        if (!it->second.empty()) value = it->second;  // an external job/instance overrides
      }
    }
    rng.seed(std::random_device{}());
    thread = std::thread([this] { Run(); });
  }

  void Run() {
    Clock::time_point next = Clock::now();
    for (;;) {
      uint64_t flush = 0;
      {
        Locked lock(mu);
        cv.wait_until(mu, next, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return Woken(); });
        if (stop) break;
        flush = flush_requested;
      }
      const Clock::time_point now = Clock::now();
      next = std::max(next + options.interval, now + std::chrono::milliseconds(1));
      if (next > now + options.interval) next = now + options.interval;
      const bool ok = Push(next, /*retry=*/true);
      Locked lock(mu);
      if (flush > flush_done) {
        flush_done = flush;
        flush_ok = ok;
        cv.notify_all();
      }
    }
    if (options.push_on_stop) Push(Clock::now(), /*retry=*/false);
  }

  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return stop || flush_requested > flush_done;
  }

  // Waits for d or until stop is asked. True when asked to stop.
  bool SleepUnlessStopped(std::chrono::nanoseconds d) {
    Locked lock(mu);
    return cv.wait_for(mu, d, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop; });
  }

  bool StopRequested() {
    Locked lock(mu);
    return stop;
  }

  // One push: collect, encode, compress, send; retried until `deadline` on retryable failures
  // when `retry`. Returns true when the receiver accepted it.
  bool Push(Clock::time_point deadline, bool retry) {
    const Clock::time_point start = Clock::now();
    // Every push a later timestamp than the last, whatever the wall clock does: a receiver
    // refuses a second sample with the same timestamp and another value.
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    last_timestamp_ms = std::max(now_ms, last_timestamp_ms + 1);
    body.clear();
    uint64_t samples = 0;
    auto enc = push::MakeWriteRequestEncoder(
        {.extra_labels = extra_labels, .timestamp_ms = last_timestamp_ms}, &body, &samples);
    collect::CollectOptions co;
    co.process_metrics = options.process_metrics;
    // Maxima are reset by the scrape that reads them, never by a pusher beside it.
    co.reset_maxima = false;
    if (absl::Status s = source.collect(*enc, co); !s.ok()) {
      Log(absl::StrCat("cannot read the metrics: ", s.message()));
      Finish(false, 0, start);
      return false;
    }
    WriteSelfMetrics(*enc);
    enc->Finish();
    push::HttpRequest request{
        .method = "POST",
        .url = options.url,
        .headers = {{"Content-Encoding", "snappy"},
                    {"Content-Type", "application/x-protobuf"},
                    {"X-Prometheus-Remote-Write-Version", "0.1.0"}},
        .body = push::SnappyCompress(body),
    };
    // The uncompressed copy is kept for its capacity only, up to 4 MiB.
    if (body.capacity() > (4u << 20)) std::string().swap(body);
    std::chrono::nanoseconds backoff = options.min_backoff;
    for (;;) {
      absl::StatusOr<push::HttpResponse> response = client->Send(request);
      if (response.ok() && response->status / 100 == 2) {
        Finish(true, samples, start);
        return true;
      }
      const bool retryable =
          !response.ok() || response->status / 100 == 5 || response->status == 429;
      const std::string why =
          response.ok() ? absl::StrCat(response->status_line, ": ", BodyFirstLine(response->body))
                        : std::string(response.status().message());
      const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(
          backoff * std::uniform_real_distribution<double>(0.5, 1.0)(rng));
      if (!retryable || !retry || Clock::now() + wait >= deadline || SleepUnlessStopped(wait)) {
        Log(absl::StrCat(retryable ? "" : "not retried: ", why));
        Finish(false, samples, start);
        return false;
      }
      {
        Locked lock(stats_mu);
        stats.samples_retried += samples;
      }
      backoff = std::min<std::chrono::nanoseconds>(2 * backoff, options.max_backoff);
    }
  }

  void Finish(bool ok, uint64_t samples, Clock::time_point start) {
    Locked lock(stats_mu);
    stats.last_send_duration_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (ok) {
      ++stats.pushes_succeeded;
      stats.samples_sent += samples;
      stats.last_success_unix_seconds =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (failing)
        std::fprintf(stderr, "shmetrics: remote write to %s works again\n", url().c_str());
      failing = false;
    } else {
      ++stats.pushes_failed;
      stats.samples_failed += samples;
      failing = true;
    }
  }

  void Log(const std::string& message) {
    std::fprintf(stderr, "shmetrics: remote write to %s failed: %s\n", url().c_str(),
                 message.c_str());
  }

  // The URL without its query, which may hold a secret.
  std::string url() const { return options.url.substr(0, options.url.find('?')); }

  void WriteSelfMetrics(expose::Encoder& enc) {
    Stats s;
    {
      Locked lock(stats_mu);
      s = stats;
    }
    struct Counter {
      const char* name;
      const char* help;
      uint64_t value;
    };
    for (const Counter& c :
         {Counter{"shmetrics_remote_write_samples_sent",
                  "Samples in remote-write pushes the receiver accepted.", s.samples_sent},
          Counter{"shmetrics_remote_write_samples_failed",
                  "Samples in remote-write pushes given up on.", s.samples_failed},
          Counter{"shmetrics_remote_write_samples_retried",
                  "Samples sent again after a retryable remote-write failure.",
                  s.samples_retried}}) {
      enc.BeginFamily(
          {.name = c.name, .type = expose::MetricType::kCounter, .help = c.help, .unit = ""});
      enc.Counter({}, static_cast<double>(c.value), std::nullopt, nullptr);
      enc.EndFamily();
    }
    enc.BeginFamily({.name = "shmetrics_remote_write_last_success_timestamp_seconds",
                     .type = expose::MetricType::kGauge,
                     .help = "When the receiver last accepted a remote-write push.",
                     .unit = "seconds"});
    enc.Gauge({}, s.last_success_unix_seconds);
    enc.EndFamily();
    enc.BeginFamily({.name = "shmetrics_remote_write_send_duration_seconds",
                     .type = expose::MetricType::kGauge,
                     .help = "How long the last remote-write push took, retries included.",
                     .unit = "seconds"});
    enc.Gauge({}, s.last_send_duration_seconds);
    enc.EndFamily();
  }

  // Constant after construction
  const internal::FamilySource source;
  const RemoteWriteOptions options;
  const pid_t owner;
  std::unique_ptr<push::HttpClient> client;
  std::vector<std::pair<std::string, std::string>> extra_labels;

  // State below is the writer thread's own
  std::string body;
  int64_t last_timestamp_ms = 0;
  std::mt19937_64 rng;

  AnnotatedMutex mu;
  std::condition_variable_any cv;  // stop, or a flush asked for or done
  bool stop ABSL_GUARDED_BY(mu) = false;
  uint64_t flush_requested ABSL_GUARDED_BY(mu) = 0;
  uint64_t flush_done ABSL_GUARDED_BY(mu) = 0;
  bool flush_ok ABSL_GUARDED_BY(mu) = false;

  mutable AnnotatedMutex stats_mu;
  Stats stats ABSL_GUARDED_BY(stats_mu);
  bool failing ABSL_GUARDED_BY(stats_mu) = false;

  std::thread thread;
};

RemoteWriter::RemoteWriter(std::vector<Heap> heaps, const RemoteWriteOptions& options) {
  auto shared = std::make_shared<std::vector<Heap>>(std::move(heaps));
  impl_ = std::make_unique<Impl>(
      internal::FamilySource{.collect =
                                 [shared](expose::Encoder& enc, const collect::CollectOptions& o) {
                                   return collect::CollectHeaps(*shared, enc, o);
                                 }},
      options);
}

RemoteWriter::RemoteWriter(const internal::FamilySource& source, const RemoteWriteOptions& options)
    : impl_(std::make_unique<Impl>(source, options)) {}

RemoteWriter::~RemoteWriter() {
  if (getpid() != impl_->owner) {
    // A forked child has no writer thread (the std::thread describes the parent's): nothing to
    // stop or join, and its memory goes with the child.
    (void)impl_.release();
    return;
  }
  {
    Locked lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

bool RemoteWriter::Flush() {
  Locked lock(impl_->mu);
  const uint64_t ticket = ++impl_->flush_requested;
  impl_->cv.notify_all();
  impl_->cv.wait(impl_->mu, [this, ticket]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return impl_->flush_done >= ticket || impl_->stop;
  });
  return impl_->flush_done >= ticket && impl_->flush_ok;
}

RemoteWriter::Stats RemoteWriter::stats() const {
  Locked lock(impl_->stats_mu);
  return impl_->stats;
}

}  // namespace shmetrics
