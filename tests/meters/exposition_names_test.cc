// Registrations that could make an invalid exposition are refused, in one process and across
// processes: sample names two families would share, reserved const labels, names with ':'
// where a label name is needed, label names declared in another order, a worker attached to
// two heaps, unbounded names, and the per-worker and time-to-live gauge cases of a scrape.
// Whatever is accepted is judged by promtool and the python parsers.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collect/collector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/definition.h"
#include "registry/heap_records.h"
#include "shm/heap_access.h"
#include "shm/mutex_lock.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/exposition.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"
#include "util/parsers.h"
#include "util/subprocess.h"
#include "util/test_clock.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::ForkChild;
using ::shmetrics::testing::HavePromtool;
using ::shmetrics::testing::HavePythonClient;
using ::shmetrics::testing::PromtoolRejects;
using ::shmetrics::testing::PythonProblems;
using ::shmetrics::testing::TestClock;
using ::shmetrics::testing::UniqueHeapName;
using ::shmetrics::testing::WaitChild;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class ExpositionNamesTest : public testing::HeapTest {
 protected:
  void SetUp() override { CreateHeap("names"); }

  // Both parsers and promtool accept both expositions of the heap (when installed).
  void ExpectValidExposition() {
    if (!HavePromtool() || !HavePythonClient()) return;
    const std::string om = Expose(*heap_, ExpositionFormat::kOpenMetrics);
    const std::string text = Expose(*heap_, ExpositionFormat::kPrometheus);
    EXPECT_EQ(PythonProblems(om, /*openmetrics=*/true), "") << om;
    EXPECT_EQ(PythonProblems(text, /*openmetrics=*/false), "") << text;
    EXPECT_EQ(PromtoolRejects(text), "") << text;
  }
};

// A pair of registrations whose second must be refused: each registers one family.
struct Clash {
  const char* first_family;  // as the message names it
  std::function<void(Registry&)> first;
  const char* second_family;
  std::function<void(Registry&)> second;
  const char* sample;
};

std::vector<Clash> Clashes() {
  return {
      {"x", [](Registry& r) { r.AddCounter("x", "C"); }, "x_total",
       [](Registry& r) { r.AddGauge("x_total", "G"); }, "x_total"},
      {"x_total", [](Registry& r) { r.AddGauge("x_total", "G"); }, "x",
       [](Registry& r) { r.AddCounter("x", "C"); }, "x_total"},
      {"b", [](Registry& r) { r.AddInfo("b", "I", {"v"}); }, "b_info",
       [](Registry& r) { r.AddGauge("b_info", "G"); }, "b_info"},
      {"h", [](Registry& r) { r.AddHistogram("h", "H", {}, {.buckets = {1}}); }, "h_count",
       [](Registry& r) { r.AddGauge("h_count", "G"); }, "h_count"},
      {"h", [](Registry& r) { r.AddHistogram("h", "H", {}, {.buckets = {1}}); }, "h_bucket",
       [](Registry& r) { r.AddCounter("h_bucket", "C"); }, "h_bucket"},
      {"c", [](Registry& r) { r.AddCounter("c", "C"); }, "c_created",
       [](Registry& r) { r.AddGauge("c_created", "G"); }, "c_created"},
      {"tm_seconds", [](Registry& r) { r.AddTimer("tm", "T"); }, "tm_seconds_count",
       [](Registry& r) { r.AddGauge("tm_seconds_count", "G"); }, "tm_seconds_count"},
      {"tm_seconds", [](Registry& r) { r.AddTimer("tm", "T"); }, "tm_seconds_max",
       [](Registry& r) { r.AddGauge("tm_seconds_max", "G"); }, "tm_seconds_max"},
      {"s", [](Registry& r) { r.AddSummary("s", "S"); }, "s_sum",
       [](Registry& r) { r.AddCounter("s_sum", "C"); }, "s_sum"},
  };
}

