// The server's TLS context: the certificate chain and key of its options, loaded once by
// Server::Start. Private to src/http/.
#ifndef SHMETRICS_SRC_HTTP_TLS_H_
#define SHMETRICS_SRC_HTTP_TLS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "boost/asio/ssl/context.hpp"
#include "http/server.h"

namespace shmetrics::http {

// A server context holding the certificate chain and key of `o`: TLS 1.2 or later (1.3 with
// tls_min_version 13), no renegotiation, no compression. Errors name the file at fault.
[[nodiscard]] absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(
    const ServerOptions& o);

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_TLS_H_
