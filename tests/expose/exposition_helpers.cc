#include "expose/exposition_helpers.h"

#include <cstdint>
#include <limits>

namespace shmetrics::expose {

std::string Encode(Format format, const std::function<void(Encoder&)>& body) {
  std::string out;
  std::unique_ptr<Encoder> enc = MakeEncoder(format, &out);
  body(*enc);
  enc->Finish();
  return out;
}

void WriteEveryType(Encoder& enc) {
  constexpr double kInf = std::numeric_limits<double>::infinity();

  enc.BeginFamily({.name = "http_requests",
                   .type = MetricType::kCounter,
                   .help = "Requests served, by \"code\".\nSecond line \\ backslash.",
                   .unit = ""});
  {
    const Label labels[] = {{"method", "GET"}, {"code", "200"}};
    const Label trace[] = {{"trace_id", "4bf92f3577b34da6"}};
    const Exemplar ex{.labels = trace, .value = 0.25, .timestamp = 1700000000.5};
    enc.Counter(labels, 1027, 1700000000, &ex);
    const Label odd[] = {{"method", "we\\ird \"one\"\nhere"}, {"code", ""}};
    enc.Counter(odd, 3, std::nullopt, nullptr);
  }
  enc.EndFamily();

  enc.BeginFamily({.name = "process_start_time_seconds",
                   .type = MetricType::kGauge,
                   .help = "Start time of the process since unix epoch in seconds.",
                   .unit = "seconds"});
  enc.Gauge({}, 1699999999.25);
  enc.EndFamily();

  enc.BeginFamily({.name = "temperature_celsius",
                   .type = MetricType::kGauge,
                   .help = "Odd values.",
                   .unit = "celsius"});
  {
    const Label a[] = {{"probe", "a"}};
    const Label b[] = {{"probe", "b"}};
    const Label c[] = {{"probe", "c"}};
    const Label d[] = {{"probe", "d"}};
    const Label e[] = {{"probe", "e"}};
    enc.Gauge(a, -kInf);
    enc.Gauge(b, std::numeric_limits<double>::quiet_NaN());
    enc.Gauge(c, 1e-300);
    enc.Gauge(d, -0.0);
    enc.Gauge(e, 9007199254740993.0 * 4);  // beyond 2^53
  }
  enc.EndFamily();

  enc.BeginFamily({.name = "request_duration_seconds",
                   .type = MetricType::kHistogram,
                   .help = "Request latency.",
                   .unit = "seconds"});
  {
    const Label labels[] = {{"handler", "/"}};
    const double bounds[] = {0.005, 0.1, 1, 10};
    const uint64_t cumulative[] = {1, 4, 9, 9, 12};
    const Label t1[] = {{"trace_id", "a1"}};
    const Label t2[] = {{"trace_id", "b2"}, {"span_id", "c3"}};
    const Exemplar e1{.labels = t1, .value = 0.07, .timestamp = std::nullopt};
    const Exemplar e2{.labels = t2, .value = 12.5, .timestamp = 1700000001};
    const Exemplar* exemplars[] = {nullptr, &e1, nullptr, nullptr, &e2};
    enc.Histogram(labels, bounds, cumulative, 40.5, 1700000000, exemplars);
    enc.Histogram({}, {}, std::span<const uint64_t>(cumulative + 4, 1), 0, std::nullopt, {});
  }
  enc.EndFamily();

  enc.BeginFamily({.name = "rpc_duration_seconds",
                   .type = MetricType::kSummary,
                   .help = "RPC latency.",
                   .unit = "seconds"});
  {
    const Label labels[] = {{"service", "auth"}};
    const Quantile quantiles[] = {{0.5, 0.012}, {0.9, 0.1}, {0.99, 1.5}};
    enc.Summary(labels, 1000, 80.25, quantiles, 1700000000);
    enc.Summary({}, 0, 0, {}, std::nullopt);
  }
  enc.EndFamily();

  enc.BeginFamily(
      {.name = "build", .type = MetricType::kInfo, .help = "Build information.", .unit = ""});
  {
    const Label labels[] = {{"version", "1.2.3"}, {"revision", "abc\"def"}};
    enc.Info(labels);
  }
  enc.EndFamily();

  enc.BeginFamily(
      {.name = "feature", .type = MetricType::kStateSet, .help = "Feature state.", .unit = ""});
  {
    const Label labels[] = {{"region", "eu"}};
    const State states[] = {{"enabled", true}, {"disabled", false}};
    enc.StateSet(labels, states);
    const State single[] = {{"on\nline", false}};
    enc.StateSet({}, single);
  }
  enc.EndFamily();

  enc.BeginFamily(
      {.name = "legacy_value", .type = MetricType::kUnknown, .help = "Untyped.", .unit = ""});
  enc.Gauge({}, 42);
  enc.EndFamily();
}

}  // namespace shmetrics::expose