TEST_F(ExpositionNamesTest, SampleNameClashesAreRefusedInOneProcess) {
  for (const Clash& c : Clashes()) {
    CreateHeap("clash1");
    c.first(*registry_);
    ErrorCode code = ErrorCode::kOk;
    EXPECT_THAT(ErrorOf([&] { c.second(*registry_); }, &code),
                AllOf(HasSubstr(absl::StrCat("\"", c.first_family, "\"")),
                      HasSubstr(absl::StrCat("\"", c.second_family, "\"")),
                      HasSubstr(absl::StrCat("samples named \"", c.sample, "\""))))
        << c.first_family << " then " << c.second_family;
    EXPECT_EQ(code, ErrorCode::kAlreadyExists);
    ExpectValidExposition();
    TearDown();
  }
}

TEST_F(ExpositionNamesTest, SampleNameClashesAreRefusedAcrossProcesses) {
  for (const Clash& c : Clashes()) {
    CreateHeap("clash2");
    const std::string name = name_;
    const pid_t child = ForkChild([&] {
      Registry r(Heap::Open(name), {.read_environment = false});
      c.first(r);
      return 0;
    });
    ASSERT_EQ(WaitChild(child), 0);
    ErrorCode code = ErrorCode::kOk;
    EXPECT_THAT(ErrorOf([&] { c.second(*registry_); }, &code),
                AllOf(HasSubstr(c.first_family), HasSubstr(c.sample)));
    EXPECT_EQ(code, ErrorCode::kAlreadyExists);
    ExpectValidExposition();
    TearDown();
  }
}

TEST_F(ExpositionNamesTest, TheCollectorsOwnNamesAreRefused) {
  // Every family the collector writes itself, under each name a user would try.
  for (const expose::FamilyInfo& f : collect::CollectorFamilies()) {
    const std::string n(f.name);
    EXPECT_THAT(ErrorOf([&] { registry_->AddGauge(n, "G"); }),
                AllOf(HasSubstr("would clash"), HasSubstr("collector")))
        << n;
    EXPECT_THAT(ErrorOf([&] { registry_->AddCounter(n, "C"); }), HasSubstr("would clash")) << n;
  }
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("process_start_time_seconds", "G"); }),
              HasSubstr("samples named \"process_start_time_seconds\""));
  EXPECT_THAT(
      ErrorOf([&] { registry_->AddGauge("shmetrics_heap_used", "G", {}, {.unit = "bytes"}); }),
      HasSubstr("\"shmetrics_heap_used_bytes\""));
  EXPECT_THAT(ErrorOf([&] { registry_->AddGauge("shmetrics_lock_recoveries_total", "G"); }),
              HasSubstr("would clash"));
  // A prefix that makes one of them is refused too.
  Registry process(*heap_, {.prefix = "process", .read_environment = false});
  EXPECT_THAT(ErrorOf([&] { process.AddGauge("open_fds", "G"); }), HasSubstr("would clash"));
  // Names that merely start alike are fine.
  registry_->AddGauge("process_queue_depth", "G");
  heap_->AttachWorker();
  ExpectValidExposition();
  heap_->DetachWorker();
}

TEST_F(ExpositionNamesTest, VerifyFlagsAHeapThatHoldsAClashingPair) {
  registry_->AddCounter("x", "C");
  ASSERT_TRUE(collect::VerifyMetrics(shm::HeapAccess::segment(*heap_)).ok());
  // A heap written without the check (as by an older version): the records of gauge x_total,
  // made by the registry's own steps but the name check.
  internal::FamilySpec spec{.type = MetricType::kGauge, .name = "x_total", .help = "G"};
  const meters::Definition def = registry::MakeDefinition(spec, "", {});
  shm::Segment& seg = shm::HeapAccess::segment(*heap_);
  {
    shm::MutexLock lock(seg.lock());
    registry::CreateFamilyRecords(seg, seg.header().root_table.load(), def, 10);
  }
  const absl::Status s = collect::VerifyMetrics(seg);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("\"x\""), HasSubstr("\"x_total\""), HasSubstr("clashing")));
  // And inspect --verify says so (the tool calls VerifyMetrics). A scrape of such a heap leaves
  // the later family out rather than write x_total twice.
  registry_->AddCounter("x", "C").Labels().Inc(4);
  ::testing::internal::CaptureStderr();
  const std::string om = Expose(*heap_, ExpositionFormat::kOpenMetrics);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              AllOf(HasSubstr("\"x_total\""), HasSubstr("left out")));
  EXPECT_THAT(om, HasSubstr("\nx_total 4\n"));
  EXPECT_THAT(om, Not(HasSubstr("# TYPE x_total gauge")));
  ExpectValidExposition();
}

