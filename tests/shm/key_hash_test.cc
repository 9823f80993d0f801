// The index key hash is heap format: readers in other languages compute it from FORMAT.md, so
// its values are fixed here (computed from FORMAT.md's description by a separate program).
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "shm/layout.h"

namespace shmetrics::shm {
namespace {

uint64_t Hash(std::string_view key) { return KeyHash(key.data(), key.size()); }

TEST(KeyHashTest, MatchesTheFormatDescription) {
  using namespace std::literals;
  EXPECT_EQ(Hash(""), 0xf3050e837be325dbULL);
  EXPECT_EQ(Hash("abc"), 0x5fa33ab42f7ce8d8ULL);
  EXPECT_EQ(Hash("a"), 0xebd4323f931e3ee8ULL);
  EXPECT_EQ(Hash("\0"sv), 0xa5c8f284248fe562ULL);
  EXPECT_EQ(Hash("12345678"), 0x408fd574c78b9df8ULL);
  EXPECT_EQ(Hash("123456789"), 0x20bf17bac95c6a71ULL);
  EXPECT_EQ(Hash("http_requests_total\0GET\0"
                 "200"sv),
            0x7475897ffa5ab699ULL);
  std::string bytes;
  for (int i = 0; i < 31; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(Hash(bytes), 0x62c2b9a37f6a25b8ULL);
}

TEST(KeyHashTest, ReadsNoByteOutsideTheKey) {
  // The same key at every alignment, followed by different bytes: only the key counts.
  const std::string key = "route=/api/v1/users/{id}";
  const uint64_t want = Hash(key);
  for (size_t shift = 0; shift < 8; ++shift) {
    for (char after : {'\0', 'x', '\xff'}) {
      std::string buf(shift, '#');
      buf += key;
      buf.append(8, after);
      EXPECT_EQ(KeyHash(buf.data() + shift, key.size()), want) << shift;
    }
  }
}

// FORMAT.md's description read literally: whole little-endian words, then the rest zero-padded.
uint64_t ReferenceHash(std::string_view key) {
  uint64_t h = kKeyHashSeed ^ key.size();
  for (size_t i = 0; i < key.size(); i += 8) {
    uint64_t w = 0;
    for (size_t k = 0; k < 8 && i + k < key.size(); ++k) {
      w |= uint64_t{static_cast<unsigned char>(key[i + k])} << (8 * k);
    }
    h = KeyHashFold(h ^ w, kKeyHashMultiplier);
  }
  return KeyHashFold(h, kKeyHashSeed);
}

TEST(KeyHashTest, EveryTailLengthMatchesTheByteWiseDescription) {
  // The tail is read with overlapping loads (< 4, < 8 and >= 8 byte keys take different ways).
  std::string key;
  for (size_t len = 0; len <= 40; ++len) {
    EXPECT_EQ(Hash(key), ReferenceHash(key)) << len;
    key.push_back(static_cast<char>(0x80 + len * 37));
  }
}

using namespace std::literals;

TEST(KeyHashTest, LowBitsSpreadLabelValuesThatDifferInOneCharacter) {
  // Linear probing uses the low bits: keys that differ in one byte anywhere must land in
  // different slots of a small table nearly always.
  std::set<uint64_t> slots;
  const std::string base = "family\0worker-000\0GET"s;
  for (size_t pos = 0; pos < base.size(); ++pos) {
    for (int c = 1; c < 128; c += 7) {
      std::string k = base;
      k[pos] = static_cast<char>(k[pos] ^ c);
      slots.insert(Hash(k) & 0xffff);
    }
  }
  const size_t keys = base.size() * 19;
  EXPECT_GE(slots.size(), keys * 99 / 100);
}

}  // namespace
}  // namespace shmetrics::shm
