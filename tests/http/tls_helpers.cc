#include "http/tls_helpers.h"

#include <stdlib.h>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "util/subprocess.h"

namespace shmetrics::http::testing {

using ::shmetrics::testing::Shell;

TestCertificate::TestCertificate() {
  std::string templ = ::testing::TempDir() + "/shmetrics-tls-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = templ;
  int rc = -1;
  const std::string out = Shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
      " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
          ShellQuote(key_file()) + " -out " + ShellQuote(cert_file()) + " 2>&1",
      &rc);
  ok_ = rc == 0;
  if (!ok_) error_ = "openssl req failed: " + out;
}

TestCertificate::~TestCertificate() {
  if (!dir_.empty()) Shell("rm -rf " + ShellQuote(dir_));
}

std::string BasicCredentials(std::string_view user, std::string_view password) {
  std::string plain(user);
  plain += ':';
  plain += password;
  return "Basic " + absl::Base64Escape(absl::string_view(plain.data(), plain.size()));
}

std::string HtpasswdBcrypt(const std::string& user, const std::string& password, int cost) {
  int rc = -1;
  std::string line = Shell("htpasswd -nbB -C " + std::to_string(cost) + " " + ShellQuote(user) +
                               " " + ShellQuote(password),
                           &rc);
  const size_t colon = line.find(':');
  const size_t end = line.find_first_of("\r\n");
  if (rc != 0 || colon == std::string::npos || end == std::string::npos) return "";
  return line.substr(colon + 1, end - colon - 1);
}

std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace shmetrics::http::testing
