#include "master/checkpoints/retention.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace det::master::checkpoints {
namespace {

bool HasMetric(const CheckpointInfo& c) {
  return c.metric.has_value() && !std::isnan(*c.metric);
}

// Marks the first n of `ranked` as kept.
void KeepFirst(const std::vector<const CheckpointInfo*>& ranked, int64_t n,
               absl::flat_hash_set<std::string>* keep) {
  for (int64_t i = 0; i < n && i < static_cast<int64_t>(ranked.size()); ++i) {
    keep->insert(ranked[static_cast<size_t>(i)]->uuid);
  }
}

std::vector<const CheckpointInfo*> RankByNewest(
    std::vector<const CheckpointInfo*> cs) {
  std::sort(cs.begin(), cs.end(),
            [](const CheckpointInfo* a, const CheckpointInfo* b) {
              return Newer(*a, *b);
            });
  return cs;
}

// Only checkpoints with a metric, best first.
std::vector<const CheckpointInfo*> RankByMetric(
    const std::vector<const CheckpointInfo*>& cs, bool smaller_is_better) {
  std::vector<const CheckpointInfo*> ranked;
  for (const CheckpointInfo* c : cs) {
    if (HasMetric(*c)) ranked.push_back(c);
  }
  std::sort(
      ranked.begin(), ranked.end(),
      [smaller_is_better](const CheckpointInfo* a, const CheckpointInfo* b) {
        if (*a->metric != *b->metric) {
          return smaller_is_better ? *a->metric < *b->metric
                                   : *a->metric > *b->metric;
        }
        return Newer(*a, *b);
      });
  return ranked;
}

}  // namespace

bool Newer(const CheckpointInfo& a, const CheckpointInfo& b) {
  if (a.steps_completed != b.steps_completed) {
    return a.steps_completed > b.steps_completed;
  }
  if (a.time_us != b.time_us) return a.time_us > b.time_us;
  return a.uuid < b.uuid;
}

void AttachMetrics(const std::vector<ValidationPoint>& validations,
                   std::vector<CheckpointInfo>* checkpoints) {
  std::map<std::pair<int64_t, int64_t>, double> by_step;
  for (const ValidationPoint& v : validations) {
    by_step[{v.trial_id, v.steps_completed}] = v.metric;
  }
  for (CheckpointInfo& c : *checkpoints) {
    auto it = by_step.find({c.trial_id, c.steps_completed});
    if (it == by_step.end()) {
      c.metric.reset();
    } else {
      c.metric = it->second;
    }
  }
}

std::vector<std::string> CheckpointsToDelete(
    const RetentionPolicy& policy,
    const std::vector<CheckpointInfo>& checkpoints,
    const absl::flat_hash_set<int64_t>& live_trials) {
  std::map<int64_t, std::vector<const CheckpointInfo*>> by_trial;
  std::vector<const CheckpointInfo*> all;
  for (const CheckpointInfo& c : checkpoints) {
    by_trial[c.trial_id].push_back(&c);
    all.push_back(&c);
  }
  absl::flat_hash_set<std::string> keep;
  for (const auto& [trial_id, cs] : by_trial) {
    std::vector<const CheckpointInfo*> newest = RankByNewest(cs);
    KeepFirst(newest, policy.save_trial_latest, &keep);
    KeepFirst(RankByMetric(cs, policy.smaller_is_better),
              policy.save_trial_best, &keep);
    if (live_trials.contains(trial_id)) {
      KeepFirst(newest, policy.restore_candidates, &keep);
    }
  }
  KeepFirst(RankByMetric(all, policy.smaller_is_better),
            policy.save_experiment_best, &keep);
  std::vector<std::string> out;
  for (const CheckpointInfo& c : checkpoints) {
    if (!keep.contains(c.uuid)) out.push_back(c.uuid);
  }
  return out;
}

std::vector<std::string> RankedByMetric(
    const std::vector<CheckpointInfo>& checkpoints, bool smaller_is_better) {
  std::vector<const CheckpointInfo*> all;
  all.reserve(checkpoints.size());
  for (const CheckpointInfo& c : checkpoints) all.push_back(&c);
  std::vector<std::string> uuids;
  for (const CheckpointInfo* c : RankByMetric(all, smaller_is_better)) {
    uuids.push_back(c->uuid);
  }
  return uuids;
}

}  // namespace det::master::checkpoints
