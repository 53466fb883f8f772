#include "master/api/preview_proto.h"

#include "common/config.h"
#include "master/searcher/preview.h"
#include "master/searcher/preview_proto.h"

namespace det::master {

absl::StatusOr<v1::PreviewSearchResponse> PreviewSearchProto(
    const std::string& config_yaml) {
  auto cfg = ParseExperimentConfig(config_yaml);
  if (!cfg.ok()) return cfg.status();
  auto plan = searcher::PlanSearch(*cfg);
  if (!plan.ok()) return plan.status();
  return searcher::PlanToProto(*plan);
}

}  // namespace det::master
