// Which checkpoints of an experiment to keep, with Determined's semantics
// for checkpoint_storage.save_trial_latest / save_trial_best /
// save_experiment_best. Pure: checkpoints and metrics in, uuids to delete
// out; no store, no files. The core calls it after a trial's checkpoint or
// validation and when an experiment ends, then deletes what it returns.
//
// The rule, for one experiment:
//  - a checkpoint's metric is the searcher metric of the trial's validation
//    at the same steps_completed; a checkpoint with no such validation, or
//    whose value is NaN, has no metric and never counts as "best";
//  - keep, per trial, the save_trial_latest with the most steps_completed;
//  - keep, per trial, the save_trial_best with the best metric
//    (smaller_is_better decides the direction);
//  - keep the save_experiment_best with the best metric over all trials;
//  - keep, for every live trial (queued, running, paused: it may run again),
//    the `restore_candidates` newest checkpoints, because the master offers
//    the worker that many to restore from (and the worker falls back from a
//    corrupt newest one to an older one);
//  - every other checkpoint is deleted.
// Ties rank by steps_completed (the later checkpoint first), then by report
// time (the later first), then by uuid, so exactly N are kept and the choice
// is the same on every call.
#ifndef DET_MASTER_CHECKPOINTS_RETENTION_H_
#define DET_MASTER_CHECKPOINTS_RETENTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace det::master::checkpoints {

struct RetentionPolicy {
  int64_t save_trial_latest = 1;
  int64_t save_trial_best = 1;
  int64_t save_experiment_best = 0;
  bool smaller_is_better = true;
  // How many of a live trial's newest checkpoints stay (the restore
  // candidates the master offers; master/core/placement.cc).
  int64_t restore_candidates = 5;
};

struct CheckpointInfo {
  std::string uuid;
  int64_t trial_id = 0;
  int64_t steps_completed = 0;
  // When it was reported (Unix microseconds): of two checkpoints at the same
  // steps (a restarted run redoing steps), the later report is the newer.
  int64_t time_us = 0;
  // The searcher metric of the validation at steps_completed, if any.
  std::optional<double> metric;
};

struct ValidationPoint {
  int64_t trial_id = 0;
  int64_t steps_completed = 0;
  double metric = 0;
};

// Whether `a` is newer than `b`: more steps_completed, then reported later,
// then the smaller uuid. The one order of "latest" everywhere (a trial's
// latest checkpoint, its restore candidates, save_trial_latest), so the
// checkpoint a trial names as its latest is the one GC keeps.
bool Newer(const CheckpointInfo& a, const CheckpointInfo& b);

// Fills each checkpoint's metric from the validation of the same trial at
// the same steps_completed (the last one given wins if several match).
void AttachMetrics(const std::vector<ValidationPoint>& validations,
                   std::vector<CheckpointInfo>* checkpoints);

// The uuids of the checkpoints to delete, in the order given. Checkpoints
// of trials in `live_trials` are protected as described above. Negative
// counts are treated as 0.
std::vector<std::string> CheckpointsToDelete(
    const RetentionPolicy& policy,
    const std::vector<CheckpointInfo>& checkpoints,
    const absl::flat_hash_set<int64_t>& live_trials);

// The uuids of the checkpoints with a metric, best first, by the same
// ranking as save_trial_best / save_experiment_best (ties: Newer first): what
// "the best N" means to det checkpoint list --best and det experiment download
// --top-n.
std::vector<std::string> RankedByMetric(
    const std::vector<CheckpointInfo>& checkpoints, bool smaller_is_better);

}  // namespace det::master::checkpoints

#endif  // DET_MASTER_CHECKPOINTS_RETENTION_H_
