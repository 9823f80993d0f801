#include "shmetrics/http_exposer.h"

#include "absl/strings/str_cat.h"
#include "collect/collector.h"
#include "collect/exposition.h"
#include "expose/encoder.h"
#include "expose/gzip.h"
#include "expose/negotiate.h"
#include "http/query.h"
#include "http/responses.h"
#include "http/server.h"
#include "http/web_config.h"
#include "http_exposer/family_source.h"
#include "shm/status_error.h"
#include "shmetrics/error.h"

namespace shmetrics {

WebOptions LoadWebConfigFile(const std::string& path) {
  auto config = http::LoadWebConfigFile(path);
  if (!config.ok()) throw ToError(config.status());
  return WebOptions{.tls_cert_file = std::move(config->tls_cert_file),
                    .tls_key_file = std::move(config->tls_key_file),
                    .tls_min_version = config->tls_min_version,
                    .basic_auth_users = std::move(config->basic_auth_users)};
}

struct HttpExposer::Impl {
  internal::FamilySource source;
  bool process_metrics;
  bool created_samples;
  std::unique_ptr<http::Server> server;

  // Every path is behind the authentication, which the server checks before calling this, as
  // with exporter-toolkit: a request without the right credentials learns nothing but the 401.
  http::Response Handle(const http::Request& req) const {
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
    auto enc = expose::MakeEncoder(negotiated.format, &resp.body,
                                   {.escaping = negotiated.escaping, .created = created_samples});
    if (absl::Status s = source.collect(*enc, options); !s.ok()) {
      return http::TextResponse(500, absl::StrCat("cannot collect: ", s.message(), "\n"));
    }
    enc->Finish();
    resp.content_type = expose::ContentType(negotiated.format, negotiated.escaping);
    if (expose::AcceptsGzip(req.accept_encoding)) {
      if (auto gz = expose::GzipCompress(resp.body, expose::kGzipFastestLevel); gz.ok()) {
        resp.body = std::move(*gz);
        resp.content_encoding = "gzip";
      }
    }
    return resp;
  }
};

HttpExposer::HttpExposer(std::vector<Heap> heaps, const HttpExposerOptions& options)
    : HttpExposer(
          internal::FamilySource{.collect =
                                     [heaps = std::move(heaps)](expose::Encoder& enc,
                                                                const collect::CollectOptions& o) {
                                       return collect::CollectHeaps(heaps, enc, o);
                                     }},
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
