#include "master/searcher/preview_proto.h"

#include <cstdint>

#include "common/config.h"

namespace det::searcher {

v1::PreviewSearchResponse PlanToProto(const SearchPlan& plan) {
  v1::PreviewSearchResponse r;
  r.set_searcher(plan.searcher);
  r.set_unit(plan.metric_unit.empty() ? UnitName(plan.unit) : plan.metric_unit);
  r.set_max_length(plan.max_length);
  r.set_num_trials(static_cast<int32_t>(plan.num_trials));
  r.set_total_length(plan.total_length);
  for (const PlanBracket& b : plan.brackets) {
    v1::PreviewBracket* pb = r.add_brackets();
    pb->set_num_rungs(b.num_rungs);
    pb->set_trials(static_cast<int32_t>(b.trials));
    pb->set_max_concurrent_trials(
        static_cast<int32_t>(b.max_concurrent_trials));
    for (const PlanRung& rung : b.rungs) {
      v1::PreviewRung* pr = pb->add_rungs();
      pr->set_length(rung.length);
      pr->set_trials(static_cast<int32_t>(rung.trials));
    }
  }
  r.set_population_size(static_cast<int32_t>(plan.population_size));
  r.set_num_rounds(static_cast<int32_t>(plan.num_rounds));
  r.set_replaced_per_round(static_cast<int32_t>(plan.replaced_per_round));
  for (const PlanRound& round : plan.rounds) {
    v1::PreviewRound* pr = r.add_rounds();
    pr->set_round(static_cast<int32_t>(round.round));
    pr->set_trials(static_cast<int32_t>(round.trials));
    pr->set_continuing(static_cast<int32_t>(round.continuing));
    pr->set_copies(static_cast<int32_t>(round.copies));
    pr->set_trained_length(round.trained_length);
  }
  for (const auto& [name, n] : plan.grid_axes) {
    (*r.mutable_grid_axes())[name] = static_cast<int32_t>(n);
  }
  return r;
}

}  // namespace det::searcher
