// GCC 12 warns (-Wtsan) that the fences inside Asio's handler invocation are invisible to
// ThreadSanitizer; Asio's real synchronization goes through mutexes and atomics, which it does
// see. Without this, -Werror breaks the ThreadSanitizer build.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "http/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/internal/raw_logging.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "openssl/err.h"
#include "openssl/ssl.h"

namespace shmetrics::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<tcp::socket>;

// How long and how much a connection is drained after an error response before it is closed.
// Closing with unread input makes the kernel send RST, which can destroy the response before
// the client reads it; draining a little first lets the client see the status.
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr size_t kMaxLingerBytes = 1 << 20;
// Pause before accepting again after accept() fails (e.g. EMFILE), so a full descriptor table
// does not turn into a busy loop; the pending connection stays in the backlog meanwhile.
constexpr std::chrono::milliseconds kAcceptRetry{50};

constexpr std::string_view kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";
// Bytes asked of each read.
constexpr size_t kReadChunk = 4096;
constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

// The listening sockets of the servers running in this process. A forked child closes its
// copies at once (pthread_atfork), so a worker that outlives its master never holds the port:
// connections to it are refused instead of queueing where nobody accepts them. Never destroyed,
// like the registry's fork bookkeeping: a server with static storage duration may stop at exit.
std::mutex& ListenersMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<int>& Listeners() {
  static auto* fds = new std::vector<int>;
  return *fds;
}
// Held across fork(), so the child's copy of the list is complete and its lock free.
void ListenersPrepare() { ListenersMutex().lock(); }
void ListenersParent() { ListenersMutex().unlock(); }
// Only close(2) and clear() (which frees nothing), so nothing here allocates in the child.
void ListenersChild() {
  for (int fd : Listeners()) ::close(fd);
  Listeners().clear();
  ListenersMutex().unlock();
}

void AddListener(int fd) {
  static const int installed = pthread_atfork(ListenersPrepare, ListenersParent, ListenersChild);
  (void)installed;
  std::lock_guard<std::mutex> lock(ListenersMutex());
  Listeners().push_back(fd);
}

std::string FormatEndpoint(const asio::ip::address& address, uint16_t port) {
  if (address.is_v6()) return absl::StrCat("[", address.to_string(), "]:", port);
  return absl::StrCat(address.to_string(), ":", port);
}

// Debian's Abseil is built with its own string_view, which std::string_view does not convert
// to, so the few string utilities needed here are local.
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return absl::ascii_tolower(static_cast<unsigned char>(x)) ==
                  absl::ascii_tolower(static_cast<unsigned char>(y));
         });
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

std::string_view StripWhitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsValidFieldName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), IsTokenChar);
}

bool IsValidFieldValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Fields the server owns because they decide where a message ends.
bool IsFramingField(std::string_view name) {
  return EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding") ||
         EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive");
}

// Splits a request target into path and query, accepting the absolute form
// ("http://host/path?q") that proxies send.
void SplitTarget(std::string_view target, std::string_view* path, std::string_view* query) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (StartsWithIgnoreCase(target, scheme)) {
      size_t slash = target.find_first_of("/?", scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    *path = target;
    *query = {};
  } else {
    *path = target.substr(0, q);
    *query = target.substr(q + 1);
  }
  if (path->empty()) *path = "/";
}

absl::Status BindError(const char* what, const std::string& endpoint, const error_code& ec) {
  std::string message = absl::StrCat("cannot ", what, " on ", endpoint, ": ", ec.message());
  if (ec == asio::error::address_in_use) return absl::UnavailableError(message);
  if (ec == asio::error::access_denied) return absl::PermissionDeniedError(message);
  if (ec == asio::error::address_family_not_supported ||
      ec == boost::system::errc::address_not_available) {
    return absl::InvalidArgumentError(message);
  }
  return absl::InternalError(message);
}

