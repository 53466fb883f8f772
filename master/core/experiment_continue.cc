// `det experiment continue` (Determined 0.26's ContinueExperiment, for the
// single searcher): an ended experiment trains its one trial further in
// the same experiment. The stored config takes the overrides, a fresh
// searcher is made from it (same experiment seed, same warm start) and its
// first operations are carried out on the existing trial instead of a new
// one: its length becomes the new max_length and it is queued again. Its
// next run restores its latest checkpoint (placement.cc), so the step
// count continues. A forced snapshot ends the old searcher's journal.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"
#include "master/core/trial_lengths.h"

namespace det::master {

absl::StatusOr<v1::Experiment> Master::ContinueExperiment(
    int64_t id, const std::vector<std::string>& overrides,
    std::vector<std::string>* warnings) {
  absl::MutexLock l(&mu_);
  if (!store_health_.available) return StoreUnavailableError();
  // Every refusal is decided before anything changes.
  if (ExperimentState* live = FindExperiment(id);
      live != nullptr && !IsTerminal(live->rec.experiment.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot continue experiment ", id, ": it is ",
        StateName(live->rec.experiment.state()),
        "; continue takes an experiment that has ended (COMPLETED, "
        "CANCELED or ERROR)"));
  }
  absl::StatusOr<store::ExperimentRecord> stored = store_->GetExperiment(id);
  if (absl::IsNotFound(stored.status())) {
    return absl::NotFoundError(absl::StrCat("experiment ", id, " not found"));
  }
  DET_RETURN_IF_ERROR(stored.status());
  store::ExperimentRecord rec = std::move(*stored);
  const v1::State was = rec.experiment.state();
  if (!IsTerminal(was)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot continue experiment ", id, ": it is ", StateName(was),
        "; continue takes an experiment that has ended"));
  }
  absl::StatusOr<ExperimentConfig> old_cfg =
      ParseStoredExperimentConfig(rec.experiment.config_yaml());
  if (!old_cfg.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("experiment ", id,
                     ": its stored config no longer "
                     "parses: ",
                     old_cfg.status().message()));
  }
  if (old_cfg->searcher.name != SearcherName::kSingle) {
    return absl::InvalidArgumentError(absl::StrCat(
        "experiment ", id, " uses the ",
        SearcherNameString(old_cfg->searcher.name),
        " searcher; det experiment continue takes a single-searcher "
        "experiment"));
  }
  DET_ASSIGN_OR_RETURN(
      std::string yaml,
      ApplyConfigOverrides(rec.experiment.config_yaml(), overrides));
  absl::StatusOr<ExperimentConfig> cfg = ParseExperimentConfig(yaml);
  if (!cfg.ok()) return cfg.status();
  if (cfg->searcher.name != SearcherName::kSingle) {
    return absl::InvalidArgumentError(
        absl::StrCat("searcher.name: the continued experiment must keep the "
                     "single searcher, found ",
                     SearcherNameString(cfg->searcher.name)));
  }
  if (warnings != nullptr) {
    for (const ConfigError& w : cfg->warnings)
      warnings->push_back(w.ToString());
  }
  // What the master chose at creation survives: the experiment seed (the
  // trial's hyperparameters came from it) and the resolved warm start,
  // unless the overrides name another source.
  const bool same_source =
      cfg->searcher.source_trial_id == old_cfg->searcher.source_trial_id &&
      cfg->searcher.source_checkpoint_uuid ==
          old_cfg->searcher.source_checkpoint_uuid;
  if (!rec.searcher_snapshot.empty()) {
    DET_ASSIGN_OR_RETURN(SearcherSnapshot snap,
                         DecodeSearcherSnapshot(rec.searcher_snapshot));
    if (snap.has_seed && !cfg->has_experiment_seed) {
      cfg->experiment_seed = snap.seed;
      cfg->has_experiment_seed = true;
    }
    if (same_source)
      cfg->searcher.source_checkpoint_uuid = snap.warm_start_uuid;
  }
  if (!same_source) DET_RETURN_IF_ERROR(ResolveWarmStart(&*cfg));
  DET_ASSIGN_OR_RETURN(std::vector<store::TrialRecord> trials,
                       store_->ListTrials(id));

  auto e = std::make_unique<ExperimentState>();
  e->config = std::move(*cfg);
  DET_ASSIGN_OR_RETURN(e->searcher, searcher::NewSearchMethod(e->config));
  e->rec = std::move(rec);
  v1::Experiment& x = e->rec.experiment;
  x.set_config_yaml(yaml);
  x.set_state(v1::STATE_ACTIVE);
  x.set_end_time_us(0);
  x.clear_message();
  x.set_priority(static_cast<int32_t>(e->config.resources.priority));
  e->order = id;
  for (store::TrialRecord& tr : trials) {
    TrialState t;
    t.rec = std::move(tr);
    e->trial_by_request[t.rec.request_id] = t.rec.trial.id();
    e->trial_counts[t.rec.trial.state()]++;
    e->trials.emplace(t.rec.trial.id(), std::move(t));
  }
  if (ExperimentState* old = FindExperiment(id)) e->version = old->version + 1;

  ExperimentState* ep = e.get();
  DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
    experiments_[id] = std::move(e);
    if (ep->trials.empty()) {
      // Ended before its trial was made (cancelled at once): a first start.
      DET_RETURN_IF_ERROR(SaveExperiment(ep, /*force=*/true));
      return StartSearch(ep);
    }
    // The fresh searcher's first operations, carried out on the trial that
    // exists: Create (request 1) is the trial, ValidateAfter its new length.
    std::deque<searcher::Operation> todo;
    for (searcher::Operation& op : ep->searcher->InitialOperations()) {
      todo.push_back(std::move(op));
    }
    while (!todo.empty()) {
      searcher::Operation op = std::move(todo.front());
      todo.pop_front();
      searcher::Operations more;
      if (auto* c = std::get_if<searcher::Create>(&op)) {
        if (!ep->trial_by_request.count(c->request_id)) {
          return absl::InternalError(
              absl::StrCat("experiment ", id,
                           ": the single searcher asked for trial "
                           "request ",
                           c->request_id,
                           ", which the experiment does not "
                           "have"));
        }
        more = ep->searcher->TrialCreated(c->request_id);
      } else if (auto* v = std::get_if<searcher::ValidateAfter>(&op)) {
        TrialState& t = ep->trials.at(ep->trial_by_request.at(v->request_id));
        SetTrialLength(ep->config, RecordsPerEpoch(*ep), *v, &t.rec);
        t.units_at_batches =
            UnitsAtBatches(ep->config, RecordsPerEpoch(*ep), t.rec);
        v1::Trial& pt = t.rec.trial;
        // As Determined: the restarts count starts again, the trial runs
        // again (its checkpoints, metrics and best are kept).
        pt.set_restarts(0);
        pt.set_end_time_us(0);
        pt.set_closing(false);
        pt.clear_message();
        pt.set_exit_reason(v1::EXIT_REASON_UNSPECIFIED);
        SetTrialState(ep, &t, v1::STATE_QUEUED);
        t.stop_sent = false;
        DET_RETURN_IF_ERROR(SaveTrial(&t));
        Enqueue(ep, &t);
      }
      todo.insert(todo.end(), std::make_move_iterator(more.begin()),
                  std::make_move_iterator(more.end()));
    }
    // The old searcher's journal ends here: the snapshot is the new one's.
    return SaveExperiment(ep, /*force=*/true);
  }));
  ep = FindExperiment(id);
  if (ep == nullptr) return absl::InternalError("experiment vanished");
  Touch(ep);
  ScheduleLocked();
  ep = FindExperiment(id);
  if (ep == nullptr) return absl::InternalError("experiment vanished");
  return Describe(*ep);
}

}  // namespace det::master
