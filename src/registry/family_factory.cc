// The family objects: one Family<Child> per meter type, and their binding to the heap.
#include <algorithm>
#include <array>
#include <utility>

#include "registry/registry_access.h"

namespace shmetrics {

std::unique_ptr<internal::FamilyBase> RegistryAccess::New(MetricType type) {
  using Factory = std::unique_ptr<internal::FamilyBase> (*)();
  // Indexed by the MetricType value minus one, as meters::AllMeterTypes().
  static constexpr std::array<Factory, 12> kFactories = {
      &Make<Counter>,
      &Make<Gauge>,
      &Make<Histogram>,
      &Make<Summary>,
      &Make<Info>,
      &Make<StateSet>,
      &Make<Timer>,
      &Make<DistributionSummary>,
      &Make<MaxGauge>,
      &Make<AgeGauge>,
      &Make<PercentileTimer>,
      &Make<PercentileDistributionSummary>,
  };
  static_assert(static_cast<uint32_t>(MetricType::kPercentileDistributionSummary) ==
                kFactories.size());
  return kFactories[static_cast<uint32_t>(type) - 1]();
}

void RegistryAccess::Init(internal::FamilyBase& f, std::shared_ptr<shm::Segment> seg,
                          uint64_t family_off, const meters::Definition& def,
                          std::vector<std::string> declared) {
  const auto* rec = seg->At<meters::FamilyRecord>(family_off);
  f.segment_ = std::move(seg);
  f.family_off_ = family_off;
  f.table_off_ = rec->series_table.load(std::memory_order_acquire);
  f.name_ = def.name;
  f.type_ = def.type;
  f.declared_names_ = std::move(declared);
  f.canonical_names_ = def.label_names;
  f.to_canonical_.resize(def.label_names.size());
  for (size_t i = 0; i < def.label_names.size(); ++i) {
    f.to_canonical_[i] = static_cast<uint32_t>(
        std::find(f.declared_names_.begin(), f.declared_names_.end(), def.label_names[i]) -
        f.declared_names_.begin());
  }
  f.bounds_ = def.bounds;
  f.states_ = def.states;
  f.ttl_ns_ = def.ttl_ns;
  f.quantiles_ = def.quantiles;
  f.sketch_ = meters::MakeSketchLayout(def);
  f.percentile_first_ = def.percentile_first;
  f.percentile_last_ = def.percentile_last;
  f.stripes_ = rec->stripes;
  f.cells_per_stripe_ = rec->cells_per_stripe;
  f.stripe_stride_ = rec->stripe_stride;
  f.series_size_ = rec->series_size;
  f.exemplar_slots_ = rec->exemplar_slots;
  f.max_children_ = rec->max_children;
  f.dummy_ = std::make_unique<char[]>(f.series_size_ + 64);
  f.InitSeries(f.Dummy());
}

}  // namespace shmetrics