absl::Status ValidateOptions(const ServerOptions& o) {
  if (o.threads < 1) return absl::InvalidArgumentError("ServerOptions.threads must be >= 1");
  if (o.read_timeout.count() <= 0 || o.idle_timeout.count() <= 0 || o.write_timeout.count() <= 0) {
    return absl::InvalidArgumentError("ServerOptions timeouts must be positive");
  }
  if (o.max_header_bytes < 64 || o.max_header_bytes > UINT32_MAX) {
    return absl::InvalidArgumentError("ServerOptions.max_header_bytes must be in [64, 2^32)");
  }
  if (o.max_connections < 1) {
    return absl::InvalidArgumentError("ServerOptions.max_connections must be >= 1");
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "ServerOptions.tls_cert_file and tls_key_file must be set together");
  }
  if (o.tls_min_version != 12 && o.tls_min_version != 13) {
    return absl::InvalidArgumentError("ServerOptions.tls_min_version must be 12 or 13");
  }
  return absl::OkStatus();
}

// The OpenSSL error queue's newest entry, for messages; clears the queue.
std::string TlsErrorText(const error_code& ec) {
  std::string text = ec.message();
  if (unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

// A server context holding the certificate chain and key of `o`: TLS 1.2 or later (1.3 with
// tls_min_version 13), no renegotiation, no compression. Errors name the file at fault.
absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ServerOptions& o) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, o.tls_min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load the TLS certificate chain from '",
                                                   o.tls_cert_file, "': ", TlsErrorText(ec)));
  }
  ctx->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load the TLS private key from '",
                                                   o.tls_key_file, "': ", TlsErrorText(ec)));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("the TLS private key '", o.tls_key_file,
                                                   "' does not match the certificate '",
                                                   o.tls_cert_file, "': ", TlsErrorText({})));
  }
  return ctx;
}

// What sessions need from the server. Lives in Server::Impl, which outlives every session.
struct SharedState {
  SharedState(ServerOptions o, Handler h) : options(std::move(o)), handler(std::move(h)) {}

