// Byte copies for the short strings that dominate the scrape path (keys, label values, names).
//
// Thread safety: pure functions.
#ifndef SHMETRICS_SRC_UTIL_BYTES_H_
#define SHMETRICS_SRC_UTIL_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shmetrics::util {

// Copies n bytes from src to dst, which do not overlap, without a call into the C library for
// n <= 16: two overlapping loads and stores cover any length from 4 to 16 (three byte copies
// below that), with no loop and no branch per byte. Touches exactly [src, src + n) and
// [dst, dst + n), so it may copy out of memory that ends right after the string.
[[gnu::always_inline]] inline void CopyShort(char* dst, const char* src, size_t n) {
  if (n > 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n != 0) {
    const char a = src[0], b = src[n / 2], c = src[n - 1];
    dst[0] = a;
    dst[n / 2] = b;
    dst[n - 1] = c;
  }
}

}  // namespace shmetrics::util

#endif  // SHMETRICS_SRC_UTIL_BYTES_H_
