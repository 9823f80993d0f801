// One connection of the server: reading and parsing its requests, calling the handler, writing
// the responses, and its timeouts and lingering close, over a plain socket or TLS. The listener
// (server.cc) accepts a connection and hands it over here. Private to src/http/.
#ifndef SHMETRICS_SRC_HTTP_CONNECTION_H_
#define SHMETRICS_SRC_HTTP_CONNECTION_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "http/basic_auth.h"
#include "http/server.h"

namespace shmetrics::http {

// What sessions need from the server. Lives in Server::Impl, which outlives every session.
struct SharedState {
  SharedState(ServerOptions o, Handler h) : options(std::move(o)), handler(std::move(h)) {}

  const ServerOptions options;
  const Handler handler;
  // Set when options ask for TLS; every session's stream is created from it (OpenSSL allows
  // that from several threads at once).
  std::unique_ptr<boost::asio::ssl::context> tls;
  // Sessions count themselves in and out so the acceptor can enforce max_connections.
  std::atomic<size_t> active_connections{0};

  // Set when options ask for basic authentication, with the verifier threads' context, where
  // sessions post the password checks Precheck cannot decide.
  std::unique_ptr<BasicAuth> auth;
  boost::asio::io_context* verifier = nullptr;
  // Verifications posted and not finished; a session that finds max_pending_verifications of
  // them answers 503 instead of queueing another.
  std::atomic<size_t> pending_verifications{0};
  size_t max_pending_verifications = 0;
};

// Serves the accepted `socket` until the connection ends: under TLS when state->tls is set,
// plain HTTP otherwise. The caller has counted it in state->active_connections already; the
// connection counts itself out when it is gone.
void StartSession(SharedState* state, boost::asio::ip::tcp::socket socket);

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_CONNECTION_H_
