// Warm starts: a trial whose runs start from another checkpoint's weights
// while it has none of its own (Determined's searcher.source_trial_id /
// source_checkpoint_uuid, and a PBT child's parent). Owns: resolving the
// config's source at experiment creation, the warm_start_uuid a new trial
// gets, and the TrialSpec.warm_start (+dir) of a run with nothing to
// restore. The step count of a warm-started run starts at 0.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"
#include "master/core/placement.h"

namespace det::master {

absl::Status Master::ResolveWarmStart(ExperimentConfig* config) {
  SearcherConfig& s = config->searcher;
  if (s.source_trial_id != 0) {
    absl::StatusOr<store::TrialRecord> trial =
        store_->GetTrial(s.source_trial_id);
    if (absl::IsNotFound(trial.status())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "searcher.source_trial_id: there is no trial ", s.source_trial_id));
    }
    DET_RETURN_IF_ERROR(trial.status());
    DET_ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> checkpoints,
                         store_->ListCheckpoints(s.source_trial_id));
    if (checkpoints.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "searcher.source_trial_id: trial ", s.source_trial_id,
          " has no checkpoint to start from (it has not saved one yet, or "
          "they were garbage-collected)"));
    }
    // Sorted by steps_completed: the latest is the last (as Determined's
    // LatestCheckpointForTrial).
    s.source_checkpoint_uuid = checkpoints.back().uuid();
    return absl::OkStatus();
  }
  if (s.source_checkpoint_uuid.empty()) return absl::OkStatus();
  absl::StatusOr<v1::Checkpoint> c =
      store_->GetCheckpoint(s.source_checkpoint_uuid);
  if (absl::IsNotFound(c.status())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "searcher.source_checkpoint_uuid: there is no checkpoint '",
        s.source_checkpoint_uuid,
        "' (`det trial checkpoints TRIAL_ID` lists a trial's)"));
  }
  DET_RETURN_IF_ERROR(c.status());
  if (c->state() != v1::CHECKPOINT_STATE_ACTIVE) {
    return absl::InvalidArgumentError(
        absl::StrCat("searcher.source_checkpoint_uuid: checkpoint '",
                     s.source_checkpoint_uuid, "' of trial ", c->trial_id(),
                     " was garbage-collected; its files are gone"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Master::WarmStartForCreate(
    ExperimentState* e, searcher::RequestId from) {
  if (from != 0) {
    auto rit = e->trial_by_request.find(from);
    if (rit != e->trial_by_request.end()) {
      DET_ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> own,
                           store_->ListCheckpoints(rit->second));
      if (!own.empty()) return own.back().uuid();
      // The parent has saved nothing yet: its weights are those it
      // started from.
      auto tit = e->trials.find(rit->second);
      if (tit != e->trials.end()) {
        return tit->second.rec.trial.warm_start_uuid();
      }
    }
  }
  return e->config.searcher.source_checkpoint_uuid;
}

absl::StatusOr<Master::WarmStartSource> Master::LookUpWarmStart(
    ExperimentState* e, const std::string& uuid) {
  auto cached = e->warm_start_sources.find(uuid);
  if (cached != e->warm_start_sources.end()) return cached->second;
  WarmStartSource w;
  absl::StatusOr<v1::Checkpoint> c = store_->GetCheckpoint(uuid);
  if (absl::IsNotFound(c.status())) {
    // Gone from the store: the worker finds no such checkpoint and fails
    // the run, saying so (the uuid alone, no files to check).
    w.checkpoint.set_uuid(uuid);
    w.config = e->config;
    return w;
  }
  DET_RETURN_IF_ERROR(c.status());
  w.checkpoint = std::move(*c);
  // The directory it lies under is its own experiment's checkpoint
  // storage, which may differ from this experiment's.
  // Where a source that cannot be looked up any more (its trial or
  // experiment gone, its config unreadable) is looked for: this
  // experiment's storage. Only a store that fails (the master reloads and
  // tries again) is an error here; anything else would fail every
  // scheduling pass, while a run the worker refuses says why in its log.
  w.config = e->config;
  auto transient = [](const absl::Status& s) {
    return !s.ok() && !absl::IsNotFound(s) && !absl::IsDataLoss(s) &&
           !absl::IsInvalidArgument(s);
  };
  absl::StatusOr<store::TrialRecord> trial =
      store_->GetTrial(w.checkpoint.trial_id());
  if (transient(trial.status())) return trial.status();
  const int64_t source_id = trial.ok() ? trial->trial.experiment_id() : 0;
  if (source_id != 0 && source_id != e->rec.experiment.id()) {
    if (ExperimentState* src = FindExperiment(source_id)) {
      w.config = src->config;
    } else {
      absl::StatusOr<store::ExperimentRecord> rec =
          store_->GetExperiment(source_id);
      if (transient(rec.status())) return rec.status();
      if (rec.ok()) {
        absl::StatusOr<ExperimentConfig> cfg =
            ParseStoredExperimentConfig(rec->experiment.config_yaml());
        if (cfg.ok()) w.config = std::move(*cfg);
      }
    }
  }
  e->warm_start_sources[uuid] = w;
  return w;
}

}  // namespace det::master
