// BasicAuth: HTTP basic authentication against crypt(3) password hashes, the way Prometheus's
// exporter-toolkit checks its `basic_auth_users`.
//
// Hashes are verified by libxcrypt's crypt_rn, which reads bcrypt ("$2b$", "$2a$", "$2y$" as
// written by `htpasswd -B` or Python's bcrypt), sha512-crypt ("$6$") and sha256-crypt ("$5$").
// bcrypt is slow on purpose (tens of milliseconds at cost 10), so a successful verification is
// remembered: the cache holds SHA-256(user, password) digests, never passwords, and is
// compared in constant time. Failures are never cached, so a wrong password always costs a
// full hash; an unknown user is checked against a dummy hash so that it costs the same.
//
// Thread safety: Check may be called from any number of threads at once.
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
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "http/server.h"

namespace shmetrics::http {

class BasicAuth {
 public:
  // Most verified credentials remembered at once. bcrypt reads only the first 72 bytes of a
  // password, so one user may have many passwords that pass; the cache is emptied when full
  // rather than allowed to grow.
  static constexpr size_t kMaxCached = 64;

  // `users` maps a user name to its crypt hash. InvalidArgument names the user whose name is
  // empty or holds ':', or whose hash is not one of the supported kinds.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BasicAuth>> Create(
      const std::map<std::string, std::string>& users);

  BasicAuth(const BasicAuth&) = delete;
  BasicAuth& operator=(const BasicAuth&) = delete;

  // True when `authorization` (the Authorization header's value) is "Basic " followed by the
  // base64 of "user:password" for a configured user and the password its hash was made from.
  [[nodiscard]] bool Check(std::string_view authorization);

 private:
  using Digest = std::array<unsigned char, 32>;

  explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}

  [[nodiscard]] bool IsCached(const Digest& key);
  void Remember(const Digest& key);

  // Constant after construction.
  const std::map<std::string, std::string> users_;

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built for ThreadSanitizer, which
  // would not see absl::Mutex order the accesses.
  std::mutex mu_;
  std::vector<Digest> verified_;  // guarded by mu_
};

// 401 "Unauthorized\n" with `WWW-Authenticate: Basic`, the whole answer to a request that fails
// BasicAuth::Check.
[[nodiscard]] Response Unauthorized();

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_BASIC_AUTH_H_
