// GCC 12 warns (-Wtsan) that the fences inside Asio's handler invocation are invisible to
// ThreadSanitizer; Asio's real synchronization goes through mutexes and atomics, which it does
// see. Without this, -Werror breaks the ThreadSanitizer build.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "http/connection.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string_view>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"

namespace shmetrics::http {

bool StreamHandoff::Put(std::string* piece, bool* wake) {
  util::Locked lock(mu_);
  while (unsent_ >= kMaxUnsent && !cancelled_) cv_.wait(mu_);
  *wake = false;
  if (cancelled_) return false;
  ready_.push_back(std::move(*piece));
  ++unsent_;
  piece->clear();
  if (!spare_.empty()) {
    piece->swap(spare_.back());
    spare_.pop_back();
  }
  if (++puts_ > 1 && !wake_posted_) *wake = wake_posted_ = true;
  return true;
}

bool StreamHandoff::Finish(absl::Status status) {
  util::Locked lock(mu_);
  finished_ = true;
  status_ = std::move(status);
  if (wake_posted_) return false;
  wake_posted_ = true;
  return true;
}

bool StreamHandoff::cancelled() {
  util::Locked lock(mu_);
  return cancelled_;
}

bool StreamHandoff::Take(std::string* piece, bool* finished, absl::Status* status) {
  util::Locked lock(mu_);
  wake_posted_ = false;
  const bool have = !ready_.empty();
  if (have) {
    *piece = std::move(ready_.front());
    ready_.pop_front();
  }
  *finished = finished_ && ready_.empty();
  if (*finished) *status = status_;
  return have;
}

void StreamHandoff::Written(std::string buffer) {
  util::Locked lock(mu_);
  --unsent_;
  if (spare_.size() < kMaxUnsent) {
    buffer.clear();
    spare_.push_back(std::move(buffer));
  }
  cv_.notify_all();
}

void StreamHandoff::Cancel() {
  util::Locked lock(mu_);
  cancelled_ = true;
  cv_.notify_all();
}

void SharedState::Register(StreamHandoff* h) {
  util::Locked lock(streams_mu_);
  streams_.insert(h);
  if (streams_stopped_) h->Cancel();
}

void SharedState::Unregister(StreamHandoff* h) {
  util::Locked lock(streams_mu_);
  streams_.erase(h);
}

void SharedState::StopStreams() {
  util::Locked lock(streams_mu_);
  streams_stopped_ = true;
  for (StreamHandoff* h : streams_) h->Cancel();
}

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
// Bytes asked of each read.
constexpr size_t kReadChunk = 4096;
constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

// The answer when every verifier slot is taken, rather than a place in a queue without bound.
// It goes out after kBusyPause, during which the connection holds a timer and nothing else (no
// verifier slot, no thread): answered at once, clients that retry at once would turn the
// rejections into a loop that takes the io thread from the scrapes (50 such clients multiplied
// a scrape's latency by 15). The connection stays open.
constexpr std::chrono::milliseconds kBusyPause{1000};
// A 503 asking the client to come back in a second.
Response Busy(std::string body) {
  Response r{.status = 503, .content_type = "text/plain; charset=utf-8", .body = std::move(body)};
  r.extra_headers.emplace_back("Retry-After", "1");
  return r;
}
Response ScrapesBusy() { return Busy("Too many scrapes at once\n"); }
Response VerifiersBusy() { return Busy("Too many password checks at once\n"); }

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
      if (self->handoff_ != nullptr) self->handoff_->Cancel();
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
    Request& request = request_;
    request = {};
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
    if (server_->auth == nullptr) return Respond();
    Authenticate();
  }

  // Credentials verified before are accepted here; the others are hashed on a verifier thread,
  // and the session resumes on its strand with the verdict. No deadline runs meanwhile: the
  // wait is bounded by the verifier queue's bound. Nothing reads the socket either, so the
  // parser's storage, which `request_` points into, stays put.
  void Authenticate() {
    BasicAuth::Attempt attempt;
    switch (server_->auth->Precheck(request_.authorization, &attempt)) {
      case BasicAuth::Verdict::kAccepted:
        return Respond();
      case BasicAuth::Verdict::kRejected:
        return Answer(Unauthorized());
      case BasicAuth::Verdict::kNeedsHash:
        break;
    }
    if (server_->pending_verifications.fetch_add(1, std::memory_order_relaxed) >=
        server_->max_pending_verifications) {
      server_->pending_verifications.fetch_sub(1, std::memory_order_relaxed);
      return AnswerBusyAfterPause();
    }
    asio::post(*server_->verifier,
               [self = this->shared_from_this(), executor = stream_.get_executor(),
                attempt = std::move(attempt)]() mutable {
                 const bool ok = self->server_->auth->Verify(attempt);
                 self->server_->pending_verifications.fetch_sub(1, std::memory_order_relaxed);
                 // The session moves on with the completion, so it is never destroyed on this
                 // thread.
                 asio::post(executor, [self = std::move(self), ok] {
                   if (ok) return self->Respond();
                   self->Answer(Unauthorized());
                 });
               });
  }

  // The deadline timer serves for the pause: no deadline is armed while a request is answered.
  void AnswerBusyAfterPause() {
    timer_.expires_after(kBusyPause);
    timer_.async_wait([self = this->shared_from_this()](const error_code& ec) {
      if (ec) return self->Close();
      self->Answer(VerifiersBusy());
    });
  }

  // Calls the handler with request_ and sends what it answers.
  void Respond() {
    Response response;
    try {
      response = server_->handler(request_);
    } catch (...) {
      response = Response{.status = 500,
                          .content_type = "text/plain; charset=utf-8",
                          .body = "Internal Server Error\n"};
    }
    Answer(std::move(response));
  }

  void Answer(Response response) {
    const auto& msg = parser_->get();
    if (response.stream) {
      const int status = response.status;
      if (status != 204 && status != 304 && !request_.head) return StartStream(std::move(response));
      response.stream = nullptr;
      if (request_.head) return AnswerHeadOfStream(std::move(response));
    }
    PrepareResponse(std::move(response), request_.head, msg.version(), msg.keep_alive());
    // The parser's storage backs `request_`; it is not needed any more.
    request_ = {};
    parser_.reset();
    Write(/*close_after=*/!response_.keep_alive());
  }

  // Streamed bodies. The producer runs on a scrape thread and hands pieces over through
  // handoff_; the session writes them from its strand, one at a time, under one write_timeout
  // for the whole response, counted from the producer's start: a wait in the scrape queue is
  // bounded by the responses ahead, each bounded by its own write_timeout. The
  // header goes out with the first piece only when a second one follows or the producer ends:
  // a body of one piece gets Content-Length, and an error before anything went out is a 500.
  void StartStream(Response response) {
    const auto& msg = parser_->get();
    stream_version_ = msg.version();
    stream_keep_alive_ = msg.keep_alive() && stream_version_ >= 11;
    request_ = {};
    parser_.reset();
    if (server_->pending_scrapes.fetch_add(1, std::memory_order_relaxed) >=
        server_->max_pending_scrapes) {
      server_->pending_scrapes.fetch_sub(1, std::memory_order_relaxed);
      PrepareResponse(ScrapesBusy(), false, stream_version_, stream_keep_alive_);
      return Write(/*close_after=*/!response_.keep_alive());
    }
    SharedState* server = server_;
    handoff_ = std::shared_ptr<StreamHandoff>(new StreamHandoff, [server](StreamHandoff* h) {
      server->Unregister(h);
      delete h;
    });
    server_->Register(handoff_.get());
    // The body goes out in several writes, the header and the final chunk small ones: with
    // Nagle's algorithm each small write after a large one waits for the client's delayed ACK
    // (40 ms on Linux), which more than doubled a 4 MB scrape's latency.
    error_code ignored;
    Socket().set_option(tcp::no_delay(true), ignored);
    stream_head_ = std::move(response);
    BodyProducer producer = std::move(stream_head_.stream);
    stream_head_.stream = nullptr;
    headers_sent_ = false;
    writing_ = false;
    asio::post(*server_->scrape,
               [self = this->shared_from_this(), executor = stream_.get_executor(),
                handoff = handoff_, producer = std::move(producer)] {
                 absl::Status status;
                 if (!handoff->cancelled()) {
                   asio::post(executor, [self] {
                     if (self->handoff_ != nullptr) {
                       self->ArmDeadline(self->options_.write_timeout);
                     }
                   });
                   const BodySink sink = [&handoff, &executor, &self](std::string* piece) {
                     bool wake = false;
                     const bool ok = handoff->Put(piece, &wake);
                     if (wake) asio::post(executor, [self] { self->Pump(); });
                     return ok;
                   };
                   try {
                     status = producer(sink);
                   } catch (const std::exception& e) {
                     status = absl::InternalError(e.what());
                   } catch (...) {
                     status = absl::InternalError("the body's producer failed");
                   }
                 } else {
                   status = absl::CancelledError("the response was abandoned");
                 }
                 self->server_->pending_scrapes.fetch_sub(1, std::memory_order_relaxed);
                 if (handoff->Finish(std::move(status))) {
                   // The session moves on with the completion, so it is never destroyed on this
                   // thread.
                   asio::post(executor, [self = std::move(self)] { self->Pump(); });
                 } else {
                   asio::post(executor, [self = std::move(self)] {});
                 }
               });
  }

  // Runs on the strand whenever the producer has news, and after each piece is written.
  void Pump() {
    if (handoff_ == nullptr || writing_) return;
    if (timed_out_ || handoff_->cancelled()) return Close();
    bool finished = false;
    absl::Status status;
    const bool have = handoff_->Take(&piece_, &finished, &status);
    if (!headers_sent_) {
      if (finished && !status.ok()) {
        EndStream();
        PrepareResponse(Response{.status = 500,
                                 .content_type = "text/plain; charset=utf-8",
                                 .body = absl::StrCat(status.message(), "\n")},
                        false, stream_version_, stream_keep_alive_);
        return Write(/*close_after=*/!response_.keep_alive());
      }
      if (finished) {
        Response whole = std::move(stream_head_);
        whole.body = std::move(piece_);
        EndStream();
        PrepareResponse(std::move(whole), false, stream_version_, stream_keep_alive_);
        return Write(/*close_after=*/!response_.keep_alive());
      }
      if (!have) return;  // the next wake brings more
      return WriteStreamHeader();
    }
    if (have) return WriteStreamPiece();
    if (!finished) return;
    if (!status.ok()) return Abort();
    if (!chunked_) {
      EndStream();
      return LingerClose();
    }
    writing_ = true;
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = this->shared_from_this()](const error_code& ec, size_t) {
                        self->writing_ = false;
                        self->EndStream();
                        self->OnWrite(ec, /*close_after=*/!self->stream_keep_alive_);
                      });
  }

  void WriteStreamHeader() {
    chunked_ = stream_version_ >= 11;
    stream_res_.emplace();
    FillHeader(*stream_res_, stream_head_, stream_version_);
    if (chunked_) {
      stream_res_->chunked(true);
    } else {
      // HTTP/1.0 has no chunks: the body ends where the connection does.
      stream_keep_alive_ = false;
    }
    stream_res_->keep_alive(stream_keep_alive_);
    stream_sr_.emplace(*stream_res_);
    headers_sent_ = true;
    writing_ = true;
    bhttp::async_write_header(stream_, *stream_sr_,
                              [self = this->shared_from_this()](const error_code& ec, size_t) {
                                self->writing_ = false;
                                if (ec || self->timed_out_) return self->Close();
                                self->WriteStreamPiece();
                              });
  }

  void WriteStreamPiece() {
    writing_ = true;
    auto done = [self = this->shared_from_this()](const error_code& ec, size_t) {
      self->writing_ = false;
      if (ec || self->timed_out_) return self->Close();
      self->handoff_->Written(std::move(self->piece_));
      self->piece_ = std::string();
      self->Pump();
    };
    if (chunked_) {
      asio::async_write(stream_, bhttp::make_chunk(asio::buffer(piece_)), std::move(done));
    } else {
      asio::async_write(stream_, asio::buffer(piece_), std::move(done));
    }
  }

  // A HEAD answered with the header a GET would get (chunked, no length), and no producer run.
  void AnswerHeadOfStream(Response response) {
    const auto& msg = parser_->get();
    stream_version_ = msg.version();
    stream_keep_alive_ = msg.keep_alive();
    request_ = {};
    parser_.reset();
    stream_res_.emplace();
    FillHeader(*stream_res_, response, stream_version_);
    if (stream_version_ >= 11) stream_res_->chunked(true);
    stream_res_->keep_alive(stream_keep_alive_);
    stream_sr_.emplace(*stream_res_);
    ArmDeadline(options_.write_timeout);
    bhttp::async_write_header(stream_, *stream_sr_,
                              [self = this->shared_from_this()](const error_code& ec, size_t) {
                                self->stream_sr_.reset();
                                self->stream_res_.reset();
                                self->OnWrite(ec, /*close_after=*/!self->stream_keep_alive_);
                              });
  }

  void EndStream() {
    if (handoff_ != nullptr) handoff_->Cancel();
    handoff_.reset();
    stream_sr_.reset();
    stream_res_.reset();
    stream_head_ = {};
    piece_ = std::string();
  }

  // The body cannot be completed: reset the connection (no final chunk, no clean close), so
  // the client cannot take what it got for the whole body.
  void Abort() {
    EndStream();
    error_code ignored;
    Socket().set_option(asio::socket_base::linger(true, 0), ignored);
    Close();
  }

  static void FillHeader(bhttp::response_header<>& h, const Response& response, unsigned version) {
    h.version(version);
    int status = response.status;
    if (status < 200 || status > 599) status = 500;
    h.result(static_cast<unsigned>(status));
    if (!response.content_type.empty() && IsValidFieldValue(response.content_type)) {
      h.set(bhttp::field::content_type, response.content_type);
    }
    if (!response.content_encoding.empty() && IsValidFieldValue(response.content_encoding)) {
      h.set(bhttp::field::content_encoding, response.content_encoding);
    }
    for (const auto& [name, value] : response.extra_headers) {
      if (IsValidFieldName(name) && IsValidFieldValue(value) && !IsFramingField(name)) {
        h.insert(name, value);
      }
    }
  }

  void PrepareResponse(Response response, bool head, unsigned version, bool keep_alive) {
    response_ = {};
    FillHeader(response_, response, version);
    const unsigned status = response_.result_int();
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
    EndStream();
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
  Request request_;  // the current request, pointing into parser_, until it is answered
  bhttp::response<bhttp::string_body> response_;  // kept here while async_write runs
  // The streamed response being sent, if any.
  std::shared_ptr<StreamHandoff> handoff_;
  Response stream_head_;  // its status and header fields
  std::optional<bhttp::response<bhttp::empty_body>> stream_res_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_sr_;
  std::string piece_;  // being written
  unsigned stream_version_ = 11;
  bool stream_keep_alive_ = false;
  bool chunked_ = false;
  bool headers_sent_ = false;
  bool writing_ = false;
  bool timed_out_ = false;
  size_t header_bytes_ = 0;  // consumed by the parser for the current request's header
  size_t drained_ = 0;
  std::array<char, 4096> drain_;
};

}  // namespace

void StartSession(SharedState* state, tcp::socket socket) {
  if (state->tls != nullptr) {
    std::make_shared<Session<TlsStream>>(state, std::move(socket))->Start();
  } else {
    std::make_shared<Session<tcp::socket>>(state, std::move(socket))->Start();
  }
}

}  // namespace shmetrics::http
