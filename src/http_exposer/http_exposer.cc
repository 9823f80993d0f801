#include "shmetrics/http_exposer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "collect/collector.h"
#include "collect/exposition.h"
#include "expose/encoder.h"
#include "expose/line_deflate.h"
#include "expose/negotiate.h"
#include "http/query.h"
#include "http/responses.h"
#include "http/server.h"
#include "http/web_config.h"
#include "http_exposer/family_source.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"
#include "util/annotated_mutex.h"

namespace shmetrics {

WebOptions LoadWebConfigFile(const std::string& path) {
  auto config = http::LoadWebConfigFile(path);
  if (!config.ok()) throw ToError(config.status());
  return WebOptions{.tls_cert_file = std::move(config->tls_cert_file),
                    .tls_key_file = std::move(config->tls_key_file),
                    .tls_min_version = config->tls_min_version,
                    .basic_auth_users = std::move(config->basic_auth_users)};
}

namespace {

// A streamed exposition is handed to the connection whenever this much text has piled up, at
// the end of a series (or, for protobuf, of a family). It bounds a scrape's memory to about
// 3 pieces (the one being written, the one waiting, the one being encoded) whatever the heap's
// size, and is large enough that per-piece costs (a chunk header, a hand-off between threads)
// stay well under 1%. Compressed, a piece is whatever the deflate stream (one gzip member for
// the whole body) has output for the text so far.
constexpr size_t kPieceBytes = 256 << 10;

// A gzip'd exposition goes to the compressor in smaller pieces of text, and out once at least
// this much compressed output has piled up: the text and the compressor's buffers then stay in
// the L2 cache beside the heap being walked (with 256 KiB pieces the walk itself ran slower).
constexpr size_t kGzipTextBytes = 64 << 10;

// Thrown out of the collect walk when the connection gives up on the response.
struct Abandoned {};

// Passes every call to the real encoder and hands its output over once it has grown past
// *threshold (kPieceBytes). The protobuf encoder back-patches each MetricFamily's length prefix, so
// its output is only handed over between families: a piece is then at least one whole family, and
// the bound is the largest family's encoding rather than kPieceBytes.
class PieceEncoder final : public expose::Encoder {
 public:
  PieceEncoder(std::unique_ptr<expose::Encoder> inner, const std::string* out,
               const size_t* threshold, bool between_families, absl::FunctionRef<void()> flush)
      : inner_(std::move(inner)),
        out_(out),
        threshold_(threshold),
        between_families_(between_families),
        flush_(flush) {}

  void BeginFamily(const expose::FamilyInfo& family) override { inner_->BeginFamily(family); }
  void Counter(expose::LabelSpan labels, double value, std::optional<double> created,
               const expose::Exemplar* exemplar) override {
    inner_->Counter(labels, value, created, exemplar);
    AfterSeries();
  }
  void Gauge(expose::LabelSpan labels, double value) override {
    inner_->Gauge(labels, value);
    AfterSeries();
  }
  void Histogram(expose::LabelSpan labels, std::span<const double> upper_bounds,
                 std::span<const uint64_t> cumulative, double sum, std::optional<double> created,
                 std::span<const expose::Exemplar* const> exemplars) override {
    inner_->Histogram(labels, upper_bounds, cumulative, sum, created, exemplars);
    AfterSeries();
  }
  void NativeHistogram(expose::LabelSpan labels, const expose::NativeHistogram& h,
                       std::optional<double> created,
                       std::span<const expose::Exemplar* const> exemplars) override {
    inner_->NativeHistogram(labels, h, created, exemplars);
    AfterSeries();
  }
  void Summary(expose::LabelSpan labels, uint64_t count, double sum,
               std::span<const expose::Quantile> quantiles,
               std::optional<double> created) override {
    inner_->Summary(labels, count, sum, quantiles, created);
    AfterSeries();
  }
  void Info(expose::LabelSpan labels) override {
    inner_->Info(labels);
    AfterSeries();
  }
  void StateSet(expose::LabelSpan labels, std::span<const expose::State> states) override {
    inner_->StateSet(labels, states);
    AfterSeries();
  }
  void EndFamily() override {
    inner_->EndFamily();
    if (out_->size() >= *threshold_) flush_();
  }
  void Finish() override { inner_->Finish(); }

 private:
  void AfterSeries() {
    if (!between_families_ && out_->size() >= *threshold_) flush_();
  }

  const std::unique_ptr<expose::Encoder> inner_;
  const std::string* const out_;
  const size_t* const threshold_;
  const bool between_families_;
  const absl::FunctionRef<void()> flush_;
};

}  // namespace

struct HttpExposer::Impl {
  internal::FamilySource source;
  bool process_metrics;
  bool created_samples;
  std::unique_ptr<http::Server> server;
  // Held around collect for a source that allows one walk at a time.
  util::AnnotatedMutex collect_mu;

