#include "expose/gzip.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace shmetrics::expose {
namespace {

// windowBits 15 (the largest window) plus 16 asks zlib for a gzip header and
// trailer instead of the zlib wrapper.
constexpr int kGzipWindowBits = 15 + 16;

// zlib counts in uInt, so feed inputs beyond 4 GiB in slices.
constexpr size_t kMaxChunk = std::numeric_limits<uInt>::max();

absl::Status ZlibError(const char* what, int code, const z_stream& z) {
  const std::string message =
      absl::StrCat(what, " failed: ", z.msg != nullptr ? z.msg : "zlib error ", code);
  if (code == Z_MEM_ERROR) return absl::ResourceExhaustedError(message);
  if (code == Z_DATA_ERROR || code == Z_BUF_ERROR) return absl::InvalidArgumentError(message);
  return absl::InternalError(message);
}

}  // namespace

absl::StatusOr<std::string> GzipCompress(std::string_view input, int level) {
  std::string out;
  if (absl::Status s = GzipCompressTo(input, level, &out); !s.ok()) return s;
  return out;
}

absl::Status GzipCompressTo(std::string_view input, int level, std::string* out) {
  if (level < -1 || level > 9) {
    return absl::InvalidArgumentError(absl::StrCat("gzip level ", level, " is not in -1..9"));
  }
  // libdeflate, not zlib: at level 1 it is several times faster for the same size, and a scrape
  // body is always whole in memory, which is all its one-shot interface needs. A compressor
  // costs an allocation of some hundred KiB, so each thread keeps its last one.
  const int want = level == -1 ? 6 : level;
  struct Cached {
    libdeflate_compressor* c = nullptr;
    int level = -1;
    ~Cached() { libdeflate_free_compressor(c); }
  };
  thread_local Cached cached;
  if (cached.c == nullptr || cached.level != want) {
    libdeflate_free_compressor(cached.c);
    cached.c = libdeflate_alloc_compressor(want);
    cached.level = want;
    if (cached.c == nullptr) return absl::ResourceExhaustedError("gzip: out of memory");
  }
  // resize, not assign: the bytes are overwritten, and a reused buffer keeps its capacity.
  out->resize(libdeflate_gzip_compress_bound(cached.c, input.size()));
  const size_t n =
      libdeflate_gzip_compress(cached.c, input.data(), input.size(), out->data(), out->size());
  // The bound is exact enough that 0 (no room) cannot happen; it would mean a libdeflate bug.
  if (n == 0) return absl::InternalError("gzip: compressed data exceeds libdeflate's bound");
  out->resize(n);
  return absl::OkStatus();
}

absl::StatusOr<std::string> GzipDecompress(std::string_view input, size_t max_output) {
  z_stream z{};
  int rc = inflateInit2(&z, kGzipWindowBits);
  if (rc != Z_OK) return ZlibError("inflateInit2", rc, z);

  std::string out;
  size_t in_pos = 0;
  size_t out_pos = 0;
  for (;;) {
    if (z.avail_in == 0 && in_pos < input.size()) {
      const size_t chunk = std::min(kMaxChunk, input.size() - in_pos);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data() + in_pos));
      z.avail_in = static_cast<uInt>(chunk);
      in_pos += chunk;
    }
    if (out_pos == out.size()) {
      // Room for one byte past the limit tells "exactly max_output" from "more".
      if (out_pos > max_output) {
        inflateEnd(&z);
        return absl::ResourceExhaustedError(
            absl::StrCat("gzip data inflates to more than ", max_output, " bytes"));
      }
      const size_t cap =
          max_output == std::numeric_limits<size_t>::max() ? max_output : max_output + 1;
      out.resize(std::min(cap, std::max<size_t>(4096, out.size() * 2)));
    }
    const size_t room = std::min(kMaxChunk, out.size() - out_pos);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + out_pos);
    z.avail_out = static_cast<uInt>(room);
    rc = inflate(&z, Z_NO_FLUSH);
    out_pos += room - z.avail_out;
    if (rc == Z_STREAM_END) {
      // Another member may follow (streamed bodies are one member per piece).
      if (z.avail_in == 0 && in_pos == input.size()) break;
      rc = inflateReset(&z);
      if (rc != Z_OK) {
        const absl::Status status = ZlibError("inflateReset", rc, z);
        inflateEnd(&z);
        return status;
      }
      continue;
    }
    // Z_BUF_ERROR with input left means "needs more output room", which the loop provides;
    // with no input left it means the stream is truncated.
    const bool starved = z.avail_in == 0 && in_pos == input.size() && z.avail_out != 0;
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || starved) {
      const absl::Status status = starved ? absl::InvalidArgumentError("gzip data is truncated")
                                          : ZlibError("inflate", rc, z);
      inflateEnd(&z);
      return status;
    }
  }
  const bool trailing = z.avail_in != 0 || in_pos != input.size();
  inflateEnd(&z);
  if (trailing) return absl::InvalidArgumentError("gzip data has bytes after the end of stream");
  out.resize(out_pos);
  return out;
}

}  // namespace shmetrics::expose