TEST_F(ExpositionNamesTest, ReservedConstLabelsAreRefused) {
  for (const char* l : {"le", "quantile", "worker_id"}) {
    EXPECT_THAT(ErrorOf([&] {
                  Registry r(*heap_, {.const_labels = {{l, "x"}}, .read_environment = false});
                }),
                AllOf(HasSubstr(absl::StrCat("const label \"", l, "\" is reserved"))));
  }
  setenv("SHMETRICS_COMMON_LABELS", "le=x,quantile=y,worker_id=z", 1);
  ErrorCode code = ErrorCode::kOk;
  EXPECT_THAT(ErrorOf([&] { Registry r(*heap_); }, &code), HasSubstr("is reserved"));
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  // A name given twice is an error, not first-wins.
  setenv("SHMETRICS_COMMON_LABELS", "app=a,app=b", 1);
  EXPECT_THAT(ErrorOf([&] { Registry r(*heap_); }), HasSubstr("\"app\" is given twice"));
  setenv("SHMETRICS_COMMON_LABELS", "app=a\\b", 1);
  EXPECT_THAT(ErrorOf([&] { Registry r(*heap_); }), HasSubstr("backslash"));
  unsetenv("SHMETRICS_COMMON_LABELS");
  // A const label that a family declares, or that names a stateset.
  Registry r(*heap_, {.const_labels = {{"mode", "m"}}, .read_environment = false});
  EXPECT_THAT(ErrorOf([&] { r.AddGauge("g", "G", {"mode"}); }), HasSubstr("also a const label"));
  EXPECT_THAT(ErrorOf([&] {
                r.AddStateSet("mode", "S", {}, {"on", "off"});
              }),
              HasSubstr("named like a const label"));
}

TEST_F(ExpositionNamesTest, CommonLabelValuesMayHoldEqualsCommasAndBackslashes) {
  setenv("SHMETRICS_COMMON_LABELS", " app=a=b , list=x\\,y, path=c:\\\\d ", 1);
  Registry r(*heap_);
  unsetenv("SHMETRICS_COMMON_LABELS");
  EXPECT_EQ(r.const_labels(), (std::map<std::string, std::string>{
                                  {"app", "a=b"}, {"list", "x,y"}, {"path", "c:\\d"}}));
  r.AddCounter("jobs", "J").Labels().Inc();
  const std::string om = Expose(*heap_);
  EXPECT_THAT(om, HasSubstr("jobs_total{app=\"a=b\",list=\"x,y\",path=\"c:\\\\d\"} 1"));
  ExpectValidExposition();
}

TEST_F(ExpositionNamesTest, ColonsAreForMetricNamesNotLabelNames) {
  EXPECT_THAT(ErrorOf([&] {
                registry_->AddStateSet("ns:st", "S", {}, {"a", "b"});
              }),
              HasSubstr("must also be a valid label name"));
  Registry ns(*heap_, {.prefix = "ns:sub", .read_environment = false});
  EXPECT_THAT(ErrorOf([&] {
                ns.AddStateSet("st", "S", {}, {"a", "b"});
              }),
              HasSubstr("\"ns:sub_st\" must also be a valid label name"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddCounter("c", "C", {"a:b"}); }),
              HasSubstr("invalid label name"));
  // Metric names may hold a colon, from the prefix or the name.
  ns.AddCounter("rule:rate", "C", {"a"}).Labels("1").Inc();
  ns.AddHistogram("lat", "L", {}, {.buckets = {1}}).Labels().Observe(0.5);
  registry_->AddStateSet("st", "S", {}, {"a", "b"}).Labels().Set("a", true);
  EXPECT_THAT(Expose(*heap_), HasSubstr("ns:sub_rule:rate_total{a=\"1\"} 1"));
  // A name starting with "__" through the prefix is refused like one without it.
  Registry underscore(*heap_, {.prefix = "_", .read_environment = false});
  EXPECT_THAT(ErrorOf([&] { underscore.AddGauge("g", "G"); }), HasSubstr("is reserved"));
  ExpectValidExposition();
}

