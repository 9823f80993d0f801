#include "expose/line_deflate.h"

#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace shmetrics::expose {
namespace {

constexpr size_t kWindow = 32768;  // RFC 1951's largest distance
constexpr size_t kMinMatch = 3;
constexpr size_t kMaxMatch = 258;
// A match at least this long is taken for a line repeating the one before.
constexpr size_t kLineMatch = 16;
// Input per block: large enough that a block's code-length header (some 60-100 bytes) is under
// 1% of its output, small enough that the symbol buffer stays in L2.
constexpr size_t kBlockBytes = 64 << 10;
// Bytes past the data that 8-byte loads may touch.
constexpr size_t kPad = 16;
// The buffer is slid down once this much of its front is no longer needed.
constexpr size_t kSlideBytes = 64 << 10;
constexpr int kHashBits = 12;

constexpr int kNumLitLen = 286;
constexpr int kNumDist = 30;
constexpr int kNumCodeLen = 19;

constexpr std::array<uint16_t, 29> kLenBase = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                               15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                               67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr std::array<uint8_t, 29> kLenExtra = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                               2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::array<uint16_t, 30> kDistBase = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr std::array<uint8_t, 30> kDistExtra = {0, 0, 0,  0,  1,  1,  2,  2,  3,  3,
                                                4, 4, 5,  5,  6,  6,  7,  7,  8,  8,
                                                9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// The order in which the code-length code's lengths are sent (RFC 1951 3.2.7).
constexpr std::array<uint8_t, kNumCodeLen> kCodeLenOrder = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                            11, 4,  12, 3, 13, 2, 14, 1, 15};

struct Tables {
  std::array<uint8_t, kMaxMatch + 1> len_code{};  // length -> length code - 257
  // Distance code of distance d: [d - 1] below 257, else [256 + ((d - 1) >> 7)] (zlib's trick:
  // from code 16 on, every code spans a multiple of 128 distances).
  std::array<uint8_t, 512> dist_code{};
};

constexpr Tables MakeTables() {
  Tables t;
  for (int c = 0; c < 29; ++c) {
    const int n = c == 28 ? 1 : 1 << kLenExtra[c];
    for (int k = 0; k < n; ++k) t.len_code[kLenBase[c] + k] = static_cast<uint8_t>(c);
  }
  for (int c = 0; c < 30; ++c) {
    for (int k = 0; k < (1 << kDistExtra[c]); ++k) {
      const int d = kDistBase[c] + k - 1;
      if (d < 256) {
        t.dist_code[d] = static_cast<uint8_t>(c);
      } else {
        t.dist_code[256 + (d >> 7)] = static_cast<uint8_t>(c);
      }
    }
  }
  return t;
}
constexpr Tables kTables = MakeTables();

inline unsigned DistCode(uint32_t dist) {
  const uint32_t d = dist - 1;
  return kTables.dist_code[d < 256 ? d : 256 + (d >> 7)];
}

// A symbol as the block's encoder reads it, so that literals and matches take one branch-free
// path through two table reads: bits 0-8 a literal byte, or 256 + length - 3 for a match; 9-13
// the distance code (kNoDist for a literal); 14-26 the distance's extra bits.
constexpr uint32_t kNoDist = 30;
inline uint32_t LiteralSymbol(uint8_t byte) { return byte | kNoDist << 9; }

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
// Bytes at a and b (b < a) that agree, up to limit; may read 8 bytes past a + limit - 1.
inline size_t MatchLength(const uint8_t* a, const uint8_t* b, size_t limit) {
  size_t len = 0;
  for (;;) {
    const uint64_t x = Load64(a + len) ^ Load64(b + len);
    if (x != 0) {
      if constexpr (std::endian::native == std::endian::little) {
        len += static_cast<size_t>(std::countr_zero(x)) >> 3;
      } else {
        len += static_cast<size_t>(std::countl_zero(x)) >> 3;
      }
      return std::min(len, limit);
    }
    len += 8;
    if (len >= limit) return limit;
  }
}

inline uint32_t Hash4(uint32_t v) { return (v * 0x9E3779B1u) >> (32 - kHashBits); }

// Huffman code lengths for freq (n symbols), none longer than max_bits. Where the optimal code
// is too deep the frequencies are halved (keeping every used symbol) and the code rebuilt: rare,
// and a few tenths of a percent from optimal when it happens. A single used symbol gets a
// partner, so every code is complete, which all inflaters accept.
void BuildLengths(const uint32_t* freq_in, int n, int max_bits, uint8_t* lens) {
  std::array<uint32_t, kNumLitLen> freq{};
  std::copy(freq_in, freq_in + n, freq.begin());
  std::fill(lens, lens + n, 0);
  int used = 0;
  for (int s = 0; s < n; ++s) used += freq[s] != 0;
  if (used < 2) {
    for (int s = 0; s < n && used < 2; ++s) {
      if (freq[s] == 0) {
        freq[s] = 1;
        ++used;
      }
    }
  }
  std::array<uint16_t, kNumLitLen> sym{};
  std::array<uint64_t, 2 * kNumLitLen> weight{};
  std::array<uint16_t, 2 * kNumLitLen> parent{};
  std::array<uint8_t, 2 * kNumLitLen> depth{};
  for (;;) {
    int m = 0;
    for (int s = 0; s < n; ++s) {
      if (freq[s] != 0) sym[m++] = static_cast<uint16_t>(s);
    }
    std::sort(sym.begin(), sym.begin() + m, [&](uint16_t a, uint16_t b) {
      return freq[a] != freq[b] ? freq[a] < freq[b] : a < b;
    });
    for (int k = 0; k < m; ++k) weight[k] = freq[sym[k]];
    // Two queues: sorted leaves, and internal nodes, which are made in nondecreasing weight.
    int leaf = 0;
    int inner = m;
    int next = m;
    auto pick = [&] {
      if (leaf < m && (inner >= next || weight[leaf] <= weight[inner])) return leaf++;
      return inner++;
    };
    while (next < 2 * m - 1) {
      const int a = pick();
      const int b = pick();
      weight[next] = weight[a] + weight[b];
      parent[a] = parent[b] = static_cast<uint16_t>(next);
      ++next;
    }
    depth[2 * m - 2] = 0;
    int max_depth = 0;
    for (int k = 2 * m - 3; k >= 0; --k) {
      depth[k] = static_cast<uint8_t>(depth[parent[k]] + 1);
      if (k < m) max_depth = std::max<int>(max_depth, depth[k]);
    }
    if (max_depth <= max_bits) {
      for (int k = 0; k < m; ++k) lens[sym[k]] = depth[k];
      return;
    }
    for (int s = 0; s < n; ++s) {
      if (freq[s] != 0) freq[s] = (freq[s] + 1) >> 1;
    }
  }
}

// Canonical codes (RFC 1951 3.2.2), bit-reversed for an LSB-first writer.
void BuildCodes(const uint8_t* lens, int n, uint16_t* codes) {
  std::array<uint16_t, 16> count{};
  for (int s = 0; s < n; ++s) ++count[lens[s]];
  count[0] = 0;
  std::array<uint16_t, 16> next{};
  uint32_t code = 0;
  for (int b = 1; b < 16; ++b) {
    code = (code + count[b - 1]) << 1;
    next[b] = static_cast<uint16_t>(code);
  }
  for (int s = 0; s < n; ++s) {
    const int len = lens[s];
    if (len == 0) {
      codes[s] = 0;
      continue;
    }
    const uint32_t c = next[len]++;
    uint32_t r = 0;
    for (int b = 0; b < len; ++b) r |= ((c >> b) & 1u) << (len - 1 - b);
    codes[s] = static_cast<uint16_t>(r);
  }
}

}  // namespace

