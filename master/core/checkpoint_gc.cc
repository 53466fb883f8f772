// Checkpoint garbage collection and the checkpoint side of the client API
// (list, describe, download, experiment delete).
//
// The rule (master/checkpoints/retention.h) runs inside the transaction of
// the event that may change its answer: a trial's checkpoint, a validation,
// a trial's end, an experiment's end. The checkpoints it gives up are set
// DELETING in that same transaction, so a crash leaves them either ACTIVE
// (decided again later) or DELETING (finished after the restart); nothing
// kept is ever DELETING. Then the files go:
//  - the master sends DeleteCheckpoints to a worker that can reach the
//    storage: the one the trial last ran on, else any connected worker
//    (checkpoint storage is shared: shared_fs, or directory with the same
//    path everywhere), with the folder as mounted on that worker;
//  - the worker removes the folders (a missing one counts as removed) and
//    reports CheckpointsDeleted with a sequence number like any report;
//  - the master sets them DELETED in the batch's transaction.
// Unreported deletions are sent again after a reconnect of the worker,
// after kResendAfter, and by a restarted master (from the DELETING rows).
// When no worker is connected at all and the storage folder exists on the
// master's machine, the master removes the folders itself, outside any
// transaction, then sets them DELETED.
//
// A checkpoint a live trial may restore from (its newest
// kRestoreCandidates) or start from (a warm start of any live trial) is
// never given up.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/checkpoints/retention.h"
#include "master/core/experiment_admin.h"
#include "master/core/master.h"
#include "master/core/placement.h"

namespace det::master {
namespace {

// A deletion sent to a worker that neither reported it nor dropped its
// stream is sent again after this long (deleting is idempotent).
constexpr absl::Duration kResendAfter = absl::Seconds(60);
// Checkpoints per DeleteCheckpoints message.
constexpr size_t kUuidsPerMessage = 256;

// A uuid names one folder right under the storage: nothing else is removed.
bool SafeUuid(const std::string& uuid) {
  return !uuid.empty() && uuid != "." && uuid != ".." &&
         uuid.find('/') == std::string::npos;
}

}  // namespace

absl::flat_hash_set<std::string> Master::WarmStartsInUse() const {
  absl::flat_hash_set<std::string> in_use;
  for (const auto& [eid, e] : experiments_) {
    for (const auto& [tid, t] : e->trials) {
      const v1::Trial& pt = t.rec.trial;
      if (!IsTerminal(pt.state()) && !pt.warm_start_uuid().empty()) {
        in_use.insert(pt.warm_start_uuid());
      }
    }
  }
  return in_use;
}

absl::Status Master::CollectCheckpoints(ExperimentState* e, int64_t trial_id) {
  const CheckpointStorageConfig& cs = e->config.checkpoint_storage;
  const int64_t eid = e->rec.experiment.id();
  std::vector<v1::Checkpoint> active;
  // An experiment's best N are each within their own trial's best N, so
  // with save_experiment_best <= save_trial_best the trial's own
  // checkpoints give the same answer for it as the whole experiment's.
  if (trial_id != 0 && cs.save_experiment_best <= cs.save_trial_best) {
    DET_ASSIGN_OR_RETURN(active, store_->ListCheckpoints(trial_id));
  } else {
    DET_ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> all,
                         store_->ListExperimentCheckpoints(eid));
    for (v1::Checkpoint& c : all) {
      if (c.state() == v1::CHECKPOINT_STATE_ACTIVE) {
        active.push_back(std::move(c));
      }
    }
  }
  if (active.empty()) return absl::OkStatus();
  std::set<int64_t> trials;
  std::vector<checkpoints::CheckpointInfo> infos;
  for (const v1::Checkpoint& c : active) {
    trials.insert(c.trial_id());
    infos.push_back(CheckpointInfoOf(c));
  }
  std::vector<checkpoints::ValidationPoint> validations;
  const std::string& metric = e->config.searcher.metric;
  for (int64_t tid : trials) {
    DET_ASSIGN_OR_RETURN(
        std::vector<v1::MetricReport> reports,
        store_->GetMetricReports(tid, v1::METRIC_GROUP_VALIDATION));
    for (const v1::MetricReport& r : reports) {
      auto it = r.metrics().find(metric);
      if (it != r.metrics().end()) {
        validations.push_back({tid, r.steps_completed(), it->second});
      }
    }
  }
  checkpoints::AttachMetrics(validations, &infos);
  checkpoints::RetentionPolicy policy;
  policy.save_trial_latest = cs.save_trial_latest;
  policy.save_trial_best = cs.save_trial_best;
  policy.save_experiment_best = cs.save_experiment_best;
  policy.smaller_is_better = e->config.searcher.smaller_is_better;
  policy.restore_candidates = static_cast<int64_t>(kRestoreCandidates);
  absl::flat_hash_set<int64_t> live;
  for (const auto& [tid, t] : e->trials) {
    if (!IsTerminal(t.rec.trial.state())) live.insert(tid);
  }
  std::vector<std::string> doomed =
      checkpoints::CheckpointsToDelete(policy, infos, live);
  if (doomed.empty()) return absl::OkStatus();
  absl::flat_hash_set<std::string> warm = WarmStartsInUse();
  std::map<std::string, int64_t> trial_of;
  for (const v1::Checkpoint& c : active) trial_of[c.uuid()] = c.trial_id();
  for (const std::string& uuid : doomed) {
    if (warm.contains(uuid)) continue;
    DET_RETURN_IF_ERROR(
        store_->SetCheckpointState(uuid, v1::CHECKPOINT_STATE_DELETING));
    PendingDeletion& p = gc_pending_[uuid];
    p.experiment_id = eid;
    p.storage = cs;
    auto tit = e->trials.find(trial_of[uuid]);
    if (tit != e->trials.end()) p.agent_id = tit->second.rec.trial.agent_id();
  }
  SendCheckpointDeletions(/*allow_local=*/false);
  return absl::OkStatus();
}

