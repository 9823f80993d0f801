#include "shmetrics/registry.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"
#include "util/test_clock.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::HasSubstr;

class RegistryTest : public testing::HeapTest {
 protected:
  void SetUp() override { CreateHeap("reg"); }
};

TEST_F(RegistryTest, CounterCountsIntegersAndFractionsAndRejectsBadIncrements) {
  auto& f = registry_->AddCounter("jobs_total", "Jobs");
  EXPECT_EQ(f.name(), "jobs");
  Counter c = f.Labels();
  EXPECT_EQ(c.Value(), 0);
  c.Inc();
  EXPECT_TRUE(c.Inc(4));
  EXPECT_TRUE(c.Inc(2.0));
  EXPECT_TRUE(c.Inc(0.25));
  EXPECT_FALSE(c.Inc(-1));
  EXPECT_FALSE(c.Inc(-0.5));
  EXPECT_FALSE(c.Inc(std::nan("")));
  EXPECT_FALSE(c.Inc(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(c.Value(), 7.25);
}

TEST_F(RegistryTest, LabelSetsAreCanonicalWhateverTheOrder) {
  auto& f = registry_->AddCounter("http_requests", "Requests", {"method", "code"});
  f.Labels("GET", "200").Inc();
  f.Labels({{"code", "200"}, {"method", "GET"}}).Inc();
  f.Labels({{"method", "GET"}, {"code", "200"}}).Inc();
  EXPECT_EQ(f.Labels("GET", "200").Value(), 3);
  EXPECT_EQ(f.size(), 1u);
  // A registry declaring the labels in the other order shares the same series.
  Registry other(*heap_);
  auto& g = other.AddCounter("http_requests", "Requests", {"code", "method"});
  EXPECT_EQ(g.Labels("200", "GET").Value(), 3);
}

TEST_F(RegistryTest, WrongOrInvalidLabelValuesThrowAndChangeNothing) {
  auto& f = registry_->AddCounter("c", "C", {"a", "b"});
  f.Labels("x", "y").Inc();
  ErrorCode code;
  EXPECT_THAT(ErrorOf([&] { f.Labels("x"); }, &code), HasSubstr("has 2 label names [a, b]; got 1"));
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf([&] {
                f.Labels({{"a", "1"}, {"zz", "2"}});
              }),
              HasSubstr("has no label \"zz\""));
  EXPECT_THAT(ErrorOf([&] { f.Labels("x", std::string(1 << 20, 'v')); }),
              HasSubstr("is 1048576 bytes; the limit is 4096"));
  EXPECT_THAT(ErrorOf([&] { f.Labels("x", "\xff\xfe"); }), HasSubstr("not valid UTF-8"));
  EXPECT_EQ(ErrorOf([&] { f.Labels("", ""); }), "");  // empty values are valid
  EXPECT_EQ(f.Labels("x", "y").Value(), 1);
  EXPECT_EQ(f.size(), 2u);
}

TEST_F(RegistryTest, NameAndLabelValidation) {
  auto expect_invalid = [&](auto f, const char* what) {
    ErrorCode code = ErrorCode::kOk;
    EXPECT_THAT(ErrorOf(f, &code), HasSubstr(what));
    EXPECT_EQ(code, ErrorCode::kInvalidArgument) << what;
  };
  expect_invalid([&] { registry_->AddCounter("1abc", "h"); }, "invalid metric name");
  expect_invalid([&] { registry_->AddCounter("a-b", "h"); }, "invalid metric name");
  expect_invalid([&] { registry_->AddGauge("__x", "h"); }, "reserved");
  expect_invalid([&] { registry_->AddGauge("g", "h", {"1x"}); }, "invalid label name");
  expect_invalid([&] { registry_->AddGauge("g", "h", {"__x"}); }, "reserved");
  expect_invalid([&] { registry_->AddGauge("g", "h", {"a", "a"}); }, "appears twice");
  expect_invalid([&] { registry_->AddHistogram("h", "h", {"le"}); }, "reserved for histograms");
  expect_invalid([&] { registry_->AddSummary("s", "h", {"quantile"}); }, "reserved for summaries");
  expect_invalid([&] { registry_->AddHistogram("h_bucket", "h"); }, "ends in _bucket");
  expect_invalid([&] { registry_->AddCounter("c_created", "h"); }, "ends in _created");
  expect_invalid([&] { registry_->AddGauge("g", "h", {"worker_id"}, {.mode = GaugeMode::kAll}); },
                 "reserved for per-worker gauges");
  expect_invalid([&] { registry_->AddGauge("g", "\xff"); }, "must be UTF-8");
  expect_invalid([&] { registry_->AddCounter("c", "h", {}, {.unit = "sec onds"}); },
                 "invalid unit");
  expect_invalid([&] { registry_->AddStateSet("st", "h", {}, {}); }, "needs 1 to 64 states");
  expect_invalid([&] { registry_->AddStateSet("st", "h", {}, {"a", "a"}); }, "given twice");
  expect_invalid([&] { registry_->AddStateSet("st", "h", {"st"}, {"a"}); }, "reserved");
}

TEST_F(RegistryTest, BucketValidationAndHelpers) {
  auto bad = [&](std::vector<double> b, const char* what) {
    EXPECT_THAT(ErrorOf([&] { registry_->AddHistogram("h", "h", {}, {.buckets = b}); }),
                HasSubstr(what));
  };
  bad({1, 0.5}, "strictly increasing; bucket 1 is 0.5 after 1");
  bad({1, 1}, "strictly increasing");
  bad({1, std::nan("")}, "strictly increasing");
  bad({-std::numeric_limits<double>::infinity(), 1}, "finite");
  bad(std::vector<double>(2000, 1), "needs 1 to 1024 finite buckets");
  bad({std::numeric_limits<double>::infinity()}, "got 0");
  EXPECT_EQ(LinearBuckets(1, 2, 4), (std::vector<double>{1, 3, 5, 7}));
  EXPECT_EQ(ExponentialBuckets(1, 10, 3), (std::vector<double>{1, 10, 100}));
  EXPECT_EQ(DefaultBuckets().size(), 11u);
  EXPECT_THROW(LinearBuckets(0, 0, 3), Error);
  EXPECT_THROW(ExponentialBuckets(0, 2, 3), Error);
  EXPECT_THROW(ExponentialBuckets(1, 1, 3), Error);
  // A trailing +Inf is accepted and implied.
  auto& h = registry_->AddHistogram("ok", "h", {},
                                    {.buckets = {1, 2, std::numeric_limits<double>::infinity()}});
  EXPECT_EQ(h.bounds(), (std::vector<double>{1, 2}));
}

TEST_F(RegistryTest, ReRegistrationReturnsTheSameFamilyAndConflictsThrow) {
  auto& a = registry_->AddCounter("requests", "R", {"code"});
  auto& b = registry_->AddCounter("requests_total", "other help is fine", {"code"});
  EXPECT_EQ(&a, &b);
  ErrorCode code;
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("requests", "R", {"code"}); }, &code),
              HasSubstr("already registered as a counter with labels [code]; cannot register it "
                        "as a gauge"));
  EXPECT_EQ(code, ErrorCode::kAlreadyExists);
  EXPECT_THAT(ErrorOf([&] { registry_->AddCounter("requests", "R", {"method"}); }),
              HasSubstr("already registered"));
  auto& h = registry_->AddHistogram("lat", "L", {}, {.buckets = {1, 2}});
  EXPECT_EQ(&h, &registry_->AddHistogram("lat", "L", {}, {.buckets = {1, 2}}));
  EXPECT_THAT(ErrorOf([&] {
                registry_->AddHistogram("lat", "L", {}, {.buckets = {1, 3}});
              }),
              HasSubstr("buckets [1, 2]"));
  // A unit makes another name, so another family.
  EXPECT_EQ(ErrorOf([&] { registry_->AddHistogram("lat", "L", {}, {.unit = "seconds"}); }), "");
  // Another registry on the heap (as another process would be) sees the heap's definition.
  Registry other(*heap_);
  EXPECT_THAT(ErrorOf([&] { other.AddSummary("requests", "R", {"code"}); }),
              HasSubstr("already registered in the heap as a counter"));
}

