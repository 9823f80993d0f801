#include "http/basic_auth.h"

#include <crypt.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "http/responses.h"
#include "openssl/crypto.h"
#include "openssl/evp.h"

namespace shmetrics::http {
namespace {

// What an unknown user's password is hashed against when there are no users: bcrypt of the
// usual cost (10), of a password nobody uses.
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

// The cost of a bcrypt hash ("$2y$10$..."); -1 when `hash` does not start like one.
int BcryptCost(const std::string& hash) {
  if (hash.size() < 7 || hash.compare(0, 2, "$2") != 0 || hash[3] != '$' || hash[6] != '$' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(hash[4])) ||
      !absl::ascii_isdigit(static_cast<unsigned char>(hash[5]))) {
    return -1;
  }
  return (hash[4] - '0') * 10 + (hash[5] - '0');
}

// The rounds of a sha-crypt hash ("$5$rounds=N$..."); 5000, the default, without the field, and
// -1 for other hashes. Numbers too long to read count as too many.
long ShaCryptRounds(const std::string& hash) {
  if (hash.rfind("$5$", 0) != 0 && hash.rfind("$6$", 0) != 0) return -1;
  constexpr std::string_view kField = "rounds=";
  if (hash.compare(3, kField.size(), kField) != 0) return 5000;
  const char* digits = hash.c_str() + 3 + kField.size();
  errno = 0;
  const long rounds = std::strtol(digits, nullptr, 10);
  return errno == ERANGE ? LONG_MAX : rounds;
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

absl::Status BasicAuth::ValidateUser(const std::string& user, const std::string& hash) {
  if (user.empty() || user.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("basic auth user name \"", user, "\" must be non-empty and hold no ':'"));
  }
  // The cost goes first: checking that the hash is complete runs it once, which at a cost of
  // 31 would take days.
  if (const int cost = BcryptCost(hash); cost > kMaxBcryptCost) {
    return absl::InvalidArgumentError(
        absl::StrCat("basic auth user \"", user, "\": bcrypt cost ", cost,
                     " is above the maximum of ", kMaxBcryptCost,
                     " (each step doubles the time of every check); hash the password again "
                     "with a lower cost"));
  }
  if (const long rounds = ShaCryptRounds(hash); rounds > kMaxShaCryptRounds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "basic auth user \"", user, "\": sha-crypt rounds=", rounds, " is above the maximum of ",
        kMaxShaCryptRounds, "; hash the password again with fewer rounds"));
  }
  if (!IsSupportedHash(hash)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "basic auth user \"", user,
        "\": the password hash is not a valid bcrypt ($2a$, $2b$, $2y$), sha256-crypt ($5$) or "
        "sha512-crypt ($6$) hash"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BasicAuth>> BasicAuth::Create(
    const std::map<std::string, std::string>& users) {
  // The decoy: the most expensive bcrypt hash, or without one the sha-crypt hash of the most
  // rounds (a bcrypt decoy would make unknown users slower than known ones).
  std::string decoy = kDummyHash;
  int decoy_cost = -1;
  long decoy_rounds = -1;
  for (const auto& [user, hash] : users) {
    if (absl::Status s = ValidateUser(user, hash); !s.ok()) return s;
    if (BcryptCost(hash) > decoy_cost) {
      decoy = hash;
      decoy_cost = BcryptCost(hash);
    } else if (decoy_cost < 0 && ShaCryptRounds(hash) > decoy_rounds) {
      decoy = hash;
      decoy_rounds = ShaCryptRounds(hash);
    }
  }
  return std::unique_ptr<BasicAuth>(new BasicAuth(users, std::move(decoy)));
}

BasicAuth::Verdict BasicAuth::Precheck(std::string_view authorization, Attempt* attempt) {
  // "Basic" is case-insensitive (RFC 7617); one or more spaces follow it.
  constexpr std::string_view kScheme = "basic";
  if (authorization.size() <= kScheme.size()) return Verdict::kRejected;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if ((authorization[i] | 0x20) != kScheme[i]) return Verdict::kRejected;
  }
  std::string_view encoded = authorization.substr(kScheme.size());
  if (encoded.front() != ' ') return Verdict::kRejected;
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  std::string decoded;
  if (encoded.empty() ||
      !absl::Base64Unescape(absl::string_view(encoded.data(), encoded.size()), &decoded)) {
    return Verdict::kRejected;
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return Verdict::kRejected;
  const std::string user = decoded.substr(0, colon);

  const auto it = users_.find(user);
  attempt->known = it != users_.end();
  attempt->hash = attempt->known ? &it->second : &decoy_;
  attempt->password = decoded.substr(colon + 1);
  // The key covers user, hash and password, each but the last length-prefixed so that no two
  // triples collide. The hash is there as in exporter-toolkit: a key never outlives the hash it
  // was verified against.
  const std::string material = absl::StrCat(user.size(), ":", user, attempt->hash->size(), ":",
                                            *attempt->hash, attempt->password);
  unsigned int key_size = 0;
  if (EVP_Digest(material.data(), material.size(), attempt->key.data(), &key_size, EVP_sha256(),
                 nullptr) != 1 ||
      key_size != attempt->key.size()) {
    return Verdict::kRejected;
  }
  // Only known users' successes are ever cached, so an unknown user always goes on to the hash.
  return IsCached(attempt->key) ? Verdict::kAccepted : Verdict::kNeedsHash;
}

bool BasicAuth::Verify(const Attempt& attempt) {
  if (attempt.hash == nullptr) return false;
  const bool ok = VerifyHash(attempt.password, attempt.hash->c_str()) && attempt.known;
  if (ok) Remember(attempt.key);
  return ok;
}

bool BasicAuth::Check(std::string_view authorization) {
  Attempt attempt;
  switch (Precheck(authorization, &attempt)) {
    case Verdict::kAccepted:
      return true;
    case Verdict::kRejected:
      return false;
    case Verdict::kNeedsHash:
      break;
  }
  return Verify(attempt);
}

bool BasicAuth::IsCached(const Digest& key) {
  util::Locked lock(mu_);
  // Every entry is compared in full, whatever matches, so the time taken tells nothing.
  bool found = false;
  for (const Digest& d : verified_) {
    found |= CRYPTO_memcmp(d.data(), key.data(), key.size()) == 0;
  }
  return found;
}

void BasicAuth::Remember(const Digest& key) {
  util::Locked lock(mu_);
  for (const Digest& d : verified_) {
    if (CRYPTO_memcmp(d.data(), key.data(), key.size()) == 0) return;  // verified twice at once
  }
  if (verified_.size() < kMaxCached) {
    verified_.push_back(key);
    return;
  }
  verified_[next_] = key;
  next_ = (next_ + 1) % kMaxCached;
}

Response Unauthorized() {
  Response response = TextResponse(401, "Unauthorized\n");
  response.extra_headers.emplace_back("WWW-Authenticate", "Basic");
  return response;
}

}  // namespace shmetrics::http
