// Recovery: building the master's memory from its store, at start and
// after a failed transaction. The store is the truth; this is the only
// code that turns it back into experiments, searchers (snapshot + journal
// replay), trials and the queue. Trials that were running are marked as
// awaiting their worker, which claims them when it (re)connects
// (worker_sessions.cc); those not claimed are restarted.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/experiment_admin.h"
#include "master/core/master.h"
#include "master/core/searcher_journal.h"
#include "master/core/trial_lengths.h"

namespace det::master {

absl::Status Master::Load() {
  loaded_at_ = absl::Now();
  DET_ASSIGN_OR_RETURN(auto records, store_->ListNonTerminalExperiments());
  for (auto& rec : records) {
    auto e = std::make_unique<ExperimentState>();
    int64_t id = rec.experiment.id();
    DET_ASSIGN_OR_RETURN(e->config, ParseRecordConfig(rec.experiment));
    // What det experiment set changed since (experiment_admin.cc).
    ApplyRecordToConfig(rec.experiment, &e->config);
    std::optional<SearcherSnapshot> snap;
    if (!rec.searcher_snapshot.empty()) {
      auto decoded = DecodeSearcherSnapshot(rec.searcher_snapshot);
      if (!decoded.ok()) {
        return absl::DataLossError(
            absl::StrCat("experiment ", id, ": ", decoded.status().message()));
      }
      snap = std::move(*decoded);
      if (snap->has_seed) {
        e->config.experiment_seed = snap->seed;
        e->config.has_experiment_seed = true;
      }
      if (!snap->warm_start_uuid.empty()) {
        e->config.searcher.source_checkpoint_uuid = snap->warm_start_uuid;
      }
    }
    DET_ASSIGN_OR_RETURN(e->searcher, searcher::NewSearchMethod(e->config));
    if (snap) {
      DET_RETURN_IF_ERROR(e->searcher->Restore(snap->searcher));
      e->searcher_done = snap->done;
      e->searcher_failed = snap->failed;
    }
    // Events after the snapshot: their effects (trials created, stopped)
    // are in the store already; replaying them brings the searcher to the
    // state it had.
    DET_ASSIGN_OR_RETURN(auto events, store_->ListSearcherEvents(id));
    // The operations the replayed events ask for, in the order ProcessOps
    // carried them out (breadth first).
    std::vector<searcher::Operation> replayed;
    for (const std::string& text : events) {
      auto ev = DecodeJournalEvent(text);
      if (!ev.ok()) {
        return absl::DataLossError(
            absl::StrCat("experiment ", id, ": ", ev.status().message()));
      }
      for (searcher::Operation& op :
           ApplyJournalEvent(e->searcher.get(), *ev)) {
        if (auto* sd = std::get_if<searcher::Shutdown>(&op)) {
          e->searcher_done = true;
          e->searcher_failed = sd->failure;
        }
        replayed.push_back(std::move(op));
      }
    }
    e->events_since_snapshot = static_cast<int64_t>(events.size());
    e->rec = std::move(rec);
    e->order = id;
    DET_ASSIGN_OR_RETURN(auto trials, store_->ListTrials(id));
    for (auto& tr : trials) {
      TrialState t;
      t.rec = std::move(tr);
      const v1::Trial& pt = t.rec.trial;
      e->trial_by_request[t.rec.request_id] = pt.id();
      t.units_at_batches =
          UnitsAtBatches(e->config, RecordsPerEpoch(*e), t.rec);
      if (pt.state() == v1::STATE_ACTIVE) {
        // It was running: wait for its worker to come back and claim it,
        // or restart it after agent_timeout.
        t.running = true;
        t.awaiting_worker = true;
        if (!pt.agent_id().empty()) t.workers.push_back(pt.agent_id());
      }
      e->trial_counts[pt.state()]++;
      e->trials.emplace(pt.id(), std::move(t));
    }
    // Every operation up to the first Create without a stored trial was
    // carried out before the master stopped (each transaction carries out
    // a prefix of them); that Create and everything after it were pending
    // (a burst of creations cut off between its chunks). Master::Create
    // (or Reload) carries them out before serving.
    for (size_t i = 0; i < replayed.size(); ++i) {
      auto* c = std::get_if<searcher::Create>(&replayed[i]);
      if (c != nullptr && !e->trial_by_request.count(c->request_id)) {
        e->pending.assign(std::make_move_iterator(replayed.begin() + i),
                          std::make_move_iterator(replayed.end()));
        break;
      }
    }
    ExperimentState* ep = e.get();
    experiments_[id] = std::move(e);
    for (auto& [tid, t] : ep->trials) {
      if (t.rec.trial.state() == v1::STATE_QUEUED &&
          ep->rec.experiment.state() == v1::STATE_ACTIVE) {
        Enqueue(ep, &t);
      }
    }
  }
  return LoadCheckpointDeletions();
}

absl::Status Master::Reload() {
  // Every stream ends: its worker reconnects, says in its Hello which runs
  // it still has, and resends what was not acknowledged. Until then the
  // workers hold no slots.
  for (auto& [id, w] : workers_) {
    if (w.outbox) {
      w.outbox->Close();
      w.outbox.reset();
    }
    w.agent.set_connected(false);
    w.in_scheduler = false;
    w.last_seen = absl::Now();  // agent_timeout counts from the reload
  }
  scheduler_ = scheduler::SlotScheduler();
  unschedulable_reported_ = false;
  // Experiments are dropped and loaded again; waiters see a new version.
  std::map<int64_t, int64_t> versions;
  for (auto& [id, e] : experiments_) versions[id] = e->version;
  experiments_.clear();
  absl::Status st = Load();
  for (auto& [id, e] : experiments_) {
    auto it = versions.find(id);
    e->version = (it == versions.end() ? 0 : it->second) + 1;
  }
  changed_.SignalAll();
  return st;
}

}  // namespace det::master
