// One connection of the server: reading and parsing its requests, calling the handler, writing
// the responses, and its timeouts and lingering close, over a plain socket or TLS. The listener
// (server.cc) accepts a connection and hands it over here. Private to src/http/.
#ifndef SHMETRICS_SRC_HTTP_CONNECTION_H_
#define SHMETRICS_SRC_HTTP_CONNECTION_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "http/basic_auth.h"
#include "http/server.h"
#include "util/annotated_mutex.h"

namespace shmetrics::http {

// The hand-off of one streamed body between its producer (on a scrape thread) and its session
// (on the session's strand): at most kMaxUnsent pieces are produced and not yet written.
class StreamHandoff {
 public:
  static constexpr size_t kMaxUnsent = 2;

  // Producer side. Put blocks while kMaxUnsent pieces are unsent; false once cancelled. *wake is
  // set when the session must be told (posted by the caller, outside the lock). The first
  // piece alone wakes nobody, so a body of one piece is seen whole and sent with its length.
  bool Put(std::string* piece, bool* wake);
  // Records the producer's result; returns whether the session must be told.
  bool Finish(absl::Status status);
  bool cancelled();

  // Session side. Take moves out the next piece if any; *finished says the producer is done
  // and nothing is left after it, with *status its result. Clears the pending wake.
  bool Take(std::string* piece, bool* finished, absl::Status* status);
  // A piece went out: room for the producer, and its buffer back for reuse.
  void Written(std::string buffer);
  void Cancel();

 private:
  util::AnnotatedMutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::string> ready_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spare_ ABSL_GUARDED_BY(mu_);
  size_t unsent_ ABSL_GUARDED_BY(mu_) = 0;  // ready_ plus the piece being written
  size_t puts_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_posted_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

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

  // The scrape threads' context, where streamed bodies are produced, and the bound on the
  // streamed responses waiting or running there.
  boost::asio::io_context* scrape = nullptr;
  std::atomic<size_t> pending_scrapes{0};
  size_t max_pending_scrapes = 0;

  // Every live hand-off, so Stop can cancel them all: producers then return at their next
  // piece instead of waiting for sessions that will never run again.
  void Register(StreamHandoff* h);
  void Unregister(StreamHandoff* h);
  void StopStreams();

 private:
  util::AnnotatedMutex streams_mu_;
  std::set<StreamHandoff*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool streams_stopped_ ABSL_GUARDED_BY(streams_mu_) = false;
};

// Serves the accepted `socket` until the connection ends: under TLS when state->tls is set,
// plain HTTP otherwise. The caller has counted it in state->active_connections already; the
// connection counts itself out when it is gone.
void StartSession(SharedState* state, boost::asio::ip::tcp::socket socket);

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_CONNECTION_H_
