// absl::Status, the error type inside the library, and shmetrics::Error, the one the public API
// throws: the one-to-one mapping of their codes and the helpers that throw.
//
// Thread safety: pure functions, safe from any thread.
//
// Example:
//   if (absl::Status s = segment.Verify(); !s.ok()) throw ToError(s);
//   Throw(absl::StatusCode::kInvalidArgument, "metric name is empty");
#ifndef SHMETRICS_SHM_STATUS_ERROR_H_
#define SHMETRICS_SHM_STATUS_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "shmetrics/error.h"

namespace shmetrics {

[[nodiscard]] ErrorCode ToErrorCode(absl::StatusCode code) noexcept;
[[nodiscard]] absl::StatusCode ToStatusCode(ErrorCode code) noexcept;

// The Error carrying status's code and message. REQUIRES: !status.ok()
[[nodiscard]] Error ToError(const absl::Status& status);

[[noreturn]] void Throw(absl::StatusCode code, const std::string& message);
// REQUIRES: !status.ok()
[[noreturn]] void Throw(const absl::Status& status);

}  // namespace shmetrics

#endif  // SHMETRICS_SHM_STATUS_ERROR_H_
