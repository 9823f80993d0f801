// shmetrics::Info and shmetrics::StateSet: the OpenMetrics info and stateset types.
//
// An Info series exists once its child is looked up; its labels are the information
// (OpenMetrics exposes `<name>_info{...} 1`). A StateSet series holds up to 64 named states,
// each on or off, in one 64-bit cell, so SetOnly (enum-style: exactly one state on) is a single
// atomic store.
//
// Thread safety: safe from any thread of any process attached to the heap, without external
// synchronization.
//
// Example:
//   registry.AddInfo("build", "Build information", {"version", "revision"}).Labels("1.2.0", "abc");
//   auto& state = registry.AddStateSet("worker_state", "State", {}, {"idle", "busy", "draining"});
//   state.Labels().SetOnly("busy");
#ifndef SHMETRICS_INFO_H_
#define SHMETRICS_INFO_H_

#include <cstdint>
#include <string_view>

#include "shmetrics/internal/cell.h"
#include "shmetrics/internal/family.h"

namespace shmetrics {

class Info {
 public:
  explicit Info(const internal::SeriesRef&) {}
};

class StateSet {
 public:
  explicit StateSet(const internal::SeriesRef& ref)
      : cell_(reinterpret_cast<internal::Cell*>(ref.record + internal::kSeriesCellsOffset)),
        family_(ref.family) {}

  // Turns one state on or off. Returns false (and changes nothing) for an unknown state.
  bool Set(std::string_view state, bool on) noexcept;
  // Turns `state` on and every other state off, atomically. Returns false for an unknown state.
  bool SetOnly(std::string_view state) noexcept;
  bool IsSet(std::string_view state) const noexcept;

 private:
  int Index(std::string_view state) const noexcept;

  internal::Cell* cell_;
  const internal::FamilyBase* family_;
};

}  // namespace shmetrics

#endif  // SHMETRICS_INFO_H_
