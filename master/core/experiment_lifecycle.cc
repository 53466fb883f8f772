// An experiment's life: created (checked whole, stored with its first
// snapshot, its first trials made in chunks), paused, activated, cancelled
// or killed, and finished once nothing of it runs. Owns the experiment
// state machine; trials' own states change in trial_lifecycle.cc.
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

absl::StatusOr<v1::Experiment> Master::CreateExperiment(
    const std::string& yaml, const std::string& context, bool activate,
    bool validate_only, std::vector<std::string>* warnings) {
  auto cfg = ParseExperimentConfig(yaml);
  if (!cfg.ok()) return cfg.status();
  if (!cfg->has_experiment_seed) {
    // Unseeded searches must not all sample the same trials. The seed is
    // kept with the searcher's snapshot (the user's YAML is stored as
    // written), so a restarted master continues the same search.
    absl::BitGen gen;
    cfg->experiment_seed = absl::Uniform<uint32_t>(gen, 0, 1u << 31);
    cfg->has_experiment_seed = true;
  }
  if (warnings != nullptr) {
    for (const ConfigError& w : cfg->warnings)
      warnings->push_back(w.ToString());
  }
  DET_RETURN_IF_ERROR(ResolveWarmStart(&*cfg));
  auto srch = searcher::NewSearchMethod(*cfg);
  if (!srch.ok()) {
    return absl::InvalidArgumentError(srch.status().message());
  }
  auto e = std::make_unique<ExperimentState>();
  e->config = std::move(*cfg);
  e->searcher = std::move(*srch);
  v1::Experiment& x = e->rec.experiment;
  x.set_name(e->config.name);
  x.set_description(e->config.description);
  for (const auto& l : e->config.labels) x.add_labels(l);
  x.set_state(activate ? v1::STATE_ACTIVE : v1::STATE_PAUSED);
  x.set_searcher(SearcherNameString(e->config.searcher.name));
  x.set_metric(e->config.searcher.metric);
  x.set_smaller_is_better(e->config.searcher.smaller_is_better);
  x.set_config_yaml(yaml);
  x.set_start_time_us(NowUs());
  x.set_priority(static_cast<int32_t>(e->config.resources.priority));
  e->rec.context = context;
  if (validate_only) return x;

  absl::MutexLock l(&mu_);
  ExperimentState* ep = e.get();
  int64_t id = 0;
  // A failure undoes the whole creation: the store rolls back and the
  // reload drops the half-made experiment from memory.
  DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
    DET_ASSIGN_OR_RETURN(id, store_->AddExperiment(ep->rec));
    ep->rec.experiment.set_id(id);
    ep->order = id;
    experiments_[id] = std::move(e);
    // The first snapshot carries the experiment seed; it must exist before
    // any journal entry is replayed. It is taken before "init", so the
    // journal keeps "init" until every trial it asks for is created.
    DET_RETURN_IF_ERROR(SaveExperiment(ep, /*force=*/true));
    if (!activate) return absl::OkStatus();
    return StartSearch(ep);
  }));
  ScheduleLocked();
  // The experiment is stored; the rest of its first trials follow.
  // If that fails, the experiment exists and the error says that the rest
  // follows once the store takes writes again.
  DET_RETURN_IF_ERROR(CarryOutPending(ep));
  ep = FindExperiment(id);
  if (ep == nullptr) return absl::InternalError("experiment vanished");
  return Describe(*ep);
}

absl::StatusOr<v1::Experiment> Master::PauseExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_PAUSED);
}
absl::StatusOr<v1::Experiment> Master::ActivateExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_ACTIVE);
}
absl::StatusOr<v1::Experiment> Master::CancelExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_STOPPING_CANCELED);
}
absl::StatusOr<v1::Experiment> Master::KillExperiment(int64_t id) {
  return ChangeState(id, v1::STATE_STOPPING_KILLED);
}

