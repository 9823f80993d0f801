// Every public entry point given bad input returns false or throws shmetrics::Error with a clear
// message (the contract documented in the headers), and what was recorded before is unchanged:
// each test compares the heap's exposition before and after the bad calls.
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "collect/collector.h"
#include "expose/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::UniqueHeapName;
using ::testing::HasSubstr;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

class BadInputTest : public testing::HeapTest {
 protected:
  void SetUp() override {
    CreateHeap("bad");
    // Something recorded in every type, which no bad call may change.
    auto& c = registry_->AddCounter("requests", "Requests", {"method", "code"});
    c.Labels("GET", "200").Inc(5);
    c.Labels("GET", "200").IncWithExemplar(1, {{"trace_id", "abc"}});
    registry_->AddGauge("temperature", "T", {"room"}).Labels("kitchen").Set(21.5);
    registry_->AddHistogram("latency", "L", {"route"}, {.buckets = {0.1, 1}})
        .Labels("/")
        .Observe(0.5);
    registry_->AddSummary("sizes", "S").Labels().Observe(3);
    registry_->AddStateSet("mode", "M", {}, {"on", "off"}).Labels().SetOnly("on");
    registry_->AddInfo("build", "B", {"version"}).Labels("1.0");
    before_ = Exposition();
  }
  // The metrics of the heap in OpenMetrics text, without the self and process metrics (heap
  // usage and CPU time move on their own).
  std::string Exposition() const {
    std::string out;
    auto enc = expose::MakeEncoder(expose::Format::kOpenMetrics, &out);
    EXPECT_TRUE(collect::Collect(shm::HeapAccess::segment(*heap_), *enc,
                                 {.self_metrics = false, .process_metrics = false})
                    .ok());
    enc->Finish();
    return out;
  }

  // Runs f, which must throw Error with `code` and a message containing `what`.
  static void ExpectError(const std::function<void()>& f, ErrorCode code, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << "no error; expected " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(what));
    }
  }
  static void ExpectInvalid(const std::function<void()>& f, const std::string& what) {
    ExpectError(f, ErrorCode::kInvalidArgument, what);
  }

  std::string before_;
};

TEST_F(BadInputTest, HeapNamesThatEscapeOrAreMalformed) {
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../etc/passwd", "a/b", "/abs", "a b", "a\nb",
                                std::string(201, 'x'), std::string("nul\0x", 5)}) {
    ExpectInvalid([&] { Heap::Create(bad); }, "invalid heap name");
    ExpectInvalid([&] { Heap::OpenOrCreate(bad); }, "invalid heap name");
    ExpectInvalid([&] { Heap::Open(bad); }, "invalid heap name");
    ExpectInvalid([&] { Heap::Remove(bad); }, "invalid heap name");
  }
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/etc"));
  EXPECT_EQ(Exposition(), before_);
}

TEST_F(BadInputTest, AbsurdHeapOptions) {
  const std::string other = UniqueHeapName("opts");
  ExpectInvalid([&] { Heap::Create(other, {.max_size = 0}); }, "max_size 0 is out of range");
  ExpectInvalid([&] { Heap::Create(other, {.max_size = uint64_t{1} << 50}); }, "out of range");
  ExpectInvalid([&] { Heap::Create(other, {.max_workers = 0}); }, "max_workers 0");
  ExpectInvalid([&] { Heap::Create(other, {.max_workers = 1 << 20}); }, "max_workers");
  EXPECT_THROW(Heap::Open(other), Error);  // nothing was left behind
  // An existing heap is not replaced.
  ExpectError([&] { Heap::Create(name_); }, ErrorCode::kAlreadyExists, "already exists");
  EXPECT_EQ(Exposition(), before_);
}

