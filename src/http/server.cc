// GCC 12 warns (-Wtsan) that the fences inside Asio's handler invocation are invisible to
// ThreadSanitizer; Asio's real synchronization goes through mutexes and atomics, which it does
// see. Without this, -Werror breaks the ThreadSanitizer build.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "http/server.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/internal/raw_logging.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "http/connection.h"
#include "http/tls.h"

namespace shmetrics::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Pause before accepting again after accept() fails (e.g. EMFILE), so a full descriptor table
// does not turn into a busy loop; the pending connection stays in the backlog meanwhile.
constexpr std::chrono::milliseconds kAcceptRetry{50};

// Password verifications waiting or running at once, per verifier thread. bcrypt at cost 10 takes
// tens of milliseconds, so a full queue is answered within a second or so; beyond it a request
// gets 503 at once instead of queueing without bound.
constexpr size_t kPendingVerificationsPerThread = 8;

// Verifier threads: at most half the cores, so that verification never takes the whole machine
// from the io threads (and from the application), and at most 2, because the cache makes
// hashing rare for scrapers that know their password. At least 1.
int VerifierThreads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(cores / 2, 1u, 2u));
}

// Verifier threads run this much nicer than the process (Linux applies it to the calling thread
// alone): where cores are short, a hash waits for the io threads and the application instead
// of delaying them, while still getting about a tenth of a contended core (CFS weights 110 to
// 1024). Lowering a thread's own priority needs no privilege; failure leaves it as it was.
constexpr int kVerifierNice = 10;

void LowerThisThreadsPriority() {
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (errno != 0) return;
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), std::min(current + kVerifierNice, 19));
}

constexpr std::string_view kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";

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
  if (o.max_queued_scrapes < 1) {
    return absl::InvalidArgumentError("ServerOptions.max_queued_scrapes must be >= 1");
  }
  if (o.scrape_threads < 1) {
    return absl::InvalidArgumentError("ServerOptions.scrape_threads must be >= 1");
  }
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
  // Reads the users when options ask for basic authentication.
  absl::Status LoadAuth();
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
  // The verifier threads' own context (with basic authentication only). Its queued handlers
  // hold sessions, whose sockets belong to ioc_, so it goes first.
  std::unique_ptr<asio::io_context> verifier_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> verifier_work_;
  // The scrape threads' context, where streamed bodies are produced; like the verifiers', its
  // queued handlers hold sessions.
  std::unique_ptr<asio::io_context> scrape_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> scrape_work_;
  absl::Mutex stop_mu_;
  // Filled by Run and emptied by Stop, both under stop_mu_, so a handler that wrongly calls
  // Stop while Run is still starting threads waits instead of racing on the vector.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(stop_mu_);
  std::vector<std::thread> verifier_threads_ ABSL_GUARDED_BY(stop_mu_);
  std::vector<std::thread> scrape_threads_ ABSL_GUARDED_BY(stop_mu_);
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

absl::Status Server::Impl::LoadAuth() {
  if (options_.basic_auth_users.empty()) return absl::OkStatus();
  auto auth = BasicAuth::Create(options_.basic_auth_users);
  if (!auth.ok()) return auth.status();
  state_.auth = *std::move(auth);
  const int threads = VerifierThreads();
  verifier_ = std::make_unique<asio::io_context>(threads);
  state_.verifier = verifier_.get();
  state_.max_pending_verifications = kPendingVerificationsPerThread * threads;
  return absl::OkStatus();
}

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
  const int verifiers = verifier_ == nullptr ? 0 : VerifierThreads();
  // Start returns once every io and verifier thread runs. A pre-fork master forks right after
  // starting the exposer; a thread still being set up then (allocating its stack, its TLS, the
  // sanitizers' per-thread state) is the one moment a child could inherit a lock held by it.
  absl::BlockingCounter running(options_.threads + verifiers + options_.scrape_threads);
  scrape_ = std::make_unique<asio::io_context>(options_.scrape_threads);
  state_.scrape = scrape_.get();
  state_.max_pending_scrapes = options_.max_queued_scrapes;
  scrape_work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      scrape_->get_executor());
  for (int i = 0; i < options_.scrape_threads; ++i) {
    scrape_threads_.emplace_back([this, &running] {
      running.DecrementCount();
      // Producers' exceptions are caught around them; this only keeps the thread alive.
      for (;;) {
        try {
          scrape_->run();
          return;
        } catch (...) {
        }
      }
    });
  }
  if (verifier_ != nullptr) {
    verifier_work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        verifier_->get_executor());
    for (int i = 0; i < verifiers; ++i) {
      verifier_threads_.emplace_back([this, &running] {
        LowerThisThreadsPriority();
        running.DecrementCount();
        // Verify and the handlers around it do not throw; this only keeps the thread alive.
        for (;;) {
          try {
            verifier_->run();
            return;
          } catch (...) {
          }
        }
      });
    }
  }
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this, &running] {
      running.DecrementCount();
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
  running.Wait();
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
    StartSession(&state_, std::move(socket));
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
  new std::vector<std::thread>(std::move(verifier_threads_));
  new std::vector<std::thread>(std::move(scrape_threads_));
  (void)scrape_work_.release();
  (void)scrape_.release();
  (void)verifier_work_.release();
  (void)verifier_.release();
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
  if (verifier_ != nullptr) verifier_->stop();
  // Producers waiting for room to hand over a piece give up, and running ones stop at their
  // next piece, so the scrape threads can be joined.
  state_.StopStreams();
  if (scrape_ != nullptr) scrape_->stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  for (std::thread& t : verifier_threads_) t.join();
  verifier_threads_.clear();
  for (std::thread& t : scrape_threads_) t.join();
  scrape_threads_.clear();
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
  // Destroys the verifications still queued, and the sessions they hold, while ioc_ is there.
  verifier_work_.reset();
  state_.verifier = nullptr;
  verifier_.reset();
  scrape_work_.reset();
  state_.scrape = nullptr;
  scrape_.reset();
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
  if (absl::Status s = impl->LoadAuth(); !s.ok()) return s;
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port(); }

const std::string& Server::endpoint() const { return impl_->endpoint(); }

void Server::Stop() { impl_->Stop(); }

}  // namespace shmetrics::http
