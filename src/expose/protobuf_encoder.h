// The protobuf exposition: an Encoder writing Prometheus's delimited io.prometheus.client
// MetricFamily stream (src/expose/metrics.proto), encoded by hand so that core links no protobuf.
//
// One MetricFamily per BeginFamily/EndFamily, each preceded by its length as a varint. Family
// names are those of the series a scraper ingests, since Prometheus's protobuf parser appends
// nothing but the `_count`, `_sum` and `_bucket` of histograms and summaries:
//   counter   COUNTER   `<name>_total`; value, created_timestamp, exemplar
//   gauge     GAUGE     value
//   histogram HISTOGRAM sample_count, sample_sum, created_timestamp; classic buckets cumulative,
//                       without the +Inf bucket (it is sample_count) unless that bucket has an
//                       exemplar; native series with schema, zero bucket, spans, delta-encoded
//                       counts and Histogram.exemplars
//   summary   SUMMARY   sample_count, sample_sum, quantiles, created_timestamp
//   info      GAUGE     `<name>_info`, value 1 (as client_golang and client_python expose infos)
//   stateset  GAUGE     one metric per state, the state in a label named after the family, 1 or 0
//   unknown   UNTYPED   value
// HELP goes into help as it is (protobuf needs no escaping); the unit into unit, except for info
// and stateset families. EncoderOptions::created false leaves out every created_timestamp.
// Metric and label names are written as the caller passes them: EncoderOptions::escaping is not
// applied here yet. Legacy names, all the registry admits without UTF-8 names, are the same under
// every scheme, as expfmt escapes only the names that need it.
//
// Thread safety: an encoder is used by one thread at a time.
#ifndef SHMETRICS_SRC_EXPOSE_PROTOBUF_ENCODER_H_
#define SHMETRICS_SRC_EXPOSE_PROTOBUF_ENCODER_H_

#include <memory>
#include <string>

#include "expose/encoder.h"

namespace shmetrics::expose {

// Appends to *out, which must outlive the encoder. MakeEncoder(Format::kProtobuf, ...) calls it.
std::unique_ptr<Encoder> MakeProtobufEncoder(std::string* out, const EncoderOptions& options);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_SRC_EXPOSE_PROTOBUF_ENCODER_H_