TEST_F(BadInputTest, HeapFilesThatAreNotToBeTrusted) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("shmetrics_bad_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/heap";
  {
    Heap h = Heap::CreateAtPath(path);
    Registry(h).AddCounter("on_disk", "D").Labels().Inc(7);
  }
  ExpectError([&] { Heap::OpenAtPath(dir + "/missing"); }, ErrorCode::kNotFound, "does not exist");
  ExpectError([&] { Heap::OpenAtPath(dir); }, ErrorCode::kPermissionDenied, "Is a directory");

  // Loose permissions: group or others may write it.
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  ExpectError([&] { Heap::OpenAtPath(path); }, ErrorCode::kPermissionDenied,
              "has mode 0666: group or others may write it");
  ASSERT_EQ(chmod(path.c_str(), 0620), 0);
  ExpectError([&] { Heap::OpenAtPath(path); }, ErrorCode::kPermissionDenied, "0620");
  EXPECT_NO_THROW(Heap::OpenAtPath(path, {.allow_shared_write = true}));
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);

  // Owned by another user. Only root can give a file away; CI runs the tests as root.
  if (geteuid() == 0) {
    ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
    ExpectError([&] { Heap::OpenAtPath(path); }, ErrorCode::kPermissionDenied,
                "is owned by uid 65534, not by this user (uid 0)");
    ExpectError([&] { Heap::OpenAtPath(path, {.read_only = true}); }, ErrorCode::kPermissionDenied,
                "owned by uid 65534");
    Heap theirs = Heap::OpenAtPath(path, {.read_only = true, .allow_other_owner = true});
    EXPECT_THAT(Expose(theirs), HasSubstr("on_disk_total 7"));
    ASSERT_EQ(chown(path.c_str(), 0, 0), 0);
  }

  // Not a heap at all, or a heap cut short.
  const std::string garbage = dir + "/garbage";
  {
    std::FILE* f = std::fopen(garbage.c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string junk(8192, 'j');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  ASSERT_EQ(chmod(garbage.c_str(), 0600), 0);
  ExpectError([&] { Heap::OpenAtPath(garbage); }, ErrorCode::kDataLoss, "is not a shmetrics heap");
  ASSERT_EQ(truncate(path.c_str(), 5000), 0);
  ExpectError([&] { Heap::OpenAtPath(path); }, ErrorCode::kDataLoss, "truncated");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(Exposition(), before_);
}

TEST_F(BadInputTest, InvalidMetricAndLabelNames) {
  Registry& r = *registry_;
  for (const std::string& bad :
       std::vector<std::string>{"", "1abc", "a-b", "a b", "é", "a.b", "a\n", "a{b}"}) {
    ExpectInvalid([&] { r.AddCounter(bad, "h"); }, "invalid metric name");
    ExpectInvalid([&] { r.AddGauge(bad, "h"); }, "invalid metric name");
    ExpectInvalid([&] { r.AddHistogram(bad, "h"); }, "invalid metric name");
    ExpectInvalid([&] { r.AddGauge("g", "h", {bad}); }, "invalid label name");
    ExpectInvalid([&] { Registry(*heap_, {.prefix = bad.empty() ? "-" : bad}); },
                  "invalid registry prefix");
    ExpectInvalid([&] { Registry(*heap_, {.const_labels = {{bad, "v"}}}); }, "invalid label name");
  }
  ExpectInvalid([&] { r.AddCounter("_total", "h"); }, "metric name is empty");
  ExpectInvalid([&] { r.AddCounter("__reserved", "h"); }, "reserved");
  ExpectInvalid([&] { r.AddCounter("c", "h", {"__name__"}); }, "reserved");
  ExpectInvalid([&] { r.AddCounter("c", "h", {"a", "a"}); }, "appears twice");
  LabelNames many;
  for (int i = 0; i < 33; ++i) many.push_back("l" + std::to_string(i));
  ExpectInvalid([&] { r.AddCounter("c", "h", many); }, "33 labels; the limit is 32");
  ExpectInvalid([&] { r.AddCounter("c", "h", {}, {.unit = "per cent"}); }, "invalid unit");
  ExpectInvalid([&] { r.AddCounter("c", std::string(kMaxHelpBytes + 1, 'h')); }, "help text");
  ExpectInvalid([&] { r.AddCounter("c", "\xc3\x28"); }, "must be UTF-8");
  ExpectInvalid([&] { Registry(*heap_, {.const_labels = {{"ok", "\xff"}}}); }, "not valid UTF-8");
  setenv("SHMETRICS_COMMON_LABELS", "app=shop,oops", 1);
  ExpectInvalid([&] { Registry reg(*heap_); }, "SHMETRICS_COMMON_LABELS");
  unsetenv("SHMETRICS_COMMON_LABELS");
  // A name already taken by another definition.
  ExpectError(
      [&] {
        r.AddGauge("requests", "h", {"method", "code"});
      },
      ErrorCode::kAlreadyExists, "already registered");
  ExpectError([&] { r.AddCounter("requests", "h", {"method"}); }, ErrorCode::kAlreadyExists,
              "already registered");
  EXPECT_EQ(Exposition(), before_);
}

TEST_F(BadInputTest, AbsurdBucketLists) {
  Registry& r = *registry_;
  auto hist = [&](std::vector<double> b) { r.AddHistogram("h", "h", {}, {.buckets = b}); };
  ExpectInvalid([&] { hist({kInf}); }, "needs 1 to 1024 finite buckets; got 0");
  ExpectInvalid([&] { hist({1, kNaN}); }, "finite and strictly increasing");
  ExpectInvalid([&] { hist({kNaN}); }, "finite and strictly increasing");
  ExpectInvalid([&] { hist({-kInf, 1}); }, "finite and strictly increasing");
  ExpectInvalid([&] { hist({2, 1}); }, "bucket 1 is 1 after 2");
  ExpectInvalid([&] { hist({1, 1}); }, "strictly increasing");
  ExpectInvalid([&] { hist(std::vector<double>(100000, 1)); }, "got 100000");
  std::vector<double> too_many(kMaxBuckets + 1);
  for (size_t i = 0; i < too_many.size(); ++i) too_many[i] = static_cast<double>(i);
  ExpectInvalid([&] { hist(too_many); }, "needs 1 to 1024 finite buckets; got 1025");
  ExpectInvalid([&] { LinearBuckets(0, 0, 3); }, "finite width > 0");
  ExpectInvalid([&] { LinearBuckets(0, 1, 0); }, "count >= 1");
  ExpectInvalid([&] { LinearBuckets(0, kNaN, 3); }, "finite width");
  ExpectInvalid([&] { LinearBuckets(0, 1, std::numeric_limits<int>::max()); }, "at most 1024");
  ExpectInvalid([&] { ExponentialBuckets(0, 2, 3); }, "start > 0");
  ExpectInvalid([&] { ExponentialBuckets(1, 1, 3); }, "factor > 1");
  ExpectInvalid([&] { ExponentialBuckets(1, 2, -5); }, "count >= 1");
  ExpectInvalid([&] { ExponentialBuckets(1, 2, 1 << 30); }, "at most 1024");
  // Buckets that overflow to infinity are not finite.
  ExpectInvalid([&] { hist(ExponentialBuckets(1e300, 1e10, 3)); }, "finite");
  // A histogram registered again with other buckets conflicts.
  ExpectError(
      [&] {
        r.AddHistogram("latency", "L", {"route"}, {.buckets = {0.1, 2}});
      },
      ErrorCode::kAlreadyExists, "buckets [0.1, 1]");
  EXPECT_EQ(Exposition(), before_);
}

TEST_F(BadInputTest, WrongLabelCountsAndValues) {
  auto& c = registry_->AddCounter("requests", "Requests", {"method", "code"});
  ExpectInvalid([&] { c.Labels(); }, "has 2 label names [method, code]; got 0 values");
  ExpectInvalid([&] { c.Labels("GET"); }, "got 1 values");
  ExpectInvalid([&] { c.Labels("GET", "200", "extra"); }, "got 3 values");
  ExpectInvalid([&] { c.Labels({{"method", "GET"}}); }, "got 1 labels");
  ExpectInvalid([&] { c.Labels({{"method", "GET"}, {"method", "PUT"}}); }, "given twice");
  ExpectInvalid([&] { c.Labels({{"method", "GET"}, {"status", "200"}}); }, "no label \"status\"");
  ExpectInvalid([&] { c.Remove("GET"); }, "got 1 values");
  const std::string one_mb(1 << 20, 'v');
  ExpectInvalid([&] { c.Labels("GET", one_mb); }, "is 1048576 bytes; the limit is 4096");
  ExpectInvalid([&] { c.Labels({{"code", one_mb}, {"method", "GET"}}); }, "1048576 bytes");
  ExpectInvalid([&] { c.Labels("GET", std::string(kMaxLabelValueBytes + 1, 'v')); },
                "the limit is 4096");
  ExpectInvalid([&] { c.Labels("\xed\xa0\x80", "200"); }, "not valid UTF-8");  // a surrogate
  ExpectInvalid([&] { c.Labels("GET", std::string("a\xff", 2)); }, "not valid UTF-8");
  // Gauges, histograms and every other family check the same way.
  auto& g = registry_->AddGauge("temperature", "T", {"room"});
  ExpectInvalid([&] { g.Labels("a", "b"); }, "got 2 values");
  ExpectInvalid([&] { g.Labels(one_mb); }, "1048576 bytes");
  auto& h = registry_->AddHistogram("latency", "L", {"route"}, {.buckets = {0.1, 1}});
  ExpectInvalid([&] { h.Labels(); }, "got 0 values");
  EXPECT_EQ(Exposition(), before_);

  // Empty values and values at the limit are valid: they create series.
  c.Labels("", "").Inc();
  c.Labels("GET", std::string(kMaxLabelValueBytes, 'v')).Inc();
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.Labels("GET", "200").Value(), 6);
}

