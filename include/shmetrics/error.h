// shmetrics::Error: the one exception the library throws, and shmetrics::ErrorCode, what kind of
// failure it reports.
//
// Setting up — creating or opening a heap, registering a family, looking up a child with wrong
// or invalid label values — throws Error with a message that names what was wrong. Updates
// (Inc, Set, Observe, ...) never throw and never fail: an invalid value is rejected (the method
// returns false) and changes nothing.
//
// ErrorCode has the names and values of the canonical error codes (those of gRPC and of
// absl::StatusCode), so a program using Abseil can map one to the other with a static_cast;
// this header itself needs nothing but the standard library.
//
// Thread safety: an Error is an ordinary value.
//
// Example:
//   try {
//     auto heap = shmetrics::Heap::Create("myapp");
//   } catch (const shmetrics::Error& e) {
//     if (e.code() != shmetrics::ErrorCode::kAlreadyExists) throw;
//     std::cerr << e.what() << "\n";  // says whether the heap's creator still runs
//   }
#ifndef SHMETRICS_ERROR_H_
#define SHMETRICS_ERROR_H_

#include <stdexcept>
#include <string>

namespace shmetrics {

// The values are those of the canonical codes: never renumber.
enum class ErrorCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT", "ALREADY_EXISTS", ...: the canonical spelling of the code.
const char* ErrorCodeName(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

  // kInvalidArgument (bad names, labels, buckets), kAlreadyExists (conflicting registration,
  // existing heap), kNotFound, kPermissionDenied, kDataLoss (corrupt heap), kFailedPrecondition
  // (layout version, read-only heap), kResourceExhausted (heap full), kUnavailable (an
  // HttpExposer that cannot bind), kInternal (a system call failed unexpectedly).
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_ERROR_H_