const std::string* Master::PickGcWorker(const std::string& preferred) const {
  auto it = workers_.find(preferred);
  if (it != workers_.end() && it->second.outbox && !it->second.lost) {
    return &it->first;
  }
  for (const auto& [id, w] : workers_) {
    if (w.outbox && !w.lost) return &id;
  }
  return nullptr;
}

void Master::SendCheckpointDeletions(bool allow_local) {
  if (gc_pending_.empty()) return;
  const absl::Time now = absl::Now();
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> out;
  std::vector<std::pair<std::string, std::string>> local;  // (uuid, dir)
  for (auto& [uuid, p] : gc_pending_) {
    if (!p.sent_to.empty() && now - p.sent_at < kResendAfter) {
      auto wit = workers_.find(p.sent_to);
      if (wit != workers_.end() && wit->second.outbox && !wit->second.lost) {
        continue;  // in flight
      }
    }
    const std::string* worker = PickGcWorker(p.agent_id);
    if (worker == nullptr) {
      p.sent_to.clear();
      if (allow_local) {
        local.emplace_back(uuid,
                           CheckpointDir(p.storage, options_.checkpoint_root));
      }
      continue;
    }
    const std::string dir = CheckpointDir(p.storage, options_.checkpoint_root,
                                          workers_.at(*worker).checkpoint_root);
    out[{*worker, dir}].push_back(uuid);
    p.sent_to = *worker;
    p.sent_at = now;
  }
  for (auto& [key, uuids] : out) {
    for (size_t i = 0; i < uuids.size(); i += kUuidsPerMessage) {
      v1::MasterMessage m;
      v1::DeleteCheckpoints* d = m.mutable_delete_checkpoints();
      d->set_dir(key.second);
      for (size_t j = i; j < std::min(uuids.size(), i + kUuidsPerMessage);
           ++j) {
        d->add_uuids(uuids[j]);
      }
      SendToWorker(key.first, std::move(m));
    }
  }
  if (local.empty()) return;
  // No worker to ask: the master removes what it can see itself, then
  // marks it DELETED (files first, so a crash in between only repeats).
  std::vector<std::string> removed;
  for (const auto& [uuid, dir] : local) {
    if (!SafeUuid(uuid)) continue;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;  // not reachable
    std::filesystem::remove_all(std::filesystem::path(dir) / uuid, ec);
    if (ec) {
      std::fprintf(stderr, "master: removing checkpoint %s under %s: %s\n",
                   uuid.c_str(), dir.c_str(), ec.message().c_str());
      continue;
    }
    removed.push_back(uuid);
  }
  if (removed.empty()) return;
  (void)Transact([&] { return MarkCheckpointsDeleted(removed); });
}

