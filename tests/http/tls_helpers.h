// Test helpers for TLS and basic authentication: a throwaway self-signed certificate made with
// the openssl command-line tool, and Authorization header values.
#ifndef SHMETRICS_TESTS_HTTP_TLS_HELPERS_H_
#define SHMETRICS_TESTS_HTTP_TLS_HELPERS_H_

#include <string>
#include <string_view>

namespace shmetrics::http::testing {

// A fresh directory holding cert.pem (self-signed, valid for 127.0.0.1 and localhost) and
// key.pem (RSA 2048, unencrypted), made by `openssl req`. Removed with the object.
class TestCertificate {
 public:
  TestCertificate();
  ~TestCertificate();
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;

  // False when openssl failed; error() says why.
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  std::string cert_file() const { return dir_ + "/cert.pem"; }
  std::string key_file() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
  std::string error_;
  bool ok_ = false;
};

// "Basic " + base64("user:password").
std::string BasicCredentials(std::string_view user, std::string_view password);

// The hash part of `htpasswd -nbB -C cost user password` (Apache's own bcrypt, independent of
// the libxcrypt the server verifies with). Empty on failure.
std::string HtpasswdBcrypt(const std::string& user, const std::string& password, int cost = 4);

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(std::string_view s);

}  // namespace shmetrics::http::testing

#endif  // SHMETRICS_TESTS_HTTP_TLS_HELPERS_H_