absl::StatusOr<v1::Experiment> Master::ChangeState(int64_t id,
                                                   v1::State target) {
  absl::MutexLock l(&mu_);
  ExperimentState* e = FindExperiment(id);
  if (e == nullptr) {
    auto x = GetStoredExperiment(id);
    if (!x.ok()) return x.status();
    return absl::FailedPreconditionError(
        absl::StrCat("experiment ", id, " is ", StateName(x->state()),
                     "; it has ended and its state can no longer change"));
  }
  v1::Experiment& x = e->rec.experiment;
  const v1::State cur = x.state();
  auto illegal = [&](const char* what) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot ", what, " experiment ", id, ": it is ", StateName(cur)));
  };
  // Every refusal is decided here, before anything changes: a failure
  // inside the transaction below is the store's.
  switch (target) {
    case v1::STATE_PAUSED:
      if (cur == v1::STATE_PAUSED) return Describe(*e);
      if (cur != v1::STATE_ACTIVE) return illegal("pause");
      break;
    case v1::STATE_ACTIVE:
      if (cur == v1::STATE_ACTIVE) return Describe(*e);
      if (cur != v1::STATE_PAUSED) return illegal("activate");
      break;
    case v1::STATE_STOPPING_CANCELED:
      if (IsTerminal(cur)) return illegal("cancel");
      // Already being killed: a cancel changes nothing.
      if (cur == v1::STATE_STOPPING_KILLED) return Describe(*e);
      break;
    case v1::STATE_STOPPING_KILLED:
      if (IsTerminal(cur)) return illegal("kill");
      break;
    default:
      return absl::InvalidArgumentError("unsupported state change");
  }
  bool first_trials = false;  // activated for the first time
  DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
    switch (target) {
      case v1::STATE_PAUSED: {
        x.set_state(v1::STATE_PAUSED);
        for (auto& [tid, t] : e->trials) {
          if (IsTerminal(t.rec.trial.state())) continue;
          if (t.running) {
            StopTrialProcess(&t, false);
          } else {
            scheduler_.Dequeue(tid);
            SetTrialState(e, &t, v1::STATE_PAUSED);
            DET_RETURN_IF_ERROR(SaveTrial(&t));
          }
        }
        return SaveExperiment(e);
      }
      case v1::STATE_ACTIVE: {
        x.set_state(v1::STATE_ACTIVE);
        if (e->trials.empty() && !e->searcher_done) {
          first_trials = true;
          return StartSearch(e);
        }
        for (auto& [tid, t] : e->trials) {
          if (t.rec.trial.state() == v1::STATE_PAUSED && !t.running) {
            SetTrialState(e, &t, v1::STATE_QUEUED);
            DET_RETURN_IF_ERROR(SaveTrial(&t));
            Enqueue(e, &t);
          }
        }
        return SaveExperiment(e);
      }
      default: {  // STOPPING_CANCELED, STOPPING_KILLED
        bool kill = target == v1::STATE_STOPPING_KILLED;
        x.set_state(target);
        for (auto& [tid, t] : e->trials) {
          if (t.running) {
            StopTrialProcess(&t, kill);
          } else {
            // Queued trials must not be placed on the slots the stopped
            // ones free; MaybeFinish marks them CANCELED.
            scheduler_.Dequeue(tid);
          }
        }
        DET_RETURN_IF_ERROR(SaveExperiment(e));
        return MaybeFinish(e);
      }
    }
  }));
  Touch(e);
  ScheduleLocked();
  if (first_trials) {
    absl::Status rest = CarryOutPending(e);
    e = FindExperiment(id);
    if (!rest.ok() || e == nullptr) return rest;
  }
  return Describe(*e);
}

absl::Status Master::MaybeFinish(ExperimentState* e) {
  v1::Experiment& x = e->rec.experiment;
  v1::State s = x.state();
  if (IsTerminal(s)) return absl::OkStatus();
  // From the counts: this runs after every event, so no walk over trials.
  auto count = [&](v1::State st) {
    auto it = e->trial_counts.find(st);
    return it == e->trial_counts.end() ? 0 : it->second;
  };
  int completed = count(v1::STATE_COMPLETED);
  bool any_live = static_cast<int>(e->trials.size()) - completed -
                      count(v1::STATE_ERROR) - count(v1::STATE_CANCELED) >
                  0;
  bool any_completed = completed > 0;
  v1::State final_state = v1::STATE_UNSPECIFIED;
  if (s == v1::STATE_STOPPING_CANCELED || s == v1::STATE_STOPPING_KILLED) {
    for (auto& [id, t] : e->trials) {
      if (t.running) return absl::OkStatus();
    }
    for (auto& [id, t] : e->trials) {
      if (!IsTerminal(t.rec.trial.state())) {
        scheduler_.Dequeue(id);
        SetTrialState(e, &t, v1::STATE_CANCELED);
        t.rec.trial.set_end_time_us(NowUs());
        DET_RETURN_IF_ERROR(SaveTrial(&t));
      }
    }
    final_state = v1::STATE_CANCELED;
  } else if (e->searcher_done && !any_live) {
    final_state = any_completed || e->trials.empty() ? v1::STATE_COMPLETED
                                                     : v1::STATE_ERROR;
    // None completed and none failed: the user killed every trial.
    if (final_state == v1::STATE_ERROR && count(v1::STATE_ERROR) == 0) {
      final_state = v1::STATE_CANCELED;
    }
  } else {
    return absl::OkStatus();
  }
  x.set_state(final_state);
  x.set_end_time_us(NowUs());
  if (final_state == v1::STATE_ERROR) x.set_message("every trial failed");
  DET_RETURN_IF_ERROR(SaveExperiment(e, /*force=*/true));
  // No trial of it runs again: only what the retention rule keeps stays.
  DET_RETURN_IF_ERROR(CollectCheckpoints(e, /*trial_id=*/0));
  Touch(e);
  return absl::OkStatus();
}

}  // namespace det::master
