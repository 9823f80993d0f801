// Test helpers: run an encoder to completion, and one exposition holding every metric type, used
// both as a golden and as input to the independent parsers.
#ifndef SHMETRICS_TESTS_EXPOSE_EXPOSITION_HELPERS_H_
#define SHMETRICS_TESTS_EXPOSE_EXPOSITION_HELPERS_H_

#include <functional>
#include <string>

#include "expose/encoder.h"

namespace shmetrics::expose {

// Makes an encoder for format, lets body write families, calls Finish and returns the text.
std::string Encode(Format format, const std::function<void(Encoder&)>& body);

// Writes one family of every type (with escaping, units, created timestamps, exemplars and an
// empty label set among them). Every value is one the OpenMetrics parsers accept (no NaN
// counters, integral bucket counts, exemplar labels within 128 characters).
void WriteEveryType(Encoder& enc);

}  // namespace shmetrics::expose

#endif  // SHMETRICS_TESTS_EXPOSE_EXPOSITION_HELPERS_H_
