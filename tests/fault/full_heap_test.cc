// A full heap: new children degrade to the overflow path without an exception, counted in the
// self-metrics; existing series keep counting; the collector and the HTTP endpoint keep working.
#include <unistd.h>

#include <string>

#include "collect/collector.h"
#include "fault/snapshot_helpers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shm/heap_access.h"
#include "shm/segment.h"
#include "shmetrics/error.h"
#include "shmetrics/http_exposer.h"
#include "shmetrics/registry.h"
#include "util/subprocess.h"

namespace shmetrics {
namespace {

using ::shmetrics::testing::Shell;
using ::shmetrics::testing::Snapshot;
using ::shmetrics::testing::SnapshotEncoder;
using ::shmetrics::testing::UniqueHeapName;

TEST(FullHeapTest, UpdatesDegradeToOverflowAndEverythingKeepsWorking) {
  unsetenv("SHMETRICS_COMMON_LABELS");
  const std::string name = UniqueHeapName("full");
  {
    Heap heap = Heap::Create(name, {.max_size = 256 * 1024, .initial_size = 64 * 1024});
    Registry registry(heap);
    auto& users = registry.AddCounter("users", "Per user", {"user"}, {.max_children = 1000000});
    auto& pages = registry.AddCounter("pages", "Per page", {"page"}, {.max_children = 1000000});
    auto& latency = registry.AddHistogram("latency", "Latency", {"route"});
    Counter kept = users.Labels("kept");
    kept.Inc();
    Histogram route = latency.Labels("/");
    // The overflow child of `users` exists before the heap fills (an earlier child limit, say);
    // those of `pages` and `latency` are created in the full heap, in the space their
    // registration set aside.
    (void)users.Labels(std::string(kOverflowLabelValue));

    // Fill the heap with children until allocations fail.
    int created = 0;
    while (shm::HeapAccess::segment(heap).header().alloc_failures.load() == 0 && created < 200000) {
      EXPECT_NO_THROW(pages.Labels("p" + std::to_string(created)).Inc());
      ++created;
    }
    ASSERT_GT(shm::HeapAccess::segment(heap).header().alloc_failures.load(), 0u)
        << created << " children";

    // New children: no exception, updates go to the overflow child.
    for (int i = 0; i < 5; ++i) {
      EXPECT_NO_THROW(users.Labels("new-" + std::to_string(i)).Inc());
      EXPECT_NO_THROW(pages.Labels("new-" + std::to_string(i)).Inc());
      EXPECT_NO_THROW(latency.Labels("/new-" + std::to_string(i)).Observe(0.1));
    }
    EXPECT_EQ(users.Labels(std::string(kOverflowLabelValue)).Value(), 5)
        << users.size() << " children; "
        << shm::HeapAccess::segment(heap).header().alloc_failures.load() << " failures";
    // The child whose creation first failed, then five more.
    EXPECT_EQ(pages.Labels(std::string(kOverflowLabelValue)).Value(), 6);
    EXPECT_EQ(latency.Labels(std::string(kOverflowLabelValue)).Count(), 5u);
    // Registering a new family is a setup step: it throws, clearly.
    try {
      registry.AddCounter("one_more_family_with_a_long_name", std::string(4000, 'h'));
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.what();
    }

    // Existing series keep counting.
    kept.Inc();
    route.Observe(0.2);
    EXPECT_EQ(kept.Value(), 2);
    EXPECT_EQ(pages.Labels("p0").Value(), 1);
    EXPECT_EQ(route.Count(), 1u);

    // The collector works and counts what happened in the self-metrics.
    Snapshot s;
    SnapshotEncoder enc(&s);
    ASSERT_TRUE(collect::Collect(shm::HeapAccess::segment(heap), enc).ok());
    EXPECT_THAT(s.problems, ::testing::IsEmpty());
    EXPECT_EQ(s.counters["users{user=kept,}"], 2);
    EXPECT_EQ(s.counters["users{user=__overflow__,}"], 5);
    EXPECT_EQ(s.counters["pages{page=__overflow__,}"], 6);
    EXPECT_GE(s.counters["shmetrics_series_overflow{family=users,}"], 5);
    EXPECT_GE(s.counters["shmetrics_series_overflow{family=pages,}"], 5);
    EXPECT_GE(s.counters["shmetrics_series_overflow{family=latency,}"], 5);
    EXPECT_GT(s.counters["shmetrics_heap_allocation_failures{}"], 0);
    EXPECT_TRUE(shm::HeapAccess::segment(heap).Verify().ok())
        << shm::HeapAccess::segment(heap).Verify();
    EXPECT_TRUE(collect::VerifyMetrics(shm::HeapAccess::segment(heap)).ok());

    // So does the endpoint.
    if (access("/usr/bin/curl", X_OK) == 0) {
      HttpExposer exposer(heap, {.port = 0});
      int rc = -1;
      const std::string body = Shell(
          "curl -sf -H 'Accept: application/openmetrics-text' "
          "http://127.0.0.1:" +
              std::to_string(exposer.port()) + "/metrics",
          &rc);
      EXPECT_EQ(rc, 0);
      // (find, not HasSubstr: the body is too long to print on a failure)
      EXPECT_NE(body.find("users_total{user=\"kept\"} 2\n"), std::string::npos);
      EXPECT_NE(body.find("users_total{user=\"__overflow__\"} 5\n"), std::string::npos);
      EXPECT_NE(body.find("pages_total{page=\"__overflow__\"} 6\n"), std::string::npos);
      EXPECT_NE(body.find("shmetrics_series_overflow_total{family=\"pages\"}"), std::string::npos);
      EXPECT_EQ(body.substr(body.size() - 6), "# EOF\n");
    }
  }
  Heap::Remove(name);
}

}  // namespace
}  // namespace shmetrics
