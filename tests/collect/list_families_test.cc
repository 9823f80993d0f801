// collect::ListFamilies: the families of a heap, checked, as `shmetrics inspect` counts them.
#include <cstring>
#include <string>

#include "collect/collector.h"
#include "gtest/gtest.h"
#include "shmetrics/registry.h"
#include "util/heap_fixture.h"

namespace shmetrics::collect {
namespace {

class ListFamiliesTest : public testing::HeapTest {};

TEST_F(ListFamiliesTest, ListsEveryFamilySortedWithItsSeries) {
  auto& jobs = registry_->AddCounter("jobs", "Jobs", {"kind"});
  jobs.Labels("a").Inc();
  jobs.Labels("b").Inc();
  registry_->AddGauge("depth", "Queue depth");
  registry_->AddTimer("query", "Queries");

  std::string bad = "untouched";
  auto families = ListFamilies(shm::HeapAccess::segment(*heap_), &bad);
  ASSERT_TRUE(families.ok()) << families.status();
  EXPECT_EQ(bad, "untouched");
  ASSERT_EQ(families->size(), 3u);
  EXPECT_EQ((*families)[0].name, "depth");
  EXPECT_EQ((*families)[0].type, MetricType::kGauge);
  EXPECT_EQ((*families)[0].series, 1u);
  EXPECT_EQ((*families)[1].name, "jobs");
  EXPECT_EQ((*families)[1].type, MetricType::kCounter);
  EXPECT_EQ((*families)[1].series, 2u);
  EXPECT_EQ((*families)[2].name, "query_seconds");
  EXPECT_EQ((*families)[2].type, MetricType::kTimer);
}

TEST_F(ListFamiliesTest, NamesTheFamilyWhoseRecordIsCorrupt) {
  registry_->AddCounter("fine", "Fine");
  registry_->AddCounter("broken", "Broken");
  shm::Segment& seg = shm::HeapAccess::segment(*heap_);
  const uint64_t off = seg.Find(seg.header().root_table.load(), "broken");
  ASSERT_NE(off, 0u);
  std::memcpy(seg.base() + off, "corrupt!", 8);  // the record's magic

  std::string bad;
  auto families = ListFamilies(seg, &bad);
  ASSERT_FALSE(families.ok());
  EXPECT_EQ(families.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(bad, "broken");
}

}  // namespace
}  // namespace shmetrics::collect
