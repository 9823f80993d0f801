// gzip (RFC 1952) compression of a whole body (libdeflate), and the matching decompression
// (zlib) for tests and tools that read what the endpoint served. The endpoint streams its gzip'd
// scrapes through LineGzipWriter (line_deflate.h) instead.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_GZIP_H_
#define SHMETRICS_SRC_EXPOSE_GZIP_H_

#include <cstddef>
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
// stops after the first: a body is one member (see LineGzipWriter for one that is never whole).
[[nodiscard]] absl::Status GzipCompressTo(std::string_view input, int level, std::string* out);

// Returns the decompressed contents of a gzip stream of one or more members. Fails
// (InvalidArgument) on corrupt, truncated or trailing data, and (ResourceExhausted) once the output
// would exceed max_output bytes, so a small hostile input cannot make a huge allocation.
[[nodiscard]] absl::StatusOr<std::string> GzipDecompress(std::string_view input,
                                                         size_t max_output = size_t{1} << 30);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_GZIP_H_
