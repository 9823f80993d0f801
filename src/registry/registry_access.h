// Registration, third step: making the process-local family object (Family<Child>) of a family
// whose heap records exist. The one place that knows both the registry and the family
// internals (FamilyBase and Family<T> name it their friend).
#ifndef SHMETRICS_SRC_REGISTRY_REGISTRY_ACCESS_H_
#define SHMETRICS_SRC_REGISTRY_REGISTRY_ACCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "meters/layout.h"
#include "shm/segment.h"
#include "shmetrics/registry.h"

namespace shmetrics {

class RegistryAccess {
 public:
  // The family object of a family of this type, not yet initialized (see family_factory.cc).
  static std::unique_ptr<internal::FamilyBase> New(MetricType type);

  // Binds the family object to the family record at family_off, whose definition is def;
  // `declared` are the label names in the order the caller declared them.
  static void Init(internal::FamilyBase& f, std::shared_ptr<shm::Segment> seg, uint64_t family_off,
                   const meters::Definition& def, std::vector<std::string> declared);

 private:
  template <typename Child>
  static std::unique_ptr<internal::FamilyBase> Make() {
    return std::unique_ptr<internal::FamilyBase>(new Family<Child>());
  }
};

}  // namespace shmetrics

#endif  // SHMETRICS_SRC_REGISTRY_REGISTRY_ACCESS_H_
