#include "expose/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

#include "absl/status/status.h"
#include "expose/encoder.h"
#include "expose/exposition_helpers.h"

namespace shmetrics::expose {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Decompresses with zlib directly, so the round trip does not only check GzipDecompress against
// its own sibling.
std::string ZlibUncompress(const std::string& gz, size_t expected_size) {
  std::string out(expected_size + 1, '\0');
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 32), Z_OK);  // 32: detect the gzip header
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

TEST(GzipTest, RoundTripsAnExposition) {
  const std::string text = Encode(Format::kOpenMetrics, [](Encoder& enc) {
    for (int i = 0; i < 200; ++i) WriteEveryType(enc);  // repeated names: fine for gzip
  });
  const absl::StatusOr<std::string> gz = GzipCompress(text);
  ASSERT_TRUE(gz.ok()) << gz.status();
  // RFC 1952 magic, deflate method.
  ASSERT_GE(gz->size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  EXPECT_EQ((*gz)[2], 8);
  EXPECT_LT(gz->size(), text.size() / 10);  // repetitive text compresses well
  EXPECT_EQ(ZlibUncompress(*gz, text.size()), text);
  const absl::StatusOr<std::string> back = GzipDecompress(*gz);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text);
}

TEST(GzipTest, RoundTripsEdgeSizesAndLevels) {
  for (const size_t n : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{1} << 20}) {
    const std::string data = RandomBytes(n, static_cast<uint32_t>(n));  // incompressible
    for (const int level : {kGzipDefaultLevel, kGzipFastestLevel, 0, 9}) {
      const absl::StatusOr<std::string> gz = GzipCompress(data, level);
      ASSERT_TRUE(gz.ok()) << gz.status();
      EXPECT_EQ(ZlibUncompress(*gz, n), data) << n << " " << level;
      const absl::StatusOr<std::string> back = GzipDecompress(*gz);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, data) << n << " " << level;
    }
  }
}

TEST(GzipTest, RejectsBadLevel) {
  EXPECT_EQ(GzipCompress("x", 10).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GzipCompress("x", -2).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GzipTest, DecompressRejectsCorruptTruncatedAndTrailingData) {
  const absl::StatusOr<std::string> gz = GzipCompress(std::string(10000, 'a') + "tail");
  ASSERT_TRUE(gz.ok());
  EXPECT_EQ(GzipDecompress("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GzipDecompress("not gzip at all").status().code(), absl::StatusCode::kInvalidArgument);
  for (const size_t cut : {size_t{1}, size_t{10}, gz->size() / 2, gz->size() - 1}) {
    EXPECT_EQ(GzipDecompress(std::string_view(*gz).substr(0, cut)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << cut;
  }
  std::string corrupt = *gz;
  corrupt[corrupt.size() - 5] ^= 0x55;  // inside the CRC-32 trailer
  EXPECT_EQ(GzipDecompress(corrupt).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GzipDecompress(*gz + "x").status().code(), absl::StatusCode::kInvalidArgument);
}

// A streamed body is one member per piece; the members concatenated are one gzip stream.
TEST(GzipTest, MembersConcatenatedDecompressWhole) {
  std::string whole, stream, member;
  for (int i = 0; i < 5; ++i) {
    const std::string piece = std::string(1000 * (i + 1), static_cast<char>('a' + i)) + "\n";
    whole += piece;
    ASSERT_TRUE(GzipCompressTo(piece, kGzipFastestLevel, &member).ok());
    stream += member;
  }
  ASSERT_TRUE(GzipCompressTo("", kGzipFastestLevel, &member).ok());  // an empty member too
  stream += member;
  const absl::StatusOr<std::string> out = GzipDecompress(stream);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, whole);
  // A second member cut short is still truncated data.
  EXPECT_EQ(GzipDecompress(std::string_view(stream).substr(0, stream.size() - 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GzipTest, DecompressStopsAtTheOutputLimit) {
  // 64 MiB of zeros compress to about 64 KiB: a miniature zip bomb.
  const absl::StatusOr<std::string> gz = GzipCompress(std::string(64 << 20, '\0'));
  ASSERT_TRUE(gz.ok());
  EXPECT_EQ(GzipDecompress(*gz, 1 << 20).status().code(), absl::StatusCode::kResourceExhausted);
  const absl::StatusOr<std::string> exact = GzipDecompress(*gz, 64 << 20);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->size(), size_t{64} << 20);
}

}  // namespace
}  // namespace shmetrics::expose
