// Web configuration files: TLS and basic authentication for the metrics endpoint, read from the
// YAML file format of Prometheus's exporter-toolkit (`--web.config.file` of the Prometheus
// exporters), so one file serves both:
//
//   tls_server_config:
//     cert_file: server.crt      # PEM certificate chain; relative to the file's directory
//     key_file: server.key       # PEM private key
//     min_version: TLS12         # optional: TLS12 (default) or TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...     # bcrypt ($2a$/$2b$/$2y$), sha256-crypt ($5$), sha512-crypt ($6$)
//
// Both sections are optional; an empty file means plain HTTP without authentication. The parse
// is strict: a key this reader does not implement (client_auth_type, cipher_suites,
// http_server_config, ...) is an error rather than silently ignored, as are duplicate keys, a
// cert_file without key_file (or the reverse) and a hash of an unsupported kind.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_HTTP_WEB_CONFIG_H_
#define SHMETRICS_SRC_HTTP_WEB_CONFIG_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shmetrics::http {

struct WebConfig {
  std::string tls_cert_file{};  // both empty: plain HTTP
  std::string tls_key_file{};
  int tls_min_version = 12;                               // 12 or 13
  std::map<std::string, std::string> basic_auth_users{};  // user -> crypt hash; empty: no auth
};

// Parses the text of a web configuration file. Relative cert_file and key_file paths are taken
// relative to `base_dir` (unchanged when it is empty). `source` names the text in errors.
// InvalidArgument says what is wrong and, when it can, on which line.
[[nodiscard]] absl::StatusOr<WebConfig> ParseWebConfig(std::string_view yaml,
                                                       const std::string& base_dir,
                                                       const std::string& source);

// Reads and parses the file at `path`; relative paths inside resolve against its directory.
// NotFound / PermissionDenied when it cannot be read; see ParseWebConfig for the rest.
[[nodiscard]] absl::StatusOr<WebConfig> LoadWebConfigFile(const std::string& path);

}  // namespace shmetrics::http

#endif  // SHMETRICS_SRC_HTTP_WEB_CONFIG_H_