  const ServerOptions options;
  const Handler handler;
  // Set when options ask for TLS; every session's stream is created from it (OpenSSL allows
  // that from several threads at once).
  std::unique_ptr<asio::ssl::context> tls;
  // Sessions count themselves in and out so the acceptor can enforce max_connections.
  std::atomic<size_t> active_connections{0};
};

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, Handler handler)
      : state_(std::move(options), std::move(handler)),
        options_(state_.options),
        owner_pid_(::getpid()) {}

  ~Impl() { Stop(); }

  // Loads the certificate and key when options ask for TLS.
  absl::Status LoadTls();
  absl::Status Listen();
  void Run();
  void Stop();

  uint16_t port() const { return port_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void LeakAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void DoAccept();
  void OnAccept(const error_code& ec, tcp::socket socket);

  // Constant after Start (but for the session counter inside state_).
  SharedState state_;
  const ServerOptions& options_;
  const pid_t owner_pid_;
  uint16_t port_ = 0;
  std::string endpoint_;
  tcp protocol_ = tcp::v4();  // the listener's, set by Listen

  // Owned by the io threads between Run and Stop; touched by Stop only after they are joined.
  // Declared so that everything holding a reference to ioc_ is destroyed before it.
  std::unique_ptr<asio::io_context> ioc_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> accept_retry_;
  absl::Mutex stop_mu_;
  // Filled by Run and emptied by Stop, both under stop_mu_, so a handler that wrongly calls
  // Stop while Run is still starting threads waits instead of racing on the vector.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(stop_mu_);
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

namespace {

// One connection, over a plain socket (Stream = tcp::socket) or TLS (Stream = TlsStream). Lives
// as long as an operation on it is pending (each holds a shared_ptr); all its handlers run on
// its strand, so its members need no lock.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(SharedState* server, tcp::socket socket)
      : server_(server),
        options_(server->options),
        stream_(MakeStream(server, std::move(socket))),
        timer_(stream_.get_executor()) {}

  ~Session() {
    CloseSocket();
    server_->active_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  // The first request (and the TLS handshake before it) must arrive within read_timeout of the
  // accept, so a client that connects and says nothing holds a slot no longer than a slow one.
  void Start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->ArmDeadline(self->options_.read_timeout);
      if constexpr (kTls) {
        self->stream_.async_handshake(asio::ssl::stream_base::server, [self](const error_code& ec) {
          // Plain HTTP, a bad client hello, a timeout: the
          // client gets no TLS session and the socket closes.
          if (ec || self->timed_out_) return self->Close();
          self->ReadRequest();
        });
      } else {
        self->ReadRequest();
      }
    });
  }

 private:
  // The deadline covers whatever the connection is doing (reading a request, writing a response,
  // idling, lingering). On expiry it shuts the socket down, which fails the pending operation.
  void ArmDeadline(std::chrono::milliseconds timeout) {
    timer_.expires_after(timeout);
    timer_.async_wait([weak = this->weak_from_this()](const error_code& ec) {
      if (ec) return;  // cancelled or re-armed
      auto self = weak.lock();
      if (!self) return;
      // A re-arm may have raced with this expiry; only a deadline that has really passed counts.
      if (self->timer_.expiry() > asio::steady_timer::clock_type::now()) return;
      self->timed_out_ = true;
      self->ShutdownSocket();
    });
  }

  void DisarmDeadline() { timer_.cancel(); }

  // Starts reading a request. The parsing loop is ours rather than http::async_read's:
  // Beast 1.74 applies header_limit to each parse call only, and its read loop feeds the parser
  // 512 bytes at a time while consuming complete fields, so a stream of small header fields
  // would never hit the limit and would grow the message without bound. Here every byte the
  // parser consumes before the header ends is counted against max_header_bytes.
  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(options_.max_body_bytes));
    header_bytes_ = 0;
    Parse();
  }

  // Feeds buffered input to the parser until the request is complete, input runs out (then
  // reads more) or an error occurs.
  void Parse() {
    while (buffer_.size() > 0) {
      const bool header_was_done = parser_->is_header_done();
      error_code ec;
      // The parser is not eager: a call that completes the header consumes no body byte, so
      // `used` below is all header until is_header_done().
      size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (!header_was_done) {
        header_bytes_ += used;
        if (header_bytes_ > options_.max_header_bytes) {
          return OnReadError(bhttp::error::header_limit);
        }
      }
      if (ec == bhttp::error::need_more) break;
      if (ec) return OnReadError(ec);
      if (parser_->is_done()) return OnRequest();
      if (!header_was_done && ExpectsContinue()) {
        asio::async_write(stream_, asio::buffer(kContinueResponse.data(), kContinueResponse.size()),
                          [self = this->shared_from_this()](const error_code& ec, size_t) {
                            if (ec || self->timed_out_) return self->Close();
                            self->Parse();
                          });
        return;
      }
    }
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](const error_code& ec, size_t n) {
                              self->buffer_.commit(n);
                              if (ec) return self->OnReadError(ec);
                              self->Parse();
                            });
  }

  bool ExpectsContinue() const {
    auto expect = parser_->get()[bhttp::field::expect];
    return EqualsIgnoreCase(StripWhitespace(std::string_view(expect.data(), expect.size())),
                            "100-continue");
  }

  void OnReadError(const error_code& ec) {
    if (timed_out_) return Close();
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      return SendError(431, "Request Header Fields Too Large");
    }
    if (ec == bhttp::error::body_limit) return SendError(413, "Content Too Large");
    // A close (requests never end at EOF, so one mid-request is just an abandoned request), a
    // socket error: nobody to tell.
    if (ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
      return Close();
    }
    SendError(400, "Bad Request");
  }

  void OnRequest() {
    DisarmDeadline();
    const auto& msg = parser_->get();
    Request request;
    request.method = std::string_view(msg.method_string().data(), msg.method_string().size());
    auto target = msg.target();
    SplitTarget(std::string_view(target.data(), target.size()), &request.path, &request.query);
    auto field = [&msg](bhttp::field f) {
      auto v = msg[f];
      return std::string_view(v.data(), v.size());
    };
    request.accept = field(bhttp::field::accept);
    request.accept_encoding = field(bhttp::field::accept_encoding);
    request.authorization = field(bhttp::field::authorization);
    request.head = msg.method() == bhttp::verb::head;

    Response response;
    try {
      response = server_->handler(request);
    } catch (...) {
      response = Response{.status = 500,
                          .content_type = "text/plain; charset=utf-8",
                          .body = "Internal Server Error\n"};
    }
    PrepareResponse(std::move(response), request.head, msg.version(), msg.keep_alive());
    // The parser's storage backs `request`; it is not needed any more.
    parser_.reset();
    Write(/*close_after=*/!response_.keep_alive());
  }

  void PrepareResponse(Response response, bool head, unsigned version, bool keep_alive) {
    response_ = {};
    response_.version(version);
    int status = response.status;
    if (status < 200 || status > 599) status = 500;
    response_.result(static_cast<unsigned>(status));
    if (!response.content_type.empty() && IsValidFieldValue(response.content_type)) {
      response_.set(bhttp::field::content_type, response.content_type);
    }
    if (!response.content_encoding.empty() && IsValidFieldValue(response.content_encoding)) {
      response_.set(bhttp::field::content_encoding, response.content_encoding);
    }
    for (const auto& [name, value] : response.extra_headers) {
      if (IsValidFieldName(name) && IsValidFieldValue(value) && !IsFramingField(name)) {
        response_.insert(name, value);
      }
    }
    if (status == 204 || status == 304) {
      // No body may follow these, and 204 must not announce a length.
      if (status == 304) response_.content_length(response.body.size());
    } else {
      response_.content_length(response.body.size());
      // HEAD announces the GET body's length but sends none: the serializer writes the body
      // it holds, whatever Content-Length says.
      if (!head) response_.body() = std::move(response.body);
    }
    response_.keep_alive(keep_alive);
  }

  void Write(bool close_after) {
    ArmDeadline(options_.write_timeout);
    bhttp::async_write(stream_, response_,
                       [self = this->shared_from_this(), close_after](
                           const error_code& ec, size_t) { self->OnWrite(ec, close_after); });
  }

  void OnWrite(const error_code& ec, bool close_after) {
    if (ec || timed_out_) return Close();
    if (close_after) return LingerClose();
    response_ = {};
    if (buffer_.size() > 0) {  // pipelined: the next request has started arriving already
      ArmDeadline(options_.read_timeout);
      return ReadRequest();
    }
    // Idle: wait for the next request's first bytes under idle_timeout, then give the request
    // read_timeout from there. (A read, not a wait for readability: under TLS, decrypted bytes
    // may already sit in OpenSSL's buffer with nothing left on the socket.)
    ArmDeadline(options_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](const error_code& ec, size_t n) {
                              self->buffer_.commit(n);
                              if (ec || self->timed_out_) return self->Close();
                              self->ArmDeadline(self->options_.read_timeout);
                              self->ReadRequest();
                            });
  }

  void SendError(int status, const char* reason) {
    parser_.reset();
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(status));
    response_.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    response_.body() = absl::StrCat(reason, "\n");
    response_.content_length(response_.body().size());
    response_.keep_alive(false);
    Write(/*close_after=*/true);
  }

  // Half-closes, then reads and discards what the client still sends (bounded in time and
  // bytes) so the close does not turn into an RST that could destroy the response in flight.
  // Under TLS, close_notify goes first: the TLS shutdown, bounded by the same deadline.
  void LingerClose() {
    ArmDeadline(std::min<std::chrono::milliseconds>(options_.read_timeout, kMaxLinger));
    if constexpr (kTls) {
      stream_.async_shutdown([self = this->shared_from_this()](const error_code&) {
        if (self->timed_out_) return self->Close();
        self->ShutdownSendAndDrain();
      });
    } else {
      ShutdownSendAndDrain();
    }
  }

  void ShutdownSendAndDrain() {
    error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_send, ignored);
    Drain();
  }

  void Drain() {
    Socket().async_read_some(asio::buffer(drain_),
                             [self = this->shared_from_this()](const error_code& ec, size_t n) {
                               self->drained_ += n;
                               if (ec || self->timed_out_ || self->drained_ > kMaxLingerBytes) {
                                 return self->Close();
                               }
                               self->Drain();
                             });
  }

  void Close() {
    DisarmDeadline();
    CloseSocket();
  }

  // shutdown() before close(): a forked child may hold a copy of the descriptor, and only
  // shutdown ends the connection for every copy.
  void ShutdownSocket() {
    error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().cancel(ignored);
  }

  void CloseSocket() {
    if (!Socket().is_open()) return;
    error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
  }

  tcp::socket& Socket() { return beast::get_lowest_layer(stream_); }

  static Stream MakeStream(SharedState* server, tcp::socket socket) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *server->tls);
    } else {
      (void)server;
      return socket;
    }
  }

  SharedState* const server_;
  const ServerOptions& options_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;  // kept here while async_write runs
  bool timed_out_ = false;
  size_t header_bytes_ = 0;  // consumed by the parser for the current request's header
  size_t drained_ = 0;
  std::array<char, 4096> drain_;
};

}  // namespace

