// Number rendering for the text formats: sample values, timestamps and the canonical form that
// OpenMetrics wants in `le` and `quantile` label values.
//
// The Write* functions write into a caller's buffer and allocate nothing; the Append* forms go
// through a stack buffer. Digits come from std::to_chars.
//
// Thread safety: pure functions, safe from any thread.
#ifndef SHMETRICS_SRC_EXPOSE_NUMBER_FORMAT_H_
#define SHMETRICS_SRC_EXPOSE_NUMBER_FORMAT_H_

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>

namespace shmetrics::expose {

// The most any function below writes for one number ("-1.7976931348623157e+308" is 24).
inline constexpr size_t kMaxNumberChars = 32;

// Writes v in decimal at p, which must have kMaxNumberChars bytes of room; returns the end.
inline char* WriteUint(uint64_t v, char* p) { return std::to_chars(p, p + kMaxNumberChars, v).ptr; }

// Writes v as a sample value at p (kMaxNumberChars of room); returns the end. `NaN`, `+Inf`,
// `-Inf`; integral values up to 2^53 in magnitude as plain integers (so a gauge of 1000000 reads
// `1000000`, not `1e+06`), keeping the sign of -0; anything else as the shortest text that parses
// back to the same double.
//
// Example: 0.1 -> "0.1", 3 -> "3", 1e300 -> "1e+300", -0.0 -> "-0", 1e-300 -> "1e-300".
char* WriteSampleValue(double v, char* p);

// Writes v at p (kMaxNumberChars of room) the way OpenMetrics' "Canonical Numbers" rule wants
// `le` and `quantile` label values; returns the end. That is Go's shortest %g rendering (exponent
// form below 1e-4 and from 1e+06 up), with ".0" appended when that leaves neither a point nor an
// exponent, and `+Inf` for positive infinity. It is also what python-prometheus-client writes, so
// a bucket has one label value whichever library or format exposed it.
//
// Example: 1 -> "1.0", 0.005 -> "0.005", 100000 -> "100000.0", 1e6 -> "1e+06",
//          1e-5 -> "1e-05", 2.5e-7 -> "2.5e-07", inf -> "+Inf".
char* WriteCanonicalNumber(double v, char* p);

// Appending forms of the above.
inline void AppendUint(uint64_t v, std::string* out) {
  char buf[kMaxNumberChars];
  out->append(buf, WriteUint(v, buf));
}
inline void AppendSampleValue(double v, std::string* out) {
  char buf[kMaxNumberChars];
  out->append(buf, WriteSampleValue(v, buf));
}
inline void AppendCanonicalNumber(double v, std::string* out) {
  char buf[kMaxNumberChars];
  out->append(buf, WriteCanonicalNumber(v, buf));
}

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_NUMBER_FORMAT_H_