// Neither buffer is zeroed: only what has been written is read (and the padding, set on append).
LineGzipWriter::LineGzipWriter()
    : syms_(new uint32_t[kBlockBytes]), hash_(size_t{1} << kHashBits, 0) {}

void LineGzipWriter::Append(std::string_view input) {
  if (len_ + input.size() + kPad > cap_) {
    const size_t cap = std::max(len_ + input.size() + kPad, 2 * cap_);
    std::unique_ptr<char[]> grown(new char[cap]);
    if (len_ != 0) std::memcpy(grown.get(), buf_.get(), len_);
    buf_ = std::move(grown);
    cap_ = cap;
  }
  if (!input.empty()) std::memcpy(buf_.get() + len_, input.data(), input.size());
  len_ += input.size();
  std::memset(buf_.get() + len_, 0, kPad);
}

void LineGzipWriter::Write(std::string_view input, std::string* out) {
  out_ = out;
  obuf_used_ = out->size();
  if (!header_written_) {
    Reserve(10);
    // Magic, deflate, no flags, no time, no extra flags, OS unknown.
    static constexpr uint8_t kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    std::memcpy(out_->data() + obuf_used_, kHeader, 10);
    obuf_used_ += 10;
    header_written_ = true;
  }
  if (!input.empty()) {
    crc_ = libdeflate_crc32(crc_, input.data(), input.size());
    Append(input);
    Match(/*finishing=*/false);
    Slide();
  }
  out_->resize(obuf_used_);
  out_ = nullptr;
}

