// Protobuf wire primitives, written by hand for the encoders that speak protobuf (the exposition's
// MetricFamily stream and remote write's WriteRequest) without linking a protobuf library.
//
// Two styles, for two kinds of message:
//  - Put* write at a raw pointer into space the caller sized exactly (with VarintSize and
//    FieldSize): for small messages whose size is cheap to know before writing them.
//  - Append* and OpenMessage/CloseMessage append to a std::string: for nested messages of any
//    size. OpenMessage reserves one byte for the length; CloseMessage fills it in, moving the body
//    only when it turned out 128 bytes or longer.
//
// Thread safety: pure functions on caller-owned buffers.
#ifndef SHMETRICS_SRC_EXPOSE_PROTOBUF_WIRE_H_
#define SHMETRICS_SRC_EXPOSE_PROTOBUF_WIRE_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace shmetrics::expose::wire {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2 };

constexpr uint32_t Tag(uint32_t field, WireType type) { return (field << 3) | type; }

// The longest varint (a 64-bit value, 7 bits per byte).
inline constexpr size_t kMaxVarint = 10;

constexpr size_t VarintSize(uint64_t v) {
  // 7 bits per byte; 0 still takes one.
  return v == 0 ? 1 : (std::bit_width(v) + 6) / 7;
}

// sint32 and sint64: small magnitudes of either sign become small varints.
constexpr uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

// A length-delimited field with a one-byte tag: tag, length, payload.
constexpr size_t FieldSize(size_t payload) { return 1 + VarintSize(payload) + payload; }

inline char* PutVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline char* PutBytes(char* p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());  // a default string_view's data() is null
  return p + s.size();
}

// A double as fixed64, which protobuf stores little-endian.
inline char* PutDouble(char* p, double v) {
  uint64_t bits = std::bit_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i, bits >>= 8) *p++ = static_cast<char>(bits & 0xFF);
  return p;
}

// A message {string name = 1; string value = 2;} as field 1 of its parent: both
// io.prometheus.client.LabelPair in a Metric or Exemplar and prometheus.Label in a TimeSeries.
constexpr size_t LabelPairSize(std::string_view name, std::string_view value) {
  return FieldSize(name.size()) + FieldSize(value.size());
}
constexpr size_t LabelFieldSize(std::string_view name, std::string_view value) {
  return FieldSize(LabelPairSize(name, value));
}
inline char* PutLabelField(char* p, std::string_view name, std::string_view value) {
  *p++ = static_cast<char>(Tag(1, kLengthDelimited));
  p = PutVarint(p, LabelPairSize(name, value));
  *p++ = static_cast<char>(Tag(1, kLengthDelimited));
  p = PutVarint(p, name.size());
  p = PutBytes(p, name);
  *p++ = static_cast<char>(Tag(2, kLengthDelimited));
  p = PutVarint(p, value.size());
  return PutBytes(p, value);
}

inline void AppendVarint(std::string* out, uint64_t v) {
  char buf[kMaxVarint];
  out->append(buf, PutVarint(buf, v) - buf);
}

inline void AppendVarintField(std::string* out, uint32_t field, uint64_t v) {
  char buf[2 * kMaxVarint];
  char* p = PutVarint(buf, Tag(field, kVarint));
  out->append(buf, PutVarint(p, v) - buf);
}

inline void AppendDoubleField(std::string* out, uint32_t field, double v) {
  char buf[kMaxVarint + 8];
  char* p = PutVarint(buf, Tag(field, kFixed64));
  out->append(buf, PutDouble(p, v) - buf);
}

inline void AppendStringField(std::string* out, uint32_t field, std::string_view s) {
  char buf[2 * kMaxVarint];
  char* p = PutVarint(buf, Tag(field, kLengthDelimited));
  out->append(buf, PutVarint(p, s.size()) - buf);
  out->append(s);
}

// Writes the field's tag and a placeholder length; returns where the body starts, for
// CloseMessage. field 0 opens an untagged message: the length prefix of a delimited stream.
inline size_t OpenMessage(std::string* out, uint32_t field) {
  if (field != 0) AppendVarint(out, Tag(field, kLengthDelimited));
  out->push_back('\0');
  return out->size();
}

inline void CloseMessage(std::string* out, size_t body_start) {
  const size_t length = out->size() - body_start;
  const size_t extra = VarintSize(length) - 1;
  if (extra > 0) out->insert(body_start, extra, '\0');
  PutVarint(out->data() + body_start - 1, length);
}

}  // namespace shmetrics::expose::wire

#endif  // SHMETRICS_SRC_EXPOSE_PROTOBUF_WIRE_H_