TEST_F(BadInputTest, UpdatesRejectInvalidValuesAndChangeNothing) {
  Counter c =
      registry_->AddCounter("requests", "Requests", {"method", "code"}).Labels("GET", "200");
  EXPECT_FALSE(c.Inc(-1));
  EXPECT_FALSE(c.Inc(int64_t{-5}));
  EXPECT_FALSE(c.Inc(-0.5));
  EXPECT_FALSE(c.Inc(kNaN));
  EXPECT_FALSE(c.Inc(-kNaN));
  EXPECT_FALSE(c.Inc(kInf));
  EXPECT_FALSE(c.Inc(-kInf));
  EXPECT_FALSE(c.IncWithExemplar(kNaN, {{"trace_id", "x"}}));
  EXPECT_FALSE(c.IncWithExemplar(-1, {{"trace_id", "x"}}));
  Histogram h =
      registry_->AddHistogram("latency", "L", {"route"}, {.buckets = {0.1, 1}}).Labels("/");
  EXPECT_FALSE(h.Observe(kNaN));
  EXPECT_FALSE(h.ObserveWithExemplar(kNaN, {{"trace_id", "x"}}));
  Summary s = registry_->AddSummary("sizes", "S").Labels();
  EXPECT_FALSE(s.Observe(kNaN));
  StateSet st = registry_->AddStateSet("mode", "M", {}, {"on", "off"}).Labels();
  EXPECT_FALSE(st.Set("unknown", true));
  EXPECT_FALSE(st.SetOnly(""));
  EXPECT_FALSE(st.SetOnly(std::string(1 << 20, 's')));
  EXPECT_EQ(Exposition(), before_);

  // Exemplars OpenMetrics does not allow are dropped; the increment itself still counts.
  const std::string after_valid_inc = [&] {
    EXPECT_TRUE(c.IncWithExemplar(1, {{"trace_id", "abc"}}));
    return Exposition();
  }();
  EXPECT_TRUE(c.IncWithExemplar(0, {{"trace_id", std::string(200, 'x')}}));  // over 128 chars
  EXPECT_TRUE(c.IncWithExemplar(0, {{"1bad", "x"}}));                        // invalid name
  EXPECT_TRUE(c.IncWithExemplar(0, {{"trace_id", "\xff"}}));                 // not UTF-8
  EXPECT_TRUE(c.IncWithExemplar(0, {{"trace_id", std::string(1 << 20, 'x')}}));
  EXPECT_EQ(Exposition(), after_valid_inc);
}

TEST_F(BadInputTest, ReadOnlyHeapRefusesWrites) {
  Heap ro = Heap::Open(name_, {.read_only = true});
  Registry r(ro);
  ExpectError([&] { r.AddCounter("new_family", "h"); }, ErrorCode::kFailedPrecondition,
              "read-only");
  ExpectError([&] { ro.AttachWorker(); }, ErrorCode::kFailedPrecondition, "read-only");
  EXPECT_EQ(Exposition(), before_);
}

TEST_F(BadInputTest, ReadOnlyHeapRegistersFamiliesItAlreadyHolds) {
  Registry writer(Heap::Open(name_));
  writer.AddCounter("seen", "h", {"k"}).Labels("a").Inc(3);
  Registry reader(Heap::Open(name_, {.read_only = true}));
  auto& seen = reader.AddCounter("seen", "h", {"k"});
  EXPECT_EQ(seen.Labels("a").Value(), 3);
  EXPECT_EQ(seen.Labels("b").Value(), 0);  // a new child of a read-only heap goes nowhere
  EXPECT_EQ(seen.size(), 1u);
}

}  // namespace
}  // namespace shmetrics
