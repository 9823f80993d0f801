#include "expose/line_deflate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "expose/encoder.h"
#include "expose/exposition_helpers.h"
#include "expose/gzip.h"

namespace shmetrics::expose {
namespace {

// The benchmark's exposition: one counter family, ids in a shuffled (hash-like) order.
std::string CounterText(int n, uint32_t seed) {
  std::vector<int> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
  std::string text =
      "# HELP test_counter_total A counter for benchmarking.\n# TYPE test_counter_total counter\n";
  for (const int id : ids) absl::StrAppend(&text, "test_counter_total{id=\"", id, "\"} ", id, "\n");
  return text;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string RandomText(size_t n, std::string_view alphabet, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = alphabet[rng() % alphabet.size()];
  return s;
}

// Compresses input in pieces of the given sizes (cycled), as the endpoint streams it.
std::string CompressInPieces(std::string_view input, const std::vector<size_t>& sizes) {
  LineGzipWriter w;
  std::string out;
  size_t pos = 0;
  for (size_t k = 0; pos < input.size(); ++k) {
    const size_t n = std::min(sizes[k % sizes.size()], input.size() - pos);
    w.Write(input.substr(pos, n), &out);
    pos += n;
  }
  w.Finish(&out);
  return out;
}

void ExpectRoundTrip(std::string_view input, const std::string& gz, const std::string& what) {
  // One member: a single inflate over the whole stream must end exactly at its end.
  const absl::StatusOr<std::string> back = GzipDecompress(gz, input.size() + 1);
  ASSERT_TRUE(back.ok()) << what << ": " << back.status();
  EXPECT_TRUE(*back == input) << what << ": " << back->size() << " bytes back of " << input.size();
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
}

TEST(LineDeflateTest, RoundTripsEmptyAndTinyInputs) {
  for (const std::string& s : {std::string(), std::string("x"), std::string("\n"),
                               std::string("ab"), std::string("abc"), std::string("aaaa")}) {
    ExpectRoundTrip(s, LineGzipCompress(s), absl::StrCat("'", s, "'"));
  }
  // Writes of nothing in between change nothing.
  LineGzipWriter w;
  std::string out;
  w.Write("", &out);
  w.Write("hello\n", &out);
  w.Write("", &out);
  w.Finish(&out);
  ExpectRoundTrip("hello\n", out, "empty writes");
}

TEST(LineDeflateTest, RoundTripsExpositions) {
  const std::string every = Encode(Format::kOpenMetrics, [](Encoder& enc) {
    for (int i = 0; i < 300; ++i) WriteEveryType(enc);
  });
  ExpectRoundTrip(every, LineGzipCompress(every), "every type");
  const std::string counters = CounterText(100000, 1);
  ExpectRoundTrip(counters, LineGzipCompress(counters), "counters");
  ExpectRoundTrip(counters, CompressInPieces(counters, {256 << 10}), "counters in 256 KiB pieces");
}

TEST(LineDeflateTest, RoundTripsBinaryRunsAndSmallAlphabets) {
  for (const size_t n :
       {size_t{100}, size_t{65535}, size_t{65536}, size_t{200000}, size_t{1} << 20}) {
    const std::string random = RandomBytes(n, static_cast<uint32_t>(n));
    const std::string gz = LineGzipCompress(random);
    ExpectRoundTrip(random, gz, absl::StrCat("random ", n));
    // Incompressible input goes into stored blocks: a few bytes per 64 KiB over the input.
    EXPECT_LE(gz.size(), n + 5 * (n / 32768 + 1) + 32) << n;
    ExpectRoundTrip(std::string(n, 'z'), LineGzipCompress(std::string(n, 'z')),
                    absl::StrCat("run ", n));
    for (const std::string_view alphabet : {"ab", "ab\n", "0123456789\n", "a\"} \n=xyz{"}) {
      const std::string text = RandomText(n, alphabet, static_cast<uint32_t>(n + alphabet.size()));
      ExpectRoundTrip(text, LineGzipCompress(text),
                      absl::StrCat("alphabet ", std::string(alphabet), " ", n));
    }
  }
}

TEST(LineDeflateTest, RoundTripsLinesLongerThanTheWindow) {
  // Lines of 40,000 and 70,000 bytes: the previous line lies beyond the 32 KiB distance limit.
  std::string text;
  for (int i = 0; i < 6; ++i) {
    text += std::string(i % 2 == 0 ? 40000 : 70000, static_cast<char>('a' + i)) + "\n";
    text += RandomText(i % 2 == 0 ? 33000 : 100, "abc", static_cast<uint32_t>(i)) + "\n";
    text += text.substr(text.size() - 40000);  // a repeat from just inside and beyond the window
    text += "\n";
  }
  ExpectRoundTrip(text, LineGzipCompress(text), "long lines");
  ExpectRoundTrip(text, CompressInPieces(text, {1, 7, 4096, 65536, 300000}), "long lines pieces");
  const std::string one_line = RandomText(3 << 20, "xy", 5);  // no newline at all
  ExpectRoundTrip(one_line, LineGzipCompress(one_line), "one line");
}

TEST(LineDeflateTest, OutputDoesNotDependOnHowTheInputIsSplit) {
  const std::string text = CounterText(3000, 2) + RandomBytes(5000, 3) + CounterText(2000, 4);
  const std::string whole = LineGzipCompress(text);
  ExpectRoundTrip(text, whole, "whole");
  for (const size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{100}, size_t{257}, size_t{258},
                             size_t{259}, size_t{4096}, size_t{65536}}) {
    const std::string gz = CompressInPieces(text, {piece});
    // The writer holds back a match's length of input, so pieces never cut a match short.
    EXPECT_TRUE(gz == whole) << piece;
  }
  const std::string mixed = CompressInPieces(text, {1, 1000, 2, 70000, 3, 258});
  EXPECT_TRUE(mixed == whole);
}

TEST(LineDeflateTest, EverySplitPointOfASmallInput) {
  const std::string text = CounterText(40, 6);
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    LineGzipWriter w;
    std::string out;
    w.Write(std::string_view(text).substr(0, cut), &out);
    w.Write(std::string_view(text).substr(cut), &out);
    w.Finish(&out);
    ExpectRoundTrip(text, out, absl::StrCat("cut at ", cut));
  }
}

// The size this writer gives up for its speed, against libdeflate's fastest level on the same
// exposition text.
TEST(LineDeflateTest, CompressesExpositionsNearlyAsWellAsLibdeflate) {
  const std::string counters = CounterText(100000, 7);
  const absl::StatusOr<std::string> reference = GzipCompress(counters, kGzipFastestLevel);
  ASSERT_TRUE(reference.ok());
  const std::string mine = CompressInPieces(counters, {256 << 10});
  EXPECT_LE(mine.size(), reference->size() * 13 / 10)
      << mine.size() << " vs libdeflate " << reference->size();
  EXPECT_LT(mine.size(), counters.size() / 5);

  const std::string every = Encode(Format::kPrometheus, [](Encoder& enc) {
    for (int i = 0; i < 1000; ++i) WriteEveryType(enc);
  });
  const absl::StatusOr<std::string> every_reference = GzipCompress(every, kGzipFastestLevel);
  ASSERT_TRUE(every_reference.ok());
  EXPECT_LE(LineGzipCompress(every).size(), every_reference->size() * 13 / 10);
}

// Another gzip reader than zlib: Python's gzip module, which reads every member, checked to
// have read exactly one.
TEST(LineDeflateTest, PythonReadsItAsOneMember) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  const std::string text = CounterText(20000, 8) + RandomBytes(70000, 9);
  const std::string gz = CompressInPieces(text, {1000, 70001});
  char path[] = "/tmp/line_deflate_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, gz.data(), gz.size()), static_cast<ssize_t>(gz.size()));
  close(fd);
  const std::string cmd = absl::StrCat(
      "/usr/bin/python3 -c \"import gzip,hashlib,sys,zlib\n"
      "d=open(sys.argv[1],'rb').read()\n"
      "o=zlib.decompressobj(31)\n"
      "t=o.decompress(d)\n"
      "assert o.eof and not o.unused_data\n"
      "assert gzip.decompress(d)==t\n"
      "print(len(t),hashlib.sha256(t).hexdigest())\" ",
      path);
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[256] = {};
  const bool got = fgets(line, sizeof line, p) != nullptr;
  const int rc = pclose(p);
  unlink(path);
  ASSERT_TRUE(got);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(std::string_view(line).substr(0, std::string_view(line).find(' ')),
            std::to_string(text.size()));
}

}  // namespace
}  // namespace shmetrics::expose