absl::Status Master::MarkCheckpointsDeleted(
    const std::vector<std::string>& uuids) {
  std::set<int64_t> touched;
  for (const std::string& uuid : uuids) {
    absl::Status s =
        store_->SetCheckpointState(uuid, v1::CHECKPOINT_STATE_DELETED);
    // NOT_FOUND: its experiment was deleted meanwhile. FAILED_PRECONDITION:
    // an ACTIVE one (never asked for): its folder is gone, nothing to mark.
    if (!s.ok() && !absl::IsNotFound(s) && !absl::IsFailedPrecondition(s)) {
      return s;
    }
    if (absl::IsFailedPrecondition(s)) {
      std::fprintf(stderr,
                   "master: a worker reported removing checkpoint %s, which "
                   "was not being deleted: %s\n",
                   uuid.c_str(), std::string(s.message()).c_str());
    }
    auto it = gc_pending_.find(uuid);
    if (it != gc_pending_.end()) {
      touched.insert(it->second.experiment_id);
      gc_pending_.erase(it);
    }
  }
  for (int64_t eid : touched) {
    if (ExperimentState* e = FindExperiment(eid)) Touch(e);
  }
  return FinishExperimentDeletions();
}

absl::Status Master::FinishExperimentDeletions() {
  if (deleting_experiments_.empty()) return absl::OkStatus();
  std::set<int64_t> waiting;
  for (const auto& [uuid, p] : gc_pending_) waiting.insert(p.experiment_id);
  std::vector<int64_t> done;
  for (int64_t eid : deleting_experiments_) {
    if (!waiting.count(eid)) done.push_back(eid);
  }
  for (int64_t eid : done) {
    absl::Status s = store_->DeleteExperiment(eid);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    deleting_experiments_.erase(eid);
    if (ExperimentState* e = FindExperiment(eid)) {
      e->rec.experiment.set_deleting(true);
      Touch(e);
      experiments_.erase(eid);
    }
  }
  return absl::OkStatus();
}

absl::Status Master::LoadCheckpointDeletions() {
  gc_pending_.clear();
  deleting_experiments_.clear();
  DET_ASSIGN_OR_RETURN(
      std::vector<v1::Checkpoint> deleting,
      store_->ListCheckpointsInState(v1::CHECKPOINT_STATE_DELETING));
  std::map<int64_t, std::optional<CheckpointStorageConfig>> storage;
  for (const v1::Checkpoint& c : deleting) {
    absl::StatusOr<store::TrialRecord> t = store_->GetTrial(c.trial_id());
    if (!t.ok()) continue;  // its experiment is being deleted with it
    const int64_t eid = t->trial.experiment_id();
    auto sit = storage.find(eid);
    if (sit == storage.end()) {
      std::optional<CheckpointStorageConfig> cs;
      if (ExperimentState* e = FindExperiment(eid)) {
        cs = e->config.checkpoint_storage;
      } else if (auto cfg = ConfigOf(eid); cfg.ok()) {
        cs = cfg->checkpoint_storage;
      }
      sit = storage.emplace(eid, std::move(cs)).first;
    }
    if (!sit->second) continue;
    PendingDeletion& p = gc_pending_[c.uuid()];
    p.experiment_id = eid;
    p.storage = *sit->second;
    p.agent_id = t->trial.agent_id();
  }
  DET_ASSIGN_OR_RETURN(std::vector<v1::Experiment> all,
                       store_->ListExperiments());
  for (const v1::Experiment& x : all) {
    if (x.deleting()) deleting_experiments_.insert(x.id());
  }
  return absl::OkStatus();
}