TEST_F(ExpositionNamesTest, LabelNamesInAnotherOrderAreTheSameFamilyInEveryProcess) {
  auto& ab = registry_->AddCounter("req", "R", {"a", "b"});
  auto& ba = registry_->AddCounter("req", "R", {"b", "a"});
  EXPECT_NE(&ab, &ba);
  EXPECT_EQ(&ab, &registry_->AddCounter("req", "R", {"a", "b"}));
  EXPECT_EQ(&ba, &registry_->AddCounter("req", "R", {"b", "a"}));
  EXPECT_EQ(ba.label_names(), (LabelNames{"b", "a"}));
  ab.Labels("A", "B").Inc();
  ba.Labels("B", "A").Inc();  // the positional values follow this call's order
  EXPECT_EQ(ab.Labels("A", "B").Value(), 2);
  EXPECT_EQ(ab.size(), 1u);
  const std::string name = name_;
  const pid_t child = ForkChild([&] {
    Registry other(Heap::Open(name), {.read_environment = false});
    auto& f = other.AddCounter("req", "R", {"b", "a"});
    f.Labels("B", "A").Inc();
    return f.Labels("B", "A").Value() == 3 ? 0 : 1;
  });
  EXPECT_EQ(WaitChild(child), 0);
  EXPECT_EQ(ab.Labels("A", "B").Value(), 3);
  // A different label set is refused, with what differs.
  EXPECT_THAT(ErrorOf([&] {
                registry_->AddCounter("req", "R", {"a", "c"});
              }),
              HasSubstr("they differ in label names [a, b] vs [a, c]"));
  Registry other(*heap_, {.read_environment = false});
  EXPECT_THAT(ErrorOf([&] {
                other.AddGauge("req", "R", {"b", "a"});
              }),
              AllOf(HasSubstr("in the heap"), HasSubstr("they differ in type counter vs gauge")));
  EXPECT_THAT(ErrorOf([&] { other.AddCounter("req", "R", {"a"}); }),
              HasSubstr("they differ in label names [a, b] vs [a]"));
  ExpectValidExposition();
}

TEST_F(ExpositionNamesTest, AWorkerOfOneHeapCannotAttachToAnother) {
  const std::string a = name_;
  const std::string b = UniqueHeapName("names-b");
  Heap heap_b = Heap::Create(b);
  const pid_t child = ForkChild([&] {
    Heap mine = Heap::Open(a);
    const uint32_t id = mine.AttachWorker();
    // The same heap through another Heap object is the same attachment.
    if (Heap::Open(a).AttachWorker() != id) return 1;
    if (Heap::Open(a).worker_id() != id) return 6;
    if (Heap::Open(b).worker_id().has_value()) return 7;
    try {
      Heap::Open(b).AttachWorker();
      return 2;
    } catch (const Error& e) {
      const std::string m = e.what();
      if (e.code() != ErrorCode::kFailedPrecondition) return 3;
      if (m.find(a) == std::string::npos || m.find(b) == std::string::npos) return 4;
    }
    // After detaching, the other heap may be attached.
    mine.DetachWorker();
    return Heap::Open(b).AttachWorker() == 0 ? 0 : 5;
  });
  EXPECT_EQ(WaitChild(child), 0);
  Heap::Remove(b);
}

TEST_F(ExpositionNamesTest, FiltersSelectTheCollectorsOwnFamilies) {
  registry_->AddGauge("g", "G").Labels().Set(1);
  const std::string om = Expose(*heap_);
  EXPECT_THAT(om, HasSubstr("process_open_fds{worker_id=\"master\"}"));
  auto scrape = [&](std::vector<std::string> names) {
    std::string out;
    auto enc = expose::MakeEncoder(expose::Format::kOpenMetrics, &out);
    EXPECT_TRUE(
        collect::Collect(shm::HeapAccess::segment(*heap_), *enc, {.names = std::move(names)}).ok());
    enc->Finish();
    return out;
  };
  const std::string own =
      scrape({"shmetrics_heap_used_bytes", "process_open_fds", "shmetrics_lock_recoveries_total"});
  EXPECT_THAT(own, AllOf(HasSubstr("shmetrics_heap_used_bytes "), HasSubstr("process_open_fds{"),
                         HasSubstr("shmetrics_lock_recoveries_total "),
                         Not(HasSubstr("shmetrics_heap_max_bytes")), Not(HasSubstr("\ng ")),
                         Not(HasSubstr("process_max_fds"))));
  EXPECT_THAT(scrape({"g"}), AllOf(HasSubstr("\ng 1"), Not(HasSubstr("shmetrics_"))));
}

