// A gzip (RFC 1952) writer with a deflate (RFC 1951) encoder of its own, made for exposition text:
// lines that mostly repeat the previous line's bytes at the same column.
//
// Why not libdeflate or zlib: at their fastest level both look a match up in a hash table at
// every position, which on a 100,000-counter exposition (3.7 MB) costs about as much CPU as the
// whole scrape, and libdeflate cannot stream one member. Here a position's candidates are the
// distance of the previous line (and 1-2 bytes either side where a number's length changed), the
// last distance used and one 4-byte hash slot (for a value repeating its label, `id="N"} N`),
// compared 7 bytes at a time without branches; a number where the previous line's long match
// stopped, and the rest of a number that matched nothing, go out as literals with no search; no
// chains. The entropy coder is dynamic Huffman per 64 KiB of input (a digit costs ~3.5 bits, not
// fixed Huffman's 8), with stored blocks where those are smaller (binary input).
//
// Measured on that exposition (BM_GzipExposition, text in 256 KiB pieces, shared 2-core machine,
// medians of 3 rounds): 599 kB (16.3% of the input) against libdeflate level 1's 587 kB (16.0%),
// in 7.5-7.9 ms of CPU against 9.9-10.6 ms; under callgrind 100 M instructions and 0.34 M
// mispredicted branches against libdeflate's 93 M and 0.85 M. In the endpoint the rest of the
// gain is streaming itself (no whole text, no whole compressed copy): see BENCHMARKS.md.
//
// The output is one gzip member for everything written, whatever the pieces: curl --compressed
// reads only the first member. Memory stays bounded: the last 32 KiB of input (the deflate
// window), at most one block's input and symbols, and what one Write outputs.
//
// Thread safety: a LineGzipWriter is used by one thread at a time.
#ifndef SHMETRICS_SRC_EXPOSE_LINE_DEFLATE_H_
#define SHMETRICS_SRC_EXPOSE_LINE_DEFLATE_H_

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shmetrics::expose {

class LineGzipWriter {
 public:
  LineGzipWriter();
  LineGzipWriter(const LineGzipWriter&) = delete;
  LineGzipWriter& operator=(const LineGzipWriter&) = delete;

  // Compresses input; appends the output so far to *out, which lags the input by at most one
  // block (64 KiB of input) plus 258 bytes held back so a match can run across pieces. Where
  // the input is cut into pieces changes nothing in the output.
  void Write(std::string_view input, std::string* out);
  // Ends the member (the final block and the trailer); appends the rest to *out. Nothing may
  // follow.
  void Finish(std::string* out);

 private:
  void Append(std::string_view input);
  void Match(bool finishing);
  void SearchNewline(int64_t from);
  void FlushBlock(bool final_block);
  void Slide();
  // The bit writer: up to 57 bits may be put between flushes; Reserve(n) makes room for n more
  // bytes of output (and the 8 a flush stores at once).
  void Reserve(size_t bytes);
  void PutBits(uint64_t bits, unsigned n) {
    bits_ |= bits << nbits_;
    nbits_ += n;
  }
  void FlushBits();
  void AlignToByte() {
    nbits_ = (nbits_ + 7) & ~7u;
    FlushBits();
  }

  // Input: buf_[0] is stream offset base_; bytes before pos_ have become symbols. kPad zero
  // bytes follow the data so 8-byte loads past the end are safe.
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t len_ = 0;
  uint64_t base_ = 0;
  size_t pos_ = 0;
  size_t block_start_ = 0;
  // Line starts as buffer indices (negative once slid out of the buffer); nl_ the current line's
  // newline, or the end of what was searched for it so far when nl_found_ is false.
  int64_t line_start_ = 0;
  int64_t prev_line_start_ = INT64_MIN / 4;  // none yet
  int64_t nl_ = 0;
  bool nl_found_ = false;
  // The matcher's other candidates: the last match's distance, and the one known to fail at pos_
  // (the last match's, when it ended there).
  uint32_t last_dist_ = 0;
  uint32_t failed_dist_ = 0;
  bool in_number_ = false;   // digits at pos_ go out as literals without a search
  bool hash_first_ = false;  // ... the first of them hashed

  std::unique_ptr<uint32_t[]> syms_;  // see LiteralSymbol in the .cc
  size_t nsyms_ = 0;
  std::array<uint32_t, 286> lit_freq_{};
  std::array<uint32_t, 30> dist_freq_{};
  std::vector<uint32_t> hash_;

  // Bits not yet in whole bytes; pending output goes to out_ during a call.
  uint64_t bits_ = 0;
  unsigned nbits_ = 0;
  std::string* out_ = nullptr;
  size_t obuf_used_ = 0;
  uint32_t crc_ = 0;
  bool header_written_ = false;
};

// The whole input through one LineGzipWriter (tests, benchmarks).
std::string LineGzipCompress(std::string_view input);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_LINE_DEFLATE_H_
