// gzip (RFC 1952) compression of a response body (libdeflate whole, zlib streamed), and the
// matching decompression (zlib) for tests and tools that read what the endpoint served.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_GZIP_H_
#define SHMETRICS_SRC_EXPOSE_GZIP_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shmetrics::expose {

// zlib's levels: 1 is fastest, 9 smallest, -1 zlib's default (6).
inline constexpr int kGzipDefaultLevel = -1;
inline constexpr int kGzipFastestLevel = 1;

// Returns input as one gzip member. Fails (InvalidArgument) only for a level outside -1..9, or
// (Internal / ResourceExhausted) if zlib itself fails, which in practice means out of memory.
//
// Example:
//   absl::StatusOr<std::string> body = GzipCompress(text);
//   if (!body.ok()) return body.status();
[[nodiscard]] absl::StatusOr<std::string> GzipCompress(std::string_view input,
                                                       int level = kGzipDefaultLevel);

// As GzipCompress, but writes the member to *out (replacing its contents, reusing its
// capacity). Members concatenated are one valid gzip stream (RFC 1952 2.2), read whole by zlib,
// Go's gzip reader (Prometheus) and Python's gzip module, but not by curl --compressed, which
// stops after the first: a body is one member (see GzipWriter for one that is never whole).
[[nodiscard]] absl::Status GzipCompressTo(std::string_view input, int level, std::string* out);

// One gzip member written piece by piece (zlib's streaming deflate), for bodies that are never
// whole in memory. Each Write returns what the compressor has output so far, which lags the
// input by at most zlib's own buffers (some tens of KiB); Finish returns the rest and the
// trailer. One member, not one per piece: curl's and libcurl's gzip decoders stop after the
// first member (curl --compressed fails on the rest), though Go's and Python's read them all.
// A GzipWriter is used by one thread at a time.
class GzipWriter {
 public:
  // level as GzipCompress. Errors as GzipCompress, reported by the first Write or Finish.
  explicit GzipWriter(int level = kGzipDefaultLevel);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;

  // Compresses input; appends the output so far to *out.
  [[nodiscard]] absl::Status Write(std::string_view input, std::string* out);
  // Ends the member; appends the rest to *out. Nothing may follow.
  [[nodiscard]] absl::Status Finish(std::string* out);

 private:
  absl::Status Deflate(std::string_view input, int flush, std::string* out);

  struct State;
  std::unique_ptr<State> state_;
  absl::Status status_;
};

// Returns the decompressed contents of a gzip stream of one or more members. Fails
// (InvalidArgument) on corrupt, truncated or trailing data, and (ResourceExhausted) once the output
// would exceed max_output bytes, so a small hostile input cannot make a huge allocation.
[[nodiscard]] absl::StatusOr<std::string> GzipDecompress(std::string_view input,
                                                         size_t max_output = size_t{1} << 30);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_GZIP_H_