void LineGzipWriter::Finish(std::string* out) {
  Write({}, out);
  out_ = out;
  obuf_used_ = out->size();
  Append({});
  Match(/*finishing=*/true);
  FlushBlock(/*final_block=*/true);
  Reserve(16);
  AlignToByte();
  const uint64_t size = base_ + len_;
  PutBits(crc_, 32);
  PutBits(static_cast<uint32_t>(size), 32);
  FlushBits();
  out_->resize(obuf_used_);
  out_ = nullptr;
}

void LineGzipWriter::Reserve(size_t bytes) {
  if (out_->size() < obuf_used_ + bytes + 8) out_->resize(obuf_used_ + bytes + 8);
}

void LineGzipWriter::FlushBits() {
  uint64_t v = bits_;
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(out_->data() + obuf_used_, &v, 8);
  obuf_used_ += nbits_ >> 3;
  bits_ = (nbits_ & ~7u) == 64 ? 0 : bits_ >> (nbits_ & ~7u);
  nbits_ &= 7;
}

void LineGzipWriter::SearchNewline(int64_t from) {
  // A line start slid out of the buffer (a match ran over several lines) only costs the
  // previous-line candidate until the next newline.
  from = std::max<int64_t>(from, 0);
  const auto* p = reinterpret_cast<const uint8_t*>(buf_.get());
  const void* q = std::memchr(p + from, '\n', len_ - static_cast<size_t>(from));
  if (q != nullptr) {
    nl_ = static_cast<const uint8_t*>(q) - p;
    nl_found_ = true;
  } else {
    nl_ = static_cast<int64_t>(len_);
    nl_found_ = false;
  }
}

