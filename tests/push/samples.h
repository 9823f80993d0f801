// Samples as comparable strings "label=value,... value" (labels sorted, __name__ among them),
// from a Prometheus text exposition or from a Prometheus server's query API.
#ifndef SHMETRICS_TESTS_PUSH_SAMPLES_H_
#define SHMETRICS_TESTS_PUSH_SAMPLES_H_

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace shmetrics::testing {

using LabelSet = std::vector<std::pair<std::string, std::string>>;

inline std::string SampleKey(LabelSet labels, double value) {
  std::sort(labels.begin(), labels.end());
  std::string key;
  for (const auto& [n, v] : labels) key += n + "=" + v + ",";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  return key + " " + buf;
}

// Every sample of a Prometheus 0.0.4 text exposition whose name starts with `prefix`, label
// values unescaped.
inline std::multiset<std::string> TextSamples(const std::string& text,
                                              const std::string& prefix = "") {
  std::multiset<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || !line.starts_with(prefix)) continue;
    LabelSet labels;
    size_t i = line.find_first_of("{ ");
    labels.emplace_back("__name__", line.substr(0, i));
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        const size_t eq = line.find('=', i);
        std::string name = line.substr(i, eq - i), value;
        for (i = eq + 2; line[i] != '"'; ++i) {
          if (line[i] == '\\') {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        labels.emplace_back(name, value);
        ++i;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    out.insert(SampleKey(labels, std::strtod(line.c_str() + i + 1, nullptr)));
  }
  return out;
}

}  // namespace shmetrics::testing

#endif  // SHMETRICS_TESTS_PUSH_SAMPLES_H_