absl::Status Server::Impl::LoadTls() {
  if (options_.tls_cert_file.empty()) return absl::OkStatus();
  auto ctx = MakeTlsContext(options_);
  if (!ctx.ok()) return ctx.status();
  state_.tls = *std::move(ctx);
  return absl::OkStatus();
}

absl::Status Server::Impl::Listen() {
  std::string host = options_.address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("invalid listen address '", options_.address,
                                                   ":", options_.port,
                                                   "': not an IPv4 or IPv6 literal"));
  }
  endpoint_ = FormatEndpoint(address, options_.port);

  ioc_ = std::make_unique<asio::io_context>(options_.threads);
  acceptor_ = std::make_unique<tcp::acceptor>(*ioc_);
  tcp::endpoint endpoint(address, options_.port);
  // Close-on-exec from the start (SOCK_CLOEXEC), so no thread's fork+exec can leak it.
  const int fd = ::socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0)
    return BindError("open a socket", endpoint_,
                     error_code(errno, asio::error::get_system_category()));
  protocol_ = endpoint.protocol();
  acceptor_->assign(protocol_, fd, ec);
  if (ec) {
    ::close(fd);
    return BindError("open a socket", endpoint_, ec);
  }
  // Lets a restarted server rebind while old connections sit in TIME_WAIT; a port with a live
  // listener still fails with "address in use".
  acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return BindError("set SO_REUSEADDR", endpoint_, ec);
  acceptor_->bind(endpoint, ec);
  if (ec) return BindError("bind", endpoint_, ec);
  acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return BindError("listen", endpoint_, ec);
  port_ = acceptor_->local_endpoint(ec).port();
  if (ec) return BindError("get the bound port", endpoint_, ec);
  endpoint_ = FormatEndpoint(address, port_);
  // Non-blocking, so an accept4 after a readiness that another client's reset withdrew returns
  // EAGAIN instead of blocking the io thread.
  acceptor_->non_blocking(true, ec);
  if (ec) return BindError("make the socket non-blocking", endpoint_, ec);
  accept_retry_ = std::make_unique<asio::steady_timer>(*ioc_);
  AddListener(acceptor_->native_handle());
  return absl::OkStatus();
}