TEST_F(RegistryTest, UnitsPrefixesAndConstLabels) {
  setenv("SHMETRICS_COMMON_LABELS", "app=shop, region=eu", 1);
  Registry shop(*heap_, {.prefix = "shop", .const_labels = {{"region", "us"}}});
  unsetenv("SHMETRICS_COMMON_LABELS");
  EXPECT_EQ((shop.const_labels()),
            (std::map<std::string, std::string>{{"app", "shop"}, {"region", "us"}}));
  auto& f = shop.AddHistogram("latency", "L", {}, {.unit = "seconds"});
  EXPECT_EQ(f.name(), "shop_latency_seconds");
  auto& g = shop.AddGauge("memory_bytes", "M", {}, {.unit = "bytes"});
  EXPECT_EQ(g.name(), "shop_memory_bytes");
  EXPECT_THAT(ErrorOf([&] { shop.AddGauge("x", "h", {"app"}); }), HasSubstr("also a const label"));
  setenv("SHMETRICS_COMMON_LABELS", "novalue", 1);
  EXPECT_THAT(ErrorOf([&] { Registry r(*heap_); }),
              HasSubstr("SHMETRICS_COMMON_LABELS: \"novalue\" is not name=value"));
  unsetenv("SHMETRICS_COMMON_LABELS");
  EXPECT_THAT(ErrorOf([&] { Registry r(*heap_, {.prefix = "9x"}); }),
              HasSubstr("invalid registry prefix"));
}

