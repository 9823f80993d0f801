// A protobuf wire decoder for prometheus.WriteRequest, written apart from the encoder (field by
// field from the wire format, rejecting anything unexpected), and the snappy round trip.
#ifndef SHMETRICS_TESTS_PUSH_WIRE_DECODER_H_
#define SHMETRICS_TESTS_PUSH_WIRE_DECODER_H_

#include <snappy.h>

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shmetrics::testing {

struct DecodedSeries {
  std::vector<std::pair<std::string, std::string>> labels;  // in wire order
  std::vector<std::pair<double, int64_t>> samples;          // value, timestamp ms
};

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ == data_.size(); }
  std::optional<uint64_t> Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && pos_ < data_.size(); shift += 7) {
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return std::nullopt;
  }
  std::optional<std::string_view> Bytes() {
    const auto n = Varint();
    if (!n || *n > data_.size() - pos_) return std::nullopt;
    std::string_view s = data_.substr(pos_, *n);
    pos_ += *n;
    return s;
  }
  std::optional<uint64_t> Fixed64() {
    if (data_.size() - pos_ < 8) return std::nullopt;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    pos_ += 8;
    return v;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// Nullopt when the bytes are not a WriteRequest of the fields remote write 1.0 defines.
inline std::optional<std::vector<DecodedSeries>> DecodeWriteRequest(std::string_view data) {
  std::vector<DecodedSeries> out;
  WireReader r(data);
  while (!r.done()) {
    if (r.Varint() != 0x0A) return std::nullopt;
    const auto ts = r.Bytes();
    if (!ts) return std::nullopt;
    DecodedSeries series;
    WireReader t(*ts);
    while (!t.done()) {
      const auto tag = t.Varint();
      const auto body = t.Bytes();
      if (!tag || !body) return std::nullopt;
      WireReader f(*body);
      if (*tag == 0x0A) {  // Label
        std::string name, value;
        while (!f.done()) {
          const auto ftag = f.Varint();
          const auto s = f.Bytes();
          if (!ftag || !s) return std::nullopt;
          if (*ftag == 0x0A) {
            name = *s;
          } else if (*ftag == 0x12) {
            value = *s;
          } else {
            return std::nullopt;
          }
        }
        series.labels.emplace_back(name, value);
      } else if (*tag == 0x12) {  // Sample
        double value = 0;
        int64_t timestamp = 0;
        while (!f.done()) {
          const auto ftag = f.Varint();
          if (ftag == 0x09) {
            const auto bits = f.Fixed64();
            if (!bits) return std::nullopt;
            value = std::bit_cast<double>(*bits);
          } else if (ftag == 0x10) {
            const auto v = f.Varint();
            if (!v) return std::nullopt;
            timestamp = static_cast<int64_t>(*v);
          } else {
            return std::nullopt;
          }
        }
        series.samples.emplace_back(value, timestamp);
      } else {
        return std::nullopt;
      }
    }
    out.push_back(std::move(series));
  }
  return out;
}

inline std::optional<std::string> SnappyUncompress(std::string_view compressed) {
  std::string out;
  if (!snappy::Uncompress(compressed.data(), compressed.size(), &out)) return std::nullopt;
  return out;
}

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_PUSH_WIRE_DECODER_H_