void LineGzipWriter::Match(bool finishing) {
  const auto* p = reinterpret_cast<const uint8_t*>(buf_.get());
  const size_t end = len_;
  const size_t stop = finishing ? end : (end > kMaxMatch ? end - kMaxMatch : 0);
  if (!nl_found_) SearchNewline(nl_);
  // State in locals: the stores to the symbol and hash arrays could otherwise alias the members
  // and force them through memory at every position.
  uint32_t* const syms = syms_.get();
  uint32_t* const hash = hash_.data();
  uint32_t* const lit_freq = lit_freq_.data();
  uint32_t* const dist_freq = dist_freq_.data();
  size_t nsyms = nsyms_;
  uint32_t last_dist = last_dist_;
  bool in_number = in_number_;
  bool hash_first = hash_first_;
  // The distance known not to match at i (the last match's, which ended there): not tried.
  uint32_t failed_dist = failed_dist_;
  size_t block_end = block_start_ + kBlockBytes;
  auto line_distance = [&] {
    const int64_t d = line_start_ - prev_line_start_;
    return d > 0 && d <= static_cast<int64_t>(kWindow) ? static_cast<uint32_t>(d) : 0;
  };
  uint32_t line_dist = line_distance();
  size_t i = pos_;
  // A block that reached kBlockBytes of input goes out before the next symbol.
  auto flush_full_block = [&] {
    if (i < block_end) return;
    pos_ = i;
    nsyms_ = nsyms;
    FlushBlock(/*final_block=*/false);
    nsyms = 0;
    block_end = block_start_ + kBlockBytes;
  };
  while (i < stop) {
    if (nl_found_ && static_cast<int64_t>(i) > nl_) {
      do {
        prev_line_start_ = line_start_;
        line_start_ = nl_ + 1;
        SearchNewline(line_start_);
      } while (nl_found_ && static_cast<int64_t>(i) > nl_);
      line_dist = line_distance();
    }
    const uint8_t* const a = p + i;
    const bool digit = static_cast<uint8_t>(*a - '0') < 10;
    // The rest of a number that did not match at its first digit: the same column of the
    // previous line holds another value, so its digits go out as literals without a search
    // (a third of the positions of a counter exposition, and the least likely to match). The
    // state carries over between calls, so where the input is split changes nothing.
    if (in_number && digit) {
      if (hash_first) {
        // The number a long match of the line before ran into: hashed at its first digit, as
        // the same number may follow (a value repeating its label).
        hash[Hash4(Load32(a))] = static_cast<uint32_t>(base_ + i);
        hash_first = false;
      }
      const size_t digits_end = std::min(stop, block_end);
      do {
        syms[nsyms++] = LiteralSymbol(p[i]);
        ++lit_freq[p[i]];
        ++i;
      } while (i < digits_end && static_cast<uint8_t>(p[i] - '0') < 10);
      failed_dist = 0;
      flush_full_block();
      continue;
    }
    in_number = false;
    hash_first = false;
    const size_t limit = std::min(kMaxMatch, end - i);
    const uint32_t h = Hash4(Load32(a));
    const uint32_t here = static_cast<uint32_t>(base_ + i);
    const uint32_t hashed = here - hash[h];
    hash[h] = here;
    // Each candidate's first 7 bytes are compared without a branch (an unusable distance
    // compares the position with itself and counts 0): which candidate matches changes from
    // one position to the next, and mispredicted branches cost more than the loads. Only a
    // candidate matching all 7 is extended.
    const uint64_t cur = Load64(a);
    const size_t reach = std::min(i, kWindow);  // usable: 1 <= d <= reach
    auto len7 = [&](uint32_t dist) -> uint32_t {
      const bool ok = (dist - 1 < reach) & (dist != failed_dist);
      const uint8_t* const b = ok ? a - dist : a;
      // The top bit set: at most 7, and never the undefined count of zero.
      const uint64_t x = (cur ^ Load64(b)) | uint64_t{1} << 63;
      const uint32_t n = static_cast<uint32_t>(__builtin_ctzll(x)) >> 3;
      return ok ? n : 0;
    };
    uint32_t best_dist = last_dist;
    uint32_t best7 = len7(last_dist);
    const uint32_t line7 = len7(line_dist);
    best_dist = line7 > best7 ? line_dist : best_dist;
    best7 = line7 > best7 ? line7 : best7;
    // The hash only where the lines gave nothing: a longer match elsewhere for the text
    // between two numbers would lose the second number's match at its usual distance.
    const uint32_t hash7 = best7 < kMinMatch ? len7(hashed) : 0;
    best_dist = hash7 > best7 ? hashed : best_dist;
    best7 = hash7 > best7 ? hash7 : best7;
    // No re-sync at a digit: it is for the text after a number whose length changed.
    if (best7 < kMinMatch && line_dist != 0 && !digit) {
      for (const uint32_t d : {line_dist + 1, line_dist - 1, line_dist + 2, line_dist - 2}) {
        const uint32_t n = len7(d);
        best_dist = n > best7 ? d : best_dist;
        best7 = n > best7 ? n : best7;
      }
    }
    const size_t best_len = best7 == 7 && limit > 7
                                ? 7 + MatchLength(a + 7, a + 7 - best_dist, limit - 7)
                                : std::min<size_t>(best7, limit);
    if (best_len >= kMinMatch) {
      const unsigned lc = kTables.len_code[best_len];
      const unsigned dc = DistCode(best_dist);
      syms[nsyms++] = static_cast<uint32_t>(256 + best_len - kMinMatch) | dc << 9 |
                      (best_dist - kDistBase[dc]) << 14;
      ++lit_freq[257 + lc];
      ++dist_freq[dc];
      last_dist = best_dist;
      // A match that ended short of its limit ended at a byte its distance does not repeat.
      failed_dist = best_len < limit ? best_dist : 0;
      // A long match of the previous line that stops at a digit stops at a number that
      // changed: its digits go out as literals with no search (which would fail there).
      in_number = best_len >= kLineMatch && best_len < limit;
      hash_first = in_number;
      i += best_len;
    } else {
      failed_dist = 0;
      syms[nsyms++] = LiteralSymbol(*a);
      ++lit_freq[*a];
      ++i;
      in_number = digit;
    }
    flush_full_block();
  }
  pos_ = i;
  nsyms_ = nsyms;
  last_dist_ = last_dist;
  in_number_ = in_number;
  hash_first_ = hash_first;
  failed_dist_ = failed_dist;
}

