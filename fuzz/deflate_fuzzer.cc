// Fuzzes LineGzipWriter: the input, written in pieces whose sizes the input's first bytes pick,
// must come back whole through zlib's inflate (GzipDecompress) as one gzip member, and the bytes
// written must not depend on where the pieces were cut.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "expose/gzip.h"
#include "expose/line_deflate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shmetrics::expose::LineGzipWriter;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t split = size == 0 ? 1 : size_t{data[0]} * 7 + 1;  // 1..1786 bytes a piece

  std::string pieces;
  LineGzipWriter w;
  for (size_t pos = 0; pos < in.size(); pos += split) {
    w.Write(in.substr(pos, std::min(split, in.size() - pos)), &pieces);
  }
  w.Finish(&pieces);

  const absl::StatusOr<std::string> back = shmetrics::expose::GzipDecompress(pieces, size + 1);
  if (!back.ok() || *back != in) abort();
  if (shmetrics::expose::LineGzipCompress(in) != pieces) abort();
  return 0;
}
