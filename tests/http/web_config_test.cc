// The exporter-toolkit web configuration reader: what it accepts, and a clear error for
// everything else.
#include "http/web_config.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/tls_helpers.h"

namespace shmetrics::http {
namespace {

using ::shmetrics::http::testing::HtpasswdBcrypt;
using ::testing::HasSubstr;

const std::string& Hash() {
  static const std::string hash = HtpasswdBcrypt("prometheus", "pw");
  return hash;
}

absl::StatusOr<WebConfig> Parse(const std::string& yaml) {
  return ParseWebConfig(yaml, "/etc/app", "web.yml");
}

// The error message of parsing `yaml`, which must fail with InvalidArgument.
std::string ErrorOf(const std::string& yaml) {
  auto config = Parse(yaml);
  EXPECT_FALSE(config.ok()) << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  return std::string(config.status().message());
}

TEST(WebConfigTest, ReadsTlsAndUsersLikeExporterToolkit) {
  auto config = Parse(
      "# as for a Prometheus exporter\n"
      "tls_server_config:\n"
      "  cert_file: tls/server.crt\n"
      "  key_file: /abs/server.key\n"
      "  min_version: TLS13\n"
      "basic_auth_users:\n"
      "  prometheus: " +
      Hash() +
      "\n"
      "  'other user': '" +
      Hash() + "'\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tls_cert_file, "/etc/app/tls/server.crt");
  EXPECT_EQ(config->tls_key_file, "/abs/server.key");
  EXPECT_EQ(config->tls_min_version, 13);
  EXPECT_EQ(config->basic_auth_users.size(), 2u);
  EXPECT_EQ(config->basic_auth_users.at("prometheus"), Hash());
  EXPECT_EQ(config->basic_auth_users.at("other user"), Hash());
}

TEST(WebConfigTest, EmptyOrEmptySectionsMeanPlainHttpWithoutAuth) {
  for (const std::string yaml : {"", "# nothing\n", "tls_server_config:\nbasic_auth_users: {}\n",
                                 "tls_server_config: {}\n"}) {
    auto config = Parse(yaml);
    ASSERT_TRUE(config.ok()) << yaml << config.status();
    EXPECT_TRUE(config->tls_cert_file.empty());
    EXPECT_TRUE(config->tls_key_file.empty());
    EXPECT_EQ(config->tls_min_version, 12);
    EXPECT_TRUE(config->basic_auth_users.empty());
  }
}

TEST(WebConfigTest, UnsupportedOrMalformedContentIsAClearError) {
  EXPECT_THAT(ErrorOf("tls_server_config:\n  cert_file: a\n  client_auth_type: "
                      "RequireAndVerifyClientCert\n"),
              HasSubstr("line 3: tls_server_config: \"client_auth_type\" is not supported"));
  EXPECT_THAT(ErrorOf("http_server_config:\n  http2: false\n"),
              HasSubstr("\"http_server_config\" is not supported"));
  EXPECT_THAT(ErrorOf("tls_server_config:\n  cert_file: a\n"), HasSubstr("missing key_file"));
  EXPECT_THAT(ErrorOf("tls_server_config:\n  key_file: a\n"), HasSubstr("missing cert_file"));
  EXPECT_THAT(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n"),
              HasSubstr("min_version \"TLS10\" is not TLS12 or TLS13"));
  EXPECT_THAT(ErrorOf("tls_server_config:\n  cert_file: [a]\n  key_file: b\n"),
              HasSubstr("line 2: cert_file must be a non-empty string"));
  EXPECT_THAT(ErrorOf("basic_auth_users:\n  a: " + Hash() + "\n  a: " + Hash() + "\n"),
              HasSubstr("line 3: basic_auth_users: duplicate key \"a\""));
  EXPECT_THAT(ErrorOf("basic_auth_users:\n  alice: plaintext\n"),
              HasSubstr("line 2: basic auth user \"alice\": the password hash is not"));
  EXPECT_THAT(ErrorOf("basic_auth_users:\n  alice:\n"),
              HasSubstr("the hash of user \"alice\" must be a non-empty string"));
  EXPECT_THAT(ErrorOf("basic_auth_users: [alice]\n"),
              HasSubstr("basic_auth_users must be a mapping"));
  EXPECT_THAT(ErrorOf("just a string\n"), HasSubstr("must be a mapping"));
  EXPECT_THAT(ErrorOf("tls_server_config: {cert_file: a\n"), HasSubstr("web.yml: not valid YAML"));
}

TEST(WebConfigTest, ABcryptCostAboveTheCapIsAOneLineErrorNamingUserCostAndLine) {
  std::string hash = Hash();
  ASSERT_THAT(hash, ::testing::StartsWith("$2y$04$"));
  hash.replace(4, 2, "15");
  const std::string error =
      ErrorOf("basic_auth_users:\n  prometheus: " + Hash() + "\n  slow: " + hash + "\n");
  EXPECT_EQ(error,
            "web.yml: line 3: basic auth user \"slow\": bcrypt cost 15 is above the maximum of "
            "14 (each step doubles the time of every check); hash the password again with a "
            "lower cost");
  hash.replace(4, 2, "10");
  EXPECT_TRUE(Parse("basic_auth_users:\n  ok: " + hash + "\n").ok());
}

TEST(WebConfigTest, FileRelativePathsResolveAgainstItsDirectory) {
  std::string dir = ::testing::TempDir();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string path = dir + "/shmetrics-web-config-test.yml";
  std::ofstream(path) << "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n";
  auto config = LoadWebConfigFile(path);
  std::remove(path.c_str());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tls_cert_file, dir + "/c.pem");
  EXPECT_EQ(config->tls_key_file, dir + "/k.pem");
}

TEST(WebConfigTest, MissingFileIsNotFoundNamingIt) {
  auto config = LoadWebConfigFile("/nonexistent/shmetrics/web.yml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("'/nonexistent/shmetrics/web.yml'"));
}

}  // namespace
}  // namespace shmetrics::http