void LineGzipWriter::FlushBlock(bool final_block) {
  const size_t block_bytes = pos_ - block_start_;
  lit_freq_[256] = 1;  // end of block
  std::array<uint8_t, kNumLitLen + kNumDist> lens{};
  uint8_t* const lit_len = lens.data();
  uint8_t* const dist_len = lens.data() + kNumLitLen;
  BuildLengths(lit_freq_.data(), kNumLitLen, 15, lit_len);
  BuildLengths(dist_freq_.data(), kNumDist, 15, dist_len);
  int hlit = kNumLitLen;
  while (hlit > 257 && lit_len[hlit - 1] == 0) --hlit;
  int hdist = kNumDist;
  while (hdist > 1 && dist_len[hdist - 1] == 0) --hdist;
  // The code lengths, run-length coded with 16 (repeat the previous 3-6 times), 17 (3-10
  // zeros) and 18 (11-138 zeros), as one sequence across both alphabets (RFC 1951 3.2.7).
  std::array<uint8_t, kNumLitLen + kNumDist> all{};
  std::copy(lit_len, lit_len + hlit, all.begin());
  std::copy(dist_len, dist_len + hdist, all.begin() + hlit);
  const int total = hlit + hdist;
  std::array<uint16_t, kNumLitLen + kNumDist> rle{};  // symbol | extra << 8
  int nrle = 0;
  std::array<uint32_t, kNumCodeLen> cl_freq{};
  auto emit = [&](int symbol, int extra) {
    rle[nrle++] = static_cast<uint16_t>(symbol | extra << 8);
    ++cl_freq[symbol];
  };
  for (int k = 0; k < total;) {
    const uint8_t v = all[k];
    int run = 1;
    while (k + run < total && all[k + run] == v) ++run;
    k += run;
    if (v == 0) {
      while (run >= 11) {
        const int r = std::min(run, 138);
        emit(18, r - 11);
        run -= r;
      }
      if (run >= 3) {
        emit(17, run - 3);
        run = 0;
      }
    } else {
      emit(v, 0);
      --run;
      while (run >= 3) {
        const int r = std::min(run, 6);
        emit(16, r - 3);
        run -= r;
      }
    }
    for (; run > 0; --run) emit(v, 0);
  }
  std::array<uint8_t, kNumCodeLen> cl_len{};
  BuildLengths(cl_freq.data(), kNumCodeLen, 7, cl_len.data());
  int hclen = kNumCodeLen;
  while (hclen > 4 && cl_len[kCodeLenOrder[hclen - 1]] == 0) --hclen;

  uint64_t dyn_bits = 3 + 5 + 5 + 4 + 3 * static_cast<uint64_t>(hclen);
  for (int s = 0; s < kNumCodeLen; ++s) dyn_bits += uint64_t{cl_freq[s]} * cl_len[s];
  dyn_bits += uint64_t{cl_freq[16]} * 2 + uint64_t{cl_freq[17]} * 3 + uint64_t{cl_freq[18]} * 7;
  for (int s = 0; s < kNumLitLen; ++s) {
    const int extra = s > 256 ? kLenExtra[s - 257] : 0;
    dyn_bits += uint64_t{lit_freq_[s]} * (lit_len[s] + extra);
  }
  for (int s = 0; s < kNumDist; ++s) {
    dyn_bits += uint64_t{dist_freq_[s]} * (dist_len[s] + kDistExtra[s]);
  }
  const size_t stored_chunks = std::max<size_t>(1, (block_bytes + 65534) / 65535);
  const uint64_t stored_bits = (uint64_t{block_bytes} + 5 * stored_chunks) * 8 + 7;

  if (stored_bits < dyn_bits) {
    Reserve(block_bytes + 5 * stored_chunks + 8);
    const auto* src = reinterpret_cast<const uint8_t*>(buf_.get()) + block_start_;
    size_t left = block_bytes;
    for (size_t c = 0; c < stored_chunks; ++c) {
      const size_t n = std::min<size_t>(left, 65535);
      PutBits((final_block && c + 1 == stored_chunks) ? 1 : 0, 3);
      AlignToByte();
      PutBits(n | (~n & 0xffff) << 16, 32);
      FlushBits();
      std::memcpy(out_->data() + obuf_used_, src, n);
      obuf_used_ += n;
      src += n;
      left -= n;
    }
  } else {
    Reserve(static_cast<size_t>(dyn_bits / 8) + 16);
    std::array<uint16_t, kNumLitLen> lit_code{};
    std::array<uint16_t, kNumDist> dist_code{};
    std::array<uint16_t, kNumCodeLen> cl_code{};
    BuildCodes(lit_len, kNumLitLen, lit_code.data());
    BuildCodes(dist_len, kNumDist, dist_code.data());
    BuildCodes(cl_len.data(), kNumCodeLen, cl_code.data());
    PutBits(final_block ? 1 : 0, 1);
    PutBits(2, 2);  // dynamic Huffman
    PutBits(static_cast<uint64_t>(hlit - 257), 5);
    PutBits(static_cast<uint64_t>(hdist - 1), 5);
    PutBits(static_cast<uint64_t>(hclen - 4), 4);
    FlushBits();
    for (int k = 0; k < hclen; ++k) {
      PutBits(cl_len[kCodeLenOrder[k]], 3);
      FlushBits();
    }
    static constexpr uint8_t kRepeatBits[3] = {2, 3, 7};
    for (int k = 0; k < nrle; ++k) {
      const int symbol = rle[k] & 0xff;
      PutBits(cl_code[symbol], cl_len[symbol]);
      if (symbol >= 16) PutBits(rle[k] >> 8, kRepeatBits[symbol - 16]);
      FlushBits();
    }
    // Per symbol value: its code and (for a length) extra bits in the low 24 bits, their count in
    // the high 8. Per distance code: code, length << 16, extra bit count << 24; kNoDist's all 0.
    std::array<uint32_t, 512> vtab{};
    for (int k = 0; k < 256; ++k) vtab[k] = lit_code[k] | uint32_t{lit_len[k]} << 24;
    for (size_t len = kMinMatch; len <= kMaxMatch; ++len) {
      const int c = kTables.len_code[len];
      const unsigned code_len = lit_len[257 + c];
      vtab[256 + len - kMinMatch] = lit_code[257 + c] |
                                    static_cast<uint32_t>(len - kLenBase[c]) << code_len |
                                    (code_len + kLenExtra[c]) << 24;
    }
    std::array<uint32_t, 32> dtab{};
    for (int k = 0; k < kNumDist; ++k) {
      dtab[k] = dist_code[k] | uint32_t{dist_len[k]} << 16 | uint32_t{kDistExtra[k]} << 24;
    }
    // The hot loop keeps the bit writer's state in registers.
    const uint32_t* const syms = syms_.get();
    uint8_t* op = reinterpret_cast<uint8_t*>(out_->data()) + obuf_used_;
    uint64_t bits = bits_;
    unsigned nbits = nbits_;
    const size_t nsyms = nsyms_;
    for (size_t k = 0; k < nsyms; ++k) {
      const uint32_t s = syms[k];
      const uint32_t e = vtab[s & 511];
      unsigned n = e >> 24;
      uint64_t b = e & 0xffffff;
      // A literal is its code alone; the pattern of literals and matches repeats line after
      // line, which branch predictors learn.
      if ((s & 256) != 0) {
        const uint32_t d = dtab[(s >> 9) & 31];
        b |= uint64_t{d & 0xffff} << n;
        n += (d >> 16) & 0xff;
        b |= uint64_t{s >> 14} << n;
        n += d >> 24;
      }
      bits |= b << nbits;
      nbits += n;
      // At most 7 + 15 + 5 + 15 + 13 = 55 bits are pending here.
      uint64_t v = bits;
      if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
      std::memcpy(op, &v, 8);
      op += nbits >> 3;
      bits >>= nbits & ~7u;
      nbits &= 7;
    }
    obuf_used_ = static_cast<size_t>(op - reinterpret_cast<uint8_t*>(out_->data()));
    bits_ = bits;
    nbits_ = nbits;
    PutBits(lit_code[256], lit_len[256]);
    FlushBits();
  }
  nsyms_ = 0;
  lit_freq_.fill(0);
  dist_freq_.fill(0);
  block_start_ = pos_;
}

void LineGzipWriter::Slide() {
  const size_t keep_from = std::min(block_start_, pos_ > kWindow ? pos_ - kWindow : 0);
  if (keep_from < kSlideBytes) return;
  std::memmove(buf_.get(), buf_.get() + keep_from, len_ - keep_from);
  len_ -= keep_from;
  base_ += keep_from;
  pos_ -= keep_from;
  block_start_ -= keep_from;
  const auto shift = static_cast<int64_t>(keep_from);
  line_start_ -= shift;
  prev_line_start_ -= shift;
  nl_ -= shift;
}

std::string LineGzipCompress(std::string_view input) {
  LineGzipWriter w;
  std::string out;
  w.Write(input, &out);
  w.Finish(&out);
  return out;
}

}  // namespace shmetrics::expose
