#include "shm/status_error.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "shmetrics/error.h"

namespace shmetrics {
namespace {

constexpr ErrorCode kAllCodes[] = {
    ErrorCode::kOk,
    ErrorCode::kCancelled,
    ErrorCode::kUnknown,
    ErrorCode::kInvalidArgument,
    ErrorCode::kDeadlineExceeded,
    ErrorCode::kNotFound,
    ErrorCode::kAlreadyExists,
    ErrorCode::kPermissionDenied,
    ErrorCode::kResourceExhausted,
    ErrorCode::kFailedPrecondition,
    ErrorCode::kAborted,
    ErrorCode::kOutOfRange,
    ErrorCode::kUnimplemented,
    ErrorCode::kInternal,
    ErrorCode::kUnavailable,
    ErrorCode::kDataLoss,
    ErrorCode::kUnauthenticated,
};

TEST(StatusErrorTest, EveryCodeMapsOneToOneWithAbseilsOfTheSameNameAndValue) {
  for (ErrorCode code : kAllCodes) {
    const absl::StatusCode status_code = ToStatusCode(code);
    EXPECT_EQ(static_cast<int>(status_code), static_cast<int>(code));
    EXPECT_EQ(ToErrorCode(status_code), code);
    EXPECT_EQ(ErrorCodeName(code), absl::StatusCodeToString(status_code));
  }
}

TEST(StatusErrorTest, ToErrorKeepsTheCodeAndTheMessage) {
  const Error e = ToError(absl::AlreadyExistsError("heap \"x\" already exists"));
  EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
  EXPECT_STREQ(e.what(), "heap \"x\" already exists");
}

TEST(StatusErrorTest, ThrowThrowsError) {
  try {
    Throw(absl::StatusCode::kInvalidArgument, "metric name is empty");
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "metric name is empty");
  }
  try {
    Throw(absl::DataLossError("corrupt"));
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_STREQ(e.what(), "corrupt");
  }
}

TEST(StatusErrorTest, AnUnknownAbseilCodeIsUnknown) {
  EXPECT_EQ(ToErrorCode(static_cast<absl::StatusCode>(99)), ErrorCode::kUnknown);
}

}  // namespace
}  // namespace shmetrics