TEST_F(RegistryTest, GaugeOperationsAndScopedHelpers) {
  Gauge g = registry_->AddGauge("g", "G").Labels();
  g.Set(5);
  g.Inc(2.5);
  g.Dec();
  EXPECT_EQ(g.Value(), 6.5);
  {
    auto in_progress = g.TrackInProgress();
    EXPECT_EQ(g.Value(), 7.5);
  }
  EXPECT_EQ(g.Value(), 6.5);
  {
    auto t = g.Time();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(g.Value(), 0.019);
  EXPECT_LT(g.Value(), 5);
  g.SetToCurrentTime();
  EXPECT_NEAR(g.Value(), static_cast<double>(time(nullptr)), 5);
  // Exactly the library's clock reading, in seconds.
  ::shmetrics::testing::TestClock clock(1767225600500000000u);
  g.SetToCurrentTime();
  EXPECT_EQ(g.Value(), 1767225600.5);
}

TEST_F(RegistryTest, HistogramSummaryStateSetInfo) {
  Histogram h = registry_->AddHistogram("h", "H", {}, {.buckets = {1, 2, 5}}).Labels();
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 100.0}) EXPECT_TRUE(h.Observe(v));
  EXPECT_FALSE(h.Observe(std::nan("")));
  EXPECT_EQ(h.Count(), 6u);
  EXPECT_EQ(h.Sum(), 109.0);
  Summary s = registry_->AddSummary("s", "S").Labels();
  s.Observe(2);
  s.Observe(3);
  EXPECT_EQ(s.Count(), 2u);
  EXPECT_EQ(s.Sum(), 5.0);
  StateSet st = registry_->AddStateSet("st", "S", {}, {"idle", "busy", "draining"}).Labels();
  EXPECT_TRUE(st.Set("idle", true));
  EXPECT_TRUE(st.Set("busy", true));
  EXPECT_TRUE(st.IsSet("idle") && st.IsSet("busy") && !st.IsSet("draining"));
  EXPECT_TRUE(st.SetOnly("draining"));
  EXPECT_TRUE(!st.IsSet("idle") && !st.IsSet("busy") && st.IsSet("draining"));
  EXPECT_FALSE(st.Set("nope", true));
  auto& info = registry_->AddInfo("build_info", "Build", {"version"});
  EXPECT_EQ(info.name(), "build");
  info.Labels("1.2.3");
  EXPECT_EQ(info.size(), 1u);
}

TEST_F(RegistryTest, ExemplarsRespectTheLengthLimit) {
  Counter c = registry_->AddCounter("c", "C").Labels();
  EXPECT_TRUE(c.IncWithExemplar(1, {{"trace_id", "abc"}}));
  // Over 128 characters: the increment counts, the exemplar is dropped.
  const std::string long_value(130, 'x');
  EXPECT_TRUE(c.IncWithExemplar(1, {{"trace_id", long_value}}));
  EXPECT_FALSE(c.IncWithExemplar(-1, {{"trace_id", "abc"}}));
  EXPECT_EQ(c.Value(), 2);
  Histogram h = registry_->AddHistogram("h", "H", {}, {.buckets = {1}}).Labels();
  EXPECT_TRUE(h.ObserveWithExemplar(0.5, {{"trace_id", "t1"}}));
  EXPECT_EQ(h.Count(), 1u);
}

