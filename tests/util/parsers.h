// Test helpers: run an exposition through the independent parsers a user's monitoring would use,
// promtool (Prometheus' own Go parser) and python3-prometheus-client's OpenMetrics parser.
#ifndef SHMETRICS_TESTS_UTIL_PARSERS_H_
#define SHMETRICS_TESTS_UTIL_PARSERS_H_

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "util/subprocess.h"

namespace shmetrics::testing {

// Debian's python3-prometheus-client is installed for the system interpreter only; a `python3`
// earlier on PATH may lack it.
inline constexpr char kSystemPython[] = "/usr/bin/python3";
inline constexpr char kPromtool[] = "/usr/bin/promtool";

namespace parsers_internal {
// Writes text to a fresh temporary file and runs `command <file> 2>&1`; "" when it exits 0 (or
// one of `also_ok`), otherwise its exit status and output.
inline std::string RunOnFile(const std::string& command, const std::string& text, int also_ok = 0) {
  char path[] = "/tmp/shmetrics-parse-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "cannot create a temporary file";
  close(fd);
  std::ofstream(path, std::ios::binary) << text;
  int rc = -1;
  const std::string out = Shell(command + " " + path + " 2>&1", &rc);
  unlink(path);
  if (rc == 0 || (also_ok != 0 && rc == also_ok)) return "";
  return "exit " + std::to_string(rc) + ": " + out;
}
}  // namespace parsers_internal

// "" when python's OpenMetrics parser accepts the text (it must end in # EOF), else its error.
inline std::string OpenMetricsParserRejects(const std::string& text) {
  return parsers_internal::RunOnFile(
      std::string(kSystemPython) +
          " -c 'import sys\n"
          "from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n"
          "for f in p(open(sys.argv[1], encoding=\"utf-8\").read()): list(f.samples)\n'",
      text);
}

// "" when `promtool check metrics` parses the Prometheus text; exit 3 (the text parsed, only
// the linter has remarks, e.g. on the names a test chose) counts as accepted.
inline std::string PromtoolRejects(const std::string& text) {
  return parsers_internal::RunOnFile(std::string(kPromtool) + " check metrics <", text, 3);
}

// Whether both parsers are installed.
inline bool HaveParsers() {
  return access(kPromtool, X_OK) == 0 &&
         Shell(std::string(kSystemPython) +
               " -c 'import prometheus_client.openmetrics.parser' 2>/dev/null && echo ok") ==
             "ok\n";
}

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_UTIL_PARSERS_H_
