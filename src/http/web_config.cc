#include "http/web_config.h"

#include <errno.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "http/basic_auth.h"
#include "yaml-cpp/yaml.h"

namespace shmetrics::http {
namespace {

// Files larger than this are not web configurations; refusing them bounds what is read.
constexpr std::streamsize kMaxFileBytes = 1 << 20;

class Parser {
 public:
  explicit Parser(const std::string& source) : source_(source) {}

  absl::Status Error(const YAML::Node& node, const std::string& what) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(source_, ": ", what));
    return absl::InvalidArgumentError(absl::StrCat(source_, ": line ", mark.line + 1, ": ", what));
  }

  // Calls f(key, value) for each entry of a mapping (a null node is an empty mapping); keys
  // must be strings and appear once.
  template <class F>
  absl::Status ForEachEntry(const YAML::Node& node, const std::string& where, F f) const {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) return Error(node, absl::StrCat(where, " must be a mapping"));
    std::set<std::string> seen;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) {
        return Error(entry.first, absl::StrCat(where, ": keys must be strings"));
      }
      const std::string key = entry.first.Scalar();
      if (!seen.insert(key).second) {
        return Error(entry.first, absl::StrCat(where, ": duplicate key \"", key, "\""));
      }
      if (absl::Status s = f(key, entry.second); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& node, const std::string& what, std::string* out) const {
    if (!node.IsScalar() || node.Scalar().empty()) {
      return Error(node, absl::StrCat(what, " must be a non-empty string"));
    }
    *out = node.Scalar();
    return absl::OkStatus();
  }

 private:
  const std::string& source_;
};

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (base_dir.empty() || path.front() == '/') return path;
  return absl::StrCat(base_dir, "/", path);
}

absl::Status ParseTls(const Parser& p, const YAML::Node& node, const std::string& base_dir,
                      WebConfig* config) {
  absl::Status s = p.ForEachEntry(
      node, "tls_server_config", [&](const std::string& key, const YAML::Node& value) {
        if (key == "cert_file") return p.String(value, "cert_file", &config->tls_cert_file);
        if (key == "key_file") return p.String(value, "key_file", &config->tls_key_file);
        if (key == "min_version") {
          std::string v;
          if (absl::Status s = p.String(value, "min_version", &v); !s.ok()) return s;
          if (v == "TLS12") {
            config->tls_min_version = 12;
          } else if (v == "TLS13") {
            config->tls_min_version = 13;
          } else {
            return p.Error(value, absl::StrCat("min_version \"", v, "\" is not TLS12 or TLS13"));
          }
          return absl::OkStatus();
        }
        return p.Error(value, absl::StrCat("tls_server_config: \"", key,
                                           "\" is not supported (only cert_file, key_file and "
                                           "min_version are)"));
      });
  if (!s.ok()) return s;
  if (config->tls_cert_file.empty() != config->tls_key_file.empty()) {
    return p.Error(node, config->tls_cert_file.empty() ? "tls_server_config: missing cert_file"
                                                       : "tls_server_config: missing key_file");
  }
  if (!config->tls_cert_file.empty()) {
    config->tls_cert_file = Resolve(base_dir, config->tls_cert_file);
    config->tls_key_file = Resolve(base_dir, config->tls_key_file);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& base_dir,
                                         const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid YAML: ", e.what()));
  }
  Parser p(source);
  WebConfig config;
  absl::Status s;
  try {
    s = p.ForEachEntry(
        root, "the web configuration",
        [&](const std::string& key, const YAML::Node& value) -> absl::Status {
          if (key == "tls_server_config") {
            return ParseTls(p, value, base_dir, &config);
          }
          if (key == "basic_auth_users") {
            return p.ForEachEntry(
                value, "basic_auth_users", [&](const std::string& user, const YAML::Node& hash) {
                  std::string& out = config.basic_auth_users[user];
                  if (absl::Status s =
                          p.String(hash, absl::StrCat("the hash of user \"", user, "\""), &out);
                      !s.ok()) {
                    return s;
                  }
                  if (absl::Status s = BasicAuth::ValidateUser(user, out); !s.ok()) {
                    return p.Error(hash, std::string(s.message()));
                  }
                  return absl::OkStatus();
                });
          }
          return p.Error(value, absl::StrCat("\"", key,
                                             "\" is not supported (only "
                                             "tls_server_config and "
                                             "basic_auth_users are)"));
        });
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  if (!s.ok()) return s;
  return config;
}

absl::StatusOr<WebConfig> LoadWebConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    std::string message =
        absl::StrCat("cannot read web config file '", path, "': ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  std::string text(static_cast<size_t>(kMaxFileBytes) + 1, '\0');
  in.read(text.data(), kMaxFileBytes + 1);
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read web config file '", path, "'"));
  }
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxFileBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("web config file '", path, "' is larger than 1 MiB"));
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + (slash == 0));
  return ParseWebConfig(text, dir, absl::StrCat("web config file '", path, "'"));
}

}  // namespace shmetrics::http
