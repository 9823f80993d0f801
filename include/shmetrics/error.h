// shmetrics::Error: the one exception the library throws.
//
// Setting up — creating or opening a heap, registering a family, looking up a child with wrong
// or invalid label values — throws Error with a message that names what was wrong. Updates
// (Inc, Set, Observe, ...) never throw and never fail: an invalid value is rejected (the method
// returns false) and changes nothing.
//
// Thread safety: an Error is an ordinary value.
#ifndef SHMETRICS_ERROR_H_
#define SHMETRICS_ERROR_H_

#include <stdexcept>
#include <string>

#include "absl/status/status.h"

namespace shmetrics {

class Error : public std::runtime_error {
 public:
  explicit Error(const absl::Status& status)
      : std::runtime_error(std::string(status.message())), code_(status.code()) {}
  Error(absl::StatusCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}

  // kInvalidArgument (bad names, labels, buckets), kAlreadyExists (conflicting registration,
  // existing heap), kNotFound, kPermissionDenied, kDataLoss (corrupt heap), kFailedPrecondition
  // (layout version, read-only heap), kResourceExhausted (heap full).
  absl::StatusCode code() const noexcept { return code_; }

 private:
  absl::StatusCode code_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_ERROR_H_