void Master::CheckpointGcTick() {
  if (!store_health_.available) return;
  if (!deleting_experiments_.empty()) {
    (void)Transact([&] { return FinishExperimentDeletions(); });
  }
  SendCheckpointDeletions(/*allow_local=*/true);
}

absl::StatusOr<ExperimentConfig> Master::ConfigOf(int64_t experiment_id) {
  if (ExperimentState* e = FindExperiment(experiment_id)) return e->config;
  absl::StatusOr<store::ExperimentRecord> rec =
      store_->GetExperiment(experiment_id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError(
          absl::StrCat("experiment ", experiment_id, " not found"));
    }
    return rec.status();
  }
  // As a loaded experiment's: the record's changes applied.
  DET_ASSIGN_OR_RETURN(ExperimentConfig cfg,
                       ParseRecordConfig(rec->experiment));
  ApplyRecordToConfig(rec->experiment, &cfg);
  return cfg;
}

// ---- Client API ----

absl::StatusOr<std::vector<v1::CheckpointDetail>>
Master::ListExperimentCheckpoints(int64_t experiment_id, int best) {
  absl::MutexLock l(&mu_);
  DET_ASSIGN_OR_RETURN(ExperimentConfig cfg, ConfigOf(experiment_id));
  DET_ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> all,
                       store_->ListExperimentCheckpoints(experiment_id));
  std::map<int64_t, std::vector<v1::MetricReport>> reports;
  std::vector<v1::CheckpointDetail> out;
  const std::string dir = CheckpointDir(cfg, options_.checkpoint_root);
  for (v1::Checkpoint& c : all) {
    if (best > 0 && c.state() != v1::CHECKPOINT_STATE_ACTIVE) continue;
    auto rit = reports.find(c.trial_id());
    if (rit == reports.end()) {
      DET_ASSIGN_OR_RETURN(
          std::vector<v1::MetricReport> r,
          store_->GetMetricReports(c.trial_id(), v1::METRIC_GROUP_VALIDATION));
      rit = reports.emplace(c.trial_id(), std::move(r)).first;
    }
    v1::CheckpointDetail d;
    d.set_experiment_id(experiment_id);
    d.set_metric_name(cfg.searcher.metric);
    d.set_dir(dir);
    for (const v1::MetricReport& r : rit->second) {
      if (r.steps_completed() != c.steps_completed()) continue;
      *d.mutable_validation_metrics() = r.metrics();
      auto m = r.metrics().find(cfg.searcher.metric);
      if (m != r.metrics().end()) {
        d.set_has_metric(true);
        d.set_metric(m->second);
      }
    }
    *d.mutable_checkpoint() = std::move(c);
    if (best > 0 && !d.has_metric()) continue;
    out.push_back(std::move(d));
  }
  if (best > 0) {
    // The rule's own ranking, so the best N here are the ones garbage
    // collection keeps as the best.
    std::vector<checkpoints::CheckpointInfo> infos;
    std::map<std::string, v1::CheckpointDetail> by_uuid;
    for (v1::CheckpointDetail& d : out) {
      const v1::Checkpoint& c = d.checkpoint();
      std::string uuid = c.uuid();
      infos.push_back(CheckpointInfoOf(c));
      infos.back().metric = d.metric();
      by_uuid.emplace(std::move(uuid), std::move(d));
    }
    out.clear();
    for (const std::string& uuid :
         checkpoints::RankedByMetric(infos, cfg.searcher.smaller_is_better)) {
      if (out.size() == static_cast<size_t>(best)) break;
      out.push_back(std::move(by_uuid.at(uuid)));
    }
  }
  return out;
}

