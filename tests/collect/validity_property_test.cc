// Whatever is registered, every exposition parses: random families (every type, names built from
// a few stems and the suffixes the expositions use, label names including the reserved ones,
// prefixes and const labels including invalid ones) registered from two processes at once into
// one heap, then exposed in both text formats and judged by promtool and the python parsers.
// Registration may refuse anything; what it accepts must never make an invalid scrape.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "collect/exposition.h"
#include "gtest/gtest.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"
#include "util/parsers.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::HaveParsers;
using ::shmetrics::testing::PromtoolRejects;
using ::shmetrics::testing::PythonProblems;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;

constexpr size_t kHeaps = 150;
constexpr int kAttemptsPerProcess = 12;  // two processes: 3,600 registrations in all

template <typename T>
const T& Pick(std::mt19937_64& rng, const std::vector<T>& from) {
  return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
}

bool Chance(std::mt19937_64& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

std::string RandomName(std::mt19937_64& rng) {
  static const std::vector<std::string> kStems = {"a", "b", "req", "x_y", "a_total", "a_info"};
  static const std::vector<std::string> kSuffixes = {"",
                                                     "",
                                                     "_total",
                                                     "_created",
                                                     "_bucket",
                                                     "_count",
                                                     "_sum",
                                                     "_info",
                                                     "_max",
                                                     "_sum_of_squares",
                                                     "_seconds",
                                                     "_seconds_max",
                                                     "_seconds_count",
                                                     "_seconds_bucket",
                                                     "_gcount"};
  static const std::vector<std::string> kCollectorOwn = {
      "process_start_time_seconds", "process_cpu_seconds",       "shmetrics_heap_used_bytes",
      "shmetrics_heap_used",        "shmetrics_series_overflow", "shmetrics_lock_recoveries_total"};
  if (Chance(rng, 0.05)) return Pick(rng, kCollectorOwn);
  return Pick(rng, kStems) + Pick(rng, kSuffixes);
}

std::vector<std::string> RandomLabels(std::mt19937_64& rng, const std::string& name) {
  static const std::vector<std::string> kLabels = {"a",        "b",         "code", "le",
                                                   "quantile", "worker_id", "heap", "__x"};
  std::vector<std::string> out;
  const int n = std::uniform_int_distribution<int>(0, 2)(rng);
  for (int i = 0; i < n; ++i) out.push_back(Chance(rng, 0.1) ? name : Pick(rng, kLabels));
  return out;
}

std::vector<std::string> RandomValues(std::mt19937_64& rng, size_t n) {
  static const std::vector<std::string> kValues = {
      "", "1", "GET", "a b", "\"q\"", "x\\y", "line\nbreak", "\xc3\xa9t\xc3\xa9"};
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(Pick(rng, kValues));
  return out;
}

// Gives a family one or two children with random label values and updates them.
template <typename F, typename Update>
void Use(std::mt19937_64& rng, F& family, size_t labels, Update update) {
  for (int i = std::uniform_int_distribution<int>(1, 2)(rng); i > 0; --i) {
    const std::vector<std::string> values = RandomValues(rng, labels);
    std::vector<std::string_view> views(values.begin(), values.end());
    auto child = family.Labels(std::span<const std::string_view>(views));
    update(child);
  }
}

void RegisterOne(std::mt19937_64& rng, Registry& registry) {
  const std::string name = RandomName(rng);
  const std::vector<std::string> labels = RandomLabels(rng, name);
  const std::string unit = Chance(rng, 0.2) ? "seconds" : "";
  const double v = std::uniform_real_distribution<double>(0, 10)(rng);
  const size_t n = labels.size();
  switch (std::uniform_int_distribution<int>(0, 12)(rng)) {
    case 0:
      Use(rng, registry.AddCounter(name, "c", labels, {.unit = unit}), n,
          [&](auto& c) { c.Inc(v); });
      break;
    case 1: {
      static const std::vector<GaugeMode> kModes = {GaugeMode::kShared, GaugeMode::kSum,
                                                    GaugeMode::kAll, GaugeMode::kLiveAll,
                                                    GaugeMode::kMostRecent};
      Use(rng, registry.AddGauge(name, "g", labels, {.unit = unit, .mode = Pick(rng, kModes)}), n,
          [&](auto& g) { g.Set(v); });
      break;
    }
    case 2:
      Use(rng, registry.AddHistogram(name, "h", labels, {.unit = unit, .buckets = {1, 5}}), n,
          [&](auto& h) { h.Observe(v); });
      break;
    case 3:
      Use(rng, registry.AddSummary(name, "s", labels, {.unit = unit}), n,
          [&](auto& s) { s.Observe(v); });
      break;
    case 4:
      Use(rng,
          registry.AddSummary(
              name, "q", labels,
              {.unit = unit, .quantiles = {0.5, 0.9}, .min_value = 0.001, .max_value = 100}),
          n, [&](auto& s) { s.Observe(v); });
      break;
    case 5:
      Use(rng, registry.AddInfo(name, "i", labels), n, [](auto&) {});
      break;
    case 6:
      Use(rng, registry.AddStateSet(name, "st", labels, {"on", "off"}), n,
          [](auto& s) { (void)s.SetOnly("on"); });
      break;
    case 7:
      Use(rng, registry.AddTimer(name, "t", labels), n,
          [&](auto& t) { t.Record(std::chrono::milliseconds(static_cast<int>(v * 10))); });
      break;
    case 8:
      Use(rng, registry.AddDistributionSummary(name, "d", labels, {.unit = unit}), n,
          [&](auto& d) { d.Record(v); });
      break;
    case 9:
      Use(rng, registry.AddMaxGauge(name, "m", labels, {.unit = unit}), n,
          [&](auto& m) { m.Set(v); });
      break;
    case 10:
      Use(rng, registry.AddAgeGauge(name, "ag", labels), n, [](auto& a) { a.Reset(); });
      break;
    case 11:
      Use(rng, registry.AddPercentileTimer(name, "pt", labels), n,
          [&](auto& t) { t.Record(std::chrono::microseconds(static_cast<int>(v * 1000))); });
      break;
    default:
      Use(rng, registry.AddPercentileDistributionSummary(name, "pd", labels, {.unit = unit}), n,
          [&](auto& d) { d.Record(static_cast<int64_t>(v * 100)); });
      break;
  }
}

// A registry with a random prefix and const labels; invalid ones are refused, and then the
// plain registry serves.
std::unique_ptr<Registry> RandomRegistry(std::mt19937_64& rng, const Heap& heap) {
  static const std::vector<std::string> kPrefixes = {"", "", "ns", "ns:sub", "a", "process"};
  static const std::vector<std::map<std::string, std::string>> kConst = {{},
                                                                         {},
                                                                         {{"env", "prod"}},
                                                                         {{"le", "x"}},
                                                                         {{"quantile", "y"}},
                                                                         {{"worker_id", "z"}},
                                                                         {{"a", "1"}},
                                                                         {{"heap", "h"}}};
  try {
    return std::make_unique<Registry>(heap, RegistryOptions{.prefix = Pick(rng, kPrefixes),
                                                            .const_labels = Pick(rng, kConst),
                                                            .read_environment = false});
  } catch (const Error&) {
    return std::make_unique<Registry>(heap, RegistryOptions{.read_environment = false});
  }
}

void RegisterMany(uint64_t seed, const Heap& heap) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < kAttemptsPerProcess; ++i) {
    std::unique_ptr<Registry> registry = RandomRegistry(rng, heap);
    try {
      RegisterOne(rng, *registry);
    } catch (const Error&) {
      // Refused: a clear error is an allowed answer to any registration.
    }
  }
}

