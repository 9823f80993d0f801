#include "shm/status_error.h"

#include <string>

#include "absl/status/status.h"
#include "shmetrics/error.h"

namespace shmetrics {
namespace {

// ErrorCode copies the canonical codes' values; the mapping below relies on nothing but the
// names, and these checks keep the values equal too, so a static_cast stays valid for users.
#define SHMETRICS_SAME_CODE(name) \
  static_assert(static_cast<int>(ErrorCode::name) == static_cast<int>(absl::StatusCode::name))
SHMETRICS_SAME_CODE(kOk);
SHMETRICS_SAME_CODE(kCancelled);
SHMETRICS_SAME_CODE(kUnknown);
SHMETRICS_SAME_CODE(kInvalidArgument);
SHMETRICS_SAME_CODE(kDeadlineExceeded);
SHMETRICS_SAME_CODE(kNotFound);
SHMETRICS_SAME_CODE(kAlreadyExists);
SHMETRICS_SAME_CODE(kPermissionDenied);
SHMETRICS_SAME_CODE(kResourceExhausted);
SHMETRICS_SAME_CODE(kFailedPrecondition);
SHMETRICS_SAME_CODE(kAborted);
SHMETRICS_SAME_CODE(kOutOfRange);
SHMETRICS_SAME_CODE(kUnimplemented);
SHMETRICS_SAME_CODE(kInternal);
SHMETRICS_SAME_CODE(kUnavailable);
SHMETRICS_SAME_CODE(kDataLoss);
SHMETRICS_SAME_CODE(kUnauthenticated);
#undef SHMETRICS_SAME_CODE

}  // namespace

ErrorCode ToErrorCode(absl::StatusCode code) noexcept {
  switch (code) {
    case absl::StatusCode::kOk:
      return ErrorCode::kOk;
    case absl::StatusCode::kCancelled:
      return ErrorCode::kCancelled;
    case absl::StatusCode::kUnknown:
      return ErrorCode::kUnknown;
    case absl::StatusCode::kInvalidArgument:
      return ErrorCode::kInvalidArgument;
    case absl::StatusCode::kDeadlineExceeded:
      return ErrorCode::kDeadlineExceeded;
    case absl::StatusCode::kNotFound:
      return ErrorCode::kNotFound;
    case absl::StatusCode::kAlreadyExists:
      return ErrorCode::kAlreadyExists;
    case absl::StatusCode::kPermissionDenied:
      return ErrorCode::kPermissionDenied;
    case absl::StatusCode::kResourceExhausted:
      return ErrorCode::kResourceExhausted;
    case absl::StatusCode::kFailedPrecondition:
      return ErrorCode::kFailedPrecondition;
    case absl::StatusCode::kAborted:
      return ErrorCode::kAborted;
    case absl::StatusCode::kOutOfRange:
      return ErrorCode::kOutOfRange;
    case absl::StatusCode::kUnimplemented:
      return ErrorCode::kUnimplemented;
    case absl::StatusCode::kInternal:
      return ErrorCode::kInternal;
    case absl::StatusCode::kUnavailable:
      return ErrorCode::kUnavailable;
    case absl::StatusCode::kDataLoss:
      return ErrorCode::kDataLoss;
    case absl::StatusCode::kUnauthenticated:
      return ErrorCode::kUnauthenticated;
    default:
      return ErrorCode::kUnknown;  // as absl maps codes it does not know
  }
}

absl::StatusCode ToStatusCode(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk:
      return absl::StatusCode::kOk;
    case ErrorCode::kCancelled:
      return absl::StatusCode::kCancelled;
    case ErrorCode::kUnknown:
      return absl::StatusCode::kUnknown;
    case ErrorCode::kInvalidArgument:
      return absl::StatusCode::kInvalidArgument;
    case ErrorCode::kDeadlineExceeded:
      return absl::StatusCode::kDeadlineExceeded;
    case ErrorCode::kNotFound:
      return absl::StatusCode::kNotFound;
    case ErrorCode::kAlreadyExists:
      return absl::StatusCode::kAlreadyExists;
    case ErrorCode::kPermissionDenied:
      return absl::StatusCode::kPermissionDenied;
    case ErrorCode::kResourceExhausted:
      return absl::StatusCode::kResourceExhausted;
    case ErrorCode::kFailedPrecondition:
      return absl::StatusCode::kFailedPrecondition;
    case ErrorCode::kAborted:
      return absl::StatusCode::kAborted;
    case ErrorCode::kOutOfRange:
      return absl::StatusCode::kOutOfRange;
    case ErrorCode::kUnimplemented:
      return absl::StatusCode::kUnimplemented;
    case ErrorCode::kInternal:
      return absl::StatusCode::kInternal;
    case ErrorCode::kUnavailable:
      return absl::StatusCode::kUnavailable;
    case ErrorCode::kDataLoss:
      return absl::StatusCode::kDataLoss;
    case ErrorCode::kUnauthenticated:
      return absl::StatusCode::kUnauthenticated;
  }
  return absl::StatusCode::kUnknown;
}

const char* ErrorCodeName(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOk:
      return "OK";
    case ErrorCode::kCancelled:
      return "CANCELLED";
    case ErrorCode::kUnknown:
      return "UNKNOWN";
    case ErrorCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case ErrorCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case ErrorCode::kNotFound:
      return "NOT_FOUND";
    case ErrorCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case ErrorCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case ErrorCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case ErrorCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case ErrorCode::kAborted:
      return "ABORTED";
    case ErrorCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case ErrorCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case ErrorCode::kInternal:
      return "INTERNAL";
    case ErrorCode::kUnavailable:
      return "UNAVAILABLE";
    case ErrorCode::kDataLoss:
      return "DATA_LOSS";
    case ErrorCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

Error ToError(const absl::Status& status) {
  return Error(ToErrorCode(status.code()), std::string(status.message()));
}

void Throw(absl::StatusCode code, const std::string& message) {
  throw Error(ToErrorCode(code), message);
}

void Throw(const absl::Status& status) { throw ToError(status); }

}  // namespace shmetrics