TEST_F(RegistryTest, RemoveClearAndChurnReuseSpace) {
  auto& f = registry_->AddCounter("churn", "C", {"id"});
  f.Labels("a").Inc();
  f.Labels("b").Inc();
  EXPECT_TRUE(f.Remove("a"));
  EXPECT_FALSE(f.Remove("a"));
  EXPECT_EQ(f.size(), 1u);
  EXPECT_EQ(f.Labels("a").Value(), 0);  // a fresh series
  f.Clear();
  EXPECT_EQ(f.size(), 0u);
  auto& unlabelled = registry_->AddCounter("single", "S");
  unlabelled.Labels().Inc(5);
  unlabelled.Clear();
  EXPECT_EQ(unlabelled.size(), 1u);
  EXPECT_EQ(unlabelled.Labels().Value(), 0);

  for (int i = 0; i < 1000; ++i) f.Labels(std::to_string(i)).Inc();
  for (int i = 0; i < 1000; ++i) f.Remove(std::to_string(i));
  const uint64_t used = heap_->usage().used_bytes;
  for (int i = 0; i < 1000000; ++i) {
    const std::string id = std::to_string(i);
    f.Labels(id).Inc();
    ASSERT_TRUE(f.Remove(id));
  }
  EXPECT_LE(heap_->usage().used_bytes, used + 64 * 1024);
  EXPECT_TRUE(shm::HeapAccess::segment(*heap_).Verify().ok());
}

TEST_F(RegistryTest, CardinalityLimitSendsExtraChildrenToOverflow) {
  auto& f = registry_->AddCounter("limited", "L", {"id"}, {.max_children = 3});
  for (int i = 0; i < 10; ++i) f.Labels(std::to_string(i)).Inc();
  EXPECT_EQ(f.size(), 4u);  // three children and the overflow child
  EXPECT_EQ(f.Labels(std::string(kOverflowLabelValue)).Value(), 7);
  EXPECT_EQ(f.Labels("0").Value(), 1);
}

TEST_F(RegistryTest, FullHeapDegradesToOverflowWithoutThrowing) {
  const std::string small = UniqueHeapName("small");
  Heap heap = Heap::Create(small, {.max_size = 256 * 1024, .initial_size = 64 * 1024});
  Registry registry(heap);
  auto& f = registry.AddCounter("many", "M", {"id"}, {.max_children = 1000000});
  for (int i = 0; i < 20000; ++i) f.Labels(std::to_string(i)).Inc();
  EXPECT_LT(f.size(), 20000u);
  EXPECT_GT(shm::HeapAccess::segment(heap).header().alloc_failures.load(), 0u);
  f.Labels("0").Inc();
  EXPECT_EQ(f.Labels("0").Value(), 2);
  Heap::Remove(small);
}

TEST_F(RegistryTest, WorkerForkedAfterRegistrationSharesSeriesAndRegistersAgain) {
  auto& f = registry_->AddCounter("shared", "S", {"who"});
  std::vector<pid_t> kids;
  for (int p = 0; p < 4; ++p) {
    kids.push_back(ForkChild([&] {
      // Registering the same definition after fork() returns the same family.
      Registry mine(*heap_);
      auto& g = mine.AddCounter("shared", "S", {"who"});
      for (int i = 0; i < 10000; ++i) g.Labels("worker").Inc();
      f.Labels("inherited").Inc();
      return 0;
    }));
  }
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  EXPECT_EQ(f.Labels("worker").Value(), 40000);
  EXPECT_EQ(f.Labels("inherited").Value(), 4);
}

TEST_F(RegistryTest, ConcurrentHistogramSnapshotsAreConsistentAndExact) {
  auto& f = registry_->AddHistogram("lat", "L", {"route"}, {.buckets = LinearBuckets(1, 1, 10)});
  constexpr int kProcs = 4;
  constexpr int kObservations = 250000;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(ForkChild([&, p] {
      Histogram h = f.Labels("/api");
      for (int i = 0; i < kObservations; ++i) h.Observe((i + p) % 12);
      // Labelled counters created concurrently by every process.
      Registry mine(*heap_);
      auto& c = mine.AddCounter("created", "C", {"k"});
      for (int i = 0; i < 200; ++i) c.Labels(std::to_string(i)).Inc();
      return 0;
    }));
  }
  // Read continuously while the writers run.
  const pid_t reader = ForkChild([&] {
    Histogram h = f.Labels("/api");
    uint64_t last_count = 0;
    for (int round = 0; round < 20000; ++round) {
      const uint64_t count = h.Count();
      if (count < last_count) return 1;  // counts never go down
      last_count = count;
      if (count == uint64_t{kProcs} * kObservations) break;
    }
    return 0;
  });
  for (pid_t k : kids) ASSERT_EQ(WaitChild(k), 0);
  EXPECT_EQ(WaitChild(reader), 0);
  Histogram h = f.Labels("/api");
  EXPECT_EQ(h.Count(), uint64_t{kProcs} * kObservations);
  double expected_sum = 0;
  for (int p = 0; p < kProcs; ++p) {
    for (int i = 0; i < kObservations; ++i) expected_sum += (i + p) % 12;
  }
  EXPECT_EQ(h.Sum(), expected_sum);
  auto& c = registry_->AddCounter("created", "C", {"k"});
  EXPECT_EQ(c.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(c.Labels(std::to_string(i)).Value(), kProcs);
}

