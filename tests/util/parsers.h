// Independent judges of an exposition: promtool (Prometheus's own Go parser and linter) and
// python3-prometheus-client's parsers (OpenMetrics and the 0.0.4 text format).
//
// Each judge returns an empty string when it accepts the text, and otherwise what it said. The
// batch form checks many expositions with one interpreter start, for the property tests.
// Debian's python3-prometheus-client is installed for the system interpreter only; a `python3`
// earlier on PATH may lack it, so the interpreter is named.
#ifndef SHMETRICS_TESTS_UTIL_PARSERS_H_
#define SHMETRICS_TESTS_UTIL_PARSERS_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace shmetrics::testing {

inline constexpr char kPromtool[] = "/usr/bin/promtool";
inline constexpr char kPython[] = "/usr/bin/python3";

// Runs a shell command; its stdout and stderr, and its exit status (-1 if it did not exit).
inline std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

inline bool HavePromtool() { return access(kPromtool, X_OK) == 0; }

inline bool HavePythonClient() {
  if (access(kPython, X_OK) != 0) return false;
  int rc = 0;
  RunCommand(std::string(kPython) + " -c 'import prometheus_client.openmetrics.parser'", &rc);
  return rc == 0;
}

// A scratch file that is removed with the object.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& contents) {
    static int counter = 0;
    path_ = (std::filesystem::path(::testing::TempDir()) /
             ("shmetrics_parse_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
                .string();
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~ScratchFile() { std::filesystem::remove(path_); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// promtool check metrics reads the 0.0.4 text format. It exits 1 on a parse error and 3 when
// the text parses but its linter has remarks (names it finds unidiomatic): only the first is a
// rejection, unless the linter itself failed.
inline std::string PromtoolRejects(const std::string& text) {
  ScratchFile f(text);
  int rc = 0;
  std::string out = RunCommand(std::string(kPromtool) + " check metrics < " + f.path(), &rc);
  const bool accepted =
      rc == 0 || (rc == 3 && out.find("error while linting") == std::string::npos);
  return accepted ? std::string() : "promtool exit " + std::to_string(rc) + ": " + out;
}

// Parses each file with the OpenMetrics parser (openmetrics) or the 0.0.4 text parser; prints
// "path: error" for each file it rejects. A family name, or a sample (name and labels), seen
// twice is an error too: Prometheus drops the scrape for a duplicate sample, while the parsers
// let some such pairs through (counter x and gauge x_total both give x_total).
inline constexpr char kPythonBatchScript[] = R"py(
import sys
mode = sys.argv[1]
if mode == 'openmetrics':
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
for path in sys.argv[2:]:
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        names = set()
        seen = set()
        for fam in text_string_to_metric_families(text):
            if fam.name in names:
                raise ValueError('family %r appears twice' % fam.name)
            names.add(fam.name)
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen:
                    raise ValueError('sample %r %r appears twice' % key)
                seen.add(key)
    except Exception as e:
        print(path + ': ' + repr(e))
)py";

// The problems the python parser finds in each text ("" where it accepts one), in order.
inline std::vector<std::string> PythonProblems(const std::vector<std::string>& texts,
                                               bool openmetrics) {
  std::vector<std::unique_ptr<ScratchFile>> files;
  ScratchFile script(kPythonBatchScript);
  std::string cmd =
      std::string(kPython) + " " + script.path() + (openmetrics ? " openmetrics" : " text");
  for (const std::string& t : texts) {
    files.push_back(std::make_unique<ScratchFile>(t));
    cmd += " " + files.back()->path();
  }
  int rc = 0;
  const std::string out = RunCommand(cmd, &rc);
  std::vector<std::string> problems(texts.size());
  if (rc != 0) {
    for (auto& p : problems) p = "python exit " + std::to_string(rc) + ": " + out;
    return problems;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i]->path();
    for (size_t pos = out.find(path + ": "); pos != std::string::npos;
         pos = out.find(path + ": ", pos + 1)) {
      // A path is a prefix of another only with more digits after it, never followed by ": ".
      problems[i] += out.substr(pos, out.find('\n', pos) - pos) + "\n";
    }
  }
  return problems;
}

inline std::string PythonProblems(const std::string& text, bool openmetrics) {
  return PythonProblems(std::vector<std::string>{text}, openmetrics)[0];
}

// "" when python's OpenMetrics parser accepts the text (it must end in # EOF), else its error.
inline std::string OpenMetricsParserRejects(const std::string& text) {
  return PythonProblems(std::vector<std::string>{text}, /*openmetrics=*/true)[0];
}

// Whether both parsers are installed.
inline bool HaveParsers() { return HavePromtool() && HavePythonClient(); }

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_UTIL_PARSERS_H_
