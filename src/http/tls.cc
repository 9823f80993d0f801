#include "http/tls.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ssl/context.hpp"
#include "openssl/err.h"
#include "openssl/ssl.h"

namespace shmetrics::http {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// The OpenSSL error queue's newest entry, for messages; clears the queue.
std::string TlsErrorText(const error_code& ec) {
  std::string text = ec.message();
  if (unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    text = buf;
  }
  ERR_clear_error();
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ServerOptions& o) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, o.tls_min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load the TLS certificate chain from '",
                                                   o.tls_cert_file, "': ", TlsErrorText(ec)));
  }
  ctx->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load the TLS private key from '",
                                                   o.tls_key_file, "': ", TlsErrorText(ec)));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("the TLS private key '", o.tls_key_file,
                                                   "' does not match the certificate '",
                                                   o.tls_cert_file, "': ", TlsErrorText({})));
  }
  return ctx;
}

}  // namespace shmetrics::http
