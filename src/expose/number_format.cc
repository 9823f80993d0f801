#include "expose/number_format.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace shmetrics::expose {
namespace {

// 2^53: every integer up to here is exact in a double, so printing it as an integer is both exact
// and what a reader expects. Past it, the shortest round-trip text is shorter and just as exact.
constexpr double kMaxPlainInteger = 9007199254740992.0;

char* Put(char* p, const char* s, size_t n) {
  std::memcpy(p, s, n);
  return p + n;
}

// Writes the name of a non-finite value and returns the end, or returns nullptr for a finite one.
char* WriteNonFinite(double v, char* p) {
  if (std::isnan(v)) return Put(p, "NaN", 3);
  if (std::isinf(v)) return Put(p, v > 0 ? "+Inf" : "-Inf", 4);
  return nullptr;
}

}  // namespace

char* WriteSampleValue(double v, char* p) {
  // Counts, the commonest values by far, first: a non-negative integer below 2^53 takes one
  // conversion there and back (NaN fails the comparisons, -0 is caught below).
  if (v >= 0 && v <= kMaxPlainInteger) {
    const auto u = static_cast<uint64_t>(v);
    if (static_cast<double>(u) == v && (u != 0 || !std::signbit(v))) return WriteUint(u, p);
  }
  if (char* end = WriteNonFinite(v, p)) return end;
  if (std::fabs(v) <= kMaxPlainInteger && std::trunc(v) == v) {
    if (v == 0 && std::signbit(v)) return Put(p, "-0", 2);
    return std::to_chars(p, p + kMaxNumberChars, static_cast<int64_t>(v)).ptr;
  }
  // Without a precision, to_chars gives the shortest text that round-trips, choosing fixed or
  // scientific by length; both are valid numbers in either format.
  return std::to_chars(p, p + kMaxNumberChars, v).ptr;
}

char* WriteCanonicalNumber(double v, char* p) {
  if (char* end = WriteNonFinite(v, p)) return end;
  // Shortest round-trip digits in scientific form, e.g. "-1.2345e-07" or "1e+06".
  char sci[kMaxNumberChars];
  const char* end = std::to_chars(sci, sci + sizeof(sci), v, std::chars_format::scientific).ptr;
  const char* s = sci;
  const bool negative = *s == '-';
  if (negative) ++s;
  char digits[20];  // at most 17 significant digits
  int nd = 0;
  for (; s < end && *s != 'e'; ++s) {
    if (*s != '.') digits[nd++] = *s;
  }
  const char* exp_begin = s + 1;
  if (exp_begin < end && *exp_begin == '+') ++exp_begin;  // from_chars takes "-07" but not "+06"
  int exp = 0;
  std::from_chars(exp_begin, end, exp);

  char* w = p;
  if (negative) *w++ = '-';
  if (exp < -4 || exp >= 6) {
    // Go's %e: d[.ddd]e±XX with at least two exponent digits.
    *w++ = digits[0];
    if (nd > 1) {
      *w++ = '.';
      w = Put(w, digits + 1, nd - 1);
    }
    *w++ = 'e';
    *w++ = exp < 0 ? '-' : '+';
    const int abs_exp = exp < 0 ? -exp : exp;
    if (abs_exp < 10) *w++ = '0';
    return std::to_chars(w, p + kMaxNumberChars, abs_exp).ptr;
  }
  if (exp < 0) {
    // 0.000ddd
    *w++ = '0';
    *w++ = '.';
    for (int i = exp + 1; i < 0; ++i) *w++ = '0';
    return Put(w, digits, nd);
  }
  // The integer part is digits[0..exp], padded with zeros when the digits run out.
  for (int i = 0; i <= exp; ++i) *w++ = i < nd ? digits[i] : '0';
  *w++ = '.';
  if (nd > exp + 1) return Put(w, digits + exp + 1, nd - exp - 1);
  *w++ = '0';  // the ".0" that marks an integral value as a float
  return w;
}

}  // namespace shmetrics::expose
