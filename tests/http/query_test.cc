#include "http/query.h"

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shmetrics::http {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ParseNameFiltersTest, CollectsNameValuesInOrder) {
  EXPECT_THAT(ParseNameFilters("name[]=up&name[]=http_requests"),
              ElementsAre("up", "http_requests"));
}

TEST(ParseNameFiltersTest, IgnoresOtherParameters) {
  EXPECT_THAT(ParseNameFilters("x=1&name=up&names[]=a&name[]=b&name[]x=c&y"), ElementsAre("b"));
}

TEST(ParseNameFiltersTest, AcceptsEncodedBrackets) {
  EXPECT_THAT(ParseNameFilters("name%5B%5D=a&name%5b%5d=b&name%5B]=c"), ElementsAre("a", "b", "c"));
}

TEST(ParseNameFiltersTest, DecodesValues) {
  EXPECT_THAT(ParseNameFilters("name[]=a+b&name[]=c%2Fd&name[]=%E2%82%AC"),
              ElementsAre("a b", "c/d", "\xE2\x82\xAC"));
}

TEST(ParseNameFiltersTest, SkipsEmptyDuplicateAndBrokenValues) {
  EXPECT_THAT(ParseNameFilters("name[]=&name[]&name[]=a&name[]=a&name[]=%zz&name[]=%4&name[]=b%"),
              ElementsAre("a"));
}

TEST(ParseNameFiltersTest, EmptyAndDegenerateQueries) {
  EXPECT_THAT(ParseNameFilters(""), IsEmpty());
  EXPECT_THAT(ParseNameFilters("&&&"), IsEmpty());
  EXPECT_THAT(ParseNameFilters("="), IsEmpty());
  EXPECT_THAT(ParseNameFilters("%"), IsEmpty());
  EXPECT_THAT(ParseNameFilters("name[]"), IsEmpty());
  EXPECT_THAT(ParseNameFilters("&name[]=x&"), ElementsAre("x"));
}

TEST(ParseNameFiltersTest, ValueMayContainEqualsSign) {
  EXPECT_THAT(ParseNameFilters("name[]=a=b"), ElementsAre("a=b"));
}

TEST(ParseNameFiltersTest, HostileInputNeverCrashesAndNeverGrows) {
  std::mt19937 rng(20240601);
  const std::string alphabet = "name[]=&%+5BbDd0aF\x00\xff";
  for (int round = 0; round < 2000; ++round) {
    std::string query;
    size_t length = rng() % 200;
    for (size_t i = 0; i < length; ++i) {
      query.push_back(rng() % 4 == 0 ? static_cast<char>(rng() % 256)
                                     : alphabet[rng() % alphabet.size()]);
    }
    size_t total = 0;
    for (const std::string& name : ParseNameFilters(query)) {
      EXPECT_FALSE(name.empty());
      total += name.size();
    }
    EXPECT_LE(total, query.size());
  }
}

TEST(UrlDecodeTest, DecodesAndRejects) {
  EXPECT_EQ(UrlDecode("a%20b+c"), "a b c");
  EXPECT_EQ(UrlDecode("%41%6a"), "Aj");
  EXPECT_EQ(UrlDecode("%00"), std::string(1, '\0'));
  EXPECT_EQ(UrlDecode("%"), std::nullopt);
  EXPECT_EQ(UrlDecode("%g0"), std::nullopt);
  EXPECT_EQ(UrlDecode("ab%2"), std::nullopt);
}

}  // namespace
}  // namespace shmetrics::http
