#include "http/responses.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shmetrics::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(ResponsesTest, NotFound) {
  Response r = NotFound();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "Not Found\n");
  EXPECT_THAT(r.extra_headers, IsEmpty());
}

TEST(ResponsesTest, MethodNotAllowedListsTheAllowedMethods) {
  Response r = MethodNotAllowed();
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body, "Method Not Allowed\n");
  EXPECT_THAT(r.extra_headers, ElementsAre(Pair("Allow", "GET, HEAD")));
}

TEST(ResponsesTest, TextResponse) {
  Response r = TextResponse(200, "OK\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "OK\n");
}

TEST(ResponsesTest, IsGetOrHead) {
  Request r;
  r.method = "GET";
  EXPECT_TRUE(IsGetOrHead(r));
  r.method = "HEAD";
  EXPECT_TRUE(IsGetOrHead(r));
  r.method = "POST";
  EXPECT_FALSE(IsGetOrHead(r));
  r.method = "get";  // methods are case-sensitive
  EXPECT_FALSE(IsGetOrHead(r));
}

TEST(ResponsesTest, LandingPageEscapesAndLinks) {
  Response r = LandingPage("my <app> & \"co\"", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body,
            "<!DOCTYPE html>\n<html><head><title>my &lt;app&gt; &amp; &quot;co&quot;</title>"
            "</head>\n<body><h1>my &lt;app&gt; &amp; &quot;co&quot;</h1>\n"
            "<p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n");
}

TEST(ResponsesTest, HtmlEscape) { EXPECT_EQ(HtmlEscape("a'b<>&\""), "a&#39;b&lt;&gt;&amp;&quot;"); }

}  // namespace
}  // namespace shmetrics::http