void Server::Impl::Run() {
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      ioc_->get_executor());
  DoAccept();
  // The io threads block every signal so that signals meant for the application (SIGTERM,
  // SIGCHLD in a pre-fork master, ...) are delivered to its own threads, never to ours.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  absl::MutexLock lock(&stop_mu_);
  threads_.reserve(options_.threads);
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_->run();
          return;
        } catch (...) {
          // Nothing of ours throws out of a handler; keep serving if something else did.
        }
      }
    });
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// Waits for a connection and takes it with accept4(SOCK_CLOEXEC): asio's accept sets
// close-on-exec only after accept returns, too late for a fork+exec in another thread.
void Server::Impl::DoAccept() {
  acceptor_->async_wait(tcp::acceptor::wait_read, [this](const error_code& wait_ec) {
    if (wait_ec == asio::error::operation_aborted) return;
    tcp::socket socket(asio::make_strand(*ioc_));
    error_code ec = wait_ec;
    if (!ec) {
      const int fd = ::accept4(acceptor_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        // Nothing to take after all (the client gave up, or it was a spurious wakeup).
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR) {
          return DoAccept();
        }
        ec = error_code(errno, asio::error::get_system_category());
      } else {
        socket.assign(protocol_, fd, ec);
        if (ec) ::close(fd);
      }
    }
    OnAccept(ec, std::move(socket));
  });
}