  // Runs on one of the server's scrape threads: walks the heaps and hands the exposition over
  // in pieces, as one gzip stream when compressed.
  absl::Status Produce(const expose::Negotiated& negotiated, const collect::CollectOptions& options,
                       bool gzip, const http::BodySink& sink) {
    // A gzip'd body streams through LineGzipWriter (expose/line_deflate.h): one gzip member for
    // the whole body, as curl --compressed reads only the first, a little faster than
    // libdeflate's level 1 on exposition text, and nothing of the body is ever whole in memory.
    std::string text;
    const size_t threshold = gzip ? kGzipTextBytes : kPieceBytes;
    text.reserve(threshold + threshold / 4);
    std::string compressed;
    std::optional<expose::LineGzipWriter> gz;
    if (gzip) gz.emplace();
    auto flush = [&](bool last) {
      bool ok = true;
      if (gz.has_value()) {
        gz->Write(text, &compressed);
        if (last) gz->Finish(&compressed);
        text.clear();
        if (compressed.size() >= kGzipTextBytes || (last && !compressed.empty())) {
          ok = sink(&compressed);
        }
      } else if (!text.empty()) {
        ok = sink(&text);
      }
      if (!ok) throw Abandoned{};
    };
    auto flush_piece = [&flush] { flush(/*last=*/false); };
    PieceEncoder enc(
        expose::MakeEncoder(negotiated.format, &text,
                            {.escaping = negotiated.escaping, .created = created_samples}),
        &text, &threshold, negotiated.format == expose::Format::kProtobuf, flush_piece);
    try {
      absl::Status s;
      if (source.concurrent) {
        s = source.collect(enc, options);
      } else {
        util::Locked lock(collect_mu);
        s = source.collect(enc, options);
      }
      if (!s.ok()) return absl::InternalError(absl::StrCat("cannot collect: ", s.message()));
      enc.Finish();
      flush(/*last=*/true);
    } catch (const Abandoned&) {
      return absl::CancelledError("the client is gone");
    }
    return absl::OkStatus();
  }

  // Every path is behind the authentication, which the server checks before calling this, as
  // with exporter-toolkit: a request without the right credentials learns nothing but the 401.
  http::Response Handle(const http::Request& req) {
    if (req.path != "/metrics" && req.path != "/" && req.path != "/-/healthy") {
      return http::NotFound();
    }
    if (!http::IsGetOrHead(req)) return http::MethodNotAllowed();
    if (req.path == "/") return http::LandingPage("shmetrics", "/metrics");
    if (req.path == "/-/healthy") return http::TextResponse(200, "OK\n");
    const expose::Negotiated negotiated = expose::Negotiate(req.accept);
    collect::CollectOptions options;
    options.names = http::ParseNameFilters(req.query);
    options.process_metrics = process_metrics;
    // A HEAD response carries no body, so nobody would see the maxima it emptied: only a GET
    // starts a new "since the last scrape" window.
    options.reset_maxima = !req.head;
    http::Response resp;
    resp.content_type = expose::ContentType(negotiated.format, negotiated.escaping);
    const bool gzip = expose::AcceptsGzip(req.accept_encoding);
    if (gzip) resp.content_encoding = "gzip";
    // Everything the producer needs is copied: the request's views die with this call.
    resp.stream = [this, negotiated, options = std::move(options),
                   gzip](const http::BodySink& sink) -> absl::Status {
      return Produce(negotiated, options, gzip, sink);
    };
    return resp;
  }
};

HttpExposer::HttpExposer(std::vector<Heap> heaps, const HttpExposerOptions& options)
    : HttpExposer(
          internal::FamilySource{.collect =
                                     [heaps = std::move(heaps)](expose::Encoder& enc,
                                                                const collect::CollectOptions& o) {
                                       return collect::CollectHeaps(heaps, enc, o);
                                     },
                                 .concurrent = true},
          options) {}

HttpExposer::HttpExposer(const internal::FamilySource& source, const HttpExposerOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->source = source;
  impl_->process_metrics = options.process_metrics;
  impl_->created_samples = options.created_samples;
  http::ServerOptions so;
  so.address = options.address;
  so.port = options.port;
  so.read_timeout = options.read_timeout;
  so.idle_timeout = options.idle_timeout;
  so.write_timeout = options.write_timeout;
  so.max_header_bytes = options.max_header_bytes;
  so.max_body_bytes = options.max_body_bytes;
  so.max_connections = options.max_connections;
  so.tls_cert_file = options.web.tls_cert_file;
  so.tls_key_file = options.web.tls_key_file;
  so.tls_min_version = options.web.tls_min_version;
  so.basic_auth_users = options.web.basic_auth_users;
  Impl* impl = impl_.get();
  auto server = http::Server::Start(so, [impl](const http::Request& r) { return impl->Handle(r); });
  if (!server.ok()) throw ToError(server.status());
  impl_->server = std::move(*server);
}

HttpExposer::~HttpExposer() {
  if (impl_->server) impl_->server->Stop();
}

uint16_t HttpExposer::port() const { return impl_->server->port(); }

}  // namespace shmetrics