TEST_F(RegistryTest, WriterKilledMidObservationDoesNotStallReaders) {
  auto& f = registry_->AddHistogram("lat", "L", {}, {.buckets = {1}});
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = ForkChild([&] {
    static int fd;
    fd = ready[1];
    internal::g_observe_hook = [] {
      (void)!write(fd, "x", 1);
      pause();  // stopped between the bucket add and the sum add
    };
    f.Labels().Observe(0.5);
    return 0;
  });
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), 128 + SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  Histogram h = f.Labels();
  EXPECT_EQ(h.Count(), 1u);  // the bucket add completed
  EXPECT_EQ(h.Sum(), 0.0);   // the sum add never happened
  h.Observe(0.25);
  EXPECT_EQ(h.Count(), 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  close(ready[0]);
  close(ready[1]);
}

TEST_F(RegistryTest, WorkerIdsStayStableAcrossRespawns) {
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  int ids[2];
  ASSERT_EQ(pipe(ids), 0);
  auto spawn = [&] {
    return ForkChild([&] {
      const uint32_t id = heap_->AttachWorker();
      (void)!write(ids[1], &id, sizeof id);
      char c;
      (void)!read(go[0], &c, 1);
      return 0;
    });
  };
  std::vector<pid_t> kids;
  std::vector<uint32_t> got;
  for (int i = 0; i < 4; ++i) {
    kids.push_back(spawn());
    uint32_t id;
    ASSERT_EQ(read(ids[0], &id, sizeof id), static_cast<ssize_t>(sizeof id));
    got.push_back(id);
  }
  EXPECT_EQ(got, (std::vector<uint32_t>{0, 1, 2, 3}));
  for (int round = 0; round < 5; ++round) {
    const int victim = round % 4;
    kill(kids[victim], SIGKILL);
    EXPECT_EQ(WaitChild(kids[victim]), 128 + SIGKILL);
    kids[victim] = spawn();
    uint32_t id;
    ASSERT_EQ(read(ids[0], &id, sizeof id), static_cast<ssize_t>(sizeof id));
    EXPECT_EQ(id, static_cast<uint32_t>(victim));
  }
  EXPECT_FALSE(heap_->worker_id().has_value());  // the parent never attached
  for (size_t i = 0; i < kids.size(); ++i) (void)!write(go[1], "x", 1);
  for (pid_t k : kids) EXPECT_EQ(WaitChild(k), 0);
  for (int fd : {go[0], go[1], ids[0], ids[1]}) close(fd);
}

// A registry with static storage duration, first created after some other static (here, its
// holder), is destroyed at exit after the library's own statics would have been: that must not
// touch freed memory. Runs the check in a fresh exec()ed process, where nothing has created a
// registry before.
TEST(RegistryLifetimeTest, StaticRegistryOutlivesTheLibrarysStatics) {
  const std::string name = UniqueHeapName("static");
  const pid_t child = fork();
  if (child == 0) {
    setenv("SHMETRICS_TEST_HEAP", name.c_str(), 1);
    execl("/proc/self/exe", "meters_test",
          "--gtest_filter=RegistryLifetimeChild.DISABLED_StaticRegistry",
          "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    _exit(127);
  }
  EXPECT_EQ(WaitChild(child), 0);  // a crash at exit shows as 128 + the signal
  try {
    Heap::Remove(name);
  } catch (const Error&) {
  }
}

// Runs only in the exec()ed child of the test above; returns through gtest's main, so static
// destructors run.
TEST(RegistryLifetimeChild, DISABLED_StaticRegistry) {
  static std::unique_ptr<Registry> registry;  // constructed before any library static
  const char* name = getenv("SHMETRICS_TEST_HEAP");
  ASSERT_NE(name, nullptr);
  registry = std::make_unique<Registry>(Heap::Create(name));
  registry->AddCounter("exits", "Clean exits").Labels().Inc();
  Heap::Remove(name);
}

}  // namespace
}  // namespace shmetrics
