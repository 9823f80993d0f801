#include "http/basic_auth.h"

#include <crypt.h>

#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "http/responses.h"
#include "openssl/crypto.h"
#include "openssl/evp.h"

namespace shmetrics::http {
namespace {

// What an unknown user's password is hashed against, so that the answer takes as long as for a
// known user with a bcrypt hash of the usual cost. (bcrypt, cost 10, of a password nobody uses.)
constexpr char kDummyHash[] = "$2y$10$UiDWhuLNs05MzuoOg1aQ9eGE4KcjqG/aJm3vuCC3H7rqwcNSig1c2";

// crypt(3) of `password` with `hash` as the setting; nullopt when crypt refuses the setting.
// crypt_rn needs NUL-terminated strings.
std::optional<std::string> Crypt(const std::string& password, const char* hash) {
  auto data = std::make_unique<crypt_data>();  // value-initialized: zeroed, as crypt_rn asks
  const char* out = crypt_rn(password.c_str(), hash, data.get(), sizeof(crypt_data));
  if (out == nullptr) return std::nullopt;
  return std::string(out);
}

// The kinds of hash accepted: bcrypt, sha256-crypt and sha512-crypt, the ones exporter-toolkit
// users generate (bcrypt) and the ones Debian's mkpasswd, `openssl passwd -5/-6` and Python's
// crypt make. libxcrypt calls sha256-crypt "legacy" (still sound, no longer its default). A
// complete hash is what crypt makes with it as the setting, up to the digest: that rejects
// truncated hashes, which crypt would otherwise treat as a salt and never match.
bool IsSupportedHash(const std::string& hash) {
  for (const char* prefix : {"$2a$", "$2b$", "$2y$", "$5$", "$6$"}) {
    if (hash.rfind(prefix, 0) != 0) continue;
    const int check = crypt_checksalt(hash.c_str());
    if (check != CRYPT_SALT_OK && check != CRYPT_SALT_METHOD_LEGACY) return false;
    const std::optional<std::string> sample = Crypt("x", hash.c_str());
    return sample.has_value() && sample->size() == hash.size() &&
           sample->compare(0, sample->rfind('$'), hash, 0, hash.rfind('$')) == 0;
  }
  return false;
}

bool EqualConstantTime(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// crypt(3) of `password` with `hash` as the setting equals `hash` exactly when the password is
// the one the hash was made from. A password with a NUL inside can never match, since what is
// hashed would stop at the NUL.
bool VerifyHash(const std::string& password, const char* hash) {
  if (password.find('\0') != std::string::npos) return false;
  const std::optional<std::string> out = Crypt(password, hash);
  return out.has_value() && EqualConstantTime(*out, hash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BasicAuth>> BasicAuth::Create(
    const std::map<std::string, std::string>& users) {
  for (const auto& [user, hash] : users) {
    if (user.empty() || user.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("basic auth user name \"", user, "\" must be non-empty and hold no ':'"));
    }
    if (!IsSupportedHash(hash)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "basic auth user \"", user,
          "\": the password hash is not a valid bcrypt ($2a$, $2b$, $2y$), sha256-crypt ($5$) or "
          "sha512-crypt ($6$) hash"));
    }
  }
  return std::unique_ptr<BasicAuth>(new BasicAuth(users));
}

bool BasicAuth::Check(std::string_view authorization) {
  // "Basic" is case-insensitive (RFC 7617); one or more spaces follow it.
  constexpr std::string_view kScheme = "basic";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if ((authorization[i] | 0x20) != kScheme[i]) return false;
  }
  std::string_view encoded = authorization.substr(kScheme.size());
  if (encoded.front() != ' ') return false;
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  std::string decoded;
  if (encoded.empty() ||
      !absl::Base64Unescape(absl::string_view(encoded.data(), encoded.size()), &decoded)) {
    return false;
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded.substr(0, colon);
  const std::string password = decoded.substr(colon + 1);

  // The cache key covers user and password, length-prefixed so that no two pairs collide.
  Digest key{};
  const std::string material = absl::StrCat(user.size(), ":", user, password);
  unsigned int key_size = 0;
  if (EVP_Digest(material.data(), material.size(), key.data(), &key_size, EVP_sha256(), nullptr) !=
          1 ||
      key_size != key.size()) {
    return false;
  }
  if (IsCached(key)) return true;

  const auto it = users_.find(user);
  const bool known = it != users_.end();
  const bool ok = VerifyHash(password, known ? it->second.c_str() : kDummyHash) && known;
  if (ok) Remember(key);
  return ok;
}

bool BasicAuth::IsCached(const Digest& key) {
  std::lock_guard<std::mutex> lock(mu_);
  // Every entry is compared in full, whatever matches, so the time taken tells nothing.
  bool found = false;
  for (const Digest& d : verified_) {
    found |= CRYPTO_memcmp(d.data(), key.data(), key.size()) == 0;
  }
  return found;
}

void BasicAuth::Remember(const Digest& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (verified_.size() >= kMaxCached) verified_.clear();
  verified_.push_back(key);
}

Response Unauthorized() {
  Response response = TextResponse(401, "Unauthorized\n");
  response.extra_headers.emplace_back("WWW-Authenticate", "Basic");
  return response;
}

}  // namespace shmetrics::http
