// Feeds encoder output to independent parsers: promtool (Prometheus' own Go parser and linter,
// for text 0.0.4) and python-prometheus-client (its strict OpenMetrics parser, and its 0.0.4
// parser). Each test skips only when the tool is not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "expose/encoder.h"
#include "expose/exposition_helpers.h"

namespace shmetrics::expose {
namespace {

constexpr char kPromtool[] = "/usr/bin/promtool";
// Debian's python3-prometheus-client is installed for the system interpreter only; a `python3`
// earlier on PATH may lack it.
constexpr char kPython[] = "/usr/bin/python3";

// Dumps what the parser understood, one line per family and per sample, in a form the tests
// compare exactly: strings as JSON, values as Python's repr (an int when the text was an
// integer). Exits non-zero, with the parser's message, if parsing fails.
constexpr char kDumpScript[] = R"py(
import json, sys
mode, path = sys.argv[1], sys.argv[2]
if mode == 'openmetrics':
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
with open(path, encoding='utf-8') as f:
    text = f.read()
for fam in text_string_to_metric_families(text):
    print('#', fam.name, fam.type, json.dumps(fam.unit), json.dumps(fam.documentation))
    for s in fam.samples:
        labels = ','.join(k + '=' + json.dumps(v) for k, v in s.labels.items())
        line = f'{s.name}{{{labels}}} {s.value!r}'
        if s.exemplar is not None:
            ex = ','.join(k + '=' + json.dumps(v) for k, v in s.exemplar.labels.items())
            line += f' # {{{ex}}} {s.exemplar.value!r} {s.exemplar.timestamp}'
        print(line)
)py";

// For the randomized test: each gauge sample as `<hex of the UTF-8 label value> <bits of the
// value as a double>`, so the comparison is exact for every byte and every bit.
constexpr char kBitsScript[] = R"py(
import struct, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
with open(sys.argv[1], encoding='utf-8') as f:
    text = f.read()
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        bits = struct.unpack('<Q', struct.pack('<d', float(s.value)))[0]
        print(s.labels['v'].encode('utf-8').hex(), bits)
)py";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A file under the test temp directory, removed when the object dies.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    static int counter = 0;
    path_ = (std::filesystem::path(testing::TempDir()) /
             ("shmetrics_expose_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
                .string();
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool HavePythonClient() {
  if (access(kPython, X_OK) != 0) return false;
  return RunCommand(std::string(kPython) + " -c 'import prometheus_client.openmetrics.parser'")
             .exit_code == 0;
}

std::string EveryType(Format format) {
  return Encode(format, [](Encoder& enc) { WriteEveryType(enc); });
}

TEST(PromtoolTest, AcceptsEveryTypeWithoutLintProblems) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " not installed";
  const TempFile text(EveryType(Format::kPrometheus));
  const CommandResult r = RunCommand(std::string(kPromtool) + " check metrics < " + text.path());
  // promtool exits 1 on a parse error and 3 when the text parses but its linter complains (no
  // help text, a counter without _total, non-base units, ...). The exposition under test uses
  // lint-clean names and has help everywhere, so any complaint at all comes from the encoder
  // (say, metadata that stopped naming the _total or _info samples); requiring exit 0 with no
  // output therefore catches lint regressions as well as parse errors.
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

TEST(PromtoolTest, ReportsABrokenExposition) {
  // Shows that the check above can fail: a label value missing its closing quote.
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " not installed";
  const TempFile text("# TYPE x gauge\nx{a=\"b} 1\n");
  const CommandResult r = RunCommand(std::string(kPromtool) + " check metrics < " + text.path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

TEST(PythonOpenMetricsParserTest, ParsesEveryTypeToTheValuesWritten) {
  if (!HavePythonClient()) GTEST_SKIP() << "python3-prometheus-client not installed";
  const TempFile script(kDumpScript);
  const TempFile text(EveryType(Format::kOpenMetrics));
  const CommandResult r =
      RunCommand(std::string(kPython) + " " + script.path() + " openmetrics " + text.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Values come back as Python ints where the text was an integer: -0 reads as 0 and 2^55 as an
  // exact integer. Label order is the order written.
  EXPECT_EQ(r.output,
            R"(# http_requests counter "" "Requests served, by \"code\".\nSecond line \\ backslash."
http_requests_total{method="GET",code="200"} 1027 # {trace_id="4bf92f3577b34da6"} 0.25 1700000000.500000000
http_requests_created{method="GET",code="200"} 1700000000
http_requests_total{method="we\\ird \"one\"\nhere",code=""} 3
# process_start_time_seconds gauge "seconds" "Start time of the process since unix epoch in seconds."
process_start_time_seconds{} 1699999999.25
# temperature_celsius gauge "celsius" "Odd values."
temperature_celsius{probe="a"} -inf
temperature_celsius{probe="b"} nan
temperature_celsius{probe="c"} 1e-300
temperature_celsius{probe="d"} 0
temperature_celsius{probe="e"} 36028797018963968
# request_duration_seconds histogram "seconds" "Request latency."
request_duration_seconds_bucket{handler="/",le="0.005"} 1
request_duration_seconds_bucket{handler="/",le="0.1"} 4 # {trace_id="a1"} 0.07 None
request_duration_seconds_bucket{handler="/",le="1.0"} 9
request_duration_seconds_bucket{handler="/",le="10.0"} 9
request_duration_seconds_bucket{handler="/",le="+Inf"} 12 # {trace_id="b2",span_id="c3"} 12.5 1700000001.000000000
request_duration_seconds_count{handler="/"} 12
request_duration_seconds_sum{handler="/"} 40.5
request_duration_seconds_created{handler="/"} 1700000000
request_duration_seconds_bucket{le="+Inf"} 12
request_duration_seconds_count{} 12
request_duration_seconds_sum{} 0
# rpc_duration_seconds summary "seconds" "RPC latency."
rpc_duration_seconds{service="auth",quantile="0.5"} 0.012
rpc_duration_seconds{service="auth",quantile="0.9"} 0.1
rpc_duration_seconds{service="auth",quantile="0.99"} 1.5
rpc_duration_seconds_count{service="auth"} 1000
rpc_duration_seconds_sum{service="auth"} 80.25
rpc_duration_seconds_created{service="auth"} 1700000000
rpc_duration_seconds_count{} 0
rpc_duration_seconds_sum{} 0
# build info "" "Build information."
build_info{version="1.2.3",revision="abc\"def"} 1
# feature stateset "" "Feature state."
feature{region="eu",feature="enabled"} 1
feature{region="eu",feature="disabled"} 0
feature{feature="on\nline"} 0
# legacy_value unknown "" "Untyped."
legacy_value{} 42
)");
}

TEST(PythonOpenMetricsParserTest, RejectsABrokenExposition) {
  // Shows that the parse check above can fail: the same text without its `# EOF`.
  if (!HavePythonClient()) GTEST_SKIP() << "python3-prometheus-client not installed";
  std::string broken = EveryType(Format::kOpenMetrics);
  broken.resize(broken.size() - std::string_view("# EOF\n").size());
  const TempFile script(kDumpScript);
  const TempFile text(broken);
  const CommandResult r =
      RunCommand(std::string(kPython) + " " + script.path() + " openmetrics " + text.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("Missing # EOF"), std::string::npos) << r.output;
}

TEST(PythonPrometheusParserTest, ParsesEveryTypeToTheValuesWritten) {
  if (!HavePythonClient()) GTEST_SKIP() << "python3-prometheus-client not installed";
  const TempFile script(kDumpScript);
  const TempFile text(EveryType(Format::kPrometheus));
  const CommandResult r =
      RunCommand(std::string(kPython) + " " + script.path() + " prometheus " + text.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // This parser turns every value into a float and folds `_total` back into the family name.
  EXPECT_EQ(r.output,
            R"(# http_requests counter "" "Requests served, by \"code\".\nSecond line \\ backslash."
http_requests_total{method="GET",code="200"} 1027.0
http_requests_total{method="we\\ird \"one\"\nhere",code=""} 3.0
# process_start_time_seconds gauge "" "Start time of the process since unix epoch in seconds."
process_start_time_seconds{} 1699999999.25
# temperature_celsius gauge "" "Odd values."
temperature_celsius{probe="a"} -inf
temperature_celsius{probe="b"} nan
temperature_celsius{probe="c"} 1e-300
temperature_celsius{probe="d"} -0.0
temperature_celsius{probe="e"} 3.602879701896397e+16
# request_duration_seconds histogram "" "Request latency."
request_duration_seconds_bucket{handler="/",le="0.005"} 1.0
request_duration_seconds_bucket{handler="/",le="0.1"} 4.0
request_duration_seconds_bucket{handler="/",le="1.0"} 9.0
request_duration_seconds_bucket{handler="/",le="10.0"} 9.0
request_duration_seconds_bucket{handler="/",le="+Inf"} 12.0
request_duration_seconds_count{handler="/"} 12.0
request_duration_seconds_sum{handler="/"} 40.5
request_duration_seconds_bucket{le="+Inf"} 12.0
request_duration_seconds_count{} 12.0
request_duration_seconds_sum{} 0.0
# rpc_duration_seconds summary "" "RPC latency."
rpc_duration_seconds{service="auth",quantile="0.5"} 0.012
rpc_duration_seconds{service="auth",quantile="0.9"} 0.1
rpc_duration_seconds{service="auth",quantile="0.99"} 1.5
rpc_duration_seconds_count{service="auth"} 1000.0
rpc_duration_seconds_sum{service="auth"} 80.25
rpc_duration_seconds_count{} 0.0
rpc_duration_seconds_sum{} 0.0
# build_info gauge "" "Build information."
build_info{version="1.2.3",revision="abc\"def"} 1.0
# feature gauge "" "Feature state."
feature{region="eu",feature="enabled"} 1.0
feature{region="eu",feature="disabled"} 0.0
feature{feature="on\nline"} 0.0
# legacy_value unknown "" "Untyped."
legacy_value{} 42.0
)");
}

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Random doubles (any bit pattern but NaN payloads, so subnormals, huge and tiny values, integers
// past 2^53) and random label values drawn from the characters that need escaping or confuse
// parsers, with multi-byte UTF-8 among them.
struct RandomSeries {
  std::vector<std::string> values;
  std::vector<double> numbers;
};

RandomSeries MakeRandomSeries(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> pieces = {"a",
                                           "Z",
                                           "0",
                                           " ",
                                           "\\",
                                           "\"",
                                           "\n",
                                           "{",
                                           "}",
                                           ",",
                                           "=",
                                           "#",
                                           " # ",
                                           "\\n",
                                           "\xc3\xa9",
                                           "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80",
                                           "\t"};
  RandomSeries r;
  r.values.resize(count);
  r.numbers.resize(count);
  for (int i = 0; i < count; ++i) {
    r.values[i] = std::to_string(i);  // keeps label sets distinct
    const int len = static_cast<int>(rng() % 8);
    for (int j = 0; j < len; ++j) r.values[i] += pieces[rng() % pieces.size()];
    double& v = r.numbers[i];
    switch (rng() % 4) {
      case 0:  // any finite double
        do {
          v = std::bit_cast<double>(rng());
        } while (!std::isfinite(v));
        break;
      case 1:  // integers, some past 2^53
        v = static_cast<double>(static_cast<int64_t>(rng() >> (rng() % 64)));
        break;
      case 2:  // "ordinary" decimals
        v = static_cast<double>(rng() % 100000) / 1000.0;
        break;
      default: {
        constexpr double kSpecial[] = {std::numeric_limits<double>::infinity(),
                                       -std::numeric_limits<double>::infinity(),
                                       std::numeric_limits<double>::denorm_min(),
                                       std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::lowest(),
                                       9007199254740992.0,
                                       9007199254740994.0,
                                       -9007199254740992.0,
                                       1e21,
                                       0.1};
        v = kSpecial[rng() % std::size(kSpecial)];
      }
    }
  }
  return r;
}

std::string EncodeRandomSeries(Format format, const RandomSeries& series) {
  return Encode(format, [&](Encoder& enc) {
    enc.BeginFamily(
        {.name = "random", .type = MetricType::kGauge, .help = "Random values.", .unit = ""});
    for (size_t i = 0; i < series.values.size(); ++i) {
      const Label labels[] = {{"v", series.values[i]}};
      enc.Gauge(labels, series.numbers[i]);
    }
    enc.EndFamily();
  });
}

// Every value must come back bit for bit, every label value byte for byte.
TEST(PythonOpenMetricsParserTest, RandomValuesAndLabelValuesRoundTrip) {
  if (!HavePythonClient()) GTEST_SKIP() << "python3-prometheus-client not installed";
  constexpr int kSeries = 500;
  const RandomSeries series = MakeRandomSeries(kSeries, 20240607);
  const std::vector<std::string>& values = series.values;
  const std::vector<double>& numbers = series.numbers;
  const std::string text = EncodeRandomSeries(Format::kOpenMetrics, series);
  const TempFile script(kBitsScript);
  const TempFile file(text);
  const CommandResult r =
      RunCommand(std::string(kPython) + " " + script.path() + " " + file.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  for (int i = 0; i < kSeries; ++i) {
    std::string hex;
    uint64_t bits = 0;
    ASSERT_TRUE(lines >> hex >> bits) << "sample " << i << " missing";
    EXPECT_EQ(hex, Hex(values[i])) << "sample " << i;
    EXPECT_EQ(bits, std::bit_cast<uint64_t>(numbers[i]))
        << "sample " << i << ": wrote " << numbers[i] << ", read " << std::bit_cast<double>(bits);
  }
  std::string extra;
  EXPECT_FALSE(lines >> extra) << "unexpected output: " << extra;
}

TEST(PromtoolTest, AcceptsRandomValuesAndLabelValues) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " not installed";
  const TempFile text(EncodeRandomSeries(Format::kPrometheus, MakeRandomSeries(500, 99)));
  const CommandResult r = RunCommand(std::string(kPromtool) + " check metrics < " + text.path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

}  // namespace
}  // namespace shmetrics::expose