void Server::Impl::OnAccept(const error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    accept_retry_->expires_after(kAcceptRetry);
    accept_retry_->async_wait([this](const error_code& ec) {
      if (!ec) DoAccept();
    });
    return;
  }
  if (state_.active_connections.load(std::memory_order_relaxed) >= options_.max_connections) {
    // Best effort: the 503 goes out only if the socket buffer takes it right away. A TLS client
    // expects a handshake, not plain text: it just sees the close.
    if (state_.tls == nullptr) {
      ssize_t ignored = ::send(socket.native_handle(), kBusyResponse.data(), kBusyResponse.size(),
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
    }
    error_code ignored_ec;
    socket.shutdown(tcp::socket::shutdown_both, ignored_ec);
    socket.close(ignored_ec);
  } else {
    state_.active_connections.fetch_add(1, std::memory_order_relaxed);
    if (state_.tls != nullptr) {
      std::make_shared<Session<TlsStream>>(&state_, std::move(socket))->Start();
    } else {
      std::make_shared<Session<tcp::socket>>(&state_, std::move(socket))->Start();
    }
  }
  DoAccept();
}

void Server::Impl::LeakAfterFork() {
  // In a forked child the io threads do not exist (joining them would hang, destroying a
  // joinable std::thread would terminate), and the event queue (epoll) is shared with the
  // parent, so destroying sockets would deregister the parent's. Leak it all: the process is a
  // copy and its memory goes when it exits. No lock: a parent thread may have held stop_mu_ at
  // the fork, and the child has only the calling thread.
  new std::vector<std::thread>(std::move(threads_));
  (void)work_.release();
  (void)acceptor_.release();
  (void)accept_retry_.release();
  (void)ioc_.release();
}

void Server::Impl::Stop() {
  if (::getpid() != owner_pid_) return LeakAfterFork();
  absl::MutexLock lock(&stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  for (const std::thread& t : threads_) {
    ABSL_RAW_CHECK(t.get_id() != std::this_thread::get_id(),
                   "shmetrics::http::Server::Stop called from its own handler");
  }
  if (ioc_ == nullptr) return;  // Listen failed before anything ran.
  ioc_->stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (acceptor_ != nullptr && acceptor_->is_open()) {
    // Out of the list and closed under its lock, so a fork meanwhile never closes a descriptor
    // number that has been reused.
    std::lock_guard<std::mutex> listeners(ListenersMutex());
    auto& fds = Listeners();
    fds.erase(std::remove(fds.begin(), fds.end(), acceptor_->native_handle()), fds.end());
    // shutdown() stops listening for every copy of the descriptor, including one a child
    // forked without pthread_atfork handlers (vfork, clone) may hold.
    ::shutdown(acceptor_->native_handle(), SHUT_RD);
    error_code ignored;
    acceptor_->close(ignored);
  }
  work_.reset();
  accept_retry_.reset();
  acceptor_.reset();
  // Destroys the handlers still queued, and with them every Session (which closes its socket).
  ioc_.reset();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { impl_->Stop(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (!handler) return absl::InvalidArgumentError("Server::Start needs a handler");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (absl::Status s = impl->LoadTls(); !s.ok()) return s;
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port(); }

const std::string& Server::endpoint() const { return impl_->endpoint(); }

void Server::Stop() { impl_->Stop(); }

}  // namespace shmetrics::http
