// BasicAuth: HTTP basic authentication against crypt(3) password hashes, the way Prometheus's
// exporter-toolkit checks its `basic_auth_users`.
//
// Hashes are verified by libxcrypt's crypt_rn, which reads bcrypt ("$2b$", "$2a$", "$2y$" as
// written by `htpasswd -B` or Python's bcrypt), sha512-crypt ("$6$") and sha256-crypt ("$5$").
// bcrypt is slow on purpose (tens of milliseconds at cost 10), so a check comes in two parts:
// Precheck, cheap, parses the header and looks the credentials up among those verified before;
// Verify, slow, runs the hash (the server runs it on its verifier threads, off the io threads).
// The cache holds SHA-256(user, the user's hash, password) digests, never passwords, at most
// kMaxCached of them (the oldest goes first), and is compared in constant time. Unlike
// exporter-toolkit's, it holds successes only: a wrong password always costs a full hash. An
// unknown user is checked against the most expensive configured bcrypt hash (sha-crypt hash
// when there is no bcrypt one), so that it costs what a known user costs (exporter-toolkit
// uses a fixed cost-10 decoy, which gives away users with other costs).
//
// bcrypt costs above kMaxBcryptCost and sha-crypt rounds above kMaxShaCryptRounds are refused:
// each step of cost doubles the work, and at cost 15 one wrong password would hold a verifier
// thread for seconds.
//
// Thread safety: every member may be called from any number of threads at once.
//
// Example:
//   auto auth = BasicAuth::Create({{"prometheus", "$2y$10$..."}});
//   if (!auth.ok()) return auth.status();
//   if (!(*auth)->Check(request.authorization)) return Unauthorized();
#ifndef SHMETRICS_SRC_HTTP_BASIC_AUTH_H_
#define SHMETRICS_SRC_HTTP_BASIC_AUTH_H_

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "http/server.h"
#include "util/annotated_mutex.h"

namespace shmetrics::http {

class BasicAuth {
 public:
  // Most verified credentials remembered at once. bcrypt reads only the first 72 bytes of a
  // password, so one user may have many passwords that pass; beyond this many the oldest is
  // forgotten rather than the cache allowed to grow.
  static constexpr size_t kMaxCached = 64;
  // Highest bcrypt cost accepted. Cost 14 is over a second of one core per verification on
  // current hardware (cost 10, what htpasswd and exporter-toolkit's docs use, is 1/16 of it).
  static constexpr int kMaxBcryptCost = 14;
  // Highest sha256-crypt / sha512-crypt rounds accepted (the default is 5000): about the work of
  // bcrypt at kMaxBcryptCost.
  static constexpr long kMaxShaCryptRounds = 1000000;

  // `users` maps a user name to its crypt hash. InvalidArgument (see ValidateUser) for the first
  // user that is not valid.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BasicAuth>> Create(
      const std::map<std::string, std::string>& users);

  // InvalidArgument, one line naming `user`, when the name is empty or holds ':', when the hash
  // is not one of the supported kinds, or when its cost (rounds) is above the limit.
  [[nodiscard]] static absl::Status ValidateUser(const std::string& user, const std::string& hash);

  BasicAuth(const BasicAuth&) = delete;
  BasicAuth& operator=(const BasicAuth&) = delete;

  // Credentials that Precheck could not decide, to hand to Verify (on another thread, if need
  // be). Holds the password: keep it no longer than the request.
  struct Attempt {
    std::string password;
    const std::string* hash = nullptr;  // the user's, or the decoy for an unknown user
    bool known = false;
    std::array<unsigned char, 32> key{};
  };

  enum class Verdict {
    kAccepted,   // verified before (cached)
    kRejected,   // no well-formed Basic credentials: reject without hashing
    kNeedsHash,  // *attempt filled: Verify decides
  };

  // The cheap part: parses `authorization` (the Authorization header's value, "Basic " and the
  // base64 of "user:password") and looks the credentials up in the cache.
  [[nodiscard]] Verdict Precheck(std::string_view authorization, Attempt* attempt);

  // The slow part: hashes the password; true when it is the one the user's hash was made from.
  // Remembers a success, so the next Precheck of the same credentials accepts them.
  [[nodiscard]] bool Verify(const Attempt& attempt);

  // Precheck, then Verify when needed, on the calling thread.
  [[nodiscard]] bool Check(std::string_view authorization);

 private:
  using Digest = std::array<unsigned char, 32>;

  BasicAuth(std::map<std::string, std::string> users, std::string decoy)
      : users_(std::move(users)), decoy_(std::move(decoy)) {}

  [[nodiscard]] bool IsCached(const Digest& key);
  void Remember(const Digest& key);

  // Constant after construction.
  const std::map<std::string, std::string> users_;
  const std::string decoy_;

  util::AnnotatedMutex mu_;
  std::vector<Digest> verified_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;  // where the next entry goes once verified_ is full
};

// 401 "Unauthorized\n" with `WWW-Authenticate: Basic`, the whole answer to a request that fails
// BasicAuth::Check.
[[nodiscard]] Response Unauthorized();

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_BASIC_AUTH_H_