TEST(ValidityPropertyTest, EveryExpositionOfRandomRegistrationsParses) {
  if (!HaveParsers()) GTEST_SKIP() << "promtool or python3-prometheus-client not installed";
  std::vector<std::string> openmetrics, text, merged_openmetrics, merged_text;
  std::optional<Heap> previous;
  for (size_t h = 0; h < kHeaps; ++h) {
    const std::string name = UniqueHeapName("prop");
    Heap heap = Heap::Create(name, {.max_size = 8 << 20, .max_workers = 4});
    const uint64_t seed = 0x5eed0000 + static_cast<uint64_t>(h) * 2;
    const pid_t child = ForkChild([&] {
      RegisterMany(seed + 1, Heap::Open(name));
      return 0;
    });
    RegisterMany(seed, heap);
    ASSERT_EQ(WaitChild(child), 0) << "registering process " << h << " crashed";
    openmetrics.push_back(Expose(heap, ExpositionFormat::kOpenMetrics));
    text.push_back(Expose(heap, ExpositionFormat::kPrometheus));
    Heap::Remove(name);
    // Served together with the heap before it, as `shmetrics serve --heap a --heap b` does:
    // shared families merged, conflicting ones left out.
    if (previous) {
      for (auto* out : {&merged_openmetrics, &merged_text}) {
        out->emplace_back();
        const auto format =
            out == &merged_openmetrics ? expose::Format::kOpenMetrics : expose::Format::kPrometheus;
        ::testing::internal::CaptureStderr();  // the conflicts it reports
        ASSERT_TRUE(collect::EncodeHeaps({*previous, heap}, format, {}, &out->back()).ok());
        (void)::testing::internal::GetCapturedStderr();
      }
    }
    previous = std::move(heap);
  }
  openmetrics.insert(openmetrics.end(), merged_openmetrics.begin(), merged_openmetrics.end());
  text.insert(text.end(), merged_text.begin(), merged_text.end());
  const auto om_problems = PythonProblems(openmetrics, /*openmetrics=*/true);
  const auto text_problems = PythonProblems(text, /*openmetrics=*/false);
  int failures = 0;
  for (size_t h = 0; h < openmetrics.size() && failures < 3; ++h) {
    const std::string promtool = PromtoolRejects(text[h]);
    if (om_problems[h].empty() && text_problems[h].empty() && promtool.empty()) continue;
    ++failures;
    // The first kHeaps texts are one heap each; then heap i-1 and i merged, for i = 1, 2, ...
    const size_t heap = h < kHeaps ? h : h - kHeaps + 1;
    ADD_FAILURE() << (h < kHeaps ? "heap " : "heaps merged, ending with ") << heap << " (seeds "
                  << 0x5eed0000 + heap * 2 << ", +1):\n"
                  << om_problems[h] << text_problems[h] << promtool
                  << "--- OpenMetrics exposition:\n"
                  << openmetrics[h];
  }
}

}  // namespace
}  // namespace shmetrics