TEST_F(ExpositionNamesTest, ExpiredGaugesDisappearAndRestartFromZero) {
  using std::chrono::milliseconds;
  TestClock clock;  // set before the fork: the child's stamps read it too
  auto& sum = registry_->AddGauge("workers_sum", "S", {},
                                  {.mode = GaugeMode::kSum, .ttl = milliseconds(5)});
  auto& shared = registry_->AddGauge("shared", "S", {}, {.ttl = milliseconds(5)});
  auto& plain = registry_->AddGauge("plain_sum", "S", {}, {.mode = GaugeMode::kSum});
  const std::string name = name_;
  const pid_t child = ForkChild([&] {
    Heap h = Heap::Open(name);
    h.AttachWorker();
    Registry r(h, {.read_environment = false});
    r.AddGauge("workers_sum", "S", {}, {.mode = GaugeMode::kSum, .ttl = milliseconds(5)})
        .Labels()
        .Set(4);
    return 0;
  });
  ASSERT_EQ(WaitChild(child), 0);
  shared.Labels().Set(5);
  EXPECT_THAT(Expose(*heap_), AllOf(HasSubstr("workers_sum 4"), HasSubstr("shared 5")));
  clock.Advance(milliseconds(5) + std::chrono::nanoseconds(1));  // just past the ttl
  const std::string expired = Expose(*heap_);
  EXPECT_THAT(expired, AllOf(Not(HasSubstr("\nworkers_sum ")), Not(HasSubstr("\nshared "))));
  EXPECT_THAT(expired, HasSubstr("\nplain_sum 0"));  // no ttl: a sum of no values is 0
  (void)sum;
  (void)plain;
  // Inc on an expired value starts from 0.
  Gauge g = shared.Labels();
  g.Inc(1);
  EXPECT_EQ(g.Value(), 1);
  EXPECT_THAT(Expose(*heap_), HasSubstr("shared 1"));
  g.Inc(2);
  EXPECT_EQ(g.Value(), 3);
  ExpectValidExposition();
}

TEST_F(ExpositionNamesTest, NamesAreBoundedAndEmptyHelpIsFine) {
  const std::string huge(1 << 20, 'a');
  EXPECT_THAT(ErrorOf([&] { registry_->AddCounter(huge, "C"); }), HasSubstr("the limit is 1024"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddCounter(std::string(1025, 'a'), "C"); }),
              HasSubstr("the limit is 1024"));
  registry_->AddGauge(std::string(1024, 'b'), "G").Labels().Set(1);
  Registry prefixed(*heap_, {.prefix = "p", .read_environment = false});
  EXPECT_THAT(ErrorOf([&] { prefixed.AddGauge(std::string(1023, 'c'), "G"); }),
              HasSubstr("prefix and unit included"));
  EXPECT_THAT(ErrorOf([&] { registry_->AddCounter("c", "C", {std::string(257, 'l')}); }),
              HasSubstr("the limit is 256"));
  EXPECT_THAT(ErrorOf([&] {
                Registry r(*heap_, {.const_labels = {{huge, "v"}}, .read_environment = false});
              }),
              HasSubstr("the limit is 256"));
  registry_->AddCounter("c", "C", {std::string(256, 'l')}).Labels("v").Inc();
  registry_->AddCounter("no_help", "").Labels().Inc();
  EXPECT_THAT(Expose(*heap_), HasSubstr("# TYPE no_help counter\nno_help_total 1"));
  ExpectValidExposition();
}

}  // namespace
}  // namespace shmetrics
