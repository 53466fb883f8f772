// A trial's run ending: a clean exit with its reason, or a loss (a crash,
// its worker lost or restarted, a run the worker never started). Owns the
// restart policy (max_restarts) and the trial's terminal states; tells the
// searcher what became of the trial.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

bool StoppingExperiment(v1::State s) {
  return s == v1::STATE_STOPPING_CANCELED || s == v1::STATE_STOPPING_KILLED;
}

}  // namespace

void Master::ReleaseTrial(TrialState* t) {
  t->running = false;
  t->stop_sent = false;
  t->awaiting_worker = false;
  t->workers.clear();
  scheduler_.Release(t->rec.trial.id());
  // agent_id stays: the worker it ran on last.
  t->rec.trial.clear_slot_ids();
}

absl::Status Master::OnExit(ExperimentState* e, TrialState* t,
                            const v1::TrialExited& x) {
  v1::Trial& pt = t->rec.trial;
  ReleaseTrial(t);
  if (IsTerminal(pt.state())) return absl::OkStatus();
  const v1::State es = e->rec.experiment.state();
  auto finish = [&](v1::State s, v1::ExitReason reason) {
    SetTrialState(e, t, s);
    pt.set_exit_reason(reason);
    pt.set_end_time_us(NowUs());
  };
  std::optional<JournalEvent> event;
  if (StoppingExperiment(es)) {
    finish(v1::STATE_CANCELED, x.reason());
  } else if (x.reason() == v1::EXIT_REASON_COMPLETED ||
             (t->rec.trial.closing() &&
              (x.reason() == v1::EXIT_REASON_STOPPED ||
               x.reason() == v1::EXIT_REASON_KILLED))) {
    finish(v1::STATE_COMPLETED, x.reason());
    event = JournalEvent::Closed(t->rec.request_id);
  } else if (pt.kill_requested()) {
    // det trial kill: however the process ended, it is not restarted.
    finish(v1::STATE_CANCELED, v1::EXIT_REASON_KILLED);
    pt.set_message("killed by the user (det trial kill)");
    event = JournalEvent::Exited(t->rec.request_id,
                                 searcher::ExitedReason::kUserCanceled);
  } else if (x.reason() == v1::EXIT_REASON_STOPPED) {
    // Stopped for a pause, or by its worker shutting down: not a failure.
    if (es == v1::STATE_ACTIVE) {
      SetTrialState(e, t, v1::STATE_QUEUED);
      Enqueue(e, t);
    } else {
      SetTrialState(e, t, v1::STATE_PAUSED);
    }
  } else if (x.reason() == v1::EXIT_REASON_INVALID_HP) {
    finish(v1::STATE_ERROR, x.reason());
    pt.set_message(absl::StrCat("invalid hyperparameters: ", x.message()));
    event = JournalEvent::Exited(t->rec.request_id,
                                 searcher::ExitedReason::kInvalidHP);
  } else {
    return OnTrialLost(e, t,
                       x.message().empty()
                           ? absl::StrCat("exited with code ", x.exit_code())
                           : x.message());
  }
  DET_RETURN_IF_ERROR(SaveTrial(t));
  if (event) return FeedAndProcess(e, *event);
  return ProcessOps(e, {});
}

absl::Status Master::OnTrialLost(ExperimentState* e, TrialState* t,
                                 const std::string& why,
                                 bool free_if_not_started) {
  v1::Trial& pt = t->rec.trial;
  ReleaseTrial(t);
  if (IsTerminal(pt.state())) return absl::OkStatus();
  const v1::State es = e->rec.experiment.state();
  // A run whose process never started (its StartTrial lost, or the
  // worker gone before it began) did not run: its restart is free. (A
  // run that failed to start reported an exit, and counts.)
  const bool counts = !free_if_not_started || pt.started_run() == t->rec.run_id;
  std::optional<JournalEvent> event;
  if (StoppingExperiment(es)) {
    SetTrialState(e, t, v1::STATE_CANCELED);
    pt.set_end_time_us(NowUs());
  } else if (t->rec.trial.closing()) {
    // The searcher had already decided to stop it.
    SetTrialState(e, t, v1::STATE_COMPLETED);
    pt.set_end_time_us(NowUs());
    event = JournalEvent::Closed(t->rec.request_id);
  } else if (pt.kill_requested()) {
    // det trial kill, and the process is gone: not restarted.
    SetTrialState(e, t, v1::STATE_CANCELED);
    pt.set_exit_reason(v1::EXIT_REASON_KILLED);
    pt.set_end_time_us(NowUs());
    pt.set_message(absl::StrCat("killed by the user (det trial kill); ", why));
    event = JournalEvent::Exited(t->rec.request_id,
                                 searcher::ExitedReason::kUserCanceled);
  } else if (!counts || pt.restarts() < e->config.max_restarts) {
    if (counts) {
      pt.set_restarts(pt.restarts() + 1);
      pt.set_message(absl::StrCat("restart ", pt.restarts(), " of ",
                                  e->config.max_restarts, " after: ", why));
    } else {
      pt.set_message(
          absl::StrCat("queued again (not counted as a restart: "
                       "run ",
                       t->rec.run_id, " had not started): ", why));
    }
    if (es == v1::STATE_ACTIVE) {
      SetTrialState(e, t, v1::STATE_QUEUED);
      Enqueue(e, t);
    } else {
      SetTrialState(e, t, v1::STATE_PAUSED);
    }
  } else {
    SetTrialState(e, t, v1::STATE_ERROR);
    pt.set_exit_reason(v1::EXIT_REASON_ERRORED);
    pt.set_end_time_us(NowUs());
    pt.set_message(
        absl::StrCat("failed after ", pt.restarts(), " restarts: ", why));
    event = JournalEvent::Exited(t->rec.request_id,
                                 searcher::ExitedReason::kErrored);
  }
  DET_RETURN_IF_ERROR(SaveTrial(t));
  if (event) return FeedAndProcess(e, *event);
  return ProcessOps(e, {});
}

absl::Status Master::LoseTrialsOfWorker(const std::string& worker_id,
                                        const std::set<int64_t>& keep,
                                        const std::string& why) {
  for (auto& [eid, e] : experiments_) {
    for (auto& [tid, t] : e->trials) {
      if (!t.running || keep.count(tid)) continue;
      if (std::find(t.workers.begin(), t.workers.end(), worker_id) ==
          t.workers.end()) {
        continue;
      }
      DET_RETURN_IF_ERROR(
          OnTrialLost(e.get(), &t, why, /*free_if_not_started=*/true));
    }
  }
  return absl::OkStatus();
}

}  // namespace det::master