absl::StatusOr<v1::CheckpointDetail> Master::GetCheckpoint(
    const std::string& uuid) {
  absl::StatusOr<v1::Checkpoint> c = store_->GetCheckpoint(uuid);
  if (!c.ok()) {
    if (absl::IsNotFound(c.status())) {
      return absl::NotFoundError(
          absl::StrCat("checkpoint ", uuid, " not found"));
    }
    return c.status();
  }
  DET_ASSIGN_OR_RETURN(v1::Trial t, GetTrial(c->trial_id()));
  DET_ASSIGN_OR_RETURN(std::vector<v1::CheckpointDetail> all,
                       ListExperimentCheckpoints(t.experiment_id(), 0));
  for (v1::CheckpointDetail& d : all) {
    if (d.checkpoint().uuid() == uuid) return d;
  }
  return absl::NotFoundError(absl::StrCat("checkpoint ", uuid, " not found"));
}

absl::StatusOr<v1::DeleteExperimentResponse> Master::DeleteExperiment(
    int64_t id) {
  absl::MutexLock l(&mu_);
  if (!store_health_.available) return StoreUnavailableError();
  ExperimentState* e = FindExperiment(id);
  v1::Experiment x;
  ExperimentConfig cfg;
  if (e != nullptr) {
    x = e->rec.experiment;
    cfg = e->config;
  } else {
    absl::StatusOr<store::ExperimentRecord> rec = store_->GetExperiment(id);
    if (!rec.ok()) {
      if (absl::IsNotFound(rec.status())) {
        return absl::NotFoundError(
            absl::StrCat("experiment ", id, " not found"));
      }
      return rec.status();
    }
    x = rec->experiment;
    DET_ASSIGN_OR_RETURN(cfg, ConfigOf(id));
  }
  if (!IsTerminal(x.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "experiment ", id, " is ", StateName(x.state()),
        ", not in a terminal state; cancel or kill it first, then delete it"));
  }
  // Read and checked before the transaction: a refusal changes nothing.
  DET_ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> all,
                       store_->ListExperimentCheckpoints(id));
  std::map<int64_t, std::string> agent_of;
  DET_ASSIGN_OR_RETURN(std::vector<store::TrialRecord> trials,
                       store_->ListTrials(id));
  for (const store::TrialRecord& t : trials) {
    agent_of[t.trial.id()] = t.trial.agent_id();
  }
  absl::flat_hash_set<std::string> warm = WarmStartsInUse();
  for (const v1::Checkpoint& c : all) {
    if (c.state() != v1::CHECKPOINT_STATE_DELETED && warm.contains(c.uuid())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", c.uuid(), " of experiment ", id,
          " is the warm start of a live trial; delete the experiment once "
          "that trial has ended"));
    }
  }
  v1::DeleteExperimentResponse resp;
  DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
    x.set_deleting(true);
    DET_RETURN_IF_ERROR(store_->UpdateExperiment(x));
    if (e != nullptr) e->rec.experiment.set_deleting(true);
    for (const v1::Checkpoint& c : all) {
      if (c.state() == v1::CHECKPOINT_STATE_DELETED) continue;
      if (c.state() == v1::CHECKPOINT_STATE_ACTIVE) {
        DET_RETURN_IF_ERROR(store_->SetCheckpointState(
            c.uuid(), v1::CHECKPOINT_STATE_DELETING));
      }
      PendingDeletion& p = gc_pending_[c.uuid()];
      p.experiment_id = id;
      p.storage = cfg.checkpoint_storage;
      p.agent_id = agent_of[c.trial_id()];
      resp.set_checkpoints_deleting(resp.checkpoints_deleting() + 1);
    }
    deleting_experiments_.insert(id);
    SendCheckpointDeletions(/*allow_local=*/false);
    return FinishExperimentDeletions();
  }));
  if (ExperimentState* still = FindExperiment(id)) Touch(still);
  return resp;
}

}  // namespace det::master
